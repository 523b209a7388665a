// A JsonDoc value as nlohmann::json, to compare what JsonDoc reads with what
// nlohmann's parser reads (the unit test and the fuzz harness).
#pragma once

#include <nlohmann/json.hpp>

#include "json_doc.h"

namespace pingma::station {

inline nlohmann::json ToNlohmann(const JsonValue& v) {
  using Kind = JsonValue::Kind;
  switch (v.kind()) {
    case Kind::kNull:
      return nullptr;
    case Kind::kFalse:
      return false;
    case Kind::kTrue:
      return true;
    case Kind::kNumber:
      if (auto i = v.Integer()) return *i;
      return *v.Number();
    case Kind::kString:
      return *v.String();
    case Kind::kArray: {
      auto out = nlohmann::json::array();
      for (const JsonValue& e : v.Elements()) out.push_back(ToNlohmann(e));
      return out;
    }
    case Kind::kObject: {
      auto out = nlohmann::json::object();
      for (const auto& [name, value] : v.Members()) out[name] = ToNlohmann(value);
      return out;
    }
  }
  return nullptr;
}

}  // namespace pingma::station
