// Cylinder registration and queries, and carriers.
#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "cases/cylinders.h"

#include "cases/personal_data.h"
#include "cases/queries.h"
#include "http/fields.h"
#include "pingma/scanner/scan.h"
#include "store/log_rows.h"

namespace pingma::registry {
namespace {

/// A validated registration, ready to store.
struct NewCylinder {
  CylinderRow row;
  json record;  ///< as stored in the "registered" event
};

Status CheckRange(const std::optional<double>& v, const char* key, double lo, double hi) {
  if (v && !(*v > lo && *v <= hi)) {
    return Status::Invalid(
        fmt::format("the field '{}' must be above {} and at most {}", key, lo, hi));
  }
  return Status::Ok();
}

Result<NewCylinder> ParseCylinder(const json& in, const Principal& who, const Policy& policy,
                                  Date today) {
  if (!in.is_object()) return Status::Invalid("each cylinder must be a JSON object");
  NewCylinder out;
  CylinderRow& row = out.row;
  Cylinder& c = row.cylinder;
  std::optional<std::string> code, model, phase, manufacturer, serial, registration_no, owner;
  std::optional<YearMonth> manufactured;
  std::optional<double> tare, water, allowed;
  std::optional<int> life;
  std::optional<Date> last_inspection, next_due;

  PINGMA_RETURN_IF_ERROR(GetString(in, "code", Need::kRequired, &code, 64));
  auto normal = NormaliseCode(*code);
  if (!normal.ok()) return Status::Invalid("the field 'code': " + normal.status().message());
  c.code = *normal;
  PINGMA_RETURN_IF_ERROR(GetString(in, "model", Need::kRequired, &model, 32));
  const ModelRule* rule = policy.FindModel(*model);
  if (rule == nullptr) {
    std::string known;
    for (const auto& [name, r] : policy.models) known += (known.empty() ? "" : ", ") + name;
    return Status::Invalid(fmt::format("unknown model '{}' (one of: {})", *model, known));
  }
  c.model = *model;
  PINGMA_RETURN_IF_ERROR(GetString(in, "phase", Need::kOptional, &phase, 16));
  c.phase = rule->default_phase;
  if (phase) {
    auto p = ParsePhase(*phase);
    if (!p.ok()) return Status::Invalid("the field 'phase': " + p.status().message());
    if (rule->default_phase == Phase::kDual && *p != Phase::kDual) {
      return Status::Invalid(fmt::format("model {} is a dual-phase cylinder", c.model));
    }
    c.phase = *p;
  }
  PINGMA_RETURN_IF_ERROR(GetString(in, "manufacturer", Need::kRequired, &manufacturer));
  c.manufacturer = *manufacturer;
  PINGMA_RETURN_IF_ERROR(GetString(in, "serial", Need::kOptional, &serial, 64));
  c.serial = serial.value_or("");
  PINGMA_RETURN_IF_ERROR(GetYearMonth(in, "manufactured", Need::kRequired, &manufactured));
  if (today < manufactured->FirstDay()) {
    return Status::Invalid(
        fmt::format("manufactured {} is in the future", manufactured->ToString()));
  }
  c.manufactured = *manufactured;
  PINGMA_RETURN_IF_ERROR(GetNumber(in, "tare_kg", Need::kRequired, &tare));
  PINGMA_RETURN_IF_ERROR(CheckRange(tare, "tare_kg", 0, 500));
  c.tare_kg = *tare;
  PINGMA_RETURN_IF_ERROR(GetNumber(in, "water_capacity_l", Need::kOptional, &water));
  PINGMA_RETURN_IF_ERROR(CheckRange(water, "water_capacity_l", 0, 1000));
  row.water_capacity_l = water;
  PINGMA_RETURN_IF_ERROR(GetNumber(in, "allowed_fill_kg", Need::kOptional, &allowed));
  PINGMA_RETURN_IF_ERROR(CheckRange(allowed, "allowed_fill_kg", 0, rule->max_fill_kg));
  c.allowed_fill_kg = allowed;
  PINGMA_RETURN_IF_ERROR(GetInt(in, "design_life_years", Need::kOptional, &life));
  if (life && (*life < 1 || *life > 60)) {
    return Status::Invalid("the field 'design_life_years' must be 1 to 60");
  }
  c.design_life_years = life;
  PINGMA_RETURN_IF_ERROR(GetString(in, "registration_no", Need::kOptional, &registration_no, 64));
  c.registration_no = registration_no.value_or("");
  PINGMA_RETURN_IF_ERROR(GetDate(in, "last_inspection", Need::kOptional, &last_inspection));
  if (last_inspection && today < *last_inspection) {
    return Status::Invalid("last_inspection is in the future");
  }
  c.last_inspection = last_inspection;
  if (last_inspection) c.last_inspection_result = InspectionResult::kPass;
  PINGMA_RETURN_IF_ERROR(GetDate(in, "next_inspection_due", Need::kOptional, &next_due));
  c.next_inspection_due = next_due;

  PINGMA_RETURN_IF_ERROR(GetString(in, "owner_company_id", Need::kOptional, &owner, 64));
  if (who.role == Role::kCompany) {
    if (owner && *owner != who.subject) {
      return Status::PermissionDenied("a company registers cylinders only as their owner");
    }
    c.owner_company_id = who.subject;
  } else {
    if (!owner || owner->empty()) {
      return Status::Invalid("the field 'owner_company_id' is required for an admin");
    }
    c.owner_company_id = *owner;
  }

  if (auto it = in.find("carriers"); it != in.end() && !it->is_null()) {
    if (!it->is_array() || it->size() > 16) {
      return Status::Invalid("the field 'carriers' must be a list of at most 16 strings");
    }
    for (const json& item : *it) {
      if (!item.is_string()) return Status::Invalid("each carrier must be a string");
      auto carrier = NormaliseCarrier(item.get<std::string>());
      if (!carrier.ok()) return Status::Invalid("carrier: " + carrier.status().message());
      if (std::find(row.carriers.begin(), row.carriers.end(), *carrier) == row.carriers.end()) {
        row.carriers.push_back(*carrier);
      }
    }
  }
  row.registration_state = "valid";
  out.record = CylinderJson(row, policy);
  return out;
}

Result<bool> CarrierTaken(Conn& conn, const std::string& carrier, std::string* holder) {
  PINGMA_ASSIGN_OR_RETURN(auto st, conn.Prepare("SELECT code FROM carriers WHERE carrier = $1"));
  st->Bind(1, carrier);
  PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
  if (row) *holder = st->Text(0);
  st->Reset();
  return row;
}

Status BindCarrier(WriteTx& tx, const std::string& carrier, const std::string& code,
                   std::int64_t seq) {
  PINGMA_ASSIGN_OR_RETURN(
      auto st,
      tx.conn().Prepare("INSERT INTO carriers(carrier, code, bound_seq) VALUES($1,$2,$3)"));
  st->Bind(1, carrier).Bind(2, code).Bind(3, seq);
  return st->Run();
}

// The checks before cylinders are stored, for one or a batch's items at once: their
// owners, codes already registered (or repeated earlier in the batch) and carriers
// already bound. Sets each failing item's error; `codes` and `carriers` carry
// what the batch has taken so far.
Status CheckBatch(Conn& conn, const std::vector<const NewCylinder*>& items,
                  std::set<std::string>* known_companies, std::set<std::string>* codes,
                  std::map<std::string, std::string>* carriers, std::vector<Status>* errors) {
  // What is stored already: a statement for all the items' codes and one for
  // their carriers, each with $1,...,$p for p, n rounded up to a power of two, the
  // places past the values bound NULL (which matches nothing), so that a
  // connection prepares few of them.
  auto places = [](std::size_t n) {
    std::size_t p = 1;
    while (p < n) p *= 2;
    return p;
  };
  auto in_list = [&places](std::size_t n) {
    std::string list;
    for (std::size_t i = 1; i <= places(n); ++i) {
      list += fmt::format("{}${}", i == 1 ? "" : ",", i);
    }
    return list;
  };
  std::map<std::string, std::string> stored_states;
  {
    PINGMA_ASSIGN_OR_RETURN(
        auto st, conn.Prepare(fmt::format("SELECT code, state FROM cylinders WHERE code IN ({})",
                                          in_list(items.size()))));
    for (std::size_t i = 0; i < items.size(); ++i) {
      st->BindUnowned(static_cast<int>(i + 1), items[i]->row.cylinder.code);
    }
    for (std::size_t i = items.size(); i < places(items.size()); ++i) {
      st->BindNull(static_cast<int>(i + 1));
    }
    for (;;) {
      PINGMA_ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) break;
      stored_states[st->Text(0)] = st->Text(1);
    }
  }
  std::vector<const std::string*> wanted;
  for (const NewCylinder* item : items) {
    for (const std::string& carrier : item->row.carriers) wanted.push_back(&carrier);
  }
  std::map<std::string, std::string> bound;  // carrier: the cylinder it is stored on
  constexpr std::size_t kCarriers = 1024;    // a statement's parameters at most
  for (std::size_t from = 0; from < wanted.size(); from += kCarriers) {
    const std::size_t n = std::min(kCarriers, wanted.size() - from);
    PINGMA_ASSIGN_OR_RETURN(
        auto st, conn.Prepare(fmt::format(
                     "SELECT carrier, code FROM carriers WHERE carrier IN ({})", in_list(n))));
    for (std::size_t i = 0; i < n; ++i) st->BindUnowned(static_cast<int>(i + 1), *wanted[from + i]);
    for (std::size_t i = n; i < places(n); ++i) st->BindNull(static_cast<int>(i + 1));
    for (;;) {
      PINGMA_ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) break;
      bound[st->Text(0)] = st->Text(1);
    }
  }
  for (std::size_t i = 0; i < items.size(); ++i) {
    const Cylinder& c = items[i]->row.cylinder;
    Status& error = (*errors)[i];
    if (known_companies->count(c.owner_company_id) == 0) {
      PINGMA_ASSIGN_OR_RETURN(bool company, Exists(conn, "companies", c.owner_company_id));
      if (!company) {
        error = Status::Invalid(fmt::format("no company {}", c.owner_company_id));
        continue;
      }
      known_companies->insert(c.owner_company_id);
    }
    if (auto it = stored_states.find(c.code); it != stored_states.end()) {
      error = Status::Conflict(it->second == ToString(CylinderState::kScrapped)
                                   ? fmt::format("code {} belonged to a scrapped cylinder and is "
                                                 "retired",
                                                 c.code)
                                   : fmt::format("code {} is already registered", c.code));
      continue;
    }
    if (codes->count(c.code) > 0) {
      error = Status::Conflict(fmt::format("code {} is already registered", c.code));
      continue;
    }
    for (const std::string& carrier : items[i]->row.carriers) {
      auto holder = bound.find(carrier);
      auto taken = carriers->find(carrier);
      if (holder != bound.end() || taken != carriers->end()) {
        error =
            Status::Conflict(fmt::format("carrier {} is bound to cylinder {}", carrier,
                                         holder != bound.end() ? holder->second : taken->second));
        break;
      }
    }
    if (!error.ok()) continue;
    codes->insert(c.code);
    for (const std::string& carrier : items[i]->row.carriers) (*carriers)[carrier] = c.code;
  }
  return Status::Ok();
}

// Stores cylinders already checked (CheckBatch): their "registered" events, then
// their rows, in statements of many rows, then their carriers.
Status StoreCylinders(WriteTx& tx, const std::vector<const NewCylinder*>& items,
                      const Principal& who) {
  std::vector<Event> events;
  events.reserve(items.size());
  const std::string role = ToString(who.role);
  for (const NewCylinder* item : items) {
    events.push_back({"", item->row.cylinder.code, "registered", tx.now(), role, who.subject,
                      item->record.dump()});
  }
  PINGMA_ASSIGN_OR_RETURN(const std::vector<std::int64_t> seqs, tx.AppendAll(std::move(events)));
  // 400 rows of 17: libpq 15 takes a statement's description of at most 30,000
  // bytes, 4 a parameter.
  constexpr std::size_t kRows = 400;
  constexpr int kColumns = 17;
  for (std::size_t start = 0; start < items.size(); start += kRows) {
    const std::size_t rows = std::min(kRows, items.size() - start);
    std::string sql =
        "INSERT INTO cylinders(code, owner_company_id, model, phase, manufacturer, serial, "
        "manufactured, tare_kg, water_capacity_l, allowed_fill_kg, design_life_years, "
        "registration_no, last_inspection, last_inspection_result, next_inspection_due, rev, "
        "registered_at) VALUES";
    for (std::size_t r = 0; r < rows; ++r) {
      sql += r == 0 ? "(" : ",(";
      for (int k = 1; k <= kColumns; ++k) {
        sql += fmt::format("{}${}", k == 1 ? "" : ",", static_cast<int>(r) * kColumns + k);
      }
      sql += ")";
    }
    PINGMA_ASSIGN_OR_RETURN(auto st, tx.conn().Prepare(sql));
    sql::Statement& s = *st;
    for (std::size_t r = 0; r < rows; ++r) {
      const NewCylinder& item = *items[start + r];
      const Cylinder& c = item.row.cylinder;
      const int p = static_cast<int>(r) * kColumns;
      // Unowned: the items outlive the Run below; the rest is copied.
      s.BindUnowned(p + 1, c.code).BindUnowned(p + 2, c.owner_company_id);
      s.BindUnowned(p + 3, c.model).Bind(p + 4, ToString(c.phase));
      s.BindUnowned(p + 5, c.manufacturer).BindUnowned(p + 6, c.serial);
      s.Bind(p + 7, c.manufactured.ToString())
          .Bind(p + 8, c.tare_kg)
          .Bind(p + 9, item.row.water_capacity_l);
      s.Bind(p + 10, c.allowed_fill_kg).Bind(p + 11, c.design_life_years);
      s.BindUnowned(p + 12, c.registration_no);
      if (c.last_inspection) {
        s.Bind(p + 13, c.last_inspection->ToString()).Bind(p + 14, "pass");
      } else {
        s.BindNull(p + 13).BindNull(p + 14);
      }
      if (c.next_inspection_due) {
        s.Bind(p + 15, c.next_inspection_due->ToString());
      } else {
        s.BindNull(p + 15);
      }
      s.Bind(p + 16, tx.Revision(seqs[start + r]));
      s.Bind(p + 17, tx.now().unix_ms);  // registered_at: the event's time
    }
    PINGMA_RETURN_IF_ERROR(s.Run());
  }
  for (std::size_t i = 0; i < items.size(); ++i) {
    for (const std::string& carrier : items[i]->row.carriers) {
      PINGMA_RETURN_IF_ERROR(BindCarrier(tx, carrier, items[i]->row.cylinder.code, seqs[i]));
    }
  }
  return Status::Ok();
}

// Stores one validated cylinder, checked as a batch's are. `known_companies`
// remembers the owners already found within one job; the reply carries the record
// only when `with_record` (a batch answers with statuses).
Reply InsertCylinder(WriteTx& tx, const NewCylinder& item, const Principal& who,
                     std::set<std::string>* known_companies, bool with_record) {
  std::set<std::string> codes;
  std::map<std::string, std::string> carriers;
  std::vector<Status> errors(1, Status::Ok());
  if (Status s = CheckBatch(tx.conn(), {&item}, known_companies, &codes, &carriers, &errors);
      !s.ok()) {
    return ErrorReply(s);
  }
  if (!errors[0].ok()) return ErrorReply(errors[0]);
  if (Status s = StoreCylinders(tx, {&item}, who); !s.ok()) return ErrorReply(s);
  return with_record ? Created(item.record) : Created({});
}

}  // namespace

// May `who` see cylinders owned by `owner`? Regulators, inspectors and admins see
// all; a company and its stations see their own and those in their custody.
Status CanSeeOwner(Conn& conn, const Principal& who, const std::string& owner) {
  std::string company;
  switch (who.role) {
    case Role::kAdmin:
    case Role::kRegulator:
    case Role::kInspector:
      return Status::Ok();
    case Role::kCompany:
      company = who.subject;
      break;
    case Role::kStation: {
      PINGMA_ASSIGN_OR_RETURN(auto station, LoadStation(conn, who.subject));
      if (!station) return Status::PermissionDenied("this station is not registered");
      company = station->company_id;
      break;
    }
    case Role::kCourier:
      return Status::PermissionDenied("couriers see cylinders through handovers");
  }
  if (company == owner) return Status::Ok();
  PINGMA_ASSIGN_OR_RETURN(auto custody, LoadCustody(conn, owner));
  for (const auto& a : custody) {
    if (a.custodian_company_id == company) return Status::Ok();
  }
  return Status::PermissionDenied("this cylinder belongs to another company");
}

Reply FlagCylinderForScrap(WriteTx& tx, const Principal& who, const std::string& code,
                           ReasonCode reason) {
  auto st = tx.conn().Prepare(
      "UPDATE cylinders SET state = 'scrap_pending', state_reason = $1, state_since = $2, rev = $3 "
      "WHERE code = $4 AND state = 'active'");
  if (!st.ok()) return ErrorReply(st.status());
  json body = {{"reason", ToString(reason)}};
  auto seq = tx.Append(
      {"", code, "flagged_for_scrap", tx.now(), ToString(who.role), who.subject, body.dump()});
  if (!seq.ok()) return ErrorReply(seq.status());
  (*st)
      ->Bind(1, ToString(reason))
      .Bind(2, tx.now().unix_ms)
      .Bind(3, tx.Revision(*seq))
      .Bind(4, code);
  if (Status r = (*st)->Run(); !r.ok()) return ErrorReply(r);
  return Okay(body);
}

void Cylinders::PostCylinder(const Call& call, Store::Done done) {
  auto body = ParseBody(call.request->body);
  if (!body.ok()) return done(ErrorReply(body.status()));
  auto item =
      ParseCylinder(*body, call.who, policy_, clock_->Now().LocalDate(policy_.utc_offset_minutes));
  if (!item.ok()) return done(ErrorReply(item.status()));
  Write(std::move(done), [item = std::move(*item), who = call.who](WriteTx& tx) {
    std::set<std::string> known_companies;
    return InsertCylinder(tx, item, who, &known_companies, /*with_record=*/true);
  });
}

void Cylinders::PostCylinderBatch(const Call& call, Store::Done done) {
  auto body = ParseBody(call.request->body);
  if (!body.ok()) return done(ErrorReply(body.status()));
  auto list = body->find("cylinders");
  if (list == body->end() || !list->is_array()) {
    return done(ErrorReply(Status::Invalid("the field 'cylinders' must be a list")));
  }
  const Date today = clock_->Now().LocalDate(policy_.utc_offset_minutes);
  // Parse everything first, on this thread; the writer only stores.
  auto items = std::make_shared<std::vector<Result<NewCylinder>>>();
  items->reserve(list->size());
  // Each result names its item's code as sent (null when there was none).
  auto raw_codes = std::make_shared<std::vector<json>>();
  raw_codes->reserve(list->size());
  for (const json& entry : *list) {
    items->push_back(ParseCylinder(entry, call.who, policy_, today));
    const json* code = entry.is_object() && entry.contains("code") ? &entry["code"] : nullptr;
    raw_codes->push_back(code && code->is_string() ? *code : json(nullptr));
  }
  Write(std::move(done), [items, raw_codes, who = call.who](WriteTx& tx) -> Reply {
    json results = json::array();
    std::set<std::string> known_companies;
    // On PostgreSQL the inspection-due counters are kept once for the batch, at
    // its end (schema/pg/0007): one counter row updated in every item's savepoint
    // made the batch quadratic.
    const bool count_at_end = tx.conn().dialect() == sql::Dialect::kPostgres;
    std::string stored_codes = "{";  // a PostgreSQL array of the codes stored
    if (count_at_end) {
      if (Status s = tx.conn().db().Exec("SET LOCAL pingma.due_counts = 'deferred'"); !s.ok()) {
        return ErrorReply(s);
      }
    }
    // A chunk of items at a time: checked together, then stored together in one
    // savepoint with a few statements of many rows (on PostgreSQL a round trip
    // each, where one item at a time took five).
    constexpr size_t kChunk = 500;
    std::set<std::string> codes;                  // taken by this batch so far
    std::map<std::string, std::string> carriers;  // and on which cylinder
    for (size_t start = 0; start < items->size(); start += kChunk) {
      const size_t end = std::min(items->size(), start + kChunk);
      std::vector<const NewCylinder*> chunk;  // the chunk's items that parsed
      for (size_t i = start; i < end; ++i) {
        if ((*items)[i].ok()) chunk.push_back(&*(*items)[i]);
      }
      std::vector<Status> errors(chunk.size(), Status::Ok());
      if (!chunk.empty()) {
        Status checked = CheckBatch(tx.conn(), chunk, &known_companies, &codes, &carriers, &errors);
        if (!checked.ok()) return ErrorReply(checked);
      }
      std::vector<const NewCylinder*> good;
      for (size_t k = 0; k < chunk.size(); ++k) {
        if (errors[k].ok()) good.push_back(chunk[k]);
      }
      std::vector<Reply> replies(chunk.size());
      Reply stored = good.empty() ? Created({}) : tx.Nested([&] {
        Status s = StoreCylinders(tx, good, who);
        return s.ok() ? Created({}) : ErrorReply(s);
      });
      for (size_t k = 0; k < chunk.size(); ++k) {
        if (!errors[k].ok()) {
          replies[k] = ErrorReply(errors[k]);
        } else if (!stored.failed()) {
          replies[k] = Created({});
        } else {
          // One of them failed where the checks could not see it: each alone, in
          // its own savepoint, so that the others are stored and that one named.
          replies[k] = tx.Nested([&] {
            return InsertCylinder(tx, *chunk[k], who, &known_companies, /*with_record=*/false);
          });
          if (replies[k].failed()) {
            codes.erase(chunk[k]->row.cylinder.code);
            for (const std::string& carrier : chunk[k]->row.carriers) carriers.erase(carrier);
          }
        }
      }
      for (size_t i = start, k = 0; i < end; ++i) {
        auto& item = (*items)[i];
        json result = {{"code", (*raw_codes)[i]}};
        if (!item.ok()) {
          result["status"] = HttpStatusFor(item.status().code());
          result["error"] = ErrorReply(item.status()).body["error"];
          results.push_back(std::move(result));
          continue;
        }
        const Reply& r = replies[k++];
        result["code"] = item->row.cylinder.code;
        result["status"] = r.status;
        if (r.failed()) {
          result["error"] = r.body.at("error");
        } else if (count_at_end) {
          // An array's element, quoted: '"' and '\\' take a backslash.
          stored_codes += stored_codes.size() > 1 ? ",\"" : "\"";
          for (char c : item->row.cylinder.code) {
            if (c == '"' || c == '\\') stored_codes += '\\';
            stored_codes += c;
          }
          stored_codes += '"';
        }
        results.push_back(std::move(result));
      }
    }
    if (count_at_end) {
      stored_codes += '}';
      auto count = tx.conn().Prepare("SELECT pingma_count_due($1::text[])");
      Status s = count.ok() ? (*count)->Bind(1, stored_codes).Run() : count.status();
      if (s.ok()) s = tx.conn().db().Exec("SET LOCAL pingma.due_counts = 'each'");
      if (!s.ok()) return ErrorReply(s);
    }
    return Okay({{"results", std::move(results)}});
  });
}

void Cylinders::GetCylinder(const Call& call, Store::Done done) {
  const std::string code = call.params[0];
  const Instant now = clock_->Now();
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    auto normal = NormaliseCode(code);
    if (!normal.ok()) return ErrorReply(Status::NotFound(normal.status().message()));
    auto row = LoadCylinder(conn, *normal);
    if (!row.ok()) return ErrorReply(row.status());
    if (!*row) return ErrorReply(Status::NotFound(fmt::format("no cylinder {}", *normal)));
    if (Status s = CanSeeOwner(conn, call.who, (*row)->cylinder.owner_company_id); !s.ok()) {
      return ErrorReply(s);
    }
    auto recalls = LoadRecalls(conn, (*row)->cylinder.manufacturer);
    if (!recalls.ok()) return ErrorReply(recalls.status());
    const FillDecision d = DecideCylinder(policy_, (*row)->cylinder, *recalls, now);
    json out = CylinderJson(**row, policy_);
    out["fillable"] = d.allowed();
    out["reasons"] = json::array();
    for (const Reason& r : d.reasons) {
      out["reasons"].push_back({{"code", ToString(r.code)}, {"message", r.message}});
    }
    return Okay(out);
  });
}

void Cylinders::GetHistory(const Call& call, Store::Done done) {
  std::int64_t cursor = 0;
  if (auto it = call.query.find("cursor"); it != call.query.end() && !it->second.empty()) {
    if (!ParseWhole(it->second, 0, INT64_MAX, &cursor)) {
      return done(ErrorReply(Status::Malformed("the cursor must be the next_cursor of a page")));
    }
  }
  auto page_limit = PageLimit(call.query, 100, 1000);
  if (!page_limit.ok()) return done(ErrorReply(page_limit.status()));
  const std::int64_t limit = *page_limit;
  const std::string code = call.params[0];
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    auto normal = NormaliseCode(code);
    const std::string key = normal.ok() ? *normal : code;
    auto row = LoadCylinder(conn, key);
    if (!row.ok()) return ErrorReply(row.status());
    if (*row) {
      if (Status s = CanSeeOwner(conn, call.who, (*row)->cylinder.owner_company_id); !s.ok()) {
        return ErrorReply(s);
      }
    } else if (call.who.role != Role::kRegulator && call.who.role != Role::kAdmin) {
      return ErrorReply(Status::NotFound(fmt::format("no cylinder {}", key)));
    }
    // On SQLite partition by partition (see kEventBucketBits), oldest first,
    // until the page is full or the log ends; PostgreSQL's index is by code.
    const bool sqlite = conn.dialect() == sql::Dialect::kSqlite;
    std::int64_t last_seq = 0;
    if (sqlite) {
      auto head = conn.Prepare("SELECT MAX(seq) FROM events");
      if (!head.ok()) return ErrorReply(head.status());
      auto has_head = (*head)->Step();
      if (!has_head.ok()) return ErrorReply(has_head.status());
      last_seq = (*head)->IsNull(0) ? 0 : (*head)->Int(0);
    }
    auto st = conn.Prepare(sqlite ? "SELECT seq, id, type, at, actor_role, actor_id, body FROM "
                                    "events WHERE seq >> 16 = $1 AND code = $2 AND seq > $3 "
                                    "ORDER BY seq LIMIT $4"
                                  : "SELECT seq, id, type, at, actor_role, actor_id, body FROM "
                                    "events WHERE $1 = 0 AND code = $2 AND seq > $3 "
                                    "ORDER BY seq LIMIT $4");
    if (!st.ok()) return ErrorReply(st.status());
    static_assert(kEventBucketBits == 16, "the query above names the partition size");
    json events = json::array();
    std::int64_t last = 0;
    const std::int64_t first_bucket = sqlite ? (cursor + 1) >> kEventBucketBits : 0;
    const std::int64_t last_bucket = sqlite ? last_seq >> kEventBucketBits : 0;
    for (std::int64_t bucket = first_bucket;
         bucket <= last_bucket && static_cast<int>(events.size()) < limit; ++bucket) {
      (*st)->Reset();
      (*st)->Bind(1, bucket).Bind(2, key).Bind(3, cursor);
      (*st)->Bind(4, limit - static_cast<int>(events.size()));
      for (;;) {
        auto more = (*st)->Step();
        if (!more.ok()) return ErrorReply(more.status());
        if (!*more) break;
        json ev = json::parse((*st)->Text(6), nullptr, false);
        if (!ev.is_object()) ev = json::object();
        ev["id"] = (*st)->Text(1);
        ev["log_index"] = sqlite ? json(logrows::IndexOfSeq((*st)->Int(0))) : json(nullptr);
        ev["type"] = (*st)->Text(2);
        ev["at"] = Instant{(*st)->Int(3)}.ToString();
        ev["actor"] = {{"role", (*st)->Text(4)}, {"id", (*st)->Text(5)}};
        const bool oversees = call.who.role == Role::kRegulator || call.who.role == Role::kAdmin;
        // A public report's contact is for the regulator: a company may be the
        // one reported.
        if (ev["type"] == "public_report") {
          if (!oversees) {
            ev.erase("contact");  // reports made before contacts left the log
            ev.erase("contact_ref");
          } else if (Status s = ShowPersonalData(conn, &ev, "contact"); !s.ok()) {
            return ErrorReply(s);
          }
        }
        if (ev["type"] == "handover") {
          if (Status s = ShowPersonalData(conn, &ev, "location"); !s.ok()) return ErrorReply(s);
        }
        // Another company's courier tried to hand this cylinder over (blocked,
        // COURIER_NOT_OWNER) or opened a hazard at its own customer's door: the
        // owner sees that it happened and which company, not that company's
        // customer, vehicle or door-step check. Regulators see all of it.
        if (*row && !oversees && (ev["type"] == "handover" || ev["type"] == "hazard_opened") &&
            ev.value("company_id", (*row)->cylinder.owner_company_id) !=
                (*row)->cylinder.owner_company_id) {
          json seen = {{"company_id", ev["company_id"]}, {"foreign_attempt", true}};
          for (const char* field :
               {"direction", "decision", "reasons", "code", "item", "state", "deadline"}) {
            if (auto it = ev.find(field); it != ev.end()) seen[field] = *it;
          }
          for (const char* field : {"id", "type", "at", "actor"}) seen[field] = ev[field];
          ev = std::move(seen);
        }
        last = (*st)->Int(0);
        ev["seq"] = last;
        events.push_back(std::move(ev));
      }
    }
    // On PostgreSQL the sequencer gives the leaves: null for an event not yet
    // given one (a second at most).
    if (!sqlite && !events.empty()) {
      std::vector<std::int64_t> seqs;
      for (const json& ev : events) seqs.push_back(ev["seq"].get<std::int64_t>());
      auto leaves = conn.Prepare("SELECT seq, leaf FROM log_leaves WHERE seq = ANY($1::bigint[])");
      if (!leaves.ok()) return ErrorReply(leaves.status());
      (*leaves)->Bind(1, sql::BigintArrayText(seqs));
      std::unordered_map<std::int64_t, std::int64_t> leaf_of;
      for (;;) {
        auto more = (*leaves)->Step();
        if (!more.ok()) return ErrorReply(more.status());
        if (!*more) break;
        leaf_of[(*leaves)->Int(0)] = (*leaves)->Int(1);
      }
      for (json& ev : events) {
        if (auto it = leaf_of.find(ev["seq"].get<std::int64_t>()); it != leaf_of.end()) {
          ev["log_index"] = it->second;
        }
      }
    }
    // An unregistered code is known only by its events; a later page that
    // happens to be empty (the last one was exactly full) is still a page.
    if (!*row && events.empty() && cursor == 0)
      return ErrorReply(Status::NotFound(fmt::format("no cylinder {}", key)));
    json out = {{"events", events}, {"next_cursor", nullptr}};
    if (static_cast<int>(events.size()) == limit) out["next_cursor"] = std::to_string(last);
    return Okay(out);
  });
}

void Cylinders::GetResolve(const Call& call, Store::Done done) {
  auto it = call.query.find("scan");
  if (it == call.query.end() || it->second.empty()) {
    return done(ErrorReply(Status::Malformed("give the scan as ?scan=...")));
  }
  const std::string scan = it->second;
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    std::string key;
    auto code = ResolveScan(conn, scan, &key);
    if (!code.ok())
      return ErrorReply(Status::NotFound("not a cylinder code: " + code.status().message()));
    if (!*code) return ErrorReply(Status::NotFound(fmt::format("{} is not registered", key)));
    return Okay({{"code", **code}});
  });
}

void Cylinders::PostCarrier(const Call& call, Store::Done done) {
  auto body = ParseBody(call.request->body);
  if (!body.ok()) return done(ErrorReply(body.status()));
  std::optional<std::string> raw;
  if (Status s = GetString(*body, "carrier", Need::kRequired, &raw, 128); !s.ok()) {
    return done(ErrorReply(s));
  }
  auto carrier = NormaliseCarrier(*raw);
  if (!carrier.ok())
    return done(ErrorReply(Status::Invalid("carrier: " + carrier.status().message())));
  auto code = NormaliseCode(call.params[0]);
  if (!code.ok()) return done(ErrorReply(Status::NotFound(code.status().message())));
  Write(std::move(done), [carrier = *carrier, code = *code, who = call.who](WriteTx& tx) -> Reply {
    if (Status guarded = GuardCylinder(tx, code); !guarded.ok()) return ErrorReply(guarded);
    auto row = LoadCylinder(tx.conn(), code);
    if (!row.ok()) return ErrorReply(row.status());
    if (!*row) return ErrorReply(Status::NotFound(fmt::format("no cylinder {}", code)));
    if (who.role == Role::kCompany && (*row)->cylinder.owner_company_id != who.subject) {
      return ErrorReply(Status::PermissionDenied("only the owner binds carriers"));
    }
    if ((*row)->cylinder.state == CylinderState::kScrapped) {
      return ErrorReply(Status::Conflict(fmt::format("cylinder {} is scrapped", code)));
    }
    std::string holder;
    auto taken = CarrierTaken(tx.conn(), carrier, &holder);
    if (!taken.ok()) return ErrorReply(taken.status());
    if (*taken && holder != code) {
      return ErrorReply(
          Status::Conflict(fmt::format("carrier {} is bound to cylinder {}", carrier, holder)));
    }
    json out = {{"code", code}, {"carrier", carrier}};
    if (*taken) return Okay(out);
    auto seq = tx.Append(
        {"", code, "carrier_bound", tx.now(), ToString(who.role), who.subject, out.dump()});
    if (!seq.ok()) return ErrorReply(seq.status());
    if (Status s = BindCarrier(tx, carrier, code, *seq); !s.ok()) return ErrorReply(s);
    // The record changed: the fleet feed sends it again, with the new carrier.
    auto bump = tx.conn().Prepare("UPDATE cylinders SET rev = $1 WHERE code = $2");
    if (!bump.ok()) return ErrorReply(bump.status());
    (*bump)->Bind(1, tx.Revision(*seq)).Bind(2, code);
    if (Status s = (*bump)->Run(); !s.ok()) return ErrorReply(s);
    return Created(out);
  });
}

}  // namespace pingma::registry
