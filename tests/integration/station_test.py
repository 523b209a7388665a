"""Process-level tests of pingma-station: the real registry, real pingma-scale-sim
scales over Modbus TCP, and the station agent, all started here on loopback.

Run: /usr/bin/python3 station_test.py BUILD_DIR [unittest args]

What the scale simulator logs of every interlock write is the proof: a blocked
cylinder never gets an interlock=1 write, and after any (re)connect the first write
is interlock=0.
"""

import ctypes
import datetime
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "tools", "demo"))
from line_processes import (Registry, ScaleSim, Station, tcp_listen_scanner,  # noqa: E402
                            tcp_scale)

BUILD = None  # set in __main__
REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
TODAY = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=8)).date()
LEGAL = ["HB0100000001", "HB0100000011", "HB0100000012", "HB0100000013", "HB0100000014",
         "HB0100000015", "HB0100000016", "HB0100000017", "HB0100000018"]
TARE = 16.4


def binary(*parts):
    return os.path.join(BUILD, *parts)


class Line:
    """A registry with a small fleet, one scale simulator and a one-position station."""

    def __init__(self, flow_kg_s=5.0, sim_extra=(), scale_profile="pingma-fill-v1", tls=None):
        self.work = tempfile.mkdtemp(prefix="pingma-station-test-")
        self.reg = Registry(binary("registry", "pingma-registry"),
                            os.path.join(self.work, "registry.db"), tls=tls)
        self.admin = self.reg.token("admin", "root")
        self.company = self.reg.token("company", "HB-GAS")
        self.station_token = self.reg.token("station", "ST-01")
        self.inspector = self.reg.token("inspector", "INSP-1")
        self.reg.start()
        year = datetime.timedelta(days=365)
        self.reg.must("POST", "/v1/companies", self.admin, {
            "id": "HB-GAS", "name": "河北示例燃气",
            "filling_license": {"number": "L1", "valid_until": str(TODAY + 2 * year)}})
        self.reg.must("POST", "/v1/stations", self.company, {
            "id": "ST-01", "company_id": "HB-GAS", "name": "一号站", "district": "桥西区"})
        self.reg.must("POST", "/v1/operators", self.company, {
            "id": "OP-7", "company_id": "HB-GAS", "name": "王师傅",
            "certificate": {"number": "C7", "valid_until": str(TODAY + year)}})
        base = {"model": "YSP35.5", "manufacturer": "河北示例钢瓶厂", "manufactured": "2023-01",
                "tare_kg": TARE, "last_inspection": "2023-01-15"}
        fleet = [dict(base, code=c) for c in LEGAL]
        fleet.append(dict(base, code="HB0100000002",
                          next_inspection_due=str(TODAY - datetime.timedelta(days=1))))
        fleet.append(dict(base, code="HB0100000003", model="YSP118-II", tare_kg=48.0))
        self.reg.must("POST", "/v1/cylinders/batch", self.company, {"cylinders": fleet})
        self.sim = ScaleSim(binary("tools", "scale_sim", "pingma-scale-sim"), flow_kg_s,
                            sim_extra)
        self.station = Station(binary("station", "pingma-station"),
                               os.path.join(self.work, "station"), "ST-01", self.reg.url,
                               self.station_token,
                               [("P1", "OP-7", tcp_listen_scanner(),
                                 tcp_scale(self.sim, scale_profile))],
                               check_deadline_ms=1000, sync_interval_s=3600)

    def start_station(self, synced=True):
        self.station.start()
        if synced:
            self.station.wait_for(lambda e: e["event"] == "replica_synced", what="a replica sync")
        return self.station

    def close(self):
        for stop in (self.station.stop, self.sim.stop, self.reg.stop):
            try:
                stop()
            except Exception:  # noqa: BLE001 - best effort: stop the rest too
                pass
        shutil.rmtree(self.work, ignore_errors=True)

    def fill(self, code, content=0.5):
        """Places a cylinder, scans it, and returns the decision and (if any) the fill."""
        self.sim.control(f"place {TARE} {content}")
        self.station.scan("P1", code)
        decision = self.station.wait_for(
            lambda e: e["event"] in ("decision", "scan_refused") and e.get("raw") == code,
            what=f"a decision on {code}")
        finished = None
        if decision.get("decision") == "allow":
            finished = self.station.wait_for(lambda e: e["event"] == "fill_finished",
                                             timeout=60, what=f"the fill of {code}")
        self.sim.clear_platform()
        return decision, finished

    def fills_at_registry(self, code):
        history = self.reg.must("GET", f"/v1/cylinders/{code}/history?limit=1000", self.admin)
        return [e for e in history["events"] if e["type"] == "fill"]

    def offline_checks_at_registry(self, code):
        history = self.reg.must("GET", f"/v1/cylinders/{code}/history?limit=1000", self.admin)
        return [e for e in history["events"] if e["type"] == "fill_check" and e.get("offline")]

    def violations_at_registry(self, code):
        history = self.reg.must("GET", f"/v1/cylinders/{code}/history?limit=1000", self.admin)
        return [e for e in history["events"] if e["type"] == "violation"]

    def wait_drained(self, timeout=60):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            outbox = self.station.status()["outbox"]
            if (outbox["pending"] == 0 and outbox["open_fills"] == 0
                    and outbox["checks_pending"] == 0):
                return outbox
            time.sleep(0.1)
        raise AssertionError(f"the outbox did not drain: {self.station.status()['outbox']}")


def unlocks(writes):
    return [w for w in writes if w["value"] == 1]


class Online(unittest.TestCase):
    def setUp(self):
        self.line = Line()
        self.line.start_station()

    def tearDown(self):
        self.line.close()

    def test_a_blocked_cylinder_never_gets_an_unlock(self):
        for code, reason in (("HB0100000002", "INSPECTION_OVERDUE"),
                             ("HB0100000003", "DUAL_PHASE_BANNED"),
                             ("HB0199999999", "UNKNOWN_CODE")):
            decision, finished = self.line.fill(code)
            self.assertEqual(decision["decision"], "block", decision)
            self.assertIn(reason, [r["code"] for r in decision["reasons"]])
            self.assertFalse(decision["offline"])
            self.assertIsNone(finished)
            # The check's parts as libcurl saw them lie within the check's own time.
            t = decision["timing_ms"]
            self.assertGreater(t["check_answered"], 0, t)
            self.assertGreaterEqual(t["check_sending"], 0, t)
            self.assertLessEqual(t["check_sending"] + t["check_answered"], t["check"] + 0.002, t)
        self.assertEqual(unlocks(self.line.sim.interlock_writes()), [])
        self.assertEqual(self.line.sim.status()["fills"], 0)

    def test_an_allowed_fill_reaches_the_registry_within_the_limits(self):
        decision, finished = self.line.fill("https://pingma.example/c/hb0100000001")
        self.assertEqual(decision["decision"], "allow")
        record = finished["record"]
        self.assertEqual(record["result"], "ok")
        self.assertTrue(14.1 <= record["net_kg"] <= 14.9, record)
        self.assertEqual(record["residual_kg"], 0.5)
        upload = self.line.station.wait_for(lambda e: e["event"] == "upload")
        self.assertEqual(upload["event_id"], record["event_id"])
        [fill] = self.line.fills_at_registry("HB0100000001")
        self.assertEqual(fill["id"], record["event_id"])
        self.assertEqual(fill["net_kg"], record["net_kg"])
        self.assertEqual(fill["check_id"], decision["check_id"])
        self.assertEqual(len(unlocks(self.line.sim.interlock_writes())), 1)
        status = self.line.station.status()
        self.assertTrue(status["online"])
        self.assertEqual(status["positions"][0]["fills"], 1)
        self.assertEqual(status["positions"][0]["last_decision"]["decision"], "allow")

    def test_an_overfill_is_recorded_as_one(self):
        self.line.sim.control("fault overshoot 0.8")
        _, finished = self.line.fill("HB0100000011")
        self.assertEqual(finished["record"]["result"], "overfill")
        self.line.station.wait_for(lambda e: e["event"] == "upload")
        [fill] = self.line.fills_at_registry("HB0100000011")
        self.assertEqual(fill["result"], "overfill")
        self.assertEqual(self.line.violations_at_registry("HB0100000011"), [])

    def test_garbage_from_the_scanner_is_dropped_and_the_station_goes_on(self):
        host, port = self.line.station.scanner_address("P1").rsplit(":", 1)
        rng = random.Random(7)
        with socket.create_connection((host, int(port))) as s:
            s.sendall(bytes(rng.randrange(256) for _ in range(20000)))
            s.sendall(b"\n" + b"x" * 100000 + b"\n\x00\x01\n\xff\xfe\n")
        self.line.station.wait_for(lambda e: e["event"] == "scanner" and e["level"] == "warning",
                                   what="a scanner warning")
        decision, _ = self.line.fill("HB0100000012")
        self.assertEqual(decision["decision"], "allow")

    def test_a_badge_changes_the_operator(self):
        self.line.station.scan("P1", "OP:OP-9")
        self.line.station.wait_for(lambda e: e["event"] == "operator")
        decision, _ = self.line.fill("HB0100000013")
        self.assertEqual(decision["decision"], "block")  # OP-9 is no operator of the company
        self.assertIn("OPERATOR_NOT_CERTIFIED", [r["code"] for r in decision["reasons"]])
        self.assertEqual(unlocks(self.line.sim.interlock_writes()), [])


def metric_samples(text):
    """{(name, ((label, value), ...)): value} of Prometheus text."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$', line)
        assert m, "not a sample: %r" % line
        labels = tuple(sorted(re.findall(r'([a-z_]+)="([^"]*)"', m.group(2) or "")))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples


class Metrics(unittest.TestCase):
    """GET /metrics on the station's status_listen: Prometheus's text format (promtool),
    the fills by result, the refusals, the outbox, the replica, and the scale driver's
    operations, errors and times."""

    def setUp(self):
        self.line = Line()
        self.line.start_station()

    def tearDown(self):
        self.line.close()

    def scrape(self):
        with urllib.request.urlopen(self.line.station.screen_url.rstrip("/") + "/metrics",
                                    timeout=10) as r:
            self.assertEqual(r.headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
            return r.read().decode("utf-8")

    def test_fills_refusals_outbox_and_the_scale(self):
        self.assertEqual(self.line.fill("HB0100000002")[0]["decision"], "block")
        self.assertEqual(self.line.fill(LEGAL[0])[1]["record"]["result"], "ok")
        self.line.sim.control("fault overshoot 0.8")
        self.assertEqual(self.line.fill(LEGAL[1])[1]["record"]["result"], "overfill")
        self.line.sim.control("clear")
        self.line.wait_drained()
        text = self.scrape()
        promtool = shutil.which("promtool")
        self.assertIsNotNone(promtool, "promtool: Debian's prometheus (tools/quickstart.sh)")
        r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=60, check=False)
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))
        m = metric_samples(text)
        p1 = (("position", "P1"),)
        self.assertEqual(m[("pingma_station_online", ())], 1)
        self.assertEqual(m[("pingma_station_positions", ())], 1)
        self.assertEqual(m[("pingma_station_scale_connected", p1)], 1)
        for result, n in (("ok", 1), ("overfill", 1), ("underfill", 0), ("interrupted", 0)):
            self.assertEqual(m[("pingma_station_fills_total",
                                (("position", "P1"), ("result", result)))], n, result)
        self.assertEqual(m[("pingma_station_refused_scans_total", p1)], 1)
        outbox = {dict(labels)["kind"] + " " + dict(labels)["state"]: v
                  for (name, labels), v in m.items() if name == "pingma_station_outbox_records"}
        self.assertEqual(outbox["fill pending"], 0)
        self.assertEqual(outbox["fill uploaded"], 2)
        self.assertEqual(m[("pingma_station_outbox_oldest_pending_seconds", ())], 0)
        self.assertEqual(m[("pingma_station_replica_ready", ())], 1)
        self.assertEqual(m[("pingma_station_replica_cylinders", ())], len(LEGAL) + 2)
        for op in ("connect", "read", "interlock", "command", "cutoff"):
            labels = (("operation", op), ("position", "P1"))
            calls = m[("pingma_station_scale_operations_total", labels)]
            self.assertGreater(calls, 0, op)
            self.assertEqual(m[("pingma_station_scale_errors_total", labels)], 0, op)
            self.assertEqual(m[("pingma_station_scale_operation_seconds_count", labels)], calls)
        # Two fills: unlocked twice, and locked at the connect and after each fill.
        self.assertGreaterEqual(m[("pingma_station_scale_operations_total",
                                   (("operation", "interlock"), ("position", "P1")))], 4)
        # The scale gone: its reads fail, and it counts as not connected.
        self.line.sim.stop()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            m = metric_samples(self.scrape())
            if m[("pingma_station_scale_connected", p1)] == 0:
                break
            time.sleep(0.1)
        self.assertEqual(m[("pingma_station_scale_connected", p1)], 0)
        failed = sum(v for (name, labels), v in m.items()
                     if name == "pingma_station_scale_errors_total")
        self.assertGreater(failed, 0)


class Faults(unittest.TestCase):
    def tearDown(self):
        self.line.close()

    def test_the_scale_lost_mid_fill_is_interrupted_and_locked_first_on_reconnect(self):
        self.line = Line(flow_kg_s=0.5)
        self.line.start_station()
        self.line.sim.control(f"place {TARE} 0.5")
        self.line.station.scan("P1", "HB0100000014")
        self.line.station.wait_for(lambda e: e["event"] == "fill_started")
        time.sleep(1.0)
        before = len(self.line.sim.interlock_writes())
        self.line.sim.control("fault disconnect")
        finished = self.line.station.wait_for(lambda e: e["event"] == "fill_finished")
        self.assertEqual(finished["record"]["result"], "interrupted")
        self.line.sim.control("clear")
        self.line.station.wait_for(lambda e: e["event"] == "scale_connected", timeout=30)
        writes = self.line.sim.interlock_writes()[before:]
        self.assertTrue(writes, "no interlock write after the reconnect")
        self.assertEqual(writes[0]["value"], 0, writes)
        self.line.station.wait_for(lambda e: e["event"] == "upload", seen=True)
        [fill] = self.line.fills_at_registry("HB0100000014")
        self.assertEqual(fill["result"], "interrupted")

    def test_a_frozen_indicator_stops_the_fill(self):
        self.line = Line(flow_kg_s=0.5)
        self.line.start_station()
        self.line.sim.control(f"place {TARE} 0.5")
        self.line.station.scan("P1", "HB0100000015")
        self.line.station.wait_for(lambda e: e["event"] == "fill_started")
        self.line.sim.control("fault stuck")
        finished = self.line.station.wait_for(lambda e: e["event"] == "fill_finished")
        self.assertEqual(finished["record"]["result"], "interrupted")
        self.assertIn("heartbeat", finished["record"]["interruption"])
        self.assertEqual(self.line.sim.status()["bits"]["valve_open"], False)

    def test_nan_weights_and_modbus_exceptions_are_refused_not_filled(self):
        self.line = Line()
        self.line.start_station()
        self.line.sim.control("fault nan")
        decision, _ = self.line.fill("HB0100000016")
        self.assertEqual(decision["event"], "scan_refused")
        self.line.sim.control("clear")
        decision, _ = self.line.fill("HB0100000016")
        self.assertEqual(decision["decision"], "allow")
        self.line.close()
        # A map whose heartbeat sits where the simulator answers exception 2.
        profile = os.path.join(tempfile.mkdtemp(prefix="pingma-profile-"), "bad.toml")
        with open(os.path.join(REPO, "station", "profiles", "pingma-fill-v1.toml")) as f:
            text = f.read()
        text = text.replace('kind = "holding"\naddress = 7\n', 'kind = "holding"\naddress = 40\n')
        self.assertIn("address = 40", text)
        with open(profile, "w") as f:
            f.write(text)
        self.line = Line(scale_profile=profile)
        self.line.start_station()
        decision, _ = self.line.fill("HB0100000017")
        self.assertEqual(decision["event"], "scan_refused")
        errors = [e for e in self.line.station.events if e["event"] == "scale_error"]
        self.assertTrue(any("address" in e["error"].lower() for e in errors), errors)
        self.assertEqual(unlocks(self.line.sim.interlock_writes()), [])
        self.assertTrue(self.line.station.status()["station_id"])  # still serving


class Offline(unittest.TestCase):
    def setUp(self):
        self.line = Line()
        self.line.start_station()

    def tearDown(self):
        self.line.close()

    def test_fills_go_on_offline_and_are_stored_once_when_the_registry_is_back(self):
        line = self.line
        # A failed inspection the replica has not seen: the station's stale allow
        # becomes a violation at the registry.
        line.reg.must("POST", "/v1/inspections", line.inspector, {
            "code": "HB0100000012", "date": str(TODAY), "result": "fail", "report_no": "JY-1"})
        self.assertEqual(line.reg.stop(), 0)
        records = []
        for code in ("HB0100000011", "HB0100000012"):
            decision, finished = line.fill(code)
            self.assertEqual(decision["decision"], "allow", decision)
            self.assertTrue(decision["offline"])
            records.append(finished["record"])
        blocked, _ = line.fill("HB0100000002")
        self.assertEqual(blocked["decision"], "block")
        self.assertTrue(blocked["offline"])
        self.assertEqual((blocked["timing_ms"]["check_sending"],
                          blocked["timing_ms"]["check_answered"]), (0, 0))
        unknown, _ = line.fill("HB0199999999")
        self.assertEqual([r["code"] for r in unknown["reasons"]], ["UNKNOWN_CODE"])
        status = line.station.status()
        self.assertFalse(status["online"])
        self.assertEqual(status["outbox"]["pending"], 2)

        line.reg.start()  # the same port
        line.wait_drained()
        for record in records:
            [fill] = line.fills_at_registry(record["code"])
            self.assertEqual(fill["id"], record["event_id"])
            self.assertTrue(fill["offline"])
        self.assertEqual(line.violations_at_registry("HB0100000011"), [])
        # One incident, one violation: the offline check's, which the fill made on it
        # names (the fill's own would say the same).
        [violation] = line.violations_at_registry("HB0100000012")
        self.assertEqual(violation["registry_decision"], "block")
        self.assertIn("INSPECTION_FAILED", violation["reasons"])
        [fill] = line.fills_at_registry("HB0100000012")
        self.assertEqual(fill["offline_decision"]["check_id"], violation["station_check_id"])
        self.assertEqual(unlocks(line.sim.interlock_writes())[2:], [])  # only the two fills

        # Every check decided offline, allowed or refused, is at the registry once,
        # with the station's decision and the registry's own as of the check.
        self.assertEqual(line.station.status()["outbox"]["checks_uploaded"], 4)
        for code, station, registry in (("HB0100000011", "allow", "allow"),
                                        ("HB0100000012", "allow", "block"),
                                        ("HB0100000002", "block", "block")):
            [check] = line.offline_checks_at_registry(code)
            self.assertEqual(check["decision"], station, check)
            self.assertEqual(check["registry_decision"], registry, check)
            self.assertEqual(check["agrees"], station == registry, check)
        [blocked_check] = line.offline_checks_at_registry("HB0100000002")
        self.assertEqual(blocked_check["station_check_id"], blocked["check_id"])
        self.assertIn("INSPECTION_OVERDUE", blocked_check["reasons"])
        # The regulator's refused fills count the offline refusals, marked offline.
        stats = line.reg.must("GET", f"/v1/stats/fill-checks?from={TODAY}&to={TODAY}"
                              "&group_by=station", line.admin)
        [st01] = [g for g in stats["groups"] if g["key"] == "ST-01"]
        self.assertEqual(st01["offline_checks"], 4, stats)
        self.assertEqual(st01["offline_refused"], 2, stats)

    def test_a_refusal_journalled_offline_reaches_the_registry_once_across_sigkills(self):
        line = self.line
        self.assertEqual(line.reg.stop(), 0)
        codes = ["HB0100000002", "HB0100000003", "HB0100000002"]
        for delay, code in zip((0.0, 0.05, 0.3), codes):
            with self.subTest(delay=delay):
                decision, _ = line.fill(code)
                self.assertEqual(decision["decision"], "block", decision)
                self.assertTrue(decision["offline"])
                # Killed between the journal and the upload: the decision was shown,
                # so the check is in the journal.
                line.station.kill()
                line.reg.start()
                line.station.start()
                time.sleep(delay)  # the upload may or may not have gone out
                line.station.kill()
                self.assertEqual(line.reg.stop(), 0)
                line.station.start()
                line.station.wait_for(lambda e: e["event"] == "scale_connected")
        line.reg.start()
        outbox = line.wait_drained()
        self.assertEqual(outbox["checks_rejected"], 0)
        self.assertEqual(len(line.offline_checks_at_registry("HB0100000002")), 2)
        self.assertEqual(len(line.offline_checks_at_registry("HB0100000003")), 1)
        self.assertEqual(unlocks(line.sim.interlock_writes()), [])


class Https(unittest.TestCase):
    """The registry serving HTTPS itself (serve --tls-cert, --tls-key) with a
    certificate made here: the station verifies it against its ca_file; with
    another CA's file, or none, it trusts nothing and decides offline."""

    def setUp(self):
        self.tls_dir = tempfile.mkdtemp(prefix="pingma-tls-")
        self.cert, key = self.certificate("registry")
        self.other_ca, _ = self.certificate("other")
        self.line = Line(tls=(self.cert, key))

    def certificate(self, name):
        cert = os.path.join(self.tls_dir, name + ".crt")
        key = os.path.join(self.tls_dir, name + ".key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, capture_output=True)
        os.chmod(key, 0o600)
        return cert, key

    def tearDown(self):
        self.line.close()
        shutil.rmtree(self.tls_dir, ignore_errors=True)

    def station(self, ca_file):
        line = self.line
        port = line.reg.url.rsplit(":", 1)[1]
        line.station = Station(binary("station", "pingma-station"),
                               os.path.join(line.work, "station-tls"), "ST-01",
                               f"https://localhost:{port}", line.station_token,
                               [("P1", "OP-7", tcp_listen_scanner(), tcp_scale(line.sim))],
                               check_deadline_ms=2000, sync_interval_s=3600, ca_file=ca_file)
        return line.station

    def test_the_registry_over_https_with_the_ca_file(self):
        self.station(self.cert)
        self.line.start_station()
        decision, finished = self.line.fill("HB0100000018")
        self.assertEqual(decision["decision"], "allow")
        self.assertFalse(decision["offline"])
        self.line.station.wait_for(lambda e: e["event"] == "upload", seen=True)
        self.assertEqual(len(self.line.fills_at_registry("HB0100000018")), 1)

    def test_a_certificate_of_another_ca_is_no_registry(self):
        self.unverifiable(self.other_ca)

    def test_without_a_ca_file_the_certificate_is_no_registry(self):
        self.unverifiable(None)

    def unverifiable(self, ca_file):
        self.station(ca_file)
        self.line.start_station(synced=False)
        decision, _ = self.line.fill("HB0100000018")
        # Nothing was synced either: with no replica there is no decision at all, and
        # the scale stays locked.
        self.assertEqual(decision["decision"], "error", decision)
        self.assertIn("not been synced", decision["error"])
        self.assertEqual(unlocks(self.line.sim.interlock_writes()), [])
        offline = self.line.station.wait_for(lambda e: e["event"] == "offline", seen=True)
        self.assertIn("certificate", offline["why"].lower())


class SystemdNotify:
    """systemd's end of sd_notify: a datagram socket the station is told of by
    $NOTIFY_SOCKET, whose messages are kept as they come."""

    def __init__(self, folder):
        self.path = os.path.join(folder, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages = []
        self.closed = False
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while not self.closed:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            self.messages.append(data.decode())

    def count(self, field):
        return sum(1 for m in list(self.messages) if field in m.split("\n"))

    def wait_for(self, field, times=1, timeout=30):
        end = time.monotonic() + timeout
        while self.count(field) < times:
            if time.monotonic() > end:
                raise AssertionError(f"{field} not sent {times} times: {self.messages[-5:]}")
            time.sleep(0.02)

    def close(self):
        self.closed = True
        self.reader.join(5)
        self.sock.close()


class Held:
    """One thread of another process held still, as a thread stuck in a call that
    never returns would be, while the process's other threads run on: ptrace's
    PTRACE_SEIZE and PTRACE_INTERRUPT stop that thread alone (no SIGSTOP, which
    would stop them all)."""

    SEIZE, INTERRUPT, DETACH, WALL = 0x4206, 0x4207, 17, 0x40000000

    def __init__(self, tid):
        self.tid = tid
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p,
                                     ctypes.c_void_p]
        self.libc.ptrace.restype = ctypes.c_long

    def _ptrace(self, request):
        if self.libc.ptrace(request, self.tid, None, None) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"ptrace({request:#x}, {self.tid}): {os.strerror(errno)}")

    def __enter__(self):
        self._ptrace(self.SEIZE)
        self._ptrace(self.INTERRUPT)
        os.waitpid(self.tid, self.WALL)
        return self

    def __exit__(self, *_):
        self._ptrace(self.DETACH)


def thread_named(pid, name):
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            if f.read().strip() == name:
                return int(tid)
    raise AssertionError(f"no thread {name} in process {pid}")


class Watchdog(unittest.TestCase):
    """systemd's readiness and watchdog (the unit's Type=notify, WatchdogSec=), with
    this test as systemd: READY=1 once the positions run, WATCHDOG=1 while each
    comes round, none while the position's thread is held still."""

    WATCHDOG_S = 2.0  # WatchdogSec=: fed every 0.5 s, a thread stuck after 1 s

    def setUp(self):
        self.line = Line()
        self.notify = SystemdNotify(self.line.work)

    def tearDown(self):
        self.line.close()
        self.notify.close()

    def test_a_station_whose_position_thread_is_stuck_stops_notifying(self):
        line, notify = self.line, self.notify
        line.station.start(env=dict(os.environ, NOTIFY_SOCKET=notify.path,
                                    WATCHDOG_USEC=str(int(self.WATCHDOG_S * 1e6))))
        notify.wait_for("READY=1")
        self.assertTrue(any(m.startswith("READY=1\nSTATUS=1 position(s)")
                            for m in notify.messages), notify.messages)
        notify.wait_for("WATCHDOG=1", times=3)
        decision, finished = line.fill("HB0100000011")
        self.assertEqual((decision["decision"], finished["record"]["result"]), ("allow", "ok"))

        position = thread_named(line.station.program.proc.pid, "station-pos")
        with Held(position):
            stuck = line.station.wait_for(lambda e: e["event"] == "watchdog", timeout=30,
                                          what="the watchdog's word on the held thread")
            self.assertEqual((stuck["thread"], stuck["stuck"]), ("position P1", True))
            self.assertGreater(stuck["since_ms"], self.WATCHDOG_S / 2 * 1000)
            time.sleep(0.2)  # a feed sent before the word is read in by now
            fed = notify.count("WATCHDOG=1")
            # The station's other threads run on (its status page answers), but no
            # feed comes for four of its periods: systemd would kill and restart it.
            time.sleep(self.WATCHDOG_S)
            self.assertIn("outbox", line.station.status())
            self.assertEqual(notify.count("WATCHDOG=1"), fed, notify.messages[-3:])
            self.assertTrue(any("watchdog is no longer fed" in line_
                                for line_ in line.station.program.stderr_lines))
        again = line.station.wait_for(lambda e: e["event"] == "watchdog", timeout=30,
                                      what="the watchdog's word on the released thread")
        self.assertEqual((again["thread"], again["stuck"]), ("position P1", False))
        notify.wait_for("WATCHDOG=1", times=fed + 2)
        line.station.stop()
        self.assertEqual(notify.count("STOPPING=1"), 1)


class Reload(unittest.TestCase):
    """SIGHUP (systemctl reload): the station reads its config file again, takes the
    registry token, the CA file and the check deadline, and names what else changed
    (a restart puts it in use)."""

    def setUp(self):
        self.line = Line()
        self.line.start_station()

    def tearDown(self):
        self.line.close()

    def sighup(self):
        self.line.station.program.proc.send_signal(signal.SIGHUP)
        return self.line.station.wait_for(lambda e: e["event"] == "reload",
                                          what="the station's word on SIGHUP")

    def edit_config(self, old, new):
        with open(self.line.station.config) as f:
            text = f.read()
        self.assertIn(old, text)
        with open(self.line.station.config, "w") as f:
            f.write(text.replace(old, new))

    def test_sighup_takes_a_new_token_and_names_what_takes_a_restart(self):
        line = self.line
        tokens = line.reg.must("GET", "/v1/tokens", line.admin)["tokens"]
        old = [t["id"] for t in tokens if (t["role"], t["subject"]) == ("station", "ST-01")]
        self.assertEqual(len(old), 1)
        new = line.reg.must("POST", "/v1/tokens", line.admin,
                            {"role": "station", "subject": "ST-01", "note": "rotated"})
        with open(os.path.join(line.station.workdir, "station.token"), "w") as f:
            f.write(new["token"] + "\n")
        self.edit_config("check_deadline_ms = 1000", "check_deadline_ms = 1200")
        self.edit_config('operator = "OP-7"', 'operator = "OP-8"')
        said = self.sighup()
        self.assertEqual(said["taken"], ["token", "station.check_deadline_ms"])
        self.assertEqual(said["restart_needed"], ["position"])
        end = time.monotonic() + 10  # stderr is read by a thread of its own
        while not any("taking a restart position" in text
                      for text in line.station.program.stderr_lines):
            self.assertLess(time.monotonic(), end, line.station.program.stderr_lines[-3:])
            time.sleep(0.05)
        # The old token revoked: the station's checks and uploads go on, with the new.
        line.reg.must("DELETE", f"/v1/tokens/{old[0]}", line.admin)
        time.sleep(1.5)  # a revocation is seen within 1 s (API.md)
        decision, finished = line.fill("HB0100000012")
        self.assertEqual((decision["decision"], decision["offline"]), ("allow", False), decision)
        self.assertEqual(finished["record"]["operator_id"], "OP-7")  # positions: at a restart
        line.station.wait_for(lambda e: e["event"] == "upload", seen=True)
        self.assertEqual(len(line.fills_at_registry("HB0100000012")), 1)

    def test_a_new_check_deadline_is_the_one_waited_for(self):
        line = self.line
        self.edit_config("check_deadline_ms = 1000", "check_deadline_ms = 2500")
        said = self.sighup()
        self.assertEqual((said["taken"], said["restart_needed"]),
                         (["station.check_deadline_ms"], []))
        # A registry that takes the request and never answers: the station waits the
        # new deadline (not the old second), then decides on its replica.
        registry = line.reg.program.proc
        registry.send_signal(signal.SIGSTOP)
        try:
            decision, _ = line.fill("HB0100000014")
        finally:
            registry.send_signal(signal.SIGCONT)
        self.assertEqual((decision["decision"], decision["offline"]), ("allow", True), decision)
        self.assertGreaterEqual(decision["timing_ms"]["check"], 2500)

    def test_a_file_that_no_longer_reads_changes_nothing(self):
        line = self.line
        self.edit_config("[station]", "[station\n")
        said = self.sighup()
        self.assertIn("station config, line", said["error"])
        decision, _ = line.fill("HB0100000013")
        self.assertEqual((decision["decision"], decision["offline"]), ("allow", False), decision)
        # Mended with nothing changed: nothing taken, nothing to restart for.
        self.edit_config("[station\n", "[station]")
        said = self.sighup()
        self.assertEqual((said["taken"], said["restart_needed"]), ([], []))


class Crashes(unittest.TestCase):
    def tearDown(self):
        self.line.close()

    def test_sigkill_at_any_point_of_a_fill_loses_nothing_and_stores_nothing_twice(self):
        self.line = line = Line(flow_kg_s=2.0)
        line.start_station()
        codes = LEGAL[1:6]
        delays = (0.0, 0.05, 0.4, 1.5, 4.0)  # after the scan: before the check ... after the fill
        for code, delay in zip(codes, delays):
            with self.subTest(code=code, delay=delay):
                line.sim.clear_platform()
                line.sim.control(f"place {TARE} 0.5")
                line.station.scan("P1", code)
                time.sleep(delay)
                before = len(line.sim.interlock_writes())
                line.station.kill()
                line.station.start()
                # The restarted station's first interlock write is a lock.
                line.station.wait_for(lambda e: e["event"] == "scale_connected")
                writes = line.sim.interlock_writes()[before:]
                self.assertTrue(writes)
                self.assertEqual(writes[0]["value"], 0, writes)
                line.wait_drained()
                line.station.read_events()
        status = line.station.status()["outbox"]
        self.assertEqual(status["rejected"], 0)
        stored = 0
        for code in codes:
            fills = line.fills_at_registry(code)
            self.assertLessEqual(len(fills), 1, fills)
            stored += len(fills)
        # Every fill that was begun was recorded: the journal's count is the registry's.
        self.assertEqual(status["uploaded"], stored)
        # At least one kill fell inside a fill, which the restart closed as interrupted.
        recovered = [e["event_id"] for e in line.station.events if e["event"] == "fill_recovered"]
        self.assertTrue(recovered, "no kill landed during a fill")
        for event_id in recovered:
            record = next(e["record"] for e in line.station.events
                          if e["event"] == "fill_finished" and e["record"]["event_id"] == event_id)
            self.assertEqual(record["result"], "interrupted")
            [fill] = line.fills_at_registry(record["code"])
            self.assertEqual(fill["id"], event_id)
            self.assertEqual(fill["result"], "interrupted")
        # Each unlock belongs to a fill that was begun, and so recorded and stored.
        self.assertLessEqual(len(unlocks(line.sim.interlock_writes())), stored)


if __name__ == "__main__":
    BUILD = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
