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
  bench.py all           all of the above

Run from the repository root after ./tools/quickstart.sh build.
"""
import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
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
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT)
        script = f.name
    env = dict(os.environ, PINGMA_TOKEN=token_value, PINGMA_CODES=str(codes),
               PINGMA_PREFIX=prefix)
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d",
                          f"{seconds}s", "--timeout", "10s", "-s", script,
                          url + "/v1/fill-checks"], env=env, capture_output=True, text=True)
    os.unlink(script)
    m = re.search(r"RESULT (\d+) ([\d.]+) (\d+) (\d+) (\d+) (\d+)", out.stdout)
    if not m:
        raise SystemExit(f"bench: wrk failed: {out.stdout} {out.stderr}")
    n, dur, p50, p99, bad_status, sock_err = m.groups()
    if int(bad_status) or int(sock_err):
        raise SystemExit(f"bench: {bad_status} non-2xx answers and {sock_err} socket errors")
    return {"rps": int(n) / float(dur), "p50_ms": int(p50) / 1000, "p99_ms": int(p99) / 1000}


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
    servers = {}
    try:
        for name, st in stores.items():
            servers[name] = Server([registry, "serve", "--db", st["db"], "--listen",
                                    "127.0.0.1:0"])
            wrk(servers[name].url, st["token"], "BM", st["cylinders"], 2, args.connections,
                args.wrk_threads)
        log(f"large-store: {args.rounds} alternating rounds of {args.seconds}s each")
        for i in range(args.rounds):
            for name, st in stores.items():
                st["runs"].append(wrk(servers[name].url, st["token"], "BM", st["cylinders"],
                                      args.seconds, args.connections, args.wrk_threads))
            log(f"  round {i + 1}: p99 small {stores['small']['runs'][-1]['p99_ms']:.2f} ms, "
                f"large {stores['large']['runs'][-1]['p99_ms']:.2f} ms")
    finally:
        for srv in servers.values():
            srv.stop()
    results = {}
    for name, st in stores.items():
        results[name] = {k: st[k] for k in ("cylinders", "events", "file_bytes", "event_bytes")}
        for k in ("rps", "p50_ms", "p99_ms"):
            results[name][k] = median_of(st["runs"], k)
        if not args.keep:
            os.unlink(st["db"])
    s, l = results["small"], results["large"]
    print("## fill check on a large store")
    print("| store | cylinders | events | req/s | p50 ms | p99 ms | bytes/event (file) "
          "| bytes/event (events table + indexes) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in [("small", s), ("large", l)]:
        per_table = f"{r['event_bytes'] / r['events']:.0f}" if r["event_bytes"] else "n/a"
        print(f"| {name} | {r['cylinders']} | {r['events']} | {r['rps']:.0f} | "
              f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['file_bytes'] / r['events']:.0f} | "
              f"{per_table} |")
    print(f"p99 large/small: {l['p99_ms'] / s['p99_ms']:.2f} (goal <= 1.5)")
    return results


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


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=["fill-check", "batch", "large-store", "photos", "all"])
    parser.add_argument("--build", default="build", help="build directory (default: build)")
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="alternating runs per subject")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--cylinders", type=int, default=100000, help="batch: fleet size")
    parser.add_argument("--small-cylinders", type=int, default=10000)
    parser.add_argument("--large-cylinders", type=int, default=1000000)
    parser.add_argument("--large-events", type=int, default=10000000)
    parser.add_argument("--keep", action="store_true",
                        help="keep the databases, and reuse those already in --work-dir")
    parser.add_argument("--work-dir", help="where databases go (default: a temporary dir)")
    args = parser.parse_args()
    if not shutil.which("wrk") and args.which in ("fill-check", "large-store", "all"):
        raise SystemExit("bench: wrk is missing (./tools/quickstart.sh build installs it)")
    args.registry = os.path.join(args.build, "registry", "pingma-registry")
    args.bare = os.path.join(args.build, "tools", "bench", "pingma-bench-bare")
    args.floor = os.path.join(args.build, "tools", "bench", "pingma-bench-floor")
    args.sqlite_insert = os.path.join(args.build, "tools", "bench", "pingma-bench-sqlite-insert")
    args.seed = os.path.join(args.build, "tools", "bench", "pingma-bench-seed")
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
    finally:
        if not args.keep and not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
