// Personal data outside the log: kept, found, and deleted on the day its retention
// ends (not the day before), by the policy in force at the sweep.
#include <doctest/doctest.h>

#include <string>

#include "service.h"
#include "test_store.h"

namespace pingma::registry {
namespace {

constexpr std::int64_t kDayMs = 24LL * 60 * 60 * 1000;

json Keep(Store& store, const std::string& field, const json& value) {
  json ref;
  Reply r = store.Run([&](WriteTx& tx) -> Reply {
    auto kept = KeepPersonalData(tx, "PD0001", field, value);
    if (!kept.ok()) return ErrorReply(kept.status());
    ref = *kept;
    return Reply{};
  });
  REQUIRE_FALSE(r.failed());
  return ref;
}

std::int64_t Sweep(Store& store, std::int64_t at_ms, const Policy& policy) {
  std::int64_t n = -1;
  Reply r = store.Run([&](WriteTx& tx) -> Reply {
    auto swept = SweepPersonalData(tx.conn(), Instant{at_ms}, policy);
    if (!swept.ok()) return ErrorReply(swept.status());
    n = *swept;
    return Reply{};
  });
  REQUIRE_FALSE(r.failed());
  return n;
}

bool Kept(Store& store, const json& ref) {
  auto found = store.Read([&](Conn& conn) { return LookupPersonalData(conn, ref); });
  REQUIRE(found.ok());
  return found->has_value();
}

TEST_CASE_FIXTURE(StoreOnTempDb, "a contact goes on the day its retention ends") {
  const std::int64_t t0 = clock.Now().unix_ms;  // every row is kept at the fixed clock's time
  const json contact = Keep(*store, "contact", "138 0000 1234");
  const json place = Keep(*store, "location", json{{"lat", 34.4}, {"lon", 115.6}});
  CHECK(contact["personal_data"].get<std::string>().rfind("pd-", 0) == 0);
  CHECK(contact["salted_sha256"].get<std::string>().size() == 64);
  CHECK(contact["personal_data"] != place["personal_data"]);
  const Policy policy = Policy::Defaults();  // contacts 180 days, positions 183

  CHECK(Sweep(*store, t0 + 180 * kDayMs - 1, policy) == 0);  // the day before
  CHECK(Kept(*store, contact));
  CHECK(Sweep(*store, t0 + 180 * kDayMs, policy) == 1);  // the day of: the contact goes
  CHECK_FALSE(Kept(*store, contact));
  CHECK(Kept(*store, place));
  CHECK(Sweep(*store, t0 + 183 * kDayMs - 1, policy) == 0);
  CHECK(Sweep(*store, t0 + 183 * kDayMs, policy) == 1);  // the place, three days later
  CHECK_FALSE(Kept(*store, place));
  CHECK(Sweep(*store, t0 + 184 * kDayMs, policy) == 0);  // the day after: nothing left
  store->Close();
}

TEST_CASE_FIXTURE(StoreOnTempDb, "a shortened retention reaches what is kept already") {
  const std::int64_t t0 = clock.Now().unix_ms;
  const json contact = Keep(*store, "contact", "witness");
  Policy policy = Policy::Defaults();
  CHECK(Sweep(*store, t0 + 30 * kDayMs, policy) == 0);
  policy.contact_retention_days = 30;
  CHECK(Sweep(*store, t0 + 30 * kDayMs, policy) == 1);
  CHECK_FALSE(Kept(*store, contact));
  // A reference that names nothing (or is not one) finds nothing.
  CHECK_FALSE(Kept(*store, json{{"personal_data", "pd-000000000000000000000000"}}));
  CHECK_FALSE(Kept(*store, json("not a reference")));
  store->Close();
}

}  // namespace
}  // namespace pingma::registry
