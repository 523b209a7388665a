"""The registry's HTTP edge as an attacker meets it, on the real pingma-registry over
real sockets ("Secure by default"):

- eight unauthenticated `POST /c/{code}/report` declaring 100,000,000 bytes, whose
  senders keep sending: each is answered 413 from its head, the bodies are never
  read, and the registry's resident memory stays within 50 MB of its idle figure
  (before: each body was read whole, 356 MB -> 1.07 GB);
- each route's limit at its boundary (exactly the limit taken, one byte more
  refused), the public limit for a token whose role may not call the route, and a
  pipelined request over the limit answered after the one before it;
- a chunked body (no Content-Length) refused with 411 before a chunk is read;
- a head that trickles in one byte a second closed with 408 after 10 s, a body
  that trickles closed 60 s after the request began;
- a head over 32 KiB refused with 431, and so are the bytes sent beyond an
  untruthful Content-Length, which are read as the next request's head;
- Cache-Control: no-store and X-Content-Type-Options: nosniff on /v1/ answers,
  successes and errors (those of the edge too), nosniff on the public page;
- the label reader (POST /v1/scan/image): with its decoders busy on blank
  7000x7000 PNGs, further photos are refused with 503 and Retry-After while a
  fill check sent meanwhile is answered; a token's 31st photo within a minute
  gets 429 with Retry-After.

    python3 registry_edge_test.py /path/to/pingma-registry
"""

import json
import os
import select
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from photo_set import blank_png
from registry_harness import RegistryCase, take_binary_argument

BINARY = None  # set in __main__

MIB = 1 << 20
PUBLIC_LIMIT = 8 << 10
API_LIMIT = MIB
BATCH_LIMIT = 64 * MIB
HEAD_TIME = 10  # seconds
WHOLE_REQUEST_TIME = 60  # seconds, head and body
LINGER = 2  # seconds the registry drains a refused connection


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def parse_answer(data):
    """(status, headers with lower-cased names, body bytes) of one HTTP answer."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def read_until_closed(sock, limit_s):
    """Everything the server sends until it closes (or resets) the connection, and
    whether it did within limit_s."""
    data = b""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


class EdgeTest(RegistryCase):
    TOKENS = {"admin": ("admin", "root"), "courier": ("courier", "CR-1"),
              "courier2": ("courier", "CR-2"), "station": ("station", "ST-E")}
    PHOTOS_WAITING = 4
    PHOTOS_PER_MINUTE = 30

    @classmethod
    def world(cls):
        setup = [
            ("/v1/companies", {"id": "CO-E", "name": "Edge Gas",
                               "filling_license": {"number": "L-E", "valid_until": "2099-12-31"}}),
            ("/v1/stations", {"id": "ST-E", "company_id": "CO-E", "name": "Edge station",
                              "district": "D"}),
            ("/v1/operators", {"id": "OP-E", "company_id": "CO-E", "name": "Operator",
                               "certificate": {"number": "C-E", "valid_until": "2099-12-31"}}),
            ("/v1/cylinders", {"code": "HB0100000123", "owner_company_id": "CO-E",
                               "model": "YSP35.5", "manufacturer": "Hebei Example",
                               "manufactured": "2023-01", "tare_kg": 16.4}),
        ]
        for path, body in setup:
            status, answer = cls.reg.request("POST", path, body=body, token=cls.admin)
            assert status == 201, (path, status, answer)

    def connect(self):
        return socket.create_connection((self.reg.host, self.reg.port), timeout=30)

    def head(self, method, target, length=None, token=None, extra="", close=False):
        text = "%s %s HTTP/1.1\r\nHost: test\r\n" % (method, target)
        if close:
            text += "Connection: close\r\n"
        if token:
            text += "Authorization: Bearer %s\r\n" % token
        if length is not None:
            text += "Content-Length: %d\r\n" % length
        return (text + extra + "\r\n").encode()

    def exchange(self, data, limit_s=30):
        """Sends data on a new connection; returns all the server answers until it
        closes, and whether it did within limit_s."""
        with self.connect() as s:
            try:
                s.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused before all of it was sent: the answer is waiting
            return read_until_closed(s, limit_s)

    def send_and_answer(self, data, limit_s=30):
        """exchange(), the first answer parsed: (status, headers, body, closed)."""
        reply, closed = self.exchange(data, limit_s)
        status, headers, body = parse_answer(reply)
        return status, headers, body, closed

    def assert_two_answers(self, data, first_status, second_status):
        """The first answer has first_status, a second one follows with
        second_status, and the connection ends."""
        reply, closed = self.exchange(data)
        self.assertTrue(closed)
        first, _, rest = reply.partition(b"\r\n\r\n")
        self.assertTrue(first.startswith(b"HTTP/1.1 %d " % first_status), reply[:300])
        self.assertIn(b"HTTP/1.1 %d " % second_status, rest)

    def assert_refused(self, data, status, code):
        got, headers, body, closed = self.send_and_answer(data)
        self.assertEqual(got, status, body)
        self.assertEqual(json.loads(body)["error"]["code"], code)
        self.assertEqual(headers.get("connection"), "close")
        self.assertTrue(closed, "the connection should end after a refusal")
        return headers

    # -- memory: bodies over the limit are never read -------------------------

    def test_eight_huge_reports_answered_413_without_reading_their_bodies(self):
        for _ in range(20):  # warm up: pages, a report, the allocator
            self.reg.request("GET", "/c/HB0100000123")
        idle_kb = rss_kb(self.reg.proc.pid)
        results = [None] * 8
        peak = {"kb": idle_kb}
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                peak["kb"] = max(peak["kb"], rss_kb(self.reg.proc.pid))
                time.sleep(0.02)

        def attack(i):
            chunk = b"text=" + b"a" * 65531
            s = self.connect()
            s.setblocking(False)
            reply, sent = b"", 0
            try:
                s.sendall(self.head("POST", "/c/HB0100000123/report", 100000000,
                                    extra="Content-Type: application/x-www-form-urlencoded\r\n")
                          + b"category=other&" + b"a" * 1000)
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:
                    readable, writable, _ = select.select([s], [s], [], 1)
                    if readable:
                        try:
                            got = s.recv(65536)
                        except ConnectionResetError:
                            break
                        if not got:
                            break
                        reply += got
                    elif writable:
                        try:
                            sent += s.send(chunk)
                        except (BrokenPipeError, ConnectionResetError):
                            pass
                results[i] = (reply, sent)
            finally:
                s.close()

        watcher = threading.Thread(target=watch)
        watcher.start()
        attackers = [threading.Thread(target=attack, args=(i,)) for i in range(8)]
        for t in attackers:
            t.start()
        for t in attackers:
            t.join(60)
        stop.set()
        watcher.join()
        for i, (reply, sent) in enumerate(results):
            status, headers, body = parse_answer(reply)
            self.assertEqual(status, 413, "attacker %d: %r" % (i, reply[:200]))
            self.assertEqual(json.loads(body)["error"]["code"], "TOO_LARGE")
            self.assertIn("8192", json.loads(body)["error"]["message"])
            # The registry stopped taking bytes: far fewer than declared got in.
            self.assertLess(sent, 100000000 // 4, "attacker %d" % i)
        grown_mb = (peak["kb"] - idle_kb) / 1024
        self.assertLess(grown_mb, 50, "RSS grew by %.1f MB (idle %.1f MB, peak %.1f MB)"
                        % (grown_mb, idle_kb / 1024, peak["kb"] / 1024))
        # And the registry still answers.
        status, _ = self.reg.request("GET", "/v1/policy", token=self.admin)
        self.assertEqual(status, 200)

    # -- each route's limit at its boundary -------------------------------------

    def test_public_report_limit_boundary(self):
        body = b"category=other&text=" + b"a" * (PUBLIC_LIMIT - 20)
        self.assertEqual(len(body), PUBLIC_LIMIT)
        form = "Content-Type: application/x-www-form-urlencoded\r\n"
        status, _, _, _ = self.send_and_answer(
            self.head("POST", "/c/HB0100000123/report", len(body), extra=form, close=True)
            + body)
        self.assertEqual(status, 422)  # taken, and refused for its 8,172-character text
        self.assert_refused(
            self.head("POST", "/c/HB0100000123/report", len(body) + 1, extra=form) + body + b"a",
            413, "TOO_LARGE")

    def test_api_limit_boundary(self):
        body = b'{"code": "' + b"A" * (API_LIMIT - 12) + b'"}'
        self.assertEqual(len(body), API_LIMIT)
        status, _, answer, _ = self.send_and_answer(
            self.head("POST", "/v1/cylinders", len(body), token=self.admin, close=True) + body)
        self.assertNotEqual(status, 413, answer[:200])
        self.assertIn(status, (400, 422))
        self.assert_refused(
            self.head("POST", "/v1/cylinders", len(body) + 1, token=self.admin) + body + b" ",
            413, "TOO_LARGE")

    def test_batch_limit_from_the_head_alone(self):
        # Declared, not sent: the head is answered at once.
        headers = self.assert_refused(
            self.head("POST", "/v1/cylinders/batch", BATCH_LIMIT + 1, token=self.admin),
            413, "TOO_LARGE")
        self.assertEqual(headers.get("cache-control"), "no-store")
        # A role that may not call the route, a forged token, none: the public limit.
        for token in (self.courier, "pm_forged", None):
            self.assert_refused(
                self.head("POST", "/v1/cylinders/batch", PUBLIC_LIMIT + 1, token=token),
                413, "TOO_LARGE")
        # Within the public limit the route answers as it always has.
        status, _, _, _ = self.send_and_answer(
            self.head("POST", "/v1/cylinders/batch", 2, token=self.courier, close=True) + b"{}")
        self.assertEqual(status, 403)

    def test_pipelined_request_over_the_limit_answered_after_the_one_before(self):
        first = self.head("GET", "/v1/policy", token=self.admin)
        second = self.head("POST", "/v1/cylinders", API_LIMIT + 1, token=self.admin)
        self.assert_two_answers(first + second, 200, 413)

    def test_chunked_body_refused_before_a_chunk_is_read(self):
        self.assert_refused(
            self.head("POST", "/v1/cylinders/batch", token=self.admin,
                      extra="Transfer-Encoding: chunked\r\n"),
            411, "LENGTH_REQUIRED")
        # Chunks sent anyway, far over the limit, are not read either.
        chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"x" * 64 * 1024)
        self.assert_refused(
            self.head("POST", "/c/HB0100000123/report",
                      extra="Transfer-Encoding: chunked\r\n") + chunk * 4,
            411, "LENGTH_REQUIRED")

    def test_bytes_beyond_an_untruthful_length_are_a_head_refused_at_32_kib(self):
        # Content-Length says 15; 200 kB follow. The 15 bytes are the report (taken,
        # and answered); the rest is read as the next request's head, and refused
        # once it passes 32 KiB without ending: never buffered as a body. (Bytes
        # that cannot start a request line are refused by RESTinio's parser at
        # once, with the connection closed and no answer.)
        body = b"category=other&" + b"GET /" + b"a" * 200000
        form = "Content-Type: application/x-www-form-urlencoded\r\n"
        self.assert_two_answers(
            self.head("POST", "/c/HB0199999999/report", 15, extra=form) + body, 201, 431)

    # -- heads --------------------------------------------------------------------

    def test_head_trickled_one_byte_a_second_is_closed(self):
        with self.connect() as s:
            started = time.monotonic()
            data = self.head("GET", "/v1/policy", token=self.admin, extra="X-Slow: "
                             + "z" * 100 + "\r\n")
            reply = b""
            closed = False
            for byte in data:
                try:
                    s.sendall(bytes([byte]))
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                readable, _, _ = select.select([s], [], [], 1.0)
                if readable:
                    reply, closed = read_until_closed(s, LINGER + 5)
                    break
            elapsed = time.monotonic() - started
        status, headers, body = parse_answer(reply)
        self.assertEqual(status, 408, reply[:300])
        self.assertEqual(json.loads(body)["error"]["code"], "TIMEOUT")
        self.assertTrue(closed)
        # Closed after the head's 10 s, not after RESTinio's 60 s for a whole request.
        self.assertGreaterEqual(elapsed, HEAD_TIME - 1)
        self.assertLess(elapsed, HEAD_TIME + LINGER + 10)

    def test_body_trickled_is_closed_with_the_whole_request_limit(self):
        # A head at once, then its body one byte every 2 s: RESTinio's limit for a
        # whole request (60 s from when the connection began to wait) closes it.
        with self.connect() as s:
            started = time.monotonic()
            s.sendall(self.head("POST", "/v1/fill-checks", 1000, token=self.station))
            closed = False
            while time.monotonic() - started < WHOLE_REQUEST_TIME + 30:
                readable, _, _ = select.select([s], [], [], 2.0)
                if readable:
                    _, closed = read_until_closed(s, 5)
                    break
                try:
                    s.sendall(b" ")
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
            elapsed = time.monotonic() - started
        self.assertTrue(closed)
        self.assertGreaterEqual(elapsed, WHOLE_REQUEST_TIME - 2)
        self.assertLess(elapsed, WHOLE_REQUEST_TIME + 15)

    def test_head_over_32_kib_refused(self):
        self.assert_refused(
            self.head("GET", "/v1/policy", token=self.admin,
                      extra="X-Pad: " + "p" * (32 * 1024) + "\r\n"),
            431, "TOO_LARGE")

    def test_keep_alive_goes_on_after_accepted_requests(self):
        conn = self.reg.connection()
        try:
            for _ in range(3):
                status, _, h = conn.request("GET", "/v1/policy", token=self.admin)
                self.assertEqual(status, 200)
        finally:
            conn.close()

    # -- headers ------------------------------------------------------------------

    def test_api_answers_are_not_stored_nor_sniffed(self):
        conn = self.reg.connection()
        try:
            for method, path, token, status in (
                    ("GET", "/v1/policy", self.admin, 200),
                    ("GET", "/v1/cylinders/HB0199999999", self.admin, 404),
                    ("GET", "/v1/policy", None, 401),
                    ("GET", "/v1/nothing", self.admin, 404),
                    ("DELETE", "/v1/policy", self.admin, 405),
                    ("POST", "/v1/cylinders", self.courier, 403)):
                got, _, h = conn.request(method, path, token=token, retry=True)
                self.assertEqual(got, status, path)
                h = {k.lower(): v for k, v in h.items()}
                self.assertEqual(h.get("cache-control"), "no-store", path)
                self.assertEqual(h.get("x-content-type-options"), "nosniff", path)
        finally:
            conn.close()

    def test_public_page_and_pages_are_not_sniffed(self):
        conn = self.reg.connection()
        try:
            for path in ("/c/HB0100000123", "/c/%00bad", "/console/", "/nowhere"):
                _, _, h = conn.request("GET", path, retry=True)
                h = {k.lower(): v for k, v in h.items()}
                self.assertEqual(h.get("x-content-type-options"), "nosniff", path)
                # One header, not two (the pages set their own).
                self.assertNotIn(",", h.get("x-content-type-options"), path)
        finally:
            conn.close()

    # -- the label reader's queue and rate -----------------------------------------

    def scan(self, data, token, results=None, i=None):
        conn = self.reg.connection(timeout=120)
        try:
            got = conn.request("POST", "/v1/scan/image", raw=data, token=token,
                               headers={"Content-Type": "image/png"})
        finally:
            conn.close()
        if results is not None:
            results[i] = got
        return got

    def test_photos_beyond_the_queue_refused_503_while_fill_checks_answer(self):
        photo = blank_png(7000)
        self.assertLess(len(photo), 1 << 20)
        # More than the decoders and the queue hold together, whatever the cores.
        workers = max(1, (os.cpu_count() or 1) // 4)
        count = workers + self.PHOTOS_WAITING + 4
        results = [None] * count
        senders = [threading.Thread(target=self.scan, args=(photo, self.courier, results, i))
                   for i in range(count)]
        for t in senders:
            t.start()
        time.sleep(0.3)  # the photos are in; the decoders are busy
        status, check = self.reg.request(
            "POST", "/v1/fill-checks", token=self.station,
            body={"station_id": "ST-E", "operator_id": "OP-E", "code": "HB0100000123"})
        self.assertEqual(status, 200, check)
        self.assertIn(check["decision"], ("allow", "block"))
        for t in senders:
            t.join(300)
        statuses = sorted(r[0] for r in results)
        refused = [r for r in results if r[0] == 503]
        read = [r for r in results if r[0] == 422]
        self.assertEqual(len(refused) + len(read), count, statuses)
        self.assertGreaterEqual(len(refused), 1, statuses)
        self.assertGreaterEqual(len(read), 1, statuses)
        for status, body, headers in refused:
            self.assertEqual(body["error"]["code"], "UNAVAILABLE", body)
            self.assertEqual({k.lower(): v for k, v in headers.items()}.get("retry-after"), "2")
        for status, body, headers in read:
            self.assertEqual(body["error"]["code"], "NO_CODE", body)

    def test_photos_per_token_rate(self):
        for i in range(self.PHOTOS_PER_MINUTE):
            status, body, _ = self.scan(b"not a photo", self.courier2)
            self.assertEqual(status, 422, (i, body))
        status, body, headers = self.scan(b"not a photo", self.courier2)
        self.assertEqual(status, 429, body)
        self.assertEqual(body["error"]["code"], "TOO_MANY_REQUESTS")
        retry = int({k.lower(): v for k, v in headers.items()}["retry-after"])
        self.assertTrue(1 <= retry <= 61, retry)
        # Another token has a window of its own.
        status, body, _ = self.scan(b"not a photo", self.courier)
        self.assertNotEqual(status, 429, body)


if __name__ == "__main__":
    BINARY = take_binary_argument()
    unittest.main()
