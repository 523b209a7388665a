#include "http/metrics.h"

#include <fmt/format.h>

namespace pingma::registry {
namespace {

std::string Escaped(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void Header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

// A histogram's lines from its buckets (not cumulative; the last past every bound);
// `labels` is "" or `route="x",`. Its count is the buckets' sum.
template <size_t N, typename Count>
void HistogramLines(std::string& out, std::string_view name, const std::string& labels,
                    const std::array<double, N>& bounds, const std::array<Count, N + 1>& buckets,
                    double sum) {
  std::uint64_t running = 0;
  for (size_t i = 0; i <= N; ++i) {
    running += static_cast<std::uint64_t>(buckets[i]);
    const std::string le = i < N ? fmt::format("{}", bounds[i]) : std::string("+Inf");
    out += fmt::format("{}_bucket{{{}le=\"{}\"}} {}\n", name, labels, le, running);
  }
  const std::string plain = labels.empty() ? "" : "{" + labels.substr(0, labels.size() - 1) + "}";
  out += fmt::format("{}_sum{} {}\n{}_count{} {}\n", name, plain, sum, name, plain, running);
}

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
  ++l.buckets[BucketOf(kLatencyBounds, seconds)];
  l.sum += seconds;
  ++l.count;
}

std::string Metrics::Text(const GroupCommitStats& store, const StoreFigures& figures) const {
  std::string out;
  Header(out, "pingma_build_info", "gauge", "The registry's version and commit (always 1).");
  out += fmt::format("pingma_build_info{{version=\"{}\",commit=\"{}\",store=\"{}\"}} 1\n",
                     Escaped(version_), Escaped(commit_), postgres_ ? "postgresql" : "sqlite");
  if (in_flight_ != nullptr) {
    Header(out, "pingma_http_requests_in_flight", "gauge", "Requests being answered now.");
    out += fmt::format("pingma_http_requests_in_flight {}\n", in_flight_->load());
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    Header(out, "pingma_http_requests_total", "counter",
           "Requests answered, by route, method and status.");
    for (const auto& [key, n] : requests_) {
      const auto& [route, method, status] = key;
      out +=
          fmt::format("pingma_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{}\"}} {}\n",
                      Escaped(route), method, status, n);
    }
    Header(out, "pingma_http_request_duration_seconds", "histogram",
           "Time from a request's arrival at the router to its answer (for a write: once "
           "durable), by route.");
    for (const auto& [route, l] : latency_) {
      HistogramLines(out, "pingma_http_request_duration_seconds",
                     fmt::format("route=\"{}\",", Escaped(route)), kLatencyBounds, l.buckets,
                     l.sum);
    }
  }
  Header(out, "pingma_store_commits_total", "counter",
         "Write transactions the registry committed (or that failed), reruns included.");
  out += fmt::format("pingma_store_commits_total {}\n", store.batches.load());
  Header(out, "pingma_store_writes_total", "counter", "Writes run in those commits.");
  out += fmt::format("pingma_store_writes_total {}\n", store.jobs.load());
  std::array<std::uint64_t, kBatchBounds.size() + 1> sizes{};
  for (size_t i = 0; i < sizes.size(); ++i) sizes[i] = store.batch_sizes[i].load();
  Header(out, "pingma_store_commit_writes", "histogram",
         "Writes per group commit, as the writer took them.");
  HistogramLines(out, "pingma_store_commit_writes", "", kBatchBounds, sizes,
                 static_cast<double>(store.jobs.load()));
  if (!postgres_) {
    std::array<std::uint64_t, kSyncBounds.size() + 1> syncs{};
    for (size_t i = 0; i < syncs.size(); ++i) syncs[i] = store.sync_times[i].load();
    Header(out, "pingma_store_fsync_duration_seconds", "histogram",
           "fdatasync of the SQLite WAL that makes commits durable.");
    HistogramLines(out, "pingma_store_fsync_duration_seconds", "", kSyncBounds, syncs,
                   static_cast<double>(store.sync_us.load()) / 1e6);
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
