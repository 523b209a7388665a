// The scale driver: register maps (profiles) read from TOML, value assembly, and the
// libmodbus client. See scale.h for the contract.
#include "scale.h"

#include <modbus/modbus.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <sstream>
#include <utility>

#include "pingma/common/toml_reader.h"

namespace pingma::station {

// ---- value assembly -----------------------------------------------------------------

int RegisterSpec::registers() const {
  return type == ValueType::kUint32 || type == ValueType::kInt32 || type == ValueType::kFloat32 ? 2
                                                                                                : 1;
}

namespace {

std::uint16_t SwapBytes(std::uint16_t r) {
  return static_cast<std::uint16_t>((r >> 8) | (r << 8));
}

/// The 32 bits of a two-register value, from the registers as they are on the wire.
std::uint32_t Assemble32(const RegisterSpec& spec, const std::uint16_t* wire) {
  std::uint16_t first = spec.swap_bytes ? SwapBytes(wire[0]) : wire[0];
  std::uint16_t second = spec.swap_bytes ? SwapBytes(wire[1]) : wire[1];
  if (spec.words == WordOrder::kLowFirst) std::swap(first, second);
  return (static_cast<std::uint32_t>(first) << 16) | second;
}

void Split32(const RegisterSpec& spec, std::uint32_t bits, std::uint16_t* wire) {
  std::uint16_t high = static_cast<std::uint16_t>(bits >> 16);
  std::uint16_t low = static_cast<std::uint16_t>(bits & 0xFFFFu);
  if (spec.words == WordOrder::kLowFirst) std::swap(high, low);
  wire[0] = spec.swap_bytes ? SwapBytes(high) : high;
  wire[1] = spec.swap_bytes ? SwapBytes(low) : low;
}

/// Decimal scales (0.1, 0.01, 0.001) divide by their exact inverse, so that 15000 at
/// 0.01 is 150 exactly and a reading at capacity is not a hair above it.
std::optional<double> DecimalInverse(double scale) {
  if (scale <= 0 || scale >= 1) return std::nullopt;
  const double inverse = std::round(1 / scale);
  if (std::fabs(inverse * scale - 1) > 1e-12) return std::nullopt;
  return inverse;
}

double ApplyScale(double raw, double scale) {
  if (const auto inverse = DecimalInverse(scale)) return raw / *inverse;
  return raw * scale;
}

double RemoveScale(double value, double scale) {
  if (const auto inverse = DecimalInverse(scale)) return value * *inverse;
  return value / scale;
}

}  // namespace

double DecodeValue(const RegisterSpec& spec, const std::uint16_t* wire) {
  double raw = 0;
  switch (spec.type) {
    case ValueType::kUint16:
      raw = spec.swap_bytes ? SwapBytes(wire[0]) : wire[0];
      break;
    case ValueType::kInt16:
      raw = static_cast<std::int16_t>(spec.swap_bytes ? SwapBytes(wire[0]) : wire[0]);
      break;
    case ValueType::kUint32:
      raw = Assemble32(spec, wire);
      break;
    case ValueType::kInt32:
      raw = static_cast<std::int32_t>(Assemble32(spec, wire));
      break;
    case ValueType::kFloat32: {
      // Not modbus_get_float_*: libmodbus 3.1.6 names those swapped on little-endian.
      const std::uint32_t bits = Assemble32(spec, wire);
      float f = 0;
      std::memcpy(&f, &bits, sizeof f);
      raw = f;
      break;
    }
  }
  return ApplyScale(raw, spec.scale);
}

Result<std::vector<std::uint16_t>> EncodeValue(const RegisterSpec& spec, double value) {
  if (!std::isfinite(value)) return Status::Invalid("cannot write a value that is not finite");
  std::vector<std::uint16_t> wire(static_cast<std::size_t>(spec.registers()));
  const double raw = RemoveScale(value, spec.scale);
  if (spec.type == ValueType::kFloat32) {
    if (std::fabs(raw) > std::numeric_limits<float>::max()) {
      return Status::Invalid("value " + std::to_string(value) + " does not fit a float32");
    }
    const float f = static_cast<float>(raw);
    std::uint32_t bits = 0;
    std::memcpy(&bits, &f, sizeof bits);
    Split32(spec, bits, wire.data());
    return wire;
  }
  const double whole = std::round(raw);
  double low = 0, high = 0;
  switch (spec.type) {
    case ValueType::kUint16:
      high = 65535;
      break;
    case ValueType::kInt16:
      low = -32768, high = 32767;
      break;
    case ValueType::kUint32:
      high = 4294967295.0;
      break;
    case ValueType::kInt32:
      low = -2147483648.0, high = 2147483647.0;
      break;
    case ValueType::kFloat32:
      break;
  }
  if (whole < low || whole > high) {
    return Status::Invalid("value " + std::to_string(value) + " does not fit the register type");
  }
  if (spec.registers() == 1) {
    const auto bits = static_cast<std::uint16_t>(static_cast<std::int32_t>(whole) & 0xFFFF);
    wire[0] = spec.swap_bytes ? SwapBytes(bits) : bits;
  } else {
    const auto bits = static_cast<std::uint32_t>(static_cast<std::int64_t>(whole) & 0xFFFFFFFF);
    Split32(spec, bits, wire.data());
  }
  return wire;
}

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

// ---- profiles -----------------------------------------------------------------------

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

bool ScaleSignals::operator==(const ScaleSignals& other) const {
  return green == other.green && amber == other.amber && red == other.red &&
         buzzer == other.buzzer && message == other.message;
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

const char* KindName(RegisterKind kind) {
  switch (kind) {
    case RegisterKind::kHolding:
      return "holding register";
    case RegisterKind::kInput:
      return "input register";
    case RegisterKind::kCoil:
      return "coil";
    case RegisterKind::kDiscreteInput:
      return "discrete input";
  }
  return "register";
}

bool IsBitKind(RegisterKind kind) {
  return kind == RegisterKind::kCoil || kind == RegisterKind::kDiscreteInput;
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

// ---- the libmodbus driver -----------------------------------------------------------

namespace {

/// Owns a modbus_t: closes the link and frees the context together.
struct ModbusDeleter {
  void operator()(modbus_t* ctx) const {
    modbus_close(ctx);
    modbus_free(ctx);
  }
};
using ModbusContext = std::unique_ptr<modbus_t, ModbusDeleter>;

bool IsModbusException(int error) {
  return error >= EMBXILFUN && error <= EMBXGTAR;
}

/// One Read()'s registers and bits, so flags sharing a status register cost one call.
struct ReadCache {
  struct Entry {
    RegisterKind kind;
    int address;
    std::uint16_t value;
  };
  std::vector<Entry> entries;
  const std::uint16_t* Find(RegisterKind kind, int address) const {
    for (const Entry& e : entries) {
      if (e.kind == kind && e.address == address) return &e.value;
    }
    return nullptr;
  }
};

/// The libmodbus Scale. One thread at a time; owns its modbus_t and closes it on
/// Disconnect or destruction.
class ModbusScale final : public Scale {
 public:
  ModbusScale(ScaleEndpoint endpoint, ScaleProfile profile)
      : endpoint_(std::move(endpoint)),
        profile_(std::move(profile)),
        // A parsed profile has passed this already; one built in code is checked here.
        signals_apart_(CheckSignalsApart(profile_)) {}

  Status Connect() override {
    Disconnect();
    errno = 0;
    modbus_t* raw = nullptr;
    if (endpoint_.transport == ScaleEndpoint::Transport::kTcp) {
      // The _pi variant resolves host names as well as addresses.
      raw = modbus_new_tcp_pi(endpoint_.host.c_str(), std::to_string(endpoint_.port).c_str());
    } else {
      raw = modbus_new_rtu(endpoint_.device.c_str(), endpoint_.baud, endpoint_.parity,
                           endpoint_.data_bits, endpoint_.stop_bits);
    }
    if (raw == nullptr) {
      return Status::Invalid(Describe() + ": " + modbus_strerror(errno));
    }
    ModbusContext ctx(raw);
    const auto ms = profile_.response_timeout.count();
    const auto sec = static_cast<std::uint32_t>(ms / 1000);
    const auto usec = static_cast<std::uint32_t>((ms % 1000) * 1000);
    if (modbus_set_slave(ctx.get(), endpoint_.unit) != 0 ||
        modbus_set_response_timeout(ctx.get(), sec, usec) != 0 ||
        // Between two bytes of one answer: an RTU frame that stalls this long is broken.
        modbus_set_byte_timeout(ctx.get(), sec, usec) != 0) {
      return Status::Invalid(Describe() + ": " + modbus_strerror(errno));
    }
    if (modbus_connect(ctx.get()) != 0) {
      return Status::Unavailable("cannot connect to " + Describe() + ": " + modbus_strerror(errno));
    }
    ctx_ = std::move(ctx);
    // The valve must be locked before the scale counts as ours: a previous session may
    // have left it unlocked when its link died.
    const Status locked = WriteInterlock(false);
    if (!locked.ok()) {
      Disconnect();
      return Status(locked.code(), "connected to " + Describe() +
                                       " but could not lock the interlock: " + locked.message());
    }
    return Status::Ok();
  }

  void Disconnect() override { ctx_.reset(); }

  bool connected() const override { return ctx_ != nullptr; }

  Result<ScaleReading> Read() override {
    ReadCache cache;
    for (RegisterKind kind : {RegisterKind::kHolding, RegisterKind::kInput}) {
      PINGMA_RETURN_IF_ERROR(ReadSpan(kind, cache));
    }
    ScaleReading reading;
    PINGMA_ASSIGN_OR_RETURN(double gross, ReadValue(profile_.gross_kg, cache));
    PINGMA_RETURN_IF_ERROR(CheckGross(profile_, gross));
    reading.gross_kg = gross;
    const std::pair<const RegisterSpec*, bool*> flags[] = {
        {&profile_.stable, &reading.stable},       {&profile_.valve_open, &reading.valve_open},
        {&profile_.fill_done, &reading.fill_done}, {&profile_.fault, &reading.fault},
        {&profile_.present, &reading.present},     {&profile_.overload, &reading.overload},
    };
    for (const auto& [spec, out] : flags) {
      if (!spec->present()) continue;
      PINGMA_ASSIGN_OR_RETURN(*out, ReadFlag(*spec, cache));
    }
    const std::pair<const RegisterSpec*, std::optional<std::uint32_t>*> counters[] = {
        {&profile_.heartbeat, &reading.heartbeat}, {&profile_.fault_code, &reading.fault_code}};
    for (const auto& [spec, out] : counters) {
      if (!spec->present()) continue;
      PINGMA_ASSIGN_OR_RETURN(const double v, ReadValue(*spec, cache));
      *out = std::isfinite(v) && v >= 0 && v <= 4294967295.0 ? static_cast<std::uint32_t>(v) : 0;
    }
    return reading;
  }

  Status WriteCutoff(double gross_kg) override {
    if (!std::isfinite(gross_kg) || gross_kg < 0 || gross_kg > profile_.capacity_kg) {
      return Status::Invalid("cutoff " + std::to_string(gross_kg) + " kg is outside 0.." +
                             std::to_string(profile_.capacity_kg) + " kg");
    }
    PINGMA_ASSIGN_OR_RETURN(std::vector<std::uint16_t> wire,
                            EncodeValue(profile_.cutoff_gross_kg, gross_kg));
    return WriteRegisters(profile_.cutoff_gross_kg.address, wire, "cutoff");
  }

  Status SetInterlock(bool unlocked) override { return WriteInterlock(unlocked); }

  Status Send(ScaleCommand command) override {
    const int value = command == ScaleCommand::kStart  ? profile_.command_start
                      : command == ScaleCommand::kStop ? profile_.command_stop
                                                       : profile_.command_zero;
    if (profile_.command.kind == RegisterKind::kCoil) return WriteCoil(value, true, "command");
    PINGMA_ASSIGN_OR_RETURN(std::vector<std::uint16_t> wire,
                            EncodeValue(CommandSpec(profile_.command), value));
    return WriteRegisters(profile_.command.address, wire, "command");
  }

  bool has_signals() const override {
    for (const RegisterSpec* spec : {&profile_.lamp_green, &profile_.lamp_amber, &profile_.lamp_red,
                                     &profile_.buzzer, &profile_.message_code}) {
      if (spec->present()) return true;
    }
    return false;
  }

  // Every mapped signal is written even when one is refused (a lamp the indicator does
  // not have must not keep the others dark); a lost link ends it, since each write
  // after would only wait out its own deadline.
  Status WriteSignals(const ScaleSignals& signals) override {
    if (!has_signals()) return Status::Ok();
    if (!signals_apart_.ok()) return signals_apart_;  // never a write near the interlock
    if (!ctx_) return NotConnected();
    struct Output {
      const char* name;
      const RegisterSpec& spec;
      bool on;
    };
    const Output outputs[] = {{"lamp_green", profile_.lamp_green, signals.green},
                              {"lamp_amber", profile_.lamp_amber, signals.amber},
                              {"lamp_red", profile_.lamp_red, signals.red},
                              {"buzzer", profile_.buzzer, signals.buzzer}};
    std::vector<Status> failed;
    // False when the link is gone and nothing more can be written.
    auto keep_going = [&failed](Status s) {
      if (s.ok()) return true;
      const bool lost = s.code() == StatusCode::kUnavailable;
      failed.push_back(std::move(s));
      return !lost;
    };
    bool link = true;
    // Coils one by one with function 05: the BDE-2007's manual lists 05, not 15, for its
    // coils, and a refused coil is then named alone.
    for (const Output& o : outputs) {
      if (!link) break;
      if (!o.spec.present() || o.spec.kind != RegisterKind::kCoil) continue;
      link = keep_going(WriteCoil(o.spec.address, o.on != o.spec.invert, o.name));
    }
    // Bits of holding registers: one read-modify-write per register for all the bits it
    // carries, so a register holding every lamp costs two round trips, not eight.
    std::vector<int> registers_done;
    for (const Output& o : outputs) {
      if (!link) break;
      if (!o.spec.present() || o.spec.kind != RegisterKind::kHolding) continue;
      const int address = o.spec.address;
      if (std::find(registers_done.begin(), registers_done.end(), address) !=
          registers_done.end()) {
        continue;
      }
      registers_done.push_back(address);
      std::uint16_t set = 0, clear = 0;
      std::string names;
      for (const Output& b : outputs) {
        if (!b.spec.present() || b.spec.kind != RegisterKind::kHolding || b.spec.address != address)
          continue;
        const auto mask = static_cast<std::uint16_t>(1u << b.spec.bit);
        if (b.on != b.spec.invert) {
          set = static_cast<std::uint16_t>(set | mask);
        } else {
          clear = static_cast<std::uint16_t>(clear | mask);
        }
        names += (names.empty() ? "" : ", ") + std::string(b.name);
      }
      link = keep_going(WriteBits(address, set, clear, names));
    }
    if (link && profile_.message_code.present()) {
      Result<std::vector<std::uint16_t>> wire =
          EncodeValue(CommandSpec(profile_.message_code), static_cast<int>(signals.message));
      keep_going(wire.ok() ? WriteRegisters(profile_.message_code.address, *wire, "message_code")
                           : wire.status());
    }
    if (failed.empty()) return Status::Ok();
    if (failed.size() == 1) return failed.front();
    // The link's loss, when it happened, is the code the caller acts on.
    std::string message;
    for (const Status& f : failed) message += (message.empty() ? "" : "; ") + f.message();
    return Status(failed.back().code(), message);
  }

  std::string Describe() const override {
    std::ostringstream out;
    if (endpoint_.transport == ScaleEndpoint::Transport::kTcp) {
      out << "tcp " << endpoint_.host << ":" << endpoint_.port;
    } else {
      out << "rtu " << endpoint_.device << " " << endpoint_.baud << " " << endpoint_.data_bits
          << endpoint_.parity << endpoint_.stop_bits;
    }
    out << " unit " << endpoint_.unit;
    return out.str();
  }

 private:
  /// Command and interlock registers carry plain integers: no scale.
  static RegisterSpec CommandSpec(RegisterSpec spec) {
    spec.scale = 1;
    return spec;
  }

  /// Turns the errno of a failed libmodbus call into a Status. A Modbus exception is
  /// the scale refusing one request (kInvalid, the link is fine); anything else —
  /// timeout, reset, broken pipe, a garbled frame — means the link cannot be trusted,
  /// so it is closed and the caller reconnects.
  Status Failure(const std::string& what) {
    const int error = errno;
    const std::string message = what + " on " + Describe() + ": " + modbus_strerror(error);
    if (IsModbusException(error)) return Status::Invalid("modbus exception: " + message);
    Disconnect();
    return Status::Unavailable(message);
  }

  Status NotConnected() const { return Status::Unavailable(Describe() + " is not connected"); }

  Result<std::uint16_t> ReadWord(RegisterKind kind, int address, ReadCache& cache) {
    if (const std::uint16_t* hit = cache.Find(kind, address)) return *hit;
    if (!ctx_) return NotConnected();
    std::uint16_t value = 0;
    int rc = -1;
    errno = 0;
    switch (kind) {
      case RegisterKind::kHolding:
        rc = modbus_read_registers(ctx_.get(), address, 1, &value);
        break;
      case RegisterKind::kInput:
        rc = modbus_read_input_registers(ctx_.get(), address, 1, &value);
        break;
      case RegisterKind::kCoil:
      case RegisterKind::kDiscreteInput: {
        std::uint8_t bit = 0;
        rc = kind == RegisterKind::kCoil ? modbus_read_bits(ctx_.get(), address, 1, &bit)
                                         : modbus_read_input_bits(ctx_.get(), address, 1, &bit);
        value = bit != 0 ? 1 : 0;
        break;
      }
    }
    if (rc != 1) {
      return Failure(std::string("reading ") + KindName(kind) + " " + std::to_string(address));
    }
    cache.entries.push_back({kind, address, value});
    return value;
  }

  // Reads every register of `kind` that the profile reads, in one request, when they
  // lie within kMaxSpan: each request is a round trip (about 10 ms on a 9600-baud
  // line), and a reading of gross, status, heartbeat and fault code took four. A
  // scale that refuses the span (a gap it does not map) is read value by value from
  // then on.
  Status ReadSpan(RegisterKind kind, ReadCache& cache) {
    static constexpr int kMaxSpan = 32;
    if (!ctx_) return NotConnected();
    if (span_refused_[kind == RegisterKind::kInput]) return Status::Ok();
    int lo = std::numeric_limits<int>::max(), hi = -1;
    for (const RegisterSpec* spec :
         {&profile_.gross_kg, &profile_.stable, &profile_.valve_open, &profile_.fill_done,
          &profile_.fault, &profile_.present, &profile_.overload, &profile_.heartbeat,
          &profile_.fault_code}) {
      if (!spec->present() || spec->kind != kind) continue;
      lo = std::min(lo, spec->address);
      hi = std::max(hi, spec->address + spec->registers() - 1);
    }
    if (hi < 0 || hi == lo || hi - lo + 1 > kMaxSpan) return Status::Ok();
    std::uint16_t wire[kMaxSpan];
    const int n = hi - lo + 1;
    errno = 0;
    const int rc = kind == RegisterKind::kInput
                       ? modbus_read_input_registers(ctx_.get(), lo, n, wire)
                       : modbus_read_registers(ctx_.get(), lo, n, wire);
    if (rc != n) {
      if (!IsModbusException(errno)) {
        return Failure(std::string("reading ") + KindName(kind) + "s " + std::to_string(lo) + ".." +
                       std::to_string(hi));
      }
      span_refused_[kind == RegisterKind::kInput] = true;
      return Status::Ok();
    }
    for (int i = 0; i < n; ++i) cache.entries.push_back({kind, lo + i, wire[i]});
    return Status::Ok();
  }

  Result<double> ReadValue(const RegisterSpec& spec, ReadCache& cache) {
    if (!ctx_) return NotConnected();
    std::uint16_t wire[2] = {0, 0};
    const int n = spec.registers();
    const std::uint16_t* first = cache.Find(spec.kind, spec.address);
    const std::uint16_t* second = n == 2 ? cache.Find(spec.kind, spec.address + 1) : first;
    if (first && second) {  // both halves came in the same span, from one sample
      wire[0] = *first;
      wire[1] = *second;
      return DecodeValue(spec, wire);
    }
    errno = 0;
    // Both halves of a 32-bit value in one request, so they come from the same sample.
    const int rc = spec.kind == RegisterKind::kInput
                       ? modbus_read_input_registers(ctx_.get(), spec.address, n, wire)
                       : modbus_read_registers(ctx_.get(), spec.address, n, wire);
    if (rc != n) {
      return Failure(std::string("reading ") + KindName(spec.kind) + " " +
                     std::to_string(spec.address));
    }
    for (int i = 0; i < n; ++i) cache.entries.push_back({spec.kind, spec.address + i, wire[i]});
    return DecodeValue(spec, wire);
  }

  Result<bool> ReadFlag(const RegisterSpec& spec, ReadCache& cache) {
    PINGMA_ASSIGN_OR_RETURN(std::uint16_t word, ReadWord(spec.kind, spec.address, cache));
    const bool set = IsBitKind(spec.kind) ? word != 0 : ((word >> spec.bit) & 1u) != 0;
    return set != spec.invert;
  }

  Status WriteRegisters(int address, const std::vector<std::uint16_t>& wire, const char* what) {
    if (!ctx_) return NotConnected();
    errno = 0;
    // One register: function 6; two: function 16 in one request, never two halves.
    const int rc = wire.size() == 1
                       ? modbus_write_register(ctx_.get(), address, wire[0])
                       : modbus_write_registers(ctx_.get(), address, static_cast<int>(wire.size()),
                                                wire.data());
    const int expected = wire.size() == 1 ? 1 : static_cast<int>(wire.size());
    if (rc != expected) {
      return Failure(std::string("writing ") + what + " to holding register " +
                     std::to_string(address));
    }
    return Status::Ok();
  }

  Status WriteCoil(int address, bool on, const char* what) {
    if (!ctx_) return NotConnected();
    errno = 0;
    if (modbus_write_bit(ctx_.get(), address, on ? 1 : 0) != 1) {
      return Failure(std::string("writing ") + what + " to coil " + std::to_string(address));
    }
    return Status::Ok();
  }

  /// Sets the `set` bits and clears the `clear` bits of one holding register, leaving the
  /// others as the scale has them: read, change, write back (function 03 then 06). Not
  /// atomic against the indicator changing the register between the two; function 22
  /// (mask write) would be, but few indicators answer it. Nothing is written when the
  /// bits already read as wanted.
  Status WriteBits(int address, std::uint16_t set, std::uint16_t clear, const std::string& what) {
    if (!ctx_) return NotConnected();
    std::uint16_t before = 0;
    errno = 0;
    if (modbus_read_registers(ctx_.get(), address, 1, &before) != 1) {
      return Failure("reading " + what + " from holding register " + std::to_string(address));
    }
    const auto after = static_cast<std::uint16_t>((before & ~clear) | set);
    if (after == before) return Status::Ok();
    return WriteRegisters(address, {after}, what.c_str());
  }

  Status WriteInterlock(bool unlocked) {
    const RegisterSpec& spec = profile_.interlock;
    const int value = unlocked ? profile_.interlock_unlocked : profile_.interlock_locked;
    if (spec.kind == RegisterKind::kCoil) {
      PINGMA_RETURN_IF_ERROR(WriteCoil(spec.address, value != 0, "interlock"));
    } else {
      PINGMA_ASSIGN_OR_RETURN(std::vector<std::uint16_t> wire,
                              EncodeValue(CommandSpec(spec), value));
      PINGMA_RETURN_IF_ERROR(WriteRegisters(spec.address, wire, "interlock"));
    }
    // Read back: a write the scale acknowledged but did not keep must not pass.
    ReadCache cache;
    PINGMA_ASSIGN_OR_RETURN(std::uint16_t back, ReadWord(spec.kind, spec.address, cache));
    const int got = spec.kind == RegisterKind::kCoil
                        ? back
                        : static_cast<int>(DecodeValue(CommandSpec(spec), &back));
    if (got != value) {
      return Status::Invalid("interlock on " + Describe() + " reads " + std::to_string(got) +
                             " after writing " + std::to_string(value));
    }
    return Status::Ok();
  }

  ScaleEndpoint endpoint_;
  ScaleProfile profile_;
  ModbusContext ctx_;
  Status signals_apart_;                   ///< why the profile's signals may not be written, or OK
  bool span_refused_[2] = {false, false};  // holding, input: the scale refused a span read
};

}  // namespace

std::unique_ptr<Scale> MakeModbusScale(const ScaleEndpoint& endpoint, const ScaleProfile& profile) {
  return std::make_unique<ModbusScale>(endpoint, profile);
}

}  // namespace pingma::station
