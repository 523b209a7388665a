// The two stores' statements (store/sql.h) on real databases: SQLite files, and a
// throw-away PostgreSQL cluster when PINGMA_TEST_PG names one (the sql_test_pg
// entry starts it: tests/integration/with_pg.py). Parameters written $N in any
// order; rows streamed from PostgreSQL one at a time, so that a large result is
// never held whole; a statement started while another streams; a run stopped
// early; parameters left unbound; rows changed; constraint violations.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "store/pg_sql.h"
#include "store/sqlite.h"
#include "test_store.h"

namespace pingma::sql {
namespace {

/// The process's peak resident memory so far (VmHWM), in KiB.
long PeakRssKib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

std::int64_t One(Database& db, const std::string& sql) {
  auto st = db.Prepare(sql);
  REQUIRE(st.ok());
  auto row = (*st)->Step();
  REQUIRE(row.ok());
  REQUIRE(*row);
  return (*st)->Int(0);
}

/// What both stores must do alike, on `db`.
void CheckParametersAndWrites(Database& db) {
  REQUIRE(
      db.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, n INTEGER)").ok());
  auto insert = db.Prepare("INSERT INTO t(id, name, n) VALUES($1, $2, $3)");
  REQUIRE(insert.ok());
  for (int i = 1; i <= 5; ++i) {
    (*insert)->Bind(1, i).Bind(2, "n" + std::to_string(i)).Bind(3, i * 10);
    REQUIRE((*insert)->Run().ok());
  }

  SUBCASE("$N bound by number, whatever the order they stand in, one used twice") {
    auto st = db.Prepare("SELECT id FROM t WHERE n = $2 OR (name = $1 AND id <> $2) ORDER BY id");
    REQUIRE(st.ok());
    (*st)->Bind(1, "n3").Bind(2, 50);
    std::vector<std::int64_t> ids;
    for (;;) {
      auto row = (*st)->Step();
      REQUIRE(row.ok());
      if (!*row) break;
      ids.push_back((*st)->Int(0));
    }
    CHECK(ids == std::vector<std::int64_t>{3, 5});
  }
  SUBCASE("a parameter never bound is NULL") {
    CHECK(One(db, "SELECT CASE WHEN $1 IS NULL THEN 1 ELSE 0 END") == 1);
    auto st = db.Prepare("SELECT count(*) FROM t WHERE ($2 IS NULL OR name = $2) AND id >= $1");
    REQUIRE(st.ok());
    (*st)->Bind(1, 2);
    auto row = (*st)->Step();
    REQUIRE_MESSAGE(row.ok(), row.status().message());
    REQUIRE(*row);
    CHECK((*st)->Int(0) == 4);
  }
  SUBCASE("the rows an UPDATE changed") {
    auto st = db.Prepare("UPDATE t SET n = n + 1 WHERE id > $1");
    REQUIRE(st.ok());
    (*st)->Bind(1, 2);
    REQUIRE((*st)->Run().ok());
    CHECK(db.Changes() == 3);
  }
  SUBCASE("a unique violation is a conflict, and changes nothing") {
    (*insert)->Bind(1, 9).Bind(2, "n1").Bind(3, 0);
    Status s = (*insert)->Run();
    CHECK(s.code() == StatusCode::kConflict);
    CHECK(One(db, "SELECT count(*) FROM t") == 5);
  }
  SUBCASE("a statement started inside another's rows; the outer one goes on") {
    auto outer = db.Prepare("SELECT id FROM t ORDER BY id");
    auto inner = db.Prepare("SELECT n FROM t WHERE id = $1");
    REQUIRE(outer.ok());
    REQUIRE(inner.ok());
    std::int64_t sum = 0, rows = 0;
    for (;;) {
      auto row = (*outer)->Step();
      REQUIRE(row.ok());
      if (!*row) break;
      ++rows;
      (*inner)->Bind(1, (*outer)->Int(0));
      REQUIRE(*(*inner)->Step());
      sum += (*inner)->Int(0);
      (*inner)->Reset();
    }
    CHECK(rows == 5);
    CHECK(sum == 150);
  }
  SUBCASE("a run stopped after its first row leaves the connection usable") {
    auto st = db.Prepare("SELECT id FROM t ORDER BY id");
    REQUIRE(st.ok());
    REQUIRE(*(*st)->Step());
    CHECK((*st)->Int(0) == 1);
    (*st)->Reset();
    CHECK(One(db, "SELECT max(n) FROM t") == 50);
    REQUIRE(*(*st)->Step());  // and runs again from its start
    CHECK((*st)->Int(0) == 1);
  }
}

TEST_SUITE("sqlite") {
  TEST_CASE("SQLite: parameters, writes, nested and stopped runs") {
    registry::TempDb tmp;
    auto db = SqliteDatabase::Open(tmp.path, /*create=*/true, /*read_only=*/false);
    REQUIRE(db.ok());
    CheckParametersAndWrites(**db);
  }
  TEST_CASE("SQLite: ? and ?N still bind by position") {
    registry::TempDb tmp;
    auto db = SqliteDatabase::Open(tmp.path, /*create=*/true, /*read_only=*/false);
    REQUIRE(db.ok());
    auto st = (*db)->Prepare("SELECT ?2 - ?1, ?");
    REQUIRE(st.ok());
    (*st)->Bind(1, 10).Bind(2, 50).Bind(3, 7);
    REQUIRE(*(*st)->Step());
    CHECK((*st)->Int(0) == 40);
    CHECK((*st)->Int(1) == 7);
  }
}

TEST_SUITE("postgresql") {
  std::unique_ptr<PgDatabase> Connect() {
    const char* conninfo = std::getenv("PINGMA_TEST_PG");
    REQUIRE_MESSAGE(conninfo != nullptr, "PINGMA_TEST_PG must name a database");
    auto db = PgDatabase::Open(conninfo);
    REQUIRE_MESSAGE(db.ok(), db.status().message());
    REQUIRE((*db)->Exec("DROP TABLE IF EXISTS t").ok());
    return std::move(*db);
  }

  TEST_CASE("PostgreSQL: parameters, writes, nested and stopped runs") {
    auto db = Connect();
    CheckParametersAndWrites(*db);
  }

  TEST_CASE("PostgreSQL: a large result streams; it is never held whole") {
    auto db = Connect();
    // 1,000,000 rows of 200 bytes: 200 MB as one result, one row at a time here.
    auto st = db->Prepare("SELECT g, repeat('x', 200) FROM generate_series(1, $1) g");
    REQUIRE(st.ok());
    (*st)->Bind(1, std::int64_t{1000000});
    const long before = PeakRssKib();
    REQUIRE(before > 0);
    std::int64_t rows = 0, sum = 0;
    for (;;) {
      auto row = (*st)->Step();
      REQUIRE(row.ok());
      if (!*row) break;
      ++rows;
      sum += (*st)->Int(0);
      if (rows == 1) CHECK((*st)->Text(1).size() == 200);
    }
    CHECK(rows == 1000000);
    CHECK(sum == std::int64_t{1000000} * 1000001 / 2);
    const long grown_kib = PeakRssKib() - before;
    MESSAGE("peak memory grew by ", grown_kib, " KiB over 200 MB of rows");
    CHECK(grown_kib < 32 * 1024);
  }

  TEST_CASE("PostgreSQL: a result stopped early is drained, and the transaction lives on") {
    auto db = Connect();
    REQUIRE(db->Exec("BEGIN").ok());
    auto st = db->Prepare("SELECT g FROM generate_series(1, 100000) g");
    REQUIRE(st.ok());
    REQUIRE(*(*st)->Step());
    (*st)->Reset();
    CHECK(One(*db, "SELECT 41 + 1") == 42);
    CHECK(db->Exec("COMMIT").ok());
  }
}

}  // namespace
}  // namespace pingma::sql
