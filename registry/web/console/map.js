// The console's map (地图): the delivery areas, every vehicle's last position
// (refreshed every 30 s), a chosen vehicle's track over a day with the points
// outside its areas, and the day's alerts — drawn from the coordinates in SVG,
// Web Mercator, north up, with no tiles unless the site names its own tile server
// (serve --map-tiles; /console/map.json says which, and in which datum).
// console.js opens it with what it shares (`open(ctx, vehicle)`) and closes it.
// Every text from the network goes into the page as text, never as markup.
"use strict";

window.pingmaMap = (function () {
  const G = window.pingmaGeo;
  const { el, en, clear } = window.pingma;
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);

  const STALE_S = 15 * 60; // a last position older than this is stale (no_position_minutes)
  const REFRESH_MS = 30000;
  const PAGE = 1000;
  const MIN_ZOOM = 2;
  const MAX_ZOOM = 20;
  const TILE = 256;

  // The alerts' kinds: Chinese, English, the marker's letter.
  const KINDS = {
    zone_exit: ["驶出配送区域", "Left its delivery areas", "!"],
    handover_away: ["交接地点远离用户", "Handover away from the customer", "远"],
    no_position: ["交接时车辆无定位", "No vehicle position at the handover", "?"],
  };
  // One colour a company, by its place in the list (their names say which is which).
  const PALETTE = ["#0b57d0", "#137333", "#9a5b00", "#7c3aed", "#b3261e", "#0e7490", "#a21caf", "#4d7c0f"];

  let ctx = null; // what console.js shares: api, explain, failInto, when, badge, table, emptyNote, role
  let config = null; // {tiles, datum, origin}
  let built = false;
  let timer = null;
  let generation = 0; // a newer load makes an older one's answer moot

  const data = {
    companies: [], // [{id, name}] for a regulator's filter
    areas: [], // as the API gives them, with .rings: [[[x, y]...]...] per polygon
    vehicles: [], // latest positions, with .w = [x, y]
    vehiclesLoadedAt: 0, // Date.now() when age_s was measured
    alerts: [], // the day's, with .w and, for handover_away, .cw (the customer)
    alertsMore: false, // more alerts that day than were read
    track: null, // {vehicle, day, points: [{..., w}], done}
    selected: null, // vehicle id
  };
  const view = { cx: 0.5, cy: 0.5, scale: TILE * 4, width: 800, height: 560, fitted: false };
  let pending = 0; // requestAnimationFrame id

  // ---- helpers -------------------------------------------------------------------

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) e.setAttribute(k, String(v));
    }
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function inlineEn(text) {
    return el("span", { lang: "en", class: "inline-en", text: text });
  }
  function companyColour(id) {
    const i = data.companies.findIndex((c) => c.id === id);
    if (i >= 0) return PALETTE[i % PALETTE.length];
    let h = 0;
    for (const ch of String(id)) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
    return PALETTE[h % PALETTE.length];
  }
  // World units of a WGS-84 point as drawn: shifted onto GCJ-02 for such tiles.
  function world(lat, lon) {
    if (config && config.datum === "gcj02") {
      const g = G.wgs84ToGcj02(lat, lon);
      return G.project(g.lat, g.lon);
    }
    return G.project(lat, lon);
  }
  function screen(w) {
    return [(w[0] - view.cx) * view.scale + view.width / 2, (w[1] - view.cy) * view.scale + view.height / 2];
  }
  function r1(v) {
    return Math.round(v * 10) / 10;
  }
  function hhmm(iso) {
    const d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso || "—");
    return d.toLocaleTimeString("zh-CN", { hour12: false, hour: "2-digit", minute: "2-digit" });
  }
  // "3 分钟前" and "3 min ago" for seconds.
  function ageWords(s) {
    s = Math.max(0, Math.round(s));
    if (s < 60) return [s + " 秒前", s + " s ago"];
    const m = Math.floor(s / 60);
    if (m < 60) return [m + " 分钟前", m + " min ago"];
    const h = Math.floor(m / 60);
    if (h < 48) return [h + " 小时前", h + " h ago"];
    const d = Math.floor(h / 24);
    return [d + " 天前", d + " days ago"];
  }
  // Minutes as said: whole, or to a tenth ("5", "5.5").
  function minutesText(m) {
    const n = Number(m);
    return Number.isFinite(n) ? String(Math.round(n * 10) / 10) : "?";
  }
  function ageOf(v) {
    return (v.age_s || 0) + (Date.now() - data.vehiclesLoadedAt) / 1000;
  }
  function isStale(v) {
    return ageOf(v) > STALE_S;
  }
  function plateOf(id) {
    const v = data.vehicles.find((x) => x.vehicle === id);
    return v && v.plate ? v.plate : null;
  }
  function isoDay(d) {
    return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0");
  }
  // The day chosen, as the browser's local day: {from, to} RFC 3339.
  function dayRange() {
    const day = $("map-day").value || isoDay(new Date());
    const [y, m, d] = day.split("-").map((n) => parseInt(n, 10));
    const start = new Date(y, m - 1, d);
    const end = new Date(y, m - 1, d + 1);
    return { day: day, from: start.toISOString(), to: new Date(end.getTime() - 1).toISOString() };
  }
  function companyQuery() {
    const c = ctx && ctx.role !== "company" ? $("map-company").value : "";
    return c ? "&company_id=" + encodeURIComponent(c) : "";
  }

  // Every page of a list: `key` names the list in each answer.
  async function allPages(path, key, most) {
    let out = [];
    let cursor = null;
    for (;;) {
      const page = await ctx.api("GET", path + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
      out = out.concat((page && page[key]) || []);
      cursor = page && page.next_cursor ? page.next_cursor : null;
      if (!cursor || (most && out.length >= most)) return { list: out, more: !!cursor };
    }
  }

  // ---- the page's parts ------------------------------------------------------------

  function build() {
    if (built) return;
    built = true;
    const box = $("map-view");
    const s = svg("svg", { id: "map-svg", class: "map-svg", role: "img", "aria-labelledby": "map-svg-title map-svg-desc" });
    s.appendChild(svg("title", { id: "map-svg-title" }, "送气车辆地图 Delivery map"));
    s.appendChild(svg("desc", { id: "map-svg-desc" }, ""));
    for (const layer of ["tiles", "areas", "area-labels", "track", "lines", "alerts", "vehicles", "chrome"]) {
      s.appendChild(svg("g", { class: "layer-" + layer, id: "map-layer-" + layer }));
    }
    box.appendChild(s);
    wireGestures(box, s);
    $("map-zoom-in").addEventListener("click", () => zoomBy(2));
    $("map-zoom-out").addEventListener("click", () => zoomBy(0.5));
    $("map-fit").addEventListener("click", () => fit(true));
    $("map-form").addEventListener("submit", (e) => {
      e.preventDefault();
      reload(true);
    });
    $("map-company").addEventListener("change", () => reload(true));
    $("map-day").addEventListener("change", () => {
      loadAlerts();
      if (data.selected) loadTrack(data.selected);
    });
    $("map-track-close").addEventListener("click", () => selectVehicle(null));
    window.addEventListener("resize", () => schedule());
  }

  async function loadConfig() {
    if (config) return;
    config = { tiles: null, datum: "wgs84", origin: null };
    try {
      const r = await fetch("map.json", { cache: "no-store" });
      if (r.ok) {
        const c = await r.json();
        if (c && typeof c.tiles === "string" && /^https?:/.test(c.tiles)) {
          config.tiles = c.tiles;
          config.origin = c.tiles.replace(/^(https?:\/\/[^/]+).*$/, "$1");
        }
        if (c && c.datum === "gcj02") config.datum = "gcj02";
      }
    } catch (e) {
      // No base map: the coordinates alone.
    }
    legend();
  }

  async function loadCompanies() {
    const field = $("map-company-field");
    if (ctx.role === "company") {
      field.hidden = true;
      return;
    }
    field.hidden = false;
    if (data.companies.length) return;
    try {
      data.companies = (await allPages("/v1/companies?limit=" + PAGE, "companies")).list;
      const select = $("map-company");
      for (const c of data.companies) select.appendChild(el("option", { value: c.id, text: (c.name || c.id) + " · " + c.id }));
    } catch (e) {
      // The filter is a convenience: without the list, every company is shown.
    }
  }

  // ---- loading ---------------------------------------------------------------------

  async function reload(refit) {
    const mine = ++generation;
    status("载入中…", "Loading…");
    const results = await Promise.allSettled([loadAreas(mine), loadVehicles(mine), loadAlerts(mine)]);
    if (mine !== generation) return;
    const failed = results.find((r) => r.status === "rejected");
    if (failed) {
      const [zh, enText] = ctx.explain(failed.reason);
      status(zh, enText, true);
    } else {
      summary();
    }
    if (refit || !view.fitted) fit(false);
    if (data.selected) loadTrack(data.selected);
    schedule();
  }

  async function loadAreas(mine) {
    const { list } = await allPages("/v1/areas?limit=" + PAGE + companyQuery(), "areas");
    if (mine !== undefined && mine !== generation) return;
    data.areas = list.map((a) => {
      const g = a.geometry || {};
      const polygons = g.type === "MultiPolygon" ? g.coordinates || [] : g.type === "Polygon" ? [g.coordinates || []] : [];
      a.rings = polygons.map((rings) => rings.map((ring) => ring.map((p) => world(p[1], p[0]))));
      const largest = G.largestPolygon(g);
      const at = largest ? G.labelPoint(largest) : null;
      if (at) a.labelAt = world(at[1], at[0]);
      return a;
    });
    if (ctx.role !== "company") {
      for (const a of data.areas) {
        if (!data.companies.some((c) => c.id === a.company_id)) data.companies.push({ id: a.company_id, name: a.company_id });
      }
    }
  }

  async function loadVehicles(mine) {
    const { list } = await allPages("/v1/positions/latest?limit=" + PAGE + companyQuery(), "vehicles");
    if (mine !== undefined && mine !== generation) return;
    data.vehiclesLoadedAt = Date.now();
    data.vehicles = list.map((v) => Object.assign(v, { w: world(v.lat, v.lon) }));
    vehicleList();
    // The alerts name vehicles by their plates: written again when the alerts came first.
    if (data.alerts.length) alertList(data.alertsMore);
  }

  async function loadAlerts(mine) {
    const box = $("map-alerts");
    const { from, to } = dayRange();
    let got;
    try {
      got = await allPages("/v1/alerts?limit=" + PAGE + "&from=" + encodeURIComponent(from) + "&to=" + encodeURIComponent(to) + companyQuery(), "alerts", 5000);
    } catch (e) {
      if (mine === undefined || mine === generation) ctx.failInto(box, e);
      throw e;
    }
    if (mine !== undefined && mine !== generation) return;
    data.alerts = got.list.map((a) => {
      if (typeof a.lat === "number" && typeof a.lon === "number") a.w = world(a.lat, a.lon);
      const c = a.detail && a.detail.customer_location;
      if (a.kind === "handover_away" && c && typeof c.lat === "number") a.cw = world(c.lat, c.lon);
      return a;
    });
    data.alertsMore = got.more;
    alertList(got.more);
    schedule();
  }

  async function loadTrack(vehicle) {
    const card = $("map-track-card");
    const info = $("map-track-info");
    const { day, from, to } = dayRange();
    const mine = { vehicle: vehicle, day: day, points: [], done: false };
    data.track = mine;
    card.hidden = false;
    card.setAttribute("data-vehicle", vehicle);
    $("map-track-title").textContent = "轨迹 " + (plateOf(vehicle) || vehicle) + " · " + day;
    $("map-track-title").appendChild(inlineEn(" Track of " + vehicle + " on " + day));
    info.removeAttribute("data-points");
    info.textContent = "载入中… Loading…";
    let cursor = null;
    try {
      for (;;) {
        const page = await ctx.api("GET", "/v1/vehicles/" + encodeURIComponent(vehicle) + "/positions?from=" + encodeURIComponent(from) +
          "&to=" + encodeURIComponent(to) + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
        if (data.track !== mine) return;
        for (const p of (page && page.positions) || []) mine.points.push(Object.assign(p, { w: world(p.lat, p.lon) }));
        cursor = page && page.next_cursor ? page.next_cursor : null;
        info.textContent = "已载入 " + mine.points.length + " 个点… " + mine.points.length + " points loaded…";
        if (!cursor) break;
      }
    } catch (e) {
      if (data.track === mine) ctx.failInto(info, e);
      return;
    }
    mine.done = true;
    const outside = mine.points.filter((p) => p.outside === true).length;
    clear(info);
    info.setAttribute("data-points", String(mine.points.length));
    info.setAttribute("data-outside", String(outside));
    if (!mine.points.length) {
      info.appendChild(ctx.emptyNote("当日无定位记录。", "No positions on this day."));
    } else {
      const first = mine.points[0];
      const last = mine.points[mine.points.length - 1];
      info.appendChild(el("p", {}, "共 " + mine.points.length + " 个定位点，其中 " + outside + " 个在配送区域外；" + hhmm(first.at) + " 至 " + hhmm(last.at) + "。",
        en(mine.points.length + " positions, " + outside + " outside the delivery areas; " + hhmm(first.at) + " to " + hhmm(last.at) + ".")));
    }
    fitTo(trackBounds());
  }

  // ---- choosing a vehicle ------------------------------------------------------------

  function selectVehicle(id) {
    data.selected = id;
    for (const row of document.querySelectorAll("#map-vehicles li[data-vehicle]")) {
      row.classList.toggle("selected", row.getAttribute("data-vehicle") === id);
    }
    for (const b of document.querySelectorAll("#map-vehicles button[data-vehicle]")) {
      b.setAttribute("aria-pressed", b.getAttribute("data-vehicle") === id ? "true" : "false");
    }
    const hash = "#map" + (id ? "/" + encodeURIComponent(id) : "");
    if (location.hash !== hash) history.replaceState(null, "", hash);
    if (id) {
      loadTrack(id);
    } else {
      data.track = null;
      $("map-track-card").hidden = true;
    }
    schedule();
  }

  // ---- lists ----------------------------------------------------------------------

  function status(zh, enText, bad) {
    const p = $("map-status");
    clear(p);
    p.className = bad ? "error-box" : "sub";
    p.appendChild(document.createTextNode(zh + " "));
    p.appendChild(inlineEn(enText));
  }

  function summary() {
    const stale = data.vehicles.filter(isStale).length;
    const now = new Date().toLocaleTimeString("zh-CN", { hour12: false });
    status("区域 " + data.areas.length + " 个 · 车辆 " + data.vehicles.length + " 辆（定位过时 " + stale + " 辆）· 当日告警 " + data.alerts.length + " 条 · 更新于 " + now,
      data.areas.length + " areas · " + data.vehicles.length + " vehicles (" + stale + " stale) · " + data.alerts.length + " alerts that day · updated " + now);
    $("map-svg-desc").textContent = "区域 " + data.areas.length + "，车辆 " + data.vehicles.length + "，告警 " + data.alerts.length +
      "。详见下方列表。 " + data.areas.length + " areas, " + data.vehicles.length + " vehicles, " + data.alerts.length + " alerts; the lists below say the same.";
  }

  function ageBadge(v) {
    const [zh, e] = ageWords(ageOf(v));
    return isStale(v)
      ? el("span", { class: "badge unknown age", "data-stale": "true" }, "⚠ " + zh + " ", inlineEn(e + " · stale"))
      : el("span", { class: "badge ok age", "data-stale": "false" }, "● " + zh + " ", inlineEn(e));
  }

  function vehicleList() {
    const box = $("map-vehicles");
    clear(box);
    if (!data.vehicles.length) {
      box.appendChild(ctx.emptyNote("没有车辆定位。", "No vehicle has sent a position."));
      return;
    }
    const sorted = data.vehicles.slice().sort((a, b) => String(a.plate || a.vehicle).localeCompare(String(b.plate || b.vehicle), "zh-CN"));
    // One button a vehicle: its plate, the age of its position, who drives it.
    const ul = el("ul", { class: "vehicle-list" });
    for (const v of sorted) {
      const chosen = data.selected === v.vehicle;
      const b = el("button", { type: "button", class: "vehicle-choice", "data-vehicle": v.vehicle, "aria-pressed": chosen ? "true" : "false" },
        el("span", { class: "plate", text: v.plate || v.vehicle }),
        ageBadge(v),
        el("span", { class: "en", text: [v.vehicle, v.courier ? "送气工 courier " + v.courier : null, ctx.role === "company" ? null : v.company_id].filter(Boolean).join(" · ") }),
        el("span", { class: "en", text: ctx.when(v.at) + (v.source === "jt808" ? " · 车载终端 JT/T 808" : " · 手机 phone") }),
        el("span", { class: "track-hint" }, "查看轨迹 ", el("span", { lang: "en", class: "inline-en", text: "Show its track" })));
      b.addEventListener("click", () => selectVehicle(v.vehicle));
      ul.appendChild(el("li", { "data-vehicle": v.vehicle, "data-stale": isStale(v) ? "true" : "false", class: chosen ? "selected" : "" }, b));
    }
    box.appendChild(ul);
  }

  // What an alert's detail says, in Chinese and in English.
  function alertDetail(a) {
    const d = a.detail || {};
    if (a.kind === "zone_exit") {
      return ["自 " + hhmm(d.outside_since) + " 起在配送区域外，已 " + minutesText(d.minutes_outside) + " 分钟",
        "outside since " + hhmm(d.outside_since) + ", " + minutesText(d.minutes_outside) + " min outside"];
    }
    if (a.kind === "handover_away") {
      const fromZh = d.from === "vehicle" ? "车辆定位" : "交接地点";
      const fromEn = d.from === "vehicle" ? "the vehicle's position" : "where the handover was recorded";
      const [mz, me] = G.distanceWords(d.distance_m);
      return ["距用户位置 " + mz + "（上限 " + d.max_distance_m + " 米，按" + fromZh + "）· 用户 " + (d.customer_id || "—"),
        me + " from the customer (at most " + d.max_distance_m + " m, by " + fromEn + ") · customer " + (d.customer_id || "—") +
          (d.handover_event_id ? " · handover " + d.handover_event_id : "")];
    }
    if (a.kind === "no_position") {
      return ["交接前 " + minutesText(d.minutes) + " 分钟内车辆无定位；最后定位 " + (d.last_position_at ? ctx.when(d.last_position_at) : "无") + " · 用户 " + (d.customer_id || "—"),
        "no position in the " + minutesText(d.minutes) + " min before the handover; last " + (d.last_position_at ? ctx.when(d.last_position_at) : "none") + " · customer " + (d.customer_id || "—")];
    }
    return [JSON.stringify(d), ""];
  }

  function alertList(more) {
    const box = $("map-alerts");
    clear(box);
    if (!data.alerts.length) {
      box.appendChild(ctx.emptyNote("当日没有告警。", "No alerts on this day."));
      return;
    }
    const rows = data.alerts;
    box.appendChild(ctx.table([["类型", "Kind"], ["车辆", "Vehicle"], ["送气工", "Courier"], ["时间", "When"], ["详情", "Detail"], ["", ""]],
      rows.map((a) => {
        const k = KINDS[a.kind] || [a.kind, a.kind, "·"];
        const [dz, de] = alertDetail(a);
        return [
          el("span", { class: "badge bad kind" }, el("span", { class: "glyph", "aria-hidden": "true", text: k[2] }), " " + k[0] + " ", inlineEn(k[1])),
          el("span", {}, el("strong", { text: plateOf(a.vehicle) || a.vehicle }), el("span", { class: "en mono", text: a.vehicle })),
          a.courier || "—",
          ctx.when(a.at),
          el("span", {}, dz, en(de)),
          a.w ? el("button", { type: "button", class: "secondary", "data-alert": a.id }, "在图上 ", inlineEn("Show")) : el("span", { class: "sub", text: "无位置 no place" }),
        ];
      }), (i) => ({ "data-kind": rows[i].kind, "data-id": rows[i].id, "data-vehicle": rows[i].vehicle })));
    if (more) box.appendChild(ctx.emptyNote("仅显示前 " + rows.length + " 条。", "Only the first " + rows.length + " are shown."));
    for (const b of box.querySelectorAll("button[data-alert]")) {
      b.addEventListener("click", () => {
        const a = data.alerts.find((x) => x.id === b.getAttribute("data-alert"));
        if (!a) return;
        const pts = [a.w];
        if (a.cw) pts.push(a.cw);
        fitTo(bounds(pts), 16);
        $("map-view").scrollIntoView({ block: "nearest" });
      });
    }
  }

  function legend() {
    const box = $("map-legend");
    clear(box);
    const item = (swatch, zh, e) => el("li", {}, swatch, " " + zh + " ", inlineEn(e));
    const sw = (...children) => {
      const s = svg("svg", { width: 22, height: 22, viewBox: "-11 -11 22 22", "aria-hidden": "true", class: "swatch" });
      for (const c of children) s.appendChild(c);
      return s;
    };
    const ul = el("ul", { class: "map-legend-items" });
    ul.appendChild(item(sw(svg("rect", { x: -9, y: -7, width: 18, height: 14, class: "map-area", fill: PALETTE[0], stroke: PALETTE[0] })), "配送区域（镂空处不属于区域）", "delivery area (holes are not part of it)"));
    ul.appendChild(item(sw(...vehicleMark(false, false)), "车辆最后位置", "a vehicle's last position"));
    ul.appendChild(item(sw(...vehicleMark(true, false)), "定位超过15分钟（虚线空心）", "position older than 15 min (hollow, dashed)"));
    ul.appendChild(item(sw(svg("path", { d: "M-10 4 L-3 -3 L3 2 L10 -5", class: "map-track" })), "当日轨迹", "the day's track"));
    ul.appendChild(item(sw(outsideMark(0, 0)), "区域外的定位点", "a position outside its areas"));
    for (const kind of Object.keys(KINDS)) ul.appendChild(item(sw(...alertMark(kind)), KINDS[kind][0], KINDS[kind][1]));
    ul.appendChild(item(sw(...customerMark()), "用户位置（虚线连到交接处）", "the customer's location (dashed line to the handover)"));
    box.appendChild(ul);
    let zh;
    let e;
    if (!config.tiles) {
      zh = "无底图：仅按坐标绘制，WGS-84（卫星定位原始坐标），上方为北。";
      e = "No base map: drawn from the coordinates alone, in WGS-84 (as satellite positioning reports them), north up.";
    } else if (config.datum === "gcj02") {
      zh = "底图（" + config.origin + "）为 GCJ-02 坐标；为与底图对齐，图上的区域、车辆和轨迹按公开的 WGS-84→GCJ-02 转换偏移后显示。仅影响显示，登记系统存储的仍是 WGS-84。";
      e = "The base map (" + config.origin + ") is drawn in GCJ-02: areas, vehicles and tracks are shifted by the published WGS-84→GCJ-02 transformation to line up with it. Display only: the registry stores WGS-84.";
    } else {
      zh = "底图来自 " + config.origin + "，按 WGS-84 绘制。";
      e = "Base map tiles from " + config.origin + ", drawn in WGS-84.";
    }
    box.appendChild(el("p", { class: "datum-note", id: "map-datum", "data-datum": config.datum, "data-tiles": config.tiles ? "true" : "false" }, zh, en(e)));
    box.appendChild(el("p", { class: "sub" }, "注：国内网络地图（高德、腾讯等）使用 GCJ-02 坐标，与卫星定位的 WGS-84 相差约 100–700 米。",
      en("Chinese web maps (AutoNavi, Tencent and others) are drawn in GCJ-02, about 100–700 m from the WGS-84 that satellite positioning gives.")));
  }

  // ---- the view -----------------------------------------------------------------

  function bounds(points) {
    let b = null;
    for (const w of points) {
      if (!w) continue;
      if (!b) b = [w[0], w[1], w[0], w[1]];
      else b = [Math.min(b[0], w[0]), Math.min(b[1], w[1]), Math.max(b[2], w[0]), Math.max(b[3], w[1])];
    }
    return b;
  }
  function everythingBounds() {
    const pts = [];
    for (const a of data.areas) for (const poly of a.rings) for (const w of poly[0] || []) pts.push(w);
    for (const v of data.vehicles) pts.push(v.w);
    for (const a of data.alerts) {
      pts.push(a.w);
      pts.push(a.cw);
    }
    return bounds(pts);
  }
  function trackBounds() {
    const pts = data.track ? data.track.points.map((p) => p.w) : [];
    for (const a of data.alerts) {
      if (data.track && a.vehicle === data.track.vehicle) {
        pts.push(a.w);
        pts.push(a.cw);
      }
    }
    return bounds(pts);
  }

  function measure() {
    const box = $("map-view");
    view.width = Math.max(200, box.clientWidth);
    view.height = Math.max(200, box.clientHeight);
  }

  function setScale(scale) {
    view.scale = Math.max(TILE * Math.pow(2, MIN_ZOOM), Math.min(TILE * Math.pow(2, MAX_ZOOM), scale));
  }

  // Fits the view to `b` (world units), no closer than zoom `most`.
  function fitTo(b, most) {
    if (!b) return;
    measure();
    view.cx = (b[0] + b[2]) / 2;
    view.cy = (b[1] + b[3]) / 2;
    const dx = b[2] - b[0];
    const dy = b[3] - b[1];
    const limit = TILE * Math.pow(2, most || 17);
    // Room at the sides for the zoom buttons on the left and the plates written to
    // the right of their markers, and above and below for the labels' lines.
    const scale = dx > 0 || dy > 0 ? Math.min((view.width * 0.7) / (dx || 1e-12), (view.height * 0.8) / (dy || 1e-12)) : limit;
    setScale(Math.min(limit, scale));
    view.fitted = true;
    schedule();
  }
  function fit(user) {
    const b = data.track && data.track.points.length && !user ? trackBounds() : everythingBounds();
    if (b) fitTo(b);
    else if (user) schedule();
  }

  function zoomBy(f, at) {
    measure();
    const px = at ? at[0] : view.width / 2;
    const py = at ? at[1] : view.height / 2;
    // The point under the cursor stays where it is.
    const wx = view.cx + (px - view.width / 2) / view.scale;
    const wy = view.cy + (py - view.height / 2) / view.scale;
    setScale(view.scale * f);
    view.cx = wx - (px - view.width / 2) / view.scale;
    view.cy = wy - (py - view.height / 2) / view.scale;
    schedule();
  }
  function panBy(dx, dy) {
    view.cx -= dx / view.scale;
    view.cy -= dy / view.scale;
    schedule();
  }

  function wireGestures(box, s) {
    s.addEventListener("wheel", (e) => {
      e.preventDefault();
      const r = s.getBoundingClientRect();
      zoomBy(Math.pow(2, -e.deltaY / 300), [e.clientX - r.left, e.clientY - r.top]);
    }, { passive: false });
    let drag = null;
    let justDragged = false;
    // A drag is not a click on whatever it ended over (the click, if any, comes
    // within the same task as the pointerup).
    s.addEventListener("click", (c) => {
      if (justDragged) c.stopPropagation();
    }, { capture: true });
    s.addEventListener("pointerdown", (e) => {
      if (e.button !== 0) return;
      drag = { x: e.clientX, y: e.clientY, moved: 0, id: e.pointerId };
    });
    s.addEventListener("pointermove", (e) => {
      if (!drag || e.pointerId !== drag.id) return;
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      drag.moved += Math.abs(dx) + Math.abs(dy);
      if (drag.moved > 4) {
        if (!s.hasPointerCapture(e.pointerId)) s.setPointerCapture(e.pointerId);
        box.classList.add("dragging");
        panBy(dx, dy);
        drag.x = e.clientX;
        drag.y = e.clientY;
      }
    });
    const end = (e) => {
      if (!drag || e.pointerId !== drag.id) return;
      box.classList.remove("dragging");
      if (drag.moved > 4) {
        justDragged = true;
        setTimeout(() => {
          justDragged = false;
        }, 0);
      }
      drag = null;
    };
    s.addEventListener("pointerup", end);
    s.addEventListener("pointercancel", end);
    box.addEventListener("keydown", (e) => {
      if (e.target.closest && e.target.closest(".map-vehicle")) {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          selectVehicle(e.target.closest(".map-vehicle").getAttribute("data-vehicle"));
        }
        return;
      }
      const step = 80;
      const moves = { ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
      if (moves[e.key]) panBy(...moves[e.key]);
      else if (e.key === "+" || e.key === "=") zoomBy(2);
      else if (e.key === "-") zoomBy(0.5);
      else if (e.key === "0") fit(true);
      else return;
      e.preventDefault();
    });
  }

  function schedule() {
    if (pending) return;
    pending = requestAnimationFrame(() => {
      pending = 0;
      render();
    });
  }

  // ---- drawing --------------------------------------------------------------------

  function vehicleMark(stale, selected) {
    const parts = [];
    if (selected) parts.push(svg("circle", { r: 13, class: "map-selected-ring" }));
    parts.push(svg("circle", { r: 9, class: stale ? "map-vehicle-dot stale" : "map-vehicle-dot" }));
    parts.push(svg("text", { class: stale ? "map-vehicle-glyph stale" : "map-vehicle-glyph", "text-anchor": "middle", dy: "0.35em" }, "车"));
    return parts;
  }
  function outsideMark(x, y) {
    return svg("path", { class: "map-outside", d: "M" + r1(x - 4) + " " + r1(y - 4) + "L" + r1(x + 4) + " " + r1(y + 4) + "M" + r1(x - 4) + " " + r1(y + 4) + "L" + r1(x + 4) + " " + r1(y - 4) });
  }
  function alertMark(kind) {
    const k = KINDS[kind] || ["", "", "·"];
    const shape = kind === "zone_exit"
      ? svg("path", { d: "M0 -10 L10 8 L-10 8 Z", class: "map-alert-shape " + kind })
      : kind === "handover_away"
        ? svg("path", { d: "M0 -10 L10 0 L0 10 L-10 0 Z", class: "map-alert-shape " + kind })
        : svg("circle", { r: 9, class: "map-alert-shape " + kind });
    return [shape, svg("text", { class: "map-alert-glyph", "text-anchor": "middle", dy: kind === "zone_exit" ? "0.65em" : "0.35em" }, k[2])];
  }
  function customerMark() {
    return [svg("rect", { x: -8, y: -8, width: 16, height: 16, rx: 2, class: "map-customer" }),
      svg("text", { class: "map-customer-glyph", "text-anchor": "middle", dy: "0.35em" }, "户")];
  }
  function label(x, y, lines, cls) {
    const t = svg("text", { x: r1(x), y: r1(y), class: "map-label " + (cls || "") });
    lines.forEach((line, i) => {
      const span = svg("tspan", { x: r1(x), dy: i === 0 ? "0" : "1.2em", class: i === 0 ? "first" : "" }, line);
      t.appendChild(span);
    });
    return t;
  }

  function render() {
    if (!built) return;
    measure();
    const s = $("map-svg");
    s.setAttribute("viewBox", "0 0 " + view.width + " " + view.height);
    s.setAttribute("width", view.width);
    s.setAttribute("height", view.height);
    s.setAttribute("data-zoom", (Math.log2(view.scale / TILE)).toFixed(2));
    drawTiles();
    drawAreas();
    drawTrack();
    drawAlerts();
    drawVehicles();
    drawChrome();
  }

  const tileImages = new Map();
  function drawTiles() {
    const g = $("map-layer-tiles");
    if (!config || !config.tiles) {
      clear(g);
      tileImages.clear();
      return;
    }
    const z = Math.max(0, Math.min(19, Math.round(Math.log2(view.scale / TILE))));
    const x0 = view.cx - view.width / 2 / view.scale;
    const y0 = view.cy - view.height / 2 / view.scale;
    const x1 = view.cx + view.width / 2 / view.scale;
    const y1 = view.cy + view.height / 2 / view.scale;
    const size = view.scale / Math.pow(2, z);
    const wanted = new Set();
    for (const t of G.tilesInView(config.tiles, z, x0, y0, x1, y1)) {
      const key = t.z + "/" + t.x + "/" + t.y;
      wanted.add(key);
      let img = tileImages.get(key);
      if (!img) {
        img = svg("image", { href: t.url, class: "map-tile", preserveAspectRatio: "none" });
        tileImages.set(key, img);
        g.appendChild(img);
      }
      const [sx, sy] = screen([t.x / Math.pow(2, z), t.y / Math.pow(2, z)]);
      img.setAttribute("x", r1(sx));
      img.setAttribute("y", r1(sy));
      // A hair over, so that no seam shows between neighbours.
      img.setAttribute("width", r1(size + 0.5));
      img.setAttribute("height", r1(size + 0.5));
    }
    for (const [key, img] of tileImages) {
      if (!wanted.has(key)) {
        img.remove();
        tileImages.delete(key);
      }
    }
  }

  function drawAreas() {
    const g = $("map-layer-areas");
    const labels = $("map-layer-area-labels");
    clear(g);
    clear(labels);
    for (const a of data.areas) {
      let d = "";
      let rings = 0;
      for (const poly of a.rings) {
        for (const ring of poly) {
          if (!ring.length) continue;
          rings++;
          d += ring.map((w, i) => {
            const [x, y] = screen(w);
            return (i === 0 ? "M" : "L") + r1(x) + " " + r1(y);
          }).join("") + "Z";
        }
      }
      const colour = companyColour(a.company_id);
      const path = svg("path", { d: d, class: "map-area", "fill-rule": "evenodd", fill: colour, stroke: colour, "data-area": a.id,
        "data-company": a.company_id, "data-polygons": a.rings.length, "data-rings": rings });
      path.appendChild(svg("title", {}, (a.name || a.id) + " · " + a.id + " · " + a.company_id));
      g.appendChild(path);
      if (a.labelAt) {
        const [x, y] = screen(a.labelAt);
        const t = label(x, y, [a.name || a.id], "area-label");
        t.setAttribute("text-anchor", "middle");
        t.setAttribute("data-area", a.id);
        labels.appendChild(t);
      }
    }
  }

  function drawTrack() {
    const g = $("map-layer-track");
    clear(g);
    const t = data.track;
    if (!t || !t.points.length) return;
    const pts = t.points.map((p) => screen(p.w));
    g.appendChild(svg("polyline", { id: "map-track", class: "map-track", points: pts.map(([x, y]) => r1(x) + "," + r1(y)).join(" "),
      "data-vehicle": t.vehicle, "data-points": pts.length }));
    const outside = svg("g", { class: "map-outside-points" });
    let n = 0;
    t.points.forEach((p, i) => {
      if (p.outside !== true) return;
      n++;
      const m = outsideMark(pts[i][0], pts[i][1]);
      m.setAttribute("data-at", p.at);
      outside.appendChild(m);
    });
    outside.setAttribute("data-count", n);
    g.appendChild(outside);
    const ends = [["起", "start", pts[0]], ["终", "end", pts[pts.length - 1]]];
    for (const [zh, e, [x, y]] of ends) {
      const m = svg("g", { class: "map-track-end " + e, transform: "translate(" + r1(x) + " " + r1(y) + ")" });
      m.appendChild(svg("circle", { r: 8 }));
      m.appendChild(svg("text", { "text-anchor": "middle", dy: "0.35em" }, zh));
      m.appendChild(svg("title", {}, zh + " " + e));
      g.appendChild(m);
    }
  }

  function drawAlerts() {
    const lines = $("map-layer-lines");
    const g = $("map-layer-alerts");
    clear(lines);
    clear(g);
    for (const a of data.alerts) {
      if (!a.w) continue;
      const [x, y] = screen(a.w);
      const k = KINDS[a.kind] || [a.kind, a.kind, "·"];
      const [dz, de] = alertDetail(a);
      if (a.cw) {
        const [cx, cy] = screen(a.cw);
        const line = svg("g", { class: "map-handover-line", "data-id": a.id });
        line.appendChild(svg("line", { x1: r1(x), y1: r1(y), x2: r1(cx), y2: r1(cy) }));
        const c = svg("g", { class: "map-customer-mark", transform: "translate(" + r1(cx) + " " + r1(cy) + ")" });
        for (const part of customerMark()) c.appendChild(part);
        c.appendChild(svg("title", {}, "用户 customer " + ((a.detail && a.detail.customer_id) || "")));
        line.appendChild(c);
        const d = a.detail || {};
        line.appendChild(label((x + cx) / 2 + 6, (y + cy) / 2, [G.distanceText(d.distance_m), "上限 max " + d.max_distance_m + " 米 m"], "distance"));
        lines.appendChild(line);
      }
      const m = svg("g", { class: "map-alert " + a.kind, "data-kind": a.kind, "data-id": a.id, transform: "translate(" + r1(x) + " " + r1(y) + ")" });
      for (const part of alertMark(a.kind)) m.appendChild(part);
      m.appendChild(svg("title", {}, k[0] + " " + k[1] + " · " + (plateOf(a.vehicle) || a.vehicle) + " · " + hhmm(a.at) + " · " + dz + " / " + de));
      g.appendChild(m);
    }
  }

  function drawVehicles() {
    const g = $("map-layer-vehicles");
    // The markers are drawn anew: the one the keyboard was on keeps the focus.
    const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest(".map-vehicle");
    const refocus = focused && g.contains(focused) ? focused.getAttribute("data-vehicle") : null;
    clear(g);
    // The selected one last, on top.
    const list = data.vehicles.slice().sort((a, b) => (a.vehicle === data.selected) - (b.vehicle === data.selected));
    for (const v of list) {
      const [x, y] = screen(v.w);
      const stale = isStale(v);
      const selected = v.vehicle === data.selected;
      const [az, ae] = ageWords(ageOf(v));
      const m = svg("g", { class: "map-vehicle" + (stale ? " stale" : "") + (selected ? " selected" : ""), "data-vehicle": v.vehicle,
        "data-stale": stale ? "true" : "false", transform: "translate(" + r1(x) + " " + r1(y) + ")", tabindex: 0, role: "button",
        "aria-label": (v.plate || v.vehicle) + "，" + az + (stale ? "（定位过时）" : "") + "。显示轨迹 Show its track" });
      if (typeof v.heading === "number" && !stale) {
        m.appendChild(svg("path", { class: "map-heading", d: "M0 -17 L5 -9 L-5 -9 Z", transform: "rotate(" + Math.round(v.heading) + ")" }));
      }
      for (const part of vehicleMark(stale, selected)) m.appendChild(part);
      m.appendChild(label(13, -2, [v.plate || v.vehicle, az + " / " + ae + (stale ? " · 过时 stale" : "")], stale ? "vehicle stale" : "vehicle"));
      m.appendChild(svg("title", {}, (v.plate || v.vehicle) + " · " + v.vehicle + " · " + (v.courier || "—") + " · " + ctx.when(v.at)));
      m.addEventListener("click", () => selectVehicle(v.vehicle));
      g.appendChild(m);
      if (v.vehicle === refocus) m.focus({ preventScroll: true });
    }
  }

  // North up and the scale bar, in the corners.
  function drawChrome() {
    const g = $("map-layer-chrome");
    clear(g);
    const north = svg("g", { class: "map-north", transform: "translate(" + (view.width - 30) + " 38)" });
    north.appendChild(svg("circle", { r: 20, class: "map-chrome-bg" }));
    north.appendChild(svg("path", { d: "M0 -15 L7 5 L0 1 L-7 5 Z", class: "map-north-arrow" }));
    north.appendChild(svg("text", { "text-anchor": "middle", y: 16, class: "map-north-text" }, "北 N"));
    north.appendChild(svg("title", {}, "上方为北 North is up"));
    g.appendChild(north);
    const lat = G.unproject(view.cx, view.cy).lat;
    const metresPerPx = G.metresPerUnit(lat) / view.scale;
    const bar = G.scaleBar(metresPerPx, Math.min(160, view.width / 3));
    const x = 14;
    const y = view.height - 16;
    const scale = svg("g", { class: "map-scale", "data-metres": bar.metres });
    scale.appendChild(svg("rect", { x: x - 6, y: y - 24, width: r1(bar.px + 12), height: 32, rx: 4, class: "map-chrome-bg" }));
    scale.appendChild(svg("path", { d: "M" + x + " " + (y - 6) + "V" + y + "H" + r1(x + bar.px) + "V" + (y - 6), class: "map-scale-bar" }));
    scale.appendChild(svg("text", { x: x, y: y - 10, class: "map-scale-text" }, bar.zh + " / " + bar.en));
    g.appendChild(scale);
  }

  // ---- the tab ----------------------------------------------------------------------

  // Opens the map (console.js's tab "map"): `vehicle` chosen, when the address names one.
  async function open(shared, vehicle) {
    ctx = shared;
    build();
    if (!$("map-day").value) $("map-day").value = isoDay(new Date());
    await loadConfig();
    await loadCompanies();
    if (vehicle) data.selected = vehicle;
    else if (data.selected && location.hash === "#map") data.selected = null;
    if (!data.selected) $("map-track-card").hidden = true;
    await reload(!view.fitted);
    if (timer) clearInterval(timer);
    timer = setInterval(refresh, REFRESH_MS);
  }

  // Every 30 s while the map is shown: the vehicles' last positions (and their ages).
  async function refresh() {
    if ($("panel-map").hidden || !ctx) {
      close();
      return;
    }
    try {
      await loadVehicles();
      summary();
    } catch (e) {
      const [zh, enText] = ctx.explain(e);
      status(zh, enText, true);
      if (e.status === 401) ctx.failInto(null, e);
    }
    schedule();
  }

  function close() {
    if (timer) clearInterval(timer);
    timer = null;
  }

  // After signing out: nothing of the last token's view is kept.
  function reset() {
    close();
    generation++;
    data.companies = [];
    data.areas = [];
    data.vehicles = [];
    data.alerts = [];
    data.track = null;
    data.selected = null;
    view.fitted = false;
    if (built) {
      const select = $("map-company");
      while (select.options.length > 1) select.remove(1);
      select.value = "";
      clear($("map-vehicles"));
      clear($("map-alerts"));
      $("map-track-card").hidden = true;
      schedule();
    }
  }

  return { open: open, close: close, reset: reset };
})();
