"""The regulator's reads against the real pingma-registry: fill-check statistics,
the CSV ledgers, the foresight queries and the console's lists.

Boundaries: a check on the first and the last day of a range and the day after;
inspections due on a month's last day and the next month's first, this month, the
12th month and the 13th, from each basis of the due date; unseen at exactly N
months and one day less; paging (every item once); the role rules; bad parameters
(each a 400/422 with a message, changing nothing); the CSVs read back with Python's
csv module (BOM, header, RFC 4180 quoting, CRLF, the formula guard, Chinese text);
and a restart: the counts survive it, and a store made before the summaries (their
tables dropped while the registry is stopped) is backfilled.

    python3 registry_regulator_test.py /path/to/pingma-registry
"""

import csv
import http.client
import io
import os
import sqlite3
import sys
import unittest
import uuid
from datetime import date, datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from registry_harness import (STORE, Registry, RegistryCase, id_number, add_months, add_years, iso, last_day, q,
                              take_binary_argument, today_shanghai,
                              wait_past_shanghai_midnight, year_month, ym_text)

BINARY = None  # set in __main__
SHANGHAI = timezone(timedelta(hours=8))
# A name that needs every kind of CSV quoting, in Chinese.
AWKWARD = '城东站, "一号" 第二行'  # a comma and quotes (a line break is refused)
PHONE = "13987651234"


ID_NUMBER = id_number("11010519491231002")


def months_before(d, n):
    """d minus n calendar months, the day clamped to the month's end."""
    y, m = add_months(d.year, d.month, -n)
    return min(date(y, m, 1) + timedelta(days=d.day - 1), last_day(y, m))


def online_counts(checks, refused):
    """A group's or the total's counts of checks made online: none offline."""
    return {"checks": checks, "refused": refused, "offline_checks": 0, "offline_refused": 0,
            "disagreements": 0}


def reason_group(reason, refused):
    """A reason's group of refusals made online."""
    return {"key": reason, "refused": refused, "offline_checks": 0, "offline_refused": 0,
            "disagreements": 0}


def rfc3339(dt):
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class RegulatorTest(RegistryCase):
    maxDiff = 6000
    TOKENS = {"admin": ("admin", "root"), "regulator": ("regulator", "SAMR"),
              "co": ("company", "CO-R"), "co_s": ("company", "CO-S"),
              "st": ("station", "ST-R1"), "st2": ("station", "ST-R2"),
              "st_s": ("station", "ST-S"), "inspector": ("inspector", "AG-1"),
              "courier": ("courier", "CR-R")}

    @classmethod
    def setUpClass(cls):
        wait_past_shanghai_midnight(300)
        cls.today = today_shanghai()
        super().setUpClass()

    # -- helpers ------------------------------------------------------------------


    def get(self, path, token, expect=200):
        status, answer = self.call("GET", path, token=token)
        self.assertEqual(status, expect, "GET %s -> %r" % (path, answer))
        return answer

    def refused(self, path, token, expect):
        """A refusal: the status, and an error body with a code and a message."""
        status, answer = self.call("GET", path, token=token)
        self.assertEqual(status, expect, "GET %s -> %r" % (path, answer))
        self.assertIsInstance(answer, dict, answer)
        self.assertTrue(answer["error"]["code"], answer)
        self.assertTrue(answer["error"]["message"], answer)
        return answer

    def raw(self, path, token):
        """(status, headers, bytes) of a GET."""
        conn = http.client.HTTPConnection(self.reg.host, self.reg.port, timeout=30)
        try:
            conn.request("GET", path, headers={"Authorization": "Bearer " + token})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def ledger(self, path, token):
        """A CSV ledger read back with Python's csv module; checks the framing."""
        status, headers, data = self.raw(path, token)
        self.assertEqual(status, 200, data[:500])
        self.assertEqual(headers["content-type"], "text/csv; charset=utf-8")
        self.assertRegex(headers["content-disposition"], r'^attachment; filename="[^"/]+\.csv"$')
        self.assertTrue(data.startswith(b"\xef\xbb\xbf"), data[:20])
        text = data.decode("utf-8")
        # Every record ends with CRLF; a bare LF appears only inside a quoted field.
        self.assertTrue(text.endswith("\r\n"), text[-20:])
        rows = list(csv.reader(io.StringIO(text[1:], newline="")))
        self.assertGreaterEqual(len(rows), 1)
        for row in rows:
            self.assertEqual(len(row), len(rows[0]), row)
        return rows[0], rows[1:]

    @classmethod
    def cylinder(cls, code, token=None, owner=None, **fields):
        body = {"code": code, "model": "YSP35.5", "manufacturer": "Hebei Example Cylinder Co.",
                "manufactured": year_month(add_years(cls.today, -2)), "tare_kg": 16.4,
                "design_life_years": 8, "last_inspection": iso(add_years(cls.today, -2)),
                "next_inspection_due": iso(add_years(cls.today, 2))}
        body.update(fields)
        for k in [k for k, v in body.items() if v is None]:
            del body[k]
        if owner:
            body["owner_company_id"] = owner
        return cls.post("/v1/cylinders", body, token or cls.co)

    @classmethod
    def check(cls, code, station="ST-R1", **extra):
        token, operator = {"ST-R1": (cls.st, "OP-R"), "ST-R2": (cls.st2, "OP-R"),
                           "ST-S": (cls.st_s, "OP-S")}[station]
        body = {"station_id": station, "operator_id": operator, "code": code}
        body.update(extra)
        return cls.post("/v1/fill-checks", body, token)

    @classmethod
    def fill(cls, code, ended, station="ST-R1", net=14.5):
        check = cls.check(code, station)
        assert check["decision"] == "allow", check
        token = cls.st if station == "ST-R1" else cls.st_s
        operator = "OP-R" if station == "ST-R1" else "OP-S"
        return cls.post("/v1/fills", {
            "event_id": str(uuid.uuid4()), "check_id": check["check_id"], "code": code,
            "station_id": station, "operator_id": operator, "scale_id": "=S1",
            "started_at": rfc3339(ended - timedelta(minutes=2)), "ended_at": rfc3339(ended),
            "tare_kg": 16.4, "gross_before_kg": 16.4, "gross_after_kg": 16.4 + net,
            "net_kg": net, "residual_kg": -0.5, "result": "ok",
            "post_checks": {"leak_test": "pass", "reweigh": "pass"}}, token)

    @classmethod
    def world(cls):
        far = iso(cls.today + timedelta(days=400))
        for co, name in (("CO-R", "瓶码燃气, \"东区\""), ("CO-S", "=SUM(A1)")):
            cls.post("/v1/companies", {"id": co, "name": name, "filling_license":
                                       {"number": "TS-" + co, "valid_until": far}}, cls.admin)
        cls.post("/v1/stations", {"id": "ST-R1", "company_id": "CO-R", "name": AWKWARD,
                                  "district": "城东"}, cls.co)
        cls.post("/v1/stations", {"id": "ST-R2", "company_id": "CO-R", "name": "＝二站",
                                  "district": "城西"}, cls.co)
        cls.post("/v1/stations", {"id": "ST-S", "company_id": "CO-S", "name": "@S站",
                                  "district": "城南"}, cls.co_s)
        cls.post("/v1/stations", {"id": "ST-QUIET", "company_id": "CO-R", "name": "静站",
                                  "district": "城北"}, cls.co)
        for op, co, tok in (("OP-R", "CO-R", cls.co), ("OP-S", "CO-S", cls.co_s)):
            cls.post("/v1/operators", {"id": op, "company_id": co, "name": "Op",
                                       "certificate": {"number": "C-" + op, "valid_until": far}},
                     tok)
        cls.post("/v1/vehicles", {"id": "V-R", "company_id": "CO-R", "plate": "豫N1"}, cls.co)
        cls.post("/v1/vehicles", {"id": "V-S", "company_id": "CO-S", "plate": "豫N2"}, cls.co_s)
        cls.post("/v1/couriers", {"id": "CR-R", "company_id": "CO-R", "name": "李四",
                                  "vehicle": "V-R", "zones": ["城东"]}, cls.co)
        cls.post("/v1/couriers", {"id": "CR-S", "company_id": "CO-S", "name": "王五",
                                  "vehicle": "V-S", "zones": ["城南"]}, cls.co_s)
        names = ["张三", "张四", "李一", "张三丰", "王二", "-1+1"]
        for i, name in enumerate(names):
            cls.post("/v1/customers", {
                "id": "CU-%02d" % i, "company_id": "CO-R", "name": name, "phone": PHONE,
                "id_number": ID_NUMBER, "address": "建设路%d号" % i, "district": "城东",
                "kind": "household", "site": {"basement": False, "semi_basement": False,
                                              "cylinder_room": False}}, cls.co)
        cls.post("/v1/customers", {
            "id": "CU-S", "company_id": "CO-S", "name": "张五", "phone": PHONE,
            "id_number": ID_NUMBER, "address": "南路", "district": "城南", "kind": "household",
            "site": {"basement": False, "semi_basement": False, "cylinder_room": False}},
            cls.co_s)

        # Today's checks: allowed, refused for one reason, for several, an unknown code.
        # One cylinder per station: a code checked at two stations within the clone
        # window would be refused as a clone.
        for code in ("RG-OK", "RG-OK2", "RG-OK3"):
            cls.cylinder(code)
        for code in ("RG-LATE", "RG-LATE2"):
            cls.cylinder(code, next_inspection_due=iso(cls.today - timedelta(days=1)))
        cls.cylinder("RG-S", token=cls.co_s)
        cls.check("RG-OK")
        cls.check("RG-OK2", station="ST-R2")
        blocked = cls.check("RG-LATE", empty_gross_kg=15.0)  # overdue + tare mismatch
        assert sorted(r["code"] for r in blocked["reasons"]) == [
            "INSPECTION_OVERDUE", "TARE_MISMATCH"], blocked
        cls.check("RG-LATE2", station="ST-R2")  # overdue
        cls.check("RG-NOPE")  # unknown code
        cls.check("RG-S", station="ST-S")
        cls.check("RG-OK3", station="ST-S")  # not CO-S's cylinder
        # Fills: one now, and the two of the unseen boundary.
        now = datetime.now(SHANGHAI)
        cls.cylinder("RG-FILLED")
        cls.fill("RG-FILLED", now)

    # -- statistics ----------------------------------------------------------------

    def stats(self, token=None, **params):
        query = "&".join("%s=%s" % (k, q(v)) for k, v in params.items())
        return self.get("/v1/stats/fill-checks?" + query, token or self.regulator)

    def test_01_stats_by_day_range_boundaries(self):
        t = self.today
        # Today first in the range, last in the range, and the day after the range.
        first = self.stats(**{"from": iso(t), "to": iso(t + timedelta(days=6))})
        self.assertEqual(first["total"], online_counts(8, 4), first)
        self.assertEqual(len(first["groups"]), 7)
        self.assertEqual(first["groups"][0], dict(online_counts(8, 4), key=iso(t)))
        self.assertEqual([g["key"] for g in first["groups"]],
                         [iso(t + timedelta(days=i)) for i in range(7)])
        self.assertTrue(all(g["checks"] == 0 for g in first["groups"][1:]), first)
        last = self.stats(**{"from": iso(t - timedelta(days=3)), "to": iso(t)})
        self.assertEqual(last["total"], online_counts(8, 4))
        self.assertEqual(last["groups"][-1], dict(online_counts(8, 4), key=iso(t)))
        after = self.stats(**{"from": iso(t - timedelta(days=3)), "to": iso(t - timedelta(days=1))})
        self.assertEqual(after["total"], online_counts(0, 0))
        before = self.stats(**{"from": iso(t + timedelta(days=1)), "to": iso(t + timedelta(days=1))})
        self.assertEqual(before["total"], online_counts(0, 0))
        # Defaults: the last 30 days, by day.
        default = self.stats()
        self.assertEqual(default["group_by"], "day")
        self.assertEqual(default["to"], iso(t))
        self.assertEqual(default["from"], iso(t - timedelta(days=29)))
        self.assertEqual(len(default["groups"]), 30)
        # A full leap-proof year is allowed: 366 days.
        year = self.stats(**{"from": iso(t - timedelta(days=365)), "to": iso(t)})
        self.assertEqual(len(year["groups"]), 366)

    def test_02_stats_by_station_and_reason(self):
        by_station = self.stats(group_by="station", **{"from": iso(self.today), "to": iso(self.today)})
        groups = {g["key"]: g for g in by_station["groups"]}
        self.assertEqual(groups["ST-R1"], dict(online_counts(4, 2), key="ST-R1", name=AWKWARD,
                                                company_id="CO-R"))
        self.assertEqual(groups["ST-R2"]["checks"], 2)
        self.assertEqual(groups["ST-R2"]["refused"], 1)
        self.assertEqual(groups["ST-S"]["checks"], 2)
        self.assertEqual(groups["ST-QUIET"]["checks"], 0)  # a station that never checks
        refused = [g["refused"] for g in by_station["groups"]]
        self.assertEqual(refused, sorted(refused, reverse=True))
        by_reason = self.stats(group_by="reason")
        self.assertEqual(by_reason["groups"][0], reason_group("INSPECTION_OVERDUE", 2))
        reasons = {g["key"]: g["refused"] for g in by_reason["groups"]}
        self.assertEqual(reasons, {"INSPECTION_OVERDUE": 2, "TARE_MISMATCH": 1,
                                   "UNKNOWN_CODE": 1, "NOT_OWNED": 1})
        counts = [g["refused"] for g in by_reason["groups"]]
        self.assertEqual(counts, sorted(counts, reverse=True))
        # Filters: a station, a company.
        one = self.stats(station_id="ST-R2")
        self.assertEqual(one["total"], online_counts(2, 1))
        s = self.stats(company_id="CO-S", group_by="reason")
        self.assertEqual(s["total"], online_counts(2, 1))
        self.assertEqual(s["groups"], [reason_group("NOT_OWNED", 1)])

    def test_03_stats_company_sees_its_own(self):
        own = self.stats(token=self.co)
        self.assertEqual(own["total"], online_counts(6, 3))
        stations = self.stats(token=self.co_s, group_by="station")
        self.assertEqual([g["key"] for g in stations["groups"]], ["ST-S"])
        self.refused("/v1/stats/fill-checks?company_id=CO-S", self.co, 403)
        self.refused("/v1/stats/fill-checks?station_id=ST-S", self.co, 403)

    def test_04_stats_bad_parameters(self):
        t = self.today
        for query, expect in [
                ("from=2026-02-30", 400), ("to=yesterday", 400), ("from=2026-1-01", 400),
                ("from=%s&to=%s" % (iso(t), iso(t - timedelta(days=1))), 422),
                ("from=%s&to=%s" % (iso(t - timedelta(days=366)), iso(t)), 422),
                ("group_by=operator", 422), ("group_by=", 200),
                ("company_id=CO-NONE", 404), ("station_id=ST-NONE", 404)]:
            if expect == 200:
                self.get("/v1/stats/fill-checks?" + query, self.regulator)
            else:
                self.refused("/v1/stats/fill-checks?" + query, self.regulator, expect)

    # -- CSV ledgers ---------------------------------------------------------------

    def test_10_refused_checks_csv(self):
        header, rows = self.ledger("/v1/export/refused-checks.csv", self.regulator)
        self.assertEqual(header[0], "时间 time (UTC+08:00)")
        self.assertIn("拒绝原因 reasons", header)
        self.assertEqual(len(rows), 4)
        col = {h: i for i, h in enumerate(header)}
        by_code = {}
        for r in rows:
            by_code.setdefault(r[col["气瓶码 cylinder code"]], []).append(r)
        late = [r for r in by_code["RG-LATE"] if r[col["充装站 station id"]] == "ST-R1"][0]
        self.assertEqual(late[col["拒绝原因 reasons"]], "INSPECTION_OVERDUE; TARE_MISMATCH")
        self.assertEqual(late[col["充装站名称 station name"]], AWKWARD)  # comma, quotes
        self.assertEqual(late[col["充装单位名称 company name"]], '瓶码燃气, "东区"')
        self.assertIn("超期未检", late[col["原因说明 reason titles"]])
        self.assertTrue(late[col["时间 time (UTC+08:00)"]].startswith(iso(self.today) + " "))
        s_row = by_code["RG-OK3"][0]
        self.assertEqual(s_row[col["充装单位名称 company name"]], "'=SUM(A1)")  # guarded
        self.assertEqual(s_row[col["充装站名称 station name"]], "'@S站")
        # The company's own; a station filter; no phone or ID number anywhere.
        _, own = self.ledger("/v1/export/refused-checks.csv", self.co)
        self.assertEqual(len(own), 3)
        _, one = self.ledger("/v1/export/refused-checks.csv?station_id=ST-R2", self.regulator)
        self.assertEqual(len(one), 1)
        # A fullwidth ＝ reads as = in a spreadsheet in a Chinese locale: guarded too.
        self.assertEqual(one[0][col["充装站名称 station name"]], "'＝二站")
        _, yesterday = self.ledger("/v1/export/refused-checks.csv?from=%s&to=%s" % (
            iso(self.today - timedelta(days=5)), iso(self.today - timedelta(days=1))),
            self.regulator)
        self.assertEqual(yesterday, [])
        self.refused("/v1/export/refused-checks.csv?company_id=CO-S", self.co, 403)
        self.refused("/v1/export/refused-checks.csv?to=2020-13-01", self.regulator, 400)

    def test_11_fills_csv(self):
        header, rows = self.ledger("/v1/export/fills.csv", self.regulator)
        col = {h: i for i, h in enumerate(header)}
        mine = [r for r in rows if r[col["气瓶码 cylinder code"]] == "RG-FILLED"]
        self.assertEqual(len(mine), 1, rows)
        r = mine[0]
        self.assertEqual(r[col["净重 net kg"]], "14.5")
        self.assertEqual(r[col["残液 residual kg"]], "-0.5")  # a number, not guarded
        self.assertEqual(r[col["秤 scale id"]], "'=S1")  # text, guarded
        self.assertEqual(r[col["充装站名称 station name"]], AWKWARD)
        self.assertEqual(r[col["型号 model"]], "YSP35.5")
        self.assertEqual(r[col["结果 result"]], "ok")
        _, none = self.ledger("/v1/export/fills.csv?company_id=CO-S", self.regulator)
        self.assertEqual([x for x in none if x[col["气瓶码 cylinder code"]] == "RG-FILLED"], [])
        self.refused("/v1/export/fills.csv?company_id=CO-R", self.co_s, 403)
        self.refused("/v1/export/fills.csv?from=%s&to=%s" % (
            iso(self.today), iso(self.today - timedelta(days=1))), self.regulator, 422)

    def test_12_hazards_csv_and_order(self):
        header, rows = self.ledger("/v1/export/hazards.csv", self.regulator)
        self.assertEqual(header[0], "隐患编号 hazard id")
        self.assertEqual(rows, [])
        self.refused("/v1/export/hazards.csv?state=maybe", self.regulator, 422)
        self.ledger("/v1/export/hazards.csv?state=open", self.co)
        # The ledger's order in GET /v1/hazards: overdue open, open, closed.
        status, answer = self.call("GET", "/v1/hazards", token=self.regulator)
        self.assertEqual(status, 200, answer)
        self.assertEqual(answer["hazards"], [])

    def test_13_exports_carry_no_personal_numbers(self):
        for path in ("/v1/export/fills.csv", "/v1/export/refused-checks.csv",
                     "/v1/export/hazards.csv", "/v1/customers"):
            _, _, data = self.raw(path, self.regulator)
            text = data.decode("utf-8")
            self.assertNotIn(PHONE, text)
            self.assertNotIn(ID_NUMBER, text)

    # -- foresight -----------------------------------------------------------------

    def test_20_inspections_due_month_boundaries(self):
        t = self.today
        y, m = t.year, t.month
        end_this = last_day(y, m)
        first_next = date(*add_months(y, m, 1), 1)
        end_12 = last_day(*add_months(y, m, 11))
        first_13 = date(*add_months(y, m, 12), 1)
        cases = [  # (code, fields, month index or "overdue")
            ("DUE-THIS-END", {"next_inspection_due": iso(end_this)}, 0),
            ("DUE-NEXT-FIRST", {"next_inspection_due": iso(first_next)}, 1),
            ("DUE-TODAY", {"next_inspection_due": iso(t)}, 0),
            ("DUE-YESTERDAY", {"next_inspection_due": iso(t - timedelta(days=1))}, "overdue"),
            ("DUE-12TH", {"next_inspection_due": iso(end_12)}, 11),
            ("DUE-13TH", {"next_inspection_due": iso(first_13)}, None),
            # From the last inspection plus the model's 4 years.
            ("DUE-INSP-TODAY", {"next_inspection_due": None,
                                "last_inspection": iso(add_years(t, -4))}, 0),
            ("DUE-INSP-LATE", {"next_inspection_due": None,
                               "last_inspection": iso(add_years(t, -4) - timedelta(days=1))},
             "overdue"),
            # From the manufacture year-month plus 4 years, at the month's end.
            ("DUE-MADE", {"next_inspection_due": None, "last_inspection": None,
                          "manufactured": ym_text(y - 4, m), "design_life_years": 20}, 0),
            ("DUE-MADE-NEXT", {"next_inspection_due": None, "last_inspection": None,
                               "manufactured": ym_text(*add_months(y - 4, m, 1)),
                               "design_life_years": 20}, 1),
        ]
        fresh = Registry(BINARY)
        try:
            admin = fresh.token("admin", "root")
            reg = fresh.token("regulator", "SAMR")
            co = fresh.token("company", "CO-F")
            fresh.start()
            far = iso(t + timedelta(days=400))
            for cid in ("CO-F", "CO-G"):
                s, a = fresh.request("POST", "/v1/companies", {"id": cid, "name": cid,
                                     "filling_license": {"number": "X", "valid_until": far}},
                                     token=admin)
                self.assertEqual(s, 201, a)
            for code, fields, _ in cases:
                body = {"code": code, "model": "YSP35.5", "manufacturer": "M",
                        "manufactured": year_month(add_years(t, -2)), "tare_kg": 16.4,
                        "last_inspection": iso(add_years(t, -2))}
                body.update(fields)
                body = {k: v for k, v in body.items() if v is not None}
                s, a = fresh.request("POST", "/v1/cylinders", body, token=co)
                self.assertEqual(s, 201, a)
            s, due = fresh.request("GET", "/v1/foresight/inspections-due", token=reg)
            self.assertEqual(s, 200, due)
            self.assertEqual(due["months"], [ym_text(*add_months(y, m, i)) for i in range(12)])
            expected = [0] * 12
            overdue = 0
            for _, _, where in cases:
                if where == "overdue":
                    overdue += 1
                elif where is not None:
                    expected[where] += 1
            comps = {c["company_id"]: c for c in due["companies"]}
            self.assertEqual(comps["CO-F"]["counts"], expected, due)
            self.assertEqual(comps["CO-F"]["total"], sum(expected))
            self.assertEqual(comps["CO-G"]["counts"], [0] * 12)
            self.assertEqual({o["company_id"]: o["count"] for o in due["overdue"]},
                             {"CO-F": overdue, "CO-G": 0})
            # An inspection moves a cylinder; a scrap flag takes it out.
            insp = fresh.token("inspector", "AG-1")
            fresh.stop()
            fresh.start()
            s, a = fresh.request("POST", "/v1/inspections", {
                "code": "DUE-13TH", "date": iso(t), "result": "pass", "report_no": "R1",
                "next_due": iso(first_next)}, token=insp)
            self.assertEqual(s, 201, a)
            s, a = fresh.request("POST", "/v1/inspections", {
                "code": "DUE-TODAY", "date": iso(t), "result": "fail", "report_no": "R2"},
                token=insp)
            self.assertEqual(s, 201, a)
            expected[1] += 1
            expected[0] -= 1
            s, due = fresh.request("GET", "/v1/foresight/inspections-due?months=13", token=reg)
            self.assertEqual(len(due["months"]), 13)
            comps = {c["company_id"]: c for c in due["companies"]}
            self.assertEqual(comps["CO-F"]["counts"], expected + [0], due)
            s, own = fresh.request("GET", "/v1/foresight/inspections-due", token=co)
            self.assertEqual([c["company_id"] for c in own["companies"]], ["CO-F"])
            for bad in ("months=0", "months=121", "months=x"):
                s, a = fresh.request("GET", "/v1/foresight/inspections-due?" + bad, token=reg)
                self.assertEqual(s, 422, a)
                self.assertTrue(a["error"]["message"])
        finally:
            if fresh.running:
                fresh.stop()
            fresh.cleanup()

    def test_21_unseen_boundary_and_paging(self):
        t = self.today
        n = 6
        since = months_before(t, n)
        noon = lambda d: datetime(d.year, d.month, d.day, 12, 0, tzinfo=SHANGHAI)
        self.cylinder("UN-EXACT", token=self.co_s)
        self.cylinder("UN-DAYLESS", token=self.co_s)
        self.fill("UN-EXACT", noon(since), station="ST-S")
        self.fill("UN-DAYLESS", noon(since + timedelta(days=1)), station="ST-S")
        # Exactly N months ago at the last second of the day, too.
        self.cylinder("UN-LATE-EVENING", token=self.co_s)
        self.fill("UN-LATE-EVENING", datetime(since.year, since.month, since.day, 23, 59, 59,
                                              tzinfo=SHANGHAI), station="ST-S")
        page = self.get("/v1/foresight/unseen?months=%d&company_id=CO-S" % n, self.regulator)
        self.assertEqual(page["since"], iso(since))
        codes = [c["code"] for c in page["cylinders"]]
        self.assertIn("UN-EXACT", codes)
        self.assertIn("UN-LATE-EVENING", codes)
        self.assertNotIn("UN-DAYLESS", codes)
        self.assertNotIn("RG-S", codes)  # registered today, never filled
        exact = [c for c in page["cylinders"] if c["code"] == "UN-EXACT"][0]
        self.assertEqual(exact["last_fill_station"], "ST-S")
        self.assertEqual(exact["owner_company_id"], "CO-S")
        self.assertEqual(exact["model"], "YSP35.5")
        self.assertEqual(exact["next_inspection_due"], iso(add_years(t, 2)))
        self.assertEqual(codes[0], "UN-EXACT")  # oldest first
        # Paging over many: every item once, in order.
        for i in range(7):
            self.cylinder("UN-P%02d" % i, token=self.co_s)
            self.fill("UN-P%02d" % i, noon(since - timedelta(days=10 + i)), station="ST-S")
        seen, cursor, pages = [], None, 0
        while True:
            path = "/v1/foresight/unseen?months=%d&limit=3" % n
            if cursor:
                path += "&cursor=" + q(cursor)
            page = self.get(path, self.regulator)
            self.assertLessEqual(len(page["cylinders"]), 3)
            seen += [c["code"] for c in page["cylinders"]]
            pages += 1
            cursor = page["next_cursor"]
            if not cursor:
                break
        self.assertEqual(len(seen), len(set(seen)), seen)
        self.assertEqual(seen, ["UN-P%02d" % i for i in reversed(range(7))]
                         + ["UN-EXACT", "UN-LATE-EVENING"])
        self.assertEqual(pages, 3)
        # A company sees its own; bad parameters.
        own = self.get("/v1/foresight/unseen?months=%d" % n, self.co)
        self.assertEqual(own["cylinders"], [])
        self.refused("/v1/foresight/unseen?months=0", self.regulator, 422)
        self.refused("/v1/foresight/unseen?cursor=nonsense", self.regulator, 400)
        self.refused("/v1/foresight/unseen?limit=0", self.regulator, 400)
        self.refused("/v1/foresight/unseen?company_id=CO-S", self.co, 403)

    # -- lists ---------------------------------------------------------------------

    def page_all(self, path, key, token, limit):
        items, cursor = [], None
        while True:
            sep = "&" if "?" in path else "?"
            p = "%s%slimit=%d" % (path, sep, limit) + ("&cursor=" + q(cursor) if cursor else "")
            answer = self.get(p, token)
            self.assertLessEqual(len(answer[key]), limit)
            items += answer[key]
            cursor = answer["next_cursor"]
            if not cursor:
                return items

    def test_30_lists(self):
        companies = self.get("/v1/companies", self.regulator)["companies"]
        self.assertEqual([c["id"] for c in companies], ["CO-R", "CO-S"])
        self.assertEqual(companies[0]["filling_license"]["number"], "TS-CO-R")
        stations = self.page_all("/v1/stations", "stations", self.regulator, 1)
        self.assertEqual([s["id"] for s in stations], ["ST-QUIET", "ST-R1", "ST-R2", "ST-S"])
        self.assertEqual(stations[1], {"id": "ST-R1", "company_id": "CO-R", "name": AWKWARD,
                                       "district": "城东", "locked": False, "lock_reason": ""})
        own = self.get("/v1/stations", self.co_s)["stations"]
        self.assertEqual([s["id"] for s in own], ["ST-S"])
        self.assertEqual([v["id"] for v in self.get("/v1/vehicles", self.co)["vehicles"]], ["V-R"])
        couriers = self.get("/v1/couriers?company_id=CO-S", self.regulator)["couriers"]
        self.assertEqual([c["id"] for c in couriers], ["CR-S"])
        self.assertEqual(couriers[0]["zones"], ["城南"])

    def test_31_customers(self):
        everyone = self.page_all("/v1/customers", "customers", self.regulator, 2)
        self.assertEqual(len(everyone), 7)
        self.assertEqual(len({c["id"] for c in everyone}), 7)
        c = everyone[0]
        self.assertEqual(c["phone"], "139****1234")
        self.assertEqual(c["id_number"], ID_NUMBER[:4] + "*" * 10 + ID_NUMBER[14:])
        self.assertEqual(set(c), {"id", "company_id", "name", "phone", "id_number", "address",
                                  "district", "kind", "site"})
        zhang = self.page_all("/v1/customers?q=" + q("张三"), "customers", self.co, 1)
        self.assertEqual([x["name"] for x in zhang], ["张三", "张三丰"])
        zhang = self.get("/v1/customers?q=" + q("张"), self.co)["customers"]
        self.assertEqual(sorted(x["name"] for x in zhang), ["张三", "张三丰", "张四"])
        # The courier sees its own company's customers, and nothing else of this file.
        mine = self.get("/v1/customers", self.courier)["customers"]
        self.assertEqual({x["company_id"] for x in mine}, {"CO-R"})
        self.assertEqual(len(mine), 6)
        self.refused("/v1/customers?company_id=CO-S", self.courier, 403)
        self.refused("/v1/customers?company_id=CO-S", self.co, 403)
        self.refused("/v1/customers?cursor=CU-NONE", self.co, 400)

    def test_32_public_reports(self):
        ids = []
        for i in range(5):
            s, a = self.reg.request("POST", "/c/RG-OK/report", {"category": "leak", "text": "第%d次" % i,
                                                         "contact": "139"},
                                    headers={"Accept": "application/json"})
            if s == 429:
                break
            self.assertEqual(s, 201, a)
            ids.append(a["report_id"])
        reports = self.page_all("/v1/reports", "reports", self.regulator, 2)
        self.assertEqual([r["id"] for r in reports], list(reversed(ids)))
        self.assertEqual(reports[0]["contact"], "139")
        self.assertEqual(reports[0]["category"], "leak")
        self.refused("/v1/reports?cursor=abc", self.regulator, 400)
        self.refused("/v1/reports", self.co, 403)

    def test_33_roles(self):
        paths = ["/v1/stats/fill-checks", "/v1/export/fills.csv", "/v1/export/refused-checks.csv",
                 "/v1/export/hazards.csv", "/v1/foresight/inspections-due",
                 "/v1/foresight/unseen", "/v1/companies", "/v1/stations", "/v1/vehicles",
                 "/v1/couriers", "/v1/reports"]
        for path in paths:
            for token in (self.courier, self.st, self.inspector):
                self.refused(path, token, 403)
        for token in (self.st, self.inspector):
            self.refused("/v1/customers", token, 403)
        self.refused("/v1/companies", self.co, 403)
        self.refused("/v1/stats/fill-checks", "nonsense", 401)

    def test_34_regulator_reads_everything_and_changes_only_locks_recalls_licences(self):
        """Every route of the registry, read from its source so that a new one cannot
        be missed: a regulator may call every GET but the token list (API.md: the
        admin's, and a company's for its own), and of the writes only the licences,
        a station's lock and unlock, recalls and erasing personal data (and the
        label photo reader, which stores nothing)."""
        import re
        source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                              "registry", "src", "service.cpp")
        with open(source, encoding="utf-8") as f:
            routes = re.findall(r'\{"(GET|POST|DELETE)",\s*"(/v1/[^"]+)"', f.read())
        self.assertGreater(len(routes), 40, routes)
        may_write = {"/v1/companies/{}/license", "/v1/stations/{}/lock",
                     "/v1/stations/{}/unlock", "/v1/recalls", "/v1/scan/image",
                     "/v1/personal-data/{}"}
        may_not_read = {"/v1/tokens"}
        self.assertIn(("DELETE", "/v1/personal-data/{}"), routes)
        for method, pattern in routes:
            path = pattern.replace("{}", "ST-R1")
            with self.subTest(method=method, path=path):
                status, answer = self.call(method, path, body={} if method == "POST" else None,
                                           token=self.regulator)
                if (method == "GET" and pattern not in may_not_read) or pattern in may_write:
                    self.assertNotIn(status, (401, 403), "%s %s -> %s %r"
                                     % (method, path, status, answer))
                else:
                    self.assertEqual(status, 403, "%s %s -> %s %r"
                                     % (method, path, status, answer))

    # -- restart and backfill -------------------------------------------------------

    def test_90_counts_survive_restart_and_are_backfilled(self):
        before = {g: self.stats(group_by=g) for g in ("day", "station", "reason")}
        due_before = self.get("/v1/foresight/inspections-due", self.regulator)
        _, refusals_before = self.ledger("/v1/export/refused-checks.csv", self.regulator)
        self.reg.stop()
        self.reg.start()
        for g, answer in before.items():
            self.assertEqual(self.stats(group_by=g), answer)
        if STORE == "postgresql":
            self.skipTest("what follows upgrades a SQLite store made before the summaries; "
                          "PostgreSQL's schema began with them")
        # A store made before checks decided offline: their columns and table dropped
        # while the registry is stopped, added again at start with the right figures.
        self.reg.stop()
        con = sqlite3.connect(self.reg.db)
        con.executescript(
            "ALTER TABLE check_days DROP COLUMN offline_checks;"
            "ALTER TABLE check_days DROP COLUMN offline_refused;"
            "ALTER TABLE check_days DROP COLUMN disagreements;"
            "ALTER TABLE refusal_days DROP COLUMN offline_n;"
            "ALTER TABLE refusal_days DROP COLUMN disagreements;"
            "ALTER TABLE refusals DROP COLUMN offline;"
            "ALTER TABLE refusals DROP COLUMN registry_decision;"
            "ALTER TABLE refusals DROP COLUMN agrees;"
            "DROP TABLE offline_checks;")
        con.commit()
        con.close()
        self.reg.start()
        for g, answer in before.items():
            self.assertEqual(self.stats(group_by=g), answer, g)
        _, refusals_upgraded = self.ledger("/v1/export/refused-checks.csv", self.regulator)
        self.assertEqual(refusals_upgraded, refusals_before)
        # A store made before the summaries: drop them while the registry is stopped.
        self.reg.stop()
        con = sqlite3.connect(self.reg.db)
        con.executescript(
            "DROP TABLE check_days; DROP TABLE refusal_days; DROP TABLE refusals;"
            "DROP TRIGGER due_counts_insert; DROP TRIGGER due_counts_update;"
            "DROP TRIGGER due_counts_delete; DROP TABLE due_counts;"
            "DROP INDEX cylinders_unseen_filled; DROP INDEX cylinders_unseen_unfilled;"
            "DROP INDEX events_public_reports;"
            "ALTER TABLE cylinders DROP COLUMN registered_at;")
        con.commit()
        con.close()
        self.reg.start()
        for g, answer in before.items():
            self.assertEqual(self.stats(group_by=g), answer, g)
        self.assertEqual(self.get("/v1/foresight/inspections-due", self.regulator), due_before)
        _, refusals_after = self.ledger("/v1/export/refused-checks.csv", self.regulator)
        self.assertEqual(refusals_after, refusals_before)
        # Registration times from the log: nothing registered today is unseen.
        unseen = self.get("/v1/foresight/unseen?months=1", self.regulator)
        self.assertNotIn("RG-S", [c["code"] for c in unseen["cylinders"]])
        # And a cylinder registered long ago and never filled is.
        self.reg.stop()
        con = sqlite3.connect(self.reg.db)
        con.execute("UPDATE cylinders SET registered_at = ? WHERE code = 'RG-S'",
                    (int((datetime.now(timezone.utc) - timedelta(days=400)).timestamp() * 1000),))
        con.commit()
        con.close()
        self.reg.start()
        unseen = self.get("/v1/foresight/unseen?months=12", self.regulator)
        row = [c for c in unseen["cylinders"] if c["code"] == "RG-S"]
        self.assertEqual(len(row), 1, unseen)
        self.assertIsNone(row[0]["last_fill_at"])
        self.assertIsNotNone(row[0]["registered_at"])


if __name__ == "__main__":
    BINARY = take_binary_argument()
    unittest.main(verbosity=2)
