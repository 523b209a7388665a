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
  return std::shared_ptr<const AreaIndex>(std::move(index));
}

void AreaIndex::Prepare(const Polygon& polygon, std::uint32_t area) {
  PreparedPolygon prepared;
  prepared.box = polygon.box;
  prepared.area = area;
  prepared.vertex_base = vertices_.size();
  prepared.slab_base = slab_start_.size();
  prepared.entry_base = entries_.size();

  // The edges, and how far they reach north and south in all.
  std::vector<std::uint32_t> starts;  // j for each edge (j, j + 1), counted from vertex_base
  long double reach = 0;
  for (const auto& ring : polygon.rings) {
    const auto base = static_cast<std::uint32_t>(vertices_.size() - prepared.vertex_base);
    for (std::size_t k = 0; k + 1 < ring.size(); ++k) {
      starts.push_back(base + static_cast<std::uint32_t>(k));
      reach += static_cast<long double>(std::llabs(ring[k + 1].y - ring[k].y));
    }
    vertices_.insert(vertices_.end(), ring.begin(), ring.end());
  }
  const GridPoint* v = vertices_.data() + prepared.vertex_base;

  // As many slabs as edges, unless edges are so long north to south that an edge
  // would sit in more than about 2 slabs on average; then fewer (the memory stays
  // within 4 entries an edge).
  const std::int64_t height = polygon.box.max_y - polygon.box.min_y + 1;
  const auto edges = static_cast<long double>(starts.size());
  long double slabs = std::min(edges, 2 * edges * static_cast<long double>(height) / (reach + 1));
  slabs = std::clamp(slabs, 1.0L, static_cast<long double>(height));
  prepared.slab_height =
      (height + static_cast<std::int64_t>(slabs) - 1) / static_cast<std::int64_t>(slabs);
  prepared.slab_count =
      static_cast<std::uint32_t>((height + prepared.slab_height - 1) / prepared.slab_height);

  auto slab_of = [&](std::int64_t y) {
    return static_cast<std::uint32_t>((y - polygon.box.min_y) / prepared.slab_height);
  };
  std::vector<std::uint32_t> count(prepared.slab_count + 1, 0);
  for (const std::uint32_t j : starts) {
    const auto [lo, hi] = std::minmax(v[j].y, v[j + 1].y);
    for (std::uint32_t s = slab_of(lo); s <= slab_of(hi); ++s) ++count[s + 1];
  }
  std::partial_sum(count.begin(), count.end(), count.begin());
  const std::size_t total = count.back();
  slab_start_.insert(slab_start_.end(), count.begin(), count.end());
  entries_.resize(prepared.entry_base + total);
  std::uint32_t* slab_entries = entries_.data() + prepared.entry_base;
  for (const std::uint32_t j : starts) {
    const auto [lo, hi] = std::minmax(v[j].y, v[j + 1].y);
    for (std::uint32_t s = slab_of(lo); s <= slab_of(hi); ++s) slab_entries[count[s]++] = j;
  }
  // East end first, so that a lookup stops at the first edge wholly west of it.
  for (std::uint32_t s = 0; s < prepared.slab_count; ++s) {
    const std::uint32_t* first = slab_start_.data() + prepared.slab_base + s;
    std::sort(slab_entries + first[0], slab_entries + first[1],
              [v](std::uint32_t a, std::uint32_t b) {
                return std::max(v[a].x, v[a + 1].x) > std::max(v[b].x, v[b + 1].x);
              });
  }
  polygons_.push_back(prepared);
}

void AreaIndex::BuildTree() {
  if (polygons_.empty()) return;
  GridBox all;
  for (const PreparedPolygon& p : polygons_) all.Add(p.box);
  // Box centres onto a 2^16 grid over all of them, then along the Hilbert curve.
  const long double width = static_cast<long double>(all.max_x - all.min_x) + 1;
  const long double height = static_cast<long double>(all.max_y - all.min_y) + 1;
  auto cell = [](long double offset, long double extent) {
    return static_cast<std::uint32_t>(std::min(65535.0L, offset / extent * 65536.0L));
  };
  std::vector<std::pair<std::uint64_t, std::uint32_t>> order(polygons_.size());
  for (std::uint32_t i = 0; i < polygons_.size(); ++i) {
    const GridBox& b = polygons_[i].box;
    const long double cx = (static_cast<long double>(b.min_x - all.min_x) +
                            static_cast<long double>(b.max_x - all.min_x)) /
                           2;
    const long double cy = (static_cast<long double>(b.min_y - all.min_y) +
                            static_cast<long double>(b.max_y - all.min_y)) /
                           2;
    order[i] = {HilbertIndex(cell(cx, width), cell(cy, height)), i};
  }
  std::sort(order.begin(), order.end());
  std::vector<PreparedPolygon> sorted;
  sorted.reserve(polygons_.size());
  for (const auto& [key, i] : order) sorted.push_back(polygons_[i]);
  polygons_ = std::move(sorted);

  // Leaves over runs of kNodeSize polygons, then each level over runs of the one
  // below, until one node remains.
  for (std::uint32_t i = 0; i < polygons_.size(); i += kNodeSize) {
    Node node;
    node.first = i;
    node.count =
        std::min<std::uint32_t>(kNodeSize, static_cast<std::uint32_t>(polygons_.size()) - i);
    for (std::uint32_t k = 0; k < node.count; ++k) node.box.Add(polygons_[i + k].box);
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

bool AreaIndex::PolygonCovers(const PreparedPolygon& polygon, GridPoint p) const {
  const auto s = static_cast<std::size_t>((p.y - polygon.box.min_y) / polygon.slab_height);
  const GridPoint* v = vertices_.data() + polygon.vertex_base;
  const std::uint32_t* start = slab_start_.data() + polygon.slab_base + s;
  const std::uint32_t* entry = entries_.data() + polygon.entry_base;
  bool inside = false;
  for (std::uint32_t i = start[0]; i < start[1]; ++i) {
    const std::uint32_t j = entry[i];
    const GridPoint a = v[j];
    const GridPoint b = v[j + 1];
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
        const PreparedPolygon& polygon = polygons_[i];
        if (only != kAnyArea && polygon.area != only) continue;
        if (!polygon.box.Contains(p) || !PolygonCovers(polygon, p)) continue;
        if (!on_hit(polygon.area)) return;
      }
      continue;
    }
    for (std::uint32_t i = node.first; i < node.first + node.count; ++i) {
      if (nodes_[i].box.Contains(p)) stack[top++] = i;
    }
  }
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
