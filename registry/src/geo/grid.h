// The fixed-point grid delivery areas are held on, and the exact tests made on it.
//
// A coordinate in degrees is held as the nearest whole multiple of 2^-32 degree
// (about 2.6 mm of latitude, less of longitude): degrees × 2^32, an int64 of at most
// 40 bits. Every decision is then made exactly on those integers: an orientation is
// a cross product of 41-bit differences in 128-bit arithmetic, so a point on an edge
// is on it, with no tolerance and no rounding. Pure inline functions, safe from any
// thread.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>

namespace pingma::registry::geo {

/// Grid steps per degree: 2^32.
inline constexpr double kGridPerDegree = 4294967296.0;

__extension__ using Int128 = __int128;

/// A position on the grid: x from the longitude, y from the latitude.
struct GridPoint {
  std::int64_t x = 0;
  std::int64_t y = 0;

  friend bool operator==(GridPoint a, GridPoint b) { return a.x == b.x && a.y == b.y; }
  friend bool operator!=(GridPoint a, GridPoint b) { return !(a == b); }
  /// By x, then y.
  friend bool operator<(GridPoint a, GridPoint b) { return a.x < b.x || (a.x == b.x && a.y < b.y); }
};

/// A closed box on the grid.
struct GridBox {
  std::int64_t min_x = 0;
  std::int64_t min_y = 0;
  std::int64_t max_x = -1;
  std::int64_t max_y = -1;

  bool Contains(GridPoint p) const {
    return p.x >= min_x && p.x <= max_x && p.y >= min_y && p.y <= max_y;
  }
  void Add(GridPoint p) {
    if (min_x > max_x) {
      min_x = max_x = p.x;
      min_y = max_y = p.y;
      return;
    }
    min_x = std::min(min_x, p.x);
    max_x = std::max(max_x, p.x);
    min_y = std::min(min_y, p.y);
    max_y = std::max(max_y, p.y);
  }
  void Add(const GridBox& b) {
    Add(GridPoint{b.min_x, b.min_y});
    Add(GridPoint{b.max_x, b.max_y});
  }
};

/// The nearest grid value of a coordinate the caller has checked is finite and
/// within ±180.
inline std::int64_t ToGrid(double degrees) {
  return static_cast<std::int64_t>(std::llround(degrees * kGridPerDegree));
}

/// Degrees of a grid value; exact, as every grid value has at most 40 bits.
inline double FromGrid(std::int64_t v) {
  return static_cast<double>(v) / kGridPerDegree;
}

/// A point to look up on the grid; none when a coordinate is not a number or lies
/// outside -180..180 (longitude) or -90..90 (latitude).
inline std::optional<GridPoint> ToGridPoint(double lon, double lat) {
  if (!(lon >= -180.0 && lon <= 180.0 && lat >= -90.0 && lat <= 90.0)) return std::nullopt;
  return GridPoint{ToGrid(lon), ToGrid(lat)};
}

/// 1 when c lies left of the directed line a -> b, -1 right of it, 0 on it. Exact.
inline int Orient(GridPoint a, GridPoint b, GridPoint c) {
  const Int128 d =
      static_cast<Int128>(b.x - a.x) * (c.y - a.y) - static_cast<Int128>(b.y - a.y) * (c.x - a.x);
  return (d > 0) - (d < 0);
}

/// Whether c lies on the closed segment a-b. Exact.
inline bool OnSegment(GridPoint a, GridPoint b, GridPoint c) {
  return c.x >= std::min(a.x, b.x) && c.x <= std::max(a.x, b.x) && c.y >= std::min(a.y, b.y) &&
         c.y <= std::max(a.y, b.y) && Orient(a, b, c) == 0;
}

/// How the edge a-b stands to a ray from p towards +x.
enum class EdgeToRay {
  kApart,    ///< neither on p nor across the ray
  kCrosses,  ///< crosses the ray, counting an edge's lower end but not its upper one
  kOnEdge,   ///< p lies on the closed edge
};

/// The half-open crossing rule: an odd number of kCrosses over a polygon's rings,
/// with no kOnEdge, means p is strictly inside it.
inline EdgeToRay EdgeAgainstRay(GridPoint a, GridPoint b, GridPoint p) {
  if ((a.y > p.y) == (b.y > p.y)) {
    // Both ends above p, or both at or below it: p can only be on the edge where
    // the edge reaches p's height.
    if ((a.y == p.y || b.y == p.y) && OnSegment(a, b, p)) return EdgeToRay::kOnEdge;
    return EdgeToRay::kApart;
  }
  // One end above p's height, the other at or below it.
  const int o = Orient(a, b, p);
  if (o == 0) return EdgeToRay::kOnEdge;
  return (b.y > a.y ? o > 0 : o < 0) ? EdgeToRay::kCrosses : EdgeToRay::kApart;
}

}  // namespace pingma::registry::geo
