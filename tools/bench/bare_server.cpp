// pingma-bench-bare: the baseline of the HTTP benchmark. The same RESTinio set-up
// as pingma-registry (thread pool, external io_context), answering every request
// with a fixed JSON body of about the size of a fill-check answer.
#include <algorithm>
#include <cstdio>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <restinio/all.hpp>

#include "baseline_server.h"

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

  asio::io_context io;
  pingma::bench::Serve(io, host, port, threads, [](restinio::request_handle_t req) {
    pingma::bench::AnswerFixed(req);
    return restinio::request_accepted();
  });
  return 0;
}
