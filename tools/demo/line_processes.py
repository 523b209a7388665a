"""The processes of a filling line, started and followed from Python (stdlib only).

Registry (pingma-registry serve), ScaleSim (pingma-scale-sim) and Station
(pingma-station), each a real program on loopback ports, for the filling-line demo
(filling_line_demo.py) and the station's process-level tests
(tests/integration/station_test.py). Every class stops what it started.
"""

import json
import os
import queue
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request

DEADLINE = 30  # seconds to wait for a program to say something; nothing asserts a time


class ProcessError(Exception):
    pass


def _pump(stream, q, keep):
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        keep.append(line)
        q.put(line)
    q.put(None)


class _Program:
    """A child process whose stdout lines are queued and whose stderr is kept."""

    def __init__(self, argv, cwd=None, env=None):
        self.argv = argv
        self.stdout_lines, self.stderr_lines = [], []
        self.lines = queue.Queue()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, cwd=cwd, env=env)
        errq = queue.Queue()
        threading.Thread(target=_pump, args=(self.proc.stdout, self.lines, self.stdout_lines),
                         daemon=True).start()
        threading.Thread(target=_pump, args=(self.proc.stderr, errq, self.stderr_lines),
                         daemon=True).start()

    def next_line(self, timeout=DEADLINE):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise ProcessError(f"{os.path.basename(self.argv[0])} said nothing for {timeout} s; "
                               f"stderr: {self.stderr_tail()}")
        if line is None:
            self.lines.put(None)  # stays ended for later readers
            raise ProcessError(f"{os.path.basename(self.argv[0])} ended (exit "
                               f"{self.proc.wait()}); stderr: {self.stderr_tail()}")
        return line

    def stderr_tail(self, n=15):
        return "\n".join(self.stderr_lines[-n:])

    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout=DEADLINE):
        code = self.proc.wait(timeout=timeout)
        for stream in (self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except (OSError, ValueError):
                pass  # the pump thread may be closing it too
        return code

    def stop(self):
        """SIGTERM and the exit status."""
        self.signal(signal.SIGTERM)
        try:
            return self.wait()
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.wait()

    def kill(self):
        self.signal(signal.SIGKILL)
        return self.wait()


class Registry:
    """pingma-registry on a database file; restartable on the same port."""

    def __init__(self, binary, db, jt808=False, tls=None):
        """tls: (certificate, key) files for HTTPS; the certificate is also the CA
        this class trusts."""
        self.binary, self.db = binary, db
        self.program = None
        self.url = None
        self.listen = "127.0.0.1:0"
        self.tls = tls
        self.ssl_context = ssl.create_default_context(cafile=tls[0]) if tls else None
        # JT/T 808 in-vehicle terminals: `serve --jt808-listen`, on the same port
        # after a restart.
        self.jt808_listen = "127.0.0.1:0" if jt808 else None
        self.jt808_port = None

    def token(self, role, subject):
        out = subprocess.run([self.binary, "token", "add", "--db", self.db, "--role", role,
                              "--subject", subject], check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def start(self):
        argv = [self.binary, "serve", "--db", self.db, "--listen", self.listen]
        if self.jt808_listen:
            argv += ["--jt808-listen", self.jt808_listen]
        if self.tls:
            argv += ["--tls-cert", self.tls[0], "--tls-key", self.tls[1]]
        self.program = _Program(argv)
        line = self.program.next_line()
        if self.jt808_listen:
            if not line.startswith("jt808 on "):
                raise ProcessError(f"the registry said {line!r}")
            self.jt808_listen = line[len("jt808 on "):]
            self.jt808_port = int(self.jt808_listen.rsplit(":", 1)[1])
            line = self.program.next_line()
        scheme = "https://" if self.tls else "http://"
        if not line.startswith("listening on " + scheme):
            raise ProcessError(f"the registry said {line!r}")
        self.url = line[len("listening on "):]
        self.listen = self.url[len(scheme):]  # the next start takes the same port
        return self

    def stop(self):
        if self.program:
            code = self.program.stop()
            self.program = None
            return code
        return None

    def call(self, method, path, token, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + token)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=DEADLINE,
                                        context=self.ssl_context) as resp:
                data = resp.read()
                return resp.status, json.loads(data) if data else None  # 204: no body
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def must(self, method, path, token, body=None):
        status, answer = self.call(method, path, token, body)
        if status >= 300:
            raise ProcessError(f"{method} {path}: {status} {answer}")
        return answer


class ScaleSim:
    """pingma-scale-sim on loopback, with its control port."""

    def __init__(self, binary, flow_kg_s=5.0, extra=()):
        self.program = _Program([binary, "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0",
                                 "--flow-kg-s", str(flow_kg_s)] + list(extra))
        seen = {}
        while len(seen) < 2:
            line = self.program.next_line()
            for key in ("modbus on ", "control on "):
                if line.startswith(key):
                    seen[key] = line[len(key):]
        host, port = seen["modbus on "].rsplit(":", 1)
        self.host, self.port = host, int(port)
        chost, cport = seen["control on "].rsplit(":", 1)
        self.control_sock = socket.create_connection((chost, int(cport)), timeout=DEADLINE)
        self.control_file = self.control_sock.makefile("rwb")

    def control(self, line):
        self.control_file.write((line + "\n").encode())
        self.control_file.flush()
        answer = self.control_file.readline().decode("utf-8").strip()
        if answer.startswith("error"):
            raise ProcessError(f"scale sim: {line!r}: {answer}")
        return answer

    def status(self):
        return json.loads(self.control("status"))

    def interlock_writes(self):
        return self.status()["interlock_writes"]

    def clear_platform(self):
        """Takes off whatever cylinder is on the platform (none is fine)."""
        if self.status()["bits"]["present"]:
            self.control("remove")

    def stop(self):
        try:
            self.control_file.close()
            self.control_sock.close()
        except OSError:
            pass
        return self.program.stop()


class Station:
    """pingma-station with a config written here; its events are followed on stdout."""

    def __init__(self, binary, workdir, station_id, registry_url, token, positions,
                 check_deadline_ms=1500, sync_interval_s=60, ca_file=None,
                 status_listen="127.0.0.1:0"):
        """positions: [(id, operator, scanner_toml, scale_toml)], the TOML inline tables;
        status_listen: where the operator's screen and GET /status are served."""
        self.binary = binary
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        with open(os.path.join(workdir, "station.token"), "w") as f:
            f.write(token + "\n")
        lines = ["[station]", f'id = "{station_id}"', f'registry = "{registry_url}"',
                 'token_file = "station.token"', 'data_dir = "data"',
                 f'status_listen = "{status_listen}"', f"check_deadline_ms = {check_deadline_ms}",
                 f"sync_interval_s = {sync_interval_s}"]
        if ca_file:
            lines.append(f'ca_file = "{ca_file}"')
        lines.append("")
        for pid, operator, scanner, scale in positions:
            lines += ["[[position]]", f'id = "{pid}"', f'operator = "{operator}"',
                      f"scanner = {scanner}", f"scale = {scale}", ""]
        self.config = os.path.join(workdir, "station.toml")
        with open(self.config, "w") as f:
            f.write("\n".join(lines))
        self.program = None
        self.events = []
        self.status_url = None

    def start(self, env=None):
        """env: the environment (None: this process's), e.g. with systemd's
        NOTIFY_SOCKET and WATCHDOG_USEC."""
        self.program = _Program([self.binary, "--config", self.config], cwd=self.workdir,
                                env=env)
        if self.program.next_line() != "ready":
            raise ProcessError(f"the station did not say ready: {self.program.stdout_lines}")
        ready = self.next_event()
        self.status_url = ready["status"]
        self.screen_url = ready["screen"]
        return self

    def next_event(self, timeout=DEADLINE):
        event = json.loads(self.program.next_line(timeout))
        self.events.append(event)
        return event

    def wait_for(self, pred, timeout=DEADLINE, what="an event", seen=False):
        """The first new event for which pred(event) holds; with seen=True, an event
        already read counts too (the newest such)."""
        if seen:
            for event in reversed(self.events):
                if pred(event):
                    return event
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise ProcessError(f"no {what} within {timeout} s; last events: "
                                   f"{self.events[-8:]}; stderr: {self.program.stderr_tail()}")
            event = self.next_event(left)
            if pred(event):
                return event

    def read_events(self):
        """Reads every event already printed, without waiting; returns all read so far."""
        while self.program:
            try:
                line = self.program.lines.get_nowait()
            except queue.Empty:
                break
            if line is None:
                self.program.lines.put(None)
                break
            self.events.append(json.loads(line))
        return self.events

    def status(self):
        with urllib.request.urlopen(self.status_url, timeout=DEADLINE) as resp:
            return json.loads(resp.read())

    def scanner_address(self, position_id):
        """The HOST:PORT a tcp-listen scanner of the position took."""
        for p in self.status()["positions"]:
            if p["id"] == position_id:
                return p["scanner"]
        raise ProcessError(f"no position {position_id}")

    def scan(self, position_id, text):
        host, port = self.scanner_address(position_id).rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=DEADLINE) as s:
            s.sendall(text.encode() + b"\r\n")

    def stop(self):
        code = self.program.stop() if self.program else None
        self.program = None
        return code

    def kill(self):
        code = self.program.kill() if self.program else None
        self.program = None
        return code


def tcp_scale(sim, profile="pingma-fill-v1"):
    return (f'{{ transport = "tcp", host = "{sim.host}", port = {sim.port}, unit = 1, '
            f'profile = "{profile}" }}')


def tcp_listen_scanner():
    return '{ kind = "tcp-listen", listen = "127.0.0.1:0" }'
