// pingma-station: the filling-station agent (API.md "Station agent").
//
// RunStation owns everything it starts (scanner sources, scale connections, the
// registry clients, the journal and replica under data_dir, the status server) and
// stops it all before it returns.
#pragma once

#include <atomic>
#include <string>

#include "pingma/common/status.h"

namespace pingma::station {

/// Loads the TOML config at `config_path`, starts every filling position, prints
/// `ready` and then one JSON line per event on stdout (operator lines in Chinese
/// and English on stderr), and runs until SIGINT or SIGTERM. Errors at start name
/// what could not be opened; kInvalid for a bad config.
Status RunStation(const std::string& config_path);

}  // namespace pingma::station
