"""Delivery supervision in a real browser: the console's map tab and the courier
page's position sharing, in headless Chromium from Debian driven by Selenium,
against the real pingma-registry with a world set up through the API.

The world: two companies, 甲 (CO-MA) with an area with a hole (A-TOWN) and one of
two polygons (A-EAST), 乙 (CO-MB) with one area (B-WEST); vehicles whose couriers'
zones name those areas; customers with locations. V-A1 drives for 19 minutes, 1,200
positions (two pages of the track), 8 of those minutes outside its areas (a zone_exit
alert) and one over the town's lake (the hole: outside too), then hands a cylinder over
600 m from its customer (handover_away); V-A2's last position is 20 minutes old
(stale: older than the 15 minutes of no_position_minutes) and its handover raises no_position.

The console (1280x900): the regulator's map shows the three areas (the hole and the
two polygons counted in their SVG paths), the vehicles' markers with their plates and
ages, the stale one drawn differently; V-A1's track (its polyline has a point for
every position, its points outside the areas marked as the registry says); the day's
alerts listed with their kinds in Chinese and English and drawn, the handover_away
with its line to the customer; the company filter; zoom and pan; a company's token
sees only its own; and with serve --map-tiles (a tile server of the test's own) and
--map-tiles-datum gcj02, the tiles loaded past the CSP and a vehicle drawn where the
GCJ-02 formulas, written here again, put it. The courier page (390x844): geolocation granted and set through
the DevTools protocol; positions reach the registry; offline, the queue grows and
nothing arrives, and back online they all arrive, each once; the queue survives a
reload; a 422 batch dropped and said, a 403 stops the sending and says why; a refused
permission said plainly; signing out stops the watch. Screenshots into ARTEFACTS.

    /usr/bin/python3 map_browser_test.py PINGMA_REGISTRY ARTEFACTS
"""

import http.server
import math
import os
import re
import struct
import sys
import tempfile
import threading
import time
import unittest
import uuid
import zlib
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from registry_harness import (SHANGHAI, Registry, add_years, id_number, iso, now_rfc3339,
                              take_binary_argument, today_shanghai, year_month)

from chromium import RegistryBrowserCase, headless_chromium
from selenium.common.exceptions import (NoSuchElementException,
                                        StaleElementReferenceException, WebDriverException)
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

BINARY = None
ARTEFACTS = None

DESKTOP = (1280, 900)
PHONE = (390, 844)
OK_CHECK = {"hose_length": "pass", "hose_joints": "pass", "hose_through_wall": "pass",
            "regulator_standard": "pass", "regulator_age": "pass", "gas_alarm": "pass",
            "flame_failure_device": "pass", "ventilation": "pass", "cylinders_apart": "pass"}

# Xiayi county: every place is metres east and north of here.
ORIGIN = (34.2370, 116.1300)
TRACK_POINTS = 1200          # more than a page (1,000) of GET /v1/vehicles/{id}/positions
TRACK_MINUTES = 19
STALE_MINUTES = 20           # V-A2's last position: older than no_position_minutes (15)


def place(east_m, north_m):
    """(lat, lon) of a point `east_m` east and `north_m` north of ORIGIN."""
    lat = ORIGIN[0] + north_m / 111320.0
    lon = ORIGIN[1] + east_m / (111320.0 * math.cos(math.radians(ORIGIN[0])))
    return round(lat, 7), round(lon, 7)


def ring(x0, y0, x1, y1):
    """A closed GeoJSON ring ([lon, lat]) of the box [x0, x1] x [y0, y1] in metres."""
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
    return [[place(x, y)[1], place(x, y)[0]] for x, y in corners]


# 甲's town, 3 km square with a 600 m lake in its middle that is no part of it; its
# east side, two boxes apart; 乙's west side.
A_TOWN = {"type": "Polygon", "coordinates": [ring(-1500, -1500, 1500, 1500),
                                              ring(-300, -300, 300, 300)]}
A_EAST = {"type": "MultiPolygon", "coordinates": [[ring(2500, -500, 3500, 500)],
                                                   [ring(4200, 200, 5000, 1000)]]}
B_WEST = {"type": "Polygon", "coordinates": [ring(-5000, -1000, -3000, 1000)]}

CUSTOMER_A = (800, 800)       # in A-TOWN
CUSTOMER_B = (-4000, 0)       # in B-WEST


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def in_zones_of_a1(x, y):
    """Whether (x, y) metres lies in A-TOWN (not in its lake) or in A-EAST."""
    def box(x0, y0, x1, y1):
        return x0 <= x <= x1 and y0 <= y <= y1
    town = box(-1500, -1500, 1500, 1500) and not box(-300, -300, 300, 300)
    return town or box(2500, -500, 3500, 500) or box(4200, 200, 5000, 1000)


def track_of_a1(start):
    """V-A1's 1,200 positions over 19 minutes from `start`: 5 minutes across the town,
    8 outside every area (east of the town, south of A-EAST), 6 back across the town to
    its north-west, over the lake (outside too, but only for about a minute).
    [(at, (lat, lon), outside expected)]."""
    out = []
    step = TRACK_MINUTES * 60.0 / TRACK_POINTS
    for i in range(TRACK_POINTS):
        s = i * step
        m = s / 60.0
        if m < 5:
            x, y = -1000 + 2300 * (m / 5), -1000
        elif m < 13:
            x, y = 1800 + 500 * ((m - 5) / 8), -1000
        else:
            f = (m - 13) / 6
            x, y = 1000 - 1800 * f, -500 + 1300 * f
        out.append((rfc3339(start + timedelta(seconds=s)), place(x, y), not in_zones_of_a1(x, y)))
    return out


def wgs84_to_gcj02(lat, lon):
    """The published WGS-84 -> GCJ-02 transformation, written here again from its
    formulas (not from the console's geo.js), to check what the console draws."""
    a, ee = 6378245.0, 0.00669342162296594323
    x, y = lon - 105.0, lat - 35.0
    d_lat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
             + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2 / 3
             + (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2 / 3
             + (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2 / 3)
    d_lon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
             + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2 / 3
             + (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2 / 3
             + (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2 / 3)
    rad = lat / 180.0 * math.pi
    magic = 1 - ee * math.sin(rad) ** 2
    d_lat = (d_lat * 180.0) / ((a * (1 - ee)) / (magic * math.sqrt(magic)) * math.pi)
    d_lon = (d_lon * 180.0) / (a / math.sqrt(magic) * math.cos(rad) * math.pi)
    return lat + d_lat, lon + d_lon


def metres_between(p, q):
    dy = (p[0] - q[0]) * 111320.0
    dx = (p[1] - q[1]) * 111320.0 * math.cos(math.radians(p[0]))
    return math.hypot(dx, dy)


def tile_png():
    """A 256x256 PNG tile: pale ground with a darker frame."""
    rows = b""
    for y in range(256):
        row = bytearray(b"\x00")
        for x in range(256):
            edge = x < 2 or y < 2
            row += bytes((200, 205, 200) if edge else (236, 240, 232))
        rows += bytes(row)

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 256, 256, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


class TileServer:
    """A site's own tile server on 127.0.0.1: every /{z}/{x}/{y}.png is one tile; the
    paths asked for are kept."""

    def __init__(self):
        png = tile_png()
        asked = self.asked = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                asked.append(self.path)
                if not re.match(r"^/\d+/\d+/\d+\.png$", self.path):
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(png)))
                self.end_headers()
                self.wfile.write(png)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.origin = "http://127.0.0.1:%d" % self.server.server_address[1]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def wait_for_room_in_the_day(minutes):
    """Sleeps until at least `minutes` of Asia/Shanghai's day have passed, so that a
    track of that long, ending now, lies in one day (the console shows a day)."""
    now = datetime.now(SHANGHAI)
    into = now.hour * 60 + now.minute + now.second / 60.0
    if into < minutes:
        time.sleep((minutes - into) * 60 + 5)


class MapBrowserTest(RegistryBrowserCase):
    maxDiff = 4000

    # -- the world -----------------------------------------------------------------

    @classmethod
    def setUpClass(cls):
        os.makedirs(ARTEFACTS, exist_ok=True)
        # Every position lies in today: the console shows a day, V-A2's track its one point.
        wait_for_room_in_the_day(max(TRACK_MINUTES + 1, STALE_MINUTES) + 3)
        cls.today = today_shanghai()
        cls.tmp = tempfile.mkdtemp(prefix="pingma-map-browser-")
        cls.reg = Registry(BINARY)
        cls.driver = None
        try:
            t = cls.reg.token
            cls.admin = t("admin", "root")
            cls.regulator = t("regulator", "SAMR-M")
            cls.company_a = t("company", "CO-MA")
            cls.company_b = t("company", "CO-MB")
            cls.station = t("station", "ST-MA")
            cls.couriers = {c: t("courier", c) for c in ("CR-A1", "CR-A2", "CR-B1", "CR-C")}
            cls.reg.start()
            cls._world()
            cls._browser()
        except BaseException:
            cls._teardown()
            raise

    @classmethod
    def post_positions(cls, courier, vehicle, points):
        for i in range(0, len(points), 600):
            body = {"positions": [{"event_id": str(uuid.uuid4()), "vehicle": vehicle,
                                   "at": p[0], "lat": p[1][0], "lon": p[1][1],
                                   "speed_kmh": 18.0, "heading": 90, "accuracy_m": 8}
                                  for p in points[i:i + 600]]}
            _, answer = cls.api("POST", "/v1/positions", body, cls.couriers[courier])
            assert answer["accepted"] == len(body["positions"]), answer

    @classmethod
    def filled_cylinder(cls, code):
        cls.api("POST", "/v1/cylinders", {
            "code": code, "model": "YSP35.5", "manufacturer": "Hebei Example Cylinder Co.",
            "manufactured": year_month(add_years(cls.today, -2)), "tare_kg": 16.4,
            "design_life_years": 8, "last_inspection": iso(add_years(cls.today, -2)),
            "next_inspection_due": iso(add_years(cls.today, 2))}, cls.company_a)
        _, check = cls.api("POST", "/v1/fill-checks", {"station_id": "ST-MA",
                                                       "operator_id": "OP-MA", "code": code},
                           cls.station)
        assert check["decision"] == "allow", check
        cls.api("POST", "/v1/fills", {
            "event_id": str(uuid.uuid4()), "check_id": check["check_id"], "code": code,
            "station_id": "ST-MA", "operator_id": "OP-MA", "scale_id": "S1",
            "started_at": now_rfc3339(-60), "ended_at": now_rfc3339(), "tare_kg": 16.4,
            "gross_before_kg": 16.9, "gross_after_kg": 31.4, "net_kg": 14.5,
            "residual_kg": 0.5, "result": "ok",
            "post_checks": {"leak_test": "pass", "reweigh": "pass"}}, cls.station)

    @classmethod
    def handover(cls, courier, vehicle, code, customer, where):
        _, answer = cls.api("POST", "/v1/handovers", {
            "event_id": str(uuid.uuid4()), "code": code, "customer_id": customer,
            "vehicle": vehicle, "direction": "deliver", "safety_check": OK_CHECK,
            "location": {"lat": where[0], "lon": where[1]}}, cls.couriers[courier])
        assert answer["decision"] == "allow", answer
        return answer

    @classmethod
    def _world(cls):
        far = iso(cls.today + timedelta(days=400))
        for co, name in (("CO-MA", "甲燃气有限公司"), ("CO-MB", "乙燃气有限公司")):
            cls.api("POST", "/v1/companies", {"id": co, "name": name, "filling_license": {
                "number": "TS-" + co, "valid_until": far}}, cls.admin)
        cls.api("POST", "/v1/stations", {"id": "ST-MA", "company_id": "CO-MA", "name": "城东站",
                                         "district": "Xiayi"}, cls.company_a)
        cls.api("POST", "/v1/operators", {"id": "OP-MA", "company_id": "CO-MA", "name": "充装工",
                                          "certificate": {"number": "C-MA", "valid_until": far}},
                cls.company_a)
        for area, co, name, geometry, token in (
                ("A-TOWN", "CO-MA", "城关片区", A_TOWN, cls.company_a),
                ("A-EAST", "CO-MA", "东部片区", A_EAST, cls.company_a),
                ("B-WEST", "CO-MB", "西部片区", B_WEST, cls.company_b)):
            cls.api("PUT", "/v1/areas/" + area, {"company_id": co, "name": name,
                                                 "geometry": geometry}, token)
        cls.plates = {"V-A1": "豫N·A1001", "V-A2": "豫N·A2002", "V-B1": "豫N·B3003",
                      "V-C": "豫N·C4004"}
        for vid, co, token in (("V-A1", "CO-MA", cls.company_a), ("V-A2", "CO-MA", cls.company_a),
                               ("V-B1", "CO-MB", cls.company_b), ("V-C", "CO-MA", cls.company_a)):
            cls.api("POST", "/v1/vehicles", {"id": vid, "company_id": co,
                                             "plate": cls.plates[vid], "kind": "tricycle"},
                    token)
        for cid, co, name, vid, zones, token in (
                ("CR-A1", "CO-MA", "李四", "V-A1", ["A-TOWN", "A-EAST"], cls.company_a),
                ("CR-A2", "CO-MA", "赵六", "V-A2", ["A-TOWN"], cls.company_a),
                ("CR-B1", "CO-MB", "王五", "V-B1", ["B-WEST"], cls.company_b),
                ("CR-C", "CO-MA", "孙七", "V-C", ["A-TOWN"], cls.company_a)):
            cls.api("POST", "/v1/couriers", {"id": cid, "company_id": co, "name": name,
                                             "vehicle": vid, "zones": zones}, token)
        for cid, co, where, token in (("HOME-A", "CO-MA", CUSTOMER_A, cls.company_a),
                                      ("HOME-B", "CO-MB", CUSTOMER_B, cls.company_b)):
            lat, lon = place(*where)
            cls.api("POST", "/v1/customers", {
                "id": cid, "company_id": co, "name": "张三", "phone": "13987651234",
                "id_number": id_number("11010519491231002"), "address": "建设路1号",
                "district": "Xiayi", "kind": "household",
                "site": {"basement": False, "semi_basement": False, "cylinder_room": False},
                "location": {"lat": lat, "lon": lon}}, token)
        now = datetime.now(timezone.utc)
        # V-A1: the track, ending a minute ago (two batches of 600).
        cls.track = track_of_a1(now - timedelta(minutes=TRACK_MINUTES + 1))
        cls.post_positions("CR-A1", "V-A1", cls.track)
        # V-A2: last seen 20 minutes ago, in the town (stale). V-B1: 2 minutes ago.
        cls.post_positions("CR-A2", "V-A2", [(rfc3339(now - timedelta(minutes=STALE_MINUTES)),
                                              place(-1200, 1300))])
        cls.post_positions("CR-B1", "V-B1", [(rfc3339(now - timedelta(minutes=2)),
                                              place(-4200, 300))])
        # V-A1 hands over 600 m east of its customer: handover_away.
        cls.filled_cylinder("MAP0001")
        away = cls.handover("CR-A1", "V-A1", "MAP0001", "HOME-A",
                            place(CUSTOMER_A[0] + 600, CUSTOMER_A[1]))
        assert [a["kind"] for a in away["alerts"]] == ["handover_away"], away
        cls.away = away["alerts"][0]
        # V-A2, with no position in the last 15 minutes: no_position.
        cls.filled_cylinder("MAP0002")
        silent = cls.handover("CR-A2", "V-A2", "MAP0002", "HOME-A", place(*CUSTOMER_A))
        assert "no_position" in [a["kind"] for a in silent["alerts"]], silent

    @classmethod
    def _browser(cls):
        cls.profile = os.path.join(cls.tmp, "chromium")
        # The registry's days are Asia/Shanghai's; so are the browser's.
        cls.driver = headless_chromium(cls.profile, DESKTOP, time_zone="Asia/Shanghai")
        cls.base = "http://%s:%d" % (cls.reg.host, cls.reg.port)

    # -- helpers -------------------------------------------------------------------

    def shot(self, name, size=DESKTOP):
        d = self.driver
        d.execute_script("window.scrollTo(0, 0)")
        height = d.execute_script("return document.documentElement.scrollHeight")
        d.set_window_size(size[0], max(size[1], height + 40))
        time.sleep(0.3)  # the map redraws to the new size on the next frame
        d.save_screenshot(os.path.join(ARTEFACTS, name + ".png"))
        d.set_window_size(*size)

    def wait(self, condition, timeout=20, message=""):
        def safe(driver):
            try:
                return condition(driver)
            except (NoSuchElementException, StaleElementReferenceException):
                return False
            except WebDriverException as e:
                if "does not belong to the document" in str(e):
                    return False
                raise
        return WebDriverWait(self.driver, timeout, poll_frequency=0.2).until(safe, message)

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def finds(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def visible(self, css, timeout=20):
        return self.wait(lambda d: self.find(css) if self.find(css).is_displayed() else False,
                         timeout, "%s never shown" % css)

    def click(self, css, timeout=20):
        """Clicks `css`, found again if the map redrew it meanwhile."""
        def done(d):
            self.find(css).click()
            return True
        return self.wait(done, timeout, "%s could not be clicked" % css)

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def positions_of(self, vehicle):
        """Every stored position of `vehicle` today, through the company's token."""
        out, cursor = [], None
        while True:
            path = "/v1/vehicles/%s/positions?limit=10000&from=%s" % (
                vehicle, rfc3339(datetime.now(timezone.utc) - timedelta(hours=2)))
            if cursor:
                path += "&cursor=" + cursor
            _, page = self.api("GET", path, token=self.company_a)
            out += page["positions"]
            cursor = page.get("next_cursor")
            if not cursor:
                return out

    # -- the console's map -------------------------------------------------------------

    def console_map(self, token, hash_="#map"):
        d = self.driver
        d.set_window_size(*DESKTOP)
        d.get(self.base + "/console/")
        self.js("sessionStorage.clear()")
        # Another query: a new load of the page, not a move within it.
        d.get(self.base + "/console/?at=%d%s" % (time.time() * 1000, hash_))
        box = self.visible("#token")
        box.send_keys(token)
        self.find("#signin-form button[type=submit]").click()
        self.visible("#tabs")
        if self.js("return location.hash") != hash_:
            self.js("location.hash = arguments[0]", hash_)
        self.visible("#panel-map")
        self.wait(lambda d: "更新于" in self.find("#map-status").text
                  or "error-box" in (self.find("#map-status").get_attribute("class") or ""),
                  30, "the map never loaded")
        self.assertNotIn("error-box", self.find("#map-status").get_attribute("class"),
                         self.find("#map-status").text)
        # Drawn on the next frame after the lists.
        self.wait(lambda d: self.vehicles(), 10, "no vehicle drawn")

    # The map is drawn anew on every change and every 30 s: what it shows is read in
    # one script, never through elements that a redraw may have replaced meanwhile.

    def areas(self):
        """{area id: {fill-rule, d, data-polygons, data-rings}} as drawn."""
        return self.js("""const out = {};
            for (const p of document.querySelectorAll('#map-svg path.map-area')) {
              out[p.dataset.area] = {rule: p.getAttribute('fill-rule'), d: p.getAttribute('d'),
                                     polygons: p.dataset.polygons, rings: p.dataset.rings};
            }
            return out;""")

    def vehicles(self):
        """{vehicle id: {stale, plate, age}} as the markers and their labels say."""
        return self.js("""const out = {};
            for (const g of document.querySelectorAll('#map-svg g.map-vehicle')) {
              const spans = g.querySelectorAll('text.map-label tspan');
              out[g.dataset.vehicle] = {stale: g.dataset.stale, plate: spans[0].textContent,
                                        age: spans[1].textContent};
            }
            return out;""")

    def text_of(self, css):
        """The text of `css` in the map, read again if a redraw replaced it meanwhile."""
        return self.wait(lambda d: self.find(css).text)

    def test_10_regulator_sees_every_company(self):
        self.console_map(self.regulator)
        areas = self.areas()
        self.assertEqual(sorted(areas), ["A-EAST", "A-TOWN", "B-WEST"])
        # The town's lake is a hole: two rings in one even-odd path; the east, two polygons.
        town = areas["A-TOWN"]
        self.assertEqual(town["rule"], "evenodd")
        self.assertEqual((town["polygons"], town["rings"]), ("1", "2"))
        self.assertEqual(town["d"].count("M"), 2)
        east = areas["A-EAST"]
        self.assertEqual((east["polygons"], east["rings"], east["d"].count("M")), ("2", "2", 2))
        labels = self.js("return [...document.querySelectorAll('#map-svg text.area-label')]"
                         ".map(t => t.textContent)")
        self.assertEqual(sorted(labels), ["东部片区", "城关片区", "西部片区"])
        # Every vehicle with a position, by plate, with its age; V-A2's is stale.
        vehicles = self.vehicles()
        self.assertEqual(sorted(vehicles), ["V-A1", "V-A2", "V-B1"])
        for vid, v in vehicles.items():
            self.assertEqual(v["plate"], self.plates[vid])
        self.assertRegex(vehicles["V-A1"]["age"], r"^[1-3] 分钟前 / [1-3] min ago$")
        self.assertRegex(vehicles["V-A2"]["age"], r"^2[0-3] 分钟前 / 2[0-3] min ago · 过时 stale$")
        self.assertEqual(vehicles["V-A2"]["stale"], "true")
        self.assertEqual(vehicles["V-A1"]["stale"], "false")
        # Drawn otherwise, not only in another colour: hollow and dashed.
        dash = self.js("return getComputedStyle(document.querySelector("
                       "'g.map-vehicle[data-vehicle=\"V-A2\"] .map-vehicle-dot')).strokeDasharray")
        self.assertNotEqual(dash, "none")
        row = self.find("#map-vehicles li[data-vehicle='V-A2']")
        self.assertRegex(row.text, r"2[0-3] 分钟前")
        self.assertIn("stale", row.text)
        # The day's alerts: all three kinds, in Chinese and English.
        kinds = sorted(r.get_attribute("data-kind") for r in self.finds("#map-alerts tbody tr"))
        self.assertEqual(kinds, ["handover_away", "no_position", "zone_exit"])
        zone = self.find("#map-alerts tr[data-kind=zone_exit]")
        self.assertIn("驶出配送区域", zone.text)
        self.assertIn("Left its delivery areas", zone.text)
        self.assertIn(self.plates["V-A1"], zone.text)
        self.assertIn("CR-A1", zone.text)
        self.assertRegex(zone.text, r"起在配送区域外，已 \d+(\.\d)? 分钟")
        away = self.find("#map-alerts tr[data-kind=handover_away]")
        self.assertIn("交接地点远离用户", away.text)
        self.assertIn("Handover away from the customer", away.text)
        self.assertRegex(away.text, r"距用户位置 (59[7-9]|60[0-3]) 米")
        self.assertIn("HOME-A", away.text)
        self.assertIn("交接时车辆无定位", self.find("#map-alerts tr[data-kind=no_position]").text)
        # The handover's line to its customer, with the distance.
        self.assertRegex(self.text_of("#map-svg g.map-handover-line[data-id='%s']"
                                      % self.away["id"]), r"(59[7-9]|60[0-3]) 米 m")
        self.assertTrue(self.finds("#map-svg g.map-alert[data-kind=zone_exit]"))
        # Scale bar in metres, north up, no tiles without --map-tiles.
        self.assertRegex(self.text_of("#map-svg g.map-scale"), r"^\d+ (米|公里) / \d+ (m|km)$")
        self.assertIn("北 N", self.text_of("#map-svg g.map-north"))
        self.assertFalse(self.finds("#map-svg image"))
        self.assertEqual(self.find("#map-datum").get_attribute("data-tiles"), "false")
        self.assertIn("GCJ-02", self.find("#map-legend").text)
        self.assertIn("WGS-84", self.find("#map-legend").text)
        self.shot("console-map-regulator")

    def test_11_track_of_a_vehicle(self):
        self.console_map(self.regulator)
        self.click("#map-vehicles button[data-vehicle='V-A1']")
        info = self.wait(lambda d: self.find("#map-track-info")
                         if self.find("#map-track-info").get_attribute("data-points") else False,
                         30, "the track never loaded")
        stored = self.positions_of("V-A1")
        self.assertEqual(len(stored), TRACK_POINTS)
        outside = sum(1 for p in stored if p["outside"])
        # The run east of the town and the crossing of its lake (a hole of the area).
        self.assertEqual(outside, sum(1 for p in self.track if p[2]), "the registry's outside")
        self.assertGreater(sum(1 for p in self.track[800:] if p[2]), 0, "over the lake")
        self.assertEqual(info.get_attribute("data-points"), str(TRACK_POINTS))
        self.assertEqual(info.get_attribute("data-outside"), str(outside))
        drawn = self.js("""const t = document.getElementById('map-track');
            return {vehicle: t.dataset.vehicle, points: t.getAttribute('points'),
                    items: t.points.numberOfItems,
                    outside: document.querySelectorAll(
                        '#map-svg .map-outside-points path.map-outside').length};""")
        self.assertEqual(drawn["vehicle"], "V-A1")
        self.assertEqual(len(drawn["points"].split()), TRACK_POINTS)
        self.assertEqual(drawn["items"], TRACK_POINTS)
        self.assertEqual(drawn["outside"], outside)
        self.assertIn("共 %d 个定位点，其中 %d 个在配送区域外" % (TRACK_POINTS, outside),
                      info.text)
        self.assertEqual(self.find("#map-vehicles button[data-vehicle='V-A1']")
                         .get_attribute("aria-pressed"), "true")
        self.assertEqual(self.js("return location.hash"), "#map/V-A1")
        self.shot("console-map-track")
        # Zoom: the buttons and the wheel; pan by dragging.
        zoom = float(self.find("#map-svg").get_attribute("data-zoom"))
        self.find("#map-zoom-in").click()
        self.wait(lambda d: float(self.find("#map-svg").get_attribute("data-zoom")) > zoom + 0.9)
        self.find("#map-zoom-out").click()
        self.wait(lambda d: abs(float(self.find("#map-svg").get_attribute("data-zoom")) - zoom)
                  < 0.01)
        self.js("""const s = document.getElementById('map-svg');
                   const r = s.getBoundingClientRect();
                   s.dispatchEvent(new WheelEvent('wheel', {deltaY: -300, clientX: r.left + 200,
                       clientY: r.top + 200, bubbles: true, cancelable: true}));""")
        self.wait(lambda d: float(self.find("#map-svg").get_attribute("data-zoom")) > zoom + 0.9)
        def where():
            return self.wait(lambda d: self.find("g.map-vehicle[data-vehicle='V-B1']")
                             .get_attribute("transform"))
        before = where()
        ActionChains(self.driver).move_to_element_with_offset(self.find("#map-view"), 0, 0) \
            .click_and_hold().move_by_offset(60, 25).move_by_offset(60, 25).release().perform()
        self.wait(lambda d: where() != before)
        after = where()
        (x0, y0), (x1, y1) = [tuple(float(v) for v in t[len("translate("):-1].split())
                              for t in (before, after)]
        self.assertAlmostEqual(x1 - x0, 120, delta=2)
        self.assertAlmostEqual(y1 - y0, 50, delta=2)
        # A click on a marker chooses its vehicle; the address keeps it.
        self.find("#map-fit").click()
        self.click("g.map-vehicle[data-vehicle='V-A2'] circle.map-vehicle-dot")
        self.wait(lambda d: self.find("#map-track-card").get_attribute("data-vehicle") == "V-A2")
        self.wait(lambda d: self.find("#map-track-info").get_attribute("data-points") == "1")
        self.assertEqual(self.js("return location.hash"), "#map/V-A2")

    def test_12_company_filter(self):
        self.console_map(self.regulator)
        self.assertTrue(self.find("#map-company").is_displayed())
        Select(self.find("#map-company")).select_by_value("CO-MB")
        self.wait(lambda d: sorted(self.areas()) == ["B-WEST"])
        self.wait(lambda d: sorted(self.vehicles()) == ["V-B1"])
        self.assertIn("当日没有告警", self.find("#map-alerts").text)
        self.shot("console-map-company-filter")

    def test_13_company_sees_its_own(self):
        self.console_map(self.company_a)
        self.assertFalse(self.find("#map-company-field").is_displayed())
        self.assertEqual(sorted(self.areas()), ["A-EAST", "A-TOWN"])
        self.assertEqual(sorted(self.vehicles()), ["V-A1", "V-A2"])
        self.assertNotIn(self.plates["V-B1"],
                         self.js("return document.getElementById('panel-map').textContent"))
        kinds = sorted(r.get_attribute("data-kind") for r in self.finds("#map-alerts tbody tr"))
        self.assertEqual(kinds, ["handover_away", "no_position", "zone_exit"])
        # The regulators' tabs are not offered to a company.
        self.assertFalse(self.find("#tab-reports").is_displayed())
        self.assertFalse(self.find("#tab-stations").is_displayed())
        self.shot("console-map-company")
        self.console_map(self.company_b)
        self.assertEqual(sorted(self.areas()), ["B-WEST"])
        self.assertEqual(sorted(self.vehicles()), ["V-B1"])

    def test_14_map_link_opens_the_track(self):
        self.console_map(self.regulator, "#map/V-A1")
        self.wait(lambda d: self.find("#map-track-info").get_attribute("data-points")
                  == str(TRACK_POINTS), 30)
        self.assertEqual(self.js("return document.getElementById('map-track').points"
                                 ".numberOfItems"), TRACK_POINTS)

    def restart(self, *args):
        self.reg.stop()
        self.reg.start(extra_args=args)
        type(self).base = "http://%s:%d" % (self.reg.host, self.reg.port)

    def test_15_site_tiles_in_gcj02(self):
        """serve --map-tiles with --map-tiles-datum gcj02: the tiles come from the site's
        server (the CSP lets them), and what is drawn on them is shifted onto GCJ-02."""
        tiles = TileServer()
        try:
            self.restart("--map-tiles", tiles.origin + "/{z}/{x}/{y}.png",
                         "--map-tiles-datum", "gcj02")
            self.console_map(self.regulator)
            self.wait(lambda d: self.finds("#map-svg image.map-tile"))
            self.wait(lambda d: any(p.endswith(".png") for p in tiles.asked), 20,
                      "no tile was asked for: %r" % tiles.asked)
            self.assertEqual(self.find("#map-datum").get_attribute("data-datum"), "gcj02")
            self.assertIn("仅影响显示", self.find("#map-datum").text)
            self.assertIn(tiles.origin, self.find("#map-datum").text)
            # Where V-B1 is drawn, read back through the tiles' grid: its GCJ-02 place.
            drawn = self.js("""const i = document.querySelector('#map-svg image.map-tile');
                return {href: i.getAttribute('href'), x: i.getAttribute('x'),
                        y: i.getAttribute('y'), size: i.getAttribute('width'),
                        mark: document.querySelector('g.map-vehicle[data-vehicle="V-B1"]')
                                  .getAttribute('transform')};""")
            z, tx, ty = (int(v) for v in re.search(r"/(\d+)/(\d+)/(\d+)\.png$",
                                                   drawn["href"]).groups())
            ix, iy, size = (float(drawn[a]) for a in ("x", "y", "size"))
            size -= 0.5  # drawn a hair over
            mark = drawn["mark"]
            sx, sy = (float(v) for v in mark[len("translate("):-1].split())
            wx = (tx + (sx - ix) / size) / 2 ** z
            wy = (ty + (sy - iy) / size) / 2 ** z
            drawn = (math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * wy)))), wx * 360 - 180)
            _, latest = self.api("GET", "/v1/positions/latest", token=self.regulator)
            stored = [(v["lat"], v["lon"]) for v in latest["vehicles"] if v["vehicle"] == "V-B1"][0]
            self.assertEqual(stored, place(-4200, 300), "stored as sent, in WGS-84")
            self.assertLess(metres_between(drawn, wgs84_to_gcj02(*stored)), 15)
            self.assertGreater(metres_between(drawn, stored), 300)
            self.shot("console-map-tiles-gcj02")
        finally:
            tiles.close()
            self.restart()

    # -- the courier's page --------------------------------------------------------------

    def geolocation(self, east_m, north_m, accuracy=12):
        lat, lon = place(east_m, north_m)
        self.driver.execute_cdp_cmd("Emulation.setGeolocationOverride",
                                    {"latitude": lat, "longitude": lon, "accuracy": accuracy})
        return lat, lon

    def offline(self, yes):
        self.driver.execute_cdp_cmd("Network.enable", {})
        self.driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": yes, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})

    def courier_signed_in(self, token, vehicle="V-C"):
        d = self.driver
        d.set_window_size(*PHONE)
        d.get(self.base + "/courier/")
        self.js("sessionStorage.clear(); localStorage.setItem('pingma.courier.vehicle', "
                "arguments[0])", vehicle)
        d.get(self.base + "/courier/")
        box = self.visible("#token")
        box.send_keys(token)
        self.find("#signin-form button[type=submit]").click()
        self.visible("#handover")

    def waiting(self):
        return int(self.find("#position-status").get_attribute("data-waiting") or 0)

    def state(self):
        return self.find("#position-status").get_attribute("data-state")

    def test_20_courier_shares_positions(self):
        d = self.driver
        d.execute_cdp_cmd("Browser.grantPermissions", {"origin": self.base,
                                                       "permissions": ["geolocation"]})
        self.geolocation(-900, 600)
        self.courier_signed_in(self.couriers["CR-C"])
        self.wait(lambda d: self.state() == "sharing", 20, "never sharing")
        self.assertIn("定位上报中", self.find("#position-status").text)
        self.assertIn("Sharing position", self.find("#position-status").text)
        self.shot("courier-position-sharing", PHONE)
        # Sent within a round (30 s) of the first fix.
        self.wait(lambda d: len(self.positions_of("V-C")) >= 1, 45,
                  "no position reached the registry")
        first = self.positions_of("V-C")
        self.assertEqual(first[0]["source"], "courier")
        self.assertAlmostEqual(first[0]["lat"], place(-900, 600)[0], places=6)
        self.assertAlmostEqual(first[0]["accuracy_m"], 12, delta=0.1)
        self.wait(lambda d: self.waiting() == 0)
        # Offline: fixes queue on the phone; nothing arrives.
        self.offline(True)
        self.wait(lambda d: self.js("return navigator.onLine") is False)
        self.wait(lambda d: self.state() == "offline")
        for i in range(1, 5):
            self.geolocation(-900 + 100 * i, 600)
            self.wait(lambda d, n=i: self.waiting() >= n, 20, "the queue did not grow")
        queued = self.js("return JSON.parse(localStorage.getItem('pingma.courier.positions'))")
        self.assertEqual(len(queued), self.waiting())
        self.assertGreaterEqual(len(queued), 4)
        self.assertIn("%d 条待发送" % len(queued), self.find("#position-status").text)
        self.assertIn("网络断开", self.find("#position-status").text)
        self.shot("courier-position-offline", PHONE)
        time.sleep(2)
        self.assertEqual(len(self.positions_of("V-C")), len(first), "sent while offline")
        # Back online: all of them at once, each once.
        self.offline(False)
        self.wait(lambda d: self.waiting() == 0, 20, "the queue was not sent when online")
        stored = self.positions_of("V-C")
        ids = [p["event_id"] for p in stored]
        self.assertEqual(len(ids), len(set(ids)))
        self.assertTrue({q["event_id"] for q in queued} <= set(ids))
        extra = set(ids) - {q["event_id"] for q in queued} - {p["event_id"] for p in first}
        # Beside them, at most a fix taken as the page came back online.
        self.assertLessEqual(len(extra), 1, extra)
        self.assertEqual(len(stored), len(first) + len(queued) + len(extra))
        self.assertEqual(self.state(), "sharing")

    def test_21_queue_survives_a_reload(self):
        d = self.driver
        self.courier_signed_in(self.couriers["CR-C"])
        self.wait(lambda d: self.state() == "sharing")
        # The registry out of reach (only its positions), a fix queued, the page reloaded.
        d.execute_cdp_cmd("Network.enable", {})
        d.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/v1/positions*"]})
        try:
            self.geolocation(300, 1200)
            self.wait(lambda d: self.waiting() >= 1)
            self.js("window.pingmaPositions.flush()")
            self.wait(lambda d: "网络不通" in self.find("#position-status").text)
            before = self.js("return JSON.parse(localStorage.getItem("
                             "'pingma.courier.positions')).map(p => p.event_id)")
            d.refresh()
            self.visible("#handover")
            self.wait(lambda d: self.waiting() >= len(before))
            after = self.js("return JSON.parse(localStorage.getItem("
                            "'pingma.courier.positions')).map(p => p.event_id)")
            self.assertEqual(after[:len(before)], before)
        finally:
            d.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
        self.js("window.pingmaPositions.flush()")
        self.wait(lambda d: self.waiting() == 0)
        ids = {p["event_id"] for p in self.positions_of("V-C")}
        self.assertTrue(set(before) <= ids)

    def test_22_refusals(self):
        self.courier_signed_in(self.couriers["CR-C"])
        self.wait(lambda d: self.state() == "sharing")
        self.js("window.pingmaPositions.flush()")
        self.wait(lambda d: self.waiting() == 0)
        # A batch the registry refuses (a latitude past the pole): said, dropped.
        self.js("""localStorage.setItem('pingma.courier.positions', JSON.stringify([
                   {event_id: 'bad-1', vehicle: 'V-C', at: new Date().toISOString(),
                    lat: 91.5, lon: 116.1}]));
                   window.pingmaPositions.flush();""")
        self.wait(lambda d: "拒收" in self.find("#position-error").text)
        self.assertIn("positions[0]", self.find("#position-error").text)
        self.assertEqual(self.waiting(), 0)
        self.assertNotIn("bad-1", [p["event_id"] for p in self.positions_of("V-C")])
        self.shot("courier-position-refused", PHONE)
        # Another courier's vehicle: 403, the sending stops and says why.
        theirs = len(self.positions_of("V-A1"))
        vehicle = self.find("#vehicle")
        vehicle.clear()
        vehicle.send_keys("V-A1")
        self.find("#code").click()  # the change event
        self.geolocation(100, 100)
        self.wait(lambda d: self.waiting() >= 1)
        self.js("window.pingmaPositions.flush()")
        self.wait(lambda d: self.state() == "stopped")
        text = self.find("#position-status").text
        self.assertIn("已停止上报", text)
        self.assertIn("V-A1", text)
        self.assertTrue(self.find("#position-discard").is_displayed())
        self.shot("courier-position-stopped", PHONE)
        self.find("#position-discard").click()
        self.wait(lambda d: self.waiting() == 0)
        vehicle = self.find("#vehicle")
        vehicle.clear()
        vehicle.send_keys("V-C")
        self.find("#code").click()
        self.wait(lambda d: self.state() in ("locating", "sharing"))
        self.assertEqual(len(self.positions_of("V-A1")), theirs)

    def test_23_sign_out_stops_the_watch(self):
        self.courier_signed_in(self.couriers["CR-C"])
        self.wait(lambda d: self.state() == "sharing")
        self.js("window.pingmaPositions.flush()")
        self.wait(lambda d: self.waiting() == 0)
        self.visible("#sign-out").click()
        self.visible("#signin")
        self.assertFalse(self.find("#position-status").is_displayed())
        count = len(self.positions_of("V-C"))
        self.geolocation(700, 700)
        self.geolocation(800, 800)
        time.sleep(2)
        self.assertIsNone(self.js("return localStorage.getItem('pingma.courier.positions')"))
        self.js("window.dispatchEvent(new Event('online'))")
        time.sleep(1)
        self.assertEqual(len(self.positions_of("V-C")), count)

    def test_24_permission_refused(self):
        self.driver.execute_cdp_cmd("Browser.setPermission", {
            "origin": self.base, "permission": {"name": "geolocation"}, "setting": "denied"})
        try:
            self.courier_signed_in(self.couriers["CR-C"])
            self.wait(lambda d: self.state() == "denied")
            text = self.find("#position-status").text
            self.assertIn("未获得定位权限", text)
            self.assertIn("Location permission was refused", text)
            self.shot("courier-position-denied", PHONE)
        finally:
            self.driver.execute_cdp_cmd("Browser.grantPermissions", {
                "origin": self.base, "permissions": ["geolocation"]})


if __name__ == "__main__":
    BINARY = take_binary_argument()
    ARTEFACTS = os.path.abspath(sys.argv.pop(1) if len(sys.argv) > 1
                                and not sys.argv[1].startswith("-") else "artefacts")
    unittest.main(verbosity=2)
