"""Two pingma-registry processes on a PostgreSQL primary with a synchronous hot
standby, the primary killed under load and the standby promoted (standard library
only; both servers are started by pg_cluster.py and removed after).

    python3 -B registry_pg_failover_test.py /path/to/pingma-registry

The registries are given both hosts in one libpq URI (target_session_attrs=
read-write): they write to the primary, and after the failover to the promoted
standby, without a restart. Eight threads register cylinders through them the
whole time, each code once (no retries). The primary gets SIGKILL on all its
processes at once (a power cut), the standby is promoted a second later, and the
load goes on until both registries have acknowledged writes again. Then:

- every registration acknowledged (201) is on the promoted standby: a commit is
  acknowledged only after the standby flushed it, and the registry answers only
  after COMMIT returned;
- both registries are still running, answered nothing but 201 and 503 (no 500, no
  dropped connection) and stop cleanly;
- the log on the promoted standby is one chain: seq 1..N without a gap, and
  `verify --db` says `ok: N events, chain intact` (every event numbered once).

It prints what the failover cost (seconds from the kill and from the promotion to
the first acknowledged write, how many requests were refused with 503, how many
were acknowledged before and after); it asserts only that writes are acknowledged
again within 60 s of the promotion.
"""

import collections
import threading
import time
import unittest

from pg_cluster import PgCluster
from registry_harness import Registry, add_years, iso, take_binary_argument, today_shanghai
from registry_pg_instances_test import cylinder

BINARY = None  # set in __main__
WRITERS = 8
LOAD_BEFORE_KILL = 2.0        # seconds of load on the primary before the kill
KILL_TO_PROMOTE = 1.0         # seconds the standby waits before it is promoted
ACKS_AFTER_PROMOTE = 20       # 201s from each registry after the promotion to end on
AFTER_PROMOTE_LIMIT = 90.0    # seconds to wait for them
FIRST_ACK_LIMIT = 60.0        # the liveness bound asserted
READ_ATTEMPTS = 30            # GETs through a registry after the failover, until a 200
PAUSE_AFTER_REFUSAL = 0.02    # a writer's pause after a 503 (a client would back off)


class Attempt:
    __slots__ = ("writer", "reg", "code", "sent", "answered", "status", "answer")

    def __init__(self, writer, reg, code, sent, answered, status, answer):
        self.writer, self.reg, self.code = writer, reg, code
        self.sent, self.answered, self.status, self.answer = sent, answered, status, answer


class PgFailoverTest(unittest.TestCase):
    def setUp(self):
        self.today = today_shanghai()
        self.pg = PgCluster()
        self.addCleanup(self.pg.stop)  # stops the standby too
        self.pg.start()
        self.pg.create_database("pingma")
        self.standby = self.pg.add_standby()
        self.addCleanup(self.standby.stop)
        self.conninfo = self.pg.failover_conninfo(self.standby, "pingma")
        self.regs = []
        for _ in range(2):
            reg = Registry(BINARY, db_path=self.conninfo)
            self.addCleanup(reg.cleanup)  # kills it when the test did not stop it
            self.regs.append(reg)
        first = self.regs[0]
        self.admin = first.token("admin", "root")
        self.company = first.token("company", "CO-F")
        for reg in self.regs:
            reg.start()
        far = iso(add_years(self.today, 1))
        for path, body in (
                ("/v1/companies", {"id": "CO-F", "name": "Failover Gas",
                                   "filling_license": {"number": "TS-F", "valid_until": far}}),
                ("/v1/stations", {"id": "ST-F1", "company_id": "CO-F", "name": "F1",
                                  "district": "Suiyang"}),
                ("/v1/operators", {"id": "OP-F", "company_id": "CO-F", "name": "Op F",
                                   "certificate": {"number": "C-F", "valid_until": far}})):
            status, answer = first.request("POST", path, body=body, token=self.admin)
            self.assertEqual(status, 201, "set-up POST %s: %s %r" % (path, status, answer))

    # -- the load ----------------------------------------------------------------

    def start_load(self):
        self.attempts = []          # every Attempt, in the order answered
        self.lock = threading.Lock()
        self.halt = threading.Event()
        counter = iter(range(1, 10 ** 6))

        def writer(i):
            k = 0
            while not self.halt.is_set():
                r = (i + k) % 2   # each writer alternates between the two registries
                k += 1
                with self.lock:
                    code = "FO%06d" % next(counter)
                sent = time.monotonic()
                try:
                    status, answer = self.regs[r].request(
                        "POST", "/v1/cylinders", body=cylinder(code, self.today),
                        token=self.company, timeout=30)
                except Exception as e:  # noqa: BLE001 - no answer: not acknowledged
                    status, answer = None, "%s: %s" % (type(e).__name__, e)
                attempt = Attempt(i, r, code, sent, time.monotonic(), status,
                                  None if status == 201 else answer)
                with self.lock:
                    self.attempts.append(attempt)
                if status != 201:
                    time.sleep(PAUSE_AFTER_REFUSAL)

        self.writers = [threading.Thread(target=writer, args=(i,), daemon=True)
                        for i in range(WRITERS)]
        for t in self.writers:
            t.start()
        self.addCleanup(self.stop_load)

    def stop_load(self):
        self.halt.set()
        for t in self.writers:
            t.join(60)
        stuck = [t.name for t in self.writers if t.is_alive()]
        self.writers = []
        if stuck:
            raise AssertionError("writers still waiting 60 s after the load stopped: %s"
                                 % stuck)

    def snapshot(self):
        with self.lock:
            return list(self.attempts)

    def acks_after(self, since):
        """201s per registry for requests sent at or after `since`."""
        counts = [0, 0]
        for a in self.snapshot():
            if a.status == 201 and a.sent >= since:
                counts[a.reg] += 1
        return counts

    def registry_logs(self):
        return "\n".join("--- registry %d (%s) stderr:\n%s"
                         % (n, "running" if reg.running else "exited %s"
                            % (reg.proc.returncode if reg.proc else "?"), reg.stderr_tail())
                         for n, reg in enumerate(self.regs))

    def describe(self, attempts, t_kill, t_promoted):
        """A few lines on what the load saw, for failure messages."""
        by_status = collections.Counter(a.status for a in attempts)
        lines = ["answers by status: %s" % dict(by_status)]
        first = {}
        for a in attempts:
            if a.status != 201:
                key = (a.status, str(a.answer)[:200])
                if key not in first:
                    first[key] = a
        for (status, text), a in list(first.items())[:12]:
            lines.append("  first %s at %+.2f s from the kill (registry %d, %s): %s"
                         % (status, a.answered - t_kill, a.reg, a.code, text))
        if t_promoted is not None:
            lines.append("201s per registry after the promotion: %s"
                         % self.acks_after(t_promoted))
        return "\n".join(lines)

    # -- the test ----------------------------------------------------------------

    def test_primary_killed_under_load_standby_promoted(self):
        self.start_load()
        time.sleep(LOAD_BEFORE_KILL)
        before = self.snapshot()
        self.assertTrue(any(a.status == 201 for a in before),
                        "no write acknowledged before the kill:\n%s\n%s"
                        % (self.describe(before, time.monotonic(), None),
                           self.registry_logs()))

        t_kill = time.monotonic()
        self.pg.kill()
        t_killed = time.monotonic()
        time.sleep(KILL_TO_PROMOTE)
        t_promote = time.monotonic()
        self.standby.promote()
        t_promoted = time.monotonic()

        deadline = t_promoted + AFTER_PROMOTE_LIMIT
        while min(self.acks_after(t_promoted)) < ACKS_AFTER_PROMOTE:
            if time.monotonic() > deadline:
                self.stop_load()
                self.fail("after %.0f s from the promotion, the registries have not each"
                          " acknowledged %d writes:\n%s\n%s"
                          % (AFTER_PROMOTE_LIMIT, ACKS_AFTER_PROMOTE,
                             self.describe(self.snapshot(), t_kill, t_promoted),
                             self.registry_logs()))
            time.sleep(0.1)
        self.stop_load()
        t_end = time.monotonic()
        attempts = self.snapshot()
        context = "%s\n%s" % (self.describe(attempts, t_kill, t_promoted),
                              self.registry_logs())

        # -- what it cost ----------------------------------------------------------
        acked = [a for a in attempts if a.status == 201]
        refused = [a for a in attempts if a.status == 503]
        other = [a for a in attempts if a.status not in (201, 503)]
        after_kill = [a for a in acked if a.sent >= t_killed]
        first_after = min((a.answered for a in after_kill), default=None)
        acked_before = sum(1 for a in acked if a.sent < t_kill)
        acked_during = sum(1 for a in acked if t_kill <= a.sent < t_promoted)
        acked_after = sum(1 for a in acked if a.sent >= t_promoted)
        print()
        print("requests: %d in %.1f s (%d writers, 2 registries)"
              % (len(attempts), t_end - min((a.sent for a in attempts), default=t_end), WRITERS))
        print("kill took %.3f s, promote took %.3f s (started %.3f s after the kill)"
              % (t_killed - t_kill, t_promoted - t_promote, t_promote - t_kill))
        if first_after is not None:
            print("seconds from SIGKILL to the first 201 after it: %.3f"
                  % (first_after - t_kill))
            print("seconds from promote to the first 201 after it: %.3f (from the start of"
                  " pg_ctl promote; %.3f from its return, which polls)"
                  % (first_after - t_promote, first_after - t_promoted))
        else:
            print("no 201 after the kill")
        print("answered 503: %d (%d before the kill, %d from the kill to the promotion's"
              " end, %d after)"
              % (len(refused), sum(1 for a in refused if a.answered < t_kill),
                 sum(1 for a in refused if t_kill <= a.answered < t_promoted),
                 sum(1 for a in refused if a.answered >= t_promoted)))
        print("acknowledged (201): %d before the kill, %d sent between the kill and the"
              " promotion's end, %d after the promotion (per registry after: %s)"
              % (acked_before, acked_during, acked_after, self.acks_after(t_promoted)))
        messages = collections.Counter(
            " ".join((a.answer.get("error", {}).get("message", "")
                      if isinstance(a.answer, dict) else str(a.answer)).split())[:400]
            for a in refused)
        for text, n in messages.most_common(6):
            print("  503 x%d: %s" % (n, text))
        print("other outcomes: %d" % len(other))
        for a in other[:20]:
            print("  %s at %+.3f s from the kill via registry %d (%s): %s"
                  % (a.status, a.answered - t_kill, a.reg, a.code, str(a.answer)[:300]))

        # -- what must hold ----------------------------------------------------------
        self.assertIsNotNone(first_after, "no write acknowledged after the kill\n" + context)
        self.assertLess(first_after - t_promote, FIRST_ACK_LIMIT,
                        "the first write acknowledged after the promotion\n" + context)
        self.assertEqual([(a.status, a.code, a.reg, str(a.answer)[:300]) for a in other], [],
                         "answers other than 201 and 503 (or no answer)\n" + context)
        for n, reg in enumerate(self.regs):
            self.assertIsNone(reg.proc.poll(), "registry %d exited\n%s" % (n, context))

        self.assertFalse(self.standby.in_recovery(), "the standby is not promoted")
        stored = set(self.standby.psql(
            "select coalesce(string_agg(code, ' '), '') from cylinders"
            " where code like 'FO%'").split())
        acked_codes = {a.code for a in acked}
        lost = sorted(acked_codes - stored)
        unacked_stored = sorted(stored - acked_codes)
        print("on the promoted standby: %d of %d acknowledged codes; %d codes stored that"
              " were not acknowledged%s"
              % (len(acked_codes & stored), len(acked_codes), len(unacked_stored),
                 ":" if unacked_stored else ""))
        # A COMMIT that took effect (and reached the standby) but whose answer died
        # with the primary: answered 503, stored. A client that retries gets a 409.
        by_code = {a.code: a for a in attempts}
        for c in unacked_stored[:10]:
            a = by_code.get(c)
            print("  %s: %s at %+.3f s from the kill via registry %d: %s"
                  % (c, a.status, a.answered - t_kill, a.reg,
                     " ".join(str(a.answer).split())[:300]) if a else "  %s: never sent" % c)
        self.assertEqual(lost, [], "acknowledged but not on the promoted standby (%d of %d)"
                         "\n%s" % (len(lost), len(acked_codes), context))
        self.assertEqual(len(acked_codes), len(acked), "a code acknowledged twice")

        # Each stored cylinder has its one registration event.
        registered = int(self.standby.psql(
            "select count(*) from events where type = 'registered' and code like 'FO%'"))
        self.assertEqual(registered, len(stored), "registration events against cylinders")

        # One log: every event numbered once (numbers come in blocks, with gaps),
        # and it verifies end to end.
        count, first, last, distinct = self.standby.psql(
            "select count(*), min(seq), max(seq), count(distinct seq) from events").split("|")
        self.assertEqual((int(first), int(distinct)), (1, int(count)),
                         "events: count %s, seq %s..%s, %s distinct"
                         % (count, first, last, distinct))
        r = self.regs[0].run_cli("verify", "--db", self.standby.conninfo("pingma"),
                                 timeout=300)
        self.assertEqual(r.returncode, 0, "verify: %s %s" % (r.stdout, r.stderr))
        self.assertTrue(r.stdout.startswith("ok: %s events, chain intact; " % count), r.stdout)
        print("events: %s, seq 1..%s (in blocks), verify: %s" % (count, last, r.stdout.strip()))

        # Reads through each registry: a code acknowledged before the kill is read
        # from the promoted standby (a pooled connection to the dead primary may cost
        # a 503 first; each is made again).
        old = next(a.code for a in acked if a.sent < t_kill)
        for n, reg in enumerate(self.regs):
            statuses = []
            for _ in range(READ_ATTEMPTS):
                status, answer = reg.request("GET", "/v1/cylinders/" + old, token=self.company)
                statuses.append(status)
                if status != 503:
                    break
            print("GET %s through registry %d after the failover: %s" % (old, n, statuses))
            self.assertEqual(status, 200, "GET %s through registry %d: %s %r\n%s"
                             % (old, n, statuses, answer, self.registry_logs()))
            self.assertEqual(answer["code"], old)

        for reg in self.regs:
            reg.stop()  # SIGTERM; asserts exit 0


if __name__ == "__main__":
    BINARY = take_binary_argument()
    unittest.main(verbosity=2)
