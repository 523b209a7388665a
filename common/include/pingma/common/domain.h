// Domain types of pingma: calendar values, the cylinder record and its vocabulary.
//
// Plain values, no I/O; every type here is safe to copy between threads. Names and
// string forms are those of shared/spec/DOMAIN.md and API.md.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pingma/common/status.h"

namespace pingma {

/// A civil (proleptic Gregorian) calendar day, "YYYY-MM-DD".
class Date {
 public:
  Date() = default;
  /// Days since 1970-01-01.
  static Date FromDays(std::int64_t days) { return Date(days); }
  /// Caller guarantees a valid day; use Parse for untrusted text.
  static Date FromCivil(int year, int month, int day);
  /// Accepts exactly "YYYY-MM-DD" with a day that exists.
  static Result<Date> Parse(std::string_view text);

  std::int64_t days() const { return days_; }
  int year() const;
  int month() const;
  int day() const;
  std::string ToString() const;

  Date AddDays(std::int64_t n) const { return Date(days_ + n); }
  /// Same month and day `n` years later; 29 February becomes 28 February.
  Date AddYears(int n) const;

  friend bool operator==(Date a, Date b) { return a.days_ == b.days_; }
  friend bool operator!=(Date a, Date b) { return a.days_ != b.days_; }
  friend bool operator<(Date a, Date b) { return a.days_ < b.days_; }
  friend bool operator<=(Date a, Date b) { return a.days_ <= b.days_; }
  friend bool operator>(Date a, Date b) { return a.days_ > b.days_; }
  friend bool operator>=(Date a, Date b) { return a.days_ >= b.days_; }

 private:
  explicit Date(std::int64_t days) : days_(days) {}
  std::int64_t days_ = 0;
};

/// A year-month, "YYYY-MM" (manufacture dates are stamped so). Where a rule needs
/// a day, a year-month means the last day of that month.
struct YearMonth {
  int year = 1970;
  int month = 1;

  static Result<YearMonth> Parse(std::string_view text);
  std::string ToString() const;
  Date FirstDay() const;
  Date LastDay() const;
  YearMonth AddYears(int n) const { return {year + n, month}; }

  friend bool operator==(YearMonth a, YearMonth b) {
    return a.year == b.year && a.month == b.month;
  }
  friend bool operator<(YearMonth a, YearMonth b) {
    return a.year != b.year ? a.year < b.year : a.month < b.month;
  }
  friend bool operator<=(YearMonth a, YearMonth b) { return !(b < a); }
};

/// A moment, milliseconds since the Unix epoch (UTC). Shown as RFC 3339.
struct Instant {
  std::int64_t unix_ms = 0;

  /// "2026-11-23T03:18:53.123Z"
  std::string ToString() const;
  /// RFC 3339 with "Z" or a numeric offset; fractional seconds optional.
  static Result<Instant> Parse(std::string_view text);
  /// The calendar day at this instant in a zone `utc_offset_minutes` east of UTC.
  Date LocalDate(int utc_offset_minutes) const;

  friend bool operator<(Instant a, Instant b) { return a.unix_ms < b.unix_ms; }
  friend bool operator==(Instant a, Instant b) { return a.unix_ms == b.unix_ms; }
};

/// Where "now" comes from. Implementations must be safe to call from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual Instant Now() const = 0;
};

/// The system's real-time clock.
class SystemClock final : public Clock {
 public:
  Instant Now() const override;
};

/// Cylinder phase. Dual-phase (气液双相, model YSP118-II) cylinders are banned.
enum class Phase { kGas, kLiquid, kDual };
const char* ToString(Phase phase);
Result<Phase> ParsePhase(std::string_view text);

/// Lifecycle: active -> scrap_pending (flagged) -> scrapped (registration
/// cancelled). Nothing leaves scrapped.
enum class CylinderState { kActive, kScrapPending, kScrapped };
const char* ToString(CylinderState state);
Result<CylinderState> ParseCylinderState(std::string_view text);

enum class InspectionResult { kPass, kFail };
const char* ToString(InspectionResult result);
Result<InspectionResult> ParseInspectionResult(std::string_view text);

/// Why a fill is refused: the reason codes of DOMAIN.md, spelled as in API.md.
enum class ReasonCode {
  kUnknownCode,
  kNotOwned,
  kInspectionOverdue,
  kInspectionFailed,
  kServiceLifeExceeded,
  /// The one safety assessment (安全评估) past design life failed: the cylinder may
  /// not be filled from the assessment's date on, whether or not its life has ended.
  kAssessmentFailed,
  kDualPhaseBanned,
  kRecalled,
  kScrapPending,
  kScrapped,
  kDefectFound,
  kTareMismatch,
  kCloneSuspected,
  kStationLicenseInvalid,
  kOperatorNotCertified,
  /// Not in DOMAIN.md: the cylinder's model is missing from the policy in force, so
  /// there are no fill limits to set the scale to.
  kModelUnknown,
  // Why a handover at the customer's door is refused (DOMAIN.md "Delivery and
  // handover"; DecideHandover). A fill check never gives these.
  kNotFilledSinceDelivery,  ///< no fill recorded, or delivered already since the latest
  kFillNotPassed,           ///< the latest fill's result or a post-fill check failed
  kFillNotByOwner,          ///< the latest fill was at another company's station
  kFillStationUnlicensed,   ///< that station had no valid licence, or is locked
  kCourierNotOwner,         ///< the courier works for another company than the owner
  kVehicleMismatch,         ///< not the courier's bound vehicle (人车对应)
  kOutsideZone,             ///< the customer's district is not in the courier's zones
  kBasementSite,            ///< 严禁向地下半地下空间配送
  kNoCylinderRoom,          ///< a restaurant over the on-site limit without a cylinder room
  kYsp118Indoors,           ///< GB 5842-2023: YSP118 not for indoor use in buildings
  kNotAtCustomer,           ///< a collection of a cylinder not left at this customer
};
/// "INSPECTION_OVERDUE", ...
const char* ToString(ReasonCode code);
/// Any reason code, a fill check's or a handover's.
Result<ReasonCode> ParseReasonCode(std::string_view text);
/// A reason a fill check may give (UNKNOWN_CODE to MODEL_UNKNOWN): what a station
/// may send; a handover's reasons are refused, with the fill check's listed.
Result<ReasonCode> ParseFillReasonCode(std::string_view text);
/// Short operator-facing titles: "检验超期" and "Inspection overdue".
const char* TitleZh(ReasonCode code);
const char* TitleEn(ReasonCode code);

/// The pre-fill defect vocabulary a station sends (TSG 23 checks).
enum class Defect {
  kDent,
  kCorrosion,
  kValveFault,
  kShroudLoose,
  kNoResidualPressure,
  kFireDamage,
  kCrackOrBulge,
  kThreadedShroud,
  kRefurbished,
  kStampIllegible,
};
const char* ToString(Defect defect);
Result<Defect> ParseDefect(std::string_view text);
/// "螺纹护罩", ...
const char* TitleZh(Defect defect);
/// Scrap classes: fire damage, cracks/bulges, threaded shroud (螺纹护罩),
/// refurbished (翻新), illegible stamp. Finding one flags the cylinder for scrapping.
bool IsScrapClass(Defect defect);

/// The passed or failed safety assessment (安全评估) past design life.
struct Assessment {
  Date date;
  bool passed = false;
  std::optional<Date> extends_until;  ///< as the assessor wrote it; capped by policy
};

/// A cylinder's record: what is stamped on it and what is known of its history.
struct Cylinder {
  std::string code;
  std::string model;  ///< "YSP35.5", ...; must be a model the policy knows
  Phase phase = Phase::kGas;
  std::string manufacturer;
  std::string serial;
  YearMonth manufactured;
  double tare_kg = 0;
  std::optional<double> allowed_fill_kg;  ///< stamped; else the model's maximum
  std::optional<int> design_life_years;   ///< stamped; else the policy's default
  std::string registration_no;            ///< 使用登记证
  std::string owner_company_id;
  std::optional<Date> last_inspection;
  std::optional<InspectionResult> last_inspection_result;
  std::optional<Date> next_inspection_due;  ///< as recorded by the inspection agency
  std::optional<Assessment> assessment;
  CylinderState state = CylinderState::kActive;
};

/// Rounds kilograms to whole grams, so that weight rules compare exactly.
std::int64_t ToGrams(double kg);

}  // namespace pingma
