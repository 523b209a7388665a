// Delivery and handover (送气随瓶安检): couriers, vehicles and real-name customers,
// the handover at the customer's door (the facts gathered here, the decision
// DecideHandover's), and the hazard ledger (隐患台账) that failed door-step safety
// checks feed. DOMAIN.md "Delivery and handover".
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string_view>

#include <fmt/format.h>

#include "cases/handovers.h"
#include "cases/personal_data.h"
#include "cases/queries.h"
#include "cases/supervision.h"
#include "http/fields.h"
#include "pingma/common/handover.h"
#include "pingma/scanner/scan.h"

namespace pingma::registry {

// ---- Real-name data (实名购气) ---------------------------------------------------

// A mainland mobile number: 11 digits starting 13..19.
Status CheckPhone(const std::string& phone) {
  if (phone.size() != 11 ||
      !std::all_of(phone.begin(), phone.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return Status::Invalid("phone must be a mainland mobile number of 11 digits");
  }
  if (phone[0] != '1' || phone[1] < '3') {
    return Status::Invalid("phone must be a mainland mobile number starting 13 to 19");
  }
  return Status::Ok();
}

// A resident ID number (GB 11643-1999): 17 digits and a check character, the ISO
// 7064 MOD 11-2 of the rest. Upper-cases a trailing 'x'.
Status CheckIdNumber(std::string* id) {
  if (id->size() != 18) return Status::Invalid("id_number must have 18 characters");
  if ((*id)[17] == 'x') (*id)[17] = 'X';
  static constexpr int kWeights[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
  static constexpr char kCheck[] = "10X98765432";
  int sum = 0;
  for (int i = 0; i < 17; ++i) {
    const char c = (*id)[static_cast<size_t>(i)];
    if (c < '0' || c > '9') {
      return Status::Invalid("id_number must be 17 digits and a check digit (0-9 or X)");
    }
    sum += (c - '0') * kWeights[i];
  }
  if ((*id)[17] != kCheck[sum % 11]) {
    return Status::Invalid("id_number's check digit is wrong (GB 11643): not a valid ID number");
  }
  return Status::Ok();
}

std::string MaskPhone(const std::string& phone) {
  return phone.substr(0, 3) + "****" + phone.substr(7);
}
std::string MaskIdNumber(const std::string& id) {
  return id.substr(0, 4) + std::string(10, '*') + id.substr(14);
}

std::string KeyedHash(const std::string& key, std::string_view kind, std::string_view value) {
  // The kind keeps a phone from ever matching an ID number.
  const std::string material = std::string(kind) + ':' + std::string(value);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(material.data()), material.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

namespace {

// ---- The door-step safety check (随瓶安检) ----------------------------------------

struct CheckItem {
  const char* item;
  const char* hazard_code;
  const char* zh;
};
constexpr CheckItem kCheckItems[] = {
    {"hose_length", "HOSE_TOO_LONG", "胶管超过2米 / hose longer than 2 m"},
    {"hose_joints", "HOSE_JOINTS", "胶管有接头 / hose has joints"},
    {"hose_through_wall", "HOSE_THROUGH_WALL", "胶管穿墙穿楼板 / hose through a wall or floor"},
    {"regulator_standard", "REGULATOR_NOT_STANDARD", "减压阀不合标准 / regulator not to standard"},
    {"regulator_age", "REGULATOR_EXPIRED", "减压阀超期使用 / regulator past its service life"},
    {"gas_alarm", "NO_GAS_ALARM", "未装燃气报警器 / no gas alarm"},
    {"flame_failure_device", "NO_FLAME_FAILURE_DEVICE", "灶具无熄火保护 / no flame-failure device"},
    {"ventilation", "POOR_VENTILATION", "通风不良 / poor ventilation"},
    {"cylinders_apart", "CYLINDERS_NOT_APART", "备用瓶与在用瓶未分开 / spare and in-use together"},
};
// Measured facts a check may carry instead of (or beside) a verdict; the registry
// judges them by the figures.
constexpr double kMaxHoseLengthM = 2.0;

struct FailedItem {
  const CheckItem* item;
  std::string responsible;  ///< "customer" | "company"
  std::string note;
};

struct SafetyCheck {
  json stored = json::object();  ///< what the event records
  std::vector<FailedItem> failed;
};

Result<SafetyCheck> ParseSafetyCheck(const json* check, bool restaurant, Date today,
                                     const Policy& policy) {
  SafetyCheck out;
  if (!check) return out;
  for (const auto& entry : check->items()) {
    const std::string& key = entry.key();
    if (key == "hose_length_m" || key == "regulator_installed") continue;
    if (std::none_of(std::begin(kCheckItems), std::end(kCheckItems),
                     [&](const CheckItem& c) { return key == c.item; })) {
      return Status::Invalid(fmt::format(
          "safety_check.{} is not a check item (hose_length, hose_joints, hose_through_wall, "
          "regulator_standard, regulator_age, gas_alarm, flame_failure_device, ventilation, "
          "cylinders_apart; measured: hose_length_m, regulator_installed)",
          key));
    }
  }
  std::optional<double> hose_m;
  std::optional<Date> installed;
  PINGMA_RETURN_IF_ERROR(GetNumber(*check, "hose_length_m", Need::kOptional, &hose_m));
  PINGMA_RETURN_IF_ERROR(GetDate(*check, "regulator_installed", Need::kOptional, &installed));
  if (hose_m && !(*hose_m >= 0 && *hose_m < 100)) {
    return Status::Invalid("safety_check.hose_length_m must be from 0 to 100");
  }
  if (installed && today < *installed) {
    return Status::Invalid("safety_check.regulator_installed is after today");
  }
  for (const CheckItem& c : kCheckItems) {
    auto it = check->find(c.item);
    std::string verdict, responsible = "customer", note;
    if (it == check->end() || it->is_null()) {
      const bool measured = (std::string_view(c.item) == "hose_length" && hose_m) ||
                            (std::string_view(c.item) == "regulator_age" && installed);
      if (std::string_view(c.item) == "gas_alarm" && restaurant) {
        return Status::Invalid("safety_check.gas_alarm is required for a restaurant");
      }
      if (!measured) continue;
      verdict = "pass";
    } else if (it->is_string()) {
      verdict = it->get<std::string>();
    } else if (it->is_object()) {
      std::optional<std::string> result, resp, why;
      PINGMA_RETURN_IF_ERROR(GetString(*it, "result", Need::kRequired, &result, 8));
      PINGMA_RETURN_IF_ERROR(GetString(*it, "responsible", Need::kOptional, &resp, 16));
      PINGMA_RETURN_IF_ERROR(GetString(*it, "note", Need::kOptional, &why, 500));
      verdict = *result;
      if (resp) responsible = *resp;
      if (why) note = *why;
    } else {
      return Status::Invalid(fmt::format(
          "safety_check.{} must be \"pass\", \"fail\" or {{result, responsible}}", c.item));
    }
    if (verdict != "pass" && verdict != "fail") {
      return Status::Invalid(fmt::format("safety_check.{} must be pass or fail", c.item));
    }
    if (responsible != "customer" && responsible != "company") {
      return Status::Invalid(
          fmt::format("safety_check.{}.responsible must be customer or company", c.item));
    }
    // A measure past the figure fails the item whatever the courier ticked.
    if (std::string_view(c.item) == "hose_length" && hose_m &&
        ToGrams(*hose_m) > ToGrams(kMaxHoseLengthM)) {
      verdict = "fail";
      if (note.empty()) note = fmt::format("{} m > {} m", *hose_m, kMaxHoseLengthM);
    }
    if (std::string_view(c.item) == "regulator_age" && installed &&
        installed->AddYears(policy.regulator_service_life_years) < today) {
      verdict = "fail";
      if (note.empty()) {
        note = fmt::format("installed {}, service life {} years", installed->ToString(),
                           policy.regulator_service_life_years);
      }
    }
    out.stored[c.item] = verdict;
    if (verdict == "fail") out.failed.push_back({&c, responsible, note});
  }
  if (hose_m) out.stored["hose_length_m"] = *hose_m;
  if (installed) out.stored["regulator_installed"] = installed->ToString();
  return out;
}

// ---- Handover facts (the rules are DecideHandover's) ------------------------------

// A customer and the company it buys from.
struct Customer {
  std::string company_id;
  CustomerFacts facts;
  std::optional<std::pair<double, double>> location;  ///< {lat, lon}
};

Result<std::optional<CourierFacts>> LoadCourier(Conn& conn, const std::string& id) {
  PINGMA_ASSIGN_OR_RETURN(
      auto st, conn.Prepare("SELECT c.company_id, c.vehicle_id, v.plate, c.zones FROM couriers c "
                            "JOIN vehicles v ON v.id = c.vehicle_id WHERE c.id = $1"));
  st->Bind(1, id);
  PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
  if (!row) return std::optional<CourierFacts>();
  CourierFacts c{id, st->Text(0), st->Text(1), st->Text(2), {}};
  json zones = json::parse(st->Text(3), nullptr, false);
  if (zones.is_array()) {
    for (const json& z : zones) {
      if (z.is_string()) c.zones.push_back(z.get<std::string>());
    }
  }
  return std::optional<CourierFacts>(std::move(c));
}

Result<std::optional<Customer>> LoadCustomer(Conn& conn, const std::string& id) {
  PINGMA_ASSIGN_OR_RETURN(
      auto st,
      conn.Prepare(
          "SELECT company_id, district, kind, basement, semi_basement, cylinder_room, outdoor, "
          "lat, lon FROM customers WHERE id = $1"));
  st->Bind(1, id);
  PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
  if (!row) return std::optional<Customer>();
  Customer c;
  c.company_id = st->Text(0);
  c.facts.id = id;
  c.facts.district = st->Text(1);
  c.facts.restaurant = st->Text(2) == "restaurant";
  c.facts.basement = st->Int(3) != 0;
  c.facts.semi_basement = st->Int(4) != 0;
  c.facts.cylinder_room = st->Int(5) != 0;
  c.facts.outdoor = st->Int(6) != 0;
  if (!st->IsNull(7)) c.location = std::pair{st->Double(7), st->Double(8)};
  return std::optional<Customer>(std::move(c));
}

// The customer holding the cylinder since its last allowed handover, if one does.
Status LoadHolder(Conn& conn, HandoverFacts* facts) {
  PINGMA_ASSIGN_OR_RETURN(
      auto st,
      conn.Prepare(
          "SELECT holder_id FROM whereabouts WHERE code = $1 AND holder_kind = 'customer'"));
  st->Bind(1, facts->cylinder->code);
  PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
  if (row) facts->held_by_customer = st->Text(0);
  return Status::Ok();
}

// The cylinder's latest fill, the station that made it, and its latest allowed
// delivery.
Status LoadFills(Conn& conn, HandoverFacts* facts) {
  const std::string& code = facts->cylinder->code;
  PINGMA_ASSIGN_OR_RETURN(
      auto st,
      conn.Prepare("SELECT f.station_id, f.ended_at, f.result, f.seq, e.body FROM fills f "
                   "JOIN events e ON e.seq = f.seq WHERE f.code = $1 ORDER BY f.seq DESC LIMIT 1"));
  st->Bind(1, code);
  PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
  if (!row) return Status::Ok();
  LatestFill fill;
  fill.station_id = st->Text(0);
  fill.ended = Instant{st->Int(1)};
  fill.result = st->Text(2);
  fill.seq = st->Int(3);
  json body = json::parse(st->Text(4), nullptr, false);
  st->Reset();
  if (body.is_object() && body.contains("post_checks") && body["post_checks"].is_object()) {
    for (const auto& c : body["post_checks"].items()) {
      // A verdict that is not text is written out, so that it never reads "pass".
      const json& v = c.value();
      fill.post_checks.emplace_back(c.key(), v.is_string() ? v.get<std::string>() : v.dump());
    }
  }
  PINGMA_ASSIGN_OR_RETURN(auto station, LoadStation(conn, fill.station_id));
  fill.station = std::move(station);
  facts->latest_fill = std::move(fill);

  PINGMA_ASSIGN_OR_RETURN(
      auto last,
      conn.Prepare("SELECT MAX(seq) FROM handovers WHERE code = $1 AND direction = 'deliver' "
                   "AND decision = 'allow'"));
  last->Bind(1, code);
  PINGMA_ASSIGN_OR_RETURN(auto lrow, last->Step());
  if (lrow && !last->IsNull(0)) facts->last_delivery_seq = last->Int(0);
  last->Reset();
  return Status::Ok();
}

// The models of the cylinders at the customer now, leaving out the one handed over.
Status LoadOnSite(Conn& conn, HandoverFacts* facts) {
  PINGMA_ASSIGN_OR_RETURN(
      auto st,
      conn.Prepare("SELECT c.model FROM whereabouts w JOIN cylinders c ON c.code = w.code "
                   "WHERE w.holder_kind = 'customer' AND w.holder_id = $1 AND w.code <> $2"));
  st->Bind(1, facts->customer.id).Bind(2, facts->cylinder->code);
  while (true) {
    PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
    if (!row) return Status::Ok();
    facts->on_site_models.push_back(st->Text(0));
  }
}

// What the decision on a registered cylinder reads beyond the courier and the
// customer: who holds it, for a collection; for a delivery, its recalls, its fill
// and what the customer has on site.
Status LoadCylinderFacts(Conn& conn, HandoverFacts* facts) {
  if (facts->direction == HandoverDirection::kCollect) return LoadHolder(conn, facts);
  PINGMA_ASSIGN_OR_RETURN(auto recalls, LoadRecalls(conn, facts->cylinder->manufacturer));
  facts->recalls = std::move(recalls);
  PINGMA_RETURN_IF_ERROR(LoadFills(conn, facts));
  return LoadOnSite(conn, facts);
}

struct HandoverRequest {
  std::string event_id;
  std::string scan;
  ScanKey key;
  std::string customer_id;
  std::string vehicle;
  std::string direction;
  std::optional<std::pair<double, double>> place;  ///< {lat, lon}
  json location;                                   ///< the same, as the log's side keeps it
  json body;  ///< as received; the job reads the safety check from it
};

json HazardJson(sql::Statement& s) {
  json h = {{"id", s.Text(0)},
            {"code", s.Text(1)},
            {"item", s.Text(2)},
            {"cylinder", s.Text(3)},
            {"customer_id", s.Text(4)},
            {"company_id", s.Text(5)},
            {"responsible", s.Text(6)},
            {"opened_by", s.Text(7)},
            {"opened_at", Instant{s.Int(8)}.ToString()},
            {"deadline", s.Text(9)},
            {"state", s.Text(10)}};
  if (!s.IsNull(11)) {
    h["closed_by"] = s.Text(11);
    h["closed_at"] = Instant{s.Int(12)}.ToString();
    h["closed_by_actor"] = s.Text(13);
    h["how"] = s.Text(14);
  }
  return h;
}

constexpr const char* kHazardColumns =
    "id, code, item, cylinder, customer_id, company_id, responsible, opened_by, opened_at, "
    "deadline, state, closed_by, closed_at, closed_by_actor, how";

}  // namespace

// ---- Set-up -------------------------------------------------------------------------

void Handovers::PostVehicle(const Call& call, Store::Done done) {
  auto body = ParseBody(call.request->body);
  if (!body.ok()) return done(ErrorReply(body.status()));
  std::string id, company_id;
  std::optional<std::string> plate, kind;
  Status s = GetId(*body, "id", &id);
  if (s.ok()) s = GetId(*body, "company_id", &company_id);
  if (s.ok()) s = GetString(*body, "plate", Need::kRequired, &plate, 32);
  if (s.ok()) s = GetString(*body, "kind", Need::kOptional, &kind, 64);
  // Its JT/T 808 terminal, by the phone number the terminal sends in every header.
  const json* terminal = nullptr;
  std::optional<std::string> terminal_phone;
  if (s.ok()) s = GetObject(*body, "terminal", Need::kOptional, &terminal);
  if (s.ok() && terminal) s = GetString(*terminal, "phone", Need::kRequired, &terminal_phone, 20);
  if (s.ok() && terminal_phone) {
    auto normal = NormalTerminalPhone(*terminal_phone);
    if (normal.ok()) {
      terminal_phone = std::move(*normal);
    } else {
      s = Status::Invalid("terminal.phone: " + normal.status().message());
    }
  }
  if (!s.ok()) return done(ErrorReply(s));
  if (!ActsForCompany(call.who, company_id)) {
    return done(ErrorReply(Status::PermissionDenied("a company may add vehicles only for itself")));
  }
  WriteSetup(std::move(done), [=, who = call.who](WriteTx& tx) -> Reply {
    auto company = Exists(tx.conn(), "companies", company_id);
    if (!company.ok()) return ErrorReply(company.status());
    if (!*company) return ErrorReply(Status::Invalid(fmt::format("no company {}", company_id)));
    auto exists = Exists(tx.conn(), "vehicles", id);
    if (!exists.ok()) return ErrorReply(exists.status());
    if (*exists) return ErrorReply(Status::Conflict(fmt::format("vehicle {} already exists", id)));
    if (terminal_phone) {
      auto taken = tx.conn().Prepare("SELECT 1 FROM vehicles WHERE terminal_phone = $1");
      if (!taken.ok()) return ErrorReply(taken.status());
      (*taken)->Bind(1, *terminal_phone);
      auto row = (*taken)->Step();
      if (!row.ok()) return ErrorReply(row.status());
      (*taken)->Reset();
      if (*row) {
        return ErrorReply(Status::Conflict(
            fmt::format("terminal phone {} is another vehicle's already", *terminal_phone)));
      }
    }
    auto st = tx.conn().Prepare(
        "INSERT INTO vehicles(id, company_id, plate, kind, terminal_phone) "
        "VALUES($1,$2,$3,$4,$5)");
    if (!st.ok()) return ErrorReply(st.status());
    (*st)->Bind(1, id).Bind(2, company_id).Bind(3, *plate).Bind(4, kind.value_or(""));
    (*st)->Bind(5, terminal_phone);
    if (Status r = (*st)->Run(); !r.ok()) return ErrorReply(r);
    json out = {
        {"id", id}, {"company_id", company_id}, {"plate", *plate}, {"kind", kind.value_or("")}};
    if (terminal_phone) out["terminal"] = {{"phone", *terminal_phone}};
    auto ev = tx.Append(
        {"", "", "vehicle_registered", tx.now(), ToString(who.role), who.subject, out.dump()});
    if (!ev.ok()) return ErrorReply(ev.status());
    return Created(out);
  });
}

void Handovers::PostCourier(const Call& call, Store::Done done) {
  auto body = ParseBody(call.request->body);
  if (!body.ok()) return done(ErrorReply(body.status()));
  std::string id, company_id, vehicle;
  std::optional<std::string> name, number;
  std::optional<Date> valid_until;
  std::vector<std::string> zones;
  Status s = GetId(*body, "id", &id);
  if (s.ok()) s = GetId(*body, "company_id", &company_id);
  if (s.ok()) s = GetString(*body, "name", Need::kRequired, &name);
  if (s.ok()) s = GetId(*body, "vehicle", &vehicle);
  if (s.ok()) {
    auto z = body->find("zones");
    if (z == body->end() || !z->is_array() || z->empty() || z->size() > 64) {
      s = Status::Invalid("zones must be a list of 1 to 64 districts or area ids");
    } else {
      for (const json& d : *z) {
        if (!d.is_string() || d.get<std::string>().empty() || d.get<std::string>().size() > 64) {
          s = Status::Invalid("each zone must be a district name or an area id of 1 to 64 bytes");
          break;
        }
        if (s = CheckText("zones", d.get_ref<const std::string&>()); !s.ok()) break;
        zones.push_back(d.get<std::string>());
      }
    }
  }
  const json* certificate = nullptr;
  if (s.ok()) s = GetObject(*body, "certificate", Need::kOptional, &certificate);
  if (s.ok() && certificate) s = GetString(*certificate, "number", Need::kRequired, &number);
  if (s.ok() && certificate) {
    s = GetDate(*certificate, "valid_until", Need::kRequired, &valid_until);
  }
  if (!s.ok()) return done(ErrorReply(s));
  if (!ActsForCompany(call.who, company_id)) {
    return done(ErrorReply(Status::PermissionDenied("a company may add couriers only for itself")));
  }
  WriteSetup(std::move(done), [=, who = call.who](WriteTx& tx) -> Reply {
    auto company = Exists(tx.conn(), "companies", company_id);
    if (!company.ok()) return ErrorReply(company.status());
    if (!*company) return ErrorReply(Status::Invalid(fmt::format("no company {}", company_id)));
    auto exists = Exists(tx.conn(), "couriers", id);
    if (!exists.ok()) return ErrorReply(exists.status());
    if (*exists) return ErrorReply(Status::Conflict(fmt::format("courier {} already exists", id)));
    // 人车对应: the vehicle is the company's own, and no other courier's.
    auto v = tx.conn().Prepare("SELECT company_id FROM vehicles WHERE id = $1");
    if (!v.ok()) return ErrorReply(v.status());
    (*v)->Bind(1, vehicle);
    auto vrow = (*v)->Step();
    if (!vrow.ok()) return ErrorReply(vrow.status());
    if (!*vrow || (*v)->Text(0) != company_id) {
      return ErrorReply(
          Status::Invalid(fmt::format("no vehicle {} of company {}", vehicle, company_id)));
    }
    (*v)->Reset();
    auto bound = tx.conn().Prepare("SELECT id FROM couriers WHERE vehicle_id = $1");
    if (!bound.ok()) return ErrorReply(bound.status());
    (*bound)->Bind(1, vehicle);
    auto brow = (*bound)->Step();
    if (!brow.ok()) return ErrorReply(brow.status());
    if (*brow) {
      return ErrorReply(Status::Conflict(
          fmt::format("vehicle {} is already bound to courier {}", vehicle, (*bound)->Text(0))));
    }
    (*bound)->Reset();
    auto st = tx.conn().Prepare(
        "INSERT INTO couriers(id, company_id, name, vehicle_id, zones, cert_number, "
        "cert_valid_until) VALUES($1,$2,$3,$4,$5,$6,$7)");
    if (!st.ok()) return ErrorReply(st.status());
    (*st)->Bind(1, id).Bind(2, company_id).Bind(3, *name).Bind(4, vehicle);
    (*st)->Bind(5, json(zones).dump()).Bind(6, number);
    if (valid_until) {
      (*st)->Bind(7, valid_until->ToString());
    } else {
      (*st)->BindNull(7);
    }
    if (Status r = (*st)->Run(); !r.ok()) return ErrorReply(r);
    json out = {{"id", id},
                {"company_id", company_id},
                {"name", *name},
                {"vehicle", vehicle},
                {"zones", zones}};
    if (number) {
      out["certificate"] = {{"number", *number}, {"valid_until", valid_until->ToString()}};
    }
    auto ev = tx.Append(
        {"", "", "courier_registered", tx.now(), ToString(who.role), who.subject, out.dump()});
    if (!ev.ok()) return ErrorReply(ev.status());
    return Created(out);
  });
}

void Handovers::PostCustomer(const Call& call, Store::Done done) {
  auto body = ParseBody(call.request->body);
  if (!body.ok()) return done(ErrorReply(body.status()));
  std::string id, company_id;
  std::optional<std::string> name, phone, id_number, address, district, kind;
  std::optional<bool> basement, semi_basement, cylinder_room, outdoor;
  const json* site = nullptr;
  Status s = GetId(*body, "id", &id);
  if (s.ok()) s = GetId(*body, "company_id", &company_id);
  if (s.ok()) s = GetString(*body, "name", Need::kRequired, &name, 128);
  if (s.ok()) s = GetString(*body, "phone", Need::kRequired, &phone, 32);
  if (s.ok()) s = CheckPhone(*phone);
  if (s.ok()) s = GetString(*body, "id_number", Need::kRequired, &id_number, 32);
  if (s.ok()) s = CheckIdNumber(&*id_number);
  if (s.ok()) s = GetString(*body, "address", Need::kRequired, &address, 512);
  if (s.ok()) s = GetString(*body, "district", Need::kRequired, &district, 64);
  if (s.ok()) s = GetString(*body, "kind", Need::kRequired, &kind, 16);
  if (s.ok() && *kind != "household" && *kind != "restaurant") {
    s = Status::Invalid("kind must be household or restaurant");
  }
  if (s.ok()) s = GetObject(*body, "site", Need::kRequired, &site);
  if (s.ok()) s = GetBool(*site, "basement", Need::kRequired, &basement);
  if (s.ok()) s = GetBool(*site, "semi_basement", Need::kRequired, &semi_basement);
  if (s.ok()) s = GetBool(*site, "cylinder_room", Need::kRequired, &cylinder_room);
  if (s.ok()) s = GetBool(*site, "outdoor", Need::kOptional, &outdoor);
  std::optional<std::pair<double, double>> location;
  if (s.ok()) s = GetLatLon(*body, "location", &location);
  if (!s.ok()) return done(ErrorReply(s));
  if (!ActsForCompany(call.who, company_id)) {
    return done(
        ErrorReply(Status::PermissionDenied("a company may add customers only for itself")));
  }
  if (settings_.customer_hash_key.empty()) {
    return done(ErrorReply(Status::Unavailable("the registry has no customer hash key")));
  }
  WriteSetup(std::move(done), [=, who = call.who](WriteTx& tx) -> Reply {
    auto company = Exists(tx.conn(), "companies", company_id);
    if (!company.ok()) return ErrorReply(company.status());
    if (!*company) return ErrorReply(Status::Invalid(fmt::format("no company {}", company_id)));
    auto exists = Exists(tx.conn(), "customers", id);
    if (!exists.ok()) return ErrorReply(exists.status());
    if (*exists) return ErrorReply(Status::Conflict(fmt::format("customer {} already exists", id)));
    const std::string phone_hash = KeyedHash(settings_.customer_hash_key, "phone", *phone);
    const std::string id_hash = KeyedHash(settings_.customer_hash_key, "id_number", *id_number);
    auto st = tx.conn().Prepare(
        "INSERT INTO customers(id, company_id, name, phone_hash, phone_masked, id_hash, "
        "id_masked, address, district, kind, basement, semi_basement, cylinder_room, outdoor, "
        "lat, lon) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)");
    if (!st.ok()) return ErrorReply(st.status());
    (*st)->Bind(1, id).Bind(2, company_id).Bind(3, *name);
    (*st)->BindBlob(4, phone_hash.data(), phone_hash.size()).Bind(5, MaskPhone(*phone));
    (*st)->BindBlob(6, id_hash.data(), id_hash.size()).Bind(7, MaskIdNumber(*id_number));
    (*st)->Bind(8, *address).Bind(9, *district).Bind(10, *kind);
    (*st)->Bind(11, *basement ? 1 : 0).Bind(12, *semi_basement ? 1 : 0);
    (*st)->Bind(13, *cylinder_room ? 1 : 0).Bind(14, outdoor.value_or(false) ? 1 : 0);
    if (location) {
      (*st)->Bind(15, location->first).Bind(16, location->second);
    } else {
      (*st)->BindNull(15).BindNull(16);
    }
    if (Status r = (*st)->Run(); !r.ok()) return ErrorReply(r);
    const json site_out = {{"basement", *basement},
                           {"semi_basement", *semi_basement},
                           {"cylinder_room", *cylinder_room},
                           {"outdoor", outdoor.value_or(false)}};
    // The log keeps no name or address: events are shown more widely than the
    // customer table (PIPL: only what each reader needs).
    json event = {{"id", id},
                  {"company_id", company_id},
                  {"phone", MaskPhone(*phone)},
                  {"id_number", MaskIdNumber(*id_number)},
                  {"district", *district},
                  {"kind", *kind},
                  {"site", site_out}};
    auto ev = tx.Append(
        {"", "", "customer_registered", tx.now(), ToString(who.role), who.subject, event.dump()});
    if (!ev.ok()) return ErrorReply(ev.status());
    json out = event;
    out["name"] = *name;
    out["address"] = *address;
    // Like the address, the customer's place stays out of the log.
    if (location) out["location"] = {{"lat", location->first}, {"lon", location->second}};
    return Created(out);
  });
}

// ---- Handovers -------------------------------------------------------------------

void Handovers::PostHandover(const Call& call, Store::Done done) {
  auto parsed = ParseBody(call.request->body);
  if (!parsed.ok()) return done(ErrorReply(parsed.status()));
  const json& body = *parsed;
  HandoverRequest r;
  std::optional<std::string> scan, code, vehicle, direction;
  Status s = GetUuid(body, "event_id", &r.event_id);
  if (s.ok()) s = GetScanText(body, "scan", Need::kOptional, &scan, 512);
  if (s.ok()) s = GetString(body, "code", Need::kOptional, &code, 64);
  if (s.ok() && !scan && !code) s = Status::Invalid("give the cylinder as 'scan' or 'code'");
  if (s.ok()) {
    r.scan = scan ? *scan : *code;
    auto key = ParseScan(r.scan);
    if (key.ok()) {
      r.key = std::move(*key);
    } else {
      s = Status::Invalid("the scan is not a cylinder code: " + key.status().message());
    }
  }
  if (s.ok()) s = GetId(body, "customer_id", &r.customer_id);
  if (s.ok()) s = GetString(body, "vehicle", Need::kRequired, &vehicle, 64);
  if (s.ok()) s = GetString(body, "direction", Need::kRequired, &direction, 16);
  if (s.ok() && *direction != "deliver" && *direction != "collect") {
    s = Status::Invalid("direction must be deliver or collect");
  }
  if (s.ok()) s = GetLatLon(body, "location", &r.place);
  if (s.ok() && r.place) r.location = {{"lat", r.place->first}, {"lon", r.place->second}};
  const json* check_in = nullptr;
  if (s.ok()) {
    s = GetObject(body, "safety_check", *direction == "deliver" ? Need::kRequired : Need::kOptional,
                  &check_in);
  }
  if (!s.ok()) return done(ErrorReply(s));
  r.vehicle = *vehicle;
  r.direction = *direction;
  r.body = body;

  Write(std::move(done), [this, r = std::move(r), who = call.who](WriteTx& tx) -> Reply {
    Conn& conn = tx.conn();
    // A handover sent again by its courier gets its first answer; another
    // courier's event_id gets nothing of it (customer, hazards, custody).
    auto dup = conn.Prepare("SELECT answer, courier_id FROM handovers WHERE event_id = $1");
    if (!dup.ok()) return ErrorReply(dup.status());
    (*dup)->Bind(1, r.event_id);
    auto seen = (*dup)->Step();
    if (!seen.ok()) return ErrorReply(seen.status());
    if (*seen) {
      json answer = json::parse((*dup)->Text(0), nullptr, false);
      const bool theirs = (*dup)->Text(1) == who.subject;
      (*dup)->Reset();
      if (!theirs) return IdInUse("event_id " + r.event_id);
      answer["duplicate"] = true;
      return Okay(std::move(answer));
    }
    (*dup)->Reset();

    HandoverFacts facts;
    auto courier = LoadCourier(conn, who.subject);
    if (!courier.ok()) return ErrorReply(courier.status());
    if (!*courier) {
      return ErrorReply(Status::PermissionDenied(
          fmt::format("this token is for courier {}, who is not registered", who.subject)));
    }
    facts.courier = std::move(**courier);
    const CourierFacts& cr = facts.courier;
    auto customer = LoadCustomer(conn, r.customer_id);
    if (!customer.ok()) return ErrorReply(customer.status());
    if (!*customer || (*customer)->company_id != cr.company_id) {
      return ErrorReply(Status::Invalid(
          fmt::format("no customer {} of company {}", r.customer_id, cr.company_id)));
    }
    facts.customer = std::move((*customer)->facts);
    if (const auto& at = (*customer)->location) {
      auto in_area = supervision_->InZoneArea(conn, cr, at->first, at->second);
      if (!in_area.ok()) return ErrorReply(in_area.status());
      facts.customer.in_zone_area = *in_area;
    }
    const CustomerFacts& cu = facts.customer;
    const Instant now = tx.now();
    const Date today = now.LocalDate(policy_.utc_offset_minutes);
    const auto found = r.body.find("safety_check");
    const json* safety_check = found != r.body.end() && found->is_object() ? &*found : nullptr;
    auto check = ParseSafetyCheck(safety_check, cu.restaurant, today, policy_);
    if (!check.ok()) return ErrorReply(check.status());

    auto resolved = ResolveKey(conn, r.key, &facts.scanned);
    if (!resolved.ok()) return ErrorReply(resolved.status());
    if (*resolved) {
      if (Status guarded = GuardCylinder(tx, **resolved); !guarded.ok()) return ErrorReply(guarded);
      auto loaded = LoadCylinder(conn, **resolved, /*with_carriers=*/false);
      if (!loaded.ok()) return ErrorReply(loaded.status());
      if (*loaded) facts.cylinder = std::move((*loaded)->cylinder);
    }
    const std::string subject = facts.cylinder ? facts.cylinder->code : facts.scanned;
    facts.direction =
        r.direction == "collect" ? HandoverDirection::kCollect : HandoverDirection::kDeliver;
    facts.vehicle = r.vehicle;
    facts.now = now;
    if (facts.cylinder) {
      if (Status fs = LoadCylinderFacts(conn, &facts); !fs.ok()) return ErrorReply(fs);
    }
    const HandoverDecision decision = DecideHandover(policy_, facts);
    const bool allowed = decision.allowed();
    json reasons = json::array();
    for (const Reason& reason : decision.reasons) {
      reasons.push_back({{"code", ToString(reason.code)}, {"message", reason.message}});
    }

    json event = r.body;
    event.erase("event_id");
    event.erase("scan");
    event.erase("code");
    // Where it happened is the courier's personal data: kept outside the log for
    // position_retention_days; the log keeps a reference and a salted hash.
    event.erase("location");
    if (!r.location.is_null()) {
      auto ref = KeepPersonalData(tx, subject, "location", r.location);
      if (!ref.ok()) return ErrorReply(ref.status());
      event["location_ref"] = std::move(*ref);
    }
    event["scan"] = r.scan;
    event["courier_id"] = cr.id;
    event["company_id"] = cr.company_id;
    event["decision"] = allowed ? "allow" : "block";
    event["reasons"] = json::array();
    for (const json& reason : reasons) event["reasons"].push_back(reason["code"]);
    if (safety_check) event["safety_check"] = check->stored;
    json custody = nullptr;
    if (allowed) {
      custody = r.direction == "deliver" ? json{{"holder", "customer"}, {"id", cu.id}}
                                         : json{{"holder", "company"}, {"id", cr.company_id}};
      event["custody"] = custody;
    }
    auto seq = tx.Append(
        {r.event_id, subject, "handover", now, ToString(who.role), who.subject, event.dump()});
    if (!seq.ok()) return ErrorReply(seq.status());

    // Each failed item opens a hazard, blocked delivery or not: the check was made
    // at the door either way. Ids follow the handover's place in the log.
    json hazards = json::array();
    const Date deadline = today.AddDays(policy_.hazard_deadline_days);
    for (size_t i = 0; i < check->failed.size(); ++i) {
      const FailedItem& f = check->failed[i];
      const std::string id = fmt::format("HZ-{}-{}", *seq, i + 1);
      json h = {{"id", id},
                {"code", f.item->hazard_code},
                {"item", f.item->item},
                {"cylinder", subject},
                {"customer_id", cu.id},
                {"company_id", cr.company_id},
                {"responsible", f.responsible},
                {"opened_by", cr.id},
                {"opened_at", now.ToString()},
                {"deadline", deadline.ToString()},
                {"state", "open"},
                {"handover_event_id", r.event_id}};
      if (!f.note.empty()) h["note"] = f.note;
      auto st = conn.Prepare(
          "INSERT INTO hazards(id, code, item, cylinder, customer_id, company_id, responsible, "
          "opened_by, opened_at, deadline, state) VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,'open')");
      if (!st.ok()) return ErrorReply(st.status());
      (*st)->Bind(1, id).Bind(2, f.item->hazard_code).Bind(3, f.item->item).Bind(4, subject);
      (*st)->Bind(5, cu.id).Bind(6, cr.company_id).Bind(7, f.responsible).Bind(8, cr.id);
      (*st)->Bind(9, now.unix_ms).Bind(10, deadline.ToString());
      if (Status rs = (*st)->Run(); !rs.ok()) return ErrorReply(rs);
      auto ev =
          tx.Append({"", subject, "hazard_opened", now, ToString(who.role), who.subject, h.dump()});
      if (!ev.ok()) return ErrorReply(ev.status());
      hazards.push_back(std::move(h));
    }
    if (allowed && facts.cylinder) {
      auto st = conn.Prepare(
          "INSERT INTO whereabouts(code, holder_kind, holder_id, since_seq) VALUES($1,$2,$3,$4) "
          "ON CONFLICT(code) DO UPDATE SET holder_kind = excluded.holder_kind, "
          "holder_id = excluded.holder_id, since_seq = excluded.since_seq");
      if (!st.ok()) return ErrorReply(st.status());
      (*st)->Bind(1, subject).Bind(2, custody["holder"].get<std::string>());
      (*st)->Bind(3, custody["id"].get<std::string>()).Bind(4, *seq);
      if (Status rs = (*st)->Run(); !rs.ok()) return ErrorReply(rs);
    }
    // Supervision's alerts flag the handover; they do not change its decision.
    auto alerts = supervision_->HandoverAlerts(
        tx, {r.event_id, cr.id, cr.company_id, cr.vehicle_id, cu.id, r.place, now});
    if (!alerts.ok()) return ErrorReply(alerts.status());
    json answer = {{"event_id", r.event_id},   {"code", subject},
                   {"direction", r.direction}, {"decision", allowed ? "allow" : "block"},
                   {"reasons", reasons},       {"hazards_opened", hazards},
                   {"custody", custody},       {"alerts", std::move(*alerts)},
                   {"duplicate", false}};
    auto st = conn.Prepare(
        "INSERT INTO handovers(event_id, code, customer_id, courier_id, direction, decision, "
        "answer, seq) VALUES($1,$2,$3,$4,$5,$6,$7,$8)");
    if (!st.ok()) return ErrorReply(st.status());
    (*st)->Bind(1, r.event_id).Bind(2, subject).Bind(3, cu.id).Bind(4, cr.id);
    (*st)->Bind(5, r.direction).Bind(6, allowed ? "allow" : "block").Bind(7, answer.dump());
    (*st)->Bind(8, *seq);
    if (Status rs = (*st)->Run(); !rs.ok()) return ErrorReply(rs);
    return Created(std::move(answer));
  });
}

// ---- The hazard ledger (隐患台账) -------------------------------------------------

void Handovers::GetHazards(const Call& call, Store::Done done) {
  std::string state;
  if (auto it = call.query.find("state"); it != call.query.end()) {
    state = it->second;
    if (state != "open" && state != "closed") {
      return done(ErrorReply(Status::Invalid("state must be open or closed")));
    }
  }
  bool overdue = false;
  if (auto it = call.query.find("overdue"); it != call.query.end()) {
    if (it->second != "true" && it->second != "false") {
      return done(ErrorReply(Status::Invalid("overdue must be true or false")));
    }
    overdue = it->second == "true";
  }
  auto page_limit = PageLimit(call.query, 100, 1000);
  if (!page_limit.ok()) return done(ErrorReply(page_limit.status()));
  const std::int64_t limit = *page_limit;
  // The ledger's order: open hazards by deadline (so those past it, the overdue,
  // come first), then closed ones by deadline; the cursor is the last one's place
  // in it, "open|closed:DEADLINE:ID".
  std::string phase = state.empty() ? "open" : state;
  std::string after_deadline, after_id;
  if (auto it = call.query.find("cursor"); it != call.query.end() && !it->second.empty()) {
    const std::string& c = it->second;
    const size_t a = c.find(':');
    const size_t b = a == std::string::npos ? a : c.find(':', a + 1);
    const std::string cursor_phase = c.substr(0, a);
    if (b == std::string::npos || (cursor_phase != "open" && cursor_phase != "closed") ||
        (!state.empty() && cursor_phase != state) ||
        !Date::Parse(c.substr(a + 1, b - a - 1)).ok()) {
      return done(ErrorReply(
          Status::Malformed("cursor must be the next_cursor of an earlier page of the ledger")));
    }
    phase = cursor_phase;
    after_deadline = c.substr(a + 1, b - a - 1);
    after_id = c.substr(b + 1);
  }
  const Date today = clock_->Now().LocalDate(policy_.utc_offset_minutes);
  const Principal who = call.who;
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    // Overdue: still open after its deadline day (valid through the deadline).
    std::string sql = fmt::format(
        "SELECT {} FROM hazards WHERE state = $2 AND (deadline, id) > ($4, $5)", kHazardColumns);
    if (who.role == Role::kCompany) sql += " AND company_id = $1";
    if (who.role == Role::kCourier) sql += " AND opened_by = $1";
    if (overdue) sql += " AND deadline < $3";
    sql += " ORDER BY deadline, id LIMIT $6";
    auto st = conn.Prepare(sql);
    if (!st.ok()) return ErrorReply(st.status());
    json list = json::array();
    std::string next;
    std::string from_deadline = after_deadline, from_id = after_id;
    for (std::string p = phase; !p.empty();) {
      (*st)->Reset();
      if (who.role == Role::kCompany || who.role == Role::kCourier) (*st)->Bind(1, who.subject);
      (*st)->Bind(2, p).Bind(3, today.ToString()).Bind(4, from_deadline).Bind(5, from_id);
      (*st)->Bind(6, limit - static_cast<std::int64_t>(list.size()));
      while (true) {
        auto row = (*st)->Step();
        if (!row.ok()) return ErrorReply(row.status());
        if (!*row) break;
        json h = HazardJson(**st);
        h["overdue"] = h["state"] == "open" && h["deadline"].get<std::string>() < today.ToString();
        next = fmt::format("{}:{}:{}", p, h["deadline"].get<std::string>(),
                           h["id"].get<std::string>());
        list.push_back(std::move(h));
      }
      if (static_cast<std::int64_t>(list.size()) == limit) break;
      // The closed ones follow the open, unless a state or overdue was asked for.
      p = p == "open" && state.empty() && !overdue ? "closed" : "";
      from_deadline.clear();
      from_id.clear();
    }
    json out = {{"hazards", list}, {"next_cursor", nullptr}};
    if (static_cast<std::int64_t>(list.size()) == limit) out["next_cursor"] = next;
    return Okay(out);
  });
}

void Handovers::CloseHazard(const Call& call, Store::Done done) {
  auto body = ParseBody(call.request->body);
  if (!body.ok()) return done(ErrorReply(body.status()));
  std::optional<std::string> closed_by, how;
  Status s = GetString(*body, "closed_by", Need::kRequired, &closed_by, 128);
  if (s.ok()) s = GetString(*body, "how", Need::kRequired, &how, 2000);
  if (!s.ok()) return done(ErrorReply(s));
  Write(std::move(done), [=, id = call.params[0], who = call.who](WriteTx& tx) -> Reply {
    Conn& conn = tx.conn();
    auto st = conn.Prepare(fmt::format("SELECT {} FROM hazards WHERE id = $1", kHazardColumns));
    if (!st.ok()) return ErrorReply(st.status());
    (*st)->Bind(1, id);
    auto row = (*st)->Step();
    if (!row.ok()) return ErrorReply(row.status());
    if (!*row) return ErrorReply(Status::NotFound(fmt::format("no hazard {}", id)));
    json h = HazardJson(**st);
    (*st)->Reset();
    const std::string company = h["company_id"];
    if (who.role == Role::kCompany && who.subject != company) {
      return ErrorReply(Status::NotFound(fmt::format("no hazard {}", id)));
    }
    if (who.role == Role::kCourier) {
      auto courier = LoadCourier(conn, who.subject);
      if (!courier.ok()) return ErrorReply(courier.status());
      if (!*courier || (*courier)->company_id != company) {
        return ErrorReply(Status::NotFound(fmt::format("no hazard {}", id)));
      }
    }
    if (h["state"] != "open") {
      return ErrorReply(Status::Conflict(fmt::format("hazard {} is already closed", id)));
    }
    const std::string actor = fmt::format("{}:{}", ToString(who.role), who.subject);
    auto upd = conn.Prepare(
        "UPDATE hazards SET state = 'closed', closed_by = $1, closed_at = $2, closed_by_actor = "
        "$3, "
        "how = $4 WHERE id = $5");
    if (!upd.ok()) return ErrorReply(upd.status());
    (*upd)->Bind(1, *closed_by).Bind(2, tx.now().unix_ms).Bind(3, actor).Bind(4, *how);
    (*upd)->Bind(5, id);
    if (Status rs = (*upd)->Run(); !rs.ok()) return ErrorReply(rs);
    h["state"] = "closed";
    h["closed_by"] = *closed_by;
    h["closed_at"] = tx.now().ToString();
    h["closed_by_actor"] = actor;
    h["how"] = *how;
    auto ev = tx.Append({"", h["cylinder"].get<std::string>(), "hazard_closed", tx.now(),
                         ToString(who.role), who.subject,
                         json{{"id", id}, {"closed_by", *closed_by}, {"how", *how}}.dump()});
    if (!ev.ok()) return ErrorReply(ev.status());
    return Okay(h);
  });
}

}  // namespace pingma::registry
