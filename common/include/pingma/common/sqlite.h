// Thin RAII over sqlite3, the one wrapper for every SQLite file pingma keeps (the
// registry's store, the station's fill journal and replica): a Database owns a
// connection, a Statement a prepared statement, a Transaction rolls back unless
// committed. Every SQLITE_* error becomes a Status carrying SQLite's own message:
// a constraint violation (SQLITE_CONSTRAINT and its extended codes) is a Conflict,
// anything else (SQLITE_BUSY included) an IoError.
//
// None of these is thread-safe: a connection is opened SQLITE_OPEN_NOMUTEX, and its
// owner uses it (and its statements) from one thread at a time.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pingma/common/status.h"

namespace pingma::sqlite {

/// How hard a commit holds on: kPowerLoss (synchronous=FULL) fsyncs the log at
/// every commit, so a commit that has returned survives power loss; kCrash
/// (synchronous=NORMAL) survives a crash of the process, and after a power loss the
/// file is consistent but may lack its last commits.
enum class Durability { kPowerLoss, kCrash };

/// How Database::Open opens a file. The defaults are a writer's: created if missing,
/// WAL, synchronous=FULL, a 5 s busy timeout, foreign keys off (SQLite's default).
struct OpenOptions {
  bool create = true;  ///< create the file if it does not exist (never when read_only)
  bool read_only = false;
  const char* vfs = nullptr;  ///< a registered SQLite VFS's name; nullptr: the default one
  Durability durability = Durability::kPowerLoss;
  int busy_timeout_ms = 5000;  ///< how long to wait for another connection's lock
  bool foreign_keys = false;   ///< PRAGMA foreign_keys
  /// PRAGMA journal_mode=WAL. A read-only connection cannot change the mode, so it
  /// skips this (and journal_size_limit) and reads the file in whatever mode it is.
  bool wal = true;
  std::int64_t mmap_size = 0;            ///< PRAGMA mmap_size in bytes; 0: not set
  std::int64_t journal_size_limit = -1;  ///< PRAGMA journal_size_limit in bytes; -1: not set
};

class Database {
 public:
  /// Opens `path` with `options`. A file that is not an SQLite database is refused
  /// here rather than at the first statement.
  static Result<Database> Open(const std::string& path, const OpenOptions& options = {});

  Database() = default;
  Database(Database&& other) noexcept;
  Database& operator=(Database&& other) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  /// The connection, for what this wrapper does not cover (checkpoints, hooks).
  sqlite3* get() const { return db_; }
  /// Runs one or more statements that return nothing of interest.
  Status Exec(std::string_view sql);
  /// An IoError "`what`: <SQLite's message for the last error>".
  Status Error(std::string_view what) const;
  /// Rows changed by the last INSERT, UPDATE or DELETE.
  std::int64_t Changes() const { return sqlite3_changes64(db_); }
  /// PRAGMA user_version: the schema's version (0 for a new file).
  Result<int> UserVersion();

 private:
  explicit Database(sqlite3* db) : db_(db) {}
  sqlite3* db_ = nullptr;
};

/// A prepared statement. Parameters are numbered from 1 however the SQL writes
/// them: `?` (by position), `?N`, or `$N` (as PostgreSQL does, so that one text
/// serves both; a `$N` written twice is one parameter). A statement that uses `$N`
/// should not also use `?`. A bind to a parameter the statement lacks is ignored.
class Statement {
 public:
  Statement() = default;
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  /// Prepared to be kept and run many times (SQLITE_PREPARE_PERSISTENT).
  static Result<Statement> Prepare(const Database& db, std::string_view sql);

  /// Binds parameter `i` (SQLite copies the value); chainable. Errors surface at Step.
  Statement& Bind(int i, std::string_view text);
  Statement& Bind(int i, std::int64_t value);
  Statement& Bind(int i, int value) { return Bind(i, static_cast<std::int64_t>(value)); }
  Statement& Bind(int i, double value);
  template <typename T>
  Statement& Bind(int i, const std::optional<T>& value) {
    return value ? Bind(i, *value) : BindNull(i);
  }
  Statement& BindBlob(int i, const void* data, size_t size);
  /// Bind without a copy (SQLITE_STATIC): the bytes must stay as they are until
  /// the statement has been run or reset (for hot paths such as appending events).
  Statement& BindUnowned(int i, std::string_view text);
  Statement& BindBlobUnowned(int i, std::string_view bytes);
  Statement& BindNull(int i);

  /// true: a row is ready; false: done. On an error the statement is reset.
  Result<bool> Step();
  /// Steps a statement that returns no rows, then resets it.
  Status Run();
  /// Resets the statement and clears its bindings: call before each use, so that a
  /// use that stopped early (an error, a single-row read) leaves nothing behind.
  Statement& Reset();

  /// The current row's columns, numbered from 0.
  bool IsNull(int col) const { return Type(col) == SQLITE_NULL; }
  /// SQLITE_INTEGER, SQLITE_FLOAT, SQLITE_TEXT, SQLITE_BLOB or SQLITE_NULL.
  int Type(int col) const { return sqlite3_column_type(stmt_, col); }
  int Columns() const { return sqlite3_column_count(stmt_); }
  std::int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  double Double(int col) const { return sqlite3_column_double(stmt_, col); }
  std::string Text(int col) const;
  /// Valid until the next Step, Reset or column read of another type.
  std::string_view Blob(int col) const;
  std::optional<std::string> OptText(int col) const {
    return IsNull(col) ? std::nullopt : std::optional<std::string>(Text(col));
  }

 private:
  /// SQLite's index of parameter `i`; 0 (which every bind ignores) when there is none.
  int Index(int i) const;

  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  /// For SQL that writes `$N`: SQLite's index of `$N` at [N] (0 when not used),
  /// since SQLite numbers named parameters by first appearance. Empty otherwise.
  std::vector<int> dollar_;
};

/// BEGIN IMMEDIATE (take the write lock now, not at the first write) ... Commit();
/// rolled back if it goes out of scope uncommitted.
class Transaction {
 public:
  explicit Transaction(Database* db) : db_(db) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();
  Status Begin();
  Status Commit();

 private:
  Database* db_;
  bool open_ = false;
};

/// What a file holds, for messages ("journal"), its schema's version (PRAGMA
/// user_version) and the SQL that brings an older file to that version (which
/// sets user_version itself).
struct Schema {
  const char* what;
  int version;
  std::string_view sql;
};

/// Opens `path` (Database::Open) and runs `schema.sql` when the file's version is
/// older; a file of a newer version, written by a newer program, is refused.
Result<Database> OpenVersioned(const std::string& path, const Schema& schema,
                               const OpenOptions& options = {});

/// A statement to prepare and where it goes.
struct StatementSql {
  Statement* statement;
  const char* sql;
};

/// Prepares every statement, stopping at the first error.
Status PrepareAll(const Database& db, std::initializer_list<StatementSql> statements);

}  // namespace pingma::sqlite
