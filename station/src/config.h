// The station's configuration file (TOML; API.md "Station agent").
//
// Plain values; parsing does no I/O but reading the file and the token file.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "pingma/common/status.h"
#include "pingma/scanner/source.h"
#include "scale.h"

namespace pingma::station {

struct PositionConfig {
  std::string id;
  std::string operator_id;
  std::string scale_id;  ///< recorded with each fill; default the position id
  SourceConfig scanner;
  ScaleEndpoint scale;
  ScaleProfile profile;  ///< `scale.profile`: a builtin name or a TOML file
};

struct StationConfig {
  std::string id;
  std::string registry;  ///< base URL
  std::string token;     ///< read from token_file
  std::string ca_file;
  std::string data_dir;
  std::string status_listen = "127.0.0.1:0";
  std::chrono::milliseconds check_deadline{1500};
  std::chrono::seconds sync_interval{60};
  std::vector<PositionConfig> positions;
  std::string text;  ///< the file as LoadStationConfig read it
};

/// Parses the TOML text; relative paths (token_file, data_dir, ca_file, image-dir
/// folders, profile files) are taken from `base_dir`. Unknown keys are errors, and
/// every message names the key (`position[2].scale.port`).
Result<StationConfig> ParseStationConfig(std::string_view toml_text, const std::string& base_dir);
Result<StationConfig> LoadStationConfig(const std::string& path);

/// The keys a running station takes again on SIGHUP: the registry token (its file's
/// contents), the CA file and the check deadline.
inline constexpr const char* kReloadableKeys[] = {"token_file", "ca_file", "check_deadline_ms"};

/// What changed between two texts of the config (both already parsed well) that
/// only a restart puts in use: "station.KEY" for a key of [station] other than the
/// reloadable ones, "position" for the positions.
std::vector<std::string> ChangesTakingARestart(std::string_view before, std::string_view after);

}  // namespace pingma::station
