// The console map's arithmetic, pure functions without the page: Web Mercator,
// the published WGS-84 → GCJ-02 shift that Chinese web map tiles are drawn in,
// distances, a scale bar's length and the slippy-map tiles in view. Loaded before
// the map (map.js), as `pingmaGeo`.
"use strict";

window.pingmaGeo = (function () {
  const EARTH_RADIUS_M = 6378137; // WGS-84's semi-major axis, Web Mercator's sphere
  const WORLD_M = 2 * Math.PI * EARTH_RADIUS_M; // the equator, one world unit wide
  const MAX_LAT = 85.05112878; // where Web Mercator's square ends

  // [x, y] in world units (0..1, x east, y south) of a WGS-84 {lat, lon}.
  function project(lat, lon) {
    const clamped = Math.max(-MAX_LAT, Math.min(MAX_LAT, lat));
    const s = Math.sin((clamped * Math.PI) / 180);
    const x = (lon + 180) / 360;
    const y = 0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI);
    return [x, y];
  }

  // {lat, lon} of world units [x, y].
  function unproject(x, y) {
    const lon = x * 360 - 180;
    const lat = (360 / Math.PI) * Math.atan(Math.exp((0.5 - y) * 2 * Math.PI)) - 90;
    return { lat: lat, lon: lon };
  }

  // Metres on the ground per world unit at a latitude (Mercator stretches by 1/cos).
  function metresPerUnit(lat) {
    return WORLD_M * Math.cos((lat * Math.PI) / 180);
  }

  // ---- GCJ-02 (国测局坐标) --------------------------------------------------------
  // The transformation as published with the open implementations (krasovsky 1940
  // ellipsoid, the offset polynomials below); within China only. pingma stores and
  // draws WGS-84; the console shifts what it draws onto GCJ-02 tiles, nothing else.
  const KRASOVSKY_A = 6378245.0;
  const KRASOVSKY_EE = 0.00669342162296594323;

  function outOfChina(lat, lon) {
    return lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271;
  }
  function shiftLat(x, y) {
    let r = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    r += ((20 * Math.sin(6 * x * Math.PI) + 20 * Math.sin(2 * x * Math.PI)) * 2) / 3;
    r += ((20 * Math.sin(y * Math.PI) + 40 * Math.sin((y / 3) * Math.PI)) * 2) / 3;
    r += ((160 * Math.sin((y / 12) * Math.PI) + 320 * Math.sin((y * Math.PI) / 30)) * 2) / 3;
    return r;
  }
  function shiftLon(x, y) {
    let r = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    r += ((20 * Math.sin(6 * x * Math.PI) + 20 * Math.sin(2 * x * Math.PI)) * 2) / 3;
    r += ((20 * Math.sin(x * Math.PI) + 40 * Math.sin((x / 3) * Math.PI)) * 2) / 3;
    r += ((150 * Math.sin((x / 12) * Math.PI) + 300 * Math.sin((x / 30) * Math.PI)) * 2) / 3;
    return r;
  }
  // {lat, lon} in GCJ-02 of a WGS-84 point; outside China unchanged.
  function wgs84ToGcj02(lat, lon) {
    if (outOfChina(lat, lon)) return { lat: lat, lon: lon };
    let dLat = shiftLat(lon - 105, lat - 35);
    let dLon = shiftLon(lon - 105, lat - 35);
    const radLat = (lat / 180) * Math.PI;
    let magic = Math.sin(radLat);
    magic = 1 - KRASOVSKY_EE * magic * magic;
    const sqrtMagic = Math.sqrt(magic);
    dLat = (dLat * 180) / (((KRASOVSKY_A * (1 - KRASOVSKY_EE)) / (magic * sqrtMagic)) * Math.PI);
    dLon = (dLon * 180) / ((KRASOVSKY_A / sqrtMagic) * Math.cos(radLat) * Math.PI);
    return { lat: lat + dLat, lon: lon + dLon };
  }

  // ---- distances and the scale bar --------------------------------------------

  // Great-circle distance in metres (haversine on the WGS-84 sphere).
  function distanceM(a, b) {
    const rad = Math.PI / 180;
    const dLat = (b.lat - a.lat) * rad;
    const dLon = (b.lon - a.lon) * rad;
    const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
    return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
  }

  // The longest round length (1, 2 or 5 × 10^n metres) that fits in `maxPx` pixels
  // at `metresPerPx`: {metres, px, zh, en}.
  function scaleBar(metresPerPx, maxPx) {
    const most = metresPerPx * maxPx;
    let step = Math.pow(10, Math.floor(Math.log10(most)));
    for (const f of [5, 2, 1]) {
      if (f * step <= most) {
        step *= f;
        break;
      }
    }
    const km = step >= 1000;
    const n = km ? step / 1000 : step;
    return {
      metres: step,
      px: step / metresPerPx,
      zh: n + (km ? " 公里" : " 米"),
      en: n + (km ? " km" : " m"),
    };
  }

  // ["620 米", "620 m"] or ["1.25 公里", "1.25 km"] for a distance in metres.
  function distanceWords(m) {
    if (!(m >= 0)) return ["—", "—"];
    if (m < 1000) return [Math.round(m) + " 米", Math.round(m) + " m"];
    const n = (m / 1000).toFixed(m < 10000 ? 2 : 1);
    return [n + " 公里", n + " km"];
  }
  // "620 米 m" or "1.25 公里 km".
  function distanceText(m) {
    const [zh, en] = distanceWords(m);
    return m >= 0 ? zh + " " + en.split(" ")[1] : "—";
  }

  // ---- tiles ------------------------------------------------------------------

  // The tiles {z, x, y, url} covering world units [x0, x1] × [y0, y1] at zoom z,
  // from a template with {z}, {x} and {y}; x wraps around the world, y does not.
  function tilesInView(template, z, x0, y0, x1, y1) {
    const n = Math.pow(2, z);
    const out = [];
    const tx0 = Math.floor(x0 * n);
    const tx1 = Math.floor(x1 * n);
    const ty0 = Math.max(0, Math.floor(y0 * n));
    const ty1 = Math.min(n - 1, Math.floor(y1 * n));
    if (tx1 - tx0 > 64 || ty1 - ty0 > 64) return out; // never thousands of images
    for (let ty = ty0; ty <= ty1; ty++) {
      for (let tx = tx0; tx <= tx1; tx++) {
        const wx = ((tx % n) + n) % n;
        out.push({
          z: z, x: tx, y: ty,
          url: template.replace("{z}", String(z)).replace("{x}", String(wx)).replace("{y}", String(ty)),
        });
      }
    }
    return out;
  }

  // The largest polygon (by its outer ring's box) of a GeoJSON Polygon or
  // MultiPolygon, for a label: its rings [[[lon, lat], ...], ...], or null.
  function largestPolygon(geometry) {
    if (!geometry || !Array.isArray(geometry.coordinates)) return null;
    const polygons = geometry.type === "MultiPolygon" ? geometry.coordinates : [geometry.coordinates];
    let best = null;
    let bestArea = -1;
    for (const polygon of polygons) {
      const ring = polygon && polygon[0];
      if (!Array.isArray(ring) || !ring.length) continue;
      const lons = ring.map((p) => p[0]);
      const lats = ring.map((p) => p[1]);
      const area = (Math.max(...lons) - Math.min(...lons)) * (Math.max(...lats) - Math.min(...lats));
      if (area > bestArea) {
        bestArea = area;
        best = polygon;
      }
    }
    return best;
  }

  // The area-weighted centroid of a ring [[x, y], ...] (its mean for a degenerate one).
  function ringCentroid(ring) {
    let a = 0;
    let cx = 0;
    let cy = 0;
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const f = ring[j][0] * ring[i][1] - ring[i][0] * ring[j][1];
      a += f;
      cx += (ring[j][0] + ring[i][0]) * f;
      cy += (ring[j][1] + ring[i][1]) * f;
    }
    if (Math.abs(a) < 1e-18) {
      const n = ring.length || 1;
      return [ring.reduce((s, p) => s + p[0], 0) / n, ring.reduce((s, p) => s + p[1], 0) / n];
    }
    return [cx / (3 * a), cy / (3 * a)];
  }

  // Where to write a polygon's name: on the horizontal line through its centroid,
  // the middle of the widest stretch that is inside it (even-odd, so never in a
  // hole). `rings`: the polygon's rings as [[x, y], ...]; [x, y] or null.
  function labelPoint(rings) {
    const outer = rings && rings[0];
    if (!Array.isArray(outer) || outer.length < 3) return null;
    const [, cy] = ringCentroid(outer);
    const xs = [];
    for (const ring of rings) {
      for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
        const [x0, y0] = ring[j];
        const [x1, y1] = ring[i];
        if ((y0 > cy) !== (y1 > cy)) xs.push(x0 + ((cy - y0) * (x1 - x0)) / (y1 - y0));
      }
    }
    xs.sort((a, b) => a - b);
    let best = null;
    for (let k = 0; k + 1 < xs.length; k += 2) {
      if (!best || xs[k + 1] - xs[k] > best[1] - best[0]) best = [xs[k], xs[k + 1]];
    }
    return best ? [(best[0] + best[1]) / 2, cy] : ringCentroid(outer);
  }

  return {
    WORLD_M: WORLD_M,
    project: project,
    unproject: unproject,
    metresPerUnit: metresPerUnit,
    wgs84ToGcj02: wgs84ToGcj02,
    distanceM: distanceM,
    scaleBar: scaleBar,
    distanceWords: distanceWords,
    distanceText: distanceText,
    tilesInView: tilesInView,
    largestPolygon: largestPolygon,
    ringCentroid: ringCentroid,
    labelPoint: labelPoint,
  };
})();
