#include "store/wal_vfs.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <new>
#include <string>

namespace pingma::sql {
namespace {

std::atomic<long long> g_frames_written{0};
std::atomic<long long> g_writes_out{0};
std::atomic<long long> g_syncs_skipped{0};
std::atomic<long long> g_syncs_done{0};

thread_local int t_commit_without_sync = 0;

/// Past this much, gathered writes go out at once (a commit of many pages).
constexpr size_t kMaxGathered = 1u << 20;
/// The most one write hands the base VFS: the unix VFS takes at most 128 KiB - 1
/// bytes a call (it masks the length with 0x1ffff).
constexpr size_t kMaxWrite = 64u << 10;

sqlite3_vfs* Base(sqlite3_vfs* vfs) {
  return static_cast<sqlite3_vfs*>(vfs->pAppData);
}

/// Our file: the base VFS's file follows it in the same allocation.
struct File {
  sqlite3_file base;
  sqlite3_file* real;
  bool wal;
  /// WAL only: writes not yet in the file, contiguous from `pending_at`.
  std::string pending;
  sqlite3_int64 pending_at;
  /// WAL only: the header (offset 0) was written since the last sync.
  bool header_written;
};

File* Self(sqlite3_file* f) {
  return reinterpret_cast<File*>(f);
}

const sqlite3_io_methods* Real(File* f) {
  return f->real->pMethods;
}

/// Writes out what was gathered; nothing to do for other files, which never gather.
int Flush(File* f) {
  int rc = SQLITE_OK;
  for (size_t done = 0; done < f->pending.size() && rc == SQLITE_OK; done += kMaxWrite) {
    const size_t n = std::min(kMaxWrite, f->pending.size() - done);
    rc = Real(f)->xWrite(f->real, f->pending.data() + done, static_cast<int>(n),
                         f->pending_at + static_cast<sqlite3_int64>(done));
    ++g_writes_out;
  }
  f->pending.clear();
  return rc;
}

int Close(sqlite3_file* file) {
  File* f = Self(file);
  const int flushed = Flush(f);
  const int rc = Real(f)->xClose(f->real);
  f->~File();
  return flushed != SQLITE_OK ? flushed : rc;
}

int Read(sqlite3_file* file, void* buf, int amount, sqlite3_int64 offset) {
  File* f = Self(file);
  if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  return Real(f)->xRead(f->real, buf, amount, offset);
}

int Write(sqlite3_file* file, const void* buf, int amount, sqlite3_int64 offset) {
  File* f = Self(file);
  if (!f->wal) return Real(f)->xWrite(f->real, buf, amount, offset);
  ++g_frames_written;
  if (offset == 0) f->header_written = true;
  if (!f->pending.empty() &&
      offset != f->pending_at + static_cast<sqlite3_int64>(f->pending.size())) {
    if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  }
  if (f->pending.empty()) f->pending_at = offset;
  f->pending.append(static_cast<const char*>(buf), static_cast<size_t>(amount));
  return f->pending.size() >= kMaxGathered ? Flush(f) : SQLITE_OK;
}

int Truncate(sqlite3_file* file, sqlite3_int64 size) {
  File* f = Self(file);
  if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  return Real(f)->xTruncate(f->real, size);
}

int Sync(sqlite3_file* file, int flags) {
  File* f = Self(file);
  if (!f->wal) return Real(f)->xSync(f->real, flags);
  if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  if (t_commit_without_sync > 0 && !f->header_written) {
    ++g_syncs_skipped;
    return SQLITE_OK;
  }
  const int rc = Real(f)->xSync(f->real, flags);
  if (rc == SQLITE_OK) f->header_written = false;
  ++g_syncs_done;
  return rc;
}

int FileSize(sqlite3_file* file, sqlite3_int64* size) {
  File* f = Self(file);
  if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  return Real(f)->xFileSize(f->real, size);
}

int Lock(sqlite3_file* file, int level) {
  return Real(Self(file))->xLock(Self(file)->real, level);
}

int Unlock(sqlite3_file* file, int level) {
  return Real(Self(file))->xUnlock(Self(file)->real, level);
}

int CheckReservedLock(sqlite3_file* file, int* out) {
  return Real(Self(file))->xCheckReservedLock(Self(file)->real, out);
}

int FileControl(sqlite3_file* file, int op, void* arg) {
  File* f = Self(file);
  if (int rc = Flush(f); rc != SQLITE_OK) return rc;
  return Real(f)->xFileControl(f->real, op, arg);
}

int SectorSize(sqlite3_file* file) {
  return Real(Self(file))->xSectorSize(Self(file)->real);
}

int DeviceCharacteristics(sqlite3_file* file) {
  return Real(Self(file))->xDeviceCharacteristics(Self(file)->real);
}

int ShmMap(sqlite3_file* file, int page, int page_size, int extend, void volatile** out) {
  return Real(Self(file))->xShmMap(Self(file)->real, page, page_size, extend, out);
}

int ShmLock(sqlite3_file* file, int offset, int n, int flags) {
  return Real(Self(file))->xShmLock(Self(file)->real, offset, n, flags);
}

void ShmBarrier(sqlite3_file* file) {
  Real(Self(file))->xShmBarrier(Self(file)->real);
}

int ShmUnmap(sqlite3_file* file, int delete_flag) {
  return Real(Self(file))->xShmUnmap(Self(file)->real, delete_flag);
}

int Fetch(sqlite3_file* file, sqlite3_int64 offset, int amount, void** out) {
  File* f = Self(file);
  if (f->wal) {
    // SQLite maps only the database file; stay on the safe side all the same.
    *out = nullptr;
    return SQLITE_OK;
  }
  return Real(f)->xFetch(f->real, offset, amount, out);
}

int Unfetch(sqlite3_file* file, sqlite3_int64 offset, void* page) {
  File* f = Self(file);
  if (f->wal) return SQLITE_OK;
  return Real(f)->xUnfetch(f->real, offset, page);
}

const sqlite3_io_methods kMethods = {
    3,
    Close,
    Read,
    Write,
    Truncate,
    Sync,
    FileSize,
    Lock,
    Unlock,
    CheckReservedLock,
    FileControl,
    SectorSize,
    DeviceCharacteristics,
    ShmMap,
    ShmLock,
    ShmBarrier,
    ShmUnmap,
    Fetch,
    Unfetch,
};

int Open(sqlite3_vfs* vfs, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
  sqlite3_vfs* base = Base(vfs);
  File* f = new (file) File{};
  f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + sizeof(File));
  f->wal = (flags & SQLITE_OPEN_WAL) != 0;
  const int rc = base->xOpen(base, name, f->real, flags, out_flags);
  // The base VFS's files need version 3 of the methods (shared memory, mmap).
  if (rc != SQLITE_OK || f->real->pMethods == nullptr || f->real->pMethods->iVersion < 3) {
    if (f->real->pMethods != nullptr) f->real->pMethods->xClose(f->real);
    f->~File();
    file->pMethods = nullptr;
    return rc != SQLITE_OK ? rc : SQLITE_CANTOPEN;
  }
  f->base.pMethods = &kMethods;
  return SQLITE_OK;
}

// The rest is the base VFS's, called with the base VFS.
int Delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  return Base(vfs)->xDelete(Base(vfs), name, sync_dir);
}
int Access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  return Base(vfs)->xAccess(Base(vfs), name, flags, out);
}
int FullPathname(sqlite3_vfs* vfs, const char* name, int size, char* out) {
  return Base(vfs)->xFullPathname(Base(vfs), name, size, out);
}
void* DlOpen(sqlite3_vfs* vfs, const char* name) {
  return Base(vfs)->xDlOpen(Base(vfs), name);
}
void DlError(sqlite3_vfs* vfs, int size, char* out) {
  Base(vfs)->xDlError(Base(vfs), size, out);
}
void (*DlSym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
  return Base(vfs)->xDlSym(Base(vfs), handle, symbol);
}
void DlClose(sqlite3_vfs* vfs, void* handle) {
  Base(vfs)->xDlClose(Base(vfs), handle);
}
int Randomness(sqlite3_vfs* vfs, int size, char* out) {
  return Base(vfs)->xRandomness(Base(vfs), size, out);
}
int Sleep(sqlite3_vfs* vfs, int micros) {
  return Base(vfs)->xSleep(Base(vfs), micros);
}
int CurrentTime(sqlite3_vfs* vfs, double* out) {
  return Base(vfs)->xCurrentTime(Base(vfs), out);
}
int GetLastError(sqlite3_vfs* vfs, int size, char* out) {
  return Base(vfs)->xGetLastError(Base(vfs), size, out);
}
int CurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  return Base(vfs)->xCurrentTimeInt64(Base(vfs), out);
}

}  // namespace

Status RegisterWalVfs() {
  static std::once_flag once;
  static int rc = SQLITE_OK;
  static sqlite3_vfs vfs;
  std::call_once(once, [] {
    sqlite3_vfs* base = sqlite3_vfs_find(nullptr);
    if (base == nullptr || base->iVersion < 2 || base->xCurrentTimeInt64 == nullptr) {
      rc = SQLITE_ERROR;
      return;
    }
    vfs = sqlite3_vfs{};
    vfs.iVersion = 2;
    vfs.szOsFile = static_cast<int>(sizeof(File)) + base->szOsFile;
    vfs.mxPathname = base->mxPathname;
    vfs.zName = kWalVfsName;
    vfs.pAppData = base;
    vfs.xOpen = Open;
    vfs.xDelete = Delete;
    vfs.xAccess = Access;
    vfs.xFullPathname = FullPathname;
    vfs.xDlOpen = DlOpen;
    vfs.xDlError = DlError;
    vfs.xDlSym = DlSym;
    vfs.xDlClose = DlClose;
    vfs.xRandomness = Randomness;
    vfs.xSleep = Sleep;
    vfs.xCurrentTime = CurrentTime;
    vfs.xGetLastError = GetLastError;
    vfs.xCurrentTimeInt64 = CurrentTimeInt64;
    rc = sqlite3_vfs_register(&vfs, /*makeDflt=*/0);
  });
  if (rc != SQLITE_OK) {
    return Status::Internal(std::string("cannot set up the WAL writing layer over SQLite: ") +
                            sqlite3_errstr(rc));
  }
  return Status::Ok();
}

CommitWithoutSync::CommitWithoutSync() {
  ++t_commit_without_sync;
}

CommitWithoutSync::~CommitWithoutSync() {
  --t_commit_without_sync;
}

WalVfsStats GetWalVfsStats() {
  return {g_frames_written.load(), g_writes_out.load(), g_syncs_skipped.load(),
          g_syncs_done.load()};
}

}  // namespace pingma::sql
