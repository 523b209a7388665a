// Table-driven tests of the handover decision (handover.h) against shared/spec/DOMAIN.md
// "Delivery and handover".
//
// Every rule is tested at its boundary (the day before, of and after a date; the
// quantity on site just under, at and over the limit; YSP118 indoors, outdoors and
// in a restaurant's cylinder room), each reason's wire spelling and message, and
// the order of reasons. Each row starts from DeliverableFacts(), a delivery that
// every rule allows, and changes one thing.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "pingma/common/domain.h"
#include "pingma/common/handover.h"
#include "pingma/common/policy.h"

// Names a table row in failure reports (doctest prints a bare char* as a pointer).
#define PINGMA_ROW(x) INFO(#x " = ", std::string(x))

namespace pingma {
namespace {

Date D(int y, int m, int d) {
  return Date::FromCivil(y, m, d);
}

Instant At(const char* rfc3339) {
  return *Instant::Parse(rfc3339);
}

// --- The baseline: a delivery that every rule allows ------------------------------

const Date kToday = D(2026, 6, 30);
const Instant kNow = At("2026-06-30T12:00:00+08:00");

Cylinder ValidCylinder() {
  Cylinder c;
  c.code = "HB0100000123";
  c.model = "YSP35.5";
  c.phase = Phase::kGas;
  c.manufacturer = "Hebei Example Cylinder Co.";
  c.serial = "A2301-0042";
  c.manufactured = YearMonth{2023, 1};
  c.tare_kg = 16.4;
  c.owner_company_id = "CO-A";
  c.last_inspection = D(2023, 1, 15);
  c.last_inspection_result = InspectionResult::kPass;
  c.next_inspection_due = D(2027, 1, 15);
  c.state = CylinderState::kActive;
  return c;
}

StationFacts OwnersStation() {
  StationFacts s;
  s.id = "ST-01";
  s.company_id = "CO-A";
  s.license = FillingLicense{"TS4213001-2027", D(2027, 12, 31), false};
  return s;
}

HandoverFacts DeliverableFacts() {
  HandoverFacts f;
  f.direction = HandoverDirection::kDeliver;
  f.scanned = "HB0100000123";
  f.cylinder = ValidCylinder();
  f.courier = CourierFacts{"CR-1", "CO-A", "V-1", "豫N12345", {"Liangyuan", "Xiayi"}};
  f.vehicle = "V-1";
  f.customer.id = "HOME";
  f.customer.district = "Xiayi";
  LatestFill fill;
  fill.seq = 100;
  fill.station_id = "ST-01";
  fill.ended = At("2026-06-30T09:00:00+08:00");
  fill.result = "ok";
  fill.post_checks = {{"leak_test", "pass"}, {"reweigh", "pass"}};
  fill.station = OwnersStation();
  f.latest_fill = fill;
  f.last_delivery_seq = 90;  // delivered before, then filled again
  f.now = kNow;
  return f;
}

HandoverFacts CollectableFacts() {
  HandoverFacts f = DeliverableFacts();
  f.direction = HandoverDirection::kCollect;
  f.held_by_customer = "HOME";
  return f;
}

Cylinder& Cyl(HandoverFacts& f) {
  return *f.cylinder;
}
LatestFill& Fill(HandoverFacts& f) {
  return *f.latest_fill;
}
StationFacts& FillStation(HandoverFacts& f) {
  return *Fill(f).station;
}

std::string Names(const std::vector<ReasonCode>& codes) {
  std::string out = "[";
  for (size_t i = 0; i < codes.size(); ++i) {
    if (i > 0) out += ", ";
    out += ToString(codes[i]);
  }
  return out + "]";
}

std::vector<ReasonCode> CodesOf(const HandoverDecision& d) {
  std::vector<ReasonCode> codes;
  for (const Reason& r : d.reasons) codes.push_back(r.code);
  return codes;
}

using R = ReasonCode;
using Setup = std::function<void(HandoverFacts&)>;

// --- Vocabulary ------------------------------------------------------------------

struct CodeRow {
  ReasonCode code;
  const char* wire;  // as the registry has always sent it (README.md, console.js)
  const char* zh;
  const char* en;
};

const std::vector<CodeRow> kHandoverCodes = {
    {R::kNotFilledSinceDelivery, "NOT_FILLED_SINCE_DELIVERY", "未充装", "Not filled"},
    {R::kFillNotPassed, "FILL_NOT_PASSED", "充装后检查未通过", "Post-fill check not passed"},
    {R::kFillNotByOwner, "FILL_NOT_BY_OWNER", "非产权单位充装", "Not filled by its owner"},
    {R::kFillStationUnlicensed, "FILL_STATION_UNLICENSED", "充装站无有效许可",
     "Filling station not licensed"},
    {R::kCourierNotOwner, "COURIER_NOT_OWNER", "送气工非产权单位人员", "Courier not of the owner"},
    {R::kVehicleMismatch, "VEHICLE_MISMATCH", "人车不对应", "Vehicle mismatch"},
    {R::kOutsideZone, "OUTSIDE_ZONE", "超出配送区域", "Outside the delivery zone"},
    {R::kBasementSite, "BASEMENT_SITE", "地下或半地下场所", "Basement site"},
    {R::kNoCylinderRoom, "NO_CYLINDER_ROOM", "超量存放无气瓶间", "No cylinder room"},
    {R::kYsp118Indoors, "YSP118_INDOORS", "YSP118不得室内使用", "YSP118 indoors"},
    {R::kNotAtCustomer, "NOT_AT_CUSTOMER", "不在该用户处", "Not at this customer"},
};

TEST_CASE("handover reason codes: wire spellings and titles, parsed back") {
  for (const CodeRow& row : kHandoverCodes) {
    PINGMA_ROW(row.wire);
    CHECK(std::string(ToString(row.code)) == row.wire);
    CHECK(std::string(TitleZh(row.code)) == row.zh);
    CHECK(std::string(TitleEn(row.code)) == row.en);
    const Result<ReasonCode> parsed = ParseReasonCode(row.wire);
    CHECK(parsed.ok());
    if (parsed.ok()) CHECK(*parsed == row.code);
  }
}

TEST_CASE("ParseFillReasonCode: a station may send no handover reason") {
  for (const char* fill : {"UNKNOWN_CODE", "INSPECTION_OVERDUE", "MODEL_UNKNOWN"}) {
    PINGMA_ROW(fill);
    CHECK(ParseFillReasonCode(fill).ok());
  }
  for (const CodeRow& row : kHandoverCodes) {
    PINGMA_ROW(row.wire);
    const Result<ReasonCode> parsed = ParseFillReasonCode(row.wire);
    CHECK_FALSE(parsed.ok());
    if (parsed.ok()) continue;
    // The error lists the fill check's reasons, ending at MODEL_UNKNOWN.
    const std::string& message = parsed.status().message();
    CAPTURE(message);
    CHECK(message.find("(one of: UNKNOWN_CODE, NOT_OWNED, ") != std::string::npos);
    CHECK(message.find("OPERATOR_NOT_CERTIFIED, MODEL_UNKNOWN)") != std::string::npos);
    CHECK(message.find(row.wire, message.find("(one of:")) == std::string::npos);
  }
}

// --- One row per rule boundary ------------------------------------------------------

struct RuleRow {
  std::string name;
  Setup setup;
  std::vector<ReasonCode> reasons;  // exactly these, in this order
};

const std::vector<ReasonCode> kNone = {};

/// A restaurant without a cylinder room, with `on_site` there and `model` handed over.
Setup Restaurant(const char* model, std::vector<std::string> on_site) {
  return [model, on_site](HandoverFacts& f) {
    f.customer.restaurant = true;
    Cyl(f).model = model;
    f.on_site_models = on_site;
  };
}

/// The latest fill ended at `ended`, by a station licensed until `until`.
Setup FilledUnderLicence(const char* ended, Date until) {
  return [ended, until](HandoverFacts& f) {
    Fill(f).ended = At(ended);
    FillStation(f).license->valid_until = until;
  };
}

std::vector<std::string> Times(int n, const char* model) {
  return std::vector<std::string>(static_cast<size_t>(n), model);
}

/// A YSP118 for an underground restaurant of 99 kg outside the zones, by another
/// company's courier in another vehicle, delivered since its latest fill.
void EveryDeliveryRuleFails(HandoverFacts& f) {
  Restaurant("YSP118", Times(2, "YSP118"))(f);
  f.last_delivery_seq = Fill(f).seq + 1;
  f.courier.company_id = "CO-B";
  f.vehicle = "V-2";
  f.customer.district = "Suiyang";
  f.customer.basement = true;
}

std::vector<RuleRow> RuleRows() {
  return {
      {"baseline", [](HandoverFacts&) {}, kNone},

      // --- UNKNOWN_CODE: nothing else is decided -----------------------------------
      {"unknown code",
       [](HandoverFacts& f) {
         f.cylinder.reset();
         f.customer.basement = true;
         f.vehicle = "V-9";
       },
       {R::kUnknownCode}},
      {"unknown code, collected",
       [](HandoverFacts& f) {
         f.cylinder.reset();
         f.direction = HandoverDirection::kCollect;
       },
       {R::kUnknownCode}},

      // --- The cylinder's own rules (DecideCylinder) come first ---------------------
      {"inspection due yesterday",
       [](HandoverFacts& f) { Cyl(f).next_inspection_due = kToday.AddDays(-1); },
       {R::kInspectionOverdue}},
      {"inspection due today", [](HandoverFacts& f) { Cyl(f).next_inspection_due = kToday; },
       kNone},
      {"inspection due tomorrow",
       [](HandoverFacts& f) { Cyl(f).next_inspection_due = kToday.AddDays(1); }, kNone},
      {"scrap pending",
       [](HandoverFacts& f) { Cyl(f).state = CylinderState::kScrapPending; },
       {R::kScrapPending}},
      {"scrapped",
       [](HandoverFacts& f) { Cyl(f).state = CylinderState::kScrapped; },
       {R::kScrapped}},
      {"recalled",
       [](HandoverFacts& f) {
         f.recalls.push_back(Recall{Cyl(f).manufacturer, std::nullopt, std::nullopt, "weld"});
       },
       {R::kRecalled}},
      {"model not in the policy",
       [](HandoverFacts& f) { Cyl(f).model = "YSP50"; },
       {R::kModelUnknown}},

      // --- NOT_FILLED_SINCE_DELIVERY -------------------------------------------------
      {"never filled",
       [](HandoverFacts& f) { f.latest_fill.reset(); },
       {R::kNotFilledSinceDelivery}},
      {"never filled nor delivered",
       [](HandoverFacts& f) {
         f.latest_fill.reset();
         f.last_delivery_seq.reset();
       },
       {R::kNotFilledSinceDelivery}},
      {"filled, never delivered", [](HandoverFacts& f) { f.last_delivery_seq.reset(); }, kNone},
      {"delivered just before the fill",
       [](HandoverFacts& f) { f.last_delivery_seq = Fill(f).seq - 1; }, kNone},
      {"delivery at the fill's place (not after it)",
       [](HandoverFacts& f) { f.last_delivery_seq = Fill(f).seq; }, kNone},
      {"delivered just after the fill",
       [](HandoverFacts& f) { f.last_delivery_seq = Fill(f).seq + 1; },
       {R::kNotFilledSinceDelivery}},

      // --- FILL_NOT_PASSED -------------------------------------------------------------
      {"overfill", [](HandoverFacts& f) { Fill(f).result = "overfill"; }, {R::kFillNotPassed}},
      {"underfill", [](HandoverFacts& f) { Fill(f).result = "underfill"; }, {R::kFillNotPassed}},
      {"interrupted",
       [](HandoverFacts& f) { Fill(f).result = "interrupted"; },
       {R::kFillNotPassed}},
      {"a post-fill check failed",
       [](HandoverFacts& f) { Fill(f).post_checks[0].second = "fail"; },
       {R::kFillNotPassed}},
      {"a post-fill check neither pass nor fail",
       [](HandoverFacts& f) { Fill(f).post_checks[1].second = "true"; },
       {R::kFillNotPassed}},
      {"a post-fill check spelt PASS",
       [](HandoverFacts& f) { Fill(f).post_checks[1].second = "PASS"; },
       {R::kFillNotPassed}},
      {"no post-fill checks recorded", [](HandoverFacts& f) { Fill(f).post_checks.clear(); },
       kNone},

      // --- FILL_NOT_BY_OWNER ------------------------------------------------------------
      {"filled at a station not registered",
       [](HandoverFacts& f) { Fill(f).station.reset(); },
       {R::kFillNotByOwner}},
      {"filled by a custodian",
       [](HandoverFacts& f) { FillStation(f).company_id = "CO-B"; },
       {R::kFillNotByOwner}},
      {"filled by a custodian without a licence: not the owner's, nothing more",
       [](HandoverFacts& f) {
         FillStation(f).company_id = "CO-B";
         FillStation(f).license.reset();
       },
       {R::kFillNotByOwner}},

      // --- FILL_STATION_UNLICENSED: the licence on the fill's day --------------------
      {"no licence",
       [](HandoverFacts& f) { FillStation(f).license.reset(); },
       {R::kFillStationUnlicensed}},
      {"licence revoked",
       [](HandoverFacts& f) { FillStation(f).license->revoked = true; },
       {R::kFillStationUnlicensed}},
      {"station locked",
       [](HandoverFacts& f) { FillStation(f).locked = true; },
       {R::kFillStationUnlicensed}},
      {"licence ended the day before the fill",
       [](HandoverFacts& f) { FillStation(f).license->valid_until = D(2026, 6, 29); },
       {R::kFillStationUnlicensed}},
      {"licence ends on the fill's day",
       [](HandoverFacts& f) { FillStation(f).license->valid_until = D(2026, 6, 30); }, kNone},
      {"licence ends the day after the fill",
       [](HandoverFacts& f) { FillStation(f).license->valid_until = D(2026, 7, 1); }, kNone},
      {"licence ended after the fill, before today",
       FilledUnderLicence("2026-06-20T09:00:00+08:00", D(2026, 6, 25)), kNone},
      {"the fill's day is in the policy's zone (00:30 Shanghai, 16:30Z the day before)",
       FilledUnderLicence("2026-06-29T16:30:00Z", D(2026, 6, 29)),
       {R::kFillStationUnlicensed}},
      {"23:30 Shanghai is still that day",
       FilledUnderLicence("2026-06-29T15:30:00Z", D(2026, 6, 29)), kNone},

      // --- COURIER_NOT_OWNER, VEHICLE_MISMATCH, OUTSIDE_ZONE ---------------------------
      {"courier of another company",
       [](HandoverFacts& f) { f.courier.company_id = "CO-B"; },
       {R::kCourierNotOwner}},
      {"vehicle given by its plate", [](HandoverFacts& f) { f.vehicle = "豫N12345"; }, kNone},
      {"another vehicle", [](HandoverFacts& f) { f.vehicle = "V-2"; }, {R::kVehicleMismatch}},
      {"another vehicle's plate",
       [](HandoverFacts& f) { f.vehicle = "豫N67890"; },
       {R::kVehicleMismatch}},
      {"no vehicle", [](HandoverFacts& f) { f.vehicle.clear(); }, {R::kVehicleMismatch}},
      {"district in the courier's first zone",
       [](HandoverFacts& f) { f.customer.district = "Liangyuan"; }, kNone},
      {"district outside the zones",
       [](HandoverFacts& f) { f.customer.district = "Suiyang"; },
       {R::kOutsideZone}},
      {"courier with no zones",
       [](HandoverFacts& f) { f.courier.zones.clear(); },
       {R::kOutsideZone}},
      {"district outside the zones, location in one of their areas",
       [](HandoverFacts& f) {
         f.customer.district = "Suiyang";
         f.customer.in_zone_area = true;
       },
       kNone},
      {"district differs only in case",
       [](HandoverFacts& f) { f.customer.district = "xiayi"; },
       {R::kOutsideZone}},

      // --- BASEMENT_SITE ---------------------------------------------------------------
      {"basement", [](HandoverFacts& f) { f.customer.basement = true; }, {R::kBasementSite}},
      {"semi-basement",
       [](HandoverFacts& f) { f.customer.semi_basement = true; },
       {R::kBasementSite}},
      {"basement and semi-basement: one reason",
       [](HandoverFacts& f) {
         f.customer.basement = true;
         f.customer.semi_basement = true;
       },
       {R::kBasementSite}},

      // --- NO_CYLINDER_ROOM: over 100 kg, this one included, by nominal net ------------
      {"restaurant, 99.9 kg (1.9 + 6 x 14.5 + 11)",
       Restaurant("YSP4.7",
                  {"YSP35.5", "YSP35.5", "YSP35.5", "YSP35.5", "YSP35.5", "YSP35.5", "YSP26.2"}),
       kNone},
      {"restaurant, 100 kg (20 x 5)", Restaurant("YSP12", Times(19, "YSP12")), kNone},
      {"restaurant, 100.9 kg (1.9 + 2 x 49.5)",
       Restaurant("YSP4.7", Times(2, "YSP118")),
       {R::kNoCylinderRoom}},
      {"restaurant, 105 kg (21 x 5)",
       Restaurant("YSP12", Times(20, "YSP12")),
       {R::kNoCylinderRoom}},
      {"restaurant, 101.5 kg: the one handed over counts (7 x 14.5)",
       Restaurant("YSP35.5", Times(6, "YSP35.5")),
       {R::kNoCylinderRoom}},
      {"restaurant, 87 kg on site and an unknown model handed over counts nothing",
       Restaurant("YSP50", Times(6, "YSP35.5")),
       {R::kModelUnknown}},
      {"restaurant, unknown models on site count nothing",
       Restaurant("YSP35.5", Times(20, "YSP50")), kNone},
      {"restaurant with a cylinder room, 145 kg",
       [](HandoverFacts& f) {
         Restaurant("YSP35.5", Times(9, "YSP35.5"))(f);
         f.customer.cylinder_room = true;
       },
       kNone},
      {"household, 145 kg", [](HandoverFacts& f) { f.on_site_models = Times(9, "YSP35.5"); },
       kNone},

      // --- YSP118_INDOORS ------------------------------------------------------------
      {"YSP118 to a household indoors",
       [](HandoverFacts& f) { Cyl(f).model = "YSP118"; },
       {R::kYsp118Indoors}},
      {"YSP118 to a household outdoors",
       [](HandoverFacts& f) {
         Cyl(f).model = "YSP118";
         f.customer.outdoor = true;
       },
       kNone},
      {"YSP118 to a household with a cylinder room (a restaurant's only)",
       [](HandoverFacts& f) {
         Cyl(f).model = "YSP118";
         f.customer.cylinder_room = true;
       },
       {R::kYsp118Indoors}},
      {"YSP118 to a restaurant indoors", Restaurant("YSP118", {}), {R::kYsp118Indoors}},
      {"YSP118 to a restaurant outdoors",
       [](HandoverFacts& f) {
         Restaurant("YSP118", {})(f);
         f.customer.outdoor = true;
       },
       kNone},
      {"YSP118 to a restaurant's cylinder room",
       [](HandoverFacts& f) {
         Restaurant("YSP118", {})(f);
         f.customer.cylinder_room = true;
       },
       kNone},
      {"YSP118-II (dual phase) outdoors",
       [](HandoverFacts& f) {
         Cyl(f).model = "YSP118-II";
         Cyl(f).phase = Phase::kDual;
         f.customer.outdoor = true;
       },
       {R::kDualPhaseBanned}},
      {"YSP118-II (dual phase) indoors",
       [](HandoverFacts& f) {
         Cyl(f).model = "YSP118-II";
         Cyl(f).phase = Phase::kDual;
       },
       {R::kDualPhaseBanned, R::kYsp118Indoors}},
      {"restaurant, 2 x YSP118 on site and a third indoors: 148.5 kg",
       Restaurant("YSP118", Times(2, "YSP118")),
       {R::kNoCylinderRoom, R::kYsp118Indoors}},

      // --- NOT_AT_CUSTOMER: a collection reads only who holds the cylinder -------------
      {"collected from its customer",
       [](HandoverFacts& f) {
         f.direction = HandoverDirection::kCollect;
         f.held_by_customer = "HOME";
       },
       kNone},
      {"collected from another customer's",
       [](HandoverFacts& f) {
         f.direction = HandoverDirection::kCollect;
         f.held_by_customer = "OTHER";
       },
       {R::kNotAtCustomer}},
      {"collected, held by no customer",
       [](HandoverFacts& f) { f.direction = HandoverDirection::kCollect; },
       {R::kNotAtCustomer}},
      {"collected: fill, courier and site rules do not apply",
       [](HandoverFacts& f) {
         f.direction = HandoverDirection::kCollect;
         f.held_by_customer = "HOME";
         Cyl(f).next_inspection_due = kToday.AddDays(-1);
         Cyl(f).model = "YSP118";
         f.latest_fill.reset();
         f.courier.company_id = "CO-B";
         f.vehicle = "V-2";
         f.customer.district = "Suiyang";
         f.customer.basement = true;
       },
       kNone},

      // --- Everything at once: the order of the reasons ----------------------------------
      {"every delivery rule fails, the fill by another company",
       [](HandoverFacts& f) {
         EveryDeliveryRuleFails(f);
         Cyl(f).next_inspection_due = kToday.AddDays(-1);
         Fill(f).result = "overfill";
         FillStation(f).company_id = "CO-B";
       },
       {R::kInspectionOverdue, R::kNotFilledSinceDelivery, R::kFillNotPassed, R::kFillNotByOwner,
        R::kCourierNotOwner, R::kVehicleMismatch, R::kOutsideZone, R::kBasementSite,
        R::kNoCylinderRoom, R::kYsp118Indoors}},
      {"every delivery rule fails, the fill by an unlicensed station of the owner",
       [](HandoverFacts& f) {
         EveryDeliveryRuleFails(f);
         Cyl(f).state = CylinderState::kScrapped;
         Fill(f).post_checks[0].second = "fail";
         FillStation(f).locked = true;
       },
       {R::kScrapped, R::kNotFilledSinceDelivery, R::kFillNotPassed, R::kFillStationUnlicensed,
        R::kCourierNotOwner, R::kVehicleMismatch, R::kOutsideZone, R::kBasementSite,
        R::kNoCylinderRoom, R::kYsp118Indoors}},
      {"never filled: the other fill rules are not asked, the rest are",
       [](HandoverFacts& f) {
         f.latest_fill.reset();
         f.vehicle = "V-2";
         f.customer.basement = true;
       },
       {R::kNotFilledSinceDelivery, R::kVehicleMismatch, R::kBasementSite}},
  };
}

TEST_CASE("DecideHandover: one row per rule boundary") {
  const Policy policy = Policy::Defaults();
  for (const RuleRow& row : RuleRows()) {
    PINGMA_ROW(row.name);
    HandoverFacts facts = DeliverableFacts();
    row.setup(facts);
    const HandoverDecision d = DecideHandover(policy, facts);
    CHECK(Names(CodesOf(d)) == Names(row.reasons));
    CHECK(d.allowed() == row.reasons.empty());
  }
}

TEST_CASE("DecideHandover: the baselines are allowed") {
  const Policy policy = Policy::Defaults();
  CHECK(DecideHandover(policy, DeliverableFacts()).allowed());
  CHECK(DecideHandover(policy, CollectableFacts()).allowed());
}

TEST_CASE("DecideHandover: the fill's day follows the policy's zone") {
  Policy utc = Policy::Defaults();
  utc.utc_offset_minutes = 0;
  HandoverFacts f = DeliverableFacts();
  FilledUnderLicence("2026-06-29T16:30:00Z", D(2026, 6, 29))(f);  // 00:30 in Shanghai
  CHECK(Names(CodesOf(DecideHandover(Policy::Defaults(), f))) == "[FILL_STATION_UNLICENSED]");
  CHECK(DecideHandover(utc, f).allowed());
}

// --- Messages: the registry's answers, to the letter ------------------------------

struct MessageRow {
  const char* name;
  Setup setup;
  const char* message;  // of the one reason
};

TEST_CASE("DecideHandover: each reason's message") {
  const std::vector<MessageRow> rows = {
      {"unknown code",
       [](HandoverFacts& f) {
         f.cylinder.reset();
         f.scanned = "XX0001";
       },
       "未登记的气瓶（黑气瓶） / Unregistered cylinder: XX0001 is not a registered cylinder"},
      {"never filled", [](HandoverFacts& f) { f.latest_fill.reset(); },
       "未充装 / Not filled: no fill of this cylinder is recorded"},
      {"delivered since", [](HandoverFacts& f) { f.last_delivery_seq = 101; },
       "未充装 / Not filled: delivered already since its latest fill: it cannot be full"},
      {"overfill", [](HandoverFacts& f) { Fill(f).result = "overfill"; },
       "充装后检查未通过 / Post-fill check not passed: latest fill's result is overfill"},
      {"two checks failed",
       [](HandoverFacts& f) {
         Fill(f).post_checks = {{"leak_test", "fail"}, {"reweigh", "pass"}, {"valve", "fail"}};
       },
       "充装后检查未通过 / Post-fill check not passed: latest fill's result is ok; leak_test "
       "not passed; valve not passed"},
      {"station not registered", [](HandoverFacts& f) { Fill(f).station.reset(); },
       "非产权单位充装 / Not filled by its owner: filled at station ST-01 of ?, not of the owner "
       "CO-A"},
      {"custodian", [](HandoverFacts& f) { FillStation(f).company_id = "CO-B"; },
       "非产权单位充装 / Not filled by its owner: filled at station ST-01 of CO-B, not of the "
       "owner CO-A"},
      {"locked and unlicensed: the lock is named",
       [](HandoverFacts& f) {
         FillStation(f).locked = true;
         FillStation(f).license.reset();
       },
       "充装站无有效许可 / Filling station not licensed: station ST-01: locked by a regulator"},
      {"no licence", [](HandoverFacts& f) { FillStation(f).license.reset(); },
       "充装站无有效许可 / Filling station not licensed: station ST-01: no filling licence"},
      {"revoked and expired: the revocation is named",
       [](HandoverFacts& f) {
         FillStation(f).license->revoked = true;
         FillStation(f).license->valid_until = D(2020, 1, 1);
       },
       "充装站无有效许可 / Filling station not licensed: station ST-01: licence revoked"},
      {"expired", [](HandoverFacts& f) { FillStation(f).license->valid_until = D(2026, 6, 29); },
       "充装站无有效许可 / Filling station not licensed: station ST-01: licence expired before "
       "the fill"},
      {"courier", [](HandoverFacts& f) { f.courier.company_id = "CO-B"; },
       "送气工非产权单位人员 / Courier not of the owner: courier CR-1 works for CO-B, the "
       "cylinder belongs to CO-A"},
      {"vehicle", [](HandoverFacts& f) { f.vehicle = "V-2"; },
       "人车不对应 / Vehicle mismatch: courier CR-1 is bound to vehicle V-1 (豫N12345), not V-2"},
      {"zone", [](HandoverFacts& f) { f.customer.district = "Suiyang"; },
       "超出配送区域 / Outside the delivery zone: district Suiyang is not in courier CR-1's "
       "zones"},
      {"basement", [](HandoverFacts& f) { f.customer.basement = true; },
       "地下或半地下场所 / Basement site: customer HOME is in a basement"},
      {"semi-basement", [](HandoverFacts& f) { f.customer.semi_basement = true; },
       "地下或半地下场所 / Basement site: customer HOME is in a semi-basement"},
      {"100.9 kg", Restaurant("YSP4.7", Times(2, "YSP118")),
       "超量存放无气瓶间 / No cylinder room: 100.9 kg on site with this one, over 100 kg, and "
       "no cylinder room"},
      {"105 kg", Restaurant("YSP12", Times(20, "YSP12")),
       "超量存放无气瓶间 / No cylinder room: 105 kg on site with this one, over 100 kg, and no "
       "cylinder room"},
      {"YSP118 household", [](HandoverFacts& f) { Cyl(f).model = "YSP118"; },
       "YSP118不得室内使用 / YSP118 indoors: HB0100000123 is a YSP118; customer HOME has no "
       "outdoor site"},
      {"YSP118 restaurant", Restaurant("YSP118", {}),
       "YSP118不得室内使用 / YSP118 indoors: HB0100000123 is a YSP118; customer HOME has no "
       "outdoor site or cylinder room"},
      {"not at customer",
       [](HandoverFacts& f) {
         f.direction = HandoverDirection::kCollect;
         f.held_by_customer = "OTHER";
       },
       "不在该用户处 / Not at this customer: no delivery of HB0100000123 to customer HOME is "
       "open"},
  };
  const Policy policy = Policy::Defaults();
  for (const MessageRow& row : rows) {
    PINGMA_ROW(row.name);
    HandoverFacts facts = DeliverableFacts();
    row.setup(facts);
    const HandoverDecision d = DecideHandover(policy, facts);
    REQUIRE(d.reasons.size() == 1);
    CHECK(d.reasons[0].message == row.message);
  }
}

TEST_CASE("DecideHandover: the cylinder's own reasons carry DecideFill's messages") {
  HandoverFacts f = DeliverableFacts();
  Cyl(f).next_inspection_due = D(2026, 6, 29);
  const HandoverDecision d = DecideHandover(Policy::Defaults(), f);
  REQUIRE(d.reasons.size() == 1);
  CHECK(d.reasons[0].message ==
        "超期未检 / Inspection overdue: 应于 2026-06-29 前检验 / was due 2026-06-29");
}

}  // namespace
}  // namespace pingma
