// Every program's command line ends the same way: --help and --version on stdout
// with status 0, bad usage as one line on stderr with status 2 (API.md, "Programs").
#pragma once

#include <optional>
#include <string>

namespace CLI {
class App;
}

namespace pingma {

/// Lets `command` take its options from a TOML file, `--config FILE`: each key at the
/// file's top level is an option's long name with '_' for '-' (secrets_dir is
/// --secrets-dir); what the command line gives wins over the file; a key that names
/// no option is bad usage that names it (ParseCommandLine reports it).
void AddConfigFile(CLI::App& command, const std::string& help);

/// Adds --version to `app` (VersionLine(program)) and parses argv into it. Returns the
/// exit status when the program is done already: 0 after --help or --version, 2 after
/// bad usage, with "PROGRAM: what was wrong (see --help)" on stderr (a config file's
/// syntax error or unknown key too); nullopt when the program goes on with what was
/// parsed.
std::optional<int> ParseCommandLine(CLI::App& app, const std::string& program, int argc,
                                    char** argv);

}  // namespace pingma
