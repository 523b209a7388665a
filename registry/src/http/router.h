// The registry's front door: the route table of /v1/, who may call each route,
// how large a body each takes, the query's fields, paging, and every error as an
// HTTP answer — written once here, so that a use case (cases/) receives a Call
// that is already authenticated, authorised and within its limits.
//
// Pages without a token (the public page under /c/, the console and the
// courier's page) are handed their whole path by first segment.
//
// Thread-safety: routes are added before the first request; Handle and BodyLimit
// may then be called from many threads at once.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "access/principal.h"
#include "http/metrics.h"
#include "http/reply.h"
#include "store/store.h"

namespace pingma::registry {

class BearerTokens;  // access/tokens.h

struct Request {
  std::string method;         ///< "GET", "POST", ...
  std::string target;         ///< path and query as received: "/v1/resolve?scan=..."
  std::string authorization;  ///< the Authorization header, or empty
  std::string body;
  std::string content_type = {};  ///< the Content-Type header, or empty
  std::string client = {};        ///< the peer's address, for the public form's rate limit
};

/// Body limits of API.md.
constexpr size_t kMaxBody = 1u << 20;
constexpr size_t kMaxBatchBody = 64u << 20;
/// A delivery area (PUT /v1/areas/{id}): its most positions (geo/area.h) as JSON.
constexpr size_t kMaxAreaBody = 8u << 20;
/// A label photo sent to POST /v1/scan/image (the decoder's own file limit).
constexpr size_t kMaxImageBody = 20u << 20;
/// Every request without a token that may call the route it names: the public
/// report form (/c/{code}/report), the pages, and /v1/ calls without a valid
/// token, a role the route refuses or no route at all. A report's text and
/// contact (600 characters) take under 6 KiB percent-encoded.
constexpr size_t kMaxPublicBody = 8u << 10;

/// One call of a route, as its use case receives it.
struct Call {
  Principal who;
  std::vector<std::string> params;  ///< the {placeholders} of the route, decoded
  std::map<std::string, std::string> query;
  Request* request;  ///< the router's own; a use case may move its body out
};

/// Answers a call: `done` exactly once, possibly on another thread, for writes
/// only after the data is committed and durable.
using Handler = std::function<void(const Call&, Store::Done)>;

struct Route {
  const char* method;
  const char* pattern;  ///< "/v1/cylinders/{}/history"
  std::vector<Role> roles;
  Handler handler;
  size_t max_body = kMaxBody;
};

/// Answers a request for pages under one first path segment, without a token.
using PageHandler = std::function<void(const Request& request,
                                       const std::vector<std::string_view>& parts, Store::Done)>;

class Router {
 public:
  Router(Store* store, BearerTokens* tokens) : store_(store), tokens_(tokens) {}

  /// Adds a route; earlier routes are tried first, and a 405's Allow header names
  /// the methods of a path in the order their routes were added.
  void Add(Route route);
  /// Hands every request whose path starts with /`first_segment` to `handler`.
  void AddPages(std::string first_segment, PageHandler handler);
  /// A GET of `path` that needs no token (the verifiable log's key and head,
  /// which anyone may check the log against).
  void AddPublicRead(std::string path, std::function<void(Store::Done)> handler);

  /// Where each answer is counted (serve --metrics-listen); before the first request.
  void set_metrics(Metrics* metrics) { metrics_ = metrics; }

  /// Answers one request. A read (GET) is answered only once every commit it could
  /// have seen is durable (Store::WhenDurable).
  void Handle(Request request, Store::Done done);

  /// The most body bytes a request may send, from its method, target and
  /// Authorization header alone, before its body is read: the route's `max_body`
  /// when the token is valid and its role may call the route, kMaxPublicBody
  /// otherwise. A bad token counts against `client`, as in Handle.
  size_t BodyLimit(std::string_view method, std::string_view target, std::string_view authorization,
                   const std::string& client) const;

 private:
  /// The route for `method` on a path split at '/', with its {placeholders}
  /// decoded into `*params`; nullptr when none, with the methods the path takes
  /// in `*allowed`.
  const Route* Find(std::string_view method, const std::vector<std::string_view>& parts,
                    std::vector<std::string>* params, std::vector<std::string>* allowed) const;

  Store* store_;
  BearerTokens* tokens_;
  std::vector<Route> routes_;
  std::vector<std::vector<std::string>> segments_;  ///< each route's pattern split at '/'
  std::vector<std::pair<std::string, PageHandler>> pages_;
  std::vector<std::pair<std::string, std::function<void(Store::Done)>>> public_reads_;
  Metrics* metrics_ = nullptr;
};

/// A path's segments: "/v1/a/b" → {"v1", "a", "b"}.
std::vector<std::string_view> SplitPath(std::string_view path);
/// Percent-decoding of a path segment or form value ('+' as a space when asked).
std::string DecodePercent(std::string_view in, bool plus_is_space);
/// The fields of a query string or an application/x-www-form-urlencoded body.
std::map<std::string, std::string> ParseFormFields(std::string_view text);

/// A page's size from the query's `limit`: `fallback` without one, at most `most`
/// (a larger page is capped, not refused); not a whole number of at least 1 is
/// Malformed.
Result<std::int64_t> PageLimit(const std::map<std::string, std::string>& query,
                               std::int64_t fallback, std::int64_t most);

}  // namespace pingma::registry
