// Set-up: companies, licences, stations, operators, custody, recalls.
#include "cases/setup.h"

#include <fmt/format.h>

#include "cases/queries.h"
#include "http/fields.h"

namespace pingma::registry {
void Setup::WriteSetup(Store::Done done, Store::Job job) {
  Write(std::move(done), [this, job = std::move(job)](WriteTx& tx) {
    changed_();
    return job(tx);
  });
}

void Setup::PostCompany(const Call& call, Store::Done done) {
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
        "INSERT INTO companies(id, name, license_number, license_valid_until) VALUES($1,$2,$3,$4)");
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
        {"", "", "company_registered", tx.now(), ToString(who.role), who.subject, out.dump()});
    if (!ev.ok()) return ErrorReply(ev.status());
    return Created(out);
  });
}

void Setup::PostLicense(const Call& call, Store::Done done) {
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
        "UPDATE companies SET license_number = $1, license_valid_until = $2, license_revoked = $3 "
        "WHERE id = $4");
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
        {"", "", "license_updated", tx.now(), ToString(who.role), who.subject, out.dump()});
    if (!ev.ok()) return ErrorReply(ev.status());
    return Okay(out);
  });
}

void Setup::PostStation(const Call& call, Store::Done done) {
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
    auto st = tx.conn().Prepare(
        "INSERT INTO stations(id, company_id, name, district) VALUES($1,$2,$3,$4)");
    if (!st.ok()) return ErrorReply(st.status());
    (*st)->Bind(1, id).Bind(2, company_id).Bind(3, *name).Bind(4, district.value_or(""));
    if (Status r = (*st)->Run(); !r.ok()) return ErrorReply(r);
    json out = {{"id", id},
                {"company_id", company_id},
                {"name", *name},
                {"district", district.value_or("")}};
    auto ev = tx.Append(
        {"", "", "station_registered", tx.now(), ToString(who.role), who.subject, out.dump()});
    if (!ev.ok()) return ErrorReply(ev.status());
    return Created(out);
  });
}

void Setup::GetStation(const Call& call, Store::Done done) {
  const std::string id = call.params[0];
  const Principal who = call.who;
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    auto st = conn.Prepare(
        "SELECT s.company_id, s.name, s.district, s.locked, s.lock_reason FROM stations s "
        "WHERE s.id = $1");
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
  auto st = tx.conn().Prepare("UPDATE stations SET locked = $1, lock_reason = $2 WHERE id = $3");
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

void Setup::LockStation(const Call& call, Store::Done done) {
  ChangeLock(call, std::move(done), /*locked=*/true);
}

void Setup::UnlockStation(const Call& call, Store::Done done) {
  ChangeLock(call, std::move(done), /*locked=*/false);
}

void Setup::ChangeLock(const Call& call, Store::Done done, bool locked) {
  auto body = ParseBody(call.request->body);
  if (!body.ok()) return done(ErrorReply(body.status()));
  std::optional<std::string> reason;
  if (Status s = GetString(*body, "reason", Need::kRequired, &reason, 1000); !s.ok()) {
    return done(ErrorReply(s));
  }
  WriteSetup(std::move(done), [=, who = call.who, id = call.params[0]](WriteTx& tx) {
    return SetLock(tx, who, id, locked, *reason);
  });
}

void Setup::PostOperator(const Call& call, Store::Done done) {
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
        "VALUES($1,$2,$3,$4,$5)");
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
        {"", "", "operator_registered", tx.now(), ToString(who.role), who.subject, out.dump()});
    if (!ev.ok()) return ErrorReply(ev.status());
    return Created(out);
  });
}

void Setup::PostCustody(const Call& call, Store::Done done) {
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
        {"", "", "custody_granted", tx.now(), ToString(who.role), who.subject, out.dump()});
    if (!seq.ok()) return ErrorReply(seq.status());
    auto st = tx.conn().Prepare(
        "INSERT INTO custody(owner_company_id, custodian_company_id, valid_from, valid_until, "
        "created_seq) VALUES($1,$2,$3,$4,$5)");
    if (!st.ok()) return ErrorReply(st.status());
    (*st)->Bind(1, owner).Bind(2, custodian).Bind(3, from->ToString()).Bind(4, until->ToString());
    (*st)->Bind(5, *seq);
    if (Status r = (*st)->Run(); !r.ok()) return ErrorReply(r);
    // The custodian's stations pick the owner's fleet up on their next sync.
    auto bump = tx.conn().Prepare("UPDATE cylinders SET rev = $1 WHERE owner_company_id = $2");
    if (!bump.ok()) return ErrorReply(bump.status());
    (*bump)->Bind(1, tx.Revision(*seq)).Bind(2, owner);
    if (Status r = (*bump)->Run(); !r.ok()) return ErrorReply(r);
    return Created(out);
  });
}

void Setup::PostRecall(const Call& call, Store::Done done) {
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
        "VALUES($1,$2,$3,$4)");
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
    auto ev =
        tx.Append({"", "", "recall_added", tx.now(), ToString(who.role), who.subject, out.dump()});
    if (!ev.ok()) return ErrorReply(ev.status());
    return Created(out);
  });
}

void Setup::GetPolicy(const Call&, Store::Done done) {
  done(Okay(json::parse(PolicyToJson(policy_))));
}

}  // namespace pingma::registry
