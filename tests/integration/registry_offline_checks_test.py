"""Checks a station decided offline, uploaded to the real pingma-registry
(POST /v1/fill-checks/offline, API.md "Filling").

What is proven, each rule at its boundary: 201 then 200 for the same check_id (after
a restart too, and from a second registry on the same PostgreSQL database), nothing
stored twice; the registry's decision made again as of the check's `at` (a cylinder
due on day D: allowed at D 23:59:59.999, blocked at D+1 00:00 Asia/Shanghai);
agreement both ways, and a station's allow the registry would have refused recorded
once as a violation; a scrap-class reason flags an active cylinder once; clone
detection by when a check was decided, not when it arrived; the regulator's
statistics by day, station and reason counting offline checks on the day they were
decided; the refused-checks CSV (read back with Python's csv module) with its offline
columns after the old ones; the history's marks; the role rules; and bad input, each
a clear 4xx that stores nothing.

    python3 registry_offline_checks_test.py /path/to/pingma-registry
"""

import csv
import io
import os
import sys
import unittest
import uuid
from datetime import datetime, time, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from registry_harness import (STORE, Registry, RegistryCase, add_years, iso,
                              take_binary_argument, today_shanghai,
                              wait_past_shanghai_midnight, year_month)

BINARY = None  # set in __main__
SHANGHAI = timezone(timedelta(hours=8))
OLD_REFUSED_HEADER = [
    "时间 time (UTC+08:00)", "检查号 check id", "气瓶码 cylinder code", "充装单位 company id",
    "充装单位名称 company name", "充装站 station id", "充装站名称 station name",
    "操作员 operator id", "拒绝原因 reasons", "原因说明 reason titles"]
OFFLINE_COLUMNS = ["离线判定 offline", "注册中心判定 registry decision", "判定一致 agrees"]


def shanghai(day, hour=0, minute=0, second=0, ms=0):
    """An RFC 3339 instant on `day` in Asia/Shanghai, written with its +08:00 offset."""
    dt = datetime.combine(day, time(hour, minute, second, ms * 1000), SHANGHAI)
    return dt.isoformat(timespec="milliseconds")


def utc_ago(**delta):
    """An RFC 3339 instant `delta` before now, in UTC."""
    return (datetime.now(timezone.utc) - timedelta(**delta)).isoformat(timespec="milliseconds")


def codes(reasons):
    return [r["code"] if isinstance(r, dict) else r for r in reasons]


class OfflineChecksTest(RegistryCase):
    maxDiff = 6000
    TOKENS = {"admin": ("admin", "root"), "regulator": ("regulator", "SAMR"),
              "co": ("company", "CO-O"), "st_a": ("station", "ST-A"),
              "st_b": ("station", "ST-B"), "st_p": ("station", "ST-P")}

    @classmethod
    def setUpClass(cls):
        wait_past_shanghai_midnight(300)
        cls.today = today_shanghai()
        # Days of their own, so that each day's counts are only the checks made for it.
        cls.d = cls.today - timedelta(days=3)    # OC-DUE's inspection is due on D
        cls.e = cls.today - timedelta(days=6)    # the agreement cases
        cls.f = cls.today - timedelta(days=9)    # the scrap flag
        cls.g = cls.today - timedelta(days=12)   # the history's marks
        super().setUpClass()

    @classmethod
    def world(cls):
        far = iso(cls.today + timedelta(days=400))
        for co in ("CO-O", "CO-P"):
            cls.post("/v1/companies", {"id": co, "name": co + " 燃气", "filling_license":
                                       {"number": "TS-" + co, "valid_until": far}}, cls.admin)
        for st, co in (("ST-A", "CO-O"), ("ST-B", "CO-O"), ("ST-P", "CO-P")):
            cls.post("/v1/stations", {"id": st, "company_id": co, "name": st + " 站",
                                      "district": "城东"}, cls.admin)
        for op, co in (("OP-O", "CO-O"), ("OP-P", "CO-P")):
            cls.post("/v1/operators", {"id": op, "company_id": co, "name": "Op",
                                       "certificate": {"number": "C-" + op,
                                                       "valid_until": far}}, cls.admin)
        for code in ("OC-OK", "OC-OK2", "OC-OK3", "OC-OK4", "OC-ROLE", "OC-BAD",
                     "OC-CL1", "OC-CL2", "OC-CL3", "OC-CL4", "OC-CL5", "OC-CL6"):
            cls.cylinder(code)
        cls.cylinder("OC-DUE", next_inspection_due=iso(cls.d))
        for code in ("OC-LATE", "OC-LATE2"):
            cls.cylinder(code, next_inspection_due=iso(cls.e - timedelta(days=30)))
        cls.cylinder("OC-DUAL", model="YSP118-II", tare_kg=40.5)

    @classmethod
    def cylinder(cls, code, **fields):
        body = {"code": code, "model": "YSP35.5", "manufacturer": "Hebei Example Cylinder Co.",
                "manufactured": year_month(add_years(cls.today, -2)), "tare_kg": 16.4,
                "design_life_years": 8, "last_inspection": iso(add_years(cls.today, -2)),
                "next_inspection_due": iso(add_years(cls.today, 2))}
        body.update(fields)
        return cls.post("/v1/cylinders", body, cls.co)

    # -- helpers ------------------------------------------------------------------

    _done = set()

    def once(self, what):
        """True the first time: the checks of test_03 and test_04 are made once, by
        them or by the tests that count them, whichever runs first."""
        if what in self._done:
            return False
        self._done.add(what)
        return True

    def offline(self, code, at, decision="allow", reasons=(), station="ST-A", check_id=None,
                token=None, **extra):
        """Uploads one offline check; returns (status, answer, body sent)."""
        body = {"check_id": check_id or str(uuid.uuid4()), "station_id": station,
                "operator_id": "OP-O" if station != "ST-P" else "OP-P", "scan": code,
                "at": at, "decision": decision, "reasons": list(reasons),
                "replica_synced_at": utc_ago(hours=12)}
        body.update(extra)
        token = token or {"ST-A": self.st_a, "ST-B": self.st_b, "ST-P": self.st_p}[station]
        status, answer = self.call("POST", "/v1/fill-checks/offline", body, token)
        return status, answer, body

    def uploaded(self, code, at, decision="allow", reasons=(), **kw):
        status, answer, body = self.offline(code, at, decision, reasons, **kw)
        self.assertEqual(status, 201, answer)
        self.assertEqual(answer["check_id"], body["check_id"].lower())
        self.assertFalse(answer["duplicate"])
        return answer, body

    def online(self, code, station="ST-A"):
        token = {"ST-A": self.st_a, "ST-B": self.st_b}[station]
        return self.post("/v1/fill-checks", {"station_id": station, "operator_id": "OP-O",
                                             "code": code}, token)

    def history(self, code):
        status, answer = self.call("GET", "/v1/cylinders/%s/history?limit=1000" % code,
                                   token=self.regulator)
        self.assertEqual(status, 200, answer)
        return answer["events"]

    def of_type(self, code, type_):
        return [e for e in self.history(code) if e["type"] == type_]

    def stored(self):
        """What a refused request must leave unchanged: the log, the offline checks,
        the counts and the refusals."""
        return [self.reg.query("select count(*) as n from events"),
                self.reg.query("select count(*) as n from offline_checks"),
                self.reg.query("select sum(checks) as n from check_days"),
                self.reg.query("select count(*) as n from refusals")]

    def refused(self, status, answer, expect, what):
        self.assertEqual(status, expect, "%s: %r" % (what, answer))
        self.assertIsInstance(answer, dict, what)
        self.assertTrue(answer["error"]["code"], answer)
        self.assertTrue(answer["error"]["message"].strip(), answer)
        return answer["error"]["message"]

    def stats(self, **params):
        query = "&".join("%s=%s" % kv for kv in params.items())
        status, answer = self.call("GET", "/v1/stats/fill-checks?" + query, token=self.regulator)
        self.assertEqual(status, 200, answer)
        return answer

    def ledger(self, path):
        conn = self.reg.connection()
        try:
            status, data, headers = conn.request("GET", path, token=self.regulator)
        finally:
            conn.close()
        self.assertEqual(status, 200, data)
        if isinstance(data, bytes):
            data = data.decode("utf-8")
        self.assertTrue(data.startswith("\ufeff"), data[:20])
        rows = list(csv.reader(io.StringIO(data[1:], newline="")))
        for row in rows:
            self.assertEqual(len(row), len(rows[0]), row)
        return rows[0], rows[1:]

    # -- idempotence ----------------------------------------------------------------

    def test_01_created_then_duplicate(self):
        at = utc_ago(minutes=90)
        answer, body = self.uploaded("OC-OK", at)
        self.assertEqual(answer, {"check_id": body["check_id"], "registry_decision": "allow",
                                  "registry_reasons": [], "agrees": True, "duplicate": False})
        before = self.stored()
        again = self.post("/v1/fill-checks/offline", body, self.st_a, expect=(200,))
        self.assertEqual(again, dict(answer, duplicate=True))
        # The same id in upper case, and with another body: the first check's answer.
        other = dict(body, check_id=body["check_id"].upper(), decision="block",
                     reasons=["DEFECT_FOUND"], at=utc_ago(minutes=5))
        self.assertEqual(self.post("/v1/fill-checks/offline", other, self.st_a, expect=(200,)),
                         dict(answer, duplicate=True))
        self.assertEqual(self.stored(), before, "a check sent again stored something")
        checks = [e for e in self.of_type("OC-OK", "fill_check") if e.get("offline")]
        self.assertEqual(len(checks), 1, checks)
        # Another station's check id: refused, not answered with that station's check.
        status, answer, _ = self.offline("OC-OK", at, station="ST-B", check_id=body["check_id"])
        self.assertEqual(status, 409, answer)
        self.assertEqual(answer["error"]["code"], "ID_IN_USE", answer)
        self.assertNotIn("registry_decision", answer)
        self.assertIn("used by another caller", answer["error"]["message"])
        self.assertEqual(self.stored(), before, "another station's id stored something")

    def test_02_history_marks(self):
        at = shanghai(self.g, 9, 30)
        answer, body = self.uploaded("https://pingma.example/c/OC-OK2", at,
                                     empty_gross_kg=16.9, defects=["dent"],
                                     replica_synced_at=None)
        self.assertEqual(answer["registry_decision"], "block")  # a dent is a defect
        self.assertFalse(answer["agrees"])
        self.assertEqual(codes(answer["registry_reasons"]), ["DEFECT_FOUND"])
        self.assertTrue(all(r["message"] for r in answer["registry_reasons"]), answer)
        [ev] = [e for e in self.of_type("OC-OK2", "fill_check")
                if e.get("station_check_id") == body["check_id"]]
        self.assertIs(ev["offline"], True)
        self.assertEqual((ev["decision"], ev["reasons"]), ("allow", []))  # the station's
        self.assertEqual((ev["registry_decision"], ev["registry_reasons"]),
                         ("block", ["DEFECT_FOUND"]))
        self.assertIs(ev["agrees"], False)
        self.assertEqual(datetime.fromisoformat(ev["decided_at"].replace("Z", "+00:00")),
                         datetime.fromisoformat(at))
        self.assertIsNone(ev["replica_synced_at"])
        self.assertEqual((ev["station_id"], ev["operator_id"], ev["scan"]),
                         ("ST-A", "OP-O", "https://pingma.example/c/OC-OK2"))
        self.assertEqual((ev["empty_gross_kg"], ev["defects"]), (16.9, ["dent"]))
        self.assertEqual(ev["actor"], {"role": "station", "id": "ST-A"})
        # Logged when it arrived, not when it was decided.
        logged = datetime.fromisoformat(ev["at"].replace("Z", "+00:00"))
        self.assertLess(abs((datetime.now(timezone.utc) - logged).total_seconds()), 120)
        # An online check's event has none of the offline fields.
        self.online("OC-OK2")
        online = [e for e in self.of_type("OC-OK2", "fill_check") if "station_check_id" not in e]
        self.assertEqual(len(online), 1)
        for key in ("offline", "agrees", "registry_decision", "decided_at"):
            self.assertNotIn(key, online[0])

    # -- agreement --------------------------------------------------------------------

    def test_03_agreement_both_ways(self):
        if not self.once("agreement"):
            return
        noon = shanghai(self.e, 12)
        # The station refused, the registry would have allowed.
        a, _ = self.uploaded("OC-OK3", noon, "block", ["INSPECTION_OVERDUE"])
        self.assertEqual((a["registry_decision"], a["agrees"]), ("allow", False))
        self.assertEqual(self.of_type("OC-OK3", "violation"), [])
        # Both refused (for the same reason).
        c, _ = self.uploaded("OC-LATE2", noon, "block", ["INSPECTION_OVERDUE"])
        self.assertEqual((c["registry_decision"], c["agrees"]), ("block", True))
        self.assertEqual(codes(c["registry_reasons"]), ["INSPECTION_OVERDUE"])
        self.assertEqual(self.of_type("OC-LATE2", "violation"), [])
        # The station allowed what the registry would have refused: a violation, once.
        b, body = self.uploaded("OC-LATE", noon, station="ST-B")
        self.assertEqual((b["registry_decision"], b["agrees"]), ("block", False))
        self.assertEqual(codes(b["registry_reasons"]), ["INSPECTION_OVERDUE"])
        self.post("/v1/fill-checks/offline", body, self.st_b, expect=(200,))
        [violation] = self.of_type("OC-LATE", "violation")
        self.assertEqual(violation["station_check_id"], body["check_id"])
        self.assertEqual(violation["registry_decision"], "block")
        self.assertEqual(violation["reasons"], ["INSPECTION_OVERDUE"])
        self.assertEqual(violation["offline_decision"]["decision"], "allow")
        self.assertEqual(violation["station_id"], "ST-B")
        [check] = self.of_type("OC-LATE", "fill_check")
        self.assertEqual(violation["check_id"], check["id"])
        self.assertEqual(violation["actor"], {"role": "registry", "id": "policy"})

    def test_04_decided_again_at_its_instant(self):
        """OC-DUE is due on D: valid through D itself, overdue from D+1 00:00 in
        Asia/Shanghai, whenever the check arrives."""
        if not self.once("instant"):
            return
        last = self.uploaded("OC-DUE", shanghai(self.d, 23, 59, 59, 999))[0]
        self.assertEqual((last["registry_decision"], last["agrees"]), ("allow", True))
        first = self.uploaded("OC-DUE", shanghai(self.d + timedelta(days=1)), "block",
                              ["INSPECTION_OVERDUE"])[0]
        self.assertEqual((first["registry_decision"], first["agrees"]), ("block", True))
        self.assertEqual(codes(first["registry_reasons"]), ["INSPECTION_OVERDUE"])
        # The same instants written in UTC: 16:00Z is midnight in Shanghai.
        day = self.d.isoformat()
        before = self.uploaded("OC-DUE", day + "T15:59:59.999Z")[0]
        self.assertEqual(before["registry_decision"], "allow")
        after = self.uploaded("OC-DUE", day + "T16:00:00Z", "block", ["INSPECTION_OVERDUE"])[0]
        self.assertEqual(after["registry_decision"], "block")

    def test_05_scrap_class_flags_an_active_cylinder_once(self):
        first, _ = self.uploaded("OC-DUAL", shanghai(self.f, 10), "block", ["DUAL_PHASE_BANNED"])
        self.assertEqual((first["registry_decision"], first["agrees"]), ("block", True))
        self.assertEqual(codes(first["registry_reasons"]), ["DUAL_PHASE_BANNED"])
        status, record = self.call("GET", "/v1/cylinders/OC-DUAL", token=self.regulator)
        self.assertEqual(record["state"], "scrap_pending", record)
        second, _ = self.uploaded("OC-DUAL", shanghai(self.f, 11), "block", ["DUAL_PHASE_BANNED"])
        self.assertIn("SCRAP_PENDING", codes(second["registry_reasons"]))
        flags = self.of_type("OC-DUAL", "flagged_for_scrap")
        self.assertEqual(len(flags), 1, flags)
        self.assertEqual(flags[0]["reason"], "DUAL_PHASE_BANNED")

    # -- clone detection ------------------------------------------------------------------

    def test_06_clone_detection_by_when_decided(self):
        # Decided two hours ago at ST-A, uploaded now: an online check at ST-B now is
        # no clone (the window is 60 minutes from when it was decided).
        self.uploaded("OC-CL1", utc_ago(hours=2))
        self.assertEqual(self.online("OC-CL1", "ST-B")["decision"], "allow")
        # Uploaded late by ST-A itself, decided 10 minutes ago: its own online check
        # now is no clone of it.
        self.uploaded("OC-CL2", utc_ago(minutes=10))
        self.assertEqual(self.online("OC-CL2", "ST-A")["decision"], "allow")
        # Decided 10 minutes ago at ST-A: at ST-B now, within the window, it is.
        self.uploaded("OC-CL3", utc_ago(minutes=10))
        clone = self.online("OC-CL3", "ST-B")
        self.assertEqual(codes(clone["reasons"]), ["CLONE_SUSPECTED"])
        # Two offline checks at two stations 10 minutes apart: the second uploaded is
        # decided a clone whichever was decided first; allowed at the scale, a violation.
        self.uploaded("OC-CL4", utc_ago(minutes=20), station="ST-B")
        later = self.uploaded("OC-CL4", utc_ago(minutes=30))[0]
        self.assertEqual((later["registry_decision"], later["agrees"]), ("block", False))
        self.assertEqual(codes(later["registry_reasons"]), ["CLONE_SUSPECTED"])
        self.assertEqual(len(self.of_type("OC-CL4", "violation")), 1)
        # An offline check arriving after a later check of the code does not take its
        # place: the next check compares with the later one (ST-B's, a moment ago).
        self.online("OC-CL5", "ST-B")
        earlier = self.uploaded("OC-CL5", utc_ago(minutes=70))[0]
        self.assertEqual(earlier["registry_decision"], "allow")  # 70 minutes apart
        self.assertEqual(codes(self.online("OC-CL5", "ST-A")["reasons"]), ["CLONE_SUSPECTED"])

    # -- the regulator's figures ---------------------------------------------------------

    def test_07_statistics_count_offline_checks_on_their_day(self):
        self.test_03_agreement_both_ways()
        self.test_04_decided_again_at_its_instant()
        zero = {"checks": 0, "refused": 0, "offline_checks": 0, "offline_refused": 0,
                "disagreements": 0}
        by_day = self.stats(**{"from": iso(self.e - timedelta(days=1)),
                               "to": iso(self.d + timedelta(days=1))})
        days = {g["key"]: g for g in by_day["groups"]}
        self.assertEqual(days[iso(self.e)], {"key": iso(self.e), "checks": 3, "refused": 2,
                                             "offline_checks": 3, "offline_refused": 2,
                                             "disagreements": 2})
        self.assertEqual(days[iso(self.d)], {"key": iso(self.d), "checks": 2, "refused": 0,
                                             "offline_checks": 2, "offline_refused": 0,
                                             "disagreements": 0})
        d1 = iso(self.d + timedelta(days=1))
        self.assertEqual(days[d1], {"key": d1, "checks": 2, "refused": 2, "offline_checks": 2,
                                    "offline_refused": 2, "disagreements": 0})
        for day in (self.e - timedelta(days=1), self.e + timedelta(days=1),
                    self.d - timedelta(days=1)):
            self.assertEqual(days[iso(day)], dict(zero, key=iso(day)))
        # Nothing of those days counted today, when they arrived.
        self.assertEqual(by_day["total"], {"checks": 7, "refused": 4, "offline_checks": 7,
                                           "offline_refused": 4, "disagreements": 2})
        one_day = {"from": iso(self.e), "to": iso(self.e)}
        stations = {g["key"]: g for g in self.stats(group_by="station", **one_day)["groups"]}
        self.assertEqual({k: v for k, v in stations["ST-A"].items() if k not in ("name",
                                                                              "company_id")},
                         {"key": "ST-A", "checks": 2, "refused": 2, "offline_checks": 2,
                          "offline_refused": 2, "disagreements": 1})
        self.assertEqual(stations["ST-B"]["checks"], 1)
        self.assertEqual(stations["ST-B"]["refused"], 0)  # it allowed, against the registry
        self.assertEqual(stations["ST-B"]["disagreements"], 1)
        self.assertEqual(stations["ST-P"], dict(zero, key="ST-P", name="ST-P 站",
                                                company_id="CO-P"))
        reasons = self.stats(group_by="reason", **one_day)["groups"]
        self.assertEqual(reasons, [{"key": "INSPECTION_OVERDUE", "refused": 2,
                                    "offline_checks": 2, "offline_refused": 2,
                                    "disagreements": 1}])

    def test_08_refused_checks_csv(self):
        self.test_03_agreement_both_ways()
        self.test_04_decided_again_at_its_instant()
        self.online("OC-LATE2", "ST-B")  # an online refusal today, for the columns' values
        header, rows = self.ledger("/v1/export/refused-checks.csv?from=%s&to=%s"
                                   % (iso(self.e), iso(self.today)))
        # The old columns first, unchanged; the offline ones appended.
        self.assertEqual(header, OLD_REFUSED_HEADER + OFFLINE_COLUMNS)
        col = {h: i for i, h in enumerate(header)}
        by_code = {}
        for r in rows:
            by_code.setdefault(r[col["气瓶码 cylinder code"]], []).append(r)
        [ok3] = by_code["OC-OK3"]
        self.assertEqual([ok3[col[c]] for c in OFFLINE_COLUMNS], ["yes", "allow", "no"])
        self.assertEqual(ok3[col["拒绝原因 reasons"]], "INSPECTION_OVERDUE")
        self.assertEqual(ok3[col["时间 time (UTC+08:00)"]], iso(self.e) + " 12:00:00")
        late2 = by_code["OC-LATE2"]
        offline = [r for r in late2 if r[col["离线判定 offline"]] == "yes"]
        online = [r for r in late2 if r[col["离线判定 offline"]] == "no"]
        self.assertEqual([offline[0][col[c]] for c in OFFLINE_COLUMNS], ["yes", "block", "yes"])
        self.assertEqual([online[0][col[c]] for c in OFFLINE_COLUMNS], ["no", "block", "yes"])
        self.assertTrue(online[0][col["时间 time (UTC+08:00)"]].startswith(iso(self.today)))
        # A check the station allowed is no refusal, whatever the registry says.
        self.assertNotIn("OC-LATE", by_code)
        # Refused at D+1 00:00 Shanghai: on that day, in order by day.
        due = [r for r in by_code["OC-DUE"]]
        self.assertEqual(len(due), 2)
        self.assertTrue(all(r[col["时间 time (UTC+08:00)"]] == iso(self.d + timedelta(days=1))
                            + " 00:00:00" for r in due), due)
        days = [r[col["时间 time (UTC+08:00)"]][:10] for r in rows]
        self.assertEqual(days, sorted(days))

    # -- roles -------------------------------------------------------------------------------

    def test_10_roles(self):
        before = self.stored()
        status, answer, _ = self.offline("OC-ROLE", utc_ago(minutes=5), station="ST-A",
                                         token=self.st_b)
        message = self.refused(status, answer, 403, "another station's token")
        self.assertIn("ST-B", message)
        for who, token in (("company", self.co), ("regulator", self.regulator),
                           ("admin", self.admin)):
            status, answer, _ = self.offline("OC-ROLE", utc_ago(minutes=5), token=token)
            self.refused(status, answer, 403, who)
        status, answer, _ = self.offline("OC-ROLE", utc_ago(minutes=5), token="nonsense")
        self.refused(status, answer, 401, "a bad token")
        status, answer = self.call("GET", "/v1/fill-checks/offline", token=self.st_a)
        self.refused(status, answer, 405, "GET")
        self.assertEqual(self.stored(), before)
        self.assertEqual([e for e in self.history("OC-ROLE") if e["type"] != "registered"], [])
        # A station of another company: its check is decided, NOT_OWNED.
        answer, _ = self.uploaded("OC-ROLE", utc_ago(minutes=5), "block", ["NOT_OWNED"],
                                  station="ST-P")
        self.assertEqual((answer["registry_decision"], answer["agrees"]), ("block", True))

    # -- bad input ----------------------------------------------------------------------------

    def test_11_bad_input_stores_nothing(self):
        good = {"check_id": str(uuid.uuid4()), "station_id": "ST-A", "operator_id": "OP-O",
                "scan": "OC-BAD", "at": utc_ago(minutes=5), "decision": "allow",
                "reasons": [], "replica_synced_at": utc_ago(hours=1)}
        cases = [
            ("check_id not a UUID", {"check_id": "not-a-uuid"}, 422),
            ("check_id one digit short", {"check_id": "3f2b8c1e-9d4a-4c6e-8b7a-1e2d3c4b5a6"}, 422),
            ("check_id with a non-hex digit", {"check_id": "3f2b8c1e-9d4a-4c6e-8b7a-1e2d3c4b5a6g"},
             422),
            ("at not an instant", {"at": "yesterday"}, 422),
            ("at a day that does not exist", {"at": "2026-02-30T10:00:00Z"}, 422),
            ("at without a zone", {"at": "2026-01-05T10:00:00"}, 422),
            ("at six minutes ahead", {"at": utc_ago(minutes=-6)}, 422),
            ("at 401 days ago", {"at": utc_ago(days=401)}, 422),
            ("replica_synced_at not an instant", {"replica_synced_at": "never"}, 422),
            ("an unknown reason code", {"decision": "block", "reasons": ["NOT_A_REASON"]}, 422),
            ("a reason in lower case", {"decision": "block", "reasons": ["inspection_overdue"]},
             422),
            ("decision neither allow nor block", {"decision": "maybe"}, 422),
            ("an allow with reasons", {"reasons": ["INSPECTION_OVERDUE"]}, 422),
            ("a block without reasons", {"decision": "block"}, 422),
            ("an unknown defect", {"defects": ["scratched"]}, 422),
            ("empty_gross_kg out of range", {"empty_gross_kg": -1}, 422),
            ("a scan that is no code", {"scan": "!!"}, 422),
            # wrong types
            ("check_id a number", {"check_id": 5}, 422),
            ("at a number", {"at": 1767225600000}, 422),
            ("decision a boolean", {"decision": True}, 422),
            ("reasons a string", {"decision": "block", "reasons": "INSPECTION_OVERDUE"}, 422),
            ("reasons of numbers", {"decision": "block", "reasons": [1]}, 422),
            ("empty_gross_kg a string", {"empty_gross_kg": "16.9"}, 422),
            ("defects a string", {"defects": "dent"}, 422),
            ("replica_synced_at a number", {"replica_synced_at": 5}, 422),
            ("station_id a list", {"station_id": ["ST-A"]}, 422),
        ]
        for field in ("check_id", "station_id", "operator_id", "scan", "at", "decision",
                      "reasons", "replica_synced_at"):
            cases.append(("%s missing" % field, {field: None, "_drop": field}, 422))
        before = self.stored()
        for what, change, expect in cases:
            with self.subTest(what):
                body = dict(good, check_id=str(uuid.uuid4()))
                body.update({k: v for k, v in change.items() if k != "_drop"})
                if "_drop" in change:
                    del body[change["_drop"]]
                status, answer = self.call("POST", "/v1/fill-checks/offline", body, self.st_a)
                message = self.refused(status, answer, expect, what)
                if "_drop" in change:
                    self.assertIn(change["_drop"], message)
        # Not JSON, not an object, over 1 MiB.
        for what, raw, expect in (("not JSON", b"{\"check_id\": ", 400),
                                  ("a list", b"[]", 422),
                                  ("over 1 MiB", b"{\"pad\": \"" + b"x" * (1 << 20) + b"\"}",
                                   413)):
            with self.subTest(what):
                conn = self.reg.connection()
                try:
                    status, data, _ = conn.request("POST", "/v1/fill-checks/offline", raw=raw,
                                                   token=self.st_a)
                finally:
                    conn.close()
                self.refused(status, data, expect, what)
        self.assertEqual(self.stored(), before, "bad input stored something")
        self.assertEqual([e["type"] for e in self.history("OC-BAD")], ["registered"])
        # The boundaries' good sides are taken: 4 minutes ahead, 399 days ago.
        ahead = self.uploaded("OC-BAD", utc_ago(minutes=-4))[0]
        self.assertEqual(ahead["registry_decision"], "allow")
        old = self.uploaded("OC-BAD", utc_ago(days=399), station="ST-B")[0]
        self.assertEqual((old["registry_decision"], old["agrees"]), ("allow", True))

    def test_12_unknown_code(self):
        answer, body = self.uploaded("OC-NOWHERE", utc_ago(minutes=3), "block", ["UNKNOWN_CODE"])
        self.assertEqual((answer["registry_decision"], answer["agrees"]), ("block", True))
        self.assertEqual(codes(answer["registry_reasons"]), ["UNKNOWN_CODE"])
        [ev] = self.history("OC-NOWHERE")
        self.assertEqual((ev["type"], ev["station_check_id"]), ("fill_check", body["check_id"]))

    # -- restart and several registries ----------------------------------------------------

    def test_90_restart(self):
        answer, body = self.uploaded("OC-OK4", utc_ago(hours=3))
        clone_seed = self.uploaded("OC-CL6", utc_ago(minutes=8), station="ST-B")[1]
        stats = self.stats(group_by="station")
        before = self.stored()
        self.reg.stop()
        verified = self.reg.verify()
        self.assertEqual(verified.returncode, 0, verified.stderr)
        self.reg.start()
        self.assertEqual(self.post("/v1/fill-checks/offline", body, self.st_a, expect=(200,)),
                         dict(answer, duplicate=True))
        self.post("/v1/fill-checks/offline", clone_seed, self.st_b, expect=(200,))
        self.assertEqual(self.stored(), before)
        self.assertEqual(self.stats(group_by="station"), stats)
        # The sightings read back from the log are when the checks were decided: the
        # one decided three hours ago is out of the window, the other in it.
        self.assertEqual(self.online("OC-OK4", "ST-B")["decision"], "allow")
        self.assertEqual(codes(self.online("OC-CL6", "ST-A")["reasons"]), ["CLONE_SUSPECTED"])

    def test_92_counts_backfilled_from_the_log(self):
        """A store whose counts are to be made again (BackfillCheckCounts, as for a
        store made before them): the offline checks counted from their events as
        they were counted when they arrived."""
        whole = {"from": iso(self.today - timedelta(days=365)), "to": iso(self.today)}
        before = {g: self.stats(group_by=g, **whole) for g in ("day", "station", "reason")}
        ledger = "/v1/export/refused-checks.csv?from=%s&to=%s" % (whole["from"], whole["to"])
        _, rows_before = self.ledger(ledger)
        self.assertTrue(any(r[-3] == "yes" for r in rows_before), rows_before)
        self.reg.stop()
        self.reg.execute("DELETE FROM meta WHERE key = 'check_counts_complete'")
        self.reg.execute("DELETE FROM check_days")
        self.reg.execute("DELETE FROM refusal_days")
        self.reg.execute("DELETE FROM refusals")
        self.reg.start()
        for g, answer in before.items():
            self.assertEqual(self.stats(group_by=g, **whole), answer, g)
        _, rows_after = self.ledger(ledger)
        self.assertEqual(rows_after, rows_before)

    def test_91_second_registry_on_one_database(self):
        if STORE != "postgresql":
            self.skipTest("several registries share a PostgreSQL database, not a SQLite file")
        other = Registry(BINARY, db_path=self.reg.db)
        try:
            other.start()
            body = {"check_id": str(uuid.uuid4()), "station_id": "ST-A", "operator_id": "OP-O",
                    "scan": "OC-OK4", "at": utc_ago(minutes=2), "decision": "allow",
                    "reasons": [], "replica_synced_at": utc_ago(hours=1)}
            status, first = self.call("POST", "/v1/fill-checks/offline", body, self.st_a)
            self.assertEqual(status, 201, first)
            before = self.stored()
            status, again = other.request("POST", "/v1/fill-checks/offline", body=body,
                                          token=self.st_a)
            self.assertEqual(status, 200, again)
            self.assertEqual(again, dict(first, duplicate=True))
            self.assertEqual(self.stored(), before)
            other.stop()
        finally:
            other.cleanup()


if __name__ == "__main__":
    BINARY = take_binary_argument()
    unittest.main(verbosity=2)
