// The fleet feed: the cylinders a station may fill, paged and incremental, for
// the station's offline replica (GET /v1/stations/{id}/fleet).
#pragma once

#include <string>

#include "cases/queries.h"
#include "cases/use_case.h"

namespace pingma::registry {

class FleetFeed final : public UseCase {
 public:
  using UseCase::UseCase;

  void GetFleet(const Call& call, Store::Done done);
};

/// Appends CylinderJson(row, policy).dump() to `*out`, written directly: a fleet
/// page holds thousands, and building each as a json tree only to print it cost
/// the feed most of its time. The same text, key for key (tested).
void AppendFleetCylinder(std::string* out, const CylinderRow& row, const Policy& policy);

}  // namespace pingma::registry
