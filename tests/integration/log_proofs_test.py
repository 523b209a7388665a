#!/usr/bin/env python3
"""Checks the proofs of a Merkle log dump program with rfc9162.py (standard library only).

Run: python3 -B log_proofs_test.py PATH_TO_DUMP_PROGRAM
     python3 -B log_proofs_test.py --self-test-only

rfc9162.py is the tests' own reading of RFC 9162 and shares no code with the registry.
This program first tests that module by itself: the published Certificate Transparency
vectors (roots of the 8-leaf reference tree, some of its proofs), every inclusion and
consistency proof of every tree of 1 to 64 leaves from the module's reference prover,
forged variants of each of them (which must all be refused), and a signed tree head made
with a fresh key by the openssl program.

Then it runs the program under test twice. The program prints one JSON object a line:

    {"size": n, "root": HEX}
    {"size": n, "index": i, "inclusion": [HEX, ...]}
    {"size": n, "first": m, "consistency": [HEX, ...]}

for the tree whose leaf i holds the ASCII bytes "leaf i" (b"leaf %d" % i).

1. PROGRAM --sizes 1-300 --all: every size from 1 to 300, every leaf of each, and every
   smaller size of each (m == n may be given too). Each line is checked against roots this
   program computes itself, every expected line must be there exactly once, and forged
   copies of a few of the program's proofs must be refused.
2. PROGRAM --size 1000000 --sample 300 --seed 7: the root of a million leaves and proofs
   the program samples; the roots they need are computed in one pass over the leaves. At
   least 100 distinct inclusion and 100 distinct consistency proofs in the million-leaf
   tree are required.

The exit status is 0 when everything holds; otherwise the first failure is named (for a
line of output: its number, the reason and the line) and the status is 1.
"""

import argparse
import base64
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rfc9162 as ct  # noqa: E402

# The two runs of the program under test, and what each must deliver.
ALL_ARGS = ["--sizes", "1-300", "--all"]
ALL_MAX_SIZE = 300
SAMPLE_ARGS = ["--size", "1000000", "--sample", "300", "--seed", "7"]
SAMPLE_SIZE = 1_000_000
SAMPLE_MINIMUM = 100

# The self-tests cover every proof in trees of up to this many leaves.
SELF_TEST_MAX_SIZE = 64

# The Certificate Transparency reference tree (RFC 6962 test data, also used for RFC
# 9162): its eight entries, its roots for sizes 0 to 8, and some of its proofs.
CT_ENTRIES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
)]
CT_ROOTS = [bytes.fromhex(h) for h in (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]
CT_INCLUSION = {  # (index, size): path
    (0, 8): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (5, 8): ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
    (2, 3): ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    (1, 5): ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"],
}
CT_CONSISTENCY = {  # (first, second): path
    (1, 8): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (6, 8): ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
    (2, 5): ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"],
}


class TestFailure(Exception):
    """A check that did not hold; its text says which."""


def require(condition, message):
    """Raises TestFailure with message unless condition holds."""
    if not condition:
        raise TestFailure(message)


def leaf_entry(i):
    """Returns the bytes of leaf i of the tree the program under test dumps."""
    return b"leaf %d" % i


def leaf(i):
    """Returns the leaf hash of leaf i of that tree."""
    return ct.leaf_hash(leaf_entry(i))


def hexes(hashes):
    """Returns a list of hashes as a list of hex strings, for messages."""
    return [h.hex() for h in hashes]


# ---------------------------------------------------------------------------
# forgeries: changes to a valid proof, each of which a verifier must refuse


def flipped(h, k):
    """Returns hash h with its byte k changed (the lowest bit flipped)."""
    return h[:k] + bytes([h[k] ^ 0x01]) + h[k + 1:]


def path_forgeries(path, extra):
    """Yields (description, path) for a valid path changed in one way.

    The changes are: one byte of one element flipped, one element dropped, and one element
    (extra) added at either end.
    """
    for k, element in enumerate(path):
        byte = k % len(element) if element else 0
        if element:
            yield ("path[%d] with byte %d flipped" % (k, byte),
                   path[:k] + [flipped(element, byte)] + path[k + 1:])
        yield "path[%d] dropped" % k, path[:k] + path[k + 1:]
    yield "an element appended", path + [extra]
    yield "an element prepended", [extra] + path


def inclusion_forgeries(index, size, leaf_hash, path, root, root_of):
    """Yields (description, arguments of verify_inclusion) for forged variants of a valid
    inclusion proof.

    root_of(n) returns the root of the tree of n leaves, or None when it is not known.
    Another tree size is tried with that size's own root, and with the proven root only
    for half and twice the size. The reason is that the path does not fix the size: the
    path of leaf 0 in 5 leaves also leads to the same root when taken as a path in 6, 7
    or 8 leaves. What ties a size to its root is the signed tree head, not the proof.
    """
    for what, forged in path_forgeries(path, root):
        yield what, (index, size, leaf_hash, forged, root)
    for other in sorted({index - 1, index + 1, index ^ 1, index ^ 2, size}):
        if other >= 0 and other != index:
            yield "index %d" % other, (other, size, leaf_hash, path, root)
    for other in (size // 2, size * 2):
        yield "size %d with the same root" % other, (index, other, leaf_hash, path, root)
    for other in (size - 1, size + 1):
        other_root = root_of(other)
        if other > 0 and other_root is not None:
            yield "size %d with its root" % other, (index, other, leaf_hash, path, other_root)
    yield "root with a byte flipped", (index, size, leaf_hash, path, flipped(root, 31))
    yield "another leaf", (index, size, ct.leaf_hash(b"not a leaf"), path, root)


def consistency_forgeries(first, second, first_root, second_root, path, root_of):
    """Yields (description, arguments of verify_consistency) for forged variants of a valid
    consistency proof with 0 < first < second.

    root_of is as for inclusion_forgeries, and for the same reason another second size is
    tried with its own root (or, at twice the size, with the proven one).
    """
    m, n, m_root, n_root = first, second, first_root, second_root
    for what, forged in path_forgeries(path, n_root):
        yield what, (m, n, m_root, n_root, forged)
    yield "the first root prepended", (m, n, m_root, n_root, [m_root] + path)
    yield "an empty path", (m, n, m_root, n_root, [])
    for other in sorted({m - 1, m + 1, m ^ 1, m ^ 2}):
        if 0 <= other <= n and other != m:
            yield "first %d with the same root" % other, (other, n, m_root, n_root, path)
            other_root = root_of(other)
            if other_root is not None:
                yield "first %d with its root" % other, (other, n, other_root, n_root, path)
    yield "second %d with the same root" % (n * 2), (m, n * 2, m_root, n_root, path)
    for other in (n - 1, n + 1):
        other_root = root_of(other)
        if other > m and other_root is not None:
            yield "second %d with its root" % other, (m, other, m_root, other_root, path)
    yield "first root with a byte flipped", (m, n, flipped(m_root, 0), n_root, path)
    yield "second root with a byte flipped", (m, n, m_root, flipped(n_root, 0), path)
    yield "the roots swapped", (m, n, n_root, m_root, path)
    yield "the sizes and roots swapped", (n, m, n_root, m_root, path)


def refuse_all(verify, forgeries, where):
    """Checks that verify refuses every forgery; returns how many there were."""
    count = 0
    for what, arguments in forgeries:
        if verify(*arguments):
            raise TestFailure("%s: a forged proof verified (%s), so the verifier proves nothing"
                              % (where, what))
        count += 1
    return count


# ---------------------------------------------------------------------------
# self-tests of rfc9162.py


def self_test_known_vectors():
    """Checks mth, Frontier, the reference prover and both verifiers against the published
    vectors; returns the number of vectors.
    """
    leaves = [ct.leaf_hash(entry) for entry in CT_ENTRIES]
    frontier = ct.Frontier()
    for size, want in enumerate(CT_ROOTS):
        require(ct.mth(leaves[:size]) == want,
                "mth of the CT reference tree of %d leaves is %s, the RFC's vectors say %s"
                % (size, ct.mth(leaves[:size]).hex(), want.hex()))
        require(frontier.root() == want, "Frontier root of %d CT leaves is wrong" % size)
        if size < len(leaves):
            frontier.append(leaves[size])
    subtree = ct.subtree_hasher(leaves)
    for (index, size), want in CT_INCLUSION.items():
        got = ct.reference_inclusion_path(index, size, subtree)
        require(hexes(got) == want, "reference PATH(%d, D[%d]) is %s, the vectors say %s"
                % (index, size, hexes(got), want))
        require(ct.verify_inclusion(index, size, leaves[index], [bytes.fromhex(h) for h in want],
                                    CT_ROOTS[size]),
                "the published inclusion proof of leaf %d in %d leaves does not verify"
                % (index, size))
    for (first, second), want in CT_CONSISTENCY.items():
        got = ct.reference_consistency_proof(first, second, subtree)
        require(hexes(got) == want, "reference PROOF(%d, D[%d]) is %s, the vectors say %s"
                % (first, second, hexes(got), want))
        require(ct.verify_consistency(first, second, CT_ROOTS[first], CT_ROOTS[second],
                                       [bytes.fromhex(h) for h in want]),
                "the published consistency proof from %d to %d leaves does not verify"
                % (first, second))
    return len(CT_ROOTS) + len(CT_INCLUSION) + len(CT_CONSISTENCY)


def self_test_roots(leaves):
    """Checks that Frontier gives mth at every size of leaves; returns the roots by size."""
    frontier = ct.Frontier()
    roots = [frontier.root()]
    for h in leaves:
        frontier.append(h)
        roots.append(frontier.root())
    for size, root in enumerate(roots):
        require(root == ct.mth(leaves[:size]), "Frontier and mth differ at %d leaves" % size)
    return roots


def self_test_inclusion(leaves, roots):
    """Checks every inclusion proof of every tree of up to SELF_TEST_MAX_SIZE leaves, and
    forgeries of each; returns (proofs, forgeries).
    """
    subtree = ct.subtree_hasher(leaves)
    root_of = lambda n: roots[n] if 0 <= n < len(roots) else None  # noqa: E731
    proofs = forgeries = 0
    for size in range(1, SELF_TEST_MAX_SIZE + 1):
        for index in range(size):
            where = "self-test, leaf %d of %d" % (index, size)
            path = ct.reference_inclusion_path(index, size, subtree)
            require(ct.verify_inclusion(index, size, leaves[index], path, roots[size]),
                    "%s: the reference proof does not verify" % where)
            proofs += 1
            forgeries += refuse_all(
                ct.verify_inclusion,
                inclusion_forgeries(index, size, leaves[index], path, roots[size], root_of), where)
            # Beyond the usual forgeries: every other index, and every other size with
            # its own root.
            forgeries += refuse_all(ct.verify_inclusion, (
                ("index %d" % other, (other, size, leaves[index], path, roots[size]))
                for other in range(size + 1) if other != index), where)
            forgeries += refuse_all(ct.verify_inclusion, (
                ("size %d with its root" % other, (index, other, leaves[index], path, roots[other]))
                for other in range(1, 2 * size + 2) if other != size), where)
    # Cases without a tree to prove in.
    for index, size in ((0, 0), (1, 1), (-1, 1), (5, 3)):
        require(not ct.verify_inclusion(index, size, leaves[0], [], leaves[0]),
                "self-test: leaf %d of %d leaves verified" % (index, size))
    return proofs, forgeries


def self_test_consistency(leaves, roots):
    """Checks every consistency proof between trees of up to SELF_TEST_MAX_SIZE leaves, and
    forgeries of each; returns (proofs, forgeries).
    """
    subtree = ct.subtree_hasher(leaves)
    root_of = lambda n: roots[n] if 0 <= n < len(roots) else None  # noqa: E731
    proofs = forgeries = 0
    for second in range(1, SELF_TEST_MAX_SIZE + 1):
        # Every tree extends the empty tree, with an empty path and the empty root only.
        require(ct.verify_consistency(0, second, ct.EMPTY_ROOT, roots[second], []),
                "self-test: %d leaves do not extend the empty tree" % second)
        require(not ct.verify_consistency(0, second, ct.EMPTY_ROOT, roots[second], [roots[second]]),
                "self-test: a non-empty proof from the empty tree verified")
        require(not ct.verify_consistency(0, second, roots[1], roots[second], []),
                "self-test: a tree of 0 leaves with a non-empty root verified")
        for first in range(1, second + 1):
            where = "self-test, %d to %d leaves" % (first, second)
            path = ct.reference_consistency_proof(first, second, subtree)
            require(ct.verify_consistency(first, second, roots[first], roots[second], path),
                    "%s: the reference proof does not verify" % where)
            proofs += 1
            if first == second:
                require(path == [], "%s: the reference proof is not empty" % where)
                forgeries += refuse_all(ct.verify_consistency, (
                    ("a non-empty path",
                     (first, second, roots[first], roots[second], [roots[first]])),
                    ("another root", (first, second, roots[first], flipped(roots[second], 0), [])),
                    ("a shrinking tree", (first, first - 1, roots[first], roots[first - 1], [])),
                ), where)
                continue
            forgeries += refuse_all(ct.verify_consistency, consistency_forgeries(
                first, second, roots[first], roots[second], path, root_of), where)
            # Beyond the usual forgeries: every other first size with either root, and
            # every other second size with its own root.
            forgeries += refuse_all(ct.verify_consistency, (
                ("first %d with %s" % (other, which),
                 (other, second, root, roots[second], path))
                for other in range(second + 1) if other != first
                for which, root in (("the same root", roots[first]),
                                    ("its root", roots[other]))), where)
            forgeries += refuse_all(ct.verify_consistency, (
                ("second %d with its root" % other,
                 (first, other, roots[first], roots[other], path))
                for other in range(first, 2 * second + 2) if other != second), where)
    return proofs, forgeries


def self_test_head_signature():
    """Signs a tree head with a fresh Ed25519 key made by openssl, and checks that
    verify_head_signature accepts it and refuses changed copies; returns the number of heads
    checked.
    """
    with tempfile.TemporaryDirectory(prefix="log-proofs-") as folder:
        def openssl(*arguments):
            completed = subprocess.run(["openssl"] + list(arguments), cwd=folder,
                                       stdin=subprocess.DEVNULL, capture_output=True)
            require(completed.returncode == 0, "self-test: openssl %s failed: %s"
                    % (" ".join(arguments), completed.stderr.decode(errors="replace").strip()))

        def new_key(name):
            openssl("genpkey", "-algorithm", "ed25519", "-out", name + ".pem")
            openssl("pkey", "-in", name + ".pem", "-pubout", "-outform", "DER",
                    "-out", name + ".der")
            with open(os.path.join(folder, name + ".der"), "rb") as f:
                der = f.read()
            require(der[:-32] == ct.ED25519_SPKI_PREFIX,
                    "self-test: openssl's Ed25519 public key does not start with the "
                    "expected DER prefix")
            return base64.b64encode(der[-32:]).decode("ascii")

        key = new_key("signer")
        stranger = new_key("stranger")
        head = {"tree_size": 1000000, "root_hash": CT_ROOTS[8].hex(), "timestamp": 1767225600123}
        with open(os.path.join(folder, "msg"), "wb") as f:
            f.write(ct.head_message(head))
        openssl("pkeyutl", "-sign", "-inkey", "signer.pem", "-rawin", "-in", "msg", "-out", "sig")
        with open(os.path.join(folder, "sig"), "rb") as f:
            head["signature"] = base64.b64encode(f.read()).decode("ascii")

    require(ct.head_message(head) == b"pingma-log-v1\n1000000\n" + CT_ROOTS[8].hex().encode()
            + b"\n1767225600123\n", "self-test: the signed message is not the documented text")
    require(ct.verify_head_signature(head, key), "self-test: a correctly signed head was refused")
    signature = base64.b64decode(head["signature"])
    changed = [
        ("another tree size", dict(head, tree_size=999999), key),
        ("another root", dict(head, root_hash=CT_ROOTS[7].hex()), key),
        ("another timestamp", dict(head, timestamp=head["timestamp"] + 1), key),
        ("a flipped signature byte",
         dict(head, signature=base64.b64encode(flipped(signature, 10)).decode()), key),
        ("another key", head, stranger),
        ("an uppercase root", dict(head, root_hash=head["root_hash"].upper()), key),
        ("a boolean tree size", dict(head, tree_size=True), key),
        ("no timestamp", {k: v for k, v in head.items() if k != "timestamp"}, key),
        ("a signature that is not base64", dict(head, signature="*" + head["signature"][1:]), key),
        ("a short key", head, key[:-4]),
    ]
    for what, other_head, other_key in changed:
        require(not ct.verify_head_signature(other_head, other_key),
                "self-test: a head with %s verified" % what)
    return 1 + len(changed)


def self_test():
    """Runs every self-test of rfc9162.py; returns a summary line."""
    started = time.monotonic()
    vectors = self_test_known_vectors()
    leaves = [leaf(i) for i in range(2 * SELF_TEST_MAX_SIZE + 2)]
    roots = self_test_roots(leaves)
    inclusion, forged_inclusion = self_test_inclusion(leaves, roots)
    consistency, forged_consistency = self_test_consistency(leaves, roots)
    heads = self_test_head_signature()
    return ("self-test: %d published vectors, %d inclusion and %d consistency proofs verified, "
            "%d forgeries refused, %d signed heads judged (%.1f s)"
            % (vectors, inclusion, consistency, forged_inclusion + forged_consistency, heads,
               time.monotonic() - started))


# ---------------------------------------------------------------------------
# the program under test: running it and reading its lines

# One line of output. kind is "root", "inclusion" or "consistency"; at is the index or
# the first size (None for a root); root is set for a root line, path for the others.
Record = collections.namedtuple("Record", "number text kind size at root path")

LINE_KEYS = {
    "root": ("size", "root"),
    "inclusion": ("size", "index", "inclusion"),
    "consistency": ("size", "first", "consistency"),
}


class BadLine(Exception):
    """A line of output that is not one of the three documented objects."""


def parse_hash(value, name):
    """Returns the 32 bytes of a hash written as 64 hex digits, or raises BadLine."""
    if not (isinstance(value, str) and len(value) == 64
            and all(ch in "0123456789abcdefABCDEF" for ch in value)):
        raise BadLine("%s is not 64 hex digits" % name)
    return bytes.fromhex(value)


def parse_line(number, text):
    """Returns the Record of a line of output, or raises BadLine."""
    try:
        item = json.loads(text)
    except ValueError as error:
        raise BadLine("not JSON (%s)" % error)
    if not isinstance(item, dict):
        raise BadLine("not a JSON object")
    for kind, keys in LINE_KEYS.items():
        if set(item) == set(keys):
            break
    else:
        raise BadLine("its keys %s are not those of a root, inclusion or consistency line"
                      % sorted(item))
    for key in keys[:-1]:
        value = item[key]
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            raise BadLine("%s is not a non-negative integer" % key)
    if kind == "root":
        root = parse_hash(item["root"], "root")
        return Record(number, text, kind, item["size"], None, root, None)
    path = item[kind]
    if not isinstance(path, list):
        raise BadLine("%s is not a list" % kind)
    path = [parse_hash(value, "%s[%d]" % (kind, k)) for k, value in enumerate(path)]
    return Record(number, text, kind, item["size"], item[keys[1]], None, path)


class Run:
    """One run of the program under test, whose stdout is read a line at a time.

    The program's stderr goes to this program's stderr. If the program has not finished
    after timeout seconds it is killed, with any children it started (it runs in a
    process group of its own, which is killed whole), and that is a failure.
    """

    def __init__(self, program, arguments, timeout):
        self.command = [program] + arguments
        self.timeout = timeout
        self.name = "`%s`" % " ".join(self.command)
        self.failures = 0
        self.first_failure = None

    def lines(self):
        """Yields (number, text) for each line of output, then checks the exit status."""
        process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   encoding="utf-8", errors="replace", start_new_session=True)
        timed_out = threading.Event()

        def kill_group():
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        def kill():
            timed_out.set()
            kill_group()

        timer = threading.Timer(self.timeout, kill)
        timer.start()
        try:
            for number, text in enumerate(process.stdout, 1):
                yield number, text.rstrip("\n")
            status = process.wait()
        finally:
            timer.cancel()
            if process.poll() is None:
                kill_group()
                process.wait()
            process.stdout.close()
        require(not timed_out.is_set(), "%s did not finish within %g s" % (self.name, self.timeout))
        require(status == 0, "%s exited with status %d" % (self.name, status))

    def records(self):
        """Yields the Record of each line of output; a line that is not one counts as failed."""
        for number, text in self.lines():
            try:
                yield parse_line(number, text)
            except BadLine as error:
                self.fail(number, text, str(error))

    def fail(self, number, text, reason):
        """Notes that line number (text) failed for reason; the first one is kept for the report."""
        self.failures += 1
        if self.first_failure is None:
            shown = text if len(text) <= 300 else text[:300] + "..."
            self.first_failure = "line %d of %s: %s\n    %s" % (number, self.name, reason, shown)

    def finish(self):
        """Raises TestFailure naming the first failed line, if any line failed."""
        if self.first_failure is not None:
            raise TestFailure("%s\n(%d failed line%s in all)" % (
                self.first_failure, self.failures, "" if self.failures == 1 else "s"))


def check_record(record, root_of):
    """Returns why a record is wrong, or None when it checks out against the roots
    root_of(n) computed here.
    """
    size_root = root_of(record.size)
    if record.kind == "root":
        if record.root != size_root:
            return "the root of %d leaves is %s here" % (record.size, size_root.hex())
        return None
    if record.kind == "inclusion":
        if record.at >= record.size:
            return "index %d is not in a tree of %d leaves" % (record.at, record.size)
        if not ct.verify_inclusion(record.at, record.size, leaf(record.at), record.path, size_root):
            return "the inclusion proof does not verify (RFC 9162 §2.1.3.2)"
        return None
    if record.at > record.size:
        return "first %d is larger than size %d" % (record.at, record.size)
    first_root = root_of(record.at)
    if not ct.verify_consistency(record.at, record.size, first_root, size_root, record.path):
        return "the consistency proof does not verify (RFC 9162 §2.1.4.2)"
    return None


def forge_copies(run, record, root_of):
    """Checks that forged copies of a verified proof of the program's are refused; returns
    how many there were.
    """
    where = "line %d of %s" % (record.number, run.name)
    size_root = root_of(record.size)
    if record.kind == "inclusion":
        return refuse_all(ct.verify_inclusion, inclusion_forgeries(
            record.at, record.size, leaf(record.at), record.path, size_root, root_of), where)
    return refuse_all(ct.verify_consistency, consistency_forgeries(
        record.at, record.size, root_of(record.at), size_root, record.path, root_of), where)


def counts(kinds):
    """Returns "N roots, N inclusion and N consistency proofs" from a Counter of kinds."""
    return "%d root%s, %d inclusion and %d consistency proofs" % (
        kinds["root"], "" if kinds["root"] == 1 else "s", kinds["inclusion"], kinds["consistency"])


# ---------------------------------------------------------------------------
# run 1: every proof of every tree of 1 to 300 leaves

# Proofs of the program's that are forged after they verify: long paths, both ends, and
# a first size that is a power of 2 (whose root the proof leaves out).
FORGED_ALL = {("inclusion", 300, 0), ("inclusion", 300, 299), ("inclusion", 300, 150),
              ("inclusion", 257, 256), ("consistency", 300, 1), ("consistency", 300, 128),
              ("consistency", 300, 299), ("consistency", 129, 64)}


def run_all(program, timeout):
    """Runs PROGRAM --sizes 1-300 --all and checks every line, and that none is missing;
    returns a summary line.
    """
    started = time.monotonic()
    frontier = ct.Frontier()
    roots = [frontier.root()]
    for i in range(ALL_MAX_SIZE):
        frontier.append(leaf(i))
        roots.append(frontier.root())
    root_of = lambda n: roots[n] if 0 <= n < len(roots) else None  # noqa: E731

    run = Run(program, ALL_ARGS, timeout)
    seen = set()
    verified = collections.Counter()
    to_forge = []
    for record in run.records():
        key = (record.kind, record.size, record.at)
        if not 1 <= record.size <= ALL_MAX_SIZE:
            run.fail(record.number, record.text,
                     "size %d is outside 1-%d" % (record.size, ALL_MAX_SIZE))
            continue
        if key in seen:
            run.fail(record.number, record.text, "a second line for the same %s" % record.kind)
            continue
        seen.add(key)
        reason = check_record(record, root_of)
        if reason is not None:
            run.fail(record.number, record.text, reason)
            continue
        verified[record.kind] += 1
        if key in FORGED_ALL:
            to_forge.append(record)
    run.finish()

    # Every expected line must have been there (consistency with first == size may be).
    missing = []
    for size in range(1, ALL_MAX_SIZE + 1):
        missing += [("root", size, None)]
        missing += [("inclusion", size, index) for index in range(size)]
        missing += [("consistency", size, first) for first in range(1, size)]
    missing = [key for key in missing if key not in seen]
    if missing:
        kind, size, at = missing[0]
        detail = ""
        if at is not None:
            detail = " and %s %d" % ("index" if kind == "inclusion" else "first", at)
        raise TestFailure("%s printed no %s line for size %d%s (%d expected line%s missing)" % (
            run.name, kind, size, detail, len(missing), "" if len(missing) == 1 else "s"))

    forged = sum(forge_copies(run, record, root_of) for record in to_forge)
    require(len(to_forge) == len(FORGED_ALL), "%s: expected proofs to forge are missing" % run.name)
    return "%s: %s verified, %d forged copies refused (%.1f s)" % (
        run.name, counts(verified), forged, time.monotonic() - started)


# ---------------------------------------------------------------------------
# run 2: sampled proofs in a tree of a million leaves


def streamed_roots(sizes):
    """Returns {n: root of n leaves} for each n in sizes, from one pass over the leaves."""
    wanted = set(sizes)
    frontier = ct.Frontier()
    roots = {}
    if 0 in wanted:
        roots[0] = frontier.root()
    for i in range(max(wanted, default=0)):
        frontier.append(leaf(i))
        if frontier.size in wanted:
            roots[frontier.size] = frontier.root()
    return roots


def run_sample(program, timeout):
    """Runs PROGRAM --size 1000000 --sample 300 --seed 7 and checks every line; returns a
    summary line.
    """
    started = time.monotonic()
    run = Run(program, SAMPLE_ARGS, timeout)
    records = []
    for record in run.records():
        if record.size > SAMPLE_SIZE:
            run.fail(record.number, record.text,
                     "size %d is beyond the %d leaves asked for" % (record.size, SAMPLE_SIZE))
        else:
            records.append(record)
    output_seconds = time.monotonic() - started

    started_roots = time.monotonic()
    needed = {record.size for record in records}
    needed |= {record.at for record in records
               if record.kind == "consistency" and record.at <= record.size}
    roots = streamed_roots(needed)
    root_of = roots.get
    roots_seconds = time.monotonic() - started_roots

    verified = collections.Counter()
    distinct = {"inclusion": set(), "consistency": set()}
    to_forge = []
    for record in records:
        reason = check_record(record, root_of)
        if reason is not None:
            run.fail(record.number, record.text, reason)
            continue
        verified[record.kind] += 1
        if record.kind != "root" and record.size == SAMPLE_SIZE:
            distinct[record.kind].add(record.at)
            if len(record.path) >= 2 and sum(r.kind == record.kind for r in to_forge) < 3:
                to_forge.append(record)
    run.finish()

    require(verified["root"] > 0 and SAMPLE_SIZE in {r.size for r in records if r.kind == "root"},
            "%s printed no root line for size %d" % (run.name, SAMPLE_SIZE))
    for kind, at in (("inclusion", "indexes"), ("consistency", "first sizes")):
        require(len(distinct[kind]) >= SAMPLE_MINIMUM,
                "%s printed %s proofs for %d distinct %s in the %d-leaf tree; at least %d "
                "are required" % (run.name, kind, len(distinct[kind]), at, SAMPLE_SIZE,
                                  SAMPLE_MINIMUM))
    forged = sum(forge_copies(run, record, root_of) for record in to_forge)
    return ("%s: %s verified, %d forged copies refused (%.1f s: output %.1f s, "
            "roots of %d sizes over %d leaves %.1f s)"
            % (run.name, counts(verified), forged, time.monotonic() - started, output_seconds,
               len(needed), max(needed, default=0), roots_seconds))


# ---------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Checks a Merkle log dump program's RFC 9162 proofs with rfc9162.py.")
    parser.add_argument("program", nargs="?", metavar="PATH_TO_DUMP_PROGRAM",
                        help="the program that prints roots and proofs as JSON lines")
    parser.add_argument("--self-test-only", action="store_true",
                        help="only test rfc9162.py by itself")
    parser.add_argument("--timeout", type=float, default=600,
                        help="seconds each run of the program may take (default 600)")
    args = parser.parse_args(argv)
    if args.program is None and not args.self_test_only:
        parser.error("PATH_TO_DUMP_PROGRAM is required (or --self-test-only)")
    if args.program is not None:
        if not os.path.isfile(args.program):
            print("FAIL: the dump program %s does not exist (is it built?)" % args.program,
                  file=sys.stderr)
            return 1
        if not os.access(args.program, os.X_OK):
            print("FAIL: the dump program %s is not executable" % args.program, file=sys.stderr)
            return 1

    try:
        print(self_test(), flush=True)
        if args.program is not None:
            print(run_all(args.program, args.timeout), flush=True)
            print(run_sample(args.program, args.timeout), flush=True)
    except TestFailure as failure:
        print("FAIL: %s" % failure, file=sys.stderr)
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
