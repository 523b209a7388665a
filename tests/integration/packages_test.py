"""The Debian packages (API.md, "Programs"; `./tools/quickstart.sh package`): CPack's
pingma-registry, pingma-station and pingma-tools, their dependencies as dpkg-shlibdeps
computed them, their files, conffiles and maintainer scripts; the systemd units
checked by `systemd-analyze verify`; and on a fresh Debian 12 root made by debootstrap
(minbase, as a newcomer's machine): `apt-get install ./pingma-*.deb`, the installed
registry run from its installed config as the pingma user, an upgrade to a newer
build that keeps the data and an edited conffile, a remove that keeps the data and
the configuration, and a purge that removes the configuration and nothing else.

    packages_test.py SOURCE_DIR BUILD_DIR
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

SOURCE_DIR, BUILD_DIR = sys.argv[1], sys.argv[2]
del sys.argv[1:3]
PACKAGES = ("pingma-registry", "pingma-station", "pingma-tools")


def run(*args, **kw):
    kw.setdefault("timeout", 1200)
    return subprocess.run(list(args), capture_output=True, text=True, check=False, **kw)


def release():
    with open(os.path.join(SOURCE_DIR, "CMakeLists.txt"), encoding="utf-8") as f:
        return re.search(r"project\(pingma VERSION (\d+\.\d+\.\d+)", f.read()).group(1)


def make_packages(into, build_release=None):
    """CPack's packages for this build in `into`: {name: path}."""
    args = ["cpack", "--config", os.path.join(BUILD_DIR, "CPackConfig.cmake"), "-G", "DEB",
            "-B", into]
    if build_release is not None:
        args += ["-D", "CPACK_DEBIAN_PACKAGE_RELEASE=%d" % build_release]
    r = run(*args, cwd=BUILD_DIR)
    assert r.returncode == 0, r.stdout + r.stderr
    found = {}
    for path in glob.glob(os.path.join(into, "*.deb")):
        found[os.path.basename(path).split("_")[0]] = path
    return found


def field(deb, name):
    return run("dpkg-deb", "-f", deb, name).stdout.strip()


def control_file(deb, name):
    r = subprocess.run("dpkg-deb --ctrl-tarfile '%s' | tar -xO ./%s" % (deb, name), shell=True,
                       capture_output=True, text=True, check=False)
    return r.stdout if r.returncode == 0 else None


def files(deb):
    lines = run("dpkg-deb", "-c", deb).stdout.splitlines()
    return {line.split()[-1].lstrip(".") for line in lines if not line.startswith("d")}


class Packages(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pingma-packages-")
        cls.debs = make_packages(os.path.join(cls.tmp, "packages"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_1_names_versions_and_dependencies(self):
        self.assertEqual(sorted(self.debs), sorted(PACKAGES))
        commits = run("git", "-C", SOURCE_DIR, "rev-list", "--count", "HEAD").stdout.strip()
        needs = {"pingma-registry": ["adduser", "libc6", "libsqlite3-0", "libpq5", "libssl3",
                                     "libstdc++6"],
                 "pingma-station": ["adduser", "libc6", "libsqlite3-0", "libmodbus5", "libcurl4",
                                    "libstdc++6"],
                 "pingma-tools": ["libc6", "libcairo2", "libzxing2", "libmodbus5"]}
        for name, deb in self.debs.items():
            with self.subTest(name):
                self.assertEqual(field(deb, "Package"), name)
                self.assertEqual(field(deb, "Version"), "%s-%s" % (release(), commits))
                self.assertEqual(field(deb, "Architecture"), "amd64")
                depends = [d.split()[0] for d in field(deb, "Depends").split(", ")]
                for lib in needs[name]:
                    self.assertIn(lib, depends)
                self.assertTrue(field(deb, "Description"))

    def test_2_files_conffiles_and_scripts(self):
        expected = {
            "pingma-registry": {"/usr/bin/pingma-registry", "/etc/pingma/registry.toml",
                                "/lib/systemd/system/pingma-registry.service"},
            "pingma-station": {"/usr/bin/pingma-station", "/etc/pingma/station.toml",
                               "/lib/systemd/system/pingma-station.service",
                               "/usr/share/pingma/profiles/bde-2007.toml",
                               "/usr/share/pingma/profiles/pingma-fill-v1.toml"},
            "pingma-tools": {"/usr/bin/pingma-scan", "/usr/bin/pingma-label",
                             "/usr/bin/pingma-scale-sim"}}
        for name, deb in self.debs.items():
            with self.subTest(name):
                self.assertEqual(files(deb), expected[name])
                conffiles = control_file(deb, "conffiles")
                etc = sorted(f for f in expected[name] if f.startswith("/etc/"))
                self.assertEqual(sorted((conffiles or "").split()), etc)
                for script in ("postinst", "prerm", "postrm"):
                    text = control_file(deb, script)
                    if name == "pingma-tools":
                        self.assertIsNone(text)
                        continue
                    self.assertIsNotNone(text, script)
                    self.assertNotIn("@", text, "every @VARIABLE@ replaced")
                    self.assertEqual(run("sh", "-n", input=text).returncode, 0, script)

    def test_2b_the_station_example_is_taken_whole(self):
        # Every key of /etc/pingma/station.toml is known: what stops a station started
        # on it outside systemd is the credential it has not got.
        r = run(os.path.join(BUILD_DIR, "station", "pingma-station"), "--config",
                os.path.join(SOURCE_DIR, "station", "etc", "station.toml"), timeout=30)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertEqual(r.stderr, "pingma-station: cannot read the token file "
                                   "/run/credentials/pingma-station.service/token\n")

    def test_3_units_verify(self):
        units = os.path.join(self.tmp, "units")
        os.makedirs(units, exist_ok=True)
        for program in ("registry", "station"):
            with open(os.path.join(SOURCE_DIR, "packaging", "pingma-%s.service" % program)) as f:
                text = f.read()
            # systemd-analyze checks that ExecStart's program is there: the build's.
            text = text.replace("/usr/bin/pingma-%s" % program,
                                os.path.join(BUILD_DIR, program, "pingma-" + program))
            with open(os.path.join(units, "pingma-%s.service" % program), "w") as f:
                f.write(text)
        r = run("systemd-analyze", "verify", *sorted(glob.glob(os.path.join(units, "*"))))
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))
        # The station tells systemd when it is ready and feeds a watchdog (station_test's
        # Watchdog case); both read again on reload what they can (station_test's Reload,
        # registry_tls_test).
        with open(os.path.join(units, "pingma-station.service")) as f:
            station = f.read()
        for setting in ("Type=notify", "NotifyAccess=main", "WatchdogSec=30", "Restart=always",
                        "ExecReload=/bin/kill -HUP $MAINPID"):
            self.assertRegex(station, "(?m)^%s$" % re.escape(setting))
        with open(os.path.join(units, "pingma-registry.service")) as f:
            self.assertRegex(f.read(), r"(?m)^ExecReload=/bin/kill -HUP \$MAINPID$")

    def test_4_install_upgrade_remove_purge_on_a_fresh_debian(self):
        if os.geteuid() != 0 or not shutil.which("debootstrap"):
            self.skipTest("needs root and debootstrap (tools/quickstart.sh installs it)")
        root = os.path.join(self.tmp, "root")
        r = run("debootstrap", "--variant=minbase", "bookworm", root, timeout=1800)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        shutil.copy("/etc/resolv.conf", os.path.join(root, "etc", "resolv.conf"))
        self.addCleanup(run, "umount", os.path.join(root, "proc"))
        run("mount", "--bind", "/proc", os.path.join(root, "proc"))

        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive",
               "LANG": "C.UTF-8"}

        def chroot(*args, **kw):
            return run("chroot", root, *args, env=env, **kw)

        def as_pingma(*args, **kw):
            # chroot execs the program itself, as pingma: a signal reaches it.
            return run("chroot", "--userspec=pingma:pingma", root, *args, env=env, **kw)

        def install(debs):
            for deb in debs.values():
                shutil.copy(deb, os.path.join(root, "tmp"))
            names = ["/tmp/" + os.path.basename(d) for d in debs.values()]
            r = chroot("apt-get", "install", "-y", "-q", "--no-install-recommends", *names)
            self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-3000:])

        self.assertEqual(chroot("apt-get", "update", "-q").returncode, 0)
        install(self.debs)
        # The user, its folder, the configs; the programs run.
        self.assertRegex(chroot("getent", "passwd", "pingma").stdout,
                         r"^pingma:x:\d+:\d+::/var/lib/pingma:/usr/sbin/nologin")
        self.assertEqual(chroot("stat", "-c", "%U %G %a", "/var/lib/pingma").stdout.strip(),
                         "pingma pingma 750")
        for program in ("pingma-registry", "pingma-station", "pingma-scan", "pingma-label",
                        "pingma-scale-sim"):
            r = chroot(program, "--version")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(r.stdout.startswith(program + " " + release()))
        # The installed registry, from its installed config, as pingma: a token, a
        # start that says where it listens, and verify on its store.
        db = "/var/lib/pingma/registry.db"
        r = as_pingma("pingma-registry", "token", "add", "--db", db, "--role", "admin",
                      "--subject", "root")
        self.assertEqual(r.returncode, 0, r.stderr)
        serve = subprocess.Popen(
            ["chroot", "--userspec=pingma:pingma", root, "pingma-registry", "serve", "--config",
             "/etc/pingma/registry.toml", "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            self.assertRegex(serve.stdout.readline(), r"^listening on http://127\.0\.0\.1:\d+$")
        finally:
            serve.terminate()
            _, err = serve.communicate(timeout=30)
        self.assertEqual(serve.returncode, 0, err)
        self.assertIn("/var/lib/pingma/pingma-secrets/customer-hash.key", err,
                      "the secrets beside the store, in the state directory")
        self.assertEqual(as_pingma("pingma-registry", "verify", "--db", db).returncode, 0)

        # An upgrade to a newer build: the data and an edited conffile stay.
        conf = os.path.join(root, "etc", "pingma", "registry.toml")
        with open(conf, "a") as f:
            f.write("# the site's own line\n")
        commits = int(run("git", "-C", SOURCE_DIR, "rev-list", "--count", "HEAD").stdout)
        newer = make_packages(os.path.join(self.tmp, "newer"), commits + 1)
        install(newer)
        self.assertEqual(chroot("dpkg-query", "-W", "-f", "${Version}", "pingma-registry").stdout,
                         "%s-%d" % (release(), commits + 1))
        with open(conf) as f:
            self.assertIn("# the site's own line", f.read())
        self.assertTrue(os.path.exists(os.path.join(root, db.lstrip("/"))))
        self.assertEqual(as_pingma("pingma-registry", "verify", "--db", db).returncode, 0)

        # Remove: the program goes; the data and the configuration stay.
        self.assertEqual(chroot("apt-get", "remove", "-y", "-q", "pingma-registry").returncode, 0)
        self.assertFalse(os.path.exists(os.path.join(root, "usr/bin/pingma-registry")))
        self.assertTrue(os.path.exists(conf))
        self.assertTrue(os.path.exists(os.path.join(root, db.lstrip("/"))))
        # Purge: the configuration goes too; the data, the user and the other packages'
        # files stay.
        self.assertEqual(chroot("apt-get", "purge", "-y", "-q", "pingma-registry").returncode, 0)
        self.assertFalse(os.path.exists(conf))
        self.assertTrue(os.path.exists(os.path.join(root, db.lstrip("/"))))
        self.assertTrue(os.path.exists(os.path.join(root, "etc/pingma/station.toml")))
        self.assertTrue(os.path.exists(os.path.join(root, "usr/bin/pingma-station")))
        self.assertEqual(chroot("getent", "passwd", "pingma").returncode, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
