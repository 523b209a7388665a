// pingma-bench-area: which delivery areas cover a point (registry/src/geo/), timed.
//
// Two indexes of real-shaped areas tiling one province-sized box (6.4 x 6.6 degrees,
// about Hebei's size): 10 areas and 10,000, each a tile whose four sides are shared
// noisy polylines (50 to 200 vertices a tile), one in five with a hole. The same
// random points are looked up in each, every call timed alone; the 10-area index is
// the baseline the others are given as ratios of, measured in the same run. Beside
// them the floors: the clock itself, the boxes of the 10 areas checked one by one
// (the least any lookup does), one point-in-polygon test on the one tile holding the
// point (every edge walked), Covers for one id on the 10,000-area index (the tree
// walked for the point, one area's polygons tested: almost always only boxes); and
// the naive way for 10,000 areas, every box and then every edge of each area whose
// box holds the point. Last, how long the areas take
// to read and index, and ParseArea on rings of 100,000 positions.
//
//   pingma-bench-area [--points 200000] [--seed 1]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "geo/area.h"
#include "geo/area_index.h"

using namespace pingma::registry::geo;
using nlohmann::json;
using Steady = std::chrono::steady_clock;

namespace {

constexpr double kLon0 = 113.5, kLat0 = 36.0, kWidth = 6.4, kHeight = 6.6;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "pingma-bench-area: %s\n", what.c_str());
  std::exit(1);
}

double Seconds(Steady::time_point since) {
  return std::chrono::duration<double>(Steady::now() - since).count();
}

long PeakRssKb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

// A tiling of the box by cols x rows tiles: each tile's sides are polylines shared
// with its neighbours, each side 12 to 50 points bent across by up to 20% of a tile
// (none at the corners, so that sides meeting there stay apart), and one tile in
// five holds a noisy star as a hole.
std::vector<json> Tiles(int cols, int rows, std::mt19937_64& rng) {
  const double w = kWidth / cols;
  const double h = kHeight / rows;
  std::uniform_int_distribution<int> points(12, 50);
  std::uniform_real_distribution<double> bend(-0.2, 0.2);
  auto corner = [&](int i, int j) { return std::pair(kLon0 + i * w, kLat0 + j * h); };
  auto side = [&](std::pair<double, double> a, std::pair<double, double> b, bool horizontal) {
    const int k = points(rng);
    std::vector<std::pair<double, double>> pts{a};
    for (int i = 1; i < k; ++i) {
      const double t = static_cast<double>(i) / k;
      const double off = bend(rng) * std::sin(M_PI * t) * (horizontal ? h : w);
      pts.emplace_back(a.first + t * (b.first - a.first) + (horizontal ? 0 : off),
                       a.second + t * (b.second - a.second) + (horizontal ? off : 0));
    }
    pts.push_back(b);
    return pts;
  };
  std::vector<std::vector<std::pair<double, double>>> hs, vs;  // [i * (rows + 1) + j], ...
  for (int i = 0; i < cols; ++i) {
    for (int j = 0; j <= rows; ++j) hs.push_back(side(corner(i, j), corner(i + 1, j), true));
  }
  for (int i = 0; i <= cols; ++i) {
    for (int j = 0; j < rows; ++j) vs.push_back(side(corner(i, j), corner(i, j + 1), false));
  }
  auto ring_json = [](const std::vector<std::pair<double, double>>& ring) {
    json out = json::array();
    for (const auto& [x, y] : ring) out.push_back({x, y});
    out.push_back(out.front());
    return out;
  };
  std::vector<json> tiles;
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int i = 0; i < cols; ++i) {
    for (int j = 0; j < rows; ++j) {
      std::vector<std::pair<double, double>> ring;
      auto append = [&ring](const std::vector<std::pair<double, double>>& s, bool reverse) {
        std::vector<std::pair<double, double>> part = s;
        if (reverse) std::reverse(part.begin(), part.end());
        ring.insert(ring.end(), part.begin(), part.end() - 1);
      };
      append(hs[i * (rows + 1) + j], false);
      append(vs[(i + 1) * rows + j], false);
      append(hs[i * (rows + 1) + j + 1], true);
      append(vs[i * rows + j], true);
      json rings = json::array({ring_json(ring)});
      if (unit(rng) < 0.2) {
        const double cx = corner(i, j).first + w / 2;
        const double cy = corner(i, j).second + h / 2;
        const int n = 12 + static_cast<int>(unit(rng) * 28);
        std::vector<std::pair<double, double>> hole;
        for (int k = 0; k < n; ++k) {
          const double a = 2 * M_PI * (k + 0.5 * unit(rng)) / n;
          const double r = (0.08 + 0.07 * unit(rng)) * std::min(w, h);
          hole.emplace_back(cx + r * std::cos(a), cy + r * std::sin(a));
        }
        rings.push_back(ring_json(hole));
      }
      tiles.push_back(json{{"type", "Polygon"}, {"coordinates", rings}});
    }
  }
  return tiles;
}

struct Built {
  std::vector<Area> areas;
  std::shared_ptr<const AreaIndex> index;
  double parse_s = 0;
  double build_s = 0;
  std::size_t vertices = 0;
  long rss_kb = 0;  // peak RSS growth while the areas were read and indexed
};

Built Prepare(int cols, int rows, std::mt19937_64& rng) {
  const std::vector<json> tiles = Tiles(cols, rows, rng);
  Built built;
  const long rss0 = PeakRssKb();
  auto start = Steady::now();
  std::vector<std::pair<std::string, Area>> named;
  for (std::size_t i = 0; i < tiles.size(); ++i) {
    auto area = ParseArea(tiles[i]);
    if (!area.ok()) Fail("tile " + std::to_string(i) + ": " + area.status().ToString());
    for (const auto& polygon : area->polygons()) {
      for (const auto& ring : polygon.rings) built.vertices += ring.size() - 1;
    }
    built.areas.push_back(*area);
    named.emplace_back(fmt::format("area-{:05}", i), std::move(area).value());
  }
  built.parse_s = Seconds(start);
  start = Steady::now();
  auto index = AreaIndex::Build(std::move(named));
  if (!index.ok()) Fail(index.status().ToString());
  built.index = *index;
  built.build_s = Seconds(start);
  built.rss_kb = PeakRssKb() - rss0;
  return built;
}

struct Timing {
  double p50_ns = 0;
  double p99_ns = 0;
  double mean_ns = 0;
  std::size_t hits = 0;  // areas found over all points, so that no call is optimised away
};

// Times f(point) once per point, each call alone.
template <typename F>
Timing Time(const std::vector<std::pair<double, double>>& points, F f) {
  std::vector<double> ns;
  ns.reserve(points.size());
  Timing t;
  for (const auto& [lon, lat] : points) {
    const auto start = Steady::now();
    t.hits += f(lon, lat);
    ns.push_back(std::chrono::duration<double, std::nano>(Steady::now() - start).count());
  }
  double sum = 0;
  for (const double v : ns) sum += v;
  std::sort(ns.begin(), ns.end());
  t.p50_ns = ns[ns.size() / 2];
  t.p99_ns = ns[std::min(ns.size() - 1, ns.size() * 99 / 100)];
  t.mean_ns = sum / static_cast<double>(ns.size());
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pingma-bench-area: point-in-area lookups on 10 and on 10,000 areas"};
  std::size_t n_points = 200'000;
  std::uint64_t seed = 1;
  app.add_option("--points", n_points, "random points looked up in each case")
      ->check(CLI::Range(1, 100'000'000));
  app.add_option("--seed", seed, "seed of the shapes and points");
  CLI11_PARSE(app, argc, argv);

  std::mt19937_64 rng(seed);
  const Built small = Prepare(5, 2, rng);
  const Built large = Prepare(100, 100, rng);
  std::uniform_real_distribution<double> lon(kLon0, kLon0 + kWidth);
  std::uniform_real_distribution<double> lat(kLat0, kLat0 + kHeight);
  std::vector<std::pair<double, double>> points(n_points);
  for (auto& p : points) p = {lon(rng), lat(rng)};

  // Warm the caches and the branch predictors once on each index.
  for (const auto& [x, y] : points) {
    (void)small.index->Covering(x, y);
    (void)large.index->Covering(x, y);
  }

  struct Row {
    std::string name;
    Timing t;
  };
  std::vector<Row> rows;
  rows.push_back({"clock alone (floor)", Time(points, [](double, double) { return 0; })});
  rows.push_back({"10 boxes, one by one (floor)", Time(points, [&](double x, double y) {
                    int n = 0;
                    for (const Area& a : small.areas) {
                      const BoundingBox& b = a.bbox();
                      n += x >= b.min_lon && x <= b.max_lon && y >= b.min_lat && y <= b.max_lat;
                    }
                    return n;
                  })});
  // The tile holding each point, found beforehand: one plain test on one polygon.
  std::vector<const Area*> holder(points.size(), &large.areas.front());
  for (std::size_t i = 0; i < points.size(); ++i) {
    const auto ids = large.index->Covering(points[i].first, points[i].second);
    if (!ids.empty()) holder[i] = &large.areas[std::stoul(std::string(ids.front().substr(5)))];
  }
  {
    std::size_t i = 0;
    rows.push_back({"one tile, every edge (plain)", Time(points, [&](double x, double y) {
                      return static_cast<int>(holder[i++]->Covers(x, y));
                    })});
  }
  rows.push_back({"index, 10 areas (baseline)", Time(points, [&](double x, double y) {
                    return static_cast<int>(small.index->Covering(x, y).size());
                  })});
  rows.push_back({"index, 10,000 areas", Time(points, [&](double x, double y) {
                    return static_cast<int>(large.index->Covering(x, y).size());
                  })});
  rows.push_back({"Covers(one id), 10,000 areas", Time(points, [&](double x, double y) {
                    return static_cast<int>(large.index->Covers("area-04321", x, y));
                  })});
  const std::vector<std::pair<double, double>> few(
      points.begin(), points.begin() + std::min<std::size_t>(points.size(), 20'000));
  rows.push_back({"naive scan, 10,000 areas", Time(few, [&](double x, double y) {
                    int n = 0;
                    for (const Area& a : large.areas) n += a.Covers(x, y);
                    return n;
                  })});

  const Timing& base = rows[3].t;
  std::printf(
      "pingma-bench-area: %zu points, uniform in a %.1f x %.1f degree box (%zu for the "
      "naive scan)\n\n",
      points.size(), kWidth, kHeight, few.size());
  std::printf("%-30s %10s %10s %10s %9s %9s %11s\n", "lookup", "p50 ns", "p99 ns", "mean ns",
              "p50 x", "p99 x", "areas/pt");
  for (const Row& r : rows) {
    const double per_point =
        static_cast<double>(r.t.hits) /
        static_cast<double>(r.name.rfind("naive", 0) == 0 ? few.size() : points.size());
    std::printf("%-30s %10.0f %10.0f %10.0f %9.2f %9.2f %11.3f\n", r.name.c_str(), r.t.p50_ns,
                r.t.p99_ns, r.t.mean_ns, r.t.p50_ns / base.p50_ns, r.t.p99_ns / base.p99_ns,
                per_point);
  }
  std::printf("\np99(10,000 areas) / p99(10 areas) = %.2f (goal <= 2)\n",
              rows[4].t.p99_ns / base.p99_ns);
  std::printf("p50(10,000 areas) / p50(10 areas) = %.2f\n\n", rows[4].t.p50_ns / base.p50_ns);

  for (const Built* b : {&small, &large}) {
    std::printf(
        "%6zu areas, %8zu vertices: ParseArea %.3f s, AreaIndex::Build %.3f s, peak RSS "
        "+%ld MB (areas and index)\n",
        b->areas.size(), b->vertices, b->parse_s, b->build_s, b->rss_kb / 1024);
  }

  // ParseArea on rings of 100,000 positions: a noisy star, and a comb whose teeth
  // all span its height (every edge's box overlapping every other's).
  auto time_parse = [](const char* name, const json& ring) {
    const json geometry = {{"type", "Polygon"}, {"coordinates", json::array({ring})}};
    const auto start = Steady::now();
    auto area = ParseArea(geometry);
    if (!area.ok()) Fail(std::string(name) + ": " + area.status().ToString());
    std::printf("ParseArea, %s of %zu positions: %.3f s\n", name, ring.size(), Seconds(start));
  };
  json star = json::array();
  std::uniform_real_distribution<double> noise(0.5, 1.3);
  for (std::size_t i = 0; i + 1 < kMaxAreaPositions; ++i) {
    const double a = 2 * M_PI * static_cast<double>(i) / (kMaxAreaPositions - 1);
    const double r = 0.5 * noise(rng);
    star.push_back({116.4 + r * std::cos(a), 39.9 + r * std::sin(a)});
  }
  star.push_back(star.front());
  time_parse("a noisy star", star);
  json comb = json::array();
  const double w = 1.0 / (1 << 20);
  const int teeth = (kMaxAreaPositions - 4) / 4;
  for (int i = 0; i < teeth; ++i) {
    const double x = 100 + 2 * w * i;
    comb.push_back({x, 30.0});
    comb.push_back({x, 31.0});
    comb.push_back({x + w, 31.0});
    comb.push_back({x + w, 30.0 + w});
  }
  comb.push_back({100 + 2 * w * teeth, 30.0});
  comb.push_back({100 + 2 * w * teeth, 29.0});
  comb.push_back({100.0, 29.0});
  comb.push_back(comb.front());
  time_parse("a comb", comb);
  return 0;
}
