// The registry's store on PostgreSQL: its schema (versioned migrations applied at
// start) and the log appended there. (`migrate` copies a SQLite store into it:
// store/migrate.cpp.)
//
// The schema keeps the SQLite store's tables and columns, so that the same rows
// mean the same things in both, made for distribution: every cylinder-scoped
// table is keyed by the code, and the event log is partitioned by time (monthly,
// on `at`), with partitions made ahead of time and a default partition so that
// no append can fail for want of one. N registries on one database append to
// one log without a lock between them (schema/pg/0009 says how): the hash chain
// of the log's first events ends at the link `chain_head` keeps, and the
// verifiable log's tree (cases/verifiable_log.h) vouches for every event.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "pingma/common/status.h"
#include "store/pg.h"
#include "store/pg_sql.h"
#include "store/store.h"

namespace pingma::registry {

/// The store on PostgreSQL. One writer thread per registry commits queued jobs in
/// batches (group commit), each job in its own savepoint, as SqliteStore does. A
/// batch's transaction (READ COMMITTED) takes no lock of the log's: it numbers its
/// events from a block of its own (BatchState), and the batches of every registry
/// commit side by side; what a decision needs to be consistent is guarded by the
/// rows it concerns. At its start a batch reads the events that other registries
/// committed since its last one (ForeignWindow), so that its caches are as true as
/// under one writer. Answers wait for the
/// COMMIT (synchronous_commit, and a synchronous standby where one is set up),
/// never for one round trip per request. Within a batch, writes that need no
/// answer are held back and sent together (sql::Statement::Defer, libpq's pipeline
/// mode), the last of them with the COMMIT; a batch whose
/// held-back write failed is run again at once with every write waited for. A lost connection fails
/// the batch with kUnavailable (HTTP 503, retryable) and the next batch connects again: given
/// several hosts and target_session_attrs=read-write, to the new primary.
class PgStore final : public Store, private GroupCommit::Steps {
 public:
  static Result<std::unique_ptr<PgStore>> Open(const std::string& conninfo, const Clock& clock);
  ~PgStore() override;

  void Submit(Job job, Done done) override;
  void Close() override;
  /// At once: a read sees only what is committed, and committed is durable.
  void WhenDurable(std::function<void()> fn) override { fn(); }
  /// A session advisory lock (kLogLeadLock) on a connection of the sequencer's:
  /// tried while another registry holds it, checked while this one does.
  Result<bool> LeadLog() override;

 protected:
  Result<std::unique_ptr<Conn>> AcquireReader() override;
  void ReleaseReader(std::unique_ptr<Conn> conn) override;

 private:
  PgStore(std::string conninfo, const Clock& clock)
      : conninfo_(std::move(conninfo)), clock_(clock), readers_([this] { return OpenReader(); }) {}
  /// A new read connection, for the pool.
  Result<std::unique_ptr<Conn>> OpenReader() const;
  /// The writer's connection, made again after a failure.
  Status Connect();
  // The group commit's steps (group_commit.h): a batch locks the chain's head row
  // and writes it back; its answers go at COMMIT. Every failure is Unavailable.
  Status BeginBatch(BatchState* batch) override;
  Conn& BatchConnection() override { return *writer_; }
  std::optional<ForeignWindow> ForeignAppends(const BatchState& batch,
                                              std::int64_t known_seq) override;
  Status CommitBatch(const BatchState& batch) override;
  bool RunAgain() override;
  void AbandonBatch(const Status& error, bool begun) override;
  /// The writer's connection as the PostgreSQL statements' (to hold writes back).
  sql::PgDatabase& Writer();
  void Answer(GroupCommit::Answers answers) override;

  std::string conninfo_;
  const Clock& clock_;
  std::unique_ptr<Conn> writer_;
  /// What the batch's start did not see committed: revisions from unseen_from_
  /// on, and unseen_open_ (ForeignAppends).
  std::int64_t unseen_from_ = -1;
  std::vector<std::int64_t> unseen_open_;
  /// The same of the batch before: what this batch reads (ForeignWindow).
  std::int64_t window_from_ = -1;
  std::vector<std::int64_t> window_open_;
  /// This store's committed batches' revisions that a window may hold.
  std::vector<std::int64_t> own_revisions_;
  bool strict_ = false;  ///< the next batch holds nothing back (RunAgain said yes)
  GroupCommit group_commit_{this, clock_, &hooks_, &stats_};

  ReaderPool readers_;

  std::mutex lead_mu_;                  ///< LeadLog against Close
  std::optional<pg::Connection> lead_;  ///< the sequencer's, under lead_mu_
  bool leading_ = false;                ///< lead_ holds the lock (under lead_mu_)
};

}  // namespace pingma::registry

namespace pingma::registry::pgstore {

/// The advisory lock the log's sequencer holds (PgStore::LeadLog).
inline constexpr std::int64_t kLogLeadLock = 0x70696e676d61 + 1;  // "pingma" + 1

/// Applies the migrations `conn`'s database lacks, each in its own transaction,
/// under an advisory lock (registries starting together apply each once), then
/// makes the event log's partitions for this month and the next three.
Status ApplyMigrations(pg::Connection& conn);

/// Makes the monthly partitions of the event log that hold the Unix-ms times from
/// `from_ms` to `to_ms` (both included), where missing.
Status MakePartitions(pg::Connection& conn, std::int64_t from_ms, std::int64_t to_ms);

}  // namespace pingma::registry::pgstore
