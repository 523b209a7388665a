#include "store/sqlite.h"

#include <cstdlib>

#include <fmt/format.h>

namespace pingma::sql {

Result<Database> Database::Open(const std::string& path, bool create, bool read_only,
                                const char* vfs) {
  sqlite3* raw = nullptr;
  int flags = read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (create && !read_only) flags |= SQLITE_OPEN_CREATE;
  flags |= SQLITE_OPEN_NOMUTEX;  // one thread per connection, by contract
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, vfs);
  Database db(raw);
  if (rc != SQLITE_OK) {
    return Status::IoError(fmt::format("cannot open database {}: {}", path,
                                       raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  sqlite3_busy_timeout(raw, 10000);
  // synchronous=FULL: every commit is fsync'ed to the WAL before it returns, so an
  // acknowledged record survives power loss (NORMAL alone would only survive a
  // crash of the process). The registry's writer leaves its commits' syncs to its
  // syncer threads, which make each commit durable before it is acknowledged (see
  // Store::SyncLoop and wal_vfs.h).
  PINGMA_RETURN_IF_ERROR(
      db.Exec("PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL; PRAGMA mmap_size=1073741824;"));
  if (!read_only) {
    // Checkpoints are run by the writer after a commit, every 1000 WAL pages: by
    // SQLite itself, or by the registry's Store, which runs them just after the
    // commit so that their syncs stay real ones. Measured: a separate
    // checkpointing thread let the WAL grow without bound under steady writes
    // (passive checkpoints never caught up), and even with a backstop its I/O on a
    // large file doubled the fill-check p99.
    PINGMA_RETURN_IF_ERROR(db.Exec("PRAGMA journal_mode=WAL; PRAGMA journal_size_limit=67108864;"));
  }
  return db;
}

Result<Database> Database::OpenPostgres(const std::string& conninfo) {
  auto conn = pg::Connection::Open(conninfo);
  if (!conn.ok()) return conn.status();
  Database db;
  db.pg_ = std::make_unique<pg::Connection>(std::move(*conn));
  return db;
}

Database& Database::operator=(Database&& other) noexcept {
  if (this != &other) {
    if (db_) sqlite3_close_v2(db_);
    db_ = other.db_;
    other.db_ = nullptr;
    pg_ = std::move(other.pg_);
    pg_changes_ = other.pg_changes_;
    pg_statements_ = other.pg_statements_;
  }
  return *this;
}

Database::~Database() {
  if (db_) sqlite3_close_v2(db_);
}

Status Database::Exec(std::string_view sql) {
  if (pg_) return pg_->Exec(pg::FromSqlite(sql));
  char* err = nullptr;
  const std::string text(sql);
  if (sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    Status s = Status::IoError(fmt::format("sqlite: {}", err ? err : "unknown error"));
    sqlite3_free(err);
    return s;
  }
  return Status::Ok();
}

Status Database::Error(std::string_view what) const {
  if (pg_) return Status::IoError(std::string(what));
  return Status::IoError(fmt::format("{}: {}", what, sqlite3_errmsg(db_)));
}

Result<Statement> Statement::Prepare(const Database& db, std::string_view sql) {
  Statement st;
  if (db.pg_) {
    st.pg_db_ = &db;
    // Transaction control cannot be prepared in PostgreSQL: it is sent as it is.
    for (const char* word : {"SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT"}) {
      if (sql.rfind(word, 0) == 0) {
        st.pg_simple_ = std::string(sql);
        return st;
      }
    }
    st.pg_sql_ = pg::FromSqlite(sql, &st.pg_parameters_);
    return st;
  }
  st.db_ = db.get();
  if (sqlite3_prepare_v3(db.get(), sql.data(), static_cast<int>(sql.size()),
                         SQLITE_PREPARE_PERSISTENT, &st.stmt_, nullptr) != SQLITE_OK) {
    return db.Error(fmt::format("prepare '{}'", sql.substr(0, 60)));
  }
  return st;
}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    if (stmt_) sqlite3_finalize(stmt_);
    db_ = other.db_;
    stmt_ = other.stmt_;
    other.stmt_ = nullptr;
    pg_db_ = other.pg_db_;
    pg_sql_ = std::move(other.pg_sql_);
    pg_parameters_ = other.pg_parameters_;
    pg_simple_ = std::move(other.pg_simple_);
    pg_types_ = std::move(other.pg_types_);
    pg_prepared_ = std::move(other.pg_prepared_);
    pg_params_ = std::move(other.pg_params_);
    pg_rows_ = std::move(other.pg_rows_);
    pg_row_ = other.pg_row_;
    pg_run_ = other.pg_run_;
  }
  return *this;
}

Statement& Statement::PgBind(int i, std::optional<std::string> value, unsigned type) {
  if (i < 1) return *this;
  if (pg_params_.size() < static_cast<std::size_t>(i)) {
    pg_params_.resize(i);
    pg_types_.resize(i, 0);
  }
  pg_params_[i - 1] = std::move(value);
  pg_types_[i - 1] = type;
  return *this;
}

Result<const std::string*> Statement::PgPrepared() {
  // A parameter never bound is NULL, as in SQLite.
  if (pg_params_.size() < static_cast<std::size_t>(pg_parameters_)) {
    pg_params_.resize(static_cast<std::size_t>(pg_parameters_));
    pg_types_.resize(static_cast<std::size_t>(pg_parameters_), 0);
  }
  for (const auto& [types, name] : pg_prepared_) {
    if (types == pg_types_) return &name;
  }
  // Numbers and bytes go with their types. Text and NULL are left for the server
  // to infer from where they stand; where it cannot (`? IS NULL OR col = ?`), as
  // text, which is what SQLite's statements compare them with there.
  std::string name = "s" + std::to_string(++pg_db_->pg_statements_);
  Status status = pg_db_->pg_->Prepare(name, pg_sql_, pg_types_);
  const std::string& state = pg_db_->pg_->last_sqlstate();
  if (!status.ok() && (state == "42P08" || state == "42P18")) {  // a parameter's type unknown
    std::vector<unsigned> as_text = pg_types_;
    for (unsigned& t : as_text) {
      if (t == 0) t = pg::Rows::kTextOid;
    }
    status = pg_db_->pg_->Prepare(name, pg_sql_, as_text);
  }
  if (!status.ok()) return status;
  pg_prepared_.emplace_back(pg_types_, std::move(name));
  return &pg_prepared_.back().second;
}

Statement::~Statement() {
  if (stmt_) sqlite3_finalize(stmt_);
}

Statement& Statement::Bind(int i, std::string_view text) {
  if (pg_db_) return PgBind(i, std::string(text));
  sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::BindUnowned(int i, std::string_view text) {
  if (pg_db_) return PgBind(i, std::string(text));
  sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
  return *this;
}
Statement& Statement::BindBlobUnowned(int i, std::string_view bytes) {
  if (pg_db_) return PgBind(i, pg::Hex(bytes), pg::Rows::kByteaOid);
  sqlite3_bind_blob(stmt_, i, bytes.data(), static_cast<int>(bytes.size()), SQLITE_STATIC);
  return *this;
}
Statement& Statement::Bind(int i, std::int64_t value) {
  if (pg_db_) return PgBind(i, std::to_string(value), pg::Rows::kInt8Oid);
  sqlite3_bind_int64(stmt_, i, value);
  return *this;
}
Statement& Statement::Bind(int i, double value) {
  if (pg_db_) return PgBind(i, fmt::format("{}", value), pg::Rows::kFloat8Oid);
  sqlite3_bind_double(stmt_, i, value);
  return *this;
}
Statement& Statement::BindBlob(int i, const void* data, size_t size) {
  if (pg_db_) {
    return PgBind(i, pg::Hex(std::string_view(static_cast<const char*>(data), size)),
                  pg::Rows::kByteaOid);
  }
  sqlite3_bind_blob(stmt_, i, data, static_cast<int>(size), SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::BindNull(int i) {
  if (pg_db_) return PgBind(i, std::nullopt);
  sqlite3_bind_null(stmt_, i);
  return *this;
}

Result<bool> Statement::Step() {
  if (pg_db_) {
    if (!pg_simple_.empty()) {
      PINGMA_RETURN_IF_ERROR(pg_db_->pg_->Exec(pg_simple_));
      return false;
    }
    if (!pg_run_) {
      auto name = PgPrepared();
      if (!name.ok()) return name.status();
      auto rows = pg_db_->pg_->QueryPrepared(**name, pg_params_);
      if (!rows.ok()) return rows.status();
      pg_rows_ = std::move(*rows);
      pg_db_->pg_changes_ = pg_rows_.Affected();
      pg_run_ = true;
      pg_row_ = 0;
    } else {
      ++pg_row_;
    }
    // One string per column, made before any Blob: views of them stay valid
    // until the next Step.
    pg_bytes_.assign(static_cast<std::size_t>(pg_rows_.Columns()), std::string());
    return pg_row_ < pg_rows_.size();
  }
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  const int ext = sqlite3_extended_errcode(db_);
  std::string msg = sqlite3_errmsg(db_);
  sqlite3_reset(stmt_);
  if ((ext & 0xff) == SQLITE_CONSTRAINT) return Status::Conflict(msg);
  return Status::IoError("sqlite: " + msg);
}

Status Statement::Run() {
  auto r = Step();
  Reset();
  return r.status();
}

void Statement::Reset() {
  if (pg_db_) {
    pg_params_.clear();
    pg_types_.clear();
    pg_rows_ = pg::Rows();
    pg_run_ = false;
    pg_row_ = -1;
    return;
  }
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int Statement::Type(int col) const {
  if (!pg_db_) return sqlite3_column_type(stmt_, col);
  if (PgNull(col)) return SQLITE_NULL;
  switch (pg_rows_.Type(col)) {
    case pg::Rows::kBoolOid:
    case pg::Rows::kInt2Oid:
    case pg::Rows::kInt4Oid:
    case pg::Rows::kInt8Oid:
      return SQLITE_INTEGER;
    case pg::Rows::kFloat4Oid:
    case pg::Rows::kFloat8Oid:
    case pg::Rows::kNumericOid:
      return SQLITE_FLOAT;
    case pg::Rows::kByteaOid:
      return SQLITE_BLOB;
    default:
      return SQLITE_TEXT;
  }
}

int Statement::Columns() const {
  return pg_db_ ? pg_rows_.Columns() : sqlite3_column_count(stmt_);
}

std::int64_t Statement::Int(int col) const {
  if (!pg_db_) return sqlite3_column_int64(stmt_, col);
  if (PgNull(col)) return 0;
  if (pg_rows_.Type(col) == pg::Rows::kBoolOid) return pg_rows_.Text(pg_row_, col) == "t";
  const std::string text = pg_rows_.Text(pg_row_, col);
  return text.find_first_of(".eE") == std::string::npos
             ? std::strtoll(text.c_str(), nullptr, 10)
             : static_cast<std::int64_t>(std::strtod(text.c_str(), nullptr));
}

double Statement::Double(int col) const {
  if (!pg_db_) return sqlite3_column_double(stmt_, col);
  if (PgNull(col)) return 0;
  if (pg_rows_.Type(col) == pg::Rows::kBoolOid) return pg_rows_.Text(pg_row_, col) == "t";
  return std::strtod(pg_rows_.Text(pg_row_, col).c_str(), nullptr);
}

std::string Statement::Text(int col) const {
  if (pg_db_) {
    if (PgNull(col)) return std::string();
    if (pg_rows_.Type(col) == pg::Rows::kBoolOid) {
      return pg_rows_.Text(pg_row_, col) == "t" ? "1" : "0";
    }
    if (pg_rows_.Type(col) == pg::Rows::kByteaOid) return pg_rows_.Bytes(pg_row_, col);
    return pg_rows_.Text(pg_row_, col);
  }
  const auto* p = sqlite3_column_text(stmt_, col);
  return p ? std::string(reinterpret_cast<const char*>(p),
                         static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
           : std::string();
}

std::string_view Statement::Blob(int col) const {
  if (pg_db_) {
    if (col < 0 || static_cast<std::size_t>(col) >= pg_bytes_.size()) return std::string_view();
    pg_bytes_[col] = Text(col);
    return pg_bytes_[col];
  }
  const void* p = sqlite3_column_blob(stmt_, col);
  return p ? std::string_view(static_cast<const char*>(p),
                              static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
           : std::string_view();
}

}  // namespace pingma::sql
