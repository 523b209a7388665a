"""`pingma-registry serve --config FILE` (API.md, "Programs"): a TOML file whose keys are
serve's flags (with _ for -), the command line winning over the file; the example
installed as /etc/pingma/registry.toml names every flag and runs as it is; a key that
is no flag, a TOML syntax error, a value of the wrong kind or out of range, and a
missing file are bad usage (exit 2) that says what was wrong, and start nothing.

    registry_config_test.py SOURCE_DIR /path/to/pingma-registry
"""

import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
SOURCE_DIR = sys.argv.pop(1)
from registry_harness import Registry, take_binary_argument  # noqa: E402

BINARY = None  # set in __main__
EXAMPLE = os.path.join(SOURCE_DIR, "registry", "etc", "registry.toml")


class ConfigTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="pingma-config-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def serve(self, config, *args):
        return subprocess.run([BINARY, "serve", "--config", config, *args], capture_output=True,
                              text=True, timeout=30, check=False, cwd=self.tmp)

    def public_page(self, reg):
        status, page = reg.request("GET", "/c/NO-SUCH-CODE")
        self.assertEqual(status, 404)
        return page if isinstance(page, str) else repr(page)

    def test_example_names_every_flag(self):
        help_text = subprocess.run([BINARY, "serve", "--help"], capture_output=True, text=True,
                                   check=True).stdout
        flags = set(re.findall(r"^\s+--([a-z0-9-]+)", help_text, re.M)) - {"help", "config"}
        with open(EXAMPLE, encoding="utf-8") as f:
            keys = set(re.findall(r"^#? ?([a-z0-9_]+) = ", f.read(), re.M))
        self.assertEqual(keys, {flag.replace("-", "_") for flag in flags})

    def test_example_runs(self):
        # Every key the example has, commented or not, taken as it is; the command line
        # moves the store, the ports, the secrets and the certificate into the test's
        # folder, and the policy file (which a site writes itself) is left out.
        with open(EXAMPLE, encoding="utf-8") as f:
            text = re.sub(r"^# ([a-z0-9_]+ = )", r"\1", f.read(), flags=re.M)
        text = re.sub(r"^policy = .*$", "", text, flags=re.M)
        text = re.sub(r'^db = "postgresql.*$', "", text, flags=re.M)
        config = self.write("registry.toml", text)
        secrets = os.path.join(self.tmp, "secrets")
        # The example's certificate, made here.
        cert, key = os.path.join(self.tmp, "tls.crt"), os.path.join(self.tmp, "tls.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                        key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True,
                       capture_output=True)
        os.chmod(key, 0o600)
        reg = Registry(BINARY, workdir=os.path.join(self.tmp, "reg"))
        reg.ssl_context = ssl.create_default_context(cafile=cert)
        os.makedirs(reg.workdir)
        try:
            reg.start(extra_args=("--config", config, "--secrets-dir", secrets,
                                  "--jt808-listen", "127.0.0.1:0",
                                  "--metrics-listen", "127.0.0.1:0",
                                  "--tls-cert", cert, "--tls-key", key))
            self.assertIn("12315", self.public_page(reg), "the example's hotline")
            self.assertIsNotNone(reg.jt808_port)
            self.assertIsNotNone(reg.metrics_port)
        finally:
            reg.stop_and_remove()
        self.assertTrue(os.path.exists(os.path.join(secrets, "customer-hash.key")))

    def test_the_file_gives_what_the_command_line_does_not(self):
        db = os.path.join(self.tmp, "from-file.db")
        config = self.write("registry.toml",
                            'db = "%s"\nlisten = "nonsense"\nhotline = "0370-99999"\n'
                            'threads = 2\n' % db)
        reg = Registry(BINARY, workdir=os.path.join(self.tmp, "reg"))
        os.makedirs(reg.workdir)
        try:
            # The harness gives --db and --listen: they win over the file's.
            reg.start(extra_args=("--config", config))
            self.assertIn("0370-99999", self.public_page(reg))
        finally:
            reg.stop_and_remove()
        self.assertFalse(os.path.exists(db), "the command line's --db won")
        # Without the command line's --db, the file's is the store.
        proc = subprocess.Popen([BINARY, "serve", "--config", config, "--listen", "127.0.0.1:0"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                cwd=self.tmp)
        try:
            self.assertRegex(proc.stdout.readline(), r"^listening on http://127\.0\.0\.1:\d+$")
        finally:
            proc.terminate()
            self.assertEqual(proc.wait(20), 0)
        self.assertTrue(os.path.exists(db), "the file's db")
        # A value the command line gives is checked as its own.
        r = self.serve(config, "--listen", "127.0.0.1:0", "--threads", "999")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--threads: Value 999", r.stderr)

    def test_bad_files_are_bad_usage_and_start_nothing(self):
        db = os.path.join(self.tmp, "never.db")
        cases = {
            "unknown key": ('db = "%s"\nsecretz_dir = "x"\n' % db,
                            r"secretz_dir is no key of serve \(its keys: db, listen, .*secrets_dir"),
            "syntax": ('db = "%s"\nlisten = \n' % db, r"line 2"),
            "a table": ('db = "%s"\n[serve]\nlisten = "x"\n' % db, r"serve is no key of serve"),
            "kind": ('db = "%s"\nlisten = { host = "x" }\n' % db,
                     r"listen must be a string, a number, true or false"),
            "range": ('db = "%s"\nthreads = 999\n' % db, r"--threads: .*999"),
            "choice": ('db = "%s"\nmap_tiles = "https://t/{z}/{x}/{y}.png"\n'
                       'map_tiles_datum = "bd09"\n' % db, r"bd09"),
            "no store": ('listen = "127.0.0.1:0"\n', r"--db is required"),
        }
        for name, (text, said) in cases.items():
            with self.subTest(name):
                r = self.serve(self.write("bad.toml", text))
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertEqual(r.stdout, "")
                self.assertRegex(r.stderr, r"^pingma-registry: .*" + said)
                self.assertEqual(r.stderr.count("\n"), 1, "one line")
                self.assertFalse(os.path.exists(db))
        r = self.serve(os.path.join(self.tmp, "missing.toml"))
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertRegex(r.stderr, r"missing\.toml: cannot read it: No such file")


if __name__ == "__main__":
    BINARY = take_binary_argument()
    unittest.main(verbosity=2)
