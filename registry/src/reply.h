// What a use case answers: an HTTP status and a JSON body. Independent of the
// HTTP library, so use cases are tested without sockets.
#pragma once

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

  bool failed() const { return status >= 400; }
};

/// The HTTP status for a Status code (400, 401, 403, 404, 409, 413, 422, 500, 503).
int HttpStatusFor(StatusCode code);

/// {"error": {"code": ..., "message": ...}} with the matching HTTP status.
Reply ErrorReply(const Status& status);

}  // namespace pingma::registry
