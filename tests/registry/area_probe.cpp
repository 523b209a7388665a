// area_probe: the delivery areas (registry/src/geo/) driven from stdin, for the tests
// that compare them with programs this project did not write (area_shapely_test.py).
//
// One JSON object a line in, one a line out:
//   {"areas": [{"id": "a", "geometry": {...}}, ...]}
//       -> {"areas": 2}, the index built (it replaces any before);
//          or {"error": {"id": "a", "code": "INVALID", "message": "..."}} when an area
//          is refused, and the program exits with status 1
//   {"points": [[lon, lat], ...], "each": true}
//       -> {"covering": [["a", "b"], [], ...]}: AreaIndex::Covering for each point;
//          with "each", also "covers": the ids for which AreaIndex::Covers is true,
//          asking every area in turn
//   {"check": [geometry, ...]}
//       -> {"check": [null, "INVALID: ...", ...]}: ParseArea's answer for each
// A line that is not such an object -> {"error": {"message": "..."}}, status 2.
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "geo/area.h"
#include "geo/area_index.h"

using nlohmann::json;
using pingma::registry::geo::Area;
using pingma::registry::geo::AreaIndex;
using pingma::registry::geo::ParseArea;

namespace {

[[noreturn]] void Refuse(const std::string& message, int status) {
  std::cout << json{{"error", {{"message", message}}}}.dump() << std::endl;
  std::exit(status);
}

}  // namespace

int main() {
  std::ios::sync_with_stdio(false);
  std::shared_ptr<const AreaIndex> index;
  std::vector<std::string> ids;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    json in = json::parse(line, nullptr, false);
    if (!in.is_object()) Refuse("a line must be a JSON object", 2);
    json out;
    if (in.contains("areas") && in["areas"].is_array()) {
      std::vector<std::pair<std::string, Area>> areas;
      ids.clear();
      for (const json& item : in["areas"]) {
        if (!item.is_object() || !item.contains("id") || !item["id"].is_string() ||
            !item.contains("geometry")) {
          Refuse("an area is {\"id\": string, \"geometry\": object}", 2);
        }
        const std::string id = item["id"];
        auto area = ParseArea(item["geometry"]);
        if (!area.ok()) {
          std::cout << json{{"error",
                             {{"id", id},
                              {"code", pingma::StatusCodeName(area.status().code())},
                              {"message", area.status().message()}}}}
                           .dump()
                    << std::endl;
          return 1;
        }
        ids.push_back(id);
        areas.emplace_back(id, std::move(area).value());
      }
      auto built = AreaIndex::Build(std::move(areas));
      if (!built.ok()) Refuse(built.status().ToString(), 1);
      index = *built;
      out["areas"] = index->size();
    } else if (in.contains("points") && in["points"].is_array()) {
      if (!index) Refuse("points before areas", 2);
      const bool each = in.value("each", false);
      json covering = json::array();
      json covers = json::array();
      for (const json& p : in["points"]) {
        if (!p.is_array() || p.size() != 2 || !p[0].is_number() || !p[1].is_number()) {
          Refuse("a point is [lon, lat]", 2);
        }
        const double lon = p[0];
        const double lat = p[1];
        json found = json::array();
        for (const std::string_view id : index->Covering(lon, lat)) found.push_back(id);
        covering.push_back(std::move(found));
        if (each) {
          json yes = json::array();
          for (const std::string& id : ids) {
            if (index->Covers(id, lon, lat)) yes.push_back(id);
          }
          covers.push_back(std::move(yes));
        }
      }
      out["covering"] = std::move(covering);
      if (each) out["covers"] = std::move(covers);
    } else if (in.contains("check") && in["check"].is_array()) {
      json answers = json::array();
      for (const json& geometry : in["check"]) {
        auto area = ParseArea(geometry);
        answers.push_back(area.ok() ? json(nullptr) : json(area.status().ToString()));
      }
      out["check"] = std::move(answers);
    } else {
      Refuse("a line holds \"areas\", \"points\" or \"check\"", 2);
    }
    std::cout << out.dump() << '\n' << std::flush;
  }
  return 0;
}
