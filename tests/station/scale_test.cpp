// The scale driver: value assembly and profile parsing as tables, then the libmodbus
// driver against a Modbus server this project did not write (pymodbus 3.0, started as
// /usr/bin/python3 tests/station/pymodbus_server.py), over TCP on 127.0.0.1 and over
// Modbus RTU through a socat pty pair, configured from the shipped real indicator's
// map (station/profiles/bde-2007.toml). No timings are asserted: waits have a cap
// only so that a broken peer fails the test instead of hanging it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "scale.h"

extern char** environ;

namespace pingma::station {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr std::chrono::seconds kCap{20};  // a hang guard, not a timing

const std::string kSourceDir = PINGMA_SOURCE_DIR;
const std::string kBdeProfile = kSourceDir + "/station/profiles/bde-2007.toml";
const std::string kDefaultProfileFile = kSourceDir + "/station/profiles/pingma-fill-v1.toml";
const std::string kServerScript = kSourceDir + "/tests/station/pymodbus_server.py";

// ---- value assembly ----------------------------------------------------------------

RegisterSpec Spec(ValueType type, WordOrder words, bool swap, double scale) {
  RegisterSpec spec;
  spec.address = 0;
  spec.type = type;
  spec.words = words;
  spec.swap_bytes = swap;
  spec.scale = scale;
  return spec;
}

struct CodecRow {
  const char* name;
  ValueType type;
  WordOrder words;
  bool swap;
  double scale;
  std::vector<std::uint16_t> wire;  // as on the wire, worked out by hand
  double value;
};

constexpr auto H = WordOrder::kHighFirst;
constexpr auto L = WordOrder::kLowFirst;

// float32 12.5 is 0x41480000; -2.25 is 0xC0100000. int32 123456 is 0x0001E240, -2 is
// 0xFFFFFFFE. uint32 3000000000 is 0xB2D05E00. int16 -300 is 0xFED4.
const CodecRow kCodecRows[] = {
    {"uint16", ValueType::kUint16, H, false, 1, {0x1234}, 4660},
    {"uint16 max", ValueType::kUint16, H, false, 1, {0xFFFF}, 65535},
    {"uint16 swapped", ValueType::kUint16, H, true, 1, {0x3412}, 4660},
    {"uint16 scale 0.01", ValueType::kUint16, H, false, 0.01, {0x3A98}, 150},
    {"int16 negative", ValueType::kInt16, H, false, 1, {0xFED4}, -300},
    {"int16 negative swapped", ValueType::kInt16, H, true, 1, {0xD4FE}, -300},
    {"int16 scale 0.1", ValueType::kInt16, H, false, 0.1, {0xFED4}, -30},
    {"int16 words ignored", ValueType::kInt16, L, false, 1, {0xFED4}, -300},
    {"uint32 high-first", ValueType::kUint32, H, false, 1, {0xB2D0, 0x5E00}, 3000000000.0},
    {"uint32 low-first", ValueType::kUint32, L, false, 1, {0x5E00, 0xB2D0}, 3000000000.0},
    {"uint32 high-first swapped", ValueType::kUint32, H, true, 1, {0xD0B2, 0x005E}, 3000000000.0},
    {"uint32 low-first swapped", ValueType::kUint32, L, true, 1, {0x005E, 0xD0B2}, 3000000000.0},
    {"uint32 scale 2", ValueType::kUint32, H, false, 2, {0x0000, 0x0010}, 32},
    {"int32 high-first", ValueType::kInt32, H, false, 1, {0x0001, 0xE240}, 123456},
    {"int32 low-first", ValueType::kInt32, L, false, 1, {0xE240, 0x0001}, 123456},
    {"int32 high-first swapped", ValueType::kInt32, H, true, 1, {0x0100, 0x40E2}, 123456},
    {"int32 low-first swapped", ValueType::kInt32, L, true, 1, {0x40E2, 0x0100}, 123456},
    {"int32 negative", ValueType::kInt32, H, false, 1, {0xFFFF, 0xFFFE}, -2},
    {"int32 negative low-first", ValueType::kInt32, L, false, 1, {0xFFFE, 0xFFFF}, -2},
    {"int32 scale 0.001", ValueType::kInt32, H, false, 0.001, {0x0001, 0xE240}, 123.456},
    {"int32 scale 0.01 negative", ValueType::kInt32, H, false, 0.01, {0xFFFF, 0xFFCE}, -0.5},
    {"float32 high-first", ValueType::kFloat32, H, false, 1, {0x4148, 0x0000}, 12.5},
    {"float32 low-first", ValueType::kFloat32, L, false, 1, {0x0000, 0x4148}, 12.5},
    {"float32 high-first swapped", ValueType::kFloat32, H, true, 1, {0x4841, 0x0000}, 12.5},
    {"float32 low-first swapped", ValueType::kFloat32, L, true, 1, {0x0000, 0x4841}, 12.5},
    {"float32 negative", ValueType::kFloat32, H, false, 1, {0xC010, 0x0000}, -2.25},
    {"float32 scale 10", ValueType::kFloat32, L, true, 10, {0x0000, 0x4841}, 125},
};

TEST_CASE("value assembly: every type, word order, byte swap and scale, both ways") {
  for (const CodecRow& row : kCodecRows) {
    CAPTURE(row.name);
    const RegisterSpec spec = Spec(row.type, row.words, row.swap, row.scale);
    REQUIRE(static_cast<std::size_t>(spec.registers()) == row.wire.size());
    CHECK(DecodeValue(spec, row.wire.data()) == doctest::Approx(row.value).epsilon(1e-12));
    Result<std::vector<std::uint16_t>> encoded = EncodeValue(spec, row.value);
    REQUIRE_MESSAGE(encoded.ok(), encoded.status().ToString());
    CHECK(*encoded == row.wire);
  }
}

TEST_CASE("value assembly: decimal scales give exact decimals at the boundaries") {
  const RegisterSpec spec = Spec(ValueType::kInt32, H, false, 0.01);
  const std::uint16_t capacity[] = {0x0000, 0x3A98};  // 15000
  CHECK(DecodeValue(spec, capacity) == 150.0);
  const std::uint16_t minus_half[] = {0xFFFF, 0xFFCE};  // -50
  CHECK(DecodeValue(spec, minus_half) == -0.5);
}

TEST_CASE("value assembly: values that do not fit their register are refused") {
  struct Row {
    const char* name;
    RegisterSpec spec;
    double value;
  };
  const Row rows[] = {
      {"uint16 negative", Spec(ValueType::kUint16, H, false, 1), -1},
      {"uint16 over", Spec(ValueType::kUint16, H, false, 1), 65536},
      {"int16 over", Spec(ValueType::kInt16, H, false, 1), 32768},
      {"int16 under", Spec(ValueType::kInt16, H, false, 1), -32769},
      {"int32 over after scale", Spec(ValueType::kInt32, H, false, 0.001), 2147484.0},
      {"uint32 negative", Spec(ValueType::kUint32, H, false, 1), -1},
      {"NaN", Spec(ValueType::kFloat32, H, false, 1), std::nan("")},
      {"infinity", Spec(ValueType::kInt32, H, false, 1), HUGE_VAL},
      {"float32 over", Spec(ValueType::kFloat32, H, false, 1), 1e39},
  };
  for (const Row& row : rows) {
    CAPTURE(row.name);
    CHECK(EncodeValue(row.spec, row.value).status().code() == StatusCode::kInvalid);
  }
  // The edges themselves fit.
  CHECK(EncodeValue(Spec(ValueType::kInt16, H, false, 1), -32768).ok());
  CHECK(EncodeValue(Spec(ValueType::kInt32, H, false, 0.001), 2147483.647).ok());
}

// ---- reading validation --------------------------------------------------------------

TEST_CASE("reading validation: at its boundaries") {
  ScaleProfile p = DefaultProfile();
  p.capacity_kg = 150;
  p.negative_tolerance_kg = 0.5;
  struct Row {
    const char* name;
    double kg;
    bool ok;
  };
  const Row rows[] = {
      {"exactly -tolerance", -0.5, true},
      {"just below -tolerance", std::nextafter(-0.5, -1.0), false},
      {"well below", -3, false},
      {"zero", 0, true},
      {"exactly capacity", 150, true},
      {"just above capacity", std::nextafter(150.0, 200.0), false},
      {"NaN", std::numeric_limits<double>::quiet_NaN(), false},
      {"+infinity", HUGE_VAL, false},
      {"-infinity", -HUGE_VAL, false},
  };
  for (const Row& row : rows) {
    CAPTURE(row.name);
    const Status s = CheckGross(p, row.kg);
    CHECK(s.ok() == row.ok);
    if (!row.ok) {
      CHECK(s.code() == StatusCode::kInvalid);
      CHECK(s.message().find("fault, not a reading") != std::string::npos);
    }
  }
}

// ---- profiles -------------------------------------------------------------------------

bool SameSpec(const RegisterSpec& a, const RegisterSpec& b) {
  return a.kind == b.kind && a.address == b.address && a.type == b.type && a.words == b.words &&
         a.swap_bytes == b.swap_bytes && a.scale == b.scale && a.bit == b.bit &&
         a.invert == b.invert;
}

TEST_CASE("profiles: the shipped pingma-fill-v1 file is the built-in default") {
  Result<ScaleProfile> file = LoadProfile(kDefaultProfileFile);
  REQUIRE_MESSAGE(file.ok(), file.status().ToString());
  Result<ScaleProfile> builtin = LoadProfile("pingma-fill-v1");
  REQUIRE(builtin.ok());
  const ScaleProfile& a = *file;
  const ScaleProfile& b = *builtin;
  CHECK(a.name == b.name);
  CHECK(SameSpec(a.gross_kg, b.gross_kg));
  CHECK(SameSpec(a.cutoff_gross_kg, b.cutoff_gross_kg));
  CHECK(SameSpec(a.stable, b.stable));
  CHECK(SameSpec(a.valve_open, b.valve_open));
  CHECK(SameSpec(a.fill_done, b.fill_done));
  CHECK(SameSpec(a.fault, b.fault));
  CHECK(SameSpec(a.present, b.present));
  CHECK(SameSpec(a.overload, b.overload));
  CHECK(SameSpec(a.command, b.command));
  CHECK(SameSpec(a.interlock, b.interlock));
  CHECK(SameSpec(a.heartbeat, b.heartbeat));
  CHECK(SameSpec(a.fault_code, b.fault_code));
  CHECK(SameSpec(a.lamp_green, b.lamp_green));
  CHECK(SameSpec(a.lamp_amber, b.lamp_amber));
  CHECK(SameSpec(a.lamp_red, b.lamp_red));
  CHECK(SameSpec(a.buzzer, b.buzzer));
  CHECK(SameSpec(a.message_code, b.message_code));
  CHECK(a.command_start == 1);
  CHECK(a.command_stop == 2);
  CHECK(a.command_zero == 3);
  CHECK(a.interlock_locked == 0);
  CHECK(a.interlock_unlocked == 1);
  CHECK(a.capacity_kg == b.capacity_kg);
  CHECK(a.negative_tolerance_kg == b.negative_tolerance_kg);
  CHECK(a.response_timeout == b.response_timeout);
  CHECK(b.gross_kg.type == ValueType::kFloat32);
  CHECK(b.gross_kg.words == WordOrder::kHighFirst);
  CHECK(b.fault.bit == 3);
  // API.md "Optional signals": coils 0-3, register 9.
  const std::pair<const RegisterSpec*, int> coils[] = {
      {&b.lamp_green, 0}, {&b.lamp_amber, 1}, {&b.lamp_red, 2}, {&b.buzzer, 3}};
  for (const auto& [spec, address] : coils) {
    CAPTURE(address);
    CHECK(spec->kind == RegisterKind::kCoil);
    CHECK(spec->address == address);
    CHECK_FALSE(spec->invert);
  }
  CHECK(b.message_code.kind == RegisterKind::kHolding);
  CHECK(b.message_code.address == 9);
  CHECK(b.message_code.type == ValueType::kUint16);
}

TEST_CASE("profiles: the shipped BDE-2007 map") {
  Result<ScaleProfile> p = LoadProfile(kBdeProfile);
  REQUIRE_MESSAGE(p.ok(), p.status().ToString());
  CHECK(p->name == "bde-2007");
  CHECK(p->gross_kg.kind == RegisterKind::kInput);
  CHECK(p->gross_kg.address == 2);
  CHECK(p->gross_kg.type == ValueType::kInt32);
  CHECK(p->gross_kg.scale == 0.01);
  CHECK(p->cutoff_gross_kg.kind == RegisterKind::kHolding);
  CHECK(p->cutoff_gross_kg.address == 0);
  CHECK(p->stable.kind == RegisterKind::kDiscreteInput);
  CHECK(p->stable.address == 1);
  CHECK(p->stable.invert);
  CHECK(p->fill_done.address == 54);
  CHECK_FALSE(p->present.present());
  CHECK_FALSE(p->fault.present());
  CHECK_FALSE(p->heartbeat.present());
  CHECK(p->command.kind == RegisterKind::kCoil);
  CHECK(p->command_start == 50);
  CHECK(p->command_stop == 51);
  CHECK(p->command_zero == 0);
  CHECK(p->interlock.kind == RegisterKind::kCoil);
  CHECK(p->interlock.address == 63);
  // The site's relays beside the interlock's; the indicator has no message register.
  CHECK(p->buzzer.kind == RegisterKind::kCoil);
  CHECK(p->buzzer.address == 59);
  CHECK(p->lamp_green.address == 60);
  CHECK(p->lamp_amber.address == 61);
  CHECK(p->lamp_red.address == 62);
  CHECK(p->lamp_red.kind == RegisterKind::kCoil);
  CHECK_FALSE(p->message_code.present());
}

/// A small good profile; each error row below changes one thing in it.
const char* const kGoodProfile = R"(
[profile]
name = "t"
capacity_kg = 100
negative_tolerance_kg = 0.25
response_timeout_ms = 300
[profile.gross_kg]
kind = "input"
address = 10
type = "int32"
words = "low-first"
swap_bytes = true
scale = 0.001
[profile.cutoff_gross_kg]
kind = "holding"
address = 20
type = "float32"
[profile.stable]
kind = "input"
address = 12
bit = 15
[profile.fill_done]
kind = "discrete"
address = 3
invert = true
[profile.command]
kind = "holding"
address = 30
type = "int16"
start = -1
stop = 2
zero = 3
[profile.interlock]
kind = "coil"
address = 7
locked = 1
unlocked = 0
[profile.heartbeat]
kind = "holding"
address = 31
type = "uint32"
)";

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, "test bug: no ", from);
  return text.replace(at, from.size(), to);
}

TEST_CASE("profiles: a good TOML profile") {
  Result<ScaleProfile> p = ParseProfile(kGoodProfile);
  REQUIRE_MESSAGE(p.ok(), p.status().ToString());
  CHECK(p->name == "t");
  CHECK(p->capacity_kg == 100);
  CHECK(p->negative_tolerance_kg == 0.25);
  CHECK(p->response_timeout == 300ms);
  CHECK(p->gross_kg.kind == RegisterKind::kInput);
  CHECK(p->gross_kg.address == 10);
  CHECK(p->gross_kg.type == ValueType::kInt32);
  CHECK(p->gross_kg.words == WordOrder::kLowFirst);
  CHECK(p->gross_kg.swap_bytes);
  CHECK(p->gross_kg.scale == 0.001);
  CHECK(p->cutoff_gross_kg.words == WordOrder::kHighFirst);  // the default
  CHECK(p->stable.bit == 15);
  CHECK(p->fill_done.kind == RegisterKind::kDiscreteInput);
  CHECK(p->fill_done.invert);
  CHECK_FALSE(p->valve_open.present());  // not in the file: not mapped
  CHECK(p->command.type == ValueType::kInt16);
  CHECK(p->command_start == -1);
  CHECK(p->interlock.kind == RegisterKind::kCoil);
  CHECK(p->interlock_locked == 1);
  CHECK(p->heartbeat.type == ValueType::kUint32);
  CHECK_FALSE(p->fault_code.present());

  // Optional keys left out take their defaults.
  std::string minimal = Replace(kGoodProfile, "negative_tolerance_kg = 0.25\n", "");
  minimal = Replace(minimal, "response_timeout_ms = 300\n", "");
  Result<ScaleProfile> m = ParseProfile(minimal);
  REQUIRE_MESSAGE(m.ok(), m.status().ToString());
  CHECK(m->negative_tolerance_kg == 0.5);
  CHECK(m->response_timeout == 500ms);
}

TEST_CASE("profiles: each missing, misspelt or out-of-range key is named") {
  struct Row {
    const char* from;
    const char* to;
    const char* names;  // the message must contain this
    StatusCode code = StatusCode::kInvalid;
  };
  const Row rows[] = {
      // missing
      {"name = \"t\"\n", "", "profile.name is missing"},
      {"capacity_kg = 100\n", "", "profile.capacity_kg is missing"},
      {"[profile.gross_kg]", "[profile.gross]", "profile.gross is not a known key"},
      {"kind = \"input\"\naddress = 10", "address = 10", "profile.gross_kg.kind is missing"},
      {"address = 10\n", "", "profile.gross_kg.address is missing"},
      {"type = \"int32\"\n", "", "profile.gross_kg.type is missing"},
      {"address = 12\nbit = 15\n", "address = 12\n", "profile.stable.bit is missing"},
      {"start = -1\n", "", "profile.command.start is missing"},
      {"unlocked = 0\n", "", "profile.interlock.unlocked is missing"},
      {"[profile.interlock]\nkind = \"coil\"\naddress = 7\nlocked = 1\nunlocked = 0\n", "",
       "profile.interlock is missing"},
      // misspelt
      {"capacity_kg = 100", "capacity = 100", "profile.capacity is not a known key"},
      {"swap_bytes = true", "swapbytes = true", "profile.gross_kg.swapbytes is not a known key"},
      {"words = \"low-first\"", "word_order = \"low-first\"",
       "profile.gross_kg.word_order is not a known key"},
      {"invert = true", "inverted = true", "profile.fill_done.inverted is not a known key"},
      {"address = 10\n", "adress = 10\n", "profile.gross_kg.adress is not a known key"},
      {"[profile]", "[profiles]\n[profile]", "profiles is not a known key"},
      {"kind = \"input\"\naddress = 12\nbit = 15",
       "kind = \"input\"\naddress = 12\nbit = 15\nscale = 2",
       "profile.stable.scale is not a known key"},
      {"kind = \"discrete\"\naddress = 3", "kind = \"discrete\"\naddress = 3\nbit = 1",
       "profile.fill_done.bit is not a known key"},
      // wrong values
      {"kind = \"input\"\naddress = 10", "kind = \"inputs\"\naddress = 10",
       "profile.gross_kg.kind is \"inputs\""},
      {"type = \"int32\"", "type = \"int64\"", "profile.gross_kg.type is \"int64\""},
      {"words = \"low-first\"", "words = \"little\"", "profile.gross_kg.words is \"little\""},
      {"swap_bytes = true", "swap_bytes = 1", "profile.gross_kg.swap_bytes must be true or false"},
      {"scale = 0.001", "scale = 0", "profile.gross_kg.scale must not be 0"},
      {"scale = 0.001", "scale = \"0.001\"", "profile.gross_kg.scale must be a number"},
      {"address = 10\n", "address = 10.5\n", "profile.gross_kg.address must be an integer"},
      {"address = 10\n", "address = -1\n", "profile.gross_kg.address is -1, outside 0..65534"},
      {"address = 10\n", "address = 65535\n", "profile.gross_kg.address is 65535, outside"},
      {"bit = 15", "bit = 16", "profile.stable.bit is 16, outside 0..15"},
      {"capacity_kg = 100", "capacity_kg = 0", "profile.capacity_kg must be above 0"},
      {"capacity_kg = 100", "capacity_kg = nan", "profile.capacity_kg must be finite"},
      {"negative_tolerance_kg = 0.25", "negative_tolerance_kg = -1",
       "profile.negative_tolerance_kg must not be negative"},
      {"response_timeout_ms = 300", "response_timeout_ms = 0",
       "profile.response_timeout_ms is 0, outside 1..60000"},
      {"name = \"t\"", "name = \"\"", "profile.name must not be empty"},
      {"name = \"t\"", "name = 7", "profile.name must be a string"},
      {"kind = \"input\"\naddress = 10", "kind = \"coil\"\naddress = 10",
       "profile.gross_kg.kind must be holding or input"},
      {"kind = \"holding\"\naddress = 20", "kind = \"input\"\naddress = 20",
       "profile.cutoff_gross_kg.kind must be holding"},
      {"kind = \"coil\"\naddress = 7", "kind = \"discrete\"\naddress = 7",
       "profile.interlock.kind must be holding or coil"},
      {"locked = 1", "locked = 2", "profile.interlock.locked is 2, outside 0..1"},
      {"locked = 1", "locked = 0", "profile.interlock.locked and unlocked must differ"},
      {"stop = 2", "stop = 3", "profile.command.start, stop and zero must differ"},
      {"start = -1", "start = 40000", "profile.command.start is 40000, outside -32768..32767"},
      {"type = \"int16\"", "type = \"float32\"", "profile.command.type must be uint16 or int16"},
      {"[profile.command]", "[profile.command]\nbit = 3", "profile.command.bit is not a known key"},
      {"address = 20\ntype = \"float32\"", "address = 20\ntype = \"uint16\"\nscale = 0.001",
       "profile.cutoff_gross_kg cannot hold the capacity"},
      // not TOML at all
      {"capacity_kg = 100", "capacity_kg = = 100", "profile TOML:", StatusCode::kMalformed},
  };
  for (const Row& row : rows) {
    const std::string from = row.from, to = row.to;
    CAPTURE(from);
    CAPTURE(to);
    Result<ScaleProfile> p = ParseProfile(Replace(kGoodProfile, from, to));
    REQUIRE_FALSE(p.ok());
    CHECK(p.status().code() == row.code);
    CHECK_MESSAGE(p.status().message().find(row.names) != std::string::npos, p.status().message());
  }
}

/// kGoodProfile with every signal: two lamps as bits of one holding register, a lamp
/// on an inverted coil, the buzzer on a coil, the message as a byte-swapped int16.
const std::string kSignalsProfile = std::string(kGoodProfile) + R"(
[profile.lamp_green]
kind = "holding"
address = 40
bit = 0
[profile.lamp_amber]
kind = "holding"
address = 40
bit = 1
[profile.lamp_red]
kind = "coil"
address = 8
invert = true
[profile.buzzer]
kind = "coil"
address = 9
[profile.message_code]
kind = "holding"
address = 41
type = "int16"
swap_bytes = true
)";

TEST_CASE("profiles: signals, as coils and as bits of a holding register") {
  Result<ScaleProfile> p = ParseProfile(kSignalsProfile);
  REQUIRE_MESSAGE(p.ok(), p.status().ToString());
  CHECK(p->lamp_green.kind == RegisterKind::kHolding);
  CHECK(p->lamp_green.address == 40);
  CHECK(p->lamp_green.bit == 0);
  CHECK(p->lamp_amber.bit == 1);
  CHECK_FALSE(p->lamp_amber.invert);
  CHECK(p->lamp_red.kind == RegisterKind::kCoil);
  CHECK(p->lamp_red.address == 8);
  CHECK(p->lamp_red.invert);
  CHECK(p->buzzer.kind == RegisterKind::kCoil);
  CHECK(p->buzzer.address == 9);
  CHECK(p->message_code.kind == RegisterKind::kHolding);
  CHECK(p->message_code.address == 41);
  CHECK(p->message_code.type == ValueType::kInt16);
  CHECK(p->message_code.swap_bytes);

  // Every signal is optional: the good profile has none.
  Result<ScaleProfile> none = ParseProfile(kGoodProfile);
  REQUIRE(none.ok());
  for (const RegisterSpec* spec : {&none->lamp_green, &none->lamp_amber, &none->lamp_red,
                                   &none->buzzer, &none->message_code}) {
    CHECK_FALSE(spec->present());
  }
  // The message's type defaults to uint16.
  Result<ScaleProfile> plain =
      ParseProfile(Replace(kSignalsProfile, "type = \"int16\"\nswap_bytes = true\n", ""));
  REQUIRE_MESSAGE(plain.ok(), plain.status().ToString());
  CHECK(plain->message_code.type == ValueType::kUint16);
  CHECK_FALSE(plain->message_code.swap_bytes);
}

TEST_CASE("profiles: a wrong signal key is named") {
  struct Row {
    const char* from;
    const char* to;
    const char* names;
  };
  const Row rows[] = {
      {"[profile.buzzer]", "[profile.buzzers]", "profile.buzzers is not a known key"},
      {"[profile.lamp_green]", "[profile.lamp_blue]", "profile.lamp_blue is not a known key"},
      {"address = 9\n", "adress = 9\n", "profile.buzzer.adress is not a known key"},
      {"kind = \"coil\"\naddress = 9\n", "kind = \"coil\"\n", "profile.buzzer.address is missing"},
      {"kind = \"coil\"\naddress = 9", "address = 9", "profile.buzzer.kind is missing"},
      {"kind = \"coil\"\naddress = 9", "kind = \"discrete\"\naddress = 9",
       "profile.buzzer.kind must be holding or coil (it is written)"},
      {"kind = \"holding\"\naddress = 40\nbit = 0", "kind = \"input\"\naddress = 40\nbit = 0",
       "profile.lamp_green.kind must be holding or coil (it is written)"},
      {"kind = \"coil\"\naddress = 9", "kind = \"lamp\"\naddress = 9",
       "profile.buzzer.kind is \"lamp\""},
      {"address = 40\nbit = 1\n", "address = 40\n", "profile.lamp_amber.bit is missing"},
      {"address = 40\nbit = 1\n", "address = 40\nbit = 16\n",
       "profile.lamp_amber.bit is 16, outside 0..15"},
      {"address = 9\n", "address = 9\nbit = 0\n", "profile.buzzer.bit is not a known key"},
      {"address = 8\ninvert = true", "address = 8\ninvert = 1",
       "profile.lamp_red.invert must be true or false"},
      {"address = 8\ninvert = true", "address = 8\ninvert = true\nscale = 1",
       "profile.lamp_red.scale is not a known key"},
      {"address = 9\n", "address = 65536\n", "profile.buzzer.address is 65536, outside 0..65535"},
      {"kind = \"holding\"\naddress = 41", "kind = \"coil\"\naddress = 41",
       "profile.message_code.kind must be holding (it is written)"},
      {"kind = \"holding\"\naddress = 41", "kind = \"input\"\naddress = 41",
       "profile.message_code.kind must be holding (it is written)"},
      {"type = \"int16\"\nswap", "type = \"float32\"\nswap",
       "profile.message_code.type must be uint16 or int16"},
      {"type = \"int16\"\nswap", "type = \"uint32\"\nswap",
       "profile.message_code.type must be uint16 or int16"},
      {"type = \"int16\"\nswap", "type = \"char\"\nswap", "profile.message_code.type is \"char\""},
      {"address = 41\n", "address = 41\nscale = 0.1\n",
       "profile.message_code.scale is not a known key"},
      {"address = 41\n", "address = 41\nwords = \"low-first\"\n",
       "profile.message_code.words is not a known key"},
      {"address = 41\n", "address = 41\nbit = 2\n", "profile.message_code.bit is not a known key"},
      {"type = \"int16\"\nswap_bytes = true", "type = \"int16\"\nswap_bytes = \"yes\"",
       "profile.message_code.swap_bytes must be true or false"},
      {"address = 41\n", "address = -1\n", "profile.message_code.address is -1, outside 0..65535"},
      // A signal never shares what controls the fill, nor another signal's coil or bit.
      {"address = 8\ninvert", "address = 7\ninvert",
       "profile.lamp_red is on coil 7, which profile.interlock uses"},
      {"kind = \"holding\"\naddress = 41", "kind = \"holding\"\naddress = 21",
       "profile.message_code is on holding register 21, which profile.cutoff_gross_kg uses"},
      {"address = 40\nbit = 0", "address = 30\nbit = 0",
       "profile.lamp_green is on holding register 30 bit 0, which profile.command uses"},
      {"kind = \"coil\"\naddress = 9", "kind = \"coil\"\naddress = 8",
       "profile.buzzer is on coil 8, which profile.lamp_red uses"},
      {"address = 40\nbit = 1", "address = 40\nbit = 0",
       "profile.lamp_amber is on holding register 40 bit 0, which profile.lamp_green uses"},
      {"kind = \"holding\"\naddress = 41", "kind = \"holding\"\naddress = 40",
       "profile.message_code is on holding register 40, which profile.lamp_green uses"},
  };
  for (const Row& row : rows) {
    const std::string from = row.from, to = row.to;
    CAPTURE(from);
    CAPTURE(to);
    Result<ScaleProfile> p = ParseProfile(Replace(kSignalsProfile, from, to));
    REQUIRE_FALSE(p.ok());
    CHECK(p.status().code() == StatusCode::kInvalid);
    CHECK_MESSAGE(p.status().message().find(row.names) != std::string::npos, p.status().message());
  }
}

TEST_CASE("profiles: a signal on a command coil or in the interlock's register is refused") {
  // Command coils: start 50, stop 2, zero 3.
  const std::string coil_command =
      Replace(kSignalsProfile, "kind = \"holding\"\naddress = 30\ntype = \"int16\"\nstart = -1",
              "kind = \"coil\"\nstart = 50");
  REQUIRE_MESSAGE(ParseProfile(coil_command).ok(), ParseProfile(coil_command).status().ToString());
  Result<ScaleProfile> on_stop =
      ParseProfile(Replace(coil_command, "address = 9\n", "address = 2\n"));
  CHECK(on_stop.status().message() ==
        "profile.buzzer is on coil 2, which profile.command.stop uses");

  // pingma-fill-v1's interlock is holding register 6: a lamp may not be one of its bits.
  std::ifstream in(kDefaultProfileFile);
  std::stringstream text;
  text << in.rdbuf();
  REQUIRE(ParseProfile(text.str()).ok());
  Result<ScaleProfile> in_interlock = ParseProfile(Replace(
      text.str(), "kind = \"coil\"\naddress = 0\n", "kind = \"holding\"\naddress = 6\nbit = 0\n"));
  CHECK(in_interlock.status().message() ==
        "profile.lamp_green is on holding register 6 bit 0, which profile.interlock uses");
}

TEST_CASE("profiles: coil commands need no address; a file that is not there") {
  const std::string coil_command =
      Replace(kGoodProfile, "kind = \"holding\"\naddress = 30\ntype = \"int16\"\nstart = -1",
              "kind = \"coil\"\nstart = 50");
  Result<ScaleProfile> p = ParseProfile(coil_command);
  REQUIRE_MESSAGE(p.ok(), p.status().ToString());
  CHECK(p->command.kind == RegisterKind::kCoil);
  CHECK(p->command.address == 50);
  CHECK(p->command_start == 50);
  CHECK(p->command_zero == 3);
  Result<ScaleProfile> with_address = ParseProfile(Replace(
      coil_command, "kind = \"coil\"\nstart = 50", "kind = \"coil\"\naddress = 9\nstart = 50"));
  CHECK(with_address.status().message().find("profile.command.address is not a known key") !=
        std::string::npos);

  Result<ScaleProfile> missing = LoadProfile("/nonexistent/scale.toml");
  CHECK(missing.status().code() == StatusCode::kNotFound);
  CHECK(missing.status().message().find("/nonexistent/scale.toml") != std::string::npos);
}

// ---- real peers: processes ------------------------------------------------------------

/// A child process with its stdin and stdout on pipes. Killed at the end.
class Child {
 public:
  explicit Child(std::vector<std::string> args) {
    int in[2], out[2];
    REQUIRE(::pipe2(in, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(in[0]);
    ::close(out[1]);
    to_ = in[1];
    from_ = out[0];
    REQUIRE_MESSAGE(rc == 0, "cannot start ", args[0], ": ", std::strerror(rc));
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() { Kill(); }

  /// Kills it outright (SIGKILL): the peer vanishes mid-session, as a crash would.
  void Kill() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
      pid_ = -1;
    }
    if (to_ >= 0) ::close(to_);
    if (from_ >= 0) ::close(from_);
    to_ = from_ = -1;
  }

  /// The next line of its stdout, or "" when none came within kCap.
  std::string ReadLine() {
    const auto deadline = std::chrono::steady_clock::now() + kCap;
    while (true) {
      const auto nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return "";
      pollfd p{from_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      const ssize_t n = ::read(from_, chunk, sizeof chunk);
      if (n <= 0) return "";
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  /// Sends one control line and returns the answer line.
  std::string Ask(const std::string& line) {
    const std::string text = line + "\n";
    REQUIRE(::write(to_, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    return ReadLine();
  }

 private:
  pid_t pid_ = -1;
  int to_ = -1;
  int from_ = -1;
  std::string buffer_;
};

/// pymodbus_server.py with a register layout, on TCP (port 0 or a given one) or RTU.
class PyModbusServer {
 public:
  static PyModbusServer Tcp(const std::string& layout, int port = 0) {
    return PyModbusServer({"/usr/bin/python3", "-B", kServerScript, "--layout", layout, "--port",
                           std::to_string(port)});
  }
  static PyModbusServer Rtu(const std::string& layout, const std::string& device) {
    return PyModbusServer(
        {"/usr/bin/python3", "-B", kServerScript, "--layout", layout, "--rtu", device});
  }

  int port() const { return port_; }
  Child& child() { return *child_; }

  void Set(char kind, int address, const std::vector<unsigned>& values) {
    std::string line = std::string("set ") + kind + " " + std::to_string(address);
    for (unsigned v : values) line += " " + std::to_string(v);
    REQUIRE(child_->Ask(line) == "ok");
  }
  std::vector<unsigned> Get(char kind, int address, int count) {
    std::istringstream in(child_->Ask(std::string("get ") + kind + " " + std::to_string(address) +
                                      " " + std::to_string(count)));
    std::string word;
    in >> word;
    REQUIRE(word == "values");
    std::vector<unsigned> out;
    unsigned v = 0;
    while (in >> v) out.push_back(v);
    return out;
  }
  /// The client's writes in order: "c63=0", "h0=0,1250", ...
  std::vector<std::string> Writes() {
    std::istringstream in(child_->Ask("log"));
    std::string word;
    in >> word;
    REQUIRE(word == "log");
    std::vector<std::string> out;
    while (in >> word) out.push_back(word);
    return out;
  }
  void ClearWrites() { REQUIRE(child_->Ask("clearlog") == "ok"); }
  void Kill() { child_->Kill(); }

 private:
  explicit PyModbusServer(std::vector<std::string> args)
      : child_(std::make_unique<Child>(std::move(args))) {
    const std::string ready = child_->ReadLine();
    REQUIRE_MESSAGE(ready.rfind("modbus ", 0) == 0, "pymodbus server said: '", ready, "'");
    if (ready.rfind("modbus tcp ", 0) == 0) port_ = std::stoi(ready.substr(11));
  }

  std::unique_ptr<Child> child_;
  int port_ = -1;
};

/// A temporary directory, removed at the end.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "pingma-scale-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

/// `socat pty,raw,echo=0,link=A pty,raw,echo=0,link=B`: a null-modem cable.
class PtyPair {
 public:
  explicit PtyPair(const TempDir& dir) : a_(dir / "a"), b_(dir / "b") {
    std::string program = "/usr/bin/socat";
    std::string left = "pty,raw,echo=0,link=" + a_;
    std::string right = "pty,raw,echo=0,link=" + b_;
    char* argv[] = {program.data(), left.data(), right.data(), nullptr};
    const int rc = ::posix_spawn(&pid_, program.c_str(), nullptr, nullptr, argv, environ);
    REQUIRE_MESSAGE(rc == 0, "cannot start socat: ", std::strerror(rc));
    const auto deadline = std::chrono::steady_clock::now() + kCap;
    while (!(fs::exists(a_) && fs::exists(b_))) {
      REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "socat made no ptys");
      std::this_thread::sleep_for(10ms);
    }
  }
  ~PtyPair() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  const std::string& a() const { return a_; }
  const std::string& b() const { return b_; }

 private:
  std::string a_, b_;
  pid_t pid_ = -1;
};

ScaleProfile Bde() {
  Result<ScaleProfile> p = LoadProfile(kBdeProfile);
  REQUIRE_MESSAGE(p.ok(), p.status().ToString());
  return *p;
}

ScaleEndpoint TcpEndpoint(int port) {
  ScaleEndpoint e;
  e.transport = ScaleEndpoint::Transport::kTcp;
  e.host = "127.0.0.1";
  e.port = port;
  return e;
}

/// The words of an int32, high word first, as the BDE-2007 profile reads them.
std::vector<unsigned> Int32Words(std::int32_t v) {
  const auto u = static_cast<std::uint32_t>(v);
  return {u >> 16, u & 0xFFFFu};
}

/// Connects, retrying while the peer is still coming up; the cap is a hang guard.
Status ConnectWithin(Scale& scale) {
  const auto deadline = std::chrono::steady_clock::now() + kCap;
  Status s = scale.Connect();
  while (!s.ok() && s.code() == StatusCode::kUnavailable &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
    s = scale.Connect();
  }
  return s;
}

/// The session every transport goes through against the BDE-2007 layout.
void BdeSession(PyModbusServer& server, Scale& scale) {
  // Connect writes the interlock locked before anything else.
  const Status connected = ConnectWithin(scale);
  REQUIRE_MESSAGE(connected.ok(), connected.ToString());
  CHECK(scale.connected());
  {
    const std::vector<std::string> writes = server.Writes();
    REQUIRE_FALSE(writes.empty());
    CHECK(writes.front() == "c63=0");
  }
  server.ClearWrites();

  // A weight and flags set on the server side: G.W. 12.34 kg, still (M.D. off),
  // SP1 on, Finish off, OVER off.
  server.Set('i', 2, Int32Words(1234));
  server.Set('d', 1, {0});
  server.Set('d', 49, {1});
  Result<ScaleReading> r = scale.Read();
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(r->gross_kg == doctest::Approx(12.34));
  CHECK(r->stable);
  CHECK(r->valve_open);
  CHECK_FALSE(r->fill_done);
  CHECK_FALSE(r->overload);
  CHECK_FALSE(r->present);  // not mapped on this indicator
  CHECK_FALSE(r->heartbeat.has_value());

  // Motion, Finish, a negative weight within tolerance.
  server.Set('i', 2, Int32Words(-50));
  server.Set('d', 1, {1});
  server.Set('d', 54, {1});
  r = scale.Read();
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(r->gross_kg == -0.5);
  CHECK_FALSE(r->stable);
  CHECK(r->fill_done);

  // A weight beyond the profile's limits is a fault, not a reading; the link stays.
  server.Set('i', 2, Int32Words(15001));
  r = scale.Read();
  CHECK(r.status().code() == StatusCode::kInvalid);
  CHECK(r.status().message().find("fault, not a reading") != std::string::npos);
  CHECK(scale.connected());
  server.Set('i', 2, Int32Words(15000));
  r = scale.Read();
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(r->gross_kg == 150.0);

  // Writes, verified on the server side, in order.
  server.ClearWrites();
  Status s = scale.WriteCutoff(47.25);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(server.Get('h', 0, 2) == Int32Words(4725));
  s = scale.SetInterlock(true);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(server.Get('c', 63, 1) == std::vector<unsigned>{1});
  s = scale.Send(ScaleCommand::kStart);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(server.Get('c', 50, 1) == std::vector<unsigned>{1});
  s = scale.Send(ScaleCommand::kStop);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  s = scale.Send(ScaleCommand::kZero);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  s = scale.SetInterlock(false);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(server.Writes() ==
        std::vector<std::string>{"h0=0,4725", "c63=1", "c50=1", "c51=1", "c0=1", "c63=0"});

  // A cutoff the profile cannot accept is refused before anything is written.
  server.ClearWrites();
  CHECK(scale.WriteCutoff(150.5).code() == StatusCode::kInvalid);
  CHECK(scale.WriteCutoff(std::nan("")).code() == StatusCode::kInvalid);
  CHECK(server.Writes().empty());

  // The site's relays: buzzer 59, lamps 60-62, each written on its own coil; no message
  // register, and the interlock's coil 63 is not written.
  CHECK(scale.has_signals());
  ScaleSignals signals;
  signals.green = true;
  signals.buzzer = true;
  signals.message = ScaleMessage::kFilling;
  s = scale.WriteSignals(signals);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(server.Writes() == std::vector<std::string>{"c60=1", "c61=0", "c62=0", "c59=1"});
  CHECK(server.Get('c', 59, 5) == std::vector<unsigned>{1, 1, 0, 0, 0});
  server.ClearWrites();
  signals.green = signals.buzzer = false;
  signals.red = true;
  s = scale.WriteSignals(signals);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(server.Writes() == std::vector<std::string>{"c60=0", "c61=0", "c62=1", "c59=0"});
  CHECK(server.Get('c', 59, 5) == std::vector<unsigned>{0, 0, 0, 1, 0});
}

TEST_CASE("pymodbus over TCP, BDE-2007 map: read, write, exception, kill, reconnect") {
  PyModbusServer server = PyModbusServer::Tcp("bde-2007");
  const ScaleProfile profile = Bde();
  std::unique_ptr<Scale> scale = MakeModbusScale(TcpEndpoint(server.port()), profile);
  CHECK(scale->Describe() == "tcp 127.0.0.1:" + std::to_string(server.port()) + " unit 1");
  CHECK_FALSE(scale->connected());
  CHECK(scale->Read().status().code() == StatusCode::kUnavailable);  // not connected yet

  BdeSession(server, *scale);

  SUBCASE("a Modbus exception is kInvalid naming it, and the link stays") {
    // The same indicator with the cutoff moved past the end of its holding registers.
    ScaleProfile beyond = profile;
    beyond.cutoff_gross_kg.address = 100;
    std::unique_ptr<Scale> other = MakeModbusScale(TcpEndpoint(server.port()), beyond);
    REQUIRE(other->Connect().ok());
    const Status s = other->WriteCutoff(10);
    CHECK(s.code() == StatusCode::kInvalid);
    CHECK_MESSAGE(s.message().find("Illegal data address") != std::string::npos, s.message());
    CHECK(s.message().find("holding register 100") != std::string::npos);
    CHECK(other->connected());
    CHECK(other->Read().ok());
  }

  SUBCASE("killed mid-session: kUnavailable; back again: Connect locks first") {
    const int port = server.port();
    server.Kill();
    Result<ScaleReading> r = scale->Read();
    CHECK(r.status().code() == StatusCode::kUnavailable);
    CHECK_FALSE(scale->connected());
    CHECK(scale->Connect().code() == StatusCode::kUnavailable);
    CHECK_FALSE(scale->connected());

    PyModbusServer again = PyModbusServer::Tcp("bde-2007", port);
    again.Set('c', 63, {1});  // left unlocked by the session that died
    const Status s = ConnectWithin(*scale);
    REQUIRE_MESSAGE(s.ok(), s.ToString());
    const std::vector<std::string> writes = again.Writes();
    REQUIRE_FALSE(writes.empty());
    CHECK(writes.front() == "c63=0");
    CHECK(again.Get('c', 63, 1) == std::vector<unsigned>{0});
    again.Set('i', 2, Int32Words(2000));
    Result<ScaleReading> after = scale->Read();
    REQUIRE_MESSAGE(after.ok(), after.status().ToString());
    CHECK(after->gross_kg == 20.0);
  }
}

TEST_CASE("pymodbus over TCP, pingma-fill-v1 layout: float32, NaN and infinity are faults") {
  PyModbusServer server = PyModbusServer::Tcp("pingma-fill-v1");
  std::unique_ptr<Scale> scale = MakeModbusScale(TcpEndpoint(server.port()), DefaultProfile());
  REQUIRE(ConnectWithin(*scale).ok());
  CHECK(server.Writes().front() == "h6=0");

  server.Set('h', 0, {0x4148, 0x0000});  // 12.5 kg
  server.Set('h', 4, {0x0015});          // stable, fill done, present
  server.Set('h', 7, {41});
  Result<ScaleReading> r = scale->Read();
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  CHECK(r->gross_kg == 12.5);
  CHECK(r->stable);
  CHECK_FALSE(r->valve_open);
  CHECK(r->fill_done);
  CHECK_FALSE(r->fault);
  CHECK(r->present);
  CHECK(r->heartbeat == 41u);
  CHECK(r->fault_code == 0u);

  server.Set('h', 0, {0x7FC0, 0x0000});  // NaN
  r = scale->Read();
  CHECK(r.status().code() == StatusCode::kInvalid);
  CHECK(r.status().message().find("NaN") != std::string::npos);
  server.Set('h', 0, {0x7F80, 0x0000});  // +infinity
  r = scale->Read();
  CHECK(r.status().code() == StatusCode::kInvalid);
  CHECK(r.status().message().find("infinity") != std::string::npos);
  CHECK(scale->connected());

  server.ClearWrites();
  REQUIRE(scale->WriteCutoff(47.5).ok());
  REQUIRE(scale->Send(ScaleCommand::kZero).ok());
  CHECK(server.Writes() == std::vector<std::string>{"h2=16958,0", "h5=3"});  // 0x423E0000
}

TEST_CASE("signals compare by every field") {
  const ScaleSignals idle;
  CHECK(idle == ScaleSignals{});
  CHECK_FALSE(idle != ScaleSignals{});
  ScaleSignals other;
  for (bool ScaleSignals::*lamp :
       {&ScaleSignals::green, &ScaleSignals::amber, &ScaleSignals::red, &ScaleSignals::buzzer}) {
    other = idle;
    other.*lamp = true;
    CHECK(other != idle);
    CHECK_FALSE(other == idle);
  }
  other = idle;
  other.message = ScaleMessage::kOffline;
  CHECK(other != idle);
}

/// Every signal on or off at once.
ScaleSignals AllSignals(bool on, ScaleMessage message) {
  ScaleSignals s;
  s.green = s.amber = s.red = s.buzzer = on;
  s.message = message;
  return s;
}

RegisterSpec HoldingBit(int address, int bit, bool invert = false) {
  RegisterSpec spec;
  spec.kind = RegisterKind::kHolding;
  spec.address = address;
  spec.bit = bit;
  spec.invert = invert;
  return spec;
}

TEST_CASE("pymodbus over TCP, pingma-fill-v1 layout: the signals on coils 0-3 and register 9") {
  PyModbusServer server = PyModbusServer::Tcp("pingma-fill-v1");
  std::unique_ptr<Scale> scale = MakeModbusScale(TcpEndpoint(server.port()), DefaultProfile());
  CHECK(scale->has_signals());
  ScaleSignals blocked;
  blocked.red = blocked.buzzer = true;
  blocked.message = ScaleMessage::kBlocked;
  CHECK(scale->WriteSignals(blocked).code() == StatusCode::kUnavailable);  // not connected
  REQUIRE(ConnectWithin(*scale).ok());
  server.Set('h', 6, {1});  // the interlock as the scale may hold it: no signal touches it
  server.ClearWrites();

  Status s = scale->WriteSignals(blocked);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(server.Writes() == std::vector<std::string>{"c0=0", "c1=0", "c2=1", "c3=1", "h9=2"});
  CHECK(server.Get('c', 0, 4) == std::vector<unsigned>{0, 0, 1, 1});
  CHECK(server.Get('h', 0, 10) == std::vector<unsigned>{0, 0, 0, 0, 0, 0, 1, 0, 0, 2});

  // Each lamp on its own coil, and every message code as its number.
  const std::pair<bool ScaleSignals::*, int> lamps[] = {{&ScaleSignals::green, 0},
                                                        {&ScaleSignals::amber, 1},
                                                        {&ScaleSignals::red, 2},
                                                        {&ScaleSignals::buzzer, 3}};
  for (const auto& [lamp, coil] : lamps) {
    CAPTURE(coil);
    ScaleSignals one;
    one.*lamp = true;
    REQUIRE(scale->WriteSignals(one).ok());
    std::vector<unsigned> expected(4, 0);
    expected[static_cast<std::size_t>(coil)] = 1;
    CHECK(server.Get('c', 0, 4) == expected);
  }
  const std::pair<ScaleMessage, unsigned> messages[] = {
      {ScaleMessage::kIdle, 0},    {ScaleMessage::kFilling, 1}, {ScaleMessage::kBlocked, 2},
      {ScaleMessage::kOffline, 3}, {ScaleMessage::kFault, 4},   {ScaleMessage::kHoldForDecant, 5}};
  for (const auto& [message, code] : messages) {
    CAPTURE(code);
    REQUIRE(scale->WriteSignals(AllSignals(false, message)).ok());
    CHECK(server.Get('h', 9, 1) == std::vector<unsigned>{code});
  }
  CHECK(server.Get('h', 6, 1) == std::vector<unsigned>{1});
  for (const std::string& write : server.Writes()) CHECK(write.rfind("h6=", 0) != 0);
}

TEST_CASE("pymodbus over TCP: lamps as bits of a holding register change only their bits") {
  PyModbusServer server = PyModbusServer::Tcp("pingma-fill-v1");
  // Register 9 as an output register whose other bits are not the station's.
  ScaleProfile profile = DefaultProfile();
  profile.lamp_green = HoldingBit(9, 0);
  profile.lamp_amber = HoldingBit(9, 5);
  profile.lamp_red = HoldingBit(9, 15, /*invert=*/true);
  profile.buzzer = RegisterSpec{};
  profile.message_code = RegisterSpec{};
  std::unique_ptr<Scale> scale = MakeModbusScale(TcpEndpoint(server.port()), profile);
  REQUIRE(ConnectWithin(*scale).ok());
  server.Set('h', 9, {0x5A5A});  // bits 0, 5 and 15 clear
  server.ClearWrites();

  // Red on is its bit cleared (inverted); the unmapped buzzer is skipped.
  Status s = scale->WriteSignals(AllSignals(true, ScaleMessage::kFault));
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(server.Writes() == std::vector<std::string>{"h9=" + std::to_string(0x5A7B)});  // one write
  CHECK(server.Get('h', 9, 1) == std::vector<unsigned>{0x5A7B});

  // The indicator changed its own bits meanwhile: they stay as it set them.
  const unsigned theirs = 0x0C80;
  server.Set('h', 9, {theirs | 0x0021});
  server.ClearWrites();
  s = scale->WriteSignals(AllSignals(false, ScaleMessage::kIdle));
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(server.Writes() == std::vector<std::string>{"h9=" + std::to_string(theirs | 0x8000)});
  CHECK(server.Get('h', 9, 1) == std::vector<unsigned>{theirs | 0x8000});

  // Already as wanted: read, and nothing written.
  server.ClearWrites();
  REQUIRE(scale->WriteSignals(AllSignals(false, ScaleMessage::kIdle)).ok());
  CHECK(server.Writes().empty());
  CHECK(server.Get('h', 9, 1) == std::vector<unsigned>{theirs | 0x8000});
}

TEST_CASE("pymodbus over TCP: a profile without signals writes nothing") {
  PyModbusServer server = PyModbusServer::Tcp("pingma-fill-v1");
  ScaleProfile profile = DefaultProfile();
  profile.lamp_green = profile.lamp_amber = profile.lamp_red = profile.buzzer =
      profile.message_code = RegisterSpec{};
  std::unique_ptr<Scale> scale = MakeModbusScale(TcpEndpoint(server.port()), profile);
  CHECK_FALSE(scale->has_signals());
  CHECK(scale->WriteSignals(AllSignals(true, ScaleMessage::kFault)).ok());  // even unconnected
  REQUIRE(ConnectWithin(*scale).ok());
  server.ClearWrites();
  CHECK(scale->WriteSignals(AllSignals(true, ScaleMessage::kHoldForDecant)).ok());
  CHECK(server.Writes().empty());
  CHECK(server.Get('c', 0, 4) == std::vector<unsigned>{0, 0, 0, 0});
  CHECK(server.Get('h', 9, 1) == std::vector<unsigned>{0});
}

TEST_CASE("pymodbus over TCP: a signal the scale refuses is named, the others still written") {
  PyModbusServer server = PyModbusServer::Tcp("pingma-fill-v1");  // coils 0-3, registers 0-9
  ScaleSignals signals;
  signals.green = signals.buzzer = true;
  signals.message = ScaleMessage::kHoldForDecant;

  SUBCASE("a coil and a register past the scale's last") {
    ScaleProfile profile = DefaultProfile();
    profile.buzzer.address = 4;
    profile.message_code.address = 10;
    std::unique_ptr<Scale> scale = MakeModbusScale(TcpEndpoint(server.port()), profile);
    REQUIRE(ConnectWithin(*scale).ok());
    server.ClearWrites();
    const Status s = scale->WriteSignals(signals);
    CHECK(s.code() == StatusCode::kInvalid);
    CHECK_MESSAGE(s.message().find("writing buzzer to coil 4") != std::string::npos, s.message());
    CHECK_MESSAGE(
        s.message().find("writing message_code to holding register 10") != std::string::npos,
        s.message());
    CHECK(s.message().find("Illegal data address") != std::string::npos);
    CHECK(s.message().find("lamp") == std::string::npos);  // the lamps were written
    CHECK(server.Writes() == std::vector<std::string>{"c0=1", "c1=0", "c2=0"});
    CHECK(scale->connected());  // a refusal is not a broken link
    CHECK(scale->Read().ok());
  }
  SUBCASE("a lamp bit in a register the scale does not have") {
    ScaleProfile profile = DefaultProfile();
    profile.lamp_amber = HoldingBit(12, 3);
    std::unique_ptr<Scale> scale = MakeModbusScale(TcpEndpoint(server.port()), profile);
    REQUIRE(ConnectWithin(*scale).ok());
    server.ClearWrites();
    const Status s = scale->WriteSignals(signals);
    CHECK(s.code() == StatusCode::kInvalid);
    CHECK_MESSAGE(
        s.message().find("reading lamp_amber from holding register 12") != std::string::npos,
        s.message());
    CHECK(server.Writes() == std::vector<std::string>{"c0=1", "c2=0", "c3=1", "h9=5"});
  }
  SUBCASE("the scale gone: kUnavailable, disconnected") {
    std::unique_ptr<Scale> scale = MakeModbusScale(TcpEndpoint(server.port()), DefaultProfile());
    REQUIRE(ConnectWithin(*scale).ok());
    server.Kill();
    const Status s = scale->WriteSignals(signals);
    CHECK(s.code() == StatusCode::kUnavailable);
    CHECK_MESSAGE(s.message().find("lamp_green") != std::string::npos, s.message());
    CHECK_FALSE(scale->connected());
  }
  SUBCASE("a profile built in code with a lamp in the interlock's register") {
    ScaleProfile profile = DefaultProfile();
    profile.lamp_green = HoldingBit(6, 0);
    std::unique_ptr<Scale> scale = MakeModbusScale(TcpEndpoint(server.port()), profile);
    REQUIRE(ConnectWithin(*scale).ok());
    server.ClearWrites();
    const Status s = scale->WriteSignals(signals);
    CHECK(s.code() == StatusCode::kInvalid);
    CHECK(s.message() ==
          "profile.lamp_green is on holding register 6 bit 0, which profile.interlock uses");
    CHECK(server.Writes().empty());
  }
}

TEST_CASE("pymodbus over RTU through a socat pty pair, BDE-2007 map") {
  TempDir dir;
  PtyPair ptys(dir);
  ScaleEndpoint endpoint;
  endpoint.transport = ScaleEndpoint::Transport::kRtu;
  endpoint.device = ptys.b();
  endpoint.baud = 9600;
  const ScaleProfile profile = Bde();
  std::unique_ptr<Scale> scale = MakeModbusScale(endpoint, profile);
  CHECK(scale->Describe() == "rtu " + ptys.b() + " 9600 8N1 unit 1");
  {
    PyModbusServer server = PyModbusServer::Rtu("bde-2007", ptys.a());
    BdeSession(server, *scale);
    server.Kill();
  }
  // Nobody answers on the line: the deadline passes, the driver lets go of the port.
  Result<ScaleReading> r = scale->Read();
  CHECK(r.status().code() == StatusCode::kUnavailable);
  CHECK_FALSE(scale->connected());

  PyModbusServer again = PyModbusServer::Rtu("bde-2007", ptys.a());
  again.Set('c', 63, {1});
  const Status s = ConnectWithin(*scale);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  const std::vector<std::string> writes = again.Writes();
  REQUIRE_FALSE(writes.empty());
  CHECK(writes.front() == "c63=0");
}

// ---- pingma-scale-sim (tools/scale_sim), the project's own simulator ---------------------

/// A line-oriented TCP client for the simulator's control port.
class ControlClient {
 public:
  explicit ControlClient(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ControlClient(const ControlClient&) = delete;
  ControlClient& operator=(const ControlClient&) = delete;
  ~ControlClient() { ::close(fd_); }

  std::string Ask(const std::string& line) {
    const std::string text = line + "\n";
    REQUIRE(::send(fd_, text.data(), text.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(text.size()));
    const auto deadline = std::chrono::steady_clock::now() + kCap;
    while (buffer_.find('\n') == std::string::npos) {
      if (std::chrono::steady_clock::now() >= deadline) return "";
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char chunk[65536];
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return "";
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
    const auto nl = buffer_.find('\n');
    std::string answer = buffer_.substr(0, nl);
    buffer_.erase(0, nl + 1);
    return answer;
  }

 private:
  int fd_ = -1;
  std::string buffer_;
};

/// "modbus on 127.0.0.1:40123" -> 40123.
int PortOf(const std::string& line) {
  const auto colon = line.rfind(':');
  REQUIRE_MESSAGE(colon != std::string::npos, "no port in '", line, "'");
  return std::stoi(line.substr(colon + 1));
}

/// Reads until `done` holds; the cap is a hang guard.
ScaleReading ReadUntil(Scale& scale, const std::function<bool(const ScaleReading&)>& done) {
  const auto deadline = std::chrono::steady_clock::now() + kCap;
  while (true) {
    Result<ScaleReading> r = scale.Read();
    REQUIRE_MESSAGE(r.ok(), r.status().ToString());
    if (done(*r)) return *r;
    REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "the scale never got there");
    std::this_thread::sleep_for(20ms);
  }
}

/// One fill on the simulator through the driver with the default profile.
// The simulator's count of Modbus requests it has answered.
long Requests(ControlClient& control) {
  const std::string status = control.Ask("status");
  const auto at = status.find("\"requests\":");
  REQUIRE_MESSAGE(at != std::string::npos, status);
  return std::stol(status.substr(at + 11));
}

void SimFill(Scale& scale, ControlClient& control) {
  const Status connected = ConnectWithin(scale);
  REQUIRE_MESSAGE(connected.ok(), connected.ToString());
  // The first interlock write the simulator saw is the lock, from Connect.
  const std::string status = control.Ask("status");
  const auto writes = status.find("\"interlock_writes\":[");
  REQUIRE_MESSAGE(writes != std::string::npos, status);
  CHECK(status.find("\"value\":0", writes) < status.find("\"value\":1", writes));

  REQUIRE(control.Ask("place 15 10") == "ok");
  ScaleReading r = ReadUntil(scale, [](const ScaleReading& x) { return x.present && x.stable; });
  CHECK(r.gross_kg == doctest::Approx(25).epsilon(0.001));
  // pingma-fill-v1 maps registers 0..8: one reading is one request, not one per value.
  const long before = Requests(control);
  REQUIRE(scale.Read().ok());
  CHECK(Requests(control) - before == 1);
  REQUIRE(scale.WriteCutoff(27).ok());
  const Status unlocked = scale.SetInterlock(true);
  REQUIRE_MESSAGE(unlocked.ok(), unlocked.ToString());
  const Status started = scale.Send(ScaleCommand::kStart);
  REQUIRE_MESSAGE(started.ok(), started.ToString());
  r = ReadUntil(scale, [](const ScaleReading& x) { return x.fill_done && x.stable; });
  CHECK(r.gross_kg >= 27);
  CHECK(r.gross_kg < 27.5);
  CHECK_FALSE(r.valve_open);

  // The signals land where the simulator keeps them, logged beside the interlock's.
  ScaleSignals signals;
  signals.amber = signals.buzzer = true;
  signals.message = ScaleMessage::kHoldForDecant;
  const Status written = scale.WriteSignals(signals);
  REQUIRE_MESSAGE(written.ok(), written.ToString());
  const nlohmann::json sim = nlohmann::json::parse(control.Ask("status"));
  CHECK(sim["coils"] ==
        nlohmann::json{
            {"lamp_green", false}, {"lamp_amber", true}, {"lamp_red", false}, {"buzzer", true}});
  CHECK(sim["registers"]["message_code"] == 5);
  std::vector<std::pair<std::string, int>> logged;
  for (const auto& w : sim["signals"]) logged.emplace_back(w["which"], w["value"]);
  CHECK(logged == std::vector<std::pair<std::string, int>>{{"lamp_green", 0},
                                                           {"lamp_amber", 1},
                                                           {"lamp_red", 0},
                                                           {"buzzer", 1},
                                                           {"message_code", 5}});
  CHECK(sim["registers"]["interlock"] == 0);  // relocked by the fill, and left so
}

TEST_CASE("pingma-scale-sim over TCP and RTU: a fill through the driver") {
  SUBCASE("tcp") {
    Child sim({PINGMA_SCALE_SIM, "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0",
               "--flow-kg-s", "2"});
    const int modbus_port = PortOf(sim.ReadLine());
    ControlClient control(PortOf(sim.ReadLine()));
    std::unique_ptr<Scale> scale = MakeModbusScale(TcpEndpoint(modbus_port), DefaultProfile());
    SimFill(*scale, control);
  }
  SUBCASE("rtu") {
    TempDir dir;
    PtyPair ptys(dir);
    Child sim(
        {PINGMA_SCALE_SIM, "--rtu", ptys.a(), "--control", "127.0.0.1:0", "--flow-kg-s", "2"});
    REQUIRE(sim.ReadLine().rfind("modbus on rtu", 0) == 0);
    ControlClient control(PortOf(sim.ReadLine()));
    ScaleEndpoint endpoint;
    endpoint.transport = ScaleEndpoint::Transport::kRtu;
    endpoint.device = ptys.b();
    std::unique_ptr<Scale> scale = MakeModbusScale(endpoint, DefaultProfile());
    SimFill(*scale, control);
  }
}

}  // namespace
}  // namespace pingma::station
