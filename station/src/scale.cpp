// The libmodbus scale driver. See scale.h for the contract.
#include "scale.h"

#include <modbus/modbus.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <limits>
#include <sstream>
#include <utility>

namespace pingma::station {

bool ScaleSignals::operator==(const ScaleSignals& other) const {
  return green == other.green && amber == other.amber && red == other.red &&
         buzzer == other.buzzer && message == other.message;
}
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
