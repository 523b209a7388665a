#include "store/sql.h"

#include <fmt/format.h>

namespace pingma::sql {

std::string JsonField(Dialect d, std::string_view column, std::string_view key) {
  return d == Dialect::kSqlite ? fmt::format("json_extract({}, '$.{}')", column, key)
                               : fmt::format("({}::json ->> '{}')", column, key);
}

std::string JsonArrayElements(Dialect d, std::string_view array) {
  return d == Dialect::kSqlite ? fmt::format("json_each({})", array)
                               : fmt::format("json_array_elements_text({})", array);
}

std::string IndexedBy(Dialect d, std::string_view index) {
  return d == Dialect::kSqlite ? fmt::format("INDEXED BY {}", index) : std::string();
}

std::string BigintArrayText(const std::vector<std::int64_t>& values) {
  std::string out = "{";
  for (std::int64_t v : values) out += fmt::format("{}{}", out.size() > 1 ? "," : "", v);
  return out + "}";
}

}  // namespace pingma::sql
