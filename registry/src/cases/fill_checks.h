// Filling: the fill check a station makes before the scale opens (POST
// /v1/fill-checks), checks decided offline on a station's replica and sent once
// the registry answers (POST /v1/fill-checks/offline), and the fill records
// uploaded after (POST /v1/fills). The decision itself is DecideFill (common/);
// this room gathers its facts, keeps the clone watch (the latest sighting of each
// code within the clone window) and the writer's caches true to the log.
//
// Writer thread only, apart from the handlers' parsing: the caches and the
// sightings are touched inside jobs and the store's hooks.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cases/queries.h"
#include "cases/use_case.h"

namespace pingma::registry {

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

class FillChecks final : public UseCase {
 public:
  /// Takes the store's hooks (a rollback, an append, another registry's appends)
  /// and reads the clone window's sightings back from the log.
  explicit FillChecks(const Context& context);

  /// How many cylinders fill checks keep in memory, by default.
  static constexpr size_t kMaxCachedCylinders = 1u << 18;
  /// Sets that limit; before the first request.
  void set_max_cached_cylinders(size_t n) { max_cached_cylinders_ = n; }

  void PostFillCheck(const Call& call, Store::Done done);
  void PostFill(const Call& call, Store::Done done);
  void PostOfflineFillCheck(const Call& call, Store::Done done);

  /// Set-up changed what checks know of stations, operators, custody or recalls
  /// (writer thread, inside the set-up job).
  void ForgetFacts() { facts_.Clear(); }

 private:
  /// The cylinder of a fill check, from the cache or the store (writer thread only).
  Result<const std::optional<CylinderRow>*> CachedCylinder(Conn& conn, const std::string& code);
  /// Keeps the writer's caches true after an event or a rollback.
  void OnAppend(const Event& event);
  void OnRollback(bool whole_batch);
  /// Drops every cached cylinder and fact: they are read again as needed.
  void ForgetCached() {
    cylinders_.clear();
    facts_.Clear();
  }
  /// Another registry on the same database wrote since this one's last batch:
  /// its events in `window` are seen as this registry's own would be (the
  /// cached rows they change go, its fill checks become sightings).
  void OnForeignAppends(Conn& conn, const ForeignWindow& window);
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

  FactsCache facts_;  ///< writer thread only
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
};

}  // namespace pingma::registry
