"""Smoke test of pingma-bench-jt808-swarm, the jt808 benchmark's C++ terminals, so that
the program cannot rot between benchmark runs.

Run: python3 jt808_swarm_test.py SWARM FLOOR

Against pingma-bench-jt808-floor (the registry's gateway storing nothing): 10
terminals register, authenticate and send 5 reports each, then again with the saved
auth codes in 0x0704 batches on two threads; the codes file reads back through
jt808_terminal.py's read_auth_codes. Against the simulator self-test's fake platform
(Python, decoding with jt808_terminal.py's codec, not the gateway's): the positions as
sent, an auth code that needs escaping, and reports left unanswered counted as timeouts.
A port nobody listens on fails the run.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import unittest
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jt808_terminal as jt  # noqa: E402
from jt808_terminal_selftest import AUTH_CODE, PlatformThread  # noqa: E402

SWARM, FLOOR = sys.argv[1:3]
del sys.argv[1:3]


def swarm(port, *args):
    """The swarm's exit status and summary."""
    r = subprocess.run([SWARM, "--port", str(port), "--timeout", "30", *args],
                       capture_output=True, text=True, timeout=120)
    lines = r.stdout.splitlines()
    if not lines:
        raise AssertionError(f"no summary; stderr: {r.stderr}")
    return r.returncode, json.loads(lines[-1])


class Floor:
    def __enter__(self):
        self.proc = subprocess.Popen([FLOOR], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("jt808 on "):
            self.proc.kill()
            raise AssertionError(f"the floor said {line!r}")
        self.port = int(line.rsplit(":", 1)[1])
        return self

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        self.proc.stdout.close()


class SwarmTest(unittest.TestCase):
    def test_against_the_floor(self):
        with tempfile.TemporaryDirectory() as tmp, Floor() as floor:
            codes = os.path.join(tmp, "codes.json")
            status, s = swarm(floor.port, "--terminals", "10", "--reports", "5",
                              "--save-auth-codes", codes)
            self.assertEqual(status, 0, s)
            self.assertEqual((s["terminals"], s["connected"], s["registered"],
                              s["authenticated"], s["connected_at_end"], s["messages_sent"],
                              s["reports_sent"], s["reports_ok"], s["replies_failed"],
                              s["timeouts"], s["errors"]),
                             (10, 10, 10, 10, 10, 50, 50, 50, 0, 0, {}))
            for key in ("elapsed_s", "reports_per_s", "latency_p50_ms", "latency_p99_ms"):
                self.assertIsInstance(s[key], (int, float), key)
            self.assertEqual(jt.read_auth_codes(codes),
                             {"1390000%04d" % i: b"floor" for i in range(1, 11)})

            status, s = swarm(floor.port, "--terminals", "10", "--reports", "5", "--batch",
                              "2", "--threads", "2", "--auth-codes", codes)
            self.assertEqual(status, 0, s)
            self.assertEqual((s["registered"], s["authenticated"], s["messages_sent"],
                              s["reports_ok"], s["errors"]), (0, 10, 30, 50, {}))

    def test_positions_as_a_python_platform_reads_them(self):
        # The fake platform gives AUTH_CODE, which holds 0x7e and 0x7d.
        with tempfile.TemporaryDirectory() as tmp, PlatformThread() as platform:
            codes = os.path.join(tmp, "codes.json")
            before = datetime.now(timezone.utc).replace(microsecond=0)
            status, s = swarm(platform.port, "--terminals", "3", "--reports", "104", "--batch",
                              "26", "--lat", "39.9", "--lon", "116.4", "--first", "98",
                              "--save-auth-codes", codes)
            after = datetime.now(timezone.utc)
            self.assertEqual(status, 0, s)
            self.assertEqual((s["authenticated"], s["messages_sent"], s["reports_ok"]),
                             (3, 12, 312))
            self.assertEqual(platform.bad_frames, [])
            self.assertEqual(set(jt.read_auth_codes(codes).values()), {AUTH_CODE})
            ids = [m.msg_id for _, m in platform.messages]
            self.assertEqual((ids.count(jt.REGISTER), ids.count(jt.AUTHENTICATE),
                              ids.count(jt.LOCATION_BATCH)), (3, 3, 12))
            by_phone = {}
            for _, m in platform.messages:
                if m.msg_id == jt.LOCATION_BATCH:
                    by_phone.setdefault(m.phone, []).extend(jt.decode_batch_body(m.body)[1])
            self.assertEqual(sorted(by_phone), ["01390000%04d" % i for i in (98, 99, 100)])
            for positions in by_phone.values():
                times = [p.time for p in positions]
                self.assertEqual(times, [times[0] + timedelta(seconds=k) for k in range(104)])
                self.assertGreaterEqual(times[0], before - timedelta(seconds=110))
                self.assertLess(times[-1], after)
                for p in positions:
                    self.assertTrue(116.3 <= p.lon <= 116.5 and 39.8 <= p.lat <= 40.0, p)
                    self.assertEqual(p.status & jt.STATUS_POSITIONED, jt.STATUS_POSITIONED)

    def test_unanswered_reports_time_out(self):
        with PlatformThread(ignore={jt.LOCATION}) as platform:
            r = subprocess.run([SWARM, "--port", str(platform.port), "--terminals", "3",
                                "--reports", "2", "--timeout", "0.2"],
                               capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1)
        s = json.loads(r.stdout)
        self.assertEqual((s["authenticated"], s["timeouts"], s["reports_sent"], s["replies_ok"]),
                         (3, 6, 6, 0))

    def test_nobody_listening(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # bound, not listening: connections are refused
            status, summary = swarm(port, "--terminals", "3", "--reports", "1")
        self.assertEqual(status, 1)
        self.assertEqual((summary["connected"], summary["reports_ok"]), (0, 0))
        self.assertEqual(sum(summary["errors"].values()), 3, summary["errors"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
