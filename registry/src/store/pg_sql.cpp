#include "store/pg_sql.h"

#include <algorithm>
#include <cstdlib>
#include <utility>

#include <fmt/format.h>

namespace pingma::sql {

Result<std::unique_ptr<PgDatabase>> PgDatabase::Open(const std::string& conninfo) {
  auto conn = pg::Connection::Open(conninfo);
  if (!conn.ok()) return conn.status();
  return std::unique_ptr<PgDatabase>(new PgDatabase(std::move(*conn)));
}

Result<std::unique_ptr<Statement>> PgDatabase::Prepare(std::string_view sql) {
  // Transaction control cannot be prepared in PostgreSQL: it is sent as it is.
  bool simple = false;
  for (const char* word : {"SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT"}) {
    simple = simple || sql.rfind(word, 0) == 0;
  }
  return std::unique_ptr<Statement>(new PgStatement(this, std::string(sql), simple));
}

Status PgDatabase::Exec(std::string_view sql) {
  const Status flushed = Claim(nullptr);
  // A held-back write's failure is this command's, unless the command is the
  // rollback that undoes it.
  if (!flushed.ok() && sql.rfind("ROLLBACK", 0) != 0) return flushed;
  ++direct_;
  return pg_.Exec(std::string(sql));
}

std::optional<WriteMark> PgDatabase::MarkWrites() {
  if (!deferring_ || !deferred_failure_.ok()) return std::nullopt;
  return WriteMark{held_total_, direct_};
}

bool PgDatabase::SettleJob(const WriteMark& mark, bool undo) {
  const char* why = nullptr;
  if (pg_.in_failed_transaction()) {
    why = "a statement of a job failed, and the job went on";
  } else if (undo && (direct_ != mark.direct || sent_total_ > mark.held)) {
    why = "a job failed after some of its writes were sent";
  }
  if (why == nullptr) {
    if (undo) {  // its writes are the last held: they go unsent
      held_.resize(held_.size() - static_cast<std::size_t>(held_total_ - mark.held));
      held_total_ = mark.held;
    }
    return true;
  }
  if (deferred_failure_.ok()) {
    deferred_failure_ =
        Status::Unavailable(std::string(why) + ": the batch runs again, each job in a savepoint");
  }
  return false;
}

Status PgDatabase::Claim(PgStatement* next) {
  if (streaming_ != nullptr && streaming_ != next) streaming_->ReadAhead();
  streaming_ = nullptr;
  return Flush();
}

void PgDatabase::set_deferring(bool on) {
  held_.clear();
  sent_total_ = held_total_;
  deferring_ = on;
  deferred_failure_ = Status::Ok();
}

Status PgDatabase::ExecDeferred(std::string sql) {
  if (!deferring_) return Exec(sql);
  return Hold({std::string(), std::move(sql), {}});
}

Status PgDatabase::Hold(pg::PipelinedStatement statement) {
  // Each answer is a few dozen bytes: this many fit the socket's buffers while
  // the statements are still being sent.
  constexpr std::size_t kMostHeld = 256;
  held_.push_back(std::move(statement));
  ++held_total_;
  return held_.size() < kMostHeld ? Status::Ok() : Claim(nullptr);
}

Status PgDatabase::Flush() {
  if (held_.empty()) return Status::Ok();
  const std::vector<pg::PipelinedStatement> held = std::exchange(held_, {});
  sent_total_ += held.size();
  Status status = pg_.RunPipeline(held);
  if (!status.ok() && deferred_failure_.ok()) deferred_failure_ = status;
  return status;
}

void PgStatement::ReadAhead() {
  for (;;) {
    auto next = db_->pg_.Next();
    if (!next.ok()) {
      ahead_error_ = next.status();
      break;
    }
    if (!*next) break;
    ahead_.push_back(std::move(**next));
  }
}

Result<std::optional<pg::Rows>> PgStatement::Take() {
  if (!ahead_.empty()) {
    pg::Rows rows = std::move(ahead_.front());
    ahead_.pop_front();
    return std::optional<pg::Rows>(std::move(rows));
  }
  if (!ahead_error_.ok()) return std::exchange(ahead_error_, Status::Ok());
  if (db_->streaming_ != this) return std::optional<pg::Rows>();  // all read ahead
  return db_->pg_.Next();
}

Statement& PgStatement::Set(int i, pg::Param value, unsigned type) {
  if (i < 1) return *this;
  if (params_.size() < static_cast<std::size_t>(i)) {
    params_.resize(i);
    types_.resize(i, 0);
  }
  params_[i - 1] = std::move(value);
  types_[i - 1] = type;
  return *this;
}

Statement& PgStatement::Bind(int i, std::string_view text) {
  return Set(i, std::string(text), 0);
}
Statement& PgStatement::Bind(int i, std::int64_t value) {
  return Set(i, std::to_string(value), pg::Rows::kInt8Oid);
}
Statement& PgStatement::Bind(int i, double value) {
  return Set(i, fmt::format("{}", value), pg::Rows::kFloat8Oid);
}
Statement& PgStatement::BindBlob(int i, const void* data, size_t size) {
  return Set(i, pg::Hex(std::string_view(static_cast<const char*>(data), size)),
             pg::Rows::kByteaOid);
}

Result<std::pair<const std::string*, int>> PgStatement::Prepared() {
  for (const Prepared_& p : prepared_) {
    if (p.types == types_) return std::pair<const std::string*, int>(&p.name, p.parameters);
  }
  // Numbers and bytes go with their types. Text and NULL are left for the server
  // to infer from where they stand; where it cannot (`$1 IS NULL OR col = $1`), as
  // text, which is what SQLite's statements compare them with there.
  pg::Connection& pg = db_->pg_;
  std::string name = "s" + std::to_string(++db_->statements_);
  Status status = pg.Prepare(name, sql_, types_);
  // A parameter whose type the server cannot infer: as text, and so is one left
  // unbound past the last bound (NULL), one more at a time until it prepares.
  std::vector<unsigned> as_text = types_;
  for (unsigned& t : as_text) {
    if (t == 0) t = pg::Rows::kTextOid;
  }
  for (bool first = true; !status.ok() && as_text.size() < 65535; first = false) {
    const std::string& state = pg.last_sqlstate();
    if (state != "42P08" && state != "42P18") break;
    if (!first) as_text.push_back(pg::Rows::kTextOid);
    status = pg.Prepare(name, sql_, as_text);
  }
  if (!status.ok()) return status;
  auto parameters = pg.ParameterCount(name);
  if (!parameters.ok()) return parameters.status();
  prepared_.push_back({types_, std::move(name), *parameters});
  const Prepared_& made = prepared_.back();
  return std::pair<const std::string*, int>(&made.name, made.parameters);
}

Result<bool> PgStatement::Step() {
  pg::Connection& pg = db_->pg_;
  if (simple_) {
    PINGMA_RETURN_IF_ERROR(db_->Exec(sql_));
    return false;
  }
  if (!running_) {
    PINGMA_RETURN_IF_ERROR(db_->Claim(this));
    auto prepared = Prepared();
    if (!prepared.ok()) return prepared.status();
    // A parameter never bound is NULL, as in SQLite.
    params_.resize(static_cast<std::size_t>(std::max<int>(prepared->second, params_.size())));
    if (sql_.rfind("SELECT", 0) != 0) ++db_->direct_;  // a write, or may hold one (WITH)
    PINGMA_RETURN_IF_ERROR(pg.SendPrepared(*prepared->first, params_));
    running_ = true;
    db_->streaming_ = this;
  }
  auto next = Take();
  if (!next.ok()) {
    Reset();
    return next.status();
  }
  if (*next && (*next)->size() == 1) {
    row_ = std::move(**next);
    // One string per column, made before any Blob: views of them stay valid
    // until the next Step.
    bytes_.assign(static_cast<std::size_t>(row_.Columns()), std::string());
    return true;
  }
  // The end: how many rows a write changed, and the connection free again.
  if (*next) db_->changes_ = (*next)->Affected();
  const auto params = std::move(params_);
  const auto types = std::move(types_);
  Reset();
  // As in SQLite, the bindings stay for the next run until Reset.
  params_ = std::move(params);
  types_ = std::move(types);
  return false;
}

Status PgStatement::Defer() {
  if (!db_->deferring_) return Run();
  if (simple_) return db_->ExecDeferred(sql_);
  const bool known = std::any_of(prepared_.begin(), prepared_.end(),
                                 [this](const Prepared_& p) { return p.types == types_; });
  // Preparing waits for the server, which must first have what is held.
  if (!known) PINGMA_RETURN_IF_ERROR(db_->Claim(nullptr));
  auto prepared = Prepared();
  if (!prepared.ok()) return prepared.status();
  std::vector<pg::Param> params = std::move(params_);  // Reset would clear them
  params.resize(static_cast<std::size_t>(std::max<int>(prepared->second, params.size())));
  Status held = db_->Hold({*prepared->first, sql_, std::move(params)});
  Reset();
  return held;
}

void PgStatement::Reset() {
  if (db_->streaming_ == this) {
    db_->pg_.Drain();
    db_->streaming_ = nullptr;
  }
  running_ = false;
  ahead_.clear();
  ahead_error_ = Status::Ok();
  params_.clear();
  types_.clear();
  row_ = pg::Rows();
}

std::int64_t PgStatement::Int(int col) const {
  if (IsNull(col)) return 0;
  if (row_.Type(col) == pg::Rows::kBoolOid) return row_.Text(0, col) == "t";
  const std::string text = row_.Text(0, col);
  return text.find_first_of(".eE") == std::string::npos
             ? std::strtoll(text.c_str(), nullptr, 10)
             : static_cast<std::int64_t>(std::strtod(text.c_str(), nullptr));
}

double PgStatement::Double(int col) const {
  if (IsNull(col)) return 0;
  if (row_.Type(col) == pg::Rows::kBoolOid) return row_.Text(0, col) == "t";
  return std::strtod(row_.Text(0, col).c_str(), nullptr);
}

std::string PgStatement::Text(int col) const {
  if (IsNull(col)) return std::string();
  if (row_.Type(col) == pg::Rows::kBoolOid) return row_.Text(0, col) == "t" ? "1" : "0";
  if (row_.Type(col) == pg::Rows::kByteaOid) return row_.Bytes(0, col);
  return row_.Text(0, col);
}

std::string_view PgStatement::Blob(int col) const {
  if (col < 0 || static_cast<std::size_t>(col) >= bytes_.size()) return std::string_view();
  bytes_[col] = Text(col);
  return bytes_[col];
}

}  // namespace pingma::sql
