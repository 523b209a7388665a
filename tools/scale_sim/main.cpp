// pingma-scale-sim: a filling scale (灌装秤) speaking API.md's pingma-fill-v1 profile, for
// the station agent's tests and for trying a station without a real indicator. Its
// signals (lamps and buzzer on coils 0-3, the message on register 9) are kept and
// logged, as the interlock's writes are, for the control port's status.
//
//   pingma-scale-sim --listen HOST:PORT --control HOST:PORT [--flow-kg-s F]
//   pingma-scale-sim --rtu DEVICE [--baud N] [--parity N|E|O] --control HOST:PORT
//
// Threads: the physics ticks at 50 Hz, one thread serves Modbus (every TCP client in
// one poll loop, or the serial line), one serves the control port's text lines. They
// share the ScaleModel under one mutex, held only for a model call (microseconds), so
// a Modbus request never waits on the physics. SIGINT or SIGTERM ends it with status 0.
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <modbus/modbus.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "pingma/common/command_line.h"

#include "scale_model.h"

namespace {

using pingma::scalesim::Micros;
using pingma::scalesim::ScaleConfig;
using pingma::scalesim::ScaleModel;
using pingma::scalesim::WriteOutcome;
using json = nlohmann::ordered_json;

constexpr auto kTick = std::chrono::milliseconds(20);  // physics at 50 Hz
constexpr int kPollMs = 50;  // how soon a server loop sees a fault or the stop flag
constexpr std::size_t kMaxModbusClients = 64;
constexpr std::size_t kMaxControlClients = 16;
constexpr std::size_t kMaxControlLine = 1024;

std::atomic<bool> g_stop{false};

void Log(const std::string& line) {
  std::fprintf(stderr, "pingma-scale-sim: %s\n", line.c_str());
  std::fflush(stderr);
}

std::string Rfc3339Now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buf, ms);
}

/// The model and its clock, shared by the threads. Thread-safe: every call holds the
/// one mutex for a single model operation.
class SharedScale {
 public:
  explicit SharedScale(ScaleConfig config)
      : start_(std::chrono::steady_clock::now()), model_(config, Micros(0)) {}

  /// Runs `f(model, now)` under the lock, the model advanced to now.
  template <typename F>
  auto With(F&& f) {
    std::lock_guard<std::mutex> lock(mu_);
    const Micros now = Now();
    model_.Advance(now);
    return f(model_, now);
  }

 private:
  Micros Now() const {
    return std::chrono::duration_cast<Micros>(std::chrono::steady_clock::now() - start_);
  }

  const std::chrono::steady_clock::time_point start_;
  std::mutex mu_;
  ScaleModel model_;
};

/// Counters the control port's status line reports. Thread-safe (atomics).
struct ModbusStats {
  std::atomic<std::uint64_t> requests{0}, exceptions{0}, connections{0};
  std::atomic<int> clients{0};
};

// ---------------------------------------------------------------- sockets

struct HostPort {
  std::string host, port;
};

/// "127.0.0.1:1502", "localhost:0", "[::1]:1502".
bool ParseHostPort(const std::string& text, HostPort* out) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) return false;
  std::string host = text.substr(0, colon);
  const std::string port = text.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return false;
    host = host.substr(1, host.size() - 2);
  }
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return false;
  if (std::stoul(port) > 65535) return false;
  out->host = host;
  out->port = port;
  return true;
}

std::string FormatAddress(const sockaddr_storage& addr) {
  char host[NI_MAXHOST], port[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&addr), sizeof addr, host, sizeof host, port,
                  sizeof port, NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return "?";
  }
  if (addr.ss_family == AF_INET6) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

std::string LocalAddress(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "?";
  return FormatAddress(addr);
}

/// A listening TCP socket on `where`, or -1 with `error` set.
int Listen(const HostPort& where, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(where.host.c_str(), where.port.c_str(), &hints, &found); rc != 0) {
    *error = fmt::format("cannot resolve {}: {}", where.host, gai_strerror(rc));
    return -1;
  }
  int fd = -1;
  int last_errno = 0;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      last_errno = errno;
      continue;
    }
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 64) != 0) {
      last_errno = errno;
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  if (fd < 0) {
    *error = fmt::format("cannot listen on {}:{}: {}", where.host, where.port,
                         std::strerror(last_errno));
  }
  return fd;
}

/// Accepts one connection; -1 when there was none after all.
int Accept(int listen_fd, std::string* peer) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  const int fd = accept4(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_CLOEXEC);
  if (fd < 0) return -1;
  *peer = FormatAddress(addr);
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // A peer that stops reading must not stall the loop that serves everyone else.
  timeval timeout{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  return fd;
}

bool SendAll(int fd, const std::string& data) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

// ---------------------------------------------------------------- Modbus

/// Serves pingma-fill-v1 over libmodbus: TCP clients in one poll loop (as libmodbus's
/// bandwidth-server-many-up example does), or one RTU line. Owned and run by one thread.
class ModbusServer {
 public:
  ModbusServer(SharedScale* scale, ModbusStats* stats) : scale_(scale), stats_(stats) {}
  ~ModbusServer() {
    for (const Client& c : clients_) close(c.fd);
    if (listen_fd_ >= 0) close(listen_fd_);
    if (mapping_ != nullptr) modbus_mapping_free(mapping_);
    if (ctx_ != nullptr) {
      if (rtu_) modbus_close(ctx_);
      modbus_free(ctx_);
    }
  }
  ModbusServer(const ModbusServer&) = delete;
  ModbusServer& operator=(const ModbusServer&) = delete;

  /// Binds HOST:PORT; "" on success, else why. `bound` is the real address.
  std::string OpenTcp(const HostPort& where, std::string* bound) {
    std::string error;
    listen_fd_ = Listen(where, &error);
    if (listen_fd_ < 0) return error;
    *bound = LocalAddress(listen_fd_);
    // The context only frames and answers requests: each client's socket is handed to
    // it with modbus_set_socket before a receive or a reply.
    ctx_ = modbus_new_tcp("127.0.0.1", 502);
    return Setup();
  }

  std::string OpenRtu(const std::string& device, int baud, char parity, int unit) {
    ctx_ = modbus_new_rtu(device.c_str(), baud, parity, 8, 1);
    if (ctx_ == nullptr) return fmt::format("cannot use {}: {}", device, modbus_strerror(errno));
    rtu_ = true;
    rtu_name_ = "rtu " + device;
    modbus_set_response_timeout(ctx_, 0, 50'000);  // only used to skip other units' answers
    if (modbus_set_slave(ctx_, unit) != 0 || modbus_connect(ctx_) != 0) {
      const std::string why = modbus_strerror(errno);
      modbus_free(ctx_);
      ctx_ = nullptr;
      return fmt::format("cannot open {}: {}", device, why);
    }
    return Setup();
  }

  void Run() {
    if (rtu_) {
      RunRtu();
    } else {
      RunTcp();
    }
  }

 private:
  struct Client {
    int fd;
    std::string name;
  };

  std::string Setup() {
    if (ctx_ == nullptr) return "cannot create a Modbus context";
    // Bounds how long one half-sent request may hold the loop.
    modbus_set_byte_timeout(ctx_, 0, 200'000);
    modbus_set_indication_timeout(ctx_, 1, 0);
    mapping_ =
        modbus_mapping_new(pingma::scalesim::kCoilCount, 0, pingma::scalesim::kRegisterCount, 0);
    if (mapping_ == nullptr) return "cannot allocate the register map";
    return "";
  }

  bool Disconnected() {
    return scale_->With([](ScaleModel& m, Micros) { return m.faults().disconnect; });
  }

  void DropAll() {
    for (const Client& c : clients_) close(c.fd);
    if (!clients_.empty())
      Log(fmt::format("fault disconnect: dropped {} Modbus client(s)", clients_.size()));
    clients_.clear();
    stats_->clients = 0;
  }

  void RunTcp() {
    std::vector<pollfd> fds;
    while (!g_stop) {
      const bool disconnected = Disconnected();
      if (disconnected) DropAll();
      fds.assign(1, pollfd{listen_fd_, POLLIN, 0});
      for (const Client& c : clients_) fds.push_back(pollfd{c.fd, POLLIN, 0});
      if (poll(fds.data(), fds.size(), kPollMs) <= 0) continue;
      // Clients first, then the listener, so that indices still match clients_.
      std::vector<Client> kept;
      for (std::size_t i = 0; i < clients_.size(); ++i) {
        if (fds[i + 1].revents == 0 || Serve(clients_[i])) {
          kept.push_back(clients_[i]);
        } else {
          close(clients_[i].fd);
        }
      }
      clients_.swap(kept);
      if (fds[0].revents & POLLIN) {
        std::string peer;
        const int fd = Accept(listen_fd_, &peer);
        if (fd >= 0) {
          // A disconnected indicator, or too many masters: the connection is closed
          // at once, which a client sees as a dropped link.
          if (Disconnected() || clients_.size() >= kMaxModbusClients) {
            close(fd);
          } else {
            clients_.push_back({fd, peer});
            ++stats_->connections;
          }
        }
      }
      stats_->clients = static_cast<int>(clients_.size());
    }
  }

  /// One request from a readable client; false when the client is gone or broken.
  bool Serve(const Client& client) {
    modbus_set_socket(ctx_, client.fd);
    const int len = modbus_receive(ctx_, query_);
    if (len <= 0) return false;  // closed, reset, or a request cut off mid-frame
    return Handle(len, client.name);
  }

  void RunRtu() {
    const int fd = modbus_get_socket(ctx_);
    bool reported_hangup = false;
    while (!g_stop) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, kPollMs) <= 0) continue;
      if (p.revents & (POLLHUP | POLLERR)) {
        // The other end of a pty went away; wait for it rather than spin.
        if (!reported_hangup) Log("serial line hung up; waiting");
        reported_hangup = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
        if (!(p.revents & POLLIN)) continue;
      }
      const int len = modbus_receive(ctx_, query_);
      if (len == 0) {
        // Another unit's request. libmodbus then takes the next frame for that unit's
        // answer and drops it; where that unit is silent, the dropped frame would be
        // the master's next request. Let that skip happen now, bounded by the short
        // response timeout: an answer comes within it, a master's retry much later.
        modbus_receive(ctx_, query_);
        continue;
      }
      if (len < 0) continue;  // a bad CRC, a gap mid-frame
      reported_hangup = false;
      // A disconnected indicator says nothing; the master times out.
      if (Disconnected()) continue;
      Handle(len, rtu_name_);
    }
  }

  static std::uint16_t Word(const std::uint8_t* p) {
    return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
  }

  /// Checks and applies a request against the model, then answers it. False when the
  /// answer could not be sent.
  bool Handle(int len, const std::string& client) {
    ++stats_->requests;
    const int h = modbus_get_header_length(ctx_);
    if (len < h + 1) return true;
    const std::uint8_t* pdu = query_ + h;
    const int pdu_len = len - h;
    const std::uint8_t function = pdu[0];

    int start = -1;
    std::vector<std::uint16_t> values;
    int coil_start = -1;
    std::vector<bool> coils;
    bool illegal_function = false;
    switch (function) {
      case MODBUS_FC_WRITE_SINGLE_COIL:
        // Any value but ON (0xFF00) and OFF (0x0000): modbus_reply answers it.
        if (pdu_len >= 5 && (Word(pdu + 3) == 0xFF00 || Word(pdu + 3) == 0x0000)) {
          coil_start = Word(pdu + 1);
          coils.push_back(Word(pdu + 3) == 0xFF00);
        }
        break;
      case MODBUS_FC_WRITE_MULTIPLE_COILS: {
        if (pdu_len < 6) break;
        const int count = Word(pdu + 3);
        const int bytes = pdu[5];
        // Otherwise modbus_reply answers the malformed count itself.
        if (count >= 1 && count <= MODBUS_MAX_WRITE_BITS && bytes == (count + 7) / 8 &&
            pdu_len >= 6 + bytes) {
          coil_start = Word(pdu + 1);
          for (int i = 0; i < count; ++i) coils.push_back(((pdu[6 + i / 8] >> (i % 8)) & 1) != 0);
        }
        break;
      }
      case MODBUS_FC_WRITE_SINGLE_REGISTER:
        if (pdu_len >= 5) {
          start = Word(pdu + 1);
          values.push_back(Word(pdu + 3));
        }
        break;
      case MODBUS_FC_WRITE_MULTIPLE_REGISTERS: {
        if (pdu_len < 6) break;
        const int count = Word(pdu + 3);
        const int bytes = pdu[5];
        // Otherwise modbus_reply answers the malformed count itself.
        if (count >= 1 && count <= MODBUS_MAX_WRITE_REGISTERS && bytes == 2 * count &&
            pdu_len >= 6 + bytes) {
          start = Word(pdu + 1);
          for (int i = 0; i < count; ++i) values.push_back(Word(pdu + 6 + 2 * i));
        }
        break;
      }
      case MODBUS_FC_WRITE_AND_READ_REGISTERS: {
        if (pdu_len < 10) break;
        const int read_count = Word(pdu + 3);
        const int count = Word(pdu + 7);
        const int bytes = pdu[9];
        if (read_count >= 1 && read_count <= MODBUS_MAX_WR_READ_REGISTERS && count >= 1 &&
            count <= MODBUS_MAX_WR_WRITE_REGISTERS && bytes == 2 * count && pdu_len >= 10 + bytes) {
          start = Word(pdu + 5);
          for (int i = 0; i < count; ++i) values.push_back(Word(pdu + 10 + 2 * i));
        }
        break;
      }
      case MODBUS_FC_MASK_WRITE_REGISTER:
        // A read-modify-write of command or interlock bits has no meaning here.
        illegal_function = true;
        break;
      default:
        break;
    }

    WriteOutcome outcome = WriteOutcome::kOk;
    scale_->With([&](ScaleModel& m, Micros now) {
      if (start >= 0) outcome = m.Write(start, values, now, client, Rfc3339Now());
      if (coil_start >= 0) outcome = m.WriteCoils(coil_start, coils, now, client, Rfc3339Now());
      const auto regs = m.Registers();
      std::copy(regs.begin(), regs.end(), mapping_->tab_registers);
      const auto bits = m.Coils();
      for (std::size_t i = 0; i < bits.size(); ++i) mapping_->tab_bits[i] = bits[i] ? 1 : 0;
    });

    const bool broadcast = rtu_ && query_[0] == MODBUS_BROADCAST_ADDRESS;
    int exception = 0;
    if (illegal_function) exception = MODBUS_EXCEPTION_ILLEGAL_FUNCTION;
    if (outcome != WriteOutcome::kOk) exception = static_cast<int>(outcome);
    if (exception != 0) {
      ++stats_->exceptions;
      if (broadcast) return true;
      return modbus_reply_exception(ctx_, query_, static_cast<unsigned>(exception)) >= 0;
    }
    return modbus_reply(ctx_, query_, len, mapping_) >= 0;
  }

  SharedScale* scale_;
  ModbusStats* stats_;
  modbus_t* ctx_ = nullptr;
  modbus_mapping_t* mapping_ = nullptr;
  bool rtu_ = false;
  std::string rtu_name_;
  int listen_fd_ = -1;
  std::vector<Client> clients_;
  std::uint8_t query_[MODBUS_TCP_MAX_ADU_LENGTH] = {};
};

// ---------------------------------------------------------------- control port

bool ParseNumber(const std::string& text, double* out) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  if (errno != 0 || end != text.c_str() + text.size() || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

json StatusJson(const ScaleModel& m, const ModbusStats& stats) {
  const auto regs = m.Registers();
  auto weight = [](float v) { return std::isfinite(v) ? json(v) : json(nullptr); };
  const std::uint16_t s = regs[pingma::scalesim::kStatus];
  using namespace pingma::scalesim;
  json writes = json::array();
  for (const InterlockWrite& w : m.interlock_writes()) {
    writes.push_back({{"at", w.at},
                      {"t_ms", w.t.count() / 1000},
                      {"value", w.value},
                      {"client", w.client},
                      {"accepted", w.accepted}});
  }
  json signals = json::array();
  for (const SignalWrite& w : m.signal_writes()) {
    signals.push_back({{"at", w.at},
                       {"t_ms", w.t.count() / 1000},
                       {"which", w.which},
                       {"value", w.value},
                       {"client", w.client},
                       {"accepted", w.accepted}});
  }
  const auto coils = m.Coils();
  return json{
      {"registers",
       {{"gross_kg", weight(ScaleModel::RegistersToFloat(regs[kGrossHi], regs[kGrossLo]))},
        {"cutoff_gross_kg", weight(ScaleModel::RegistersToFloat(regs[kCutoffHi], regs[kCutoffLo]))},
        {"status", s},
        {"command", regs[kCommand]},
        {"interlock", regs[kInterlock]},
        {"heartbeat", regs[kHeartbeat]},
        {"fault_code", regs[kFaultCode]},
        {"message_code", regs[kMessageCode]}}},
      {"coils",
       {{"lamp_green", coils[kLampGreen]},
        {"lamp_amber", coils[kLampAmber]},
        {"lamp_red", coils[kLampRed]},
        {"buzzer", coils[kBuzzer]}}},
      {"bits",
       {{"stable", (s & kStable) != 0},
        {"valve_open", (s & kValveOpen) != 0},
        {"fill_done", (s & kFillDone) != 0},
        {"fault", (s & kFault) != 0},
        {"present", (s & kPresent) != 0},
        {"overload", (s & kOverload) != 0}}},
      {"cylinder",
       {{"present", m.present()},
        {"tare_kg", m.tare_kg()},
        {"content_kg", m.content_kg()},
        {"true_gross_kg", m.gross_kg()}}},
      {"valve", m.phase_name()},
      {"faults",
       {{"disconnect", m.faults().disconnect},
        {"stuck", m.faults().stuck},
        {"nan", m.faults().nan},
        {"overshoot_kg", m.config().overshoot_kg},
        {"code", m.faults().code}}},
      {"flow_kg_s", m.config().flow_kg_s},
      {"capacity_kg", m.config().capacity_kg},
      {"fills", m.fills()},
      {"aborted_fills", m.aborted_fills()},
      {"refused_starts", m.refused_starts()},
      {"refused_commands", m.refused_commands()},
      {"zeros", m.zeros()},
      {"last_refusal", m.last_refusal().empty() ? json(nullptr) : json(m.last_refusal())},
      {"modbus",
       {{"clients", stats.clients.load()},
        {"connections", stats.connections.load()},
        {"requests", stats.requests.load()},
        {"exceptions", stats.exceptions.load()}}},
      {"interlock_writes_total", m.interlock_writes_total()},
      {"interlock_writes", std::move(writes)},
      {"signal_writes_total", m.signal_writes_total()},
      {"signals", std::move(signals)}};
}

constexpr const char* kCommands =
    "place TARE_KG CONTENT_KG, remove, drift KG, fault disconnect|stuck|nan|overshoot KG|code N, "
    "clear, status";

/// One control line's answer: "ok", "error: why" or the status JSON.
std::string Answer(const std::string& line, SharedScale* scale, const ModbusStats& stats) {
  std::istringstream in(line);
  std::vector<std::string> w;
  for (std::string word; in >> word;) w.push_back(word);
  auto done = [](const std::string& why) { return why.empty() ? "ok" : "error: " + why; };
  const std::string verb = w.empty() ? "" : w[0];
  double a = 0, b = 0;
  if (verb == "status" && w.size() == 1) {
    return scale->With([&](ScaleModel& m, Micros) {
      return StatusJson(m, stats).dump(-1, ' ', false, json::error_handler_t::replace);
    });
  }
  if (verb == "place") {
    if (w.size() != 3 || !ParseNumber(w[1], &a) || !ParseNumber(w[2], &b)) {
      return "error: usage: place TARE_KG CONTENT_KG";
    }
    return done(scale->With([&](ScaleModel& m, Micros now) { return m.Place(a, b, now); }));
  }
  if (verb == "remove" && w.size() == 1) {
    return done(scale->With([&](ScaleModel& m, Micros now) { return m.Remove(now); }));
  }
  if (verb == "drift") {
    if (w.size() != 2 || !ParseNumber(w[1], &a)) return "error: usage: drift KG";
    return done(scale->With([&](ScaleModel& m, Micros now) { return m.Drift(a, now); }));
  }
  if (verb == "clear" && w.size() == 1) {
    scale->With([&](ScaleModel& m, Micros now) { m.ClearFaults(now); });
    return "ok";
  }
  if (verb == "fault" && w.size() >= 2) {
    const std::string& kind = w[1];
    if (w.size() == 2 && kind == "disconnect") {
      scale->With([&](ScaleModel& m, Micros now) { m.SetDisconnect(now); });
      return "ok";
    }
    if (w.size() == 2 && kind == "stuck") {
      scale->With([&](ScaleModel& m, Micros now) { m.SetStuck(now); });
      return "ok";
    }
    if (w.size() == 2 && kind == "nan") {
      scale->With([&](ScaleModel& m, Micros now) { m.SetNan(now); });
      return "ok";
    }
    if (w.size() == 3 && kind == "overshoot" && ParseNumber(w[2], &a)) {
      return done(scale->With([&](ScaleModel& m, Micros now) { return m.SetOvershoot(a, now); }));
    }
    if (w.size() == 3 && kind == "code" && ParseNumber(w[2], &a) && a == std::floor(a) &&
        std::abs(a) < 1e9) {
      return done(scale->With(
          [&](ScaleModel& m, Micros now) { return m.SetFaultCode(static_cast<long>(a), now); }));
    }
    return "error: usage: fault disconnect|stuck|nan|overshoot KG|code N";
  }
  std::string shown = verb.substr(0, 40);
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7E) c = '?';
  }
  return fmt::format("error: unknown command or wrong arguments '{}' (commands: {})", shown,
                     kCommands);
}

/// The control port: text lines in, one line out per command. Owned and run by one
/// thread.
class ControlServer {
 public:
  ControlServer(SharedScale* scale, const ModbusStats* stats) : scale_(scale), stats_(stats) {}
  ~ControlServer() {
    for (const Client& c : clients_) close(c.fd);
    if (listen_fd_ >= 0) close(listen_fd_);
  }
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  std::string Open(const HostPort& where, std::string* bound) {
    std::string error;
    listen_fd_ = Listen(where, &error);
    if (listen_fd_ < 0) return error;
    *bound = LocalAddress(listen_fd_);
    return "";
  }

  void Run() {
    std::vector<pollfd> fds;
    while (!g_stop) {
      fds.assign(1, pollfd{listen_fd_, POLLIN, 0});
      for (const Client& c : clients_) fds.push_back(pollfd{c.fd, POLLIN, 0});
      if (poll(fds.data(), fds.size(), kPollMs) <= 0) continue;
      std::vector<Client> kept;
      for (std::size_t i = 0; i < clients_.size(); ++i) {
        if (fds[i + 1].revents == 0 || Serve(&clients_[i])) {
          kept.push_back(std::move(clients_[i]));
        } else {
          close(clients_[i].fd);
        }
      }
      clients_.swap(kept);
      if (fds[0].revents & POLLIN) {
        std::string peer;
        const int fd = Accept(listen_fd_, &peer);
        if (fd >= 0 && clients_.size() >= kMaxControlClients) {
          SendAll(fd, "error: too many control connections\n");
          close(fd);
        } else if (fd >= 0) {
          clients_.push_back({fd, {}, false});
        }
      }
    }
  }

 private:
  struct Client {
    int fd;
    std::string pending;
    bool overlong;  ///< skipping the rest of a line that was too long
  };

  bool Serve(Client* c) {
    char buf[4096];
    const ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    for (ssize_t i = 0; i < n; ++i) {
      const char ch = buf[i];
      if (ch == '\n') {
        std::string line;
        line.swap(c->pending);
        if (c->overlong) {
          c->overlong = false;
          if (!SendAll(c->fd, "error: line too long\n")) return false;
          continue;
        }
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank
        if (!SendAll(c->fd, Answer(line, scale_, *stats_) + "\n")) return false;
      } else if (!c->overlong) {
        c->pending.push_back(ch);
        if (c->pending.size() > kMaxControlLine) {
          c->pending.clear();
          c->overlong = true;
        }
      }
    }
    return true;
  }

  SharedScale* scale_;
  const ModbusStats* stats_;
  int listen_fd_ = -1;
  std::vector<Client> clients_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "pingma-scale-sim: a filling scale (灌装秤) speaking the pingma-fill-v1 Modbus profile "
      "(TCP or RTU, unit 1), with a text control port to place cylinders and inject faults"};
  std::string listen, rtu, control;
  int baud = 9600;
  std::string parity = "N";
  int unit = 1;
  ScaleConfig config;
  app.add_option("--listen", listen, "serve Modbus TCP on HOST:PORT (port 0: any free port)");
  app.add_option("--rtu", rtu, "serve Modbus RTU on a serial DEVICE (e.g. a socat pty)");
  app.add_option("--baud", baud, "RTU: baud rate")
      ->check(CLI::Range(50, 4'000'000))
      ->capture_default_str();
  app.add_option("--parity", parity, "RTU: parity N, E or O (8 data bits, 1 stop bit)")
      ->check(CLI::IsMember({"N", "E", "O"}))
      ->capture_default_str();
  app.add_option("--unit", unit, "RTU: the unit (slave) id answered; TCP answers any")
      ->check(CLI::Range(1, 247))
      ->capture_default_str();
  app.add_option("--control", control, "the control port's HOST:PORT (text lines)")->required();
  app.add_option("--flow-kg-s", config.flow_kg_s, "filling rate with the valve open, kg/s")
      ->check(CLI::Range(0.001, 1000.0))
      ->capture_default_str();
  app.add_option("--capacity", config.capacity_kg, "platform capacity, kg (overload above it)")
      ->check(CLI::Range(1.0, 100000.0))
      ->capture_default_str();
  app.add_option("--overshoot-kg", config.overshoot_kg,
                 "gas in flight when the valve shuts at cutoff, kg (what `clear` restores)")
      ->check(CLI::Range(0.0, 10.0))
      ->capture_default_str();
  if (auto done = pingma::ParseCommandLine(app, "pingma-scale-sim", argc, argv)) return *done;
  if (listen.empty() == rtu.empty()) {
    std::fprintf(stderr,
                 "pingma-scale-sim: give exactly one of --listen HOST:PORT and --rtu DEVICE "
                 "(see --help)\n");
    return 2;
  }
  HostPort modbus_at, control_at;
  if (!listen.empty() && !ParseHostPort(listen, &modbus_at)) {
    std::fprintf(stderr, "pingma-scale-sim: --listen wants HOST:PORT, not '%s'\n", listen.c_str());
    return 2;
  }
  if (!ParseHostPort(control, &control_at)) {
    std::fprintf(stderr, "pingma-scale-sim: --control wants HOST:PORT, not '%s'\n",
                 control.c_str());
    return 2;
  }

  std::signal(SIGPIPE, SIG_IGN);
  // SIGINT and SIGTERM are taken by sigwait below, never delivered to a worker thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  SharedScale scale(config);
  ModbusStats stats;
  ModbusServer modbus(&scale, &stats);
  ControlServer controller(&scale, &stats);
  std::string modbus_bound, control_bound;
  std::string error = rtu.empty() ? modbus.OpenTcp(modbus_at, &modbus_bound)
                                  : modbus.OpenRtu(rtu, baud, parity[0], unit);
  if (error.empty()) error = controller.Open(control_at, &control_bound);
  if (!error.empty()) {
    std::fprintf(stderr, "pingma-scale-sim: %s\n", error.c_str());
    return 1;
  }

  std::thread physics([&] {
    auto next = std::chrono::steady_clock::now();
    while (!g_stop) {
      next += kTick;
      std::this_thread::sleep_until(next);
      for (const std::string& event :
           scale.With([](ScaleModel&m, Micros) { return m.TakeEvents(); })) {
        Log(event);
      }
    }
  });
  std::thread modbus_thread([&] { modbus.Run(); });
  std::thread control_thread([&] { controller.Run(); });

  std::printf("modbus on %s\ncontrol on %s\n",
              rtu.empty() ? modbus_bound.c_str() : ("rtu " + rtu).c_str(), control_bound.c_str());
  std::fflush(stdout);

  int received = 0;
  sigwait(&signals, &received);
  g_stop = true;
  physics.join();
  modbus_thread.join();
  control_thread.join();
  return 0;
}
