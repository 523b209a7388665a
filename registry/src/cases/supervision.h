// Delivery supervision (定位监管, supervision.cpp): the companies' delivery areas
// on the map, the vehicles' positions (from the courier's page and from JT/T 808
// terminals), and the alerts they raise — zone_exit as positions arrive,
// handover_away and no_position as handovers are recorded (DOMAIN.md "Where
// deliveries go"). Positions and alerts are the couriers' personal data: outside
// the hash-chained log, deleted after position_retention_days.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cases/use_case.h"
#include "geo/area_index.h"
#include "pingma/common/handover.h"

namespace pingma::registry {

/// One position of one vehicle, as it arrives.
struct PositionIn {
  /// Once per vehicle: a position sent again is a duplicate. Empty for a terminal's
  /// (JT/T 808), which is once per vehicle and time.
  std::string event_id;
  Instant at;  ///< when it was taken (the position's own time)
  double lat = 0;
  double lon = 0;
  std::optional<double> speed_kmh;
  std::optional<int> heading;
  std::optional<double> accuracy_m;
};

/// What storing a batch did.
struct PositionsStored {
  std::int64_t accepted = 0;
  std::int64_t duplicates = 0;
};

/// Where a handover was recorded, for the alerts it may raise.
struct HandoverPlace {
  std::string event_id;  ///< the handover's
  std::string courier_id;
  std::string company_id;
  std::string vehicle_id;  ///< the courier's own vehicle
  std::string customer_id;
  std::optional<std::pair<double, double>> location;  ///< the handover's {lat, lon}
  Instant at;
};

/// The delivery areas as one registry last read them: the prepared index and each
/// area's company.
struct LoadedAreas {
  std::shared_ptr<const geo::AreaIndex> index;
  std::unordered_map<std::string, std::string> company;  ///< area id → company id
};

class Supervision final : public UseCase {
 public:
  explicit Supervision(const Context& context) : UseCase(context) {}

  void PutArea(const Call& call, Store::Done done);
  void GetAreas(const Call& call, Store::Done done);
  void PostPositions(const Call& call, Store::Done done);
  void GetVehiclePositions(const Call& call, Store::Done done);
  void GetLatestPositions(const Call& call, Store::Done done);
  void GetAlerts(const Call& call, Store::Done done);

  /// Stores positions of `vehicle_id` (sorted by time here) in the writer's job and
  /// raises the zone_exit alerts they complete. `source`: "courier" or "jt808".
  Result<PositionsStored> StorePositions(WriteTx& tx, const std::string& vehicle_id,
                                         std::vector<PositionIn> positions,
                                         const std::string& source);
  /// Whether {lat, lon} lies within an area that `courier`'s zones name.
  Result<bool> InZoneArea(Conn& conn, const CourierFacts& courier, double lat, double lon);
  /// The alerts a handover raises (stored, and as its answer shows them).
  Result<json> HandoverAlerts(WriteTx& tx, const HandoverPlace& place);

 private:
  /// The areas as the store holds them now: reloaded when another write (here or
  /// on another registry) has changed them since they were last read.
  Result<std::shared_ptr<const LoadedAreas>> Areas(Conn& conn);

  std::mutex mu_;
  std::shared_ptr<const LoadedAreas> areas_;  ///< guarded by mu_
  std::string areas_version_;                 ///< guarded by mu_; meta's areas_version
};

/// Whether a position taken `at` may be stored at `now`: at most 5 minutes ahead of
/// the registry's clock (a phone's clock runs ahead; a time that never came is not
/// stored), and within position_retention_days.
Status CheckPositionTime(Instant at, Instant now, const Policy& policy);

/// Where a sweep of the positions is: vehicles by id, then the rest.
struct SweepCursor {
  std::string after;  ///< the last vehicle swept; empty before the first
  bool done = false;
};
/// Vehicles a step of the sweep takes: a city's hour of positions is 1.8 million
/// rows, deleted a few tens of thousands a transaction, not all in one.
inline constexpr size_t kSweepVehicles = 100;
/// One step of deleting positions and alerts past position_retention_days at `now`:
/// the positions of the kSweepVehicles vehicles after `cursor`, and once none is
/// left the latest positions and the alerts (then `cursor->done`). How many rows.
Result<std::int64_t> SweepPositions(Conn& conn, Instant now, const Policy& policy,
                                    SweepCursor* cursor);

/// A JT/T 808 terminal's phone number as the registry keys it: its digits without
/// leading zeros ("013800000001" and "13800000001" are one terminal). Invalid
/// unless 1 to 20 digits.
Result<std::string> NormalTerminalPhone(std::string_view phone);

}  // namespace pingma::registry
