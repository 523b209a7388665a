#include "store/store.h"

#include <algorithm>

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>

#include <fmt/format.h>

#include "pingma/common/prometheus.h"
#include "store/pg_store.h"
#include "store/schema.h"
#include "store/wal_vfs.h"

namespace pingma::registry {
namespace {

// The text of an errno value; std::strerror is not safe on the syncer threads.
std::string ErrnoText(int error) {
  char buffer[256];
  return ::strerror_r(error, buffer, sizeof buffer);  // GNU: the text, wherever it is
}

// Columns added to a table after it was first made, in schema/sqlite.sql's order: a store
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
    {"vehicles", "terminal_phone", "TEXT"},
    {"customers", "lat", "REAL"},
    {"customers", "lon", "REAL"},
};

// Set once the fill-check counts hold every check of the log; a store whose
// counting tables are new has them filled from the log at start-up (cases/fill_checks.cpp).

static_assert(kEventBucketBits == 16, "events_by_code_time in the schema names the partition size");

}  // namespace

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

Event EventOfRow(const sql::Statement& st) {
  return Event{st.Text(1), st.IsNull(2) ? std::string() : st.Text(2),
               st.Text(3), Instant{st.Int(4)},
               st.Text(5), st.Text(6),
               st.Text(7)};
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

namespace {

// Binds event `e` of `seq` and link `hash` to the parameters after `p` of an
// insert into events (the columns in kInsertEvent's order; on an unchained log
// also the batch's `revision`, kInsertEventTx). Unowned: `e` and `hash` must
// outlive the statement's Run.
constexpr const char* kInsertEvent =
    "INSERT INTO events(seq, id, code, type, at, actor_role, actor_id, body, hash) VALUES";
constexpr const char* kInsertEventTx =
    "INSERT INTO events(seq, id, code, type, at, actor_role, actor_id, body, hash, tx) VALUES";
void BindEvent(sql::Statement& insert, int p, std::int64_t seq, const Event& e,
               const std::string& hash, std::int64_t revision) {
  insert.Bind(p + 1, seq).BindUnowned(p + 2, e.id).BindUnowned(p + 4, e.type);
  if (e.code.empty()) {
    insert.BindNull(p + 3);
  } else {
    insert.BindUnowned(p + 3, e.code);
  }
  insert.Bind(p + 5, e.at.unix_ms).BindUnowned(p + 6, e.actor_role);
  insert.BindUnowned(p + 7, e.actor_id).BindUnowned(p + 8, e.body);
  insert.BindBlobUnowned(p + 9, hash);
  if (revision != 0) insert.Bind(p + 10, revision);
}

// The multi-row insert of `rows` events, `columns` parameters each.
std::string InsertEvents(bool with_tx, std::size_t rows) {
  const int columns = with_tx ? 10 : 9;
  std::string sql = with_tx ? kInsertEventTx : kInsertEvent;
  for (std::size_t r = 0; r < rows; ++r) {
    sql += r == 0 ? "(" : ",(";
    for (int k = 1; k <= columns; ++k) {
      sql += fmt::format("{}${}", k == 1 ? "" : ",", static_cast<int>(r) * columns + k);
    }
    sql += ")";
  }
  return sql;
}

}  // namespace

Result<std::int64_t> WriteTx::NextSeq() {
  if (batch_->head_seq >= batch_->seq_limit) {
    // A new block of numbers (unchained): the sequence steps by kSeqBlock.
    auto st = conn_->Prepare("SELECT nextval('event_seq')");
    if (!st.ok()) return st.status();
    auto row = (*st)->Step();
    if (!row.ok()) return row.status();
    if (!*row) return Status::Internal("nextval gave no row");
    const std::int64_t first = (*st)->Int(0);
    batch_->head_seq = first - 1;
    batch_->seq_limit = first + kSeqBlock - 1;
  }
  return ++batch_->head_seq;
}

Result<std::int64_t> WriteTx::Append(Event e) {
  PINGMA_ASSIGN_OR_RETURN(const std::int64_t seq, NextSeq());
  if (e.id.empty()) e.id = EventId(seq);
  std::string hash = batch_->chained ? ChainHash(batch_->head_hash, seq, e) : std::string();
  static const std::string chained = InsertEvents(false, 1);
  static const std::string unchained = InsertEvents(true, 1);
  auto st = conn_->Prepare(batch_->chained ? chained : unchained);
  if (!st.ok()) return st.status();
  BindEvent(**st, 0, seq, e, hash, batch_->revision);
  PINGMA_RETURN_IF_ERROR((*st)->Defer());
  if (batch_->chained) batch_->head_hash = std::move(hash);
  if (hooks_->on_append) hooks_->on_append(e);
  return seq;
}

Result<std::vector<std::int64_t>> WriteTx::AppendAll(std::vector<Event> events) {
  // 500 rows of 9 or 10 parameters: libpq 15 takes a statement's description of at
  // most 30,000 bytes, 4 a parameter.
  constexpr std::size_t kRows = 500;
  const bool chained = batch_->chained;
  std::vector<std::int64_t> seqs(events.size());
  std::vector<std::string> hashes(events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    PINGMA_ASSIGN_OR_RETURN(seqs[i], NextSeq());
    Event& e = events[i];
    if (e.id.empty()) e.id = EventId(seqs[i]);
    if (chained) hashes[i] = ChainHash(i == 0 ? batch_->head_hash : hashes[i - 1], seqs[i], e);
  }
  const int columns = chained ? 9 : 10;
  for (std::size_t start = 0; start < events.size(); start += kRows) {
    const std::size_t rows = std::min(kRows, events.size() - start);
    auto st = conn_->Prepare(InsertEvents(!chained, rows));
    if (!st.ok()) return st.status();
    for (std::size_t r = 0; r < rows; ++r) {
      BindEvent(**st, static_cast<int>(r) * columns, seqs[start + r], events[start + r],
                hashes[start + r], batch_->revision);
    }
    PINGMA_RETURN_IF_ERROR((*st)->Defer());
  }
  if (chained && !events.empty()) batch_->head_hash = hashes.back();
  if (hooks_->on_append) {
    for (const Event& e : events) hooks_->on_append(e);
  }
  return seqs;
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

// The schema (schema/sqlite.sql: every cylinder-scoped table keyed by code, so that
// a distributed backend can shard by it; times in Unix milliseconds, dates
// 'YYYY-MM-DD'), with what it cannot do by itself for a store made before a change
// (schema/sqlite/*.sql), which runs before it.
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
    if (!had_registered_at)
      PINGMA_RETURN_IF_ERROR(conn.db().Exec(schema::Text("sqlite/add_registered_at.sql")));
  }
  for (const AddedColumn& added : kAddedColumns) {
    auto table = HasTable(conn, added.table);
    if (!table.ok()) return table.status();
    if (!*table) continue;  // sqlite.sql makes it whole
    auto column =
        HasRow(conn, fmt::format("SELECT 1 FROM pragma_table_info('{}') WHERE name = '{}'",
                                 added.table, added.column));
    if (!column.ok()) return column.status();
    if (*column) continue;
    PINGMA_RETURN_IF_ERROR(conn.db().Exec(fmt::format(
        "ALTER TABLE {} ADD COLUMN {} {}", added.table, added.column, added.definition)));
  }
  PINGMA_RETURN_IF_ERROR(conn.db().Exec(schema::Text("sqlite.sql")));
  if (*had_cylinders && !had_registered_at) {
    PINGMA_RETURN_IF_ERROR(conn.db().Exec(schema::Text("sqlite/backfill_registered_at.sql")));
  }
  if (*had_cylinders && !*had_due_counts)
    PINGMA_RETURN_IF_ERROR(conn.db().Exec(schema::Text("fill_due_counts.sql")));
  PINGMA_RETURN_IF_ERROR(conn.db().Exec(schema::Text("sqlite/backfill_token_ids.sql")));
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

// RunCached, for a statement that may be held back (sql::Statement::Defer).
Status DeferCached(Conn& conn, const std::string& sql) {
  auto st = conn.Prepare(sql);
  if (!st.ok()) return st.status();
  return (*st)->Defer();
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
  return InSavepoint(*conn_, "item", batch_, *hooks_, fn);
}

Status ApplyCount(Conn& conn, const CountDelta& count, bool defer) {
  auto st = conn.Prepare(count.upsert);
  if (!st.ok()) return st.status();
  int p = 0;
  for (const std::string& key : count.keys) (*st)->BindUnowned(++p, key);
  for (std::int64_t delta : count.deltas) (*st)->Bind(++p, delta);
  return defer ? (*st)->Defer() : (*st)->Run();
}

Status FlushCounts(Conn& conn, std::vector<CountDelta>* counts) {
  // By statement (its text's address: counts name theirs by a literal) and row.
  std::vector<CountDelta> rows;
  std::unordered_map<std::string, std::size_t> row_of;
  for (CountDelta& c : *counts) {
    std::string id(reinterpret_cast<const char*>(&c.upsert), sizeof c.upsert);
    for (const std::string& key : c.keys) id.append(1, '\0').append(key);
    auto [it, added] = row_of.emplace(std::move(id), rows.size());
    if (added) {
      rows.push_back(std::move(c));
      continue;
    }
    std::vector<std::int64_t>& sum = rows[it->second].deltas;
    for (std::size_t i = 0; i < sum.size() && i < c.deltas.size(); ++i) sum[i] += c.deltas[i];
  }
  counts->clear();
  // Every batch writes its rows in one order (on PostgreSQL two registries' batches
  // that count in the same rows then wait for each other, never deadlock).
  std::sort(rows.begin(), rows.end(), [](const CountDelta& x, const CountDelta& y) {
    return std::less<const char*>()(x.upsert, y.upsert) ||
           (x.upsert == y.upsert && x.keys < y.keys);
  });
  for (const CountDelta& row : rows) PINGMA_RETURN_IF_ERROR(ApplyCount(conn, row, /*defer=*/true));
  return Status::Ok();
}

Reply InSavepoint(Conn& conn, const std::string& name, BatchState* batch, const WriteHooks& hooks,
                  const std::function<Reply()>& fn, bool job) {
  // A job whose writes are all held back until the batch's commit is undone by
  // dropping them (sql::Database::SettleJob); when they cannot be dropped, the
  // batch fails and runs again with a savepoint for each job.
  const std::optional<sql::WriteMark> mark =
      job ? conn.db().MarkWrites() : std::optional<sql::WriteMark>();
  if (!mark) {
    if (Status s = DeferCached(conn, "SAVEPOINT " + name); !s.ok()) return ErrorReply(s);
  }
  // An unchained log's numbers are not taken back: a block fetched meanwhile is
  // the one in hand.
  const std::string saved_hash = batch->head_hash;
  const std::int64_t saved_seq = batch->chained ? batch->head_seq : 0;
  const std::size_t saved_counts = batch->counts.size();
  Reply reply;
  try {
    reply = fn();
  } catch (const std::exception& e) {
    reply = ErrorReply(Status::Internal(std::string("unexpected error: ") + e.what()));
  }
  if (mark) (void)conn.db().SettleJob(*mark, reply.failed());
  if (reply.failed()) {
    // The work changes nothing: undo its rows, its links in the chain, its counts.
    if (!mark) (void)RunCached(conn, "ROLLBACK TO " + name);
    if (batch->chained) {
      batch->head_hash = saved_hash;
      batch->head_seq = saved_seq;
    }
    batch->counts.resize(saved_counts);
    if (hooks.on_rollback) hooks.on_rollback(/*whole_batch=*/false);
  }
  if (!mark) (void)DeferCached(conn, "RELEASE " + name);
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
  store->group_commit_.Start();
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
  // The head reads (each batch reads it again, with the write lock held).
  std::int64_t seq = 0;
  std::string hash;
  return LoadHead(&seq, &hash);
}

Status SqliteStore::LoadHead(std::int64_t* seq, std::string* hash) {
  auto head = writer_->Prepare("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1");
  if (!head.ok()) return head.status();
  auto row = (*head)->Step();
  if (!row.ok()) return row.status();
  *seq = *row ? (*head)->Int(0) : 0;
  *hash = *row ? std::string((*head)->Blob(1)) : std::string();
  return Status::Ok();
}

SqliteStore::~SqliteStore() {
  Close();
}

void SqliteStore::Close() {
  RunBeforeClose();
  if (!group_commit_.Stop()) return;  // closed before
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
  readers_.Clear();
  writer_.reset();
}

void SqliteStore::Submit(Job job, Done done) {
  group_commit_.Submit(std::move(job), std::move(done));
}

Reply Store::Run(Job job) {
  std::promise<Reply> promise;
  auto future = promise.get_future();
  Submit(std::move(job), [&promise](Reply r) { promise.set_value(std::move(r)); });
  return future.get();
}

Status SqliteStore::BeginBatch(BatchState* batch) {
  // Another process (`token add`) may have appended since the last batch: with
  // the write lock held, the head read here is the real one.
  PINGMA_RETURN_IF_ERROR(writer_->db().Exec("BEGIN IMMEDIATE"));
  Status head = LoadHead(&batch->head_seq, &batch->head_hash);
  if (!head.ok()) (void)writer_->db().Exec("ROLLBACK");
  return head;
}

Status SqliteStore::CommitBatch(const BatchState& /*batch*/) {
  sql::CommitWithoutSync durable_later;  // by a syncer, before any reply
  ++commits_begun_;                      // readers may see it from here on
  Status committed = writer_->db().Exec("COMMIT");
  ++commits_ended_;
  return committed;
}

void SqliteStore::AbandonBatch(const Status& /*error*/, bool begun) {
  if (begun) (void)writer_->db().Exec("ROLLBACK");
  // Nothing to answer after a sync, but reads waiting for this commit's number
  // are released by the syncers' next round.
  HandToSyncers(Committed{});
}

void SqliteStore::Answer(GroupCommit::Answers answers) {
  // Committed, but perhaps only in the page cache: a syncer answers once the WAL
  // is on the disk. Meanwhile the writer goes on with the next batch, after the
  // checkpoint bookkeeping of this one.
  HandToSyncers(std::move(answers));
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
      ++stats_.sync_times[prometheus::BucketOf(kSyncBounds, static_cast<double>(us) / 1e6)];
      if (!synced.ok() && sync_failure_.ok()) sync_failure_ = synced;
      if (synced.ok()) synced_ = std::max(synced_, covers);
      reads = TakeReadsCovered();
    }
    if (!synced.ok()) group_commit_.RefuseWrites();
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
  return readers_.Acquire();
}

void SqliteStore::ReleaseReader(std::unique_ptr<Conn> conn) {
  readers_.Release(std::move(conn));
}

Result<std::unique_ptr<Conn>> SqliteStore::OpenReader() const {
  auto db = sql::SqliteDatabase::Open(path_, /*create=*/false, /*read_only=*/true);
  if (!db.ok()) return db.status();
  PINGMA_RETURN_IF_ERROR((*db)->Exec("PRAGMA cache_size=-65536"));  // 64 MiB
  return std::make_unique<Conn>(std::move(*db));
}

}  // namespace pingma::registry
