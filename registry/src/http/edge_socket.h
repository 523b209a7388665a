// The registry's HTTP connections as RESTinio sees them: a TCP socket whose reads
// pass through RequestFraming before RESTinio's parser gets them, so that the
// limits hold before anything is buffered:
//  - a request's line and header fields take at most RequestFraming::kMaxHeadBytes
//    (431) and must be whole within EdgeLimits::head_time of the request's first
//    byte (408);
//  - a body is sent with a Content-Length (411 for Transfer-Encoding), which is
//    checked against the route's limit (Service::BodyLimit) as soon as the head is
//    whole (413): the body of a refused request is never read.
// A refusal is written here, as a JSON error with `Connection: close`, while
// RESTinio waits for its read; the connection then drains what the client still
// sends for a moment (so that the answer is not lost to a reset) and ends.
//
// With a certificate (EdgeLimits::tls, serve --tls-cert), the bytes go through TLS
// under all of this: the handshake is made once the connection is accepted, with
// the certificate current then, and must end within EdgeLimits::head_time.
//
// Included by server.cpp alone (RESTinio and Asio are slow to compile).
// Thread-safety: a connection's reads and timers run on its strand, as RESTinio's
// own handlers do.
#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <asio/ssl.hpp>
#include <restinio/all.hpp>

#include "http/request_framing.h"
#include "http/tls_certificate.h"

namespace pingma::registry {

/// What every connection of one server shares: its limits, and how a refusal is
/// written. An Asio service of the server's io_context, because RESTinio makes
/// its sockets from the io_context alone. Set up before the server opens.
class EdgeLimits : public asio::execution_context::service {
 public:
  inline static asio::execution_context::id id;

  explicit EdgeLimits(asio::execution_context& context)
      : asio::execution_context::service(context) {}

  /// Bodies up to this size pass without a look at the route.
  std::uint64_t small_body = 0;
  /// The body limit of a larger one (Service::BodyLimit).
  RequestFraming::BodyLimit body_limit = [](const RequestHead&) { return std::uint64_t{0}; };
  /// How long a request's head may take, from its first byte.
  std::chrono::steady_clock::duration head_time = std::chrono::seconds(10);
  /// After a refusal, how long and how much of what the client still sends is
  /// read and thrown away before the connection closes.
  std::chrono::steady_clock::duration linger_time = std::chrono::seconds(2);
  std::size_t linger_bytes = 1u << 20;
  /// The whole HTTP answer to a refusal, `Connection: close` included.
  std::function<std::string(const EdgeRefusal&)> answer;
  /// HTTPS: the certificate new connections are offered; null: plain HTTP.
  const TlsCertificate* tls = nullptr;

 private:
  void shutdown() override {}
};

class EdgeSocket {
 public:
  /// The first byte of every TLS connection (a handshake record's content type).
  static constexpr char kTlsHandshakeRecord = 22;

  using socket_type = asio::ip::tcp::socket;
  using executor_type = socket_type::executor_type;

  explicit EdgeSocket(asio::io_context& io)
      : state_(std::make_shared<State>(io, asio::use_service<EdgeLimits>(io))) {}
  EdgeSocket(const EdgeSocket&) = delete;
  EdgeSocket& operator=(const EdgeSocket&) = delete;
  /// Leaves `other` a new, closed socket, as a moved-from asio socket is: RESTinio
  /// accepts the next connection into the socket it moved the last one out of.
  EdgeSocket(EdgeSocket&& other)
      : state_(std::exchange(other.state_,
                             std::make_shared<State>(other.state_->io, other.state_->limits))) {}
  EdgeSocket& operator=(EdgeSocket&& other) {
    std::swap(state_, other.state_);
    return *this;
  }

  socket_type::lowest_layer_type& lowest_layer() { return state_->socket.lowest_layer(); }
  const socket_type::lowest_layer_type& lowest_layer() const {
    return state_->socket.lowest_layer();
  }
  executor_type get_executor() { return state_->socket.get_executor(); }
  auto remote_endpoint() const { return state_->socket.remote_endpoint(); }
  bool is_open() const { return state_->socket.is_open(); }
  template <typename... Args>
  void cancel(Args&&... args) {
    state_->socket.cancel(std::forward<Args>(args)...);
  }
  template <typename... Args>
  void shutdown(Args&&... args) {
    state_->socket.shutdown(std::forward<Args>(args)...);
  }
  template <typename... Args>
  void close(Args&&... args) {
    state_->timer.cancel();
    state_->socket.close(std::forward<Args>(args)...);
  }
  template <typename Buffers, typename Handler>
  void async_write_some(const Buffers& buffers, Handler&& handler) {
    if (state_->tls) return state_->tls->async_write_some(buffers, std::forward<Handler>(handler));
    state_->socket.async_write_some(buffers, std::forward<Handler>(handler));
  }

  /// Once accepted: plain HTTP starts reading at once; HTTPS makes its handshake
  /// first, within the head's time limit, and `failed` ends the connection if the
  /// handshake does not end well. A client that speaks plain HTTP to the HTTPS port
  /// is answered so, in plain HTTP (400 HTTPS_REQUIRED), rather than left with
  /// nothing.
  template <typename Started, typename Failed>
  void Start(Started started, Failed failed) {
    State& s = *state_;
    if (s.limits.tls == nullptr) return started();
    // The handshake and its timer on one strand of their own: RESTinio's comes
    // with the first read.
    auto strand = asio::make_strand(s.io);
    s.timer.expires_after(s.limits.head_time);
    s.timer.async_wait(asio::bind_executor(
        strand, [weak = std::weak_ptr<State>(state_)](const asio::error_code& ec) {
          if (auto held = weak.lock(); held && !ec) held->socket.cancel();
        }));
    // The first byte, left in the socket: a TLS connection begins with a handshake
    // record (22); anything else is not TLS.
    s.socket.async_receive(
        asio::buffer(&s.first_byte, 1), asio::socket_base::message_peek,
        asio::bind_executor(strand, [state = state_, strand, started = std::move(started),
                                     failed = std::move(failed)](const asio::error_code& ec,
                                                                 std::size_t n) mutable {
          if (ec || n == 0) {
            state->timer.cancel();
            return failed(ec ? ec : asio::error::eof);
          }
          if (state->first_byte != kTlsHandshakeRecord) {
            state->strand.emplace(strand);
            state->refusal =
                EdgeRefusal{400, "HTTPS_REQUIRED",
                            "this port speaks HTTPS: use https:// (the request was not read)"};
            return Refuse(std::move(state),
                          [failed = std::move(failed)](const asio::error_code& e,
                                                       std::size_t) mutable { failed(e); });
          }
          state->tls_context.emplace(state->limits.tls->NewReference());
          state->tls.emplace(state->socket, *state->tls_context);
          State& tls_state = *state;
          tls_state.tls->async_handshake(
              asio::ssl::stream_base::server,
              asio::bind_executor(strand,
                                  [state = std::move(state), started = std::move(started),
                                   failed = std::move(failed)](const asio::error_code& e) mutable {
                                    state->timer.cancel();
                                    if (e) return failed(e);
                                    started();
                                  }));
        }));
  }

  /// RESTinio's read: the bytes come through RequestFraming, and those of a
  /// refused request never reach `handler`, which gets an error instead once
  /// the refusal is written.
  template <typename Handler>
  void async_read_some(asio::mutable_buffer buffer, Handler handler) {
    std::shared_ptr<State> state = state_;
    auto strand = asio::get_associated_executor(handler, state->socket.get_executor());
    if (!state->strand) state->strand.emplace(strand);
    if (state->refusal) return Refuse(std::move(state), std::move(handler));
    state->reading = true;
    ReadSome(*state, buffer,
             asio::bind_executor(strand, [state, buffer, handler = std::move(handler)](
                                             const asio::error_code& ec, std::size_t n) mutable {
               state->reading = false;
               if (ec == asio::error::operation_aborted && state->refusal) {
                 return Refuse(std::move(state), std::move(handler));  // the head timed out
               }
               if (ec) return handler(ec, n);
               auto step = state->framing.Feed(static_cast<const char*>(buffer.data()), n);
               WatchHead(state);
               if (!step.refusal) return handler(ec, n);
               state->refusal = std::move(step.refusal);
               // Requests before the refused one, in the same bytes, are answered
               // first: the refusal goes out when RESTinio reads again.
               if (step.accepted > 0) return handler(ec, step.accepted);
               Refuse(std::move(state), std::move(handler));
             }));
  }

 private:
  struct State {
    State(asio::io_context& io_context, EdgeLimits& edge)
        : io(io_context),
          limits(edge),
          socket(io_context),
          timer(io_context),
          // The peer's address goes with the head: the token's check counts a bad
          // token against it (and only it), as Service::Handle does.
          framing(edge.small_body, [this](const RequestHead& head) {
            RequestHead with_client = head;
            asio::error_code ec;
            const auto peer = socket.remote_endpoint(ec);
            if (!ec) with_client.client = peer.address().to_string();
            return limits.body_limit(with_client);
          }) {}
    asio::io_context& io;
    EdgeLimits& limits;
    socket_type socket;
    // HTTPS: the context this connection's handshake was made with (a reference of
    // its own, which asio's context frees), and the TLS layer over `socket`.
    std::optional<asio::ssl::context> tls_context;
    std::optional<asio::ssl::stream<socket_type&>> tls;
    char first_byte = 0;       ///< HTTPS: the connection's first byte, peeked at
    asio::steady_timer timer;  ///< a head's time limit, then the linger's
    RequestFraming framing;
    std::optional<asio::any_io_executor> strand;  ///< RESTinio's, for this connection
    bool reading = false;                         ///< RESTinio's read is pending
    std::uint64_t timed_request = 0;              ///< the request whose head is timed
    std::optional<EdgeRefusal> refusal;           ///< decided, to be written
    std::string answer;                           ///< being written
    std::unique_ptr<std::array<char, 16384>> drain;
    std::size_t drained = 0;
    std::chrono::steady_clock::time_point linger_until;
  };

  /// A read or a whole write, through TLS when the connection has it.
  template <typename Buffers, typename Handler>
  static void ReadSome(State& s, const Buffers& buffers, Handler&& handler) {
    if (s.tls) return s.tls->async_read_some(buffers, std::forward<Handler>(handler));
    s.socket.async_read_some(buffers, std::forward<Handler>(handler));
  }
  template <typename Buffers, typename Handler>
  static void WriteAll(State& s, const Buffers& buffers, Handler&& handler) {
    if (s.tls) return asio::async_write(*s.tls, buffers, std::forward<Handler>(handler));
    asio::async_write(s.socket, buffers, std::forward<Handler>(handler));
  }

  /// Starts the time limit of a head that has just begun, and stops it once the
  /// head is whole.
  static void WatchHead(const std::shared_ptr<State>& state) {
    const std::uint64_t request = state->framing.requests_begun();
    if (!state->framing.in_head()) {
      if (state->timed_request != 0) {
        state->timer.cancel();
        state->timed_request = 0;
      }
      return;
    }
    if (state->timed_request == request) return;
    state->timed_request = request;
    state->timer.expires_after(state->limits.head_time);
    state->timer.async_wait(asio::bind_executor(
        *state->strand, [weak = std::weak_ptr<State>(state), request](const asio::error_code& ec) {
          auto s = weak.lock();
          if (ec || !s || s->refusal || !s->framing.in_head() ||
              s->framing.requests_begun() != request) {
            return;
          }
          s->refusal = EdgeRefusal{
              408, "TIMEOUT",
              fmt::format(
                  "the request line and header fields must arrive within {} s",
                  std::chrono::duration_cast<std::chrono::seconds>(s->limits.head_time).count())};
          // RESTinio waits for a read: it ends, and the refusal goes out. Otherwise
          // RESTinio is answering an earlier request and reads again after it.
          if (s->reading) s->socket.cancel();
        }));
  }

  /// Writes the refusal, stops sending, lingers, and then fails RESTinio's read,
  /// which closes the connection.
  template <typename Handler>
  static void Refuse(std::shared_ptr<State> state, Handler handler) {
    state->timer.cancel();
    state->answer = state->limits.answer(*state->refusal);
    auto strand = *state->strand;
    WriteAll(*state, asio::buffer(state->answer),
             asio::bind_executor(strand, [state, handler = std::move(handler)](
                                             const asio::error_code& ec, std::size_t) mutable {
               asio::error_code ignored;
               state->socket.shutdown(socket_type::shutdown_send, ignored);
               if (ec) return handler(asio::error::connection_aborted, 0);
               state->linger_until = std::chrono::steady_clock::now() + state->limits.linger_time;
               state->timer.expires_at(state->linger_until);
               state->timer.async_wait(asio::bind_executor(
                   *state->strand, [weak = std::weak_ptr<State>(state)](const asio::error_code& e) {
                     if (auto s = weak.lock(); s && !e) s->socket.cancel();
                   }));
               state->drain = std::make_unique<std::array<char, 16384>>();
               Drain(std::move(state), std::move(handler));
             }));
  }

  /// Reads and throws away what the client still sends, until it closes, the
  /// linger's time or byte budget is spent, or the socket fails.
  template <typename Handler>
  static void Drain(std::shared_ptr<State> state, Handler handler) {
    auto strand = *state->strand;
    ReadSome(*state, asio::buffer(*state->drain),
             asio::bind_executor(strand, [state, handler = std::move(handler)](
                                             const asio::error_code& ec, std::size_t n) mutable {
               state->drained += n;
               if (!ec && state->drained < state->limits.linger_bytes &&
                   std::chrono::steady_clock::now() < state->linger_until) {
                 return Drain(std::move(state), std::move(handler));
               }
               state->timer.cancel();
               handler(asio::error::connection_aborted, 0);
             }));
  }

  std::shared_ptr<State> state_;
};

/// RESTinio's hooks for a socket type of its own (see restinio/impl/connection.hpp):
/// the handshake, if any, before reading (the connection is held until it ends, as
/// restinio/tls.hpp holds it), and no TLS socket for the state listener.
template <typename Connection, typename StartRead, typename Failed>
void prepare_connection_and_start_read(EdgeSocket& socket, Connection& connection,
                                       StartRead start_read, Failed failed) {
  socket.Start(
      [start_read = std::move(start_read), held = connection.shared_from_this()] { start_read(); },
      std::move(failed));
}
inline restinio::impl::tls_socket_t* make_tls_socket_pointer_for_state_listener(
    EdgeSocket&) noexcept {
  return nullptr;
}

}  // namespace pingma::registry
