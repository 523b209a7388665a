// The register codec. See scale_codec.h for the contract.
#include "scale_codec.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <utility>

namespace pingma::station {

int RegisterSpec::registers() const {
  return type == ValueType::kUint32 || type == ValueType::kInt32 || type == ValueType::kFloat32 ? 2
                                                                                                : 1;
}

namespace {

std::uint16_t SwapBytes(std::uint16_t r) {
  return static_cast<std::uint16_t>((r >> 8) | (r << 8));
}

/// The 32 bits of a two-register value, from the registers as they are on the wire.
std::uint32_t Assemble32(const RegisterSpec& spec, const std::uint16_t* wire) {
  std::uint16_t first = spec.swap_bytes ? SwapBytes(wire[0]) : wire[0];
  std::uint16_t second = spec.swap_bytes ? SwapBytes(wire[1]) : wire[1];
  if (spec.words == WordOrder::kLowFirst) std::swap(first, second);
  return (static_cast<std::uint32_t>(first) << 16) | second;
}

void Split32(const RegisterSpec& spec, std::uint32_t bits, std::uint16_t* wire) {
  std::uint16_t high = static_cast<std::uint16_t>(bits >> 16);
  std::uint16_t low = static_cast<std::uint16_t>(bits & 0xFFFFu);
  if (spec.words == WordOrder::kLowFirst) std::swap(high, low);
  wire[0] = spec.swap_bytes ? SwapBytes(high) : high;
  wire[1] = spec.swap_bytes ? SwapBytes(low) : low;
}

/// Decimal scales (0.1, 0.01, 0.001) divide by their exact inverse, so that 15000 at
/// 0.01 is 150 exactly and a reading at capacity is not a hair above it.
std::optional<double> DecimalInverse(double scale) {
  if (scale <= 0 || scale >= 1) return std::nullopt;
  const double inverse = std::round(1 / scale);
  if (std::fabs(inverse * scale - 1) > 1e-12) return std::nullopt;
  return inverse;
}

double ApplyScale(double raw, double scale) {
  if (const auto inverse = DecimalInverse(scale)) return raw / *inverse;
  return raw * scale;
}

double RemoveScale(double value, double scale) {
  if (const auto inverse = DecimalInverse(scale)) return value * *inverse;
  return value / scale;
}

}  // namespace

double DecodeValue(const RegisterSpec& spec, const std::uint16_t* wire) {
  double raw = 0;
  switch (spec.type) {
    case ValueType::kUint16:
      raw = spec.swap_bytes ? SwapBytes(wire[0]) : wire[0];
      break;
    case ValueType::kInt16:
      raw = static_cast<std::int16_t>(spec.swap_bytes ? SwapBytes(wire[0]) : wire[0]);
      break;
    case ValueType::kUint32:
      raw = Assemble32(spec, wire);
      break;
    case ValueType::kInt32:
      raw = static_cast<std::int32_t>(Assemble32(spec, wire));
      break;
    case ValueType::kFloat32: {
      // Not modbus_get_float_*: libmodbus 3.1.6 names those swapped on little-endian.
      const std::uint32_t bits = Assemble32(spec, wire);
      float f = 0;
      std::memcpy(&f, &bits, sizeof f);
      raw = f;
      break;
    }
  }
  return ApplyScale(raw, spec.scale);
}

Result<std::vector<std::uint16_t>> EncodeValue(const RegisterSpec& spec, double value) {
  if (!std::isfinite(value)) return Status::Invalid("cannot write a value that is not finite");
  std::vector<std::uint16_t> wire(static_cast<std::size_t>(spec.registers()));
  const double raw = RemoveScale(value, spec.scale);
  if (spec.type == ValueType::kFloat32) {
    if (std::fabs(raw) > std::numeric_limits<float>::max()) {
      return Status::Invalid("value " + std::to_string(value) + " does not fit a float32");
    }
    const float f = static_cast<float>(raw);
    std::uint32_t bits = 0;
    std::memcpy(&bits, &f, sizeof bits);
    Split32(spec, bits, wire.data());
    return wire;
  }
  const double whole = std::round(raw);
  double low = 0, high = 0;
  switch (spec.type) {
    case ValueType::kUint16:
      high = 65535;
      break;
    case ValueType::kInt16:
      low = -32768, high = 32767;
      break;
    case ValueType::kUint32:
      high = 4294967295.0;
      break;
    case ValueType::kInt32:
      low = -2147483648.0, high = 2147483647.0;
      break;
    case ValueType::kFloat32:
      break;
  }
  if (whole < low || whole > high) {
    return Status::Invalid("value " + std::to_string(value) + " does not fit the register type");
  }
  if (spec.registers() == 1) {
    const auto bits = static_cast<std::uint16_t>(static_cast<std::int32_t>(whole) & 0xFFFF);
    wire[0] = spec.swap_bytes ? SwapBytes(bits) : bits;
  } else {
    const auto bits = static_cast<std::uint32_t>(static_cast<std::int64_t>(whole) & 0xFFFFFFFF);
    Split32(spec, bits, wire.data());
  }
  return wire;
}
const char* KindName(RegisterKind kind) {
  switch (kind) {
    case RegisterKind::kHolding:
      return "holding register";
    case RegisterKind::kInput:
      return "input register";
    case RegisterKind::kCoil:
      return "coil";
    case RegisterKind::kDiscreteInput:
      return "discrete input";
  }
  return "register";
}

bool IsBitKind(RegisterKind kind) {
  return kind == RegisterKind::kCoil || kind == RegisterKind::kDiscreteInput;
}

}  // namespace pingma::station
