// pingma-bench-jt808-floor: the JT/T 808 gateway with nothing behind it, the floor of
// the jt808 benchmark. Every terminal registers (code "floor") and authenticates,
// and every position is acknowledged at once without being stored: what the
// terminals, TCP and the gateway cost before the registry stores anything. Prints
// "jt808 on HOST:PORT" when ready; stops on SIGINT or SIGTERM.
#include <csignal>
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "jt808/gateway.h"

namespace {

using pingma::registry::jt808::Authentication;
using pingma::registry::jt808::Location;
using pingma::registry::jt808::Registration;
using pingma::registry::jt808::RegistrationResult;

class NothingBehind final : public pingma::registry::jt808::TerminalDirectory {
 public:
  void Register(const Registration&, RegisterDone done) override {
    done(RegistrationResult::kOk, "floor");
  }
  void Authenticate(const Authentication&, AuthenticateDone done) override { done(true); }
  void StorePositions(const std::string&, std::vector<Location>, StoreDone done) override {
    done(true);
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pingma-bench-jt808-floor: the JT/T 808 gateway storing nothing (a floor)"};
  pingma::registry::jt808::GatewayOptions options;
  options.max_connections = 4096;
  app.add_option("--host", options.host, "address to listen on")->capture_default_str();
  app.add_option("--port", options.port, "port; 0 picks one")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);  // the gateway's thread inherits it
  NothingBehind directory;
  pingma::registry::jt808::Gateway gateway(directory, options);
  if (auto started = gateway.Start(); !started.ok()) {
    std::fprintf(stderr, "pingma-bench-jt808-floor: %s\n", started.message().c_str());
    return 1;
  }
  std::printf("jt808 on %s:%u\n", options.host.c_str(), static_cast<unsigned>(gateway.port()));
  std::fflush(stdout);
  int signal = 0;
  sigwait(&stop, &signal);
  gateway.Stop();
  return 0;
}
