#include "cases/token_admin.h"

#include <fmt/format.h>

#include "http/fields.h"

namespace pingma::registry {

void TokenAdmin::GetTokens(const Call& call, Store::Done done) {
  const Instant now = clock_->Now();
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    auto tokens = tokens_->List(conn, call.who);
    if (!tokens.ok()) return ErrorReply(tokens.status());
    json list = json::array();
    for (const TokenRecord& t : *tokens) list.push_back(TokenJson(t, now));
    return Reply{200, {{"tokens", std::move(list)}}, {}, {}};
  });
}

void TokenAdmin::PostToken(const Call& call, Store::Done done) {
  auto body = ParseBody(call.request->body);
  if (!body.ok()) return done(ErrorReply(body.status()));
  std::optional<std::string> role_text, note;
  std::string subject;
  std::optional<Date> expires;
  Status s = GetString(*body, "role", Need::kRequired, &role_text, 32);
  if (s.ok()) s = GetId(*body, "subject", &subject);
  if (s.ok()) s = GetDate(*body, "expires", Need::kOptional, &expires);
  if (s.ok()) s = GetString(*body, "note", Need::kOptional, &note, BearerTokens::kMaxNoteBytes);
  Result<Role> role = Status::Invalid("no role");
  if (s.ok()) role = ParseRole(*role_text);
  if (s.ok() && !role.ok()) s = role.status();
  if (!s.ok()) return done(ErrorReply(s));
  const TokenTerms terms{*role, subject, expires, note.value_or("")};
  if (Status checked = tokens_->CheckTerms(terms); !checked.ok()) return done(ErrorReply(checked));
  if (call.who.role == Role::kCompany && *role != Role::kStation && *role != Role::kCourier) {
    return done(ErrorReply(Status::PermissionDenied(
        "a company may issue tokens only for its own stations and couriers")));
  }
  Write(std::move(done), [this, terms, who = call.who](WriteTx& tx) -> Reply {
    if (who.role == Role::kCompany) {
      auto holds = CompanyHolds(tx.conn(), who.subject, ToString(terms.role), terms.subject);
      if (!holds.ok()) return ErrorReply(holds.status());
      if (!*holds) {
        return ErrorReply(Status::NotFound(fmt::format("company {} has no {} {}", who.subject,
                                                       ToString(terms.role), terms.subject)));
      }
    }
    IssuedToken issued;
    return tokens_->Issue(tx, who, terms, &issued);
  });
}

void TokenAdmin::DeleteToken(const Call& call, Store::Done done) {
  // Kept tokens go once the revocation is committed, before the answer: from
  // then on this registry refuses the token; the others within BearerTokens::kTrustMs.
  auto forget = [this, done = std::move(done)](Reply reply) {
    if (!reply.failed()) tokens_->ForgetKept();
    done(std::move(reply));
  };
  Write(std::move(forget), [this, who = call.who, id = call.params[0]](WriteTx& tx) {
    return tokens_->Revoke(tx, who, id);
  });
}

}  // namespace pingma::registry
