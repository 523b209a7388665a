// The offline replica fed fleet pages written as the registry writes them
// (registry/src/cases/fleet.cpp GetFleet, queries.cpp CylinderJson), and its offline
// decision against the policy engine: one row per rule at its boundary, each
// checked to give the same reasons, messages and limits as DecideFill on the same
// facts.
#include "replica.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "pingma/common/policy.h"

namespace fs = std::filesystem;
using nlohmann::json;
using pingma::Cylinder;
using pingma::Date;
using pingma::FillCheckInput;
using pingma::FillDecision;
using pingma::Instant;
using pingma::Policy;
using pingma::StatusCode;
using pingma::YearMonth;
using pingma::station::CheckAnswer;
using pingma::station::CheckRequest;
using pingma::station::Replica;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "pingma-replica-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const char* name) const { return (path / name).string(); }
};

// 2026-03-15 12:00 in Asia/Shanghai: "today" for every row.
const Instant kNow = *Instant::Parse("2026-03-15T04:00:00Z");
const Date kToday = Date::FromCivil(2026, 3, 15);
std::string Day(int offset) {
  return kToday.AddDays(offset).ToString();
}

// A cylinder object as CylinderJson writes it, and the same record as a Cylinder.
json CylinderObject(const std::string& code) {
  return {{"code", code},
          {"owner_company_id", "CO-A"},
          {"model", "YSP35.5"},
          {"phase", "gas"},
          {"manufacturer", "Hebei Example Cylinder Co."},
          {"serial", "S-" + code},
          {"manufactured", "2023-01"},
          {"tare_kg", 16.4},
          {"registration_no", "REG-" + code},
          {"registration_state", "registered"},
          {"state", "active"},
          {"carriers", json::array()},
          {"service_life_end", "2031-01-31"},
          {"allowed_fill_kg", 14.9},
          {"design_life_years", 8},
          {"last_inspection", "2023-01-15"},
          {"next_inspection_due", "2027-01-31"}};
}

Cylinder CylinderRecord(const std::string& code) {
  Cylinder c;
  c.code = code;
  c.owner_company_id = "CO-A";
  c.model = "YSP35.5";
  c.manufacturer = "Hebei Example Cylinder Co.";
  c.serial = "S-" + code;
  c.manufactured = YearMonth{2023, 1};
  c.tare_kg = 16.4;
  c.registration_no = "REG-" + code;
  c.allowed_fill_kg = 14.9;
  c.design_life_years = 8;
  c.last_inspection = Date::FromCivil(2023, 1, 15);
  c.next_inspection_due = Date::FromCivil(2027, 1, 31);
  return c;
}

// A page as GetFleet writes it, and the same facts as the policy engine's input.
json Page(json cylinders, const std::string& next_cursor) {
  return {{"station_id", "ST-01"},
          {"company_id", "CO-A"},
          {"station",
           {{"locked", false},
            {"lock_reason", ""},
            {"filling_license",
             {{"number", "TS-CO-A"}, {"valid_until", "2030-12-31"}, {"revoked", false}}}}},
          {"operators",
           {{{"id", "OP-7"},
             {"certificate", {{"number", "CERT-OP-7"}, {"valid_until", "2030-12-31"}}}}}},
          {"cylinders", std::move(cylinders)},
          {"custody", json::array()},
          {"recalls", json::array()},
          {"next_cursor", next_cursor},
          {"more", false}};
}

FillCheckInput Facts() {
  FillCheckInput in;
  in.station.id = "ST-01";
  in.station.company_id = "CO-A";
  in.station.license = pingma::FillingLicense{"TS-CO-A", Date::FromCivil(2030, 12, 31), false};
  in.operator_facts = pingma::OperatorFacts{
      "OP-7", pingma::Certificate{"CERT-OP-7", Date::FromCivil(2030, 12, 31)}};
  in.now = kNow;
  return in;
}

CheckRequest Request(const std::string& scan) {
  CheckRequest r;
  r.station_id = "ST-01";
  r.operator_id = "OP-7";
  r.scan = scan;
  return r;
}

std::unique_ptr<Replica> OpenOrFail(const std::string& path) {
  auto r = Replica::Open(path);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return std::move(*r);
}

std::vector<std::string> Codes(const CheckAnswer& a) {
  std::vector<std::string> out;
  for (const auto& r : a.reasons) out.push_back(r.code);
  return out;
}

// One rule at one side of its boundary: the same change made to the page (JSON)
// and to the policy engine's input (structs).
struct Row {
  const char* name;
  std::function<void(json& cylinder, json& page, CheckRequest& request)> page;
  std::function<void(FillCheckInput& in)> facts;
  std::vector<std::string> expected;  ///< reason codes, in order; empty = allow
  bool unknown = false;               ///< the code is not in the page at all
};

}  // namespace

TEST_CASE("offline Decide gives DecideFill's answer at every rule's boundary") {
  TempDir dir;
  auto replica = OpenOrFail(dir.file("replica.db"));
  REQUIRE(replica->SetPolicy(Policy::Defaults()).ok());

  auto none = [](json&, json&, CheckRequest&) {};
  auto same = [](FillCheckInput&) {};
  const std::vector<Row> rows = {
      {"legal", none, same, {}},
      {"inspection due yesterday",
       [](json& c, json&, CheckRequest&) { c["next_inspection_due"] = Day(-1); },
       [](FillCheckInput& in) { in.cylinder->next_inspection_due = kToday.AddDays(-1); },
       {"INSPECTION_OVERDUE"}},
      {"inspection due today",
       [](json& c, json&, CheckRequest&) { c["next_inspection_due"] = Day(0); },
       [](FillCheckInput& in) { in.cylinder->next_inspection_due = kToday; },
       {}},
      {"inspection due tomorrow",
       [](json& c, json&, CheckRequest&) { c["next_inspection_due"] = Day(1); },
       [](FillCheckInput& in) { in.cylinder->next_inspection_due = kToday.AddDays(1); },
       {}},
      {"last inspection failed",
       [](json& c, json&, CheckRequest&) { c["last_inspection_result"] = "fail"; },
       [](FillCheckInput& in) {
         in.cylinder->last_inspection_result = pingma::InspectionResult::kFail;
       },
       {"INSPECTION_FAILED"}},
      {"service life ended last month",
       [](json& c, json&, CheckRequest&) { c["manufactured"] = "2018-02"; },
       [](FillCheckInput& in) {
         in.cylinder->manufactured = YearMonth{2018, 2};
       },
       {"SERVICE_LIFE_EXCEEDED"}},
      {"service life ends this month",
       [](json& c, json&, CheckRequest&) { c["manufactured"] = "2018-03"; },
       [](FillCheckInput& in) {
         in.cylinder->manufactured = YearMonth{2018, 3};
       },
       {}},
      {"assessment extends the life",
       [](json& c, json&, CheckRequest&) {
         c["manufactured"] = "2018-02";
         c["assessment"] = {{"date", "2026-01-10"}, {"result", "pass"}, {"extends_until", Day(0)}};
       },
       [](FillCheckInput& in) {
         in.cylinder->manufactured = YearMonth{2018, 2};
         in.cylinder->assessment = pingma::Assessment{Date::FromCivil(2026, 1, 10), true, kToday};
       },
       {}},
      {"dual phase",
       [](json& c, json&, CheckRequest&) {
         c["model"] = "YSP118-II";
         c["phase"] = "dual";
         c.erase("allowed_fill_kg");
       },
       [](FillCheckInput& in) {
         in.cylinder->model = "YSP118-II";
         in.cylinder->phase = pingma::Phase::kDual;
         in.cylinder->allowed_fill_kg.reset();
       },
       {"DUAL_PHASE_BANNED"}},
      {"not owned, no custody",
       [](json& c, json&, CheckRequest&) { c["owner_company_id"] = "CO-B"; },
       [](FillCheckInput& in) { in.cylinder->owner_company_id = "CO-B"; },
       {"NOT_OWNED"}},
      {"custody ended yesterday",
       [](json& c, json& p, CheckRequest&) {
         c["owner_company_id"] = "CO-B";
         p["custody"] = {{{"owner_company_id", "CO-B"},
                          {"custodian_company_id", "CO-A"},
                          {"valid_from", "2025-01-01"},
                          {"valid_until", Day(-1)}}};
       },
       [](FillCheckInput& in) {
         in.cylinder->owner_company_id = "CO-B";
         in.custody = {{"CO-B", "CO-A", Date::FromCivil(2025, 1, 1), kToday.AddDays(-1)}};
       },
       {"NOT_OWNED"}},
      {"custody ends today",
       [](json& c, json& p, CheckRequest&) {
         c["owner_company_id"] = "CO-B";
         p["custody"] = {{{"owner_company_id", "CO-B"},
                          {"custodian_company_id", "CO-A"},
                          {"valid_from", "2025-01-01"},
                          {"valid_until", Day(0)}}};
       },
       [](FillCheckInput& in) {
         in.cylinder->owner_company_id = "CO-B";
         in.custody = {{"CO-B", "CO-A", Date::FromCivil(2025, 1, 1), kToday}};
       },
       {}},
      {"custody starts tomorrow",
       [](json& c, json& p, CheckRequest&) {
         c["owner_company_id"] = "CO-B";
         p["custody"] = {{{"owner_company_id", "CO-B"},
                          {"custodian_company_id", "CO-A"},
                          {"valid_from", Day(1)},
                          {"valid_until", "2030-01-01"}}};
       },
       [](FillCheckInput& in) {
         in.cylinder->owner_company_id = "CO-B";
         in.custody = {{"CO-B", "CO-A", kToday.AddDays(1), Date::FromCivil(2030, 1, 1)}};
       },
       {"NOT_OWNED"}},
      {"recalled range ends at its manufacture month",
       [](json&, json& p, CheckRequest&) {
         p["recalls"] = {{{"manufacturer", "Hebei Example Cylinder Co."},
                          {"manufactured_from", "2022-06"},
                          {"manufactured_to", "2023-01"},
                          {"reason", "weld defect"}}};
       },
       [](FillCheckInput& in) {
         in.recalls = {
             {"Hebei Example Cylinder Co.", YearMonth{2022, 6}, YearMonth{2023, 1}, "weld defect"}};
       },
       {"RECALLED"}},
      {"recalled range starts the month after",
       [](json&, json& p, CheckRequest&) {
         p["recalls"] = {{{"manufacturer", "Hebei Example Cylinder Co."},
                          {"manufactured_from", "2023-02"},
                          {"manufactured_to", nullptr},
                          {"reason", "weld defect"}}};
       },
       [](FillCheckInput& in) {
         in.recalls = {
             {"Hebei Example Cylinder Co.", YearMonth{2023, 2}, std::nullopt, "weld defect"}};
       },
       {}},
      {"scrap pending",
       [](json& c, json&, CheckRequest&) { c["state"] = "scrap_pending"; },
       [](FillCheckInput& in) { in.cylinder->state = pingma::CylinderState::kScrapPending; },
       {"SCRAP_PENDING"}},
      {"scrapped",
       [](json& c, json&, CheckRequest&) { c["state"] = "scrapped"; },
       [](FillCheckInput& in) { in.cylinder->state = pingma::CylinderState::kScrapped; },
       {"SCRAPPED"}},
      {"unknown code",
       none,
       [](FillCheckInput& in) { in.cylinder.reset(); },
       {"UNKNOWN_CODE"},
       true},
      {"defect found",
       [](json&, json&, CheckRequest& r) {
         r.defects = {"dent", "threaded_shroud"};
       },
       [](FillCheckInput& in) {
         in.defects = {pingma::Defect::kDent, pingma::Defect::kThreadedShroud};
       },
       {"DEFECT_FOUND"}},
      {"empty weight just outside the tare tolerance",
       [](json&, json&, CheckRequest& r) { r.empty_gross_kg = 16.099; },
       [](FillCheckInput& in) { in.empty_gross_kg = 16.099; },
       {"TARE_MISMATCH"}},
      {"empty weight at the tare tolerance",
       [](json&, json&, CheckRequest& r) { r.empty_gross_kg = 16.1; },
       [](FillCheckInput& in) { in.empty_gross_kg = 16.1; },
       {}},
      {"licence expired yesterday",
       [](json&, json& p, CheckRequest&) {
         p["station"]["filling_license"]["valid_until"] = Day(-1);
       },
       [](FillCheckInput& in) { in.station.license->valid_until = kToday.AddDays(-1); },
       {"STATION_LICENSE_INVALID"}},
      {"licence ends today",
       [](json&, json& p, CheckRequest&) {
         p["station"]["filling_license"]["valid_until"] = Day(0);
       },
       [](FillCheckInput& in) { in.station.license->valid_until = kToday; },
       {}},
      {"licence revoked",
       [](json&, json& p, CheckRequest&) { p["station"]["filling_license"]["revoked"] = true; },
       [](FillCheckInput& in) { in.station.license->revoked = true; },
       {"STATION_LICENSE_INVALID"}},
      {"no licence",
       [](json&, json& p, CheckRequest&) { p["station"]["filling_license"] = nullptr; },
       [](FillCheckInput& in) { in.station.license.reset(); },
       {"STATION_LICENSE_INVALID"}},
      {"station locked",
       [](json&, json& p, CheckRequest&) {
         p["station"]["locked"] = true;
         p["station"]["lock_reason"] = "audit";
       },
       [](FillCheckInput& in) {
         in.station.locked = true;
         in.station.lock_reason = "audit";
       },
       {"STATION_LICENSE_INVALID"}},
      {"certificate expired yesterday",
       [](json&, json& p, CheckRequest&) {
         p["operators"][0]["certificate"]["valid_until"] = Day(-1);
       },
       [](FillCheckInput& in) { in.operator_facts->certificate->valid_until = kToday.AddDays(-1); },
       {"OPERATOR_NOT_CERTIFIED"}},
      {"certificate ends today",
       [](json&, json& p, CheckRequest&) {
         p["operators"][0]["certificate"]["valid_until"] = Day(0);
       },
       [](FillCheckInput& in) { in.operator_facts->certificate->valid_until = kToday; },
       {}},
      {"operator without certificate",
       [](json&, json& p, CheckRequest&) { p["operators"][0]["certificate"] = nullptr; },
       [](FillCheckInput& in) { in.operator_facts->certificate.reset(); },
       {"OPERATOR_NOT_CERTIFIED"}},
      {"operator not registered",
       [](json&, json&, CheckRequest& r) { r.operator_id = "OP-99"; },
       [](FillCheckInput& in) { in.operator_facts.reset(); },
       {"OPERATOR_NOT_CERTIFIED"}},
      {"model missing from the policy",
       [](json& c, json&, CheckRequest&) {
         c["model"] = "YSP999";
         c.erase("next_inspection_due");
       },
       [](FillCheckInput& in) {
         in.cylinder->model = "YSP999";
         in.cylinder->next_inspection_due.reset();
       },
       {"MODEL_UNKNOWN"}},
      {"several reasons at once, in reason-code order",
       [](json& c, json& p, CheckRequest&) {
         c["owner_company_id"] = "CO-B";
         c["next_inspection_due"] = Day(-1);
         c["state"] = "scrap_pending";
         p["station"]["locked"] = true;
       },
       [](FillCheckInput& in) {
         in.cylinder->owner_company_id = "CO-B";
         in.cylinder->next_inspection_due = kToday.AddDays(-1);
         in.cylinder->state = pingma::CylinderState::kScrapPending;
         in.station.locked = true;
       },
       {"NOT_OWNED", "INSPECTION_OVERDUE", "SCRAP_PENDING", "STATION_LICENSE_INVALID"}},
  };

  int n = 0;
  for (const Row& row : rows) {
    CAPTURE(row.name);
    const std::string code = "ROW" + std::to_string(++n);
    json cylinder = CylinderObject(code);
    json page = Page(json::array(), "");
    CheckRequest request = Request(code);
    row.page(cylinder, page, request);
    if (!row.unknown) page["cylinders"].push_back(cylinder);
    page["next_cursor"] = std::to_string(n) + ":" + code;
    REQUIRE(replica->ApplyPage(page.dump()).ok());

    auto answer = replica->Decide(request, kNow);
    REQUIRE_MESSAGE(answer.ok(), answer.status().ToString());
    CHECK(answer->offline);
    CHECK(answer->check_id.empty());
    CHECK(Codes(*answer) == row.expected);
    CHECK(answer->allowed == row.expected.empty());

    FillCheckInput in = Facts();
    in.cylinder = CylinderRecord(code);
    row.facts(in);
    const FillDecision engine = DecideFill(Policy::Defaults(), in);
    REQUIRE(answer->reasons.size() == engine.reasons.size());
    for (size_t i = 0; i < engine.reasons.size(); ++i) {
      CHECK(answer->reasons[i].code == ToString(engine.reasons[i].code));
      CHECK(answer->reasons[i].message == engine.reasons[i].message);
    }
    REQUIRE(answer->fill.has_value() == engine.fill.has_value());
    if (engine.fill) {
      CHECK(answer->fill->tare_kg == engine.fill->tare_kg);
      CHECK(answer->fill->min_kg == engine.fill->min_kg);
      CHECK(answer->fill->max_kg == engine.fill->max_kg);
      CHECK(answer->fill->target_kg == engine.fill->target_kg);
    }
    if (row.unknown) {
      CHECK(!answer->cylinder);
    } else {
      REQUIRE(answer->cylinder);
      CHECK(answer->cylinder->code == code);
      CHECK(answer->cylinder->next_inspection_due ==
            (engine.next_inspection_due ? engine.next_inspection_due->ToString() : ""));
    }

    // The offline_decision the fill upload carries (ParseFill needs `decision`).
    const json decision = json::parse(answer->json);
    CHECK(decision["decision"] == (row.expected.empty() ? "allow" : "block"));
    CHECK(decision["reasons"] == json(row.expected));
    CHECK(decision["decided_at"] == kNow.ToString());
    CHECK(decision["replica_cursor"] == page["next_cursor"]);
  }
}

TEST_CASE("carriers resolve offline: EPC, UID, URL; rebinding replaces them") {
  TempDir dir;
  auto replica = OpenOrFail(dir.file("replica.db"));
  REQUIRE(replica->SetPolicy(Policy::Defaults()).ok());
  json c = CylinderObject("HB0100000123");
  c["carriers"] = {"EPC:3074257BF7194E4000001A85", "UID:E004015012345678"};
  REQUIRE(replica->ApplyPage(Page({c}, "1:HB0100000123").dump()).ok());

  struct Scan {
    const char* scan;
    bool found;
  };
  const Scan scans[] = {
      {"HB0100000123", true},
      {" hb0100000123 ", true},
      {"https://x.example/c/HB0100000123", true},
      {"EPC:3074257BF7194E4000001A85", true},
      {"3074257BF7194E4000001A85", true},
      {"UID:E004015012345678", true},
      {"E004015012345678", true},
      {"EPC:3074257BF7194E4000001A86", false},
      {"UID:E004015012345679", false},
  };
  for (const Scan& s : scans) {
    CAPTURE(s.scan);
    auto a = replica->Decide(Request(s.scan), kNow);
    REQUIRE_MESSAGE(a.ok(), a.status().ToString());
    if (s.found) {
      CHECK(a->allowed);
      REQUIRE(a->cylinder);
      CHECK(a->cylinder->code == "HB0100000123");
    } else {
      CHECK(Codes(*a) == std::vector<std::string>{"UNKNOWN_CODE"});
    }
  }

  // A later page with the cylinder's carriers changed: the old EPC no longer
  // resolves, the new one does.
  c["carriers"] = {"EPC:3074257BF7194E4000001A86"};
  REQUIRE(replica->ApplyPage(Page({c}, "2:HB0100000123").dump()).ok());
  CHECK(!replica->Decide(Request("EPC:3074257BF7194E4000001A85"), kNow)->cylinder);
  CHECK(replica->Decide(Request("EPC:3074257BF7194E4000001A86"), kNow)->cylinder);
  CHECK(replica->Decide(Request("UID:E004015012345678"), kNow)->cylinder == std::nullopt);
}

TEST_CASE("bad input is refused and changes nothing") {
  TempDir dir;
  auto replica = OpenOrFail(dir.file("replica.db"));

  // Before any page or policy, there is nothing to decide on.
  auto early = replica->Decide(Request("HB01"), kNow);
  CHECK(early.status().code() == StatusCode::kUnavailable);

  REQUIRE(replica->SetPolicy(Policy::Defaults()).ok());
  REQUIRE(replica->ApplyPage(Page({CylinderObject("HB01")}, "1:HB01").dump()).ok());

  json bad_date = CylinderObject("HB02");
  bad_date["manufactured"] = "2023-13";
  json no_tare = CylinderObject("HB03");
  no_tare.erase("tare_kg");
  json bad_phase = CylinderObject("HB04");
  bad_phase["phase"] = "plasma";
  json lower_code = CylinderObject("hb05");
  json bad_licence = Page({CylinderObject("HB06")}, "9:HB06");
  bad_licence["station"]["filling_license"]["valid_until"] = "someday";
  json other_station = Page({CylinderObject("HB07")}, "9:HB07");
  other_station["station_id"] = "ST-99";
  json no_cursor = Page({CylinderObject("HB08")}, "9:HB08");
  no_cursor.erase("next_cursor");

  struct Bad {
    const char* what;
    std::string page;
    StatusCode code;
  };
  const Bad pages[] = {
      {"not JSON", "{\"cylinders\": [", StatusCode::kMalformed},
      {"an array", "[]", StatusCode::kMalformed},
      {"a bad month", Page({CylinderObject("HB09"), bad_date}, "9:X").dump(), StatusCode::kInvalid},
      {"no tare", Page({no_tare}, "9:X").dump(), StatusCode::kMalformed},
      {"a bad phase", Page({bad_phase}, "9:X").dump(), StatusCode::kInvalid},
      {"a code not as registered", Page({lower_code}, "9:X").dump(), StatusCode::kInvalid},
      {"a bad licence date", bad_licence.dump(), StatusCode::kInvalid},
      {"another station's page", other_station.dump(), StatusCode::kInvalid},
      {"no cursor", no_cursor.dump(), StatusCode::kMalformed},
  };
  for (const Bad& b : pages) {
    CAPTURE(b.what);
    CHECK(replica->ApplyPage(b.page).code() == b.code);
  }
  CHECK(*replica->Size() == 1);
  // HB09 came in the same page as a bad cylinder: not stored either.
  CHECK(Codes(*replica->Decide(Request("HB09"), kNow)) == std::vector<std::string>{"UNKNOWN_CODE"});
  auto ok = replica->Decide(Request("HB01"), kNow);
  REQUIRE(ok.ok());
  CHECK(ok->allowed);
  CHECK(json::parse(ok->json)["replica_cursor"] == "1:HB01");

  struct BadRequest {
    const char* what;
    CheckRequest request;
    StatusCode code;
  };
  CheckRequest bad_scan = Request("");
  CheckRequest bad_defect = Request("HB01");
  bad_defect.defects = {"wobbly"};
  CheckRequest bad_weight = Request("HB01");
  bad_weight.empty_gross_kg = -1;
  CheckRequest other = Request("HB01");
  other.station_id = "ST-99";
  const BadRequest requests[] = {
      {"an empty scan", bad_scan, StatusCode::kInvalid},
      {"an unknown defect", bad_defect, StatusCode::kInvalid},
      {"a negative weight", bad_weight, StatusCode::kInvalid},
      {"another station", other, StatusCode::kPermissionDenied},
  };
  for (const BadRequest& b : requests) {
    CAPTURE(b.what);
    CHECK(replica->Decide(b.request, kNow).status().code() == b.code);
  }
}

TEST_CASE("a reopened replica keeps its cylinders, carriers, facts, policy and cursor") {
  TempDir dir;
  const std::string path = dir.file("replica.db");
  Policy policy = Policy::Defaults();
  policy.models["YSP35.5"].max_fill_kg = 14.5;  // a region's own figure survives reopening
  {
    auto replica = OpenOrFail(path);
    REQUIRE(replica->SetPolicy(policy).ok());
    json c = CylinderObject("HB0100000123");
    c.erase("allowed_fill_kg");
    c["carriers"] = {"UID:E004015012345678"};
    json page = Page({c, CylinderObject("HB0100000124")}, "7:HB0100000124");
    page["operators"][0]["certificate"]["valid_until"] = Day(-1);
    REQUIRE(replica->ApplyPage(page.dump()).ok());
    CHECK(!replica->ready());  // pages alone are not a completed sync
  }
  auto replica = OpenOrFail(path);
  CHECK(*replica->Size() == 2);
  auto a = replica->Decide(Request("UID:E004015012345678"), kNow);
  REQUIRE(a.ok());
  CHECK(Codes(*a) == std::vector<std::string>{"OPERATOR_NOT_CERTIFIED"});
  CHECK(json::parse(a->json)["replica_cursor"] == "7:HB0100000124");

  json page = Page(json::array(), "7:HB0100000124");
  REQUIRE(replica->ApplyPage(page.dump()).ok());  // an empty page renews the facts
  auto b = replica->Decide(Request("HB0100000123"), kNow);
  REQUIRE(b->allowed);
  CHECK(b->fill->max_kg == 14.5);
}

TEST_CASE("cylinders are stored as the page's text gives them: spacing, escapes, a repeated key") {
  TempDir dir;
  auto replica = OpenOrFail(dir.file("replica.db"));
  REQUIRE(replica->SetPolicy(Policy::Defaults()).ok());
  // Brackets, braces, quotes, commas and backslashes inside strings, and a page
  // spread over many lines: each record is cut from the text, not printed again.
  const std::string tricky = "Hebei \"Bracket]}\" Co., \\ [{\n";
  json recalled = CylinderObject("HB0100000201");
  recalled["manufacturer"] = tricky;
  json page = Page({recalled, CylinderObject("HB0100000202")}, "1:HB0100000202");
  page["recalls"] = {{{"manufacturer", tricky}, {"reason", "burst in tests"}}};
  REQUIRE(replica->ApplyPage(page.dump(2)).ok());
  auto a = replica->Decide(Request("HB0100000201"), kNow);
  REQUIRE_MESSAGE(a.ok(), a.status().ToString());
  CHECK(Codes(*a) == std::vector<std::string>{"RECALLED"});
  auto b = replica->Decide(Request("HB0100000202"), kNow);
  REQUIRE(b.ok());
  CHECK(b->allowed);

  // "cylinders" twice: a JSON parser keeps the last, and so must what is stored
  // (here the first says the cylinder is overdue, the last that it is not).
  json overdue = CylinderObject("HB0100000301");
  overdue["next_inspection_due"] = Day(-10);
  std::string twice = Page({CylinderObject("HB0100000301")}, "2:HB0100000301").dump();
  twice.insert(1, R"("cylinders":[)" + overdue.dump() + "],");
  REQUIRE(json::parse(twice)["cylinders"][0]["next_inspection_due"] == "2027-01-31");
  REQUIRE(replica->ApplyPage(twice).ok());
  auto c = replica->Decide(Request("HB0100000301"), kNow);
  REQUIRE(c.ok());
  CHECK(c->allowed);
}
