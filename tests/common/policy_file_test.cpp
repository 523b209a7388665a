// Tests of the policy file (ParsePolicy, LoadPolicyFile, PolicyToJson).
//
// A file overrides any subset of Policy::Defaults(); unknown keys, wrong types and
// impossible figures are errors naming the offending key.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "pingma/common/domain.h"
#include "pingma/common/policy.h"
#include "pingma/common/status.h"

// Names a table row in failure reports (doctest prints a bare char* as a pointer).
#define PINGMA_ROW(x) INFO(#x " = ", std::string(x))

namespace pingma {
namespace {

/// Checks every figure of two policies, naming the one that differs.
void CheckSamePolicy(const Policy& actual, const Policy& expected) {
  CHECK(actual.time_zone == expected.time_zone);
  CHECK(actual.utc_offset_minutes == expected.utc_offset_minutes);
  CHECK(actual.design_life_years == expected.design_life_years);
  CHECK(actual.design_life_years_before == expected.design_life_years_before);
  CHECK(actual.design_life_cutover.year == expected.design_life_cutover.year);
  CHECK(actual.design_life_cutover.month == expected.design_life_cutover.month);
  CHECK(actual.life_extension_max_years == expected.life_extension_max_years);
  CHECK(actual.tare_tolerance_kg == doctest::Approx(expected.tare_tolerance_kg));
  CHECK(actual.clone_window_minutes == expected.clone_window_minutes);
  CHECK(actual.regulator_service_life_years == expected.regulator_service_life_years);
  CHECK(actual.hazard_deadline_days == expected.hazard_deadline_days);
  CHECK(actual.contact_retention_days == expected.contact_retention_days);
  CHECK(actual.position_retention_days == expected.position_retention_days);
  CHECK(actual.zone_exit_minutes == expected.zone_exit_minutes);
  CHECK(actual.handover_max_distance_m == expected.handover_max_distance_m);
  CHECK(actual.no_position_minutes == expected.no_position_minutes);
  CHECK(actual.models.size() == expected.models.size());
  for (const auto& [name, rule] : expected.models) {
    CAPTURE(name);
    const ModelRule* got = actual.FindModel(name);
    CHECK(got != nullptr);
    if (got == nullptr) continue;
    CHECK(got->inspection_interval_years == rule.inspection_interval_years);
    CHECK(got->min_fill_kg == doctest::Approx(rule.min_fill_kg));
    CHECK(got->max_fill_kg == doctest::Approx(rule.max_fill_kg));
    CHECK(got->default_phase == rule.default_phase);
  }
}

struct OverrideRow {
  const char* name;
  const char* json;
  std::function<void(Policy&)> change;  // applied to the defaults gives the expected policy
};

TEST_CASE("ParsePolicy: any subset overrides the defaults") {
  const std::vector<OverrideRow> rows = {
      {"empty object", "{}", [](Policy&) {}},
      {"empty object with whitespace", " \n{ }\n", [](Policy&) {}},
      {"time zone", R"({"time_zone": {"name": "UTC", "utc_offset_minutes": 0}})",
       [](Policy& p) {
         p.time_zone = "UTC";
         p.utc_offset_minutes = 0;
       }},
      {"time zone west of UTC",
       R"({"time_zone": {"name": "America/Bogota", "utc_offset_minutes": -300}})",
       [](Policy& p) {
         p.time_zone = "America/Bogota";
         p.utc_offset_minutes = -300;
       }},
      {"one model field", R"({"models": {"YSP35.5": {"max_fill_kg": 14.8}}})",
       [](Policy& p) { p.models.at("YSP35.5").max_fill_kg = 14.8; }},
      {"model interval", R"({"models": {"YSP118": {"inspection_interval_years": 4}}})",
       [](Policy& p) { p.models.at("YSP118").inspection_interval_years = 4; }},
      {"model phase", R"({"models": {"YSP118": {"phase": "liquid"}}})",
       [](Policy& p) { p.models.at("YSP118").default_phase = Phase::kLiquid; }},
      {"model min equal to max", R"({"models": {"YSP35.5": {"min_fill_kg": 14.9}}})",
       [](Policy& p) { p.models.at("YSP35.5").min_fill_kg = 14.9; }},
      {"a whole model", R"({"models": {"YSP35.5": {"inspection_interval_years": 4,
           "min_fill_kg": 14.1, "max_fill_kg": 14.9, "phase": "gas"}}})",
       [](Policy&) {}},
      {"two models",
       R"({"models": {"YSP4.7": {"min_fill_kg": 1.7}, "YSP12": {"max_fill_kg": 5.1}}})",
       [](Policy& p) {
         p.models.at("YSP4.7").min_fill_kg = 1.7;
         p.models.at("YSP12").max_fill_kg = 5.1;
       }},
      {"a new model",
       R"({"models": {"YSP5": {"inspection_interval_years": 4, "min_fill_kg": 1.9,
           "max_fill_kg": 2.0}}})",
       [](Policy& p) {
         p.models["YSP5"] = ModelRule{4, 1.9, 2.0, Phase::kGas};
       }},
      {"a new model with its phase",
       R"({"models": {"YSP50-L": {"inspection_interval_years": 3, "min_fill_kg": 48.0,
           "max_fill_kg": 49.0, "phase": "liquid"}}})",
       [](Policy& p) {
         p.models["YSP50-L"] = ModelRule{3, 48.0, 49.0, Phase::kLiquid};
       }},
      {"design life, all fields",
       R"({"design_life": {"default_years": 10, "before_cutover_years": 12, "cutover": "2008-07"}})",
       [](Policy& p) {
         p.design_life_years = 10;
         p.design_life_years_before = 12;
         p.design_life_cutover = YearMonth{2008, 7};
       }},
      {"design life, default only", R"({"design_life": {"default_years": 10}})",
       [](Policy& p) { p.design_life_years = 10; }},
      {"design life, cutover only", R"({"design_life": {"cutover": "2007-03"}})",
       [](Policy& p) {
         p.design_life_cutover = YearMonth{2007, 3};
       }},
      {"life extension", R"({"life_extension_max_years": 3})",
       [](Policy& p) { p.life_extension_max_years = 3; }},
      {"tare tolerance", R"({"tare_tolerance_kg": 0.5})",
       [](Policy& p) { p.tare_tolerance_kg = 0.5; }},
      {"tare tolerance as an integer", R"({"tare_tolerance_kg": 1})",
       [](Policy& p) { p.tare_tolerance_kg = 1.0; }},
      {"clone window", R"({"clone_window_minutes": 30})",
       [](Policy& p) { p.clone_window_minutes = 30; }},
      {"regulator life of 3 years", R"({"regulator_service_life_years": 3})",
       [](Policy& p) { p.regulator_service_life_years = 3; }},
      {"hazard deadline the same day", R"({"hazard_deadline_days": 0})",
       [](Policy& p) { p.hazard_deadline_days = 0; }},
      {"contacts deleted at once", R"({"contact_retention_days": 0})",
       [](Policy& p) { p.contact_retention_days = 0; }},
      {"positions kept a year", R"({"position_retention_days": 365})",
       [](Policy& p) { p.position_retention_days = 365; }},
      {"zone exits alerted at the second position outside", R"({"zone_exit_minutes": 0})",
       [](Policy& p) { p.zone_exit_minutes = 0; }},
      {"handovers within a metre", R"({"handover_max_distance_m": 1})",
       [](Policy& p) { p.handover_max_distance_m = 1; }},
      {"positions expected every minute", R"({"no_position_minutes": 1})",
       [](Policy& p) { p.no_position_minutes = 1; }},
      {"the documented example",
       R"({"time_zone": {"name": "Asia/Shanghai", "utc_offset_minutes": 480},
           "models": {"YSP35.5": {"inspection_interval_years": 4, "min_fill_kg": 14.1,
                                  "max_fill_kg": 14.9, "phase": "gas"}},
           "design_life": {"default_years": 8, "before_cutover_years": 15, "cutover": "2007-02"},
           "life_extension_max_years": 4, "tare_tolerance_kg": 0.3,
           "clone_window_minutes": 60})",
       [](Policy&) {}},
      {"everything changed",
       R"({"time_zone": {"name": "Asia/Urumqi", "utc_offset_minutes": 360},
           "models": {"YSP26.2": {"inspection_interval_years": 5, "min_fill_kg": 10.5,
                                  "max_fill_kg": 10.9}},
           "design_life": {"default_years": 9, "before_cutover_years": 16, "cutover": "2008-01"},
           "life_extension_max_years": 2, "tare_tolerance_kg": 0.25,
           "clone_window_minutes": 90})",
       [](Policy& p) {
         p.time_zone = "Asia/Urumqi";
         p.utc_offset_minutes = 360;
         p.models.at("YSP26.2").inspection_interval_years = 5;
         p.models.at("YSP26.2").min_fill_kg = 10.5;
         p.models.at("YSP26.2").max_fill_kg = 10.9;
         p.design_life_years = 9;
         p.design_life_years_before = 16;
         p.design_life_cutover = YearMonth{2008, 1};
         p.life_extension_max_years = 2;
         p.tare_tolerance_kg = 0.25;
         p.clone_window_minutes = 90;
       }},
  };
  for (const OverrideRow& row : rows) {
    PINGMA_ROW(row.name);
    const Result<Policy> parsed = ParsePolicy(row.json);
    CHECK_MESSAGE(parsed.ok(), parsed.status().ToString());
    if (!parsed.ok()) continue;
    Policy expected = Policy::Defaults();
    row.change(expected);
    CheckSamePolicy(*parsed, expected);
  }
}

struct ErrorRow {
  const char* name;
  const char* json;
  StatusCode code;
  std::vector<const char*> names;  // the message names at least one of these
};

TEST_CASE("ParsePolicy: errors name the offending key") {
  const std::vector<ErrorRow> rows = {
      // Unparseable JSON.
      {"not JSON", "not json", StatusCode::kMalformed, {}},
      {"empty text", "", StatusCode::kMalformed, {}},
      {"unclosed object", R"({"tare_tolerance_kg": 0.3)", StatusCode::kMalformed, {}},
      {"trailing comma", R"({"tare_tolerance_kg": 0.3,})", StatusCode::kMalformed, {}},
      {"single quotes", "{'tare_tolerance_kg': 0.3}", StatusCode::kMalformed, {}},
      // Parsed, but not a policy.
      {"an array", "[]", StatusCode::kInvalid, {}},
      {"a number", "42", StatusCode::kInvalid, {}},
      // Unknown keys.
      {"unknown top-level key",
       R"({"tare_tolerance": 0.3})",
       StatusCode::kInvalid,
       {"tare_tolerance"}},
      {"unknown time zone key", R"({"time_zone": {"nam": "UTC"}})", StatusCode::kInvalid, {"nam"}},
      {"unknown model key",
       R"({"models": {"YSP35.5": {"max_fill": 14.9}}})",
       StatusCode::kInvalid,
       {"max_fill"}},
      {"unknown design life key",
       R"({"design_life": {"default": 8}})",
       StatusCode::kInvalid,
       {"default"}},
      // Wrong types.
      {"tolerance as a string",
       R"({"tare_tolerance_kg": "0.3"})",
       StatusCode::kInvalid,
       {"tare_tolerance_kg"}},
      {"clone window as a string",
       R"({"clone_window_minutes": "60"})",
       StatusCode::kInvalid,
       {"clone_window_minutes"}},
      {"clone window as a fraction",
       R"({"clone_window_minutes": 60.5})",
       StatusCode::kInvalid,
       {"clone_window_minutes"}},
      {"regulator life of zero",
       R"({"regulator_service_life_years": 0})",
       StatusCode::kInvalid,
       {"regulator_service_life_years"}},
      {"negative hazard deadline",
       R"({"hazard_deadline_days": -1})",
       StatusCode::kInvalid,
       {"hazard_deadline_days"}},
      {"negative contact retention",
       R"({"contact_retention_days": -1})",
       StatusCode::kInvalid,
       {"contact_retention_days"}},
      {"negative zone exit",
       R"({"zone_exit_minutes": -1})",
       StatusCode::kInvalid,
       {"zone_exit_minutes"}},
      {"handover distance of zero",
       R"({"handover_max_distance_m": 0})",
       StatusCode::kInvalid,
       {"handover_max_distance_m"}},
      {"no position window of zero",
       R"({"no_position_minutes": 0})",
       StatusCode::kInvalid,
       {"no_position_minutes"}},
      {"position retention as a string",
       R"({"position_retention_days": "183"})",
       StatusCode::kInvalid,
       {"position_retention_days"}},
      {"extension as a string",
       R"({"life_extension_max_years": "4"})",
       StatusCode::kInvalid,
       {"life_extension_max_years"}},
      {"time zone as a string",
       R"({"time_zone": "Asia/Shanghai"})",
       StatusCode::kInvalid,
       {"time_zone"}},
      {"zone name as a number", R"({"time_zone": {"name": 8}})", StatusCode::kInvalid, {"name"}},
      {"offset as a string",
       R"({"time_zone": {"utc_offset_minutes": "480"}})",
       StatusCode::kInvalid,
       {"utc_offset_minutes"}},
      {"models as an array", R"({"models": []})", StatusCode::kInvalid, {"models"}},
      {"a model as a number", R"({"models": {"YSP35.5": 4}})", StatusCode::kInvalid, {"YSP35.5"}},
      {"min fill as a string",
       R"({"models": {"YSP35.5": {"min_fill_kg": "14.1"}}})",
       StatusCode::kInvalid,
       {"min_fill_kg"}},
      {"interval as a fraction",
       R"({"models": {"YSP35.5": {"inspection_interval_years": 4.5}}})",
       StatusCode::kInvalid,
       {"inspection_interval_years"}},
      {"unknown phase",
       R"({"models": {"YSP35.5": {"phase": "plasma"}}})",
       StatusCode::kInvalid,
       {"phase"}},
      {"design life as a number", R"({"design_life": 8})", StatusCode::kInvalid, {"design_life"}},
      {"default years as a string",
       R"({"design_life": {"default_years": "8"}})",
       StatusCode::kInvalid,
       {"default_years"}},
      {"cutover as a number",
       R"({"design_life": {"cutover": 2007}})",
       StatusCode::kInvalid,
       {"cutover"}},
      {"cutover month 13",
       R"({"design_life": {"cutover": "2007-13"}})",
       StatusCode::kInvalid,
       {"cutover"}},
      {"cutover as a full date",
       R"({"design_life": {"cutover": "2007-02-01"}})",
       StatusCode::kInvalid,
       {"cutover"}},
      {"empty phase", R"({"models": {"YSP35.5": {"phase": ""}}})", StatusCode::kInvalid, {"phase"}},
      {"empty cutover", R"({"design_life": {"cutover": ""}})", StatusCode::kInvalid, {"cutover"}},
      {"clone window beyond a 32-bit int (2^32 + 60)",
       R"({"clone_window_minutes": 4294967356})",
       StatusCode::kInvalid,
       {"clone_window_minutes"}},
      {"interval beyond a 32-bit int (2^32 + 4)",
       R"({"models": {"YSP35.5": {"inspection_interval_years": 4294967300}}})",
       StatusCode::kInvalid,
       {"inspection_interval_years"}},
      {"null document", "null", StatusCode::kInvalid, {}},
      // Impossible figures.
      {"offset beyond 14 hours",
       R"({"time_zone": {"utc_offset_minutes": 900}})",
       StatusCode::kInvalid,
       {"utc_offset_minutes"}},
      {"negative tare tolerance",
       R"({"tare_tolerance_kg": -0.1})",
       StatusCode::kInvalid,
       {"tare_tolerance_kg"}},
      {"negative clone window",
       R"({"clone_window_minutes": -1})",
       StatusCode::kInvalid,
       {"clone_window_minutes"}},
      {"zero fill",
       R"({"models": {"YSP35.5": {"min_fill_kg": 0}}})",
       StatusCode::kInvalid,
       {"min_fill_kg"}},
      {"min above max",
       R"({"models": {"YSP35.5": {"min_fill_kg": 15.0}}})",
       StatusCode::kInvalid,
       {"min_fill_kg", "max_fill_kg"}},
      {"max below min",
       R"({"models": {"YSP35.5": {"max_fill_kg": 14.0}}})",
       StatusCode::kInvalid,
       {"min_fill_kg", "max_fill_kg"}},
      {"new model min above max",
       R"({"models": {"YSP5": {"inspection_interval_years": 4, "min_fill_kg": 2.1,
           "max_fill_kg": 2.0}}})",
       StatusCode::kInvalid,
       {"min_fill_kg", "max_fill_kg"}},
      {"interval zero",
       R"({"models": {"YSP35.5": {"inspection_interval_years": 0}}})",
       StatusCode::kInvalid,
       {"inspection_interval_years"}},
      {"interval negative",
       R"({"models": {"YSP35.5": {"inspection_interval_years": -1}}})",
       StatusCode::kInvalid,
       {"inspection_interval_years"}},
      // A new model must give every figure.
      {"new model without interval",
       R"({"models": {"YSP5": {"min_fill_kg": 1.9, "max_fill_kg": 2.0}}})",
       StatusCode::kInvalid,
       {"inspection_interval_years"}},
      {"new model without min",
       R"({"models": {"YSP5": {"inspection_interval_years": 4, "max_fill_kg": 2.0}}})",
       StatusCode::kInvalid,
       {"min_fill_kg"}},
      {"new model without max",
       R"({"models": {"YSP5": {"inspection_interval_years": 4, "min_fill_kg": 1.9}}})",
       StatusCode::kInvalid,
       {"max_fill_kg"}},
      {"new model with only a phase",
       R"({"models": {"YSP5": {"phase": "gas"}}})",
       StatusCode::kInvalid,
       {"inspection_interval_years", "min_fill_kg", "max_fill_kg"}},
  };
  for (const ErrorRow& row : rows) {
    PINGMA_ROW(row.name);
    PINGMA_ROW(row.json);
    const Result<Policy> parsed = ParsePolicy(row.json);
    CHECK_FALSE(parsed.ok());
    if (parsed.ok()) continue;
    const Status status = parsed.status();
    CAPTURE(status.ToString());
    CHECK(status.code() == row.code);
    CHECK_FALSE(status.message().empty());
    if (!row.names.empty()) {
      bool named = false;
      for (const char* key : row.names) {
        named = named || status.message().find(key) != std::string::npos;
      }
      CHECK_MESSAGE(named, "the message names none of the expected keys");
    }
  }
}

TEST_CASE("PolicyToJson round-trips through ParsePolicy") {
  struct Row {
    const char* name;
    std::function<void(Policy&)> change;
  };
  const std::vector<Row> rows = {
      {"defaults", [](Policy&) {}},
      {"every figure changed",
       [](Policy& p) {
         p.time_zone = "Asia/Urumqi";
         p.utc_offset_minutes = 360;
         p.design_life_years = 9;
         p.design_life_years_before = 16;
         p.design_life_cutover = YearMonth{2008, 1};
         p.life_extension_max_years = 2;
         p.tare_tolerance_kg = 0.25;
         p.clone_window_minutes = 90;
         p.models.at("YSP35.5").max_fill_kg = 14.8;
         p.models.at("YSP118").default_phase = Phase::kLiquid;
         p.models["YSP5"] = ModelRule{5, 1.9, 2.0, Phase::kGas};
       }},
      {"negative offset", [](Policy& p) { p.utc_offset_minutes = -300; }},
  };
  for (const Row& row : rows) {
    PINGMA_ROW(row.name);
    Policy original = Policy::Defaults();
    row.change(original);
    const std::string json = PolicyToJson(original);
    CAPTURE(json);
    for (const char* key :
         {"time_zone", "utc_offset_minutes", "models", "design_life", "cutover",
          "life_extension_max_years", "tare_tolerance_kg", "clone_window_minutes"}) {
      CHECK(json.find(key) != std::string::npos);
    }
    const Result<Policy> parsed = ParsePolicy(json);
    CHECK_MESSAGE(parsed.ok(), parsed.status().ToString());
    if (!parsed.ok()) continue;
    CheckSamePolicy(*parsed, original);
  }
}

TEST_CASE("LoadPolicyFile reads a file and reports a missing one") {
  namespace fs = std::filesystem;
  const fs::path path = fs::temp_directory_path() / "pingma_policy_file_test.json";
  {
    std::ofstream out(path);
    out << R"({"clone_window_minutes": 45, "models": {"YSP12": {"max_fill_kg": 4.9}}})";
  }
  const Result<Policy> loaded = LoadPolicyFile(path.string());
  std::error_code ignored;
  fs::remove(path, ignored);
  REQUIRE(loaded.ok());
  Policy expected = Policy::Defaults();
  expected.clone_window_minutes = 45;
  expected.models.at("YSP12").max_fill_kg = 4.9;
  CheckSamePolicy(*loaded, expected);

  const std::string missing = (fs::temp_directory_path() / "pingma_no_such_policy.json").string();
  const Result<Policy> absent = LoadPolicyFile(missing);
  REQUIRE_FALSE(absent.ok());
  CHECK(absent.status().message().find("pingma_no_such_policy.json") != std::string::npos);

  const fs::path bad = fs::temp_directory_path() / "pingma_policy_file_test_bad.json";
  {
    std::ofstream out(bad);
    out << R"({"tare_tolerance": 0.3})";
  }
  const Result<Policy> invalid = LoadPolicyFile(bad.string());
  fs::remove(bad, ignored);
  REQUIRE_FALSE(invalid.ok());
  CHECK(invalid.status().code() == StatusCode::kInvalid);
  CHECK(invalid.status().message().find("tare_tolerance") != std::string::npos);
}

}  // namespace
}  // namespace pingma
