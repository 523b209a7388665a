#include "store/group_commit.h"

#include <pthread.h>

#include <algorithm>
#include <utility>

#include "store/store.h"

namespace pingma::registry {

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

Reply GroupCommit::RunJob(Conn& conn, const Job& job) {
  WriteTx tx(&conn, &batch_, clock_.Now(), hooks_);
  return InSavepoint(conn, "job", &batch_, *hooks_, [&] { return job(tx); });
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
    stats_->max_batch = std::max(stats_->max_batch, batch.size());
    stats_->jobs += batch.size();
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
                                  : steps_->BeginBatch(&batch_.head_seq, &batch_.head_hash);
    // Appends made elsewhere (another registry on the database, `token add`) since
    // this store's last commit: what its owner keeps from the log is read again.
    if (begun.ok() && known_seq_ >= 0 && hooks_->on_foreign_appends &&
        steps_->ForeignAppends(batch_.head_seq != known_seq_)) {
      hooks_->on_foreign_appends(steps_->BatchConnection(), known_seq_);
    }
    std::vector<Reply> replies;
    replies.reserve(batch.size());
    if (begun.ok()) {
      for (const Pending& p : batch) replies.push_back(RunJob(steps_->BatchConnection(), p.job));
    }
    // The batch's counts, a row once however many of its jobs counted in it.
    const Status counted =
        begun.ok() ? FlushCounts(steps_->BatchConnection(), &batch_.counts) : begun;
    const Status ended =
        counted.ok() ? steps_->CommitBatch(batch_.head_seq, batch_.head_hash) : counted;
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
    for (Pending& p : batch) answers.dones.push_back(std::move(p.done));
    answers.replies = std::move(replies);
    steps_->Answer(std::move(answers));
  }
}

}  // namespace pingma::registry
