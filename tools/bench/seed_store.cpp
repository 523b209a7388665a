// pingma-bench-seed: builds a registry database of a given size for the
// large-store benchmark, through the registry's own use cases (no HTTP): N
// cylinders registered in batches, then fill checks until the log holds M events.
// The result is an ordinary registry database whose hash chain verifies.
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
Reply Call(Service& service, const std::string& method, const std::string& target,
           const std::string& token, const std::string& body) {
  std::promise<Reply> promise;
  auto future = promise.get_future();
  service.Handle({method, target, "Bearer " + token, body},
                 [&promise](Reply r) { promise.set_value(std::move(r)); });
  return future.get();
}

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
  app.add_option("--db", path, "database file to create")->required();
  app.add_option("--cylinders", cylinders, "cylinders to register")->capture_default_str();
  app.add_option("--events", events, "events in the log at the end")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  SystemClock clock;
  auto store = Store::Open(path, clock);
  if (!store.ok()) {
    std::fprintf(stderr, "pingma-bench-seed: %s\n", store.status().message().c_str());
    return 1;
  }
  Service service(store->get(), Policy::Defaults(), &clock);
  const std::string admin = *service.AddToken(Role::kAdmin, "root");
  const std::string company = *service.AddToken(Role::kCompany, "CO-A");
  const std::string station = *service.AddToken(Role::kStation, "ST-01");
  Must(
      Call(
          service, "POST", "/v1/companies", admin,
          R"({"id":"CO-A","name":"Bench Gas","filling_license":{"number":"L1","valid_until":"2099-12-31"}})"),
      "company");
  Must(Call(service, "POST", "/v1/stations", admin,
            R"({"id":"ST-01","company_id":"CO-A","name":"Bench station","district":"Bench"})"),
       "station");
  Must(
      Call(
          service, "POST", "/v1/operators", admin,
          R"({"id":"OP-7","company_id":"CO-A","name":"Op","certificate":{"number":"C1","valid_until":"2099-12-31"}})"),
      "operator");

  constexpr long kBatch = 10000;
  for (long start = 0; start < cylinders; start += kBatch) {
    std::string body = R"({"cylinders":[)";
    for (long i = start; i < std::min(cylinders, start + kBatch); ++i) {
      if (i != start) body += ',';
      body += fmt::format(
          R"({{"code":"BM{:08d}","model":"YSP35.5","manufacturer":"Hebei Example Cylinder Co.","serial":"S-{:08d}","manufactured":"2023-01","tare_kg":16.4,"last_inspection":"2025-01-15"}})",
          i, i);
    }
    body += "]}";
    Must(Call(service, "POST", "/v1/cylinders/batch", company, body), "batch");
    std::fprintf(stderr, "\rregistered %ld / %ld cylinders", std::min(cylinders, start + kBatch),
                 cylinders);
  }
  std::fprintf(stderr, "\n");

  // Fill checks with a bounded number in flight, so the writer batches them.
  const long checks = std::max(0L, events - cylinders - 10);
  std::mutex mu;
  std::condition_variable cv;
  long in_flight = 0, finished = 0;
  std::atomic<bool> failed{false};
  std::mt19937_64 rng(42);
  for (long i = 0; i < checks; ++i) {
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return in_flight < 4096; });
      ++in_flight;
    }
    const long c = static_cast<long>(rng() % static_cast<unsigned long>(cylinders));
    service.Handle(
        {"POST", "/v1/fill-checks", "Bearer " + station,
         fmt::format(R"({{"station_id":"ST-01","operator_id":"OP-7","code":"BM{:08d}"}})", c)},
        [&](Reply r) {
          if (r.failed()) failed = true;
          std::lock_guard<std::mutex> lock(mu);
          --in_flight;
          ++finished;
          cv.notify_all();
        });
    if (i % 100000 == 0) std::fprintf(stderr, "\rchecks %ld / %ld", i, checks);
  }
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return in_flight == 0; });
  std::fprintf(stderr, "\rchecks %ld / %ld\n", finished, checks);
  lock.unlock();
  (*store)->Close();
  if (failed) {
    std::fprintf(stderr, "pingma-bench-seed: some fill checks failed\n");
    return 1;
  }
  return 0;
}
