// Bearer tokens: the instant a last day ends, the addresses the throttle counts
// by, the throttle's bucket, and the Service's answers at each boundary: the day
// before, of and after a token's last day; a revocation at another registry on the
// same database; repeated bad tokens from one address and a good one from another.
#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <string>
#include <tuple>

#include "access/tokens.h"
#include "service.h"
#include "test_store.h"

namespace pingma::registry {
namespace {

/// A clock the test moves.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::int64_t ms) : ms_(ms) {}
  Instant Now() const override { return Instant{ms_.load()}; }
  void Set(std::int64_t ms) { ms_ = ms; }
  void Advance(std::int64_t ms) { ms_ += ms; }

 private:
  std::atomic<std::int64_t> ms_;
};

std::int64_t At(const char* rfc3339) {
  auto at = Instant::Parse(rfc3339);
  REQUIRE(at.ok());
  return at->unix_ms;
}

Reply Get(Service& service, const std::string& token, const std::string& target,
          const std::string& client = "192.0.2.1") {
  std::promise<Reply> promise;
  Request request{"GET", target, "Bearer " + token, ""};
  request.client = client;
  service.Handle(request, [&promise](Reply r) { promise.set_value(std::move(r)); });
  return promise.get_future().get();
}

std::string ErrorCode(const Reply& r) {
  return r.body.contains("error") ? r.body["error"]["code"].get<std::string>() : "";
}

/// 401 TOKEN_REVOKED.
bool IsRevoked(const Reply& r) {
  return r.status == 401 && ErrorCode(r) == "TOKEN_REVOKED";
}

TEST_CASE("a last day ends at the midnight that follows it in the policy's zone") {
  struct Row {
    const char* day;
    int offset_minutes;
    const char* ends;
  };
  const Row rows[] = {
      {"2027-03-31", 8 * 60, "2027-03-31T16:00:00Z"},  // Asia/Shanghai
      {"2027-03-31", 0, "2027-04-01T00:00:00Z"},
      {"2027-12-31", 8 * 60, "2027-12-31T16:00:00Z"},  // the year's last day
      {"2028-02-29", 8 * 60, "2028-02-29T16:00:00Z"},  // a leap day
      {"2027-03-31", -5 * 60, "2027-04-01T05:00:00Z"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.day);
    CAPTURE(row.offset_minutes);
    CHECK(TokenExpiry(*Date::Parse(row.day), row.offset_minutes).unix_ms == At(row.ends));
  }
}

TEST_CASE("a token's state at the edges of its last day and of its revocation") {
  const Instant ends{At("2027-03-31T16:00:00Z")};
  struct Row {
    const char* now;
    bool revoked;
    TokenState state;
  };
  const Row rows[] = {
      {"2027-03-30T16:00:00Z", false, TokenState::kActive},      // the day before, Shanghai
      {"2027-03-31T15:59:59.999Z", false, TokenState::kActive},  // the last day's last ms
      {"2027-03-31T16:00:00Z", false, TokenState::kExpired},     // the day after begins
      {"2027-04-02T00:00:00Z", false, TokenState::kExpired},
      {"2027-03-01T00:00:00Z", true, TokenState::kRevoked},  // revoked before its end
      {"2027-05-01T00:00:00Z", true, TokenState::kRevoked},  // revoked wins over expired
  };
  for (const Row& row : rows) {
    CAPTURE(row.now);
    CHECK(JudgeToken(ends, row.revoked, Instant{At(row.now)}) == row.state);
  }
  CHECK(JudgeToken(std::nullopt, false, Instant{At("2999-01-01T00:00:00Z")}) ==
        TokenState::kActive);
}

TEST_CASE("limits count IPv4 addresses whole and IPv6 addresses by their /64 (AddressKey)") {
  struct Row {
    const char* address;
    const char* key;
  };
  const Row rows[] = {
      {"192.0.2.7", "192.0.2.7"},
      {"2001:db8:1:2::1", "2001:db8:1:2::/64"},
      {"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
      {"2001:0db8:0001:0002:0:0:0:9", "2001:db8:1:2::/64"},
      {"2001:db8:1:3::1", "2001:db8:1:3::/64"},
      {"::ffff:192.0.2.7", "192.0.2.7"},  // IPv4-mapped: the IPv4 address
      {"2001:0DB8:0001:0002:0:0:0:9", "2001:db8:1:2::/64"},
      {"fe80::1%eth0", "fe80:0:0:0::/64"},  // the zone index is not the address
      {"::1", "0:0:0:0::/64"},
      {"", ""},
      {"not an address", "not an address"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.address);
    CHECK(AddressKey(row.address) == row.key);
  }
}

TEST_CASE("the throttle: a burst of failures, then one every window / burst") {
  AuthThrottle throttle;
  const std::int64_t t0 = At("2026-01-01T00:00:00Z");
  for (int i = 0; i < AuthThrottle::kBurst; ++i) {
    CHECK(throttle.RetryAfterSeconds("a", Instant{t0}) == 0);
    throttle.CountFailure("a", Instant{t0});
  }
  // Full: one failure leaks away every 60 s / 20 = 3 s.
  CHECK(throttle.RetryAfterSeconds("a", Instant{t0}) == 3);
  CHECK(throttle.RetryAfterSeconds("b", Instant{t0}) == 0);
  CHECK(throttle.RetryAfterSeconds("a", Instant{t0 + 2999}) == 1);
  CHECK(throttle.RetryAfterSeconds("a", Instant{t0 + 3000}) == 0);
  throttle.CountFailure("a", Instant{t0 + 3000});
  CHECK(throttle.RetryAfterSeconds("a", Instant{t0 + 3000}) == 3);
  // A minute of quiet empties the bucket.
  CHECK(throttle.RetryAfterSeconds("a", Instant{t0 + 63000}) == 0);
}

/// A registry at a clock the test moves, with an admin token.
struct TokenWorld {
  explicit TokenWorld(Store* store, ManualClock* clock)
      : service(store, Policy::Defaults(), clock) {
    admin = *service.AddToken(Role::kAdmin, "root");
  }
  /// A token issued over HTTP by the admin; returns {id, token}.
  std::pair<std::string, std::string> Issue(const json& body) {
    std::promise<Reply> promise;
    service.Handle({"POST", "/v1/tokens", "Bearer " + admin, body.dump()},
                   [&promise](Reply r) { promise.set_value(std::move(r)); });
    Reply r = promise.get_future().get();
    REQUIRE_MESSAGE(r.status == 201, r.body.dump());
    CHECK(r.body["token"].get<std::string>().rfind("pm_", 0) == 0);
    return {r.body["id"], r.body["token"]};
  }
  Reply Revoke(const std::string& id) {
    std::promise<Reply> promise;
    service.Handle({"DELETE", "/v1/tokens/" + id, "Bearer " + admin, ""},
                   [&promise](Reply r) { promise.set_value(std::move(r)); });
    return promise.get_future().get();
  }
  Service service;
  std::string admin;
};

TEST_CASE_FIXTURE(StoreOnTempDb, "a token works to the end of its last day in Shanghai") {
  // Issued on 2026-01-01 (Shanghai) with 2026-01-02 as its last day.
  ManualClock moved(At("2026-01-01T02:00:00Z"));
  TokenWorld world(store.get(), &moved);
  const auto [id, token] = world.Issue({{"role", "regulator"},
                                        {"subject", "OFFICE-1"},
                                        {"expires", "2026-01-02"},
                                        {"note", "the day-trip inspector"}});
  struct Row {
    const char* now;
    int status;
    const char* code;
  };
  const Row rows[] = {
      {"2026-01-01T02:00:00Z", 200, ""},               // the day before
      {"2026-01-01T16:00:00Z", 200, ""},               // the last day begins
      {"2026-01-02T15:59:59.999Z", 200, ""},           // its last millisecond
      {"2026-01-02T16:00:00Z", 401, "TOKEN_EXPIRED"},  // the day after begins
      {"2026-01-03T12:00:00Z", 401, "TOKEN_EXPIRED"},  // the day after
      {"2026-01-02T15:59:59.999Z", 200, ""},           // a clock set back: it works
  };
  for (const Row& row : rows) {
    CAPTURE(row.now);
    moved.Set(At(row.now));
    const Reply r = Get(world.service, token, "/v1/policy");
    CHECK(r.status == row.status);
    CHECK(ErrorCode(r) == row.code);
  }
  // A last day before today is refused; today is the earliest.
  moved.Set(At("2026-01-05T00:00:00Z"));  // 08:00 on the 5th in Shanghai
  std::promise<Reply> refused;
  world.service.Handle(
      {"POST", "/v1/tokens", "Bearer " + world.admin,
       json{{"role", "station"}, {"subject", "ST-1"}, {"expires", "2026-01-04"}}.dump()},
      [&refused](Reply r) { refused.set_value(std::move(r)); });
  CHECK(refused.get_future().get().status == 422);
  world.Issue({{"role", "station"}, {"subject", "ST-1"}, {"expires", "2026-01-05"}});
  store->Close();
}

TEST_CASE_FIXTURE(StoreOnTempDb, "a revoked token is refused at once here") {
  ManualClock moved(At("2026-01-01T00:00:00Z"));
  TokenWorld world(store.get(), &moved);
  const auto [id, token] = world.Issue({{"role", "regulator"}, {"subject", "OFFICE-1"}});
  CHECK(Get(world.service, token, "/v1/policy").status == 200);
  CHECK(world.Revoke(id).status == 204);
  // Not one millisecond later: the kept token went with the commit.
  CHECK(IsRevoked(Get(world.service, token, "/v1/policy")));
  // Again: nothing changes; an unknown id is 404.
  CHECK(world.Revoke(id).status == 204);
  CHECK(world.Revoke("tk-000000000000").status == 404);
  store->Close();
}

TEST_CASE_FIXTURE(StoreOnTempDb,
                  "a token revoked at another registry on the database is refused once "
                  "kRecheckMs have passed, and answered from memory before") {
  ManualClock moved(At("2026-01-01T00:00:00Z"));
  TokenWorld here(store.get(), &moved);
  auto other_store = SqliteStore::Open(tmp.path, moved);
  REQUIRE(other_store.ok());
  Service there((*other_store).get(), Policy::Defaults(), &moved);
  const auto [id, token] = here.Issue({{"role", "regulator"}, {"subject", "OFFICE-1"}});
  CHECK(Get(there, token, "/v1/policy").status == 200);  // kept there

  CHECK(here.Revoke(id).status == 204);
  // Within BearerTokens::kRecheckMs of its last look, `there` answers from memory.
  moved.Advance(BearerTokens::kRecheckMs - 100);
  CHECK(Get(there, token, "/v1/policy").status == 200);
  // Past it, the next request looks at the newest revocation and reads the token again.
  moved.Advance(200);
  CHECK(IsRevoked(Get(there, token, "/v1/policy")));
  (*other_store)->Close();
  store->Close();
}

TEST_CASE_FIXTURE(StoreOnTempDb,
                  "repeated bad tokens from one address get 429; good, revoked and other "
                  "addresses' tokens do not") {
  ManualClock moved(At("2026-01-01T00:00:00Z"));
  TokenWorld world(store.get(), &moved);
  const auto [id, good] = world.Issue({{"role", "regulator"}, {"subject", "OFFICE-1"}});
  const auto [lost_id, lost] = world.Issue({{"role", "station"}, {"subject", "ST-1"}});
  const std::string attacker = "2001:db8:1:2::66";
  CHECK(Get(world.service, lost, "/v1/policy", attacker).status == 200);
  CHECK(world.Revoke(lost_id).status == 204);
  // A revoked token, again and again, is no guess: it does not count.
  for (int i = 0; i < 2 * AuthThrottle::kBurst; ++i) {
    CHECK(IsRevoked(Get(world.service, lost, "/v1/policy", attacker)));
  }
  for (int i = 0; i < AuthThrottle::kBurst; ++i) {
    const Reply r = Get(world.service, "pm_guess" + std::to_string(i), "/v1/policy", attacker);
    CHECK(r.status == 401);
  }
  // The same /64, another host: refused before any lookup.
  const Reply refused = Get(world.service, "pm_guess-next", "/v1/policy", "2001:db8:1:2::77");
  CHECK(refused.status == 429);
  CHECK(ErrorCode(refused) == "TOO_MANY_REQUESTS");
  REQUIRE(refused.headers.size() == 1);
  CHECK(refused.headers[0].first == "Retry-After");
  CHECK(refused.headers[0].second == "3");
  // A good token from another address, and a bad one from another /64: as ever.
  CHECK(Get(world.service, good, "/v1/policy", "192.0.2.10").status == 200);
  CHECK(Get(world.service, "pm_typo", "/v1/policy", "2001:db8:1:3::66").status == 401);
  // A token known here as good still works from the throttled address, and a
  // revoked one is told so (a station must stop, not fall back to its replica).
  CHECK(Get(world.service, good, "/v1/policy", attacker).status == 200);
  CHECK(world.Revoke(id).status == 204);
  CHECK(IsRevoked(Get(world.service, good, "/v1/policy", attacker)));
  // After Retry-After, one more guess is looked at, then the address waits again.
  moved.Advance(3000);
  CHECK(Get(world.service, "pm_guess-late", "/v1/policy", attacker).status == 401);
  CHECK(Get(world.service, "pm_guess-later", "/v1/policy", attacker).status == 429);
  store->Close();
}

TEST_CASE_FIXTURE(StoreOnTempDb,
                  "a token's last use: shown at once, written a minute on and at the close") {
  ManualClock moved(At("2026-01-01T00:00:00Z"));
  const std::int64_t t0 = moved.Now().unix_ms;
  auto written = [](Store& on, const std::string& id) -> std::optional<std::int64_t> {
    auto at = on.Read([&](Conn& conn) -> Result<std::optional<std::int64_t>> {
      auto st = conn.Prepare("SELECT last_used_at FROM tokens WHERE id = ?");
      if (!st.ok()) return st.status();
      (*st)->Bind(1, id);
      auto row = (*st)->Step();
      if (!row.ok()) return row.status();
      if (!*row || (*st)->IsNull(0)) return std::optional<std::int64_t>();
      return std::optional<std::int64_t>((*st)->Int(0));
    });
    REQUIRE(at.ok());
    return *at;
  };
  // Jobs run in the order they were queued: one queued after a write of uses
  // returns once that write is committed.
  auto settle = [this] { store->Run([](WriteTx&) { return Reply{}; }); };
  std::string id;
  {
    TokenWorld world(store.get(), &moved);
    std::string token;
    std::tie(id, token) = world.Issue({{"role", "regulator"}, {"subject", "OFFICE-1"}});
    CHECK(Get(world.service, token, "/v1/policy").status == 200);
    moved.Advance(30'000);
    CHECK(Get(world.service, token, "/v1/policy").status == 200);
    settle();
    CHECK(written(*store, id) == std::nullopt);  // no write per request
    const Reply listed = Get(world.service, world.admin, "/v1/tokens");
    REQUIRE(listed.status == 200);
    for (const json& t : listed.body["tokens"]) {
      if (t["id"] == id) CHECK(t["last_used_at"] == "2026-01-01T00:00:30.000Z");
    }
    // A minute after the registry began: the uses seen are written.
    moved.Advance(30'000);
    CHECK(Get(world.service, token, "/v1/policy").status == 200);
    settle();
    CHECK(written(*store, id) == t0 + 60'000);
    moved.Advance(1'000);
    CHECK(Get(world.service, token, "/v1/policy").status == 200);
    settle();
    CHECK(written(*store, id) == t0 + 60'000);  // not again within the minute
    store->Close();                             // ... but at the close
  }
  auto reopened = SqliteStore::Open(tmp.path, moved);
  REQUIRE(reopened.ok());
  CHECK(written(**reopened, id) == t0 + 61'000);
  (*reopened)->Close();
}

}  // namespace
}  // namespace pingma::registry
