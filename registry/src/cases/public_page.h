// The public page, without a token: what a label's QR opens (/c/{code}), whether
// the cylinder is legal, and the form that reports a problem to the regulator,
// limited per client address.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "cases/use_case.h"
#include "http/rate_limit.h"

namespace pingma::registry {

class PublicPage final : public UseCase {
 public:
  using UseCase::UseCase;

  /// Public reports accepted per client address within the window; tests shorten
  /// nothing, they send six.
  static constexpr size_t kReportsPerWindow = 5;
  static constexpr std::int64_t kReportWindowMs = 10 * 60 * 1000;

  /// Everything under /c/.
  void Handle(const Request& request, const std::vector<std::string_view>& parts, Store::Done done);

 private:
  void GetPage(const Request& request, const std::string& raw_code, Store::Done done);
  void PostReport(const Request& request, const std::string& raw_code, Store::Done done);
  /// Counts a report from `client` (under its AddressKey: an IPv6 /64 is one
  /// client) if the window has room; false when it has not, with the seconds until
  /// it has.
  bool TakeReportSlot(const std::string& client, std::int64_t* retry_after_s);

  /// Reports accepted per client (AddressKey) in the last window.
  SlidingWindowLimit reports_{kReportsPerWindow, kReportWindowMs};
};

}  // namespace pingma::registry
