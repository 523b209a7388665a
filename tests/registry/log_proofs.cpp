// Prints the proofs of the registry's stored tree (store/log_tree.h) for the
// independent verifier of tests/integration/log_proofs_test.py, which checks
// them from RFC 9162 alone. Leaf i's bytes are "leaf i" (ASCII).
//
//   log_proofs --sizes 1-300 --all      every size: its root, every inclusion
//                                       proof and every consistency proof
//   log_proofs --size N --sample K [--seed S]
//                                       a tree of N leaves: its root, K inclusion
//                                       proofs and K consistency proofs from it
//
// One JSON object a line: {"size", "root"}, {"size", "index", "inclusion"},
// {"size", "first", "consistency"}; hashes in lower-case hex.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "store/chain.h"
#include "store/log_tree.h"
#include "store/merkle.h"

namespace {

using pingma::registry::HexOf;
namespace logtree = pingma::registry::logtree;
namespace merkle = pingma::registry::merkle;

// The tiles in memory, as the store would hold them.
struct Tiles {
  std::map<std::pair<int, std::uint64_t>, std::string> stored;
  logtree::TileSource source = [this](int level, std::uint64_t index) {
    auto it = stored.find({level, index});
    return pingma::Result<std::string>(it == stored.end() ? std::string() : it->second);
  };
  void Keep(logtree::Frontier& frontier) {
    for (auto& tile : frontier.TakeChanged()) stored[{tile.level, tile.index}] = tile.hashes;
  }
};

std::string Leaf(std::uint64_t i) {
  return merkle::LeafHash("leaf " + std::to_string(i));
}

std::string Path(const pingma::Result<std::vector<std::string>>& path) {
  if (!path.ok()) {
    std::fprintf(stderr, "log_proofs: %s\n", path.status().message().c_str());
    std::exit(1);
  }
  std::string out = "[";
  for (const std::string& hash : *path) {
    if (out.size() > 1) out += ",";
    out += "\"" + HexOf(hash) + "\"";
  }
  return out + "]";
}

void PrintRoot(std::uint64_t size, const std::string& root) {
  std::printf("{\"size\":%llu,\"root\":\"%s\"}\n", static_cast<unsigned long long>(size),
              HexOf(root).c_str());
}

void PrintInclusion(const Tiles& tiles, std::uint64_t size, std::uint64_t index) {
  std::printf("{\"size\":%llu,\"index\":%llu,\"inclusion\":%s}\n",
              static_cast<unsigned long long>(size), static_cast<unsigned long long>(index),
              Path(merkle::InclusionPathOf(index, size, logtree::RangeOver(tiles.source))).c_str());
}

void PrintConsistency(const Tiles& tiles, std::uint64_t first, std::uint64_t size) {
  std::printf(
      "{\"size\":%llu,\"first\":%llu,\"consistency\":%s}\n", static_cast<unsigned long long>(size),
      static_cast<unsigned long long>(first),
      Path(merkle::ConsistencyPathOf(first, size, logtree::RangeOver(tiles.source))).c_str());
}

int Usage() {
  std::fprintf(stderr,
               "usage: log_proofs --sizes FROM-TO --all | --size N --sample K [--seed S]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t from = 0, to = 0, size = 0, sample = 0, seed = 1;
  bool all = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    if (arg == "--all") {
      all = true;
    } else if (arg == "--sizes" && value &&
               std::sscanf(value, "%llu-%llu", reinterpret_cast<unsigned long long*>(&from),
                           reinterpret_cast<unsigned long long*>(&to)) == 2) {
      ++i;
    } else if (arg == "--size" && value) {
      size = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--sample" && value) {
      sample = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--seed" && value) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else {
      return Usage();
    }
  }
  Tiles tiles;
  logtree::Frontier frontier;
  if (all && from >= 1 && from <= to) {
    // One tree, grown a leaf at a time: at each size the stored tiles are what a
    // log of that size holds.
    for (std::uint64_t n = 1; n <= to; ++n) {
      frontier.Append(Leaf(n - 1));
      tiles.Keep(frontier);
      if (n < from) continue;
      PrintRoot(n, frontier.Root());
      for (std::uint64_t index = 0; index < n; ++index) PrintInclusion(tiles, n, index);
      for (std::uint64_t first = 1; first <= n; ++first) PrintConsistency(tiles, first, n);
    }
    return 0;
  }
  if (size == 0 || sample == 0) return Usage();
  for (std::uint64_t i = 0; i < size; ++i) {
    frontier.Append(Leaf(i));
    if (i % 4096 == 4095) tiles.Keep(frontier);
  }
  tiles.Keep(frontier);
  PrintRoot(size, frontier.Root());
  std::mt19937_64 random(seed);
  std::uniform_int_distribution<std::uint64_t> any_leaf(0, size - 1);
  for (std::uint64_t k = 0; k < sample; ++k) {
    // The ends, where the tree's edges are, then anywhere.
    const std::uint64_t index = k == 0 ? 0 : k == 1 ? size - 1 : any_leaf(random);
    PrintInclusion(tiles, size, index);
  }
  std::uniform_int_distribution<std::uint64_t> any_first(1, size - 1);
  for (std::uint64_t k = 0; k < sample; ++k) {
    const std::uint64_t first = k == 0 ? 1 : k == 1 ? size - 1 : k == 2 ? 65536 : any_first(random);
    PrintConsistency(tiles, std::min(first, size), size);
  }
  return 0;
}
