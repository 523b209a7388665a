// pingma-bench-sqlite-insert: the baseline of the fleet-registration benchmark.
// Inserts N cylinder rows of the registry's shape straight into SQLite, one
// prepared statement, one transaction, with the registry's pragmas (WAL,
// synchronous=FULL), and prints the seconds it took.
#include <sqlite3.h>

#include <chrono>
#include <cstdio>
#include <string>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

namespace {

bool Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::fprintf(stderr, "pingma-bench-sqlite-insert: %s\n", err);
    sqlite3_free(err);
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pingma-bench-sqlite-insert: raw SQLite insert of N cylinders (benchmark baseline)"};
  std::string path;
  int rows = 100000;
  app.add_option("--db", path, "database file (must not exist)")->required();
  app.add_option("--rows", rows, "rows to insert")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    std::fprintf(stderr, "pingma-bench-sqlite-insert: cannot open %s\n", path.c_str());
    return 1;
  }
  if (!Exec(db,
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
            "CREATE TABLE cylinders(code TEXT PRIMARY KEY, owner_company_id TEXT NOT NULL,"
            " model TEXT NOT NULL, phase TEXT NOT NULL, manufacturer TEXT NOT NULL,"
            " serial TEXT NOT NULL, manufactured TEXT NOT NULL, tare_kg REAL NOT NULL,"
            " last_inspection TEXT, rev INTEGER NOT NULL) WITHOUT ROWID;")) {
    return 1;
  }
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db,
                     "INSERT INTO cylinders(code, owner_company_id, model, phase, manufacturer,"
                     " serial, manufactured, tare_kg, last_inspection, rev)"
                     " VALUES(?,?,?,?,?,?,?,?,?,?)",
                     -1, &st, nullptr);
  const auto start = std::chrono::steady_clock::now();
  Exec(db, "BEGIN");
  for (int i = 0; i < rows; ++i) {
    const std::string code = fmt::format("BT{:08d}", i);
    const std::string serial = fmt::format("S-{:08d}", i);
    sqlite3_bind_text(st, 1, code.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, "CO-A", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, "YSP35.5", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, "gas", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, "Hebei Example Cylinder Co.", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, serial.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 7, "2023-01", -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 8, 16.4);
    sqlite3_bind_text(st, 9, "2025-01-15", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 10, i + 1);
    if (sqlite3_step(st) != SQLITE_DONE) {
      std::fprintf(stderr, "pingma-bench-sqlite-insert: %s\n", sqlite3_errmsg(db));
      return 1;
    }
    sqlite3_reset(st);
  }
  Exec(db, "COMMIT");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  sqlite3_finalize(st);
  sqlite3_close(db);
  std::printf("%.6f\n", seconds);
  return 0;
}
