// The fleet feed's cylinder objects (registry/src/cases/queries.cpp CylinderJson) read
// back into pingma::Cylinder through the common codec (pingma/common/cylinder_json.h),
// and readers of JSON fields that never throw.
//
// Pure functions, no state: safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "json_doc.h"
#include "pingma/common/domain.h"
#include "pingma/common/status.h"

namespace pingma::station {

/// One cylinder of a fleet page: its record, and the carriers bound to it.
struct FleetCylinder {
  Cylinder cylinder;
  std::vector<std::string> carriers;  ///< canonical keys: "EPC:...", "UID:...", "GRAI:..."
};

/// Reads one cylinder object of the feed. kMalformed names the field that is
/// missing or of the wrong type, kInvalid a value that does not parse (a date, a
/// phase). `next_inspection_due`, which the feed computes, is kept as the recorded
/// due date: under the same policy NextInspectionDue gives that date back either way.
Result<FleetCylinder> ParseFleetCylinder(const JsonValue& object);
/// The same, of a cylinder object's text (kMalformed when it is not JSON).
Result<FleetCylinder> ParseFleetCylinder(std::string text);

/// Field readers for JSON from the network: the wrong type is the same as absent,
/// so that no nlohmann exception can leave the station library.
std::string JsonString(const nlohmann::json& object, const char* key,
                       const std::string& fallback = "");
std::optional<std::string> JsonOptString(const nlohmann::json& object, const char* key);
std::optional<double> JsonOptNumber(const nlohmann::json& object, const char* key);
bool JsonBool(const nlohmann::json& object, const char* key, bool fallback);

}  // namespace pingma::station
