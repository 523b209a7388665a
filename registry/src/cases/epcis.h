// Platform interop: the events as GS1 EPCIS 2.0 JSON-LD (GET /v1/export/epcis),
// paged by the log's sequence.
#pragma once

#include "cases/use_case.h"

namespace pingma::registry {

class EpcisExport final : public UseCase {
 public:
  using UseCase::UseCase;

  void ExportEpcis(const Call& call, Store::Done done);
};

}  // namespace pingma::registry
