// Scale profiles. See scale_profile.h for the contract.
#include "scale_profile.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "pingma/common/toml_reader.h"

namespace pingma::station {

Status CheckGross(const ScaleProfile& profile, double gross_kg) {
  std::ostringstream why;
  if (std::isnan(gross_kg)) {
    why << "NaN";
  } else if (std::isinf(gross_kg)) {
    why << (gross_kg > 0 ? "+" : "-") << "infinity";
  } else if (gross_kg < -profile.negative_tolerance_kg) {
    why << gross_kg << " kg, below -" << profile.negative_tolerance_kg << " kg";
  } else if (gross_kg > profile.capacity_kg) {
    why << gross_kg << " kg, above the capacity " << profile.capacity_kg << " kg";
  } else {
    return Status::Ok();
  }
  return Status::Invalid("fault, not a reading: gross " + why.str());
}

ScaleProfile DefaultProfile() {
  ScaleProfile p;
  p.name = "pingma-fill-v1";
  auto reg = [](int address, ValueType type) {
    RegisterSpec spec;
    spec.kind = RegisterKind::kHolding;
    spec.address = address;
    spec.type = type;
    return spec;
  };
  auto status_bit = [](int bit) {
    RegisterSpec spec;
    spec.kind = RegisterKind::kHolding;
    spec.address = 4;
    spec.bit = bit;
    return spec;
  };
  p.gross_kg = reg(0, ValueType::kFloat32);
  p.cutoff_gross_kg = reg(2, ValueType::kFloat32);
  p.stable = status_bit(0);
  p.valve_open = status_bit(1);
  p.fill_done = status_bit(2);
  p.fault = status_bit(3);
  p.present = status_bit(4);
  p.overload = status_bit(5);
  p.command = reg(5, ValueType::kUint16);
  p.interlock = reg(6, ValueType::kUint16);
  p.heartbeat = reg(7, ValueType::kUint16);
  p.fault_code = reg(8, ValueType::kUint16);
  auto coil = [](int address) {
    RegisterSpec spec;
    spec.kind = RegisterKind::kCoil;
    spec.address = address;
    return spec;
  };
  p.lamp_green = coil(0);
  p.lamp_amber = coil(1);
  p.lamp_red = coil(2);
  p.buzzer = coil(3);
  p.message_code = reg(9, ValueType::kUint16);
  return p;
}
/// A signal's write must never land on what controls the fill: a lamp on the
/// interlock's coil would unlock the valve with the lamp, and a read-modify-write of a
/// lamp bit in the interlock's register would write back whatever the interlock held
/// at the read. So each signal owns its coil or bit, and no signal shares a register or
/// coil with the cutoff, the command or the interlock.
Status CheckSignalsApart(const ScaleProfile& p) {
  struct Written {
    std::string key;
    RegisterKind kind;
    int first, last;  ///< the addresses it covers
    int bit;          ///< -1: the whole register or coil
  };
  std::vector<Written> taken;
  auto add = [&taken](std::string key, const RegisterSpec& spec) {
    taken.push_back(
        {std::move(key), spec.kind, spec.address, spec.address + spec.registers() - 1, spec.bit});
  };
  if (p.cutoff_gross_kg.present()) add("cutoff_gross_kg", p.cutoff_gross_kg);
  if (p.interlock.present()) add("interlock", p.interlock);
  if (p.command.kind == RegisterKind::kCoil) {
    for (const auto& [name, address] : {std::pair<const char*, int>{"start", p.command_start},
                                        {"stop", p.command_stop},
                                        {"zero", p.command_zero}}) {
      RegisterSpec coil = p.command;
      coil.address = address;
      add(std::string("command.") + name, coil);
    }
  } else if (p.command.present()) {
    add("command", p.command);
  }
  const std::pair<const char*, const RegisterSpec*> signals[] = {{"lamp_green", &p.lamp_green},
                                                                 {"lamp_amber", &p.lamp_amber},
                                                                 {"lamp_red", &p.lamp_red},
                                                                 {"buzzer", &p.buzzer},
                                                                 {"message_code", &p.message_code}};
  for (const auto& [key, spec] : signals) {
    if (!spec->present()) continue;
    const int first = spec->address, last = spec->address + spec->registers() - 1;
    for (const Written& w : taken) {
      const bool overlaps = w.kind == spec->kind && first <= w.last && w.first <= last;
      // Two signals may share a holding register by its bits, each its own.
      const bool own_bits = w.bit >= 0 && spec->bit >= 0 && w.bit != spec->bit;
      if (overlaps && !own_bits) {
        std::string where = std::string(KindName(spec->kind)) + " " + std::to_string(first);
        if (spec->bit >= 0) where += " bit " + std::to_string(spec->bit);
        return Status::Invalid("profile." + std::string(key) + " is on " + where +
                               ", which profile." + w.key + " uses");
      }
    }
    add(key, *spec);
  }
  return Status::Ok();
}

namespace {

Result<RegisterKind> ParseKind(TomlReader& t) {
  PINGMA_ASSIGN_OR_RETURN(const std::string kind, t.String("kind"));
  if (kind == "holding") return RegisterKind::kHolding;
  if (kind == "input") return RegisterKind::kInput;
  if (kind == "coil") return RegisterKind::kCoil;
  if (kind == "discrete") return RegisterKind::kDiscreteInput;
  return Status::Invalid(t.Name("kind") + " is \"" + kind +
                         "\"; expected holding, input, coil or discrete");
}

/// What a table may say, by its role in the profile.
enum class Role { kValue, kWritableValue, kFlag, kCommand, kInterlock, kSignal, kMessage };

Status CheckKind(TomlReader& t, RegisterKind kind, Role role) {
  const bool ok = [&] {
    switch (role) {
      case Role::kValue:
        return !IsBitKind(kind);
      case Role::kWritableValue:
      case Role::kMessage:
        return kind == RegisterKind::kHolding;
      case Role::kFlag:
        return true;
      case Role::kCommand:
      case Role::kInterlock:
      case Role::kSignal:
        return kind == RegisterKind::kHolding || kind == RegisterKind::kCoil;
    }
    return false;
  }();
  if (ok) return Status::Ok();
  const char* allowed = role == Role::kValue ? "holding or input"
                        : (role == Role::kWritableValue || role == Role::kMessage)
                            ? "holding (it is written)"
                            : "holding or coil (it is written)";
  return Status::Invalid(t.Name("kind") + " must be " + allowed);
}

/// type of a register value, when `required` or given.
Status ParseType(TomlReader& t, RegisterSpec& spec, bool required) {
  if (required || t.Has("type")) {
    PINGMA_ASSIGN_OR_RETURN(const std::string type, t.String("type"));
    if (type == "uint16")
      spec.type = ValueType::kUint16;
    else if (type == "int16")
      spec.type = ValueType::kInt16;
    else if (type == "uint32")
      spec.type = ValueType::kUint32;
    else if (type == "int32")
      spec.type = ValueType::kInt32;
    else if (type == "float32")
      spec.type = ValueType::kFloat32;
    else {
      return Status::Invalid(t.Name("type") + " is \"" + type +
                             "\"; expected uint16, int16, uint32, int32 or float32");
    }
  }
  return Status::Ok();
}

/// type / words / swap_bytes / scale of a register value; all but type optional.
Status ParseNumberFormat(TomlReader& t, RegisterSpec& spec, bool type_required) {
  PINGMA_RETURN_IF_ERROR(ParseType(t, spec, type_required));
  if (t.Has("words")) {
    PINGMA_ASSIGN_OR_RETURN(const std::string words, t.String("words"));
    if (words == "high-first")
      spec.words = WordOrder::kHighFirst;
    else if (words == "low-first")
      spec.words = WordOrder::kLowFirst;
    else {
      return Status::Invalid(t.Name("words") + " is \"" + words +
                             "\"; expected high-first or low-first");
    }
  }
  PINGMA_RETURN_IF_ERROR(t.Get("swap_bytes", false, &spec.swap_bytes));
  if (t.Has("scale")) {
    PINGMA_ASSIGN_OR_RETURN(spec.scale, t.Number("scale"));
    if (spec.scale == 0) return Status::Invalid(t.Name("scale") + " must not be 0");
  }
  return Status::Ok();
}

Status ParseAddress(TomlReader& t, RegisterSpec& spec) {
  // A 32-bit value needs its second register inside the 16-bit address space too.
  PINGMA_ASSIGN_OR_RETURN(const std::int64_t address,
                          t.Integer("address", 0, 65536 - spec.registers()));
  spec.address = static_cast<int>(address);
  return Status::Ok();
}

/// One register-map entry. `extra` reads the role's own keys (command values, ...).
template <typename Extra>
Status ParseSpec(const toml::table& profile, std::string_view key, Role role, bool required,
                 RegisterSpec& spec, Extra&& extra) {
  const toml::node* node = profile.get(key);
  const std::string path = "profile." + std::string(key);
  if (node == nullptr) {
    if (required) return Status::Invalid(path + " is missing");
    return Status::Ok();  // spec stays absent (address -1)
  }
  const toml::table* table = node->as_table();
  if (table == nullptr) return Status::Invalid(path + " must be a table");
  TomlReader t(*table, path);
  PINGMA_RETURN_IF_ERROR(
      t.OnlyKnown({"kind", "address", "type", "words", "swap_bytes", "scale", "bit", "invert",
                   "start", "stop", "zero", "locked", "unlocked"}));
  spec = RegisterSpec{};
  PINGMA_ASSIGN_OR_RETURN(spec.kind, ParseKind(t));
  PINGMA_RETURN_IF_ERROR(CheckKind(t, spec.kind, role));
  switch (role) {
    case Role::kValue:
    case Role::kWritableValue:
      PINGMA_RETURN_IF_ERROR(ParseNumberFormat(t, spec, /*type_required=*/true));
      PINGMA_RETURN_IF_ERROR(ParseAddress(t, spec));
      break;
    case Role::kFlag:
      PINGMA_RETURN_IF_ERROR(ParseAddress(t, spec));
      if (!IsBitKind(spec.kind)) {
        PINGMA_ASSIGN_OR_RETURN(const std::int64_t bit, t.Integer("bit", 0, 15));
        spec.bit = static_cast<int>(bit);
      }
      PINGMA_RETURN_IF_ERROR(t.Get("invert", false, &spec.invert));
      break;
    case Role::kCommand:
    case Role::kInterlock:
      if (spec.kind == RegisterKind::kHolding) {
        PINGMA_RETURN_IF_ERROR(ParseNumberFormat(t, spec, /*type_required=*/false));
        if (spec.registers() != 1 || spec.type == ValueType::kFloat32) {
          return Status::Invalid(t.Name("type") + " must be uint16 or int16");
        }
      }
      // A command's coils are named by start/stop/zero; its "address" is start's.
      if (!(role == Role::kCommand && spec.kind == RegisterKind::kCoil)) {
        PINGMA_RETURN_IF_ERROR(ParseAddress(t, spec));
      }
      break;
    case Role::kSignal:
      // A coil, or one bit of a holding register that the driver reads, changes and
      // writes back.
      PINGMA_RETURN_IF_ERROR(ParseAddress(t, spec));
      if (spec.kind == RegisterKind::kHolding) {
        PINGMA_ASSIGN_OR_RETURN(const std::int64_t bit, t.Integer("bit", 0, 15));
        spec.bit = static_cast<int>(bit);
      }
      PINGMA_RETURN_IF_ERROR(t.Get("invert", false, &spec.invert));
      break;
    case Role::kMessage:
      // A small code (API.md's 0..5): no scale, no word order.
      PINGMA_RETURN_IF_ERROR(ParseType(t, spec, /*required=*/false));
      if (spec.registers() != 1 || spec.type == ValueType::kFloat32) {
        return Status::Invalid(t.Name("type") + " must be uint16 or int16");
      }
      PINGMA_RETURN_IF_ERROR(t.Get("swap_bytes", false, &spec.swap_bytes));
      PINGMA_RETURN_IF_ERROR(ParseAddress(t, spec));
      break;
  }
  PINGMA_RETURN_IF_ERROR(extra(t, spec));
  return t.NoOthers();
}

Status NoExtra(TomlReader&, RegisterSpec&) {
  return Status::Ok();
}

Result<ScaleProfile> ParseProfileTable(const toml::table& root) {
  PINGMA_RETURN_IF_ERROR(TomlReader(root, "").OnlyKnown({"profile"}));
  const toml::node* node = root.get("profile");
  if (node == nullptr || node->as_table() == nullptr) {
    return Status::Invalid("profile is missing (a [profile] table)");
  }
  const toml::table& table = *node->as_table();
  TomlReader t(table, "profile");
  PINGMA_RETURN_IF_ERROR(t.OnlyKnown({"name",
                                      "capacity_kg",
                                      "negative_tolerance_kg",
                                      "response_timeout_ms",
                                      "gross_kg",
                                      "cutoff_gross_kg",
                                      "stable",
                                      "valve_open",
                                      "fill_done",
                                      "fault",
                                      "present",
                                      "overload",
                                      "command",
                                      "interlock",
                                      "heartbeat",
                                      "fault_code",
                                      "lamp_green",
                                      "lamp_amber",
                                      "lamp_red",
                                      "buzzer",
                                      "message_code"}));
  ScaleProfile p;  // every map entry absent until the file names it
  p.gross_kg = p.cutoff_gross_kg = p.stable = p.valve_open = p.fill_done = p.fault = p.present =
      p.overload = p.command = p.interlock = p.heartbeat = p.fault_code = p.lamp_green =
          p.lamp_amber = p.lamp_red = p.buzzer = p.message_code = RegisterSpec{};
  PINGMA_ASSIGN_OR_RETURN(p.name, t.String("name"));
  if (p.name.empty()) return Status::Invalid("profile.name must not be empty");
  PINGMA_ASSIGN_OR_RETURN(p.capacity_kg, t.Number("capacity_kg"));
  if (p.capacity_kg <= 0) return Status::Invalid("profile.capacity_kg must be above 0");
  if (t.Has("negative_tolerance_kg")) {
    PINGMA_ASSIGN_OR_RETURN(p.negative_tolerance_kg, t.Number("negative_tolerance_kg"));
    if (p.negative_tolerance_kg < 0) {
      return Status::Invalid("profile.negative_tolerance_kg must not be negative");
    }
  }
  if (t.Has("response_timeout_ms")) {
    PINGMA_ASSIGN_OR_RETURN(const std::int64_t ms, t.Integer("response_timeout_ms", 1, 60000));
    p.response_timeout = std::chrono::milliseconds(ms);
  }

  struct Entry {
    const char* key;
    Role role;
    bool required;
    RegisterSpec* spec;
  };
  const Entry entries[] = {
      {"gross_kg", Role::kValue, true, &p.gross_kg},
      {"cutoff_gross_kg", Role::kWritableValue, true, &p.cutoff_gross_kg},
      {"stable", Role::kFlag, false, &p.stable},
      {"valve_open", Role::kFlag, false, &p.valve_open},
      {"fill_done", Role::kFlag, false, &p.fill_done},
      {"fault", Role::kFlag, false, &p.fault},
      {"present", Role::kFlag, false, &p.present},
      {"overload", Role::kFlag, false, &p.overload},
      {"heartbeat", Role::kValue, false, &p.heartbeat},
      {"fault_code", Role::kValue, false, &p.fault_code},
      {"lamp_green", Role::kSignal, false, &p.lamp_green},
      {"lamp_amber", Role::kSignal, false, &p.lamp_amber},
      {"lamp_red", Role::kSignal, false, &p.lamp_red},
      {"buzzer", Role::kSignal, false, &p.buzzer},
      {"message_code", Role::kMessage, false, &p.message_code},
  };
  for (const Entry& e : entries) {
    t.Use(e.key);
    PINGMA_RETURN_IF_ERROR(ParseSpec(table, e.key, e.role, e.required, *e.spec, NoExtra));
  }

  t.Use("command");
  PINGMA_RETURN_IF_ERROR(ParseSpec(
      table, "command", Role::kCommand, true, p.command,
      [&p](TomlReader& c, RegisterSpec& spec) -> Status {
        const bool coil = spec.kind == RegisterKind::kCoil;
        // Register values fit the register; coil addresses fit the address space.
        const std::int64_t high = coil ? 65535 : (spec.type == ValueType::kInt16 ? 32767 : 65535);
        const std::int64_t low = (!coil && spec.type == ValueType::kInt16) ? -32768 : 0;
        PINGMA_ASSIGN_OR_RETURN(std::int64_t v, c.Integer("start", low, high));
        p.command_start = static_cast<int>(v);
        PINGMA_ASSIGN_OR_RETURN(v, c.Integer("stop", low, high));
        p.command_stop = static_cast<int>(v);
        PINGMA_ASSIGN_OR_RETURN(v, c.Integer("zero", low, high));
        p.command_zero = static_cast<int>(v);
        if (p.command_start == p.command_stop || p.command_start == p.command_zero ||
            p.command_stop == p.command_zero) {
          return Status::Invalid(c.Name("start") + ", stop and zero must differ");
        }
        if (coil) spec.address = p.command_start;
        return Status::Ok();
      }));

  t.Use("interlock");
  PINGMA_RETURN_IF_ERROR(ParseSpec(
      table, "interlock", Role::kInterlock, true, p.interlock,
      [&p](TomlReader& c, RegisterSpec& spec) -> Status {
        const bool coil = spec.kind == RegisterKind::kCoil;
        const std::int64_t high = coil ? 1 : (spec.type == ValueType::kInt16 ? 32767 : 65535);
        const std::int64_t low = (!coil && spec.type == ValueType::kInt16) ? -32768 : 0;
        PINGMA_ASSIGN_OR_RETURN(std::int64_t v, c.Integer("locked", low, high));
        p.interlock_locked = static_cast<int>(v);
        PINGMA_ASSIGN_OR_RETURN(v, c.Integer("unlocked", low, high));
        p.interlock_unlocked = static_cast<int>(v);
        if (p.interlock_locked == p.interlock_unlocked) {
          return Status::Invalid(c.Name("locked") + " and unlocked must differ");
        }
        return Status::Ok();
      }));

  PINGMA_RETURN_IF_ERROR(t.NoOthers());
  if (p.cutoff_gross_kg.present() && EncodeValue(p.cutoff_gross_kg, p.capacity_kg).ok() == false) {
    return Status::Invalid("profile.cutoff_gross_kg cannot hold the capacity " +
                           std::to_string(p.capacity_kg) + " kg in its type and scale");
  }
  PINGMA_RETURN_IF_ERROR(CheckSignalsApart(p));
  return p;
}

}  // namespace

Result<ScaleProfile> ParseProfile(std::string_view toml_text) {
  PINGMA_ASSIGN_OR_RETURN(const toml::table root, ParseToml(toml_text, "profile"));
  return ParseProfileTable(root);
}

Result<ScaleProfile> LoadProfile(const std::string& path_or_builtin_name) {
  if (path_or_builtin_name == "pingma-fill-v1") return DefaultProfile();
  std::ifstream in(path_or_builtin_name, std::ios::binary);
  if (!in) {
    return Status::NotFound("scale profile " + path_or_builtin_name +
                            ": no such file, and not a built-in profile (pingma-fill-v1)");
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::IoError("scale profile " + path_or_builtin_name + ": read failed");
  Result<ScaleProfile> profile = ParseProfile(text.str());
  if (!profile.ok()) {
    return Status(profile.status().code(),
                  path_or_builtin_name + ": " + profile.status().message());
  }
  return profile;
}

}  // namespace pingma::station
