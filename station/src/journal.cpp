// The fill journal: one SQLite file, one row per fill, its state moving
// begun -> pending -> uploaded (or rejected). See journal.h for the contract.
#include "journal.h"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <mutex>

#include "sqlite_db.h"

namespace pingma::station {
namespace {

// Schema version 1. `seq` orders fills by when they were begun; the partial unique
// index is what enforces one open fill per filling position, in the database
// itself, so that it holds across restarts too.
constexpr int kSchemaVersion = 1;
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
PRAGMA user_version = 1;
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

struct Journal::Impl {
  std::mutex mu;
  lite::Database db;
  lite::Statement begin, record, unfinished, pending, uploaded, attempt, rejected, stats, state_of,
      begun_at_position;
};

Result<std::unique_ptr<Journal>> Journal::Open(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  auto db = lite::OpenVersioned(path, "journal", kSchemaVersion, kSchema);
  if (!db.ok()) return db.status();
  impl->db = std::move(*db);
  PINGMA_RETURN_IF_ERROR(lite::PrepareAll(
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
          {&impl->pending,
           "SELECT event_id, record_json, attempts FROM fills WHERE state = 'pending' "
           "ORDER BY seq LIMIT ?"},
          {&impl->uploaded,
           "UPDATE fills SET state = 'uploaded', done_at = ?, last_error = NULL "
           "WHERE event_id = ? AND state = 'pending'"},
          {&impl->attempt,
           "UPDATE fills SET attempts = attempts + 1, last_error = ?, last_attempt_at = ? "
           "WHERE event_id = ? AND state = 'pending'"},
          {&impl->rejected,
           "UPDATE fills SET state = 'rejected', attempts = attempts + 1, last_error = ?, "
           "done_at = ? WHERE event_id = ? AND state = 'pending'"},
          {&impl->stats, "SELECT state, count(*) FROM fills GROUP BY state"},
          {&impl->state_of, "SELECT state FROM fills WHERE event_id = ?"},
          {&impl->begun_at_position,
           "SELECT event_id FROM fills WHERE position_id = ? AND state = 'begun'"},
      }));
  return std::unique_ptr<Journal>(new Journal(std::move(impl)));
}

Journal::Journal(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Journal::~Journal() = default;

namespace {

// Why an update of `event_id` changed nothing: it does not exist, or it is not in
// the state the update needs.
Status NoChange(lite::Statement& state_of, const std::string& event_id, const char* wanted) {
  state_of.Start().Bind(1, event_id);
  auto row = state_of.Step();
  if (!row.ok()) return row.status();
  if (!*row) return Status::NotFound("no fill " + event_id + " in the journal");
  const std::string state = state_of.Text(0);
  state_of.Start();
  return Status::Conflict("fill " + event_id + " is " + state + ", not " + wanted);
}

}  // namespace

Status Journal::Begin(const BegunFill& fill) {
  if (fill.event_id.empty() || fill.position_id.empty()) {
    return Status::Invalid("a begun fill needs an event_id and a position_id");
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->begin.Start()
      .Bind(1, fill.event_id)
      .Bind(2, fill.position_id)
      .Bind(3, fill.record_json)
      .Bind(4, NowMs());
  Status s = impl_->begin.Run();
  if (s.ok() || !impl_->begin.ConstraintFailed()) return s;
  // Which constraint: another open fill at this position, or an event id reused.
  lite::Statement& open = impl_->begun_at_position;
  open.Start().Bind(1, fill.position_id);
  auto row = open.Step();
  if (!row.ok()) return row.status();
  if (*row) {
    const std::string other = open.Text(0);
    open.Start();
    return Status::Conflict("position " + fill.position_id + " already has an open fill, " + other);
  }
  return Status::Conflict("fill " + fill.event_id + " is already in the journal");
}

Status Journal::Record(const std::string& event_id, const std::string& record_json) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  // One statement, so one transaction: the begun fill becomes the recorded one
  // (and enters the outbox) atomically.
  impl_->record.Start().Bind(1, record_json).Bind(2, NowMs()).Bind(3, event_id);
  PINGMA_RETURN_IF_ERROR(impl_->record.Run());
  if (impl_->db.Changes() == 1) return Status::Ok();
  return NoChange(impl_->state_of, event_id, "begun");
}

Result<std::vector<BegunFill>> Journal::Unfinished() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  lite::Statement& st = impl_->unfinished;
  st.Start();
  std::vector<BegunFill> out;
  for (;;) {
    auto row = st.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back({st.Text(0), st.Text(1), st.Text(2)});
  }
  return out;
}

Result<std::vector<OutboxItem>> Journal::Pending(int limit) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  lite::Statement& st = impl_->pending;
  st.Start().Bind(1, limit < 0 ? 0 : limit);
  std::vector<OutboxItem> out;
  for (;;) {
    auto row = st.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    out.push_back({st.Text(0), st.Text(1), static_cast<int>(st.Int(2))});
  }
  return out;
}

Status Journal::MarkUploaded(const std::string& event_id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->uploaded.Start().Bind(1, NowMs()).Bind(2, event_id);
  PINGMA_RETURN_IF_ERROR(impl_->uploaded.Run());
  if (impl_->db.Changes() == 1) return Status::Ok();
  Status why = NoChange(impl_->state_of, event_id, "pending");
  // Marking twice (an upload retried after a crash) is not an error.
  if (why.code() == StatusCode::kConflict &&
      why.message().find(" is uploaded,") != std::string::npos) {
    return Status::Ok();
  }
  return why;
}

Status Journal::MarkAttempt(const std::string& event_id, const std::string& error) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->attempt.Start().Bind(1, error).Bind(2, NowMs()).Bind(3, event_id);
  PINGMA_RETURN_IF_ERROR(impl_->attempt.Run());
  if (impl_->db.Changes() == 1) return Status::Ok();
  return NoChange(impl_->state_of, event_id, "pending");
}

Status Journal::MarkRejected(const std::string& event_id, const std::string& error) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->rejected.Start().Bind(1, error).Bind(2, NowMs()).Bind(3, event_id);
  PINGMA_RETURN_IF_ERROR(impl_->rejected.Run());
  if (impl_->db.Changes() == 1) return Status::Ok();
  return NoChange(impl_->state_of, event_id, "pending");
}

Result<JournalStats> Journal::Stats() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  lite::Statement& st = impl_->stats;
  st.Start();
  JournalStats out;
  for (;;) {
    auto row = st.Step();
    if (!row.ok()) return row.status();
    if (!*row) break;
    const std::string state = st.Text(0);
    const std::int64_t n = st.Int(1);
    if (state == "begun") out.begun = n;
    if (state == "pending") out.pending = n;
    if (state == "uploaded") out.uploaded = n;
    if (state == "rejected") out.rejected = n;
  }
  return out;
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
