// The station's own web server on `status_listen`: GET /status for supervisors and
// tests, and the operator's screen (操作屏) for the panel mounted at each scale.
//
//   GET  /               every position as a tile
//   GET  /p/{position}   one position, full screen (1024x600, 800x480 panels; phones)
//   GET  /events         the station's JSON events as a live text/event-stream
//   POST /p/{position}/ack  silences a block's alarm (the only write)
//   GET  /status         the station's state as one JSON document
//
// The page's files are embedded in the binary (station/web/); nothing is fetched
// from outside, since stations are often offline. There is no token: the server
// listens on 127.0.0.1 unless the station's config puts it on the station's own
// network. Every stream has a bounded backlog: a browser that connects and never
// reads is dropped (with a notice), and never slows the positions, which only post
// their events to the server's thread.
//
// Threads: the server runs on the io_context it is given (one thread); Publish may
// be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <asio.hpp>
#include <nlohmann/json.hpp>

#include "pingma/common/status.h"

namespace pingma::station {

struct ScreenOptions {
  std::string listen = "127.0.0.1:0";  ///< HOST:PORT; port 0 takes a free one
  std::vector<std::string> positions;  ///< the ids /p/{position} accepts
  /// GET /status's document, and the first message of every event stream (as
  /// {"event": "snapshot", ...}). Called on the server's thread.
  std::function<nlohmann::json()> status;
  /// GET /metrics's text, in Prometheus's format. Called on the server's thread.
  std::function<std::string()> metrics;
  /// Silences the alarm of `position` (one of `positions`). Called on the server's thread.
  std::function<void(const std::string& position)> acknowledge;
  /// Tells the station's log what happened to a screen (a stream dropped), as an event.
  std::function<void(const nlohmann::json& event)> notice;
  std::size_t max_streams = 200;             ///< more event streams at once: 503
  std::size_t max_backlog_bytes = 64 << 10;  ///< a stream further behind is dropped
  /// How often every stream gets {"event": "station", ...}: the status without the
  /// positions (online, outboxes, replica); it also keeps idle streams open.
  std::chrono::milliseconds keepalive{5000};
  /// Events published within this of the first are sent together, in one write.
  std::chrono::milliseconds batch{10};
};

class ScreenServer {
 public:
  /// Binds and starts serving on `io` (which must be run by the caller). kUnavailable
  /// naming the address when it cannot listen; `listen` unparsable is kInvalid.
  static Result<std::unique_ptr<ScreenServer>> Start(asio::io_context& io, ScreenOptions options);
  ~ScreenServer();
  ScreenServer(const ScreenServer&) = delete;
  ScreenServer& operator=(const ScreenServer&) = delete;

  /// Sends one event, a JSON object's text on one line, to every open stream, within
  /// `batch` (any thread; returns at once: the text is queued for the server's thread).
  void Publish(std::string event_json);
  /// The address it listens on, as "http://HOST:PORT".
  std::string url() const;
  /// Stops accepting and ends every stream; `done` runs on the server's thread.
  void Close(std::function<void()> done);

 private:
  struct Impl;
  explicit ScreenServer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace pingma::station
