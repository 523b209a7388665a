// What the registry's unit tests share: a fixed clock and a fresh database file.
#pragma once

#include <stdlib.h>

#include <string>

#include "pingma/common/domain.h"

namespace pingma::registry {

class FixedClock final : public Clock {
 public:
  Instant Now() const override { return Instant{1767225600000}; }  // 2026-01-01T00:00:00Z
};

/// A fresh directory per test case, removed afterwards; `path` is a database in it.
struct TempDb {
  TempDb() {
    char dir_template[] = "/tmp/pingma-registry-test-XXXXXX";
    dir = mkdtemp(dir_template);
    path = dir + "/registry.db";
  }
  ~TempDb() { (void)system(("rm -rf '" + dir + "'").c_str()); }
  TempDb(const TempDb&) = delete;
  TempDb& operator=(const TempDb&) = delete;
  std::string dir;
  std::string path;
};

}  // namespace pingma::registry
