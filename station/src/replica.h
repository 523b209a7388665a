// The station's offline replica of its company's fleet (SQLite under data_dir) and
// the offline fill decision made on it with the same policy engine as the registry.
//
// Kept in step with GET /v1/stations/{id}/fleet (paged by the cursor) and
// GET /v1/policy. Thread-safe: one connection behind a mutex; Decide reads, Sync
// writes in one transaction per page.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cylinder_json.h"
#include "json_doc.h"
#include "pingma/common/domain.h"
#include "pingma/common/policy.h"
#include "pingma/common/status.h"
#include "registry_client.h"

namespace pingma::station {

struct SyncStats {
  std::int64_t pages = 0;
  std::int64_t cylinders = 0;  ///< records received in this sync
  std::string cursor;          ///< where the next sync starts
};

/// What the policy needs besides the cylinder, as the latest fleet page gave it.
struct FleetFacts {
  StationFacts station;
  std::map<std::string, OperatorFacts, std::less<>> operators;
  std::vector<CustodyAgreement> custody;
  std::vector<Recall> recalls;
};

/// A fleet page read and checked in full, ready to be stored: what Sync's middle
/// stage makes of one page while the next is fetched and the one before stored.
/// Holds handles into its page, so it stays where it was made.
struct ReplicaPage {
  struct Row {
    FleetCylinder cylinder;
    JsonValue record;  ///< the object as received: what the replica stores
  };
  FleetPage page;
  std::string station_id, company_id, next_cursor;
  FleetFacts facts;
  /// The station, operators, custody and recalls as the page gives them, in the
  /// order of kFactKeys; "null" where a page lacks one.
  std::string_view fact_texts[4];
  std::vector<Row> rows;

  ReplicaPage() = default;
  ReplicaPage(const ReplicaPage&) = delete;
  ReplicaPage& operator=(const ReplicaPage&) = delete;
};

/// Reads every cylinder and fact of `page`. Anything missing, of the wrong type or
/// that does not parse is kMalformed or kInvalid, named; a bad page is refused
/// whole, before anything is stored.
Result<std::unique_ptr<const ReplicaPage>> ReadFleetPage(FleetPage page);

class Replica {
 public:
  static Result<std::unique_ptr<Replica>> Open(const std::string& path);
  ~Replica();

  /// Pulls every page since the stored cursor (all of it on a new replica) and the
  /// policy. Each page is stored in its own transaction with the cursor after it,
  /// so an interrupted sync resumes where it stopped. The next page is fetched on a
  /// second thread while one is applied: `client` is used from that thread (never
  /// from two at once) and must not be used elsewhere until Sync returns.
  Result<SyncStats> Sync(RegistryClient& client, const std::string& station_id);

  /// Stores one page read by ReadFleetPage, with its cursor, in one transaction.
  Status ApplyPage(const ReplicaPage& page);
  /// ReadFleetPage, then ApplyPage: what Sync does per page, as fetched.
  Status ApplyPage(FleetPage page);
  /// Applies one fleet page's JSON text (tests feed pages).
  Status ApplyPage(const std::string& page_json);
  Status SetPolicy(const Policy& policy);

  /// The offline decision: the scan resolved on the replica (code, URL, GRAI, EPC,
  /// UID through the carriers), then DecideFill with the replica's station,
  /// operator, custody and recall facts and this station's own last sighting.
  /// An unknown code is always blocked (UNKNOWN_CODE). The answer is marked
  /// offline, and its `json` is the `offline_decision` the fill upload carries.
  Result<CheckAnswer> Decide(const CheckRequest& request, Instant now);

  /// Cylinders held, and whether a full sync has ever completed.
  Result<std::int64_t> Size();
  bool ready() const;
  /// When the last full sync completed (RFC 3339), "" if none ever did.
  std::string synced_at() const;

 private:
  struct Impl;
  explicit Replica(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pingma::station
