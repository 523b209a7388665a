#include "pingma/common/prometheus.h"

#include <fmt/format.h>

namespace pingma::prometheus {

std::string Escape(std::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  return out;
}

void Header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void Histogram(std::string& out, std::string_view name, std::string_view labels,
               const double* bounds, std::size_t n, const std::uint64_t* buckets, double sum) {
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= n; ++i) {
    running += buckets[i];
    const std::string le = i < n ? fmt::format("{}", bounds[i]) : std::string("+Inf");
    out += fmt::format("{}_bucket{{{}le=\"{}\"}} {}\n", name, labels, le, running);
  }
  const std::string plain =
      labels.empty() ? std::string() : fmt::format("{{{}}}", labels.substr(0, labels.size() - 1));
  out += fmt::format("{}_sum{} {}\n{}_count{} {}\n", name, plain, sum, name, plain, running);
}

}  // namespace pingma::prometheus
