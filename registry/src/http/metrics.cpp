#include "http/metrics.h"

#include <fmt/format.h>

#include "pingma/common/prometheus.h"

namespace pingma::registry {
namespace {

using prometheus::Escape;
using prometheus::Header;
using prometheus::Histogram;

}  // namespace

std::string_view MethodLabel(std::string_view method) {
  for (std::string_view known : {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}) {
    if (method == known) return known;
  }
  return "OTHER";
}

void Metrics::Answered(std::string_view route, std::string_view method, int status,
                       std::chrono::steady_clock::duration took) {
  const double seconds = std::chrono::duration<double>(took).count();
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{std::string(route), std::string(MethodLabel(method)), status}];
  Latency& l = latency_[std::string(route)];
  ++l.buckets[prometheus::BucketOf(kLatencyBounds, seconds)];
  l.sum += seconds;
  ++l.count;
}

std::string Metrics::Text(const GroupCommitStats& store, const StoreFigures& figures) const {
  std::string out;
  Header(out, "pingma_build_info", "gauge", "The registry's version and commit (always 1).");
  out += fmt::format("pingma_build_info{{version=\"{}\",commit=\"{}\",store=\"{}\"}} 1\n",
                     Escape(version_), Escape(commit_), postgres_ ? "postgresql" : "sqlite");
  if (in_flight_ != nullptr) {
    Header(out, "pingma_http_requests_in_flight", "gauge", "Requests being answered now.");
    out += fmt::format("pingma_http_requests_in_flight {}\n", in_flight_->load());
  }
  if (tls_ != nullptr) {
    Header(out, "pingma_tls_certificate_expiry_timestamp_seconds", "gauge",
           "When the HTTPS certificate in use expires (Unix time).");
    out += fmt::format("pingma_tls_certificate_expiry_timestamp_seconds {}\n",
                       tls_->facts().not_after_unix);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    Header(out, "pingma_http_requests_total", "counter",
           "Requests answered, by route, method and status.");
    for (const auto& [key, n] : requests_) {
      const auto& [route, method, status] = key;
      out +=
          fmt::format("pingma_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{}\"}} {}\n",
                      Escape(route), method, status, n);
    }
    Header(out, "pingma_http_request_duration_seconds", "histogram",
           "Time from a request's arrival at the router to its answer (for a write: once "
           "durable), by route.");
    for (const auto& [route, l] : latency_) {
      Histogram(out, "pingma_http_request_duration_seconds",
                fmt::format("route=\"{}\",", Escape(route)), kLatencyBounds, l.buckets, l.sum);
    }
  }
  Header(out, "pingma_store_commits_total", "counter",
         "Write transactions the registry committed (or that failed), reruns included.");
  out += fmt::format("pingma_store_commits_total {}\n", store.batches.load());
  Header(out, "pingma_store_writes_total", "counter", "Writes run in those commits.");
  out += fmt::format("pingma_store_writes_total {}\n", store.jobs.load());
  Header(out, "pingma_store_commit_writes", "histogram",
         "Writes per group commit, as the writer took them.");
  Histogram(out, "pingma_store_commit_writes", "", kBatchBounds,
            prometheus::Load(store.batch_sizes), static_cast<double>(store.jobs.load()));
  if (!postgres_) {
    Header(out, "pingma_store_fsync_duration_seconds", "histogram",
           "fdatasync of the SQLite WAL that makes commits durable.");
    Histogram(out, "pingma_store_fsync_duration_seconds", "", kSyncBounds,
              prometheus::Load(store.sync_times), static_cast<double>(store.sync_us.load()) / 1e6);
    Header(out, "pingma_store_checkpoints_total", "counter", "SQLite WAL checkpoints run.");
    out += fmt::format("pingma_store_checkpoints_total {}\n", store.checkpoints.load());
  }
  if (figures.bytes) {
    Header(
        out, "pingma_store_size_bytes", "gauge",
        postgres_ ? "The PostgreSQL database's size." : "The SQLite file's size, WAL not counted.");
    out += fmt::format("pingma_store_size_bytes {}\n", *figures.bytes);
  }
  if (figures.tree_size) {
    Header(out, "pingma_log_tree_size", "gauge",
           "Events in the verifiable log's newest signed tree head.");
    out += fmt::format("pingma_log_tree_size {}\n", *figures.tree_size);
  }
  return out;
}

}  // namespace pingma::registry
