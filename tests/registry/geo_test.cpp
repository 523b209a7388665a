// Delivery areas: every check of ParseArea at its boundary (3 and 4 positions, a
// ring closed or not, longitude 180 and 180.0000001, latitude ±90, rings touching
// and crossing), the boundary rule (points on shell and hole edges and vertices
// covered, a grid step outside not), AreaIndex against the plain Area::Covers on
// random shapes and points, and DistanceMetres against known distances.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "geo/area.h"
#include "geo/area_index.h"
#include "geo/distance.h"

namespace pingma::registry::geo {
namespace {

using nlohmann::json;

constexpr double kStep = 1.0 / 4294967296.0;  // one grid step, 2^-32 degree

json Polygon(const std::vector<json>& rings) {
  return json{{"type", "Polygon"}, {"coordinates", json(rings)}};
}

// A closed ring from its corners: [[x, y], ...] with the first repeated at the end.
json Ring(std::vector<std::pair<double, double>> corners) {
  json ring = json::array();
  for (const auto& [x, y] : corners) ring.push_back({x, y});
  ring.push_back(ring.front());
  return ring;
}

// A box with corners (x0, y0) and (x1, y1), counter-clockwise.
json Box(double x0, double y0, double x1, double y1) {
  return Ring({{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}});
}

Area Parse(const json& geometry) {
  auto area = ParseArea(geometry);
  REQUIRE_MESSAGE(area.ok(), area.status().ToString());
  return std::move(area).value();
}

std::string ErrorOf(const json& geometry) {
  auto area = ParseArea(geometry);
  return area.ok() ? "OK" : area.status().ToString();
}

TEST_CASE("a geometry that is not a Polygon or a MultiPolygon is refused, saying where") {
  struct Row {
    const char* geometry;
    const char* error;
  };
  const Row rows[] = {
      {R"([])", "INVALID: geometry: must be a GeoJSON geometry object, got an array"},
      {R"({"coordinates": []})",
       "INVALID: geometry.type: missing; must be \"Polygon\" or \"MultiPolygon\""},
      {R"({"type": 7, "coordinates": []})",
       "INVALID: geometry.type: must be \"Polygon\" or \"MultiPolygon\", got a number"},
      {R"({"type": "Point", "coordinates": [116.4, 39.9]})",
       "INVALID: geometry.type: must be \"Polygon\" or \"MultiPolygon\", got \"Point\""},
      {R"({"type": "polygon", "coordinates": []})",
       "INVALID: geometry.type: must be \"Polygon\" or \"MultiPolygon\", got \"polygon\""},
      {R"({"type": "Polygon"})", "INVALID: geometry.coordinates: missing"},
      {R"({"type": "Polygon", "coordinates": {}})",
       "INVALID: geometry.coordinates: a Polygon's coordinates must be an array of rings, got an "
       "object"},
      {R"({"type": "Polygon", "coordinates": []})",
       "INVALID: geometry.coordinates: a polygon needs at least one ring, its shell"},
      {R"({"type": "MultiPolygon", "coordinates": []})",
       "INVALID: geometry.coordinates: a MultiPolygon needs at least one polygon"},
      {R"({"type": "MultiPolygon", "coordinates": [[]]})",
       "INVALID: geometry.coordinates[0]: a polygon needs at least one ring, its shell"},
      {R"({"type": "MultiPolygon", "coordinates": ["x"]})",
       "INVALID: geometry.coordinates[0]: a polygon must be an array of rings, got a string"},
      {R"({"type": "Polygon", "coordinates": [5]})",
       "INVALID: geometry.coordinates[0]: a ring must be an array of positions, got a number"},
      // 3 positions refused, 4 accepted.
      {R"({"type": "Polygon", "coordinates": [[[116, 39], [116.5, 39], [116, 39]]]})",
       "INVALID: geometry.coordinates[0]: a ring needs at least 4 positions (its first repeated "
       "as its last), got 3"},
      {R"({"type": "Polygon", "coordinates": [[[116, 39], [116.5, 39], [116, 39.5], [116, 39]]]})",
       "OK"},
      // Closed or not.
      {R"({"type": "MultiPolygon", "coordinates": [[
            [[116, 39], [117, 39], [117, 40], [116, 40], [116, 39]],
            [[116.2, 39.2], [116.2, 39.3], [116.3, 39.3], [116.2, 39.2]],
            [[116.3, 39.9], [116.5, 39.5], [116.6, 39.6], [116.4, 39.9]]]]})",
       "INVALID: geometry.coordinates[0][2]: ring is not closed (first [116.3, 39.9], last "
       "[116.4, 39.9])"},
      // Positions.
      {R"({"type": "Polygon", "coordinates": [[[116, 39], "116.5,39", [116, 39.5], [116, 39]]]})",
       "INVALID: geometry.coordinates[0][1]: a position must be an array [longitude, latitude], "
       "got a string"},
      {R"({"type": "Polygon", "coordinates": [[[116, 39], [116.5], [116, 39.5], [116, 39]]]})",
       "INVALID: geometry.coordinates[0][1]: a position must hold 2 numbers [longitude, "
       "latitude] (or 3, with an altitude), got 1"},
      {R"({"type": "Polygon", "coordinates": [[[116, 39], [116.5, 39, 0, 0], [116, 39.5], [116, 39]]]})",
       "INVALID: geometry.coordinates[0][1]: a position must hold 2 numbers [longitude, "
       "latitude] (or 3, with an altitude), got 4"},
      {R"({"type": "Polygon", "coordinates": [[[116, 39, 50], [116.5, 39, 51.5], [116, 39.5, 0], [116, 39, 50]]]})",
       "OK"},
      {R"({"type": "Polygon", "coordinates": [[[116, 39], [116.5, "39"], [116, 39.5], [116, 39]]]})",
       "INVALID: geometry.coordinates[0][1][1]: latitude must be a number, got a string"},
      {R"({"type": "Polygon", "coordinates": [[[116, 39], [null, 39], [116, 39.5], [116, 39]]]})",
       "INVALID: geometry.coordinates[0][1][0]: longitude must be a number, got null"},
      {R"({"type": "Polygon", "coordinates": [[[116, 39], [116.5, 39, true], [116, 39.5], [116, 39]]]})",
       "INVALID: geometry.coordinates[0][1][2]: altitude must be a number, got a boolean"},
      {R"({"type": "Polygon", "coordinates": [[[116, 39], [[[[116.5]]], 39], [116, 39.5], [116, 39]]]})",
       "INVALID: geometry.coordinates[0][1][0]: longitude must be a number, got an array"},
      // Longitude at and past ±180, latitude at and past ±90.
      {R"({"type": "Polygon", "coordinates": [[[179, 0], [180, 0], [180, 1], [179, 0]]]})", "OK"},
      {R"({"type": "Polygon", "coordinates": [[[179, 0], [180.0000001, 0], [180, 1], [179, 0]]]})",
       "INVALID: geometry.coordinates[0][1][0]: longitude 180.0000001 out of range -180..180"},
      {R"({"type": "Polygon", "coordinates": [[[-179, 0], [-180, 0], [-180, 1], [-179, 0]]]})",
       "OK"},
      {R"({"type": "Polygon", "coordinates": [[[-179, 0], [-180.0000001, 0], [-180, 1], [-179, 0]]]})",
       "INVALID: geometry.coordinates[0][1][0]: longitude -180.0000001 out of range -180..180"},
      {R"({"type": "Polygon", "coordinates": [[[0, 89], [1, 90], [0, 90], [0, 89]]]})", "OK"},
      {R"({"type": "Polygon", "coordinates": [[[0, 89], [1, 90.0000001], [0, 90], [0, 89]]]})",
       "INVALID: geometry.coordinates[0][1][1]: latitude 90.0000001 out of range -90..90"},
      {R"({"type": "Polygon", "coordinates": [[[0, -89], [0, -90], [1, -90], [0, -89]]]})", "OK"},
      {R"({"type": "Polygon", "coordinates": [[[0, -89], [0, -90], [1, -90.0000001], [0, -89]]]})",
       "INVALID: geometry.coordinates[0][2][1]: latitude -90.0000001 out of range -90..90"},
      {R"({"type": "Polygon", "coordinates": [[[0, 0], [1e300, 0], [1, 1], [0, 0]]]})",
       "INVALID: geometry.coordinates[0][1][0]: longitude 1e+300 out of range -180..180"},
      // Too few distinct positions: on the grid, or at all.
      {R"({"type": "Polygon", "coordinates": [[[116, 39], [116.5, 39], [116, 39], [116, 39]]]})",
       "INVALID: geometry.coordinates[0]: ring has no area: it has only 2 distinct positions (on "
       "the grid of 2^-32 degree)"},
      {R"({"type": "Polygon", "coordinates": [[[116, 39], [116.5, 39], [116.5000000000001, 39], [116, 39]]]})",
       "INVALID: geometry.coordinates[0]: ring has no area: it has only 2 distinct positions (on "
       "the grid of 2^-32 degree)"},
      // Repeated positions are allowed.
      {R"({"type": "Polygon", "coordinates": [[[116, 39], [116, 39], [116.5, 39], [116.5, 39],
            [116, 39.5], [116, 39], [116, 39]]]})",
       "OK"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.geometry);
    CHECK(ErrorOf(json::parse(row.geometry)) == row.error);
  }
}

TEST_CASE("a coordinate that is NaN or infinite is refused") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  CHECK(ErrorOf(Polygon({Ring({{116, 39}, {nan, 39}, {116, 39.5}})})) ==
        "INVALID: geometry.coordinates[0][1][0]: longitude must be finite, got nan");
  CHECK(ErrorOf(Polygon({Ring({{116, 39}, {116.5, -inf}, {116, 39.5}})})) ==
        "INVALID: geometry.coordinates[0][1][1]: latitude must be finite, got -inf");
}

TEST_CASE("a ring that crosses, touches or doubles back on itself is refused") {
  struct Row {
    const char* name;
    json ring;
    const char* error;
  };
  const Row rows[] = {
      {"a bow tie: edges 0 and 2 cross", Ring({{116, 39}, {116.5, 39.5}, {116.5, 39}, {116, 39.5}}),
       "INVALID: geometry.coordinates[0]: ring crosses itself: edge 0 and edge 2 meet near "
       "[116.25, 39.25]"},
      {"a crossing far along a big ring",
       Ring({{116, 39},
             {117, 39},
             {117, 40},
             {116.5, 40},
             {116.5, 39.5},
             {116.75, 39.5},
             {116.75, 40.25},
             {116, 40.25}}),
       "INVALID: geometry.coordinates[0]: ring crosses itself: edge 2 and edge 5 meet near "
       "[116.75, 40]"},
      {"two loops through one vertex",
       Ring({{116.5, 39.5}, {116, 39}, {116, 40}, {116.5, 39.5}, {117, 39}, {117, 40}}),
       "INVALID: geometry.coordinates[0]: ring touches itself: positions 0 and 3 are both "
       "[116.5, 39.5]"},
      {"a vertex on one of its own edges",
       Ring({{116, 39}, {117, 39}, {117, 40}, {116.5, 39}, {116, 40}}),
       "INVALID: geometry.coordinates[0]: ring touches itself: position 3 [116.5, 39] lies on "
       "edge 0"},
      {"a spike: out along an edge and back",
       Ring({{116, 39}, {117, 39}, {117, 40}, {116.5, 40}, {116.75, 40}}),
       "INVALID: geometry.coordinates[0]: ring doubles back on itself at position 3 [116.5, 40]: "
       "edges 2 and 3 overlap"},
      {"a spike whose tip lies on another edge",
       Ring({{116, 39}, {117, 39}, {117, 40}, {117, 39.5}}),
       "INVALID: geometry.coordinates[0]: ring touches itself: position 3 [117, 39.5] lies on "
       "edge 1"},
      {"all in a line", Ring({{116, 39}, {116.5, 39}, {117, 39}}),
       "INVALID: geometry.coordinates[0]: ring doubles back on itself at position 0 [116, 39]: "
       "edges 0 and 2 overlap"},
      {"a straight vertex (three positions in a line) is fine",
       Ring({{116, 39}, {116.5, 39}, {117, 39}, {117, 40}}), "OK"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.name);
    CHECK(ErrorOf(Polygon({row.ring})) == row.error);
  }
}

TEST_CASE("holes: inside their shell, touching at points allowed, never crossing") {
  const json shell = Box(116, 39, 117, 40);
  struct Row {
    const char* name;
    std::vector<json> rings;
    const char* error;
  };
  const Row rows[] = {
      {"a hole well inside", {shell, Box(116.25, 39.25, 116.75, 39.75)}, "OK"},
      {"a hole touching the shell's edge at one vertex, from inside",
       {shell, Ring({{116.5, 39}, {116.75, 39.5}, {116.25, 39.5}})},
       "OK"},
      {"a hole touching the shell at one of its vertices, from inside",
       {shell, Ring({{116, 39}, {116.5, 39.25}, {116.25, 39.5}})},
       "OK"},
      {"two holes touching at a point",
       {shell, Box(116.25, 39.25, 116.5, 39.5), Box(116.5, 39.5, 116.75, 39.75)},
       "OK"},
      {"a hole through the shell's edge at two of its vertices",
       {shell, Ring({{116.25, 39}, {116.5, 38.5}, {116.75, 39}, {116.5, 39.5}})},
       "INVALID: geometry.coordinates[1]: hole crosses the shell (geometry.coordinates[0]) at "
       "[116.25, 39]"},
      {"a hole through the shell's edge at a vertex, and back across an edge",
       {shell, Ring({{116.5, 39}, {116.75, 39.5}, {116.5, 38.5}})},
       "INVALID: geometry.coordinates[1]: hole crosses the shell (geometry.coordinates[0]): its "
       "edge 1 and that ring's edge 0 meet near [116.625, 39]"},
      {"a hole crossing the shell's edges",
       {shell, Box(116.5, 39.5, 117.5, 39.75)},
       "INVALID: geometry.coordinates[1]: hole crosses the shell (geometry.coordinates[0]): its "
       "edge 0 and that ring's edge 1 meet near [117, 39.5]"},
      {"a hole along part of the shell's edge",
       {shell, Box(116.25, 39, 116.5, 39.25)},
       "INVALID: geometry.coordinates[1]: hole shares part of its boundary with the shell "
       "(geometry.coordinates[0]): its edge 0 and that ring's edge 0 overlap from [116.25, 39]"},
      {"a hole that is the shell",
       {shell, Box(116, 39, 117, 40)},
       "INVALID: geometry.coordinates[1]: hole shares part of its boundary with the shell "
       "(geometry.coordinates[0]): its edge 0 and that ring's edge 0 overlap from [116, 39]"},
      {"a hole outside its shell",
       {shell, Box(118, 39, 118.5, 39.5)},
       "INVALID: geometry.coordinates[1]: hole lies outside its shell (geometry.coordinates[0])"},
      {"a hole outside its shell touching it from outside",
       {shell, Ring({{117, 39.5}, {117.5, 39.25}, {117.5, 39.75}})},
       "INVALID: geometry.coordinates[1]: hole lies outside its shell (geometry.coordinates[0])"},
      {"a hole around its shell",
       {shell, Box(115, 38, 118, 41)},
       "INVALID: geometry.coordinates[1]: hole lies outside its shell (geometry.coordinates[0])"},
      {"a hole inside another hole",
       {shell, Box(116.25, 39.25, 116.75, 39.75), Box(116.4, 39.4, 116.6, 39.6)},
       "INVALID: geometry.coordinates[2]: hole lies inside another hole "
       "(geometry.coordinates[1])"},
      {"a hole around another hole",
       {shell, Box(116.4, 39.4, 116.6, 39.6), Box(116.25, 39.25, 116.75, 39.75)},
       "INVALID: geometry.coordinates[1]: hole lies inside another hole "
       "(geometry.coordinates[2])"},
      {"two holes crossing",
       {shell, Box(116.25, 39.25, 116.5, 39.5), Box(116.375, 39.375, 116.75, 39.75)},
       "INVALID: geometry.coordinates[2]: hole crosses another hole (geometry.coordinates[1]): "
       "its edge 3 and that ring's edge 2 meet near [116.375, 39.5]"},
      {"two holes crossing only at their two shared vertices",
       {shell, Ring({{116.25, 39.5}, {116.5, 39.25}, {116.75, 39.5}, {116.5, 39.75}}),
        Ring({{116.25, 39.5}, {116.5, 39.625}, {116.75, 39.5}, {116.5, 39.1}})},
       "INVALID: geometry.coordinates[2]: hole crosses another hole (geometry.coordinates[1]) at "
       "[116.25, 39.5]"},
      {"holes meeting at a shared vertex without crossing",
       {shell, Ring({{116.5, 39.5}, {116.25, 39.25}, {116.75, 39.25}}),
        Ring({{116.5, 39.5}, {116.25, 39.75}, {116.75, 39.75}})},
       "OK"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.name);
    CHECK(ErrorOf(Polygon(row.rings)) == row.error);
  }
}

TEST_CASE("each polygon of a MultiPolygon is checked, and named by its place") {
  const json good = json::array({Box(116, 39, 116.5, 39.5)});
  const json bad = json::array({Ring({{117, 39}, {117.5, 39.5}, {117.5, 39}, {117, 39.5}})});
  CHECK(ErrorOf(json{{"type", "MultiPolygon"}, {"coordinates", {good, bad}}}) ==
        "INVALID: geometry.coordinates[1][0]: ring crosses itself: edge 0 and edge 2 meet near "
        "[117.25, 39.25]");
  // Polygons of one area may overlap: the area is their union.
  CHECK(ErrorOf(json{{"type", "MultiPolygon"},
                     {"coordinates", {good, json::array({Box(116.25, 39.25, 117, 40)})}}}) == "OK");
}

// A ring of n positions around (cx, cy): a circle of radius r, or a star whose
// points alternate between r and r / 3.
json RoundRing(std::size_t n, double cx, double cy, double r, bool star) {
  json ring = json::array();
  for (std::size_t i = 0; i + 1 < n; ++i) {
    const double a = 2 * M_PI * static_cast<double>(i) / static_cast<double>(n - 1);
    const double rr = star && i % 2 == 1 ? r / 3 : r;
    ring.push_back({cx + rr * std::cos(a), cy + rr * std::sin(a)});
  }
  ring.push_back(ring.front());
  return ring;
}

TEST_CASE("at most kMaxAreaPositions positions, counted before anything is read") {
  CHECK(ParseArea(Polygon({RoundRing(kMaxAreaPositions, 116.4, 39.9, 0.5, true)})).ok());
  const auto over = ParseArea(Polygon({RoundRing(kMaxAreaPositions + 1, 116.4, 39.9, 0.5, false)}));
  CHECK(over.status().ToString() ==
        "TOO_LARGE: geometry.coordinates: more than 100000 positions, the most an area may have");
  // Counted over every polygon and ring of a MultiPolygon.
  json half = Polygon({RoundRing(kMaxAreaPositions / 2, 116.4, 39.9, 0.5, false)})["coordinates"];
  CHECK(ParseArea(json{{"type", "MultiPolygon"}, {"coordinates", {half, half}}}).ok());
  half[0].push_back(half[0][0]);  // one position more in each
  CHECK(ParseArea(json{{"type", "MultiPolygon"}, {"coordinates", {half, half}}}).status().code() ==
        StatusCode::kTooLarge);
  // A ring of a million positions, each one wrong, is refused for its count: the
  // count comes before any position is read (the first would be refused otherwise).
  json huge = json::array();
  for (int i = 0; i < 1'000'000; ++i) huge.push_back("x");
  CHECK(ParseArea(Polygon({huge})).status().ToString() ==
        "TOO_LARGE: geometry.coordinates: more than 100000 positions, the most an area may have");
}

TEST_CASE("a comb of 100,000 positions with long teeth is checked (a sweep, not all pairs)") {
  // 24,999 teeth, each 1 degree tall and 2^-20 degree wide, 2^-19 apart: every
  // tooth spans the comb's height, so the edges' boxes all overlap.
  json ring = json::array();
  const double w = 1.0 / (1 << 20);
  const int teeth = 24'999;
  for (int i = 0; i < teeth; ++i) {
    const double x = 100 + 2 * w * i;
    ring.push_back({x, 30.0});
    ring.push_back({x, 31.0});
    ring.push_back({x + w, 31.0});
    ring.push_back({x + w, 30.0 + w});
  }
  ring.push_back({100 + 2 * w * teeth, 30.0});
  ring.push_back({100 + 2 * w * teeth, 29.0});
  ring.push_back({100.0, 29.0});
  ring.push_back(ring.front());
  CHECK(ring.size() == kMaxAreaPositions);
  const Area comb = Parse(Polygon({ring}));
  CHECK(comb.Covers(100 + w / 2, 30.5));          // inside a tooth
  CHECK_FALSE(comb.Covers(100 + 1.5 * w, 30.5));  // between two teeth
  CHECK(comb.Covers(100 + 1.5 * w, 30 + w / 2));  // on the slanted bottom of that gap
  CHECK_FALSE(comb.Covers(100 + 1.5 * w, 30 + w / 2 + kStep));

  // The same comb with one tooth's foot pulled across its neighbour is refused.
  ring[4 * 1000 + 3] = {100 + 2 * w * 1000 + 3 * w, 30.5};
  CHECK(ErrorOf(Polygon({ring})).find("ring crosses itself: edge 4002 and edge 4004 meet near") !=
        std::string::npos);
}

TEST_CASE("20,000 holes meeting at one point: a fan, then two of its blades crossed") {
  std::vector<json> rings = {Box(115, 39, 117, 41)};
  const int n = 20'000;
  for (int i = 0; i < n; ++i) {
    const double a = 2 * M_PI * i / n;
    const double b = a + 2 * M_PI * 0.6 / n;
    rings.push_back(Ring({{116, 40},
                          {116 + 0.5 * std::cos(a), 40 + 0.5 * std::sin(a)},
                          {116 + 0.5 * std::cos(b), 40 + 0.5 * std::sin(b)}}));
  }
  const Area fan = Parse(Polygon(rings));
  CHECK(fan.Covers(116, 40));      // where they meet: on every hole's boundary
  CHECK(fan.Covers(116.9, 40.9));  // outside the fan
  CHECK_FALSE(fan.Covers(116.4, 40.0 + 0.4 * M_PI * 0.3 / n));  // inside a blade
  // Blade 10 swung round to cross blade 9000 at the centre.
  const double a = 2 * M_PI * 9000.3 / n;
  rings[11] = Ring({{116, 40},
                    {116 + 0.5 * std::cos(a), 40 + 0.5 * std::sin(a)},
                    {116 - 0.5 * std::cos(a), 40 - 0.5 * std::sin(a) + 0.01}});
  CHECK(ErrorOf(Polygon(rings)).rfind("INVALID: geometry.coordinates[", 0) == 0);
}

// The points around a vertex or an edge: on it, and one grid step off each way.
struct Probe {
  double lon;
  double lat;
  bool covered;
};

TEST_CASE("points on a shell's or a hole's edges and vertices are covered; a step off is not") {
  // A square with a square hole, and a diamond hole whose vertices a ray meets.
  const Area area = Parse(
      Polygon({Box(116, 39, 117, 40), Box(116.25, 39.25, 116.5, 39.5),
               Ring({{116.75, 39.5}, {116.875, 39.625}, {116.75, 39.75}, {116.625, 39.625}})}));
  const double s = kStep;
  const Probe probes[] = {
      {116.1, 39.1, true},             // inside
      {115.9, 39.1, false},            // west of the shell
      {116, 39.5, true},               // on the shell's west edge
      {116 - s, 39.5, false},          // a step west of it
      {116 + s, 39.5, true},           // a step inside
      {116, 39, true},                 // the shell's south-west vertex
      {116 - s, 39 - s, false},        // a step off that vertex
      {117, 40, true},                 // the north-east vertex
      {117 + s, 40, false},            //
      {116.5, 40, true},               // on the north edge
      {116.5, 40 + s, false},          //
      {116.375, 39.375, false},        // inside the square hole
      {116.25, 39.375, true},          // on the hole's west edge
      {116.25 + s, 39.375, false},     // a step into the hole
      {116.25 - s, 39.375, true},      // a step out of it
      {116.5, 39.5, true},             // the hole's north-east vertex
      {116.5 - s, 39.5 - s, false},    // a step into the hole from it
      {116.375, 39.5, true},           // on the hole's north edge
      {116.375, 39.5 - s, false},      //
      {116.75, 39.625, false},         // inside the diamond
      {116.6875, 39.6875, true},       // on its north-west (diagonal) edge
      {116.6875 + s, 39.6875, false},  // a step inside
      {116.6875 - s, 39.6875, true},   // a step outside
      {116.625, 39.625, true},         // its west vertex, at the height of its east one
      {116.625 + s, 39.625, false},    //
      {116.6, 39.625, true},           // west of the diamond, a ray through both its vertices
      {116.9, 39.625, true},           // east of it at the same height
      {116.75, 39.5 - s, true},        // a step below its south vertex
      {116.75, 39.5 + s, false},       // a step above it, inside
  };
  std::vector<std::pair<std::string, Area>> one;
  one.emplace_back("a", area);
  const auto index = AreaIndex::Build(std::move(one));
  REQUIRE(index.ok());
  for (const Probe& p : probes) {
    CAPTURE(p.lon);
    CAPTURE(p.lat);
    CHECK(area.Covers(p.lon, p.lat) == p.covered);
    CHECK((*index)->Covers("a", p.lon, p.lat) == p.covered);
    CHECK((*index)->Covering(p.lon, p.lat).size() == (p.covered ? 1u : 0u));
  }
}

// x, y with a * y - b * x == 1, for coprime a, b > 0.
std::pair<std::int64_t, std::int64_t> Bezout(std::int64_t a, std::int64_t b) {
  // Extended Euclid on (a, b): s * a + t * b == 1; then y = s, x = -t.
  std::int64_t old_r = a, r = b, old_s = 1, s = 0, old_t = 0, t = 1;
  while (r != 0) {
    const std::int64_t q = old_r / r;
    std::tie(old_r, r) = std::make_pair(r, old_r - q * r);
    std::tie(old_s, s) = std::make_pair(s, old_s - q * s);
    std::tie(old_t, t) = std::make_pair(t, old_t - q * t);
  }
  REQUIRE(old_r == 1);
  return {-old_t, old_s};
}

TEST_CASE("points a hair beside a long edge, where floating point cannot tell the side") {
  // An edge across most of the globe, from a to b, whose direction (dx, dy) in grid
  // steps has no common factor: no grid point lies on it but its ends, and the
  // nearest lie where the cross product is +1 or -1, against products of ~10^23.
  const GridPoint a{ToGrid(-170), ToGrid(-80)};
  const std::int64_t dx = ToGrid(340) + 1;
  const std::int64_t dy = ToGrid(160) + 3;
  auto [u, v] = Bezout(dx, dy);  // dx * v - dy * u == 1
  // Slide along the edge, (u + k dx, v + k dy), to 0 < u < dx.
  const std::int64_t k = u / dx - (u % dx < 0 ? 1 : 0);
  u -= k * dx;
  v -= k * dy;
  REQUIRE(u > 0);
  REQUIRE(u < dx);
  const GridPoint b{a.x + dx, a.y + dy};
  const GridPoint left{a.x + u, a.y + v};             // cross product +1
  const GridPoint right{a.x + dx - u, a.y + dy - v};  // cross product -1
  CHECK(Orient(a, b, left) == 1);
  CHECK(Orient(a, b, right) == -1);
  // A triangle left of the edge: a, b and the north-west corner.
  const Area area = Parse(Polygon(
      {Ring({{FromGrid(a.x), FromGrid(a.y)}, {FromGrid(b.x), FromGrid(b.y)}, {-170, 80}})}));
  std::vector<std::pair<std::string, Area>> one;
  one.emplace_back("globe", area);
  const auto index = *AreaIndex::Build(std::move(one));
  CHECK(area.Covers(FromGrid(left.x), FromGrid(left.y)));
  CHECK_FALSE(area.Covers(FromGrid(right.x), FromGrid(right.y)));
  CHECK(index->Covers("globe", FromGrid(left.x), FromGrid(left.y)));
  CHECK_FALSE(index->Covers("globe", FromGrid(right.x), FromGrid(right.y)));
  // The same edge twice in a ring, a hair apart, is no crossing.
  const GridPoint far{a.x + dx + 5, a.y + dy + 2};
  CHECK(ErrorOf(Polygon({Ring({{FromGrid(a.x), FromGrid(a.y)},
                               {FromGrid(left.x), FromGrid(left.y)},
                               {FromGrid(b.x), FromGrid(b.y)},
                               {FromGrid(far.x), FromGrid(far.y)}})})) == "OK");
}

TEST_CASE("edges along the index's cell borders and through their corners") {
  // A square whose box the index cuts into cells of c grid steps (16 a side), with a
  // hole whose sides lie on cell borders and a diamond hole whose edges pass through
  // cell corners; then every half-cell point, and a step beside each, against the
  // plain test.
  const std::int64_t c = std::int64_t{1} << 24;
  const std::int64_t x0 = ToGrid(116);
  const std::int64_t y0 = ToGrid(39);
  auto at = [&](std::int64_t i, std::int64_t j) {
    return std::pair(FromGrid(x0 + i), FromGrid(y0 + j));
  };
  const std::int64_t w = 16 * c - 16;  // the box's width in steps, less one
  const Area area = Parse(Polygon(
      {Ring({at(0, 0), at(w, 0), at(w, w), at(0, w)}),
       Ring({at(2 * c, 2 * c), at(6 * c, 2 * c), at(6 * c, 5 * c), at(2 * c, 5 * c)}),
       Ring({at(8 * c, 10 * c), at(11 * c, 7 * c), at(14 * c, 10 * c), at(11 * c, 13 * c)})}));
  std::vector<std::pair<std::string, Area>> one;
  one.emplace_back("square", area);
  const auto index = *AreaIndex::Build(std::move(one));
  int disagreements = 0;
  int covered = 0;
  for (std::int64_t i = 0; i <= 32; ++i) {
    for (std::int64_t j = 0; j <= 32; ++j) {
      for (const auto& [dx, dy] : {std::pair<int, int>{0, 0}, {1, 0}, {-1, 0}, {0, 1}, {0, -1}}) {
        const auto [lon, lat] = at(i * c / 2 + dx, j * c / 2 + dy);
        const bool plain = area.Covers(lon, lat);
        covered += plain;
        if (index->Covers("square", lon, lat) != plain && ++disagreements <= 5) {
          FAIL_CHECK("at half-cell (" << i << ", " << j << ") + (" << dx << ", " << dy
                                      << "): plain says " << plain);
        }
      }
    }
  }
  CHECK(disagreements == 0);
  CHECK(covered > 3000);
  // On the diamond's edge, at a cell corner, and a step inside the diamond there.
  CHECK(index->Covers("square", at(9 * c, 9 * c).first, at(9 * c, 9 * c).second));
  CHECK_FALSE(index->Covers("square", at(9 * c + 1, 9 * c).first, at(9 * c + 1, 9 * c).second));
}

TEST_CASE("the index: adjacent areas, multipolygons, unknown ids, bad points") {
  std::vector<std::pair<std::string, Area>> areas;
  // West and east share the edge x = 116.5; the triangle's hypotenuse is diagonal.
  areas.emplace_back("west", Parse(Polygon({Box(116, 39, 116.5, 40)})));
  areas.emplace_back("east", Parse(Polygon({Box(116.5, 39, 117, 40)})));
  areas.emplace_back("islands",
                     Parse(json{{"type", "MultiPolygon"},
                                {"coordinates",
                                 {json::array({Box(118, 39, 118.5, 39.5)}),
                                  json::array({Box(118.25, 39.25, 119, 40)}),
                                  json::array({Ring({{120, 39}, {121, 39}, {120, 40}})})}}}));
  const auto built = AreaIndex::Build(std::move(areas));
  REQUIRE(built.ok());
  const AreaIndex& index = **built;
  using Ids = std::vector<std::string_view>;
  CHECK(index.size() == 3);
  CHECK(index.Covering(116.25, 39.5) == Ids{"west"});
  CHECK(index.Covering(116.75, 39.5) == Ids{"east"});
  CHECK(index.Covering(116.5, 39.5) == Ids{"west", "east"});  // on the shared edge
  CHECK(index.Covering(116.5, 40) == Ids{"west", "east"});    // on a shared vertex
  CHECK(index.Covering(116.5, 40 + kStep).empty());
  CHECK(index.Covering(118.375, 39.375) == Ids{"islands"});  // in two of its polygons, once
  CHECK(index.Covering(118.75, 39.75) == Ids{"islands"});
  CHECK(index.Covering(118.75, 39.25 - kStep).empty());
  // On the diagonal edge from (121, 39) to (120, 40), and a step either side.
  CHECK(index.Covering(120.5, 39.5) == Ids{"islands"});
  CHECK(index.Covering(120.5, 39.5 - kStep) == Ids{"islands"});
  CHECK(index.Covering(120.5, 39.5 + kStep).empty());
  CHECK(index.Covering(120.25 + 1.0 / 1024, 39.75 - 1.0 / 1024) == Ids{"islands"});
  CHECK(index.Covers("islands", 120.5, 39.5));
  CHECK_FALSE(index.Covers("west", 120.5, 39.5));
  CHECK_FALSE(index.Covers("nowhere", 116.25, 39.5));
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const auto& [lon, lat] : std::vector<std::pair<double, double>>{{nan, 39.5},
                                                                       {116.25, nan},
                                                                       {INFINITY, 39.5},
                                                                       {-INFINITY, 39.5},
                                                                       {116.25, 90.5},
                                                                       {360 + 116.25, 39.5}}) {
    CHECK(index.Covering(lon, lat).empty());
    CHECK_FALSE(index.Covers("west", lon, lat));
  }
}

TEST_CASE("an id given twice is refused; an empty index covers nothing") {
  std::vector<std::pair<std::string, Area>> areas;
  areas.emplace_back("a", Parse(Polygon({Box(116, 39, 116.5, 40)})));
  areas.emplace_back("a", Parse(Polygon({Box(116.5, 39, 117, 40)})));
  const auto twice = AreaIndex::Build(std::move(areas));
  CHECK(twice.status().ToString() == "INVALID: area id \"a\" is given twice");
  const auto empty = AreaIndex::Build({});
  REQUIRE(empty.ok());
  CHECK((*empty)->Covering(116.25, 39.5).empty());
  CHECK_FALSE((*empty)->Covers("a", 116.25, 39.5));
}

// A noisy star around (cx, cy): n vertices at increasing angles, radius r times
// 0.5..1.3, on the 2^-20-degree grid; with a star hole of a quarter the size.
std::vector<json> Blob(std::mt19937_64& rng, double cx, double cy, double r, int n, bool hole) {
  auto star = [&](double radius, int count) {
    std::uniform_real_distribution<double> noise(0.5, 1.3);
    std::vector<std::pair<double, double>> corners;
    for (int i = 0; i < count; ++i) {
      const double a = 2 * M_PI * (i + 0.4 * noise(rng)) / count;
      const double rr = radius * noise(rng);
      corners.emplace_back(std::round((cx + rr * std::cos(a)) * (1 << 20)) / (1 << 20),
                           std::round((cy + rr * std::sin(a)) * (1 << 20)) / (1 << 20));
    }
    return Ring(corners);
  };
  std::vector<json> rings = {star(r, n)};
  if (hole) rings.push_back(star(r / 4, n / 3));
  return rings;
}

TEST_CASE("the index agrees with the plain test on random shapes and points") {
  std::mt19937_64 rng(20260807);
  std::vector<std::pair<std::string, Area>> areas;
  std::vector<Area> plain;
  std::uniform_real_distribution<double> ux(116.0, 117.0);
  std::uniform_real_distribution<double> uy(39.5, 40.5);
  std::uniform_int_distribution<int> vertices(8, 300);
  for (int i = 0; i < 160; ++i) {
    // Most areas well under a degree across; every sixteenth some degrees across.
    const double radius = i % 16 == 15 ? 0.6 + 0.2 * (i % 5) : 0.02 + 0.1 * (i % 7) / 7;
    const auto rings = Blob(rng, ux(rng), uy(rng), radius, vertices(rng), i % 3 == 0);
    json geometry = Polygon(rings);
    if (i % 5 == 0) {
      geometry =
          json{{"type", "MultiPolygon"},
               {"coordinates", {json(rings), json(Blob(rng, ux(rng), uy(rng), 0.03, 40, false))}}};
    }
    auto area = ParseArea(geometry);
    REQUIRE_MESSAGE(area.ok(), area.status().ToString());
    plain.push_back(*area);
    areas.emplace_back("area-" + std::to_string(i), std::move(area).value());
  }
  // Points: uniform, and on (and a step off) every tenth vertex and edge midpoint.
  std::vector<std::pair<double, double>> points;
  for (int i = 0; i < 30'000; ++i) points.emplace_back(ux(rng), uy(rng));
  for (const Area& area : plain) {
    for (const auto& polygon : area.polygons()) {
      for (const auto& ring : polygon.rings) {
        for (std::size_t k = 0; k + 1 < ring.size(); k += 10) {
          const double x = FromGrid(ring[k].x);
          const double y = FromGrid(ring[k].y);
          const double mx = FromGrid((ring[k].x + ring[k + 1].x) / 2);
          const double my = FromGrid((ring[k].y + ring[k + 1].y) / 2);
          for (const auto& [dx, dy] :
               {std::pair<int, int>{0, 0}, {1, 0}, {-1, 0}, {0, 1}, {0, -1}}) {
            points.emplace_back(x + dx * kStep, y + dy * kStep);
            points.emplace_back(mx + dx * kStep, my + dy * kStep);
          }
        }
      }
    }
  }
  const auto index = AreaIndex::Build(std::move(areas));
  REQUIRE(index.ok());
  std::size_t covered = 0;
  std::size_t disagreements = 0;
  for (const auto& [x, y] : points) {
    std::vector<std::string> want;
    for (std::size_t i = 0; i < plain.size(); ++i) {
      if (plain[i].Covers(x, y)) want.push_back("area-" + std::to_string(i));
    }
    const auto got = (*index)->Covering(x, y);
    std::vector<std::string> have(got.begin(), got.end());
    if (want != have) {
      if (++disagreements <= 5) {
        FAIL_CHECK("at [" << x << ", " << y << "]: index " << have.size() << " areas, plain "
                          << want.size());
      }
    }
    covered += have.size();
    for (std::size_t i = 0; i < plain.size(); i += 13) {
      CHECK((*index)->Covers("area-" + std::to_string(i), x, y) == plain[i].Covers(x, y));
    }
  }
  CHECK(disagreements == 0);
  CHECK(covered > points.size() / 10);  // the shapes are not all missed
}

TEST_CASE("one index read from several threads at once gives the same answers") {
  std::mt19937_64 rng(7);
  std::vector<std::pair<std::string, Area>> areas;
  for (int i = 0; i < 40; ++i) {
    areas.emplace_back(std::to_string(i),
                       Parse(Polygon(Blob(rng, 116 + 0.02 * i, 39.9, 0.05, 100, i % 2 == 0))));
  }
  const std::shared_ptr<const AreaIndex> index = *AreaIndex::Build(std::move(areas));
  std::vector<std::size_t> counts(4, 0);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < counts.size(); ++t) {
    threads.emplace_back([index, &counts, t] {
      std::mt19937_64 local(99);  // every thread the same points
      std::uniform_real_distribution<double> x(115.9, 116.9);
      std::uniform_real_distribution<double> y(39.8, 40.0);
      for (int i = 0; i < 20'000; ++i) counts[t] += index->Covering(x(local), y(local)).size();
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(counts[0] > 0);
  for (std::size_t t = 1; t < counts.size(); ++t) CHECK(counts[t] == counts[0]);
}

TEST_CASE("DistanceMetres: haversine on the mean sphere") {
  const double degree = 2 * M_PI * kEarthRadiusMetres / 360;  // 111,195.08 m
  CHECK(DistanceMetres(39.0, 116.0, 40.0, 116.0) == doctest::Approx(degree).epsilon(1e-12));
  CHECK(DistanceMetres(0.0, 116.0, 0.0, 117.0) == doctest::Approx(degree).epsilon(1e-12));
  CHECK(std::abs(DistanceMetres(39.0, 116.0, 40.0, 116.0) - 111'195.08) < 0.01);
  // At 60 degrees north a degree of longitude is half as long (to the chord's
  // difference from the arc, a few parts in a million).
  CHECK(DistanceMetres(60.0, 10.0, 60.0, 11.0) == doctest::Approx(degree / 2).epsilon(2e-5));
  // Beijing (Tiananmen) to Shanghai (People's Square): about 1,067 km.
  const double beijing_shanghai = DistanceMetres(39.9042, 116.4074, 31.2304, 121.4737);
  CHECK(beijing_shanghai > 1'066'000);
  CHECK(beijing_shanghai < 1'068'000);
  CHECK(DistanceMetres(31.2304, 121.4737, 39.9042, 116.4074) == beijing_shanghai);
  // On the WGS-84 ellipsoid (GeographicLib's geodesic) it is 1,065,846.5 m: 0.14 % less.
  CHECK(std::abs(beijing_shanghai / 1'065'846.5 - 1) < 0.002);
  CHECK(DistanceMetres(39.9, 116.4, 39.9, 116.4) == 0);
  // Across the antimeridian, and to the antipode (half the circumference).
  CHECK(DistanceMetres(0, 179.5, 0, -179.5) == doctest::Approx(degree).epsilon(1e-9));
  CHECK(DistanceMetres(0, 0, 0, 180) == doctest::Approx(M_PI * kEarthRadiusMetres).epsilon(1e-12));
  CHECK(DistanceMetres(90, 0, -90, 0) == doctest::Approx(M_PI * kEarthRadiusMetres).epsilon(1e-12));
  // A metre apart (1 / 111,195 degree of latitude) still measures a metre.
  CHECK(DistanceMetres(39.9, 116.4, 39.9 + 1 / degree, 116.4) ==
        doctest::Approx(1.0).epsilon(1e-6));
  CHECK(std::isnan(DistanceMetres(std::nan(""), 116.4, 39.9, 116.4)));
}

}  // namespace
}  // namespace pingma::registry::geo
