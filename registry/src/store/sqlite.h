// The SQLite side of store/sql.h, on the one SQLite wrapper (pingma/common/sqlite.h):
// a connection to a SQLite file with the registry's pragmas, and its statements.
// Parameters are written $1, $2, ... as for PostgreSQL (the wrapper binds $N by
// name); a constraint violation is kConflict.
#pragma once

#include <sqlite3.h>

#include <memory>
#include <string>
#include <utility>

#include "pingma/common/sqlite.h"
#include "store/sql.h"

namespace pingma::sql {

class SqliteStatement;

class SqliteDatabase final : public Database {
 public:
  /// Opens (creating if asked) the file with the pragmas every registry connection
  /// uses: WAL, synchronous=FULL, foreign keys, a busy timeout. `vfs`: the name of
  /// a registered SQLite VFS, or nullptr for the default one.
  static Result<std::unique_ptr<SqliteDatabase>> Open(const std::string& path, bool create,
                                                      bool read_only, const char* vfs = nullptr);

  Dialect dialect() const override { return Dialect::kSqlite; }
  Status Exec(std::string_view sql) override { return db_.Exec(sql); }
  std::int64_t Changes() const override { return db_.Changes(); }
  Result<std::unique_ptr<Statement>> Prepare(std::string_view sql) override;
  /// The same, as the SQLite statement it is (for readers of any column type).
  Result<std::unique_ptr<SqliteStatement>> PrepareSqlite(std::string_view sql);

  sqlite3* get() const { return db_.get(); }

 private:
  explicit SqliteDatabase(sqlite::Database db) : db_(std::move(db)) {}
  sqlite::Database db_;
};

class SqliteStatement final : public Statement {
 public:
  Statement& Bind(int i, std::string_view text) override { return Then(st_.Bind(i, text)); }
  Statement& Bind(int i, std::int64_t value) override { return Then(st_.Bind(i, value)); }
  Statement& Bind(int i, double value) override { return Then(st_.Bind(i, value)); }
  Statement& BindBlob(int i, const void* data, size_t size) override {
    return Then(st_.BindBlob(i, data, size));
  }
  Statement& BindUnowned(int i, std::string_view text) override {
    return Then(st_.BindUnowned(i, text));
  }
  Statement& BindBlobUnowned(int i, std::string_view bytes) override {
    return Then(st_.BindBlobUnowned(i, bytes));
  }
  Statement& BindNull(int i) override { return Then(st_.BindNull(i)); }
  using Statement::Bind;

  Result<bool> Step() override { return st_.Step(); }
  void Reset() override { st_.Reset(); }

  bool IsNull(int col) const override { return st_.IsNull(col); }
  std::int64_t Int(int col) const override { return st_.Int(col); }
  double Double(int col) const override { return st_.Double(col); }
  std::string Text(int col) const override { return st_.Text(col); }
  std::string_view Blob(int col) const override { return st_.Blob(col); }
  /// SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_BLOB or SQLITE_NULL.
  int Type(int col) const { return st_.Type(col); }
  int Columns() const { return st_.Columns(); }

 private:
  friend class SqliteDatabase;
  explicit SqliteStatement(sqlite::Statement st) : st_(std::move(st)) {}
  Statement& Then(sqlite::Statement&) { return *this; }
  sqlite::Statement st_;
};

}  // namespace pingma::sql
