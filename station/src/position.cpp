// The filling position's state machine. Every path that opened the valve ends in
// Finish, which records the fill and then writes the interlock locked.
#include "position.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

namespace pingma::station {

using nlohmann::json;
using Steady = std::chrono::steady_clock;

namespace {

constexpr std::string_view kBadgePrefix = "OP:";

// Weights in the record are kept to the gram, as the registry compares them.
double Grams(double kg) {
  return std::round(kg * 1000.0) / 1000.0;
}

// "14.52" for the operator's lines.
std::string Kg(double kg) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", kg);
  return text;
}

std::string ReasonLine(const CheckAnswer& a) {
  std::string out;
  for (const ReasonText& r : a.reasons) {
    if (!out.empty()) out += "; ";
    out += r.code + " " + r.message;
  }
  return out;
}

json AnswerJson(const CheckAnswer& a) {
  json reasons = json::array();
  for (const ReasonText& r : a.reasons)
    reasons.push_back({{"code", r.code}, {"message", r.message}});
  json out = {{"decision", a.allowed ? "allow" : "block"},
              {"check_id", a.check_id},
              {"offline", a.offline},
              {"reasons", reasons},
              {"flagged_for_scrap", a.flagged_for_scrap}};
  if (a.cylinder) {
    out["cylinder"] = {{"code", a.cylinder->code},
                       {"model", a.cylinder->model},
                       {"owner_company_id", a.cylinder->owner_company_id},
                       {"next_inspection_due", a.cylinder->next_inspection_due},
                       {"state", a.cylinder->state}};
  }
  if (a.fill) {
    out["fill"] = {{"tare_kg", a.fill->tare_kg},
                   {"min_kg", a.fill->min_kg},
                   {"max_kg", a.fill->max_kg},
                   {"target_kg", a.fill->target_kg}};
  }
  return out;
}

}  // namespace

ScaleSignals SignalsFor(const std::string& state, const std::string& alarm,
                        const std::string& fault, bool online) {
  ScaleSignals s;
  s.amber = !online;
  if (!alarm.empty()) {
    s.red = s.buzzer = true;
    s.message = alarm == "decant" ? ScaleMessage::kHoldForDecant : ScaleMessage::kBlocked;
  } else if (state == "filling") {
    s.green = true;
    s.message = ScaleMessage::kFilling;
  } else if (!fault.empty()) {
    s.red = true;
    s.message = ScaleMessage::kFault;
  } else if (!online) {
    s.message = ScaleMessage::kOffline;
  }
  return s;
}

// A fill between its begin in the journal and its record.
struct Position::Fill {
  std::string event_id;
  json record;  // the POST /v1/fills body being built
  FillLimits limits;
  double gross_before = 0;
  double cutoff = 0;
  double last_gross = 0;
  bool have_gross = false;
};

Position::Position(PositionOptions options, Scale& scale, Decider& decider, Journal& journal,
                   EventSink& sink, const Clock& clock)
    : options_(std::move(options)),
      scale_(scale),
      decider_(decider),
      journal_(journal),
      sink_(sink),
      clock_(clock) {
  snapshot_.id = options_.position_id;
  snapshot_.operator_id = options_.operator_id;
  snapshot_.state = "idle";
}

void Position::Submit(const std::string& scan_text) {
  // A badge is taken at any time; a cylinder scan while a fill runs is refused: the
  // cylinder on the scale is the one being filled.
  const bool badge = scan_text.rfind(kBadgePrefix, 0) == 0;
  bool busy = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    busy = filling_ && !badge;
    if (!busy) scans_.push_back({scan_text, Steady::now()});
  }
  if (busy) {
    Report({{"event", "scan_ignored"}, {"raw", scan_text}, {"why", "a fill is running"}});
    sink_.Say(options_.position_id, "充装进行中，扫码已忽略 / A fill is running: scan ignored");
    return;
  }
  wake_.notify_all();
}

void Position::Wake() {
  wake_.notify_all();
}

void Position::Acknowledge() {
  std::string was;
  {
    std::lock_guard<std::mutex> lock(mu_);
    was = snapshot_.alarm;
    snapshot_.alarm.clear();
    if (snapshot_.state == "blocked") snapshot_.state = "idle";
    kicked_ = true;
  }
  Report({{"event", "acknowledged"}, {"alarm", was}});
  const PositionSnapshot now = Snapshot();
  Show({{"event", "state"}, {"state", now.state}, {"alarm", now.alarm}});
  wake_.notify_all();
}

void Position::SetOnline(bool online) {
  if (online_.exchange(online) == online) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    kicked_ = true;
  }
  wake_.notify_all();
}

void Position::SetAlarm(const char* alarm) {
  std::string state;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (snapshot_.alarm == alarm) return;
    snapshot_.alarm = alarm;
    state = snapshot_.state;
  }
  Show({{"event", "state"}, {"state", state}, {"alarm", alarm}});
}

void Position::UpdateSignals() {
  if (!scale_.has_signals() || !scale_.connected()) return;
  ScaleSignals want;
  {
    std::lock_guard<std::mutex> lock(mu_);
    want = SignalsFor(snapshot_.state, snapshot_.alarm, snapshot_.scale_fault, online_);
  }
  if (signals_written_ && *signals_written_ == want) return;
  const Status s = scale_.WriteSignals(want);
  if (s.ok()) {
    signals_written_ = want;
    signal_error_.clear();
    return;
  }
  signals_written_.reset();            // tried again at the next turn of the loop
  if (s.message() != signal_error_) {  // once per distinct error, not once per poll
    signal_error_ = s.message();
    Report({{"event", "signal_error"}, {"error", s.message()}});
  }
}

void Position::ReportWeight(const ScaleReading& r) {
  const auto now = Steady::now();
  const bool changed = !reported_gross_ || ToGrams(*reported_gross_) != ToGrams(r.gross_kg) ||
                       reported_stable_ != r.stable;
  if (!changed || now - last_weight_report_ < std::chrono::milliseconds(200)) return;
  last_weight_report_ = now;
  reported_gross_ = r.gross_kg;
  reported_stable_ = r.stable;
  Show({{"event", "weight"}, {"gross_kg", r.gross_kg}, {"stable", r.stable}});
}

PositionSnapshot Position::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return snapshot_;
}

void Position::SetState(const char* state) {
  std::string alarm;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (snapshot_.state == state) return;
    snapshot_.state = state;
    alarm = snapshot_.alarm;
  }
  Show({{"event", "state"}, {"state", state}, {"alarm", alarm}});
}

json Position::Stamped(json event) const {
  event["position"] = options_.position_id;
  event["at"] = clock_.Now().ToString();
  return event;
}

void Position::Report(json event) {
  sink_.Emit(Stamped(std::move(event)));
}

void Position::Show(json event) {
  sink_.Show(Stamped(std::move(event)));
}

bool Position::EnsureConnected() {
  if (scale_.connected()) return true;
  const auto now = Steady::now();
  if (now < next_connect_) return false;
  const Status s = scale_.Connect();  // writes the interlock locked before anything else
  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_.scale_connected = s.ok();
  }
  if (s.ok()) {
    backoff_ = std::chrono::milliseconds(0);
    Report({{"event", "scale_connected"}, {"scale", scale_.Describe()}, {"interlock", "locked"}});
    signals_written_.reset();  // a restarted indicator shows what it shows: say it again
    UpdateSignals();
    return true;
  }
  backoff_ = backoff_.count() == 0 ? options_.reconnect_min
                                   : std::min(backoff_ * 2, options_.reconnect_max);
  next_connect_ = now + backoff_;
  Report({{"event", "scale_unavailable"},
          {"scale", scale_.Describe()},
          {"error", s.message()},
          {"retry_ms", backoff_.count()}});
  return false;
}

Result<ScaleReading> Position::ReadScale() {
  Result<ScaleReading> r = scale_.Read();
  CameRound();  // a fill's loop reads the scale every poll
  std::unique_lock<std::mutex> lock(mu_);
  snapshot_.scale_connected = scale_.connected();
  if (!r.ok()) return r;
  // A float32 register gives 16.899999618530273 for 16.9: weights are kept to the
  // gram, as the registry compares them.
  r->gross_kg = Grams(r->gross_kg);
  snapshot_.gross_kg = r->gross_kg;
  snapshot_.stable = r->stable;
  // An indicator whose heartbeat stops is frozen: its weight cannot be trusted.
  const auto now = Steady::now();
  if (r->heartbeat != idle_beat_) {
    idle_beat_ = r->heartbeat;
    idle_beat_changed_ = now;
  }
  std::string fault;
  if (r->fault) {
    fault = "fault" + (r->fault_code ? " " + std::to_string(*r->fault_code) : std::string());
  } else if (r->heartbeat && now - idle_beat_changed_ > options_.heartbeat_timeout) {
    fault = "frozen";
  }
  const bool fault_changed = fault != snapshot_.scale_fault;
  snapshot_.scale_fault = fault;
  lock.unlock();
  if (fault_changed) Report({{"event", "scale_fault"}, {"fault", fault}});
  ReportWeight(*r);
  return r;
}

std::optional<ScaleReading> Position::ReadStable(std::chrono::milliseconds wait,
                                                 const std::atomic<bool>& stop) {
  const auto deadline = Steady::now() + wait;
  bool reported = false;  // one scale_error per wait, not one per poll
  while (!stop) {
    if (EnsureConnected()) {
      Result<ScaleReading> r = ReadScale();
      if (r.ok()) {
        if (r->stable && !r->fault) return *r;
      } else if (!reported) {
        reported = true;
        Report({{"event", "scale_error"}, {"error", r.status().message()}});
      }
    }
    if (Steady::now() >= deadline) break;
    std::this_thread::sleep_for(options_.poll_interval);
  }
  return std::nullopt;
}

void Position::HandleScan(const std::string& text, Steady::time_point submitted,
                          const std::atomic<bool>& stop) {
  const Steady::time_point taken = Steady::now();
  if (text.rfind(kBadgePrefix, 0) == 0) {
    const std::string op = text.substr(kBadgePrefix.size());
    if (op.empty() || op.size() > 64) {
      Report({{"event", "badge_refused"}, {"raw", text}, {"why", "no operator id after OP:"}});
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      options_.operator_id = op;
      snapshot_.operator_id = op;
    }
    Report({{"event", "operator"}, {"operator_id", op}});
    sink_.Say(options_.position_id, "操作员 / Operator: " + op);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_.last_scan = text;
    // The next scan ends the last one's alarm on the screen at once; the scale's
    // buzzer and lamps follow with this scan's decision, so that no signal write
    // stands between the scan and the check.
    snapshot_.alarm.clear();
  }
  SetState("scanned");
  // The scan: on the screens at once; in the log just before what became of it, so
  // that no log line is written (and read) while the check is under way.
  const json scan_event =
      Stamped({{"event", "scan"}, {"raw", text}, {"operator_id", options_.operator_id}});
  sink_.Show(scan_event);
  bool scan_logged = false;
  const auto log_scan = [&] {
    if (!scan_logged) sink_.Log(scan_event);
    scan_logged = true;
  };

  // The empty weight goes with the check (tare mismatch, residual); without a stable
  // reading of a cylinder on the platform nothing can be filled.
  const Steady::time_point weighing = Steady::now();
  const std::optional<ScaleReading> empty = ReadStable(options_.stable_wait, stop);
  if (!empty || !empty->present) {
    const char* why = !empty ? "no stable reading from the scale" : "no cylinder on the scale";
    log_scan();
    Report({{"event", "scan_refused"}, {"raw", text}, {"why", why}});
    sink_.Say(options_.position_id, std::string(!empty ? "秤无稳定读数" : "秤上无气瓶") + " / " +
                                        why + ": 未充装 / not filled");
    SetState("idle");
    return;
  }

  SetState("checking");
  CheckRequest request{options_.station_id, options_.operator_id, text, empty->gross_kg, {}};
  const Steady::time_point checking = Steady::now();
  Result<CheckAnswer> answer = decider_.Decide(request);
  const Steady::time_point decided = Steady::now();
  log_scan();
  if (!answer.ok()) {
    Report({{"event", "decision"},
            {"raw", text},
            {"decision", "error"},
            {"error", answer.status().message()}});
    sink_.Say(options_.position_id, "无法判定，保持锁定 / No decision, the scale stays locked: " +
                                        answer.status().message());
    SetState("idle");
    return;
  }
  if (answer->offline) {
    // Decided on the replica: journalled before the operator sees it, so that the
    // registry gets every offline check, refused or allowed, once it answers again.
    if (Status s = JournalOfflineCheck(request, *answer); !s.ok()) {
      Report({{"event", "decision"},
              {"raw", text},
              {"decision", "error"},
              {"error", "cannot journal the offline check: " + s.message()}});
      sink_.Say(options_.position_id,
                "离线判定无法记录，保持锁定 / Cannot journal the offline check, the scale stays "
                "locked: " +
                    s.message());
      SetState("idle");
      return;
    }
  }
  json decision = AnswerJson(*answer);
  decision["raw"] = text;
  decision["empty_gross_kg"] = empty->gross_kg;
  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_.last_decision_json = decision.dump();
    if (!answer->allowed) ++snapshot_.blocks;
  }
  json event = std::move(decision);
  event["event"] = "decision";
  // Where the time went, from the scanner's line to this event (ms): the hand-over to
  // this position's thread, its events before the weighing, the weighing, the check
  // (and of it, libcurl's own time before sending, and the wait for the answer).
  const auto ms = [](Steady::duration d) {
    return std::round(std::chrono::duration<double, std::milli>(d).count() * 1000) / 1000;
  };
  event["timing_ms"] = {
      {"queued", ms(taken - submitted)},       {"before_weighing", ms(weighing - taken)},
      {"weighing", ms(checking - weighing)},   {"check", ms(decided - checking)},
      {"check_sending", answer->sending_ms},   {"check_answered", answer->answered_ms},
      {"total", ms(Steady::now() - submitted)}};
  Report(std::move(event));
  const std::string code = answer->cylinder ? answer->cylinder->code : text;
  const std::string where = answer->offline ? " [离线 offline]" : "";
  if (!answer->allowed) {
    sink_.Say(options_.position_id,
              "禁止充装 BLOCKED " + code + where + ": " + ReasonLine(*answer));
    if (answer->flagged_for_scrap) {
      sink_.Say(options_.position_id, "已标记报废，请移交检验机构 / Flagged for scrapping");
    }
    SetAlarm("blocked");
    SetState("blocked");
    UpdateSignals();  // the interlock was never unlocked: red and the buzzer
    return;
  }
  if (!answer->fill) {
    Report({{"event", "scan_refused"}, {"raw", text}, {"why", "an allow without fill limits"}});
    SetState("idle");
    return;
  }
  sink_.Say(options_.position_id, "允许充装 ALLOWED " + code + where + ": 目标净重 target " +
                                      Kg(answer->fill->target_kg) + " kg");
  RunFill(*answer, *empty, text, stop);
}

Status Position::JournalOfflineCheck(const CheckRequest& request, CheckAnswer& answer) {
  json decision = json::parse(answer.json, nullptr, false);
  if (!decision.is_object()) return Status::Internal("the replica's decision is not JSON");
  answer.check_id = NewUuid();
  decision["check_id"] = answer.check_id;  // the fill made on it carries it too
  answer.json = decision.dump();
  // POST /v1/fill-checks/offline's body.
  json record = {{"check_id", answer.check_id},
                 {"station_id", request.station_id},
                 {"operator_id", request.operator_id},
                 {"scan", request.scan},
                 {"at", decision.value("decided_at", clock_.Now().ToString())},
                 {"decision", decision.value("decision", "block")},
                 {"reasons", decision.value("reasons", json::array())},
                 {"replica_synced_at", decision.value("replica_synced_at", json(nullptr))}};
  if (request.empty_gross_kg) record["empty_gross_kg"] = Grams(*request.empty_gross_kg);
  if (!request.defects.empty()) record["defects"] = request.defects;
  return journal_.RecordOfflineCheck(answer.check_id, record.dump());
}

void Position::RunFill(const CheckAnswer& answer, const ScaleReading& empty, const std::string& raw,
                       const std::atomic<bool>& stop) {
  Fill fill;
  fill.event_id = NewUuid();
  fill.limits = *answer.fill;
  fill.gross_before = empty.gross_kg;
  fill.cutoff = fill.limits.tare_kg + fill.limits.target_kg;
  fill.last_gross = empty.gross_kg;
  fill.have_gross = true;
  fill.record = {{"event_id", fill.event_id},
                 {"code", answer.cylinder ? answer.cylinder->code : raw},
                 {"station_id", options_.station_id},
                 {"operator_id", options_.operator_id},
                 {"scale_id", options_.scale_id},
                 {"started_at", clock_.Now().ToString()},
                 {"tare_kg", fill.limits.tare_kg},
                 {"gross_before_kg", Grams(empty.gross_kg)},
                 {"residual_kg", Grams(empty.gross_kg - fill.limits.tare_kg)},
                 {"limits", {{"min_kg", fill.limits.min_kg}, {"max_kg", fill.limits.max_kg}}}};
  if (answer.offline) {
    fill.record["offline"] = true;
    fill.record["offline_decision"] = json::parse(answer.json, nullptr, false);
  } else {
    fill.record["check_id"] = answer.check_id;
  }
  if (fill.cutoff <= empty.gross_kg) {
    Report({{"event", "fill_refused"},
            {"code", fill.record["code"]},
            {"why", "the cylinder already holds its target"}});
    sink_.Say(options_.position_id, "气瓶已满，无需充装 / Already at its target: not filled");
    SetState("idle");
    return;
  }
  // Begun in the journal before the valve may open: a crash from here on is found
  // again at start and recorded as interrupted.
  if (Status s = journal_.Begin({fill.event_id, options_.position_id, fill.record.dump()});
      !s.ok()) {
    Report({{"event", "fill_refused"}, {"code", fill.record["code"]}, {"why", s.message()}});
    sink_.Say(options_.position_id, "记录失败，未充装 / Cannot journal the fill: " + s.message());
    SetState("idle");
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    filling_ = true;
  }
  SetState("filling");
  Status s = scale_.WriteCutoff(fill.cutoff);
  if (s.ok()) s = scale_.SetInterlock(true);
  if (s.ok()) s = scale_.Send(ScaleCommand::kStart);
  if (!s.ok()) {
    Finish(fill, "interrupted", std::nullopt, "the scale refused the start: " + s.message());
    return;
  }
  json running = {{"event_id", fill.event_id},
                  {"code", fill.record["code"]},
                  {"cutoff_gross_kg", fill.cutoff},
                  {"target_kg", fill.limits.target_kg},
                  {"min_kg", fill.limits.min_kg},
                  {"max_kg", fill.limits.max_kg},
                  {"tare_kg", fill.limits.tare_kg},
                  {"gross_before_kg", Grams(empty.gross_kg)},
                  {"started_at", fill.record["started_at"]},
                  {"offline", answer.offline}};
  {
    std::lock_guard<std::mutex> lock(mu_);
    snapshot_.fill_json = running.dump();
  }
  json started_event = running;
  started_event["event"] = "fill_started";
  Report(started_event);
  UpdateSignals();  // after the interlock: green

  const auto started = Steady::now();
  auto last_beat_change = started;
  std::optional<std::uint32_t> last_beat;
  bool valve_seen_open = false;
  while (true) {
    if (stop) {
      (void)scale_.Send(ScaleCommand::kStop);
      Finish(fill, "interrupted", std::nullopt, "the station is stopping");
      return;
    }
    Result<ScaleReading> r = ReadScale();
    if (!r.ok()) {
      if (!scale_.connected()) {
        // Lost mid-fill: the indicator still closes at the cutoff. Record the fill as
        // interrupted with what a reconnect (locked first) reads.
        std::optional<double> after;
        const auto until = Steady::now() + options_.stable_wait;
        while (!stop && Steady::now() < until) {
          if (EnsureConnected()) {
            Result<ScaleReading> again = ReadScale();
            if (again.ok()) after = again->gross_kg;
            break;
          }
          std::this_thread::sleep_for(options_.poll_interval);
        }
        Finish(fill, "interrupted", after, "the scale was lost mid-fill: " + r.status().message());
        return;
      }
      (void)scale_.Send(ScaleCommand::kStop);
      Finish(fill, "interrupted", std::nullopt, "a bad reading mid-fill: " + r.status().message());
      return;
    }
    fill.last_gross = r->gross_kg;
    const auto now = Steady::now();
    if (r->heartbeat && r->heartbeat != last_beat) {
      last_beat = r->heartbeat;
      last_beat_change = now;
    }
    if (r->heartbeat && now - last_beat_change > options_.heartbeat_timeout) {
      (void)scale_.Send(ScaleCommand::kStop);
      Finish(fill, "interrupted", r->gross_kg, "the scale's heartbeat stopped (frozen indicator)");
      return;
    }
    if (r->fault || r->overload) {
      (void)scale_.Send(ScaleCommand::kStop);
      Finish(fill, "interrupted", r->gross_kg,
             r->fault ? "the scale reports a fault" : "the scale reports an overload");
      return;
    }
    if (!r->present) {
      (void)scale_.Send(ScaleCommand::kStop);
      Finish(fill, "interrupted", std::nullopt, "the cylinder left the platform");
      return;
    }
    valve_seen_open = valve_seen_open || r->valve_open;
    if (r->fill_done && !r->valve_open) break;
    if (now - started > options_.fill_timeout) {
      (void)scale_.Send(ScaleCommand::kStop);
      Finish(fill, "interrupted", r->gross_kg, "the fill took longer than its limit");
      return;
    }
    std::this_thread::sleep_for(options_.poll_interval);
  }
  // Done: the final weight once it has settled.
  const std::optional<ScaleReading> final_reading = ReadStable(options_.stable_wait, stop);
  if (!final_reading) {
    Finish(fill, "interrupted", fill.last_gross, "no stable weight after the fill");
    return;
  }
  const double net = final_reading->gross_kg - fill.limits.tare_kg;
  const std::int64_t net_g = ToGrams(net);
  std::string result = "ok";
  if (net_g > ToGrams(fill.limits.max_kg)) result = "overfill";
  if (net_g < ToGrams(fill.limits.min_kg)) result = "underfill";
  Finish(fill, result, final_reading->gross_kg, "");
}

void Position::Finish(Fill& fill, const std::string& result, std::optional<double> gross_after,
                      const std::string& why) {
  SetState("recording");
  const double after = gross_after.value_or(fill.last_gross);
  json& rec = fill.record;
  rec.erase("limits");
  rec["ended_at"] = clock_.Now().ToString();
  rec["gross_after_kg"] = Grams(std::max(0.0, after));
  rec["net_kg"] = Grams(after - fill.limits.tare_kg);
  rec["result"] = result;
  const bool weighed = result != "interrupted";
  rec["post_checks"] = {{"reweigh", !weighed ? "not_done" : result == "ok" ? "pass" : "fail"}};
  if (!why.empty()) rec["interruption"] = why;
  // Recorded before the valve relocks (DOMAIN.md "Records"); a failure to record is
  // reported, and the scale is locked all the same.
  const Status recorded = journal_.Record(fill.event_id, rec.dump());
  const Status locked = scale_.SetInterlock(false);
  {
    std::lock_guard<std::mutex> lock(mu_);
    filling_ = false;
    ++snapshot_.fills;
    ++snapshot_.fills_by_result[result];
    snapshot_.fill_json.clear();
    snapshot_.last_fill_json = rec.dump();
  }
  if (result == "overfill") SetAlarm("decant");  // held until acknowledged
  json event = {{"event", "fill_finished"}, {"record", rec}, {"interlock", "locked"}};
  if (!recorded.ok()) event["journal_error"] = recorded.message();
  if (!locked.ok()) event["interlock"] = "lock_failed: " + locked.message();
  Report(event);
  const std::string code = rec.value("code", "");
  if (result == "ok") {
    sink_.Say(options_.position_id,
              "充装完成 Filled " + code + ": 净重 net " + Kg(rec["net_kg"].get<double>()) + " kg");
  } else if (result == "overfill") {
    sink_.Say(options_.position_id, "超装！扣留气瓶，抽残后复秤 / OVERFILLED " + code +
                                        ": hold the cylinder, decant and re-weigh");
  } else if (result == "underfill") {
    sink_.Say(options_.position_id,
              "欠装 Underfilled " + code + ": 请补充或复秤 / top up or re-weigh");
  } else {
    sink_.Say(options_.position_id, "充装中断 Interrupted " + code + ": " + why);
  }
  SetState("idle");
  UpdateSignals();  // after the relock
}

Status Position::RecoverUnfinished() {
  PINGMA_ASSIGN_OR_RETURN(std::vector<BegunFill> open, journal_.Unfinished());
  for (const BegunFill& b : open) {
    if (b.position_id != options_.position_id) continue;
    Fill fill;
    fill.event_id = b.event_id;
    fill.record = json::parse(b.record_json, nullptr, false);
    if (fill.record.is_discarded()) fill.record = json::object();
    fill.limits.tare_kg = fill.record.value("tare_kg", 0.0);
    fill.last_gross = fill.record.value("gross_before_kg", 0.0);
    std::optional<double> now_gross;
    if (EnsureConnected()) {  // locked first
      Result<ScaleReading> r = ReadScale();
      if (r.ok()) now_gross = r->gross_kg;
    }
    Report({{"event", "fill_recovered"}, {"event_id", b.event_id}});
    Finish(fill, "interrupted", now_gross, "the station stopped during the fill");
  }
  return Status::Ok();
}

void Position::Run(const std::atomic<bool>& stop) {
  while (!stop) {
    CameRound();
    std::string scan;
    Steady::time_point submitted;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait_for(lock, options_.idle_poll_interval,
                     [&] { return stop.load() || !scans_.empty() || kicked_; });
      kicked_ = false;
      if (stop) break;
      if (!scans_.empty()) {
        scan = std::move(scans_.front().text);
        submitted = scans_.front().at;
        scans_.pop_front();
      }
    }
    if (!scan.empty()) {
      HandleScan(scan, submitted, stop);
      UpdateSignals();
      continue;
    }
    // Idle: keep the scale connected, its weight on the screen, its signals current.
    if (EnsureConnected()) (void)ReadScale();
    UpdateSignals();
  }
  if (scale_.connected()) (void)scale_.SetInterlock(false);
}

}  // namespace pingma::station
