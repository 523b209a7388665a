"""Every program's --version (API.md, "Programs"): one line on stdout, exit 0, naming
the program, the release in CMakeLists.txt and the commit built (git's HEAD when the
sources are a git checkout). --help offers it; a bad flag is still bad usage.

    programs_version_test.py SOURCE_DIR PROGRAM...
"""

import os
import re
import subprocess
import sys
import unittest

SOURCE_DIR = sys.argv[1]
PROGRAMS = sys.argv[2:]
del sys.argv[1:]


def release():
    with open(os.path.join(SOURCE_DIR, "CMakeLists.txt"), encoding="utf-8") as f:
        return re.search(r"project\(pingma VERSION (\d+\.\d+\.\d+)", f.read()).group(1)


def head():
    r = subprocess.run(["git", "-C", SOURCE_DIR, "rev-parse", "--short=12", "HEAD"],
                       capture_output=True, text=True, check=False)
    return r.stdout.strip() if r.returncode == 0 else None


def run(program, *args):
    return subprocess.run([program, *args], capture_output=True, text=True, timeout=30,
                          check=False)


class VersionTest(unittest.TestCase):
    def test_version_line(self):
        self.assertEqual(len(PROGRAMS), 5)
        commit = os.environ.get("PINGMA_COMMIT") or head() or "unknown"
        for program in PROGRAMS:
            name = os.path.basename(program)
            with self.subTest(program=name):
                r = run(program, "--version")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stderr, "")
                self.assertRegex(r.stdout, r"^%s %s \(commit %s(-dirty)?\)\n$"
                                 % (re.escape(name), re.escape(release()), re.escape(commit)))

    def test_help_offers_it(self):
        for program in PROGRAMS:
            with self.subTest(program=os.path.basename(program)):
                r = run(program, "--help")
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("--version", r.stdout)

    def test_bad_flag_is_bad_usage(self):
        for program in PROGRAMS:
            name = os.path.basename(program)
            with self.subTest(program=name):
                r = run(program, "--versions")
                self.assertEqual(r.returncode, 2)
                self.assertEqual(r.stdout, "")
                # The first thing wrong: the unknown flag or a required one missing.
                self.assertRegex(r.stderr, r"^%s: [^\n]+ \(see --help\)\n$" % re.escape(name))


if __name__ == "__main__":
    unittest.main(verbosity=2)
