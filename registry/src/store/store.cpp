#include "store/store.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>

#include <fmt/format.h>

#include "store/pg_store.h"
#include "store/wal_vfs.h"

namespace pingma::registry {
namespace {

// The text of an errno value; std::strerror is not safe on the syncer threads.
std::string ErrnoText(int error) {
  char buffer[256];
  return ::strerror_r(error, buffer, sizeof buffer);  // GNU: the text, wherever it is
}

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
-- A cylinder's history, partitioned by time (kEventBucketBits): new entries all
-- land in the newest partition, whose pages stay few and hot however large the
-- log grows, instead of at random places in one index over every event.
CREATE INDEX IF NOT EXISTS events_by_code_time ON events(seq >> 16, code, seq)
  WHERE code IS NOT NULL;
DROP INDEX IF EXISTS events_by_code;
-- Bearer tokens, by the SHA-256 of the secret (the secret itself is never kept).
-- `id` is a short public name (random, not derived from the secret) by which a
-- token is listed and revoked; `expires` the last day it works (YYYY-MM-DD, in
-- the policy's zone) and `expires_at` the first instant (Unix ms) it no longer
-- does; `revoked_seq` the log's token_revoked event, whose max() tells every
-- registry on the database that a token was revoked; `last_used_at` is written
-- at most once a minute per token (tokens.h).
CREATE TABLE IF NOT EXISTS tokens(
  hash BLOB PRIMARY KEY,
  role TEXT NOT NULL,
  subject TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  id TEXT,
  note TEXT,
  expires TEXT,
  expires_at INTEGER,
  revoked_at INTEGER,
  revoked_seq INTEGER,
  last_used_at INTEGER
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS tokens_by_id ON tokens(id);
CREATE INDEX IF NOT EXISTS tokens_by_revoked_seq ON tokens(revoked_seq);
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
  rev INTEGER NOT NULL,
  registered_at INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS cylinders_by_owner_rev ON cylinders(owner_company_id, rev);
CREATE INDEX IF NOT EXISTS cylinders_scrap_pending ON cylinders(state) WHERE state <> 'active';
-- The scrap queue in its order (oldest flag first), all companies and per company.
CREATE INDEX IF NOT EXISTS cylinders_scrap_queue ON cylinders(state_since, code)
  WHERE state = 'scrap_pending';
CREATE INDEX IF NOT EXISTS cylinders_scrap_queue_by_owner
  ON cylinders(owner_company_id, state_since, code) WHERE state = 'scrap_pending';
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
-- Secrets the server makes for itself, such as the key of the customers' phone
-- and ID hashes (never sent anywhere).
-- Personal data the log refers to but must not keep (personal_data.cpp): deleted
-- when its field's retention (policy) has passed, or a regulator erases it.
CREATE TABLE IF NOT EXISTS personal_data(
  id TEXT PRIMARY KEY,
  code TEXT NOT NULL,
  field TEXT NOT NULL,
  value TEXT NOT NULL,
  salt BLOB NOT NULL,
  created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS personal_data_by_age ON personal_data(field, created_at);
CREATE TABLE IF NOT EXISTS meta(
  key TEXT PRIMARY KEY,
  value BLOB NOT NULL
) WITHOUT ROWID;
-- Delivery (送气): couriers bound to one vehicle (人车对应) with their zones (a JSON
-- array of districts), vehicles, and real-name customers (实名购气), whose phone
-- and ID number are kept only as keyed hashes and masked forms.
CREATE TABLE IF NOT EXISTS vehicles(
  id TEXT PRIMARY KEY,
  company_id TEXT NOT NULL REFERENCES companies(id),
  plate TEXT NOT NULL,
  kind TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS couriers(
  id TEXT PRIMARY KEY,
  company_id TEXT NOT NULL REFERENCES companies(id),
  name TEXT NOT NULL,
  vehicle_id TEXT NOT NULL REFERENCES vehicles(id),
  zones TEXT NOT NULL,
  cert_number TEXT,
  cert_valid_until TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS customers(
  id TEXT PRIMARY KEY,
  company_id TEXT NOT NULL REFERENCES companies(id),
  name TEXT NOT NULL,
  phone_hash BLOB NOT NULL,
  phone_masked TEXT NOT NULL,
  id_hash BLOB NOT NULL,
  id_masked TEXT NOT NULL,
  address TEXT NOT NULL,
  district TEXT NOT NULL,
  kind TEXT NOT NULL,
  basement INTEGER NOT NULL,
  semi_basement INTEGER NOT NULL,
  cylinder_room INTEGER NOT NULL,
  outdoor INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS customers_by_phone ON customers(phone_hash);
CREATE INDEX IF NOT EXISTS customers_by_id_number ON customers(id_hash);
-- Every handover by its client-made event_id, with the answer given, so that a
-- retry gets the same answer and nothing is stored twice.
CREATE TABLE IF NOT EXISTS handovers(
  event_id TEXT PRIMARY KEY,
  code TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  courier_id TEXT NOT NULL,
  direction TEXT NOT NULL,
  decision TEXT NOT NULL,
  answer TEXT NOT NULL,
  seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS handovers_by_code ON handovers(code, seq)
  WHERE direction = 'deliver' AND decision = 'allow';
-- Where each handed-over cylinder is: with a customer after a delivery, back with
-- a company after a collection.
CREATE TABLE IF NOT EXISTS whereabouts(
  code TEXT PRIMARY KEY,
  holder_kind TEXT NOT NULL,
  holder_id TEXT NOT NULL,
  since_seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS whereabouts_by_holder ON whereabouts(holder_kind, holder_id);
-- The hazard ledger (隐患台账).
CREATE TABLE IF NOT EXISTS hazards(
  id TEXT PRIMARY KEY,
  code TEXT NOT NULL,
  item TEXT NOT NULL,
  cylinder TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  company_id TEXT NOT NULL,
  responsible TEXT NOT NULL,
  opened_by TEXT NOT NULL,
  opened_at INTEGER NOT NULL,
  deadline TEXT NOT NULL,
  state TEXT NOT NULL,
  closed_by TEXT,
  closed_at INTEGER,
  closed_by_actor TEXT,
  how TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS hazards_by_company ON hazards(company_id, state, deadline);
CREATE INDEX IF NOT EXISTS hazards_by_state ON hazards(state, deadline);
-- ---- The regulator's reads (regulator.cpp) ----------------------------------------
-- Fill checks per station and day (in the policy's zone), kept by each check
-- (filling.cpp), so that statistics cost days x stations, never the log. A check
-- a station decided offline counts on the day it was decided, refused when the
-- station refused; offline_checks, offline_refused and disagreements (the offline
-- checks the registry decided otherwise) count those among them. (Columns added
-- after the first are at the end, where ALTER TABLE puts them in an older store.)
CREATE TABLE IF NOT EXISTS check_days(
  day TEXT NOT NULL,
  station_id TEXT NOT NULL,
  company_id TEXT NOT NULL,
  checks INTEGER NOT NULL,
  refused INTEGER NOT NULL,
  offline_checks INTEGER NOT NULL DEFAULT 0,
  offline_refused INTEGER NOT NULL DEFAULT 0,
  disagreements INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(day, station_id)
) WITHOUT ROWID;
-- Refused checks per station, day and reason: a check refused for several
-- reasons counts once for each; offline_n and disagreements count the offline
-- refusals among them, and those the registry would have allowed.
CREATE TABLE IF NOT EXISTS refusal_days(
  day TEXT NOT NULL,
  station_id TEXT NOT NULL,
  reason TEXT NOT NULL,
  company_id TEXT NOT NULL,
  n INTEGER NOT NULL,
  offline_n INTEGER NOT NULL DEFAULT 0,
  disagreements INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(day, station_id, reason)
) WITHOUT ROWID;
-- Every refused check (a blocked fill_check event, by its seq): the ledger of
-- refusals without a walk of the log. Allowed checks leave nothing here. A
-- refusal decided offline has `at` the moment the station decided, offline 1,
-- and the registry's own decision and whether it agrees (1 or 0); an online one
-- has them null.
CREATE TABLE IF NOT EXISTS refusals(
  seq INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  day TEXT NOT NULL,
  station_id TEXT NOT NULL,
  company_id TEXT NOT NULL,
  operator_id TEXT NOT NULL,
  code TEXT NOT NULL,
  reasons TEXT NOT NULL,
  offline INTEGER NOT NULL DEFAULT 0,
  registry_decision TEXT,
  agrees INTEGER
);
-- Every check a station decided offline and uploaded (POST /v1/fill-checks/offline),
-- by the station's check_id, with the answer given and its fill_check event: the
-- key that keeps a check sent again from being stored twice, on any registry of
-- the store, across restarts.
CREATE TABLE IF NOT EXISTS offline_checks(
  check_id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  answer TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS refusals_by_day ON refusals(day, seq);
CREATE INDEX IF NOT EXISTS refusals_by_company ON refusals(company_id, day, seq);
CREATE INDEX IF NOT EXISTS refusals_by_station ON refusals(station_id, day, seq);
-- Active cylinders by what their next inspection is due from, per owner, kept by
-- the triggers below. The due date itself depends on the policy (the model's
-- interval), so the summary keeps its inputs: basis 0 a recorded due date (model
-- ''), 1 the last inspection's date, 2 the manufacture year-month; the reader adds
-- the interval. Its size is bounded by the calendar, not by the fleet.
CREATE TABLE IF NOT EXISTS due_counts(
  company_id TEXT NOT NULL,
  basis INTEGER NOT NULL,
  model TEXT NOT NULL,
  base TEXT NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY(company_id, basis, model, base)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS due_counts_insert AFTER INSERT ON cylinders
  WHEN NEW.state = 'active'
BEGIN
  INSERT INTO due_counts(company_id, basis, model, base, n) VALUES(NEW.owner_company_id,
    CASE WHEN NEW.next_inspection_due IS NOT NULL THEN 0
         WHEN NEW.last_inspection IS NOT NULL THEN 1 ELSE 2 END,
    CASE WHEN NEW.next_inspection_due IS NOT NULL THEN '' ELSE NEW.model END,
    COALESCE(NEW.next_inspection_due, NEW.last_inspection, NEW.manufactured), 1)
  ON CONFLICT(company_id, basis, model, base) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS due_counts_delete AFTER DELETE ON cylinders
  WHEN OLD.state = 'active'
BEGIN
  UPDATE due_counts SET n = n - 1 WHERE company_id = OLD.owner_company_id
    AND basis = CASE WHEN OLD.next_inspection_due IS NOT NULL THEN 0
                     WHEN OLD.last_inspection IS NOT NULL THEN 1 ELSE 2 END
    AND model = CASE WHEN OLD.next_inspection_due IS NOT NULL THEN '' ELSE OLD.model END
    AND base = COALESCE(OLD.next_inspection_due, OLD.last_inspection, OLD.manufactured);
END;
CREATE TRIGGER IF NOT EXISTS due_counts_update AFTER UPDATE OF owner_company_id, model,
  manufactured, last_inspection, next_inspection_due, state ON cylinders
BEGIN
  UPDATE due_counts SET n = n - 1 WHERE OLD.state = 'active'
    AND company_id = OLD.owner_company_id
    AND basis = CASE WHEN OLD.next_inspection_due IS NOT NULL THEN 0
                     WHEN OLD.last_inspection IS NOT NULL THEN 1 ELSE 2 END
    AND model = CASE WHEN OLD.next_inspection_due IS NOT NULL THEN '' ELSE OLD.model END
    AND base = COALESCE(OLD.next_inspection_due, OLD.last_inspection, OLD.manufactured);
  INSERT INTO due_counts(company_id, basis, model, base, n) SELECT NEW.owner_company_id,
    CASE WHEN NEW.next_inspection_due IS NOT NULL THEN 0
         WHEN NEW.last_inspection IS NOT NULL THEN 1 ELSE 2 END,
    CASE WHEN NEW.next_inspection_due IS NOT NULL THEN '' ELSE NEW.model END,
    COALESCE(NEW.next_inspection_due, NEW.last_inspection, NEW.manufactured), 1
    WHERE NEW.state = 'active'
  ON CONFLICT(company_id, basis, model, base) DO UPDATE SET n = n + 1;
END;
-- registered_at, the time of a cylinder's `registered` event (the start of the wait
-- of a cylinder never filled), is written by the INSERT itself: a trigger setting
-- it (as the schema once had) costs a second write of every new row.
DROP TRIGGER IF EXISTS cylinders_registered_at;
-- Active cylinders by their last sight, per owner, oldest first, so that a page
-- of the unseen costs its size: those filled by their last fill, those never
-- filled by their registration. Both keys grow with time, so that new entries
-- land at the end of an owner's range; a registration adds one entry, a
-- cylinder's first fill moves it from one index to the other. (A new row enters
-- the second only with registered_at set.)
CREATE INDEX IF NOT EXISTS cylinders_unseen_filled
  ON cylinders(owner_company_id, last_fill_at, code)
  WHERE state = 'active' AND last_fill_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS cylinders_unseen_unfilled
  ON cylinders(owner_company_id, registered_at, code)
  WHERE state = 'active' AND last_fill_at IS NULL AND registered_at IS NOT NULL;
-- The fills ledger by station and time, the public reports newest first, and the
-- console's lists by company.
CREATE INDEX IF NOT EXISTS fills_by_station_time ON fills(station_id, ended_at);
-- A cylinder's latest fill, which every delivery handover checks.
CREATE INDEX IF NOT EXISTS fills_by_code ON fills(code, seq);
CREATE INDEX IF NOT EXISTS events_public_reports ON events(seq) WHERE type = 'public_report';
CREATE INDEX IF NOT EXISTS stations_by_company ON stations(company_id, id);
CREATE INDEX IF NOT EXISTS vehicles_by_company ON vehicles(company_id, id);
CREATE INDEX IF NOT EXISTS couriers_by_company ON couriers(company_id, id);
CREATE INDEX IF NOT EXISTS customers_by_name ON customers(name, id);
CREATE INDEX IF NOT EXISTS customers_by_company_name ON customers(company_id, name, id);
)sql";

// Migrations that kSchema's CREATE ... IF NOT EXISTS cannot do, run before it.
constexpr const char* kAddRegisteredAt = "ALTER TABLE cylinders ADD COLUMN registered_at INTEGER";

// Columns added to a table after it was first made, in kSchema's order: a store
// made before gets them by ALTER TABLE, with defaults that are true of it (it
// holds no offline check, so every count of them is 0 and every refusal online).
struct AddedColumn {
  const char* table;
  const char* column;
  const char* definition;
};
constexpr AddedColumn kAddedColumns[] = {
    {"check_days", "offline_checks", "INTEGER NOT NULL DEFAULT 0"},
    {"check_days", "offline_refused", "INTEGER NOT NULL DEFAULT 0"},
    {"check_days", "disagreements", "INTEGER NOT NULL DEFAULT 0"},
    {"refusal_days", "offline_n", "INTEGER NOT NULL DEFAULT 0"},
    {"refusal_days", "disagreements", "INTEGER NOT NULL DEFAULT 0"},
    {"refusals", "offline", "INTEGER NOT NULL DEFAULT 0"},
    {"refusals", "registry_decision", "TEXT"},
    {"refusals", "agrees", "INTEGER"},
    {"tokens", "id", "TEXT"},
    {"tokens", "note", "TEXT"},
    {"tokens", "expires", "TEXT"},
    {"tokens", "expires_at", "INTEGER"},
    {"tokens", "revoked_at", "INTEGER"},
    {"tokens", "revoked_seq", "INTEGER"},
    {"tokens", "last_used_at", "INTEGER"},
};

// Tokens made before they had ids get one each (the shape of tokens.cpp's NewTokenId).
constexpr const char* kBackfillTokenIds =
    "UPDATE tokens SET id = 'tk-' || lower(hex(randomblob(6))) WHERE id IS NULL";

// A cylinder's registration time from its first `registered` event; 0 (long
// ago) when the log has none, so that it still counts as unseen.
constexpr const char* kBackfillRegisteredAt = R"sql(
UPDATE cylinders SET registered_at = COALESCE(r.at, 0)
FROM (SELECT c.code AS code, e.at AS at FROM cylinders c LEFT JOIN
        (SELECT code, MIN(at) AS at FROM events WHERE type = 'registered' GROUP BY code) e
        ON e.code = c.code WHERE c.registered_at IS NULL) r
WHERE cylinders.code = r.code;
)sql";
// Set once the fill-check counts hold every check of the log; a store whose
// counting tables are new has them filled from the log at start-up (filling.cpp).

static_assert(kEventBucketBits == 16, "events_by_code_time in the schema names the partition size");

}  // namespace

const char* const kFillDueCounts = R"sql(
INSERT INTO due_counts(company_id, basis, model, base, n)
SELECT owner_company_id,
  CASE WHEN next_inspection_due IS NOT NULL THEN 0
       WHEN last_inspection IS NOT NULL THEN 1 ELSE 2 END AS basis,
  CASE WHEN next_inspection_due IS NOT NULL THEN '' ELSE model END AS m,
  COALESCE(next_inspection_due, last_inspection, manufactured) AS b, COUNT(*)
FROM cylinders WHERE state = 'active' GROUP BY owner_company_id, basis, m, b;
)sql";

Result<ScopedStatement> Conn::Prepare(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    auto st = db_->Prepare(sql);
    if (!st.ok()) return st.status();
    it = cache_.emplace(sql, std::move(*st)).first;
  }
  it->second->Reset();
  return ScopedStatement(it->second.get());
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
      "VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9)");
  if (!st.ok()) return st.status();
  // Unowned: `e` and `hash` outlive the Run below.
  sql::Statement& insert = **st;
  insert.Bind(1, seq).BindUnowned(2, e.id).Bind(5, e.at.unix_ms).BindUnowned(4, e.type);
  if (e.code.empty()) {
    insert.BindNull(3);
  } else {
    insert.BindUnowned(3, e.code);
  }
  insert.BindUnowned(6, e.actor_role).BindUnowned(7, e.actor_id).BindUnowned(8, e.body);
  insert.BindBlobUnowned(9, hash);
  PINGMA_RETURN_IF_ERROR((*st)->Run());
  *head_seq_ = seq;
  *head_hash_ = std::move(hash);
  if (hooks_->on_append) hooks_->on_append(e);
  return seq;
}

namespace {

// Whether the query gives a row.
Result<bool> HasRow(Conn& conn, const std::string& sql) {
  auto st = conn.Prepare(sql);
  if (!st.ok()) return st.status();
  return (*st)->Step();
}

Result<bool> HasTable(Conn& conn, const char* name) {
  return HasRow(
      conn, fmt::format("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '{}'", name));
}

// kSchema, with what it cannot do by itself for a store made before a change.
Status Migrate(Conn& conn) {
  auto had_cylinders = HasTable(conn, "cylinders");
  if (!had_cylinders.ok()) return had_cylinders.status();
  auto had_due_counts = HasTable(conn, "due_counts");
  if (!had_due_counts.ok()) return had_due_counts.status();
  auto had_check_days = HasTable(conn, "check_days");
  if (!had_check_days.ok()) return had_check_days.status();
  bool had_registered_at = false;
  if (*had_cylinders) {
    auto column = HasRow(conn,
                         "SELECT 1 FROM pragma_table_info('cylinders') "
                         "WHERE name = 'registered_at'");
    if (!column.ok()) return column.status();
    had_registered_at = *column;
    if (!had_registered_at) PINGMA_RETURN_IF_ERROR(conn.db().Exec(kAddRegisteredAt));
  }
  for (const AddedColumn& added : kAddedColumns) {
    auto table = HasTable(conn, added.table);
    if (!table.ok()) return table.status();
    if (!*table) continue;  // kSchema makes it whole
    auto column =
        HasRow(conn, fmt::format("SELECT 1 FROM pragma_table_info('{}') WHERE name = '{}'",
                                 added.table, added.column));
    if (!column.ok()) return column.status();
    if (*column) continue;
    PINGMA_RETURN_IF_ERROR(conn.db().Exec(fmt::format(
        "ALTER TABLE {} ADD COLUMN {} {}", added.table, added.column, added.definition)));
  }
  PINGMA_RETURN_IF_ERROR(conn.db().Exec(kSchema));
  if (*had_cylinders && !had_registered_at) {
    PINGMA_RETURN_IF_ERROR(conn.db().Exec(kBackfillRegisteredAt));
  }
  if (*had_cylinders && !*had_due_counts) PINGMA_RETURN_IF_ERROR(conn.db().Exec(kFillDueCounts));
  PINGMA_RETURN_IF_ERROR(conn.db().Exec(kBackfillTokenIds));
  if (!*had_check_days) {
    // New counting tables: the service fills them from the log before it serves.
    PINGMA_RETURN_IF_ERROR(
        conn.db().Exec(fmt::format("DELETE FROM meta WHERE key = '{}'", kCheckCountsKey)));
  }
  return Status::Ok();
}

}  // namespace

Status RunCached(Conn& conn, const std::string& sql) {
  auto st = conn.Prepare(sql);
  if (!st.ok()) return st.status();
  return (*st)->Run();
}

Result<std::int64_t> SecureDeleteRows(Conn& conn, const std::string& sql,
                                      const std::function<void(sql::Statement&)>& bind) {
  const bool sqlite = conn.dialect() == sql::Dialect::kSqlite;
  if (sqlite) PINGMA_RETURN_IF_ERROR(conn.db().Exec("PRAGMA secure_delete = ON"));
  auto st = conn.Prepare(sql);
  Status s = st.ok() ? Status::Ok() : st.status();
  if (s.ok()) {
    bind(**st);
    s = (*st)->Run();
  }
  const std::int64_t changed = s.ok() ? conn.db().Changes() : 0;
  if (sqlite) (void)conn.db().Exec("PRAGMA secure_delete = OFF");
  if (!s.ok()) return s;
  return changed;
}

Reply WriteTx::Nested(const std::function<Reply()>& fn) {
  return InSavepoint(*conn_, "item", head_hash_, head_seq_, *hooks_, fn);
}

Reply InSavepoint(Conn& conn, const std::string& name, std::string* head_hash,
                  std::int64_t* head_seq, const WriteHooks& hooks,
                  const std::function<Reply()>& fn) {
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
    if (hooks.on_rollback) hooks.on_rollback(/*whole_batch=*/false);
  }
  (void)RunCached(conn, "RELEASE " + name);
  return reply;
}

Result<std::unique_ptr<Store>> Store::Open(const std::string& path, const Clock& clock) {
  if (pg::IsConnectionString(path)) {
    auto store = PgStore::Open(path, clock);
    if (!store.ok()) return store.status();
    return std::unique_ptr<Store>(std::move(*store));
  }
  auto store = SqliteStore::Open(path, clock);
  if (!store.ok()) return store.status();
  return std::unique_ptr<Store>(std::move(*store));
}

Result<std::unique_ptr<SqliteStore>> SqliteStore::Open(const std::string& path,
                                                       const Clock& clock) {
  std::unique_ptr<SqliteStore> store(new SqliteStore(path, clock));
  PINGMA_RETURN_IF_ERROR(store->Init());
  for (int i = 0; i < kSyncers; ++i) {
    store->syncers_.emplace_back([s = store.get()] {
      pthread_setname_np(pthread_self(), "pingma-syncer");
      s->SyncLoop();
    });
  }
  store->checkpointer_ = std::thread([s = store.get()] {
    pthread_setname_np(pthread_self(), "pingma-ckpt");
    s->CheckpointLoop();
  });
  store->thread_ = std::thread([s = store.get()] {
    pthread_setname_np(pthread_self(), "pingma-writer");
    s->WriterLoop();
  });
  return store;
}

Status SqliteStore::Init() {
  PINGMA_RETURN_IF_ERROR(sql::RegisterWalVfs());
  auto db =
      sql::SqliteDatabase::Open(path_, /*create=*/true, /*read_only=*/false, sql::kWalVfsName);
  if (!db.ok()) return db.status();
  writer_handle_ = (*db)->get();
  writer_ = std::make_unique<Conn>(std::move(*db));
  PINGMA_RETURN_IF_ERROR(writer_->db().Exec("PRAGMA cache_size=-1048576"));  // 1 GiB
  // Durability is synchronous=FULL's, but the fsync of a batch's commit is the
  // syncers': the commit only writes the WAL out (sql::CommitWithoutSync), and no
  // reply leaves before a syncer's fdatasync of the WAL has covered it (SyncLoop).
  // Checkpoints run on a connection of their own, whose syncs are real ones
  // (CheckpointLoop); the hook replaces SQLite's automatic checkpoints.
  sqlite3_wal_hook(
      writer_handle_,
      [](void* arg, sqlite3*, const char*, int frames) {
        *static_cast<int*>(arg) = frames;
        return SQLITE_OK;
      },
      &wal_frames_);
  // The schema and its migrations in one transaction: a store made by an earlier
  // version gets its new summaries filled from what it holds, or nothing changes.
  PINGMA_RETURN_IF_ERROR(writer_->db().Exec("BEGIN IMMEDIATE"));
  Status migrated = Migrate(*writer_);
  if (migrated.ok()) migrated = writer_->db().Exec("COMMIT");
  if (!migrated.ok()) {
    (void)writer_->db().Exec("ROLLBACK");
    return migrated;
  }
  auto ckpt = sql::SqliteDatabase::Open(path_, /*create=*/false, /*read_only=*/false);
  if (!ckpt.ok()) return ckpt.status();
  ckpt_db_ = std::move(*ckpt);
  return LoadHead();
}

Status SqliteStore::LoadHead() {
  auto head = writer_->Prepare("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1");
  if (!head.ok()) return head.status();
  auto row = (*head)->Step();
  if (!row.ok()) return row.status();
  head_seq_ = *row ? (*head)->Int(0) : 0;
  head_hash_ = *row ? std::string((*head)->Blob(1)) : std::string();
  return Status::Ok();
}

SqliteStore::~SqliteStore() {
  Close();
}

void SqliteStore::Close() {
  RunBeforeClose();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard<std::mutex> lock(sync_mu_);
    sync_stopping_ = true;
  }
  sync_cv_.notify_all();
  for (std::thread& t : syncers_) t.join();
  syncers_.clear();
  {
    std::lock_guard<std::mutex> lock(ckpt_mu_);
    ckpt_stopping_ = true;
  }
  ckpt_cv_.notify_all();
  if (checkpointer_.joinable()) checkpointer_.join();
  ckpt_db_.reset();
  std::lock_guard<std::mutex> lock(readers_mu_);
  readers_.clear();
  writer_.reset();
}

void SqliteStore::Submit(Job job, Done done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_ && !failed_) {
      queue_.push_back({std::move(job), std::move(done)});
      if (writer_waiting_) cv_.notify_one();
      return;
    }
  }
  done(ErrorReply(Status::Unavailable(
      failed_ ? "the registry could not write to its disk and takes no more writes; "
                "restart it once the disk is sound"
              : "the registry is shutting down")));
}

Reply Store::Run(Job job) {
  std::promise<Reply> promise;
  auto future = promise.get_future();
  Submit(std::move(job), [&promise](Reply r) { promise.set_value(std::move(r)); });
  return future.get();
}

Reply SqliteStore::RunJob(const Job& job) {
  WriteTx tx(writer_.get(), &head_hash_, &head_seq_, clock_.Now(), &hooks_);
  return InSavepoint(*writer_, "job", &head_hash_, &head_seq_, hooks_, [&] { return job(tx); });
}

void SqliteStore::WriterLoop() {
  constexpr size_t kMaxBatch = 1024;
  std::vector<Pending> batch;
  bool failed = false;
  for (;;) {
    {
      // Group commit: what queued up while the last batch ran forms the next one.
      // No waiting for more: the syncers, not this thread, wait for the disk, so
      // the clients of the last batch are still waiting for their answers.
      std::unique_lock<std::mutex> lock(mu_);
      writer_waiting_ = true;
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      writer_waiting_ = false;
      if (queue_.empty()) return;  // stopping, and everything queued is done
      failed = failed_;
      while (!queue_.empty() && batch.size() < kMaxBatch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    stats_.max_batch = std::max(stats_.max_batch, batch.size());
    ++stats_.batches;
    stats_.jobs += batch.size();
    Committed committed;
    committed.dones.reserve(batch.size());
    committed.replies.reserve(batch.size());
    // Another process (`token add`) may have appended since the last batch: with
    // the write lock held, the head read here is the real one.
    Status begun = failed ? Status::Unavailable(
                                "the registry takes no more writes after a failed "
                                "write to its disk; restart it")
                          : writer_->db().Exec("BEGIN IMMEDIATE");
    if (begun.ok()) {
      begun = LoadHead();
      if (!begun.ok()) (void)writer_->db().Exec("ROLLBACK");
    }
    if (begun.ok() && known_seq_ >= 0 && head_seq_ != known_seq_ && hooks_.on_foreign_appends) {
      hooks_.on_foreign_appends(*writer_, known_seq_);
    }
    for (auto& p : batch) {
      committed.replies.push_back(begun.ok() ? RunJob(p.job) : ErrorReply(begun));
      committed.dones.push_back(std::move(p.done));
    }
    batch.clear();
    Status ended = begun;
    if (begun.ok()) {
      sql::CommitWithoutSync durable_later;  // by a syncer, before any reply
      ++commits_begun_;                      // readers may see it from here on
      ended = writer_->db().Exec("COMMIT");
      ++commits_ended_;
    }
    if (!ended.ok()) {
      if (begun.ok()) {
        (void)writer_->db().Exec("ROLLBACK");
        if (hooks_.on_rollback) hooks_.on_rollback(/*whole_batch=*/true);
      }
      for (size_t i = 0; i < committed.dones.size(); ++i) committed.dones[i](ErrorReply(ended));
      // Nothing to answer after a sync, but reads waiting for this commit's
      // number are released by the syncers' next round.
      committed.dones.clear();
      committed.replies.clear();
      HandToSyncers(std::move(committed));
      continue;
    }
    // Committed, but perhaps only in the page cache: a syncer answers once the
    // WAL is on the disk. Meanwhile this thread goes on with the next batch.
    known_seq_ = head_seq_;
    HandToSyncers(std::move(committed));
    if (wal_frames_ < ckpt_asked_at_) ckpt_asked_at_ = 0;  // the WAL started afresh
    if (wal_frames_ >= writer_checkpoint_frames_) {
      // The checkpointer has done most of the copying; what is left is short.
      Checkpoint(writer_handle_);
      ++stats_.writer_checkpoints;
    } else if (wal_frames_ - ckpt_asked_at_ >= checkpoint_frames_ ||
               (wal_frames_ >= writer_checkpoint_frames_ / 2 && wal_frames_ > ckpt_asked_at_)) {
      // Past half the writer's limit, after every commit: the closer the
      // checkpointer keeps up, the shorter the writer's own checkpoint.
      ckpt_asked_at_ = wal_frames_;
      std::lock_guard<std::mutex> lock(ckpt_mu_);
      ckpt_wanted_ = true;
      ckpt_cv_.notify_one();
    }
  }
}

void SqliteStore::HandToSyncers(Committed committed) {
  std::lock_guard<std::mutex> lock(sync_mu_);
  to_sync_.push_back(std::move(committed));
  if (sync_waiting_ > 0) sync_cv_.notify_one();
}

void SqliteStore::Checkpoint(sqlite3* db) {
  // What SQLite's automatic checkpoint does, with real syncs of the WAL and of
  // the database. One that cannot finish (a reader still on older pages) or that
  // fails is asked for again after the next commit; the WAL keeps everything,
  // and the next commit after one that finished starts the WAL afresh.
  std::lock_guard<std::mutex> lock(ckpt_run_mu_);
  (void)sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  ++stats_.checkpoints;
}

void SqliteStore::CheckpointLoop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(ckpt_mu_);
      ckpt_cv_.wait(lock, [this] { return ckpt_stopping_ || ckpt_wanted_; });
      if (ckpt_stopping_) return;
      ckpt_wanted_ = false;
    }
    Checkpoint(ckpt_db_->get());
  }
}

void SqliteStore::SyncLoop() {
  int fd = -1;  // this thread's own descriptor of the WAL file
  std::deque<Committed> work;
  for (;;) {
    Status failure;
    std::function<void()> hook;
    {
      std::unique_lock<std::mutex> lock(sync_mu_);
      ++sync_waiting_;
      sync_cv_.wait(lock, [this] { return sync_stopping_ || !to_sync_.empty(); });
      --sync_waiting_;
      if (to_sync_.empty()) break;  // stopping, and every commit is answered
      work.swap(to_sync_);
      failure = sync_failure_;
      hook = before_sync_;
    }
    // An fdatasync that begins after a batch's commit makes it durable, whichever
    // thread wrote the pages out. After a failed one nothing is acknowledged any
    // more: the kernel may have dropped the pages it could not write, and a later
    // sync succeeding proves nothing.
    if (hook) hook();
    const std::uint64_t covers = commits_ended_.load();
    const auto t0 = std::chrono::steady_clock::now();
    Status synced = failure.ok() ? SyncWal(&fd) : failure;
    const auto us =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
            .count();
    std::vector<std::function<void()>> reads;
    {
      std::lock_guard<std::mutex> lock(sync_mu_);
      ++stats_.syncs;
      stats_.sync_us += static_cast<size_t>(us);
      if (!synced.ok() && sync_failure_.ok()) sync_failure_ = synced;
      if (synced.ok()) synced_ = std::max(synced_, covers);
      reads = TakeReadsCovered();
    }
    if (!synced.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      failed_ = true;
    }
    for (Committed& c : work) {
      for (size_t i = 0; i < c.dones.size(); ++i) {
        c.dones[i](synced.ok() ? std::move(c.replies[i]) : ErrorReply(synced));
      }
    }
    work.clear();
    for (auto& read : reads) read();
  }
  if (fd >= 0) ::close(fd);
  // Stopping: every commit was answered, so no read waits for more.
  std::vector<std::pair<std::uint64_t, std::function<void()>>> reads;
  {
    std::lock_guard<std::mutex> lock(sync_mu_);
    reads.swap(waiting_reads_);
  }
  for (auto& read : reads) read.second();
}

void SqliteStore::WhenDurable(std::function<void()> fn) {
  // Read after the reads that `fn` answers for: every commit they could have
  // seen was counted here before SQLite published it.
  const std::uint64_t seen = commits_begun_.load();
  {
    std::lock_guard<std::mutex> lock(sync_mu_);
    if (synced_ < seen && sync_failure_.ok() && !sync_stopping_) {
      // That commit has ended and is queued for a syncer, or will be when it
      // ends; the sync after it releases `fn`.
      waiting_reads_.emplace_back(seen, std::move(fn));
      return;
    }
  }
  fn();
}

std::vector<std::function<void()>> SqliteStore::TakeReadsCovered() {
  std::vector<std::function<void()>> ready;
  auto keep = waiting_reads_.begin();
  for (auto& [commit, fn] : waiting_reads_) {
    if (commit <= synced_ || !sync_failure_.ok()) {
      ready.push_back(std::move(fn));
    } else {
      *keep++ = {commit, std::move(fn)};
    }
  }
  waiting_reads_.erase(keep, waiting_reads_.end());
  return ready;
}

Status SqliteStore::SyncWal(int* fd) {
  // The WAL is created with the database and is never replaced while the writer's
  // connection is open; should it be, the descriptor is opened anew.
  const std::string wal = path_ + "-wal";
  struct stat by_path {};
  struct stat by_fd {};
  if (*fd >= 0 && (::stat(wal.c_str(), &by_path) != 0 || ::fstat(*fd, &by_fd) != 0 ||
                   by_path.st_ino != by_fd.st_ino || by_path.st_dev != by_fd.st_dev)) {
    ::close(*fd);
    *fd = -1;
  }
  if (*fd < 0) *fd = ::open(wal.c_str(), O_RDWR | O_CLOEXEC);
  if (*fd < 0 || ::fdatasync(*fd) != 0) {
    return Status::Unavailable(fmt::format(
        "the write may not have reached the disk (fdatasync of {} failed: {}); the registry "
        "takes no more writes until it is restarted",
        wal, ErrnoText(errno)));
  }
  return Status::Ok();
}

Result<std::unique_ptr<Conn>> SqliteStore::AcquireReader() {
  {
    std::lock_guard<std::mutex> lock(readers_mu_);
    if (!readers_.empty()) {
      auto conn = std::move(readers_.back());
      readers_.pop_back();
      return conn;
    }
  }
  auto db = sql::SqliteDatabase::Open(path_, /*create=*/false, /*read_only=*/true);
  if (!db.ok()) return db.status();
  PINGMA_RETURN_IF_ERROR((*db)->Exec("PRAGMA cache_size=-65536"));  // 64 MiB
  return std::make_unique<Conn>(std::move(*db));
}

void SqliteStore::ReleaseReader(std::unique_ptr<Conn> conn) {
  std::lock_guard<std::mutex> lock(readers_mu_);
  readers_.push_back(std::move(conn));
}

}  // namespace pingma::registry
