// The station's client of the registry's HTTP API (libcurl): fill checks, fill
// uploads, the fleet feed and the policy.
//
// One RegistryClient per thread that uses it (it keeps one libcurl handle, so that
// the connection is kept alive between calls): not thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "json_doc.h"
#include "pingma/common/policy.h"
#include "pingma/common/status.h"

namespace pingma::station {

struct ClientOptions {
  std::string base_url;  ///< "http://127.0.0.1:8080" or "https://..."
  std::string token;     ///< the station's bearer token
  std::string ca_file;   ///< https: a CA bundle to verify the registry with; "" = system's
  std::chrono::milliseconds check_deadline{1500};  ///< a fill check past this is offline
  std::chrono::milliseconds upload_timeout{10000};
  std::chrono::milliseconds fleet_timeout{60000};
};

/// A running station's client options, which SIGHUP may change (the token, the CA
/// file, the check deadline): each client that follows them takes the new ones on
/// its next call, on a new connection. Thread-safe.
class ClientSettings {
 public:
  explicit ClientSettings(ClientOptions options) : options_(std::move(options)) {}
  ClientOptions Get() const {
    std::lock_guard<std::mutex> lock(mu_);
    return options_;
  }
  void Set(ClientOptions options) {
    std::lock_guard<std::mutex> lock(mu_);
    options_ = std::move(options);
    ++generation_;
  }
  std::uint64_t generation() const { return generation_.load(); }

 private:
  mutable std::mutex mu_;
  ClientOptions options_;  // guarded by mu_
  std::atomic<std::uint64_t> generation_{0};
};

struct CheckRequest {
  std::string station_id;
  std::string operator_id;
  std::string scan;  ///< the raw scan text, as the device gave it
  std::optional<double> empty_gross_kg;
  std::vector<std::string> defects;  ///< DOMAIN.md's vocabulary
};

struct ReasonText {
  std::string code;     ///< "INSPECTION_OVERDUE", ...
  std::string message;  ///< "中文 / English"
};

/// The cylinder summary a check answer carries.
struct CheckedCylinder {
  std::string code;
  std::string model;
  std::string owner_company_id;
  std::string next_inspection_due;  ///< "" when unknown
  std::string state;
};

/// A fill check's answer, from the registry or (offline) from the replica.
struct CheckAnswer {
  std::string check_id;  ///< the registry's; offline: "" (the fill carries the decision)
  bool allowed = false;
  std::vector<ReasonText> reasons;
  std::optional<CheckedCylinder> cylinder;
  std::optional<FillLimits> fill;  ///< present only when allowed
  bool flagged_for_scrap = false;
  bool offline = false;
  /// The registry's JSON answer, or the offline decision as it is uploaded with the
  /// fill (`offline_decision`).
  std::string json;
  /// Online, where the check's time went (ms): libcurl's own before the request
  /// went out (reusing the connection), and from then to the answer's last byte
  /// (the network and the registry). 0 offline.
  double sending_ms = 0;
  double answered_ms = 0;
};

/// What became of one fill upload.
enum class Upload {
  kStored,     ///< 201
  kDuplicate,  ///< 200 with "duplicate": true: it was stored before
};

/// The registry's answer to an offline check's upload (POST /v1/fill-checks/offline).
struct OfflineCheckUpload {
  Upload upload = Upload::kStored;
  std::string registry_decision;  ///< "allow" or "block": the registry's own, as of the check
  bool agrees = true;             ///< whether it is the station's decision
};

/// One page of GET /v1/stations/{id}/fleet, checked as JSON and indexed by Fleet
/// on the thread that fetched it; the replica reads and stores its contents.
struct FleetPage {
  JsonDoc doc;
  std::string next_cursor;
  bool more = false;
};

class RegistryClient {
 public:
  explicit RegistryClient(ClientOptions options);
  /// A client that follows `settings` (which must outlive it).
  explicit RegistryClient(const ClientSettings& settings);
  ~RegistryClient();
  RegistryClient(const RegistryClient&) = delete;
  RegistryClient& operator=(const RegistryClient&) = delete;

  /// POST /v1/fill-checks within check_deadline. kUnavailable when the registry
  /// cannot be reached, does not answer in time, or answers 5xx/503 (the caller
  /// decides offline); any other error status is the registry's error, with its
  /// code and message.
  Result<CheckAnswer> Check(const CheckRequest& request);
  /// POST /v1/fills with the record's JSON. kUnavailable: retry later. Any 4xx is
  /// permanent (kInvalid / kConflict / ... with the registry's message): retrying
  /// the same record cannot succeed.
  Result<Upload> PostFill(const std::string& record_json);
  /// POST /v1/fill-checks/offline with a check decided on the replica. As PostFill:
  /// kUnavailable to retry later (a registry that does not know the route yet, 404,
  /// counts as that: the check is kept, not dropped), any other 4xx is permanent.
  Result<OfflineCheckUpload> PostOfflineCheck(const std::string& record_json);
  /// GET /v1/stations/{station_id}/fleet?since=CURSOR.
  Result<FleetPage> Fleet(const std::string& station_id, const std::string& since);
  /// GET /v1/policy, parsed with ParsePolicy.
  Result<Policy> FetchPolicy();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pingma::station
