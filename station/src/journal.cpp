// The fill journal: one SQLite file, one row per fill, its state moving
// begun -> pending -> uploaded (or rejected), and one row per check decided
// offline, pending -> uploaded (or rejected). See journal.h for the contract.
#include "journal.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <mutex>

#include "pingma/common/sqlite.h"

namespace pingma::station {
namespace {

// Schema version 2 (version 1 lacked `checks`; every statement is IF NOT EXISTS, so
// a version 1 file is brought up by running it again). `seq` orders fills by when
// they were begun; the partial unique index is what enforces one open fill per
// filling position, in the database itself, so that it holds across restarts too.
constexpr int kSchemaVersion = 2;
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS fills(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id TEXT NOT NULL UNIQUE,
  position_id TEXT NOT NULL,
  state TEXT NOT NULL CHECK(state IN ('begun', 'pending', 'uploaded', 'rejected')),
  record_json TEXT NOT NULL,
  begun_at INTEGER NOT NULL,
  recorded_at INTEGER,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  last_attempt_at INTEGER,
  done_at INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS fills_one_begun_per_position ON fills(position_id)
  WHERE state = 'begun';
CREATE INDEX IF NOT EXISTS fills_by_state ON fills(state, seq);
CREATE TABLE IF NOT EXISTS checks(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id TEXT NOT NULL UNIQUE,
  state TEXT NOT NULL CHECK(state IN ('pending', 'uploaded', 'rejected')),
  record_json TEXT NOT NULL,
  recorded_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_error TEXT,
  last_attempt_at INTEGER,
  done_at INTEGER
);
CREATE INDEX IF NOT EXISTS checks_by_state ON checks(state, seq);
PRAGMA user_version = 2;
)sql";

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Fills `n` bytes from the kernel's random source: getrandom, or /dev/urandom
// where getrandom is missing (old kernels, some seccomp profiles).
bool RandomBytes(unsigned char* out, size_t n) {
  size_t got = 0;
  while (got < n) {
    const ssize_t r = getrandom(out + got, n - got, 0);
    if (r > 0) {
      got += static_cast<size_t>(r);
    } else if (r < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  if (got == n) return true;
  const int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  while (got < n) {
    const ssize_t r = ::read(fd, out + got, n - got);
    if (r > 0) {
      got += static_cast<size_t>(r);
    } else if (!(r < 0 && errno == EINTR)) {
      break;
    }
  }
  ::close(fd);
  return got == n;
}

}  // namespace

// The statements that move one outbox's rows (`fills` or `checks`) along.
struct OutboxStatements {
  sqlite::Statement pending, uploaded, attempt, rejected, state_of, stats, oldest;
  const char* noun;  // for messages: "fill", "offline check"
};

struct Journal::Impl {
  std::mutex mu;
  sqlite::Database db;
  sqlite::Statement begin, record, record_check, unfinished, begun_at_position;
  OutboxStatements outbox[2];  // by Outbox

  OutboxStatements& of(Outbox which) { return outbox[which == Outbox::kFills ? 0 : 1]; }
};

namespace {

// One outbox's statements, on its table; the SQL lives while PrepareAll runs.
Status PrepareOutbox(const sqlite::Database& db, const char* table, const char* noun,
                     OutboxStatements* out) {
  out->noun = noun;
  const std::string t = table;
  const std::string pending = "SELECT event_id, record_json, attempts FROM " + t +
                              " WHERE state = 'pending' ORDER BY seq LIMIT ?";
  const std::string uploaded = "UPDATE " + t +
                               " SET state = 'uploaded', done_at = ?, last_error = NULL "
                               "WHERE event_id = ? AND state = 'pending'";
  const std::string attempt = "UPDATE " + t +
                              " SET attempts = attempts + 1, last_error = ?, last_attempt_at = ? "
                              "WHERE event_id = ? AND state = 'pending'";
  const std::string rejected = "UPDATE " + t +
                               " SET state = 'rejected', attempts = attempts + 1, last_error = ?, "
                               "done_at = ? WHERE event_id = ? AND state = 'pending'";
  const std::string state_of = "SELECT state FROM " + t + " WHERE event_id = ?";
  const std::string stats = "SELECT state, count(*) FROM " + t + " GROUP BY state";
  const std::string oldest = "SELECT min(recorded_at) FROM " + t + " WHERE state = 'pending'";
  return sqlite::PrepareAll(db, {{&out->pending, pending.c_str()},
                                 {&out->uploaded, uploaded.c_str()},
                                 {&out->attempt, attempt.c_str()},
                                 {&out->rejected, rejected.c_str()},
                                 {&out->state_of, state_of.c_str()},
                                 {&out->stats, stats.c_str()},
                                 {&out->oldest, oldest.c_str()}});
}

}  // namespace

Result<std::unique_ptr<Journal>> Journal::Open(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  PINGMA_ASSIGN_OR_RETURN(impl->db,
                          sqlite::OpenVersioned(path, {"journal", kSchemaVersion, kSchema}));
  PINGMA_RETURN_IF_ERROR(sqlite::PrepareAll(
      impl->db,
      {
          {&impl->begin,
           "INSERT INTO fills(event_id, position_id, state, record_json, begun_at) "
           "VALUES(?, ?, 'begun', ?, ?)"},
          {&impl->record,
           "UPDATE fills SET state = 'pending', record_json = ?, recorded_at = ? "
           "WHERE event_id = ? AND state = 'begun'"},
          {&impl->unfinished,
           "SELECT event_id, position_id, record_json FROM fills WHERE state = 'begun' ORDER BY "
           "seq"},
          {&impl->record_check,
           "INSERT INTO checks(event_id, state, record_json, recorded_at) "
           "VALUES(?, 'pending', ?, ?)"},
          {&impl->begun_at_position,
           "SELECT event_id FROM fills WHERE position_id = ? AND state = 'begun'"},
      }));
  PINGMA_RETURN_IF_ERROR(PrepareOutbox(impl->db, "fills", "fill", &impl->of(Outbox::kFills)));
  PINGMA_RETURN_IF_ERROR(
      PrepareOutbox(impl->db, "checks", "offline check", &impl->of(Outbox::kChecks)));
  return std::unique_ptr<Journal>(new Journal(std::move(impl)));
}

Journal::Journal(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Journal::~Journal() = default;

namespace {

// Why an update of `id` changed nothing: it does not exist, or it is not in the
// state the update needs.
Status NoChange(OutboxStatements& box, const std::string& id, const char* wanted) {
  sqlite::Statement& state_of = box.state_of;
  state_of.Reset().Bind(1, id);
  PINGMA_ASSIGN_OR_RETURN(auto row, state_of.Step());
  if (!row) return Status::NotFound(std::string("no ") + box.noun + " " + id + " in the journal");
  const std::string state = state_of.Text(0);
  state_of.Reset();
  return Status::Conflict(std::string(box.noun) + " " + id + " is " + state + ", not " + wanted);
}

}  // namespace

Status Journal::Begin(const BegunFill& fill) {
  if (fill.event_id.empty() || fill.position_id.empty()) {
    return Status::Invalid("a begun fill needs an event_id and a position_id");
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->begin.Reset()
      .Bind(1, fill.event_id)
      .Bind(2, fill.position_id)
      .Bind(3, fill.record_json)
      .Bind(4, NowMs());
  Status s = impl_->begin.Run();
  if (s.code() != StatusCode::kConflict) return s;
  // Which constraint: another open fill at this position, or an event id reused.
  sqlite::Statement& open = impl_->begun_at_position;
  open.Reset().Bind(1, fill.position_id);
  PINGMA_ASSIGN_OR_RETURN(auto row, open.Step());
  if (row) {
    const std::string other = open.Text(0);
    open.Reset();
    return Status::Conflict("position " + fill.position_id + " already has an open fill, " + other);
  }
  return Status::Conflict("fill " + fill.event_id + " is already in the journal");
}

Status Journal::Record(const std::string& event_id, const std::string& record_json) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  // One statement, so one transaction: the begun fill becomes the recorded one
  // (and enters the outbox) atomically.
  impl_->record.Reset().Bind(1, record_json).Bind(2, NowMs()).Bind(3, event_id);
  PINGMA_RETURN_IF_ERROR(impl_->record.Run());
  if (impl_->db.Changes() == 1) return Status::Ok();
  return NoChange(impl_->of(Outbox::kFills), event_id, "begun");
}

Status Journal::RecordOfflineCheck(const std::string& check_id, const std::string& record_json) {
  if (check_id.empty()) return Status::Invalid("an offline check needs a check_id");
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->record_check.Reset().Bind(1, check_id).Bind(2, record_json).Bind(3, NowMs());
  Status s = impl_->record_check.Run();
  if (s.code() == StatusCode::kConflict) {
    return Status::Conflict("offline check " + check_id + " is already in the journal");
  }
  return s;
}

Result<std::vector<BegunFill>> Journal::Unfinished() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  sqlite::Statement& st = impl_->unfinished;
  st.Reset();
  std::vector<BegunFill> out;
  for (;;) {
    PINGMA_ASSIGN_OR_RETURN(auto row, st.Step());
    if (!row) break;
    out.push_back({st.Text(0), st.Text(1), st.Text(2)});
  }
  return out;
}

Result<std::vector<OutboxItem>> Journal::Pending(int limit, Outbox which) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  sqlite::Statement& st = impl_->of(which).pending;
  st.Reset().Bind(1, limit < 0 ? 0 : limit);
  std::vector<OutboxItem> out;
  for (;;) {
    PINGMA_ASSIGN_OR_RETURN(auto row, st.Step());
    if (!row) break;
    out.push_back({st.Text(0), st.Text(1), static_cast<int>(st.Int(2))});
  }
  return out;
}

Status Journal::MarkUploaded(const std::string& id, Outbox which) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  OutboxStatements& box = impl_->of(which);
  box.uploaded.Reset().Bind(1, NowMs()).Bind(2, id);
  PINGMA_RETURN_IF_ERROR(box.uploaded.Run());
  if (impl_->db.Changes() == 1) return Status::Ok();
  Status why = NoChange(box, id, "pending");
  // Marking twice (an upload retried after a crash) is not an error.
  if (why.code() == StatusCode::kConflict &&
      why.message().find(" is uploaded,") != std::string::npos) {
    return Status::Ok();
  }
  return why;
}

Status Journal::MarkAttempt(const std::string& id, const std::string& error, Outbox which) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  OutboxStatements& box = impl_->of(which);
  box.attempt.Reset().Bind(1, error).Bind(2, NowMs()).Bind(3, id);
  PINGMA_RETURN_IF_ERROR(box.attempt.Run());
  if (impl_->db.Changes() == 1) return Status::Ok();
  return NoChange(box, id, "pending");
}

Status Journal::MarkRejected(const std::string& id, const std::string& error, Outbox which) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  OutboxStatements& box = impl_->of(which);
  box.rejected.Reset().Bind(1, error).Bind(2, NowMs()).Bind(3, id);
  PINGMA_RETURN_IF_ERROR(box.rejected.Run());
  if (impl_->db.Changes() == 1) return Status::Ok();
  return NoChange(box, id, "pending");
}

Result<JournalStats> Journal::Stats() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  JournalStats out;
  for (const Outbox which : {Outbox::kFills, Outbox::kChecks}) {
    OutboxStatements& box = impl_->of(which);
    const bool fills = which == Outbox::kFills;
    box.stats.Reset();
    for (;;) {
      PINGMA_ASSIGN_OR_RETURN(auto row, box.stats.Step());
      if (!row) break;
      const std::string state = box.stats.Text(0);
      const std::int64_t n = box.stats.Int(1);
      if (state == "begun") out.begun = n;
      if (state == "pending") (fills ? out.pending : out.checks_pending) = n;
      if (state == "uploaded") (fills ? out.uploaded : out.checks_uploaded) = n;
      if (state == "rejected") (fills ? out.rejected : out.checks_rejected) = n;
    }
    box.oldest.Reset();
    PINGMA_ASSIGN_OR_RETURN(auto row, box.oldest.Step());
    if (row && !box.oldest.IsNull(0)) {
      const std::int64_t at = box.oldest.Int(0);
      if (out.oldest_pending_ms == 0 || at < out.oldest_pending_ms) out.oldest_pending_ms = at;
    }
    box.oldest.Reset();
  }
  return out;
}

Result<std::string> Journal::StateOf(const std::string& id, Outbox which) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  OutboxStatements& box = impl_->of(which);
  box.state_of.Reset().Bind(1, id);
  PINGMA_ASSIGN_OR_RETURN(auto row, box.state_of.Step());
  if (!row) return Status::NotFound(std::string("no ") + box.noun + " " + id + " in the journal");
  std::string state = box.state_of.Text(0);
  box.state_of.Reset();
  return state;
}

std::string NewUuid() {
  unsigned char b[16] = {};
  if (!RandomBytes(b, sizeof b)) {
    // No random source at all: the kernel is broken. A time-and-pid based id is
    // still unique enough for one station's fills, and better than no fill.
    const std::int64_t t = NowMs();
    const auto pid = static_cast<std::uint32_t>(::getpid());
    static std::atomic<std::uint32_t> counter{0};
    const std::uint32_t c = ++counter;
    for (int i = 0; i < 8; ++i) b[i] = static_cast<unsigned char>(t >> (8 * i));
    for (int i = 0; i < 4; ++i) b[8 + i] = static_cast<unsigned char>(pid >> (8 * i));
    for (int i = 0; i < 4; ++i) b[12 + i] = static_cast<unsigned char>(c >> (8 * i));
  }
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[b[i] >> 4]);
    out.push_back(kHex[b[i] & 0x0f]);
  }
  return out;
}

}  // namespace pingma::station
