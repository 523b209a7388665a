"""Process-level tests of the pingma-registry HTTP API (API.md, DOMAIN.md).

Run: python3 registry_api_test.py /path/to/pingma-registry [unittest args]
     (or PINGMA_REGISTRY=/path/to/pingma-registry python3 registry_api_test.py)

One server is started for the class, on 127.0.0.1:0, with a fresh database in a
temporary directory. Every test builds its own cylinders (codes "TQ...") so that the
tests do not depend on each other; test_99 stops the server and checks the event hash
chain with `pingma-registry verify`, then corrupts it. Dates are built relative to
"today" in Asia/Shanghai (UTC+8), where the rules are evaluated.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
import uuid
from datetime import datetime, timedelta

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from registry_harness import (Registry, add_months, add_years, iso, last_day, now_rfc3339,
                              q, take_binary_argument, today_shanghai,
                              wait_past_shanghai_midnight, year_month, ym_text)

BINARY = None  # set in __main__

REASON_CODES = {
    "UNKNOWN_CODE", "NOT_OWNED", "INSPECTION_OVERDUE", "INSPECTION_FAILED",
    "SERVICE_LIFE_EXCEEDED", "ASSESSMENT_FAILED", "DUAL_PHASE_BANNED", "RECALLED",
    "SCRAP_PENDING",
    "SCRAPPED", "DEFECT_FOUND", "TARE_MISMATCH", "CLONE_SUSPECTED",
    "STATION_LICENSE_INVALID", "OPERATOR_NOT_CERTIFIED",
}
EVENT_TYPES = {
    "registered", "carrier_bound", "fill_check", "fill", "inspection", "assessment",
    "flagged_for_scrap", "scrapped", "violation",
}
SCRAP_CLASS_DEFECTS = ["fire_damage", "crack_or_bulge", "threaded_shroud", "refurbished",
                       "stamp_illegible"]
OTHER_DEFECTS = ["dent", "corrosion", "valve_fault", "shroud_loose",
                 "no_residual_pressure"]
MANUFACTURER = "Hebei Example Cylinder Co."


def company_set_up(tag, name, valid_until):
    """The set-up calls for company CO-<tag> with station ST-<tag> and operator
    OP-<tag>, every field of API.md given: [(path, body), ...]."""
    company = "CO-" + tag
    return [
        ("/v1/companies", {"id": company, "name": name + " Gas", "filling_license": {
            "number": "TS-" + tag, "valid_until": valid_until}}),
        ("/v1/stations", {"id": "ST-" + tag, "company_id": company, "name": name,
                          "district": "Xiayi"}),
        ("/v1/operators", {"id": "OP-" + tag, "company_id": company, "name": name,
                           "certificate": {"number": "C-" + tag, "valid_until": valid_until}}),
    ]


def codes_of(reasons):
    """Reason codes from a list of {code, message} objects or of plain codes."""
    out = []
    for r in reasons or []:
        out.append(r.get("code") if isinstance(r, dict) else r)
    return out


class RegistryApiTest(unittest.TestCase):
    maxDiff = 4000
    reg = None

    # ------------------------------------------------------------------ world

    @classmethod
    def setUpClass(cls):
        wait_past_shanghai_midnight()
        cls.today = today_shanghai()
        cls.yesterday = cls.today - timedelta(days=1)
        cls.tomorrow = cls.today + timedelta(days=1)
        cls.far = cls.today + timedelta(days=365)
        cls._counter = 0
        cls._lock = threading.Lock()
        cls.reg = Registry(BINARY)
        try:
            cls._build_world()
        except BaseException:
            cls.reg.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.reg is not None:
            try:
                if cls.reg.running:
                    cls.reg.stop()
            finally:
                cls.reg.cleanup()

    @classmethod
    def _build_world(cls):
        reg, t = cls.reg, cls.today
        # The world's tokens are created before serve; test_98 adds some while it runs.
        cls.admin = reg.token("admin", "root")
        cls.regulator = reg.token("regulator", "SAMR-CITY")
        cls.inspector = reg.token("inspector", "AG-1")
        cls.courier = reg.token("courier", "CR-1")
        cls.company_tokens = {c: reg.token("company", c)
                              for c in ("CO-A", "CO-B", "CO-BIG", "CO-F")}
        cls.station_tokens = {}
        cls.stations = {"ST-A1": "CO-A", "ST-A2": "CO-A", "ST-LK": "CO-A",
                        "ST-B1": "CO-B", "ST-LX": "CO-LX", "ST-LT": "CO-LT",
                        "ST-RV": "CO-RV", "ST-F1": "CO-F"}
        for sid in list(cls.stations) + ["ST-F9"]:
            cls.station_tokens[sid] = reg.token("station", sid)
        reg.start()

        cls.companies = {
            "CO-A": iso(cls.far), "CO-B": iso(cls.far), "CO-BIG": iso(cls.far),
            "CO-LX": iso(cls.yesterday), "CO-LT": iso(t), "CO-RV": iso(cls.far),
            "CO-O1": iso(cls.far), "CO-O2": iso(cls.far), "CO-O3": iso(cls.far),
            "CO-O4": iso(cls.far), "CO-F": iso(cls.far), "CO-FO": iso(cls.far),
            "CO-FT": iso(cls.far),
        }
        for cid, valid_until in cls.companies.items():
            status, body = reg.request("POST", "/v1/companies", token=cls.admin, body={
                "id": cid, "name": "Company " + cid,
                "filling_license": {"number": "TS-" + cid, "valid_until": valid_until}})
            assert status == 201, "POST /v1/companies %s -> %s %r" % (cid, status, body)

        for sid, cid in cls.stations.items():
            status, body = reg.request("POST", "/v1/stations", token=cls.admin, body={
                "id": sid, "company_id": cid, "name": "Station " + sid,
                "district": "Xinhua"})
            assert status == 201, "POST /v1/stations %s -> %s %r" % (sid, status, body)

        operators = {"OP-A": ("CO-A", cls.far), "OP-A-EXP": ("CO-A", cls.yesterday),
                     "OP-A-TODAY": ("CO-A", t), "OP-B": ("CO-B", cls.far),
                     "OP-LX": ("CO-LX", cls.far), "OP-LT": ("CO-LT", cls.far),
                     "OP-RV": ("CO-RV", cls.far), "OP-F": ("CO-F", cls.far)}
        for oid, (cid, valid_until) in operators.items():
            status, body = reg.request("POST", "/v1/operators", token=cls.admin, body={
                "id": oid, "company_id": cid, "name": "Operator " + oid,
                "certificate": {"number": "CERT-" + oid, "valid_until": iso(valid_until)}})
            assert status == 201, "POST /v1/operators %s -> %s %r" % (oid, status, body)
        cls.default_operator = {"ST-A1": "OP-A", "ST-A2": "OP-A", "ST-LK": "OP-A",
                                "ST-B1": "OP-B", "ST-LX": "OP-LX", "ST-LT": "OP-LT",
                                "ST-RV": "OP-RV", "ST-F1": "OP-F"}

    # ---------------------------------------------------------------- helpers

    def new_code(self, tag="C"):
        with self._lock:
            type(self)._counter += 1
            n = type(self)._counter
        return "TQ%s%05d" % (tag, n)

    def cylinder_body(self, code, **over):
        t = self.today
        body = {
            "code": code, "model": "YSP35.5", "phase": "gas",
            "manufacturer": MANUFACTURER, "serial": "S-" + code,
            "manufactured": year_month(add_years(t, -2)), "tare_kg": 16.4,
            "allowed_fill_kg": 14.9, "design_life_years": 8,
            "registration_no": "REG-" + code,
            "last_inspection": iso(add_years(t, -2)),
            "next_inspection_due": iso(add_years(t, 2)),
        }
        for k, v in over.items():
            if v is None:
                body.pop(k, None)
            else:
                body[k] = v
        return body

    def register(self, owner="CO-A", tag="C", **over):
        """Registers a fresh cylinder (company token; admin with owner_company_id
        for companies without a token); returns its code."""
        code = over.pop("code", None) or self.new_code(tag)
        body = self.cylinder_body(code, **over)
        token = self.company_tokens.get(owner)
        if token is None:
            token = self.admin
            body["owner_company_id"] = owner
        status, answer = self.reg.request("POST", "/v1/cylinders", body=body, token=token)
        self.assertEqual(status, 201, "POST /v1/cylinders %r -> %s %r"
                         % (body, status, answer))
        return code

    def get_cylinder(self, code, token=None):
        status, body = self.reg.request("GET", "/v1/cylinders/" + q(code),
                                        token=token or self.regulator)
        self.assertEqual(status, 200, "GET /v1/cylinders/%s -> %s %r" % (code, status, body))
        return body

    def history(self, code, token=None):
        """All events of a cylinder, oldest first (follows next_cursor)."""
        events, cursor = [], None
        for _ in range(1000):
            path = "/v1/cylinders/%s/history?limit=500" % q(code)
            if cursor:
                path += "&cursor=" + q(str(cursor))
            status, body = self.reg.request("GET", path, token=token or self.regulator)
            self.assertEqual(status, 200, "GET %s -> %s %r" % (path, status, body))
            page = body.get("events")
            self.assertIsInstance(page, list, "history answer has no events list: %r" % body)
            events.extend(page)
            cursor = body.get("next_cursor")
            if not cursor or not page:
                return events
        self.fail("history of %s never ended" % code)

    def types_of(self, events):
        return [e.get("type") for e in events]

    def assertErrorBody(self, status, body, expected, what):
        expected = (expected,) if isinstance(expected, int) else tuple(expected)
        self.assertIn(status, expected, "%s: expected HTTP %s, got %s %r"
                      % (what, "/".join(map(str, expected)), status, body))
        self.assertIsInstance(body, dict, "%s: error body is not a JSON object: %r"
                              % (what, body))
        err = body.get("error")
        self.assertIsInstance(err, dict, "%s: no {\"error\": {...}} in %r" % (what, body))
        for key in ("code", "message"):
            self.assertIsInstance(err.get(key), str, "%s: error.%s missing: %r"
                                  % (what, key, body))
            self.assertTrue(err.get(key).strip(), "%s: error.%s empty: %r"
                            % (what, key, body))
        return err

    def check(self, station="ST-A1", code=None, scan=None, operator=None, token=None,
              **extra):
        """POST /v1/fill-checks; asserts 200 and the answer's shape; returns it."""
        body = {"station_id": station,
                "operator_id": operator or self.default_operator.get(station, "OP-A")}
        if scan is not None:
            body["scan"] = scan
        else:
            body["code"] = code
        body.update(extra)
        status, answer = self.reg.request("POST", "/v1/fill-checks", body=body,
                                          token=token or self.station_tokens[station])
        what = "POST /v1/fill-checks %r" % body
        self.assertEqual(status, 200, "%s -> %s %r" % (what, status, answer))
        self.assertIsInstance(answer, dict, what)
        self.assertIsInstance(answer.get("check_id"), (str, int), "%s: check_id %r"
                              % (what, answer))
        self.assertTrue(str(answer["check_id"]), "%s: empty check_id" % what)
        self.assertIn(answer.get("decision"), ("allow", "block"), "%s: %r" % (what, answer))
        reasons = answer.get("reasons")
        self.assertIsInstance(reasons, list, "%s: reasons %r" % (what, answer))
        for r in reasons:
            self.assertIsInstance(r, dict, "%s: reason not an object: %r" % (what, r))
            self.assertIn(r.get("code"), REASON_CODES, "%s: unknown reason %r" % (what, r))
            self.assertIsInstance(r.get("message"), str, "%s: reason message %r" % (what, r))
            self.assertTrue(r["message"].strip(), "%s: empty reason message %r" % (what, r))
        self.assertEqual(answer["decision"] == "allow", not reasons,
                         "%s: decision must be allow exactly when reasons is empty: %r"
                         % (what, answer))
        self.assertIsInstance(answer.get("flagged_for_scrap"), bool,
                              "%s: flagged_for_scrap %r" % (what, answer))
        if answer["decision"] == "allow":
            fill = answer.get("fill")
            self.assertIsInstance(fill, dict, "%s: allow without fill: %r" % (what, answer))
            for k in ("tare_kg", "min_kg", "max_kg", "target_kg"):
                self.assertIsInstance(fill.get(k), (int, float), "%s: fill.%s %r"
                                      % (what, k, answer))
            self.assertIsInstance(answer.get("cylinder"), dict, what)
        else:
            self.assertIsNone(answer.get("fill"), "%s: fill present on a block: %r"
                              % (what, answer))
        return answer

    def assertAllowed(self, answer, what):
        self.assertEqual(answer["decision"], "allow", "%s: expected allow, got %r"
                         % (what, answer))
        self.assertEqual(answer["reasons"], [], what)

    def assertBlocked(self, answer, expected, what, exact=True):
        """exact: reasons are exactly `expected` (order-free); else include them."""
        got = codes_of(answer["reasons"])
        self.assertEqual(answer["decision"], "block", "%s: expected block %s, got %r"
                         % (what, expected, answer))
        if exact:
            self.assertEqual(sorted(got), sorted(expected), "%s: reasons %r" % (what, answer))
        else:
            for code in expected:
                self.assertIn(code, got, "%s: %s missing from %r" % (what, code, answer))

    def scrap_queue(self, token):
        """The whole queue, read in pages of two (so that every caller pages)."""
        entries, cursor, pages = [], None, 0
        while True:
            path = "/v1/scrap-queue?limit=2" + ("&cursor=" + q(cursor) if cursor else "")
            status, body = self.reg.request("GET", path, token=token)
            self.assertEqual(status, 200, "GET %s -> %s %r" % (path, status, body))
            self.assertIsInstance(body.get("cylinders"), list, "scrap-queue: %r" % body)
            self.assertLessEqual(len(body["cylinders"]), 2, body)
            entries += body["cylinders"]
            cursor, pages = body.get("next_cursor"), pages + 1
            self.assertLess(pages, 10000, "the scrap queue's pages never end")
            if not cursor:
                break
        codes = [e["code"] for e in entries]
        self.assertEqual(len(codes), len(set(codes)), "a code on two pages: %r" % codes)
        order = [(e["since"], e["code"]) for e in entries]
        self.assertEqual(order, sorted(order), "the queue is not oldest first: %r" % order)
        out = {}
        for e in entries:
            for k in ("code", "owner_company_id", "reason", "since"):
                self.assertIn(k, e, "scrap-queue entry without %s: %r" % (k, e))
            self.assertTrue(e["reason"], "scrap-queue entry with empty reason: %r" % e)
            self.assertTrue(e["since"], "scrap-queue entry with empty since: %r" % e)
            out[e["code"]] = e
        return out

    def inspect(self, code, result, **extra):
        body = {"code": code, "date": iso(self.today), "result": result,
                "report_no": "RPT-" + code + "-" + result}
        body.update(extra)
        status, answer = self.reg.request("POST", "/v1/inspections", body=body,
                                          token=self.inspector)
        self.assertIn(status, (200, 201), "POST /v1/inspections %r -> %s %r"
                      % (body, status, answer))
        return answer

    def flag_by_failed_inspection(self, code):
        self.inspect(code, "fail")
        self.assertEqual(self.get_cylinder(code)["state"], "scrap_pending",
                         "a failed inspection must flag %s for scrapping" % code)

    def scrap(self, code):
        body = {"date": iso(self.today), "method": "drilled",
                "certificate_no": "SCRAP-" + code}
        status, answer = self.reg.request("POST", "/v1/cylinders/%s/scrap" % q(code),
                                          body=body, token=self.inspector)
        self.assertIn(status, (200, 201), "POST /v1/cylinders/%s/scrap -> %s %r"
                      % (code, status, answer))

    def fill_body(self, code, check_id=None, station="ST-A1", event_id=None, **extra):
        body = {"event_id": event_id or str(uuid.uuid4()), "code": code,
                "station_id": station,
                "operator_id": self.default_operator.get(station, "OP-A"),
                "scale_id": "S1", "started_at": now_rfc3339(-60),
                "ended_at": now_rfc3339(), "tare_kg": 16.4, "gross_before_kg": 16.9,
                "gross_after_kg": 31.4, "net_kg": 14.5, "residual_kg": 0.5,
                "result": "ok", "post_checks": {"leak_test": "pass", "reweigh": "pass"}}
        if check_id is not None:
            body["check_id"] = check_id
        body.update(extra)
        return body

    def post_fill(self, body, station=None):
        return self.reg.request("POST", "/v1/fills", body=body,
                                token=self.station_tokens[station or body["station_id"]])

    def fill_after_allowed_check(self, **fields):
        """Registers a cylinder, checks it at ST-A1 (allowed) and posts a fill record
        for it with `fields` changed; returns (code, body, status, answer)."""
        code = self.register("CO-A")
        check = self.check("ST-A1", code)
        self.assertAllowed(check, "cylinder for the fill %r" % (fields,))
        body = self.fill_body(code, check["check_id"], **fields)
        status, answer = self.post_fill(body)
        return code, body, status, answer

    # =================================================================== 1. set-up

    def test_01_setup(self):
        # Companies, stations and operators were made by the admin in setUpClass;
        # companies register cylinders, stations check them.
        a = self.register("CO-A")
        b = self.register("CO-B")
        self.assertEqual(self.get_cylinder(a)["owner_company_id"], "CO-A")
        self.assertEqual(self.get_cylinder(b)["owner_company_id"], "CO-B")
        self.assertAllowed(self.check("ST-A1", a), "ST-A1 checks CO-A's " + a)
        self.assertAllowed(self.check("ST-B1", b), "ST-B1 checks CO-B's " + b)
        # A company sets up its own station and operator.
        status, body = self.reg.request("POST", "/v1/stations",
                                        token=self.company_tokens["CO-F"], body={
                                            "id": "ST-F9", "company_id": "CO-F",
                                            "name": "Own station", "district": "Liangyuan"})
        self.assertEqual(status, 201, "company POST /v1/stations for itself: %s %r"
                         % (status, body))
        status, body = self.reg.request("POST", "/v1/operators",
                                        token=self.company_tokens["CO-F"], body={
                                            "id": "OP-F9", "company_id": "CO-F",
                                            "name": "Own operator", "certificate": {
                                                "number": "C-F9",
                                                "valid_until": iso(self.far)}})
        self.assertEqual(status, 201, "company POST /v1/operators for itself: %s %r"
                         % (status, body))
        f = self.register("CO-F")
        self.assertAllowed(self.check("ST-F9", f, operator="OP-F9"),
                           "company-made station ST-F9 checks " + f)
        # A company id is registered once.
        status, body = self.reg.request("POST", "/v1/companies", token=self.admin, body={
            "id": "CO-A", "name": "again", "filling_license": {
                "number": "X", "valid_until": iso(self.far)}})
        self.assertErrorBody(status, body, 409, "POST /v1/companies with an existing id")

    # ============================================================ 2. allow shape

    def test_02_fill_check_allow_shape(self):
        code = self.register("CO-A")
        answer = self.check("ST-A1", code, empty_gross_kg=16.9, defects=[])
        self.assertAllowed(answer, "healthy YSP35.5")
        self.assertIs(answer["flagged_for_scrap"], False)
        cyl = answer["cylinder"]
        for key in ("code", "model", "owner_company_id", "next_inspection_due", "state"):
            self.assertIn(key, cyl, "cylinder.%s missing from %r" % (key, answer))
        self.assertEqual(cyl["code"], code)
        self.assertEqual(cyl["model"], "YSP35.5")
        self.assertEqual(cyl["owner_company_id"], "CO-A")
        self.assertEqual(cyl["next_inspection_due"], iso(add_years(self.today, 2)))
        self.assertEqual(cyl["state"], "active")
        fill = answer["fill"]
        self.assertAlmostEqual(fill["tare_kg"], 16.4, places=6, msg=repr(fill))
        self.assertAlmostEqual(fill["min_kg"], 14.1, places=6, msg=repr(fill))
        self.assertAlmostEqual(fill["max_kg"], 14.9, places=6, msg=repr(fill))
        self.assertAlmostEqual(fill["target_kg"], 14.5, places=6, msg=repr(fill))
        # The record as stored, with its computed fields.
        rec = self.get_cylinder(code)
        for key, value in self.cylinder_body(code).items():
            self.assertIn(key, rec, "GET /v1/cylinders/%s lacks %s: %r" % (code, key, rec))
            self.assertEqual(rec[key], value, "GET field %s as registered: %r" % (key, rec))
        self.assertEqual(rec["code"], code)
        self.assertEqual(rec["state"], "active")
        self.assertIs(rec["fillable"], True, repr(rec))
        self.assertEqual(rec["reasons"], [], repr(rec))
        self.assertIn("service_life_end", rec, repr(rec))
        self.assertIn("carriers", rec, repr(rec))
        # The check is in the history, with its decision.
        checks = [e for e in self.history(code) if e.get("type") == "fill_check"]
        self.assertEqual(len(checks), 1, "one fill_check event expected: %r" % checks)
        self.assertEqual(checks[0].get("decision"), "allow", repr(checks[0]))
        self.assertEqual(codes_of(checks[0].get("reasons")), [], repr(checks[0]))

    # ========================================================= 3. reason codes

    def test_03a_unknown_code(self):
        code = self.new_code("UNK")
        answer = self.check("ST-A1", code)
        self.assertBlocked(answer, ["UNKNOWN_CODE"], "check of unregistered " + code,
                           exact=False)
        self.assertIn("cylinder", answer, "cylinder must be present (null): %r" % answer)
        self.assertIsNone(answer["cylinder"], "cylinder must be null for %r" % answer)
        # A check does not register anything ...
        status, body = self.reg.request("GET", "/v1/cylinders/" + code, token=self.regulator)
        self.assertErrorBody(status, body, 404, "GET an unknown code after its check")
        # ... but the regulator sees the refused check in the code's history.
        status, body = self.reg.request("GET", "/v1/cylinders/%s/history" % code,
                                        token=self.regulator)
        self.assertEqual(status, 200, "regulator GET history of the checked unknown code: "
                         "%s %r" % (status, body))
        checks = [e for e in body.get("events", []) if e.get("type") == "fill_check"]
        self.assertEqual(len(checks), 1, "the unknown-code check is kept: %r" % body)
        self.assertEqual(checks[0].get("decision"), "block", repr(checks[0]))
        self.assertIn("UNKNOWN_CODE", codes_of(checks[0].get("reasons")), repr(checks[0]))

    def test_03b_not_owned_and_custody_boundaries(self):
        t = self.today
        own = self.register("CO-A")
        self.assertBlocked(self.check("ST-B1", own), ["NOT_OWNED"],
                           "CO-B's station checks CO-A's cylinder, no custody")
        cases = [  # owner, (valid_from, valid_until), allowed?
            ("CO-O1", (t - timedelta(days=30), self.yesterday), False),  # ended yesterday
            ("CO-O2", (t, t + timedelta(days=30)), True),                # starts today
            ("CO-O3", (t - timedelta(days=30), t), True),                # ends today
            ("CO-O4", (self.tomorrow, t + timedelta(days=30)), False),   # starts tomorrow
        ]
        for owner, (frm, until), allowed in cases:
            status, body = self.reg.request("POST", "/v1/custody", token=self.admin, body={
                "owner_company_id": owner, "custodian_company_id": "CO-B",
                "valid_from": iso(frm), "valid_until": iso(until)})
            self.assertEqual(status, 201, "POST /v1/custody %s->CO-B: %s %r"
                             % (owner, status, body))
        for owner, (frm, until), allowed in cases:
            with self.subTest(owner=owner, valid_from=iso(frm), valid_until=iso(until)):
                code = self.register(owner)
                answer = self.check("ST-B1", code)
                what = "custody %s..%s, today %s" % (iso(frm), iso(until), iso(t))
                if allowed:
                    self.assertAllowed(answer, what)
                else:
                    self.assertBlocked(answer, ["NOT_OWNED"], what)

    def test_03c_inspection_overdue_boundary(self):
        for due, allowed in ((self.yesterday, False), (self.today, True),
                             (self.tomorrow, True)):
            with self.subTest(next_inspection_due=iso(due)):
                code = self.register("CO-A", next_inspection_due=iso(due))
                answer = self.check("ST-A1", code)
                rec = self.get_cylinder(code)
                what = "next_inspection_due %s, today %s" % (iso(due), iso(self.today))
                self.assertEqual(rec["next_inspection_due"], iso(due), repr(rec))
                if allowed:
                    self.assertAllowed(answer, what)
                    self.assertIs(rec["fillable"], True, "%s: GET %r" % (what, rec))
                else:
                    self.assertBlocked(answer, ["INSPECTION_OVERDUE"], what)
                    self.assertIs(answer["flagged_for_scrap"], False, what)
                    self.assertIs(rec["fillable"], False, "%s: GET %r" % (what, rec))
                    self.assertIn("INSPECTION_OVERDUE", codes_of(rec["reasons"]),
                                  "%s: GET %r" % (what, rec))
                    self.assertEqual(rec["state"], "active", "overdue does not flag: %r" % rec)

    def test_03d_next_inspection_due_computed(self):
        # From the last inspection: + 4 years for YSP35.5.
        code = self.register("CO-A", last_inspection="2023-01-15", next_inspection_due=None)
        self.assertEqual(self.get_cylinder(code)["next_inspection_due"], "2027-01-15",
                         "last inspection 2023-01-15 + 4 years")
        # From the manufacture month: its last day + 4 years.
        code = self.register("CO-A", manufactured="2023-01", last_inspection=None,
                             next_inspection_due=None)
        self.assertEqual(self.get_cylinder(code)["next_inspection_due"], "2027-01-31",
                         "manufactured 2023-01 + 4 years")
        # YSP118: 3 years.
        code = self.register("CO-A", model="YSP118", tare_kg=48.0, allowed_fill_kg=49.5,
                             last_inspection="2023-01-15", next_inspection_due=None)
        self.assertEqual(self.get_cylinder(code)["next_inspection_due"], "2026-01-15",
                         "YSP118 last inspection 2023-01-15 + 3 years")
        # Computed due, at the boundary: last inspection exactly 4 years before
        # yesterday (overdue) and before today (valid through the due date).
        for due, allowed in ((self.yesterday, False), (self.today, True)):
            with self.subTest(computed_due=iso(due)):
                code = self.register("CO-A", last_inspection=iso(add_years(due, -4)),
                                     manufactured=year_month(add_years(due, -5)),
                                     next_inspection_due=None)
                answer = self.check("ST-A1", code)
                if allowed:
                    self.assertAllowed(answer, "computed due " + iso(due))
                else:
                    self.assertBlocked(answer, ["INSPECTION_OVERDUE"],
                                       "computed due " + iso(due))

    def test_03e_inspection_failed_flags_for_scrap(self):
        code = self.register("CO-A")
        self.flag_by_failed_inspection(code)
        queue = self.scrap_queue(self.inspector)
        self.assertIn(code, queue, "a failed inspection puts %s in the scrap queue" % code)
        self.assertEqual(queue[code]["owner_company_id"], "CO-A")
        answer = self.check("ST-A1", code)
        self.assertBlocked(answer, ["INSPECTION_FAILED", "SCRAP_PENDING"],
                           "after a failed inspection", exact=False)
        types = self.types_of(self.history(code))
        self.assertIn("inspection", types, repr(types))
        self.assertIn("flagged_for_scrap", types, repr(types))

    def test_03f_inspection_pass_renews_due(self):
        code = self.register("CO-A", next_inspection_due=iso(self.yesterday))
        self.assertBlocked(self.check("ST-A1", code), ["INSPECTION_OVERDUE"], "overdue")
        new_due = add_years(self.today, 4)
        self.inspect(code, "pass", next_due=iso(new_due))
        self.assertEqual(self.get_cylinder(code)["next_inspection_due"], iso(new_due))
        self.assertAllowed(self.check("ST-A1", code), "after a passed inspection")

    def test_03g_service_life_boundary(self):
        # design life 8 years from the manufacture month's last day: made 8 years
        # before this month -> ends this month's last day (>= today, allowed); one
        # month earlier -> ended last month (on the 1st that is yesterday).
        y, m = self.today.year - 8, self.today.month
        py, pm = add_months(y, m, -1)
        for (yy, mm), allowed in (((py, pm), False), ((y, m), True)):
            with self.subTest(manufactured=ym_text(yy, mm)):
                code = self.register("CO-A", manufactured=ym_text(yy, mm),
                                     design_life_years=8,
                                     last_inspection=iso(self.today - timedelta(days=100)),
                                     next_inspection_due=iso(self.far))
                rec = self.get_cylinder(code)
                end = last_day(*add_months(yy, mm, 96))
                self.assertEqual(rec["service_life_end"], iso(end),
                                 "manufactured %s + 8 years: %r" % (ym_text(yy, mm), rec))
                answer = self.check("ST-A1", code)
                what = "service life ends %s, today %s" % (iso(end), iso(self.today))
                if allowed:
                    self.assertAllowed(answer, what)
                else:
                    self.assertBlocked(answer, ["SERVICE_LIFE_EXCEEDED"], what)
                    self.assertIs(answer["flagged_for_scrap"], True, what)
                    self.assertEqual(self.get_cylinder(code)["state"], "scrap_pending", what)

    def test_03h_assessment_extends_service_life(self):
        y, m = add_months(self.today.year - 8, self.today.month, -1)
        code = self.register("CO-A", manufactured=ym_text(y, m), design_life_years=8,
                             next_inspection_due=iso(self.far))
        self.assertIs(self.get_cylinder(code)["fillable"], False,
                      "life ended last month: not fillable")
        until = self.today + timedelta(days=200)
        status, body = self.reg.request("POST", "/v1/assessments", token=self.inspector,
                                        body={"code": code, "date": iso(self.today),
                                              "result": "pass",
                                              "extends_until": iso(until)})
        self.assertIn(status, (200, 201), "POST /v1/assessments: %s %r" % (status, body))
        rec = self.get_cylinder(code)
        self.assertEqual(rec["service_life_end"], iso(until), repr(rec))
        self.assertAllowed(self.check("ST-A1", code), "after a passed safety assessment")
        self.assertIn("assessment", self.types_of(self.history(code)))

    def test_03h2_failed_assessment_flags_with_its_own_reason(self):
        # The life runs for years yet: a failed assessment is its own reason to scrap,
        # not SERVICE_LIFE_EXCEEDED.
        code = self.register("CO-A", next_inspection_due=iso(self.far))
        status, body = self.reg.request("POST", "/v1/assessments", token=self.inspector,
                                        body={"code": code, "date": iso(self.today),
                                              "result": "fail"})
        self.assertIn(status, (200, 201), "POST /v1/assessments: %s %r" % (status, body))
        self.assertIs(body.get("flagged_for_scrap"), True, repr(body))
        rec = self.get_cylinder(code)
        self.assertEqual(rec["state"], "scrap_pending", repr(rec))
        self.assertEqual(rec.get("state_reason"), "ASSESSMENT_FAILED", repr(rec))
        self.assertIn("ASSESSMENT_FAILED", codes_of(rec["reasons"]), repr(rec))
        self.assertNotIn("SERVICE_LIFE_EXCEEDED", codes_of(rec["reasons"]), repr(rec))
        self.assertEqual(self.scrap_queue(self.regulator).get(code, {}).get("reason"),
                         "ASSESSMENT_FAILED")
        self.assertBlocked(self.check("ST-A1", code), ["ASSESSMENT_FAILED", "SCRAP_PENDING"],
                           "after a failed safety assessment")

    def test_03i_dual_phase_banned(self):
        code = self.register("CO-A", model="YSP118-II", phase=None, tare_kg=48.0,
                             allowed_fill_kg=49.5)
        self.assertEqual(self.get_cylinder(code)["phase"], "dual",
                         "YSP118-II defaults to phase dual")
        answer = self.check("ST-A1", code)
        self.assertBlocked(answer, ["DUAL_PHASE_BANNED"], "YSP118-II")
        self.assertIs(answer["flagged_for_scrap"], True, "dual phase flags for scrap")
        self.assertEqual(self.get_cylinder(code)["state"], "scrap_pending")
        self.assertIn(code, self.scrap_queue(self.regulator))

    def test_03j_recalled(self):
        batch = "Recall Works Batch Ltd."
        whole = "Recall Works Whole Ltd."
        for body in ({"manufacturer": batch, "manufactured_from": "2021-03",
                      "manufactured_to": "2021-08", "reason": "weld defect"},
                     {"manufacturer": whole, "reason": "blacklisted"}):
            status, answer = self.reg.request("POST", "/v1/recalls", body=body,
                                              token=self.regulator)
            self.assertEqual(status, 201, "POST /v1/recalls %r: %s %r" % (body, status, answer))
        for manufacturer, made, recalled in ((batch, "2021-02", False),
                                             (batch, "2021-03", True),
                                             (batch, "2021-08", True),
                                             (batch, "2021-09", False),
                                             (whole, "2024-05", True)):
            with self.subTest(manufacturer=manufacturer, manufactured=made):
                code = self.register("CO-A", manufacturer=manufacturer, manufactured=made,
                                     next_inspection_due=iso(self.far))
                answer = self.check("ST-A1", code)
                what = "%s made %s" % (manufacturer, made)
                if recalled:
                    self.assertBlocked(answer, ["RECALLED"], what)
                    self.assertIs(answer["flagged_for_scrap"], True, what)
                else:
                    self.assertAllowed(answer, what)

    def test_03k_scrap_pending(self):
        code = self.register("CO-A", model="YSP118-II", phase=None, tare_kg=48.0,
                             allowed_fill_kg=49.5)
        self.check("ST-A1", code)  # flags it
        answer = self.check("ST-A1", code)
        self.assertBlocked(answer, ["SCRAP_PENDING", "DUAL_PHASE_BANNED"],
                           "second check of a flagged cylinder", exact=False)
        rec = self.get_cylinder(code)
        self.assertEqual(rec["state"], "scrap_pending")
        self.assertIn("SCRAP_PENDING", codes_of(rec["reasons"]), repr(rec))
        self.assertIn("flagged_for_scrap", self.types_of(self.history(code)))

    def test_03k2_scrap_queue_paging_and_bad_cursor(self):
        codes = [self.register("CO-A") for _ in range(3)]
        for code in codes:
            self.flag_by_failed_inspection(code)
        queue = self.scrap_queue(self.regulator)  # pages of two, checked there
        for code in codes:
            self.assertIn(code, queue)
        status, body = self.reg.request("GET", "/v1/scrap-queue?limit=1", token=self.regulator)
        self.assertEqual(status, 200, body)
        self.assertEqual(len(body["cylinders"]), 1, body)
        self.assertIsNotNone(body["next_cursor"], body)
        for bad in ("limit=0", "limit=x", "cursor=nocolon", "cursor=12:", "cursor=-1:A",
                    "cursor=x:A"):
            status, body = self.reg.request("GET", "/v1/scrap-queue?" + bad,
                                            token=self.regulator)
            self.assertEqual(status, 400, "%s -> %s %r" % (bad, status, body))
            self.assertIn("error", body, bad)

    def test_03l_scrapped(self):
        code = self.register("CO-A")
        # Only a flagged cylinder is scrapped (active -> scrap_pending -> scrapped).
        status, answer = self.reg.request(
            "POST", "/v1/cylinders/%s/scrap" % q(code), token=self.inspector,
            body={"date": iso(self.today), "method": "drilled", "certificate_no": "S-" + code})
        self.assertErrorBody(status, answer, 409, "scrapping an active cylinder")
        self.assertEqual(self.get_cylinder(code)["state"], "active")
        self.assertNotIn("scrapped", self.types_of(self.history(code)))
        self.flag_by_failed_inspection(code)
        self.scrap(code)
        rec = self.get_cylinder(code)
        self.assertEqual(rec["state"], "scrapped", repr(rec))
        self.assertNotIn(code, self.scrap_queue(self.regulator),
                         "a scrapped cylinder leaves the scrap queue")
        self.assertBlocked(self.check("ST-A1", code), ["SCRAPPED"], "scrapped cylinder",
                           exact=False)
        self.assertIn("scrapped", self.types_of(self.history(code)))
        # Nothing leaves scrapped.
        status, _ = self.reg.request("POST", "/v1/inspections", token=self.inspector, body={
            "code": code, "date": iso(self.today), "result": "pass",
            "next_due": iso(self.far), "report_no": "LATE"})
        self.assertEqual(self.get_cylinder(code)["state"], "scrapped",
                         "a pass inspection (answered %s) must not revive a scrapped "
                         "cylinder" % status)

    def test_03l2_inspection_older_than_the_record(self):
        """The record keeps the latest inspection. One dated before it, entered late,
        is kept in the history (latest: false) without putting the due date back; a
        fail still flags the cylinder for scrapping. One of the same day or later
        replaces the record."""
        last = self.today - timedelta(days=10)
        due = add_years(last, 4)
        code = self.register("CO-A", last_inspection=iso(last), next_inspection_due=iso(due))
        before = self.get_cylinder(code)
        answer = self.inspect(code, "pass", date=iso(last - timedelta(days=1)),
                              next_due=iso(add_years(last, 1)))
        self.assertIs(answer.get("latest"), False, repr(answer))
        self.assertEqual(self.get_cylinder(code), before, "an older pass changes nothing")
        older = [e for e in self.history(code) if e.get("type") == "inspection"]
        self.assertEqual([(e["date"], e["latest"]) for e in older],
                         [(iso(last - timedelta(days=1)), False)], repr(older))
        answer = self.inspect(code, "pass", date=iso(last))
        self.assertIs(answer.get("latest"), True, "the same day: %r" % answer)
        rec = self.get_cylinder(code)
        self.assertEqual(rec["last_inspection"], iso(last), repr(rec))
        answer = self.inspect(code, "pass", date=iso(last + timedelta(days=1)),
                              next_due=iso(due))
        self.assertIs(answer.get("latest"), True, "the day after: %r" % answer)
        rec = self.get_cylinder(code)
        self.assertEqual((rec["last_inspection"], rec["next_inspection_due"], rec["state"]),
                         (iso(last + timedelta(days=1)), iso(due), "active"), repr(rec))
        # An older fail: the record keeps the newer pass and its due date, but the
        # cylinder failed an inspection and goes to scrapping.
        answer = self.inspect(code, "fail", date=iso(last - timedelta(days=30)))
        self.assertEqual((answer.get("latest"), answer.get("flagged_for_scrap")), (False, True),
                         repr(answer))
        rec = self.get_cylinder(code)
        self.assertEqual((rec["last_inspection"], rec["next_inspection_due"], rec["state"]),
                         (iso(last + timedelta(days=1)), iso(due), "scrap_pending"), repr(rec))
        self.assertEqual(self.scrap_queue(self.regulator)[code]["reason"], "INSPECTION_FAILED")

    def test_03m_defects(self):
        for defect in SCRAP_CLASS_DEFECTS:
            with self.subTest(defect=defect, scrap_class=True):
                code = self.register("CO-A")
                answer = self.check("ST-A1", code, defects=[defect])
                self.assertBlocked(answer, ["DEFECT_FOUND"], "defect " + defect, exact=False)
                self.assertIs(answer["flagged_for_scrap"], True,
                              "%s is a scrap class: %r" % (defect, answer))
                self.assertEqual(self.get_cylinder(code)["state"], "scrap_pending", defect)
        for defect in OTHER_DEFECTS:
            with self.subTest(defect=defect, scrap_class=False):
                code = self.register("CO-A")
                answer = self.check("ST-A1", code, defects=[defect])
                self.assertBlocked(answer, ["DEFECT_FOUND"], "defect " + defect)
                self.assertIs(answer["flagged_for_scrap"], False,
                              "%s is not a scrap class: %r" % (defect, answer))
                self.assertEqual(self.get_cylinder(code)["state"], "active", defect)
        code = self.register("CO-A")
        self.assertAllowed(self.check("ST-A1", code, defects=[]), "no defects")

    def test_03n_tare_mismatch_boundary(self):
        code = self.register("CO-A", tare_kg=16.4)
        self.assertAllowed(self.check("ST-A1", code, empty_gross_kg=16.9),
                           "empty gross above tare (residual gas)")
        self.assertAllowed(self.check("ST-A1", code, empty_gross_kg=16.1),
                           "empty gross = tare - 0.3 (the tolerance)")
        answer = self.check("ST-A1", code, empty_gross_kg=16.09)
        self.assertBlocked(answer, ["TARE_MISMATCH"], "empty gross = tare - 0.31")
        self.assertIs(answer["flagged_for_scrap"], False)

    def test_03o_clone_suspected(self):
        code = self.register("CO-A")
        self.assertAllowed(self.check("ST-A1", code), "first sighting at ST-A1")
        self.assertAllowed(self.check("ST-A1", code), "same station again is no clone")
        self.assertBlocked(self.check("ST-A2", code), ["CLONE_SUSPECTED"],
                           "same code at ST-A2 right after ST-A1")

    def test_03p_station_license_expiry(self):
        lx = self.register("CO-LX")
        self.assertBlocked(self.check("ST-LX", lx), ["STATION_LICENSE_INVALID"],
                           "licence valid until yesterday")
        lt = self.register("CO-LT")
        self.assertAllowed(self.check("ST-LT", lt), "licence valid until today")

    def test_03q_station_lock_unlock(self):
        code = self.register("CO-A")
        self.assertAllowed(self.check("ST-LK", code), "before the lock")
        status, body = self.reg.request("POST", "/v1/stations/ST-LK/lock",
                                        token=self.station_tokens["ST-LK"],
                                        body={"reason": "self-unlock attempt"})
        self.assertErrorBody(status, body, 403, "a station locking itself")
        status, body = self.reg.request("POST", "/v1/stations/ST-LK/lock",
                                        token=self.regulator, body={"reason": "inspection"})
        self.assertEqual(status, 200, "regulator lock: %s %r" % (status, body))
        self.assertBlocked(self.check("ST-LK", code), ["STATION_LICENSE_INVALID"],
                           "station locked")
        status, body = self.reg.request("POST", "/v1/stations/ST-LK/unlock",
                                        token=self.station_tokens["ST-LK"], body={})
        self.assertErrorBody(status, body, 403, "a station unlocking itself")
        status, body = self.reg.request("POST", "/v1/stations/ST-LK/unlock",
                                        token=self.regulator, body={"reason": "fixed"})
        self.assertEqual(status, 200, "regulator unlock: %s %r" % (status, body))
        self.assertAllowed(self.check("ST-LK", code), "after the unlock")

    def test_03r_license_revoked_and_restored(self):
        code = self.register("CO-RV")
        self.assertAllowed(self.check("ST-RV", code), "licence valid")
        path = "/v1/companies/CO-RV/license"
        status, body = self.reg.request("POST", path, token=self.regulator, body={
            "number": "TS-CO-RV", "valid_until": iso(self.far), "revoked": True})
        self.assertEqual(status, 200, "regulator revokes: %s %r" % (status, body))
        self.assertBlocked(self.check("ST-RV", code), ["STATION_LICENSE_INVALID"],
                           "licence revoked")
        status, body = self.reg.request("POST", path, token=self.admin, body={
            "number": "TS-CO-RV-2", "valid_until": iso(self.far), "revoked": False})
        self.assertEqual(status, 200, "admin restores: %s %r" % (status, body))
        self.assertAllowed(self.check("ST-RV", code), "licence restored")
        status, body = self.reg.request("POST", path, token=self.company_tokens["CO-A"],
                                        body={"number": "X", "valid_until": iso(self.far),
                                              "revoked": False})
        self.assertErrorBody(status, body, 403, "a company setting a licence")

    def test_03s_operator_certificate(self):
        code = self.register("CO-A")
        self.assertBlocked(self.check("ST-A1", code, operator="OP-A-EXP"),
                           ["OPERATOR_NOT_CERTIFIED"], "certificate valid until yesterday")
        self.assertAllowed(self.check("ST-A1", code, operator="OP-A-TODAY"),
                           "certificate valid until today")
        self.assertBlocked(self.check("ST-A1", code, operator="OP-NOBODY"),
                           ["OPERATOR_NOT_CERTIFIED"], "unknown operator")

    def test_03t_every_failing_rule_is_listed(self):
        code = self.register("CO-A", model="YSP118-II", phase=None, tare_kg=48.0,
                             allowed_fill_kg=49.5, next_inspection_due=iso(self.yesterday))
        answer = self.check("ST-A1", code)
        self.assertBlocked(answer, ["INSPECTION_OVERDUE", "DUAL_PHASE_BANNED"],
                           "dual phase and overdue")
        code = self.register("CO-A", tare_kg=16.4, next_inspection_due=iso(self.yesterday))
        answer = self.check("ST-A1", code, operator="OP-NOBODY", empty_gross_kg=15.0,
                            defects=["dent"])
        self.assertBlocked(answer, ["INSPECTION_OVERDUE", "OPERATOR_NOT_CERTIFIED",
                                    "TARE_MISMATCH", "DEFECT_FOUND"],
                           "overdue, uncertified, tare mismatch, dent")

    # ============================================================ 4. scan forms

    def test_03u_changes_reach_a_cylinder_checked_before(self):
        # Fill checks keep the cylinders they read; every kind of change must still
        # reach the next check of a cylinder that was checked just before it.
        code = self.register("CO-A", manufacturer="Later Recall Works Ltd.")
        self.assertAllowed(self.check("ST-A1", code), "before the failed inspection")
        self.inspect(code, "fail")
        self.assertBlocked(self.check("ST-A1", code), ["INSPECTION_FAILED", "SCRAP_PENDING"],
                           "checked before, then a failed inspection", exact=False)

        code = self.register("CO-A", manufacturer="Later Recall Works Ltd.",
                             manufactured="2020-05")
        self.assertAllowed(self.check("ST-A1", code), "before the recall")
        status, answer = self.reg.request("POST", "/v1/recalls", token=self.regulator, body={
            "manufacturer": "Later Recall Works Ltd.", "reason": "valve defect"})
        self.assertEqual(status, 201, "POST /v1/recalls: %s %r" % (status, answer))
        answer = self.check("ST-A1", code)
        self.assertBlocked(answer, ["RECALLED"], "checked before, then recalled")
        self.assertIs(answer["flagged_for_scrap"], True, repr(answer))
        self.assertBlocked(self.check("ST-A1", code), ["RECALLED", "SCRAP_PENDING"],
                           "the check after the one that flagged it", exact=False)

        status, answer = self.reg.request("POST", "/v1/companies", token=self.admin, body={
            "id": "CO-CU", "name": "Company CO-CU",
            "filling_license": {"number": "TS-CO-CU", "valid_until": iso(self.far)}})
        self.assertEqual(status, 201, "POST /v1/companies CO-CU: %s %r" % (status, answer))
        code = self.register("CO-CU")
        self.assertBlocked(self.check("ST-B1", code), ["NOT_OWNED"], "before custody")
        status, answer = self.reg.request("POST", "/v1/custody", token=self.admin, body={
            "owner_company_id": "CO-CU", "custodian_company_id": "CO-B",
            "valid_from": iso(self.today), "valid_until": iso(self.far)})
        self.assertEqual(status, 201, "POST /v1/custody: %s %r" % (status, answer))
        self.assertAllowed(self.check("ST-B1", code), "checked before, then custody granted")

        # A write that fails and is undone leaves the next check right.
        code = self.register("CO-A")
        self.assertAllowed(self.check("ST-A1", code), "before a refused fill record")
        status, answer = self.reg.request("POST", "/v1/fills", token=self.station_tokens["ST-A1"],
                                          body={"event_id": "FILL-UNDONE-" + code,
                                                "check_id": "ev-999999999", "code": code,
                                                "station_id": "ST-A1", "operator_id": "OP-A",
                                                "started_at": now_rfc3339(-60),
                                                "ended_at": now_rfc3339(), "result": "ok"})
        self.assertGreaterEqual(status, 400, "a fill with an unknown check: %r" % answer)
        self.assertAllowed(self.check("ST-A1", code), "after a refused fill record")
        self.inspect(code, "fail")
        self.assertBlocked(self.check("ST-A1", code), ["INSPECTION_FAILED"],
                           "after a refused fill record and a failed inspection", exact=False)

    def test_04a_scan_forms_resolve_to_one_cylinder(self):
        uid = "UID:E004" + uuid.uuid4().hex[:12].upper()
        code = self.register("CO-A", carriers=[uid])
        forms = ["https://x/c/" + code, "https://x/scan?code=" + code,
                 "  " + code.lower() + "  ", uid, code]
        for scan in forms:
            with self.subTest(scan=scan):
                answer = self.check("ST-A1", scan=scan)
                self.assertIsNotNone(answer.get("cylinder"), "scan %r: %r" % (scan, answer))
                self.assertEqual(answer["cylinder"]["code"], code, "scan %r" % scan)
                self.assertAllowed(answer, "scan %r" % scan)
                status, body = self.reg.request("GET", "/v1/resolve?scan=" + q(scan),
                                                token=self.station_tokens["ST-A1"])
                self.assertEqual((status, body), (200, {"code": code}),
                                 "GET /v1/resolve?scan=%r" % scan)
        status, body = self.reg.request("GET", "/v1/resolve?scan=" + q("TQNOSUCHCODE"),
                                        token=self.regulator)
        self.assertErrorBody(status, body, 404, "resolve an unregistered code")
        status, body = self.reg.request("GET", "/v1/resolve?scan=" + q("UID:E0040000DEADBEEF"),
                                        token=self.regulator)
        self.assertErrorBody(status, body, 404, "resolve an unbound UID")

    def test_04b_bind_carrier(self):
        code = self.register("CO-A")
        other = self.register("CO-A")
        epc = "EPC:30" + uuid.uuid4().hex[:22].upper()
        path = "/v1/cylinders/%s/carriers" % q(code)
        status, body = self.reg.request("POST", path, body={"carrier": epc},
                                        token=self.company_tokens["CO-A"])
        self.assertEqual(status, 201, "bind %s: %s %r" % (epc, status, body))
        status, body = self.reg.request("GET", "/v1/resolve?scan=" + q(epc),
                                        token=self.regulator)
        self.assertEqual((status, body), (200, {"code": code}), "resolve " + epc)
        self.assertIn(epc, self.get_cylinder(code).get("carriers", []))
        self.assertIn("carrier_bound", self.types_of(self.history(code)))
        before = len(self.history(other))
        status, body = self.reg.request("POST", "/v1/cylinders/%s/carriers" % q(other),
                                        body={"carrier": epc},
                                        token=self.company_tokens["CO-A"])
        self.assertErrorBody(status, body, 409, "bind a carrier bound to another cylinder")
        self.assertEqual(len(self.history(other)), before, "the refused bind stored nothing")
        self.assertNotIn(epc, self.get_cylinder(other).get("carriers", []))

    def test_04c_gs1_grai_forms(self):
        code = self.register("CO-A", carriers=["GRAI:00614141123452400"])
        for scan in ("(8003)00614141123452400",
                     "https://id.gs1.org/8003/00614141123452400"):
            with self.subTest(scan=scan):
                status, body = self.reg.request("GET", "/v1/resolve?scan=" + q(scan),
                                                token=self.regulator)
                self.assertEqual((status, body), (200, {"code": code}),
                                 "GET /v1/resolve?scan=%r" % scan)

    def test_04d_code_normalised_at_registration(self):
        code = self.new_code("LOW")
        status, body = self.reg.request("POST", "/v1/cylinders",
                                        token=self.company_tokens["CO-A"],
                                        body=self.cylinder_body(" " + code.lower() + " "))
        self.assertEqual(status, 201, "register a lower-case code with spaces: %s %r"
                         % (status, body))
        self.assertEqual(self.get_cylinder(code)["code"], code)

    # ============================================================ 5. bad input

    def assertNotStored(self, code, what):
        status, body = self.reg.request("GET", "/v1/cylinders/" + q(code),
                                        token=self.regulator)
        self.assertEqual(status, 404, "%s: %s must not be stored, GET -> %s %r"
                         % (what, code, status, body))

    def test_05a_malformed_json(self):
        code = self.new_code("BAD")
        raw = '{"code": "%s", "model": "YSP35.5", "tare_kg": 16.4,' % code
        for payload in (raw, "not json", "", '{"code": "%s"' % code, b"\xff\xfe{}"):
            with self.subTest(payload=payload):
                status, body = self.reg.request("POST", "/v1/cylinders", raw=payload,
                                                token=self.company_tokens["CO-A"])
                self.assertErrorBody(status, body, 400 if payload else (400, 422),
                                     "POST /v1/cylinders %r" % payload)
        self.assertNotStored(code, "malformed JSON")
        status, body = self.reg.request("POST", "/v1/fill-checks", raw="{oops",
                                        token=self.station_tokens["ST-A1"])
        self.assertErrorBody(status, body, 400, "POST /v1/fill-checks malformed")

    def test_05a1_control_characters_are_refused_in_text(self):
        """NUL, ESC, line breaks, C1 controls and bidirectional overrides in any
        text field: 422 naming the field and the character, and nothing stored."""
        far = "2099-12-31"
        for name, char in (("Gas\u0000Co", "U+0000"), ("\u001b[31mRed Gas", "U+001B"),
                           ("Line\nBreak", "U+000A"), ("Tab\tGas", "U+0009"),
                           ("C1\u009bGas", "U+009B"), ("sag\u202eGas", "U+202E"),
                           ("iso\u2066Gas", "U+2066")):
            with self.subTest(name=name):
                status, body = self.reg.request("POST", "/v1/companies", body={
                    "id": "CO-CTL", "name": name,
                    "filling_license": {"number": "L-CTL", "valid_until": far}},
                    token=self.admin)
                self.assertErrorBody(status, body, 422, "company name %r" % name)
                self.assertIn("'name'", body["error"]["message"])
                self.assertIn(char, body["error"]["message"])
        # A nested field, and one deep in a cylinder's record.
        status, body = self.reg.request("POST", "/v1/companies", body={
            "id": "CO-CTL", "name": "Fine Gas",
            "filling_license": {"number": "L\u0007", "valid_until": far}}, token=self.admin)
        self.assertErrorBody(status, body, 422, "licence number with BEL")
        self.assertIn("'number'", body["error"]["message"])
        status, body = self.reg.request("GET", "/v1/companies?limit=200", token=self.admin)
        self.assertNotIn("CO-CTL", json.dumps(body))
        code = self.new_code("CTL")
        status, body = self.reg.request("POST", "/v1/cylinders", body=dict(
            self.cylinder_body(code), manufacturer="Hebei\u0000Works"),
            token=self.company_tokens["CO-A"])
        self.assertErrorBody(status, body, 422, "manufacturer with NUL")
        self.assertIn("'manufacturer'", body["error"]["message"])
        self.assertNotStored(code, "a manufacturer with NUL")

    def test_05b_wrong_types(self):
        cases = {"tare_kg": "16.4", "manufactured": 202301, "model": 35.5,
                 "carriers": "UID:E004000000000001", "design_life_years": "eight",
                 "phase": True}
        for field, value in cases.items():
            with self.subTest(field=field, value=value):
                code = self.new_code("TYP")
                status, body = self.reg.request(
                    "POST", "/v1/cylinders", token=self.company_tokens["CO-A"],
                    body=self.cylinder_body(code, **{field: value}))
                self.assertErrorBody(status, body, (400, 422),
                                     "%s = %r" % (field, value))
                self.assertNotStored(code, "%s = %r" % (field, value))
        for payload in ([], "a string", 42, None):
            with self.subTest(top_level=payload):
                status, body = self.reg.request("POST", "/v1/cylinders",
                                                raw=json.dumps(payload),
                                                token=self.company_tokens["CO-A"])
                self.assertErrorBody(status, body, (400, 422), "top-level %r" % payload)
        status, body = self.reg.request("POST", "/v1/cylinders", token=self.admin,
                                        body={"code": 7})
        self.assertErrorBody(status, body, (400, 422), "code as a number")

    def test_05c_missing_required_fields(self):
        for field in ("code", "model", "manufacturer", "manufactured", "tare_kg"):
            with self.subTest(missing=field):
                code = self.new_code("MIS")
                body = self.cylinder_body(code)
                del body[field]
                status, answer = self.reg.request("POST", "/v1/cylinders", body=body,
                                                  token=self.company_tokens["CO-A"])
                self.assertErrorBody(status, answer, 422, "without " + field)
                self.assertNotStored(code, "without " + field)
        code = self.new_code("MIS")
        status, answer = self.reg.request("POST", "/v1/cylinders", token=self.admin,
                                          body=self.cylinder_body(code))
        self.assertErrorBody(status, answer, 422, "admin without owner_company_id")
        self.assertNotStored(code, "admin without owner_company_id")

    def test_05c2_missing_fields_of_set_up_and_fills(self):
        # Every field that API.md writes without "?" is required: without it, 422 and
        # nothing stored (the full body is then accepted as new).
        for path, full in company_set_up("MISS", "Missing", iso(self.far)):
            for field in full:
                with self.subTest(path=path, missing=field):
                    body = {k: v for k, v in full.items() if k != field}
                    status, answer = self.reg.request("POST", path, body=body,
                                                      token=self.admin)
                    self.assertErrorBody(status, answer, 422, "%s without %s" % (path, field))
            status, answer = self.reg.request("POST", path, body=full, token=self.admin)
            self.assertEqual(status, 201, "%s in full, after the refusals: %s %r"
                             % (path, status, answer))
        for path in ("/v1/stations/ST-MISS/lock", "/v1/stations/ST-MISS/unlock"):
            with self.subTest(path=path, missing="reason"):
                status, answer = self.reg.request("POST", path, body={}, token=self.regulator)
                self.assertErrorBody(status, answer, 422, path + " without reason")
        status, station = self.reg.request("GET", "/v1/stations/ST-MISS", token=self.regulator)
        self.assertIs(station.get("locked"), False, "not locked by a refused request: %r"
                      % station)
        license = {"number": "TS-MISS-2", "valid_until": iso(self.far), "revoked": True}
        for field in license:
            with self.subTest(path="license", missing=field):
                status, answer = self.reg.request(
                    "POST", "/v1/companies/CO-MISS/license", token=self.regulator,
                    body={k: v for k, v in license.items() if k != field})
                self.assertErrorBody(status, answer, 422, "license without " + field)
        # The licence is as it was: not revoked, so ST-MISS may fill.
        self.station_tokens["ST-MISS"] = self.reg.token("station", "ST-MISS")
        self.default_operator["ST-MISS"] = "OP-MISS"
        code = self.register("CO-MISS")
        self.assertAllowed(self.check("ST-MISS", code), "licence untouched by refusals")

        # A fill record: every weight, the scale and the post-fill checks.
        code = self.register("CO-A")
        check = self.check("ST-A1", code)
        self.assertAllowed(check, code)
        full = self.fill_body(code, check["check_id"])
        for field in ("event_id", "check_id", "code", "station_id", "operator_id", "scale_id",
                      "started_at", "ended_at", "tare_kg", "gross_before_kg",
                      "gross_after_kg", "net_kg", "residual_kg", "result", "post_checks"):
            with self.subTest(path="/v1/fills", missing=field):
                body = {k: v for k, v in full.items() if k != field}
                status, answer = self.post_fill(body, station="ST-A1")
                self.assertErrorBody(status, answer, (409, 422) if field == "check_id" else 422,
                                     "fill without " + field)
        self.assertEqual(self.fill_events(code), [], "no fill stored from a refused record")
        status, answer = self.post_fill(full)
        self.assertEqual(status, 201, "the fill in full: %s %r" % (status, answer))

    def test_05d_invalid_values(self):
        cases = [("model", "YSP999"), ("phase", "plasma"), ("manufactured", "2023-13"),
                 ("manufactured", "2023-1-5"), ("next_inspection_due", "2027-02-30"),
                 ("last_inspection", "yesterday"), ("tare_kg", -1.0),
                 ("code", "TQ BAD/CODE!"), ("code", ""), ("code", "X" * 65),
                 ("carriers", ["UID:NOTHEX"])]
        for field, value in cases:
            with self.subTest(field=field, value=value):
                if field == "code":
                    code, payload = value, self.cylinder_body(value)
                else:
                    code = self.new_code("INV")
                    payload = self.cylinder_body(code, **{field: value})
                status, body = self.reg.request("POST", "/v1/cylinders", body=payload,
                                                token=self.company_tokens["CO-A"])
                self.assertErrorBody(status, body, 422, "%s = %r" % (field, value))
                if field != "code":
                    self.assertNotStored(code, "%s = %r" % (field, value))
        # A fill check with a defect outside the vocabulary, or with neither scan nor
        # code, is invalid and leaves no event.
        code = self.register("CO-A")
        before = len(self.history(code))
        for extra in ({"code": code, "defects": ["scratched"]}, {}):
            with self.subTest(fill_check=extra):
                body = {"station_id": "ST-A1", "operator_id": "OP-A"}
                body.update(extra)
                status, answer = self.reg.request("POST", "/v1/fill-checks", body=body,
                                                  token=self.station_tokens["ST-A1"])
                self.assertErrorBody(status, answer, 422, "fill check %r" % body)
        self.assertEqual(len(self.history(code)), before, "invalid checks stored no event")

    def test_05e_body_over_1mib_is_413(self):
        code = self.new_code("BIG")
        body = self.cylinder_body(code, registration_no="R" * (1024 * 1024 + 100))
        status, answer = self.reg.request("POST", "/v1/cylinders", body=body,
                                          token=self.company_tokens["CO-A"])
        self.assertErrorBody(status, answer, 413, "1 MiB + 100 B body to /v1/cylinders")
        self.assertNotStored(code, "a body over 1 MiB")
        # The server still answers afterwards.
        self.register("CO-A")

    def test_05f_two_mib_batch_is_accepted(self):
        prefix = self.new_code("BT")
        items = [self.cylinder_body("%s-%05d" % (prefix, i)) for i in range(7500)]
        payload = json.dumps({"cylinders": items})
        self.assertGreater(len(payload), 2 * 1024 * 1024, "the batch must exceed 2 MiB")
        counted_before = self.due_counted("CO-BIG")
        status, body = self.reg.request("POST", "/v1/cylinders/batch", raw=payload,
                                        token=self.company_tokens["CO-BIG"], timeout=120)
        self.assertEqual(status, 200, "POST a %d-byte batch: %s %r"
                         % (len(payload), status, str(body)[:500]))
        results = body.get("results")
        self.assertEqual(len(results), len(items))
        bad = [r for r in results if r.get("status") != 201]
        self.assertEqual(bad[:5], [], "every item of the big batch is new")
        for i in (0, len(items) // 2, len(items) - 1):
            self.assertEqual(results[i].get("code"), items[i]["code"])
            self.assertEqual(self.get_cylinder(items[i]["code"])["owner_company_id"],
                             "CO-BIG")
        # The inspection-due counters count each cylinder once (on PostgreSQL kept
        # once for the batch, at its end).
        self.assertEqual(self.due_counted("CO-BIG") - counted_before, len(items))

    def due_counted(self, company):
        """The cylinders the inspection-due counters hold for a company."""
        total = self.reg.query("SELECT SUM(n) AS n FROM due_counts WHERE company_id = ?",
                               (company,))[0][0]
        return int(total or 0)

    def test_05f2_batch_over_64mib_is_413(self):
        prefix = self.new_code("HUGE")
        item = self.cylinder_body(prefix + "-0")
        # One real item, padded past 64 MiB with a field the registry ignores.
        payload = json.dumps({"cylinders": [item], "padding": "x" * (64 * 1024 * 1024 + 10)})
        status, answer = self.reg.request("POST", "/v1/cylinders/batch", raw=payload,
                                          token=self.company_tokens["CO-BIG"], timeout=120)
        self.assertErrorBody(status, answer, 413, "a 64 MiB + 10 B batch")
        self.assertNotStored(prefix + "-0", "a batch over 64 MiB")

    def test_05f3_hostile_bodies_get_4xx_and_the_server_lives(self):
        admin = self.admin
        cases = [
            ("deeply nested arrays", "/v1/companies", b"[" * 400000 + b"]" * 400000, (422,)),
            ("deeply nested objects", "/v1/companies",
             b'{"a":' * 150000 + b"1" + b"}" * 150000, (422,)),
            ("invalid UTF-8", "/v1/companies", b'{"id":"\xff\xfe","name":"x"}', (400,)),
            ("number out of range", "/v1/companies", b'{"id":"Z9","name":1e400}', (400,)),
            ("a million nested arrays in a batch", "/v1/cylinders/batch",
             b'{"cylinders":' + b"[" * 1000000 + b"]" * 1000000 + b"}", (200,)),
            ("NUL bytes", "/v1/companies", b'{"id":"A\x00B","name":"x"}', (400, 422)),
        ]
        for what, path, raw, expected in cases:
            with self.subTest(what=what):
                token = admin if path == "/v1/companies" else self.company_tokens["CO-A"]
                status, answer = self.reg.request("POST", path, raw=raw, token=token, timeout=120)
                self.assertIn(status, expected, "%s: %s %r" % (what, status, str(answer)[:200]))
                if status >= 400:
                    self.assertErrorBody(status, answer, status, what)
                else:
                    self.assertEqual(answer["results"][0]["status"], 422, what)
        # Still serving, and nothing was stored.
        status, _ = self.reg.request("GET", "/v1/stations/Z9", token=admin)
        self.assertEqual(status, 404)
        self.register("CO-A")

    def test_04e_numeric_code_that_looks_like_a_tag(self):
        # 24 digits starting 30 read as an SGTIN-96 EPC; bound to no cylinder as a
        # carrier, the same text must still find the cylinder registered with it.
        code = "30%022d" % (int(self.new_code("N")[3:]) + 10 ** 20)
        self.assertEqual(len(code), 24)
        self.register("CO-A", code=code)
        for scan in (code, code.lower(), " %s\r\n" % code):
            with self.subTest(scan=scan):
                answer = self.check(scan=scan)
                self.assertEqual(answer["cylinder"]["code"], code, answer)
                status, body = self.reg.request("GET", "/v1/resolve?scan=" + q(scan),
                                                token=self.regulator)
                self.assertEqual((status, body), (200, {"code": code}))

    def test_05g_unknown_code_is_404(self):
        for path in ("/v1/cylinders/TQNOSUCH", "/v1/cylinders/TQNOSUCH/history"):
            with self.subTest(path=path):
                status, body = self.reg.request("GET", path, token=self.regulator)
                self.assertErrorBody(status, body, 404, "GET " + path)

    def test_05h_station_id_must_be_the_token_subject(self):
        code = self.register("CO-A")
        before = len(self.history(code))
        status, body = self.reg.request("POST", "/v1/fill-checks",
                                        token=self.station_tokens["ST-A1"],
                                        body={"station_id": "ST-A2", "operator_id": "OP-A",
                                              "code": code})
        self.assertErrorBody(status, body, 403, "ST-A1's token checking as ST-A2")
        self.assertEqual(len(self.history(code)), before, "the refused check stored nothing")
        # and the refused check left no sighting: ST-A2 may check without a clone alarm
        self.assertAllowed(self.check("ST-A2", code), "ST-A2 after the refused attempt")

    def test_05i_authentication(self):
        code = self.new_code("AUTH")
        for token, headers, what in ((None, None, "no token"),
                                     ("not-a-real-token", None, "bad token"),
                                     (None, {"Authorization": "Bearer"}, "empty bearer"),
                                     (None, {"Authorization": "Basic YWRtaW46YWRtaW4="},
                                      "basic auth")):
            with self.subTest(what=what):
                status, body = self.reg.request("GET", "/v1/cylinders/TQANY", token=token,
                                                headers=headers)
                self.assertErrorBody(status, body, 401, "GET with " + what)
                status, body = self.reg.request("POST", "/v1/cylinders", token=token,
                                                headers=headers,
                                                body=self.cylinder_body(code))
                self.assertErrorBody(status, body, 401, "POST with " + what)
                # A token is needed on every /v1/ call, even one that names no endpoint.
                for method, path in (("GET", "/v1/no-such-thing"), ("DELETE", "/v1/cylinders")):
                    status, body = self.reg.request(method, path, token=token, headers=headers)
                    self.assertErrorBody(status, body, 401, "%s %s with %s" % (method, path, what))
        self.assertNotStored(code, "unauthenticated POST")
        # With a valid token, an unknown path is 404 and a wrong method on a known
        # path 405 with Allow (it was 404 until issue 12); the scheme's name is
        # case-insensitive.
        status, body = self.reg.request("GET", "/v1/no-such-thing", token=self.regulator)
        self.assertErrorBody(status, body, 404, "GET /v1/no-such-thing with a token")
        for method, path, allow in (("DELETE", "/v1/cylinders", {"POST"}),
                                    ("GET", "/v1/fill-checks", {"POST"}),
                                    ("POST", "/v1/audit/head", {"GET"}),
                                    ("PUT", "/v1/cylinders/TQANY", {"GET"}),
                                    ("DELETE", "/v1/cylinders/batch", {"GET", "POST"})):
            with self.subTest(method=method, path=path):
                conn = self.reg.connection()
                try:
                    status, body, headers = conn.request(method, path, token=self.regulator)
                finally:
                    conn.close()
                err = self.assertErrorBody(status, body, 405, "%s %s" % (method, path))
                self.assertEqual(err["code"], "METHOD_NOT_ALLOWED", repr(body))
                got = {m.strip() for m in headers.get("Allow", "").split(",") if m.strip()}
                self.assertEqual(got, allow, "Allow of %s %s: %r" % (method, path, headers))
        for scheme in ("bearer", "BEARER", "BeArEr"):
            with self.subTest(scheme=scheme):
                status, body = self.reg.request(
                    "GET", "/v1/policy", headers={"Authorization": scheme + " " + self.regulator})
                self.assertEqual(status, 200, "scheme %r: %s %r" % (scheme, status, body))

    def test_05i2_audit_head(self):
        # Every role but the courier (who may only hand over and keep its hazards)
        # may read the head; it is the last link of the chain and the chain's
        # length, and `verified` is the server's own walk at start-up.
        tokens = [self.admin, self.regulator, self.inspector,
                  self.company_tokens["CO-A"], self.station_tokens["ST-A1"]]
        for token in tokens:
            status, body = self.reg.request("GET", "/v1/audit/head", token=token)
            self.assertEqual(status, 200, "GET /v1/audit/head: %s %r" % (status, body))
            self.assertRegex(body["head"], r"^[0-9a-f]{64}$", repr(body))
            self.assertIsInstance(body["length"], int, repr(body))
            self.assertIn(body["verified"]["state"], ("running", "ok"), repr(body))
        before = body["length"]
        self.register("CO-A")  # one event
        # On PostgreSQL the head is the verifiable log's newest signed one, which
        # holds an acknowledged event within a second; the chain's recorded end
        # is beside it.
        deadline = time.monotonic() + 5
        while True:
            status, body = self.reg.request("GET", "/v1/audit/head", token=self.regulator)
            if body["length"] >= before + 1 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertGreaterEqual(body["length"], before + 1, repr(body))
        if "chain_end" in body:
            self.assertTrue(self.reg.db.startswith("postgres"), repr(body))
            end = body["chain_end"]
            if end is not None:
                self.assertRegex(end["head"], r"^[0-9a-f]{64}$")
                self.assertLessEqual(end["length"], body["length"])
        status, _ = self.reg.request("GET", "/v1/audit/head")
        self.assertEqual(status, 401)
        # The world was built before serve: the start-up walk covers it and agrees
        # with the head of that moment, as `verify` does.
        deadline = time.monotonic() + 30
        while body["verified"]["state"] == "running" and time.monotonic() < deadline:
            time.sleep(0.1)
            status, body = self.reg.request("GET", "/v1/audit/head", token=self.regulator)
        v = body["verified"]
        self.assertEqual(v["state"], "ok", repr(body))
        if "chain_end" in body:  # PostgreSQL: the walk is of the chain, to its end
            end = body["chain_end"]
            self.assertEqual(v["length"], end["length"] if end else 0, repr(body))
        else:
            self.assertRegex(v["head"], r"^[0-9a-f]{64}$")
        self.assertLessEqual(v["length"], body["length"])
        for key in ("started_at", "finished_at"):
            self.assertTrue(v[key], repr(v))

    def test_05j_role_not_allowed(self):
        code = self.new_code("ROLE")
        cases = [
            ("station POST /v1/cylinders", "POST", "/v1/cylinders",
             self.station_tokens["ST-A1"], self.cylinder_body(code)),
            ("courier POST /v1/cylinders", "POST", "/v1/cylinders", self.courier,
             self.cylinder_body(code)),
            ("regulator POST /v1/cylinders", "POST", "/v1/cylinders", self.regulator,
             dict(self.cylinder_body(code), owner_company_id="CO-A")),
            ("courier GET /v1/scrap-queue", "GET", "/v1/scrap-queue", self.courier, None),
            ("station GET /v1/scrap-queue", "GET", "/v1/scrap-queue",
             self.station_tokens["ST-A1"], None),
            ("company POST /v1/companies", "POST", "/v1/companies",
             self.company_tokens["CO-A"],
             {"id": "CO-EVIL", "name": "x",
              "filling_license": {"number": "x", "valid_until": iso(self.far)}}),
            ("company POST /v1/recalls", "POST", "/v1/recalls", self.company_tokens["CO-A"],
             {"manufacturer": MANUFACTURER, "reason": "competitor"}),
            ("station POST /v1/inspections", "POST", "/v1/inspections",
             self.station_tokens["ST-A1"],
             {"code": "TQANY", "date": iso(self.today), "result": "fail", "report_no": "x"}),
            ("inspector POST /v1/fill-checks", "POST", "/v1/fill-checks", self.inspector,
             {"station_id": "ST-A1", "operator_id": "OP-A", "code": "TQANY"}),
            ("company POST /v1/stations for another company", "POST", "/v1/stations",
             self.company_tokens["CO-A"],
             {"id": "ST-EVIL", "company_id": "CO-B", "name": "x", "district": "x"}),
            ("company POST /v1/custody for another owner", "POST", "/v1/custody",
             self.company_tokens["CO-B"],
             {"owner_company_id": "CO-A", "custodian_company_id": "CO-B",
              "valid_from": iso(self.today), "valid_until": iso(self.far)}),
        ]
        for what, method, path, token, body in cases:
            with self.subTest(what=what):
                status, answer = self.reg.request(method, path, body=body, token=token)
                self.assertErrorBody(status, answer, 403, what)
        self.assertNotStored(code, "refused registrations")
        # The refused custody did not let CO-B fill CO-A's cylinders.
        own = self.register("CO-A")
        self.assertBlocked(self.check("ST-B1", own), ["NOT_OWNED"],
                           "after the refused custody")

    def test_05k_company_registers_only_for_itself(self):
        code = self.new_code("OWN")
        body = dict(self.cylinder_body(code), owner_company_id="CO-B")
        status, answer = self.reg.request("POST", "/v1/cylinders", body=body,
                                          token=self.company_tokens["CO-A"])
        if status == 201:
            self.assertEqual(self.get_cylinder(code)["owner_company_id"], "CO-A",
                             "a company's cylinder is owned by itself, whatever it says")
        else:
            self.assertErrorBody(status, answer, (403, 422), "CO-A registering for CO-B")
            self.assertNotStored(code, "CO-A registering for CO-B")

    def test_05l_duplicate_registration_is_409(self):
        code = self.register("CO-A", tare_kg=16.4)
        for token, owner in ((self.company_tokens["CO-A"], None),
                             (self.company_tokens["CO-B"], None), (self.admin, "CO-B")):
            with self.subTest(owner=owner or "token's company"):
                body = self.cylinder_body(code, tare_kg=17.0)
                if owner:
                    body["owner_company_id"] = owner
                status, answer = self.reg.request("POST", "/v1/cylinders", body=body,
                                                  token=token)
                self.assertErrorBody(status, answer, 409, "second registration of " + code)
        rec = self.get_cylinder(code)
        self.assertEqual(rec["owner_company_id"], "CO-A")
        self.assertAlmostEqual(rec["tare_kg"], 16.4, msg="the refused copy changed nothing")
        self.assertEqual(self.types_of(self.history(code)).count("registered"), 1)

    def test_05m_scrapped_code_never_reused(self):
        code = self.register("CO-A")
        self.flag_by_failed_inspection(code)
        self.scrap(code)
        for token in (self.company_tokens["CO-A"], self.company_tokens["CO-B"]):
            status, answer = self.reg.request("POST", "/v1/cylinders", token=token,
                                              body=self.cylinder_body(code))
            self.assertErrorBody(status, answer, 409, "re-register scrapped " + code)
        self.assertEqual(self.get_cylinder(code)["state"], "scrapped")

    # ================================================================= 6. batch

    def test_06_batch_mixed_items(self):
        existing = self.register("CO-A")
        good1, good2, bad = self.new_code("BA"), self.new_code("BA"), self.new_code("BA")
        bad_item = self.cylinder_body(bad)
        del bad_item["tare_kg"]
        items = [self.cylinder_body(good1), self.cylinder_body(existing), bad_item,
                 self.cylinder_body(good2), self.cylinder_body(good1, tare_kg=20.0),
                 self.cylinder_body(self.new_code("BA"), model="YSP999")]
        status, body = self.reg.request("POST", "/v1/cylinders/batch",
                                        body={"cylinders": items},
                                        token=self.company_tokens["CO-A"])
        self.assertEqual(status, 200, "batch: %s %r" % (status, body))
        results = body.get("results")
        self.assertIsInstance(results, list, repr(body))
        self.assertEqual([r.get("code") for r in results], [i["code"] for i in items],
                         "one result per item, in order: %r" % results)
        self.assertEqual([r.get("status") for r in results], [201, 409, 422, 201, 409, 422],
                         "statuses: %r" % results)
        for r in results:
            if r["status"] != 201:
                self.assertTrue(r.get("error"), "a failed item says why: %r" % r)
        for code in (good1, good2):
            self.assertEqual(self.get_cylinder(code)["owner_company_id"], "CO-A")
        self.assertAlmostEqual(self.get_cylinder(good1)["tare_kg"], 16.4,
                               msg="the in-batch duplicate changed nothing")
        self.assertNotStored(bad, "batch item without tare_kg")
        status, body = self.reg.request("POST", "/v1/cylinders/batch", body={"cylinders": 3},
                                        token=self.company_tokens["CO-A"])
        self.assertErrorBody(status, body, (400, 422), "batch with cylinders: 3")

    # ================================================================= 7. fills

    def fill_events(self, code):
        return [e for e in self.history(code) if e.get("type") == "fill"]

    def test_07a_fill_idempotent(self):
        code = self.register("CO-A")
        check = self.check("ST-A1", code, empty_gross_kg=16.9)
        self.assertAllowed(check, "fill test cylinder")
        body = self.fill_body(code, check["check_id"])
        status, answer = self.post_fill(body)
        self.assertEqual(status, 201, "first POST /v1/fills: %s %r" % (status, answer))
        for attempt in range(2):
            status, answer = self.post_fill(body)
            self.assertEqual(status, 200, "retry %d of the same event_id: %s %r"
                             % (attempt, status, answer))
            self.assertIs(answer.get("duplicate"), True, repr(answer))
        fills = self.fill_events(code)
        self.assertEqual(len(fills), 1, "exactly one fill event: %r" % fills)
        self.assertEqual(fills[0]["actor"], {"role": "station", "id": "ST-A1"},
                         repr(fills[0]))

    def test_07a1_another_stations_event_id_is_in_use(self):
        """An event_id names one fill of one station: another station (of another
        company too) that sends it gets 409 ID_IN_USE and nothing of the stored fill."""
        code = self.register("CO-A")
        check = self.check("ST-A1", code, empty_gross_kg=16.9)
        body = self.fill_body(code, check["check_id"])
        status, first = self.post_fill(body)
        self.assertEqual(status, 201, repr(first))
        before = self.fill_events(code)
        for other in ("ST-A2", "ST-B1"):
            with self.subTest(station=other):
                status, answer = self.post_fill(dict(body, station_id=other,
                                                     operator_id=self.default_operator.get(
                                                         other, "OP-A")))
                self.assertErrorBody(status, answer, 409, "another station's event_id")
                self.assertEqual(answer["error"]["code"], "ID_IN_USE", repr(answer))
                self.assertNotIn("duplicate", answer)
                self.assertNotIn(code, json.dumps(answer))
        self.assertEqual(self.fill_events(code), before)
        # The station that sent it still gets its duplicate answer.
        status, again = self.post_fill(body)
        self.assertEqual((status, again.get("duplicate")), (200, True), repr(again))

    def test_07a2_fill_event_ids_are_uuids_and_every_event_id_is_unique(self):
        """API.md names a fill by `"event_id": "uuid"`. Anything else could take the
        id of another event (the registry names its own `ev-N`), so it is refused."""
        code = self.register("CO-A")
        for bad in ("f-1", "ev-1", code, "3f2b8c1e-9d4a-4c6e-8b7a-1e2d3c4b5a6",
                    "3f2b8c1e-9d4a-4c6e-8b7a-1e2d3c4b5a69x", "3f2b8c1e_9d4a_4c6e_8b7a_1e2d3c4b5a69",
                    "3f2b8c1e-9d4a-4c6e-8b7a-1e2d3c4b5g69", 7):
            with self.subTest(event_id=bad):
                check = self.check("ST-A1", code)
                status, answer = self.post_fill(self.fill_body(code, check["check_id"],
                                                               event_id=bad))
                self.assertErrorBody(status, answer, 422, "event_id %r" % (bad,))
                self.assertIn("UUID" if isinstance(bad, str) else "string",
                              answer["error"]["message"])
        self.assertEqual(self.fill_events(code), [])
        # Either case is a UUID, and the same one: a retry in the other case is a duplicate.
        event_id = str(uuid.uuid4())
        check = self.check("ST-A1", code)
        status, answer = self.post_fill(self.fill_body(code, check["check_id"],
                                                       event_id=event_id.upper()))
        self.assertEqual((status, answer.get("event_id")), (201, event_id), repr(answer))
        status, answer = self.post_fill(self.fill_body(code, check["check_id"],
                                                       event_id=event_id))
        self.assertEqual((status, answer.get("duplicate")), (200, True), repr(answer))
        ids = [e["id"] for e in self.history(code)]
        self.assertEqual(len(ids), len(set(ids)), "event ids repeat: %r" % ids)
        self.assertNotIn(code, ids, "the registration is an event like any other")
        self.assertIn(event_id, ids)

    def test_07b_fill_without_allowing_check_is_409(self):
        code = self.register("CO-A", next_inspection_due=iso(self.yesterday))
        blocked = self.check("ST-A1", code)
        self.assertBlocked(blocked, ["INSPECTION_OVERDUE"], "overdue")
        other = self.register("CO-A")
        other_check = self.check("ST-A1", other)
        self.assertAllowed(other_check, "another cylinder")
        for what, check_id in (("no check_id", None), ("unknown check_id", "no-such-check"),
                               ("a blocked check", blocked["check_id"]),
                               ("another cylinder's allowing check",
                                other_check["check_id"])):
            with self.subTest(what=what):
                status, answer = self.post_fill(self.fill_body(code, check_id))
                self.assertErrorBody(status, answer, 409, "fill with " + what)
        self.assertEqual(self.fill_events(code), [], "no fill stored for " + code)
        # An unregistered code: its check blocks, so a fill with it is refused too.
        unknown = self.new_code("UNREG")
        check = self.check("ST-A1", unknown)
        self.assertBlocked(check, ["UNKNOWN_CODE"], "unregistered")
        for what, check_id in (("its blocked check", check["check_id"]),
                               ("another cylinder's allowing check", other_check["check_id"])):
            with self.subTest(what="unregistered code, " + what):
                status, answer = self.post_fill(self.fill_body(unknown, check_id))
                self.assertErrorBody(status, answer, 409, "unregistered code, " + what)
        self.assertEqual(self.fill_events(unknown), [], "no fill stored for " + unknown)

    def test_07c_offline_fill_records_violation(self):
        code = self.register("CO-A", next_inspection_due=iso(self.yesterday))
        body = self.fill_body(code, offline=True,
                              offline_decision={"decision": "allow", "reasons": []})
        status, answer = self.post_fill(body)
        self.assertEqual(status, 201, "offline fill: %s %r" % (status, answer))
        events = self.history(code, token=self.regulator)
        types = self.types_of(events)
        self.assertEqual(types.count("fill"), 1, repr(types))
        self.assertIn("violation", types, "the registry would block %s: %r" % (code, types))
        status, answer = self.post_fill(body)
        self.assertEqual(status, 200, "offline fill retried: %s %r" % (status, answer))
        self.assertIs(answer.get("duplicate"), True, repr(answer))
        self.assertEqual(self.types_of(self.history(code)).count("violation"), 1,
                         "a retry records no second violation")
        # An offline fill the registry agrees with records no violation.
        good = self.register("CO-A")
        status, answer = self.post_fill(self.fill_body(
            good, offline=True, offline_decision={"decision": "allow", "reasons": []}))
        self.assertEqual(status, 201, "agreeing offline fill: %s %r" % (status, answer))
        types = self.types_of(self.history(good))
        self.assertEqual(types.count("fill"), 1, repr(types))
        self.assertNotIn("violation", types, repr(types))
        # A station that filled against its own block disagrees with itself: a
        # violation, although the registry would have allowed the fill.
        own_block = self.register("CO-A")
        status, answer = self.post_fill(self.fill_body(
            own_block, offline=True,
            offline_decision={"decision": "block", "reasons": [{"code": "DEFECT_FOUND"}]}))
        self.assertEqual(status, 201, "offline fill against its own block: %s %r"
                         % (status, answer))
        self.assertIs(answer.get("violation"), True, repr(answer))
        violations = [e for e in self.history(own_block, token=self.regulator)
                      if e.get("type") == "violation"]
        self.assertEqual(len(violations), 1, repr(violations))
        self.assertEqual(violations[0].get("registry_decision"), "allow", repr(violations))
        self.assertIs(violations[0].get("filled_against_own_block"), True, repr(violations))
        # The station's decision must be there, and be allow or block.
        for decision in ({}, {"decision": "maybe"}, {"decision": True}, "allow"):
            with self.subTest(offline_decision=decision):
                code = self.register("CO-A")
                status, answer = self.post_fill(self.fill_body(
                    code, offline=True, offline_decision=decision))
                self.assertErrorBody(status, answer, 422, "offline_decision %r" % (decision,))
                self.assertEqual(self.fill_events(code), [])

    def test_07c2_fill_result_checked_against_its_weights(self):
        """DOMAIN: an overfill (net > max) must never leave the station and is recorded
        as `overfill`; an underfill (net < min) is recorded too. A record whose own
        weights contradict its result is stored as sent, with a violation beside it.
        YSP35.5 with allowed_fill_kg 14.9: min 14.1, max 14.9, compared in grams."""
        cases = [  # (result reported, net_kg, the weights' verdict when they disagree)
            ("ok", 14.9, None), ("ok", 14.901, "overfill"), ("ok", 16.0, "overfill"),
            ("ok", 14.1, None), ("ok", 14.099, "underfill"), ("ok", 14.5, None),
            ("overfill", 16.0, None), ("underfill", 10.0, None),
            ("interrupted", 5.0, None), ("interrupted", 15.0, "overfill"),
            ("underfill", 15.2, "overfill"),
        ]
        for result, net, verdict in cases:
            with self.subTest(result=result, net_kg=net):
                code, body, status, answer = self.fill_after_allowed_check(result=result,
                                                                          net_kg=net)
                self.assertEqual(status, 201, "%s %r" % (status, answer))
                self.assertIs(answer.get("violation"), verdict is not None, repr(answer))
                events = self.history(code, token=self.regulator)
                fills = [e for e in events if e.get("type") == "fill"]
                self.assertEqual(len(fills), 1, repr(events))
                self.assertEqual(fills[0].get("result"), result, "stored as sent")
                violations = [e for e in events if e.get("type") == "violation"]
                if verdict is None:
                    self.assertEqual(violations, [])
                    continue
                self.assertEqual(answer.get("result_by_weight"), verdict, repr(answer))
                self.assertEqual(len(violations), 1, repr(violations))
                v = violations[0]
                self.assertEqual((v.get("result_reported"), v.get("result_by_weight"),
                                  v.get("fill_event_id")),
                                 (result, verdict, body["event_id"]), repr(v))
                self.assertEqual((v.get("min_kg"), v.get("max_kg")), (14.1, 14.9), repr(v))
                status, again = self.post_fill(body)
                self.assertEqual((status, again.get("duplicate")), (200, True), repr(again))
                self.assertEqual(self.types_of(self.history(code)).count("violation"), 1,
                                 "a retry records no second violation")

    def test_07c3_fill_weights_out_of_range_are_refused(self):
        for key, value in (("tare_kg", -0.1), ("gross_before_kg", -1), ("gross_after_kg", -5),
                           ("net_kg", -100.5), ("residual_kg", 1000), ("tare_kg", 1e9)):
            with self.subTest(key=key, value=value):
                code, _, status, answer = self.fill_after_allowed_check(**{key: value})
                self.assertErrorBody(status, answer, 422, "%s = %r" % (key, value))
                self.assertIn(key, answer["error"]["message"])
                self.assertEqual(self.fill_events(code), [])
        # The other side of each bound is taken; a residual below zero is a reading
        # (an empty cylinder lighter than its tare).
        for key, value in (("tare_kg", 0), ("gross_before_kg", 0), ("gross_after_kg", 999.99),
                           ("residual_kg", -0.2), ("net_kg", -100)):
            with self.subTest(key=key, value=value, accepted=True):
                _, _, status, answer = self.fill_after_allowed_check(**{key: value})
                self.assertEqual(status, 201, "%s = %r: %s %r" % (key, value, status, answer))

    def test_07d_fill_as_another_station_is_403(self):
        code = self.register("CO-A")
        check = self.check("ST-A1", code)
        status, answer = self.post_fill(self.fill_body(code, check["check_id"]),
                                        station="ST-A2")
        self.assertErrorBody(status, answer, 403, "ST-A2's token posting ST-A1's fill")
        self.assertEqual(self.fill_events(code), [])

    # =============================================================== 8. history

    def test_08_history_pagination(self):
        code = self.register("CO-A", carriers=["UID:E004" + uuid.uuid4().hex[:12].upper()])
        status, body = self.reg.request(
            "POST", "/v1/cylinders/%s/carriers" % q(code),
            body={"carrier": "EPC:30" + uuid.uuid4().hex[:22].upper()},
            token=self.company_tokens["CO-A"])
        self.assertEqual(status, 201, "bind: %s %r" % (status, body))
        self.check("ST-A1", code, operator="OP-A-EXP")  # blocked
        for i in range(3):
            check = self.check("ST-A1", code, empty_gross_kg=16.9)
        status, body = self.post_fill(self.fill_body(code, check["check_id"]))
        self.assertEqual(status, 201, "fill: %s %r" % (status, body))

        status, full = self.reg.request("GET", "/v1/cylinders/%s/history?limit=1000" % code,
                                        token=self.regulator)
        self.assertEqual(status, 200, repr(full))
        all_events = full["events"]
        self.assertGreaterEqual(len(all_events), 7, repr(self.types_of(all_events)))
        # A limit past the largest page (1,000) is capped, not refused; 0 is refused.
        status, big = self.reg.request("GET", "/v1/cylinders/%s/history?limit=50000" % code,
                                       token=self.regulator)
        self.assertEqual((status, big.get("events")), (200, all_events), "limit=50000")
        status, body = self.reg.request("GET", "/v1/cylinders/%s/history?limit=0" % code,
                                        token=self.regulator)
        self.assertErrorBody(status, body, 400, "limit=0")

        walked, cursor, pages = [], None, 0
        while True:
            path = "/v1/cylinders/%s/history?limit=2" % code
            if cursor:
                path += "&cursor=" + q(str(cursor))
            status, page = self.reg.request("GET", path, token=self.company_tokens["CO-A"])
            self.assertEqual(status, 200, "GET %s: %s %r" % (path, status, page))
            self.assertLessEqual(len(page["events"]), 2, "limit=2: %r" % page)
            walked.extend(page["events"])
            pages += 1
            cursor = page.get("next_cursor")
            if not cursor or not page["events"]:
                break
            self.assertLess(pages, 50, "pagination does not end")
        ids = [e["id"] for e in walked]
        self.assertEqual(len(ids), len(set(ids)), "duplicate events across pages: %r" % ids)
        self.assertEqual(ids, [e["id"] for e in all_events],
                         "paging with limit=2 walks the same events in the same order")
        self.assertGreaterEqual(pages, 4)

        self.assertEqual(walked[0]["type"], "registered", "oldest first: %r" % walked[0])
        self.assertEqual(walked[0]["actor"], {"role": "company", "id": "CO-A"})
        previous = None
        for e in walked:
            for key in ("id", "type", "at", "actor"):
                self.assertIn(key, e, "event without %s: %r" % (key, e))
            self.assertIn(e["type"], EVENT_TYPES, repr(e))
            self.assertIsInstance(e["actor"], dict, repr(e))
            self.assertTrue(e["actor"].get("role") and e["actor"].get("id"), repr(e))
            at = datetime.fromisoformat(e["at"].replace("Z", "+00:00"))
            self.assertIsNotNone(at.tzinfo, "at must be RFC 3339 with a zone: %r" % e)
            if previous is not None:
                self.assertGreaterEqual(at, previous, "oldest first: %r" % e)
            previous = at
            if e["type"] == "fill_check":
                self.assertIn(e.get("decision"), ("allow", "block"), repr(e))
                self.assertIsInstance(e.get("reasons"), list, repr(e))
                self.assertEqual(e["actor"], {"role": "station", "id": "ST-A1"}, repr(e))
        types = self.types_of(walked)
        self.assertEqual(types.count("fill_check"), 4, repr(types))
        self.assertEqual(types.count("fill"), 1, repr(types))
        self.assertIn("carrier_bound", types)
        blocked = [e for e in walked if e["type"] == "fill_check" and e["decision"] == "block"]
        self.assertEqual(len(blocked), 1, repr(blocked))
        self.assertEqual(codes_of(blocked[0]["reasons"]), ["OPERATOR_NOT_CERTIFIED"])

    # ================================================================= 9. roles

    def test_09_regulator_reads_all_company_sees_own_queue(self):
        a = self.register("CO-A")
        b = self.register("CO-B")
        self.flag_by_failed_inspection(a)
        self.flag_by_failed_inspection(b)
        for code, owner in ((a, "CO-A"), (b, "CO-B")):
            self.assertEqual(self.get_cylinder(code, token=self.regulator)["owner_company_id"],
                             owner)
            self.assertTrue(self.history(code, token=self.regulator))
        queue = self.scrap_queue(self.regulator)
        self.assertIn(a, queue, "regulator's scrap queue")
        self.assertIn(b, queue, "regulator's scrap queue")
        self.assertIn("INSPECTION_FAILED", json.dumps(queue[a]).upper().replace(" ", "_"),
                      "the queue says why: %r" % queue[a])
        since = datetime.fromisoformat(str(queue[a]["since"]).replace("Z", "+00:00"))
        self.assertIsNotNone(since)
        own = self.scrap_queue(self.company_tokens["CO-A"])
        self.assertIn(a, own, "CO-A sees its own flagged cylinder")
        self.assertNotIn(b, own, "CO-A must not see CO-B's flagged cylinder")
        self.assertEqual({e["owner_company_id"] for e in own.values()}, {"CO-A"},
                         "company scrap queue holds only its own cylinders")
        own_b = self.scrap_queue(self.company_tokens["CO-B"])
        self.assertIn(b, own_b)
        self.assertNotIn(a, own_b)

    # ================================================================= 11. fleet

    def fleet_walk(self, station, since=None, limit=None):
        """Follows the feed until it returns no cylinders; returns (records, cursor)."""
        token = self.station_tokens[station]
        records, cursor, calls = [], since, 0
        while True:
            params = []
            if cursor:
                params.append("since=" + q(str(cursor)))
            if limit:
                params.append("limit=%d" % limit)
            path = "/v1/stations/%s/fleet" % station
            if params:
                path += "?" + "&".join(params)
            status, body = self.reg.request("GET", path, token=token)
            self.assertEqual(status, 200, "GET %s: %s %r" % (path, status, body))
            cylinders = body.get("cylinders")
            self.assertIsInstance(cylinders, list, "fleet answer: %r" % body)
            self.assertTrue(body.get("next_cursor"), "fleet answer without next_cursor: %r"
                            % body)
            if limit:
                self.assertLessEqual(len(cylinders), limit, "a page longer than its limit")
            for c in cylinders:
                self.assertIsInstance(c, dict, repr(c))
                records.append(c)
            calls += 1
            cursor = body["next_cursor"]
            if not cylinders:
                return records, cursor
            self.assertLess(calls, 200, "the fleet feed does not end")

    def fleet_codes(self, station, since=None, limit=None):
        records, cursor = self.fleet_walk(station, since, limit)
        return [c.get("code") for c in records], cursor

    def test_11_fleet_feed(self):
        owned = self.register("CO-F")
        status, body = self.reg.request("POST", "/v1/custody", token=self.admin, body={
            "owner_company_id": "CO-FO", "custodian_company_id": "CO-F",
            "valid_from": iso(self.today - timedelta(days=1)),
            "valid_until": iso(self.far)})
        self.assertEqual(status, 201, "custody CO-FO -> CO-F: %s %r" % (status, body))
        custody = self.register("CO-FO")
        foreign = self.register("CO-B")
        codes, cursor = self.fleet_codes("ST-F1")
        self.assertIn(owned, codes, "the station's own company's cylinder")
        self.assertIn(custody, codes, "a cylinder under custody")
        self.assertNotIn(foreign, codes, "another company's cylinder")
        # With the facts of the station and its company's operators, for the
        # licence, lock and certificate rules.
        status, body = self.reg.request("GET", "/v1/stations/ST-F1/fleet?limit=1",
                                        token=self.station_tokens["ST-F1"])
        self.assertEqual(status, 200, repr(body))
        self.assertEqual(body.get("station"), {
            "locked": False, "lock_reason": "",
            "filling_license": {"number": "TS-CO-F", "valid_until": iso(self.far),
                                "revoked": False}}, repr(body.get("station")))
        self.assertIn({"id": "OP-F", "certificate": {"number": "CERT-OP-F",
                                                     "valid_until": iso(self.far)}},
                      body.get("operators", []), repr(body.get("operators")))
        self.assertNotIn("OP-A", [o.get("id") for o in body.get("operators", [])],
                         "another company's operator")
        # No change since the cursor: nothing.
        status, body = self.reg.request("GET", "/v1/stations/ST-F1/fleet?since=" + q(str(cursor)),
                                        token=self.station_tokens["ST-F1"])
        self.assertEqual(status, 200, repr(body))
        self.assertEqual(body.get("cylinders"), [], "no change since the cursor: %r" % body)
        self.assertTrue(body.get("next_cursor"))
        # A change shows up.
        newer = self.register("CO-F")
        codes, _ = self.fleet_codes("ST-F1", since=cursor)
        self.assertIn(newer, codes, "a cylinder registered after the cursor")
        self.assertNotIn(custody, codes, "unchanged cylinders are not sent again")
        # Binding a carrier changes the record: it is sent again, with the carrier.
        _, cursor = self.fleet_walk("ST-F1", since=cursor)
        epc = "EPC:30" + uuid.uuid4().hex[:22].upper()
        status, body = self.reg.request("POST", "/v1/cylinders/%s/carriers" % q(owned),
                                        body={"carrier": epc},
                                        token=self.company_tokens.get("CO-F", self.admin))
        self.assertEqual(status, 201, "bind %s to %s: %s %r" % (epc, owned, status, body))
        records, _ = self.fleet_walk("ST-F1", since=cursor)
        self.assertEqual([c.get("code") for c in records], [owned],
                         "only the cylinder whose carrier was bound")
        self.assertIn(epc, records[0].get("carriers", []), repr(records[0]))
        status, body = self.reg.request("GET", "/v1/stations/ST-A1/fleet",
                                        token=self.station_tokens["ST-F1"])
        self.assertErrorBody(status, body, 403, "ST-F1 reading ST-A1's fleet")

    def test_11b_fleet_feed_pages_through_one_custody_grant(self):
        # A custody grant changes all the owner's cylinders at once (one rev): pages
        # smaller than that group must still carry every one of them, exactly once.
        _, cursor = self.fleet_walk("ST-F1")
        granted = sorted(self.register("CO-FT") for _ in range(7))
        _, after_registering = self.fleet_walk("ST-F1", since=cursor)
        status, body = self.reg.request("POST", "/v1/custody", token=self.admin, body={
            "owner_company_id": "CO-FT", "custodian_company_id": "CO-F",
            "valid_from": iso(self.today), "valid_until": iso(self.far)})
        self.assertEqual(status, 201, "custody CO-FT -> CO-F: %s %r" % (status, body))
        for limit in (1, 2, 3, 7, 8):
            with self.subTest(limit=limit):
                codes, _ = self.fleet_codes("ST-F1", since=after_registering, limit=limit)
                self.assertEqual(sorted(codes), granted,
                                 "pages of %d after the grant" % limit)
        # A limit past the largest page gets the largest page.
        codes, _ = self.fleet_codes("ST-F1", since=after_registering, limit=99999)
        self.assertEqual(sorted(codes), granted, "limit=99999")
        for bad in ("since=abc", "since=-1", "since=5:lower", "since=5:", "limit=0",
                    "limit=-3", "limit=x", "limit="):
            with self.subTest(query=bad):
                status, body = self.reg.request("GET", "/v1/stations/ST-F1/fleet?" + bad,
                                                token=self.station_tokens["ST-F1"])
                self.assertErrorBody(status, body, 400, "fleet ?" + bad)

    # ============================================================ command line

    def test_97_command_line_conventions(self):
        # API.md: every program has --help; exit 0 on success, 2 on bad usage, 1 on
        # failure; an error is one readable line on stderr.
        for args in (["--help"], ["serve", "--help"], ["token", "add", "--help"],
                     ["verify", "--help"]):
            with self.subTest(args=args):
                r = self.reg.run_cli(*args)
                self.assertEqual(r.returncode, 0, "%s: %r" % (args, r.stderr))
                self.assertIn("serve" if args == ["--help"] else "--db", r.stdout,
                              "%s prints the subcommands or the options" % args)
        workdir = self.reg.workdir
        not_sqlite = os.path.join(workdir, "not-a-database.db")
        with open(not_sqlite, "wb") as f:
            f.write(b"this is not a SQLite file" * 100)
        cases = [
            ([], 2), (["frobnicate"], 2), (["token", "add", "--db", self.reg.db],  2),
            (["token", "add", "--db", self.reg.db, "--role", "wizard", "--subject", "x"], 2),
            (["serve", "--db", os.path.join(workdir, "x.db"), "--listen", "nonsense"], 2),
            (["serve", "--db", os.path.join(workdir, "x.db"), "--threads", "999"], 2),
            (["verify", "--db", os.path.join(workdir, "missing.db")], 1),  # a failure
            (["verify", "--db", not_sqlite], 1),
            (["serve", "--db", os.path.join(workdir, "y.db"),
              "--listen", "%s:%d" % (self.reg.host, self.reg.port)], 1),  # port in use
        ]
        for args, rc in cases:
            with self.subTest(args=args):
                r = self.reg.run_cli(*args)
                self.assertEqual(r.returncode, rc, "%s: rc %d, stderr %r"
                                 % (args, r.returncode, r.stderr))
                lines = r.stderr.strip().splitlines()
                self.assertEqual(len(lines), 1, "%s: one line on stderr: %r" % (args, r.stderr))
                self.assertTrue(lines[0].startswith("pingma-registry: "), repr(lines[0]))
        self.assertFalse(os.path.exists(os.path.join(workdir, "missing.db")),
                         "verify creates no database")

    def test_97b_listens_on_ipv6_and_prints_a_url(self):
        try:
            probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            probe.bind(("::1", 0))
            probe.close()
        except OSError:
            self.skipTest("no IPv6 loopback on this machine")
        other = Registry(self.reg.binary)
        try:
            secrets = (["--secrets-dir", other.secrets_dir] if other.db.startswith("postgres")
                       else [])
            proc = subprocess.Popen([other.binary, "serve", "--db", other.db,
                                     "--listen", "[::1]:0"] + secrets,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    universal_newlines=True)
            line = proc.stdout.readline().strip()
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(60), 0, proc.stderr.read())
            self.assertRegex(line, r"^listening on http://\[::1\]:[1-9][0-9]*$")
        finally:
            other.cleanup()

    # ================================================== tokens added while serving

    def test_98_tokens_added_while_serving(self):
        # `token add` on the live database, then the new tokens are used at once,
        # followed by ordinary writes (the server must not trip over the CLI's rows).
        admin2 = self.reg.token("admin", "root-2")
        company = self.reg.token("company", "CO-LATE")
        station = self.reg.token("station", "ST-LATE")
        for path, body in company_set_up("LATE", "Late", iso(self.far)):
            status, answer = self.reg.request("POST", path, body=body, token=admin2)
            self.assertEqual(status, 201, "POST %s with a token added while serving: %s %r"
                             % (path, status, answer))
        self.company_tokens["CO-LATE"] = company
        self.station_tokens["ST-LATE"] = station
        code = self.register("CO-LATE")
        self.assertAllowed(self.check("ST-LATE", code, operator="OP-LATE"),
                           "station token added while serving")
        self.register("CO-A")  # and the old tokens still write

    # ================================================================ 10. verify

    def test_99_verify_event_chain(self):
        # Enough events for rowid 3 to exist even when run alone.
        code = self.register("CO-A")
        self.check("ST-A1", code)
        self.check("ST-A1", code)
        self.reg.stop()  # SIGTERM; asserts exit 0
        r = self.reg.verify()
        self.assertEqual(r.returncode, 0, "verify on an intact chain: rc %d, stdout %r, "
                         "stderr %r" % (r.returncode, r.stdout, r.stderr))
        self.assertIn("ok", r.stdout.lower(), "verify prints a line with ok: %r" % r.stdout)

        # The third event by number (on PostgreSQL, numbered in blocks, not #3; an
        # early one, which the log's tree, all that vouches for it there, holds).
        id_, text, seq = self.reg.query(
            "SELECT id, body, seq FROM events ORDER BY seq LIMIT 1 OFFSET 2")[0]
        record = {"id": id_}
        doc = json.loads(text)
        self.assertIsInstance(doc, dict, "an event's body is a JSON object: %r" % text)
        doc["tampered"] = True
        self.reg.execute("UPDATE events SET body = ? WHERE seq = ?", (json.dumps(doc), seq))

        r = self.reg.verify()
        output = r.stdout + r.stderr
        self.assertEqual(r.returncode, 1, "verify after corrupting event #3: rc %d, %r"
                         % (r.returncode, output))
        names = []
        if record.get("id") is not None:
            names.append(str(record["id"]))
        try:
            body_id = json.loads(text).get("id")
            if body_id is not None:
                names.append(str(body_id))
        except (ValueError, AttributeError):
            pass
        if not names:
            names.append("#%d" % seq)
        self.assertTrue(any(n in output for n in names),
                        "verify must name the broken event (one of %r): %r" % (names, output))


if __name__ == "__main__":
    BINARY = take_binary_argument()
    unittest.main(verbosity=2)
