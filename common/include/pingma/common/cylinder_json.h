// The cylinder record's wire form: one JSON object, written by the registry (its API
// and the fleet feed add what they know beside it: carriers, registration state,
// service life end) and read back by the station.
//
// Pure functions on values: safe from any thread. Nothing here throws.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "pingma/common/domain.h"
#include "pingma/common/status.h"

namespace pingma {

/// The record's own fields: code, owner_company_id, model, phase, manufacturer,
/// serial, manufactured ("2023-01"), tare_kg, registration_no, state, and when known
/// allowed_fill_kg, design_life_years, last_inspection, last_inspection_result,
/// next_inspection_due (as recorded) and assessment {date, result, extends_until}.
nlohmann::json CylinderToJson(const Cylinder& cylinder);

/// The members of a cylinder object, as whichever JSON reader holds the text found
/// them (CylinderFromJson for nlohmann; the station indexes the feed's large pages
/// with its own reader). A member of another JSON type than its field's is absent.
struct CylinderJsonMembers {
  std::optional<std::string> code, owner_company_id, model, phase, manufacturer, serial,
      manufactured, registration_no, state, last_inspection, last_inspection_result,
      next_inspection_due;
  std::optional<double> tare_kg, allowed_fill_kg;
  /// design_life_years: absent when the member is absent or null.
  std::optional<std::int64_t> design_life_years;
  /// The member is there, not null, and not an integer of 64 bits.
  bool design_life_years_bad = false;
  /// assessment, when it is an object: its date, result and extends_until.
  bool has_assessment = false;
  std::optional<std::string> assessment_date, assessment_result, assessment_extends_until;
};

/// The record from its members. kMalformed names a required member missing or of the
/// wrong type ("cylinder: no string 'model'"), kInvalid a value that does not parse
/// ("cylinder: 'phase': ..."). serial and registration_no default to "".
Result<Cylinder> CylinderFromMembers(const CylinderJsonMembers& members);

/// CylinderFromMembers of an object read with nlohmann.
Result<Cylinder> CylinderFromJson(const nlohmann::json& object);

}  // namespace pingma
