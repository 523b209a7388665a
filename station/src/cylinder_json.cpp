#include "cylinder_json.h"

#include <cmath>

#include "pingma/scanner/scan.h"

namespace pingma::station {

using nlohmann::json;

std::string JsonString(const json& object, const char* key, const std::string& fallback) {
  if (!object.is_object()) return fallback;
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : fallback;
}

std::optional<std::string> JsonOptString(const json& object, const char* key) {
  if (!object.is_object()) return std::nullopt;
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

std::optional<double> JsonOptNumber(const json& object, const char* key) {
  if (!object.is_object()) return std::nullopt;
  auto it = object.find(key);
  if (it == object.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

bool JsonBool(const json& object, const char* key, bool fallback) {
  if (!object.is_object()) return fallback;
  auto it = object.find(key);
  return it != object.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

namespace {

// A field that must be there, as a string.
Status Need(const json& object, const char* key, std::string* out) {
  auto value = JsonOptString(object, key);
  if (!value) return Status::Malformed(std::string("cylinder: no string '") + key + "'");
  *out = std::move(*value);
  return Status::Ok();
}

// A value that did not parse, named with its field.
template <typename T>
Status Parsed(Result<T> parsed, const char* key, T* out) {
  if (!parsed.ok()) {
    return Status::Invalid(std::string("cylinder: '") + key + "': " + parsed.status().message());
  }
  *out = std::move(*parsed);
  return Status::Ok();
}

template <typename T>
Status ParsedOpt(Result<T> parsed, const char* key, std::optional<T>* out) {
  T value{};
  PINGMA_RETURN_IF_ERROR(Parsed(std::move(parsed), key, &value));
  *out = std::move(value);
  return Status::Ok();
}

}  // namespace

Result<FleetCylinder> ParseFleetCylinder(const json& o) {
  if (!o.is_object()) return Status::Malformed("a cylinder of the feed is not an object");
  FleetCylinder out;
  Cylinder& c = out.cylinder;
  std::string text;
  PINGMA_RETURN_IF_ERROR(Need(o, "code", &text));
  auto code = NormaliseCode(text);
  if (!code.ok() || *code != text) {
    return Status::Invalid("cylinder: '" + text + "' is not a code as registered");
  }
  c.code = std::move(*code);
  PINGMA_RETURN_IF_ERROR(Need(o, "owner_company_id", &c.owner_company_id));
  PINGMA_RETURN_IF_ERROR(Need(o, "model", &c.model));
  PINGMA_RETURN_IF_ERROR(Need(o, "phase", &text));
  PINGMA_RETURN_IF_ERROR(Parsed(ParsePhase(text), "phase", &c.phase));
  PINGMA_RETURN_IF_ERROR(Need(o, "manufacturer", &c.manufacturer));
  c.serial = JsonString(o, "serial");
  PINGMA_RETURN_IF_ERROR(Need(o, "manufactured", &text));
  PINGMA_RETURN_IF_ERROR(Parsed(YearMonth::Parse(text), "manufactured", &c.manufactured));
  auto tare = JsonOptNumber(o, "tare_kg");
  if (!tare || !std::isfinite(*tare)) return Status::Malformed("cylinder: no number 'tare_kg'");
  c.tare_kg = *tare;
  c.registration_no = JsonString(o, "registration_no");
  PINGMA_RETURN_IF_ERROR(Need(o, "state", &text));
  PINGMA_RETURN_IF_ERROR(Parsed(ParseCylinderState(text), "state", &c.state));

  c.allowed_fill_kg = JsonOptNumber(o, "allowed_fill_kg");
  if (auto it = o.find("design_life_years"); it != o.end() && !it->is_null()) {
    if (!it->is_number_integer()) return Status::Malformed("cylinder: 'design_life_years'");
    c.design_life_years = it->get<int>();
  }
  if (auto v = JsonOptString(o, "last_inspection")) {
    PINGMA_RETURN_IF_ERROR(ParsedOpt(Date::Parse(*v), "last_inspection", &c.last_inspection));
  }
  if (auto v = JsonOptString(o, "last_inspection_result")) {
    PINGMA_RETURN_IF_ERROR(
        ParsedOpt(ParseInspectionResult(*v), "last_inspection_result", &c.last_inspection_result));
  }
  if (auto v = JsonOptString(o, "next_inspection_due")) {
    PINGMA_RETURN_IF_ERROR(
        ParsedOpt(Date::Parse(*v), "next_inspection_due", &c.next_inspection_due));
  }
  if (auto it = o.find("assessment"); it != o.end() && it->is_object()) {
    Assessment a;
    PINGMA_RETURN_IF_ERROR(Need(*it, "date", &text));
    PINGMA_RETURN_IF_ERROR(Parsed(Date::Parse(text), "assessment.date", &a.date));
    PINGMA_RETURN_IF_ERROR(Need(*it, "result", &text));
    InspectionResult result = InspectionResult::kFail;
    PINGMA_RETURN_IF_ERROR(Parsed(ParseInspectionResult(text), "assessment.result", &result));
    a.passed = result == InspectionResult::kPass;
    if (auto until = JsonOptString(*it, "extends_until")) {
      PINGMA_RETURN_IF_ERROR(
          ParsedOpt(Date::Parse(*until), "assessment.extends_until", &a.extends_until));
    }
    c.assessment = a;
  }
  if (auto it = o.find("carriers"); it != o.end() && it->is_array()) {
    for (const json& carrier : *it) {
      if (carrier.is_string()) out.carriers.push_back(carrier.get<std::string>());
    }
  }
  return out;
}

}  // namespace pingma::station
