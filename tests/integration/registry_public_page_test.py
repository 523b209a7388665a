"""The public page /c/{code} and its report form, against the real pingma-registry.

Status codes, what the page shows and hides, HTML escaping of what comes from the
database, the report flow (form and JSON, known and unknown codes), the rate limit
per client address, and bad input (never a 500).

    python3 registry_public_page_test.py /path/to/pingma-registry
"""

import html.parser
import os
import sys
import unittest
import urllib.parse
import uuid
from datetime import timedelta

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from registry_harness import (RegistryCase, add_years, iso, now_rfc3339, q,
                              take_binary_argument, today_shanghai,
                              wait_past_shanghai_midnight, year_month)

BINARY = None  # set in __main__
EVIL = "<script>alert(1)</script>"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class Outline(html.parser.HTMLParser):
    """What a page is made of: its tags, form fields, labels and text."""

    def __init__(self, page):
        super().__init__()
        self.tags, self.inputs, self.label_for, self.text = [], [], set(), []
        self.attrs = {}
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        self.attrs.setdefault(tag, []).append(a)
        if tag in ("input", "textarea", "select"):
            self.inputs.append(a)
        if tag == "label" and a.get("for"):
            self.label_for.add(a["for"])

    def handle_data(self, data):
        self.text.append(data)

    @property
    def all_text(self):
        return " ".join(" ".join(self.text).split())


class PublicPageTest(RegistryCase):
    maxDiff = 4000
    TOKENS = {"admin": ("admin", "root"), "regulator": ("regulator", "SAMR"),
              "company": ("company", "CO-X"), "station": ("station", "ST-X")}
    START_ARGS = ("--hotline", "0370-12345")

    @classmethod
    def setUpClass(cls):
        wait_past_shanghai_midnight()
        cls.today = today_shanghai()
        super().setUpClass()

    @classmethod
    def _post(cls, path, body, token=None):
        status, answer = cls.reg.request("POST", path, body=body, token=token or cls.admin)
        assert status in (200, 201), "POST %s -> %s %r" % (path, status, answer)
        return answer

    @classmethod
    def world(cls):
        far = iso(cls.today + timedelta(days=400))
        cls._post("/v1/companies", {"id": "CO-X", "name": EVIL,
                                    "filling_license": {"number": "TS-X", "valid_until": far}})
        cls._post("/v1/stations", {"id": "ST-X", "company_id": "CO-X",
                                   "name": "Station <b>&amp;</b>", "district": "Xiayi"})
        cls._post("/v1/operators", {"id": "OP-X", "company_id": "CO-X", "name": "Op",
                                    "certificate": {"number": "C-X", "valid_until": far}})
        cls.due = add_years(cls.today, 2)
        base = {"model": "YSP35.5", "manufacturer": "Hebei Example Cylinder Co.",
                "manufactured": year_month(add_years(cls.today, -2)), "tare_kg": 16.4,
                "allowed_fill_kg": 14.9, "design_life_years": 8,
                "last_inspection": iso(add_years(cls.today, -2)),
                "next_inspection_due": iso(cls.due)}
        cls.good = "PBGOOD001"
        cls._post("/v1/cylinders", dict(base, code=cls.good, serial="SERIAL-SECRET-1",
                                        registration_no="REGNO-SECRET-1",
                                        carriers=["UID:E004015012345678"]), cls.company)
        cls.overdue = "PBOVER001"
        cls._post("/v1/cylinders", dict(base, code=cls.overdue, serial="S2",
                                        next_inspection_due=iso(cls.today - timedelta(days=1))),
                  cls.company)
        # A fill of the good cylinder: check then record.
        check = cls._post("/v1/fill-checks", {"station_id": "ST-X", "operator_id": "OP-X",
                                              "code": cls.good}, cls.station)
        assert check["decision"] == "allow", check
        ended = now_rfc3339()
        cls._post("/v1/fills", {
            "event_id": str(uuid.uuid4()), "check_id": check["check_id"], "code": cls.good,
            "station_id": "ST-X", "operator_id": "OP-X", "scale_id": "S1",
            "started_at": now_rfc3339(-60), "ended_at": ended, "tare_kg": 16.4,
            "gross_before_kg": 16.9, "gross_after_kg": 31.4, "net_kg": 14.5,
            "residual_kg": 0.5, "result": "ok",
            "post_checks": {"leak_test": "pass", "reweigh": "pass"}}, cls.station)
        cls.fill_day = today_shanghai()

    # ---------------------------------------------------------------- helpers

    def get(self, path):
        conn = self.reg.connection()
        try:
            status, body, headers = conn.request("GET", path)
        finally:
            conn.close()
        return status, body, headers

    def post(self, path, raw=None, body=None, headers=None, client=None):
        conn = self.reg.connection()
        try:
            return conn.request("POST", path, raw=raw, body=body, headers=headers)
        finally:
            conn.close()

    def assertHtmlPage(self, status, body, headers, expected_status, what):
        self.assertEqual(status, expected_status, "%s: %s %r" % (what, status, body))
        self.assertTrue(headers.get("Content-Type", "").startswith("text/html"),
                        "%s: %r" % (what, headers))
        self.assertIn("charset=utf-8", headers.get("Content-Type", "").lower())
        self.assertIsInstance(body, str, what)
        self.assertTrue(body.startswith("<!DOCTYPE html>"), what)
        self.assertIn('<html lang="zh-CN">', body, what)
        self.assertIn('name="viewport"', body, what)
        self.assertNotIn("<script", body.lower(), "%s: a script in the page" % what)
        self.assertNotRegex(body, r"(src|href)=\"https?://", "%s: an external fetch" % what)
        return Outline(body)

    def history(self, code):
        status, body = self.reg.request("GET", "/v1/cylinders/%s/history?limit=1000" % q(code),
                                        token=self.regulator)
        self.assertEqual(status, 200, "history %s: %s %r" % (code, status, body))
        return body["events"]

    # ------------------------------------------------------------------ tests

    def test_01_legal_cylinder_page(self):
        status, page, headers = self.get("/c/" + self.good)
        o = self.assertHtmlPage(status, page, headers, 200, "legal cylinder")
        text = o.all_text
        self.assertIn("可以使用", text)
        self.assertIn("may be used", text)
        self.assertIn(self.good, text)
        # The owner's name, escaped: the script tag is text, not markup.
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", page)
        self.assertIn(EVIL, text)
        self.assertIn("Station <b>&amp;</b>", text)
        self.assertIn("Station &lt;b&gt;&amp;amp;&lt;/b&gt;", page)
        self.assertIn(iso(self.fill_day), text, "last fill date")
        self.assertIn(iso(self.due), text, "next inspection due")
        self.assertIn("0370-12345", text, "hotline from --hotline")
        self.assertIn('href="tel:037012345"', page)
        self.assertEqual(o.tags.count("h1"), 1)
        for secret in ("SERIAL-SECRET-1", "REGNO-SECRET-1", "E004015012345678", "16.4",
                       "OP-X", "TS-X"):
            self.assertNotIn(secret, page, "the public page shows %s" % secret)
        # The form: every field has a label; the action is the report URL.
        forms = o.attrs.get("form", [])
        self.assertEqual(len(forms), 1)
        self.assertEqual(forms[0]["action"], "/c/%s/report" % self.good)
        self.assertEqual(forms[0]["method"], "post")
        for field in o.inputs:
            self.assertIn(field.get("id"), o.label_for, "field without a label: %r" % field)
        names = {f.get("name") for f in o.inputs}
        self.assertEqual(names, {"category", "text", "contact"})

    def test_02_code_in_any_case(self):
        for path in ("/c/" + self.good.lower(), "/c/%20" + self.good.lower() + "%20",
                     "/c/" + self.good + "?src=qr"):
            status, page, headers = self.get(path)
            o = self.assertHtmlPage(status, page, headers, 200, path)
            self.assertIn("可以使用", o.all_text, path)

    def test_03_not_legal(self):
        status, page, headers = self.get("/c/" + self.overdue)
        o = self.assertHtmlPage(status, page, headers, 200, "overdue")
        self.assertIn("禁止使用", o.all_text)
        self.assertIn("Do not use", o.all_text)
        self.assertIn("超期未检", o.all_text)
        self.assertNotIn("可以使用", o.all_text)

    def test_04_unknown_code(self):
        status, page, headers = self.get("/c/pbnobody01")
        o = self.assertHtmlPage(status, page, headers, 404, "unknown code")
        self.assertIn("查无此瓶", o.all_text)
        self.assertIn("PBNOBODY01", o.all_text)
        self.assertEqual(o.attrs["form"][0]["action"], "/c/PBNOBODY01/report")
        for bad in ("/c/%3Cscript%3E", "/c/" + "A" * 65, "/c/", "/c/%FF"):
            status, page, headers = self.get(bad)
            o = self.assertHtmlPage(status, page, headers, 404, bad)
            self.assertNotIn("<script>", page)
        status, page, headers = self.get("/c/%s/other" % self.good)
        self.assertHtmlPage(status, page, headers, 404, "unknown sub-page")

    def test_05_wrong_methods(self):
        for method, path, allow in (("POST", "/c/" + self.good, "GET"),
                                    ("DELETE", "/c/" + self.good, "GET"),
                                    ("GET", "/c/%s/report" % self.good, "POST")):
            conn = self.reg.connection()
            try:
                status, body, headers = conn.request(method, path)
            finally:
                conn.close()
            self.assertEqual(status, 405, "%s %s: %s" % (method, path, status))
            self.assertEqual(headers.get("Allow"), allow)

    def test_06_report_by_form(self):
        data = urllib.parse.urlencode({"category": "leak", "text": "闻到异味 " + EVIL,
                                       "contact": "138 0000 1234"})
        status, page, headers = self.post("/c/%s/report" % self.good.lower(), raw=data,
                                          headers=FORM)
        o = self.assertHtmlPage(status, page, headers, 201, "report")
        self.assertIn("已收到您的报告", o.all_text)
        events = [e for e in self.history(self.good) if e["type"] == "public_report"]
        self.assertTrue(events, "no public_report event")
        e = events[-1]
        self.assertEqual(e["category"], "leak")
        self.assertEqual(e["text"], "闻到异味 " + EVIL)
        self.assertEqual(e["contact"], "138 0000 1234")
        self.assertRegex(e["contact_id"], r"^pd-[0-9a-f]{24}$")
        self.assertIs(e["registered"], True)
        # The contact stays out of the hash-chained log, which keeps a salted hash.
        stored = self.reg.query("SELECT body FROM events WHERE id = ?", (e["id"],))[0][0]
        self.assertNotIn("0000 1234", stored)
        self.assertRegex(stored, r'"contact_ref":\{"personal_data":"%s","salted_sha256":'
                                 r'"[0-9a-f]{64}"\}' % e["contact_id"])
        self.assertEqual(e["actor"]["role"], "public")
        self.assertIn(e["id"], o.all_text, "the reference on the confirmation")
        self.assertNotIn("client", e)
        # The owner company sees the report, not who made it.
        status, body = self.reg.request("GET", "/v1/cylinders/%s/history" % self.good,
                                        token=self.company)
        self.assertEqual(status, 200)
        mine = [x for x in body["events"] if x["type"] == "public_report"]
        self.assertTrue(mine)
        self.assertNotIn("contact", mine[-1])
        # The page after a report still escapes and still answers.
        status, page, headers = self.get("/c/" + self.good)
        self.assertHtmlPage(status, page, headers, 200, "after the report")
        # The chain still verifies.
        status, head = self.reg.request("GET", "/v1/audit/head", token=self.regulator)
        self.assertEqual(status, 200)

    def test_07_report_unknown_code_by_json(self):
        status, body, headers = self.post("/c/pbblack77/report",
                                          body={"category": "suspected_fake",
                                                "text": "在菜市场看到"})
        self.assertEqual(status, 201, repr(body))
        self.assertEqual(body["code"], "PBBLACK77")
        self.assertRegex(body["report_id"], r"^ev-\d+$")
        events = self.history("PBBLACK77")
        self.assertEqual([e["type"] for e in events], ["public_report"])
        self.assertIs(events[0]["registered"], False)
        self.assertNotIn("contact", events[0])

    def test_08_bad_input(self):
        path = "/c/%s/report" % self.good
        cases = [
            ("no category", urllib.parse.urlencode({"text": "x"}), FORM, 422),
            ("unknown category", "category=aliens", FORM, 422),
            ("text 501 chars", urllib.parse.urlencode({"category": "other", "text": "漏" * 501}),
             FORM, 422),
            ("contact 101 chars", urllib.parse.urlencode({"category": "other",
                                                         "contact": "1" * 101}), FORM, 422),
            ("bad UTF-8", b"category=other&text=%FF%FE", FORM, 422),
            ("control char", "category=other&text=a%00b", FORM, 422),
            ("empty body", "", FORM, 422),
            # Over the public limit (8 KiB): refused by the HTTP edge from its
            # Content-Length, before the body is read, with the API's JSON error.
            ("too large", "category=other&text=" + "a" * 20000, FORM, 413),
            ("garbage", b"\x00\x01\x02=&&==%", FORM, 422),
            ("bad JSON", "{not json", {"Content-Type": "application/json"}, 400),
            ("JSON array", "[]", {"Content-Type": "application/json"}, 400),
            ("JSON number text", '{"category": "other", "text": 5}',
             {"Content-Type": "application/json"}, 422),
        ]
        before = len(self.history(self.good))
        for what, raw, headers, expected in cases:
            with self.subTest(what=what):
                status, body, answer_headers = self.post(path, raw=raw, headers=headers)
                self.assertEqual(status, expected, "%s: %s %r" % (what, status, body))
                if "json" in headers["Content-Type"] or expected == 413:
                    self.assertIn("error", body)
                else:
                    self.assertHtmlPage(status, body, answer_headers, expected, what)
        self.assertEqual(len(self.history(self.good)), before, "bad input stored something")
        status, body, _ = self.post("/c/%3Cb%3E/report", raw="category=other", headers=FORM)
        self.assertEqual(status, 404)
        self.assertNotIn("<b>", body)

    def test_09_rate_limit(self):
        # Runs last (test_0x order): the six reports use up this client's window.
        # test_06 and test_07 took two of the five.
        path = "/c/%s/report" % self.good
        accepted = 2
        statuses = []
        for _ in range(6):
            status, body, headers = self.post(path, raw="category=other&text=rate", headers=FORM)
            statuses.append(status)
            if status == 429:
                o = self.assertHtmlPage(status, body, headers, 429, "rate limited")
                self.assertIn("提交过于频繁", o.all_text)
                self.assertIn("0370-12345", o.all_text)
                self.assertGreater(int(headers["Retry-After"]), 0)
        self.assertEqual(statuses, [201] * (5 - accepted) + [429] * (1 + accepted), statuses)
        status, body, headers = self.post(path, body={"category": "other"})
        self.assertEqual(status, 429)
        self.assertEqual(body["error"]["code"], "TOO_MANY_REQUESTS")
        # The page itself is not limited.
        status, page, headers = self.get("/c/" + self.good)
        self.assertEqual(status, 200)


if __name__ == "__main__":
    BINARY = take_binary_argument()
    unittest.main(verbosity=2)
