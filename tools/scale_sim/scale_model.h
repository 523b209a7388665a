// The simulated filling scale behind pingma-scale-sim: API.md's pingma-fill-v1 register
// map over a small physical model (a cylinder on a platform, a valve, a flow).
//
// Pure logic: no sockets, no clock. Every call takes the model time `now` (any
// monotonic origin), so tests drive it step by step and the program drives it from a
// steady clock. Writes arrive as Modbus would deliver them (a start address and
// register values) and are answered with the exception a real indicator would give.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <random>
#include <string>
#include <vector>

namespace pingma::scalesim {

/// Model time: microseconds since an arbitrary origin.
using Micros = std::chrono::microseconds;

/// pingma-fill-v1, holding registers, 0-based.
enum Register : int {
  kGrossHi = 0,
  kGrossLo = 1,
  kCutoffHi = 2,
  kCutoffLo = 3,
  kStatus = 4,
  kCommand = 5,
  kInterlock = 6,
  kHeartbeat = 7,
  kFaultCode = 8,
  kMessageCode = 9,  ///< the code the indicator shows (API.md "Optional signals")
  kRegisterCount = 10,
};

/// pingma-fill-v1's signal coils, 0-based.
enum Coil : int {
  kLampGreen = 0,
  kLampAmber = 1,
  kLampRed = 2,
  kBuzzer = 3,
  kCoilCount = 4,
};

/// The highest message code (5, hold for decant); a higher one is refused.
constexpr std::uint16_t kMaxMessageCode = 5;

/// Status register bits.
enum StatusBit : std::uint16_t {
  kStable = 1u << 0,
  kValveOpen = 1u << 1,
  kFillDone = 1u << 2,
  kFault = 1u << 3,
  kPresent = 1u << 4,
  kOverload = 1u << 5,
};

enum Command : std::uint16_t { kNone = 0, kStart = 1, kStop = 2, kZero = 3 };

/// The answer to a Modbus write; the numbers are the Modbus exception codes.
enum class WriteOutcome {
  kOk = 0,
  kIllegalDataAddress = 2,  ///< a read-only register, beyond 9, a coil beyond 3, half a float32
  kIllegalDataValue = 3,    ///< command/interlock/message out of range; cutoff NaN, < 0, > capacity
};

/// The physics. Defaults are an ordinary LPG filling scale: a 150 kg platform (1.5-3x a
/// 50 kg cylinder's load, DOMAIN.md), a solenoid valve's latency, a hose's in-flight
/// gas, a load cell's settling.
struct ScaleConfig {
  double flow_kg_s = 0.5;          ///< filling rate while the valve is open
  double capacity_kg = 150;        ///< above this: the overload bit; no start
  Micros valve_latency{200'000};   ///< command to first gas on the platform
  Micros settle{500'000};          ///< last change to the stable bit
  Micros overshoot_time{300'000};  ///< the in-flight gas lands over this long
  double overshoot_kg = 0.02;      ///< gas in flight when the valve closes at cutoff
  double noise_kg = 0.005;         ///< reading noise while not stable (uniform +-)
  std::uint32_t noise_seed = 1;
};

/// One write to the interlock register, accepted or not.
struct InterlockWrite {
  std::string at;  ///< the caller's wall-clock stamp (RFC 3339)
  Micros t{0};     ///< model time
  std::uint16_t value = 0;
  std::string client;  ///< "127.0.0.1:40312", "rtu /dev/pts/3"
  bool accepted = false;
};

/// One write to a signal (a lamp's or the buzzer's coil, the message register),
/// accepted or not.
struct SignalWrite {
  std::string at;           ///< the caller's wall-clock stamp (RFC 3339)
  Micros t{0};              ///< model time
  std::string which;        ///< "lamp_green", "lamp_amber", "lamp_red", "buzzer", "message_code"
  std::uint16_t value = 0;  ///< a coil's 0 or 1, or the message code
  std::string client;       ///< as in InterlockWrite
  bool accepted = false;
};

/// Faults switched on from the control port; `clear` resets them all.
struct Faults {
  bool disconnect = false;  ///< the server drops Modbus clients; the model only records it
  bool stuck = false;       ///< gross and heartbeat frozen (a hung indicator)
  bool nan = false;         ///< gross reads as a quiet NaN
  std::uint16_t code = 0;   ///< an indicator-reported fault: fault bit, fault_code, valve shut
};

/// The scale. Not thread-safe: one owner, or callers hold one mutex around every call.
class ScaleModel {
 public:
  static constexpr std::size_t kInterlockLogLimit = 10'000;
  static constexpr std::size_t kSignalLogLimit = 10'000;

  ScaleModel(ScaleConfig config, Micros now);

  /// Runs the physics up to `now` (earlier times are ignored). Exact for any step: the
  /// cutoff crossing is computed, not sampled, so a 20 ms tick and a 1 s jump agree.
  void Advance(Micros now);

  /// The ten registers as a Modbus read would see them at the last Advance.
  std::array<std::uint16_t, kRegisterCount> Registers() const;
  /// The signal coils (lamps, buzzer) as a Modbus read would see them.
  std::array<bool, kCoilCount> Coils() const { return coils_; }

  /// A Modbus write of `values` at `start`. The whole write is checked before any of it
  /// is applied (all or nothing); the values are then applied cutoff, interlock, command,
  /// so one block write can set a cutoff, unlock and start. Every interlock value and
  /// message code in the write is logged, refused or not. Advances to `now` first.
  WriteOutcome Write(int start, const std::vector<std::uint16_t>& values, Micros now,
                     const std::string& client, const std::string& wall_time);
  /// A Modbus write of coils (function 05 or 15) at `start`: the signal coils 0-3 only,
  /// all or nothing. Every signal coil in the write is logged, refused or not; the
  /// lamps and the buzzer change nothing else. Advances to `now` first.
  WriteOutcome WriteCoils(int start, const std::vector<bool>& values, Micros now,
                          const std::string& client, const std::string& wall_time);

  // Control port (place, remove, faults). Each returns "" or why it refused.
  std::string Place(double tare_kg, double content_kg, Micros now);
  std::string Remove(Micros now);
  /// Dirt, ice or a hose resting on the platform: what `zero` takes away.
  std::string Drift(double kg, Micros now);
  void SetDisconnect(Micros now);
  void SetStuck(Micros now);
  void SetNan(Micros now);
  std::string SetOvershoot(double kg, Micros now);
  std::string SetFaultCode(long code, Micros now);
  void ClearFaults(Micros now);

  // What the status line shows.
  const Faults& faults() const { return faults_; }
  const ScaleConfig& config() const { return config_; }
  double gross_kg() const;            ///< the true gross (no noise, no fault), for tests and status
  double displayed_gross_kg() const;  ///< what registers 0-1 hold
  double cutoff_kg() const { return cutoff_kg_; }
  std::uint16_t status() const;
  std::uint16_t interlock() const { return interlock_; }
  std::uint16_t heartbeat() const;
  bool present() const { return present_; }
  double tare_kg() const { return tare_kg_; }
  double content_kg() const { return content_kg_; }
  const char* phase_name() const;
  std::uint64_t fills() const { return fills_; }
  std::uint64_t aborted_fills() const { return aborted_fills_; }
  std::uint64_t refused_starts() const { return refused_starts_; }
  std::uint64_t refused_commands() const { return refused_commands_; }
  std::uint64_t zeros() const { return zeros_; }
  const std::deque<InterlockWrite>& interlock_writes() const { return interlock_log_; }
  std::uint64_t interlock_writes_total() const { return interlock_total_; }
  std::uint16_t message_code() const { return message_code_; }
  const std::deque<SignalWrite>& signal_writes() const { return signal_log_; }
  std::uint64_t signal_writes_total() const { return signal_total_; }
  const std::string& last_refusal() const { return last_refusal_; }

  /// Lines worth a log line (refusals, fills, faults) since the last call.
  std::vector<std::string> TakeEvents();

  /// float32 <-> two registers, high word first (pingma-fill-v1).
  static std::array<std::uint16_t, 2> FloatToRegisters(float value);
  static float RegistersToFloat(std::uint16_t hi, std::uint16_t lo);

 private:
  enum class Phase {
    kIdle,      ///< valve shut
    kOpening,   ///< start accepted, valve opening: no gas yet
    kFlowing,   ///< gas flowing at flow_kg_s
    kInFlight,  ///< valve shut at cutoff, the gas in the hose still landing
  };

  void Step(Micros now);
  void RunCommand(std::uint16_t command, Micros now);
  void Start(Micros now);
  /// Shuts the valve (stop, lock, fault, cylinder gone): no overshoot, no
  /// done bit; the unlock is used up.
  void Abort(const std::string& why, Micros now);
  void Refuse(const std::string& what, const std::string& why);
  void Changed(Micros now) { last_change_ = now; }
  bool ValveOpen() const { return phase_ == Phase::kOpening || phase_ == Phase::kFlowing; }
  bool Stable() const;
  void Event(std::string line) { events_.push_back(std::move(line)); }
  void LogSignal(const char* which, std::uint16_t value, const std::string& client,
                 const std::string& wall_time, bool accepted);

  ScaleConfig config_;
  double default_overshoot_kg_;
  Micros now_;
  Micros last_change_;
  Micros phase_start_{0};
  Phase phase_ = Phase::kIdle;

  bool present_ = false;
  double tare_kg_ = 0;
  double content_kg_ = 0;
  double drift_kg_ = 0;             ///< on the platform besides the cylinder
  double zero_kg_ = 0;              ///< subtracted by `zero`
  double inflight_base_kg_ = 0;     ///< content when the valve shut at cutoff
  bool fill_pending_done_ = false;  ///< the cutoff was reached; done once stable
  bool fill_done_ = false;

  double cutoff_kg_ = 0;
  std::uint16_t interlock_ = 0;
  Micros heartbeat_time_{0};  ///< run time that counts: none while stuck
  float stuck_gross_ = 0;
  double noise_kg_ = 0;
  std::mt19937 rng_;

  Faults faults_;
  std::uint64_t fills_ = 0, aborted_fills_ = 0, refused_starts_ = 0, refused_commands_ = 0,
                zeros_ = 0;
  std::deque<InterlockWrite> interlock_log_;
  std::uint64_t interlock_total_ = 0;
  std::array<bool, kCoilCount> coils_{};
  std::uint16_t message_code_ = 0;
  std::deque<SignalWrite> signal_log_;
  std::uint64_t signal_total_ = 0;
  std::string last_refusal_;
  std::vector<std::string> events_;
};

}  // namespace pingma::scalesim
