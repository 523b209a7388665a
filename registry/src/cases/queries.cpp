// Store queries shared by the use cases, and the cylinder's JSON form.
#include <fmt/format.h>

#include "cases/queries.h"
#include "pingma/common/cylinder_json.h"
#include "pingma/scanner/scan.h"

namespace pingma::registry {
namespace {

constexpr const char* kCylinderColumns =
    "code, owner_company_id, model, phase, manufacturer, serial, manufactured, tare_kg, "
    "water_capacity_l, allowed_fill_kg, design_life_years, registration_no, registration_state, "
    "last_inspection, last_inspection_result, next_inspection_due, assessment_date, "
    "assessment_passed, assessment_extends_until, state, state_reason, state_since, "
    "last_fill_station, last_fill_at, rev";

std::optional<Date> OptDate(const sql::Statement& st, int col) {
  if (st.IsNull(col)) return std::nullopt;
  auto d = Date::Parse(st.Text(col));
  return d.ok() ? std::optional<Date>(*d) : std::nullopt;
}

}  // namespace

Result<bool> Exists(Conn& conn, const char* table, const std::string& id) {
  PINGMA_ASSIGN_OR_RETURN(auto st,
                          conn.Prepare(fmt::format("SELECT 1 FROM {} WHERE id = $1", table)));
  st->Bind(1, id);
  PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
  return row;
}

CylinderRow ReadCylinderRow(const sql::Statement& s) {
  CylinderRow r;
  Cylinder& c = r.cylinder;
  c.code = s.Text(0);
  c.owner_company_id = s.Text(1);
  c.model = s.Text(2);
  auto phase = ParsePhase(s.Text(3));
  c.phase = phase.ok() ? *phase : Phase::kGas;
  c.manufacturer = s.Text(4);
  c.serial = s.Text(5);
  auto ym = YearMonth::Parse(s.Text(6));
  if (ym.ok()) c.manufactured = *ym;
  c.tare_kg = s.Double(7);
  if (!s.IsNull(8)) r.water_capacity_l = s.Double(8);
  if (!s.IsNull(9)) c.allowed_fill_kg = s.Double(9);
  if (!s.IsNull(10)) c.design_life_years = static_cast<int>(s.Int(10));
  c.registration_no = s.Text(11);
  r.registration_state = s.Text(12);
  c.last_inspection = OptDate(s, 13);
  if (!s.IsNull(14)) {
    auto res = ParseInspectionResult(s.Text(14));
    if (res.ok()) c.last_inspection_result = *res;
  }
  c.next_inspection_due = OptDate(s, 15);
  if (auto date = OptDate(s, 16)) {
    c.assessment = Assessment{*date, s.Int(17) != 0, OptDate(s, 18)};
  }
  auto state = ParseCylinderState(s.Text(19));
  c.state = state.ok() ? *state : CylinderState::kActive;
  r.state_reason = s.OptText(20);
  if (!s.IsNull(21)) r.state_since = Instant{s.Int(21)};
  if (!s.IsNull(22)) r.last_fill = Sighting{s.Text(22), Instant{s.Int(23)}};
  r.rev = s.Int(24);
  return r;
}

Status GuardCylinder(WriteTx& tx, const std::string& code) {
  if (tx.conn().dialect() == sql::Dialect::kSqlite) return Status::Ok();
  PINGMA_ASSIGN_OR_RETURN(auto st,
                          tx.conn().Prepare("SELECT (SELECT MAX(seq) FROM events WHERE code = $1) "
                                            "FROM cylinders WHERE code = $1 FOR UPDATE"));
  st->Bind(1, code);
  PINGMA_ASSIGN_OR_RETURN(bool row, st->Step());
  if (row && !st->IsNull(0)) tx.NumberAfter(st->Int(0));
  return Status::Ok();
}

Result<std::optional<CylinderRow>> LoadCylinder(Conn& conn, const std::string& code,
                                                bool with_carriers) {
  static const std::string sql =
      fmt::format("SELECT {} FROM cylinders WHERE code = $1", kCylinderColumns);
  PINGMA_ASSIGN_OR_RETURN(auto st, conn.Prepare(sql));
  sql::Statement& s = *st;
  s.Bind(1, code);
  PINGMA_ASSIGN_OR_RETURN(auto row, s.Step());
  if (!row) return std::optional<CylinderRow>();
  CylinderRow r = ReadCylinderRow(s);
  s.Reset();
  if (!with_carriers) return std::optional<CylinderRow>(std::move(r));

  PINGMA_ASSIGN_OR_RETURN(
      auto carriers, conn.Prepare("SELECT carrier FROM carriers WHERE code = $1 ORDER BY carrier"));
  carriers->Bind(1, code);
  for (;;) {
    PINGMA_ASSIGN_OR_RETURN(auto more, carriers->Step());
    if (!more) break;
    r.carriers.push_back(carriers->Text(0));
  }
  return std::optional<CylinderRow>(std::move(r));
}

namespace {

// `code` itself when a cylinder is registered under it.
Result<std::optional<std::string>> RegisteredCode(Conn& conn, const std::string& code) {
  PINGMA_ASSIGN_OR_RETURN(auto st, conn.Prepare("SELECT code FROM cylinders WHERE code = $1"));
  st->Bind(1, code);
  PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
  return row ? std::optional<std::string>(code) : std::nullopt;
}

}  // namespace

Result<std::optional<std::string>> ResolveScan(Conn& conn, std::string_view scan,
                                               std::string* key_text, bool trust_codes) {
  PINGMA_ASSIGN_OR_RETURN(auto key, ParseScan(scan));
  return ResolveKey(conn, key, key_text, trust_codes);
}

Result<std::optional<std::string>> ResolveKey(Conn& conn, const ScanKey& key, std::string* key_text,
                                              bool trust_codes) {
  if (key_text) *key_text = key.text;
  if (key.kind == ScanKind::kCode) {
    return trust_codes ? std::optional<std::string>(key.text) : RegisteredCode(conn, key.text);
  }
  PINGMA_ASSIGN_OR_RETURN(auto st, conn.Prepare("SELECT code FROM carriers WHERE carrier = $1"));
  st->Bind(1, key.text);
  PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
  if (row) return std::optional<std::string>(st->Text(0));
  if (!key.also_code) return std::optional<std::string>();
  // Bare text that reads as a tag but is bound to none: it may be a numeric code.
  if (key_text) *key_text = *key.also_code;
  return RegisteredCode(conn, *key.also_code);
}

Result<std::optional<StationFacts>> LoadStation(Conn& conn, const std::string& id) {
  PINGMA_ASSIGN_OR_RETURN(
      auto st,
      conn.Prepare(
          "SELECT s.company_id, s.locked, s.lock_reason, c.license_number, c.license_valid_until, "
          "c.license_revoked FROM stations s JOIN companies c ON c.id = s.company_id WHERE s.id = "
          "$1"));
  sql::Statement& s = *st;
  s.Bind(1, id);
  PINGMA_ASSIGN_OR_RETURN(auto row, s.Step());
  if (!row) return std::optional<StationFacts>();
  StationFacts f;
  f.id = id;
  f.company_id = s.Text(0);
  f.locked = s.Int(1) != 0;
  f.lock_reason = s.Text(2);
  if (!s.IsNull(3) && !s.IsNull(4)) {
    auto until = Date::Parse(s.Text(4));
    if (until.ok()) f.license = FillingLicense{s.Text(3), *until, s.Int(5) != 0};
  }
  s.Reset();
  return std::optional<StationFacts>(std::move(f));
}

Result<std::optional<OperatorFacts>> LoadOperator(Conn& conn, const std::string& id) {
  PINGMA_ASSIGN_OR_RETURN(
      auto st, conn.Prepare("SELECT cert_number, cert_valid_until FROM operators WHERE id = $1"));
  st->Bind(1, id);
  PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
  if (!row) return std::optional<OperatorFacts>();
  OperatorFacts f;
  f.id = id;
  if (!st->IsNull(0) && !st->IsNull(1)) {
    auto until = Date::Parse(st->Text(1));
    if (until.ok()) f.certificate = Certificate{st->Text(0), *until};
  }
  st->Reset();
  return std::optional<OperatorFacts>(std::move(f));
}

Result<std::vector<CustodyAgreement>> LoadCustody(Conn& conn, const std::string& owner) {
  PINGMA_ASSIGN_OR_RETURN(
      auto st, conn.Prepare("SELECT custodian_company_id, valid_from, valid_until FROM custody "
                            "WHERE owner_company_id = $1"));
  st->Bind(1, owner);
  std::vector<CustodyAgreement> out;
  for (;;) {
    PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
    if (!row) break;
    auto from = Date::Parse(st->Text(1));
    auto until = Date::Parse(st->Text(2));
    if (from.ok() && until.ok()) out.push_back({owner, st->Text(0), *from, *until});
  }
  return out;
}

Result<std::vector<Recall>> LoadRecalls(Conn& conn, const std::string& manufacturer) {
  PINGMA_ASSIGN_OR_RETURN(auto st, conn.Prepare("SELECT manufactured_from, manufactured_to, reason "
                                                "FROM recalls WHERE manufacturer = $1"));
  st->Bind(1, manufacturer);
  std::vector<Recall> out;
  for (;;) {
    PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
    if (!row) break;
    Recall r{manufacturer, std::nullopt, std::nullopt, st->Text(2)};
    if (!st->IsNull(0)) r.manufactured_from = *YearMonth::Parse(st->Text(0));
    if (!st->IsNull(1)) r.manufactured_to = *YearMonth::Parse(st->Text(1));
    out.push_back(std::move(r));
  }
  return out;
}

json CylinderJson(const CylinderRow& row, const Policy& policy) {
  const Cylinder& c = row.cylinder;
  json out = CylinderToJson(c);
  out["registration_state"] = row.registration_state;
  out["carriers"] = row.carriers;
  out["service_life_end"] = ServiceLifeEnd(policy, c).ToString();
  if (row.water_capacity_l) out["water_capacity_l"] = *row.water_capacity_l;
  // The due date under this policy, in place of the one recorded.
  out.erase("next_inspection_due");
  if (auto due = NextInspectionDue(policy, c)) out["next_inspection_due"] = due->ToString();
  if (row.state_reason) out["state_reason"] = *row.state_reason;
  if (row.state_since) out["state_since"] = row.state_since->ToString();
  if (row.last_fill) {
    out["last_fill"] = {{"station_id", row.last_fill->station_id},
                        {"at", row.last_fill->at.ToString()}};
  }
  return out;
}

}  // namespace pingma::registry
