#include "store/chain.h"

#include <openssl/evp.h>
#include <sys/stat.h>

#include <cerrno>
#include <memory>
#include <system_error>

#include <fmt/format.h>

#include "store/log_rows.h"
#include "store/pg.h"
#include "store/pg_sql.h"
#include "store/sqlite.h"
#include "store/store.h"

namespace pingma::registry {
namespace {

void AppendField(std::string* out, std::string_view field) {
  const fmt::format_int size(field.size());
  out->append(size.data(), size.size());
  out->push_back(':');
  out->append(field);
}

void AppendField(std::string* out, std::int64_t number) {
  const fmt::format_int text(number);
  AppendField(out, std::string_view(text.data(), text.size()));
}

struct FreeDigestContext {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

// Events read per statement: a walk that stops early (a broken link, a shutdown)
// leaves at most this many rows unread, which PostgreSQL still sends.
constexpr std::int64_t kWalkPage = 10000;

// The chain's recorded last link where appends stopped extending it (PostgreSQL:
// schema/pg/0009); nullopt on SQLite, whose chain runs to the log's end.
Result<std::optional<ChainWalk>> RecordedEnd(Conn& conn) {
  if (conn.dialect() == sql::Dialect::kSqlite) return std::optional<ChainWalk>();
  auto st = conn.Prepare("SELECT seq, hash FROM chain_head");
  if (!st.ok()) return st.status();
  auto row = (*st)->Step();
  if (!row.ok()) return row.status();
  if (!*row) return Status::Corruption("the chain's recorded end (chain_head) has no row");
  return std::optional<ChainWalk>(ChainWalk{(*st)->Int(0), std::string((*st)->Blob(1))});
}

// The walk over an open connection, in one read transaction that the caller has
// begun (one snapshot for the whole walk), a page of events at a time, up to the
// chain's recorded end where it has one, which it must reach.
// With `tree`, the log's tree and heads are checked in the same pass.
Result<ChainWalk> Walk(Conn& conn, const std::atomic<bool>* cancel, logrows::TreeCheck* tree) {
  auto end = RecordedEnd(conn);
  if (!end.ok()) return end.status();
  auto prepared = conn.db().Prepare(
      fmt::format("SELECT {}, hash FROM events WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT {}",
                  kEventColumns, kWalkPage));
  if (!prepared.ok()) return prepared.status();
  sql::Statement& st = **prepared;
  ChainWalk walk;
  for (;;) {
    if (cancel != nullptr && cancel->load()) {
      return Status::Unavailable(fmt::format("stopped after {} events", walk.length));
    }
    if (tree != nullptr) PINGMA_RETURN_IF_ERROR(tree->BeforePage(conn, walk.length + kWalkPage));
    st.Bind(1, walk.length).Bind(2, *end ? (*end)->length : INT64_MAX);
    std::int64_t rows = 0;
    for (;;) {
      auto row = st.Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      ++rows;
      const std::int64_t expected = walk.length + 1;
      const Event e = EventOfRow(st);
      const std::int64_t seq = st.Int(0);
      if (seq != expected) {
        return Status::Corruption(
            fmt::format("the chain breaks at event #{}: event #{} is missing", seq, expected));
      }
      std::string hash = ChainHash(walk.head, seq, e);
      if (hash != st.Blob(8)) {
        return Status::Corruption(fmt::format(
            "the chain breaks at event #{} (id {}, type {}): its content does not match its hash",
            seq, e.id, e.type));
      }
      walk.head = std::move(hash);
      walk.length = seq;
      if (tree != nullptr) {
        PINGMA_RETURN_IF_ERROR(tree->Visit(logrows::IndexOfSeq(seq), seq, e));
      }
    }
    st.Reset();
    if (rows < kWalkPage) break;
  }
  if (*end && (walk.length != (*end)->length || walk.head != (*end)->head)) {
    return Status::Corruption(fmt::format(
        "the chain ends at event #{} (link {}), but its recorded end is event #{} (link {}): "
        "events of the chain were removed or changed",
        walk.length, HexOf(walk.head), (*end)->length, HexOf((*end)->head)));
  }
  return walk;
}

// What the leaves after the chain's end (PostgreSQL) hold, fed to the tree check
// in leaf order: the events only the tree vouches for.
struct LeavesWalk {
  std::int64_t leaves = 0;   ///< events with a leaf after the chain's end
  std::int64_t waiting = 0;  ///< events committed that have no leaf yet
};
Result<LeavesWalk> WalkLeaves(Conn& conn, const ChainWalk& chain, logrows::TreeCheck* tree) {
  LeavesWalk out;
  // The chain's events keep the leaves of their seqs.
  {
    auto st = conn.Prepare("SELECT count(*) FROM log_leaves WHERE seq <= $1 AND leaf <> seq - 1");
    if (!st.ok()) return st.status();
    (*st)->Bind(1, chain.length);
    auto row = (*st)->Step();
    if (!row.ok()) return row.status();
    if ((*st)->Int(0) > 0) {
      return Status::Corruption(fmt::format(
          "{} of the chain's events are given another leaf than their seq's", (*st)->Int(0)));
    }
  }
  auto st = conn.Prepare(logrows::LeavesQuery(conn));
  if (!st.ok()) return st.status();
  auto next = static_cast<std::uint64_t>(chain.length);
  for (std::int64_t rows = kWalkPage; rows == kWalkPage;) {
    PINGMA_RETURN_IF_ERROR(tree->BeforePage(conn, static_cast<std::int64_t>(next) + kWalkPage));
    (*st)->Bind(1, static_cast<std::int64_t>(next)).Bind(2, INT64_MAX).Bind(3, kWalkPage);
    rows = 0;
    for (;;) {
      auto row = (*st)->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      ++rows;
      const auto leaf = static_cast<std::uint64_t>((*st)->Int(8));
      if (leaf != next) {
        return Status::Corruption(fmt::format(
            "the log's leaf {} has no event (the next leaf with one is {})", next, leaf));
      }
      PINGMA_RETURN_IF_ERROR(tree->Visit(leaf, (*st)->Int(0), EventOfRow(**st)));
      ++next;
      ++out.leaves;
    }
    (*st)->Reset();
  }
  auto waiting = conn.Prepare(
      "SELECT count(*) FROM events e WHERE tx IS NOT NULL "
      "AND NOT EXISTS (SELECT 1 FROM log_leaves l WHERE l.seq = e.seq)");
  if (!waiting.ok()) return waiting.status();
  auto row = (*waiting)->Step();
  if (!row.ok()) return row.status();
  out.waiting = (*waiting)->Int(0);
  return out;
}

// The connection a walk reads through, in its read transaction.
Result<std::unique_ptr<sql::Database>> OpenForWalk(const std::string& path) {
  if (pg::IsConnectionString(path)) {
    auto db = sql::PgDatabase::Open(path);
    if (!db.ok()) return db.status();
    PINGMA_RETURN_IF_ERROR((*db)->Exec("SET statement_timeout = 0"));
    auto tables = (*db)->Prepare(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_name = 'events'");
    if (!tables.ok()) return tables.status();
    auto row = (*tables)->Step();
    if (!row.ok()) return row.status();
    const bool has_events = *row && (*tables)->Int(0) > 0;
    (*tables)->Reset();
    if (!has_events) return Status::NotFound("the PostgreSQL database holds no pingma store");
    PINGMA_RETURN_IF_ERROR((*db)->Exec("BEGIN ISOLATION LEVEL REPEATABLE READ"));
    return std::unique_ptr<sql::Database>(std::move(*db));
  }
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    return Status::NotFound(
        fmt::format("no database at {}: {}", path, std::generic_category().message(errno)));
  }
  auto db = sql::SqliteDatabase::Open(path, /*create=*/false, /*read_only=*/true);
  if (!db.ok()) return db.status();
  PINGMA_RETURN_IF_ERROR((*db)->Exec("BEGIN"));
  return std::unique_ptr<sql::Database>(std::move(*db));
}

}  // namespace

std::string Sha256(std::string_view bytes) {
  // Fetched once: OpenSSL 3 looks the algorithm up anew on every EVP_sha256() use.
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  // One context per thread, reused: the writer hashes every event, the HTTP
  // threads every bearer token.
  thread_local std::unique_ptr<EVP_MD_CTX, FreeDigestContext> ctx(EVP_MD_CTX_new());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!ctx || EVP_DigestInit_ex2(ctx.get(), sha256, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), bytes.data(), bytes.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), digest, &len) != 1) {
    EVP_Digest(bytes.data(), bytes.size(), digest, &len, sha256, nullptr);
  }
  return std::string(reinterpret_cast<const char*>(digest), len);
}

std::string ChainHash(const std::string& prev_hash, std::int64_t seq, const Event& e) {
  thread_local std::string material;  // one buffer per thread, reused
  material.clear();
  AppendField(&material, prev_hash);
  AppendField(&material, seq);
  AppendField(&material, e.id);
  AppendField(&material, e.code);
  AppendField(&material, e.type);
  AppendField(&material, e.at.unix_ms);
  AppendField(&material, e.actor_role);
  AppendField(&material, e.actor_id);
  AppendField(&material, e.body);
  return Sha256(material);
}

std::string HexOf(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

Result<std::string> VerifyChain(const std::string& path) {
  auto db = OpenForWalk(path);
  if (!db.ok()) return db.status();
  Conn conn(std::move(*db));
  auto tree = logrows::TreeCheck::Start(conn);
  if (!tree.ok()) return tree.status();
  auto walk = Walk(conn, nullptr, &*tree);
  const bool unchained = conn.dialect() == sql::Dialect::kPostgres;
  Result<LeavesWalk> leaves = LeavesWalk{};
  if (walk.ok() && unchained) leaves = WalkLeaves(conn, *walk, &*tree);
  auto said = !walk.ok()     ? Result<std::string>(walk.status())
              : !leaves.ok() ? Result<std::string>(leaves.status())
                             : tree->Finish(conn);
  (void)conn.db().Exec(said.ok() ? "COMMIT" : "ROLLBACK");
  if (!said.ok()) return said.status();
  if (!unchained) return fmt::format("ok: {} events, chain intact; {}", walk->length, *said);
  const std::string waiting =
      leaves->waiting > 0 ? fmt::format(" ({} more not in it yet)", leaves->waiting) : "";
  if (walk->length == 0) {
    return fmt::format(
        "ok: {} events, chain intact; the store began on PostgreSQL, with no chain: the tree "
        "holds {}{}; {}",
        leaves->leaves + leaves->waiting, leaves->leaves, waiting, *said);
  }
  return fmt::format(
      "ok: {} events, chain intact; the chain's {} end at its recorded link, the tree holds the "
      "{} after them{}; {}",
      walk->length + leaves->leaves + leaves->waiting, walk->length, leaves->leaves, waiting,
      *said);
}

Result<ChainWalk> WalkChain(const std::string& path, const std::atomic<bool>* cancel) {
  auto db = OpenForWalk(path);
  if (!db.ok()) return db.status();
  Conn conn(std::move(*db));
  auto walk = Walk(conn, cancel, nullptr);
  (void)conn.db().Exec(walk.ok() ? "COMMIT" : "ROLLBACK");
  return walk;
}

}  // namespace pingma::registry
