// The log's head for auditors (GET /v1/audit/head), with what the last full walk
// of the hash chain found.
#pragma once

#include <mutex>

#include "cases/use_case.h"

namespace pingma::registry {

class Audit final : public UseCase {
 public:
  using UseCase::UseCase;

  void GetAuditHead(const Call& call, Store::Done done);

  /// What the last full walk of the hash chain found: {"state": "running" | "ok" |
  /// "broken" | "error", ...}. Any thread.
  void SetChainCheck(json check) {
    std::lock_guard<std::mutex> lock(mu_);
    chain_check_ = std::move(check);
  }

 private:
  std::mutex mu_;
  json chain_check_ = {{"state", "not_run"}};  ///< under mu_
};

}  // namespace pingma::registry
