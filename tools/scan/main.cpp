// pingma-scan: decodes scans into cylinder codes, one JSON line per input.
//
//   pingma-scan [--text STRING | --epc HEX | FILE...]   FILE: a PNG or JPEG; - reads lines
//   pingma-scan --listen HOST:PORT | --connect HOST:PORT | --serial DEV | --watch DIR
//
// The second form follows a device the way a filling position does (scanner/source.h)
// and prints a line per scan until SIGINT or SIGTERM: the way to check a reader or a
// camera at a station before the agent is pointed at it.
#include <csignal>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <nlohmann/json.hpp>

#include "pingma/common/command_line.h"
#include "pingma/common/domain.h"
#include "pingma/scanner/image.h"
#include "pingma/scanner/scan.h"
#include "pingma/scanner/source.h"

namespace {

// Keys stay in the order API.md writes them: input, decoded, raw, symbology, code, key.
using json = nlohmann::ordered_json;

void PrintLine(const json& line) {
  std::fputs((line.dump(-1, ' ', false, json::error_handler_t::replace) + "\n").c_str(), stdout);
  std::fflush(stdout);
}

// The parsed half of a line: "code" and "key", or nulls and the reason. True when
// the text is a cylinder code.
bool AddParsed(const std::string& raw, json* line) {
  pingma::Result<pingma::ScanKey> key = pingma::ParseScan(raw);
  if (!key.ok()) {
    (*line)["code"] = nullptr;
    (*line)["key"] = nullptr;
    (*line)["error"] = key.status().message();
    return false;
  }
  json k = {{"kind", pingma::ToString(key->kind)}, {"text", key->text}};
  if (key->also_code) k["also_code"] = *key->also_code;
  (*line)["code"] = key->text;
  (*line)["key"] = std::move(k);
  return true;
}

bool ReportText(const std::string& input, const std::string& raw) {
  json line = {{"input", input}, {"decoded", true}, {"raw", raw}, {"symbology", nullptr}};
  const bool ok = AddParsed(raw, &line);
  PrintLine(line);
  return ok;
}

// One image: the symbol that is a cylinder code. Two different cylinder codes in one
// photo cannot tell which cylinder is on the scale, so that is no code at all.
bool ReportImage(const std::string& path) {
  pingma::Result<pingma::ImageScan> scan = pingma::DecodeImageFile(path);
  json line = {{"input", path}};
  if (!scan.ok()) {
    line["decoded"] = false;
    line["error"] = scan.status().message();
    PrintLine(line);
    return false;
  }
  if (scan->symbols.empty()) {
    line["decoded"] = false;
    line["error"] = "no QR code or barcode could be read in the " + std::to_string(scan->width) +
                    " x " + std::to_string(scan->height) + " " + scan->format + " image";
    PrintLine(line);
    return false;
  }
  const pingma::DecodedSymbol* chosen = nullptr;
  std::vector<std::string> codes;
  for (const pingma::DecodedSymbol& s : scan->symbols) {
    pingma::Result<pingma::ScanKey> key = pingma::ParseScan(s.text);
    if (!key.ok()) continue;
    if (chosen == nullptr) chosen = &s;
    codes.push_back(key->text);
  }
  if (chosen == nullptr) chosen = &scan->symbols.front();
  line["decoded"] = true;
  line["raw"] = chosen->text;
  line["symbology"] = chosen->symbology;
  line["pass"] = chosen->pass;
  if (scan->symbols.size() > 1) line["symbols"] = scan->symbols.size();
  bool ok = AddParsed(chosen->text, &line);
  if (codes.size() > 1) {
    line["code"] = nullptr;
    line["key"] = nullptr;
    line["error"] = "the image shows " + std::to_string(codes.size()) +
                    " cylinder codes: photograph one label at a time";
    ok = false;
  }
  PrintLine(line);
  return ok;
}

struct StreamOptions {
  pingma::SourceConfig config;
  bool until_signal = true;  // false: until the source has nothing more (stdin's EOF)
};

// Follows one source, printing a line per scan; notices go to stderr.
int Follow(StreamOptions options, bool* all_codes) {
  asio::io_context io;
  auto source = pingma::MakeScanSource(
      io, options.config,
      [all_codes](const pingma::Scan& scan) {
        json line = {{"input", scan.origin},
                     {"decoded", true},
                     {"raw", scan.text},
                     {"symbology", scan.symbology.empty() ? json() : json(scan.symbology)},
                     {"at", pingma::SystemClock().Now().ToString()}};
        if (!AddParsed(scan.text, &line)) *all_codes = false;
        PrintLine(line);
      },
      [](const pingma::SourceNotice& notice) {
        std::fprintf(stderr, "pingma-scan: %s%s\n",
                     notice.level == pingma::SourceNotice::Level::kWarning ? "warning: " : "",
                     notice.message.c_str());
      });
  if (!source.ok()) {
    std::fprintf(stderr, "pingma-scan: %s\n", source.status().message().c_str());
    return 2;
  }
  if (pingma::Status s = (*source)->Start(); !s.ok()) {
    std::fprintf(stderr, "pingma-scan: %s\n", s.message().c_str());
    return 1;
  }
  std::optional<asio::signal_set> signals;
  if (options.until_signal) {
    signals.emplace(io, SIGINT, SIGTERM);
    signals->async_wait([&](const std::error_code& ec, int) {
      if (!ec) (*source)->Stop();
    });
    std::fprintf(stderr, "pingma-scan: reading %s (Ctrl-C to stop)\n",
                 (*source)->Describe().c_str());
  }
  io.run();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "pingma-scan: decodes cylinder scans (一瓶一码 扫码解析) — QR photos, scanner text, RFID "
      "EPCs — into cylinder codes, one JSON line per input"};
  std::vector<std::string> texts, epcs, files;
  std::string listen, connect, serial, watch;
  unsigned baud = 9600;
  std::string rts, dtr;
  int dedup_ms = -1;
  app.add_option("--text", texts, "a raw scan as a scanner or reader sent it (repeatable)");
  app.add_option("--epc", epcs, "an RFID tag's EPC in hex (repeatable)");
  app.add_option("files", files, "PNG or JPEG images; - reads scan lines from stdin");
  auto* listen_opt =
      app.add_option("--listen", listen, "follow readers that connect to HOST:PORT (tcp-listen)");
  auto* connect_opt =
      app.add_option("--connect", connect, "follow a network reader at HOST:PORT (tcp-connect)");
  auto* serial_opt = app.add_option("--serial", serial, "follow a serial reader on DEVICE");
  auto* watch_opt = app.add_option("--watch", watch, "decode images dropped into DIR (image-dir)");
  app.add_option("--baud", baud, "serial: baud rate")->capture_default_str();
  app.add_option("--rts", rts, "serial: set RTS on or off")->check(CLI::IsMember({"on", "off"}));
  app.add_option("--dtr", dtr, "serial: set DTR on or off")->check(CLI::IsMember({"on", "off"}));
  app.add_option("--dedup-ms", dedup_ms,
                 "collapse repeats of one code within this many ms (default 2000 for devices, "
                 "0 for -)")
      ->check(CLI::Range(0, 3'600'000));
  for (CLI::Option* a : {listen_opt, connect_opt, serial_opt, watch_opt}) {
    for (CLI::Option* b : {listen_opt, connect_opt, serial_opt, watch_opt}) {
      if (a != b) a->excludes(b);
    }
  }
  if (auto done = pingma::ParseCommandLine(app, "pingma-scan", argc, argv)) return *done;

  const bool following = !listen.empty() || !connect.empty() || !serial.empty() || !watch.empty();
  if (following && (!texts.empty() || !epcs.empty() || !files.empty())) {
    std::fprintf(stderr,
                 "pingma-scan: --listen, --connect, --serial and --watch follow a device and "
                 "take no other input (see --help)\n");
    return 2;
  }
  if (!following && texts.empty() && epcs.empty() && files.empty()) {
    std::fprintf(stderr,
                 "pingma-scan: nothing to decode: give --text, --epc, FILE or - "
                 "(see --help)\n");
    return 2;
  }

  bool all_codes = true;
  if (following) {
    StreamOptions options;
    pingma::SourceConfig& c = options.config;
    if (!listen.empty()) c.kind = pingma::SourceKind::kTcpListen, c.address = listen;
    if (!connect.empty()) c.kind = pingma::SourceKind::kTcpConnect, c.address = connect;
    if (!serial.empty()) c.kind = pingma::SourceKind::kSerial, c.device = serial;
    if (!watch.empty()) c.kind = pingma::SourceKind::kImageDir, c.dir = watch;
    c.baud = baud;
    if (!rts.empty()) c.rts = rts == "on";
    if (!dtr.empty()) c.dtr = dtr == "on";
    if (dedup_ms >= 0) c.dedup_window = std::chrono::milliseconds(dedup_ms);
    return Follow(options, &all_codes);
  }

  for (const std::string& t : texts) all_codes &= ReportText("text", t);
  for (const std::string& e : epcs) all_codes &= ReportText("epc", "EPC:" + e);
  bool read_stdin = false;
  for (const std::string& f : files) {
    if (f == "-") {
      read_stdin = true;
      continue;
    }
    all_codes &= ReportImage(f);
  }
  if (read_stdin) {
    StreamOptions options;
    options.config.kind = pingma::SourceKind::kStdin;
    options.config.dedup_window = std::chrono::milliseconds(dedup_ms > 0 ? dedup_ms : 0);
    options.until_signal = false;
    if (int rc = Follow(options, &all_codes); rc != 0) return rc;
  }
  return all_codes ? 0 : 1;
}
