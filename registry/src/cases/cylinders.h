// Cylinders: registration (one or a batch), a record and its history, resolving
// any scan form to a code, and the carriers (RFID tags, labels) bound to one.
#pragma once

#include "cases/use_case.h"

namespace pingma::registry {

class Cylinders final : public UseCase {
 public:
  using UseCase::UseCase;

  void PostCylinder(const Call& call, Store::Done done);
  void PostCylinderBatch(const Call& call, Store::Done done);
  void GetCylinder(const Call& call, Store::Done done);
  void GetHistory(const Call& call, Store::Done done);
  void GetResolve(const Call& call, Store::Done done);
  void PostCarrier(const Call& call, Store::Done done);
};

}  // namespace pingma::registry
