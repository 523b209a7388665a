// The station's registry client and replica against the real pingma-registry
// process (started on port 0 with a temporary database): fill checks, fill uploads,
// the fleet feed in pages, and the offline decision compared with the online one.
#include <arpa/inet.h>
#include <curl/curl.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "journal.h"
#include "registry_client.h"
#include "replica.h"

#ifndef PINGMA_REGISTRY_BINARY
#error "PINGMA_REGISTRY_BINARY must name the pingma-registry program"
#endif

namespace fs = std::filesystem;
using nlohmann::json;
using pingma::Instant;
using pingma::StatusCode;
using pingma::station::CheckAnswer;
using pingma::station::CheckRequest;
using pingma::station::ClientOptions;
using pingma::station::RegistryClient;
using pingma::station::Replica;
using pingma::station::Upload;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kFleetSize = 12000;

Instant Now() {
  return Instant{std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count()};
}
// "Today" as the registry's rules see it (Asia/Shanghai, the default policy).
std::string Day(int offset) {
  return Now().LocalDate(8 * 60).AddDays(offset).ToString();
}
std::string Month(int years_back) {
  const pingma::Date today = Now().LocalDate(8 * 60);
  char text[16];
  std::snprintf(text, sizeof text, "%04d-%02d", today.year() - years_back, today.month());
  return text;
}

std::string Run(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[512];
  while (fgets(buf, sizeof buf, p) != nullptr) out += buf;
  const int rc = pclose(p);
  REQUIRE_MESSAGE(rc == 0, command, " exited ", rc);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

size_t Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// The real registry: `token add` for each role, then `serve` on 127.0.0.1:0.
class Registry {
 public:
  Registry() {
    std::string tmpl = (fs::temp_directory_path() / "pingma-station-reg-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    dir_ = tmpl;
    db_ = (dir_ / "registry.db").string();
  }
  ~Registry() {
    Stop();
    std::error_code ec;
    if (std::getenv("PINGMA_KEEP_TMP") == nullptr) fs::remove_all(dir_, ec);
  }

  std::string Token(const std::string& role, const std::string& subject) {
    return Run(std::string(PINGMA_REGISTRY_BINARY) + " token add --db '" + db_ + "' --role " +
               role + " --subject " + subject);
  }
  std::string dir() const { return dir_.string(); }

  void Start() {
    int out[2];
    REQUIRE(pipe(out) == 0);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      const std::string err = (dir_ / "serve.stderr.log").string();
      if (FILE* e = std::freopen(err.c_str(), "a", stderr); e == nullptr) _exit(126);
      execl(PINGMA_REGISTRY_BINARY, PINGMA_REGISTRY_BINARY, "serve", "--db", db_.c_str(),
            "--listen", "127.0.0.1:0", static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    out_ = fdopen(out[0], "r");
    REQUIRE(out_ != nullptr);
    char line[512];
    const std::string prefix = "listening on ";
    while (fgets(line, sizeof line, out_) != nullptr) {
      std::string text(line);
      while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
      if (text.rfind(prefix, 0) == 0) {
        url_ = text.substr(prefix.size());
        return;
      }
    }
    FAIL("pingma-registry serve printed no 'listening on' line");
  }

  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    if (out_ != nullptr) fclose(out_);
    out_ = nullptr;
  }

  const std::string& url() const { return url_; }

  // One set-up call: (HTTP status, body as JSON or null).
  std::pair<long, json> Call(const char* method, const std::string& path, const std::string& token,
                             const json* body = nullptr) {
    CURL* curl = curl_easy_init();
    REQUIRE(curl != nullptr);
    std::string answer;
    const std::string url = url_ + path;
    const std::string text = body ? body->dump() : "";
    curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (body) curl_easy_setopt(curl, CURLOPT_POSTFIELDS, text.c_str());
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &answer);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 120L);
    const CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    REQUIRE_MESSAGE(rc == CURLE_OK, method, " ", path, ": ", curl_easy_strerror(rc));
    return {status, json::parse(answer, nullptr, false)};
  }

  json Post(const std::string& path, const std::string& token, const json& body,
            long expected = 201) {
    auto [status, answer] = Call("POST", path, token, &body);
    REQUIRE_MESSAGE(status == expected, "POST ", path, " ", body.dump(), " -> ", status, " ",
                    answer.dump());
    return answer;
  }

 private:
  fs::path dir_;
  std::string db_;
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
  std::string url_;
};

json CylinderBody(const std::string& code, const std::string& owner) {
  return {{"code", code},
          {"owner_company_id", owner},
          {"model", "YSP35.5"},
          {"phase", "gas"},
          {"manufacturer", "Hebei Example Cylinder Co."},
          {"serial", "S-" + code},
          {"manufactured", Month(2)},
          {"tare_kg", 16.4},
          {"allowed_fill_kg", 14.9},
          {"design_life_years", 8},
          {"registration_no", "REG-" + code},
          {"last_inspection", Day(-700)},
          {"next_inspection_due", Day(700)}};
}

// A fill record as POST /v1/fills takes it.
json FillRecord(const std::string& code, const std::string& check_id) {
  json r = {{"event_id", pingma::station::NewUuid()},
            {"code", code},
            {"station_id", "ST-01"},
            {"operator_id", "OP-7"},
            {"scale_id", "S1"},
            {"started_at", Now().ToString()},
            {"ended_at", Now().ToString()},
            {"tare_kg", 16.4},
            {"gross_before_kg", 16.9},
            {"gross_after_kg", 31.4},
            {"net_kg", 14.5},
            {"residual_kg", 0.5},
            {"result", "ok"},
            {"post_checks", {{"leak_test", "pass"}, {"reweigh", "pass"}}}};
  if (!check_id.empty()) r["check_id"] = check_id;
  return r;
}

CheckRequest Request(const std::string& scan) {
  CheckRequest r;
  r.station_id = "ST-01";
  r.operator_id = "OP-7";
  r.scan = scan;
  return r;
}

std::vector<std::string> Codes(const CheckAnswer& a) {
  std::vector<std::string> out;
  for (const auto& r : a.reasons) out.push_back(r.code);
  return out;
}

// The world every case shares: one registry, set up once (12,000 cylinders).
struct World {
  Registry reg;
  std::string admin, station, inspector;

  World() {
    admin = reg.Token("admin", "root");
    station = reg.Token("station", "ST-01");
    inspector = reg.Token("inspector", "AG-1");
    reg.Start();
    for (const char* company : {"CO-A", "CO-B"}) {
      reg.Post("/v1/companies", admin,
               {{"id", company},
                {"name", std::string("Company ") + company},
                {"filling_license",
                 {{"number", std::string("TS-") + company}, {"valid_until", Day(365)}}}});
    }
    reg.Post("/v1/stations", admin,
             {{"id", "ST-01"}, {"company_id", "CO-A"}, {"name", "Station 1"}, {"district", "X"}});
    reg.Post("/v1/operators", admin,
             {{"id", "OP-7"},
              {"company_id", "CO-A"},
              {"name", "Operator 7"},
              {"certificate", {{"number", "CERT-7"}, {"valid_until", Day(365)}}}});

    json fleet = json::array();
    for (int i = 0; i < kFleetSize; ++i) {
      char code[32];
      std::snprintf(code, sizeof code, "FL%08d", i);
      fleet.push_back(CylinderBody(code, "CO-A"));
    }
    json legal = CylinderBody("SP-LEGAL", "CO-A");
    legal["carriers"] = {"EPC:3074257BF7194E4000001A85"};
    json overdue = CylinderBody("SP-OVERDUE", "CO-A");
    overdue["last_inspection"] = Day(-1462);
    overdue["next_inspection_due"] = Day(-1);
    json dual = CylinderBody("SP-DUAL", "CO-A");
    dual["model"] = "YSP118-II";
    dual["phase"] = "dual";
    dual["tare_kg"] = 48.0;
    dual.erase("allowed_fill_kg");
    for (const json& c : {legal, overdue, dual, CylinderBody("SP-OTHER", "CO-B"),
                          CylinderBody("SP-OFFLINE", "CO-A"), CylinderBody("SP-STALE", "CO-A"),
                          CylinderBody("SP-AGAINST", "CO-A")}) {
      fleet.push_back(c);
    }
    const json answer = reg.Post("/v1/cylinders/batch", admin, {{"cylinders", fleet}}, 200);
    for (const json& r : answer["results"]) {
      REQUIRE_MESSAGE(r["status"] == 201, r.dump());
    }
  }

  ClientOptions Options() const {
    ClientOptions o;
    o.base_url = reg.url();
    o.token = station;
    return o;
  }
};

World& TheWorld() {
  static World world;
  return world;
}

}  // namespace

TEST_CASE("Check: allow with limits, block with reasons, the registry's errors as Status") {
  World& w = TheWorld();
  RegistryClient client(w.Options());

  auto allow = client.Check(Request("https://x.example/c/SP-LEGAL"));
  REQUIRE_MESSAGE(allow.ok(), allow.status().ToString());
  CHECK(allow->allowed);
  CHECK(!allow->offline);
  CHECK(!allow->check_id.empty());
  CHECK(allow->reasons.empty());
  REQUIRE(allow->fill);
  CHECK(allow->fill->tare_kg == 16.4);
  CHECK(allow->fill->max_kg == 14.9);
  CHECK(allow->fill->min_kg == 14.1);
  CHECK(allow->fill->target_kg == 14.5);
  REQUIRE(allow->cylinder);
  CHECK(allow->cylinder->code == "SP-LEGAL");
  CHECK(allow->cylinder->owner_company_id == "CO-A");
  CHECK(allow->cylinder->state == "active");
  CHECK(allow->cylinder->next_inspection_due == Day(700));
  CHECK(json::parse(allow->json)["check_id"] == allow->check_id);

  auto block = client.Check(Request("SP-OVERDUE"));
  REQUIRE(block.ok());
  CHECK(!block->allowed);
  CHECK(Codes(*block) == std::vector<std::string>{"INSPECTION_OVERDUE"});
  CHECK(block->reasons[0].message.find(pingma::TitleZh(pingma::ReasonCode::kInspectionOverdue)) !=
        std::string::npos);
  CHECK(!block->fill);

  auto unknown = client.Check(Request("NO-SUCH-CODE"));
  REQUIRE(unknown.ok());
  CHECK(Codes(*unknown) == std::vector<std::string>{"UNKNOWN_CODE"});
  CHECK(!unknown->cylinder);

  CheckRequest other_station = Request("SP-LEGAL");
  other_station.station_id = "ST-02";
  auto denied = client.Check(other_station);
  CHECK(denied.status().code() == StatusCode::kPermissionDenied);
  CHECK(denied.status().message().find("ST-02") != std::string::npos);

  CheckRequest bad_defect = Request("SP-LEGAL");
  bad_defect.defects = {"wobbly"};
  CHECK(client.Check(bad_defect).status().code() == StatusCode::kInvalid);

  ClientOptions bad_token = w.Options();
  bad_token.token = "not-a-token";
  RegistryClient stranger(bad_token);
  auto refused = stranger.Check(Request("SP-LEGAL"));
  CHECK(refused.status().code() == StatusCode::kUnauthenticated);
  CHECK(refused.status().message().find("/v1/fill-checks") != std::string::npos);
}

TEST_CASE("PostFill: stored, then a duplicate; a bad record is a permanent error") {
  World& w = TheWorld();
  RegistryClient client(w.Options());
  auto check = client.Check(Request("SP-LEGAL"));
  REQUIRE(check.ok());
  REQUIRE(check->allowed);

  const json record = FillRecord("SP-LEGAL", check->check_id);
  auto first = client.PostFill(record.dump());
  REQUIRE_MESSAGE(first.ok(), first.status().ToString());
  CHECK(*first == Upload::kStored);
  auto again = client.PostFill(record.dump());
  REQUIRE(again.ok());
  CHECK(*again == Upload::kDuplicate);

  json heavy = FillRecord("SP-LEGAL", check->check_id);
  heavy["gross_after_kg"] = 5000;
  auto invalid = client.PostFill(heavy.dump());
  CHECK(invalid.status().code() == StatusCode::kInvalid);
  CHECK(invalid.status().message().find("gross_after_kg") != std::string::npos);

  auto no_check = client.PostFill(FillRecord("SP-LEGAL", "").dump());
  CHECK(no_check.status().code() == StatusCode::kConflict);
  CHECK(client.PostFill("{not json").status().code() == StatusCode::kMalformed);
}

TEST_CASE("Sync: the whole fleet in pages, then only what changed") {
  World& w = TheWorld();
  RegistryClient client(w.Options());
  auto opened = Replica::Open(w.reg.dir() + "/replica.db");
  REQUIRE(opened.ok());
  Replica& replica = **opened;
  CHECK(!replica.ready());

  const auto t0 = Clock::now();
  auto full = replica.Sync(client, "ST-01");
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  REQUIRE_MESSAGE(full.ok(), full.status().ToString());
  // CO-A's cylinders only: the fleet and the six of SP-* that it owns.
  const std::int64_t owned = kFleetSize + 6;
  CHECK(full->cylinders == owned);
  CHECK(full->pages == (owned + 4999) / 5000);
  CHECK(*replica.Size() == owned);
  CHECK(replica.ready());
  MESSAGE("full sync of ", owned, " cylinders in ", full->pages, " pages: ", seconds, " s");

  // Nothing changed: one (empty) page.
  auto idle = replica.Sync(client, "ST-01");
  REQUIRE(idle.ok());
  CHECK(idle->cylinders == 0);
  CHECK(idle->pages == 1);
  CHECK(idle->cursor == full->cursor);

  // Three changes: a new carrier (a change of its record) and two new cylinders.
  w.reg.Post("/v1/cylinders/FL00000007/carriers", w.admin, {{"carrier", "UID:E004015012345678"}});
  w.reg.Post("/v1/cylinders", w.admin, CylinderBody("SP-NEW1", "CO-A"));
  w.reg.Post("/v1/cylinders", w.admin, CylinderBody("SP-NEW2", "CO-A"));
  w.reg.Post("/v1/cylinders", w.admin, CylinderBody("SP-NEW3", "CO-B"));  // not ours
  auto incremental = replica.Sync(client, "ST-01");
  REQUIRE(incremental.ok());
  CHECK(incremental->cylinders == 3);
  CHECK(incremental->pages == 1);
  CHECK(*replica.Size() == owned + 2);
  auto tag = replica.Decide(Request("UID:E004015012345678"), Now());
  REQUIRE(tag.ok());
  REQUIRE(tag->cylinder);
  CHECK(tag->cylinder->code == "FL00000007");

  // A reopened replica resumes from its cursor: nothing to fetch.
  opened->reset();
  auto reopened = Replica::Open(w.reg.dir() + "/replica.db");
  REQUIRE(reopened.ok());
  CHECK((*reopened)->ready());
  auto resumed = (*reopened)->Sync(client, "ST-01");
  REQUIRE(resumed.ok());
  CHECK(resumed->cylinders == 0);
}

TEST_CASE("offline Decide agrees with the registry's online decision") {
  World& w = TheWorld();
  RegistryClient client(w.Options());
  auto opened = Replica::Open(w.reg.dir() + "/replica-agree.db");
  REQUIRE(opened.ok());
  Replica& replica = **opened;
  REQUIRE(replica.Sync(client, "ST-01").ok());

  // Offline first: an online check of the dual-phase cylinder flags it for scrapping.
  for (const char* scan :
       {"SP-LEGAL", "EPC:3074257BF7194E4000001A85", "SP-OVERDUE", "SP-DUAL", "FL00000042"}) {
    CAPTURE(scan);
    auto offline = replica.Decide(Request(scan), Now());
    auto online = client.Check(Request(scan));
    REQUIRE_MESSAGE(offline.ok(), offline.status().ToString());
    REQUIRE_MESSAGE(online.ok(), online.status().ToString());
    CHECK(offline->offline);
    CHECK(offline->allowed == online->allowed);
    CHECK(Codes(*offline) == Codes(*online));
    for (size_t i = 0; i < offline->reasons.size() && i < online->reasons.size(); ++i) {
      CHECK(offline->reasons[i].message == online->reasons[i].message);
    }
    CHECK(offline->fill.has_value() == online->fill.has_value());
    if (offline->fill && online->fill) CHECK(offline->fill->max_kg == online->fill->max_kg);
  }
  // Both block what the replica does not hold, for different reasons: the registry
  // knows the other company's cylinder (NOT_OWNED); the station's feed never had it.
  auto other_offline = replica.Decide(Request("SP-OTHER"), Now());
  auto other_online = client.Check(Request("SP-OTHER"));
  REQUIRE(other_offline.ok());
  REQUIRE(other_online.ok());
  CHECK(!other_offline->allowed);
  CHECK(!other_online->allowed);
  CHECK(Codes(*other_offline) == std::vector<std::string>{"UNKNOWN_CODE"});
  CHECK(Codes(*other_online) == std::vector<std::string>{"NOT_OWNED"});
  auto unknown_offline = replica.Decide(Request("NO-SUCH-CODE"), Now());
  auto unknown_online = client.Check(Request("NO-SUCH-CODE"));
  CHECK(Codes(*unknown_offline) == Codes(*unknown_online));
}

TEST_CASE("offline fills: stored with their decision; a disagreement is a violation") {
  World& w = TheWorld();
  RegistryClient client(w.Options());
  auto opened = Replica::Open(w.reg.dir() + "/replica-offline.db");
  REQUIRE(opened.ok());
  Replica& replica = **opened;
  REQUIRE(replica.Sync(client, "ST-01").ok());

  // The replica goes stale: the cylinder fails an inspection after the sync.
  w.reg.Post("/v1/inspections", w.inspector,
             {{"code", "SP-STALE"}, {"date", Day(0)}, {"result", "fail"}, {"report_no", "R-1"}});

  auto violations = [&](const std::string& code) {
    auto [status, history] =
        w.reg.Call("GET", "/v1/cylinders/" + code + "/history?limit=500", w.admin);
    REQUIRE(status == 200);
    std::vector<json> out;
    for (const json& e : history["events"]) {
      if (e["type"] == "violation") out.push_back(e);
    }
    return out;
  };
  auto upload = [&](const std::string& code) {
    auto decided = replica.Decide(Request(code), Now());
    REQUIRE(decided.ok());
    json record = FillRecord(code, "");
    record["offline"] = true;
    record["offline_decision"] = json::parse(decided->json);
    auto stored = client.PostFill(record.dump());
    REQUIRE_MESSAGE(stored.ok(), stored.status().ToString());
    CHECK(*stored == Upload::kStored);
    return *decided;
  };

  // Agreed (both allow): stored, no violation.
  CHECK(upload("SP-OFFLINE").allowed);
  CHECK(violations("SP-OFFLINE").empty());

  // The replica allowed, the registry would have blocked: a violation.
  CHECK(upload("SP-STALE").allowed);
  auto stale = violations("SP-STALE");
  REQUIRE(stale.size() == 1);
  CHECK(stale[0]["registry_decision"] == "block");
  CHECK(stale[0]["offline_decision"]["decision"] == "allow");

  // Filled against the station's own block: a violation that says so.
  CHECK(!upload("SP-OVERDUE").allowed);
  auto against = violations("SP-OVERDUE");
  REQUIRE(!against.empty());
  CHECK(against.back()["filled_against_own_block"] == true);
}

TEST_CASE("an unreachable or silent registry is kUnavailable within the deadline") {
  // A socket that listens and never answers: the connection is accepted by the
  // kernel, so only the deadline ends the call.
  const int silent = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(silent >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(silent, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(listen(silent, 8) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(getsockname(silent, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ClientOptions options;
  options.base_url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  options.token = "t";
  options.check_deadline = std::chrono::milliseconds(300);
  RegistryClient client(options);
  const auto t0 = Clock::now();
  auto answer = client.Check(Request("SP-LEGAL"));
  const auto waited = Clock::now() - t0;
  CHECK(answer.status().code() == StatusCode::kUnavailable);
  CHECK(answer.status().message().find(options.base_url) != std::string::npos);
  // It gave up at its deadline, not at some socket default (a wide margin for a
  // loaded machine: this is not a speed test).
  CHECK(waited < std::chrono::seconds(5));
  close(silent);

  // The real registry stopped: its port refuses, at once.
  World& w = TheWorld();
  RegistryClient stopped(w.Options());
  REQUIRE(stopped.Check(Request("SP-LEGAL")).ok());  // the kept connection is open
  w.reg.Stop();
  auto check = stopped.Check(Request("SP-LEGAL"));
  CHECK(check.status().code() == StatusCode::kUnavailable);
  CHECK(stopped.PostFill(FillRecord("SP-LEGAL", "x").dump()).status().code() ==
        StatusCode::kUnavailable);
  CHECK(stopped.Fleet("ST-01", "").status().code() == StatusCode::kUnavailable);
  CHECK(stopped.FetchPolicy().status().code() == StatusCode::kUnavailable);
}
