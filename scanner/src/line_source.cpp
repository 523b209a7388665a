// The line-stream sources (tcp-listen, tcp-connect, serial, stdin) and
// MakeScanSource, which checks a config and picks the kind.
//
// Lifetimes follow the Asio examples: each connection is a LineReader owned by a
// shared_ptr that its pending read holds; the source keeps its shared Delivery in
// every handler and checks `stopped()` before touching anything else, so a handler
// cancelled by Stop (or by the source's destructor) returns without a callback.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <list>
#include <optional>
#include <utility>

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/serial_port.hpp>
#include <asio/steady_timer.hpp>

#include "line_framer.h"
#include "pingma/scanner/source.h"
#include "source_private.h"

namespace pingma {

const char* ToString(SourceKind kind) {
  switch (kind) {
    case SourceKind::kTcpListen:
      return "tcp-listen";
    case SourceKind::kTcpConnect:
      return "tcp-connect";
    case SourceKind::kSerial:
      return "serial";
    case SourceKind::kStdin:
      return "stdin";
    case SourceKind::kImageDir:
      return "image-dir";
  }
  return "unknown";
}

Result<SourceKind> ParseSourceKind(std::string_view text) {
  for (SourceKind kind : {SourceKind::kTcpListen, SourceKind::kTcpConnect, SourceKind::kSerial,
                          SourceKind::kStdin, SourceKind::kImageDir}) {
    if (text == ToString(kind)) return kind;
  }
  return Status::Invalid("unknown scanner kind '" + std::string(text) +
                         "': expected tcp-listen, tcp-connect, serial, stdin or image-dir");
}

namespace {

using asio::ip::tcp;
using Clock = ScanDedup::Clock;

/// Connections a tcp-listen source keeps at once; more are closed with a notice so
/// that a misbehaving client cannot use up the station's descriptors.
constexpr std::size_t kMaxReaders = 64;
/// Bytes asked of the OS per read, per connection.
constexpr std::size_t kReadBytes = 16 * 1024;
/// A dial that neither connects nor fails within this is abandoned and retried:
/// without it a reader that drops packets would hold the dial for minutes.
constexpr std::chrono::seconds kConnectTimeout{10};
/// Pause before accepting again after accept failed (out of descriptors).
constexpr std::chrono::milliseconds kAcceptRetry{500};

struct HostPort {
  std::string host;  // without brackets
  unsigned port = 0;
};

bool IsHostName(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  bool all_numeric = true;
  std::size_t start = 0;
  while (start <= host.size()) {
    std::size_t dot = host.find('.', start);
    if (dot == std::string_view::npos) dot = host.size();
    const std::string_view label = host.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      if (!alnum && c != '-') return false;
      if (c < '0' || c > '9') all_numeric = false;
    }
    start = dot + 1;
  }
  // "300.1.1.1" is a broken IPv4 address, not a name.
  return !all_numeric;
}

Result<HostPort> ParseHostPort(std::string_view text) {
  const auto bad = [&](const std::string& why) {
    return Status::Invalid("address '" + std::string(text) + "': " + why +
                           " (expected HOST:PORT, e.g. 127.0.0.1:7001 or [::1]:7001)");
  };
  HostPort out;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos) return bad("no ']' after the IPv6 address");
    out.host = std::string(text.substr(1, close - 1));
    if (close + 1 >= text.size() || text[close + 1] != ':') return bad("no ':PORT' after ']'");
    port = text.substr(close + 2);
    std::error_code ec;
    asio::ip::make_address_v6(out.host, ec);
    if (ec) return bad("'" + out.host + "' is not an IPv6 address");
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("no ':PORT'");
    out.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
    if (out.host.empty()) return bad("no host");
    if (out.host.find(':') != std::string::npos) return bad("an IPv6 address needs brackets");
    std::error_code ec;
    asio::ip::make_address_v4(out.host, ec);
    if (ec && !IsHostName(out.host)) {
      return bad("'" + out.host + "' is neither an IP address nor a host name");
    }
  }
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return bad("the port must be a number from 0 to 65535");
  }
  unsigned value = 0;
  for (char c : port) value = value * 10 + static_cast<unsigned>(c - '0');
  if (value > 65535) return bad("the port must be a number from 0 to 65535");
  out.port = value;
  return out;
}

std::string FormatEndpoint(const tcp::endpoint& ep) {
  const std::string host = ep.address().to_string();
  if (ep.address().is_v6()) return "[" + host + "]:" + std::to_string(ep.port());
  return host + ":" + std::to_string(ep.port());
}

/// Why a stream ended, for a notice.
std::string EndReason(const std::error_code& ec) {
  if (ec == asio::error::eof) return "closed by the other end";
  return ec.message();
}

bool IsStandardBaud(unsigned baud) {
  static constexpr unsigned kRates[] = {
      300,    600,    1200,   1800,   2400,   4800,    9600,    19200,   38400,   57600,   115200,
      230400, 460800, 500000, 576000, 921600, 1000000, 1152000, 2000000, 3000000, 3500000, 4000000};
  return std::find(std::begin(kRates), std::end(kRates), baud) != std::end(kRates);
}

/// Reads one stream (socket, serial port, pipe) into its own framer and hands each
/// line to the Delivery. Owned by the shared_ptrs of its source and of its pending
/// read; used on the io_context's thread only.
template <typename Stream>
class LineReader final : public std::enable_shared_from_this<LineReader<Stream>>, private LineSink {
 public:
  /// Called once when the stream ends or fails, unless the source has stopped.
  using ClosedHandler = std::function<void(LineReader*, const std::error_code&)>;

  LineReader(Stream stream, std::string origin, std::shared_ptr<Delivery> delivery,
             ClosedHandler on_closed)
      : stream_(std::move(stream)),
        delivery_(std::move(delivery)),
        on_closed_(std::move(on_closed)) {
    scan_.origin = std::move(origin);
  }

  void Start() { Read(); }
  /// The pending read then ends with operation_aborted.
  void Close() {
    std::error_code ignored;
    stream_.close(ignored);
  }
  const std::string& origin() const { return scan_.origin; }

 private:
  void Read() {
    stream_.async_read_some(asio::buffer(buffer_),
                            [self = this->shared_from_this()](
                                const std::error_code& ec, std::size_t n) { self->OnRead(ec, n); });
  }

  void OnRead(const std::error_code& ec, std::size_t n) {
    if (delivery_->stopped()) return;
    if (n > 0) {
      // Every line of one read arrived at the same moment: one clock read for all.
      now_ = Clock::now();
      framer_.Feed(std::string_view(buffer_.data(), n), *this);
      delivery_->NoteBuffered(framer_.max_buffered());
      if (delivery_->stopped()) return;  // a handler stopped the source
    }
    if (ec) {
      framer_.Finish(*this);
      Close();
      if (on_closed_ && !delivery_->stopped()) on_closed_(this, ec);
      return;
    }
    Read();
  }

  void OnLine(std::string_view line) override { delivery_->Deliver(line, scan_, now_); }
  void OnDropped(LineDrop why, std::size_t bytes) override {
    const std::string size = why == LineDrop::kTooLong
                                 ? "over " + std::to_string(kMaxScanLineBytes) + " bytes"
                                 : std::to_string(bytes) + " bytes";
    delivery_->Warn("line from " + scan_.origin + " dropped: " + ToString(why) + " (" + size + ")");
  }

  Stream stream_;
  std::shared_ptr<Delivery> delivery_;
  ClosedHandler on_closed_;
  LineFramer framer_;
  Scan scan_;
  Clock::time_point now_{};
  std::array<char, kReadBytes> buffer_{};
};

using SocketReader = LineReader<tcp::socket>;

// ---- tcp-listen -------------------------------------------------------------

/// Readers connect to us; each connection is read on its own. Single-threaded (the
/// io_context's); owns its acceptor and connections.
class TcpListenSource final : public SourceBase {
 public:
  TcpListenSource(asio::io_context& io, HostPort address, std::string text,
                  std::shared_ptr<Delivery> delivery)
      : SourceBase(std::move(delivery)),
        io_(io),
        address_(std::move(address)),
        described_(std::move(text)),
        acceptor_(io),
        retry_(io) {}
  ~TcpListenSource() override { Stop(); }

  Status Start() override {
    if (started_ || delivery_->stopped()) {
      return Status::Invalid("tcp-listen " + described_ + " was already started");
    }
    const std::string what = "cannot listen on " + described_ + ": ";
    std::error_code ec;
    tcp::resolver resolver(io_);
    auto results = resolver.resolve(address_.host, std::to_string(address_.port),
                                    tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec) return Status::Unavailable(what + ec.message());
    if (results.empty()) return Status::Unavailable(what + "the host has no address");
    const tcp::endpoint endpoint = results.begin()->endpoint();
    if (acceptor_.open(endpoint.protocol(), ec) ||
        acceptor_.set_option(tcp::acceptor::reuse_address(true), ec) ||
        acceptor_.bind(endpoint, ec) ||
        acceptor_.listen(asio::socket_base::max_listen_connections, ec)) {
      std::error_code ignored;
      acceptor_.close(ignored);
      return Status::Unavailable(what + ec.message());
    }
    const tcp::endpoint bound = acceptor_.local_endpoint(ec);
    if (!ec) described_ = FormatEndpoint(bound);
    started_ = true;
    Accept();
    return Status::Ok();
  }

  void Stop() override {
    if (delivery_->stopped()) return;
    delivery_->Stop();
    std::error_code ignored;
    acceptor_.close(ignored);
    retry_.cancel();
    for (auto& reader : readers_) reader->Close();
    readers_.clear();
  }

  std::string Describe() const override { return described_; }

 private:
  void Accept() {
    acceptor_.async_accept([this, d = delivery_](const std::error_code& ec, tcp::socket socket) {
      if (d->stopped()) return;
      OnAccept(ec, std::move(socket));
    });
  }

  void OnAccept(const std::error_code& ec, tcp::socket socket) {
    if (ec) {
      // Out of descriptors, mostly: wait, or we would spin on the same error.
      if (!accept_failing_) d()->Warn("accept on " + described_ + " failed: " + ec.message());
      accept_failing_ = true;
      retry_.expires_after(kAcceptRetry);
      retry_.async_wait([this, d = delivery_](const std::error_code& wait_ec) {
        if (!wait_ec && !d->stopped()) Accept();
      });
      return;
    }
    accept_failing_ = false;
    std::error_code peer_ec;
    const tcp::endpoint peer = socket.remote_endpoint(peer_ec);
    const std::string origin =
        "tcp " + (peer_ec ? std::string("unknown peer") : FormatEndpoint(peer));
    if (readers_.size() >= kMaxReaders) {
      if (!full_reported_) {
        d()->Warn("refused " + origin + " on " + described_ + ": already " +
                  std::to_string(kMaxReaders) + " readers connected");
      }
      full_reported_ = true;
      std::error_code ignored;
      socket.close(ignored);
    } else {
      full_reported_ = false;
      std::error_code ignored;
      socket.set_option(asio::socket_base::keep_alive(true), ignored);
      auto reader = std::make_shared<SocketReader>(
          std::move(socket), origin, delivery_,
          [this](SocketReader* r, const std::error_code& end) { OnClosed(r, end); });
      readers_.push_back(reader);
      d()->Info("reader connected: " + origin + " on " + described_);
      reader->Start();
    }
    Accept();
  }

  void OnClosed(SocketReader* reader, const std::error_code& ec) {
    d()->Info("reader disconnected: " + reader->origin() + " (" + EndReason(ec) + ")");
    readers_.remove_if([reader](const auto& r) { return r.get() == reader; });
  }

  Delivery* d() const { return delivery_.get(); }

  asio::io_context& io_;
  HostPort address_;
  std::string described_;  // the config's HOST:PORT, then the bound one
  tcp::acceptor acceptor_;
  asio::steady_timer retry_;
  std::list<std::shared_ptr<SocketReader>> readers_;
  bool started_ = false;
  bool accept_failing_ = false;
  bool full_reported_ = false;
};

// ---- tcp-connect ------------------------------------------------------------

/// We dial the reader and keep one connection to it, redialling with a doubling
/// delay while it is away. Single-threaded (the io_context's); owns its socket.
class TcpConnectSource final : public SourceBase {
 public:
  TcpConnectSource(asio::io_context& io, HostPort address, std::string text,
                   const SourceConfig& config, std::shared_ptr<Delivery> delivery)
      : SourceBase(std::move(delivery)),
        address_(std::move(address)),
        described_(std::move(text)),
        redial_min_(config.redial_min),
        redial_max_(config.redial_max),
        delay_(config.redial_min),
        resolver_(io),
        socket_(io),
        timer_(io),
        deadline_(io) {}
  ~TcpConnectSource() override { Stop(); }

  Status Start() override {
    if (started_ || delivery_->stopped()) {
      return Status::Invalid("tcp-connect " + described_ + " was already started");
    }
    started_ = true;
    Dial();
    return Status::Ok();
  }

  void Stop() override {
    if (delivery_->stopped()) return;
    delivery_->Stop();
    resolver_.cancel();
    std::error_code ignored;
    socket_.close(ignored);
    timer_.cancel();
    deadline_.cancel();
    if (reader_) reader_->Close();
    reader_.reset();
  }

  std::string Describe() const override { return described_; }

 private:
  void Dial() {
    resolver_.async_resolve(
        address_.host, std::to_string(address_.port), tcp::resolver::numeric_service,
        [this, d = delivery_](const std::error_code& ec, tcp::resolver::results_type results) {
          if (d->stopped()) return;
          if (ec) return DialFailed("cannot resolve " + address_.host + ": " + ec.message());
          Connect(results);
        });
  }

  void Connect(const tcp::resolver::results_type& results) {
    dialled_ = false;
    timed_out_ = false;
    const unsigned dial = ++dial_;
    deadline_.expires_after(kConnectTimeout);
    deadline_.async_wait([this, d = delivery_, dial](const std::error_code& ec) {
      // A deadline that expired as its dial completed must not close the next one.
      if (ec || d->stopped() || dial != dial_ || dialled_) return;
      timed_out_ = true;
      std::error_code ignored;
      socket_.close(ignored);
    });
    asio::async_connect(socket_, results,
                        [this, d = delivery_](const std::error_code& ec, const tcp::endpoint&) {
                          if (d->stopped()) return;
                          deadline_.cancel();
                          dialled_ = true;
                          if (ec) {
                            return DialFailed(timed_out_ ? std::string("timed out") : ec.message());
                          }
                          Connected();
                        });
  }

  void DialFailed(const std::string& why) {
    // Once per outage: a reader switched off for the night would otherwise fill
    // the log with a line per retry.
    if (!outage_reported_) {
      delivery_->Info("cannot reach reader at " + described_ + ": " + why +
                      "; redialling until it answers");
      outage_reported_ = true;
    }
    std::error_code ignored;
    socket_.close(ignored);
    Redial();
  }

  void Redial() {
    timer_.expires_after(delay_);
    delay_ = std::min(delay_ * 2, redial_max_);
    timer_.async_wait([this, d = delivery_](const std::error_code& ec) {
      if (!ec && !d->stopped()) Dial();
    });
  }

  void Connected() {
    outage_reported_ = false;
    connected_at_ = Clock::now();
    std::error_code ignored;
    socket_.set_option(asio::socket_base::keep_alive(true), ignored);
    const std::string origin = "tcp " + described_;
    delivery_->Info("reader connected: " + origin);
    reader_ = std::make_shared<SocketReader>(
        std::move(socket_), origin, delivery_,
        [this](SocketReader* r, const std::error_code& ec) { OnClosed(r, ec); });
    reader_->Start();
  }

  void OnClosed(SocketReader* reader, const std::error_code& ec) {
    delivery_->Info("reader disconnected: " + reader->origin() + " (" + EndReason(ec) +
                    "); redialling");
    reader_.reset();
    // A connection that lasted resets the backoff; one that the reader drops at
    // once keeps doubling it, so a flapping reader is not redialled in a tight loop.
    if (Clock::now() - connected_at_ >= redial_max_) delay_ = redial_min_;
    Redial();
  }

  HostPort address_;
  std::string described_;
  std::chrono::milliseconds redial_min_;
  std::chrono::milliseconds redial_max_;
  std::chrono::milliseconds delay_;
  tcp::resolver resolver_;
  tcp::socket socket_;           // the one being dialled
  asio::steady_timer timer_;     // the next redial
  asio::steady_timer deadline_;  // the dial's timeout
  std::shared_ptr<SocketReader> reader_;
  Clock::time_point connected_at_{};
  bool started_ = false;
  bool outage_reported_ = false;
  bool timed_out_ = false;
  bool dialled_ = false;  // the current dial has completed, either way
  unsigned dial_ = 0;     // counts dials, so a late deadline knows its own
};

// ---- serial and stdin -------------------------------------------------------

/// Sets (TIOCMBIS) or clears (TIOCMBIC) one modem line.
int SetModemLine(int fd, int line, bool on) {
  int bits = line;
  return ::ioctl(fd, on ? TIOCMBIS : TIOCMBIC, &bits);
}

/// One stream opened at Start and read until it ends: a serial port or a
/// descriptor. Single-threaded (the io_context's); owns its stream.
template <typename Stream>
class StreamSource final : public SourceBase {
 public:
  using Opener = std::function<Status(Stream&, Delivery&)>;

  StreamSource(asio::io_context& io, std::string origin, std::string end_notice, Opener open,
               std::shared_ptr<Delivery> delivery)
      : SourceBase(std::move(delivery)),
        io_(io),
        origin_(std::move(origin)),
        end_notice_(std::move(end_notice)),
        open_(std::move(open)) {}
  ~StreamSource() override { Stop(); }

  Status Start() override {
    if (reader_ || delivery_->stopped()) {
      return Status::Invalid(origin_ + " was already started");
    }
    Stream stream(io_);
    PINGMA_RETURN_IF_ERROR(open_(stream, *delivery_));
    reader_ = std::make_shared<LineReader<Stream>>(
        std::move(stream), origin_, delivery_,
        [this](LineReader<Stream>*, const std::error_code& ec) {
          if (ec == asio::error::eof) {
            delivery_->Info(origin_ + " closed" + end_notice_);
          } else {
            delivery_->Warn(origin_ + " failed: " + ec.message() + end_notice_);
          }
        });
    reader_->Start();
    return Status::Ok();
  }

  void Stop() override {
    if (delivery_->stopped()) return;
    delivery_->Stop();
    if (reader_) reader_->Close();
  }

  std::string Describe() const override { return origin_; }

 private:
  asio::io_context& io_;
  std::string origin_;
  std::string end_notice_;
  Opener open_;
  std::shared_ptr<LineReader<Stream>> reader_;
};

Status OpenSerial(asio::serial_port& port, Delivery& delivery, const SourceConfig& config) {
  const std::string& device = config.device;
  std::error_code ec;
  port.open(device, ec);
  if (ec) return Status::Unavailable("cannot open serial device " + device + ": " + ec.message());
  const auto fail = [&](const std::string& what, const std::string& why) {
    std::error_code ignored;
    port.close(ignored);
    return Status::Unavailable("serial device " + device + ": cannot " + what + ": " + why);
  };
  // Raw: no echo, no line editing, no CR/LF translation, no flow control by
  // XON/XOFF; the framer sees the bytes the reader sent.
  const int fd = port.native_handle();
  termios tio{};
  if (::tcgetattr(fd, &tio) != 0) return fail("read its settings", std::strerror(errno));
  ::cfmakeraw(&tio);
  if (::tcsetattr(fd, TCSANOW, &tio) != 0) return fail("set raw mode", std::strerror(errno));
  using Base = asio::serial_port_base;
  if (port.set_option(Base::baud_rate(config.baud), ec) ||
      port.set_option(Base::character_size(8), ec) ||
      port.set_option(Base::parity(Base::parity::none), ec) ||
      port.set_option(Base::stop_bits(Base::stop_bits::one), ec) ||
      port.set_option(Base::flow_control(Base::flow_control::none), ec)) {
    return fail("set " + std::to_string(config.baud) + " 8N1", ec.message());
  }
  const std::pair<const std::optional<bool>*, int> lines[] = {{&config.rts, TIOCM_RTS},
                                                              {&config.dtr, TIOCM_DTR}};
  for (const auto& [wanted, line] : lines) {
    if (!wanted->has_value()) continue;
    const char* name = line == TIOCM_RTS ? "RTS" : "DTR";
    const std::string what = std::string(**wanted ? "set " : "clear ") + name;
    if (SetModemLine(fd, line, **wanted) == 0) continue;
    const int err = errno;
    // A pseudo-terminal or a CDC device without modem lines refuses these; such a
    // device has nothing to power or enable by them, so go on and say so.
    if (err == ENOTTY || err == EINVAL) {
      delivery.Warn("serial device " + device + ": cannot " + what + " (" + std::strerror(err) +
                    "): it has no modem control lines; going on");
      continue;
    }
    return fail(what, std::strerror(err));
  }
  return Status::Ok();
}

Status OpenDescriptor(asio::posix::stream_descriptor& stream, int fd, const std::string& origin) {
  // Our own copy: Stop closes it and leaves the caller's descriptor open.
  const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return Status::Unavailable("cannot read " + origin + ": " + std::strerror(errno));
  std::error_code ec;
  stream.assign(copy, ec);
  if (ec) {
    ::close(copy);
    return Status::Unavailable("cannot read " + origin + ": " + ec.message());
  }
  return Status::Ok();
}

Status CheckCommon(const SourceConfig& config) {
  if (config.dedup_window.count() < 0) {
    return Status::Invalid("dedup_window must not be negative (0 turns it off)");
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<ScanSource>> MakeScanSource(asio::io_context& io, SourceConfig config,
                                                   ScanHandler on_scan, NoticeHandler on_notice) {
  PINGMA_RETURN_IF_ERROR(CheckCommon(config));
  auto delivery =
      std::make_shared<Delivery>(std::move(on_scan), std::move(on_notice), config.dedup_window);
  const std::string kind = ToString(config.kind);
  switch (config.kind) {
    case SourceKind::kTcpListen:
    case SourceKind::kTcpConnect: {
      if (config.address.empty()) return Status::Invalid(kind + " needs an address (HOST:PORT)");
      Result<HostPort> address = ParseHostPort(config.address);
      if (!address.ok()) return Status::Invalid(kind + ": " + address.status().message());
      if (config.kind == SourceKind::kTcpListen) {
        return std::unique_ptr<ScanSource>(std::make_unique<TcpListenSource>(
            io, std::move(*address), config.address, std::move(delivery)));
      }
      if (address->port == 0) {
        return Status::Invalid("tcp-connect: address '" + config.address +
                               "': port 0 cannot be dialled");
      }
      if (config.redial_min.count() <= 0 || config.redial_max < config.redial_min) {
        return Status::Invalid(
            "tcp-connect: redial_min must be above 0 and redial_max at least "
            "redial_min");
      }
      return std::unique_ptr<ScanSource>(std::make_unique<TcpConnectSource>(
          io, std::move(*address), config.address, config, std::move(delivery)));
    }
    case SourceKind::kSerial: {
      if (config.device.empty()) return Status::Invalid("serial needs a device path");
      if (!IsStandardBaud(config.baud)) {
        return Status::Invalid("serial " + config.device + ": baud " + std::to_string(config.baud) +
                               " is not a standard rate (e.g. 9600, 19200, 38400, 57600, 115200)");
      }
      std::string device = config.device;
      return std::unique_ptr<ScanSource>(std::make_unique<StreamSource<asio::serial_port>>(
          io, device, "; no more scans from it until the station restarts",
          [config](asio::serial_port& port, Delivery& d) { return OpenSerial(port, d, config); },
          std::move(delivery)));
    }
    case SourceKind::kStdin: {
      if (config.fd < 0) return Status::Invalid("stdin: fd " + std::to_string(config.fd) + " < 0");
      const int fd = config.fd;
      std::string origin = fd == 0 ? "stdin" : "stdin (fd " + std::to_string(fd) + ")";
      return std::unique_ptr<ScanSource>(
          std::make_unique<StreamSource<asio::posix::stream_descriptor>>(
              io, origin, "",
              [fd, origin](asio::posix::stream_descriptor& stream, Delivery&) {
                return OpenDescriptor(stream, fd, origin);
              },
              std::move(delivery)));
    }
    case SourceKind::kImageDir: {
      if (config.dir.empty()) return Status::Invalid("image-dir needs a folder (dir)");
      struct stat info {};
      if (::stat(config.dir.c_str(), &info) != 0) {
        return Status::Invalid("image-dir: " + config.dir + ": " + std::strerror(errno));
      }
      if (!S_ISDIR(info.st_mode)) {
        return Status::Invalid("image-dir: " + config.dir + " is not a folder");
      }
      return MakeImageDirSource(io, std::move(config), std::move(delivery));
    }
  }
  return Status::Invalid("unknown scanner kind");
}

}  // namespace pingma
