// The cylinder's wire form: every field written and read back, the optional ones
// absent and present, and input that is not a cylinder refused with what is wrong.
#include "pingma/common/cylinder_json.h"

#include <doctest/doctest.h>

#include <string>

namespace pingma {
namespace {

using nlohmann::json;

Cylinder Minimal() {
  Cylinder c;
  c.code = "HB0100000001";
  c.model = "YSP35.5";
  c.phase = Phase::kGas;
  c.manufacturer = "河北示例钢瓶厂";
  c.manufactured = *YearMonth::Parse("2023-01");
  c.tare_kg = 16.4;
  c.owner_company_id = "HB-GAS";
  return c;
}

Cylinder Full() {
  Cylinder c = Minimal();
  c.serial = "S-0001";
  c.registration_no = "冀A-0001";
  c.allowed_fill_kg = 14.5;
  c.design_life_years = 8;
  c.last_inspection = *Date::Parse("2024-03-05");
  c.last_inspection_result = InspectionResult::kPass;
  c.next_inspection_due = *Date::Parse("2028-03-05");
  c.assessment = Assessment{*Date::Parse("2031-01-10"), true, *Date::Parse("2034-01-10")};
  c.state = CylinderState::kScrapPending;
  return c;
}

void CheckSame(const Cylinder& a, const Cylinder& b) {
  CHECK(a.code == b.code);
  CHECK(a.model == b.model);
  CHECK(a.phase == b.phase);
  CHECK(a.manufacturer == b.manufacturer);
  CHECK(a.serial == b.serial);
  CHECK(a.manufactured.ToString() == b.manufactured.ToString());
  CHECK(a.tare_kg == b.tare_kg);
  CHECK(a.allowed_fill_kg == b.allowed_fill_kg);
  CHECK(a.design_life_years == b.design_life_years);
  CHECK(a.registration_no == b.registration_no);
  CHECK(a.owner_company_id == b.owner_company_id);
  CHECK(a.last_inspection.has_value() == b.last_inspection.has_value());
  if (a.last_inspection) CHECK(a.last_inspection->ToString() == b.last_inspection->ToString());
  CHECK(a.last_inspection_result == b.last_inspection_result);
  CHECK(a.next_inspection_due.has_value() == b.next_inspection_due.has_value());
  if (a.next_inspection_due) {
    CHECK(a.next_inspection_due->ToString() == b.next_inspection_due->ToString());
  }
  REQUIRE(a.assessment.has_value() == b.assessment.has_value());
  if (a.assessment) {
    CHECK(a.assessment->date.ToString() == b.assessment->date.ToString());
    CHECK(a.assessment->passed == b.assessment->passed);
    CHECK(a.assessment->extends_until.has_value() == b.assessment->extends_until.has_value());
  }
  CHECK(a.state == b.state);
}

TEST_CASE("a cylinder goes to JSON and back with every field") {
  for (const Cylinder& c : {Minimal(), Full()}) {
    const json written = CylinderToJson(c);
    auto read = CylinderFromJson(json::parse(written.dump()));
    REQUIRE_MESSAGE(read.ok(), read.status().ToString());
    CheckSame(c, *read);
    CHECK(CylinderToJson(*read).dump() == written.dump());
  }
}

TEST_CASE("the JSON of a cylinder: its keys and their form") {
  CHECK(CylinderToJson(Minimal()).dump() ==
        R"({"code":"HB0100000001","manufactured":"2023-01","manufacturer":"河北示例钢瓶厂",)"
        R"("model":"YSP35.5","owner_company_id":"HB-GAS","phase":"gas","registration_no":"",)"
        R"("serial":"","state":"active","tare_kg":16.4})");
  const json full = CylinderToJson(Full());
  CHECK(full["allowed_fill_kg"] == 14.5);
  CHECK(full["design_life_years"] == 8);
  CHECK(full["last_inspection"] == "2024-03-05");
  CHECK(full["last_inspection_result"] == "pass");
  CHECK(full["next_inspection_due"] == "2028-03-05");
  CHECK(full["assessment"].dump() ==
        R"({"date":"2031-01-10","extends_until":"2034-01-10","result":"pass"})");
}

TEST_CASE("what is not a cylinder is refused, naming the member") {
  const json good = CylinderToJson(Full());
  struct Case {
    const char* name;
    json patch;  // merged over the good object; null removes a member
    StatusCode code;
    const char* message;
  } cases[] = {
      {"no code", {{"code", nullptr}}, StatusCode::kMalformed, "cylinder: no string 'code'"},
      {"model a number", {{"model", 7}}, StatusCode::kMalformed, "cylinder: no string 'model'"},
      {"phase unknown", {{"phase", "plasma"}}, StatusCode::kInvalid, "cylinder: 'phase': "},
      {"month bad",
       {{"manufactured", "2023-13"}},
       StatusCode::kInvalid,
       "cylinder: 'manufactured': "},
      {"tare a string",
       {{"tare_kg", "16.4"}},
       StatusCode::kMalformed,
       "cylinder: no number 'tare_kg'"},
      {"state unknown", {{"state", "lost"}}, StatusCode::kInvalid, "cylinder: 'state': "},
      {"design life a fraction",
       {{"design_life_years", 8.5}},
       StatusCode::kMalformed,
       "cylinder: 'design_life_years'"},
      {"design life too large",
       {{"design_life_years", 4294967296LL}},
       StatusCode::kMalformed,
       "cylinder: 'design_life_years'"},
      {"inspection date bad",
       {{"last_inspection", "2024-02-30"}},
       StatusCode::kInvalid,
       "cylinder: 'last_inspection': "},
      {"inspection result unknown",
       {{"last_inspection_result", "maybe"}},
       StatusCode::kInvalid,
       "cylinder: 'last_inspection_result': "},
      {"due date bad",
       {{"next_inspection_due", "soon"}},
       StatusCode::kInvalid,
       "cylinder: 'next_inspection_due': "},
      {"assessment without date",
       {{"assessment", {{"date", nullptr}}}},
       StatusCode::kMalformed,
       "cylinder: no string 'date'"},
      {"assessment result unknown",
       {{"assessment", {{"date", "2031-01-10"}, {"result", "ok"}}}},
       StatusCode::kInvalid,
       "cylinder: 'assessment.result': "},
  };
  for (const Case& c : cases) {
    const std::string name = c.name;
    CAPTURE(name);
    json bad = good;
    bad.merge_patch(c.patch);
    auto read = CylinderFromJson(bad);
    REQUIRE_FALSE(read.ok());
    CHECK(read.status().code() == c.code);
    CHECK(read.status().message().rfind(c.message, 0) == 0);
  }
  CHECK(CylinderFromJson(json::array()).status().code() == StatusCode::kMalformed);
  // Optional members of the wrong type are as absent; null design life is none.
  json loose = CylinderToJson(Minimal());
  loose["serial"] = 5;
  loose["design_life_years"] = nullptr;
  auto read = CylinderFromJson(loose);
  REQUIRE(read.ok());
  CHECK(read->serial.empty());
  CHECK_FALSE(read->design_life_years.has_value());
}

}  // namespace
}  // namespace pingma
