// pingma-bench-bare: the baseline of the HTTP benchmark. The same RESTinio set-up
// as pingma-registry (thread pool, external io_context), answering every request
// with a fixed JSON body of about the size of a fill-check answer.
#include <algorithm>
#include <cstdio>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <restinio/all.hpp>

#include "fixed_answer.h"

int main(int argc, char** argv) {
  CLI::App app{
      "pingma-bench-bare: a bare RESTinio handler returning fixed JSON (benchmark baseline)"};
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  // The registry's default (serve --threads): one per core, at least two.
  unsigned threads = std::max(2u, std::thread::hardware_concurrency());
  app.add_option("--host", host, "address to listen on")->capture_default_str();
  app.add_option("--port", port, "port; 0 picks one")->capture_default_str();
  app.add_option("--threads", threads, "worker threads")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  static const std::string kBody = pingma::bench::kFixedAnswer;
  asio::io_context io;
  std::uint16_t bound = port;
  using Traits = restinio::default_traits_t;
  restinio::http_server_t<Traits> server(
      restinio::external_io_context(io),
      restinio::server_settings_t<Traits>{}
          .address(host)
          .port(port)
          .request_handler([](restinio::request_handle_t req) {
            req->create_response()
                .append_header(restinio::http_field::content_type,
                               "application/json; charset=utf-8")
                .set_body(kBody)
                .done();
            return restinio::request_accepted();
          })
          .acceptor_post_bind_hook(
              [&bound](asio::ip::tcp::acceptor& a) { bound = a.local_endpoint().port(); }));
  server.open_sync();
  std::printf("listening on http://%s:%u\n", host.c_str(), static_cast<unsigned>(bound));
  std::fflush(stdout);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const asio::error_code&, int) { io.stop(); });
  std::vector<std::thread> pool;
  for (unsigned i = 0; i < threads; ++i) pool.emplace_back([&io] { io.run(); });
  for (auto& t : pool) t.join();
  return 0;
}
