// The registry's SQLite store: the append-only event log with its SHA-256 hash
// chain, and the current state tables.
//
// Threading: every write runs on one writer thread, which owns the only writing
// connection and commits queued jobs in batches (group commit); each job runs in its
// own savepoint, so a job that fails changes nothing. Reads run on the caller's
// thread on a pooled read-only connection and see committed data only.
#pragma once

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
#include <vector>

#include "pingma/common/domain.h"
#include "reply.h"
#include "sqlite.h"

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
  explicit Conn(sql::Database db) : db_(std::move(db)) {}
  /// The prepared statement for `sql`, compiled once per connection, with its
  /// bindings cleared; reset again when the handle goes out of scope.
  Result<ScopedStatement> Prepare(const std::string& sql);
  sql::Database& db() { return db_; }

 private:
  sql::Database db_;
  std::unordered_map<std::string, sql::Statement> cache_;
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

/// The id of a log entry that has no natural id of its own: "ev-<seq>".
std::string EventId(std::int64_t seq);
/// The sequence number in an EventId, or nullopt when `id` is not one.
std::optional<std::int64_t> SeqOfEventId(std::string_view id);

/// SHA-256 over the previous link and the event's fields, length-prefixed.
std::string ChainHash(const std::string& prev_hash, std::int64_t seq, const Event& event);

/// Runs `fn` inside savepoint `name`: when it fails (an error reply or an
/// exception) its rows and its links in the chain are undone.
Reply InSavepoint(Conn& conn, const std::string& name, std::string* head_hash,
                  std::int64_t* head_seq, const std::function<Reply()>& fn);

/// The writer's view during one job.
class WriteTx {
 public:
  WriteTx(Conn* conn, std::string* head_hash, std::int64_t* head_seq, Instant now)
      : conn_(conn), head_hash_(head_hash), head_seq_(head_seq), now_(now) {}
  Conn& conn() { return *conn_; }
  Instant now() const { return now_; }
  /// Appends to the log and the chain; returns the event's sequence number.
  Result<std::int64_t> Append(Event event);
  /// Runs `fn` in a nested savepoint: a failed reply undoes its rows and its links
  /// in the chain, and leaves the rest of the job standing.
  Reply Nested(const std::function<Reply()>& fn);

 private:
  Conn* conn_;
  std::string* head_hash_;
  std::int64_t* head_seq_;
  Instant now_;
};

class Store {
 public:
  using Job = std::function<Reply(WriteTx&)>;
  using Done = std::function<void(Reply)>;

  /// Opens or creates the database and starts the writer thread.
  static Result<std::unique_ptr<Store>> Open(const std::string& path, const Clock& clock);
  ~Store();

  /// Queues a job. `done` runs on the writer thread once the job's batch has
  /// committed (or failed): a reply is never sent before its data is durable.
  void Submit(Job job, Done done);
  /// Submit and wait for the reply (command-line tools, tests).
  Reply Run(Job job);

  /// Runs `fn(Conn&)` on a pooled read-only connection.
  template <typename F>
  auto Read(F&& fn) {
    auto conn = AcquireReader();
    if (!conn.ok()) return decltype(fn(**conn))(conn.status());
    auto result = fn(**conn);
    ReleaseReader(std::move(*conn));
    return result;
  }

  /// Finishes the queued jobs, stops the writer and closes the database.
  void Close();

  /// Called on the writer thread when a batch fails to commit, so that caches of
  /// what the batch wrote can be dropped. Set before the first Submit.
  void set_on_commit_failure(std::function<void()> fn) { on_commit_failure_ = std::move(fn); }

  struct Stats {
    size_t batches = 0;    ///< transactions committed (or failed)
    size_t jobs = 0;       ///< jobs run in them
    size_t max_batch = 0;  ///< most jobs in one
  };
  /// Group-commit figures; read them after Close().
  const Stats& stats() const { return stats_; }

 private:
  Store(std::string path, const Clock& clock) : path_(std::move(path)), clock_(clock) {}
  Status Init();
  Status LoadHead();  ///< reads the chain's last link into head_seq_/head_hash_
  void WriterLoop();
  Result<std::unique_ptr<Conn>> AcquireReader();
  void ReleaseReader(std::unique_ptr<Conn> conn);

  struct Pending {
    Job job;
    Done done;
  };

  std::string path_;
  const Clock& clock_;
  std::function<void()> on_commit_failure_;
  std::unique_ptr<Conn> writer_;
  std::string head_hash_;
  std::int64_t head_seq_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  std::thread thread_;
  Stats stats_;  ///< written by the writer thread only

  std::mutex readers_mu_;
  std::vector<std::unique_ptr<Conn>> readers_;
};

/// Recomputes the hash chain of the database at `path`. OK with a summary
/// ("ok: 1234 events") or Corruption naming the first broken event.
Result<std::string> VerifyChain(const std::string& path);

}  // namespace pingma::registry
