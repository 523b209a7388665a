"""The registry's store moved to PostgreSQL: `pingma-registry migrate`, and `verify`
and `token add` on a PostgreSQL connection string, against a throw-away
PostgreSQL cluster (pg_cluster.py; psql for every query, no driver).

A realistic store (every kind of record the API makes, awkward text included)
migrated and compared table by table and row by row with the SQLite file, the
due-date summary kept by triggers in PostgreSQL; a seeded store of 200 000 events
over 14 months whose migration is SIGKILLed twice and resumed, then run again;
a migration watched by a reader of the event log (select count(*) in a loop); a
tampered event found by verify; a token added on PostgreSQL; and bad input: a
missing file, a server that does not answer, a database holding another chain.

    python3 -B registry_pg_test.py /path/to/pingma-registry

pingma-bench-seed is taken from $PINGMA_BENCH_SEED, else from BUILD/tools/bench/
when the registry is BUILD/registry/pingma-registry.
"""

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
import uuid
from datetime import timedelta

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pg_cluster import PgCluster, PgError, clean_environment
from registry_harness import (Registry, add_years, id_number, iso, now_rfc3339,
                              take_binary_argument, today_shanghai,
                              wait_past_shanghai_midnight, year_month)

BINARY = None  # set in __main__
SEED = None    # pingma-bench-seed

CHAIN_OK = re.compile(r"^ok: (\d+) events, chain intact; ")
TOKEN = re.compile(r"^pm_[0-9a-f]{48}$")
# A client that crashed rather than failed: what must never be on stderr.
CRASH = re.compile(r"terminate called|Segmentation fault|Aborted|core dumped|"
                   r"AddressSanitizer|stack trace|Traceback", re.IGNORECASE)
UNREACHABLE = "postgresql://postgres@127.0.0.1:1/x"

PHONE = "13987651234"
ID_NUMBER = id_number("11010519491231002")
OK_CHECK = {"hose_length": "pass", "hose_joints": "pass", "hose_through_wall": "pass",
            "regulator_standard": "pass", "regulator_age": "pass", "gas_alarm": "pass",
            "flame_failure_device": "pass", "ventilation": "pass", "cylinders_apart": "pass"}
# Text that COPY's text format, SQL quoting and JSON must all carry unchanged.
AWKWARD = '城东站, "一号"\n第二行\t\\N back\\slash \'q\' |pipe| $1 %s'
REPORT_TEXT = '闻到异味\tTAB\nsecond line \\N \\. back\\slash "q" \'q\' ;--'


# ---------------------------------------------------------------------------
# programs


def run(args, timeout=300):
    """The registry binary with args; a CompletedProcess with text output."""
    return subprocess.run([BINARY] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, env=clean_environment(),
                          timeout=timeout)


PROGRESS_LINE = re.compile(r"^\S+\s+\[[#. ]*\]")


def describe(r):
    """Exit status, stdout and stderr (without migrate's progress bars)."""
    err = "\n".join(l for l in r.stderr.splitlines() if not PROGRESS_LINE.match(l))
    return "exit %s\n--- stdout:\n%s\n--- stderr:\n%s" % (
        r.returncode, r.stdout[-3000:], err[-3000:])


def migrate(source, conninfo, batch=None, timeout=900):
    args = ["migrate", "--from", source, "--to", conninfo]
    if batch is not None:
        args += ["--batch", batch]
    return run(args, timeout=timeout)


def verify(db, timeout=600):
    return run(["verify", "--db", db], timeout=timeout)


def find_seed():
    explicit = os.environ.get("PINGMA_BENCH_SEED")
    if explicit:
        return os.path.abspath(explicit)
    # BUILD/registry/pingma-registry -> BUILD/tools/bench/pingma-bench-seed
    build = os.path.dirname(os.path.dirname(BINARY))
    return os.path.join(build, "tools", "bench", "pingma-bench-seed")


# ---------------------------------------------------------------------------
# SQLite


def sqlite_tables(path):
    con = sqlite3.connect(path)
    try:
        return sorted(n for (n,) in con.execute(
            "select name from sqlite_master where type='table'"
            " and name not like 'sqlite\\_%' escape '\\'"))
    finally:
        con.close()


def sqlite_query(path, sql, params=()):
    con = sqlite3.connect(path)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def sqlite_count(path, table):
    return sqlite_query(path, 'select count(*) from "%s"' % table)[0][0]


def sqlite_columns(path, table):
    return [r[1] for r in sqlite_query(path, 'pragma table_info("%s")' % table)]


def copy_store(source, directory, name):
    """Copies a stopped store (the file and its -wal/-shm, if any) to directory/name."""
    target = os.path.join(directory, name)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(source + suffix):
            shutil.copyfile(source + suffix, target + suffix)
    return target


def token_store(path, *subjects):
    """A store of only `token add`s: a short chain of its own."""
    for subject in subjects:
        r = run(["token", "add", "--db", path, "--role", "company", "--subject", subject],
                timeout=60)
        assert r.returncode == 0, describe(r)
    return path


def event_count(r):
    """N of a successful verify's `ok: N events, chain intact`."""
    m = CHAIN_OK.match(r.stdout.strip())
    assert r.returncode == 0 and m, "verify failed: " + describe(r)
    return int(m.group(1))


# ---------------------------------------------------------------------------
# PostgreSQL side


def pg_json(pg, db, sql):
    """The JSON value a query returns (one row, one column)."""
    out = pg.psql(sql, db=db)
    return json.loads(out) if out else None


def pg_table_exists(pg, db, table):
    return pg.psql("select to_regclass('public.%s') is not null" % table, db=db) == "t"


def pg_count(pg, db, table):
    return int(pg.psql('select count(*) from "%s"' % table, db=db))


def events_inserted(pg, db):
    """Rows inserted into the event log's partitions, from the statistics views
    (which lock nothing; up to a second behind)."""
    return int(pg.psql("select coalesce(sum(s.n_tup_ins), 0) from pg_stat_user_tables s"
                       " join pg_inherits i on i.inhrelid = s.relid"
                       " join pg_class p on p.oid = i.inhparent"
                       " where p.relname = 'events'", db=db))


def pg_column_types(pg, db, table):
    rows = pg_json(pg, db, "select coalesce(json_object_agg(column_name, data_type), '{}')"
                   " from information_schema.columns where table_schema = 'public'"
                   " and table_name = '%s'" % table)
    return rows or {}


def events_sqlite(path):
    return [list(r[:8]) + [r[8].lower()] for r in sqlite_query(
        path, "select seq, id, coalesce(code,''), type, at, actor_role, actor_id, body,"
              " hex(hash) from events order by seq")]


def events_pg(pg, db):
    rows = pg_json(pg, db, "select coalesce(json_agg(json_build_array(seq, id,"
                           " coalesce(code,''), type, at, actor_role, actor_id, body,"
                           " encode(hash,'hex')) order by seq), '[]') from events")
    return [r[:8] + [r[8].lower()] for r in rows]


_INTEGER_TYPES = ("smallint", "integer", "bigint")
_FLOAT_TYPES = ("real", "double precision", "numeric")


def _normal(value, pg_type, side):
    """One value as both sides can be compared: bytes as hex, booleans as 0/1,
    numbers as numbers, the rest as text."""
    if value is None:
        return None
    if pg_type == "bytea":
        if side == "pg":
            assert isinstance(value, str) and value.startswith("\\x"), value
            return ("bytes", value[2:].lower())
        if isinstance(value, str):
            value = value.encode("utf-8")
        if isinstance(value, (bytes, bytearray)):
            return ("bytes", bytes(value).hex())
        return ("bytes", str(value).encode("utf-8").hex())
    if pg_type in ("json", "jsonb"):
        if side == "sqlite" and isinstance(value, str):
            value = json.loads(value)
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    if pg_type == "boolean":
        return int(bool(value)) if side == "pg" else int(value)
    if pg_type in _INTEGER_TYPES:
        return int(value)
    if pg_type in _FLOAT_TYPES:
        return float(value)
    if isinstance(value, (bytes, bytearray)):
        return ("bytes", bytes(value).hex())
    return str(value)


def table_rows_sqlite(path, table, columns, types):
    rows = sqlite_query(path, 'select %s from "%s"'
                        % (", ".join('"%s"' % c for c in columns), table))
    return sorted((tuple(_normal(v, types[c], "sqlite") for c, v in zip(columns, row))
                   for row in rows), key=repr)


def table_rows_pg(pg, db, table, columns, types):
    rows = pg_json(pg, db, "select coalesce(json_agg(json_build_array(%s)), '[]') from \"%s\""
                   % (", ".join('"%s"' % c for c in columns), table))
    return sorted((tuple(_normal(v, types[c], "pg") for c, v in zip(columns, row))
                   for row in rows), key=repr)


# The due-date summary's key of a cylinder, as kSchema's triggers compute it.
DUE_OF_CYLINDERS = """
select owner_company_id,
  case when next_inspection_due is not null then 0
       when last_inspection is not null then 1 else 2 end as basis,
  case when next_inspection_due is not null then '' else model end as m,
  coalesce(next_inspection_due::text, last_inspection::text, manufactured::text) as b,
  count(*) as n
from cylinders where state = 'active' group by 1, 2, 3, 4"""


# due_counts rows counted down to zero mean nothing: SQLite keeps them, a migration
# (whose trigger makes the table from the cylinders) does not make them again.
def due_counts_sqlite(path):
    return sorted([r[0], int(r[1]), r[2], str(r[3]), int(r[4])] for r in sqlite_query(
        path, "select company_id, basis, model, base, n from due_counts where n <> 0"))


def due_counts_pg(pg, db, where="where n <> 0"):
    rows = pg_json(pg, db, "select coalesce(json_agg(json_build_array(company_id, basis,"
                           " model, base::text, n)), '[]') from due_counts " + where)
    return sorted([r[0], int(r[1]), r[2], r[3], int(r[4])] for r in rows)


def due_of_cylinders_pg(pg, db):
    rows = pg_json(pg, db, "select coalesce(json_agg(json_build_array(owner_company_id,"
                           " basis, m, b, n)), '[]') from (%s) x" % DUE_OF_CYLINDERS)
    return sorted([r[0], int(r[1]), r[2], r[3], int(r[4])] for r in rows)


# ---------------------------------------------------------------------------
# a realistic store, made once through the real registry's API


STORE = {}  # "path", "events", "today", "codes", "workdir"


def build_realistic_store(workdir):
    """Runs the registry on a new SQLite file, makes every kind of record through
    its API, stops it (asserting a clean exit) and returns the file's path."""
    wait_past_shanghai_midnight()
    today = today_shanghai()
    far = iso(today + timedelta(days=400))
    reg = Registry(BINARY, workdir=workdir)
    tokens = {}
    for name, role, subject in (("admin", "admin", "root"), ("regulator", "regulator", "SAMR"),
                                ("co", "company", "CO-M"), ("co_n", "company", "CO-N"),
                                ("st", "station", "ST-M"), ("inspector", "inspector", "AG-1"),
                                ("courier", "courier", "CR-M")):
        tokens[name] = reg.token(role, subject)

    def post(path, body, token, expect=(200, 201)):
        status, answer = reg.request("POST", path, body=body, token=tokens[token])
        assert status in expect, "POST %s %r -> %s %r" % (path, body, status, answer)
        return answer

    def cylinder(code, **fields):
        body = {"code": code, "model": "YSP35.5", "phase": "gas",
                "manufacturer": "Hebei Example Cylinder Co.", "serial": "S\\N-" + code,
                "manufactured": year_month(add_years(today, -2)), "tare_kg": 16.4,
                "allowed_fill_kg": 14.9, "design_life_years": 8,
                "registration_no": "REG-" + code,
                "last_inspection": iso(add_years(today, -2)),
                "next_inspection_due": iso(add_years(today, 2))}
        body.update(fields)
        for k in [k for k, v in body.items() if v is None]:
            del body[k]
        return post("/v1/cylinders", body, "co")

    def check(code, **extra):
        body = {"station_id": "ST-M", "operator_id": "OP-M", "code": code}
        body.update(extra)
        return post("/v1/fill-checks", body, "st")

    def fill(code, net=14.5):
        c = check(code)
        assert c["decision"] == "allow", c
        return post("/v1/fills", {
            "event_id": str(uuid.uuid4()), "check_id": c["check_id"], "code": code,
            "station_id": "ST-M", "operator_id": "OP-M", "scale_id": "S1",
            "started_at": now_rfc3339(-120), "ended_at": now_rfc3339(), "tare_kg": 16.4,
            "gross_before_kg": 16.9, "gross_after_kg": 16.9 + net, "net_kg": net,
            "residual_kg": 0.5, "result": "ok",
            "post_checks": {"leak_test": "pass", "reweigh": "pass"}}, "st")

    def hand(code, customer, **check):
        return post("/v1/handovers", {
            "event_id": str(uuid.uuid4()), "code": code, "customer_id": customer,
            "vehicle": "V-M", "direction": "deliver",
            "safety_check": dict(OK_CHECK, **check)}, "courier")

    reg.start()
    try:
        for co, name in (("CO-M", "瓶码燃气, \"东区\" \\ back"), ("CO-N", "=SUM(A1)")):
            post("/v1/companies", {"id": co, "name": name, "filling_license": {
                "number": "TS-" + co, "valid_until": far}}, "admin")
        # Named AWKWARD below, in the file: the API refuses line breaks and tabs now.
        post("/v1/stations", {"id": "ST-M", "company_id": "CO-M", "name": "城东站",
                              "district": "城东"}, "co")
        post("/v1/operators", {"id": "OP-M", "company_id": "CO-M", "name": "张三",
                               "certificate": {"number": "C-M", "valid_until": far}}, "co")
        post("/v1/custody", {"owner_company_id": "CO-M", "custodian_company_id": "CO-N",
                             "valid_from": iso(today), "valid_until": far}, "co")
        post("/v1/vehicles", {"id": "V-M", "company_id": "CO-M", "plate": "豫N12345",
                              "kind": "tricycle"}, "co")
        post("/v1/couriers", {"id": "CR-M", "company_id": "CO-M", "name": "李四",
                              "vehicle": "V-M", "zones": ["城东"],
                              "certificate": {"number": "Q-1", "valid_until": far}}, "co")
        post("/v1/customers", {"id": "CU-1", "company_id": "CO-M", "name": "王五",
                               "phone": PHONE, "id_number": ID_NUMBER,
                               "address": "建设路1号\\", "district": "城东", "kind": "household",
                               "site": {"basement": False, "semi_basement": False,
                                        "cylinder_room": False}}, "co")

        codes = ["PGM%04d" % i for i in range(1, 9)]
        uid = "UID:E004" + uuid.uuid4().hex[:12].upper()
        cylinder(codes[0], carriers=[uid])                      # with an RFID carrier
        cylinder(codes[1])
        cylinder(codes[2])
        cylinder(codes[3], next_inspection_due=iso(today - timedelta(days=1)))  # overdue
        cylinder(codes[4], next_inspection_due=None)            # due from its inspection
        cylinder(codes[5], manufacturer="Recall Works Ltd.")
        cylinder(codes[6], model="YSP12", tare_kg=7.2, allowed_fill_kg=4.9, last_inspection=None,
                 next_inspection_due=None)                      # due from manufacture
        cylinder(codes[7])
        post("/v1/cylinders/%s/carriers" % codes[1],
             {"carrier": "EPC:30" + uuid.uuid4().hex[:22].upper()}, "co")

        # Fill checks: allowed, refused (overdue; overdue and tare), an unknown code.
        assert check(codes[2])["decision"] == "allow"
        assert check(codes[3])["decision"] == "block"
        assert check(codes[3], empty_gross_kg=15.0)["decision"] == "block"
        assert check("PGM-NOPE")["decision"] == "block"
        # Fills, then deliveries: one clean, one opening a hazard that is then closed.
        fill(codes[0])
        fill(codes[7], net=14.4)
        assert hand(codes[0], "CU-1")["decision"] == "allow"
        delivered = hand(codes[7], "CU-1", hose_joints="fail")
        assert delivered["decision"] == "allow" and delivered["hazards_opened"], delivered
        post("/v1/hazards/%s/close" % delivered["hazards_opened"][0]["id"],
             {"closed_by": "李四", "how": "换了整根胶管 / hose replaced"}, "courier")
        # Inspections: a pass with a new due date, a fail (scrap pending), then scrapped.
        post("/v1/inspections", {"code": codes[1], "date": iso(today), "result": "pass",
                                 "next_due": iso(add_years(today, 4)),
                                 "report_no": "RPT-1"}, "inspector")
        post("/v1/inspections", {"code": codes[2], "date": iso(today), "result": "fail",
                                 "report_no": "RPT-2"}, "inspector")
        post("/v1/cylinders/%s/scrap" % codes[2],
             {"date": iso(today), "method": "drilled", "certificate_no": "SCRAP-2"},
             "inspector")
        # A recall, and the check that flags the recalled cylinder.
        post("/v1/recalls", {"manufacturer": "Recall Works Ltd.", "reason": "valve defect"},
             "regulator")
        assert check(codes[5])["decision"] == "block"
        # A public report through the page's form, with tabs, newlines, backslashes.
        conn = reg.connection()
        try:
            status, page, _ = conn.request(
                "POST", "/c/%s/report" % codes[4],
                raw=urllib.parse.urlencode({"category": "leak", "text": REPORT_TEXT,
                                            "contact": "138 0000 1234"}),
                headers={"Content-Type": "application/x-www-form-urlencoded"})
        finally:
            conn.close()
        assert status == 201, "public report -> %s %r" % (status, page)
    finally:
        if reg.running:
            reg.stop()
        reg.cleanup()
    # A store made before text was checked may hold line breaks and tabs in a name:
    # migrate must carry them unchanged.
    con = sqlite3.connect(reg.db)
    try:
        with con:
            con.execute("UPDATE stations SET name = ? WHERE id = 'ST-M'", (AWKWARD,))
    finally:
        con.close()
    STORE.update(path=reg.db, today=today, codes=codes)
    STORE["events"] = event_count(verify(reg.db))
    return reg.db


def setUpModule():
    STORE["workdir"] = tempfile.mkdtemp(prefix="pingma-pg-it-")
    try:
        build_realistic_store(STORE["workdir"])
    except BaseException:
        tearDownModule()
        raise


def tearDownModule():
    if STORE.get("workdir") and not os.environ.get("PINGMA_KEEP_TMP"):
        shutil.rmtree(STORE["workdir"], ignore_errors=True)


class PgCase(unittest.TestCase):
    """A test class with its own PostgreSQL cluster and temporary folder."""

    maxDiff = 8000

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="pingma-pg-case-")
        cls.pg = PgCluster()
        try:
            cls.pg.start()
        except BaseException:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            cls.pg.stop()
        finally:
            if not os.environ.get("PINGMA_KEEP_TMP"):
                shutil.rmtree(cls.tmp, ignore_errors=True)

    def store_copy(self, name):
        return copy_store(STORE["path"], self.tmp, name)

    def assertMigrated(self, r, what):
        self.assertEqual(r.returncode, 0, "%s: %s" % (what, describe(r)))
        lines = [l for l in r.stdout.splitlines() if l.strip()]
        self.assertTrue(lines, "%s: nothing on stdout; %s" % (what, describe(r)))
        self.assertTrue(lines[-1].startswith("migrated:"),
                        "%s: the last stdout line should start 'migrated:'; %s"
                        % (what, describe(r)))
        self.assertIn("chain intact", lines[-1], "%s: %s" % (what, describe(r)))

    def assertCleanFailure(self, r, what, codes=(1,)):
        """Failed with one of the exit codes, a message, and no crash."""
        self.assertIn(r.returncode, codes, "%s: %s" % (what, describe(r)))
        self.assertTrue(r.stderr.strip(), "%s: no message on stderr; %s" % (what, describe(r)))
        self.assertNotRegex(r.stderr, CRASH, "%s: crashed; %s" % (what, describe(r)))

    def assertVerifyCount(self, conninfo, expected, what):
        r = verify(conninfo)
        self.assertEqual(r.returncode, 0, "%s: %s" % (what, describe(r)))
        self.assertTrue(r.stdout.startswith("ok: %d events, chain intact; " % expected),
                        "%s: %s" % (what, describe(r)))

    def assertSameCounts(self, source, db):
        """count(*) of every table of the SQLite file, equal in PostgreSQL."""
        for table in sqlite_tables(source):
            with self.subTest(table=table):
                if table == "due_counts":
                    self.assertEqual(due_counts_pg(self.pg, db), due_counts_sqlite(source))
                    continue
                self.assertTrue(pg_table_exists(self.pg, db, table),
                                "table %s is missing in PostgreSQL" % table)
                self.assertEqual(pg_count(self.pg, db, table), sqlite_count(source, table),
                                 "count(*) of %s: PostgreSQL vs SQLite" % table)


# ---------------------------------------------------------------------------
# 1. a realistic store


class RealisticStoreTest(PgCase):
    """The realistic store migrated: the same chain, tables, rows and summaries."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.db = "realistic"
            cls.source = copy_store(STORE["path"], cls.tmp, "realistic.db")
            cls.conninfo = cls.pg.create_database(cls.db)
            cls.result = migrate(cls.source, cls.conninfo)
        except BaseException:
            cls.tearDownClass()
            raise

    def setUp(self):
        # Every test reads the migrated database: without a migration, nothing to read.
        if self._testMethodName != "test_01_migrate_succeeds":
            if self.result.returncode != 0:
                self.fail("migrate failed (see test_01): " + describe(self.result))

    def test_01_migrate_succeeds(self):
        self.assertMigrated(self.result, "migrate of the realistic store")
        self.assertNotRegex(self.result.stderr, CRASH)

    def test_02_verify_same_count(self):
        sqlite_n = event_count(verify(self.source))
        self.assertEqual(sqlite_n, STORE["events"], "the source changed under migrate")
        self.assertVerifyCount(self.conninfo, sqlite_n, "verify on PostgreSQL")
        self.assertGreater(sqlite_n, 30, "the store is smaller than it should be")

    def test_03_every_table_same_count(self):
        self.assertSameCounts(self.source, self.db)

    def test_04_events_exactly(self):
        expected = events_sqlite(self.source)
        got = events_pg(self.pg, self.db)
        self.assertEqual(len(got), len(expected))
        for e, g in zip(expected, got):
            self.assertEqual(g, e, "event #%s differs" % e[0])
        # The awkward text came through unchanged (COPY's escapes, tabs, newlines).
        bodies = "\n".join(e[7] for e in got)
        self.assertIn(json.dumps(REPORT_TEXT, ensure_ascii=False)[1:-1], bodies)

    def test_05_cylinders(self):
        cols = "code, owner_company_id, state, next_inspection_due, tare_kg"
        expected = sorted((r[0], r[1], r[2], r[3], float(r[4])) for r in sqlite_query(
            self.source, "select %s from cylinders" % cols))
        rows = pg_json(self.pg, self.db, "select coalesce(json_agg(json_build_array(code,"
                       " owner_company_id, state, next_inspection_due::text, tare_kg)), '[]')"
                       " from cylinders")
        got = sorted((r[0], r[1], r[2], r[3], float(r[4])) for r in rows)
        self.assertEqual(got, expected)
        self.assertEqual(len(got), len(STORE["codes"]))
        states = {c: s for c, _, s, _, _ in got}
        self.assertEqual(states[STORE["codes"][2]], "scrapped")
        self.assertEqual(states[STORE["codes"][5]], "scrap_pending")

    def test_06_due_counts_row_by_row(self):
        """Made by PostgreSQL's trigger from the copied cylinders: the same counts as
        SQLite's triggers kept (rows at zero aside)."""
        self.assertEqual(due_counts_pg(self.pg, self.db), due_counts_sqlite(self.source))

    def test_07_every_table_same_rows(self):
        """Beyond the counts: every row of every table, with bytes as hex, booleans as
        0/1 and numbers as numbers (the column types may differ)."""
        for table in sqlite_tables(self.source):
            if table == "due_counts":
                continue  # test_06
            with self.subTest(table=table):
                columns = sqlite_columns(self.source, table)
                types = pg_column_types(self.pg, self.db, table)
                missing = [c for c in columns if c not in types]
                self.assertEqual(missing, [], "columns of %s missing in PostgreSQL" % table)
                self.assertEqual(table_rows_pg(self.pg, self.db, table, columns, types),
                                 table_rows_sqlite(self.source, table, columns, types))

    def test_08_events_partitioned_by_month(self):
        self.assertEqual(self.pg.psql("select relkind from pg_class where oid ="
                                      " 'public.events'::regclass", db=self.db), "p",
                         "events is not a partitioned table")
        self.assertEqual(self.pg.psql("select pg_get_partkeydef('public.events'::regclass)",
                                      db=self.db).lower(), "range (at)")

    def test_09_due_counts_kept_by_triggers(self):
        """In a database of its own: cylinders changed in PostgreSQL move the summary
        as kSchema's triggers move it in SQLite."""
        conninfo = self.pg.create_database("triggers")
        self.assertMigrated(migrate(self.store_copy("triggers.db"), conninfo),
                            "migrate into 'triggers'")
        db = "triggers"

        def consistent(what):
            self.assertEqual(due_counts_pg(self.pg, db, "where n <> 0"),
                             due_of_cylinders_pg(self.pg, db), what)

        consistent("as migrated")
        codes = STORE["codes"]
        changes = [
            ("a new due date", "update cylinders set next_inspection_due = '2031-02-03'"
                               " where code = '%s'" % codes[0]),
            ("a new owner", "update cylinders set owner_company_id = 'CO-N'"
                            " where code = '%s'" % codes[1]),
            ("due date removed", "update cylinders set next_inspection_due = null"
                                 " where code = '%s'" % codes[7]),
            ("flagged", "update cylinders set state = 'scrap_pending'"
                        " where code = '%s'" % codes[4]),
            ("back to active", "update cylinders set state = 'active'"
                               " where code = '%s'" % codes[4]),
            ("a new model", "update cylinders set model = 'YSP26.2'"
                            " where code = '%s'" % codes[6]),
        ]
        for what, sql in changes:
            self.pg.psql(sql, db=db)
            consistent("after " + what)
        before = due_counts_pg(self.pg, db, "where n <> 0")
        self.pg.psql("update cylinders set tare_kg = tare_kg + 1", db=db)
        self.assertEqual(due_counts_pg(self.pg, db, "where n <> 0"), before,
                         "a change of nothing the summary keys on moved it")


# ---------------------------------------------------------------------------
# 2. an interrupted migration, resumed


class ResumeTest(PgCase):
    """A seeded store of 200 000 events over 14 months: migrate --batch 2000 SIGKILLed
    while the schema goes in and again once events are copied, then run to the end,
    then once more."""

    CYLINDERS = 20000
    EVENTS = 200000

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.seed_store()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def seed_store(cls):
        seed = SEED or find_seed()
        if not os.access(seed, os.X_OK):
            raise AssertionError("pingma-bench-seed not found at %s (build it, or set"
                                 " PINGMA_BENCH_SEED)" % seed)
        cls.source = os.path.join(cls.tmp, "seeded.db")
        r = subprocess.run([seed, "--db", cls.source, "--cylinders", str(cls.CYLINDERS),
                            "--events", str(cls.EVENTS), "--history-days", "400",
                            "--fills", "20000", "--scrap", "50"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, universal_newlines=True, timeout=900)
        if r.returncode != 0:
            raise AssertionError("pingma-bench-seed exited %d: %s"
                                 % (r.returncode, r.stderr[-2000:]))

    def start_migrate(self, conninfo):
        proc = subprocess.Popen([BINARY, "migrate", "--from", self.source, "--to", conninfo,
                                 "--batch", "2000"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=clean_environment())
        output = {"stdout": b"", "stderr": b""}

        def drain(name, stream):
            output[name] = stream.read()
            stream.close()

        threads = [threading.Thread(target=drain, args=(n, s), daemon=True)
                   for n, s in (("stdout", proc.stdout), ("stderr", proc.stderr))]
        for t in threads:
            t.start()
        return proc, output, threads

    def kill_when(self, conninfo, db, ready, what):
        """Starts migrate and SIGKILLs it as soon as ready() holds; returns what
        ready() saw. Fails when migrate ends first."""
        proc, output, threads = self.start_migrate(conninfo)
        seen = None
        try:
            deadline = time.monotonic() + 900
            while proc.poll() is None and time.monotonic() < deadline:
                try:
                    seen = ready()
                except PgError:
                    seen = None  # the table is not there yet
                if seen:
                    proc.send_signal(signal.SIGKILL)
                    break
                time.sleep(0.02)
        finally:
            if proc.poll() is None and not seen:
                proc.kill()
            rc = proc.wait(60)
            for t in threads:
                t.join(10)
        self.assertTrue(seen and rc == -signal.SIGKILL,
                        "migrate was to be killed %s, but exited %s first (make the store"
                        " bigger); stderr: %s" % (what, rc, output["stderr"][-2000:]))
        return seen

    def test_concurrent_reader(self):
        """Someone watching the copy (select count(*) from events in a loop, as one
        would) must not make migrate fail."""
        db = "reader"
        conninfo = self.pg.create_database(db)
        done = threading.Event()
        reads = {"ok": 0, "failed": []}

        def watch():
            while not done.is_set():
                try:
                    self.pg.psql("select count(*) from events", db=db)
                    reads["ok"] += 1
                except PgError as e:
                    reads["failed"].append(str(e)[:300])

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            r = migrate(self.source, conninfo, batch=2000)
        finally:
            done.set()
            watcher.join(60)
        self.assertMigrated(r, "migrate with a reader of events beside it (%d reads done)"
                            % reads["ok"])
        self.assertEqual(pg_count(self.pg, db, "events"), sqlite_count(self.source, "events"))
        deadlocks = [f for f in reads["failed"] if "deadlock" in f]
        self.assertEqual(deadlocks, [], "the reader was chosen as a deadlock victim")

    def test_resume_after_sigkill(self):
        db = "resume"
        conninfo = self.pg.create_database(db)
        total = sqlite_count(self.source, "events")
        sqlite_n = event_count(verify(self.source))
        self.assertEqual(sqlite_n, total)

        # 1: as soon as the migrations table appears (the schema going in).
        self.kill_when(conninfo, db, lambda: pg_table_exists(self.pg, db, "schema_migrations"),
                       "while the schema goes in")
        # 2: once some events are in. Watched in the statistics, which take no lock
        # (readers of the log while migrate makes partitions: test_concurrent_reader).
        self.kill_when(conninfo, db, lambda: events_inserted(self.pg, db) > 0,
                       "during the events")
        copied = pg_count(self.pg, db, "events")
        self.assertLess(copied, total, "every event was in before the kill: nothing to resume")
        self.assertGreater(copied, 0)
        self.assertEqual(copied % 2000, 0,
                         "batches of 2000 are committed whole; %d events are in" % copied)
        # 3: to the end.
        r = migrate(self.source, conninfo, batch=2000)
        self.assertMigrated(r, "migrate resumed after SIGKILL")
        self.assertVerifyCount(conninfo, sqlite_n, "verify after the resumed migrate")
        self.assertEqual(pg_count(self.pg, db, "events"), total)
        self.assertEqual(int(self.pg.psql("select count(distinct seq) from events", db=db)),
                         total, "an event copied twice")
        self.assertEqual(self.pg.psql("select min(seq) || ' ' || max(seq) from events", db=db),
                         "1 %d" % total)
        self.assertSameCounts(self.source, db)
        # The last event's hash, the chain's head, as in the file.
        head = sqlite_query(self.source, "select lower(hex(hash)) from events"
                                         " order by seq desc limit 1")[0][0]
        self.assertEqual(self.pg.psql("select encode(hash, 'hex') from events"
                                      " where seq = %d" % total, db=db).lower(), head)
        # Monthly partitions: 14 months of events, no partition holding more than one.
        spans = [int(x) for x in self.pg.psql(
            "select max(at) - min(at) from events group by tableoid", db=db).split()]
        self.assertGreater(len(spans), 1, "every event in one partition")
        self.assertLessEqual(max(spans), 31 * 86400 * 1000,
                             "a partition holds more than a month of events: %r" % spans)
        # 4: once more, after success: nothing new, success again.
        r = migrate(self.source, conninfo, batch=2000)
        self.assertMigrated(r, "migrate run again after success")
        self.assertEqual(pg_count(self.pg, db, "events"), total)
        self.assertSameCounts(self.source, db)
        self.assertVerifyCount(conninfo, sqlite_n, "verify after the third run")
        self.assertEqual(due_counts_pg(self.pg, db), due_counts_sqlite(self.source))


# ---------------------------------------------------------------------------
# 3.-5. after a migration: tampering, token add, bad input


class AfterMigrationTest(PgCase):

    def migrated(self, db):
        """A new database holding the realistic store; returns its conninfo."""
        conninfo = self.pg.create_database(db)
        self.assertMigrated(migrate(self.store_copy(db + ".db"), conninfo),
                            "migrate into %s" % db)
        return conninfo

    # -- 3. tampering ------------------------------------------------------------------

    def test_31_tampered_body(self):
        conninfo = self.migrated("tamper")
        self.pg.psql("update events set body = body || ' ' where seq = 3", db="tamper")
        r = verify(conninfo)
        self.assertEqual(r.returncode, 1, describe(r))
        self.assertRegex(r.stderr, r"#3\b", describe(r))
        self.assertIn("chain breaks", r.stderr)
        self.assertNotIn("chain intact", r.stdout)
        self.assertNotRegex(r.stderr, CRASH)
        # Migrate's own check of the chain finds it too: a run again does not succeed.
        r = migrate(self.store_copy("tamper-again.db"), conninfo)
        self.assertNotEqual(r.returncode, 0, "migrate into a tampered chain: " + describe(r))

    def test_32_tampered_hash_and_missing_event(self):
        conninfo = self.migrated("tamper_hash")
        self.pg.psql("update events set hash = sha256(hash) where seq = 7", db="tamper_hash")
        r = verify(conninfo)
        self.assertEqual(r.returncode, 1, describe(r))
        self.assertRegex(r.stderr, r"#[78]\b", describe(r))

        conninfo = self.migrated("tamper_gap")
        self.pg.psql("delete from events where seq = 5", db="tamper_gap")
        r = verify(conninfo)
        self.assertEqual(r.returncode, 1, describe(r))
        self.assertRegex(r.stderr, r"#[56]\b", describe(r))

    # -- 4. token add ------------------------------------------------------------------

    def test_41_token_add(self):
        conninfo = self.migrated("tokens")
        r = run(["token", "add", "--db", conninfo, "--role", "company",
                 "--subject", "CO-PG"], timeout=120)
        self.assertEqual(r.returncode, 0, describe(r))
        lines = [l for l in r.stdout.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, describe(r))
        token = lines[0].strip()
        self.assertRegex(token, TOKEN)
        self.assertEqual(self.pg.psql("select role || '/' || subject from tokens"
                                      " where subject = 'CO-PG'", db="tokens"),
                         "company/CO-PG")
        # Kept as its SHA-256, as on SQLite.
        self.assertEqual(self.pg.psql("select count(*) from tokens where hash ="
                                      " sha256('%s'::bytea)" % token, db="tokens"), "1")
        self.assertEqual(pg_count(self.pg, "tokens", "tokens"),
                         sqlite_count(STORE["path"], "tokens") + 1)
        self.assertVerifyCount(conninfo, STORE["events"] + 1, "verify after token add")
        last = pg_json(self.pg, "tokens", "select json_build_array(seq, type, body)"
                                          " from events order by seq desc limit 1")
        self.assertEqual(last[0], STORE["events"] + 1)
        self.assertEqual(last[1], "token_added")
        added = json.loads(last[2])
        self.assertRegex(added.pop("id"), r"^tk-[0-9a-f]{12}$")  # the token's public id
        self.assertEqual(added, {"role": "company", "subject": "CO-PG"})
        # Another, then the count again: the head moves on.
        r = run(["token", "add", "--db", conninfo, "--role", "station", "--subject", "ST-PG"],
                timeout=120)
        self.assertEqual(r.returncode, 0, describe(r))
        self.assertRegex(r.stdout.strip(), TOKEN)
        self.assertNotEqual(r.stdout.strip(), token)
        self.assertVerifyCount(conninfo, STORE["events"] + 2, "verify after two token adds")

    # -- 5. bad input --------------------------------------------------------------------

    def test_51_missing_source(self):
        conninfo = self.pg.create_database("nosource")
        missing = os.path.join(self.tmp, "nonexistent.db")
        r = migrate(missing, conninfo, timeout=120)
        self.assertCleanFailure(r, "migrate from a missing file", codes=(1, 2))
        self.assertFalse(os.path.exists(missing), "migrate created the missing source file")
        if pg_table_exists(self.pg, "nosource", "events"):
            self.assertEqual(pg_count(self.pg, "nosource", "events"), 0)
        # Best of all nothing at all (recorded, not required).
        type(self).tables_after_missing_source = self.pg.psql(
            "select count(*) from pg_tables where schemaname = 'public'", db="nosource")
        # verify on a database holding no store: a clean failure, not "ok: 0 events".
        r = verify(self.pg.create_database("empty"))
        self.assertCleanFailure(r, "verify on an empty database")
        self.assertNotIn("chain intact", r.stdout)

    def test_52_unreachable_server(self):
        for what, args in (("verify", ["verify", "--db", UNREACHABLE]),
                           ("token add", ["token", "add", "--db", UNREACHABLE, "--role",
                                          "company", "--subject", "X"]),
                           ("migrate", ["migrate", "--from", STORE["path"],
                                        "--to", UNREACHABLE])):
            with self.subTest(command=what):
                try:
                    r = run(args, timeout=30)
                except subprocess.TimeoutExpired:
                    self.fail("%s on a server that does not answer ran for 30 s" % what)
                self.assertCleanFailure(r, what + " on " + UNREACHABLE)
                self.assertRegex(r.stderr, re.compile(r"connect", re.IGNORECASE),
                                 "%s: the message should say it could not connect; %s"
                                 % (what, describe(r)))

    def test_53_another_chain_shorter(self):
        """The database holds the realistic store; a store of two token adds (its own
        chain, shorter) is refused, and nothing changes."""
        conninfo = self.migrated("conflict")
        before = events_pg(self.pg, "conflict")
        other = token_store(os.path.join(self.tmp, "other-short.db"), "CO-X", "CO-Y")
        r = migrate(other, conninfo)
        self.assertCleanFailure(r, "migrate of another chain")
        self.assertRegex(r.stderr, re.compile(r"differ|another chain", re.IGNORECASE), describe(r))
        self.assertEqual(pg_count(self.pg, "conflict", "events"), STORE["events"])
        self.assertEqual(events_pg(self.pg, "conflict"), before)
        self.assertSameCounts(STORE["path"], "conflict")
        self.assertVerifyCount(conninfo, STORE["events"], "verify after the refusal")

    def test_54_another_chain_longer(self):
        """The database holds a chain of two events; the realistic store (longer,
        another chain) must not be appended after them."""
        conninfo = self.pg.create_database("conflict_long")
        small = token_store(os.path.join(self.tmp, "small.db"), "CO-S1", "CO-S2")
        self.assertMigrated(migrate(small, conninfo), "migrate of the small store")
        before = events_pg(self.pg, "conflict_long")
        self.assertEqual(len(before), 2)
        r = migrate(self.store_copy("long.db"), conninfo)
        self.assertCleanFailure(r, "migrate of a longer, other chain")
        self.assertRegex(r.stderr, re.compile(r"differ|another chain", re.IGNORECASE), describe(r))
        self.assertEqual(events_pg(self.pg, "conflict_long"), before)
        self.assertEqual(pg_count(self.pg, "conflict_long", "cylinders"), 0)
        self.assertVerifyCount(conninfo, 2, "verify after the refusal")


if __name__ == "__main__":
    BINARY = take_binary_argument()
    SEED = os.environ.get("PINGMA_BENCH_SEED") or None
    unittest.main(verbosity=1)
