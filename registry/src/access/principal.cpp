#include "access/principal.h"

#include <fmt/format.h>

namespace pingma::registry {

const char* ToString(Role role) {
  switch (role) {
    case Role::kAdmin:
      return "admin";
    case Role::kCompany:
      return "company";
    case Role::kStation:
      return "station";
    case Role::kInspector:
      return "inspector";
    case Role::kCourier:
      return "courier";
    case Role::kRegulator:
      return "regulator";
  }
  return "?";
}

Result<Role> ParseRole(std::string_view text) {
  for (Role r : {Role::kAdmin, Role::kCompany, Role::kStation, Role::kInspector, Role::kCourier,
                 Role::kRegulator}) {
    if (text == ToString(r)) return r;
  }
  return Status::Invalid(fmt::format(
      "unknown role '{}' (one of: admin, company, station, inspector, courier, regulator)", text));
}

bool ActsForCompany(const Principal& who, const std::string& company_id) {
  return who.role == Role::kAdmin || (who.role == Role::kCompany && who.subject == company_id);
}

}  // namespace pingma::registry
