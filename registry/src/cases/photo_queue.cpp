#include "cases/photo_queue.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace pingma::registry {

PhotoQueue::~PhotoQueue() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    threads.swap(threads_);
  }
  wake_.notify_all();
  for (auto& t : threads) t.join();
}

bool PhotoQueue::TrySubmit(std::function<void()>& job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (jobs_.size() >= waiting_ || stopping_) return false;
    jobs_.push_back(std::move(job));
    while (threads_.size() < workers_) threads_.emplace_back([this] { Work(); });
  }
  wake_.notify_one();
  return true;
}

void PhotoQueue::Work() {
  pthread_setname_np(pthread_self(), "pingma-photo");
  // Nice 10 for this thread alone (Linux gives each thread its own nice value):
  // fill checks and commits come first when the cores are busy. Failing to lower
  // it only costs that preference.
  (void)setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 10);
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, and nothing left
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

}  // namespace pingma::registry
