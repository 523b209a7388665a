"""The operator's screen (pingma-station's GET /, /p/{position}, /events) in headless
Chromium through Selenium (Debian's chromium, chromium-driver and python3-selenium),
with the real registry, pingma-scale-sim over Modbus TCP and the station, all started
here on loopback.

- A blocked cylinder: the tile says 禁止充装 with every reason; the alarm sounds (Web
  Audio beeps counted in the page) until it is acknowledged on the screen; the
  simulator's signal log shows red and the buzzer and never green; the interlock is
  never unlocked. How soon the tile follows the decision is a benchmark's
  (BENCHMARKS.md §10, screen-latency: p99 28 ms to the page's next frame), not a
  wall-clock limit here, which a loaded machine broke.
- An allowed fill: the progress shows at least three different weights while it
  fills, and ends with the net and 已上传 (uploaded).
- The registry stopped: the offline banner, once the station has decided offline (a
  check unanswered within its deadline).
- At 1024x600 and 800x480 nothing scrolls sideways and no text is cut (screenshots in
  the artefacts folder).
- The station restarted on the same address: the page reconnects by itself.
- A client that connects to /events and never reads is dropped with a notice, while
  the screens that read keep getting every event; 50 open streams all see a fill.

    /usr/bin/python3 station_screen_test.py BUILD_DIR ARTEFACTS_DIR
"""

import json
import os
import socket
import sys
import threading
import time
import unittest
import urllib.error
import urllib.request

from selenium.webdriver.common.by import By

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chromium import headless_chromium  # noqa: E402
import station_test  # noqa: E402  (the Line: registry, scale simulator, station)

ARTEFACTS = None  # set in __main__
PANEL = (1024, 600)
SMALL_PANEL = (800, 480)
BLOCKED = "HB0100000002"  # overdue for inspection
LEGAL = station_test.LEGAL


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """One headless Chromium whose viewport is exactly the panel's size."""

    def __init__(self, profile):
        # A kiosk at the scale is set up to play the alarm without a tap.
        self.driver = headless_chromium(
            profile, extra_args=["--autoplay-policy=no-user-gesture-required"])
        self.size(PANEL)

    def size(self, wh):
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": wh[0], "height": wh[1], "deviceScaleFactor": 1, "mobile": False})

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def probe(self):
        return self.js("return window.pingmaScreen || null")

    def wait(self, what, pred, timeout=10.0):
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            try:
                last = pred()
                if last:
                    return last
            except Exception as e:  # noqa: BLE001 - the page may be between draws
                last = e
            time.sleep(0.02)
        raise AssertionError("%s: not within %.1f s (last: %r)" % (what, timeout, last))

    def tile(self, position="P1"):
        return self.driver.find_element(By.ID, "position-" + position)

    def shot(self, name):
        self.driver.save_screenshot(os.path.join(ARTEFACTS, name + ".png"))

    def close(self):
        self.driver.quit()


class ScreenCase(unittest.TestCase):
    FLOW = 3.0
    STATUS_LISTEN = "127.0.0.1:0"

    def setUp(self):
        self.line = station_test.Line(flow_kg_s=self.FLOW)
        self.line.station = station_test.Station(
            self.line.station.binary, self.line.station.workdir, "ST-01", self.line.reg.url,
            self.line.station_token,
            [("P1", "OP-7", station_test.tcp_listen_scanner(),
              station_test.tcp_scale(self.line.sim))],
            check_deadline_ms=1000, sync_interval_s=3600, status_listen=self.STATUS_LISTEN)
        self.line.start_station()
        self.browser = Browser(os.path.join(self.line.work, "chromium"))

    def tearDown(self):
        self.browser.close()
        # A clean stop, screens open or dropped: exit 0 (under the sanitizers too).
        code = self.line.station.stop()
        self.line.close()
        self.assertEqual(code, 0, "the station did not stop cleanly")

    def open(self, path="/p/P1"):
        self.browser.driver.get(self.line.station.screen_url.rstrip("/") + path)
        self.browser.wait("the stream's snapshot",
                          lambda: (self.browser.probe() or {}).get("snapshots", 0) >= 1)

    def signals(self):
        return self.line.sim.status()["signals"]

    def assert_fits(self, what):
        """Nothing scrolls sideways, and no element's text is cut off."""
        b = self.browser
        overflow = b.js("return document.documentElement.scrollWidth - window.innerWidth")
        self.assertLessEqual(overflow, 0, "%s scrolls sideways by %d px" % (what, overflow))
        cut = b.js("""
            const cut = [];
            for (const e of document.querySelectorAll('body *')) {
              if (!e.offsetParent && getComputedStyle(e).position !== 'fixed') continue;
              if (!e.textContent.trim() || e.children.length > 0 && e.tagName !== 'BUTTON') continue;
              if (e.scrollWidth > e.clientWidth + 1 && e.clientWidth > 0) cut.push(e.textContent.trim());
              const r = e.getBoundingClientRect();
              if (r.right > window.innerWidth + 1) cut.push('beyond the right edge: ' + e.textContent.trim());
            }
            return cut;""")
        self.assertEqual(cut, [], "%s cuts text" % what)


class Blocked(ScreenCase):
    def test_a_block_shows_every_reason_and_alarms_until_acknowledged(self):
        self.open()
        b = self.browser
        before = len(self.line.sim.interlock_writes())
        self.line.sim.control("place %s 0.5" % station_test.TARE)
        self.line.station.scan("P1", BLOCKED)
        decision = self.line.station.wait_for(
            lambda e: e["event"] == "decision" and e.get("raw") == BLOCKED, what="the decision")
        self.assertEqual(decision["decision"], "block")
        b.wait("禁止充装 on the tile", lambda: "禁止充装" in b.tile().text)
        text = b.tile().text
        self.assertIn("超期未检", text)  # the reason, in Chinese first
        self.assertIn("Overdue for inspection", text)
        self.assertIn("将气瓶放到一边", text)  # what to do
        self.assertEqual(b.tile().get_attribute("data-state"), "blocked")
        # The alarm plays, and goes on playing.
        beeps = b.wait("the alarm", lambda: b.probe()["alarm"] and b.probe()["beeps"])
        time.sleep(1.6)
        self.assertGreaterEqual(b.probe()["beeps"], beeps + 2, "the alarm stopped by itself")
        self.assertTrue(b.js("return document.querySelector('#sound').hidden"))
        for size, name in ((PANEL, "screen-blocked-1024x600"),
                           (SMALL_PANEL, "screen-blocked-800x480")):
            b.size(size)
            time.sleep(0.2)
            self.assert_fits(name)
            b.shot(name)
        b.size(PANEL)

        # The scale: red and the buzzer, never green; the interlock never unlocked.
        writes = self.signals()
        self.assertIn(("lamp_red", 1), [(w["which"], w["value"]) for w in writes])
        self.assertIn(("buzzer", 1), [(w["which"], w["value"]) for w in writes])
        self.assertNotIn(("lamp_green", 1), [(w["which"], w["value"]) for w in writes])
        self.assertIn(("message_code", 2), [(w["which"], w["value"]) for w in writes])
        self.assertEqual([w for w in self.line.sim.interlock_writes()[before:] if w["value"] == 1],
                         [])

        # Acknowledged on the screen: the alarm stops, and so do the buzzer and red lamp.
        # (The tile is drawn again as the weight moves: a button found just before a
        # draw is gone by the click, and is found again.)
        b.wait("the acknowledgement clicked",
               lambda: b.tile().find_element(By.CSS_SELECTOR, "button.ack").click() or True,
               timeout=2.0)
        b.wait("the alarm to stop", lambda: not b.probe()["alarm"], timeout=2.0)
        stopped = b.probe()["beeps"]
        time.sleep(1.0)
        self.assertEqual(b.probe()["beeps"], stopped)
        self.line.station.wait_for(lambda e: e["event"] == "acknowledged", what="the ack")
        b.wait("the buzzer off", lambda: [(w["which"], w["value"]) for w in self.signals()
                                           if w["which"] == "buzzer"][-1] == ("buzzer", 0))
        self.assertNotIn(("lamp_green", 1), [(w["which"], w["value"]) for w in self.signals()])

    def test_the_next_scan_ends_the_alarm_too(self):
        self.open()
        b = self.browser
        self.line.fill(BLOCKED)
        b.wait("the alarm", lambda: b.probe()["alarm"])
        self.line.fill("HB0100000003")  # dual-phase: blocked again
        b.wait("the dual-phase reason", lambda: "气液双相" in b.tile().text)
        self.assertIn("移交检验机构报废", b.tile().text)

    def test_acknowledge_refuses_what_a_foreign_page_could_send(self):
        base = self.line.station.screen_url.rstrip("/")

        def post(path, body=b"{}", headers=None):
            req = urllib.request.Request(base + path, data=body, method="POST",
                                         headers=headers or {})
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    return r.status, b""
            except urllib.error.HTTPError as e:
                return e.code, e.read()

        status, body = post("/p/P1/ack", headers={"Content-Type": "text/plain"})
        self.assertEqual(status, 415)
        self.assertEqual(json.loads(body)["error"]["code"], "UNSUPPORTED_MEDIA_TYPE")
        status, body = post("/p/P1/ack", headers={"Content-Type": "application/json",
                                                  "Origin": "http://evil.example"})
        self.assertEqual(status, 403)
        status, _ = post("/p/NOPE/ack", headers={"Content-Type": "application/json"})
        self.assertEqual(status, 404)
        status, _ = post("/status")
        self.assertEqual(status, 405)
        # The acknowledgement's body: at most 1 KiB, on both sides of the limit.
        for size, expected in ((1024, 204), (1025, 413), (10000, 413)):
            with self.subTest(body_bytes=size):
                status, _ = post("/p/P1/ack", body=b"{" + b" " * (size - 2) + b"}",
                                 headers={"Content-Type": "application/json"})
                self.assertEqual(status, expected)
        status, _ = post("/events")
        self.assertEqual(status, 405)
        status, _ = post("/p/P1/ack", headers={"Content-Type": "application/json"})
        self.assertEqual(status, 204)
        with urllib.request.urlopen(base + "/p/P1", timeout=10) as r:
            csp = r.headers["Content-Security-Policy"]
            self.assertIn("default-src 'self'", csp)
        for path in ("/p/NOPE", "/../etc/passwd", "/screen.js/x", "/nothing"):
            with self.subTest(path=path):
                with self.assertRaises(urllib.error.HTTPError) as caught:
                    urllib.request.urlopen(base + path, timeout=10)
                self.assertEqual(caught.exception.code, 404)


class Filling(ScreenCase):
    FLOW = 2.0

    def test_an_allowed_fill_shows_its_progress_and_ends_uploaded(self):
        self.open()
        b = self.browser
        decision, finished = self.line.fill(LEGAL[0])
        self.assertEqual(decision["decision"], "allow")
        weights = sorted(set(b.probe()["weights"]))
        self.assertGreaterEqual(len(weights), 3, "the progress showed %r" % weights)
        self.assertEqual(finished["record"]["result"], "ok")
        net = "%.2f" % finished["record"]["net_kg"]
        b.wait("the net and 已上传", lambda: net in b.tile().text and "已上传" in b.tile().text,
               timeout=15)
        self.assertIn("合格", b.tile().text)
        self.assert_fits("the finished fill")
        b.shot("screen-filled-1024x600")
        lamps = [(w["which"], w["value"]) for w in self.signals()]
        self.assertIn(("lamp_green", 1), lamps)
        self.assertEqual([v for k, v in lamps if k == "lamp_green"][-1], 0)  # off after it

    def test_the_progress_bar_moves_during_the_fill(self):
        self.open()
        b = self.browser
        self.line.sim.control("place %s 0.5" % station_test.TARE)
        self.line.station.scan("P1", LEGAL[1])
        b.wait("the progress bar", lambda: b.js(
            "const e = document.querySelector('.progress > div'); return e && e.style.width"))
        widths = set()
        end = time.monotonic() + 10
        while time.monotonic() < end and len(widths) < 3:
            w = b.js("const e = document.querySelector('.progress > div'); "
                     "return e ? e.style.width : null")
            if w:
                widths.add(w)
            time.sleep(0.1)
        self.assertGreaterEqual(len(widths), 3, widths)
        b.shot("screen-filling-1024x600")
        b.size(SMALL_PANEL)
        time.sleep(0.2)
        self.assert_fits("a fill in progress at 800x480")
        b.shot("screen-filling-800x480")
        self.line.station.wait_for(lambda e: e["event"] == "fill_finished", timeout=60,
                                   what="the fill's end")


class Offline(ScreenCase):
    def test_the_offline_banner_appears_when_the_registry_is_gone(self):
        self.open("/")
        b = self.browser
        self.assertEqual(self.line.reg.stop(), 0)
        self.line.sim.control("place %s 0.5" % station_test.TARE)
        self.line.station.scan("P1", BLOCKED)
        self.line.station.wait_for(lambda e: e["event"] == "offline", what="offline")
        b.wait("the offline banner", lambda: "离线模式" in b.driver.find_element(
            By.ID, "banners").text)
        b.wait("the offline decision", lambda: "离线判定" in b.tile().text)
        # The outbox comes with the station's keepalive, every 5 s.
        b.wait("the waiting record", lambda: "待上传" in b.driver.find_element(
            By.ID, "banners").text, timeout=15.0)
        for size, name in ((PANEL, "screen-offline-1024x600"), (SMALL_PANEL, "screen-offline-800x480")):
            b.size(size)
            time.sleep(0.2)
            self.assert_fits(name)
            b.shot(name)
        self.line.reg.start()
        b.wait("the banner gone", lambda: "离线模式" not in b.driver.find_element(
            By.ID, "banners").text, timeout=30)


class Restart(ScreenCase):
    STATUS_LISTEN = "127.0.0.1:%d" % free_port()

    def test_the_page_reconnects_after_the_station_restarts(self):
        self.open()
        b = self.browser
        self.line.station.kill()
        b.wait("the reconnecting banner", lambda: "重连" in b.driver.find_element(
            By.ID, "banners").text)
        self.line.station.start()
        b.wait("a new snapshot", lambda: b.probe()["snapshots"] >= 2, timeout=15)
        b.wait("live", lambda: "实时" in b.driver.find_element(By.ID, "link").text)
        self.line.fill(BLOCKED)
        b.wait("the block after the restart", lambda: "禁止充装" in b.tile().text)


class Streams(ScreenCase):
    def read_stream(self, url, events, stop):
        req = urllib.request.Request(url)
        with urllib.request.urlopen(req, timeout=30) as r:
            for line in r:
                if stop.is_set():
                    return
                if line.startswith(b"data: "):
                    events.append(json.loads(line[6:]))

    def test_a_client_that_never_reads_is_dropped_and_the_others_go_on(self):
        self.open()
        b = self.browser
        url = self.line.station.screen_url.rstrip("/") + "/events"
        host, port = url.split("//")[1].split("/")[0].rsplit(":", 1)
        stuck = socket.socket()
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.connect((host, int(port)))
        stuck.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        # Events enough to fill the kernel's buffers and the stream's backlog: scans
        # with no cylinder on the platform are refused at once, four events each.
        self.line.sim.clear_platform()
        dropped = None
        for i in range(400):
            self.line.station.scan("P1", "HB01%08d" % (i + 100))
            events = self.line.station.read_events()
            dropped = next((e for e in events if e["event"] == "screen_dropped"), None)
            if dropped:
                break
        if not dropped:
            dropped = self.line.station.wait_for(lambda e: e["event"] == "screen_dropped",
                                                 timeout=30, what="the stuck stream dropped")
        self.assertTrue(dropped["why"])
        stuck.close()
        # The screen that reads still follows, and the station still fills.
        decision, finished = self.line.fill(LEGAL[2])
        self.assertEqual(finished["record"]["result"], "ok")
        b.wait("the fill on the screen", lambda: "已上传" in b.tile().text, timeout=15)

    def test_fifty_open_streams_all_see_a_fill(self):
        url = self.line.station.screen_url.rstrip("/") + "/events"
        stop = threading.Event()
        seen = [[] for _ in range(50)]
        readers = [threading.Thread(target=self.read_stream, args=(url, seen[i], stop),
                                    daemon=True) for i in range(50)]
        for t in readers:
            t.start()
        self.browser.wait("50 snapshots", lambda: all(
            any(e["event"] == "snapshot" for e in s) for s in seen), timeout=20)
        decision, finished = self.line.fill(LEGAL[3])
        self.assertEqual(finished["record"]["result"], "ok")
        event_id = finished["record"]["event_id"]
        self.browser.wait("the fill on every stream", lambda: all(
            any(e["event"] == "fill_finished" and e["record"]["event_id"] == event_id
                for e in s) for s in seen), timeout=20)
        stop.set()
        # A 51st..: the limit is far above; one more still opens.
        with urllib.request.urlopen(url, timeout=10) as r:
            self.assertEqual(r.headers["Content-Type"], "text/event-stream; charset=utf-8")


if __name__ == "__main__":
    build = os.path.abspath(sys.argv.pop(1))
    ARTEFACTS = os.path.abspath(sys.argv.pop(1))
    os.makedirs(ARTEFACTS, exist_ok=True)
    station_test.BUILD = build
    unittest.main(verbosity=2)
