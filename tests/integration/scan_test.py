"""Process-level tests of pingma-scan (API.md "Scanner programs").

Run: python3 scan_test.py /path/to/pingma-scan /path/to/pingma-label [unittest args]

Inputs are made by programs this project did not write where they can be: QR images
by qrencode and ImageMagick, a serial line by socat's pseudo-terminal pair, readers
by Python sockets. Each device mode is followed as a filling position would follow
it, and stopped with SIGTERM.
"""

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

SCAN = None  # set in __main__
LABEL = None
CONVERT = "/usr/bin/convert"  # the real ImageMagick: /usr/local/bin/convert may be a stand-in
URL = "https://pingma.example/c/HB0100000123"
DEADLINE = 20  # seconds to wait for anything a process should print; no test asserts a time


def run(args, stdin=None):
    r = subprocess.run(args, input=stdin, capture_output=True, timeout=120)
    return r.returncode, r.stdout.decode("utf-8"), r.stderr.decode("utf-8", "replace")


def lines(stdout):
    return [json.loads(line) for line in stdout.splitlines() if line]


def qrencode(path, text):
    subprocess.run(["qrencode", "-l", "H", "-s", "6", "-o", path, text], check=True)


class Follower:
    """pingma-scan following a device; its stdout and stderr lines are queued."""

    def __init__(self, args):
        self.proc = subprocess.Popen([SCAN] + args, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.out, self.err = queue.Queue(), queue.Queue()
        self.err_lines = []
        for stream, q in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, q), daemon=True).start()

    @staticmethod
    def _pump(stream, q):
        for raw in stream:
            q.put(raw.decode("utf-8", "replace").rstrip("\n"))
        q.put(None)

    def scan(self):
        line = self.out.get(timeout=DEADLINE)
        if line is None:
            raise AssertionError("pingma-scan ended: " + "\n".join(self.err_lines))
        return json.loads(line)

    def stderr_until(self, needle):
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            line = self.err.get(timeout=max(0.01, end - time.monotonic()))
            if line is None:
                break
            self.err_lines.append(line)
            if needle in line:
                return line
        raise AssertionError(f"no '{needle}' on stderr: {self.err_lines}")

    def no_scan(self, seconds):
        try:
            line = self.out.get(timeout=seconds)
        except queue.Empty:
            return True
        raise AssertionError(f"unexpected output: {line}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=DEADLINE)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return code


class Usage(unittest.TestCase):
    def test_help(self):
        code, out, _ = run([SCAN, "--help"])
        self.assertEqual(code, 0)
        for option in ("--text", "--epc", "--listen", "--connect", "--serial", "--watch"):
            self.assertIn(option, out)

    def test_bad_usage_is_exit_2_with_one_line(self):
        for args in ([], ["--bogus"], ["--listen", "127.0.0.1:0", "x.png"],
                     ["--listen", "127.0.0.1:0", "--watch", "/tmp"], ["--rts", "maybe"],
                     ["--listen", "no-port"], ["--serial", ""], ["--dedup-ms", "-5"]):
            with self.subTest(args=args):
                code, out, err = run([SCAN] + args)
                self.assertEqual(code, 2, err)
                self.assertEqual(out, "")
                self.assertEqual(len(err.strip().splitlines()), 1, err)
                self.assertTrue(err.startswith("pingma-scan: "), err)


class Texts(unittest.TestCase):
    def test_every_scan_form(self):
        cases = [
            ("--text", " hb0100000123 ", "code", "HB0100000123"),
            ("--text", URL, "code", "HB0100000123"),
            ("--text", "https://pingma.example/c/?code=HB0100000123", "code", "HB0100000123"),
            ("--text", "(8003)006141411234525678", "grai", "GRAI:006141411234525678"),
            ("--text", "UID:e004015012345678", "uid", "UID:E004015012345678"),
            ("--epc", "3374257BF40C0E400000162E", "grai", "GRAI:006141411234525678"),
            ("--epc", "3074257BF7194E4000001A85", "epc", "EPC:3074257BF7194E4000001A85"),
        ]
        for flag, raw, kind, text in cases:
            with self.subTest(raw=raw):
                code, out, err = run([SCAN, flag, raw])
                self.assertEqual(code, 0, err)
                [line] = lines(out)
                self.assertEqual(list(line)[:6],
                                 ["input", "decoded", "raw", "symbology", "code", "key"])
                self.assertEqual(line["input"], flag[2:])
                self.assertEqual(line["raw"], raw if flag == "--text" else "EPC:" + raw)
                self.assertEqual(line["code"], text)
                self.assertEqual(line["key"]["kind"], kind)
                self.assertEqual(line["key"]["text"], text)

    def test_text_that_is_no_code_is_exit_1_with_the_reason(self):
        code, out, _ = run([SCAN, "--text", "HB01", "--text", "(8003)006141411234535678",
                            "--epc", "33ZZ"])
        self.assertEqual(code, 1)
        good, bad_check, bad_hex = lines(out)
        self.assertEqual(good["code"], "HB01")
        for line in (bad_check, bad_hex):
            self.assertIsNone(line["code"])
            self.assertIsNone(line["key"])
            self.assertTrue(line["error"])
        self.assertIn("check digit", bad_check["error"])

    def test_stdin_lines(self):
        data = (b"HB0100000123\r\n\r\n" + URL.encode() + b"\nnot a code!\rHB0100000123\n"
                b"\xff\xfe bad utf-8\n")
        code, out, err = run([SCAN, "-"], stdin=data)
        self.assertEqual(code, 1)  # "not a code!" is none
        got = lines(out)
        self.assertEqual([g["raw"] for g in got],
                         ["HB0100000123", URL, "not a code!", "HB0100000123"])
        self.assertEqual([g["code"] for g in got],
                         ["HB0100000123", "HB0100000123", None, "HB0100000123"])
        self.assertEqual({g["input"] for g in got}, {"stdin"})
        self.assertIn("UTF-8", err)  # the refused line is named on stderr, not printed

    def test_stdin_of_codes_only_is_exit_0(self):
        code, out, _ = run([SCAN, "-"], stdin=b"HB0100000123\nHB0100000124")
        self.assertEqual(code, 0)
        # The half line at EOF is dropped: a cut-off code could be another cylinder's.
        self.assertEqual([g["code"] for g in lines(out)], ["HB0100000123"])


class Images(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="pingma-scan-test-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir)

    def path(self, name):
        return os.path.join(self.dir, name)

    def test_images_from_other_encoders(self):
        qrencode(self.path("q.png"), URL)
        subprocess.run([CONVERT, self.path("q.png"), "-quality", "50", self.path("q.jpg")],
                       check=True)
        subprocess.run([CONVERT, self.path("q.png"), "-rotate", "33", "-negate",
                        self.path("q-neg.png")], check=True)
        subprocess.run([LABEL, "--code", "HB0100000123", "--model", "YSP35.5", "--owner",
                        "测试燃气", "--out", self.path("label.png")], check=True,
                       capture_output=True)
        files = [self.path(n) for n in ("q.png", "q.jpg", "q-neg.png", "label.png")]
        code, out, err = run([SCAN] + files)
        self.assertEqual(code, 0, err)
        got = lines(out)
        self.assertEqual([g["input"] for g in got], files)
        for g in got:
            self.assertTrue(g["decoded"])
            self.assertEqual(g["raw"], URL)
            self.assertEqual(g["symbology"], "QRCode")
            self.assertEqual(g["code"], "HB0100000123")
        self.assertEqual(got[2]["pass"], "inverted")

    def test_an_image_that_says_no_code(self):
        qrencode(self.path("shop.png"), "https://shop.example/")
        code, out, _ = run([SCAN, self.path("shop.png")])
        self.assertEqual(code, 1)
        [line] = lines(out)
        self.assertTrue(line["decoded"])
        self.assertEqual(line["raw"], "https://shop.example/")
        self.assertIsNone(line["code"])
        self.assertIn("no code", line["error"])

    def test_two_cylinders_in_one_photo_give_no_code(self):
        qrencode(self.path("a.png"), URL)
        qrencode(self.path("b.png"), "https://pingma.example/c/HB0100000456")
        subprocess.run([CONVERT, self.path("a.png"), self.path("b.png"), "+append",
                        self.path("ab.png")], check=True)
        code, out, _ = run([SCAN, self.path("ab.png")])
        self.assertEqual(code, 1)
        [line] = lines(out)
        self.assertTrue(line["decoded"])
        self.assertEqual(line["symbols"], 2)
        self.assertIsNone(line["code"])
        self.assertIn("2 cylinder codes", line["error"])

    def test_bad_files_are_refused_and_the_rest_still_read(self):
        qrencode(self.path("good.png"), URL)
        with open(self.path("good.png"), "rb") as f:
            png = f.read()
        with open(self.path("empty.png"), "wb"):
            pass
        with open(self.path("cut.png"), "wb") as f:
            f.write(png[: len(png) // 2])
        with open(self.path("notes.jpg"), "wb") as f:
            f.write(b"this is not a photo\n")
        # 30,000 x 30,000 pixels: an IHDR that says so, with its CRC made good.
        import zlib
        ihdr = bytearray(png[12:29])
        ihdr[4:12] = (30000).to_bytes(4, "big") * 2
        huge = png[:12] + bytes(ihdr) + zlib.crc32(bytes(ihdr)).to_bytes(4, "big") + png[33:]
        with open(self.path("huge.png"), "wb") as f:
            f.write(huge)
        subprocess.run([CONVERT, "-size", "64x64", "xc:white", self.path("blank.png")],
                       check=True)
        names = ["empty.png", "cut.png", "notes.jpg", "huge.png", "missing.png", "blank.png",
                 "good.png"]
        code, out, err = run([SCAN] + [self.path(n) for n in names])
        self.assertEqual(code, 1)
        got = lines(out)
        self.assertEqual(len(got), len(names), err)
        expect = ["empty", "corrupt PNG", "not a PNG or JPEG", "30000 x 30000",
                  "no file", "no QR code or barcode could be read", None]
        for name, line, says in zip(names, got, expect):
            with self.subTest(name=name):
                if says is None:
                    self.assertEqual(line["code"], "HB0100000123")
                    continue
                self.assertFalse(line["decoded"])
                self.assertIn(says, line["error"])
                self.assertNotIn("code", line)


class Devices(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pingma-scan-dev-")
        self.follower = None

    def tearDown(self):
        if self.follower:
            self.follower.stop()
        shutil.rmtree(self.dir)

    def test_listen_for_readers(self):
        f = self.follower = Follower(["--listen", "127.0.0.1:0"])
        port = int(f.stderr_until("reading 127.0.0.1:").split("127.0.0.1:")[1].split()[0])
        with socket.create_connection(("127.0.0.1", port)) as a, \
                socket.create_connection(("127.0.0.1", port)) as b:
            a.sendall(b"HB0100000123\r\n")
            first = f.scan()
            self.assertEqual(first["code"], "HB0100000123")
            self.assertTrue(first["input"].startswith("tcp 127.0.0.1:"))
            self.assertIn("at", first)
            # An RFID reader repeats its tag: within the window it is one scan.
            for _ in range(20):
                b.sendall(b"HB0100000123\n")
            b.sendall(b"EPC:3374257BF40C0E400000162E\n")
            self.assertEqual(f.scan()["code"], "GRAI:006141411234525678")
            a.sendall(b"x" * 10000 + b"\nHB0100000999\n")
            self.assertEqual(f.scan()["code"], "HB0100000999")
            f.stderr_until("4096 bytes")
        self.assertEqual(f.stop(), 0)

    def test_connect_to_a_reader_that_comes_up_late(self):
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        f = self.follower = Follower(["--connect", f"127.0.0.1:{port}"])
        f.stderr_until("reading")
        time.sleep(0.5)  # the reader is not up yet: the follower keeps dialling
        server = socket.create_server(("127.0.0.1", port))
        try:
            conn, _ = server.accept()
            conn.sendall(b"HB0100000777\n")
            self.assertEqual(f.scan()["code"], "HB0100000777")
            conn.close()
            conn, _ = server.accept()  # redialled after the drop
            conn.sendall(b"HB0100000778\n")
            self.assertEqual(f.scan()["code"], "HB0100000778")
            conn.close()
        finally:
            server.close()

    def test_serial_over_a_socat_pty_pair(self):
        a, b = os.path.join(self.dir, "a"), os.path.join(self.dir, "b")
        socat = subprocess.Popen(["socat", "-d", "-d", f"pty,raw,echo=0,link={a}",
                                  f"pty,raw,echo=0,link={b}"], stderr=subprocess.DEVNULL)
        try:
            end = time.monotonic() + DEADLINE
            while not (os.path.exists(a) and os.path.exists(b)) and time.monotonic() < end:
                time.sleep(0.05)
            f = self.follower = Follower(["--serial", b, "--baud", "115200"])
            f.stderr_until("reading")
            with open(a, "wb", buffering=0) as port:
                port.write(b"HB0100000321\r")
                self.assertEqual(f.scan()["code"], "HB0100000321")
                self.assertEqual(f.stop(), 0)
        finally:
            socat.terminate()
            socat.wait(timeout=DEADLINE)

    def test_watch_a_camera_folder(self):
        qrencode(os.path.join(self.dir, "q.png"), URL)
        f = self.follower = Follower(["--watch", self.dir])
        line = f.scan()  # the file already there is read first
        self.assertEqual(line["input"], "q.png")
        self.assertEqual(line["symbology"], "QRCode")
        self.assertEqual(line["code"], "HB0100000123")
        # A camera writes under a temporary name and renames when done.
        qrencode(os.path.join(self.dir, ".tmp-shot"), "https://pingma.example/c/HB0100000555")
        os.rename(os.path.join(self.dir, ".tmp-shot"), os.path.join(self.dir, "shot2.png"))
        self.assertEqual(f.scan()["code"], "HB0100000555")
        with open(os.path.join(self.dir, "junk.jpg"), "wb") as junk:
            junk.write(b"not a jpeg")
        f.stderr_until("junk.jpg")
        self.assertEqual(f.stop(), 0)
        self.assertEqual(sorted(os.listdir(os.path.join(self.dir, "done"))),
                         ["q.png", "shot2.png"])
        self.assertEqual(os.listdir(os.path.join(self.dir, "failed")), ["junk.jpg"])

    def test_listen_on_a_port_in_use_fails_with_the_reason(self):
        holder = socket.create_server(("127.0.0.1", 0))
        try:
            port = holder.getsockname()[1]
            code, _, err = run([SCAN, "--listen", f"127.0.0.1:{port}"])
            self.assertEqual(code, 1)
            self.assertIn("in use", err)
        finally:
            holder.close()


if __name__ == "__main__":
    SCAN, LABEL = sys.argv[1], sys.argv[2]
    unittest.main(argv=[sys.argv[0]] + sys.argv[3:], verbosity=2)
