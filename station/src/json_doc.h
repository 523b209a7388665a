// A JSON text checked in full and indexed in one pass, without building a tree of
// its values: the fleet feed's pages (2 MB, 5,000 cylinders each) are read through
// it, six times as fast as nlohmann's parser builds its tree, which is mostly
// allocation. It takes the texts nlohmann::json::parse takes (RFC 8259, a UTF-8
// byte order mark allowed before the value, strict UTF-8 and paired surrogates in
// strings, no number beyond a double's range), with one exception: nlohmann's
// lexer takes a NUL byte for the end of the text, so that "0\0x" passes there and
// not here (no JSON text holds a NUL). A differential fuzz harness checks that,
// and that every value reads back as nlohmann reads it.
//
// A JsonValue is a handle into its JsonDoc: it must not outlive it. A JsonDoc may
// be moved (handles taken before are then invalid). Nothing here throws.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pingma/common/status.h"

namespace pingma::station {

class JsonDoc;

class JsonValue {
 public:
  enum class Kind : std::uint8_t { kNull, kFalse, kTrue, kNumber, kString, kArray, kObject };

  Kind kind() const;
  bool is_object() const { return kind() == Kind::kObject; }
  bool is_array() const { return kind() == Kind::kArray; }
  bool is_string() const { return kind() == Kind::kString; }
  bool is_null() const { return kind() == Kind::kNull; }

  /// The value's text as it stands in the document, without the space around it.
  std::string_view Text() const;
  /// The members of an object or the elements of an array; 0 for anything else.
  std::size_t size() const;

  /// An object's member of that name (the last one, when a name is repeated, as a
  /// parser keeps it); nullopt when there is none or this is not an object.
  std::optional<JsonValue> Find(std::string_view name) const;
  /// Several members of an object in one pass over it: out[k] is the member
  /// named names[k] (the last, as for Find), or nullopt. For reading many fields
  /// of one object; fastest when `names` is in the order the object has them.
  void FindAll(const std::string_view* names, std::size_t count,
               std::optional<JsonValue>* out) const;
  /// An array's elements in order; empty for anything else.
  std::vector<JsonValue> Elements() const;
  /// An object's members in order, their names decoded; empty for anything else.
  std::vector<std::pair<std::string, JsonValue>> Members() const;

  /// A string's value, its escapes decoded; nullopt when this is not a string.
  std::optional<std::string> String() const;
  /// A number's value as strtod gives it (a magnitude too small is zero);
  /// nullopt when this is not a number.
  std::optional<double> Number() const;
  /// A number written as an integer (no fraction, no exponent) that fits in
  /// 64 bits; nullopt for anything else.
  std::optional<std::int64_t> Integer() const;
  /// true or false; nullopt for anything else.
  std::optional<bool> Bool() const;

 private:
  friend class JsonDoc;
  JsonValue(const JsonDoc* doc, std::uint32_t node) : doc_(doc), node_(node) {}
  // The string at `node` (a value or a member's name) equals `text`.
  bool StringEquals(std::uint32_t node, std::string_view text) const;

  const JsonDoc* doc_;
  std::uint32_t node_;
};

class JsonDoc {
 public:
  /// Checks `text` and indexes its values. kMalformed, naming what was wrong and
  /// the byte offset where, for anything a JSON parser refuses.
  static Result<JsonDoc> Parse(std::string text);
  /// The document `null`.
  JsonDoc();

  JsonValue Root() const { return JsonValue(this, 0); }
  const std::string& text() const { return text_; }

 private:
  friend class JsonValue;
  friend class JsonParser;
  // One per value and per member name, in document order: a container's
  // contents follow it, up to `next`, the node after all it holds.
  struct Node {
    std::uint32_t begin = 0;  // offset of its first byte
    std::uint32_t end = 0;    // offset after its last byte
    std::uint32_t next = 0;   // the node after it and all it holds
    std::uint32_t count = 0;  // members or elements of a container
    JsonValue::Kind kind = JsonValue::Kind::kNull;
    bool escaped = false;  // a string with a backslash in it
  };

  std::string text_;
  std::vector<Node> nodes_;
};

}  // namespace pingma::station
