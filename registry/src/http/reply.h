// What a use case answers: an HTTP status and a JSON body. Independent of the
// HTTP library, so use cases are tested without sockets.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "pingma/common/status.h"

namespace pingma::registry {

using nlohmann::json;

struct Reply {
  int status = 200;
  json body = json::object();
  /// When set, the body is sent as this content type and text (CSV, HTML).
  std::string raw_content_type;
  std::string raw_body;
  /// Extra response headers, such as `Allow` on a 405 or `Retry-After` on a 429.
  std::vector<std::pair<std::string, std::string>> headers = {};

  bool failed() const { return status >= 400; }
};

/// 200 and 201 with a JSON body.
inline Reply Okay(json body) {
  return Reply{200, std::move(body), {}, {}};
}
inline Reply Created(json body) {
  return Reply{201, std::move(body), {}, {}};
}

/// The HTTP status for a Status code (400, 401, 403, 404, 409, 413, 422, 500, 503).
int HttpStatusFor(StatusCode code);

/// {"error": {"code": ..., "message": ...}} with the matching HTTP status.
Reply ErrorReply(const Status& status);

/// 409 ID_IN_USE: an idempotency key (a handover's or fill's event_id, an offline
/// check's check_id) that another caller used first. Nothing of that caller's
/// stored answer is given: `what` names the id only.
Reply IdInUse(std::string_view what);

/// 405 METHOD_NOT_ALLOWED with an `Allow` header naming the methods the path takes.
Reply MethodNotAllowed(std::string_view method, std::string_view path,
                       const std::vector<std::string>& allowed);

}  // namespace pingma::registry
