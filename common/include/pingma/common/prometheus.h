// Prometheus's text format (version 0.0.4), written by hand: the registry's and the
// station's GET /metrics. Label values are escaped here; names are the caller's.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pingma::prometheus {

/// The Content-Type of the text format.
inline constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

/// A label value with \, " and newlines escaped.
std::string Escape(std::string_view value);

/// The # HELP and # TYPE lines of a metric.
void Header(std::string& out, std::string_view name, std::string_view type, std::string_view help);

/// A histogram's _bucket, _sum and _count lines from its buckets: `buckets[i]` counts
/// the values at most bounds[i] (and above the bound before), buckets[n] those above
/// every bound; `labels` is "" or `route="x",` (with its comma). Its count is the
/// buckets' sum.
void Histogram(std::string& out, std::string_view name, std::string_view labels,
               const double* bounds, std::size_t n, const std::uint64_t* buckets, double sum);

template <std::size_t N>
void Histogram(std::string& out, std::string_view name, std::string_view labels,
               const std::array<double, N>& bounds, const std::array<std::uint64_t, N + 1>& buckets,
               double sum) {
  Histogram(out, name, labels, bounds.data(), N, buckets.data(), sum);
}

/// What counters updated by other threads hold now, as Histogram takes them.
template <typename T, std::size_t N>
std::array<std::uint64_t, N> Load(const std::array<std::atomic<T>, N>& counters) {
  std::array<std::uint64_t, N> out{};
  for (std::size_t i = 0; i < N; ++i) out[i] = counters[i].load();
  return out;
}

/// The bucket of `value` among ascending `bounds`: the first bound it does not exceed,
/// or N past them all.
template <std::size_t N>
std::size_t BucketOf(const std::array<double, N>& bounds, double value) {
  std::size_t i = 0;
  while (i < N && value > bounds[i]) ++i;
  return i;
}

}  // namespace pingma::prometheus
