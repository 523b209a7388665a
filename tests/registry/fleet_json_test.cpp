// The fleet feed writes each cylinder's JSON directly (AppendFleetCylinder), for
// speed; it must be, byte for byte, what the API's codec gives
// (CylinderJson(row, policy).dump(), on the common CylinderToJson): every
// optional field absent and present, every phase, state and result, and text
// that needs escaping.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "cases/fleet.h"
#include "cases/queries.h"

namespace pingma::registry {
namespace {

CylinderRow Bare() {
  CylinderRow row;
  Cylinder& c = row.cylinder;
  c.code = "HB-000001";
  c.model = "YSP35.5";
  c.manufacturer = "Hebei Example";
  c.serial = "S1";
  c.manufactured = *YearMonth::Parse("2020-03");
  c.tare_kg = 16.9;
  c.owner_company_id = "CO-A";
  row.registration_state = "registered";
  return row;
}

std::vector<CylinderRow> Rows() {
  std::vector<CylinderRow> rows;
  rows.push_back(Bare());
  CylinderRow full = Bare();
  Cylinder& c = full.cylinder;
  c.allowed_fill_kg = 14.5;
  c.design_life_years = 8;
  c.registration_no = "登记-\"7\"\\\n\t\u0001";
  c.last_inspection = *Date::Parse("2024-02-29");
  c.last_inspection_result = InspectionResult::kFail;
  c.next_inspection_due = *Date::Parse("2028-02-29");
  c.assessment = Assessment{*Date::Parse("2025-01-31"), true, *Date::Parse("2027-12-31")};
  c.phase = Phase::kDual;
  c.state = CylinderState::kScrapPending;
  full.water_capacity_l = 35.5;
  full.state_reason = "INSPECTION_FAILED";
  full.state_since = Instant{1767225600123};
  full.last_fill = Sighting{"ST-01", Instant{1767225600000}};
  full.carriers = {"EPC:3034F8", "GRAI:0614141000005", "UID:04AB"};
  rows.push_back(full);
  CylinderRow failed = full;
  failed.cylinder.assessment = Assessment{*Date::Parse("2025-01-31"), false, std::nullopt};
  failed.cylinder.last_inspection_result = InspectionResult::kPass;
  failed.cylinder.phase = Phase::kLiquid;
  failed.cylinder.state = CylinderState::kScrapped;
  failed.cylinder.tare_kg = 0.1 + 0.2;  // a number that needs all its digits
  failed.carriers = {"one"};
  rows.push_back(failed);
  return rows;
}

TEST_CASE("the fleet feed's writer gives the codec's text for every kind of cylinder") {
  const Policy policy = Policy::Defaults();
  for (const CylinderRow& row : Rows()) {
    std::string written;
    AppendFleetCylinder(&written, row, policy);
    CHECK(written == CylinderJson(row, policy).dump());
  }
}

}  // namespace
}  // namespace pingma::registry
