// The SQLite side of store/sql.h: a connection to a SQLite file and its prepared
// statements. Every SQLITE_* error becomes a Status carrying SQLite's own message;
// a constraint violation is kConflict.
//
// Parameters are written $1, $2, ... as for PostgreSQL. SQLite takes `$1` as a
// named parameter numbered by where it first appears, so a statement binds $N
// through the name, not by position.
#pragma once

#include <sqlite3.h>

#include <memory>
#include <string>
#include <vector>

#include "store/sql.h"

namespace pingma::sql {

class SqliteStatement;

class SqliteDatabase final : public Database {
 public:
  /// Opens (creating if asked) the file with the pragmas every pingma connection
  /// uses: WAL, synchronous=FULL, foreign keys, a busy timeout. `vfs`: the name of
  /// a registered SQLite VFS, or nullptr for the default one.
  static Result<std::unique_ptr<SqliteDatabase>> Open(const std::string& path, bool create,
                                                      bool read_only, const char* vfs = nullptr);
  ~SqliteDatabase() override;

  Dialect dialect() const override { return Dialect::kSqlite; }
  Status Exec(std::string_view sql) override;
  std::int64_t Changes() const override { return sqlite3_changes64(db_); }
  Result<std::unique_ptr<Statement>> Prepare(std::string_view sql) override;
  /// The same, as the SQLite statement it is (for readers of any column type).
  Result<std::unique_ptr<SqliteStatement>> PrepareSqlite(std::string_view sql);

  sqlite3* get() const { return db_; }
  Status Error(std::string_view what) const;

 private:
  explicit SqliteDatabase(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

class SqliteStatement final : public Statement {
 public:
  ~SqliteStatement() override;

  Statement& Bind(int i, std::string_view text) override;
  Statement& Bind(int i, std::int64_t value) override;
  Statement& Bind(int i, double value) override;
  Statement& BindBlob(int i, const void* data, size_t size) override;
  Statement& BindUnowned(int i, std::string_view text) override;
  Statement& BindBlobUnowned(int i, std::string_view bytes) override;
  Statement& BindNull(int i) override;
  using Statement::Bind;

  Result<bool> Step() override;
  void Reset() override;

  bool IsNull(int col) const override { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::int64_t Int(int col) const override { return sqlite3_column_int64(stmt_, col); }
  double Double(int col) const override { return sqlite3_column_double(stmt_, col); }
  std::string Text(int col) const override;
  std::string_view Blob(int col) const override;
  /// SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_BLOB or SQLITE_NULL.
  int Type(int col) const { return sqlite3_column_type(stmt_, col); }
  int Columns() const { return sqlite3_column_count(stmt_); }

 private:
  friend class SqliteDatabase;
  SqliteStatement(sqlite3* db, sqlite3_stmt* stmt);
  /// SQLite's index of parameter $i (0: the statement has none such).
  int Index(int i) const { return i > 0 && static_cast<size_t>(i) < index_.size() ? index_[i] : 0; }

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  std::vector<int> index_;  ///< [N]: SQLite's index of $N
};

}  // namespace pingma::sql
