#include "store/group_commit.h"

#include <pthread.h>

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "pingma/common/prometheus.h"
#include "store/store.h"

namespace pingma::registry {

std::string ForeignWindow::Query(std::string_view columns) const {
  if (!unchained) return fmt::format("SELECT {} FROM events WHERE seq > $1 ORDER BY seq", columns);
  if (from_revision < 0) {
    return fmt::format(
        "SELECT {} FROM unnest($1::bigint[]) AS w(r) "
        "CROSS JOIN LATERAL (SELECT * FROM events WHERE tx = w.r OFFSET 0) AS e "
        "ORDER BY tx, seq",
        columns);
  }
  return fmt::format(
      "SELECT {} FROM events WHERE (tx >= $1 OR tx = ANY($2::bigint[])) "
      "AND tx <> ALL($3::bigint[]) ORDER BY tx, seq",
      columns);
}

void ForeignWindow::Bind(sql::Statement& st) const {
  if (!unchained) {
    st.Bind(1, after_seq);
  } else if (from_revision < 0) {
    st.Bind(1, sql::BigintArrayText(revisions));
  } else {
    st.Bind(1, from_revision)
        .Bind(2, sql::BigintArrayText(revisions))
        .Bind(3, sql::BigintArrayText(own_revisions));
  }
}

void GroupCommit::Start() {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "pingma-writer");
    Loop();
  });
}

void GroupCommit::Submit(Job job, Done done) {
  bool refusing = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_ && !refusing_) {
      queue_.push_back({std::move(job), std::move(done)});
      if (writer_waiting_) cv_.notify_one();
      return;
    }
    refusing = refusing_;
  }
  done(ErrorReply(Status::Unavailable(
      refusing ? "the registry could not write to its disk and takes no more writes; "
                 "restart it once the disk is sound"
               : "the registry is shutting down")));
}

void GroupCommit::RefuseWrites() {
  std::lock_guard<std::mutex> lock(mu_);
  refusing_ = true;
}

bool GroupCommit::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return false;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  return true;
}

Reply GroupCommit::RunJob(Conn& conn, const Job& job, bool* raced) {
  WriteTx tx(&conn, &batch_, clock_.Now(), hooks_);
  const std::uint64_t races = conn.db().races();
  Reply reply = InSavepoint(
      conn, "job", &batch_, *hooks_, [&] { return job(tx); }, /*job=*/true);
  *raced = reply.failed() && conn.db().races() != races;
  return reply;
}

void GroupCommit::Loop() {
  std::vector<Pending> batch;
  bool refusing = false;
  for (;;) {
    {
      // What queued up while the last batch ran forms the next one. No waiting for
      // more: the clients of the last batch may still be waiting for their answers
      // (on SQLite, for the disk), and this thread need not wait with them.
      std::unique_lock<std::mutex> lock(mu_);
      writer_waiting_ = true;
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      writer_waiting_ = false;
      if (queue_.empty()) return;  // stopping, and everything queued is done
      refusing = refusing_;
      while (!queue_.empty() && batch.size() < kMaxBatch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    stats_->max_batch = std::max(stats_->max_batch.load(), batch.size());
    stats_->jobs += batch.size();
    ++stats_->batch_sizes[prometheus::BucketOf(kBatchBounds, static_cast<double>(batch.size()))];
    RunBatch(batch, refusing);
    batch.clear();
  }
}

void GroupCommit::RunBatch(std::vector<Pending>& batch, bool refusing) {
  for (bool again = true; again;) {
    again = false;
    ++stats_->batches;
    batch_.counts.clear();
    const Status begun = refusing ? Status::Unavailable(
                                        "the registry takes no more writes after a failed "
                                        "write to its disk; restart it")
                                  : steps_->BeginBatch(&batch_);
    // Appends made elsewhere (another registry on the database, `token add`) since
    // this store's last commit: what its owner keeps from the log is read again.
    if (begun.ok() && hooks_->on_foreign_appends) {
      if (auto window = steps_->ForeignAppends(batch_, known_seq_)) {
        hooks_->on_foreign_appends(steps_->BatchConnection(), *window);
      }
    }
    std::vector<Reply> replies;
    replies.reserve(batch.size());
    std::vector<bool> raced(batch.size(), false);
    if (begun.ok()) {
      for (size_t i = 0; i < batch.size(); ++i) {
        bool lost = false;
        replies.push_back(RunJob(steps_->BatchConnection(), batch[i].job, &lost));
        raced[i] = lost && batch[i].runs < kMostReruns;
      }
    }
    // The batch's counts, a row once however many of its jobs counted in it.
    const Status counted =
        begun.ok() ? FlushCounts(steps_->BatchConnection(), &batch_.counts) : begun;
    const Status ended = counted.ok() ? steps_->CommitBatch(batch_) : counted;
    if (!ended.ok()) {
      again = begun.ok() && steps_->RunAgain();
      steps_->AbandonBatch(ended, begun.ok());
      if (begun.ok() && hooks_->on_rollback) hooks_->on_rollback(/*whole_batch=*/true);
      if (again) continue;
      for (Pending& p : batch) p.done(ErrorReply(ended));
      return;
    }
    known_seq_ = batch_.head_seq;
    Answers answers;
    answers.dones.reserve(batch.size());
    answers.replies.reserve(batch.size());
    std::vector<Pending> again_later;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (raced[i]) {
        ++batch[i].runs;
        again_later.push_back(std::move(batch[i]));
        continue;
      }
      answers.dones.push_back(std::move(batch[i].done));
      answers.replies.push_back(std::move(replies[i]));
    }
    if (!again_later.empty()) {
      // First in the next batch, which reads what the other writer committed.
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = again_later.rbegin(); it != again_later.rend(); ++it) {
        queue_.push_front(std::move(*it));
      }
    }
    steps_->Answer(std::move(answers));
  }
}

}  // namespace pingma::registry
