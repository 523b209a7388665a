// The regulator's reads: fill-check statistics, CSV ledgers, foresight queries
// and the lists behind the console.
#include "service.h"

namespace pingma::registry {
namespace {
Reply NotYet() {
  return ErrorReply(Status::Unavailable("not built yet"));
}
}  // namespace

void Service::GetFillCheckStats(const Call&, Store::Done done) {
  done(NotYet());
}
void Service::ExportFillsCsv(const Call&, Store::Done done) {
  done(NotYet());
}
void Service::ExportRefusedChecksCsv(const Call&, Store::Done done) {
  done(NotYet());
}
void Service::ExportHazardsCsv(const Call&, Store::Done done) {
  done(NotYet());
}
void Service::GetInspectionsDue(const Call&, Store::Done done) {
  done(NotYet());
}
void Service::GetUnseen(const Call&, Store::Done done) {
  done(NotYet());
}
void Service::ListCompanies(const Call&, Store::Done done) {
  done(NotYet());
}
void Service::ListStations(const Call&, Store::Done done) {
  done(NotYet());
}
void Service::ListVehicles(const Call&, Store::Done done) {
  done(NotYet());
}
void Service::ListCouriers(const Call&, Store::Done done) {
  done(NotYet());
}
void Service::ListCustomers(const Call&, Store::Done done) {
  done(NotYet());
}
void Service::ListPublicReports(const Call&, Store::Done done) {
  done(NotYet());
}

}  // namespace pingma::registry
