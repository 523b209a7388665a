#include "http/fields.h"

#include <fmt/format.h>

namespace pingma::registry {
namespace {

Status Missing(const char* key) {
  return Status::Invalid(fmt::format("the field '{}' is required", key));
}

Status WrongType(const char* key, const char* expected) {
  return Status::Invalid(fmt::format("the field '{}' must be {}", key, expected));
}

// Finds `key`; null counts as absent.
const json* Find(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

template <typename T, typename Parse>
Status GetParsed(const json& obj, const char* key, Need need, std::optional<T>* out, Parse parse) {
  std::optional<std::string> text;
  PINGMA_RETURN_IF_ERROR(GetString(obj, key, need, &text, 64));
  if (!text) return Status::Ok();
  auto value = parse(*text);
  if (!value.ok()) {
    return Status::Invalid(fmt::format("the field '{}': {}", key, value.status().message()));
  }
  *out = *value;
  return Status::Ok();
}

}  // namespace

Status GetObject(const json& obj, const char* key, Need need, const json** out) {
  *out = Find(obj, key);
  if (*out == nullptr) return need == Need::kRequired ? Missing(key) : Status::Ok();
  if (!(*out)->is_object()) return WrongType(key, "an object");
  return Status::Ok();
}

Status GetLatLon(const json& obj, const char* key, std::optional<std::pair<double, double>>* out) {
  const json* place = nullptr;
  PINGMA_RETURN_IF_ERROR(GetObject(obj, key, Need::kOptional, &place));
  if (place == nullptr) return Status::Ok();
  std::optional<double> lat, lon;
  PINGMA_RETURN_IF_ERROR(GetNumber(*place, "lat", Need::kRequired, &lat));
  PINGMA_RETURN_IF_ERROR(GetNumber(*place, "lon", Need::kRequired, &lon));
  if (!(*lat >= -90 && *lat <= 90 && *lon >= -180 && *lon <= 180)) {
    return Status::Invalid(fmt::format("{} must have lat in -90..90 and lon in -180..180", key));
  }
  *out = std::pair{*lat, *lon};
  return Status::Ok();
}

bool ParseWhole(std::string_view text, std::int64_t min, std::int64_t max, std::int64_t* out) {
  if (text.empty() || text.size() > 18) return false;
  std::int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  if (value < min || value > max) return false;
  *out = value;
  return true;
}

Result<json> ParseBody(std::string_view text) {
  json body = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return Status::Malformed("the request body is not valid JSON");
  if (!body.is_object()) return Status::Invalid("the request body must be a JSON object");
  return body;
}

Status GetString(const json& obj, const char* key, Need need, std::optional<std::string>* out,
                 size_t max_len) {
  std::optional<std::string> text;
  PINGMA_RETURN_IF_ERROR(GetScanText(obj, key, need, &text, max_len));
  if (!text) return Status::Ok();
  PINGMA_RETURN_IF_ERROR(CheckText(key, *text));
  *out = std::move(text);
  return Status::Ok();
}

Status GetScanText(const json& obj, const char* key, Need need, std::optional<std::string>* out,
                   size_t max_len) {
  const json* v = Find(obj, key);
  if (!v) return need == Need::kRequired ? Missing(key) : Status::Ok();
  if (!v->is_string()) return WrongType(key, "a string");
  const auto& s = v->get_ref<const std::string&>();
  if (s.size() > max_len) {
    return Status::Invalid(fmt::format("the field '{}' is longer than {} bytes", key, max_len));
  }
  if (need == Need::kRequired && s.empty()) {
    return Status::Invalid(fmt::format("the field '{}' must not be empty", key));
  }
  *out = s;
  return Status::Ok();
}

Utf8Char DecodeUtf8(std::string_view text, size_t i) {
  const auto b = static_cast<unsigned char>(text[i]);
  const size_t len = b < 0x80             ? 1
                     : (b & 0xe0) == 0xc0 ? 2
                     : (b & 0xf0) == 0xe0 ? 3
                     : (b & 0xf8) == 0xf0 ? 4
                                          : 0;
  if (len == 0 || i + len > text.size()) return {};
  char32_t cp = len == 1 ? b : b & (0x7f >> len);
  for (size_t k = 1; k < len; ++k) {
    const auto c = static_cast<unsigned char>(text[i + k]);
    if ((c & 0xc0) != 0x80) return {};
    cp = (cp << 6) | (c & 0x3f);
  }
  static constexpr char32_t kMinOfLength[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMinOfLength[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return {};
  return {cp, len};
}

std::optional<char32_t> ControlIn(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const auto [cp, len] = DecodeUtf8(text, i);
    if (len == 0) return U'\uFFFD';
    if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
        (cp >= 0x2066 && cp <= 0x2069)) {
      return cp;
    }
    i += len;
  }
  return std::nullopt;
}

Status CheckText(const char* key, std::string_view text) {
  const std::optional<char32_t> c = ControlIn(text);
  if (!c) return Status::Ok();
  return Status::Invalid(
      fmt::format("the field '{}' holds the control character U+{:04X}: text may not hold control "
                  "characters (NUL, ESC, line breaks, tabs, bidirectional overrides)",
                  key, static_cast<std::uint32_t>(*c)));
}

Status GetNumber(const json& obj, const char* key, Need need, std::optional<double>* out) {
  const json* v = Find(obj, key);
  if (!v) return need == Need::kRequired ? Missing(key) : Status::Ok();
  if (!v->is_number()) return WrongType(key, "a number");
  *out = v->get<double>();
  return Status::Ok();
}

Status GetInt(const json& obj, const char* key, Need need, std::optional<int>* out) {
  const json* v = Find(obj, key);
  if (!v) return need == Need::kRequired ? Missing(key) : Status::Ok();
  if (!v->is_number_integer()) return WrongType(key, "a whole number");
  const auto value = v->get<std::int64_t>();
  if (value < -1000000 || value > 1000000) return WrongType(key, "a whole number in range");
  *out = static_cast<int>(value);
  return Status::Ok();
}

Status GetBool(const json& obj, const char* key, Need need, std::optional<bool>* out) {
  const json* v = Find(obj, key);
  if (!v) return need == Need::kRequired ? Missing(key) : Status::Ok();
  if (!v->is_boolean()) return WrongType(key, "true or false");
  *out = v->get<bool>();
  return Status::Ok();
}

Status GetDate(const json& obj, const char* key, Need need, std::optional<Date>* out) {
  return GetParsed(obj, key, need, out, Date::Parse);
}

Status GetYearMonth(const json& obj, const char* key, Need need, std::optional<YearMonth>* out) {
  return GetParsed(obj, key, need, out, YearMonth::Parse);
}

Status GetInstant(const json& obj, const char* key, Need need, std::optional<Instant>* out) {
  return GetParsed(obj, key, need, out, Instant::Parse);
}

Status GetId(const json& obj, const char* key, std::string* out) {
  std::optional<std::string> value;
  PINGMA_RETURN_IF_ERROR(GetString(obj, key, Need::kRequired, &value, 64));
  for (char c : *value) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == ':';
    if (!ok) {
      return Status::Invalid(
          fmt::format("the field '{}' may hold only letters, digits and - _ . :", key));
    }
  }
  *out = *value;
  return Status::Ok();
}

Status GetUuid(const json& obj, const char* key, std::string* out) {
  std::optional<std::string> value;
  PINGMA_RETURN_IF_ERROR(GetString(obj, key, Need::kRequired, &value, 64));
  std::string& v = *value;
  bool ok = v.size() == 36;
  for (size_t i = 0; ok && i < v.size(); ++i) {
    const char c = v[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      ok = c == '-';
    } else if (c >= 'A' && c <= 'F') {
      v[i] = static_cast<char>(c - 'A' + 'a');
    } else {
      ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    }
  }
  if (!ok) {
    return Status::Invalid(fmt::format(
        "the field '{}' must be a UUID, such as 3f2b8c1e-9d4a-4c6e-8b7a-1e2d3c4b5a69", key));
  }
  *out = std::move(v);
  return Status::Ok();
}

}  // namespace pingma::registry
