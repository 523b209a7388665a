"""Delivery supervision (定位监管) against the real pingma-registry.

Areas drawn as GeoJSON (replaced, listed by company, bad geometry refused with what
is wrong and nothing stored); positions from the courier's page (idempotent per
event_id, batches, late and out of order, the courier's own vehicle only); the
alerts at their boundaries: zone_exit once per run outside by the positions' own
times (5 min is not more than 5 min; back inside and out again is a new one; a run
sent backwards still one), handover_away (600 m raises it, 400 m does not) and
no_position; a customer's location inside a zone's area allowing a delivery to a
district the zones do not name; who sees what; and positions past their retention
deleted.

    python3 registry_supervision_test.py /path/to/pingma-registry
"""

import json
import os
import sys
import tempfile
import unittest
import uuid
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from registry_harness import (Registry, RegistryCase, add_years, id_number, iso,
                              take_binary_argument, today_shanghai, year_month)

BINARY = None  # set in __main__

OK_CHECK = {"hose_length": "pass", "hose_joints": "pass", "hose_through_wall": "pass",
            "regulator_standard": "pass", "regulator_age": "pass", "gas_alarm": "pass",
            "flame_failure_device": "pass", "ventilation": "pass", "cylinders_apart": "pass"}
# Area N: a 0.04-degree square around 116.40E 39.90N with a hole in its middle.
SHELL = [[116.38, 39.88], [116.42, 39.88], [116.42, 39.92], [116.38, 39.92], [116.38, 39.88]]
HOLE = [[116.395, 39.895], [116.395, 39.905], [116.405, 39.905], [116.405, 39.895],
        [116.395, 39.895]]
AREA_N = {"type": "Polygon", "coordinates": [SHELL, HOLE]}
INSIDE = (39.91, 116.41)     # lat, lon
OUTSIDE = (39.95, 116.41)
IN_HOLE = (39.90, 116.40)
METRES_PER_DEGREE_LAT = 111195.0


def at(base, seconds):
    t = base + timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def minutes_ago(n):
    return datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=n)


class SupervisionTest(RegistryCase):
    maxDiff = 4000
    TOKENS = {"admin": ("admin", "root"), "regulator": ("regulator", "SAMR"),
              "co": ("company", "CO-S"), "co_t": ("company", "CO-T"),
              "st": ("station", "ST-S"), "courier": ("courier", "CR-S1"),
              "courier2": ("courier", "CR-S2"), "courier3": ("courier", "CR-S3"),
              "courier_t": ("courier", "CR-T")}

    @classmethod
    def world(cls):
        cls.today = today_shanghai()
        far = iso(cls.today + timedelta(days=400))
        for co, token in (("CO-S", cls.admin), ("CO-T", cls.admin)):
            cls.post("/v1/companies", {"id": co, "name": co, "filling_license":
                                       {"number": "TS-" + co, "valid_until": far}}, token)
        cls.post("/v1/stations", {"id": "ST-S", "company_id": "CO-S", "name": "S",
                                  "district": "Xiayi"}, cls.co)
        cls.post("/v1/operators", {"id": "OP-S", "company_id": "CO-S", "name": "Op",
                                   "certificate": {"number": "C-S", "valid_until": far}}, cls.co)
        status, answer = cls.call("PUT", "/v1/areas/AREA-N", {
            "company_id": "CO-S", "name": "城北片区", "geometry": AREA_N}, cls.co)
        assert status == 201, answer
        for vid, phone in (("V-S1", "013800000001"), ("V-S2", None), ("V-S3", None)):
            body = {"id": vid, "company_id": "CO-S", "plate": "豫N" + vid[-2:] + "345"}
            if phone:
                body["terminal"] = {"phone": phone}
            cls.post("/v1/vehicles", body, cls.co)
        cls.post("/v1/vehicles", {"id": "V-T", "company_id": "CO-T", "plate": "豫NT0001"},
                 cls.co_t)
        cls.post("/v1/couriers", {"id": "CR-S1", "company_id": "CO-S", "name": "李四",
                                  "vehicle": "V-S1", "zones": ["AREA-N"]}, cls.co)
        cls.post("/v1/couriers", {"id": "CR-S2", "company_id": "CO-S", "name": "赵六",
                                  "vehicle": "V-S2", "zones": ["AREA-N", "Xiayi"]}, cls.co)
        cls.post("/v1/couriers", {"id": "CR-S3", "company_id": "CO-S", "name": "孙七",
                                  "vehicle": "V-S3", "zones": ["AREA-N"]}, cls.co)
        cls.post("/v1/couriers", {"id": "CR-T", "company_id": "CO-T", "name": "王五",
                                  "vehicle": "V-T", "zones": ["Xiayi"]}, cls.co_t)
        for cid, district, where in (("CU-IN", "Xiayi", INSIDE), ("CU-AREA", "Suiyang", INSIDE),
                                     ("CU-OUT", "Suiyang", OUTSIDE), ("CU-NOWHERE", "Xiayi", None)):
            body = {"id": cid, "company_id": "CO-S", "name": "张三", "phone": "13987651234",
                    "id_number": id_number("11010519491231002"), "address": "建设路1号",
                    "district": district, "kind": "household",
                    "site": {"basement": False, "semi_basement": False, "cylinder_room": False}}
            if where:
                body["location"] = {"lat": where[0], "lon": where[1]}
            cls.post("/v1/customers", body, cls.co)

    # -- helpers ------------------------------------------------------------------

    def positions(self, points, vehicle="V-S1", token=None, expect=200):
        """POSTs [(at, (lat, lon))] or [(at, (lat, lon), event_id)]."""
        body = {"positions": []}
        for p in points:
            body["positions"].append({"event_id": p[2] if len(p) > 2 else str(uuid.uuid4()),
                                      "vehicle": vehicle, "at": p[0], "lat": p[1][0],
                                      "lon": p[1][1], "speed_kmh": 20.5, "heading": 90})
        status, answer = self.call("POST", "/v1/positions", body, token or self.courier)
        self.assertEqual(status, expect, answer)
        return answer

    def alerts(self, token=None, **query):
        path = "/v1/alerts"
        if query:
            path += "?" + "&".join("%s=%s" % kv for kv in query.items())
        status, answer = self.call("GET", path, token=token or self.regulator)
        self.assertEqual(status, 200, answer)
        return answer["alerts"]

    def vehicle_alerts(self, vehicle, kind="zone_exit"):
        return [a for a in self.alerts(kind=kind) if a["vehicle"] == vehicle]

    def cylinder(self, code):
        self.post("/v1/cylinders", {
            "code": code, "model": "YSP35.5", "manufacturer": "Hebei Example Cylinder Co.",
            "manufactured": year_month(add_years(self.today, -2)), "tare_kg": 16.4,
            "design_life_years": 8, "last_inspection": iso(add_years(self.today, -2)),
            "next_inspection_due": iso(add_years(self.today, 2))}, self.co)
        check = self.post("/v1/fill-checks", {"station_id": "ST-S", "operator_id": "OP-S",
                                              "code": code}, self.st)
        now = datetime.now(timezone.utc)
        self.post("/v1/fills", {
            "event_id": str(uuid.uuid4()), "check_id": check["check_id"], "code": code,
            "station_id": "ST-S", "operator_id": "OP-S", "scale_id": "S1",
            "started_at": at(now, -60), "ended_at": at(now, 0), "tare_kg": 16.4,
            "gross_before_kg": 16.9, "gross_after_kg": 31.4, "net_kg": 14.5,
            "residual_kg": 0.5, "result": "ok",
            "post_checks": {"leak_test": "pass", "reweigh": "pass"}}, self.st)
        return code

    def handover(self, code, customer, vehicle, token, location=None):
        body = {"event_id": str(uuid.uuid4()), "code": code, "customer_id": customer,
                "vehicle": vehicle, "direction": "deliver", "safety_check": OK_CHECK}
        if location:
            body["location"] = {"lat": location[0], "lon": location[1]}
        status, answer = self.call("POST", "/v1/handovers", body, token)
        self.assertEqual(status, 201, answer)
        return answer

    # -- areas ----------------------------------------------------------------------

    def test_area_replaced_listed_and_scoped(self):
        status, body = self.call("PUT", "/v1/areas/AREA-X", {
            "company_id": "CO-S", "name": "临时", "geometry": {
                "type": "MultiPolygon", "coordinates": [[SHELL], [[
                    [116.5, 39.9], [116.6, 39.9], [116.6, 40.0], [116.5, 39.9]]]]}}, self.co)
        self.assertEqual(status, 201, body)
        status, body = self.call("PUT", "/v1/areas/AREA-X", {
            "company_id": "CO-S", "name": "城西片区", "geometry": AREA_N}, self.co)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["name"], "城西片区")
        # Another company's id is not taken over, nor is it told whose it is.
        status, body = self.call("PUT", "/v1/areas/AREA-X", {
            "company_id": "CO-T", "name": "x", "geometry": AREA_N}, self.co_t)
        self.assertEqual(status, 409, body)
        status, body = self.call("PUT", "/v1/areas/AREA-Y", {
            "company_id": "CO-S", "name": "x", "geometry": AREA_N}, self.co_t)
        self.assertEqual(status, 403, body)
        status, mine = self.call("GET", "/v1/areas", token=self.co)
        self.assertEqual(status, 200, mine)
        by_id = {a["id"]: a for a in mine["areas"]}
        self.assertEqual(by_id["AREA-X"]["name"], "城西片区")
        self.assertEqual(by_id["AREA-N"]["geometry"], AREA_N)
        status, theirs = self.call("GET", "/v1/areas", token=self.co_t)
        self.assertEqual(theirs["areas"], [])
        status, body = self.call("GET", "/v1/areas?company_id=CO-S", token=self.co_t)
        self.assertEqual(status, 403, body)
        status, all_ = self.call("GET", "/v1/areas?company_id=CO-S", token=self.regulator)
        self.assertEqual({a["id"] for a in all_["areas"]}, {"AREA-N", "AREA-X"})
        status, body = self.call("GET", "/v1/areas", token=self.courier)
        self.assertEqual(status, 403, body)

    def test_area_id_in_the_path_checked(self):
        status, body = self.call("PUT", "/v1/areas/%E5%9F%8E%20%E5%8C%97", {
            "company_id": "CO-S", "name": "x", "geometry": AREA_N}, self.co)
        self.assertEqual(status, 422, body)
        self.assertIn("the area's id in the path", body["error"]["message"])

    def test_bad_geometry_refused_with_what_is_wrong(self):
        cases = [
            ("unclosed ring", {"type": "Polygon", "coordinates": [SHELL[:-1] + [[116.38, 39.9]]]},
             "closed"),
            ("bow tie", {"type": "Polygon", "coordinates": [[
                [116.38, 39.88], [116.42, 39.92], [116.42, 39.88], [116.38, 39.92],
                [116.38, 39.88]]]}, "cross"),
            ("longitude out of range", {"type": "Polygon", "coordinates": [[
                [116.38, 39.88], [190, 39.88], [116.42, 39.92], [116.38, 39.88]]]}, "190"),
            ("three positions", {"type": "Polygon", "coordinates": [[
                [116.38, 39.88], [116.42, 39.88], [116.38, 39.88]]]}, "4"),
            ("a point", {"type": "Point", "coordinates": [116.4, 39.9]}, "Polygon"),
        ]
        for what, geometry, words in cases:
            with self.subTest(what):
                status, body = self.call("PUT", "/v1/areas/AREA-BAD", {
                    "company_id": "CO-S", "name": "bad", "geometry": geometry}, self.co)
                self.assertEqual(status, 422, body)
                self.assertIn(words, body["error"]["message"], body)
        status, mine = self.call("GET", "/v1/areas", token=self.co)
        self.assertNotIn("AREA-BAD", [a["id"] for a in mine["areas"]])

    # -- positions ------------------------------------------------------------------

    def test_positions_idempotent_late_and_scoped(self):
        base = minutes_ago(300)
        ids = [str(uuid.uuid4()) for _ in range(3)]
        pts = [(at(base, 20), INSIDE, ids[2]), (at(base, 0), INSIDE, ids[0]),
               (at(base, 10), INSIDE, ids[1])]
        self.assertEqual(self.positions(pts, vehicle="V-S2", token=self.courier2),
                         {"accepted": 3, "duplicates": 0})
        self.assertEqual(self.positions(pts[:2] + [(at(base, 30), INSIDE)], vehicle="V-S2",
                                        token=self.courier2),
                         {"accepted": 1, "duplicates": 2})
        path = "/v1/vehicles/V-S2/positions?from=%s&to=%s" % (at(base, -1), at(base, 60))
        status, track = self.call("GET", path, token=self.co)
        self.assertEqual(status, 200, track)
        self.assertEqual([p["event_id"] for p in track["positions"]][:3], ids)
        self.assertEqual(len(track["positions"]), 4)
        # Pages by a cursor, in order.
        status, page = self.call("GET", path + "&limit=3", token=self.regulator)
        self.assertEqual(len(page["positions"]), 3)
        status, rest = self.call("GET", path + "&limit=3&cursor=" + page["next_cursor"],
                                 token=self.regulator)
        self.assertEqual(len(rest["positions"]), 1, rest)
        # The courier's own vehicle only; the courier sees its own track.
        self.positions([(at(base, 40), INSIDE)], vehicle="V-S1", token=self.courier2, expect=403)
        status, own = self.call("GET", path, token=self.courier2)
        self.assertEqual(status, 200, own)
        for token in (self.courier, self.co_t, self.courier_t):
            status, body = self.call("GET", path, token=token)
            self.assertEqual(status, 404, body)
        # A batch with one bad position stores none of it.
        for bad, words in ((dict(lat=91), "lat"), (dict(at=at(datetime.now(timezone.utc), 3600)),
                                                    "ahead"),
                           (dict(heading=360), "heading"), (dict(vehicle="V-S1"), "one vehicle")):
            good = {"event_id": str(uuid.uuid4()), "vehicle": "V-S2", "at": at(base, 50),
                    "lat": INSIDE[0], "lon": INSIDE[1]}
            worse = dict(good, event_id=str(uuid.uuid4()))
            worse.update(bad)
            status, body = self.call("POST", "/v1/positions", {"positions": [good, worse]},
                                     self.courier2)
            self.assertEqual(status, 422, body)
            self.assertIn(words, body["error"]["message"])
        status, track = self.call("GET", path, token=self.co)
        self.assertEqual(len(track["positions"]), 4)
        status, body = self.call("POST", "/v1/positions", {"positions": []}, self.courier2)
        self.assertEqual(status, 422, body)

    def test_latest_positions_by_company(self):
        now = minutes_ago(0)
        self.positions([(at(now, -120), INSIDE), (at(now, -60), INSIDE)], vehicle="V-S3",
                       token=self.courier3)
        status, latest = self.call("GET", "/v1/positions/latest", token=self.co)
        self.assertEqual(status, 200, latest)
        mine = {v["vehicle"]: v for v in latest["vehicles"]}
        self.assertEqual(mine["V-S3"]["at"][:19], at(now, -60)[:19])
        self.assertEqual(mine["V-S3"]["courier"], "CR-S3")
        self.assertGreaterEqual(mine["V-S3"]["age_s"], 59)
        status, theirs = self.call("GET", "/v1/positions/latest", token=self.co_t)
        self.assertNotIn("V-S3", [v["vehicle"] for v in theirs["vehicles"]])
        status, body = self.call("GET", "/v1/positions/latest?company_id=CO-S", token=self.co_t)
        self.assertEqual(status, 403, body)

    # -- zone_exit ------------------------------------------------------------------

    def test_zone_exit_once_per_run(self):
        base = minutes_ago(200)
        # Inside, then outside for exactly 5 minutes: not more than the policy's 5.
        run = [(at(base, 0), INSIDE)] + [(at(base, 60 * m), OUTSIDE) for m in range(1, 7)]
        self.positions(run)
        self.assertEqual(self.vehicle_alerts("V-S1"), [])
        # One second past: one alert, at that position; more points outside add none.
        self.positions([(at(base, 361), OUTSIDE)])
        self.positions([(at(base, 420), OUTSIDE), (at(base, 480), OUTSIDE)])
        alerts = self.vehicle_alerts("V-S1")
        self.assertEqual(len(alerts), 1, alerts)
        self.assertEqual(alerts[0]["at"][:19], at(base, 361)[:19])
        self.assertEqual(alerts[0]["courier"], "CR-S1")
        self.assertEqual(alerts[0]["detail"]["outside_since"][:19], at(base, 60)[:19])
        # A point in the area's hole is outside it.
        self.positions([(at(base, 540), IN_HOLE)])
        # Back inside, out again for 6 minutes: a new one.
        self.positions([(at(base, 600), INSIDE)] +
                       [(at(base, 600 + 60 * m), OUTSIDE) for m in range(1, 8)])
        self.assertEqual(len(self.vehicle_alerts("V-S1")), 2)
        # The company sees them, the other company does not.
        self.assertEqual(len([a for a in self.alerts(token=self.co) if a["vehicle"] == "V-S1"
                              and a["kind"] == "zone_exit"]), 2)
        self.assertEqual([a for a in self.alerts(token=self.co_t) if a["vehicle"] == "V-S1"], [])

    def test_zone_exit_from_late_positions(self):
        base = minutes_ago(100)
        # The vehicle's latest position is known first; its run outside comes late,
        # newest first, a point a batch: still one alert.
        self.positions([(at(base, 900), INSIDE)], vehicle="V-S3", token=self.courier3)
        for m in range(8, 0, -1):
            self.positions([(at(base, 60 * m), OUTSIDE)], vehicle="V-S3", token=self.courier3)
        alerts = self.vehicle_alerts("V-S3")
        self.assertEqual(len(alerts), 1, alerts)
        # Raised when the run, as then known, first lasted more than 5 minutes: from
        # minute 2 to minute 8; minute 1 came after and joined the alerted run.
        self.assertEqual(alerts[0]["detail"]["outside_since"][:19], at(base, 120)[:19])
        self.assertEqual(alerts[0]["at"][:19], at(base, 480)[:19])
        # A late inside point splitting the run does not take the alert back.
        self.positions([(at(base, 240), INSIDE)], vehicle="V-S3", token=self.courier3)
        self.assertEqual(len(self.vehicle_alerts("V-S3")), 1)

    # -- handovers ------------------------------------------------------------------

    def test_handover_away_and_no_position(self):
        code = self.cylinder("SV0001")
        # A position a minute ago: no no_position. 400 m from the customer: fine.
        self.positions([(at(minutes_ago(1), 0), INSIDE)], vehicle="V-S2", token=self.courier2)
        near = (INSIDE[0] + 400 / METRES_PER_DEGREE_LAT, INSIDE[1])
        answer = self.handover(code, "CU-IN", "V-S2", self.courier2, location=near)
        self.assertEqual(answer["decision"], "allow", answer)
        self.assertEqual(answer["alerts"], [])
        # 600 m: handover_away, on the answer and in the list.
        code = self.cylinder("SV0002")
        far = (INSIDE[0] + 600 / METRES_PER_DEGREE_LAT, INSIDE[1])
        answer = self.handover(code, "CU-IN", "V-S2", self.courier2, location=far)
        self.assertEqual(answer["decision"], "allow", answer)  # alerts flag, they do not block
        self.assertEqual([a["kind"] for a in answer["alerts"]], ["handover_away"], answer)
        self.assertAlmostEqual(answer["alerts"][0]["detail"]["distance_m"], 600, delta=3)
        listed = self.alerts(kind="handover_away")
        self.assertIn(answer["alerts"][0]["id"], [a["id"] for a in listed])
        # Without a location of its own, the vehicle's latest position is where it was.
        code = self.cylinder("SV0003")
        answer = self.handover(code, "CU-OUT", "V-S2", self.courier2)
        self.assertEqual([a["kind"] for a in answer["alerts"]], ["handover_away"], answer)
        self.assertEqual(answer["alerts"][0]["detail"]["from"], "vehicle")
        # A vehicle with no position in the last 15 minutes: no_position.
        code = self.cylinder("SV0004")
        answer = self.handover(code, "CU-NOWHERE", "V-S1", self.courier, location=INSIDE)
        kinds = [a["kind"] for a in answer["alerts"]]
        self.assertIn("no_position", kinds, answer)

    def test_customer_location_in_a_zone_area(self):
        # CR-S1's zones name only AREA-N: a customer whose district is not a zone is
        # delivered to when its location lies in the area, refused when it does not.
        code = self.cylinder("SV0010")
        answer = self.handover(code, "CU-AREA", "V-S1", self.courier, location=INSIDE)
        self.assertEqual(answer["decision"], "allow", answer)
        code = self.cylinder("SV0011")
        answer = self.handover(code, "CU-OUT", "V-S1", self.courier, location=OUTSIDE)
        self.assertEqual(answer["decision"], "block", answer)
        self.assertEqual([r["code"] for r in answer["reasons"]], ["OUTSIDE_ZONE"])

    def test_roles(self):
        for method, path, token in (("POST", "/v1/positions", self.co),
                                    ("GET", "/v1/alerts", self.courier),
                                    ("GET", "/v1/positions/latest", self.courier),
                                    ("PUT", "/v1/areas/A", self.courier),
                                    ("GET", "/v1/alerts", self.st)):
            with self.subTest(method + " " + path):
                status, body = self.call(method, path, {} if method != "GET" else None, token)
                self.assertEqual(status, 403, body)
        status, body = self.call("GET", "/v1/alerts?kind=speeding", token=self.regulator)
        self.assertEqual(status, 400, body)


class TwoRegistriesTest(unittest.TestCase):
    """An area redrawn through one registry is the one the other tests positions
    against at once."""

    def test_area_redrawn_at_one_seen_at_the_other(self):
        a = Registry(BINARY)
        b = Registry(BINARY, db_path=a.db)
        try:
            admin, co = a.token("admin", "root"), a.token("company", "CO-2R")
            courier = a.token("courier", "CR-2R")
            a.start()
            b.start()
            far = iso(today_shanghai() + timedelta(days=400))
            for path, body in (
                    ("/v1/companies", {"id": "CO-2R", "name": "R", "filling_license": {
                        "number": "L", "valid_until": far}}),
                    ("/v1/vehicles", {"id": "V-2R", "company_id": "CO-2R", "plate": "P"}),
                    ("/v1/couriers", {"id": "CR-2R", "company_id": "CO-2R", "name": "R",
                                      "vehicle": "V-2R", "zones": ["AREA-2R"]})):
                if path == "/v1/couriers":
                    status, answer = a.request("PUT", "/v1/areas/AREA-2R", {
                        "company_id": "CO-2R", "name": "R", "geometry": AREA_N}, co)
                    self.assertEqual(status, 201, answer)
                status, answer = a.request("POST", path, body, admin if path.endswith(
                    "companies") else co)
                self.assertEqual(status, 201, answer)

            def outside_through_b(minute):
                status, answer = b.request("POST", "/v1/positions", {"positions": [{
                    "event_id": str(uuid.uuid4()), "vehicle": "V-2R",
                    "at": at(minutes_ago(30), 60 * minute), "lat": INSIDE[0],
                    "lon": INSIDE[1]}]}, courier)
                self.assertEqual(status, 200, answer)
                status, track = b.request("GET", "/v1/vehicles/V-2R/positions", token=co)
                return [p["outside"] for p in track["positions"]][-1]

            self.assertFalse(outside_through_b(1))
            moved = {"type": "Polygon", "coordinates": [[
                [117.38, 39.88], [117.42, 39.88], [117.42, 39.92], [117.38, 39.92],
                [117.38, 39.88]]]}
            status, answer = a.request("PUT", "/v1/areas/AREA-2R", {
                "company_id": "CO-2R", "name": "R", "geometry": moved}, co)
            self.assertEqual(status, 200, answer)
            self.assertTrue(outside_through_b(2))
        finally:
            for reg in (b, a):
                if reg.running:
                    reg.stop()
            b.cleanup()
            a.cleanup()


class RetentionTest(unittest.TestCase):
    """Positions and alerts past position_retention_days are deleted at start."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pingma-sv-")
        self.reg = Registry(BINARY)
        self.admin = self.reg.token("admin", "root")
        self.co = self.reg.token("company", "CO-R")
        self.courier = self.reg.token("courier", "CR-R")
        self.regulator = self.reg.token("regulator", "SAMR")

    def tearDown(self):
        self.reg.stop_and_remove(self.tmp)

    def start(self, **policy):
        path = os.path.join(self.tmp, "policy.json")
        with open(path, "w") as f:
            json.dump(policy, f)
        self.reg.start(extra_args=("--policy", path))

    def request(self, method, path, body=None, token=None, expect=(200, 201)):
        status, answer = self.reg.request(method, path, body=body, token=token)
        self.assertIn(status, expect, answer)
        return answer

    def test_positions_past_retention_deleted(self):
        self.start()
        far = iso(today_shanghai() + timedelta(days=400))
        self.request("POST", "/v1/companies", {"id": "CO-R", "name": "R", "filling_license": {
            "number": "L", "valid_until": far}}, self.admin)
        self.request("PUT", "/v1/areas/AREA-R", {"company_id": "CO-R", "name": "R",
                                                  "geometry": AREA_N}, self.co)
        self.request("POST", "/v1/vehicles", {"id": "V-R", "company_id": "CO-R",
                                              "plate": "豫NR0001"}, self.co)
        self.request("POST", "/v1/couriers", {"id": "CR-R", "company_id": "CO-R", "name": "R",
                                              "vehicle": "V-R", "zones": ["AREA-R"]}, self.co)
        old, recent = minutes_ago(11 * 24 * 60), minutes_ago(9 * 24 * 60)
        for base in (old, recent):
            # Inside, then outside for 7 minutes: an alert each time.
            self.request("POST", "/v1/positions", {"positions": [
                {"event_id": str(uuid.uuid4()), "vehicle": "V-R", "at": at(base, 60 * m),
                 "lat": (OUTSIDE if m else INSIDE)[0], "lon": (OUTSIDE if m else INSIDE)[1]}
                for m in range(8)]}, self.courier)
        track = "/v1/vehicles/V-R/positions?from=%s" % at(old, -1)
        self.assertEqual(len(self.request("GET", track, token=self.co)["positions"]), 16)
        self.assertEqual(len(self.request("GET", "/v1/alerts", token=self.regulator)["alerts"]),
                         2)
        self.reg.stop()
        self.start(position_retention_days=10)
        kept = self.request("GET", track, token=self.co)["positions"]
        self.assertEqual(len(kept), 8)
        self.assertTrue(all(p["at"] >= at(recent, -1) for p in kept), kept)
        alerts = self.request("GET", "/v1/alerts", token=self.regulator)["alerts"]
        self.assertEqual(len(alerts), 1, alerts)


if __name__ == "__main__":
    BINARY = take_binary_argument()
    unittest.main(verbosity=2)
