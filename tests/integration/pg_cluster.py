"""A throw-away PostgreSQL cluster for integration tests (standard library only).

Makes a temporary data directory with initdb, starts the server on 127.0.0.1 and
a free port (its Unix socket in the same directory) and removes everything on
stop(). PostgreSQL refuses to run as root: when the tests run as root (CI), initdb,
pg_ctl and the server run as the user `nobody` (runuser), in a directory under
/tmp that nobody owns. SQL goes through the psql program.

    with PgCluster() as pg:
        pg.create_database("pingma")
        pg.psql("select 1")                      # -> "1"
        uri = pg.conninfo("pingma")              # postgresql://postgres@127.0.0.1:PORT/pingma

A synchronous hot standby for failover tests (streaming replication, made with
pg_basebackup; the primary's commits wait until the standby has flushed them):

    standby = pg.add_standby()                   # a PgStandby, running and in sync
    uri = pg.failover_conninfo(standby, "pingma")  # both hosts, read-write wanted
    pg.kill()                                    # the primary's power cut
    standby.promote()                            # the standby takes writes
    pg.stop()                                    # stops and removes its standbys too

Backup and restore (WAL archiving, pg_basebackup, archive recovery; docs/backup.md):

    pg = PgCluster(wal_archive=True).start()     # archive_command copies to pg.archive
    backup = pg.base_backup()                    # pg_basebackup -X none -c fast
    pg.wait_archived(pg.switch_wal())            # the segment being written, archived
    restored = PgRestore(backup, archive=pg.archive).start()
    restored.wait_recovered()                    # replayed to the archive's end, promoted
    restored.psql("select ...")
    restored.stop(); pg.stop()
"""

import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

UNPRIVILEGED_USER = "nobody"

# Variables that would make psql (libpq) connect somewhere else or ask for things.
_LIBPQ_VARIABLES = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD",
                    "PGPASSFILE", "PGSERVICE", "PGSERVICEFILE", "PGOPTIONS", "PGSSLMODE",
                    "PGREQUIRESSL", "PGTARGETSESSIONATTRS", "PGDATA")


class PgError(Exception):
    """A PostgreSQL program failed (the message carries its output)."""


def clean_environment(extra=None):
    """os.environ without the libpq variables (so that nothing but the URI decides
    where a client connects), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in _LIBPQ_VARIABLES}
    env["PGCONNECT_TIMEOUT"] = "10"
    if extra:
        env.update(extra)
    return env


def _version_key(path):
    # /usr/lib/postgresql/15/bin/initdb -> (15,); 9.6 -> (9, 6)
    version = path.split(os.sep)[-3]
    return tuple(int(p) for p in re.findall(r"\d+", version)) or (0,)


def find_bindir():
    """The directory of initdb, pg_ctl and postgres: the highest version under
    /usr/lib/postgresql, else `pg_config --bindir`. Raises PgError when there is
    none (the Quick start installs postgresql-15)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
    if found:
        return os.path.dirname(found[-1])
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            bindir = subprocess.run([pg_config, "--bindir"], stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, universal_newlines=True,
                                    timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            bindir = ""
        if bindir and os.access(os.path.join(bindir, "initdb"), os.X_OK):
            return bindir
    raise PgError("PostgreSQL server programs not found: no /usr/lib/postgresql/*/bin/initdb"
                  " and no initdb in `pg_config --bindir`. Install the server"
                  " (apt-get install postgresql-15, as the Quick start does).")


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path, limit=4000):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return "(no log)"
    text = data.decode("utf-8", errors="replace")
    return text[-limit:] if text.strip() else "(empty log)"


def _alive(pid):
    """Whether pid runs (a zombie waiting for its reaper counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _proc_stat(pid):
    """(state, ppid) of pid from /proc, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1])
    except (OSError, IndexError, ValueError):
        return None


def _pids():
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def _children(pid):
    """The pids whose parent is pid."""
    found = []
    for p in _pids():
        stat = _proc_stat(p)
        if stat is not None and stat[1] == pid:
            found.append(p)
    return found


def _processes_in(directory):
    """The pids whose working directory is `directory` or under it: a server's
    postmaster and every process it started (they all run in the data directory),
    and the programs _run_server_program runs there."""
    directory = os.path.realpath(directory)
    found = []
    for p in _pids():
        if p == os.getpid():
            continue
        try:
            cwd = os.readlink("/proc/%d/cwd" % p)
        except OSError:
            continue
        if cwd == directory or cwd.startswith(directory + os.sep):
            found.append(p)
    return found


def _sigkill_all(pids, wait=10.0):
    """SIGKILL to each pid; waits until they are gone. Returns those still alive."""
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + wait
    left = [p for p in pids if _alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.02)
        left = [p for p in left if _alive(p)]
    return left


def backup_start_segment(backup):
    """The WAL file a base backup starts in (its backup_label's START WAL LOCATION):
    a restore from it needs that segment and those after it."""
    with open(os.path.join(backup, "backup_label")) as f:
        m = re.search(r"^START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)", f.read(), re.M)
    if not m:
        raise PgError("no START WAL LOCATION in %s/backup_label" % backup)
    return m.group(1)


class PgCluster:
    """One PostgreSQL server in its own temporary directory."""

    DIR_PREFIX = "pingma-pg-"

    def __init__(self, bindir=None, wal_archive=False):
        """wal_archive: archive every finished WAL segment into the folder
        self.archive (archive_mode = on; set in postgresql.conf before the first
        start), as a site that takes base backups does."""
        self.bindir = bindir or find_bindir()
        self.psql_program = os.path.join(self.bindir, "psql")
        if not os.access(self.psql_program, os.X_OK):
            self.psql_program = shutil.which("psql")
        if not self.psql_program:
            raise PgError("psql not found (in %s or on PATH); install postgresql-client"
                          % self.bindir)
        self.as_root = os.geteuid() == 0
        self.dir = None
        self.data = None
        self.log = None
        self.port = None
        self.host = "127.0.0.1"
        self.standbys = []
        self.wal_archive = wal_archive
        self.archive = None
        self._backups = 0

    # -- running the server's programs -------------------------------------------

    def _server_command(self, args):
        """args as the user the server runs as (nobody when we are root)."""
        if self.as_root:
            runuser = shutil.which("runuser") or "/usr/sbin/runuser"
            return [runuser, "-u", UNPRIVILEGED_USER, "--"] + list(args)
        return list(args)

    def _run_server_program(self, args, timeout=120):
        """Runs initdb or pg_ctl; returns (returncode, output). The output goes to
        a file, not a pipe: the server pg_ctl starts must not hold our pipe open."""
        with tempfile.TemporaryFile() as out:
            try:
                proc = subprocess.run(self._server_command(args), stdin=subprocess.DEVNULL,
                                      stdout=out, stderr=subprocess.STDOUT, cwd=self.dir,
                                      env=clean_environment({"LC_ALL": "C.UTF-8"}),
                                      timeout=timeout)
                rc = proc.returncode
            except subprocess.TimeoutExpired:
                rc = None
            out.seek(0)
            text = out.read().decode("utf-8", errors="replace")
        return rc, text

    # -- life cycle --------------------------------------------------------------

    def start(self):
        """initdb and start the server; returns self. Raises PgError with initdb's
        output or the server log's tail when something fails."""
        if self.dir is not None:
            raise PgError("already started")
        self.dir = tempfile.mkdtemp(prefix=self.DIR_PREFIX, dir="/tmp")
        try:
            os.chmod(self.dir, 0o755)
            if self.as_root:
                user = pwd.getpwnam(UNPRIVILEGED_USER)
                os.chown(self.dir, user.pw_uid, user.pw_gid)
            self.data = os.path.join(self.dir, "data")
            self.log = os.path.join(self.dir, "log")
            self._make_data()
            self._configure()
            self._start_server()
        except BaseException:
            self._remove_dir()
            raise
        return self

    def _make_data(self):
        """The data directory: a new cluster (a standby copies its primary's)."""
        self._initdb()

    def _configure(self):
        """Settings in postgresql.conf before the first start: WAL archiving when
        asked for (the archive_command of PostgreSQL's manual, as docs/backup.md
        gives it)."""
        if self.wal_archive:
            self.archive = self._make_folder("archive")
            self._append_settings({
                "archive_mode": "on",
                "archive_command": "test ! -f %s/%%f && cp %%p %s/%%f" % (self.archive,
                                                                          self.archive)})

    def _make_folder(self, name):
        """A folder in self.dir that the server's user owns (mode 0700)."""
        path = os.path.join(self.dir, name)
        os.mkdir(path, 0o700)
        if self.as_root:
            user = pwd.getpwnam(UNPRIVILEGED_USER)
            os.chown(path, user.pw_uid, user.pw_gid)
        return path

    def _append_settings(self, settings):
        """Appends `name = 'value'` lines to postgresql.conf (the last line of a name
        wins); values are written quoted, which every type of setting accepts."""
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\n# pg_cluster.py\n")
            for name, value in settings.items():
                f.write("%s = '%s'\n" % (name, str(value).replace("'", "''")))

    def _initdb(self):
        initdb = os.path.join(self.bindir, "initdb")
        base = [initdb, "-D", self.data, "-U", "postgres", "--auth=trust",
                "--encoding=UTF8"]
        rc, out = self._run_server_program(base + ["--locale=C.UTF-8"])
        if rc != 0:
            # No C.UTF-8 locale here: the C locale with UTF-8 encoding.
            shutil.rmtree(self.data, ignore_errors=True)
            rc2, out2 = self._run_server_program(base + ["--no-locale"])
            if rc2 != 0:
                raise PgError("initdb failed (exit %s with --locale=C.UTF-8, %s with"
                              " --no-locale):\n%s\n---\n%s" % (rc, rc2, out[-2000:],
                                                               out2[-2000:]))

    def _start_server(self, attempts=3):
        pg_ctl = os.path.join(self.bindir, "pg_ctl")
        last = ""
        for _ in range(attempts):
            port = self.port or free_port()
            options = ("-c listen_addresses=127.0.0.1 -c port=%d"
                       " -c unix_socket_directories=%s -c fsync=on" % (port, self.dir))
            rc, out = self._run_server_program(
                [pg_ctl, "-D", self.data, "-o", options, "-l", self.log, "-w", "-t", "60",
                 "start"], timeout=120)
            if rc == 0:
                self.port = port
                return
            last = "pg_ctl start exited %s:\n%s\n--- server log (tail):\n%s" % (
                rc, out[-2000:], _tail(self.log))
            # Stop whatever half-started before trying again (a port taken between
            # free_port() and the bind, most likely).
            self._run_server_program([pg_ctl, "-D", self.data, "-m", "immediate", "-w",
                                      "stop"], timeout=60)
            if self.port is not None:
                time.sleep(1)  # a restart on the same port: wait for the old one
        raise PgError("PostgreSQL did not start in %s: %s" % (self.dir, last))

    def restart(self):
        """Starts the server again on the same data and port (after stop_server() or
        kill(); crash recovery runs when it was killed)."""
        deadline = time.monotonic() + 60
        while True:
            try:
                self._start_server(attempts=1)
                return self
            except PgError:
                # Backends of a killed postmaster may hold its shared memory briefly.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def postmaster_pid(self):
        """The server's pid from postmaster.pid, or None."""
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return int(f.readline().strip())
        except (OSError, ValueError, TypeError):
            return None

    def kill(self):
        """A power cut: SIGKILL to the postmaster and every process it started, at
        the same moment (no shutdown checkpoint, nothing flushed that was not; the
        next start runs crash recovery). The postmaster is stopped (SIGSTOP) first so
        that it cannot start a backend between the listing of its children and the
        kill, and no orphaned backend goes on to finish a statement afterwards.
        Returns when all of them are gone."""
        pid = self.postmaster_pid()
        if pid is None or not _alive(pid) or pid not in _processes_in(self.data):
            return  # not running (a stale postmaster.pid: the pid may be another's now)
        try:
            os.kill(pid, signal.SIGSTOP)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            stat = _proc_stat(pid)
            if stat is None or stat[0] in ("T", "t", "Z", "X"):
                break
            time.sleep(0.001)
        left = _sigkill_all([pid] + _children(pid))
        if left:
            raise PgError("processes %s of the server in %s outlived SIGKILL"
                          % (left, self.dir))

    def stop_server(self):
        """pg_ctl stop -m fast; the data directory stays (restart() starts it again)."""
        if self.data is None or not os.path.isdir(self.data):
            return
        pg_ctl = os.path.join(self.bindir, "pg_ctl")
        rc, out = self._run_server_program([pg_ctl, "-D", self.data, "-m", "fast", "-w",
                                            "-t", "60", "stop"], timeout=120)
        if rc != 0 and self.postmaster_pid() is not None and "No such process" not in out \
                and "not running" not in out:
            # Whatever went wrong, do not leave a server behind.
            self._run_server_program([pg_ctl, "-D", self.data, "-m", "immediate", "-w",
                                      "stop"], timeout=60)

    def stop(self):
        """Stops the server (and the standbys add_standby made) and removes its
        directory; safe to call twice. Whatever is still running in the directory
        afterwards (a server pg_ctl could not stop, backends of a killed one) is
        killed before the directory goes."""
        try:
            for standby in reversed(self.standbys):
                standby.stop()
        finally:
            if self.dir is not None:
                try:
                    self.stop_server()
                finally:
                    self._remove_dir()

    def _remove_dir(self):
        if self.dir is None:
            return
        directory, self.dir = self.dir, None
        left = _sigkill_all(_processes_in(directory))
        if not os.environ.get("PINGMA_KEEP_TMP"):
            shutil.rmtree(directory, ignore_errors=True)
        if left:
            raise PgError("processes %s in %s outlived SIGKILL" % (left, directory))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def log_tail(self, limit=4000):
        return _tail(self.log, limit) if self.log else "(not started)"

    # -- clients -------------------------------------------------------------------

    def conninfo(self, dbname="pingma"):
        """A libpq URI: postgresql://postgres@127.0.0.1:PORT/DBNAME."""
        if self.port is None:
            raise PgError("not started")
        return "postgresql://postgres@%s:%d/%s" % (self.host, self.port, dbname)

    def psql(self, sql, db="pingma", timeout=120):
        """Runs SQL with psql (unaligned, tuples only, stop on the first error);
        returns its stdout stripped. Raises PgError with stderr on failure."""
        args = [self.psql_program, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                "-d", self.conninfo(db), "-c", sql]
        try:
            r = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=clean_environment(),
                               timeout=timeout)
        except subprocess.TimeoutExpired:
            raise PgError("psql timed out after %s s on %r" % (timeout, sql[:300]))
        out = r.stdout.decode("utf-8", errors="replace")
        err = r.stderr.decode("utf-8", errors="replace")
        if r.returncode != 0:
            raise PgError("psql exited %d on %r (db %s): %s" % (r.returncode, sql[:300], db,
                                                                err.strip() or out.strip()))
        return out.strip()

    def rows(self, sql, db="pingma", sep="|"):
        """The result as a list of rows, each a list of text fields split on `sep`
        (psql's unaligned separator; pick queries whose values do not contain it)."""
        out = self.psql(sql, db)
        return [line.split(sep) for line in out.split("\n")] if out else []

    def create_database(self, name):
        """CREATE DATABASE name (UTF8, from template0); returns its conninfo."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise PgError("database name %r: use [a-z_][a-z0-9_]*" % name)
        self.psql("CREATE DATABASE %s TEMPLATE template0 ENCODING 'UTF8'" % name,
                  db="postgres")
        return self.conninfo(name)

    def database_exists(self, name):
        return self.psql("select count(*) from pg_database where datname = '%s'"
                         % name.replace("'", "''"), db="postgres") == "1"

    # -- backup ----------------------------------------------------------------------

    def base_backup(self, wal="none", dest=None):
        """pg_basebackup of this running server (-c fast, -X `wal`: "none" leaves the
        WAL to the archive, "stream" copies what the backup needs into it) into a new
        folder, by default backup-N in this cluster's directory; returns its path."""
        if self.port is None or self.dir is None:
            raise PgError("base_backup: the server is not started")
        self._allow_replication()
        if dest is None:
            self._backups += 1
            dest = os.path.join(self.dir, "backup-%d" % self._backups)
        basebackup = os.path.join(self.bindir, "pg_basebackup")
        if not os.access(basebackup, os.X_OK):
            basebackup = shutil.which("pg_basebackup") or basebackup
        rc, out = self._run_server_program(
            [basebackup, "-D", dest, "-X", wal, "-c", "fast", "-h", self.host,
             "-p", str(self.port), "-U", "postgres"], timeout=300)
        if rc != 0:
            raise PgError("pg_basebackup -X %s exited %s:\n%s\n--- server log:\n%s"
                          % (wal, rc, out[-3000:], self.log_tail(2000)))
        return dest

    def verify_backup(self, backup):
        """pg_verifybackup of a base backup: its files against its manifest, and the
        WAL from its start to its end read from self.archive (-w). Returns the
        output; raises PgError when it fails."""
        args = [os.path.join(self.bindir, "pg_verifybackup")]
        if self.archive is not None:
            args += ["-w", self.archive]
        rc, out = self._run_server_program(args + [backup])
        if rc != 0:
            raise PgError("pg_verifybackup %s exited %s:\n%s" % (backup, rc, out[-3000:]))
        return out.strip()

    def archive_cleanup(self, backup):
        """pg_archivecleanup ARCHIVE NAME.backup: removes the WAL segments older than
        the start of `backup` (a base backup of this cluster), which a restore from
        it does not need. Returns the names removed, sorted."""
        if self.archive is None:
            raise PgError("archive_cleanup: this cluster does not archive its WAL")
        start = backup_start_segment(backup)
        labels = [n for n in os.listdir(self.archive)
                  if n.startswith(start + ".") and n.endswith(".backup")]
        if len(labels) != 1:
            raise PgError("the backup's history file for %s in the archive: %r"
                          % (start, labels))
        before = set(os.listdir(self.archive))
        rc, out = self._run_server_program(
            [os.path.join(self.bindir, "pg_archivecleanup"), self.archive, labels[0]])
        if rc != 0:
            raise PgError("pg_archivecleanup %s %s exited %s:\n%s"
                          % (self.archive, labels[0], rc, out[-3000:]))
        return sorted(before - set(os.listdir(self.archive)))

    def switch_wal(self):
        """SELECT pg_switch_wal(): closes the segment being written, so that it is
        archived; returns that segment's file name."""
        return self.psql("select pg_walfile_name(pg_switch_wal())", db="postgres")

    def wait_archived(self, segment, timeout=60):
        """Waits until the WAL file `segment` is in self.archive; raises PgError with
        pg_stat_archiver's row and the log's tail when it is not within `timeout` s."""
        if self.archive is None:
            raise PgError("wait_archived: this cluster does not archive its WAL")
        deadline = time.monotonic() + timeout
        while not os.path.exists(os.path.join(self.archive, segment)):
            if time.monotonic() > deadline:
                raise PgError("WAL segment %s not archived within %d s (pg_stat_archiver:"
                              " %s)\n--- server log:\n%s"
                              % (segment, timeout, self.psql(
                                  "select archived_count, last_archived_wal, failed_count,"
                                  " last_failed_wal from pg_stat_archiver", db="postgres"),
                                 self.log_tail(2000)))
            time.sleep(0.05)

    # -- replication ---------------------------------------------------------------

    def add_standby(self, timeout=60):
        """Starts a streaming-replication hot standby of this (running) server on
        another port and makes it synchronous (synchronous_standby_names = '*': a
        commit here is acknowledged only once the standby has flushed it). Returns
        the PgStandby once pg_stat_replication shows it `sync`; raises PgError (and
        leaves nothing of it behind) when that does not happen within `timeout` s.
        stop() stops the standbys too."""
        if self.port is None or self.dir is None:
            raise PgError("add_standby: the primary is not started")
        self._allow_replication()
        standby = PgStandby(self, bindir=self.bindir)
        self.standbys.append(standby)
        try:
            standby.start()
            self.psql("ALTER SYSTEM SET synchronous_standby_names = '*'", db="postgres")
            self.psql("SELECT pg_reload_conf()", db="postgres")
            deadline = time.monotonic() + timeout
            while True:
                states = self.psql("select sync_state from pg_stat_replication",
                                   db="postgres").split()
                if "sync" in states:
                    break
                if time.monotonic() > deadline:
                    seen = self.psql("select application_name, client_addr, state,"
                                     " sync_state from pg_stat_replication", db="postgres")
                    raise PgError(
                        "the standby on port %d did not become synchronous within %d s"
                        " (pg_stat_replication on the primary: %r)\n--- primary log:\n%s"
                        "\n--- standby log:\n%s" % (standby.port, timeout,
                                                     seen or "no rows", self.log_tail(2000),
                                                     standby.log_tail(2000)))
                time.sleep(0.1)
        except BaseException:
            try:
                standby.stop()
            finally:
                self.standbys.remove(standby)
            raise
        return standby

    def _allow_replication(self):
        """A pg_hba.conf line for replication connections from 127.0.0.1 when there
        is none (initdb --auth=trust writes one; this is for a stripped sample)."""
        hba = os.path.join(self.data, "pg_hba.conf")
        with open(hba) as f:
            lines = [l.split() for l in f if l.strip() and not l.lstrip().startswith("#")]
        if any(len(l) >= 4 and l[0] == "host" and l[1] in ("replication", "all")
               and l[3] in ("127.0.0.1/32", "0.0.0.0/0", "all") for l in lines):
            return
        with open(hba, "a") as f:
            f.write("host    replication     all             127.0.0.1/32            trust\n")
        self.psql("SELECT pg_reload_conf()", db="postgres")

    def failover_conninfo(self, standby, dbname="pingma"):
        """A libpq URI naming this server and then the standby, for a session that
        can write: postgresql://postgres@127.0.0.1:P1,127.0.0.1:P2/DB?
        target_session_attrs=read-write. libpq tries the hosts in order and takes
        the first that accepts writes: this one, or the standby once promoted."""
        if self.port is None or standby.port is None:
            raise PgError("not started")
        return ("postgresql://postgres@%s:%d,%s:%d/%s?target_session_attrs=read-write"
                % (self.host, self.port, standby.host, standby.port, dbname))


class PgStandby(PgCluster):
    """A hot standby of a PgCluster: pg_basebackup of the running primary (-R: it
    streams from it), started with the same server options on a port of its own.
    psql(), conninfo(), kill(), stop() and log_tail() work as for a PgCluster."""

    DIR_PREFIX = "pingma-pg-standby-"

    def __init__(self, primary, bindir=None):
        super().__init__(bindir=bindir or primary.bindir)
        self.primary = primary
        self.promoted = False

    def _make_data(self):
        """A base backup of the primary that follows it (-R)."""
        basebackup = os.path.join(self.bindir, "pg_basebackup")
        if not os.access(basebackup, os.X_OK):
            basebackup = shutil.which("pg_basebackup") or basebackup
        rc, out = self._run_server_program(
            [basebackup, "-D", self.data, "-R", "-X", "stream", "-c", "fast",
             "-h", self.primary.host, "-p", str(self.primary.port), "-U", "postgres"],
            timeout=300)
        if rc != 0:
            raise PgError("pg_basebackup from port %d exited %s:\n%s\n--- primary"
                          " log:\n%s" % (self.primary.port, rc, out[-3000:],
                                         self.primary.log_tail(2000)))
        # The primary's log file is not in its data directory; nothing else to drop.

    def promote(self, timeout=60):
        """pg_ctl promote -w: returns once the standby has left recovery and takes
        writes; raises PgError otherwise."""
        pg_ctl = os.path.join(self.bindir, "pg_ctl")
        rc, out = self._run_server_program([pg_ctl, "-D", self.data, "-w", "-t",
                                            str(timeout), "promote"], timeout=timeout + 30)
        if rc != 0:
            raise PgError("pg_ctl promote exited %s:\n%s\n--- standby log:\n%s"
                          % (rc, out[-2000:], self.log_tail(2000)))
        self.promoted = True
        return self

    def in_recovery(self):
        return self.psql("select pg_is_in_recovery()", db="postgres") == "t"

    def stop(self):
        """Stops the standby and removes its directory; safe to call twice. While the
        primary still runs and waits for this standby, it is told not to (so that its
        commits do not hang once the standby is gone)."""
        if self.dir is None:
            return
        try:
            primary = self.primary
            pid = primary.postmaster_pid() if primary.dir is not None else None
            if not self.promoted and pid is not None and _alive(pid):
                try:
                    primary.psql("ALTER SYSTEM RESET synchronous_standby_names",
                                 db="postgres", timeout=20)
                    primary.psql("SELECT pg_reload_conf()", db="postgres", timeout=20)
                except PgError:
                    pass
        finally:
            super().stop()


class PgRestore(PgCluster):
    """A server started from a base backup, as a site restores one: the backup
    copied into a new data directory, `restore_command` reading WAL segments from
    `archive` (none when archive is None) and recovery.signal (when
    recovery_signal), then started on a port of its own. Archive recovery replays
    to the archive's end (or to a target given in `settings`, e.g.
    {"recovery_target": "immediate"}) and then promotes, on a new timeline. The
    restored server does not archive (archive_mode = off), so that it cannot add to
    the archive it reads. start() raises PgError, with the server log's tail, when
    the server refuses to start."""

    DIR_PREFIX = "pingma-pg-restore-"

    def __init__(self, backup, archive=None, recovery_signal=True, settings=None,
                 bindir=None):
        super().__init__(bindir=bindir)
        self.backup = backup
        self.restore_from = archive
        self.recovery_signal = recovery_signal
        self.settings = dict(settings or {})

    def _make_data(self):
        """A copy of the backup (by the server's user, so that it owns the files)."""
        rc, out = self._run_server_program(["cp", "-a", self.backup, self.data])
        if rc != 0:
            raise PgError("cp -a %s %s exited %s: %s" % (self.backup, self.data, rc, out))

    def _configure(self):
        settings = {"archive_mode": "off"}
        if self.restore_from is not None:
            settings["restore_command"] = "cp %s/%%f %%p" % self.restore_from
        settings.update(self.settings)
        self._append_settings(settings)
        if self.recovery_signal:
            rc, out = self._run_server_program(
                ["touch", os.path.join(self.data, "recovery.signal")])
            if rc != 0:
                raise PgError("touch recovery.signal exited %s: %s" % (rc, out))

    def in_recovery(self):
        return self.psql("select pg_is_in_recovery()", db="postgres") == "t"

    def wait_recovered(self, timeout=120):
        """Waits until recovery has ended and the server takes writes; raises
        PgError with the log's tail when it has not within `timeout` s."""
        deadline = time.monotonic() + timeout
        while self.in_recovery():
            if time.monotonic() > deadline:
                raise PgError("still in recovery after %d s\n--- server log:\n%s"
                              % (timeout, self.log_tail(3000)))
            time.sleep(0.1)
        return self


if __name__ == "__main__":
    # A quick self-check: start, create a database, select 1, kill, restart; then a
    # synchronous standby: a row written here is read there, the primary killed,
    # the standby promoted and written through the two-host URI; stop.
    with PgCluster() as pg:
        pg.create_database("pingma")
        assert pg.psql("select 1") == "1"
        pg.psql("create table t(x int); insert into t values (1), (2)")
        pg.kill()
        state = subprocess.run([os.path.join(pg.bindir, "pg_controldata"), pg.data],
                               stdout=subprocess.PIPE, universal_newlines=True,
                               env=clean_environment({"LC_ALL": "C"})).stdout
        # Not shut down: the cluster state is still "in production".
        assert re.search(r"cluster state:\s+in production", state), state
        pg.restart()
        assert pg.psql("select count(*) from t") == "2"
        standby = pg.add_standby()
        pg.psql("insert into t values (3)")
        assert standby.psql("select count(*) from t") == "3"
        uri = pg.failover_conninfo(standby, "pingma")
        pg.kill()
        standby.promote()
        r = subprocess.run([pg.psql_program, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-d", uri, "-c", "insert into t values (4)", "-c",
                            "select count(*) from t"], stdout=subprocess.PIPE,
                           universal_newlines=True, env=clean_environment(), check=True)
        assert r.stdout.strip() == "4", r.stdout
        print("ok: PostgreSQL %s on port %d, standby on port %d promoted"
              % (standby.psql("show server_version"), pg.port, standby.port))
