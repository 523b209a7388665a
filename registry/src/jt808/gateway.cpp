// The gateway's sockets: one acceptor and one Connection per terminal, on one Asio
// thread. The only translation unit of jt808/ with Asio (slow to compile).
//
// Lifetimes follow the Asio examples: a Connection is owned by the server's table
// of open connections and by the shared_ptr its pending read, write or timer holds;
// the directory's callbacks hold only a weak_ptr and the Lifeline, so that one that
// comes late finds its connection, or the whole gateway, gone and does nothing.
#include "jt808/gateway.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

namespace pingma::registry::jt808 {
namespace {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

/// How long bad frames are counted for GatewayOptions::max_bad_frames_per_minute.
constexpr std::chrono::minutes kBadFrameWindow{1};
/// Pause before accepting again after accept failed (out of descriptors).
constexpr std::chrono::milliseconds kAcceptRetry{500};
/// At most one notice of connections refused over the limit this often.
constexpr std::chrono::seconds kOverLimitNoticeEvery{10};

struct Counts {
  std::atomic<std::uint64_t> connections{0};
  std::atomic<std::uint64_t> connections_open{0};
  std::atomic<std::uint64_t> connections_over_limit{0};
  std::atomic<std::uint64_t> frames{0};
  std::atomic<std::uint64_t> bad_frames{0};
  std::atomic<std::uint64_t> positions_stored{0};
  std::atomic<std::uint64_t> refused{0};
  std::atomic<std::uint64_t> closed_by_limits{0};
};

/// The way back onto the gateway's thread, shared with every callback handed to the
/// directory: after Stop it leads nowhere, and what is posted then is dropped.
class Lifeline {
 public:
  explicit Lifeline(asio::io_context& io) : io_(&io) {}

  template <typename Handler>
  void Post(Handler&& handler) {
    std::lock_guard<std::mutex> lock(mu_);
    if (io_ != nullptr) asio::post(*io_, std::forward<Handler>(handler));
  }
  void Cut() {
    std::lock_guard<std::mutex> lock(mu_);
    io_ = nullptr;
  }

 private:
  std::mutex mu_;
  asio::io_context* io_;
};

std::string FormatEndpoint(const tcp::endpoint& ep) {
  const std::string host = ep.address().to_string();
  if (ep.address().is_v6()) return fmt::format("[{}]:{}", host, ep.port());
  return fmt::format("{}:{}", host, ep.port());
}

class Connection;

/// The listener and the table of open connections; everything but Start, Stop,
/// port and counters runs on the gateway's thread.
class Server {
 public:
  Server(TerminalDirectory& directory, GatewayOptions options)
      : directory_(directory),
        options_(std::move(options)),
        lifeline_(std::make_shared<Lifeline>(io_)) {}

  Status Start();
  void Stop();
  std::uint16_t port() const { return port_.load(); }
  GatewayCounters counters() const;

  // For the connections.
  TerminalDirectory& directory() { return directory_; }
  const GatewayOptions& options() const { return options_; }
  Counts& counts() { return counts_; }
  const std::shared_ptr<Lifeline>& lifeline() const { return lifeline_; }
  asio::io_context& io() { return io_; }
  void Notice(const std::string& text) const;
  /// A connection closed: it leaves the table.
  void Forget(Connection* connection);

 private:
  void Accept();
  void OnAccept(const std::error_code& ec, tcp::socket socket);
  void CloseAll();

  TerminalDirectory& directory_;
  const GatewayOptions options_;
  Counts counts_;
  // First, so that it goes last: the sockets and timers below, and the connections
  // its pending handlers hold, are destroyed before it.
  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  asio::steady_timer accept_retry_{io_};
  std::shared_ptr<Lifeline> lifeline_;
  std::unordered_map<Connection*, std::shared_ptr<Connection>> connections_;
  Clock::time_point over_limit_said_{};
  std::uint64_t over_limit_unsaid_ = 0;
  std::atomic<std::uint16_t> port_{0};
  std::mutex run_mu_;
  bool started_ = false;
  bool stopped_ = false;
  std::thread thread_;
};

/// One terminal's connection: its framing, sub-packages, state (authenticated or
/// not), directory calls, replies and deadlines. Frames are handled one at a time,
/// in order: while the directory has one in hand, the rest wait and nothing more is
/// read, so replies leave in the order of their requests and what is buffered is
/// bounded by one read.
class Connection final : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server& server, tcp::socket socket, std::string peer)
      : server_(server),
        socket_(std::move(socket)),
        timer_(server.io()),
        peer_(std::move(peer)),
        buffer_(std::max<std::size_t>(1, server.options().read_chunk_bytes)),
        packages_(PackageAssembler::Limits{server.options().max_packages,
                                           server.options().package_timeout}) {}

  void Start() {
    auth_from_ = last_frame_ = Clock::now();
    ArmTimer();
    Read();
  }

  /// Closes at once; says `why` unless it is empty. `by_limit`: a timeout or a
  /// limit closed it.
  void Close(const std::string& why, bool by_limit) {
    if (closed_) return;
    auto keep = shared_from_this();
    closed_ = true;
    if (!why.empty()) Notice(why);
    if (by_limit) ++server_.counts().closed_by_limits;
    std::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    timer_.cancel();
    server_.Forget(this);
  }

 private:
  const GatewayOptions& options() const { return server_.options(); }

  void Notice(const std::string& text) const {
    server_.Notice(fmt::format("jt808 {}: {}", peer_, text));
  }

  // --- reading ---------------------------------------------------------------

  void Read() {
    reading_ = true;
    socket_.async_read_some(asio::buffer(buffer_),
                            [self = shared_from_this()](const std::error_code& ec, std::size_t n) {
                              self->OnRead(ec, n);
                            });
  }

  void OnRead(const std::error_code& ec, std::size_t n) {
    reading_ = false;
    if (closed_) return;
    if (n > 0) splitter_.Feed(std::string_view(buffer_.data(), n), cut_);
    if (ec) {
      // Whatever half frame the splitter holds is never handled.
      if (ec == asio::error::eof) {
        CloseAfterWrites();
      } else {
        Close("connection lost: " + ec.message(), false);
      }
      return;
    }
    Process();
  }

  /// Handles the frames cut from the last read, in order, until one waits for the
  /// directory; reads again once all are done.
  void Process() {
    while (!closed_ && !closing_ && !waiting_ && next_ < cut_.size()) {
      Result<std::string> frame = std::move(cut_[next_++]);
      HandleFrame(std::move(frame));
    }
    if (next_ >= cut_.size()) {
      cut_.clear();
      next_ = 0;
    }
    if (!closed_ && !closing_ && !waiting_ && cut_.empty() && !reading_) Read();
  }

  void HandleFrame(Result<std::string> raw) {
    ++server_.counts().frames;
    last_frame_ = Clock::now();
    if (!raw.ok()) return Bad(raw.status(), nullptr);
    auto decoded = DecodeFrame(*raw);
    if (!decoded.ok()) return Bad(decoded.status(), nullptr);
    Frame frame = std::move(*decoded);
    if (frame.header.encryption != 0) {
      Notice(fmt::format("{} from {} is encrypted (0x{:x}); only plain messages are taken",
                         MessageName(frame.header.msg_id), frame.header.phone,
                         frame.header.encryption));
      return Reply(frame.header, GeneralResult::kUnsupported);
    }
    if (frame.header.package) {
      const Header header = frame.header;
      const bool was_assembling = packages_.expires_at().has_value();
      PackageAssembler::Outcome outcome = packages_.Add(std::move(frame), last_frame_);
      if (!outcome.dropped.empty()) Notice(outcome.dropped);
      if (!outcome.refused.ok()) return Bad(outcome.refused, &header);
      if (!outcome.message) {
        // A package received; the message is answered once it is whole.
        if (!was_assembling) ArmTimer();
        return Reply(header, GeneralResult::kOk);
      }
      frame = std::move(*outcome.message);
    }
    HandleMessage(std::move(frame));
  }

  void HandleMessage(Frame frame) {
    const Header& h = frame.header;
    switch (h.msg_id) {
      case kTerminalGeneralReply:
        return;  // the answer to a command; the gateway sends none, and answers no answer
      case kHeartbeat:
        return Reply(h, Authenticated(h) ? GeneralResult::kOk : Unauthenticated(h));
      case kLogout:
        if (Authenticated(h)) {
          phone_.clear();
          phone_key_.clear();
          auth_from_ = Clock::now();
          ArmTimer();
        }
        return Reply(h, GeneralResult::kOk);
      case kRegistration: {
        auto registration = DecodeRegistration(frame);
        if (!registration.ok()) return Bad(registration.status(), &h);
        waiting_ = true;
        server_.directory().Register(*registration,
                                     [weak = weak_from_this(), life = server_.lifeline(), h](
                                         RegistrationResult result, std::string code) {
                                       life->Post([weak, h, result, code = std::move(code)] {
                                         if (auto self = weak.lock())
                                           self->OnRegistered(h, result, code);
                                       });
                                     });
        return;
      }
      case kAuthentication: {
        auto authentication = DecodeAuthentication(frame);
        if (!authentication.ok()) return Bad(authentication.status(), &h);
        waiting_ = true;
        server_.directory().Authenticate(
            *authentication, [weak = weak_from_this(), life = server_.lifeline(), h](bool ok) {
              life->Post([weak, h, ok] {
                if (auto self = weak.lock()) self->OnAuthenticated(h, ok);
              });
            });
        return;
      }
      case kLocationReport: {
        if (!Authenticated(h)) return Reply(h, Unauthenticated(h));
        auto location = DecodeLocation(frame.body);
        if (!location.ok()) return Bad(location.status(), &h);
        return Store(h, {*location});
      }
      case kBatchLocation: {
        if (!Authenticated(h)) return Reply(h, Unauthenticated(h));
        auto batch = DecodeBatchLocation(frame.body);
        if (!batch.ok()) return Bad(batch.status(), &h);
        if (batch->locations.empty()) return Reply(h, GeneralResult::kOk);
        return Store(h, std::move(batch->locations));
      }
      default:
        return Reply(h, GeneralResult::kUnsupported);
    }
  }

  bool Authenticated(const Header& h) const {
    return !phone_key_.empty() && NormalizePhone(h.phone) == phone_key_;
  }

  /// A message that needs authentication from a terminal that has none (on this
  /// connection): failure, said once a connection.
  GeneralResult Unauthenticated(const Header& h) {
    if (!said_unauthenticated_) {
      said_unauthenticated_ = true;
      Notice(
          fmt::format("{} from {} before its authentication: refused (result 1); further "
                      "ones on this connection are refused without a word",
                      MessageName(h.msg_id), h.phone));
    }
    return GeneralResult::kFailure;
  }

  void Store(const Header& h, std::vector<Location> positions) {
    waiting_ = true;
    const std::size_t count = positions.size();
    server_.directory().StorePositions(
        phone_, std::move(positions),
        [weak = weak_from_this(), life = server_.lifeline(), h, count](bool stored) {
          life->Post([weak, h, count, stored] {
            if (auto self = weak.lock()) self->OnStored(h, count, stored);
          });
        });
  }

  // --- the directory's answers, back on the gateway's thread ------------------

  void OnRegistered(const Header& h, RegistrationResult result, const std::string& code) {
    if (closed_) return;
    waiting_ = false;
    Send(EncodeRegistrationReply(h, serial_++, result, code));
    if (result == RegistrationResult::kNoSuchVehicle ||
        result == RegistrationResult::kNoSuchTerminal) {
      Refuse(fmt::format("terminal {} refused at registration: {}", h.phone, ToString(result)));
    }
    Process();
  }

  void OnAuthenticated(const Header& h, bool ok) {
    if (closed_) return;
    waiting_ = false;
    if (ok) {
      phone_ = h.phone;
      phone_key_ = NormalizePhone(h.phone);
      Reply(h, GeneralResult::kOk);
    } else {
      Reply(h, GeneralResult::kFailure);
      Refuse(fmt::format("terminal {} refused: its authentication failed", h.phone));
    }
    Process();
  }

  void OnStored(const Header& h, std::size_t count, bool stored) {
    if (closed_) return;
    waiting_ = false;
    if (stored) {
      server_.counts().positions_stored += count;
      Reply(h, GeneralResult::kOk);
    } else {
      Notice(fmt::format("{} position(s) of {} not stored; the terminal is told so (result 1)",
                         count, h.phone));
      Reply(h, GeneralResult::kFailure);
    }
    Process();
  }

  /// A terminal the registry does not know: counted, said, and closed once its
  /// reply is written.
  void Refuse(const std::string& why) {
    ++server_.counts().refused;
    Notice(why);
    CloseAfterWrites();
  }

  /// A frame dropped: counted and said; answered with "wrong message" when its
  /// header was read. Past the limit a minute, the connection is closed.
  void Bad(const Status& why, const Header* request) {
    ++server_.counts().bad_frames;
    Notice("bad frame dropped: " + why.message());
    if (request != nullptr) Reply(*request, GeneralResult::kWrongMessage);
    const Clock::time_point now = Clock::now();
    bad_times_.push_back(now);
    while (!bad_times_.empty() && now - bad_times_.front() >= kBadFrameWindow) {
      bad_times_.pop_front();
    }
    if (bad_times_.size() > options().max_bad_frames_per_minute) {
      Close(fmt::format("closed: {} bad frames within a minute (the limit is {})",
                        bad_times_.size(), options().max_bad_frames_per_minute),
            true);
    }
  }

  // --- writing ---------------------------------------------------------------

  void Reply(const Header& request, GeneralResult result) {
    Send(EncodeGeneralReply(request, serial_++, result));
  }

  void Send(Result<std::string> frame) {
    if (closed_) return;
    if (!frame.ok()) {
      Notice("cannot write a reply: " + frame.status().message());
      return;
    }
    if (queued_bytes_ + frame->size() > options().max_write_bytes) {
      Close(fmt::format("closed: {} bytes of replies not taken by the terminal (the limit is {})",
                        queued_bytes_, options().max_write_bytes),
            true);
      return;
    }
    queued_bytes_ += frame->size();
    writes_.push_back(std::move(*frame));
    if (!writing_) Write();
  }

  void Write() {
    writing_ = true;
    asio::async_write(socket_, asio::buffer(writes_.front()),
                      [self = shared_from_this()](const std::error_code& ec, std::size_t) {
                        self->OnWritten(ec);
                      });
  }

  void OnWritten(const std::error_code& ec) {
    writing_ = false;
    if (closed_) return;
    if (ec) return Close("cannot write: " + ec.message(), false);
    queued_bytes_ -= writes_.front().size();
    writes_.pop_front();
    if (!writes_.empty()) return Write();
    if (closing_) Close("", false);
  }

  /// Reads no more; closes once the replies queued are written.
  void CloseAfterWrites() {
    closing_ = true;
    if (!writing_ && writes_.empty()) Close("", false);
  }

  // --- deadlines -------------------------------------------------------------

  /// Waits for the earliest deadline: authentication (while there is none), the
  /// next frame, the sub-packages in progress. Re-arming cancels the wait before.
  void ArmTimer() {
    if (closed_) return;
    Clock::time_point deadline = last_frame_ + options().idle_timeout;
    if (phone_key_.empty()) deadline = std::min(deadline, auth_from_ + options().auth_timeout);
    if (auto packages = packages_.expires_at()) deadline = std::min(deadline, *packages);
    timer_.expires_at(deadline);
    timer_.async_wait(
        [self = shared_from_this()](const std::error_code& ec) { self->OnTimer(ec); });
  }

  void OnTimer(const std::error_code& ec) {
    if (ec == asio::error::operation_aborted || closed_) return;
    const Clock::time_point now = Clock::now();
    if (phone_key_.empty() && now >= auth_from_ + options().auth_timeout) {
      return Close(fmt::format("closed: not authenticated within {} ms",
                               static_cast<long long>(options().auth_timeout.count())),
                   true);
    }
    if (now >= last_frame_ + options().idle_timeout) {
      return Close(fmt::format("closed: no frame for {} ms",
                               static_cast<long long>(options().idle_timeout.count())),
                   true);
    }
    if (std::string dropped = packages_.Expire(now); !dropped.empty()) Notice(dropped);
    ArmTimer();
  }

  Server& server_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  const std::string peer_;
  std::vector<char> buffer_;
  FrameSplitter splitter_;
  std::vector<Result<std::string>> cut_;  // the frames of the last read
  std::size_t next_ = 0;                  // the next of them to handle
  PackageAssembler packages_;
  std::deque<std::string> writes_;  // replies queued; the front one is being written
  std::size_t queued_bytes_ = 0;
  std::deque<Clock::time_point> bad_times_;  // bad frames within the last minute
  Clock::time_point auth_from_{};            // when the wait for authentication began
  Clock::time_point last_frame_{};
  std::string phone_;         // authenticated as (as sent); empty: not authenticated
  std::string phone_key_;     // NormalizePhone(phone_)
  std::uint16_t serial_ = 0;  // the platform's serial for its next message
  bool reading_ = false;
  bool writing_ = false;
  bool waiting_ = false;  // the directory has a frame in hand
  bool closing_ = false;  // closes once its replies are written
  bool closed_ = false;
  bool said_unauthenticated_ = false;
};

Status Server::Start() {
  std::lock_guard<std::mutex> lock(run_mu_);
  if (started_ || stopped_) {
    return Status::Invalid("the JT/T 808 gateway was started already, or stopped");
  }
  started_ = true;
  std::string host = options_.host;
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  std::error_code ec;
  tcp::endpoint endpoint;
  const asio::ip::address address = asio::ip::make_address(host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, options_.port);
  } else {
    tcp::resolver resolver(io_);
    auto results = resolver.resolve(host, std::to_string(options_.port), ec);
    if (ec || results.empty()) {
      return Status::Invalid(fmt::format("jt808: cannot resolve the host '{}': {}", host,
                                         ec ? ec.message() : "no address"));
    }
    endpoint = results.begin()->endpoint();
  }
  const std::string where = FormatEndpoint(endpoint);
  const auto failed = [&](const char* step) {
    return Status::Unavailable(fmt::format("jt808: cannot {} {}: {}", step, where, ec.message()));
  };
  if (acceptor_.open(endpoint.protocol(), ec); ec) return failed("open a socket for");
  if (acceptor_.set_option(tcp::acceptor::reuse_address(true), ec); ec) return failed("set up");
  if (acceptor_.bind(endpoint, ec); ec) return failed("bind");
  if (acceptor_.listen(asio::socket_base::max_listen_connections, ec); ec)
    return failed("listen on");
  const tcp::endpoint bound = acceptor_.local_endpoint(ec);
  if (ec) return failed("read the port of");
  port_ = bound.port();
  Accept();
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "pingma-jt808");
    io_.run();
  });
  return Status::Ok();
}

void Server::Stop() {
  {
    std::lock_guard<std::mutex> lock(run_mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  lifeline_->Cut();
  asio::post(io_, [this] { CloseAll(); });
  // With the listener, the connections and the timers closed, run() runs out of
  // work once their aborted handlers have run.
  if (thread_.joinable()) thread_.join();
}

void Server::CloseAll() {
  std::error_code ignored;
  acceptor_.close(ignored);
  accept_retry_.cancel();
  auto open = std::move(connections_);
  connections_.clear();
  for (auto& [raw, connection] : open) connection->Close("", false);
  counts_.connections_open = 0;
}

GatewayCounters Server::counters() const {
  GatewayCounters c;
  c.connections = counts_.connections.load();
  c.connections_open = counts_.connections_open.load();
  c.connections_over_limit = counts_.connections_over_limit.load();
  c.frames = counts_.frames.load();
  c.bad_frames = counts_.bad_frames.load();
  c.positions_stored = counts_.positions_stored.load();
  c.refused = counts_.refused.load();
  c.closed_by_limits = counts_.closed_by_limits.load();
  return c;
}

void Server::Notice(const std::string& text) const {
  if (options_.notice) return options_.notice(text);
  std::fprintf(stderr, "pingma-registry: %s\n", text.c_str());
}

void Server::Forget(Connection* connection) {
  connections_.erase(connection);
  counts_.connections_open = connections_.size();
}

void Server::Accept() {
  acceptor_.async_accept(
      [this](const std::error_code& ec, tcp::socket socket) { OnAccept(ec, std::move(socket)); });
}

void Server::OnAccept(const std::error_code& ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
  if (ec) {
    Notice(fmt::format("jt808: cannot accept a connection: {}; trying again in {} ms", ec.message(),
                       static_cast<long long>(kAcceptRetry.count())));
    accept_retry_.expires_after(kAcceptRetry);
    accept_retry_.async_wait([this](const std::error_code& wait) {
      if (!wait) Accept();
    });
    return;
  }
  std::error_code ignored;
  if (connections_.size() >= options_.max_connections) {
    ++counts_.connections_over_limit;
    ++over_limit_unsaid_;
    socket.close(ignored);
    const Clock::time_point now = Clock::now();
    if (now - over_limit_said_ >= kOverLimitNoticeEvery) {
      Notice(fmt::format("jt808: {} connection(s) closed at once: {} are open, the limit",
                         over_limit_unsaid_, options_.max_connections));
      over_limit_said_ = now;
      over_limit_unsaid_ = 0;
    }
    return Accept();
  }
  const tcp::endpoint remote = socket.remote_endpoint(ignored);
  const std::string peer = ignored ? std::string("(unknown peer)") : FormatEndpoint(remote);
  socket.set_option(tcp::no_delay(true), ignored);  // replies are small and awaited
  auto connection = std::make_shared<Connection>(*this, std::move(socket), peer);
  connections_.emplace(connection.get(), connection);
  ++counts_.connections;
  counts_.connections_open = connections_.size();
  connection->Start();
  Accept();
}

}  // namespace

struct Gateway::Impl : Server {
  using Server::Server;
};

Gateway::Gateway(TerminalDirectory& directory, GatewayOptions options)
    : impl_(std::make_unique<Impl>(directory, std::move(options))) {}

Gateway::~Gateway() {
  Stop();
}

Status Gateway::Start() {
  return impl_->Start();
}

void Gateway::Stop() {
  impl_->Stop();
}

std::uint16_t Gateway::port() const {
  return impl_->port();
}

GatewayCounters Gateway::counters() const {
  return impl_->counters();
}

}  // namespace pingma::registry::jt808
