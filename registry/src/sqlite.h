// Thin RAII over sqlite3: a Database owns a connection, a Statement a prepared
// statement. Every SQLITE_* error becomes a Status carrying SQLite's own message.
// Neither is thread-safe: one connection, one thread at a time.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "pingma/common/status.h"

namespace pingma::sql {

class Database {
 public:
  /// Opens (creating if asked) the file with the pragmas every pingma connection
  /// uses: WAL, synchronous=FULL, foreign keys, a busy timeout. `vfs`: the name of
  /// a registered SQLite VFS, or nullptr for the default one.
  static Result<Database> Open(const std::string& path, bool create, bool read_only,
                               const char* vfs = nullptr);

  Database() = default;
  Database(Database&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Database& operator=(Database&& other) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  sqlite3* get() const { return db_; }
  /// Runs one or more statements with no results.
  Status Exec(std::string_view sql);
  Status Error(std::string_view what) const;
  std::int64_t Changes() const { return sqlite3_changes64(db_); }

 private:
  explicit Database(sqlite3* db) : db_(db) {}
  sqlite3* db_ = nullptr;
};

class Statement {
 public:
  Statement() = default;
  Statement(Statement&& other) noexcept : db_(other.db_), stmt_(other.stmt_) {
    other.stmt_ = nullptr;
  }
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

  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  /// SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_BLOB or SQLITE_NULL.
  int Type(int col) const { return sqlite3_column_type(stmt_, col); }
  int Columns() const { return sqlite3_column_count(stmt_); }
  std::int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  double Double(int col) const { return sqlite3_column_double(stmt_, col); }
  std::string Text(int col) const;
  std::string_view Blob(int col) const;
  std::optional<std::string> OptText(int col) const {
    return IsNull(col) ? std::nullopt : std::optional<std::string>(Text(col));
  }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

}  // namespace pingma::sql
