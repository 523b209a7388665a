// In-vehicle terminals (JT/T 808, terminals.cpp): the registry's side of the
// gateway (jt808/gateway.h) — a terminal is its vehicle by the phone number the
// company gave the vehicle (`terminal.phone`); it registers once for an
// authentication code, authenticates with it on every connection, and its
// location reports become the vehicle's positions (Supervision::StorePositions).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "cases/supervision.h"
#include "cases/use_case.h"
#include "jt808/gateway.h"

namespace pingma::registry {

class Terminals final : public UseCase, public jt808::TerminalDirectory {
 public:
  Terminals(const Context& context, Supervision* supervision)
      : UseCase(context), supervision_(supervision) {}

  /// A terminal whose phone is no vehicle's is refused (kNoSuchTerminal). One that
  /// registered before gets a new code only with the same terminal id: another
  /// device with that phone is kTerminalRegistered until the vehicle's terminal is
  /// changed.
  void Register(const jt808::Registration& registration, RegisterDone done) override;
  void Authenticate(const jt808::Authentication& authentication, AuthenticateDone done) override;
  /// Positions the terminal did not mark as located (status bit 1 clear), ahead of
  /// the registry's clock or older than the positions kept are acknowledged and
  /// not stored.
  void StorePositions(const std::string& phone, std::vector<jt808::Location> positions,
                      StoreDone done) override;

  /// Positions left out since start (not located, or out of time).
  std::uint64_t positions_skipped() const { return skipped_.load(); }

 private:
  Result<std::string> VehicleOfTerminal(Conn& conn, const std::string& phone);

  Supervision* supervision_;
  std::atomic<std::uint64_t> skipped_{0};
  std::mutex mu_;
  std::unordered_map<std::string, std::string> vehicles_;  ///< guarded by mu_; phone → vehicle
};

}  // namespace pingma::registry
