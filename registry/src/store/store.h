// The registry's SQLite store: the append-only event log with its SHA-256 hash
// chain, and the current state tables.
//
// Threading: every write runs on one writer thread, which owns the only writing
// connection and commits queued jobs in batches (group commit, group_commit.h); each
// job runs in its own savepoint, so a job that fails changes nothing. Syncer threads make each
// committed batch durable (fdatasync of the WAL) and only then hand out its
// replies, while the writer goes on with the next batch. Reads run on the caller's
// thread on a pooled read-only connection and see committed data only, which may
// be a moment ahead of what is durable: answers built from them go out through
// WhenDurable. A checkpointer thread copies the WAL into the database on its own
// connection, so that the writer does not stop for it (but see wal_frames_).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "http/reply.h"
#include "pingma/common/domain.h"
#include "store/chain.h"
#include "store/group_commit.h"
#include "store/sql.h"
#include "store/sqlite.h"

namespace pingma::registry {

/// A cached statement in use. Resetting it on scope exit matters: a statement left
/// mid-result keeps its connection's read snapshot open, and later reads on that
/// connection would not see newer commits.
class ScopedStatement {
 public:
  explicit ScopedStatement(sql::Statement* statement) : statement_(statement) {}
  ScopedStatement(ScopedStatement&& other) noexcept : statement_(other.statement_) {
    other.statement_ = nullptr;
  }
  ScopedStatement(const ScopedStatement&) = delete;
  ScopedStatement& operator=(const ScopedStatement&) = delete;
  ScopedStatement& operator=(ScopedStatement&&) = delete;
  ~ScopedStatement() {
    if (statement_) statement_->Reset();
  }
  sql::Statement* operator->() const { return statement_; }
  sql::Statement& operator*() const { return *statement_; }

 private:
  sql::Statement* statement_;
};

/// A connection and its cache of prepared statements. One thread at a time.
class Conn {
 public:
  explicit Conn(std::unique_ptr<sql::Database> db) : db_(std::move(db)) {}
  /// The prepared statement for `sql`, compiled once per connection, with its
  /// bindings cleared; reset again when the handle goes out of scope.
  Result<ScopedStatement> Prepare(const std::string& sql);
  sql::Database& db() { return *db_; }
  /// Which SQL the connection speaks, for the few places where the two differ
  /// (store/sql.h).
  sql::Dialect dialect() const { return db_->dialect(); }

 private:
  // The statements go before their connection.
  std::unique_ptr<sql::Database> db_;
  std::unordered_map<std::string, std::unique_ptr<sql::Statement>> cache_;
};

/// The read connections a store keeps for reuse: one is taken for a read and given
/// back after; a new one is opened by `open` when none is free, and one whose
/// connection broke is dropped on its return. Thread-safe.
class ReaderPool {
 public:
  using Open = std::function<Result<std::unique_ptr<Conn>>()>;
  explicit ReaderPool(Open open) : open_(std::move(open)) {}

  Result<std::unique_ptr<Conn>> Acquire() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!free_.empty()) {
        auto conn = std::move(free_.back());
        free_.pop_back();
        return conn;
      }
    }
    return open_();
  }
  void Release(std::unique_ptr<Conn> conn) {
    if (!conn->db().ok()) return;  // broken: the next read opens another
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(std::move(conn));
  }
  /// Closes the free connections (the store closes, or its server went away).
  void Clear() {
    std::lock_guard<std::mutex> lock(mu_);
    free_.clear();
  }

 private:
  Open open_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Conn>> free_;
};

/// One entry of the log.
struct Event {
  std::string id;    ///< empty: Append names it EventId(seq)
  std::string code;  ///< the cylinder's code; empty for set-up events
  std::string type;
  Instant at;
  std::string actor_role;
  std::string actor_id;
  std::string body;  ///< JSON object with the details
};

/// The log's per-cylinder index is partitioned by `seq >> kEventBucketBits`
/// (events_by_code_time), so that appends touch only the newest partition. A
/// query of one code's events walks the partitions in order.
constexpr int kEventBucketBits = 16;

/// The `meta` key that marks the regulator's fill-check counts as filled from the
/// log; the store clears it when it creates their tables (cases/fill_checks.cpp fills them).
constexpr const char* kCheckCountsKey = "check_counts_complete";

/// The columns of an event, in the order EventOfRow reads them after `seq`.
inline constexpr const char* kEventColumns = "seq, id, code, type, at, actor_role, actor_id, body";
/// The event of a row selected with kEventColumns first (its seq in column 0).
Event EventOfRow(const sql::Statement& st);

/// The id of a log entry that has no natural id of its own: "ev-<seq>".
std::string EventId(std::int64_t seq);
/// The sequence number in an EventId, or nullopt when `id` is not one.
std::optional<std::int64_t> SeqOfEventId(std::string_view id);

/// Runs `sql`, a DELETE, with its parameters bound by `bind`; on SQLite with
/// secure_delete on, so that the freed cells are zeroed rather than left in the
/// file's pages for a copy to find (personal data, a key). The rows deleted.
Result<std::int64_t> SecureDeleteRows(Conn& conn, const std::string& sql,
                                      const std::function<void(sql::Statement&)>& bind);

/// What the writer tells the owner of the store, on the writer thread, so that
/// caches of what is written stay true.
struct WriteHooks {
  /// Work was undone: a job's savepoint rolled back (false), or a whole batch
  /// failed to commit (true).
  std::function<void(bool whole_batch)> on_rollback;
  /// An event was appended (not yet committed).
  std::function<void(const Event&)> on_append;
  /// At the start of a batch: the log may hold appends this store did not make
  /// (another registry on the same database, or `token add`), those that
  /// `window` selects, so that what was kept from the log must be read again.
  std::function<void(Conn& conn, const ForeignWindow& window)> on_foreign_appends;
};

/// Runs a count's upsert at once (or held back: sql::Statement::Defer).
Status ApplyCount(Conn& conn, const CountDelta& count, bool defer = false);

/// Writes a batch's counts, those of one row added up, and clears them.
Status FlushCounts(Conn& conn, std::vector<CountDelta>* counts);

/// Runs `fn` inside savepoint `name`: when it fails (an error reply or an
/// exception) its rows, its links in the chain and its counts are undone.
/// `job`: `fn` is a batch's job, not nested in another; where the database can
/// undo its writes without a savepoint (sql::Database::MarkWrites) it takes none.
Reply InSavepoint(Conn& conn, const std::string& name, BatchState* batch, const WriteHooks& hooks,
                  const std::function<Reply()>& fn, bool job = false);

/// The writer's view during one job.
class WriteTx {
 public:
  WriteTx(Conn* conn, BatchState* batch, Instant now, const WriteHooks* hooks)
      : conn_(conn), batch_(batch), now_(now), hooks_(hooks) {}
  Conn& conn() { return *conn_; }
  Instant now() const { return now_; }
  /// Appends to the log (and the chain, where it is chained); returns the
  /// event's sequence number.
  Result<std::int64_t> Append(Event event);
  /// Appends `events` in their order, as Append does each, in statements of many
  /// rows (a round trip per 500 events, not per event, on PostgreSQL); returns
  /// their sequence numbers.
  Result<std::vector<std::int64_t>> AppendAll(std::vector<Event> events);
  /// What a row written with the event of `seq` records as its revision
  /// (cylinders' `rev`, tokens' `revoked_seq`): the batch's revision on an
  /// unchained log, else the seq. Readers that follow rows by it read only below
  /// the horizon (HorizonSql).
  std::int64_t Revision(std::int64_t seq) const {
    return batch_->revision != 0 ? batch_->revision : seq;
  }
  /// Makes the job's next event's number larger than `seq` (an unchained log,
  /// whose batch took its block when it began: a new block then, which the
  /// database gives above every number given before).
  void NumberAfter(std::int64_t seq) {
    if (!batch_->chained && seq > batch_->head_seq) batch_->seq_limit = batch_->head_seq;
  }
  /// Adds to a counter row when the batch commits, with the job (undone with it).
  void Count(CountDelta count) { batch_->counts.push_back(std::move(count)); }
  /// Runs `fn` in a nested savepoint: a failed reply undoes its rows and its links
  /// in the chain, and leaves the rest of the job standing.
  Reply Nested(const std::function<Reply()>& fn);

 private:
  /// The next event's number: the head's next, or the next of the block in hand.
  Result<std::int64_t> NextSeq();

  Conn* conn_;
  BatchState* batch_;
  Instant now_;
  const WriteHooks* hooks_;
};

/// How many numbers an unchained log's writer takes at once (PostgreSQL's
/// event_seq steps by it: schema/pg/0009).
inline constexpr std::int64_t kSeqBlock = 1024;

/// The revision below which every row and event is final on `conn`'s store, for
/// readers that follow them by revision: on PostgreSQL, where writers commit at
/// once and out of order, the oldest revision still being written (every
/// revision below it committed or rolled back); on SQLite, one writer, all.
inline const char* HorizonSql(const Conn& conn) {
  return conn.dialect() == sql::Dialect::kPostgres ? "pingma_horizon()" : "9223372036854775807";
}

/// The store the use cases write and read through: SQLite (SqliteStore, the
/// default) or PostgreSQL (PgStore, pg_store.h), chosen by Open from the path.
class Store {
 public:
  using Job = GroupCommit::Job;
  using Done = GroupCommit::Done;

  /// Opens the SQLite file at `path` (created if missing), or the PostgreSQL
  /// database when `path` is a connection string (pg::IsConnectionString), and
  /// starts the writer.
  static Result<std::unique_ptr<Store>> Open(const std::string& path, const Clock& clock);
  virtual ~Store() = default;

  /// Queues a job. `done` runs once the job's batch has committed and is durable
  /// (or when it failed): a reply is never sent before its data is durable.
  virtual void Submit(Job job, Done done) = 0;
  /// Submit and wait for the reply (command-line tools, tests).
  Reply Run(Job job);

  /// Runs `fn(Conn&)` on a pooled reading connection.
  template <typename F>
  auto Read(F&& fn) {
    auto conn = AcquireReader();
    if (!conn.ok()) return decltype(fn(**conn))(conn.status());
    auto result = fn(**conn);
    ReleaseReader(std::move(*conn));
    return result;
  }

  /// Finishes the queued jobs, stops the writer and closes the database.
  virtual void Close() = 0;

  /// Whether this registry is the one that sequences the verifiable log
  /// (cases/verifiable_log.h), asked before each of its rounds: on SQLite always
  /// (one registry writes a file); on PostgreSQL the registry that holds a lock
  /// on a connection of its own, which it keeps while it lives and which the
  /// server frees when that connection ends (its registry stopped or killed).
  /// One thread (the sequencer's).
  virtual Result<bool> LeadLog() { return true; }

  /// Set before the first Submit.
  void set_hooks(WriteHooks hooks) { hooks_ = std::move(hooks); }
  /// Runs `fn` at the start of Close, before the writer stops, so that its owner
  /// may queue its last writes (the tokens' last use); empty removes it. Any
  /// thread: once this returns, an earlier `fn` is not running and will not run.
  void set_before_close(std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(before_close_mu_);
    before_close_ = std::move(fn);
  }

  /// Runs `fn` once every commit that a read made before this call could have
  /// seen is durable, so that an answer built from reads never shows a write
  /// before that write is acknowledged.
  virtual void WhenDurable(std::function<void()> fn) = 0;

  using Stats = GroupCommitStats;
  /// Group-commit figures; read them after Close().
  const Stats& stats() const { return stats_; }

 protected:
  Store() = default;
  virtual Result<std::unique_ptr<Conn>> AcquireReader() = 0;
  virtual void ReleaseReader(std::unique_ptr<Conn> conn) = 0;

  /// Close's first step: runs the before-close function, once.
  void RunBeforeClose() {
    std::lock_guard<std::mutex> lock(before_close_mu_);
    if (before_close_) std::exchange(before_close_, nullptr)();
  }

  WriteHooks hooks_;
  /// batches, jobs, writer_checkpoints: the writer's; syncs: the syncers', under
  /// their lock; checkpoints: the checkpointer's.
  Stats stats_;

 private:
  std::mutex before_close_mu_;
  std::function<void()> before_close_;  ///< under before_close_mu_
};

/// The SQLite store (see the top of this file).
class SqliteStore final : public Store, private GroupCommit::Steps {
 public:
  static Result<std::unique_ptr<SqliteStore>> Open(const std::string& path, const Clock& clock);
  ~SqliteStore() override;

  /// `done` runs on a syncer thread once the job's batch has committed and reached
  /// the disk (or on the writer thread when it failed).
  void Submit(Job job, Done done) override;
  void Close() override;
  /// At once when durable already, otherwise on a syncer thread after the
  /// fdatasync that covers it. (A failed sync ends the waiting too: no later sync
  /// will come.)
  void WhenDurable(std::function<void()> fn) override;

  /// Tests only: runs on the syncer thread just before each fdatasync.
  void set_before_sync_for_test(std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(sync_mu_);
    before_sync_ = std::move(fn);
  }
  /// The WAL checkpoint threshold, in frames, for tests (before the first Submit);
  /// the writer's own threshold becomes eight times it.
  void set_checkpoint_frames_for_test(int frames) {
    checkpoint_frames_ = frames;
    writer_checkpoint_frames_ = frames * 8;
  }

 protected:
  Result<std::unique_ptr<Conn>> AcquireReader() override;
  void ReleaseReader(std::unique_ptr<Conn> conn) override;

 private:
  SqliteStore(std::string path, const Clock& clock)
      : path_(std::move(path)), clock_(clock), readers_([this] { return OpenReader(); }) {}
  /// A new read-only connection, for the pool.
  Result<std::unique_ptr<Conn>> OpenReader() const;
  Status Init();
  /// Reads the chain's last link.
  Status LoadHead(std::int64_t* seq, std::string* hash);
  // The group commit's steps (group_commit.h): BEGIN IMMEDIATE and the head; a
  // COMMIT that leaves the fdatasync to the syncers, who answer after it.
  Status BeginBatch(BatchState* batch) override;
  Conn& BatchConnection() override { return *writer_; }
  Status CommitBatch(const BatchState& batch) override;
  void AbandonBatch(const Status& error, bool begun) override;
  void Answer(GroupCommit::Answers answers) override;
  void SyncLoop();
  /// The checkpointer thread: checkpoints the WAL into the database on its own
  /// connection whenever the writer asks, while the writer goes on.
  void CheckpointLoop();
  /// A checkpoint of the WAL on `db` (PASSIVE, with real syncs), one at a time:
  /// the writer's waits for the checkpointer's to end instead of failing busy.
  void Checkpoint(sqlite3* db);
  /// fdatasync of the WAL file: every commit written so far reaches the disk.
  Status SyncWal(int* fd);
  /// WhenDurable's callbacks that the syncs so far have released (under sync_mu_).
  std::vector<std::function<void()>> TakeReadsCovered();
  /// A committed batch on its way to the disk.
  using Committed = GroupCommit::Answers;
  /// Queues a batch for the syncers (which also release the reads waiting for it).
  void HandToSyncers(Committed committed);

  std::string path_;
  const Clock& clock_;
  std::unique_ptr<Conn> writer_;
  /// Pages in the WAL after the last commit (SQLite's WAL hook). Each time it has
  /// grown by kCheckpointFrames, the writer asks the checkpointer for a checkpoint
  /// (where SQLite would checkpoint by itself, on the writer). The
  /// WAL starts afresh only at a commit that finds all of it checkpointed, which
  /// a checkpoint running beside the writer may keep missing: from
  /// kWriterCheckpointFrames on, the writer checkpoints itself, between batches,
  /// so the WAL stays bounded. Past half that, the checkpointer is asked after
  /// every commit, so that little is left for the writer.
  int wal_frames_ = 0;
  static constexpr int kCheckpointFrames = 1000;
  static constexpr int kWriterCheckpointFrames = 32000;
  int checkpoint_frames_ = kCheckpointFrames;
  int ckpt_asked_at_ = 0;  ///< wal_frames_ when the checkpointer was last asked (writer only)
  int writer_checkpoint_frames_ = kWriterCheckpointFrames;
  /// The writer thread. A failed sync makes it refuse further writes
  /// (RefuseWrites): what was committed may not be on the disk.
  GroupCommit group_commit_{this, clock_, &hooks_, &stats_};

  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  std::deque<Committed> to_sync_;
  int sync_waiting_ = 0;  ///< syncers idle
  bool sync_stopping_ = false;
  /// Syncers: with two, a batch committed while one is in fdatasync need not wait
  /// for it to end before its own begins.
  static constexpr int kSyncers = 2;
  std::vector<std::thread> syncers_;
  Status sync_failure_ = Status::Ok();  ///< the first failed sync
  /// Commits begun (counted before COMMIT publishes them to readers) and ended
  /// (after it returns, committed or not); and, under sync_mu_, how many of
  /// those ended a finished fdatasync has covered.
  std::atomic<std::uint64_t> commits_begun_{0};
  std::atomic<std::uint64_t> commits_ended_{0};
  std::uint64_t synced_ = 0;
  /// WhenDurable's waiting callbacks, with the commit count each waits for.
  std::vector<std::pair<std::uint64_t, std::function<void()>>> waiting_reads_;
  std::function<void()> before_sync_;  ///< under sync_mu_

  sqlite3* writer_handle_ = nullptr;  ///< writer_'s connection, for its WAL hook and checkpoints
  ReaderPool readers_;

  std::mutex ckpt_mu_;
  std::mutex ckpt_run_mu_;  ///< held while a checkpoint runs
  std::condition_variable ckpt_cv_;
  bool ckpt_wanted_ = false;
  bool ckpt_stopping_ = false;
  std::unique_ptr<sql::SqliteDatabase> ckpt_db_;  ///< the checkpointer's (the platform's VFS)
  std::thread checkpointer_;
};

}  // namespace pingma::registry
