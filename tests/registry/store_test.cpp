// The registry's store: the event log's hash chain, the rollback of failed jobs,
// group commit under concurrency, the hooks that keep caches true, the syncers
// that make each batch durable before its replies (and stop acknowledging when
// the disk fails), answers from reads that wait for the sync of what they saw,
// and a second writer on the same file (as `pingma-registry
// token add` is while the service runs).
#include <doctest/doctest.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"
#include "test_store.h"

namespace pingma::registry {
namespace {

Event MakeEvent(const std::string& code, const std::string& body = "{}") {
  return Event{"", code, "test", Instant{1767225600000}, "admin", "root", body};
}

Store::Job Appends(int n, const std::string& code, int status = 201) {
  return [=](WriteTx& tx) -> Reply {
    for (int i = 0; i < n; ++i) {
      auto seq = tx.Append(MakeEvent(code));
      if (!seq.ok()) return ErrorReply(seq.status());
    }
    return Reply{status, {}, {}, {}};
  };
}

/// The first column of the first row `sql` gives, read through the store.
std::int64_t ReadInt(Store& store, const std::string& sql) {
  auto n = store.Read([&sql](Conn& conn) -> Result<std::int64_t> {
    auto st = conn.Prepare(sql);
    if (!st.ok()) return st.status();
    auto row = (*st)->Step();
    if (!row.ok()) return row.status();
    return (*st)->Int(0);
  });
  REQUIRE(n.ok());
  return *n;
}

std::int64_t CountEvents(Store& store) {
  return ReadInt(store, "SELECT COUNT(*) FROM events");
}

void ExecRaw(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  CHECK(sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
}

TEST_CASE("SHA-256 gives the FIPS 180-2 digests, again and again on one thread") {
  auto hex = [](const std::string& raw) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned char c : raw) {
      out += digits[c >> 4];
      out += digits[c & 15];
    }
    return out;
  };
  for (int i = 0; i < 3; ++i) {  // the digest context is reused
    CHECK(hex(Sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(hex(Sha256("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(hex(Sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  }
}

TEST_CASE_FIXTURE(StoreOnTempDb, "an answer built from reads waits for the sync of what they saw") {
  bool at_once = false;
  store->WhenDurable([&] { at_once = true; });
  CHECK(at_once);  // nothing committed that is not durable

  HeldSync held(*store);
  std::promise<Reply> written;
  store->Submit(Appends(1, "C-R"), [&written](Reply r) { written.set_value(std::move(r)); });
  auto written_future = written.get_future();
  held.WaitUntilHeld();

  CHECK(CountEvents(*store) == 1);  // a reader sees the commit...
  std::promise<void> released;
  std::atomic<bool> answered{false};
  store->WhenDurable([&] {
    answered = true;
    released.set_value();
  });
  CHECK_FALSE(answered.load());  // ...and the answer built from it waits
  CHECK(written_future.wait_for(std::chrono::seconds(0)) == std::future_status::timeout);

  held.Release();
  REQUIRE(released.get_future().wait_for(std::chrono::seconds(60)) == std::future_status::ready);
  CHECK(written_future.get().status == 201);
  bool after = false;
  store->WhenDurable([&] { after = true; });
  CHECK(after);  // that commit is durable now: no more waiting
  store->Close();
}

TEST_CASE_FIXTURE(StoreOnTempDb, "appended events form a chain that verifies") {
  CHECK(store->Run(Appends(5, "C1")).status == 201);
  CHECK(CountEvents(*store) == 5);
  store->Close();
  auto verified = VerifyChain(tmp.path);
  REQUIRE(verified.ok());
  CHECK(*verified == "ok: 5 events, chain intact; no signed head yet");
}

TEST_CASE_FIXTURE(StoreOnTempDb, "a failed job leaves no rows and no links behind") {
  CHECK(store->Run(Appends(2, "C1")).status == 201);
  CHECK(store->Run(Appends(3, "C2", 409)).status == 409);  // appends, then fails
  CHECK(CountEvents(*store) == 2);
  CHECK(store->Run(Appends(1, "C3")).status == 201);
  auto ids = store->Read([](Conn& conn) -> Result<std::string> {
    auto st = conn.Prepare("SELECT group_concat(id || ':' || code, ',') FROM events");
    if (!st.ok()) return st.status();
    auto row = (*st)->Step();
    if (!row.ok()) return row.status();
    return (*st)->Text(0);
  });
  REQUIRE(ids.ok());
  // Sequence numbers stay contiguous: the failed job's ev-3..ev-5 were undone.
  CHECK(*ids == "ev-1:C1,ev-2:C1,ev-3:C3");
  store->Close();
  CHECK(VerifyChain(tmp.path).ok());
}

TEST_CASE_FIXTURE(StoreOnTempDb,
                  "an exception in a job is an internal error that changes nothing") {
  Reply r = store->Run([](WriteTx& tx) -> Reply {
    (void)tx.Append(MakeEvent("C1"));
    throw std::runtime_error("boom");
  });
  CHECK(r.status == 500);
  CHECK(r.body["error"]["message"].get<std::string>().find("boom") != std::string::npos);
  CHECK(CountEvents(*store) == 0);
}

TEST_CASE_FIXTURE(StoreOnTempDb, "a nested item that fails is undone; the rest of the job stands") {
  Reply r = store->Run([](WriteTx& tx) -> Reply {
    for (int item = 0; item < 3; ++item) {
      Reply one = tx.Nested([&]() -> Reply {
        (void)tx.Append(MakeEvent("ITEM" + std::to_string(item)));
        return Reply{item == 1 ? 422 : 201, {}, {}, {}};
      });
      CHECK(one.status == (item == 1 ? 422 : 201));
    }
    return Reply{200, {}, {}, {}};
  });
  CHECK(r.status == 200);
  CHECK(CountEvents(*store) == 2);
  store->Close();
  CHECK(VerifyChain(tmp.path).ok());
}

TEST_CASE_FIXTURE(StoreOnTempDb,
                  "counts of one batch are written once a row, without those of undone work") {
  // A table of counters, and a trigger that counts the writes made to it.
  REQUIRE(store
              ->Run([](WriteTx& tx) -> Reply {
                Status s = tx.conn().db().Exec(
                    "CREATE TABLE c(k TEXT PRIMARY KEY, n INTEGER NOT NULL, m INTEGER NOT NULL); "
                    "CREATE TABLE writes(n INTEGER NOT NULL); INSERT INTO writes VALUES(0); "
                    "CREATE TRIGGER c_insert AFTER INSERT ON c BEGIN UPDATE writes SET n = n + 1; "
                    "END; CREATE TRIGGER c_update AFTER UPDATE ON c BEGIN "
                    "UPDATE writes SET n = n + 1; END");
                return s.ok() ? Reply{} : ErrorReply(s);
              })
              .status == 200);
  auto count = [](const std::string& k, std::int64_t n, std::int64_t m) {
    return CountDelta{
        "INSERT INTO c(k, n, m) VALUES($1, $2, $3) ON CONFLICT(k) DO UPDATE SET "
        "n = c.n + excluded.n, m = c.m + excluded.m",
        {k},
        {n, m}};
  };
  // The first job holds the writer until the others are queued: they are one batch.
  std::promise<void> entered, open;
  auto gate = open.get_future().share();
  std::vector<std::future<Reply>> replies;
  auto submit = [&](Store::Job job) {
    auto answer = std::make_shared<std::promise<Reply>>();
    replies.push_back(answer->get_future());
    store->Submit(std::move(job), [answer](Reply r) { answer->set_value(std::move(r)); });
  };
  submit([&entered, gate](WriteTx&) {
    entered.set_value();
    gate.wait();
    return Reply{};
  });
  entered.get_future().wait();
  submit([&](WriteTx& tx) {
    tx.Count(count("a", 1, 1));
    return Reply{};
  });
  submit([&](WriteTx& tx) {
    tx.Count(count("a", 1, 0));
    tx.Count(count("b", 1, 1));
    return Reply{};
  });
  submit([&](WriteTx& tx) {  // fails: its count goes with it
    tx.Count(count("a", 100, 100));
    return Reply{422, {}, {}, {}};
  });
  submit([&](WriteTx& tx) {  // a nested item fails: its count goes, the job's stays
    (void)tx.Nested([&] {
      tx.Count(count("b", 100, 100));
      return Reply{422, {}, {}, {}};
    });
    tx.Count(count("c", 1, 0));
    return Reply{};
  });
  submit([&](WriteTx& tx) {
    tx.Count(count("a", 1, 0));
    return Reply{};
  });
  open.set_value();
  std::vector<int> statuses;
  for (auto& r : replies) statuses.push_back(r.get().status);
  CHECK(statuses == std::vector<int>{200, 200, 200, 422, 200, 200});
  auto read = [&](const std::string& sql) { return ReadInt(*store, sql); };
  CHECK(read("SELECT n * 1000 + m FROM c WHERE k = 'a'") == 3001);
  CHECK(read("SELECT n * 1000 + m FROM c WHERE k = 'b'") == 1001);
  CHECK(read("SELECT n * 1000 + m FROM c WHERE k = 'c'") == 1000);
  CHECK(read("SELECT n FROM writes") == 3);  // a row once, for six counts
}

TEST_CASE_FIXTURE(StoreOnTempDb, "verify names the first event whose content was changed") {
  CHECK(store->Run(Appends(4, "C1")).status == 201);
  store->Close();
  ExecRaw(tmp.path, "UPDATE events SET body = '{\"forged\":true}' WHERE seq = 3");
  auto verified = VerifyChain(tmp.path);
  REQUIRE_FALSE(verified.ok());
  CHECK(verified.status().code() == StatusCode::kCorruption);
  CHECK(verified.status().message().find("#3 (id ev-3") != std::string::npos);
}

TEST_CASE_FIXTURE(StoreOnTempDb, "verify notices a deleted event") {
  CHECK(store->Run(Appends(4, "C1")).status == 201);
  store->Close();
  ExecRaw(tmp.path, "DELETE FROM events WHERE seq = 2");
  auto verified = VerifyChain(tmp.path);
  REQUIRE_FALSE(verified.ok());
  CHECK(verified.status().message().find("event #2 is missing") != std::string::npos);
}

TEST_CASE_FIXTURE(StoreOnTempDb,
                  "concurrent submitters: every job committed once, in one unbroken chain") {
  constexpr int kThreads = 8;
  constexpr int kJobsEach = 200;
  std::vector<std::thread> threads;
  std::atomic<int> created{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int j = 0; j < kJobsEach; ++j) {
        if (store->Run(Appends(1, "T" + std::to_string(t))).status == 201) ++created;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(created == kThreads * kJobsEach);
  CHECK(CountEvents(*store) == kThreads * kJobsEach);
  store->Close();
  CHECK(store->stats().jobs == static_cast<size_t>(kThreads * kJobsEach));
  auto verified = VerifyChain(tmp.path);
  REQUIRE(verified.ok());
  CHECK(*verified == "ok: 1600 events, chain intact; no signed head yet");
}

TEST_CASE_FIXTURE(StoreOnTempDb, "the WAL is checkpointed beside the writer and stays bounded") {
  // Checkpoints every 20 new WAL frames, and the writer's own from 160 on.
  store->set_checkpoint_frames_for_test(20);
  constexpr int kThreads = 8;
  constexpr int kJobsEach = 100;
  constexpr int kEventsPerJob = 20;
  const std::string body = "{\"pad\":\"" + std::string(300, 'x') + "\"}";
  std::vector<std::thread> threads;
  std::atomic<int> created{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int j = 0; j < kJobsEach; ++j) {
        const Reply r = store->Run([&](WriteTx& tx) -> Reply {
          for (int i = 0; i < kEventsPerJob; ++i) {
            auto seq = tx.Append(MakeEvent("W" + std::to_string(t), body));
            if (!seq.ok()) return ErrorReply(seq.status());
          }
          return Reply{201, {}, {}, {}};
        });
        created += r.status == 201;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(created == kThreads * kJobsEach);
  struct stat wal {};
  REQUIRE(stat((tmp.path + "-wal").c_str(), &wal) == 0);
  store->Close();
  // 16,000 events of ~400 bytes: some 1,700 pages of the events table alone, and
  // the WAL grows to 17 MB (4,200 frames) if the writer never checkpoints itself.
  // It holds no more than the writer's limit (160 frames) and one batch (at most 8
  // jobs here, of 20 events: some 40 pages with the index; 300 leaves a margin).
  constexpr long kFrameBytes = 24 + 4096;
  CHECK(wal.st_size <= 32 + 300 * kFrameBytes);
  CHECK(store->stats().checkpoints > 0);
  auto verified = VerifyChain(tmp.path);
  REQUIRE(verified.ok());
  CHECK(*verified == "ok: 16000 events, chain intact; no signed head yet");
}

TEST_CASE_FIXTURE(StoreOnTempDb, "the hooks hear of every event appended and every job undone") {
  std::vector<std::string> appended;
  std::vector<bool> rollbacks;
  store->set_hooks({[&](bool whole_batch) { rollbacks.push_back(whole_batch); },
                    [&](const Event& e) { appended.push_back(e.code + "/" + e.id); }, nullptr});
  CHECK(store->Run(Appends(2, "C1")).status == 201);
  CHECK(rollbacks.empty());
  CHECK(store->Run(Appends(1, "C2", 422)).status == 422);
  store->Close();  // the hooks ran on the writer thread; Close joins it
  CHECK(appended == std::vector<std::string>{"C1/ev-1", "C1/ev-2", "C2/ev-3"});
  CHECK(rollbacks == std::vector<bool>{false});
}

TEST_CASE_FIXTURE(StoreOnTempDb,
                  "every acknowledged batch was synced; one fdatasync may cover several") {
  std::vector<std::thread> threads;
  std::atomic<int> created{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int j = 0; j < 50; ++j) created += store->Run(Appends(1, "S")).status == 201;
    });
  }
  for (auto& t : threads) t.join();
  store->Close();
  const Store::Stats& stats = store->stats();
  CHECK(created == 200);
  CHECK(stats.syncs >= 1);
  CHECK(stats.syncs <= stats.batches);
}

// Simulates a disk that can no longer be synced: the syncer cannot open the WAL
// file anew. Nothing committed after that is acknowledged, and the store refuses
// further writes rather than pretend they are safe.
TEST_CASE_FIXTURE(StoreOnTempDb, "when the WAL cannot be synced, nothing more is acknowledged") {
  REQUIRE(store->Run(Appends(1, "OK")).status == 201);
  const std::string wal = tmp.path + "-wal";
  REQUIRE(rename(wal.c_str(), (tmp.path + "-moved").c_str()) == 0);
  REQUIRE(mkdir(wal.c_str(), 0700) == 0);  // a directory cannot be opened for writing
  const Reply failed = store->Run(Appends(1, "LOST"));
  CHECK(failed.status == 503);
  CHECK(failed.body.dump().find("fdatasync") != std::string::npos);
  const Reply refused = store->Run(Appends(1, "LATER"));
  CHECK(refused.status == 503);
  CHECK(refused.body.dump().find("no more writes") != std::string::npos);
}

// Regression: `token add` appended to the chain from another process while the
// service ran; the service's next write collided with it and every write after
// that failed.
TEST_CASE_FIXTURE(StoreOnTempDb, "a second writer on the same file does not fork the chain") {
  CHECK(store->Run(Appends(2, "A")).status == 201);
  {
    auto cli_store = Store::Open(tmp.path, clock);
    REQUIRE(cli_store.ok());
    CHECK((*cli_store)->Run(Appends(1, "CLI")).status == 201);
  }
  CHECK(store->Run(Appends(2, "A")).status == 201);
  CHECK(CountEvents(*store) == 5);
  store->Close();
  auto verified = VerifyChain(tmp.path);
  REQUIRE(verified.ok());
  CHECK(*verified == "ok: 5 events, chain intact; no signed head yet");
}

TEST_CASE("event ids made from sequence numbers parse back, and nothing else does") {
  CHECK(EventId(42) == "ev-42");
  CHECK(SeqOfEventId("ev-42") == std::optional<std::int64_t>(42));
  // 18 digits is the most accepted: 19 nines would overflow a signed 64-bit number.
  CHECK(SeqOfEventId("ev-999999999999999999") == std::optional<std::int64_t>(999999999999999999));
  CHECK_FALSE(SeqOfEventId("ev-9999999999999999999").has_value());
  for (const char* bad :
       {"", "ev-", "ev-4x", "chk_42", "EV-42", "ev--1", "ev-99999999999999999999"}) {
    CAPTURE(bad);
    CHECK_FALSE(SeqOfEventId(bad).has_value());
  }
}

}  // namespace
}  // namespace pingma::registry
