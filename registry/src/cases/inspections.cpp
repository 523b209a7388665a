// Inspection, assessment, the scrap queue and scrapping.
#include "cases/inspections.h"

#include <fmt/format.h>

#include "cases/queries.h"
#include "http/fields.h"
#include "pingma/scanner/scan.h"

namespace pingma::registry {
namespace {

/// The head shared by inspection and assessment records: code, date, result.
struct InspectorRecord {
  std::string code;
  Date date;
  InspectionResult result = InspectionResult::kPass;
};

Result<InspectorRecord> ParseInspectorRecord(const json& body, const char* what, Date today) {
  std::optional<std::string> raw_code, result_text;
  std::optional<Date> date;
  PINGMA_RETURN_IF_ERROR(GetString(body, "code", Need::kRequired, &raw_code, 64));
  PINGMA_RETURN_IF_ERROR(GetDate(body, "date", Need::kRequired, &date));
  PINGMA_RETURN_IF_ERROR(GetString(body, "result", Need::kRequired, &result_text, 16));
  PINGMA_ASSIGN_OR_RETURN(auto result, ParseInspectionResult(*result_text));
  if (today < *date) return Status::Invalid(fmt::format("the {} date is in the future", what));
  PINGMA_ASSIGN_OR_RETURN(auto code, NormaliseCode(*raw_code));
  return InspectorRecord{code, *date, result};
}

}  // namespace

void Inspections::PostInspection(const Call& call, Store::Done done) {
  auto body = ParseBody(call.request->body);
  if (!body.ok()) return done(ErrorReply(body.status()));
  auto head = ParseInspectorRecord(*body, "inspection",
                                   clock_->Now().LocalDate(policy_.utc_offset_minutes));
  std::optional<std::string> report_no;
  std::optional<Date> next_due;
  Status s = head.status();
  if (s.ok()) s = GetDate(*body, "next_due", Need::kOptional, &next_due);
  if (s.ok()) s = GetString(*body, "report_no", Need::kRequired, &report_no, 64);
  if (s.ok() && next_due && *next_due <= head->date) {
    s = Status::Invalid("next_due must be after the date");
  }
  if (!s.ok()) return done(ErrorReply(s));
  const std::string code = head->code;
  const Date date = head->date;
  const InspectionResult result = head->result;
  Write(std::move(done), [=, who = call.who](WriteTx& tx) -> Reply {
    if (Status guarded = GuardCylinder(tx, code); !guarded.ok()) return ErrorReply(guarded);
    auto row = LoadCylinder(tx.conn(), code);
    if (!row.ok()) return ErrorReply(row.status());
    if (!*row) return ErrorReply(Status::NotFound(fmt::format("no cylinder {}", code)));
    if ((*row)->cylinder.state == CylinderState::kScrapped) {
      return ErrorReply(Status::Conflict(fmt::format("cylinder {} is scrapped", code)));
    }
    // The record holds the latest inspection. One dated before it, entered late,
    // is kept in the history but does not put the due date back or replace the
    // newer result; a fail still flags the cylinder for scrapping, whatever its date.
    const auto& last = (*row)->cylinder.last_inspection;
    const bool latest = !last || !(date < *last);
    json out = {{"code", code},
                {"date", date.ToString()},
                {"result", ToString(result)},
                {"report_no", *report_no}};
    if (next_due) out["next_due"] = next_due->ToString();
    out["latest"] = latest;
    auto seq =
        tx.Append({"", code, "inspection", tx.now(), ToString(who.role), who.subject, out.dump()});
    if (!seq.ok()) return ErrorReply(seq.status());
    if (latest) {
      auto st = tx.conn().Prepare(
          "UPDATE cylinders SET last_inspection = $1, last_inspection_result = $2, "
          "next_inspection_due = $3, rev = $4 WHERE code = $5");
      if (!st.ok()) return ErrorReply(st.status());
      (*st)->Bind(1, date.ToString()).Bind(2, ToString(result));
      if (next_due)
        (*st)->Bind(3, next_due->ToString());
      else
        (*st)->BindNull(3);
      (*st)->Bind(4, tx.Revision(*seq)).Bind(5, code);
      if (Status r = (*st)->Run(); !r.ok()) return ErrorReply(r);
    }
    out["flagged_for_scrap"] = false;
    if (result == InspectionResult::kFail && (*row)->cylinder.state == CylinderState::kActive) {
      Reply flagged = FlagCylinderForScrap(tx, who, code, ReasonCode::kInspectionFailed);
      if (flagged.failed()) return flagged;
      out["flagged_for_scrap"] = true;
    }
    return Created(out);
  });
}

void Inspections::PostAssessment(const Call& call, Store::Done done) {
  auto body = ParseBody(call.request->body);
  if (!body.ok()) return done(ErrorReply(body.status()));
  auto head = ParseInspectorRecord(*body, "assessment",
                                   clock_->Now().LocalDate(policy_.utc_offset_minutes));
  std::optional<Date> extends_until;
  Status s = head.status();
  if (s.ok()) s = GetDate(*body, "extends_until", Need::kOptional, &extends_until);
  if (!s.ok()) return done(ErrorReply(s));
  const std::string code = head->code;
  const Date date = head->date;
  const InspectionResult result = head->result;
  Write(std::move(done),
        [this, code, date, result, extends_until, who = call.who](WriteTx& tx) -> Reply {
          const Policy& policy = policy_;
          if (Status guarded = GuardCylinder(tx, code); !guarded.ok()) return ErrorReply(guarded);
          auto row = LoadCylinder(tx.conn(), code);
          if (!row.ok()) return ErrorReply(row.status());
          if (!*row) return ErrorReply(Status::NotFound(fmt::format("no cylinder {}", code)));
          Cylinder c = (*row)->cylinder;
          if (c.state == CylinderState::kScrapped) {
            return ErrorReply(Status::Conflict(fmt::format("cylinder {} is scrapped", code)));
          }
          if (c.assessment) {
            return ErrorReply(Status::Conflict(
                fmt::format("cylinder {} already had its one safety assessment on {}", code,
                            c.assessment->date.ToString())));
          }
          c.assessment.reset();
          const Date life_end = ServiceLifeEnd(policy, c);
          const Date cap = life_end.AddYears(policy.life_extension_max_years);
          const bool passed = result == InspectionResult::kPass;
          if (passed && extends_until && (*extends_until <= life_end || cap < *extends_until)) {
            return ErrorReply(Status::Invalid(fmt::format(
                "extends_until must be after the design life end {} and no later than {}",
                life_end.ToString(), cap.ToString())));
          }
          const Date granted = passed ? extends_until.value_or(cap) : life_end;
          json out = {{"code", code}, {"date", date.ToString()}, {"result", ToString(result)}};
          if (passed) out["extends_until"] = granted.ToString();
          auto seq = tx.Append(
              {"", code, "assessment", tx.now(), ToString(who.role), who.subject, out.dump()});
          if (!seq.ok()) return ErrorReply(seq.status());
          auto st = tx.conn().Prepare(
              "UPDATE cylinders SET assessment_date = $1, assessment_passed = $2, "
              "assessment_extends_until = $3, rev = $4 WHERE code = $5");
          if (!st.ok()) return ErrorReply(st.status());
          (*st)->Bind(1, date.ToString()).Bind(2, passed ? 1 : 0);
          if (passed)
            (*st)->Bind(3, granted.ToString());
          else
            (*st)->BindNull(3);
          (*st)->Bind(4, tx.Revision(*seq)).Bind(5, code);
          if (Status r = (*st)->Run(); !r.ok()) return ErrorReply(r);
          out["flagged_for_scrap"] = false;
          if (!passed && c.state == CylinderState::kActive) {
            Reply flagged = FlagCylinderForScrap(tx, who, code, ReasonCode::kAssessmentFailed);
            if (flagged.failed()) return flagged;
            out["flagged_for_scrap"] = true;
          }
          return Created(out);
        });
}

void Inspections::GetScrapQueue(const Call& call, Store::Done done) {
  // Keyset-paged in queue order (oldest flag first): a page costs its size on
  // the cylinders_scrap_queue index, however long the queue.
  auto page_limit = PageLimit(call.query, 100, 1000);
  if (!page_limit.ok()) return done(ErrorReply(page_limit.status()));
  const std::int64_t limit = *page_limit;
  std::int64_t after_since = INT64_MIN;
  std::string after_code;
  if (auto it = call.query.find("cursor"); it != call.query.end() && !it->second.empty()) {
    const size_t colon = it->second.find(':');
    if (colon == std::string::npos ||
        !ParseWhole(std::string_view(it->second).substr(0, colon), 0, INT64_MAX, &after_since) ||
        colon + 1 == it->second.size()) {
      return done(ErrorReply(Status::Malformed(
          "cursor must be the next_cursor of an earlier page of the scrap queue")));
    }
    after_code = it->second.substr(colon + 1);
  }
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    const bool own = call.who.role == Role::kCompany;
    auto st = conn.Prepare(
        own ? "SELECT code, owner_company_id, state_reason, state_since FROM cylinders "
              "WHERE state = 'scrap_pending' AND owner_company_id = $4 "
              "AND (state_since, code) > ($1, $2) ORDER BY state_since, code LIMIT $3"
            : "SELECT code, owner_company_id, state_reason, state_since FROM cylinders "
              "WHERE state = 'scrap_pending' "
              "AND (state_since, code) > ($1, $2) ORDER BY state_since, code LIMIT $3");
    if (!st.ok()) return ErrorReply(st.status());
    (*st)->Bind(1, after_since).Bind(2, after_code).Bind(3, limit);
    if (own) (*st)->Bind(4, call.who.subject);
    json list = json::array();
    std::string next;
    for (;;) {
      auto more = (*st)->Step();
      if (!more.ok()) return ErrorReply(more.status());
      if (!*more) break;
      list.push_back({{"code", (*st)->Text(0)},
                      {"owner_company_id", (*st)->Text(1)},
                      {"reason", (*st)->Text(2)},
                      {"since", Instant{(*st)->Int(3)}.ToString()}});
      next = fmt::format("{}:{}", (*st)->Int(3), (*st)->Text(0));
    }
    json out = {{"cylinders", list}, {"next_cursor", nullptr}};
    if (static_cast<std::int64_t>(list.size()) == limit) out["next_cursor"] = next;
    return Okay(out);
  });
}

void Inspections::PostScrap(const Call& call, Store::Done done) {
  auto body = ParseBody(call.request->body);
  if (!body.ok()) return done(ErrorReply(body.status()));
  std::optional<Date> date;
  std::optional<std::string> method, certificate_no;
  Status s = GetDate(*body, "date", Need::kRequired, &date);
  if (s.ok()) s = GetString(*body, "method", Need::kRequired, &method, 200);
  if (s.ok()) s = GetString(*body, "certificate_no", Need::kRequired, &certificate_no, 64);
  const Date today = clock_->Now().LocalDate(policy_.utc_offset_minutes);
  if (s.ok() && today < *date) s = Status::Invalid("the scrapping date is in the future");
  if (!s.ok()) return done(ErrorReply(s));
  auto code = NormaliseCode(call.params[0]);
  if (!code.ok()) return done(ErrorReply(Status::NotFound(code.status().message())));
  Write(std::move(done), [=, code = *code, who = call.who](WriteTx& tx) -> Reply {
    if (Status guarded = GuardCylinder(tx, code); !guarded.ok()) return ErrorReply(guarded);
    auto row = LoadCylinder(tx.conn(), code);
    if (!row.ok()) return ErrorReply(row.status());
    if (!*row) return ErrorReply(Status::NotFound(fmt::format("no cylinder {}", code)));
    if ((*row)->cylinder.state == CylinderState::kScrapped) {
      return ErrorReply(Status::Conflict(fmt::format("cylinder {} is already scrapped", code)));
    }
    // DOMAIN.md: active -> scrap_pending (flagged) -> scrapped.
    if ((*row)->cylinder.state != CylinderState::kScrapPending) {
      return ErrorReply(Status::Conflict(
          fmt::format("cylinder {} is not flagged for scrapping; record the failed inspection "
                      "or assessment that flags it first",
                      code)));
    }
    json out = {{"code", code},        {"date", date->ToString()},
                {"method", *method},   {"certificate_no", *certificate_no},
                {"state", "scrapped"}, {"registration_state", "cancelled"}};
    auto seq =
        tx.Append({"", code, "scrapped", tx.now(), ToString(who.role), who.subject, out.dump()});
    if (!seq.ok()) return ErrorReply(seq.status());
    auto st = tx.conn().Prepare(
        "UPDATE cylinders SET state = 'scrapped', registration_state = 'cancelled', "
        "state_reason = COALESCE(state_reason, 'scrapped'), state_since = $1, rev = $2 "
        "WHERE code = $3");
    if (!st.ok()) return ErrorReply(st.status());
    (*st)->Bind(1, tx.now().unix_ms).Bind(2, tx.Revision(*seq)).Bind(3, code);
    if (Status r = (*st)->Run(); !r.ok()) return ErrorReply(r);
    return Okay(out);
  });
}

}  // namespace pingma::registry
