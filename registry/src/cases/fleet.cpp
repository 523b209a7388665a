// The fleet feed: a station's offline replica, paged by (rev, code).
#include "cases/fleet.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string_view>

#include <fmt/format.h>

#include "cases/queries.h"
#include "http/fields.h"
#include "http/json_text.h"
#include "pingma/scanner/scan.h"

namespace pingma::registry {
namespace {

// The largest page of the fleet feed, and its default.
constexpr std::int64_t kFleetPage = 5000;

// Where a fleet page starts: after `after_code` within `rev`, or after all of
// `rev` when there is no code.
struct FleetCursor {
  std::string text;  ///< as given; the next cursor of an empty page
  std::int64_t rev = 0;
  std::optional<std::string> after_code;
};

// "", "REV" or "REV:CODE", as next_cursor gives them.
Result<FleetCursor> ParseFleetCursor(const std::map<std::string, std::string>& query) {
  FleetCursor c;
  c.text = "0";
  auto it = query.find("since");
  if (it == query.end() || it->second.empty()) return c;
  c.text = it->second;
  const std::string_view text = it->second;
  const size_t colon = text.find(':');
  bool ok = ParseWhole(text.substr(0, colon), 0, INT64_MAX, &c.rev);
  if (ok && colon != std::string_view::npos) {
    auto code = NormaliseCode(text.substr(colon + 1));
    ok = code.ok() && *code == text.substr(colon + 1);
    if (ok) c.after_code = *code;
  }
  if (!ok) return Status::Malformed("since must be a next_cursor from this feed");
  return c;
}

struct FleetPageText {
  std::int64_t count = 0;   ///< cylinders written
  std::string next_cursor;  ///< "REV:CODE" of the last one; empty when none
};

// The JSON array of a page of `owners`' cylinders after `cursor`, appended to
// `*out`. One query gives the page's rows with their carriers joined (a row per
// carrier, none for a cylinder without), where the feed used to load each cylinder
// and its carriers with two queries of its own.
Result<FleetPageText> AppendFleetCylinders(Conn& conn, const std::string& owners,
                                           const FleetCursor& cursor, std::int64_t limit,
                                           const Policy& policy, std::string* out) {
  // In (rev, code) order: a custody grant gives all of an owner's cylinders one
  // rev, so the cursor names the last code sent as well as its rev. `rev >= ?2`
  // stands alone so that the index is entered at the cursor: with only the OR,
  // SQLite read the owner's whole index range for every page, the last pages of a
  // million cylinders three times as slow as the first. Only rows below the
  // horizon (HorizonSql): on PostgreSQL a row of a lower rev may still be
  // committed, and a cursor past it would never send it.
  PINGMA_ASSIGN_OR_RETURN(
      auto st,
      conn.Prepare(fmt::format(
          "WITH page(code, rev) AS ("
          "  SELECT code, rev FROM cylinders"
          "  WHERE owner_company_id IN (SELECT value FROM {})"
          "  AND rev >= $2 AND (rev > $2 OR code > $3) AND rev < {} ORDER BY rev, code LIMIT $4) "
          "SELECT c.code, c.owner_company_id, c.model, c.phase, c.manufacturer, c.serial, "
          "c.manufactured, c.tare_kg, c.water_capacity_l, c.allowed_fill_kg, c.design_life_years, "
          "c.registration_no, c.registration_state, c.last_inspection, c.last_inspection_result, "
          "c.next_inspection_due, c.assessment_date, c.assessment_passed, "
          "c.assessment_extends_until, c.state, c.state_reason, c.state_since, "
          "c.last_fill_station, c.last_fill_at, c.rev, k.carrier "
          "FROM page p JOIN cylinders c ON c.code = p.code "
          "LEFT JOIN carriers k ON k.code = p.code ORDER BY p.rev, p.code, k.carrier",
          sql::JsonArrayElements(conn.dialect(), "$1"), HorizonSql(conn))));
  sql::Statement& s = *st;
  s.Bind(1, owners).Bind(2, cursor.rev);
  if (cursor.after_code) {
    s.Bind(3, *cursor.after_code);
  } else {
    s.BindNull(3);  // the whole of `rev` was sent
  }
  s.Bind(4, limit);
  FleetPageText page;
  std::optional<CylinderRow> row;
  auto flush = [&] {
    if (!row) return;
    if (page.count > 0) out->push_back(',');
    AppendFleetCylinder(out, *row, policy);
    page.count += 1;
    page.next_cursor = fmt::format("{}:{}", row->rev, row->cylinder.code);
    row.reset();
  };
  out->push_back('[');
  for (;;) {
    PINGMA_ASSIGN_OR_RETURN(auto more, s.Step());
    if (!more) break;
    if (!row || row->cylinder.code != s.Text(0)) {
      flush();
      row = ReadCylinderRow(s);  // the same 25 columns, in LoadCylinder's order
    }
    if (!s.IsNull(25)) row->carriers.push_back(s.Text(25));
  }
  flush();
  s.Reset();
  out->push_back(']');
  return page;
}

}  // namespace

void AppendFleetCylinder(std::string* out, const CylinderRow& row, const Policy& policy) {
  const Cylinder& c = row.cylinder;
  out->push_back('{');
  if (c.allowed_fill_kg) {
    AppendJsonKey(out, "allowed_fill_kg");
    AppendJsonNumber(out, *c.allowed_fill_kg);
    out->push_back(',');
  }
  if (c.assessment) {
    AppendJsonKey(out, "assessment");
    out->push_back('{');
    AppendJsonKey(out, "date");
    AppendJsonString(out, c.assessment->date.ToString());
    out->push_back(',');
    if (c.assessment->extends_until) {
      AppendJsonKey(out, "extends_until");
      AppendJsonString(out, c.assessment->extends_until->ToString());
      out->push_back(',');
    }
    AppendJsonKey(out, "result");
    AppendJsonString(out, c.assessment->passed ? "pass" : "fail");
    out->append("},");
  }
  AppendJsonKey(out, "carriers");
  out->push_back('[');
  for (size_t i = 0; i < row.carriers.size(); ++i) {
    if (i) out->push_back(',');
    AppendJsonString(out, row.carriers[i]);
  }
  out->append("],");
  AppendJsonKey(out, "code");
  AppendJsonString(out, c.code);
  out->push_back(',');
  if (c.design_life_years) {
    AppendJsonKey(out, "design_life_years");
    fmt::format_to(std::back_inserter(*out), "{}", *c.design_life_years);
    out->push_back(',');
  }
  if (row.last_fill) {
    AppendJsonKey(out, "last_fill");
    out->push_back('{');
    AppendJsonKey(out, "at");
    AppendJsonString(out, row.last_fill->at.ToString());
    out->push_back(',');
    AppendJsonKey(out, "station_id");
    AppendJsonString(out, row.last_fill->station_id);
    out->append("},");
  }
  if (c.last_inspection) {
    AppendJsonKey(out, "last_inspection");
    AppendJsonString(out, c.last_inspection->ToString());
    out->push_back(',');
  }
  if (c.last_inspection_result) {
    AppendJsonKey(out, "last_inspection_result");
    AppendJsonString(out, ToString(*c.last_inspection_result));
    out->push_back(',');
  }
  AppendJsonKey(out, "manufactured");
  AppendJsonString(out, c.manufactured.ToString());
  out->push_back(',');
  AppendJsonKey(out, "manufacturer");
  AppendJsonString(out, c.manufacturer);
  out->push_back(',');
  AppendJsonKey(out, "model");
  AppendJsonString(out, c.model);
  out->push_back(',');
  if (auto due = NextInspectionDue(policy, c)) {
    AppendJsonKey(out, "next_inspection_due");
    AppendJsonString(out, due->ToString());
    out->push_back(',');
  }
  AppendJsonKey(out, "owner_company_id");
  AppendJsonString(out, c.owner_company_id);
  out->push_back(',');
  AppendJsonKey(out, "phase");
  AppendJsonString(out, ToString(c.phase));
  out->push_back(',');
  AppendJsonKey(out, "registration_no");
  AppendJsonString(out, c.registration_no);
  out->push_back(',');
  AppendJsonKey(out, "registration_state");
  AppendJsonString(out, row.registration_state);
  out->push_back(',');
  AppendJsonKey(out, "serial");
  AppendJsonString(out, c.serial);
  out->push_back(',');
  AppendJsonKey(out, "service_life_end");
  AppendJsonString(out, ServiceLifeEnd(policy, c).ToString());
  out->push_back(',');
  AppendJsonKey(out, "state");
  AppendJsonString(out, ToString(c.state));
  out->push_back(',');
  if (row.state_reason) {
    AppendJsonKey(out, "state_reason");
    AppendJsonString(out, *row.state_reason);
    out->push_back(',');
  }
  if (row.state_since) {
    AppendJsonKey(out, "state_since");
    AppendJsonString(out, row.state_since->ToString());
    out->push_back(',');
  }
  AppendJsonKey(out, "tare_kg");
  AppendJsonNumber(out, c.tare_kg);
  if (row.water_capacity_l) {
    out->push_back(',');
    AppendJsonKey(out, "water_capacity_l");
    AppendJsonNumber(out, *row.water_capacity_l);
  }
  out->push_back('}');
}

void FleetFeed::GetFleet(const Call& call, Store::Done done) {
  const std::string station_id = call.params[0];
  if (call.who.role == Role::kStation && call.who.subject != station_id) {
    return done(ErrorReply(Status::PermissionDenied(
        fmt::format("this token is for station {}, not {}", call.who.subject, station_id))));
  }
  auto cursor = ParseFleetCursor(call.query);
  if (!cursor.ok()) return done(ErrorReply(cursor.status()));
  auto page_limit = PageLimit(call.query, kFleetPage, kFleetPage);
  if (!page_limit.ok()) return done(ErrorReply(page_limit.status()));
  const std::int64_t limit = *page_limit;
  const Date today = clock_->Now().LocalDate(policy_.utc_offset_minutes);
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    auto station = LoadStation(conn, station_id);
    if (!station.ok()) return ErrorReply(station.status());
    if (!*station) return ErrorReply(Status::NotFound(fmt::format("no station {}", station_id)));
    const std::string company = (*station)->company_id;
    // Owners whose cylinders this station may fill: its company, and every owner
    // with a custody agreement for it that has not ended.
    std::vector<std::string> owners = {company};
    json custody = json::array();
    auto cst = conn.Prepare(
        "SELECT owner_company_id, valid_from, valid_until FROM custody "
        "WHERE custodian_company_id = $1 AND valid_until >= $2");
    if (!cst.ok()) return ErrorReply(cst.status());
    (*cst)->Bind(1, company).Bind(2, today.ToString());
    for (;;) {
      auto more = (*cst)->Step();
      if (!more.ok()) return ErrorReply(more.status());
      if (!*more) break;
      owners.push_back((*cst)->Text(0));
      custody.push_back({{"owner_company_id", (*cst)->Text(0)},
                         {"custodian_company_id", company},
                         {"valid_from", (*cst)->Text(1)},
                         {"valid_until", (*cst)->Text(2)}});
    }
    json owner_list = owners;
    std::string cylinders;
    cylinders.reserve(static_cast<size_t>(limit) * 512);
    auto page = AppendFleetCylinders(conn, owner_list.dump(), *cursor, limit, policy_, &cylinders);
    if (!page.ok()) return ErrorReply(page.status());
    auto recalls = conn.Prepare(
        "SELECT manufacturer, manufactured_from, manufactured_to, reason FROM recalls");
    if (!recalls.ok()) return ErrorReply(recalls.status());
    json recall_list = json::array();
    for (;;) {
      auto more = (*recalls)->Step();
      if (!more.ok()) return ErrorReply(more.status());
      if (!*more) break;
      recall_list.push_back(
          {{"manufacturer", (*recalls)->Text(0)},
           {"manufactured_from",
            (*recalls)->OptText(1) ? json(*(*recalls)->OptText(1)) : json(nullptr)},
           {"manufactured_to",
            (*recalls)->OptText(2) ? json(*(*recalls)->OptText(2)) : json(nullptr)},
           {"reason", (*recalls)->Text(3)}});
    }
    // The station's own facts and its company's operators, for the licence, lock
    // and certificate rules.
    const StationFacts& facts = **station;
    json license = nullptr;
    if (facts.license) {
      license = {{"number", facts.license->number},
                 {"valid_until", facts.license->valid_until.ToString()},
                 {"revoked", facts.license->revoked}};
    }
    auto ops = conn.Prepare(
        "SELECT id, cert_number, cert_valid_until FROM operators WHERE company_id = $1 ORDER BY "
        "id");
    if (!ops.ok()) return ErrorReply(ops.status());
    (*ops)->Bind(1, company);
    json operators = json::array();
    for (;;) {
      auto more = (*ops)->Step();
      if (!more.ok()) return ErrorReply(more.status());
      if (!*more) break;
      json certificate = nullptr;
      if (!(*ops)->IsNull(1) && !(*ops)->IsNull(2)) {
        certificate = {{"number", (*ops)->Text(1)}, {"valid_until", (*ops)->Text(2)}};
      }
      operators.push_back({{"id", (*ops)->Text(0)}, {"certificate", certificate}});
    }
    // Written as nlohmann would print the whole object (keys sorted), with the
    // cylinders already text: the page is the feed's bulk, and a json tree of it
    // cost more than the queries.
    const auto dump = [](const json& j) {
      return j.dump(-1, ' ', false, json::error_handler_t::replace);
    };
    Reply reply;
    reply.raw_content_type = "application/json; charset=utf-8";
    std::string& out = reply.raw_body;
    out.reserve(cylinders.size() + 4096);
    out.push_back('{');
    AppendJsonKey(&out, "company_id");
    out += dump(company);
    out.push_back(',');
    AppendJsonKey(&out, "custody");
    out += dump(custody);
    out.push_back(',');
    AppendJsonKey(&out, "cylinders");
    out += cylinders;
    out.push_back(',');
    AppendJsonKey(&out, "more");
    out += page->count == limit ? "true" : "false";
    out.push_back(',');
    AppendJsonKey(&out, "next_cursor");
    out += dump(page->next_cursor.empty() ? cursor->text : page->next_cursor);
    out.push_back(',');
    AppendJsonKey(&out, "operators");
    out += dump(operators);
    out.push_back(',');
    AppendJsonKey(&out, "recalls");
    out += dump(recall_list);
    out.push_back(',');
    AppendJsonKey(&out, "station");
    out += dump(json{{"locked", facts.locked},
                     {"lock_reason", facts.lock_reason},
                     {"filling_license", license}});
    out.push_back(',');
    AppendJsonKey(&out, "station_id");
    out += dump(station_id);
    out.push_back('}');
    return reply;
  });
}

}  // namespace pingma::registry
