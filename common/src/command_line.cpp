#include "pingma/common/command_line.h"

#include <cstdio>

#include <CLI/CLI.hpp>

#include "pingma/common/version.h"

namespace pingma {

std::optional<int> ParseCommandLine(CLI::App& app, const std::string& program, int argc,
                                    char** argv) {
  app.set_version_flag("--version", VersionLine(program),
                       "print the version and commit, then exit");
  try {
    app.parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::Success& e) {  // --help, --help-all, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: %s (see --help)\n", program.c_str(), e.what());
    return 2;
  }
}

}  // namespace pingma
