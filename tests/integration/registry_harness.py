"""Process-level harness for pingma-registry integration tests (standard library only).

Starts the real binary on 127.0.0.1:0 in a temporary directory, reads the
"listening on http://HOST:PORT" line, talks JSON over real sockets and stops the
server with SIGTERM (asserting exit status 0), as API.md promises.

    reg = Registry(binary)            # temp dir + db path
    admin = reg.token("admin", "root")
    reg.start()
    status, body = reg.request("GET", "/v1/cylinders/X", token=admin)
    reg.stop()                        # SIGTERM, asserts exit 0
    reg.cleanup()
"""

import http.client
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
from datetime import date, datetime, timedelta, timezone

LISTEN_LINE = re.compile(r"^listening on https?://([0-9A-Za-z.\-\[\]:]+):(\d+)\s*$")
JT808_LINE = re.compile(r"^jt808 on (\S+):(\d+)$")
METRICS_LINE = re.compile(r"^metrics on http://(\[[^\]]+\]|[^:]+):(\d+)/metrics$")
SHANGHAI = timezone(timedelta(hours=8))


# ---------------------------------------------------------------------------
# command line


def take_binary_argument():
    """Returns the registry binary from sys.argv[1] (removed from argv so that
    unittest does not see it) or from $PINGMA_REGISTRY; exits 2 when neither."""
    binary = None
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        binary = sys.argv.pop(1)
    if binary is None:
        binary = os.environ.get("PINGMA_REGISTRY")
    if not binary:
        sys.stderr.write(
            "usage: python3 %s /path/to/pingma-registry [unittest args]"
            " (or set PINGMA_REGISTRY)\n" % sys.argv[0])
        sys.exit(2)
    return os.path.abspath(binary)


# ---------------------------------------------------------------------------
# dates: rules are evaluated on "today" in Asia/Shanghai (UTC+8)


def today_shanghai():
    return (datetime.now(timezone.utc) + timedelta(hours=8)).date()


def wait_past_shanghai_midnight(margin_seconds=90):
    """Sleeps over the Asia/Shanghai midnight when it is less than margin_seconds
    away, so that "today" cannot change while boundary tests run."""
    now = datetime.now(timezone.utc) + timedelta(hours=8)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(),
                                now.tzinfo)
    left = (midnight - now).total_seconds()
    if left < margin_seconds:
        time.sleep(left + 2)


def iso(d):
    return d.isoformat()


def year_month(d):
    return "%04d-%02d" % (d.year, d.month)


def add_months(year, month, n):
    """(year, month) shifted by n months."""
    index = year * 12 + (month - 1) + n
    return index // 12, index % 12 + 1


def ym_text(year, month):
    return "%04d-%02d" % (year, month)


def last_day(year, month):
    ny, nm = add_months(year, month, 1)
    return date(ny, nm, 1) - timedelta(days=1)


def add_years(d, n):
    """Same month and day n years later; 29 February becomes 28 February."""
    try:
        return d.replace(year=d.year + n)
    except ValueError:
        return d.replace(year=d.year + n, day=28)


def now_rfc3339(offset_seconds=0):
    t = datetime.now(timezone.utc) + timedelta(seconds=offset_seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


# ---------------------------------------------------------------------------
# HTTP


class NoAnswer(Exception):
    """The server closed or reset the connection without an HTTP answer."""


def _decode(data, content_type):
    if not data:
        return None
    text = data.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


class Connection:
    """One keep-alive HTTP/1.1 connection; reconnects after a failure when asked."""

    def __init__(self, host, port, timeout=30.0, ssl_context=None):
        self.host, self.port, self.timeout = host, port, timeout
        self.ssl_context = ssl_context  # HTTPS when set
        self._conn = None

    def close(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except OSError:
                pass
            self._conn = None

    def request(self, method, path, body=None, token=None, raw=None, headers=None,
                retry=False):
        """Sends one request; returns (status, decoded body, response headers).

        body is JSON-encoded; raw (bytes or str) is sent verbatim instead. Raises
        NoAnswer when the server closes without answering (after one reconnect when
        retry is set, for idempotent requests on a reused connection)."""
        attempts = 2 if retry else 1
        last = None
        for _ in range(attempts):
            try:
                return self._once(method, path, body, token, raw, headers)
            except (http.client.HTTPException, OSError) as e:
                last = e
                self.close()
        raise NoAnswer("%s %s: no HTTP answer (%s: %s)"
                       % (method, path, type(last).__name__, last))

    def _once(self, method, path, body, token, raw, headers):
        if self._conn is None and self.ssl_context is not None:
            self._conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                                     context=self.ssl_context)
        elif self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port,
                                                    timeout=self.timeout)
        conn = self._conn
        if raw is not None:
            data = raw.encode("utf-8") if isinstance(raw, str) else raw
        elif body is not None:
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        else:
            data = None
        conn.putrequest(method, path, skip_accept_encoding=True)
        given = {k.lower() for k in (headers or {})}
        if data is not None:
            if "content-type" not in given:
                conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(len(data)))
        elif method in ("POST", "PUT", "PATCH"):
            conn.putheader("Content-Length", "0")
        if token is not None:
            conn.putheader("Authorization", "Bearer " + token)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders()
        send_error = None
        if data:
            try:
                conn.send(data)
            except (BrokenPipeError, ConnectionResetError) as e:
                # The server may answer (e.g. 413) and close before reading it all.
                send_error = e
        try:
            resp = conn.getresponse()
            payload = resp.read()
        except (http.client.HTTPException, OSError) as e:
            if send_error is not None:
                raise OSError("send failed (%s) and no answer could be read (%s)"
                              % (send_error, e))
            raise
        if resp.will_close or send_error is not None:
            self.close()
        return resp.status, _decode(payload, resp.getheader("Content-Type")), \
            dict(resp.getheaders())


# ---------------------------------------------------------------------------
# the registry process


# With PINGMA_TEST_STORE=postgresql, each Registry gets a new database of its own
# on one throw-away PostgreSQL cluster (pg_cluster.py), started on first use and
# stopped when the test process ends, instead of a SQLite file.
STORE = os.environ.get("PINGMA_TEST_STORE", "sqlite")
_PG = {"cluster": None, "databases": 0}


def postgres_database():
    """A new, empty database on the shared cluster: its connection string."""
    if _PG["cluster"] is None:
        import atexit
        from pg_cluster import PgCluster
        cluster = PgCluster()
        cluster.start()
        atexit.register(cluster.stop)
        _PG["cluster"] = cluster
    _PG["databases"] += 1
    return _PG["cluster"].create_database("registry_%d" % _PG["databases"])


_SECRETS = {}  # a PostgreSQL database's secrets folder, by connection string


def secrets_dir_for(db):
    """The secrets folder of a store (the customer hash key, the log's signing
    key): beside a SQLite file, as the registry makes it by default; for a
    PostgreSQL database one folder, made once and shared by every registry on it
    (as a site shares it: the registries must hash with the same key)."""
    if not db.startswith("postgres"):
        return os.path.join(os.path.dirname(os.path.abspath(db)), "pingma-secrets")
    if db not in _SECRETS:
        import atexit
        folder = tempfile.mkdtemp(prefix="pingma-secrets-")
        atexit.register(shutil.rmtree, folder, True)
        _SECRETS[db] = folder
    return _SECRETS[db]


def _inline(sql, params):
    """`sql` with each ? replaced by its parameter as a PostgreSQL literal."""
    parts = sql.split("?")
    assert len(parts) == len(params) + 1, "one parameter per ?"
    out = parts[0]
    for value, rest in zip(params, parts[1:]):
        if value is None:
            literal = "NULL"
        elif isinstance(value, (int, float)):
            literal = repr(value)
        else:
            if isinstance(value, bytes):
                value = value.decode("utf-8")
            literal = "'" + value.replace("'", "''") + "'"
        out += literal + rest
    return out


class Registry:
    """A pingma-registry server process with its own temporary directory and db."""

    def __init__(self, binary, workdir=None, db_path=None):
        self.binary = binary
        self.own_workdir = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix="pingma-registry-it-")
        if db_path is None and STORE == "postgresql":
            db_path = postgres_database()
        self.db = db_path or os.path.join(self.workdir, "registry.db")
        self.proc = None
        self.host = None
        self.port = None
        self._stderr_file = None
        self._stdout_lines = []
        self._reader = None
        self._starts = 0
        self.ssl_context = None  # set for a registry serving HTTPS

    @property
    def secrets_dir(self):
        return secrets_dir_for(self.db)

    # -- command-line programs ------------------------------------------------

    def run_cli(self, *args, timeout=60):
        return subprocess.run([self.binary] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout,
                              universal_newlines=True)

    def token(self, role, subject):
        """`token add`: returns the bearer token printed alone on one line."""
        r = self.run_cli("token", "add", "--db", self.db, "--role", role,
                         "--subject", subject)
        if r.returncode != 0:
            raise AssertionError("token add --role %s --subject %s exited %d: %s"
                                 % (role, subject, r.returncode, r.stderr.strip()))
        lines = [l for l in r.stdout.splitlines() if l.strip()]
        if len(lines) != 1 or len(lines[0].split()) != 1:
            raise AssertionError("token add should print the token alone on one line,"
                                 " printed %r" % r.stdout)
        return lines[0].strip()

    def verify(self):
        """`verify --db`: returns the CompletedProcess (returncode, stdout, stderr)."""
        return self.run_cli("verify", "--db", self.db)

    def wait_logged(self, timeout=10.0):
        """Waits until the verifiable log's signed head holds every event committed
        so far. On PostgreSQL, what follows the log in its order (the EPCIS export,
        a history's log_index) follows the sequencer, a second behind at most; on
        SQLite the events' order is the log's from their commit."""
        events = self.query("SELECT count(*) AS n FROM events")[0][0]
        deadline = time.monotonic() + timeout
        while True:
            status, head = self.request("GET", "/v1/log/head")[:2]
            if status == 200 and head["tree_size"] >= events:
                return head
            if time.monotonic() > deadline:
                raise AssertionError("the log's signed head did not reach %d events in %.0f s:"
                                     " %s %r" % (events, timeout, status, head))
            time.sleep(0.05)

    # -- the store itself, behind the server's back (tests that corrupt or inspect) --

    def query(self, sql, params=()):
        """Rows of `sql` (with ? parameters) run on the store, SQLite or PostgreSQL,
        as lists of values (PostgreSQL's as JSON gives them)."""
        if STORE != "postgresql":
            con = sqlite3.connect(self.db)
            try:
                return [list(r) for r in con.execute(sql, params).fetchall()]
            finally:
                con.close()
        text = _PG["cluster"].psql(
            "select coalesce(json_agg(json_build_array(%s)), '[]') from (%s) q"
            % (self._columns(sql), _inline(sql, params)),
            db=self.db.rsplit("/", 1)[1])
        return json.loads(text)

    def execute(self, sql, params=()):
        """Runs a statement that changes the store, committed."""
        if STORE != "postgresql":
            con = sqlite3.connect(self.db)
            try:
                con.execute(sql, params)
                con.commit()
            finally:
                con.close()
            return
        _PG["cluster"].psql(_inline(sql, params), db=self.db.rsplit("/", 1)[1])

    def stored_bytes(self):
        """Everything the store holds, as bytes: the SQLite file and its WAL, or a
        dump of the PostgreSQL database's rows."""
        if STORE != "postgresql":
            data = b""
            for path in (self.db, self.db + "-wal"):
                if os.path.exists(path):
                    with open(path, "rb") as f:
                        data += f.read()
            return data
        return subprocess.run(["pg_dump", "--data-only", "-d", self.db], check=True,
                              stdout=subprocess.PIPE, timeout=120).stdout

    @staticmethod
    def _columns(sql):
        # The columns of `select a, b, c from ...`, as the subquery q names them.
        head = re.match(r"\s*select\s+(.*?)\s+from\s", sql, re.I | re.S).group(1)
        names = []
        for part in head.split(","):
            name = part.strip().split()[-1].split(".")[-1]
            names.append("q." + name)
        return ", ".join(names)

    # -- serve ---------------------------------------------------------------

    def start(self, timeout=15.0, extra_args=()):
        assert self.proc is None, "already started"
        self._starts += 1
        err_path = os.path.join(self.workdir, "serve-%d.stderr.log" % self._starts)
        if self._stderr_file is not None:
            self._stderr_file.close()
        self._stderr_file = open(err_path, "w+b")
        self._stdout_lines = []
        # A SQLite store finds its secrets beside it by default; a PostgreSQL store
        # must be told where they are.
        secrets = (["--secrets-dir", self.secrets_dir] if self.db.startswith("postgres")
                   else [])
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--db", self.db, "--listen", "127.0.0.1:0"]
            + secrets + list(extra_args),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr_file,
            cwd=self.workdir)
        found = threading.Event()
        address = {}

        def read_stdout(stream):
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                self._stdout_lines.append(line)
                m = LISTEN_LINE.match(line)
                if m and not found.is_set():
                    address["host"], address["port"] = m.group(1), int(m.group(2))
                    found.set()
            stream.close()

        self._reader = threading.Thread(target=read_stdout, args=(self.proc.stdout,),
                                        daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while not found.wait(0.05):
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                raise AssertionError("serve exited %d before listening; stdout %r;"
                                     " stderr: %s" % (rc, self._stdout_lines,
                                                      self.stderr_tail()))
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError("serve printed no 'listening on http://HOST:PORT'"
                                     " line within %.0f s; stdout %r; stderr: %s"
                                     % (timeout, self._stdout_lines,
                                        self.stderr_tail()))
        self.host, self.port = address["host"], address["port"]
        if self.port == 0:
            raise AssertionError("serve printed port 0 instead of the real port")
        return self

    @property
    def jt808_port(self):
        """The port of `serve --jt808-listen`, from its "jt808 on HOST:PORT" line."""
        for line in self._stdout_lines:
            m = JT808_LINE.match(line)
            if m:
                return int(m.group(2))
        raise AssertionError("serve printed no 'jt808 on HOST:PORT' line: %r"
                             % self._stdout_lines)

    @property
    def metrics_port(self):
        """The port of `serve --metrics-listen`, from its "metrics on http://HOST:PORT/metrics"
        line."""
        for line in self._stdout_lines:
            m = METRICS_LINE.match(line)
            if m:
                return int(m.group(2))
        raise AssertionError("serve printed no 'metrics on' line: %r" % self._stdout_lines)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=20.0):
        """SIGTERM; asserts that the server exits 0 within the timeout."""
        assert self.proc is not None, "not started"
        proc, self.proc = self.proc, None
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("serve did not exit within %.0f s of SIGTERM; stderr: %s"
                                 % (timeout, self.stderr_tail()))
        finally:
            if self._reader is not None:
                self._reader.join(5)
        if rc != 0:
            raise AssertionError("serve exited %d after SIGTERM, expected 0; stderr: %s"
                                 % (rc, self.stderr_tail()))
        return rc

    def kill(self):
        """SIGKILL (a crash): no chance to flush or close anything."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        rc = proc.wait(10)
        if self._reader is not None:
            self._reader.join(5)
        return rc

    def stderr_tail(self, limit=3000):
        if self._stderr_file is None:
            return "(none)"
        try:
            if not self._stderr_file.closed:
                self._stderr_file.flush()
            with open(self._stderr_file.name, "rb") as f:
                data = f.read()
        except (OSError, ValueError):
            return "(unreadable)"
        text = data.decode("utf-8", errors="replace")
        return text[-limit:] if text else "(empty)"

    def cleanup(self):
        if self.proc is not None:
            self.kill()
        if self._stderr_file is not None:
            self._stderr_file.close()
        if self.own_workdir and not os.environ.get("PINGMA_KEEP_TMP"):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def stop_and_remove(self, *folders):
        """After a test: stops the server if it runs (asserting a clean exit), then
        removes its files and `folders`, whatever the stop did."""
        try:
            if self.running:
                self.stop()
        finally:
            self.cleanup()
            for folder in folders:
                shutil.rmtree(folder, ignore_errors=True)

    # -- HTTP ------------------------------------------------------------------

    def connection(self, timeout=30.0):
        assert self.port, "not started"
        return Connection(self.host, self.port, timeout, self.ssl_context)

    def request(self, method, path, body=None, token=None, raw=None, headers=None,
                timeout=30.0):
        """One request on a fresh connection; returns (status, body) with the body
        decoded from JSON when it is JSON (else text, else None)."""
        conn = self.connection(timeout)
        try:
            status, data, _ = conn.request(method, path, body=body, token=token,
                                           raw=raw, headers=headers)
        finally:
            conn.close()
        return status, data


def q(text):
    """Percent-encodes a path segment or query value."""
    return urllib.parse.quote(text, safe="")


def id_number(first17):
    """A resident ID number with its GB 11643 check character."""
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(c) * w for c, w in zip(first17, weights))
    return first17 + "10X98765432"[total % 11]


class RegistryCase(unittest.TestCase):
    """A test class around one registry, started once for all its tests: the tokens
    of TOKENS ({attribute: (role, subject)}) are made before it starts (with
    START_ARGS), then world() sets up its data; after the last test the registry is
    stopped (asserting a clean exit) and its files and the class's `tmp` folder, if
    it made one, removed. The binary is the test module's BINARY."""

    TOKENS = {}
    START_ARGS = ()
    tmp = None

    @classmethod
    def setUpClass(cls):
        cls.reg = Registry(sys.modules[cls.__module__].BINARY)
        try:
            for attr, (role, subject) in cls.TOKENS.items():
                setattr(cls, attr, cls.reg.token(role, subject))
            cls.reg.start(extra_args=cls.START_ARGS)
            cls.world()
        except BaseException:
            cls._remove()
            raise

    @classmethod
    def tearDownClass(cls):
        cls._remove()

    @classmethod
    def _remove(cls):
        try:
            if cls.reg.running:
                cls.reg.stop()
        finally:
            cls.reg.cleanup()
            if cls.tmp:
                shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def world(cls):
        """The data every test of the class starts from (none by default)."""

    @classmethod
    def call(cls, method, path, body=None, token=None):
        return cls.reg.request(method, path, body=body, token=token)

    @classmethod
    def post(cls, path, body, token, expect=(200, 201)):
        status, answer = cls.call("POST", path, body, token)
        assert status in expect, "POST %s -> %s %r" % (path, status, answer)
        return answer
