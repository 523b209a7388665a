// The handover rules of DOMAIN.md "Delivery and handover", in reason-code order.
#include <algorithm>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "pingma/common/handover.h"

namespace pingma {
namespace {

// More than this on a restaurant's site needs a cylinder room (DOMAIN.md).
constexpr double kRestaurantStorageKg = 100.0;

// Net LPG a model holds when full, for what a restaurant keeps on site: the
// nominal fills (YSP35.5 is the "15 kg" cylinder at 14.5 kg, YSP118 the "50 kg"
// at its 49.5 kg maximum). An unlisted model counts for nothing.
std::int64_t NominalNetGrams(std::string_view model) {
  static constexpr std::pair<std::string_view, double> kNet[] = {
      {"YSP4.7", 1.9},   {"YSP12", 5.0},   {"YSP26.2", 11.0},
      {"YSP35.5", 14.5}, {"YSP118", 49.5}, {"YSP118-II", 49.5}};
  for (const auto& [name, kg] : kNet) {
    if (name == model) return ToGrams(kg);
  }
  return 0;
}

bool IsYsp118(std::string_view model) {
  return model == "YSP118" || model == "YSP118-II";
}

using Reasons = std::vector<Reason>;

void Add(Reasons* reasons, ReasonCode code, std::string_view detail) {
  reasons->push_back(ReasonWith(code, detail));
}

// A delivery's fill: the latest, at a licensed station of the owner, passed, and
// not delivered since.
void FillRules(const Policy& policy, const HandoverFacts& in, Reasons* reasons) {
  const Cylinder& c = *in.cylinder;
  if (!in.latest_fill) {
    Add(reasons, ReasonCode::kNotFilledSinceDelivery, "no fill of this cylinder is recorded");
    return;
  }
  const LatestFill& fill = *in.latest_fill;
  if (in.last_delivery_seq && *in.last_delivery_seq > fill.seq) {
    Add(reasons, ReasonCode::kNotFilledSinceDelivery,
        "delivered already since its latest fill: it cannot be full");
  }

  std::string failed_checks;
  for (const auto& [item, verdict] : fill.post_checks) {
    if (verdict != "pass") failed_checks += fmt::format("; {} not passed", item);
  }
  if (fill.result != "ok" || !failed_checks.empty()) {
    Add(reasons, ReasonCode::kFillNotPassed,
        fmt::format("latest fill's result is {}{}", fill.result, failed_checks));
  }

  const std::optional<StationFacts>& station = fill.station;
  if (!station || station->company_id != c.owner_company_id) {
    Add(reasons, ReasonCode::kFillNotByOwner,
        fmt::format("filled at station {} of {}, not of the owner {}", fill.station_id,
                    station ? station->company_id : "?", c.owner_company_id));
    return;
  }
  // The licence as of the fill's day; a revocation or a regulator's lock, which
  // carry no date, count whenever they came.
  const Date fill_day = fill.ended.LocalDate(policy.utc_offset_minutes);
  const auto& license = station->license;
  if (!license || license->revoked || license->valid_until < fill_day || station->locked) {
    Add(reasons, ReasonCode::kFillStationUnlicensed,
        fmt::format("station {}: {}", fill.station_id,
                    station->locked    ? "locked by a regulator"
                    : !license         ? "no filling licence"
                    : license->revoked ? "licence revoked"
                                       : "licence expired before the fill"));
  }
}

// The courier: of the owner, in its bound vehicle (人车对应), within its zones.
void CourierRules(const HandoverFacts& in, Reasons* reasons) {
  const Cylinder& c = *in.cylinder;
  const CourierFacts& cr = in.courier;
  if (cr.company_id != c.owner_company_id) {
    Add(reasons, ReasonCode::kCourierNotOwner,
        fmt::format("courier {} works for {}, the cylinder belongs to {}", cr.id, cr.company_id,
                    c.owner_company_id));
  }
  if (in.vehicle != cr.vehicle_id && in.vehicle != cr.vehicle_plate) {
    Add(reasons, ReasonCode::kVehicleMismatch,
        fmt::format("courier {} is bound to vehicle {} ({}), not {}", cr.id, cr.vehicle_id,
                    cr.vehicle_plate, in.vehicle));
  }
  if (!in.customer.in_zone_area &&
      std::find(cr.zones.begin(), cr.zones.end(), in.customer.district) == cr.zones.end()) {
    Add(reasons, ReasonCode::kOutsideZone,
        fmt::format("district {} is not in courier {}'s zones", in.customer.district, cr.id));
  }
}

// The customer's site: not underground, not over the restaurant's limit without a
// cylinder room, no YSP118 indoors.
void SiteRules(const HandoverFacts& in, Reasons* reasons) {
  const Cylinder& c = *in.cylinder;
  const CustomerFacts& cu = in.customer;
  if (cu.basement || cu.semi_basement) {
    Add(reasons, ReasonCode::kBasementSite,
        fmt::format("customer {} is in a {}", cu.id, cu.basement ? "basement" : "semi-basement"));
  }
  if (cu.restaurant && !cu.cylinder_room) {
    std::int64_t grams = NominalNetGrams(c.model);
    for (const std::string& model : in.on_site_models) grams += NominalNetGrams(model);
    if (grams > ToGrams(kRestaurantStorageKg)) {
      Add(reasons, ReasonCode::kNoCylinderRoom,
          fmt::format("{} kg on site with this one, over {} kg, and no cylinder room",
                      static_cast<double>(grams) / 1000.0, kRestaurantStorageKg));
    }
  }
  // GB 5842-2023: YSP118 are not for indoor use in buildings; a restaurant's
  // dedicated cylinder room is where they may stand.
  if (IsYsp118(c.model) && !cu.outdoor && !(cu.restaurant && cu.cylinder_room)) {
    Add(reasons, ReasonCode::kYsp118Indoors,
        fmt::format("{} is a {}; customer {} has no outdoor site{}", c.code, c.model, cu.id,
                    cu.restaurant ? " or cylinder room" : ""));
  }
}

}  // namespace

HandoverDecision DecideHandover(const Policy& policy, const HandoverFacts& in) {
  HandoverDecision decision;
  Reasons* reasons = &decision.reasons;
  if (!in.cylinder) {
    Add(reasons, ReasonCode::kUnknownCode,
        fmt::format("{} is not a registered cylinder", in.scanned));
    return decision;
  }
  if (in.direction == HandoverDirection::kCollect) {
    if (in.held_by_customer != in.customer.id) {
      Add(reasons, ReasonCode::kNotAtCustomer,
          fmt::format("no delivery of {} to customer {} is open", in.cylinder->code,
                      in.customer.id));
    }
    return decision;
  }
  // Only a cylinder that may be filled may be delivered: its own record first.
  decision.reasons = DecideCylinder(policy, *in.cylinder, in.recalls, in.now).reasons;
  FillRules(policy, in, reasons);
  CourierRules(in, reasons);
  SiteRules(in, reasons);
  return decision;
}

}  // namespace pingma
