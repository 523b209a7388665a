#include "store/merkle.h"

#include <cstddef>

#include "store/chain.h"

namespace pingma::registry::merkle {
namespace {

// The leaves of a subtree: D[begin:begin+size] of the whole list.
struct Leaves {
  const std::string* begin;
  std::size_t size;

  Leaves Head(std::size_t k) const { return {begin, k}; }
  Leaves Tail(std::size_t k) const { return {begin + k, size - k}; }
};

// k of §2.1.1: the largest power of two smaller than n (n > 1).
uint64_t SplitOf(uint64_t n) {
  uint64_t k = 1;
  while (k << 1 < n) k <<= 1;
  return k;
}

std::string Root(Leaves d) {
  if (d.size == 0) return Sha256({});
  if (d.size == 1) return *d.begin;
  const std::size_t k = SplitOf(d.size);
  return NodeHash(Root(d.Head(k)), Root(d.Tail(k)));
}

// PATH(m, D[lo:hi]) of §2.1.3.1, the path's elements appended leaf end first;
// `range` gives MTH of any part of the list.
Status Path(uint64_t m, uint64_t lo, uint64_t hi, const RangeHash& range,
            std::vector<std::string>* out) {
  if (hi - lo <= 1) return Status::Ok();
  const uint64_t k = SplitOf(hi - lo);
  Result<std::string> sibling = m < k ? range(lo + k, hi) : range(lo, lo + k);
  if (!sibling.ok()) return sibling.status();
  PINGMA_RETURN_IF_ERROR(m < k ? Path(m, lo, lo + k, range, out)
                               : Path(m - k, lo + k, hi, range, out));
  out->push_back(std::move(*sibling));
  return Status::Ok();
}

// SUBPROOF(m, D[lo:hi], b) of §2.1.4.1: `whole` is b, true while D[lo:lo+m] is
// still the subtree the verifier already holds the root of.
Status Subproof(uint64_t m, uint64_t lo, uint64_t hi, bool whole, const RangeHash& range,
                std::vector<std::string>* out) {
  if (m == hi - lo) {
    if (whole) return Status::Ok();
    auto root = range(lo, hi);
    if (!root.ok()) return root.status();
    out->push_back(std::move(*root));
    return Status::Ok();
  }
  const uint64_t k = SplitOf(hi - lo);
  Result<std::string> sibling = m <= k ? range(lo + k, hi) : range(lo, lo + k);
  if (!sibling.ok()) return sibling.status();
  PINGMA_RETURN_IF_ERROR(m <= k ? Subproof(m, lo, lo + k, whole, range, out)
                                : Subproof(m - k, lo + k, hi, false, range, out));
  out->push_back(std::move(*sibling));
  return Status::Ok();
}

// MTH over leaf hashes in memory, as a RangeHash.
RangeHash InMemory(const std::vector<std::string>& leaf_hashes) {
  return [&leaf_hashes](uint64_t lo, uint64_t hi) -> Result<std::string> {
    return Root({leaf_hashes.data() + lo, static_cast<std::size_t>(hi - lo)});
  };
}

bool IsPowerOfTwo(uint64_t n) {
  return n != 0 && (n & (n - 1)) == 0;
}

}  // namespace

std::string LeafHash(std::string_view leaf) {
  std::string material;
  material.reserve(1 + leaf.size());
  material.push_back('\x00');
  material.append(leaf);
  return Sha256(material);
}

std::string NodeHash(std::string_view left, std::string_view right) {
  std::string material;
  material.reserve(1 + left.size() + right.size());
  material.push_back('\x01');
  material.append(left);
  material.append(right);
  return Sha256(material);
}

std::string RootOf(const std::vector<std::string>& leaf_hashes) {
  return Root({leaf_hashes.data(), leaf_hashes.size()});
}

std::vector<std::string> InclusionPath(const std::vector<std::string>& leaf_hashes,
                                       uint64_t index) {
  auto path = InclusionPathOf(index, leaf_hashes.size(), InMemory(leaf_hashes));
  return path.ok() ? std::move(*path) : std::vector<std::string>{};
}

std::vector<std::string> ConsistencyPath(const std::vector<std::string>& leaf_hashes,
                                         uint64_t first) {
  auto path = ConsistencyPathOf(first, leaf_hashes.size(), InMemory(leaf_hashes));
  return path.ok() ? std::move(*path) : std::vector<std::string>{};
}

Result<std::vector<std::string>> InclusionPathOf(uint64_t index, uint64_t tree_size,
                                                 const RangeHash& range) {
  std::vector<std::string> path;
  if (index >= tree_size) return path;
  PINGMA_RETURN_IF_ERROR(Path(index, 0, tree_size, range, &path));
  return path;
}

Result<std::vector<std::string>> ConsistencyPathOf(uint64_t first, uint64_t second,
                                                   const RangeHash& range) {
  std::vector<std::string> path;
  if (first == 0 || first >= second) return path;
  PINGMA_RETURN_IF_ERROR(Subproof(first, 0, second, true, range, &path));
  return path;
}

bool VerifyInclusion(uint64_t index, uint64_t tree_size, std::string_view leaf_hash,
                     const std::vector<std::string>& path, std::string_view root) {
  if (index >= tree_size) return false;
  uint64_t fn = index;
  uint64_t sn = tree_size - 1;
  std::string r(leaf_hash);
  for (const std::string& p : path) {
    if (sn == 0) return false;
    if ((fn & 1) != 0 || fn == sn) {
      r = NodeHash(p, r);
      // fn is a left child with no right sibling at this level: climb until it
      // is a right child (or the root's left edge).
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = NodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn == 0 && r == root;
}

bool VerifyConsistency(uint64_t first, uint64_t second, std::string_view first_root,
                       std::string_view second_root, const std::vector<std::string>& path) {
  if (first > second) return false;
  if (first == second) return path.empty() && first_root == second_root;
  if (first == 0) return path.empty() && first_root == Sha256({});
  if (path.empty()) return false;

  // When the first tree is a complete subtree of the second, its root is the
  // proof's first element (§2.1.4.2 step 2); the proof leaves it out.
  std::vector<std::string> proof;
  proof.reserve(path.size() + 1);
  if (IsPowerOfTwo(first)) proof.emplace_back(first_root);
  proof.insert(proof.end(), path.begin(), path.end());

  uint64_t fn = first - 1;
  uint64_t sn = second - 1;
  while ((fn & 1) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  std::string fr = proof.front();
  std::string sr = proof.front();
  for (std::size_t i = 1; i < proof.size(); ++i) {
    const std::string& c = proof[i];
    if (sn == 0) return false;
    if ((fn & 1) != 0 || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return fr == first_root && sr == second_root && sn == 0;
}

std::string TreeHeadText(const TreeHead& head) {
  return "pingma-log-v1\n" + std::to_string(head.tree_size) + "\n" + HexOf(head.root_hash) + "\n" +
         std::to_string(head.timestamp_ms) + "\n";
}

}  // namespace pingma::registry::merkle
