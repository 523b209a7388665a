// The writer's VFS (wal_vfs.h): a commit's WAL frames reach the file in a few
// writes; every commit is in the file before another connection can see it,
// whatever its size (the base VFS takes at most 128 KiB - 1 bytes a write);
// commit syncs are left out only inside a CommitWithoutSync scope, and the WAL
// header written when the WAL starts afresh is synced for real even there.
#include <doctest/doctest.h>
#include <sqlite3.h>

#include <memory>
#include <string>

#include "store/sqlite.h"
#include "store/wal_vfs.h"
#include "test_store.h"

namespace pingma::sql {
namespace {

using registry::TempDb;

std::unique_ptr<SqliteDatabase> OpenWriter(const std::string& path) {
  REQUIRE(RegisterWalVfs().ok());
  auto db = SqliteDatabase::Open(path, /*create=*/true, /*read_only=*/false, kWalVfsName);
  REQUIRE(db.ok());
  // What the registry's writer does: no automatic checkpoints inside a commit.
  sqlite3_wal_autocheckpoint((*db)->get(), 0);
  REQUIRE((*db)->Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT NOT NULL)").ok());
  return std::move(*db);
}

/// Inserts `rows` rows of `size` bytes each in one transaction, committed in a
/// CommitWithoutSync scope (or not).
void Commit(SqliteDatabase& db, int first, int rows, size_t size, bool without_sync) {
  REQUIRE(db.Exec("BEGIN IMMEDIATE").ok());
  auto st = db.Prepare("INSERT INTO t(id, body) VALUES($1, $2)");
  REQUIRE(st.ok());
  for (int i = first; i < first + rows; ++i) {
    const std::string body(size, static_cast<char>('a' + i % 26));
    (*st)->Bind(1, i).Bind(2, body);
    REQUIRE((*st)->Run().ok());
  }
  if (without_sync) {
    CommitWithoutSync scope;
    REQUIRE(db.Exec("COMMIT").ok());
  } else {
    REQUIRE(db.Exec("COMMIT").ok());
  }
}

/// What another connection, on the default VFS, sees: the rows and their bytes.
std::pair<std::int64_t, std::int64_t> SeenByReader(const std::string& path) {
  auto db = SqliteDatabase::Open(path, /*create=*/false, /*read_only=*/true);
  REQUIRE(db.ok());
  auto st = (*db)->Prepare("SELECT COUNT(*), TOTAL(LENGTH(body)) FROM t");
  REQUIRE(st.ok());
  auto row = (*st)->Step();
  REQUIRE(row.ok());
  REQUIRE(*row);
  auto check = (*db)->Prepare("PRAGMA integrity_check");
  REQUIRE(check.ok());
  REQUIRE(*(*check)->Step());
  CHECK((*check)->Text(0) == "ok");
  return {(*st)->Int(0), static_cast<std::int64_t>((*st)->Double(1))};
}

TEST_CASE("a commit's WAL frames go out in one write, and its sync is left to the caller") {
  TempDb tmp;
  std::unique_ptr<SqliteDatabase> writer = OpenWriter(tmp.path);
  SqliteDatabase& db = *writer;
  Commit(db, 0, 1, 10, /*without_sync=*/true);  // the WAL's first header is behind us

  const WalVfsStats before = GetWalVfsStats();
  // About 40 pages of rows: more than 80 writes of frames and their headers.
  Commit(db, 1, 40, 3000, /*without_sync=*/true);
  const WalVfsStats after = GetWalVfsStats();
  const long long frames = after.frames_written - before.frames_written;
  const long long out = after.writes_out - before.writes_out;
  CHECK(frames >= 80);
  // 40 frames of 4 KiB and 24 bytes go out in 64 KiB writes: 3, not 80.
  CHECK(out >= 1);
  CHECK(out <= 4);
  CHECK(after.syncs_skipped - before.syncs_skipped == 1);
  CHECK(after.syncs_done == before.syncs_done);
  CHECK(SeenByReader(tmp.path) == std::make_pair(std::int64_t{41}, std::int64_t{10 + 40 * 3000}));
}

TEST_CASE("outside a CommitWithoutSync scope every commit is synced") {
  TempDb tmp;
  std::unique_ptr<SqliteDatabase> writer = OpenWriter(tmp.path);
  SqliteDatabase& db = *writer;
  Commit(db, 0, 1, 10, /*without_sync=*/false);
  const WalVfsStats before = GetWalVfsStats();
  Commit(db, 1, 5, 100, /*without_sync=*/false);
  Commit(db, 6, 5, 100, /*without_sync=*/false);
  const WalVfsStats after = GetWalVfsStats();
  CHECK(after.syncs_done - before.syncs_done == 2);
  CHECK(after.syncs_skipped == before.syncs_skipped);
}

TEST_CASE("the WAL header is synced for real when the WAL starts afresh, even in the scope") {
  TempDb tmp;
  std::unique_ptr<SqliteDatabase> writer = OpenWriter(tmp.path);
  SqliteDatabase& db = *writer;
  Commit(db, 0, 10, 100, /*without_sync=*/true);
  // Everything into the database: the next commit writes a new WAL header.
  REQUIRE(sqlite3_wal_checkpoint_v2(db.get(), nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr,
                                    nullptr) == SQLITE_OK);
  const WalVfsStats before = GetWalVfsStats();
  Commit(db, 10, 10, 100, /*without_sync=*/true);
  const WalVfsStats after = GetWalVfsStats();
  CHECK(after.syncs_done - before.syncs_done == 1);        // the new header, at once
  CHECK(after.syncs_skipped - before.syncs_skipped == 1);  // the commit's, later
  Commit(db, 20, 10, 100, /*without_sync=*/true);
  CHECK(GetWalVfsStats().syncs_skipped - after.syncs_skipped == 1);
  CHECK(SeenByReader(tmp.path).first == 30);
}

TEST_CASE("commits of every size are whole in the file when other connections look") {
  TempDb tmp;
  std::unique_ptr<SqliteDatabase> writer = OpenWriter(tmp.path);
  SqliteDatabase& db = *writer;
  std::int64_t rows = 0;
  std::int64_t bytes = 0;
  // One row; a few pages; past the base VFS's 128 KiB a write; past the 1 MiB
  // at which gathered writes go out early; and a checkpoint on the way.
  const std::pair<int, size_t> commits[] = {{1, 10},     {3, 2000},   {40, 3000}, {33, 4000},
                                            {400, 3000}, {1, 200000}, {2, 10},    {700, 1500}};
  int round = 0;
  for (const auto& [n, size] : commits) {
    Commit(db, static_cast<int>(rows), n, size, /*without_sync=*/true);
    rows += n;
    bytes += static_cast<std::int64_t>(n) * static_cast<std::int64_t>(size);
    CHECK(SeenByReader(tmp.path) == std::make_pair(rows, bytes));
    if (++round == 4) {
      REQUIRE(sqlite3_wal_checkpoint_v2(db.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr,
                                        nullptr) == SQLITE_OK);
    }
  }
  // And after the writer is gone, from the files alone.
  writer.reset();
  CHECK(SeenByReader(tmp.path) == std::make_pair(rows, bytes));
}

}  // namespace
}  // namespace pingma::sql
