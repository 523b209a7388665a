// The registry client: one libcurl easy handle per client, reused for every call so
// that the connection (and a TLS session) stays open between fill checks.
#include "registry_client.h"

#include <curl/curl.h>

#include <mutex>
#include <utility>

#include <nlohmann/json.hpp>

#include "cylinder_json.h"

namespace pingma::station {
namespace {

using nlohmann::json;

// A fleet page of 5,000 cylinders is a few MiB; anything far larger is not an
// answer of the registry, and must not exhaust the station's memory.
constexpr size_t kMaxAnswerBytes = 256u << 20;

// curl_global_init is not thread-safe and must run once before any handle.
void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Answer {
  long status = 0;
  std::string body;
  curl_off_t pretransfer_us = 0;  ///< libcurl's own time before the request went out
  curl_off_t total_us = 0;        ///< to the answer's last byte
};

struct Sink {
  std::string* body;
  bool too_large = false;
};

size_t Collect(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const size_t n = size * count;
  if (sink->body->size() + n > kMaxAnswerBytes) {
    sink->too_large = true;
    return 0;  // makes curl stop with CURLE_WRITE_ERROR
  }
  sink->body->append(data, n);
  return n;
}

// The registry's error body {"error": {"code", "message"}} as "CODE: message", or
// the start of whatever came back.
std::string ErrorText(const std::string& body) {
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object()) {
    auto it = parsed.find("error");
    if (it != parsed.end() && it->is_object()) {
      const json& err = *it;
      std::string code, message;
      if (auto c = err.find("code"); c != err.end() && c->is_string()) code = c->get<std::string>();
      if (auto m = err.find("message"); m != err.end() && m->is_string()) {
        message = m->get<std::string>();
      }
      if (!code.empty() || !message.empty()) return code + ": " + message;
    }
  }
  return body.size() > 200 ? body.substr(0, 200) + "..." : body;
}

// An HTTP status that is not a success, as the Status a caller can act on.
Status HttpError(long status, const std::string& what, const std::string& body) {
  const std::string message = what + ": HTTP " + std::to_string(status) + " " + ErrorText(body);
  switch (status) {
    case 400:
      return Status::Malformed(message);
    case 401:
      return Status::Unauthenticated(message);
    case 403:
      return Status::PermissionDenied(message);
    case 404:
      return Status::NotFound(message);
    case 409:
      return Status::Conflict(message);
    case 413:
      return Status::TooLarge(message);
    case 422:
      return Status::Invalid(message);
    case 408:  // the server gave up waiting for us
    case 429:  // come back later
      return Status::Unavailable(message);
    default:
      break;
  }
  // 5xx (a 503 while the registry is busy or starting): retrying may help. A 3xx is
  // not followed (it would carry the token elsewhere): a misconfigured address that
  // may be fixed, so retry rather than drop a fill record for it.
  if (status >= 500 || status < 400) return Status::Unavailable(message);
  return Status::Invalid(message);
}

Result<std::string> StringField(const json& object, const char* key, bool required) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) {
    if (required) return Status::Malformed(std::string("no '") + key + "' in the answer");
    return std::string();
  }
  if (!it->is_string()) return Status::Malformed(std::string("'") + key + "' is not a string");
  return it->get<std::string>();
}

// A fill check's answer (API.md "Filling"), kept as text in `json` too.
Result<CheckAnswer> ParseCheckAnswer(std::string body) {
  json a = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!a.is_object()) return Status::Malformed("the answer is not a JSON object");
  CheckAnswer out;
  PINGMA_ASSIGN_OR_RETURN(out.check_id, StringField(a, "check_id", true));
  PINGMA_ASSIGN_OR_RETURN(auto decision, StringField(a, "decision", true));
  if (decision != "allow" && decision != "block") {
    return Status::Malformed("decision is neither allow nor block: " + decision);
  }
  out.allowed = decision == "allow";
  if (auto it = a.find("reasons"); it != a.end() && it->is_array()) {
    for (const json& r : *it) {
      if (!r.is_object()) return Status::Malformed("a reason is not an object");
      out.reasons.push_back({JsonString(r, "code"), JsonString(r, "message")});
    }
  }
  if (auto it = a.find("cylinder"); it != a.end() && it->is_object()) {
    const json& c = *it;
    CheckedCylinder cyl;
    cyl.code = JsonString(c, "code");
    cyl.model = JsonString(c, "model");
    cyl.owner_company_id = JsonString(c, "owner_company_id");
    cyl.next_inspection_due = JsonString(c, "next_inspection_due");
    cyl.state = JsonString(c, "state");
    out.cylinder = std::move(cyl);
  }
  if (auto it = a.find("fill"); it != a.end() && it->is_object()) {
    const json& f = *it;
    FillLimits limits;
    auto tare = JsonOptNumber(f, "tare_kg");
    auto min = JsonOptNumber(f, "min_kg");
    auto max = JsonOptNumber(f, "max_kg");
    auto target = JsonOptNumber(f, "target_kg");
    if (!tare || !min || !max || !target) return Status::Malformed("fill limits without a figure");
    out.fill = FillLimits{*tare, *min, *max, *target};
  }
  // An allow without limits cannot set the scale: not an answer to act on.
  if (out.allowed && !out.fill) return Status::Malformed("an allow without fill limits");
  if (!out.allowed && out.reasons.empty()) return Status::Malformed("a block without reasons");
  out.flagged_for_scrap = JsonBool(a, "flagged_for_scrap", false);
  out.offline = false;
  out.json = std::move(body);
  return out;
}

}  // namespace

struct RegistryClient::Impl {
  ClientOptions options;
  const ClientSettings* settings = nullptr;  ///< followed, if set
  std::uint64_t generation = 0;              ///< of the settings' options in use
  CURL* curl = nullptr;
  curl_slist* headers = nullptr;
  char error[CURL_ERROR_SIZE] = {};

  ~Impl() {
    if (curl) curl_easy_cleanup(curl);
    if (headers) curl_slist_free_all(headers);
  }

  /// Takes the settings' options when they changed since the last call, on a new
  /// connection (the old one was verified with the old CA, and carried the old token).
  void Follow() {
    if (settings == nullptr || settings->generation() == generation) return;
    generation = settings->generation();
    Configure(settings->Get());
    if (curl != nullptr) curl_easy_cleanup(curl);
    curl = curl_easy_init();
  }

  void Configure(ClientOptions given) {
    while (!given.base_url.empty() && given.base_url.back() == '/') given.base_url.pop_back();
    options = std::move(given);
    curl_slist_free_all(headers);
    headers = nullptr;
    const std::string auth = "Authorization: Bearer " + options.token;
    for (const std::string& h : {auth, std::string("Content-Type: application/json"),
                                 std::string("Accept: application/json"),
                                 // No "Expect: 100-continue" round trip before a body.
                                 std::string("Expect:")}) {
      curl_slist* grown = curl_slist_append(headers, h.c_str());
      if (grown != nullptr) headers = grown;
    }
  }

  // One request. A transport failure is kUnavailable (the caller retries or decides
  // offline), an unusable URL kInvalid; an HTTP status is returned as it came. Its
  // time limit is one of the options' times, read once the settings are followed.
  Result<Answer> Call(const char* method, const std::string& path, const std::string* body,
                      std::chrono::milliseconds ClientOptions::*timeout_option) {
    Follow();
    const std::chrono::milliseconds timeout = options.*timeout_option;
    const std::string url = options.base_url + path;
    const std::string what = std::string(method) + " " + url;
    if (curl == nullptr) return Status::Internal(what + ": no curl handle");
    // Reset drops the previous call's options but keeps the open connection.
    curl_easy_reset(curl);
    Answer answer;
    Sink sink{&answer.body};
    error[0] = '\0';
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
    // No signals (SIGALRM for DNS timeouts) in a threaded program.
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout.count()));
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, "");  // gzip if the server offers it
    // Verification stays on: a station must not send fills to, or take decisions
    // from, a registry it cannot authenticate.
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!options.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options.ca_file.c_str());
    curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
    if (body != nullptr) {
      curl_easy_setopt(curl, CURLOPT_POST, 1L);
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body->data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
    } else {
      curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    }
    const CURLcode rc = curl_easy_perform(curl);
    if (rc != CURLE_OK) {
      if (sink.too_large) {
        return Status::TooLarge(what + ": the answer is over " +
                                std::to_string(kMaxAnswerBytes >> 20) + " MiB");
      }
      std::string message = what + ": " + curl_easy_strerror(rc);
      if (error[0] != '\0') message += std::string(" (") + error + ")";
      if (rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL) {
        return Status::Invalid(message);
      }
      // Timeouts, refused or reset connections, DNS, TLS failures: the registry
      // cannot be reached as configured now; a later try may succeed.
      return Status::Unavailable(message);
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &answer.status);
    curl_easy_getinfo(curl, CURLINFO_PRETRANSFER_TIME_T, &answer.pretransfer_us);
    curl_easy_getinfo(curl, CURLINFO_TOTAL_TIME_T, &answer.total_us);
    return answer;
  }
};

RegistryClient::RegistryClient(ClientOptions options) : impl_(std::make_unique<Impl>()) {
  GlobalInit();
  impl_->Configure(std::move(options));
  impl_->curl = curl_easy_init();
}

RegistryClient::RegistryClient(const ClientSettings& settings) : RegistryClient(settings.Get()) {
  impl_->settings = &settings;
  impl_->generation = settings.generation();
}

RegistryClient::~RegistryClient() = default;

Result<CheckAnswer> RegistryClient::Check(const CheckRequest& request) {
  json body = {{"station_id", request.station_id},
               {"operator_id", request.operator_id},
               {"scan", request.scan}};
  if (request.empty_gross_kg) body["empty_gross_kg"] = *request.empty_gross_kg;
  if (!request.defects.empty()) body["defects"] = request.defects;
  // Replace invalid UTF-8 (a scanner's noise) rather than throw.
  const std::string text = body.dump(-1, ' ', false, json::error_handler_t::replace);
  PINGMA_ASSIGN_OR_RETURN(
      auto answer, impl_->Call("POST", "/v1/fill-checks", &text, &ClientOptions::check_deadline));
  const std::string what = "POST " + impl_->options.base_url + "/v1/fill-checks";
  if (answer.status != 200) return HttpError(answer.status, what, answer.body);
  auto parsed = ParseCheckAnswer(std::move(answer.body));
  // A 200 that is not a check answer (a proxy's page): treat the registry as
  // unreachable, so that the station decides offline and the fill is checked again.
  if (!parsed.ok()) return Status::Unavailable(what + ": " + parsed.status().message());
  parsed->sending_ms = static_cast<double>(answer.pretransfer_us) / 1000;
  parsed->answered_ms = static_cast<double>(answer.total_us - answer.pretransfer_us) / 1000;
  return parsed;
}

Result<Upload> RegistryClient::PostFill(const std::string& record_json) {
  PINGMA_ASSIGN_OR_RETURN(
      auto answer, impl_->Call("POST", "/v1/fills", &record_json, &ClientOptions::upload_timeout));
  const std::string what = "POST " + impl_->options.base_url + "/v1/fills";
  if (answer.status == 201) return Upload::kStored;
  if (answer.status == 200) {
    json a = json::parse(answer.body, nullptr, false);
    if (JsonBool(a, "duplicate", false)) return Upload::kDuplicate;
    return Upload::kStored;
  }
  return HttpError(answer.status, what, answer.body);
}

Result<OfflineCheckUpload> RegistryClient::PostOfflineCheck(const std::string& record_json) {
  const char* route = "/v1/fill-checks/offline";
  PINGMA_ASSIGN_OR_RETURN(auto answer,
                          impl_->Call("POST", route, &record_json, &ClientOptions::upload_timeout));
  const std::string what = "POST " + impl_->options.base_url + route;
  if (answer.status == 404) {
    return Status::Unavailable(what + ": 404, the registry does not take offline checks yet");
  }
  if (answer.status != 200 && answer.status != 201) {
    return HttpError(answer.status, what, answer.body);
  }
  json a = json::parse(answer.body, nullptr, false);
  OfflineCheckUpload out;
  out.upload = JsonBool(a, "duplicate", false) ? Upload::kDuplicate : Upload::kStored;
  if (a.is_object() && a.contains("registry_decision") && a["registry_decision"].is_string()) {
    out.registry_decision = a["registry_decision"].get<std::string>();
  }
  out.agrees = JsonBool(a, "agrees", true);
  return out;
}

Result<FleetPage> RegistryClient::Fleet(const std::string& station_id, const std::string& since) {
  std::string path = "/v1/stations/";
  char* id = curl_easy_escape(impl_->curl, station_id.c_str(), static_cast<int>(station_id.size()));
  if (id == nullptr) return Status::Internal("cannot escape the station id");
  path += id;
  curl_free(id);
  path += "/fleet";
  if (!since.empty()) {
    char* cursor = curl_easy_escape(impl_->curl, since.c_str(), static_cast<int>(since.size()));
    if (cursor == nullptr) return Status::Internal("cannot escape the cursor");
    path += "?since=";
    path += cursor;
    curl_free(cursor);
  }
  PINGMA_ASSIGN_OR_RETURN(auto answer,
                          impl_->Call("GET", path, nullptr, &ClientOptions::fleet_timeout));
  const std::string what = "GET " + impl_->options.base_url + path;
  if (answer.status != 200) return HttpError(answer.status, what, answer.body);
  // The page is checked as JSON and indexed here, on the fetching thread, and
  // only what the sync needs to ask for the next page is read: the replica reads
  // the cylinders (ReadFleetPage) on another thread while the next is fetched.
  const std::string not_a_page = what + ": the answer is not a fleet page";
  auto doc = JsonDoc::Parse(std::move(answer.body));
  if (!doc.ok()) return Status::Unavailable(not_a_page + ": " + doc.status().message());
  const JsonValue root = doc->Root();
  const auto cursor = root.Find("next_cursor");
  const auto list = root.Find("cylinders");
  if (!cursor || !cursor->is_string() || !list || !list->is_array()) {
    return Status::Unavailable(not_a_page);
  }
  FleetPage page;
  page.next_cursor = *cursor->String();
  const auto more = root.Find("more");
  page.more = more && more->Bool().value_or(false);
  page.doc = std::move(*doc);
  return page;
}

Result<Policy> RegistryClient::FetchPolicy() {
  PINGMA_ASSIGN_OR_RETURN(auto answer,
                          impl_->Call("GET", "/v1/policy", nullptr, &ClientOptions::fleet_timeout));
  const std::string what = "GET " + impl_->options.base_url + "/v1/policy";
  if (answer.status != 200) return HttpError(answer.status, what, answer.body);
  auto policy = ParsePolicy(answer.body);
  if (!policy.ok()) {
    return Status(policy.status().code(), what + ": " + policy.status().message());
  }
  return policy;
}

}  // namespace pingma::station
