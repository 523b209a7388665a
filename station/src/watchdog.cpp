#include "watchdog.h"

#include <pthread.h>
#include <systemd/sd-daemon.h>

#include <fmt/format.h>

namespace pingma::station {

void NotifyReady(const std::string& status) {
  sd_notify(0, fmt::format("READY=1\nSTATUS={}", status).c_str());
}

void NotifyStopping() {
  sd_notify(0, "STOPPING=1\nSTATUS=stopping");
}

std::optional<std::chrono::microseconds> Watchdog::Interval() {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec);
}

Watchdog::Watchdog(std::chrono::microseconds interval, std::vector<Watched> watched,
                   OnChange on_change)
    : interval_(interval), watched_(std::move(watched)), on_change_(std::move(on_change)) {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "station-watch");
    Loop();
  });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Watchdog::Loop() {
  const auto stuck_after = interval_ / 2;
  std::vector<bool> stuck(watched_.size(), false);
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    lock.unlock();
    bool all_round = true;
    const Steady::time_point now = Steady::now();
    for (size_t i = 0; i < watched_.size(); ++i) {
      const Steady::duration since = now - watched_[i].last_round();
      const bool is_stuck = since > stuck_after;
      if (is_stuck != stuck[i]) {
        stuck[i] = is_stuck;
        on_change_(watched_[i].name, is_stuck, since);
      }
      all_round = all_round && !is_stuck;
    }
    if (all_round) sd_notify(0, "WATCHDOG=1");
    lock.lock();
    cv_.wait_for(lock, interval_ / 4, [this] { return stop_; });
  }
}

}  // namespace pingma::station
