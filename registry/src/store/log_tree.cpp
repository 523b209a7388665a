#include "store/log_tree.h"

#include <fmt/format.h>

#include "store/chain.h"

namespace pingma::registry::logtree {
namespace {

// The largest power of two smaller than n (n > 1): where the RFC splits.
std::uint64_t SplitOf(std::uint64_t n) {
  std::uint64_t k = 1;
  while (k << 1 < n) k <<= 1;
  return k;
}

bool IsPowerOfTwo(std::uint64_t n) {
  return n != 0 && (n & (n - 1)) == 0;
}

std::string_view HashAt(std::string_view hashes, std::uint64_t i) {
  return hashes.substr(i * kHashSize, kHashSize);
}

// The levels a tree's size reaches: those of its nodes' heights, 8 apart, that
// have at least one complete node.
bool LevelReached(std::uint64_t size, int level) {
  return level * kTileHeight < 64 && (size >> (level * kTileHeight)) > 0;
}

}  // namespace

std::string PerfectRoot(std::string_view hashes, std::uint64_t count) {
  if (count == 1) return std::string(HashAt(hashes, 0));
  std::string level(hashes.substr(0, count * kHashSize));
  for (std::uint64_t n = count; n > 1; n /= 2) {
    for (std::uint64_t i = 0; i < n / 2; ++i) {
      const std::string parent = merkle::NodeHash(HashAt(level, 2 * i), HashAt(level, 2 * i + 1));
      level.replace(i * kHashSize, kHashSize, parent);
    }
  }
  level.resize(kHashSize);
  return level;
}

Result<std::string> StoredNode(const TileSource& tiles, int height, std::uint64_t index) {
  const int level = height / kTileHeight;
  const int rest = height % kTileHeight;
  const std::uint64_t first = index << rest;
  const std::uint64_t count = std::uint64_t{1} << rest;
  const std::uint64_t tile_index = first / kTileWidth;
  const std::uint64_t offset = first % kTileWidth;
  auto tile = tiles(level, tile_index);
  if (!tile.ok()) return tile.status();
  if (tile->size() < (offset + count) * kHashSize) {
    return Status::Corruption(fmt::format(
        "the log's tile {}/{} holds {} hashes; the tree needs {} of them (node of height {}, "
        "index {})",
        level, tile_index, tile->size() / kHashSize, offset + count, height, index));
  }
  return PerfectRoot(std::string_view(*tile).substr(offset * kHashSize), count);
}

Result<std::string> StoredRange(const TileSource& tiles, std::uint64_t lo, std::uint64_t hi) {
  const std::uint64_t n = hi - lo;
  if (IsPowerOfTwo(n) && lo % n == 0) {
    const int height = __builtin_ctzll(n);
    return StoredNode(tiles, height, lo >> height);
  }
  const std::uint64_t k = SplitOf(n);
  auto left = StoredRange(tiles, lo, lo + k);
  if (!left.ok()) return left.status();
  auto right = StoredRange(tiles, lo + k, hi);
  if (!right.ok()) return right.status();
  return merkle::NodeHash(*left, *right);
}

merkle::RangeHash RangeOver(const TileSource& tiles) {
  return [&tiles](std::uint64_t lo, std::uint64_t hi) { return StoredRange(tiles, lo, hi); };
}

Result<Frontier> Frontier::Load(const TileSource& tiles, std::uint64_t size) {
  Frontier f;
  f.size_ = size;
  for (int level = 0; LevelReached(size, level); ++level) {
    const std::uint64_t complete = size >> (level * kTileHeight);
    const std::uint64_t in_tile = complete % kTileWidth;
    std::string edge;
    if (in_tile > 0) {
      const std::uint64_t tile_index = complete / kTileWidth;
      auto tile = tiles(level, tile_index);
      if (!tile.ok()) return tile.status();
      if (tile->size() < in_tile * kHashSize) {
        return Status::Corruption(
            fmt::format("the log's tile {}/{} holds {} hashes; a tree of {} leaves needs {}", level,
                        tile_index, tile->size() / kHashSize, size, in_tile));
      }
      edge = tile->substr(0, in_tile * kHashSize);
    }
    f.edge_.push_back(std::move(edge));
    f.edge_changed_.push_back(false);
  }
  return f;
}

void Frontier::Append(std::string_view leaf_hash) {
  ++size_;
  std::string carried(leaf_hash);
  for (int level = 0;; ++level) {
    if (edge_.size() <= static_cast<std::size_t>(level)) {
      edge_.emplace_back();
      edge_changed_.push_back(false);
    }
    std::string& edge = edge_[level];
    edge.append(carried);
    edge_changed_[level] = true;
    if (edge.size() < kTileWidth * kHashSize) return;
    // The tile is full: stored once as it is, its root carried up a level.
    const std::uint64_t tile_index = (size_ >> (level * kTileHeight)) / kTileWidth - 1;
    carried = PerfectRoot(edge, kTileWidth);
    completed_[{level, tile_index}] = std::move(edge);
    edge.clear();
    edge_changed_[level] = false;
  }
}

std::string Frontier::Root() const {
  if (size_ == 0) return Sha256({});
  // MTH of n leaves is the perfect subtree of n's highest bit, then MTH of the
  // rest: the perfect subtrees of n's bits, folded from the smallest.
  std::string root;
  for (int height = 0; height < 64; ++height) {
    if (((size_ >> height) & 1) == 0) continue;
    const int level = height / kTileHeight;
    const int rest = height % kTileHeight;
    const std::uint64_t tile_start = (size_ >> (level * kTileHeight)) / kTileWidth * kTileWidth;
    const std::uint64_t first = ((size_ >> height) - 1) << rest;
    const std::string node =
        PerfectRoot(std::string_view(edge_[level]).substr((first - tile_start) * kHashSize),
                    std::uint64_t{1} << rest);
    root = root.empty() ? node : merkle::NodeHash(node, root);
  }
  return root;
}

std::vector<Tile> Frontier::TakeChanged() {
  std::vector<Tile> out;
  for (auto& [key, hashes] : completed_) out.push_back({key.first, key.second, std::move(hashes)});
  completed_.clear();
  for (std::size_t level = 0; level < edge_.size(); ++level) {
    if (!edge_changed_[level] || edge_[level].empty()) continue;
    const std::uint64_t tile_index = (size_ >> (level * kTileHeight)) / kTileWidth;
    out.push_back({static_cast<int>(level), tile_index, edge_[level]});
    edge_changed_[level] = false;
  }
  return out;
}

}  // namespace pingma::registry::logtree
