"""The verifiable log (API.md "The verifiable log") of the real pingma-registry,
checked by rfc9162.py, a verifier written from RFC 9162 alone.

- every acknowledged event reaches a signed head, whose Ed25519 signature the
  openssl program checks against GET /v1/log/key;
- every entry's leaf is its event, and every history event's log_index names it;
- every inclusion proof of every entry, and every consistency proof from every
  smaller size, verifies against roots this test computes itself from the leaves;
- consistency between two heads signed at different times;
- bad requests get clear errors; the key and head need no token, the entries a
  regulator's or an admin's;
- the public page names the signed head that holds the cylinder's latest record;
- `verify` passes, and fails on a head whose signature or size was changed, on a
  tile changed and on an event changed, naming what;
- a store whose tree was never built (made before the log) gets it at start, with
  a notice, to the same root as before;
- on PostgreSQL, three registries on one database under load, the one that
  sequences killed with SIGKILL: another takes over, every acknowledged event is
  in a signed head, and the last head is consistent with every head seen before.

    python3 registry_log_test.py /path/to/pingma-registry
"""

import base64
import json
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rfc9162
from registry_harness import (STORE, Registry, RegistryCase, add_years, iso,
                              take_binary_argument, today_shanghai, year_month)

BINARY = None  # set in __main__


def cylinder(code):
    t = today_shanghai()
    return {"code": code, "model": "YSP35.5", "phase": "gas",
            "manufacturer": "Hebei Example Cylinder Co.", "serial": "S-" + code,
            "manufactured": year_month(add_years(t, -2)), "tare_kg": 16.4,
            "allowed_fill_kg": 14.9, "design_life_years": 8,
            "registration_no": "REG-" + code, "last_inspection": iso(add_years(t, -2)),
            "next_inspection_due": iso(add_years(t, 2))}


class VerifiableLogTest(RegistryCase):
    TOKENS = {"admin": ("admin", "root"), "regulator": ("regulator", "SAMR-1"),
              "company": ("company", "CO-L"), "station": ("station", "ST-L")}

    @classmethod
    def world(cls):
        cls.post("/v1/companies", {"id": "CO-L", "name": "Log Gas", "filling_license": {
            "number": "TS-L", "valid_until": iso(add_years(today_shanghai(), 3))}}, cls.admin)
        cls.post("/v1/stations", {"id": "ST-L", "company_id": "CO-L", "name": "Log St",
                                  "district": "Xiayi"}, cls.admin)
        for i in range(20):
            cls.post("/v1/cylinders", cylinder("LOG-%03d" % i), cls.company)

    # -- helpers --------------------------------------------------------------

    def key(self):
        status, body = self.call("GET", "/v1/log/key")
        self.assertEqual(status, 200, body)
        self.assertEqual(body["algorithm"], "Ed25519")
        self.assertEqual(len(base64.b64decode(body["public_key"])), 32)
        return body

    def head_holding(self, size, within=15.0):
        """The newest signed head once it holds `size` entries; how long that took."""
        started = time.monotonic()
        while True:
            status, head = self.call("GET", "/v1/log/head")
            if status == 200 and head["tree_size"] >= size:
                self.assertTrue(rfc9162.verify_head_signature(head, self.key()["public_key"]),
                                "the head's signature must verify: %r" % head)
                self.assertEqual(head["key_id"], self.key()["key_id"])
                return head, time.monotonic() - started
            self.assertLess(time.monotonic() - started, within,
                            "no signed head of %d entries: %s %r" % (size, status, head))
            time.sleep(0.02)

    def entries(self, size):
        """The leaves of entries 0..size-1, a page at a time."""
        leaves = []
        while len(leaves) < size:
            status, body = self.call("GET", "/v1/log/entries?start=%d&end=%d"
                                     % (len(leaves), size - 1), token=self.regulator)
            self.assertEqual(status, 200, body)
            self.assertTrue(body["entries"], "a page of no entries before %d" % size)
            for entry in body["entries"]:
                self.assertEqual(entry["index"], len(leaves))
                leaves.append(base64.b64decode(entry["leaf"]))
        return leaves

    def events_count(self):
        return self.reg.query("SELECT COUNT(*) AS n FROM events")[0][0]

    # -- tests ----------------------------------------------------------------

    def test_01_acknowledged_events_reach_a_signed_head(self):
        delays = []
        for i in range(10):
            self.post("/v1/cylinders", cylinder("ACK-%03d" % i), self.company)
            _, delay = self.head_holding(self.events_count())
            delays.append(delay)
        print("acknowledgement to signed head: max %.3f s of %d writes" % (max(delays), 10),
              file=sys.stderr)

    def test_02_every_entry_is_its_event_and_proven(self):
        head, _ = self.head_holding(self.events_count())
        size = head["tree_size"]
        leaves = self.entries(size)
        hashes = [rfc9162.leaf_hash(leaf) for leaf in leaves]
        self.assertEqual(rfc9162.mth(hashes).hex(), head["root_hash"],
                         "the head's root must be the tree of the entries")
        seqs = []
        for index, leaf in enumerate(leaves):
            event = json.loads(leaf)
            seqs.append(event["seq"])
            self.assertEqual(list(event), ["seq", "id", "code", "type", "at", "actor_role",
                                           "actor_id", "body"])
        # Every event once. On SQLite the leaves are the events in the order of
        # their numbers; on PostgreSQL in the order of their revisions, numbers
        # taken in blocks (with gaps), which one registry takes in order.
        stored = [row[0] for row in self.reg.query("SELECT seq FROM events ORDER BY seq")]
        self.assertEqual(sorted(seqs), stored[:len(seqs)])
        self.assertEqual(seqs, sorted(seqs))
        if STORE != "postgresql":
            self.assertEqual(seqs, list(range(1, len(seqs) + 1)))
        # A history's events name their entries.
        status, history = self.call("GET", "/v1/cylinders/LOG-007/history", token=self.regulator)
        self.assertEqual(status, 200, history)
        self.assertTrue(history["events"])
        for ev in history["events"]:
            logged = json.loads(leaves[ev["log_index"]])
            self.assertEqual((logged["id"], logged["type"], logged["code"]),
                             (ev["id"], ev["type"], "LOG-007"))
        # Every inclusion proof at the head, and at a smaller signed size.
        roots = {}
        frontier = rfc9162.Frontier()
        for n, h in enumerate(hashes, 1):
            frontier.append(h)
            roots[n] = frontier.root()
        for tree_size in sorted({size, max(1, size // 2), 1}):
            for index in range(tree_size):
                status, proof = self.call("GET", "/v1/log/proof/inclusion?index=%d&tree_size=%d"
                                          % (index, tree_size), token=self.station)
                self.assertEqual(status, 200, proof)
                path = [bytes.fromhex(p) for p in proof["path"]]
                self.assertTrue(rfc9162.verify_inclusion(index, tree_size, hashes[index], path,
                                                         roots[tree_size]),
                                "inclusion of %d in %d" % (index, tree_size))
                if path:  # the same proof, one hash changed, fails
                    path[0] = bytes([path[0][0] ^ 1]) + path[0][1:]
                    self.assertFalse(rfc9162.verify_inclusion(index, tree_size, hashes[index],
                                                              path, roots[tree_size]))
        # Every consistency proof into the head.
        for first in range(1, size + 1):
            status, proof = self.call("GET", "/v1/log/proof/consistency?first=%d&second=%d"
                                      % (first, size), token=self.company)
            self.assertEqual(status, 200, proof)
            path = [bytes.fromhex(p) for p in proof["path"]]
            self.assertTrue(rfc9162.verify_consistency(first, size, roots[first], roots[size],
                                                       path), "consistency %d to %d" % (first, size))

    def test_03_heads_signed_apart_are_consistent(self):
        older, _ = self.head_holding(self.events_count())
        for i in range(5):
            self.post("/v1/cylinders", cylinder("LATER-%03d" % i), self.company)
        newer, _ = self.head_holding(older["tree_size"] + 5)
        self.assertGreaterEqual(newer["timestamp"], older["timestamp"])
        status, proof = self.call("GET", "/v1/log/proof/consistency?first=%d&second=%d"
                                  % (older["tree_size"], newer["tree_size"]), token=self.station)
        self.assertEqual(status, 200, proof)
        self.assertTrue(rfc9162.verify_consistency(
            older["tree_size"], newer["tree_size"], bytes.fromhex(older["root_hash"]),
            bytes.fromhex(newer["root_hash"]), [bytes.fromhex(p) for p in proof["path"]]))

    def test_04_bad_requests(self):
        head, _ = self.head_holding(self.events_count())
        size = head["tree_size"]
        # Each limit on both sides: the newest head's size is as far as they reach.
        for path in ("/v1/log/proof/inclusion?index=%d&tree_size=%d" % (size - 1, size),
                     "/v1/log/proof/consistency?first=1&second=%d" % size,
                     "/v1/log/entries?start=%d&end=%d" % (size - 1, size - 1)):
            status, body = self.call("GET", path, token=self.admin)
            self.assertEqual(status, 200, "%s -> %s %r" % (path, status, body))
        cases = [
            ("/v1/log/proof/inclusion?index=%d&tree_size=%d" % (size, size), 400, "below"),
            ("/v1/log/proof/inclusion?index=0&tree_size=%d" % (size + 1), 422, "beyond"),
            ("/v1/log/proof/inclusion?tree_size=3", 400, "`index` is required"),
            ("/v1/log/proof/inclusion?index=x&tree_size=3", 400, "whole number"),
            ("/v1/log/proof/consistency?first=0&second=3", 400, "`first`"),
            ("/v1/log/proof/consistency?first=4&second=3", 400, "at least"),
            ("/v1/log/proof/consistency?first=1&second=%d" % (size + 1), 422, "beyond"),
            ("/v1/log/entries?start=%d&end=%d" % (size, size + 9), 422, "not in the newest"),
            ("/v1/log/entries?start=5&end=2", 400, "before"),
        ]
        for path, want, words in cases:
            status, body = self.call("GET", path, token=self.admin)
            self.assertEqual(status, want, "%s -> %s %r" % (path, status, body))
            self.assertIn(words, body["error"]["message"], path)
        # Who may call what.
        self.assertEqual(self.call("GET", "/v1/log/entries?start=0&end=1")[0], 401)
        self.assertEqual(self.call("GET", "/v1/log/entries?start=0&end=1",
                                   token=self.station)[0], 403)
        self.assertEqual(self.call("GET", "/v1/log/proof/inclusion?index=0&tree_size=1")[0], 401)
        status, body = self.call("POST", "/v1/log/head", {})
        self.assertEqual(status, 405, body)
        # A page ends at the head, and is at most 1,000 entries: a log of more than
        # 1,000 gives 1,000, then the rest from where the page ended.
        status, body = self.call("GET", "/v1/log/entries?start=0&end=999999",
                                 token=self.admin)
        self.assertEqual(status, 200, body)
        self.assertEqual(len(body["entries"]), size)
        self.assertEqual(body["entries"][-1]["index"], size - 1)
        batch = {"cylinders": [cylinder("PAGE-%04d" % i) for i in range(1100)]}
        status, body = self.call("POST", "/v1/cylinders/batch", batch, self.company)
        self.assertEqual(status, 200, body)
        head, _ = self.head_holding(self.events_count())
        self.assertGreater(head["tree_size"], 1000)
        status, first = self.call("GET", "/v1/log/entries?start=0&end=999999",
                                  token=self.admin)
        self.assertEqual([e["index"] for e in first["entries"]], list(range(1000)))
        status, rest = self.call("GET", "/v1/log/entries?start=1000&end=999999",
                                 token=self.admin)
        self.assertEqual([e["index"] for e in rest["entries"]],
                         list(range(1000, head["tree_size"])))

    def test_05_public_page_names_the_signed_head(self):
        self.head_holding(self.events_count())
        status, history = self.call("GET", "/v1/cylinders/LOG-003/history", token=self.admin)
        last = history["events"][-1]["log_index"]
        status, page = self.reg.request("GET", "/c/LOG-003")
        self.assertEqual(status, 200)
        text = page if isinstance(page, str) else page.decode("utf-8")
        self.assertIn("公开日志", text)
        self.assertIn("最近一条记录为第 %d 条，已收入" % last, text)

    def test_90_verify_passes_and_catches_changes(self):
        head, _ = self.head_holding(self.events_count())
        self.reg.stop()
        try:
            ok = self.reg.verify()
            self.assertEqual(ok.returncode, 0, ok.stderr)
            self.assertIn("signed heads verified", ok.stdout)
            size = head["tree_size"]
            # The first and third events in the order of their numbers (on
            # PostgreSQL not #1 and #3).
            first, third = [row[0] for row in self.reg.query(
                "SELECT seq FROM events ORDER BY seq LIMIT 3")][0::2]
            # Bytes as hex in and out of either store.
            sqlite = STORE != "postgresql"
            # (PostgreSQL's bytea as text is its hex form, \\x first; no comma, which
            # the harness's column split would take for two columns.)
            hexed = (lambda col: "lower(hex(%s))" % col) if sqlite else \
                (lambda col: "%s::text" % col)
            unhexed = (lambda h: "X'%s'" % h) if sqlite else (lambda h: "decode('%s', 'hex')" % h)
            signature = self.reg.query("SELECT %s AS h FROM log_heads WHERE tree_size = %d"
                                       % (hexed("signature"), size))[0][0].removeprefix("\\x")
            tile = self.reg.query("SELECT %s AS h FROM log_tiles WHERE id = 0"
                                  % hexed("hashes"))[0][0].removeprefix("\\x")
            flipped = "%02x" % (int(signature[:2], 16) ^ 1) + signature[2:]
            swapped = tile[64:128] + tile[:64] + tile[128:]  # leaves 0 and 1 change places
            # Each change is undone after, so that the next starts from a good store.
            changes = [
                ("UPDATE log_heads SET signature = %s WHERE tree_size = %d"
                 % (unhexed(flipped), size),
                 "UPDATE log_heads SET signature = %s WHERE tree_size = %d"
                 % (unhexed(signature), size), "does not verify"),
                ("UPDATE log_heads SET tree_size = tree_size + 1000000 WHERE tree_size = %d"
                 % size, "UPDATE log_heads SET tree_size = tree_size - 1000000 "
                 "WHERE tree_size = %d" % (size + 1000000), "events were removed"),
                ("UPDATE log_tiles SET hashes = %s WHERE id = 0"
                 % unhexed(swapped),
                 "UPDATE log_tiles SET hashes = %s WHERE id = 0" % unhexed(tile),
                 "event #%d (id " % first),
                ("UPDATE events SET body = body || ' ' WHERE seq = %d" % third,
                 "UPDATE events SET body = substr(body, 1, length(body) - 1) WHERE seq = %d"
                 % third, "event #%d" % third),
            ]
            for change, undo, words in changes:
                self.reg.execute(change)
                bad = self.reg.verify()
                self.assertNotEqual(bad.returncode, 0, "verify after: " + change)
                self.assertIn(words, bad.stderr, change)
                self.reg.execute(undo)
                again = self.reg.verify()
                self.assertEqual(again.returncode, 0, "verify after undoing: %s: %s"
                                 % (change, again.stderr))
        finally:
            self.reg.start()

    def test_91_tree_built_for_a_store_made_before_the_log(self):
        head, _ = self.head_holding(self.events_count())
        self.reg.stop()
        for table in ("log_tiles", "log_heads", "log_keys"):
            self.reg.execute("DELETE FROM " + table)
        self.reg.start()
        rebuilt, _ = self.head_holding(head["tree_size"])
        # Nothing was written between: the same tree, to its root.
        self.assertEqual((rebuilt["tree_size"], rebuilt["root_hash"]),
                         (head["tree_size"], head["root_hash"]))
        self.assertIn("the verifiable log: adding", self.reg.stderr_tail())
        self.assertIn("the verifiable log's tree holds", self.reg.stderr_tail())
        self.assertEqual(self.reg.verify().returncode, 0)


@unittest.skipUnless(STORE == "postgresql", "several registries share a PostgreSQL database")
class SequencerTakeoverTest(unittest.TestCase):

    def test_the_sequencer_killed_under_load(self):
        first = Registry(BINARY)
        regs = [first] + [Registry(BINARY, db_path=first.db) for _ in range(2)]
        try:
            admin, company = first.token("admin", "root"), first.token("company", "CO-T")
            for reg in regs:
                reg.start()
            status, key = first.request("GET", "/v1/log/key")
            self.assertEqual(status, 200, key)
            status, body = first.request("POST", "/v1/companies", token=admin, body={
                "id": "CO-T", "name": "Takeover Gas", "filling_license": {
                    "number": "TS-T", "valid_until": iso(add_years(today_shanghai(), 3))}})
            self.assertEqual(status, 201, body)
            leader = self.wait_for_leader(regs)

            # Load: cylinders registered through every registry in turn, and the
            # heads seen meanwhile.
            acknowledged, heads, stop = [], [], threading.Event()

            def write(reg, tag):
                n = 0
                while not stop.is_set():
                    code = "TK-%s-%04d" % (tag, n)
                    try:
                        status, _ = reg.request("POST", "/v1/cylinders", token=company,
                                                body=cylinder(code))
                    except Exception:  # the registry was killed under the request
                        return
                    if status == 201:
                        acknowledged.append(code)
                    n += 1

            def watch():
                while not stop.is_set():
                    for reg in regs:
                        if not reg.running:
                            continue
                        try:
                            status, head = reg.request("GET", "/v1/log/head")
                        except Exception:
                            continue
                        if status == 200:
                            heads.append(head)
                    time.sleep(0.05)

            threads = [threading.Thread(target=write, args=(reg, str(i)))
                       for i, reg in enumerate(regs)] + [threading.Thread(target=watch)]
            for t in threads:
                t.start()
            time.sleep(2.0)
            leader.kill()
            killed_at = time.monotonic()
            successor = self.wait_for_leader([r for r in regs if r is not leader])
            took_over = time.monotonic() - killed_at
            time.sleep(2.0)
            stop.set()
            for t in threads:
                t.join(60)
            print("sequencer killed: another took over in %.2f s; %d writes acknowledged, "
                  "%d heads seen" % (took_over, len(acknowledged), len(heads)),
                  file=sys.stderr)
            self.assertLess(took_over, 10.0)
            self.assertGreater(len(acknowledged), 50)

            # Every acknowledged event in a signed head.
            events = int(successor.query("SELECT COUNT(*) AS n FROM events")[0][0])
            final = None
            deadline = time.monotonic() + 15
            while final is None or final["tree_size"] < events:
                self.assertLess(time.monotonic(), deadline, "no head of %d events" % events)
                time.sleep(0.1)
                status, final = successor.request("GET", "/v1/log/head")
                self.assertEqual(status, 200, final)
            self.assertTrue(rfc9162.verify_head_signature(final, key["public_key"]))
            admin_token = admin
            for code in acknowledged[:: max(1, len(acknowledged) // 40)]:
                status, history = successor.request("GET", "/v1/cylinders/%s/history" % code,
                                                    token=admin_token)
                self.assertEqual(status, 200, history)
                self.assertLess(history["events"][0]["log_index"], final["tree_size"], code)

            # The last head consistent with every head seen before it.
            seen = {(h["tree_size"], h["root_hash"]): h for h in heads}
            for (size, root), head in sorted(seen.items()):
                self.assertTrue(rfc9162.verify_head_signature(head, key["public_key"]))
                if size == 0:
                    continue
                status, proof = successor.request(
                    "GET", "/v1/log/proof/consistency?first=%d&second=%d"
                    % (size, final["tree_size"]), token=admin_token)
                self.assertEqual(status, 200, proof)
                self.assertTrue(rfc9162.verify_consistency(
                    size, final["tree_size"], bytes.fromhex(root),
                    bytes.fromhex(final["root_hash"]),
                    [bytes.fromhex(p) for p in proof["path"]]),
                    "the head of %d is not a prefix of the last" % size)
            for reg in regs:
                if reg.running:
                    reg.stop()
            r = first.verify()
            self.assertEqual(r.returncode, 0, r.stderr)
        finally:
            for reg in regs:
                reg.kill()
                reg.cleanup()

    def wait_for_leader(self, regs, within=15.0):
        """The registry whose stderr last says it sequences the log."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for reg in regs:
                said = reg.stderr_tail(100000)
                if said.rfind("this registry sequences") > said.rfind("no longer sequences"):
                    return reg
            time.sleep(0.05)
        self.fail("no registry says it sequences the log")


if __name__ == "__main__":
    BINARY = take_binary_argument()
    print("store: %s" % STORE, file=sys.stderr)
    unittest.main(verbosity=2)
