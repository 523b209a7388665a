// The policy engine: the one place that decides whether a cylinder may be filled.
//
// DecideFill is a pure function of the cylinder's record, the station, the operator,
// the policy figures and "now"; the registry uses it online and the station agent on
// its replica offline. Policy values are immutable once loaded and safe to share.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pingma/common/domain.h"
#include "pingma/common/status.h"

namespace pingma {

/// Per-model figures (DOMAIN.md "Dates" and "Filling quantities").
struct ModelRule {
  int inspection_interval_years = 4;
  double min_fill_kg = 0;
  double max_fill_kg = 0;
  Phase default_phase = Phase::kGas;
};

/// Every figure a region may set. Defaults are DOMAIN.md's; a policy file overrides
/// any subset of them (see docs/policy.md and LoadPolicyFile).
struct Policy {
  std::string time_zone = "Asia/Shanghai";
  int utc_offset_minutes = 8 * 60;  ///< rule dates are evaluated in this zone
  std::map<std::string, ModelRule, std::less<>> models;
  int design_life_years = 8;               ///< when none is stamped, made on/after cutover
  int design_life_years_before = 15;       ///< when none is stamped, made before cutover
  YearMonth design_life_cutover{2007, 2};  ///< GB 5842-2006 took effect 2007-02-01
  int life_extension_max_years = 4;        ///< one safety assessment, at most this long
  double tare_tolerance_kg = 0.3;
  int clone_window_minutes = 60;
  /// A gas regulator's (减压阀) service life at the door-step check: 3 or 5 years
  /// by region (DOMAIN.md "Delivery and handover").
  int regulator_service_life_years = 5;
  /// Days a hazard opened by a safety check has to be put right (隐患台账).
  int hazard_deadline_days = 7;
  /// Days a public reporter's contact is kept, outside the log (PIPL).
  int contact_retention_days = 180;
  /// Days positions are kept, a handover's place among them (DOMAIN.md "Where
  /// deliveries go").
  int position_retention_days = 183;
  /// A vehicle outside every area of its courier's zones for longer than this, by
  /// its positions' own times, raises one zone_exit alert (DOMAIN.md "Where
  /// deliveries go").
  int zone_exit_minutes = 5;
  /// A handover recorded farther than this from its customer's location raises
  /// handover_away.
  int handover_max_distance_m = 500;
  /// A handover whose vehicle sent no position in this many minutes before it
  /// raises no_position.
  int no_position_minutes = 15;

  /// DOMAIN.md's figures.
  static Policy Defaults();
  const ModelRule* FindModel(std::string_view model) const;
};

/// Parses a policy file (JSON) over the defaults; unknown keys are errors, so that a
/// misspelt figure is not silently ignored.
Result<Policy> ParsePolicy(std::string_view json_text);
Result<Policy> LoadPolicyFile(const std::string& path);
/// The policy as JSON, every figure spelt out (for `GET /v1/policy` and docs).
std::string PolicyToJson(const Policy& policy);

/// The company's filling licence (气瓶充装许可证).
struct FillingLicense {
  std::string number;
  Date valid_until;
  bool revoked = false;
};

struct StationFacts {
  std::string id;
  std::string company_id;
  bool locked = false;  ///< remote lock by a regulator (DB4114/T 185 §4.10)
  std::string lock_reason;
  std::optional<FillingLicense> license;  ///< of the station's company
};

/// 特种设备作业人员证
struct Certificate {
  std::string number;
  Date valid_until;
};

struct OperatorFacts {
  std::string id;
  std::optional<Certificate> certificate;
};

/// A custody (托管) agreement: the owner lets the custodian fill its cylinders.
struct CustodyAgreement {
  std::string owner_company_id;
  std::string custodian_company_id;
  Date valid_from;
  Date valid_until;
};

/// An entry of the recall list (产品黑名单): a manufacturer, optionally a range of
/// manufacture year-months (inclusive).
struct Recall {
  std::string manufacturer;
  std::optional<YearMonth> manufactured_from;
  std::optional<YearMonth> manufactured_to;
  std::string reason;
};

/// The last time the code was checked at a station.
struct Sighting {
  std::string station_id;
  Instant at;
};

/// Everything a fill decision depends on. Absent optionals mean "not known".
struct FillCheckInput {
  std::optional<Cylinder> cylinder;  ///< nullopt: the code resolves to nothing
  StationFacts station;
  std::optional<OperatorFacts> operator_facts;  ///< nullopt: operator not registered
  std::optional<double> empty_gross_kg;
  std::vector<Defect> defects;
  std::vector<CustodyAgreement> custody;  ///< agreements of the cylinder's owner
  std::vector<Recall> recalls;
  /// The code's latest check known: earlier than `now` for a check made now; for a
  /// check decided offline and decided again later, possibly after it (the clone
  /// window counts on either side of `now`).
  std::optional<Sighting> last_check;
  Instant now;
};

struct Reason {
  ReasonCode code;
  std::string message;  ///< "中文 / English", with the figures that failed
};

/// The reason with its message: "<TitleZh> / <TitleEn>: <detail>".
Reason ReasonWith(ReasonCode code, std::string_view detail);

/// Net fill quantities for an allowed fill (kg).
struct FillLimits {
  double tare_kg = 0;
  double min_kg = 0;
  double max_kg = 0;
  double target_kg = 0;
};

struct FillDecision {
  std::vector<Reason> reasons;     ///< every failing rule, in ReasonCode order
  std::optional<FillLimits> fill;  ///< present only when allowed
  /// The reasons that flag the cylinder for scrapping (state -> scrap_pending).
  std::vector<ReasonCode> scrap_reasons;
  Date today;  ///< in the policy's zone
  std::optional<Date> next_inspection_due;
  std::optional<Date> service_life_end;

  bool allowed() const { return reasons.empty(); }
  bool flags_for_scrap() const { return !scrap_reasons.empty(); }
  bool Has(ReasonCode code) const;
};

FillDecision DecideFill(const Policy& policy, const FillCheckInput& input);

/// The rules that depend on the cylinder alone (inspection, life, phase, recall,
/// state): whether it is fit to be filled anywhere its owner may fill it. Used for a
/// cylinder's `fillable` and for delivery checks.
FillDecision DecideCylinder(const Policy& policy, const Cylinder& cylinder,
                            const std::vector<Recall>& recalls, Instant now);

/// Next inspection due: the agency's recorded date; else last inspection +
/// interval; else end of manufacture month + interval. nullopt for an unknown model.
std::optional<Date> NextInspectionDue(const Policy& policy, const Cylinder& cylinder);

/// The last day the cylinder may be in service: end of manufacture month + design
/// life, plus what one passed safety assessment grants (capped by policy).
Date ServiceLifeEnd(const Policy& policy, const Cylinder& cylinder);

/// Min, max and target net fill for the cylinder. nullopt for an unknown model.
std::optional<FillLimits> FillLimitsFor(const Policy& policy, const Cylinder& cylinder);

}  // namespace pingma
