// Which delivery areas cover a point: an index prepared once over many areas.
//
// Built from (id, Area) pairs and never changed after: when the areas change,
// build a new one and swap the std::shared_ptr<const AreaIndex> that readers hold.
// Every method is const and writes nothing, so any number of threads may read one
// index at once.
//
// A lookup costs about the edges near the point, not the areas' size: a packed
// R-tree over the polygons' boxes (Hilbert order, 16 a node) finds the polygons
// whose box holds the point, and each keeps its edges bucketed in horizontal slabs,
// so that only the edges of the point's slab east of the point are read.
//
// Precision and boundary rule as for Area (area.h): the point is rounded to the
// nearest multiple of 2^-32 degree and decided exactly from there; a point on an
// edge or a vertex of a shell or of a hole is covered.
#pragma once

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

  AreaIndex(const AreaIndex&) = delete;
  AreaIndex& operator=(const AreaIndex&) = delete;

 private:
  // One polygon with its edges in slabs: slab s holds the edges whose height range
  // meets [min_y + s * slab_height, min_y + (s + 1) * slab_height), east end first.
  struct PreparedPolygon {
    GridBox box;
    std::uint32_t area = 0;
    std::uint32_t slab_count = 0;
    std::int64_t slab_height = 1;
    std::size_t vertex_base = 0;  // its rings in vertices_, each closed, one after another
    std::size_t slab_base = 0;    // its slab_count + 1 offsets in slab_start_
    std::size_t entry_base = 0;   // what those offsets count from in entries_
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
  bool PolygonCovers(const PreparedPolygon& polygon, GridPoint p) const;
  // Calls on_hit(area) for each polygon covering p, of every area or, when `only` is
  // not kAnyArea, of that area alone; stops when on_hit returns false.
  template <typename OnHit>
  void Visit(GridPoint p, std::uint32_t only, OnHit on_hit) const;

  static constexpr std::uint32_t kAnyArea = UINT32_MAX;

  std::vector<std::string> ids_;
  std::unordered_map<std::string_view, std::uint32_t> by_id_;
  std::vector<PreparedPolygon> polygons_;  // in the R-tree's leaf order
  std::vector<GridPoint> vertices_;
  std::vector<std::uint32_t> slab_start_;
  std::vector<std::uint32_t> entries_;  // j: the edge from vertices j to j + 1 of its polygon
  std::vector<Node> nodes_;             // leaves first, the root last
  std::size_t leaf_count_ = 0;
};

}  // namespace pingma::registry::geo
