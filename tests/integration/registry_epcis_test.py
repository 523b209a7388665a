"""The EPCIS 2.0 JSON-LD export (GET /v1/export/epcis) against the real pingma-registry,
every page checked by epcis2.js (npm), a validator this project did not write.

A registry with a cylinder named by a GRAI-96 tag, one with no GRAI, one whose GRAI
tag is bound later, and an unregistered code; registration, fill checks allowed and
refused, a fill, a failed inspection, the scrap flag and the scrapping, a delivery, a
collection and a refused collection, a public report. Then: every page valid; the
mapping (bizStep, action, disposition per event type; GRAI Digital Link vs the public
page's URL, as of each event; pingma's fields); no personal data anywhere in the
export; paging (every event exactly once with a small limit, the Link header); the
range (dates in the policy's zone, RFC 3339 instants, an event exactly at `to`
excluded and at `from` included); the role rules; bad parameters; and the validator
refusing broken documents.

Without epcis2.js (the Quick start could not install it, and said why) everything but
the validation runs, the documents are counted as not validated, and the validator's
own test is skipped; PINGMA_REQUIRE_EPCIS_VALIDATOR=1 (CI) makes its absence a failure.

    python3 registry_epcis_test.py /path/to/pingma-registry /path/to/tools/epcis
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import unittest
import uuid
from datetime import datetime, timedelta

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from registry_harness import (STORE, RegistryCase, add_years, id_number, iso, now_rfc3339, q,
                              take_binary_argument, today_shanghai,
                              wait_past_shanghai_midnight, year_month)

BINARY = None  # set in __main__
VALIDATOR_DIR = None
VALIDATOR_INSTALLED = False
NOT_VALIDATED = []  # what assertValid could not check, without epcis2.js

NS = "https://pingma.example/epcis/"
PUBLIC = "https://pingma.example/c/"
GS1 = "https://id.gs1.org/8003/"
CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"

# Personal data that must never reach the export.
NAME = "张三丰"
PHONE = "13987651234"
ID17 = "11010519491231002"
ADDRESS = "建设路1号"
CUSTOMER_ID = "CUST-ZHANG-SANFENG"
REPORT_CONTACT = "13700001111"
REPORT_TEXT = "王小二在菜市场卖这个瓶"
LAT, LON = 34.4321987, 115.6543219

GRAI96_TAG = "EPC:3374257BF40C0E400000162E"  # a GRAI-96 EPC (README's example)
LATE_GRAI = "(8003)00614141123452777"  # bound to LATE1 after its registration
OK_CHECK = {"hose_length": "pass", "hose_joints": "pass", "hose_through_wall": "pass",
            "regulator_standard": "pass", "regulator_age": "pass", "gas_alarm": "pass",
            "flame_failure_device": "pass", "ventilation": "pass", "cylinders_apart": "pass"}


ID_NUMBER = id_number(ID17)


def parse_time(text):
    """An RFC 3339 instant as an aware datetime (Python 3.7+ fromisoformat, with Z)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def next_link(headers):
    """The target of the Link header's rel="next", or None."""
    for name, value in headers.items():
        if name.lower() != "link":
            continue
        m = re.match(r'^\s*<([^>]*)>\s*;\s*rel="next"\s*$', value)
        if m:
            return m.group(1)
    return None


class EpcisExportTest(RegistryCase):
    maxDiff = 4000

    TOKENS = {"admin": ("admin", "root"), "regulator": ("regulator", "SAMR"),
              "co": ("company", "CO-P"), "st": ("station", "ST-P"),
              "inspector": ("inspector", "AG-1"), "courier": ("courier", "CR-P")}

    @classmethod
    def setUpClass(cls):
        wait_past_shanghai_midnight(180)
        cls.today = today_shanghai()
        cls.tmp = tempfile.mkdtemp(prefix="pingma-epcis-it-")
        super().setUpClass()

    @classmethod
    def world(cls):
        cls.setup_world()
        cls.reg.wait_logged()  # the export follows the log's leaves
        cls.doc, cls.headers = cls.export("", cls.regulator)
        cls.events = cls.doc["epcisBody"]["eventList"]

    # -- helpers ----------------------------------------------------------------------

    @classmethod
    def get(cls, target, token):
        conn = cls.reg.connection()
        try:
            return conn.request("GET", target, token=token)
        finally:
            conn.close()

    @classmethod
    def export(cls, query, token):
        status, doc, headers = cls.get("/v1/export/epcis" + query, token)
        assert status == 200, "export %s -> %s %r" % (query, status, doc)
        assert isinstance(doc, dict), "export %s: not JSON: %r" % (query, doc)
        return doc, headers

    @classmethod
    def cylinder(cls, code, carriers=None):
        body = {"code": code, "model": "YSP35.5", "manufacturer": "Hebei Example Cylinder Co.",
                "manufactured": year_month(add_years(cls.today, -2)), "tare_kg": 16.4,
                "design_life_years": 8, "last_inspection": iso(add_years(cls.today, -2)),
                "next_inspection_due": iso(add_years(cls.today, 2))}
        if carriers:
            body["carriers"] = carriers
        return cls.post("/v1/cylinders", body, cls.co)

    @classmethod
    def check(cls, scan, **extra):
        body = {"station_id": "ST-P", "operator_id": "OP-P", "scan": scan}
        body.update(extra)
        return cls.post("/v1/fill-checks", body, cls.st)

    @classmethod
    def setup_world(cls):
        far = iso(cls.today + timedelta(days=400))
        cls.post("/v1/companies", {"id": "CO-P", "name": "平安燃气", "filling_license":
                                   {"number": "TS-P", "valid_until": far}}, cls.admin)
        cls.post("/v1/stations", {"id": "ST-P", "company_id": "CO-P", "name": "P",
                                  "district": "Xiayi"}, cls.co)
        cls.post("/v1/operators", {"id": "OP-P", "company_id": "CO-P", "name": "操作员",
                                   "certificate": {"number": "C-P", "valid_until": far}}, cls.co)
        cls.post("/v1/vehicles", {"id": "V-P", "company_id": "CO-P", "plate": "豫N54321"}, cls.co)
        cls.post("/v1/couriers", {"id": "CR-P", "company_id": "CO-P", "name": "李四",
                                  "vehicle": "V-P", "zones": ["Xiayi"]}, cls.co)
        cls.post("/v1/customers", {
            "id": CUSTOMER_ID, "company_id": "CO-P", "name": NAME, "phone": PHONE,
            "id_number": ID_NUMBER, "address": ADDRESS, "district": "Xiayi",
            "kind": "household", "site": {"basement": False, "semi_basement": False,
                                          "cylinder_room": False}}, cls.co)
        cls.post("/v1/customers", {
            "id": "CUST-OTHER", "company_id": "CO-P", "name": "赵六", "phone": "13911112222",
            "id_number": id_number("11010519800101001"), "address": "人民路2号",
            "district": "Xiayi", "kind": "household",
            "site": {"basement": False, "semi_basement": False, "cylinder_room": False}}, cls.co)

        # GRAI1 carries a GRAI-96 tag; PLAIN1 only its QR label; LATE1 gets a GRAI later.
        cls.grai_value = cls.cylinder("GRAI1", [GRAI96_TAG])["carriers"][0]
        assert cls.grai_value.startswith("GRAI:"), cls.grai_value
        cls.grai_value = cls.grai_value[len("GRAI:"):]
        cls.cylinder("PLAIN1")
        cls.cylinder("LATE1")

        # A fill check allowed (the tag read by an RFID reader), and its fill.
        cls.allowed = cls.check(GRAI96_TAG, empty_gross_kg=16.9)
        assert cls.allowed["decision"] == "allow", cls.allowed
        cls.fill_started, cls.fill_ended = now_rfc3339(-300), now_rfc3339(-240)
        cls.fill_id = str(uuid.uuid4())
        cls.post("/v1/fills", {
            "event_id": cls.fill_id, "check_id": cls.allowed["check_id"], "code": "GRAI1",
            "station_id": "ST-P", "operator_id": "OP-P", "scale_id": "S1",
            "started_at": cls.fill_started, "ended_at": cls.fill_ended, "tare_kg": 16.4,
            "gross_before_kg": 16.9, "gross_after_kg": 31.4, "net_kg": 14.5,
            "residual_kg": 0.5, "result": "ok",
            "post_checks": {"leak_test": "pass", "reweigh": "pass"}}, cls.st)
        # Refused: a dent found before filling, and a black cylinder.
        cls.refused = cls.check("https://pingma.example/c/PLAIN1", defects=["dent"])
        assert cls.refused["decision"] == "block", cls.refused
        cls.black = cls.check("BLACK01")
        assert cls.black["decision"] == "block", cls.black

        # A failed inspection flags PLAIN1; the agency scraps it.
        cls.post("/v1/inspections", {"code": "PLAIN1", "date": iso(cls.today), "result": "fail",
                                     "report_no": "R-1"}, cls.inspector)
        cls.post("/v1/cylinders/PLAIN1/scrap", {"date": iso(cls.today), "method": "drilled",
                                                "certificate_no": "SC-1"}, cls.inspector)

        # Handovers: a delivery at the door (with the door's location), a refused
        # collection from the wrong customer, the collection of the empty.
        def hand(direction, customer, **extra):
            body = {"event_id": str(uuid.uuid4()), "code": "GRAI1", "customer_id": customer,
                    "vehicle": "V-P", "direction": direction}
            if direction == "deliver":
                body["safety_check"] = OK_CHECK
            body.update(extra)
            return cls.post("/v1/handovers", body, cls.courier)

        cls.delivered = hand("deliver", CUSTOMER_ID, location={"lat": LAT, "lon": LON})
        assert cls.delivered["decision"] == "allow", cls.delivered
        cls.wrong = hand("collect", "CUST-OTHER")
        assert cls.wrong["decision"] == "block", cls.wrong
        cls.collected = hand("collect", CUSTOMER_ID, location={"lat": LAT, "lon": LON})
        assert cls.collected["decision"] == "allow", cls.collected

        # LATE1 is seen once by its label, then gets a GRAI tag, then is checked again.
        cls.check("LATE1")
        cls.post("/v1/cylinders/LATE1/carriers", {"carrier": LATE_GRAI}, cls.co)
        cls.check(LATE_GRAI)

        # OFF1 checked on ST-P's replica half an hour ago, allowed although a dent was
        # noted: the registry would have refused it, a violation.
        cls.cylinder("OFF1")
        cls.offline_decided = now_rfc3339(-1800)
        cls.offline_check_id = str(uuid.uuid4())
        cls.offline = cls.post("/v1/fill-checks/offline", {
            "check_id": cls.offline_check_id, "station_id": "ST-P", "operator_id": "OP-P",
            "scan": "OFF1", "at": cls.offline_decided, "decision": "allow", "reasons": [],
            "defects": ["dent"], "replica_synced_at": now_rfc3339(-7200)}, cls.st)
        assert cls.offline["agrees"] is False, cls.offline

        # A member of the public reports GRAI1, leaving a phone number and a name.
        status, answer = cls.reg.request(
            "POST", "/c/GRAI1/report", body={"category": "suspected_fake", "text": REPORT_TEXT,
                                             "contact": REPORT_CONTACT})
        assert status == 201, (status, answer)

    def validate(self, doc_or_text, what):
        """Runs validate.js on a document; returns (exit status, output)."""
        text = doc_or_text if isinstance(doc_or_text, str) else json.dumps(doc_or_text)
        path = os.path.join(self.tmp, "doc-%s.json" % uuid.uuid4())
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        r = subprocess.run(["node", os.path.join(VALIDATOR_DIR, "validate.js"), path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=120)
        return r.returncode, r.stdout + r.stderr

    def assertValid(self, doc, what):
        if not VALIDATOR_INSTALLED:
            NOT_VALIDATED.append(what)
            return
        rc, out = self.validate(doc, what)
        self.assertEqual(rc, 0, "%s: epcis2.js refused it: %s" % (what, out))

    def of(self, event_type, code=None):
        return [e for e in self.events if e["pingma:eventType"] == event_type
                and (code is None or e["pingma:code"] == code)]

    def one(self, event_type, code=None, **fields):
        found = [e for e in self.of(event_type, code)
                 if all(e.get(k) == v for k, v in fields.items())]
        self.assertEqual(len(found), 1, "%s %s %r: %r" % (event_type, code, fields, found))
        return found[0]

    def all_pages(self, query, token=None):
        """Follows the Link header from `query`; returns the pages."""
        pages = []
        target = "/v1/export/epcis" + query
        while target is not None:
            self.assertLess(len(pages), 1000, "the pages never end")
            status, doc, headers = self.get(target, token or self.regulator)
            self.assertEqual(status, 200, "%s: %r" % (target, doc))
            pages.append(doc)
            link = next_link(headers)
            self.assertEqual(link is not None, doc["pingma:nextCursor"] is not None,
                             "%s: Link %r vs pingma:nextCursor %r"
                             % (target, link, doc["pingma:nextCursor"]))
            if link is not None:
                self.assertIn("cursor=%s" % doc["pingma:nextCursor"], link)
            target = link
        return pages

    # -- the document -------------------------------------------------------------------

    def test_01_document_is_valid_epcis(self):
        self.assertValid(self.doc, "the whole export")
        self.assertEqual(self.doc["@context"], [CONTEXT, {"pingma": NS}])
        self.assertEqual(self.doc["type"], "EPCISDocument")
        self.assertEqual(self.doc["schemaVersion"], "2.0")
        self.assertTrue(self.doc["creationDate"].endswith("+08:00"), self.doc["creationDate"])
        self.assertIsNone(self.doc["pingma:nextCursor"])
        self.assertIsNone(next_link(self.headers))
        self.assertIn("ld+json", self.headers.get("Content-Type", ""))
        self.assertEqual(self.headers.get("GS1-EPCIS-Version"), "2.0.0")

    def test_02_every_event_common_fields(self):
        ids = [e["eventID"] for e in self.events]
        self.assertEqual(len(ids), len(set(ids)), "eventIDs repeat")
        seqs = [e["pingma:seq"] for e in self.events]
        self.assertEqual(seqs, sorted(seqs), "not in the log's order")
        for e in self.events:
            with self.subTest(seq=e["pingma:seq"], type=e["pingma:eventType"]):
                self.assertEqual(e["type"], "ObjectEvent")
                self.assertEqual(e["eventTimeZoneOffset"], "+08:00")
                self.assertRegex(e["eventTime"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+08:00$")
                self.assertRegex(e["eventID"], r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-"
                                               r"[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
                self.assertRegex(e["pingma:hash"], r"^[0-9a-f]{64}$")
                self.assertEqual(e["eventID"][9:17], e["pingma:hash"][:8])
                self.assertEqual(len(e["epcList"]), 1)

    def test_03_same_events_read_the_same_again(self):
        again, _ = self.export("", self.admin)
        self.assertEqual(again["epcisBody"], self.doc["epcisBody"])

    # -- the mapping --------------------------------------------------------------------

    def test_10_registration_commissions(self):
        for code in ("GRAI1", "PLAIN1", "LATE1"):
            e = self.one("registered", code)
            self.assertEqual((e["action"], e["bizStep"], e["disposition"]),
                             ("ADD", "commissioning", "active"))
            self.assertEqual(e["ilmd"]["pingma:model"], "YSP35.5")
            self.assertEqual(e["ilmd"]["pingma:tareKg"], 16.4)
            self.assertEqual(e["pingma:ownerCompanyId"], "CO-P")

    def test_11_grai_or_public_page(self):
        grai = GS1 + self.grai_value
        for e in self.events:
            code = e["pingma:code"]
            if code == "GRAI1":
                self.assertEqual(e["epcList"], [grai], e)
            elif code == "PLAIN1":
                self.assertEqual(e["epcList"], [PUBLIC + "PLAIN1"], e)
            elif code == "BLACK01":
                self.assertEqual(e["epcList"], [PUBLIC + "BLACK01"], e)
        # LATE1: its label's URL until its GRAI tag is bound, the GRAI from then on.
        late = [e for e in self.events if e["pingma:code"] == "LATE1"]
        self.assertEqual([e["pingma:eventType"] for e in late],
                         ["registered", "fill_check", "carrier_bound", "fill_check"])
        late_uri = GS1 + LATE_GRAI[len("(8003)"):]
        self.assertEqual([e["epcList"][0] for e in late],
                         [PUBLIC + "LATE1", PUBLIC + "LATE1", late_uri, late_uri])
        bound = late[2]
        self.assertEqual(bound["pingma:carrier"], "GRAI:" + LATE_GRAI[len("(8003)"):])
        self.assertEqual((bound["action"], bound["bizStep"]),
                         ("OBSERVE", NS + "bizstep/carrier_binding"))

    def test_12_fill_checks_are_inspections(self):
        station = {"id": NS + "station/ST-P"}
        ok = self.one("fill_check", "GRAI1")
        self.assertEqual((ok["action"], ok["bizStep"]), ("OBSERVE", "inspecting"))
        self.assertEqual((ok["pingma:decision"], ok["pingma:reasons"]), ("allow", []))
        self.assertEqual((ok["readPoint"], ok["bizLocation"]), (station, station))
        self.assertEqual((ok["pingma:stationId"], ok["pingma:operatorId"]), ("ST-P", "OP-P"))
        self.assertEqual(ok["pingma:emptyGrossKg"], 16.9)
        self.assertEqual(ok["pingma:eventId"], self.allowed["check_id"])
        self.assertNotIn("disposition", ok)
        refused = self.one("fill_check", "PLAIN1")
        self.assertEqual(refused["bizStep"], "inspecting")
        self.assertEqual(refused["pingma:decision"], "block")
        self.assertIn("DEFECT_FOUND", refused["pingma:reasons"])
        self.assertEqual(refused["pingma:defects"], ["dent"])
        black = self.one("fill_check", "BLACK01")
        self.assertEqual((black["pingma:decision"], black["pingma:reasons"]),
                         ("block", ["UNKNOWN_CODE"]))

    def test_12b_a_check_decided_offline(self):
        e = self.one("fill_check", "OFF1")
        self.assertEqual((e["action"], e["bizStep"]), ("OBSERVE", "inspecting"))
        # When the station decided; recorded when the registry received it.
        self.assertEqual(parse_time(e["eventTime"]), parse_time(self.offline_decided))
        self.assertGreater(parse_time(e["recordTime"]), parse_time(e["eventTime"]))
        for field, value in (("offline", True), ("decision", "allow"), ("reasons", []),
                             ("defects", ["dent"]), ("registryDecision", "block"),
                             ("registryReasons", ["DEFECT_FOUND"]), ("agrees", False),
                             ("stationCheckId", self.offline_check_id)):
            self.assertEqual(e["pingma:" + field], value, field)
        self.assertEqual(parse_time(e["pingma:decidedAt"]), parse_time(self.offline_decided))
        self.assertIn("pingma:replicaSyncedAt", e)
        v = self.one("violation", "OFF1")
        self.assertEqual((v["pingma:registryDecision"], v["pingma:reasons"]),
                         ("block", ["DEFECT_FOUND"]))
        self.assertEqual(v["pingma:offlineDecision"], "allow")
        self.assertEqual(v["pingma:checkId"], e["pingma:eventId"])
        self.assertEqual(v["pingma:stationCheckId"], self.offline_check_id)
        # Checks made online say so too.
        self.assertIs(self.one("fill_check", "GRAI1")["pingma:offline"], False)
        self.assertValid(self.doc, "the export with a check decided offline")

    def test_13_fill(self):
        e = self.one("fill", "GRAI1")
        self.assertEqual((e["action"], e["bizStep"]), ("OBSERVE", NS + "bizstep/filling"))
        self.assertEqual(e["readPoint"], {"id": NS + "station/ST-P"})
        # When it happened at the scale; recorded when the registry received it.
        self.assertEqual(parse_time(e["eventTime"]), parse_time(self.fill_ended))
        self.assertGreater(parse_time(e["recordTime"]), parse_time(e["eventTime"]))
        for field, value in (("netKg", 14.5), ("tareKg", 16.4), ("grossBeforeKg", 16.9),
                             ("grossAfterKg", 31.4), ("residualKg", 0.5), ("result", "ok"),
                             ("checkId", self.allowed["check_id"]), ("scaleId", "S1"),
                             ("operatorId", "OP-P"), ("offline", False),
                             ("eventId", self.fill_id)):
            self.assertEqual(e["pingma:" + field], value, field)
        self.assertEqual(e["pingma:postChecks"],
                         {"pingma:leak_test": "pass", "pingma:reweigh": "pass"})

    def test_14_inspection_flag_and_scrapping(self):
        agency = {"id": NS + "agency/AG-1"}
        e = self.one("inspection", "PLAIN1")
        self.assertEqual((e["action"], e["bizStep"]), ("OBSERVE", "inspecting"))
        self.assertEqual((e["pingma:result"], e["pingma:reportNo"]), ("fail", "R-1"))
        self.assertEqual(e["readPoint"], agency)
        flag = self.one("flagged_for_scrap", "PLAIN1")
        self.assertEqual((flag["action"], flag["bizStep"], flag["disposition"]),
                         ("OBSERVE", "holding", "needs_replacement"))
        self.assertEqual(flag["pingma:reason"], "INSPECTION_FAILED")
        scrap = self.one("scrapped", "PLAIN1")
        self.assertEqual((scrap["action"], scrap["bizStep"], scrap["disposition"]),
                         ("DELETE", "decommissioning", "destroyed"))
        self.assertEqual((scrap["pingma:method"], scrap["pingma:certificateNo"]),
                         ("drilled", "SC-1"))
        self.assertEqual(scrap["readPoint"], agency)

    def test_15_handovers(self):
        company = NS + "company/CO-P"
        deliver = self.one("handover", "GRAI1", **{"pingma:direction": "deliver"})
        self.assertEqual((deliver["action"], deliver["bizStep"]), ("OBSERVE", "shipping"))
        customer = deliver["pingma:customer"]
        self.assertRegex(customer, "^" + re.escape(NS) + r"customer/[0-9a-f]{32}$")
        self.assertEqual(deliver["sourceList"], [{"type": "possessing_party", "source": company}])
        self.assertEqual(deliver["destinationList"],
                         [{"type": "possessing_party", "destination": customer}])
        self.assertEqual((deliver["pingma:decision"], deliver["pingma:reasons"]), ("allow", []))
        self.assertEqual(deliver["pingma:courierId"], "CR-P")
        self.assertEqual(deliver["pingma:safetyCheck"]["pingma:gas_alarm"], "pass")
        collects = self.of("handover", "GRAI1")
        collects = [e for e in collects if e["pingma:direction"] == "collect"]
        self.assertEqual([e["pingma:decision"] for e in collects], ["block", "allow"])
        refused, collect = collects
        self.assertEqual(refused["bizStep"], "inspecting")
        self.assertEqual(refused["pingma:reasons"], ["NOT_AT_CUSTOMER"])
        for key in ("sourceList", "destinationList", "pingma:customer"):
            self.assertNotIn(key, refused)
        self.assertEqual(collect["bizStep"], "receiving")
        self.assertEqual(collect["sourceList"],
                         [{"type": "possessing_party", "source": customer}])
        self.assertEqual(collect["destinationList"],
                         [{"type": "possessing_party", "destination": company}])
        self.assertEqual(collect["pingma:customer"], customer)  # one customer, one pseudonym

    def test_16_public_report(self):
        e = self.one("public_report", "GRAI1")
        self.assertEqual((e["action"], e["bizStep"]), ("OBSERVE", NS + "bizstep/public_reporting"))
        self.assertEqual(e["pingma:category"], "suspected_fake")
        self.assertNotIn("pingma:actorId", e)

    def test_17_not_exported(self):
        types = {e["pingma:eventType"] for e in self.events}
        self.assertEqual(types, {"registered", "fill_check", "fill", "inspection",
                                 "flagged_for_scrap", "scrapped", "handover", "carrier_bound",
                                 "public_report", "violation"})

    def test_18_no_personal_data(self):
        text = json.dumps(self.doc, ensure_ascii=False)
        for secret in (NAME, PHONE, PHONE[:3] + "****" + PHONE[-4:], ID_NUMBER, ID17,
                       ID_NUMBER[:4] + "*" * 10 + ID_NUMBER[14:], ADDRESS, CUSTOMER_ID,
                       "CUST-OTHER", "赵六", "人民路2号", REPORT_CONTACT, REPORT_TEXT, "王小二",
                       "%.4f" % LAT, "%.4f" % LON, '"lat"', '"lon"', "location", "contact"):
            self.assertNotIn(secret, text)

    # -- paging and the range -------------------------------------------------------------

    def test_20_small_pages_take_every_event_once(self):
        pages = self.all_pages("?limit=2")
        self.assertGreater(len(pages), 5)
        seen = []
        for i, page in enumerate(pages):
            self.assertLessEqual(len(page["epcisBody"]["eventList"]), 2)
            self.assertValid(page, "page %d of limit=2" % i)
            seen += [e["pingma:seq"] for e in page["epcisBody"]["eventList"]]
        self.assertEqual(seen, [e["pingma:seq"] for e in self.events])
        # The whole log, read cylinder by cylinder, holds the same exported events.
        expected = []
        for code in ("GRAI1", "PLAIN1", "LATE1", "BLACK01", "OFF1"):
            status, hist = self.reg.request("GET", "/v1/cylinders/%s/history?limit=1000" % code,
                                            token=self.regulator)
            self.assertEqual(status, 200, hist)
            expected += [e["seq"] for e in hist["events"] if e["type"] != "hazard_opened"]
        self.assertEqual(sorted(expected), seen)

    def test_21_a_page_resumes_after_its_cursor(self):
        first, headers = self.export("?limit=3", self.regulator)
        self.assertEqual(len(first["epcisBody"]["eventList"]), 3)
        cursor = first["pingma:nextCursor"]
        self.assertEqual(next_link(headers), "/v1/export/epcis?limit=3&cursor=%s" % cursor)
        rest, _ = self.export("?limit=10000&cursor=" + cursor, self.regulator)
        self.assertEqual(first["epcisBody"]["eventList"] + rest["epcisBody"]["eventList"],
                         self.events)
        # The end of the log: nothing after it yet, and where to come back. A cursor
        # is a place in the log, its leaf's index + 1 (on SQLite the seq).
        last = self.events[-1]["pingma:logIndex"] + 1
        if STORE != "postgresql":
            self.assertEqual(last, self.events[-1]["pingma:seq"])
        tail, headers = self.export("?cursor=%d" % last, self.regulator)
        self.assertEqual(tail["epcisBody"]["eventList"], [])
        self.assertIsNone(tail["pingma:nextCursor"])
        self.assertIsNone(next_link(headers))
        self.assertEqual(int(self.doc["pingma:resumeCursor"]), last)
        self.assertValid(tail, "an empty page")

    def test_22_dates_in_the_policy_zone(self):
        today, yesterday = iso(self.today), iso(self.today - timedelta(days=1))
        doc, _ = self.export("?from=%s&to=%s" % (today, today), self.regulator)
        self.assertEqual(doc["epcisBody"]["eventList"], self.events)  # `to` takes its day
        self.assertEqual(doc["pingma:from"], today + "T00:00:00.000+08:00")
        self.assertEqual(doc["pingma:to"], iso(self.today + timedelta(days=1))
                         + "T00:00:00.000+08:00")
        doc, _ = self.export("?to=" + yesterday, self.regulator)
        self.assertEqual(doc["epcisBody"]["eventList"], [])
        doc, _ = self.export("?from=" + iso(self.today + timedelta(days=1)), self.regulator)
        self.assertEqual(doc["epcisBody"]["eventList"], [])

    def test_23_an_event_at_to_is_in_the_next_range(self):
        # An event whose recordTime differs from the one before it: the boundary.
        k = next(i for i in range(1, len(self.events))
                 if self.events[i]["recordTime"] != self.events[i - 1]["recordTime"])
        at = self.events[k]["recordTime"]
        before = self.all_pages("?limit=2&to=" + q(at))
        after = self.all_pages("?limit=2&from=" + q(at))
        got_before = [e for p in before for e in p["epcisBody"]["eventList"]]
        got_after = [e for p in after for e in p["epcisBody"]["eventList"]]
        self.assertEqual(got_before + got_after, self.events)
        self.assertEqual(got_after[0]["pingma:seq"], self.events[k]["pingma:seq"])
        self.assertTrue(all(parse_time(e["recordTime"]) < parse_time(at) for e in got_before))
        # The same instant in UTC, and with its '+' left unescaped (a space on arrival).
        utc = (parse_time(at) - timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        doc, _ = self.export("?limit=10000&from=" + q(utc), self.regulator)
        self.assertEqual(doc["epcisBody"]["eventList"], got_after)
        doc, _ = self.export("?limit=10000&from=" + at, self.regulator)
        self.assertEqual(doc["epcisBody"]["eventList"], got_after)

    def test_24_large_limit_is_capped(self):
        doc, _ = self.export("?limit=99999999", self.regulator)
        self.assertEqual(doc["epcisBody"]["eventList"], self.events)

    # -- who may, and bad parameters ----------------------------------------------------

    def test_30_roles(self):
        for role, token in (("courier", self.courier), ("station", self.st),
                            ("company", self.co), ("inspector", self.inspector)):
            with self.subTest(role=role):
                status, body, _ = self.get("/v1/export/epcis", token)
                self.assertEqual(status, 403, body)
                self.assertEqual(body["error"]["code"], "FORBIDDEN")
        status, body, _ = self.get("/v1/export/epcis", None)
        self.assertEqual(status, 401, body)
        self.export("", self.admin)

    def test_31_bad_parameters(self):
        today = iso(self.today)
        cases = [
            ("from=yesterday", 400), ("to=2026-02-30", 400), ("from=2026-13-01", 400),
            ("from=2026-01-01T08:00:00", 400),  # an instant needs its offset
            ("from=%s&to=%s" % (today, iso(self.today - timedelta(days=1))), 422),
            ("limit=0", 400), ("limit=-5", 400), ("limit=ten", 400), ("limit=", 400),
            ("cursor=-1", 400), ("cursor=ev-3", 400), ("cursor=1e3", 400),
            ("form=2026-01-01", 400), ("perPage=10", 400),
        ]
        for query, expected in cases:
            with self.subTest(query=query):
                status, body, _ = self.get("/v1/export/epcis?" + query, self.regulator)
                self.assertEqual(status, expected, "%s -> %s %r" % (query, status, body))
                self.assertIsInstance(body, dict)
                self.assertTrue(body["error"]["message"], body)

    # -- the validator itself -------------------------------------------------------------

    def test_40_validator_refuses_broken_documents(self):
        if not VALIDATOR_INSTALLED:
            self.skipTest("epcis2.js is not installed in %s" % VALIDATOR_DIR)
        def broken(change):
            doc = json.loads(json.dumps(self.doc))
            change(doc, doc["epcisBody"]["eventList"][0])
            return doc

        cases = {
            "no eventTimeZoneOffset": broken(lambda d, e: e.pop("eventTimeZoneOffset")),
            "bizStep not in CBV and no URI": broken(lambda d, e: e.update(bizStep="filling")),
            "unknown action": broken(lambda d, e: e.update(action="SEE")),
            "eventTime not RFC 3339": broken(lambda d, e: e.update(eventTime="2026-01-05 10:00")),
            "extension of an undeclared prefix": broken(lambda d, e: e.update({"acme:x": 1})),
            "field outside EPCIS and any namespace": broken(lambda d, e: e.update(code="X")),
            "ilmd on an OBSERVE": broken(lambda d, e: e.update(action="OBSERVE")),
            "no schemaVersion": broken(lambda d, e: d.pop("schemaVersion")),
            "no @context": broken(lambda d, e: d.pop("@context")),
            "disposition unknown": broken(lambda d, e: e.update(disposition="scrapped")),
        }
        self.assertEqual(self.doc["epcisBody"]["eventList"][0]["action"], "ADD")
        for what, doc in cases.items():
            with self.subTest(what=what):
                rc, out = self.validate(doc, what)
                self.assertEqual(rc, 1, "%s: accepted: %s" % (what, out))
                self.assertIn("invalid", out)
        rc, out = self.validate("{not json", "not JSON")
        self.assertEqual(rc, 1, out)
        self.assertValid(self.doc, "the untouched document")


class PublicBaseTest(RegistryCase):
    """serve --public-base: where the labels point, and so the name of a cylinder
    without a GRAI in the export; a base that is not an http(s) URL is refused as
    bad usage before anything is opened."""
    TOKENS = {"admin": ("admin", "root"), "regulator": ("regulator", "SAMR"),
              "co": ("company", "CO-B")}
    START_ARGS = ("--public-base", "https://gas.example.gov.cn/")

    @classmethod
    def world(cls):
        today = today_shanghai()
        far = iso(today + timedelta(days=400))
        cls.post("/v1/companies", {"id": "CO-B", "name": "B", "filling_license":
                                   {"number": "L", "valid_until": far}}, cls.admin)
        cls.post("/v1/cylinders", {
            "code": "BASE01", "model": "YSP35.5", "manufacturer": "M",
            "manufactured": year_month(add_years(today, -1)), "tare_kg": 16.4}, cls.co)
        cls.reg.wait_logged()

    def test_names_by_the_public_base(self):
        status, doc = self.call("GET", "/v1/export/epcis", token=self.regulator)
        self.assertEqual(status, 200, doc)
        epcs = [e["epcList"] for e in doc["epcisBody"]["eventList"]
                if e["pingma:code"] == "BASE01"]
        self.assertEqual(epcs, [["https://gas.example.gov.cn/c/BASE01"]])

    def test_a_base_that_is_not_a_url_is_refused(self):
        for base in ("ftp://gas.example/", "gas.example.gov.cn", "https://x/ y", ""):
            with self.subTest(base=base):
                db = os.path.join(self.reg.workdir, "never.db")
                r = self.reg.run_cli("serve", "--db", db, "--listen", "127.0.0.1:0",
                                     "--public-base", base, timeout=30)
                self.assertEqual(r.returncode, 2, r.stderr)  # bad usage
                self.assertIn("--public-base", r.stderr)
                self.assertFalse(os.path.exists(db), "a refused start created %s" % db)


if __name__ == "__main__":
    BINARY = take_binary_argument()
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        VALIDATOR_DIR = os.path.abspath(sys.argv.pop(1))
    else:
        VALIDATOR_DIR = os.environ.get("PINGMA_EPCIS_VALIDATOR") or os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools", "epcis")
    VALIDATOR_INSTALLED = os.path.isdir(os.path.join(VALIDATOR_DIR, "node_modules", "epcis2.js"))
    if not VALIDATOR_INSTALLED:
        sys.stderr.write("registry_epcis_test: epcis2.js is not installed in %s ('npm ci --prefix "
                         "%s' installs it; tools/quickstart.sh test tries and says why it could "
                         "not)\n" % (VALIDATOR_DIR, VALIDATOR_DIR))
        if os.environ.get("PINGMA_REQUIRE_EPCIS_VALIDATOR") == "1":
            sys.exit(1)
    result = unittest.main(exit=False).result
    if NOT_VALIDATED:
        sys.stderr.write("registry_epcis_test: %d documents were not validated, epcis2.js being "
                         "absent: %s\n" % (len(NOT_VALIDATED), "; ".join(NOT_VALIDATED[:5])))
    sys.exit(0 if result.wasSuccessful() else 1)
