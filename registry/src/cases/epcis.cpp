// Platform interop (平台对接): the registry's events as a GS1 EPCIS 2.0 JSON-LD
// document, GET /v1/export/epcis?from&to&limit&cursor (admin, regulator).
//
// Every cylinder event becomes one ObjectEvent; what CBV 2.0 has no word for is in
// the pingma namespace (kNamespace), and so are pingma's own fields. The mapping:
//
//   registered       ADD      commissioning         active (ilmd: the stamped record)
//   carrier_bound    OBSERVE  pingma carrier_binding
//   fill_check       OBSERVE  inspecting            (decision and reasons as fields; one
//                                                    decided offline: eventTime = decided_at,
//                                                    with the registry's decision beside)
//   fill             OBSERVE  pingma filling        (weights; eventTime = ended_at)
//   violation        OBSERVE  inspecting            (the registry's re-check)
//   inspection       OBSERVE  inspecting
//   assessment       OBSERVE  inspecting
//   flagged_for_scrap OBSERVE holding               needs_replacement | damaged | recalled
//   handover allowed OBSERVE  shipping (deliver) / receiving (collect), with the
//                             possessing parties as source and destination
//   handover refused OBSERVE  inspecting            (nothing changed hands)
//   public_report    OBSERVE  pingma public_reporting (the category only)
//   scrapped         DELETE   decommissioning       destroyed
//
// Set-up events (companies, stations, tokens, ...) and the hazard ledger's events
// (about a customer's premises, not the cylinder) are not exported; an event type
// not named here is skipped until it is mapped. Fields are copied by name from an
// allowlist, never wholesale, so that nothing personal in a body (a customer's
// location, a report's contact or text, free-text notes) can reach the export.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "cases/epcis.h"
#include "cases/queries.h"
#include "http/fields.h"
#include "pingma/scanner/scan.h"
#include "store/log_rows.h"

namespace pingma::registry {
namespace {

using ojson = nlohmann::ordered_json;

/// pingma's JSON-LD namespace: the `pingma:` prefix of the document's @context, and
/// the base of pingma's own vocabulary and location URIs.
constexpr std::string_view kNamespace = "https://pingma.example/epcis/";
/// GS1's resolver: a GRAI as a canonical GS1 Digital Link URI (see GraiUri).
constexpr std::string_view kGs1Resolver = "https://id.gs1.org";
constexpr const char* kEpcisContext =
    "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld";

constexpr std::int64_t kDefaultLimit = 1000;
constexpr std::int64_t kMaxLimit = 10000;

/// The query, checked.
struct ExportQuery {
  std::optional<Instant> from;  ///< inclusive
  std::optional<Instant> to;    ///< exclusive
  bool to_is_date = false;      ///< `to` was a whole day
  std::int64_t limit = kDefaultLimit;
  /// The cursor: the last place in the log an earlier page covered. Places are
  /// the log's leaves counted from 1 (a leaf's index + 1): on SQLite the seqs.
  std::int64_t after_seq = 0;
};

std::string OffsetText(int minutes) {
  const int m = minutes < 0 ? -minutes : minutes;
  return fmt::format("{}{:02d}:{:02d}", minutes < 0 ? '-' : '+', m / 60, m % 60);
}

/// RFC 3339 in the zone `offset` minutes east of UTC: "2026-01-05T09:30:00.123+08:00".
std::string LocalTime(Instant t, int offset) {
  const std::int64_t local = t.unix_ms + static_cast<std::int64_t>(offset) * 60000;
  std::int64_t days = local / 86400000;
  std::int64_t ms = local % 86400000;
  if (ms < 0) {
    ms += 86400000;
    --days;
  }
  const Date d = Date::FromDays(days);
  return fmt::format("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}.{:03d}{}", d.year(), d.month(),
                     d.day(), ms / 3600000, ms / 60000 % 60, ms / 1000 % 60, ms % 1000,
                     OffsetText(offset));
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
std::string PercentEncode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out.push_back(ch);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

/// A pingma URI: kNamespace + kind + "/" + id, e.g. ".../station/ST-01".
std::string PingmaUri(std::string_view kind, std::string_view id) {
  return fmt::format("{}{}/{}", kNamespace, kind, PercentEncode(id));
}

/// A bound of the range: a date (its first instant in the policy's zone; for `to`,
/// the first instant of the next day, so that to=2026-01-31 takes the whole of that
/// day) or an RFC 3339 instant.
Result<Instant> ParseBound(const char* name, std::string text, bool is_to, int offset) {
  if (text.size() == 10) {
    auto date = Date::Parse(text);
    if (!date.ok()) {
      return Status::Malformed(
          fmt::format("{} must be a date YYYY-MM-DD or an RFC 3339 instant; {}", name,
                      date.status().message()));
    }
    const Date day = is_to ? date->AddDays(1) : *date;
    return Instant{day.days() * 86400000 - static_cast<std::int64_t>(offset) * 60000};
  }
  // A '+' written unescaped in a query arrives as a space: "...T08:00:00 08:00".
  if (text.size() >= 6 && text[text.size() - 6] == ' ') text[text.size() - 6] = '+';
  auto instant = Instant::Parse(text);
  if (!instant.ok()) {
    return Status::Malformed(
        fmt::format("{} must be a date YYYY-MM-DD or an RFC 3339 instant such as "
                    "2026-01-31T08:00:00%2B08:00 (write '+' as %2B in a query): {}",
                    name, instant.status().message()));
  }
  return *instant;
}

Result<ExportQuery> ParseExportQuery(const std::map<std::string, std::string>& query, int offset) {
  ExportQuery q;
  for (const auto& [key, value] : query) {
    if (key == "from" || key == "to") {
      if (value.empty()) continue;  // an open end
      PINGMA_ASSIGN_OR_RETURN(auto bound, ParseBound(key.c_str(), value, key == "to", offset));
      (key == "from" ? q.from : q.to) = bound;
      if (key == "to") q.to_is_date = value.size() == 10;
    } else if (key == "limit") {
      if (!ParseWhole(value, 1, INT64_MAX, &q.limit)) {
        return Status::Malformed(fmt::format(
            "limit must be a whole number from 1 to {} (default {})", kMaxLimit, kDefaultLimit));
      }
      q.limit = std::min(q.limit, kMaxLimit);  // larger pages are capped, not refused
    } else if (key == "cursor") {
      if (!value.empty() && !ParseWhole(value, 0, INT64_MAX, &q.after_seq)) {
        return Status::Malformed(
            "cursor must be the pingma:nextCursor (or pingma:resumeCursor) of an earlier page");
      }
    } else {
      return Status::Malformed(
          fmt::format("unknown parameter '{}'; this export takes from, to, limit and cursor", key));
    }
  }
  // An empty range of instants (from = to) is a range; a day before `from` is not.
  if (q.from && q.to && (*q.to < *q.from || (q.to_is_date && *q.to == *q.from))) {
    return Status::Invalid(fmt::format("the range ends before it begins: from {} is after to {}",
                                       LocalTime(*q.from, offset), LocalTime(*q.to, offset)));
  }
  return q;
}

/// The last place in the log (ExportQuery::after_seq), 0 when it is empty: one
/// step down the primary key. On PostgreSQL the export follows the leaves the
/// sequencer has given (a second behind the commits at most), so that no event
/// can later come before a cursor.
Result<std::int64_t> HeadSeq(Conn& conn) {
  PINGMA_ASSIGN_OR_RETURN(auto st, conn.Prepare(conn.dialect() == sql::Dialect::kSqlite
                                                    ? "SELECT MAX(seq) FROM events"
                                                    : "SELECT MAX(leaf) + 1 FROM log_leaves"));
  PINGMA_RETURN_IF_ERROR(st->Step().status());  // MAX gives a row, NULL when empty
  return st->IsNull(0) ? 0 : st->Int(0);
}

/// The first seq whose event is at or after `t` (head + 1 when none is): a binary
/// search over the primary key, about 2·log2(head) page reads however long the log.
/// An event's `at` is the writer's clock when its job ran, and jobs run one after
/// another, so `at` grows with seq; should the clock ever step back, the answer
/// is still a point of the log with an earlier event before it and a later one at
/// it, and a range is always the run of the log between two such points, so that
/// consecutive ranges and pages still take every event exactly once.
Result<std::int64_t> FirstSeqAtOrAfter(Conn& conn, Instant t, std::int64_t head) {
  PINGMA_ASSIGN_OR_RETURN(
      auto st, conn.Prepare(conn.dialect() == sql::Dialect::kSqlite
                                ? "SELECT at FROM events WHERE seq >= $1 ORDER BY seq LIMIT 1"
                                : "SELECT e.at FROM log_leaves l JOIN events e USING (seq) "
                                  "WHERE l.leaf >= $1 - 1 ORDER BY l.leaf LIMIT 1"));
  std::int64_t lo = 1, hi = head + 1;
  while (lo < hi) {
    const std::int64_t mid = lo + (hi - lo) / 2;
    st->Reset();
    st->Bind(1, mid);
    PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
    if (row && st->Int(0) < t.unix_ms) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

/// A GRAI (the AI 8003 value) as its canonical GS1 Digital Link URI. EPCIS 2.0
/// takes these in an epcList as the equivalent of an EPC URI; the pure-identity
/// URN urn:epc:id:grai:{prefix}.{type}.{serial} cannot be written from the AI value
/// alone, which does not say where the GS1 company prefix ends (the tag's partition
/// field does, and the registry keeps carriers by their AI value).
std::string GraiUri(std::string_view ai_value) {
  return fmt::format("{}/8003/{}", kGs1Resolver, PercentEncode(ai_value));
}

constexpr std::string_view kGraiPrefix = "GRAI:";

/// What names one cylinder code over its history.
struct CodeIdentity {
  std::optional<std::string> own_grai;  ///< the code itself reads as a GRAI
  /// Its GRAI carriers, oldest binding first: (bound_seq, AI value).
  std::vector<std::pair<std::int64_t, std::string>> grai_carriers;
};

/// Names the subject of events, caching per code for one page.
class EpcNamer {
 public:
  /// `public_base`: where the labels' QR codes point (serve --public-base), so
  /// that a cylinder without a GRAI is named by the URL its label carries.
  EpcNamer(Conn* conn, std::string_view public_base) : conn_(conn), public_base_(public_base) {}

  /// The epcList entry for the event `seq` about `subject` (the events' code
  /// column: a code, or for an unregistered scan its key text "GRAI:...", "EPC:...",
  /// "UID:..."). As of the event, so that an event reads the same in every export:
  /// a GRAI when the code is one or a GRAI carrier was bound by then (the first
  /// bound), else the public page's URL.
  Result<std::string> Name(const std::string& subject, std::int64_t seq) {
    if (subject.rfind(kGraiPrefix, 0) == 0) return GraiUri(subject.substr(kGraiPrefix.size()));
    if (subject.rfind("EPC:", 0) == 0) {
      const std::string hex = subject.substr(4);
      // GS1 TDS raw EPC URI: the bit length and the hex.
      return fmt::format("urn:epc:raw:{}.x{}", hex.size() * 4, hex);
    }
    if (subject.rfind("UID:", 0) == 0) return PingmaUri("uid", subject.substr(4));
    auto known = identities_.find(subject);
    if (known == identities_.end()) {
      PINGMA_ASSIGN_OR_RETURN(auto loaded, Load(subject));
      known = identities_.emplace(subject, std::move(loaded)).first;
    }
    const CodeIdentity& id = known->second;
    if (id.own_grai) return GraiUri(*id.own_grai);
    for (const auto& [bound_seq, value] : id.grai_carriers) {
      if (bound_seq <= seq) return GraiUri(value);
    }
    return fmt::format("{}/c/{}", public_base_, PercentEncode(subject));
  }

 private:
  Result<CodeIdentity> Load(const std::string& code) {
    CodeIdentity id;
    auto key = ParseScan(code);
    if (key.ok() && key->kind == ScanKind::kGrai && key->text.rfind(kGraiPrefix, 0) == 0) {
      id.own_grai = key->text.substr(kGraiPrefix.size());
      return id;
    }
    PINGMA_ASSIGN_OR_RETURN(
        auto st,
        conn_->Prepare(
            "SELECT bound_seq, carrier FROM carriers WHERE code = $1 AND substr(carrier, 1, 5) = "
            "'GRAI:' ORDER BY bound_seq"));
    st->Bind(1, code);
    for (;;) {
      PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
      if (!row) break;
      id.grai_carriers.emplace_back(st->Int(0), st->Text(1).substr(kGraiPrefix.size()));
    }
    return id;
  }

  Conn* conn_;
  std::string_view public_base_;
  std::unordered_map<std::string, CodeIdentity> identities_;
};

/// The event's EPCIS eventID: a UUID made from the first 16 bytes of its link in
/// the hash chain, or for an event after the chain's end its leaf hash in the
/// log's tree (RFC 9562 version 8, the layout for such), so that it is the same
/// in every export and unique in the log; the whole hash is in pingma:hash.
std::string EventUuid(std::string_view hash) {
  unsigned char b[16] = {};
  for (size_t i = 0; i < sizeof b && i < hash.size(); ++i)
    b[i] = static_cast<unsigned char>(hash[i]);
  b[6] = static_cast<unsigned char>((b[6] & 0x0F) | 0x80);  // version 8
  b[8] = static_cast<unsigned char>((b[8] & 0x3F) | 0x80);  // variant 10
  std::string hex;
  for (unsigned char c : b) hex += fmt::format("{:02x}", c);
  return fmt::format("urn:uuid:{}-{}-{}-{}-{}", hex.substr(0, 8), hex.substr(8, 4),
                     hex.substr(12, 4), hex.substr(16, 4), hex.substr(20));
}

// ---- Copying body fields, by name and type ------------------------------------------

/// A non-empty string field; an empty one says nothing and is left out.
void CopyString(const json& body, const char* key, ojson& ev, const char* name) {
  if (auto it = body.find(key); it != body.end() && it->is_string() && !it->empty()) {
    ev[name] = it->get<std::string>();
  }
}

void CopyNumber(const json& body, const char* key, ojson& ev, const char* name) {
  if (auto it = body.find(key); it != body.end() && it->is_number()) ev[name] = it->get<double>();
}

void CopyBool(const json& body, const char* key, ojson& ev, const char* name) {
  if (auto it = body.find(key); it != body.end() && it->is_boolean()) ev[name] = it->get<bool>();
}

void CopyInt(const json& body, const char* key, ojson& ev, const char* name) {
  if (auto it = body.find(key); it != body.end() && it->is_number_integer()) {
    ev[name] = it->get<std::int64_t>();
  }
}

/// A list of strings (reason codes, defects); other items are left out.
void CopyStrings(const json& body, const char* key, ojson& ev, const char* name) {
  auto it = body.find(key);
  if (it == body.end() || !it->is_array()) return;
  ojson list = ojson::array();
  for (const json& item : *it) {
    if (item.is_string()) list.push_back(item.get<std::string>());
  }
  ev[name] = std::move(list);
}

/// The pass/fail verdicts of a pre-fill or door-step check, with the measured
/// hose length and the regulator's installation date; notes are not copied.
ojson CheckVerdicts(const json& check) {
  ojson out = ojson::object();
  if (!check.is_object()) return out;
  for (const auto& [item, value] : check.items()) {
    if (value.is_string() && (value == "pass" || value == "fail")) {
      out["pingma:" + item] = value.get<std::string>();
    }
  }
  if (auto it = check.find("hose_length_m"); it != check.end() && it->is_number()) {
    out["pingma:hose_length_m"] = it->get<double>();
  }
  if (auto it = check.find("regulator_installed");
      it != check.end() && it->is_string() && Date::Parse(it->get<std::string>()).ok()) {
    out["pingma:regulator_installed"] = it->get<std::string>();
  }
  return out;
}

/// A string field of a body, or "" when it is missing or not a string.
std::string Text(const json& body, const char* key) {
  auto it = body.find(key);
  return it != body.end() && it->is_string() ? it->get<std::string>() : std::string();
}

/// The event types this export maps (see the table at the top of this file).
bool IsExported(std::string_view type) {
  for (std::string_view t :
       {"registered", "carrier_bound", "fill_check", "fill", "violation", "inspection",
        "assessment", "flagged_for_scrap", "scrapped", "handover", "public_report"}) {
    if (type == t) return true;
  }
  return false;
}

/// The disposition a scrap flag leaves, by its reason (CBV 2.0 dispositions).
const char* FlagDisposition(const std::string& reason) {
  if (reason == "RECALLED") return "recalled";
  if (reason == "DEFECT_FOUND") return "damaged";
  return "needs_replacement";  // failed inspection or assessment, life, dual phase
}

/// One row of the events table.
struct LogRow {
  std::int64_t seq = 0;
  std::string id;
  std::string code;
  std::string type;
  Instant at;
  std::string actor_role;
  std::string actor_id;
  json body;
  std::string hash;
};

/// Builds the page's events.
class EventMapper {
 public:
  EventMapper(Conn* conn, int offset, std::string_view public_base, std::string_view customer_key)
      : conn_(conn), namer_(conn, public_base), offset_(offset), key_(customer_key) {}

  /// The ObjectEvent for `row`, or nullopt for a type that is not exported.
  Result<std::optional<ojson>> Map(const LogRow& row) {
    const std::string& type = row.type;
    const json& b = row.body;
    if (!IsExported(type)) return std::optional<ojson>();
    PINGMA_ASSIGN_OR_RETURN(auto epc, namer_.Name(row.code, row.seq));

    Instant event_time = row.at;
    // When it happened at the scale: a fill when it ended, a check decided offline
    // when the station decided. `at` is when the registry received it, which for
    // either offline may be hours later.
    const char* happened = type == "fill"         ? "ended_at"
                           : type == "fill_check" ? "decided_at"
                                                  : nullptr;
    if (happened != nullptr) {
      if (auto it = b.find(happened); it != b.end() && it->is_string()) {
        if (auto t = Instant::Parse(it->get<std::string>()); t.ok()) event_time = *t;
      }
    }
    ojson ev;
    ev["type"] = "ObjectEvent";
    ev["eventTime"] = LocalTime(event_time, offset_);
    ev["recordTime"] = LocalTime(row.at, offset_);
    ev["eventTimeZoneOffset"] = OffsetText(offset_);
    ev["eventID"] = EventUuid(row.hash);
    ev["epcList"] = ojson::array({epc});
    ev["action"] = type == "registered" ? "ADD" : type == "scrapped" ? "DELETE" : "OBSERVE";

    // Where: the station of a check, fill or violation; the agency of an inspector.
    std::string station = Text(b, "station_id");
    if (station.empty() && row.actor_role == "station") station = row.actor_id;
    std::optional<std::string> place;
    if (!station.empty()) {
      place = PingmaUri("station", station);
    } else if (row.actor_role == "inspector") {
      place = PingmaUri("agency", row.actor_id);
    }

    std::optional<std::string> disposition;
    if (type == "registered") {
      ev["bizStep"] = "commissioning";
      disposition = "active";
    } else if (type == "carrier_bound") {
      ev["bizStep"] = fmt::format("{}bizstep/carrier_binding", kNamespace);
    } else if (type == "fill") {
      ev["bizStep"] = fmt::format("{}bizstep/filling", kNamespace);
    } else if (type == "flagged_for_scrap") {
      ev["bizStep"] = "holding";
      disposition = FlagDisposition(Text(b, "reason"));
    } else if (type == "scrapped") {
      ev["bizStep"] = "decommissioning";
      disposition = "destroyed";
    } else if (type == "public_report") {
      ev["bizStep"] = fmt::format("{}bizstep/public_reporting", kNamespace);
    } else if (type == "handover" && Text(b, "decision") == "allow") {
      ev["bizStep"] = Text(b, "direction") == "collect" ? "receiving" : "shipping";
    } else {
      ev["bizStep"] = "inspecting";  // checks, violations, inspections, refused handovers
    }
    if (disposition) ev["disposition"] = *disposition;
    if (place) {
      ev["readPoint"] = {{"id", *place}};
      ev["bizLocation"] = {{"id", *place}};
    }
    if (type == "handover") {
      if (Status s = AddHandoverParties(b, &ev); !s.ok()) return s;
    }
    if (type == "registered") {
      ojson ilmd = ojson::object();
      CopyString(b, "model", ilmd, "pingma:model");
      CopyString(b, "phase", ilmd, "pingma:phase");
      CopyString(b, "manufacturer", ilmd, "pingma:manufacturer");
      CopyString(b, "serial", ilmd, "pingma:serial");
      CopyString(b, "manufactured", ilmd, "pingma:manufactured");
      CopyNumber(b, "tare_kg", ilmd, "pingma:tareKg");
      CopyNumber(b, "water_capacity_l", ilmd, "pingma:waterCapacityL");
      CopyNumber(b, "allowed_fill_kg", ilmd, "pingma:allowedFillKg");
      CopyInt(b, "design_life_years", ilmd, "pingma:designLifeYears");
      ev["ilmd"] = std::move(ilmd);
    }

    // pingma's own fields: first what every event has, then the type's.
    ev["pingma:code"] = row.code;
    ev["pingma:eventType"] = type;
    ev["pingma:eventId"] = row.id;
    ev["pingma:seq"] = row.seq;
    ev["pingma:hash"] = HexOf(row.hash);
    ev["pingma:actorRole"] = row.actor_role;
    // A member of the public is no one in particular; the others are work ids.
    if (row.actor_role != "public") ev["pingma:actorId"] = row.actor_id;
    if (!station.empty()) ev["pingma:stationId"] = station;

    if (type == "registered") {
      CopyString(b, "owner_company_id", ev, "pingma:ownerCompanyId");
      CopyString(b, "registration_no", ev, "pingma:registrationNo");
      CopyString(b, "last_inspection", ev, "pingma:lastInspection");
      CopyString(b, "next_inspection_due", ev, "pingma:nextInspectionDue");
    } else if (type == "carrier_bound") {
      CopyString(b, "carrier", ev, "pingma:carrier");
    } else if (type == "fill_check") {
      CopyString(b, "decision", ev, "pingma:decision");
      ev["pingma:reasons"] = ojson::array();
      CopyStrings(b, "reasons", ev, "pingma:reasons");
      CopyStrings(b, "defects", ev, "pingma:defects");
      CopyNumber(b, "empty_gross_kg", ev, "pingma:emptyGrossKg");
      CopyString(b, "operator_id", ev, "pingma:operatorId");
      // Decided on the station's replica: the decision above is the station's,
      // the registry's own beside it.
      auto offline = b.find("offline");
      ev["pingma:offline"] = offline != b.end() && offline->is_boolean() && offline->get<bool>();
      if (ev["pingma:offline"].get<bool>()) {
        CopyString(b, "station_check_id", ev, "pingma:stationCheckId");
        CopyString(b, "decided_at", ev, "pingma:decidedAt");
        CopyString(b, "replica_synced_at", ev, "pingma:replicaSyncedAt");
        CopyString(b, "registry_decision", ev, "pingma:registryDecision");
        ev["pingma:registryReasons"] = ojson::array();
        CopyStrings(b, "registry_reasons", ev, "pingma:registryReasons");
        CopyBool(b, "agrees", ev, "pingma:agrees");
      }
    } else if (type == "fill") {
      CopyString(b, "check_id", ev, "pingma:checkId");
      CopyString(b, "operator_id", ev, "pingma:operatorId");
      CopyString(b, "scale_id", ev, "pingma:scaleId");
      CopyString(b, "started_at", ev, "pingma:startedAt");
      CopyString(b, "ended_at", ev, "pingma:endedAt");
      CopyNumber(b, "tare_kg", ev, "pingma:tareKg");
      CopyNumber(b, "gross_before_kg", ev, "pingma:grossBeforeKg");
      CopyNumber(b, "gross_after_kg", ev, "pingma:grossAfterKg");
      CopyNumber(b, "net_kg", ev, "pingma:netKg");
      CopyNumber(b, "residual_kg", ev, "pingma:residualKg");
      CopyString(b, "result", ev, "pingma:result");
      auto offline = b.find("offline");
      ev["pingma:offline"] = offline != b.end() && offline->is_boolean() && offline->get<bool>();
      if (auto it = b.find("offline_decision"); it != b.end() && it->is_object()) {
        CopyString(*it, "decision", ev, "pingma:offlineDecision");
      }
      if (auto it = b.find("post_checks"); it != b.end())
        ev["pingma:postChecks"] = CheckVerdicts(*it);
    } else if (type == "violation") {
      ev["pingma:decision"] = "block";
      CopyString(b, "registry_decision", ev, "pingma:registryDecision");
      ev["pingma:reasons"] = ojson::array();
      CopyStrings(b, "reasons", ev, "pingma:reasons");
      CopyBool(b, "filled_against_own_block", ev, "pingma:filledAgainstOwnBlock");
      if (auto it = b.find("offline_decision"); it != b.end() && it->is_object()) {
        CopyString(*it, "decision", ev, "pingma:offlineDecision");
      }
      CopyString(b, "result_reported", ev, "pingma:resultReported");
      CopyString(b, "result_by_weight", ev, "pingma:resultByWeight");
      CopyNumber(b, "net_kg", ev, "pingma:netKg");
      CopyNumber(b, "min_kg", ev, "pingma:minKg");
      CopyNumber(b, "max_kg", ev, "pingma:maxKg");
      CopyString(b, "fill_event_id", ev, "pingma:fillEventId");
      CopyString(b, "check_id", ev, "pingma:checkId");  // a check allowed offline
      CopyString(b, "station_check_id", ev, "pingma:stationCheckId");
    } else if (type == "inspection" || type == "assessment") {
      CopyString(b, "result", ev, "pingma:result");
      CopyString(b, "date", ev, "pingma:date");
      CopyString(b, "report_no", ev, "pingma:reportNo");
      CopyString(b, "next_due", ev, "pingma:nextDue");
      CopyBool(b, "latest", ev, "pingma:latest");
      CopyString(b, "extends_until", ev, "pingma:extendsUntil");
    } else if (type == "flagged_for_scrap") {
      CopyString(b, "reason", ev, "pingma:reason");
    } else if (type == "scrapped") {
      CopyString(b, "date", ev, "pingma:date");
      CopyString(b, "method", ev, "pingma:method");
      CopyString(b, "certificate_no", ev, "pingma:certificateNo");
    } else if (type == "handover") {
      CopyString(b, "direction", ev, "pingma:direction");
      CopyString(b, "decision", ev, "pingma:decision");
      ev["pingma:reasons"] = ojson::array();
      CopyStrings(b, "reasons", ev, "pingma:reasons");
      CopyString(b, "company_id", ev, "pingma:companyId");
      CopyString(b, "courier_id", ev, "pingma:courierId");
      CopyString(b, "vehicle", ev, "pingma:vehicle");
      if (auto it = b.find("safety_check"); it != b.end()) {
        ev["pingma:safetyCheck"] = CheckVerdicts(*it);
      }
    } else if (type == "public_report") {
      CopyString(b, "category", ev, "pingma:category");
      CopyBool(b, "registered", ev, "pingma:registered");
    }
    return std::optional<ojson>(std::move(ev));
  }

 private:
  /// A handover that took place moves possession between the owner company and a
  /// customer, who is named by a pseudonym only (see CustomerUri).
  Status AddHandoverParties(const json& b, ojson* ev) {
    if (Text(b, "decision") != "allow") return Status::Ok();
    const std::string company = Text(b, "company_id");
    PINGMA_ASSIGN_OR_RETURN(auto customer, CustomerUri(Text(b, "customer_id")));
    if (company.empty() || !customer) return Status::Ok();
    std::string from = PingmaUri("company", company);
    std::string to = *customer;
    if (Text(b, "direction") == "collect") std::swap(from, to);
    (*ev)["sourceList"] = ojson::array({{{"type", "possessing_party"}, {"source", from}}});
    (*ev)["destinationList"] = ojson::array({{{"type", "possessing_party"}, {"destination", to}}});
    (*ev)["pingma:customer"] = *customer;
    return Status::Ok();
  }

  /// A customer as an opaque URI: HMAC-SHA-256 of the customer id under the
  /// registry's own secret (the key of the customers' phone and ID hashes, kept in
  /// the secrets folder and never sent anywhere), so that one customer's handovers
  /// can be followed without learning who, nor guessing it from a list of ids.
  /// nullopt when there is no id or no key.
  Result<std::optional<std::string>> CustomerUri(const std::string& customer_id) {
    if (customer_id.empty() || key_.empty()) return std::optional<std::string>();
    // The kind keeps this from ever equalling a phone or ID hash of the same key.
    const std::string material = "epcis_customer:" + customer_id;
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
         reinterpret_cast<const unsigned char*>(material.data()), material.size(), out, &len);
    std::string hex;
    for (unsigned int i = 0; i < 16 && i < len; ++i) hex += fmt::format("{:02x}", out[i]);
    return std::optional<std::string>(PingmaUri("customer", hex));
  }

  Conn* conn_;
  EpcNamer namer_;
  int offset_;
  std::string_view key_;
};

/// The query string of a page of the same range, for the Link header.
std::string PageTarget(const ExportQuery& q, std::int64_t after_seq, int offset) {
  std::string target = "/v1/export/epcis?";
  if (q.from) target += "from=" + PercentEncode(LocalTime(*q.from, offset)) + "&";
  if (q.to) target += "to=" + PercentEncode(LocalTime(*q.to, offset)) + "&";
  target += fmt::format("limit={}&cursor={}", q.limit, after_seq);
  return target;
}

Reply ExportPage(Conn& conn, const ExportQuery& q, int offset, Instant now,
                 std::string_view public_base, std::string_view customer_key) {
  auto head = HeadSeq(conn);
  if (!head.ok()) return ErrorReply(head.status());
  // The range is the run of the log [first, end): seqs, found by binary search.
  std::int64_t first = 1;
  if (q.from) {
    auto s = FirstSeqAtOrAfter(conn, *q.from, *head);
    if (!s.ok()) return ErrorReply(s.status());
    first = *s;
  }
  std::int64_t end = *head + 1;
  if (q.to) {
    auto s = FirstSeqAtOrAfter(conn, *q.to, *head);
    if (!s.ok()) return ErrorReply(s.status());
    end = *s;
  }
  const std::int64_t start = std::max(first, q.after_seq + 1);
  // A page reads at most this many rows of the log, exported or not, so that a
  // stretch of events that are not exported costs a short page, not a long scan.
  const std::int64_t max_rows = q.limit * 4 + 256;

  auto st = conn.Prepare(
      conn.dialect() == sql::Dialect::kSqlite
          ? "SELECT seq, id, code, type, at, actor_role, actor_id, body, hash, seq FROM events "
            "WHERE seq >= $1 AND seq < $2 ORDER BY seq"
          : "SELECT seq, id, code, type, at, actor_role, actor_id, body, hash, l.leaf + 1 "
            "FROM log_leaves l JOIN events e USING (seq) "
            "WHERE l.leaf >= $1 - 1 AND l.leaf < $2 - 1 ORDER BY l.leaf");
  if (!st.ok()) return ErrorReply(st.status());
  (*st)->Bind(1, start).Bind(2, end);
  EventMapper mapper(&conn, offset, public_base, customer_key);
  ojson events = ojson::array();
  std::int64_t rows = 0;
  std::int64_t last = start - 1;  // the last seq this page covered
  bool exhausted = start >= end;
  while (!exhausted && static_cast<std::int64_t>(events.size()) < q.limit && rows < max_rows) {
    auto step = (*st)->Step();
    if (!step.ok()) return ErrorReply(step.status());
    if (!*step) {
      exhausted = true;
      break;
    }
    ++rows;
    last = (*st)->Int(9);
    // Set-up events name no cylinder; the types not mapped are skipped unread.
    if ((*st)->IsNull(2) || !IsExported((*st)->Text(3))) continue;
    LogRow row;
    row.type = (*st)->Text(3);
    row.seq = (*st)->Int(0);
    row.id = (*st)->Text(1);
    row.code = (*st)->Text(2);
    row.at = Instant{(*st)->Int(4)};
    row.actor_role = (*st)->Text(5);
    row.actor_id = (*st)->Text(6);
    row.body = json::parse((*st)->Text(7), nullptr, false);
    if (!row.body.is_object()) row.body = json::object();
    row.hash = std::string((*st)->Blob(8));
    // An event after the chain's end (PostgreSQL) has no link: its leaf's hash
    // in the log's tree names it as uniquely.
    if (row.hash.empty()) row.hash = merkle::LeafHash(logrows::LeafOf(row.seq, EventOfRow(**st)));
    auto ev = mapper.Map(row);
    if (!ev.ok()) return ErrorReply(ev.status());
    if (*ev) {
      (**ev)["pingma:logIndex"] = last - 1;  // its entry in the verifiable log
      events.push_back(std::move(**ev));
    }
  }
  (*st)->Reset();
  const bool more = !exhausted && last + 1 < end;

  ojson context = ojson::array({kEpcisContext, ojson{{"pingma", std::string(kNamespace)}}});
  ojson doc;
  doc["@context"] = std::move(context);
  doc["type"] = "EPCISDocument";
  doc["schemaVersion"] = "2.0";
  doc["creationDate"] = LocalTime(now, offset);
  doc["epcisBody"] = {{"eventList", std::move(events)}};
  doc["pingma:from"] = q.from ? ojson(LocalTime(*q.from, offset)) : ojson(nullptr);
  doc["pingma:to"] = q.to ? ojson(LocalTime(*q.to, offset)) : ojson(nullptr);
  doc["pingma:nextCursor"] = more ? ojson(std::to_string(last)) : ojson(nullptr);
  // Where a later call continues once more events have been recorded, for a range
  // left open at its end (no `to`, or a `to` not yet reached).
  doc["pingma:resumeCursor"] = std::to_string(std::max(last, q.after_seq));

  Reply reply;
  reply.raw_content_type = "application/ld+json; charset=utf-8";
  reply.raw_body = doc.dump(-1, ' ', false, json::error_handler_t::replace);
  reply.headers.emplace_back("GS1-EPCIS-Version", "2.0.0");
  reply.headers.emplace_back("GS1-CBV-Version", "2.0.0");
  if (more) {
    reply.headers.emplace_back("Link",
                               fmt::format("<{}>; rel=\"next\"", PageTarget(q, last, offset)));
  }
  return reply;
}

}  // namespace

void EpcisExport::ExportEpcis(const Call& call, Store::Done done) {
  const int offset = policy_.utc_offset_minutes;
  auto query = ParseExportQuery(call.query, offset);
  if (!query.ok()) return done(ErrorReply(query.status()));
  const Instant now = clock_->Now();
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    return ExportPage(conn, *query, offset, now, settings_.public_base,
                      settings_.customer_hash_key);
  });
}

}  // namespace pingma::registry
