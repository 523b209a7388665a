// A strict reader of TOML files (toml++): every key a table holds must be read, so a
// misspelt key is an error, never silently a default, and every error names the key
// by its path ("position[2].scale.port", "profile.gross_kg.scale").
//
// Library pingma::toml. A TomlReader is a view of a table it does not own (the table
// must outlive it) and remembers the keys read; one thread at a time. Nothing here
// throws.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "pingma/common/status.h"

namespace pingma {

/// How errors are worded. Both forms are kept word for word, since operators'
/// notes and tests quote them; a new file format takes kKeyFirst.
enum class TomlWording {
  /// Scale profiles: "profile.x is not a known key", "profile.x must be an integer",
  /// "profile.x is 70000, outside 0..65535", "profile TOML: <why> at line 3, column 7"
  /// (kMalformed).
  kKeyFirst,
  /// The station config: "unknown key station.x", "station.x must be a whole number",
  /// "station.x must be from 1 to 65535", "station config, line 3: <why>" (kInvalid).
  kStationConfig,
};

/// Parses TOML text; a syntax error is a Status naming `what` ("profile", "station
/// config") and the line, worded as `wording` says.
Result<toml::table> ParseToml(std::string_view text, std::string_view what,
                              TomlWording wording = TomlWording::kKeyFirst);

class TomlReader {
 public:
  /// `path` names the table in messages ("" for the file's top level).
  TomlReader(const toml::table& table, std::string path,
             TomlWording wording = TomlWording::kKeyFirst);

  /// The key's full name: "path.key", or "key" at the top level.
  std::string Name(std::string_view key) const;
  bool Has(std::string_view key) const { return table_.contains(key); }

  /// A key that must be there, of its type; each marks the key as read. kInvalid
  /// "<name> is missing" or "<name> must be ...".
  Result<std::string> String(std::string_view key);
  Result<bool> Boolean(std::string_view key);
  /// An integer within [low, high].
  Result<std::int64_t> Integer(std::string_view key, std::int64_t low, std::int64_t high);
  /// An integer or a finite float, as a double.
  Result<double> Number(std::string_view key);

  /// The same for a key that may be absent: `*out` is left as it is then. With
  /// `required`, absence is "<name> is missing".
  Status Get(std::string_view key, bool required, std::string* out);
  Status Get(std::string_view key, bool required, bool* out);
  Status Get(std::string_view key, bool required, std::int64_t low, std::int64_t high,
             std::int64_t* out);
  Status Get(std::string_view key, bool required, double* out);

  /// A sub-table, marked as read; nullptr when absent or not a table.
  const toml::table* Table(std::string_view key);
  /// Marks a key as read by the caller (a sub-table or array handled elsewhere).
  void Use(std::string_view key) { used_.emplace_back(key); }

  /// kInvalid naming the first key that is not among `known`: checked before any key
  /// is read, so that a misspelt key is named rather than reported missing.
  Status OnlyKnown(std::initializer_list<std::string_view> known) const;
  /// kInvalid naming the first key that nobody read.
  Status NoOthers() const;

 private:
  const toml::node* Find(std::string_view key);
  Status Unknown(std::string_view key) const;

  const toml::table& table_;
  std::string path_;
  TomlWording wording_;
  std::vector<std::string> used_;
};

}  // namespace pingma
