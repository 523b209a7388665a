// The station agent: wires the config's positions to their scanner sources and
// scales, decides online with the registry and offline on the replica, uploads the
// journal's outboxes, keeps the replica in step, and serves the operator's screen
// and GET /status (screen.h).
//
// Threads: one io_context thread (scanner sources, the screen's server, signals);
// one thread per filling position (blocking Modbus calls with deadlines); an
// uploader; a replica syncer. Each thread that talks to the registry has its own
// client.
#include <pthread.h>

#include <fmt/format.h>
#include <algorithm>
#include <array>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <vector>

#include "config.h"
#include "journal.h"
#include "measured_scale.h"
#include "pingma/common/prometheus.h"
#include "pingma/common/version.h"
#include "pingma/station/station.h"
#include "position.h"
#include "registry_client.h"
#include "replica.h"
#include "screen.h"
#include "watchdog.h"

namespace pingma::station {
namespace {

using nlohmann::json;

// JSON events on stdout and to the operator's screens, operator lines on stderr,
// one whole line at a time.
class Sink final : public EventSink {
 public:
  void Emit(const json& event) override {
    std::string line = event.dump(-1, ' ', false, json::error_handler_t::replace);
    line.push_back('\n');
    {
      std::lock_guard<std::mutex> lock(mu_);
      std::fputs(line.c_str(), stdout);
      std::fflush(stdout);
    }
    line.pop_back();
    if (ScreenServer* screen = screen_.load()) screen->Publish(std::move(line));
  }
  /// Written with the next event, in one write: a position logs a scan only just
  /// before it reports what became of it.
  void Log(const json& event) override {
    std::string line = event.dump(-1, ' ', false, json::error_handler_t::replace);
    line.push_back('\n');
    std::lock_guard<std::mutex> lock(mu_);
    std::fputs(line.c_str(), stdout);
  }
  void Show(const json& event) override {
    if (ScreenServer* screen = screen_.load()) {
      screen->Publish(event.dump(-1, ' ', false, json::error_handler_t::replace));
    }
  }
  /// Once the screen's server runs (before the positions' threads start).
  void SetScreen(ScreenServer* screen) { screen_ = screen; }
  void Say(const std::string& position_id, const std::string& text) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::fprintf(stderr, "[%s] %s\n", position_id.c_str(), text.c_str());
  }

 private:
  std::mutex mu_;
  std::atomic<ScreenServer*> screen_{nullptr};
};

// Whether the registry answered the last call, for the status page and the event
// stream. Safe from any thread.
class Health {
 public:
  explicit Health(Sink& sink) : sink_(sink) {}
  void Reached();
  void Lost(const std::string& why);
  bool online() const { return online_; }
  /// Told of every change (the positions' amber lamps); set before any thread runs.
  void OnChange(std::function<void(bool online)> f) { on_change_ = std::move(f); }

 private:
  Sink& sink_;
  std::atomic<bool> online_{true};
  std::function<void(bool)> on_change_;
};

void Health::Reached() {
  if (!online_.exchange(true)) {
    sink_.Emit({{"event", "online"}});
    if (on_change_) on_change_(true);
  }
}

void Health::Lost(const std::string& why) {
  if (online_.exchange(false)) {
    sink_.Emit({{"event", "offline"}, {"why", why}});
    sink_.Say("station", "注册中心不可达，转为离线判定 / Registry unreachable: deciding offline");
    if (on_change_) on_change_(false);
  }
}

// The registry within its deadline; the replica when it cannot be reached.
class OnlineOrReplica final : public Decider {
 public:
  OnlineOrReplica(const ClientSettings& settings, Replica& replica, Health& health,
                  const Clock& clock)
      : client_(settings), replica_(replica), health_(health), clock_(clock) {}

  Result<CheckAnswer> Decide(const CheckRequest& request) override {
    Result<CheckAnswer> online = client_.Check(request);
    if (online.ok()) {
      health_.Reached();
      return online;
    }
    if (online.status().code() != StatusCode::kUnavailable) return online.status();
    health_.Lost(online.status().message());
    return replica_.Decide(request, clock_.Now());
  }

 private:
  RegistryClient client_;
  Replica& replica_;
  Health& health_;
  const Clock& clock_;
};

// Sleeps up to `d` or until stop is set and Notify is called.
class Waiter {
 public:
  void WaitFor(std::chrono::milliseconds d, const std::atomic<bool>& stop) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, d, [&] { return stop.load() || kicked_; });
    kicked_ = false;
  }
  void Notify() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      kicked_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool kicked_ = false;
};

// Uploads the journal's outboxes, oldest first, until the registry has each record:
// the checks decided offline (before the fills that may have been made on them),
// then the recorded fills.
void UploadLoop(const ClientSettings& settings, Journal& journal, Health& health, Sink& sink,
                Waiter& waiter, const std::atomic<bool>& stop) {
  RegistryClient client(settings);
  std::chrono::milliseconds backoff{0};
  // One upload: the event that says how it went, or the error (kUnavailable: later).
  auto post = [&client](Outbox which, const OutboxItem& item) -> Result<json> {
    if (which == Outbox::kFills) {
      PINGMA_ASSIGN_OR_RETURN(Upload up, client.PostFill(item.record_json));
      return json{{"event", "upload"},
                  {"event_id", item.event_id},
                  {"status", up == Upload::kStored ? "stored" : "duplicate"},
                  {"attempts", item.attempts + 1}};
    }
    PINGMA_ASSIGN_OR_RETURN(OfflineCheckUpload up, client.PostOfflineCheck(item.record_json));
    return json{{"event", "check_upload"},
                {"check_id", item.event_id},
                {"status", up.upload == Upload::kStored ? "stored" : "duplicate"},
                {"registry_decision", up.registry_decision},
                {"agrees", up.agrees},
                {"attempts", item.attempts + 1}};
  };
  while (!stop) {
    bool unreachable = false, idle = true, broken = false;
    for (const Outbox which : {Outbox::kChecks, Outbox::kFills}) {
      if (stop || unreachable) break;
      Result<std::vector<OutboxItem>> items = journal.Pending(50, which);
      if (!items.ok()) {
        sink.Emit({{"event", "journal_error"}, {"error", items.status().message()}});
        broken = true;
        break;
      }
      idle = idle && items->empty();
      for (const OutboxItem& item : *items) {
        if (stop) break;
        Result<json> done = post(which, item);
        if (done.ok()) {
          health.Reached();
          (void)journal.MarkUploaded(item.event_id, which);
          sink.Emit(*done);
          backoff = std::chrono::milliseconds(0);
        } else if (done.status().code() == StatusCode::kUnavailable) {
          health.Lost(done.status().message());
          (void)journal.MarkAttempt(item.event_id, done.status().message(), which);
          unreachable = true;
          break;
        } else {
          const bool fill = which == Outbox::kFills;
          (void)journal.MarkRejected(item.event_id, done.status().message(), which);
          sink.Emit({{"event", fill ? "upload_rejected" : "check_upload_rejected"},
                     {fill ? "event_id" : "check_id", item.event_id},
                     {"error", done.status().message()}});
          sink.Say("station", std::string(fill ? "注册中心拒收充装记录 / The registry refused fill "
                                               : "注册中心拒收离线判定 / The registry refused "
                                                 "offline check ") +
                                  item.event_id + ": " + done.status().message());
        }
      }
    }
    if (broken) {
      waiter.WaitFor(std::chrono::seconds(5), stop);
    } else if (unreachable) {
      backoff = backoff.count() == 0 ? std::chrono::milliseconds(500)
                                     : std::min(backoff * 2, std::chrono::milliseconds(30000));
      waiter.WaitFor(backoff, stop);
    } else if (idle) {
      waiter.WaitFor(std::chrono::seconds(1), stop);
    }
  }
}

// Keeps the replica in step with the fleet feed.
void SyncLoop(const ClientSettings& settings, std::string station_id, std::chrono::seconds interval,
              Replica& replica, Health& health, Sink& sink, Waiter& waiter,
              const std::atomic<bool>& stop) {
  RegistryClient client(settings);
  bool failing = false;
  while (!stop) {
    Result<SyncStats> s = replica.Sync(client, station_id);
    if (s.ok()) {
      health.Reached();
      failing = false;
      Result<std::int64_t> size = replica.Size();
      if (s->cylinders > 0) {
        sink.Emit({{"event", "replica_synced"},
                   {"received", s->cylinders},
                   {"pages", s->pages},
                   {"cylinders", size.ok() ? *size : -1}});
      }
    } else if (!failing) {
      failing = true;
      sink.Emit({{"event", "replica_sync_failed"}, {"error", s.status().message()}});
    }
    waiter.WaitFor(failing ? std::chrono::seconds(5) : interval, stop);
  }
}

json ParsedOrNull(const std::string& text) {
  return text.empty() ? json(nullptr) : json::parse(text, nullptr, false);
}

}  // namespace

Status RunStation(const std::string& config_path) {
  PINGMA_ASSIGN_OR_RETURN(const StationConfig cfg, LoadStationConfig(config_path));

  std::error_code ec;
  std::filesystem::create_directories(cfg.data_dir, ec);
  if (ec) return Status::IoError("cannot make data_dir " + cfg.data_dir + ": " + ec.message());
  PINGMA_ASSIGN_OR_RETURN(std::unique_ptr<Journal> journal,
                          Journal::Open(cfg.data_dir + "/journal.db"));
  PINGMA_ASSIGN_OR_RETURN(std::unique_ptr<Replica> replica,
                          Replica::Open(cfg.data_dir + "/replica.db"));

  ClientOptions client_options;
  client_options.base_url = cfg.registry;
  client_options.token = cfg.token;
  client_options.ca_file = cfg.ca_file;
  client_options.check_deadline = cfg.check_deadline;
  ClientSettings client_settings(client_options);

  Sink sink;
  Health health(sink);
  SystemClock clock;
  std::atomic<bool> stop{false};

  struct Lane {
    std::unique_ptr<ScaleCounters> scale_counters = std::make_unique<ScaleCounters>();
    std::unique_ptr<Scale> scale;
    std::unique_ptr<OnlineOrReplica> decider;
    std::unique_ptr<Position> position;
    std::unique_ptr<ScanSource> source;
  };
  // Declared before the lanes and the screen, so destroyed after them: their
  // sources' sockets and timers belong to it.
  asio::io_context io;
  std::vector<Lane> lanes;
  for (const PositionConfig& pc : cfg.positions) {
    Lane lane;
    lane.scale = Measured(MakeModbusScale(pc.scale, pc.profile), lane.scale_counters.get());
    lane.decider = std::make_unique<OnlineOrReplica>(client_settings, *replica, health, clock);
    PositionOptions po;
    po.station_id = cfg.id;
    po.position_id = pc.id;
    po.scale_id = pc.scale_id;
    po.operator_id = pc.operator_id;
    lane.position =
        std::make_unique<Position>(po, *lane.scale, *lane.decider, *journal, sink, clock);
    Position* position = lane.position.get();
    const std::string id = pc.id;
    auto source = MakeScanSource(
        io, pc.scanner, [position](const Scan& scan) { position->Submit(scan.text); },
        [&sink, id](const SourceNotice& notice) {
          sink.Emit({{"event", "scanner"},
                     {"position", id},
                     {"level", notice.level == SourceNotice::Level::kWarning ? "warning" : "info"},
                     {"message", notice.message}});
        });
    if (!source.ok()) {
      return Status(source.status().code(), "position " + pc.id + ": " + source.status().message());
    }
    lane.source = std::move(*source);
    if (Status s = lane.source->Start(); !s.ok()) {
      return Status(s.code(), "position " + pc.id + " scanner: " + s.message());
    }
    lanes.push_back(std::move(lane));
  }

  // GET /status, and the first message of every screen's event stream.
  auto status_json = [&]() {
    json positions = json::array();
    for (const Lane& lane : lanes) {
      const PositionSnapshot s = lane.position->Snapshot();
      json p = {{"id", s.id},
                {"operator_id", s.operator_id},
                {"state", s.state},
                {"alarm", s.alarm},
                {"scale",
                 {{"connected", s.scale_connected},
                  {"describe", lane.scale->Describe()},
                  {"stable", s.stable},
                  {"fault", s.scale_fault}}},
                {"scanner", lane.source->Describe()},
                {"last_scan", s.last_scan},
                {"fills", s.fills},
                {"blocks", s.blocks},
                {"last_decision", ParsedOrNull(s.last_decision_json)},
                {"fill", ParsedOrNull(s.fill_json)},
                {"last_fill", ParsedOrNull(s.last_fill_json)}};
      if (s.gross_kg) p["scale"]["gross_kg"] = *s.gross_kg;
      // Whether the last fill's record is at the registry yet.
      if (p["last_fill"].is_object() && p["last_fill"].contains("event_id")) {
        Result<std::string> state = journal->StateOf(p["last_fill"]["event_id"].get<std::string>());
        p["last_fill_upload"] = state.ok() ? *state : "unknown";
      }
      positions.push_back(std::move(p));
    }
    json out = {{"station_id", cfg.id},
                {"online", health.online()},
                {"registry", cfg.registry},
                {"now", clock.Now().ToString()},
                {"positions", positions}};
    if (Result<JournalStats> js = journal->Stats(); js.ok()) {
      out["outbox"] = {{"pending", js->pending},
                       {"rejected", js->rejected},
                       {"uploaded", js->uploaded},
                       {"open_fills", js->begun},
                       {"checks_pending", js->checks_pending},
                       {"checks_rejected", js->checks_rejected},
                       {"checks_uploaded", js->checks_uploaded},
                       {"oldest_pending", js->oldest_pending_ms == 0
                                              ? json(nullptr)
                                              : json(Instant{js->oldest_pending_ms}.ToString())}};
    }
    Result<std::int64_t> size = replica->Size();
    const std::string synced_at = replica->synced_at();
    out["replica"] = {{"cylinders", size.ok() ? *size : -1},
                      {"ready", replica->ready()},
                      {"synced_at", synced_at.empty() ? json(nullptr) : json(synced_at)}};
    return out;
  };
  // GET /metrics: what a site's Prometheus watches (README, "Metrics").
  auto metrics_text = [&]() {
    using prometheus::Escape;
    using prometheus::Header;
    std::string out;
    Header(out, "pingma_station_build_info", "gauge",
           "The station agent's version and commit, and its station (always 1).");
    out +=
        fmt::format("pingma_station_build_info{{version=\"{}\",commit=\"{}\",station=\"{}\"}} 1\n",
                    Escape(Version()), Escape(Commit()), Escape(cfg.id));
    Header(out, "pingma_station_online", "gauge",
           "1 while the registry answers; 0 while fill checks fall back to the offline replica.");
    out += fmt::format("pingma_station_online {}\n", health.online() ? 1 : 0);
    Header(out, "pingma_station_positions", "gauge", "Filling positions.");
    out += fmt::format("pingma_station_positions {}\n", lanes.size());
    std::vector<PositionSnapshot> snapshots;
    for (const Lane& lane : lanes) snapshots.push_back(lane.position->Snapshot());
    Header(out, "pingma_station_scale_connected", "gauge",
           "1 while the position's scale is connected (its interlock written locked).");
    for (const PositionSnapshot& p : snapshots) {
      out += fmt::format("pingma_station_scale_connected{{position=\"{}\"}} {}\n", Escape(p.id),
                         p.scale_connected ? 1 : 0);
    }
    Header(out, "pingma_station_fills_total", "counter",
           "Fills recorded since the agent started, by position and result.");
    for (const PositionSnapshot& p : snapshots) {
      for (const char* result : {"ok", "overfill", "underfill", "interrupted"}) {
        const auto n = p.fills_by_result.find(result);
        out += fmt::format("pingma_station_fills_total{{position=\"{}\",result=\"{}\"}} {}\n",
                           Escape(p.id), result, n == p.fills_by_result.end() ? 0 : n->second);
      }
    }
    Header(out, "pingma_station_refused_scans_total", "counter",
           "Scans refused a fill (the scale stayed locked) since the agent started, by position.");
    for (const PositionSnapshot& p : snapshots) {
      out += fmt::format("pingma_station_refused_scans_total{{position=\"{}\"}} {}\n", Escape(p.id),
                         p.blocks);
    }
    if (Result<JournalStats> js = journal->Stats(); js.ok()) {
      Header(out, "pingma_station_outbox_records", "gauge",
             "Fill records and fill checks in the outbox, by kind and state.");
      const std::pair<const char*, std::int64_t> rows[] = {
          {"kind=\"fill\",state=\"pending\"", js->pending},
          {"kind=\"fill\",state=\"rejected\"", js->rejected},
          {"kind=\"fill\",state=\"uploaded\"", js->uploaded},
          {"kind=\"check\",state=\"pending\"", js->checks_pending},
          {"kind=\"check\",state=\"rejected\"", js->checks_rejected},
          {"kind=\"check\",state=\"uploaded\"", js->checks_uploaded}};
      for (const auto& [labels, n] : rows) {
        out += fmt::format("pingma_station_outbox_records{{{}}} {}\n", labels, n);
      }
      Header(out, "pingma_station_outbox_oldest_pending_seconds", "gauge",
             "Age of the oldest fill record not yet at the registry; 0 when none waits.");
      const double age =
          js->oldest_pending_ms == 0
              ? 0.0
              : static_cast<double>(clock.Now().unix_ms - js->oldest_pending_ms) / 1e3;
      out += fmt::format("pingma_station_outbox_oldest_pending_seconds {}\n", std::max(0.0, age));
      Header(out, "pingma_station_open_fills", "gauge",
             "Fills begun and not yet recorded (one per position at most, while it fills).");
      out += fmt::format("pingma_station_open_fills {}\n", js->begun);
    }
    Header(out, "pingma_station_replica_ready", "gauge",
           "1 once the offline replica holds a whole copy of the fleet's facts.");
    out += fmt::format("pingma_station_replica_ready {}\n", replica->ready() ? 1 : 0);
    if (Result<std::int64_t> size = replica->Size(); size.ok()) {
      Header(out, "pingma_station_replica_cylinders", "gauge", "Cylinders in the offline replica.");
      out += fmt::format("pingma_station_replica_cylinders {}\n", *size);
    }
    // A counter per position and operation of the scale driver.
    const auto per_operation = [&](const char* name, const char* help, auto field) {
      Header(out, name, "counter", help);
      for (size_t i = 0; i < lanes.size(); ++i) {
        for (size_t o = 0; o < kScaleOperations.size(); ++o) {
          out += fmt::format("{}{{position=\"{}\",operation=\"{}\"}} {}\n", name,
                             Escape(snapshots[i].id), kScaleOperations[o],
                             field(lanes[i].scale_counters->operations[o]));
        }
      }
    };
    per_operation("pingma_station_scale_operations_total",
                  "Scale driver operations (one or a few Modbus requests each), by position and "
                  "operation.",
                  [](const ScaleCounters::PerOperation& op) { return op.calls.load(); });
    per_operation("pingma_station_scale_errors_total",
                  "Scale driver operations that failed (a Modbus exception, a timeout, a lost "
                  "link), by position and operation.",
                  [](const ScaleCounters::PerOperation& op) { return op.failures.load(); });
    Header(out, "pingma_station_scale_operation_seconds", "histogram",
           "Time of a scale driver operation, by position and operation.");
    for (size_t i = 0; i < lanes.size(); ++i) {
      for (size_t o = 0; o < kScaleOperations.size(); ++o) {
        const ScaleCounters::PerOperation& op = lanes[i].scale_counters->operations[o];
        prometheus::Histogram(out, "pingma_station_scale_operation_seconds",
                              fmt::format("position=\"{}\",operation=\"{}\",",
                                          Escape(snapshots[i].id), kScaleOperations[o]),
                              kScaleTimeBounds, prometheus::Load(op.buckets),
                              static_cast<double>(op.micros.load()) / 1e6);
      }
    }
    return out;
  };
  health.OnChange([&lanes](bool online) {
    for (Lane& lane : lanes) lane.position->SetOnline(online);
  });

  ScreenOptions screen_options;
  screen_options.listen = cfg.status_listen;
  screen_options.metrics = metrics_text;
  for (const Lane& lane : lanes) screen_options.positions.push_back(lane.position->Snapshot().id);
  screen_options.status = status_json;
  screen_options.acknowledge = [&lanes](const std::string& id) {
    for (Lane& lane : lanes) {
      if (lane.position->Snapshot().id == id) lane.position->Acknowledge();
    }
  };
  screen_options.notice = [&sink](const json& event) { sink.Emit(event); };
  PINGMA_ASSIGN_OR_RETURN(std::unique_ptr<ScreenServer> screen,
                          ScreenServer::Start(io, screen_options));
  sink.SetScreen(screen.get());

  asio::signal_set reload(io, SIGHUP);  // below
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const asio::error_code& error, int) {
    if (error) return;
    NotifyStopping();
    stop = true;
    reload.cancel();
    for (Lane& lane : lanes) {
      lane.source->Stop();
      lane.position->Wake();
    }
    screen->Close([&io] { io.stop(); });
  });
  // SIGHUP: the config file is read again. The registry token, the CA file and the
  // check deadline are taken (by each registry client on its next call); what else
  // changed is named, and takes a restart. A file that no longer reads leaves all
  // as it was.
  std::function<void(const asio::error_code&, int)> on_reload = [&](const asio::error_code& error,
                                                                    int) {
    if (error) return;
    auto fresh = LoadStationConfig(config_path);
    if (!fresh.ok()) {
      sink.Emit({{"event", "reload"}, {"error", fresh.status().message()}});
      sink.Say("station", "重新读取配置失败，沿用原配置 / Cannot read the settings again (" +
                              fresh.status().message() + "): the running ones stay");
      return reload.async_wait(on_reload);
    }
    ClientOptions options = client_settings.Get();
    std::vector<std::string> taken;
    if (fresh->token != options.token) taken.push_back("token");
    if (fresh->ca_file != options.ca_file) taken.push_back("station.ca_file");
    if (fresh->check_deadline != options.check_deadline) {
      taken.push_back("station.check_deadline_ms");
    }
    options.token = fresh->token;
    options.ca_file = fresh->ca_file;
    options.check_deadline = fresh->check_deadline;
    if (!taken.empty()) client_settings.Set(std::move(options));
    const std::vector<std::string> restart = ChangesTakingARestart(cfg.text, fresh->text);
    sink.Emit({{"event", "reload"}, {"taken", taken}, {"restart_needed", restart}});
    const auto list = [](const std::vector<std::string>& names) {
      return names.empty() ? std::string("-") : fmt::format("{}", fmt::join(names, ", "));
    };
    sink.Say("station",
             fmt::format("已重新读取配置：生效 {}；需重启才生效 {} / Settings read again: "
                         "taken {}; taking a restart {}",
                         list(taken), list(restart), list(taken), list(restart)));
    reload.async_wait(on_reload);
  };
  reload.async_wait(on_reload);

  std::thread io_thread([&io] {
    pthread_setname_np(pthread_self(), "station-io");
    io.run();
  });

  std::printf("ready\n");
  std::fflush(stdout);
  sink.Emit({{"event", "ready"},
             {"station_id", cfg.id},
             {"status", screen->url() + "/status"},
             {"screen", screen->url() + "/"},
             {"positions", lanes.size()}});

  Waiter upload_waiter, sync_waiter;
  std::vector<std::thread> threads;
  for (Lane& lane : lanes) {
    Position* position = lane.position.get();
    threads.emplace_back([position, &stop, &sink, &upload_waiter] {
      pthread_setname_np(pthread_self(), "station-pos");
      if (Status s = position->RecoverUnfinished(); !s.ok()) {
        sink.Emit({{"event", "journal_error"}, {"error", s.message()}});
      }
      upload_waiter.Notify();
      position->Run(stop);
    });
  }
  threads.emplace_back([&] {
    pthread_setname_np(pthread_self(), "station-upload");
    UploadLoop(client_settings, *journal, health, sink, upload_waiter, stop);
  });
  threads.emplace_back([&] {
    pthread_setname_np(pthread_self(), "station-sync");
    SyncLoop(client_settings, cfg.id, cfg.sync_interval, *replica, health, sink, sync_waiter, stop);
  });

  // systemd: ready once every position runs, and the watchdog fed while each
  // position and the io thread come round (watchdog.h).
  std::atomic<Watchdog::Steady::rep> io_round{Watchdog::Steady::now().time_since_epoch().count()};
  std::optional<Watchdog> watchdog;
  if (const auto interval = Watchdog::Interval()) {
    std::vector<Watchdog::Watched> watched;
    for (Lane& lane : lanes) {
      const Position* position = lane.position.get();
      watched.push_back(
          {"position " + position->Snapshot().id, [position] { return position->LastRound(); }});
    }
    // The io thread comes round when it runs what is posted to it.
    watched.push_back(
        {"the scanners' and screens' thread", [&io, &io_round] {
           asio::post(
               io, [&io_round] { io_round = Watchdog::Steady::now().time_since_epoch().count(); });
           return Watchdog::Steady::time_point(Watchdog::Steady::duration(io_round.load()));
         }});
    watchdog.emplace(
        *interval, std::move(watched),
        [&sink](const std::string& name, bool stuck, Watchdog::Steady::duration since) {
          const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since).count();
          sink.Emit({{"event", "watchdog"}, {"thread", name}, {"stuck", stuck}, {"since_ms", ms}});
          sink.Say("station",
                   stuck ? fmt::format("{} 已 {} 秒无响应，停止喂看门狗，systemd 将重启本站 "
                                       "/ {} has not come round for {} s: the watchdog "
                                       "is no longer fed, and systemd restarts the "
                                       "station",
                                       name, ms / 1000, name, ms / 1000)
                         : fmt::format("{} 已恢复 / {} comes round again", name, name));
        });
  }
  NotifyReady(fmt::format("{} position(s); screen on {}", lanes.size(), screen->url() + "/"));

  io_thread.join();  // returns after SIGINT/SIGTERM
  watchdog.reset();  // the io thread no longer comes round
  stop = true;
  upload_waiter.Notify();
  sync_waiter.Notify();
  for (Lane& lane : lanes) lane.position->Wake();
  for (std::thread& t : threads) t.join();
  sink.Emit({{"event", "stopped"}});
  return Status::Ok();
}

}  // namespace pingma::station
