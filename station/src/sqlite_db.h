// Thin RAII over sqlite3 for the station's own files (the fill journal and the
// replica): a Database owns a connection, a Statement a prepared statement, a
// Transaction rolls back unless committed. Every SQLITE_* error becomes a Status
// with SQLite's own words. Header-only and private to the station, which must not
// depend on the registry's wrappers (registry/src/sqlite.h); the ideas are the same.
//
// None of these is thread-safe: the owner (Journal, Replica) serialises use with
// its mutex.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "pingma/common/status.h"

namespace pingma::station::lite {

/// How hard a commit holds on: kPowerLoss (synchronous=FULL) fsyncs the log at
/// every commit, so a commit that has returned survives power loss; kCrash
/// (synchronous=NORMAL) survives a crash of the process, and after a power loss the
/// file is consistent but may lack its last commits.
enum class Durability { kPowerLoss, kCrash };

class Database {
 public:
  /// Opens or creates `path` in WAL mode. The fill journal needs kPowerLoss: a fill
  /// record shown to the operator as saved must survive both.
  static Result<Database> Open(const std::string& path,
                               Durability durability = Durability::kPowerLoss) {
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(path.c_str(), &raw,
                                   SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                       SQLITE_OPEN_NOMUTEX,  // the owner's mutex serialises
                                   nullptr);
    Database db(raw);
    if (rc != SQLITE_OK) {
      return Status::IoError("cannot open " + path + ": " +
                             (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
    }
    sqlite3_extended_result_codes(raw, 1);
    sqlite3_busy_timeout(raw, 5000);
    PINGMA_RETURN_IF_ERROR(db.Exec("PRAGMA journal_mode=WAL"));
    PINGMA_RETURN_IF_ERROR(db.Exec(durability == Durability::kPowerLoss
                                       ? "PRAGMA synchronous=FULL"
                                       : "PRAGMA synchronous=NORMAL"));
    // Fail now, not at the first write, when the file is not a database.
    PINGMA_RETURN_IF_ERROR(db.Exec("SELECT count(*) FROM sqlite_master"));
    return db;
  }

  Database() = default;
  Database(Database&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}
  Database& operator=(Database&& other) noexcept {
    if (this != &other) {
      if (db_) sqlite3_close_v2(db_);
      db_ = std::exchange(other.db_, nullptr);
    }
    return *this;
  }
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database() {
    if (db_) sqlite3_close_v2(db_);
  }

  sqlite3* get() const { return db_; }

  /// Runs one or more statements that return nothing of interest.
  Status Exec(std::string_view sql) {
    char* err = nullptr;
    const std::string text(sql);
    if (sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      Status s = Status::IoError("sqlite: " + std::string(err ? err : sqlite3_errmsg(db_)));
      sqlite3_free(err);
      return s;
    }
    return Status::Ok();
  }

  Status Error(std::string_view what) const {
    return Status::IoError(std::string(what) + ": " + sqlite3_errmsg(db_));
  }

  /// PRAGMA user_version: the schema's version (0 for a new file).
  Result<int> UserVersion() {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, "PRAGMA user_version", -1, &st, nullptr) != SQLITE_OK) {
      return Error("PRAGMA user_version");
    }
    int version = 0;
    const int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) return Error("PRAGMA user_version");
    return version;
  }

  std::int64_t Changes() const { return sqlite3_changes64(db_); }

 private:
  explicit Database(sqlite3* db) : db_(db) {}
  sqlite3* db_ = nullptr;
};

class Statement {
 public:
  Statement() = default;
  Statement(Statement&& other) noexcept
      : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)) {}
  Statement& operator=(Statement&& other) noexcept {
    if (this != &other) {
      if (stmt_) sqlite3_finalize(stmt_);
      db_ = other.db_;
      stmt_ = std::exchange(other.stmt_, nullptr);
    }
    return *this;
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() {
    if (stmt_) sqlite3_finalize(stmt_);
  }

  static Result<Statement> Prepare(const Database& db, std::string_view sql) {
    Statement st;
    st.db_ = db.get();
    if (sqlite3_prepare_v3(db.get(), sql.data(), static_cast<int>(sql.size()),
                           SQLITE_PREPARE_PERSISTENT, &st.stmt_, nullptr) != SQLITE_OK) {
      return db.Error("prepare '" + std::string(sql.substr(0, 60)) + "'");
    }
    return st;
  }

  /// Resets the statement and clears its bindings: call before each use, so that a
  /// use that stopped early (an error, a single-row read) leaves nothing behind.
  Statement& Start() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    return *this;
  }
  /// Binds by 1-based index (SQLITE_TRANSIENT: SQLite copies); errors surface at Step.
  Statement& Bind(int i, std::string_view text) {
    sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& Bind(int i, std::int64_t value) {
    sqlite3_bind_int64(stmt_, i, value);
    return *this;
  }
  Statement& Bind(int i, int value) { return Bind(i, static_cast<std::int64_t>(value)); }
  Statement& BindNull(int i) {
    sqlite3_bind_null(stmt_, i);
    return *this;
  }

  /// true: a row is ready; false: done.
  Result<bool> Step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    Status s = Status::IoError(std::string("sqlite: ") + sqlite3_errmsg(db_));
    sqlite3_reset(stmt_);
    return s;
  }
  /// Steps a statement that returns no rows, then resets it.
  Status Run() {
    auto done = Step();
    sqlite3_reset(stmt_);
    return done.status();
  }
  /// The constraint that failed, when Step/Run failed on one (extended code).
  bool ConstraintFailed() const {
    return (sqlite3_extended_errcode(db_) & 0xff) == SQLITE_CONSTRAINT;
  }

  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string Text(int col) const {
    const auto* p = sqlite3_column_text(stmt_, col);
    const int n = sqlite3_column_bytes(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n))
             : std::string();
  }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

/// BEGIN IMMEDIATE (take the write lock now, not at the first write) ... Commit();
/// rolled back if it goes out of scope uncommitted.
class Transaction {
 public:
  explicit Transaction(Database* db) : db_(db) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction() {
    if (open_) static_cast<void>(db_->Exec("ROLLBACK"));
  }
  Status Begin() {
    PINGMA_RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
    open_ = true;
    return Status::Ok();
  }
  Status Commit() {
    PINGMA_RETURN_IF_ERROR(db_->Exec("COMMIT"));
    open_ = false;
    return Status::Ok();
  }

 private:
  Database* db_;
  bool open_ = false;
};

/// Opens `path` (Database::Open) and brings it to schema `version` by running
/// `schema_sql` when it is older; a file of a newer version, written by a newer
/// program, is refused, naming `what` it holds.
inline Result<Database> OpenVersioned(const std::string& path, const char* what, int version,
                                      std::string_view schema_sql,
                                      Durability durability = Durability::kPowerLoss) {
  PINGMA_ASSIGN_OR_RETURN(auto db, Database::Open(path, durability));
  PINGMA_ASSIGN_OR_RETURN(auto found, db.UserVersion());
  if (found > version) {
    return Status::IoError(path + " has " + what + " schema version " + std::to_string(found) +
                           ", newer than this program's " + std::to_string(version));
  }
  if (found < version) PINGMA_RETURN_IF_ERROR(db.Exec(schema_sql));
  return db;
}

/// A statement to prepare and where it goes.
struct StatementSql {
  Statement* statement;
  const char* sql;
};

/// Prepares every statement, stopping at the first error.
inline Status PrepareAll(const Database& db, std::initializer_list<StatementSql> statements) {
  for (const StatementSql& s : statements) {
    PINGMA_ASSIGN_OR_RETURN(*s.statement, Statement::Prepare(db, s.sql));
  }
  return Status::Ok();
}

}  // namespace pingma::station::lite
