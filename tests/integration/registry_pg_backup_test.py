"""A PostgreSQL registry backed up while it serves, and restored from the backup
and the WAL archive, as docs/backup.md tells a site to (standard library only;
the servers are started by pg_cluster.py and removed after).

    python3 -B registry_pg_backup_test.py /path/to/pingma-registry

The database server archives every finished WAL segment (archive_mode = on, an
archive_command that copies it into a folder). A registry serves on it, and a
writer thread registers cylinders and records a fill check and a fill on each,
remembering every write acknowledged and when. While it writes:

- a base backup is taken with `pg_basebackup -X none -c fast` (the backup holds no
  WAL of its own: it is worth nothing without the archive); T is when it began;
- the writes go on after the backup ends; then `pg_switch_wal()` closes the
  segment being written and the test waits until it is in the archive; the
  writer goes on a little longer and stops.

`pg_verifybackup -w ARCHIVE` checks the backup and the WAL it needs, and
`pg_archivecleanup` trims the archive to the backup's start (what a site's
retention does; the segments before the backup go, and the restore needs none
of them). Then the backup is copied into a new data directory, with
recovery.signal and a restore_command that reads the archive, and started on
another port; it replays the archive to its end and is promoted. On it:

- `pingma-registry verify --db` exits 0 and says `ok: N events, chain intact`,
  N being the events in the restored database;
- every registration and every fill acknowledged before T, and every one
  acknowledged before the pg_switch_wal(), is there; nothing is there that was
  never sent, nor any acknowledged after pg_switch_wal() returned (their segment
  is not archived: the restore ends where the archive ends);
- a registry started on it (with the site's secrets folder) reads a cylinder
  registered before T and one registered just before the switch, takes a new
  registration, and `verify` still passes.

And the negative: a base backup taken with -X none, restored without the archive
(no restore_command), does not start, with recovery.signal or without it.

It prints how many writes fell in each period, how long the backup and the
restore took, and `verify`'s summary.
"""

import threading
import time
import unittest
import uuid

from pg_cluster import PgCluster, PgError, PgRestore, backup_start_segment
from registry_harness import (Registry, add_years, iso, now_rfc3339, take_binary_argument,
                              today_shanghai)
from registry_pg_instances_test import cylinder

BINARY = None  # set in __main__
COMPANY, STATION, OPERATOR = "CO-B", "ST-B1", "OP-B"
WRITES_BEFORE_BACKUP = 1.5   # seconds of writes before pg_basebackup starts
WRITES_AFTER_BACKUP = 1.5    # seconds of writes between its end and pg_switch_wal()
WRITES_AFTER_SWITCH = 0.5    # seconds of writes after the switched segment is archived


class Ack:
    """One write acknowledged: a registration (key: the code) or a fill (key: its
    event_id), and when its answer came (time.monotonic())."""
    __slots__ = ("kind", "key", "at")

    def __init__(self, kind, key, at):
        self.kind, self.key, self.at = kind, key, at


class RegistryWithSecrets(Registry):
    """A registry on a restored database: the store keeps its secrets' fingerprint,
    so it is served with the folder of the database it was restored from, as a site
    restores the secrets folder beside the database."""

    def __init__(self, binary, db, secrets):
        super().__init__(binary, db_path=db)
        self._secrets = secrets

    @property
    def secrets_dir(self):
        return self._secrets


class PgBackupTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.today = today_shanghai()
        cls.pg = PgCluster(wal_archive=True)
        cls.reg = None
        cls.addClassCleanup(cls.stop_all)  # runs even when the set-up below fails
        cls.pg.start()
        cls.conninfo = cls.pg.create_database("pingma")
        cls.reg = Registry(BINARY, db_path=cls.conninfo)
        cls.admin = cls.reg.token("admin", "root")
        cls.company = cls.reg.token("company", COMPANY)
        cls.station = cls.reg.token("station", STATION)
        cls.reg.start()
        far = iso(add_years(cls.today, 1))
        for path, body in (
                ("/v1/companies", {"id": COMPANY, "name": "Backup Gas",
                                   "filling_license": {"number": "TS-B", "valid_until": far}}),
                ("/v1/stations", {"id": STATION, "company_id": COMPANY, "name": "B1",
                                  "district": "Suiyang"}),
                ("/v1/operators", {"id": OPERATOR, "company_id": COMPANY, "name": "Op B",
                                   "certificate": {"number": "C-B", "valid_until": far}})):
            status, answer = cls.reg.request("POST", path, body=body, token=cls.admin)
            assert status == 201, "set-up POST %s: %s %r" % (path, status, answer)

    @classmethod
    def stop_all(cls):
        try:
            if cls.reg is not None:
                cls.reg.stop_and_remove()
        finally:
            cls.pg.stop()  # its archive and backups with it

    # -- the writer --------------------------------------------------------------

    def start_writer(self):
        self.acks = []          # every Ack, in the order answered
        self.sent = {"registered": set(), "fill": set()}
        self.failures = []      # (what, status, answer): a write not acknowledged
        self.lock = threading.Lock()
        self.halt = threading.Event()

        def acknowledged(kind, key):
            with self.lock:
                self.acks.append(Ack(kind, key, time.monotonic()))

        def failed(what, status, answer):
            with self.lock:
                self.failures.append((what, status, str(answer)[:300]))

        def write():
            n = 0
            while not self.halt.is_set():
                n += 1
                code = "BK%06d" % n
                with self.lock:
                    self.sent["registered"].add(code)
                status, answer = self.reg.request("POST", "/v1/cylinders",
                                                  body=cylinder(code, self.today),
                                                  token=self.company)
                if status != 201:
                    failed("register " + code, status, answer)
                    continue
                acknowledged("registered", code)
                status, check = self.reg.request(
                    "POST", "/v1/fill-checks", token=self.station,
                    body={"station_id": STATION, "operator_id": OPERATOR, "code": code})
                if status != 200 or check.get("decision") != "allow":
                    failed("fill check " + code, status, check)
                    continue
                event_id = str(uuid.uuid4())
                with self.lock:
                    self.sent["fill"].add(event_id)
                status, answer = self.reg.request(
                    "POST", "/v1/fills", token=self.station,
                    body={"event_id": event_id, "check_id": check["check_id"], "code": code,
                          "station_id": STATION, "operator_id": OPERATOR, "scale_id": "S1",
                          "started_at": now_rfc3339(-60), "ended_at": now_rfc3339(),
                          "tare_kg": 16.4, "gross_before_kg": 16.9, "gross_after_kg": 31.4,
                          "net_kg": 14.5, "residual_kg": 0.5, "result": "ok",
                          "post_checks": {"leak_test": "pass", "reweigh": "pass"}})
                if status != 201:
                    failed("fill " + code, status, answer)
                    continue
                acknowledged("fill", event_id)

        def run():
            try:
                write()
            except Exception as e:  # noqa: BLE001 - reported by the test
                failed("writer", None, "%s: %s" % (type(e).__name__, e))

        self.writer = threading.Thread(target=run, daemon=True)
        self.writer.start()
        self.addCleanup(self.stop_writer)

    def stop_writer(self):
        self.halt.set()
        self.writer.join(60)
        if self.writer.is_alive():
            raise AssertionError("the writer still waits 60 s after it was stopped")

    def acked_before(self, moment):
        """{kind: set of keys} of the writes acknowledged before `moment`."""
        found = {"registered": set(), "fill": set()}
        with self.lock:
            for a in self.acks:
                if a.at < moment:
                    found[a.kind].add(a.key)
        return found

    # -- the tests ---------------------------------------------------------------

    def test_1_restored_from_base_backup_and_wal_archive(self):
        self.start_writer()
        time.sleep(WRITES_BEFORE_BACKUP)
        t_backup = time.monotonic()             # T
        backup = self.pg.base_backup(wal="none")
        t_backup_done = time.monotonic()
        time.sleep(WRITES_AFTER_BACKUP)
        t_switch = time.monotonic()
        segment = self.pg.switch_wal()
        t_switched = time.monotonic()
        self.pg.wait_archived(segment)
        time.sleep(WRITES_AFTER_SWITCH)
        self.stop_writer()
        t_end = time.monotonic()
        self.assertEqual(self.failures, [], "writes not acknowledged")

        before_backup = self.acked_before(t_backup)
        before_switch = self.acked_before(t_switch)
        during_backup = {k: self.acked_before(t_backup_done)[k] - before_backup[k]
                         for k in before_backup}
        after_backup = {k: before_switch[k] - self.acked_before(t_backup_done)[k]
                        for k in before_switch}
        everything = self.acked_before(t_end + 1)
        after_switch = {k: everything[k] - before_switch[k] for k in everything}
        switched = self.acked_before(t_switched)
        after_switched = {k: everything[k] - switched[k] for k in everything}

        def counts(keys):
            return "%d registrations, %d fills" % (len(keys["registered"]), len(keys["fill"]))

        print()
        print("acknowledged before the backup (T): %s" % counts(before_backup))
        print("during pg_basebackup (%.2f s): %s" % (t_backup_done - t_backup,
                                                     counts(during_backup)))
        print("after it, before pg_switch_wal(): %s" % counts(after_backup))
        print("after pg_switch_wal() was called (segment %s archived): %s; after it"
              " returned: %s" % (segment, counts(after_switch), counts(after_switched)))
        # Else the test proves nothing: writes before the backup, and writes that only
        # the archive holds.
        self.assertTrue(before_backup["registered"] and before_backup["fill"],
                        "nothing acknowledged before the backup")
        self.assertTrue(after_backup["registered"] and after_backup["fill"],
                        "nothing acknowledged between the backup's end and the switch")

        # -- the backup checked, the archive trimmed to it -----------------------------
        print("pg_verifybackup: %s" % self.pg.verify_backup(backup))
        start = backup_start_segment(backup)
        removed = self.pg.archive_cleanup(backup)
        print("pg_archivecleanup removed %s" % " ".join(removed))
        self.assertTrue(removed, "pg_archivecleanup removed nothing")
        self.assertTrue(all(name < start for name in removed),
                        "pg_archivecleanup removed %r, the backup starts in %s"
                        % (removed, start))

        # -- the restore -----------------------------------------------------------
        t_restore = time.monotonic()
        restored = PgRestore(backup, archive=self.pg.archive)
        self.addCleanup(restored.stop)
        restored.start()
        restored.wait_recovered()
        print("restored and promoted in %.2f s (timeline %s)"
              % (time.monotonic() - t_restore,
                 restored.psql("select timeline_id from pg_control_checkpoint()",
                               db="postgres")))
        db = restored.conninfo("pingma")

        events = int(restored.psql("select count(*) from events"))
        r = self.reg.run_cli("verify", "--db", db, timeout=300)
        self.assertEqual(r.returncode, 0, "verify on the restored database: %s %s\n%s"
                         % (r.stdout, r.stderr, restored.log_tail(2000)))
        self.assertTrue(r.stdout.startswith("ok: %d events, chain intact" % events),
                        r.stdout)
        print("verify: %s" % r.stdout.strip())

        stored = {
            "registered": set(restored.psql(
                "select coalesce(string_agg(code, ' '), '') from cylinders"
                " where code like 'BK%'").split()),
            "fill": set(restored.psql(
                "select coalesce(string_agg(event_id, ' '), '') from fills").split())}
        for kind in ("registered", "fill"):
            lost_before_backup = sorted(before_backup[kind] - stored[kind])
            self.assertEqual(lost_before_backup, [],
                             "%s acknowledged before the backup began, not restored" % kind)
            lost = sorted(before_switch[kind] - stored[kind])
            self.assertEqual(lost, [], "%s acknowledged before pg_switch_wal(), not restored"
                             " (%d of %d)\n--- restored server log:\n%s"
                             % (kind, len(lost), len(before_switch[kind]),
                                restored.log_tail(2000)))
            self.assertEqual(sorted(stored[kind] - self.sent[kind]), [],
                             "%s restored that was never sent" % kind)
        # Each restored cylinder has its registration event, each fill its event.
        self.assertEqual(int(restored.psql("select count(*) from events where type ="
                                           " 'registered' and code like 'BK%'")),
                         len(stored["registered"]))
        print("restored: %d registrations, %d fills; of those acknowledged after"
              " pg_switch_wal() was called: %d registrations, %d fills (committed before"
              " the switch itself)" % (len(stored["registered"]), len(stored["fill"]),
                                       len(after_switch["registered"] & stored["registered"]),
                                       len(after_switch["fill"] & stored["fill"])))
        # And no further: what was written after the switch is in a segment not yet
        # archived (it would be after archive_timeout, or once full), so the restore
        # ends before it. This shows that the restore came from the archive.
        for kind in ("registered", "fill"):
            self.assertEqual(sorted(after_switched[kind] & stored[kind]), [],
                             "%s acknowledged after pg_switch_wal() returned, restored" % kind)

        # -- a registry on the restored database -----------------------------------
        reg = RegistryWithSecrets(BINARY, db, self.reg.secrets_dir)
        self.addCleanup(reg.cleanup)
        reg.start()
        first = min(before_backup["registered"])
        last = max(before_switch["registered"])
        for code in (first, last):
            status, answer = reg.request("GET", "/v1/cylinders/" + code, token=self.company)
            self.assertEqual(status, 200, "GET %s on the restored database: %s %r"
                             % (code, status, answer))
            self.assertEqual(answer["code"], code)
        status, answer = reg.request("POST", "/v1/cylinders",
                                     body=cylinder("BR000001", self.today),
                                     token=self.company)
        self.assertEqual(status, 201, "a registration after the restore: %s %r\n%s"
                         % (status, answer, reg.stderr_tail()))
        reg.stop()
        # Not asserted, shown (docs/backup.md, "What a restore that lost writes
        # means"): revisions are transaction ids, and the restored server gives the
        # lost transactions' ids out again.
        print("revisions: the old primary's newest %s, the restored database's first new"
              " one %s" % (self.pg.psql("select max(tx) from events"),
                           restored.psql("select tx from events where code = 'BR000001'"
                                         " and type = 'registered'")))
        r = reg.verify()
        self.assertEqual(r.returncode, 0, "verify after a write on the restored database:"
                         " %s %s" % (r.stdout, r.stderr))
        self.assertTrue(r.stdout.startswith("ok: %d events, chain intact" % (events + 1)),
                        r.stdout)

    def test_2_base_backup_without_the_archive_does_not_start(self):
        # A backup made with -X none holds no WAL: without restore_command the server
        # cannot reach a consistent state, and refuses to start, whether it was told
        # to recover (recovery.signal) or not.
        backup = self.pg.base_backup(wal="none")
        for signal_file, expected in ((True, "restore_command"),
                                      (False, "checkpoint record")):
            restored = PgRestore(backup, archive=None, recovery_signal=signal_file)
            self.addCleanup(restored.stop)
            with self.assertRaises(PgError, msg="started from the backup alone (recovery."
                                   "signal %s)" % ("given" if signal_file else "absent")) as e:
                restored.start()
            fatal = [l for l in str(e.exception).splitlines() if "FATAL" in l]
            self.assertTrue(fatal, str(e.exception)[-2000:])
            self.assertIn(expected, fatal[0])
            print("\nwithout the archive, recovery.signal %s: %s"
                  % ("given" if signal_file else "absent", fatal[0].split("FATAL:", 1)[-1]
                     .strip()))


if __name__ == "__main__":
    BINARY = take_binary_argument()
    unittest.main(verbosity=2)
