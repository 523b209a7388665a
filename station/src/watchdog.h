// systemd's readiness and watchdog for the station (libsystemd's sd_notify; the
// unit is Type=notify with WatchdogSec=). The watchdog is fed only while every
// watched thread comes round: a filling position stuck in a call that never
// returns, or an io thread that no longer runs, stops the feeding, and systemd
// restarts the station, whose positions lock their scales first on reconnect.
//
// A thread is stuck when it has not come round for half the watchdog's interval;
// the watchdog is fed every quarter of it. Outside systemd ($NOTIFY_SOCKET unset)
// every call here does nothing.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace pingma::station {

/// Tells systemd the station is up (READY=1), with a line for `systemctl status`.
void NotifyReady(const std::string& status);
/// Tells systemd the station is stopping (STOPPING=1).
void NotifyStopping();

class Watchdog {
 public:
  using Steady = std::chrono::steady_clock;
  /// A thread watched: its name for people, and when it last came round.
  struct Watched {
    std::string name;
    std::function<Steady::time_point()> last_round;
  };
  /// Called when a thread becomes stuck (and when it comes round again).
  using OnChange = std::function<void(const std::string& name, bool stuck, Steady::duration since)>;

  /// The interval systemd asks for ($WATCHDOG_USEC for this process), if any.
  static std::optional<std::chrono::microseconds> Interval();

  Watchdog(std::chrono::microseconds interval, std::vector<Watched> watched, OnChange on_change);
  ~Watchdog();  ///< stops the thread
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  void Loop();

  const std::chrono::microseconds interval_;
  const std::vector<Watched> watched_;
  const OnChange on_change_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace pingma::station
