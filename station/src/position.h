// A filling position: one scanner, one scale, and the state machine between them.
//
//   idle -> scanned -> checking -> blocked (stays locked, says why)      -> idle
//                               -> allowed -> filling -> recording       -> idle
//
// The scale's interlock is written unlocked only after an allowing decision and
// after the fill has been begun in the journal; it is written locked again after
// the fill's record is in the journal. The scale's signals (lamps, buzzer, the
// indicator's message) follow the state, each written after the interlock, never
// instead of it: green during an allowed fill, red and the buzzer on a block or an
// overfill until the operator's acknowledgement or the next scan's decision, red on a
// faulty or frozen indicator, amber while the station decides offline, off when idle.
// No signal write stands between a scan and its check.
//
// Each position runs on a thread of its own (Run), which alone talks to the scale;
// scans arrive from the scanner thread through Submit. Thread-safe: Submit,
// Acknowledge, SetOnline and Snapshot may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "journal.h"
#include "pingma/common/domain.h"
#include "registry_client.h"
#include "scale.h"

namespace pingma::station {

/// Decides a fill check: the registry within its deadline, else the replica.
class Decider {
 public:
  virtual ~Decider() = default;
  /// Errors only when neither could decide (then nothing may be filled).
  virtual Result<CheckAnswer> Decide(const CheckRequest& request) = 0;
};

/// Where a position reports what happens: one JSON object per event (see
/// PositionEvent in position.cpp for the kinds) and, for the operator, lines in
/// Chinese and English. Must be safe to call from several position threads.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void Emit(const nlohmann::json& event) = 0;
  /// An event for the operator's screens only (the position's state, the live weight
  /// several times a second): not for the station's log. By default, as Emit.
  virtual void Show(const nlohmann::json& event) { Emit(event); }
  /// An event for the station's log only (one the screens were shown already), which
  /// may be held until the next Emit and written with it. By default, as Emit.
  virtual void Log(const nlohmann::json& event) { Emit(event); }
  virtual void Say(const std::string& position_id, const std::string& text) = 0;
};

struct PositionOptions {
  std::string station_id;
  std::string position_id;
  std::string scale_id;
  std::string operator_id;  ///< the operator at start; an `OP:<id>` scan changes it
  std::chrono::milliseconds poll_interval{100};
  std::chrono::milliseconds idle_poll_interval{1000};
  std::chrono::milliseconds stable_wait{5000};        ///< for a stable empty or final weight
  std::chrono::milliseconds heartbeat_timeout{3000};  ///< a frozen indicator stops a fill
  std::chrono::milliseconds fill_timeout{180000};     ///< the longest a fill may run
  std::chrono::milliseconds reconnect_min{250}, reconnect_max{5000};
};

/// What the status page and the operator's screen show of a position.
struct PositionSnapshot {
  std::string id;
  std::string operator_id;
  std::string state;  ///< idle, scanned, checking, blocked, filling, recording
  bool scale_connected = false;
  std::optional<double> gross_kg;
  bool stable = false;
  /// The indicator reports a fault, or its heartbeat stopped (frozen): why, or "".
  std::string scale_fault;
  /// "" none; "blocked" (a refused cylinder) or "decant" (an overfill to hold): the
  /// alarm sounds until the next scan or the operator's acknowledgement.
  std::string alarm;
  std::string last_scan;
  std::string last_decision_json;  ///< "" before the first decision
  std::string fill_json;           ///< the running fill: {event_id, code, target_kg, ...}; ""
  std::string last_fill_json;      ///< the last fill's record as journalled; ""
  std::int64_t fills = 0;
  std::int64_t blocks = 0;
  /// The fills recorded, by their result: ok, overfill, underfill, interrupted.
  std::map<std::string, std::int64_t> fills_by_result;
};

/// The signals a position's state calls for (pure; see the file's comment). `state`
/// and `alarm` as in PositionSnapshot; `fault` non-empty for a faulty indicator.
ScaleSignals SignalsFor(const std::string& state, const std::string& alarm,
                        const std::string& fault, bool online);

class Position {
 public:
  Position(PositionOptions options, Scale& scale, Decider& decider, Journal& journal,
           EventSink& sink, const Clock& clock);

  /// Hands over a scan line (any thread). Dropped with a notice while a fill runs.
  void Submit(const std::string& scan_text);
  /// Closes fills begun before a crash: each is recorded as interrupted, with the
  /// scale's weight now when it can be read. Call before Run.
  Status RecoverUnfinished();
  /// The position's loop: keeps the scale connected (locked first on every
  /// connect), handles scans, fills. Returns when `stop` is set; the interlock is
  /// written locked on the way out.
  void Run(const std::atomic<bool>& stop);
  void Wake();  ///< makes Run look at `stop` now
  /// The operator saw the block (or the overfill): the alarm stops (any thread).
  void Acknowledge();
  /// Whether the station reaches the registry: the amber lamp (any thread).
  void SetOnline(bool online);
  PositionSnapshot Snapshot() const;
  /// When the position's thread last came round its loop or read its scale (any
  /// thread): what the watchdog watches.
  std::chrono::steady_clock::time_point LastRound() const {
    return std::chrono::steady_clock::time_point(
        std::chrono::steady_clock::duration(last_round_.load()));
  }

 private:
  void CameRound() { last_round_ = std::chrono::steady_clock::now().time_since_epoch().count(); }
  struct Fill;
  void HandleScan(const std::string& text, std::chrono::steady_clock::time_point submitted,
                  const std::atomic<bool>& stop);
  bool EnsureConnected();
  /// Reads the scale, weights rounded to the gram, and keeps the status page's copy.
  Result<ScaleReading> ReadScale();
  std::optional<ScaleReading> ReadStable(std::chrono::milliseconds wait,
                                         const std::atomic<bool>& stop);
  /// Puts a check decided on the replica in the journal's outbox of checks, with a
  /// new check_id that the answer (and a fill made on it) then carries.
  Status JournalOfflineCheck(const CheckRequest& request, CheckAnswer& answer);
  void RunFill(const CheckAnswer& answer, const ScaleReading& empty, const std::string& raw,
               const std::atomic<bool>& stop);
  void Finish(Fill& fill, const std::string& result, std::optional<double> gross_after,
              const std::string& why);
  void SetState(const char* state);
  void SetAlarm(const char* alarm);
  /// The event with this position's id and the time, as every event carries them.
  nlohmann::json Stamped(nlohmann::json event) const;
  void Report(nlohmann::json event);
  void Show(nlohmann::json event);  ///< Report, to the screens only
  /// Writes the signals the state calls for, if they differ from those written
  /// (position thread; never before an interlock write that the state depends on).
  void UpdateSignals();
  /// A weight event for the screen, at most every 200 ms, when the reading changed.
  void ReportWeight(const ScaleReading& r);

  PositionOptions options_;
  Scale& scale_;
  Decider& decider_;
  Journal& journal_;
  EventSink& sink_;
  const Clock& clock_;

  mutable std::mutex mu_;  // guards the queue and the snapshot
  std::condition_variable wake_;
  struct QueuedScan {
    std::string text;
    std::chrono::steady_clock::time_point at;  // when Submit took it
  };
  std::deque<QueuedScan> scans_;
  bool filling_ = false;
  PositionSnapshot snapshot_;
  std::chrono::steady_clock::time_point next_connect_{};
  std::chrono::milliseconds backoff_{0};
  std::atomic<bool> online_{true};
  bool kicked_ = false;  // guarded by mu_: Run has something to do besides scans
  // The position thread's own: what the scale was last told, and the last weight shown.
  std::optional<ScaleSignals> signals_written_;
  std::string signal_error_;
  std::chrono::steady_clock::time_point last_weight_report_{};
  std::optional<double> reported_gross_;
  bool reported_stable_ = false;
  std::optional<std::uint32_t> idle_beat_;
  std::atomic<std::chrono::steady_clock::rep> last_round_{
      std::chrono::steady_clock::now().time_since_epoch().count()};
  std::chrono::steady_clock::time_point idle_beat_changed_{};
};

}  // namespace pingma::station
