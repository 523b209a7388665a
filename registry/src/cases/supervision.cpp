// Delivery supervision (定位监管): areas, positions and alerts. DOMAIN.md "Where
// deliveries go"; API.md "Delivery supervision".
#include "cases/supervision.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "cases/queries.h"
#include "geo/distance.h"
#include "http/fields.h"
#include "jt808/codec.h"
#include "store/chain.h"

namespace pingma::registry {
namespace {

constexpr std::int64_t kMinuteMs = 60'000;
constexpr std::int64_t kDayMs = 24 * 60 * kMinuteMs;
/// Most positions one POST /v1/positions may carry.
constexpr size_t kMaxPositionsPerBatch = 1000;
/// How far ahead of the registry's clock a position may be (CheckPositionTime).
constexpr std::int64_t kMaxAheadMs = 5 * kMinuteMs;
/// A position arriving before a vehicle's latest reopens the alerts around it:
/// its runs outside are looked at within this far of it.
constexpr std::int64_t kLateWindowMs = kDayMs;
/// meta's key of the areas' version: a count of the changes of the areas.
constexpr const char* kAreasVersionKey = "areas_version";

// ---- Reading requests ---------------------------------------------------------------

/// One element of POST /v1/positions' list; `where` names it in errors.
Result<std::pair<std::string, PositionIn>> ParsePosition(const json& item, Instant now,
                                                         const Policy& policy,
                                                         const std::string& where) {
  if (!item.is_object()) return Status::Invalid(where + " must be an object");
  std::pair<std::string, PositionIn> out;
  PositionIn& p = out.second;
  Status s = GetId(item, "event_id", &p.event_id);
  if (s.ok()) s = GetId(item, "vehicle", &out.first);
  std::optional<Instant> at;
  if (s.ok()) s = GetInstant(item, "at", Need::kRequired, &at);
  std::optional<double> lat, lon, speed, accuracy;
  std::optional<int> heading;
  if (s.ok()) s = GetNumber(item, "lat", Need::kRequired, &lat);
  if (s.ok()) s = GetNumber(item, "lon", Need::kRequired, &lon);
  if (s.ok()) s = GetNumber(item, "speed_kmh", Need::kOptional, &speed);
  if (s.ok()) s = GetInt(item, "heading", Need::kOptional, &heading);
  if (s.ok()) s = GetNumber(item, "accuracy_m", Need::kOptional, &accuracy);
  if (!s.ok()) return Status(s.code(), where + ": " + s.message());
  if (!(*lat >= -90 && *lat <= 90 && *lon >= -180 && *lon <= 180)) {
    return Status::Invalid(where + ": lat must be within -90..90 and lon within -180..180");
  }
  if (speed && !(*speed >= 0 && *speed <= 400)) {
    return Status::Invalid(where + ": speed_kmh must be within 0..400");
  }
  if (heading && (*heading < 0 || *heading > 359)) {
    return Status::Invalid(where + ": heading must be within 0..359 degrees");
  }
  if (accuracy && !(*accuracy >= 0 && *accuracy <= 100'000)) {
    return Status::Invalid(where + ": accuracy_m must be within 0..100000");
  }
  if (Status when = CheckPositionTime(*at, now, policy); !when.ok()) {
    return Status(when.code(), where + ": " + when.message());
  }
  p.at = *at;
  p.lat = *lat;
  p.lon = *lon;
  p.speed_kmh = speed;
  p.heading = heading;
  p.accuracy_m = accuracy;
  return out;
}

/// `from` and `to` of a query (ISO instants); absent ones keep their defaults.
Status ParseRange(const std::map<std::string, std::string>& query, Instant* from, Instant* to) {
  for (auto [key, out] : {std::pair{"from", from}, std::pair{"to", to}}) {
    auto it = query.find(key);
    if (it == query.end() || it->second.empty()) continue;
    auto parsed = Instant::Parse(it->second);
    if (!parsed.ok()) {
      return Status::Malformed(
          fmt::format("{} must be a time such as 2026-12-07T08:00:00+08:00", key));
    }
    *out = *parsed;
  }
  if (to->unix_ms < from->unix_ms) return Status::Malformed("from must not be after to");
  return Status::Ok();
}

/// The company a read is scoped to: a company's own (its company_id, if given,
/// must be itself); a regulator's or an admin's choice, empty for every company.
Result<std::string> ScopedCompany(const Call& call) {
  std::string company;
  if (auto it = call.query.find("company_id"); it != call.query.end()) company = it->second;
  if (call.who.role == Role::kCompany) {
    if (!company.empty() && company != call.who.subject) {
      return Status::PermissionDenied("a company sees only its own");
    }
    return call.who.subject;
  }
  return company;
}

/// A cursor "AT:ID" (a time in Unix ms and an id), as next_cursor gives them.
Result<std::pair<std::int64_t, std::string>> ParseTimeCursor(
    const std::map<std::string, std::string>& query) {
  std::pair<std::int64_t, std::string> out{INT64_MIN, ""};
  auto it = query.find("cursor");
  if (it == query.end() || it->second.empty()) return out;
  const std::string& c = it->second;
  const size_t colon = c.find(':');
  const char* end = c.data() + (colon == std::string::npos ? 0 : colon);
  auto [stop, error] = std::from_chars(c.data(), end, out.first);
  if (colon == std::string::npos || colon == 0 || error != std::errc() || stop != end) {
    return Status::Malformed("cursor must be the next_cursor of an earlier page");
  }
  out.second = c.substr(colon + 1);
  return out;
}

// ---- Reading the store ---------------------------------------------------------------

struct VehicleOwner {
  std::string company_id;
  std::string courier_id;  ///< empty when no courier is bound to it
};

Result<std::optional<VehicleOwner>> LoadVehicleOwner(Conn& conn, const std::string& vehicle) {
  PINGMA_ASSIGN_OR_RETURN(
      auto st, conn.Prepare("SELECT v.company_id, c.id FROM vehicles v "
                            "LEFT JOIN couriers c ON c.vehicle_id = v.id WHERE v.id = $1"));
  st->Bind(1, vehicle);
  PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
  if (!row) return std::optional<VehicleOwner>();
  VehicleOwner owner{st->Text(0), st->IsNull(1) ? "" : st->Text(1)};
  st->Reset();
  return std::optional<VehicleOwner>(std::move(owner));
}

/// Whether `who` may see the positions of a vehicle of `owner`: a regulator or an
/// admin any, a company its own, a courier the one it drives.
bool MaySeeVehicle(const Principal& who, const VehicleOwner& owner) {
  switch (who.role) {
    case Role::kAdmin:
    case Role::kRegulator:
      return true;
    case Role::kCompany:
      return who.subject == owner.company_id;
    case Role::kCourier:
      return who.subject == owner.courier_id;
    default:
      return false;
  }
}

/// The area ids among a courier's zones (the rest are district names).
std::vector<std::string> ZoneAreas(const std::vector<std::string>& zones, const LoadedAreas& areas,
                                   const std::string& company_id) {
  std::vector<std::string> out;
  for (const std::string& id : zones) {
    auto it = areas.company.find(id);
    if (it != areas.company.end() && it->second == company_id) out.push_back(id);
  }
  return out;
}

/// A courier's zones as the couriers table keeps them (a JSON list).
std::vector<std::string> ParseZones(const std::string& text) {
  std::vector<std::string> out;
  const json zones = json::parse(text, nullptr, false);
  if (!zones.is_array()) return out;
  for (const json& z : zones) {
    if (z.is_string()) out.push_back(z.get<std::string>());
  }
  return out;
}

std::string AlertId(std::string_view prefix, std::string_view vehicle, std::int64_t at) {
  return fmt::format("{}-{}-{}", prefix, vehicle, at);
}

/// Stores `alert` (as AlertJson shows it), which took place at `at`.
Status InsertAlert(Conn& conn, const json& alert, Instant at, Instant now) {
  PINGMA_ASSIGN_OR_RETURN(
      auto st,
      conn.Prepare("INSERT INTO alerts(id, kind, vehicle_id, courier_id, company_id, at, lat, "
                   "lon, detail, created_at) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) "
                   "ON CONFLICT DO NOTHING"));
  st->Bind(1, alert["id"].get<std::string>()).Bind(2, alert["kind"].get<std::string>());
  st->Bind(3, alert["vehicle"].get<std::string>()).Bind(4, alert["courier"].get<std::string>());
  st->Bind(5, alert["company_id"].get<std::string>());
  st->Bind(6, at.unix_ms);
  if (alert["lat"].is_number()) {
    st->Bind(7, alert["lat"].get<double>()).Bind(8, alert["lon"].get<double>());
  } else {
    st->BindNull(7).BindNull(8);
  }
  st->Bind(9, alert["detail"].dump()).Bind(10, now.unix_ms);
  return st->Run();
}

json AlertJson(sql::Statement& s) {
  json a = {{"id", s.Text(0)},
            {"kind", s.Text(1)},
            {"vehicle", s.Text(2)},
            {"courier", s.Text(3)},
            {"company_id", s.Text(4)},
            {"at", Instant{s.Int(5)}.ToString()},
            {"lat", s.IsNull(6) ? json(nullptr) : json(s.Double(6))},
            {"lon", s.IsNull(7) ? json(nullptr) : json(s.Double(7))},
            {"detail", json::parse(s.Text(8), nullptr, false)}};
  return a;
}

constexpr const char* kAlertColumns =
    "id, kind, vehicle_id, courier_id, company_id, at, lat, lon, detail";

json PositionJson(sql::Statement& s) {
  json p = {{"event_id", s.Text(0).empty() ? json(nullptr) : json(s.Text(0))},
            {"at", Instant{s.Int(1)}.ToString()},
            {"lat", s.Double(2)},
            {"lon", s.Double(3)},
            {"source", s.Text(7)},
            {"outside", s.Int(8) != 0}};
  if (!s.IsNull(4)) p["speed_kmh"] = s.Double(4);
  if (!s.IsNull(5)) p["heading"] = s.Int(5);
  if (!s.IsNull(6)) p["accuracy_m"] = s.Double(6);
  return p;
}

// ---- Runs outside ----------------------------------------------------------------------

/// One stored position, as the zone_exit rule reads it.
struct Sample {
  std::int64_t at;
  bool outside;
  double lat, lon;
};

/// No run outside: the latest position is inside (or none is known).
constexpr std::int64_t kNoRun = INT64_MIN;

/// What the vehicle_positions row keeps of a vehicle's latest position.
struct Latest {
  std::int64_t at = INT64_MIN;
  std::int64_t run_start = kNoRun;  ///< its run outside began here
  bool run_alerted = false;
};

struct ZoneContext {
  std::string vehicle_id, courier_id, company_id;
  std::int64_t limit_ms;  ///< zone_exit_minutes
  Instant now;
};

/// The alert of a run outside that began at `start` and crossed the limit at `p`.
json ZoneExitAlert(const ZoneContext& z, std::int64_t start, const Sample& p) {
  return {{"id", AlertId("ZE", z.vehicle_id, start)},
          {"kind", "zone_exit"},
          {"vehicle", z.vehicle_id},
          {"courier", z.courier_id},
          {"company_id", z.company_id},
          {"at", Instant{p.at}.ToString()},
          {"lat", p.lat},
          {"lon", p.lon},
          {"detail",
           {{"outside_since", Instant{start}.ToString()},
            {"minutes_outside", static_cast<double>(p.at - start) / kMinuteMs}}}};
}

/// Looks again at a vehicle's runs outside around positions that arrived late
/// (before its latest): every run within kLateWindowMs of them that lasts longer
/// than the limit and holds no zone_exit alert yet gets one. Returns the run state
/// of the vehicle's latest position.
Result<Latest> ReviewRuns(Conn& conn, const ZoneContext& z, std::int64_t first_new,
                          std::int64_t latest_at) {
  PINGMA_ASSIGN_OR_RETURN(
      auto st, conn.Prepare("SELECT at, outside, lat, lon FROM positions WHERE vehicle_id = $1 "
                            "AND at >= $2 AND at <= $3 ORDER BY at"));
  st->Bind(1, z.vehicle_id).Bind(2, first_new - kLateWindowMs).Bind(3, latest_at);
  struct Run {
    std::int64_t start = kNoRun, end = kNoRun;
    std::optional<Sample> crossed;  ///< its first position past the limit
  };
  std::vector<Run> runs;  // those that crossed the limit
  Run run;
  Latest latest;
  while (true) {
    PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
    if (!row) break;
    const Sample s{st->Int(0), st->Int(1) != 0, st->Double(2), st->Double(3)};
    latest.at = s.at;
    if (!s.outside) {
      if (run.crossed) runs.push_back(run);
      run = Run{};
      continue;
    }
    if (run.start == kNoRun) run.start = s.at;
    run.end = s.at;
    if (!run.crossed && s.at - run.start > z.limit_ms) run.crossed = s;
  }
  latest.run_start = run.start;
  if (run.crossed) runs.push_back(run);
  PINGMA_ASSIGN_OR_RETURN(
      auto seen, conn.Prepare("SELECT 1 FROM alerts WHERE vehicle_id = $1 AND kind = 'zone_exit' "
                              "AND at >= $2 AND at <= $3 LIMIT 1"));
  for (const Run& r : runs) {
    // A run already alerted (a late position may join two runs, or start one
    // earlier) keeps its one alert, which lies within it.
    if (r.start == latest.run_start) latest.run_alerted = true;
    seen->Reset();
    seen->Bind(1, z.vehicle_id).Bind(2, r.start).Bind(3, r.end);
    PINGMA_ASSIGN_OR_RETURN(auto found, seen->Step());
    seen->Reset();
    if (found) continue;
    PINGMA_RETURN_IF_ERROR(
        InsertAlert(conn, ZoneExitAlert(z, r.start, *r.crossed), Instant{r.crossed->at}, z.now));
  }
  return latest;
}

}  // namespace

Status CheckPositionTime(Instant at, Instant now, const Policy& policy) {
  if (at.unix_ms > now.unix_ms + kMaxAheadMs) {
    return Status::Invalid(
        fmt::format("at {} is ahead of the registry's clock ({})", at.ToString(), now.ToString()));
  }
  if (at.unix_ms <= now.unix_ms - policy.position_retention_days * kDayMs) {
    return Status::Invalid(fmt::format("at {} is older than the {} days positions are kept",
                                       at.ToString(), policy.position_retention_days));
  }
  return Status::Ok();
}

Result<std::string> NormalTerminalPhone(std::string_view phone) {
  if (phone.empty() || phone.size() > 20 ||
      !std::all_of(phone.begin(), phone.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return Status::Invalid("a terminal's phone must be 1 to 20 digits");
  }
  if (phone.find_first_not_of('0') == std::string_view::npos) {
    return Status::Invalid("a terminal's phone must not be 0");
  }
  return jt808::NormalizePhone(phone);
}

// ---- Areas -------------------------------------------------------------------------------

Result<std::shared_ptr<const LoadedAreas>> Supervision::Areas(Conn& conn) {
  PINGMA_ASSIGN_OR_RETURN(auto v, conn.Prepare("SELECT value FROM meta WHERE key = $1"));
  v->Bind(1, kAreasVersionKey);
  PINGMA_ASSIGN_OR_RETURN(auto vrow, v->Step());
  const std::string version = vrow ? std::string(v->Blob(0)) : "0";
  v->Reset();
  {
    std::lock_guard lock(mu_);
    if (areas_ && areas_version_ == version) return areas_;
  }
  auto loaded = std::make_shared<LoadedAreas>();
  std::vector<std::pair<std::string, geo::Area>> parsed;
  PINGMA_ASSIGN_OR_RETURN(auto st, conn.Prepare("SELECT id, company_id, geometry FROM areas"));
  while (true) {
    PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
    if (!row) break;
    const json geometry = json::parse(st->Text(2), nullptr, false);
    auto area = geo::ParseArea(geometry);
    // What is stored was checked when it was put; a store edited by hand is told.
    if (!area.ok()) {
      return Status::Internal(
          fmt::format("area {} in the store: {}", st->Text(0), area.status().message()));
    }
    loaded->company.emplace(st->Text(0), st->Text(1));
    parsed.emplace_back(st->Text(0), std::move(*area));
  }
  PINGMA_ASSIGN_OR_RETURN(loaded->index, geo::AreaIndex::Build(std::move(parsed)));
  std::lock_guard lock(mu_);
  areas_ = loaded;
  areas_version_ = version;
  return std::shared_ptr<const LoadedAreas>(std::move(loaded));
}

void Supervision::PutArea(const Call& call, Store::Done done) {
  auto body = ParseBody(call.request->body);
  if (!body.ok()) return done(ErrorReply(body.status()));
  std::string company_id;
  std::optional<std::string> name;
  Status s = GetId(*body, "company_id", &company_id);
  if (s.ok()) s = GetString(*body, "name", Need::kRequired, &name, 128);
  const json* geometry = nullptr;
  if (s.ok()) s = GetObject(*body, "geometry", Need::kRequired, &geometry);
  if (!s.ok()) return done(ErrorReply(s));
  auto area = geo::ParseArea(*geometry);
  if (!area.ok()) return done(ErrorReply(area.status()));
  size_t positions = 0;
  for (const geo::Polygon& polygon : area->polygons()) {
    for (const auto& ring : polygon.rings) positions += ring.size();
  }
  if (!ActsForCompany(call.who, company_id)) {
    return done(ErrorReply(Status::PermissionDenied("a company may draw only its own areas")));
  }
  std::string id;
  if (Status named = GetId(json{{"id", call.params[0]}}, "id", &id); !named.ok()) {
    return done(ErrorReply(Status::Invalid("the area's id in the path: " + named.message())));
  }
  json out = {{"id", id}, {"company_id", company_id}, {"name", *name}, {"geometry", *geometry}};
  json event = {{"id", id},
                {"company_id", company_id},
                {"name", *name},
                {"geometry_sha256", HexOf(Sha256(geometry->dump()))},
                {"polygons", area->polygons().size()},
                {"positions", positions}};
  Write(
      std::move(done),
      [this, id = std::move(id), company_id, out = std::move(out), event = std::move(event),
       who = call.who](WriteTx& tx) -> Reply {
        Conn& conn = tx.conn();
        auto company = Exists(conn, "companies", company_id);
        if (!company.ok()) return ErrorReply(company.status());
        if (!*company) return ErrorReply(Status::Invalid(fmt::format("no company {}", company_id)));
        auto st = conn.Prepare("SELECT company_id FROM areas WHERE id = $1");
        if (!st.ok()) return ErrorReply(st.status());
        (*st)->Bind(1, id);
        auto row = (*st)->Step();
        if (!row.ok()) return ErrorReply(row.status());
        const bool replaced = *row;
        if (replaced && (*st)->Text(0) != company_id) return IdInUse("area " + id);
        (*st)->Reset();
        auto put = conn.Prepare(
            "INSERT INTO areas(id, company_id, name, geometry, updated_at) VALUES($1,$2,$3,$4,$5) "
            "ON CONFLICT(id) DO UPDATE SET name = excluded.name, geometry = excluded.geometry, "
            "updated_at = excluded.updated_at");
        if (!put.ok()) return ErrorReply(put.status());
        (*put)->Bind(1, id).Bind(2, company_id).Bind(3, out["name"].get<std::string>());
        (*put)->Bind(4, out["geometry"].dump()).Bind(5, tx.now().unix_ms);
        if (Status r = (*put)->Run(); !r.ok()) return ErrorReply(r);
        // Every registry reloads the areas when the version moves (Areas).
        auto old_version = conn.Prepare("SELECT value FROM meta WHERE key = $1");
        if (!old_version.ok()) return ErrorReply(old_version.status());
        (*old_version)->Bind(1, kAreasVersionKey);
        auto vrow = (*old_version)->Step();
        if (!vrow.ok()) return ErrorReply(vrow.status());
        std::int64_t n = 0;
        if (*vrow) {
          const std::string_view text = (*old_version)->Blob(0);
          std::from_chars(text.data(), text.data() + text.size(), n);
        }
        (*old_version)->Reset();
        const std::string version = std::to_string(n + 1);
        auto bump = conn.Prepare(
            "INSERT INTO meta(key, value) VALUES($1, $2) ON CONFLICT(key) DO UPDATE SET value = "
            "excluded.value");
        if (!bump.ok()) return ErrorReply(bump.status());
        (*bump)->Bind(1, kAreasVersionKey).BindBlob(2, version.data(), version.size());
        if (Status r = (*bump)->Run(); !r.ok()) return ErrorReply(r);
        auto ev = tx.Append(
            {"", "", "area_set", tx.now(), ToString(who.role), who.subject, event.dump()});
        if (!ev.ok()) return ErrorReply(ev.status());
        return replaced ? Okay(out) : Created(out);
      });
}

void Supervision::GetAreas(const Call& call, Store::Done done) {
  auto company = ScopedCompany(call);
  if (!company.ok()) return done(ErrorReply(company.status()));
  auto page_limit = PageLimit(call.query, 100, 1000);
  if (!page_limit.ok()) return done(ErrorReply(page_limit.status()));
  std::string after;
  if (auto it = call.query.find("cursor"); it != call.query.end()) after = it->second;
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    std::string sql = "SELECT id, company_id, name, geometry, updated_at FROM areas WHERE id > $1";
    if (!company->empty()) sql += " AND company_id = $2";
    sql += " ORDER BY id LIMIT $3";
    auto st = conn.Prepare(sql);
    if (!st.ok()) return ErrorReply(st.status());
    (*st)->Bind(1, after).Bind(3, *page_limit);
    if (!company->empty()) (*st)->Bind(2, *company);
    json list = json::array();
    while (true) {
      auto row = (*st)->Step();
      if (!row.ok()) return ErrorReply(row.status());
      if (!*row) break;
      list.push_back({{"id", (*st)->Text(0)},
                      {"company_id", (*st)->Text(1)},
                      {"name", (*st)->Text(2)},
                      {"geometry", json::parse((*st)->Text(3), nullptr, false)},
                      {"updated_at", Instant{(*st)->Int(4)}.ToString()}});
    }
    json out = {{"areas", list}, {"next_cursor", nullptr}};
    if (static_cast<std::int64_t>(list.size()) == *page_limit) {
      out["next_cursor"] = list.back()["id"];
    }
    return Okay(std::move(out));
  });
}

Result<bool> Supervision::InZoneArea(Conn& conn, const CourierFacts& courier, double lat,
                                     double lon) {
  PINGMA_ASSIGN_OR_RETURN(auto areas, Areas(conn));
  const std::vector<std::string> ids = ZoneAreas(courier.zones, *areas, courier.company_id);
  return std::any_of(ids.begin(), ids.end(),
                     [&](const std::string& id) { return areas->index->Covers(id, lon, lat); });
}

// ---- Positions ------------------------------------------------------------------------

Result<PositionsStored> Supervision::StorePositions(WriteTx& tx, const std::string& vehicle_id,
                                                    std::vector<PositionIn> positions,
                                                    const std::string& source) {
  Conn& conn = tx.conn();
  PositionsStored stored;
  std::stable_sort(positions.begin(), positions.end(),
                   [](const PositionIn& a, const PositionIn& b) { return a.at < b.at; });

  // The courier driving it, and the areas of the courier's zones.
  ZoneContext z{vehicle_id, "", "", policy_.zone_exit_minutes * kMinuteMs, tx.now()};
  std::vector<std::string> zone_areas;
  std::shared_ptr<const LoadedAreas> areas;
  {
    PINGMA_ASSIGN_OR_RETURN(auto st, conn.Prepare("SELECT id, company_id, zones FROM couriers "
                                                  "WHERE vehicle_id = $1"));
    st->Bind(1, vehicle_id);
    PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
    if (row) {
      z.courier_id = st->Text(0);
      z.company_id = st->Text(1);
      const std::vector<std::string> zones = ParseZones(st->Text(2));
      st->Reset();
      PINGMA_ASSIGN_OR_RETURN(areas, Areas(conn));
      zone_areas = ZoneAreas(zones, *areas, z.company_id);
    }
  }
  const auto outside = [&](const PositionIn& p) {
    if (zone_areas.empty()) return false;  // no area to be outside of
    return std::none_of(zone_areas.begin(), zone_areas.end(), [&](const std::string& id) {
      return areas->index->Covers(id, p.lon, p.lat);
    });
  };

  Latest latest;
  {
    PINGMA_ASSIGN_OR_RETURN(auto st,
                            conn.Prepare("SELECT at, run_start, run_alerted FROM vehicle_positions "
                                         "WHERE vehicle_id = $1"));
    st->Bind(1, vehicle_id);
    PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
    if (row) {
      latest.at = st->Int(0);
      if (!st->IsNull(1)) latest.run_start = st->Int(1);
      latest.run_alerted = st->Int(2) != 0;
    }
    st->Reset();
  }

  PINGMA_ASSIGN_OR_RETURN(
      auto insert,
      conn.Prepare("INSERT INTO positions(vehicle_id, at, event_id, lat, lon, speed_kmh, heading, "
                   "accuracy_m, source, outside, received_at) "
                   "VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) ON CONFLICT DO NOTHING"));
  std::optional<std::int64_t> first_late;
  const PositionIn* newest = nullptr;
  for (const PositionIn& p : positions) {
    const bool out = outside(p);
    insert->Reset();
    insert->Bind(1, vehicle_id).Bind(2, p.at.unix_ms).Bind(3, p.event_id);
    insert->Bind(4, p.lat).Bind(5, p.lon);
    if (p.speed_kmh) {
      insert->Bind(6, *p.speed_kmh);
    } else {
      insert->BindNull(6);
    }
    if (p.heading) {
      insert->Bind(7, static_cast<std::int64_t>(*p.heading));
    } else {
      insert->BindNull(7);
    }
    if (p.accuracy_m) {
      insert->Bind(8, *p.accuracy_m);
    } else {
      insert->BindNull(8);
    }
    insert->Bind(9, source).Bind(10, static_cast<std::int64_t>(out)).Bind(11, tx.now().unix_ms);
    PINGMA_RETURN_IF_ERROR(insert->Run());
    if (conn.db().Changes() == 0) {
      ++stored.duplicates;
      continue;
    }
    ++stored.accepted;
    if (p.at.unix_ms < latest.at) {
      // Before the latest: its runs are looked at again once the batch is in.
      if (!first_late) first_late = p.at.unix_ms;
      continue;
    }
    newest = &p;
    latest.at = p.at.unix_ms;
    if (!out) {
      latest.run_start = kNoRun;
      latest.run_alerted = false;
      continue;
    }
    if (latest.run_start == kNoRun) latest.run_start = p.at.unix_ms;
    if (!latest.run_alerted && p.at.unix_ms - latest.run_start > z.limit_ms &&
        !z.courier_id.empty()) {
      PINGMA_RETURN_IF_ERROR(
          InsertAlert(conn, ZoneExitAlert(z, latest.run_start, {p.at.unix_ms, true, p.lat, p.lon}),
                      p.at, z.now));
      latest.run_alerted = true;
    }
  }
  if (first_late && !z.courier_id.empty() && !zone_areas.empty()) {
    PINGMA_ASSIGN_OR_RETURN(latest, ReviewRuns(conn, z, *first_late, latest.at));
  }
  if (newest || first_late) {
    // The latest position keeps its place unless a newer one came.
    PINGMA_ASSIGN_OR_RETURN(
        auto up,
        conn.Prepare("INSERT INTO vehicle_positions(vehicle_id, at, lat, lon, speed_kmh, heading, "
                     "source, received_at, run_start, run_alerted) "
                     "SELECT vehicle_id, at, lat, lon, speed_kmh, heading, source, received_at, "
                     "$3, $4 FROM positions WHERE vehicle_id = $1 AND at = $2 "
                     "ORDER BY received_at DESC LIMIT 1 "
                     "ON CONFLICT(vehicle_id) DO UPDATE SET at = excluded.at, lat = excluded.lat, "
                     "lon = excluded.lon, speed_kmh = excluded.speed_kmh, heading = "
                     "excluded.heading, source = excluded.source, received_at = "
                     "excluded.received_at, run_start = excluded.run_start, run_alerted = "
                     "excluded.run_alerted"));
    up->Bind(1, vehicle_id).Bind(2, latest.at);
    if (latest.run_start != kNoRun) {
      up->Bind(3, latest.run_start);
    } else {
      up->BindNull(3);
    }
    up->Bind(4, static_cast<std::int64_t>(latest.run_alerted));
    PINGMA_RETURN_IF_ERROR(up->Run());
  }
  return stored;
}

void Supervision::PostPositions(const Call& call, Store::Done done) {
  auto body = ParseBody(call.request->body);
  if (!body.ok()) return done(ErrorReply(body.status()));
  auto list = body->find("positions");
  if (list == body->end() || !list->is_array() || list->empty() ||
      list->size() > kMaxPositionsPerBatch) {
    return done(ErrorReply(Status::Invalid(
        fmt::format("positions must be a list of 1 to {} positions", kMaxPositionsPerBatch))));
  }
  const Instant now = clock_->Now();
  std::vector<PositionIn> positions;
  std::string vehicle;
  for (size_t i = 0; i < list->size(); ++i) {
    auto parsed = ParsePosition((*list)[i], now, policy_, fmt::format("positions[{}]", i));
    if (!parsed.ok()) return done(ErrorReply(parsed.status()));
    if (i > 0 && parsed->first != vehicle) {
      return done(ErrorReply(Status::Invalid(fmt::format(
          "positions[{}]: every position of a batch must be of one vehicle ({})", i, vehicle))));
    }
    vehicle = std::move(parsed->first);
    positions.push_back(std::move(parsed->second));
  }
  Write(std::move(done),
        [this, vehicle, positions = std::move(positions),
         who = call.who](WriteTx& tx) mutable -> Reply {
          // A courier sends its own vehicle's positions (人车对应), nobody else's.
          auto st = tx.conn().Prepare("SELECT vehicle_id FROM couriers WHERE id = $1");
          if (!st.ok()) return ErrorReply(st.status());
          (*st)->Bind(1, who.subject);
          auto row = (*st)->Step();
          if (!row.ok()) return ErrorReply(row.status());
          if (!*row) {
            return ErrorReply(Status::PermissionDenied(
                fmt::format("this token is for courier {}, who is not registered", who.subject)));
          }
          const std::string own = (*st)->Text(0);
          (*st)->Reset();
          if (own != vehicle) {
            return ErrorReply(Status::PermissionDenied(
                fmt::format("courier {} drives vehicle {}, not {}", who.subject, own, vehicle)));
          }
          auto stored = StorePositions(tx, vehicle, std::move(positions), "courier");
          if (!stored.ok()) return ErrorReply(stored.status());
          return Okay({{"accepted", stored->accepted}, {"duplicates", stored->duplicates}});
        });
}

void Supervision::GetVehiclePositions(const Call& call, Store::Done done) {
  const Instant now = clock_->Now();
  Instant from{now.unix_ms - kDayMs}, to{now.unix_ms + kMaxAheadMs};
  if (Status s = ParseRange(call.query, &from, &to); !s.ok()) return done(ErrorReply(s));
  auto page_limit = PageLimit(call.query, 1000, 10000);
  if (!page_limit.ok()) return done(ErrorReply(page_limit.status()));
  auto cursor = ParseTimeCursor(call.query);
  if (!cursor.ok()) return done(ErrorReply(cursor.status()));
  const std::string vehicle = call.params[0];
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    auto owner = LoadVehicleOwner(conn, vehicle);
    if (!owner.ok()) return ErrorReply(owner.status());
    if (!*owner || !MaySeeVehicle(call.who, **owner)) {
      return ErrorReply(Status::NotFound(fmt::format("no vehicle {}", vehicle)));
    }
    auto st = conn.Prepare(
        "SELECT event_id, at, lat, lon, speed_kmh, heading, accuracy_m, source, outside "
        "FROM positions WHERE vehicle_id = $1 AND at >= $2 AND at <= $3 "
        "AND (at, event_id) > ($4, $5) ORDER BY at, event_id LIMIT $6");
    if (!st.ok()) return ErrorReply(st.status());
    (*st)->Bind(1, vehicle).Bind(2, from.unix_ms).Bind(3, to.unix_ms);
    (*st)->Bind(4, cursor->first).Bind(5, cursor->second).Bind(6, *page_limit);
    json list = json::array();
    std::string next;
    while (true) {
      auto row = (*st)->Step();
      if (!row.ok()) return ErrorReply(row.status());
      if (!*row) break;
      next = fmt::format("{}:{}", (*st)->Int(1), (*st)->Text(0));
      list.push_back(PositionJson(**st));
    }
    json out = {{"vehicle", vehicle},
                {"from", from.ToString()},
                {"to", to.ToString()},
                {"positions", list},
                {"next_cursor", nullptr}};
    if (static_cast<std::int64_t>(list.size()) == *page_limit) out["next_cursor"] = next;
    return Okay(std::move(out));
  });
}

void Supervision::GetLatestPositions(const Call& call, Store::Done done) {
  auto company = ScopedCompany(call);
  if (!company.ok()) return done(ErrorReply(company.status()));
  auto page_limit = PageLimit(call.query, 1000, 10000);
  if (!page_limit.ok()) return done(ErrorReply(page_limit.status()));
  std::string after;
  if (auto it = call.query.find("cursor"); it != call.query.end()) after = it->second;
  const Instant now = clock_->Now();
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    std::string sql =
        "SELECT v.id, v.plate, v.company_id, c.id, p.at, p.lat, p.lon, p.speed_kmh, p.heading, "
        "p.source FROM vehicles v JOIN vehicle_positions p ON p.vehicle_id = v.id "
        "LEFT JOIN couriers c ON c.vehicle_id = v.id WHERE v.id > $1";
    if (!company->empty()) sql += " AND v.company_id = $2";
    sql += " ORDER BY v.id LIMIT $3";
    auto st = conn.Prepare(sql);
    if (!st.ok()) return ErrorReply(st.status());
    (*st)->Bind(1, after).Bind(3, *page_limit);
    if (!company->empty()) (*st)->Bind(2, *company);
    json list = json::array();
    while (true) {
      auto row = (*st)->Step();
      if (!row.ok()) return ErrorReply(row.status());
      if (!*row) break;
      sql::Statement& s = **st;
      json v = {{"vehicle", s.Text(0)},
                {"plate", s.Text(1)},
                {"company_id", s.Text(2)},
                {"courier", s.IsNull(3) ? json(nullptr) : json(s.Text(3))},
                {"at", Instant{s.Int(4)}.ToString()},
                {"age_s", std::max<std::int64_t>(0, (now.unix_ms - s.Int(4)) / 1000)},
                {"lat", s.Double(5)},
                {"lon", s.Double(6)},
                {"source", s.Text(9)}};
      if (!s.IsNull(7)) v["speed_kmh"] = s.Double(7);
      if (!s.IsNull(8)) v["heading"] = s.Int(8);
      list.push_back(std::move(v));
    }
    json out = {{"vehicles", list}, {"next_cursor", nullptr}};
    if (static_cast<std::int64_t>(list.size()) == *page_limit) {
      out["next_cursor"] = list.back()["vehicle"];
    }
    return Okay(std::move(out));
  });
}

// ---- Alerts -----------------------------------------------------------------------------

Result<json> Supervision::HandoverAlerts(WriteTx& tx, const HandoverPlace& place) {
  Conn& conn = tx.conn();
  json raised = json::array();
  // The vehicle's latest position, and whether it is recent enough to count.
  std::optional<Sample> last;
  {
    PINGMA_ASSIGN_OR_RETURN(
        auto st, conn.Prepare("SELECT at, lat, lon FROM vehicle_positions WHERE vehicle_id = $1"));
    st->Bind(1, place.vehicle_id);
    PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
    if (row) last = Sample{st->Int(0), false, st->Double(1), st->Double(2)};
    st->Reset();
  }
  const std::int64_t window = policy_.no_position_minutes * kMinuteMs;
  const bool recent =
      last && last->at <= place.at.unix_ms + kMaxAheadMs && place.at.unix_ms - last->at <= window;
  // Where the handover took place: where it says, else where its vehicle last was.
  std::optional<std::pair<double, double>> where = place.location;
  if (!where && recent) where = std::pair{last->lat, last->lon};
  const auto alert = [&](const char* prefix, const char* kind, json detail) {
    detail["handover_event_id"] = place.event_id;
    detail["customer_id"] = place.customer_id;
    return json{{"id", fmt::format("{}-{}", prefix, place.event_id)},
                {"kind", kind},
                {"vehicle", place.vehicle_id},
                {"courier", place.courier_id},
                {"company_id", place.company_id},
                {"at", place.at.ToString()},
                {"lat", where ? json(where->first) : json(nullptr)},
                {"lon", where ? json(where->second) : json(nullptr)},
                {"detail", std::move(detail)}};
  };
  if (!recent) {
    json detail = {{"minutes", policy_.no_position_minutes}};
    detail["last_position_at"] = last ? json(Instant{last->at}.ToString()) : json(nullptr);
    raised.push_back(alert("NP", "no_position", std::move(detail)));
  }
  if (where) {
    PINGMA_ASSIGN_OR_RETURN(auto st,
                            conn.Prepare("SELECT lat, lon FROM customers WHERE id = $1 AND "
                                         "lat IS NOT NULL"));
    st->Bind(1, place.customer_id);
    PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
    if (row) {
      const double lat = st->Double(0), lon = st->Double(1);
      st->Reset();
      const double metres = geo::DistanceMetres(where->first, where->second, lat, lon);
      if (metres > policy_.handover_max_distance_m) {
        raised.push_back(alert("HA", "handover_away",
                               {{"distance_m", std::round(metres)},
                                {"max_distance_m", policy_.handover_max_distance_m},
                                {"from", place.location ? "handover" : "vehicle"},
                                {"customer_location", {{"lat", lat}, {"lon", lon}}}}));
      }
    }
  }
  for (const json& a : raised) PINGMA_RETURN_IF_ERROR(InsertAlert(conn, a, place.at, tx.now()));
  return raised;
}

void Supervision::GetAlerts(const Call& call, Store::Done done) {
  auto company = ScopedCompany(call);
  if (!company.ok()) return done(ErrorReply(company.status()));
  std::string kind;
  if (auto it = call.query.find("kind"); it != call.query.end()) kind = it->second;
  if (!kind.empty() && kind != "zone_exit" && kind != "handover_away" && kind != "no_position") {
    return done(
        ErrorReply(Status::Malformed("kind must be zone_exit, handover_away or no_position")));
  }
  Instant from{INT64_MIN / 2}, to{INT64_MAX / 2};
  if (Status s = ParseRange(call.query, &from, &to); !s.ok()) return done(ErrorReply(s));
  auto page_limit = PageLimit(call.query, 100, 1000);
  if (!page_limit.ok()) return done(ErrorReply(page_limit.status()));
  auto cursor = ParseTimeCursor(call.query);
  if (!cursor.ok()) return done(ErrorReply(cursor.status()));
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    std::string sql = fmt::format(
        "SELECT {} FROM alerts WHERE at >= $1 AND at <= $2 AND (at, id) > ($3, $4)", kAlertColumns);
    if (!company->empty()) sql += " AND company_id = $5";
    if (!kind.empty()) sql += " AND kind = $6";
    sql += " ORDER BY at, id LIMIT $7";
    auto st = conn.Prepare(sql);
    if (!st.ok()) return ErrorReply(st.status());
    (*st)->Bind(1, from.unix_ms).Bind(2, to.unix_ms).Bind(3, cursor->first);
    (*st)->Bind(4, cursor->second).Bind(7, *page_limit);
    if (!company->empty()) (*st)->Bind(5, *company);
    if (!kind.empty()) (*st)->Bind(6, kind);
    json list = json::array();
    std::string next;
    while (true) {
      auto row = (*st)->Step();
      if (!row.ok()) return ErrorReply(row.status());
      if (!*row) break;
      next = fmt::format("{}:{}", (*st)->Int(5), (*st)->Text(0));
      list.push_back(AlertJson(**st));
    }
    json out = {{"alerts", list}, {"next_cursor", nullptr}};
    if (static_cast<std::int64_t>(list.size()) == *page_limit) out["next_cursor"] = next;
    return Okay(std::move(out));
  });
}

// ---- Retention -------------------------------------------------------------------------

Result<std::int64_t> SweepPositions(Conn& conn, Instant now, const Policy& policy,
                                    SweepCursor* cursor) {
  const std::int64_t cutoff = now.unix_ms - policy.position_retention_days * kDayMs;
  std::vector<std::string> vehicles;
  {
    PINGMA_ASSIGN_OR_RETURN(
        auto st, conn.Prepare("SELECT id FROM vehicles WHERE id > $1 ORDER BY id LIMIT $2"));
    st->Bind(1, cursor->after).Bind(2, static_cast<std::int64_t>(kSweepVehicles));
    while (true) {
      PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
      if (!row) break;
      vehicles.push_back(st->Text(0));
    }
  }
  std::int64_t deleted = 0;
  // A vehicle at a time, along its (vehicle, time) key.
  for (const std::string& vehicle : vehicles) {
    PINGMA_ASSIGN_OR_RETURN(
        auto n, SecureDeleteRows(conn, "DELETE FROM positions WHERE vehicle_id = $1 AND at <= $2",
                                 [&](sql::Statement& st) { st.Bind(1, vehicle).Bind(2, cutoff); }));
    deleted += n;
  }
  if (vehicles.size() == kSweepVehicles) {
    cursor->after = vehicles.back();
    return deleted;
  }
  PINGMA_ASSIGN_OR_RETURN(auto latest,
                          SecureDeleteRows(conn, "DELETE FROM vehicle_positions WHERE at <= $1",
                                           [&](sql::Statement& st) { st.Bind(1, cutoff); }));
  PINGMA_ASSIGN_OR_RETURN(auto alerts,
                          SecureDeleteRows(conn, "DELETE FROM alerts WHERE at <= $1",
                                           [&](sql::Statement& st) { st.Bind(1, cutoff); }));
  cursor->done = true;
  return deleted + latest + alerts;
}

}  // namespace pingma::registry
