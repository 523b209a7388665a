// The operator's screen and GET /status (see screen.h). Every stream and the
// server itself live on the io_context's one thread. Publish only queues the event's
// text: the queue is sent to every stream a few milliseconds after its first event,
// in one write, so that a burst of events (a scan: its state, the scan, the check's
// state, the decision) wakes the server and the screens once, and not in the middle
// of the position's check.
#include "screen.h"

#include <map>
#include <mutex>
#include <optional>
#include <string_view>

#include <restinio/all.hpp>

#include "pingma/common/prometheus.h"

namespace pingma::station {

namespace web {
// Defined in the generated screen_assets.cpp (cmake/embed_files.cmake, station/web/).
std::size_t WebAssetCount();
std::string_view WebAssetPath(std::size_t i);
std::string_view WebAssetBytes(std::size_t i);
std::string_view WebAssetTag(std::size_t i);
std::string_view WebAssetType(std::size_t i);
}  // namespace web

namespace {

using Traits = restinio::default_traits_t;
using Stream = restinio::response_builder_t<restinio::chunked_output_t>;
using restinio::request_handle_t;
using restinio::request_handling_status_t;

constexpr std::string_view kContentSecurityPolicy =
    "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'";
constexpr std::string_view kJson = "application/json; charset=utf-8";
constexpr std::size_t kMaxAckBody = 1024;
// A stream's first words: EventSource reconnects after a second when the station
// goes away (a restart), and gets a fresh snapshot from the new one.
constexpr std::string_view kStreamHello = "retry: 1000\n\n";

// The embedded file `name` ("screen.js"), or npos.
std::size_t FindAsset(std::string_view name) {
  for (std::size_t i = 0; i < web::WebAssetCount(); ++i) {
    if (web::WebAssetPath(i) == name) return i;
  }
  return static_cast<std::size_t>(-1);
}

template <typename Response>
Response& Secure(Response& r) {
  r.append_header("Content-Security-Policy", std::string(kContentSecurityPolicy))
      .append_header("X-Content-Type-Options", "nosniff")
      .append_header("Referrer-Policy", "no-referrer")
      .append_header("X-Frame-Options", "DENY");
  return r;
}

request_handling_status_t Error(const request_handle_t& req, restinio::http_status_line_t status,
                                std::string_view code, const std::string& message) {
  const nlohmann::json body = {{"error", {{"code", code}, {"message", message}}}};
  auto r = req->create_response(std::move(status));
  r.append_header(restinio::http_field::content_type, std::string(kJson));
  Secure(r);
  return r.set_body(body.dump()).done();
}

// "data: {json}\n\n" with an id, as one stream message; `json_text` is one line.
std::shared_ptr<std::string> StreamMessage(std::uint64_t id, std::string_view json_text) {
  auto text = std::make_shared<std::string>();
  text->reserve(json_text.size() + 32);
  *text += "id: ";
  *text += std::to_string(id);
  *text += "\ndata: ";
  *text += json_text;
  *text += "\n\n";
  return text;
}

std::shared_ptr<std::string> StreamEvent(std::uint64_t id, const nlohmann::json& event) {
  const std::string text = event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return StreamMessage(id, text);
}

std::pair<std::string, std::uint16_t> SplitHostPort(const std::string& hp, bool* ok) {
  *ok = false;
  const auto colon = hp.rfind(':');
  if (colon == std::string::npos || colon + 1 == hp.size()) return {hp, 0};
  std::string host = hp.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  unsigned port = 0;
  for (size_t i = colon + 1; i < hp.size(); ++i) {
    if (hp[i] < '0' || hp[i] > '9' || port > 65535) return {host, 0};
    port = port * 10 + static_cast<unsigned>(hp[i] - '0');
  }
  if (port > 65535 || host.empty()) return {host, 0};
  *ok = true;
  return {host, static_cast<std::uint16_t>(port)};
}

}  // namespace

struct ScreenServer::Impl : std::enable_shared_from_this<Impl> {
  struct Client {
    std::uint64_t id = 0;
    std::optional<Stream> stream;
    std::size_t backlog = 0;  // bytes handed to the connection and not yet written
    std::string peer;
  };

  Impl(asio::io_context& io_context, ScreenOptions o)
      : io(io_context), options(std::move(o)), keepalive(io_context), batch_timer(io_context) {}

  asio::io_context& io;
  ScreenOptions options;
  std::string host;
  std::uint16_t port = 0;
  std::optional<restinio::http_server_t<Traits>> server;
  // Below: the io thread's only.
  std::map<std::uint64_t, std::shared_ptr<Client>> clients;
  std::uint64_t next_client = 1, next_message = 1;
  asio::steady_timer keepalive;
  bool closing = false;
  // Events published and not yet sent; any thread, under `queue_mu`.
  std::mutex queue_mu;
  std::vector<std::string> queued;
  bool flush_posted = false;
  asio::steady_timer batch_timer;  // the io thread's

  void Flush();

  request_handling_status_t Handle(const request_handle_t& req);
  request_handling_status_t ServeAsset(const request_handle_t& req, std::string_view name);
  request_handling_status_t OpenStream(const request_handle_t& req);
  request_handling_status_t Acknowledge(const request_handle_t& req, const std::string& position);
  bool KnownPosition(std::string_view id) const;
  void Broadcast(const std::shared_ptr<std::string>& text);
  void Send(const std::shared_ptr<Client>& client, const std::shared_ptr<std::string>& text);
  void Drop(std::uint64_t id, const std::string& why);
  void ArmKeepalive();
};

bool ScreenServer::Impl::KnownPosition(std::string_view id) const {
  for (const std::string& p : options.positions) {
    if (p == id) return true;
  }
  return false;
}

request_handling_status_t ScreenServer::Impl::Handle(const request_handle_t& req) {
  const auto method = req->header().method();
  const std::string path(req->header().path());
  const bool get = method == restinio::http_method_get() || method == restinio::http_method_head();
  // POST /p/{position}/ack, the one write.
  constexpr std::string_view kAck = "/ack";
  if (path.rfind("/p/", 0) == 0 && path.size() > 3 + kAck.size() &&
      path.compare(path.size() - kAck.size(), kAck.size(), kAck) == 0) {
    if (method != restinio::http_method_post()) {
      return Error(req, restinio::status_method_not_allowed(), "METHOD_NOT_ALLOWED",
                   "acknowledge with POST");
    }
    return Acknowledge(req, path.substr(3, path.size() - 3 - kAck.size()));
  }
  if (!get) {
    return Error(req, restinio::status_method_not_allowed(), "METHOD_NOT_ALLOWED",
                 "the operator's screen is read-only apart from POST /p/{position}/ack");
  }
  if (path == "/status") {
    auto r = req->create_response();
    r.append_header(restinio::http_field::content_type, std::string(kJson))
        .append_header(restinio::http_field::cache_control, "no-store");
    Secure(r);
    return r
        .set_body(options.status().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))
        .done();
  }
  if (path == "/metrics" && options.metrics) {
    auto r = req->create_response();
    r.append_header(restinio::http_field::content_type, prometheus::kContentType)
        .append_header(restinio::http_field::cache_control, "no-store");
    Secure(r);
    return r.set_body(options.metrics()).done();
  }
  if (path == "/events") {
    if (method != restinio::http_method_get()) {
      return Error(req, restinio::status_method_not_allowed(), "METHOD_NOT_ALLOWED",
                   "follow the events with GET");
    }
    return OpenStream(req);
  }
  if (path == "/" || path == "/index.html") return ServeAsset(req, "screen.html");
  if (path.rfind("/p/", 0) == 0) {
    if (!KnownPosition(std::string_view(path).substr(3))) {
      return Error(req, restinio::status_not_found(), "NOT_FOUND",
                   "no filling position '" + path.substr(3) + "' at this station");
    }
    return ServeAsset(req, "screen.html");
  }
  // The page's own files, by their one name: nothing else on disk or in the table.
  if (path.size() > 1 && path.find('/', 1) == std::string::npos &&
      FindAsset(std::string_view(path).substr(1)) != static_cast<std::size_t>(-1) &&
      path != "/screen.html") {
    return ServeAsset(req, std::string_view(path).substr(1));
  }
  return Error(req, restinio::status_not_found(), "NOT_FOUND",
               "no such page: try / (every position), /p/{position}, /events, /status or /metrics");
}

request_handling_status_t ScreenServer::Impl::ServeAsset(const request_handle_t& req,
                                                         std::string_view name) {
  const std::size_t i = FindAsset(name);
  if (i == static_cast<std::size_t>(-1)) {
    return Error(req, restinio::status_internal_server_error(), "MISSING_ASSET",
                 std::string(name) + " was not built into this station");
  }
  const std::string tag(web::WebAssetTag(i));
  auto r = req->create_response();
  r.append_header(restinio::http_field::content_type, std::string(web::WebAssetType(i)))
      .append_header(restinio::http_field::cache_control, "no-cache")
      .append_header(restinio::http_field::etag, tag);
  Secure(r);
  const auto match = req->header().opt_value_of(restinio::http_field::if_none_match);
  if (match && *match == tag) {
    r.header().status_line(restinio::status_not_modified());
    return r.done();
  }
  if (req->header().method() == restinio::http_method_head()) return r.done();
  return r
      .set_body(restinio::const_buffer(web::WebAssetBytes(i).data(), web::WebAssetBytes(i).size()))
      .done();
}

request_handling_status_t ScreenServer::Impl::OpenStream(const request_handle_t& req) {
  if (closing) {
    return Error(req, restinio::status_service_unavailable(), "STOPPING",
                 "the station is stopping");
  }
  if (clients.size() >= options.max_streams) {
    return Error(req, restinio::status_service_unavailable(), "TOO_MANY_SCREENS",
                 "at most " + std::to_string(options.max_streams) + " screens at once");
  }
  auto client = std::make_shared<Client>();
  client->id = next_client++;
  client->peer = req->remote_endpoint().address().to_string() + ":" +
                 std::to_string(req->remote_endpoint().port());
  client->stream.emplace(req->create_response<restinio::chunked_output_t>());
  Stream& s = *client->stream;
  s.append_header(restinio::http_field::content_type, "text/event-stream; charset=utf-8")
      .append_header(restinio::http_field::cache_control, "no-store")
      .append_header("X-Accel-Buffering", "no");
  Secure(s);
  clients.emplace(client->id, client);
  nlohmann::json snapshot = options.status();
  snapshot["event"] = "snapshot";
  auto hello = std::make_shared<std::string>(kStreamHello);
  *hello += *StreamEvent(next_message++, snapshot);
  Send(client, hello);
  return restinio::request_accepted();
}

request_handling_status_t ScreenServer::Impl::Acknowledge(const request_handle_t& req,
                                                          const std::string& position) {
  if (!KnownPosition(position)) {
    return Error(req, restinio::status_not_found(), "NOT_FOUND",
                 "no filling position '" + position + "' at this station");
  }
  // A page on another site cannot silence an alarm: a cross-site form cannot send
  // JSON without a preflight, which is never answered, and a browser names its origin.
  const auto type = req->header().opt_value_of(restinio::http_field::content_type);
  if (!type || type->find("application/json") != 0) {
    return Error(req, restinio::status_unsupported_media_type(), "UNSUPPORTED_MEDIA_TYPE",
                 "acknowledge with Content-Type: application/json");
  }
  const auto origin = req->header().opt_value_of(restinio::http_field::origin);
  const auto host_header = req->header().opt_value_of(restinio::http_field::host);
  if (origin && (!host_header || (*origin != "http://" + std::string(*host_header) &&
                                  *origin != "https://" + std::string(*host_header)))) {
    return Error(req, restinio::status_forbidden(), "FOREIGN_ORIGIN",
                 "only the station's own screen may acknowledge");
  }
  if (req->body().size() > kMaxAckBody) {
    return Error(
        req, restinio::status_payload_too_large(), "TOO_LARGE",
        "an acknowledgement's body is {} (at most " + std::to_string(kMaxAckBody) + " bytes)");
  }
  options.acknowledge(position);
  auto r = req->create_response(restinio::status_no_content());
  Secure(r);
  return r.done();
}

void ScreenServer::Impl::Send(const std::shared_ptr<Client>& client,
                              const std::shared_ptr<std::string>& text) {
  if (!client->stream) return;
  if (client->backlog + text->size() > options.max_backlog_bytes) {
    Drop(client->id, "it is not reading (" + std::to_string(client->backlog) + " bytes behind)");
    return;
  }
  client->backlog += text->size();
  const std::size_t size = text->size();
  std::weak_ptr<Impl> weak = weak_from_this();
  const std::uint64_t id = client->id;
  try {
    client->stream->append_chunk(text).flush([weak, client, id, size](const asio::error_code& ec) {
      client->backlog -= std::min(client->backlog, size);
      if (!ec) return;
      if (auto self = weak.lock()) self->Drop(id, "its connection ended: " + ec.message());
    });
  } catch (const std::exception& e) {
    Drop(id, std::string("its connection failed: ") + e.what());
  }
}

void ScreenServer::Impl::Drop(std::uint64_t id, const std::string& why) {
  auto it = clients.find(id);
  if (it == clients.end()) return;
  std::shared_ptr<Client> client = it->second;
  clients.erase(it);
  if (options.notice) {
    options.notice({{"event", "screen_dropped"}, {"peer", client->peer}, {"why", why}});
  }
  // The connection closes itself: a stuck write times out, a broken one has failed.
  client->stream.reset();
}

void ScreenServer::Impl::Broadcast(const std::shared_ptr<std::string>& text) {
  std::vector<std::shared_ptr<Client>> all;
  all.reserve(clients.size());
  for (auto& [id, client] : clients) all.push_back(client);
  for (const auto& client : all) Send(client, text);
}

void ScreenServer::Impl::ArmKeepalive() {
  keepalive.expires_after(options.keepalive);
  std::weak_ptr<Impl> weak = weak_from_this();
  keepalive.async_wait([weak](const asio::error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || self->closing) return;
    // The keepalive is the station's summary: banners stay right without a poll.
    if (!self->clients.empty()) {
      nlohmann::json summary = self->options.status();
      summary.erase("positions");
      summary["event"] = "station";
      self->Broadcast(StreamEvent(self->next_message++, summary));
    }
    self->ArmKeepalive();
  });
}

Result<std::unique_ptr<ScreenServer>> ScreenServer::Start(asio::io_context& io,
                                                          ScreenOptions options) {
  bool ok = false;
  auto [host, port] = SplitHostPort(options.listen, &ok);
  if (!ok) {
    return Status::Invalid("status_listen must be HOST:PORT, not '" + options.listen + "'");
  }
  auto impl = std::make_shared<Impl>(io, std::move(options));
  impl->host = host;
  impl->port = port;
  Impl* self = impl.get();
  std::promise<Status> opened;
  try {
    impl->server.emplace(
        restinio::external_io_context(io),
        restinio::server_settings_t<Traits>{}
            .address(host)
            .port(port)
            // An open stream is a request being handled: keepalives reset this.
            .handle_request_timeout(std::chrono::minutes(1))
            // A browser that stops reading holds at most this much of the station's
            // memory in the kernel, and its stuck write ends the connection.
            .write_http_response_timelimit(std::chrono::seconds(5))
            // The one body taken is an acknowledgement's "{}": one far larger is not
            // even read (the connection is closed); a larger one than kMaxAckBody, 413.
            .incoming_http_msg_limits(restinio::incoming_http_msg_limits_t{}
                                          .max_body_size(64 << 10)
                                          .max_field_count(64)
                                          .max_url_size(2048))
            .socket_options_setter([](restinio::socket_options_t& o) {
              o.set_option(asio::socket_base::send_buffer_size(64 << 10));
            })
            .request_handler([self](request_handle_t req) { return self->Handle(req); })
            .acceptor_post_bind_hook([self](asio::ip::tcp::acceptor& acceptor) {
              self->port = acceptor.local_endpoint().port();
            }));
  } catch (const std::exception& e) {
    return Status::Unavailable(std::string("cannot set up the status server: ") + e.what());
  }
  const std::string listen = impl->options.listen;
  impl->server->open_async(
      [&opened] { opened.set_value(Status::Ok()); },
      [&opened, listen](std::exception_ptr ex) {
        try {
          std::rethrow_exception(ex);
        } catch (const std::exception& e) {
          opened.set_value(Status::Unavailable("cannot listen on " + listen + ": " + e.what()));
        }
      });
  // The io_context is run by the caller; Start waits for the bind on it.
  auto result = opened.get_future();
  while (result.wait_for(std::chrono::milliseconds(0)) != std::future_status::ready) {
    if (io.stopped()) io.restart();
    io.run_one_for(std::chrono::milliseconds(100));
  }
  if (Status s = result.get(); !s.ok()) return s;
  impl->ArmKeepalive();
  return std::unique_ptr<ScreenServer>(new ScreenServer(std::move(impl)));
}

ScreenServer::ScreenServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

ScreenServer::~ScreenServer() = default;

void ScreenServer::Publish(std::string event_json) {
  {
    std::lock_guard<std::mutex> lock(impl_->queue_mu);
    impl_->queued.push_back(std::move(event_json));
    if (impl_->flush_posted) return;
    impl_->flush_posted = true;
  }
  std::weak_ptr<Impl> weak = impl_;
  asio::post(impl_->io, [weak]() {
    auto self = weak.lock();
    if (!self) return;
    self->batch_timer.expires_after(self->options.batch);
    self->batch_timer.async_wait([weak](const asio::error_code&) {
      if (auto me = weak.lock()) me->Flush();
    });
  });
}

void ScreenServer::Impl::Flush() {
  std::vector<std::string> events;
  {
    std::lock_guard<std::mutex> lock(queue_mu);
    events.swap(queued);
    flush_posted = false;
  }
  if (closing || clients.empty() || events.empty()) return;
  auto text = std::make_shared<std::string>();
  for (const std::string& e : events) *text += *StreamMessage(next_message++, e);
  Broadcast(text);
}

std::string ScreenServer::url() const {
  const bool v6 = impl_->host.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + impl_->host + "]" : impl_->host) + ":" +
         std::to_string(impl_->port);
}

void ScreenServer::Close(std::function<void()> done) {
  std::shared_ptr<Impl> self = impl_;
  asio::post(self->io, [self, done = std::move(done)]() mutable {
    self->closing = true;
    self->keepalive.cancel();
    self->batch_timer.cancel();
    for (auto& [id, client] : self->clients) {
      try {
        if (client->stream) client->stream->done();
      } catch (const std::exception&) {
        // Its connection is already gone.
      }
    }
    self->clients.clear();
    self->server->close_async([done] { done(); }, [done](std::exception_ptr) { done(); });
  });
}

}  // namespace pingma::station
