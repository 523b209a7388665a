"""HTTPS on the registry itself: serve --tls-cert FILE --tls-key FILE.

Run: python3 registry_tls_test.py /path/to/pingma-registry [unittest args]

Certificates are made here with the openssl program. The registry is spoken to by
programs it did not write: curl, openssl s_client and Python's ssl module. What must
hold: TLS 1.2 and 1.3 only, with forward-secret suites; a client that trusts another
CA refuses it; SIGHUP puts a new certificate in use for new connections while the
listener, the process and the connections already open stay; a pair that cannot be
used is refused at start and, on SIGHUP, leaves the pair before in use; a client that
never makes its handshake is closed; one that speaks plain HTTP is told to use HTTPS.
"""

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest
from datetime import datetime, timezone

from registry_harness import Connection, Registry, take_binary_argument

BINARY = None


def make_certificate(folder, name, days=30, cn="localhost"):
    """A self-signed certificate for localhost and 127.0.0.1, and its key (0600)."""
    cert = os.path.join(folder, name + ".crt")
    key = os.path.join(folder, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", str(days), "-subj", "/CN=" + cn,
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    os.chmod(key, 0o600)
    return cert, key


def not_after(cert):
    """The certificate's expiry as Unix time, read by openssl."""
    out = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-enddate"],
                         check=True, capture_output=True, text=True).stdout.strip()
    when = datetime.strptime(out.split("=", 1)[1], "%b %d %H:%M:%S %Y %Z")
    return int(when.replace(tzinfo=timezone.utc).timestamp())


def peer_common_name(port, cafile):
    """The CN of the certificate a new connection is offered."""
    context = ssl.create_default_context(cafile=cafile)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            subject = dict(item[0] for item in tls.getpeercert()["subject"])
            return subject["commonName"]


class TlsCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pingma-tls-test-")
        # The files serve reads; each test replaces their contents as a site would.
        self.cert = os.path.join(self.dir, "registry.crt")
        self.key = os.path.join(self.dir, "registry.key")
        self.first = make_certificate(self.dir, "first", cn="first")
        self.second = make_certificate(self.dir, "second", cn="second")
        self.place(self.first)
        self.reg = Registry(BINARY)
        self.reg.ssl_context = ssl.create_default_context(cafile=self.first[0])

    def tearDown(self):
        self.reg.stop_and_remove(self.dir)

    def place(self, pair):
        shutil.copyfile(pair[0], self.cert)
        shutil.copyfile(pair[1], self.key)
        os.chmod(self.key, 0o600)

    def start(self, *extra):
        self.reg.start(extra_args=["--tls-cert", self.cert, "--tls-key", self.key] + list(extra))
        self.url = "https://127.0.0.1:%d" % self.reg.port

    def curl(self, *args):
        return subprocess.run(["curl", "--silent", "--show-error", "--max-time", "20",
                               "--output", "/dev/null", "--write-out", "%{http_code}"]
                              + list(args), capture_output=True, text=True)

    def s_client(self, *args):
        return subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % self.reg.port,
                               "-servername", "localhost"] + list(args),
                              input="", capture_output=True, text=True, timeout=30)

    def sighup_and_wait_for(self, said):
        """Sends SIGHUP and waits until serve's stderr says `said` (a regex)."""
        before = len(self.reg.stderr_tail(100000))
        self.reg.proc.send_signal(signal.SIGHUP)
        end = time.monotonic() + 20
        while time.monotonic() < end:
            text = self.reg.stderr_tail(100000)[before:]
            if re.search(said, text):
                return text
            time.sleep(0.05)
        self.fail("serve did not say %r after SIGHUP; stderr: %s"
                  % (said, self.reg.stderr_tail()))


class Protocols(TlsCase):
    def test_curl_with_the_ca_file_gets_answers(self):
        self.start()
        run = self.curl("--cacert", self.first[0], self.url + "/v1/cylinders/HB0100000001")
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(run.stdout, "401")  # an answer of the API: no token sent
        run = self.curl("--cacert", self.first[0], self.url + "/c/HB0100000001")
        self.assertEqual((run.returncode, run.stdout), (0, "404"), run.stderr)

    def test_a_client_that_trusts_another_ca_refuses_the_registry(self):
        self.start()
        run = self.curl("--cacert", self.second[0], self.url + "/v1/cylinders/X")
        self.assertEqual(run.returncode, 60, run.stderr)  # peer certificate cannot be verified
        run = self.s_client("-CAfile", self.second[0], "-verify_return_error")
        self.assertNotEqual(run.returncode, 0)
        self.assertIn("certificate verify failed", run.stdout + run.stderr)

    def test_tls_1_2_and_1_3_only(self):
        self.start()
        for version, protocol in (("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")):
            run = self.s_client(version, "-CAfile", self.first[0], "-verify_return_error")
            self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
            self.assertIn("New, %s, Cipher is" % protocol, run.stdout)
            self.assertIn("Verify return code: 0 (ok)", run.stdout)
        # TLS 1.2 only with forward-secret AEAD suites.
        run = self.s_client("-tls1_2", "-CAfile", self.first[0])
        cipher = re.search(r"Cipher is (\S+)", run.stdout).group(1)
        self.assertRegex(cipher, r"^ECDHE-RSA-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)$")
        run = self.s_client("-tls1_2", "-cipher", "AES128-SHA256")  # RSA key exchange
        self.assertNotEqual(run.returncode, 0, run.stdout)
        # Older protocols: OpenSSL must be allowed to offer them (security level 0).
        for version in ("-tls1_1", "-tls1"):
            run = self.s_client(version, "-cipher", "DEFAULT@SECLEVEL=0")
            self.assertNotEqual(run.returncode, 0, version + ": " + run.stdout)
            self.assertIn("Cipher is (NONE)", run.stdout)  # no session
        run = self.curl("--cacert", self.first[0], "--tlsv1.1", "--tls-max", "1.1",
                        "--ciphers", "DEFAULT@SECLEVEL=0", self.url + "/")
        self.assertEqual(run.returncode, 35, run.stderr)  # the handshake failed

    def test_the_edge_limits_hold_through_tls(self):
        # A head that declares a body far over any route's limit is answered 413 at
        # once, through TLS, without the body being sent (edge_socket.h).
        self.start()
        context = ssl.create_default_context(cafile=self.first[0])
        with socket.create_connection(("127.0.0.1", self.reg.port), timeout=30) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"POST /v1/cylinders/batch HTTP/1.1\r\nHost: localhost\r\n"
                            b"Content-Type: application/json\r\n"
                            b"Content-Length: 1000000000000\r\n\r\n")
                answer = b""
                while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                    chunk = tls.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
        self.assertTrue(answer.startswith(b"HTTP/1.1 413 "), answer[:200])
        self.assertIn(b'"TOO_LARGE"', answer)
        self.assertIn(b"Connection: close", answer)

    def test_plain_http_on_the_https_port_is_told_to_use_https(self):
        self.start()
        run = subprocess.run(["curl", "--silent", "--show-error", "--max-time", "20",
                              "-H", "Authorization: Bearer pm_x", "--json", '{"a": 1}',
                              "http://127.0.0.1:%d/v1/fill-checks" % self.reg.port],
                             capture_output=True, text=True)
        self.assertEqual(run.returncode, 0, run.stderr)
        answer = json.loads(run.stdout)
        self.assertEqual(answer["error"]["code"], "HTTPS_REQUIRED")
        self.assertIn("use https://", answer["error"]["message"])
        conn = Connection("127.0.0.1", self.reg.port)  # Python's plain HTTP client
        try:
            status, body, headers = conn.request("GET", "/c/HB0100000001")
        finally:
            conn.close()
        self.assertEqual((status, body["error"]["code"]), (400, "HTTPS_REQUIRED"))
        self.assertEqual(headers.get("Connection"), "close")
        # HTTPS goes on as before.
        status, _ = self.reg.request("GET", "/v1/cylinders/X")
        self.assertEqual(status, 401)

    def test_a_client_that_never_makes_its_handshake_is_closed(self):
        self.start()
        silent = socket.create_connection(("127.0.0.1", self.reg.port), timeout=60)
        try:
            # Others are served meanwhile.
            status, _ = self.reg.request("GET", "/v1/cylinders/X")
            self.assertEqual(status, 401)
            # The handshake, like a request's head, must end within 10 s.
            self.assertEqual(silent.recv(1), b"")
        finally:
            silent.close()

    def test_the_metrics_show_when_the_certificate_expires(self):
        self.start("--metrics-listen", "127.0.0.1:0")
        conn = Connection("127.0.0.1", self.reg.metrics_port)
        try:
            status, text, _ = conn.request("GET", "/metrics")
        finally:
            conn.close()
        self.assertEqual(status, 200)
        gauge = re.search(r"^pingma_tls_certificate_expiry_timestamp_seconds (\d+)$", text,
                          re.MULTILINE)
        self.assertIsNotNone(gauge, text[:2000])
        self.assertEqual(int(gauge.group(1)), not_after(self.first[0]))


class Reload(TlsCase):
    def test_sighup_puts_a_new_certificate_in_use_without_dropping_the_listener(self):
        self.start()
        pid = self.reg.proc.pid
        self.assertEqual(peer_common_name(self.reg.port, self.first[0]), "first")
        # A keep-alive connection opened with the first certificate.
        kept = Connection("127.0.0.1", self.reg.port, ssl_context=self.reg.ssl_context)
        self.assertEqual(kept.request("GET", "/v1/cylinders/X")[0], 401)

        # New connections, one after another, all through the reloads.
        both = ssl.create_default_context(cafile=self.first[0])
        both.load_verify_locations(cafile=self.second[0])
        stop = threading.Event()
        outcomes = {"answered": 0, "failed": []}

        def hammer():
            while not stop.is_set():
                conn = Connection("127.0.0.1", self.reg.port, timeout=10, ssl_context=both)
                try:
                    if conn.request("GET", "/v1/cylinders/X")[0] == 401:
                        outcomes["answered"] += 1
                    else:
                        outcomes["failed"].append("not 401")
                except Exception as e:  # noqa: BLE001 - every failure is the finding
                    outcomes["failed"].append(repr(e))
                finally:
                    conn.close()

        worker = threading.Thread(target=hammer)
        worker.start()
        try:
            time.sleep(0.5)
            for pair, name in ((self.second, "second"), (self.first, "first"),
                               (self.second, "second")):
                self.place(pair)
                said = self.sighup_and_wait_for(r"SIGHUP: certificate .* read again")
                self.assertIn("CN=" + name, said)
                self.assertEqual(peer_common_name(self.reg.port, pair[0]), name)
                time.sleep(0.3)
        finally:
            stop.set()
            worker.join(30)
        self.assertEqual(outcomes["failed"], [])
        self.assertGreater(outcomes["answered"], 10)
        # The connection made before the reloads goes on with its session.
        self.assertEqual(kept.request("GET", "/v1/cylinders/X")[0], 401)
        kept.close()
        self.assertTrue(self.reg.running)
        self.assertEqual(self.reg.proc.pid, pid)
        # A client that trusts only the first CA now refuses the registry.
        run = self.curl("--cacert", self.first[0], self.url + "/v1/cylinders/X")
        self.assertEqual(run.returncode, 60, run.stderr)

    def test_a_pair_that_cannot_be_used_leaves_the_one_in_use(self):
        self.start()
        # A key that is not the certificate's: the certificate replaced, the key not yet.
        shutil.copyfile(self.second[0], self.cert)
        said = self.sighup_and_wait_for(r"stays in use")
        self.assertIn("is not the key of the certificate", said)
        # A key others can read.
        self.place(self.second)
        os.chmod(self.key, 0o644)
        said = self.sighup_and_wait_for(r"stays in use")
        self.assertIn("can be read by every user", said)
        os.chmod(self.key, 0o600)
        # No certificate at all.
        os.remove(self.cert)
        said = self.sighup_and_wait_for(r"stays in use")
        self.assertIn("No such file", said)
        # Not a certificate.
        with open(self.cert, "w") as f:
            f.write("not a certificate\n")
        said = self.sighup_and_wait_for(r"stays in use")
        self.assertIn("holds no usable PEM certificate", said)
        # Through all of it, the first certificate was in use.
        self.assertEqual(peer_common_name(self.reg.port, self.first[0]), "first")
        self.assertTrue(self.reg.running)
        # Mended, it is taken, with a key its group may read (root:pingma 0640, as the
        # README installs it): only others are kept out.
        self.place(self.second)
        os.chmod(self.key, 0o640)
        self.sighup_and_wait_for(r"read again")
        self.assertEqual(peer_common_name(self.reg.port, self.second[0]), "second")

    def test_sighup_without_https_is_no_stop(self):
        self.reg.ssl_context = None
        self.reg.start()
        self.sighup_and_wait_for(r"nothing to read again")
        self.assertEqual(self.reg.request("GET", "/v1/cylinders/X")[0], 401)


class Refusals(TlsCase):
    def serve(self, *args):
        return subprocess.run([BINARY, "serve", "--db", os.path.join(self.dir, "r.db"),
                               "--listen", "127.0.0.1:0"] + list(args),
                              capture_output=True, text=True, timeout=30)

    def assert_refused(self, run, rc, message):
        self.assertEqual(run.returncode, rc, run.stderr)
        self.assertEqual(run.stdout, "")  # never listened
        self.assertIn(message, run.stderr)
        self.assertEqual(len(run.stderr.strip().splitlines()), 1, run.stderr)

    def test_serve_refuses_a_pair_it_cannot_use_and_opens_nothing(self):
        self.assert_refused(self.serve("--tls-cert", self.cert), 2, "--tls-cert requires --tls-key")
        self.assert_refused(self.serve("--tls-cert", self.cert, "--tls-key", self.second[1]), 2,
                            "is not the key of the certificate")
        os.chmod(self.key, 0o604)
        self.assert_refused(self.serve("--tls-cert", self.cert, "--tls-key", self.key), 2,
                            "can be read by every user of this machine (mode 0604)")
        self.assert_refused(self.serve("--tls-cert", self.key, "--tls-key", self.second[1]), 2,
                            "holds no usable PEM certificate")
        self.assert_refused(
            self.serve("--tls-cert", os.path.join(self.dir, "none.crt"), "--tls-key",
                       self.second[1]), 2, "No such file or directory")
        self.assertFalse(os.path.exists(os.path.join(self.dir, "r.db")))


if __name__ == "__main__":
    BINARY = take_binary_argument()
    unittest.main(verbosity=2)
