// The store's reads that several use cases share (queries.cpp), and the
// cylinder's record as the API shows it. All take an open connection (the
// writer's inside a job, or a reader's).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "access/principal.h"
#include "http/reply.h"
#include "pingma/common/policy.h"
#include "store/store.h"

namespace pingma {
struct ScanKey;  // pingma/scanner/scan.h
}  // namespace pingma

namespace pingma::registry {

/// A stored cylinder with what the registry keeps beside the record.
struct CylinderRow {
  Cylinder cylinder;
  std::optional<double> water_capacity_l;
  std::string registration_state;
  std::optional<std::string> state_reason;
  std::optional<Instant> state_since;
  std::optional<Sighting> last_fill;
  std::int64_t rev = 0;
  std::vector<std::string> carriers;
};

Result<std::optional<CylinderRow>> LoadCylinder(Conn& conn, const std::string& code,
                                                bool with_carriers = true);
/// Before a job decides on a cylinder and writes what it decided (a handover, a
/// fill, an inspection, a scrapping): on PostgreSQL, where registries write at
/// once, locks the cylinder's row until the batch commits, so that another
/// registry's job on the same cylinder waits for this one and then reads what it
/// wrote, and numbers the job's events after every event of the cylinder so far,
/// so that the cylinder's events are in the order in which their jobs decided.
/// SQLite's one writer needs neither. (A missing row locks nothing.)
Status GuardCylinder(WriteTx& tx, const std::string& code);
/// The record in the current row of a statement that selects the cylinders table's
/// columns in LoadCylinder's order (code, owner_company_id, ..., rev: 25 columns),
/// without its carriers.
CylinderRow ReadCylinderRow(const sql::Statement& s);
/// Resolves any scan form to a registered code; nullopt when nothing matches.
/// With `trust_codes`, a scan that is a plain code is returned as it is, unlooked
/// up (for callers that load the cylinder next anyway).
Result<std::optional<std::string>> ResolveScan(Conn& conn, std::string_view scan,
                                               std::string* key_text, bool trust_codes = false);
/// ResolveScan of a scan already parsed.
Result<std::optional<std::string>> ResolveKey(Conn& conn, const ScanKey& key, std::string* key_text,
                                              bool trust_codes = false);
Result<std::optional<StationFacts>> LoadStation(Conn& conn, const std::string& id);
Result<std::optional<OperatorFacts>> LoadOperator(Conn& conn, const std::string& id);
Result<std::vector<CustodyAgreement>> LoadCustody(Conn& conn, const std::string& owner);
Result<std::vector<Recall>> LoadRecalls(Conn& conn, const std::string& manufacturer);
Result<bool> Exists(Conn& conn, const char* table, const std::string& id);
/// The record as the API shows it, with `fillable` and `reasons` when a decision
/// is given.
json CylinderJson(const CylinderRow& row, const Policy& policy);

/// Moves an active cylinder to scrap_pending and records why.
Reply FlagCylinderForScrap(WriteTx& tx, const Principal& who, const std::string& code,
                           ReasonCode reason);
/// May `who` see the cylinders of company `owner`?
Status CanSeeOwner(Conn& conn, const Principal& who, const std::string& owner);

}  // namespace pingma::registry
