// Scan parsing: every form a QR label or RFID tag can yield, normalised to one key.
//
// Pure functions, no I/O, safe from any thread. The registry resolves a key to a
// cylinder code: a kCode key is the code itself; the other kinds are carriers bound
// to a cylinder (see POST /v1/cylinders/{code}/carriers).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "pingma/common/status.h"

namespace pingma {

enum class ScanKind {
  kCode,  ///< a cylinder code: "HB0100000123"
  kGrai,  ///< a GS1 GRAI: "GRAI:" + the AI (8003) value, e.g. "GRAI:00614141123452400"
  kEpc,   ///< any other EPC: "EPC:" + upper-case hex, e.g. "EPC:3074257BF7194E4000001A85"
  kUid,   ///< an HF ISO 15693 tag UID: "UID:" + upper-case hex, e.g. "UID:E004015012345678"
};

const char* ToString(ScanKind kind);  // "code", "grai", "epc", "uid"

struct ScanKey {
  ScanKey() = default;
  ScanKey(ScanKind k, std::string t) : kind(k), text(std::move(t)) {}

  ScanKind kind = ScanKind::kCode;
  std::string text;  ///< the canonical form above; equal keys mean the same carrier
  /// For a carrier guessed from bare text (hex that reads as an EPC or a UID, digits
  /// that read as a GRAI): the same text read as a plain code. A numeric code can
  /// look exactly like a tag, so a registry that finds no such carrier tries this.
  /// Not part of the key's identity.
  std::optional<std::string> also_code;

  friend bool operator==(const ScanKey& a, const ScanKey& b) {
    return a.kind == b.kind && a.text == b.text;
  }
};

/// Normalises one raw scan. Accepted forms (DOMAIN.md "Identity"):
///  - plain code text: trimmed, upper-cased ("hb0100000123 " -> "HB0100000123");
///  - a URL whose `code=` query value, else last path segment, is the code;
///  - a GS1 Digital Link URI with a /8003/ path segment, or a GS1 element string with
///    AI (8003) (bracketed, or after a ]Q3 / ]C1 / ]d2 symbology identifier, or bare
///    with a valid check digit) -> kGrai;
///  - an EPC in hex ("EPC:" prefix optional): GRAI-96 (header 0x33) and GRAI-170
///    (header 0x37) are decoded per the GS1 EPC Tag Data Standard -> kGrai; any other
///    EPC -> kEpc;
///  - "UID:<hex>", or 16 hex digits starting E0 (ISO 15693) -> kUid.
/// Errors (kMalformed) say what was wrong: empty scan, bad check digit, bad hex,
/// a GRAI-96 partition value out of range, a URL with no code in it.
Result<ScanKey> ParseScan(std::string_view raw);

/// A code as registered: trimmed, upper-cased, 1..64 characters of [A-Z0-9-_.];
/// kInvalid otherwise.
Result<std::string> NormaliseCode(std::string_view raw);

/// Normalises a carrier given at registration ("EPC:...", "UID:...", "GRAI:..." or
/// any scan form that is not a plain code) to its canonical key text.
Result<std::string> NormaliseCarrier(std::string_view raw);

}  // namespace pingma
