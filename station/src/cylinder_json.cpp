#include "cylinder_json.h"

#include "pingma/common/cylinder_json.h"
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
  auto text = [&f](Field k) { return f[k] ? f[k]->String() : std::nullopt; };
  CylinderJsonMembers m;
  m.code = text(kCode);
  if (m.code) {
    auto code = NormaliseCode(*m.code);
    if (!code.ok() || *code != *m.code) {
      return Status::Invalid("cylinder: '" + *m.code + "' is not a code as registered");
    }
  }
  m.owner_company_id = text(kOwner);
  m.model = text(kModel);
  m.phase = text(kPhase);
  m.manufacturer = text(kManufacturer);
  m.serial = text(kSerial);
  m.manufactured = text(kManufactured);
  m.registration_no = text(kRegistrationNo);
  m.state = text(kState);
  m.last_inspection = text(kLastInspection);
  m.last_inspection_result = text(kLastResult);
  m.next_inspection_due = text(kNextDue);
  m.tare_kg = f[kTare] ? f[kTare]->Number() : std::nullopt;
  m.allowed_fill_kg = f[kAllowedFill] ? f[kAllowedFill]->Number() : std::nullopt;
  if (f[kDesignLife] && !f[kDesignLife]->is_null()) {
    m.design_life_years = f[kDesignLife]->Integer();
    m.design_life_years_bad = !m.design_life_years;
  }
  if (f[kAssessment] && f[kAssessment]->is_object()) {
    std::optional<JsonValue> af[3];
    f[kAssessment]->FindAll(kAssessmentNames, 3, af);
    m.has_assessment = true;
    m.assessment_date = af[0] ? af[0]->String() : std::nullopt;
    m.assessment_extends_until = af[1] ? af[1]->String() : std::nullopt;
    m.assessment_result = af[2] ? af[2]->String() : std::nullopt;
  }
  FleetCylinder out;
  PINGMA_ASSIGN_OR_RETURN(out.cylinder, CylinderFromMembers(m));
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
