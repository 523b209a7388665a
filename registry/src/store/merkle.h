// The Merkle tree of RFC 9162 §2.1 (the tree of Certificate Transparency 2.0):
// the tree hash of a list of leaves, the inclusion path of one leaf, the
// consistency proof between two sizes of the same append-only list, and the
// iterative checks a verifier runs on them.
//
// Hashes are raw 32-byte SHA-256 strings (Sha256, chain.h). The proofs are built
// over a RangeHash, which the stored tree (log_tree.h) answers from its tiles;
// the plain versions take every leaf hash in memory (tests, small trees). The
// Verify functions take only the proof and need no tree.
//
// Thread-safety: every function is pure and may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "pingma/common/status.h"

namespace pingma::registry::merkle {

/// SHA-256(0x00 ‖ leaf): the hash of one entry of the log (§2.1.1).
std::string LeafHash(std::string_view leaf);

/// SHA-256(0x01 ‖ left ‖ right): the hash of an interior node (§2.1.1).
std::string NodeHash(std::string_view left, std::string_view right);

/// MTH(D[n]) of §2.1.1 over leaf hashes already made with LeafHash: split at the
/// largest power of two smaller than n, recursively. The empty tree's root is
/// SHA-256 of the empty string.
std::string RootOf(const std::vector<std::string>& leaf_hashes);

/// PATH(index, D[n]) of §2.1.3.1: the sibling hashes from the leaf up to the
/// root, the leaf's neighbour first. Empty for a tree of one leaf, and empty when
/// index >= n (no such leaf: the caller checks the index first).
std::vector<std::string> InclusionPath(const std::vector<std::string>& leaf_hashes, uint64_t index);

/// PROOF(first, D[n]) of §2.1.4.1: the hashes that show the tree of the first
/// `first` leaves is a prefix of the tree of all n. Empty when first == n
/// (SUBPROOF(n, D[n], true) is empty), when first == 0 (every tree extends the
/// empty one; the RFC defines proofs only for 0 < first < n), and when first > n.
std::vector<std::string> ConsistencyPath(const std::vector<std::string>& leaf_hashes,
                                         uint64_t first);

/// §2.1.3.2: true when `path` takes `leaf_hash`, the leaf at `index`, up to
/// `root`, the root of a tree of `tree_size` leaves. False when index >= tree_size.
bool VerifyInclusion(uint64_t index, uint64_t tree_size, std::string_view leaf_hash,
                     const std::vector<std::string>& path, std::string_view root);

/// §2.1.4.2: true when `path` shows that the tree of `first` leaves with root
/// `first_root` is a prefix of the tree of `second` leaves with root
/// `second_root`. The RFC's algorithm is for 0 < first < second; around it:
/// first > second is false; first == second needs an empty path and equal roots;
/// first == 0 needs an empty path and `first_root` the empty tree's root.
bool VerifyConsistency(uint64_t first, uint64_t second, std::string_view first_root,
                       std::string_view second_root, const std::vector<std::string>& path);

/// MTH(D[lo:hi]): the tree hash of leaves lo to hi - 1 (0 <= lo < hi), from
/// wherever the log keeps them (in memory, or the stored tiles of log_tree.h).
using RangeHash = std::function<Result<std::string>(uint64_t lo, uint64_t hi)>;

/// InclusionPath of a tree of `tree_size` leaves whose parts `range` hashes: it
/// asks for O(log n) ranges, each the hash of a subtree of the RFC's split.
Result<std::vector<std::string>> InclusionPathOf(uint64_t index, uint64_t tree_size,
                                                 const RangeHash& range);
/// ConsistencyPath between the first `first` and `second` leaves, likewise.
Result<std::vector<std::string>> ConsistencyPathOf(uint64_t first, uint64_t second,
                                                   const RangeHash& range);

/// A tree head as the log signs it (API.md "The verifiable log").
struct TreeHead {
  std::uint64_t tree_size = 0;
  std::string root_hash;  ///< 32 raw bytes
  std::int64_t timestamp_ms = 0;
};
/// The ASCII text a head's signature covers:
/// "pingma-log-v1\n{tree_size}\n{root_hash, lowercase hex}\n{timestamp_ms}\n".
std::string TreeHeadText(const TreeHead& head);

}  // namespace pingma::registry::merkle
