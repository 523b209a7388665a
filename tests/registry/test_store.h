// What the registry's unit tests share: a fixed clock, a fresh database file,
// and a store opened on one.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>

#include <atomic>
#include <future>
#include <memory>
#include <string>

#include "pingma/common/domain.h"
#include "store/store.h"

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

/// A test fixture: a Store opened on a fresh database, closed (if the test has
/// not closed it) before the database is removed.
struct StoreOnTempDb {
  StoreOnTempDb() {
    auto opened = SqliteStore::Open(tmp.path, clock);
    REQUIRE(opened.ok());
    store = std::move(*opened);
  }
  TempDb tmp;
  FixedClock clock;
  std::unique_ptr<SqliteStore> store;
};

/// Holds the store's syncers before their next fdatasync, until Release (or the
/// end of the test): what is committed then is not yet durable.
class HeldSync {
 public:
  explicit HeldSync(SqliteStore& store) : state_(std::make_shared<State>()) {
    state_->open = state_->gate.get_future().share();
    store.set_before_sync_for_test([state = state_] {
      if (state->held.exchange(true)) return;
      state->entered.set_value();
      state->open.wait();
    });
  }
  ~HeldSync() { Release(); }
  HeldSync(const HeldSync&) = delete;
  HeldSync& operator=(const HeldSync&) = delete;
  /// Returns once a syncer is held: a commit is done and its fdatasync not begun.
  void WaitUntilHeld() { state_->entered.get_future().wait(); }
  void Release() {
    if (!state_->released.exchange(true)) state_->gate.set_value();
  }

 private:
  struct State {
    std::promise<void> entered;
    std::promise<void> gate;
    std::shared_future<void> open;
    std::atomic<bool> held{false};
    std::atomic<bool> released{false};
  };
  std::shared_ptr<State> state_;
};

}  // namespace pingma::registry
