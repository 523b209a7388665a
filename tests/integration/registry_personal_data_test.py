"""Personal data outside the hash-chained log, against the real pingma-registry.

A public reporter's contact and the place a handover was recorded at are kept
beside the log, which holds a reference and a salted hash: a regulator can erase
one on request (and the erasure is itself on the record), each is deleted when
its retention (policy) ends, and the chain verifies after either.

    python3 registry_personal_data_test.py /path/to/pingma-registry
"""

import hashlib
import json
import os
import sys
import tempfile
import unittest
import urllib.parse
from datetime import timedelta

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from registry_harness import (STORE, Registry, add_years, iso, take_binary_argument,
                              today_shanghai, year_month)

BINARY = None  # set in __main__
CONTACT = "微信 pingma-witness-4711"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class PersonalDataTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pingma-pd-")
        self.reg = Registry(BINARY)
        self.admin = self.reg.token("admin", "root")
        self.regulator = self.reg.token("regulator", "SAMR")
        self.co = self.reg.token("company", "CO-P")
        self.today = today_shanghai()

    def tearDown(self):
        self.reg.stop_and_remove(self.tmp)

    def start(self, **policy):
        args = ()
        if policy:
            path = os.path.join(self.tmp, "policy.json")
            with open(path, "w") as f:
                json.dump(policy, f)
            args = ("--policy", path)
        self.reg.start(extra_args=args)

    def post(self, path, body, token, expect=201):
        status, answer = self.reg.request("POST", path, body=body, token=token)
        self.assertEqual(status, expect, "POST %s -> %r" % (path, answer))
        return answer

    def world(self):
        far = iso(self.today + timedelta(days=400))
        self.post("/v1/companies", {"id": "CO-P", "name": "Private Gas", "filling_license": {
            "number": "L-P", "valid_until": far}}, self.admin)
        self.post("/v1/cylinders", {
            "code": "PD0001", "model": "YSP35.5", "manufacturer": "Hebei Example Cylinder Co.",
            "manufactured": year_month(add_years(self.today, -2)), "tare_kg": 16.4,
            "design_life_years": 8, "last_inspection": iso(add_years(self.today, -2)),
            "next_inspection_due": iso(add_years(self.today, 2))}, self.co)

    def report(self, contact=CONTACT):
        conn = self.reg.connection()
        try:
            status, page, _ = conn.request(
                "POST", "/c/PD0001/report", headers=FORM,
                raw=urllib.parse.urlencode({"category": "leak", "text": "闻到异味",
                                            "contact": contact}))
        finally:
            conn.close()
        self.assertEqual(status, 201, page)

    def reports(self):
        status, answer = self.reg.request("GET", "/v1/reports", token=self.regulator)
        self.assertEqual(status, 200, answer)
        return answer["reports"]

    def history(self, token):
        status, answer = self.reg.request("GET", "/v1/cylinders/PD0001/history", token=token)
        self.assertEqual(status, 200, answer)
        return answer["events"]

    def log_text(self):
        return json.dumps(self.reg.query("SELECT body FROM events"), ensure_ascii=False)

    def test_a_regulator_erases_a_contact_and_the_chain_verifies(self):
        self.start()
        self.world()
        self.report()
        [r] = self.reports()
        self.assertEqual(r["contact"], CONTACT)
        pd = r["contact_id"]
        self.assertNotIn(CONTACT, self.log_text())
        # The log's salted hash matches the value with the salt kept beside it.
        [[salt, value]] = self.reg.query("SELECT salt, value FROM personal_data WHERE id = ?",
                                         (pd,))
        salt = bytes.fromhex(salt[2:]) if isinstance(salt, str) else bytes(salt)
        ref = [e for e in self.history(self.regulator) if e["type"] == "public_report"][0]
        stored = json.loads(self.reg.query("SELECT body FROM events WHERE id = ?",
                                           (ref["id"],))[0][0])
        self.assertEqual(stored["contact_ref"]["salted_sha256"],
                         hashlib.sha256(salt + value.encode()).hexdigest())
        self.assertEqual(json.loads(value), CONTACT)

        # Only a regulator (or the admin) erases, and only what exists.
        for token in (self.co, None):
            status, answer = self.reg.request("DELETE", "/v1/personal-data/" + pd, token=token)
            self.assertIn(status, (401, 403), answer)
        status, answer = self.reg.request("DELETE", "/v1/personal-data/" + pd,
                                          token=self.regulator)
        self.assertEqual((status, answer), (200, {"personal_data": pd, "field": "contact",
                                                  "erased": True}))
        status, answer = self.reg.request("DELETE", "/v1/personal-data/" + pd,
                                          token=self.regulator)
        self.assertEqual(status, 404, answer)
        self.assertIn("erased already", answer["error"]["message"])

        [r] = self.reports()
        self.assertEqual((r["contact"], r["contact_erased"]), ("", True))
        events = self.history(self.regulator)
        report = [e for e in events if e["type"] == "public_report"][0]
        self.assertIsNone(report["contact"])
        self.assertIs(report["contact_erased"], True)
        erased = [e for e in events if e["type"] == "personal_data_erased"]
        self.assertEqual(len(erased), 1, events)
        self.assertEqual((erased[0]["personal_data"], erased[0]["field"],
                          erased[0]["actor"]["role"]), (pd, "contact", "regulator"))
        self.assertEqual(self.reg.query("SELECT count(*) AS n FROM personal_data")[0][0], 0)
        self.reg.stop()
        v = self.reg.verify()
        self.assertEqual(v.returncode, 0, v.stderr)
        if STORE != "postgresql":
            # Neither the file nor its WAL holds the contact (secure_delete).
            self.assertNotIn(CONTACT.encode(), self.reg.stored_bytes())

    def test_contacts_are_deleted_when_their_retention_ends(self):
        # Kept the default 180 days: still there after a restart's sweep.
        self.start()
        self.world()
        self.report()
        self.reg.stop()
        self.start()
        self.assertEqual([r["contact"] for r in self.reports()], [CONTACT])
        self.reg.stop()
        # The policy shortened to 0 days: deleted at the next start's sweep, which
        # says so; the policy in force decides, not the one the contact came under.
        self.start(contact_retention_days=0)
        self.assertIn("deleted 1 item(s) of personal data past their retention",
                      self.reg.stderr_tail())
        self.report(contact="second witness")
        self.reg.stop()
        self.start(contact_retention_days=0)
        reports = self.reports()
        self.assertEqual(len(reports), 2)
        for r in reports:
            self.assertEqual((r["contact"], r["contact_erased"]), ("", True), r)
        self.assertEqual(self.reg.query("SELECT count(*) AS n FROM personal_data")[0][0], 0)
        self.reg.stop()
        v = self.reg.verify()
        self.assertEqual(v.returncode, 0, v.stderr)
        # A retention of one day keeps it past a restart.
        self.start(contact_retention_days=1)
        self.report(contact="third witness")
        self.reg.stop()
        self.start(contact_retention_days=1)
        contacts = sorted(r["contact"] for r in self.reports())
        self.assertEqual(contacts, ["", "", "third witness"])


if __name__ == "__main__":
    BINARY = take_binary_argument()
    unittest.main(verbosity=2)
