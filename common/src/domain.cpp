#include <cmath>

#include <fmt/format.h>

#include "pingma/common/domain.h"

namespace pingma {
namespace {

// One table per enum: value, wire name. Lookups are linear; the tables are tiny.
template <typename E>
struct Name {
  E value;
  const char* text;
};

template <typename E, size_t N>
const char* NameOf(const Name<E> (&table)[N], E value) {
  for (const auto& row : table) {
    if (row.value == value) return row.text;
  }
  return "?";
}

// The rows [first, last) of a table.
template <typename E>
Result<E> Lookup(const Name<E>* first, const Name<E>* last, std::string_view text,
                 const char* what) {
  for (const Name<E>* row = first; row != last; ++row) {
    if (text == row->text) return row->value;
  }
  std::string allowed;
  for (const Name<E>* row = first; row != last; ++row) {
    allowed += allowed.empty() ? "" : ", ";
    allowed += row->text;
  }
  return Status::Invalid(fmt::format("unknown {} '{}' (one of: {})", what, text, allowed));
}

template <typename E, size_t N>
Result<E> Lookup(const Name<E> (&table)[N], std::string_view text, const char* what) {
  return Lookup(table, table + N, text, what);
}

constexpr Name<Phase> kPhases[] = {
    {Phase::kGas, "gas"}, {Phase::kLiquid, "liquid"}, {Phase::kDual, "dual"}};

constexpr Name<CylinderState> kStates[] = {{CylinderState::kActive, "active"},
                                           {CylinderState::kScrapPending, "scrap_pending"},
                                           {CylinderState::kScrapped, "scrapped"}};

constexpr Name<InspectionResult> kResults[] = {{InspectionResult::kPass, "pass"},
                                               {InspectionResult::kFail, "fail"}};

constexpr Name<ReasonCode> kReasons[] = {
    {ReasonCode::kUnknownCode, "UNKNOWN_CODE"},
    {ReasonCode::kNotOwned, "NOT_OWNED"},
    {ReasonCode::kInspectionOverdue, "INSPECTION_OVERDUE"},
    {ReasonCode::kInspectionFailed, "INSPECTION_FAILED"},
    {ReasonCode::kServiceLifeExceeded, "SERVICE_LIFE_EXCEEDED"},
    {ReasonCode::kAssessmentFailed, "ASSESSMENT_FAILED"},
    {ReasonCode::kDualPhaseBanned, "DUAL_PHASE_BANNED"},
    {ReasonCode::kRecalled, "RECALLED"},
    {ReasonCode::kScrapPending, "SCRAP_PENDING"},
    {ReasonCode::kScrapped, "SCRAPPED"},
    {ReasonCode::kDefectFound, "DEFECT_FOUND"},
    {ReasonCode::kTareMismatch, "TARE_MISMATCH"},
    {ReasonCode::kCloneSuspected, "CLONE_SUSPECTED"},
    {ReasonCode::kStationLicenseInvalid, "STATION_LICENSE_INVALID"},
    {ReasonCode::kOperatorNotCertified, "OPERATOR_NOT_CERTIFIED"},
    {ReasonCode::kModelUnknown, "MODEL_UNKNOWN"},
    {ReasonCode::kNotFilledSinceDelivery, "NOT_FILLED_SINCE_DELIVERY"},
    {ReasonCode::kFillNotPassed, "FILL_NOT_PASSED"},
    {ReasonCode::kFillNotByOwner, "FILL_NOT_BY_OWNER"},
    {ReasonCode::kFillStationUnlicensed, "FILL_STATION_UNLICENSED"},
    {ReasonCode::kCourierNotOwner, "COURIER_NOT_OWNER"},
    {ReasonCode::kVehicleMismatch, "VEHICLE_MISMATCH"},
    {ReasonCode::kOutsideZone, "OUTSIDE_ZONE"},
    {ReasonCode::kBasementSite, "BASEMENT_SITE"},
    {ReasonCode::kNoCylinderRoom, "NO_CYLINDER_ROOM"},
    {ReasonCode::kYsp118Indoors, "YSP118_INDOORS"},
    {ReasonCode::kNotAtCustomer, "NOT_AT_CUSTOMER"},
};
// The fill check's reasons are the table's first rows, UNKNOWN_CODE to MODEL_UNKNOWN.
constexpr size_t kFillReasonCount = static_cast<size_t>(ReasonCode::kModelUnknown) + 1;
static_assert(kReasons[kFillReasonCount - 1].value == ReasonCode::kModelUnknown);

constexpr Name<ReasonCode> kTitlesZh[] = {
    {ReasonCode::kUnknownCode, "未登记的气瓶（黑气瓶）"},
    {ReasonCode::kNotOwned, "非自有且无托管协议"},
    {ReasonCode::kInspectionOverdue, "超期未检"},
    {ReasonCode::kInspectionFailed, "定期检验不合格"},
    {ReasonCode::kServiceLifeExceeded, "超出设计使用年限"},
    {ReasonCode::kAssessmentFailed, "安全评估不合格"},
    {ReasonCode::kDualPhaseBanned, "气液双相气瓶禁止充装"},
    {ReasonCode::kRecalled, "产品黑名单（召回）"},
    {ReasonCode::kScrapPending, "待报废"},
    {ReasonCode::kScrapped, "已报废"},
    {ReasonCode::kDefectFound, "充装前检查发现缺陷"},
    {ReasonCode::kTareMismatch, "空瓶重量与钢印皮重不符"},
    {ReasonCode::kCloneSuspected, "疑似克隆码"},
    {ReasonCode::kStationLicenseInvalid, "充装许可无效或充装站被锁定"},
    {ReasonCode::kOperatorNotCertified, "充装人员无有效作业证书"},
    {ReasonCode::kModelUnknown, "充装政策中无此型号"},
    {ReasonCode::kNotFilledSinceDelivery, "未充装"},
    {ReasonCode::kFillNotPassed, "充装后检查未通过"},
    {ReasonCode::kFillNotByOwner, "非产权单位充装"},
    {ReasonCode::kFillStationUnlicensed, "充装站无有效许可"},
    {ReasonCode::kCourierNotOwner, "送气工非产权单位人员"},
    {ReasonCode::kVehicleMismatch, "人车不对应"},
    {ReasonCode::kOutsideZone, "超出配送区域"},
    {ReasonCode::kBasementSite, "地下或半地下场所"},
    {ReasonCode::kNoCylinderRoom, "超量存放无气瓶间"},
    {ReasonCode::kYsp118Indoors, "YSP118不得室内使用"},
    {ReasonCode::kNotAtCustomer, "不在该用户处"},
};

constexpr Name<ReasonCode> kTitlesEn[] = {
    {ReasonCode::kUnknownCode, "Unregistered cylinder"},
    {ReasonCode::kNotOwned, "Not owned and no custody agreement"},
    {ReasonCode::kInspectionOverdue, "Inspection overdue"},
    {ReasonCode::kInspectionFailed, "Failed periodic inspection"},
    {ReasonCode::kServiceLifeExceeded, "Past its service life"},
    {ReasonCode::kAssessmentFailed, "Failed its safety assessment"},
    {ReasonCode::kDualPhaseBanned, "Dual-phase cylinders are banned"},
    {ReasonCode::kRecalled, "On the recall list"},
    {ReasonCode::kScrapPending, "Flagged for scrapping"},
    {ReasonCode::kScrapped, "Scrapped"},
    {ReasonCode::kDefectFound, "Pre-fill check found a defect"},
    {ReasonCode::kTareMismatch, "Empty weight below stamped tare"},
    {ReasonCode::kCloneSuspected, "Suspected cloned code"},
    {ReasonCode::kStationLicenseInvalid, "Filling licence invalid or station locked"},
    {ReasonCode::kOperatorNotCertified, "Operator not certified"},
    {ReasonCode::kModelUnknown, "Model not in the filling policy"},
    {ReasonCode::kNotFilledSinceDelivery, "Not filled"},
    {ReasonCode::kFillNotPassed, "Post-fill check not passed"},
    {ReasonCode::kFillNotByOwner, "Not filled by its owner"},
    {ReasonCode::kFillStationUnlicensed, "Filling station not licensed"},
    {ReasonCode::kCourierNotOwner, "Courier not of the owner"},
    {ReasonCode::kVehicleMismatch, "Vehicle mismatch"},
    {ReasonCode::kOutsideZone, "Outside the delivery zone"},
    {ReasonCode::kBasementSite, "Basement site"},
    {ReasonCode::kNoCylinderRoom, "No cylinder room"},
    {ReasonCode::kYsp118Indoors, "YSP118 indoors"},
    {ReasonCode::kNotAtCustomer, "Not at this customer"},
};

constexpr Name<Defect> kDefects[] = {
    {Defect::kDent, "dent"},
    {Defect::kCorrosion, "corrosion"},
    {Defect::kValveFault, "valve_fault"},
    {Defect::kShroudLoose, "shroud_loose"},
    {Defect::kNoResidualPressure, "no_residual_pressure"},
    {Defect::kFireDamage, "fire_damage"},
    {Defect::kCrackOrBulge, "crack_or_bulge"},
    {Defect::kThreadedShroud, "threaded_shroud"},
    {Defect::kRefurbished, "refurbished"},
    {Defect::kStampIllegible, "stamp_illegible"},
};

constexpr Name<Defect> kDefectsZh[] = {
    {Defect::kDent, "凹陷"},
    {Defect::kCorrosion, "腐蚀"},
    {Defect::kValveFault, "瓶阀故障"},
    {Defect::kShroudLoose, "护罩松动"},
    {Defect::kNoResidualPressure, "无余压"},
    {Defect::kFireDamage, "过火"},
    {Defect::kCrackOrBulge, "裂纹或鼓包"},
    {Defect::kThreadedShroud, "螺纹护罩"},
    {Defect::kRefurbished, "翻新瓶"},
    {Defect::kStampIllegible, "钢印不清"},
};

}  // namespace

const char* ToString(Phase phase) {
  return NameOf(kPhases, phase);
}
Result<Phase> ParsePhase(std::string_view text) {
  return Lookup(kPhases, text, "phase");
}

const char* ToString(CylinderState state) {
  return NameOf(kStates, state);
}
Result<CylinderState> ParseCylinderState(std::string_view text) {
  return Lookup(kStates, text, "cylinder state");
}

const char* ToString(InspectionResult result) {
  return NameOf(kResults, result);
}
Result<InspectionResult> ParseInspectionResult(std::string_view text) {
  return Lookup(kResults, text, "result");
}

const char* ToString(ReasonCode code) {
  return NameOf(kReasons, code);
}
Result<ReasonCode> ParseReasonCode(std::string_view text) {
  return Lookup(kReasons, text, "reason code");
}
Result<ReasonCode> ParseFillReasonCode(std::string_view text) {
  return Lookup(kReasons, kReasons + kFillReasonCount, text, "reason code");
}
const char* TitleZh(ReasonCode code) {
  return NameOf(kTitlesZh, code);
}
const char* TitleEn(ReasonCode code) {
  return NameOf(kTitlesEn, code);
}

const char* ToString(Defect defect) {
  return NameOf(kDefects, defect);
}
Result<Defect> ParseDefect(std::string_view text) {
  return Lookup(kDefects, text, "defect");
}
const char* TitleZh(Defect defect) {
  return NameOf(kDefectsZh, defect);
}

bool IsScrapClass(Defect defect) {
  switch (defect) {
    case Defect::kFireDamage:
    case Defect::kCrackOrBulge:
    case Defect::kThreadedShroud:
    case Defect::kRefurbished:
    case Defect::kStampIllegible:
      return true;
    default:
      return false;
  }
}

std::int64_t ToGrams(double kg) {
  return std::llround(kg * 1000.0);
}

}  // namespace pingma
