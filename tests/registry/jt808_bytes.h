// Bytes written as hex for the JT/T 808 tests: "7e 80 01" and back.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <doctest/doctest.h>

namespace pingma::registry::jt808 {

/// "7e 80 01" -> the bytes; anything but hex digits is ignored.
inline std::string Bytes(std::string_view hex) {
  std::string out;
  int high = -1;
  for (char c : hex) {
    int v;
    if (c >= '0' && c <= '9') {
      v = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      v = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      v = c - 'A' + 10;
    } else {
      continue;
    }
    if (high < 0) {
      high = v;
    } else {
      out.push_back(static_cast<char>(high * 16 + v));
      high = -1;
    }
  }
  REQUIRE_MESSAGE(high < 0, "an odd number of hex digits: ", hex);
  return out;
}

/// The bytes as "7e 80 01".
inline std::string Hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    if (!out.empty()) out.push_back(' ');
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0x0f]);
  }
  return out;
}

/// A location report body: alarm 00000001, status 0000000e (located, south, west),
/// latitude 33.123456 (01f96c80), longitude 113.654321 (06c63a31), altitude 50 m
/// (0032), speed 60.0 km/h (0258), heading 270 (010e), time 2026-12-07 07:59:59 in
/// UTC+8 (261207075959), which is kLocationMs.
inline constexpr const char* kLocationBody =
    "00 00 00 01 00 00 00 0e 01 f9 6c 80 06 c6 3a 31 00 32 02 58 01 0e 26 12 07 07 59 59";
/// 2026-12-06T23:59:59Z
inline constexpr std::int64_t kLocationMs = 1796601599000;

}  // namespace pingma::registry::jt808
