#include "store/log_rows.h"

#include <algorithm>

#include <fmt/format.h>

#include "access/secrets.h"
#include "http/json_text.h"
#include "store/chain.h"
#include "store/store.h"

namespace pingma::registry::logrows {
namespace {

Result<std::optional<SignedHead>> HeadOf(Result<ScopedStatement>& st) {
  if (!st.ok()) return st.status();
  auto row = (*st)->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<SignedHead>();
  SignedHead h;
  h.head.tree_size = static_cast<std::uint64_t>((*st)->Int(0));
  h.head.root_hash = std::string((*st)->Blob(1));
  h.head.timestamp_ms = (*st)->Int(2);
  h.key_id = (*st)->Text(3);
  h.signature = std::string((*st)->Blob(4));
  return std::optional<SignedHead>(std::move(h));
}

constexpr const char* kHeadColumns = "tree_size, root, at, key_id, signature";

}  // namespace

std::string LeafOf(std::int64_t seq, const Event& e) {
  std::string out = fmt::format("{{\"seq\":{},\"id\":", seq);
  AppendJsonString(&out, e.id);
  out += ",\"code\":";
  if (e.code.empty()) {
    out += "null";
  } else {
    AppendJsonString(&out, e.code);
  }
  out += ",\"type\":";
  AppendJsonString(&out, e.type);
  out += fmt::format(",\"at\":{},\"actor_role\":", e.at.unix_ms);
  AppendJsonString(&out, e.actor_role);
  out += ",\"actor_id\":";
  AppendJsonString(&out, e.actor_id);
  out += ",\"body\":";
  out += e.body;
  out += "}";
  return out;
}

Result<std::optional<std::uint64_t>> LeafOfSeq(Conn& conn, std::int64_t seq) {
  if (conn.dialect() == sql::Dialect::kSqlite) return std::optional<std::uint64_t>(IndexOfSeq(seq));
  auto st = conn.Prepare("SELECT leaf FROM log_leaves WHERE seq = $1");
  if (!st.ok()) return st.status();
  (*st)->Bind(1, seq);
  auto row = (*st)->Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::optional<std::uint64_t>();
  return std::optional<std::uint64_t>(static_cast<std::uint64_t>((*st)->Int(0)));
}

Result<std::int64_t> SeqAtLeaf(Conn& conn, std::uint64_t index) {
  if (conn.dialect() == sql::Dialect::kSqlite) return SeqOfIndex(index);
  auto st = conn.Prepare("SELECT seq FROM log_leaves WHERE leaf = $1");
  if (!st.ok()) return st.status();
  (*st)->Bind(1, static_cast<std::int64_t>(index));
  auto row = (*st)->Step();
  if (!row.ok()) return row.status();
  if (!*row) return Status::NotFound(fmt::format("the log has no leaf {}", index));
  return (*st)->Int(0);
}

std::string LeavesQuery(const Conn& conn) {
  if (conn.dialect() == sql::Dialect::kSqlite) {
    return fmt::format(
        "SELECT {}, seq - 1 FROM events WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
        kEventColumns);
  }
  return fmt::format(
      "SELECT {}, l.leaf FROM log_leaves l JOIN events e USING (seq) "
      "WHERE l.leaf >= $1 AND l.leaf < $2 ORDER BY l.leaf LIMIT $3",
      kEventColumns);
}

logtree::TileSource TilesIn(Conn& conn) {
  return [&conn](int level, std::uint64_t index) -> Result<std::string> {
    auto st = conn.Prepare("SELECT hashes FROM log_tiles WHERE id = $1");
    if (!st.ok()) return st.status();
    (*st)->Bind(1, TileId(level, index));
    auto row = (*st)->Step();
    if (!row.ok()) return row.status();
    return *row ? std::string((*st)->Blob(0)) : std::string();
  };
}

Status WriteTiles(Conn& conn, const std::vector<logtree::Tile>& tiles) {
  for (const logtree::Tile& tile : tiles) {
    auto st = conn.Prepare(
        "INSERT INTO log_tiles(id, hashes) VALUES($1, $2) "
        "ON CONFLICT(id) DO UPDATE SET hashes = excluded.hashes");
    if (!st.ok()) return st.status();
    (*st)->Bind(1, TileId(tile.level, tile.index)).BindBlobUnowned(2, tile.hashes);
    PINGMA_RETURN_IF_ERROR((*st)->Run());
  }
  return Status::Ok();
}

Result<std::optional<SignedHead>> NewestHead(Conn& conn) {
  auto st = conn.Prepare(
      fmt::format("SELECT {} FROM log_heads ORDER BY tree_size DESC LIMIT 1", kHeadColumns));
  return HeadOf(st);
}

Result<std::optional<SignedHead>> FirstHeadHolding(Conn& conn, std::uint64_t index) {
  auto st = conn.Prepare(fmt::format(
      "SELECT {} FROM log_heads WHERE tree_size > $1 ORDER BY tree_size LIMIT 1", kHeadColumns));
  if (st.ok()) (*st)->Bind(1, static_cast<std::int64_t>(index));
  return HeadOf(st);
}

Status InsertHead(Conn& conn, const SignedHead& h) {
  auto st = conn.Prepare(
      "INSERT INTO log_heads(tree_size, root, at, key_id, signature) VALUES($1, $2, $3, $4, $5)");
  if (!st.ok()) return st.status();
  (*st)->Bind(1, static_cast<std::int64_t>(h.head.tree_size)).BindBlobUnowned(2, h.head.root_hash);
  (*st)->Bind(3, h.head.timestamp_ms).BindUnowned(4, h.key_id).BindBlobUnowned(5, h.signature);
  return (*st)->Run();
}

Result<std::int64_t> ThinHeads(Conn& conn, std::int64_t from_ms, std::int64_t to_ms) {
  if (to_ms <= from_ms) return std::int64_t{0};
  static_assert(kHourMs == 3600000, "the statement's hour");
  auto st = conn.Prepare(
      "DELETE FROM log_heads WHERE at >= $1 AND at < $2 "
      "AND tree_size < (SELECT max(tree_size) FROM log_heads) "
      "AND tree_size NOT IN (SELECT min(tree_size) FROM log_heads WHERE at >= $1 AND at < $2 "
      "GROUP BY at / 3600000)");
  if (!st.ok()) return st.status();
  (*st)->Bind(1, from_ms).Bind(2, to_ms);
  PINGMA_RETURN_IF_ERROR((*st)->Run());
  return conn.db().Changes();
}

std::string KeyIdOf(std::string_view public_key) {
  return HexOf(Sha256(public_key)).substr(0, 16);
}

Status KeepKey(Conn& conn, std::string_view public_key, Instant at) {
  auto st = conn.Prepare(
      "INSERT INTO log_keys(key_id, public_key, added_at) VALUES($1, $2, $3) "
      "ON CONFLICT(key_id) DO NOTHING");
  if (!st.ok()) return st.status();
  const std::string id = KeyIdOf(public_key);
  (*st)->BindUnowned(1, id).BindBlobUnowned(2, public_key).Bind(3, at.unix_ms);
  return (*st)->Run();
}

Result<TreeCheck> TreeCheck::Start(Conn& conn) {
  TreeCheck check;
  auto newest = NewestHead(conn);
  if (!newest.ok()) return newest.status();
  if (*newest) check.tree_size_ = (*newest)->head.tree_size;
  auto st = conn.Prepare("SELECT key_id, public_key FROM log_keys");
  if (!st.ok()) return st.status();
  for (;;) {
    auto row = (*st)->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    check.keys_.emplace_back((*st)->Text(0), std::string((*st)->Blob(1)));
  }
  return check;
}

Status TreeCheck::BeforePage(Conn& conn, std::int64_t to_size) {
  PINGMA_RETURN_IF_ERROR(CompareTiles(conn));
  // The stored leaves the page's events should give, so that a changed event is
  // named as it is met (before a head of a size past it fails).
  leaf_tiles_.clear();
  const std::uint64_t last =
      std::min<std::uint64_t>(tree_size_, static_cast<std::uint64_t>(to_size));
  const logtree::TileSource stored = TilesIn(conn);
  for (std::uint64_t t = frontier_.size() / logtree::kTileWidth; t * logtree::kTileWidth < last;
       ++t) {
    auto tile = stored(0, t);
    if (!tile.ok()) return tile.status();
    leaf_tiles_.emplace(t, std::move(*tile));
  }
  heads_.clear();
  next_head_ = 0;
  // The heads the page's events reach; at the start, the empty tree's too.
  const bool first_page = frontier_.size() == 0 && heads_checked_ == 0;
  auto st =
      conn.Prepare(fmt::format("SELECT {} FROM log_heads WHERE tree_size >= $1 AND tree_size <= $2 "
                               "ORDER BY tree_size",
                               kHeadColumns));
  if (!st.ok()) return st.status();
  (*st)->Bind(1, static_cast<std::int64_t>(frontier_.size() + (first_page ? 0 : 1)));
  (*st)->Bind(2, to_size);
  for (;;) {
    auto head = HeadOf(st);
    if (!head.ok()) return head.status();
    if (!*head) break;
    heads_.push_back(std::move(**head));
  }
  return CheckHeads();  // a head of the size already reached (the empty tree's)
}

Status TreeCheck::Visit(std::uint64_t leaf, std::int64_t seq, const Event& e) {
  if (leaf >= tree_size_) return Status::Ok();  // not in the signed tree yet
  if (leaf != frontier_.size()) {
    return Status::Corruption(
        fmt::format("the log's leaf {} (event #{}) comes where leaf {} should: a leaf is missing",
                    leaf, seq, frontier_.size()));
  }
  std::string hash = merkle::LeafHash(LeafOf(seq, e));
  if (auto tile = leaf_tiles_.find(leaf / logtree::kTileWidth); tile != leaf_tiles_.end()) {
    const std::size_t at = (leaf % logtree::kTileWidth) * logtree::kHashSize;
    if (tile->second.size() >= at + logtree::kHashSize &&
        tile->second.compare(at, logtree::kHashSize, hash) != 0) {
      return Status::Corruption(fmt::format(
          "event #{} (id {}) and the leaf the log's tree holds for it (tile 0/{}) differ: the "
          "event or the tree was changed after it was logged",
          seq, e.id, tile->first));
    }
  }
  frontier_.Append(hash);
  return CheckHeads();
}

Status TreeCheck::CheckHeads() {
  while (next_head_ < heads_.size() && heads_[next_head_].head.tree_size == frontier_.size()) {
    const SignedHead& h = heads_[next_head_++];
    auto key = std::find_if(keys_.begin(), keys_.end(),
                            [&h](const auto& k) { return k.first == h.key_id; });
    if (key == keys_.end()) {
      return Status::Corruption(
          fmt::format("the signed head of {} events names key {}, which the log's keys do not hold",
                      h.head.tree_size, h.key_id));
    }
    if (!VerifyLogSignature(key->second, merkle::TreeHeadText(h.head), h.signature)) {
      return Status::Corruption(
          fmt::format("the signature of the head of {} events (at {}) does not verify with key "
                      "{}: the head was changed after it was signed",
                      h.head.tree_size, Instant{h.head.timestamp_ms}.ToString(), h.key_id));
    }
    if (frontier_.Root() != h.head.root_hash) {
      return Status::Corruption(fmt::format(
          "the signed head of {} events has root {}, but the events give {}: the log was "
          "changed after that head was signed",
          h.head.tree_size, HexOf(h.head.root_hash), HexOf(frontier_.Root())));
    }
    ++heads_checked_;
  }
  return Status::Ok();
}

Status TreeCheck::CompareTiles(Conn& conn) {
  const logtree::TileSource stored = TilesIn(conn);
  for (const logtree::Tile& tile : frontier_.TakeChanged()) {
    auto kept = stored(tile.level, tile.index);
    if (!kept.ok()) return kept.status();
    if (kept->compare(0, tile.hashes.size(), tile.hashes) == 0 &&
        kept->size() >= tile.hashes.size()) {
      continue;
    }
    if (tile.level == 0) {
      // The first leaf that differs names the event.
      std::uint64_t i = 0;
      while (i < tile.count() &&
             kept->compare(i * logtree::kHashSize, logtree::kHashSize, tile.hashes,
                           i * logtree::kHashSize, logtree::kHashSize) == 0) {
        ++i;
      }
      auto seq = SeqAtLeaf(conn, tile.index * logtree::kTileWidth + i);
      if (!seq.ok()) return seq.status();
      return Status::Corruption(fmt::format(
          "event #{} and the leaf the log's tree holds for it (tile 0/{}) differ: the event or "
          "the tree was changed after it was logged",
          *seq, tile.index));
    }
    return Status::Corruption(fmt::format(
        "the log's tile {}/{} does not match the events beneath it", tile.level, tile.index));
  }
  return Status::Ok();
}

Result<std::string> TreeCheck::Finish(Conn& conn) {
  PINGMA_RETURN_IF_ERROR(CompareTiles(conn));
  if (frontier_.size() < tree_size_) {
    return Status::Corruption(fmt::format(
        "the newest signed head is of {} events, but the log holds {}: events were removed",
        tree_size_, frontier_.size()));
  }
  if (heads_checked_ == 0) return std::string("no signed head yet");
  return fmt::format("tree of {} events matches them, {} signed heads verified", tree_size_,
                     heads_checked_);
}

}  // namespace pingma::registry::logrows
