// The handover decision (送气随瓶安检): whether a courier may hand a cylinder to a
// customer at the door, or take one back (DOMAIN.md "Delivery and handover").
//
// DecideHandover is a pure function of the facts the registry gathers from its
// store, like DecideFill beside it: no store, no clock. Plain values, safe to copy
// between threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pingma/common/domain.h"
#include "pingma/common/policy.h"

namespace pingma {

enum class HandoverDirection {
  kDeliver,  ///< a full cylinder to the customer
  kCollect,  ///< an empty one back from the customer
};

/// The cylinder's latest recorded fill.
struct LatestFill {
  std::int64_t seq = 0;  ///< its place in the log
  std::string station_id;
  Instant ended;
  std::string result;  ///< "ok", "overfill", "underfill", "interrupted"
  /// The post-fill checks as recorded, item and verdict; only "pass" passes.
  std::vector<std::pair<std::string, std::string>> post_checks;
  std::optional<StationFacts> station;  ///< nullopt: the station is not registered
};

/// The courier making the handover, bound to one vehicle (人车对应).
struct CourierFacts {
  std::string id;
  std::string company_id;
  std::string vehicle_id;
  std::string vehicle_plate;
  /// Its fixed delivery range: district names, or ids of areas drawn on the map
  /// (DOMAIN.md "Where deliveries go").
  std::vector<std::string> zones;
};

/// The real-name customer (实名购气) and the site a cylinder goes to.
struct CustomerFacts {
  std::string id;
  std::string district;
  bool restaurant = false;  ///< else a household
  bool basement = false;
  bool semi_basement = false;
  bool cylinder_room = false;  ///< a restaurant's dedicated cylinder room (气瓶间)
  bool outdoor = false;
  /// Its location lies within an area its courier's zones name (the registry
  /// looks; false without a location).
  bool in_zone_area = false;
};

/// Everything a handover decision depends on. A delivery reads the cylinder's
/// record, its fill, the courier, the vehicle and the site; a collection reads only
/// who holds the cylinder.
struct HandoverFacts {
  HandoverDirection direction = HandoverDirection::kDeliver;
  std::string scanned;               ///< the scan as read, named when it is no cylinder
  std::optional<Cylinder> cylinder;  ///< nullopt: the scan resolves to nothing
  CourierFacts courier;
  std::string vehicle;  ///< the vehicle given with the handover: its id or its plate
  CustomerFacts customer;
  std::vector<Recall> recalls;  ///< of the cylinder's manufacturer
  std::optional<LatestFill> latest_fill;
  /// The place in the log of the cylinder's latest allowed delivery, if any.
  std::optional<std::int64_t> last_delivery_seq;
  /// The models of the cylinders at the customer now, leaving out this one.
  std::vector<std::string> on_site_models;
  /// The customer holding the cylinder since its last allowed handover; nullopt when
  /// none does (never delivered, or collected back).
  std::optional<std::string> held_by_customer;
  Instant now;
};

struct HandoverDecision {
  /// Every failing rule: for a delivery, the cylinder's own (DecideCylinder, in
  /// ReasonCode order), then the fill's, the courier's and the site's, in
  /// ReasonCode order too.
  std::vector<Reason> reasons;

  bool allowed() const { return reasons.empty(); }
};

HandoverDecision DecideHandover(const Policy& policy, const HandoverFacts& facts);

}  // namespace pingma
