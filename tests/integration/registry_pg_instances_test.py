"""Several pingma-registry processes on one PostgreSQL database, and the database
going away under a serving registry (standard library only; the cluster is
started by pg_cluster.py and removed after).

    python3 -B registry_pg_instances_test.py /path/to/pingma-registry

- Three registries on one database, under concurrent load from threads that send
  to all three: the same fill (one event_id) posted through each is stored once;
  the same code registered through each is registered once; every fill and check
  acknowledged is in the log exactly once, and the log is one chain that verifies.
- One full cylinder delivered through three registries at once goes to one customer:
  the other two handovers are refused as not filled since its delivery.
- What one registry learns from the log that another wrote: a cylinder scrapped
  through B is refused at A at once (A's cache of it is not kept), a station
  locked through B is blocked at A at once and allowed again once unlocked through
  C, and a check at B within the clone window of a check at A is CLONE_SUSPECTED.
- The database stopped under a serving registry: requests are answered 503 with a
  message, the process keeps running, and once the database is back the same
  registry serves writes and reads again.
- The database slow (the chain's head row held by another session): a write is
  answered 503 after the lock timeout instead of hanging, reads go on, and writes are
  served again once the lock is free.
"""

import json
import subprocess
import threading
import time
import unittest
import uuid

from pg_cluster import PgCluster
from registry_harness import (Registry, add_years, id_number, iso, now_rfc3339,
                              take_binary_argument, today_shanghai, year_month)

BINARY = None  # set in __main__
INSTANCES = 3
CUSTOMERS = ["CU-%d" % n for n in range(INSTANCES)]


def cylinder(code, today):
    return {"code": code, "model": "YSP35.5", "phase": "gas",
            "manufacturer": "Hebei Example Cylinder Co.", "serial": "S-" + code,
            "manufactured": year_month(add_years(today, -1)), "tare_kg": 16.4,
            "allowed_fill_kg": 14.9, "design_life_years": 8,
            "next_inspection_due": iso(add_years(today, 3))}


def fill_body(code, station, check_id):
    return {"event_id": str(uuid.uuid4()), "check_id": check_id, "code": code,
            "station_id": station,
            "operator_id": "OP-M", "scale_id": "S1", "started_at": now_rfc3339(-60),
            "ended_at": now_rfc3339(), "tare_kg": 16.4, "gross_before_kg": 16.9,
            "gross_after_kg": 31.4, "net_kg": 14.5, "residual_kg": 0.5, "result": "ok",
            "post_checks": {"leak_test": "pass", "reweigh": "pass"}}


class PgInstancesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.today = today_shanghai()
        cls.pg = PgCluster()
        cls.pg.start()
        cls.regs = []
        # Run even when the set-up below fails (tearDownClass would not be).
        cls.addClassCleanup(cls.stop_all)
        cls.conninfo = cls.pg.create_database("shared")
        cls.regs = [Registry(BINARY, db_path=cls.conninfo) for _ in range(INSTANCES)]
        first = cls.regs[0]
        cls.admin = first.token("admin", "root")
        cls.company = first.token("company", "CO-M")
        cls.inspector = first.token("inspector", "INSP-M")
        cls.stations = {s: first.token("station", s) for s in ("ST-M1", "ST-M2")}
        cls.courier = first.token("courier", "CR-M")
        cls.regulator = first.token("regulator", "SAMR-M")
        for reg in cls.regs:
            reg.start()
        far = iso(add_years(cls.today, 1))
        for path, body in (
                ("/v1/companies", {"id": "CO-M", "name": "Many Gas",
                                   "filling_license": {"number": "TS-M", "valid_until": far}}),
                ("/v1/stations", {"id": "ST-M1", "company_id": "CO-M", "name": "M1",
                                  "district": "Suiyang"}),
                ("/v1/stations", {"id": "ST-M2", "company_id": "CO-M", "name": "M2",
                                  "district": "Liangyuan"}),
                ("/v1/operators", {"id": "OP-M", "company_id": "CO-M", "name": "Op M",
                                   "certificate": {"number": "C-M", "valid_until": far}}),
                ("/v1/vehicles", {"id": "V-M", "company_id": "CO-M", "plate": "豫N11111"}),
                ("/v1/couriers", {"id": "CR-M", "company_id": "CO-M", "name": "Courier M",
                                  "vehicle": "V-M", "zones": ["Suiyang"],
                                  "certificate": {"number": "Q-M", "valid_until": far}})) + tuple(
                ("/v1/customers", {"id": cid, "company_id": "CO-M", "name": "张三",
                                   "phone": "1398765%04d" % n,
                                   "id_number": id_number("110105194912310%02d" % n),
                                   "address": "建设路%d号" % n, "district": "Suiyang",
                                   "kind": "household",
                                   "site": {"basement": False, "semi_basement": False,
                                            "cylinder_room": False}})
                for n, cid in enumerate(CUSTOMERS)):
            status, answer = first.request("POST", path, body=body, token=cls.admin)
            assert status == 201, "set-up POST %s: %s %r" % (path, status, answer)

    @classmethod
    def stop_all(cls):
        for reg in cls.regs:
            if reg.proc is not None and reg.proc.poll() is None:
                reg.stop()
            reg.cleanup()
        cls.pg.stop()

    def register(self, code, reg=None):
        status, answer = (reg or self.regs[0]).request(
            "POST", "/v1/cylinders", body=cylinder(code, self.today), token=self.company)
        self.assertEqual(status, 201, "register %s: %s %r" % (code, status, answer))

    def check(self, reg, station, code):
        status, answer = reg.request("POST", "/v1/fill-checks", token=self.stations[station],
                                     body={"station_id": station, "operator_id": "OP-M",
                                           "code": code})
        self.assertEqual(status, 200, "check %s at %s: %s %r" % (code, station, status, answer))
        return answer

    def on_all_at_once(self, send):
        """Calls send(reg) on every registry at the same moment; the answers."""
        answers = [None] * INSTANCES
        start = threading.Barrier(INSTANCES)

        def run(i):
            start.wait()
            answers[i] = send(self.regs[i])

        threads = [threading.Thread(target=run, args=(i,)) for i in range(INSTANCES)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        return answers

    def events(self, where):
        return int(self.pg.psql("select count(*) from events where " + where, db="shared"))

    def test_1_one_code_registered_through_three_at_once_is_registered_once(self):
        for n in range(5):
            code = "MR%05d" % n
            answers = self.on_all_at_once(lambda reg: reg.request(
                "POST", "/v1/cylinders", body=cylinder(code, self.today), token=self.company))
            statuses = sorted(status for status, _ in answers)
            self.assertEqual(statuses, [201] + [409] * (INSTANCES - 1), answers)
            self.assertEqual(self.events("type = 'registered' and code = '%s'" % code), 1)

    def test_2_one_fill_posted_through_three_at_once_is_stored_once(self):
        code = "MF00001"
        self.register(code)
        for n in range(5):
            allowed = self.check(self.regs[n % INSTANCES], "ST-M1", code)
            self.assertEqual(allowed["decision"], "allow", allowed)
            body = fill_body(code, "ST-M1", allowed["check_id"])
            answers = self.on_all_at_once(lambda reg: reg.request(
                "POST", "/v1/fills", body=body, token=self.stations["ST-M1"]))
            statuses = sorted(status for status, _ in answers)
            self.assertEqual(statuses, [200] * (INSTANCES - 1) + [201], answers)
            duplicates = [a for status, a in answers if status == 200]
            self.assertTrue(all(a.get("duplicate") is True for a in duplicates), answers)
            self.assertEqual(int(self.pg.psql(
                "select count(*) from fills where event_id = '%s'" % body["event_id"],
                db="shared")), 1)

    def test_3_concurrent_load_on_the_same_cylinders_is_one_chain(self):
        codes = ["ML%05d" % i for i in range(20)]
        for code in codes:
            self.register(code)
        acknowledged = {"checks": 0, "fills": []}
        lock = threading.Lock()
        errors = []

        def worker(i):
            reg = self.regs[i % INSTANCES]
            station = "ST-M1" if i % 2 else "ST-M2"
            try:
                for k in range(30):
                    code = codes[(i * 7 + k) % len(codes)]
                    status, answer = reg.request("POST", "/v1/fill-checks",
                                                 token=self.stations[station],
                                                 body={"station_id": station,
                                                       "operator_id": "OP-M", "code": code})
                    if status != 200:
                        errors.append(("check", status, answer))
                        continue
                    with lock:
                        acknowledged["checks"] += 1
                    if answer["decision"] != "allow":
                        continue  # the same code at the other station: a clone suspected
                    body = fill_body(code, station, answer["check_id"])
                    status, _ = reg.request("POST", "/v1/fills", body=body,
                                            token=self.stations[station])
                    if status == 201:
                        with lock:
                            acknowledged["fills"].append(body["event_id"])
                    else:
                        errors.append(("fill", status))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

        def counted():  # the day's checks in the regulator's statistics, through each
            day = iso(today_shanghai())
            totals = []
            for reg in self.regs:
                status, stats = reg.request("GET", "/v1/stats/fill-checks?from=%s&to=%s"
                                            % (day, day), token=self.regulator)
                self.assertEqual(status, 200, stats)
                totals.append(stats["total"]["checks"])
            return totals

        counted_before = counted()
        before_checks = self.events("type = 'fill_check'")
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        self.assertEqual(errors, [])
        self.assertEqual(self.events("type = 'fill_check'") - before_checks,
                         acknowledged["checks"])
        # Counted once each, in a row per registry's writer, summed when read.
        self.assertEqual([after - before for before, after in zip(counted_before, counted())],
                         [acknowledged["checks"]] * INSTANCES)
        writers = self.pg.psql("select count(distinct shard) from check_days where "
                               "station_id in ('ST-M1', 'ST-M2')", db="shared")
        self.assertGreaterEqual(int(writers), 2)
        stored = self.pg.psql("select coalesce(json_agg(event_id), '[]') from fills where "
                              "code like 'ML%'", db="shared")
        self.assertEqual(sorted(json.loads(stored)), sorted(acknowledged["fills"]))
        # One log: every event numbered once (in blocks, with gaps), and it
        # verifies end to end.
        count, first, last, distinct = self.pg.psql(
            "select count(*), min(seq), max(seq), count(distinct seq) from events",
            db="shared").split("|")
        self.assertEqual((int(first), int(distinct)), (1, int(count)))
        r = self.regs[0].verify()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("ok: %s events, chain intact; " % count), r.stdout)

    def test_4_a_scrap_through_one_is_refused_at_another_at_once(self):
        code = "MS00001"
        self.register(code)
        a, b = self.regs[0], self.regs[1]
        self.assertEqual(self.check(a, "ST-M1", code)["decision"], "allow")  # cached at A
        status, answer = b.request("POST", "/v1/inspections", token=self.inspector,
                                   body={"code": code, "date": iso(self.today),
                                         "result": "fail", "report_no": "RPT-" + code})
        self.assertIn(status, (200, 201), answer)
        answer = self.check(a, "ST-M1", code)
        self.assertEqual(answer["decision"], "block", answer)

    def test_4b_a_station_locked_through_one_is_blocked_at_another_at_once(self):
        code = "MK00001"
        self.register(code)
        a, b, c = self.regs
        self.assertEqual(self.check(a, "ST-M2", code)["decision"], "allow")  # facts cached at A
        for reg, action, decision in ((b, "lock", "block"), (c, "unlock", "allow")):
            status, answer = reg.request("POST", "/v1/stations/ST-M2/" + action,
                                         token=self.regulator, body={"reason": "test"})
            self.assertEqual(status, 200, answer)
            answer = self.check(a, "ST-M2", code)
            self.assertEqual(answer["decision"], decision, answer)
            if decision == "block":
                self.assertIn("STATION_LICENSE_INVALID",
                              [r.get("code") for r in answer["reasons"]], answer)

    def test_5_clone_detection_sees_checks_made_through_another(self):
        code = "MC00001"
        self.register(code)
        a, b = self.regs[0], self.regs[1]
        self.assertEqual(self.check(a, "ST-M1", code)["decision"], "allow")
        answer = self.check(b, "ST-M2", code)
        reasons = [r.get("code") if isinstance(r, dict) else r for r in answer["reasons"]]
        self.assertIn("CLONE_SUSPECTED", reasons, answer)


    def test_6_one_full_cylinder_delivered_through_three_at_once_goes_to_one_customer(self):
        code = "MD00001"
        self.register(code)
        allowed = self.check(self.regs[0], "ST-M1", code)
        self.assertEqual(allowed["decision"], "allow", allowed)
        status, answer = self.regs[0].request("POST", "/v1/fills",
                                              body=fill_body(code, "ST-M1", allowed["check_id"]),
                                              token=self.stations["ST-M1"])
        self.assertEqual(status, 201, answer)
        ok_check = {item: "pass" for item in (
            "hose_length", "hose_joints", "hose_through_wall", "regulator_standard",
            "regulator_age", "gas_alarm", "flame_failure_device", "ventilation",
            "cylinders_apart")}
        bodies = {reg.port: {"event_id": str(uuid.uuid4()), "code": code, "customer_id": cid,
                             "vehicle": "V-M", "direction": "deliver", "safety_check": ok_check}
                  for reg, cid in zip(self.regs, CUSTOMERS)}
        answers = self.on_all_at_once(lambda reg: reg.request(
            "POST", "/v1/handovers", body=bodies[reg.port], token=self.courier))
        self.assertEqual([status for status, _ in answers], [201] * INSTANCES, answers)
        decisions = sorted(a["decision"] for _, a in answers)
        self.assertEqual(decisions, ["allow"] + ["block"] * (INSTANCES - 1), answers)
        holder = [a["custody"]["id"] for _, a in answers if a["decision"] == "allow"][0]
        self.assertEqual(self.pg.psql(
            "select holder_kind || ' ' || holder_id from whereabouts where code = '%s'" % code,
            db="shared"), "customer " + holder)


class DatabaseGoneTest(unittest.TestCase):
    def test_stopped_and_back(self):
        today = today_shanghai()
        pg = PgCluster()
        pg.start()
        self.addCleanup(pg.stop)
        conninfo = pg.create_database("gone")
        reg = Registry(BINARY, db_path=conninfo)
        self.addCleanup(reg.cleanup)
        admin = reg.token("admin", "root")
        company = reg.token("company", "CO-G")
        reg.start()
        far = iso(add_years(today, 1))
        status, answer = reg.request("POST", "/v1/companies", token=admin, body={
            "id": "CO-G", "name": "Gone Gas",
            "filling_license": {"number": "TS-G", "valid_until": far}})
        self.assertEqual(status, 201, answer)
        status, answer = reg.request("POST", "/v1/cylinders", token=company,
                                     body=cylinder("MG00001", today))
        self.assertEqual(status, 201, answer)

        pg.stop_server()
        for code in ("MG00002", "MG00003"):
            status, answer = reg.request("POST", "/v1/cylinders", token=company,
                                         body=cylinder(code, today))
            self.assertEqual(status, 503, answer)
            self.assertIn("PostgreSQL", answer["error"]["message"], answer)
        status, answer = reg.request("GET", "/v1/cylinders/MG00001", token=company)
        self.assertEqual(status, 503, answer)
        self.assertIsNone(reg.proc.poll(), "the registry exited with the database gone")

        pg.restart()
        # The first request after the database is back may still meet a connection
        # that died with it; the next ones are served.
        for _ in range(3):
            status, answer = reg.request("POST", "/v1/cylinders", token=company,
                                         body=cylinder("MG00002", today))
            if status == 201:
                break
            self.assertEqual(status, 503, answer)
        self.assertEqual(status, 201, answer)
        got = None
        for _ in range(3):
            got, answer = reg.request("GET", "/v1/cylinders/MG00002", token=company)
            if got == 200:
                break
        self.assertEqual(got, 200, answer)
        self.assertEqual(answer["code"], "MG00002")
        # Nothing refused while the database was gone was stored.
        status, _ = reg.request("GET", "/v1/cylinders/MG00003", token=company)
        self.assertEqual(status, 404)
        reg.stop()
        r = reg.verify()
        self.assertEqual(r.returncode, 0, r.stderr)


class SlowDatabaseTest(unittest.TestCase):
    def test_a_held_lock_gives_503_not_a_hung_request(self):
        """The cylinders table held by another session against writes (as a stuck
        transaction or a database too slow to answer would). Held for less than the
        lock timeout (here
        2 s, set in the connection string; 15 s by default) a write waits and is
        served; held for longer it is answered 503 at the timeout, while reads go on;
        once the lock is free, writes are served again."""
        today = today_shanghai()
        pg = PgCluster()
        pg.start()
        self.addCleanup(pg.stop)
        conninfo = pg.create_database("slow") + "?options=-c%20lock_timeout%3D2000"
        reg = Registry(BINARY, db_path=conninfo)
        self.addCleanup(reg.cleanup)
        admin = reg.token("admin", "root")
        company = reg.token("company", "CO-S")
        reg.start()
        status, answer = reg.request("POST", "/v1/companies", token=admin, body={
            "id": "CO-S", "name": "Slow Gas",
            "filling_license": {"number": "TS-S", "valid_until": iso(add_years(today, 1))}})
        self.assertEqual(status, 201, answer)
        status, answer = reg.request("POST", "/v1/cylinders", token=company,
                                     body=cylinder("SL00001", today))
        self.assertEqual(status, 201, answer)

        def hold_head(seconds):
            holder = subprocess.Popen(
                ["psql", "-X", "-q", "-d", pg.conninfo("slow"), "-c",
                 "BEGIN; LOCK TABLE cylinders IN EXCLUSIVE MODE; SELECT pg_sleep(%d); COMMIT;"
                 % seconds], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.addCleanup(holder.kill)
            for _ in range(100):  # until the holder sleeps with the table locked
                if pg.psql("select count(*) from pg_stat_activity where query like "
                           "'%%pg_sleep(%d)%%' and state = 'active' and pid <> "
                           "pg_backend_pid()" % seconds, db="slow") == "1":
                    return holder
                time.sleep(0.1)
            self.fail("the lock holder did not start")

        # Held for less than the timeout: the write waits for it and is served.
        short = hold_head(1)
        status, answer = reg.request("POST", "/v1/cylinders", token=company,
                                     body=cylinder("SL00003", today))
        self.assertEqual(status, 201, "a write behind a lock held 1 s of 2: %r" % answer)
        self.assertEqual(short.wait(60), 0)

        # Held for longer: the write is given up at the timeout.
        holder = hold_head(8)
        status, answer = reg.request("POST", "/v1/cylinders", token=company,
                                     body=cylinder("SL00002", today))
        self.assertEqual(status, 503, answer)
        self.assertIn("lock", answer["error"]["message"], answer)
        status, answer = reg.request("GET", "/v1/cylinders/SL00001", token=company)
        self.assertEqual(status, 200, "a read while the lock is held: %r" % answer)
        self.assertEqual(holder.wait(60), 0)
        status, answer = reg.request("POST", "/v1/cylinders", token=company,
                                     body=cylinder("SL00002", today))
        self.assertEqual(status, 201, answer)
        self.assertIsNone(reg.proc.poll())


if __name__ == "__main__":
    BINARY = take_binary_argument()
    unittest.main(verbosity=2)
