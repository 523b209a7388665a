// EPC binary and URI decoding per the GS1 EPC Tag Data Standard (TDS), and the GS1
// primitives the scan parser shares with it. Private to the scanner module.
//
// Pure functions, no I/O, no exceptions other than std::bad_alloc; safe from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "pingma/common/status.h"
#include "pingma/scanner/scan.h"

namespace pingma::epc {

/// The longest EPC a Gen2 tag can hold: the PC word's 5-bit length field counts
/// at most 31 words, 496 bits.
inline constexpr std::size_t kMaxEpcHexDigits = 124;
/// The shortest EPC scheme TDS ever defined is 64 bits (the retired -64 schemes).
inline constexpr std::size_t kMinEpcHexDigits = 16;

bool IsHexDigit(char c);
bool IsDigit(char c);

/// The GS1 AI encodable character set 82 (GS1 General Specifications): what a GRAI
/// serial and a GRAI-170 7-bit serial may hold.
bool IsCset82(char c);

/// The GS1 mod-10 check digit ('0'..'9') over `digits`, all of them '0'..'9':
/// weights 3, 1, 3, ... from the rightmost digit.
char Gs1CheckDigit(std::string_view digits);

/// A byte for an error message: "'x'" when printable ASCII, else "byte 0xHH".
std::string DescribeChar(char c);

/// Decodes %HH escapes; a '+' becomes a space when `plus_is_space` (query strings).
/// std::nullopt on a broken escape ("%", "%4", "%G1").
std::optional<std::string> PercentDecode(std::string_view text, bool plus_is_space);

/// Decodes an EPC given as hex digits (any case, no "EPC:" prefix). GRAI-96 (header
/// 0x33) and GRAI-170 (0x37) become a kGrai key holding the AI (8003) value; any
/// other header a kEpc key with the hex upper-cased. kMalformed on bad hex, a length
/// outside [kMinEpcHexDigits, kMaxEpcHexDigits], or a GRAI that does not decode.
Result<ScanKey> DecodeEpcHex(std::string_view hex);

/// The AI (8003) value of a GRAI EPC URI: the pure identity URI
/// "urn:epc:id:grai:0614141.12345.400" or a tag URI "urn:epc:tag:grai-96:3.0614141.12345.400"
/// / "urn:epc:tag:grai-170:...". The "urn:epc:" prefix matches in any case.
/// kMalformed for any other URI or a component that breaks the TDS grammar.
Result<std::string> GraiValueFromEpcUri(std::string_view uri);

}  // namespace pingma::epc
