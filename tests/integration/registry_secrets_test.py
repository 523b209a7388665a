"""The registry's secrets outside the store, against the real pingma-registry.

The key of the customers' phone and ID hashes and the log's signing key live in a
secrets folder (API.md "Registry command line"): made on first start with mode
0600; a key file others may read is refused; a copy of the database alone gives
no customer's phone or ID number to a brute force over their masked forms (while
the folder's key does: the attack is real); a store made before the folder has
its key moved out at start, and finds its customers by phone as before; a folder
with another key, or none, is refused rather than hashing anew.

    python3 registry_secrets_test.py /path/to/pingma-registry
"""

import hmac
import os
import re
import shutil
import stat
import sys
import unittest
from datetime import date, timedelta

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from registry_harness import STORE, Registry, id_number, take_binary_argument

BINARY = None  # set in __main__

CUSTOMERS = [("C-1", "13987651234", id_number("11010519491231002")),
             ("C-2", "15800002222", id_number("32058319800229451"))]
FINGERPRINT_LABEL = b"pingma customer hash key fingerprint"


def keyed_hash(key, kind, value):
    return hmac.digest(key, ("%s:%s" % (kind, value)).encode(), "sha256")


def phone_candidates(masked):
    """Every phone a masked form (138****5678) can stand for: 10,000."""
    head, tail = masked[:3], masked[7:]
    return [head + "%04d" % i + tail for i in range(10000)]


WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def id_candidates(masked, years=range(1940, 2006)):
    """Every ID number a masked form (1101**********123X) can stand for, with a
    birth date in `years`: the two region digits and the date, kept when the check
    character agrees (some 220,000)."""
    head, tail = masked[:4], masked[14:]

    def weighted(digits, first):
        return sum(int(c) * WEIGHTS[first + i] for i, c in enumerate(digits))

    fixed = weighted(head, 0) + weighted(tail[:3], 14)
    dates = []
    day, end = date(years.start, 1, 1), date(years.stop, 1, 1)
    while day < end:
        text = day.strftime("%Y%m%d")
        dates.append((text, weighted(text, 6)))
        day += timedelta(days=1)
    out = []
    for region in range(100):
        r = "%02d" % region
        base = fixed + weighted(r, 4)
        for text, w in dates:
            if "10X98765432"[(base + w) % 11] == tail[3]:
                out.append(head + r + text + tail)
    return out


def brute_force(rows, keys):
    """The clear phones and ID numbers that any of `keys` recovers from the
    customers' rows (masked form and hash)."""
    found = []
    for phone_masked, phone_hash, id_masked, id_hash in rows:
        phones, numbers = phone_candidates(phone_masked), id_candidates(id_masked)
        for key in keys:
            found += [p for p in phones if keyed_hash(key, "phone", p) == phone_hash][:1]
            found += [n for n in numbers if keyed_hash(key, "id_number", n) == id_hash][:1]
    return found


def as_bytes(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str) and value.startswith("\\x"):  # PostgreSQL's bytea as JSON
        return bytes.fromhex(value[2:])
    return value.encode() if isinstance(value, str) else bytes(value)


class SecretsTest(unittest.TestCase):
    def setUp(self):
        self.reg = Registry(BINARY)
        self.admin = self.reg.token("admin", "root")
        self.co = self.reg.token("company", "CO-S")
        self.folder = self.reg.secrets_dir

    def tearDown(self):
        self.reg.stop_and_remove(self.folder)

    def key_path(self):
        return os.path.join(self.folder, "customer-hash.key")

    def folder_key(self):
        with open(self.key_path()) as f:
            return bytes.fromhex(f.read().strip())

    def meta(self, key):
        rows = self.reg.query("SELECT value FROM meta WHERE key = ?", (key,))
        return as_bytes(rows[0][0]) if rows else None

    def populate(self):
        self.reg.start()
        status, answer = self.reg.request("POST", "/v1/companies", {
            "id": "CO-S", "name": "Secrets Gas",
            "filling_license": {"number": "L-S", "valid_until": "2099-12-31"}}, token=self.admin)
        self.assertEqual(status, 201, answer)
        for cid, phone, number in CUSTOMERS:
            status, answer = self.reg.request("POST", "/v1/customers", {
                "id": cid, "company_id": "CO-S", "name": "李四", "phone": phone,
                "id_number": number, "address": "人民路2号", "district": "DS",
                "kind": "household", "site": {"basement": False, "semi_basement": False,
                                              "cylinder_room": False}}, token=self.co)
            self.assertEqual(status, 201, answer)
            self.assertEqual(answer["phone"], phone[:3] + "****" + phone[7:])

    def find_by_phone(self, phone):
        status, answer = self.reg.request("GET", "/v1/customers?phone=" + phone, token=self.co)
        self.assertEqual(status, 200, answer)
        return [c["id"] for c in answer["customers"]]

    def customer_rows(self):
        return [(r[0], as_bytes(r[1]), r[2], as_bytes(r[3])) for r in self.reg.query(
            "SELECT phone_masked, phone_hash, id_masked, id_hash FROM customers ORDER BY id")]

    # -- the folder --------------------------------------------------------------

    def test_made_on_first_start_with_mode_0600(self):
        self.populate()
        mode = stat.S_IMODE(os.stat(self.folder).st_mode)
        self.assertEqual(mode & 0o077, 0, oct(mode))
        for name in ("customer-hash.key", "log-signing.pem"):
            path = os.path.join(self.folder, name)
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600, name)
        self.assertEqual(len(self.folder_key()), 32)
        with open(os.path.join(self.folder, "log-signing.pem")) as f:
            self.assertIn("BEGIN PRIVATE KEY", f.read())
        # The store keeps the key's fingerprint, not the key.
        self.assertIsNone(self.meta("customer_hash_key"))
        fingerprint = hmac.new(self.folder_key(), FINGERPRINT_LABEL, "sha256").hexdigest()[:16]
        self.assertEqual(self.meta("customer_hash_key_fingerprint"), fingerprint.encode())
        self.assertEqual(self.find_by_phone(CUSTOMERS[0][1]), ["C-1"])
        self.assertEqual(self.find_by_phone(CUSTOMERS[1][1]), ["C-2"])
        self.assertEqual(self.find_by_phone("13900000000"), [])
        status, answer = self.reg.request("GET", "/v1/customers?phone=12345", token=self.co)
        self.assertEqual((status, answer["error"]["code"]), (422, "INVALID"), answer)
        # A restart reads the same key: the customers are found as before.
        self.reg.stop()
        self.reg.start()
        self.assertEqual(self.find_by_phone(CUSTOMERS[0][1]), ["C-1"])

    def test_a_key_file_others_may_read_is_refused(self):
        self.populate()
        self.reg.stop()
        for name, mode in (("customer-hash.key", 0o640), ("log-signing.pem", 0o604)):
            path = os.path.join(self.folder, name)
            os.chmod(path, mode)
            with self.subTest(name=name):
                with self.assertRaises(AssertionError) as refused:
                    self.reg.start()
                message = str(refused.exception)
                self.assertIn(path, message)
                self.assertIn("chmod 600", message)
            os.chmod(path, 0o600)
        self.reg.start()
        self.assertEqual(self.find_by_phone(CUSTOMERS[0][1]), ["C-1"])

    # -- a copy of the database ----------------------------------------------------

    def test_a_copy_of_the_store_gives_away_no_phone_or_id_number(self):
        self.populate()
        self.reg.stop()
        rows = self.customer_rows()
        self.assertEqual(len(rows), 2)
        stored = self.reg.stored_bytes()
        key = self.folder_key()
        # The attack works with the folder's key: every phone and ID comes back.
        clear = sorted(v for _, phone, number in CUSTOMERS for v in (phone, number))
        self.assertEqual(sorted(brute_force(rows, [key])), clear)
        # The store holds no copy of the key, raw or as text.
        self.assertNotIn(key, stored)
        self.assertNotIn(key.hex().encode(), stored)
        # Every value the store keeps beside the rows, tried as the key: nothing.
        candidates = [as_bytes(r[0]) for r in self.reg.query("SELECT value FROM meta")]
        self.assertTrue(candidates)
        self.assertEqual(brute_force(rows, candidates), [])

    # -- a store made before the folder ------------------------------------------------

    def make_old_store(self):
        """The store as a registry before the secrets folder left it: the key in
        its meta table, no fingerprint, no folder."""
        self.populate()
        self.reg.stop()
        key = self.folder_key()
        self.reg.execute("DELETE FROM meta WHERE key = 'customer_hash_key_fingerprint'")
        if STORE == "postgresql":
            self.reg.execute("INSERT INTO meta(key, value) VALUES('customer_hash_key', "
                             "decode('%s', 'hex'))" % key.hex())
        else:
            self.reg.execute("INSERT INTO meta(key, value) VALUES('customer_hash_key', ?)",
                             (key,))
        shutil.rmtree(self.folder)
        return key

    def test_an_old_store_has_its_key_moved_into_the_folder(self):
        key = self.make_old_store()
        self.assertEqual(self.meta("customer_hash_key"), key)
        self.reg.start()
        self.assertIn("was moved from the store to " + self.key_path(), self.reg.stderr_tail())
        self.assertEqual(self.folder_key(), key)
        self.assertEqual(stat.S_IMODE(os.stat(self.key_path()).st_mode), 0o600)
        self.assertIsNone(self.meta("customer_hash_key"))
        # Customers registered before the move are found by phone as before.
        self.assertEqual(self.find_by_phone(CUSTOMERS[0][1]), ["C-1"])
        self.assertEqual(self.find_by_phone(CUSTOMERS[1][1]), ["C-2"])
        self.reg.stop()
        if STORE != "postgresql":
            # secure_delete: the freed cell was zeroed, and the file and its WAL
            # hold the key nowhere.
            self.assertNotIn(key, self.reg.stored_bytes())
        # A second start finds everything settled and says nothing of a move.
        self.reg.start()
        self.assertNotIn("was moved", self.reg.stderr_tail())
        self.assertEqual(self.find_by_phone(CUSTOMERS[0][1]), ["C-1"])

    def test_a_move_cut_short_is_finished_at_the_next_start(self):
        key = self.make_old_store()
        # The key reached the folder, the store still has it: as after a stop
        # between the two steps.
        os.makedirs(self.folder, mode=0o700)
        with open(os.open(self.key_path(), os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(key.hex() + "\n")
        self.reg.start()
        self.assertIsNone(self.meta("customer_hash_key"))
        self.assertEqual(self.find_by_phone(CUSTOMERS[1][1]), ["C-2"])

    def test_another_key_or_none_is_refused(self):
        self.populate()
        self.reg.stop()
        key = self.folder_key()
        before = self.reg.stored_bytes() if STORE != "postgresql" else None
        # Another key in the folder.
        with open(self.key_path(), "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        with self.assertRaises(AssertionError) as refused:
            self.reg.start()
        self.assertRegex(str(refused.exception), r"fingerprint [0-9a-f]{16}.*fingerprint")
        # No key at all: not made anew.
        os.unlink(self.key_path())
        with self.assertRaises(AssertionError) as refused:
            self.reg.start()
        self.assertIn("is missing", str(refused.exception))
        self.assertIn("restore the secrets folder from its backup", str(refused.exception))
        self.assertFalse(os.path.exists(self.key_path()))
        if before is not None:
            self.assertEqual(self.reg.stored_bytes(), before)
        # The right key back: the registry starts and finds its customers.
        with open(os.open(self.key_path(), os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(key.hex() + "\n")
        self.reg.start()
        self.assertEqual(self.find_by_phone(CUSTOMERS[0][1]), ["C-1"])

    @unittest.skipIf(STORE == "postgresql", "the default folder is a SQLite store's")
    def test_under_systemd_the_keys_come_from_the_credentials_directory(self):
        """LoadCredential= hands the service its keys in $CREDENTIALS_DIRECTORY: used
        in place of the folder beside the store, which is then never made."""
        self.populate()
        self.reg.stop()
        creds = os.path.join(self.reg.workdir, "credentials")
        shutil.move(self.folder, creds)
        os.environ["CREDENTIALS_DIRECTORY"] = creds
        try:
            # Read-only to the service: a key missing there is refused, not made.
            signing = os.path.join(creds, "log-signing.pem")
            os.rename(signing, signing + ".aside")
            with self.assertRaises(AssertionError) as refused:
                self.reg.start()
            self.assertIn("log-signing.pem is not among the credentials", str(refused.exception))
            self.assertIn("LoadCredential=", str(refused.exception))
            self.assertFalse(os.path.exists(signing))
            os.rename(signing + ".aside", signing)
            self.reg.start()
        finally:
            del os.environ["CREDENTIALS_DIRECTORY"]
        self.assertEqual(self.find_by_phone(CUSTOMERS[0][1]), ["C-1"])
        self.assertFalse(os.path.exists(self.folder))
        self.reg.stop()
        # Without it (nor --secrets-dir), the folder beside the store is looked for,
        # and its absence is refused: the store's customers need their key.
        with self.assertRaises(AssertionError) as refused:
            self.reg.start()
        self.assertIn("is missing", str(refused.exception))
        self.assertFalse(os.path.exists(self.folder), "a refused start made the folder")

    def test_a_malformed_key_file_is_refused(self):
        self.populate()
        self.reg.stop()
        with open(self.key_path(), "w") as f:
            f.write("not a key\n")
        with self.assertRaises(AssertionError) as refused:
            self.reg.start()
        self.assertIn("must hold 32 bytes as 64 hex digits", str(refused.exception))

    @unittest.skipUnless(STORE == "postgresql", "a PostgreSQL store only")
    def test_postgresql_needs_a_secrets_folder(self):
        r = self.reg.run_cli("serve", "--db", self.reg.db, "--listen", "127.0.0.1:0")
        self.assertEqual(r.returncode, 2, r.stderr)  # bad usage: a flag is missing
        self.assertTrue(re.search(r"PostgreSQL store needs --secrets-dir", r.stderr), r.stderr)


if __name__ == "__main__":
    BINARY = take_binary_argument()
    unittest.main(verbosity=2)
