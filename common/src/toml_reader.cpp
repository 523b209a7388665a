#include "pingma/common/toml_reader.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace pingma {

Result<toml::table> ParseToml(std::string_view text, std::string_view what, TomlWording wording) {
  // toml++ reports syntax errors by exception; none leaves this function.
  try {
    return toml::parse(text);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    std::ostringstream message;
    if (wording == TomlWording::kStationConfig) {
      message << what << ", line " << where.line << ": " << e.description();
      return Status::Invalid(message.str());
    }
    message << what << " TOML: " << e.description() << " at line " << where.line << ", column "
            << where.column;
    return Status::Malformed(message.str());
  } catch (const std::exception& e) {
    return Status::Internal(std::string(what) + " TOML: " + e.what());
  }
}

TomlReader::TomlReader(const toml::table& table, std::string path, TomlWording wording)
    : table_(table), path_(std::move(path)), wording_(wording) {}

std::string TomlReader::Name(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

const toml::node* TomlReader::Find(std::string_view key) {
  used_.emplace_back(key);
  return table_.get(key);
}

Result<std::string> TomlReader::String(std::string_view key) {
  const toml::node* node = Find(key);
  if (node == nullptr) return Status::Invalid(Name(key) + " is missing");
  const auto* value = node->as_string();
  if (value == nullptr) return Status::Invalid(Name(key) + " must be a string");
  return value->get();
}

Result<bool> TomlReader::Boolean(std::string_view key) {
  const toml::node* node = Find(key);
  if (node == nullptr) return Status::Invalid(Name(key) + " is missing");
  const auto* value = node->as_boolean();
  if (value == nullptr) return Status::Invalid(Name(key) + " must be true or false");
  return value->get();
}

Result<std::int64_t> TomlReader::Integer(std::string_view key, std::int64_t low,
                                         std::int64_t high) {
  const bool key_first = wording_ == TomlWording::kKeyFirst;
  const toml::node* node = Find(key);
  if (node == nullptr) return Status::Invalid(Name(key) + " is missing");
  const auto* value = node->as_integer();
  if (value == nullptr) {
    return Status::Invalid(Name(key) +
                           (key_first ? " must be an integer" : " must be a whole number"));
  }
  const std::int64_t v = value->get();
  if (v < low || v > high) {
    if (key_first) {
      return Status::Invalid(Name(key) + " is " + std::to_string(v) + ", outside " +
                             std::to_string(low) + ".." + std::to_string(high));
    }
    return Status::Invalid(Name(key) + " must be from " + std::to_string(low) + " to " +
                           std::to_string(high));
  }
  return v;
}

Result<double> TomlReader::Number(std::string_view key) {
  const toml::node* node = Find(key);
  if (node == nullptr) return Status::Invalid(Name(key) + " is missing");
  if (const auto* i = node->as_integer()) return static_cast<double>(i->get());
  if (const auto* f = node->as_floating_point()) {
    if (!std::isfinite(f->get())) return Status::Invalid(Name(key) + " must be finite");
    return f->get();
  }
  return Status::Invalid(Name(key) + " must be a number");
}

namespace {

// Absent and not required: the key counts as read and `out` keeps its default.
template <typename T, typename Read>
Status GetOptional(TomlReader& reader, std::string_view key, bool required, T* out, Read read) {
  if (!required && !reader.Has(key)) {
    reader.Use(key);
    return Status::Ok();
  }
  PINGMA_ASSIGN_OR_RETURN(*out, read());
  return Status::Ok();
}

}  // namespace

Status TomlReader::Get(std::string_view key, bool required, std::string* out) {
  return GetOptional(*this, key, required, out, [&] { return String(key); });
}

Status TomlReader::Get(std::string_view key, bool required, bool* out) {
  return GetOptional(*this, key, required, out, [&] { return Boolean(key); });
}

Status TomlReader::Get(std::string_view key, bool required, std::int64_t low, std::int64_t high,
                       std::int64_t* out) {
  return GetOptional(*this, key, required, out, [&] { return Integer(key, low, high); });
}

Status TomlReader::Get(std::string_view key, bool required, double* out) {
  return GetOptional(*this, key, required, out, [&] { return Number(key); });
}

const toml::table* TomlReader::Table(std::string_view key) {
  const toml::node* node = Find(key);
  return node == nullptr ? nullptr : node->as_table();
}

Status TomlReader::Unknown(std::string_view key) const {
  if (wording_ == TomlWording::kStationConfig) return Status::Invalid("unknown key " + Name(key));
  return Status::Invalid(Name(key) + " is not a known key");
}

Status TomlReader::OnlyKnown(std::initializer_list<std::string_view> known) const {
  for (const auto& [key, node] : table_) {
    (void)node;
    if (std::find(known.begin(), known.end(), key.str()) == known.end()) return Unknown(key.str());
  }
  return Status::Ok();
}

Status TomlReader::NoOthers() const {
  for (const auto& [key, node] : table_) {
    (void)node;
    if (std::find(used_.begin(), used_.end(), key.str()) == used_.end()) return Unknown(key.str());
  }
  return Status::Ok();
}

}  // namespace pingma
