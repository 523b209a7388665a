#include "store/log_tree.h"

#include <algorithm>
#include <memory>

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

std::optional<std::string> NodeCache::Find(int height, std::uint64_t index) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = nodes_.find(Key(height, index));
  if (it == nodes_.end()) return std::nullopt;
  return std::string(it->second.data(), kHashSize);
}

void NodeCache::Keep(int height, std::uint64_t index, const std::string& hash) {
  std::lock_guard<std::mutex> lock(mu_);
  if (nodes_.size() >= max_nodes_ || hash.size() != kHashSize) return;
  std::array<char, kHashSize> kept;
  std::copy(hash.begin(), hash.end(), kept.begin());
  nodes_.emplace(Key(height, index), kept);
}

Result<std::string> StoredNode(const TileSource& tiles, int height, std::uint64_t index,
                               NodeCache* cache) {
  const bool cached = cache != nullptr && height >= kTileHeight;
  if (cached) {
    if (auto hash = cache->Find(height, index)) return std::move(*hash);
  }
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
  std::string hash = PerfectRoot(std::string_view(*tile).substr(offset * kHashSize), count);
  if (cached) cache->Keep(height, index, hash);
  return hash;
}

Result<std::string> StoredRange(const TileSource& tiles, std::uint64_t lo, std::uint64_t hi,
                                NodeCache* cache) {
  const std::uint64_t n = hi - lo;
  if (IsPowerOfTwo(n) && lo % n == 0) {
    const int height = __builtin_ctzll(n);
    return StoredNode(tiles, height, lo >> height, cache);
  }
  const std::uint64_t k = SplitOf(n);
  auto left = StoredRange(tiles, lo, lo + k, cache);
  if (!left.ok()) return left.status();
  auto right = StoredRange(tiles, lo + k, hi, cache);
  if (!right.ok()) return right.status();
  return merkle::NodeHash(*left, *right);
}

merkle::RangeHash RangeOver(const TileSource& tiles, NodeCache* cache) {
  // A proof asks for up to eight nodes of the same tile of leaves: each tile is
  // read once for the proof (the RangeHash lives as long as one proof).
  auto read = std::make_shared<std::map<std::pair<int, std::uint64_t>, std::string>>();
  TileSource once = [&tiles, read](int level, std::uint64_t index) -> Result<std::string> {
    if (auto it = read->find({level, index}); it != read->end()) return it->second;
    auto tile = tiles(level, index);
    if (tile.ok()) read->emplace(std::pair{level, index}, *tile);
    return tile;
  };
  return [once = std::move(once), cache](std::uint64_t lo, std::uint64_t hi) {
    return StoredRange(once, lo, hi, cache);
  };
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
