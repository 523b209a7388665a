#include "pg.h"

#include <libpq-fe.h>

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
  const char* keywords[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {"10", "pingma-registry", conninfo.c_str(), nullptr};
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
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_COPY_IN) {
    return Status::Ok();
  }
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const std::string sqlstate = state != nullptr ? state : "";
  std::string message =
      Trimmed(result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(conn_));
  if (message.empty()) message = Trimmed(PQerrorMessage(conn_));
  const std::string text = fmt::format("PostgreSQL, {}: {}", what, message);
  // Class 08: the connection; 57P0x: the server shutting down or starting;
  // 40001/40P01: a serialization failure or a deadlock, which a retry may cure.
  if (PQstatus(conn_) != CONNECTION_OK || sqlstate.rfind("08", 0) == 0 ||
      sqlstate.rfind("57P0", 0) == 0 || sqlstate == "40001" || sqlstate == "40P01" ||
      sqlstate == "25006") {  // read-only transaction: a standby, not the primary
    return Status::Unavailable(text);
  }
  if (sqlstate == "23505") return Status::Conflict(text);
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

Status Connection::Exec(const std::string& sql) {
  Rows rows(PQexec(conn_, sql.c_str()));
  return ResultStatus(rows.result_, "running the schema");
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

}  // namespace pingma::pg
