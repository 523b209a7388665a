// The stored tree (store/log_tree.h): the tiles a Frontier writes give the same
// roots and proofs as the tree in memory (merkle.h) at every size to 700, across
// the tiles' edges; a Frontier loaded from the tiles at any size goes on as if it
// had never stopped; a tile with too few hashes is Corruption, not a wrong hash.
#include <doctest/doctest.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "store/chain.h"
#include "store/log_tree.h"
#include "store/merkle.h"

namespace pingma::registry::logtree {
namespace {

struct Tiles {
  std::map<std::pair<int, std::uint64_t>, std::string> stored;
  int reads = 0;
  TileSource source = [this](int level, std::uint64_t index) {
    ++reads;
    auto it = stored.find({level, index});
    return Result<std::string>(it == stored.end() ? std::string() : it->second);
  };
  void Keep(Frontier& frontier) {
    for (auto& tile : frontier.TakeChanged()) {
      CHECK(tile.count() <= kTileWidth);
      stored[{tile.level, tile.index}] = tile.hashes;
    }
  }
};

std::string Leaf(std::uint64_t i) {
  return merkle::LeafHash("leaf " + std::to_string(i));
}

TEST_CASE("the tiles' roots and proofs are the tree's, at every size to 700") {
  Tiles tiles;
  Frontier frontier;
  std::vector<std::string> leaves;
  CHECK(frontier.Root() == Sha256({}));
  for (std::uint64_t n = 1; n <= 700; ++n) {
    leaves.push_back(Leaf(n - 1));
    frontier.Append(leaves.back());
    tiles.Keep(frontier);
    CAPTURE(n);
    REQUIRE(frontier.size() == n);
    const std::string root = merkle::RootOf(leaves);
    REQUIRE(frontier.Root() == root);
    REQUIRE(*StoredRange(tiles.source, 0, n) == root);
    // The proofs at the sizes where the tiles change shape, and a few between.
    if (n % kTileWidth > 2 && n % kTileWidth < kTileWidth - 2 && n % 37 != 0) continue;
    for (std::uint64_t i = 0; i < n; ++i) {
      auto path = merkle::InclusionPathOf(i, n, RangeOver(tiles.source));
      REQUIRE(path.ok());
      REQUIRE(*path == merkle::InclusionPath(leaves, i));
      REQUIRE(merkle::VerifyInclusion(i, n, leaves[i], *path, root));
    }
    for (std::uint64_t m = 1; m <= n; ++m) {
      auto path = merkle::ConsistencyPathOf(m, n, RangeOver(tiles.source));
      REQUIRE(path.ok());
      REQUIRE(*path == merkle::ConsistencyPath(leaves, m));
    }
  }
  // 700 leaves: ten full tiles of 64 leaves and an eleventh of 60; level 1 holds
  // the roots of the ten full ones.
  static_assert(kTileWidth == 64, "the figures below are for tiles of 64");
  CHECK(tiles.stored.size() == 12);
  CHECK(tiles.stored.at({0, 10}).size() == 60 * kHashSize);
  CHECK(tiles.stored.at({1, 0}).size() == 10 * kHashSize);
  CHECK(tiles.stored.at({1, 0}).substr(0, kHashSize) ==
        merkle::RootOf(std::vector<std::string>(leaves.begin(), leaves.begin() + 64)));
}

TEST_CASE("a Frontier loaded from the tiles goes on as if it had never stopped") {
  Tiles tiles;
  Frontier whole;
  std::vector<std::string> leaves;
  for (std::uint64_t n = 0; n < 70000; ++n) {
    leaves.push_back(Leaf(n));
    whole.Append(leaves.back());
  }
  tiles.Keep(whole);
  for (std::uint64_t size :
       {0ULL, 1ULL, 255ULL, 256ULL, 257ULL, 511ULL, 65535ULL, 65536ULL, 65537ULL, 69999ULL}) {
    CAPTURE(size);
    auto loaded = Frontier::Load(tiles.source, size);
    REQUIRE(loaded.ok());
    CHECK(loaded->size() == size);
    CHECK(loaded->Root() == merkle::RootOf(std::vector<std::string>(
                                leaves.begin(), leaves.begin() + static_cast<long>(size))));
    for (std::uint64_t i = size; i < 70000; ++i) loaded->Append(leaves[i]);
    CHECK(loaded->Root() == whole.Root());
  }
  // A node of height 12 is one tile of level 2: reading it reads one tile; and
  // once in a NodeCache, none.
  tiles.reads = 0;
  NodeCache cache;
  auto node = StoredNode(tiles.source, 12, 0, &cache);
  REQUIRE(node.ok());
  CHECK(*node == merkle::RootOf(std::vector<std::string>(leaves.begin(), leaves.begin() + 4096)));
  CHECK(tiles.reads == 1);
  CHECK(*StoredNode(tiles.source, 12, 0, &cache) == *node);
  CHECK(tiles.reads == 1);
}

TEST_CASE("a tile with fewer hashes than the tree needs is Corruption") {
  Tiles tiles;
  Frontier frontier;
  for (std::uint64_t n = 0; n < 300; ++n) frontier.Append(Leaf(n));
  tiles.Keep(frontier);
  // 300 leaves: the newest tile of leaves is 0/4, of 44.
  tiles.stored[{0, 4}].resize(10 * kHashSize);
  auto loaded = Frontier::Load(tiles.source, 300);
  REQUIRE_FALSE(loaded.ok());
  CHECK(loaded.status().code() == StatusCode::kCorruption);
  CHECK(loaded.status().message().find("tile 0/4 holds 10 hashes") != std::string::npos);
  auto range = StoredRange(tiles.source, 0, 300);
  REQUIRE_FALSE(range.ok());
  CHECK(range.status().code() == StatusCode::kCorruption);
  // What the short tile still holds is read as it is.
  CHECK(StoredRange(tiles.source, 256, 266).ok());
}

}  // namespace
}  // namespace pingma::registry::logtree
