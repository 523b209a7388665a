// The writer both stores share (group commit): one thread takes what was queued
// while its last batch ran, up to 1024 jobs, and runs them in one transaction, each
// job in its own savepoint, so that a job that fails changes nothing and a batch
// costs one commit however many jobs it holds. What differs between the stores —
// how a batch begins and commits, what a failed one leaves to undo, and when the
// answers of a committed one may go out — is the store's, through Steps.
//
// Threading: Submit, RefuseWrites and Stop from any thread; the Steps and the
// store's WriteHooks run on the writer thread.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "http/reply.h"
#include "pingma/common/domain.h"
#include "pingma/common/status.h"

namespace pingma::sql {
class Statement;  // store/sql.h
}

namespace pingma::registry {

class Conn;         // store.h
class WriteTx;      // store.h
struct WriteHooks;  // store.h

/// A counter row's increment: `upsert` adds `deltas` (its parameters after the
/// keys) to the row that `keys` ($1, $2, ...) name, making the row when missing.
/// Counts of one batch that name the same row are added up first, so that a hot
/// row (a station's day) is written once a batch, not once a job.
struct CountDelta {
  const char* upsert;  ///< a string literal: counts are grouped by its address
  std::vector<std::string> keys;
  std::vector<std::int64_t> deltas;
};
/// What the writer carries through a batch: where its events are numbered from,
/// and the counts its jobs have added so far (WriteTx::Count), written at its end
/// (FlushCounts).
///
/// A chained log (SQLite) numbers its events one after another in commit order,
/// each linked to the one before (chain.h): the batch starts at the head. An
/// unchained one (PostgreSQL, where registries append at once) takes its
/// numbers in blocks from the database (seq_limit), with gaps, and gives every
/// event and row it writes its transaction's revision: readers follow those, not
/// the numbers, which need not be in commit order.
struct BatchState {
  std::string head_hash;  ///< the chain's last link (chained)
  std::int64_t head_seq = 0;
  bool chained = true;
  /// The last number of the block in hand; past it, a new block (unchained).
  std::int64_t seq_limit = INT64_MAX;
  /// The batch's revision (unchained): what its cylinders' `rev` and its
  /// events' `tx` say; 0 on a chained log, where an event's seq is its revision.
  std::int64_t revision = 0;
  std::vector<CountDelta> counts;
};
/// The events some other writer appended since this store last looked (another
/// registry on the database, `token add`), for WriteHooks::on_foreign_appends:
/// on a chained log those after a seq; on an unchained one those of the
/// revisions that were not yet committed when it last looked, but this store's
/// own: as a list (`revisions`), or, when that would be long, those from
/// `from_revision` on and `revisions` (the ones then still open below it), but
/// `own_revisions`. (A list, each revision looked up by itself, so that
/// PostgreSQL's plan for the statement, made once and perhaps while the table
/// was small, reads the index however the table has grown.)
struct ForeignWindow {
  std::int64_t after_seq = 0;
  bool unchained = false;
  std::int64_t from_revision = -1;  ///< unchained, a long window; else -1
  std::vector<std::int64_t> revisions;
  std::vector<std::int64_t> own_revisions;
  /// The statement that selects `columns` (of events) of the window's events, in
  /// the log's order.
  std::string Query(std::string_view columns) const;
  /// Binds its parameters.
  void Bind(sql::Statement& st) const;
};
/// Upper bounds of the histogram of jobs per commit.
inline constexpr std::array<double, 11> kBatchBounds = {1,  2,   4,   8,   16,  32,
                                                        64, 128, 256, 512, 1024};
/// Upper bounds of the histogram of fsync times, in seconds.
inline constexpr std::array<double, 10> kSyncBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                       0.025,  0.05,  0.1,    0.25,  1};

/// Group-commit figures (Store::stats()): written by the store's threads, read by
/// any (metrics), each on its own.
struct GroupCommitStats {
  std::atomic<size_t> batches{0};             ///< transactions committed (or failed)
  std::atomic<size_t> jobs{0};                ///< jobs run in them
  std::atomic<size_t> max_batch{0};           ///< most jobs in one
  std::atomic<size_t> syncs{0};               ///< fdatasync calls that made batches durable
  std::atomic<size_t> sync_us{0};             ///< time spent in them, in microseconds
  std::atomic<size_t> checkpoints{0};         ///< WAL checkpoints run, by either thread
  std::atomic<size_t> writer_checkpoints{0};  ///< of those, run by the writer itself
  /// Batches taken by the writer by their jobs, per kBatchBounds bucket (prometheus::BucketOf;
  /// not cumulative; the last: more than every bound).
  std::array<std::atomic<size_t>, kBatchBounds.size() + 1> batch_sizes{};
  /// The fsyncs by their time, per kSyncBounds bucket, likewise.
  std::array<std::atomic<size_t>, kSyncBounds.size() + 1> sync_times{};
};

class GroupCommit {
 public:
  using Job = std::function<Reply(WriteTx&)>;
  using Done = std::function<void(Reply)>;
  /// A committed batch's jobs: each one's `done`, and its reply.
  struct Answers {
    std::vector<Done> dones;
    std::vector<Reply> replies;
  };

  /// A store's part in each batch, on the writer thread.
  class Steps {
   public:
    virtual ~Steps() = default;
    /// Opens the batch's transaction and sets where its events are numbered
    /// from: the chain's head, or a block and revision (BatchState). An error
    /// fails the batch: every job is answered with it.
    virtual Status BeginBatch(BatchState* batch) = 0;
    /// The connection the batch runs on, once begun.
    virtual Conn& BatchConnection() = 0;
    /// The appends made elsewhere since this store's last commit, when there may
    /// be some; `known_seq`: the chained head that commit left (-1 before it).
    virtual std::optional<ForeignWindow> ForeignAppends(const BatchState& batch,
                                                        std::int64_t known_seq) {
      if (known_seq < 0 || batch.head_seq == known_seq) return std::nullopt;
      return ForeignWindow{known_seq, false, -1, {}, {}};
    }
    /// Commits the batch (and, on a chained log, its head: batch.head_*).
    virtual Status CommitBatch(const BatchState& batch) = 0;
    /// Asked once when a begun batch failed, before AbandonBatch: whether its
    /// jobs should run again at once in a new batch, because the failure was none
    /// of theirs to see (a write held back failed: sql::Statement::Defer).
    virtual bool RunAgain() { return false; }
    /// Undoes what is left of a batch that failed with `error` (`begun`: its
    /// BeginBatch succeeded); its jobs are answered with the error after this.
    virtual void AbandonBatch(const Status& error, bool begun) = 0;
    /// Hands out a committed batch's answers: at once, or once it is durable.
    virtual void Answer(Answers answers) = 0;
  };

  /// `steps`, `hooks` and `stats` outlive the writer (Stop).
  GroupCommit(Steps* steps, const Clock& clock, const WriteHooks* hooks, GroupCommitStats* stats)
      : steps_(steps), clock_(clock), hooks_(hooks), stats_(stats) {}
  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;
  ~GroupCommit() { Stop(); }

  /// Starts the writer thread.
  void Start();
  /// Queues a job; `done` gets Unavailable at once when the writer is stopping or
  /// refuses writes.
  void Submit(Job job, Done done);
  /// A write to the disk failed: what was committed may not be on it, so from now
  /// on no job is taken and no batch begins, until the store is opened again.
  void RefuseWrites();
  /// Runs the jobs queued so far, then ends the thread; false when it had been
  /// stopped before.
  bool Stop();

  /// A job that failed for a race (RunJob) is run again in the next batch at most
  /// this often; then its error goes out. (A unique key that a job's write hits is
  /// a race when another registry wrote it meanwhile, and a true repeat when not:
  /// the two look alike, and a repeat fails each time.)
  static constexpr int kMostReruns = 2;

 private:
  struct Pending {
    Job job;
    Done done;
    int runs = 0;  ///< batches that ran it and ran it again (RunJob's `raced`)
  };
  void Loop();
  /// Runs one job in its own savepoint. `*raced`: it failed because another
  /// writer on the database wrote the same rows at once (a unique key taken
  /// meanwhile, a deadlock: sql::Database::races), so that the next batch runs it
  /// again, reading afresh.
  Reply RunJob(Conn& conn, const Job& job, bool* raced);

  /// Runs `batch` in one transaction and answers its jobs.
  void RunBatch(std::vector<Pending>& batch, bool refusing);

  static constexpr size_t kMaxBatch = 1024;
  Steps* const steps_;
  const Clock& clock_;
  const WriteHooks* const hooks_;
  GroupCommitStats* const stats_;  ///< batches, jobs, max_batch: the writer's
  // The writer thread's.
  BatchState batch_;
  std::int64_t known_seq_ = -1;  ///< the head after this store's last commit

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  /// Submit wakes the writer only when it waits: a busy writer looks at the
  /// queue before it waits again.
  bool writer_waiting_ = false;
  bool stopping_ = false;
  bool refusing_ = false;  ///< RefuseWrites was called
  std::thread thread_;
};

}  // namespace pingma::registry
