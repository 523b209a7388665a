"""Delivery areas (registry/src/geo/) against shapely (GEOS), a geometry library this
project did not write.

Run: /usr/bin/python3 area_shapely_test.py /path/to/area_probe [unittest args]
(Debian's python3-shapely loads only in /usr/bin/python3.)

Real-shaped areas in a city-sized box around 116.4E 39.9N: noisy concave blobs of
dozens to hundreds of vertices, some with holes; multipolygons, one of overlapping
parts; a jigsaw of tiles sharing their noisy edges, some with holes; an island
filling a lake (its ring is the lake's hole); hand-made holes touching a shell and
each other. 100,000 points: uniform in the box (on the 2^-32-degree grid), and on
vertices, on edges (diagonal ones included) and a grid step off them. Every vertex
and every point on an edge is a multiple of 2^-20 degree, exact in binary and in
decimal, so that both sides decide the same numbers. Each point's covering areas,
from AreaIndex::Covering and from AreaIndex::Covers asked area by area, must be
exactly the areas shapely's prepared `covers` names.

Then ParseArea against shapely's is_valid on 20,000 small random polygons on a coarse
lattice (crossings, touches, spikes, shared edges, nested and outer holes abound):
the same verdict, except where GEOS says that a polygon's interior is disconnected
(holes touching its shell or each other at two points): ParseArea accepts such a
polygon when nothing else is wrong, which is then judged with shapely's relate. And bad geometries given to the probe are refused with a
message saying what and where.

Without shapely the test is skipped (status 77), unless PINGMA_REQUIRE_SHAPELY is
set, when it fails.
"""

import json
import math
import os
import random
import subprocess
import sys
import unittest

try:
    from shapely.geometry import MultiPolygon, Point, Polygon
    from shapely.prepared import prep
    from shapely.validation import explain_validity
except ImportError as e:
    if os.environ.get("PINGMA_REQUIRE_SHAPELY"):
        sys.stderr.write("area_shapely_test: shapely is required (PINGMA_REQUIRE_SHAPELY is set) "
                         "but cannot be imported: %s\n" % e)
        sys.exit(1)
    print("area_shapely_test: SKIPPED: shapely is not installed (apt-get install "
          "python3-shapely, which tools/quickstart.sh installs): %s" % e)
    sys.exit(77)

PROBE = None  # set in __main__

G = 2.0 ** -20   # the grid of vertices and of points on edges
FINE = 2.0 ** -32  # the probe's grid: one step off an edge
BOX = (116.2, 39.75, 116.6, 40.05)  # lon0, lat0, lon1, lat1
POINTS = 100_000


def snap(v, step=G):
    return round(v / step) * step


def closed(ring):
    return [list(p) for p in ring] + [list(ring[0])]


def blob(rng, cx, cy, radius, n, lo=0.55, hi=1.35):
    """A noisy star: n vertices at increasing angles, radius times lo..hi, on G."""
    phase = rng.uniform(0, 2 * math.pi)
    pts = []
    for i in range(n):
        a = phase + 2 * math.pi * (i + rng.uniform(0.1, 0.6)) / n
        r = radius * rng.uniform(lo, hi)
        pts.append((snap(cx + r * math.cos(a)), snap(cy + r * math.sin(a))))
    out = []
    for p in pts:  # two vertices snapped together make one
        if not out or out[-1] != p:
            out.append(p)
    return out


def probe(lines, check=True):
    text = "".join(json.dumps(line) + "\n" for line in lines)
    r = subprocess.run([PROBE], input=text, capture_output=True, text=True, timeout=600)
    if check and r.returncode != 0:
        raise AssertionError("area_probe exited %d: %s %s" % (r.returncode, r.stdout[-2000:],
                                                              r.stderr[-2000:]))
    return r.returncode, [json.loads(line) for line in r.stdout.splitlines()]


class Areas:
    """The areas as GeoJSON for the probe and as shapely geometries for the oracle."""

    def __init__(self):
        self.ids = []
        self.geometries = []  # GeoJSON
        self.oracles = []     # a list of prepared shapely geometries; any covers = covered
        self.bounds = []
        self.rings = []       # every ring, for points on vertices and edges

    def add(self, area_id, polygons, union_of_parts=False):
        """polygons: [[shell, hole, ...], ...], rings as lists of (lon, lat), not closed."""
        shapes = [Polygon(p[0], p[1:]) for p in polygons]
        for s in shapes:
            assert s.is_valid, "%s: %s" % (area_id, explain_validity(s))
        if len(polygons) == 1:
            geometry = {"type": "Polygon", "coordinates": [closed(r) for r in polygons[0]]}
            oracle = [prep(shapes[0])]
        else:
            geometry = {"type": "MultiPolygon",
                        "coordinates": [[closed(r) for r in p] for p in polygons]}
            if union_of_parts:
                oracle = [prep(s) for s in shapes]  # overlapping parts: covered by any
            else:
                multi = MultiPolygon(shapes)
                assert multi.is_valid, "%s: %s" % (area_id, explain_validity(multi))
                oracle = [prep(multi)]
        self.ids.append(area_id)
        self.geometries.append(geometry)
        self.oracles.append(oracle)
        xs = [x for p in polygons for x, _ in p[0]]
        ys = [y for p in polygons for _, y in p[0]]
        self.bounds.append((min(xs), min(ys), max(xs), max(ys)))
        for p in polygons:
            self.rings.extend(p)

    def line(self):
        return {"areas": [{"id": i, "geometry": g} for i, g in zip(self.ids, self.geometries)]}


def make_areas(rng):
    areas = Areas()
    x0, y0, x1, y1 = BOX

    # Blobs, a third of them with holes, placed where they overlap no earlier one.
    placed = []
    while len(placed) < 16:
        r = rng.uniform(0.01, 0.04)
        cx, cy = rng.uniform(x0 + 0.05, x1 - 0.05), rng.uniform(y0 + 0.05, y1 - 0.05)
        shell = blob(rng, cx, cy, r, rng.randint(40, 300))
        rings = [shell]
        if len(placed) % 3 == 0:
            for k in range(rng.randint(1, 3)):
                hx = cx + (k - 1) * r * 0.3
                rings.append(blob(rng, hx, cy, r * 0.1, rng.randint(12, 60)))
        poly = Polygon(rings[0], rings[1:])
        if not poly.is_valid or any(poly.intersects(other) for other in placed):
            continue
        placed.append(poly)
        areas.add("blob-%d" % len(placed), [rings])

    # Multipolygons of separate parts (overlapping the blobs is fine: different areas).
    for m in range(3):
        parts = []
        while len(parts) < rng.randint(2, 4):
            cx, cy = rng.uniform(x0 + 0.03, x1 - 0.03), rng.uniform(y0 + 0.03, y1 - 0.03)
            part = [blob(rng, cx, cy, rng.uniform(0.008, 0.02), rng.randint(30, 120))]
            if all(not Polygon(part[0]).intersects(Polygon(p[0])) for p in parts):
                parts.append(part)
        areas.add("multi-%d" % m, parts)
    # ... and one whose parts overlap: the area is their union.
    cx, cy = 116.3, 39.8
    areas.add("overlapping", [[blob(rng, cx, cy, 0.015, 80)],
                              [blob(rng, cx + 0.012, cy, 0.015, 80)]], union_of_parts=True)

    # A jigsaw: 4 x 3 tiles whose sides are shared noisy polylines on a 2^-13 grid
    # (so diagonal edges hold many points of the 2^-20 grid).
    coarse = 2.0 ** -13
    tx0, ty0, w, h, cols, rows = 116.42, 39.86, 0.04, 0.04, 4, 3

    def side(a, b, k, horizontal):
        # Corner to corner, offsets across the side by up to 20% of a tile, none at the
        # corners (so sides meeting at a corner stay in separate wedges).
        pts = [a]
        for i in range(1, k):
            t = i / k
            off = rng.uniform(-0.2, 0.2) * math.sin(math.pi * t) * (h if horizontal else w)
            x = a[0] + t * (b[0] - a[0]) + (0 if horizontal else off)
            y = a[1] + t * (b[1] - a[1]) + (off if horizontal else 0)
            pts.append((snap(x, coarse), snap(y, coarse)))
        pts.append(b)
        return pts

    corner = {(i, j): (snap(tx0 + i * w, coarse), snap(ty0 + j * h, coarse))
              for i in range(cols + 1) for j in range(rows + 1)}
    hsides = {(i, j): side(corner[i, j], corner[i + 1, j], rng.randint(4, 14), True)
              for i in range(cols) for j in range(rows + 1)}
    vsides = {(i, j): side(corner[i, j], corner[i, j + 1], rng.randint(4, 14), False)
              for i in range(cols + 1) for j in range(rows)}
    for i in range(cols):
        for j in range(rows):
            ring = (hsides[i, j][:-1] + vsides[i + 1, j][:-1] + hsides[i, j + 1][::-1][:-1] +
                    vsides[i, j][::-1][:-1])
            rings = [ring]
            if (i + j) % 3 == 0:
                cx, cy = corner[i, j][0] + w / 2, corner[i, j][1] + h / 2
                rings.append([(snap(x, coarse), snap(y, coarse)) for x, y in
                              [(cx - w / 8, cy - h / 8), (cx + w / 8, cy - h / 10),
                               (cx + w / 10, cy + h / 8), (cx - w / 9, cy + h / 9)]])
            areas.add("tile-%d-%d" % (i, j), [rings])

    # A lake with an island that fills it: the island's shell is the lake's hole.
    lake_shell = blob(rng, 116.25, 40.0, 0.03, 150, 0.8, 1.2)
    lake_hole = blob(rng, 116.25, 40.0, 0.012, 70, 0.7, 1.1)
    areas.add("lake", [[lake_shell, lake_hole]])
    areas.add("island", [[lake_hole[::-1]]])

    # Hand-made touches: a hole touching its shell at a vertex and along nothing else,
    # and two holes touching each other at a point.
    s = 1 / 64
    bx, by = snap(116.52), snap(39.78)
    areas.add("touching-holes", [[
        [(bx, by), (bx + 4 * s, by), (bx + 4 * s, by + 4 * s), (bx, by + 4 * s)],
        [(bx, by + 2 * s), (bx + s, by + 1.5 * s), (bx + s, by + 2.5 * s)],          # at the shell
        [(bx + 2 * s, by + s), (bx + 3 * s, by + s), (bx + 2.5 * s, by + 2 * s)],
        [(bx + 2.5 * s, by + 2 * s), (bx + 3 * s, by + 3 * s), (bx + 2 * s, by + 3 * s)],
    ]])
    return areas


def edge_points(rng, ring, per_edge):
    """Points exactly on the ring's edges (multiples of G), the vertices excluded, and
    how many of them lie on diagonal edges."""
    out = []
    diagonal = 0
    n = len(ring)
    for k in range(n):
        (ax, ay), (bx, by) = ring[k], ring[(k + 1) % n]
        dx, dy = round((bx - ax) / G), round((by - ay) / G)
        g = math.gcd(abs(dx), abs(dy))
        if g < 2:
            continue
        for _ in range(per_edge):
            t = rng.randint(1, g - 1)
            out.append((ax + t * (dx // g) * G, ay + t * (dy // g) * G))
            diagonal += dx != 0 and dy != 0
    return out, diagonal


def make_points(rng, areas):
    vertices = [p for ring in areas.rings for p in ring]
    on_edges = []
    diagonal = 0
    for ring in areas.rings:
        points, on_diagonals = edge_points(rng, ring, 6)
        on_edges += points
        diagonal += on_diagonals
    special = rng.sample(vertices, min(len(vertices), 10_000))
    special += rng.sample(on_edges, min(len(on_edges), 12_000))
    off = []
    for x, y in rng.sample(special, 8_000):
        dx, dy = rng.choice([(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1)])
        off.append((x + dx * FINE, y + dy * FINE))
    x0, y0, x1, y1 = BOX
    uniform = [(snap(rng.uniform(x0, x1), FINE), snap(rng.uniform(y0, y1), FINE))
               for _ in range(POINTS - len(special) - len(off))]
    points = special + off + uniform
    rng.shuffle(points)
    return points, len(vertices), len(on_edges), diagonal


class Oracle:
    """shapely's answer for a point: the ids whose geometry covers it, in order."""

    def __init__(self, areas, cells=32):
        self.areas = areas
        x0, y0, x1, y1 = BOX
        self.cells = cells
        self.grid = {}
        for i, (bx0, by0, bx1, by1) in enumerate(areas.bounds):
            for cx in range(self.cell(bx0, x0, x1), self.cell(bx1, x0, x1) + 1):
                for cy in range(self.cell(by0, y0, y1), self.cell(by1, y0, y1) + 1):
                    self.grid.setdefault((cx, cy), []).append(i)

    def cell(self, v, lo, hi):
        return max(0, min(self.cells - 1, int((v - lo) / (hi - lo) * self.cells)))

    def covering(self, x, y):
        x0, y0, x1, y1 = BOX
        found = []
        point = Point(x, y)
        for i in self.grid.get((self.cell(x, x0, x1), self.cell(y, y0, y1)), []):
            bx0, by0, bx1, by1 = self.areas.bounds[i]
            if bx0 <= x <= bx1 and by0 <= y <= by1 and any(o.covers(point)
                                                           for o in self.areas.oracles[i]):
                found.append(i)
        return [self.areas.ids[i] for i in sorted(found)]


class AreasAgainstShapely(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rng = random.Random(20260807)
        cls.areas = make_areas(rng)
        cls.points, cls.n_vertices, cls.n_on_edges, cls.n_diagonal = make_points(rng, cls.areas)

    def test_every_point_covered_as_shapely_says(self):
        areas, points = self.areas, self.points
        self.assertEqual(len(points), POINTS)
        self.assertGreater(self.n_diagonal, 1000, "too few points on diagonal edges")
        _, out = probe([areas.line(), {"points": [list(p) for p in points], "each": True}])
        self.assertEqual(out[0], {"areas": len(areas.ids)})
        covering, covers = out[1]["covering"], out[1]["covers"]
        self.assertEqual(len(covering), len(points))
        oracle = Oracle(areas)
        wrong = []
        counts = {0: 0, 1: 0, 2: 0}
        for k, (x, y) in enumerate(points):
            want = oracle.covering(x, y)
            counts[min(len(want), 2)] += 1
            if covering[k] != want or covers[k] != want:
                wrong.append((x, y, covering[k], covers[k], want))
        sys.stderr.write("area_shapely_test: %d areas (%d rings, %d vertices), %d points: %d in "
                         "none, %d in one, %d in two or more; %d points on edges (%d diagonal) "
                         "to choose from\n" % (len(areas.ids), len(areas.rings), self.n_vertices,
                                              len(points), counts[0], counts[1], counts[2],
                                              self.n_on_edges, self.n_diagonal))
        if wrong:
            lines = ["  [%r, %r]: Covering %s, Covers %s, shapely %s" % w for w in wrong[:8]]
            self.fail("%d of %d points answered unlike shapely, the first:\n%s"
                      % (len(wrong), len(points), "\n".join(lines)))
        # Both kinds of answers occur, and shared edges are covered twice.
        self.assertGreater(counts[1], POINTS // 20)
        self.assertGreater(counts[2], 1000)

    def test_points_off_the_grid_and_out_of_range(self):
        # The probe rounds a point to the 2^-32-degree grid; these points lie far from
        # any edge, so rounding cannot change the answer.
        areas = self.areas
        rng = random.Random(5)
        x0, y0, x1, y1 = BOX
        points = [(rng.uniform(x0, x1), rng.uniform(y0, y1)) for _ in range(2000)]
        oracle = Oracle(areas)
        _, out = probe([areas.line(), {"points": [list(p) for p in points]},
                        {"points": [[200, 39.9], [116.4, -91], [-180.5, 0]]}])
        for (x, y), got in zip(points, out[1]["covering"]):
            self.assertEqual(got, oracle.covering(x, y), "[%r, %r]" % (x, y))
        self.assertEqual(out[2]["covering"], [[], [], []])


def rings_meet_only_at_points(rings):
    """ParseArea's rules for the rings of one polygon, in shapely's terms: each ring
    a valid polygon by itself (simple, with an area); each hole inside the shell,
    touching its boundary at points only; holes apart but for points."""
    polys = [Polygon(r) for r in rings]
    if not all(p.is_valid for p in polys):
        return False
    for i, hole in enumerate(polys[1:], start=1):
        m = hole.relate(polys[0])  # DE-9IM: II IB IE BI BB BE EI EB EE
        if not (m[0] == "2" and m[1] == "F" and m[2] == "F" and m[4] in "F0" and m[5] == "F"):
            return False
        for other in polys[1:i]:
            m = hole.relate(other)
            if not (m[0] == "F" and m[1] == "F" and m[3] == "F" and m[4] in "F0"):
                return False
    return True


def lattice_ring(rng, n, lo, hi):
    """n random points of a lattice of 1/8 degree, in the order drawn: often crossing."""
    return [(116 + rng.randint(lo, hi) / 8, 39.5 + rng.randint(lo, hi) / 8) for _ in range(n)]


def lattice_star(rng, n, x0, y0, size):
    """n distinct random points of a size x size patch of the lattice at (x0, y0), in
    order of angle around their mean: mostly simple, often touching what is near."""
    cells = rng.sample([(i, j) for i in range(size + 1) for j in range(size + 1)], n)
    mx = sum(i for i, _ in cells) / n
    my = sum(j for _, j in cells) / n
    cells.sort(key=lambda c: math.atan2(c[1] - my, c[0] - mx))
    return [(116 + (x0 + i) / 8, 39.5 + (y0 + j) / 8) for i, j in cells]


def random_polygon(rng):
    if rng.random() < 0.5:
        shell = lattice_ring(rng, rng.randint(3, 7), 0, 6)
        holes = [lattice_ring(rng, rng.randint(3, 5), rng.choice([0, 1]), rng.choice([5, 6]))
                 for _ in range(rng.choice([0, 0, 1, 1, 2]))]
    else:
        shell = lattice_star(rng, rng.randint(8, 16), 0, 0, 8)
        holes = []
        for _ in range(rng.randint(1, 3)):
            size = rng.choice([1, 1, 2])
            holes.append(lattice_star(rng, rng.randint(3, min(6, (size + 1) ** 2)),
                                      rng.randint(0, 8 - size), rng.randint(0, 8 - size), size))
    return [shell] + holes


class ValidityAgainstShapely(unittest.TestCase):
    def test_the_same_verdict_as_is_valid(self):
        rng = random.Random(77)
        polygons = [random_polygon(rng) for _ in range(20_000)]
        _, out = probe([{"check": [{"type": "Polygon", "coordinates": [closed(r) for r in p]}
                                   for p in polygons]}])
        verdicts = out[0]["check"]
        wrong = []
        tally = {"valid": 0, "valid with holes": 0, "invalid": 0, "disconnected": 0}
        for rings, ours in zip(polygons, verdicts):
            try:
                shape = Polygon(rings[0], rings[1:])
                reason = explain_validity(shape)
                valid = shape.is_valid
            except ValueError as e:  # shapely cannot even make it
                reason, valid = str(e), False
            if valid:
                tally["valid"] += 1
                tally["valid with holes"] += len(rings) > 1
                agree = ours is None
            elif reason.startswith("Interior is disconnected"):
                # GEOS says no more; ParseArea accepts a disconnected interior, and
                # refuses what else is wrong.
                tally["disconnected"] += 1
                agree = (ours is None) == rings_meet_only_at_points(rings)
            else:
                tally["invalid"] += 1
                agree = ours is not None
            if not agree:
                wrong.append((rings, reason, ours))
        sys.stderr.write("area_shapely_test: validity of %d random polygons: %s\n"
                         % (len(polygons), tally))
        if wrong:
            lines = ["  %s: shapely %r, ParseArea %r" % w for w in wrong[:8]]
            self.fail("%d verdicts unlike shapely's, the first:\n%s" % (len(wrong), "\n".join(lines)))
        self.assertGreater(tally["valid with holes"], 800)
        self.assertGreater(tally["invalid"], 1000)
        self.assertGreater(tally["disconnected"], 100)

    def test_a_bad_area_is_refused_with_what_and_where(self):
        square = [[116.0, 39.0], [116.5, 39.0], [116.5, 39.5], [116.0, 39.5], [116.0, 39.0]]
        cases = [
            ({"type": "Polygon", "coordinates": [square[:4]]},
             "geometry.coordinates[0]: ring is not closed (first [116, 39], last [116, 39.5])"),
            ({"type": "Polygon", "coordinates": [[[116, 39], [116.5, 39.5], [116.5, 39],
                                                  [116, 39.5], [116, 39]]]},
             "geometry.coordinates[0]: ring crosses itself: edge 0 and edge 2 meet near "
             "[116.25, 39.25]"),
            ({"type": "Polygon", "coordinates": [[[116, 39], [190, 39], [116, 39.5], [116, 39]]]},
             "geometry.coordinates[0][1][0]: longitude 190 out of range -180..180"),
            ({"type": "MultiPolygon", "coordinates": [[square], [square, [
                [117, 39], [117.2, 39], [117.1, 39.2], [117, 39]]]]},
             "geometry.coordinates[1][1]: hole lies outside its shell (geometry.coordinates[1][0])"),
            ({"type": "Polygon", "coordinates": [square, [[116.25, 39.25], [116.75, 39.25],
                                                          [116.25, 39.4], [116.25, 39.25]]]},
             "geometry.coordinates[1]: hole crosses the shell (geometry.coordinates[0])"),
            ({"type": "Polygon", "coordinates": [square[:3]]},
             "geometry.coordinates[0]: a ring needs at least 4 positions"),
            ({"type": "LineString", "coordinates": square}, "geometry.type: must be"),
        ]
        for geometry, message in cases:
            with self.subTest(message=message):
                good = {"id": "good", "geometry": {"type": "Polygon", "coordinates": [square]}}
                status, out = probe([{"areas": [good, {"id": "bad", "geometry": geometry}]},
                                     {"points": [[116.25, 39.25]]}], check=False)
                self.assertEqual(status, 1, out)
                self.assertEqual(len(out), 1, out)  # nothing after the refusal
                self.assertEqual(out[0]["error"]["id"], "bad")
                self.assertEqual(out[0]["error"]["code"], "INVALID")
                self.assertTrue(out[0]["error"]["message"].startswith(message), out)
                if geometry["type"] in ("Polygon", "MultiPolygon") and "closed" not in message \
                        and "positions" not in message and "longitude" not in message:
                    polys = ([geometry["coordinates"]] if geometry["type"] == "Polygon"
                             else geometry["coordinates"])
                    shapes = [Polygon(p[0], p[1:]) for p in polys]
                    self.assertFalse(all(s.is_valid for s in shapes), "shapely finds it valid")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: area_shapely_test.py /path/to/area_probe [unittest args]")
    PROBE = os.path.abspath(sys.argv.pop(1))
    unittest.main()
