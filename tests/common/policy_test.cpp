// Table-driven tests of the policy engine (policy.h) against shared/spec/DOMAIN.md.
//
// Every refill rule is tested at its boundary (the day before, of and after), each
// model's filling limits, each defect class, and combinations. Each row starts from
// AllowedInput(), a fill that every rule allows, and changes one thing.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "pingma/common/domain.h"
#include "pingma/common/policy.h"

// Names a table row in failure reports (doctest prints a bare char* as a pointer).
#define PINGMA_ROW(x) INFO(#x " = ", std::string(x))

namespace doctest {
template <>
struct StringMaker<pingma::Date> {
  static String convert(const pingma::Date& d) { return d.ToString().c_str(); }
};
template <>
struct StringMaker<std::optional<pingma::Date>> {
  static String convert(const std::optional<pingma::Date>& d) {
    return d ? d->ToString().c_str() : "nullopt";
  }
};
}  // namespace doctest

namespace pingma {
namespace {

// --- Oracles independent of the code under test --------------------------------

constexpr std::int64_t kMsPerMinute = 60'000;
constexpr std::int64_t kMsPerDay = 86'400'000;

std::int64_t DaysFromCivil(int y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

Instant Utc(int y, int mo, int d, int h = 0, int mi = 0, int s = 0, int ms = 0) {
  return Instant{DaysFromCivil(y, mo, d) * kMsPerDay + ((h * 60 + mi) * 60 + s) * 1000LL + ms};
}

/// Noon in Shanghai (04:00 UTC) of a civil day.
Instant ShanghaiNoon(int y, int mo, int d) {
  return Utc(y, mo, d, 4);
}

Instant MinusMs(Instant t, std::int64_t ms) {
  return Instant{t.unix_ms - ms};
}

Date D(int y, int m, int d) {
  return Date::FromCivil(y, m, d);
}

// API.md spellings, in ReasonCode order.
const char* const kReasonNames[] = {
    "UNKNOWN_CODE",           "NOT_OWNED",
    "INSPECTION_OVERDUE",     "INSPECTION_FAILED",
    "SERVICE_LIFE_EXCEEDED",  "ASSESSMENT_FAILED",
    "DUAL_PHASE_BANNED",      "RECALLED",
    "SCRAP_PENDING",          "SCRAPPED",
    "DEFECT_FOUND",           "TARE_MISMATCH",
    "CLONE_SUSPECTED",        "STATION_LICENSE_INVALID",
    "OPERATOR_NOT_CERTIFIED",
};
constexpr int kReasonCount = 15;

std::string Names(std::vector<ReasonCode> codes, bool sort = false) {
  if (sort) std::sort(codes.begin(), codes.end());
  std::string out = "[";
  for (size_t i = 0; i < codes.size(); ++i) {
    if (i > 0) out += ", ";
    const int index = static_cast<int>(codes[i]);
    out += index >= 0 && index < kReasonCount ? kReasonNames[index] : "?";
  }
  return out + "]";
}

std::vector<ReasonCode> CodesOf(const FillDecision& d) {
  std::vector<ReasonCode> codes;
  for (const Reason& r : d.reasons) codes.push_back(r.code);
  return codes;
}

// --- The baseline: a fill that every rule allows ---------------------------------

const Date kToday = D(2026, 6, 30);  // a month end, so manufacture boundaries fall on it
const Instant kNow = ShanghaiNoon(2026, 6, 30);
const char* const kMaker = "Hebei Example Cylinder Co.";

Cylinder ValidCylinder() {
  Cylinder c;
  c.code = "HB0100000123";
  c.model = "YSP35.5";
  c.phase = Phase::kGas;
  c.manufacturer = kMaker;
  c.serial = "A2301-0042";
  c.manufactured = YearMonth{2023, 1};
  c.tare_kg = 16.4;
  c.registration_no = "冀A0001";
  c.owner_company_id = "CO-A";
  c.last_inspection = D(2023, 1, 15);  // next due 2027-01-15
  c.last_inspection_result = InspectionResult::kPass;
  c.state = CylinderState::kActive;
  return c;
}

FillCheckInput AllowedInput() {
  FillCheckInput in;
  in.cylinder = ValidCylinder();
  in.station.id = "ST-01";
  in.station.company_id = "CO-A";
  in.station.license = FillingLicense{"TS4213001-2027", D(2027, 12, 31), false};
  in.operator_facts = OperatorFacts{"OP-7", Certificate{"CERT-7", D(2027, 12, 31)}};
  in.empty_gross_kg = 16.9;  // 0.5 kg residual
  in.recalls.push_back(Recall{"Other Cylinder Works", std::nullopt, std::nullopt, "weld"});
  in.now = kNow;
  return in;
}

Cylinder& Cyl(FillCheckInput& in) {
  return *in.cylinder;
}

// --- Vocabulary ------------------------------------------------------------------

TEST_CASE("ReasonCode strings are the API.md spellings and parse back") {
  for (int i = 0; i < kReasonCount; ++i) {
    const auto code = static_cast<ReasonCode>(i);
    PINGMA_ROW(kReasonNames[i]);
    CHECK(std::string(ToString(code)) == kReasonNames[i]);
    const Result<ReasonCode> parsed = ParseReasonCode(kReasonNames[i]);
    CHECK(parsed.ok());
    if (!parsed.ok()) continue;
    CHECK(*parsed == code);
    CHECK(std::string(TitleZh(code)).size() > 0);
    CHECK(std::string(TitleEn(code)).size() > 0);
  }
  CHECK_FALSE(ParseReasonCode("NOT_A_REASON").ok());
}

struct DefectRow {
  const char* name;
  Defect defect;
  bool scrap_class;
};

const std::vector<DefectRow> kDefectRows = {
    {"dent", Defect::kDent, false},
    {"corrosion", Defect::kCorrosion, false},
    {"valve_fault", Defect::kValveFault, false},
    {"shroud_loose", Defect::kShroudLoose, false},
    {"no_residual_pressure", Defect::kNoResidualPressure, false},
    {"fire_damage", Defect::kFireDamage, true},
    {"crack_or_bulge", Defect::kCrackOrBulge, true},
    {"threaded_shroud", Defect::kThreadedShroud, true},
    {"refurbished", Defect::kRefurbished, true},
    {"stamp_illegible", Defect::kStampIllegible, true},
};

TEST_CASE("Defect vocabulary and scrap classes") {
  for (const DefectRow& row : kDefectRows) {
    PINGMA_ROW(row.name);
    CHECK(std::string(ToString(row.defect)) == row.name);
    const Result<Defect> parsed = ParseDefect(row.name);
    CHECK(parsed.ok());
    if (!parsed.ok()) continue;
    CHECK(*parsed == row.defect);
    CHECK(IsScrapClass(row.defect) == row.scrap_class);
  }
  CHECK_FALSE(ParseDefect("scratched").ok());
}

TEST_CASE("Phase, CylinderState and InspectionResult spellings") {
  CHECK(std::string(ToString(Phase::kGas)) == "gas");
  CHECK(std::string(ToString(Phase::kLiquid)) == "liquid");
  CHECK(std::string(ToString(Phase::kDual)) == "dual");
  CHECK(std::string(ToString(CylinderState::kActive)) == "active");
  CHECK(std::string(ToString(CylinderState::kScrapPending)) == "scrap_pending");
  CHECK(std::string(ToString(CylinderState::kScrapped)) == "scrapped");
  CHECK(std::string(ToString(InspectionResult::kPass)) == "pass");
  CHECK(std::string(ToString(InspectionResult::kFail)) == "fail");
  for (Phase p : {Phase::kGas, Phase::kLiquid, Phase::kDual}) {
    const Result<Phase> parsed = ParsePhase(ToString(p));
    CHECK(parsed.ok());
    if (!parsed.ok()) continue;
    CHECK(*parsed == p);
  }
  for (CylinderState s :
       {CylinderState::kActive, CylinderState::kScrapPending, CylinderState::kScrapped}) {
    const Result<CylinderState> parsed = ParseCylinderState(ToString(s));
    CHECK(parsed.ok());
    if (!parsed.ok()) continue;
    CHECK(*parsed == s);
  }
  for (InspectionResult r : {InspectionResult::kPass, InspectionResult::kFail}) {
    const Result<InspectionResult> parsed = ParseInspectionResult(ToString(r));
    CHECK(parsed.ok());
    if (!parsed.ok()) continue;
    CHECK(*parsed == r);
  }
  CHECK_FALSE(ParsePhase("plasma").ok());
  CHECK_FALSE(ParseCylinderState("lost").ok());
  CHECK_FALSE(ParseInspectionResult("maybe").ok());
}

// --- Policy::Defaults --------------------------------------------------------------

struct ModelRow {
  const char* model;
  double min_kg;
  double max_kg;
  double target_kg;
  int interval_years;
  double tare_kg;  // a plausible stamped tare, for fills of this model
};

const std::vector<ModelRow> kModelRows = {
    {"YSP4.7", 1.8, 1.9, 1.85, 4, 5.2},     {"YSP12", 4.8, 5.0, 4.9, 4, 10.5},
    {"YSP26.2", 10.6, 11.0, 10.8, 4, 13.0}, {"YSP35.5", 14.1, 14.9, 14.5, 4, 16.4},
    {"YSP118", 48.5, 49.5, 49.0, 3, 46.0},  {"YSP118-II", 48.5, 49.5, 49.0, 3, 46.0},
};

TEST_CASE("Policy::Defaults holds DOMAIN.md's figures") {
  const Policy p = Policy::Defaults();
  CHECK(p.time_zone == "Asia/Shanghai");
  CHECK(p.utc_offset_minutes == 480);
  CHECK(p.design_life_years == 8);
  CHECK(p.design_life_years_before == 15);
  CHECK(p.design_life_cutover == YearMonth{2007, 2});
  CHECK(p.life_extension_max_years == 4);
  CHECK(p.tare_tolerance_kg == doctest::Approx(0.3));
  CHECK(p.clone_window_minutes == 60);
  CHECK(p.models.size() == kModelRows.size());
  for (const ModelRow& row : kModelRows) {
    PINGMA_ROW(row.model);
    const ModelRule* rule = p.FindModel(row.model);
    CHECK(rule != nullptr);
    if (rule == nullptr) continue;
    CHECK(rule->inspection_interval_years == row.interval_years);
    CHECK(rule->min_fill_kg == doctest::Approx(row.min_kg));
    CHECK(rule->max_fill_kg == doctest::Approx(row.max_kg));
  }
  CHECK(p.FindModel("YSP35.5")->default_phase == Phase::kGas);
  CHECK(p.FindModel("YSP118-II")->default_phase == Phase::kDual);
  CHECK(p.FindModel("YSP50") == nullptr);
  CHECK(p.FindModel("") == nullptr);
}

// --- The baseline ---------------------------------------------------------------

TEST_CASE("baseline: AllowedInput() is allowed") {
  const Policy policy = Policy::Defaults();
  const FillDecision d = DecideFill(policy, AllowedInput());
  CHECK(Names(CodesOf(d)) == "[]");
  CHECK(d.allowed());
  CHECK_FALSE(d.flags_for_scrap());
  CHECK(d.scrap_reasons.empty());
  CHECK(d.today == kToday);
  CHECK(d.next_inspection_due == std::optional<Date>(D(2027, 1, 15)));
  CHECK(d.service_life_end == std::optional<Date>(D(2031, 1, 31)));
  REQUIRE(d.fill.has_value());
  CHECK(d.fill->tare_kg == doctest::Approx(16.4));
  CHECK(d.fill->min_kg == doctest::Approx(14.1));
  CHECK(d.fill->max_kg == doctest::Approx(14.9));
  CHECK(d.fill->target_kg == doctest::Approx(14.5));
  for (int i = 0; i < kReasonCount; ++i) CHECK_FALSE(d.Has(static_cast<ReasonCode>(i)));
}

// --- The rule table ---------------------------------------------------------------

using Setup = std::function<void(Policy&, FillCheckInput&)>;

struct RuleRow {
  std::string name;
  Setup setup;
  std::vector<ReasonCode> reasons;  // exactly these, in ReasonCode order
  std::vector<ReasonCode> scrap;    // exactly these (any order)
};

using R = ReasonCode;
const std::vector<ReasonCode> kNone = {};

/// A custody agreement from CO-A to CO-B, for a station of CO-B.
Setup CustodyRow(Date from, Date until) {
  return [from, until](Policy&, FillCheckInput& in) {
    in.station.company_id = "CO-B";
    in.custody.push_back(CustodyAgreement{"CO-A", "CO-B", from, until});
  };
}

/// A cylinder of another model, with a consistent tare and empty weight.
void SetModel(FillCheckInput& in, const char* model, double tare_kg) {
  Cyl(in).model = model;
  Cyl(in).tare_kg = tare_kg;
  in.empty_gross_kg = tare_kg + 0.5;
}

Setup RecallRow(const char* maker, std::optional<YearMonth> from, std::optional<YearMonth> to) {
  return [maker, from, to](Policy&, FillCheckInput& in) {
    in.recalls.push_back(Recall{maker, from, to, "bad weld batch"});
  };
}

Setup SightingRow(const char* station, std::int64_t ms_ago) {
  return [station, ms_ago](Policy&, FillCheckInput& in) {
    in.last_check = Sighting{station, MinusMs(in.now, ms_ago)};
  };
}

std::vector<RuleRow> RuleRows() {
  std::vector<RuleRow> rows = {
      // --- UNKNOWN_CODE: station and operator rules still apply -------------------
      {"unknown code", [](Policy&, FillCheckInput& in) { in.cylinder.reset(); },
       {R::kUnknownCode}, kNone},
      {"unknown code at a locked station",
       [](Policy&, FillCheckInput& in) {
         in.cylinder.reset();
         in.station.locked = true;
         in.station.lock_reason = "regulator order";
       },
       {R::kUnknownCode, R::kStationLicenseInvalid}, kNone},
      {"unknown code, operator not registered",
       [](Policy&, FillCheckInput& in) {
         in.cylinder.reset();
         in.operator_facts.reset();
       },
       {R::kUnknownCode, R::kOperatorNotCertified}, kNone},
      {"unknown code, licence and certificate expired yesterday",
       [](Policy&, FillCheckInput& in) {
         in.cylinder.reset();
         in.station.license->valid_until = kToday.AddDays(-1);
         in.operator_facts->certificate->valid_until = kToday.AddDays(-1);
       },
       {R::kUnknownCode, R::kStationLicenseInvalid, R::kOperatorNotCertified}, kNone},

      // --- NOT_OWNED -----------------------------------------------------------------
      {"station of another company, no custody",
       [](Policy&, FillCheckInput& in) { in.station.company_id = "CO-B"; }, {R::kNotOwned},
       kNone},
      {"custody starts tomorrow", CustodyRow(kToday.AddDays(1), kToday.AddDays(365)),
       {R::kNotOwned}, kNone},
      {"custody starts today", CustodyRow(kToday, kToday.AddDays(365)), kNone, kNone},
      {"custody started yesterday", CustodyRow(kToday.AddDays(-1), kToday.AddDays(365)), kNone,
       kNone},
      {"custody ended yesterday", CustodyRow(kToday.AddDays(-365), kToday.AddDays(-1)),
       {R::kNotOwned}, kNone},
      {"custody ends today", CustodyRow(kToday.AddDays(-365), kToday), kNone, kNone},
      {"custody ends tomorrow", CustodyRow(kToday.AddDays(-365), kToday.AddDays(1)), kNone,
       kNone},
      {"custody of a single day, today", CustodyRow(kToday, kToday), kNone, kNone},
      {"custody from another owner",
       [](Policy&, FillCheckInput& in) {
         in.station.company_id = "CO-B";
         in.custody.push_back(CustodyAgreement{"CO-C", "CO-B", D(2020, 1, 1), D(2030, 1, 1)});
       },
       {R::kNotOwned}, kNone},
      {"custody to another custodian",
       [](Policy&, FillCheckInput& in) {
         in.station.company_id = "CO-B";
         in.custody.push_back(CustodyAgreement{"CO-A", "CO-C", D(2020, 1, 1), D(2030, 1, 1)});
       },
       {R::kNotOwned}, kNone},
      {"custody the wrong way round",
       [](Policy&, FillCheckInput& in) {
         in.station.company_id = "CO-B";
         in.custody.push_back(CustodyAgreement{"CO-B", "CO-A", D(2020, 1, 1), D(2030, 1, 1)});
       },
       {R::kNotOwned}, kNone},
      {"an expired and a current custody agreement",
       [](Policy&, FillCheckInput& in) {
         in.station.company_id = "CO-B";
         in.custody.push_back(CustodyAgreement{"CO-A", "CO-B", D(2020, 1, 1), D(2021, 1, 1)});
         in.custody.push_back(CustodyAgreement{"CO-A", "CO-B", D(2026, 1, 1), D(2026, 12, 31)});
       },
       kNone, kNone},
      {"own station, unrelated custody listed",
       [](Policy&, FillCheckInput& in) {
         in.custody.push_back(CustodyAgreement{"CO-X", "CO-Y", D(2020, 1, 1), D(2021, 1, 1)});
       },
       kNone, kNone},

      // --- INSPECTION_OVERDUE ----------------------------------------------------
      {"recorded due yesterday",
       [](Policy&, FillCheckInput& in) { Cyl(in).next_inspection_due = kToday.AddDays(-1); },
       {R::kInspectionOverdue}, kNone},
      {"recorded due today",
       [](Policy&, FillCheckInput& in) { Cyl(in).next_inspection_due = kToday; }, kNone,
       kNone},
      {"recorded due tomorrow",
       [](Policy&, FillCheckInput& in) { Cyl(in).next_inspection_due = kToday.AddDays(1); },
       kNone, kNone},
      {"recorded due (past) wins over a recent inspection",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).last_inspection = D(2026, 1, 1);
         Cyl(in).next_inspection_due = kToday.AddDays(-1);
       },
       {R::kInspectionOverdue}, kNone},
      {"recorded due (future) wins over an old inspection",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).last_inspection = D(2015, 1, 1);
         Cyl(in).next_inspection_due = kToday.AddDays(1);
       },
       kNone, kNone},
      {"last inspection + 4 years was yesterday",
       [](Policy&, FillCheckInput& in) { Cyl(in).last_inspection = D(2022, 6, 29); },
       {R::kInspectionOverdue}, kNone},
      {"last inspection + 4 years is today",
       [](Policy&, FillCheckInput& in) { Cyl(in).last_inspection = D(2022, 6, 30); }, kNone,
       kNone},
      {"last inspection + 4 years is tomorrow",
       [](Policy&, FillCheckInput& in) { Cyl(in).last_inspection = D(2022, 7, 1); }, kNone,
       kNone},
      {"never inspected, made 2022-05: due 2026-05-31",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).manufactured = YearMonth{2022, 5};
         Cyl(in).last_inspection.reset();
         Cyl(in).last_inspection_result.reset();
       },
       {R::kInspectionOverdue}, kNone},
      {"never inspected, made 2022-06: due 2026-06-30 (today)",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).manufactured = YearMonth{2022, 6};
         Cyl(in).last_inspection.reset();
         Cyl(in).last_inspection_result.reset();
       },
       kNone, kNone},
      {"never inspected, made 2022-06: due 2026-06-30, now 2026-07-01",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).manufactured = YearMonth{2022, 6};
         Cyl(in).last_inspection.reset();
         Cyl(in).last_inspection_result.reset();
         in.now = ShanghaiNoon(2026, 7, 1);
       },
       {R::kInspectionOverdue}, kNone},
      {"never inspected, made 2022-07: due 2026-07-31",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).manufactured = YearMonth{2022, 7};
         Cyl(in).last_inspection.reset();
         Cyl(in).last_inspection_result.reset();
       },
       kNone, kNone},
      {"due today: 15:59:59.999Z is still today in Shanghai",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).next_inspection_due = D(2026, 3, 31);
         in.now = Utc(2026, 3, 31, 15, 59, 59, 999);
       },
       kNone, kNone},
      {"due yesterday: 16:00Z is already 2026-04-01 in Shanghai",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).next_inspection_due = D(2026, 3, 31);
         in.now = Utc(2026, 3, 31, 16);
       },
       {R::kInspectionOverdue}, kNone},
      {"due today in UTC when the policy zone is UTC",
       [](Policy& p, FillCheckInput& in) {
         p.time_zone = "UTC";
         p.utc_offset_minutes = 0;
         Cyl(in).next_inspection_due = D(2026, 3, 31);
         in.now = Utc(2026, 3, 31, 16);
       },
       kNone, kNone},
      {"YSP118: last inspection + 3 years was yesterday",
       [](Policy&, FillCheckInput& in) {
         SetModel(in, "YSP118", 46.0);
         Cyl(in).last_inspection = D(2023, 6, 29);
       },
       {R::kInspectionOverdue}, kNone},
      {"YSP118: last inspection + 3 years is today",
       [](Policy&, FillCheckInput& in) {
         SetModel(in, "YSP118", 46.0);
         Cyl(in).last_inspection = D(2023, 6, 30);
       },
       kNone, kNone},
      {"YSP118-II (dual): last inspection + 3 years was yesterday",
       [](Policy&, FillCheckInput& in) {
         SetModel(in, "YSP118-II", 46.0);
         Cyl(in).phase = Phase::kDual;
         Cyl(in).last_inspection = D(2023, 6, 29);
       },
       {R::kInspectionOverdue, R::kDualPhaseBanned}, {R::kDualPhaseBanned}},
      {"YSP12: last inspection + 4 years was yesterday",
       [](Policy&, FillCheckInput& in) {
         SetModel(in, "YSP12", 10.5);
         Cyl(in).last_inspection = D(2022, 6, 29);
       },
       {R::kInspectionOverdue}, kNone},
      {"policy interval 5: last inspection + 5 years is today",
       [](Policy& p, FillCheckInput& in) {
         p.models.at("YSP35.5").inspection_interval_years = 5;
         Cyl(in).last_inspection = D(2021, 6, 30);
       },
       kNone, kNone},
      {"policy interval 5: last inspection + 5 years was yesterday",
       [](Policy& p, FillCheckInput& in) {
         p.models.at("YSP35.5").inspection_interval_years = 5;
         Cyl(in).last_inspection = D(2021, 6, 29);
       },
       {R::kInspectionOverdue}, kNone},

      // --- INSPECTION_FAILED -----------------------------------------------------
      {"last inspection failed",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).last_inspection_result = InspectionResult::kFail;
       },
       {R::kInspectionFailed}, {R::kInspectionFailed}},
      {"no inspection result recorded",
       [](Policy&, FillCheckInput& in) { Cyl(in).last_inspection_result.reset(); }, kNone,
       kNone},

      // --- SERVICE_LIFE_EXCEEDED -------------------------------------------------
      {"made 2018-06: 8-year life ends today",
       [](Policy&, FillCheckInput& in) { Cyl(in).manufactured = YearMonth{2018, 6}; }, kNone,
       kNone},
      {"made 2018-05: life ended 2026-05-31",
       [](Policy&, FillCheckInput& in) { Cyl(in).manufactured = YearMonth{2018, 5}; },
       {R::kServiceLifeExceeded}, {R::kServiceLifeExceeded}},
      {"made 2018-06: life ended yesterday (now 2026-07-01)",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).manufactured = YearMonth{2018, 6};
         in.now = ShanghaiNoon(2026, 7, 1);
       },
       {R::kServiceLifeExceeded}, {R::kServiceLifeExceeded}},
      {"made 2018-06 at 2026-06-30T15:59:59.999Z (still the last day in Shanghai)",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).manufactured = YearMonth{2018, 6};
         in.now = Utc(2026, 6, 30, 15, 59, 59, 999);
       },
       kNone, kNone},
      {"made 2018-06 at 2026-06-30T16:00Z (2026-07-01 in Shanghai)",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).manufactured = YearMonth{2018, 6};
         in.now = Utc(2026, 6, 30, 16);
       },
       {R::kServiceLifeExceeded}, {R::kServiceLifeExceeded}},
      {"made 2007-01 (before cutover, 15 years), on 2015-03-01",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).manufactured = YearMonth{2007, 1};
         in.now = ShanghaiNoon(2015, 3, 1);
       },
       kNone, kNone},
      {"made 2007-02 (cutover, 8 years: ended 2015-02-28), on 2015-03-01",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).manufactured = YearMonth{2007, 2};
         in.now = ShanghaiNoon(2015, 3, 1);
       },
       {R::kServiceLifeExceeded}, {R::kServiceLifeExceeded}},
      {"made 2007-02, on its last day 2015-02-28",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).manufactured = YearMonth{2007, 2};
         in.now = ShanghaiNoon(2015, 2, 28);
       },
       kNone, kNone},
      {"made 2007-01, on its last day 2022-01-31",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).manufactured = YearMonth{2007, 1};
         in.now = ShanghaiNoon(2022, 1, 31);
       },
       kNone, kNone},
      {"made 2007-01, on 2022-02-01",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).manufactured = YearMonth{2007, 1};
         in.now = ShanghaiNoon(2022, 2, 1);
       },
       {R::kServiceLifeExceeded}, {R::kServiceLifeExceeded}},
      {"stamped life 3 years (ended 2026-01-31)",
       [](Policy&, FillCheckInput& in) { Cyl(in).design_life_years = 3; },
       {R::kServiceLifeExceeded}, {R::kServiceLifeExceeded}},
      {"stamped life 20 years, made 2006-06: ends today",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).manufactured = YearMonth{2006, 6};
         Cyl(in).design_life_years = 20;
       },
       kNone, kNone},
      {"stamped life 20 years, made 2006-05: ended 2026-05-31",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).manufactured = YearMonth{2006, 5};
         Cyl(in).design_life_years = 20;
       },
       {R::kServiceLifeExceeded}, {R::kServiceLifeExceeded}},
      {"stamped life 8 years beats the 15 before cutover (made 2006-01)",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).manufactured = YearMonth{2006, 1};
         Cyl(in).design_life_years = 8;
         in.now = ShanghaiNoon(2015, 1, 1);
       },
       {R::kServiceLifeExceeded}, {R::kServiceLifeExceeded}},
      {"passed assessment: +4 years past 2026-05-31",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).manufactured = YearMonth{2018, 5};
         Cyl(in).assessment = Assessment{D(2026, 5, 20), true, std::nullopt};
       },
       kNone, kNone},
      {"passed assessment extends until yesterday",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).manufactured = YearMonth{2018, 5};
         Cyl(in).assessment = Assessment{D(2026, 5, 20), true, kToday.AddDays(-1)};
       },
       {R::kServiceLifeExceeded}, {R::kServiceLifeExceeded}},
      {"passed assessment extends until today",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).manufactured = YearMonth{2018, 5};
         Cyl(in).assessment = Assessment{D(2026, 5, 20), true, kToday};
       },
       kNone, kNone},
      {"failed assessment extends nothing",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).manufactured = YearMonth{2018, 5};
         Cyl(in).assessment = Assessment{D(2026, 5, 20), false, D(2030, 5, 31)};
       },
       {R::kServiceLifeExceeded, R::kAssessmentFailed},
       {R::kServiceLifeExceeded, R::kAssessmentFailed}},

      // --- ASSESSMENT_FAILED (life still running: ends 2031-01-31) ----------------
      {"failed assessment dated tomorrow: not yet in force",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).assessment = Assessment{kToday.AddDays(1), false, std::nullopt};
       },
       kNone, kNone},
      {"failed assessment dated today",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).assessment = Assessment{kToday, false, std::nullopt};
       },
       {R::kAssessmentFailed}, {R::kAssessmentFailed}},
      {"failed assessment dated yesterday",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).assessment = Assessment{kToday.AddDays(-1), false, std::nullopt};
       },
       {R::kAssessmentFailed}, {R::kAssessmentFailed}},
      {"failed assessment today, at 2026-06-29T16:00Z (2026-06-30 in Shanghai)",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).assessment = Assessment{kToday, false, std::nullopt};
         in.now = Utc(2026, 6, 29, 16);
       },
       {R::kAssessmentFailed}, {R::kAssessmentFailed}},
      {"failed assessment today, at 2026-06-29T15:59:59.999Z (still the 29th)",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).assessment = Assessment{kToday, false, std::nullopt};
         in.now = Utc(2026, 6, 29, 15, 59, 59, 999);
       },
       kNone, kNone},
      {"passed assessment dated today blocks nothing",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).assessment = Assessment{kToday, true, std::nullopt};
       },
       kNone, kNone},
      {"passed assessment capped at 4 years (2022-05-31 + 4 < today)",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).manufactured = YearMonth{2014, 5};
         Cyl(in).assessment = Assessment{D(2022, 5, 1), true, D(2030, 1, 1)};
       },
       {R::kServiceLifeExceeded}, {R::kServiceLifeExceeded}},
      {"passed assessment cap reaches today (2022-06-30 + 4)",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).manufactured = YearMonth{2014, 6};
         Cyl(in).assessment = Assessment{D(2022, 6, 1), true, std::nullopt};
       },
       kNone, kNone},
      {"policy extension 2 years: 2024-05-31 + 2 < today",
       [](Policy& p, FillCheckInput& in) {
         p.life_extension_max_years = 2;
         Cyl(in).manufactured = YearMonth{2016, 5};
         Cyl(in).assessment = Assessment{D(2024, 5, 1), true, std::nullopt};
       },
       {R::kServiceLifeExceeded}, {R::kServiceLifeExceeded}},
      {"default extension 4 years: 2024-05-31 + 4 > today",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).manufactured = YearMonth{2016, 5};
         Cyl(in).assessment = Assessment{D(2024, 5, 1), true, std::nullopt};
       },
       kNone, kNone},
      {"policy design life 10: made 2016-07 ends 2026-07-31",
       [](Policy& p, FillCheckInput& in) {
         p.design_life_years = 10;
         Cyl(in).manufactured = YearMonth{2016, 7};
       },
       kNone, kNone},
      {"default design life 8: made 2016-07 ended 2024-07-31",
       [](Policy&, FillCheckInput& in) { Cyl(in).manufactured = YearMonth{2016, 7}; },
       {R::kServiceLifeExceeded}, {R::kServiceLifeExceeded}},

      // --- DUAL_PHASE_BANNED ------------------------------------------------------
      {"dual phase", [](Policy&, FillCheckInput& in) { Cyl(in).phase = Phase::kDual; },
       {R::kDualPhaseBanned}, {R::kDualPhaseBanned}},
      {"liquid phase", [](Policy&, FillCheckInput& in) { Cyl(in).phase = Phase::kLiquid; },
       kNone, kNone},
      {"YSP118-II dual phase",
       [](Policy&, FillCheckInput& in) {
         SetModel(in, "YSP118-II", 46.0);
         Cyl(in).phase = Phase::kDual;
         Cyl(in).last_inspection = D(2024, 1, 15);
       },
       {R::kDualPhaseBanned}, {R::kDualPhaseBanned}},

      // --- RECALLED ---------------------------------------------------------------
      {"manufacturer recalled, no range", RecallRow(kMaker, std::nullopt, std::nullopt),
       {R::kRecalled}, {R::kRecalled}},
      {"recall range exactly the manufacture month",
       RecallRow(kMaker, YearMonth{2023, 1}, YearMonth{2023, 1}), {R::kRecalled},
       {R::kRecalled}},
      {"recall range around the manufacture month",
       RecallRow(kMaker, YearMonth{2022, 12}, YearMonth{2023, 2}), {R::kRecalled},
       {R::kRecalled}},
      {"recall range starts the month after",
       RecallRow(kMaker, YearMonth{2023, 2}, YearMonth{2023, 12}), kNone, kNone},
      {"recall range ended the month before",
       RecallRow(kMaker, YearMonth{2022, 1}, YearMonth{2022, 12}), kNone, kNone},
      {"recall from the manufacture month on", RecallRow(kMaker, YearMonth{2023, 1}, std::nullopt),
       {R::kRecalled}, {R::kRecalled}},
      {"recall from the month after on", RecallRow(kMaker, YearMonth{2023, 2}, std::nullopt),
       kNone, kNone},
      {"recall up to the manufacture month", RecallRow(kMaker, std::nullopt, YearMonth{2023, 1}),
       {R::kRecalled}, {R::kRecalled}},
      {"recall up to the month before", RecallRow(kMaker, std::nullopt, YearMonth{2022, 12}),
       kNone, kNone},
      {"recall of another manufacturer, matching range",
       RecallRow("Other Cylinder Works", YearMonth{2023, 1}, YearMonth{2023, 1}), kNone, kNone},
      {"recall of a manufacturer spelt in another case",
       RecallRow("HEBEI EXAMPLE CYLINDER CO.", std::nullopt, std::nullopt), kNone, kNone},
      {"two matching recalls give one reason",
       [](Policy&, FillCheckInput& in) {
         in.recalls.push_back(Recall{kMaker, std::nullopt, std::nullopt, "valve"});
         in.recalls.push_back(Recall{kMaker, YearMonth{2023, 1}, YearMonth{2023, 1}, "weld"});
       },
       {R::kRecalled}, {R::kRecalled}},

      // --- SCRAP_PENDING / SCRAPPED ---------------------------------------------
      {"state scrap_pending",
       [](Policy&, FillCheckInput& in) { Cyl(in).state = CylinderState::kScrapPending; },
       {R::kScrapPending}, kNone},
      {"state scrapped",
       [](Policy&, FillCheckInput& in) { Cyl(in).state = CylinderState::kScrapped; },
       {R::kScrapped}, kNone},

      // --- DEFECT_FOUND: combinations (single defects are rows below) -------------
      {"two ordinary defects: one reason, no scrap",
       [](Policy&, FillCheckInput& in) { in.defects = {Defect::kDent, Defect::kCorrosion}; },
       {R::kDefectFound}, kNone},
      {"an ordinary and a scrap-class defect: one reason, scrap",
       [](Policy&, FillCheckInput& in) { in.defects = {Defect::kDent, Defect::kRefurbished}; },
       {R::kDefectFound}, {R::kDefectFound}},

      // --- TARE_MISMATCH (tare 16.4, tolerance 0.3) -------------------------------
      {"no empty weight", [](Policy&, FillCheckInput& in) { in.empty_gross_kg.reset(); }, kNone,
       kNone},
      {"empty weight exactly the tare", [](Policy&, FillCheckInput& in) { in.empty_gross_kg = 16.4; },
       kNone, kNone},
      {"empty weight tare - 0.300", [](Policy&, FillCheckInput& in) { in.empty_gross_kg = 16.1; },
       kNone, kNone},
      {"empty weight tare - 0.299", [](Policy&, FillCheckInput& in) { in.empty_gross_kg = 16.101; },
       kNone, kNone},
      {"empty weight tare - 0.301",
       [](Policy&, FillCheckInput& in) { in.empty_gross_kg = 16.099; }, {R::kTareMismatch},
       kNone},
      {"empty weight far below the tare",
       [](Policy&, FillCheckInput& in) { in.empty_gross_kg = 5.0; }, {R::kTareMismatch}, kNone},
      {"empty weight zero", [](Policy&, FillCheckInput& in) { in.empty_gross_kg = 0.0; },
       {R::kTareMismatch}, kNone},
      {"empty weight far above the tare (full cylinder)",
       [](Policy&, FillCheckInput& in) { in.empty_gross_kg = 31.4; }, kNone, kNone},
      {"policy tolerance 0.5: tare - 0.500",
       [](Policy& p, FillCheckInput& in) {
         p.tare_tolerance_kg = 0.5;
         in.empty_gross_kg = 15.9;
       },
       kNone, kNone},
      {"policy tolerance 0.5: tare - 0.501",
       [](Policy& p, FillCheckInput& in) {
         p.tare_tolerance_kg = 0.5;
         in.empty_gross_kg = 15.899;
       },
       {R::kTareMismatch}, kNone},
      {"policy tolerance 0: tare - 0.001",
       [](Policy& p, FillCheckInput& in) {
         p.tare_tolerance_kg = 0.0;
         in.empty_gross_kg = 16.399;
       },
       {R::kTareMismatch}, kNone},
      {"YSP4.7 tare 5.2: empty 4.9 is fine",
       [](Policy&, FillCheckInput& in) {
         SetModel(in, "YSP4.7", 5.2);
         in.empty_gross_kg = 4.9;
       },
       kNone, kNone},
      {"YSP4.7 tare 5.2: empty 4.899 mismatches",
       [](Policy&, FillCheckInput& in) {
         SetModel(in, "YSP4.7", 5.2);
         in.empty_gross_kg = 4.899;
       },
       {R::kTareMismatch}, kNone},

      // --- CLONE_SUSPECTED (window 60 minutes) --------------------------------------
      {"no earlier check", [](Policy&, FillCheckInput& in) { in.last_check.reset(); }, kNone,
       kNone},
      {"other station 59 minutes ago", SightingRow("ST-99", 59 * kMsPerMinute),
       {R::kCloneSuspected}, kNone},
      {"other station exactly 60 minutes ago", SightingRow("ST-99", 60 * kMsPerMinute),
       {R::kCloneSuspected}, kNone},
      {"other station 60 minutes + 1 ms ago", SightingRow("ST-99", 60 * kMsPerMinute + 1), kNone,
       kNone},
      {"other station a day ago", SightingRow("ST-99", kMsPerDay), kNone, kNone},
      {"other station at this very instant", SightingRow("ST-99", 0), {R::kCloneSuspected},
       kNone},
      // A check decided offline and decided again later may be compared with a
      // check made after it: the window counts on that side too.
      {"other station 59 minutes later", SightingRow("ST-99", -59 * kMsPerMinute),
       {R::kCloneSuspected}, kNone},
      {"other station exactly 60 minutes later", SightingRow("ST-99", -60 * kMsPerMinute),
       {R::kCloneSuspected}, kNone},
      {"other station 60 minutes + 1 ms later", SightingRow("ST-99", -60 * kMsPerMinute - 1),
       kNone, kNone},
      {"other station a day later", SightingRow("ST-99", -kMsPerDay), kNone, kNone},
      {"same station 1 minute later", SightingRow("ST-01", -kMsPerMinute), kNone, kNone},
      {"same station 1 minute ago", SightingRow("ST-01", kMsPerMinute), kNone, kNone},
      {"same station at this very instant", SightingRow("ST-01", 0), kNone, kNone},
      {"policy window 30: other station 30 minutes ago",
       [](Policy& p, FillCheckInput& in) {
         p.clone_window_minutes = 30;
         in.last_check = Sighting{"ST-99", MinusMs(in.now, 30 * kMsPerMinute)};
       },
       {R::kCloneSuspected}, kNone},
      {"policy window 30: other station 30 minutes + 1 ms ago",
       [](Policy& p, FillCheckInput& in) {
         p.clone_window_minutes = 30;
         in.last_check = Sighting{"ST-99", MinusMs(in.now, 30 * kMsPerMinute + 1)};
       },
       kNone, kNone},

      // --- STATION_LICENSE_INVALID ----------------------------------------------------
      {"station locked by a regulator",
       [](Policy&, FillCheckInput& in) {
         in.station.locked = true;
         in.station.lock_reason = "unlicensed refills";
       },
       {R::kStationLicenseInvalid}, kNone},
      {"no licence", [](Policy&, FillCheckInput& in) { in.station.license.reset(); },
       {R::kStationLicenseInvalid}, kNone},
      {"licence revoked", [](Policy&, FillCheckInput& in) { in.station.license->revoked = true; },
       {R::kStationLicenseInvalid}, kNone},
      {"licence expired yesterday",
       [](Policy&, FillCheckInput& in) { in.station.license->valid_until = kToday.AddDays(-1); },
       {R::kStationLicenseInvalid}, kNone},
      {"licence valid until today",
       [](Policy&, FillCheckInput& in) { in.station.license->valid_until = kToday; }, kNone,
       kNone},
      {"licence valid until tomorrow",
       [](Policy&, FillCheckInput& in) { in.station.license->valid_until = kToday.AddDays(1); },
       kNone, kNone},
      {"licence valid until 2026-06-30, now 16:00Z (2026-07-01 in Shanghai)",
       [](Policy&, FillCheckInput& in) {
         in.station.license->valid_until = kToday;
         in.now = Utc(2026, 6, 30, 16);
       },
       {R::kStationLicenseInvalid}, kNone},
      {"locked and revoked: one reason",
       [](Policy&, FillCheckInput& in) {
         in.station.locked = true;
         in.station.license->revoked = true;
       },
       {R::kStationLicenseInvalid}, kNone},

      // --- OPERATOR_NOT_CERTIFIED -----------------------------------------------------
      {"operator not registered", [](Policy&, FillCheckInput& in) { in.operator_facts.reset(); },
       {R::kOperatorNotCertified}, kNone},
      {"operator without certificate",
       [](Policy&, FillCheckInput& in) { in.operator_facts->certificate.reset(); },
       {R::kOperatorNotCertified}, kNone},
      {"certificate expired yesterday",
       [](Policy&, FillCheckInput& in) {
         in.operator_facts->certificate->valid_until = kToday.AddDays(-1);
       },
       {R::kOperatorNotCertified}, kNone},
      {"certificate valid until today",
       [](Policy&, FillCheckInput& in) { in.operator_facts->certificate->valid_until = kToday; },
       kNone, kNone},
      {"certificate valid until tomorrow",
       [](Policy&, FillCheckInput& in) {
         in.operator_facts->certificate->valid_until = kToday.AddDays(1);
       },
       kNone, kNone},

      // --- Combinations ----------------------------------------------------------------
      {"dual phase, failed inspection and recalled",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).phase = Phase::kDual;
         Cyl(in).last_inspection_result = InspectionResult::kFail;
         in.recalls.push_back(Recall{kMaker, std::nullopt, std::nullopt, "dual phase"});
       },
       {R::kInspectionFailed, R::kDualPhaseBanned, R::kRecalled},
       {R::kInspectionFailed, R::kDualPhaseBanned, R::kRecalled}},
      {"scrapped and overdue and out of life",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).state = CylinderState::kScrapped;
         Cyl(in).manufactured = YearMonth{2010, 1};
         Cyl(in).last_inspection = D(2020, 1, 1);
       },
       {R::kInspectionOverdue, R::kServiceLifeExceeded, R::kScrapped},
       {R::kServiceLifeExceeded}},
  };

  // Every defect alone: DEFECT_FOUND, and a scrap flag only for the five scrap classes.
  for (const DefectRow& d : kDefectRows) {
    const Defect defect = d.defect;
    rows.push_back({std::string("defect ") + d.name,
                    [defect](Policy&, FillCheckInput& in) { in.defects = {defect}; },
                    {R::kDefectFound},
                    d.scrap_class ? std::vector<ReasonCode>{R::kDefectFound} : kNone});
  }

  // Every reason a known cylinder can have at once (SCRAP_PENDING and SCRAPPED are
  // exclusive states; UNKNOWN_CODE excludes the cylinder rules).
  for (CylinderState state : {CylinderState::kScrapPending, CylinderState::kScrapped}) {
    rows.push_back(
        {std::string("all reasons at once, state ") + ToString(state),
         [state](Policy&, FillCheckInput& in) {
           in.station.company_id = "CO-B";                            // NOT_OWNED
           Cyl(in).next_inspection_due = kToday.AddDays(-1);          // INSPECTION_OVERDUE
           Cyl(in).last_inspection_result = InspectionResult::kFail;  // INSPECTION_FAILED
           Cyl(in).manufactured = YearMonth{2010, 1};                 // SERVICE_LIFE_EXCEEDED
           Cyl(in).phase = Phase::kDual;                              // DUAL_PHASE_BANNED
           in.recalls.push_back(Recall{kMaker, std::nullopt, std::nullopt, "x"});  // RECALLED
           Cyl(in).state = state;                                   // SCRAP_PENDING / SCRAPPED
           in.defects = {Defect::kCorrosion, Defect::kFireDamage};  // DEFECT_FOUND
           in.empty_gross_kg = 1.0;                                 // TARE_MISMATCH
           in.last_check = Sighting{"ST-99", MinusMs(in.now, 5 * kMsPerMinute)};  // CLONE
           in.station.locked = true;   // STATION_LICENSE_INVALID
           in.operator_facts.reset();  // OPERATOR_NOT_CERTIFIED
         },
         {R::kNotOwned, R::kInspectionOverdue, R::kInspectionFailed, R::kServiceLifeExceeded,
          R::kDualPhaseBanned, R::kRecalled,
          state == CylinderState::kScrapped ? R::kScrapped : R::kScrapPending, R::kDefectFound,
          R::kTareMismatch, R::kCloneSuspected, R::kStationLicenseInvalid,
          R::kOperatorNotCertified},
         {R::kInspectionFailed, R::kServiceLifeExceeded, R::kDualPhaseBanned, R::kRecalled,
          R::kDefectFound}});
  }
  return rows;
}

TEST_CASE("DecideFill: one row per rule boundary") {
  const std::vector<RuleRow> rows = RuleRows();
  for (const RuleRow& row : rows) {
    PINGMA_ROW(row.name);
    Policy policy = Policy::Defaults();
    FillCheckInput input = AllowedInput();
    row.setup(policy, input);
    const FillDecision d = DecideFill(policy, input);

    CHECK(Names(CodesOf(d)) == Names(row.reasons));
    CHECK(Names(d.scrap_reasons, /*sort=*/true) == Names(row.scrap, /*sort=*/true));
    CHECK(d.allowed() == row.reasons.empty());
    CHECK(d.flags_for_scrap() == !row.scrap.empty());
    CHECK(d.fill.has_value() == row.reasons.empty());
    for (ReasonCode code : row.reasons) CHECK(d.Has(code));
    for (const Reason& r : d.reasons) {
      CAPTURE(Names({r.code}));
      CHECK_FALSE(r.message.empty());
    }
  }
}

// --- Decision details ---------------------------------------------------------------

TEST_CASE("DecideFill: today is the day in the policy's zone") {
  const Policy shanghai = Policy::Defaults();
  Policy utc = Policy::Defaults();
  utc.time_zone = "UTC";
  utc.utc_offset_minutes = 0;

  struct Row {
    const char* name;
    const Policy* policy;
    Instant now;
    Date today;
  };
  const std::vector<Row> rows = {
      {"Shanghai, 2026-03-31T16:00Z", &shanghai, Utc(2026, 3, 31, 16), D(2026, 4, 1)},
      {"Shanghai, 2026-03-31T15:59:59.999Z", &shanghai, Utc(2026, 3, 31, 15, 59, 59, 999),
       D(2026, 3, 31)},
      {"UTC, 2026-03-31T16:00Z", &utc, Utc(2026, 3, 31, 16), D(2026, 3, 31)},
      {"UTC, 2026-04-01T00:00Z", &utc, Utc(2026, 4, 1), D(2026, 4, 1)},
  };
  for (const Row& row : rows) {
    PINGMA_ROW(row.name);
    FillCheckInput in = AllowedInput();
    in.now = row.now;
    CHECK(DecideFill(*row.policy, in).today == row.today);
  }
}

TEST_CASE("DecideFill: an unknown code reports no cylinder figures") {
  FillCheckInput in = AllowedInput();
  in.cylinder.reset();
  const FillDecision d = DecideFill(Policy::Defaults(), in);
  CHECK(Names(CodesOf(d)) == "[UNKNOWN_CODE]");
  CHECK_FALSE(d.fill.has_value());
  CHECK_FALSE(d.next_inspection_due.has_value());
  CHECK_FALSE(d.service_life_end.has_value());
  CHECK(d.today == kToday);
}

TEST_CASE("DecideFill: messages carry the figure that failed") {
  const Policy policy = Policy::Defaults();
  struct Row {
    const char* name;
    Setup setup;
    ReasonCode code;
    const char* figure;
  };
  const std::vector<Row> rows = {
      {"overdue names the due date",
       [](Policy&, FillCheckInput& in) { Cyl(in).next_inspection_due = D(2026, 6, 29); },
       R::kInspectionOverdue, "2026-06-29"},
      {"overdue from the manufacture month names the due date",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).manufactured = YearMonth{2022, 2};
         Cyl(in).last_inspection.reset();
       },
       R::kInspectionOverdue, "2026-02-28"},
      {"service life names the end date",
       [](Policy&, FillCheckInput& in) {
         Cyl(in).manufactured = YearMonth{2018, 5};
       },
       R::kServiceLifeExceeded, "2026-05-31"},
  };
  for (const Row& row : rows) {
    PINGMA_ROW(row.name);
    Policy p = policy;
    FillCheckInput in = AllowedInput();
    row.setup(p, in);
    const FillDecision d = DecideFill(p, in);
    CHECK(d.Has(row.code));
    if (!d.Has(row.code)) continue;
    for (const Reason& r : d.reasons) {
      if (r.code != row.code) continue;
      CAPTURE(r.message);
      CHECK(r.message.find(row.figure) != std::string::npos);
      CHECK(r.message.find(" / ") != std::string::npos);  // "中文 / English"
    }
  }
}

// --- NextInspectionDue ---------------------------------------------------------------

struct DueRow {
  const char* name;
  const char* model;
  YearMonth manufactured;
  std::optional<Date> last_inspection;
  std::optional<Date> recorded;
  std::optional<Date> expected;
};

TEST_CASE("NextInspectionDue: recorded, else last + interval, else month end + interval") {
  const std::vector<DueRow> rows = {
      {"recorded wins over last inspection",
       "YSP35.5",
       {2023, 1},
       D(2023, 1, 15),
       D(2027, 1, 31),
       D(2027, 1, 31)},
      {"recorded without inspection",
       "YSP35.5",
       {2023, 1},
       std::nullopt,
       D(2026, 12, 1),
       D(2026, 12, 1)},
      {"last inspection + 4", "YSP35.5", {2023, 1}, D(2023, 1, 15), std::nullopt, D(2027, 1, 15)},
      {"last inspection wins over manufacture",
       "YSP35.5",
       {2010, 1},
       D(2024, 3, 10),
       std::nullopt,
       D(2028, 3, 10)},
      {"29 Feb + 4 is 29 Feb", "YSP35.5", {2015, 1}, D(2024, 2, 29), std::nullopt, D(2028, 2, 29)},
      {"29 Feb + 3 (YSP118) is 28 Feb",
       "YSP118",
       {2015, 1},
       D(2024, 2, 29),
       std::nullopt,
       D(2027, 2, 28)},
      {"YSP118-II last inspection + 3",
       "YSP118-II",
       {2015, 1},
       D(2023, 6, 30),
       std::nullopt,
       D(2026, 6, 30)},
      {"made 2022-02, 4 years: 2026-02-28",
       "YSP35.5",
       {2022, 2},
       std::nullopt,
       std::nullopt,
       D(2026, 2, 28)},
      {"made 2020-02, 4 years: 2024-02-29 (leap)",
       "YSP35.5",
       {2020, 2},
       std::nullopt,
       std::nullopt,
       D(2024, 2, 29)},
      {"made 2023-12: 2027-12-31",
       "YSP35.5",
       {2023, 12},
       std::nullopt,
       std::nullopt,
       D(2027, 12, 31)},
      {"made 2023-04: 2027-04-30",
       "YSP35.5",
       {2023, 4},
       std::nullopt,
       std::nullopt,
       D(2027, 4, 30)},
      {"YSP4.7 made 2021-07", "YSP4.7", {2021, 7}, std::nullopt, std::nullopt, D(2025, 7, 31)},
      {"YSP12 made 2021-07", "YSP12", {2021, 7}, std::nullopt, std::nullopt, D(2025, 7, 31)},
      {"YSP26.2 made 2021-07", "YSP26.2", {2021, 7}, std::nullopt, std::nullopt, D(2025, 7, 31)},
      {"YSP118 made 2021-07", "YSP118", {2021, 7}, std::nullopt, std::nullopt, D(2024, 7, 31)},
      {"YSP118-II made 2021-07",
       "YSP118-II",
       {2021, 7},
       std::nullopt,
       std::nullopt,
       D(2024, 7, 31)},
      {"YSP118 made 2021-02: 2024-02-29 (leap)",
       "YSP118",
       {2021, 2},
       std::nullopt,
       std::nullopt,
       D(2024, 2, 29)},
      {"YSP118 made 2022-02: 2025-02-28",
       "YSP118",
       {2022, 2},
       std::nullopt,
       std::nullopt,
       D(2025, 2, 28)},
      {"unknown model, nothing recorded",
       "YSP99",
       {2023, 1},
       D(2023, 1, 15),
       std::nullopt,
       std::nullopt},
  };
  const Policy policy = Policy::Defaults();
  for (const DueRow& row : rows) {
    PINGMA_ROW(row.name);
    Cylinder c = ValidCylinder();
    c.model = row.model;
    c.manufactured = row.manufactured;
    c.last_inspection = row.last_inspection;
    c.last_inspection_result = row.last_inspection
                                   ? std::optional<InspectionResult>(InspectionResult::kPass)
                                   : std::nullopt;
    c.next_inspection_due = row.recorded;
    CHECK(NextInspectionDue(policy, c) == row.expected);
  }
}

// --- ServiceLifeEnd -------------------------------------------------------------------

struct LifeRow {
  const char* name;
  YearMonth manufactured;
  std::optional<int> stamped_life;
  std::optional<Assessment> assessment;
  Date expected;
};

TEST_CASE("ServiceLifeEnd: month end + design life (+ one capped extension)") {
  const std::vector<LifeRow> rows = {
      {"made 2023-01, default 8", {2023, 1}, std::nullopt, std::nullopt, D(2031, 1, 31)},
      {"made 2007-02 (cutover), 8 years", {2007, 2}, std::nullopt, std::nullopt, D(2015, 2, 28)},
      {"made 2007-01 (before cutover), 15 years",
       {2007, 1},
       std::nullopt,
       std::nullopt,
       D(2022, 1, 31)},
      {"made 2006-12, 15 years", {2006, 12}, std::nullopt, std::nullopt, D(2021, 12, 31)},
      {"made 2016-02: ends 2024-02-29 (leap)",
       {2016, 2},
       std::nullopt,
       std::nullopt,
       D(2024, 2, 29)},
      {"made 2015-02: ends 2023-02-28", {2015, 2}, std::nullopt, std::nullopt, D(2023, 2, 28)},
      {"stamped 10", {2023, 1}, 10, std::nullopt, D(2033, 1, 31)},
      {"stamped 20 before cutover", {2006, 6}, 20, std::nullopt, D(2026, 6, 30)},
      {"stamped 8 before cutover beats 15", {2006, 6}, 8, std::nullopt, D(2014, 6, 30)},
      {"stamped 15 after cutover beats 8", {2010, 3}, 15, std::nullopt, D(2025, 3, 31)},
      {"passed, no date: + 4 years",
       {2018, 5},
       std::nullopt,
       Assessment{D(2026, 5, 1), true, std::nullopt},
       D(2030, 5, 31)},
      {"passed, until within the cap",
       {2018, 5},
       std::nullopt,
       Assessment{D(2026, 5, 1), true, D(2027, 1, 1)},
       D(2027, 1, 1)},
      {"passed, until exactly the cap",
       {2018, 5},
       std::nullopt,
       Assessment{D(2026, 5, 1), true, D(2030, 5, 31)},
       D(2030, 5, 31)},
      {"passed, until past the cap",
       {2018, 5},
       std::nullopt,
       Assessment{D(2026, 5, 1), true, D(2035, 1, 1)},
       D(2030, 5, 31)},
      {"failed, with a date",
       {2018, 5},
       std::nullopt,
       Assessment{D(2026, 5, 1), false, D(2030, 1, 1)},
       D(2026, 5, 31)},
      {"failed, no date",
       {2018, 5},
       std::nullopt,
       Assessment{D(2026, 5, 1), false, std::nullopt},
       D(2026, 5, 31)},
      {"passed, until before the design end: never shortens",
       {2018, 5},
       std::nullopt,
       Assessment{D(2026, 5, 1), true, D(2025, 1, 1)},
       D(2026, 5, 31)},
      {"passed, from 29 Feb: + 4 to 29 Feb",
       {2016, 2},
       std::nullopt,
       Assessment{D(2024, 2, 1), true, std::nullopt},
       D(2028, 2, 29)},
      {"passed, from 28 Feb: + 4 to 28 Feb",
       {2015, 2},
       std::nullopt,
       Assessment{D(2023, 2, 1), true, std::nullopt},
       D(2027, 2, 28)},
      {"passed, stamped 15 before cutover",
       {2000, 3},
       15,
       Assessment{D(2015, 3, 1), true, std::nullopt},
       D(2019, 3, 31)},
  };
  const Policy policy = Policy::Defaults();
  for (const LifeRow& row : rows) {
    PINGMA_ROW(row.name);
    Cylinder c = ValidCylinder();
    c.manufactured = row.manufactured;
    c.design_life_years = row.stamped_life;
    c.assessment = row.assessment;
    CHECK(ServiceLifeEnd(policy, c) == row.expected);
  }
}

TEST_CASE("ServiceLifeEnd follows the policy's figures") {
  Policy p = Policy::Defaults();
  p.design_life_years = 10;
  p.design_life_years_before = 12;
  p.design_life_cutover = YearMonth{2010, 1};
  p.life_extension_max_years = 2;
  Cylinder c = ValidCylinder();
  c.manufactured = YearMonth{2010, 1};
  CHECK(ServiceLifeEnd(p, c) == D(2020, 1, 31));
  c.manufactured = YearMonth{2009, 12};
  CHECK(ServiceLifeEnd(p, c) == D(2021, 12, 31));
  c.assessment = Assessment{D(2021, 12, 1), true, std::nullopt};
  CHECK(ServiceLifeEnd(p, c) == D(2023, 12, 31));
  c.assessment = Assessment{D(2021, 12, 1), true, D(2030, 1, 1)};
  CHECK(ServiceLifeEnd(p, c) == D(2023, 12, 31));
}

// --- FillLimitsFor ------------------------------------------------------------------

TEST_CASE("FillLimitsFor: each model's min, max and target") {
  const Policy policy = Policy::Defaults();
  for (const ModelRow& row : kModelRows) {
    PINGMA_ROW(row.model);
    Cylinder c = ValidCylinder();
    c.model = row.model;
    c.tare_kg = row.tare_kg;
    const std::optional<FillLimits> limits = FillLimitsFor(policy, c);
    CHECK(limits.has_value());
    if (!limits.has_value()) continue;
    CHECK(limits->tare_kg == doctest::Approx(row.tare_kg));
    CHECK(limits->min_kg == doctest::Approx(row.min_kg));
    CHECK(limits->max_kg == doctest::Approx(row.max_kg));
    CHECK(limits->target_kg == doctest::Approx(row.target_kg));
  }
}

struct StampedRow {
  const char* name;
  const char* model;
  double stamped_max;
  double min_kg;
  double target_kg;
};

TEST_CASE("FillLimitsFor: a stamped allowed fill replaces the model maximum") {
  const std::vector<StampedRow> rows = {
      {"YSP35.5 stamped 14.5", "YSP35.5", 14.5, 14.1, 14.3},
      {"YSP35.5 stamped 14.9", "YSP35.5", 14.9, 14.1, 14.5},
      {"YSP118 stamped 49.0", "YSP118", 49.0, 48.5, 48.75},
      {"YSP12 stamped 4.9", "YSP12", 4.9, 4.8, 4.85},
  };
  const Policy policy = Policy::Defaults();
  for (const StampedRow& row : rows) {
    PINGMA_ROW(row.name);
    Cylinder c = ValidCylinder();
    c.model = row.model;
    c.allowed_fill_kg = row.stamped_max;
    const std::optional<FillLimits> limits = FillLimitsFor(policy, c);
    CHECK(limits.has_value());
    if (!limits.has_value()) continue;
    CHECK(limits->max_kg == doctest::Approx(row.stamped_max));
    CHECK(limits->min_kg == doctest::Approx(row.min_kg));
    CHECK(limits->target_kg == doctest::Approx(row.target_kg));
  }
}

TEST_CASE("FillLimitsFor: unknown model has no limits") {
  Cylinder c = ValidCylinder();
  c.model = "YSP99";
  CHECK_FALSE(FillLimitsFor(Policy::Defaults(), c).has_value());
}

TEST_CASE("FillLimitsFor follows the policy's model figures") {
  Policy p = Policy::Defaults();
  p.models.at("YSP35.5").min_fill_kg = 14.0;
  p.models.at("YSP35.5").max_fill_kg = 15.0;
  const std::optional<FillLimits> limits = FillLimitsFor(p, ValidCylinder());
  REQUIRE(limits.has_value());
  CHECK(limits->min_kg == doctest::Approx(14.0));
  CHECK(limits->max_kg == doctest::Approx(15.0));
  CHECK(limits->target_kg == doctest::Approx(14.5));
}

// The scale opens only with limits: API.md says `fill` is present on allow, and the
// station has no maximum to cut off at without one. A model the policy does not know
// (domain.h: "must be a model the policy knows") must therefore not come out as an
// allowed decision without limits.
TEST_CASE("DecideFill: an allowed decision always carries fill limits (unknown model)") {
  FillCheckInput in = AllowedInput();
  Cyl(in).model = "YSP99";
  const FillDecision d = DecideFill(Policy::Defaults(), in);
  CAPTURE(Names(CodesOf(d)));
  CHECK(d.allowed() == d.fill.has_value());
}

TEST_CASE("DecideFill: an allowed fill carries the model's limits") {
  const Policy policy = Policy::Defaults();
  for (const ModelRow& row : kModelRows) {
    if (std::string(row.model) == "YSP118-II") continue;  // dual phase: never allowed
    PINGMA_ROW(row.model);
    FillCheckInput in = AllowedInput();
    SetModel(in, row.model, row.tare_kg);
    Cyl(in).last_inspection = D(2024, 1, 15);
    const FillDecision d = DecideFill(policy, in);
    CHECK(Names(CodesOf(d)) == "[]");
    CHECK(d.fill.has_value());
    if (!d.fill.has_value()) continue;
    CHECK(d.fill->tare_kg == doctest::Approx(row.tare_kg));
    CHECK(d.fill->min_kg == doctest::Approx(row.min_kg));
    CHECK(d.fill->max_kg == doctest::Approx(row.max_kg));
    CHECK(d.fill->target_kg == doctest::Approx(row.target_kg));
  }
  FillCheckInput stamped = AllowedInput();
  Cyl(stamped).allowed_fill_kg = 14.5;
  const FillDecision d = DecideFill(policy, stamped);
  REQUIRE(d.fill.has_value());
  CHECK(d.fill->max_kg == doctest::Approx(14.5));
  CHECK(d.fill->min_kg == doctest::Approx(14.1));
  CHECK(d.fill->target_kg == doctest::Approx(14.3));
}

}  // namespace
}  // namespace pingma
