"""The bearer tokens' lifecycle, process level, on SQLite and on PostgreSQL (standard
library only):

    python3 -B registry_tokens_test.py /path/to/pingma-registry

- `token add --expires --note`, `token list` (a table, and --json) and
  `token revoke --id` on the command line: the secret printed once and never
  listed (nor its hash); an unknown id is a clear error with exit status 1.
- GET/POST /v1/tokens and DELETE /v1/tokens/{id}: the secret shown once; a
  company issues, sees and revokes only its own stations' and couriers' tokens,
  and is told of another's exactly what it is told of none.
- A token revoked over HTTP is refused (401 TOKEN_REVOKED) on its very next
  request; one revoked by `token revoke` while serve runs within 1 s; one past
  its last day gets 401 TOKEN_EXPIRED.
- The last use shows in the list after a use, and is in the store after a stop.
- Repeated bad tokens from one address get 429 with Retry-After; a good token
  from another address is served as ever.
- A token revoked through one registry is refused by a second registry on the same
  database within 1 s (the time it took is printed).
- A store made before tokens had ids: every token gets one at start-up and works.
"""

import contextlib
import hashlib
import http.client
import json
import sys
import time
import unittest
from datetime import datetime, timedelta, timezone

from registry_harness import (STORE, Registry, RegistryCase, iso, take_binary_argument,
                              today_shanghai)

BINARY = None  # set in __main__


def shanghai_midnight_after(day):
    """The instant (UTC, RFC 3339 as the registry writes it) a token whose last day
    is `day` stops working: the midnight that ends it in Asia/Shanghai."""
    end = datetime(day.year, day.month, day.day, tzinfo=timezone(timedelta(hours=8)))
    end += timedelta(days=1)
    return end.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def secrets_absent(case, text, secrets, what):
    for secret in secrets:
        case.assertNotIn(secret, text, "%s shows a secret" % what)
        case.assertNotIn(hashlib.sha256(secret.encode()).hexdigest(), text,
                         "%s shows a secret's hash" % what)


def request_from(reg, source, method, path, token):
    """One request from the local address `source` (any of 127.0.0.0/8)."""
    conn = http.client.HTTPConnection(reg.host, reg.port, timeout=30,
                                      source_address=(source, 0))
    try:
        conn.request(method, path, headers={"Authorization": "Bearer " + token})
        resp = conn.getresponse()
        data = resp.read()
        body = json.loads(data) if data else None
        return resp.status, body, dict(resp.getheaders())
    finally:
        conn.close()


@contextlib.contextmanager
def own_registry(**kwargs):
    """A registry of the test's own, removed after."""
    reg = Registry(BINARY, **kwargs)
    try:
        yield reg
    finally:
        reg.cleanup()


def world_of_two_companies(post, admin):
    far = iso(today_shanghai() + timedelta(days=400))
    for co in ("CO-A", "CO-B"):
        post("/v1/companies", {"id": co, "name": co, "filling_license":
                               {"number": "TS-" + co, "valid_until": far}}, admin)
        suffix = co[-1]
        post("/v1/stations", {"id": "ST-" + suffix, "company_id": co, "name": "S",
                              "district": "Xiayi"}, admin)
        post("/v1/vehicles", {"id": "V-" + suffix, "company_id": co,
                              "plate": "豫N1234" + suffix}, admin)
        post("/v1/couriers", {"id": "CR-" + suffix, "company_id": co, "name": "李四",
                              "vehicle": "V-" + suffix, "zones": ["Xiayi"]}, admin)


class TokenLifecycleTest(RegistryCase):
    TOKENS = {"admin": ("admin", "root"), "co_a": ("company", "CO-A"),
              "co_b": ("company", "CO-B")}

    @classmethod
    def world(cls):
        world_of_two_companies(cls.post, cls.admin)
        cls.secrets = [cls.admin, cls.co_a, cls.co_b]

    def cli(self, *args):
        return self.reg.run_cli("token", *args, "--db", self.reg.db)

    def listed(self, token=None):
        status, body = self.call("GET", "/v1/tokens", token=token or self.admin)
        self.assertEqual(status, 200, body)
        return {t["id"]: t for t in body["tokens"]}

    def issue(self, body, token=None):
        status, answer = self.call("POST", "/v1/tokens", body, token or self.admin)
        self.assertEqual(status, 201, answer)
        self.assertRegex(answer["token"], r"^pm_[0-9a-f]{48}$")
        self.assertRegex(answer["id"], r"^tk-[0-9a-f]{12}$")
        self.secrets.append(answer["token"])
        return answer["id"], answer["token"]

    def assert_refused(self, token, code, path="/v1/policy"):
        status, body = self.call("GET", path, token=token)
        self.assertEqual(status, 401, body)
        self.assertEqual(body["error"]["code"], code, body)

    def test_01_cli_add_list_revoke(self):
        last_day = today_shanghai() + timedelta(days=30)
        r = self.cli("add", "--role", "station", "--subject", "ST-A", "--expires", iso(last_day),
                     "--note", "李师傅的平板")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.split()
        self.assertEqual(len(lines), 1, r.stdout)
        token = lines[0]
        self.secrets.append(token)
        ids = [w for w in r.stderr.replace("(", " ").split() if w.startswith("tk-")]
        self.assertEqual(len(ids), 1, r.stderr)
        token_id = ids[0]

        table = self.cli("list")
        self.assertEqual(table.returncode, 0, table.stderr)
        for heading in ("ID", "ROLE", "SUBJECT", "CREATED", "EXPIRES", "LAST USED", "REVOKED",
                        "NOTE"):
            self.assertIn(heading, table.stdout)
        row = [l for l in table.stdout.splitlines() if l.startswith(token_id)]
        self.assertEqual(len(row), 1, table.stdout)
        for shown in ("station", "ST-A", iso(last_day), "李师傅的平板", "active"):
            self.assertIn(shown, row[0])
        secrets_absent(self, table.stdout + table.stderr, self.secrets, "token list")

        as_json = self.cli("list", "--json")
        self.assertEqual(as_json.returncode, 0, as_json.stderr)
        secrets_absent(self, as_json.stdout, self.secrets, "token list --json")
        listed = {t["id"]: t for t in json.loads(as_json.stdout)["tokens"]}
        mine = listed[token_id]
        self.assertEqual((mine["role"], mine["subject"], mine["note"], mine["expires"]),
                         ("station", "ST-A", "李师傅的平板", iso(last_day)))
        self.assertEqual(mine["expires_at"], shanghai_midnight_after(last_day))
        self.assertIsNone(mine["revoked_at"])
        self.assertEqual(len(listed), len(set(listed)), "ids are unique")
        for t in listed.values():
            self.assertFalse({"token", "hash", "secret"} & set(t), t)

        status, body = self.call("GET", "/v1/stations/ST-A", token=token)
        self.assertEqual(status, 200, body)

        # Revoked by another process while serve runs: refused within 1 s.
        revoked = self.cli("revoke", "--id", token_id)
        self.assertEqual(revoked.returncode, 0, revoked.stderr)
        done = time.monotonic()
        refused_after = None
        while time.monotonic() < done + 10:
            sent = time.monotonic() - done
            status, body = self.call("GET", "/v1/stations/ST-A", token=token)
            if status == 401:
                self.assertEqual(body["error"]["code"], "TOKEN_REVOKED", body)
                refused_after = sent
                break
            self.assertEqual(status, 200, body)
            self.assertLess(sent, 1.0, "still accepted %.3f s after token revoke" % sent)
            time.sleep(0.02)
        self.assertIsNotNone(refused_after, "still accepted 10 s after token revoke")
        sys.stderr.write("\n[%s] token revoke (CLI) -> refused by serve: first refusal sent "
                         "%.3f s after the command returned\n" % (STORE, refused_after))
        self.assertIsNotNone(self.listed()[token_id]["revoked_at"])

        again = self.cli("revoke", "--id", token_id)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertIn("already", again.stdout)
        unknown = self.cli("revoke", "--id", "tk-doesnotexist")
        self.assertEqual(unknown.returncode, 1, unknown.stderr)
        self.assertEqual(len(unknown.stderr.strip().splitlines()), 1, unknown.stderr)
        self.assertIn("tk-doesnotexist", unknown.stderr)

        for bad in ("2027-02-30", "tomorrow", iso(today_shanghai() - timedelta(days=1))):
            with self.subTest(expires=bad):
                r = self.cli("add", "--role", "station", "--subject", "ST-A", "--expires", bad)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertEqual(r.stdout, "")
        r = self.cli("add", "--role", "station", "--subject", "ST-A", "--note", "a\x1bb")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(r.stdout, "")

    def test_02_http_add_list_revoke(self):
        last_day = today_shanghai() + timedelta(days=7)
        token_id, token = self.issue({"role": "courier", "subject": "CR-A",
                                      "expires": iso(last_day), "note": "phone 3"})
        status, body = self.call("GET", "/v1/hazards", token=token)
        self.assertEqual(status, 200, body)
        status, body = self.call("GET", "/v1/tokens", token=self.admin)
        secrets_absent(self, json.dumps(body, ensure_ascii=False), self.secrets,
                       "GET /v1/tokens")
        mine = {t["id"]: t for t in body["tokens"]}[token_id]
        self.assertEqual((mine["role"], mine["subject"], mine["note"], mine["state"]),
                         ("courier", "CR-A", "phone 3", "active"))
        self.assertEqual(mine["expires_at"], shanghai_midnight_after(last_day))

        status, body = self.call("DELETE", "/v1/tokens/" + token_id, token=self.admin)
        self.assertEqual(status, 204, body)
        self.assertIsNone(body)
        # The very next request.
        self.assert_refused(token, "TOKEN_REVOKED", "/v1/hazards")
        self.assertEqual(self.listed()[token_id]["state"], "revoked")
        status, body = self.call("DELETE", "/v1/tokens/tk-000000000000", token=self.admin)
        self.assertEqual(status, 404, body)
        for bad in ({"role": "station"}, {"role": "chief", "subject": "X"},
                    {"role": "station", "subject": "ST-A", "expires": "2026-13-01"},
                    {"role": "station", "subject": "ST-A", "note": "a\nb"},
                    {"role": "station", "subject": "ST-A", "note": "\u202eevil"},
                    {"role": "station", "subject": "ST-A", "note": "x" * 201}):
            with self.subTest(body=bad):
                status, answer = self.call("POST", "/v1/tokens", bad, self.admin)
                self.assertEqual(status, 422, answer)

    def test_03_company_scope(self):
        a_station, _ = self.issue({"role": "station", "subject": "ST-A"}, self.co_a)
        a_courier, _ = self.issue({"role": "courier", "subject": "CR-A"}, self.co_a)
        b_station, b_token = self.issue({"role": "station", "subject": "ST-B"}, self.co_b)
        # Another company's station, and no station at all: the same answer.
        answers = []
        for subject in ("ST-B", "ST-NONE"):
            status, body = self.call("POST", "/v1/tokens",
                                     {"role": "station", "subject": subject}, self.co_a)
            self.assertEqual(status, 404, body)
            answers.append(body["error"]["message"].replace(subject, "X"))
        self.assertEqual(answers[0], answers[1])
        for role, subject in (("admin", "root"), ("company", "CO-A"), ("regulator", "R"),
                              ("inspector", "AG")):
            status, body = self.call("POST", "/v1/tokens", {"role": role, "subject": subject},
                                     self.co_a)
            self.assertEqual(status, 403, body)
        seen = self.listed(self.co_a)
        self.assertIn(a_station, seen)
        self.assertIn(a_courier, seen)
        self.assertNotIn(b_station, seen)
        for t in seen.values():
            self.assertIn((t["role"], t["subject"]), {("station", "ST-A"), ("courier", "CR-A")})
        # Another company's token and the admin's: 404, as for none, and still working.
        admin_id = [i for i, t in self.listed().items() if t["role"] == "admin"][0]
        for other in (b_station, admin_id):
            status, body = self.call("DELETE", "/v1/tokens/" + other, token=self.co_a)
            self.assertEqual(status, 404, body)
        status, _ = self.call("GET", "/v1/policy", token=b_token)
        self.assertEqual(status, 200)
        # Roles other than admin and company: 403.
        status, body = self.call("GET", "/v1/tokens", token=b_token)
        self.assertEqual(status, 403, body)
        status, body = self.call("POST", "/v1/tokens", {"role": "station", "subject": "ST-B"},
                                 b_token)
        self.assertEqual(status, 403, body)
        # Its own: revoked.
        status, body = self.call("DELETE", "/v1/tokens/" + a_station, token=self.co_a)
        self.assertEqual(status, 204, body)

    def test_04_expired(self):
        # A token whose last day is today works now; one whose day has ended (its end
        # moved into the past in the store, before the registry first sees it: the
        # boundary itself is tokens_test's) gets TOKEN_EXPIRED.
        today_id, today_token = self.issue({"role": "station", "subject": "ST-A",
                                            "expires": iso(today_shanghai())})
        status, body = self.call("GET", "/v1/policy", token=today_token)
        self.assertEqual(status, 200, body)
        ended_id, ended_token = self.issue({"role": "station", "subject": "ST-A",
                                            "expires": iso(today_shanghai())})
        past_ms = int(time.time() * 1000) - 1000
        self.reg.execute("UPDATE tokens SET expires_at = ? WHERE id = ?", (past_ms, ended_id))
        self.assert_refused(ended_token, "TOKEN_EXPIRED")
        self.assertEqual(self.listed()[ended_id]["state"], "expired")

    def test_05_last_used(self):
        token_id, token = self.issue({"role": "station", "subject": "ST-B"})
        self.assertIsNone(self.listed()[token_id]["last_used_at"])
        before = datetime.now(timezone.utc) - timedelta(seconds=5)
        status, _ = self.call("GET", "/v1/policy", token=token)
        self.assertEqual(status, 200)
        used = self.listed()[token_id]["last_used_at"]
        self.assertIsNotNone(used)
        at = datetime.strptime(used, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        self.assertGreaterEqual(at, before)
        self.assertLessEqual(at, datetime.now(timezone.utc) + timedelta(seconds=5))


class LastUseStoredTest(unittest.TestCase):
    """The last use reaches the store when serve stops (and not a write per request)."""

    def test_written_at_stop(self):
        with own_registry() as reg:
            token = reg.token("regulator", "OFFICE-1")
            reg.start()
            for _ in range(5):
                status, _ = reg.request("GET", "/v1/policy", token=token)
                self.assertEqual(status, 200)
            # Not written per request: the first write is a minute away, or at the stop.
            self.assertEqual(reg.query("SELECT last_used_at AS u FROM tokens"), [[None]])
            reg.stop()
            r = reg.run_cli("token", "list", "--db", reg.db, "--json")
            self.assertEqual(r.returncode, 0, r.stderr)
            (listed,) = json.loads(r.stdout)["tokens"]
            self.assertIsNotNone(listed["last_used_at"], listed)


class ThrottleTest(unittest.TestCase):
    def test_bad_tokens_from_one_address(self):
        with own_registry() as reg:
            good = reg.token("regulator", "OFFICE-1")
            admin = reg.token("admin", "root")
            lost = reg.token("station", "ST-LOST")
            reg.start()
            status, _, _ = request_from(reg, "127.0.0.1", "GET", "/v1/policy", lost)
            self.assertEqual(status, 200)
            status, body = reg.request("GET", "/v1/tokens", token=admin)
            (lost_id,) = [t["id"] for t in body["tokens"] if t["subject"] == "ST-LOST"]
            status, body = reg.request("DELETE", "/v1/tokens/" + lost_id, token=admin)
            self.assertEqual(status, 204, body)
            statuses = [request_from(reg, "127.0.0.1", "GET", "/v1/policy", "pm_guess%d" % i)[0]
                        for i in range(20)]
            self.assertEqual(statuses, [401] * 20)
            status, body, headers = request_from(reg, "127.0.0.1", "GET", "/v1/policy",
                                                 "pm_guess-more")
            self.assertEqual(status, 429, body)
            self.assertEqual(body["error"]["code"], "TOO_MANY_REQUESTS", body)
            self.assertGreaterEqual(int(headers["Retry-After"]), 1, headers)
            # A revoked token is no guess: told so, from the throttled address too.
            status, body, _ = request_from(reg, "127.0.0.1", "GET", "/v1/policy", lost)
            self.assertEqual(status, 401, body)
            self.assertEqual(body["error"]["code"], "TOKEN_REVOKED", body)
            # Another address: a good token served, a bad one 401 as ever.
            status, body, _ = request_from(reg, "127.0.0.2", "GET", "/v1/policy", good)
            self.assertEqual(status, 200, body)
            status, body, _ = request_from(reg, "127.0.0.2", "GET", "/v1/policy", "pm_typo")
            self.assertEqual(status, 401, body)
            reg.stop()


class TwoRegistriesTest(unittest.TestCase):
    """Two registries on one database: revoked through A, refused by B within 1 s."""

    def test_revoked_at_one_refused_at_the_other(self):
        with own_registry() as a, own_registry(db_path=a.db) as b:
            admin = a.token("admin", "root")
            a.start()
            b.start()
            status, answer = a.request("POST", "/v1/tokens",
                                       {"role": "regulator", "subject": "OFFICE-2"}, admin)
            self.assertEqual(status, 201, answer)
            token = answer["token"]
            status, body = b.request("GET", "/v1/policy", token=token)
            self.assertEqual(status, 200, body)  # B keeps it now
            status, body = a.request("DELETE", "/v1/tokens/" + answer["id"], token=admin)
            self.assertEqual(status, 204, body)
            done = time.monotonic()
            refused_after = answered_after = None
            conn = b.connection()
            try:
                while time.monotonic() < done + 10:
                    sent = time.monotonic() - done
                    status, body, _ = conn.request("GET", "/v1/policy", token=token)
                    if status == 401:
                        self.assertEqual(body["error"]["code"], "TOKEN_REVOKED", body)
                        refused_after, answered_after = sent, time.monotonic() - done
                        break
                    self.assertEqual(status, 200, body)
                    # A request sent 1 s after the revocation was acknowledged was
                    # judged later still: accepting it breaks the promise.
                    self.assertLess(sent, 1.0, "B still accepted it %.3f s after" % sent)
                    time.sleep(0.01)
            finally:
                conn.close()
            self.assertIsNotNone(refused_after, "B still accepted it 10 s after")
            sys.stderr.write("\n[%s] revoked at A -> refused at B: first refusal sent %.3f s "
                             "(answered %.3f s) after A's 204\n"
                             % (STORE, refused_after, answered_after))
            a.stop()
            b.stop()


class OldStoreTest(unittest.TestCase):
    """A store made before tokens had ids, notes, expiry or revocation."""

    COLUMNS = ("id", "note", "expires", "expires_at", "revoked_at", "revoked_seq",
               "last_used_at")

    def test_tokens_get_ids(self):
        with own_registry() as reg:
            tokens = [reg.token("station", "ST-%d" % i) for i in range(3)]
            reg.execute("DROP INDEX tokens_by_id")
            reg.execute("DROP INDEX tokens_by_revoked_seq")
            for column in self.COLUMNS:
                reg.execute("ALTER TABLE tokens DROP COLUMN " + column)
            if STORE == "postgresql":
                # Schema version 2: the migrations after it (the tokens' columns,
                # personal_data, delivery supervision, the verifiable log) run again
                # at start.
                reg.execute("DROP TABLE personal_data")
                for table in ("areas", "terminals", "positions", "vehicle_positions",
                              "alerts", "log_tiles", "log_heads", "log_keys"):
                    reg.execute("DROP TABLE " + table)
                reg.execute("DROP INDEX couriers_by_vehicle")
                reg.execute("DROP INDEX vehicles_by_terminal")
                for table, column in (("vehicles", "terminal_phone"), ("customers", "lat"),
                                      ("customers", "lon")):
                    reg.execute("ALTER TABLE %s DROP COLUMN %s" % (table, column))
                reg.execute("DELETE FROM schema_migrations WHERE version >= 3")
            self.assertEqual(reg.query("SELECT count(*) AS n FROM tokens")[0][0], 3)
            reg.start()
            for token in tokens:
                status, body = reg.request("GET", "/v1/policy", token=token)
                self.assertEqual(status, 200, body)
            reg.stop()
            r = reg.run_cli("token", "list", "--db", reg.db, "--json")
            self.assertEqual(r.returncode, 0, r.stderr)
            listed = json.loads(r.stdout)["tokens"]
            ids = [t["id"] for t in listed]
            self.assertEqual(len(ids), 3)
            self.assertEqual(len(set(ids)), 3, ids)
            for token_id in ids:
                self.assertRegex(token_id, r"^tk-[0-9a-f]{12}$")
            r = reg.run_cli("token", "revoke", "--db", reg.db, "--id", ids[0])
            self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    BINARY = take_binary_argument()
    unittest.main(verbosity=2)
