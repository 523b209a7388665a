// The refill rules of DOMAIN.md, one block per reason code, in reason-code order.
#include <algorithm>

#include <fmt/format.h>

#include "pingma/common/policy.h"

namespace pingma {

Policy Policy::Defaults() {
  Policy p;
  // DOMAIN.md "Filling quantities" and "Dates": interval, min, max, phase.
  p.models = {
      {"YSP4.7", {4, 1.8, 1.9, Phase::kGas}},    {"YSP12", {4, 4.8, 5.0, Phase::kGas}},
      {"YSP26.2", {4, 10.6, 11.0, Phase::kGas}}, {"YSP35.5", {4, 14.1, 14.9, Phase::kGas}},
      {"YSP118", {3, 48.5, 49.5, Phase::kGas}},  {"YSP118-II", {3, 48.5, 49.5, Phase::kDual}},
  };
  return p;
}

const ModelRule* Policy::FindModel(std::string_view model) const {
  auto it = models.find(model);
  return it == models.end() ? nullptr : &it->second;
}

Reason ReasonWith(ReasonCode code, std::string_view detail) {
  return {code, fmt::format("{} / {}: {}", TitleZh(code), TitleEn(code), detail)};
}

bool FillDecision::Has(ReasonCode code) const {
  return std::any_of(reasons.begin(), reasons.end(),
                     [code](const Reason& r) { return r.code == code; });
}

std::optional<Date> NextInspectionDue(const Policy& policy, const Cylinder& cylinder) {
  if (cylinder.next_inspection_due) return cylinder.next_inspection_due;
  const ModelRule* rule = policy.FindModel(cylinder.model);
  if (rule == nullptr) return std::nullopt;
  if (cylinder.last_inspection) {
    return cylinder.last_inspection->AddYears(rule->inspection_interval_years);
  }
  return cylinder.manufactured.AddYears(rule->inspection_interval_years).LastDay();
}

Date ServiceLifeEnd(const Policy& policy, const Cylinder& cylinder) {
  int life = policy.design_life_years;
  if (cylinder.design_life_years) {
    life = *cylinder.design_life_years;
  } else if (cylinder.manufactured < policy.design_life_cutover) {
    life = policy.design_life_years_before;
  }
  const Date end = cylinder.manufactured.AddYears(life).LastDay();
  if (!cylinder.assessment || !cylinder.assessment->passed) return end;
  // One passed safety assessment extends the life once, never past the cap.
  const Date cap = end.AddYears(policy.life_extension_max_years);
  const Date granted = cylinder.assessment->extends_until.value_or(cap);
  return std::max(end, std::min(granted, cap));
}

std::optional<FillLimits> FillLimitsFor(const Policy& policy, const Cylinder& cylinder) {
  const ModelRule* rule = policy.FindModel(cylinder.model);
  if (rule == nullptr) return std::nullopt;
  FillLimits limits;
  limits.tare_kg = cylinder.tare_kg;
  limits.max_kg = cylinder.allowed_fill_kg.value_or(rule->max_fill_kg);
  limits.min_kg = std::min(rule->min_fill_kg, limits.max_kg);
  // Round the middle to whole grams so that the setpoint is a clean figure.
  limits.target_kg = static_cast<double>(ToGrams((limits.min_kg + limits.max_kg) / 2)) / 1000.0;
  return limits;
}

namespace {

class ReasonList {
 public:
  explicit ReasonList(FillDecision* decision) : decision_(decision) {}

  template <typename... Args>
  void Add(ReasonCode code, fmt::format_string<Args...> detail_zh_en, Args&&... args) {
    decision_->reasons.push_back(
        ReasonWith(code, fmt::format(detail_zh_en, std::forward<Args>(args)...)));
  }
  void Scrap(ReasonCode code) { decision_->scrap_reasons.push_back(code); }

 private:
  FillDecision* decision_;
};

bool CustodyCovers(const std::vector<CustodyAgreement>& agreements, const std::string& owner,
                   const std::string& custodian, Date today) {
  return std::any_of(agreements.begin(), agreements.end(), [&](const CustodyAgreement& a) {
    return a.owner_company_id == owner && a.custodian_company_id == custodian &&
           a.valid_from <= today && today <= a.valid_until;
  });
}

const Recall* MatchingRecall(const std::vector<Recall>& recalls, const Cylinder& cylinder) {
  for (const Recall& r : recalls) {
    if (r.manufacturer != cylinder.manufacturer) continue;
    if (r.manufactured_from && cylinder.manufactured < *r.manufactured_from) continue;
    if (r.manufactured_to && *r.manufactured_to < cylinder.manufactured) continue;
    return &r;
  }
  return nullptr;
}

// "螺纹护罩、过火 / threaded_shroud, fire_damage"
std::string DefectList(const std::vector<Defect>& defects) {
  std::string zh, en;
  for (Defect d : defects) {
    if (!en.empty()) {
      zh += "、";
      en += ", ";
    }
    zh += TitleZh(d);
    en += ToString(d);
  }
  return zh + " / " + en;
}

void OwnershipRule(const FillCheckInput& in, Date today, ReasonList* reasons) {
  const Cylinder& c = *in.cylinder;
  if (c.owner_company_id != in.station.company_id &&
      !CustodyCovers(in.custody, c.owner_company_id, in.station.company_id, today)) {
    reasons->Add(ReasonCode::kNotOwned, "产权单位 {}，本站单位 {} / owner {}, station company {}",
                 c.owner_company_id, in.station.company_id, c.owner_company_id,
                 in.station.company_id);
  }
}

// The rules on the cylinder's own record, after NOT_OWNED in reason-code order.
void CylinderRules(const Policy& policy, const Cylinder& c, const std::vector<Recall>& recalls,
                   Date today, FillDecision* decision, ReasonList* reasons) {
  decision->next_inspection_due = NextInspectionDue(policy, c);
  if (decision->next_inspection_due && today > *decision->next_inspection_due) {
    const std::string due = decision->next_inspection_due->ToString();
    reasons->Add(ReasonCode::kInspectionOverdue, "应于 {} 前检验 / was due {}", due, due);
  }

  if (c.last_inspection_result == InspectionResult::kFail) {
    const std::string when = c.last_inspection ? c.last_inspection->ToString() : "?";
    reasons->Add(ReasonCode::kInspectionFailed, "{} 检验结论不合格 / failed on {}", when, when);
    reasons->Scrap(ReasonCode::kInspectionFailed);
  }

  decision->service_life_end = ServiceLifeEnd(policy, c);
  if (today > *decision->service_life_end) {
    const std::string end = decision->service_life_end->ToString();
    reasons->Add(ReasonCode::kServiceLifeExceeded, "使用年限至 {} / service life ended {}", end,
                 end);
    reasons->Scrap(ReasonCode::kServiceLifeExceeded);
  }

  // A failed assessment is a verdict on the cylinder itself, not on its age: it
  // stands from its date on, even while the stamped life still runs (an agency may
  // assess ahead of the end), and it is never lifted, as there is no second one.
  if (c.assessment && !c.assessment->passed && today >= c.assessment->date) {
    const std::string when = c.assessment->date.ToString();
    reasons->Add(ReasonCode::kAssessmentFailed, "{} 安全评估结论不合格 / failed on {}", when, when);
    reasons->Scrap(ReasonCode::kAssessmentFailed);
  }

  if (c.phase == Phase::kDual) {
    reasons->Add(ReasonCode::kDualPhaseBanned, "型号 {} / model {}", c.model, c.model);
    reasons->Scrap(ReasonCode::kDualPhaseBanned);
  }

  if (const Recall* recall = MatchingRecall(recalls, c)) {
    reasons->Add(ReasonCode::kRecalled, "{}（{}）/ {} ({})", c.manufacturer, recall->reason,
                 c.manufacturer, recall->reason);
    reasons->Scrap(ReasonCode::kRecalled);
  }

  if (c.state == CylinderState::kScrapPending) {
    reasons->Add(ReasonCode::kScrapPending, "已标记报废，待移交检验机构 / awaiting scrapping");
  } else if (c.state == CylinderState::kScrapped) {
    reasons->Add(ReasonCode::kScrapped, "使用登记已注销 / registration cancelled");
  }
}

// Last: without the model's figures there is nothing to set the scale to.
void ModelLimitsRule(const Policy& policy, const Cylinder& c, FillDecision* decision,
                     ReasonList* reasons) {
  auto limits = FillLimitsFor(policy, c);
  if (!limits) {
    reasons->Add(ReasonCode::kModelUnknown, "型号 {} / model {}", c.model, c.model);
  } else if (decision->allowed()) {
    decision->fill = limits;
  }
}

}  // namespace

FillDecision DecideFill(const Policy& policy, const FillCheckInput& in) {
  FillDecision decision;
  ReasonList reasons(&decision);
  const Date today = in.now.LocalDate(policy.utc_offset_minutes);
  decision.today = today;

  if (!in.cylinder) {
    reasons.Add(ReasonCode::kUnknownCode, "该码未关联任何已登记气瓶 / the code is not registered");
  } else {
    OwnershipRule(in, today, &reasons);
    CylinderRules(policy, *in.cylinder, in.recalls, today, &decision, &reasons);
  }

  if (!in.defects.empty()) {
    reasons.Add(ReasonCode::kDefectFound, "{}", DefectList(in.defects));
    if (std::any_of(in.defects.begin(), in.defects.end(), IsScrapClass)) {
      reasons.Scrap(ReasonCode::kDefectFound);
    }
  }

  if (in.cylinder && in.empty_gross_kg &&
      ToGrams(*in.empty_gross_kg) <
          ToGrams(in.cylinder->tare_kg) - ToGrams(policy.tare_tolerance_kg)) {
    reasons.Add(ReasonCode::kTareMismatch,
                "空瓶称重 {:.2f} kg，钢印皮重 {:.2f} kg / empty {:.2f} kg, stamped tare {:.2f} kg",
                *in.empty_gross_kg, in.cylinder->tare_kg, *in.empty_gross_kg, in.cylinder->tare_kg);
  }

  // Within the window on either side: a check decided offline is decided again
  // later, when the registry may already know of a check made after it.
  const std::int64_t apart =
      in.last_check ? in.now.unix_ms - in.last_check->at.unix_ms : std::int64_t{0};
  if (in.last_check && in.last_check->station_id != in.station.id &&
      (apart < 0 ? -apart : apart) <=
          static_cast<std::int64_t>(policy.clone_window_minutes) * 60000) {
    const std::string at = in.last_check->at.ToString();
    if (apart >= 0) {
      reasons.Add(ReasonCode::kCloneSuspected, "{} 于 {} 刚查验过此码 / checked at {} at {}",
                  in.last_check->station_id, at, in.last_check->station_id, at);
    } else {
      reasons.Add(ReasonCode::kCloneSuspected, "{} 于 {} 也查验过此码 / also checked at {} at {}",
                  in.last_check->station_id, at, in.last_check->station_id, at);
    }
  }

  const auto& license = in.station.license;
  if (in.station.locked) {
    reasons.Add(ReasonCode::kStationLicenseInvalid, "充装站已被监管锁定（{}）/ station locked ({})",
                in.station.lock_reason, in.station.lock_reason);
  } else if (!license) {
    reasons.Add(ReasonCode::kStationLicenseInvalid, "无充装许可证 / no filling licence on record");
  } else if (license->revoked) {
    reasons.Add(ReasonCode::kStationLicenseInvalid, "许可证 {} 已吊销 / licence {} revoked",
                license->number, license->number);
  } else if (today > license->valid_until) {
    const std::string until = license->valid_until.ToString();
    reasons.Add(ReasonCode::kStationLicenseInvalid, "许可证 {} 有效期至 {} / licence {} expired {}",
                license->number, until, license->number, until);
  }

  if (!in.operator_facts) {
    reasons.Add(ReasonCode::kOperatorNotCertified, "充装人员未登记 / operator not registered");
  } else if (!in.operator_facts->certificate) {
    reasons.Add(ReasonCode::kOperatorNotCertified, "{} 无作业证书 / {} has no certificate",
                in.operator_facts->id, in.operator_facts->id);
  } else if (today > in.operator_facts->certificate->valid_until) {
    const std::string until = in.operator_facts->certificate->valid_until.ToString();
    reasons.Add(ReasonCode::kOperatorNotCertified, "证书有效期至 {} / certificate expired {}",
                until, until);
  }

  if (in.cylinder) ModelLimitsRule(policy, *in.cylinder, &decision, &reasons);
  return decision;
}

FillDecision DecideCylinder(const Policy& policy, const Cylinder& cylinder,
                            const std::vector<Recall>& recalls, Instant now) {
  FillDecision decision;
  ReasonList reasons(&decision);
  decision.today = now.LocalDate(policy.utc_offset_minutes);
  CylinderRules(policy, cylinder, recalls, decision.today, &decision, &reasons);
  ModelLimitsRule(policy, cylinder, &decision, &reasons);
  return decision;
}

}  // namespace pingma
