// The verifiable log's rows in a store (schema/sqlite.sql, pg/0006): each
// event's leaf, the tree's tiles (log_tree.h), the signed heads and the public
// keys that signed them; and the check of all of them against the events that
// `pingma-registry verify` runs.
//
// Thread-safety: every function runs on the caller's connection, one thread at a
// time per connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "pingma/common/domain.h"
#include "pingma/common/status.h"
#include "store/log_tree.h"
#include "store/merkle.h"

namespace pingma::registry {

class Conn;    // store.h
struct Event;  // store.h

namespace logrows {

/// The bytes of the event of `seq` as a leaf of the log: one JSON object, its
/// fields in this order and nothing else, the body as the store keeps it:
/// {"seq":N,"id":"…","code":"…" or null,"type":"…","at":UNIX_MS,
///  "actor_role":"…","actor_id":"…","body":{…}}
std::string LeafOf(std::int64_t seq, const Event& e);

/// The leaf index of the event of `seq` in a log whose leaves are its events in
/// the order of their numbers (SQLite's, and the chained events of a PostgreSQL
/// store: schema/pg/0009), and back.
inline std::uint64_t IndexOfSeq(std::int64_t seq) {
  return static_cast<std::uint64_t>(seq - 1);
}
inline std::int64_t SeqOfIndex(std::uint64_t index) {
  return static_cast<std::int64_t>(index) + 1;
}

/// The leaf the sequencer gave the event of `seq`; nullopt while it has none
/// (on PostgreSQL, where leaves are given in log_leaves; on SQLite seq - 1).
Result<std::optional<std::uint64_t>> LeafOfSeq(Conn& conn, std::int64_t seq);
/// The event of leaf `index`'s seq (the leaf must exist).
Result<std::int64_t> SeqAtLeaf(Conn& conn, std::uint64_t index);
/// A statement that reads the events of the leaves from $1 up to (not with) $2,
/// in leaf order, LIMIT $3: each row kEventColumns, then the leaf's index.
std::string LeavesQuery(const Conn& conn);

/// A tile's key in log_tiles: its level × 2^48 + its index.
inline std::int64_t TileId(int level, std::uint64_t index) {
  return (static_cast<std::int64_t>(level) << 48) + static_cast<std::int64_t>(index);
}

/// The tiles stored on `conn` (which outlives the source).
logtree::TileSource TilesIn(Conn& conn);
/// Stores tiles, each replacing what was stored under its level and index.
Status WriteTiles(Conn& conn, const std::vector<logtree::Tile>& tiles);

/// A tree head and its Ed25519 signature (of merkle::TreeHeadText).
struct SignedHead {
  merkle::TreeHead head;
  std::string key_id;
  std::string signature;  ///< 64 raw bytes
};
/// The newest signed head (the largest tree); nullopt before the first.
Result<std::optional<SignedHead>> NewestHead(Conn& conn);
/// The first signed head whose tree holds leaf `index`; nullopt when none does yet.
Result<std::optional<SignedHead>> FirstHeadHolding(Conn& conn, std::uint64_t index);
Status InsertHead(Conn& conn, const SignedHead& head);

/// How long every signed head is kept; older ones are thinned to one an hour.
inline constexpr std::int64_t kKeepEveryHeadMs = 7LL * 24 * 3600 * 1000;
inline constexpr std::int64_t kHourMs = 3600LL * 1000;
/// The time before which ThinHeads thins at `now`: a week back, down to the hour.
inline std::int64_t ThinHeadsBefore(Instant now) {
  const std::int64_t before = now.unix_ms - kKeepEveryHeadMs;
  return before - (before % kHourMs + kHourMs) % kHourMs;
}
/// Deletes the heads signed from `from_ms` (an hour's start) to `to_ms`
/// (ThinHeadsBefore) but the first of each hour and the newest of all: a head
/// that is gone is still implied by the tree (a consistency proof from any kept
/// head reaches it), and the tree's size at each hour stays signed. The heads
/// deleted.
Result<std::int64_t> ThinHeads(Conn& conn, std::int64_t from_ms, std::int64_t to_ms);

/// A public key's short public name: the first 16 hex digits of its SHA-256.
std::string KeyIdOf(std::string_view public_key);
/// Records the public key (32 raw bytes) that signs heads from now on, once.
Status KeepKey(Conn& conn, std::string_view public_key, Instant at);

/// The check of the log's tree and heads that the walk of the events drives
/// (chain.h, VerifyChain): fed every event in order, it recomputes each leaf and
/// the tiles the store should hold, compares them with the stored ones, and at
/// each stored head's size compares its root and checks its signature.
class TreeCheck {
 public:
  /// Reads the tree's size (the newest head's) and the keys.
  static Result<TreeCheck> Start(Conn& conn);
  /// Between pages of events, when `conn` is free: compares the tiles of the
  /// page before, and reads the heads of trees up to `to_size` leaves.
  Status BeforePage(Conn& conn, std::int64_t to_size);
  /// The event of the next leaf, `leaf` (without touching the connection, which is
  /// streaming the page); Corruption when it is not the next or a head does not
  /// hold at its size.
  Status Visit(std::uint64_t leaf, std::int64_t seq, const Event& e);
  /// After the last event: the tree's newest tiles and the heads beyond the log.
  Result<std::string> Finish(Conn& conn);

 private:
  Status CompareTiles(Conn& conn);
  /// Checks the heads of the tree's size so far.
  Status CheckHeads();

  std::uint64_t tree_size_ = 0;
  std::vector<std::pair<std::string, std::string>> keys_;  ///< key_id, public key
  std::vector<SignedHead> heads_;                          ///< those of the page, by size
  std::size_t next_head_ = 0;
  /// The stored level-0 tiles of the page's leaves, by index.
  std::unordered_map<std::uint64_t, std::string> leaf_tiles_;
  std::uint64_t heads_checked_ = 0;
  logtree::Frontier frontier_;  ///< the tree rebuilt from the events so far
};

}  // namespace logrows
}  // namespace pingma::registry
