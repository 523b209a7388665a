// The filling scale's driver over Modbus (libmodbus); its register map is in
// scale_profile.h, the register codec in scale_codec.h.
//
// A Scale is used by one filling position's thread at a time: not thread-safe. Every
// call is bounded by the profile's response deadline; none blocks longer.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "pingma/common/status.h"
#include "scale_profile.h"

namespace pingma::station {

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
