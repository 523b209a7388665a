#include "pingma/common/cylinder_json.h"

#include <cmath>
#include <limits>
#include <utility>

namespace pingma {

using nlohmann::json;

json CylinderToJson(const Cylinder& c) {
  json out = {
      {"code", c.code},
      {"owner_company_id", c.owner_company_id},
      {"model", c.model},
      {"phase", ToString(c.phase)},
      {"manufacturer", c.manufacturer},
      {"serial", c.serial},
      {"manufactured", c.manufactured.ToString()},
      {"tare_kg", c.tare_kg},
      {"registration_no", c.registration_no},
      {"state", ToString(c.state)},
  };
  if (c.allowed_fill_kg) out["allowed_fill_kg"] = *c.allowed_fill_kg;
  if (c.design_life_years) out["design_life_years"] = *c.design_life_years;
  if (c.last_inspection) out["last_inspection"] = c.last_inspection->ToString();
  if (c.last_inspection_result) out["last_inspection_result"] = ToString(*c.last_inspection_result);
  if (c.next_inspection_due) out["next_inspection_due"] = c.next_inspection_due->ToString();
  if (c.assessment) {
    out["assessment"] = {{"date", c.assessment->date.ToString()},
                         {"result", c.assessment->passed ? "pass" : "fail"}};
    if (c.assessment->extends_until) {
      out["assessment"]["extends_until"] = c.assessment->extends_until->ToString();
    }
  }
  return out;
}

namespace {

// A member that must be there, as a string.
Result<std::string> Need(const std::optional<std::string>& value, const char* key) {
  if (!value) return Status::Malformed(std::string("cylinder: no string '") + key + "'");
  return *value;
}

// A value that did not parse, named with its member.
template <typename T>
Result<T> Parsed(Result<T> parsed, const char* key) {
  if (!parsed.ok()) {
    return Status::Invalid(std::string("cylinder: '") + key + "': " + parsed.status().message());
  }
  return parsed;
}

// A member that may be absent: parsed when there.
template <typename T, typename Parse>
Status ParsedOpt(const std::optional<std::string>& text, const char* key, Parse parse,
                 std::optional<T>* out) {
  if (!text) return Status::Ok();
  PINGMA_ASSIGN_OR_RETURN(*out, Parsed<T>(parse(*text), key));
  return Status::Ok();
}

}  // namespace

Result<Cylinder> CylinderFromMembers(const CylinderJsonMembers& m) {
  Cylinder c;
  PINGMA_ASSIGN_OR_RETURN(c.code, Need(m.code, "code"));
  PINGMA_ASSIGN_OR_RETURN(c.owner_company_id, Need(m.owner_company_id, "owner_company_id"));
  PINGMA_ASSIGN_OR_RETURN(c.model, Need(m.model, "model"));
  PINGMA_ASSIGN_OR_RETURN(const std::string phase, Need(m.phase, "phase"));
  PINGMA_ASSIGN_OR_RETURN(c.phase, Parsed(ParsePhase(phase), "phase"));
  PINGMA_ASSIGN_OR_RETURN(c.manufacturer, Need(m.manufacturer, "manufacturer"));
  c.serial = m.serial.value_or("");
  PINGMA_ASSIGN_OR_RETURN(const std::string manufactured, Need(m.manufactured, "manufactured"));
  PINGMA_ASSIGN_OR_RETURN(c.manufactured, Parsed(YearMonth::Parse(manufactured), "manufactured"));
  if (!m.tare_kg || !std::isfinite(*m.tare_kg)) {
    return Status::Malformed("cylinder: no number 'tare_kg'");
  }
  c.tare_kg = *m.tare_kg;
  c.registration_no = m.registration_no.value_or("");
  PINGMA_ASSIGN_OR_RETURN(const std::string state, Need(m.state, "state"));
  PINGMA_ASSIGN_OR_RETURN(c.state, Parsed(ParseCylinderState(state), "state"));

  c.allowed_fill_kg = m.allowed_fill_kg;
  if (m.design_life_years_bad ||
      (m.design_life_years && (*m.design_life_years < std::numeric_limits<int>::min() ||
                               *m.design_life_years > std::numeric_limits<int>::max()))) {
    return Status::Malformed("cylinder: 'design_life_years'");
  }
  if (m.design_life_years) c.design_life_years = static_cast<int>(*m.design_life_years);
  PINGMA_RETURN_IF_ERROR(
      ParsedOpt(m.last_inspection, "last_inspection", Date::Parse, &c.last_inspection));
  PINGMA_RETURN_IF_ERROR(ParsedOpt(m.last_inspection_result, "last_inspection_result",
                                   ParseInspectionResult, &c.last_inspection_result));
  PINGMA_RETURN_IF_ERROR(
      ParsedOpt(m.next_inspection_due, "next_inspection_due", Date::Parse, &c.next_inspection_due));
  if (m.has_assessment) {
    Assessment a;
    PINGMA_ASSIGN_OR_RETURN(const std::string date, Need(m.assessment_date, "date"));
    PINGMA_ASSIGN_OR_RETURN(a.date, Parsed(Date::Parse(date), "assessment.date"));
    PINGMA_ASSIGN_OR_RETURN(const std::string result, Need(m.assessment_result, "result"));
    PINGMA_ASSIGN_OR_RETURN(const InspectionResult passed,
                            Parsed(ParseInspectionResult(result), "assessment.result"));
    a.passed = passed == InspectionResult::kPass;
    PINGMA_RETURN_IF_ERROR(ParsedOpt(m.assessment_extends_until, "assessment.extends_until",
                                     Date::Parse, &a.extends_until));
    c.assessment = a;
  }
  return c;
}

namespace {

std::optional<std::string> String(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

std::optional<double> Number(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

}  // namespace

Result<Cylinder> CylinderFromJson(const json& o) {
  if (!o.is_object()) return Status::Malformed("cylinder: not a JSON object");
  CylinderJsonMembers m;
  m.code = String(o, "code");
  m.owner_company_id = String(o, "owner_company_id");
  m.model = String(o, "model");
  m.phase = String(o, "phase");
  m.manufacturer = String(o, "manufacturer");
  m.serial = String(o, "serial");
  m.manufactured = String(o, "manufactured");
  m.registration_no = String(o, "registration_no");
  m.state = String(o, "state");
  m.last_inspection = String(o, "last_inspection");
  m.last_inspection_result = String(o, "last_inspection_result");
  m.next_inspection_due = String(o, "next_inspection_due");
  m.tare_kg = Number(o, "tare_kg");
  m.allowed_fill_kg = Number(o, "allowed_fill_kg");
  if (auto it = o.find("design_life_years"); it != o.end() && !it->is_null()) {
    // An integer of 64 bits, as the station's reader takes it.
    const bool integer = it->is_number_unsigned()
                             ? it->get<std::uint64_t>() <= std::numeric_limits<std::int64_t>::max()
                             : it->is_number_integer();
    if (integer) {
      m.design_life_years = it->get<std::int64_t>();
    } else {
      m.design_life_years_bad = true;
    }
  }
  if (auto it = o.find("assessment"); it != o.end() && it->is_object()) {
    m.has_assessment = true;
    m.assessment_date = String(*it, "date");
    m.assessment_result = String(*it, "result");
    m.assessment_extends_until = String(*it, "extends_until");
  }
  return CylinderFromMembers(m);
}

}  // namespace pingma
