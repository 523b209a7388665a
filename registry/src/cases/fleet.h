// The fleet feed: the cylinders a station may fill, paged and incremental, for
// the station's offline replica (GET /v1/stations/{id}/fleet).
#pragma once

#include "cases/use_case.h"

namespace pingma::registry {

class FleetFeed final : public UseCase {
 public:
  using UseCase::UseCase;

  void GetFleet(const Call& call, Store::Done done);
};

}  // namespace pingma::registry
