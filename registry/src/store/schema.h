// The store's SQL schemas: the files under store/schema/, compiled into the binary
// at build time (registry/CMakeLists.txt, PINGMA_SCHEMA_FILES), so that nothing is
// read from disk at run time.
//
//   sqlite.sql               the SQLite store's schema, run at every start
//                            (CREATE ... IF NOT EXISTS)
//   sqlite/*.sql             what sqlite.sql cannot do by itself for a store made
//                            before a change (store.cpp, Migrate)
//   fill_due_counts.sql      due_counts made afresh from the cylinders in one
//                            statement, as the triggers keep it row by row: for a
//                            SQLite store made before the table, and by `migrate`
//                            after copying the cylinders (the same SQL runs on both)
//   pg/NNNN_*.sql            the PostgreSQL store's migrations, in order
//                            (pg_store.cpp, kMigrations)
//
// Thread-safety: constant data; any thread.
#pragma once

#include <string_view>

namespace pingma::registry::schema {

/// The text of the file at `path` under store/schema/ ("sqlite.sql",
/// "pg/0001_tables.sql"). A path that was not embedded is a broken build: the
/// process stops with a message naming it.
std::string_view Text(std::string_view path);

}  // namespace pingma::registry::schema
