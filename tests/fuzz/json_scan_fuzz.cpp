// libFuzzer harness: ObjectMembers and ArrayElements read any bytes without a read
// out of bounds, and on text that a JSON parser takes (with no key twice) they
// find exactly the members and elements the parser finds.
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "json_scan.h"

using nlohmann::json;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto members = pingma::station::ObjectMembers(text);
  const auto elements = pingma::station::ArrayElements(text);
  const json parsed = json::parse(text, nullptr, false);
  if (parsed.is_discarded()) return 0;
  if (parsed.is_object()) {
    if (!members) std::abort();
    std::set<std::string> names;
    for (const auto& [name, value] : *members) {
      const json key = json::parse("\"" + std::string(name) + "\"", nullptr, false);
      if (!key.is_string()) std::abort();
      names.insert(key.get<std::string>());
    }
    if (names.size() != members->size()) return 0;  // a key twice: the parser keeps one
    if (members->size() != parsed.size()) std::abort();
    for (const auto& [name, value] : *members) {
      const std::string key = json::parse("\"" + std::string(name) + "\"").get<std::string>();
      if (json::parse(value, nullptr, false) != parsed.at(key)) std::abort();
    }
  } else if (parsed.is_array()) {
    if (!elements || elements->size() != parsed.size()) std::abort();
    for (std::size_t i = 0; i < elements->size(); ++i) {
      if (json::parse((*elements)[i], nullptr, false) != parsed[i]) std::abort();
    }
  }
  return 0;
}
