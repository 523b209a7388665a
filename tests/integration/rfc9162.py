"""Merkle tree hashes and proofs of RFC 9162 (Certificate Transparency 2.0), standard library only.

This module is the tests' own reading of the RFC and shares no code with the registry, so
that a proof the registry gives and this module accepts has been checked by two
independent implementations. It holds:

- the hashes of §2.1.1 (leaf_hash, node_hash, mth) and a streaming root (Frontier);
- the verifiers of §2.1.3.2 (verify_inclusion) and §2.1.4.2 (verify_consistency), step
  for step as the RFC writes them, with the RFC's names (fn, sn, r, fr, sr);
- the check of a pingma signed tree head (verify_head_signature), done by the openssl
  command-line program;
- a reference prover written from the recursive definitions of §2.1.3.1 and §2.1.4.1,
  which is for this module's self-tests only and is never used to judge the registry.

Hashes are 32-byte bytes objects throughout; the caller converts from and to hex.
"""

import base64
import hashlib
import os
import subprocess
import tempfile

# The hash of the empty tree, MTH({}) = SHA-256() (§2.1.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()

# The message a pingma tree head signs; the fields are filled in by format().
HEAD_MESSAGE = "pingma-log-v1\n{tree_size}\n{root_hash}\n{timestamp}\n"

# The DER encoding of an Ed25519 SubjectPublicKeyInfo (RFC 8410) up to the raw key: a
# SEQUENCE holding the algorithm identifier 1.3.101.112 and a BIT STRING of 33 bytes (no
# unused bits, then the 32 key bytes).
ED25519_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


# ---------------------------------------------------------------------------
# hashes (§2.1.1)


def leaf_hash(data):
    """Returns the hash of a leaf whose entry is data: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    """Returns the hash of an interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n):
    """Returns k, the largest power of 2 smaller than n, for n > 1 (so that k < n <= 2k)."""
    if n < 2:
        raise ValueError("a tree of %d leaves has no split point" % n)
    return 1 << ((n - 1).bit_length() - 1)


def mth(leaf_hashes):
    """Returns the Merkle Tree Hash of a list of leaf hashes.

    The RFC defines MTH over the entries themselves; here the leaves are already hashed,
    so a one-leaf tree's hash is its leaf hash. The empty tree's hash is SHA-256 of no
    bytes. The recursion splits at the largest power of 2 below the size, as §2.1.1 does.
    """
    return _mth_range(leaf_hashes, 0, len(leaf_hashes))


def _mth_range(leaf_hashes, lo, hi):
    """Returns MTH(D[lo:hi]) without copying the list."""
    n = hi - lo
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[lo]
    k = split_point(n)
    return node_hash(_mth_range(leaf_hashes, lo, lo + k), _mth_range(leaf_hashes, lo + k, hi))


class Frontier:
    """The right edge of a growing tree, from which the root of the current size follows.

    A tree of n leaves is a row of perfect subtrees, one for each bit set in n, largest
    first; the frontier keeps only their hashes, so memory is O(log n). Appending a leaf
    merges the perfect subtrees it completes, like a carry in binary addition. The root
    folds the row from the right: with k the largest power of 2 below n, the first
    subtree is D[0:k] and the rest is D[k:n], which is exactly the split of §2.1.1.
    """

    def __init__(self):
        self.size = 0
        self._peaks = []  # Hashes of the perfect subtrees, largest first.

    def append(self, leaf):
        """Adds a leaf hash at index self.size."""
        self._peaks.append(leaf)
        # Each low-order 1 bit of the old size is a perfect subtree as large as the one
        # just completed, and the two become one subtree twice that size.
        carry = self.size
        while carry & 1:
            right = self._peaks.pop()
            left = self._peaks.pop()
            self._peaks.append(node_hash(left, right))
            carry >>= 1
        self.size += 1

    def root(self):
        """Returns MTH of the leaves appended so far (EMPTY_ROOT for none)."""
        if not self._peaks:
            return EMPTY_ROOT
        result = self._peaks[-1]
        for peak in reversed(self._peaks[:-1]):
            result = node_hash(peak, result)
        return result


# ---------------------------------------------------------------------------
# verifiers (§2.1.3.2 and §2.1.4.2)


def verify_inclusion(index, tree_size, leaf, path, root):
    """Returns whether path proves that leaf (a leaf hash) is at index in the tree of
    tree_size leaves whose root is root.

    This is the algorithm of RFC 9162 §2.1.3.2, step for step.
    """
    # Step 1: an index outside the tree cannot be proven (a negative one neither).
    if index < 0 or index >= tree_size:
        return False
    # Step 2.
    fn = index
    sn = tree_size - 1
    # Step 3.
    r = leaf
    # Step 4.
    for p in path:
        # 4a: the path is longer than the tree is high.
        if sn == 0:
            return False
        # 4b: p is a left sibling when fn is a right child. It is one too when fn is the
        # last node of its level: a last node that is a left child has no sibling, so it
        # rises unchanged (4b.ii) to where it is a right child, and p is the left sibling
        # there.
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # 4b.ii: when fn is not a right child, shift until it is one or is 0.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        # 4c.
        fn >>= 1
        sn >>= 1
    # Step 5: the whole path was used to reach the top, and it led to the root.
    return sn == 0 and r == root


def verify_consistency(first, second, first_root, second_root, path):
    """Returns whether path proves that the tree of first leaves with first_root is a
    prefix of the tree of second leaves with second_root.

    For 0 < first < second this is the algorithm of RFC 9162 §2.1.4.2, step for step.
    The RFC leaves the other cases to the caller; here a tree is consistent with itself
    (empty path, equal roots), every tree extends the empty tree (empty path, and the
    empty tree's root must be the hash of the empty tree), and a tree never shrinks.
    """
    if first < 0 or first > second:
        return False
    if first == second:
        return not path and first_root == second_root
    if first == 0:
        return not path and first_root == EMPTY_ROOT
    # Step 1.
    if not path:
        return False
    path = list(path)
    # Step 2: when the first tree is perfect, its root is a node of the second tree that
    # the proof leaves out, since the verifier has it already.
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    # Step 3.
    fn = first - 1
    sn = second - 1
    # Step 4: climb to the largest perfect subtree that ends at the last leaf of the first
    # tree; it is whole in both trees, and path[0] is its hash.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 5.
    fr = path[0]
    sr = path[0]
    # Step 6.
    for c in path[1:]:
        # 6a: the path is longer than the second tree is high.
        if sn == 0:
            return False
        # 6b: as in §2.1.3.2, but a left sibling goes into both roots and a right sibling
        # only into the second, because it lies beyond the end of the first tree.
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            # 6b.iii: when fn is not a right child, shift until it is one or is 0.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        # 6c.
        fn >>= 1
        sn >>= 1
    # Step 7.
    return fr == first_root and sr == second_root and sn == 0


# ---------------------------------------------------------------------------
# signed tree heads


def head_message(head):
    """Returns the bytes a pingma tree head's signature covers."""
    return HEAD_MESSAGE.format(
        tree_size=head["tree_size"], root_hash=head["root_hash"], timestamp=head["timestamp"]
    ).encode("ascii")


def _is_int(value):
    """Returns whether value is a JSON integer (a Python bool is an int, but not one of these)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_root_hex(value):
    """Returns whether value is a SHA-256 hash written as 64 lowercase hex digits."""
    return (
        isinstance(value, str)
        and len(value) == 64
        and all(ch in "0123456789abcdef" for ch in value)
    )


def _b64(text):
    """Returns the bytes of strict standard base64, or None when text is not that."""
    if not isinstance(text, str):
        return None
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        return None


def ed25519_public_key_pem(raw_key):
    """Returns the PEM SubjectPublicKeyInfo of a raw 32-byte Ed25519 public key."""
    der = ED25519_SPKI_PREFIX + raw_key
    return (
        "-----BEGIN PUBLIC KEY-----\n"
        + base64.b64encode(der).decode("ascii")
        + "\n-----END PUBLIC KEY-----\n"
    )


def verify_head_signature(head, public_key_b64):
    """Returns whether head is a well-formed pingma tree head signed by the Ed25519 key
    public_key_b64 (the raw 32 bytes in base64).

    A head is {tree_size, root_hash (lowercase hex), timestamp (Unix milliseconds),
    signature (base64)}; the signature covers HEAD_MESSAGE filled in with the first three.
    A malformed head or key is simply not valid. The signature itself is checked by the
    openssl program (OpenSSL 3), so that no Python package is needed; if openssl cannot
    be run, the error is raised rather than taken for a bad signature.
    """
    if not isinstance(head, dict):
        return False
    if not (_is_int(head.get("tree_size")) and head["tree_size"] >= 0):
        return False
    if not _is_root_hex(head.get("root_hash")):
        return False
    if not _is_int(head.get("timestamp")):
        return False
    signature = _b64(head.get("signature"))
    raw_key = _b64(public_key_b64)
    if signature is None or len(signature) != 64 or raw_key is None or len(raw_key) != 32:
        return False
    with tempfile.TemporaryDirectory(prefix="rfc9162-") as folder:
        paths = {}
        for name, content in (
            ("key.pem", ed25519_public_key_pem(raw_key).encode("ascii")),
            ("msg", head_message(head)),
            ("sig", signature),
        ):
            paths[name] = os.path.join(folder, name)
            with open(paths[name], "wb") as f:
                f.write(content)
        completed = subprocess.run(
            ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", paths["key.pem"],
             "-rawin", "-in", paths["msg"], "-sigfile", paths["sig"]],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    return completed.returncode == 0


# ---------------------------------------------------------------------------
# reference prover: the self-tests' own, never used to judge the registry
#
# Written from the recursive definitions of the RFC over index ranges: subtree(lo, hi)
# must return MTH(D[lo:hi]), and the caller chooses how (subtree_hasher below recomputes
# from a list and remembers; a caller with a million leaves can use stored levels).


def subtree_hasher(leaf_hashes):
    """Returns subtree(lo, hi) = MTH(D[lo:hi]) over a list of leaf hashes, with memory."""
    known = {}

    def subtree(lo, hi):
        if (lo, hi) not in known:
            known[(lo, hi)] = _mth_range(leaf_hashes, lo, hi)
        return known[(lo, hi)]

    return subtree


def reference_inclusion_path(m, n, subtree):
    """Returns PATH(m, D[n]) of §2.1.3.1, the inclusion proof of leaf m in the tree of n leaves."""
    if not 0 <= m < n:
        raise ValueError("leaf %d is not in a tree of %d leaves" % (m, n))
    return _path(m, 0, n, subtree)


def _path(m, lo, hi, subtree):
    """Returns PATH(m, D[lo:hi]), m counted from lo."""
    n = hi - lo
    if n == 1:
        return []
    k = split_point(n)
    if m < k:
        return _path(m, lo, lo + k, subtree) + [subtree(lo + k, hi)]
    return _path(m - k, lo + k, hi, subtree) + [subtree(lo, lo + k)]


def reference_consistency_proof(m, n, subtree):
    """Returns PROOF(m, D[n]) of §2.1.4.1 for 0 < m <= n (the empty list when m == n)."""
    if not 0 < m <= n:
        raise ValueError("no consistency proof from %d to %d leaves" % (m, n))
    return _subproof(m, 0, n, True, subtree)


def _subproof(m, lo, hi, whole, subtree):
    """Returns SUBPROOF(m, D[lo:hi], whole), m counted from lo.

    whole is the RFC's b: it is true while D[lo:lo+m] is the whole first tree, whose root
    the verifier already has.
    """
    n = hi - lo
    if m == n:
        return [] if whole else [subtree(lo, hi)]
    k = split_point(n)
    if m <= k:
        return _subproof(m, lo, lo + k, whole, subtree) + [subtree(lo + k, hi)]
    return _subproof(m - k, lo + k, hi, False, subtree) + [subtree(lo, lo + k)]
