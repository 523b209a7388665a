// Reading request bodies: each getter checks presence and type and returns a
// Status naming the field, so that every bad input gets a precise 422.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "pingma/common/domain.h"
#include "pingma/common/status.h"

namespace pingma::registry {

using nlohmann::json;

enum class Need { kRequired, kOptional };

/// Parses a request body; not JSON -> kMalformed, not an object -> kInvalid.
Result<json> ParseBody(std::string_view text);

/// A text field; refused when it holds a control character (ControlIn).
Status GetString(const json& obj, const char* key, Need need, std::optional<std::string>* out,
                 size_t max_len = 256);

/// A scanner's line as read (a `scan` field): like GetString, but control
/// characters are the scan parser's to read (GS1's group separator U+001D, a
/// reader's CR LF), not refused here.
Status GetScanText(const json& obj, const char* key, Need need, std::optional<std::string>* out,
                   size_t max_len);

/// The character that starts at `text[i]`: its code point and its length in bytes,
/// the length 0 when the bytes there are not well-formed UTF-8 (cut short, an
/// overlong form, a surrogate, past U+10FFFF).
struct Utf8Char {
  char32_t cp = 0;
  size_t len = 0;
};
Utf8Char DecodeUtf8(std::string_view text, size_t i);

/// The first character of `text` that has no place in a name, an address or a
/// note: C0 controls (NUL, ESC, CR, LF, TAB ...), DEL, C1 controls, and the
/// bidirectional overrides and isolates (U+202A..U+202E, U+2066..U+2069) that make
/// text read otherwise than it is stored; nullopt when there is none. Malformed
/// UTF-8 counts as U+FFFD.
std::optional<char32_t> ControlIn(std::string_view text);
/// 422 naming `key` and the character when `text` holds one.
Status CheckText(const char* key, std::string_view text);
Status GetNumber(const json& obj, const char* key, Need need, std::optional<double>* out);
Status GetInt(const json& obj, const char* key, Need need, std::optional<int>* out);
Status GetBool(const json& obj, const char* key, Need need, std::optional<bool>* out);
Status GetDate(const json& obj, const char* key, Need need, std::optional<Date>* out);
Status GetYearMonth(const json& obj, const char* key, Need need, std::optional<YearMonth>* out);
Status GetInstant(const json& obj, const char* key, Need need, std::optional<Instant>* out);
/// An object-valued field; `*out` is null when it is optional and absent.
Status GetObject(const json& obj, const char* key, Need need, const json** out);
/// An optional place `{lat, lon}` in WGS-84 degrees, as {lat, lon}; unset when absent.
Status GetLatLon(const json& obj, const char* key, std::optional<std::pair<double, double>>* out);

/// A whole number in [min, max] written in decimal digits alone (a query
/// parameter, a cursor); false for anything else.
bool ParseWhole(std::string_view text, std::int64_t min, std::int64_t max, std::int64_t* out);

/// A required UUID (8-4-4-4-12 hex digits, either case), as a client names the
/// records it may send again; given back in lower case.
Status GetUuid(const json& obj, const char* key, std::string* out);
/// A required non-empty identifier (company, station, operator id): 1..64 of
/// [A-Za-z0-9-_.:].
Status GetId(const json& obj, const char* key, std::string* out);

}  // namespace pingma::registry
