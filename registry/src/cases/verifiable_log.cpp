#include "cases/verifiable_log.h"

#include <openssl/evp.h>
#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include <fmt/format.h>

#include "access/secrets.h"
#include "http/fields.h"
#include "store/chain.h"

namespace pingma::registry {
namespace {

std::string Base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

json HeadJson(const logrows::SignedHead& h) {
  return {{"tree_size", h.head.tree_size},
          {"root_hash", HexOf(h.head.root_hash)},
          {"timestamp", h.head.timestamp_ms},
          {"key_id", h.key_id},
          {"signature", Base64(h.signature)}};
}

json PathJson(const std::vector<std::string>& path) {
  json out = json::array();
  for (const std::string& hash : path) out.push_back(HexOf(hash));
  return out;
}

// The size of the newest signed head: what the proofs and entries may reach.
Result<std::uint64_t> SignedSize(Conn& conn) {
  auto newest = logrows::NewestHead(conn);
  if (!newest.ok()) return newest.status();
  if (!*newest) {
    return Status::Unavailable(
        "the log has no signed head yet: the sequencer signs the first within a second of the "
        "registry's start");
  }
  return (*newest)->head.tree_size;
}

// A whole number of the query in [min, max], required.
Status QueryNumber(const Call& call, const char* name, std::int64_t min, std::int64_t max,
                   std::int64_t* out) {
  auto it = call.query.find(name);
  if (it == call.query.end() || it->second.empty()) {
    return Status::Malformed(fmt::format("`{}` is required", name));
  }
  if (!ParseWhole(it->second, min, max, out)) {
    return Status::Malformed(fmt::format("`{}` must be a whole number from {} to {}; got '{}'",
                                         name, min, max, it->second.substr(0, 40)));
  }
  return Status::Ok();
}

}  // namespace

void VerifiableLog::StartSequencer() {
  if (settings_.log_signing_key.empty() || thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "pingma-log");
    Loop();
  });
}

void VerifiableLog::StopSequencer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<std::int64_t> VerifiableLog::SequenceNew(Conn& conn, std::int64_t most,
                                                logtree::Frontier* next) {
  // Where the last round stopped: the revision and seq of the tree's last leaf
  // (none, or one of the chain's, which have no revision: from the start).
  std::int64_t after_tx = -1, after_seq = 0;
  if (next->size() > 0) {
    PINGMA_ASSIGN_OR_RETURN(auto last,
                            conn.Prepare("SELECT tx, seq FROM log_leaves WHERE leaf = $1"));
    last->Bind(1, static_cast<std::int64_t>(next->size() - 1));
    PINGMA_ASSIGN_OR_RETURN(bool row, last->Step());
    if (!row) {
      return Status::Corruption(
          fmt::format("the log's leaf {} has no row in log_leaves", next->size() - 1));
    }
    if (!last->IsNull(0)) {
      after_tx = last->Int(0);
      after_seq = last->Int(1);
    }
  }
  // The events committed since, in the order of their revisions: every one below
  // the horizon is final, so that no event can later come before one given a
  // leaf here. (The statement reads the horizon and the events in one snapshot;
  // `tx >= $1` makes a range of two ends, which PostgreSQL's plan, made once,
  // reads from the index even if it was made while the table was small.)
  PINGMA_ASSIGN_OR_RETURN(
      auto st,
      conn.Prepare(fmt::format("SELECT {}, tx FROM events WHERE tx >= $1 AND (tx, seq) > ($1, $2) "
                               "AND tx < pingma_horizon() ORDER BY tx, seq LIMIT $3",
                               kEventColumns)));
  st->Bind(1, after_tx).Bind(2, after_seq).Bind(3, most);
  struct Given {
    std::int64_t leaf, seq, tx;
  };
  std::vector<Given> given;
  for (;;) {
    PINGMA_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    const std::int64_t seq = st->Int(0);
    given.push_back({static_cast<std::int64_t>(next->size()), seq, st->Int(8)});
    next->Append(merkle::LeafHash(logrows::LeafOf(seq, EventOfRow(*st))));
  }
  // Their leaves, 500 rows a statement.
  constexpr std::size_t kRows = 500;
  for (std::size_t start = 0; start < given.size(); start += kRows) {
    const std::size_t rows = std::min(kRows, given.size() - start);
    std::string sql = "INSERT INTO log_leaves(leaf, seq, tx) VALUES";
    for (std::size_t r = 0; r < rows; ++r) {
      sql += fmt::format("{}(${},${},${})", r == 0 ? "" : ",", 3 * r + 1, 3 * r + 2, 3 * r + 3);
    }
    PINGMA_ASSIGN_OR_RETURN(auto insert, conn.Prepare(sql));
    for (std::size_t r = 0; r < rows; ++r) {
      const Given& g = given[start + r];
      const int p = static_cast<int>(3 * r);
      insert->Bind(p + 1, g.leaf).Bind(p + 2, g.seq).Bind(p + 3, g.tx);
    }
    PINGMA_RETURN_IF_ERROR(insert->Defer());
  }
  return static_cast<std::int64_t>(given.size());
}

Result<std::int64_t> VerifiableLog::Round() {
  logtree::Frontier next = frontier_;
  std::int64_t integrated = 0;
  bool kept = key_kept_;
  std::int64_t thinned_to = heads_thinned_to_;
  auto integrate = [&](WriteTx& tx) -> Status {
    Conn& conn = tx.conn();
    auto newest = logrows::NewestHead(conn);
    if (!newest.ok()) return newest.status();
    const std::uint64_t size = *newest ? (*newest)->head.tree_size : 0;
    if (size != next.size()) {
      // Started, or another registry signed since this one's last round.
      auto loaded = logtree::Frontier::Load(logrows::TilesIn(conn), size);
      if (!loaded.ok()) return loaded.status();
      next = std::move(*loaded);
    }
    // The events whose leaves are given already (SQLite's: seq - 1; the chain's
    // on PostgreSQL), then on PostgreSQL those the horizon has passed.
    {
      auto st = conn.Prepare(logrows::LeavesQuery(conn));
      if (!st.ok()) return st.status();
      (*st)->Bind(1, static_cast<std::int64_t>(size)).Bind(2, INT64_MAX).Bind(3, kRoundEvents);
      for (;;) {
        auto row = (*st)->Step();
        if (!row.ok()) return row.status();
        if (!*row) break;
        const std::int64_t leaf = (*st)->Int(8);
        if (static_cast<std::uint64_t>(leaf) != next.size()) {
          return Status::Corruption(
              fmt::format("the log has no event at leaf {} (the next is at leaf {}): the tree "
                          "cannot go on",
                          next.size(), leaf));
        }
        next.Append(merkle::LeafHash(logrows::LeafOf((*st)->Int(0), EventOfRow(**st))));
        ++integrated;
      }
    }
    if (conn.dialect() == sql::Dialect::kPostgres && integrated < kRoundEvents) {
      auto added = SequenceNew(conn, kRoundEvents - integrated, &next);
      if (!added.ok()) return added.status();
      integrated += *added;
    }
    if (integrated == 0 && *newest) return Status::Ok();
    PINGMA_RETURN_IF_ERROR(logrows::WriteTiles(conn, next.TakeChanged()));
    if (!kept) {
      PINGMA_RETURN_IF_ERROR(logrows::KeepKey(conn, settings_.log_public_key, tx.now()));
      kept = true;
    }
    logrows::SignedHead head;
    head.head.tree_size = next.size();
    head.head.root_hash = next.Root();
    // Heads' times never go back, whatever the clocks of the registries that sign.
    head.head.timestamp_ms =
        std::max(tx.now().unix_ms, *newest ? (*newest)->head.timestamp_ms : std::int64_t{0});
    head.key_id = logrows::KeyIdOf(settings_.log_public_key);
    auto signature = SignWithLogKey(settings_.log_signing_key, merkle::TreeHeadText(head.head));
    if (!signature.ok()) return signature.status();
    head.signature = std::move(*signature);
    PINGMA_RETURN_IF_ERROR(logrows::InsertHead(conn, head));
    // Heads older than a week thinned to one an hour, each hour once it is old
    // enough (the first round after a start looks at all the older ones).
    if (const std::int64_t before = logrows::ThinHeadsBefore(tx.now()); before > thinned_to) {
      auto thinned = logrows::ThinHeads(conn, thinned_to, before);
      if (!thinned.ok()) return thinned.status();
      thinned_to = before;
    }
    return Status::Ok();
  };
  Reply reply = store_->Run([&](WriteTx& tx) -> Reply {
    Status s = integrate(tx);
    return s.ok() ? Reply{} : ErrorReply(s);
  });
  if (reply.failed()) {
    auto error = reply.body.find("error");
    return Status::Unavailable(error != reply.body.end() && error->is_object()
                                   ? error->value("message", reply.body.dump())
                                   : reply.body.dump());
  }
  frontier_ = std::move(next);
  key_kept_ = kept;
  heads_thinned_to_ = thinned_to;
  return integrated;
}

void VerifiableLog::Loop() {
  std::string last_error;
  bool building = false;
  std::int64_t behind_at_start = 0;
  auto started = std::chrono::steady_clock::now();
  auto said = started;
  bool leading = false;
  // Who sequences is said where several registries could (PostgreSQL), not of
  // the one registry of a SQLite file.
  auto on_postgres = store_->Read(
      [](Conn& conn) -> Result<bool> { return conn.dialect() == sql::Dialect::kPostgres; });
  const bool shared = on_postgres.ok() && *on_postgres;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    // One registry on a database sequences; the others wait to take over.
    auto lead = store_->LeadLog();
    if (lead.ok() && *lead != leading) {
      leading = *lead;
      if (shared) {
        std::fprintf(stderr, "pingma-registry: this registry %s the verifiable log\n",
                     leading ? "sequences" : "no longer sequences");
      }
      // Another registry may have signed meanwhile: the next round reads the tree.
      frontier_ = logtree::Frontier();
    }
    if (!lead.ok() || !leading) {
      if (!lead.ok() && lead.status().message() != last_error) {
        std::fprintf(stderr, "pingma-registry: the verifiable log's sequencer: %s\n",
                     lead.status().message().c_str());
      }
      last_error = lead.ok() ? std::string() : lead.status().message();
      lock.lock();
      cv_.wait_for(lock, std::chrono::milliseconds(250), [this] { return stopping_; });
      continue;
    }
    // Whether there is anything to integrate, on a reader: no round (and no
    // batch on the writer) while the log stands still.
    // (On PostgreSQL, the leaves given already, and a round in any case: whether
    // events wait for one is the round's to find.)
    auto pending = store_->Read([shared](Conn& conn) -> Result<std::pair<std::int64_t, bool>> {
      auto st = conn.Prepare(shared ? "SELECT COALESCE((SELECT MAX(leaf) + 1 FROM log_leaves), 0), "
                                      "(SELECT MAX(tree_size) FROM log_heads)"
                                    : "SELECT COALESCE((SELECT MAX(seq) FROM events), 0), "
                                      "(SELECT MAX(tree_size) FROM log_heads)");
      if (!st.ok()) return st.status();
      auto row = (*st)->Step();
      if (!row.ok()) return row.status();
      if ((*st)->IsNull(1)) return std::pair<std::int64_t, bool>((*st)->Int(0), true);
      return std::pair<std::int64_t, bool>((*st)->Int(0) - (*st)->Int(1), false);
    });
    Status failed = pending.ok() ? Status::Ok() : pending.status();
    if (failed.ok() && (pending->first > 0 || pending->second || shared)) {
      // The events of a store made before the log, or a long way behind: said,
      // with progress while it lasts.
      if (!building && (pending->second ? pending->first > 0 : pending->first > kRoundEvents)) {
        building = true;
        behind_at_start = pending->first;
        started = said = std::chrono::steady_clock::now();
        std::fprintf(stderr,
                     "pingma-registry: the verifiable log: adding %lld event(s) to its tree\n",
                     static_cast<long long>(behind_at_start));
      }
      // Rounds until the tree holds every event committed so far.
      bool caught_up = false;
      for (std::int64_t done = 0;;) {
        auto round = Round();
        if (!round.ok()) {
          failed = round.status();
          break;
        }
        done += *round;
        const auto now = std::chrono::steady_clock::now();
        if (building && now - said > std::chrono::seconds(5)) {
          said = now;
          std::fprintf(stderr, "pingma-registry: the verifiable log: %lld of %lld added\n",
                       static_cast<long long>(done), static_cast<long long>(behind_at_start));
        }
        caught_up = *round < kRoundEvents;
        std::lock_guard<std::mutex> stop(mu_);
        if (caught_up || stopping_) break;
      }
      if (building && caught_up) {
        building = false;
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        std::fprintf(stderr,
                     "pingma-registry: the verifiable log's tree holds %llu event(s), signed "
                     "(%.1f s)\n",
                     static_cast<unsigned long long>(frontier_.size()), seconds);
      }
    }
    // A failure is said once, not every round, and said again when it changes.
    if (!failed.ok() && failed.message() != last_error) {
      std::fprintf(stderr, "pingma-registry: the verifiable log's sequencer: %s\n",
                   failed.message().c_str());
    }
    last_error = failed.ok() ? std::string() : failed.message();
    lock.lock();
    cv_.wait_for(lock, std::chrono::milliseconds(250), [this] { return stopping_; });
  }
}

void VerifiableLog::GetKey(Store::Done done) {
  if (settings_.log_public_key.empty()) {
    return done(ErrorReply(Status::Unavailable("this registry has no log signing key")));
  }
  done(Okay({{"key_id", logrows::KeyIdOf(settings_.log_public_key)},
             {"algorithm", "Ed25519"},
             {"public_key", Base64(settings_.log_public_key)}}));
}

void VerifiableLog::GetHead(Store::Done done) {
  ReadReply(std::move(done), [](Conn& conn) -> Reply {
    auto newest = logrows::NewestHead(conn);
    if (!newest.ok()) return ErrorReply(newest.status());
    if (!*newest) {
      return ErrorReply(Status::Unavailable(
          "the log has no signed head yet: the sequencer signs the first within a second of "
          "the registry's start"));
    }
    return Okay(HeadJson(**newest));
  });
}

void VerifiableLog::GetEntries(const Call& call, Store::Done done) {
  std::int64_t start = 0, end = 0;
  Status parsed = QueryNumber(call, "start", 0, INT64_MAX - 2, &start);
  if (parsed.ok()) parsed = QueryNumber(call, "end", 0, INT64_MAX - 2, &end);
  if (parsed.ok() && end < start) {
    parsed = Status::Malformed(fmt::format("`end` ({}) is before `start` ({})", end, start));
  }
  if (!parsed.ok()) return done(ErrorReply(parsed));
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    auto size = SignedSize(conn);
    if (!size.ok()) return ErrorReply(size.status());
    if (static_cast<std::uint64_t>(start) >= *size) {
      return ErrorReply(Status::Invalid(fmt::format(
          "entry {} is not in the newest signed head, which holds {} entries", start, *size)));
    }
    // At most 1,000 a page, and none past the newest head (RFC 9162's get-entries
    // answers a shorter page too; the caller asks again from where it ended).
    const std::int64_t last =
        std::min<std::int64_t>({end, start + 999, static_cast<std::int64_t>(*size) - 1});
    auto st = conn.Prepare(logrows::LeavesQuery(conn));
    if (!st.ok()) return ErrorReply(st.status());
    (*st)->Bind(1, start).Bind(2, last + 1).Bind(3, last + 1 - start);
    json entries = json::array();
    for (;;) {
      auto row = (*st)->Step();
      if (!row.ok()) return ErrorReply(row.status());
      if (!*row) break;
      const std::int64_t seq = (*st)->Int(0);
      entries.push_back(
          {{"index", (*st)->Int(8)}, {"leaf", Base64(logrows::LeafOf(seq, EventOfRow(**st)))}});
    }
    return Okay({{"entries", std::move(entries)}});
  });
}

void VerifiableLog::GetInclusionProof(const Call& call, Store::Done done) {
  std::int64_t index = 0, tree_size = 0;
  Status parsed = QueryNumber(call, "index", 0, INT64_MAX, &index);
  if (parsed.ok()) parsed = QueryNumber(call, "tree_size", 1, INT64_MAX, &tree_size);
  if (parsed.ok() && index >= tree_size) {
    parsed = Status::Malformed(
        fmt::format("`index` ({}) must be below `tree_size` ({})", index, tree_size));
  }
  if (!parsed.ok()) return done(ErrorReply(parsed));
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    auto size = SignedSize(conn);
    if (!size.ok()) return ErrorReply(size.status());
    if (static_cast<std::uint64_t>(tree_size) > *size) {
      return ErrorReply(Status::Invalid(
          fmt::format("tree_size {} is beyond the newest signed head, which holds {} entries",
                      tree_size, *size)));
    }
    const logtree::TileSource tiles = logrows::TilesIn(conn);
    auto path = merkle::InclusionPathOf(static_cast<std::uint64_t>(index),
                                        static_cast<std::uint64_t>(tree_size),
                                        logtree::RangeOver(tiles, &nodes_));
    if (!path.ok()) return ErrorReply(path.status());
    return Okay({{"index", index}, {"tree_size", tree_size}, {"path", PathJson(*path)}});
  });
}

void VerifiableLog::GetConsistencyProof(const Call& call, Store::Done done) {
  std::int64_t first = 0, second = 0;
  Status parsed = QueryNumber(call, "first", 1, INT64_MAX, &first);
  if (parsed.ok()) parsed = QueryNumber(call, "second", 1, INT64_MAX, &second);
  if (parsed.ok() && second < first) {
    parsed = Status::Malformed(
        fmt::format("`second` ({}) must be at least `first` ({})", second, first));
  }
  if (!parsed.ok()) return done(ErrorReply(parsed));
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    auto size = SignedSize(conn);
    if (!size.ok()) return ErrorReply(size.status());
    if (static_cast<std::uint64_t>(second) > *size) {
      return ErrorReply(Status::Invalid(fmt::format(
          "second {} is beyond the newest signed head, which holds {} entries", second, *size)));
    }
    const logtree::TileSource tiles = logrows::TilesIn(conn);
    auto path = merkle::ConsistencyPathOf(static_cast<std::uint64_t>(first),
                                          static_cast<std::uint64_t>(second),
                                          logtree::RangeOver(tiles, &nodes_));
    if (!path.ok()) return ErrorReply(path.status());
    return Okay({{"first", first}, {"second", second}, {"path", PathJson(*path)}});
  });
}

Result<json> VerifiableLog::WhereLogged(Conn& conn, std::int64_t seq) {
  auto leaf = logrows::LeafOfSeq(conn, seq);
  if (!leaf.ok()) return leaf.status();
  json out = {{"log_index", nullptr}, {"signed_head", nullptr}};
  if (!*leaf) return out;  // not yet sequenced: within a second
  const std::uint64_t index = **leaf;
  auto head = logrows::FirstHeadHolding(conn, index);
  if (!head.ok()) return head.status();
  out["log_index"] = index;
  if (*head) {
    out["signed_head"] = {{"tree_size", (*head)->head.tree_size},
                          {"timestamp", (*head)->head.timestamp_ms}};
  }
  return out;
}

Result<std::optional<std::int64_t>> VerifiableLog::LastEventOf(Conn& conn,
                                                               const std::string& code) {
  if (conn.dialect() == sql::Dialect::kPostgres) {
    // The last by revision, then seq (numbers are not in commit order); the
    // chain's events, without one, before every other.
    PINGMA_ASSIGN_OR_RETURN(auto st,
                            conn.Prepare("SELECT seq FROM events WHERE code = $1 "
                                         "ORDER BY COALESCE(tx, 0) DESC, seq DESC LIMIT 1"));
    st->Bind(1, code);
    PINGMA_ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) return std::optional<std::int64_t>();
    return std::optional<std::int64_t>(st->Int(0));
  }
  // SQLite's index of a cylinder's events is by partition (kEventBucketBits):
  // the newest partition first, down to the one that holds its last event.
  PINGMA_ASSIGN_OR_RETURN(auto head, conn.Prepare("SELECT MAX(seq) FROM events"));
  PINGMA_ASSIGN_OR_RETURN(bool any, head->Step());
  if (!any || head->IsNull(0)) return std::optional<std::int64_t>();
  PINGMA_ASSIGN_OR_RETURN(
      auto st, conn.Prepare("SELECT MAX(seq) FROM events WHERE seq >> 16 = $1 AND code = $2"));
  static_assert(kEventBucketBits == 16, "the query above names the partition size");
  for (std::int64_t bucket = head->Int(0) >> kEventBucketBits; bucket >= 0; --bucket) {
    st->Reset();
    st->Bind(1, bucket).Bind(2, code);
    PINGMA_ASSIGN_OR_RETURN(bool row, st->Step());
    if (row && !st->IsNull(0)) return std::optional<std::int64_t>(st->Int(0));
  }
  return std::optional<std::int64_t>();
}

}  // namespace pingma::registry
