#include "store/pg.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

namespace pingma::pg {
namespace {

// libpq's messages end with a newline.
std::string Trimmed(const char* message) {
  std::string text = message != nullptr ? message : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return 0;
}

}  // namespace

bool IsConnectionString(std::string_view db) {
  if (db.rfind("postgresql://", 0) == 0 || db.rfind("postgres://", 0) == 0) return true;
  // key=value form: a file name does not hold '=' in the first word.
  const auto eq = db.find('=');
  return eq != std::string_view::npos && db.substr(0, eq).find_first_of("/ ") == std::string::npos;
}

std::string Hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out = "\\x";
  out.reserve(2 + bytes.size() * 2);
  for (unsigned char b : bytes) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 15]);
  }
  return out;
}

Rows& Rows::operator=(Rows&& other) noexcept {
  if (this != &other) {
    if (result_ != nullptr) PQclear(result_);
    result_ = other.result_;
    other.result_ = nullptr;
  }
  return *this;
}

Rows::~Rows() {
  if (result_ != nullptr) PQclear(result_);
}

int Rows::size() const {
  return result_ != nullptr ? PQntuples(result_) : 0;
}

int Rows::Columns() const {
  return result_ != nullptr ? PQnfields(result_) : 0;
}

std::int64_t Rows::Affected() const {
  const char* n = result_ != nullptr ? PQcmdTuples(result_) : nullptr;
  return n != nullptr && *n != '\0' ? std::strtoll(n, nullptr, 10) : 0;
}

unsigned Rows::Type(int col) const {
  return PQftype(result_, col);
}

bool Rows::IsNull(int row, int col) const {
  return PQgetisnull(result_, row, col) != 0;
}

std::string Rows::Text(int row, int col) const {
  return std::string(PQgetvalue(result_, row, col),
                     static_cast<std::size_t>(PQgetlength(result_, row, col)));
}

std::int64_t Rows::Int(int row, int col) const {
  return std::strtoll(PQgetvalue(result_, row, col), nullptr, 10);
}

std::string Rows::Bytes(int row, int col) const {
  const std::string text = Text(row, col);
  std::string out;
  if (text.rfind("\\x", 0) != 0) return text;
  out.reserve((text.size() - 2) / 2);
  for (std::size_t i = 2; i + 1 < text.size(); i += 2) {
    out.push_back(static_cast<char>(HexValue(text[i]) * 16 + HexValue(text[i + 1])));
  }
  return out;
}

Result<Connection> Connection::Open(const std::string& conninfo) {
  // Defaults first: the expanded string's own settings come after and win.
  // A database that is slow or stuck (a lock held, a disk that does not answer)
  // fails a statement after 15 s instead of holding the request: the client gets a
  // 503 and may retry. The string's own `options` replace these.
  const char* keywords[] = {"connect_timeout", "application_name", "options", "dbname", nullptr};
  const char* values[] = {"10", "pingma-registry",
                          "-c statement_timeout=15000 -c lock_timeout=15000", conninfo.c_str(),
                          nullptr};
  pg_conn* conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (conn == nullptr) return Status::Internal("libpq could not allocate a connection");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = Trimmed(PQerrorMessage(conn));
    PQfinish(conn);
    return Status::Unavailable("cannot connect to PostgreSQL: " + message);
  }
  // Nothing here depends on the server's notices.
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  return Connection(conn);
}

Connection& Connection::operator=(Connection&& other) noexcept {
  if (this != &other) {
    if (conn_ != nullptr) PQfinish(conn_);
    conn_ = other.conn_;
    other.conn_ = nullptr;
  }
  return *this;
}

Connection::~Connection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

Status Connection::ResultStatus(pg_result* result, const std::string& what) const {
  const ExecStatusType status = result != nullptr ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_SINGLE_TUPLE ||
      status == PGRES_COPY_IN) {
    return Status::Ok();
  }
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const std::string sqlstate = state != nullptr ? state : "";
  last_sqlstate_ = sqlstate;
  if (sqlstate == "23505" || sqlstate == "23P01" || sqlstate == "40P01" || sqlstate == "40001") {
    ++races_;
  }
  std::string message =
      Trimmed(result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(conn_));
  if (message.empty()) message = Trimmed(PQerrorMessage(conn_));
  const std::string text = fmt::format("PostgreSQL, {}: {}", what, message);
  // Class 08: the connection; 57P0x: the server shutting down or starting;
  // 40001/40P01: a serialization failure or a deadlock, 55P03/57014: a lock or a
  // statement that took longer than its timeout (a slow or stuck database), 25006:
  // a read-only transaction (a standby, not the primary). A retry may cure each.
  if (PQstatus(conn_) != CONNECTION_OK || sqlstate.rfind("08", 0) == 0 ||
      sqlstate.rfind("57P0", 0) == 0 || sqlstate == "40001" || sqlstate == "40P01" ||
      sqlstate == "55P03" || sqlstate == "57014" || sqlstate == "25006") {
    return Status::Unavailable(text);
  }
  if (sqlstate.rfind("23", 0) == 0) return Status::Conflict(text);  // a constraint
  return Status::IoError(text);
}

Result<Rows> Connection::Query(const std::string& sql, const std::vector<Param>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const Param& p : params) values.push_back(p ? p->c_str() : nullptr);
  pg_result* result = PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                                   values.data(), nullptr, nullptr, 0);
  Rows rows(result);
  const std::string what = sql.substr(0, sql.find_first_of(" \n("));
  PINGMA_RETURN_IF_ERROR(ResultStatus(result, what));
  return rows;
}

bool Connection::ok() const {
  return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK;
}

bool Connection::in_failed_transaction() const {
  return conn_ != nullptr && PQtransactionStatus(conn_) == PQTRANS_INERROR;
}

Status Connection::Prepare(const std::string& name, const std::string& sql,
                           const std::vector<unsigned>& types) {
  Rows rows(PQprepare(conn_, name.c_str(), sql.c_str(), static_cast<int>(types.size()),
                      types.empty() ? nullptr : types.data()));
  const auto status = ResultStatus(rows.result_, "prepare");
  if (!status.ok()) {
    return Status(status.code(), status.message() + " (in: " + sql.substr(0, 200) + ")");
  }
  return status;
}

Result<Rows> Connection::QueryPrepared(const std::string& name, const std::vector<Param>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const Param& p : params) values.push_back(p ? p->c_str() : nullptr);
  Rows rows(PQexecPrepared(conn_, name.c_str(), static_cast<int>(values.size()), values.data(),
                           nullptr, nullptr, 0));
  PINGMA_RETURN_IF_ERROR(ResultStatus(rows.result_, "statement"));
  return rows;
}

Result<int> Connection::ParameterCount(const std::string& name) {
  Rows described(PQdescribePrepared(conn_, name.c_str()));
  PINGMA_RETURN_IF_ERROR(ResultStatus(described.result_, "describe"));
  return PQnparams(described.result_);
}

Status Connection::SendPrepared(const std::string& name, const std::vector<Param>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const Param& p : params) values.push_back(p ? p->c_str() : nullptr);
  if (PQsendQueryPrepared(conn_, name.c_str(), static_cast<int>(values.size()), values.data(),
                          nullptr, nullptr, 0) != 1 ||
      PQsetSingleRowMode(conn_) != 1) {
    const std::string message = Trimmed(PQerrorMessage(conn_));
    Drain();
    return ok() ? Status::IoError("PostgreSQL, statement: " + message)
                : Status::Unavailable("PostgreSQL, statement: " + message);
  }
  return Status::Ok();
}

Result<std::optional<Rows>> Connection::Next() {
  pg_result* result = PQgetResult(conn_);
  if (result == nullptr) return std::optional<Rows>();
  Rows rows(result);
  Status status = ResultStatus(result, "statement");
  if (!status.ok()) {
    Drain();
    return status;
  }
  return std::optional<Rows>(std::move(rows));
}

void Connection::Drain() {
  while (pg_result* result = PQgetResult(conn_)) PQclear(result);
}

Status Connection::RunPipeline(const std::vector<PipelinedStatement>& statements) {
  if (statements.empty()) return Status::Ok();
  const auto broken = [this](const char* step) {
    const std::string text =
        fmt::format("PostgreSQL, {}: {}", step, Trimmed(PQerrorMessage(conn_)));
    return ok() ? Status::IoError(text) : Status::Unavailable(text);
  };
  if (PQenterPipelineMode(conn_) != 1) return broken("pipeline");
  std::size_t sent = 0;
  std::vector<const char*> values;
  for (const PipelinedStatement& s : statements) {
    values.clear();
    for (const Param& p : s.params) values.push_back(p ? p->c_str() : nullptr);
    const int queued =
        s.name.empty()
            ? PQsendQueryParams(conn_, s.sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0)
            : PQsendQueryPrepared(conn_, s.name.c_str(), static_cast<int>(values.size()),
                                  values.data(), nullptr, nullptr, 0);
    if (queued != 1) break;
    ++sent;
  }
  Status status = Status::Ok();
  if (sent < statements.size()) status = broken("statement");
  if (PQpipelineSync(conn_) != 1) return broken("pipeline");
  // Each statement's results end with a null; PostgreSQL skips those after a
  // failure (PGRES_PIPELINE_ABORTED) until the sync, whose own result ends it all.
  for (std::size_t i = 0; i < sent && ok(); ++i) {
    while (pg_result* result = PQgetResult(conn_)) {
      Rows rows(result);
      if (PQresultStatus(result) == PGRES_PIPELINE_ABORTED || !status.ok()) continue;
      const std::string& sql = statements[i].sql;
      status = ResultStatus(result, sql.substr(0, std::min(sql.find_first_of(" (\n"), sql.size())));
    }
  }
  for (std::size_t nulls = 0; nulls <= statements.size();) {
    pg_result* result = PQgetResult(conn_);
    if (result == nullptr) {
      if (!ok()) break;
      ++nulls;  // a statement's trailing null, left when the connection failed mid-way
      continue;
    }
    const bool synced = PQresultStatus(result) == PGRES_PIPELINE_SYNC;
    PQclear(result);
    if (synced) break;
  }
  if (!ok()) return status.ok() ? broken("pipeline") : status;
  if (PQexitPipelineMode(conn_) != 1) return status.ok() ? broken("pipeline") : status;
  return status;
}

Status Connection::Exec(const std::string& sql) {
  Rows rows(PQexec(conn_, sql.c_str()));
  // Named by its first word: BEGIN, COMMIT, SAVEPOINT, CREATE...
  const std::string what = sql.substr(0, std::min(sql.find_first_of(" ;\n"), sql.size()));
  return ResultStatus(rows.result_, what);
}

Status Connection::Copy(const std::string& sql, std::string_view data) {
  {
    Rows start(PQexec(conn_, sql.c_str()));
    if (start.result_ == nullptr || PQresultStatus(start.result_) != PGRES_COPY_IN) {
      PINGMA_RETURN_IF_ERROR(ResultStatus(start.result_, "COPY"));
      return Status::Internal("PostgreSQL did not start the COPY");
    }
  }
  // In pieces well under libpq's int length.
  constexpr std::size_t kPiece = 1 << 20;
  for (std::size_t at = 0; at < data.size(); at += kPiece) {
    const std::size_t n = std::min(kPiece, data.size() - at);
    if (PQputCopyData(conn_, data.data() + at, static_cast<int>(n)) != 1) {
      return Status::Unavailable("PostgreSQL, COPY: " + Trimmed(PQerrorMessage(conn_)));
    }
  }
  if (PQputCopyEnd(conn_, nullptr) != 1) {
    return Status::Unavailable("PostgreSQL, COPY: " + Trimmed(PQerrorMessage(conn_)));
  }
  Status status = Status::Ok();
  while (pg_result* result = PQgetResult(conn_)) {
    Rows end(result);
    if (status.ok()) status = ResultStatus(result, "COPY");
  }
  return status;
}

void Connection::CopyField(std::string* out, const std::optional<std::string_view>& value) {
  if (!value) {
    out->append("\\N");
    return;
  }
  for (char c : *value) {
    switch (c) {
      case '\\':
        out->append("\\\\");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      default:
        out->push_back(c);
    }
  }
}

Status InTransaction(Connection& conn, const std::function<Status()>& fn) {
  PINGMA_RETURN_IF_ERROR(conn.Exec("BEGIN"));
  Status status = fn();
  if (status.ok()) status = conn.Exec("COMMIT");
  if (!status.ok()) (void)conn.Exec("ROLLBACK");
  return status;
}

Result<std::int64_t> QueryInt(Connection& conn, const std::string& sql,
                              const std::vector<Param>& params) {
  auto rows = conn.Query(sql, params);
  if (!rows.ok()) return rows.status();
  if (rows->size() == 0 || rows->IsNull(0, 0)) return std::int64_t{0};
  return rows->Int(0, 0);
}

}  // namespace pingma::pg
