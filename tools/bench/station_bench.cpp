// pingma-bench-station: the C++ parts of the station's benchmarks (bench.py
// station-decide, replica, positions drive it). Each subcommand prints one JSON
// object on stdout; times are measured here, ratios are taken by bench.py.
//
//   sync        Replica::Sync of a replica file from a running registry, timed
//   split       what Sync does, in its three stages timed apart: every page fetched
//               (RegistryClient::Fleet: the registry's work, the transfer, the JSON
//               checked and indexed), then every page read (ReadFleetPage: the
//               cylinders and facts decoded and checked), then every page stored
//               (Replica::ApplyPage: SQLite)
//   insert      the baseline of the sync: every cylinder row of a replica file read
//               into memory, then inserted into a new file of the replica's shape
//               in one transaction, one prepared statement, WAL, synchronous=FULL
//   decide      Replica::Decide on a synced replica: random known codes and a share
//               of unknown ones, each call timed; then the sighting that Decide
//               stores for a known code (the same two statements, autocommit, on
//               the same file with the replica's pragmas) timed alone
//   check       RegistryClient::Check (the station's libcurl client, kept alive) on
//               distinct codes, timed: the registry's fill check without the station
//   modbus-read Scale::Read() (the driver the position uses) and a single raw
//               register read, timed against a running pingma-scale-sim: the floor
//               of the station's stable weight read
//   relay       a line in on a TCP socket, the same line out on stdout: the least any
//               station program does between a scanner and whoever reads its events
//               (one wake-up on the scanner's socket, one write to a pipe)
#include <arpa/inet.h>
#include <modbus/modbus.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "registry_client.h"
#include "replica.h"
#include "scale.h"

using namespace pingma;
using namespace pingma::station;
using nlohmann::json;
using Steady = std::chrono::steady_clock;

namespace {

double Seconds(Steady::time_point since) {
  return std::chrono::duration<double>(Steady::now() - since).count();
}

double Micros(Steady::time_point from, Steady::time_point to) {
  return std::chrono::duration<double, std::micro>(to - from).count();
}

// p50, p99 and max of a list of microseconds.
json Percentiles(std::vector<double> us) {
  if (us.empty()) return json{{"n", 0}};
  std::sort(us.begin(), us.end());
  auto at = [&](double q) {
    const auto i = static_cast<std::size_t>(q * static_cast<double>(us.size() - 1) + 0.5);
    return us[std::min(i, us.size() - 1)];
  };
  return json{{"n", us.size()}, {"p50_us", at(0.5)}, {"p99_us", at(0.99)}, {"max_us", us.back()}};
}

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "pingma-bench-station: %s\n", what.c_str());
  std::exit(1);
}

std::string ReadToken(const std::string& path) {
  std::ifstream in(path);
  std::string token;
  if (!(in >> token)) Fail("cannot read a token from " + path);
  return token;
}

// A station's client of the registry at `url`, patient enough for a whole feed.
ClientOptions FeedClient(const std::string& url, const std::string& token_file) {
  ClientOptions options;
  options.base_url = url;
  options.token = ReadToken(token_file);
  options.fleet_timeout = std::chrono::milliseconds(600000);
  return options;
}

int RunSync(const std::string& url, const std::string& token_file, const std::string& station_id,
            const std::string& path) {
  auto replica = Replica::Open(path);
  if (!replica.ok()) Fail(replica.status().message());
  RegistryClient client(FeedClient(url, token_file));
  const auto start = Steady::now();
  auto stats = (*replica)->Sync(client, station_id);
  const double seconds = Seconds(start);
  if (!stats.ok()) Fail("sync: " + stats.status().message());
  auto size = (*replica)->Size();
  std::printf("%s\n", json{{"seconds", seconds},
                           {"pages", stats->pages},
                           {"received", stats->cylinders},
                           {"cylinders", size.ok() ? *size : -1},
                           {"cursor", stats->cursor}}
                          .dump()
                          .c_str());
  return 0;
}

int RunSplit(const std::string& url, const std::string& token_file, const std::string& station_id,
             const std::string& path) {
  auto replica = Replica::Open(path);
  if (!replica.ok()) Fail(replica.status().message());
  RegistryClient client(FeedClient(url, token_file));
  std::vector<FleetPage> pages;
  std::size_t bytes = 0;
  std::string cursor;
  const auto fetch_start = Steady::now();
  for (int guard = 0; guard < 100000; ++guard) {
    auto page = client.Fleet(station_id, cursor);
    if (!page.ok()) Fail("fleet: " + page.status().message());
    bytes += page->doc.text().size();
    cursor = page->next_cursor;
    const bool more = page->more;
    pages.push_back(std::move(*page));
    if (!more) break;
  }
  const double fetch_seconds = Seconds(fetch_start);
  const auto read_start = Steady::now();
  std::vector<std::unique_ptr<const ReplicaPage>> read;
  for (FleetPage& page : pages) {
    auto one = ReadFleetPage(std::move(page));
    if (!one.ok()) Fail("read: " + one.status().message());
    read.push_back(std::move(*one));
  }
  const double read_seconds = Seconds(read_start);
  const auto apply_start = Steady::now();
  for (const auto& page : read) {
    if (Status s = (*replica)->ApplyPage(*page); !s.ok()) Fail("apply: " + s.message());
  }
  const double apply_seconds = Seconds(apply_start);
  std::printf("%s\n", json{{"pages", pages.size()},
                           {"bytes", bytes},
                           {"fetch_seconds", fetch_seconds},
                           {"read_seconds", read_seconds},
                           {"apply_seconds", apply_seconds}}
                          .dump()
                          .c_str());
  return 0;
}

// Raw SQLite, as pingma-bench-sqlite-insert does for the registry's batch.
void Exec(sqlite3* db, const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    const std::string message = err ? err : "?";
    sqlite3_free(err);
    Fail(std::string(sql) + ": " + message);
  }
}

int RunInsert(const std::string& from, const std::string& path) {
  struct Row {
    std::string code, owner, record;
  };
  std::vector<Row> rows;
  sqlite3* src = nullptr;
  if (sqlite3_open_v2(from.c_str(), &src, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    Fail("cannot open " + from);
  }
  sqlite3_stmt* read = nullptr;
  if (sqlite3_prepare_v2(src, "SELECT code, owner_company_id, record FROM cylinders", -1, &read,
                         nullptr) != SQLITE_OK) {
    Fail(sqlite3_errmsg(src));
  }
  auto text = [&](int i) {
    const unsigned char* p = sqlite3_column_text(read, i);
    return std::string(reinterpret_cast<const char*>(p),
                       static_cast<std::size_t>(sqlite3_column_bytes(read, i)));
  };
  while (sqlite3_step(read) == SQLITE_ROW) rows.push_back({text(0), text(1), text(2)});
  sqlite3_finalize(read);
  sqlite3_close(src);
  std::size_t bytes = 0;
  for (const Row& r : rows) bytes += r.code.size() + r.owner.size() + r.record.size();

  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) Fail("cannot open " + path);
  Exec(db,
       "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
       "CREATE TABLE cylinders(code TEXT PRIMARY KEY, owner_company_id TEXT NOT NULL,"
       " record TEXT NOT NULL) WITHOUT ROWID;");
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "INSERT INTO cylinders(code, owner_company_id, record) VALUES(?,?,?)",
                         -1, &st, nullptr) != SQLITE_OK) {
    Fail(sqlite3_errmsg(db));
  }
  const auto start = Steady::now();
  Exec(db, "BEGIN");
  for (const Row& r : rows) {
    sqlite3_bind_text(st, 1, r.code.data(), static_cast<int>(r.code.size()), SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r.owner.data(), static_cast<int>(r.owner.size()), SQLITE_STATIC);
    sqlite3_bind_text(st, 3, r.record.data(), static_cast<int>(r.record.size()), SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) Fail(sqlite3_errmsg(db));
    sqlite3_reset(st);
  }
  Exec(db, "COMMIT");
  const double seconds = Seconds(start);
  sqlite3_finalize(st);
  sqlite3_close(db);
  std::printf("%s\n",
              json{{"seconds", seconds}, {"rows", rows.size()}, {"bytes", bytes}}.dump().c_str());
  return 0;
}

int RunDecide(const std::string& path, const std::string& station_id,
              const std::string& operator_id, const std::string& prefix, long cylinders,
              long decisions, double unknown_share) {
  auto replica = Replica::Open(path);
  if (!replica.ok()) Fail(replica.status().message());
  auto size = (*replica)->Size();
  if (!size.ok() || !(*replica)->ready()) Fail("the replica is not synced");
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<long> pick(0, cylinders - 1);
  std::bernoulli_distribution unknown(unknown_share);
  std::vector<double> known_us, unknown_us, all_us;
  long allowed = 0, blocked = 0;
  for (long i = 0; i < decisions; ++i) {
    const bool is_unknown = unknown(rng);
    // Unknown codes differ from the fleet's in their prefix ("X" added).
    const std::string code = fmt::format("{}{}{:08d}", prefix, is_unknown ? "X" : "", pick(rng));
    CheckRequest request{station_id, operator_id, code, 16.9, {}};
    const Instant now{std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count()};
    const auto start = Steady::now();
    auto answer = (*replica)->Decide(request, now);
    const double us = Micros(start, Steady::now());
    if (!answer.ok()) Fail("decide " + code + ": " + answer.status().message());
    (answer->allowed ? allowed : blocked) += 1;
    (is_unknown ? unknown_us : known_us).push_back(us);
    all_us.push_back(us);
  }
  replica->reset();
  // The write a known code costs Decide: its sighting stored, old ones pruned, each
  // statement its own transaction as in Replica::Decide.
  std::vector<double> write_us;
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) Fail("cannot open " + path);
  Exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
  sqlite3_stmt* put = nullptr;
  sqlite3_stmt* prune = nullptr;
  if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO sightings(code, at) VALUES(?, ?)", -1, &put,
                         nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "DELETE FROM sightings WHERE at < ?", -1, &prune, nullptr) !=
          SQLITE_OK) {
    Fail(sqlite3_errmsg(db));
  }
  for (long i = 0; i < std::min(decisions, 2000L); ++i) {
    const std::string code = fmt::format("{}{:08d}", prefix, pick(rng));
    const std::int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count();
    const auto start = Steady::now();
    sqlite3_bind_text(put, 1, code.data(), static_cast<int>(code.size()), SQLITE_STATIC);
    sqlite3_bind_int64(put, 2, now_ms);
    if (sqlite3_step(put) != SQLITE_DONE) Fail(sqlite3_errmsg(db));
    sqlite3_reset(put);
    sqlite3_bind_int64(prune, 1, now_ms - 30 * 60000);
    if (sqlite3_step(prune) != SQLITE_DONE) Fail(sqlite3_errmsg(db));
    sqlite3_reset(prune);
    write_us.push_back(Micros(start, Steady::now()));
  }
  sqlite3_finalize(put);
  sqlite3_finalize(prune);
  sqlite3_close(db);
  std::printf("%s\n", json{{"replica_cylinders", *size},
                           {"sighting_write", Percentiles(write_us)},
                           {"all", Percentiles(all_us)},
                           {"known", Percentiles(known_us)},
                           {"unknown", Percentiles(unknown_us)},
                           {"allowed", allowed},
                           {"blocked", blocked}}
                          .dump()
                          .c_str());
  return 0;
}

int RunCheck(const std::string& url, const std::string& token_file, const std::string& station_id,
             const std::string& operator_id, const std::string& prefix, long first, long count) {
  ClientOptions options;
  options.base_url = url;
  options.token = ReadToken(token_file);
  RegistryClient client(options);
  std::vector<double> us, sending_us;
  for (long i = first; i < first + count; ++i) {
    CheckRequest request{station_id, operator_id, fmt::format("{}{:08d}", prefix, i), 16.9, {}};
    const auto start = Steady::now();
    auto answer = client.Check(request);
    us.push_back(Micros(start, Steady::now()));
    if (!answer.ok()) Fail("check: " + answer.status().message());
    sending_us.push_back(answer->sending_ms * 1000);
  }
  std::printf(
      "%s\n",
      json{{"check", Percentiles(us)}, {"sending", Percentiles(sending_us)}}.dump().c_str());
  return 0;
}

int RunModbusRead(const std::string& host, int port, long reads) {
  ScaleEndpoint endpoint;
  endpoint.host = host;
  endpoint.port = port;
  auto scale = MakeModbusScale(endpoint, DefaultProfile());
  if (Status s = scale->Connect(); !s.ok()) Fail(s.message());
  std::vector<double> read_us, raw_us;
  long stable = 0;
  for (long i = 0; i < reads; ++i) {
    const auto start = Steady::now();
    auto r = scale->Read();
    read_us.push_back(Micros(start, Steady::now()));
    if (!r.ok()) Fail("Read: " + r.status().message());
    stable += r->stable ? 1 : 0;
  }
  scale->Disconnect();
  // One request of two registers (the gross weight), on a libmodbus context of its own.
  modbus_t* ctx = modbus_new_tcp_pi(host.c_str(), std::to_string(port).c_str());
  if (ctx == nullptr || modbus_connect(ctx) != 0) Fail("raw modbus connect failed");
  for (long i = 0; i < reads; ++i) {
    std::uint16_t regs[2];
    const auto start = Steady::now();
    const int rc = modbus_read_registers(ctx, 0, 2, regs);
    raw_us.push_back(Micros(start, Steady::now()));
    if (rc != 2) Fail(std::string("raw read: ") + modbus_strerror(errno));
  }
  modbus_close(ctx);
  modbus_free(ctx);
  std::printf("%s\n", json{{"read", Percentiles(read_us)},
                           {"raw_request", Percentiles(raw_us)},
                           {"stable_reads", stable}}
                          .dump()
                          .c_str());
  return 0;
}

// Blocking reads of one connection, each complete line written out in one write(2):
// no threads, no event loop, no parsing.
int RunRelay() {
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listener, 1) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    Fail(std::string("relay: cannot listen: ") + std::strerror(errno));
  }
  const std::string hello = fmt::format("{}\n", ntohs(addr.sin_port));
  if (write(STDOUT_FILENO, hello.data(), hello.size()) < 0) return 1;
  const int conn = accept(listener, nullptr, nullptr);
  if (conn < 0) Fail(std::string("relay: accept: ") + std::strerror(errno));
  std::string pending;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(conn, buf, sizeof buf);
    if (n <= 0) break;
    pending.append(buf, static_cast<std::size_t>(n));
    const std::size_t end = pending.rfind('\n');
    if (end == std::string::npos) continue;
    if (write(STDOUT_FILENO, pending.data(), end + 1) < 0) break;
    pending.erase(0, end + 1);
  }
  close(conn);
  close(listener);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pingma-bench-station: the station's benchmarks (driven by bench.py)"};
  app.require_subcommand(1);

  std::string url, token_file, station_id = "ST-01", replica, db, operator_id = "OP-7",
                               prefix = "BM", host = "127.0.0.1";
  long cylinders = 1000000, decisions = 100000, reads = 2000;
  double unknown_share = 0.05;
  int port = 0;

  auto* sync = app.add_subcommand("sync", "time Replica::Sync from a registry");
  sync->add_option("--registry", url, "the registry's base URL")->required();
  sync->add_option("--token-file", token_file, "a file holding the station's token")->required();
  sync->add_option("--station", station_id)->capture_default_str();
  sync->add_option("--replica", replica, "the replica file (created if new)")->required();

  auto* split = app.add_subcommand("split", "Sync's fetching, reading and storing, timed apart");
  split->add_option("--registry", url, "the registry's base URL")->required();
  split->add_option("--token-file", token_file, "a file holding the station's token")->required();
  split->add_option("--station", station_id)->capture_default_str();
  split->add_option("--replica", replica, "a new replica file")->required();

  auto* insert = app.add_subcommand("insert", "baseline: the replica's rows into a new file");
  insert->add_option("--from", replica, "a synced replica file")->required();
  insert->add_option("--db", db, "the new file")->required();

  auto* decide = app.add_subcommand("decide", "time Replica::Decide");
  decide->add_option("--replica", replica, "a synced replica file")->required();
  decide->add_option("--station", station_id)->capture_default_str();
  decide->add_option("--operator", operator_id)->capture_default_str();
  decide->add_option("--prefix", prefix, "codes are PREFIX + 8 digits")->capture_default_str();
  decide->add_option("--cylinders", cylinders, "codes drawn from 0..N-1")->capture_default_str();
  decide->add_option("--decisions", decisions)->capture_default_str();
  decide->add_option("--unknown-share", unknown_share)->capture_default_str();

  long first = 0, count = 200;
  auto* check = app.add_subcommand("check", "time RegistryClient::Check");
  check->add_option("--registry", url, "the registry's base URL")->required();
  check->add_option("--token-file", token_file, "a file holding the station's token")->required();
  check->add_option("--station", station_id)->capture_default_str();
  check->add_option("--operator", operator_id)->capture_default_str();
  check->add_option("--prefix", prefix, "codes are PREFIX + 8 digits")->capture_default_str();
  check->add_option("--first", first, "the first code's number")->capture_default_str();
  check->add_option("--count", count, "checks, one code each")->capture_default_str();

  auto* modbus = app.add_subcommand("modbus-read", "time Scale::Read() and one raw request");
  modbus->add_option("--host", host)->capture_default_str();
  modbus->add_option("--port", port)->required();
  modbus->add_option("--reads", reads)->capture_default_str();

  auto* relay =
      app.add_subcommand("relay", "lines from one TCP connection to stdout; prints its port first");

  CLI11_PARSE(app, argc, argv);
  if (*relay) return RunRelay();
  if (*sync) return RunSync(url, token_file, station_id, replica);
  if (*check) return RunCheck(url, token_file, station_id, operator_id, prefix, first, count);
  if (*split) return RunSplit(url, token_file, station_id, replica);
  if (*insert) return RunInsert(replica, db);
  if (*decide) {
    return RunDecide(replica, station_id, operator_id, prefix, cylinders, decisions, unknown_share);
  }
  return RunModbusRead(host, port, reads);
}
