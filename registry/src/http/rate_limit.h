// How many things one client may do within a sliding window: the public form's
// reports per address, the label photos per token; and the key an address is
// counted under (AddressKey), by these limits and by the bad-token throttle.
//
// Thread-safety: Take may be called from any thread.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pingma::registry {

/// What limits count a client by: an IPv4 address as it is; an IPv6 address by its
/// /64 (one subscriber or host gets a whole /64 and may send from any address in
/// it), written as "2001:db8:1:2::/64", its zone index ("%eth0") dropped; an
/// IPv4-mapped IPv6 address as the IPv4 address; anything else (no address, a
/// name) as it is.
std::string AddressKey(std::string_view address);

class SlidingWindowLimit {
 public:
  SlidingWindowLimit(std::size_t per_window, std::int64_t window_ms)
      : per_window_(per_window), window_ms_(window_ms) {}

  std::size_t per_window() const { return per_window_; }
  std::int64_t window_ms() const { return window_ms_; }

  /// Counts one for `key` at `now_ms` if its window has room; false when it has
  /// not, with the seconds until it has in `*retry_after_s`.
  bool Take(const std::string& key, std::int64_t now_ms, std::int64_t* retry_after_s) {
    const std::int64_t since = now_ms - window_ms_;
    std::lock_guard<std::mutex> lock(mu_);
    // Keeps the map to the keys of the last window.
    if (times_.size() > kMaxKeys) {
      for (auto it = times_.begin(); it != times_.end();) {
        it = it->second.empty() || it->second.back() <= since ? times_.erase(it) : std::next(it);
      }
    }
    auto& times = times_[key];
    times.erase(
        std::remove_if(times.begin(), times.end(), [since](std::int64_t t) { return t <= since; }),
        times.end());
    if (times.size() >= per_window_) {
      *retry_after_s = (times.front() + window_ms_ - now_ms) / 1000 + 1;
      return false;
    }
    times.push_back(now_ms);
    return true;
  }

 private:
  static constexpr std::size_t kMaxKeys = 100000;
  const std::size_t per_window_;
  const std::int64_t window_ms_;
  std::mutex mu_;
  std::unordered_map<std::string, std::vector<std::int64_t>> times_;  ///< under mu_
};

}  // namespace pingma::registry
