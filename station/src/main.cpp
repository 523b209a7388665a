// pingma-station: the filling-station agent.
#include <cstdio>

#include <CLI/CLI.hpp>

#include "pingma/station/station.h"

int main(int argc, char** argv) {
  CLI::App app{
      "pingma-station: the filling-station agent (充装站终端) — scans each cylinder, asks the "
      "registry (or its offline replica), and opens the scale's valve only for an allowed fill"};
  std::string config;
  app.add_option("--config", config, "the station's TOML file (see README, 'Running a station')")
      ->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "pingma-station: %s (see --help)\n", e.what());
    return 2;
  }
  const pingma::Status s = pingma::station::RunStation(config);
  if (s.ok()) return 0;
  std::fprintf(stderr, "pingma-station: %s\n", s.message().c_str());
  return s.code() == pingma::StatusCode::kInvalid ? 2 : 1;
}
