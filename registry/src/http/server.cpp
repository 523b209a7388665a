// The HTTP edge: RESTinio on a pool of Asio threads, one catch-all handler that
// hands each request to the Service and answers asynchronously when the Service is
// done (after the commit, for writes). The only translation unit with RESTinio.
#include <pthread.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>
#include <restinio/all.hpp>

#include "access/secrets.h"
#include "http/edge_socket.h"
#include "http/metrics.h"
#include "http/tls_certificate.h"
#include "jt808/gateway.h"
#include "pingma/common/prometheus.h"
#include "pingma/common/version.h"
#include "pingma/registry/registry.h"
#include "service.h"
#include "store/pg.h"

namespace pingma::registry {
namespace {

// RESTinio's defaults with the registry's own socket, which enforces the limits
// of each request before its body is read (edge_socket.h).
using Traits =
    restinio::traits_t<restinio::asio_timer_manager_t, restinio::null_logger_t,
                       restinio::default_request_handler_t, restinio::default_strand_t, EdgeSocket>;
// The metrics' listener: plain HTTP on RESTinio's own socket, whatever the API's is
// (EdgeLimits, HTTPS among them, belongs to the io_context both share).
using MetricsTraits =
    restinio::traits_t<restinio::asio_timer_manager_t, restinio::null_logger_t,
                       restinio::default_request_handler_t, restinio::default_strand_t>;

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 301:
      return "Moved Permanently";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 411:
      return "Length Required";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return status < 400 ? "Other" : status < 500 ? "Error" : "Internal Server Error";
  }
}

// Starts `server` listening; the future says whether it does ("WHAT: why" if not).
template <typename Server>
std::future<Status> Open(Server& server, std::string what) {
  auto opened = std::make_shared<std::promise<Status>>();
  server.open_async(
      [opened] { opened->set_value(Status::Ok()); },
      [opened, what = std::move(what)](std::exception_ptr ex) {
        try {
          std::rethrow_exception(ex);
        } catch (const std::exception& e) {
          opened->set_value(Status::Unavailable(fmt::format("{}: {}", what, e.what())));
        }
      });
  return opened->get_future();
}

std::future<Status> ReadyStatus() {
  std::promise<Status> ready;
  ready.set_value(Status::Ok());
  return ready.get_future();
}

Status ParseListen(const std::string& listen, std::string* host, std::uint16_t* port,
                   const char* flag = "--listen") {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status::Invalid(fmt::format("{} '{}' must be HOST:PORT", flag, listen));
  }
  *host = listen.substr(0, colon);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  const std::string port_text = listen.substr(colon + 1);
  char* end = nullptr;
  const long value = std::strtol(port_text.c_str(), &end, 10);
  if (port_text.empty() || *end != '\0' || value < 0 || value > 65535) {
    return Status::Invalid(fmt::format("{} '{}' has no valid port", flag, listen));
  }
  *port = static_cast<std::uint16_t>(value);
  return Status::Ok();
}

/// Replies completed on the store's threads, on their way to the HTTP threads.
/// Waking a thread costs far more than sending a reply, so the replies that come
/// in while one hand-over is pending ride along with it: one post, and one wake,
/// per group (a committed batch answers all its requests at once). Sending from
/// an HTTP thread also lets each reply go out on its connection's strand at once.
class Outbox {
 public:
  using Respond = std::function<void(const restinio::request_handle_t&, Reply&)>;
  Outbox(asio::io_context& io, Respond respond) : io_(io), respond_(std::move(respond)) {}

  void Put(restinio::request_handle_t req, Reply reply) {
    std::lock_guard<std::mutex> lock(mu_);
    waiting_.emplace_back(std::move(req), std::move(reply));
    if (posted_) return;
    posted_ = true;
    asio::post(io_, [this] { Drain(); });
  }

 private:
  void Drain() {
    std::vector<std::pair<restinio::request_handle_t, Reply>> sending;
    {
      std::lock_guard<std::mutex> lock(mu_);
      sending.swap(waiting_);
      posted_ = false;
    }
    for (auto& [req, reply] : sending) respond_(req, reply);
  }

  asio::io_context& io_;
  Respond respond_;
  std::mutex mu_;
  std::vector<std::pair<restinio::request_handle_t, Reply>> waiting_;
  bool posted_ = false;
};

// Every answer: its type is the one it says (nosniff). An API answer may carry
// names, addresses and phone hashes: no-store, errors included, whatever the use
// case set.
constexpr std::string_view kContentTypeOptions = "X-Content-Type-Options";
constexpr std::string_view kCacheControl = "Cache-Control";

bool HasHeader(const Reply& reply, std::string_view name) {
  return std::any_of(reply.headers.begin(), reply.headers.end(),
                     [name](const auto& header) { return header.first == name; });
}

bool IsApiTarget(std::string_view target) {
  return target.rfind("/v1/", 0) == 0 || target == "/v1" || target.rfind("/v1?", 0) == 0;
}

// The HTTP response of a reply: status, content type and body (moved out).
auto ResponseFor(const restinio::request_handle_t& req, Reply& reply) {
  auto response = req->create_response(restinio::http_status_line_t(
      restinio::http_status_code_t(static_cast<std::uint16_t>(reply.status)),
      ReasonPhrase(reply.status)));
  const bool api = IsApiTarget(req->header().request_target());
  for (const auto& [name, value] : reply.headers) {
    if (!(api && name == kCacheControl)) response.append_header(name, value);
  }
  if (!HasHeader(reply, kContentTypeOptions))
    response.append_header(std::string(kContentTypeOptions), "nosniff");
  if (api) response.append_header(std::string(kCacheControl), "no-store");
  if (reply.status == 204) return response;  // no content: no body, no type
  if (reply.raw_content_type.empty()) {
    response.append_header(restinio::http_field::content_type, "application/json; charset=utf-8");
    response.set_body(reply.body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } else {
    response.append_header(restinio::http_field::content_type, reply.raw_content_type);
    response.set_body(std::move(reply.raw_body));
  }
  return response;
}

// The whole answer to a request refused at the edge (edge_socket.h), as the API's
// errors are, with the headers every API answer has.
std::string RefusalAnswer(const EdgeRefusal& refusal) {
  const json body = {{"error", {{"code", refusal.code}, {"message", refusal.message}}}};
  const std::string text = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: "
      "{}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: "
      "close\r\n\r\n{}",
      refusal.status, ReasonPhrase(refusal.status), text.size(), text);
}

}  // namespace

Status Serve(const ServeOptions& options) {
  std::string host;
  std::uint16_t port = 0;
  PINGMA_RETURN_IF_ERROR(ParseListen(options.listen, &host, &port));
  std::string metrics_host;
  std::uint16_t metrics_port = 0;
  if (!options.metrics_listen.empty()) {
    PINGMA_RETURN_IF_ERROR(
        ParseListen(options.metrics_listen, &metrics_host, &metrics_port, "--metrics-listen"));
  }
  jt808::GatewayOptions jt808_options;
  if (!options.jt808_listen.empty()) {
    PINGMA_RETURN_IF_ERROR(ParseListen(options.jt808_listen, &jt808_options.host,
                                       &jt808_options.port, "--jt808-listen"));
    jt808_options.max_connections = static_cast<size_t>(options.jt808_max_terminals);
    // Every terminal holds a socket: the soft open-file limit (often 1,024) is raised
    // to the hard one, and a limit too low for the terminals is said.
    rlimit files{};
    if (getrlimit(RLIMIT_NOFILE, &files) == 0) {
      files.rlim_cur = files.rlim_max;
      setrlimit(RLIMIT_NOFILE, &files);
      getrlimit(RLIMIT_NOFILE, &files);
      // The HTTP side, the store and the gateway's own need a few hundred more.
      constexpr rlim_t kOthers = 512;
      if (files.rlim_cur != RLIM_INFINITY &&
          files.rlim_cur < jt808_options.max_connections + kOthers) {
        std::fprintf(stderr,
                     "pingma-registry: the open-file limit (%llu) holds fewer than "
                     "--jt808-max-terminals %d terminals; raise it (LimitNOFILE= under systemd, "
                     "ulimit -n)\n",
                     static_cast<unsigned long long>(files.rlim_cur), options.jt808_max_terminals);
      }
    }
  }
  std::string public_base = options.public_base;
  while (!public_base.empty() && public_base.back() == '/') public_base.pop_back();
  if ((public_base.rfind("https://", 0) != 0 && public_base.rfind("http://", 0) != 0) ||
      public_base.find_first_of(" \t\r\n?#") != std::string::npos) {
    return Status::Invalid("--public-base must be an http:// or https:// URL, not '" +
                           options.public_base + "'");
  }
  // HTTPS: the pair is checked before anything is opened.
  std::unique_ptr<TlsCertificate> tls;
  if (!options.tls_cert.empty() || !options.tls_key.empty()) {
    auto loaded = TlsCertificate::Load(options.tls_cert, options.tls_key);
    if (!loaded.ok()) return loaded.status();
    tls = std::move(*loaded);
  }
  auto map_tiles = ParseMapTiles(options.map_tiles, options.map_tiles_datum);
  if (!map_tiles.ok()) return map_tiles.status();
  Policy policy = Policy::Defaults();
  if (!options.policy_file.empty()) {
    auto loaded = LoadPolicyFile(options.policy_file);
    if (!loaded.ok()) return loaded.status();
    policy = std::move(*loaded);
  }
  // The secrets before the store: a key file others may read stops the start
  // before anything is opened.
  auto secrets_dir = SecretsDir(options.secrets_dir, options.db_path);
  if (!secrets_dir.ok()) return secrets_dir.status();
  auto secrets = LoadSecrets(secrets_dir->dir);
  if (secrets.ok() && secrets_dir->from_credentials) {
    // systemd hands the credentials over read-only: nothing can be made there.
    for (const auto& [file, present] :
         {std::pair{kCustomerHashKeyFile, !secrets->customer_hash_key.empty()},
          std::pair{kLogSigningKeyFile, !secrets->log_signing_key.empty()}}) {
      if (!present) {
        return Status::Invalid(fmt::format(
            "{} is not among the credentials in $CREDENTIALS_DIRECTORY ({}): under systemd "
            "the keys come from LoadCredential= and cannot be made there; load both files of "
            "the registry's secrets folder (the one serve --secrets-dir DIR makes on its first "
            "start)",
            file, secrets_dir->dir));
      }
    }
  }
  if (!secrets.ok()) return secrets.status();
  SystemClock clock;
  auto store = Store::Open(options.db_path, clock);
  if (!store.ok()) return store.status();
  KeyNotice notice;
  Status settled = AdoptCustomerHashKey(**store, *secrets, &notice);
  if (settled.ok()) settled = EnsureSigningKey(*secrets);
  if (!settled.ok()) {
    (*store)->Close();
    return settled;
  }
  // A moved key is said at once (it is moved whatever follows); a new one once the
  // registry is up, so that a start that fails says one thing, why.
  if (!notice.moved.empty()) std::fprintf(stderr, "pingma-registry: %s\n", notice.moved.c_str());
  Service service(store->get(), std::move(policy), &clock);
  service.set_customer_hash_key(secrets->customer_hash_key);
  service.set_hotline(options.hotline);
  service.set_public_base(std::move(public_base));
  service.set_map_tiles(*map_tiles);
  service.set_log_keys(secrets->log_signing_key, secrets->log_public_key);
  // The log's sequencer: started once the registry listens (a start that fails
  // says one thing, why), stopped before the store closes, on every way out.
  struct StopLog {
    Service& service;
    ~StopLog() { service.StopLog(); }
  } stop_log{service};

  // One full walk of the hash chain in the background, so that GET /v1/audit/head
  // can say honestly whether the chain verified, and when, without walking tens of
  // millions of events per request. It covers the events committed at its start.
  std::atomic<bool> stop_verifier{false};
  service.SetChainCheck({{"state", "running"}, {"started_at", clock.Now().ToString()}});
  std::thread verifier([&service, &clock, &stop_verifier, path = options.db_path] {
    pthread_setname_np(pthread_self(), "pingma-verify");
    const Instant started = clock.Now();
    auto walk = WalkChain(path, &stop_verifier);
    json check = {{"started_at", started.ToString()}, {"finished_at", clock.Now().ToString()}};
    if (walk.ok()) {
      check["state"] = "ok";
      check["length"] = walk->length;
      check["head"] = walk->length > 0 ? json(HexOf(walk->head)) : json(nullptr);
    } else if (walk.status().code() == StatusCode::kCorruption) {
      check["state"] = "broken";
      check["message"] = walk.status().message();
    } else {
      check["state"] = "error";
      check["message"] = walk.status().message();
    }
    if (!stop_verifier.load()) service.SetChainCheck(std::move(check));
  });
  // Joined before the store closes, on every way out of this function.
  struct JoinVerifier {
    std::atomic<bool>& stop;
    std::thread& thread;
    ~JoinVerifier() {
      stop = true;
      if (thread.joinable()) thread.join();
    }
  } join_verifier{stop_verifier, verifier};

  // Personal data past its retention (a reporter's contact, a handover's place,
  // positions and the alerts placed by them),
  // deleted before the first request and every hour after, on the writer like any
  // write.
  auto sweep = [&store, &service] {
    std::int64_t deleted = 0;
    Reply swept = (*store)->Run([&deleted, &service](WriteTx& tx) -> Reply {
      auto n = SweepPersonalData(tx.conn(), tx.now(), service.policy());
      if (!n.ok()) return ErrorReply(n.status());
      deleted = *n;
      return Reply{};
    });
    // Positions a few vehicles a transaction, so that writes go on between.
    for (SweepCursor cursor; !swept.failed() && !cursor.done;) {
      swept = (*store)->Run([&deleted, &service, &cursor](WriteTx& tx) -> Reply {
        auto n = SweepPositions(tx.conn(), tx.now(), service.policy(), &cursor);
        if (!n.ok()) return ErrorReply(n.status());
        deleted += *n;
        return Reply{};
      });
    }
    if (swept.failed()) {
      std::fprintf(stderr,
                   "pingma-registry: cannot delete the personal data past its retention: %s\n",
                   swept.body.dump().c_str());
    } else if (deleted > 0) {
      std::fprintf(stderr,
                   "pingma-registry: deleted %lld item(s) of personal data past their "
                   "retention\n",
                   static_cast<long long>(deleted));
    }
  };
  sweep();
  std::mutex retention_mu;
  std::condition_variable retention_cv;
  bool stop_retention = false;
  std::thread retention([&] {
    pthread_setname_np(pthread_self(), "pingma-retain");
    std::unique_lock<std::mutex> lock(retention_mu);
    while (!retention_cv.wait_for(lock, std::chrono::hours(1), [&] { return stop_retention; })) {
      lock.unlock();
      sweep();
      lock.lock();
    }
  });
  struct JoinRetention {
    std::mutex& mu;
    std::condition_variable& cv;
    bool& stop;
    std::thread& thread;
    ~JoinRetention() {
      {
        std::lock_guard<std::mutex> lock(mu);
        stop = true;
      }
      cv.notify_all();
      if (thread.joinable()) thread.join();
    }
  } join_retention{retention_mu, retention_cv, stop_retention, retention};

  // In-vehicle terminals (JT/T 808), on a thread of their own, stopped before the
  // store closes (the gateway's destructor).
  std::optional<jt808::Gateway> gateway;
  if (!options.jt808_listen.empty()) {
    gateway.emplace(service.terminals(), jt808_options);
    if (Status started = gateway->Start(); !started.ok()) {
      gateway.reset();
      service.StopLog();
      (*store)->Close();
      return started;
    }
    const bool v6 = jt808_options.host.find(':') != std::string::npos;
    std::printf("jt808 on %s%s%s:%u\n", v6 ? "[" : "", jt808_options.host.c_str(), v6 ? "]" : "",
                static_cast<unsigned>(gateway->port()));
    std::fflush(stdout);
  }

  const unsigned threads = options.threads > 0 ? static_cast<unsigned>(options.threads)
                                               : std::max(2u, std::thread::hardware_concurrency());
  std::atomic<int> in_flight{0};
  asio::io_context io;
  // Every connection's limits, checked before a body is read (edge_socket.h).
  EdgeLimits& edge = asio::use_service<EdgeLimits>(io);
  edge.small_body = kMaxPublicBody;
  edge.body_limit = [&service](const RequestHead& head) -> std::uint64_t {
    return service.BodyLimit(head.method, head.target, head.authorization, head.client);
  };
  edge.answer = RefusalAnswer;
  edge.tls = tls.get();

  // Sends a reply. Runs on an HTTP thread: the store's threads, which complete
  // writes, only hand their replies over and go on. The request stays in flight
  // until its response has been written out (or its connection is gone), so that
  // shutdown does not cut a long answer short.
  auto respond = [&in_flight](const restinio::request_handle_t& req, Reply& reply) {
    auto response = ResponseFor(req, reply);
    // RESTinio calls the callback once the write is done or has failed, and drops
    // it uncalled when the connection is already closed: either way it is destroyed.
    std::shared_ptr<void> written(nullptr, [&in_flight](void*) { --in_flight; });
    response.done([written = std::move(written)](const asio::error_code&) {});
  };
  Outbox outbox(io, respond);

  // Set on SIGTERM/SIGINT: requests that arrive from then on are refused (503, and
  // the connection closed), so that those in flight can finish.
  std::atomic<bool> draining{false};

  auto handler = [&service, &in_flight, &draining, &outbox,
                  respond](restinio::request_handle_t req) {
    if (draining.load()) {
      Reply reply = ErrorReply(Status::Unavailable("the registry is shutting down; try again"));
      ResponseFor(req, reply).connection_close().done();
      return restinio::request_accepted();
    }
    Request r;
    r.method = req->header().method().c_str();
    r.target = req->header().request_target();
    if (auto auth = req->header().opt_value_of(restinio::http_field::authorization)) {
      r.authorization = std::string(*auth);
    }
    // The body is RESTinio's, read once; it is moved, not copied (RESTinio has
    // no use for it after this handler, and a batch is up to 64 MiB).
    r.body = std::move(const_cast<std::string&>(req->body()));
    if (auto type = req->header().opt_value_of(restinio::http_field::content_type)) {
      r.content_type = std::string(*type);
    }
    // The peer itself: behind a reverse proxy that is the proxy, and a forwarded
    // header is not trusted, since anyone can send one.
    r.client = req->remote_endpoint().address().to_string();
    ++in_flight;
    const std::thread::id here = std::this_thread::get_id();
    service.Handle(std::move(r), [req, &outbox, respond, here](Reply reply) {
      // Answered at once (bad input, reads): send it from this HTTP thread.
      // Completed by the store's threads: hand it to the outbox.
      if (std::this_thread::get_id() == here) return respond(req, reply);
      outbox.Put(req, std::move(reply));
    });
    return restinio::request_accepted();
  };

  std::uint16_t bound_port = port;
  std::optional<restinio::http_server_t<Traits>> server;
  try {
    server.emplace(restinio::external_io_context(io),
                   restinio::server_settings_t<Traits>{}
                       .address(host)
                       .port(port)
                       .request_handler(handler)
                       // Each route's limit is enforced before the body is read (EdgeSocket,
                       // Service::BodyLimit); this is RESTinio's own backstop.
                       .incoming_http_msg_limits(
                           restinio::incoming_http_msg_limits_t{}.max_body_size(kMaxBatchBody))
                       // A whole request, head and body, within 60 s of the time
                       // the connection began to wait for it (an idle keep-alive
                       // connection closes then too); a head within 10 s of its
                       // first byte (EdgeLimits::head_time). 64 MiB in 60 s needs
                       // 1.1 MB/s.
                       .read_next_http_message_timelimit(std::chrono::seconds(60))
                       .handle_request_timeout(std::chrono::seconds(120))
                       .write_http_response_timelimit(std::chrono::seconds(60))
                       .acceptor_post_bind_hook([&bound_port](asio::ip::tcp::acceptor& acceptor) {
                         bound_port = acceptor.local_endpoint().port();
                       }));
  } catch (const std::exception& e) {
    return Status::Unavailable(fmt::format("cannot set up the HTTP server: {}", e.what()));
  }

  // The metrics, on a listener of their own (a site keeps it off the public network).
  std::optional<Metrics> metrics;
  std::optional<restinio::http_server_t<MetricsTraits>> metrics_server;
  if (!options.metrics_listen.empty()) {
    const bool postgres = pg::IsConnectionString(options.db_path);
    metrics.emplace(Version(), Commit(), postgres);
    metrics->set_in_flight(&in_flight);
    metrics->set_tls(tls.get());
    service.set_metrics(&*metrics);
    auto scrape = [&metrics, &store, postgres](restinio::request_handle_t req) {
      const std::string target(req->header().request_target());
      if (target != "/metrics" && target.rfind("/metrics?", 0) != 0) {
        req->create_response(restinio::status_not_found())
            .append_header(restinio::http_field::content_type, "text/plain; charset=utf-8")
            .set_body("metrics are at /metrics\n")
            .done();
        return restinio::request_accepted();
      }
      if (req->header().method() != restinio::http_method_get() &&
          req->header().method() != restinio::http_method_head()) {
        req->create_response(restinio::status_method_not_allowed())
            .append_header(restinio::http_field::allow, "GET, HEAD")
            .done();
        return restinio::request_accepted();
      }
      auto figures = (*store)->Read([postgres](Conn& conn) -> Result<StoreFigures> {
        auto st = conn.Prepare(
            postgres ? "SELECT pg_database_size(current_database()), "
                       "(SELECT MAX(tree_size) FROM log_heads)"
                     : "SELECT (SELECT page_count * page_size FROM pragma_page_count(), "
                       "pragma_page_size()), (SELECT MAX(tree_size) FROM log_heads)");
        if (!st.ok()) return st.status();
        auto row = (*st)->Step();
        if (!row.ok()) return row.status();
        StoreFigures f;
        if (*row && !(*st)->IsNull(0)) f.bytes = (*st)->Int(0);
        if (*row && !(*st)->IsNull(1)) f.tree_size = (*st)->Int(1);
        return f;
      });
      // A store that cannot be read still has its counters to show.
      req->create_response()
          .append_header(restinio::http_field::content_type, prometheus::kContentType)
          .set_body(metrics->Text((*store)->stats(), figures.ok() ? *figures : StoreFigures{}))
          .done();
      return restinio::request_accepted();
    };
    try {
      metrics_server.emplace(
          restinio::external_io_context(io),
          restinio::server_settings_t<MetricsTraits>{}
              .address(metrics_host)
              .port(metrics_port)
              .request_handler(scrape)
              // A scrape is a GET: nothing to read beyond its head.
              .incoming_http_msg_limits(restinio::incoming_http_msg_limits_t{}.max_body_size(0))
              .read_next_http_message_timelimit(std::chrono::seconds(60))
              .acceptor_post_bind_hook([&metrics_port](asio::ip::tcp::acceptor& acceptor) {
                metrics_port = acceptor.local_endpoint().port();
              }));
    } catch (const std::exception& e) {
      return Status::Unavailable(fmt::format("cannot set up the metrics listener: {}", e.what()));
    }
  }

  std::future<Status> metrics_opened_future =
      metrics_server ? Open(*metrics_server, "cannot listen for metrics (--metrics-listen)")
                     : ReadyStatus();
  std::future<Status> opened_future = Open(*server, "cannot listen");

  // SIGTERM/SIGINT: stop accepting, let in-flight requests finish, then stop. From
  // the first signal on, the way out is set: a second one (a supervisor that repeats
  // itself) must not kill the process before it has closed the store and exited 0.
  // Asio's handler stays installed, and so absorbs it, until `signals` goes at the
  // very end (see there).
  std::optional<asio::signal_set> signals(std::in_place, io, SIGINT, SIGTERM);
  std::thread stopper;
  signals->async_wait([&](const asio::error_code& ec, int) {
    if (ec) return;
    draining = true;
    stopper = std::thread([&] {
      // A large batch takes seconds; the limit is for clients that stop reading.
      constexpr auto kDrainLimit = std::chrono::seconds(60);
      const auto deadline = std::chrono::steady_clock::now() + kDrainLimit;
      if (const int n = in_flight.load(); n > 0) {
        std::fprintf(stderr, "pingma-registry: stopping; finishing %d request(s) in flight\n", n);
      }
      while (in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      if (const int n = in_flight.load(); n > 0) {
        std::fprintf(stderr,
                     "pingma-registry: %d answer(s) still unsent after %lld s; closing their "
                     "connections\n",
                     n, static_cast<long long>(kDrainLimit.count()));
      }
      if (metrics_server) {
        std::promise<void> closed;
        metrics_server->close_async([&closed] { closed.set_value(); },
                                    [&closed](std::exception_ptr) { closed.set_value(); });
        closed.get_future().wait();
      }
      server->close_async([&io] { io.stop(); }, [&io](std::exception_ptr) { io.stop(); });
    });
  });

  // SIGHUP: the certificate and key are read again; connections accepted from then
  // on get the new pair, those open keep theirs, and the listener stays as it is.
  // The rest of the settings take a restart.
  asio::signal_set reload(io, SIGHUP);
  std::function<void(const asio::error_code&, int)> on_reload = [&](const asio::error_code& ec,
                                                                    int) {
    if (ec) return;
    if (!tls) {
      std::fprintf(stderr,
                   "pingma-registry: SIGHUP: nothing to read again (no --tls-cert); other "
                   "settings take a restart\n");
    } else if (Status reloaded = tls->Reload(); reloaded.ok()) {
      const TlsCertificate::Facts facts = tls->facts();
      std::fprintf(stderr,
                   "pingma-registry: SIGHUP: certificate %s read again (%s, valid until %s); "
                   "new connections get it\n",
                   options.tls_cert.c_str(), facts.subject.c_str(), facts.not_after.c_str());
    } else {
      std::fprintf(stderr,
                   "pingma-registry: SIGHUP: %s; the certificate loaded before stays in "
                   "use\n",
                   reloaded.message().c_str());
    }
    reload.async_wait(on_reload);
  };
  reload.async_wait(on_reload);

  std::vector<std::thread> pool;
  for (unsigned i = 0; i < threads; ++i) {
    pool.emplace_back([&io] {
      pthread_setname_np(pthread_self(), "pingma-http");
      io.run();
    });
  }
  Status open_status = metrics_opened_future.get();
  if (Status main_open = opened_future.get(); open_status.ok()) open_status = main_open;
  if (open_status.ok() && metrics_server) {
    const bool v6 = metrics_host.find(':') != std::string::npos;
    std::printf("metrics on http://%s%s%s:%u/metrics\n", v6 ? "[" : "", metrics_host.c_str(),
                v6 ? "]" : "", static_cast<unsigned>(metrics_port));
  }
  if (open_status.ok()) {
    // An IPv6 address is bracketed, as in a URL.
    const bool v6 = host.find(':') != std::string::npos;
    std::printf("listening on %s://%s%s%s:%u\n", tls ? "https" : "http", v6 ? "[" : "",
                host.c_str(), v6 ? "]" : "", static_cast<unsigned>(bound_port));
    std::fflush(stdout);
    if (tls) {
      const TlsCertificate::Facts facts = tls->facts();
      std::fprintf(stderr, "pingma-registry: HTTPS with %s, valid until %s\n",
                   facts.subject.c_str(), facts.not_after.c_str());
      if (facts.not_after_unix < std::chrono::duration_cast<std::chrono::seconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count()) {
        std::fprintf(stderr,
                     "pingma-registry: the certificate in %s has expired: clients will refuse "
                     "it; replace it and send SIGHUP\n",
                     options.tls_cert.c_str());
      }
    }
    if (!notice.made.empty()) std::fprintf(stderr, "pingma-registry: %s\n", notice.made.c_str());
    service.StartLog();
  } else {
    io.stop();
  }
  for (auto& t : pool) t.join();
  if (stopper.joinable()) stopper.join();
  // The chain walk stops within 65,536 events; it is joined here, while `signals`
  // still holds SIGINT and SIGTERM, so that a second signal during the walk's last
  // stretch is absorbed rather than killing the process before it closes the store.
  stop_verifier = true;
  if (verifier.joinable()) verifier.join();
  {
    std::lock_guard<std::mutex> lock(retention_mu);
    stop_retention = true;
  }
  retention_cv.notify_all();
  if (retention.joinable()) retention.join();
  gateway.reset();
  service.StopLog();  // its round in progress commits, or fails, before the store closes
  (*store)->Close();
  // Asio gives the signals back to their default action when `signals` goes: they
  // are blocked first and ignored after, so that none kills the exit (this is the
  // one thread left).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signals.reset();
  std::signal(SIGINT, SIG_IGN);
  std::signal(SIGTERM, SIG_IGN);
  std::signal(SIGHUP, SIG_IGN);
  if (!open_status.ok()) return open_status;  // the caller prints the one error line
  const Store::Stats& stats = (*store)->stats();
  if (pg::IsConnectionString(options.db_path)) {
    std::fprintf(stderr,
                 "pingma-registry: stopped; %zu writes in %zu commits (up to %zu at once) on "
                 "PostgreSQL\n",
                 stats.jobs.load(), stats.batches.load(), stats.max_batch.load());
    return open_status;
  }
  std::fprintf(stderr,
               "pingma-registry: stopped; %zu writes in %zu commits (up to %zu at once), made "
               "durable by %zu fdatasyncs of %.2f ms on average; %zu WAL checkpoints (%zu on "
               "the writer)\n",
               stats.jobs.load(), stats.batches.load(), stats.max_batch.load(), stats.syncs.load(),
               stats.syncs ? static_cast<double>(stats.sync_us.load()) / 1000.0 /
                                 static_cast<double>(stats.syncs.load())
                           : 0.0,
               stats.checkpoints.load(), stats.writer_checkpoints.load());
  return open_status;
}

namespace {

Result<Policy> TokenPolicy(const std::string& policy_file) {
  if (policy_file.empty()) return Policy::Defaults();
  return LoadPolicyFile(policy_file);
}

// An instant as a person in the policy's zone reads it: "2026-12-07 08:15".
std::string LocalTime(const std::optional<Instant>& at, int utc_offset_minutes) {
  if (!at) return "-";
  const std::string shifted =
      Instant{at->unix_ms + std::int64_t{utc_offset_minutes} * 60 * 1000}.ToString();
  return shifted.substr(0, 10) + " " + shifted.substr(11, 5);
}

}  // namespace

Result<AddedToken> AddToken(const std::string& db_path, const TokenRequest& request) {
  auto role = ParseRole(request.role);
  if (!role.ok()) return role.status();
  TokenTerms terms{*role, request.subject, std::nullopt, request.note};
  if (!request.expires.empty()) {
    auto day = Date::Parse(request.expires);
    if (!day.ok()) return Status::Invalid(fmt::format("--expires: {}", day.status().message()));
    terms.expires = *day;
  }
  auto policy = TokenPolicy(request.policy_file);
  if (!policy.ok()) return policy.status();
  SystemClock clock;
  auto store = Store::Open(db_path, clock);
  if (!store.ok()) return store.status();
  Result<IssuedToken> issued = Status::Internal("not issued");
  {
    BearerTokens tokens(store->get(), &clock, policy->utc_offset_minutes);
    issued = tokens.IssueNow(terms);
  }
  (*store)->Close();
  if (!issued.ok()) return issued.status();
  return AddedToken{issued->id, issued->secret,
                    issued->expires_at ? issued->expires_at->ToString() : std::string()};
}

Result<std::string> ListTokens(const std::string& db_path, const std::string& policy_file,
                               bool as_json) {
  auto policy = TokenPolicy(policy_file);
  if (!policy.ok()) return policy.status();
  SystemClock clock;
  auto store = Store::Open(db_path, clock);
  if (!store.ok()) return store.status();
  Result<std::vector<TokenRecord>> list = Status::Internal("not read");
  {
    BearerTokens tokens(store->get(), &clock, policy->utc_offset_minutes);
    list = (*store)->Read([&](Conn& conn) {
      return tokens.List(conn, Principal{Role::kAdmin, "cli"});
    });
  }
  (*store)->Close();
  if (!list.ok()) return list.status();
  const Instant now = clock.Now();
  if (as_json) {
    json out = json::array();
    for (const TokenRecord& t : *list) out.push_back(TokenJson(t, now));
    return json{{"tokens", std::move(out)}}.dump(2);
  }
  const int offset = policy->utc_offset_minutes;
  std::vector<std::vector<std::string>> rows = {
      {"ID", "ROLE", "SUBJECT", "STATE", "CREATED", "EXPIRES", "LAST USED", "REVOKED", "NOTE"}};
  for (const TokenRecord& t : *list) {
    rows.push_back(
        {t.id, t.role, t.subject, ToString(JudgeToken(t.expires_at, t.revoked.has_value(), now)),
         LocalTime(t.created, offset), t.expires ? t.expires->ToString() : std::string("never"),
         LocalTime(t.last_used, offset), LocalTime(t.revoked, offset),
         t.note.empty() ? std::string("-") : t.note});
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string text = fmt::format(
      "{} token(s); times in UTC{:+03d}:{:02d}; a token works to the end of its "
      "EXPIRES day\n",
      list->size(), offset / 60, std::abs(offset % 60));
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      // The note, last, is not padded: its characters need not be one column each.
      line += i + 1 < row.size() ? fmt::format("{:<{}}  ", row[i], width[i]) : row[i];
    }
    text += line + "\n";
  }
  text.pop_back();
  return text;
}

Result<std::string> RevokeToken(const std::string& db_path, const std::string& id) {
  SystemClock clock;
  auto store = Store::Open(db_path, clock);
  if (!store.ok()) return store.status();
  bool already = false;
  Status revoked;
  {
    BearerTokens tokens(store->get(), &clock, Policy::Defaults().utc_offset_minutes);
    revoked = tokens.RevokeNow(id, &already);
  }
  (*store)->Close();
  if (!revoked.ok()) return revoked;
  if (already) return fmt::format("token {} was already revoked", id);
  return fmt::format("token {} revoked: every registry on this database refuses it within 1 s", id);
}

Result<std::string> Verify(const std::string& db_path) {
  return VerifyChain(db_path);
}

}  // namespace pingma::registry
