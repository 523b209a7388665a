// Thin RAII over libpq: a pg::Connection owns a connection, a pg::Rows a result.
// Every failure becomes a Status carrying PostgreSQL's own message: kUnavailable
// for what a retry may cure (no connection, the server shutting down or not yet
// accepting, a serialization failure or a deadlock), kConflict for a unique
// violation, kIoError for the rest. Not thread-safe: one connection, one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pingma/common/status.h"

struct pg_conn;
struct pg_result;

namespace pingma::pg {

/// Whether `db` names a PostgreSQL database (a postgres:// or postgresql:// URI,
/// or a key=value connection string) rather than a SQLite file.
bool IsConnectionString(std::string_view db);

/// A parameter of a query: text, or SQL NULL. Binary values travel as bytea hex
/// ("\\x..."): see Hex.
using Param = std::optional<std::string>;

/// `bytes` as a bytea literal in hex form, "\x0a1b...".
std::string Hex(std::string_view bytes);

/// A statement sent in a pipeline (Connection::RunPipeline): the one prepared as
/// `name` with `params`, or, when `name` is empty, `sql` itself, without
/// parameters (transaction control). `sql` also names it in an error.
struct PipelinedStatement {
  std::string name;
  std::string sql;
  std::vector<Param> params;
};

/// The rows of a query, read as text (bytea columns decoded with Bytes).
class Rows {
 public:
  Rows() = default;
  Rows(Rows&& other) noexcept : result_(other.result_) { other.result_ = nullptr; }
  Rows& operator=(Rows&& other) noexcept;
  Rows(const Rows&) = delete;
  Rows& operator=(const Rows&) = delete;
  ~Rows();

  int size() const;
  int Columns() const;
  /// Rows an INSERT, UPDATE or DELETE changed.
  std::int64_t Affected() const;
  /// The column's type: one of the k*Oid below, or another PostgreSQL type oid.
  unsigned Type(int col) const;
  static constexpr unsigned kBoolOid = 16, kByteaOid = 17, kInt8Oid = 20, kInt2Oid = 21,
                            kInt4Oid = 23, kTextOid = 25, kFloat4Oid = 700, kFloat8Oid = 701,
                            kNumericOid = 1700;
  bool IsNull(int row, int col) const;
  std::string Text(int row, int col) const;
  std::int64_t Int(int row, int col) const;
  /// A bytea column's bytes (libpq gives them in hex form).
  std::string Bytes(int row, int col) const;

 private:
  friend class Connection;
  explicit Rows(pg_result* result) : result_(result) {}
  pg_result* result_ = nullptr;
};

class Connection {
 public:
  /// Connects with a libpq connection string or URI (several hosts allowed;
  /// target_session_attrs as given). Unless the string says otherwise: at most
  /// 10 s for a host (connect_timeout), and 15 s for a statement or a lock
  /// (options=-c statement_timeout=... -c lock_timeout=...).
  static Result<Connection> Open(const std::string& conninfo);

  Connection() = default;
  Connection(Connection&& other) noexcept : conn_(other.conn_) { other.conn_ = nullptr; }
  Connection& operator=(Connection&& other) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection();

  /// Whether the connection is up (false after the server went away).
  bool ok() const;
  /// Whether the transaction open on it failed (a statement's error), so that
  /// the server takes nothing but a rollback (PQTRANS_INERROR).
  bool in_failed_transaction() const;
  /// Runs one statement with parameters $1..$n, all sent as text.
  Result<Rows> Query(const std::string& sql, const std::vector<Param>& params = {});
  /// Prepares `sql` (parameters $1..$n) under `name` on this connection; `types`
  /// are the parameters' type oids (0: PostgreSQL infers it).
  Status Prepare(const std::string& name, const std::string& sql,
                 const std::vector<unsigned>& types = {});
  /// The SQLSTATE of the last failure ("" if none had one).
  const std::string& last_sqlstate() const { return last_sqlstate_; }
  /// How many statements failed because another session wrote the same rows at
  /// once: a unique key taken meanwhile, a deadlock, a serialization failure
  /// (23505, 23P01, 40P01, 40001). (A lock wait past lock_timeout is not one: it
  /// is a database stuck or too slow.)
  std::uint64_t races() const { return races_; }
  /// Runs the statement prepared as `name`.
  Result<Rows> QueryPrepared(const std::string& name, const std::vector<Param>& params);
  /// How many parameters the statement prepared as `name` takes.
  Result<int> ParameterCount(const std::string& name);

  /// Sends the statement prepared as `name` and has its rows come one at a time
  /// (libpq's single-row mode), so that a large result is never held whole: read
  /// them with Next. Nothing else may be sent until Next has returned nullopt or
  /// an error, or Drain was called.
  Status SendPrepared(const std::string& name, const std::vector<Param>& params);
  /// The next piece of what SendPrepared sent: a row (Rows of one row), then its
  /// end (Rows of none, with Affected), then nullopt. An error drains the rest.
  Result<std::optional<Rows>> Next();
  /// Reads and drops whatever a sent statement has not yet delivered.
  void Drain();
  /// Sends `statements` one after another without waiting, then waits once for all
  /// their answers (libpq's pipeline mode): one round trip for them all. Their
  /// rows, if any, are dropped. The first failure is returned; PostgreSQL skips
  /// the statements after it. Keep the pipeline short enough that its answers fit
  /// the socket's buffers (a few hundred statements): nothing is read until
  /// everything is sent.
  Status RunPipeline(const std::vector<PipelinedStatement>& statements);
  /// Runs one or more statements without parameters or results.
  Status Exec(const std::string& sql);
  /// COPY ... FROM STDIN in text format: `sql` is the COPY statement, `data` its
  /// rows (tab-separated, newline-ended, escaped as CopyField does).
  Status Copy(const std::string& sql, std::string_view data);

  /// Appends one field in COPY's text format: backslash escapes, \N for NULL.
  static void CopyField(std::string* out, const std::optional<std::string_view>& value);

 private:
  explicit Connection(pg_conn* conn) : conn_(conn) {}
  Status ResultStatus(pg_result* result, const std::string& what) const;
  pg_conn* conn_ = nullptr;
  mutable std::string last_sqlstate_;
  mutable std::uint64_t races_ = 0;
};

/// Runs `fn` between BEGIN and COMMIT on `conn`; ROLLBACK when either fails.
Status InTransaction(Connection& conn, const std::function<Status()>& fn);

/// The first column of the first row of a query, as an integer: 0 when there is
/// no row or it is NULL.
Result<std::int64_t> QueryInt(Connection& conn, const std::string& sql,
                              const std::vector<Param>& params = {});

}  // namespace pingma::pg
