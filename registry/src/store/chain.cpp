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

// The walk over an open connection, in one read transaction that the caller has
// begun (one snapshot for the whole walk), a page of events at a time.
// With `tree`, the log's tree and heads are checked in the same pass.
Result<ChainWalk> Walk(Conn& conn, const std::atomic<bool>* cancel, logrows::TreeCheck* tree) {
  auto prepared = conn.db().Prepare(
      fmt::format("SELECT {}, hash FROM events WHERE seq > $1 ORDER BY seq LIMIT {}", kEventColumns,
                  kWalkPage));
  if (!prepared.ok()) return prepared.status();
  sql::Statement& st = **prepared;
  ChainWalk walk;
  for (;;) {
    if (cancel != nullptr && cancel->load()) {
      return Status::Unavailable(fmt::format("stopped after {} events", walk.length));
    }
    if (tree != nullptr) PINGMA_RETURN_IF_ERROR(tree->BeforePage(conn, walk.length + kWalkPage));
    st.Bind(1, walk.length);
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
      if (tree != nullptr) PINGMA_RETURN_IF_ERROR(tree->Visit(seq, e));
    }
    st.Reset();
    if (rows < kWalkPage) return walk;
  }
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
  auto said = walk.ok() ? tree->Finish(conn) : Result<std::string>(walk.status());
  (void)conn.db().Exec(said.ok() ? "COMMIT" : "ROLLBACK");
  if (!said.ok()) return said.status();
  return fmt::format("ok: {} events, chain intact; {}", walk->length, *said);
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
