// The log's Merkle tree (RFC 9162 §2.1) as the store keeps it: in tiles, as Go's
// sumdb keeps its tree (golang.org/x/mod/sumdb/tlog). A tile at level t holds the
// hashes of up to 64 consecutive complete nodes of height 6t: level 0 the leaf
// hashes, level 1 the roots of each 64 leaves, and so on. Any complete node is
// then the root of at most 32 stored hashes of one tile, a proof reads
// O(log n / 6) tiles whatever the log's size, and the tree holds 32 bytes of
// hashes a leaf (and 1/63 of that for the levels above). Only the newest tile of
// each level changes as the log grows; the others are written once, full. 64
// hashes (2 KiB) are one page of SQLite's to read, where 256 (8 KiB) took an
// overflow chain, and a proof hashes at most 63 times within one, where 256 took
// 255 (BENCHMARKS.md §14: why 64, and the sizes tried).
//
// Pure functions and one class over a TileSource; log_rows.h reads and writes the
// tiles in a store.
//
// Thread-safety: the functions may be called from any thread; a Frontier is one
// thread's at a time.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "pingma/common/status.h"
#include "store/merkle.h"

namespace pingma::registry::logtree {

inline constexpr int kTileHeight = 6;
inline constexpr std::uint64_t kTileWidth = std::uint64_t{1} << kTileHeight;
inline constexpr std::size_t kHashSize = 32;

/// One tile: the hashes (32 raw bytes each, concatenated) of the nodes of height
/// kTileHeight × level numbered index × kTileWidth onwards.
struct Tile {
  int level = 0;
  std::uint64_t index = 0;
  std::string hashes;

  std::uint64_t count() const { return hashes.size() / kHashSize; }
};

/// The stored hashes of tile (level, index); empty when it is not stored.
using TileSource = std::function<Result<std::string>(int level, std::uint64_t index)>;

/// The hashes of the complete nodes above the tiles of leaves (height 6 and up),
/// kept in memory as the proofs compute them: a complete node never changes, and
/// these are 1/32 of the tree (312,500 at 10,000,000 leaves), so that a proof
/// reads and hashes only within one tile of leaves. Bounded (524,288 nodes, some
/// 34 MB: the whole of them up to 16 million leaves); once full it keeps what it
/// has. Thread-safe.
class NodeCache {
 public:
  explicit NodeCache(std::size_t max_nodes = std::size_t{1} << 19) : max_nodes_(max_nodes) {}
  std::optional<std::string> Find(int height, std::uint64_t index) const;
  void Keep(int height, std::uint64_t index, const std::string& hash);

 private:
  static std::uint64_t Key(int height, std::uint64_t index) {
    return (static_cast<std::uint64_t>(height) << 58) | index;
  }
  const std::size_t max_nodes_;
  mutable std::mutex mu_;
  std::unordered_map<std::uint64_t, std::array<char, kHashSize>> nodes_;  ///< under mu_
};

/// The hash of the complete node of `height` whose leaves are index × 2^height
/// onwards, from the tiles (and `cache`, when given). Corruption when the tiles
/// do not hold it.
Result<std::string> StoredNode(const TileSource& tiles, int height, std::uint64_t index,
                               NodeCache* cache = nullptr);

/// MTH(D[lo:hi]) from the tiles (0 <= lo < hi): the node itself when the range
/// is one, else split as the RFC splits.
Result<std::string> StoredRange(const TileSource& tiles, std::uint64_t lo, std::uint64_t hi,
                                NodeCache* cache = nullptr);

/// StoredRange as the proofs of merkle.h take it, for one proof: each tile it
/// needs is read once.
merkle::RangeHash RangeOver(const TileSource& tiles, NodeCache* cache = nullptr);

/// The root of a perfect tree over `count` (a power of two) concatenated hashes.
std::string PerfectRoot(std::string_view hashes, std::uint64_t count);

/// The tree's growing edge: the newest tile of each level, which is all that
/// appending a leaf reads or changes, and all the root needs.
class Frontier {
 public:
  Frontier() = default;
  /// The edge of the stored tree of `size` leaves (reads one tile a level).
  /// Corruption when a tile holds fewer hashes than the size needs.
  static Result<Frontier> Load(const TileSource& tiles, std::uint64_t size);

  std::uint64_t size() const { return size_; }
  /// Appends the leaf whose hash (LeafHash) is `leaf_hash`.
  void Append(std::string_view leaf_hash);
  /// MTH of the tree so far (the empty tree's: SHA-256 of nothing).
  std::string Root() const;
  /// The tiles that appends since the last call completed or extended, to be
  /// stored (a complete one once, the newest of each level as it stands now).
  std::vector<Tile> TakeChanged();

 private:
  std::uint64_t size_ = 0;
  /// Level t: the hashes in the newest tile of level t (fewer than 64; a full
  /// tile is moved to changed_ and its root carried up a level).
  std::vector<std::string> edge_;
  std::vector<bool> edge_changed_;
  std::map<std::pair<int, std::uint64_t>, std::string> completed_;
};

}  // namespace pingma::registry::logtree
