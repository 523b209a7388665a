// Positions past their retention: deleted on the day it ends (not the day before),
// a hundred vehicles a transaction, then the latest positions and the alerts.
#include <doctest/doctest.h>

#include <string>

#include <fmt/format.h>

#include "cases/supervision.h"
#include "test_store.h"

namespace pingma::registry {
namespace {

constexpr std::int64_t kDayMs = 24LL * 60 * 60 * 1000;
constexpr int kVehicles = 250;  // two full steps of the sweep and a part

void Exec(Store& store, const std::string& sql) {
  Reply r = store.Run([&](WriteTx& tx) -> Reply {
    Status s = tx.conn().db().Exec(sql);
    return s.ok() ? Reply{} : ErrorReply(s);
  });
  REQUIRE_FALSE(r.failed());
}

std::int64_t Count(Store& store, const std::string& table) {
  auto n = store.Read([&](Conn& conn) -> Result<std::int64_t> {
    PINGMA_ASSIGN_OR_RETURN(auto st, conn.Prepare("SELECT count(*) FROM " + table));
    PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
    REQUIRE(row);
    return st->Int(0);
  });
  REQUIRE(n.ok());
  return *n;
}

/// The sweep at `at_ms`, step by step: the rows it deleted and its steps.
std::pair<std::int64_t, int> Sweep(Store& store, std::int64_t at_ms) {
  const Policy policy = Policy::Defaults();  // positions kept 183 days
  std::int64_t deleted = 0;
  int steps = 0;
  for (SweepCursor cursor; !cursor.done; ++steps) {
    Reply r = store.Run([&](WriteTx& tx) -> Reply {
      auto n = SweepPositions(tx.conn(), Instant{at_ms}, policy, &cursor);
      if (!n.ok()) return ErrorReply(n.status());
      deleted += *n;
      return Reply{};
    });
    REQUIRE_FALSE(r.failed());
    REQUIRE(steps < 10);
  }
  return {deleted, steps};
}

TEST_CASE_FIXTURE(StoreOnTempDb, "positions go on the day their retention ends, in steps") {
  const std::int64_t t0 = 1'780'000'000'000;
  Exec(*store, "INSERT INTO companies(id, name) VALUES('CO', 'co')");
  for (int v = 0; v < kVehicles; ++v) {
    const std::string id = fmt::format("V-{:03d}", v);
    Exec(*store, fmt::format("INSERT INTO vehicles(id, company_id, plate) VALUES('{}', 'CO', "
                             "'P{}')",
                             id, v));
    // One position a day for two days; the latest kept beside them.
    for (int day = 0; day < 2; ++day) {
      Exec(*store, fmt::format("INSERT INTO positions(vehicle_id, at, event_id, lat, lon, source, "
                               "outside, received_at) VALUES('{}', {}, '', 39.9, 116.4, 'jt808', "
                               "0, {})",
                               id, t0 + day * kDayMs, t0 + day * kDayMs));
    }
    Exec(*store, fmt::format("INSERT INTO vehicle_positions(vehicle_id, at, lat, lon, source, "
                             "received_at) VALUES('{}', {}, 39.9, 116.4, 'jt808', {})",
                             id, t0 + kDayMs, t0 + kDayMs));
  }
  Exec(*store, fmt::format("INSERT INTO alerts(id, kind, vehicle_id, courier_id, company_id, at, "
                           "detail, created_at) VALUES('ZE-V-000-1', 'zone_exit', 'V-000', "
                           "'CR', 'CO', {}, '{{}}', {})",
                           t0, t0));

  // The day before the first day's retention ends: nothing, in three steps.
  auto [none, steps] = Sweep(*store, t0 + 183 * kDayMs - 1);
  CHECK(none == 0);
  CHECK(steps == 3);  // 100, 100 and 50 vehicles, then the rest
  CHECK(Count(*store, "positions") == 2 * kVehicles);

  // The day of: every vehicle's first position, and the alert placed then.
  auto [first, steps_of] = Sweep(*store, t0 + 183 * kDayMs);
  CHECK(first == kVehicles + 1);
  CHECK(steps_of == 3);
  CHECK(Count(*store, "positions") == kVehicles);
  CHECK(Count(*store, "alerts") == 0);
  CHECK(Count(*store, "vehicle_positions") == kVehicles);

  // A day later the rest, the latest positions with them.
  auto [rest, _] = Sweep(*store, t0 + 184 * kDayMs);
  CHECK(rest == 2 * kVehicles);
  CHECK(Count(*store, "positions") == 0);
  CHECK(Count(*store, "vehicle_positions") == 0);
}

}  // namespace
}  // namespace pingma::registry
