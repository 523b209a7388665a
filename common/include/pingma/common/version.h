// What a build is: the release and the commit, for every program's --version.
#pragma once

#include <string>

namespace pingma {

/// The release, CMake's project version: "0.1.0".
const char* Version();

/// The commit built: git's 12-digit short hash, "-dirty" after it when tracked files
/// had changes, $PINGMA_COMMIT when the build set it, "unknown" outside git.
const char* Commit();

/// What `--version` prints: "pingma-registry 0.1.0 (commit 3d66313a1b2c)".
std::string VersionLine(const std::string& program);

}  // namespace pingma
