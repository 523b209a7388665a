#include "line_framer.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace pingma {

const char* ToString(LineDrop drop) {
  switch (drop) {
    case LineDrop::kTooLong:
      return "too long";
    case LineDrop::kNul:
      return "contains NUL";
    case LineDrop::kInvalidUtf8:
      return "not valid UTF-8";
    case LineDrop::kHalfLine:
      return "half line at end of stream";
  }
  return "dropped";
}

namespace {

// The first CR or LF at or after `from`, or npos. Two memchr calls would each scan
// to the end of the read when the other byte comes first; one pass instead.
std::size_t FindTerminator(std::string_view bytes, std::size_t from) {
  const char* p = bytes.data();
  for (std::size_t i = from; i < bytes.size(); ++i) {
    if (p[i] == '\n' || p[i] == '\r') return i;
  }
  return std::string_view::npos;
}

}  // namespace

void LineFramer::Feed(std::string_view bytes, LineSink& sink) {
  std::size_t pos = 0;
  if (after_cr_ && !bytes.empty()) {
    after_cr_ = false;
    if (bytes[0] == '\n') pos = 1;  // the LF of a CRLF split between two reads
  }
  while (pos < bytes.size()) {
    const std::size_t end = FindTerminator(bytes, pos);
    if (end == std::string_view::npos) {
      Append(bytes.substr(pos), sink);
      return;
    }
    Complete(bytes.substr(pos, end - pos), sink);
    pos = end + 1;
    if (bytes[end] == '\r') {
      if (pos == bytes.size()) {
        after_cr_ = true;
      } else if (bytes[pos] == '\n') {
        ++pos;
      }
    }
  }
}

void LineFramer::Finish(LineSink& sink) {
  // A line discarded as too long was reported when it passed the limit.
  if (!discarding_ && !line_.empty()) sink.OnDropped(LineDrop::kHalfLine, line_.size());
  line_.clear();
  discarding_ = false;
  after_cr_ = false;
}

void LineFramer::Append(std::string_view piece, LineSink& sink) {
  if (discarding_) return;
  if (line_.size() + piece.size() > kMaxScanLineBytes) {
    // Report now rather than at the terminator, which may never come.
    discarding_ = true;
    sink.OnDropped(LineDrop::kTooLong, kMaxScanLineBytes + 1);
    line_.clear();
    return;
  }
  line_.append(piece);
  max_buffered_ = std::max(max_buffered_, line_.size());
}

void LineFramer::Complete(std::string_view tail, LineSink& sink) {
  if (discarding_) {
    discarding_ = false;
    return;
  }
  if (line_.empty()) {
    // The whole line is inside this read: hand it over without copying.
    Emit(tail, sink);
    return;
  }
  if (line_.size() + tail.size() > kMaxScanLineBytes) {
    sink.OnDropped(LineDrop::kTooLong, kMaxScanLineBytes + 1);
  } else {
    line_.append(tail);
    max_buffered_ = std::max(max_buffered_, line_.size());
    Emit(line_, sink);
  }
  line_.clear();
}

void LineFramer::Emit(std::string_view line, LineSink& sink) {
  if (line.empty()) return;
  if (line.size() > kMaxScanLineBytes) {
    sink.OnDropped(LineDrop::kTooLong, kMaxScanLineBytes + 1);
  } else if (std::memchr(line.data(), '\0', line.size()) != nullptr) {
    sink.OnDropped(LineDrop::kNul, line.size());
  } else if (!IsValidUtf8(line)) {
    sink.OnDropped(LineDrop::kInvalidUtf8, line.size());
  } else {
    sink.OnLine(line);
  }
}

bool IsValidUtf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    // The first continuation byte's range excludes overlong forms (E0, F0),
    // surrogates (ED) and code points above U+10FFFF (F4).
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;  // a continuation byte first, C0/C1 (overlong), or F5..FF
    }
    if (n - i < len) return false;
    if (s[i + 1] < lo || s[i + 1] > hi) return false;
    for (std::size_t k = 2; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

namespace {

constexpr std::int64_t kFree = std::numeric_limits<std::int64_t>::min();

std::uint64_t Load64(const char* p) {
  std::uint64_t word;
  std::memcpy(&word, p, sizeof word);
  return word;
}

std::uint64_t Load32(const char* p) {
  std::uint32_t word;
  std::memcpy(&word, p, sizeof word);
  return word;
}

std::uint64_t Mix(std::uint64_t h, std::uint64_t word) {
  h = (h ^ word) * 0xBF58476D1CE4E5B9ULL;
  return h ^ (h >> 31);
}

// A fast 64-bit hash of short texts: one multiply per 8 bytes (the last 8 read
// overlapping, so no byte loop and no memcpy call), then a finaliser that spreads
// every input bit over the low bits the set index uses. Not for an adversary: a
// collision costs a text comparison, never a wrong answer.
std::uint64_t HashText(std::string_view text) {
  const char* p = text.data();
  const std::size_t n = text.size();
  std::uint64_t h = 0x9E3779B97F4A7C15ULL ^ n;
  if (n >= 8) {
    std::size_t i = 0;
    for (; i + 8 < n; i += 8) h = Mix(h, Load64(p + i));
    h = Mix(h, Load64(p + n - 8));
  } else if (n >= 4) {
    h = Mix(h, Load32(p) | (Load32(p + n - 4) << 32));
  } else if (n > 0) {
    const auto byte = [p](std::size_t i) {
      return std::uint64_t{static_cast<unsigned char>(p[i])};
    };
    h = Mix(h, byte(0) | (byte(n / 2) << 8) | (byte(n - 1) << 16));
  }
  h *= 0x94D049BB133111EBULL;
  return h ^ (h >> 29);
}

}  // namespace

ScanDedup::ScanDedup(std::chrono::milliseconds window)
    : window_(window), window_ticks_(std::chrono::duration_cast<Clock::duration>(window).count()) {
  for (Set& set : sets_) {
    for (std::size_t w = 0; w < kWays; ++w) {
      set.hash[w] = 0;
      set.last_read[w] = kFree;
    }
  }
}

bool ScanDedup::Accept(std::string_view text, Clock::time_point now) {
  static_assert((kSets & (kSets - 1)) == 0, "kSets is a power of two");
  if (window_ticks_ <= 0) return true;
  const std::uint64_t hash = HashText(text);
  const std::size_t index = hash & (kSets - 1);
  Set& set = sets_[index];
  std::string* texts = &texts_[index * kWays];
  const std::int64_t t = now.time_since_epoch().count();
  std::size_t victim = 0;
  for (std::size_t w = 0; w < kWays; ++w) {
    if (set.hash[w] == hash && set.last_read[w] != kFree && texts[w] == text) {
      const bool repeat = t - set.last_read[w] < window_ticks_;
      set.last_read[w] = std::max(set.last_read[w], t);  // a repeat slides the window
      return !repeat;
    }
    // The one read longest ago; a free entry (kFree) before any other.
    if (set.last_read[w] < set.last_read[victim]) victim = w;
  }
  set.hash[victim] = hash;
  set.last_read[victim] = t;
  texts[victim].assign(text.data(), text.size());
  return true;
}

}  // namespace pingma
