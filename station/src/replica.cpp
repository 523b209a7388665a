// The offline replica: the fleet feed's pages kept in SQLite, and DecideFill run on
// them when the registry cannot be reached. See replica.h for the contract.
#include "replica.h"

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cylinder_json.h"
#include "pingma/common/sqlite.h"
#include "pingma/scanner/scan.h"

namespace pingma::station {
namespace {

using nlohmann::json;

// Schema version 1.
//  cylinders: the feed's cylinder object as received (its JSON), keyed by code;
//             owner kept as a column for inspection and future queries.
//  carriers:  canonical carrier key ("EPC:...", "UID:...", "GRAI:...") -> code, so
//             that a tag scan resolves offline as the registry resolves it.
//  meta:      key -> text: the cursor, the policy (PolicyToJson), the station's
//             facts, custody, recalls and operators as the last page gave them, and
//             when a full sync last completed.
//  sightings: this station's own last check of each code, for the clone rule's
//             `last_check`; rows older than the clone window are dropped.
constexpr int kSchemaVersion = 1;
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS cylinders(
  code TEXT PRIMARY KEY,
  owner_company_id TEXT NOT NULL,
  record TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS carriers(
  carrier TEXT PRIMARY KEY,
  code TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS carriers_by_code ON carriers(code);
CREATE TABLE IF NOT EXISTS meta(
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sightings(
  code TEXT PRIMARY KEY,
  at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sightings_by_at ON sightings(at);
PRAGMA user_version = 1;
)sql";

// Meta keys.
constexpr const char* kCursor = "cursor";
constexpr const char* kPolicy = "policy";
constexpr const char* kStationId = "station_id";
constexpr const char* kCompanyId = "company_id";
constexpr const char* kStation = "station";
constexpr const char* kOperators = "operators";
constexpr const char* kCustody = "custody";
constexpr const char* kRecalls = "recalls";
constexpr const char* kLastFullSync = "last_full_sync";

Result<Date> DateField(const json& o, const char* key, const char* what) {
  auto text = JsonOptString(o, key);
  if (!text) return Status::Malformed(std::string(what) + ": no date '" + key + "'");
  auto d = Date::Parse(*text);
  if (!d.ok())
    return Status::Invalid(std::string(what) + ": '" + key + "': " + d.status().message());
  return *d;
}

Result<std::optional<YearMonth>> OptYearMonth(const json& o, const char* key) {
  auto text = JsonOptString(o, key);
  if (!text) return std::optional<YearMonth>();
  auto ym = YearMonth::Parse(*text);
  if (!ym.ok())
    return Status::Invalid(std::string("recall: '") + key + "': " + ym.status().message());
  return std::optional<YearMonth>(*ym);
}

// The facts of a page (or of the meta table, which keeps them as a page gave them).
Result<FleetFacts> ParseFacts(const std::string& station_id, const std::string& company_id,
                              const json& station, const json& operators, const json& custody,
                              const json& recalls) {
  FleetFacts f;
  f.station.id = station_id;
  f.station.company_id = company_id;
  if (!station.is_object()) return Status::Malformed("fleet page: no 'station' object");
  f.station.locked = JsonBool(station, "locked", false);
  f.station.lock_reason = JsonString(station, "lock_reason");
  if (auto it = station.find("filling_license"); it != station.end() && it->is_object()) {
    PINGMA_ASSIGN_OR_RETURN(auto until, DateField(*it, "valid_until", "filling_license"));
    f.station.license =
        FillingLicense{JsonString(*it, "number"), until, JsonBool(*it, "revoked", false)};
  }
  if (!operators.is_array()) return Status::Malformed("fleet page: no 'operators' list");
  for (const json& o : operators) {
    OperatorFacts op;
    op.id = JsonString(o, "id");
    if (op.id.empty()) return Status::Malformed("fleet page: an operator without an id");
    if (auto it = o.find("certificate"); it != o.end() && it->is_object()) {
      PINGMA_ASSIGN_OR_RETURN(auto until, DateField(*it, "valid_until", "certificate"));
      op.certificate = Certificate{JsonString(*it, "number"), until};
    }
    f.operators[op.id] = std::move(op);
  }
  if (!custody.is_array()) return Status::Malformed("fleet page: no 'custody' list");
  for (const json& c : custody) {
    CustodyAgreement a;
    a.owner_company_id = JsonString(c, "owner_company_id");
    a.custodian_company_id = JsonString(c, "custodian_company_id");
    PINGMA_ASSIGN_OR_RETURN(a.valid_from, DateField(c, "valid_from", "custody"));
    PINGMA_ASSIGN_OR_RETURN(a.valid_until, DateField(c, "valid_until", "custody"));
    f.custody.push_back(std::move(a));
  }
  if (!recalls.is_array()) return Status::Malformed("fleet page: no 'recalls' list");
  for (const json& r : recalls) {
    Recall recall;
    recall.manufacturer = JsonString(r, "manufacturer");
    recall.reason = JsonString(r, "reason");
    PINGMA_ASSIGN_OR_RETURN(recall.manufactured_from, OptYearMonth(r, "manufactured_from"));
    PINGMA_ASSIGN_OR_RETURN(recall.manufactured_to, OptYearMonth(r, "manufactured_to"));
    f.recalls.push_back(std::move(recall));
  }
  return f;
}

json ParseOrNull(const std::string& text) {
  return json::parse(text, nullptr, false);
}

std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Instant WallNow() {
  return Instant{std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count()};
}

}  // namespace

struct Replica::Impl {
  std::mutex mu;
  sqlite::Database db;
  sqlite::Statement put_cylinder, drop_carriers, put_carrier, get_cylinder, get_carrier, put_meta,
      get_meta, count, get_sighting, put_sighting, prune_sightings, any_carrier;
  // Parsed copies of meta, so that Decide parses only the cylinder's record.
  std::optional<Policy> policy;
  std::optional<FleetFacts> facts;
  std::string cursor;
  std::string last_full_sync;  // RFC 3339; "" before the first completed sync
  std::atomic<bool> synced{false};

  Status PutMeta(const char* key, const std::string& value) {
    put_meta.Reset().Bind(1, key).Bind(2, value);
    return put_meta.Run();
  }
  Result<std::optional<std::string>> GetMeta(const char* key) {
    get_meta.Reset().Bind(1, key);
    PINGMA_ASSIGN_OR_RETURN(auto row, get_meta.Step());
    std::optional<std::string> out;
    if (row) out = get_meta.Text(0);
    get_meta.Reset();
    return out;
  }

  // The stored record of `code`, or nullopt.
  Result<std::optional<Cylinder>> Load(const std::string& code) {
    get_cylinder.Reset().Bind(1, code);
    PINGMA_ASSIGN_OR_RETURN(auto row, get_cylinder.Step());
    if (!row) return std::optional<Cylinder>();
    std::string record = get_cylinder.Text(0);
    get_cylinder.Reset();
    auto parsed = ParseFleetCylinder(std::move(record));
    if (!parsed.ok()) {
      return Status::Corruption("replica record of " + code + ": " + parsed.status().message());
    }
    return std::optional<Cylinder>(std::move(parsed->cylinder));
  }

  // The code a scan resolves to, as the registry's ResolveKey does: a code is
  // itself, a carrier goes through the carriers table, and bare text that only
  // looks like a tag is tried as a code when no such carrier is bound.
  Result<std::optional<Cylinder>> Resolve(const ScanKey& key) {
    if (key.kind == ScanKind::kCode) return Load(key.text);
    get_carrier.Reset().Bind(1, key.text);
    PINGMA_ASSIGN_OR_RETURN(auto row, get_carrier.Step());
    if (row) {
      const std::string code = get_carrier.Text(0);
      get_carrier.Reset();
      return Load(code);
    }
    if (key.also_code) return Load(*key.also_code);
    return std::optional<Cylinder>();
  }

  Status LoadMeta() {
    PINGMA_ASSIGN_OR_RETURN(auto cursor_text, GetMeta(kCursor));
    cursor = cursor_text.value_or("");
    PINGMA_ASSIGN_OR_RETURN(auto policy_text, GetMeta(kPolicy));
    if (policy_text) {
      auto parsed = ParsePolicy(*policy_text);
      if (!parsed.ok()) return Status::Corruption("replica policy: " + parsed.status().message());
      policy = std::move(*parsed);
    }
    std::optional<std::string> values[6];
    const char* keys[6] = {kStationId, kCompanyId, kStation, kOperators, kCustody, kRecalls};
    for (int i = 0; i < 6; ++i) {
      PINGMA_ASSIGN_OR_RETURN(values[i], GetMeta(keys[i]));
    }
    if (values[0] && values[1] && values[2] && values[3] && values[4] && values[5]) {
      auto parsed =
          ParseFacts(*values[0], *values[1], ParseOrNull(*values[2]), ParseOrNull(*values[3]),
                     ParseOrNull(*values[4]), ParseOrNull(*values[5]));
      if (!parsed.ok()) return Status::Corruption("replica facts: " + parsed.status().message());
      facts = std::move(*parsed);
    }
    PINGMA_ASSIGN_OR_RETURN(auto last, GetMeta(kLastFullSync));
    synced = last.has_value();
    last_full_sync = last.value_or("");
    return Status::Ok();
  }
};

Result<std::unique_ptr<Replica>> Replica::Open(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  // A copy of the registry's records, not a record of its own: after a power loss it
  // may lack its last pages and sightings, and the cursor committed with them makes
  // the next sync fetch them again. Not syncing every commit keeps each offline
  // decision's sighting write off the disk's flush (p99 5 ms to well under 1 ms).
  sqlite::OpenOptions options;
  options.durability = sqlite::Durability::kCrash;
  PINGMA_ASSIGN_OR_RETURN(
      impl->db, sqlite::OpenVersioned(path, {"replica", kSchemaVersion, kSchema}, options));
  PINGMA_RETURN_IF_ERROR(sqlite::PrepareAll(
      impl->db,
      {
          {&impl->put_cylinder,
           "INSERT INTO cylinders(code, owner_company_id, record) VALUES(?, ?, ?) "
           "ON CONFLICT(code) DO UPDATE SET owner_company_id = excluded.owner_company_id, "
           "record = excluded.record"},
          {&impl->drop_carriers, "DELETE FROM carriers WHERE code = ?"},
          {&impl->put_carrier, "INSERT OR REPLACE INTO carriers(carrier, code) VALUES(?, ?)"},
          {&impl->get_cylinder, "SELECT record FROM cylinders WHERE code = ?"},
          {&impl->get_carrier, "SELECT code FROM carriers WHERE carrier = ?"},
          {&impl->put_meta, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)"},
          {&impl->get_meta, "SELECT value FROM meta WHERE key = ?"},
          {&impl->count, "SELECT count(*) FROM cylinders"},
          {&impl->get_sighting, "SELECT at FROM sightings WHERE code = ?"},
          {&impl->put_sighting, "INSERT OR REPLACE INTO sightings(code, at) VALUES(?, ?)"},
          {&impl->prune_sightings, "DELETE FROM sightings WHERE at < ?"},
          {&impl->any_carrier, "SELECT 1 FROM carriers LIMIT 1"},
      }));
  PINGMA_RETURN_IF_ERROR(impl->LoadMeta());
  return std::unique_ptr<Replica>(new Replica(std::move(impl)));
}

Replica::Replica(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Replica::~Replica() = default;

Result<std::unique_ptr<const ReplicaPage>> ReadFleetPage(FleetPage fleet_page) {
  // Made in place: its rows and texts point into its own page.
  auto out = std::make_unique<ReplicaPage>();
  out->page = std::move(fleet_page);
  const JsonValue page = out->page.doc.Root();
  if (!page.is_object()) return Status::Malformed("the fleet page is not a JSON object");
  constexpr std::string_view kNames[] = {"company_id", "custody", "cylinders", "next_cursor",
                                         "operators",  "recalls", "station",   "station_id"};
  enum {
    kCompany,
    kCustodyList,
    kCylinders,
    kNext,
    kOperatorList,
    kRecallList,
    kStationObject,
    kStationIdText,
    kCount
  };
  std::optional<JsonValue> f[kCount];
  page.FindAll(kNames, kCount, f);
  auto text_of = [&](int k) { return f[k] ? f[k]->String() : std::nullopt; };
  auto station_id = text_of(kStationIdText);
  auto company_id = text_of(kCompany);
  auto next_cursor = text_of(kNext);
  if (!station_id || !company_id || !next_cursor) {
    return Status::Malformed("the fleet page has no station_id, company_id or next_cursor");
  }
  if (!f[kCylinders] || !f[kCylinders]->is_array()) {
    return Status::Malformed("the fleet page has no cylinders list");
  }
  // The facts are a few small values: read with nlohmann, as the meta table's are.
  const int fact_fields[4] = {kStationObject, kOperatorList, kCustodyList, kRecallList};
  json facts[4];
  for (int i = 0; i < 4; ++i) {
    const auto& value = f[fact_fields[i]];
    out->fact_texts[i] = value ? value->Text() : std::string_view("null");
    facts[i] = ParseOrNull(std::string(out->fact_texts[i]));
  }
  PINGMA_ASSIGN_OR_RETURN(
      out->facts, ParseFacts(*station_id, *company_id, facts[0], facts[1], facts[2], facts[3]));
  out->station_id = std::move(*station_id);
  out->company_id = std::move(*company_id);
  out->next_cursor = std::move(*next_cursor);
  out->rows.reserve(f[kCylinders]->size());
  for (const JsonValue& c : f[kCylinders]->Elements()) {
    PINGMA_ASSIGN_OR_RETURN(auto parsed, ParseFleetCylinder(c));
    out->rows.push_back(ReplicaPage::Row{std::move(parsed), c});
  }
  return std::unique_ptr<const ReplicaPage>(std::move(out));
}

Status Replica::ApplyPage(const std::string& page_json) {
  PINGMA_ASSIGN_OR_RETURN(auto doc, JsonDoc::Parse(page_json));
  FleetPage page;
  page.doc = std::move(doc);
  return ApplyPage(std::move(page));
}

Status Replica::ApplyPage(FleetPage page) {
  PINGMA_ASSIGN_OR_RETURN(auto read, ReadFleetPage(std::move(page)));
  return ApplyPage(*read);
}

Status Replica::ApplyPage(const ReplicaPage& page) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->facts && impl_->facts->station.id != page.station_id) {
    return Status::Invalid("this replica is station " + impl_->facts->station.id +
                           "'s, the page is for " + page.station_id);
  }
  sqlite::Transaction tx(&impl_->db);
  PINGMA_RETURN_IF_ERROR(tx.Begin());
  // With no carrier bound anywhere (a new replica, or a fleet of printed codes
  // only) there is nothing to unbind: a page's codes are distinct, so none of its
  // cylinders can lose a carrier that this page bound. Saves a delete a cylinder.
  impl_->any_carrier.Reset();
  PINGMA_ASSIGN_OR_RETURN(const bool carriers_bound, impl_->any_carrier.Step());
  impl_->any_carrier.Reset();
  for (const auto& [c, record] : page.rows) {
    // Stored as it came: the registry writes compact JSON, and what was read from
    // it has been checked above.
    impl_->put_cylinder.Reset()
        .Bind(1, c.cylinder.code)
        .Bind(2, c.cylinder.owner_company_id)
        .Bind(3, record.Text());
    PINGMA_RETURN_IF_ERROR(impl_->put_cylinder.Run());
    // The page carries the cylinder's whole carrier list: replace what was bound.
    if (carriers_bound) {
      impl_->drop_carriers.Reset().Bind(1, c.cylinder.code);
      PINGMA_RETURN_IF_ERROR(impl_->drop_carriers.Run());
    }
    for (const std::string& carrier : c.carriers) {
      impl_->put_carrier.Reset().Bind(1, carrier).Bind(2, c.cylinder.code);
      PINGMA_RETURN_IF_ERROR(impl_->put_carrier.Run());
    }
  }
  PINGMA_RETURN_IF_ERROR(impl_->PutMeta(kStationId, page.station_id));
  PINGMA_RETURN_IF_ERROR(impl_->PutMeta(kCompanyId, page.company_id));
  const char* fact_keys[4] = {kStation, kOperators, kCustody, kRecalls};
  for (int i = 0; i < 4; ++i) {
    PINGMA_RETURN_IF_ERROR(impl_->PutMeta(fact_keys[i], std::string(page.fact_texts[i])));
  }
  PINGMA_RETURN_IF_ERROR(impl_->PutMeta(kCursor, page.next_cursor));
  PINGMA_RETURN_IF_ERROR(tx.Commit());
  impl_->facts = page.facts;
  impl_->cursor = page.next_cursor;
  return Status::Ok();
}

Status Replica::SetPolicy(const Policy& policy) {
  const std::string text = PolicyToJson(policy);
  // Stored as text, read back at Open: check now that it reads back the same.
  auto again = ParsePolicy(text);
  if (!again.ok())
    return Status::Invalid("the policy does not round-trip: " + again.status().message());
  std::lock_guard<std::mutex> lock(impl_->mu);
  PINGMA_RETURN_IF_ERROR(impl_->PutMeta(kPolicy, text));
  impl_->policy = std::move(*again);
  return Status::Ok();
}

Result<SyncStats> Replica::Sync(RegistryClient& client, const std::string& station_id) {
  SyncStats stats;
  std::string cursor;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    cursor = impl_->cursor;
  }
  // Three stages overlap, a page apart: the next page is fetched (the registry's
  // work and the transfer) while this one is parsed and the one before it is
  // applied (checks and SQLite). Run one after the other they took twice as long.
  // `client` is used by one thread at a time (each fetch is waited for before the
  // next starts), as RegistryClient requires; each page is still applied with
  // its cursor in one transaction, in order. On an error the futures' destructors
  // wait for the stages still running.
  auto fetch = [&client, &station_id](std::string since) {
    return std::async(std::launch::async, [&client, &station_id, since = std::move(since)] {
      return client.Fleet(station_id, since);
    });
  };
  using Read = Result<std::unique_ptr<const ReplicaPage>>;
  auto read = [](FleetPage page) {
    return std::async(std::launch::async, [page = std::move(page)]() mutable {
      return ReadFleetPage(std::move(page));
    });
  };
  auto apply = [this, &stats](std::future<Read>& parsed) -> Status {
    PINGMA_ASSIGN_OR_RETURN(const auto page, parsed.get());
    PINGMA_RETURN_IF_ERROR(ApplyPage(*page));
    stats.pages += 1;
    stats.cylinders += static_cast<std::int64_t>(page->rows.size());
    return Status::Ok();
  };
  std::future<Result<FleetPage>> fetched = fetch(cursor);
  std::future<Read> parsed;  // the page before, on its way to be applied
  // A page is at most 5,000 cylinders; the cap only stops a feed that never ends.
  for (int guard = 0; guard < 1000000; ++guard) {
    PINGMA_ASSIGN_OR_RETURN(FleetPage page, fetched.get());
    const std::string next_cursor = page.next_cursor;
    const bool advanced = next_cursor != cursor;
    const bool last = !page.more;
    if (!last && advanced) fetched = fetch(next_cursor);
    auto parsing = read(std::move(page));
    if (parsed.valid()) PINGMA_RETURN_IF_ERROR(apply(parsed));
    parsed = std::move(parsing);
    cursor = next_cursor;
    if (last) break;
    if (!advanced) {
      PINGMA_RETURN_IF_ERROR(apply(parsed));
      return Status::Internal("the fleet feed's cursor did not advance: " + cursor);
    }
  }
  if (parsed.valid()) PINGMA_RETURN_IF_ERROR(apply(parsed));
  PINGMA_ASSIGN_OR_RETURN(auto policy, client.FetchPolicy());
  PINGMA_RETURN_IF_ERROR(SetPolicy(policy));
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    const std::string now = WallNow().ToString();
    PINGMA_RETURN_IF_ERROR(impl_->PutMeta(kLastFullSync, now));
    impl_->last_full_sync = now;
    impl_->synced = true;
  }
  stats.cursor = cursor;
  return stats;
}

Result<CheckAnswer> Replica::Decide(const CheckRequest& request, Instant now) {
  auto key = ParseScan(request.scan);
  if (!key.ok()) {
    return Status::Invalid("the scan is not a cylinder code: " + key.status().message());
  }
  // The same input checks as the registry's fill check, so that a request the
  // registry would refuse is refused offline too.
  FillCheckInput in;
  in.now = now;
  in.empty_gross_kg = request.empty_gross_kg;
  if (in.empty_gross_kg && !(*in.empty_gross_kg >= 0 && *in.empty_gross_kg < 1000)) {
    return Status::Invalid("empty_gross_kg must be from 0 to 1000");
  }
  for (const std::string& d : request.defects) {
    PINGMA_ASSIGN_OR_RETURN(auto defect, ParseDefect(d));
    in.defects.push_back(defect);
  }

  std::lock_guard<std::mutex> lock(impl_->mu);
  if (!impl_->policy || !impl_->facts) {
    return Status::Unavailable("the replica has not been synced yet: no policy or station facts");
  }
  const Policy& policy = *impl_->policy;
  const FleetFacts& facts = *impl_->facts;
  if (request.station_id != facts.station.id) {
    return Status::PermissionDenied("this replica is station " + facts.station.id + "'s, not " +
                                    request.station_id + "'s");
  }
  PINGMA_ASSIGN_OR_RETURN(in.cylinder, impl_->Resolve(*key));
  in.station = facts.station;
  if (auto op = facts.operators.find(request.operator_id); op != facts.operators.end()) {
    in.operator_facts = op->second;
  }
  in.custody = facts.custody;
  in.recalls = facts.recalls;
  if (in.cylinder) {
    impl_->get_sighting.Reset().Bind(1, in.cylinder->code);
    PINGMA_ASSIGN_OR_RETURN(auto row, impl_->get_sighting.Step());
    if (row) in.last_check = Sighting{facts.station.id, Instant{impl_->get_sighting.Int(0)}};
    impl_->get_sighting.Reset();
  }

  const FillDecision decision = DecideFill(policy, in);

  if (in.cylinder) {
    // As the registry does, only a check that found a cylinder is a sighting.
    impl_->put_sighting.Reset().Bind(1, in.cylinder->code).Bind(2, now.unix_ms);
    PINGMA_RETURN_IF_ERROR(impl_->put_sighting.Run());
    const std::int64_t window = static_cast<std::int64_t>(policy.clone_window_minutes) * 60000;
    impl_->prune_sightings.Reset().Bind(1, now.unix_ms - window);
    PINGMA_RETURN_IF_ERROR(impl_->prune_sightings.Run());
  }

  CheckAnswer answer;
  answer.offline = true;
  answer.allowed = decision.allowed();
  json codes = json::array();
  for (const Reason& r : decision.reasons) {
    answer.reasons.push_back({ToString(r.code), r.message});
    codes.push_back(ToString(r.code));
  }
  if (in.cylinder) {
    const Cylinder& c = *in.cylinder;
    answer.cylinder = CheckedCylinder{
        c.code, c.model, c.owner_company_id,
        decision.next_inspection_due ? decision.next_inspection_due->ToString() : "",
        ToString(c.state)};
  }
  answer.fill = decision.fill;
  // Offline nothing is flagged: the registry flags the cylinder at its next check.
  answer.flagged_for_scrap = false;
  // The `offline_decision` a fill made on this answer carries (POST /v1/fills): the
  // registry needs `decision`; the rest says what the station knew, and when.
  answer.json =
      Dump(json{{"decision", decision.allowed() ? "allow" : "block"},
                {"reasons", codes},
                {"decided_at", now.ToString()},
                {"replica_cursor", impl_->cursor},
                {"replica_synced_at",
                 impl_->last_full_sync.empty() ? json(nullptr) : json(impl_->last_full_sync)}});
  return answer;
}

Result<std::int64_t> Replica::Size() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->count.Reset();
  PINGMA_ASSIGN_OR_RETURN(auto row, impl_->count.Step());
  const std::int64_t n = row ? impl_->count.Int(0) : 0;
  impl_->count.Reset();
  return n;
}

// A sync completes only after the policy is stored, so `synced` implies a policy.
bool Replica::ready() const {
  return impl_->synced;
}

std::string Replica::synced_at() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->last_full_sync;
}

}  // namespace pingma::station
