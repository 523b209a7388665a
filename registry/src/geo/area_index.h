// Which delivery areas cover a point: an index prepared once over many areas.
//
// Built from (id, Area) pairs and never changed after: when the areas change,
// build a new one and swap the std::shared_ptr<const AreaIndex> that readers hold.
// Every method is const and writes nothing, so any number of threads may read one
// index at once.
//
// A lookup costs about the edges near the point, not the areas' size: a packed
// R-tree over the polygons' boxes (Hilbert order, 16 a node) finds the polygons
// whose box holds the point; a coarse raster over each polygon's box decides most
// points at once, and for the others the polygon's edges are held in horizontal
// slabs, so that only the edges of the point's slab east of the point are read.
//
// Precision and boundary rule as for Area (area.h): the point is rounded to the
// nearest multiple of 2^-32 degree and decided exactly from there; a point on an
// edge or a vertex of a shell or of a hole is covered.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "geo/area.h"
#include "geo/grid.h"
#include "pingma/common/status.h"

namespace pingma::registry::geo {

class AreaIndex {
 public:
  /// Prepares the areas (taking them over). kInvalid when an id is given twice.
  static Result<std::shared_ptr<const AreaIndex>> Build(
      std::vector<std::pair<std::string, Area>> areas);

  /// The ids of every area that covers the point, each once, in the order the areas
  /// were given to Build; empty when a coordinate is NaN or out of range. The views
  /// are valid as long as the index.
  std::vector<std::string_view> Covering(double lon, double lat) const;

  /// Whether the area `id` covers the point; false for an unknown id.
  bool Covers(std::string_view id, double lon, double lat) const;

  /// The number of areas.
  std::size_t size() const { return ids_.size(); }
  /// The bytes the index holds (its arrays, the ids and their map, roughly).
  std::size_t bytes() const;

  AreaIndex(const AreaIndex&) = delete;
  AreaIndex& operator=(const AreaIndex&) = delete;

 private:
  static constexpr int kRaster = 16;  // cells a side of a polygon's raster

  // A polygon as prepared, but for its box and area (in boxes_ and area_of_, beside
  // it): two cache lines.
  //  - A raster of kRaster x kRaster cells over its box, from the south-west corner,
  //    each 2 bits: 0 outside, 1 inside, 2 mixed (an edge meets the closed cell). A
  //    point in an outside or inside cell is decided there.
  //  - Else its edges, held by value in horizontal slabs: slab s holds every edge
  //    whose height range meets [min_y + s * slab_height, min_y + (s + 1) *
  //    slab_height), east end first, so that a lookup reads one slab, front to back,
  //    and stops at the first edge wholly west of the point.
  struct alignas(64) PreparedPolygon {
    std::int64_t cell_width = 1;
    std::int64_t cell_height = 1;
    std::int64_t slab_height = 1;
    std::uint64_t first_edge = 0;  // in narrow_ or wide_
    std::uint32_t first_slab = 0;  // its slab_count + 1 offsets in slab_start_
    std::uint32_t slab_count = 0;
    bool narrow = false;  // its box is under 2^32 steps (1 degree) a side: edges in narrow_
    std::array<std::uint8_t, kRaster * kRaster / 4> raster{};
  };
  // An edge of a narrow polygon, as offsets from its box's south-west corner.
  struct NarrowEdge {
    std::uint32_t ax, ay, bx, by;
  };
  struct WideEdge {
    GridPoint a, b;
  };
  // An R-tree node: children [first, first + count) of nodes_, or of polygons_ for
  // a leaf.
  struct Node {
    GridBox box;
    std::uint32_t first = 0;
    std::uint32_t count = 0;
  };

  AreaIndex() = default;

  void Prepare(const Polygon& polygon, std::uint32_t area);
  void BuildTree();
  // Whether polygon k covers p, which lies in its box.
  bool PolygonCovers(std::size_t k, GridPoint p) const;
  // The same from its slabs alone.
  bool SlabsCover(const PreparedPolygon& polygon, const GridBox& box, GridPoint p) const;
  // Calls on_hit(area) for each polygon covering p, of every area or, when `only` is
  // not kAnyArea, of that area alone; stops when on_hit returns false.
  template <typename OnHit>
  void Visit(GridPoint p, std::uint32_t only, OnHit on_hit) const;

  static constexpr std::uint32_t kAnyArea = UINT32_MAX;

  std::vector<std::string> ids_;
  std::unordered_map<std::string_view, std::uint32_t> by_id_;
  std::vector<GridBox> boxes_;             // each polygon's (its shell's), in leaf order
  std::vector<PreparedPolygon> polygons_;  // beside boxes_
  std::vector<std::uint32_t> area_of_;     // beside boxes_: each polygon's area
  std::vector<std::uint32_t> slab_start_;  // from each polygon's first_edge
  std::vector<NarrowEdge> narrow_;
  std::vector<WideEdge> wide_;
  std::vector<Node> nodes_;  // leaves first, the root last
  std::size_t leaf_count_ = 0;
};

}  // namespace pingma::registry::geo
