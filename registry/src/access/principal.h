// Who a request speaks for: a role and its subject (API.md "Roles").
#pragma once

#include <string>
#include <string_view>

#include "pingma/common/status.h"

namespace pingma::registry {

enum class Role { kAdmin, kCompany, kStation, kInspector, kCourier, kRegulator };
const char* ToString(Role role);
Result<Role> ParseRole(std::string_view text);

struct Principal {
  Role role = Role::kAdmin;
  std::string subject;
};

/// Whether `who` acts for company `company_id`: an admin, or the company itself.
bool ActsForCompany(const Principal& who, const std::string& company_id);

}  // namespace pingma::registry
