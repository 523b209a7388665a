// The station's offline replica of its company's fleet (SQLite under data_dir) and
// the offline fill decision made on it with the same policy engine as the registry.
//
// Kept in step with GET /v1/stations/{id}/fleet (paged by the cursor) and
// GET /v1/policy. Thread-safe: one connection behind a mutex; Decide reads, Sync
// writes in one transaction per page.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

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

/// Parses a page that Fleet read the cursor of: fills `doc`, and checks that it
/// gives the same next_cursor (a page that says two things is refused).
Status ParseFleetPage(FleetPage* page);

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

  /// Applies one fleet page (what Sync does per page), as fetched.
  Status ApplyPage(const FleetPage& page);
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

 private:
  struct Impl;
  explicit Replica(std::unique_ptr<Impl> impl);
  /// ApplyPage of a page parsed already, with its text (its cylinders are stored
  /// as that text gives them).
  Status ApplyParsed(const nlohmann::json& page, std::string_view text);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pingma::station
