// The inspector's work: periodic inspections, assessments of cylinders past their
// service life, the scrap queue and the scrapping that ends a cylinder's life.
#pragma once

#include "cases/use_case.h"

namespace pingma::registry {

class Inspections final : public UseCase {
 public:
  using UseCase::UseCase;

  void PostInspection(const Call& call, Store::Done done);
  void PostAssessment(const Call& call, Store::Done done);
  void GetScrapQueue(const Call& call, Store::Done done);
  void PostScrap(const Call& call, Store::Done done);
};

}  // namespace pingma::registry
