#include "store/sqlite.h"

#include <cstdlib>

#include <fmt/format.h>

namespace pingma::sql {

Result<std::unique_ptr<SqliteDatabase>> SqliteDatabase::Open(const std::string& path, bool create,
                                                             bool read_only, const char* vfs) {
  sqlite3* raw = nullptr;
  int flags = read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (create && !read_only) flags |= SQLITE_OPEN_CREATE;
  flags |= SQLITE_OPEN_NOMUTEX;  // one thread per connection, by contract
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, vfs);
  std::unique_ptr<SqliteDatabase> db(new SqliteDatabase(raw));
  if (rc != SQLITE_OK) {
    return Status::IoError(fmt::format("cannot open database {}: {}", path,
                                       raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  sqlite3_busy_timeout(raw, 10000);
  // synchronous=FULL: every commit is fsync'ed to the WAL before it returns, so an
  // acknowledged record survives power loss (NORMAL alone would only survive a
  // crash of the process). The registry's writer leaves its commits' syncs to its
  // syncer threads, which make each commit durable before it is acknowledged (see
  // Store::SyncLoop and wal_vfs.h).
  PINGMA_RETURN_IF_ERROR(
      db->Exec("PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL; PRAGMA mmap_size=1073741824;"));
  if (!read_only) {
    // Checkpoints are run by the writer after a commit, every 1000 WAL pages: by
    // SQLite itself, or by the registry's Store, which runs them just after the
    // commit so that their syncs stay real ones. Measured: a separate
    // checkpointing thread let the WAL grow without bound under steady writes
    // (passive checkpoints never caught up), and even with a backstop its I/O on a
    // large file doubled the fill-check p99.
    PINGMA_RETURN_IF_ERROR(
        db->Exec("PRAGMA journal_mode=WAL; PRAGMA journal_size_limit=67108864;"));
  }
  return db;
}

SqliteDatabase::~SqliteDatabase() {
  if (db_) sqlite3_close_v2(db_);
}

Status SqliteDatabase::Exec(std::string_view sql) {
  char* err = nullptr;
  const std::string text(sql);
  if (sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    Status s = Status::IoError(fmt::format("sqlite: {}", err ? err : "unknown error"));
    sqlite3_free(err);
    return s;
  }
  return Status::Ok();
}

Status SqliteDatabase::Error(std::string_view what) const {
  return Status::IoError(fmt::format("{}: {}", what, sqlite3_errmsg(db_)));
}

Result<std::unique_ptr<SqliteStatement>> SqliteDatabase::PrepareSqlite(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                         &stmt, nullptr) != SQLITE_OK) {
    return Error(fmt::format("prepare '{}'", sql.substr(0, 60)));
  }
  return std::unique_ptr<SqliteStatement>(new SqliteStatement(db_, stmt));
}

Result<std::unique_ptr<Statement>> SqliteDatabase::Prepare(std::string_view sql) {
  auto st = PrepareSqlite(sql);
  if (!st.ok()) return st.status();
  return std::unique_ptr<Statement>(std::move(*st));
}

SqliteStatement::SqliteStatement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {
  // $N by name; `?` and `?N` are numbered as they stand.
  const int n = sqlite3_bind_parameter_count(stmt_);
  index_.assign(static_cast<size_t>(n) + 1, 0);
  for (int k = 1; k <= n; ++k) {
    const char* name = sqlite3_bind_parameter_name(stmt_, k);
    int number = k;
    if (name != nullptr && name[0] == '$') number = std::atoi(name + 1);
    if (number <= 0) continue;
    if (static_cast<size_t>(number) >= index_.size()) index_.resize(number + 1, 0);
    index_[number] = k;
  }
}

SqliteStatement::~SqliteStatement() {
  if (stmt_) sqlite3_finalize(stmt_);
}

Statement& SqliteStatement::Bind(int i, std::string_view text) {
  sqlite3_bind_text(stmt_, Index(i), text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return *this;
}
Statement& SqliteStatement::BindUnowned(int i, std::string_view text) {
  sqlite3_bind_text(stmt_, Index(i), text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
  return *this;
}
Statement& SqliteStatement::BindBlobUnowned(int i, std::string_view bytes) {
  sqlite3_bind_blob(stmt_, Index(i), bytes.data(), static_cast<int>(bytes.size()), SQLITE_STATIC);
  return *this;
}
Statement& SqliteStatement::Bind(int i, std::int64_t value) {
  sqlite3_bind_int64(stmt_, Index(i), value);
  return *this;
}
Statement& SqliteStatement::Bind(int i, double value) {
  sqlite3_bind_double(stmt_, Index(i), value);
  return *this;
}
Statement& SqliteStatement::BindBlob(int i, const void* data, size_t size) {
  sqlite3_bind_blob(stmt_, Index(i), data, static_cast<int>(size), SQLITE_TRANSIENT);
  return *this;
}
Statement& SqliteStatement::BindNull(int i) {
  sqlite3_bind_null(stmt_, Index(i));
  return *this;
}

Result<bool> SqliteStatement::Step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  const int ext = sqlite3_extended_errcode(db_);
  std::string msg = sqlite3_errmsg(db_);
  sqlite3_reset(stmt_);
  if ((ext & 0xff) == SQLITE_CONSTRAINT) return Status::Conflict(msg);
  return Status::IoError("sqlite: " + msg);
}

void SqliteStatement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::string SqliteStatement::Text(int col) const {
  const auto* p = sqlite3_column_text(stmt_, col);
  return p ? std::string(reinterpret_cast<const char*>(p),
                         static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
           : std::string();
}

std::string_view SqliteStatement::Blob(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  return p ? std::string_view(static_cast<const char*>(p),
                              static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
           : std::string_view();
}

}  // namespace pingma::sql
