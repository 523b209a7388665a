#!/usr/bin/env python3
"""pingma benchmarks: each one prints its figures as ratios to a baseline that is
measured in the same run, because absolute times on shared machines do not compare
from run to run.

  bench.py fill-check    fill checks over HTTP (32 connections, wrk) vs a bare
                         RESTinio handler returning fixed JSON; and the floor
                         under both: a server that only appends each request
                         durably to SQLite, with and without the fdatasync
  bench.py batch         registering a fleet through /v1/cylinders/batch vs inserting
                         the same rows straight into SQLite in one transaction
  bench.py large-store   fill-check p99 on a 1,000,000-cylinder / 10,000,000-event
                         store vs a 10,000-cylinder store; bytes on disk per event
  bench.py photos        label photos decoded per second and the pass rate:
                         pingma-scan vs zbarimg vs ZXing's ReadBarcode called once
                         with its defaults, on the generated photo set of
                         tests/integration/photo_set.py
  bench.py station-decide  scan to decision at a filling position (scan line over
                         TCP -> stable Modbus read -> POST /v1/fill-checks -> the
                         decision event) vs the same fill check sent straight to the
                         registry; the Modbus read timed alone (the floor)
  bench.py replica       the station's replica: a full sync of 1,000,000 cylinders vs
                         inserting the same rows into SQLite; an incremental sync of
                         1,000 changed ones; offline decisions on the 1M replica
  bench.py positions     one station, 8 positions filling at once from 8 scale
                         simulators: Modbus polls per second held, the station's CPU
  bench.py console       the regulator's queries (a 2,000-event timeline, a scrap
                         queue of 100,000, foresight, statistics) on a 1,000,000-
                         cylinder store and a small one: p99 as a ratio to a single
                         indexed lookup on the same store
  bench.py handovers     handovers per second beside fill checks per second, in
                         alternating rounds against the same registry
  bench.py migrate       `pingma-registry migrate` of a 100,000-cylinder / 1,000,000-
                         event SQLite store into PostgreSQL (a throw-away cluster)
                         vs COPY of the same rows into the same schema
  bench.py pg-instances  fill checks per second on PostgreSQL with 1, 2 and 4
                         registries on one database (a throw-away cluster) beside
                         the SQLite registry, in alternating rounds
  bench.py pg-floor      the floor under pg-instances: what PostgreSQL itself does of a
                         fill check's writes (an event and a day's count, each job in a
                         savepoint, 32 jobs a transaction) driven by pgbench: one
                         round trip a statement, pipelined, the count once a
                         transaction, and from 4 writers, beside the SQLite
                         registry's fill checks over HTTP, in alternating rounds
  bench.py pg-batch      registering 100,000 cylinders in one batch call on PostgreSQL
                         (a throw-away cluster) vs the same on the SQLite registry,
                         in alternating rounds
  bench.py log-head      from a write's acknowledgement to the first signed tree head
                         that holds it, p50 and p99, under 8 writers, on SQLite and
                         on PostgreSQL, against the 1 s the log promises
  bench.py pg-large-store  large-store on PostgreSQL: the same two seeded stores
                         moved there with migrate, fill-check p99 of the large one
                         vs the small one
  bench.py screens       one position filling while 0 and then 50 operator's screens
                         follow the station's event stream, in alternating rounds:
                         Modbus polls per second as a ratio to none, the station's CPU
  bench.py screen-latency  from the station's event to the page's change in headless
                         Chromium (the operator's screen), p50/p99, beside a bare
                         stream reader in the same run (run with /usr/bin/python3,
                         where Debian's Selenium loads)
  bench.py photo-load    fill-check p50 on one keep-alive connection while 8 senders
                         keep blank 7000x7000 PNGs going to POST /v1/scan/image (the
                         label reader's queue busy, its overflow refused with 503),
                         as a ratio to the same registry idle, in alternating rounds
  bench.py serve-options  fill checks per second (wrk, keep-alive) on the same store
                         served three ways, in alternating rounds: plain HTTP, with
                         --metrics-listen (every request counted), and HTTPS
                         (--tls-cert, TLS 1.3): each as a ratio to plain
  bench.py all           all of the above

Run from the repository root after ./tools/quickstart.sh build.
"""
import argparse
import datetime
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

WRK_SCRIPT = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("PINGMA_TOKEN")
local n = tonumber(os.getenv("PINGMA_CODES"))
local prefix = os.getenv("PINGMA_PREFIX")
request = function()
  local code = string.format("%s%08d", prefix, math.random(0, n - 1))
  return wrk.format(nil, nil, nil,
    '{"station_id":"ST-01","operator_id":"OP-7","code":"' .. code .. '"}')
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %f %d %d %d %d\n", summary.requests,
    summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
"""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Server:
    """A program that prints 'listening on http://HOST:PORT' when ready."""

    def __init__(self, argv, capture_stderr=False):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True,
                                     stderr=subprocess.PIPE if capture_stderr else None)
        line = self.proc.stdout.readline().strip()
        while line.startswith(("metrics on ", "jt808 on ")):  # other listeners, first
            line = self.proc.stdout.readline().strip()
        if not line.startswith("listening on "):
            raise SystemExit(f"bench: {argv[0]} did not start: {line!r}")
        self.url = line[len("listening on "):]

    def stop(self):
        """Stops the program; returns what it wrote on stderr, if captured."""
        self.proc.send_signal(signal.SIGTERM)
        _, err = self.proc.communicate(timeout=60)
        return err or ""


def call(url, method, path, token, body=None, timeout=600):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def token(registry, db, role, subject):
    return subprocess.run([registry, "token", "add", "--db", db, "--role", role,
                           "--subject", subject], check=True, capture_output=True,
                          text=True).stdout.strip()


def setup_registry(registry, db):
    """Tokens, a company, a station and an operator; returns the tokens."""
    tokens = {r: token(registry, db, r, s) for r, s in
              [("admin", "root"), ("company", "CO-A"), ("station", "ST-01")]}
    return tokens


def setup_entities(url, tokens):
    admin = tokens["admin"]
    for path, body in [
        ("/v1/companies", {"id": "CO-A", "name": "Bench Gas",
                           "filling_license": {"number": "L1", "valid_until": "2099-12-31"}}),
        ("/v1/stations", {"id": "ST-01", "company_id": "CO-A", "name": "Bench station",
                          "district": "Bench"}),
        ("/v1/operators", {"id": "OP-7", "company_id": "CO-A", "name": "Op",
                           "certificate": {"number": "C1", "valid_until": "2099-12-31"}}),
    ]:
        status, answer = call(url, "POST", path, admin, body)
        if status != 201:
            raise SystemExit(f"bench: {path}: {status} {answer}")


def fleet(prefix, count):
    return [{"code": f"{prefix}{i:08d}", "model": "YSP35.5",
             "manufacturer": "Hebei Example Cylinder Co.", "serial": f"S-{i:08d}",
             "manufactured": "2023-01", "tare_kg": 16.4, "last_inspection": "2025-01-15"}
            for i in range(count)]


def wrk(url, token_value, prefix, codes, seconds, connections, threads):
    """Fill checks of random codes PREFIX00000000.. for `seconds` (see wrk_script)."""
    return wrk_script(url, "/v1/fill-checks", WRK_SCRIPT,
                      {"PINGMA_TOKEN": token_value, "PINGMA_CODES": str(codes),
                       "PINGMA_PREFIX": prefix}, seconds, connections, threads)


def median_of(runs, key):
    return statistics.median(r[key] for r in runs)


def bench_fill_check(args, work):
    """The registry, the bare handler and the floor, in alternating rounds."""
    registry = args.registry
    db = os.path.join(work, "fill-check.db")
    tokens = setup_registry(registry, db)
    commands = {
        "bare": ([args.bare, "--port", "0"], False),
        "floor": ([args.floor, "--db", os.path.join(work, "floor.db")], True),
        "floor-no-sync": ([args.floor, "--db", os.path.join(work, "floor-ns.db"), "--no-sync"],
                          True),
        "registry": ([registry, "serve", "--db", db, "--listen", "127.0.0.1:0"], False),
    }
    tok = {name: "x" for name in commands}
    tok["registry"] = tokens["station"]
    runs = {name: [] for name in commands}
    servers = {}
    floor_log = ""
    try:
        for name, (argv, capture) in commands.items():
            servers[name] = Server(argv, capture_stderr=capture)
        setup_entities(servers["registry"].url, tokens)
        status, answer = call(servers["registry"].url, "POST", "/v1/cylinders/batch",
                              tokens["company"], {"cylinders": fleet("BF", 10000)})
        assert status == 200, answer
        log(f"fill-check: {args.rounds} rounds of {args.seconds}s each, "
            f"{args.connections} connections")
        for name, srv in servers.items():
            wrk(srv.url, tok[name], "BF", 10000, 2, args.connections, args.wrk_threads)
        for i in range(args.rounds):
            for name, srv in servers.items():
                runs[name].append(wrk(srv.url, tok[name], "BF", 10000, args.seconds,
                                      args.connections, args.wrk_threads))
            log(f"  round {i + 1}: " + ", ".join(
                f"{name} {runs[name][-1]['rps']:.0f}" for name in servers) + " req/s")
    finally:
        for name, srv in servers.items():
            err = srv.stop()
            if name == "floor":
                floor_log = err.strip()
    verify = subprocess.run([registry, "verify", "--db", db], capture_output=True, text=True)
    result = {name: {k: median_of(r, k) for k in ("rps", "p50_ms", "p99_ms")}
              for name, r in runs.items()}
    bare = result["bare"]["rps"]
    result["ratio_rps"] = result["registry"]["rps"] / bare
    print(f"## fill checks over HTTP ({args.connections} connections, medians of "
          f"{args.rounds} alternating rounds)")
    print("| | req/s | p50 ms | p99 ms | ratio to bare |")
    print("|---|---|---|---|---|")
    for name in ("bare", "floor-no-sync", "floor", "registry"):
        r = result[name]
        print(f"| {name} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
              f"{r['rps'] / bare:.2f} |")
    per_round = ", ".join(f"{r['rps'] / b['rps']:.2f}" for r, b in
                          zip(runs["registry"], runs["bare"]))
    floor_round = ", ".join(f"{r['rps'] / b['rps']:.2f}" for r, b in
                            zip(runs["floor"], runs["bare"]))
    print(f"ratio registry/bare throughput: {result['ratio_rps']:.2f} (goal >= 0.5), "
          f"per round {per_round}; p99 {result['registry']['p99_ms'] / result['bare']['p99_ms']:.2f}x bare")
    print(f"floor/bare: {result['floor']['rps'] / bare:.2f}, per round {floor_round}; "
          f"registry/floor: {result['registry']['rps'] / result['floor']['rps']:.2f}")
    print(f"floor: {floor_log}")
    print(f"chain: {verify.stdout.strip()}")
    return result


def bench_serve_options(args, work):
    """The same store served plain, with metrics and over TLS, in alternating rounds."""
    registry = args.registry
    # One store set up once, then copied with its secrets folder for each server.
    made = os.path.join(work, "options-made")
    os.makedirs(made, exist_ok=True)
    db = os.path.join(made, "registry.db")
    tokens = setup_registry(registry, db)
    server = Server([registry, "serve", "--db", db, "--listen", "127.0.0.1:0"])
    try:
        setup_entities(server.url, tokens)
        status, answer = call(server.url, "POST", "/v1/cylinders/batch", tokens["company"],
                              {"cylinders": fleet("BO", 10000)})
        assert status == 200, answer
    finally:
        server.stop()
    cert, key = os.path.join(work, "tls.crt"), os.path.join(work, "tls.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=localhost"], check=True,
                   capture_output=True)
    os.chmod(key, 0o600)
    options = {"plain": [], "metrics": ["--metrics-listen", "127.0.0.1:0"],
               "https": ["--tls-cert", cert, "--tls-key", key]}
    servers, runs = {}, {name: [] for name in options}
    try:
        for name, extra in options.items():
            folder = os.path.join(work, "options-" + name)
            shutil.copytree(made, folder)
            argv = [registry, "serve", "--db", os.path.join(folder, "registry.db"),
                    "--listen", "127.0.0.1:0"] + extra
            servers[name] = Server(argv)
        log(f"serve-options: {args.rounds} rounds of {args.seconds}s each, "
            f"{args.connections} connections")
        for name, srv in servers.items():
            wrk(srv.url, tokens["station"], "BO", 10000, 2, args.connections, args.wrk_threads)
        for i in range(args.rounds):
            for name, srv in servers.items():
                runs[name].append(wrk(srv.url, tokens["station"], "BO", 10000, args.seconds,
                                      args.connections, args.wrk_threads))
            log(f"  round {i + 1}: " + ", ".join(
                f"{name} {runs[name][-1]['rps']:.0f}" for name in servers) + " req/s")
    finally:
        for srv in servers.values():
            srv.stop()
    result = {name: {k: median_of(r, k) for k in ("rps", "p50_ms", "p99_ms")}
              for name, r in runs.items()}
    plain = result["plain"]
    print(f"## fill checks served three ways ({args.connections} connections, keep-alive, "
          f"medians of {args.rounds} alternating rounds)")
    print("| | req/s | p50 ms | p99 ms | req/s ratio to plain | p99 ratio to plain |")
    print("|---|---|---|---|---|---|")
    for name in options:
        r = result[name]
        print(f"| {name} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
              f"{r['rps'] / plain['rps']:.2f} | {r['p99_ms'] / plain['p99_ms']:.2f} |")
    for name in ("metrics", "https"):
        per_round = ", ".join(f"{r['rps'] / p['rps']:.2f}"
                              for r, p in zip(runs[name], runs["plain"]))
        print(f"{name}/plain per round: {per_round}")
    return result


def bench_batch(args, work):
    registry = args.registry
    n = args.cylinders
    body = json.dumps({"cylinders": fleet("BT", n)}).encode()
    log(f"batch: {n} cylinders, {len(body) / 1e6:.1f} MB body, {args.rounds} rounds")
    reg_runs, raw_runs = [], []
    for i in range(args.rounds):
        db = os.path.join(work, f"batch-{i}.db")
        tokens = setup_registry(registry, db)
        reg = Server([registry, "serve", "--db", db, "--listen", "127.0.0.1:0"])
        try:
            setup_entities(reg.url, tokens)
            req = urllib.request.Request(reg.url + "/v1/cylinders/batch", data=body,
                                         method="POST")
            req.add_header("Authorization", "Bearer " + tokens["company"])
            start = time.monotonic()
            with urllib.request.urlopen(req, timeout=3600) as resp:
                answer = json.loads(resp.read())
            reg_runs.append(time.monotonic() - start)
        finally:
            reg.stop()
        created = sum(1 for r in answer["results"] if r["status"] == 201)
        if created != n:
            raise SystemExit(f"bench: only {created} of {n} stored")
        raw_db = os.path.join(work, f"raw-{i}.db")
        raw_runs.append(float(subprocess.run(
            [args.sqlite_insert, "--db", raw_db, "--rows", str(n)], check=True,
            capture_output=True, text=True).stdout))
        log(f"  round {i + 1}: registry {reg_runs[-1]:.2f} s, raw SQLite {raw_runs[-1]:.2f} s")
        if not args.keep:
            for f in os.listdir(work):
                if f.startswith((f"batch-{i}.db", f"raw-{i}.db")):
                    os.unlink(os.path.join(work, f))
    seconds, raw = statistics.median(reg_runs), statistics.median(raw_runs)
    print(f"## registering {n} cylinders in one /v1/cylinders/batch call (medians of "
          f"{args.rounds})")
    print(f"registry: {seconds:.2f} s ({n / seconds:.0f} cylinders/s); "
          f"raw SQLite insert of the same rows in one transaction: {raw:.2f} s "
          f"({n / raw:.0f} rows/s); ratio {raw / seconds:.3f} "
          f"(the registry also validates, appends and hashes one event per cylinder)")
    return {"seconds": seconds, "raw_seconds": raw, "ratio": raw / seconds}


def post_batch(url, company_token, body, n):
    """POSTs a batch; the seconds until its answer, checking every item stored."""
    req = urllib.request.Request(url + "/v1/cylinders/batch", data=body, method="POST")
    req.add_header("Authorization", "Bearer " + company_token)
    start = time.monotonic()
    with urllib.request.urlopen(req, timeout=3600) as resp:
        answer = json.loads(resp.read())
    seconds = time.monotonic() - start
    created = sum(1 for r in answer["results"] if r["status"] == 201)
    if created != n:
        raise SystemExit(f"bench: only {created} of {n} stored")
    return seconds


def bench_pg_batch(args, work):
    """The same batch registered on a fresh SQLite store and a fresh PostgreSQL
    database, round by round."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "tests", "integration"))
    from pg_cluster import PgCluster
    registry, n = args.registry, args.cylinders
    body = json.dumps({"cylinders": fleet("BQ", n)}).encode()
    log(f"pg-batch: {n} cylinders, {len(body) / 1e6:.1f} MB body, {args.rounds} rounds")
    runs = {"sqlite": [], "postgresql": []}
    with PgCluster() as pg:
        for i in range(args.rounds):
            stores = {"sqlite": os.path.join(work, f"pg-batch-{i}.db"),
                      "postgresql": pg.create_database(f"batch_{i}")}
            for name, db in stores.items():
                tokens = setup_registry(registry, db)
                argv = [registry, "serve", "--db", db, "--listen", "127.0.0.1:0"]
                if name == "postgresql":
                    argv += ["--secrets-dir", os.path.join(work, f"pg-batch-secrets-{i}")]
                reg = Server(argv)
                try:
                    setup_entities(reg.url, tokens)
                    runs[name].append(post_batch(reg.url, tokens["company"], body, n))
                finally:
                    reg.stop()
            log(f"  round {i + 1}: SQLite {runs['sqlite'][-1]:.2f} s, "
                f"PostgreSQL {runs['postgresql'][-1]:.2f} s")
            if not args.keep:
                for f in os.listdir(work):
                    if f.startswith(f"pg-batch-{i}.db"):
                        os.unlink(os.path.join(work, f))
    sqlite, postgres = statistics.median(runs["sqlite"]), statistics.median(runs["postgresql"])
    print(f"## registering {n} cylinders in one /v1/cylinders/batch call, PostgreSQL vs "
          f"SQLite (medians of {args.rounds})")
    print(f"SQLite: {sqlite:.2f} s ({n / sqlite:.0f} cylinders/s); PostgreSQL: {postgres:.2f} s "
          f"({n / postgres:.0f} cylinders/s); ratio {sqlite / postgres:.2f} (goal >= 0.5)")
    return {"sqlite": sqlite, "postgresql": postgres, "ratio": sqlite / postgres}


def ack_to_head(registry_argv, db, seconds, writers=8):
    """Writers register cylinders one by one while a watcher polls the signed head
    every 5 ms; each write's latency is from its acknowledgement to the first head
    seen whose tree holds its event (its log_index, from its history afterwards)."""
    import threading
    tokens = setup_registry(registry_argv[0], db)
    reg = Server(registry_argv)
    acks, heads, stop, stop_watching = [], [], threading.Event(), threading.Event()
    try:
        setup_entities(reg.url, tokens)

        def write(w):
            conn = http.client.HTTPConnection(reg.url.split("//")[1], timeout=60)
            n = 0
            while not stop.is_set():
                code = f"LH{w}-{n:07d}"
                body = json.dumps(fleet(code, 1)[0] | {"code": code})
                conn.request("POST", "/v1/cylinders", body,
                             {"Authorization": "Bearer " + tokens["company"],
                              "Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                if resp.status == 201:
                    acks.append((time.monotonic(), code))
                n += 1

        def watch():
            conn = http.client.HTTPConnection(reg.url.split("//")[1], timeout=60)
            while not stop_watching.is_set():
                conn.request("GET", "/v1/log/head")
                resp = conn.getresponse()
                answer = json.loads(resp.read())
                if resp.status == 200:
                    heads.append((time.monotonic(), answer["tree_size"]))
                time.sleep(0.005)

        threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
        watcher = threading.Thread(target=watch)
        for t in threads + [watcher]:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join()
        # The heads go on being watched until the last write is in one (the log
        # promises 1 s; 5 s is past any answer this measures).
        time.sleep(5)
        stop_watching.set()
        watcher.join()
        # Every acknowledged write's place in the log, then the first head past it.
        latencies = []
        step = max(1, len(acks) // 2000)
        sample = acks[::step]
        for acked_at, code in sample:
            status, history = call(reg.url, "GET", f"/v1/cylinders/{code}/history",
                                   tokens["admin"])
            index = history["events"][0]["log_index"]
            seen = next((at for at, size in heads if size > index and at >= acked_at), None)
            if seen is None:
                raise SystemExit(f"bench: {code} (entry {index}) reached no signed head "
                                 f"within 5 s of the last write")
            latencies.append(max(0.0, seen - acked_at) * 1000)
    finally:
        reg.stop()
    return len(acks) / seconds, latencies


def bench_log_head(args, work):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "tests", "integration"))
    from pg_cluster import PgCluster
    registry = args.registry
    log(f"log-head: 8 writers for {args.seconds} s a store")
    results = {}
    with PgCluster() as pg:
        stores = {"sqlite": os.path.join(work, "log-head.db"),
                  "postgresql": pg.create_database("log_head")}
        for name, db in stores.items():
            argv = [registry, "serve", "--db", db, "--listen", "127.0.0.1:0"]
            if name == "postgresql":
                argv += ["--secrets-dir", os.path.join(work, "log-head-secrets")]
            rate, latencies = ack_to_head(argv, db, args.seconds)
            results[name] = (rate, percentile(latencies, 0.5), percentile(latencies, 0.99),
                             max(latencies), len(latencies))
    print("## from a write's acknowledgement to the first signed head that holds it "
          "(8 writers; heads polled every 5 ms)")
    for name, (rate, p50, p99, most, n) in results.items():
        print(f"{name}: {rate:.0f} writes/s; p50 {p50:.0f} ms, p99 {p99:.0f} ms, most "
              f"{most:.0f} ms over {n} writes; p99 / 1 s: {p99 / 1000:.2f}")
    return results


def seeded(args, work, name, cylinders, events):
    db = os.path.join(work, f"{name}.db")
    if args.keep and os.path.exists(db):
        log(f"large-store: reusing {db} (--keep)")
        return db
    log(f"large-store: seeding {name}: {cylinders} cylinders, {events} events")
    start = time.monotonic()
    subprocess.run([args.seed, "--db", db, "--cylinders", str(cylinders), "--events",
                    str(events)], check=True)
    log(f"  seeded in {time.monotonic() - start:.0f} s")
    # The kernel would otherwise still be writing the new file out during the
    # measured rounds, which is the seeding's cost, not the store's.
    os.sync()
    return db


def event_bytes(db):
    con = sqlite3.connect(db)
    count = con.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    try:
        table = con.execute(
            "SELECT SUM(pgsize) FROM dbstat WHERE name IN "
            "('events', 'events_by_code_time')").fetchone()[0]
    except sqlite3.OperationalError:
        table = None
    con.close()
    return count, os.path.getsize(db), table


def peak_rss_mib(pid):
    """A process's peak resident memory so far (VmHWM), in MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def small_and_large_rounds(args, stores, what):
    """Serves stores["small"] and stores["large"] (each: db, token, cylinders) at once
    and appends to each one's "runs" the fill checks of alternating wrk rounds, so
    that the machine's drift falls on both alike. Each store's "start_mib" is its
    registry's peak memory once it listens (what reading the store back cost: the
    clone window's sightings from the log's tail). A PostgreSQL store names its
    secrets folder in "secrets"."""
    servers = {}
    try:
        for name, st in stores.items():
            argv = [args.registry, "serve", "--db", st["db"], "--listen", "127.0.0.1:0"]
            if "://" in st["db"]:
                argv += ["--secrets-dir", st["secrets"]]
            servers[name] = Server(argv)
            st["start_mib"] = peak_rss_mib(servers[name].proc.pid)
            log(f"{what}: the {name} store's registry listens; peak memory "
                f"{st['start_mib']:.0f} MiB")
            wrk(servers[name].url, st["token"], "BM", st["cylinders"], 2, args.connections,
                args.wrk_threads)
        log(f"{what}: {args.rounds} alternating rounds of {args.seconds}s each")
        for i in range(args.rounds):
            for name, st in stores.items():
                st["runs"].append(wrk(servers[name].url, st["token"], "BM", st["cylinders"],
                                      args.seconds, args.connections, args.wrk_threads))
            log(f"  round {i + 1}: p99 small {stores['small']['runs'][-1]['p99_ms']:.2f} ms, "
                f"large {stores['large']['runs'][-1]['p99_ms']:.2f} ms")
    finally:
        for srv in servers.values():
            srv.stop()


def bench_large_store(args, work):
    """Both stores are served at once and measured in alternating rounds, so that
    the machine's drift over the run falls on both alike."""
    registry = args.registry
    stores = {}
    for name, cyl, ev in [("small", args.small_cylinders, args.small_cylinders * 10),
                          ("large", args.large_cylinders, args.large_events)]:
        db = seeded(args, work, name, cyl, ev)
        count, size, table = event_bytes(db)
        stores[name] = {"db": db, "cylinders": cyl, "events": count, "file_bytes": size,
                        "event_bytes": table, "token": token(registry, db, "station", "ST-01"),
                        "runs": []}
    small_and_large_rounds(args, stores, "large-store")
    results = {}
    for name, st in stores.items():
        results[name] = {k: st[k] for k in ("cylinders", "events", "file_bytes", "event_bytes",
                                            "start_mib")}
        for k in ("rps", "p50_ms", "p99_ms"):
            results[name][k] = median_of(st["runs"], k)
        if not args.keep:
            os.unlink(st["db"])
    s, l = results["small"], results["large"]
    print("## fill check on a large store")
    print("| store | cylinders | events | req/s | p50 ms | p99 ms | bytes/event (file) "
          "| bytes/event (events table + indexes) | peak MiB at start |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in [("small", s), ("large", l)]:
        per_table = f"{r['event_bytes'] / r['events']:.0f}" if r["event_bytes"] else "n/a"
        print(f"| {name} | {r['cylinders']} | {r['events']} | {r['rps']:.0f} | "
              f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['file_bytes'] / r['events']:.0f} | "
              f"{per_table} | {r['start_mib']:.0f} |")
    print(f"p99 large/small: {l['p99_ms'] / s['p99_ms']:.2f} (goal <= 1.5)")
    return results


CONSOLE_QUERIES = [
    # (name, path; {code} is a random registered cylinder)
    ("lookup", "/v1/cylinders/{code}"),
    ("timeline 2,000+ events", "TIMELINE"),
    ("scrap queue, first page", "/v1/scrap-queue?limit=100"),
    ("scrap queue, a page in the middle", "SCRAP_MIDDLE"),
    ("inspections due, 12 months", "/v1/foresight/inspections-due?months=12"),
    ("unseen 6 months, first page", "/v1/foresight/unseen?months=6&limit=100"),
    ("refused checks by station, 30 days", "/v1/stats/fill-checks?group_by=station"),
    ("refused checks by reason, 30 days", "/v1/stats/fill-checks?group_by=reason"),
    ("refused checks by day, 30 days", "/v1/stats/fill-checks?group_by=day"),
    ("hazards, first page", "/v1/hazards"),
    ("public reports, first page", "/v1/reports?limit=100"),
]


class KeepAliveClient:
    """One HTTP/1.1 connection, one request at a time: latency, not throughput."""

    def __init__(self, url, token_value):
        host, port = url.split("//", 1)[1].rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=600)
        self.headers = {"Authorization": "Bearer " + token_value}

    def get(self, path):
        self.conn.request("GET", path, headers=self.headers)
        resp = self.conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise SystemExit(f"bench: GET {path} -> {resp.status} {body[:300]!r}")
        return body

    def close(self):
        self.conn.close()


def console_sample(client, path, cylinders, middle_cursor):
    """Times one query; returns (seconds, answer bytes, items)."""
    start = time.perf_counter()
    if path == "TIMELINE":
        size, items, cursor = 0, 0, None
        while True:
            body = client.get("/v1/cylinders/BM00000001/history?limit=1000" +
                              (f"&cursor={cursor}" if cursor else ""))
            page = json.loads(body)
            size, items, cursor = size + len(body), items + len(page["events"]), \
                page["next_cursor"]
            if not cursor:
                break
        return time.perf_counter() - start, size, items
    if path == "SCRAP_MIDDLE":
        path = "/v1/scrap-queue?limit=100&cursor=" + urllib.parse.quote(middle_cursor)
    path = path.replace("{code}", f"BM{random.randrange(cylinders):08d}")
    body = client.get(path)
    elapsed = time.perf_counter() - start
    return elapsed, len(body), None


def scrap_middle_cursor(client, scrap):
    """The cursor of the queue's middle page, walked to once before timing."""
    cursor, seen = None, 0
    while seen < scrap // 2:
        page = json.loads(client.get("/v1/scrap-queue?limit=1000" +
                                     (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")))
        seen += len(page["cylinders"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    return cursor


def bench_console(args, work):
    """The regulator's queries on a small and a 1,000,000-cylinder store, served at
    once and measured in alternating rounds; each query's p99 as a ratio to a
    single indexed lookup (GET /v1/cylinders/{code}) on the same store."""
    registry = args.registry
    stores = {}
    for name, cyl, fills, scrap in [
            ("small", args.small_cylinders, args.small_cylinders // 2, args.small_cylinders // 10),
            ("large", args.large_cylinders, args.console_fills, args.console_scrap)]:
        db = os.path.join(work, f"console-{name}.db")
        if not (args.keep and os.path.exists(db)):
            log(f"console: seeding {name}: {cyl} cylinders, {fills} fills over 730 days, "
                f"{scrap} in the scrap queue, a timeline of {args.timeline}")
            start = time.monotonic()
            subprocess.run([args.seed, "--db", db, "--cylinders", str(cyl), "--events", "0",
                            "--history-days", "730", "--fills", str(fills), "--scrap",
                            str(scrap), "--timeline", str(args.timeline)], check=True)
            log(f"  seeded in {time.monotonic() - start:.0f} s")
            os.sync()
        else:
            log(f"console: reusing {db} (--keep)")
        stores[name] = {"db": db, "cylinders": cyl, "scrap": scrap,
                        "token": token(registry, db, "regulator", "SAMR"),
                        "samples": {q: [] for q, _ in CONSOLE_QUERIES}, "sizes": {}}
    servers, clients = {}, {}
    try:
        for name, st in stores.items():
            servers[name] = Server([registry, "serve", "--db", st["db"], "--listen",
                                    "127.0.0.1:0"])
            clients[name] = KeepAliveClient(servers[name].url, st["token"])
            st["middle"] = scrap_middle_cursor(clients[name], st["scrap"])
            for q, path in CONSOLE_QUERIES:  # warm the caches once
                _, size, items = console_sample(clients[name], path, st["cylinders"],
                                                st["middle"])
                st["sizes"][q] = (size, items)
        log(f"console: {args.rounds} alternating rounds of {args.samples} samples per query")
        for i in range(args.rounds):
            for name, st in stores.items():
                for q, path in CONSOLE_QUERIES:
                    for _ in range(args.samples):
                        st["samples"][q].append(console_sample(
                            clients[name], path, st["cylinders"], st["middle"])[0])
            log(f"  round {i + 1} done")
    finally:
        for c in clients.values():
            c.close()
        for srv in servers.values():
            srv.stop()
    p99 = {name: {q: percentile(st["samples"][q], 0.99) * 1000 for q, _ in CONSOLE_QUERIES}
           for name, st in stores.items()}
    # The floor of the baseline: the same lookup in-process, no HTTP, no JSON.
    raw = {}
    for name, st in stores.items():
        con = sqlite3.connect(f"file:{st['db']}?mode=ro", uri=True)
        times = []
        for _ in range(args.rounds * args.samples):
            code = f"BM{random.randrange(st['cylinders']):08d}"
            start = time.perf_counter()
            con.execute("SELECT * FROM cylinders WHERE code = ?", (code,)).fetchall()
            times.append(time.perf_counter() - start)
        con.close()
        raw[name] = percentile(times, 0.99) * 1000
    s, l = stores["small"], stores["large"]
    print(f"## the regulator's queries: p99 over {args.rounds * args.samples} samples, "
          f"one connection")
    print("| query | answer (large) | p99 ms small | p99 ms large | ratio to lookup, small "
          "| ratio to lookup, large | large / small |")
    print("|---|---|---|---|---|---|---|")
    for q, _ in CONSOLE_QUERIES:
        size, items = l["sizes"][q]
        answer = f"{size:,} B" + (f", {items:,} events" if items else "")
        ps, pl = p99["small"][q], p99["large"][q]
        print(f"| {q} | {answer} | {ps:.2f} | {pl:.2f} | {ps / p99['small']['lookup']:.1f} | "
              f"{pl / p99['large']['lookup']:.1f} | {pl / ps:.2f} |")
    print(f"the lookup's SQLite row alone, in-process (Python sqlite3): p99 "
          f"{raw['small']:.3f} ms small, {raw['large']:.3f} ms large")
    print(f"stores: small {s['cylinders']:,} cylinders ({os.path.getsize(s['db']) >> 20} MiB), "
          f"large {l['cylinders']:,} ({os.path.getsize(l['db']) >> 20} MiB)")
    if not args.keep:
        for st in stores.values():
            os.unlink(st["db"])
    return p99


HANDOVER_SCRIPT = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("PINGMA_TOKEN")
local n = tonumber(os.getenv("PINGMA_CODES"))
local customers = tonumber(os.getenv("PINGMA_CUSTOMERS"))
local counter = 0
local tag = 0
init = function(args)
  -- Each wrk thread has its own Lua state: its own seed and tag (the address of a
  -- table of its own), so that no two handovers share an event_id (a repeated one
  -- would be answered from the store).
  tag = tonumber(string.match(tostring({}), "0x(%x+)"), 16) % 2147483647
  math.randomseed(os.time() + tag % 100000)
end
local check = '"safety_check":{"hose_length":"pass","hose_joints":"pass",' ..
  '"hose_through_wall":"pass","regulator_standard":"pass","regulator_age":"pass",' ..
  '"gas_alarm":"pass","flame_failure_device":"pass","ventilation":"pass",' ..
  '"cylinders_apart":"pass"}'
request = function()
  counter = counter + 1
  local code = string.format("BM%08d", math.random(0, n - 1))
  local customer = string.format("CU-%04d", math.random(0, customers - 1))
  local event_id = string.format("%08x-%04x-4%03x-8%03x-%012x", counter,
    math.random(0, 65535), math.random(0, 4095), math.random(0, 4095), tag)
  return wrk.format(nil, nil, nil, '{"event_id":"' .. event_id .. '","code":"' .. code ..
    '","customer_id":"' ..
    customer .. '","vehicle":"V-1","direction":"deliver",' .. check .. '}')
end
""" + WRK_SCRIPT[WRK_SCRIPT.index("done = function"):]


def wrk_script(url, path, script_text, env_extra, seconds, connections, threads):
    """Runs wrk with a Lua script against url+path; its RESULT line as rps, p50, p99.
    Any non-2xx answer or socket error ends the benchmark."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script_text)
        script = f.name
    env = dict(os.environ, **env_extra)
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d",
                          f"{seconds}s", "--timeout", "10s", "-s", script, url + path],
                         env=env, capture_output=True, text=True)
    os.unlink(script)
    m = re.search(r"RESULT (\d+) ([\d.]+) (\d+) (\d+) (\d+) (\d+)", out.stdout)
    if not m:
        raise SystemExit(f"bench: wrk failed: {out.stdout} {out.stderr}")
    n, dur, p50, p99, bad_status, sock_err = m.groups()
    if int(bad_status) or int(sock_err):
        raise SystemExit(f"bench: {bad_status} non-2xx answers and {sock_err} socket errors")
    return {"rps": int(n) / float(dur), "p50_ms": int(p50) / 1000, "p99_ms": int(p99) / 1000}


def bench_handovers(args, work):
    """Handovers and fill checks against one registry, in alternating rounds: each
    handover is decided by every delivery rule, recorded with its safety check and
    made durable before its answer, as a fill check is."""
    registry = args.registry
    cylinders, customers = 10000, 1000
    db = os.path.join(work, "handovers.db")
    log(f"handovers: seeding {cylinders} cylinders, each filled once")
    subprocess.run([args.seed, "--db", db, "--cylinders", str(cylinders), "--events", "0",
                    "--history-days", "30", "--fills", str(cylinders)], check=True)
    tokens = {"company": token(registry, db, "company", "CO-A"),
              "station": token(registry, db, "station", "ST-01"),
              "courier": token(registry, db, "courier", "CR-1")}
    srv = Server([registry, "serve", "--db", db, "--listen", "127.0.0.1:0"])
    runs = {"fill checks": [], "handovers": []}
    try:
        co = tokens["company"]
        for path, body in [
                ("/v1/vehicles", {"id": "V-1", "company_id": "CO-A", "plate": "豫N12345"}),
                ("/v1/couriers", {"id": "CR-1", "company_id": "CO-A", "name": "李四",
                                  "vehicle": "V-1", "zones": ["Bench"]})]:
            status, answer = call(srv.url, "POST", path, co, body)
            if status != 201:
                raise SystemExit(f"bench: {path}: {status} {answer}")
        for i in range(customers):
            status, answer = call(srv.url, "POST", "/v1/customers", co, {
                "id": f"CU-{i:04d}", "company_id": "CO-A", "name": "张三",
                "phone": f"139{i:08d}", "id_number": "11010519491231002X",
                "address": f"建设路{i}号", "district": "Bench", "kind": "household",
                "site": {"basement": False, "semi_basement": False, "cylinder_room": False}})
            if status != 201:
                raise SystemExit(f"bench: customer: {status} {answer}")
        subjects = {
            "fill checks": ("/v1/fill-checks", WRK_SCRIPT,
                            {"PINGMA_TOKEN": tokens["station"], "PINGMA_CODES": str(cylinders),
                             "PINGMA_PREFIX": "BM"}),
            "handovers": ("/v1/handovers", HANDOVER_SCRIPT,
                          {"PINGMA_TOKEN": tokens["courier"], "PINGMA_CODES": str(cylinders),
                           "PINGMA_CUSTOMERS": str(customers)}),
        }
        for path, script, env in subjects.values():
            wrk_script(srv.url, path, script, env, 2, args.connections, args.wrk_threads)
        log(f"handovers: {args.rounds} alternating rounds of {args.seconds}s each")
        for i in range(args.rounds):
            for name, (path, script, env) in subjects.items():
                runs[name].append(wrk_script(srv.url, path, script, env, args.seconds,
                                             args.connections, args.wrk_threads))
            log(f"  round {i + 1}: " + ", ".join(
                f"{name} {runs[name][-1]['rps']:.0f}/s" for name in runs))
    finally:
        srv.stop()
    con = sqlite3.connect(db)
    mix = dict(con.execute("SELECT decision, COUNT(*) FROM handovers GROUP BY decision"))
    con.close()
    verify = subprocess.run([registry, "verify", "--db", db], capture_output=True, text=True)
    result = {name: {k: median_of(r, k) for k in ("rps", "p50_ms", "p99_ms")}
              for name, r in runs.items()}
    print(f"## handovers beside fill checks ({args.connections} connections, medians of "
          f"{args.rounds} alternating rounds)")
    print("| | req/s | p50 ms | p99 ms | ratio to fill checks |")
    print("|---|---|---|---|---|")
    base = result["fill checks"]["rps"]
    for name, r in result.items():
        print(f"| {name} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
              f"{r['rps'] / base:.2f} |")
    print(f"handovers stored: {mix} (a cylinder delivered once is blocked until refilled)")
    print(f"chain: {verify.stdout.strip()}")
    if not args.keep:
        os.unlink(db)
    return result


def bench_photos(args, work):
    """Three decoders over the same photo set, in alternating rounds."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "tests", "integration"))
    import photo_set
    label = os.path.join(args.build, "tools", "label", "pingma-label")
    scan = os.path.join(args.build, "tools", "scan", "pingma-scan")
    decode = os.path.join(args.build, "tools", "bench", "pingma-bench-decode")
    code = "HB0100000123"
    url = "https://pingma.example/c/" + code
    photo_dir = os.path.join(work, "photos")
    label_png = os.path.join(work, "label.png")
    if not os.path.isdir(photo_dir):
        subprocess.run([label, "--code", code, "--model", "YSP35.5", "--owner", "河北测试燃气有限公司",
                        "--out", label_png], check=True, capture_output=True)
        log("photos: making the photo set with ImageMagick")
        photo_set.make_photo_set(label_png, photo_set.scene_qr_box(label_png), photo_dir)
    files = sorted(os.path.join(photo_dir, f) for f in os.listdir(photo_dir))
    log(f"photos: {len(files)} photos, {args.rounds} rounds")

    def timed(cmd):
        start = time.monotonic()
        out = subprocess.run(cmd, capture_output=True, check=False).stdout.decode("utf-8", "replace")
        return time.monotonic() - start, out

    # Which photos zbarimg reads: one call per photo (its output does not name files).
    zbar_reads = sum(url in subprocess.run(["zbarimg", "--raw", "-q", f], capture_output=True)
                     .stdout.decode("utf-8", "replace").splitlines() for f in files)
    times = {"pingma-scan": [], "zbarimg": [], "zxing-once": [], "ratio": []}
    for r in range(args.rounds):
        t, out = timed([scan] + files)
        times["pingma-scan"].append(t)
        ours = sum(json.loads(l).get("code") == code for l in out.splitlines())
        t, _ = timed(["zbarimg", "--raw", "-q"] + files)
        times["zbarimg"].append(t)
        t, out = timed([decode, "--mode", "zxing"] + files)
        times["zxing-once"].append(t)
        once = {j["file"]: j for j in map(json.loads, out.splitlines())}
        _, out = timed([decode, "--mode", "pingma"] + files)
        full = {j["file"]: j for j in map(json.loads, out.splitlines())}
        read_once = [f for f in files if once[f]["read"] and once[f].get("text") == url]
        ratio = (sum(full[f]["ms"] for f in read_once) / sum(once[f]["ms"] for f in read_once))
        times["ratio"].append(ratio)
        log(f"  round {r + 1}: pingma-scan {times['pingma-scan'][-1]:.2f} s, zbarimg "
            f"{times['zbarimg'][-1]:.2f} s, zxing-once {times['zxing-once'][-1]:.2f} s, "
            f"time ratio on photos zxing-once reads {ratio:.2f}")
    n = len(files)
    print(f"photos: {n} photos of one label (tests/integration/photo_set.py), {args.rounds} rounds")
    print(f"{'decoder':12} {'read':>8} {'photos/s':>9} {'time vs zxing-once':>19}")
    base = statistics.median(times["zxing-once"])
    for name, reads in (("pingma-scan", ours), ("zbarimg", zbar_reads),
                        ("zxing-once", len(read_once))):
        t = statistics.median(times[name])
        print(f"{name:12} {reads:4}/{n:<3} {n / t:9.1f} {t / base:19.2f}")
    print(f"pingma's decode time / zxing-once's on the {len(read_once)} photos zxing-once reads: "
          f"{statistics.median(times['ratio']):.2f} (goal <= 2)")


def bench_photo_load(args, work):
    """Fill checks idle vs beside 8 photo senders, in alternating rounds."""
    registry = args.registry
    db = os.path.join(work, "photo-load.db")
    tokens = setup_registry(registry, db)
    couriers = [token(registry, db, "courier", f"CR-{i}") for i in range(8)]
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "tests", "integration"))
    import photo_set
    photo = photo_set.blank_png(7000)
    srv = Server([registry, "serve", "--db", db, "--listen", "127.0.0.1:0"])
    host, port = srv.url[len("http://"):].rsplit(":", 1)
    counts = {"decoded": 0, "refused": 0, "other": 0}
    lock = threading.Lock()

    def checks(seconds):
        """Fill checks one after another for `seconds`: their latencies in ms."""
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        body = json.dumps({"station_id": "ST-01", "operator_id": "OP-7",
                           "code": "BP00000007"})
        headers = {"Authorization": "Bearer " + tokens["station"],
                   "Content-Type": "application/json"}
        times = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            start = time.perf_counter()
            conn.request("POST", "/v1/fill-checks", body, headers)
            resp = conn.getresponse()
            resp.read()
            times.append((time.perf_counter() - start) * 1000)
            assert resp.status == 200, resp.status
        conn.close()
        return times

    def sender(courier, stop):
        while not stop.is_set():
            conn = http.client.HTTPConnection(host, int(port), timeout=120)
            conn.request("POST", "/v1/scan/image", photo,
                         {"Authorization": "Bearer " + courier, "Content-Type": "image/png"})
            resp = conn.getresponse()
            resp.read()
            conn.close()
            key = {422: "decoded", 503: "refused"}.get(resp.status, "other")
            with lock:
                counts[key] += 1
            if resp.status != 422:
                stop.wait(float(resp.getheader("Retry-After") or 2))

    runs = {"idle": [], "photos": []}
    try:
        setup_entities(srv.url, tokens)
        status, answer = call(srv.url, "POST", "/v1/cylinders/batch", tokens["company"],
                              {"cylinders": fleet("BP", 100)})
        assert status == 200, answer
        checks(1)  # warm up
        log(f"photo-load: {args.rounds} rounds of {args.seconds}s idle, then with 8 senders "
            f"of a {len(photo)}-byte blank 7000x7000 PNG")
        for i in range(args.rounds):
            runs["idle"].append(checks(args.seconds))
            stop = threading.Event()
            senders = [threading.Thread(target=sender, args=(c, stop)) for c in couriers]
            for t in senders:
                t.start()
            time.sleep(0.5)  # the queue fills
            runs["photos"].append(checks(args.seconds))
            stop.set()
            for t in senders:
                t.join()
            log(f"  round {i + 1}: p50 idle {statistics.median(runs['idle'][-1]):.2f} ms, "
                f"with photos {statistics.median(runs['photos'][-1]):.2f} ms")
    finally:
        srv.stop()
    if counts["other"]:
        raise SystemExit(f"bench: photo answers other than 422 and 503: {counts}")
    p50 = {k: statistics.median(statistics.median(r) for r in v) for k, v in runs.items()}
    p99 = {k: statistics.median(percentile(r, 0.99) for r in v) for k, v in runs.items()}
    n = {k: sum(len(r) for r in v) for k, v in runs.items()}
    per_round = ", ".join(f"{statistics.median(p) / statistics.median(i):.2f}"
                          for p, i in zip(runs["photos"], runs["idle"]))
    print(f"## fill checks beside the label reader (one connection, medians of {args.rounds} "
          f"alternating rounds of {args.seconds} s; {os.cpu_count()} cores)")
    print("| | checks | p50 ms | p99 ms |")
    print("|---|---|---|---|")
    for k in ("idle", "photos"):
        print(f"| {k} | {n[k]} | {p50[k]:.2f} | {p99[k]:.2f} |")
    print(f"photos: {counts['decoded']} decoded, {counts['refused']} refused with 503")
    print(f"ratio p50 with photos / idle: {p50['photos'] / p50['idle']:.2f} (goal <= 2), "
          f"per round {per_round}; p99 {p99['photos'] / p99['idle']:.2f}x idle")


# ---------------------------------------------------------------- the filling station

def line_processes():
    """tools/demo/line_processes.py: the registry, scale simulator and station as
    processes (imported by path, like photo_set above)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "demo"))
    import line_processes as lp
    return lp


def china_today():
    return (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=8)).date()


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * (len(values) - 1) + 0.5))]


def line_registry(lp, work, name):
    """A registry with company CO-A, station ST-01 and operator OP-7; its tokens."""
    reg = lp.Registry(os.path.join(binaries(), "registry", "pingma-registry"),
                      os.path.join(work, f"{name}.db"))
    tokens = {r: reg.token(r, s) for r, s in [("admin", "root"), ("company", "CO-A"),
                                              ("station", "ST-01"), ("inspector", "INSP-1")]}
    reg.start()
    setup_entities(reg.url, tokens)
    return reg, tokens


def binaries():
    return BUILD_DIR


BUILD_DIR = "build"  # main() sets it from --build


class KeptAlive:
    """POST /v1/fill-checks on one kept-alive HTTP/1.1 connection (the baseline)."""

    def __init__(self, url, token_value):
        host, port = url[len("http://"):].rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        self.headers = {"Authorization": "Bearer " + token_value,
                        "Content-Type": "application/json"}

    def check(self, body, start=None):
        """The answer; with `start` (a perf_counter reading taken before the body was
        made), also the seconds from it to the answer's last byte, before it is parsed."""
        self.conn.request("POST", "/v1/fill-checks", body=json.dumps(body), headers=self.headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        took = None if start is None else time.perf_counter() - start
        answer = json.loads(raw)
        if resp.status != 200:
            raise SystemExit(f"bench: fill check {resp.status} {answer}")
        return answer if start is None else (answer, took)

    def close(self):
        self.conn.close()


class StationOnOnePipe:
    """pingma-station with its stdout read by the thread that measures, as the direct
    side reads its answers: no reader thread and queue between the station's line and
    the benchmark (line_processes.Station has both, for tests that must never block)."""

    def __init__(self, config_station):
        self.proc = subprocess.Popen([config_station.binary, "--config", config_station.config],
                                     cwd=config_station.workdir, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        if self.proc.stdout.readline().strip() != b"ready":
            raise SystemExit("bench: the station did not say ready")
        ready = json.loads(self.proc.stdout.readline())
        self.status_url, self.screen_url = ready["status"], ready["screen"]

    def wait_for(self, pred, what="an event"):
        for line in iter(self.proc.stdout.readline, b""):
            event = json.loads(line)
            if pred(event):
                return event
        raise SystemExit(f"bench: the station ended before {what}")

    def wait_for_raw(self, *markers):
        """The first event whose line holds one of `markers` (bytes), parsed: only that
        line (the scan's own line, written just before its decision, is passed over);
        and the moment the line was in, before it was parsed."""
        for line in iter(self.proc.stdout.readline, b""):
            if any(m in line for m in markers):
                arrived = time.perf_counter()
                return json.loads(line), arrived
        raise SystemExit("bench: the station ended")

    def scanner_address(self, position_id):
        with urllib.request.urlopen(self.status_url, timeout=30) as resp:
            status = json.loads(resp.read())
        return next(p["scanner"] for p in status["positions"] if p["id"] == position_id)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def bench_station_decide(args, work):
    """Scan to decision at a position, against the bare fill check, in alternating
    rounds on the same registry; then the Modbus read timed alone."""
    lp = line_processes()
    tare, content = 16.4, 0.5
    scans = args.scans
    n_codes = 2 * scans * (args.rounds + 2)
    overdue = str(china_today() - datetime.timedelta(days=1))
    reg, tokens = line_registry(lp, work, "station-decide")
    sim = station = None
    try:
        fleet_rows = [dict(f, next_inspection_due=overdue) for f in fleet("SD", n_codes)]
        for i in range(0, n_codes, 5000):
            reg.must("POST", "/v1/cylinders/batch", tokens["company"],
                     {"cylinders": fleet_rows[i:i + 5000]})
        sim = lp.ScaleSim(os.path.join(binaries(), "tools", "scale_sim", "pingma-scale-sim"))
        station = StationOnOnePipe(lp.Station(
            os.path.join(binaries(), "station", "pingma-station"),
            os.path.join(work, "station-decide"), "ST-01", reg.url, tokens["station"],
            [("P1", "OP-7", lp.tcp_listen_scanner(), lp.tcp_scale(sim))], sync_interval_s=3600))
        station.wait_for(lambda e: e["event"] == "replica_synced", what="a replica sync")
        # An operator's screen follows the events throughout, as at a real position.
        screen = CurlStream(station.screen_url.rstrip("/") + "/events",
                            os.path.join(work, "station-decide-screen.txt"))
        sim.control(f"place {tare} {content}")
        for _ in range(100):  # the load cell settles in 0.5 s
            if sim.status()["bits"]["stable"]:
                break
            time.sleep(0.05)
        host, port = station.scanner_address("P1").rsplit(":", 1)
        scanner = socket.create_connection((host, int(port)), timeout=30)
        client = KeptAlive(reg.url, tokens["station"])
        codes = iter(f"SD{i:08d}" for i in range(n_codes))
        inside = []  # the station's own timing of each decision

        def via_station():
            code = next(codes)
            start = time.perf_counter()
            scanner.sendall(code.encode() + b"\r\n")
            d, arrived = station.wait_for_raw(b'"event":"decision"', b'"event":"scan_refused"')
            if d.get("raw") != code:
                raise SystemExit(f"bench: a decision on {d.get('raw')}, not {code}")
            took = arrived - start
            if d["event"] != "decision" or d["decision"] != "block" or d["offline"]:
                raise SystemExit(f"bench: unexpected {d}")
            inside.append(d.get("timing_ms", {}))
            return took

        def direct():
            code = next(codes)
            body = {"station_id": "ST-01", "operator_id": "OP-7", "scan": code,
                    "empty_gross_kg": tare + content}
            answer, took = client.check(body, start=time.perf_counter())
            if answer["decision"] != "block":
                raise SystemExit(f"bench: unexpected {answer}")
            return took

        # The floor's third part: a line in on a socket and out on a pipe, through a
        # program that does nothing else (pingma-bench-station relay).
        relay = subprocess.Popen(
            [os.path.join(binaries(), "tools", "bench", "pingma-bench-station"), "relay"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        relay_in = socket.create_connection(("127.0.0.1", int(relay.stdout.readline())),
                                            timeout=30)

        relayed = iter(f"RL{i:08d}" for i in range(n_codes))

        def via_relay():
            code = next(relayed)
            start = time.perf_counter()
            relay_in.sendall(code.encode() + b"\r\n")
            line = relay.stdout.readline()
            took = time.perf_counter() - start
            if line.strip() != code.encode():
                raise SystemExit(f"bench: the relay wrote {line!r}, not {code}")
            return took

        sides = {"station": via_station, "direct": direct, "relay": via_relay}
        for side in sides.values():  # warm-up: connections, caches
            for _ in range(scans // 4):
                side()
        runs = {name: [] for name in sides}
        log(f"station-decide: {args.rounds} alternating rounds of {scans} scans per side")
        for r in range(args.rounds):
            order = list(sides) if r % 2 == 0 else list(reversed(sides))
            for name in order:
                runs[name].append([sides[name]() * 1000 for _ in range(scans)])
            log(f"  round {r + 1}: p50 station {statistics.median(runs['station'][-1]):.2f} ms, "
                f"direct {statistics.median(runs['direct'][-1]):.2f} ms, "
                f"relay {statistics.median(runs['relay'][-1]):.3f} ms")
        relay_in.close()
        relay.wait(timeout=30)
        scanner.close()
        client.close()
        screen.close()
        screen_events = screen.count("decision")
        # The floor: the driver's Read() (several Modbus requests) and one raw request,
        # on the same simulator; the simulator's request count says how many per Read.
        before = sim.status()["modbus"]["requests"]
        reads = 2000
        floor = json.loads(subprocess.run(
            [os.path.join(binaries(), "tools", "bench", "pingma-bench-station"), "modbus-read",
             "--host", sim.host, "--port", str(sim.port), "--reads", str(reads)],
            check=True, capture_output=True, text=True).stdout)
        per_read = (sim.status()["modbus"]["requests"] - before - reads - 1) / reads
        # The registry's check through the station's own client (libcurl, C++), on
        # codes not checked before: the check without Python's HTTP client.
        token_file = os.path.join(work, "station-decide.token")
        with open(token_file, "w") as f:
            f.write(tokens["station"] + "\n")
        client_run = json.loads(subprocess.run(
            [os.path.join(binaries(), "tools", "bench", "pingma-bench-station"), "check",
             "--registry", reg.url, "--token-file", token_file, "--prefix", "SD", "--first",
             str(n_codes - 2 * scans), "--count", str(2 * scans)],
            check=True, capture_output=True, text=True).stdout)
    finally:
        for stop in (station and station.stop, sim and sim.stop, reg.stop):
            if stop:
                stop()
    pooled = {name: [t for rnd in rs for t in rnd] for name, rs in runs.items()}
    res = {name: {"p50": percentile(v, 0.5), "p99": percentile(v, 0.99)}
           for name, v in pooled.items()}
    s, d = res["station"], res["direct"]
    read50, raw50 = floor["read"]["p50_us"] / 1000, floor["raw_request"]["p50_us"] / 1000
    print(f"## scan to decision at a position, online ({args.rounds} alternating rounds of "
          f"{scans} blocked cylinders each side, pooled; an operator's screen attached to "
          f"/events throughout, {screen_events} decisions seen on it)")
    print("| | p50 ms | p99 ms |")
    print("|---|---|---|")
    print(f"| direct POST /v1/fill-checks (kept alive) | {d['p50']:.2f} | {d['p99']:.2f} |")
    print(f"| station: scan line -> decision event | {s['p50']:.2f} | {s['p99']:.2f} |")
    per_round = ", ".join(f"{statistics.median(a) / statistics.median(b):.2f}"
                          for a, b in zip(runs["station"], runs["direct"]))
    print(f"ratio station/direct: p50 {s['p50'] / d['p50']:.2f}, p99 {s['p99'] / d['p99']:.2f} "
          f"(goal <= 1.3); p50 per round {per_round}")
    libcurl, sending = client_run["check"], client_run["sending"]
    print(f"the same check through the station's libcurl client (C++, after the rounds): "
          f"p50 {libcurl['p50_us'] / 1000:.2f} ms, p99 {libcurl['p99_us'] / 1000:.2f} ms, "
          f"of which libcurl's own before sending p50 {sending['p50_us'] / 1000:.3f} ms; "
          f"station/libcurl p50 {s['p50'] / (libcurl['p50_us'] / 1000):.2f}")
    timed = inside[-args.rounds * scans:]
    if timed and "total" in timed[0]:
        parts = tuple(k for k in ("queued", "before_weighing", "weighing", "check",
                                  "check_sending", "check_answered", "total") if k in timed[0])
        print("inside the station, from the scanner's line to the decision event (p50 ms): " +
              ", ".join(f"{k} {percentile([t[k] for t in timed], 0.5):.3f}" for k in parts) +
              f"; outside it (the scan's way in, the event's way out) "
              f"{s['p50'] - percentile([t['total'] for t in timed], 0.5):.3f}")
    relay50 = res["relay"]["p50"]
    floor_ratio = (d["p50"] + read50 + relay50) / d["p50"]
    floor_rounds = ", ".join(
        f"{(statistics.median(a) + read50 + statistics.median(b)) / statistics.median(a):.2f}"
        for a, b in zip(runs["direct"], runs["relay"]))
    print(f"floor: Scale::Read() p50 {read50:.3f} ms, p99 "
          f"{floor['read']['p99_us'] / 1000:.3f} ms ({per_read:.1f} Modbus requests per Read); "
          f"one raw request p50 {raw50:.3f} ms; a line through a bare relay (socket in, pipe "
          f"out) p50 {relay50:.3f} ms, p99 {res['relay']['p99']:.3f} ms; (direct + Read + "
          f"relay) / direct = ({d['p50']:.2f} + {read50:.3f} + {relay50:.3f}) / {d['p50']:.2f} "
          f"= {floor_ratio:.2f} (per round {floor_rounds}); station above its floor: "
          f"{s['p50'] / (d['p50'] + read50 + relay50):.2f}")
    return {"res": res, "floor": floor}


class StreamReader:
    """Follows a station's GET /events in a thread: every event with the time it
    arrived (time.time(), to compare with the station's `at`). For the latency's
    baseline only: a Python thread shares the benchmark's interpreter."""

    def __init__(self, url):
        self.events = []
        self.resp = urllib.request.urlopen(url, timeout=60)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for line in self.resp:
                if line.startswith(b"data: "):
                    self.events.append((time.time(), json.loads(line[6:])))
        except (OSError, ValueError, AttributeError):  # AttributeError: closed under it
            pass

    def close(self):
        try:
            self.resp.close()
        except OSError:
            pass


class CurlStream:
    """A screen that follows GET /events as a process of its own (curl), so that it
    takes nothing from the benchmark's interpreter; what it got is in `path`."""

    def __init__(self, url, path):
        self.path = path
        self.proc = subprocess.Popen(["curl", "-sN", "-o", path, url])

    def close(self):
        self.proc.terminate()
        self.proc.wait()

    def count(self, kind):
        with open(self.path, "rb") as f:
            return sum(1 for line in f if b'"event":"%s"' % kind.encode() in line)


def event_age_ms(arrived, event):
    at = event.get("at")
    if not at:
        return None
    when = datetime.datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    return (arrived - when) * 1000


def bench_screens(args, work):
    """One position filling slowly while 0 or 50 screens follow the event stream."""
    lp = line_processes()
    tare, content = 16.4, 0.5
    reg, tokens = line_registry(lp, work, "screens")
    sim = station = None
    rounds = {"none": [], "50 screens": []}
    cpu = {"none": [], "50 screens": []}
    try:
        reg.must("POST", "/v1/cylinders/batch", tokens["company"],
                 {"cylinders": fleet("SC", 4 * args.rounds)})
        sim = lp.ScaleSim(os.path.join(binaries(), "tools", "scale_sim", "pingma-scale-sim"),
                          flow_kg_s=0.3)
        station = lp.Station(os.path.join(binaries(), "station", "pingma-station"),
                             os.path.join(work, "screens"), "ST-01", reg.url, tokens["station"],
                             [("P1", "OP-7", lp.tcp_listen_scanner(), lp.tcp_scale(sim))],
                             sync_interval_s=3600)
        station.start()
        station.wait_for(lambda e: e["event"] == "replica_synced", what="a replica sync")
        pid = station.program.proc.pid
        codes = iter(f"SC{i:08d}" for i in range(4 * args.rounds))
        url = station.screen_url.rstrip("/") + "/events"
        for r in range(2 * args.rounds):
            side = "none" if r % 2 == 0 else "50 screens"
            readers = ([CurlStream(url, os.path.join(work, f"screen-{r}-{i}.txt"))
                        for i in range(50)] if side != "none" else [])
            sim.clear_platform()
            sim.control(f"place {tare} {content}")
            time.sleep(1.0)  # the load cell settles
            station.scan("P1", next(codes))
            station.wait_for(lambda e: e["event"] in ("fill_started", "scan_refused"),
                             what="a fill starting")
            time.sleep(0.5)
            req0, cpu0, t0 = sim.status()["modbus"]["requests"], cpu_seconds(pid), time.monotonic()
            time.sleep(args.window)
            req1, cpu1, t1 = sim.status()["modbus"]["requests"], cpu_seconds(pid), time.monotonic()
            rounds[side].append((req1 - req0) / (t1 - t0))
            cpu[side].append((cpu1 - cpu0) / (t1 - t0))
            sim.control("remove")  # the fill ends, interrupted
            station.wait_for(lambda e: e["event"] == "fill_finished", timeout=120,
                             what="the fill's end")
            for rd in readers:
                rd.close()
            seen = min((rd.count("weight") for rd in readers), default=None)
            log(f"  round {r + 1} ({side}): {rounds[side][-1]:.2f} polls/s, station CPU "
                f"{cpu[side][-1] * 100:.1f}%" + (f", weight events per screen >= {seen}"
                                                 if seen is not None else ""))
    finally:
        for stop in (station and station.stop, sim and sim.stop, reg.stop):
            if stop:
                stop()
    none, many = statistics.median(rounds["none"]), statistics.median(rounds["50 screens"])
    print(f"## the fill loop with 50 operator's screens open ({args.rounds} alternating rounds "
          f"of {args.window} s each side, one position filling at 0.3 kg/s)")
    print("| | Modbus polls/s (median) | station CPU, % of one core (median) |")
    print("|---|---|---|")
    print(f"| no screen | {none:.2f} | {statistics.median(cpu['none']) * 100:.1f} |")
    print(f"| 50 screens following /events | {many:.2f} | "
          f"{statistics.median(cpu['50 screens']) * 100:.1f} |")
    per_round = ", ".join(f"{b / a:.3f}" for a, b in zip(rounds["none"], rounds["50 screens"]))
    print(f"ratio 50 screens / none: {many / none:.3f} (goal >= 0.95); per round {per_round}")
    return {"none": none, "many": many}


def bench_screen_latency(args, work):
    """From a station event's `at` to the page's change, in headless Chromium, beside a
    bare stream reader on the same events."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        raise SystemExit("bench: screen-latency needs Debian's python3-selenium: run it with "
                         "/usr/bin/python3")
    lp = line_processes()
    tare, content = 16.4, 0.5
    reg, tokens = line_registry(lp, work, "screen-latency")
    sim = station = driver = reader = None
    overdue = str(china_today() - datetime.timedelta(days=1))
    try:
        reg.must("POST", "/v1/cylinders/batch", tokens["company"],
                 {"cylinders": [dict(f, next_inspection_due=overdue)
                                for f in fleet("SL", args.scans)]})
        sim = lp.ScaleSim(os.path.join(binaries(), "tools", "scale_sim", "pingma-scale-sim"))
        station = lp.Station(os.path.join(binaries(), "station", "pingma-station"),
                             os.path.join(work, "screen-latency"), "ST-01", reg.url,
                             tokens["station"],
                             [("P1", "OP-7", lp.tcp_listen_scanner(), lp.tcp_scale(sim))],
                             sync_interval_s=3600)
        station.start()
        station.wait_for(lambda e: e["event"] == "replica_synced", what="a replica sync")
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--user-data-dir=" + os.path.join(work, "chromium"),
                    "--autoplay-policy=no-user-gesture-required", "--window-size=1024,600"):
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        driver.get(station.screen_url.rstrip("/") + "/p/P1")
        reader = StreamReader(station.screen_url.rstrip("/") + "/events")
        time.sleep(1.0)
        sim.control(f"place {tare} {content}")
        time.sleep(1.0)
        log(f"screen-latency: {args.scans} blocked cylinders scanned, one every 0.25 s")
        for i in range(args.scans):
            station.scan("P1", f"SL{i:08d}")
            station.wait_for(lambda e: e["event"] == "decision", what="a decision")
            time.sleep(0.25)
        time.sleep(1.0)
        page = driver.execute_script("return window.pingmaScreen.latencies")
        bare = [a for a in (event_age_ms(t, e) for t, e in reader.events) if a is not None]
    finally:
        if reader:
            reader.close()
        if driver:
            driver.quit()
        for stop in (station and station.stop, sim and sim.stop, reg.stop):
            if stop:
                stop()
    p = {"page": (percentile(page, 0.5), percentile(page, 0.99)),
         "bare": (percentile(bare, 0.5), percentile(bare, 0.99))}
    print(f"## event to screen ({args.scans} blocked cylinders; {len(page)} events drawn)")
    print("| | p50 ms | p99 ms |")
    print("|---|---|---|")
    print(f"| a bare reader of /events (Python, the event's arrival) | {p['bare'][0]:.1f} | "
          f"{p['bare'][1]:.1f} |")
    print(f"| the page in Chromium (the frame after its change) | {p['page'][0]:.1f} | "
          f"{p['page'][1]:.1f} |")
    print(f"page p99 {p['page'][1]:.1f} ms (goal <= 250 ms); page/bare p99 "
          f"{p['page'][1] / max(p['bare'][1], 0.1):.2f}")
    return p


def bench_replica(args, work):
    """A full sync of the replica from a registry seeded with 1M cylinders, against
    inserting the same rows into SQLite; the incremental sync; offline decisions."""
    lp = line_processes()
    tool = os.path.join(binaries(), "tools", "bench", "pingma-bench-station")
    n = args.replica_cylinders
    db = os.path.join(work, f"replica-registry-{n}.db")
    if not (args.keep and os.path.exists(db)):
        log(f"replica: seeding a registry with {n} cylinders")
        start = time.monotonic()
        subprocess.run([args.seed, "--db", db, "--cylinders", str(n), "--events", "0"],
                       check=True)
        log(f"  seeded in {time.monotonic() - start:.0f} s")
        os.sync()
    reg = lp.Registry(args.registry, db)
    station_token = os.path.join(work, "replica.token")
    with open(station_token, "w") as f:
        f.write(reg.token("station", "ST-01") + "\n")
    inspector = reg.token("inspector", "INSP-1")
    reg.start()
    syncs, inserts = [], []
    try:
        for r in range(args.rounds):
            replica = os.path.join(work, f"replica-{r}.db")
            for f in (replica, replica + "-wal", replica + "-shm"):
                if os.path.exists(f):
                    os.unlink(f)
            syncs.append(json.loads(subprocess.run(
                [tool, "sync", "--registry", reg.url, "--token-file", station_token,
                 "--replica", replica], check=True, capture_output=True, text=True).stdout))
            raw = os.path.join(work, f"replica-raw-{r}.db")
            for f in (raw, raw + "-wal", raw + "-shm"):
                if os.path.exists(f):
                    os.unlink(f)
            inserts.append(json.loads(subprocess.run(
                [tool, "insert", "--from", replica, "--db", raw], check=True,
                capture_output=True, text=True).stdout))
            os.unlink(raw)
            log(f"  round {r + 1}: sync {syncs[-1]['seconds']:.1f} s ({syncs[-1]['pages']} pages), "
                f"raw insert {inserts[-1]['seconds']:.2f} s")
            if r + 1 < args.rounds:
                os.unlink(replica)
        if syncs[-1]["cylinders"] != n:
            raise SystemExit(f"bench: the replica holds {syncs[-1]['cylinders']} of {n}")
        # Where a sync's time goes: the same pages fetched, then applied, timed apart.
        split_db = os.path.join(work, "replica-split.db")
        for f in (split_db, split_db + "-wal", split_db + "-shm"):
            if os.path.exists(f):
                os.unlink(f)
        split = json.loads(subprocess.run(
            [tool, "split", "--registry", reg.url, "--token-file", station_token,
             "--replica", split_db], check=True, capture_output=True, text=True).stdout)
        os.unlink(split_db)
        # Change some cylinders (an inspection each), then sync what changed.
        host, port = reg.url[len("http://"):].rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        today = str(china_today())
        for i in range(0, n, n // args.changed)[:args.changed]:
            body = {"code": f"BM{i:08d}", "date": today, "result": "pass",
                    "report_no": f"RPT-{i}"}
            conn.request("POST", "/v1/inspections", body=json.dumps(body),
                         headers={"Authorization": "Bearer " + inspector,
                                  "Content-Type": "application/json"})
            resp = conn.getresponse()
            answer = resp.read()
            if resp.status not in (200, 201):
                raise SystemExit(f"bench: inspection {resp.status} {answer}")
        conn.close()
        incremental = json.loads(subprocess.run(
            [tool, "sync", "--registry", reg.url, "--token-file", station_token,
             "--replica", replica], check=True, capture_output=True, text=True).stdout)
    finally:
        reg.stop()
    decide = json.loads(subprocess.run(
        [tool, "decide", "--replica", replica, "--cylinders", str(n), "--decisions",
         str(args.decisions)], check=True, capture_output=True, text=True).stdout)
    sync_s = statistics.median(s["seconds"] for s in syncs)
    raw_s = statistics.median(i["seconds"] for i in inserts)
    print(f"## the station's replica: {n} cylinders (medians of {args.rounds} rounds)")
    print("| | pages | seconds | cylinders/s |")
    print("|---|---|---|---|")
    print(f"| raw SQLite insert of the same rows ({inserts[-1]['bytes'] / 1e6:.0f} MB) | | "
          f"{raw_s:.2f} | {n / raw_s:.0f} |")
    print(f"| Replica::Sync, full | {syncs[-1]['pages']} | {sync_s:.2f} | {n / sync_s:.0f} |")
    print(f"| Replica::Sync, incremental | {incremental['pages']} | "
          f"{incremental['seconds']:.3f} | {incremental['received'] / incremental['seconds']:.0f} |")
    print(f"ratio raw/sync: {raw_s / sync_s:.3f} (goal >= 0.3); per round " +
          ", ".join(f"{i['seconds'] / s['seconds']:.3f}" for s, i in zip(syncs, inserts)))
    print(f"where a full sync goes, its stages timed apart: fetching the {split['pages']} pages "
          f"({split['bytes'] / 1e6:.0f} MB of JSON, checked and indexed) "
          f"{split['fetch_seconds']:.1f} s, reading their cylinders "
          f"{split['read_seconds']:.1f} s, storing them {split['apply_seconds']:.1f} s; "
          f"raw insert/storing: {raw_s / split['apply_seconds']:.3f}")
    print(f"incremental: {incremental['received']} cylinders received after {args.changed} "
          f"inspections")
    print(f"offline Replica::Decide on {decide['replica_cylinders']} cylinders, "
          f"{args.decisions} decisions: " + "; ".join(
              f"{k} p50 {decide[k]['p50_us'] / 1000:.3f} ms p99 {decide[k]['p99_us'] / 1000:.3f} ms "
              f"max {decide[k]['max_us'] / 1000:.3f} ms (n={decide[k]['n']})"
              for k in ("all", "known", "unknown")) + " (goal p99 <= 5 ms)")
    w = decide["sighting_write"]
    print(f"floor of a known code's decision: storing its sighting (2 autocommit statements, WAL, "
          f"synchronous=FULL) p50 {w['p50_us'] / 1000:.3f} ms p99 {w['p99_us'] / 1000:.3f} ms")
    return {"syncs": syncs, "inserts": inserts, "incremental": incremental, "decide": decide}


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_positions(args, work):
    """One station, 8 positions, 8 scale simulators, all filling at once."""
    lp = line_processes()
    tare, content, positions = 16.4, 0.5, 8
    reg, tokens = line_registry(lp, work, "positions")
    sims, station = [], None
    try:
        reg.must("POST", "/v1/cylinders/batch", tokens["company"],
                 {"cylinders": fleet("PF", positions)})
        for _ in range(positions):
            sims.append(lp.ScaleSim(os.path.join(binaries(), "tools", "scale_sim",
                                                 "pingma-scale-sim"), flow_kg_s=0.3))
        ids = [f"P{i + 1}" for i in range(positions)]
        station = lp.Station(os.path.join(binaries(), "station", "pingma-station"),
                             os.path.join(work, "positions"), "ST-01", reg.url,
                             tokens["station"],
                             [(pid, "OP-7", lp.tcp_listen_scanner(), lp.tcp_scale(sim))
                              for pid, sim in zip(ids, sims)], sync_interval_s=3600)
        station.start()
        station.wait_for(lambda e: e["event"] == "replica_synced", what="a replica sync")
        for sim in sims:
            sim.control(f"place {tare} {content}")
        time.sleep(1.0)  # the load cells settle
        for i, pid in enumerate(ids):
            station.scan(pid, f"PF{i:08d}")
        started = set()
        while len(started) < positions:
            e = station.wait_for(lambda e: e["event"] in ("fill_started", "decision",
                                                          "scan_refused"), what="fills starting")
            if e["event"] == "fill_started":
                started.add(e["position"])
            elif e["event"] == "scan_refused" or e.get("decision") != "allow":
                raise SystemExit(f"bench: {e}")
        log(f"positions: {positions} fills running; measuring {args.window} s")
        pid = station.program.proc.pid
        req0 = [s.status()["modbus"]["requests"] for s in sims]
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(args.window)
        req1 = [s.status()["modbus"]["requests"] for s in sims]
        cpu1, t1 = cpu_seconds(pid), time.monotonic()
        valves = [s.status()["valve"] for s in sims]
        finished = []
        while len(finished) < positions:
            e = station.wait_for(lambda e: e["event"] == "fill_finished", timeout=120,
                                 what="the fills finishing")
            finished.append(e["record"]["result"])
    finally:
        for stop in [station and station.stop] + [s.stop for s in sims] + [reg.stop]:
            if stop:
                stop()
    secs = t1 - t0
    rates = [(b - a) / secs for a, b in zip(req0, req1)]
    cpu = (cpu1 - cpu0) / secs
    print(f"## one station, {positions} positions filling at once ({secs:.1f} s window, "
          f"flow 0.3 kg/s)")
    print("Modbus requests/s per position: " + ", ".join(f"{r:.1f}" for r in rates))
    # pingma-fill-v1 maps registers 0..8, which the driver reads in one request.
    print(f"total {sum(rates):.1f} requests/s = {sum(rates):.1f} Read()s/s at one request per "
          f"Read (configured: a Read every 100 ms = 10/s per position, "
          f"{positions * 10} Read()s/s)")
    print(f"station CPU: {cpu * 100:.1f}% of one core (utime+stime over the window)")
    print(f"valves at the window's end: {valves}; fills finished: {finished}")
    return {"rates": rates, "cpu": cpu, "finished": finished}


def positions_ddl():
    """The registry's positions table and its index, as registry/src/store/schema/sqlite.sql
    makes them."""
    schema = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                               "registry", "src", "store", "schema", "sqlite.sql"),
                  encoding="utf-8").read()
    table = re.search(r"CREATE TABLE IF NOT EXISTS positions\(.*?\) WITHOUT ROWID;", schema,
                      re.S).group(0)
    index = re.search(r"CREATE UNIQUE INDEX IF NOT EXISTS positions_by_event[^;]*;",
                      schema).group(0)
    return table + "\n" + index


def raw_position_inserts(path, rows, per_commit, vehicles=1000):
    """The baseline: `rows` positions of `vehicles` vehicles, each reporting in turn (as
    the swarm sends them), inserted straight into the registry's positions table with
    SQLite's own Python module, WAL and synchronous=FULL, `per_commit` rows a
    transaction; rows/s."""
    import sqlite3
    if os.path.exists(path):
        os.remove(path)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(positions_ddl())
    now = int(time.time() * 1000)
    data = [(f"V-{i % vehicles:04d}", now - 1000 * (rows - i), "",
             39.9 + (i % 97) * 1e-4, 116.4 + (i % 89) * 1e-4, 30.0, 90, None, "jt808", 0, now)
            for i in range(rows)]
    t0 = time.perf_counter()
    for first in range(0, rows, per_commit):
        db.execute("BEGIN")
        db.executemany("INSERT INTO positions(vehicle_id, at, event_id, lat, lon, speed_kmh, "
                       "heading, accuracy_m, source, outside, received_at) "
                       "VALUES(?,?,?,?,?,?,?,?,?,?,?)", data[first:first + per_commit])
        db.execute("COMMIT")
    secs = time.perf_counter() - t0
    db.close()
    return rows / secs


def jt808_swarm(client, port, terminals, reports, batch, processes, first=1):
    """A swarm of JT/T 808 terminals against `port`, phones 1390000 + `first`.. (as
    zero-padded 4-digit indices): its summary, and the CPU seconds the swarm took (its
    processes', user + system). `client` is "cpp",
    pingma-bench-jt808-swarm on one thread, or "python", tests/integration/
    jt808_terminal.py swarm on `processes` processes; both take the same options and
    print the same summary."""
    if client == "cpp":
        argv = [os.path.join(binaries(), "tools", "bench", "pingma-bench-jt808-swarm")]
    else:
        argv = [sys.executable, "-B",
                os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                             "integration", "jt808_terminal.py"), "swarm",
                "--processes", str(processes)]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--terminals", str(terminals),
             "--reports", str(reports), "--phone-prefix", "1390000", "--timeout", "120",
             "--lat", "39.9", "--lon", "116.4", "--batch", str(batch), "--first", str(first)]
    before = os.times()
    out = subprocess.run(argv, check=True, capture_output=True, text=True)
    after = os.times()
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    summary["client_cpu_s"] = (after.children_user - before.children_user
                               + after.children_system - before.children_system)
    return summary


def bench_jt808(args, work):
    """JT/T 808 location reports stored per second through the gateway with 1,000
    terminals connected, each waiting for its 0x8001 (sent once the position is stored)
    before the next, against raw inserts of the same rows into the same table; the
    floor: the same gateway with nothing behind it. The terminals are
    pingma-bench-jt808-swarm (--jt808-client cpp) or the Python simulator (python),
    whose CPU per position is printed beside the server's: where the client's is the
    larger, the floor measures the client. Each run has 1,000 terminals of its own: a
    swarm's positions end at its start, a second apart, so that a run after another
    within --jt808-reports seconds would repeat the seconds of the same vehicles, which
    the registry ignores (one position a vehicle and second) rather than stores."""
    lp = line_processes()
    terminals, reports, processes = 1000, args.jt808_reports, args.jt808_processes
    client = args.jt808_client
    batches = (1, 10)
    results = {}
    # The floor: the gateway answering at once, storing nothing.
    floor = subprocess.Popen([os.path.join(binaries(), "tools", "bench",
                                           "pingma-bench-jt808-floor")],
                             stdout=subprocess.PIPE, text=True)
    try:
        line = floor.stdout.readline().strip()
        if not line.startswith("jt808 on "):
            raise SystemExit(f"bench: the jt808 floor said {line!r}")
        port = int(line.rsplit(":", 1)[1])
        for n, batch in enumerate(batches):
            cpu0 = cpu_seconds(floor.pid)
            r = jt808_swarm(client, port, terminals, reports, batch, processes,
                            first=1 + n * terminals)
            r["server_cpu_s"] = cpu_seconds(floor.pid) - cpu0
            results[("floor", batch)] = r
            log(f"jt808: floor, batch {batch}: {r['reports_per_s']:.0f} positions/s")
    finally:
        floor.send_signal(signal.SIGTERM)
        floor.wait()
    reg = lp.Registry(os.path.join(binaries(), "registry", "pingma-registry"),
                      os.path.join(work, "jt808.db"), jt808=True)
    tokens = {r: reg.token(r, s) for r, s in [("admin", "root"), ("company", "CO-A"),
                                              ("station", "ST-01"), ("inspector", "INSP-1")]}
    try:
        reg.start()
        setup_entities(reg.url, tokens)
        # Each vehicle's courier has an area for its zone: every position is looked up.
        reg.must("PUT", "/v1/areas/A-1", tokens["company"], {
            "company_id": "CO-A", "name": "bench", "geometry": {"type": "Polygon", "coordinates": [
                [[116.3, 39.8], [116.5, 39.8], [116.5, 40.0], [116.3, 40.0], [116.3, 39.8]]]}})
        log(f"jt808: {terminals} vehicles with terminals and couriers for each of "
            f"{len(batches)} runs")
        for i in range(1, len(batches) * terminals + 1):
            reg.must("POST", "/v1/vehicles", tokens["company"], {
                "id": f"V-{i:04d}", "company_id": "CO-A", "plate": f"B{i:05d}",
                "terminal": {"phone": f"1390000{i:04d}"}})
            reg.must("POST", "/v1/couriers", tokens["company"], {
                "id": f"CR-{i:04d}", "company_id": "CO-A", "name": "c", "vehicle": f"V-{i:04d}",
                "zones": ["A-1"]})
        for n, batch in enumerate(batches):
            pid = reg.program.proc.pid
            cpu0 = cpu_seconds(pid)
            r = jt808_swarm(client, reg.jt808_port, terminals, reports, batch, processes,
                            first=1 + n * terminals)
            r["server_cpu_s"] = cpu_seconds(pid) - cpu0
            results[("registry", batch)] = r
            log(f"jt808: registry, batch {batch}: {r['reports_per_s']:.0f} positions/s")
    finally:
        reg.stop()
    db = sqlite3.connect(os.path.join(work, "jt808.db"))
    stored = db.execute("SELECT count(*) FROM positions").fetchone()[0]
    db.close()
    acknowledged = sum(r["reports_ok"] for (who, _), r in results.items() if who == "registry")
    raw_1000 = raw_position_inserts(os.path.join(work, "raw-positions.db"), 100000, 1000)
    raw_one = raw_position_inserts(os.path.join(work, "raw-positions.db"), 100000, 100000)
    print(f"## JT/T 808 location reports, {terminals} terminals connected, each awaiting its "
          "reply")
    if client == "cpp":
        print("terminals: pingma-bench-jt808-swarm (C++, one thread)")
    else:
        print(f"terminals: jt808_terminal.py swarm (Python asyncio, {processes} process"
              f"{'es' if processes > 1 else ''})")
    print("| server | sent as | positions/s | reply p50 / p99 ms | server CPU µs a position | "
          "client CPU µs a position | ratio to raw inserts, 1,000 a commit / one commit |")
    print("|---|---|---|---|---|---|---|")
    for (who, batch), r in results.items():
        kind = "0x0200, one a message" if batch == 1 else f"0x0704, {batch} a message"
        name = "the gateway storing nothing (floor)" if who == "floor" else "pingma-registry"
        print(f"| {name} | {kind} | {r['reports_per_s']:,.0f} | {r['latency_p50_ms']:.1f} / "
              f"{r['latency_p99_ms']:.1f} | {1e6 * r['server_cpu_s'] / r['reports_ok']:.0f} | "
              f"{1e6 * r['client_cpu_s'] / r['reports_ok']:.0f} | "
              f"{r['reports_per_s'] / raw_1000:.2f} / {r['reports_per_s'] / raw_one:.2f} |")
    print(f"raw inserts of the same rows into the same table (SQLite, WAL, synchronous=FULL): "
          f"{raw_1000:,.0f} rows/s at 1,000 a commit, {raw_one:,.0f} rows/s in one commit")
    print(f"positions in the registry's table after its runs: {stored:,} "
          f"({acknowledged:,} acknowledged)")
    for batch in batches:
        print(f"stored through the registry / the floor, batch {batch}: "
              f"{results[('registry', batch)]['reports_per_s'] / results[('floor', batch)]['reports_per_s']:.2f}")
    city_on_paper(work)
    return results


def city_on_paper(work):
    """A city's year of positions, from the bytes a row takes: 5,000 vehicles each
    reporting every 10 s, a million of their positions in the registry's table."""
    import sqlite3
    path = os.path.join(work, "city-positions.db")
    vehicles, rows = 5000, 1000000
    raw_position_inserts(path, rows, 10000, vehicles=vehicles)
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    per_row = os.path.getsize(path) / rows
    db.close()
    per_day = vehicles * 24 * 3600 // 10
    kept_days = 183
    print(f"## A city on paper: {vehicles:,} vehicles reporting every 10 s")
    print(f"{per_day / 86400:,.0f} positions/s, {per_day:,} a day; {per_row:.0f} bytes a "
          f"position in the table (measured on {rows:,} interleaved rows)")
    print(f"a year: {per_day * 365:,} positions, {per_day * 365 * per_row / 1e12:.2f} TB; "
          f"retention ({kept_days} days) keeps {per_day * kept_days:,}, "
          f"{per_day * kept_days * per_row / 1e12:.2f} TB")


# The tables `migrate` copies, in its order (registry/src/store/pg_store.cpp kTables), and the log.
MIGRATED_TABLES = ["tokens", "companies", "stations", "operators", "custody", "recalls",
                   "cylinders", "carriers", "fills", "meta", "vehicles", "couriers",
                   "customers", "handovers", "whereabouts", "hazards", "check_days",
                   "refusal_days", "refusals", "events"]


def bench_migrate(args, work):
    """migrate of a seeded store into PostgreSQL vs COPY of the same rows into the
    same schema (dumped from the migrated database beforehand), in alternating rounds
    on one throw-away cluster; and the chain's walk, which migrate ends with."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "tests", "integration"))
    from pg_cluster import PgCluster
    n, m = args.migrate_cylinders, args.migrate_events
    db = os.path.join(work, f"migrate-{n}-{m}.db")
    if not (args.keep and os.path.exists(db)):
        log(f"migrate: seeding a registry with {n} cylinders and {m} events")
        subprocess.run([args.seed, "--db", db, "--cylinders", str(n), "--events", str(m),
                        "--history-days", "365", "--fills", str(n // 2)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = {}
    with sqlite3.connect(db) as con:
        for t in MIGRATED_TABLES:
            rows[t] = con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
    total_rows = sum(rows.values())
    rounds = min(args.rounds, 3)
    migrations, copies, walks = [], [], []
    with PgCluster() as pg:
        dump = os.path.join(work, "migrate-copy")
        os.makedirs(dump, exist_ok=True)
        os.chmod(dump, 0o755)
        for r in range(rounds):
            target = f"m{r}"
            pg.create_database(target)
            start = time.monotonic()
            subprocess.run([args.registry, "migrate", "--from", db, "--to", pg.conninfo(target)],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            migrations.append(time.monotonic() - start)
            start = time.monotonic()
            subprocess.run([args.registry, "verify", "--db", pg.conninfo(target)], check=True,
                           stdout=subprocess.DEVNULL)
            walks.append(time.monotonic() - start)
            if r == 0:  # the log's size there; the rows as COPY text, the schema without them
                events_bytes = int(pg.psql(
                    "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits "
                    "WHERE inhparent = 'events'::regclass", db=target))
                database_bytes = int(pg.psql(f"SELECT pg_database_size('{target}')", db=target))
                for t in MIGRATED_TABLES:
                    with open(os.path.join(dump, t + ".copy"), "wb") as f:
                        subprocess.run(["psql", "-X", "-q", "-d", pg.conninfo(target), "-c",
                                        f"COPY (SELECT * FROM {t}) TO STDOUT"], check=True,
                                       stdout=f)
                schema = subprocess.run(["pg_dump", "--schema-only", "-d", pg.conninfo(target)],
                                        check=True, capture_output=True).stdout
            base = f"c{r}"
            pg.create_database(base)
            subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pg.conninfo(base)],
                           input=schema, check=True, stdout=subprocess.DEVNULL)
            script = "".join(f"\\copy {t} FROM '{os.path.join(dump, t + '.copy')}'\n"
                             for t in MIGRATED_TABLES)
            start = time.monotonic()
            subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", pg.conninfo(base)],
                           input=script.encode(), check=True, stdout=subprocess.DEVNULL)
            copies.append(time.monotonic() - start)
            log(f"  round {r + 1}: migrate {migrations[-1]:.1f} s (of it the walk, timed "
                f"alone: {walks[-1]:.1f} s), COPY {copies[-1]:.1f} s")
            pg.psql(f"DROP DATABASE {target}", db="postgres")
            pg.psql(f"DROP DATABASE {base}", db="postgres")
    mig, cp, walk = (statistics.median(x) for x in (migrations, copies, walks))
    print(f"## migrate: SQLite -> PostgreSQL, {n} cylinders, {rows['events']} events, "
          f"{total_rows} rows in all (medians of {rounds} rounds)")
    print("| | seconds | rows/s |")
    print("|---|---|---|")
    print(f"| COPY of the same rows into the same schema (psql \\copy) | {cp:.2f} | "
          f"{total_rows / cp:.0f} |")
    print(f"| pingma-registry migrate, all of it | {mig:.2f} | {total_rows / mig:.0f} |")
    print(f"| of which, at its end, the chain walked in PostgreSQL (verify alone) | {walk:.2f} | |")
    print(f"bytes per event in PostgreSQL: {events_bytes / rows['events']:.0f} (the log's "
          f"partitions with their indexes), {database_bytes / rows['events']:.0f} (the whole "
          f"database); the SQLite file: {os.path.getsize(db) / rows['events']:.0f}")
    print(f"ratio migrate rows/s to COPY rows/s: {cp / mig:.3f}; per round " +
          ", ".join(f"{c / m_:.3f}" for c, m_ in zip(copies, migrations)) +
          f"; without the walk: {cp / max(mig - walk, 1e-9):.3f}")
    return {"migrate": migrations, "copy": copies, "walk": walks}


def bench_pg_large_store(args, work):
    """large-store's two stores (seeded in SQLite by the registry's use cases) moved
    into PostgreSQL by migrate, both served at once and measured in alternating
    rounds: the large store's fill-check p99 against the small one's."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "tests", "integration"))
    from pg_cluster import PgCluster
    registry = args.registry
    stores = {}
    with PgCluster() as pg:
        for name, cyl, ev in [("small", args.small_cylinders, args.small_cylinders * 10),
                              ("large", args.large_cylinders, args.large_events)]:
            db = seeded(args, work, name, cyl, ev)
            conninfo = pg.create_database(name)
            log(f"pg-large-store: migrating the {name} store")
            start = time.monotonic()
            subprocess.run([registry, "migrate", "--from", db, "--to", conninfo], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            log(f"  migrated in {time.monotonic() - start:.0f} s")
            pg.psql("VACUUM ANALYZE", db=name)
            # migrate carries the SQLite store's customer-key fingerprint over: the
            # same folder serves it.
            stores[name] = {"db": conninfo, "cylinders": cyl,
                            "secrets": os.path.join(os.path.dirname(db), "pingma-secrets"),
                            "events": int(pg.psql("select count(*) from events", db=name)),
                            "token": token(registry, conninfo, "station", "ST-01"), "runs": []}
        small_and_large_rounds(args, stores, "pg-large-store")
        # The start again with a one-minute clone window, which the seeded log (all
        # of it minutes old) lies outside: what a start reads back is the window's
        # tail of the log, never the log.
        policy = os.path.join(work, "window-1-minute.json")
        with open(policy, "w") as f:
            json.dump({"clone_window_minutes": 1}, f)
        for name, st in stores.items():
            srv = Server([registry, "serve", "--db", st["db"], "--listen", "127.0.0.1:0",
                          "--secrets-dir", st["secrets"], "--policy", policy])
            st["start_window_mib"] = peak_rss_mib(srv.proc.pid)
            srv.stop()
    print("## fill check on a large store, PostgreSQL")
    print("| store | cylinders | events | req/s | p50 ms | p99 ms | peak MiB at start "
          "| the same, the log outside a 1-minute clone window |")
    print("|---|---|---|---|---|---|---|---|")
    for name, st in stores.items():
        print(f"| {name} | {st['cylinders']} | {st['events']} | "
              f"{median_of(st['runs'], 'rps'):.0f} | {median_of(st['runs'], 'p50_ms'):.2f} | "
              f"{median_of(st['runs'], 'p99_ms'):.2f} | {st['start_mib']:.0f} | "
              f"{st['start_window_mib']:.0f} |")
    ratio = median_of(stores["large"]["runs"], "p99_ms") / median_of(stores["small"]["runs"],
                                                                      "p99_ms")
    print(f"p99 large/small: {ratio:.2f} (goal <= 1.5); per round " + ", ".join(
        f"{l_['p99_ms'] / s_['p99_ms']:.2f}"
        for s_, l_ in zip(stores["small"]["runs"], stores["large"]["runs"])))
    return stores


# A fill check's writes as the registry makes them on PostgreSQL (cases/fill_checks.cpp),
# one job of a batch, in its savepoint: its event, and its station's day counted.
PG_FLOOR_EVENT = ("INSERT INTO events(seq, id, code, type, at, actor_role, actor_id, body, hash) "
                  "VALUES(nextval('floor_seq'), 'ev-floor', 'BP' || lpad(CAST(:code AS text), 8, "
                  "'0'), 'fill_check', (extract(epoch from clock_timestamp()) * 1000)::bigint, "
                  "'station', 'ST-01', '{\"decision\":\"allow\",\"empty_gross_kg\":15.2,"
                  "\"operator_id\":\"OP-01\",\"reasons\":[],\"scan\":\"BP00001234\","
                  "\"station_id\":\"ST-01\"}', decode(repeat('ab', 32), 'hex'));\n")
PG_FLOOR_COUNT = ("INSERT INTO check_days(day, station_id, company_id, checks, refused, "
                  "offline_checks, offline_refused, disagreements) VALUES('2026-12-07', 'ST-01', "
                  "'CO-A', {n}, 0, 0, 0, 0) ON CONFLICT(day, station_id) DO UPDATE SET checks = "
                  "check_days.checks + excluded.checks;\n")


def pg_floor_script(jobs, pipelined, count_once):
    """A pgbench script: one transaction of `jobs` fill checks' writes, each job in its
    savepoint; the station's day counted in each job, or once for them all."""
    job = "SAVEPOINT job;\n" + PG_FLOOR_EVENT
    job += "" if count_once else PG_FLOOR_COUNT.format(n=1)
    job += "RELEASE job;\n"
    text = "\\set code random(0, 9999)\n"
    text += "\\startpipeline\n" if pipelined else ""
    text += "BEGIN;\n" + job * jobs + (PG_FLOOR_COUNT.format(n=jobs) if count_once else "")
    text += "COMMIT;\n" + ("\\endpipeline\n" if pipelined else "")
    return text


def bench_pg_floor(args, work):
    """pgbench's fill-check writes on a throw-away cluster (checks a second: its
    transactions a second times the jobs in each) beside the SQLite registry's fill
    checks over HTTP, in alternating rounds: how much of the SQLite registry's rate
    PostgreSQL's own work leaves room for on this machine."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "tests", "integration"))
    from pg_cluster import PgCluster, clean_environment, find_bindir
    registry, codes, jobs = args.registry, 10000, 32
    pgbench = os.path.join(find_bindir(), "pgbench")
    sqlite_db = os.path.join(work, "pg-floor.db")
    for f in (sqlite_db, sqlite_db + "-wal", sqlite_db + "-shm"):
        if os.path.exists(f):
            os.unlink(f)
    scripts = {}
    for name, pipelined, count_once in (
            ("one round trip a statement, counted each job", False, False),
            ("pipelined, counted each job", True, False),
            ("pipelined, counted once a transaction", True, True)):
        path = os.path.join(work, f"pg-floor-{len(scripts)}.sql")
        with open(path, "w") as f:
            f.write(pg_floor_script(jobs, pipelined, count_once))
        scripts[name] = path
    with PgCluster() as pg:
        conninfo = pg.create_database("floor")
        setup_registry(registry, conninfo)  # the registry's schema, migrated by it
        pg.psql("CREATE SEQUENCE floor_seq START 1000000000", db="floor")
        tokens = setup_registry(registry, sqlite_db)
        srv = Server([registry, "serve", "--db", sqlite_db, "--listen", "127.0.0.1:0"])
        try:
            setup_entities(srv.url, tokens)
            for start in range(0, codes, 1000):
                status, answer = call(srv.url, "POST", "/v1/cylinders/batch", tokens["company"],
                                      {"cylinders": fleet("BP", codes)[start:start + 1000]})
                assert status == 200, answer

            def run_pgbench(script, clients, seconds):
                out = subprocess.run([pgbench, "-n", "-M", "prepared", "-c", str(clients), "-j",
                                      str(clients), "-T", str(seconds), "-f", script, conninfo],
                                     capture_output=True, text=True, env=clean_environment())
                found = re.search(r"tps = ([0-9.]+) \(without initial", out.stdout)
                if out.returncode != 0 or not found:
                    raise SystemExit(f"pgbench failed: {out.stdout}{out.stderr}")
                return {"rps": float(found.group(1)) * jobs}

            subjects = {"SQLite registry, HTTP": lambda s: wrk(srv.url, tokens["station"], "BP",
                                                               codes, s, args.connections, 1)}
            for name, script in scripts.items():
                subjects[f"PostgreSQL, 1 writer, {name}"] = (
                    lambda s, script=script: run_pgbench(script, 1, s))
            subjects["PostgreSQL, 4 writers, pipelined, counted once a transaction"] = (
                lambda s: run_pgbench(scripts["pipelined, counted once a transaction"], 4, s))
            for fn in subjects.values():
                fn(2)  # warm-up
            runs = {name: [] for name in subjects}
            log(f"pg-floor: {args.rounds} rounds of {args.seconds}s, {jobs} jobs a transaction")
            for i in range(args.rounds):
                for name, fn in subjects.items():
                    runs[name].append(fn(args.seconds))
                log(f"  round {i + 1}: " + ", ".join(
                    f"{n} {runs[n][-1]['rps']:.0f}" for n in subjects) + " checks/s")
        finally:
            srv.stop()
    base = median_of(runs["SQLite registry, HTTP"], "rps")
    print(f"## the floor on PostgreSQL: a fill check's writes alone, vs the SQLite registry "
          f"(medians of {args.rounds} rounds of {args.seconds} s)")
    print("| subject | checks/s | vs the SQLite registry |")
    print("|---|---|---|")
    for name, r in runs.items():
        rps = median_of(r, "rps")
        print(f"| {name} | {rps:.0f} | {rps / base:.2f} |")
    return runs


def bench_pg_instances(args, work):
    """Fill checks over HTTP against the SQLite registry and against 1, 2 and 4
    registries on one PostgreSQL database, in alternating rounds; the same total
    connections in each, split over the registries, one wrk per registry."""
    import threading
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "tests", "integration"))
    from pg_cluster import PgCluster
    registry, codes = args.registry, 10000
    sqlite_db = os.path.join(work, "pg-instances.db")
    for f in (sqlite_db, sqlite_db + "-wal", sqlite_db + "-shm"):
        if os.path.exists(f):
            os.unlink(f)
    with PgCluster() as pg:
        conninfo = pg.create_database("bench")
        stores = {"sqlite": sqlite_db, "postgresql": conninfo}
        tokens = {name: setup_registry(registry, db) for name, db in stores.items()}
        servers = {"sqlite": [Server([registry, "serve", "--db", sqlite_db, "--listen",
                                      "127.0.0.1:0"])],
                   "postgresql": [Server([registry, "serve", "--db", conninfo, "--listen",
                                          "127.0.0.1:0", "--secrets-dir",
                                          os.path.join(work, "pg-secrets")])
                                  for _ in range(4)]}
        try:
            for name, srvs in servers.items():
                setup_entities(srvs[0].url, tokens[name])
                for start in range(0, codes, 1000):
                    batch = fleet("BP", codes)[start:start + 1000]
                    status, answer = call(srvs[0].url, "POST", "/v1/cylinders/batch",
                                          tokens[name]["company"], {"cylinders": batch})
                    assert status == 200, answer
            subjects = [("sqlite", 1), ("postgresql", 1), ("postgresql", 2), ("postgresql", 4)]
            runs = {s: [] for s in subjects}

            def measure(name, k, seconds):
                results = [None] * k
                conns = max(1, args.connections // k)

                def one(i):
                    results[i] = wrk(servers[name][i].url, tokens[name]["station"], "BP", codes,
                                     seconds, conns, 1)

                threads = [threading.Thread(target=one, args=(i,)) for i in range(k)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                return {"rps": sum(r["rps"] for r in results),
                        "p50_ms": statistics.median(r["p50_ms"] for r in results),
                        "p99_ms": max(r["p99_ms"] for r in results)}

            for s in subjects:
                measure(*s, 2)  # warm-up
            log(f"pg-instances: {args.rounds} rounds of {args.seconds}s, "
                f"{args.connections} connections in all")
            for i in range(args.rounds):
                for s in subjects:
                    runs[s].append(measure(*s, args.seconds))
                log(f"  round {i + 1}: " + ", ".join(
                    f"{n} x{k} {runs[(n, k)][-1]['rps']:.0f}" for n, k in subjects) + " req/s")
        finally:
            for srvs in servers.values():
                for srv in srvs:
                    srv.stop()
        chain = subprocess.run([registry, "verify", "--db", conninfo], capture_output=True,
                               text=True).stdout.strip()
    base = statistics.median(r["rps"] for r in runs[("sqlite", 1)])
    print(f"## fill checks: SQLite vs PostgreSQL with 1, 2, 4 registries "
          f"(medians of {args.rounds} rounds of {args.seconds} s, {args.connections} "
          f"connections in all)")
    print("| store | registries | req/s | p50 ms | p99 ms | vs SQLite |")
    print("|---|---|---|---|---|---|")
    for (name, k), r in runs.items():
        rps = statistics.median(x["rps"] for x in r)
        print(f"| {name} | {k} | {rps:.0f} | {statistics.median(x['p50_ms'] for x in r):.2f} | "
              f"{statistics.median(x['p99_ms'] for x in r):.2f} | {rps / base:.2f} |")
    print(f"PostgreSQL's chain after the run: {chain}")
    return runs


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=["fill-check", "batch", "large-store", "photos",
                                          "station-decide", "replica", "positions", "console",
                                          "handovers", "migrate", "pg-instances", "pg-floor", "pg-batch",
                                          "log-head",
                                          "pg-large-store", "screens", "screen-latency",
                                          "photo-load", "jt808", "serve-options", "all"])
    parser.add_argument("--build", default="build", help="build directory (default: build)")
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="alternating runs per subject")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--cylinders", type=int, default=100000, help="batch: fleet size")
    parser.add_argument("--small-cylinders", type=int, default=10000)
    parser.add_argument("--large-cylinders", type=int, default=1000000)
    parser.add_argument("--large-events", type=int, default=10000000)
    parser.add_argument("--scans", type=int, default=200,
                        help="station-decide: scans per side per round")
    parser.add_argument("--replica-cylinders", type=int, default=1000000)
    parser.add_argument("--changed", type=int, default=1000,
                        help="replica: cylinders changed before the incremental sync")
    parser.add_argument("--decisions", type=int, default=20000,
                        help="replica: offline decisions timed")
    parser.add_argument("--window", type=int, default=20,
                        help="positions, screens: seconds measured while filling")
    parser.add_argument("--console-fills", type=int, default=200000,
                        help="console: fills spread over the large store's two years")
    parser.add_argument("--console-scrap", type=int, default=100000,
                        help="console: the large store's scrap queue")
    parser.add_argument("--timeline", type=int, default=2000,
                        help="console: fill checks of the timeline's cylinder")
    parser.add_argument("--samples", type=int, default=40,
                        help="console: samples per query per round")
    parser.add_argument("--migrate-cylinders", type=int, default=100000)
    parser.add_argument("--migrate-events", type=int, default=1000000)
    parser.add_argument("--jt808-reports", type=int, default=500,
                        help="jt808: reports each of the 1,000 terminals sends per run")
    parser.add_argument("--jt808-client", choices=["cpp", "python"], default="cpp",
                        help="jt808: the terminals, pingma-bench-jt808-swarm (cpp, the "
                             "default) or tests/integration/jt808_terminal.py swarm (python)")
    parser.add_argument("--jt808-processes", type=int, default=1,
                        help="jt808: the Python swarm's worker processes")
    parser.add_argument("--keep", action="store_true",
                        help="keep the databases, and reuse those already in --work-dir")
    parser.add_argument("--work-dir", help="where databases go (default: a temporary dir)")
    args = parser.parse_args()
    if not shutil.which("wrk") and args.which in ("fill-check", "large-store", "serve-options",
                                                  "all"):
        raise SystemExit("bench: wrk is missing (./tools/quickstart.sh build installs it)")
    args.registry = os.path.join(args.build, "registry", "pingma-registry")
    args.bare = os.path.join(args.build, "tools", "bench", "pingma-bench-bare")
    args.floor = os.path.join(args.build, "tools", "bench", "pingma-bench-floor")
    args.sqlite_insert = os.path.join(args.build, "tools", "bench", "pingma-bench-sqlite-insert")
    args.seed = os.path.join(args.build, "tools", "bench", "pingma-bench-seed")
    global BUILD_DIR
    BUILD_DIR = os.path.abspath(args.build)
    work = args.work_dir or tempfile.mkdtemp(prefix="pingma-bench-")
    os.makedirs(work, exist_ok=True)
    try:
        if args.which in ("fill-check", "all"):
            bench_fill_check(args, work)
        if args.which in ("batch", "all"):
            bench_batch(args, work)
        if args.which in ("large-store", "all"):
            bench_large_store(args, work)
        if args.which in ("photos", "all"):
            bench_photos(args, work)
        if args.which in ("station-decide", "all"):
            bench_station_decide(args, work)
        if args.which in ("replica", "all"):
            bench_replica(args, work)
        if args.which in ("positions", "all"):
            bench_positions(args, work)
        if args.which in ("console", "all"):
            bench_console(args, work)
        if args.which in ("handovers", "all"):
            bench_handovers(args, work)
        if args.which in ("migrate", "all"):
            bench_migrate(args, work)
        if args.which in ("pg-instances", "all"):
            bench_pg_instances(args, work)
        if args.which in ("pg-floor", "all"):
            bench_pg_floor(args, work)
        if args.which in ("pg-batch", "all"):
            bench_pg_batch(args, work)
        if args.which in ("log-head", "all"):
            bench_log_head(args, work)
        if args.which in ("pg-large-store", "all"):
            bench_pg_large_store(args, work)
        if args.which in ("screens", "all"):
            bench_screens(args, work)
        if args.which in ("screen-latency", "all"):
            bench_screen_latency(args, work)
        if args.which in ("photo-load", "all"):
            bench_photo_load(args, work)
        if args.which in ("jt808", "all"):
            bench_jt808(args, work)
        if args.which in ("serve-options", "all"):
            bench_serve_options(args, work)
    finally:
        if not args.keep and not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
