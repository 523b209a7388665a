// Filling: the fill check (the policy engine online), checks decided offline, and
// fill records.
#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string_view>

#include <fmt/format.h>

#include "cases/fill_checks.h"
#include "http/fields.h"
#include "http/json_text.h"
#include "pingma/scanner/scan.h"

namespace pingma::registry {
namespace {

json ReasonCodes(const std::vector<Reason>& reasons) {
  json out = json::array();
  for (const Reason& r : reasons) out.push_back(ToString(r.code));
  return out;
}

struct FillCheckRequest {
  std::string station_id;
  std::string operator_id;
  std::string scan;
  ScanKey key;
  std::optional<double> empty_gross_kg;
  std::vector<Defect> defects;
};

Result<FillCheckRequest> ParseFillCheck(const json& body, const Principal& who) {
  FillCheckRequest r;
  PINGMA_RETURN_IF_ERROR(GetId(body, "station_id", &r.station_id));
  if (r.station_id != who.subject) {
    return Status::PermissionDenied(
        fmt::format("this token is for station {}, not {}", who.subject, r.station_id));
  }
  PINGMA_RETURN_IF_ERROR(GetId(body, "operator_id", &r.operator_id));
  std::optional<std::string> scan, code;
  PINGMA_RETURN_IF_ERROR(GetScanText(body, "scan", Need::kOptional, &scan, 512));
  PINGMA_RETURN_IF_ERROR(GetString(body, "code", Need::kOptional, &code, 64));
  if (!scan && !code) return Status::Invalid("give the cylinder as 'scan' or 'code'");
  r.scan = scan ? *scan : *code;
  auto key = ParseScan(r.scan);
  if (!key.ok()) {
    return Status::Invalid("the scan is not a cylinder code: " + key.status().message());
  }
  r.key = std::move(*key);
  PINGMA_RETURN_IF_ERROR(GetNumber(body, "empty_gross_kg", Need::kOptional, &r.empty_gross_kg));
  if (r.empty_gross_kg && !(*r.empty_gross_kg >= 0 && *r.empty_gross_kg < 1000)) {
    return Status::Invalid("empty_gross_kg must be from 0 to 1000");
  }
  if (auto it = body.find("defects"); it != body.end() && !it->is_null()) {
    if (!it->is_array() || it->size() > 32) {
      return Status::Invalid("the field 'defects' must be a list of defect names");
    }
    for (const json& d : *it) {
      if (!d.is_string()) return Status::Invalid("each defect must be a string");
      PINGMA_ASSIGN_OR_RETURN(auto defect, ParseDefect(d.get<std::string>()));
      r.defects.push_back(defect);
    }
  }
  return r;
}

const char* DecisionName(const FillDecision& d) {
  return d.allowed() ? "allow" : "block";
}

// The fill_check event's details, as nlohmann prints the object (keys sorted).
std::string CheckEventBody(const FillCheckRequest& req, const FillDecision& decision) {
  std::string out;
  out.reserve(160 + req.scan.size());
  out.push_back('{');
  AppendJsonKey(&out, "decision");
  AppendJsonString(&out, DecisionName(decision));
  if (!req.defects.empty()) {
    out.push_back(',');
    AppendJsonKey(&out, "defects");
    out.push_back('[');
    for (size_t i = 0; i < req.defects.size(); ++i) {
      if (i) out.push_back(',');
      AppendJsonString(&out, ToString(req.defects[i]));
    }
    out.push_back(']');
  }
  if (req.empty_gross_kg) {
    out.push_back(',');
    AppendJsonKey(&out, "empty_gross_kg");
    AppendJsonNumber(&out, *req.empty_gross_kg);
  }
  out.push_back(',');
  AppendJsonKey(&out, "operator_id");
  AppendJsonString(&out, req.operator_id);
  out.push_back(',');
  AppendJsonKey(&out, "reasons");
  out.push_back('[');
  for (size_t i = 0; i < decision.reasons.size(); ++i) {
    if (i) out.push_back(',');
    AppendJsonString(&out, ToString(decision.reasons[i].code));
  }
  out.push_back(']');
  out.push_back(',');
  AppendJsonKey(&out, "scan");
  AppendJsonString(&out, req.scan);
  out.push_back(',');
  AppendJsonKey(&out, "station_id");
  AppendJsonString(&out, req.station_id);
  out.push_back('}');
  return out;
}

// The answer to a fill check (API.md), written directly: the same text as the
// JSON object {check_id, decision, reasons, cylinder, flagged_for_scrap, fill}.
std::string CheckAnswer(const std::string& check_id, const FillDecision& decision,
                        const Cylinder* cylinder, CylinderState state, bool flagged) {
  std::string out;
  out.reserve(512);
  out.push_back('{');
  AppendJsonKey(&out, "check_id");
  AppendJsonString(&out, check_id);
  out.push_back(',');
  AppendJsonKey(&out, "decision");
  AppendJsonString(&out, DecisionName(decision));
  out.push_back(',');
  AppendJsonKey(&out, "reasons");
  out.push_back('[');
  for (size_t i = 0; i < decision.reasons.size(); ++i) {
    if (i) out.push_back(',');
    out.push_back('{');
    AppendJsonKey(&out, "code");
    AppendJsonString(&out, ToString(decision.reasons[i].code));
    out.push_back(',');
    AppendJsonKey(&out, "message");
    AppendJsonString(&out, decision.reasons[i].message);
    out.push_back('}');
  }
  out.append("],");
  AppendJsonKey(&out, "cylinder");
  if (cylinder) {
    out.push_back('{');
    AppendJsonKey(&out, "code");
    AppendJsonString(&out, cylinder->code);
    out.push_back(',');
    AppendJsonKey(&out, "model");
    AppendJsonString(&out, cylinder->model);
    out.push_back(',');
    AppendJsonKey(&out, "owner_company_id");
    AppendJsonString(&out, cylinder->owner_company_id);
    out.push_back(',');
    AppendJsonKey(&out, "next_inspection_due");
    if (decision.next_inspection_due) {
      AppendJsonString(&out, decision.next_inspection_due->ToString());
    } else {
      out.append("null");
    }
    out.push_back(',');
    AppendJsonKey(&out, "state");
    AppendJsonString(&out, ToString(state));
    out.push_back('}');
  } else {
    out.append("null");
  }
  out.push_back(',');
  AppendJsonKey(&out, "flagged_for_scrap");
  out.append(flagged ? "true" : "false");
  if (decision.fill) {
    const FillLimits& f = *decision.fill;
    const std::pair<const char*, double> limits[] = {{"tare_kg", f.tare_kg},
                                                     {"min_kg", f.min_kg},
                                                     {"max_kg", f.max_kg},
                                                     {"target_kg", f.target_kg}};
    out.push_back(',');
    AppendJsonKey(&out, "fill");
    out.push_back('{');
    for (size_t i = 0; i < 4; ++i) {
      if (i) out.push_back(',');
      AppendJsonKey(&out, limits[i].first);
      AppendJsonNumber(&out, limits[i].second);
    }
    out.push_back('}');
  }
  out.push_back('}');
  return out;
}

// ---- The regulator's counts of fill checks (read in regulator.cpp) ----------------

// Adds `code` to the ','-joined `*codes` unless it is there already.
void AddCodeOnce(std::string* codes, std::string_view code) {
  for (size_t start = 0; start < codes->size();) {
    size_t end = codes->find(',', start);
    if (end == std::string::npos) end = codes->size();
    if (std::string_view(*codes).substr(start, end - start) == code) return;
    start = end + 1;
  }
  if (!codes->empty()) codes->push_back(',');
  codes->append(code);
}

// The reason codes of a refused check, each once, joined by ','.
std::string RefusalReasons(const FillDecision& decision) {
  std::string out;
  for (const Reason& r : decision.reasons) AddCodeOnce(&out, ToString(r.code));
  return out;
}

// One check as the regulator's counts see it.
struct CheckTally {
  std::string day;  ///< the day it was decided, in the policy's zone
  std::string station_id;
  std::string company_id;
  bool refused = false;    ///< the decision at the scale was to block
  bool offline = false;    ///< decided on the station's replica
  bool disagrees = false;  ///< offline, and the registry decided otherwise
};

// One check counted on its station's day: an allowed check costs one small
// upsert, once a batch for all the checks of a station's day (WriteTx::Count).
// On PostgreSQL in the row of this registry's writer (schema/pg/0010), so that
// registries counting the same station's day do not wait for each other.
CountDelta CheckCount(sql::Dialect dialect, const CheckTally& t) {
  return {
      dialect == sql::Dialect::kSqlite
          ? "INSERT INTO check_days(day, station_id, company_id, checks, refused, offline_checks, "
            "offline_refused, disagreements) VALUES($1,$2,$3,$4,$5,$6,$7,$8) "
            "ON CONFLICT(day, station_id) DO UPDATE SET "
            "checks = check_days.checks + excluded.checks, "
            "refused = check_days.refused + excluded.refused, "
            "offline_checks = check_days.offline_checks + excluded.offline_checks, "
            "offline_refused = check_days.offline_refused + excluded.offline_refused, "
            "disagreements = check_days.disagreements + excluded.disagreements"
          : "INSERT INTO check_days(day, station_id, company_id, checks, refused, offline_checks, "
            "offline_refused, disagreements, shard) VALUES($1,$2,$3,$4,$5,$6,$7,$8,"
            "pg_backend_pid()) "
            "ON CONFLICT(day, station_id, shard) DO UPDATE SET "
            "checks = check_days.checks + excluded.checks, "
            "refused = check_days.refused + excluded.refused, "
            "offline_checks = check_days.offline_checks + excluded.offline_checks, "
            "offline_refused = check_days.offline_refused + excluded.offline_refused, "
            "disagreements = check_days.disagreements + excluded.disagreements",
      {t.day, t.station_id, t.company_id},
      {1, t.refused ? 1 : 0, t.offline ? 1 : 0, t.offline && t.refused ? 1 : 0,
       t.disagrees ? 1 : 0}};
}

struct Refusal {
  std::int64_t seq = 0;
  Instant at;  ///< when it was decided (offline: at the station)
  std::string day, station_id, company_id, operator_id, code;
  std::string reasons;  ///< codes joined by ','
  bool offline = false;
  bool registry_allows = false;  ///< offline: the registry's own decision was to allow
};

// The refusal's own row; its counts, one per reason, are RefusalCounts'.
Status RecordRefusal(Conn& conn, const Refusal& r) {
  PINGMA_ASSIGN_OR_RETURN(
      auto st,
      conn.Prepare(
          "INSERT INTO refusals(seq, at, day, station_id, company_id, operator_id, code, reasons, "
          "offline, registry_decision, agrees) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)"));
  st->Bind(1, r.seq).Bind(2, r.at.unix_ms).Bind(3, r.day).Bind(4, r.station_id);
  st->Bind(5, r.company_id).Bind(6, r.operator_id).Bind(7, r.code).Bind(8, r.reasons);
  st->Bind(9, r.offline ? 1 : 0);
  if (r.offline) {
    st->Bind(10, r.registry_allows ? "allow" : "block").Bind(11, r.registry_allows ? 0 : 1);
  } else {
    st->BindNull(10).BindNull(11);  // the registry's decision is the refusal itself
  }
  return st->Defer();
}

// A refusal counted on its station's day, once per reason (on PostgreSQL in
// the writer's row, as CheckCount).
std::vector<CountDelta> RefusalCounts(sql::Dialect dialect, const Refusal& r) {
  std::vector<CountDelta> counts;
  std::string_view rest = r.reasons;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    counts.push_back(
        {dialect == sql::Dialect::kSqlite
             ? "INSERT INTO refusal_days(day, station_id, reason, company_id, n, offline_n, "
               "disagreements) VALUES($1,$2,$3,$4,$5,$6,$7) "
               "ON CONFLICT(day, station_id, reason) DO UPDATE SET n = refusal_days.n + "
               "excluded.n, offline_n = refusal_days.offline_n + excluded.offline_n, "
               "disagreements = refusal_days.disagreements + excluded.disagreements"
             : "INSERT INTO refusal_days(day, station_id, reason, company_id, n, offline_n, "
               "disagreements, shard) VALUES($1,$2,$3,$4,$5,$6,$7,pg_backend_pid()) "
               "ON CONFLICT(day, station_id, reason, shard) DO UPDATE SET n = refusal_days.n + "
               "excluded.n, offline_n = refusal_days.offline_n + excluded.offline_n, "
               "disagreements = refusal_days.disagreements + excluded.disagreements",
         {r.day, r.station_id, std::string(rest.substr(0, comma)), r.company_id},
         {1, r.offline ? 1 : 0, r.offline && r.registry_allows ? 1 : 0}});
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  }
  return counts;
}

// A check and, when refused, its refusal: counted within the job (`tx`), or at
// once on `conn` (the counts filled from the log, one job of them all).
Status CountAndRecord(WriteTx* tx, Conn& conn, const CheckTally& t, const Refusal* refusal) {
  std::vector<CountDelta> counts = {CheckCount(conn.dialect(), t)};
  if (refusal != nullptr) {
    PINGMA_RETURN_IF_ERROR(RecordRefusal(conn, *refusal));
    for (CountDelta& c : RefusalCounts(conn.dialect(), *refusal)) counts.push_back(std::move(c));
  }
  for (CountDelta& c : counts) {
    if (tx != nullptr) {
      tx->Count(std::move(c));
    } else {
      PINGMA_RETURN_IF_ERROR(ApplyCount(conn, c));
    }
  }
  return Status::Ok();
}

// A boolean read from a body by sql::JsonField: SQLite gives 1, PostgreSQL 'true'.
bool ExtractedTrue(const sql::Statement& st, int column) {
  if (st.IsNull(column)) return false;
  const std::string text = st.Text(column);
  return text == "1" || text == "true";
}

// One fill_check event of BackfillCheckCounts's walk, in `st`'s current row
// (seq, at, code, then the body's fields), counted as it was decided.
Status CountFromLog(Conn& conn, const sql::Statement& st,
                    const std::map<std::string, std::string>& company_of, int utc_offset_minutes) {
  Refusal r;
  r.seq = st.Int(0);
  r.at = Instant{st.Int(1)};
  r.offline = ExtractedTrue(st, 7);
  if (r.offline) {
    if (auto decided = Instant::Parse(st.IsNull(8) ? "" : st.Text(8)); decided.ok()) {
      r.at = *decided;
    }
    r.registry_allows = !st.IsNull(9) && st.Text(9) == "allow";
  }
  r.day = r.at.LocalDate(utc_offset_minutes).ToString();
  r.code = st.Text(2);
  r.station_id = st.Text(3);
  r.operator_id = st.Text(4);
  if (auto it = company_of.find(r.station_id); it != company_of.end()) r.company_id = it->second;
  const bool refused = st.Text(5) != "allow";
  const bool disagrees = r.offline && refused == r.registry_allows;
  const CheckTally tally{r.day, r.station_id, r.company_id, refused, r.offline, disagrees};
  if (!refused) return CountAndRecord(nullptr, conn, tally, nullptr);
  json reasons = json::parse(st.Text(6), nullptr, false);
  if (reasons.is_array()) {
    for (const json& code : reasons) {
      if (code.is_string()) AddCodeOnce(&r.reasons, code.get<std::string>());
    }
  }
  return CountAndRecord(nullptr, conn, tally, &r);
}

// Fills the counts from the log, once: store.cpp clears the mark when it creates
// the counting tables, so that a store made before them keeps its past in the
// statistics. Everything is recounted from the log, which is the record.
Status BackfillCheckCounts(Conn& conn, int utc_offset_minutes) {
  PINGMA_ASSIGN_OR_RETURN(auto done, conn.Prepare("SELECT 1 FROM meta WHERE key = $1"));
  done->Bind(1, kCheckCountsKey);
  PINGMA_ASSIGN_OR_RETURN(auto marked, done->Step());
  if (marked) return Status::Ok();
  done->Reset();
  PINGMA_RETURN_IF_ERROR(
      conn.db().Exec("DELETE FROM check_days; DELETE FROM refusal_days; DELETE FROM refusals;"));
  std::map<std::string, std::string> company_of;  // station -> company
  {
    PINGMA_ASSIGN_OR_RETURN(auto st, conn.Prepare("SELECT id, company_id FROM stations"));
    for (;;) {
      PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
      if (!row) break;
      company_of.emplace(st->Text(0), st->Text(1));
    }
  }
  // SQLite reads the few fields from each body; the log is walked once. A check
  // decided offline counts as its fill_check event says it was decided: on the
  // station's day and with the station's decision, beside the registry's.
  std::string fields;
  for (const char* key : {"station_id", "operator_id", "decision", "reasons", "offline",
                          "decided_at", "registry_decision"}) {
    fields += ", " + sql::JsonField(conn.dialect(), "body", key);
  }
  // A page of the log at a time: each check's counts are written while its page is
  // read, and on PostgreSQL that holds the page's rest in memory (pg_sql.h), not
  // the log's.
  constexpr std::int64_t kPage = 10000;
  PINGMA_ASSIGN_OR_RETURN(auto st,
                          conn.Prepare("SELECT seq, at, code" + fields +
                                       " FROM events WHERE type = 'fill_check' AND seq > $1 "
                                       "ORDER BY seq LIMIT $2"));
  std::int64_t after = 0;
  for (std::int64_t rows = kPage; rows == kPage;) {
    st->Bind(1, after).Bind(2, kPage);
    rows = 0;
    for (;;) {
      PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
      if (!row) break;
      ++rows;
      after = st->Int(0);
      PINGMA_RETURN_IF_ERROR(CountFromLog(conn, *st, company_of, utc_offset_minutes));
    }
    st->Reset();
  }
  PINGMA_ASSIGN_OR_RETURN(auto mark, conn.Prepare("INSERT INTO meta(key, value) VALUES($1, '1')"));
  mark->Bind(1, kCheckCountsKey);
  return mark->Run();
}

// The cached value for `key`, loaded with `load` when missing. Once the map holds
// `max_size` entries a loaded value is not kept but put in `*overflow`, valid
// until the next call.
template <typename Map, typename Load>
Result<const typename Map::mapped_type*> Cached(Map& map, const std::string& key, Load load,
                                                size_t max_size = static_cast<size_t>(-1),
                                                typename Map::mapped_type* overflow = nullptr) {
  if (auto it = map.find(key); it != map.end()) return &it->second;
  PINGMA_ASSIGN_OR_RETURN(auto loaded, load());
  if (overflow != nullptr && map.size() >= max_size) {
    *overflow = std::move(loaded);
    return overflow;
  }
  return &map.emplace(key, std::move(loaded)).first->second;
}

}  // namespace

FillChecks::FillChecks(const Context& context) : UseCase(context) {
  store_->set_hooks(
      {[this](bool whole_batch) { OnRollback(whole_batch); },
       [this](const Event& event) { OnAppend(event); },
       [this](Conn& conn, const ForeignWindow& window) { OnForeignAppends(conn, window); }});
  // A failure here only leaves clone detection to start afresh; the log is intact.
  (void)LoadSightings();
}

void FillChecks::OnAppend(const Event& event) {
  if (event.code.empty()) {
    cylinders_.clear();  // set-up: custody and the like reach many cylinders
  } else if (event.type != "fill_check") {
    cylinders_.erase(event.code);
  }
}

void FillChecks::OnRollback(bool whole_batch) {
  // Caches may hold what was undone.
  ForgetCached();
  // Sightings are recorded only once a check's job has succeeded; a batch that
  // fails to commit takes its checks with it.
  if (whole_batch) {
    sightings_.clear();
    sightings_lost_ = true;
  }
}

Result<FillCheckInput> FillChecks::GatherFacts(Conn& conn, const std::string& station_id,
                                               const std::string& operator_id,
                                               const Cylinder* cylinder) {
  FillCheckInput in;
  PINGMA_ASSIGN_OR_RETURN(auto station, Cached(facts_.stations, station_id,
                                               [&] { return LoadStation(conn, station_id); }));
  if (!*station) return Status::Invalid(fmt::format("station {} is not registered", station_id));
  in.station = **station;
  PINGMA_ASSIGN_OR_RETURN(auto op, Cached(facts_.operators, operator_id,
                                          [&] { return LoadOperator(conn, operator_id); }));
  in.operator_facts = *op;
  if (cylinder) {
    const Cylinder& c = *cylinder;
    in.cylinder = c;
    PINGMA_ASSIGN_OR_RETURN(auto custody, Cached(facts_.custody, c.owner_company_id, [&] {
                              return LoadCustody(conn, c.owner_company_id);
                            }));
    in.custody = *custody;
    auto recalls =
        Cached(facts_.recalls, c.manufacturer, [&] { return LoadRecalls(conn, c.manufacturer); });
    if (!recalls.ok()) return recalls.status();
    in.recalls = **recalls;
  }
  return in;
}

Status FillChecks::LoadSightings() {
  // Before the first check: the regulator's counts of a store made before them
  // are filled from the log, once, in one transaction.
  Reply counted = store_->Run([this](WriteTx& tx) -> Reply {
    Status s = BackfillCheckCounts(tx.conn(), policy_.utc_offset_minutes);
    return s.ok() ? Reply{} : ErrorReply(s);
  });
  if (counted.failed()) return Status::IoError(counted.body.dump());
  Reply r = store_->Run([this](WriteTx& tx) -> Reply {
    Status s = ReadSightings(tx.conn(), tx.now());
    return s.ok() ? Reply{} : ErrorReply(s);
  });
  return r.failed() ? Status::IoError(r.body.dump()) : Status::Ok();
}

Status FillChecks::ReadSightings(Conn& conn, Instant now) {
  sightings_.clear();
  const std::int64_t cutoff =
      now.unix_ms - static_cast<std::int64_t>(policy_.clone_window_minutes) * 60000;
  // Newest first, by sequence (the primary key), a page at a time, stopping at the
  // first event older than the window: the log is in time order, so this reads
  // only the tail, and holds one page, however long the log.
  constexpr std::int64_t kPage = 4096;
  PINGMA_ASSIGN_OR_RETURN(auto st, conn.Prepare("SELECT seq, code, at, type, body FROM events "
                                                "WHERE seq < $1 ORDER BY seq DESC LIMIT $2"));
  std::int64_t before = INT64_MAX;
  for (bool more = true; more;) {
    st->Bind(1, before).Bind(2, kPage);
    std::int64_t rows = 0;
    bool past_window = false;
    for (;;) {
      PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
      if (!row) break;
      ++rows;
      before = st->Int(0);
      if (st->Int(2) < cutoff) {
        past_window = true;
        break;
      }
      if (st->IsNull(1) || st->Text(3) != "fill_check") continue;
      // The newest sighting of a code wins, by when the check was decided: a check
      // decided offline is logged when it arrives (never before it was decided, so
      // the walk above reaches it), maybe after later checks of the same code.
      if (auto sighting = SightingOf(st->Text(4), st->Int(2))) {
        if (sighting->at.unix_ms < cutoff) continue;
        auto [held, added] = sightings_.emplace(st->Text(1), *sighting);
        if (!added && held->second.at < sighting->at) held->second = std::move(*sighting);
      }
    }
    st->Reset();
    more = rows == kPage && !past_window;
  }
  sightings_lost_ = false;
  return Status::Ok();
}

std::optional<Sighting> FillChecks::SightingOf(std::string_view body_text, std::int64_t at,
                                               bool* offline) {
  json body = json::parse(body_text, nullptr, false);
  if (!body.is_object() || !body.contains("station_id") || !body["station_id"].is_string()) {
    return std::nullopt;
  }
  const auto flag = body.find("offline");
  const bool decided_offline = flag != body.end() && flag->is_boolean() && flag->get<bool>();
  if (offline != nullptr) *offline = decided_offline;
  // As at run time, only checks that found a cylinder count as sightings: for a
  // check decided offline, a cylinder the registry found (the station's replica
  // may not have known it).
  const json& reasons = body.value(decided_offline ? "registry_reasons" : "reasons", json::array());
  if (!reasons.is_array() || std::find(reasons.begin(), reasons.end(),
                                       ToString(ReasonCode::kUnknownCode)) != reasons.end()) {
    return std::nullopt;
  }
  // A check decided offline was at the scale when the station decided it, not
  // when the registry heard of it.
  if (decided_offline) {
    const auto decided = body.find("decided_at");
    if (decided == body.end() || !decided->is_string()) return std::nullopt;
    auto when = Instant::Parse(decided->get<std::string>());
    if (!when.ok()) return std::nullopt;
    at = when->unix_ms;
  }
  return Sighting{body["station_id"].get<std::string>(), Instant{at}};
}

void FillChecks::OnForeignAppends(Conn& conn, const ForeignWindow& window) {
  if (sightings_lost_) {  // a batch failed: the caches go, the whole window is read again
    ForgetCached();
    (void)ReadSightings(conn, clock_->Now());
    return;
  }
  // The other registries' events, in their order, as this registry's own would
  // have been seen (OnAppend, and set-up's ForgetFacts): a set-up event makes the
  // facts go, a cylinder's event its cached row, and a fill check is a sighting.
  // (On PostgreSQL the window may hold events seen before: each of these is
  // the same when done twice, and a sighting older than the one kept is not kept.)
  auto st =
      conn.Prepare(window.Query("code, type, at, CASE WHEN type = 'fill_check' THEN body END"));
  if (!st.ok()) return ForgetCached();
  window.Bind(**st);
  for (;;) {
    auto row = (*st)->Step();
    if (!row.ok()) return ForgetCached();  // not all seen: nothing kept can be trusted
    if (!*row) break;
    if ((*st)->IsNull(0)) {  // set-up: facts, and custody and the like of many cylinders
      ForgetCached();
      continue;
    }
    const std::string code = (*st)->Text(0);
    if ((*st)->Text(1) != "fill_check") {
      cylinders_.erase(code);
      continue;
    }
    bool offline = false;
    if (auto sighting = SightingOf((*st)->Text(3), (*st)->Int(2), &offline)) {
      if (offline || window.unchained) {  // the newest sighting is kept
        RecordOfflineSighting(code, std::move(*sighting));
      } else {
        RecordSighting(code, std::move(*sighting));
      }
    }
  }
}

void FillChecks::RecordSighting(const std::string& code, Sighting sighting) {
  const Instant at = sighting.at;
  sightings_[code] = std::move(sighting);
  // Bound the memory: when the map has grown past the mark, forget the sightings
  // older than the window, and set the mark at twice what is left, so that the
  // sweep's cost is spread over at least as many new codes.
  if (sightings_.size() >= sightings_prune_at_) {
    const std::int64_t window = static_cast<std::int64_t>(policy_.clone_window_minutes) * 60000;
    for (auto it = sightings_.begin(); it != sightings_.end();) {
      it = at.unix_ms - it->second.at.unix_ms > window ? sightings_.erase(it) : std::next(it);
    }
    sightings_prune_at_ = std::max(kMinSightingsPruneAt, 2 * sightings_.size());
  }
}

void FillChecks::RecordOfflineSighting(const std::string& code, Sighting sighting) {
  if (auto held = sightings_.find(code);
      held != sightings_.end() && !(held->second.at < sighting.at)) {
    return;  // a later check of the code is what the next check compares with
  }
  RecordSighting(code, std::move(sighting));
}

Result<FillDecision> FillChecks::DecideAsOf(Conn& conn, const ReplicaCheck& check,
                                            std::string* company_id) {
  PINGMA_ASSIGN_OR_RETURN(auto facts,
                          GatherFacts(conn, check.station_id, check.operator_id, check.cylinder));
  FillCheckInput& in = facts;
  in.empty_gross_kg = check.empty_gross_kg;
  in.defects = check.defects;
  in.last_check = check.last_check;
  in.now = check.at;
  if (company_id != nullptr) *company_id = in.station.company_id;
  return DecideFill(policy_, in);
}

Result<const std::optional<CylinderRow>*> FillChecks::CachedCylinder(Conn& conn,
                                                                     const std::string& code) {
  return Cached(
      cylinders_, code, [&] { return LoadCylinder(conn, code, /*with_carriers=*/false); },
      max_cached_cylinders_, &uncached_cylinder_);
}

void FillChecks::PostFillCheck(const Call& call, Store::Done done) {
  auto body = ParseBody(call.request->body);
  if (!body.ok()) return done(ErrorReply(body.status()));
  auto req = ParseFillCheck(*body, call.who);
  if (!req.ok()) return done(ErrorReply(req.status()));
  Write(std::move(done), [this, req = std::move(*req), who = call.who](WriteTx& tx) -> Reply {
    std::string key;
    auto code = ResolveKey(tx.conn(), req.key, &key, /*trust_codes=*/true);
    if (!code.ok()) return ErrorReply(code.status());
    const Cylinder* cached = nullptr;
    if (*code) {
      auto row = CachedCylinder(tx.conn(), **code);
      if (!row.ok()) return ErrorReply(row.status());
      if (**row) cached = &(**row)->cylinder;
    }
    // GatherFacts copies the cylinder: the cache entry goes when the check flags it.
    auto facts = GatherFacts(tx.conn(), req.station_id, req.operator_id, cached);
    if (!facts.ok()) return ErrorReply(facts.status());
    FillCheckInput& in = *facts;
    in.empty_gross_kg = req.empty_gross_kg;
    in.defects = req.defects;
    in.now = tx.now();
    const std::string subject = in.cylinder ? in.cylinder->code : key;
    if (auto seen = sightings_.find(subject); seen != sightings_.end()) {
      in.last_check = seen->second;
    }
    const FillDecision decision = DecideFill(policy_, in);

    auto seq = tx.Append({"", subject, "fill_check", tx.now(), ToString(who.role), who.subject,
                          CheckEventBody(req, decision)});
    if (!seq.ok()) return ErrorReply(seq.status());
    const std::string day = decision.today.ToString();
    const Refusal refusal{*seq,
                          tx.now(),
                          day,
                          req.station_id,
                          in.station.company_id,
                          req.operator_id,
                          subject,
                          RefusalReasons(decision)};
    if (Status s = CountAndRecord(&tx, tx.conn(),
                                  {day, req.station_id, in.station.company_id, !decision.allowed()},
                                  decision.allowed() ? nullptr : &refusal);
        !s.ok()) {
      return ErrorReply(s);
    }

    bool flagged = false;
    CylinderState state = CylinderState::kActive;
    if (in.cylinder) {
      state = in.cylinder->state;
      if (decision.flags_for_scrap() && state == CylinderState::kActive) {
        Reply r = FlagCylinderForScrap(tx, who, subject, decision.scrap_reasons.front());
        if (r.failed()) return r;
        flagged = true;
        state = CylinderState::kScrapPending;
      }
      RecordSighting(subject, Sighting{req.station_id, tx.now()});
    }
    Reply reply;
    reply.raw_content_type = "application/json; charset=utf-8";
    reply.raw_body =
        CheckAnswer(EventId(*seq), decision, in.cylinder ? &*in.cylinder : nullptr, state, flagged);
    return reply;
  });
}

namespace {

// ---- Checks decided offline (POST /v1/fill-checks/offline) -------------------------

/// How far ahead of the registry's clock a station's `at` may be (clocks drift).
constexpr std::int64_t kOfflineAheadMs = 5 * 60 * 1000;
/// How old an uploaded check may be: a journal older than this is not a late
/// upload but a wrong clock or a replay (DOMAIN.md keeps records two years; a
/// station is not offline for more than a year).
constexpr std::int64_t kOfflineMaxAgeDays = 400;
constexpr std::int64_t kMsPerDay = 86400000;

struct OfflineCheckRequest {
  std::string check_id;                      ///< the station's UUID, in lower case
  FillCheckRequest check;                    ///< station, operator, scan, empty weight, defects
  Instant decided_at;                        ///< `at`: when the station decided
  std::optional<Instant> replica_synced_at;  ///< nullopt: the replica never synced
  bool station_allowed = false;
  std::vector<ReasonCode> station_reasons;
};

Result<OfflineCheckRequest> ParseOfflineCheck(const json& body, const Principal& who, Instant now) {
  OfflineCheckRequest r;
  auto check = ParseFillCheck(body, who);  // the station's token first: 403 before 422
  if (!check.ok()) return check.status();
  r.check = std::move(*check);
  PINGMA_RETURN_IF_ERROR(GetUuid(body, "check_id", &r.check_id));
  std::optional<Instant> at;
  PINGMA_RETURN_IF_ERROR(GetInstant(body, "at", Need::kRequired, &at));
  if (at->unix_ms - now.unix_ms > kOfflineAheadMs) {
    return Status::Invalid(fmt::format(
        "the field 'at' ({}) is more than 5 minutes ahead of the registry's clock ({}): a "
        "check cannot have been decided in the future; set the station's clock",
        at->ToString(), now.ToString()));
  }
  if (now.unix_ms - at->unix_ms > kOfflineMaxAgeDays * kMsPerDay) {
    return Status::Invalid(fmt::format(
        "the field 'at' ({}) is more than {} days before the registry's clock ({}): not a "
        "check decided offline and uploaded late; check the station's clock",
        at->ToString(), kOfflineMaxAgeDays, now.ToString()));
  }
  r.decided_at = *at;
  // Required, and null when the replica had never synced.
  if (body.find("replica_synced_at") == body.end()) {
    return Status::Invalid(
        "the field 'replica_synced_at' is required (null when the replica never synced)");
  }
  PINGMA_RETURN_IF_ERROR(
      GetInstant(body, "replica_synced_at", Need::kOptional, &r.replica_synced_at));
  std::optional<std::string> decision;
  PINGMA_RETURN_IF_ERROR(GetString(body, "decision", Need::kRequired, &decision, 16));
  if (*decision != "allow" && *decision != "block") {
    return Status::Invalid("the field 'decision' must be allow or block");
  }
  r.station_allowed = *decision == "allow";
  const auto reasons = body.find("reasons");
  if (reasons == body.end() || reasons->is_null()) {
    return Status::Invalid("the field 'reasons' is required ([] for an allowed check)");
  }
  if (!reasons->is_array() || reasons->size() > 32) {
    return Status::Invalid("the field 'reasons' must be a list of reason codes");
  }
  for (const json& code : *reasons) {
    if (!code.is_string()) return Status::Invalid("each of 'reasons' must be a reason code");
    auto parsed = ParseFillReasonCode(code.get<std::string>());
    if (!parsed.ok()) {
      return Status::Invalid(fmt::format("the field 'reasons': {}", parsed.status().message()));
    }
    r.station_reasons.push_back(*parsed);
  }
  // DecideFill allows exactly when no rule fails; the station's engine is the same.
  if (r.station_allowed && !r.station_reasons.empty()) {
    return Status::Invalid("an allowed check has no reasons: 'reasons' must be []");
  }
  if (!r.station_allowed && r.station_reasons.empty()) {
    return Status::Invalid("a blocked check names at least one reason in 'reasons'");
  }
  return r;
}

json CodesOf(const std::vector<ReasonCode>& codes) {
  json out = json::array();
  for (ReasonCode code : codes) out.push_back(ToString(code));
  return out;
}

// The offline check's fill_check event: the online check's fields, with the
// station's decision and reasons (what happened at the scale), and the offline
// ones. Only a check decided offline has them; online bodies are unchanged.
std::string OfflineCheckEventBody(const OfflineCheckRequest& req, const FillDecision& registry,
                                  bool agrees) {
  json body = {{"decision", req.station_allowed ? "allow" : "block"},
               {"reasons", CodesOf(req.station_reasons)},
               {"operator_id", req.check.operator_id},
               {"scan", req.check.scan},
               {"station_id", req.check.station_id},
               {"offline", true},
               {"station_check_id", req.check_id},
               {"decided_at", req.decided_at.ToString()},
               {"replica_synced_at",
                req.replica_synced_at ? json(req.replica_synced_at->ToString()) : json(nullptr)},
               {"registry_decision", DecisionName(registry)},
               {"registry_reasons", ReasonCodes(registry.reasons)},
               {"agrees", agrees}};
  if (!req.check.defects.empty()) {
    json defects = json::array();
    for (Defect d : req.check.defects) defects.push_back(ToString(d));
    body["defects"] = std::move(defects);
  }
  if (req.check.empty_gross_kg) body["empty_gross_kg"] = *req.check.empty_gross_kg;
  return body.dump();
}

}  // namespace

void FillChecks::PostOfflineFillCheck(const Call& call, Store::Done done) {
  auto body = ParseBody(call.request->body);
  if (!body.ok()) return done(ErrorReply(body.status()));
  auto req = ParseOfflineCheck(*body, call.who, clock_->Now());
  if (!req.ok()) return done(ErrorReply(req.status()));
  Write(std::move(done), [this, req = std::move(*req), who = call.who](WriteTx& tx) -> Reply {
    // The station's check_id names one decision at the scale: sent again, it is
    // answered as it was the first time and nothing is stored. A check_id sent
    // again with another body is answered the same way: the first is what was
    // recorded, and a station that reuses an id has a bug this cannot mend. The
    // table's key holds on every registry of one database and across restarts.
    // Another station's id is not answered: each station sees its own checks only.
    auto dup = tx.conn().Prepare(
        "SELECT o.answer, e.actor_id FROM offline_checks o JOIN events e ON e.seq = o.seq "
        "WHERE o.check_id = $1");
    if (!dup.ok()) return ErrorReply(dup.status());
    (*dup)->Bind(1, req.check_id);
    auto seen = (*dup)->Step();
    if (!seen.ok()) return ErrorReply(seen.status());
    if (*seen) {
      json answer = json::parse((*dup)->Text(0), nullptr, false);
      const std::string sender = (*dup)->Text(1);
      (*dup)->Reset();
      if (sender != who.subject) return IdInUse("check_id " + req.check_id);
      if (!answer.is_object()) {
        return ErrorReply(
            Status::Corruption("the stored answer of check " + req.check_id + " is not JSON"));
      }
      answer["duplicate"] = true;
      return Reply{200, std::move(answer), {}, {}};
    }
    (*dup)->Reset();

    std::string key;
    auto code = ResolveKey(tx.conn(), req.check.key, &key, /*trust_codes=*/true);
    if (!code.ok()) return ErrorReply(code.status());
    std::optional<Cylinder> cylinder;
    if (*code) {
      auto row = CachedCylinder(tx.conn(), **code);
      if (!row.ok()) return ErrorReply(row.status());
      if (**row) cylinder = (**row)->cylinder;
    }
    const std::string subject = cylinder ? cylinder->code : key;

    // Clone detection: the registry compares the check with the latest check of
    // the code it knows, before or after it, as an online check at that moment
    // would have been (FillCheckInput::last_check). A check at another station
    // within the window is as suspicious when one of them was decided offline;
    // at the same station it is not (a station that uploads late is no clone of
    // itself).
    std::optional<Sighting> last_check;
    if (cylinder) {
      if (auto held = sightings_.find(subject); held != sightings_.end()) {
        last_check = held->second;
      }
    }
    std::string company_id;
    auto decided =
        DecideAsOf(tx.conn(),
                   {req.check.station_id, req.check.operator_id, cylinder ? &*cylinder : nullptr,
                    req.decided_at, req.check.empty_gross_kg, req.check.defects, last_check},
                   &company_id);
    if (!decided.ok()) return ErrorReply(decided.status());
    const FillDecision& registry = *decided;
    // Agreement is on the decision, allow or block: two refusals for different
    // reasons both kept the cylinder off the scale.
    const bool agrees = req.station_allowed == registry.allowed();

    auto seq = tx.Append({"", subject, "fill_check", tx.now(), ToString(who.role), who.subject,
                          OfflineCheckEventBody(req, registry, agrees)});
    if (!seq.ok()) return ErrorReply(seq.status());
    // Counted as decided: on the station's day, refused when the station refused.
    const std::string day = registry.today.ToString();
    std::string reasons;
    for (ReasonCode r : req.station_reasons) AddCodeOnce(&reasons, ToString(r));
    Refusal refusal{*seq,       req.decided_at,        day,     req.check.station_id,
                    company_id, req.check.operator_id, subject, reasons};
    refusal.offline = true;
    refusal.registry_allows = registry.allowed();
    if (Status s = CountAndRecord(
            &tx, tx.conn(),
            {day, req.check.station_id, company_id, !req.station_allowed, true, !agrees},
            req.station_allowed ? nullptr : &refusal);
        !s.ok()) {
      return ErrorReply(s);
    }

    // What the registry's decision flags, it flags, as an online check would: once,
    // while the cylinder is active (a flagged or scrapped one stays as it is).
    if (cylinder && registry.flags_for_scrap() && cylinder->state == CylinderState::kActive) {
      Reply r = FlagCylinderForScrap(tx, who, subject, registry.scrap_reasons.front());
      if (r.failed()) return r;
    }

    // Allowed at the scale where the registry would have refused: a cylinder may
    // have been filled that should not have been. Regulators see it as they see an
    // offline fill's (PostFill), once: a check sent again stops above.
    if (req.station_allowed && !registry.allowed()) {
      const json violation = {{"registry_decision", "block"},
                              {"reasons", ReasonCodes(registry.reasons)},
                              {"offline_decision",
                               {{"decision", "allow"},
                                {"reasons", json::array()},
                                {"decided_at", req.decided_at.ToString()}}},
                              {"check_id", EventId(*seq)},
                              {"station_check_id", req.check_id},
                              {"station_id", req.check.station_id}};
      auto v =
          tx.Append({"", subject, "violation", tx.now(), "registry", "policy", violation.dump()});
      if (!v.ok()) return ErrorReply(v.status());
    }

    json registry_reasons = json::array();
    for (const Reason& r : registry.reasons) {
      registry_reasons.push_back({{"code", ToString(r.code)}, {"message", r.message}});
    }
    json answer = {{"check_id", req.check_id},
                   {"registry_decision", DecisionName(registry)},
                   {"registry_reasons", std::move(registry_reasons)},
                   {"agrees", agrees}};
    auto keep =
        tx.conn().Prepare("INSERT INTO offline_checks(check_id, seq, answer) VALUES($1,$2,$3)");
    if (!keep.ok()) return ErrorReply(keep.status());
    (*keep)->Bind(1, req.check_id).Bind(2, *seq).Bind(3, answer.dump());
    if (Status s = (*keep)->Run(); !s.ok()) return ErrorReply(s);
    // Last, once nothing can fail: a job that fails is undone, its sighting too.
    if (cylinder) RecordOfflineSighting(subject, Sighting{req.check.station_id, req.decided_at});
    answer["duplicate"] = false;
    return Reply{201, std::move(answer), {}, {}};
  });
}

namespace {

struct FillRecord {
  std::string event_id;
  std::optional<std::string> check_id;
  std::string code;
  std::string station_id;
  std::string operator_id;
  std::optional<Instant> started_at, ended_at;
  std::optional<double> net_kg;
  std::string result;
  bool offline = false;
  bool station_allowed = false;  ///< an offline fill: the station's own decision
  json stored;                   ///< the record as received, for the event
};

Result<FillRecord> ParseFill(const json& body, const Principal& who) {
  FillRecord f;
  std::optional<std::string> check_id, raw_code, result, scale_id;
  PINGMA_RETURN_IF_ERROR(GetUuid(body, "event_id", &f.event_id));
  PINGMA_RETURN_IF_ERROR(GetString(body, "check_id", Need::kOptional, &check_id, 64));
  f.check_id = check_id;
  PINGMA_RETURN_IF_ERROR(GetString(body, "code", Need::kRequired, &raw_code, 64));
  PINGMA_ASSIGN_OR_RETURN(auto code, NormaliseCode(*raw_code));
  f.code = code;
  PINGMA_RETURN_IF_ERROR(GetId(body, "station_id", &f.station_id));
  if (f.station_id != who.subject) {
    return Status::PermissionDenied(
        fmt::format("this token is for station {}, not {}", who.subject, f.station_id));
  }
  PINGMA_RETURN_IF_ERROR(GetId(body, "operator_id", &f.operator_id));
  PINGMA_RETURN_IF_ERROR(GetString(body, "scale_id", Need::kRequired, &scale_id, 64));
  PINGMA_RETURN_IF_ERROR(GetInstant(body, "started_at", Need::kRequired, &f.started_at));
  PINGMA_RETURN_IF_ERROR(GetInstant(body, "ended_at", Need::kRequired, &f.ended_at));
  if (*f.ended_at < *f.started_at) return Status::Invalid("ended_at is before started_at");
  // Scale readings cannot be negative; net and residual are differences of
  // readings (a residual below zero is an empty cylinder lighter than its tare).
  struct Weight {
    const char* key;
    double min;
  };
  for (const Weight w :
       {Weight{"tare_kg", 0}, Weight{"gross_before_kg", 0}, Weight{"gross_after_kg", 0},
        Weight{"net_kg", -100}, Weight{"residual_kg", -100}}) {
    std::optional<double> v;
    PINGMA_RETURN_IF_ERROR(GetNumber(body, w.key, Need::kRequired, &v));
    if (!(*v >= w.min && *v < 1000)) {
      return Status::Invalid(
          fmt::format("the field '{}' must be from {} to 1000 kg", w.key, w.min));
    }
    if (std::string_view(w.key) == "net_kg") f.net_kg = v;
  }
  PINGMA_RETURN_IF_ERROR(GetString(body, "result", Need::kRequired, &result, 16));
  if (*result != "ok" && *result != "overfill" && *result != "underfill" &&
      *result != "interrupted") {
    return Status::Invalid("result must be ok, overfill, underfill or interrupted");
  }
  f.result = *result;
  const json* post_checks = nullptr;
  PINGMA_RETURN_IF_ERROR(GetObject(body, "post_checks", Need::kRequired, &post_checks));
  std::optional<bool> offline;
  PINGMA_RETURN_IF_ERROR(GetBool(body, "offline", Need::kOptional, &offline));
  f.offline = offline.value_or(false);
  if (f.offline) {
    const json* station_decision = nullptr;
    PINGMA_RETURN_IF_ERROR(GetObject(body, "offline_decision", Need::kRequired, &station_decision));
    std::optional<std::string> decision;
    PINGMA_RETURN_IF_ERROR(
        GetString(*station_decision, "decision", Need::kRequired, &decision, 16));
    if (*decision != "allow" && *decision != "block") {
      return Status::Invalid("offline_decision.decision must be allow or block");
    }
    f.station_allowed = *decision == "allow";
  } else if (!f.check_id) {
    return Status::Conflict("a fill needs the check_id of the check that allowed it");
  }
  f.stored = body;
  return f;
}

// Whether the offline check that `offline_decision` names (its "check_id", the
// station's) is at the registry as a violation already: allowed at the station where
// the registry blocks.
Result<bool> OfflineCheckViolated(Conn& conn, const json& offline_decision) {
  if (!offline_decision.is_object()) return false;
  const auto id = offline_decision.find("check_id");
  if (id == offline_decision.end() || !id->is_string()) return false;
  PINGMA_ASSIGN_OR_RETURN(auto st,
                          conn.Prepare("SELECT answer FROM offline_checks WHERE check_id = $1"));
  st->Bind(1, id->get<std::string>());
  PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
  if (!row) return false;
  const json answer = json::parse(st->Text(0), nullptr, false);
  st->Reset();
  return answer.is_object() && answer.value("registry_decision", "") == "block" &&
         !answer.value("agrees", true);
}

// The check event a fill refers to, if it allowed this fill.
Status CheckAllows(Conn& conn, const FillRecord& f) {
  const auto seq = SeqOfEventId(*f.check_id);
  if (!seq) return Status::Conflict(fmt::format("there is no fill check {}", *f.check_id));
  PINGMA_ASSIGN_OR_RETURN(auto st,
                          conn.Prepare("SELECT code, type, body FROM events WHERE seq = $1"));
  st->Bind(1, *seq);
  PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
  if (!row || st->Text(1) != "fill_check") {
    return Status::Conflict(fmt::format("there is no fill check {}", *f.check_id));
  }
  const std::string code = st->Text(0);
  json check = json::parse(st->Text(2), nullptr, false);
  st->Reset();
  if (code != f.code) {
    return Status::Conflict(
        fmt::format("check {} was for cylinder {}, not {}", *f.check_id, code, f.code));
  }
  if (!check.is_object() || check.value("station_id", "") != f.station_id) {
    return Status::Conflict(fmt::format("check {} was made by another station", *f.check_id));
  }
  if (check.value("decision", "") != "allow") {
    return Status::Conflict(fmt::format("check {} blocked this cylinder", *f.check_id));
  }
  PINGMA_ASSIGN_OR_RETURN(auto used,
                          conn.Prepare("SELECT event_id FROM fills WHERE check_id = $1"));
  used->Bind(1, *f.check_id);
  PINGMA_ASSIGN_OR_RETURN(auto taken, used->Step());
  if (taken) {
    return Status::Conflict(
        fmt::format("check {} was already used by fill {}", *f.check_id, used->Text(0)));
  }
  return Status::Ok();
}

// What the weights say of a fill, against the cylinder's limits: "overfill",
// "underfill" or "ok", compared in whole grams.
const char* ResultByWeight(double net_kg, const FillLimits& limits) {
  const std::int64_t net = ToGrams(net_kg);
  if (net > ToGrams(limits.max_kg)) return "overfill";
  if (net < ToGrams(limits.min_kg)) return "underfill";
  return "ok";
}

// The fill's record disagrees with its own weights in the direction that matters:
// an overfill reported as anything but an overfill (it must not leave the station),
// or an underfill reported as a good fill. Null when they agree.
json ResultMismatch(const FillRecord& f, const std::optional<FillLimits>& limits) {
  if (!limits || !f.net_kg) return nullptr;
  const std::string by_weight = ResultByWeight(*f.net_kg, *limits);
  const bool hidden_overfill = by_weight == "overfill" && f.result != "overfill";
  const bool hidden_underfill = by_weight == "underfill" && f.result == "ok";
  if (!hidden_overfill && !hidden_underfill) return nullptr;
  return {{"result_reported", f.result},
          {"result_by_weight", by_weight},
          {"net_kg", *f.net_kg},
          {"min_kg", limits->min_kg},
          {"max_kg", limits->max_kg}};
}

}  // namespace

void FillChecks::PostFill(const Call& call, Store::Done done) {
  auto body = ParseBody(call.request->body);
  if (!body.ok()) return done(ErrorReply(body.status()));
  auto fill = ParseFill(*body, call.who);
  if (!fill.ok()) return done(ErrorReply(fill.status()));
  Write(std::move(done), [this, f = std::move(*fill), who = call.who](WriteTx& tx) -> Reply {
    // (First the cylinder's row, so that the same fill sent through another
    // registry at once is seen below as the duplicate it is.)
    if (Status guarded = GuardCylinder(tx, f.code); !guarded.ok()) return ErrorReply(guarded);
    // A fill sent again is answered as a duplicate; another station's event_id is
    // not: an id names one fill of one station.
    auto dup = tx.conn().Prepare("SELECT station_id FROM fills WHERE event_id = $1");
    if (!dup.ok()) return ErrorReply(dup.status());
    (*dup)->Bind(1, f.event_id);
    auto seen = (*dup)->Step();
    if (!seen.ok()) return ErrorReply(seen.status());
    const std::string sender = *seen ? (*dup)->Text(0) : std::string();
    (*dup)->Reset();
    if (*seen && sender != f.station_id) return IdInUse("event_id " + f.event_id);
    if (*seen) return Reply{200, {{"event_id", f.event_id}, {"duplicate", true}}, {}, {}};

    auto row = LoadCylinder(tx.conn(), f.code);
    if (!row.ok()) return ErrorReply(row.status());
    json violation = json::object();
    if (!f.offline) {
      // An unregistered code has no allowing check either (its checks block): 409.
      if (Status s = CheckAllows(tx.conn(), f); !s.ok()) return ErrorReply(s);
    } else {
      // Check again, as of the fill's start, with what the registry knows.
      auto decided = DecideAsOf(tx.conn(), {f.station_id, f.operator_id,
                                            *row ? &(*row)->cylinder : nullptr, *f.started_at});
      if (!decided.ok()) return ErrorReply(decided.status());
      const FillDecision& d = *decided;
      // A violation when the registry would have blocked the fill, and when the
      // station filled although its own decision was to block. The check the fill
      // was made on, uploaded before it, may already be that violation: one
      // incident, one violation (the fill names the check in its offline_decision).
      auto check_violated = OfflineCheckViolated(tx.conn(), f.stored["offline_decision"]);
      if (!check_violated.ok()) return ErrorReply(check_violated.status());
      if ((!d.allowed() && !*check_violated) || !f.station_allowed) {
        violation.update({{"registry_decision", d.allowed() ? "allow" : "block"},
                          {"reasons", ReasonCodes(d.reasons)},
                          {"filled_against_own_block", !f.station_allowed},
                          {"offline_decision", f.stored["offline_decision"]}});
      }
    }
    if (*row) {
      json mismatch = ResultMismatch(f, FillLimitsFor(policy_, (*row)->cylinder));
      if (!mismatch.is_null()) violation.update(mismatch);
    }
    json event = f.stored;
    event.erase("event_id");
    auto seq = tx.Append(
        {f.event_id, f.code, "fill", tx.now(), ToString(who.role), who.subject, event.dump()});
    if (!seq.ok()) return ErrorReply(seq.status());
    auto st = tx.conn().Prepare(
        "INSERT INTO fills(event_id, check_id, code, station_id, ended_at, result, net_kg, seq) "
        "VALUES($1,$2,$3,$4,$5,$6,$7,$8)");
    if (!st.ok()) return ErrorReply(st.status());
    (*st)->Bind(1, f.event_id).Bind(2, f.check_id).Bind(3, f.code).Bind(4, f.station_id);
    (*st)->Bind(5, f.ended_at->unix_ms).Bind(6, f.result).Bind(7, f.net_kg).Bind(8, *seq);
    if (Status s = (*st)->Run(); !s.ok()) return ErrorReply(s);
    if (*row) {
      auto upd = tx.conn().Prepare(
          "UPDATE cylinders SET last_fill_station = $1, last_fill_at = $2 WHERE code = $3");
      if (!upd.ok()) return ErrorReply(upd.status());
      (*upd)->Bind(1, f.station_id).Bind(2, f.ended_at->unix_ms).Bind(3, f.code);
      if (Status s = (*upd)->Run(); !s.ok()) return ErrorReply(s);
    }
    json out = {{"event_id", f.event_id}, {"duplicate", false}, {"violation", false}};
    if (!violation.empty()) {
      violation.update({{"fill_event_id", f.event_id}, {"station_id", f.station_id}});
      auto v =
          tx.Append({"", f.code, "violation", tx.now(), "registry", "policy", violation.dump()});
      if (!v.ok()) return ErrorReply(v.status());
      out["violation"] = true;
      for (const char* key : {"reasons", "result_by_weight"}) {
        if (violation.contains(key)) out[key] = violation[key];
      }
    }
    return Reply{201, std::move(out), {}, {}};
  });
}

}  // namespace pingma::registry
