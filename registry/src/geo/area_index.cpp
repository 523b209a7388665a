#include "geo/area_index.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

namespace pingma::registry::geo {
namespace {

constexpr std::uint32_t kNodeSize = 16;

// The distance of the cell (x, y), 0 <= x, y < 2^16, along a Hilbert curve.
std::uint64_t HilbertIndex(std::uint32_t x, std::uint32_t y) {
  constexpr std::uint32_t kSide = 1u << 16;
  std::uint64_t d = 0;
  for (std::uint32_t s = kSide / 2; s > 0; s /= 2) {
    const std::uint32_t rx = (x & s) ? 1 : 0;
    const std::uint32_t ry = (y & s) ? 1 : 0;
    d += static_cast<std::uint64_t>(s) * s * ((3 * rx) ^ ry);
    if (ry == 0) {
      if (rx == 1) {
        x = kSide - 1 - x;
        y = kSide - 1 - y;
      }
      std::swap(x, y);
    }
  }
  return d;
}

// Whether the closed segment a-b meets the closed box. Exact.
bool SegmentMeetsBox(GridPoint a, GridPoint b, const GridBox& box) {
  if (std::max(a.x, b.x) < box.min_x || std::min(a.x, b.x) > box.max_x ||
      std::max(a.y, b.y) < box.min_y || std::min(a.y, b.y) > box.max_y) {
    return false;
  }
  // The boxes overlap: the segment meets the box unless its line leaves all four
  // corners strictly on one side.
  const int o1 = Orient(a, b, {box.min_x, box.min_y});
  const int o2 = Orient(a, b, {box.max_x, box.min_y});
  const int o3 = Orient(a, b, {box.max_x, box.max_y});
  const int o4 = Orient(a, b, {box.min_x, box.max_y});
  return !((o1 > 0 && o2 > 0 && o3 > 0 && o4 > 0) || (o1 < 0 && o2 < 0 && o3 < 0 && o4 < 0));
}

// A few area numbers on the stack, more on the heap.
class AreaHits {
 public:
  void Add(std::uint32_t area) {
    if (n_ < local_.size()) {
      local_[n_++] = area;
    } else {
      more_.push_back(area);
    }
  }
  // Sorted, each once.
  template <typename Out>
  void Each(Out out) {
    std::sort(local_.begin(), local_.begin() + static_cast<std::ptrdiff_t>(n_));
    std::sort(more_.begin(), more_.end());
    std::size_t i = 0;
    std::size_t j = 0;
    std::uint32_t last = UINT32_MAX;
    while (i < n_ || j < more_.size()) {
      const bool from_local = j == more_.size() || (i < n_ && local_[i] <= more_[j]);
      const std::uint32_t a = from_local ? local_[i++] : more_[j++];
      if (a != last) out(a);
      last = a;
    }
  }
  std::size_t size() const { return n_ + more_.size(); }

 private:
  std::array<std::uint32_t, 16> local_{};
  std::size_t n_ = 0;
  std::vector<std::uint32_t> more_;
};

}  // namespace

Result<std::shared_ptr<const AreaIndex>> AreaIndex::Build(
    std::vector<std::pair<std::string, Area>> areas) {
  std::shared_ptr<AreaIndex> index(new AreaIndex());
  index->ids_.reserve(areas.size());
  for (auto& [id, area] : areas) index->ids_.push_back(std::move(id));
  for (std::uint32_t i = 0; i < index->ids_.size(); ++i) {
    if (!index->by_id_.emplace(index->ids_[i], i).second) {
      const std::string quoted =
          nlohmann::json(index->ids_[i])
              .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      return Status::Invalid("area id " + quoted + " is given twice");
    }
  }
  for (std::uint32_t i = 0; i < areas.size(); ++i) {
    for (const Polygon& polygon : areas[i].second.polygons()) index->Prepare(polygon, i);
  }
  index->BuildTree();
  index->slab_start_.shrink_to_fit();
  index->narrow_.shrink_to_fit();
  index->wide_.shrink_to_fit();
  return std::shared_ptr<const AreaIndex>(std::move(index));
}

void AreaIndex::Prepare(const Polygon& polygon, std::uint32_t area) {
  const GridBox& box = polygon.box;
  PreparedPolygon prepared;
  prepared.first_slab = static_cast<std::uint32_t>(slab_start_.size());
  prepared.narrow = static_cast<std::uint64_t>(box.max_x - box.min_x) <= UINT32_MAX &&
                    static_cast<std::uint64_t>(box.max_y - box.min_y) <= UINT32_MAX;
  prepared.first_edge = prepared.narrow ? narrow_.size() : wide_.size();

  // The edges, and how far they reach north and south in all.
  std::vector<WideEdge> edges;
  long double reach = 0;
  for (const auto& ring : polygon.rings) {
    for (std::size_t k = 0; k + 1 < ring.size(); ++k) {
      edges.push_back({ring[k], ring[k + 1]});
      reach += static_cast<long double>(std::llabs(ring[k + 1].y - ring[k].y));
    }
  }

  // A slab for every 4 edges, unless edges are so long north to south that an edge
  // would sit in more than about 2 slabs on average; then fewer (the memory stays
  // within 3 or so copies an edge).
  const std::int64_t height = box.max_y - box.min_y + 1;
  const auto count = static_cast<long double>(edges.size());
  long double slabs = std::min(count / 4, count * static_cast<long double>(height) / (reach + 1));
  slabs = std::clamp(slabs, 1.0L, static_cast<long double>(height));
  prepared.slab_height =
      (height + static_cast<std::int64_t>(slabs) - 1) / static_cast<std::int64_t>(slabs);
  prepared.slab_count =
      static_cast<std::uint32_t>((height + prepared.slab_height - 1) / prepared.slab_height);
  auto slab_of = [&](std::int64_t y) {
    return static_cast<std::uint32_t>((y - box.min_y) / prepared.slab_height);
  };
  std::vector<std::uint32_t> start(prepared.slab_count + 1, 0);
  for (const WideEdge& e : edges) {
    const auto [lo, hi] = std::minmax(e.a.y, e.b.y);
    for (std::uint32_t s = slab_of(lo); s <= slab_of(hi); ++s) ++start[s + 1];
  }
  std::partial_sum(start.begin(), start.end(), start.begin());
  std::vector<WideEdge> in_slabs(start.back());
  std::vector<std::uint32_t> fill(start.begin(), start.end() - 1);
  for (const WideEdge& e : edges) {
    const auto [lo, hi] = std::minmax(e.a.y, e.b.y);
    for (std::uint32_t s = slab_of(lo); s <= slab_of(hi); ++s) in_slabs[fill[s]++] = e;
  }
  // East end first, so that a lookup stops at the first edge wholly west of it.
  for (std::uint32_t s = 0; s < prepared.slab_count; ++s) {
    std::sort(in_slabs.begin() + start[s], in_slabs.begin() + start[s + 1],
              [](const WideEdge& a, const WideEdge& b) {
                return std::max(a.a.x, a.b.x) > std::max(b.a.x, b.b.x);
              });
  }
  slab_start_.insert(slab_start_.end(), start.begin(), start.end());
  for (const WideEdge& e : in_slabs) {
    if (prepared.narrow) {
      narrow_.push_back({static_cast<std::uint32_t>(e.a.x - box.min_x),
                         static_cast<std::uint32_t>(e.a.y - box.min_y),
                         static_cast<std::uint32_t>(e.b.x - box.min_x),
                         static_cast<std::uint32_t>(e.b.y - box.min_y)});
    } else {
      wide_.push_back(e);
    }
  }

  // The raster: a cell any edge meets is mixed; any other is wholly inside or wholly
  // outside, as its south-west corner is.
  prepared.cell_width = (box.max_x - box.min_x + kRaster) / kRaster;
  prepared.cell_height = (box.max_y - box.min_y + kRaster) / kRaster;
  auto cell_box = [&](int i, int j) {
    return GridBox{box.min_x + i * prepared.cell_width, box.min_y + j * prepared.cell_height,
                   box.min_x + (i + 1) * prepared.cell_width,
                   box.min_y + (j + 1) * prepared.cell_height};
  };
  std::array<std::uint8_t, kRaster * kRaster> cells{};
  constexpr std::uint8_t kOutside = 0, kInside = 1, kMixed = 2;
  for (const WideEdge& e : edges) {
    // The cells whose closed boxes the edge's box meets, then each exactly.
    const auto [x0, x1] = std::minmax(e.a.x, e.b.x);
    const auto [y0, y1] = std::minmax(e.a.y, e.b.y);
    const auto i0 =
        static_cast<int>(std::max<std::int64_t>(0, (x0 - box.min_x) / prepared.cell_width - 1));
    const auto i1 = static_cast<int>(
        std::min<std::int64_t>(kRaster - 1, (x1 - box.min_x) / prepared.cell_width));
    const auto j0 =
        static_cast<int>(std::max<std::int64_t>(0, (y0 - box.min_y) / prepared.cell_height - 1));
    const auto j1 = static_cast<int>(
        std::min<std::int64_t>(kRaster - 1, (y1 - box.min_y) / prepared.cell_height));
    for (int j = j0; j <= j1; ++j) {
      for (int i = i0; i <= i1; ++i) {
        if (SegmentMeetsBox(e.a, e.b, cell_box(i, j))) cells[j * kRaster + i] = kMixed;
      }
    }
  }
  for (int j = 0; j < kRaster; ++j) {
    for (int i = 0; i < kRaster; ++i) {
      std::uint8_t& cell = cells[j * kRaster + i];
      const GridPoint corner{cell_box(i, j).min_x, cell_box(i, j).min_y};
      if (cell != kMixed) {
        cell = box.Contains(corner) && SlabsCover(prepared, box, corner) ? kInside : kOutside;
      }
      prepared.raster[(j * kRaster + i) / 4] |=
          static_cast<std::uint8_t>(cell << (2 * ((j * kRaster + i) % 4)));
    }
  }
  boxes_.push_back(box);
  polygons_.push_back(prepared);
  area_of_.push_back(area);
}

void AreaIndex::BuildTree() {
  if (polygons_.empty()) return;
  GridBox all;
  for (const GridBox& b : boxes_) all.Add(b);
  // Box centres onto a 2^16 grid over all of them, then along the Hilbert curve.
  const long double width = static_cast<long double>(all.max_x - all.min_x) + 1;
  const long double height = static_cast<long double>(all.max_y - all.min_y) + 1;
  auto cell = [](long double offset, long double extent) {
    return static_cast<std::uint32_t>(std::min(65535.0L, offset / extent * 65536.0L));
  };
  std::vector<std::pair<std::uint64_t, std::uint32_t>> order(polygons_.size());
  for (std::uint32_t i = 0; i < polygons_.size(); ++i) {
    const GridBox& b = boxes_[i];
    const long double cx = (static_cast<long double>(b.min_x - all.min_x) +
                            static_cast<long double>(b.max_x - all.min_x)) /
                           2;
    const long double cy = (static_cast<long double>(b.min_y - all.min_y) +
                            static_cast<long double>(b.max_y - all.min_y)) /
                           2;
    order[i] = {HilbertIndex(cell(cx, width), cell(cy, height)), i};
  }
  std::sort(order.begin(), order.end());
  std::vector<GridBox> boxes;
  std::vector<PreparedPolygon> polygons;
  std::vector<std::uint32_t> area_of;
  for (const auto& [key, i] : order) {
    boxes.push_back(boxes_[i]);
    polygons.push_back(polygons_[i]);
    area_of.push_back(area_of_[i]);
  }
  boxes_ = std::move(boxes);
  polygons_ = std::move(polygons);
  area_of_ = std::move(area_of);

  // Leaves over runs of kNodeSize polygons, then each level over runs of the one
  // below, until one node remains.
  for (std::uint32_t i = 0; i < polygons_.size(); i += kNodeSize) {
    Node node;
    node.first = i;
    node.count =
        std::min<std::uint32_t>(kNodeSize, static_cast<std::uint32_t>(polygons_.size()) - i);
    for (std::uint32_t k = 0; k < node.count; ++k) node.box.Add(boxes_[i + k]);
    nodes_.push_back(node);
  }
  leaf_count_ = nodes_.size();
  std::size_t level_begin = 0;
  std::size_t level_end = nodes_.size();
  while (level_end - level_begin > 1) {
    for (std::size_t i = level_begin; i < level_end; i += kNodeSize) {
      Node node;
      node.first = static_cast<std::uint32_t>(i);
      node.count = static_cast<std::uint32_t>(std::min<std::size_t>(kNodeSize, level_end - i));
      for (std::uint32_t k = 0; k < node.count; ++k) node.box.Add(nodes_[i + k].box);
      nodes_.push_back(node);
    }
    level_begin = level_end;
    level_end = nodes_.size();
  }
}

bool AreaIndex::SlabsCover(const PreparedPolygon& polygon, const GridBox& box, GridPoint p) const {
  const std::uint32_t* start =
      slab_start_.data() + polygon.first_slab + (p.y - box.min_y) / polygon.slab_height;
  bool inside = false;
  auto walk = [&](auto edge_at) {
    for (std::uint32_t i = start[0]; i < start[1]; ++i) {
      const auto [a, b] = edge_at(i);
      if (std::max(a.x, b.x) < p.x) break;  // this one and the rest lie west of p
      switch (EdgeAgainstRay(a, b, p)) {
        case EdgeToRay::kOnEdge:
          return true;
        case EdgeToRay::kCrosses:
          inside = !inside;
          break;
        case EdgeToRay::kApart:
          break;
      }
    }
    return inside;
  };
  if (polygon.narrow) {
    const NarrowEdge* edges = narrow_.data() + polygon.first_edge;
    return walk([&](std::uint32_t i) {
      const NarrowEdge& e = edges[i];
      return std::pair(GridPoint{box.min_x + e.ax, box.min_y + e.ay},
                       GridPoint{box.min_x + e.bx, box.min_y + e.by});
    });
  }
  const WideEdge* edges = wide_.data() + polygon.first_edge;
  return walk([&](std::uint32_t i) { return std::pair(edges[i].a, edges[i].b); });
}

bool AreaIndex::PolygonCovers(std::size_t k, GridPoint p) const {
  const GridBox& box = boxes_[k];
  const PreparedPolygon& polygon = polygons_[k];
  const auto cell = static_cast<int>((p.y - box.min_y) / polygon.cell_height * kRaster +
                                     (p.x - box.min_x) / polygon.cell_width);
  const int status = (polygon.raster[cell / 4] >> (2 * (cell % 4))) & 3;
  if (status != 2) return status == 1;
  return SlabsCover(polygon, box, p);
}

template <typename OnHit>
void AreaIndex::Visit(GridPoint p, std::uint32_t only, OnHit on_hit) const {
  if (nodes_.empty()) return;
  // At most kNodeSize children wait at each of at most 8 levels (16^8 = 2^32).
  std::array<std::uint32_t, kNodeSize * 8 + 1> stack;
  std::size_t top = 0;
  const auto root = static_cast<std::uint32_t>(nodes_.size() - 1);
  if (!nodes_[root].box.Contains(p)) return;
  stack[top++] = root;
  while (top > 0) {
    const std::uint32_t at = stack[--top];
    const Node& node = nodes_[at];
    if (at < leaf_count_) {
      for (std::uint32_t i = node.first; i < node.first + node.count; ++i) {
        if (!boxes_[i].Contains(p)) continue;
        const std::uint32_t area = area_of_[i];
        if (only != kAnyArea && area != only) continue;
        if (PolygonCovers(i, p) && !on_hit(area)) return;
      }
      continue;
    }
    for (std::uint32_t i = node.first; i < node.first + node.count; ++i) {
      if (nodes_[i].box.Contains(p)) stack[top++] = i;
    }
  }
}

std::size_t AreaIndex::bytes() const {
  std::size_t ids = 0;
  for (const std::string& id : ids_) ids += sizeof id + (id.capacity() > 15 ? id.capacity() : 0);
  const std::size_t map =
      by_id_.size() * (sizeof(std::string_view) + sizeof(std::uint32_t) + 2 * sizeof(void*));
  return ids + map + boxes_.capacity() * sizeof(GridBox) +
         polygons_.capacity() * sizeof(PreparedPolygon) +
         area_of_.capacity() * sizeof(std::uint32_t) +
         slab_start_.capacity() * sizeof(std::uint32_t) + narrow_.capacity() * sizeof(NarrowEdge) +
         wide_.capacity() * sizeof(WideEdge) + nodes_.capacity() * sizeof(Node);
}

std::vector<std::string_view> AreaIndex::Covering(double lon, double lat) const {
  std::vector<std::string_view> ids;
  const auto p = ToGridPoint(lon, lat);
  if (!p) return ids;
  AreaHits hits;
  Visit(*p, kAnyArea, [&hits](std::uint32_t area) {
    hits.Add(area);
    return true;
  });
  ids.reserve(hits.size());
  hits.Each([&](std::uint32_t area) { ids.emplace_back(ids_[area]); });
  return ids;
}

bool AreaIndex::Covers(std::string_view id, double lon, double lat) const {
  const auto p = ToGridPoint(lon, lat);
  const auto found = by_id_.find(id);
  if (!p || found == by_id_.end()) return false;
  bool covered = false;
  Visit(*p, found->second, [&covered](std::uint32_t) {
    covered = true;
    return false;
  });
  return covered;
}

}  // namespace pingma::registry::geo
