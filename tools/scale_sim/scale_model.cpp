#include "scale_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include <fmt/format.h>

namespace pingma::scalesim {
namespace {

double Seconds(Micros d) {
  return static_cast<double>(d.count()) / 1e6;
}

bool Covers(int start, int end, int reg) {
  return start <= reg && reg < end;
}

bool Writable(int reg) {
  return reg == kCutoffHi || reg == kCutoffLo || reg == kCommand || reg == kInterlock ||
         reg == kMessageCode;
}

const char* CoilName(int coil) {
  switch (coil) {
    case kLampGreen:
      return "lamp_green";
    case kLampAmber:
      return "lamp_amber";
    case kLampRed:
      return "lamp_red";
    case kBuzzer:
      return "buzzer";
    default:
      return "?";
  }
}

}  // namespace

ScaleModel::ScaleModel(ScaleConfig config, Micros now)
    : config_(config),
      default_overshoot_kg_(config.overshoot_kg),
      now_(now),
      last_change_(now),
      rng_(config.noise_seed) {}

std::array<std::uint16_t, 2> ScaleModel::FloatToRegisters(float value) {
  std::uint32_t bits = 0;
  static_assert(sizeof bits == sizeof value);
  std::memcpy(&bits, &value, sizeof bits);
  return {static_cast<std::uint16_t>(bits >> 16), static_cast<std::uint16_t>(bits & 0xFFFFu)};
}

float ScaleModel::RegistersToFloat(std::uint16_t hi, std::uint16_t lo) {
  const std::uint32_t bits = (static_cast<std::uint32_t>(hi) << 16) | lo;
  float value = 0;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

double ScaleModel::gross_kg() const {
  return (present_ ? tare_kg_ + content_kg_ : 0.0) + drift_kg_ - zero_kg_;
}

double ScaleModel::displayed_gross_kg() const {
  if (faults_.nan) return std::numeric_limits<double>::quiet_NaN();
  if (faults_.stuck) return stuck_gross_;
  return gross_kg() + noise_kg_;
}

bool ScaleModel::Stable() const {
  return phase_ == Phase::kIdle && now_ - last_change_ >= config_.settle;
}

std::uint16_t ScaleModel::status() const {
  std::uint16_t s = 0;
  if (Stable()) s |= kStable;
  if (ValveOpen()) s |= kValveOpen;
  if (fill_done_) s |= kFillDone;
  if (faults_.code != 0) s |= kFault;
  if (present_) s |= kPresent;
  if (gross_kg() > config_.capacity_kg) s |= kOverload;
  return s;
}

std::uint16_t ScaleModel::heartbeat() const {
  return static_cast<std::uint16_t>((heartbeat_time_.count() / 1'000'000) & 0xFFFF);
}

const char* ScaleModel::phase_name() const {
  switch (phase_) {
    case Phase::kIdle:
      return "idle";
    case Phase::kOpening:
      return "opening";
    case Phase::kFlowing:
      return "flowing";
    case Phase::kInFlight:
      return "in_flight";
  }
  return "idle";
}

std::array<std::uint16_t, kRegisterCount> ScaleModel::Registers() const {
  std::array<std::uint16_t, kRegisterCount> r{};
  const auto gross = FloatToRegisters(static_cast<float>(displayed_gross_kg()));
  const auto cutoff = FloatToRegisters(static_cast<float>(cutoff_kg_));
  r[kGrossHi] = gross[0];
  r[kGrossLo] = gross[1];
  r[kCutoffHi] = cutoff[0];
  r[kCutoffLo] = cutoff[1];
  r[kStatus] = status();
  r[kCommand] = kNone;  // commands run when written: the register always reads back cleared
  r[kInterlock] = interlock_;
  r[kHeartbeat] = heartbeat();
  r[kFaultCode] = faults_.code;
  r[kMessageCode] = message_code_;
  return r;
}

std::vector<std::string> ScaleModel::TakeEvents() {
  std::vector<std::string> out;
  out.swap(events_);
  return out;
}

void ScaleModel::Advance(Micros now) {
  if (now <= now_) return;
  if (!faults_.stuck) heartbeat_time_ += now - now_;
  Step(now);
  if (fill_pending_done_ && Stable()) {
    fill_pending_done_ = false;
    fill_done_ = true;
    ++fills_;
    Event(fmt::format("fill done: gross {:.3f} kg (cutoff {:.3f} kg)", gross_kg(), cutoff_kg_));
  }
  noise_kg_ =
      Stable() ? 0.0
               : std::uniform_real_distribution<double>(-config_.noise_kg, config_.noise_kg)(rng_);
}

// Piecewise linear, so each phase is solved to its own end rather than sampled: a
// coarse tick still closes the valve exactly at the cutoff.
void ScaleModel::Step(Micros now) {
  while (now_ < now) {
    switch (phase_) {
      case Phase::kIdle:
        now_ = now;
        break;
      case Phase::kOpening: {
        const Micros open = phase_start_ + config_.valve_latency;
        if (now < open) {
          now_ = now;
          break;
        }
        now_ = open;
        phase_ = Phase::kFlowing;
        phase_start_ = open;
        Changed(open);
        break;
      }
      case Phase::kFlowing: {
        const double flow = config_.flow_kg_s;
        // The content at which the displayed gross meets the cutoff.
        const double target = cutoff_kg_ - tare_kg_ - drift_kg_ + zero_kg_;
        const double after = content_kg_ + flow * Seconds(now - now_);
        if (after < target) {
          content_kg_ = after;
          now_ = now;
          Changed(now);
          break;
        }
        const double need = std::max(0.0, target - content_kg_);
        const Micros cross = now_ + Micros(std::llround(need / flow * 1e6));
        content_kg_ = std::max(content_kg_, target);
        now_ = std::min(cross, now);
        phase_ = Phase::kInFlight;
        phase_start_ = now_;
        inflight_base_kg_ = content_kg_;
        // The unlock was for this one fill: relock as the valve shuts.
        interlock_ = 0;
        fill_pending_done_ = true;
        Changed(now_);
        Event(fmt::format("cutoff {:.3f} kg reached: valve shut, interlock relocked", cutoff_kg_));
        break;
      }
      case Phase::kInFlight: {
        const Micros end = phase_start_ + config_.overshoot_time;
        const Micros t = std::min(now, end);
        const double part = config_.overshoot_time.count() > 0
                                ? Seconds(t - phase_start_) / Seconds(config_.overshoot_time)
                                : 1.0;
        content_kg_ = inflight_base_kg_ + config_.overshoot_kg * part;
        now_ = t;
        Changed(t);
        if (t >= end) phase_ = Phase::kIdle;
        break;
      }
    }
  }
}

void ScaleModel::Refuse(const std::string& what, const std::string& why) {
  last_refusal_ = what + " refused: " + why;
  Event(last_refusal_);
}

void ScaleModel::Abort(const std::string& why, Micros now) {
  if (!ValveOpen()) return;
  phase_ = Phase::kIdle;
  interlock_ = 0;
  ++aborted_fills_;
  Changed(now);
  Event("valve shut: " + why + "; interlock relocked");
}

void ScaleModel::Start(Micros now) {
  std::string why;
  if (interlock_ != 1) {
    why = "the interlock is locked (register 6 is 0)";
  } else if (faults_.code != 0) {
    why = fmt::format("the indicator reports fault {}", faults_.code);
  } else if (!present_) {
    why = "no cylinder on the platform";
  } else if (gross_kg() > config_.capacity_kg) {
    why = "overload";
  } else if (phase_ != Phase::kIdle) {
    why = "a fill is already running";
  } else if (!(cutoff_kg_ > gross_kg())) {
    why = fmt::format("the cutoff {:.3f} kg is not above the gross {:.3f} kg", cutoff_kg_,
                      gross_kg());
  }
  if (!why.empty()) {
    ++refused_starts_;
    Refuse("start", why);
    return;
  }
  phase_ = Phase::kOpening;
  phase_start_ = now;
  fill_done_ = false;
  fill_pending_done_ = false;
  Changed(now);
  Event(fmt::format("start: valve opening, gross {:.3f} kg, cutoff {:.3f} kg", gross_kg(),
                    cutoff_kg_));
}

void ScaleModel::RunCommand(std::uint16_t command, Micros now) {
  switch (command) {
    case kStart:
      Start(now);
      break;
    case kStop:
      Abort("stop command", now);
      break;
    case kZero:
      // An indicator zeroes only an empty, settled platform within a few percent of
      // its capacity (OIML R76's zero-setting range is 4%).
      if (present_ || phase_ != Phase::kIdle) {
        ++refused_commands_;
        Refuse("zero", "zero takes an empty platform");
      } else if (std::abs(gross_kg()) > 0.04 * config_.capacity_kg) {
        ++refused_commands_;
        Refuse("zero", fmt::format("{:.3f} kg is outside the zero-setting range", gross_kg()));
      } else {
        zero_kg_ += gross_kg();
        ++zeros_;
        Changed(now);
        Event("zeroed");
      }
      break;
    default:
      break;  // kNone: nothing to do
  }
}

WriteOutcome ScaleModel::Write(int start, const std::vector<std::uint16_t>& values, Micros now,
                               const std::string& client, const std::string& wall_time) {
  Advance(now);
  const int end = start + static_cast<int>(values.size());
  auto value_at = [&](int reg) { return values[static_cast<std::size_t>(reg - start)]; };

  WriteOutcome outcome = WriteOutcome::kOk;
  if (values.empty() || start < 0 || end > kRegisterCount) {
    outcome = WriteOutcome::kIllegalDataAddress;
  } else {
    for (int reg = start; reg < end; ++reg) {
      if (!Writable(reg)) outcome = WriteOutcome::kIllegalDataAddress;
    }
    // Half a float32 would leave the cutoff as nobody wrote it.
    if (Covers(start, end, kCutoffHi) != Covers(start, end, kCutoffLo)) {
      outcome = WriteOutcome::kIllegalDataAddress;
    }
  }
  if (outcome == WriteOutcome::kOk) {
    if (Covers(start, end, kCutoffHi)) {
      const float cutoff = RegistersToFloat(value_at(kCutoffHi), value_at(kCutoffLo));
      if (!std::isfinite(cutoff) || cutoff < 0 || cutoff > config_.capacity_kg) {
        outcome = WriteOutcome::kIllegalDataValue;
      }
    }
    if (Covers(start, end, kCommand) && value_at(kCommand) > kZero) {
      outcome = WriteOutcome::kIllegalDataValue;
    }
    if (Covers(start, end, kInterlock) && value_at(kInterlock) > 1) {
      outcome = WriteOutcome::kIllegalDataValue;
    }
    if (Covers(start, end, kMessageCode) && value_at(kMessageCode) > kMaxMessageCode) {
      outcome = WriteOutcome::kIllegalDataValue;
    }
  }

  if (!values.empty() && Covers(start, end, kInterlock)) {
    interlock_log_.push_back(
        {wall_time, now_, value_at(kInterlock), client, outcome == WriteOutcome::kOk});
    if (interlock_log_.size() > kInterlockLogLimit) interlock_log_.pop_front();
    ++interlock_total_;
  }
  if (!values.empty() && Covers(start, end, kMessageCode)) {
    LogSignal("message_code", value_at(kMessageCode), client, wall_time,
              outcome == WriteOutcome::kOk);
  }
  if (outcome != WriteOutcome::kOk) return outcome;

  if (Covers(start, end, kCutoffHi)) {
    cutoff_kg_ = RegistersToFloat(value_at(kCutoffHi), value_at(kCutoffLo));
  }
  if (Covers(start, end, kInterlock)) {
    interlock_ = value_at(kInterlock);
    // Locked means the valve cannot be open: locking mid-fill is the driver's way out.
    if (interlock_ == 0) Abort("interlock locked during the fill", now_);
  }
  if (Covers(start, end, kCommand)) RunCommand(value_at(kCommand), now_);
  if (Covers(start, end, kMessageCode)) message_code_ = value_at(kMessageCode);
  return WriteOutcome::kOk;
}

WriteOutcome ScaleModel::WriteCoils(int start, const std::vector<bool>& values, Micros now,
                                    const std::string& client, const std::string& wall_time) {
  Advance(now);
  const int end = start + static_cast<int>(values.size());
  const WriteOutcome outcome = values.empty() || start < 0 || end > kCoilCount
                                   ? WriteOutcome::kIllegalDataAddress
                                   : WriteOutcome::kOk;
  for (int coil = std::max(start, 0); coil < std::min(end, static_cast<int>(kCoilCount)); ++coil) {
    const bool on = values[static_cast<std::size_t>(coil - start)];
    LogSignal(CoilName(coil), on ? 1 : 0, client, wall_time, outcome == WriteOutcome::kOk);
    if (outcome == WriteOutcome::kOk) coils_[static_cast<std::size_t>(coil)] = on;
  }
  return outcome;
}

void ScaleModel::LogSignal(const char* which, std::uint16_t value, const std::string& client,
                           const std::string& wall_time, bool accepted) {
  signal_log_.push_back({wall_time, now_, which, value, client, accepted});
  if (signal_log_.size() > kSignalLogLimit) signal_log_.pop_front();
  ++signal_total_;
}

std::string ScaleModel::Place(double tare_kg, double content_kg, Micros now) {
  Advance(now);
  if (!std::isfinite(tare_kg) || !std::isfinite(content_kg) || tare_kg <= 0 || content_kg < 0) {
    return "place needs a tare above 0 kg and a content of 0 kg or more";
  }
  if (tare_kg + content_kg > 3 * config_.capacity_kg) {
    return fmt::format("{:g} kg would break a {:g} kg platform", tare_kg + content_kg,
                       config_.capacity_kg);
  }
  if (present_) return "a cylinder is already on the platform: remove it first";
  present_ = true;
  tare_kg_ = tare_kg;
  content_kg_ = content_kg;
  fill_done_ = false;
  fill_pending_done_ = false;
  Changed(now_);
  Event(fmt::format("cylinder placed: tare {:.3f} kg, content {:.3f} kg", tare_kg, content_kg));
  return "";
}

std::string ScaleModel::Remove(Micros now) {
  Advance(now);
  if (!present_) return "no cylinder on the platform";
  Abort("cylinder removed", now_);
  phase_ = Phase::kIdle;  // gas still in flight falls on nothing
  present_ = false;
  tare_kg_ = content_kg_ = 0;
  fill_done_ = false;
  fill_pending_done_ = false;
  Changed(now_);
  Event("cylinder removed");
  return "";
}

std::string ScaleModel::Drift(double kg, Micros now) {
  Advance(now);
  if (!std::isfinite(kg) || std::abs(kg) > config_.capacity_kg) {
    return fmt::format("drift must be a weight within +-{:g} kg", config_.capacity_kg);
  }
  drift_kg_ = kg;
  Changed(now_);
  return "";
}

void ScaleModel::SetDisconnect(Micros now) {
  Advance(now);
  faults_.disconnect = true;
  Event("fault: disconnect");
}

void ScaleModel::SetStuck(Micros now) {
  Advance(now);
  if (!faults_.stuck) stuck_gross_ = static_cast<float>(displayed_gross_kg());
  faults_.stuck = true;
  Event("fault: stuck");
}

void ScaleModel::SetNan(Micros now) {
  Advance(now);
  faults_.nan = true;
  Event("fault: nan");
}

std::string ScaleModel::SetOvershoot(double kg, Micros now) {
  Advance(now);
  if (!std::isfinite(kg) || kg < 0 || kg > 10) return "overshoot must be 0 to 10 kg";
  config_.overshoot_kg = kg;
  Event(fmt::format("fault: overshoot {:.3f} kg", kg));
  return "";
}

std::string ScaleModel::SetFaultCode(long code, Micros now) {
  Advance(now);
  if (code < 1 || code > 0xFFFF) return "fault code must be 1 to 65535 (clear removes it)";
  faults_.code = static_cast<std::uint16_t>(code);
  Abort(fmt::format("indicator fault {}", code), now_);
  Event(fmt::format("fault: code {}", code));
  return "";
}

void ScaleModel::ClearFaults(Micros now) {
  Advance(now);
  faults_ = Faults{};
  config_.overshoot_kg = default_overshoot_kg_;
  Event("faults cleared");
}

}  // namespace pingma::scalesim
