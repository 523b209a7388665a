// Status and Result<T>: the one error type that crosses module boundaries.
//
// Like leveldb's Status: a cheap value, OK or a code with a human message. No
// exceptions leave a module; a scan that finds nothing is an empty result, not an
// error. Values are immutable and safe to share between threads.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace pingma {

/// What went wrong, in terms a caller can act on. The HTTP layer maps each to one
/// status (see registry/src/http/reply.cpp): the mapping lives there, not here.
enum class StatusCode {
  kOk = 0,
  kMalformed,         ///< cannot be parsed at all (bad JSON, bad date syntax) -> 400
  kInvalid,           ///< parsed, but breaks a rule (unknown model, negative tare) -> 422
  kNotFound,          ///< the thing named does not exist -> 404
  kConflict,          ///< clashes with what is stored (code registered twice) -> 409
  kUnauthenticated,   ///< no or bad credentials -> 401
  kPermissionDenied,  ///< credentials fine, role not allowed -> 403
  kTooLarge,          ///< input over its size limit -> 413
  kUnavailable,       ///< a peer or device cannot be reached; retrying may help
  kIoError,           ///< the file system or database failed
  kCorruption,        ///< stored data fails its own checks (broken hash chain)
  kInternal,          ///< a bug: an invariant did not hold
};

/// A short, stable, upper-case name for a code ("INVALID", "NOT_FOUND", ...).
const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  static Status Malformed(std::string m) { return {StatusCode::kMalformed, std::move(m)}; }
  static Status Invalid(std::string m) { return {StatusCode::kInvalid, std::move(m)}; }
  static Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status Conflict(std::string m) { return {StatusCode::kConflict, std::move(m)}; }
  static Status Unauthenticated(std::string m) {
    return {StatusCode::kUnauthenticated, std::move(m)};
  }
  static Status PermissionDenied(std::string m) {
    return {StatusCode::kPermissionDenied, std::move(m)};
  }
  static Status TooLarge(std::string m) { return {StatusCode::kTooLarge, std::move(m)}; }
  static Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
  static Status Corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status Internal(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  /// "NOT_FOUND: cylinder HB01 is not registered", or "OK".
  std::string ToString() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

/// A value or the Status saying why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(v_).ok() && "a Result holding a Status must hold an error");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }

  /// The error; Status::Ok() when there is a value.
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }

  T& value() & {
    assert(ok());
    return std::get<T>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<T>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<T>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace pingma

/// Returns the Status of `expr` from the enclosing function when it is not OK.
#define PINGMA_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::pingma::Status pingma_status_ = (expr);        \
    if (!pingma_status_.ok()) return pingma_status_; \
  } while (false)

/// Evaluates `expr`, a Result<T>; when it holds an error, returns that Status from the
/// enclosing function, else moves the value into `lhs`. `lhs` is a declaration or
/// anything assignable:
///
///   PINGMA_ASSIGN_OR_RETURN(auto db, Database::Open(path));   // declares db
///   PINGMA_ASSIGN_OR_RETURN(spec.kind, ParseKind(table));     // assigns
///
/// The form declares a temporary named after __COUNTER__, so that any number of uses
/// share a scope; it expands to several statements, so it cannot be the unbraced body
/// of an if or a loop. A `lhs` with a comma outside parentheses (std::pair<A, B> x)
/// must be declared first and assigned.
#define PINGMA_ASSIGN_OR_RETURN(lhs, expr) \
  PINGMA_ASSIGN_OR_RETURN_IMPL_(PINGMA_STATUS_CONCAT_(pingma_result_, __COUNTER__), lhs, expr)

#define PINGMA_ASSIGN_OR_RETURN_IMPL_(result, lhs, expr) \
  auto result = (expr);                                  \
  if (!result.ok()) return result.status();              \
  lhs = std::move(*result)

#define PINGMA_STATUS_CONCAT_(a, b) PINGMA_STATUS_CONCAT_INNER_(a, b)
#define PINGMA_STATUS_CONCAT_INNER_(a, b) a##b
