// Personal data that the hash-chained log must not keep for ever (PIPL): a public
// reporter's contact, the place of a handover. The log keeps a reference and a
// salted hash; the value and its salt live in `personal_data` until their
// retention ends or a regulator erases them. Once the row is gone the hash confirms
// nothing (without the salt a guess cannot be checked), and the chain, which
// covers the reference and the hash only, still verifies.
#include <openssl/rand.h>

#include <fmt/format.h>

#include "cases/personal_data.h"
#include "cases/queries.h"

namespace pingma::registry {
namespace {

constexpr std::int64_t kDayMs = 24LL * 60 * 60 * 1000;

Result<std::string> RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    return Status::Internal("no random bytes (OpenSSL)");
  }
  return out;
}

}  // namespace

Result<json> KeepPersonalData(WriteTx& tx, const std::string& code, std::string_view field,
                              const json& value) {
  PINGMA_ASSIGN_OR_RETURN(auto id_bytes, RandomBytes(12));
  PINGMA_ASSIGN_OR_RETURN(auto salt, RandomBytes(16));
  const std::string id = "pd-" + HexOf(id_bytes);
  const std::string text = value.dump();
  const std::string hash = HexOf(Sha256(salt + text));
  PINGMA_ASSIGN_OR_RETURN(
      auto st,
      tx.conn().Prepare("INSERT INTO personal_data(id, code, field, value, salt, created_at) "
                        "VALUES($1,$2,$3,$4,$5,$6)"));
  st->Bind(1, id).Bind(2, code).Bind(3, std::string(field)).Bind(4, text);
  st->BindBlob(5, salt.data(), salt.size());
  st->Bind(6, tx.now().unix_ms);
  PINGMA_RETURN_IF_ERROR(st->Run());
  return json{{"personal_data", id}, {"salted_sha256", hash}};
}

Result<std::optional<json>> LookupPersonalData(Conn& conn, const json& ref) {
  if (!ref.is_object() || !ref.contains("personal_data") || !ref["personal_data"].is_string()) {
    return std::optional<json>();
  }
  PINGMA_ASSIGN_OR_RETURN(auto st, conn.Prepare("SELECT value FROM personal_data WHERE id = $1"));
  st->Bind(1, ref["personal_data"].get<std::string>());
  PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
  if (!row) return std::optional<json>();
  json value = json::parse(st->Text(0), nullptr, false);
  if (value.is_discarded()) return Status::Corruption("a personal_data value is not JSON");
  return std::optional<json>(std::move(value));
}

Status ShowPersonalData(Conn& conn, json* body, const char* field) {
  const std::string ref_key = std::string(field) + "_ref";
  auto it = body->find(ref_key);
  if (it == body->end()) return Status::Ok();
  PINGMA_ASSIGN_OR_RETURN(auto value, LookupPersonalData(conn, *it));
  json ref = std::move(*it);
  body->erase(ref_key);
  (*body)[field] = value ? std::move(*value) : json(nullptr);
  (*body)[std::string(field) + "_id"] = ref.value("personal_data", "");
  if (!value) (*body)[std::string(field) + "_erased"] = true;
  return Status::Ok();
}

Result<std::int64_t> SweepPersonalData(Conn& conn, Instant now, const Policy& policy) {
  // By the policy in force now: a shortened retention reaches what is kept already.
  std::int64_t deleted = 0;
  for (const auto& [field, days] : {std::pair{"contact", policy.contact_retention_days},
                                    std::pair{"location", policy.position_retention_days}}) {
    auto n =
        SecureDeleteRows(conn, "DELETE FROM personal_data WHERE field = $1 AND created_at <= $2",
                         [&](sql::Statement& st) {
                           st.Bind(1, std::string(field)).Bind(2, now.unix_ms - days * kDayMs);
                         });
    if (!n.ok()) return n.status();
    deleted += *n;
  }
  return deleted;
}

void PersonalData::ErasePersonalData(const Call& call, Store::Done done) {
  const std::string id = call.params[0];
  Write(std::move(done), [id, who = call.who](WriteTx& tx) -> Reply {
    auto st = tx.conn().Prepare("SELECT code, field FROM personal_data WHERE id = $1");
    if (!st.ok()) return ErrorReply(st.status());
    (*st)->Bind(1, id);
    auto row = (*st)->Step();
    if (!row.ok()) return ErrorReply(row.status());
    if (!*row) {
      return ErrorReply(Status::NotFound(
          fmt::format("no personal data {} (erased already, or past its retention)", id)));
    }
    const std::string code = (*st)->Text(0);
    const std::string field = (*st)->Text(1);
    (*st)->Reset();
    auto erased = SecureDeleteRows(tx.conn(), "DELETE FROM personal_data WHERE id = $1",
                                   [&](sql::Statement& del) { del.Bind(1, id); });
    if (!erased.ok()) return ErrorReply(erased.status());
    // The erasure itself is on the record: what was erased, by whom, not the value.
    const json event = {{"personal_data", id}, {"field", field}};
    auto seq = tx.Append({"", code, "personal_data_erased", tx.now(), ToString(who.role),
                          who.subject, event.dump()});
    if (!seq.ok()) return ErrorReply(seq.status());
    return Reply{200, {{"personal_data", id}, {"field", field}, {"erased", true}}, {}, {}};
  });
}

}  // namespace pingma::registry
