// Personal data kept outside the hash-chained log (PIPL): a public reporter's
// contact, a handover's place; its retention sweep and a regulator's erasure
// (DELETE /v1/personal-data/{id}).
#pragma once

#include <string_view>

#include "cases/use_case.h"

namespace pingma::registry {

class PersonalData final : public UseCase {
 public:
  using UseCase::UseCase;

  void ErasePersonalData(const Call& call, Store::Done done);
};

// The log keeps {"personal_data": id, "salted_sha256": ...} under FIELD_ref; the
// value is deleted when its retention ends (SweepPersonalData) or a regulator
// erases it, and the chain still verifies.
/// Stores `value` of cylinder `code`; the reference the log keeps. `field` is
/// "contact" (kept contact_retention_days) or "location" (position_retention_days).
Result<json> KeepPersonalData(WriteTx& tx, const std::string& code, std::string_view field,
                              const json& value);
/// The value a reference names; nullopt once erased or past its retention.
Result<std::optional<json>> LookupPersonalData(Conn& conn, const json& ref);
/// Replaces `body`'s FIELD_ref by FIELD (the value, or null with FIELD_erased: true
/// once it is gone) and FIELD_id (what a regulator erases it by).
Status ShowPersonalData(Conn& conn, json* body, const char* field);
/// Deletes what is past its field's retention in `policy` at `now`; how many.
Result<std::int64_t> SweepPersonalData(Conn& conn, Instant now, const Policy& policy);

}  // namespace pingma::registry
