// libFuzzer harness: the registry's use cases, driven through Service::Handle on a
// real store (a SQLite file), never crash and never fail on their own account
// whatever the request: every answer is a success or a 4xx with the error body of
// API.md, and nothing answers 5xx.
//
// An input is one request: its first byte picks the caller's role (and, with its
// high bit, the method: GET instead of POST); the text up to the first newline is
// the target ("/v1/fill-checks"); the rest is the body. The store holds a company,
// a station, an operator and two cylinders (one due for inspection), so valid
// requests in the corpus reach the rules as well as the parsers.
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <future>
#include <memory>
#include <string>
#include <string_view>

#include "service.h"

namespace pingma::registry {
namespace {

class FixedClock final : public Clock {
 public:
  Instant Now() const override { return Instant{1767225600000}; }  // 2026-01-01T00:00:00Z
};

struct World {
  std::string dir;
  FixedClock clock;
  std::unique_ptr<Store> store;
  std::unique_ptr<Service> service;
  std::string tokens[6];  // in the order of Role
};

World* world = nullptr;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "service_fuzz: %s\n", what.c_str());
  std::abort();
}

Reply Call(const Request& request) {
  std::promise<Reply> promise;
  auto answer = promise.get_future();
  world->service->Handle(request, [&promise](Reply r) { promise.set_value(std::move(r)); });
  return answer.get();
}

void SetUp(const std::string& token, const std::string& target, const std::string& body) {
  const Reply r = Call({"POST", target, "Bearer " + token, body});
  if (r.failed()) Fail("set-up " + target + " answered " + r.body.dump());
}

void Close() {
  if (world == nullptr) return;
  world->service.reset();
  world->store->Close();
  (void)system(("rm -rf '" + world->dir + "'").c_str());
}

void Open() {
  world = new World;
  // Memory-backed when there is one: fdatasync is then cheap and the fuzzer fast.
  std::string dir_template = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  dir_template += "/pingma-service-fuzz-XXXXXX";
  if (mkdtemp(dir_template.data()) == nullptr) Fail("cannot make a temporary directory");
  world->dir = dir_template;
  auto store = Store::Open(world->dir + "/registry.db", world->clock);
  if (!store.ok()) Fail("cannot open the store: " + store.status().message());
  world->store = std::move(*store);
  world->service = std::make_unique<Service>(world->store.get(), Policy::Defaults(), &world->clock);
  const std::pair<Role, const char*> subjects[] = {
      {Role::kAdmin, "root"},     {Role::kCompany, "CO-A"}, {Role::kStation, "ST-01"},
      {Role::kInspector, "AG-1"}, {Role::kCourier, "CR-1"}, {Role::kRegulator, "RG-1"}};
  for (const auto& [role, subject] : subjects) {
    auto token = world->service->AddToken(role, subject);
    if (!token.ok()) Fail("cannot add a token: " + token.status().message());
    world->tokens[static_cast<int>(role)] = *token;
  }
  const std::string& admin = world->tokens[static_cast<int>(Role::kAdmin)];
  const std::string& company = world->tokens[static_cast<int>(Role::kCompany)];
  SetUp(admin, "/v1/companies",
        R"({"id":"CO-A","name":"Example Gas",)"
        R"("filling_license":{"number":"L1","valid_until":"2099-12-31"}})");
  SetUp(admin, "/v1/stations",
        R"({"id":"ST-01","company_id":"CO-A","name":"Station 1","district":"D1"})");
  SetUp(admin, "/v1/operators",
        R"({"id":"OP-7","company_id":"CO-A","name":"Operator",)"
        R"("certificate":{"number":"C1","valid_until":"2099-12-31"}})");
  for (const char* cylinder :
       {R"({"code":"HB-C1","model":"YSP35.5","manufacturer":"Hebei Example","serial":"S1",)"
        R"("manufactured":"2023-01","tare_kg":16.4,"last_inspection":"2023-01-15",)"
        R"("next_inspection_due":"2027-01-31"})",
        R"({"code":"HB-C2","model":"YSP35.5","manufacturer":"Hebei Example","serial":"S2",)"
        R"("manufactured":"2023-01","tare_kg":16.4,"last_inspection":"2021-01-15",)"
        R"("next_inspection_due":"2025-12-31"})"}) {
    SetUp(company, "/v1/cylinders", cylinder);
  }
  atexit(Close);
}

}  // namespace
}  // namespace pingma::registry

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pingma::registry;
  if (world == nullptr) Open();
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t newline = rest.find('\n');
  if (newline == std::string_view::npos) return 0;
  Request request;
  request.method = (data[0] & 0x80) != 0 ? "GET" : "POST";
  request.authorization = "Bearer " + world->tokens[(data[0] & 0x7f) % 6];
  request.target = std::string(rest.substr(0, newline));
  request.body = std::string(rest.substr(newline + 1));
  const Reply r = Call(request);
  if (r.status >= 500) {
    Fail(request.method + " " + request.target + " answered " + std::to_string(r.status) + " " +
         r.body.dump());
  }
  if (r.failed()) {
    const auto error = r.body.find("error");
    if (error == r.body.end() || !(*error)["code"].is_string() ||
        !(*error)["message"].is_string() || (*error)["message"].get<std::string>().empty()) {
      Fail(request.target + ": an error without the error body of API.md: " + r.body.dump());
    }
  } else if (r.raw_body.empty() && !r.body.is_object()) {
    Fail(request.target + ": a success whose body is not an object: " + r.body.dump());
  }
  return 0;
}
