// The JT/T 808 gateway over real TCP sockets on 127.0.0.1, with a tiny terminal
// written here (plain POSIX sockets) and a directory in memory that answers from a
// thread of its own, as the registry's store writer does: registration,
// authentication, reports and batches stored before they are acknowledged, bad
// frames, refusals, half frames, a flood of garbage beside a working terminal,
// and the timeouts. No assertion is on speed: waits have generous deadlines only so
// that a broken gateway fails instead of hanging.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "jt808/gateway.h"
#include "jt808_bytes.h"

namespace pingma::registry::jt808 {
namespace {

using namespace std::chrono_literals;

constexpr auto kPatience = 10s;  // for a broken gateway to fail, not for speed

bool WaitFor(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

/// A directory in memory: the terminals it knows (by normalised phone) and their
/// auth codes. Answers from its own thread; `hold` keeps the answers until Release.
class FakeDirectory final : public TerminalDirectory {
 public:
  FakeDirectory() : worker_([this] { Run(); }) {}
  ~FakeDirectory() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      hold_ = false;
    }
    cv_.notify_all();
    worker_.join();
  }

  void Know(const std::string& phone, const std::string& code) {
    std::lock_guard<std::mutex> lock(mu_);
    codes_[NormalizePhone(phone)] = code;
  }
  void FailStores(bool fail) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_stores_ = fail;
  }
  void Hold() {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = true;
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      hold_ = false;
    }
    cv_.notify_all();
  }
  std::size_t held() {
    std::lock_guard<std::mutex> lock(mu_);
    return jobs_.size();
  }

  /// The positions stored for a phone (as normalised), in order.
  std::vector<Location> Stored(const std::string& phone) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = stored_.find(NormalizePhone(phone));
    return it == stored_.end() ? std::vector<Location>{} : it->second;
  }
  std::size_t StoredCount() {
    std::lock_guard<std::mutex> lock(mu_);
    std::size_t n = 0;
    for (const auto& [phone, positions] : stored_) n += positions.size();
    return n;
  }
  std::vector<Registration> registrations() {
    std::lock_guard<std::mutex> lock(mu_);
    return registrations_;
  }
  std::vector<Authentication> authentications() {
    std::lock_guard<std::mutex> lock(mu_);
    return authentications_;
  }

  void Register(const Registration& r, RegisterDone done) override {
    Later([this, r, done] {
      std::string code;
      {
        std::lock_guard<std::mutex> lock(mu_);
        registrations_.push_back(r);
        auto it = codes_.find(NormalizePhone(r.phone));
        if (it == codes_.end()) return done(RegistrationResult::kNoSuchTerminal, "");
        code = it->second;
      }
      done(RegistrationResult::kOk, code);
    });
  }
  void Authenticate(const Authentication& a, AuthenticateDone done) override {
    Later([this, a, done] {
      bool ok;
      {
        std::lock_guard<std::mutex> lock(mu_);
        authentications_.push_back(a);
        auto it = codes_.find(NormalizePhone(a.phone));
        ok = it != codes_.end() && it->second == a.auth_code;
      }
      done(ok);
    });
  }
  void StorePositions(const std::string& phone, std::vector<Location> positions,
                      StoreDone done) override {
    Later([this, phone, positions = std::move(positions), done] {
      bool stored;
      {
        std::lock_guard<std::mutex> lock(mu_);
        stored = !fail_stores_;
        if (stored) {
          auto& list = stored_[NormalizePhone(phone)];
          list.insert(list.end(), positions.begin(), positions.end());
        }
      }
      // Only once they are kept (here: in the map) is the terminal told.
      done(stored);
    });
  }

 private:
  void Later(std::function<void()> job) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.push_back(std::move(job));
    }
    cv_.notify_all();
  }
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stop_ || (!hold_ && !jobs_.empty()); });
      if (jobs_.empty() && stop_) return;
      auto job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      job();
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::map<std::string, std::string> codes_;
  std::map<std::string, std::vector<Location>> stored_;
  std::vector<Registration> registrations_;
  std::vector<Authentication> authentications_;
  bool fail_stores_ = false;
  bool hold_ = false;
  bool stop_ = false;
  std::thread worker_;  // last: started once the rest is made
};

/// The notices a gateway gave, for the test to read.
class Notices {
 public:
  std::function<void(const std::string&)> Sink() {
    return [this](const std::string& text) {
      std::lock_guard<std::mutex> lock(mu_);
      lines_.push_back(text);
    };
  }
  /// Whether a notice contains every one of `parts`.
  bool Has(const std::vector<std::string>& parts) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::string& line : lines_) {
      bool all = true;
      for (const std::string& part : parts) all = all && line.find(part) != std::string::npos;
      if (all) return true;
    }
    return false;
  }
  std::string All() {
    std::lock_guard<std::mutex> lock(mu_);
    std::string out;
    for (const std::string& line : lines_) out += line + "\n";
    return out;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
};

struct GeneralReply {
  std::uint16_t serial = 0;  // of the message answered
  std::uint16_t msg_id = 0;  // of the message answered
  int result = -1;
};

/// A terminal: a TCP client that speaks the codec's frames.
class Terminal {
 public:
  Terminal(std::uint16_t port, std::string phone, Version version = Version::k2013)
      : phone_(std::move(phone)), version_(version) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  }
  ~Terminal() { Close(); }
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;

  const std::string& phone() const { return phone_; }

  /// The frame of a message from this terminal, with its next serial.
  std::string Frame(std::uint16_t msg_id, const std::string& body,
                    std::optional<Package> package = std::nullopt) {
    Header h;
    h.msg_id = msg_id;
    h.version = version_;
    h.protocol_version = version_ == Version::k2019 ? 1 : 0;
    h.phone = phone_;
    h.serial = serial_++;
    h.package = package;
    auto wire = EncodeFrame(h, body);
    REQUIRE_MESSAGE(wire.ok(), wire.status().ToString());
    return *wire;
  }
  /// Sends a message; returns its serial.
  std::uint16_t Send(std::uint16_t msg_id, const std::string& body,
                     std::optional<Package> package = std::nullopt) {
    const std::uint16_t serial = serial_;
    SendRaw(Frame(msg_id, body, package));
    return serial;
  }
  /// Sends bytes; false once the gateway has closed the connection.
  bool SendRaw(const std::string& bytes) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<std::size_t>(n);
    }
    return true;
  }

  /// The next frame from the gateway; nullopt when the connection ended (or nothing
  /// came in kPatience).
  std::optional<jt808::Frame> Next() {
    const auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (frames_.empty()) {
      if (!ReadSome(deadline)) return std::nullopt;
    }
    Result<std::string> raw = std::move(frames_.front());
    frames_.pop_front();
    REQUIRE_MESSAGE(raw.ok(), raw.status().ToString());
    auto frame = DecodeFrame(*raw);
    REQUIRE_MESSAGE(frame.ok(), frame.status().ToString());
    // Replies go to the terminal's phone, in its edition.
    const std::size_t digits = version_ == Version::k2019 ? 20 : 12;
    CHECK(frame->header.phone == std::string(digits - phone_.size(), '0') + phone_);
    CHECK(frame->header.version == version_);
    return std::move(*frame);
  }

  /// The next frame, which must be a 0x8001.
  GeneralReply NextGeneral() {
    auto frame = Next();
    REQUIRE_MESSAGE(frame.has_value(), "no reply: the connection ended");
    REQUIRE(frame->header.msg_id == kPlatformGeneralReply);
    REQUIRE(frame->body.size() == 5);
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(frame->body[i]); };
    GeneralReply r;
    r.serial = static_cast<std::uint16_t>(byte(0) << 8 | byte(1));
    r.msg_id = static_cast<std::uint16_t>(byte(2) << 8 | byte(3));
    r.result = byte(4);
    CHECK(frame->header.serial == expected_platform_serial_);  // the platform's own counter
    ++expected_platform_serial_;
    return r;
  }

  /// Sends a message and expects its 0x8001; returns the result.
  int Ask(std::uint16_t msg_id, const std::string& body) {
    const std::uint16_t serial = Send(msg_id, body);
    const GeneralReply r = NextGeneral();
    CHECK(r.serial == serial);
    CHECK(r.msg_id == msg_id);
    return r.result;
  }

  /// Registers; returns the auth code of the 0x8100 (its result must be `expected`).
  std::string Register(RegistrationResult expected = RegistrationResult::kOk) {
    const std::uint16_t serial = Send(kRegistration, RegistrationBody());
    auto frame = Next();
    REQUIRE_MESSAGE(frame.has_value(), "no 0x8100: the connection ended");
    REQUIRE(frame->header.msg_id == kRegistrationReply);
    REQUIRE(frame->body.size() >= 3);
    CHECK(frame->header.serial == expected_platform_serial_);
    ++expected_platform_serial_;
    const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(frame->body[i]); };
    CHECK((byte(0) << 8 | byte(1)) == serial);
    CHECK(byte(2) == static_cast<int>(expected));
    return frame->body.substr(3);
  }

  std::string RegistrationBody() const {
    if (version_ == Version::k2019) {
      return Bytes("00 2a 00 64") + "MAKER000001" + std::string(30, 'm') + "T-" + phone_ +
             std::string(28 - phone_.size(), '\0') + Bytes("02 be a9 41 31 32 33 34 35");
    }
    return Bytes("00 2a 00 64") + "MK001" + std::string(20, 'm') + "T000001" +
           Bytes("02 be a9 41 31 32 33 34 35");
  }

  std::string AuthenticationBody(const std::string& code) const {
    if (version_ == Version::k2019) {
      return std::string(1, static_cast<char>(code.size())) + code + "860000000000001" +
             std::string("V1") + std::string(18, '\0');
    }
    return code;
  }

  /// Registers and authenticates with the code given.
  void SignIn() {
    const std::string code = Register();
    REQUIRE(Ask(kAuthentication, AuthenticationBody(code)) == 0);
  }

  /// Whether the gateway ends the connection (within kPatience); frames on the way
  /// are read and dropped.
  bool Ended() {
    const auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (!ended_) {
      if (!ReadSome(deadline) && !ended_) return false;
    }
    return true;
  }

  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  /// Reads what comes before the deadline into frames_; false when nothing came
  /// (the connection ended, or the time ran out).
  bool ReadSome(std::chrono::steady_clock::time_point deadline) {
    if (ended_) return false;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buffer[4096];
    const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    if (n <= 0) {
      ended_ = true;
      return false;
    }
    std::vector<Result<std::string>> cut;
    splitter_.Feed(std::string_view(buffer, static_cast<std::size_t>(n)), cut);
    for (auto& frame : cut) frames_.push_back(std::move(frame));
    return true;
  }

  std::string phone_;
  Version version_;
  int fd_ = -1;
  std::uint16_t serial_ = 1;
  std::uint16_t expected_platform_serial_ = 0;
  FrameSplitter splitter_;
  std::deque<Result<std::string>> frames_;
  bool ended_ = false;
};

/// A gateway on 127.0.0.1:0 over a FakeDirectory, with its notices kept.
struct Rig {
  explicit Rig(GatewayOptions options = {}) {
    options.notice = notices.Sink();
    gateway = std::make_unique<Gateway>(directory, std::move(options));
    const Status started = gateway->Start();
    REQUIRE_MESSAGE(started.ok(), started.ToString());
    REQUIRE(gateway->port() != 0);
  }
  std::uint16_t port() const { return gateway->port(); }
  GatewayCounters counters() const { return gateway->counters(); }

  FakeDirectory directory;  // first: it outlives the gateway
  Notices notices;
  std::unique_ptr<Gateway> gateway;
};

std::string BatchBody(int count) {
  std::string body = Bytes("00") + std::string(1, static_cast<char>(count)) + Bytes("01");
  for (int i = 0; i < count; ++i) body += Bytes("00 1c") + Bytes(kLocationBody);
  return body;
}

TEST_CASE("register, authenticate, heartbeat, report and batch, in 2013 and 2019") {
  for (const Version version : {Version::k2013, Version::k2019}) {
    CAPTURE(ToString(version));
    Rig rig;
    const std::string phone = version == Version::k2019 ? "13800138000" : "013800138000";
    rig.directory.Know(phone, "CODE-" + std::string(ToString(version)));
    Terminal t(rig.port(), phone, version);

    const std::string code = t.Register();
    CHECK(code == "CODE-" + std::string(ToString(version)));
    REQUIRE(rig.directory.registrations().size() == 1);
    CHECK(rig.directory.registrations()[0].version == version);
    CHECK(rig.directory.registrations()[0].province == 42);
    CHECK(t.Ask(kAuthentication, t.AuthenticationBody(code)) == 0);
    if (version == Version::k2019) {
      CHECK(rig.directory.authentications().back().imei == "860000000000001");
      CHECK(rig.directory.authentications().back().software_version == "V1");
    }
    CHECK(t.Ask(kHeartbeat, "") == 0);

    // A report: stored before it is acknowledged.
    CHECK(t.Ask(kLocationReport, Bytes(kLocationBody)) == 0);
    auto stored = rig.directory.Stored(phone);
    REQUIRE(stored.size() == 1);
    CHECK(stored[0].at_ms == kLocationMs);
    CHECK(stored[0].lat == doctest::Approx(-33.123456));
    CHECK(stored[0].lon == doctest::Approx(-113.654321));
    CHECK(stored[0].speed_kmh == doctest::Approx(60.0));
    CHECK(stored[0].heading == 270);

    // A batch of two.
    CHECK(t.Ask(kBatchLocation, BatchBody(2)) == 0);
    CHECK(rig.directory.Stored(phone).size() == 3);
    CHECK(t.Ask(kLogout, "") == 0);
    // Logged out: a report is refused again.
    CHECK(t.Ask(kLocationReport, Bytes(kLocationBody)) == 1);
    CHECK(rig.directory.Stored(phone).size() == 3);

    const GatewayCounters c = rig.counters();
    CHECK(c.connections == 1);
    CHECK(c.connections_open == 1);
    CHECK(c.positions_stored == 3);
    CHECK(c.bad_frames == 0);
    CHECK(c.refused == 0);
    CHECK(c.frames == 7);
  }
}

TEST_CASE("a bad frame mid-stream is dropped and the connection lives on; replies in order") {
  Rig rig;
  rig.directory.Know("013800138000", "C");
  Terminal t(rig.port(), "013800138000");
  t.SignIn();
  // In one write: a frame with a wrong check code, a report, a report whose body is
  // one byte short, an unknown message, a heartbeat.
  const std::string bad_check = Bytes("7e 00 02 00 00 01 38 00 13 80 00 00 09 00 7e");
  const std::uint16_t first = 3;  // the serials Frame gives from here
  // (One statement each: the serials go in this order.)
  std::string burst = bad_check;
  burst += t.Frame(kLocationReport, Bytes(kLocationBody));
  burst += t.Frame(kLocationReport, Bytes(kLocationBody).substr(0, 27));
  burst += t.Frame(0x0900, "x");
  burst += t.Frame(kHeartbeat, "");
  REQUIRE(t.SendRaw(burst));
  const GeneralReply report = t.NextGeneral();
  CHECK(report.serial == first);
  CHECK(report.result == 0);
  const GeneralReply short_one = t.NextGeneral();
  CHECK(short_one.serial == first + 1);
  CHECK(short_one.result == 2);  // wrong message
  const GeneralReply unknown = t.NextGeneral();
  CHECK(unknown.serial == first + 2);
  CHECK(unknown.msg_id == 0x0900);
  CHECK(unknown.result == 3);  // unsupported
  const GeneralReply heartbeat = t.NextGeneral();
  CHECK(heartbeat.serial == first + 3);
  CHECK(heartbeat.result == 0);
  // And on it goes.
  CHECK(t.Ask(kLocationReport, Bytes(kLocationBody)) == 0);
  CHECK(rig.directory.Stored("013800138000").size() == 2);
  CHECK(rig.counters().bad_frames == 2);
  CHECK(rig.notices.Has({"127.0.0.1:", "bad frame dropped: check code"}));
  CHECK(rig.notices.Has({"bad frame dropped: 0x0200 location report: the time needs 6 byte(s)"}));
}

TEST_CASE("before authentication: reports, batches and heartbeats are refused and not stored") {
  Rig rig;
  rig.directory.Know("013800138000", "C");
  Terminal t(rig.port(), "013800138000");
  CHECK(t.Register() == "C");
  CHECK(t.Ask(kLocationReport, Bytes(kLocationBody)) == 1);
  CHECK(t.Ask(kBatchLocation, BatchBody(1)) == 1);
  CHECK(t.Ask(kHeartbeat, "") == 1);
  CHECK(rig.directory.StoredCount() == 0);
  CHECK(t.Ask(kAuthentication, "C") == 0);
  CHECK(t.Ask(kLocationReport, Bytes(kLocationBody)) == 0);
  CHECK(rig.directory.StoredCount() == 1);
  CHECK(rig.notices.Has({"0x0200 location report from 013800138000 before its authentication"}));
}

TEST_CASE("an unknown terminal is refused, said with its phone and address, and counted") {
  Rig rig;
  rig.directory.Know("013800138000", "C");
  {
    Terminal stranger(rig.port(), "015500000000");
    stranger.Register(RegistrationResult::kNoSuchTerminal);
    CHECK(stranger.Ended());
  }
  {
    Terminal guesser(rig.port(), "013800138000");
    CHECK(guesser.Ask(kAuthentication, "WRONG") == 1);
    CHECK(guesser.Ended());
  }
  CHECK(rig.counters().refused == 2);
  CHECK(rig.notices.Has({"jt808 127.0.0.1:", "015500000000", "refused", "no such terminal"}));
  CHECK(rig.notices.Has({"jt808 127.0.0.1:", "013800138000", "refused", "authentication failed"}));
  CHECK(WaitFor([&] { return rig.counters().connections_open == 0; }));
  CHECK(rig.directory.StoredCount() == 0);
}

TEST_CASE("a half frame, then the terminal goes: nothing is stored") {
  Rig rig;
  rig.directory.Know("013800138000", "C");
  {
    Terminal t(rig.port(), "013800138000");
    t.SignIn();
    const std::string report = t.Frame(kLocationReport, Bytes(kLocationBody));
    REQUIRE(t.SendRaw(report.substr(0, report.size() / 2)));
  }
  CHECK(WaitFor([&] { return rig.counters().connections_open == 0; }));
  CHECK(rig.directory.StoredCount() == 0);
  CHECK(rig.counters().frames == 2);
  CHECK(rig.counters().bad_frames == 0);
}

TEST_CASE("sub-packages: each package acknowledged, the whole batch stored once") {
  Rig rig;
  rig.directory.Know("013800138000", "C");
  Terminal t(rig.port(), "013800138000");
  t.SignIn();
  const std::string body = BatchBody(3);
  const std::string first = body.substr(0, 40);
  const std::string second = body.substr(40);
  // The second package first: out of order.
  const std::uint16_t s2 = t.Send(kBatchLocation, second, Package{2, 2});
  GeneralReply r2 = t.NextGeneral();
  CHECK(r2.serial == s2);
  CHECK(r2.result == 0);
  CHECK(rig.directory.StoredCount() == 0);
  const std::uint16_t s1 = t.Send(kBatchLocation, first, Package{2, 1});
  GeneralReply r1 = t.NextGeneral();
  CHECK(r1.serial == s1);
  CHECK(r1.result == 0);
  CHECK(rig.directory.StoredCount() == 3);
  // A package out of bounds is a wrong message.
  const std::uint16_t s3 = t.Send(kBatchLocation, first, Package{2, 3});
  GeneralReply r3 = t.NextGeneral();
  CHECK(r3.serial == s3);
  CHECK(r3.result == 2);
}

TEST_CASE("positions the directory cannot store are answered with failure") {
  Rig rig;
  rig.directory.Know("013800138000", "C");
  Terminal t(rig.port(), "013800138000");
  t.SignIn();
  rig.directory.FailStores(true);
  CHECK(t.Ask(kLocationReport, Bytes(kLocationBody)) == 1);
  rig.directory.FailStores(false);
  CHECK(t.Ask(kLocationReport, Bytes(kLocationBody)) == 0);
  CHECK(rig.counters().positions_stored == 1);
}

TEST_CASE("a flood of garbage on one connection; another terminal's reports are still answered") {
  GatewayOptions options;
  options.max_bad_frames_per_minute = 1'000'000'000;  // the flood is not cut short
  Rig rig(options);
  rig.directory.Know("013800138000", "C");
  Terminal flooder(rig.port(), "019900000000");
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> flooded{0};
  std::thread flood([&] {
    std::mt19937 random(808);
    std::string chunk(16 * 1024, '\0');
    while (!stop.load()) {
      for (std::size_t i = 0; i < chunk.size(); ++i) {
        chunk[i] = i % 97 == 0 ? '\x7e' : static_cast<char>(random() & 0xff);
      }
      if (!flooder.SendRaw(chunk)) return;
      flooded += chunk.size();
    }
  });
  // Once the flood is under way...
  CHECK(WaitFor([&] { return rig.counters().bad_frames > 100; }));
  Terminal t(rig.port(), "013800138000");
  t.SignIn();
  for (int i = 0; i < 20; ++i) CHECK(t.Ask(kLocationReport, Bytes(kLocationBody)) == 0);
  CHECK(rig.directory.Stored("013800138000").size() == 20);
  stop = true;
  flood.join();
  CHECK(flooded.load() > 0);
  CHECK(rig.counters().connections_open == 2);
}

TEST_CASE("too many bad frames in a minute close that connection") {
  GatewayOptions options;
  options.max_bad_frames_per_minute = 3;
  Rig rig(options);
  Terminal t(rig.port(), "013800138000");
  const std::string bad = Bytes("7e 00 02 00 00 01 38 00 13 80 00 00 09 00 7e");
  REQUIRE(t.SendRaw(bad + bad + bad));
  CHECK(WaitFor([&] { return rig.counters().bad_frames == 3; }));
  CHECK(rig.counters().connections_open == 1);
  t.SendRaw(bad);
  CHECK(t.Ended());
  CHECK(rig.counters().closed_by_limits == 1);
  CHECK(rig.notices.Has({"closed: 4 bad frames within a minute"}));
}

TEST_CASE("timeouts: a connection that does not authenticate, one that stops sending") {
  {
    GatewayOptions options;
    options.auth_timeout = 200ms;
    Rig rig(options);
    Terminal silent(rig.port(), "013900139000");
    CHECK(silent.Ended());
    CHECK(rig.notices.Has({"closed: not authenticated within 200 ms"}));
    CHECK(rig.counters().closed_by_limits == 1);
  }
  {
    GatewayOptions options;
    options.idle_timeout = 1s;
    Rig rig(options);
    rig.directory.Know("013800138000", "C");
    Terminal quiet(rig.port(), "013800138000");
    quiet.SignIn();
    CHECK(quiet.Ended());
    CHECK(rig.notices.Has({"closed: no frame for 1000 ms"}));
    CHECK(rig.counters().closed_by_limits == 1);
  }
}

TEST_CASE("connections over the limit are closed at once") {
  GatewayOptions options;
  options.max_connections = 1;
  Rig rig(options);
  rig.directory.Know("013800138000", "C");
  Terminal first(rig.port(), "013800138000");
  first.SignIn();
  Terminal second(rig.port(), "013900139000");
  CHECK(second.Ended());
  CHECK(rig.counters().connections_over_limit == 1);
  CHECK(first.Ask(kHeartbeat, "") == 0);
}

TEST_CASE("the directory answering after its connection, or the gateway, is gone") {
  GatewayOptions options;
  options.idle_timeout = 500ms;  // closes a connection whose answer is held
  Rig rig(options);
  rig.directory.Know("013800138000", "C");
  {
    Terminal t(rig.port(), "013800138000");
    t.SignIn();
    rig.directory.Hold();
    t.Send(kLocationReport, Bytes(kLocationBody));
    CHECK(WaitFor([&] { return rig.directory.held() == 1; }));
    CHECK(t.Ended());
  }
  CHECK(WaitFor([&] { return rig.counters().connections_open == 0; }));
  // Its answer comes after it closed, and is dropped.
  rig.directory.Release();
  CHECK(WaitFor([&] { return rig.directory.StoredCount() == 1; }));
  CHECK(rig.counters().positions_stored == 0);

  // Now with the whole gateway stopped while the directory holds an answer.
  Terminal t(rig.port(), "013800138000");
  t.SignIn();
  rig.directory.Hold();
  t.Send(kLocationReport, Bytes(kLocationBody));
  CHECK(WaitFor([&] { return rig.directory.held() == 1; }));
  rig.gateway->Stop();
  CHECK(t.Ended());
  rig.gateway.reset();
  rig.directory.Release();
  CHECK(WaitFor([&] { return rig.directory.StoredCount() == 2; }));
}

TEST_CASE("start: an address in use is refused; stop is idempotent") {
  Rig rig;
  FakeDirectory directory;
  GatewayOptions options;
  options.port = rig.port();
  Gateway second(directory, options);
  const Status started = second.Start();
  CHECK(started.code() == StatusCode::kUnavailable);
  CHECK(started.message().find("cannot bind") != std::string::npos);
  second.Stop();
  second.Stop();
  // A host name is resolved.
  GatewayOptions named;
  named.host = "localhost";
  Gateway third(directory, named);
  CHECK(third.Start().ok());
  CHECK(third.port() != 0);
  CHECK(!third.Start().ok());  // once only
}

}  // namespace
}  // namespace pingma::registry::jt808
