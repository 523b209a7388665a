// What the HTTP benchmark's baselines share: the registry's RESTinio set-up
// (thread pool, external io_context) and the fixed JSON they answer with.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <restinio/all.hpp>

namespace pingma::bench {

// About the size of a fill-check answer, so that the baselines and the registry
// send the same bytes per request.
inline constexpr const char* kFixedAnswer =
    R"({"check_id":"chk_000000000000000000000000","decision":"allow","reasons":[],)"
    R"("cylinder":{"code":"BM00000000","model":"YSP35.5","owner_company_id":"CO-A",)"
    R"("next_inspection_due":"2027-01-31","state":"active"},)"
    R"("fill":{"tare_kg":16.4,"min_kg":14.1,"max_kg":14.9,"target_kg":14.5},)"
    R"("flagged_for_scrap":false})";

// Answers `req` with kFixedAnswer; callable from any thread.
inline void AnswerFixed(const restinio::request_handle_t& req) {
  req->create_response()
      .append_header(restinio::http_field::content_type, "application/json; charset=utf-8")
      .set_body(kFixedAnswer)
      .done();
}

// Serves `handler` on host:port with `threads` threads running `io`, prints
// "listening on http://HOST:PORT" (the port bound when 0 was asked) and returns
// once SIGINT or SIGTERM has stopped `io`.
template <typename Handler>
void Serve(asio::io_context& io, const std::string& host, std::uint16_t port, unsigned threads,
           Handler handler) {
  std::uint16_t bound = port;
  using Traits = restinio::default_traits_t;
  restinio::http_server_t<Traits> server(
      restinio::external_io_context(io),
      restinio::server_settings_t<Traits>{}
          .address(host)
          .port(port)
          .request_handler(std::move(handler))
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
}

}  // namespace pingma::bench
