// The Merkle tree of RFC 9162 §2.1: the reference tree's roots and proofs, every
// inclusion and consistency proof of trees of 1..64 leaves verified and then
// refused once tampered with, and RootOf against the RFC's recursive definition
// written again here for 1..100 leaves.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "store/chain.h"
#include "store/merkle.h"

namespace pingma::registry::merkle {
namespace {

std::string Unhex(std::string_view hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

std::string Flipped(std::string bytes, std::size_t bit) {
  bytes[(bit / 8) % bytes.size()] ^= static_cast<char>(1 << (bit % 8));
  return bytes;
}

// The reference tree of Certificate Transparency's Merkle tree tests: its eight
// leaves, roots, paths and proofs as a Go test wrapping that project's C++ tree
// publishes them (other Merkle tree libraries' tests list the same values). The
// roots are also checked below against the RFC's recursive definition, written
// here on its own.
const std::vector<std::string> kReferenceLeaves = {
    "",
    Unhex("00"),
    Unhex("10"),
    Unhex("2021"),
    Unhex("3031"),
    Unhex("40414243"),
    Unhex("5051525354555657"),
    Unhex("606162636465666768696a6b6c6d6e6f"),
};

// MTH of the first 1..8 reference leaves.
const char* const kReferenceRoots[] = {
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

std::vector<std::string> ReferenceLeafHashes(std::size_t n) {
  std::vector<std::string> hashes;
  for (std::size_t i = 0; i < n; ++i) hashes.push_back(LeafHash(kReferenceLeaves[i]));
  return hashes;
}

std::vector<std::string> HexOfAll(const std::vector<std::string>& hashes) {
  std::vector<std::string> out;
  for (const auto& h : hashes) out.push_back(HexOf(h));
  return out;
}

// Leaf hashes of n distinct entries.
std::vector<std::string> Leaves(std::size_t n) {
  std::vector<std::string> hashes;
  for (std::size_t i = 0; i < n; ++i) hashes.push_back(LeafHash("entry " + std::to_string(i)));
  return hashes;
}

// MTH written out again from §2.1.1, on Sha256 alone: not RootOf, LeafHash or NodeHash.
std::string RecursiveRoot(const std::vector<std::string>& entries, std::size_t begin,
                          std::size_t end) {
  const std::size_t n = end - begin;
  if (n == 0) return Sha256("");
  if (n == 1) return Sha256(std::string(1, '\0') + entries[begin]);
  std::size_t k = 1;
  while (2 * k < n) k *= 2;
  return Sha256("\x01" + RecursiveRoot(entries, begin, begin + k) +
                RecursiveRoot(entries, begin + k, end));
}

// The root hashes no size: a proof binds the tree's size only through its
// shape. Which side each path element hashes in on, by §2.1.3.1 (true: the
// sibling is on the left), leaf end first: a wrong size whose shape is the same
// is taken, any other refused.
std::vector<bool> PathSides(uint64_t m, uint64_t n) {
  if (n <= 1) return {};
  uint64_t k = 1;
  while (2 * k < n) k *= 2;
  auto sides = m < k ? PathSides(m, k) : PathSides(m - k, n - k);
  sides.push_back(m >= k);
  return sides;
}

// The same for §2.1.4.1's SUBPROOF: 'L' a left sibling (into both roots), 'R' a
// right one (the second root only), 'S' the subtree the walk starts from.
std::string ProofShape(uint64_t m, uint64_t n, bool whole) {
  if (m == n) return whole ? "" : "S";
  uint64_t k = 1;
  while (2 * k < n) k *= 2;
  return m <= k ? ProofShape(m, k, whole) + "R" : ProofShape(m - k, n - k, false) + "L";
}

TEST_CASE("the hashes of RFC 9162 §2.1.1: the empty tree, a leaf, a node") {
  CHECK(HexOf(RootOf({})) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(HexOf(LeafHash("")) == kReferenceRoots[0]);
  CHECK(LeafHash("ab") == Sha256(std::string("\x00"
                                             "ab",
                                             3)));
  CHECK(NodeHash("ab", "cd") == Sha256("\x01"
                                       "abcd"));
  CHECK(RootOf({LeafHash("x")}) == LeafHash("x"));
}

TEST_CASE("the reference tree's roots for sizes 1..8") {
  for (std::size_t n = 1; n <= 8; ++n) {
    CAPTURE(n);
    CHECK(HexOf(RootOf(ReferenceLeafHashes(n))) == kReferenceRoots[n - 1]);
  }
}

TEST_CASE("the reference tree's published proofs") {
  const auto leaves = ReferenceLeafHashes(8);
  using Hexes = std::vector<std::string>;
  CHECK(HexOfAll(InclusionPath(leaves, 0)) ==
        Hexes{"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
              "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
              "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"});
  CHECK(HexOfAll(InclusionPath(leaves, 5)) ==
        Hexes{"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
              "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
              "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"});
  CHECK(HexOfAll(ConsistencyPath(leaves, 1)) ==
        Hexes{"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
              "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
              "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"});
  CHECK(HexOfAll(ConsistencyPath(leaves, 6)) ==
        Hexes{"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
              "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
              "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"});
  const auto five = ReferenceLeafHashes(5);
  CHECK(HexOfAll(ConsistencyPath(five, 2)) ==
        Hexes{"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
              "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"});
}

TEST_CASE("RootOf agrees with the recursive definition for 1..100 leaves") {
  std::vector<std::string> entries;
  std::vector<std::string> hashes;
  for (std::size_t n = 1; n <= 100; ++n) {
    entries.push_back(std::string(n % 7, static_cast<char>(n)) + std::to_string(n));
    hashes.push_back(LeafHash(entries.back()));
    CAPTURE(n);
    CHECK(RootOf(hashes) == RecursiveRoot(entries, 0, n));
  }
}

TEST_CASE("every inclusion path of trees of 1..64 leaves verifies, and not once tampered") {
  const auto all = Leaves(65);
  int same_shape = 0;
  for (uint64_t size = 1; size <= 64; ++size) {
    const std::vector<std::string> leaves(all.begin(), all.begin() + size);
    const std::string root = RootOf(leaves);
    for (uint64_t index = 0; index < size; ++index) {
      CAPTURE(size);
      CAPTURE(index);
      const auto path = InclusionPath(leaves, index);
      const std::string& leaf = leaves[index];
      CHECK(VerifyInclusion(index, size, leaf, path, root));

      CHECK_FALSE(VerifyInclusion(index, size, Flipped(leaf, index), path, root));
      CHECK_FALSE(VerifyInclusion(index, size, leaf, path, Flipped(root, 255)));
      for (std::size_t i = 0; i < path.size(); ++i) {
        auto tampered = path;
        tampered[i] = Flipped(tampered[i], i * 37 + index);
        CHECK_FALSE(VerifyInclusion(index, size, leaf, tampered, root));
      }
      if (index > 0) CHECK_FALSE(VerifyInclusion(index - 1, size, leaf, path, root));
      CHECK_FALSE(VerifyInclusion(index + 1, size, leaf, path, root));
      const auto sides = PathSides(index, size);
      CHECK(VerifyInclusion(index, size + 1, leaf, path, root) ==
            (PathSides(index, size + 1) == sides));
      if (size - 1 > index) {
        CHECK(VerifyInclusion(index, size - 1, leaf, path, root) ==
              (PathSides(index, size - 1) == sides));
      }
      same_shape += PathSides(index, size + 1) == sides;
      // A path one element short or long.
      if (!path.empty()) {
        CHECK_FALSE(VerifyInclusion(index, size, leaf, {path.begin(), path.end() - 1}, root));
      }
      auto longer = path;
      longer.push_back(root);
      CHECK_FALSE(VerifyInclusion(index, size, leaf, longer, root));
    }
  }
  MESSAGE("inclusion paths of the same shape for size + 1: " << same_shape);
}

TEST_CASE("out of range: no leaf, no path") {
  const auto leaves = Leaves(5);
  CHECK(InclusionPath(leaves, 5).empty());
  CHECK_FALSE(VerifyInclusion(5, 5, leaves[0], {}, RootOf(leaves)));
  CHECK_FALSE(VerifyInclusion(0, 0, leaves[0], {}, RootOf({})));
  CHECK(InclusionPath({leaves[0]}, 0).empty());
  CHECK(VerifyInclusion(0, 1, leaves[0], {}, leaves[0]));
}

TEST_CASE("consistency: the empty proofs of first == second and first == 0") {
  const auto leaves = Leaves(9);
  const std::string root = RootOf(leaves);
  CHECK(ConsistencyPath(leaves, 9).empty());
  CHECK(ConsistencyPath(leaves, 0).empty());
  CHECK(ConsistencyPath(leaves, 10).empty());
  CHECK(VerifyConsistency(9, 9, root, root, {}));
  CHECK_FALSE(VerifyConsistency(9, 9, root, Flipped(root, 3), {}));
  CHECK_FALSE(VerifyConsistency(9, 9, root, root, {root}));
  CHECK(VerifyConsistency(0, 9, RootOf({}), root, {}));
  CHECK_FALSE(VerifyConsistency(0, 9, root, root, {}));
  CHECK_FALSE(VerifyConsistency(0, 9, RootOf({}), root, {root}));
  CHECK_FALSE(VerifyConsistency(9, 8, root, root, {}));
  CHECK_FALSE(VerifyConsistency(3, 9, RootOf({leaves[0], leaves[1], leaves[2]}), root, {}));
}

TEST_CASE("every consistency proof between sizes 1..64 verifies, and not once tampered") {
  const auto all = Leaves(65);
  std::vector<std::string> roots = {RootOf({})};
  for (std::size_t n = 1; n <= 65; ++n) roots.push_back(RootOf({all.begin(), all.begin() + n}));
  int same_shape = 0;
  for (uint64_t second = 1; second <= 64; ++second) {
    const std::vector<std::string> leaves(all.begin(), all.begin() + second);
    for (uint64_t first = 1; first <= second; ++first) {
      CAPTURE(first);
      CAPTURE(second);
      const auto path = ConsistencyPath(leaves, first);
      const std::string& r1 = roots[first];
      const std::string& r2 = roots[second];
      CHECK(path.empty() == (first == second));
      CHECK(VerifyConsistency(first, second, r1, r2, path));

      CHECK_FALSE(VerifyConsistency(first, second, Flipped(r1, first), r2, path));
      CHECK_FALSE(VerifyConsistency(first, second, roots[first - 1], r2, path));
      CHECK_FALSE(VerifyConsistency(first, second, r1, Flipped(r2, second), path));
      for (std::size_t i = 0; i < path.size(); ++i) {
        auto tampered = path;
        tampered[i] = Flipped(tampered[i], i * 41 + first);
        CHECK_FALSE(VerifyConsistency(first, second, r1, r2, tampered));
      }
      if (first > 1) CHECK_FALSE(VerifyConsistency(first - 1, second, r1, r2, path));
      if (first < second) CHECK_FALSE(VerifyConsistency(first + 1, second, r1, r2, path));
      const std::string shape = ProofShape(first, second, true);
      if (second > first) {
        CHECK(VerifyConsistency(first, second - 1, r1, r2, path) ==
              (ProofShape(first, second - 1, true) == shape));
      }
      CHECK(VerifyConsistency(first, second + 1, r1, r2, path) ==
            (ProofShape(first, second + 1, true) == shape));
      same_shape += ProofShape(first, second + 1, true) == shape;
      // And the honest proof for second + 1 does not pass for second.
      const auto next = ConsistencyPath({all.begin(), all.begin() + second + 1}, first);
      CHECK_FALSE(VerifyConsistency(first, second, r1, r2, next));
      CHECK(VerifyConsistency(first, second + 1, r1, roots[second + 1], next));
    }
  }
  MESSAGE("consistency proofs of the same shape for second + 1: " << same_shape);
}

}  // namespace
}  // namespace pingma::registry::merkle
