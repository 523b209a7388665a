// libFuzzer harness: LineFramer cuts any byte stream the same way however it is split
// into reads, every line it gives is non-empty, within 4 KiB, NUL-free valid UTF-8,
// and it never holds more than 4 KiB of a line.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "line_framer.h"

namespace {

struct Recorder : pingma::LineSink {
  std::vector<std::string> events;
  void OnLine(std::string_view line) override {
    if (line.empty() || line.size() > pingma::kMaxScanLineBytes) std::abort();
    if (line.find('\0') != std::string_view::npos || !pingma::IsValidUtf8(line)) std::abort();
    if (line.find_first_of("\r\n") != std::string_view::npos) std::abort();
    events.emplace_back(line);
  }
  void OnDropped(pingma::LineDrop why, std::size_t bytes) override {
    events.push_back("drop " + std::to_string(static_cast<int>(why)) + " " + std::to_string(bytes));
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // The first byte picks the read size for the split run.
  const std::size_t chunk = 1 + data[0] % 64;
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);

  pingma::LineFramer whole_framer, split_framer;
  Recorder whole, split;
  whole_framer.Feed(stream, whole);
  whole_framer.Finish(whole);
  for (std::size_t at = 0; at < stream.size(); at += chunk) {
    split_framer.Feed(stream.substr(at, chunk), split);
    if (split_framer.buffered() > pingma::kMaxScanLineBytes) std::abort();
  }
  split_framer.Finish(split);
  if (whole.events != split.events) std::abort();
  if (whole_framer.max_buffered() > pingma::kMaxScanLineBytes) std::abort();
  return 0;
}
