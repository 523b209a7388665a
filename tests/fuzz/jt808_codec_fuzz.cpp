// libFuzzer harness: the JT/T 808 codec on any byte stream. The splitter cuts it the
// same way however it is split into reads and never holds more than kMaxFrame; every
// frame that decodes is written back to the same bytes (but bit 15 of the properties,
// reserved, which is not kept); every body decoder and the
// sub-package assembler take whatever comes without reading past it.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "jt808/codec.h"

namespace {

using namespace pingma::registry::jt808;

std::vector<std::string> Events(const std::vector<pingma::Result<std::string>>& out) {
  std::vector<std::string> events;
  for (const auto& r : out) events.push_back(r.ok() ? "F" + *r : "E" + r.status().message());
  return events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // The first byte picks the read size for the split run.
  const std::size_t chunk = 1 + data[0] % 64;
  const std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);

  FrameSplitter whole_splitter, split_splitter;
  std::vector<pingma::Result<std::string>> whole, split;
  whole_splitter.Feed(stream, whole);
  for (std::size_t at = 0; at < stream.size(); at += chunk) {
    split_splitter.Feed(stream.substr(at, chunk), split);
    if (split_splitter.buffered() > kMaxFrame) std::abort();
  }
  if (Events(whole) != Events(split)) std::abort();

  PackageAssembler assembler({4, std::chrono::milliseconds(1000)});
  PackageAssembler::Clock::time_point now{};
  for (const auto& raw : whole) {
    if (!raw.ok()) continue;
    if (raw->size() > kMaxFrame - 1) std::abort();
    auto frame = DecodeFrame(*raw);
    if (!frame.ok()) continue;
    // Written back, the frame is the same bytes.
    auto wire = EncodeFrame(frame->header, frame->body);
    if (!wire.ok()) std::abort();
    FrameSplitter again;
    std::vector<pingma::Result<std::string>> back;
    again.Feed(*wire, back);
    std::string expected = *raw;
    expected[2] = static_cast<char>(expected[2] & 0x7f);
    if (back.size() != 1 || !back[0].ok() || *back[0] != expected) std::abort();
    // Every decoder, whatever the message id says.
    (void)DecodeRegistration(*frame);
    (void)DecodeAuthentication(*frame);
    (void)DecodeLocation(frame->body);
    (void)DecodeBatchLocation(frame->body);
    if (frame->header.package) {
      now += std::chrono::milliseconds(300);
      auto out = assembler.Add(*frame, now);
      if (assembler.buffered() > 4 * kMaxBody) std::abort();
      if (out.message && out.message->body.size() > 4 * kMaxBody) std::abort();
    }
  }
  return 0;
}
