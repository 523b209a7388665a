// The scale driver measured, for the station's GET /metrics: each operation's calls,
// failures and time (one operation is one or a few Modbus requests: a reading of
// gross, status, heartbeat and fault code is one request when they lie together).
// A decorator of any Scale; what it measures is read from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "scale.h"

namespace pingma::station {

/// Upper bounds of the operation time histogram, in seconds (a Modbus round trip is
/// about 1 ms over TCP, 10 ms at 9600 baud; the response deadline is the profile's).
inline constexpr std::array<double, 9> kScaleTimeBounds = {0.001, 0.0025, 0.005, 0.01, 0.025,
                                                           0.05,  0.1,    0.25,  1};

/// What the driver was asked to do.
enum class ScaleOperation { kConnect, kRead, kCutoff, kInterlock, kCommand, kSignals };
inline constexpr std::array<const char*, 6> kScaleOperations = {"connect",   "read",    "cutoff",
                                                                "interlock", "command", "signals"};

struct ScaleCounters {
  struct PerOperation {
    std::atomic<std::uint64_t> calls{0};
    std::atomic<std::uint64_t> failures{0};  ///< answered with an error
    std::atomic<std::uint64_t> micros{0};    ///< time spent, in microseconds
    std::array<std::atomic<std::uint64_t>, kScaleTimeBounds.size() + 1> buckets{};
  };
  std::array<PerOperation, kScaleOperations.size()> operations{};
};

/// `scale`, each call counted in `*counters` (which must outlive it).
std::unique_ptr<Scale> Measured(std::unique_ptr<Scale> scale, ScaleCounters* counters);

}  // namespace pingma::station
