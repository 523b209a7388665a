// The use cases driven directly, without HTTP: the writer's cache of cylinders
// for fill checks past its limit, and reads that answer only once what they show
// is durable.
#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <string>

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

}  // namespace
}  // namespace pingma::registry
