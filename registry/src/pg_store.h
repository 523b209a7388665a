// The registry's store on PostgreSQL: its schema (versioned migrations applied at
// start), the chain walked and extended there, and a SQLite store copied into it.
//
// The schema keeps the SQLite store's tables and columns, so that the same rows
// mean the same things in both, made for distribution: every cylinder-scoped
// table is keyed by the code, and the event log is partitioned by time (monthly,
// on `at`), with partitions made ahead of time and a default partition so that
// no append can fail for want of one. The chain's head is one row, `chain_head`,
// which every append locks: N registries on one database extend one chain.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "pg.h"
#include "pingma/common/status.h"
#include "store.h"

namespace pingma::registry::pgstore {

/// Applies the migrations `conn`'s database lacks, each in its own transaction,
/// under an advisory lock (registries starting together apply each once), then
/// makes the event log's partitions for this month and the next three.
Status ApplyMigrations(pg::Connection& conn);

/// Makes the monthly partitions of the event log that hold the Unix-ms times from
/// `from_ms` to `to_ms` (both included), where missing.
Status MakePartitions(pg::Connection& conn, std::int64_t from_ms, std::int64_t to_ms);

/// The chain walked in order, as WalkChain does for a SQLite file.
Result<ChainWalk> WalkChain(const std::string& conninfo);

/// Adds a bearer token and its `token_added` event, as AddToken does on SQLite.
Result<std::string> AddToken(const std::string& conninfo, const std::string& role,
                             const std::string& subject);

struct MigrateOptions {
  std::string from;            ///< the SQLite file (of a stopped registry)
  std::string to;              ///< the PostgreSQL connection string
  std::int64_t batch = 20000;  ///< events per transaction
  /// Called as the copy goes: what is being copied, done so far, and the total.
  std::function<void(const std::string& what, std::int64_t done, std::int64_t total)> progress;
};

/// Copies a SQLite store into PostgreSQL: the schema, every table, then the event
/// log in batches, each committed with its progress; then walks the chain there
/// and checks it against the file's, and every table's rows against the file's.
/// Run again after an interruption it goes on where it stopped; into a database
/// holding another chain it refuses (kConflict) and changes nothing.
Result<std::string> Migrate(const MigrateOptions& options);

}  // namespace pingma::registry::pgstore
