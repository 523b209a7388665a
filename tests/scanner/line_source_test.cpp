// The scan sources through real OS objects: loopback sockets (127.0.0.1, port 0),
// a pseudo-terminal pair made by socat, a pipe, and a folder watched by inotify.
// No timings are asserted: each wait runs the io_context until a condition holds,
// with a cap only so that a broken source fails instead of hanging.
#define ZX_USE_UTF8
#include <ZXing/BitMatrix.h>
#include <ZXing/MultiFormatWriter.h>
#include <fcntl.h>
#include <png.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "line_framer.h"
#include "pingma/scanner/source.h"
#include "source_private.h"

extern char** environ;

namespace pingma {
namespace {

namespace fs = std::filesystem;
using asio::ip::tcp;
using namespace std::chrono_literals;
using Level = SourceNotice::Level;

/// How long a wait may take before the test gives up: a hang guard, not a timing.
constexpr std::chrono::seconds kCap{20};

/// A source under test with everything it reported, on its own io_context.
struct Probe {
  asio::io_context io;
  std::vector<Scan> scans;
  std::vector<SourceNotice> notices;
  std::unique_ptr<ScanSource> source;
  std::function<void(const Scan&)> after_scan;  // runs after each scan is recorded

  Result<std::unique_ptr<ScanSource>> Make(SourceConfig config) {
    return MakeScanSource(
        io, std::move(config),
        [this](const Scan& scan) {
          scans.push_back(scan);
          if (after_scan) after_scan(scan);
        },
        [this](const SourceNotice& notice) { notices.push_back(notice); });
  }

  Status Open(SourceConfig config) {
    Result<std::unique_ptr<ScanSource>> made = Make(std::move(config));
    if (!made.ok()) return made.status();
    source = std::move(*made);
    return source->Start();
  }

  /// Runs the io_context until `done()` or kCap; returns done().
  bool RunUntil(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + kCap;
    while (!done()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      io.restart();
      if (io.run_for(5ms) == 0) std::this_thread::sleep_for(1ms);
    }
    return true;
  }

  /// Runs the io_context for about `d`, whatever happens.
  void RunFor(std::chrono::milliseconds d) {
    const auto until = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < until) {
      io.restart();
      if (io.run_for(5ms) == 0) std::this_thread::sleep_for(1ms);
    }
  }

  std::vector<std::string> Texts() const {
    std::vector<std::string> out;
    for (const Scan& s : scans) out.push_back(s.text);
    return out;
  }

  std::size_t Count(Level level, const std::string& part) const {
    std::size_t n = 0;
    for (const SourceNotice& notice : notices) {
      if (notice.level == level && notice.message.find(part) != std::string::npos) ++n;
    }
    return n;
  }

  bool HasScan(const std::string& text) const {
    for (const Scan& s : scans) {
      if (s.text == text) return true;
    }
    return false;
  }

  std::string AllNotices() const {
    std::string out;
    for (const SourceNotice& n : notices) {
      out += (n.level == Level::kInfo ? "[info] " : "[warn] ") + n.message + "\n";
    }
    return out;
  }
};

tcp::endpoint Loopback(unsigned short port) {
  return {asio::ip::make_address_v4("127.0.0.1"), port};
}

unsigned short PortOf(const std::string& host_port) {
  return static_cast<unsigned short>(std::stoi(host_port.substr(host_port.rfind(':') + 1)));
}

/// A reader that connects to a tcp-listen source, writing with blocking calls.
struct Reader {
  asio::io_context io;
  tcp::socket socket{io};

  explicit Reader(unsigned short port) {
    std::error_code ec;
    socket.connect(Loopback(port), ec);
    REQUIRE_MESSAGE(!ec, ec.message());
  }
  void Send(const std::string& bytes) {
    std::error_code ec;
    asio::write(socket, asio::buffer(bytes), ec);
    REQUIRE_MESSAGE(!ec, ec.message());
  }
  std::string Origin() const {
    std::error_code ec;
    return "tcp 127.0.0.1:" + std::to_string(socket.local_endpoint(ec).port());
  }
};

SourceConfig ListenConfig() {
  SourceConfig config;
  config.kind = SourceKind::kTcpListen;
  config.address = "127.0.0.1:0";
  return config;
}

/// A temporary folder, removed with what is in it.
struct TempDir {
  std::string path;
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "pingma-source-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

// ---- config checks ---------------------------------------------------------

TEST_CASE("ParseSourceKind reads the names ToString writes, and nothing else") {
  for (SourceKind kind : {SourceKind::kTcpListen, SourceKind::kTcpConnect, SourceKind::kSerial,
                          SourceKind::kStdin, SourceKind::kImageDir}) {
    Result<SourceKind> parsed = ParseSourceKind(ToString(kind));
    REQUIRE(parsed.ok());
    CHECK(*parsed == kind);
  }
  for (const char* bad : {"", "tcp", "TCP-LISTEN", "tcp-listen ", "usb"}) {
    CAPTURE(std::string(bad));
    Result<SourceKind> parsed = ParseSourceKind(bad);
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.status().code() == StatusCode::kInvalid);
    CHECK(parsed.status().message().find("tcp-listen, tcp-connect") != std::string::npos);
  }
}

TEST_CASE("MakeScanSource checks what each kind needs") {
  TempDir dir;
  { std::ofstream(dir / "file.txt") << "x"; }
  struct Row {
    SourceKind kind;
    std::string value;  // the address, device, or folder
    unsigned baud;
    const char* error;  // nullptr: accepted; else part of the message
  };
  const std::vector<Row> rows = {
      {SourceKind::kTcpListen, "127.0.0.1:0", 0, nullptr},
      {SourceKind::kTcpListen, "0.0.0.0:7001", 0, nullptr},
      {SourceKind::kTcpListen, "[::1]:7001", 0, nullptr},
      {SourceKind::kTcpListen, "[::]:0", 0, nullptr},
      {SourceKind::kTcpListen, "localhost:65535", 0, nullptr},
      {SourceKind::kTcpConnect, "reader-3.station.local:4001", 0, nullptr},
      {SourceKind::kTcpListen, "", 0, "needs an address"},
      {SourceKind::kTcpListen, "127.0.0.1", 0, "no ':PORT'"},
      {SourceKind::kTcpListen, ":7001", 0, "no host"},
      {SourceKind::kTcpListen, "127.0.0.1:", 0, "0 to 65535"},
      {SourceKind::kTcpListen, "127.0.0.1:65536", 0, "0 to 65535"},
      {SourceKind::kTcpListen, "127.0.0.1:-1", 0, "0 to 65535"},
      {SourceKind::kTcpListen, "127.0.0.1:70000000", 0, "0 to 65535"},
      {SourceKind::kTcpListen, "127.0.0.1:7a", 0, "0 to 65535"},
      {SourceKind::kTcpListen, "::1:7001", 0, "needs brackets"},
      {SourceKind::kTcpListen, "[::1]7001", 0, "no ':PORT' after ']'"},
      {SourceKind::kTcpListen, "[::1:7001", 0, "no ']'"},
      {SourceKind::kTcpListen, "[127.0.0.1]:7001", 0, "not an IPv6 address"},
      {SourceKind::kTcpListen, "300.1.1.1:7001", 0, "neither an IP address nor a host name"},
      {SourceKind::kTcpListen, "bad_host:7001", 0, "neither an IP address nor a host name"},
      {SourceKind::kTcpListen, "-bad.example:7001", 0, "neither an IP address nor a host name"},
      {SourceKind::kTcpConnect, "127.0.0.1:0", 0, "port 0 cannot be dialled"},
      {SourceKind::kSerial, "/dev/ttyUSB0", 9600, nullptr},
      {SourceKind::kSerial, "/dev/ttyUSB0", 115200, nullptr},
      {SourceKind::kSerial, "", 9600, "needs a device"},
      {SourceKind::kSerial, "/dev/ttyUSB0", 9601, "not a standard rate"},
      {SourceKind::kSerial, "/dev/ttyUSB0", 0, "not a standard rate"},
      {SourceKind::kImageDir, dir.path, 0, nullptr},
      {SourceKind::kImageDir, "", 0, "needs a folder"},
      {SourceKind::kImageDir, dir / "missing", 0, "No such file or directory"},
      {SourceKind::kImageDir, dir / "file.txt", 0, "is not a folder"},
  };
  for (const Row& row : rows) {
    CAPTURE(std::string(ToString(row.kind)));
    CAPTURE(row.value);
    SourceConfig config;
    config.kind = row.kind;
    config.address = config.device = config.dir = row.value;
    config.baud = row.baud;
    Probe probe;
    Result<std::unique_ptr<ScanSource>> made = probe.Make(config);
    if (row.error == nullptr) {
      CHECK_MESSAGE(made.ok(), made.status().ToString());
    } else {
      REQUIRE_FALSE(made.ok());
      CHECK(made.status().code() == StatusCode::kInvalid);
      CHECK_MESSAGE(made.status().message().find(row.error) != std::string::npos,
                    made.status().message());
    }
  }

  SourceConfig negative = ListenConfig();
  negative.dedup_window = -1ms;
  Probe probe;
  CHECK_FALSE(probe.Make(negative).ok());
  SourceConfig backwards;
  backwards.kind = SourceKind::kTcpConnect;
  backwards.address = "127.0.0.1:7001";
  backwards.redial_min = 1000ms;
  backwards.redial_max = 500ms;
  CHECK_FALSE(probe.Make(backwards).ok());
  SourceConfig bad_fd;
  bad_fd.fd = -1;
  CHECK_FALSE(probe.Make(bad_fd).ok());
}

// ---- tcp-listen ------------------------------------------------------------

TEST_CASE("tcp-listen: Start names the address in use; Describe gives the port bound") {
  asio::io_context io;
  tcp::acceptor taken(io, Loopback(0));
  const unsigned short port = taken.local_endpoint().port();
  Probe probe;
  SourceConfig config = ListenConfig();
  config.address = "127.0.0.1:" + std::to_string(port);
  const Status started = probe.Open(config);
  REQUIRE_FALSE(started.ok());
  CHECK(started.message() ==
        "cannot listen on 127.0.0.1:" + std::to_string(port) + ": Address already in use");

  Probe free;
  REQUIRE(free.Open(ListenConfig()).ok());
  const std::string bound = free.source->Describe();
  CHECK(bound.rfind("127.0.0.1:", 0) == 0);
  CHECK(PortOf(bound) != 0);
  CHECK_FALSE(free.source->Start().ok());  // once only
}

TEST_CASE("tcp-listen: two readers at once, each line with its reader as origin") {
  Probe probe;
  REQUIRE(probe.Open(ListenConfig()).ok());
  const unsigned short port = PortOf(probe.source->Describe());
  Reader a(port);
  Reader b(port);
  REQUIRE(probe.RunUntil([&] { return probe.Count(Level::kInfo, "reader connected") == 2; }));
  CHECK(probe.Count(Level::kInfo, "reader connected: " + a.Origin()) == 1);
  a.Send("A1\n");
  b.Send("B1\r\n");
  a.Send("A2\r");
  b.Send("B2\n");
  a.Send("\nA3\n");  // the LF of A2's CRLF, in a later write
  REQUIRE(probe.RunUntil([&] { return probe.scans.size() == 5; }));
  std::map<std::string, std::vector<std::string>> by_origin;
  for (const Scan& scan : probe.scans) {
    by_origin[scan.origin].push_back(scan.text);
    CHECK(scan.symbology.empty());
  }
  CHECK(by_origin[a.Origin()] == std::vector<std::string>{"A1", "A2", "A3"});
  CHECK(by_origin[b.Origin()] == std::vector<std::string>{"B1", "B2"});
  CHECK(probe.Count(Level::kWarning, "") == 0);
}

TEST_CASE("tcp-listen: a reader that drops mid-line loses that half line only, and comes back") {
  Probe probe;
  REQUIRE(probe.Open(ListenConfig()).ok());
  const unsigned short port = PortOf(probe.source->Describe());
  std::string first_origin;
  {
    Reader reader(port);
    first_origin = reader.Origin();
    reader.Send("WHOLE\nHB0100");
    REQUIRE(probe.RunUntil([&] { return probe.scans.size() == 1; }));
  }  // closed mid-line
  REQUIRE(probe.RunUntil([&] { return probe.Count(Level::kInfo, "reader disconnected") == 1; }));
  CAPTURE(probe.AllNotices());
  CHECK(probe.Count(Level::kWarning, "line from " + first_origin +
                                         " dropped: half line at end of stream (6 bytes)") == 1);
  CHECK(probe.Count(Level::kInfo, "reader disconnected: " + first_origin) == 1);

  Reader again(port);
  again.Send("BACK\n");
  REQUIRE(probe.RunUntil([&] { return probe.scans.size() == 2; }));
  CHECK(probe.Texts() == std::vector<std::string>{"WHOLE", "BACK"});
}

TEST_CASE("tcp-listen: garbage is dropped with a notice and the next good line still arrives") {
  using namespace std::string_literals;
  std::mt19937 rng(7);
  std::string random_bytes(64 * 1024, '\0');
  for (char& c : random_bytes) c = static_cast<char>(rng() & 0xFF);
  const struct {
    const char* name;
    std::string bytes;
    const char* warning;  // nullptr: random, whatever it makes
  } rows[] = {
      {"NUL", "HB01\0X\n"s, "contains NUL (6 bytes)"},
      {"invalid UTF-8", "caf\xE9\n", "not valid UTF-8 (4 bytes)"},
      {"lone continuation", "\x80\x80\x80\r\n", "not valid UTF-8 (3 bytes)"},
      {"overlong", "\xC0\xAF\n", "not valid UTF-8 (2 bytes)"},
      {"5000 bytes", std::string(5000, 'x') + "\n", "too long (over 4096 bytes)"},
      {"random bytes", random_bytes, nullptr},
  };
  Probe probe;
  REQUIRE(probe.Open(ListenConfig()).ok());
  Reader reader(PortOf(probe.source->Describe()));
  int i = 0;
  for (const auto& row : rows) {
    CAPTURE(row.name);
    const std::string good = "GOOD-" + std::to_string(i++);
    const std::size_t warnings = probe.Count(Level::kWarning, "");
    reader.Send(row.bytes + "\n" + good + "\n");
    REQUIRE(probe.RunUntil([&] { return probe.HasScan(good); }));
    CHECK(probe.scans.back().text == good);
    if (row.warning != nullptr) {
      CHECK(probe.Count(Level::kWarning, "") == warnings + 1);
      CHECK(probe.Count(Level::kWarning, std::string("dropped: ") + row.warning) == 1);
    }
  }
  for (const Scan& scan : probe.scans) {
    CHECK(IsValidUtf8(scan.text));
    CHECK(scan.text.find('\0') == std::string::npos);
    CHECK(scan.text.size() <= kMaxScanLineBytes);
  }
}

TEST_CASE("tcp-listen: a 10 MB line is dropped without growing a buffer, the next line arrives") {
  Probe probe;
  REQUIRE(probe.Open(ListenConfig()).ok());
  const unsigned short port = PortOf(probe.source->Describe());
  std::thread writer([port] {
    Reader reader(port);
    const std::string block(64 * 1024, 'x');
    for (int sent = 0; sent < 10 * 1024 * 1024; sent += static_cast<int>(block.size())) {
      reader.Send(block);
    }
    reader.Send("\nHB0100000123\n");
  });
  const bool arrived = probe.RunUntil([&] { return probe.HasScan("HB0100000123"); });
  writer.join();
  REQUIRE(arrived);
  CHECK(probe.Texts() == std::vector<std::string>{"HB0100000123"});
  CHECK(probe.Count(Level::kWarning, "too long (over 4096 bytes)") == 1);
  CHECK(MaxLineBuffered(*probe.source) <= kMaxScanLineBytes);
}

TEST_CASE("tcp-listen: a flood of 100,000 distinct lines arrives whole and in order") {
  constexpr int kLines = 100'000;
  Probe probe;
  REQUIRE(probe.Open(ListenConfig()).ok());
  const unsigned short port = PortOf(probe.source->Describe());
  std::thread writer([port] {
    Reader reader(port);
    const char* terminators[] = {"\n", "\r\n", "\r"};
    std::string batch;
    for (int i = 0; i < kLines; ++i) {
      batch += "HB" + std::to_string(1'000'000'000 + i) + terminators[i % 3];
      if (batch.size() > 60'000) {
        reader.Send(batch);
        batch.clear();
      }
    }
    reader.Send(batch);
  });
  const bool all = probe.RunUntil([&] { return probe.scans.size() >= kLines; });
  writer.join();
  REQUIRE(all);
  REQUIRE(probe.scans.size() == kLines);
  int out_of_order = 0;
  for (int i = 0; i < kLines; ++i) {
    if (probe.scans[static_cast<std::size_t>(i)].text != "HB" + std::to_string(1'000'000'000 + i)) {
      ++out_of_order;
    }
  }
  CHECK(out_of_order == 0);
  CHECK(probe.Count(Level::kWarning, "") == 0);
  CHECK(MaxLineBuffered(*probe.source) <= kMaxScanLineBytes);
}

TEST_CASE("dedup through a source: 50 repeats within the window are one scan, after it one more") {
  Probe probe;
  SourceConfig config = ListenConfig();
  config.dedup_window = 300ms;
  REQUIRE(probe.Open(config).ok());
  Reader reader(PortOf(probe.source->Describe()));
  std::string burst;
  for (int i = 0; i < 50; ++i) burst += "E2801160600002054D5CA0A1\r\n";
  reader.Send(burst + "END-1\n");  // END-1 arrives after the whole burst was framed
  REQUIRE(probe.RunUntil([&] { return probe.HasScan("END-1"); }));
  CHECK(probe.Texts() == std::vector<std::string>{"E2801160600002054D5CA0A1", "END-1"});

  std::this_thread::sleep_for(config.dedup_window + 200ms);  // the tag was taken away
  reader.Send(burst + "END-2\n");
  REQUIRE(probe.RunUntil([&] { return probe.HasScan("END-2"); }));
  CHECK(probe.Texts() == std::vector<std::string>{"E2801160600002054D5CA0A1", "END-1",
                                                  "E2801160600002054D5CA0A1", "END-2"});

  SourceConfig off = ListenConfig();
  off.dedup_window = 0ms;
  Probe undeduped;
  REQUIRE(undeduped.Open(off).ok());
  Reader other(PortOf(undeduped.source->Describe()));
  other.Send(burst + "END-1\n");
  REQUIRE(undeduped.RunUntil([&] { return undeduped.HasScan("END-1"); }));
  CHECK(undeduped.scans.size() == 51);
}

TEST_CASE("Stop is idempotent with readers connected, and nothing calls back after it") {
  Probe probe;
  REQUIRE(probe.Open(ListenConfig()).ok());
  const unsigned short port = PortOf(probe.source->Describe());
  Reader reader(port);
  REQUIRE(probe.RunUntil([&] { return probe.Count(Level::kInfo, "reader connected") == 1; }));
  reader.Send("BEFORE\n");
  REQUIRE(probe.RunUntil([&] { return probe.scans.size() == 1; }));
  probe.source->Stop();
  probe.source->Stop();
  const std::size_t notices = probe.notices.size();
  std::error_code ec;
  asio::write(reader.socket, asio::buffer(std::string("AFTER\nHALF")), ec);  // may fail: closed
  probe.RunFor(200ms);
  CHECK(probe.scans.size() == 1);
  CHECK(probe.notices.size() == notices);
  CHECK_FALSE(probe.source->Start().ok());
  // Destroyed with its handlers still queued: they run without calling back.
  probe.source.reset();
  probe.RunFor(50ms);
  CHECK(probe.scans.size() == 1);
}

TEST_CASE("a scan handler may stop its source: the rest of that read is not delivered") {
  Probe probe;
  probe.after_scan = [&](const Scan&) { probe.source->Stop(); };
  REQUIRE(probe.Open(ListenConfig()).ok());
  Reader reader(PortOf(probe.source->Describe()));
  reader.Send("ONE\nTWO\nTHREE\n");
  REQUIRE(probe.RunUntil([&] { return !probe.scans.empty(); }));
  probe.RunFor(100ms);
  CHECK(probe.Texts() == std::vector<std::string>{"ONE"});

  Probe destroying;
  destroying.after_scan = [&](const Scan&) { destroying.source.reset(); };
  REQUIRE(destroying.Open(ListenConfig()).ok());
  Reader second(PortOf(destroying.source->Describe()));
  second.Send("ONE\nTWO\n");
  REQUIRE(destroying.RunUntil([&] { return !destroying.scans.empty(); }));
  destroying.RunFor(100ms);
  CHECK(destroying.Texts() == std::vector<std::string>{"ONE"});
}

// ---- tcp-connect -----------------------------------------------------------

TEST_CASE(
    "tcp-connect: dials until the reader is up, redials when it drops, one notice per outage") {
  Probe probe;
  // The reader's port is bound but not listening: dials to it are refused.
  tcp::acceptor reader(probe.io);
  reader.open(tcp::v4());
  reader.bind(Loopback(0));
  const unsigned short port = reader.local_endpoint().port();
  const std::string address = "127.0.0.1:" + std::to_string(port);

  SourceConfig config;
  config.kind = SourceKind::kTcpConnect;
  config.address = address;
  config.redial_min = 10ms;
  config.redial_max = 80ms;
  REQUIRE(probe.Open(config).ok());  // starts although the reader is down
  CHECK(probe.source->Describe() == address);
  REQUIRE(probe.RunUntil([&] { return probe.Count(Level::kInfo, "cannot reach reader") == 1; }));
  CHECK(probe.notices.back().message.find("Connection refused") != std::string::npos);
  probe.RunFor(300ms);  // a few redials, each refused
  CHECK(probe.Count(Level::kInfo, "cannot reach reader") == 1);

  reader.listen();
  tcp::socket connection(probe.io);
  bool accepted = false;
  reader.async_accept(connection, [&](const std::error_code& ec) { accepted = !ec; });
  REQUIRE(probe.RunUntil([&] { return accepted; }));
  REQUIRE(probe.RunUntil([&] { return probe.Count(Level::kInfo, "reader connected") == 1; }));
  asio::write(connection, asio::buffer(std::string("R1\r\n")));
  REQUIRE(probe.RunUntil([&] { return probe.scans.size() == 1; }));
  CHECK(probe.scans[0].text == "R1");
  CHECK(probe.scans[0].origin == "tcp " + address);

  connection.close();  // the reader drops
  REQUIRE(probe.RunUntil([&] { return probe.Count(Level::kInfo, "reader disconnected") == 1; }));
  tcp::socket second(probe.io);
  accepted = false;
  reader.async_accept(second, [&](const std::error_code& ec) { accepted = !ec; });
  REQUIRE(probe.RunUntil([&] { return accepted; }));
  asio::write(second, asio::buffer(std::string("R2\n")));
  REQUIRE(probe.RunUntil([&] { return probe.scans.size() == 2; }));
  CHECK(probe.Texts() == std::vector<std::string>{"R1", "R2"});
  CHECK(probe.Count(Level::kInfo, "reader connected") == 2);
  CHECK(probe.Count(Level::kInfo, "cannot reach reader") == 1);

  // A second outage gets its own single notice.
  second.close();
  reader.close();
  REQUIRE(probe.RunUntil([&] { return probe.Count(Level::kInfo, "cannot reach reader") == 2; }));
  probe.RunFor(200ms);
  CHECK(probe.Count(Level::kInfo, "cannot reach reader") == 2);
  probe.source->Stop();
}

// ---- serial through a socat pty pair ----------------------------------------

/// `socat pty,raw,echo=0,link=A pty,raw,echo=0,link=B`: two pseudo-terminals whose
/// bytes cross over, like a reader on a null-modem cable. Killed at the end.
class PtyPair {
 public:
  explicit PtyPair(const TempDir& dir) : a_(dir / "a"), b_(dir / "b") {
    std::string left = "pty,raw,echo=0,link=" + a_;
    std::string right = "pty,raw,echo=0,link=" + b_;
    std::string program = "/usr/bin/socat";
    std::string quiet = "-d";
    char* argv[] = {program.data(), quiet.data(), quiet.data(), left.data(), right.data(), nullptr};
    // Its chatter on stderr would clutter the test output.
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    const int rc = ::posix_spawn(&pid_, program.c_str(), &actions, nullptr, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    REQUIRE_MESSAGE(rc == 0, "cannot start socat: ", std::strerror(rc));
    const auto deadline = std::chrono::steady_clock::now() + kCap;
    while (!(fs::exists(a_) && fs::exists(b_))) {
      REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "socat made no ptys");
      std::this_thread::sleep_for(10ms);
    }
  }
  ~PtyPair() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  const std::string& a() const { return a_; }
  const std::string& b() const { return b_; }

 private:
  std::string a_;
  std::string b_;
  pid_t pid_ = -1;
};

TEST_CASE("serial: lines written to one end of a pty pair arrive from the other") {
  for (unsigned baud : {9600u, 115200u}) {
    CAPTURE(baud);
    TempDir dir;
    PtyPair ptys(dir);
    const int writer = ::open(ptys.a().c_str(), O_RDWR | O_NOCTTY);
    REQUIRE(writer >= 0);

    Probe probe;
    SourceConfig config;
    config.kind = SourceKind::kSerial;
    config.device = ptys.b();
    config.baud = baud;
    config.rts = true;
    config.dtr = false;
    const Status started = probe.Open(config);
    REQUIRE_MESSAGE(started.ok(), started.ToString());
    CHECK(probe.source->Describe() == ptys.b());
    // A pty has no modem lines: RTS and DTR are reported, not fatal.
    CHECK(probe.Count(Level::kWarning, "cannot set RTS") == 1);
    CHECK(probe.Count(Level::kWarning, "cannot clear DTR") == 1);

    const std::string lines = "HB0100000123\r\nEPC:3074257BF7194E4000001A85\n瓶码-7\r";
    REQUIRE(::write(writer, lines.data(), lines.size()) == static_cast<ssize_t>(lines.size()));
    REQUIRE(probe.RunUntil([&] { return probe.scans.size() == 3; }));
    CHECK(probe.Texts() ==
          std::vector<std::string>{"HB0100000123", "EPC:3074257BF7194E4000001A85", "瓶码-7"});
    CHECK(probe.scans[0].origin == ptys.b());
    probe.source->Stop();
    ::close(writer);
  }
}

TEST_CASE("serial: a device that is not there is an error naming it") {
  Probe probe;
  SourceConfig config;
  config.kind = SourceKind::kSerial;
  config.device = "/dev/pingma-no-such-tty";
  const Status started = probe.Open(config);
  REQUIRE_FALSE(started.ok());
  CHECK(started.message() ==
        "cannot open serial device /dev/pingma-no-such-tty: No such file or directory");
}

// ---- stdin through a pipe ---------------------------------------------------

TEST_CASE("stdin: lines from a pipe, then a notice at EOF; the caller's descriptor stays open") {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  Probe probe;
  SourceConfig config;
  config.kind = SourceKind::kStdin;
  config.fd = fds[0];
  REQUIRE(probe.Open(config).ok());
  const std::string origin = "stdin (fd " + std::to_string(fds[0]) + ")";
  CHECK(probe.source->Describe() == origin);
  const std::string bytes = "P1\nP2\r\n\nHB01";
  REQUIRE(::write(fds[1], bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()));
  REQUIRE(probe.RunUntil([&] { return probe.scans.size() == 2; }));
  ::close(fds[1]);
  REQUIRE(probe.RunUntil([&] { return probe.Count(Level::kInfo, origin + " closed") == 1; }));
  CHECK(probe.Texts() == std::vector<std::string>{"P1", "P2"});
  CHECK(probe.scans[0].origin == origin);
  CHECK(probe.Count(Level::kWarning,
                    "line from " + origin + " dropped: half line at end of stream (4 bytes)") == 1);
  probe.source->Stop();
  CHECK(::fcntl(fds[0], F_GETFD) != -1);
  ::close(fds[0]);
}

// ---- image-dir --------------------------------------------------------------

/// A PNG of a QR code (error correction H) holding `text`, as its file's bytes.
std::string QrPng(const std::string& text) {
  ZXing::MultiFormatWriter writer(ZXing::BarcodeFormat::QRCode);
  writer.setEccLevel(8);
  writer.setMargin(4);
  const ZXing::Matrix<std::uint8_t> pixels =
      ZXing::ToMatrix<std::uint8_t>(writer.encode(text, 240, 240));
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(pixels.width());
  image.height = static_cast<png_uint_32>(pixels.height());
  image.format = PNG_FORMAT_GRAY;
  png_alloc_size_t size = 0;
  REQUIRE(png_image_write_to_memory(&image, nullptr, &size, 0, pixels.data(), 0, nullptr));
  std::string bytes(size, '\0');
  REQUIRE(png_image_write_to_memory(&image, bytes.data(), &size, 0, pixels.data(), 0, nullptr));
  bytes.resize(size);
  return bytes;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  REQUIRE(out.good());
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST_CASE("image-dir: each photo is read once, after it is closed, then moved aside") {
  TempDir dir;
  const std::string pre = QrPng("HB0100000001");
  WriteFile(dir / "pre.png", pre);                        // there before Start
  WriteFile(dir / "notes.txt", "not a photo");            // left alone, one notice
  WriteFile(dir / ".hidden.png", QrPng("HB0100000009"));  // left alone, silently
  fs::create_directory(dir / "done");
  WriteFile(dir / "done/label.png", "an earlier label.png");

  Probe probe;
  SourceConfig config;
  config.kind = SourceKind::kImageDir;
  config.dir = dir.path;
  config.dedup_window = 60s;  // the whole test is one window, however slow the machine
  REQUIRE(probe.Open(config).ok());
  CHECK(probe.source->Describe() == dir.path);
  CHECK(fs::is_directory(dir / "failed"));
  REQUIRE(probe.RunUntil([&] { return fs::exists(dir / "done/pre.png"); }));
  CAPTURE(probe.AllNotices());
  CHECK(ReadFile(dir / "done/pre.png") == pre);
  CHECK_FALSE(fs::exists(dir / "pre.png"));

  // Written under a hidden name, then renamed in: read under its final name.
  WriteFile(dir / ".label.png.part", QrPng("HB0100000002"));
  fs::rename(dir / ".label.png.part", dir / "label.png");
  REQUIRE(probe.RunUntil([&] { return fs::exists(dir / "done/label-1.png"); }));
  CHECK(ReadFile(dir / "done/label.png") == "an earlier label.png");  // not overwritten

  // Written in place slowly: not touched until its writer closes it.
  const std::string slow = QrPng("HB0100000003");
  std::ofstream writing(dir / "slow.PNG", std::ios::binary);
  writing.write(slow.data(), static_cast<std::streamsize>(slow.size() / 2));
  writing.flush();
  probe.RunFor(300ms);
  CHECK(fs::exists(dir / "slow.PNG"));
  CHECK_FALSE(fs::exists(dir / "failed/slow.PNG"));
  writing.write(slow.data() + slow.size() / 2,
                static_cast<std::streamsize>(slow.size() - slow.size() / 2));
  writing.close();
  REQUIRE(probe.RunUntil([&] { return fs::exists(dir / "done/slow.PNG"); }));

  // Not an image, and an image with no code: failed/, with a notice naming it.
  WriteFile(dir / "broken.jpg", "this is not a JPEG");
  REQUIRE(probe.RunUntil([&] { return fs::exists(dir / "failed/broken.jpg"); }));
  CHECK(probe.Count(Level::kWarning, "image broken.jpg could not be read") == 1);

  const std::string blank = [] {
    std::vector<std::uint8_t> white(64 * 64, 0xFF);
    png_image image{};
    image.version = PNG_IMAGE_VERSION;
    image.width = image.height = 64;
    image.format = PNG_FORMAT_GRAY;
    std::string bytes(64 * 1024, '\0');
    png_alloc_size_t size = bytes.size();
    REQUIRE(png_image_write_to_memory(&image, bytes.data(), &size, 0, white.data(), 0, nullptr));
    bytes.resize(size);
    return bytes;
  }();
  WriteFile(dir / "blank.png", blank);
  REQUIRE(probe.RunUntil([&] { return fs::exists(dir / "failed/blank.png"); }));
  CHECK(probe.Count(Level::kWarning, "image blank.png (png 64x64): no readable code in it") == 1);

  // The same code again within the window: no second scan, but the file is done.
  WriteFile(dir / ".again.tmp", pre);
  fs::rename(dir / ".again.tmp", dir / "again.jpeg");
  REQUIRE(probe.RunUntil([&] { return fs::exists(dir / "done/again.jpeg"); }));

  WriteFile(dir / "notes.txt", "touched again");  // still one notice
  probe.RunFor(100ms);
  CAPTURE(probe.AllNotices());
  CHECK(probe.Count(Level::kInfo, "leaving notes.txt alone") == 1);
  CHECK(probe.notices.size() == 3);  // notes.txt, broken.jpg, blank.png
  CHECK(fs::exists(dir / "notes.txt"));
  CHECK(fs::exists(dir / ".hidden.png"));

  std::vector<std::string> texts;
  std::vector<std::string> origins;
  for (const Scan& scan : probe.scans) {
    texts.push_back(scan.text);
    origins.push_back(scan.origin);
    CHECK(scan.symbology == "QRCode");
  }
  CHECK(texts == std::vector<std::string>{"HB0100000001", "HB0100000002", "HB0100000003"});
  CHECK(origins == std::vector<std::string>{"pre.png", "label.png", "slow.PNG"});
}

TEST_CASE("image-dir: a folder that cannot be watched, and done/ in the way, are errors") {
  TempDir dir;
  WriteFile(dir / "done", "a file where the folder should be");
  Probe probe;
  SourceConfig config;
  config.kind = SourceKind::kImageDir;
  config.dir = dir.path;
  const Status started = probe.Open(config);
  REQUIRE_FALSE(started.ok());
  CHECK(started.message() == "cannot make folder " + dir.path + "/done: a file is in the way");
}

}  // namespace
}  // namespace pingma
