// Set-up: the companies and their filling licences, stations (and a regulator's
// lock on one), operators, custody between companies, recalls, and the policy in
// force (service.cpp's part of the house: setup.cpp).
#pragma once

#include <functional>

#include "cases/use_case.h"

namespace pingma::registry {

class Setup final : public UseCase {
 public:
  /// `changed` runs inside every set-up write job, on the writer thread, before
  /// the job: what fill checks know of stations, operators, custody and recalls
  /// is then out of date.
  Setup(const Context& context, std::function<void()> changed)
      : UseCase(context), changed_(std::move(changed)) {}

  void PostCompany(const Call& call, Store::Done done);
  void PostLicense(const Call& call, Store::Done done);
  void PostStation(const Call& call, Store::Done done);
  void GetStation(const Call& call, Store::Done done);
  void LockStation(const Call& call, Store::Done done);
  void UnlockStation(const Call& call, Store::Done done);
  void PostOperator(const Call& call, Store::Done done);
  void PostCustody(const Call& call, Store::Done done);
  void PostRecall(const Call& call, Store::Done done);
  void GetPolicy(const Call& call, Store::Done done);

  /// Runs a set-up write job (also for the delivery side's set-up).
  void WriteSetup(Store::Done done, Store::Job job);

 private:
  /// A regulator's lock on a station, or its end, with the reason given.
  void ChangeLock(const Call& call, Store::Done done, bool locked);

  std::function<void()> changed_;
};

}  // namespace pingma::registry
