// The SQLite wrapper on real files: opening (created, refused, read-only, not a
// database), the pragmas each option sets, every bind and column kind, parameters
// written `?`, `?N` and `$N`, errors as Status (a constraint a Conflict), the
// transaction, the schema-version check and PrepareAll.
#include "pingma/common/sqlite.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>

namespace fs = std::filesystem;
namespace sqlite = pingma::sqlite;
using pingma::StatusCode;

namespace {

// One test case's directory, made fresh and removed with its files at the end.
class Scratch {
 public:
  Scratch() : dir_(fs::temp_directory_path() / "pingma-sqlite-XXXXXX") {
    std::string pattern = dir_.string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    dir_ = pattern;
  }
  ~Scratch() { static_cast<void>(fs::remove_all(dir_, ignored_)); }
  std::string operator/(const char* name) const { return (dir_ / name).string(); }

 private:
  fs::path dir_;
  std::error_code ignored_;
};

sqlite::Database OpenOrFail(const std::string& path, const sqlite::OpenOptions& options = {}) {
  auto db = sqlite::Database::Open(path, options);
  REQUIRE_MESSAGE(db.ok(), db.status().ToString());
  return std::move(*db);
}

sqlite::Statement PrepareOrFail(const sqlite::Database& db, const char* sql) {
  auto st = sqlite::Statement::Prepare(db, sql);
  REQUIRE_MESSAGE(st.ok(), st.status().ToString());
  return std::move(*st);
}

// The one value `sql` returns, as text.
std::string Value(const sqlite::Database& db, const char* sql) {
  sqlite::Statement st = PrepareOrFail(db, sql);
  auto row = st.Step();
  REQUIRE_MESSAGE(row.ok(), row.status().ToString());
  REQUIRE(*row);
  return st.Text(0);
}

}  // namespace

TEST_CASE("Open creates a file, or refuses to when told not to") {
  Scratch dir;
  sqlite::OpenOptions no_create;
  no_create.create = false;
  auto missing = sqlite::Database::Open(dir / "missing.db", no_create);
  REQUIRE(!missing.ok());
  CHECK(missing.status().code() == StatusCode::kIoError);
  CHECK(missing.status().message() ==
        "cannot open database " + (dir / "missing.db") + ": unable to open database file");
  CHECK(!fs::exists(dir / "missing.db"));

  sqlite::OpenOptions read_only;
  read_only.read_only = true;  // never creates, even with create set
  CHECK(!sqlite::Database::Open(dir / "missing.db", read_only).ok());
  CHECK(!fs::exists(dir / "missing.db"));
  CHECK(!sqlite::Database::Open(dir / "no/such/dir/x.db").ok());

  sqlite::OpenOptions unknown_vfs;
  unknown_vfs.vfs = "no-such-vfs";
  auto no_vfs = sqlite::Database::Open(dir / "x.db", unknown_vfs);
  REQUIRE(!no_vfs.ok());
  CHECK(no_vfs.status().message().find("no such vfs") != std::string::npos);

  sqlite::OpenOptions unix_vfs;
  unix_vfs.vfs = "unix";
  sqlite::Database db = OpenOrFail(dir / "x.db", unix_vfs);
  CHECK(db.get() != nullptr);
  CHECK(fs::exists(dir / "x.db"));
  REQUIRE(db.Exec("CREATE TABLE t(v)").ok());
  CHECK(OpenOrFail(dir / "x.db", no_create).Exec("INSERT INTO t VALUES(1)").ok());
}

TEST_CASE("a read-only connection reads and refuses to write") {
  Scratch dir;
  {
    sqlite::Database db = OpenOrFail(dir / "r.db");
    REQUIRE(db.Exec("CREATE TABLE t(v); INSERT INTO t VALUES('kept')").ok());
  }
  sqlite::OpenOptions read_only;
  read_only.read_only = true;
  sqlite::Database db = OpenOrFail(dir / "r.db", read_only);
  CHECK(Value(db, "SELECT v FROM t") == "kept");
  const pingma::Status write = db.Exec("INSERT INTO t VALUES('lost')");
  CHECK(write.code() == StatusCode::kIoError);
  CHECK(write.message() == "sqlite: attempt to write a readonly database");
  CHECK(Value(db, "PRAGMA journal_mode") == "wal");  // the file's, as its writer left it
}

TEST_CASE("a file that is not a database is refused at Open") {
  Scratch dir;
  const std::string path = dir / "text.db";
  FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  std::fputs("this is not an SQLite database, just some text that is long enough......\n", f);
  std::fclose(f);
  for (const bool read_only : {false, true}) {
    CAPTURE(read_only);
    sqlite::OpenOptions options;
    options.read_only = read_only;
    auto db = sqlite::Database::Open(path, options);
    REQUIRE(!db.ok());
    CHECK(db.status().code() == StatusCode::kIoError);
    CHECK(db.status().message() == "sqlite: file is not a database");
  }
}

TEST_CASE("each option sets its pragma") {
  struct Row {
    const char* what;
    sqlite::OpenOptions options;
    const char* synchronous;  // 2 FULL, 1 NORMAL
    const char* journal_mode;
    const char* foreign_keys;
    const char* busy_timeout;
    const char* mmap_size;
    const char* journal_size_limit;
  };
  sqlite::OpenOptions station;  // the defaults: the station's fill journal
  sqlite::OpenOptions replica;
  replica.durability = sqlite::Durability::kCrash;
  sqlite::OpenOptions registry;  // the registry's writer
  registry.busy_timeout_ms = 10000;
  registry.foreign_keys = true;
  registry.mmap_size = 1073741824;
  registry.journal_size_limit = 67108864;
  sqlite::OpenOptions rollback;
  rollback.wal = false;
  const Row rows[] = {
      {"defaults", station, "2", "wal", "0", "5000", "0", "-1"},
      {"kCrash", replica, "1", "wal", "0", "5000", "0", "-1"},
      {"registry", registry, "2", "wal", "1", "10000", "1073741824", "67108864"},
      {"no WAL", rollback, "2", "delete", "0", "5000", "0", "-1"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.what);
    Scratch dir;
    sqlite::Database db = OpenOrFail(dir / "p.db", row.options);
    CHECK(Value(db, "PRAGMA synchronous") == row.synchronous);
    CHECK(Value(db, "PRAGMA journal_mode") == row.journal_mode);
    CHECK(Value(db, "PRAGMA foreign_keys") == row.foreign_keys);
    CHECK(Value(db, "PRAGMA busy_timeout") == row.busy_timeout);
    CHECK(Value(db, "PRAGMA mmap_size") == row.mmap_size);
    CHECK(Value(db, "PRAGMA journal_size_limit") == row.journal_size_limit);
  }
}

TEST_CASE("every bind kind reads back as its column kind") {
  Scratch dir;
  sqlite::Database db = OpenOrFail(dir / "b.db");
  REQUIRE(db.Exec("CREATE TABLE t(n INTEGER PRIMARY KEY, v)").ok());
  sqlite::Statement put = PrepareOrFail(db, "INSERT INTO t(n, v) VALUES(?, ?)");
  const std::string bytes("a\0b\xff", 4);
  const std::string unowned_text = "not copied";
  const std::string unowned_bytes("\0\1", 2);
  const std::int64_t big = std::numeric_limits<std::int64_t>::min();
  put.Reset().Bind(1, 1).Bind(2, std::string_view("文本 text"));
  REQUIRE(put.Run().ok());
  put.Reset().Bind(1, 2).Bind(2, big);
  REQUIRE(put.Run().ok());
  put.Reset().Bind(1, 3).Bind(2, -7);
  REQUIRE(put.Run().ok());
  put.Reset().Bind(1, 4).Bind(2, 0.25);
  REQUIRE(put.Run().ok());
  put.Reset().Bind(1, 5).BindBlob(2, bytes.data(), bytes.size());
  REQUIRE(put.Run().ok());
  put.Reset().Bind(1, 6).BindUnowned(2, unowned_text);
  REQUIRE(put.Run().ok());
  put.Reset().Bind(1, 7).BindBlobUnowned(2, unowned_bytes);
  REQUIRE(put.Run().ok());
  put.Reset().Bind(1, 8).BindNull(2);
  REQUIRE(put.Run().ok());
  put.Reset().Bind(1, 9).Bind(2, std::optional<std::string>("some"));
  REQUIRE(put.Run().ok());
  put.Reset().Bind(1, 10).Bind(2, std::optional<std::int64_t>());
  REQUIRE(put.Run().ok());
  put.Reset().Bind(1, 11);  // a parameter left unbound is NULL
  REQUIRE(put.Run().ok());
  CHECK(db.Changes() == 1);

  sqlite::Statement get = PrepareOrFail(db, "SELECT n, v FROM t ORDER BY n");
  auto next = [&get] {
    auto row = get.Step();
    REQUIRE_MESSAGE(row.ok(), row.status().ToString());
    REQUIRE(*row);
    CHECK(get.Columns() == 2);
  };
  next();
  CHECK(get.Type(1) == SQLITE_TEXT);
  CHECK(get.Text(1) == "文本 text");
  CHECK(get.OptText(1) == std::optional<std::string>("文本 text"));
  next();
  CHECK(get.Type(1) == SQLITE_INTEGER);
  CHECK(get.Int(1) == big);
  next();
  CHECK(get.Int(1) == -7);
  next();
  CHECK(get.Type(1) == SQLITE_FLOAT);
  CHECK(get.Double(1) == 0.25);
  next();
  CHECK(get.Type(1) == SQLITE_BLOB);
  CHECK(get.Blob(1) == bytes);
  next();
  CHECK(get.Text(1) == unowned_text);
  next();
  CHECK(get.Type(1) == SQLITE_BLOB);
  CHECK(get.Blob(1) == unowned_bytes);
  for (const bool some : {false, true, false, false}) {
    next();
    CHECK(get.IsNull(1) == !some);
    CHECK(get.OptText(1) == (some ? std::optional<std::string>("some") : std::nullopt));
  }
  CHECK(get.Type(1) == SQLITE_NULL);
  CHECK(get.Text(1).empty());
  CHECK(get.Blob(1).empty());
  auto done = get.Step();
  REQUIRE(done.ok());
  CHECK(!*done);
}

TEST_CASE("parameters are bound by number however the SQL writes them") {
  Scratch dir;
  sqlite::Database db = OpenOrFail(dir / "n.db");
  struct Row {
    const char* sql;
    const char* expected;  // with 1 bound to "a", 2 to "b", 3 to "c"
  };
  const Row rows[] = {
      {"SELECT ? || ? || ?", "abc"},
      {"SELECT ?2 || ?1 || ?3", "bac"},
      {"SELECT ?1 || ?1 || ?3", "aac"},
      {"SELECT $1 || $2 || $3", "abc"},
      {"SELECT $2 || $1 || $3", "bac"},  // $2 first: SQLite's index 1
      {"SELECT $3 || $2 || $1", "cba"},
      {"SELECT $1 || $2 || $1 || $3", "abac"},  // $1 twice is one parameter
      {"SELECT $3 || $3", "cc"},                // $1 and $2 not used: ignored
  };
  for (const Row& row : rows) {
    CAPTURE(row.sql);
    sqlite::Statement st = PrepareOrFail(db, row.sql);
    st.Bind(1, "a").Bind(2, "b").Bind(3, "c").Bind(4, "never");
    auto got = st.Step();
    REQUIRE(got.ok());
    REQUIRE(*got);
    CHECK(st.Text(0) == row.expected);
  }
  // And across uses, Reset clearing what was bound.
  sqlite::Statement st = PrepareOrFail(db, "SELECT $2, $1 IS NULL");
  st.Reset().Bind(2, 42).Bind(1, 1);
  REQUIRE(*st.Step());
  CHECK(st.Int(0) == 42);
  CHECK(st.Int(1) == 0);
  st.Reset().Bind(2, 43);
  REQUIRE(*st.Step());
  CHECK(st.Int(0) == 43);
  CHECK(st.Int(1) == 1);
}

TEST_CASE("a constraint violated is a Conflict with SQLite's message") {
  Scratch dir;
  sqlite::OpenOptions options;
  options.foreign_keys = true;
  sqlite::Database db = OpenOrFail(dir / "c.db", options);
  REQUIRE(db.Exec("CREATE TABLE owners(id TEXT PRIMARY KEY);"
                  "CREATE TABLE t(k TEXT UNIQUE, n INTEGER NOT NULL CHECK(n > 0),"
                  "  owner TEXT REFERENCES owners(id));"
                  "INSERT INTO owners VALUES('o')")
              .ok());
  sqlite::Statement put = PrepareOrFail(db, "INSERT INTO t(k, n, owner) VALUES($1, $2, $3)");
  REQUIRE(put.Reset().Bind(1, "k1").Bind(2, 1).Bind(3, "o").Run().ok());
  struct Row {
    const char* what;
    const char* key;
    std::optional<std::int64_t> n;
    const char* owner;
    const char* message;
  };
  const Row rows[] = {
      {"unique", "k1", 1, "o", "UNIQUE constraint failed: t.k"},
      {"not null", "k2", std::nullopt, "o", "NOT NULL constraint failed: t.n"},
      {"check", "k2", 0, "o", "CHECK constraint failed: n > 0"},
      {"foreign key", "k2", 1, "nobody", "FOREIGN KEY constraint failed"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.what);
    const pingma::Status s = put.Reset().Bind(1, row.key).Bind(2, row.n).Bind(3, row.owner).Run();
    CHECK(s.code() == StatusCode::kConflict);
    CHECK(s.message() == row.message);
  }
  const pingma::Status exec = db.Exec("INSERT INTO t(k, n) VALUES('k1', 1)");
  CHECK(exec.code() == StatusCode::kConflict);
  CHECK(exec.message() == "UNIQUE constraint failed: t.k");
  // The statement is usable again after its error.
  REQUIRE(put.Reset().Bind(1, "k2").Bind(2, 2).Bind(3, "o").Run().ok());
  CHECK(Value(db, "SELECT count(*) FROM t") == "2");
}

TEST_CASE("other errors are IoErrors with SQLite's message") {
  Scratch dir;
  sqlite::Database db = OpenOrFail(dir / "e.db");
  auto bad = sqlite::Statement::Prepare(db, "SELEC 1");
  REQUIRE(!bad.ok());
  CHECK(bad.status().code() == StatusCode::kIoError);
  CHECK(bad.status().message() == "prepare 'SELEC 1': near \"SELEC\": syntax error");
  CHECK(db.Exec("DROP TABLE absent").message() == "sqlite: no such table: absent");
  CHECK(db.Error("reading").message() == "reading: no such table: absent");

  // Another connection holding the write lock: SQLITE_BUSY once the timeout ends.
  sqlite::OpenOptions impatient;
  impatient.busy_timeout_ms = 0;
  sqlite::Database other = OpenOrFail(dir / "e.db", impatient);
  sqlite::Transaction held(&db);
  REQUIRE(held.Begin().ok());
  sqlite::Transaction refused(&other);
  const pingma::Status busy = refused.Begin();
  CHECK(busy.code() == StatusCode::kIoError);
  CHECK(busy.message() == "sqlite: database is locked");
}

TEST_CASE("a transaction rolls back unless committed") {
  Scratch dir;
  sqlite::Database db = OpenOrFail(dir / "t.db");
  REQUIRE(db.Exec("CREATE TABLE t(v)").ok());
  {
    sqlite::Transaction tx(&db);
    REQUIRE(tx.Begin().ok());
    REQUIRE(db.Exec("INSERT INTO t VALUES('dropped')").ok());
  }
  CHECK(Value(db, "SELECT count(*) FROM t") == "0");
  {
    sqlite::Transaction tx(&db);
    REQUIRE(tx.Begin().ok());
    REQUIRE(db.Exec("INSERT INTO t VALUES('kept')").ok());
    REQUIRE(tx.Commit().ok());
  }
  CHECK(Value(OpenOrFail(dir / "t.db"), "SELECT v FROM t") == "kept");
}

TEST_CASE("OpenVersioned brings an older file up and refuses a newer one") {
  Scratch dir;
  const std::string path = dir / "v.db";
  const sqlite::Schema v1{"test", 1, "CREATE TABLE a(x); PRAGMA user_version = 1;"};
  const sqlite::Schema v2{
      "test", 2, "CREATE TABLE IF NOT EXISTS a(x); CREATE TABLE b(y); PRAGMA user_version = 2;"};
  {
    auto db = sqlite::OpenVersioned(path, v1);
    REQUIRE(db.ok());
    CHECK(*db->UserVersion() == 1);
    REQUIRE(db->Exec("INSERT INTO a VALUES('from v1')").ok());
  }
  CHECK(sqlite::OpenVersioned(path, v1).ok());  // the same version: left as it is
  {
    auto db = sqlite::OpenVersioned(path, v2);
    REQUIRE(db.ok());
    CHECK(*db->UserVersion() == 2);
    CHECK(Value(*db, "SELECT x FROM a") == "from v1");
    CHECK(Value(*db, "SELECT count(*) FROM b") == "0");
  }
  auto newer = sqlite::OpenVersioned(path, v1);
  REQUIRE(!newer.ok());
  CHECK(newer.status().code() == StatusCode::kIoError);
  CHECK(newer.status().message() ==
        path + " has test schema version 2, newer than this program's 1");
}

TEST_CASE("PrepareAll prepares every statement or stops at the first error") {
  Scratch dir;
  sqlite::Database db = OpenOrFail(dir / "a.db");
  REQUIRE(db.Exec("CREATE TABLE t(v)").ok());
  sqlite::Statement first, second, third;
  REQUIRE(
      sqlite::PrepareAll(db, {{&first, "SELECT 1"}, {&second, "INSERT INTO t VALUES(?)"}}).ok());
  REQUIRE(second.Bind(1, "x").Run().ok());
  CHECK(Value(db, "SELECT v FROM t") == "x");
  const pingma::Status s = sqlite::PrepareAll(
      db, {{&third, "SELECT 3"}, {&first, "SELECT * FROM missing"}, {&second, "SELECT 2"}});
  CHECK(s.code() == StatusCode::kIoError);
  CHECK(s.message() == "prepare 'SELECT * FROM missing': no such table: missing");
  REQUIRE(*third.Step());
  CHECK(third.Int(0) == 3);
}

TEST_CASE("a Database and a Statement move with what they own") {
  Scratch dir;
  sqlite::Database a = OpenOrFail(dir / "m.db");
  sqlite::Statement st = PrepareOrFail(a, "SELECT 5");
  sqlite::Database b = std::move(a);
  CHECK(a.get() == nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
  sqlite::Statement moved = std::move(st);
  REQUIRE(*moved.Step());
  CHECK(moved.Int(0) == 5);
  sqlite::Database c;
  c = std::move(b);
  CHECK(c.get() != nullptr);
}
