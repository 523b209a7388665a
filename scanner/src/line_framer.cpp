#include "line_framer.h"

#include <algorithm>
#include <cstring>
#include <functional>

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

bool ScanDedup::Accept(std::string_view text, Clock::time_point now) {
  if (window_.count() <= 0) return true;
  const std::uint64_t hash = std::hash<std::string_view>{}(text);
  Entry* set = &entries_[(hash % kSets) * kWays];
  Entry* victim = &set[0];
  for (std::size_t w = 0; w < kWays; ++w) {
    Entry& e = set[w];
    if (e.used && e.hash == hash && e.text == text) {
      const bool repeat = now - e.last_read < window_;
      e.last_read = std::max(e.last_read, now);  // a repeat slides the window
      return !repeat;
    }
    // Prefer a free entry, then the one read longest ago (expired ones first).
    if (!victim->used) continue;
    if (!e.used || e.last_read < victim->last_read) victim = &e;
  }
  victim->used = true;
  victim->hash = hash;
  victim->last_read = now;
  victim->text.assign(text.data(), text.size());
  return true;
}

}  // namespace pingma
