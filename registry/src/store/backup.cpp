// `pingma-registry backup`: a SQLite store copied while registries serve it, with
// SQLite's online backup, then checked and only then given its name.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <system_error>
#include <thread>

#include <fmt/format.h>

#include "pingma/common/sqlite.h"
#include "pingma/registry/registry.h"
#include "store/chain.h"
#include "store/pg.h"

namespace pingma::registry {
namespace {

// Pages copied at a step: 16 MiB of 4 KiB pages, so that progress moves.
constexpr int kPagesPerStep = 4096;
// How long a step may find the copy's file locked (only by another process that
// opened it, as nothing should) before the backup gives up.
constexpr auto kMostBusy = std::chrono::seconds(10);

bool Exists(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0;
}

Status SystemError(const std::string& what) {
  return Status::IoError(fmt::format("{}: {}", what, std::generic_category().message(errno)));
}

Status Named(const Status& status, const std::string& what) {
  return Status(status.code(), fmt::format("{}: {}", what, status.message()));
}

// fsync of a file, or of the folder that holds `path` when `folder` is set.
Status Sync(const std::string& path, bool folder) {
  std::string target = path;
  if (folder) {
    const auto slash = path.rfind('/');
    target = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  }
  const int fd = ::open(target.c_str(), O_RDONLY | O_CLOEXEC | (folder ? O_DIRECTORY : 0));
  if (fd < 0) return SystemError("cannot open " + target + " to sync it");
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  errno = saved;
  return rc == 0 ? Status::Ok() : SystemError("cannot sync " + target);
}

// The page copy itself: one read transaction on `from` for the whole copy, so that
// every step copies the same snapshot (a writer's commits meanwhile go to the WAL
// and are not in it), and the registries writing go on unhindered.
Status CopyPages(sqlite::Database& from, sqlite::Database& to, const CopyProgress& progress) {
  PINGMA_RETURN_IF_ERROR(from.Exec("BEGIN"));
  // A read transaction starts at its first read: this one, before the first step.
  auto probe = sqlite::Statement::Prepare(
      from, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'events'");
  if (!probe.ok()) return probe.status();
  auto row = probe->Step();
  if (!row.ok()) return row.status();
  if (!*row || probe->Int(0) == 0) {
    (void)from.Exec("ROLLBACK");
    return Status::NotFound("the file holds no pingma store (it has no events table)");
  }
  sqlite3_backup* backup = sqlite3_backup_init(to.get(), "main", from.get(), "main");
  if (backup == nullptr) {
    (void)from.Exec("ROLLBACK");
    return to.Error("cannot start the copy");
  }
  auto busy_since = std::chrono::steady_clock::time_point{};
  int rc = SQLITE_OK;
  while (true) {
    rc = sqlite3_backup_step(backup, kPagesPerStep);
    const int total = sqlite3_backup_pagecount(backup);
    if (progress) progress("copying pages", total - sqlite3_backup_remaining(backup), total);
    if (rc == SQLITE_OK) {
      busy_since = {};
      continue;
    }
    if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED) break;
    const auto now = std::chrono::steady_clock::now();
    if (busy_since == std::chrono::steady_clock::time_point{}) busy_since = now;
    if (now - busy_since > kMostBusy) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  sqlite3_backup_finish(backup);
  (void)from.Exec("COMMIT");
  if (rc != SQLITE_DONE) {
    return Status::IoError(fmt::format("the copy stopped: {}", sqlite3_errstr(rc)));
  }
  return Status::Ok();
}

// The copy on its own: one file, in rollback-journal mode (a registry that opens it
// puts it back in WAL mode), whose every page SQLite can read.
Status Settle(sqlite::Database& copy) {
  PINGMA_RETURN_IF_ERROR(copy.Exec("PRAGMA journal_mode=DELETE"));
  auto check = sqlite::Statement::Prepare(copy, "PRAGMA integrity_check");
  if (!check.ok()) return check.status();
  auto row = check->Step();
  if (!row.ok()) return row.status();
  const std::string said = *row ? check->Text(0) : std::string("no answer");
  if (said != "ok") {
    return Status::Corruption(fmt::format("the copy fails SQLite's integrity check: {}", said));
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> Backup(const std::string& db_path, const std::string& to,
                           const CopyProgress& progress) {
  if (pg::IsConnectionString(db_path)) {
    return Status::Invalid(
        "backup copies a SQLite store; back up PostgreSQL with pg_basebackup and an archive "
        "of its WAL (docs/backup.md)");
  }
  if (to.empty()) return Status::Invalid("--to needs a file name");
  if (!Exists(db_path)) {
    return Status::NotFound(
        fmt::format("no database at {}: {}", db_path, std::generic_category().message(errno)));
  }
  if (Exists(to)) {
    return Status::Invalid(
        fmt::format("{} exists: a backup is written to a new file, never over one", to));
  }
  const std::string partial = to + ".partial";
  if (Exists(partial)) {
    return Status::Invalid(fmt::format(
        "{} exists: another backup is writing it, or one was cut short (then remove it)", partial));
  }
  const auto started = std::chrono::steady_clock::now();

  Status copied;
  {
    sqlite::OpenOptions reading;
    reading.create = false;
    reading.read_only = true;
    auto from = sqlite::Database::Open(db_path, reading);
    if (!from.ok()) return Named(from.status(), "cannot read " + db_path);
    sqlite::OpenOptions writing;
    writing.wal = false;  // the copy is one file; Settle makes sure of it
    auto copy = sqlite::Database::Open(partial, writing);
    if (!copy.ok()) return Named(copy.status(), "cannot write " + partial);
    copied = CopyPages(*from, *copy, progress);
    if (copied.ok()) copied = Settle(*copy);
  }
  // The copy is given its name only once it has been read back whole: SQLite's pages,
  // then the chain and the log's tree as `verify` checks them.
  std::string verified;
  Status kept = copied;
  if (kept.ok()) {
    if (progress) progress("verifying", 0, 1);
    auto said = VerifyChain(partial);
    if (said.ok()) {
      verified = *said;
      if (progress) progress("verifying", 1, 1);
    } else {
      kept = Named(said.status(), "the copy does not verify");
    }
  }
  if (kept.ok()) kept = Sync(partial, /*folder=*/false);
  if (kept.ok() && ::rename(partial.c_str(), to.c_str()) != 0) {
    kept = SystemError(fmt::format("cannot rename {} to {}", partial, to));
  }
  if (kept.ok()) kept = Sync(to, /*folder=*/true);
  if (!kept.ok()) {
    for (const char* suffix : {"", "-journal", "-wal", "-shm"}) {
      ::unlink((partial + suffix).c_str());
    }
    return Status(kept.code(),
                  fmt::format("no backup of {} was made: {}", db_path, kept.message()));
  }
  struct stat info {};
  const double mib =
      ::stat(to.c_str(), &info) == 0 ? static_cast<double>(info.st_size) / 1048576.0 : 0;
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return fmt::format("backed up {} to {} ({:.1f} MiB in {:.1f} s); the copy: {}", db_path, to, mib,
                     seconds, verified);
}

}  // namespace pingma::registry
