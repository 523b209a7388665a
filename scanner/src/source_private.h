// What the scan sources share inside the scanner library: the way a scan or a
// notice reaches the handlers, and the image-dir factory that MakeScanSource calls.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "line_framer.h"
#include "pingma/scanner/source.h"

namespace pingma {

/// The handlers and the dedup table of one source, and whether it has stopped.
/// Shared by the source and every pending handler of its connections, so it
/// outlives the source until the last cancelled handler has run; once stopped,
/// nothing more reaches the handlers. Used on the io_context's thread only.
class Delivery {
 public:
  Delivery(ScanHandler on_scan, NoticeHandler on_notice, std::chrono::milliseconds window)
      : on_scan_(std::move(on_scan)), on_notice_(std::move(on_notice)), dedup_(window) {}

  /// Hands `text` to the scan handler in `scan` (whose origin and symbology the
  /// caller has set; kept between calls so that a line costs no allocation),
  /// unless the source has stopped or `text` repeats a read within the window.
  void Deliver(std::string_view text, Scan& scan, ScanDedup::Clock::time_point now) {
    if (stopped_ || !dedup_.Accept(text, now)) return;
    scan.text.assign(text.data(), text.size());
    if (on_scan_) on_scan_(scan);
  }

  void Notify(SourceNotice::Level level, std::string message) {
    if (stopped_ || !on_notice_) return;
    on_notice_(SourceNotice{level, std::move(message)});
  }
  void Info(std::string message) { Notify(SourceNotice::Level::kInfo, std::move(message)); }
  void Warn(std::string message) { Notify(SourceNotice::Level::kWarning, std::move(message)); }

  void Stop() { stopped_ = true; }
  bool stopped() const { return stopped_; }

  /// The framing's high-water mark over every connection: the bytes of one
  /// unfinished line held at once.
  void NoteBuffered(std::size_t bytes) { max_line_buffered_ = std::max(max_line_buffered_, bytes); }
  std::size_t max_line_buffered() const { return max_line_buffered_; }

 private:
  ScanHandler on_scan_;
  NoticeHandler on_notice_;
  ScanDedup dedup_;
  std::size_t max_line_buffered_ = 0;
  bool stopped_ = false;
};

/// What every source of the scanner library is: a ScanSource with its Delivery.
class SourceBase : public ScanSource {
 public:
  explicit SourceBase(std::shared_ptr<Delivery> delivery) : delivery_(std::move(delivery)) {}
  const Delivery& delivery() const { return *delivery_; }

 protected:
  std::shared_ptr<Delivery> delivery_;
};

/// The most bytes of one unfinished line that any connection of `source` has held
/// at once (never above kMaxScanLineBytes): for the tests and the benchmark, which
/// check that whatever arrives, memory stays bounded.
inline std::size_t MaxLineBuffered(const ScanSource& source) {
  const auto* base = dynamic_cast<const SourceBase*>(&source);
  return base == nullptr ? 0 : base->delivery().max_line_buffered();
}

/// image_dir.cpp: the image-dir source; `config.dir` has been checked to be a folder.
std::unique_ptr<ScanSource> MakeImageDirSource(asio::io_context& io, SourceConfig config,
                                               std::shared_ptr<Delivery> delivery);

}  // namespace pingma
