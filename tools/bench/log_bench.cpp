// pingma-bench-log: the verifiable log's proofs from its stored tiles
// (registry/src/store/log_tree.h, log_rows.h), timed at two sizes of log.
//
// Two SQLite stores are filled with the tiles of a tree of 10,000 leaves and of
// one of 10,000,000 (the leaves are hashes of "leaf i": proofs need only the
// tiles). Then, on each, the same number of inclusion proofs of random leaves
// and consistency proofs from random sizes, into the whole tree, every call
// timed alone, read from the store as the registry reads them (one SELECT a
// tile, no cache). The 10,000-leaf tree is the baseline: the larger one's p50
// and p99 are given as ratios of it, measured in the same run. Beside them the
// floor: one tile read by its key, what each proof does a few times.
//
//   pingma-bench-log [--proofs 20000] [--large 10000000] [--dir DIR]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "store/log_rows.h"
#include "store/log_tree.h"
#include "store/merkle.h"
#include "store/sqlite.h"
#include "store/store.h"

namespace logtree = pingma::registry::logtree;
namespace logrows = pingma::registry::logrows;
namespace merkle = pingma::registry::merkle;
using pingma::registry::Conn;
using Steady = std::chrono::steady_clock;

namespace {

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "pingma-bench-log: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T Must(pingma::Result<T> r, const char* what) {
  if (!r.ok()) Fail(fmt::format("{}: {}", what, r.status().message()));
  return std::move(*r);
}

void Must(const pingma::Status& s, const char* what) {
  if (!s.ok()) Fail(fmt::format("{}: {}", what, s.message()));
}

std::unique_ptr<Conn> Open(const std::string& path, bool create) {
  auto db = Must(pingma::sql::SqliteDatabase::Open(path, create, /*read_only=*/!create), "open");
  return std::make_unique<Conn>(std::move(db));
}

// A store holding the tiles of a tree of `size` leaves.
std::string Build(const std::string& dir, std::uint64_t size) {
  const std::string path = fmt::format("{}/log-{}.db", dir, size);
  std::filesystem::remove(path);
  auto conn = Open(path, true);
  Must(conn->db().Exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; "
                       "CREATE TABLE log_tiles(id INTEGER PRIMARY KEY, hashes BLOB NOT NULL)"),
       "schema");
  logtree::Frontier frontier;
  const auto started = Steady::now();
  Must(conn->db().Exec("BEGIN"), "begin");
  for (std::uint64_t i = 0; i < size; ++i) {
    frontier.Append(merkle::LeafHash("leaf " + std::to_string(i)));
    if ((i + 1) % (1 << 20) == 0 || i + 1 == size) {
      Must(logrows::WriteTiles(*conn, frontier.TakeChanged()), "tiles");
      Must(conn->db().Exec("COMMIT; BEGIN"), "commit");
      if (size > 1000000) {
        std::fprintf(stderr, "\r  tree of %llu leaves: %llu written",
                     static_cast<unsigned long long>(size), static_cast<unsigned long long>(i + 1));
      }
    }
  }
  Must(conn->db().Exec("COMMIT"), "commit");
  if (size > 1000000) std::fprintf(stderr, "\n");
  std::printf("  built %llu leaves in %.1f s: %.0f MB\n", static_cast<unsigned long long>(size),
              std::chrono::duration<double>(Steady::now() - started).count(),
              static_cast<double>(std::filesystem::file_size(path)) / 1e6);
  return path;
}

struct Timing {
  double p50 = 0, p99 = 0;
};

Timing Percentiles(std::vector<double> us) {
  std::sort(us.begin(), us.end());
  return {us[us.size() / 2], us[us.size() * 99 / 100]};
}

struct Result {
  Timing inclusion, consistency, tile_read;
  double tiles_per_proof = 0;
};

Result Measure(const std::string& db_path, std::uint64_t size, int proofs, std::uint64_t seed,
               logtree::NodeCache* cache) {
  auto conn = Open(db_path, false);
  Must(conn->db().Exec("PRAGMA cache_size=-65536"), "cache");  // as the registry's readers
  int reads = 0;
  const logtree::TileSource stored = logrows::TilesIn(*conn);
  const logtree::TileSource counted = [&](int level, std::uint64_t index) {
    ++reads;
    return stored(level, index);
  };
  std::mt19937_64 random(seed);
  std::uniform_int_distribution<std::uint64_t> any_leaf(0, size - 1);
  std::uniform_int_distribution<std::uint64_t> any_first(1, size - 1);
  std::vector<double> inclusion, consistency, tile_read;
  for (int i = 0; i < proofs; ++i) {
    const std::uint64_t index = any_leaf(random);
    const auto t0 = Steady::now();
    auto path = merkle::InclusionPathOf(index, size, logtree::RangeOver(counted, cache));
    inclusion.push_back(std::chrono::duration<double, std::micro>(Steady::now() - t0).count());
    if (!path.ok()) Fail(path.status().message());
  }
  const int inclusion_reads = reads;
  for (int i = 0; i < proofs; ++i) {
    const std::uint64_t first = any_first(random);
    const auto t0 = Steady::now();
    auto path = merkle::ConsistencyPathOf(first, size, logtree::RangeOver(counted, cache));
    consistency.push_back(std::chrono::duration<double, std::micro>(Steady::now() - t0).count());
    if (!path.ok()) Fail(path.status().message());
  }
  for (int i = 0; i < proofs; ++i) {
    const std::uint64_t tile = any_leaf(random) / logtree::kTileWidth;
    const auto t0 = Steady::now();
    auto hashes = stored(0, tile);
    tile_read.push_back(std::chrono::duration<double, std::micro>(Steady::now() - t0).count());
    if (!hashes.ok() || hashes->empty()) Fail("a tile is missing");
  }
  return {Percentiles(inclusion), Percentiles(consistency), Percentiles(tile_read),
          static_cast<double>(inclusion_reads) / proofs};
}

void Print(const char* what, std::uint64_t size, const Result& r) {
  std::printf(
      "  %-8s %10llu leaves: inclusion p50 %6.1f us p99 %6.1f us (%.1f tiles a proof); "
      "consistency p50 %6.1f us p99 %6.1f us; one tile read p50 %5.1f us p99 %6.1f us\n",
      what, static_cast<unsigned long long>(size), r.inclusion.p50, r.inclusion.p99,
      r.tiles_per_proof, r.consistency.p50, r.consistency.p99, r.tile_read.p50, r.tile_read.p99);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("pingma-bench-log: the verifiable log's proofs at 10,000 and 10,000,000 leaves");
  int proofs = 20000;
  std::uint64_t large = 10000000;
  std::string dir;
  std::uint64_t seed = 1;
  app.add_option("--proofs", proofs, "proofs of each kind timed on each tree")
      ->capture_default_str();
  app.add_option("--large", large, "leaves of the large tree")->capture_default_str();
  app.add_option("--dir", dir, "where the stores are made (default: a temporary folder)");
  app.add_option("--seed", seed, "random seed")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  const bool own_dir = dir.empty();
  if (own_dir) {
    char templ[] = "/tmp/pingma-bench-log-XXXXXX";
    if (!mkdtemp(templ)) Fail("cannot make a temporary folder");
    dir = templ;
  }
  std::printf("pingma-bench-log: %d proofs of each kind, each timed alone\n", proofs);
  const std::uint64_t small = 10000;
  const std::string small_path = Build(dir, small);
  const std::string large_path = Build(dir, large);
  // The small tree again after the large one was built, so that the two are
  // measured with the machine in the same state.
  // As the registry answers them: the nodes above the tiles of leaves kept in
  // memory as proofs compute them (a first pass, not timed, fills the cache).
  // Then with no cache at all: every node from its tile.
  for (bool with_cache : {true, false}) {
    logtree::NodeCache small_cache, large_cache;
    if (with_cache) {
      Measure(small_path, small, proofs, seed + 1, &small_cache);
      Measure(large_path, large, proofs, seed + 1, &large_cache);
    }
    const Result base =
        Measure(small_path, small, proofs, seed, with_cache ? &small_cache : nullptr);
    const Result big =
        Measure(large_path, large, proofs, seed, with_cache ? &large_cache : nullptr);
    std::printf("%s\n", with_cache ? "as served (the nodes above the leaves' tiles in memory):"
                                   : "no cache (every node from its tile):");
    Print("baseline", small, base);
    Print("large", large, big);
    std::printf(
        "  ratio %llu / %llu leaves: inclusion p50 %.2f, p99 %.2f (goal p99 <= 2); consistency "
        "p50 %.2f, p99 %.2f\n",
        static_cast<unsigned long long>(large), static_cast<unsigned long long>(small),
        big.inclusion.p50 / base.inclusion.p50, big.inclusion.p99 / base.inclusion.p99,
        big.consistency.p50 / base.consistency.p50, big.consistency.p99 / base.consistency.p99);
  }
  if (own_dir) std::filesystem::remove_all(dir);
  return 0;
}
