"""GET /metrics on `serve --metrics-listen` (API.md, "Programs"): Prometheus's text
format, checked by promtool (Debian's prometheus package); requests counted by route,
method and status, exactly; latency histograms whose counts agree with those
requests; the group commits, the store's size and the log's; the listener answers
nothing but /metrics, and the API's port does not answer /metrics.

Run: python3 registry_metrics_test.py /path/to/pingma-registry
"""

import os
import re
import shutil
import subprocess
import sys
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from registry_harness import STORE, RegistryCase, add_years, iso, take_binary_argument, \
    today_shanghai  # noqa: E402

BINARY = None  # set in __main__
SAMPLE = re.compile(r'^([a-z_:][a-z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """{(name, ((label, value), ...)): value} of every sample; the HELP and TYPE lines
    as {name: type}."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, "not a sample line: %r" % line
        labels = tuple(sorted(LABEL.findall(m.group(2) or "")))
        samples[(m.group(1), labels)] = float(m.group(3))
    return samples, types


class MetricsTest(RegistryCase):
    TOKENS = {"admin": ("admin", "root")}
    START_ARGS = ("--metrics-listen", "127.0.0.1:0")

    def scrape(self, path="/metrics", method="GET"):
        request = urllib.request.Request(
            "http://127.0.0.1:%d%s" % (self.reg.metrics_port, path), method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return r.status, r.headers.get("Content-Type"), r.read().decode("utf-8")
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type"), e.read().decode("utf-8")

    def samples(self):
        status, kind, text = self.scrape()
        self.assertEqual(status, 200)
        self.assertEqual(kind, "text/plain; version=0.0.4; charset=utf-8")
        return parse(text)[0]

    def requests(self, samples, route, method, status):
        key = ("pingma_http_requests_total",
               (("method", method), ("route", route), ("status", str(status))))
        return samples.get(key, 0)

    def company(self, cid):
        return {"id": cid, "name": "Metrics Gas " + cid,
                "filling_license": {"number": "TS-" + cid,
                                    "valid_until": iso(add_years(today_shanghai(), 1))}}

    def test_promtool_passes_it(self):
        promtool = shutil.which("promtool")
        self.assertIsNotNone(promtool, "promtool: Debian's prometheus (tools/quickstart.sh)")
        self.call("GET", "/v1/companies", token=self.admin)
        _, _, text = self.scrape()
        r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=60, check=False)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual((r.stdout + r.stderr).strip(), "", "no lint warnings")

    def test_requests_by_route_method_and_status(self):
        before = self.samples()
        for _ in range(3):
            self.assertEqual(self.call("GET", "/v1/companies", token=self.admin)[0], 200)
        for _ in range(2):
            self.assertEqual(self.call("GET", "/v1/companies")[0], 401)
        self.assertEqual(self.call("GET", "/v1/cylinders/NO-SUCH", token=self.admin)[0], 404)
        self.assertEqual(self.call("POST", "/v1/companies", {"id": 5}, token=self.admin)[0], 422)
        self.assertEqual(self.call("GET", "/c/NO-SUCH-CODE")[0], 404)
        self.assertEqual(self.call("GET", "/metrics")[0], 404, "not on the API's port")
        after = self.samples()
        expected = [("/v1/companies", "GET", 200, 3), ("other", "GET", 401, 2),
                    ("/v1/cylinders/{}", "GET", 404, 1), ("/v1/companies", "POST", 422, 1),
                    ("/c", "GET", 404, 1), ("other", "GET", 404, 1)]
        for route, method, status, n in expected:
            with self.subTest(route=route, method=method, status=status):
                self.assertEqual(self.requests(after, route, method, status)
                                 - self.requests(before, route, method, status), n)
        # Each route's latency histogram counts its requests, its buckets rising.
        for route in ("/v1/companies", "other", "/c", "/v1/cylinders/{}"):
            with self.subTest(histogram=route):
                count = after[("pingma_http_request_duration_seconds_count",
                               (("route", route),))]
                total = sum(v for (name, labels), v in after.items()
                            if name == "pingma_http_requests_total"
                            and ("route", route) in labels)
                self.assertEqual(count, total)
                buckets = sorted(((float(dict(labels)["le"]), v) for (name, labels), v
                                  in after.items()
                                  if name == "pingma_http_request_duration_seconds_bucket"
                                  and ("route", route) in labels))
                self.assertEqual(buckets[-1], (float("inf"), count))
                self.assertEqual([v for _, v in buckets], sorted(v for _, v in buckets))
                self.assertGreater(after[("pingma_http_request_duration_seconds_sum",
                                          (("route", route),))], 0)

    def test_store_and_log(self):
        before = self.samples()
        for i in range(3):
            self.post("/v1/companies", self.company("CO-M%d" % i), self.admin, expect=(201,))
        self.reg.wait_logged()
        after = self.samples()
        self.assertGreaterEqual(after[("pingma_store_writes_total", ())]
                                - before[("pingma_store_writes_total", ())], 3)
        self.assertGreaterEqual(after[("pingma_store_commits_total", ())]
                                - before[("pingma_store_commits_total", ())], 1)
        self.assertEqual(after[("pingma_store_commit_writes_count", ())],
                         after[("pingma_store_commit_writes_bucket", (("le", "+Inf"),))])
        self.assertGreater(after[("pingma_store_size_bytes", ())], 0)
        self.assertGreaterEqual(after[("pingma_log_tree_size", ())], 3)
        build = [labels for (name, labels) in after if name == "pingma_build_info"]
        self.assertEqual(len(build), 1)
        self.assertEqual(dict(build[0])["store"], STORE)
        fsyncs = ("pingma_store_fsync_duration_seconds_count", ())
        if STORE == "sqlite":
            self.assertGreater(after[fsyncs] - before[fsyncs], 0)
        else:
            self.assertNotIn(fsyncs, after, "PostgreSQL makes its commits durable itself")

    def test_the_listener_answers_only_metrics(self):
        self.assertEqual(self.scrape("/")[0], 404)
        self.assertEqual(self.scrape("/v1/companies")[0], 404)
        self.assertEqual(self.scrape("/metrics", method="POST")[0], 405)
        self.assertEqual(self.scrape("/metrics", method="HEAD")[0], 200)

    def test_a_bad_address_is_bad_usage(self):
        r = self.reg.run_cli("serve", "--db", self.reg.db, "--metrics-listen", "nowhere")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--metrics-listen", r.stderr)


if __name__ == "__main__":
    BINARY = take_binary_argument()
    unittest.main(verbosity=2)
