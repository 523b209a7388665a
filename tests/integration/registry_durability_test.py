"""Crash and shutdown durability of pingma-registry (ARCHITECTURE.md "done": a crash at
any moment loses no acknowledged record; retries store nothing twice).

Run: python3 registry_durability_test.py /path/to/pingma-registry [unittest args]

8 client threads register cylinders as fast as the server acknowledges them; the server
is killed with SIGKILL (or stopped with SIGTERM) while they write, restarted on the same
database, and every cylinder that got a 201 must be there; `verify` must pass.
"""

import os
import re
import shutil
import signal
import sys
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from registry_harness import (STORE, NoAnswer, Registry, add_years, iso, now_rfc3339, q,
                              take_binary_argument, today_shanghai, year_month)

BINARY = None  # set in __main__
WRITERS = 8
WRITE_SECONDS = 2.0


class DurabilityTest(unittest.TestCase):
    maxDiff = 2000

    def setUp(self):
        self.today = today_shanghai()
        self.reg = Registry(BINARY)
        self.addCleanup(self.reg.cleanup)
        self.admin = self.reg.token("admin", "root")
        self.company = self.reg.token("company", "CO-D")
        self.station = self.reg.token("station", "ST-D1")
        self.regulator = self.reg.token("regulator", "SAMR")
        self.reg.start()
        far = iso(add_years(self.today, 1))
        for path, body in (
                ("/v1/companies", {"id": "CO-D", "name": "Durable Gas",
                                   "filling_license": {"number": "TS-D",
                                                       "valid_until": far}}),
                ("/v1/stations", {"id": "ST-D1", "company_id": "CO-D", "name": "D1",
                                  "district": "Suiyang"}),
                ("/v1/operators", {"id": "OP-D", "company_id": "CO-D", "name": "Op D",
                                   "certificate": {"number": "C-D", "valid_until": far}})):
            status, answer = self.reg.request("POST", path, body=body, token=self.admin)
            self.assertEqual(status, 201, "set-up POST %s: %s %r" % (path, status, answer))

    def cylinder(self, code):
        t = self.today
        return {"code": code, "model": "YSP35.5", "phase": "gas",
                "manufacturer": "Hebei Example Cylinder Co.", "serial": "S-" + code,
                "manufactured": year_month(add_years(t, -1)), "tare_kg": 16.4,
                "allowed_fill_kg": 14.9, "design_life_years": 8,
                "next_inspection_due": iso(add_years(t, 3))}

    # ------------------------------------------------------------------ writers

    def start_writers(self, prefix):
        """Starts WRITERS threads registering cylinders; returns (state, threads)."""
        state = {"stopped": threading.Event(), "stopping": threading.Event(),
                 "acked": [[] for _ in range(WRITERS)],
                 "unexpected": [], "no_answer_before_stop": 0}

        def write(i):
            conn = self.reg.connection(timeout=10)
            n, failures = 0, 0
            try:
                while not state["stopped"].is_set():
                    code = "%s%02d%07d" % (prefix, i, n)
                    n += 1
                    try:
                        status, body, _ = conn.request("POST", "/v1/cylinders",
                                                       body=self.cylinder(code),
                                                       token=self.company)
                    except NoAnswer:
                        if state["stopping"].is_set():
                            break
                        state["no_answer_before_stop"] += 1
                        failures += 1
                        if failures > 50:
                            break
                        time.sleep(0.01)
                        continue
                    failures = 0
                    if status == 201:
                        state["acked"][i].append(code)
                    elif not state["stopping"].is_set():
                        state["unexpected"].append((code, status, body))
            finally:
                conn.close()

        threads = [threading.Thread(target=write, args=(i,), daemon=True)
                   for i in range(WRITERS)]
        for t in threads:
            t.start()
        return state, threads

    def stop_writers(self, state, threads):
        state["stopped"].set()
        for t in threads:
            t.join(30)
            self.assertFalse(t.is_alive(), "a writer thread hung")
        acked = [c for per in state["acked"] for c in per]
        self.assertEqual(state["unexpected"][:5], [],
                         "the server refused writes while healthy")
        self.assertGreaterEqual(len(acked), WRITERS,
                                "too few writes acknowledged to mean anything: %d" % len(acked))
        return acked

    def assert_all_present(self, codes):
        """GETs every code on WRITERS keep-alive connections; all must be 200."""
        missing, lock = [], threading.Lock()
        chunks = [codes[i::WRITERS] for i in range(WRITERS)]

        def read(chunk):
            conn = self.reg.connection(timeout=30)
            try:
                for code in chunk:
                    try:
                        status, body, _ = conn.request("GET", "/v1/cylinders/" + q(code),
                                                       token=self.regulator, retry=True)
                    except NoAnswer as e:
                        status, body = None, str(e)
                    if status != 200 or body.get("code") != code:
                        with lock:
                            missing.append((code, status, body))
            finally:
                conn.close()

        threads = [threading.Thread(target=read, args=(c,)) for c in chunks]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(len(missing), 0, "%d of %d acknowledged cylinders lost; first: %r"
                         % (len(missing), len(codes), missing[:5]))

    def assert_verify_ok(self):
        r = self.reg.verify()
        self.assertEqual(r.returncode, 0, "verify after restart: rc %d, stdout %r, stderr %r"
                         % (r.returncode, r.stdout, r.stderr))
        self.assertIn("ok", r.stdout.lower(), "verify prints ok: %r" % r.stdout)

    # -------------------------------------------------------------------- tests

    def test_sigkill_loses_no_acknowledged_write(self):
        # A cylinder to fill during the storm.
        fill_code = "DKFILL01"
        status, body = self.reg.request("POST", "/v1/cylinders",
                                        body=self.cylinder(fill_code), token=self.company)
        self.assertEqual(status, 201, "register %s: %s %r" % (fill_code, status, body))
        status, check = self.reg.request("POST", "/v1/fill-checks", token=self.station,
                                         body={"station_id": "ST-D1", "operator_id": "OP-D",
                                               "code": fill_code, "empty_gross_kg": 16.9})
        self.assertEqual(status, 200, "check: %s %r" % (status, check))
        self.assertEqual(check.get("decision"), "allow", repr(check))
        fill = {"event_id": str(uuid.uuid4()), "check_id": check["check_id"],
                "code": fill_code, "station_id": "ST-D1", "operator_id": "OP-D",
                "scale_id": "S1", "started_at": now_rfc3339(-60), "ended_at": now_rfc3339(),
                "tare_kg": 16.4, "gross_before_kg": 16.9, "gross_after_kg": 31.4,
                "net_kg": 14.5, "residual_kg": 0.5, "result": "ok",
                "post_checks": {"leak_test": "pass", "reweigh": "pass"}}

        state, threads = self.start_writers("DK")
        time.sleep(WRITE_SECONDS)
        status, answer = self.reg.request("POST", "/v1/fills", body=fill, token=self.station)
        self.assertEqual(status, 201, "fill during the storm: %s %r" % (status, answer))
        time.sleep(0.2)
        state["stopping"].set()
        rc = self.reg.kill()  # SIGKILL while the writers write
        self.assertEqual(rc, -9, "the server was still running when killed (rc %r)" % rc)
        acked = self.stop_writers(state, threads)
        print("\n%d cylinders acknowledged before SIGKILL" % len(acked))

        self.reg.start()
        self.assert_all_present(acked)
        status, answer = self.reg.request("POST", "/v1/fills", body=fill, token=self.station)
        self.assertEqual(status, 200, "the acknowledged fill retried after the crash: %s %r"
                         % (status, answer))
        self.assertIs(answer.get("duplicate"), True, repr(answer))
        status, hist = self.reg.request(
            "GET", "/v1/cylinders/%s/history?limit=1000" % fill_code, token=self.regulator)
        self.assertEqual(status, 200, repr(hist))
        fills = [e for e in hist["events"] if e.get("type") == "fill"]
        self.assertEqual(len(fills), 1, "exactly one fill after crash and retry: %r" % fills)
        # Still writable, then a clean stop and an intact chain.
        status, body = self.reg.request("POST", "/v1/cylinders",
                                        body=self.cylinder("DKAFTER01"), token=self.company)
        self.assertEqual(status, 201, "write after restart: %s %r" % (status, body))
        self.reg.stop()
        self.assert_verify_ok()

    def test_sigterm_under_load_exits_0_and_keeps_acknowledged(self):
        state, threads = self.start_writers("DT")
        time.sleep(1.0)
        state["stopping"].set()
        self.reg.stop()  # SIGTERM while the writers write: finish in-flight, exit 0
        acked = self.stop_writers(state, threads)
        print("\n%d cylinders acknowledged before SIGTERM" % len(acked))
        self.assert_verify_ok()
        self.reg.start()
        self.assert_all_present(acked)
        self.reg.stop()

    def test_backup_under_write_load_restores_every_acknowledged_write(self):
        # API.md: `backup` is online (consistent while serve runs) and its copy is
        # verified. The site's restore: stop the registry, put the copy in the store's
        # place (its secrets stay beside it), start.
        if STORE != "sqlite":
            self.skipTest("PostgreSQL is backed up with pg_basebackup and its WAL archive "
                          "(registry_pg_backup_test)")
        copy = os.path.join(self.reg.workdir, "backups", "registry-copy.db")
        os.makedirs(os.path.dirname(copy))
        state, threads = self.start_writers("DC")
        time.sleep(1.0)
        before = [c for per in state["acked"] for c in per]
        r = self.reg.run_cli("backup", "--db", self.reg.db, "--to", copy)
        during = [c for per in state["acked"] for c in per]
        time.sleep(0.5)
        state["stopping"].set()
        acked = self.stop_writers(state, threads)
        self.assertEqual(r.returncode, 0, r.stderr)
        said = re.match(r"^backed up .* to .*registry-copy\.db \(\d+\.\d MiB in [\d.]+ s\); "
                        r"the copy: ok: (\d+) events, chain intact", r.stdout)
        self.assertIsNotNone(said, r.stdout)
        self.assertGreaterEqual(int(said.group(1)), len(before))
        self.assertEqual(sorted(os.listdir(os.path.dirname(copy))), ["registry-copy.db"],
                         "one file, no journal, WAL or partial copy beside it")
        later = sorted(set(acked) - set(during))
        print("\n%d cylinders acknowledged before the backup, %d while it ran, %d after"
              % (len(before), len(during) - len(before), len(later)))
        self.assertGreater(len(later), 0, "writes went on after the backup")
        again = self.reg.run_cli("backup", "--db", self.reg.db, "--to", copy)
        self.assertEqual(again.returncode, 2, again.stderr)
        self.assertIn("exists", again.stderr)

        self.reg.stop()
        aside = os.path.join(self.reg.workdir, "before-restore")
        os.makedirs(aside)
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.reg.db + suffix):
                os.rename(self.reg.db + suffix, os.path.join(aside, "registry.db" + suffix))
        shutil.copyfile(copy, self.reg.db)
        self.reg.start()
        self.assert_all_present(before)
        # What was acknowledged after the backup had ended is not in it: this is the copy.
        for code in later[:20]:
            status, _ = self.reg.request("GET", "/v1/cylinders/" + q(code), token=self.regulator)
            self.assertEqual(status, 404, code)
        self.reg.stop()
        self.assert_verify_ok()

    def test_backup_refuses_what_it_cannot_copy(self):
        pg = self.reg.run_cli("backup", "--db", "postgresql://u@127.0.0.1/x",
                              "--to", os.path.join(self.reg.workdir, "x.db"))
        self.assertEqual(pg.returncode, 2, pg.stderr)
        self.assertIn("pg_basebackup", pg.stderr)
        missing = self.reg.run_cli("backup", "--db", os.path.join(self.reg.workdir, "no.db"),
                                   "--to", os.path.join(self.reg.workdir, "y.db"))
        self.assertEqual(missing.returncode, 1, missing.stderr)
        self.assertRegex(missing.stderr, r"^pingma-registry: no database at .*no\.db")
        self.assertFalse(os.path.exists(os.path.join(self.reg.workdir, "y.db")))
        self.assertFalse(os.path.exists(os.path.join(self.reg.workdir, "y.db.partial")))

    def test_a_second_sigterm_does_not_cut_the_shutdown_short(self):
        # Regression: a supervisor that sends SIGTERM twice killed the registry (exit
        # 143) when the second signal found the default action restored.
        for _ in range(3):
            proc = self.reg.proc
            proc.send_signal(signal.SIGTERM)
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(30), 0, self.reg.stderr_tail())
            self.reg.proc = None
            self.reg.start()

    def test_sigterm_finishes_what_is_in_flight_and_refuses_new_requests(self):
        # A batch big enough to be still running when SIGTERM comes (a few seconds
        # here): it must be answered in full, and a request that arrives after the
        # signal must be refused (503, or no longer accepted) and not stored.
        # On PostgreSQL a batch of 50,000 takes minutes (BENCHMARKS.md §9): 5,000 are
        # still in flight after 1 s.
        codes = ["DB%07d" % i for i in range(50000 if STORE == "sqlite" else 5000)]
        batch = {"cylinders": [self.cylinder(c) for c in codes]}
        result = {}

        def send_batch():
            conn = self.reg.connection(timeout=300)
            try:
                result["answer"] = conn.request("POST", "/v1/cylinders/batch", body=batch,
                                                token=self.company)
            except NoAnswer as e:
                result["error"] = e
            finally:
                conn.close()

        sender = threading.Thread(target=send_batch)
        sender.start()
        time.sleep(1.0)  # the body is sent and the registry is working on it
        self.reg.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        probe = self.reg.connection(timeout=30)
        try:
            status, body, _ = probe.request("POST", "/v1/cylinders",
                                            body=self.cylinder("DBLATE01"), token=self.company)
        except NoAnswer:
            status, body = None, None  # no longer accepting connections: refused as well
        finally:
            probe.close()
        if status is not None:
            self.assertEqual(status, 503, "a request after SIGTERM: %s %r" % (status, body))
            self.assertIsInstance(body.get("error", {}).get("message"), str, repr(body))
        sender.join(300)
        self.assertIn("answer", result,
                      "the batch in flight at SIGTERM got no answer: %r" % result.get("error"))
        status, body, _ = result["answer"]
        self.assertEqual(status, 200, "the batch in flight at SIGTERM: %s" % status)
        self.assertEqual([r.get("status") for r in body["results"]], [201] * len(codes),
                         "every item of the batch in flight at SIGTERM is stored")
        self.reg.stop()  # waits for exit 0
        self.assert_verify_ok()
        self.reg.start()
        self.assert_all_present(codes[::997] + codes[-1:])
        status, body = self.reg.request("GET", "/v1/cylinders/DBLATE01", token=self.regulator)
        self.assertEqual(status, 404, "the request refused at shutdown was stored: %r" % body)
        self.reg.stop()

    def test_clone_detection_survives_a_restart(self):
        # Recent sightings are kept in memory and read back from the log at start-up:
        # a check at one station, a restart, then the same code at another station
        # within the window must still be CLONE_SUSPECTED.
        station2 = self.reg.token("station", "ST-D2")
        status, answer = self.reg.request(
            "POST", "/v1/stations", token=self.admin,
            body={"id": "ST-D2", "company_id": "CO-D", "name": "D2", "district": "Suiyang"})
        self.assertEqual(status, 201, answer)
        code = "DCLONE0001"
        status, answer = self.reg.request("POST", "/v1/cylinders", body=self.cylinder(code),
                                          token=self.company)
        self.assertEqual(status, 201, answer)
        status, first = self.reg.request(
            "POST", "/v1/fill-checks", token=self.station,
            body={"station_id": "ST-D1", "operator_id": "OP-D", "code": code})
        self.assertEqual((status, first["decision"]), (200, "allow"), first)
        # An unregistered code is no sighting, before a restart or after it.
        black = "DBLACK0001"
        status, answer = self.reg.request(
            "POST", "/v1/fill-checks", token=self.station,
            body={"station_id": "ST-D1", "operator_id": "OP-D", "code": black})
        self.assertEqual([r["code"] for r in answer["reasons"]], ["UNKNOWN_CODE"], answer)
        self.reg.stop()
        self.reg.start()
        status, answer = self.reg.request(
            "POST", "/v1/fill-checks", token=station2,
            body={"station_id": "ST-D2", "operator_id": "OP-D", "code": black})
        self.assertEqual([r["code"] for r in answer["reasons"]], ["UNKNOWN_CODE"],
                         "an unregistered code's check is no sighting after a restart: %r"
                         % answer)
        status, second = self.reg.request(
            "POST", "/v1/fill-checks", token=station2,
            body={"station_id": "ST-D2", "operator_id": "OP-D", "code": code})
        self.assertEqual(status, 200, second)
        self.assertEqual([r["code"] for r in second["reasons"]], ["CLONE_SUSPECTED"],
                         "the check before the restart must still count: %r" % second)
        self.reg.stop()
        self.assert_verify_ok()


if __name__ == "__main__":
    BINARY = take_binary_argument()
    unittest.main(verbosity=2)
