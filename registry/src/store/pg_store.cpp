#include "store/pg_store.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <vector>

#include <fmt/format.h>

#include "store/pg_sql.h"

namespace pingma::registry {

Result<std::unique_ptr<PgStore>> PgStore::Open(const std::string& conninfo, const Clock& clock) {
  std::unique_ptr<PgStore> store(new PgStore(conninfo, clock));
  PINGMA_RETURN_IF_ERROR(store->Connect());
  store->thread_ = std::thread([s = store.get()] {
    pthread_setname_np(pthread_self(), "pingma-writer");
    s->WriterLoop();
  });
  return store;
}

PgStore::~PgStore() {
  Close();
}

Status PgStore::Connect() {
  writer_.reset();
  auto db = sql::PgDatabase::Open(conninfo_);
  if (!db.ok()) return db.status();
  PINGMA_RETURN_IF_ERROR(pgstore::ApplyMigrations((*db)->connection()));
  auto conn = std::make_unique<Conn>(std::move(*db));
  writer_ = std::move(conn);
  return Status::Ok();
}

void PgStore::Close() {
  RunBeforeClose();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(readers_mu_);
  readers_.clear();
  writer_.reset();
}

void PgStore::Submit(Job job, Done done) {
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

void PgStore::WriterLoop() {
  constexpr size_t kMaxBatch = 1024;
  std::vector<Pending> batch;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued is done
      while (!queue_.empty() && batch.size() < kMaxBatch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    stats_.max_batch = std::max(stats_.max_batch, batch.size());
    ++stats_.batches;
    stats_.jobs += batch.size();
    Status begun = Status::Ok();
    if (!writer_) {
      begun = Connect();
      if (begun.ok()) std::fprintf(stderr, "pingma-registry: connected to PostgreSQL again\n");
    }
    if (begun.ok()) begun = writer_->db().Exec("BEGIN");
    if (begun.ok()) {
      // The head as the last batch of any registry left it; held until COMMIT.
      auto head = writer_->Prepare("SELECT seq, hash FROM chain_head FOR UPDATE");
      auto row = head.ok() ? (*head)->Step() : Result<bool>(head.status());
      if (!row.ok()) {
        begun = row.status();
      } else if (!*row) {
        begun = Status::Corruption("PostgreSQL's chain_head has no row");
      } else {
        head_seq_ = (*head)->Int(0);
        head_hash_ = std::string((*head)->Blob(1));
      }
    }
    // Another registry (or `token add`) appended since this one's last commit:
    // what this registry keeps from the log is read again.
    if (begun.ok() && known_seq_ >= 0 && (head_seq_ != known_seq_ || failed_since_) &&
        hooks_.on_foreign_appends) {
      failed_since_ = false;
      hooks_.on_foreign_appends(*writer_, known_seq_);
    }
    const std::int64_t start_seq = head_seq_;
    std::vector<Reply> replies;
    replies.reserve(batch.size());
    for (auto& p : batch) {
      if (!begun.ok()) {
        replies.push_back(ErrorReply(Status::Unavailable(begun.message())));
        continue;
      }
      WriteTx tx(writer_.get(), &head_hash_, &head_seq_, clock_.Now(), &hooks_);
      replies.push_back(
          InSavepoint(*writer_, "job", &head_hash_, &head_seq_, hooks_, [&] { return p.job(tx); }));
    }
    Status ended = begun;
    if (ended.ok() && head_seq_ != start_seq) {
      auto update = writer_->Prepare("UPDATE chain_head SET seq = $1, hash = $2");
      ended = update.ok() ? (*update)
                                ->Bind(1, head_seq_)
                                .BindBlob(2, head_hash_.data(), head_hash_.size())
                                .Run()
                          : update.status();
    }
    if (ended.ok()) ended = writer_->db().Exec("COMMIT");
    if (!ended.ok()) {
      if (writer_) {
        (void)writer_->db().Exec("ROLLBACK");
        // A connection that failed is made again by the next batch; the readers'
        // were most likely to the same server, and go too.
        if (!writer_->db().ok()) {
          std::fprintf(stderr, "pingma-registry: lost PostgreSQL (%s); connecting again\n",
                       ended.message().c_str());
          writer_.reset();
          std::lock_guard<std::mutex> lock(readers_mu_);
          readers_.clear();
        }
      }
      if (begun.ok() && hooks_.on_rollback) hooks_.on_rollback(/*whole_batch=*/true);
      failed_since_ = true;
      // Whether a COMMIT whose answer was lost took effect is not known: the
      // client retries, and what it retries is idempotent or refused as a repeat.
      const Status failed = Status::Unavailable(ended.message());
      for (auto& p : batch) p.done(ErrorReply(failed));
    } else {
      known_seq_ = head_seq_;
      for (size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(replies[i]));
    }
    batch.clear();
  }
}

Result<std::unique_ptr<Conn>> PgStore::AcquireReader() {
  {
    std::lock_guard<std::mutex> lock(readers_mu_);
    if (!readers_.empty()) {
      auto conn = std::move(readers_.back());
      readers_.pop_back();
      return conn;
    }
  }
  auto db = sql::PgDatabase::Open(conninfo_);
  if (!db.ok()) return db.status();
  return std::make_unique<Conn>(std::move(*db));
}

void PgStore::ReleaseReader(std::unique_ptr<Conn> conn) {
  if (!conn->db().ok()) return;  // broken: the next read connects again
  std::lock_guard<std::mutex> lock(readers_mu_);
  readers_.push_back(std::move(conn));
}

}  // namespace pingma::registry

namespace pingma::registry::pgstore {
namespace {

// Version 1: the SQLite store's tables (store.cpp kSchema) in PostgreSQL's types
// (ids that SQLite makes for INTEGER PRIMARY KEY made by identity columns):
// INTEGER bigint, REAL double precision, TEXT text, BLOB bytea. Flags stay 0/1
// integers, so that the same statements read both stores.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE events(
  seq bigint NOT NULL,
  id text COLLATE "C" NOT NULL,
  code text COLLATE "C",
  type text COLLATE "C" NOT NULL,
  at bigint NOT NULL,
  actor_role text COLLATE "C" NOT NULL,
  actor_id text COLLATE "C" NOT NULL,
  body text COLLATE "C" NOT NULL,
  hash bytea NOT NULL,
  PRIMARY KEY (seq, at)
) PARTITION BY RANGE (at);
CREATE TABLE events_default PARTITION OF events DEFAULT;
CREATE INDEX events_by_code ON events(code, seq) WHERE code IS NOT NULL;
CREATE INDEX events_public_reports ON events(seq) WHERE type = 'public_report';
-- The chain's last link. Every append locks this row (SELECT ... FOR UPDATE), so
-- that appends from any number of registries form one chain, in commit order.
CREATE TABLE chain_head(
  one boolean PRIMARY KEY DEFAULT true CHECK (one),
  seq bigint NOT NULL,
  hash bytea NOT NULL
);
INSERT INTO chain_head(one, seq, hash) VALUES(true, 0, ''::bytea);
CREATE TABLE tokens(
  hash bytea PRIMARY KEY,
  role text COLLATE "C" NOT NULL,
  subject text COLLATE "C" NOT NULL,
  created_at bigint NOT NULL
);
CREATE TABLE companies(
  id text COLLATE "C" PRIMARY KEY,
  name text COLLATE "C" NOT NULL,
  license_number text COLLATE "C",
  license_valid_until text COLLATE "C",
  license_revoked bigint NOT NULL DEFAULT 0
);
CREATE TABLE stations(
  id text COLLATE "C" PRIMARY KEY,
  company_id text COLLATE "C" NOT NULL REFERENCES companies(id),
  name text COLLATE "C" NOT NULL,
  district text COLLATE "C" NOT NULL DEFAULT '',
  locked bigint NOT NULL DEFAULT 0,
  lock_reason text COLLATE "C" NOT NULL DEFAULT ''
);
CREATE INDEX stations_by_company ON stations(company_id, id);
CREATE TABLE operators(
  id text COLLATE "C" PRIMARY KEY,
  company_id text COLLATE "C" NOT NULL REFERENCES companies(id),
  name text COLLATE "C" NOT NULL,
  cert_number text COLLATE "C",
  cert_valid_until text COLLATE "C"
);
CREATE TABLE custody(
  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  owner_company_id text COLLATE "C" NOT NULL REFERENCES companies(id),
  custodian_company_id text COLLATE "C" NOT NULL REFERENCES companies(id),
  valid_from text COLLATE "C" NOT NULL,
  valid_until text COLLATE "C" NOT NULL,
  created_seq bigint NOT NULL
);
CREATE INDEX custody_by_custodian ON custody(custodian_company_id);
CREATE TABLE recalls(
  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
  manufacturer text COLLATE "C" NOT NULL,
  manufactured_from text COLLATE "C",
  manufactured_to text COLLATE "C",
  reason text COLLATE "C" NOT NULL
);
CREATE INDEX recalls_by_manufacturer ON recalls(manufacturer);
CREATE TABLE cylinders(
  code text COLLATE "C" PRIMARY KEY,
  owner_company_id text COLLATE "C" NOT NULL REFERENCES companies(id),
  model text COLLATE "C" NOT NULL,
  phase text COLLATE "C" NOT NULL,
  manufacturer text COLLATE "C" NOT NULL,
  serial text COLLATE "C" NOT NULL DEFAULT '',
  manufactured text COLLATE "C" NOT NULL,
  tare_kg double precision NOT NULL,
  water_capacity_l double precision,
  allowed_fill_kg double precision,
  design_life_years bigint,
  registration_no text COLLATE "C" NOT NULL DEFAULT '',
  registration_state text COLLATE "C" NOT NULL DEFAULT 'valid',
  last_inspection text COLLATE "C",
  last_inspection_result text COLLATE "C",
  next_inspection_due text COLLATE "C",
  assessment_date text COLLATE "C",
  assessment_passed bigint,
  assessment_extends_until text COLLATE "C",
  state text COLLATE "C" NOT NULL DEFAULT 'active',
  state_reason text COLLATE "C",
  state_since bigint,
  last_fill_station text COLLATE "C",
  last_fill_at bigint,
  rev bigint NOT NULL,
  registered_at bigint
);
CREATE INDEX cylinders_by_owner_rev ON cylinders(owner_company_id, rev);
CREATE INDEX cylinders_scrap_pending ON cylinders(state) WHERE state <> 'active';
CREATE INDEX cylinders_scrap_queue ON cylinders(state_since, code) WHERE state = 'scrap_pending';
CREATE INDEX cylinders_scrap_queue_by_owner
  ON cylinders(owner_company_id, state_since, code) WHERE state = 'scrap_pending';
CREATE INDEX cylinders_unseen_filled ON cylinders(owner_company_id, last_fill_at, code)
  WHERE state = 'active' AND last_fill_at IS NOT NULL;
CREATE INDEX cylinders_unseen_unfilled ON cylinders(owner_company_id, registered_at, code)
  WHERE state = 'active' AND last_fill_at IS NULL AND registered_at IS NOT NULL;
-- Looked up by carrier; the code it points at is the shard key of what it binds.
CREATE TABLE carriers(
  carrier text COLLATE "C" PRIMARY KEY,
  code text COLLATE "C" NOT NULL REFERENCES cylinders(code),
  bound_seq bigint NOT NULL
);
CREATE INDEX carriers_by_code ON carriers(code);
CREATE TABLE fills(
  event_id text COLLATE "C" PRIMARY KEY,
  check_id text COLLATE "C" UNIQUE,
  code text COLLATE "C" NOT NULL,
  station_id text COLLATE "C" NOT NULL,
  ended_at bigint NOT NULL,
  result text COLLATE "C" NOT NULL,
  net_kg double precision,
  seq bigint NOT NULL
);
CREATE INDEX fills_by_station_time ON fills(station_id, ended_at);
CREATE INDEX fills_by_code ON fills(code, seq);
CREATE TABLE meta(
  key text COLLATE "C" PRIMARY KEY,
  value bytea NOT NULL
);
CREATE TABLE vehicles(
  id text COLLATE "C" PRIMARY KEY,
  company_id text COLLATE "C" NOT NULL REFERENCES companies(id),
  plate text COLLATE "C" NOT NULL,
  kind text COLLATE "C" NOT NULL DEFAULT ''
);
CREATE INDEX vehicles_by_company ON vehicles(company_id, id);
CREATE TABLE couriers(
  id text COLLATE "C" PRIMARY KEY,
  company_id text COLLATE "C" NOT NULL REFERENCES companies(id),
  name text COLLATE "C" NOT NULL,
  vehicle_id text COLLATE "C" NOT NULL REFERENCES vehicles(id),
  zones text COLLATE "C" NOT NULL,
  cert_number text COLLATE "C",
  cert_valid_until text COLLATE "C"
);
CREATE INDEX couriers_by_company ON couriers(company_id, id);
CREATE TABLE customers(
  id text COLLATE "C" PRIMARY KEY,
  company_id text COLLATE "C" NOT NULL REFERENCES companies(id),
  name text COLLATE "C" NOT NULL,
  phone_hash bytea NOT NULL,
  phone_masked text COLLATE "C" NOT NULL,
  id_hash bytea NOT NULL,
  id_masked text COLLATE "C" NOT NULL,
  address text COLLATE "C" NOT NULL,
  district text COLLATE "C" NOT NULL,
  kind text COLLATE "C" NOT NULL,
  basement bigint NOT NULL,
  semi_basement bigint NOT NULL,
  cylinder_room bigint NOT NULL,
  outdoor bigint NOT NULL
);
CREATE INDEX customers_by_phone ON customers(phone_hash);
CREATE INDEX customers_by_id_number ON customers(id_hash);
CREATE INDEX customers_by_name ON customers(name, id);
CREATE INDEX customers_by_company_name ON customers(company_id, name, id);
CREATE TABLE handovers(
  event_id text COLLATE "C" PRIMARY KEY,
  code text COLLATE "C" NOT NULL,
  customer_id text COLLATE "C" NOT NULL,
  courier_id text COLLATE "C" NOT NULL,
  direction text COLLATE "C" NOT NULL,
  decision text COLLATE "C" NOT NULL,
  answer text COLLATE "C" NOT NULL,
  seq bigint NOT NULL
);
CREATE INDEX handovers_by_code ON handovers(code, seq)
  WHERE direction = 'deliver' AND decision = 'allow';
CREATE TABLE whereabouts(
  code text COLLATE "C" PRIMARY KEY,
  holder_kind text COLLATE "C" NOT NULL,
  holder_id text COLLATE "C" NOT NULL,
  since_seq bigint NOT NULL
);
CREATE INDEX whereabouts_by_holder ON whereabouts(holder_kind, holder_id);
CREATE TABLE hazards(
  id text COLLATE "C" PRIMARY KEY,
  code text COLLATE "C" NOT NULL,
  item text COLLATE "C" NOT NULL,
  cylinder text COLLATE "C" NOT NULL,
  customer_id text COLLATE "C" NOT NULL,
  company_id text COLLATE "C" NOT NULL,
  responsible text COLLATE "C" NOT NULL,
  opened_by text COLLATE "C" NOT NULL,
  opened_at bigint NOT NULL,
  deadline text COLLATE "C" NOT NULL,
  state text COLLATE "C" NOT NULL,
  closed_by text COLLATE "C",
  closed_at bigint,
  closed_by_actor text COLLATE "C",
  how text COLLATE "C"
);
CREATE INDEX hazards_by_company ON hazards(company_id, state, deadline);
CREATE INDEX hazards_by_state ON hazards(state, deadline);
CREATE TABLE check_days(
  day text COLLATE "C" NOT NULL,
  station_id text COLLATE "C" NOT NULL,
  company_id text COLLATE "C" NOT NULL,
  checks bigint NOT NULL,
  refused bigint NOT NULL,
  PRIMARY KEY(day, station_id)
);
CREATE TABLE refusal_days(
  day text COLLATE "C" NOT NULL,
  station_id text COLLATE "C" NOT NULL,
  reason text COLLATE "C" NOT NULL,
  company_id text COLLATE "C" NOT NULL,
  n bigint NOT NULL,
  PRIMARY KEY(day, station_id, reason)
);
CREATE TABLE refusals(
  seq bigint PRIMARY KEY,
  at bigint NOT NULL,
  day text COLLATE "C" NOT NULL,
  station_id text COLLATE "C" NOT NULL,
  company_id text COLLATE "C" NOT NULL,
  operator_id text COLLATE "C" NOT NULL,
  code text COLLATE "C" NOT NULL,
  reasons text COLLATE "C" NOT NULL
);
CREATE INDEX refusals_by_day ON refusals(day, seq);
CREATE INDEX refusals_by_company ON refusals(company_id, day, seq);
CREATE INDEX refusals_by_station ON refusals(station_id, day, seq);
-- Kept by the trigger below exactly as the SQLite store's triggers keep it.
CREATE TABLE due_counts(
  company_id text COLLATE "C" NOT NULL,
  basis bigint NOT NULL,
  model text COLLATE "C" NOT NULL,
  base text COLLATE "C" NOT NULL,
  n bigint NOT NULL,
  PRIMARY KEY(company_id, basis, model, base)
);
CREATE FUNCTION pingma_due_counts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.state = 'active' THEN
    UPDATE due_counts SET n = n - 1 WHERE company_id = OLD.owner_company_id
      AND basis = CASE WHEN OLD.next_inspection_due IS NOT NULL THEN 0
                       WHEN OLD.last_inspection IS NOT NULL THEN 1 ELSE 2 END
      AND model = CASE WHEN OLD.next_inspection_due IS NOT NULL THEN '' ELSE OLD.model END
      AND base = COALESCE(OLD.next_inspection_due, OLD.last_inspection, OLD.manufactured);
  END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.state = 'active' THEN
    INSERT INTO due_counts(company_id, basis, model, base, n) VALUES(NEW.owner_company_id,
      CASE WHEN NEW.next_inspection_due IS NOT NULL THEN 0
           WHEN NEW.last_inspection IS NOT NULL THEN 1 ELSE 2 END,
      CASE WHEN NEW.next_inspection_due IS NOT NULL THEN '' ELSE NEW.model END,
      COALESCE(NEW.next_inspection_due, NEW.last_inspection, NEW.manufactured), 1)
    ON CONFLICT (company_id, basis, model, base) DO UPDATE SET n = due_counts.n + 1;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER due_counts_insert_delete AFTER INSERT OR DELETE ON cylinders
  FOR EACH ROW EXECUTE FUNCTION pingma_due_counts();
CREATE TRIGGER due_counts_update AFTER UPDATE OF owner_company_id, model, manufactured,
  last_inspection, next_inspection_due, state ON cylinders
  FOR EACH ROW EXECUTE FUNCTION pingma_due_counts();
-- What `migrate` has copied: a table once its rows are in, with their count.
CREATE TABLE migration_progress(
  table_name text COLLATE "C" PRIMARY KEY,
  rows bigint NOT NULL,
  finished_at timestamptz NOT NULL DEFAULT now()
);
)sql";

// Version 2: checks decided offline (store.cpp kSchema says what each is for):
// their counts beside the checks', the refusals' offline columns, and the table
// that keeps an uploaded check from being stored twice.
constexpr const char* kSchemaV2 = R"sql(
ALTER TABLE check_days ADD COLUMN offline_checks bigint NOT NULL DEFAULT 0,
  ADD COLUMN offline_refused bigint NOT NULL DEFAULT 0,
  ADD COLUMN disagreements bigint NOT NULL DEFAULT 0;
ALTER TABLE refusal_days ADD COLUMN offline_n bigint NOT NULL DEFAULT 0,
  ADD COLUMN disagreements bigint NOT NULL DEFAULT 0;
ALTER TABLE refusals ADD COLUMN offline bigint NOT NULL DEFAULT 0,
  ADD COLUMN registry_decision text COLLATE "C",
  ADD COLUMN agrees bigint;
CREATE TABLE offline_checks(
  check_id text COLLATE "C" PRIMARY KEY,
  seq bigint NOT NULL,
  answer text COLLATE "C" NOT NULL
);
)sql";

// Version 3: the tokens' lifecycle (store.cpp kSchema says what each column is
// for); tokens made before get random public ids.
constexpr const char* kSchemaV3 = R"sql(
ALTER TABLE tokens ADD COLUMN id text COLLATE "C",
  ADD COLUMN note text COLLATE "C",
  ADD COLUMN expires text COLLATE "C",
  ADD COLUMN expires_at bigint,
  ADD COLUMN revoked_at bigint,
  ADD COLUMN revoked_seq bigint,
  ADD COLUMN last_used_at bigint;
UPDATE tokens SET id = 'tk-' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 12)
  WHERE id IS NULL;
ALTER TABLE tokens ALTER COLUMN id SET NOT NULL;
CREATE UNIQUE INDEX tokens_by_id ON tokens(id);
CREATE INDEX tokens_by_revoked_seq ON tokens(revoked_seq);
)sql";

// Personal data the log refers to but must not keep (personal_data.cpp).
constexpr const char* kSchemaV4 = R"sql(
CREATE TABLE personal_data(
  id text COLLATE "C" PRIMARY KEY,
  code text COLLATE "C" NOT NULL,
  field text COLLATE "C" NOT NULL,
  value text COLLATE "C" NOT NULL,
  salt bytea NOT NULL,
  created_at bigint NOT NULL
);
CREATE INDEX personal_data_by_age ON personal_data(field, created_at);
)sql";

struct Migration {
  int version;
  const char* description;
  const char* sql;
};

constexpr Migration kMigrations[] = {
    {1, "the registry's tables, the partitioned event log, the chain head", kSchemaV1},
    {2, "checks decided offline: their counts, the refusals' offline columns, offline_checks",
     kSchemaV2},
    {3, "the tokens' lifecycle: public ids, notes, expiry, revocation, last use", kSchemaV3},
    {4, "personal data kept outside the log: personal_data", kSchemaV4},
};

constexpr std::int64_t kSchemaLock = 0x70696e676d61;  // "pingma"

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The first instant (Unix ms, UTC) of the month holding `ms`, and of the month
// `months` after it.
std::int64_t MonthStart(std::int64_t ms, int months = 0) {
  std::time_t seconds = static_cast<std::time_t>(ms / 1000 - (ms % 1000 < 0 ? 1 : 0));
  std::tm t{};
  gmtime_r(&seconds, &t);
  int year = t.tm_year + 1900;
  int month = t.tm_mon + months;  // 0-based
  year += month >= 0 ? month / 12 : (month - 11) / 12;
  month = ((month % 12) + 12) % 12;
  std::tm start{};
  start.tm_year = year - 1900;
  start.tm_mon = month;
  start.tm_mday = 1;
  return static_cast<std::int64_t>(timegm(&start)) * 1000;
}

}  // namespace

Status MakePartitions(pg::Connection& conn, std::int64_t from_ms, std::int64_t to_ms) {
  for (std::int64_t start = MonthStart(from_ms); start <= to_ms;) {
    const std::int64_t end = MonthStart(start, 1);
    std::time_t seconds = static_cast<std::time_t>(start / 1000);
    std::tm t{};
    gmtime_r(&seconds, &t);
    const std::string name = fmt::format("events_{:04d}_{:02d}", t.tm_year + 1900, t.tm_mon + 1);
    auto exists = pg::QueryInt(conn, "SELECT count(*) FROM pg_class WHERE relname = $1", {name});
    if (!exists.ok()) return exists.status();
    if (*exists == 0) {
      // A month's rows that reached the default partition first would make the
      // new partition fail: they are moved into it in the same transaction.
      auto move_and_create = [&]() -> Status {
        // The parent first, then the default partition: the order in which a
        // reader of the log takes them, so that neither waits on the other.
        PINGMA_RETURN_IF_ERROR(
            conn.Exec("LOCK TABLE events IN ACCESS EXCLUSIVE MODE; "
                      "LOCK TABLE events_default IN ACCESS EXCLUSIVE MODE"));
        PINGMA_RETURN_IF_ERROR(conn.Exec(fmt::format(
            "CREATE TEMP TABLE moved ON COMMIT DROP AS SELECT * FROM events_default "
            "WHERE at >= {0} AND at < {1}; "
            "DELETE FROM events_default WHERE at >= {0} AND at < {1}; "
            "CREATE TABLE IF NOT EXISTS {2} PARTITION OF events FOR VALUES FROM ({0}) TO "
            "({1}); "
            "INSERT INTO events SELECT * FROM moved",
            start, end, name)));
        return Status::Ok();
      };
      PINGMA_RETURN_IF_ERROR(pg::InTransaction(conn, move_and_create));
    }
    start = end;
  }
  return Status::Ok();
}

Status ApplyMigrations(pg::Connection& conn) {
  auto apply = [&]() -> Status {
    // A migration may take long, and may wait for another registry's.
    PINGMA_RETURN_IF_ERROR(
        conn.Exec("SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0"));
    PINGMA_RETURN_IF_ERROR(conn.Exec(fmt::format("SELECT pg_advisory_xact_lock({})", kSchemaLock)));
    PINGMA_RETURN_IF_ERROR(
        conn.Exec("CREATE TABLE IF NOT EXISTS schema_migrations("
                  "version integer PRIMARY KEY, description text NOT NULL, "
                  "applied_at timestamptz NOT NULL DEFAULT now())"));
    auto applied = pg::QueryInt(conn, "SELECT COALESCE(max(version), 0) FROM schema_migrations");
    if (!applied.ok()) return applied.status();
    const int newest = kMigrations[std::size(kMigrations) - 1].version;
    if (*applied > newest) {
      return Status::Invalid(fmt::format(
          "the database's schema is version {}, newer than this registry's {}: upgrade the "
          "registry",
          *applied, newest));
    }
    for (const Migration& m : kMigrations) {
      if (m.version <= *applied) continue;
      PINGMA_RETURN_IF_ERROR(conn.Exec(m.sql));
      auto mark = conn.Query("INSERT INTO schema_migrations(version, description) VALUES($1, $2)",
                             {std::to_string(m.version), m.description});
      if (!mark.ok()) return mark.status();
    }
    return Status::Ok();
  };
  PINGMA_RETURN_IF_ERROR(pg::InTransaction(conn, apply));
  const std::int64_t now = NowMs();
  return MakePartitions(conn, now, MonthStart(now, 3));
}

}  // namespace pingma::registry::pgstore
