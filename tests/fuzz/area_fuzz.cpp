// Delivery areas (registry/src/geo/) on any input, read two ways:
//  - as JSON text: whatever geometry it holds, ParseArea answers and never crashes;
//  - as a small polygon on a lattice of 1/16 degree (a ring count, then for each
//    ring a point count and one byte a point), where crossings, touches, spikes and
//    shared edges are common: when ParseArea takes it, the AreaIndex and the plain
//    Area::Covers must agree on every point of a lattice four times finer, and every
//    vertex must be covered.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "geo/area.h"
#include "geo/area_index.h"

using nlohmann::json;
using namespace pingma::registry::geo;

namespace {

void CheckAgainstPlain(const Area& area) {
  std::vector<std::pair<std::string, Area>> one;
  one.emplace_back("a", area);
  auto index = AreaIndex::Build(std::move(one));
  if (!index.ok()) std::abort();
  for (int i = -2; i <= 66; ++i) {
    for (int j = -2; j <= 66; ++j) {
      const double lon = 116 + i / 64.0;
      const double lat = 39 + j / 64.0;
      const bool plain = area.Covers(lon, lat);
      if ((*index)->Covers("a", lon, lat) != plain) std::abort();
      if ((*index)->Covering(lon, lat).size() != (plain ? 1u : 0u)) std::abort();
    }
  }
  for (const Polygon& polygon : area.polygons()) {
    for (const auto& ring : polygon.rings) {
      for (const GridPoint& p : ring) {
        if (!(*index)->Covers("a", FromGrid(p.x), FromGrid(p.y))) std::abort();
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const json text = json::parse(data, data + size, nullptr, false);
  if (!text.is_discarded()) {
    auto area = ParseArea(text);
    if (area.ok()) CheckAgainstPlain(*area);
  }

  if (size < 2) return 0;
  std::size_t at = 0;
  const int ring_count = data[at++] % 4 + 1;
  json rings = json::array();
  for (int r = 0; r < ring_count && at < size; ++r) {
    const int n = data[at++] % 9 + 3;
    json ring = json::array();
    for (int k = 0; k < n && at < size; ++k, ++at) {
      ring.push_back({116 + (data[at] >> 4) / 16.0, 39 + (data[at] & 15) / 16.0});
    }
    if (!ring.empty()) ring.push_back(ring.front());
    rings.push_back(std::move(ring));
  }
  auto area = ParseArea(json{{"type", "Polygon"}, {"coordinates", std::move(rings)}});
  if (area.ok()) CheckAgainstPlain(*area);
  return 0;
}
