// Scan sources: the devices a filling position listens to.
//
// Handheld QR scanners and RFID readers print one code per line over TCP, a serial
// line or a pipe; a camera drops image files into a folder. Each source turns what
// arrives into whole scans, handed to a callback on the io_context it was made on.
// A source is driven by that io_context only: create, start and stop it from the
// thread that runs it (or before that thread starts). Not thread-safe otherwise.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "pingma/common/status.h"

namespace asio {
class io_context;
}

namespace pingma {

enum class SourceKind {
  kTcpListen,   ///< readers connect to us; several may be connected at once
  kTcpConnect,  ///< we dial the reader, and redial with backoff when it drops
  kSerial,      ///< a serial device, 8N1 at a baud rate
  kStdin,       ///< a pipe or terminal on a file descriptor (0 by default)
  kImageDir,    ///< image files dropped in a folder, decoded with ZXing
};

/// "tcp-listen", "tcp-connect", "serial", "stdin", "image-dir".
const char* ToString(SourceKind kind);
/// The inverse of ToString; kInvalid naming the kinds otherwise.
Result<SourceKind> ParseSourceKind(std::string_view text);

/// Limits of the line framing (API.md, "Station agent").
inline constexpr std::size_t kMaxScanLineBytes = 4096;

struct SourceConfig {
  SourceKind kind = SourceKind::kStdin;
  std::string address;  ///< tcp-listen: HOST:PORT to listen on (port 0 picks one);
                        ///< tcp-connect: HOST:PORT of the reader
  std::string device;   ///< serial: the device path
  unsigned baud = 9600;
  std::optional<bool> rts;  ///< serial: set (true) or clear (false) RTS; unset: leave it
  std::optional<bool> dtr;  ///< serial: likewise DTR
  int fd = 0;               ///< stdin: the descriptor to read
  std::string dir;          ///< image-dir: the folder; done/ and failed/ are made in it
  /// A read of a text less than this after the last read of the same text is not
  /// a new scan (RFID readers repeat a tag many times a second). Collapsed repeats
  /// count as reads, so the window slides: a tag left on the reader gives one scan
  /// however long it stays; taken away for the window and brought back, a new one.
  /// 0 turns it off.
  std::chrono::milliseconds dedup_window{2000};
  std::chrono::milliseconds redial_min{250};    ///< tcp-connect: first redial delay
  std::chrono::milliseconds redial_max{10000};  ///< tcp-connect: backoff cap
};

/// One scan, as the device gave it: `text` is the line (without its terminator) or
/// the decoded symbol's content; parse it with ParseScan.
struct Scan {
  std::string text;
  std::string origin;     ///< where it came from: "tcp 127.0.0.1:50312", "/dev/ttyUSB0",
                          ///< "stdin", or the image file's name
  std::string symbology;  ///< image-dir only: "QRCode", ...; empty for line sources
};

/// Something a person looking after the station should see: a reader that
/// connected or dropped, a line refused, a photo that could not be read.
struct SourceNotice {
  enum class Level { kInfo, kWarning };
  Level level = Level::kInfo;
  std::string message;  ///< one readable line
};

using ScanHandler = std::function<void(const Scan&)>;
using NoticeHandler = std::function<void(const SourceNotice&)>;

class ScanSource {
 public:
  virtual ~ScanSource() = default;
  /// Opens the device, socket or folder. Errors say which and why (the address in
  /// use, no such device, ...). A tcp-connect source starts even when the reader is
  /// down: it keeps dialling.
  virtual Status Start() = 0;
  /// Closes everything; no callback runs after the io_context has run the handlers
  /// this cancels. Idempotent.
  virtual void Stop() = 0;
  /// What it listens on or reads, for logs: for tcp-listen the real HOST:PORT
  /// after Start (the port chosen when 0 was asked).
  virtual std::string Describe() const = 0;
};

/// Makes a source of `config.kind`. kInvalid when the config misses what the kind
/// needs (an address, a device, a folder) or has a value out of range.
Result<std::unique_ptr<ScanSource>> MakeScanSource(asio::io_context& io, SourceConfig config,
                                                   ScanHandler on_scan, NoticeHandler on_notice);

}  // namespace pingma
