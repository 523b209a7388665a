#include "store/sqlite.h"

namespace pingma::sql {

Result<std::unique_ptr<SqliteDatabase>> SqliteDatabase::Open(const std::string& path, bool create,
                                                             bool read_only, const char* vfs) {
  sqlite::OpenOptions options;
  options.create = create;
  options.read_only = read_only;
  options.vfs = vfs;
  // synchronous=FULL: every commit is fsync'ed to the WAL before it returns, so an
  // acknowledged record survives power loss (NORMAL alone would only survive a
  // crash of the process). The registry's writer leaves its commits' syncs to its
  // syncer threads, which make each commit durable before it is acknowledged (see
  // Store::SyncLoop and wal_vfs.h).
  options.durability = sqlite::Durability::kPowerLoss;
  options.busy_timeout_ms = 10000;
  options.foreign_keys = true;
  options.mmap_size = 1 << 30;
  // Checkpoints are run by the writer after a commit, every 1000 WAL pages: by
  // SQLite itself, or by the registry's Store, which runs them just after the
  // commit so that their syncs stay real ones. Measured: a separate checkpointing
  // thread let the WAL grow without bound under steady writes (passive checkpoints
  // never caught up), and even with a backstop its I/O on a large file doubled the
  // fill-check p99.
  options.journal_size_limit = 64 << 20;
  auto db = sqlite::Database::Open(path, options);
  if (!db.ok()) return db.status();
  return std::unique_ptr<SqliteDatabase>(new SqliteDatabase(std::move(*db)));
}

Result<std::unique_ptr<SqliteStatement>> SqliteDatabase::PrepareSqlite(std::string_view sql) {
  auto st = sqlite::Statement::Prepare(db_, sql);
  if (!st.ok()) return st.status();
  return std::unique_ptr<SqliteStatement>(new SqliteStatement(std::move(*st)));
}

Result<std::unique_ptr<Statement>> SqliteDatabase::Prepare(std::string_view sql) {
  auto st = PrepareSqlite(sql);
  if (!st.ok()) return st.status();
  return std::unique_ptr<Statement>(std::move(*st));
}

}  // namespace pingma::sql
