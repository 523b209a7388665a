#include "cylinder_json.h"

#include <cmath>
#include <limits>

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
Status Need(const std::optional<JsonValue>& value, const char* key, std::string* out) {
  auto text = value ? value->String() : std::nullopt;
  if (!text) return Status::Malformed(std::string("cylinder: no string '") + key + "'");
  *out = std::move(*text);
  return Status::Ok();
}

// A field that may be absent: the wrong type is the same as absent.
std::optional<std::string> OptString(const std::optional<JsonValue>& value) {
  return value ? value->String() : std::nullopt;
}

std::optional<double> OptNumber(const std::optional<JsonValue>& value) {
  return value ? value->Number() : std::nullopt;
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

// The fields read, in the order the registry writes them (by name), so that one
// pass over the object finds each at its first try.
enum Field {
  kAllowedFill,
  kAssessment,
  kCarriers,
  kCode,
  kDesignLife,
  kLastInspection,
  kLastResult,
  kManufactured,
  kManufacturer,
  kModel,
  kNextDue,
  kOwner,
  kPhase,
  kRegistrationNo,
  kSerial,
  kState,
  kTare,
  kFields
};
constexpr std::string_view kNames[kFields] = {"allowed_fill_kg",
                                              "assessment",
                                              "carriers",
                                              "code",
                                              "design_life_years",
                                              "last_inspection",
                                              "last_inspection_result",
                                              "manufactured",
                                              "manufacturer",
                                              "model",
                                              "next_inspection_due",
                                              "owner_company_id",
                                              "phase",
                                              "registration_no",
                                              "serial",
                                              "state",
                                              "tare_kg"};

constexpr std::string_view kAssessmentNames[3] = {"date", "extends_until", "result"};

}  // namespace

Result<FleetCylinder> ParseFleetCylinder(const JsonValue& o) {
  if (!o.is_object()) return Status::Malformed("a cylinder of the feed is not an object");
  std::optional<JsonValue> f[kFields];
  o.FindAll(kNames, kFields, f);
  FleetCylinder out;
  Cylinder& c = out.cylinder;
  std::string text;
  PINGMA_RETURN_IF_ERROR(Need(f[kCode], "code", &text));
  auto code = NormaliseCode(text);
  if (!code.ok() || *code != text) {
    return Status::Invalid("cylinder: '" + text + "' is not a code as registered");
  }
  c.code = std::move(*code);
  PINGMA_RETURN_IF_ERROR(Need(f[kOwner], "owner_company_id", &c.owner_company_id));
  PINGMA_RETURN_IF_ERROR(Need(f[kModel], "model", &c.model));
  PINGMA_RETURN_IF_ERROR(Need(f[kPhase], "phase", &text));
  PINGMA_RETURN_IF_ERROR(Parsed(ParsePhase(text), "phase", &c.phase));
  PINGMA_RETURN_IF_ERROR(Need(f[kManufacturer], "manufacturer", &c.manufacturer));
  c.serial = OptString(f[kSerial]).value_or("");
  PINGMA_RETURN_IF_ERROR(Need(f[kManufactured], "manufactured", &text));
  PINGMA_RETURN_IF_ERROR(Parsed(YearMonth::Parse(text), "manufactured", &c.manufactured));
  auto tare = OptNumber(f[kTare]);
  if (!tare || !std::isfinite(*tare)) return Status::Malformed("cylinder: no number 'tare_kg'");
  c.tare_kg = *tare;
  c.registration_no = OptString(f[kRegistrationNo]).value_or("");
  PINGMA_RETURN_IF_ERROR(Need(f[kState], "state", &text));
  PINGMA_RETURN_IF_ERROR(Parsed(ParseCylinderState(text), "state", &c.state));

  c.allowed_fill_kg = OptNumber(f[kAllowedFill]);
  if (f[kDesignLife] && !f[kDesignLife]->is_null()) {
    auto years = f[kDesignLife]->Integer();
    if (!years || *years < std::numeric_limits<int>::min() ||
        *years > std::numeric_limits<int>::max()) {
      return Status::Malformed("cylinder: 'design_life_years'");
    }
    c.design_life_years = static_cast<int>(*years);
  }
  if (auto v = OptString(f[kLastInspection])) {
    PINGMA_RETURN_IF_ERROR(ParsedOpt(Date::Parse(*v), "last_inspection", &c.last_inspection));
  }
  if (auto v = OptString(f[kLastResult])) {
    PINGMA_RETURN_IF_ERROR(
        ParsedOpt(ParseInspectionResult(*v), "last_inspection_result", &c.last_inspection_result));
  }
  if (auto v = OptString(f[kNextDue])) {
    PINGMA_RETURN_IF_ERROR(
        ParsedOpt(Date::Parse(*v), "next_inspection_due", &c.next_inspection_due));
  }
  if (f[kAssessment] && f[kAssessment]->is_object()) {
    std::optional<JsonValue> af[3];
    f[kAssessment]->FindAll(kAssessmentNames, 3, af);
    Assessment a;
    PINGMA_RETURN_IF_ERROR(Need(af[0], "date", &text));
    PINGMA_RETURN_IF_ERROR(Parsed(Date::Parse(text), "assessment.date", &a.date));
    PINGMA_RETURN_IF_ERROR(Need(af[2], "result", &text));
    InspectionResult result = InspectionResult::kFail;
    PINGMA_RETURN_IF_ERROR(Parsed(ParseInspectionResult(text), "assessment.result", &result));
    a.passed = result == InspectionResult::kPass;
    if (auto until = OptString(af[1])) {
      PINGMA_RETURN_IF_ERROR(
          ParsedOpt(Date::Parse(*until), "assessment.extends_until", &a.extends_until));
    }
    c.assessment = a;
  }
  if (f[kCarriers] && f[kCarriers]->is_array()) {
    for (const JsonValue& carrier : f[kCarriers]->Elements()) {
      if (auto key = carrier.String()) out.carriers.push_back(std::move(*key));
    }
  }
  return out;
}

Result<FleetCylinder> ParseFleetCylinder(std::string text) {
  PINGMA_ASSIGN_OR_RETURN(auto doc, JsonDoc::Parse(std::move(text)));
  return ParseFleetCylinder(doc.Root());
}

}  // namespace pingma::station
