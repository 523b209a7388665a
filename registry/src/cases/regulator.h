// The regulator's reads: fill-check statistics, the CSV ledgers (fills, refused
// checks, hazards), foresight (inspections due, cylinders unseen), the lists of
// companies, stations, vehicles, couriers and customers, and the public's
// reports. A company sees its own; a courier its company's customers.
#pragma once

#include <string_view>

#include "cases/use_case.h"

namespace pingma::registry {

class RegulatorReads final : public UseCase {
 public:
  using UseCase::UseCase;

  void GetFillCheckStats(const Call& call, Store::Done done);
  void ExportFillsCsv(const Call& call, Store::Done done);
  void ExportRefusedChecksCsv(const Call& call, Store::Done done);
  void ExportHazardsCsv(const Call& call, Store::Done done);
  void GetInspectionsDue(const Call& call, Store::Done done);
  void GetUnseen(const Call& call, Store::Done done);
  void ListCompanies(const Call& call, Store::Done done);
  void ListStations(const Call& call, Store::Done done);
  void ListVehicles(const Call& call, Store::Done done);
  void ListCouriers(const Call& call, Store::Done done);
  void ListCustomers(const Call& call, Store::Done done);
  void ListPublicReports(const Call& call, Store::Done done);
};

/// Whether a spreadsheet opening a CSV file would read a text cell that starts
/// like `field` as a formula (or skip to one): = + - @ | % and their fullwidth and
/// small forms, and any leading space, tab or line break.
bool ReadAsFormula(std::string_view field);

}  // namespace pingma::registry
