// Routing, authentication and the set-up use cases (companies, stations,
// operators, custody, recalls).
#include "service.h"

#include <fmt/format.h>

#include "http/fields.h"

namespace pingma::registry {
namespace {

constexpr Role kAdmin = Role::kAdmin;
constexpr Role kCompany = Role::kCompany;
constexpr Role kStation = Role::kStation;
constexpr Role kInspector = Role::kInspector;
constexpr Role kCourier = Role::kCourier;
constexpr Role kRegulator = Role::kRegulator;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() && HexValue(in[i + 1]) >= 0 && HexValue(in[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(in[i + 1]) * 16 + HexValue(in[i + 2])));
      i += 2;
    } else if (plus_is_space && in[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    parts.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

std::map<std::string, std::string> ParseQuery(std::string_view query) {
  std::map<std::string, std::string> out;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    std::string key = PercentDecode(pair.substr(0, eq), true);
    std::string value =
        eq == std::string_view::npos ? "" : PercentDecode(pair.substr(eq + 1), true);
    if (!key.empty()) out.emplace(std::move(key), std::move(value));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return out;
}

Reply Created(json body) {
  return Reply{201, std::move(body), {}, {}};
}
Reply Okay(json body) {
  return Reply{200, std::move(body), {}, {}};
}

}  // namespace

std::string DecodePercent(std::string_view in, bool plus_is_space) {
  return PercentDecode(in, plus_is_space);
}

std::map<std::string, std::string> ParseFormFields(std::string_view text) {
  return ParseQuery(text);
}

Reply MethodNotAllowed(std::string_view method, std::string_view path,
                       const std::vector<std::string>& allowed) {
  std::string allow;
  for (const std::string& m : allowed) allow += (allow.empty() ? "" : ", ") + m;
  Reply r;
  r.status = 405;
  r.body = {
      {"error",
       {{"code", "METHOD_NOT_ALLOWED"},
        {"message", fmt::format("{} is not allowed on {}; it takes {}", method, path, allow)}}}};
  r.headers.emplace_back("Allow", allow);
  return r;
}

namespace {

// The company a principal acts for, when it is the company itself.
bool ActsForCompany(const Principal& who, const std::string& company_id) {
  return who.role == Role::kAdmin || (who.role == Role::kCompany && who.subject == company_id);
}

std::string ActorBody(const json& body) {
  return body.dump();
}

}  // namespace

const char* ToString(Role role) {
  switch (role) {
    case Role::kAdmin:
      return "admin";
    case Role::kCompany:
      return "company";
    case Role::kStation:
      return "station";
    case Role::kInspector:
      return "inspector";
    case Role::kCourier:
      return "courier";
    case Role::kRegulator:
      return "regulator";
  }
  return "?";
}

Result<Role> ParseRole(std::string_view text) {
  for (Role r : {Role::kAdmin, Role::kCompany, Role::kStation, Role::kInspector, Role::kCourier,
                 Role::kRegulator}) {
    if (text == ToString(r)) return r;
  }
  return Status::Invalid(fmt::format(
      "unknown role '{}' (one of: admin, company, station, inspector, courier, regulator)", text));
}

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kMalformed:
      return 400;
    case StatusCode::kUnauthenticated:
      return 401;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kConflict:
      return 409;
    case StatusCode::kTooLarge:
      return 413;
    case StatusCode::kInvalid:
      return 422;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kIoError:
    case StatusCode::kCorruption:
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

Reply ErrorReply(const Status& status) {
  Reply r;
  r.status = HttpStatusFor(status.code());
  r.body = {{"error", {{"code", StatusCodeName(status.code())}, {"message", status.message()}}}};
  return r;
}

Reply IdInUse(std::string_view what) {
  Reply r;
  r.status = 409;
  r.body = {
      {"error",
       {{"code", "ID_IN_USE"},
        {"message", fmt::format("{} is already used by another caller: make a new one", what)}}}};
  return r;
}

Service::Service(Store* store, Policy policy, const Clock* clock)
    : store_(store),
      policy_(std::move(policy)),
      clock_(clock),
      routes_(Routes()),
      tokens_(store, clock, policy_.utc_offset_minutes) {
  for (const Route& r : routes_) {
    route_segments_.emplace_back();
    for (std::string_view part : SplitPath(r.pattern)) route_segments_.back().emplace_back(part);
  }
  store_->set_hooks(
      {[this](bool whole_batch) { OnRollback(whole_batch); },
       [this](const Event& event) { OnAppend(event); },
       [this](Conn& conn, std::int64_t since_seq) { OnForeignAppends(conn, since_seq); }});
  // A failure here only leaves clone detection to start afresh; the log is intact.
  (void)LoadSightings();
}

void Service::OnAppend(const Event& event) {
  if (event.code.empty()) {
    cylinders_.clear();  // set-up: custody and the like reach many cylinders
  } else if (event.type != "fill_check") {
    cylinders_.erase(event.code);
  }
}

void Service::OnRollback(bool whole_batch) {
  // Caches may hold what was undone.
  cylinders_.clear();
  facts_.Clear();
  // Sightings are recorded only once a check's job has succeeded; a batch that
  // fails to commit takes its checks with it.
  if (whole_batch) {
    sightings_.clear();
    sightings_lost_ = true;
  }
}

void Service::WriteSetup(Store::Done done, Store::Job job) {
  Write(std::move(done), [this, job = std::move(job)](WriteTx& tx) {
    facts_.Clear();
    return job(tx);
  });
}

std::vector<Service::Route> Service::Routes() {
  const size_t one = kMaxBody;
  return {
      {"POST", "/v1/companies", {kAdmin}, &Service::PostCompany, one},
      {"POST", "/v1/companies/{}/license", {kAdmin, kRegulator}, &Service::PostLicense, one},
      {"POST", "/v1/stations", {kAdmin, kCompany}, &Service::PostStation, one},
      {"GET",
       "/v1/stations/{}",
       {kAdmin, kCompany, kStation, kRegulator},
       &Service::GetStation,
       one},
      {"POST", "/v1/stations/{}/lock", {kRegulator}, &Service::LockStation, one},
      {"DELETE", "/v1/personal-data/{}", {kAdmin, kRegulator}, &Service::ErasePersonalData, one},
      {"POST", "/v1/stations/{}/unlock", {kRegulator}, &Service::UnlockStation, one},
      {"POST", "/v1/operators", {kAdmin, kCompany}, &Service::PostOperator, one},
      {"POST", "/v1/custody", {kAdmin, kCompany}, &Service::PostCustody, one},
      {"POST", "/v1/recalls", {kRegulator}, &Service::PostRecall, one},
      {"GET", "/v1/tokens", {kAdmin, kCompany}, &Service::GetTokens, one},
      {"POST", "/v1/tokens", {kAdmin, kCompany}, &Service::PostToken, one},
      {"DELETE", "/v1/tokens/{}", {kAdmin, kCompany}, &Service::DeleteToken, one},
      {"GET",
       "/v1/audit/head",
       {kAdmin, kCompany, kStation, kInspector, kRegulator},
       &Service::GetAuditHead,
       one},
      {"GET",
       "/v1/policy",
       {kAdmin, kCompany, kStation, kInspector, kRegulator},
       &Service::GetPolicy,
       one},
      {"POST", "/v1/cylinders", {kAdmin, kCompany}, &Service::PostCylinder, one},
      {"POST",
       "/v1/cylinders/batch",
       {kAdmin, kCompany},
       &Service::PostCylinderBatch,
       kMaxBatchBody},
      {"GET",
       "/v1/cylinders/{}",
       {kAdmin, kCompany, kStation, kInspector, kRegulator},
       &Service::GetCylinder,
       one},
      {"GET",
       "/v1/cylinders/{}/history",
       {kAdmin, kCompany, kStation, kInspector, kRegulator},
       &Service::GetHistory,
       one},
      {"POST", "/v1/cylinders/{}/carriers", {kAdmin, kCompany}, &Service::PostCarrier, one},
      {"POST", "/v1/cylinders/{}/scrap", {kInspector}, &Service::PostScrap, one},
      {"GET",
       "/v1/resolve",
       {kAdmin, kCompany, kStation, kInspector, kRegulator},
       &Service::GetResolve,
       one},
      {"POST", "/v1/fill-checks", {kStation}, &Service::PostFillCheck, one},
      {"POST", "/v1/fills", {kStation}, &Service::PostFill, one},
      {"POST", "/v1/fill-checks/offline", {kStation}, &Service::PostOfflineFillCheck, one},
      {"GET", "/v1/stations/{}/fleet", {kStation, kRegulator}, &Service::GetFleet, one},
      {"POST", "/v1/inspections", {kInspector}, &Service::PostInspection, one},
      {"POST", "/v1/assessments", {kInspector}, &Service::PostAssessment, one},
      {"GET", "/v1/scrap-queue", {kInspector, kRegulator, kCompany}, &Service::GetScrapQueue, one},
      // Delivery: a courier token reaches nothing but its handovers and hazards.
      {"POST", "/v1/vehicles", {kAdmin, kCompany}, &Service::PostVehicle, one},
      {"POST", "/v1/couriers", {kAdmin, kCompany}, &Service::PostCourier, one},
      {"POST", "/v1/customers", {kAdmin, kCompany}, &Service::PostCustomer, one},
      {"POST", "/v1/handovers", {kCourier}, &Service::PostHandover, one},
      {"GET", "/v1/hazards", {kAdmin, kCompany, kCourier, kRegulator}, &Service::GetHazards, one},
      {"POST", "/v1/hazards/{}/close", {kCompany, kCourier}, &Service::CloseHazard, one},
      // The regulator's reads (a company sees its own; a courier its company's customers).
      {"GET",
       "/v1/stats/fill-checks",
       {kAdmin, kCompany, kRegulator},
       &Service::GetFillCheckStats,
       one},
      {"GET",
       "/v1/export/fills.csv",
       {kAdmin, kCompany, kRegulator},
       &Service::ExportFillsCsv,
       one},
      {"GET",
       "/v1/export/refused-checks.csv",
       {kAdmin, kCompany, kRegulator},
       &Service::ExportRefusedChecksCsv,
       one},
      {"GET",
       "/v1/export/hazards.csv",
       {kAdmin, kCompany, kRegulator},
       &Service::ExportHazardsCsv,
       one},
      {"GET", "/v1/export/epcis", {kAdmin, kRegulator}, &Service::ExportEpcis, one},
      {"GET",
       "/v1/foresight/inspections-due",
       {kAdmin, kCompany, kRegulator},
       &Service::GetInspectionsDue,
       one},
      {"GET", "/v1/foresight/unseen", {kAdmin, kCompany, kRegulator}, &Service::GetUnseen, one},
      {"GET", "/v1/companies", {kAdmin, kRegulator}, &Service::ListCompanies, one},
      {"GET", "/v1/stations", {kAdmin, kCompany, kRegulator}, &Service::ListStations, one},
      {"GET", "/v1/vehicles", {kAdmin, kCompany, kRegulator}, &Service::ListVehicles, one},
      {"GET", "/v1/couriers", {kAdmin, kCompany, kRegulator}, &Service::ListCouriers, one},
      {"GET",
       "/v1/customers",
       {kAdmin, kCompany, kCourier, kRegulator},
       &Service::ListCustomers,
       one},
      {"GET", "/v1/reports", {kAdmin, kRegulator}, &Service::ListPublicReports, one},
      {"POST",
       "/v1/scan/image",
       {kAdmin, kCompany, kStation, kInspector, kCourier, kRegulator},
       &Service::PostScanImage,
       kMaxImageBody},
  };
}

Result<IssuedToken> Service::IssueToken(const TokenTerms& terms) {
  return tokens_.IssueNow(terms);
}

Result<std::string> Service::AddToken(Role role, const std::string& subject) {
  auto issued = IssueToken(TokenTerms{role, subject, std::nullopt, ""});
  if (!issued.ok()) return issued.status();
  return issued->secret;
}

void Service::ReadReply(Store::Done done, const std::function<Reply(Conn&)>& fn) {
  auto reply = store_->Read([&](Conn& conn) -> Result<Reply> { return fn(conn); });
  done(reply.ok() ? std::move(*reply) : ErrorReply(reply.status()));
}

const Service::Route* Service::FindRoute(std::string_view method,
                                         const std::vector<std::string_view>& parts,
                                         std::vector<std::string>* params,
                                         std::vector<std::string>* allowed) const {
  for (size_t k = 0; k < routes_.size(); ++k) {
    const Route& r = routes_[k];
    const auto& pattern = route_segments_[k];
    if (pattern.size() != parts.size()) continue;
    std::vector<std::string> captured;
    bool match = true;
    for (size_t i = 0; i < parts.size() && match; ++i) {
      if (pattern[i] == "{}") {
        captured.push_back(PercentDecode(parts[i], false));
        match = !parts[i].empty();
      } else {
        match = pattern[i] == parts[i];
      }
    }
    if (!match) continue;
    if (std::find(allowed->begin(), allowed->end(), r.method) == allowed->end()) {
      allowed->emplace_back(r.method);
    }
    if (method == r.method) {
      *params = std::move(captured);
      return &r;
    }
  }
  return nullptr;
}

size_t Service::BodyLimit(std::string_view method, std::string_view target,
                          std::string_view authorization, const std::string& client) {
  const auto parts = SplitPath(target.substr(0, target.find('?')));
  if (parts.empty() || parts[0] != "v1") return kMaxPublicBody;
  auto who = tokens_.Authenticate(authorization, client).who;
  if (!who) return kMaxPublicBody;
  std::vector<std::string> params, allowed;
  const Route* route = FindRoute(method, parts, &params, &allowed);
  if (!route ||
      std::find(route->roles.begin(), route->roles.end(), who->role) == route->roles.end()) {
    return kMaxPublicBody;
  }
  return route->max_body;
}

void Service::Handle(Request request, Store::Done done) {
  const size_t q = request.target.find('?');
  const std::string_view path = std::string_view(request.target).substr(0, q);
  const std::string_view query =
      q == std::string::npos ? std::string_view() : std::string_view(request.target).substr(q + 1);
  const auto parts = SplitPath(path);

  // The public page (/c/{code}, the URL a label's QR carries) needs no token.
  if (!parts.empty() && parts[0] == "c") {
    HandlePublic(request, parts, std::move(done));
    return;
  }
  // The courier's and the regulator's pages: static files; their calls carry the token.
  if (!parts.empty() && (parts[0] == "console" || parts[0] == "courier")) {
    HandleWeb(request, parts, std::move(done));
    return;
  }
  // Every /v1/ call needs a token, whether or not it names an endpoint (all the
  // routes are under /v1/).
  if (parts.empty() || parts[0] != "v1") {
    done(ErrorReply(Status::NotFound(fmt::format("no such endpoint: {}", std::string(path)))));
    return;
  }
  auto auth = tokens_.Authenticate(request.authorization, request.client);
  if (!auth.who) {
    done(std::move(auth.refusal));
    return;
  }
  const Principal* who = &*auth.who;

  std::vector<std::string> allowed;  ///< the methods of the routes whose path matches
  std::vector<std::string> params;
  const Route* route = FindRoute(request.method, parts, &params, &allowed);
  if (!route) {
    if (allowed.empty()) {
      done(ErrorReply(Status::NotFound(fmt::format("no such endpoint: {}", std::string(path)))));
    } else {
      done(MethodNotAllowed(request.method, path, allowed));
    }
    return;
  }
  if (request.body.size() > route->max_body) {
    done(ErrorReply(Status::TooLarge(fmt::format("the body is {} bytes; the limit here is {}",
                                                 request.body.size(), route->max_body))));
    return;
  }
  if (std::find(route->roles.begin(), route->roles.end(), who->role) == route->roles.end()) {
    done(ErrorReply(Status::PermissionDenied(fmt::format(
        "the role '{}' may not call {} {}", ToString(who->role), route->method, route->pattern))));
    return;
  }
  Call call{*who, std::move(params), ParseQuery(query), &request};
  if (std::string_view(route->method) == "GET") {
    // A read may see commits whose fdatasync is still running: its answer waits
    // for it, as their writers' answers do, so that nothing is shown that a power
    // loss could still undo.
    done = [store = store_, done = std::move(done)](Reply reply) {
      store->WhenDurable([done, reply = std::move(reply)]() mutable { done(std::move(reply)); });
    };
  }
  (this->*(route->handler))(call, std::move(done));
}

// ---- Set-up -------------------------------------------------------------------

void Service::PostCompany(const Call& call, Store::Done done) {
  auto body = ParseBody(call.request->body);
  if (!body.ok()) return done(ErrorReply(body.status()));
  std::string id;
  std::optional<std::string> name, number;
  std::optional<Date> valid_until;
  Status s = GetId(*body, "id", &id);
  if (s.ok()) s = GetString(*body, "name", Need::kRequired, &name);
  const json* license = nullptr;
  if (s.ok()) s = GetObject(*body, "filling_license", Need::kRequired, &license);
  if (s.ok()) s = GetString(*license, "number", Need::kRequired, &number);
  if (s.ok()) s = GetDate(*license, "valid_until", Need::kRequired, &valid_until);
  if (!s.ok()) return done(ErrorReply(s));
  WriteSetup(std::move(done), [=, who = call.who](WriteTx& tx) -> Reply {
    auto exists = Exists(tx.conn(), "companies", id);
    if (!exists.ok()) return ErrorReply(exists.status());
    if (*exists) return ErrorReply(Status::Conflict(fmt::format("company {} already exists", id)));
    auto st = tx.conn().Prepare(
        "INSERT INTO companies(id, name, license_number, license_valid_until) VALUES(?,?,?,?)");
    if (!st.ok()) return ErrorReply(st.status());
    (*st)->Bind(1, id).Bind(2, *name).Bind(3, number);
    if (valid_until) {
      (*st)->Bind(4, valid_until->ToString());
    } else {
      (*st)->BindNull(4);
    }
    if (Status r = (*st)->Run(); !r.ok()) return ErrorReply(r);
    json out = {{"id", id}, {"name", *name}};
    if (number)
      out["filling_license"] = {{"number", *number}, {"valid_until", valid_until->ToString()}};
    auto ev = tx.Append(
        {"", "", "company_registered", tx.now(), ToString(who.role), who.subject, ActorBody(out)});
    if (!ev.ok()) return ErrorReply(ev.status());
    return Created(out);
  });
}

void Service::PostLicense(const Call& call, Store::Done done) {
  auto body = ParseBody(call.request->body);
  if (!body.ok()) return done(ErrorReply(body.status()));
  std::optional<std::string> number;
  std::optional<Date> valid_until;
  std::optional<bool> revoked;
  Status s = GetString(*body, "number", Need::kRequired, &number);
  if (s.ok()) s = GetDate(*body, "valid_until", Need::kRequired, &valid_until);
  if (s.ok()) s = GetBool(*body, "revoked", Need::kRequired, &revoked);
  if (!s.ok()) return done(ErrorReply(s));
  const std::string id = call.params[0];
  WriteSetup(std::move(done), [=, who = call.who](WriteTx& tx) -> Reply {
    auto st = tx.conn().Prepare(
        "UPDATE companies SET license_number = ?, license_valid_until = ?, license_revoked = ? "
        "WHERE id = ?");
    if (!st.ok()) return ErrorReply(st.status());
    (*st)
        ->Bind(1, *number)
        .Bind(2, valid_until->ToString())
        .Bind(3, revoked.value_or(false) ? 1 : 0);
    (*st)->Bind(4, id);
    if (Status r = (*st)->Run(); !r.ok()) return ErrorReply(r);
    if (tx.conn().db().Changes() == 0) {
      return ErrorReply(Status::NotFound(fmt::format("no company {}", id)));
    }
    json out = {{"company_id", id},
                {"number", *number},
                {"valid_until", valid_until->ToString()},
                {"revoked", revoked.value_or(false)}};
    auto ev = tx.Append(
        {"", "", "license_updated", tx.now(), ToString(who.role), who.subject, ActorBody(out)});
    if (!ev.ok()) return ErrorReply(ev.status());
    return Okay(out);
  });
}

void Service::PostStation(const Call& call, Store::Done done) {
  auto body = ParseBody(call.request->body);
  if (!body.ok()) return done(ErrorReply(body.status()));
  std::string id, company_id;
  std::optional<std::string> name, district;
  Status s = GetId(*body, "id", &id);
  if (s.ok()) s = GetId(*body, "company_id", &company_id);
  if (s.ok()) s = GetString(*body, "name", Need::kRequired, &name);
  if (s.ok()) s = GetString(*body, "district", Need::kRequired, &district);
  if (!s.ok()) return done(ErrorReply(s));
  if (!ActsForCompany(call.who, company_id)) {
    return done(ErrorReply(Status::PermissionDenied("a company may add stations only for itself")));
  }
  WriteSetup(std::move(done), [=, who = call.who](WriteTx& tx) -> Reply {
    auto company = Exists(tx.conn(), "companies", company_id);
    if (!company.ok()) return ErrorReply(company.status());
    if (!*company) return ErrorReply(Status::Invalid(fmt::format("no company {}", company_id)));
    auto exists = Exists(tx.conn(), "stations", id);
    if (!exists.ok()) return ErrorReply(exists.status());
    if (*exists) return ErrorReply(Status::Conflict(fmt::format("station {} already exists", id)));
    auto st =
        tx.conn().Prepare("INSERT INTO stations(id, company_id, name, district) VALUES(?,?,?,?)");
    if (!st.ok()) return ErrorReply(st.status());
    (*st)->Bind(1, id).Bind(2, company_id).Bind(3, *name).Bind(4, district.value_or(""));
    if (Status r = (*st)->Run(); !r.ok()) return ErrorReply(r);
    json out = {{"id", id},
                {"company_id", company_id},
                {"name", *name},
                {"district", district.value_or("")}};
    auto ev = tx.Append(
        {"", "", "station_registered", tx.now(), ToString(who.role), who.subject, ActorBody(out)});
    if (!ev.ok()) return ErrorReply(ev.status());
    return Created(out);
  });
}

void Service::GetStation(const Call& call, Store::Done done) {
  const std::string id = call.params[0];
  const Principal who = call.who;
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    auto st = conn.Prepare(
        "SELECT s.company_id, s.name, s.district, s.locked, s.lock_reason FROM stations s "
        "WHERE s.id = ?");
    if (!st.ok()) return ErrorReply(st.status());
    (*st)->Bind(1, id);
    auto row = (*st)->Step();
    if (!row.ok()) return ErrorReply(row.status());
    if (!*row) return ErrorReply(Status::NotFound(fmt::format("no station {}", id)));
    json out = {{"id", id},
                {"company_id", (*st)->Text(0)},
                {"name", (*st)->Text(1)},
                {"district", (*st)->Text(2)},
                {"locked", (*st)->Int(3) != 0},
                {"lock_reason", (*st)->Text(4)}};
    if ((who.role == Role::kCompany && who.subject != out["company_id"]) ||
        (who.role == Role::kStation && who.subject != id)) {
      return ErrorReply(Status::PermissionDenied("this station belongs to another company"));
    }
    return Okay(out);
  });
}

namespace {

Reply SetLock(WriteTx& tx, const Principal& who, const std::string& id, bool locked,
              const std::string& reason) {
  auto st = tx.conn().Prepare("UPDATE stations SET locked = ?, lock_reason = ? WHERE id = ?");
  if (!st.ok()) return ErrorReply(st.status());
  (*st)->Bind(1, locked ? 1 : 0).Bind(2, reason).Bind(3, id);
  if (Status r = (*st)->Run(); !r.ok()) return ErrorReply(r);
  if (tx.conn().db().Changes() == 0) {
    return ErrorReply(Status::NotFound(fmt::format("no station {}", id)));
  }
  json out = {{"station_id", id}, {"locked", locked}, {"reason", reason}};
  auto ev = tx.Append({"", "", locked ? "station_locked" : "station_unlocked", tx.now(),
                       ToString(who.role), who.subject, out.dump()});
  if (!ev.ok()) return ErrorReply(ev.status());
  return Okay(out);
}

}  // namespace

void Service::LockStation(const Call& call, Store::Done done) {
  auto body = ParseBody(call.request->body);
  if (!body.ok()) return done(ErrorReply(body.status()));
  std::optional<std::string> reason;
  if (Status s = GetString(*body, "reason", Need::kRequired, &reason, 1000); !s.ok()) {
    return done(ErrorReply(s));
  }
  WriteSetup(std::move(done), [=, who = call.who, id = call.params[0]](WriteTx& tx) {
    return SetLock(tx, who, id, true, *reason);
  });
}

void Service::UnlockStation(const Call& call, Store::Done done) {
  auto body = ParseBody(call.request->body);
  if (!body.ok()) return done(ErrorReply(body.status()));
  std::optional<std::string> reason;
  if (Status s = GetString(*body, "reason", Need::kRequired, &reason, 1000); !s.ok()) {
    return done(ErrorReply(s));
  }
  WriteSetup(std::move(done), [=, who = call.who, id = call.params[0]](WriteTx& tx) {
    return SetLock(tx, who, id, false, *reason);
  });
}

void Service::PostOperator(const Call& call, Store::Done done) {
  auto body = ParseBody(call.request->body);
  if (!body.ok()) return done(ErrorReply(body.status()));
  std::string id, company_id;
  std::optional<std::string> name, number;
  std::optional<Date> valid_until;
  Status s = GetId(*body, "id", &id);
  if (s.ok()) s = GetId(*body, "company_id", &company_id);
  if (s.ok()) s = GetString(*body, "name", Need::kRequired, &name);
  const json* certificate = nullptr;
  if (s.ok()) s = GetObject(*body, "certificate", Need::kRequired, &certificate);
  if (s.ok()) s = GetString(*certificate, "number", Need::kRequired, &number);
  if (s.ok()) s = GetDate(*certificate, "valid_until", Need::kRequired, &valid_until);
  if (!s.ok()) return done(ErrorReply(s));
  if (!ActsForCompany(call.who, company_id)) {
    return done(
        ErrorReply(Status::PermissionDenied("a company may add operators only for itself")));
  }
  WriteSetup(std::move(done), [=, who = call.who](WriteTx& tx) -> Reply {
    auto company = Exists(tx.conn(), "companies", company_id);
    if (!company.ok()) return ErrorReply(company.status());
    if (!*company) return ErrorReply(Status::Invalid(fmt::format("no company {}", company_id)));
    auto exists = Exists(tx.conn(), "operators", id);
    if (!exists.ok()) return ErrorReply(exists.status());
    if (*exists) return ErrorReply(Status::Conflict(fmt::format("operator {} already exists", id)));
    auto st = tx.conn().Prepare(
        "INSERT INTO operators(id, company_id, name, cert_number, cert_valid_until) "
        "VALUES(?,?,?,?,?)");
    if (!st.ok()) return ErrorReply(st.status());
    (*st)->Bind(1, id).Bind(2, company_id).Bind(3, *name).Bind(4, number);
    if (valid_until) {
      (*st)->Bind(5, valid_until->ToString());
    } else {
      (*st)->BindNull(5);
    }
    if (Status r = (*st)->Run(); !r.ok()) return ErrorReply(r);
    json out = {{"id", id}, {"company_id", company_id}, {"name", *name}};
    if (number)
      out["certificate"] = {{"number", *number}, {"valid_until", valid_until->ToString()}};
    auto ev = tx.Append(
        {"", "", "operator_registered", tx.now(), ToString(who.role), who.subject, ActorBody(out)});
    if (!ev.ok()) return ErrorReply(ev.status());
    return Created(out);
  });
}

void Service::PostCustody(const Call& call, Store::Done done) {
  auto body = ParseBody(call.request->body);
  if (!body.ok()) return done(ErrorReply(body.status()));
  std::string owner, custodian;
  std::optional<Date> from, until;
  Status s = GetId(*body, "owner_company_id", &owner);
  if (s.ok()) s = GetId(*body, "custodian_company_id", &custodian);
  if (s.ok()) s = GetDate(*body, "valid_from", Need::kRequired, &from);
  if (s.ok()) s = GetDate(*body, "valid_until", Need::kRequired, &until);
  if (s.ok() && *until < *from) s = Status::Invalid("valid_until is before valid_from");
  if (s.ok() && owner == custodian) s = Status::Invalid("a company cannot be its own custodian");
  if (!s.ok()) return done(ErrorReply(s));
  if (!ActsForCompany(call.who, owner)) {
    return done(ErrorReply(
        Status::PermissionDenied("only the owner company may grant custody of its cylinders")));
  }
  WriteSetup(std::move(done), [=, who = call.who](WriteTx& tx) -> Reply {
    for (const std::string& c : {owner, custodian}) {
      auto company = Exists(tx.conn(), "companies", c);
      if (!company.ok()) return ErrorReply(company.status());
      if (!*company) return ErrorReply(Status::Invalid(fmt::format("no company {}", c)));
    }
    json out = {{"owner_company_id", owner},
                {"custodian_company_id", custodian},
                {"valid_from", from->ToString()},
                {"valid_until", until->ToString()}};
    auto seq = tx.Append(
        {"", "", "custody_granted", tx.now(), ToString(who.role), who.subject, ActorBody(out)});
    if (!seq.ok()) return ErrorReply(seq.status());
    auto st = tx.conn().Prepare(
        "INSERT INTO custody(owner_company_id, custodian_company_id, valid_from, valid_until, "
        "created_seq) VALUES(?,?,?,?,?)");
    if (!st.ok()) return ErrorReply(st.status());
    (*st)->Bind(1, owner).Bind(2, custodian).Bind(3, from->ToString()).Bind(4, until->ToString());
    (*st)->Bind(5, *seq);
    if (Status r = (*st)->Run(); !r.ok()) return ErrorReply(r);
    // The custodian's stations pick the owner's fleet up on their next sync.
    auto bump = tx.conn().Prepare("UPDATE cylinders SET rev = ? WHERE owner_company_id = ?");
    if (!bump.ok()) return ErrorReply(bump.status());
    (*bump)->Bind(1, *seq).Bind(2, owner);
    if (Status r = (*bump)->Run(); !r.ok()) return ErrorReply(r);
    return Created(out);
  });
}

void Service::PostRecall(const Call& call, Store::Done done) {
  auto body = ParseBody(call.request->body);
  if (!body.ok()) return done(ErrorReply(body.status()));
  std::optional<std::string> manufacturer, reason;
  std::optional<YearMonth> from, to;
  Status s = GetString(*body, "manufacturer", Need::kRequired, &manufacturer);
  if (s.ok()) s = GetYearMonth(*body, "manufactured_from", Need::kOptional, &from);
  if (s.ok()) s = GetYearMonth(*body, "manufactured_to", Need::kOptional, &to);
  if (s.ok()) s = GetString(*body, "reason", Need::kRequired, &reason, 1000);
  if (s.ok() && from && to && *to < *from) {
    s = Status::Invalid("manufactured_to is before manufactured_from");
  }
  if (!s.ok()) return done(ErrorReply(s));
  WriteSetup(std::move(done), [=, who = call.who](WriteTx& tx) -> Reply {
    auto st = tx.conn().Prepare(
        "INSERT INTO recalls(manufacturer, manufactured_from, manufactured_to, reason) "
        "VALUES(?,?,?,?)");
    if (!st.ok()) return ErrorReply(st.status());
    (*st)->Bind(1, *manufacturer).Bind(4, *reason);
    if (from)
      (*st)->Bind(2, from->ToString());
    else
      (*st)->BindNull(2);
    if (to)
      (*st)->Bind(3, to->ToString());
    else
      (*st)->BindNull(3);
    if (Status r = (*st)->Run(); !r.ok()) return ErrorReply(r);
    json out = {{"manufacturer", *manufacturer}, {"reason", *reason}};
    if (from) out["manufactured_from"] = from->ToString();
    if (to) out["manufactured_to"] = to->ToString();
    auto ev = tx.Append(
        {"", "", "recall_added", tx.now(), ToString(who.role), who.subject, ActorBody(out)});
    if (!ev.ok()) return ErrorReply(ev.status());
    return Created(out);
  });
}

// ---- Audit --------------------------------------------------------------------

void Service::GetAuditHead(const Call&, Store::Done done) {
  json verified;
  {
    std::lock_guard<std::mutex> lock(audit_mu_);
    verified = chain_check_;
  }
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    // The last link, by the primary key: one lookup however long the log. Its seq
    // is the chain's length, as the chain starts at 1 without gaps (verify checks).
    auto st = conn.Prepare("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1");
    if (!st.ok()) return ErrorReply(st.status());
    auto row = (*st)->Step();
    if (!row.ok()) return ErrorReply(row.status());
    json out = {{"head", nullptr}, {"length", 0}, {"verified", verified}};
    if (*row) {
      out["head"] = HexOf((*st)->Blob(1));
      out["length"] = (*st)->Int(0);
    }
    return Okay(out);
  });
}

void Service::GetPolicy(const Call&, Store::Done done) {
  done(Okay(json::parse(PolicyToJson(policy_))));
}

}  // namespace pingma::registry
