// The HTTP/1.1 framing of the requests on one connection, followed byte by byte as
// they come off the socket, before the HTTP parser sees them: each request's head
// (request line and header fields) is bounded, and its body's size is known from
// Content-Length, and checked against the route's limit, before a byte of the body
// is read. Pure: no sockets, no clock; the HTTP edge (server.cpp) acts on what
// it says.
//
// Thread-safety: none; one instance per connection, used on its strand.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace pingma::registry {

/// What a request's head says about its body, as far as the limits need.
struct RequestHead {
  std::string_view method;         ///< "POST"
  std::string_view target;         ///< "/v1/cylinders/batch?x=1"
  std::string_view authorization;  ///< the Authorization field's value, or empty
  std::uint64_t content_length = 0;
  std::string client = {};  ///< the peer's address, set by the connection (edge_socket.h)
};

/// A request refused at the edge: the HTTP status and the API's error code and
/// message. The connection is closed after the answer.
struct EdgeRefusal {
  int status = 400;
  std::string code;
  std::string message;
};

class RequestFraming {
 public:
  /// The most bytes a request's line and header fields may take together.
  static constexpr std::size_t kMaxHeadBytes = 32u << 10;

  /// The body limit of a request, from its head. Called only for a body larger
  /// than `small_body`, so that the common small request costs no lookup.
  using BodyLimit = std::function<std::uint64_t(const RequestHead&)>;

  RequestFraming(std::uint64_t small_body, BodyLimit limit)
      : small_body_(small_body), limit_(std::move(limit)) {}

  struct Step {
    /// The bytes, from the start of those fed, that belong to requests not refused
    /// and may be handed to the HTTP parser.
    std::size_t accepted = 0;
    /// Set when the request that starts at `accepted` is refused: nothing from
    /// there on may be parsed, and the connection ends after the refusal.
    std::optional<EdgeRefusal> refusal = std::nullopt;
  };

  /// Follows the next `n` bytes of the connection. After a refusal every byte is
  /// refused with it.
  Step Feed(const char* data, std::size_t n);

  /// A request has begun (a byte of its line has come) and its head is not whole.
  bool in_head() const { return phase_ == Phase::kHead; }
  /// How many requests have begun on the connection: tells a timer set for one
  /// request's head from the next's.
  std::uint64_t requests_begun() const { return requests_begun_; }

 private:
  enum class Phase { kBetween, kHead, kBody, kRefused };

  /// One complete line of the head (without its line end); a refusal ends it.
  std::optional<EdgeRefusal> TakeLine(std::string_view line);
  /// The head is whole: decides on its body.
  std::optional<EdgeRefusal> EndHead();

  const std::uint64_t small_body_;
  BodyLimit limit_;
  Phase phase_ = Phase::kBetween;
  std::uint64_t requests_begun_ = 0;
  std::size_t head_bytes_ = 0;  ///< of the current head so far
  std::string line_;            ///< the current line, up to kMaxHeadBytes
  bool request_line_ = true;    ///< the next complete line is the request line
  std::string method_, target_, authorization_;
  std::optional<std::uint64_t> content_length_;
  bool transfer_encoding_ = false;
  std::uint64_t body_left_ = 0;
  EdgeRefusal refusal_;  ///< once refused
};

}  // namespace pingma::registry
