// `pingma-registry migrate`: a SQLite store copied into PostgreSQL. Its own
// library (pingma_registry_maintenance), linked by the program and not by the server.
#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "pingma/registry/registry.h"
#include "store/chain.h"
#include "store/pg.h"
#include "store/pg_store.h"
#include "store/schema.h"
#include "store/sqlite.h"
#include "store/store.h"

namespace pingma::registry {
namespace {

struct MigrateOptions {
  std::string from;            ///< the SQLite file (of a stopped registry)
  std::string to;              ///< the PostgreSQL connection string
  std::int64_t batch = 20000;  ///< events per transaction
  /// Called as the copy goes: what is being copied, done so far, and the total.
  CopyProgress progress;
};

// The tables `migrate` copies, parents before the tables that refer to them.
// due_counts is not among them: it is made from the cylinders copied (and Migrate
// checks that it counts as the file's).
constexpr const char* kTables[] = {
    "tokens",        "companies",  "stations",     "operators", "custody",
    "recalls",       "cylinders",  "carriers",     "fills",     "meta",
    "vehicles",      "couriers",   "customers",    "handovers", "whereabouts",
    "hazards",       "check_days", "refusal_days", "refusals",  "offline_checks",
    "personal_data", "areas",      "terminals",    "positions", "vehicle_positions",
    "alerts",        "log_tiles",  "log_heads",    "log_keys"};

Result<std::int64_t> SqliteInt(sql::SqliteDatabase& db, const std::string& sql) {
  auto st = db.PrepareSqlite(sql);
  if (!st.ok()) return st.status();
  auto row = (*st)->Step();
  if (!row.ok()) return row.status();
  return *row && !(*st)->IsNull(0) ? (*st)->Int(0) : 0;
}

// One row of a SQLite statement as COPY text, each column formatted for the
// PostgreSQL column it goes to (`bytea[i]`: as hex bytes).
void AppendCopyRow(const sql::SqliteStatement& st, const std::vector<bool>& bytea,
                   std::string* out) {
  for (int i = 0; i < static_cast<int>(bytea.size()); ++i) {
    if (i > 0) out->push_back('\t');
    switch (st.Type(i)) {
      case SQLITE_NULL:
        pg::Connection::CopyField(out, std::nullopt);
        break;
      case SQLITE_INTEGER:
        out->append(fmt::format_int(st.Int(i)).str());
        break;
      case SQLITE_FLOAT:
        out->append(fmt::format("{}", st.Double(i)));
        break;
      default: {
        const std::string_view bytes = st.Blob(i);
        pg::Connection::CopyField(out, bytea[i] ? std::string_view(pg::Hex(bytes)) : bytes);
      }
    }
  }
  out->push_back('\n');
}

// The columns that PostgreSQL's tables have and SQLite's do not, left to their
// defaults in a copy: events' revision (the file's events are the chain's) and the
// day counts' writer (schema/pg/0009, 0010).
struct PgOnlyColumn {
  const char* table;
  const char* column;
};
constexpr PgOnlyColumn kPgOnlyColumns[] = {
    {"events", "tx"}, {"check_days", "shard"}, {"refusal_days", "shard"}};

// The columns of a PostgreSQL table in order that a copy from SQLite fills, and
// which are bytea.
Status TableColumns(pg::Connection& conn, const std::string& table, std::vector<std::string>* names,
                    std::vector<bool>* bytea) {
  auto rows = conn.Query(
      "SELECT column_name, data_type FROM information_schema.columns "
      "WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
      {table});
  if (!rows.ok()) return rows.status();
  for (int r = 0; r < rows->size(); ++r) {
    const std::string name = rows->Text(r, 0);
    const bool pg_only =
        std::any_of(std::begin(kPgOnlyColumns), std::end(kPgOnlyColumns),
                    [&](const PgOnlyColumn& c) { return table == c.table && name == c.column; });
    if (pg_only) continue;
    names->push_back(name);
    bytea->push_back(rows->Text(r, 1) == "bytea");
  }
  if (names->empty()) return Status::Internal("PostgreSQL has no table " + table);
  return Status::Ok();
}

std::string Joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

// Copies one table whole, in one transaction with its mark in migration_progress.
Result<std::int64_t> CopyTable(sql::SqliteDatabase& from, pg::Connection& to,
                               const std::string& table, const MigrateOptions& options) {
  std::vector<std::string> names;
  std::vector<bool> bytea;
  PINGMA_RETURN_IF_ERROR(TableColumns(to, table, &names, &bytea));
  // A store last opened by an older registry lacks the newer tables and columns.
  auto older = [&table](const Status& s) {
    return Status(s.code(), "the SQLite store's " + table + " table: " + s.message() +
                                " (open it once with this version's registry)");
  };
  auto total = SqliteInt(from, "SELECT count(*) FROM " + table);
  if (!total.ok()) return older(total.status());
  auto prepared = from.PrepareSqlite("SELECT " + Joined(names) + " FROM " + table);
  if (!prepared.ok()) {
    return older(prepared.status());
  }
  sql::SqliteStatement* st = prepared->get();
  std::int64_t copied = 0;
  Status status = pg::InTransaction(to, [&]() -> Status {
    auto present = pg::QueryInt(to, "SELECT count(*) FROM " + table);
    if (!present.ok()) return present.status();
    if (*present != 0) {
      return Status::Conflict(
          fmt::format("PostgreSQL's {} table already holds {} rows that no migration put there",
                      table, *present));
    }
    // The cylinders' trigger would count each copied row into due_counts, all
    // into the same few rows of one transaction, whose every update PostgreSQL
    // keeps as a new version until the end: a million cylinders took minutes per
    // 8 MB. Off for the copy, then the counts made in one statement.
    const bool cylinders = table == "cylinders";
    if (cylinders) PINGMA_RETURN_IF_ERROR(to.Exec("ALTER TABLE cylinders DISABLE TRIGGER USER"));
    const std::string copy = "COPY " + table + "(" + Joined(names) + ") FROM STDIN";
    std::string data;
    for (;;) {
      auto row = st->Step();
      if (!row.ok()) return row.status();
      if (*row) {
        AppendCopyRow(*st, bytea, &data);
        ++copied;
      }
      if (data.size() >= (8u << 20) || (!*row && !data.empty())) {
        PINGMA_RETURN_IF_ERROR(to.Copy(copy, data));
        data.clear();
        if (options.progress) options.progress(table, copied, *total);
      }
      if (!*row) break;
    }
    if (cylinders) {
      PINGMA_RETURN_IF_ERROR(to.Exec("ALTER TABLE cylinders ENABLE TRIGGER USER"));
      PINGMA_RETURN_IF_ERROR(to.Exec(std::string(schema::Text("fill_due_counts.sql"))));
    }
    // Ids made by an identity column go on after the copied ones.
    auto identity = to.Query(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = "
        "current_schema() AND table_name = $1 AND is_identity = 'YES'",
        {table});
    if (!identity.ok()) return identity.status();
    for (int r = 0; r < identity->size(); ++r) {
      const std::string column = identity->Text(r, 0);
      auto set =
          to.Query(fmt::format("SELECT setval(pg_get_serial_sequence('{0}', '{1}'), "
                               "COALESCE((SELECT max({1}) FROM {0}), 0) + 1, false)",
                               table, column));
      if (!set.ok()) return set.status();
    }
    auto marked = to.Query("INSERT INTO migration_progress(table_name, rows) VALUES($1, $2)",
                           {table, std::to_string(copied)});
    return marked.status();
  });
  if (!status.ok()) return status;
  if (options.progress) options.progress(table, copied, *total);
  return copied;
}

// The SQLite store's hash of event `seq`, or "" when it has none.
Result<std::string> SqliteHash(sql::SqliteDatabase& db, std::int64_t seq) {
  auto st = db.PrepareSqlite("SELECT hash FROM events WHERE seq = $1");
  if (!st.ok()) return st.status();
  (*st)->Bind(1, seq);
  auto row = (*st)->Step();
  if (!row.ok()) return row.status();
  return *row ? std::string((*st)->Blob(0)) : std::string();
}

Result<std::string> PgHash(pg::Connection& conn, std::int64_t seq) {
  auto rows = conn.Query("SELECT hash FROM events WHERE seq = $1", {std::to_string(seq)});
  if (!rows.ok()) return rows.status();
  return rows->size() > 0 ? rows->Bytes(0, 0) : std::string();
}

// Copies a SQLite store into PostgreSQL: the schema, every table, then the event
// log in batches, each committed with its progress; then walks the chain there
// and checks it against the file's, and every table's rows against the file's.
// Run again after an interruption it goes on where it stopped; into a database
// holding another chain it refuses (kConflict) and changes nothing.
Result<std::string> Copy(const MigrateOptions& options) {
  if (options.batch < 1) return Status::Invalid("--batch must be at least 1");
  auto from = sql::SqliteDatabase::Open(options.from, /*create=*/false, /*read_only=*/true);
  if (!from.ok()) {
    return Status(from.status().code(),
                  "cannot open the SQLite store " + options.from + ": " + from.status().message());
  }
  auto has_events = SqliteInt(**from,
                              "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                              "name = 'events'");
  if (!has_events.ok()) return has_events.status();
  if (*has_events == 0) return Status::Invalid(options.from + " is not a pingma registry store");
  // One read snapshot of the file for the whole copy.
  PINGMA_RETURN_IF_ERROR((*from)->Exec("BEGIN"));
  auto last_seq = SqliteInt(**from, "SELECT COALESCE(max(seq), 0) FROM events");
  if (!last_seq.ok()) return last_seq.status();

  auto to = pg::Connection::Open(options.to);
  if (!to.ok()) return to.status();
  // Copying takes what it takes: no timeout of a serving registry's.
  PINGMA_RETURN_IF_ERROR(to->Exec("SET statement_timeout = 0; SET lock_timeout = 0"));
  PINGMA_RETURN_IF_ERROR(pgstore::ApplyMigrations(*to));

  // The database may hold this chain's beginning (a copy interrupted), never
  // another chain, nor more of this one than the file has.
  auto copied_seq = pg::QueryInt(*to, "SELECT seq FROM chain_head");
  if (!copied_seq.ok()) return copied_seq.status();
  // Nor events a registry appended there (after the chain's end: schema/pg/0009).
  auto appended = pg::QueryInt(*to,
                               "SELECT count(*) FROM (SELECT 1 FROM events "
                               "WHERE tx IS NOT NULL LIMIT 1) AS any_appended");
  if (!appended.ok()) return appended.status();
  if (*appended > 0) {
    return Status::Conflict(
        "PostgreSQL already holds events that registries appended: migrate copies a SQLite "
        "store into a new database");
  }
  if (*copied_seq > 0) {
    if (*copied_seq > *last_seq) {
      return Status::Conflict(
          fmt::format("PostgreSQL holds {} events, the SQLite store {}: the chains differ",
                      *copied_seq, *last_seq));
    }
    for (const std::int64_t seq : {std::int64_t{1}, *copied_seq}) {
      auto ours = SqliteHash(**from, seq);
      if (!ours.ok()) return ours.status();
      auto theirs = PgHash(*to, seq);
      if (!theirs.ok()) return theirs.status();
      if (*ours != *theirs) {
        return Status::Conflict(fmt::format(
            "PostgreSQL holds another chain: its event #{} is not the SQLite store's", seq));
      }
    }
  }

  // The tables, each whole in one transaction; those marked done are skipped.
  std::int64_t rows = 0;
  for (const char* table : kTables) {
    auto done = to->Query("SELECT rows FROM migration_progress WHERE table_name = $1", {table});
    if (!done.ok()) return done.status();
    if (done->size() > 0) {
      rows += done->Int(0, 0);
      if (options.progress) options.progress(table, done->Int(0, 0), done->Int(0, 0));
      continue;
    }
    auto n = CopyTable(**from, *to, table, options);
    if (!n.ok()) return n.status();
    rows += *n;
  }

  // The log, in batches, each committed with the chain's head after it.
  auto first_at = SqliteInt(**from, "SELECT COALESCE(min(at), 0) FROM events");
  auto last_at = SqliteInt(**from, "SELECT COALESCE(max(at), 0) FROM events");
  if (!first_at.ok()) return first_at.status();
  if (!last_at.ok()) return last_at.status();
  if (*last_seq > 0) PINGMA_RETURN_IF_ERROR(pgstore::MakePartitions(*to, *first_at, *last_at));
  std::vector<std::string> names;
  std::vector<bool> bytea;
  PINGMA_RETURN_IF_ERROR(TableColumns(*to, "events", &names, &bytea));
  auto prepared = (*from)->PrepareSqlite(
      fmt::format("SELECT {} FROM events WHERE seq > $1 ORDER BY seq LIMIT $2", Joined(names)));
  if (!prepared.ok()) return prepared.status();
  sql::SqliteStatement* batch = prepared->get();
  const std::string copy = "COPY events(" + Joined(names) + ") FROM STDIN";
  std::int64_t seq = *copied_seq;
  if (options.progress) options.progress("events", seq, *last_seq);
  std::string data;
  while (seq < *last_seq) {
    batch->Bind(1, seq).Bind(2, options.batch);
    data.clear();
    std::int64_t batch_last = seq;
    std::string head;
    for (;;) {
      auto row = batch->Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      AppendCopyRow(*batch, bytea, &data);
      batch_last = batch->Int(0);
      head = std::string(batch->Blob(8));
    }
    batch->Reset();
    if (batch_last == seq) break;
    auto copy_batch = [&]() -> Status {
      PINGMA_RETURN_IF_ERROR(to->Copy(copy, data));
      // The chain's end moves with the copy; its events keep the leaves of their
      // seqs, and registries number theirs after it.
      PINGMA_RETURN_IF_ERROR(to->Query("INSERT INTO log_leaves(leaf, seq) SELECT seq - 1, seq "
                                       "FROM events WHERE seq > $1 AND seq <= $2",
                                       {std::to_string(seq), std::to_string(batch_last)})
                                 .status());
      PINGMA_RETURN_IF_ERROR(
          to->Query("SELECT setval('event_seq', $1, false)", {std::to_string(batch_last + 1)})
              .status());
      return to
          ->Query("UPDATE chain_head SET seq = $1, hash = $2",
                  {std::to_string(batch_last), pg::Hex(head)})
          .status();
    };
    PINGMA_RETURN_IF_ERROR(pg::InTransaction(*to, copy_batch));
    seq = batch_last;
    if (options.progress) options.progress("events", seq, *last_seq);
  }

  // What arrived: the chain walked end to end, its head the file's, every table's
  // rows as many as the file's.
  auto walk = WalkChain(options.to);
  if (!walk.ok()) return walk.status();
  auto file_head = SqliteHash(**from, *last_seq);
  if (!file_head.ok()) return file_head.status();
  if (walk->length != *last_seq || walk->head != *file_head) {
    return Status::Corruption(
        fmt::format("PostgreSQL's chain ends at event #{}, the SQLite store's at #{}", walk->length,
                    *last_seq));
  }
  for (const char* table : kTables) {
    auto ours = SqliteInt(**from, fmt::format("SELECT count(*) FROM {}", table));
    if (!ours.ok()) return ours.status();
    auto theirs = pg::QueryInt(*to, fmt::format("SELECT count(*) FROM {}", table));
    if (!theirs.ok()) return theirs.status();
    if (*ours != *theirs) {
      return Status::Corruption(
          fmt::format("{}: {} rows in SQLite, {} in PostgreSQL", table, *ours, *theirs));
    }
  }
  // due_counts was made by the trigger from the cylinders copied: it must count as
  // the file's does. (The file may also keep rows counted down to zero, which mean
  // nothing and are not made again.)
  for (const char* figure : {"count(*)", "COALESCE(sum(n), 0)"}) {
    const std::string query = fmt::format("SELECT {} FROM due_counts WHERE n <> 0", figure);
    auto ours = SqliteInt(**from, query);
    if (!ours.ok()) return ours.status();
    auto theirs = pg::QueryInt(*to, query);
    if (!theirs.ok()) return theirs.status();
    if (*ours != *theirs) {
      return Status::Corruption(
          fmt::format("due_counts: {} is {} in SQLite, {} in PostgreSQL", figure, *ours, *theirs));
    }
  }
  (void)(*from)->Exec("COMMIT");
  return fmt::format("migrated: {} events and {} rows in {} tables; chain intact, head {}",
                     walk->length, rows, std::size(kTables), HexOf(walk->head));
}

}  // namespace

Result<std::string> Migrate(const std::string& from, const std::string& to, std::int64_t batch,
                            const CopyProgress& progress) {
  if (!pg::IsConnectionString(to)) {
    return Status::Invalid("--to must be a PostgreSQL connection string (postgresql://...)");
  }
  MigrateOptions options;
  options.from = from;
  options.to = to;
  options.batch = batch;
  options.progress = progress;
  return Copy(options);
}

}  // namespace pingma::registry
