// The filling scale: its register map (a profile) and a driver over Modbus.
//
// A Scale is used by one filling position's thread at a time: not thread-safe. Every
// call is bounded by the profile's response deadline; none blocks longer.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pingma/common/status.h"

namespace pingma::station {

enum class RegisterKind { kHolding, kInput, kCoil, kDiscreteInput };
enum class ValueType { kUint16, kInt16, kUint32, kInt32, kFloat32 };
/// Which register of a 32-bit value comes first.
enum class WordOrder { kHighFirst, kLowFirst };

/// Where one value lives and how to read it. For a bit inside a register, `bit` is
/// 0..15; for a coil or discrete input the address is the bit's own. Engineering
/// value = raw * scale (raw 12345 with scale 0.001 is 12.345 kg). A 32-bit value is
/// two registers: each register's bytes are swapped first when `swap_bytes`, then
/// `words` says which register holds the high half.
struct RegisterSpec {
  RegisterKind kind = RegisterKind::kHolding;
  int address = -1;  ///< 0-based; -1: the scale has no such value
  ValueType type = ValueType::kUint16;
  WordOrder words = WordOrder::kHighFirst;
  bool swap_bytes = false;  ///< the two bytes of each register swapped
  double scale = 1.0;
  int bit = -1;
  /// A flag that is set when its bit is 0: indicators report "motion", not "stable".
  bool invert = false;

  bool present() const { return address >= 0; }
  /// 2 for the 32-bit types, else 1.
  int registers() const;
};

/// A scale's register map. The default, pingma-fill-v1, is API.md's table; others
/// are loaded from a TOML table (station/profiles/ has a real indicator's map).
struct ScaleProfile {
  std::string name;
  RegisterSpec gross_kg;         ///< read: live gross weight
  RegisterSpec cutoff_gross_kg;  ///< write: the indicator closes the valve at this gross
  RegisterSpec stable, valve_open, fill_done, fault, present, overload;  ///< read bits
  /// write: start / stop / zero. A register takes the value command_start etc.; when
  /// the kind is kCoil, command_start etc. are the addresses of three self-clearing
  /// coils (a coil each, as indicators do) and the address is command_start's.
  RegisterSpec command;
  int command_start = 1, command_stop = 2, command_zero = 3;
  RegisterSpec interlock;  ///< write: interlock_locked keeps the valve shut (a coil: 0/1)
  int interlock_locked = 0, interlock_unlocked = 1;
  RegisterSpec heartbeat;   ///< read, optional: counts up while the indicator runs
  RegisterSpec fault_code;  ///< read, optional
  /// write, optional: the lamps and the buzzer, each a coil or a bit of a holding register
  /// (`invert`: the output is on when its bit is 0, a relay wired normally closed).
  RegisterSpec lamp_green, lamp_amber, lamp_red, buzzer;
  /// write, optional: a holding register whose value the indicator shows (ScaleMessage).
  RegisterSpec message_code;
  double capacity_kg = 150;            ///< a reading above this is a fault, not a weight
  double negative_tolerance_kg = 0.5;  ///< a reading below minus this is a fault
  std::chrono::milliseconds response_timeout{500};  ///< every Modbus call's deadline
};

/// pingma-fill-v1 (API.md "Default scale profile").
ScaleProfile DefaultProfile();
/// A profile from TOML text (the [profile] table format of station/profiles/*.toml);
/// kInvalid naming the key that is missing or wrong.
Result<ScaleProfile> ParseProfile(std::string_view toml_text);
Result<ScaleProfile> LoadProfile(const std::string& path_or_builtin_name);

/// The engineering value of `spec` from its registers as they came off the wire
/// (`spec.registers()` of them). Pure: the driver and the tests share it.
double DecodeValue(const RegisterSpec& spec, const std::uint16_t* wire);
/// The registers, in wire order, that carry `value` for `spec`; kInvalid when the value
/// does not fit the type after scaling (a cutoff of 70000 kg in a uint16).
Result<std::vector<std::uint16_t>> EncodeValue(const RegisterSpec& spec, double value);
/// OK for a gross weight within [-negative_tolerance_kg, capacity_kg]; NaN, infinite
/// or outside is kInvalid "fault, not a reading".
Status CheckGross(const ScaleProfile& profile, double gross_kg);

/// How to reach the scale.
struct ScaleEndpoint {
  enum class Transport { kTcp, kRtu } transport = Transport::kTcp;
  std::string host = "127.0.0.1";
  int port = 502;
  std::string device;  ///< RTU: serial device path
  int baud = 9600;
  char parity = 'N';  ///< RTU: 'N', 'E' or 'O'
  int data_bits = 8, stop_bits = 1;
  int unit = 1;  ///< Modbus unit / slave id
};

/// One reading of every value the profile maps.
struct ScaleReading {
  double gross_kg = 0;
  bool stable = false, valve_open = false, fill_done = false, fault = false, present = false,
       overload = false;
  std::optional<std::uint32_t> heartbeat;
  std::optional<std::uint32_t> fault_code;
};

enum class ScaleCommand { kStart, kStop, kZero };

/// What the scale's lamps, buzzer and display should show (API.md "Optional signals").
enum class ScaleMessage : std::uint16_t {
  kIdle = 0,
  kFilling = 1,
  kBlocked = 2,
  kOffline = 3,
  kFault = 4,
  kHoldForDecant = 5
};
struct ScaleSignals {
  bool green = false, amber = false, red = false, buzzer = false;
  ScaleMessage message = ScaleMessage::kIdle;
  bool operator==(const ScaleSignals&) const;
  bool operator!=(const ScaleSignals& other) const { return !(*this == other); }
};

/// The driver interface the filling position uses; tests of the position use a fake.
class Scale {
 public:
  virtual ~Scale() = default;
  /// Connects (or reconnects) and, before anything else, writes the interlock locked.
  /// kUnavailable when the scale does not answer; the interlock write failing is an
  /// error too, and the scale counts as not connected.
  virtual Status Connect() = 0;
  virtual void Disconnect() = 0;
  virtual bool connected() const = 0;
  /// Reads gross weight and status. A NaN or infinite weight, one below
  /// -negative_tolerance_kg or above capacity_kg, is kInvalid ("fault, not a
  /// reading"), as is a Modbus exception; a lost connection is kUnavailable and
  /// disconnects.
  virtual Result<ScaleReading> Read() = 0;
  virtual Status WriteCutoff(double gross_kg) = 0;
  /// Writes the interlock: locked (false) or unlocked for one fill (true), then reads
  /// it back where the register is readable.
  virtual Status SetInterlock(bool unlocked) = 0;
  virtual Status Send(ScaleCommand command) = 0;
  /// Whether the profile maps any signal; WriteSignals is then a no-op returning OK.
  virtual bool has_signals() const = 0;
  /// Writes the signals the profile maps (the others are skipped), each bounded by the
  /// profile's response deadline. Never touches the interlock. An error names what failed;
  /// the caller logs it and goes on (a lamp never delays or replaces the interlock).
  virtual Status WriteSignals(const ScaleSignals& signals) = 0;
  /// "tcp 127.0.0.1:1502 unit 1" or "rtu /dev/ttyUSB0 9600 8N1 unit 1", for logs.
  virtual std::string Describe() const = 0;
};

/// The libmodbus driver. Reconnects are the caller's (Connect again after an error).
std::unique_ptr<Scale> MakeModbusScale(const ScaleEndpoint& endpoint, const ScaleProfile& profile);

}  // namespace pingma::station
