// The use cases driven directly, without HTTP: the writer's cache of cylinders
// for fill checks past its limit, a batch stored a chunk at a time (and a chunk
// that fails, one by one), the clone watch read back at a restart, the
// fill-check counts made again from the log, reads that answer only
// once what they show is durable, checks decided offline at the edges of the instants they may
// have, the public form's window per client (an IPv6 /64 is one), and the body limits the HTTP edge
// asks for.
#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <string>

#include <fmt/format.h>

#include "service.h"
#include "test_store.h"

namespace pingma::registry {
namespace {

/// Sends a request; `done` gets the reply.
void Send(Service& service, const std::string& token, const std::string& method,
          const std::string& target, const json& body, Store::Done done) {
  service.Handle({method, target, "Bearer " + token, body.is_null() ? "" : body.dump()},
                 std::move(done));
}

Reply Call(Service& service, const std::string& token, const std::string& method,
           const std::string& target, const json& body) {
  std::promise<Reply> promise;
  auto future = promise.get_future();
  Send(service, token, method, target, body,
       [&promise](Reply r) { promise.set_value(std::move(r)); });
  return future.get();
}

void Setup(Service& service, const std::string& token, const std::string& target,
           const json& body) {
  Reply r = Call(service, token, "POST", target, body);
  REQUIRE_MESSAGE((r.status == 200 || r.status == 201), target, " -> ", r.status, " ",
                  r.body.dump());
}

json Cylinder(const std::string& code, const std::string& next_due) {
  return {{"code", code},
          {"model", "YSP35.5"},
          {"manufacturer", "Hebei Example"},
          {"serial", code},
          {"manufactured", "2023-01"},
          {"tare_kg", 16.4},
          {"last_inspection", "2023-01-15"},
          {"next_inspection_due", next_due}};
}

/// Company CO-A with station ST-01 and operator OP-7, and a token of each role.
struct Fleet {
  explicit Fleet(Service& service) {
    admin = *service.AddToken(Role::kAdmin, "root");
    company = *service.AddToken(Role::kCompany, "CO-A");
    station = *service.AddToken(Role::kStation, "ST-01");
    inspector = *service.AddToken(Role::kInspector, "AG-1");
    Setup(service, admin, "/v1/companies",
          {{"id", "CO-A"},
           {"name", "Example Gas"},
           {"filling_license", {{"number", "L1"}, {"valid_until", "2099-12-31"}}}});
    Setup(service, admin, "/v1/stations",
          {{"id", "ST-01"}, {"company_id", "CO-A"}, {"name", "Station 1"}, {"district", "D1"}});
    Setup(service, admin, "/v1/operators",
          {{"id", "OP-7"},
           {"company_id", "CO-A"},
           {"name", "Operator"},
           {"certificate", {{"number", "C1"}, {"valid_until", "2099-12-31"}}}});
  }
  std::string admin, company, station, inspector;
};

TEST_CASE_FIXTURE(StoreOnTempDb,
                  "fill checks decide on the right cylinder past the cache's limit") {
  // The clock says 2026-01-01: a due date of 2025-12-31 is overdue, 2027 is not.
  Service service(store.get(), Policy::Defaults(), &clock);
  service.set_max_cached_cylinders(2);
  const Fleet fleet(service);
  const std::string& company = fleet.company;
  const std::string& station = fleet.station;
  Setup(service, company, "/v1/cylinders", Cylinder("HB-C1", "2027-01-31"));
  Setup(service, company, "/v1/cylinders", Cylinder("HB-C2", "2025-12-31"));
  Setup(service, company, "/v1/cylinders", Cylinder("HB-C3", "2027-01-31"));
  Setup(service, company, "/v1/cylinders", Cylinder("HB-C4", "2025-12-31"));

  auto check = [&](const std::string& code) {
    Reply r = Call(service, station, "POST", "/v1/fill-checks",
                   {{"station_id", "ST-01"}, {"operator_id", "OP-7"}, {"code", code}});
    REQUIRE(r.status == 200);
    const json answer = json::parse(r.raw_body);
    CHECK(answer["cylinder"]["code"] == code);
    return answer["decision"].get<std::string>();
  };
  // C1 and C2 fill the cache; C3 and C4 are read for each check, and each check
  // of one follows a check of another, so a stale cylinder would show.
  CHECK(check("HB-C1") == "allow");
  CHECK(check("HB-C2") == "block");
  CHECK(check("HB-C3") == "allow");
  CHECK(check("HB-C4") == "block");
  CHECK(check("HB-C3") == "allow");
  CHECK(check("HB-C4") == "block");
  CHECK(check("HB-C1") == "allow");
  CHECK(check("HB-C2") == "block");

  // A passed inspection counts at the next check, for a kept cylinder as for one
  // that is not kept.
  for (const char* code : {"HB-C2", "HB-C4"}) {
    Setup(service, fleet.inspector, "/v1/inspections",
          {{"code", code},
           {"date", "2026-01-01"},
           {"result", "pass"},
           {"next_due", "2030-01-31"},
           {"report_no", std::string("R-") + code}});
  }
  CHECK(check("HB-C2") == "allow");
  CHECK(check("HB-C4") == "allow");
  CHECK(check("HB-C3") == "allow");
  store->Close();
}

TEST_CASE_FIXTURE(StoreOnTempDb,
                  "a restart reads the clone window's sightings back past a page of the log") {
  // The clock stands still: every event is inside the clone window, and the walk
  // back through the log at start-up reads it a page (4096 events) at a time.
  auto check = [](Service& service, const std::string& token, const std::string& station) {
    Reply r = Call(service, token, "POST", "/v1/fill-checks",
                   {{"station_id", station}, {"operator_id", "OP-7"}, {"code", "HB-C1"}});
    REQUIRE(r.status == 200);
    return json::parse(r.raw_body);
  };
  std::string second_station;
  {
    Service service(store.get(), Policy::Defaults(), &clock);
    const Fleet fleet(service);
    Setup(service, fleet.admin, "/v1/stations",
          {{"id", "ST-02"}, {"company_id", "CO-A"}, {"name", "Station 2"}, {"district", "D1"}});
    second_station = *service.AddToken(Role::kStation, "ST-02");
    Setup(service, fleet.company, "/v1/cylinders", Cylinder("HB-C1", "2027-01-31"));
    CHECK(check(service, fleet.station, "ST-01")["decision"] == "allow");
    // Two pages of events after the check.
    json batch = json::array();
    for (int i = 0; i < 8200; ++i)
      batch.push_back(Cylinder(fmt::format("HB-P{}", i), "2027-01-31"));
    Reply r = Call(service, fleet.company, "POST", "/v1/cylinders/batch", {{"cylinders", batch}});
    REQUIRE(r.status == 200);
  }
  Service restarted(store.get(), Policy::Defaults(), &clock);
  const json answer = check(restarted, second_station, "ST-02");
  CHECK(answer["decision"] == "block");
  CHECK(answer["reasons"].dump().find("CLONE_SUSPECTED") != std::string::npos);
  store->Close();
}

TEST_CASE_FIXTURE(StoreOnTempDb,
                  "a batch stores its items a chunk at a time, and a chunk that fails one by one") {
  Service service(store.get(), Policy::Defaults(), &clock);
  const Fleet fleet(service);
  Setup(service, fleet.company, "/v1/cylinders", Cylinder("HB-C1", "2027-01-31"));
  // A refusal no check before the insert can see: the chunk it is in (items 500
  // to 999) fails whole, and its items are stored again one at a time.
  Reply armed = store->Run([](WriteTx& tx) -> Reply {
    Status s = tx.conn().db().Exec(
        "CREATE TRIGGER refuse_one BEFORE INSERT ON cylinders WHEN NEW.code = 'HB-B0613' "
        "BEGIN SELECT RAISE(ABORT, 'refused for the test'); END");
    return s.ok() ? Reply{} : ErrorReply(s);
  });
  REQUIRE(!armed.failed());
  json batch = json::array();
  for (int i = 0; i < 1000; ++i) {
    batch.push_back(Cylinder(fmt::format("HB-B{:04d}", i), "2027-01-31"));
  }
  batch[3]["code"] = "HB-C1";     // registered before the batch
  batch[5]["code"] = "HB-B0002";  // earlier in the batch
  batch[7]["code"] = "";          // does not parse
  Reply r = Call(service, fleet.company, "POST", "/v1/cylinders/batch", {{"cylinders", batch}});
  REQUIRE(r.status == 200);
  const json& results = r.body["results"];
  REQUIRE(results.size() == 1000);
  int stored = 0;
  for (int i = 0; i < 1000; ++i) {
    CAPTURE(i);
    const json& result = results[static_cast<std::size_t>(i)];
    if (i == 3 || i == 5) {
      CHECK(result["status"] == 409);
      CHECK(result["error"]["message"].get<std::string>().find("is already registered") !=
            std::string::npos);
    } else if (i == 7 || i == 613) {
      CHECK(result["status"].get<int>() >= 400);
    } else {
      CHECK(result["status"] == 201);
      CHECK(result["code"] == fmt::format("HB-B{:04d}", i));
      ++stored;
    }
  }
  CHECK(stored == 996);
  // Each stored item once, with its event and its count; the refused one not at all.
  auto count = [&](const std::string& sql) {
    return store->Read([&](Conn& conn) -> Result<std::int64_t> {
      PINGMA_ASSIGN_OR_RETURN(auto st, conn.Prepare(sql));
      PINGMA_ASSIGN_OR_RETURN(bool row, st->Step());
      return row ? st->Int(0) : -1;
    });
  };
  CHECK(*count("SELECT COUNT(*) FROM cylinders WHERE code LIKE 'HB-B%'") == 996);
  CHECK(*count("SELECT COUNT(*) FROM events WHERE type = 'registered'") == 997);
  CHECK(*count("SELECT COUNT(*) FROM cylinders WHERE code = 'HB-B0613'") == 0);
  CHECK(*count("SELECT SUM(n) FROM due_counts WHERE company_id = 'CO-A'") == 997);
  store->Close();
  auto verified = VerifyChain(tmp.path);
  REQUIRE(verified.ok());
  CHECK(verified->find("chain intact") != std::string::npos);
}

TEST_CASE_FIXTURE(StoreOnTempDb, "the fill-check counts made again from a log of many pages") {
  // The counts are made from the log 10,000 checks at a time: 10,050 checks (one
  // page and a bit, the last refused) counted once each, none twice.
  constexpr int kChecks = 10050;
  {
    Service service(store.get(), Policy::Defaults(), &clock);
    const Fleet fleet(service);
    Setup(service, fleet.company, "/v1/cylinders", Cylinder("HB-C1", "2027-01-31"));
    Setup(service, fleet.company, "/v1/cylinders", Cylinder("HB-C2", "2025-12-31"));
    std::vector<std::future<Reply>> answers;
    answers.reserve(kChecks);
    for (int i = 0; i < kChecks; ++i) {
      auto promise = std::make_shared<std::promise<Reply>>();
      answers.push_back(promise->get_future());
      Send(service, fleet.station, "POST", "/v1/fill-checks",
           {{"station_id", "ST-01"},
            {"operator_id", "OP-7"},
            {"code", i + 1 == kChecks ? "HB-C2" : "HB-C1"}},
           [promise](Reply r) { promise->set_value(std::move(r)); });
    }
    for (auto& answer : answers) REQUIRE(answer.get().status == 200);
    // As a store made before the counts: they are to be made from the log.
    Reply dropped = store->Run([](WriteTx& tx) -> Reply {
      Status s = tx.conn().db().Exec(
          "DELETE FROM meta WHERE key = 'check_counts_complete'; DELETE FROM check_days; "
          "DELETE FROM refusal_days; DELETE FROM refusals;");
      return s.ok() ? Reply{} : ErrorReply(s);
    });
    REQUIRE_FALSE(dropped.failed());
  }
  Service restarted(store.get(), Policy::Defaults(), &clock);
  const std::string regulator = *restarted.AddToken(Role::kRegulator, "SAMR");
  const Reply stats = Call(restarted, regulator, "GET",
                           "/v1/stats/fill-checks?from=2025-12-31&to=2026-01-02", nullptr);
  REQUIRE(stats.status == 200);
  CHECK(stats.body["total"]["checks"] == kChecks);
  CHECK(stats.body["total"]["refused"] == 1);
  store->Close();
}

TEST_CASE_FIXTURE(StoreOnTempDb, "a read answers only once the write it shows is durable") {
  Service service(store.get(), Policy::Defaults(), &clock);
  const Fleet fleet(service);

  HeldSync held(*store);
  std::promise<Reply> written;
  Send(service, fleet.company, "POST", "/v1/cylinders", Cylinder("HB-R1", "2027-01-31"),
       [&written](Reply r) { written.set_value(std::move(r)); });
  held.WaitUntilHeld();

  std::promise<Reply> read;
  auto read_future = read.get_future();
  Send(service, fleet.admin, "GET", "/v1/cylinders/HB-R1", nullptr,
       [&read](Reply r) { read.set_value(std::move(r)); });
  CHECK(read_future.wait_for(std::chrono::seconds(0)) == std::future_status::timeout);

  held.Release();
  REQUIRE(read_future.wait_for(std::chrono::seconds(60)) == std::future_status::ready);
  const Reply shown = read_future.get();
  CHECK(shown.status == 200);
  CHECK(shown.body["code"] == "HB-R1");
  CHECK(written.get_future().get().status == 201);
  store->Close();
}

/// An offline check of `code` by ST-01 decided at `at`, allowed.
json OfflineCheck(const std::string& code, const std::string& at) {
  return {{"check_id", "3f2b8c1e-9d4a-4c6e-8b7a-1e2d3c4b5a69"},
          {"station_id", "ST-01"},
          {"operator_id", "OP-7"},
          {"scan", code},
          {"at", at},
          {"decision", "allow"},
          {"reasons", json::array()},
          {"replica_synced_at", nullptr}};
}

TEST_CASE_FIXTURE(StoreOnTempDb,
                  "an offline check's instant: up to 5 minutes ahead, 400 days back") {
  // The clock says 2026-01-01T00:00:00Z.
  Service service(store.get(), Policy::Defaults(), &clock);
  const Fleet fleet(service);
  Setup(service, fleet.company, "/v1/cylinders", Cylinder("HB-T1", "2030-01-31"));
  struct Row {
    const char* at;
    int status;
  };
  const Row rows[] = {
      {"2026-01-01T00:00:00Z", 201},      {"2026-01-01T00:05:00Z", 201},  // exactly 5 minutes ahead
      {"2026-01-01T00:05:00.001Z", 422},                                  // a millisecond more
      {"2026-01-01T08:05:00+08:00", 201}, {"2026-01-01T08:05:00.001+08:00", 422},
      {"2024-11-27T00:00:00Z", 201},      // exactly 400 days back
      {"2024-11-26T23:59:59.999Z", 422},  // a millisecond more
  };
  int n = 0;
  for (const Row& row : rows) {
    CAPTURE(row.at);
    json body = OfflineCheck("HB-T1", row.at);
    body["check_id"] = fmt::format("3f2b8c1e-9d4a-4c6e-8b7a-{:012}", ++n);
    Reply r = Call(service, fleet.station, "POST", "/v1/fill-checks/offline", body);
    CHECK(r.status == row.status);
    if (row.status == 422) {
      CHECK(r.body["error"]["message"].get<std::string>().find("'at'") != std::string::npos);
    }
  }
  store->Close();
}

TEST_CASE_FIXTURE(StoreOnTempDb, "an offline check is decided again as of its instant, once") {
  Service service(store.get(), Policy::Defaults(), &clock);
  const Fleet fleet(service);
  // Due on 2025-12-20: valid through that day in Asia/Shanghai, overdue from the next.
  Setup(service, fleet.company, "/v1/cylinders", Cylinder("HB-D1", "2025-12-20"));
  struct Row {
    const char* id;
    const char* at;
    const char* registry;
  };
  const Row rows[] = {
      {"00000000-0000-4000-8000-000000000001", "2025-12-20T23:59:59.999+08:00", "allow"},
      {"00000000-0000-4000-8000-000000000002", "2025-12-21T00:00:00+08:00", "block"},
      {"00000000-0000-4000-8000-000000000003", "2025-12-20T15:59:59.999Z", "allow"},
      {"00000000-0000-4000-8000-000000000004", "2025-12-20T16:00:00Z", "block"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.at);
    json body = OfflineCheck("HB-D1", row.at);
    body["check_id"] = row.id;
    Reply r = Call(service, fleet.station, "POST", "/v1/fill-checks/offline", body);
    REQUIRE_MESSAGE(r.status == 201, r.body.dump());
    CHECK(r.body["registry_decision"] == row.registry);
    CHECK(r.body["agrees"] == (std::string(row.registry) == "allow"));
    CHECK(r.body["duplicate"] == false);
    // Sent again: the same answer, marked, and nothing more in the log.
    const json history =
        Call(service, fleet.admin, "GET", "/v1/cylinders/HB-D1/history?limit=1000", nullptr).body;
    Reply again = Call(service, fleet.station, "POST", "/v1/fill-checks/offline", body);
    CHECK(again.status == 200);
    json expected = r.body;
    expected["duplicate"] = true;
    CHECK(again.body == expected);
    CHECK(
        Call(service, fleet.admin, "GET", "/v1/cylinders/HB-D1/history?limit=1000", nullptr).body ==
        history);
  }
  // The two allowed at the scale that the registry would have blocked are one
  // violation each.
  const json events =
      Call(service, fleet.admin, "GET", "/v1/cylinders/HB-D1/history?limit=1000", nullptr)
          .body["events"];
  int violations = 0;
  for (const json& e : events) violations += e["type"] == "violation" ? 1 : 0;
  CHECK(violations == 2);
  store->Close();
}

TEST_CASE_FIXTURE(StoreOnTempDb, "two IPv6 addresses of one /64 share the public form's window") {
  Service service(store.get(), Policy::Defaults(), &clock);
  auto report = [&service](const std::string& client) {
    std::promise<Reply> promise;
    auto future = promise.get_future();
    Request request{
        "POST", "/c/HB0100000123/report", "", R"({"category": "other"})", "application/json",
        client};
    service.Handle(request, [&promise](Reply r) { promise.set_value(std::move(r)); });
    return future.get().status;
  };
  for (size_t i = 0; i < PublicPage::kReportsPerWindow; ++i) {
    // Alternating addresses, all in 2001:db8:7:7::/64.
    CHECK(report(i % 2 ? "2001:db8:7:7::1" : "2001:db8:7:7:aaaa:bbbb:cccc:dddd") == 201);
  }
  CHECK(report("2001:db8:7:7::2") == 429);
  // The next /64 and an IPv4 client have windows of their own.
  CHECK(report("2001:db8:7:8::1") == 201);
  CHECK(report("198.51.100.1") == 201);
}

TEST_CASE_FIXTURE(StoreOnTempDb, "BodyLimit: the route's limit only for a token that may call it") {
  Service service(store.get(), Policy::Defaults(), &clock);
  const std::string admin = "Bearer " + *service.AddToken(Role::kAdmin, "root");
  const std::string courier = "Bearer " + *service.AddToken(Role::kCourier, "CR-1");
  const std::string station = "Bearer " + *service.AddToken(Role::kStation, "ST-01");
  struct Row {
    const char* method;
    const char* target;
    std::string authorization;
    size_t limit;
  };
  const Row rows[] = {
      {"POST", "/v1/cylinders/batch", admin, kMaxBatchBody},
      {"POST", "/v1/cylinders/batch?x=1", admin, kMaxBatchBody},
      {"POST", "/v1/cylinders", admin, kMaxBody},
      {"POST", "/v1/scan/image", courier, kMaxImageBody},
      {"POST", "/v1/fill-checks", station, kMaxBody},
      // A role the route refuses, no token, a bad one: the public limit.
      {"POST", "/v1/cylinders/batch", courier, kMaxPublicBody},
      {"POST", "/v1/cylinders/batch", "", kMaxPublicBody},
      {"POST", "/v1/cylinders/batch", "Bearer pm_forged", kMaxPublicBody},
      // No such route or method; the public pages and their form.
      {"POST", "/v1/nothing", admin, kMaxPublicBody},
      {"PUT", "/v1/cylinders/batch", admin, kMaxPublicBody},
      {"POST", "/c/HB0100000123/report", admin, kMaxPublicBody},
      {"POST", "/console/", admin, kMaxPublicBody},
  };
  for (const Row& row : rows) {
    CHECK_MESSAGE(
        service.BodyLimit(row.method, row.target, row.authorization, "192.0.2.7") == row.limit,
        row.method, " ", row.target);
  }
}

}  // namespace

}  // namespace pingma::registry
