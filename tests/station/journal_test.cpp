// The fill journal on real SQLite files: the outbox's life cycle, one open fill per
// position, reopening, a crash between Begin and Record, the outbox of checks decided
// offline (and a journal made before it), and NewUuid.
#include "journal.h"

#include <doctest/doctest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

namespace fs = std::filesystem;
using pingma::StatusCode;
using pingma::station::BegunFill;
using pingma::station::Journal;
using pingma::station::NewUuid;
using pingma::station::Outbox;

namespace {

// A fresh directory per test case, removed at the end.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "pingma-journal-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const char* name) const { return (path / name).string(); }
};

std::unique_ptr<Journal> OpenOrFail(const std::string& path) {
  auto j = Journal::Open(path);
  REQUIRE_MESSAGE(j.ok(), j.status().ToString());
  return std::move(*j);
}

BegunFill Fill(const std::string& position, const std::string& record = "{\"begun\":true}") {
  return {NewUuid(), position, record};
}

bool IsUuidV4(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  const char variant = s[19];
  return s[14] == '4' && (variant == '8' || variant == '9' || variant == 'a' || variant == 'b');
}

}  // namespace

TEST_CASE("a fill goes begun -> pending -> uploaded, and the counts follow") {
  TempDir dir;
  auto j = OpenOrFail(dir.file("journal.db"));
  const BegunFill f = Fill("P1");
  REQUIRE(j->Begin(f).ok());

  auto stats = j->Stats();
  REQUIRE(stats.ok());
  CHECK(stats->begun == 1);
  CHECK(stats->pending == 0);
  auto open = j->Unfinished();
  REQUIRE(open.ok());
  REQUIRE(open->size() == 1);
  CHECK((*open)[0].event_id == f.event_id);
  CHECK((*open)[0].position_id == "P1");
  CHECK((*open)[0].record_json == f.record_json);
  CHECK(j->Pending(10)->empty());

  REQUIRE(j->Record(f.event_id, "{\"final\":true}").ok());
  CHECK(j->Unfinished()->empty());
  auto pending = j->Pending(10);
  REQUIRE(pending.ok());
  REQUIRE(pending->size() == 1);
  CHECK((*pending)[0].event_id == f.event_id);
  CHECK((*pending)[0].record_json == "{\"final\":true}");
  CHECK((*pending)[0].attempts == 0);
  CHECK(j->Stats()->pending == 1);
  CHECK(j->Stats()->begun == 0);

  REQUIRE(j->MarkAttempt(f.event_id, "registry unreachable").ok());
  REQUIRE(j->MarkAttempt(f.event_id, "registry unreachable").ok());
  CHECK((*j->Pending(10))[0].attempts == 2);

  REQUIRE(j->MarkUploaded(f.event_id).ok());
  CHECK(j->Pending(10)->empty());
  CHECK(j->Stats()->uploaded == 1);
  CHECK(j->Stats()->pending == 0);
  // Marking again (a retry after a crash) is harmless; an attempt after it is not.
  CHECK(j->MarkUploaded(f.event_id).ok());
  CHECK(j->MarkAttempt(f.event_id, "late").code() == StatusCode::kConflict);
}

TEST_CASE("a rejected fill is kept, counted and no longer pending") {
  TempDir dir;
  auto j = OpenOrFail(dir.file("journal.db"));
  const BegunFill f = Fill("P1");
  REQUIRE(j->Begin(f).ok());
  REQUIRE(j->Record(f.event_id, "{}").ok());
  REQUIRE(j->MarkRejected(f.event_id, "INVALID: net_kg must be from -100 to 1000 kg").ok());
  CHECK(j->Pending(10)->empty());
  auto stats = j->Stats();
  CHECK(stats->rejected == 1);
  CHECK(stats->pending == 0);
  CHECK(j->MarkUploaded(f.event_id).code() == StatusCode::kConflict);
  CHECK(j->MarkRejected(f.event_id, "again").code() == StatusCode::kConflict);
}

TEST_CASE("misuse is refused with a status and changes nothing") {
  TempDir dir;
  auto j = OpenOrFail(dir.file("journal.db"));
  const BegunFill f = Fill("P1");
  REQUIRE(j->Begin(f).ok());

  struct Row {
    const char* what;
    pingma::Status status;
    StatusCode expected;
  };
  const std::string unknown = NewUuid();
  const Row rows[] = {
      {"second open fill at the position", j->Begin(Fill("P1")), StatusCode::kConflict},
      {"event id reused at another position", j->Begin({f.event_id, "P2", "{}"}),
       StatusCode::kConflict},
      {"no event id", j->Begin({"", "P2", "{}"}), StatusCode::kInvalid},
      {"no position", j->Begin({NewUuid(), "", "{}"}), StatusCode::kInvalid},
      {"record of an unknown fill", j->Record(unknown, "{}"), StatusCode::kNotFound},
      {"upload of a begun fill", j->MarkUploaded(f.event_id), StatusCode::kConflict},
      {"attempt of a begun fill", j->MarkAttempt(f.event_id, "x"), StatusCode::kConflict},
      {"upload of an unknown fill", j->MarkUploaded(unknown), StatusCode::kNotFound},
      {"reject of an unknown fill", j->MarkRejected(unknown, "x"), StatusCode::kNotFound},
  };
  for (const Row& row : rows) {
    CAPTURE(row.what);
    CHECK(row.status.code() == row.expected);
    CHECK(!row.status.message().empty());
  }
  CHECK(j->Stats()->begun == 1);
  CHECK(j->Pending(10)->empty());

  // Recorded twice: the second is refused, the first record stays.
  REQUIRE(j->Record(f.event_id, "{\"n\":1}").ok());
  CHECK(j->Record(f.event_id, "{\"n\":2}").code() == StatusCode::kConflict);
  CHECK((*j->Pending(10))[0].record_json == "{\"n\":1}");
}

TEST_CASE("one open fill per position; positions are independent") {
  TempDir dir;
  auto j = OpenOrFail(dir.file("journal.db"));
  const BegunFill p1 = Fill("P1"), p2 = Fill("P2");
  REQUIRE(j->Begin(p1).ok());
  REQUIRE(j->Begin(p2).ok());
  CHECK(j->Stats()->begun == 2);
  // Once P1's fill is recorded, P1 may begin the next one.
  REQUIRE(j->Record(p1.event_id, "{}").ok());
  const BegunFill next = Fill("P1");
  CHECK(j->Begin(next).ok());
  auto open = j->Unfinished();
  REQUIRE(open->size() == 2);
  CHECK((*open)[0].event_id == p2.event_id);  // oldest first
  CHECK((*open)[1].event_id == next.event_id);
}

TEST_CASE("Pending is oldest first and honours its limit") {
  TempDir dir;
  auto j = OpenOrFail(dir.file("journal.db"));
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    const BegunFill f = Fill("P1");
    REQUIRE(j->Begin(f).ok());
    REQUIRE(j->Record(f.event_id, std::to_string(i)).ok());
    ids.push_back(f.event_id);
  }
  auto three = j->Pending(3);
  REQUIRE(three->size() == 3);
  for (int i = 0; i < 3; ++i)
    CHECK((*three)[static_cast<size_t>(i)].event_id == ids[static_cast<size_t>(i)]);
  REQUIRE(j->MarkUploaded(ids[0]).ok());
  CHECK((*j->Pending(1))[0].event_id == ids[1]);
  CHECK(j->Pending(0)->empty());
}

TEST_CASE("closing and reopening keeps every fill in its state") {
  TempDir dir;
  const std::string path = dir.file("journal.db");
  BegunFill begun = Fill("P1"), pending = Fill("P2"), uploaded = Fill("P3"), rejected = Fill("P4");
  {
    auto j = OpenOrFail(path);
    for (const BegunFill& f : {begun, pending, uploaded, rejected}) REQUIRE(j->Begin(f).ok());
    for (const BegunFill& f : {pending, uploaded, rejected}) {
      REQUIRE(j->Record(f.event_id, "{\"of\":\"" + f.position_id + "\"}").ok());
    }
    REQUIRE(j->MarkAttempt(pending.event_id, "offline").ok());
    REQUIRE(j->MarkUploaded(uploaded.event_id).ok());
    REQUIRE(j->MarkRejected(rejected.event_id, "422").ok());
  }
  auto j = OpenOrFail(path);
  auto stats = j->Stats();
  CHECK(stats->begun == 1);
  CHECK(stats->pending == 1);
  CHECK(stats->uploaded == 1);
  CHECK(stats->rejected == 1);
  REQUIRE(j->Unfinished()->size() == 1);
  CHECK((*j->Unfinished())[0].event_id == begun.event_id);
  auto out = j->Pending(10);
  REQUIRE(out->size() == 1);
  CHECK((*out)[0].event_id == pending.event_id);
  CHECK((*out)[0].record_json == "{\"of\":\"P2\"}");
  CHECK((*out)[0].attempts == 1);
  // The position with the open fill is still taken after the restart.
  CHECK(j->Begin(Fill("P1")).code() == StatusCode::kConflict);
}

TEST_CASE("a process killed between Begin and Record leaves its fill in Unfinished") {
  TempDir dir;
  const std::string path = dir.file("journal.db");
  const BegunFill f = Fill("P7", "{\"code\":\"HB01\",\"gross_before_kg\":16.9}");
  // The parent holds no connection across the fork: the child opens its own, begins
  // the fill, then dies without closing anything (SIGKILL: no destructor, no flush
  // of any buffer this process could own).
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    auto j = Journal::Open(path);
    if (!j.ok() || !(*j)->Begin(f).ok()) _exit(3);
    kill(getpid(), SIGKILL);
    _exit(4);  // not reached
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE_MESSAGE(WIFSIGNALED(status), "the child exited with ", WEXITSTATUS(status));
  CHECK(WTERMSIG(status) == SIGKILL);

  auto j = OpenOrFail(path);
  auto open = j->Unfinished();
  REQUIRE(open.ok());
  REQUIRE(open->size() == 1);
  CHECK((*open)[0].event_id == f.event_id);
  CHECK((*open)[0].position_id == "P7");
  CHECK((*open)[0].record_json == f.record_json);
  // Recovery closes it as interrupted: it goes to the outbox like any other fill.
  REQUIRE(j->Record(f.event_id, "{\"result\":\"interrupted\"}").ok());
  CHECK(j->Unfinished()->empty());
  CHECK(j->Pending(10)->size() == 1);
}

TEST_CASE("an offline check goes pending -> uploaded in its own outbox, apart from the fills") {
  TempDir dir;
  auto j = OpenOrFail(dir.file("journal.db"));
  const std::string a = NewUuid(), b = NewUuid();
  REQUIRE(j->RecordOfflineCheck(a, "{\"decision\":\"block\"}").ok());
  REQUIRE(j->RecordOfflineCheck(b, "{\"decision\":\"allow\"}").ok());
  const BegunFill f = Fill("P1");
  REQUIRE(j->Begin(f).ok());
  REQUIRE(j->Record(f.event_id, "{\"result\":\"ok\"}").ok());

  auto checks = j->Pending(10, Outbox::kChecks);
  REQUIRE(checks.ok());
  REQUIRE(checks->size() == 2);
  CHECK((*checks)[0].event_id == a);  // oldest first
  CHECK((*checks)[0].record_json == "{\"decision\":\"block\"}");
  CHECK((*checks)[1].event_id == b);
  auto fills = j->Pending(10);
  REQUIRE(fills->size() == 1);
  CHECK((*fills)[0].event_id == f.event_id);

  auto stats = j->Stats();
  REQUIRE(stats.ok());
  CHECK(stats->checks_pending == 2);
  CHECK(stats->pending == 1);
  CHECK(stats->oldest_pending_ms > 0);

  REQUIRE(j->MarkAttempt(a, "unreachable", Outbox::kChecks).ok());
  CHECK((*j->Pending(10, Outbox::kChecks))[0].attempts == 1);
  REQUIRE(j->MarkUploaded(a, Outbox::kChecks).ok());
  CHECK(j->MarkUploaded(a, Outbox::kChecks).ok());  // twice, after a crash: not an error
  REQUIRE(j->MarkRejected(b, "422 bad", Outbox::kChecks).ok());
  // A check's id is not a fill's: marking it in the other outbox finds nothing.
  CHECK(j->MarkUploaded(a, Outbox::kFills).code() == StatusCode::kNotFound);
  CHECK(j->MarkUploaded(f.event_id, Outbox::kChecks).code() == StatusCode::kNotFound);

  stats = j->Stats();
  CHECK(stats->checks_pending == 0);
  CHECK(stats->checks_uploaded == 1);
  CHECK(stats->checks_rejected == 1);
  CHECK(stats->pending == 1);  // the fill is untouched
  CHECK(j->Pending(10, Outbox::kChecks)->empty());
}

TEST_CASE("an offline check id is taken once; an empty one is refused") {
  TempDir dir;
  auto j = OpenOrFail(dir.file("journal.db"));
  const std::string a = NewUuid();
  REQUIRE(j->RecordOfflineCheck(a, "{}").ok());
  CHECK(j->RecordOfflineCheck(a, "{\"again\":1}").code() == StatusCode::kConflict);
  CHECK(j->RecordOfflineCheck("", "{}").code() == StatusCode::kInvalid);
  auto checks = j->Pending(10, Outbox::kChecks);
  REQUIRE(checks->size() == 1);
  CHECK((*checks)[0].record_json == "{}");
}

TEST_CASE("an offline check survives the process killed right after it was recorded") {
  TempDir dir;
  const std::string path = dir.file("journal.db");
  const std::string id = NewUuid();
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    auto j = Journal::Open(path);
    if (!j.ok() || !(*j)->RecordOfflineCheck(id, "{\"decision\":\"block\"}").ok()) _exit(3);
    kill(getpid(), SIGKILL);
    _exit(4);  // not reached
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  auto j = OpenOrFail(path);
  auto checks = j->Pending(10, Outbox::kChecks);
  REQUIRE(checks->size() == 1);
  CHECK((*checks)[0].event_id == id);
}

TEST_CASE("a journal made before the outbox of checks keeps its fills and gains the outbox") {
  TempDir dir;
  const std::string path = dir.file("journal.db");
  {
    // Version 1's schema, as the station wrote it, with one pending fill.
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
    const char* v1 =
        "CREATE TABLE fills(seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL "
        "UNIQUE, position_id TEXT NOT NULL, state TEXT NOT NULL CHECK(state IN ('begun', "
        "'pending', 'uploaded', 'rejected')), record_json TEXT NOT NULL, begun_at INTEGER NOT "
        "NULL, recorded_at INTEGER, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, "
        "last_attempt_at INTEGER, done_at INTEGER);"
        "CREATE UNIQUE INDEX fills_one_begun_per_position ON fills(position_id) WHERE state = "
        "'begun';"
        "CREATE INDEX fills_by_state ON fills(state, seq);"
        "INSERT INTO fills(event_id, position_id, state, record_json, begun_at, recorded_at) "
        "VALUES('3b241101-e2bb-4255-8caf-4136c566a962', 'P1', 'pending', '{}', 1, 2);"
        "PRAGMA user_version = 1;";
    REQUIRE(sqlite3_exec(db, v1, nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  auto j = OpenOrFail(path);
  auto fills = j->Pending(10);
  REQUIRE(fills->size() == 1);
  CHECK((*fills)[0].event_id == "3b241101-e2bb-4255-8caf-4136c566a962");
  REQUIRE(j->RecordOfflineCheck(NewUuid(), "{}").ok());
  CHECK(j->Stats()->checks_pending == 1);
  CHECK(j->Stats()->oldest_pending_ms == 2);  // the fill's, older than the check's
}

TEST_CASE("a file that is not a journal is refused at Open") {
  TempDir dir;
  const std::string path = dir.file("not-a-db");
  {
    FILE* f = std::fopen(path.c_str(), "wb");
    REQUIRE(f != nullptr);
    std::fputs("this is not an SQLite database, just some text that is long enough......\n", f);
    std::fclose(f);
  }
  auto j = Journal::Open(path);
  REQUIRE(!j.ok());
  CHECK(j.status().code() == StatusCode::kIoError);
  CHECK(!Journal::Open(dir.file("no/such/dir/journal.db")).ok());
}

TEST_CASE("NewUuid gives lower-case version 4 UUIDs, 100,000 of them distinct") {
  std::unordered_set<std::string> seen;
  seen.reserve(100000);
  for (int i = 0; i < 100000; ++i) {
    const std::string id = NewUuid();
    if (!IsUuidV4(id)) FAIL_CHECK("not a lower-case v4 UUID: ", id);
    seen.insert(id);
  }
  CHECK(seen.size() == 100000);
}
