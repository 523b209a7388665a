// Label photos decoded off the HTTP threads (POST /v1/scan/image): a fixed number
// of workers, at a lower CPU priority than the HTTP and store threads, take jobs
// from a bounded queue. A job that finds the queue full is refused, not queued,
// so that photos cannot take the server's threads or memory from fill checks.
//
// Thread-safety: TrySubmit may be called from any thread. The destructor runs the
// jobs still waiting, then joins the workers.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace pingma::registry {

class PhotoQueue {
 public:
  /// `workers` threads (started on the first job), at most `waiting` jobs queued
  /// beside those in hand.
  PhotoQueue(std::size_t workers, std::size_t waiting) : workers_(workers), waiting_(waiting) {}
  ~PhotoQueue();
  PhotoQueue(const PhotoQueue&) = delete;
  PhotoQueue& operator=(const PhotoQueue&) = delete;

  /// Queues `job`, moved from only when it is queued; false when `waiting` jobs
  /// already wait.
  bool TrySubmit(std::function<void()>& job);

  std::size_t workers() const { return workers_; }
  std::size_t waiting() const { return waiting_; }

 private:
  void Work();

  const std::size_t workers_;
  const std::size_t waiting_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> jobs_;  ///< under mu_
  bool stopping_ = false;                   ///< under mu_
  std::vector<std::thread> threads_;        ///< under mu_
};

}  // namespace pingma::registry
