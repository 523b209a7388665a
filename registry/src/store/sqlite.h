// Thin RAII over sqlite3: a Database owns a connection, a Statement a prepared
// statement. Every SQLITE_* error becomes a Status carrying SQLite's own message.
// Neither is thread-safe: one connection, one thread at a time.
//
// The same two classes also carry a PostgreSQL connection (Database::OpenPostgres,
// through pg.h), so that the registry's use cases run unchanged on either store:
// statements are written for SQLite and translated (pg::FromSqlite), prepared on
// the server, their parameters sent as text and their results read as SQLite's
// would be (booleans as 0/1, bytea as bytes).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/pg.h"

#include "pingma/common/status.h"

namespace pingma::sql {

class Database {
 public:
  /// Opens (creating if asked) the file with the pragmas every pingma connection
  /// uses: WAL, synchronous=FULL, foreign keys, a busy timeout. `vfs`: the name of
  /// a registered SQLite VFS, or nullptr for the default one.
  static Result<Database> Open(const std::string& path, bool create, bool read_only,
                               const char* vfs = nullptr);

  /// A PostgreSQL connection (a libpq connection string) behind this interface.
  static Result<Database> OpenPostgres(const std::string& conninfo);

  Database() = default;
  Database(Database&& other) noexcept { *this = std::move(other); }
  Database& operator=(Database&& other) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  sqlite3* get() const { return db_; }
  /// The PostgreSQL connection, or nullptr for SQLite.
  pg::Connection* postgres() const { return pg_.get(); }
  /// Runs one or more statements with no results.
  Status Exec(std::string_view sql);
  Status Error(std::string_view what) const;
  /// Rows changed by the last INSERT, UPDATE or DELETE.
  std::int64_t Changes() const { return pg_ ? pg_changes_ : sqlite3_changes64(db_); }

 private:
  friend class Statement;
  explicit Database(sqlite3* db) : db_(db) {}
  sqlite3* db_ = nullptr;
  std::unique_ptr<pg::Connection> pg_;
  mutable std::int64_t pg_changes_ = 0;  ///< set by the statements run on pg_
  mutable int pg_statements_ = 0;        ///< names of statements prepared on pg_
};

class Statement {
 public:
  Statement() = default;
  Statement(Statement&& other) noexcept { *this = std::move(other); }
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  static Result<Statement> Prepare(const Database& db, std::string_view sql);

  /// Binds by 1-based index; chainable. Errors surface at Step.
  Statement& Bind(int i, std::string_view text);
  Statement& Bind(int i, std::int64_t value);
  Statement& Bind(int i, int value) { return Bind(i, static_cast<std::int64_t>(value)); }
  Statement& Bind(int i, double value);
  Statement& BindBlob(int i, const void* data, size_t size);
  /// Bind without a copy: the bytes must stay as they are until the statement
  /// has been run (for the hot path of appending events).
  Statement& BindUnowned(int i, std::string_view text);
  Statement& BindBlobUnowned(int i, std::string_view bytes);
  Statement& BindNull(int i);
  template <typename T>
  Statement& Bind(int i, const std::optional<T>& value) {
    return value ? Bind(i, *value) : BindNull(i);
  }

  /// true: a row is ready; false: done. Errors as Status.
  Result<bool> Step();
  /// Steps a statement that returns no rows, then resets it.
  Status Run();
  void Reset();

  bool IsNull(int col) const {
    return pg_db_ ? PgNull(col) : sqlite3_column_type(stmt_, col) == SQLITE_NULL;
  }
  /// SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_BLOB or SQLITE_NULL.
  int Type(int col) const;
  int Columns() const;
  std::int64_t Int(int col) const;
  double Double(int col) const;
  std::string Text(int col) const;
  std::string_view Blob(int col) const;
  std::optional<std::string> OptText(int col) const {
    return IsNull(col) ? std::nullopt : std::optional<std::string>(Text(col));
  }

 private:
  bool PgNull(int col) const { return pg_rows_.IsNull(pg_row_, col); }
  Statement& PgBind(int i, std::optional<std::string> value, unsigned type = 0);
  /// The server-side statement for the types bound now: one per set of types,
  /// prepared on first use.
  Result<const std::string*> PgPrepared();

  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  // PostgreSQL: the statement's name on the connection, the parameters bound, and
  // once run, its rows and the one Step is on.
  const Database* pg_db_ = nullptr;
  std::string pg_sql_;     ///< translated for PostgreSQL
  int pg_parameters_ = 0;  ///< its highest parameter number
  std::string pg_simple_;  ///< a statement sent unprepared (transaction control)
  std::vector<pg::Param> pg_params_;
  std::vector<unsigned> pg_types_;  ///< of pg_params_: 0 for text and NULL
  std::vector<std::pair<std::vector<unsigned>, std::string>> pg_prepared_;  ///< types, name
  pg::Rows pg_rows_;
  int pg_row_ = -1;
  bool pg_run_ = false;
  mutable std::vector<std::string> pg_bytes_;  ///< Blob's bytes of the current row
};

}  // namespace pingma::sql
