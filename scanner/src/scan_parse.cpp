// Scan parsing: tells the scan forms of DOMAIN.md "Identity" apart and normalises
// each to its key. Detection order matters where forms overlap; see ParseForm.
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "epc.h"
#include "pingma/scanner/scan.h"

namespace pingma {
namespace {

// No accepted form comes near this; the cap bounds the work a hostile scan can cause.
constexpr std::size_t kMaxScanBytes = 4096;
constexpr std::size_t kMaxCodeChars = 64;
constexpr char kGroupSeparator = '\x1D';  // FNC1 as scanners transmit it

constexpr std::string_view kGraiAi = "8003";
constexpr std::size_t kGraiDigits = 14;  // "0" + 12 digits + check digit
constexpr std::size_t kMaxGraiSerialChars = 16;

// ISO/IEC 15693-3: a UID's most significant byte is the allocation class E0.
constexpr std::string_view kIso15693UidStart = "E0";
constexpr std::size_t kIso15693UidHexDigits = 16;
// ISO 14443 UIDs are 4, 7 or 10 bytes, ISO 15693 UIDs 8: allow 4..16 bytes.
constexpr std::size_t kMinUidHexDigits = 8;
constexpr std::size_t kMaxUidHexDigits = 32;

constexpr std::size_t kBareGrai96HexDigits = 24;
constexpr std::size_t kBareGrai170HexDigits = 44;
constexpr std::string_view kGrai170HeaderHex = "37";

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

char Upper(char c) {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (Upper(s[i]) != Upper(prefix[i])) return false;
  }
  return true;
}

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && StartsWithNoCase(a, b);
}

// The headers of the 96-bit EPC schemes of the Tag Data Standard (GDTI, GSRN,
// USDoD, SGTIN, SSCC, SGLN, GRAI, GIAI, GID, CPI, SGCN). Bare 24-digit hex that
// starts otherwise is no EPC, and is read as a code.
bool HasEpc96Header(std::string_view hex) {
  static constexpr std::string_view kHeaders[] = {"2C", "2D", "2F", "30", "31", "32",
                                                  "33", "34", "35", "3C", "3F"};
  for (std::string_view h : kHeaders) {
    if (EqualsNoCase(hex.substr(0, 2), h)) return true;
  }
  return false;
}

bool AllHex(std::string_view s) {
  for (char c : s) {
    if (!epc::IsHexDigit(c)) return false;
  }
  return !s.empty();
}

std::string UpperCased(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = Upper(c);
  return out;
}

Status AsMalformed(const Status& status) {
  return Status::Malformed(status.message());
}

// Checks an AI (8003) value: "0", 12 digits, the check digit, then up to 16
// characters of serial (GS1 General Specifications, AI 8003: N14 + X..16).
Result<ScanKey> GraiFromAiValue(std::string_view value) {
  if (value.size() < kGraiDigits) {
    return Status::Malformed("GRAI is " + std::to_string(value.size()) +
                             " characters; AI (8003) needs 14 digits (a 0, 12 digits, a check "
                             "digit) before the serial");
  }
  for (std::size_t i = 0; i < kGraiDigits; ++i) {
    if (!epc::IsDigit(value[i])) {
      return Status::Malformed("GRAI has " + epc::DescribeChar(value[i]) + " at position " +
                               std::to_string(i) + " where a digit belongs");
    }
  }
  if (value[0] != '0') {
    return Status::Malformed("GRAI must start with the filler digit 0, not " +
                             epc::DescribeChar(value[0]));
  }
  const char expected = epc::Gs1CheckDigit(value.substr(0, kGraiDigits - 1));
  if (value[kGraiDigits - 1] != expected) {
    return Status::Malformed(std::string("GRAI check digit is ") + value[kGraiDigits - 1] +
                             ", expected " + expected);
  }
  const std::string_view serial = value.substr(kGraiDigits);
  if (serial.size() > kMaxGraiSerialChars) {
    return Status::Malformed("GRAI serial is " + std::to_string(serial.size()) +
                             " characters; the longest is 16");
  }
  for (std::size_t i = 0; i < serial.size(); ++i) {
    if (!epc::IsCset82(serial[i])) {
      return Status::Malformed("GRAI serial has " + epc::DescribeChar(serial[i]) + " at position " +
                               std::to_string(i) + "; only GS1 AI characters are allowed");
    }
  }
  return ScanKey{ScanKind::kGrai, "GRAI:" + std::string(value)};
}

// GS1 data as a GS1 symbology carries it: AI digits then value, FNC1 (GS) ending a
// variable-length value. Only a GRAI is a carrier, so AI (8003) must come first;
// what follows its GS (other AIs) says nothing about identity and is ignored.
Result<ScanKey> ParseGs1Data(std::string_view data) {
  if (data.substr(0, kGraiAi.size()) != kGraiAi) {
    return Status::Malformed("GS1 element string does not start with AI (8003), a GRAI");
  }
  std::string_view value = data.substr(kGraiAi.size());
  value = value.substr(0, value.find(kGroupSeparator));
  return GraiFromAiValue(value);
}

// "(ai)" at `pos`: the AI digits, or empty when `pos` does not start one.
std::string_view BracketedAiAt(std::string_view s, std::size_t pos) {
  if (pos >= s.size() || s[pos] != '(') return {};
  std::size_t close = pos + 1;
  while (close < s.size() && close - pos <= 4 && epc::IsDigit(s[close])) ++close;
  const std::size_t digits = close - pos - 1;
  if (close >= s.size() || s[close] != ')' || digits < 2 || digits > 4) return {};
  return s.substr(pos + 1, digits);
}

// "(8003)0061414112345232a/b(21)x": human-readable element strings. A value ends
// where the next "(digits)" begins, so a serial may still hold a lone '('.
Result<ScanKey> ParseBracketed(std::string_view s) {
  std::size_t pos = 0;
  while (pos < s.size()) {
    const std::string_view ai = BracketedAiAt(s, pos);
    if (ai.empty()) {
      return Status::Malformed("bracketed element string has no (AI) at position " +
                               std::to_string(pos));
    }
    std::size_t start = pos + ai.size() + 2;
    // Human-readable text often puts a space after the AI.
    while (start < s.size() && s[start] == ' ') ++start;
    std::size_t end = start;
    while (end < s.size() && s[end] != kGroupSeparator && BracketedAiAt(s, end).empty()) ++end;
    if (ai == kGraiAi) return GraiFromAiValue(s.substr(start, end - start));
    pos = end;
    if (pos < s.size() && s[pos] == kGroupSeparator) ++pos;
  }
  return Status::Malformed("element string has no AI (8003), so no GRAI");
}

// A bare "8003..." is only taken for a GRAI when it is a valid one; otherwise it is
// left to the code rules, so digit codes starting 8003 keep working.
bool IsValidBareGrai(std::string_view s) {
  return s.substr(0, kGraiAi.size()) == kGraiAi && ParseGs1Data(s).ok();
}

Result<ScanKey> ParseUid(std::string_view hex) {
  for (std::size_t i = 0; i < hex.size(); ++i) {
    if (!epc::IsHexDigit(hex[i])) {
      return Status::Malformed("UID has " + epc::DescribeChar(hex[i]) + " at position " +
                               std::to_string(i) + "; only 0-9 and A-F are hex digits");
    }
  }
  if (hex.size() < kMinUidHexDigits || hex.size() > kMaxUidHexDigits || hex.size() % 2 != 0) {
    return Status::Malformed("a tag UID is 4 to 16 bytes (8 to 32 hex digits, even), got " +
                             std::to_string(hex.size()) + " hex digits");
  }
  return ScanKey{ScanKind::kUid, "UID:" + UpperCased(hex)};
}

Result<ScanKey> CodeKey(std::string_view text) {
  Result<std::string> code = NormaliseCode(text);
  if (!code.ok()) return AsMalformed(code.status());
  return ScanKey{ScanKind::kCode, std::move(code).value()};
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t at = s.find(sep, start);
    if (at == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, at - start));
    start = at + 1;
  }
}

// http(s) URLs: a GS1 Digital Link with a /8003/{value} path, else a public-page
// link whose code= query value, else last path segment, is the cylinder code.
Result<ScanKey> ParseUrl(std::string_view url) {
  std::string_view rest = url.substr(url.find("://") + 3);
  rest = rest.substr(0, rest.find('#'));
  const std::size_t question = rest.find('?');
  const std::string_view query =
      question == std::string_view::npos ? std::string_view() : rest.substr(question + 1);
  const std::string_view authority_and_path = rest.substr(0, question);
  const std::size_t slash = authority_and_path.find('/');
  const std::vector<std::string_view> segments =
      slash == std::string_view::npos ? std::vector<std::string_view>()
                                      : Split(authority_and_path.substr(slash + 1), '/');

  // Digital Link first: /8003/ followed by a value cannot be a public-page path.
  for (std::size_t i = 0; i + 1 < segments.size(); ++i) {
    if (segments[i] != kGraiAi || segments[i + 1].empty()) continue;
    std::optional<std::string> value = epc::PercentDecode(segments[i + 1], false);
    if (!value) return Status::Malformed("Digital Link GRAI has a broken %-escape");
    Result<ScanKey> key = GraiFromAiValue(*value);
    if (!key.ok()) return Status::Malformed("Digital Link: " + key.status().message());
    return key;
  }

  if (!query.empty()) {
    for (std::string_view param : Split(query, '&')) {
      const std::size_t eq = param.find('=');
      if (eq == std::string_view::npos || !EqualsNoCase(param.substr(0, eq), "code")) continue;
      std::optional<std::string> value = epc::PercentDecode(param.substr(eq + 1), true);
      if (!value) return Status::Malformed("URL code= value has a broken %-escape");
      if (Trim(*value).empty()) continue;
      Result<ScanKey> key = CodeKey(*value);
      if (!key.ok()) return Status::Malformed("URL code= value: " + key.status().message());
      return key;
    }
  }

  for (auto it = segments.rbegin(); it != segments.rend(); ++it) {
    if (it->empty()) continue;
    std::optional<std::string> value = epc::PercentDecode(*it, false);
    if (!value) return Status::Malformed("URL path has a broken %-escape");
    Result<ScanKey> key = CodeKey(*value);
    if (!key.ok()) return Status::Malformed("URL path: " + key.status().message());
    return key;
  }
  return Status::Malformed("URL has no code in it: no code= value and no path");
}

// One trimmed, non-empty scan with any AIM symbology identifier removed. Forms that
// announce themselves (prefix, bracket, scheme) come first; the guessed ones (bare
// GRAI, bare hex) next, most specific first; plain code text last.
Result<ScanKey> ParseForm(std::string_view s) {
  if (s.front() == kGroupSeparator) return ParseGs1Data(s.substr(1));
  if (s.front() == '(') return ParseBracketed(s);
  if (StartsWithNoCase(s, "http://") || StartsWithNoCase(s, "https://")) return ParseUrl(s);
  if (StartsWithNoCase(s, "urn:epc:")) {
    PINGMA_ASSIGN_OR_RETURN(std::string value, epc::GraiValueFromEpcUri(s));
    return ScanKey{ScanKind::kGrai, "GRAI:" + value};
  }
  if (StartsWithNoCase(s, "EPC:")) return epc::DecodeEpcHex(Trim(s.substr(4)));
  if (StartsWithNoCase(s, "UID:")) return ParseUid(Trim(s.substr(4)));
  if (StartsWithNoCase(s, "GRAI:")) return GraiFromAiValue(Trim(s.substr(5)));

  // Before bare hex: a 24-digit GRAI would also pass for an EPC with header 0x80,
  // which no current TDS scheme uses.
  if (IsValidBareGrai(s)) return ParseGs1Data(s);
  if (AllHex(s)) {
    if ((s.size() == kBareGrai96HexDigits && HasEpc96Header(s)) ||
        (s.size() == kBareGrai170HexDigits && s.substr(0, 2) == kGrai170HeaderHex)) {
      return epc::DecodeEpcHex(s);
    }
    if (s.size() == kIso15693UidHexDigits && StartsWithNoCase(s, kIso15693UidStart)) {
      return ParseUid(s);
    }
  }
  return CodeKey(s);
}

Result<ScanKey> ParseScanUnguarded(std::string_view raw) {
  if (raw.size() > kMaxScanBytes) {
    return Status::Malformed("scan is " + std::to_string(raw.size()) +
                             " bytes; the longest accepted is 4096");
  }
  std::string_view s = Trim(raw);
  if (s.empty()) return Status::Malformed("empty scan");

  // AIM symbology identifier ("]" + symbology + modifier), sent by scanners set to
  // report it. ]Q3, ]C1 and ]d2 mean GS1 data (QR, Code 128, Data Matrix with FNC1);
  // any other just names the barcode type and is dropped.
  if (s.size() >= 3 && s[0] == ']') {
    const std::string_view aim = s.substr(0, 3);
    const std::string_view data = s.substr(3);
    if (aim == "]Q3" || aim == "]C1" || aim == "]d2") {
      if (!data.empty() && data.front() == '(') return ParseBracketed(data);
      if (!data.empty() && data.front() == kGroupSeparator) return ParseGs1Data(data.substr(1));
      return ParseGs1Data(data);
    }
    s = Trim(data);
    if (s.empty()) return Status::Malformed("scan holds only a symbology identifier");
  }
  return ParseForm(s);
}

}  // namespace

const char* ToString(ScanKind kind) {
  switch (kind) {
    case ScanKind::kCode:
      return "code";
    case ScanKind::kGrai:
      return "grai";
    case ScanKind::kEpc:
      return "epc";
    case ScanKind::kUid:
      return "uid";
  }
  return "unknown";
}

Result<ScanKey> ParseScan(std::string_view raw) {
  // Only allocation can throw in here, and no exception may leave the module. The
  // message is short enough for the small-string buffer, so building it cannot throw.
  try {
    Result<ScanKey> key = ParseScanUnguarded(raw);
    if (key.ok() && key->kind != ScanKind::kCode) {
      // Only bare text passes as a code too: prefixed, bracketed and URL forms hold
      // characters that no code may contain.
      Result<std::string> code = NormaliseCode(raw);
      if (code.ok()) key->also_code = *code;
    }
    return key;
  } catch (const std::exception&) {
    return Status::Internal("out of memory");
  }
}

Result<std::string> NormaliseCode(std::string_view raw) {
  try {
    const std::string_view s = Trim(raw);
    if (s.empty()) return Status::Invalid("code is empty");
    if (s.size() > kMaxCodeChars) {
      return Status::Invalid("code is " + std::to_string(s.size()) +
                             " characters; the longest is 64");
    }
    std::string code;
    code.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
      const char c = Upper(s[i]);
      const bool allowed =
          (c >= 'A' && c <= 'Z') || epc::IsDigit(c) || c == '-' || c == '_' || c == '.';
      if (!allowed) {
        return Status::Invalid("code has " + epc::DescribeChar(s[i]) + " at position " +
                               std::to_string(i) + "; a code is A-Z 0-9 - _ . only");
      }
      code.push_back(c);
    }
    return code;
  } catch (const std::exception&) {
    return Status::Internal("out of memory");
  }
}

Result<std::string> NormaliseCarrier(std::string_view raw) {
  try {
    PINGMA_ASSIGN_OR_RETURN(ScanKey key, ParseScan(raw));
    if (key.kind == ScanKind::kCode) {
      return Status::Invalid("a carrier must be an EPC, UID or GRAI; " + key.text +
                             " is a plain code");
    }
    return std::move(key.text);
  } catch (const std::exception&) {
    return Status::Internal("out of memory");
  }
}

}  // namespace pingma
