// What the use cases write their SQL against: a connection and its prepared
// statements, the same for both stores. Each store has its own implementation —
// SQLite (store/sqlite.h) and PostgreSQL (store/pg_sql.h) — and nothing rewrites
// a statement's text between them: the SQL is written once in the common subset,
// parameters as $1, $2, ... (which both take), and the few places where the two
// differ are spelled by the dialect helpers below.
//
// Neither is thread-safe: one connection, one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pingma/common/status.h"

namespace pingma::sql {

enum class Dialect { kSqlite, kPostgres };

class Statement {
 public:
  virtual ~Statement() = default;

  /// Binds parameter $i; chainable. Errors surface at Step.
  virtual Statement& Bind(int i, std::string_view text) = 0;
  virtual Statement& Bind(int i, std::int64_t value) = 0;
  Statement& Bind(int i, int value) { return Bind(i, static_cast<std::int64_t>(value)); }
  virtual Statement& Bind(int i, double value) = 0;
  Statement& Bind(int i, const char* text) { return Bind(i, std::string_view(text)); }
  Statement& Bind(int i, const std::string& text) { return Bind(i, std::string_view(text)); }
  virtual Statement& BindBlob(int i, const void* data, size_t size) = 0;
  /// Bind without a copy: the bytes must stay as they are until the statement
  /// has been run (for the hot path of appending events).
  virtual Statement& BindUnowned(int i, std::string_view text) = 0;
  virtual Statement& BindBlobUnowned(int i, std::string_view bytes) = 0;
  virtual Statement& BindNull(int i) = 0;
  template <typename T>
  Statement& Bind(int i, const std::optional<T>& value) {
    return value ? Bind(i, *value) : BindNull(i);
  }

  /// true: a row is ready; false: done. Errors as Status.
  virtual Result<bool> Step() = 0;
  /// Steps a statement that returns no rows, then resets it.
  Status Run() {
    auto r = Step();
    Reset();
    return r.status();
  }
  /// Runs a write that returns no rows and can fail only when the database does
  /// (an event's insert, a counter's upsert, a savepoint), never because of what it
  /// was given: on PostgreSQL, in the writer's batch, it is held back and sent with
  /// the writes after it in one round trip, when the connection next waits for an
  /// answer, and a failure fails the batch (which group_commit.h then runs again
  /// without holding anything back). Elsewhere, Run. Either way the statement is
  /// reset after, as by Run.
  virtual Status Defer() { return Run(); }
  /// Ends a run (its remaining rows are dropped) and clears the bindings.
  virtual void Reset() = 0;

  /// The current row's columns. Booleans read as 0 and 1, NULL as 0 or "".
  virtual bool IsNull(int col) const = 0;
  virtual std::int64_t Int(int col) const = 0;
  virtual double Double(int col) const = 0;
  virtual std::string Text(int col) const = 0;
  /// Valid until the next Step or Reset.
  virtual std::string_view Blob(int col) const = 0;
  std::optional<std::string> OptText(int col) const {
    return IsNull(col) ? std::nullopt : std::optional<std::string>(Text(col));
  }
};

/// Database::MarkWrites: the database's counts of writes when a job began.
struct WriteMark {
  std::uint64_t held = 0;    ///< writes held back so far
  std::uint64_t direct = 0;  ///< statements run at once that may have written
};

class Database {
 public:
  virtual ~Database() = default;

  virtual Dialect dialect() const = 0;
  /// Runs one or more statements with no parameters and no results.
  virtual Status Exec(std::string_view sql) = 0;
  /// Rows changed by the last INSERT, UPDATE or DELETE.
  virtual std::int64_t Changes() const = 0;
  virtual Result<std::unique_ptr<Statement>> Prepare(std::string_view sql) = 0;
  /// Whether the connection can still be used (false once the server is gone).
  virtual bool ok() const { return true; }
  /// How many statements so far failed because another writer wrote the same
  /// rows at once (PostgreSQL: pg::Connection::races); 0 where one writes alone.
  virtual std::uint64_t races() const { return 0; }

  /// Where a job's writes begin, on a database that can undo them without a
  /// savepoint: one that holds writes back (PostgreSQL while a batch runs,
  /// Statement::Defer), while they are all still held. Nullopt where it cannot
  /// (SQLite, whose savepoints cost nothing; a batch run again, each write
  /// waited for): the job then runs in a savepoint.
  virtual std::optional<WriteMark> MarkWrites() { return std::nullopt; }
  /// Ends the job begun at `mark`; `undo`: it failed, and its writes must go.
  /// When they cannot (some were sent, or ran at once), or a statement of it
  /// failed and left the transaction unusable, the batch is failed, so that its
  /// jobs run again each in a savepoint; false then.
  virtual bool SettleJob(const WriteMark& /*mark*/, bool /*undo*/) { return false; }
};

// ---- Where the dialects differ -------------------------------------------------

/// A key of a JSON text column, as text (SQLite's json_extract gives a JSON
/// boolean as 0/1, PostgreSQL's ->> as 'true'/'false').
std::string JsonField(Dialect d, std::string_view column, std::string_view key);
/// A table of the elements of a JSON array parameter, one row each in a column
/// named `value`, as text.
std::string JsonArrayElements(Dialect d, std::string_view array);
/// SQLite's planner hint naming the index a query must use; nothing on
/// PostgreSQL, whose planner takes no hints.
std::string IndexedBy(Dialect d, std::string_view index);
/// A PostgreSQL array of bigint as text ("{1,2,3}"), for a `$n::bigint[]` parameter.
std::string BigintArrayText(const std::vector<std::int64_t>& values);

}  // namespace pingma::sql
