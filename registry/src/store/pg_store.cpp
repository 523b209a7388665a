#include "store/pg_store.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "store/pg_sql.h"
#include "store/schema.h"

namespace pingma::registry {

Result<std::unique_ptr<PgStore>> PgStore::Open(const std::string& conninfo, const Clock& clock) {
  std::unique_ptr<PgStore> store(new PgStore(conninfo, clock));
  PINGMA_RETURN_IF_ERROR(store->Connect());
  store->group_commit_.Start();
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
  group_commit_.Stop();
  readers_.Clear();
  writer_.reset();
  std::lock_guard<std::mutex> lock(lead_mu_);
  lead_.reset();  // the log's lead, if this registry had it, goes to another
  leading_ = false;
}

Result<bool> PgStore::LeadLog() {
  std::lock_guard<std::mutex> lock(lead_mu_);
  if (lead_ && leading_) {
    // Still connected, so still the holder.
    if (lead_->ok() && lead_->Exec("SELECT 1").ok()) return true;
    lead_.reset();
    leading_ = false;
  }
  if (!lead_ || !lead_->ok()) {
    auto conn = pg::Connection::Open(conninfo_);
    if (!conn.ok()) return conn.status();
    // The server notices this registry's death within about 11 s even when no
    // FIN or RST reaches it (a host that lost power), and frees the lock.
    PINGMA_RETURN_IF_ERROR(
        conn->Exec("SET application_name = 'pingma-log-sequencer'; "
                   "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; "
                   "SET tcp_keepalives_count = 3"));
    lead_.emplace(std::move(*conn));
  }
  auto got = pg::QueryInt(
      *lead_, fmt::format("SELECT pg_try_advisory_lock({})::int", pgstore::kLogLeadLock));
  if (!got.ok()) {
    lead_.reset();
    return got.status();
  }
  leading_ = *got == 1;
  return leading_;
}

void PgStore::Submit(Job job, Done done) {
  group_commit_.Submit(std::move(job), std::move(done));
}

Status PgStore::BeginBatch(BatchState* batch) {
  Status begun = Status::Ok();
  if (!writer_) {
    begun = Connect();
    if (begun.ok()) std::fprintf(stderr, "pingma-registry: connected to PostgreSQL again\n");
  }
  sql::PgDatabase* db = begun.ok() ? &Writer() : nullptr;
  // BEGIN and the batch's revision, its horizon and a block of numbers: one round
  // trip. No lock: other registries' batches commit beside this one.
  if (begun.ok()) {
    db->set_deferring(true);
    begun = db->ExecDeferred("BEGIN");
  }
  if (begun.ok()) {
    // The revisions this batch cannot see committed yet: those from the
    // snapshot's xmax on and those it lists as running (ForeignAppends).
    auto st = writer_->Prepare(
        "WITH s AS (SELECT pg_current_xact_id()::text::bigint AS x, pg_current_snapshot() AS "
        "snap, pingma_revision_base() AS base) "
        "SELECT x + base, pg_snapshot_xmax(snap)::text::bigint + base, "
        "(SELECT string_agg((t::text::bigint + base)::text, ',') FROM pg_snapshot_xip(snap) t), "
        "nextval('event_seq') FROM s");
    auto row = st.ok() ? (*st)->Step() : Result<bool>(st.status());
    if (!row.ok()) {
      begun = row.status();
    } else if (!*row) {
      begun = Status::Internal("the batch's revision gave no row");
    } else {
      batch->chained = false;
      batch->revision = (*st)->Int(0);
      unseen_from_ = (*st)->Int(1);
      unseen_open_.clear();
      if (!(*st)->IsNull(2)) {
        const std::string open = (*st)->Text(2);
        for (std::size_t at = 0; at < open.size();) {
          const std::size_t comma = std::min(open.find(',', at), open.size());
          unseen_open_.push_back(std::stoll(open.substr(at, comma - at)));
          at = comma + 1;
        }
      }
      batch->head_seq = (*st)->Int(3) - 1;
      batch->seq_limit = batch->head_seq + kSeqBlock;
    }
  }
  // The batch's writes that need no answer go in as few round trips as its reads
  // allow (sql::Statement::Defer), unless this is a batch run again because one of
  // them failed.
  if (begun.ok()) db->set_deferring(!std::exchange(strict_, false));
  return begun.ok() ? begun : Status::Unavailable(begun.message());
}

sql::PgDatabase& PgStore::Writer() {
  return static_cast<sql::PgDatabase&>(writer_->db());
}

std::optional<ForeignWindow> PgStore::ForeignAppends(const BatchState& /*batch*/,
                                                     std::int64_t /*known_seq*/) {
  // What the last batch read of the log after its start saw every revision that
  // its start's snapshot showed committed: this batch reads those it did not (from
  // that snapshot's xmax up to this batch's start, and those it listed as
  // running), but its own committed batches'. Each is read once, or twice when it
  // committed between that start and that read. (A batch that failed may have
  // committed or not: its events are read as another's.)
  const std::int64_t from = std::exchange(window_from_, unseen_from_);
  std::vector<std::int64_t> open = std::exchange(window_open_, unseen_open_);
  if (from < 0) return std::nullopt;  // the first batch: nothing kept yet
  auto own = [this](std::int64_t r) {
    return std::find(own_revisions_.begin(), own_revisions_.end(), r) != own_revisions_.end();
  };
  ForeignWindow window;
  window.unchained = true;
  // The revisions given out since, as a list when they are few.
  constexpr std::int64_t kMostListed = 1024;
  if (unseen_from_ - from <= kMostListed) {
    for (std::int64_t r : open) {
      if (!own(r)) window.revisions.push_back(r);
    }
    for (std::int64_t r = from; r < unseen_from_; ++r) {
      if (!own(r)) window.revisions.push_back(r);
    }
  } else {
    window.from_revision = from;
    window.revisions = std::move(open);
    window.own_revisions = own_revisions_;
  }
  // This batch's start saw every revision below unseen_from_ that it did not list
  // as running: this store's own among them need no longer be told apart.
  own_revisions_.erase(std::remove_if(own_revisions_.begin(), own_revisions_.end(),
                                      [this](std::int64_t r) {
                                        return r < unseen_from_ &&
                                               std::find(unseen_open_.begin(), unseen_open_.end(),
                                                         r) == unseen_open_.end();
                                      }),
                       own_revisions_.end());
  // No other transaction since (one registry alone): nothing to read, no round trip.
  if (window.from_revision < 0 && window.revisions.empty()) return std::nullopt;
  return window;
}

Status PgStore::CommitBatch(const BatchState& batch) {
  // The writes held back and the COMMIT: one round trip. A write held back that
  // failed earlier in the batch failed no job by itself (a later job's rollback
  // may even have undone an earlier job's writes), so the batch is not committed.
  sql::PgDatabase& db = Writer();
  Status ended = db.deferred_failure();
  if (ended.ok()) ended = db.ExecDeferred("COMMIT");
  if (ended.ok()) ended = db.Flush();
  if (ended.ok()) {
    db.set_deferring(false);  // else RunAgain reads the failure
    own_revisions_.push_back(batch.revision);
  }
  return ended.ok() ? ended : Status::Unavailable(ended.message());
}

bool PgStore::RunAgain() {
  // When a statement held back failed (maybe the COMMIT, which then did not take
  // effect either) and the connection still stands, the batch is known to have
  // changed nothing: its jobs are run again at once, each write waited for. (A
  // connection lost mid-way may have committed.)
  if (!writer_) return false;
  sql::PgDatabase& db = Writer();
  strict_ = !db.deferred_failure().ok() && db.ok();
  return strict_;
}

void PgStore::AbandonBatch(const Status& error, bool /*begun*/) {
  if (writer_) {
    Writer().set_deferring(false);  // what is held is dropped with the batch
    (void)writer_->db().Exec("ROLLBACK");
    // A connection that failed is made again by the next batch; the readers'
    // were most likely to the same server, and go too.
    if (!writer_->db().ok()) {
      std::fprintf(stderr, "pingma-registry: lost PostgreSQL (%s); connecting again\n",
                   error.message().c_str());
      writer_.reset();
      readers_.Clear();
    }
  }
  // Whether a COMMIT whose answer was lost took effect is not known: the client
  // retries, and what it retries is idempotent or refused as a repeat. (The
  // batch's events, if committed, are another writer's to the next window.)
}

void PgStore::Answer(GroupCommit::Answers answers) {
  for (size_t i = 0; i < answers.dones.size(); ++i) answers.dones[i](std::move(answers.replies[i]));
}

Result<std::unique_ptr<Conn>> PgStore::AcquireReader() {
  return readers_.Acquire();
}

void PgStore::ReleaseReader(std::unique_ptr<Conn> conn) {
  readers_.Release(std::move(conn));
}

Result<std::unique_ptr<Conn>> PgStore::OpenReader() const {
  auto db = sql::PgDatabase::Open(conninfo_);
  if (!db.ok()) return db.status();
  return std::make_unique<Conn>(std::move(*db));
}

}  // namespace pingma::registry

namespace pingma::registry::pgstore {
namespace {

// The schema's versions, in order, each a file under store/schema/pg/ applied once
// in its own transaction (ApplyMigrations). Its description goes into
// schema_migrations with it.
//
// 1: the SQLite store's tables (schema/sqlite.sql) in PostgreSQL's types (ids that
//    SQLite makes for INTEGER PRIMARY KEY made by identity columns): INTEGER
//    bigint, REAL double precision, TEXT text, BLOB bytea. Flags stay 0/1
//    integers, so that the same statements read both stores.
// 2: checks decided offline (schema/sqlite.sql says what each is for): their
//    counts beside the checks', the refusals' offline columns, and the table that
//    keeps an uploaded check from being stored twice.
// 3: the tokens' lifecycle (schema/sqlite.sql says what each column is for);
//    tokens made before get random public ids.
// 4: personal data the log refers to but must not keep (personal_data.cpp).
// 5: delivery supervision (cases/supervision.h).
// 6: the verifiable log (cases/verifiable_log.h).
// 7: batch registration's due_counts, once a batch (cases/cylinders.cpp).
// 8: the signed heads by time, for their thinning (store/log_rows.h).
// 9: appends without a lock (the file says how).
// 10: the day counts a row per registry's writer, summed when read.
struct Migration {
  int version;
  const char* description;
  const char* file;  ///< under store/schema/
};

constexpr Migration kMigrations[] = {
    {1, "the registry's tables, the partitioned event log, the chain head", "pg/0001_tables.sql"},
    {2, "checks decided offline: their counts, the refusals' offline columns, offline_checks",
     "pg/0002_offline_checks.sql"},
    {3, "the tokens' lifecycle: public ids, notes, expiry, revocation, last use",
     "pg/0003_token_lifecycle.sql"},
    {4, "personal data kept outside the log: personal_data", "pg/0004_personal_data.sql"},
    {5, "delivery supervision: areas, terminals, positions, alerts",
     "pg/0005_delivery_supervision.sql"},
    {6, "the verifiable log: its tree in tiles, its signed heads, their keys",
     "pg/0006_verifiable_log.sql"},
    {7, "due_counts kept once a batch of cylinders, not once a cylinder",
     "pg/0007_due_counts_deferred.sql"},
    {8, "the signed heads by time, for their thinning", "pg/0008_log_heads_by_time.sql"},
    {9, "appends without a lock: the chain ended, numbers in blocks, revisions, the log's leaves",
     "pg/0009_unchained_appends.sql"},
    {10, "the day counts of checks and refusals, a row per writer", "pg/0010_counts_by_writer.sql"},
};

constexpr std::int64_t kSchemaLock = 0x70696e676d61;  // "pingma"
static_assert(kLogLeadLock != kSchemaLock);

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
      PINGMA_RETURN_IF_ERROR(conn.Exec(std::string(schema::Text(m.file))));
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
