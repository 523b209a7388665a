// The writer's cache of cylinders for fill checks, past its limit: cylinders that
// no longer fit are read for each check and not kept, and every check still
// decides on the right cylinder's record, as it stands now.
#include <doctest/doctest.h>

#include <future>
#include <string>

#include "service.h"
#include "test_store.h"

namespace pingma::registry {
namespace {

Reply Call(Service& service, const std::string& token, const std::string& method,
           const std::string& target, const json& body) {
  std::promise<Reply> promise;
  auto future = promise.get_future();
  service.Handle({method, target, "Bearer " + token, body.is_null() ? "" : body.dump()},
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

TEST_CASE_FIXTURE(StoreOnTempDb,
                  "fill checks decide on the right cylinder past the cache's limit") {
  // The clock says 2026-01-01: a due date of 2025-12-31 is overdue, 2027 is not.
  Service service(store.get(), Policy::Defaults(), &clock);
  service.set_max_cached_cylinders(2);
  const std::string admin = *service.AddToken(Role::kAdmin, "root");
  const std::string company = *service.AddToken(Role::kCompany, "CO-A");
  const std::string station = *service.AddToken(Role::kStation, "ST-01");
  const std::string inspector = *service.AddToken(Role::kInspector, "AG-1");
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
    Setup(service, inspector, "/v1/inspections",
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

}  // namespace
}  // namespace pingma::registry
