// pingma-bench-decode: decodes image files one way and prints, per file, whether a
// symbol was read, what it said and how long it took (load included), as JSON lines.
// bench.py photos runs it beside zbarimg and pingma-scan on the same photo set.
//
//   --mode zxing    ZXing's ReadBarcode called once with its default hints
//   --mode pingma   pingma::DecodeImage, every pass (what pingma-scan does)
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <ZXing/ReadBarcode.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "image_file.h"
#include "pingma/scanner/image.h"

namespace {

struct Outcome {
  bool read = false;
  std::string text;
};

Outcome DecodeOnce(const std::string& bytes, const std::string& mode) {
  if (mode == "pingma") {
    pingma::Result<pingma::ImageScan> scan = pingma::DecodeImage(bytes);
    if (!scan.ok() || scan->symbols.empty()) return {};
    return {true, scan->symbols.front().text};
  }
  pingma::Result<pingma::LoadedImage> image = pingma::LoadGrayImage(bytes);
  if (!image.ok()) return {};
  const pingma::GrayImage& g = image->gray;
  ZXing::Result r =
      ZXing::ReadBarcode({g.pixels.data(), g.width, g.height, ZXing::ImageFormat::Lum});
  if (!r.isValid()) return {};
  return {true, r.text()};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pingma-bench-decode: per-file decode outcome and time, one JSON line per file"};
  std::string mode = "pingma";
  std::vector<std::string> files;
  app.add_option("--mode", mode, "zxing (one ReadBarcode with defaults) or pingma")
      ->check(CLI::IsMember({"zxing", "pingma"}))
      ->capture_default_str();
  app.add_option("files", files, "PNG or JPEG files")->required();
  CLI11_PARSE(app, argc, argv);

  for (const std::string& file : files) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream buffer;
    buffer << in.rdbuf();
    const std::string bytes = buffer.str();
    const auto start = std::chrono::steady_clock::now();
    const Outcome outcome = DecodeOnce(bytes, mode);
    const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
    nlohmann::json line = {{"file", file}, {"read", outcome.read}, {"ms", took.count()}};
    if (outcome.read) line["text"] = outcome.text;
    std::printf("%s\n",
                line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  }
  return 0;
}
