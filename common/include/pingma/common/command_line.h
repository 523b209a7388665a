// Every program's command line ends the same way: --help and --version on stdout
// with status 0, bad usage as one line on stderr with status 2 (API.md, "Programs").
#pragma once

#include <optional>
#include <string>

namespace CLI {
class App;
}

namespace pingma {

/// Adds --version to `app` (VersionLine(program)) and parses argv into it. Returns the
/// exit status when the program is done already: 0 after --help or --version, 2 after
/// bad usage, with "PROGRAM: what was wrong (see --help)" on stderr; nullopt when the
/// program goes on with what was parsed.
std::optional<int> ParseCommandLine(CLI::App& app, const std::string& program, int argc,
                                    char** argv);

}  // namespace pingma
