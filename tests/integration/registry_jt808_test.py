"""In-vehicle terminals over JT/T 808 against the real pingma-registry.

The terminal is tests/integration/jt808_terminal.py, written from the standard and
sharing no code with the registry's gateway. Over real TCP to `serve
--jt808-listen`: registration with an authentication code and authentication, in
the 2013 and the 2019 edition; location reports and 0x0704 batches, which become the
vehicle's positions (each once, a report sent again included); reconnection with
the saved code; frames with every escape; a corrupt check code and a bad escape
dropped while the connection lives on; a half frame at disconnect storing nothing;
an unknown terminal and a wrong code refused; reports before authentication
refused; a terminal flooding garbage while another is answered; a zone_exit raised
from a terminal's reports; and 1,000 terminals connected at once.

    python3 registry_jt808_test.py /path/to/pingma-registry
"""

import asyncio
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jt808_terminal as jt
from registry_harness import RegistryCase, iso, take_binary_argument, today_shanghai

BINARY = None  # set in __main__
HERE = os.path.dirname(os.path.abspath(__file__))
SHELL = [[116.38, 39.88], [116.42, 39.88], [116.42, 39.92], [116.38, 39.92], [116.38, 39.88]]
INSIDE = (39.91, 116.41)
OUTSIDE = (39.95, 116.41)
SWARM = 1000
SWARM_PREFIX = "1390000"


def run(coro):
    return asyncio.run(coro)


def seconds_ago(n):
    return datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=n)


class Jt808Test(RegistryCase):
    maxDiff = 4000
    TOKENS = {"admin": ("admin", "root"), "co": ("company", "CO-J"),
              "regulator": ("regulator", "SAMR")}
    START_ARGS = ("--jt808-listen", "127.0.0.1:0")

    @classmethod
    def world(cls):
        far = iso(today_shanghai() + timedelta(days=400))
        cls.post("/v1/companies", {"id": "CO-J", "name": "CO-J", "filling_license":
                                   {"number": "TS-J", "valid_until": far}}, cls.admin)
        status, answer = cls.call("PUT", "/v1/areas/AREA-J", {
            "company_id": "CO-J", "name": "J", "geometry": {"type": "Polygon",
                                                            "coordinates": [SHELL]}}, cls.co)
        assert status == 201, answer
        # Terminal phones as a 2013 header carries them (12 digits) and as 2019's
        # (up to 20): the vehicle is given the number without its leading zeros.
        cls.phones = {"V-13": "13800000013", "V-19": "13800000019", "V-ESC": "13800000077",
                      "V-FLOOD": "13800000088", "V-ZONE": "13800000055",
                      "V-HALF": "13800000066"}
        for vehicle, phone in cls.phones.items():
            cls.post("/v1/vehicles", {"id": vehicle, "company_id": "CO-J",
                                      "plate": "豫N" + phone[-5:], "terminal": {"phone": phone}},
                     cls.co)
        cls.post("/v1/couriers", {"id": "CR-Z", "company_id": "CO-J", "name": "Z",
                                  "vehicle": "V-ZONE", "zones": ["AREA-J"]}, cls.co)
        for i in range(1, SWARM + 1):
            phone = "%s%04d" % (SWARM_PREFIX, i)
            cls.post("/v1/vehicles", {"id": "V-S%04d" % i, "company_id": "CO-J",
                                      "plate": "豫S%05d" % i, "terminal": {"phone": phone}},
                     cls.co)
        cls.jt_port = cls.reg.jt808_port

    def terminal(self, vehicle, version=2013, **kw):
        return jt.Terminal("127.0.0.1", self.jt_port, self.phones[vehicle], version=version,
                           reply_timeout=10, **kw)

    def track(self, vehicle):
        status, answer = self.call("GET", "/v1/vehicles/%s/positions?from=%s" % (
            vehicle, (datetime.now(timezone.utc) - timedelta(days=1)).strftime(
                "%Y-%m-%dT%H:%M:%SZ")), token=self.co)
        self.assertEqual(status, 200, answer)
        return answer["positions"]

    async def registered(self, vehicle, version=2013):
        term = self.terminal(vehicle, version)
        await term.connect()
        reply = await term.register()
        self.assertTrue(reply.ok, reply)
        self.assertTrue(term.auth_code)
        reply = await term.authenticate()
        self.assertTrue(reply.ok, reply)
        return term

    # -- the life of a terminal -------------------------------------------------------

    def test_both_editions_register_report_batch_reconnect(self):
        for vehicle, version in (("V-13", 2013), ("V-19", 2019)):
            with self.subTest(version):
                async def life():
                    term = await self.registered(vehicle, version)
                    t0 = seconds_ago(600)
                    reply = await term.report(jt.Position(INSIDE[0], INSIDE[1], t0,
                                                          speed_kmh=32.5, heading=270))
                    self.assertTrue(reply.ok, reply)
                    self.assertTrue((await term.heartbeat()).ok)
                    batch = [jt.Position(INSIDE[0] + i * 1e-4, INSIDE[1], t0 + timedelta(
                        seconds=10 * i)) for i in range(1, 41)]
                    reply = await term.report_batch(batch, kind=jt.BATCH_BLIND_AREA)
                    self.assertTrue(reply.ok, reply)
                    # A new connection: authentication with the saved code, then a
                    # report sent again (its reply lost) is stored once.
                    self.assertTrue((await term.reconnect()).ok)
                    self.assertTrue((await term.report(batch[-1])).ok)
                    await term.close()
                run(life())
                track = self.track(vehicle)
                self.assertEqual(len(track), 41, track[:3])
                self.assertTrue(all(p["source"] == "jt808" for p in track))
                self.assertAlmostEqual(track[0]["speed_kmh"], 32.5)
                self.assertEqual(track[0]["heading"], 270)
                self.assertAlmostEqual(track[-1]["lat"], INSIDE[0] + 40e-4, places=6)

    def test_escapes_and_bad_frames_in_stream(self):
        async def life():
            term = await self.registered("V-ESC")
            base = seconds_ago(900)
            # A serial that escapes in the header, a check code of each escaped value.
            term.serial = 0x7E7D
            p = jt.Position(INSIDE[0], INSIDE[1], base)
            self.assertTrue((await term.report(p)).ok)
            for target, offset in ((0x7E, 10), (0x7D, 20)):
                pos = jt.position_with_check_code(
                    jt.Position(INSIDE[0], INSIDE[1], base + timedelta(seconds=offset)),
                    target, term.phone, term.serial, term.version)
                self.assertTrue((await term.report(pos)).ok)
            # Bad frames are dropped; the connection lives on and answers the next.
            packet = term.message(jt.LOCATION, jt.Position(
                INSIDE[0], INSIDE[1], base + timedelta(seconds=30)).encode()).packet()
            await term.send_raw(jt.frame_with_bad_check(packet))
            await term.send_raw(jt.frame_with_bad_escape(packet))
            await term.send_raw(jt.garbage(300, seed=7))
            reply = await term.report(jt.Position(INSIDE[0], INSIDE[1],
                                                  base + timedelta(seconds=40)))
            self.assertTrue(reply.ok, reply)
            await term.close()
        run(life())
        times = [p["at"] for p in self.track("V-ESC")]
        self.assertEqual(len(times), 4, times)  # the corrupt frame's position is not there

    def test_half_frame_at_disconnect_stores_nothing(self):
        async def life():
            term = await self.registered("V-HALF")
            await term.send_half_frame_and_close()
        run(life())
        time.sleep(0.5)
        self.assertEqual(self.track("V-HALF"), [])

    def test_refusals(self):
        async def life():
            # A phone that is no vehicle's terminal: registration refused (4).
            stranger = jt.Terminal("127.0.0.1", self.jt_port, "13999999999", reply_timeout=10)
            await stranger.connect()
            reply = await stranger.register()
            self.assertEqual(reply.result, 4, reply)
            await stranger.close()
            # A wrong code: authentication refused.
            term = self.terminal("V-13")
            await term.connect()
            reply = await term.authenticate(b"not-the-code")
            self.assertFalse(reply.ok, reply)
            await term.close()
            # Reports before authentication: refused, not stored.
            term = self.terminal("V-19", version=2019)
            await term.connect()
            reply = await term.report(jt.Position(OUTSIDE[0], OUTSIDE[1], seconds_ago(5)))
            self.assertFalse(reply.ok, reply)
            await term.close()
        before = len(self.track("V-19"))
        run(life())
        self.assertEqual(len(self.track("V-19")), before)

    def test_flood_of_garbage_does_not_hold_up_another(self):
        async def life():
            flooder = await self.registered("V-FLOOD")
            honest = await self.registered("V-13")
            stop = asyncio.Event()

            async def flood():
                n = 0
                try:
                    while not stop.is_set():
                        await flooder.send_raw(jt.garbage(4096, seed=n))
                        n += 1
                except (jt.ConnectionClosed, ConnectionError, OSError):
                    pass  # closed for its bad frames: the point
                return n

            task = asyncio.create_task(flood())
            base = seconds_ago(1200)
            for i in range(50):
                reply = await honest.report(jt.Position(INSIDE[0], INSIDE[1],
                                                        base + timedelta(seconds=i)))
                self.assertTrue(reply.ok, reply)
            stop.set()
            sent = await task
            self.assertGreater(sent, 0)
            await honest.close()
            await flooder.close()
        run(life())

    def test_zone_exit_from_terminal_reports(self):
        async def life():
            term = await self.registered("V-ZONE", version=2019)
            base = seconds_ago(3000)
            points = [jt.Position(INSIDE[0], INSIDE[1], base)] + [
                jt.Position(OUTSIDE[0], OUTSIDE[1], base + timedelta(minutes=m))
                for m in range(1, 9)]
            for p in points:
                self.assertTrue((await term.report(p)).ok)
            await term.close()
        run(life())
        status, answer = self.call("GET", "/v1/alerts?kind=zone_exit", token=self.regulator)
        alerts = [a for a in answer["alerts"] if a["vehicle"] == "V-ZONE"]
        self.assertEqual(len(alerts), 1, answer)
        self.assertEqual(alerts[0]["courier"], "CR-Z")

    def test_thousand_terminals_at_once(self):
        # The simulator's swarm: every terminal registered and authenticated before
        # the first report, all connected while they report.
        r = subprocess.run(
            [sys.executable, "-B", os.path.join(HERE, "jt808_terminal.py"), "swarm",
             "--host", "127.0.0.1", "--port", str(self.jt_port), "--terminals", str(SWARM),
             "--reports", "3", "--phone-prefix", SWARM_PREFIX, "--timeout", "60"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
            timeout=600)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        summary = __import__("json").loads(r.stdout.strip().splitlines()[-1])
        self.assertEqual(summary["authenticated"], SWARM, summary)
        self.assertEqual(summary["connected_at_end"], SWARM, summary)
        self.assertEqual(summary["reports_ok"], 3 * SWARM, summary)
        for vehicle in ("V-S0001", "V-S0500", "V-S1000"):
            self.assertEqual(len(self.track(vehicle)), 3, vehicle)


if __name__ == "__main__":
    BINARY = take_binary_argument()
    import unittest
    unittest.main(verbosity=2)
