// The filling position's state machine over a fake scale and decider, with the real
// journal (SQLite in a temporary folder). The fake scale refuses to fill unless the
// interlock was unlocked, and logs every interlock write and command, so each test
// can prove what the position did to the valve, and in which order.
#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "journal.h"
#include "position.h"

namespace pingma::station {
namespace {

using nlohmann::json;

class FakeScale final : public Scale {
 public:
  // What the test sets.
  double gross = 16.9;  // YSP35.5 tare 16.4 with 0.5 kg residual
  bool present = true;
  double flow_per_read = 0.7;
  double overshoot = 0.02;
  bool fail_connect = false;
  int lose_after_reads = -1;  // the connection drops at this many reads into a fill
  bool freeze_heartbeat = false;
  bool bad_reading_in_fill = false;
  std::function<void()> on_lock;  // runs when the interlock is written locked

  // What the position did.
  std::vector<std::string> log;  // "connect", "lock", "unlock", "cutoff 30.9", "start", ...
  bool valve_ever_opened = false;
  std::vector<ScaleSignals> signals_written;  // every WriteSignals while connected, in order
  std::vector<std::size_t> signals_at;        // log.size() at each of them: what came before

  Status Connect() override {
    if (fail_connect) return Status::Unavailable("connection refused");
    connected_ = true;
    log.push_back("connect");
    return SetInterlock(false);
  }
  void Disconnect() override { connected_ = false; }
  bool connected() const override { return connected_; }
  Result<ScaleReading> Read() override {
    if (!connected_) return Status::Unavailable("not connected");
    ++beat_;
    if (filling_) {
      ++reads_in_fill_;
      if (lose_after_reads >= 0 && reads_in_fill_ > lose_after_reads) {
        connected_ = false;
        lose_after_reads = -1;
        return Status::Unavailable("connection reset by peer");
      }
      if (bad_reading_in_fill) return Status::Invalid("a NaN weight is a fault, not a reading");
      gross = std::min(cutoff_ + overshoot, gross + flow_per_read);
      if (gross >= cutoff_) {
        gross = cutoff_ + overshoot;
        filling_ = false;
        done_ = true;
        unlocked_ = false;  // relocks itself after the fill
      }
    }
    ScaleReading r;
    r.gross_kg = gross;
    r.present = present;
    r.stable = !filling_;
    r.valve_open = filling_;
    r.fill_done = done_;
    r.heartbeat = freeze_heartbeat && filling_ ? 7u : beat_;
    return r;
  }
  Status WriteCutoff(double g) override {
    cutoff_ = g;
    log.push_back("cutoff " + std::to_string(std::lround(g * 1000)));
    return Status::Ok();
  }
  Status SetInterlock(bool unlocked) override {
    if (!connected_) return Status::Unavailable("not connected");
    unlocked_ = unlocked;
    log.push_back(unlocked ? "unlock" : "lock");
    if (!unlocked && on_lock) on_lock();
    return Status::Ok();
  }
  Status Send(ScaleCommand c) override {
    if (c == ScaleCommand::kStart) {
      log.push_back("start");
      if (!unlocked_) return Status::Invalid("start refused: interlock locked");
      filling_ = true;
      done_ = false;
      valve_ever_opened = true;
      reads_in_fill_ = 0;
    } else if (c == ScaleCommand::kStop) {
      log.push_back("stop");
      filling_ = false;
    }
    return Status::Ok();
  }
  bool has_signals() const override { return true; }
  Status WriteSignals(const ScaleSignals& signals) override {
    if (!connected_) return Status::Unavailable("not connected");
    signals_written.push_back(signals);
    signals_at.push_back(log.size());
    return Status::Ok();
  }
  std::string Describe() const override { return "fake"; }

 private:
  bool connected_ = false, unlocked_ = false, filling_ = false, done_ = false;
  double cutoff_ = 0;
  int reads_in_fill_ = 0;
  std::uint32_t beat_ = 0;
};

class FakeDecider final : public Decider {
 public:
  std::optional<CheckAnswer> answer;  // nullopt: no decision (an error)
  std::vector<CheckRequest> requests;
  Result<CheckAnswer> Decide(const CheckRequest& r) override {
    requests.push_back(r);
    if (!answer) return Status::PermissionDenied("this token is for station ST-9");
    return *answer;
  }
};

class Events final : public EventSink {
 public:
  void Emit(const json& e) override {
    if (on_emit) on_emit(e);  // set before the position starts
    std::lock_guard<std::mutex> lock(mu_);
    events.push_back(e);
  }
  void Say(const std::string&, const std::string& text) override {
    std::lock_guard<std::mutex> lock(mu_);
    said.push_back(text);
  }
  std::vector<json> Of(const std::string& kind) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<json> out;
    for (const json& e : events) {
      if (e["event"] == kind) out.push_back(e);
    }
    return out;
  }
  std::vector<json> events;
  std::vector<std::string> said;
  std::function<void(const json&)> on_emit;
  std::mutex mu_;
};

CheckAnswer Allow() {
  CheckAnswer a;
  a.check_id = "ev-42";
  a.allowed = true;
  a.cylinder = CheckedCylinder{"HB0100000123", "YSP35.5", "CO-A", "2027-01-31", "active"};
  a.fill = FillLimits{16.4, 14.1, 14.9, 14.5};
  return a;
}

CheckAnswer Block() {
  CheckAnswer a;
  a.check_id = "ev-43";
  a.allowed = false;
  a.reasons = {{"INSPECTION_OVERDUE", "检验超期 / Inspection overdue"}};
  a.cylinder = CheckedCylinder{"HB0100000123", "YSP35.5", "CO-A", "2020-01-31", "active"};
  return a;
}

// A position on its own thread, with a fresh journal.
struct Line {
  FakeScale scale;
  FakeDecider decider;
  Events events;
  SystemClock clock;
  std::string dir;
  std::unique_ptr<Journal> journal;
  std::unique_ptr<Position> position;
  std::atomic<bool> stop{false};
  std::thread thread;

  Line() {
    static int n = 0;
    dir = (std::filesystem::temp_directory_path() /
           ("pingma-position-" + std::to_string(getpid()) + "-" + std::to_string(++n)))
              .string();
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    auto j = Journal::Open(dir + "/journal.db");
    REQUIRE_MESSAGE(j.ok(), j.status().ToString());
    journal = std::move(*j);
  }
  void Start() {
    PositionOptions o;
    o.station_id = "ST-01";
    o.position_id = "P1";
    o.scale_id = "S1";
    o.operator_id = "OP-7";
    o.poll_interval = std::chrono::milliseconds(1);
    o.idle_poll_interval = std::chrono::milliseconds(20);
    o.stable_wait = std::chrono::milliseconds(300);
    o.heartbeat_timeout = std::chrono::milliseconds(50);
    o.reconnect_min = std::chrono::milliseconds(1);
    o.reconnect_max = std::chrono::milliseconds(5);
    position = std::make_unique<Position>(o, scale, decider, *journal, events, clock);
    REQUIRE(position->RecoverUnfinished().ok());
    thread = std::thread([this] { position->Run(stop); });
  }
  // Waits (at most 10 s, so a broken position cannot hang the suite) until `pred`.
  template <typename Pred>
  bool WaitUntil(Pred pred) {
    for (int i = 0; i < 10000 && !pred(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return pred();
  }
  bool WaitDone(std::int64_t fills, std::int64_t blocks) {
    return WaitUntil([&] {
      const PositionSnapshot s = position->Snapshot();
      return s.fills >= fills && s.blocks >= blocks && (s.state == "idle" || s.state == "blocked");
    });
  }
  ~Line() {
    stop = true;
    if (position) position->Wake();
    if (thread.joinable()) thread.join();
    journal.reset();
    std::filesystem::remove_all(dir);
  }
};

json OnlyPending(Journal& journal) {
  auto pending = journal.Pending(10);
  REQUIRE(pending.ok());
  REQUIRE(pending->size() == 1);
  return json::parse(pending->front().record_json);
}

bool Unlocked(const FakeScale& s) {
  return std::find(s.log.begin(), s.log.end(), "unlock") != s.log.end();
}

TEST_CASE("a blocked cylinder: the interlock is never written unlocked") {
  Line line;
  line.decider.answer = Block();
  line.Start();
  line.position->Submit("https://pingma.example/c/HB0100000123");
  REQUIRE(line.WaitDone(0, 1));
  CHECK_FALSE(Unlocked(line.scale));
  CHECK_FALSE(line.scale.valve_ever_opened);
  CHECK(line.journal->Pending(10)->empty());
  REQUIRE(line.decider.requests.size() == 1);
  CHECK(line.decider.requests[0].empty_gross_kg == doctest::Approx(16.9));
  CHECK(line.decider.requests[0].operator_id == "OP-7");
  auto decisions = line.events.Of("decision");
  REQUIRE(decisions.size() == 1);
  CHECK(decisions[0]["decision"] == "block");
  CHECK(decisions[0]["reasons"][0]["code"] == "INSPECTION_OVERDUE");
}

TEST_CASE("no decision at all (the registry refused the request): the scale stays locked") {
  Line line;
  line.Start();
  line.position->Submit("HB0100000123");
  REQUIRE(line.WaitUntil([&] { return !line.events.Of("decision").empty(); }));
  CHECK(line.events.Of("decision")[0]["decision"] == "error");
  CHECK_FALSE(Unlocked(line.scale));
}

TEST_CASE("an allowed fill: cutoff, unlock, start, record, then lock") {
  Line line;
  line.decider.answer = Allow();
  bool recorded_before_lock = false;
  line.scale.on_lock = [&] {
    if (line.scale.valve_ever_opened) recorded_before_lock = line.journal->Stats()->pending == 1;
  };
  line.Start();
  line.position->Submit("HB0100000123");
  REQUIRE(line.WaitDone(1, 0));
  // Connect locks first; the fill's writes follow in this order.
  const std::vector<std::string> expect = {"connect", "lock",  "cutoff 30900",
                                           "unlock",  "start", "lock"};
  CHECK(line.scale.log == expect);
  CHECK(recorded_before_lock);
  const json rec = OnlyPending(*line.journal);
  CHECK(rec["result"] == "ok");
  CHECK(rec["check_id"] == "ev-42");
  CHECK(rec["code"] == "HB0100000123");
  CHECK(rec["scale_id"] == "S1");
  CHECK(rec["tare_kg"].get<double>() == doctest::Approx(16.4));
  CHECK(rec["gross_before_kg"].get<double>() == doctest::Approx(16.9));
  CHECK(rec["residual_kg"].get<double>() == doctest::Approx(0.5));
  CHECK(rec["gross_after_kg"].get<double>() == doctest::Approx(30.92));
  CHECK(rec["net_kg"].get<double>() == doctest::Approx(14.52));
  CHECK(rec["post_checks"]["reweigh"] == "pass");
  CHECK_FALSE(rec.contains("limits"));
  CHECK(line.journal->Unfinished()->empty());
}

TEST_CASE("the weight decides the result at the model's limits") {
  struct Case {
    double overshoot;
    const char* result;
  };
  // cutoff = tare 16.4 + target 14.5; max 14.9, min 14.1 (net = gross - tare).
  const Case cases[] = {{0.4, "ok"}, {0.401, "overfill"}, {0.0, "ok"}};
  for (const Case& c : cases) {
    CAPTURE(c.overshoot);
    Line line;
    line.decider.answer = Allow();
    line.scale.overshoot = c.overshoot;
    line.Start();
    line.position->Submit("HB0100000123");
    REQUIRE(line.WaitDone(1, 0));
    CHECK(OnlyPending(*line.journal)["result"] == c.result);
  }
  Line under;
  CheckAnswer a = Allow();
  a.fill->target_kg = 14.0;  // a target under the minimum ends as an underfill
  under.decider.answer = a;
  under.scale.overshoot = 0.099;
  under.Start();
  under.position->Submit("HB0100000123");
  REQUIRE(under.WaitDone(1, 0));
  CHECK(OnlyPending(*under.journal)["result"] == "underfill");
}

TEST_CASE("the scale lost mid-fill: recorded interrupted, and locked first on reconnect") {
  Line line;
  line.decider.answer = Allow();
  line.scale.lose_after_reads = 3;
  line.Start();
  line.position->Submit("HB0100000123");
  REQUIRE(line.WaitDone(1, 0));
  const json rec = OnlyPending(*line.journal);
  CHECK(rec["result"] == "interrupted");
  CHECK(rec["post_checks"]["reweigh"] == "not_done");
  CHECK(rec["interruption"].get<std::string>().find("lost mid-fill") != std::string::npos);
  // After "start": the drop, then a reconnect whose first write is the lock.
  auto start = std::find(line.scale.log.begin(), line.scale.log.end(), "start");
  REQUIRE(start != line.scale.log.end());
  auto reconnect = std::find(start, line.scale.log.end(), "connect");
  REQUIRE(reconnect != line.scale.log.end());
  REQUIRE(reconnect + 1 != line.scale.log.end());
  CHECK(*(reconnect + 1) == "lock");
}

TEST_CASE("a frozen indicator or a bad reading stops the fill") {
  for (int variant = 0; variant < 2; ++variant) {
    CAPTURE(variant);
    Line line;
    line.decider.answer = Allow();
    line.scale.flow_per_read = 0.0001;  // slow enough for the heartbeat to be judged
    if (variant == 0) line.scale.freeze_heartbeat = true;
    if (variant == 1) line.scale.bad_reading_in_fill = true;
    line.Start();
    line.position->Submit("HB0100000123");
    REQUIRE(line.WaitDone(1, 0));
    CHECK(OnlyPending(*line.journal)["result"] == "interrupted");
    CHECK(std::find(line.scale.log.begin(), line.scale.log.end(), "stop") != line.scale.log.end());
    CHECK(line.scale.log.back() == "lock");
  }
}

TEST_CASE("nothing is checked without a cylinder on the scale or a stable reading") {
  Line line;
  line.decider.answer = Allow();
  line.scale.present = false;
  line.Start();
  line.position->Submit("HB0100000123");
  REQUIRE(line.WaitUntil([&] { return !line.events.Of("scan_refused").empty(); }));
  CHECK(line.decider.requests.empty());
  CHECK_FALSE(Unlocked(line.scale));

  Line down;
  down.decider.answer = Allow();
  down.scale.fail_connect = true;
  down.Start();
  down.position->Submit("HB0100000123");
  REQUIRE(down.WaitUntil([&] { return !down.events.Of("scan_refused").empty(); }));
  CHECK(down.decider.requests.empty());
}

TEST_CASE("a badge scan changes the operator of the position") {
  Line line;
  line.decider.answer = Block();
  line.Start();
  line.position->Submit("OP:OP-9");
  line.position->Submit("HB0100000123");
  REQUIRE(line.WaitDone(0, 1));
  CHECK(line.position->Snapshot().operator_id == "OP-9");
  CHECK(line.decider.requests.at(0).operator_id == "OP-9");
  line.position->Submit("OP:");
  REQUIRE(line.WaitUntil([&] { return !line.events.Of("badge_refused").empty(); }));
  CHECK(line.position->Snapshot().operator_id == "OP-9");
}

TEST_CASE("an offline allow carries the station's decision instead of a check id") {
  Line line;
  CheckAnswer a = Allow();
  a.offline = true;
  a.check_id = "";
  a.json = R"({"decision":"allow","reasons":[]})";
  line.decider.answer = a;
  line.Start();
  line.position->Submit("HB0100000123");
  REQUIRE(line.WaitDone(1, 0));
  const json rec = OnlyPending(*line.journal);
  CHECK(rec["offline"] == true);
  CHECK(rec["offline_decision"]["decision"] == "allow");
  CHECK_FALSE(rec.contains("check_id"));
}

TEST_CASE("an offline decision is journalled as a check before the operator sees it") {
  Line line;
  CheckAnswer a = Block();
  a.offline = true;
  a.check_id = "";
  a.json = R"({"decision":"block","reasons":["INSPECTION_OVERDUE"],)"
           R"("decided_at":"2026-12-06T08:00:00.000Z","replica_synced_at":null})";
  line.decider.answer = a;
  std::atomic<bool> journalled_first{false};
  line.events.on_emit = [&](const json& e) {
    if (e["event"] == "decision") journalled_first = line.journal->Stats()->checks_pending == 1;
  };
  line.Start();
  line.position->Submit("HB0100000123");
  REQUIRE(line.WaitDone(0, 1));
  CHECK(journalled_first);
  auto checks = line.journal->Pending(10, Outbox::kChecks);
  REQUIRE(checks->size() == 1);
  const json rec = json::parse((*checks)[0].record_json);
  CHECK(rec["check_id"] == (*checks)[0].event_id);
  CHECK(rec["station_id"] == "ST-01");
  CHECK(rec["operator_id"] == "OP-7");
  CHECK(rec["scan"] == "HB0100000123");
  CHECK(rec["at"] == "2026-12-06T08:00:00.000Z");
  CHECK(rec["decision"] == "block");
  CHECK(rec["reasons"] == json::array({"INSPECTION_OVERDUE"}));
  CHECK(rec["replica_synced_at"].is_null());
  CHECK(rec["empty_gross_kg"].get<double>() == doctest::Approx(16.9));
  // The decision the operator sees carries the same id.
  CHECK(line.events.Of("decision")[0]["check_id"] == rec["check_id"]);
  // An online decision journals nothing.
  line.decider.answer = Block();
  line.position->Submit("HB0100000123");
  REQUIRE(line.WaitDone(0, 2));
  CHECK(line.journal->Pending(10, Outbox::kChecks)->size() == 1);
}

TEST_CASE("a block: red and the buzzer after it, never green, until acknowledged") {
  Line line;
  line.decider.answer = Block();
  line.Start();
  line.position->Submit("HB0100000123");
  REQUIRE(line.WaitDone(0, 1));
  REQUIRE(line.WaitUntil([&] {
    return !line.scale.signals_written.empty() && line.scale.signals_written.back().buzzer;
  }));
  const PositionSnapshot blocked = line.position->Snapshot();
  CHECK(blocked.state == "blocked");
  CHECK(blocked.alarm == "blocked");
  const ScaleSignals alarm = line.scale.signals_written.back();
  CHECK(alarm.red);
  CHECK(alarm.message == ScaleMessage::kBlocked);
  for (const ScaleSignals& s : line.scale.signals_written) CHECK_FALSE(s.green);
  CHECK_FALSE(Unlocked(line.scale));

  line.position->Acknowledge();
  REQUIRE(line.WaitUntil([&] { return !line.scale.signals_written.back().buzzer; }));
  CHECK_FALSE(line.scale.signals_written.back().red);
  CHECK(line.scale.signals_written.back().message == ScaleMessage::kIdle);
  CHECK(line.position->Snapshot().state == "idle");
  CHECK(line.position->Snapshot().alarm.empty());
  CHECK(line.events.Of("acknowledged").size() == 1);
}

TEST_CASE("the next scan ends a block's alarm") {
  Line line;
  line.decider.answer = Block();
  line.Start();
  line.position->Submit("HB0100000123");
  REQUIRE(line.WaitUntil([&] { return line.position->Snapshot().alarm == "blocked"; }));
  line.decider.answer = Allow();
  line.position->Submit("HB0100000123");
  REQUIRE(line.WaitDone(1, 1));
  CHECK(line.position->Snapshot().alarm.empty());
  CHECK_FALSE(line.scale.signals_written.back().buzzer);
}

TEST_CASE("an allowed fill: green only once the interlock is unlocked, off once it is locked") {
  Line line;
  line.decider.answer = Allow();
  line.Start();
  line.position->Submit("HB0100000123");
  REQUIRE(line.WaitDone(1, 0));
  REQUIRE(line.WaitUntil([&] { return !line.scale.signals_written.back().green; }));
  const auto& log = line.scale.log;
  const auto unlock = std::find(log.begin(), log.end(), "unlock") - log.begin();
  const auto relock = std::find(log.begin() + unlock, log.end(), "lock") - log.begin();
  bool seen_green = false;
  for (size_t i = 0; i < line.scale.signals_written.size(); ++i) {
    const ScaleSignals& s = line.scale.signals_written[i];
    if (s.green) {
      seen_green = true;
      CHECK(line.scale.signals_at[i] > static_cast<size_t>(unlock));  // after the unlock
      CHECK(line.scale.signals_at[i] <= static_cast<size_t>(relock));
      CHECK(s.message == ScaleMessage::kFilling);
    }
  }
  CHECK(seen_green);
  // Written off only after the relock.
  CHECK(line.scale.signals_at.back() > static_cast<size_t>(relock));
}

TEST_CASE("an overfill holds the cylinder: the decant alarm until acknowledged") {
  Line line;
  line.decider.answer = Allow();
  line.scale.overshoot = 0.8;  // 30.9 cutoff + 0.8: net 15.3 > 14.9
  line.Start();
  line.position->Submit("HB0100000123");
  REQUIRE(line.WaitDone(1, 0));
  REQUIRE(line.WaitUntil([&] { return line.position->Snapshot().alarm == "decant"; }));
  REQUIRE(line.WaitUntil([&] { return line.scale.signals_written.back().buzzer; }));
  CHECK(line.scale.signals_written.back().message == ScaleMessage::kHoldForDecant);
  line.position->Acknowledge();
  REQUIRE(line.WaitUntil([&] { return !line.scale.signals_written.back().buzzer; }));
}

TEST_CASE("offline: amber, with the offline message; back online: off") {
  Line line;
  line.decider.answer = Block();
  line.Start();
  line.position->SetOnline(false);
  REQUIRE(line.WaitUntil([&] {
    return !line.scale.signals_written.empty() && line.scale.signals_written.back().amber;
  }));
  CHECK(line.scale.signals_written.back().message == ScaleMessage::kOffline);
  line.position->SetOnline(true);
  REQUIRE(line.WaitUntil([&] { return !line.scale.signals_written.back().amber; }));
}

TEST_CASE("SignalsFor: one row per state") {
  struct Row {
    const char *state, *alarm, *fault;
    bool online;
    bool green, amber, red, buzzer;
    ScaleMessage message;
  };
  const Row rows[] = {
      {"idle", "", "", true, false, false, false, false, ScaleMessage::kIdle},
      {"idle", "", "", false, false, true, false, false, ScaleMessage::kOffline},
      {"filling", "", "", true, true, false, false, false, ScaleMessage::kFilling},
      {"filling", "", "", false, true, true, false, false, ScaleMessage::kFilling},
      {"recording", "", "", true, false, false, false, false, ScaleMessage::kIdle},
      {"blocked", "blocked", "", true, false, false, true, true, ScaleMessage::kBlocked},
      {"blocked", "blocked", "", false, false, true, true, true, ScaleMessage::kBlocked},
      {"idle", "decant", "", true, false, false, true, true, ScaleMessage::kHoldForDecant},
      {"idle", "", "frozen", true, false, false, true, false, ScaleMessage::kFault},
      {"idle", "blocked", "frozen", true, false, false, true, true, ScaleMessage::kBlocked},
      {"checking", "", "", true, false, false, false, false, ScaleMessage::kIdle},
  };
  for (const Row& r : rows) {
    CAPTURE(r.state);
    CAPTURE(r.alarm);
    CAPTURE(r.fault);
    CAPTURE(r.online);
    const ScaleSignals s = SignalsFor(r.state, r.alarm, r.fault, r.online);
    CHECK(s.green == r.green);
    CHECK(s.amber == r.amber);
    CHECK(s.red == r.red);
    CHECK(s.buzzer == r.buzzer);
    CHECK(s.message == r.message);
  }
}

TEST_CASE("a fill begun before a crash is recorded interrupted at start, with the weight now") {
  Line line;
  json begun = {{"event_id", "6f1c2a9e-3b4d-4e5f-8a7b-0c1d2e3f4a5b"},
                {"check_id", "ev-42"},
                {"code", "HB0100000123"},
                {"station_id", "ST-01"},
                {"operator_id", "OP-7"},
                {"scale_id", "S1"},
                {"started_at", "2026-11-29T08:00:00.000Z"},
                {"tare_kg", 16.4},
                {"gross_before_kg", 16.9},
                {"residual_kg", 0.5},
                {"limits", {{"min_kg", 14.1}, {"max_kg", 14.9}}}};
  REQUIRE(line.journal->Begin({begun["event_id"], "P1", begun.dump()}).ok());
  line.scale.gross = 25.3;  // the indicator went on to part of the fill
  line.Start();
  const json rec = OnlyPending(*line.journal);
  CHECK(rec["event_id"] == begun["event_id"]);
  CHECK(rec["result"] == "interrupted");
  CHECK(rec["gross_after_kg"].get<double>() == doctest::Approx(25.3));
  CHECK(rec["net_kg"].get<double>() == doctest::Approx(8.9));
  CHECK(line.scale.log.at(0) == "connect");
  CHECK(line.scale.log.at(1) == "lock");
  CHECK(line.journal->Unfinished()->empty());
}

}  // namespace
}  // namespace pingma::station
