#include "store.h"

#include <openssl/evp.h>

#include <pthread.h>

#include <chrono>
#include <future>

#include <fmt/format.h>

namespace pingma::registry {
namespace {

// The schema. Every cylinder-scoped table is keyed by code, so that a distributed
// backend can shard by it. Times are Unix milliseconds; dates are 'YYYY-MM-DD'.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS events(
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL,
  code TEXT,
  type TEXT NOT NULL,
  at INTEGER NOT NULL,
  actor_role TEXT NOT NULL,
  actor_id TEXT NOT NULL,
  body TEXT NOT NULL,
  hash BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_code ON events(code, seq) WHERE code IS NOT NULL;
CREATE TABLE IF NOT EXISTS tokens(
  hash BLOB PRIMARY KEY,
  role TEXT NOT NULL,
  subject TEXT NOT NULL,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS companies(
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  license_number TEXT,
  license_valid_until TEXT,
  license_revoked INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stations(
  id TEXT PRIMARY KEY,
  company_id TEXT NOT NULL REFERENCES companies(id),
  name TEXT NOT NULL,
  district TEXT NOT NULL DEFAULT '',
  locked INTEGER NOT NULL DEFAULT 0,
  lock_reason TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS operators(
  id TEXT PRIMARY KEY,
  company_id TEXT NOT NULL REFERENCES companies(id),
  name TEXT NOT NULL,
  cert_number TEXT,
  cert_valid_until TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS custody(
  id INTEGER PRIMARY KEY,
  owner_company_id TEXT NOT NULL REFERENCES companies(id),
  custodian_company_id TEXT NOT NULL REFERENCES companies(id),
  valid_from TEXT NOT NULL,
  valid_until TEXT NOT NULL,
  created_seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS custody_by_custodian ON custody(custodian_company_id);
CREATE TABLE IF NOT EXISTS recalls(
  id INTEGER PRIMARY KEY,
  manufacturer TEXT NOT NULL,
  manufactured_from TEXT,
  manufactured_to TEXT,
  reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS recalls_by_manufacturer ON recalls(manufacturer);
CREATE TABLE IF NOT EXISTS cylinders(
  code TEXT PRIMARY KEY,
  owner_company_id TEXT NOT NULL REFERENCES companies(id),
  model TEXT NOT NULL,
  phase TEXT NOT NULL,
  manufacturer TEXT NOT NULL,
  serial TEXT NOT NULL DEFAULT '',
  manufactured TEXT NOT NULL,
  tare_kg REAL NOT NULL,
  water_capacity_l REAL,
  allowed_fill_kg REAL,
  design_life_years INTEGER,
  registration_no TEXT NOT NULL DEFAULT '',
  registration_state TEXT NOT NULL DEFAULT 'valid',
  last_inspection TEXT,
  last_inspection_result TEXT,
  next_inspection_due TEXT,
  assessment_date TEXT,
  assessment_passed INTEGER,
  assessment_extends_until TEXT,
  state TEXT NOT NULL DEFAULT 'active',
  state_reason TEXT,
  state_since INTEGER,
  last_fill_station TEXT,
  last_fill_at INTEGER,
  rev INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cylinders_by_owner_rev ON cylinders(owner_company_id, rev);
CREATE INDEX IF NOT EXISTS cylinders_scrap_pending ON cylinders(state) WHERE state <> 'active';
CREATE TABLE IF NOT EXISTS carriers(
  carrier TEXT PRIMARY KEY,
  code TEXT NOT NULL REFERENCES cylinders(code),
  bound_seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS carriers_by_code ON carriers(code);
CREATE TABLE IF NOT EXISTS fills(
  event_id TEXT PRIMARY KEY,
  check_id TEXT UNIQUE,
  code TEXT NOT NULL,
  station_id TEXT NOT NULL,
  ended_at INTEGER NOT NULL,
  result TEXT NOT NULL,
  net_kg REAL,
  seq INTEGER NOT NULL
);
)sql";

void AppendField(std::string* out, std::string_view field) {
  out->append(std::to_string(field.size()));
  out->push_back(':');
  out->append(field);
}

}  // namespace

std::string ChainHash(const std::string& prev_hash, std::int64_t seq, const Event& e) {
  std::string material;
  material.reserve(prev_hash.size() + e.body.size() + 128);
  AppendField(&material, prev_hash);
  AppendField(&material, std::to_string(seq));
  AppendField(&material, e.id);
  AppendField(&material, e.code);
  AppendField(&material, e.type);
  AppendField(&material, std::to_string(e.at.unix_ms));
  AppendField(&material, e.actor_role);
  AppendField(&material, e.actor_id);
  AppendField(&material, e.body);
  // Fetched once: OpenSSL 3 looks the algorithm up anew on every EVP_sha256() use.
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(material.data(), material.size(), digest, &len, sha256, nullptr);
  return std::string(reinterpret_cast<const char*>(digest), len);
}

Result<ScopedStatement> Conn::Prepare(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    auto st = sql::Statement::Prepare(db_, sql);
    if (!st.ok()) return st.status();
    it = cache_.emplace(sql, std::move(*st)).first;
  }
  it->second.Reset();
  return ScopedStatement(&it->second);
}

std::string EventId(std::int64_t seq) {
  return "ev-" + std::to_string(seq);
}

std::optional<std::int64_t> SeqOfEventId(std::string_view id) {
  // At most 18 digits, so that the number cannot overflow: ids come from clients.
  if (id.size() < 4 || id.size() > 3 + 18 || id.substr(0, 3) != "ev-") return std::nullopt;
  std::int64_t seq = 0;
  for (char c : id.substr(3)) {
    if (c < '0' || c > '9') return std::nullopt;
    seq = seq * 10 + (c - '0');
  }
  return seq;
}

Result<std::int64_t> WriteTx::Append(Event e) {
  const std::int64_t seq = *head_seq_ + 1;
  if (e.id.empty()) e.id = EventId(seq);
  std::string hash = ChainHash(*head_hash_, seq, e);
  auto st = conn_->Prepare(
      "INSERT INTO events(seq, id, code, type, at, actor_role, actor_id, body, hash) "
      "VALUES(?,?,?,?,?,?,?,?,?)");
  if (!st.ok()) return st.status();
  (*st)->Bind(1, seq).Bind(2, e.id).Bind(5, e.at.unix_ms).Bind(3, e.code).Bind(4, e.type);
  if (e.code.empty()) (*st)->BindNull(3);
  (*st)->Bind(6, e.actor_role).Bind(7, e.actor_id).Bind(8, e.body);
  (*st)->BindBlob(9, hash.data(), hash.size());
  PINGMA_RETURN_IF_ERROR((*st)->Run());
  *head_seq_ = seq;
  *head_hash_ = std::move(hash);
  return seq;
}

Status RunCached(Conn& conn, const std::string& sql) {
  auto st = conn.Prepare(sql);
  if (!st.ok()) return st.status();
  return (*st)->Run();
}

Reply WriteTx::Nested(const std::function<Reply()>& fn) {
  return InSavepoint(*conn_, "item", head_hash_, head_seq_, fn);
}

Reply InSavepoint(Conn& conn, const std::string& name, std::string* head_hash,
                  std::int64_t* head_seq, const std::function<Reply()>& fn) {
  if (Status s = RunCached(conn, "SAVEPOINT " + name); !s.ok()) return ErrorReply(s);
  const std::string saved_hash = *head_hash;
  const std::int64_t saved_seq = *head_seq;
  Reply reply;
  try {
    reply = fn();
  } catch (const std::exception& e) {
    reply = ErrorReply(Status::Internal(std::string("unexpected error: ") + e.what()));
  }
  if (reply.failed()) {
    // The work changes nothing: undo its rows and its links in the chain.
    (void)RunCached(conn, "ROLLBACK TO " + name);
    *head_hash = saved_hash;
    *head_seq = saved_seq;
  }
  (void)RunCached(conn, "RELEASE " + name);
  return reply;
}

Result<std::unique_ptr<Store>> Store::Open(const std::string& path, const Clock& clock) {
  std::unique_ptr<Store> store(new Store(path, clock));
  PINGMA_RETURN_IF_ERROR(store->Init());
  store->thread_ = std::thread([s = store.get()] {
    pthread_setname_np(pthread_self(), "pingma-writer");
    s->WriterLoop();
  });
  return store;
}

Status Store::Init() {
  auto db = sql::Database::Open(path_, /*create=*/true, /*read_only=*/false);
  if (!db.ok()) return db.status();
  writer_ = std::make_unique<Conn>(std::move(*db));
  PINGMA_RETURN_IF_ERROR(writer_->db().Exec("PRAGMA cache_size=-1048576"));  // 1 GiB
  PINGMA_RETURN_IF_ERROR(writer_->db().Exec(kSchema));
  return LoadHead();
}

Status Store::LoadHead() {
  auto head = writer_->Prepare("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1");
  if (!head.ok()) return head.status();
  auto row = (*head)->Step();
  if (!row.ok()) return row.status();
  head_seq_ = *row ? (*head)->Int(0) : 0;
  head_hash_ = *row ? std::string((*head)->Blob(1)) : std::string();
  return Status::Ok();
}

Store::~Store() {
  Close();
}

void Store::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(readers_mu_);
  readers_.clear();
  writer_.reset();
}

void Store::Submit(Job job, Done done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      queue_.push_back({std::move(job), std::move(done)});
      cv_.notify_one();
      return;
    }
  }
  done(ErrorReply(Status::Unavailable("the registry is shutting down")));
}

Reply Store::Run(Job job) {
  std::promise<Reply> promise;
  auto future = promise.get_future();
  Submit(std::move(job), [&promise](Reply r) { promise.set_value(std::move(r)); });
  return future.get();
}

void Store::WriterLoop() {
  constexpr size_t kMaxBatch = 1024;
  std::vector<Pending> batch;
  std::vector<Reply> replies;
  size_t last_batch = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued is done
      // Group commit: the clients of the last batch are likely sending their next
      // requests right now. Give them a moment to join this batch; a lone client
      // (last batch of one) never waits.
      if (queue_.size() < last_batch && !stopping_) {
        cv_.wait_for(lock, std::chrono::microseconds(250),
                     [&] { return stopping_ || queue_.size() >= last_batch; });
      }
      while (!queue_.empty() && batch.size() < kMaxBatch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    last_batch = batch.size();
    stats_.max_batch = std::max(stats_.max_batch, batch.size());
    ++stats_.batches;
    stats_.jobs += batch.size();
    // Another process (`token add`) may have appended since the last batch: with
    // the write lock held, the head read here is the real one.
    Status begun = writer_->db().Exec("BEGIN IMMEDIATE");
    if (begun.ok()) {
      begun = LoadHead();
      if (!begun.ok()) (void)writer_->db().Exec("ROLLBACK");
    }
    for (auto& p : batch) {
      if (!begun.ok()) {
        replies.push_back(ErrorReply(begun));
        continue;
      }
      WriteTx tx(writer_.get(), &head_hash_, &head_seq_, clock_.Now());
      replies.push_back(
          InSavepoint(*writer_, "job", &head_hash_, &head_seq_, [&] { return p.job(tx); }));
    }
    if (begun.ok()) {
      Status committed = writer_->db().Exec("COMMIT");
      if (!committed.ok()) {
        (void)writer_->db().Exec("ROLLBACK");
        if (on_commit_failure_) on_commit_failure_();
        for (auto& r : replies) r = ErrorReply(committed);
      }
    }
    for (size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(replies[i]));
    batch.clear();
    replies.clear();
  }
}

Result<std::unique_ptr<Conn>> Store::AcquireReader() {
  {
    std::lock_guard<std::mutex> lock(readers_mu_);
    if (!readers_.empty()) {
      auto conn = std::move(readers_.back());
      readers_.pop_back();
      return conn;
    }
  }
  auto db = sql::Database::Open(path_, /*create=*/false, /*read_only=*/true);
  if (!db.ok()) return db.status();
  PINGMA_RETURN_IF_ERROR(db->Exec("PRAGMA cache_size=-65536"));  // 64 MiB
  return std::make_unique<Conn>(std::move(*db));
}

void Store::ReleaseReader(std::unique_ptr<Conn> conn) {
  std::lock_guard<std::mutex> lock(readers_mu_);
  readers_.push_back(std::move(conn));
}

Result<std::string> VerifyChain(const std::string& path) {
  auto db = sql::Database::Open(path, /*create=*/false, /*read_only=*/true);
  if (!db.ok()) return db.status();
  auto st = sql::Statement::Prepare(
      *db,
      "SELECT seq, id, code, type, at, actor_role, actor_id, body, hash FROM events "
      "ORDER BY seq");
  if (!st.ok()) return st.status();
  std::string prev;
  std::int64_t count = 0, expected_seq = 1;
  for (;;) {
    auto row = st->Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    Event e{st->Text(1), st->Text(2), st->Text(3), Instant{st->Int(4)},
            st->Text(5), st->Text(6), st->Text(7)};
    const std::int64_t seq = st->Int(0);
    if (seq != expected_seq) {
      return Status::Corruption(
          fmt::format("the chain breaks at event #{}: event #{} is missing", seq, expected_seq));
    }
    std::string hash = ChainHash(prev, seq, e);
    if (hash != st->Blob(8)) {
      return Status::Corruption(fmt::format(
          "the chain breaks at event #{} (id {}, type {}): its content does not match its hash",
          seq, e.id, e.type));
    }
    prev = std::move(hash);
    ++count;
    ++expected_seq;
  }
  return fmt::format("ok: {} events, chain intact", count);
}

}  // namespace pingma::registry
