// pingma-station: the filling-station agent.
#include <cstdio>

#include <CLI/CLI.hpp>

#include "pingma/common/command_line.h"
#include "pingma/station/station.h"

int main(int argc, char** argv) {
  CLI::App app{
      "pingma-station: the filling-station agent (充装站终端) — scans each cylinder, asks the "
      "registry (or its offline replica), and opens the scale's valve only for an allowed fill"};
  std::string config;
  app.add_option("--config", config, "the station's TOML file (see README, 'Running a station')")
      ->required();
  if (auto done = pingma::ParseCommandLine(app, "pingma-station", argc, argv)) return *done;
  const pingma::Status s = pingma::station::RunStation(config);
  if (s.ok()) return 0;
  std::fprintf(stderr, "pingma-station: %s\n", s.message().c_str());
  return s.code() == pingma::StatusCode::kInvalid ? 2 : 1;
}
