// The registry's use cases behind one entry point, Handle(Request): routing,
// authentication, role checks, validation and the store. Nothing here knows about
// sockets or the HTTP library, so process-free tests can drive it directly.
//
// Thread-safety: Handle may be called from many threads at once; writes are
// serialised by the Store's writer thread.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cases/photo_queue.h"
#include "pingma/common/policy.h"
#include "access/principal.h"
#include "http/rate_limit.h"
#include "http/reply.h"
#include "store/store.h"
#include "access/tokens.h"

namespace pingma {
struct ScanKey;  // pingma/scanner/scan.h
}  // namespace pingma

namespace pingma::registry {

struct Request {
  std::string method;         ///< "GET", "POST", ...
  std::string target;         ///< path and query as received: "/v1/resolve?scan=..."
  std::string authorization;  ///< the Authorization header, or empty
  std::string body;
  std::string content_type = {};  ///< the Content-Type header, or empty
  std::string client = {};        ///< the peer's address, for the public form's rate limit
};

/// Body limits of API.md.
constexpr size_t kMaxBody = 1u << 20;
constexpr size_t kMaxBatchBody = 64u << 20;
/// A label photo sent to POST /v1/scan/image (the decoder's own file limit).
constexpr size_t kMaxImageBody = 20u << 20;
/// Every request without a token that may call the route it names: the public
/// report form (/c/{code}/report), the pages, and /v1/ calls without a valid
/// token, a role the route refuses or no route at all. A report's text and
/// contact (600 characters) take under 6 KiB percent-encoded.
constexpr size_t kMaxPublicBody = 8u << 10;

/// A stored cylinder with what the registry keeps beside the record.
struct CylinderRow {
  Cylinder cylinder;
  std::optional<double> water_capacity_l;
  std::string registration_state;
  std::optional<std::string> state_reason;
  std::optional<Instant> state_since;
  std::optional<Sighting> last_fill;
  std::int64_t rev = 0;
  std::vector<std::string> carriers;
};

/// What fill checks need about stations, operators, custody and recalls, which
/// change rarely. Touched only on the writer thread, inside jobs; every set-up
/// write clears it, and so does a failed commit.
struct FactsCache {
  std::unordered_map<std::string, std::optional<StationFacts>> stations;
  std::unordered_map<std::string, std::optional<OperatorFacts>> operators;
  std::unordered_map<std::string, std::vector<CustodyAgreement>> custody;  ///< by owner
  std::unordered_map<std::string, std::vector<Recall>> recalls;            ///< by manufacturer

  void Clear() {
    stations.clear();
    operators.clear();
    custody.clear();
    recalls.clear();
  }
};

class Service {
 public:
  Service(Store* store, Policy policy, const Clock* clock);

  /// How many cylinders fill checks keep in memory, by default.
  static constexpr size_t kMaxCachedCylinders = 1u << 18;
  /// Sets that limit; before the first request.
  void set_max_cached_cylinders(size_t n) { max_cached_cylinders_ = n; }

  /// Answers one request. `done` is called exactly once, possibly on another
  /// thread: for writes only after the data is committed and durable, for reads
  /// only once every commit they could have seen is (Store::WhenDurable). The
  /// request is taken by value so that a use case may keep its body (a photo
  /// waiting for a decoder) without a copy.
  void Handle(Request request, Store::Done done);

  /// Issues a token (by the command line: actor admin "cli"); only the SHA-256 of
  /// its secret is stored.
  Result<IssuedToken> IssueToken(const TokenTerms& terms);
  /// IssueToken for a role and subject, without an end; returns the bearer token.
  Result<std::string> AddToken(Role role, const std::string& subject);
  /// Writes the tokens' last uses not yet written (also done when the store closes).
  void FlushTokenUse() { tokens_.FlushUse(); }

  const Policy& policy() const { return policy_; }

  /// The key of the customers' phone and ID hashes (secrets.h), before the first
  /// request; without one, customers cannot be registered or found by phone.
  void set_customer_hash_key(std::string key) { customer_hash_key_ = std::move(key); }

  /// The most body bytes a request may send, from its method, target and
  /// Authorization header alone, before its body is read: the route's `max_body`
  /// when the token is valid and its role may call the route, kMaxPublicBody
  /// otherwise. The HTTP edge refuses a larger body with 413 before reading it.
  /// A bad token counts against `client`, the peer's address, as in Handle. Any
  /// thread.
  size_t BodyLimit(std::string_view method, std::string_view target, std::string_view authorization,
                   const std::string& client);

  /// The complaint line the public page shows; before the first request.
  void set_hotline(std::string hotline) { hotline_ = std::move(hotline); }
  /// Where the labels' QR codes point ("https://host", no trailing slash): the
  /// EPCIS export names a cylinder without a GRAI by {public_base}/c/{code}.
  void set_public_base(std::string base) { public_base_ = std::move(base); }

  /// What the last full walk of the hash chain found, for GET /v1/audit/head:
  /// {"state": "running" | "ok" | "broken" | "error", ...}. Any thread.
  void SetChainCheck(json check) {
    std::lock_guard<std::mutex> lock(audit_mu_);
    chain_check_ = std::move(check);
  }

  /// Public reports accepted per client address within the window (the public
  /// page's form); tests shorten nothing, they send six.
  static constexpr size_t kReportsPerWindow = 5;
  static constexpr std::int64_t kReportWindowMs = 10 * 60 * 1000;

  /// POST /v1/scan/image: label photos read per token within a minute, photos
  /// waiting for a decoder beside those being decoded, and the seconds a photo
  /// refused for a full queue is told to wait (about one decode of a large one).
  static constexpr size_t kPhotosPerWindow = 30;
  static constexpr std::int64_t kPhotoWindowMs = 60 * 1000;
  static constexpr size_t kPhotosWaiting = 4;
  static constexpr int kPhotoRetryAfterS = 2;
  /// Decoding threads: a quarter of the cores, at least one.
  static size_t PhotoWorkers();

 private:
  struct Call {
    Principal who;
    std::vector<std::string> params;  ///< the {placeholders} of the route, decoded
    std::map<std::string, std::string> query;
    Request* request;  ///< Handle's own; a use case may move its body out
  };
  using Handler = void (Service::*)(const Call&, Store::Done);
  struct Route {
    const char* method;
    const char* pattern;  ///< "/v1/cylinders/{}/history"
    std::vector<Role> roles;
    Handler handler;
    size_t max_body;
  };

  static std::vector<Route> Routes();
  /// The route for `method` on a path split at '/', with its {placeholders}
  /// decoded into `*params`; nullptr when none, with the methods the path takes
  /// in `*allowed`.
  const Route* FindRoute(std::string_view method, const std::vector<std::string_view>& parts,
                         std::vector<std::string>* params, std::vector<std::string>* allowed) const;

  // Set-up (service.cpp)
  void PostCompany(const Call& call, Store::Done done);
  void PostLicense(const Call& call, Store::Done done);
  void PostStation(const Call& call, Store::Done done);
  void GetStation(const Call& call, Store::Done done);
  void LockStation(const Call& call, Store::Done done);
  void UnlockStation(const Call& call, Store::Done done);
  void PostOperator(const Call& call, Store::Done done);
  void PostCustody(const Call& call, Store::Done done);
  void PostRecall(const Call& call, Store::Done done);
  void GetPolicy(const Call& call, Store::Done done);
  // Tokens (tokens.cpp)
  void GetTokens(const Call& call, Store::Done done);
  void PostToken(const Call& call, Store::Done done);
  void DeleteToken(const Call& call, Store::Done done);
  // Cylinders (cylinders.cpp)
  void PostCylinder(const Call& call, Store::Done done);
  void PostCylinderBatch(const Call& call, Store::Done done);
  void GetCylinder(const Call& call, Store::Done done);
  void GetHistory(const Call& call, Store::Done done);
  void GetResolve(const Call& call, Store::Done done);
  void PostCarrier(const Call& call, Store::Done done);
  // Inspection and scrapping (cylinders.cpp)
  void PostInspection(const Call& call, Store::Done done);
  void PostAssessment(const Call& call, Store::Done done);
  void GetScrapQueue(const Call& call, Store::Done done);
  void PostScrap(const Call& call, Store::Done done);
  // Audit (service.cpp)
  void GetAuditHead(const Call& call, Store::Done done);
  // The public page, without a token (public_page.cpp)
  void HandlePublic(const Request& request, const std::vector<std::string_view>& parts,
                    Store::Done done);
  void GetPublicPage(const Request& request, const std::string& raw_code, Store::Done done);
  void PostPublicReport(const Request& request, const std::string& raw_code, Store::Done done);
  /// Counts a report from `client` (under its ReportClientKey: an IPv6 /64 is one
  /// client) if the window has room; false when it has not, with the seconds until
  /// it has.
  bool TakeReportSlot(const std::string& client, std::int64_t* retry_after_s);
  // Filling (filling.cpp)
  void PostFillCheck(const Call& call, Store::Done done);
  void PostFill(const Call& call, Store::Done done);
  void PostOfflineFillCheck(const Call& call, Store::Done done);
  void GetFleet(const Call& call, Store::Done done);
  // Delivery and handover (delivery.cpp)
  void PostVehicle(const Call& call, Store::Done done);
  void PostCourier(const Call& call, Store::Done done);
  void PostCustomer(const Call& call, Store::Done done);
  void PostHandover(const Call& call, Store::Done done);
  void GetHazards(const Call& call, Store::Done done);
  void CloseHazard(const Call& call, Store::Done done);
  // The regulator's reads: statistics, CSV ledgers, foresight and lists
  // (regulator.cpp)
  void GetFillCheckStats(const Call& call, Store::Done done);
  void ExportFillsCsv(const Call& call, Store::Done done);
  void ExportRefusedChecksCsv(const Call& call, Store::Done done);
  void ExportHazardsCsv(const Call& call, Store::Done done);
  void GetInspectionsDue(const Call& call, Store::Done done);
  void GetUnseen(const Call& call, Store::Done done);
  void ListCompanies(const Call& call, Store::Done done);
  void ListStations(const Call& call, Store::Done done);
  void ListVehicles(const Call& call, Store::Done done);
  void ListCouriers(const Call& call, Store::Done done);
  void ListCustomers(const Call& call, Store::Done done);
  void ListPublicReports(const Call& call, Store::Done done);
  // Platform interop: the events as GS1 EPCIS 2.0 JSON-LD (epcis.cpp)
  void ExportEpcis(const Call& call, Store::Done done);
  // The courier's and the regulator's pages, and the server-side label reader (web.cpp)
  void HandleWeb(const Request& request, const std::vector<std::string_view>& parts,
                 Store::Done done);
  void PostScanImage(const Call& call, Store::Done done);
  /// Decodes a photo and answers (on a PhotoQueue worker).
  void ReadPhoto(const std::string& photo, Store::Done done);
  // Personal data kept outside the log (personal_data.cpp)
  void ErasePersonalData(const Call& call, Store::Done done);

  /// Runs a write job; the reply reaches `done` after commit.
  void Write(Store::Done done, Store::Job job) { store_->Submit(std::move(job), std::move(done)); }
  /// Runs a set-up write job, which invalidates the facts cache.
  void WriteSetup(Store::Done done, Store::Job job);
  /// The cylinder of a fill check, from the cache or the store (writer thread only).
  Result<const std::optional<CylinderRow>*> CachedCylinder(Conn& conn, const std::string& code);
  /// Keeps the writer's caches true after an event or a rollback.
  void OnAppend(const Event& event);
  void OnRollback(bool whole_batch);
  /// Another registry on the same database wrote since this one's last batch:
  /// the caches go, and its fill checks since `since_seq` become sightings.
  void OnForeignAppends(Conn& conn, std::int64_t since_seq);
  /// The sighting a fill_check event's body records, if it found a cylinder; `at`
  /// is the event's, the sighting's that of a check decided offline is when the
  /// station decided. `*offline` (if given) says whether it was.
  static std::optional<Sighting> SightingOf(std::string_view body, std::int64_t at,
                                            bool* offline = nullptr);
  /// What a station decided on its replica (an offline fill's decision, an
  /// offline check), for the registry to decide again.
  struct ReplicaCheck {
    std::string station_id;
    std::string operator_id;
    const Cylinder* cylinder = nullptr;  ///< nullptr: the code is not registered
    Instant at;                          ///< when the station decided
    std::optional<double> empty_gross_kg = {};
    std::vector<Defect> defects = {};
    std::optional<Sighting> last_check = {};  ///< the sighting clone detection compares with
  };
  /// The registry's own decision on it: DecideFill on what the registry knows now,
  /// evaluated at `check.at` (the policy's "today" is that instant's day in the
  /// policy's zone). `*company_id` (if given) gets the station's company. Writer
  /// thread only (the facts cache).
  Result<FillDecision> DecideAsOf(Conn& conn, const ReplicaCheck& check,
                                  std::string* company_id = nullptr);
  /// The facts of a fill check, from the cache or the store (writer thread only).
  Result<FillCheckInput> GatherFacts(Conn& conn, const std::string& station_id,
                                     const std::string& operator_id, const Cylinder* cylinder);
  /// Reads the clone-detection sightings of the last window back from the log.
  Status LoadSightings();
  /// The same, on the writer's connection: the sightings of the window before
  /// `now`, and no others.
  Status ReadSightings(Conn& conn, Instant now);
  /// Remembers a check for clone detection, dropping sightings past the window.
  void RecordSighting(const std::string& code, Sighting sighting);
  /// The same for a check decided offline, which may arrive after later checks of
  /// its code: kept only when it is the latest.
  void RecordOfflineSighting(const std::string& code, Sighting sighting);
  /// Runs a read on a pooled connection and answers at once.
  void ReadReply(Store::Done done, const std::function<Reply(Conn&)>& fn);

  Store* store_;
  Policy policy_;
  const Clock* clock_;
  std::vector<Route> routes_;
  std::vector<std::vector<std::string>> route_segments_;  ///< each pattern split at '/'
  FactsCache facts_;                                      ///< writer thread only
  /// Cylinders as fill checks last read them, by code; nullopt for a code that is
  /// not registered (writer thread only). Any event about a code other than a
  /// fill check drops its entry; a set-up event or a rollback drops them all.
  std::unordered_map<std::string, std::optional<CylinderRow>> cylinders_;
  /// Past this many entries, further cylinders are read but not kept.
  size_t max_cached_cylinders_ = kMaxCachedCylinders;
  std::optional<CylinderRow> uncached_cylinder_;  ///< see CachedCylinder
  /// The latest check of each code within the clone window (writer thread only);
  /// rebuilt from the log at start-up.
  std::unordered_map<std::string, Sighting> sightings_;
  /// A batch failed to commit and its sightings went with all others: the next
  /// OnForeignAppends reads the window again (writer thread only).
  bool sightings_lost_ = false;
  static constexpr size_t kMinSightingsPruneAt = 65536;
  size_t sightings_prune_at_ = kMinSightingsPruneAt;  ///< sweep when the map reaches this

  std::string customer_hash_key_;  ///< empty: none given (secrets.h)
  std::string hotline_ = "12315";  ///< 全国12315 market-regulation complaint line
  std::string public_base_ = "https://pingma.example";  ///< pingma-label's default --base

  std::mutex audit_mu_;
  json chain_check_ = {{"state", "not_run"}};  ///< under audit_mu_

  /// Reports accepted per client (ReportClientKey) in the last window.
  SlidingWindowLimit reports_{kReportsPerWindow, kReportWindowMs};
  /// Photos taken per token in the last window.
  SlidingWindowLimit photos_per_token_{kPhotosPerWindow, kPhotoWindowMs};

  BearerTokens tokens_;  ///< who each request speaks for

  /// Last, so that it goes first: its workers use everything above.
  PhotoQueue photo_queue_{PhotoWorkers(), kPhotosWaiting};
};

// Store access shared by the use cases (queries.cpp). All take an open
// connection (the writer's inside a job, or a reader's).
Result<std::optional<CylinderRow>> LoadCylinder(Conn& conn, const std::string& code,
                                                bool with_carriers = true);
/// The record in the current row of a statement that selects the cylinders table's
/// columns in LoadCylinder's order (code, owner_company_id, ..., rev: 25 columns),
/// without its carriers.
CylinderRow ReadCylinderRow(const sql::Statement& s);
/// Resolves any scan form to a registered code; nullopt when nothing matches.
/// With `trust_codes`, a scan that is a plain code is returned as it is, unlooked
/// up (for callers that load the cylinder next anyway).
Result<std::optional<std::string>> ResolveScan(Conn& conn, std::string_view scan,
                                               std::string* key_text, bool trust_codes = false);
/// ResolveScan of a scan already parsed.
Result<std::optional<std::string>> ResolveKey(Conn& conn, const ScanKey& key, std::string* key_text,
                                              bool trust_codes = false);
Result<std::optional<StationFacts>> LoadStation(Conn& conn, const std::string& id);
Result<std::optional<OperatorFacts>> LoadOperator(Conn& conn, const std::string& id);
Result<std::vector<CustodyAgreement>> LoadCustody(Conn& conn, const std::string& owner);
Result<std::vector<Recall>> LoadRecalls(Conn& conn, const std::string& manufacturer);
Result<bool> Exists(Conn& conn, const char* table, const std::string& id);
/// The record as the API shows it, with `fillable` and `reasons` when a decision
/// is given.
json CylinderJson(const CylinderRow& row, const Policy& policy);

// Real-name data (实名购气, delivery.cpp): what a customer's phone and ID number
// must be, how they are shown, and their keyed hash (the key: secrets.h).
/// A mainland mobile number: 11 digits starting 13..19.
Status CheckPhone(const std::string& phone);
/// A resident ID number (GB 11643-1999) with its check character; upper-cases 'x'.
Status CheckIdNumber(std::string* id);
std::string MaskPhone(const std::string& phone);  ///< 138****5678
std::string MaskIdNumber(const std::string& id);  ///< 1101**********123X
/// HMAC-SHA-256 of "kind:value" under `key`: the kind keeps a phone from ever
/// matching an ID number.
std::string KeyedHash(const std::string& key, std::string_view kind, std::string_view value);

// Personal data kept outside the hash-chained log (personal_data.cpp): a public
// reporter's contact, a handover's place. The log keeps {"personal_data": id,
// "salted_sha256": ...} under FIELD_ref; the value is deleted when its retention
// ends (SweepPersonalData) or a regulator erases it, and the chain still verifies.
/// Stores `value` of cylinder `code`; the reference the log keeps. `field` is
/// "contact" (kept contact_retention_days) or "location" (position_retention_days).
Result<json> KeepPersonalData(WriteTx& tx, const std::string& code, std::string_view field,
                              const json& value);
/// The value a reference names; nullopt once erased or past its retention.
Result<std::optional<json>> LookupPersonalData(Conn& conn, const json& ref);
/// Replaces `body`'s FIELD_ref by FIELD (the value, or null with FIELD_erased: true
/// once it is gone) and FIELD_id (what a regulator erases it by).
Status ShowPersonalData(Conn& conn, json* body, const char* field);
/// Deletes what is past its field's retention in `policy` at `now`; how many.
Result<std::int64_t> SweepPersonalData(Conn& conn, Instant now, const Policy& policy);

/// Whether a spreadsheet opening a CSV file would read a text cell that starts
/// like `field` as a formula (or skip to one): = + - @ | % and their fullwidth and
/// small forms, and any leading space, tab or line break (regulator.cpp).
bool ReadAsFormula(std::string_view field);

/// The key the public form's rate limit counts a client address under: an IPv4
/// address as it is (an IPv4-mapped IPv6 address as its IPv4), an IPv6 address as
/// its /64 ("2001:db8:1:2::/64"), since one home or phone gets a whole /64 and
/// can send from any address in it; anything else as it is.
std::string ReportClientKey(std::string_view address);

/// Percent-decoding of a path segment or form value ('+' as a space when asked).
std::string DecodePercent(std::string_view in, bool plus_is_space);
/// The fields of a query string or an application/x-www-form-urlencoded body.
std::map<std::string, std::string> ParseFormFields(std::string_view text);

/// Moves an active cylinder to scrap_pending and records why.
Reply FlagCylinderForScrap(WriteTx& tx, const Principal& who, const std::string& code,
                           ReasonCode reason);
/// May `who` see the cylinders of company `owner`?
Status CanSeeOwner(Conn& conn, const Principal& who, const std::string& owner);

}  // namespace pingma::registry
