#include "pingma/common/version.h"

namespace pingma {

std::string VersionLine(const std::string& program) {
  return program + " " + Version() + " (commit " + Commit() + ")";
}

}  // namespace pingma
