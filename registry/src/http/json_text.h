// Writing JSON text directly, for the hot path of fill checks, where building a
// nlohmann::json tree only to print it costs more than the rest of the answer.
// The text is the same as nlohmann's dump() gives: keys in the order written,
// numbers in the shortest form that reads back exactly, strings escaped.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace pingma::registry {

/// Appends `s` as a JSON string literal. `s` is UTF-8 (bodies are checked when
/// parsed); bytes from 0x80 up are copied as they are.
inline void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      default:
        if (c < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
          out->append(escaped);
        } else {
          out->push_back(ch);
        }
    }
  }
  out->push_back('"');
}

/// Appends a finite number as JSON; integral values keep a ".0", as nlohmann
/// writes them.
inline void AppendJsonNumber(std::string* out, double v) {
  const size_t start = out->size();
  fmt::format_to(std::back_inserter(*out), "{}", v);
  if (out->find_first_of(".eE", start) == std::string::npos) out->append(".0");
}

/// Appends `"key":`.
inline void AppendJsonKey(std::string* out, std::string_view key) {
  AppendJsonString(out, key);
  out->push_back(':');
}

}  // namespace pingma::registry
