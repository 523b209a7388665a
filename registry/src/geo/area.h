// Delivery areas: a gas company's GeoJSON Polygon or MultiPolygon (RFC 7946),
// checked and held on the fixed-point grid of grid.h.
//
// Coordinates are WGS-84 [longitude, latitude] in degrees, taken as a plane, as
// shapely and PostGIS's geometry type take them: an area does not wrap across the
// antimeridian, and a straight edge is straight in longitude and latitude.
//
// Precision: each coordinate is rounded to the nearest multiple of 2^-32 degree
// (about 2.6 mm); every decision after that is exact. Coordinates that are already
// multiples of 2^-32 degree (any multiple of 2^-20 degree, for instance) are held
// as given.
//
// Boundary rule: an area is a closed set. A point on an edge or a vertex of a shell
// or of a hole is inside it (shapely's `covers`, not `contains`).
//
// An Area is an immutable value, safe to read from any thread.
#pragma once

#include <cstddef>
#include <vector>

#include <nlohmann/json.hpp>

#include "geo/grid.h"
#include "pingma/common/status.h"

namespace pingma::registry::geo {

/// The most positions an area may have, over all its polygons and rings (each
/// ring's closing position counted). Checked before anything else is read.
inline constexpr std::size_t kMaxAreaPositions = 100'000;

/// One polygon: rings[0] its shell, the others its holes. Each ring is closed
/// (back() == front()), has at least 3 distinct vertices and no two consecutive
/// equal ones, and is simple. The holes lie inside the shell and outside one
/// another; two rings meet, if at all, only at single points, where they touch
/// without crossing. Either orientation is accepted for any ring.
struct Polygon {
  std::vector<std::vector<GridPoint>> rings;
  GridBox box;  ///< the shell's box
};

/// A box in degrees, its corners on the grid.
struct BoundingBox {
  double min_lon = 0;
  double min_lat = 0;
  double max_lon = 0;
  double max_lat = 0;
};

/// A delivery area: the union of its polygons (which may touch or overlap one
/// another; each is valid on its own). Made only by ParseArea.
class Area {
 public:
  /// The smallest box holding every position (as rounded to the grid).
  const BoundingBox& bbox() const { return bbox_; }
  const GridBox& grid_box() const { return box_; }
  const std::vector<Polygon>& polygons() const { return polygons_; }

  /// Whether the area covers the point (boundary included). Walks every edge of
  /// every polygon whose box holds the point: the plain reference the prepared
  /// AreaIndex is tested against. False for a coordinate out of range or NaN.
  bool Covers(double lon, double lat) const;
  bool Covers(GridPoint p) const;

 private:
  friend Result<Area> ParseArea(const nlohmann::json& geometry);
  Area() = default;

  std::vector<Polygon> polygons_;
  GridBox box_;
  BoundingBox bbox_;
};

/// Reads a GeoJSON geometry object: {"type": "Polygon", "coordinates": [ring, ...]}
/// or {"type": "MultiPolygon", "coordinates": [[ring, ...], ...]}, each ring an
/// array of positions [lon, lat] (a third number, an altitude, is allowed and
/// ignored). Members other than "type" and "coordinates" (a "bbox", say) are
/// ignored.
///
/// Errors say what is wrong and where, as a path into the geometry; edge i of a
/// ring joins its positions i and i+1:
///  - kTooLarge: more than kMaxAreaPositions positions;
///  - kInvalid: not an object; a type other than Polygon or MultiPolygon; missing
///    or mistyped coordinates; no ring, or no polygon; a position that is not 2 or
///    3 numbers, or not finite; a longitude outside -180..180 or a latitude
///    outside -90..90 (both ends included); a ring of fewer than 4 positions, not
///    closed (its first and last positions not identical), with fewer than 3
///    distinct positions on the grid, that doubles back on itself, that crosses or
///    touches itself; a hole that crosses or shares an edge with its shell or
///    another hole, that lies outside its shell, or inside another hole.
///  Example: "geometry.coordinates[0][2]: ring is not closed (first [116.3, 39.9],
///  last [116.4, 39.9])".
///
/// Checking an area of n positions takes O(n log n) time (a sweep over the edges of
/// each polygon).
Result<Area> ParseArea(const nlohmann::json& geometry);

}  // namespace pingma::registry::geo
