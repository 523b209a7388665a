// The tokens' own calls: list them (never a secret), issue one, revoke one (GET
// and POST /v1/tokens, DELETE /v1/tokens/{id}). An admin for everyone; a company
// for its own stations and couriers. The tokens themselves: access/tokens.h.
#pragma once

#include "access/tokens.h"
#include "cases/use_case.h"

namespace pingma::registry {

class TokenAdmin final : public UseCase {
 public:
  TokenAdmin(const Context& context, BearerTokens* tokens) : UseCase(context), tokens_(tokens) {}

  void GetTokens(const Call& call, Store::Done done);
  void PostToken(const Call& call, Store::Done done);
  void DeleteToken(const Call& call, Store::Done done);

 private:
  BearerTokens* tokens_;
};

}  // namespace pingma::registry
