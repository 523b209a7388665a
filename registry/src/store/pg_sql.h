// The PostgreSQL side of store/sql.h: a libpq connection and its statements,
// prepared on the server once per set of parameter types, their parameters sent
// as text, and their rows streamed one at a time (single-row mode), so that no
// result is ever held whole in memory; read as SQLite's would be (booleans as
// 0/1, bytea as bytes).
//
// A connection runs one statement at a time: a statement started while another
// is still streaming first reads the other's remaining rows into memory (a read
// nested in another's rows holds the outer one's rest, as a whole result would).
// A statement stopped before its last row reads the rest off the connection and
// drops it (PostgreSQL cannot be told to stop a statement without aborting its
// transaction): a read that may stop early says so in its LIMIT.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "store/pg.h"
#include "store/sql.h"

namespace pingma::sql {

class PgStatement;

class PgDatabase final : public Database {
 public:
  /// Connects with a libpq connection string (pg::Connection::Open).
  static Result<std::unique_ptr<PgDatabase>> Open(const std::string& conninfo);

  Dialect dialect() const override { return Dialect::kPostgres; }
  Status Exec(std::string_view sql) override;
  std::int64_t Changes() const override { return changes_; }
  Result<std::unique_ptr<Statement>> Prepare(std::string_view sql) override;
  bool ok() const override { return pg_.ok(); }
  std::uint64_t races() const override { return pg_.races(); }
  /// While deferring: a job's writes are undone by dropping them while they are
  /// all still held, so that a batch's jobs need no savepoints (a subtransaction
  /// each, which costs PostgreSQL about as much as the job's own write).
  std::optional<WriteMark> MarkWrites() override;
  bool SettleJob(const WriteMark& mark, bool undo) override;

  /// The connection itself, free for a command of its own (COPY, a migration).
  pg::Connection& connection() {
    (void)Claim(nullptr);  // a held-back write's failure stays in deferred_failure()
    ++direct_;
    return pg_;
  }

  /// Whether Statement::Defer holds writes back (the writer, while a batch runs).
  /// Turning it either way clears deferred_failure() and drops what is still held
  /// (a batch abandoned): Flush first to keep it.
  void set_deferring(bool on);
  /// Holds back one statement without parameters (transaction control) as Defer
  /// holds a write; runs it at once when not deferring.
  Status ExecDeferred(std::string sql);
  /// Sends the writes held back, in one round trip (pg::Connection::RunPipeline),
  /// and returns the first failure among them.
  Status Flush();
  /// The first failure of a held-back write since set_deferring; the batch's
  /// transaction is aborted from then on.
  const Status& deferred_failure() const { return deferred_failure_; }

 private:
  friend class PgStatement;
  explicit PgDatabase(pg::Connection pg) : pg_(std::move(pg)) {}
  /// Frees the connection for `next` (nullptr: for a command): the statement
  /// streaming on it, if another, reads its remaining rows into memory, and the
  /// writes held back are sent (their failure, if any, is returned).
  Status Claim(PgStatement* next);
  /// Holds `statement` back, sending what is held once there is much of it.
  Status Hold(pg::PipelinedStatement statement);

  pg::Connection pg_;
  PgStatement* streaming_ = nullptr;  ///< whose rows the connection is delivering
  std::int64_t changes_ = 0;          ///< set by the statements as they end
  int statements_ = 0;                ///< names of statements prepared so far
  bool deferring_ = false;
  std::vector<pg::PipelinedStatement> held_;  ///< written back by Flush
  Status deferred_failure_;
  // For MarkWrites: statements held so far, and of those sent (or dropped with a
  // batch), so that held_.size() == held_total_ - sent_total_; statements run at
  // once that may have written.
  std::uint64_t held_total_ = 0;
  std::uint64_t sent_total_ = 0;
  std::uint64_t direct_ = 0;
};

class PgStatement final : public Statement {
 public:
  ~PgStatement() override { Reset(); }

  Statement& Bind(int i, std::string_view text) override;
  Statement& Bind(int i, std::int64_t value) override;
  Statement& Bind(int i, double value) override;
  Statement& BindBlob(int i, const void* data, size_t size) override;
  Statement& BindUnowned(int i, std::string_view text) override { return Bind(i, text); }
  Statement& BindBlobUnowned(int i, std::string_view bytes) override {
    return BindBlob(i, bytes.data(), bytes.size());
  }
  Statement& BindNull(int i) override { return Set(i, std::nullopt, 0); }
  using Statement::Bind;

  Result<bool> Step() override;
  Status Defer() override;
  void Reset() override;

  bool IsNull(int col) const override { return row_.IsNull(0, col); }
  std::int64_t Int(int col) const override;
  double Double(int col) const override;
  std::string Text(int col) const override;
  std::string_view Blob(int col) const override;

 private:
  friend class PgDatabase;
  PgStatement(PgDatabase* db, std::string sql, bool simple)
      : db_(db), sql_(std::move(sql)), simple_(simple) {}
  Statement& Set(int i, pg::Param value, unsigned type);
  /// The server-side statement for the types bound now, prepared on first use,
  /// with how many parameters it takes.
  Result<std::pair<const std::string*, int>> Prepared();
  /// The next piece of its result: from what was read ahead, else the connection.
  Result<std::optional<pg::Rows>> Take();
  /// Reads the rest of its result off the connection, for Take.
  void ReadAhead();

  struct Prepared_ {
    std::vector<unsigned> types;
    std::string name;
    int parameters;
  };

  PgDatabase* db_;
  std::string sql_;
  bool simple_;  ///< transaction control, which cannot be prepared: sent as it is
  std::vector<pg::Param> params_;
  std::vector<unsigned> types_;  ///< of params_: 0 for text and NULL
  std::vector<Prepared_> prepared_;
  bool running_ = false;                    ///< sent; its rows not all read
  std::deque<pg::Rows> ahead_;              ///< read ahead by ReadAhead
  Status ahead_error_;                      ///< the error that ended ReadAhead, if any
  pg::Rows row_;                            ///< the current row
  mutable std::vector<std::string> bytes_;  ///< Blob's bytes of the current row
};

}  // namespace pingma::sql
