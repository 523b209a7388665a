// The scale's register codec: where a value lives (RegisterSpec) and how its
// registers, as they come off the wire, become an engineering value and back (word
// order, byte swap, float assembly, scale).
//
// Pure functions on values: safe from any thread.
#pragma once

#include <cstdint>
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

/// The engineering value of `spec` from its registers as they came off the wire
/// (`spec.registers()` of them). Pure: the driver and the tests share it.
double DecodeValue(const RegisterSpec& spec, const std::uint16_t* wire);
/// The registers, in wire order, that carry `value` for `spec`; kInvalid when the value
/// does not fit the type after scaling (a cutoff of 70000 kg in a uint16).
Result<std::vector<std::uint16_t>> EncodeValue(const RegisterSpec& spec, double value);

/// "holding register", "input register", "coil", "discrete input": for messages.
const char* KindName(RegisterKind kind);
/// Coils and discrete inputs: one bit each, no register value.
bool IsBitKind(RegisterKind kind);

}  // namespace pingma::station
