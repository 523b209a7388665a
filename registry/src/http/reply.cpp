#include "http/reply.h"

#include <fmt/format.h>

namespace pingma::registry {

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kMalformed:
      return 400;
    case StatusCode::kUnauthenticated:
      return 401;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kConflict:
      return 409;
    case StatusCode::kTooLarge:
      return 413;
    case StatusCode::kInvalid:
      return 422;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kIoError:
    case StatusCode::kCorruption:
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

Reply ErrorReply(const Status& status) {
  Reply r;
  r.status = HttpStatusFor(status.code());
  r.body = {{"error", {{"code", StatusCodeName(status.code())}, {"message", status.message()}}}};
  return r;
}

Reply IdInUse(std::string_view what) {
  Reply r;
  r.status = 409;
  r.body = {
      {"error",
       {{"code", "ID_IN_USE"},
        {"message", fmt::format("{} is already used by another caller: make a new one", what)}}}};
  return r;
}

Reply MethodNotAllowed(std::string_view method, std::string_view path,
                       const std::vector<std::string>& allowed) {
  std::string allow;
  for (const std::string& m : allowed) allow += (allow.empty() ? "" : ", ") + m;
  Reply r;
  r.status = 405;
  r.body = {
      {"error",
       {{"code", "METHOD_NOT_ALLOWED"},
        {"message", fmt::format("{} is not allowed on {}; it takes {}", method, path, allow)}}}};
  r.headers.emplace_back("Allow", allow);
  return r;
}

}  // namespace pingma::registry
