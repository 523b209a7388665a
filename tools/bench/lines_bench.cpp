// pingma-bench-lines: scans per second through a tcp-listen scan source, against a
// bare Asio line reader fed the same bytes in the same run.
//
// Each round runs three receivers, one after the other, each on its own
// io_context on this thread, while a client thread connects over loopback and
// sends the same N distinct lines ("HB" + 10 digits + LF) in 64 KiB writes:
//   bare       async_read_until('\n') on one socket with an asio::streambuf, the
//              line copied out and counted: nothing else (the floor);
//   source     MakeScanSource tcp-listen, dedup off (dedup_window 0);
//   dedup      the same with the default 2 s window: every line is new, so each
//              one takes the table's insert path (its worst case).
// The clock runs from the client's start to the receiver's N-th line. The order
// of the three rotates each round, and the median of the rounds is reported
// with the ratios source/bare and dedup/source.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <asio/buffers_iterator.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read_until.hpp>
#include <asio/streambuf.hpp>
#include <asio/write.hpp>

#include "pingma/scanner/source.h"
#include "source_private.h"

namespace {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

/// Connects to 127.0.0.1:`port` and sends `payload` in 64 KiB writes.
void Feed(unsigned short port, const std::string& payload) {
  asio::io_context io;
  tcp::socket socket(io);
  std::error_code ec;
  socket.connect({asio::ip::make_address_v4("127.0.0.1"), port}, ec);
  if (ec) {
    std::fprintf(stderr, "client: cannot connect: %s\n", ec.message().c_str());
    return;
  }
  constexpr std::size_t kChunk = 64 * 1024;
  for (std::size_t at = 0; at < payload.size() && !ec; at += kChunk) {
    asio::write(socket, asio::buffer(payload.data() + at, std::min(kChunk, payload.size() - at)),
                ec);
  }
  if (ec) std::fprintf(stderr, "client: write failed: %s\n", ec.message().c_str());
}

/// The floor: the Asio way to read lines, one async_read_until per line.
class BareReader {
 public:
  BareReader(asio::io_context& io, std::size_t lines) : io_(io), socket_(io), wanted_(lines) {}

  void Start() {
    asio::async_read_until(socket_, buffer_, '\n',
                           [this](const std::error_code& ec, std::size_t n) { OnLine(ec, n); });
  }
  tcp::socket& socket() { return socket_; }
  std::size_t count() const { return count_; }
  std::size_t checksum() const { return checksum_; }
  Clock::time_point done_at() const { return done_at_; }

 private:
  void OnLine(const std::error_code& ec, std::size_t n) {
    if (ec) return;
    const auto begin = asio::buffers_begin(buffer_.data());
    line_.assign(begin, begin + static_cast<std::ptrdiff_t>(n - 1));
    buffer_.consume(n);
    checksum_ += line_.size();
    if (++count_ == wanted_) {
      done_at_ = Clock::now();
      io_.stop();
      return;
    }
    Start();
  }

  asio::io_context& io_;
  tcp::socket socket_;
  asio::streambuf buffer_;
  std::string line_;
  std::size_t wanted_;
  std::size_t count_ = 0;
  std::size_t checksum_ = 0;
  Clock::time_point done_at_{};
};

struct Run {
  double seconds = 0;
  std::size_t lines = 0;
  std::size_t max_buffered = 0;
};

Run RunBare(const std::string& payload, std::size_t lines) {
  asio::io_context io;
  tcp::acceptor acceptor(io, {asio::ip::make_address_v4("127.0.0.1"), 0});
  BareReader reader(io, lines);
  acceptor.async_accept(reader.socket(), [&](const std::error_code& ec) {
    if (!ec) reader.Start();
  });
  const auto start = Clock::now();
  std::thread client(Feed, acceptor.local_endpoint().port(), std::cref(payload));
  io.run();
  client.join();
  return {std::chrono::duration<double>(reader.done_at() - start).count(), reader.count(), 0};
}

Run RunSource(const std::string& payload, std::size_t lines, std::chrono::milliseconds window) {
  asio::io_context io;
  std::size_t count = 0;
  std::size_t checksum = 0;
  Clock::time_point done_at{};
  pingma::SourceConfig config;
  config.kind = pingma::SourceKind::kTcpListen;
  config.address = "127.0.0.1:0";
  config.dedup_window = window;
  auto made = pingma::MakeScanSource(
      io, config,
      [&](const pingma::Scan& scan) {
        checksum += scan.text.size();
        if (++count == lines) {
          done_at = Clock::now();
          io.stop();
        }
      },
      [](const pingma::SourceNotice& notice) {
        if (notice.level == pingma::SourceNotice::Level::kWarning) {
          std::fprintf(stderr, "source: %s\n", notice.message.c_str());
        }
      });
  if (!made.ok()) {
    std::fprintf(stderr, "%s\n", made.status().ToString().c_str());
    std::exit(1);
  }
  std::unique_ptr<pingma::ScanSource> source = std::move(*made);
  const pingma::Status started = source->Start();
  if (!started.ok()) {
    std::fprintf(stderr, "%s\n", started.ToString().c_str());
    std::exit(1);
  }
  const std::string bound = source->Describe();
  const auto port = static_cast<unsigned short>(std::stoi(bound.substr(bound.rfind(':') + 1)));
  const auto start = Clock::now();
  std::thread client(Feed, port, std::cref(payload));
  io.run();
  client.join();
  const std::size_t max_buffered = pingma::MaxLineBuffered(*source);
  source->Stop();
  return {std::chrono::duration<double>(done_at - start).count(), count, max_buffered};
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pingma-bench-lines: scans per second through tcp-listen vs a bare Asio reader"};
  std::size_t lines = 1'000'000;
  int rounds = 7;
  app.add_option("--lines", lines, "distinct lines sent per receiver per round")
      ->capture_default_str();
  app.add_option("--rounds", rounds, "rounds; the three receivers rotate order each round")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (lines == 0 || rounds <= 0) {
    std::fprintf(stderr, "--lines and --rounds must be above 0\n");
    return 2;
  }

  std::string payload;
  payload.reserve(lines * 13);
  char line[32];
  for (std::size_t i = 0; i < lines; ++i) {
    std::snprintf(line, sizeof line, "HB%010zu\n", i);
    payload += line;
  }

  const char* names[] = {"bare", "source", "dedup"};
  std::vector<double> rate[3];
  std::size_t max_buffered = 0;
  std::printf("%zu lines of 13 bytes per receiver, %d rounds\n", lines, rounds);
  std::printf("round  %-7s %14s\n", "reader", "lines/s");
  for (int round = 0; round < rounds; ++round) {
    for (int k = 0; k < 3; ++k) {
      const int which = (round + k) % 3;
      Run run = which == 0   ? RunBare(payload, lines)
                : which == 1 ? RunSource(payload, lines, std::chrono::milliseconds(0))
                             : RunSource(payload, lines, std::chrono::milliseconds(2000));
      if (run.lines != lines) {
        std::fprintf(stderr, "%s: %zu of %zu lines arrived\n", names[which], run.lines, lines);
        return 1;
      }
      max_buffered = std::max(max_buffered, run.max_buffered);
      rate[which].push_back(static_cast<double>(lines) / run.seconds);
      std::printf("%5d  %-7s %14.0f\n", round + 1, names[which], rate[which].back());
    }
  }
  const double bare = Median(rate[0]);
  const double source = Median(rate[1]);
  const double dedup = Median(rate[2]);
  std::printf("\nmedian lines/s: bare %.0f, source %.0f, source+dedup %.0f\n", bare, source, dedup);
  std::printf("source/bare %.2f, (source+dedup)/bare %.2f, dedup on/off %.3f (cost %.1f%%)\n",
              source / bare, dedup / bare, dedup / source, (1 - dedup / source) * 100);
  std::printf("largest unfinished line held by the framer: %zu bytes\n", max_buffered);
  return 0;
}
