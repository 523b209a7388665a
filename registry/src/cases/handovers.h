// Delivery and handover (handovers.cpp): the company's vehicles, couriers and
// customers, the courier's handover of a cylinder at the customer's door with
// its safety check (the rules: DecideHandover in common/), and the hazards found
// there until they are closed.
#pragma once

#include <string>
#include <string_view>

#include "cases/setup.h"
#include "cases/supervision.h"
#include "cases/use_case.h"

namespace pingma::registry {

class Handovers final : public UseCase {
 public:
  /// Vehicles, couriers and customers are set-up writes (Setup::WriteSetup).
  /// Handovers raise supervision's alerts, and its areas may be a courier's zones.
  Handovers(const Context& context, Setup* setup, Supervision* supervision)
      : UseCase(context), setup_(setup), supervision_(supervision) {}

  void PostVehicle(const Call& call, Store::Done done);
  void PostCourier(const Call& call, Store::Done done);
  void PostCustomer(const Call& call, Store::Done done);
  void PostHandover(const Call& call, Store::Done done);
  void GetHazards(const Call& call, Store::Done done);
  void CloseHazard(const Call& call, Store::Done done);

 private:
  void WriteSetup(Store::Done done, Store::Job job) {
    setup_->WriteSetup(std::move(done), std::move(job));
  }
  Setup* setup_;
  Supervision* supervision_;
};

// Real-name data (实名购气): what a customer's phone and ID number must be, how
// they are shown, and their keyed hash (the key: access/secrets.h).
/// A mainland mobile number: 11 digits starting 13..19.
Status CheckPhone(const std::string& phone);
/// A resident ID number (GB 11643-1999) with its check character; upper-cases 'x'.
Status CheckIdNumber(std::string* id);
std::string MaskPhone(const std::string& phone);  ///< 138****5678
std::string MaskIdNumber(const std::string& id);  ///< 1101**********123X
/// HMAC-SHA-256 of "kind:value" under `key`: the kind keeps a phone from ever
/// matching an ID number.
std::string KeyedHash(const std::string& key, std::string_view kind, std::string_view value);

}  // namespace pingma::registry
