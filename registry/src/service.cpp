#include "service.h"

namespace pingma::registry {
namespace {

constexpr Role kAdmin = Role::kAdmin;
constexpr Role kCompany = Role::kCompany;
constexpr Role kStation = Role::kStation;
constexpr Role kInspector = Role::kInspector;
constexpr Role kCourier = Role::kCourier;
constexpr Role kRegulator = Role::kRegulator;
/// Every role; every role but couriers (who see cylinders only through handovers).
const std::vector<Role> kEveryRole = {kAdmin, kCompany, kStation, kInspector, kCourier, kRegulator};
const std::vector<Role> kNotCouriers = {kAdmin, kCompany, kStation, kInspector, kRegulator};

}  // namespace

Service::Service(Store* store, Policy policy, const Clock* clock)
    : policy_(std::move(policy)),
      tokens_(store, clock, policy_.utc_offset_minutes),
      router_(store, &tokens_),
      context_{store, &policy_, clock, &settings_},
      fill_checks_(context_),
      setup_(context_, [this] { fill_checks_.ForgetFacts(); }),
      token_admin_(context_, &tokens_),
      cylinders_(context_),
      inspections_(context_),
      fleet_(context_),
      supervision_(context_),
      terminals_(context_, &supervision_),
      handovers_(context_, &setup_, &supervision_),
      regulator_(context_),
      epcis_(context_),
      personal_data_(context_),
      audit_(context_),
      verifiable_log_(context_),
      public_page_(context_),
      pages_(context_) {
  AddRoutes();
}

Result<std::string> Service::AddToken(Role role, const std::string& subject) {
  auto issued = IssueToken(TokenTerms{role, subject, std::nullopt, ""});
  if (!issued.ok()) return issued.status();
  return issued->secret;
}

void Service::AddRoutes() {
  // Pages without a token: the public page (/c/{code}, the URL a label's QR
  // carries), the console and the courier's page (whose calls carry the token).
  router_.AddPages(
      "c", [this](const Request& request, const std::vector<std::string_view>& parts,
                  Store::Done done) { public_page_.Handle(request, parts, std::move(done)); });
  for (const char* page : {"console", "courier"}) {
    router_.AddPages(page,
                     [this](const Request& request, const std::vector<std::string_view>& parts,
                            Store::Done done) { pages_.Handle(request, parts, std::move(done)); });
  }
  // The log's key and newest head: anyone may check the log against them.
  router_.AddPublicRead("/v1/log/key",
                        [this](Store::Done done) { verifiable_log_.GetKey(std::move(done)); });
  router_.AddPublicRead("/v1/log/head",
                        [this](Store::Done done) { verifiable_log_.GetHead(std::move(done)); });
  // One line a route: method, path, the roles that may call it, the room that
  // answers it (and a body limit other than kMaxBody). Earlier routes are tried
  // first; a 405's Allow header lists a path's methods in this order.
  const auto On = [](auto* room, auto handler) { return UseCase::On(room, handler); };
  // clang-format off
  const std::vector<Route> routes = {
      {"POST",   "/v1/companies",                 {kAdmin},                                 On(&setup_, &Setup::PostCompany)},
      {"POST",   "/v1/companies/{}/license",      {kAdmin, kRegulator},                     On(&setup_, &Setup::PostLicense)},
      {"POST",   "/v1/stations",                  {kAdmin, kCompany},                       On(&setup_, &Setup::PostStation)},
      {"GET",    "/v1/stations/{}",               {kAdmin, kCompany, kStation, kRegulator}, On(&setup_, &Setup::GetStation)},
      {"POST",   "/v1/stations/{}/lock",          {kRegulator},                             On(&setup_, &Setup::LockStation)},
      {"DELETE", "/v1/personal-data/{}",          {kAdmin, kRegulator},                     On(&personal_data_, &PersonalData::ErasePersonalData)},
      {"POST",   "/v1/stations/{}/unlock",        {kRegulator},                             On(&setup_, &Setup::UnlockStation)},
      {"POST",   "/v1/operators",                 {kAdmin, kCompany},                       On(&setup_, &Setup::PostOperator)},
      {"POST",   "/v1/custody",                   {kAdmin, kCompany},                       On(&setup_, &Setup::PostCustody)},
      {"POST",   "/v1/recalls",                   {kRegulator},                             On(&setup_, &Setup::PostRecall)},
      {"GET",    "/v1/tokens",                    {kAdmin, kCompany},                       On(&token_admin_, &TokenAdmin::GetTokens)},
      {"POST",   "/v1/tokens",                    {kAdmin, kCompany},                       On(&token_admin_, &TokenAdmin::PostToken)},
      {"DELETE", "/v1/tokens/{}",                 {kAdmin, kCompany},                       On(&token_admin_, &TokenAdmin::DeleteToken)},
      {"GET",    "/v1/audit/head",                kNotCouriers,                             On(&audit_, &Audit::GetAuditHead)},
      {"GET",    "/v1/log/entries",               {kAdmin, kRegulator},                     On(&verifiable_log_, &VerifiableLog::GetEntries)},
      {"GET",    "/v1/log/proof/inclusion",       kEveryRole,                               On(&verifiable_log_, &VerifiableLog::GetInclusionProof)},
      {"GET",    "/v1/log/proof/consistency",     kEveryRole,                               On(&verifiable_log_, &VerifiableLog::GetConsistencyProof)},
      {"GET",    "/v1/policy",                    kNotCouriers,                             On(&setup_, &Setup::GetPolicy)},
      {"POST",   "/v1/cylinders",                 {kAdmin, kCompany},                       On(&cylinders_, &Cylinders::PostCylinder)},
      {"POST",   "/v1/cylinders/batch",           {kAdmin, kCompany},                       On(&cylinders_, &Cylinders::PostCylinderBatch), kMaxBatchBody},
      {"GET",    "/v1/cylinders/{}",              kNotCouriers,                             On(&cylinders_, &Cylinders::GetCylinder)},
      {"GET",    "/v1/cylinders/{}/history",      kNotCouriers,                             On(&cylinders_, &Cylinders::GetHistory)},
      {"POST",   "/v1/cylinders/{}/carriers",     {kAdmin, kCompany},                       On(&cylinders_, &Cylinders::PostCarrier)},
      {"POST",   "/v1/cylinders/{}/scrap",        {kInspector},                             On(&inspections_, &Inspections::PostScrap)},
      {"GET",    "/v1/resolve",                   kNotCouriers,                             On(&cylinders_, &Cylinders::GetResolve)},
      {"POST",   "/v1/fill-checks",               {kStation},                               On(&fill_checks_, &FillChecks::PostFillCheck)},
      {"POST",   "/v1/fills",                     {kStation},                               On(&fill_checks_, &FillChecks::PostFill)},
      {"POST",   "/v1/fill-checks/offline",       {kStation},                               On(&fill_checks_, &FillChecks::PostOfflineFillCheck)},
      {"GET",    "/v1/stations/{}/fleet",         {kStation, kRegulator},                   On(&fleet_, &FleetFeed::GetFleet)},
      {"POST",   "/v1/inspections",               {kInspector},                             On(&inspections_, &Inspections::PostInspection)},
      {"POST",   "/v1/assessments",               {kInspector},                             On(&inspections_, &Inspections::PostAssessment)},
      {"GET",    "/v1/scrap-queue",               {kInspector, kRegulator, kCompany},       On(&inspections_, &Inspections::GetScrapQueue)},

      // Delivery: a courier token reaches nothing but its handovers, hazards and positions.
      {"POST",   "/v1/vehicles",                  {kAdmin, kCompany},                       On(&handovers_, &Handovers::PostVehicle)},
      {"POST",   "/v1/couriers",                  {kAdmin, kCompany},                       On(&handovers_, &Handovers::PostCourier)},
      {"POST",   "/v1/customers",                 {kAdmin, kCompany},                       On(&handovers_, &Handovers::PostCustomer)},
      {"POST",   "/v1/handovers",                 {kCourier},                               On(&handovers_, &Handovers::PostHandover)},
      {"GET",    "/v1/hazards",                   {kAdmin, kCompany, kCourier, kRegulator}, On(&handovers_, &Handovers::GetHazards)},
      {"POST",   "/v1/hazards/{}/close",          {kCompany, kCourier},                     On(&handovers_, &Handovers::CloseHazard)},

      // Delivery supervision (定位监管): areas, positions, alerts.
      {"PUT",    "/v1/areas/{}",                  {kAdmin, kCompany},                       On(&supervision_, &Supervision::PutArea), kMaxAreaBody},
      {"GET",    "/v1/areas",                     {kAdmin, kCompany, kRegulator},           On(&supervision_, &Supervision::GetAreas)},
      {"POST",   "/v1/positions",                 {kCourier},                               On(&supervision_, &Supervision::PostPositions)},
      {"GET",    "/v1/positions/latest",          {kAdmin, kCompany, kRegulator},           On(&supervision_, &Supervision::GetLatestPositions)},
      {"GET",    "/v1/vehicles/{}/positions",     {kAdmin, kCompany, kCourier, kRegulator}, On(&supervision_, &Supervision::GetVehiclePositions)},
      {"GET",    "/v1/alerts",                    {kAdmin, kCompany, kRegulator},           On(&supervision_, &Supervision::GetAlerts)},

      // The regulator's reads (a company sees its own; a courier its company's customers).
      {"GET",    "/v1/stats/fill-checks",         {kAdmin, kCompany, kRegulator},           On(&regulator_, &RegulatorReads::GetFillCheckStats)},
      {"GET",    "/v1/export/fills.csv",          {kAdmin, kCompany, kRegulator},           On(&regulator_, &RegulatorReads::ExportFillsCsv)},
      {"GET",    "/v1/export/refused-checks.csv", {kAdmin, kCompany, kRegulator},           On(&regulator_, &RegulatorReads::ExportRefusedChecksCsv)},
      {"GET",    "/v1/export/hazards.csv",        {kAdmin, kCompany, kRegulator},           On(&regulator_, &RegulatorReads::ExportHazardsCsv)},
      {"GET",    "/v1/export/epcis",              {kAdmin, kRegulator},                     On(&epcis_, &EpcisExport::ExportEpcis)},
      {"GET",    "/v1/foresight/inspections-due", {kAdmin, kCompany, kRegulator},           On(&regulator_, &RegulatorReads::GetInspectionsDue)},
      {"GET",    "/v1/foresight/unseen",          {kAdmin, kCompany, kRegulator},           On(&regulator_, &RegulatorReads::GetUnseen)},
      {"GET",    "/v1/companies",                 {kAdmin, kRegulator},                     On(&regulator_, &RegulatorReads::ListCompanies)},
      {"GET",    "/v1/stations",                  {kAdmin, kCompany, kRegulator},           On(&regulator_, &RegulatorReads::ListStations)},
      {"GET",    "/v1/vehicles",                  {kAdmin, kCompany, kRegulator},           On(&regulator_, &RegulatorReads::ListVehicles)},
      {"GET",    "/v1/couriers",                  {kAdmin, kCompany, kRegulator},           On(&regulator_, &RegulatorReads::ListCouriers)},
      {"GET",    "/v1/customers",                 {kAdmin, kCompany, kCourier, kRegulator}, On(&regulator_, &RegulatorReads::ListCustomers)},
      {"GET",    "/v1/reports",                   {kAdmin, kRegulator},                     On(&regulator_, &RegulatorReads::ListPublicReports)},
      {"POST",   "/v1/scan/image",                kEveryRole,                               On(&pages_, &Pages::PostScanImage), kMaxImageBody},
  };
  // clang-format on
  for (const Route& route : routes) router_.Add(route);
}

}  // namespace pingma::registry
