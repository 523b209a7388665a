// The pure halves of the line sources: cutting a byte stream into scan lines
// (LineFramer) and collapsing a reader's repeats of one code (ScanDedup).
//
// Neither does I/O or reads a clock, so both are tested on their own
// (tests/scanner/line_framer_test.cpp); the sources in line_source.cpp and
// image_dir.cpp feed them what arrives and the time it arrived.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "pingma/scanner/source.h"

namespace pingma {

/// Why a line was dropped instead of delivered.
enum class LineDrop {
  kTooLong,      ///< over kMaxScanLineBytes before its terminator
  kNul,          ///< contains a NUL byte
  kInvalidUtf8,  ///< not valid UTF-8 (overlong forms and surrogates included)
  kHalfLine,     ///< the stream ended before the line's terminator
};

/// "too long", "contains NUL", "not valid UTF-8", "half line at end of stream".
const char* ToString(LineDrop drop);

/// Where LineFramer puts what it cuts. Implemented by each connection.
class LineSink {
 public:
  virtual ~LineSink() = default;
  /// One whole, non-empty, valid line without its terminator. The view is valid
  /// only during the call.
  virtual void OnLine(std::string_view line) = 0;
  /// A line dropped; `bytes` is its length, except for kTooLong, where it is always
  /// kMaxScanLineBytes + 1 ("over the limit"): the line is reported as soon as it
  /// passes the limit, before its end has arrived, and the rest is discarded
  /// silently up to the next terminator.
  virtual void OnDropped(LineDrop why, std::size_t bytes) = 0;
};

/// Cuts a byte stream into lines ended by CR, LF or CRLF (one terminator, also when
/// the CR ends one read and the LF starts the next). Empty lines are skipped and
/// nothing is trimmed. Whatever arrives, it holds at most kMaxScanLineBytes of a
/// line: a longer one is reported once and discarded up to its terminator, so an
/// endless line costs no memory. One framer per stream; not thread-safe.
class LineFramer {
 public:
  /// Feeds the next bytes of the stream; calls `sink` for each line they complete.
  void Feed(std::string_view bytes, LineSink& sink);
  /// The stream ended: a line begun and not terminated is reported as kHalfLine.
  /// The framer is then as new (max_buffered() aside).
  void Finish(LineSink& sink);

  /// Bytes of an unfinished line held now.
  std::size_t buffered() const { return line_.size(); }
  /// The most bytes ever held at once: never above kMaxScanLineBytes.
  std::size_t max_buffered() const { return max_buffered_; }

 private:
  void Append(std::string_view piece, LineSink& sink);
  void Complete(std::string_view tail, LineSink& sink);
  void Emit(std::string_view line, LineSink& sink);

  std::string line_;  // the unfinished line, when a read ended inside one
  std::size_t max_buffered_ = 0;
  bool discarding_ = false;  // inside a line already reported as too long
  bool after_cr_ = false;    // the last byte fed was a CR: a leading LF is its pair
};

/// True when `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no
/// surrogates, nothing above U+10FFFF).
bool IsValidUtf8(std::string_view text);

/// Collapses repeats: a text read again less than `window` after it was last read
/// is not a new scan. "Last read" counts the collapsed repeats too, so the window
/// slides: an RFID tag left on a reader that repeats it every 100 ms gives one scan
/// however long it stays, and a tag taken away for at least `window` and brought
/// back is a new scan. The window is half-open: a repeat exactly `window` after the
/// last read is a new scan. A window of 0 turns it off.
///
/// Memory is bounded: a fixed table of kSets x kWays entries (a set-associative
/// cache keyed by the text's hash), entries older than the window count as absent,
/// and a new text takes the oldest entry of its set. When more than kWays texts of
/// one set are read within one window, the oldest is forgotten and its next repeat
/// passes as a new scan: it fails open, never swallowing a real scan (texts are
/// compared whole, not by hash). A set's hashes and times share one cache line, so
/// a new text costs a hash, one line and a copy of the text; no allocation once an
/// entry's string has grown to its text. One per source; not thread-safe.
class ScanDedup {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::size_t kSets = 256;  // a power of two
  static constexpr std::size_t kWays = 4;

  explicit ScanDedup(std::chrono::milliseconds window);

  /// Whether `text`, read at `now`, is a new scan; records the read either way.
  /// `now` never goes back in a source; if it does, the entry counts as fresh.
  bool Accept(std::string_view text, Clock::time_point now);

  std::chrono::milliseconds window() const { return window_; }

 private:
  /// The hashes and last reads (clock ticks; kFree when unused) of one set.
  struct alignas(64) Set {
    std::uint64_t hash[kWays];
    std::int64_t last_read[kWays];
  };

  std::chrono::milliseconds window_;
  std::int64_t window_ticks_;
  std::array<Set, kSets> sets_;
  std::array<std::string, kSets * kWays> texts_;
};

}  // namespace pingma
