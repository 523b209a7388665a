// The two stores' statements (store/sql.h) on real databases: SQLite files, and a
// throw-away PostgreSQL cluster when PINGMA_TEST_PG names one (the sql_test_pg
// entry starts it: tests/integration/with_pg.py). Parameters written $N in any
// order; rows streamed from PostgreSQL one at a time, so that a large result is
// never held whole; a statement started while another streams; a run stopped
// early; parameters left unbound; rows changed; constraint violations.
#include <doctest/doctest.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <future>
#include <memory>
#include <string>

#include "cases/verifiable_log.h"
#include "store/chain.h"
#include "store/pg_sql.h"
#include "store/pg_store.h"
#include "store/sqlite.h"
#include "test_store.h"

namespace pingma::sql {
namespace {

/// The process's peak resident memory so far (VmHWM), in KiB.
long PeakRssKib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

std::int64_t One(Database& db, const std::string& sql) {
  auto st = db.Prepare(sql);
  REQUIRE(st.ok());
  auto row = (*st)->Step();
  REQUIRE(row.ok());
  REQUIRE(*row);
  return (*st)->Int(0);
}

/// What both stores must do alike, on `db`.
void CheckParametersAndWrites(Database& db) {
  REQUIRE(
      db.Exec("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, n INTEGER)").ok());
  auto insert = db.Prepare("INSERT INTO t(id, name, n) VALUES($1, $2, $3)");
  REQUIRE(insert.ok());
  for (int i = 1; i <= 5; ++i) {
    (*insert)->Bind(1, i).Bind(2, "n" + std::to_string(i)).Bind(3, i * 10);
    REQUIRE((*insert)->Run().ok());
  }

  SUBCASE("$N bound by number, whatever the order they stand in, one used twice") {
    auto st = db.Prepare("SELECT id FROM t WHERE n = $2 OR (name = $1 AND id <> $2) ORDER BY id");
    REQUIRE(st.ok());
    (*st)->Bind(1, "n3").Bind(2, 50);
    std::vector<std::int64_t> ids;
    for (;;) {
      auto row = (*st)->Step();
      REQUIRE(row.ok());
      if (!*row) break;
      ids.push_back((*st)->Int(0));
    }
    CHECK(ids == std::vector<std::int64_t>{3, 5});
  }
  SUBCASE("a parameter never bound is NULL") {
    CHECK(One(db, "SELECT CASE WHEN $1 IS NULL THEN 1 ELSE 0 END") == 1);
    auto st = db.Prepare("SELECT count(*) FROM t WHERE ($2 IS NULL OR name = $2) AND id >= $1");
    REQUIRE(st.ok());
    (*st)->Bind(1, 2);
    auto row = (*st)->Step();
    REQUIRE_MESSAGE(row.ok(), row.status().message());
    REQUIRE(*row);
    CHECK((*st)->Int(0) == 4);
  }
  SUBCASE("the rows an UPDATE changed") {
    auto st = db.Prepare("UPDATE t SET n = n + 1 WHERE id > $1");
    REQUIRE(st.ok());
    (*st)->Bind(1, 2);
    REQUIRE((*st)->Run().ok());
    CHECK(db.Changes() == 3);
  }
  SUBCASE("a unique violation is a conflict, and changes nothing") {
    (*insert)->Bind(1, 9).Bind(2, "n1").Bind(3, 0);
    Status s = (*insert)->Run();
    CHECK(s.code() == StatusCode::kConflict);
    CHECK(One(db, "SELECT count(*) FROM t") == 5);
  }
  SUBCASE("a statement started inside another's rows; the outer one goes on") {
    auto outer = db.Prepare("SELECT id FROM t ORDER BY id");
    auto inner = db.Prepare("SELECT n FROM t WHERE id = $1");
    REQUIRE(outer.ok());
    REQUIRE(inner.ok());
    std::int64_t sum = 0, rows = 0;
    for (;;) {
      auto row = (*outer)->Step();
      REQUIRE(row.ok());
      if (!*row) break;
      ++rows;
      (*inner)->Bind(1, (*outer)->Int(0));
      REQUIRE(*(*inner)->Step());
      sum += (*inner)->Int(0);
      (*inner)->Reset();
    }
    CHECK(rows == 5);
    CHECK(sum == 150);
  }
  SUBCASE("a run stopped after its first row leaves the connection usable") {
    auto st = db.Prepare("SELECT id FROM t ORDER BY id");
    REQUIRE(st.ok());
    REQUIRE(*(*st)->Step());
    CHECK((*st)->Int(0) == 1);
    (*st)->Reset();
    CHECK(One(db, "SELECT max(n) FROM t") == 50);
    REQUIRE(*(*st)->Step());  // and runs again from its start
    CHECK((*st)->Int(0) == 1);
  }
}

TEST_SUITE("sqlite") {
  TEST_CASE("SQLite: parameters, writes, nested and stopped runs") {
    registry::TempDb tmp;
    auto db = SqliteDatabase::Open(tmp.path, /*create=*/true, /*read_only=*/false);
    REQUIRE(db.ok());
    CheckParametersAndWrites(**db);
  }
  TEST_CASE("SQLite: ? and ?N still bind by position") {
    registry::TempDb tmp;
    auto db = SqliteDatabase::Open(tmp.path, /*create=*/true, /*read_only=*/false);
    REQUIRE(db.ok());
    auto st = (*db)->Prepare("SELECT ?2 - ?1, ?");
    REQUIRE(st.ok());
    (*st)->Bind(1, 10).Bind(2, 50).Bind(3, 7);
    REQUIRE(*(*st)->Step());
    CHECK((*st)->Int(0) == 40);
    CHECK((*st)->Int(1) == 7);
  }
}

/// Jobs submitted to a store while its writer is held by a first job, so that they
/// all form its next batch.
class OneBatch {
 public:
  explicit OneBatch(registry::Store& store) : store_(store) {
    std::promise<void> entered;
    auto gate = open_.get_future().share();
    Submit([&entered, gate](registry::WriteTx&) {
      entered.set_value();
      gate.wait();
      return registry::Reply{};
    });
    entered.get_future().wait();
  }
  void Submit(registry::Store::Job job) {
    auto answer = std::make_shared<std::promise<registry::Reply>>();
    replies_.push_back(answer->get_future());
    store_.Submit(std::move(job), [answer](registry::Reply r) { answer->set_value(r); });
  }
  /// Lets the writer go on; every reply's status, the holding job's (200) first.
  std::vector<int> Statuses() {
    open_.set_value();
    std::vector<int> statuses;
    for (auto& r : replies_) statuses.push_back(r.get().status);
    return statuses;
  }

 private:
  registry::Store& store_;
  std::promise<void> open_;
  std::vector<std::future<registry::Reply>> replies_;
};

TEST_SUITE("postgresql") {
  std::unique_ptr<PgDatabase> Connect() {
    const char* conninfo = std::getenv("PINGMA_TEST_PG");
    REQUIRE_MESSAGE(conninfo != nullptr, "PINGMA_TEST_PG must name a database");
    auto db = PgDatabase::Open(conninfo);
    REQUIRE_MESSAGE(db.ok(), db.status().message());
    REQUIRE((*db)->Exec("DROP TABLE IF EXISTS t").ok());
    return std::move(*db);
  }

  TEST_CASE("PostgreSQL: parameters, writes, nested and stopped runs") {
    auto db = Connect();
    CheckParametersAndWrites(*db);
  }

  TEST_CASE("PostgreSQL: a large result streams; it is never held whole") {
    auto db = Connect();
    // 1,000,000 rows of 200 bytes: 200 MB as one result, one row at a time here.
    auto st = db->Prepare("SELECT g, repeat('x', 200) FROM generate_series(1, $1) g");
    REQUIRE(st.ok());
    (*st)->Bind(1, std::int64_t{1000000});
    const long before = PeakRssKib();
    REQUIRE(before > 0);
    std::int64_t rows = 0, sum = 0;
    for (;;) {
      auto row = (*st)->Step();
      REQUIRE(row.ok());
      if (!*row) break;
      ++rows;
      sum += (*st)->Int(0);
      if (rows == 1) CHECK((*st)->Text(1).size() == 200);
    }
    CHECK(rows == 1000000);
    CHECK(sum == std::int64_t{1000000} * 1000001 / 2);
    const long grown_kib = PeakRssKib() - before;
    MESSAGE("peak memory grew by ", grown_kib, " KiB over 200 MB of rows");
    CHECK(grown_kib < 32 * 1024);
  }

  TEST_CASE("PostgreSQL: writes held back go before the next statement that waits, in order") {
    auto db = Connect();
    REQUIRE(db->Exec("CREATE TABLE t(id integer PRIMARY KEY, v text)").ok());
    db->set_deferring(true);
    REQUIRE(db->Exec("BEGIN").ok());
    auto insert = db->Prepare("INSERT INTO t(id, v) VALUES($1, $2)");
    auto update = db->Prepare("UPDATE t SET v = $2 WHERE id = $1");
    auto savepoint = db->Prepare("SAVEPOINT job");
    auto release = db->Prepare("RELEASE job");
    REQUIRE((insert.ok() && update.ok() && savepoint.ok() && release.ok()));
    // 1,000 jobs' writes: more than one pipeline's worth (it is sent every 256).
    for (int i = 1; i <= 1000; ++i) {
      REQUIRE((*savepoint)->Defer().ok());
      (*insert)->Bind(1, i).Bind(2, "a");
      REQUIRE((*insert)->Defer().ok());
      (*update)->Bind(1, i).Bind(2, "b" + std::to_string(i));
      REQUIRE((*update)->Defer().ok());
      REQUIRE((*release)->Defer().ok());
    }
    CHECK(One(*db, "SELECT count(*) FROM t WHERE v = 'b' || id") == 1000);
    SUBCASE("a write held back while another statement's rows stream") {
      auto rows = db->Prepare("SELECT id FROM t WHERE id <= 10 ORDER BY id");
      REQUIRE(rows.ok());
      for (;;) {
        auto row = (*rows)->Step();
        REQUIRE(row.ok());
        if (!*row) break;
        (*insert)->Bind(1, 2000 + (*rows)->Int(0)).Bind(2, "c");
        REQUIRE((*insert)->Defer().ok());
      }
      CHECK(One(*db, "SELECT count(*) FROM t WHERE v = 'c'") == 10);
    }
    SUBCASE("a held write's failure is the next waiting statement's; a rollback still runs") {
      (*insert)->Bind(1, 1).Bind(2, "again");
      CHECK((*insert)->Defer().ok());  // not sent yet: nothing to fail
      auto next = db->Prepare("SELECT 1");
      REQUIRE(next.ok());
      auto row = (*next)->Step();
      CHECK(row.status().code() == StatusCode::kConflict);
      CHECK(db->deferred_failure().code() == StatusCode::kConflict);
      CHECK(db->Exec("ROLLBACK").ok());
      db->set_deferring(false);
      CHECK(db->deferred_failure().ok());
      CHECK(One(*db, "SELECT count(*) FROM t") == 0);
      return;
    }
    CHECK(db->deferred_failure().ok());
    CHECK(db->Exec("COMMIT").ok());
    db->set_deferring(false);
    (*insert)->Bind(1, 1).Bind(2, "again");  // not deferring: run at once
    CHECK((*insert)->Defer().code() == StatusCode::kConflict);
  }

  TEST_CASE("PostgreSQL: a job's writes still held are undone by dropping them, no savepoint") {
    auto db = Connect();
    REQUIRE(db->Exec("CREATE TABLE t(id integer PRIMARY KEY, v text)").ok());
    CHECK_FALSE(db->MarkWrites());  // not deferring: each job takes a savepoint
    db->set_deferring(true);
    REQUIRE(db->ExecDeferred("BEGIN").ok());
    auto insert = db->Prepare("INSERT INTO t(id, v) VALUES($1, 'x')");
    REQUIRE(insert.ok());
    auto hold = [&](int id) {
      (*insert)->Bind(1, id);
      REQUIRE((*insert)->Defer().ok());
    };
    // A job that stands, then one that fails with its writes all held: dropped.
    auto first = db->MarkWrites();
    REQUIRE(first);
    hold(1);
    CHECK(db->SettleJob(*first, /*undo=*/false));
    auto second = db->MarkWrites();
    REQUIRE(second);
    hold(2);
    hold(3);
    CHECK(db->SettleJob(*second, /*undo=*/true));
    CHECK(db->deferred_failure().ok());
    hold(4);  // a job after it
    CHECK(One(*db, "SELECT count(*) FROM t WHERE id IN (2, 3)") == 0);
    CHECK(One(*db, "SELECT count(*) FROM t WHERE id IN (1, 4)") == 2);

    SUBCASE("a failed job whose read sent only the jobs' before it is still undone") {
      hold(7);  // a job before it, still held
      auto third = db->MarkWrites();
      REQUIRE(third);
      CHECK(One(*db, "SELECT count(*) FROM t WHERE id = 7") == 1);  // sends job 7's write
      hold(8);
      CHECK(db->SettleJob(*third, /*undo=*/true));
      CHECK(db->deferred_failure().ok());
      CHECK(One(*db, "SELECT count(*) FROM t WHERE id IN (7, 8)") == 1);
    }
    SUBCASE("a failed job whose write was sent (a read of its own) fails the batch") {
      auto third = db->MarkWrites();
      REQUIRE(third);
      hold(5);
      CHECK(One(*db, "SELECT count(*) FROM t WHERE id = 5") == 1);  // sent, and seen
      CHECK_FALSE(db->SettleJob(*third, /*undo=*/true));
      CHECK(db->deferred_failure().code() == StatusCode::kUnavailable);
      CHECK(db->deferred_failure().message().find("sent") != std::string::npos);
      CHECK_FALSE(db->MarkWrites());  // the rest of this batch: savepoints
    }
    SUBCASE("a failed job that wrote at once fails the batch") {
      auto third = db->MarkWrites();
      REQUIRE(third);
      auto update = db->Prepare("UPDATE t SET v = 'y' WHERE id = 1");
      REQUIRE(update.ok());
      REQUIRE((*update)->Run().ok());
      CHECK_FALSE(db->SettleJob(*third, /*undo=*/true));
      CHECK_FALSE(db->deferred_failure().ok());
    }
    SUBCASE("a job that went on after its statement failed fails the batch") {
      auto third = db->MarkWrites();
      REQUIRE(third);
      auto twice = db->Prepare("SELECT 1 / (SELECT count(*) FROM t WHERE id = 99)");
      REQUIRE(twice.ok());
      CHECK_FALSE((*twice)->Step().ok());  // division by zero: the transaction is aborted
      CHECK_FALSE(db->SettleJob(*third, /*undo=*/false));
      CHECK(db->deferred_failure().message().find("went on") != std::string::npos);
    }
    SUBCASE("a read that fails in a job that then fails fails the batch too") {
      auto third = db->MarkWrites();
      REQUIRE(third);
      hold(6);
      auto bad = db->Prepare("SELECT 1 / 0");
      REQUIRE(bad.ok());
      CHECK_FALSE((*bad)->Step().ok());
      CHECK_FALSE(db->SettleJob(*third, /*undo=*/true));
    }
    (void)db->Exec("ROLLBACK");
    db->set_deferring(false);
    CHECK(db->deferred_failure().ok());
    CHECK(One(*db, "SELECT count(*) FROM t") == 0);
  }

  TEST_CASE(
      "PostgreSQL store: a failed job is undone without a savepoint, or its batch runs again") {
    const char* conninfo = std::getenv("PINGMA_TEST_PG");
    // Job 2 appends an event and then fails: before anything of it was sent
    // (dropped, no job runs twice), or after a read of its own sent its write (the
    // batch fails and runs again, each job in a savepoint). Either way the events
    // of jobs 1 and 3 are there once, and job 2's not at all.
    for (const bool sent : {false, true}) {
      CAPTURE(sent);
      registry::FixedClock clock;
      auto store = registry::PgStore::Open(conninfo, clock);
      REQUIRE_MESSAGE(store.ok(), store.status().message());
      using registry::WriteTx;
      const std::string type = sent ? "settle_sent" : "settle_held";
      OneBatch batch(**store);
      std::array<std::atomic<int>, 4> runs{};
      for (int k = 1; k <= 3; ++k) {
        batch.Submit([k, sent, type, &runs](WriteTx& tx) -> registry::Reply {
          ++runs[k];
          auto seq = tx.Append({"", "", type, tx.now(), "admin", "test", "{}"});
          if (!seq.ok()) return registry::ErrorReply(seq.status());
          if (k != 2) return registry::Reply{};
          if (sent) {
            auto read = tx.conn().Prepare("SELECT count(*) FROM events WHERE type = $1");
            if (!read.ok()) return registry::ErrorReply(read.status());
            (*read)->Bind(1, type);
            auto row = (*read)->Step();
            if (!row.ok() || !*row || (*read)->Int(0) != 2) {
              return registry::ErrorReply(Status::Internal("job 2 does not see its own event"));
            }
          }
          return registry::ErrorReply(Status::Invalid("job 2 fails after its write"));
        });
      }
      CHECK(batch.Statuses() == std::vector<int>{200, 200, 422, 200});
      for (int k = 1; k <= 3; ++k) CHECK(runs[k] == (sent ? 2 : 1));
      (*store)->Close();
      auto db = Connect();
      CHECK(One(*db, "SELECT count(*) FROM events WHERE type = '" + type + "'") == 2);
      auto verified = registry::VerifyChain(conninfo);
      CHECK_MESSAGE(verified.ok(), verified.status().message());
    }
  }

  TEST_CASE("PostgreSQL store: a batch whose held-back write fails runs again, each write waited") {
    const char* conninfo = std::getenv("PINGMA_TEST_PG");
    {
      auto db = Connect();
      REQUIRE(db->Exec("DROP TABLE IF EXISTS held; CREATE TABLE held(k integer PRIMARY KEY); "
                       "INSERT INTO held VALUES(3)")
                  .ok());
    }
    registry::FixedClock clock;
    auto store = registry::PgStore::Open(conninfo, clock);
    REQUIRE_MESSAGE(store.ok(), store.status().message());
    using registry::WriteTx;
    OneBatch batch(**store);  // the five jobs below are the next batch, all of them
    std::array<std::atomic<int>, 6> runs{};
    for (int k = 1; k <= 5; ++k) {
      batch.Submit([k, &runs](WriteTx& tx) -> registry::Reply {
        ++runs[k];
        auto seq = tx.Append({"", "", "held_test", tx.now(), "admin", "test", "{}"});
        if (!seq.ok()) return registry::ErrorReply(seq.status());
        auto st = tx.conn().Prepare("INSERT INTO held(k) VALUES($1)");
        if (!st.ok()) return registry::ErrorReply(st.status());
        (*st)->Bind(1, k);
        const Status held = (*st)->Defer();  // k = 3 is there: fails, but not here
        if (!held.ok()) return registry::ErrorReply(held);
        if (k == 4) {
          // A read waits: the held failure of job 3 comes back here, and the
          // batch cannot commit: its jobs run again, each in a savepoint.
          auto read = tx.conn().Prepare("SELECT count(*) FROM held");
          if (!read.ok()) return registry::ErrorReply(read.status());
          auto row = (*read)->Step();
          if (!row.ok()) return registry::ErrorReply(row.status());
        }
        return registry::Reply{};
      });
    }
    const std::vector<int> statuses = batch.Statuses();
    // Only the job whose write failed fails; the batch ran twice, and what the
    // other jobs wrote is there once. Job 3's duplicate key, which another
    // registry's write at once would give too, is tried in the next batches
    // (each of which runs twice, as this one), and fails each time.
    CHECK(statuses == std::vector<int>{200, 200, 200, 409, 200, 200});
    for (int k = 1; k <= 5; ++k) {
      CHECK(runs[k] == (k == 3 ? 2 * (1 + registry::GroupCommit::kMostReruns) : 2));
    }
    (*store)->Close();
    auto db = Connect();
    CHECK(One(*db, "SELECT count(*) FROM held") == 5);
    CHECK(One(*db, "SELECT count(*) FROM events WHERE type = 'held_test'") == 4);
    auto verified = registry::VerifyChain(conninfo);
    CHECK_MESSAGE(verified.ok(), verified.status().message());
  }

  TEST_CASE("PostgreSQL store: two registries' batches commit out of order; the log misses none") {
    const char* conninfo = std::getenv("PINGMA_TEST_PG");
    registry::FixedClock clock;
    auto a = registry::PgStore::Open(conninfo, clock);
    REQUIRE_MESSAGE(a.ok(), a.status().message());
    auto b = registry::PgStore::Open(conninfo, clock);
    REQUIRE_MESSAGE(b.ok(), b.status().message());
    using registry::WriteTx;
    // The sequencer's step, on a connection of its own, from no leaves: what it
    // gives leaves to, by type.
    {
      auto db = Connect();
      REQUIRE(db->Exec("DELETE FROM log_leaves").ok());
    }
    registry::logtree::Frontier tree;
    auto sequence = [&tree] {
      auto db = Connect();
      registry::Conn conn(std::move(db));
      REQUIRE(conn.db().Exec("BEGIN").ok());
      auto given = registry::VerifiableLog::SequenceNew(conn, 1000000, &tree);
      REQUIRE_MESSAGE(given.ok(), given.status().message());
      REQUIRE(conn.db().Exec("COMMIT").ok());
    };
    auto leaf_of = [](const char* type) {
      auto db = Connect();
      return One(*db, std::string("SELECT COALESCE(MAX(l.leaf), -1) FROM log_leaves l JOIN events "
                                  "e USING (seq) WHERE e.type = '") +
                          type + "'");
    };
    // A's batch begins first (its block of numbers and its revision are the
    // lower), and stays open while B's begins and commits.
    std::promise<void> entered, open;
    auto gate = open.get_future().share();
    std::promise<registry::Reply> a_reply;
    (*a)->Submit(
        [&entered, gate](WriteTx& tx) -> registry::Reply {
          auto seq = tx.Append({"", "", "race_a", tx.now(), "admin", "test", "{}"});
          if (!seq.ok()) return registry::ErrorReply(seq.status());
          auto read = tx.conn().Prepare("SELECT 1");  // the held insert goes first
          if (!read.ok() || !(*read)->Step().ok())
            return registry::ErrorReply(Status::Internal("read"));
          entered.set_value();
          gate.wait();
          return registry::Reply{};
        },
        [&a_reply](registry::Reply r) { a_reply.set_value(std::move(r)); });
    entered.get_future().wait();
    registry::Reply b_reply = (*b)->Run([](WriteTx& tx) -> registry::Reply {
      auto seq = tx.Append({"", "", "race_b", tx.now(), "admin", "test", "{}"});
      return seq.ok() ? registry::Reply{} : registry::ErrorReply(seq.status());
    });
    CHECK(b_reply.status == 200);
    {
      auto db = Connect();
      CHECK(One(*db, "SELECT count(*) FROM events WHERE type = 'race_b'") == 1);
      CHECK(One(*db, "SELECT count(*) FROM events WHERE type = 'race_a'") == 0);
      // B's event is committed, but above the horizon while A's batch is open.
      CHECK(One(*db,
                "SELECT count(*) FROM events WHERE type = 'race_b' "
                "AND tx < pingma_horizon()") == 0);
    }
    sequence();
    CHECK(leaf_of("race_b") == -1);  // not given a leaf: A's might still come before it
    open.set_value();
    CHECK(a_reply.get_future().get().status == 200);
    {
      auto db = Connect();
      CHECK(One(*db,
                "SELECT (SELECT seq FROM events WHERE type = 'race_a') < "
                "(SELECT seq FROM events WHERE type = 'race_b')") == 1);
      CHECK(One(*db,
                "SELECT count(*) FROM events WHERE type IN ('race_a', 'race_b') "
                "AND tx < pingma_horizon()") == 2);
    }
    sequence();
    // A committed last, and comes first: the log's order is the revisions'.
    const std::int64_t leaf_a = leaf_of("race_a"), leaf_b = leaf_of("race_b");
    CHECK(leaf_a >= 0);
    CHECK(leaf_b == leaf_a + 1);
    (*a)->Close();
    (*b)->Close();
  }

  TEST_CASE("PostgreSQL: a result stopped early is drained, and the transaction lives on") {
    auto db = Connect();
    REQUIRE(db->Exec("BEGIN").ok());
    auto st = db->Prepare("SELECT g FROM generate_series(1, 100000) g");
    REQUIRE(st.ok());
    REQUIRE(*(*st)->Step());
    (*st)->Reset();
    CHECK(One(*db, "SELECT 41 + 1") == 42);
    CHECK(db->Exec("COMMIT").ok());
  }
}

}  // namespace
}  // namespace pingma::sql
