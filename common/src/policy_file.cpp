// The policy file: JSON over DOMAIN.md's defaults. Strict, so that a misspelt key
// never silently leaves a default in force.
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "pingma/common/policy.h"

namespace pingma {
namespace {

using nlohmann::json;

Status CheckKeys(const json& obj, const std::string& where,
                 std::initializer_list<const char*> allowed) {
  if (!obj.is_object()) return Status::Invalid(fmt::format("{} must be an object", where));
  for (const auto& item : obj.items()) {
    bool known = false;
    for (const char* key : allowed) known = known || item.key() == key;
    if (!known) return Status::Invalid(fmt::format("unknown key {}.{}", where, item.key()));
  }
  return Status::Ok();
}

template <typename T>
Status Read(const json& obj, const char* key, const std::string& where, T* out) {
  auto it = obj.find(key);
  if (it == obj.end()) return Status::Ok();
  if constexpr (std::is_same_v<T, int>) {
    if (!it->is_number_integer() ||
        (it->is_number_unsigned() && it->template get<std::uint64_t>() > 1000000) ||
        (!it->is_number_unsigned() && (it->template get<std::int64_t>() > 1000000 ||
                                       it->template get<std::int64_t>() < -1000000))) {
      return Status::Invalid(
          fmt::format("{}.{} must be a whole number from -1000000 to 1000000", where, key));
    }
    *out = static_cast<int>(it->template get<std::int64_t>());
  } else if constexpr (std::is_same_v<T, double>) {
    if (!it->is_number()) return Status::Invalid(fmt::format("{}.{} must be a number", where, key));
    *out = it->template get<double>();
  } else {
    if (!it->is_string() || it->template get_ref<const std::string&>().empty()) {
      return Status::Invalid(fmt::format("{}.{} must be a non-empty string", where, key));
    }
    *out = it->template get<std::string>();
  }
  return Status::Ok();
}

Status ReadModel(const std::string& name, const json& obj, Policy* policy) {
  const std::string where = "models." + name;
  PINGMA_RETURN_IF_ERROR(
      CheckKeys(obj, where, {"inspection_interval_years", "min_fill_kg", "max_fill_kg", "phase"}));
  auto existing = policy->models.find(name);
  const bool is_new = existing == policy->models.end();
  if (is_new) {
    for (const char* key : {"inspection_interval_years", "min_fill_kg", "max_fill_kg"}) {
      if (!obj.contains(key)) {
        return Status::Invalid(fmt::format("{}.{} is required for a new model", where, key));
      }
    }
  }
  ModelRule rule = is_new ? ModelRule{} : existing->second;
  PINGMA_RETURN_IF_ERROR(
      Read(obj, "inspection_interval_years", where, &rule.inspection_interval_years));
  PINGMA_RETURN_IF_ERROR(Read(obj, "min_fill_kg", where, &rule.min_fill_kg));
  PINGMA_RETURN_IF_ERROR(Read(obj, "max_fill_kg", where, &rule.max_fill_kg));
  std::string phase;
  PINGMA_RETURN_IF_ERROR(Read(obj, "phase", where, &phase));
  if (!phase.empty()) {
    auto parsed = ParsePhase(phase);
    if (!parsed.ok()) return Status::Invalid(where + ".phase: " + parsed.status().message());
    rule.default_phase = *parsed;
  }
  if (rule.inspection_interval_years <= 0) {
    return Status::Invalid(where + ".inspection_interval_years must be positive");
  }
  if (rule.min_fill_kg <= 0 || rule.max_fill_kg <= 0 || rule.min_fill_kg > rule.max_fill_kg) {
    return Status::Invalid(where + ": need 0 < min_fill_kg <= max_fill_kg");
  }
  policy->models[name] = rule;
  return Status::Ok();
}

Status ReadPolicy(const json& root, Policy* p) {
  PINGMA_RETURN_IF_ERROR(
      CheckKeys(root, "policy",
                {"time_zone", "models", "design_life", "life_extension_max_years",
                 "tare_tolerance_kg", "clone_window_minutes", "regulator_service_life_years",
                 "hazard_deadline_days", "contact_retention_days", "position_retention_days",
                 "zone_exit_minutes", "handover_max_distance_m", "no_position_minutes"}));
  if (auto tz = root.find("time_zone"); tz != root.end()) {
    PINGMA_RETURN_IF_ERROR(CheckKeys(*tz, "time_zone", {"name", "utc_offset_minutes"}));
    PINGMA_RETURN_IF_ERROR(Read(*tz, "name", "time_zone", &p->time_zone));
    PINGMA_RETURN_IF_ERROR(Read(*tz, "utc_offset_minutes", "time_zone", &p->utc_offset_minutes));
    if (p->utc_offset_minutes < -14 * 60 || p->utc_offset_minutes > 14 * 60) {
      return Status::Invalid("time_zone.utc_offset_minutes must be within -840..840");
    }
  }
  if (auto models = root.find("models"); models != root.end()) {
    if (!models->is_object()) return Status::Invalid("models must be an object");
    for (const auto& item : models->items()) {
      PINGMA_RETURN_IF_ERROR(ReadModel(item.key(), item.value(), p));
    }
  }
  if (auto life = root.find("design_life"); life != root.end()) {
    PINGMA_RETURN_IF_ERROR(
        CheckKeys(*life, "design_life", {"default_years", "before_cutover_years", "cutover"}));
    PINGMA_RETURN_IF_ERROR(Read(*life, "default_years", "design_life", &p->design_life_years));
    PINGMA_RETURN_IF_ERROR(
        Read(*life, "before_cutover_years", "design_life", &p->design_life_years_before));
    std::string cutover;
    PINGMA_RETURN_IF_ERROR(Read(*life, "cutover", "design_life", &cutover));
    if (!cutover.empty()) {
      auto ym = YearMonth::Parse(cutover);
      if (!ym.ok()) return Status::Invalid("design_life.cutover: " + ym.status().message());
      p->design_life_cutover = *ym;
    }
    if (p->design_life_years <= 0 || p->design_life_years_before <= 0) {
      return Status::Invalid("design_life years must be positive");
    }
  }
  PINGMA_RETURN_IF_ERROR(
      Read(root, "life_extension_max_years", "policy", &p->life_extension_max_years));
  PINGMA_RETURN_IF_ERROR(Read(root, "tare_tolerance_kg", "policy", &p->tare_tolerance_kg));
  PINGMA_RETURN_IF_ERROR(Read(root, "clone_window_minutes", "policy", &p->clone_window_minutes));
  PINGMA_RETURN_IF_ERROR(
      Read(root, "regulator_service_life_years", "policy", &p->regulator_service_life_years));
  PINGMA_RETURN_IF_ERROR(Read(root, "hazard_deadline_days", "policy", &p->hazard_deadline_days));
  if (p->regulator_service_life_years <= 0) {
    return Status::Invalid("policy.regulator_service_life_years must be positive");
  }
  if (p->hazard_deadline_days < 0) {
    return Status::Invalid("policy.hazard_deadline_days must not be negative");
  }
  PINGMA_RETURN_IF_ERROR(
      Read(root, "contact_retention_days", "policy", &p->contact_retention_days));
  PINGMA_RETURN_IF_ERROR(
      Read(root, "position_retention_days", "policy", &p->position_retention_days));
  if (p->contact_retention_days < 0) {
    return Status::Invalid("policy.contact_retention_days must not be negative");
  }
  if (p->position_retention_days < 0) {
    return Status::Invalid("policy.position_retention_days must not be negative");
  }
  PINGMA_RETURN_IF_ERROR(Read(root, "zone_exit_minutes", "policy", &p->zone_exit_minutes));
  PINGMA_RETURN_IF_ERROR(
      Read(root, "handover_max_distance_m", "policy", &p->handover_max_distance_m));
  PINGMA_RETURN_IF_ERROR(Read(root, "no_position_minutes", "policy", &p->no_position_minutes));
  if (p->zone_exit_minutes < 0) {
    return Status::Invalid("policy.zone_exit_minutes must not be negative");
  }
  if (p->handover_max_distance_m <= 0) {
    return Status::Invalid("policy.handover_max_distance_m must be positive");
  }
  if (p->no_position_minutes <= 0) {
    return Status::Invalid("policy.no_position_minutes must be positive");
  }
  if (p->life_extension_max_years < 0) {
    return Status::Invalid("policy.life_extension_max_years must not be negative");
  }
  if (p->tare_tolerance_kg < 0)
    return Status::Invalid("policy.tare_tolerance_kg must not be negative");
  if (p->clone_window_minutes < 0) {
    return Status::Invalid("policy.clone_window_minutes must not be negative");
  }
  return Status::Ok();
}

}  // namespace

Result<Policy> ParsePolicy(std::string_view json_text) {
  json root = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return Status::Malformed("the policy file is not valid JSON");
  Policy policy = Policy::Defaults();
  PINGMA_RETURN_IF_ERROR(ReadPolicy(root, &policy));
  return policy;
}

Result<Policy> LoadPolicyFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError(fmt::format("cannot read the policy file {}", path));
  std::ostringstream text;
  text << in.rdbuf();
  auto policy = ParsePolicy(text.str());
  if (!policy.ok()) {
    return Status(policy.status().code(), fmt::format("{}: {}", path, policy.status().message()));
  }
  return policy;
}

std::string PolicyToJson(const Policy& p) {
  json models = json::object();
  for (const auto& [name, rule] : p.models) {
    models[name] = {{"inspection_interval_years", rule.inspection_interval_years},
                    {"min_fill_kg", rule.min_fill_kg},
                    {"max_fill_kg", rule.max_fill_kg},
                    {"phase", ToString(rule.default_phase)}};
  }
  json root = {
      {"time_zone", {{"name", p.time_zone}, {"utc_offset_minutes", p.utc_offset_minutes}}},
      {"models", models},
      {"design_life",
       {{"default_years", p.design_life_years},
        {"before_cutover_years", p.design_life_years_before},
        {"cutover", p.design_life_cutover.ToString()}}},
      {"life_extension_max_years", p.life_extension_max_years},
      {"tare_tolerance_kg", p.tare_tolerance_kg},
      {"clone_window_minutes", p.clone_window_minutes},
      {"regulator_service_life_years", p.regulator_service_life_years},
      {"hazard_deadline_days", p.hazard_deadline_days},
      {"contact_retention_days", p.contact_retention_days},
      {"position_retention_days", p.position_retention_days},
      {"zone_exit_minutes", p.zone_exit_minutes},
      {"handover_max_distance_m", p.handover_max_distance_m},
      {"no_position_minutes", p.no_position_minutes},
  };
  return root.dump(2);
}

}  // namespace pingma
