// LineFramer and ScanDedup: the pure halves of the line sources, table-driven.
#include "line_framer.h"

#include <doctest/doctest.h>

#include <chrono>
#include <cstddef>
#include <random>
#include <string>
#include <vector>

namespace pingma {
namespace {

// What the framer did, one string per call: "L:text" or "D:why:bytes".
class RecordingSink final : public LineSink {
 public:
  void OnLine(std::string_view line) override { events.push_back("L:" + std::string(line)); }
  void OnDropped(LineDrop why, std::size_t bytes) override {
    events.push_back(std::string("D:") + ToString(why) + ":" + std::to_string(bytes));
  }
  std::vector<std::string> events;
};

std::vector<std::string> Frame(const std::vector<std::string>& chunks, bool finish) {
  LineFramer framer;
  RecordingSink sink;
  for (const std::string& chunk : chunks) framer.Feed(chunk, sink);
  if (finish) framer.Finish(sink);
  return sink.events;
}

const std::string kLong(kMaxScanLineBytes, 'x');  // the longest line that passes

struct FramingCase {
  const char* name;
  std::vector<std::string> chunks;
  bool finish;
  std::vector<std::string> expected;
};

TEST_CASE("LineFramer cuts lines at CR, LF and CRLF and refuses what is not a scan line") {
  using namespace std::string_literals;
  const std::vector<FramingCase> cases = {
      {"LF", {"A\nB\n"}, false, {"L:A", "L:B"}},
      {"CR", {"A\rB\r"}, false, {"L:A", "L:B"}},
      {"CRLF is one terminator", {"A\r\nB\r\n"}, false, {"L:A", "L:B"}},
      {"LFCR is two, the empty line between skipped", {"A\n\rB\n"}, false, {"L:A", "L:B"}},
      {"CR LF split across reads", {"A\r", "\nB\n"}, false, {"L:A", "L:B"}},
      {"CR then a line across reads", {"A\r", "B\n"}, false, {"L:A", "L:B"}},
      {"CR then CR across reads", {"A\r", "\rB\n"}, false, {"L:A", "L:B"}},
      {"CR, empty read, LF", {"A\r", "", "\nB\n"}, false, {"L:A", "L:B"}},
      {"empty lines skipped", {"\n\n\r\n\r\rA\n\n"}, false, {"L:A"}},
      {"nothing trimmed", {" A \t\n"}, false, {"L: A \t"}},
      {"a space is a line", {" \n"}, false, {"L: "}},
      {"line across reads", {"HB01", "0000", "0123\n"}, false, {"L:HB0100000123"}},
      {"byte by byte", {"H", "B", "\r", "\n", "1", "\n"}, false, {"L:HB", "L:1"}},
      {"no terminator yet", {"HB01"}, false, {}},
      {"half line at the end", {"A\nHB01"}, true, {"L:A", "D:half line at end of stream:4"}},
      {"nothing left at the end", {"A\n"}, true, {"L:A"}},
      {"a CR left at the end is no half line", {"A\r"}, true, {"L:A"}},
      {"NUL", {"A\0B\nC\n"s}, false, {"D:contains NUL:3", "L:C"}},
      {"NUL across reads", {"A"s, "\0"s, "B\nC\n"s}, false, {"D:contains NUL:3", "L:C"}},
      {"UTF-8 passes", {"瓶码\n"}, false, {"L:瓶码"}},
      {"4-byte UTF-8 passes", {"\xF0\x9F\x94\xA5\n"}, false, {"L:\xF0\x9F\x94\xA5"}},
      {"lone continuation byte", {"A\x80\nB\n"}, false, {"D:not valid UTF-8:2", "L:B"}},
      {"Latin-1", {"caf\xE9\n"}, false, {"D:not valid UTF-8:4"}},
      {"overlong slash", {"\xC0\xAF\n"}, false, {"D:not valid UTF-8:2"}},
      {"overlong 3 bytes", {"\xE0\x80\xAF\n"}, false, {"D:not valid UTF-8:3"}},
      {"surrogate", {"\xED\xA0\x80\n"}, false, {"D:not valid UTF-8:3"}},
      {"above U+10FFFF", {"\xF4\x90\x80\x80\n"}, false, {"D:not valid UTF-8:4"}},
      {"truncated sequence", {"\xE7\x93\n"}, false, {"D:not valid UTF-8:2"}},
      {"UTF-8 split across reads", {"\xE7\x93", "\xB6\n"}, false, {"L:瓶"}},
      {"4096 bytes pass", {kLong + "\n"}, false, {"L:" + kLong}},
      {"4096 bytes across reads pass",
       {kLong.substr(0, 100), kLong.substr(100) + "\n"},
       false,
       {"L:" + kLong}},
      {"4097 bytes in one read", {kLong + "y\nB\n"}, false, {"D:too long:4097", "L:B"}},
      {"4097 bytes, terminator in the next read",
       {kLong.substr(0, 10), kLong.substr(10) + "y", "\nB\n"},
       false,
       {"D:too long:4097", "L:B"}},
      {"4097 bytes, terminator with its tail",
       {kLong, "y\nB\n"},
       false,
       {"D:too long:4097", "L:B"}},
      {"too long reported once, rest discarded",
       {kLong, kLong, kLong, "tail\rB\n"},
       false,
       {"D:too long:4097", "L:B"}},
      {"too long then end of stream: no half-line notice",
       {kLong, "yy"},
       true,
       {"D:too long:4097"}},
      {"too long ended by CR, LF in the next read",
       {kLong + "y", "\r", "\nB\n"},
       false,
       {"D:too long:4097", "L:B"}},
  };
  for (const FramingCase& c : cases) {
    const std::string name = c.name;
    CAPTURE(name);
    CHECK(Frame(c.chunks, c.finish) == c.expected);
  }
}

TEST_CASE("LineFramer gives the same lines however the stream is split") {
  const std::string stream = std::string("HB0100000123\r\nEPC:3074\n\r\n瓶码\rcaf\xE9\n") +
                             std::string(5000, 'z') + "\nA\0B\nlast\r";
  const std::vector<std::string> whole = Frame({stream}, true);
  REQUIRE(whole.size() == 6);
  for (std::size_t cut1 = 0; cut1 <= stream.size(); cut1 += 7) {
    for (std::size_t cut2 = cut1; cut2 <= stream.size(); cut2 += 331) {
      CAPTURE(cut1);
      CAPTURE(cut2);
      CHECK(Frame({stream.substr(0, cut1), stream.substr(cut1, cut2 - cut1), stream.substr(cut2)},
                  true) == whole);
    }
  }
}

TEST_CASE("LineFramer holds at most kMaxScanLineBytes whatever arrives") {
  std::mt19937 rng(20240611);
  LineFramer framer;
  RecordingSink sink;
  // 10 MB: an endless line in random-sized reads, then random bytes, then a line.
  std::string chunk;
  std::size_t fed = 0;
  while (fed < 10'000'000) {
    const std::size_t n = std::uniform_int_distribution<std::size_t>(1, 70'000)(rng);
    chunk.assign(n, 'x');
    if (fed > 5'000'000) {
      for (char& c : chunk) c = static_cast<char>(rng() & 0xFF);
    }
    framer.Feed(chunk, sink);
    fed += n;
    CHECK(framer.buffered() <= kMaxScanLineBytes);
  }
  framer.Feed("\nHB0100000123\n", sink);
  CHECK(framer.max_buffered() <= kMaxScanLineBytes);
  REQUIRE(!sink.events.empty());
  CHECK(sink.events.front() == "D:too long:4097");
  CHECK(sink.events.back() == "L:HB0100000123");
}

TEST_CASE("IsValidUtf8 at the edges of each sequence length") {
  const struct {
    const char* text;
    bool valid;
  } cases[] = {
      {"", true},
      {"\x7F", true},
      {"\xC2\x80", true},           // U+0080, the first 2-byte
      {"\xC1\xBF", false},          // overlong U+007F
      {"\xDF\xBF", true},           // U+07FF
      {"\xE0\xA0\x80", true},       // U+0800
      {"\xE0\x9F\xBF", false},      // overlong U+07FF
      {"\xED\x9F\xBF", true},       // U+D7FF
      {"\xED\xA0\x80", false},      // U+D800 surrogate
      {"\xEE\x80\x80", true},       // U+E000
      {"\xEF\xBF\xBF", true},       // U+FFFF
      {"\xF0\x90\x80\x80", true},   // U+10000
      {"\xF0\x8F\xBF\xBF", false},  // overlong U+FFFF
      {"\xF4\x8F\xBF\xBF", true},   // U+10FFFF
      {"\xF4\x90\x80\x80", false},  // U+110000
      {"\xF5\x80\x80\x80", false},
      {"\xFF", false},
      {"\xE7\x93\xB6\xE7\xA0\x81", true},  // 瓶码
      {"\xE7\x93\xB6\xE7\xA0", false},     // cut inside the second
      {"\xE7\x41\xB6", false},             // ASCII where a continuation belongs
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    CHECK(IsValidUtf8(c.text) == c.valid);
  }
}

using Clock = ScanDedup::Clock;
using std::chrono::milliseconds;

struct DedupStep {
  int at_ms;
  const char* text;
  bool new_scan;
};

struct DedupCase {
  const char* name;
  int window_ms;
  std::vector<DedupStep> steps;
};

TEST_CASE("ScanDedup collapses repeats within the window, which each repeat slides") {
  const std::vector<DedupCase> cases = {
      {"first read is a scan", 2000, {{0, "A", true}}},
      {"just inside the window", 2000, {{0, "A", true}, {1999, "A", false}}},
      {"exactly at the window is a new scan", 2000, {{0, "A", true}, {2000, "A", true}}},
      {"just after the window", 2000, {{0, "A", true}, {2001, "A", true}}},
      {"same instant", 2000, {{0, "A", true}, {0, "A", false}}},
      {"other texts do not collapse", 2000, {{0, "A", true}, {1, "B", true}, {2, "A", false}}},
      {"a tag left on the reader: one scan in 10 s",
       2000,
       {{0, "T", true},
        {1500, "T", false},
        {3000, "T", false},
        {4500, "T", false},
        {6000, "T", false},
        {7500, "T", false},
        {9000, "T", false},
        {10000, "T", false}}},
      {"taken away for the window and brought back",
       2000,
       {{0, "T", true}, {1500, "T", false}, {3499, "T", false}, {5499, "T", true}}},
      {"window measured from the last repeat, not the first read",
       2000,
       {{0, "T", true},
        {1999, "T", false},
        {3998, "T", false},
        {5997, "T", false},
        {7997, "T", true}}},
      {"window 0 turns it off", 0, {{0, "A", true}, {0, "A", true}, {1, "A", true}}},
      {"1 ms window", 1, {{0, "A", true}, {0, "A", false}, {1, "A", true}}},
      {"case matters", 2000, {{0, "hb01", true}, {1, "HB01", true}}},
  };
  for (const DedupCase& c : cases) {
    const std::string name = c.name;
    CAPTURE(name);
    ScanDedup dedup{milliseconds(c.window_ms)};
    const Clock::time_point t0 = Clock::now();
    for (const DedupStep& step : c.steps) {
      CAPTURE(step.at_ms);
      CHECK(dedup.Accept(step.text, t0 + milliseconds(step.at_ms)) == step.new_scan);
    }
  }
}

TEST_CASE("ScanDedup stays bounded and fails open when more texts than it holds come at once") {
  ScanDedup dedup{milliseconds(2000)};
  const Clock::time_point t0 = Clock::now();
  const std::size_t capacity = ScanDedup::kSets * ScanDedup::kWays;
  // Ten times its capacity of distinct texts within one window: each is a scan.
  for (std::size_t i = 0; i < capacity * 10; ++i) {
    CHECK(dedup.Accept("HB" + std::to_string(i), t0 + milliseconds(1)));
  }
  // The most recent ones are still remembered...
  CHECK_FALSE(dedup.Accept("HB" + std::to_string(capacity * 10 - 1), t0 + milliseconds(2)));
  // ... and a few texts repeated among many others are always collapsed.
  std::size_t repeats_passed = 0;
  for (std::size_t i = 0; i < 1000; ++i) {
    const Clock::time_point now = t0 + milliseconds(3 + static_cast<int>(i));
    static_cast<void>(dedup.Accept("X" + std::to_string(i), now));
    if (dedup.Accept("HB" + std::to_string(capacity * 10 - 1 - i % 3), now)) {
      ++repeats_passed;
    }
  }
  CHECK(repeats_passed == 0);
}

}  // namespace
}  // namespace pingma
