// pingma-bench-seed: builds a registry database of a given size for the
// large-store and console benchmarks, through the registry's own use cases (no
// HTTP): N cylinders registered in batches, then fill checks until the log holds M
// events. With --history-days the store has a past: the cylinders are registered
// that many days ago with inspections falling due over the next four years, fills
// are spread over the days since, and --scrap cylinders fail their inspection
// today; --timeline gives one cylinder (BM00000001) that many fill checks.
// The result is an ordinary registry database whose hash chain verifies.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <future>
#include <mutex>
#include <random>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "service.h"

using namespace pingma;
using namespace pingma::registry;

namespace {

// Runs a request and waits for its reply.
Reply Ask(Service& service, const std::string& method, const std::string& target,
          const std::string& token, const std::string& body) {
  std::promise<Reply> promise;
  auto future = promise.get_future();
  service.Handle({method, target, "Bearer " + token, body},
                 [&promise](Reply r) { promise.set_value(std::move(r)); });
  return future.get();
}

// A clock the seeder moves forward, so that a store can be given a past.
class SeedClock final : public Clock {
 public:
  /// Starts `behind_ms` behind the real clock.
  explicit SeedClock(std::int64_t behind_ms) : offset_ms_(behind_ms) {}
  Instant Now() const override {
    const std::int64_t offset = offset_ms_.load();
    return Instant{real_.Now().unix_ms - offset};
  }
  /// Sets the clock `ms` behind the real one; never moves it back.
  void SetBehind(std::int64_t ms) {
    std::int64_t current = offset_ms_.load();
    while (ms < current && !offset_ms_.compare_exchange_weak(current, ms)) {
    }
  }

 private:
  SystemClock real_;
  std::atomic<std::int64_t> offset_ms_;
};

// Keeps at most `limit` requests in flight, so the writer batches them.
class Pipeline {
 public:
  explicit Pipeline(long limit) : limit_(limit) {}
  void Enter() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return in_flight_ < limit_; });
    ++in_flight_;
  }
  /// Counts a request done; the first failure's answer is printed.
  void Leave(const Reply& r) {
    std::lock_guard<std::mutex> lock(mu_);
    if (r.failed() && !failed_) {
      std::fprintf(stderr, "\npingma-bench-seed: %d %s%s\n", r.status, r.body.dump().c_str(),
                   r.raw_body.c_str());
    }
    if (r.failed()) failed_ = true;
    --in_flight_;
    cv_.notify_all();
  }
  /// Waits for every request; false when any failed.
  bool Drain() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return in_flight_ == 0; });
    return !failed_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  long limit_;
  long in_flight_ = 0;
  bool failed_ = false;
};

constexpr std::int64_t kDayMs = 86400000;

void Must(const Reply& r, const char* what) {
  if (r.failed()) {
    std::fprintf(stderr, "pingma-bench-seed: %s failed: %d %s\n", what, r.status,
                 r.body.dump().c_str());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pingma-bench-seed: fill a registry database with N cylinders and M events"};
  std::string path;
  long cylinders = 10000;
  long events = 100000;
  long history_days = 0;
  long fills = 0;
  long scrap = 0;
  long timeline = 0;
  app.add_option("--db", path, "database file to create")->required();
  app.add_option("--cylinders", cylinders, "cylinders to register")->capture_default_str();
  app.add_option("--events", events, "events in the log at the end")->capture_default_str();
  app.add_option("--history-days", history_days,
                 "register the cylinders this many days ago, inspections due over 4 years")
      ->capture_default_str();
  app.add_option("--fills", fills, "fills spread over the history (with --history-days)")
      ->capture_default_str();
  app.add_option("--scrap", scrap, "cylinders failing their inspection today (scrap queue)")
      ->capture_default_str();
  app.add_option("--timeline", timeline, "fill checks of the one cylinder BM00000001")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (scrap > cylinders - 2 || fills < 0 || history_days < 0 || timeline < 0) {
    std::fprintf(stderr, "pingma-bench-seed: --scrap must leave 2 cylinders; counts >= 0\n");
    return 2;
  }

  SeedClock clock(history_days * kDayMs);
  auto store = Store::Open(path, clock);
  if (!store.ok()) {
    std::fprintf(stderr, "pingma-bench-seed: %s\n", store.status().message().c_str());
    return 1;
  }
  Service service(store->get(), Policy::Defaults(), &clock);
  const std::string admin = *service.AddToken(Role::kAdmin, "root");
  const std::string company = *service.AddToken(Role::kCompany, "CO-A");
  const std::string station = *service.AddToken(Role::kStation, "ST-01");
  const std::string inspector = *service.AddToken(Role::kInspector, "INSP-1");
  Must(
      Ask(service, "POST", "/v1/companies", admin,
          R"({"id":"CO-A","name":"Bench Gas","filling_license":{"number":"L1","valid_until":"2099-12-31"}})"),
      "company");
  Must(Ask(service, "POST", "/v1/stations", admin,
           R"({"id":"ST-01","company_id":"CO-A","name":"Bench station","district":"Bench"})"),
       "station");
  Must(
      Ask(service, "POST", "/v1/operators", admin,
          R"({"id":"OP-7","company_id":"CO-A","name":"Op","certificate":{"number":"C1","valid_until":"2099-12-31"}})"),
      "operator");

  const int zone = Policy::Defaults().utc_offset_minutes;
  const Date today = SystemClock().Now().LocalDate(zone);
  const Date registered = clock.Now().LocalDate(zone);
  constexpr long kBatch = 10000;
  for (long start = 0; start < cylinders; start += kBatch) {
    std::string body = R"({"cylinders":[)";
    for (long i = start; i < std::min(cylinders, start + kBatch); ++i) {
      if (i != start) body += ',';
      if (history_days > 0) {
        // Due dates spread over four years from a month ago, in a scattered order.
        // (An inspection cannot postdate the registration.)
        const Date due = today.AddDays(-30 + (i * 7919) % 1461);
        const Date last = std::min(due.AddYears(-4), registered);
        body += fmt::format(
            R"({{"code":"BM{:08d}","model":"YSP35.5","manufacturer":"Hebei Example Cylinder Co.","serial":"S-{:08d}","manufactured":"2022-01","tare_kg":16.4,"design_life_years":8,"last_inspection":"{}","next_inspection_due":"{}"}})",
            i, i, last.ToString(), due.ToString());
      } else {
        body += fmt::format(
            R"({{"code":"BM{:08d}","model":"YSP35.5","manufacturer":"Hebei Example Cylinder Co.","serial":"S-{:08d}","manufactured":"2023-01","tare_kg":16.4,"last_inspection":"2025-01-15"}})",
            i, i);
      }
    }
    body += "]}";
    Must(Ask(service, "POST", "/v1/cylinders/batch", company, body), "batch");
    std::fprintf(stderr, "\rregistered %ld / %ld cylinders", std::min(cylinders, start + kBatch),
                 cylinders);
  }
  std::fprintf(stderr, "\n");

  Pipeline pipeline(4096);
  // Fills spread over the history: a check, and on allow the fill it allowed. A
  // check that blocks (an inspection due before that day) is kept, unfilled.
  for (long i = 0; i < fills; ++i) {
    clock.SetBehind(history_days * kDayMs - (history_days * kDayMs - kDayMs) * i / fills);
    const std::string code = fmt::format("BM{:08d}", (i * 104729) % cylinders);
    pipeline.Enter();
    service.Handle(
        {"POST", "/v1/fill-checks", "Bearer " + station,
         fmt::format(R"({{"station_id":"ST-01","operator_id":"OP-7","code":"{}"}})", code)},
        [&, code, i](Reply r) {
          if (r.failed() || r.raw_body.find(R"("decision":"allow")") == std::string::npos) {
            pipeline.Leave(r);
            return;
          }
          const json answer = json::parse(r.raw_body);
          const std::string now = clock.Now().ToString();
          const std::string fill = fmt::format(
              R"({{"event_id":"5eed0000-0000-4000-8000-{:012x}","check_id":"{}","code":"{}","station_id":"ST-01","operator_id":"OP-7","scale_id":"S1","started_at":"{}","ended_at":"{}","tare_kg":16.4,"gross_before_kg":16.9,"gross_after_kg":31.4,"net_kg":14.5,"residual_kg":0.5,"result":"ok","post_checks":{{"leak_test":"pass","reweigh":"pass"}}}})",
              i, answer["check_id"].get<std::string>(), code, now, now);
          service.Handle({"POST", "/v1/fills", "Bearer " + station, fill},
                         [&](Reply f) { pipeline.Leave(f); });
        });
    if (i % 10000 == 0) std::fprintf(stderr, "\rfills %ld / %ld", i, fills);
  }
  if (!pipeline.Drain()) {
    std::fprintf(stderr, "\npingma-bench-seed: some fills failed\n");
    return 1;
  }
  if (fills > 0) std::fprintf(stderr, "\rfills %ld / %ld\n", fills, fills);
  clock.SetBehind(0);

  // The scrap queue: the last --scrap cylinders fail their inspection today.
  for (long i = cylinders - scrap; i < cylinders; ++i) {
    pipeline.Enter();
    service.Handle(
        {"POST", "/v1/inspections", "Bearer " + inspector,
         fmt::format(R"({{"code":"BM{:08d}","date":"{}","result":"fail","report_no":"R-{}"}})", i,
                     today.ToString(), i)},
        [&](Reply r) { pipeline.Leave(r); });
  }
  for (long i = 0; i < timeline; ++i) {
    pipeline.Enter();
    service.Handle({"POST", "/v1/fill-checks", "Bearer " + station,
                    R"({"station_id":"ST-01","operator_id":"OP-7","code":"BM00000001"})"},
                   [&](Reply r) { pipeline.Leave(r); });
  }
  if (!pipeline.Drain()) {
    std::fprintf(stderr, "pingma-bench-seed: some inspections or timeline checks failed\n");
    return 1;
  }

  // Fill checks at random until the log holds M events.
  const long checks = std::max(0L, events - cylinders - 10 - 2 * fills - scrap * 2 - timeline);
  std::mt19937_64 rng(42);
  for (long i = 0; i < checks; ++i) {
    pipeline.Enter();
    const long c = static_cast<long>(rng() % static_cast<unsigned long>(cylinders));
    service.Handle(
        {"POST", "/v1/fill-checks", "Bearer " + station,
         fmt::format(R"({{"station_id":"ST-01","operator_id":"OP-7","code":"BM{:08d}"}})", c)},
        [&](Reply r) { pipeline.Leave(r); });
    if (i % 100000 == 0) std::fprintf(stderr, "\rchecks %ld / %ld", i, checks);
  }
  const bool ok = pipeline.Drain();
  std::fprintf(stderr, "\rchecks %ld / %ld\n", checks, checks);
  (*store)->Close();
  if (!ok) {
    std::fprintf(stderr, "pingma-bench-seed: some fill checks failed\n");
    return 1;
  }
  return 0;
}
