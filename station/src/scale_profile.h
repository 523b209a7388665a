// The scale's register map (a profile): the built-in pingma-fill-v1, or one read
// from a TOML file (station/profiles/), checked in full before any register is used.
//
// Plain values and pure functions: safe from any thread.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "pingma/common/status.h"
#include "scale_codec.h"

namespace pingma::station {

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

/// OK for a gross weight within [-negative_tolerance_kg, capacity_kg]; NaN, infinite
/// or outside is kInvalid "fault, not a reading".
Status CheckGross(const ScaleProfile& profile, double gross_kg);
/// kInvalid when a signal (lamp, buzzer, message) is written to a coil or register
/// that the cutoff, the command or the interlock uses: a lamp must never move the valve.
Status CheckSignalsApart(const ScaleProfile& profile);

}  // namespace pingma::station
