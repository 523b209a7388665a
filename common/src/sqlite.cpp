#include "pingma/common/sqlite.h"

#include <cctype>
#include <utility>

namespace pingma::sqlite {
namespace {

// The Status for a failed call on `db`: SQLite's message `message` and the
// extended code of its last error.
Status ErrorStatus(sqlite3* db, const std::string& message) {
  if ((sqlite3_extended_errcode(db) & 0xff) == SQLITE_CONSTRAINT) return Status::Conflict(message);
  return Status::IoError("sqlite: " + message);
}

// N when `name` is "$N" with 0 < N <= `limit`, else 0.
int DollarNumber(const char* name, int limit) {
  if (name == nullptr || name[0] != '$' || name[1] == '\0') return 0;
  int n = 0;
  for (const char* p = name + 1; *p != '\0'; ++p) {
    if (!std::isdigit(static_cast<unsigned char>(*p))) return 0;
    n = n * 10 + (*p - '0');
    if (n > limit) return 0;
  }
  return n;
}

}  // namespace

Result<Database> Database::Open(const std::string& path, const OpenOptions& options) {
  int flags = options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (options.create && !options.read_only) flags |= SQLITE_OPEN_CREATE;
  flags |= SQLITE_OPEN_NOMUTEX;  // one thread per connection, by contract
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, options.vfs);
  Database db(raw);
  if (rc != SQLITE_OK) {
    return Status::IoError("cannot open database " + path + ": " +
                           (raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  sqlite3_busy_timeout(raw, options.busy_timeout_ms);
  std::string pragmas =
      options.foreign_keys ? "PRAGMA foreign_keys=ON;" : "PRAGMA foreign_keys=OFF;";
  pragmas += options.durability == Durability::kPowerLoss ? "PRAGMA synchronous=FULL;"
                                                          : "PRAGMA synchronous=NORMAL;";
  if (options.mmap_size > 0)
    pragmas += "PRAGMA mmap_size=" + std::to_string(options.mmap_size) + ";";
  if (!options.read_only) {
    if (options.wal) pragmas += "PRAGMA journal_mode=WAL;";
    if (options.journal_size_limit >= 0) {
      pragmas += "PRAGMA journal_size_limit=" + std::to_string(options.journal_size_limit) + ";";
    }
  }
  // Last, so that a file that is not a database fails now, not at the first read.
  pragmas += "SELECT count(*) FROM sqlite_master;";
  PINGMA_RETURN_IF_ERROR(db.Exec(pragmas));
  return db;
}

Database::Database(Database&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Database& Database::operator=(Database&& other) noexcept {
  if (this != &other) {
    if (db_) sqlite3_close_v2(db_);
    db_ = std::exchange(other.db_, nullptr);
  }
  return *this;
}

Database::~Database() {
  if (db_) sqlite3_close_v2(db_);
}

Status Database::Exec(std::string_view sql) {
  char* err = nullptr;
  const std::string text(sql);
  if (sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    Status s = ErrorStatus(db_, err ? err : sqlite3_errmsg(db_));
    sqlite3_free(err);
    return s;
  }
  return Status::Ok();
}

Status Database::Error(std::string_view what) const {
  return Status::IoError(std::string(what) + ": " + sqlite3_errmsg(db_));
}

Result<int> Database::UserVersion() {
  PINGMA_ASSIGN_OR_RETURN(auto st, Statement::Prepare(*this, "PRAGMA user_version"));
  PINGMA_ASSIGN_OR_RETURN(const bool row, st.Step());
  if (!row) return Error("PRAGMA user_version");
  return static_cast<int>(st.Int(0));
}

Result<Statement> Statement::Prepare(const Database& db, std::string_view sql) {
  Statement st;
  st.db_ = db.get();
  if (sqlite3_prepare_v3(db.get(), sql.data(), static_cast<int>(sql.size()),
                         SQLITE_PREPARE_PERSISTENT, &st.stmt_, nullptr) != SQLITE_OK) {
    return db.Error("prepare '" + std::string(sql.substr(0, 60)) + "'");
  }
  // No N above SQLite's limit on parameters, so that the map stays small.
  const int limit = sqlite3_limit(db.get(), SQLITE_LIMIT_VARIABLE_NUMBER, -1);
  const int count = sqlite3_bind_parameter_count(st.stmt_);
  for (int index = 1; index <= count; ++index) {
    const int n = DollarNumber(sqlite3_bind_parameter_name(st.stmt_, index), limit);
    if (n == 0) continue;
    if (st.dollar_.size() <= static_cast<size_t>(n)) st.dollar_.resize(n + 1, 0);
    st.dollar_[n] = index;
  }
  return st;
}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_),
      stmt_(std::exchange(other.stmt_, nullptr)),
      dollar_(std::move(other.dollar_)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    if (stmt_) sqlite3_finalize(stmt_);
    db_ = other.db_;
    stmt_ = std::exchange(other.stmt_, nullptr);
    dollar_ = std::move(other.dollar_);
  }
  return *this;
}

Statement::~Statement() {
  if (stmt_) sqlite3_finalize(stmt_);
}

int Statement::Index(int i) const {
  if (dollar_.empty()) return i;
  return i > 0 && static_cast<size_t>(i) < dollar_.size() ? dollar_[i] : 0;
}

Statement& Statement::Bind(int i, std::string_view text) {
  sqlite3_bind_text(stmt_, Index(i), text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::Bind(int i, std::int64_t value) {
  sqlite3_bind_int64(stmt_, Index(i), value);
  return *this;
}
Statement& Statement::Bind(int i, double value) {
  sqlite3_bind_double(stmt_, Index(i), value);
  return *this;
}
Statement& Statement::BindBlob(int i, const void* data, size_t size) {
  sqlite3_bind_blob(stmt_, Index(i), data, static_cast<int>(size), SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::BindUnowned(int i, std::string_view text) {
  sqlite3_bind_text(stmt_, Index(i), text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
  return *this;
}
Statement& Statement::BindBlobUnowned(int i, std::string_view bytes) {
  sqlite3_bind_blob(stmt_, Index(i), bytes.data(), static_cast<int>(bytes.size()), SQLITE_STATIC);
  return *this;
}
Statement& Statement::BindNull(int i) {
  sqlite3_bind_null(stmt_, Index(i));
  return *this;
}

Result<bool> Statement::Step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Status s = ErrorStatus(db_, sqlite3_errmsg(db_));
  sqlite3_reset(stmt_);
  return s;
}

Status Statement::Run() {
  auto done = Step();
  Reset();
  return done.status();
}

Statement& Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  return *this;
}

std::string Statement::Text(int col) const {
  const auto* p = sqlite3_column_text(stmt_, col);
  return p ? std::string(reinterpret_cast<const char*>(p),
                         static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
           : std::string();
}

std::string_view Statement::Blob(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  return p ? std::string_view(static_cast<const char*>(p),
                              static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
           : std::string_view();
}

Transaction::~Transaction() {
  if (open_) static_cast<void>(db_->Exec("ROLLBACK"));
}

Status Transaction::Begin() {
  PINGMA_RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
  open_ = true;
  return Status::Ok();
}

Status Transaction::Commit() {
  PINGMA_RETURN_IF_ERROR(db_->Exec("COMMIT"));
  open_ = false;
  return Status::Ok();
}

Result<Database> OpenVersioned(const std::string& path, const Schema& schema,
                               const OpenOptions& options) {
  PINGMA_ASSIGN_OR_RETURN(auto db, Database::Open(path, options));
  PINGMA_ASSIGN_OR_RETURN(const int found, db.UserVersion());
  if (found > schema.version) {
    return Status::IoError(path + " has " + schema.what + " schema version " +
                           std::to_string(found) + ", newer than this program's " +
                           std::to_string(schema.version));
  }
  if (found < schema.version) PINGMA_RETURN_IF_ERROR(db.Exec(schema.sql));
  return db;
}

Status PrepareAll(const Database& db, std::initializer_list<StatementSql> statements) {
  for (const StatementSql& s : statements) {
    PINGMA_ASSIGN_OR_RETURN(*s.statement, Statement::Prepare(db, s.sql));
  }
  return Status::Ok();
}

}  // namespace pingma::sqlite
