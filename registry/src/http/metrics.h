// The registry's figures for Prometheus: GET /metrics on serve --metrics-listen, in
// Prometheus's text format (version 0.0.4). What a site watches: requests by route
// and status, their latency, the group commits' sizes and fsync times, the store's
// and the log's size (README, "Metrics").
//
// Labels are bounded: a route is its pattern ("/v1/cylinders/{}/history"), a page
// its first path segment ("/c"), anything else "other"; a method outside the usual
// seven is "OTHER". Thread-safety: Answered from any thread; Text from any thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

#include "http/tls_certificate.h"
#include "store/group_commit.h"

namespace pingma::registry {

/// Upper bounds of the request latency histogram, in seconds.
inline constexpr std::array<double, 12> kLatencyBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                          0.05,   0.1,   0.25,   0.5,   1,    5};

/// What the store holds, read when metrics are asked for.
struct StoreFigures {
  std::optional<std::int64_t> bytes;      ///< the database's size
  std::optional<std::int64_t> tree_size;  ///< events in the newest signed tree head
};

class Metrics {
 public:
  Metrics(std::string version, std::string commit, bool postgres)
      : version_(std::move(version)), commit_(std::move(commit)), postgres_(postgres) {}

  /// One request answered: its route label, method, status and time taken.
  void Answered(std::string_view route, std::string_view method, int status,
                std::chrono::steady_clock::duration took);

  /// Requests being answered now (serve's count).
  void set_in_flight(const std::atomic<int>* in_flight) { in_flight_ = in_flight; }
  /// HTTPS: the certificate whose expiry is shown; null: none.
  void set_tls(const TlsCertificate* tls) { tls_ = tls; }

  /// Every metric, in Prometheus's text format.
  std::string Text(const GroupCommitStats& store, const StoreFigures& figures) const;

 private:
  struct Latency {
    std::array<std::uint64_t, kLatencyBounds.size() + 1> buckets{};  ///< not cumulative
    double sum = 0;
    std::uint64_t count = 0;
  };
  const std::string version_, commit_;
  const bool postgres_;
  const std::atomic<int>* in_flight_ = nullptr;
  const TlsCertificate* tls_ = nullptr;
  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, int>, std::uint64_t> requests_;
  std::map<std::string, Latency> latency_;
};

/// The method as a label: one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, or OTHER.
std::string_view MethodLabel(std::string_view method);

}  // namespace pingma::registry
