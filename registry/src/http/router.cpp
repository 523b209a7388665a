#include "http/router.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "access/tokens.h"
#include "http/fields.h"

namespace pingma::registry {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool MayCall(const Route& route, Role role) {
  return std::find(route.roles.begin(), route.roles.end(), role) != route.roles.end();
}

Reply NoSuchEndpoint(std::string_view path) {
  return ErrorReply(Status::NotFound(fmt::format("no such endpoint: {}", path)));
}

}  // namespace

std::string DecodePercent(std::string_view in, bool plus_is_space) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() && HexValue(in[i + 1]) >= 0 && HexValue(in[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(in[i + 1]) * 16 + HexValue(in[i + 2])));
      i += 2;
    } else if (plus_is_space && in[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

std::vector<std::string_view> SplitPath(std::string_view path) {
  std::vector<std::string_view> parts;
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    parts.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

std::map<std::string, std::string> ParseFormFields(std::string_view text) {
  std::map<std::string, std::string> out;
  while (!text.empty()) {
    size_t amp = text.find('&');
    std::string_view pair = text.substr(0, amp);
    size_t eq = pair.find('=');
    std::string key = DecodePercent(pair.substr(0, eq), true);
    std::string value =
        eq == std::string_view::npos ? "" : DecodePercent(pair.substr(eq + 1), true);
    if (!key.empty()) out.emplace(std::move(key), std::move(value));
    if (amp == std::string_view::npos) break;
    text.remove_prefix(amp + 1);
  }
  return out;
}

Result<std::int64_t> PageLimit(const std::map<std::string, std::string>& query,
                               std::int64_t fallback, std::int64_t most) {
  std::int64_t limit = fallback;
  if (auto it = query.find("limit"); it != query.end()) {
    if (!ParseWhole(it->second, 1, INT64_MAX, &limit)) {
      return Status::Malformed("limit must be a whole number of at least 1");
    }
  }
  return std::min(limit, most);
}

void Router::Add(Route route) {
  segments_.emplace_back();
  for (std::string_view part : SplitPath(route.pattern)) segments_.back().emplace_back(part);
  routes_.push_back(std::move(route));
}

void Router::AddPages(std::string first_segment, PageHandler handler) {
  pages_.emplace_back(std::move(first_segment), std::move(handler));
}

void Router::AddPublicRead(std::string path, std::function<void(Store::Done)> handler) {
  public_reads_.emplace_back(std::move(path), std::move(handler));
}

const Route* Router::Find(std::string_view method, const std::vector<std::string_view>& parts,
                          std::vector<std::string>* params,
                          std::vector<std::string>* allowed) const {
  for (size_t k = 0; k < routes_.size(); ++k) {
    const Route& r = routes_[k];
    const auto& pattern = segments_[k];
    if (pattern.size() != parts.size()) continue;
    std::vector<std::string> captured;
    bool match = true;
    for (size_t i = 0; i < parts.size() && match; ++i) {
      if (pattern[i] == "{}") {
        captured.push_back(DecodePercent(parts[i], false));
        match = !parts[i].empty();
      } else {
        match = pattern[i] == parts[i];
      }
    }
    if (!match) continue;
    if (std::find(allowed->begin(), allowed->end(), r.method) == allowed->end()) {
      allowed->emplace_back(r.method);
    }
    if (method == r.method) {
      *params = std::move(captured);
      return &r;
    }
  }
  return nullptr;
}

size_t Router::BodyLimit(std::string_view method, std::string_view target,
                         std::string_view authorization, const std::string& client) const {
  const auto parts = SplitPath(target.substr(0, target.find('?')));
  if (parts.empty() || parts[0] != "v1") return kMaxPublicBody;
  auto who = tokens_->Authenticate(authorization, client).who;
  if (!who) return kMaxPublicBody;
  std::vector<std::string> params, allowed;
  const Route* route = Find(method, parts, &params, &allowed);
  return route && MayCall(*route, who->role) ? route->max_body : kMaxPublicBody;
}

void Router::Handle(Request request, Store::Done done) {
  // Each answer counted by its route's pattern, set below once it is known.
  std::shared_ptr<std::string> route_label;
  if (metrics_ != nullptr) {
    route_label = std::make_shared<std::string>("other");
    done = [metrics = metrics_, route_label, method = std::string(MethodLabel(request.method)),
            start = std::chrono::steady_clock::now(), done = std::move(done)](Reply reply) {
      metrics->Answered(*route_label, method, reply.status,
                        std::chrono::steady_clock::now() - start);
      done(std::move(reply));
    };
  }
  const auto label = [&route_label](std::string_view route) {
    if (route_label) route_label->assign(route);
  };
  const size_t q = request.target.find('?');
  const std::string_view path = std::string_view(request.target).substr(0, q);
  const std::string_view query =
      q == std::string::npos ? std::string_view() : std::string_view(request.target).substr(q + 1);
  const auto parts = SplitPath(path);

  // The pages (the public page at /c/{code}, the URL a label's QR carries; the
  // console and the courier's page, whose calls carry the token) need no token.
  for (const auto& [first, handler] : pages_) {
    if (!parts.empty() && parts[0] == first) {
      label("/" + first);
      return handler(request, parts, std::move(done));
    }
  }
  // Every /v1/ call needs a token, whether or not it names an endpoint (all the
  // routes are under /v1/).
  if (parts.empty() || parts[0] != "v1") return done(NoSuchEndpoint(path));
  for (const auto& [public_path, handler] : public_reads_) {
    if (path != public_path) continue;
    label(public_path);
    if (request.method != "GET") return done(MethodNotAllowed(request.method, path, {"GET"}));
    return handler([store = store_, done = std::move(done)](Reply reply) {
      store->WhenDurable([done, reply = std::move(reply)]() mutable { done(std::move(reply)); });
    });
  }
  auto auth = tokens_->Authenticate(request.authorization, request.client);
  if (!auth.who) return done(std::move(auth.refusal));

  std::vector<std::string> allowed;  ///< the methods of the routes whose path matches
  std::vector<std::string> params;
  const Route* route = Find(request.method, parts, &params, &allowed);
  if (!route) {
    return done(allowed.empty() ? NoSuchEndpoint(path)
                                : MethodNotAllowed(request.method, path, allowed));
  }
  label(route->pattern);
  if (request.body.size() > route->max_body) {
    return done(ErrorReply(Status::TooLarge(fmt::format(
        "the body is {} bytes; the limit here is {}", request.body.size(), route->max_body))));
  }
  if (!MayCall(*route, auth.who->role)) {
    return done(ErrorReply(Status::PermissionDenied(fmt::format("the role '{}' may not call {} {}",
                                                                ToString(auth.who->role),
                                                                route->method, route->pattern))));
  }
  Call call{*auth.who, std::move(params), ParseFormFields(query), &request};
  if (std::string_view(route->method) == "GET") {
    // A read may see commits whose fdatasync is still running: its answer waits
    // for it, as their writers' answers do, so that nothing is shown that a power
    // loss could still undo.
    done = [store = store_, done = std::move(done)](Reply reply) {
      store->WhenDurable([done, reply = std::move(reply)]() mutable { done(std::move(reply)); });
    };
  }
  route->handler(call, std::move(done));
}

}  // namespace pingma::registry
