// pingma-scale-sim's physics (tools/scale_sim/scale_model.h), driven step by step in
// model time: no sockets, no clock.
#include "scale_model.h"

#include <array>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <doctest/doctest.h>

namespace {

using pingma::scalesim::Micros;
using pingma::scalesim::ScaleConfig;
using pingma::scalesim::ScaleModel;
using pingma::scalesim::WriteOutcome;
namespace reg = pingma::scalesim;

constexpr Micros Ms(long long v) {
  return Micros(v * 1000);
}

std::vector<std::uint16_t> Float(float v) {
  const auto r = ScaleModel::FloatToRegisters(v);
  return {r[0], r[1]};
}

ScaleConfig Quiet(double flow_kg_s = 5) {
  ScaleConfig c;
  c.flow_kg_s = flow_kg_s;
  c.noise_kg = 0;  // exact readings: the noise has its own case
  return c;
}

/// A model and its time, moved in ticks the way the program's 50 Hz loop moves it.
struct Rig {
  explicit Rig(ScaleConfig c = Quiet()) : m(c, Micros(0)) {}

  void Run(Micros d, Micros tick = Ms(20)) {
    const Micros end = t + d;
    while (t < end) {
      t = std::min(t + tick, end);
      m.Advance(t);
      max_open_gross =
          std::max(max_open_gross, (m.status() & reg::kValveOpen) ? m.gross_kg() : max_open_gross);
    }
  }
  /// Runs until `bit` is set in the status register; false after `limit`.
  bool RunUntil(std::uint16_t bit, Micros limit = Ms(600'000), Micros tick = Ms(20)) {
    const Micros end = t + limit;
    while (t < end) {
      if (m.status() & bit) return true;
      Run(tick, tick);
    }
    return (m.status() & bit) != 0;
  }
  WriteOutcome Write(int start, std::vector<std::uint16_t> values) {
    return m.Write(start, values, t, "test:1", "2025-01-01T00:00:00.000Z");
  }
  WriteOutcome Cutoff(float kg) { return Write(reg::kCutoffHi, Float(kg)); }
  WriteOutcome Interlock(std::uint16_t v) { return Write(reg::kInterlock, {v}); }
  WriteOutcome Command(std::uint16_t v) { return Write(reg::kCommand, {v}); }
  float RegisterGross() const {
    const auto r = m.Registers();
    return ScaleModel::RegistersToFloat(r[reg::kGrossHi], r[reg::kGrossLo]);
  }

  ScaleModel m;
  Micros t{0};
  double max_open_gross = 0;
};

}  // namespace

TEST_CASE("float32 is two registers, high word first") {
  CHECK(Float(1.0f) == std::vector<std::uint16_t>{0x3F80, 0x0000});
  CHECK(Float(-2.5f) == std::vector<std::uint16_t>{0xC020, 0x0000});
  CHECK(ScaleModel::RegistersToFloat(0x41F2, 0x6666) == doctest::Approx(30.3f));
  CHECK(std::isnan(ScaleModel::RegistersToFloat(0x7FC0, 0x0000)));
}

TEST_CASE("start is refused unless every condition holds") {
  struct Row {
    std::string name;
    std::function<void(Rig&)> setup;
    const char* reason;  // nullptr: the start is accepted
  };
  const std::vector<Row> rows = {
      {"all conditions hold", [](Rig&) {}, nullptr},
      {"interlock locked", [](Rig& r) { r.Interlock(0); }, "interlock is locked"},
      {"no cylinder", [](Rig& r) { (void)r.m.Remove(r.t); }, "no cylinder"},
      {"cutoff equal to gross", [](Rig& r) { r.Cutoff(20.0f); }, "not above the gross"},
      {"cutoff below gross", [](Rig& r) { r.Cutoff(10.0f); }, "not above the gross"},
      {"indicator fault", [](Rig& r) { (void)r.m.SetFaultCode(7, r.t); }, "fault 7"},
      {"overload",
       [](Rig& r) {
         (void)r.m.Remove(r.t);
         (void)r.m.Place(100, 60, r.t);
       },
       "overload"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.name);
    Rig r;
    REQUIRE(r.m.Place(15.0, 5.0, r.t) == "");
    REQUIRE(r.Cutoff(34.5f) == WriteOutcome::kOk);
    REQUIRE(r.Interlock(1) == WriteOutcome::kOk);
    r.Run(Ms(600));
    row.setup(r);
    const double content = r.m.content_kg();
    CHECK(r.Command(reg::kStart) == WriteOutcome::kOk);  // a refused start is no Modbus error
    CHECK(r.m.Registers()[reg::kCommand] == 0);
    r.Run(Ms(1000));
    if (row.reason == nullptr) {
      CHECK((r.m.status() & reg::kValveOpen) != 0);
      CHECK(r.m.refused_starts() == 0);
      CHECK(r.m.gross_kg() > 20.0);
    } else {
      CHECK((r.m.status() & reg::kValveOpen) == 0);
      CHECK(r.m.refused_starts() == 1);
      CHECK(r.m.last_refusal().find(row.reason) != std::string::npos);
      CHECK(r.m.content_kg() == doctest::Approx(content));
    }
  }
}

TEST_CASE("a fill: valve shuts at the cutoff, the overshoot lands, done, interlock relocked") {
  struct Row {
    double flow;
    double overshoot;
    Micros tick;
  };
  const std::vector<Row> rows = {
      {5, 0.02, Ms(20)}, {0.5, 0.02, Ms(20)}, {5, 0.5, Ms(20)},
      {5, 0.0, Ms(20)},  {5, 0.02, Ms(1000)}, {50, 0.02, Ms(7)},
  };
  for (const Row& row : rows) {
    CAPTURE(row.flow);
    CAPTURE(row.overshoot);
    CAPTURE(row.tick.count());
    ScaleConfig c = Quiet(row.flow);
    c.overshoot_kg = row.overshoot;
    Rig r(c);
    REQUIRE(r.m.Place(15.6, 0.4, r.t) == "");  // a YSP35.5 with its residual
    REQUIRE(r.Cutoff(30.5f) == WriteOutcome::kOk);
    REQUIRE(r.Interlock(1) == WriteOutcome::kOk);
    REQUIRE(r.Command(reg::kStart) == WriteOutcome::kOk);
    CHECK((r.m.status() & reg::kValveOpen) != 0);
    CHECK((r.m.status() & reg::kStable) == 0);
    r.Run(Ms(100), Ms(100));
    CHECK(r.m.gross_kg() == doctest::Approx(16.0));  // the valve's latency: no gas yet

    REQUIRE(r.RunUntil(reg::kFillDone, Ms(600'000), row.tick));
    CHECK(r.max_open_gross <= 30.5 + 1e-9);  // never over the cutoff with the valve open
    CHECK(r.m.gross_kg() == doctest::Approx(30.5 + row.overshoot).epsilon(1e-6));
    CHECK(r.RegisterGross() == doctest::Approx(30.5 + row.overshoot).epsilon(1e-6));
    const auto regs = r.m.Registers();
    CHECK((regs[reg::kStatus] & reg::kStable) != 0);
    CHECK((regs[reg::kStatus] & reg::kValveOpen) == 0);
    CHECK((regs[reg::kStatus] & reg::kPresent) != 0);
    CHECK(regs[reg::kInterlock] == 0);
    CHECK(r.m.fills() == 1);

    // The unlock was for one fill: a second start is refused.
    REQUIRE(r.Cutoff(31.0f) == WriteOutcome::kOk);
    REQUIRE(r.Command(reg::kStart) == WriteOutcome::kOk);
    CHECK((r.m.status() & reg::kValveOpen) == 0);
    CHECK(r.m.refused_starts() == 1);
    CHECK((r.m.status() & reg::kFillDone) != 0);  // still showing the last fill
  }
}

TEST_CASE("one write of command and interlock unlocks, then starts") {
  Rig r;
  REQUIRE(r.m.Place(15, 0, r.t) == "");
  REQUIRE(r.Cutoff(29.0f) == WriteOutcome::kOk);
  // Registers 5-6 in one write: the interlock is applied before the command.
  CHECK(r.Write(reg::kCommand, {reg::kStart, 1}) == WriteOutcome::kOk);
  CHECK((r.m.status() & reg::kValveOpen) != 0);
  CHECK(r.m.refused_starts() == 0);
}

TEST_CASE("ending a fill early: stop, lock, remove, fault") {
  struct Row {
    std::string name;
    std::function<void(Rig&)> end;
    bool present_after;
  };
  const std::vector<Row> rows = {
      {"stop", [](Rig& r) { CHECK(r.Command(reg::kStop) == WriteOutcome::kOk); }, true},
      {"interlock locked", [](Rig& r) { CHECK(r.Interlock(0) == WriteOutcome::kOk); }, true},
      {"cylinder removed", [](Rig& r) { CHECK(r.m.Remove(r.t) == ""); }, false},
      {"indicator fault", [](Rig& r) { CHECK(r.m.SetFaultCode(3, r.t) == ""); }, true},
  };
  for (const Row& row : rows) {
    CAPTURE(row.name);
    Rig r;
    REQUIRE(r.m.Place(15, 0, r.t) == "");
    REQUIRE(r.Cutoff(40.0f) == WriteOutcome::kOk);
    REQUIRE(r.Interlock(1) == WriteOutcome::kOk);
    REQUIRE(r.Command(reg::kStart) == WriteOutcome::kOk);
    r.Run(Ms(1200));  // 0.2 s latency, then 1 s at 5 kg/s
    REQUIRE(r.m.content_kg() == doctest::Approx(5.0));
    row.end(r);
    r.Run(Ms(20));
    const double content = r.m.content_kg();
    r.Run(Ms(3000));
    CHECK((r.m.status() & reg::kValveOpen) == 0);
    CHECK(r.m.content_kg() == doctest::Approx(content));  // no overshoot: the valve shut at once
    CHECK((r.m.status() & reg::kFillDone) == 0);
    CHECK(r.m.interlock() == 0);
    CHECK(r.m.aborted_fills() == 1);
    CHECK(r.m.fills() == 0);
    CHECK(r.m.present() == row.present_after);
  }
}

TEST_CASE("writes: read-only and missing registers, half floats, bad values") {
  const auto nan = Float(std::nanf(""));
  const auto over = Float(150.5f);
  const auto full = Float(150.0f);
  const auto negative = Float(-0.1f);
  struct Row {
    int start;
    std::vector<std::uint16_t> values;
    WriteOutcome outcome;
  };
  const std::vector<Row> rows = {
      {0, {0}, WriteOutcome::kIllegalDataAddress},
      {1, {0}, WriteOutcome::kIllegalDataAddress},
      {0, {0, 0}, WriteOutcome::kIllegalDataAddress},
      {4, {0}, WriteOutcome::kIllegalDataAddress},
      {7, {0}, WriteOutcome::kIllegalDataAddress},
      {8, {0}, WriteOutcome::kIllegalDataAddress},
      {8, {0, 1}, WriteOutcome::kIllegalDataAddress},  // fault_code, then the message
      {10, {0}, WriteOutcome::kIllegalDataAddress},
      {9, {1, 0}, WriteOutcome::kIllegalDataAddress},  // runs past the message
      {100, {0}, WriteOutcome::kIllegalDataAddress},
      {2, {full[0]}, WriteOutcome::kIllegalDataAddress},  // half a float
      {3, {full[1]}, WriteOutcome::kIllegalDataAddress},
      {3, {0, 0}, WriteOutcome::kIllegalDataAddress},
      {5, {0, 0, 0}, WriteOutcome::kIllegalDataAddress},  // runs into the heartbeat
      {2, {full[0], full[1], 0, 0, 1, 0}, WriteOutcome::kIllegalDataAddress},
      {5, {4}, WriteOutcome::kIllegalDataValue},
      {5, {7}, WriteOutcome::kIllegalDataValue},
      {6, {2}, WriteOutcome::kIllegalDataValue},
      {6, {5}, WriteOutcome::kIllegalDataValue},
      {9, {6}, WriteOutcome::kIllegalDataValue},
      {9, {0xFFFF}, WriteOutcome::kIllegalDataValue},
      {2, {nan[0], nan[1]}, WriteOutcome::kIllegalDataValue},
      {2, {0x7F80, 0x0000}, WriteOutcome::kIllegalDataValue},  // +infinity
      {2, {negative[0], negative[1]}, WriteOutcome::kIllegalDataValue},
      {2, {over[0], over[1]}, WriteOutcome::kIllegalDataValue},
      {2, {full[0], full[1], 0, 0, 5}, WriteOutcome::kIllegalDataAddress},  // 4 is status
      {2, {full[0], full[1]}, WriteOutcome::kOk},
      {2, {0, 0}, WriteOutcome::kOk},
      {5, {0}, WriteOutcome::kOk},
      {5, {2}, WriteOutcome::kOk},
      {5, {0, 1}, WriteOutcome::kOk},
      {6, {1}, WriteOutcome::kOk},
      {6, {0}, WriteOutcome::kOk},
      {9, {0}, WriteOutcome::kOk},
      {9, {5}, WriteOutcome::kOk},
  };
  for (const Row& row : rows) {
    CAPTURE(row.start);
    CAPTURE(row.values.size());
    Rig r;
    REQUIRE(r.Cutoff(25.0f) == WriteOutcome::kOk);
    const auto before = r.m.Registers();
    CHECK(r.Write(row.start, row.values) == row.outcome);
    if (row.outcome != WriteOutcome::kOk) CHECK(r.m.Registers() == before);  // all or nothing
  }
}

TEST_CASE("every interlock write is logged, refused or not, and the log is bounded") {
  Rig r;
  CHECK(r.Interlock(1) == WriteOutcome::kOk);
  CHECK(r.Interlock(5) == WriteOutcome::kIllegalDataValue);
  CHECK(r.Write(4, {0, 0, 1}) == WriteOutcome::kIllegalDataAddress);
  CHECK(r.Command(reg::kStop) == WriteOutcome::kOk);  // not the interlock: not logged
  REQUIRE(r.m.interlock_writes().size() == 3);
  const auto& log = r.m.interlock_writes();
  CHECK(log[0].value == 1);
  CHECK(log[0].accepted);
  CHECK(log[0].client == "test:1");
  CHECK(log[0].at == "2025-01-01T00:00:00.000Z");
  CHECK(log[1].value == 5);
  CHECK(!log[1].accepted);
  CHECK(log[2].value == 1);
  CHECK(!log[2].accepted);
  CHECK(r.m.interlock() == 1);

  for (int i = 0; i < 10'005; ++i) (void)r.Interlock(0);
  CHECK(r.m.interlock_writes().size() == ScaleModel::kInterlockLogLimit);
  CHECK(r.m.interlock_writes_total() == 10'008);
}

TEST_CASE("signals: coils 0-3 and register 9 are kept, and every write to them is logged") {
  Rig r;
  CHECK(r.m.Coils() == std::array<bool, reg::kCoilCount>{});
  CHECK(r.m.Registers()[reg::kMessageCode] == 0);

  CHECK(r.m.WriteCoils(reg::kLampRed, {true}, r.t, "10.0.0.7:5020", "2025-01-01T00:00:01.000Z") ==
        WriteOutcome::kOk);
  CHECK(r.m.WriteCoils(0, {true, false, false, true}, r.t, "test:1", "2025-01-01T00:00:02.000Z") ==
        WriteOutcome::kOk);
  CHECK(r.Write(reg::kMessageCode, {2}) == WriteOutcome::kOk);
  CHECK(r.m.Coils() == std::array<bool, reg::kCoilCount>{true, false, false, true});
  CHECK(r.m.Registers()[reg::kMessageCode] == 2);
  CHECK(r.m.message_code() == 2);

  // Refused, all or nothing: a block running past coil 3, a message beyond 5. Each
  // signal in a refused write is logged as refused; a coil that is no signal is not.
  CHECK(r.m.WriteCoils(2, {true, false, true}, r.t, "test:1", "x") ==
        WriteOutcome::kIllegalDataAddress);
  CHECK(r.m.WriteCoils(4, {true}, r.t, "test:1", "x") == WriteOutcome::kIllegalDataAddress);
  CHECK(r.m.WriteCoils(0, {}, r.t, "test:1", "x") == WriteOutcome::kIllegalDataAddress);
  CHECK(r.Write(reg::kMessageCode, {6}) == WriteOutcome::kIllegalDataValue);
  CHECK(r.m.Coils() == std::array<bool, reg::kCoilCount>{true, false, false, true});
  CHECK(r.m.Registers()[reg::kMessageCode] == 2);

  struct Logged {
    std::string which;
    std::uint16_t value;
    std::string client;
    bool accepted;
    bool operator==(const Logged& o) const {
      return which == o.which && value == o.value && client == o.client && accepted == o.accepted;
    }
  };
  std::vector<Logged> log;
  for (const auto& w : r.m.signal_writes()) log.push_back({w.which, w.value, w.client, w.accepted});
  const std::vector<Logged> expected = {
      {"lamp_red", 1, "10.0.0.7:5020", true}, {"lamp_green", 1, "test:1", true},
      {"lamp_amber", 0, "test:1", true},      {"lamp_red", 0, "test:1", true},
      {"buzzer", 1, "test:1", true},          {"message_code", 2, "test:1", true},
      {"lamp_red", 1, "test:1", false},       {"buzzer", 0, "test:1", false},
      {"message_code", 6, "test:1", false},
  };
  CHECK(log == expected);
  CHECK(r.m.signal_writes().front().at == "2025-01-01T00:00:01.000Z");
  CHECK(r.m.signal_writes_total() == expected.size());
  CHECK(r.m.interlock_writes().empty());  // no signal is an interlock write

  for (int i = 0; i < 10'005; ++i) (void)r.m.WriteCoils(reg::kBuzzer, {false}, r.t, "t", "x");
  CHECK(r.m.signal_writes().size() == ScaleModel::kSignalLogLimit);
  CHECK(r.m.signal_writes_total() == expected.size() + 10'005);
}

TEST_CASE("signals change nothing of the fill: lamps and messages during one") {
  Rig r;
  REQUIRE(r.m.Place(15.0, 5.0, r.t) == "");
  REQUIRE(r.Cutoff(30.0f) == WriteOutcome::kOk);
  REQUIRE(r.Interlock(1) == WriteOutcome::kOk);
  r.Run(Ms(600));
  REQUIRE(r.Command(reg::kStart) == WriteOutcome::kOk);
  REQUIRE(r.RunUntil(reg::kValveOpen));
  CHECK(r.m.WriteCoils(0, {false, false, true, true}, r.t, "test:1", "x") == WriteOutcome::kOk);
  CHECK(r.Write(reg::kMessageCode, {4}) == WriteOutcome::kOk);
  CHECK(r.m.interlock() == 1);
  CHECK((r.m.status() & reg::kValveOpen) != 0);
  REQUIRE(r.RunUntil(reg::kFillDone));
  CHECK(r.m.fills() == 1);
  CHECK(r.m.aborted_fills() == 0);
}

TEST_CASE("faults: stuck, nan, indicator fault code, disconnect, overshoot, clear") {
  SUBCASE("stuck freezes gross and heartbeat; clear lets them go on") {
    Rig r;
    REQUIRE(r.m.Place(15, 0, r.t) == "");
    r.Run(Ms(2500));
    r.m.SetStuck(r.t);
    REQUIRE(r.m.Remove(r.t) == "");
    r.Run(Ms(5000));
    CHECK(r.RegisterGross() == doctest::Approx(15.0));
    CHECK(r.m.heartbeat() == 2);
    r.m.ClearFaults(r.t);
    r.Run(Ms(600));
    CHECK(r.RegisterGross() == doctest::Approx(0.0));
    CHECK(r.m.heartbeat() == 3);
  }
  SUBCASE("nan: the gross registers hold a NaN, the fill goes on underneath") {
    Rig r;
    r.m.SetNan(r.t);
    const auto regs = r.m.Registers();
    CHECK(regs[reg::kGrossHi] == 0x7FC0);
    CHECK(regs[reg::kGrossLo] == 0x0000);
    r.m.ClearFaults(r.t);
    CHECK(r.RegisterGross() == 0.0f);
  }
  SUBCASE("fault code: fault bit and fault_code until clear") {
    Rig r;
    CHECK(r.m.SetFaultCode(0, r.t) != "");
    CHECK(r.m.SetFaultCode(70000, r.t) != "");
    REQUIRE(r.m.SetFaultCode(12, r.t) == "");
    CHECK((r.m.status() & reg::kFault) != 0);
    CHECK(r.m.Registers()[reg::kFaultCode] == 12);
    r.m.ClearFaults(r.t);
    CHECK((r.m.status() & reg::kFault) == 0);
    CHECK(r.m.Registers()[reg::kFaultCode] == 0);
  }
  SUBCASE("disconnect is a flag for the server") {
    Rig r;
    r.m.SetDisconnect(r.t);
    CHECK(r.m.faults().disconnect);
    r.m.ClearFaults(r.t);
    CHECK(!r.m.faults().disconnect);
  }
  SUBCASE("overshoot is settable and clear restores the configured one") {
    Rig r;
    CHECK(r.m.SetOvershoot(-1, r.t) != "");
    CHECK(r.m.SetOvershoot(std::nan(""), r.t) != "");
    REQUIRE(r.m.SetOvershoot(0.4, r.t) == "");
    CHECK(r.m.config().overshoot_kg == 0.4);
    r.m.ClearFaults(r.t);
    CHECK(r.m.config().overshoot_kg == 0.02);
  }
}

TEST_CASE("overload bit above capacity") {
  struct Row {
    double tare, content;
    bool overload;
  };
  for (const Row& row : std::vector<Row>{{15, 5, false}, {70, 80, false}, {70, 80.5, true}}) {
    CAPTURE(row.content);
    Rig r;
    REQUIRE(r.m.Place(row.tare, row.content, r.t) == "");
    CHECK(((r.m.status() & reg::kOverload) != 0) == row.overload);
  }
  Rig r;
  CHECK(r.m.Place(300, 200, r.t) != "");  // beyond three times the capacity
}

TEST_CASE("heartbeat counts seconds") {
  Rig r;
  for (int s = 0; s < 5; ++s) {
    CHECK(r.m.Registers()[reg::kHeartbeat] == s);
    r.Run(Ms(1000));
  }
  r.m.Advance(r.t + Ms(65'536'000));
  CHECK(r.m.heartbeat() == 5);  // wraps at 16 bits
}

TEST_CASE("settling: unstable with noise after a change, stable and exact after") {
  ScaleConfig c = Quiet();
  c.noise_kg = 0.005;
  Rig r(c);
  REQUIRE(r.m.Place(15, 5, r.t) == "");
  for (int i = 0; i < 20; ++i) {
    r.Run(Ms(20));
    CHECK((r.m.status() & reg::kStable) == 0);
    CHECK(std::abs(r.RegisterGross() - 20.0f) <= 0.0051f);
  }
  r.Run(Ms(200));
  CHECK((r.m.status() & reg::kStable) != 0);
  CHECK(r.RegisterGross() == 20.0f);
}

TEST_CASE("zero takes an empty platform only") {
  Rig r;
  REQUIRE(r.m.Drift(0.3, r.t) == "");
  r.Run(Ms(600));
  CHECK(r.RegisterGross() == doctest::Approx(0.3));
  CHECK(r.Command(reg::kZero) == WriteOutcome::kOk);
  CHECK(r.m.zeros() == 1);
  CHECK(r.RegisterGross() == doctest::Approx(0.0));
  REQUIRE(r.m.Place(15, 5, r.t) == "");
  CHECK(r.RegisterGross() == doctest::Approx(20.0));
  CHECK(r.Command(reg::kZero) == WriteOutcome::kOk);
  CHECK(r.m.zeros() == 1);
  CHECK(r.m.refused_commands() == 1);
  REQUIRE(r.m.Remove(r.t) == "");
  REQUIRE(r.m.Drift(10, r.t) == "");  // beyond 4% of 150 kg
  CHECK(r.Command(reg::kZero) == WriteOutcome::kOk);
  CHECK(r.m.refused_commands() == 2);
}

TEST_CASE("place and remove") {
  Rig r;
  CHECK(r.m.Remove(r.t) != "");
  CHECK(r.m.Place(0, 5, r.t) != "");
  CHECK(r.m.Place(15, -1, r.t) != "");
  CHECK(r.m.Place(std::nan(""), 1, r.t) != "");
  REQUIRE(r.m.Place(15, 5, r.t) == "");
  CHECK(r.m.Place(15, 5, r.t) != "");  // one cylinder at a time
  CHECK((r.m.status() & reg::kPresent) != 0);
  REQUIRE(r.m.Remove(r.t) == "");
  CHECK((r.m.status() & reg::kPresent) == 0);
  CHECK(r.RegisterGross() == 0.0f);
}
