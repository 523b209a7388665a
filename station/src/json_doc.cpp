#include "json_doc.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace pingma::station {

using Kind = JsonValue::Kind;

namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The four hex digits at `text[i]` as a code unit, or -1.
int Hex4(std::string_view text, std::size_t i) {
  if (text.size() - i < 4) return -1;
  int unit = 0;
  for (std::size_t k = 0; k < 4; ++k) {
    const int digit = HexDigit(text[i + k]);
    if (digit < 0) return -1;
    unit = unit * 16 + digit;
  }
  return unit;
}

void AppendUtf8(std::uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Decodes the inside of a string already checked by the parser (escapes well
// formed, surrogates paired).
std::string Unescape(std::string_view inside) {
  std::string out;
  out.reserve(inside.size());
  for (std::size_t i = 0; i < inside.size(); ++i) {
    const char c = inside[i];
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    const char e = inside[++i];
    switch (e) {
      case 'b':
        out.push_back('\b');
        break;
      case 'f':
        out.push_back('\f');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'r':
        out.push_back('\r');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'u': {
        std::uint32_t cp = static_cast<std::uint32_t>(Hex4(inside, i + 1));
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {  // the low half follows as \uXXXX
          const auto low = static_cast<std::uint32_t>(Hex4(inside, i + 3));
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          i += 6;
        }
        AppendUtf8(cp, &out);
        break;
      }
      default:
        out.push_back(e);
        break;  // " \ /
    }
  }
  return out;
}

}  // namespace

// One pass over the text, without recursion: the containers still open are on a
// stack of their node indexes.
class JsonParser {
 public:
  JsonParser(std::string_view text, std::vector<JsonDoc::Node>* nodes)
      : text_(text), nodes_(*nodes) {}

  Status Run() {
    // nlohmann skips a UTF-8 byte order mark before the value; so does this.
    if (!text_.empty() && text_[0] == '\xEF') {
      if (text_.substr(0, 3) != "\xEF\xBB\xBF") return Fail("a broken byte order mark");
      i_ = 3;
    }
    SkipSpace();
    PINGMA_RETURN_IF_ERROR(Value());
    while (!open_.empty()) {
      SkipSpace();
      const std::uint32_t top = open_.back();
      const bool object = nodes_[top].kind == Kind::kObject;
      const char close = object ? '}' : ']';
      if (i_ >= text_.size()) return Fail(object ? "an object not closed" : "an array not closed");
      const char c = text_[i_];
      if (c == close) {
        ++i_;
        nodes_[top].end = static_cast<std::uint32_t>(i_);
        nodes_[top].next = static_cast<std::uint32_t>(nodes_.size());
        open_.pop_back();
        continue;
      }
      if (nodes_[top].count > 0) {
        if (c != ',') return Fail(object ? "',' or '}' expected" : "',' or ']' expected");
        ++i_;
        SkipSpace();
      }
      ++nodes_[top].count;
      if (object) {
        if (i_ >= text_.size() || text_[i_] != '"') return Fail("a member name expected");
        PINGMA_RETURN_IF_ERROR(String());
        SkipSpace();
        if (i_ >= text_.size() || text_[i_] != ':') return Fail("':' expected");
        ++i_;
        SkipSpace();
      }
      PINGMA_RETURN_IF_ERROR(Value());
    }
    SkipSpace();
    if (i_ != text_.size()) return Fail("text after the value");
    return Status::Ok();
  }

 private:
  Status Fail(const char* what) const {
    return Status::Malformed(std::string("JSON: ") + what + " at byte " + std::to_string(i_));
  }

  void SkipSpace() {
    while (i_ < text_.size() && IsSpace(text_[i_])) ++i_;
  }

  // Appends a finished scalar node from `begin` to i_.
  void Scalar(Kind kind, std::size_t begin, bool escaped = false) {
    JsonDoc::Node node;
    node.begin = static_cast<std::uint32_t>(begin);
    node.end = static_cast<std::uint32_t>(i_);
    node.next = static_cast<std::uint32_t>(nodes_.size() + 1);
    node.kind = kind;
    node.escaped = escaped;
    nodes_.push_back(node);
  }

  Status Value() {
    if (i_ >= text_.size()) return Fail("a value expected");
    switch (text_[i_]) {
      case '{':
      case '[': {
        JsonDoc::Node node;
        node.begin = static_cast<std::uint32_t>(i_);
        node.kind = text_[i_] == '{' ? Kind::kObject : Kind::kArray;
        open_.push_back(static_cast<std::uint32_t>(nodes_.size()));
        nodes_.push_back(node);
        ++i_;
        return Status::Ok();
      }
      case '"':
        return String();
      case 't':
        return Literal("true", Kind::kTrue);
      case 'f':
        return Literal("false", Kind::kFalse);
      case 'n':
        return Literal("null", Kind::kNull);
      default:
        return Number();
    }
  }

  Status Literal(std::string_view word, Kind kind) {
    if (text_.substr(i_, word.size()) != word) return Fail("a value expected");
    const std::size_t begin = i_;
    i_ += word.size();
    Scalar(kind, begin);
    return Status::Ok();
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  Status Number() {
    const std::size_t begin = i_;
    auto digits = [&] {
      const std::size_t from = i_;
      while (i_ < text_.size() && IsDigit(text_[i_])) ++i_;
      return i_ > from;
    };
    if (i_ < text_.size() && text_[i_] == '-') ++i_;
    if (i_ < text_.size() && text_[i_] == '0') {
      ++i_;
    } else if (!digits()) {
      return Fail("a value expected");
    }
    if (i_ < text_.size() && text_[i_] == '.') {
      ++i_;
      if (!digits()) return Fail("a digit expected after '.'");
    }
    bool exponent = false;
    if (i_ < text_.size() && (text_[i_] == 'e' || text_[i_] == 'E')) {
      exponent = true;
      ++i_;
      if (i_ < text_.size() && (text_[i_] == '+' || text_[i_] == '-')) ++i_;
      if (!digits()) return Fail("a digit expected in the exponent");
    }
    // As nlohmann does, a number whose magnitude no double holds is refused (one
    // too small is zero). Only an exponent or over 308 digits can get there.
    if ((exponent || i_ - begin > 308) &&
        !std::isfinite(
            std::strtod(std::string(text_.substr(begin, i_ - begin)).c_str(), nullptr))) {
      i_ = begin;
      return Fail("a number too large for a double");
    }
    Scalar(Kind::kNumber, begin);
    return Status::Ok();
  }

  // The continuation bytes of a UTF-8 sequence led by `lead` at i_ - 1 (Unicode
  // Table 3-7: no overlong forms, no surrogates, nothing past U+10FFFF).
  bool Utf8Tail(unsigned char lead) {
    unsigned char lo = 0x80, hi = 0xBF;
    int more = 0;
    if (lead >= 0xC2 && lead <= 0xDF) {
      more = 1;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      more = 2;
      if (lead == 0xE0) lo = 0xA0;
      if (lead == 0xED) hi = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      more = 3;
      if (lead == 0xF0) lo = 0x90;
      if (lead == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    for (int k = 0; k < more; ++k) {
      if (i_ >= text_.size()) return false;
      const auto b = static_cast<unsigned char>(text_[i_]);
      if (b < lo || b > hi) return false;
      lo = 0x80;
      hi = 0xBF;
      ++i_;
    }
    return true;
  }

  Status String() {
    const std::size_t begin = i_++;
    bool escaped = false;
    for (;;) {
      // The common run: printable ASCII that needs no look.
      while (i_ < text_.size()) {
        const auto b = static_cast<unsigned char>(text_[i_]);
        if (b < 0x20 || b >= 0x80 || b == '"' || b == '\\') break;
        ++i_;
      }
      if (i_ >= text_.size()) return Fail("a string not closed");
      const auto b = static_cast<unsigned char>(text_[i_++]);
      if (b == '"') break;
      if (b < 0x20) {
        --i_;
        return Fail("a control character in a string");
      }
      if (b >= 0x80) {
        if (!Utf8Tail(b)) {
          --i_;
          return Fail("a string that is not UTF-8");
        }
        continue;
      }
      // A backslash.
      escaped = true;
      if (i_ >= text_.size()) return Fail("a string not closed");
      const char e = text_[i_++];
      if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' || e == 'r' ||
          e == 't') {
        continue;
      }
      if (e != 'u') return Fail("an unknown escape in a string");
      const int unit = Hex4(text_, i_);
      if (unit < 0) return Fail("four hex digits expected after \\u");
      i_ += 4;
      if (unit >= 0xDC00 && unit <= 0xDFFF) return Fail("a low surrogate without a high one");
      if (unit >= 0xD800 && unit <= 0xDBFF) {
        const int low = text_.substr(i_, 2) == "\\u" ? Hex4(text_, i_ + 2) : -1;
        if (low < 0xDC00 || low > 0xDFFF) return Fail("a high surrogate without a low one");
        i_ += 6;
      }
    }
    Scalar(Kind::kString, begin, escaped);
    return Status::Ok();
  }

  std::string_view text_;
  std::vector<JsonDoc::Node>& nodes_;
  std::vector<std::uint32_t> open_;
  std::size_t i_ = 0;
};

JsonDoc::JsonDoc() : text_("null") {
  Node node;
  node.end = 4;
  node.next = 1;
  nodes_.push_back(node);
}

Result<JsonDoc> JsonDoc::Parse(std::string text) {
  if (text.size() >= std::numeric_limits<std::uint32_t>::max()) {
    return Status::Malformed("JSON: a text over 4 GiB");
  }
  JsonDoc doc;
  doc.text_ = std::move(text);
  doc.nodes_.clear();
  // A compact document has a node every dozen bytes or so; reserving saves the
  // regrowth of a large one.
  doc.nodes_.reserve(doc.text_.size() / 16 + 1);
  JsonParser parser(doc.text_, &doc.nodes_);
  PINGMA_RETURN_IF_ERROR(parser.Run());
  return doc;
}

Kind JsonValue::kind() const {
  return doc_->nodes_[node_].kind;
}

std::string_view JsonValue::Text() const {
  const auto& n = doc_->nodes_[node_];
  return std::string_view(doc_->text_).substr(n.begin, n.end - n.begin);
}

std::size_t JsonValue::size() const {
  const auto& n = doc_->nodes_[node_];
  return n.kind == Kind::kObject || n.kind == Kind::kArray ? n.count : 0;
}

bool JsonValue::StringEquals(std::uint32_t node, std::string_view text) const {
  const auto& n = doc_->nodes_[node];
  const std::string_view inside =
      std::string_view(doc_->text_).substr(n.begin + 1, n.end - n.begin - 2);
  if (!n.escaped) return inside == text;
  return Unescape(inside) == text;
}

std::optional<JsonValue> JsonValue::Find(std::string_view name) const {
  const auto& nodes = doc_->nodes_;
  if (nodes[node_].kind != Kind::kObject) return std::nullopt;
  std::optional<JsonValue> found;
  for (std::uint32_t key = node_ + 1; key < nodes[node_].next; key = nodes[key + 1].next) {
    if (StringEquals(key, name)) found = JsonValue(doc_, key + 1);
  }
  return found;
}

void JsonValue::FindAll(const std::string_view* names, std::size_t count,
                        std::optional<JsonValue>* out) const {
  for (std::size_t k = 0; k < count; ++k) out[k].reset();
  const auto& nodes = doc_->nodes_;
  if (nodes[node_].kind != Kind::kObject || count == 0) return;
  std::size_t guess = 0;  // where the last name was found, plus one
  for (std::uint32_t key = node_ + 1; key < nodes[node_].next; key = nodes[key + 1].next) {
    for (std::size_t tried = 0; tried < count; ++tried) {
      const std::size_t k = (guess + tried) % count;
      if (StringEquals(key, names[k])) {
        out[k] = JsonValue(doc_, key + 1);
        guess = k + 1;
        break;
      }
    }
  }
}

std::vector<JsonValue> JsonValue::Elements() const {
  const auto& nodes = doc_->nodes_;
  std::vector<JsonValue> out;
  if (nodes[node_].kind != Kind::kArray) return out;
  out.reserve(nodes[node_].count);
  for (std::uint32_t e = node_ + 1; e < nodes[node_].next; e = nodes[e].next) {
    out.push_back(JsonValue(doc_, e));
  }
  return out;
}

std::vector<std::pair<std::string, JsonValue>> JsonValue::Members() const {
  const auto& nodes = doc_->nodes_;
  std::vector<std::pair<std::string, JsonValue>> out;
  if (nodes[node_].kind != Kind::kObject) return out;
  out.reserve(nodes[node_].count);
  for (std::uint32_t key = node_ + 1; key < nodes[node_].next; key = nodes[key + 1].next) {
    out.emplace_back(*JsonValue(doc_, key).String(), JsonValue(doc_, key + 1));
  }
  return out;
}

std::optional<std::string> JsonValue::String() const {
  const auto& n = doc_->nodes_[node_];
  if (n.kind != Kind::kString) return std::nullopt;
  const std::string_view inside =
      std::string_view(doc_->text_).substr(n.begin + 1, n.end - n.begin - 2);
  if (!n.escaped) return std::string(inside);
  return Unescape(inside);
}

std::optional<double> JsonValue::Number() const {
  if (kind() != Kind::kNumber) return std::nullopt;
  const std::string_view text = Text();
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error == std::errc() && end == text.data() + text.size()) return value;
  // Out of range: a magnitude too small, which strtod makes zero or subnormal
  // (Parse refused any too large).
  return std::strtod(std::string(text).c_str(), nullptr);
}

std::optional<std::int64_t> JsonValue::Integer() const {
  if (kind() != Kind::kNumber) return std::nullopt;
  const std::string_view text = Text();
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

std::optional<bool> JsonValue::Bool() const {
  if (kind() == Kind::kTrue) return true;
  if (kind() == Kind::kFalse) return false;
  return std::nullopt;
}

}  // namespace pingma::station
