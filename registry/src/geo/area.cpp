#include "geo/area.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <set>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace pingma::registry::geo {
namespace {

using nlohmann::json;

constexpr std::uint32_t kNone = UINT32_MAX;

// The shortest text that reads back as the same double: "116.4".
std::string Num(double v) {
  std::array<char, 32> buf{};
  const auto end = std::to_chars(buf.data(), buf.data() + buf.size(), v).ptr;
  return std::string(buf.data(), end);
}

std::string LonLat(double lon, double lat) {
  return "[" + Num(lon) + ", " + Num(lat) + "]";
}

// A computed point (where two edges cross): 7 decimals, about 1 cm, zeros trimmed.
std::string Near(long double lon, long double lat) {
  auto text = [](long double v) {
    std::string s = fmt::format("{:.7f}", static_cast<double>(v));
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
    return s;
  };
  return "[" + text(lon) + ", " + text(lat) + "]";
}

std::string Kind(const json& j) {
  switch (j.type()) {
    case json::value_t::object:
      return "an object";
    case json::value_t::array:
      return "an array";
    case json::value_t::string:
      return "a string";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::null:
      return "null";
    default:
      return "a number";
  }
}

// A string the caller gave, quoted and escaped, cut to a readable length.
std::string Quoted(const json& s) {
  std::string text = s.dump(-1, ' ', true, json::error_handler_t::replace);
  if (text.size() > 40) text = text.substr(0, 36) + "...\"";
  return text;
}

// One ring as read: its positions as written (for messages) and its vertices on
// the grid, with no two consecutive ones equal and the closing one left out.
struct RingInput {
  std::string path;                          // "geometry.coordinates[0][1]"
  std::vector<std::array<double, 2>> given;  // every position as written
  std::vector<GridPoint> vertices;           // m >= 3 once read
  std::vector<std::uint32_t> first;          // vertices[k] is given[first[k]]
  std::vector<std::uint32_t> edge;  // edge k (vertices[k] to [k+1 mod m]) is given edge edge[k]
  bool ccw = false;                 // runs counter-clockwise
  std::uint32_t leftmost = 0;       // the vertex least by x, then y

  std::size_t size() const { return vertices.size(); }
  std::string At(std::uint32_t k) const {
    const auto& g = given[first[k]];
    return LonLat(g[0], g[1]);
  }
};

Status ReadCoordinate(const json& value, const std::string& path, std::size_t i, int axis,
                      double* out) {
  static const char* const kNames[] = {"longitude", "latitude", "altitude"};
  const char* name = kNames[axis];
  if (!value.is_number()) {
    return Status::Invalid(
        fmt::format("{}[{}][{}]: {} must be a number, got {}", path, i, axis, name, Kind(value)));
  }
  const double v = value.get<double>();
  if (!std::isfinite(v)) {
    return Status::Invalid(
        fmt::format("{}[{}][{}]: {} must be finite, got {}", path, i, axis, name, Num(v)));
  }
  if (axis == 0 && (v < -180.0 || v > 180.0)) {
    return Status::Invalid(
        fmt::format("{}[{}][0]: longitude {} out of range -180..180", path, i, Num(v)));
  }
  if (axis == 1 && (v < -90.0 || v > 90.0)) {
    return Status::Invalid(
        fmt::format("{}[{}][1]: latitude {} out of range -90..90", path, i, Num(v)));
  }
  *out = v;
  return Status::Ok();
}

Result<RingInput> ReadRing(const json& ring, std::string path) {
  if (!ring.is_array()) {
    return Status::Invalid(path + ": a ring must be an array of positions, got " + Kind(ring));
  }
  const std::size_t n = ring.size();
  if (n < 4) {
    return Status::Invalid(fmt::format(
        "{}: a ring needs at least 4 positions (its first repeated as its last), got {}", path, n));
  }
  RingInput in;
  in.path = std::move(path);
  in.given.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const json& pos = ring[i];
    if (!pos.is_array()) {
      return Status::Invalid(
          fmt::format("{}[{}]: a position must be an array [longitude, latitude], got {}", in.path,
                      i, Kind(pos)));
    }
    if (pos.size() != 2 && pos.size() != 3) {
      return Status::Invalid(
          fmt::format("{}[{}]: a position must hold 2 numbers [longitude, latitude] (or 3, with an "
                      "altitude), got {}",
                      in.path, i, pos.size()));
    }
    for (std::size_t axis = 0; axis < pos.size(); ++axis) {
      double v = 0;
      PINGMA_RETURN_IF_ERROR(ReadCoordinate(pos[axis], in.path, i, static_cast<int>(axis), &v));
      if (axis < 2) in.given[i][axis] = v;
    }
  }
  if (in.given.front() != in.given.back()) {
    return Status::Invalid(fmt::format("{}: ring is not closed (first {}, last {})", in.path,
                                       LonLat(in.given.front()[0], in.given.front()[1]),
                                       LonLat(in.given.back()[0], in.given.back()[1])));
  }

  // Vertices on the grid, runs of equal ones kept once (the closing position is the
  // first one's run).
  std::vector<std::uint32_t> run_end;  // the last given position of vertex k's run
  for (std::uint32_t i = 0; i + 1 < n; ++i) {
    const GridPoint p{ToGrid(in.given[i][0]), ToGrid(in.given[i][1])};
    if (!in.vertices.empty() && in.vertices.back() == p) {
      run_end.back() = i;
      continue;
    }
    in.vertices.push_back(p);
    in.first.push_back(i);
    run_end.push_back(i);
  }
  // A run at the end equal to the first vertex joins the first vertex's run.
  while (in.vertices.size() > 1 && in.vertices.back() == in.vertices.front()) {
    in.vertices.pop_back();
    in.first.pop_back();
    run_end.pop_back();
  }
  const std::size_t m = in.vertices.size();
  if (m < 3) {
    return Status::Invalid(fmt::format(
        "{}: ring has no area: it has only {} distinct position{} (on the grid of 2^-32 degree)",
        in.path, m, m == 1 ? "" : "s"));
  }
  // The edge out of vertex k starts at the last position of its run.
  in.edge = std::move(run_end);

  Int128 twice_area = 0;
  const GridPoint o = in.vertices[0];
  for (std::size_t k = 0; k < m; ++k) {
    const GridPoint a = in.vertices[k];
    const GridPoint b = in.vertices[(k + 1) % m];
    twice_area +=
        static_cast<Int128>(a.x - o.x) * (b.y - o.y) - static_cast<Int128>(b.x - o.x) * (a.y - o.y);
    if (a < in.vertices[in.leftmost]) in.leftmost = static_cast<std::uint32_t>(k);
  }
  in.ccw = twice_area > 0;
  return in;
}

// Every contact between the rings of one polygon, found by one sweep over its
// edges from west to east (Shamos and Hoey, with the contacts a polygon may have
// allowed): the edges crossing the sweep line are kept in order from south to
// north, and only neighbours can cross before some vertex tells. At each vertex
// the edges that meet there are looked at together: the ring's own two, any edge
// passing through it, and those of other rings with a vertex there. The same
// sweep finds, for each ring, the ring just around it, so that holes are known to
// lie inside the shell and outside one another.
//
// The sweep line is tilted by an infinitesimal angle, so that points are met in
// order of x, then y; "below" means earlier along that line, which for an edge
// directed from its first end to its last is "right of it".
class PolygonCheck {
 public:
  explicit PolygonCheck(const std::vector<RingInput>& rings) : rings_(rings) {}

  Status Run();

 private:
  struct Edge {
    GridPoint l;  // the first end met by the sweep
    GridPoint r;  // the last
    std::uint32_t ring = 0;
    std::uint32_t k = 0;   // from vertex k of its ring to vertex k+1
    bool forward = false;  // the ring runs from l to r
  };

  struct Vertex {
    GridPoint p;
    std::uint32_t ring = 0;
    std::uint32_t k = 0;
  };

  // One direction out of the vertex being looked at.
  struct Direction {
    std::int64_t dx = 0;
    std::int64_t dy = 0;
    std::uint32_t ring = 0;
    std::uint32_t edge = 0;    // an index into edges_
    std::uint32_t vertex = 0;  // the ring's vertex there, or kNone for an edge passing
  };

  struct Order {
    using is_transparent = void;
    const std::vector<Edge>* edges;

    // Whether edge a lies below edge b where both cross the sweep line.
    bool operator()(std::uint32_t a, std::uint32_t b) const {
      const Edge& ea = (*edges)[a];
      const Edge& eb = (*edges)[b];
      // Compare where the later of the two begins: before any crossing, the order
      // there is the order everywhere both are present.
      if (!(eb.l < ea.l)) {
        int o = Orient(ea.l, ea.r, eb.l);
        if (o == 0) o = Orient(ea.l, ea.r, eb.r);
        if (o != 0) return o > 0;
      } else {
        int o = Orient(eb.l, eb.r, ea.l);
        if (o == 0) o = Orient(eb.l, eb.r, ea.r);
        if (o != 0) return o < 0;
      }
      return a < b;  // collinear: an overlap, refused at the vertex where it begins
    }
    bool operator()(std::uint32_t a, GridPoint p) const {
      const Edge& e = (*edges)[a];
      return Orient(e.l, e.r, p) > 0;
    }
    bool operator()(GridPoint p, std::uint32_t a) const {
      const Edge& e = (*edges)[a];
      return Orient(e.l, e.r, p) < 0;
    }
  };
  using Line = std::set<std::uint32_t, Order>;

  std::uint32_t EdgeId(std::uint32_t ring, std::size_t k) const {
    return base_[ring] + static_cast<std::uint32_t>(k % rings_[ring].size());
  }
  std::uint32_t EdgeIn(const Vertex& v) const {
    return EdgeId(v.ring, v.k + rings_[v.ring].size() - 1);
  }
  std::uint32_t EdgeOut(const Vertex& v) const { return EdgeId(v.ring, v.k); }
  // The edge as the caller wrote it: "edge 7".
  std::uint32_t GivenEdge(std::uint32_t e) const {
    return rings_[edges_[e].ring].edge[edges_[e].k];
  }
  bool InteriorAbove(std::uint32_t e) const {
    return rings_[edges_[e].ring].ccw == edges_[e].forward;
  }

  Status Remove(std::uint32_t e);
  Status Insert(std::uint32_t e);
  Status CheckNeighbours(std::uint32_t a, std::uint32_t b) const;
  Status LookAtVertex(std::size_t from, std::size_t to);
  Status CheckNesting() const;

  // "geometry.coordinates[2]: hole crosses the shell (geometry.coordinates[0])" and
  // the like, for rings a and b; a is the ring named first.
  std::string Between(std::uint32_t a, std::uint32_t b, const char* verb) const;
  Status Crossing(std::uint32_t e1, std::uint32_t e2, const std::string& where) const;

  const std::vector<RingInput>& rings_;
  std::vector<std::uint32_t> base_;  // the first edge of each ring
  std::vector<Edge> edges_;
  std::vector<Vertex> vertices_;
  Line line_{Order{&edges_}};
  std::vector<Line::iterator> where_;
  std::vector<std::int64_t> around_;  // the ring just around each ring, -1 for none
  std::vector<Direction> dirs_;
  std::vector<std::uint32_t> starting_;
};

std::string PolygonCheck::Between(std::uint32_t a, std::uint32_t b, const char* verb) const {
  if (a < b) std::swap(a, b);  // name the later ring first: a hole, never the shell
  return fmt::format("{}: hole {} {} ({})", rings_[a].path, verb,
                     b == 0 ? "the shell" : "another hole", rings_[b].path);
}

Status PolygonCheck::Crossing(std::uint32_t e1, std::uint32_t e2, const std::string& where) const {
  const Edge& a = edges_[e1];
  const Edge& b = edges_[e2];
  if (a.ring == b.ring) {
    const std::uint32_t i = std::min(GivenEdge(e1), GivenEdge(e2));
    const std::uint32_t j = std::max(GivenEdge(e1), GivenEdge(e2));
    return Status::Invalid(fmt::format("{}: ring crosses itself: edge {} and edge {} meet {}",
                                       rings_[a.ring].path, i, j, where));
  }
  const std::uint32_t later = std::max(a.ring, b.ring);
  const std::uint32_t e_later = a.ring == later ? e1 : e2;
  const std::uint32_t e_other = a.ring == later ? e2 : e1;
  return Status::Invalid(fmt::format("{}: its edge {} and that ring's edge {} meet {}",
                                     Between(a.ring, b.ring, "crosses"), GivenEdge(e_later),
                                     GivenEdge(e_other), where));
}

Status PolygonCheck::CheckNeighbours(std::uint32_t e1, std::uint32_t e2) const {
  const Edge& a = edges_[e1];
  const Edge& b = edges_[e2];
  const int o1 = Orient(a.l, a.r, b.l);
  const int o2 = Orient(a.l, a.r, b.r);
  const int o3 = Orient(b.l, b.r, a.l);
  const int o4 = Orient(b.l, b.r, a.r);
  // Touching ends and overlaps begin at a vertex and are judged there; here only a
  // crossing of the two edges' insides.
  if (o1 * o2 >= 0 || o3 * o4 >= 0) return Status::Ok();
  using LD = long double;
  const LD ax = static_cast<LD>(a.r.x - a.l.x);
  const LD ay = static_cast<LD>(a.r.y - a.l.y);
  const LD bx = static_cast<LD>(b.r.x - b.l.x);
  const LD by = static_cast<LD>(b.r.y - b.l.y);
  const LD qx = static_cast<LD>(b.l.x - a.l.x);
  const LD qy = static_cast<LD>(b.l.y - a.l.y);
  const LD t = (qx * by - qy * bx) / (ax * by - ay * bx);
  const LD x = (static_cast<LD>(a.l.x) + t * ax) / static_cast<LD>(kGridPerDegree);
  const LD y = (static_cast<LD>(a.l.y) + t * ay) / static_cast<LD>(kGridPerDegree);
  return Crossing(e1, e2, "near " + Near(x, y));
}

Status PolygonCheck::Remove(std::uint32_t e) {
  auto it = where_[e];
  const bool has_below = it != line_.begin();
  auto below = has_below ? std::prev(it) : it;
  auto above = std::next(it);
  line_.erase(it);
  if (has_below && above != line_.end()) return CheckNeighbours(*below, *above);
  return Status::Ok();
}

Status PolygonCheck::Insert(std::uint32_t e) {
  const auto it = line_.insert(e).first;
  where_[e] = it;
  if (it != line_.begin()) PINGMA_RETURN_IF_ERROR(CheckNeighbours(*std::prev(it), e));
  if (std::next(it) != line_.end()) PINGMA_RETURN_IF_ERROR(CheckNeighbours(e, *std::next(it)));
  return Status::Ok();
}

// The vertices_[from, to) share one point p.
Status PolygonCheck::LookAtVertex(std::size_t from, std::size_t to) {
  const GridPoint p = vertices_[from].p;
  const std::string point = rings_[vertices_[from].ring].At(vertices_[from].k);
  const std::string at = "at " + point;

  // 1. Edges that end here leave the line.
  for (std::size_t i = from; i < to; ++i) {
    for (const std::uint32_t e : {EdgeIn(vertices_[i]), EdgeOut(vertices_[i])}) {
      if (edges_[e].r == p) PINGMA_RETURN_IF_ERROR(Remove(e));
    }
  }

  // 2. Edges that pass through p: at most one, or two edges cross here.
  const auto [lo, hi] = line_.equal_range(p);
  std::uint32_t passing = kNone;
  for (auto it = lo; it != hi; ++it) {
    if (passing != kNone) return Crossing(passing, *it, at);
    passing = *it;
  }

  // 3. The directions out of p, two for each ring that is here.
  dirs_.clear();
  for (std::size_t i = from; i < to; ++i) {
    const Vertex& v = vertices_[i];
    const RingInput& ring = rings_[v.ring];
    const std::size_t m = ring.size();
    const GridPoint prev = ring.vertices[(v.k + m - 1) % m];
    const GridPoint next = ring.vertices[(v.k + 1) % m];
    dirs_.push_back({prev.x - p.x, prev.y - p.y, v.ring, EdgeIn(v), v.k});
    dirs_.push_back({next.x - p.x, next.y - p.y, v.ring, EdgeOut(v), v.k});
  }
  if (passing != kNone) {
    const Edge& e = edges_[passing];
    dirs_.push_back({e.l.x - p.x, e.l.y - p.y, e.ring, passing, kNone});
    dirs_.push_back({e.r.x - p.x, e.r.y - p.y, e.ring, passing, kNone});
  }
  auto same_way = [](const Direction& a, const Direction& b) {
    return static_cast<Int128>(a.dx) * b.dy == static_cast<Int128>(a.dy) * b.dx &&
           static_cast<Int128>(a.dx) * b.dx + static_cast<Int128>(a.dy) * b.dy > 0;
  };
  auto doubles_back = [&](const Direction& a) {
    const RingInput& ring = rings_[a.ring];
    const auto [i, j] =
        std::minmax(ring.edge[(a.vertex + ring.size() - 1) % ring.size()], ring.edge[a.vertex]);
    return Status::Invalid(
        fmt::format("{}: ring doubles back on itself at position {} {}: edges {} and {} overlap",
                    ring.path, ring.first[a.vertex], ring.At(a.vertex), i, j));
  };
  if (dirs_.size() == 2) {
    if (same_way(dirs_[0], dirs_[1])) return doubles_back(dirs_[0]);
  } else {
    // A ring here twice touches itself.
    for (std::size_t i = 0; i < dirs_.size(); i += 2) {
      for (std::size_t j = i + 2; j < dirs_.size(); j += 2) {
        if (dirs_[i].ring != dirs_[j].ring) continue;
        const RingInput& ring = rings_[dirs_[i].ring];
        if (dirs_[j].vertex == kNone) {
          return Status::Invalid(fmt::format(
              "{}: ring touches itself: position {} {} lies on edge {}", ring.path,
              ring.first[dirs_[i].vertex], ring.At(dirs_[i].vertex), GivenEdge(dirs_[j].edge)));
        }
        return Status::Invalid(fmt::format(
            "{}: ring touches itself: positions {} and {} are both {}", ring.path,
            ring.first[dirs_[i].vertex], ring.first[dirs_[j].vertex], ring.At(dirs_[i].vertex)));
      }
    }
    // Around p counter-clockwise from +x: no two rings may leave p the same way,
    // and no ring may separate another's two directions (they would cross).
    auto upper = [](const Direction& d) { return d.dy > 0 || (d.dy == 0 && d.dx > 0); };
    std::sort(dirs_.begin(), dirs_.end(), [&](const Direction& a, const Direction& b) {
      if (upper(a) != upper(b)) return upper(a);
      return static_cast<Int128>(a.dx) * b.dy > static_cast<Int128>(a.dy) * b.dx;
    });
    for (std::size_t i = 0; i < dirs_.size(); ++i) {
      const Direction& a = dirs_[i];
      const Direction& b = dirs_[(i + 1) % dirs_.size()];
      if (!same_way(a, b)) continue;
      if (a.ring == b.ring) return doubles_back(a);
      const std::uint32_t later = std::max(a.ring, b.ring);
      const Direction& dl = a.ring == later ? a : b;
      const Direction& dother = a.ring == later ? b : a;
      return Status::Invalid(
          fmt::format("{}: its edge {} and that ring's edge {} overlap from {}",
                      Between(a.ring, b.ring, "shares part of its boundary with"),
                      GivenEdge(dl.edge), GivenEdge(dother.edge), point));
    }
    std::vector<std::uint32_t> open;  // rings met once, innermost last
    std::vector<std::uint32_t> seen;
    for (const Direction& d : dirs_) {
      if (!open.empty() && open.back() == d.ring) {
        open.pop_back();
      } else if (std::find(seen.begin(), seen.end(), d.ring) != seen.end()) {
        return Status::Invalid(Between(d.ring, open.back(), "crosses") + " " + at);
      } else {
        open.push_back(d.ring);
        seen.push_back(d.ring);
      }
    }
  }

  // 4. Edges that begin here join the line.
  for (std::size_t i = from; i < to; ++i) {
    for (const std::uint32_t e : {EdgeIn(vertices_[i]), EdgeOut(vertices_[i])}) {
      if (edges_[e].l == p) PINGMA_RETURN_IF_ERROR(Insert(e));
    }
  }

  // 5. A ring whose westernmost vertex is p: what lies just below its lower edge
  // here lies just outside it, so the ring just around it is that edge's ring when
  // the edge has its ring's inside above it, else the ring around that one. Rings
  // beginning here are taken from south to north, so that one beginning just below
  // another is placed first.
  starting_.clear();
  for (std::size_t i = from; i < to; ++i) {
    const Vertex& v = vertices_[i];
    if (v.k != rings_[v.ring].leftmost) continue;
    const std::uint32_t in = EdgeIn(v);
    const std::uint32_t out = EdgeOut(v);
    const std::uint32_t lower = line_.key_comp()(in, out) ? in : out;
    starting_.push_back(lower);
  }
  std::sort(starting_.begin(), starting_.end(), line_.key_comp());
  for (const std::uint32_t lower : starting_) {
    const auto it = where_[lower];
    std::int64_t around = -1;
    if (it != line_.begin()) {
      const std::uint32_t below = *std::prev(it);
      around = InteriorAbove(below) ? edges_[below].ring : around_[edges_[below].ring];
    }
    around_[edges_[lower].ring] = around;
  }
  return Status::Ok();
}

Status PolygonCheck::CheckNesting() const {
  for (std::uint32_t h = 1; h < rings_.size(); ++h) {
    if (around_[h] == 0) continue;
    if (around_[h] < 0) {
      return Status::Invalid(
          fmt::format("{}: hole lies outside its shell ({})", rings_[h].path, rings_[0].path));
    }
    return Status::Invalid(fmt::format("{}: hole lies inside another hole ({})", rings_[h].path,
                                       rings_[static_cast<std::size_t>(around_[h])].path));
  }
  if (around_[0] >= 0) {
    // Only reached when every hole lies in the shell, which then cannot lie in one.
    return Status::Internal(rings_[0].path + ": the shell lies inside one of its holes");
  }
  return Status::Ok();
}

Status PolygonCheck::Run() {
  std::size_t total = 0;
  for (const RingInput& ring : rings_) {
    base_.push_back(static_cast<std::uint32_t>(total));
    total += ring.size();
  }
  edges_.reserve(total);
  vertices_.reserve(total);
  for (std::uint32_t r = 0; r < rings_.size(); ++r) {
    const RingInput& ring = rings_[r];
    const std::size_t m = ring.size();
    for (std::uint32_t k = 0; k < m; ++k) {
      const GridPoint a = ring.vertices[k];
      const GridPoint b = ring.vertices[(k + 1) % m];
      const bool forward = a < b;
      edges_.push_back({forward ? a : b, forward ? b : a, r, k, forward});
      vertices_.push_back({a, r, k});
    }
  }
  where_.resize(total);
  around_.assign(rings_.size(), -1);
  std::sort(vertices_.begin(), vertices_.end(), [](const Vertex& a, const Vertex& b) {
    if (a.p != b.p) return a.p < b.p;
    return a.ring != b.ring ? a.ring < b.ring : a.k < b.k;
  });
  for (std::size_t i = 0; i < vertices_.size();) {
    std::size_t j = i + 1;
    while (j < vertices_.size() && vertices_[j].p == vertices_[i].p) ++j;
    PINGMA_RETURN_IF_ERROR(LookAtVertex(i, j));
    i = j;
  }
  return CheckNesting();
}

// The rings of one polygon: read, checked, and held.
Result<Polygon> ReadPolygon(const json& value, const std::string& path) {
  if (!value.is_array()) {
    return Status::Invalid(path + ": a polygon must be an array of rings, got " + Kind(value));
  }
  if (value.empty())
    return Status::Invalid(path + ": a polygon needs at least one ring, its shell");
  std::vector<RingInput> rings;
  rings.reserve(value.size());
  for (std::size_t r = 0; r < value.size(); ++r) {
    PINGMA_ASSIGN_OR_RETURN(auto ring, ReadRing(value[r], fmt::format("{}[{}]", path, r)));
    rings.push_back(std::move(ring));
  }
  PINGMA_RETURN_IF_ERROR(PolygonCheck(rings).Run());
  Polygon polygon;
  polygon.rings.reserve(rings.size());
  for (RingInput& ring : rings) {
    ring.vertices.push_back(ring.vertices.front());
    polygon.rings.push_back(std::move(ring.vertices));
  }
  for (const GridPoint& p : polygon.rings[0]) polygon.box.Add(p);
  return polygon;
}

}  // namespace

bool Area::Covers(double lon, double lat) const {
  const auto p = ToGridPoint(lon, lat);
  return p && Covers(*p);
}

bool Area::Covers(GridPoint p) const {
  for (const Polygon& polygon : polygons_) {
    if (!polygon.box.Contains(p)) continue;
    bool inside = false;
    for (const auto& ring : polygon.rings) {
      for (std::size_t k = 0; k + 1 < ring.size(); ++k) {
        switch (EdgeAgainstRay(ring[k], ring[k + 1], p)) {
          case EdgeToRay::kOnEdge:
            return true;
          case EdgeToRay::kCrosses:
            inside = !inside;
            break;
          case EdgeToRay::kApart:
            break;
        }
      }
    }
    if (inside) return true;
  }
  return false;
}

Result<Area> ParseArea(const json& geometry) {
  if (!geometry.is_object()) {
    return Status::Invalid("geometry: must be a GeoJSON geometry object, got " + Kind(geometry));
  }
  const auto type = geometry.find("type");
  if (type == geometry.end()) {
    return Status::Invalid("geometry.type: missing; must be \"Polygon\" or \"MultiPolygon\"");
  }
  if (!type->is_string()) {
    return Status::Invalid("geometry.type: must be \"Polygon\" or \"MultiPolygon\", got " +
                           Kind(*type));
  }
  const std::string& name = type->get_ref<const std::string&>();
  if (name != "Polygon" && name != "MultiPolygon") {
    return Status::Invalid("geometry.type: must be \"Polygon\" or \"MultiPolygon\", got " +
                           Quoted(*type));
  }
  const bool multi = name == "MultiPolygon";
  const auto coordinates = geometry.find("coordinates");
  if (coordinates == geometry.end()) return Status::Invalid("geometry.coordinates: missing");
  if (!coordinates->is_array()) {
    return Status::Invalid(
        fmt::format("geometry.coordinates: a {}'s coordinates must be an array "
                    "of {}, got {}",
                    name, multi ? "polygons" : "rings", Kind(*coordinates)));
  }

  // The size limit, before any position is read.
  std::size_t positions = 0;
  auto count = [&](const json& polygon) {
    if (!polygon.is_array()) return true;
    for (const json& ring : polygon) {
      if (ring.is_array()) positions += ring.size();
      if (positions > kMaxAreaPositions) return false;
    }
    return true;
  };
  bool within = true;
  if (multi) {
    for (const json& polygon : *coordinates) {
      if (!(within = count(polygon))) break;
    }
  } else {
    within = count(*coordinates);
  }
  if (!within) {
    return Status::TooLarge(
        fmt::format("geometry.coordinates: more than {} positions, the most an area may have",
                    kMaxAreaPositions));
  }

  Area area;
  if (multi) {
    if (coordinates->empty()) {
      return Status::Invalid("geometry.coordinates: a MultiPolygon needs at least one polygon");
    }
    for (std::size_t i = 0; i < coordinates->size(); ++i) {
      PINGMA_ASSIGN_OR_RETURN(
          auto polygon, ReadPolygon((*coordinates)[i], fmt::format("geometry.coordinates[{}]", i)));
      area.polygons_.push_back(std::move(polygon));
    }
  } else {
    PINGMA_ASSIGN_OR_RETURN(auto polygon, ReadPolygon(*coordinates, "geometry.coordinates"));
    area.polygons_.push_back(std::move(polygon));
  }
  for (const Polygon& polygon : area.polygons_) area.box_.Add(polygon.box);
  area.bbox_ = BoundingBox{FromGrid(area.box_.min_x), FromGrid(area.box_.min_y),
                           FromGrid(area.box_.max_x), FromGrid(area.box_.max_y)};
  return area;
}

}  // namespace pingma::registry::geo
