// GRAI-96 / GRAI-170 decoding and GRAI EPC URIs per the GS1 EPC Tag Data Standard
// (TDS). The bit layouts and field limits match GS1's machine-readable Tag Data
// Translation files (ref.gs1.org/standards/tdt/2.0.0/GRAI-96.xml, GRAI-170.xml).
#include "epc.h"

#include <array>
#include <cstdint>
#include <string>
#include <utility>

namespace pingma::epc {
namespace {

constexpr int kHeaderBits = 8;
constexpr int kFilterBits = 3;
constexpr int kPartitionBits = 3;
// Company prefix and asset type share 44 bits and 12 digits in every partition.
constexpr int kPrefixAndAssetBits = 44;
constexpr int kPrefixAndAssetDigits = 12;
constexpr int kPartitionStart = kHeaderBits + kFilterBits;
constexpr int kPrefixStart = kPartitionStart + kPartitionBits;
constexpr int kSerialStart = kPrefixStart + kPrefixAndAssetBits;  // 58 in both schemes

constexpr unsigned kGrai96Header = 0x33;
constexpr std::size_t kGrai96HexDigits = 24;
constexpr int kGrai96SerialBits = 38;
constexpr std::uint64_t kGrai96MaxSerial = (std::uint64_t{1} << kGrai96SerialBits) - 1;

constexpr unsigned kGrai170Header = 0x37;
// 170 bits need 43 digits; a tag's EPC bank is word aligned, so a reader reports 44.
constexpr std::size_t kGrai170MinHexDigits = 43;
constexpr std::size_t kGrai170MaxHexDigits = 44;
constexpr int kGrai170SerialChars = 16;
constexpr int kGrai170CharBits = 7;

constexpr std::size_t kMaxSerialChars = 16;  // AI (8003): N14 + X..16

struct Partition {
  int prefix_bits;
  int prefix_digits;
  int asset_bits;
  int asset_digits;
};

// The TDS GRAI partition table, indexed by the partition value.
constexpr std::array<Partition, 7> kPartitions = {{
    {40, 12, 4, 0},
    {37, 11, 7, 1},
    {34, 10, 10, 2},
    {30, 9, 14, 3},
    {27, 8, 17, 4},
    {24, 7, 20, 5},
    {20, 6, 24, 6},
}};

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

char UpperHex(char c) {
  return (c >= 'a' && c <= 'f') ? static_cast<char>(c - 'a' + 'A') : c;
}

// Big-endian bit fields over validated hex digits. Callers keep every read inside
// the digits they have, and no field is wider than 64 bits.
class BitReader {
 public:
  explicit BitReader(std::string_view hex) : hex_(hex) {}

  std::uint64_t Read(std::size_t pos, int count) const {
    std::uint64_t value = 0;
    for (int i = 0; i < count; ++i) {
      const std::size_t bit = pos + static_cast<std::size_t>(i);
      const int nibble = HexValue(hex_[bit / 4]);
      value = (value << 1) | static_cast<std::uint64_t>((nibble >> (3 - bit % 4)) & 1);
    }
    return value;
  }

 private:
  std::string_view hex_;
};

std::uint64_t Pow10(int n) {
  std::uint64_t p = 1;
  for (int i = 0; i < n; ++i) p *= 10;
  return p;
}

std::string ZeroPadded(std::uint64_t value, int digits) {
  if (digits == 0) return "";
  std::string s = std::to_string(value);
  if (s.size() < static_cast<std::size_t>(digits)) {
    s.insert(0, static_cast<std::size_t>(digits) - s.size(), '0');
  }
  return s;
}

// "0" + company prefix + asset type + check digit: the first 14 digits of AI (8003).
std::string GraiBody(std::string_view prefix_and_asset) {
  std::string body = "0";
  body.append(prefix_and_asset);
  body.push_back(Gs1CheckDigit(body));
  return body;
}

// The 12 digits of company prefix and asset type of a GRAI-96 or GRAI-170.
Result<std::string> DecodePrefixAndAsset(const BitReader& bits, const char* scheme) {
  const auto partition = static_cast<int>(bits.Read(kPartitionStart, kPartitionBits));
  if (partition >= static_cast<int>(kPartitions.size())) {
    return Status::Malformed(std::string(scheme) + " partition value " + std::to_string(partition) +
                             " is out of range (0-6)");
  }
  const Partition& p = kPartitions[static_cast<std::size_t>(partition)];
  const std::uint64_t prefix = bits.Read(kPrefixStart, p.prefix_bits);
  const std::uint64_t asset = bits.Read(kPrefixStart + p.prefix_bits, p.asset_bits);
  // The bit fields can hold more than their digits: such a tag was written wrong and
  // would decode to a GRAI with too many digits, so it names no asset.
  if (prefix >= Pow10(p.prefix_digits)) {
    return Status::Malformed(std::string(scheme) + " company prefix " + std::to_string(prefix) +
                             " exceeds the " + std::to_string(p.prefix_digits) +
                             " digits of partition " + std::to_string(partition));
  }
  if (asset >= Pow10(p.asset_digits)) {
    return Status::Malformed(std::string(scheme) + " asset type " + std::to_string(asset) +
                             " exceeds the " + std::to_string(p.asset_digits) +
                             " digits of partition " + std::to_string(partition));
  }
  return ZeroPadded(prefix, p.prefix_digits) + ZeroPadded(asset, p.asset_digits);
}

Result<ScanKey> DecodeGrai96(std::string_view hex) {
  if (hex.size() != kGrai96HexDigits) {
    return Status::Malformed("a GRAI-96 EPC (header 33) is 24 hex digits, got " +
                             std::to_string(hex.size()));
  }
  const BitReader bits(hex);
  PINGMA_ASSIGN_OR_RETURN(std::string digits, DecodePrefixAndAsset(bits, "GRAI-96"));
  // Serial is an integer, so its decimal form has no leading zeros by construction.
  const std::uint64_t serial = bits.Read(kSerialStart, kGrai96SerialBits);
  return ScanKey{ScanKind::kGrai, "GRAI:" + GraiBody(digits) + std::to_string(serial)};
}

Result<ScanKey> DecodeGrai170(std::string_view hex) {
  if (hex.size() < kGrai170MinHexDigits || hex.size() > kGrai170MaxHexDigits) {
    return Status::Malformed("a GRAI-170 EPC (header 37) is 43 or 44 hex digits, got " +
                             std::to_string(hex.size()));
  }
  const BitReader bits(hex);
  PINGMA_ASSIGN_OR_RETURN(std::string digits, DecodePrefixAndAsset(bits, "GRAI-170"));

  std::string serial;
  bool ended = false;
  for (int i = 0; i < kGrai170SerialChars; ++i) {
    const std::size_t pos = kSerialStart + static_cast<std::size_t>(i * kGrai170CharBits);
    const auto c = static_cast<char>(bits.Read(pos, kGrai170CharBits));
    if (c == 0) {
      ended = true;
      continue;
    }
    // The string ends at the first all-zero character and the encoder pads the
    // rest with zeros, so anything after it means a corrupt or foreign tag.
    if (ended) {
      return Status::Malformed("GRAI-170 serial has a non-zero character after its end");
    }
    if (!IsCset82(c)) {
      return Status::Malformed("GRAI-170 serial has " + DescribeChar(c) + " at position " +
                               std::to_string(i) + ", not a GS1 AI character");
    }
    serial.push_back(c);
  }
  if (serial.empty()) return Status::Malformed("GRAI-170 serial is empty");
  return ScanKey{ScanKind::kGrai, "GRAI:" + GraiBody(digits) + serial};
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

bool AllDigits(std::string_view s) {
  for (char c : s) {
    if (!IsDigit(c)) return false;
  }
  return true;
}

// Splits "a.b.c" into exactly `n` parts at the first n-1 dots; the last part (the
// serial) may hold dots of its own.
template <std::size_t N>
bool SplitDots(std::string_view s, std::array<std::string_view, N>& parts) {
  for (std::size_t i = 0; i + 1 < N; ++i) {
    const std::size_t dot = s.find('.');
    if (dot == std::string_view::npos) return false;
    parts[i] = s.substr(0, dot);
    s.remove_prefix(dot + 1);
  }
  parts[N - 1] = s;
  return true;
}

Result<std::string> PrefixAndAssetFromUri(std::string_view prefix, std::string_view asset) {
  if (prefix.size() < 6 || prefix.size() > 12 || !AllDigits(prefix)) {
    return Status::Malformed("EPC URI company prefix must be 6 to 12 digits");
  }
  if (!AllDigits(asset) || prefix.size() + asset.size() != kPrefixAndAssetDigits) {
    return Status::Malformed(
        "EPC URI asset type must be " + std::to_string(kPrefixAndAssetDigits - prefix.size()) +
        " digits after a " + std::to_string(prefix.size()) + "-digit company prefix");
  }
  std::string digits(prefix);
  digits.append(asset);
  return digits;
}

// A TDS GS3A3 URI component: CSET 82 characters, some of them %-escaped.
Result<std::string> SerialFromUri(std::string_view component) {
  std::optional<std::string> serial = PercentDecode(component, /*plus_is_space=*/false);
  if (!serial) return Status::Malformed("EPC URI serial has a broken %-escape");
  if (serial->empty()) return Status::Malformed("EPC URI serial is empty");
  if (serial->size() > kMaxSerialChars) {
    return Status::Malformed("EPC URI serial is " + std::to_string(serial->size()) +
                             " characters; the longest is 16");
  }
  for (char c : *serial) {
    if (!IsCset82(c)) {
      return Status::Malformed("EPC URI serial has " + DescribeChar(c) +
                               ", not a GS1 AI character");
    }
  }
  return std::move(*serial);
}

}  // namespace

bool IsHexDigit(char c) {
  return HexValue(c) >= 0;
}

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

bool IsCset82(char c) {
  // ! " % & ' ( ) * + , - . / 0-9 : ; < = > ? A-Z _ a-z
  return c == '!' || c == '"' || (c >= '%' && c <= '?') || (c >= 'A' && c <= 'Z') || c == '_' ||
         (c >= 'a' && c <= 'z');
}

char Gs1CheckDigit(std::string_view digits) {
  int sum = 0;
  int weight = 3;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    sum += (*it - '0') * weight;
    weight = 4 - weight;
  }
  return static_cast<char>('0' + (10 - sum % 10) % 10);
}

std::string DescribeChar(char c) {
  const auto byte = static_cast<unsigned char>(c);
  if (byte > 0x20 && byte < 0x7F) return std::string("'") + c + "'";
  if (byte == 0x20) return "a space";
  static constexpr char kHex[] = "0123456789ABCDEF";
  return std::string("byte 0x") + kHex[byte >> 4] + kHex[byte & 0xF];
}

std::optional<std::string> PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int hi = HexValue(text[i + 1]);
      const int lo = HexValue(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Result<ScanKey> DecodeEpcHex(std::string_view hex) {
  for (std::size_t i = 0; i < hex.size(); ++i) {
    if (!IsHexDigit(hex[i])) {
      return Status::Malformed("EPC hex has " + DescribeChar(hex[i]) + " at position " +
                               std::to_string(i) + "; only 0-9 and A-F are hex digits");
    }
  }
  if (hex.size() < kMinEpcHexDigits || hex.size() > kMaxEpcHexDigits) {
    return Status::Malformed("an EPC is 16 to 124 hex digits, got " + std::to_string(hex.size()));
  }
  const auto header = static_cast<unsigned>(BitReader(hex).Read(0, kHeaderBits));
  if (header == kGrai96Header) return DecodeGrai96(hex);
  if (header == kGrai170Header) return DecodeGrai170(hex);
  std::string text = "EPC:";
  for (char c : hex) text.push_back(UpperHex(c));
  return ScanKey{ScanKind::kEpc, std::move(text)};
}

Result<std::string> GraiValueFromEpcUri(std::string_view uri) {
  constexpr std::string_view kIdUri = "urn:epc:id:grai:";
  constexpr std::string_view kTag96Uri = "urn:epc:tag:grai-96:";
  constexpr std::string_view kTag170Uri = "urn:epc:tag:grai-170:";

  std::string_view prefix;
  std::string_view asset;
  std::string_view serial_text;
  bool numeric_serial = false;
  if (StartsWithNoCase(uri, kIdUri)) {
    std::array<std::string_view, 3> parts;
    if (!SplitDots(uri.substr(kIdUri.size()), parts)) {
      return Status::Malformed("a GRAI identity URI is urn:epc:id:grai:Prefix.AssetType.Serial");
    }
    prefix = parts[0];
    asset = parts[1];
    serial_text = parts[2];
  } else if (StartsWithNoCase(uri, kTag96Uri) || StartsWithNoCase(uri, kTag170Uri)) {
    numeric_serial = StartsWithNoCase(uri, kTag96Uri);
    const std::size_t skip = numeric_serial ? kTag96Uri.size() : kTag170Uri.size();
    std::array<std::string_view, 4> parts;
    if (!SplitDots(uri.substr(skip), parts)) {
      return Status::Malformed(
          "a GRAI tag URI is urn:epc:tag:grai-96:Filter.Prefix.AssetType.Serial");
    }
    // The filter only steers readers; it is no part of the asset's identity.
    if (parts[0].size() != 1 || parts[0][0] < '0' || parts[0][0] > '7') {
      return Status::Malformed("EPC tag URI filter must be one digit 0-7");
    }
    prefix = parts[1];
    asset = parts[2];
    serial_text = parts[3];
  } else {
    return Status::Malformed(
        "only GRAI EPC URIs (urn:epc:id:grai, urn:epc:tag:grai-96, "
        "urn:epc:tag:grai-170) are accepted; scan the tag's hex instead");
  }

  PINGMA_ASSIGN_OR_RETURN(std::string digits, PrefixAndAssetFromUri(prefix, asset));
  PINGMA_ASSIGN_OR_RETURN(std::string serial, SerialFromUri(serial_text));
  if (numeric_serial) {
    // A GRAI-96 serial is a 38-bit integer written without leading zeros; anything
    // else cannot be on a GRAI-96 tag.
    const std::string& s = serial;
    std::uint64_t value = 0;
    for (char c : s) value = value * 10 + static_cast<std::uint64_t>(c - '0');
    if (!AllDigits(s) || (s.size() > 1 && s[0] == '0') || s.size() > 12 ||
        value > kGrai96MaxSerial) {
      return Status::Malformed(
          "a GRAI-96 serial is a number from 0 to 274877906943 "
          "without leading zeros");
    }
  }
  return GraiBody(digits) + serial;
}

}  // namespace pingma::epc
