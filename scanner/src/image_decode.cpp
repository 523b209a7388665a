// Decoding passes for camera photos of cylinder labels.
//
// The first pass is ZXing's own reader with its defaults (try harder, rotations,
// its downscale pyramid, the local-average binariser), limited to the symbologies a
// cylinder label can carry. Photos it reads cost no more than that one call. When it
// reads nothing, the passes below each fix one way a label photo goes wrong, on a
// working copy of at most kWorkPixels, and the first that reads anything ends the
// search. They were chosen and ordered on the generated photo set of
// tests/integration/scan_photos_test.py (see BENCHMARKS.md).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <system_error>
#include <vector>

#include <ZXing/ReadBarcode.h>

#include "image_file.h"
#include "pingma/scanner/image.h"

namespace pingma {
namespace {

// The extra passes work on at most this many pixels: a QR label fills a good part of
// a station camera's frame, and 4 MP keeps a module several pixels wide while
// bounding each pass to a few tens of milliseconds.
constexpr std::int64_t kWorkPixels = 4'000'000;
// Below this many pixels an enlarged copy is tried, for labels shot from afar.
constexpr std::int64_t kEnlargeBelowPixels = 1'500'000;

ZXing::BarcodeFormats LabelFormats() {
  return ZXing::BarcodeFormat::QRCode | ZXing::BarcodeFormat::MicroQRCode |
         ZXing::BarcodeFormat::DataMatrix | ZXing::BarcodeFormat::Code128;
}

ZXing::ImageView View(const GrayImage& g) {
  return {g.pixels.data(), g.width, g.height, ZXing::ImageFormat::Lum};
}

// Area-averaging reduction to at most `max_pixels` (box filter per target pixel).
GrayImage Shrink(const GrayImage& in, std::int64_t max_pixels) {
  const std::int64_t pixels = std::int64_t{in.width} * in.height;
  if (pixels <= max_pixels) return in;
  const double scale = std::sqrt(static_cast<double>(max_pixels) / static_cast<double>(pixels));
  GrayImage out;
  out.width = std::max(1, static_cast<int>(in.width * scale));
  out.height = std::max(1, static_cast<int>(in.height * scale));
  out.pixels.resize(static_cast<std::size_t>(out.width) * static_cast<std::size_t>(out.height));
  for (int y = 0; y < out.height; ++y) {
    const int y0 = static_cast<int>(std::int64_t{y} * in.height / out.height);
    const int y1 = std::max(y0 + 1, static_cast<int>(std::int64_t{y + 1} * in.height / out.height));
    for (int x = 0; x < out.width; ++x) {
      const int x0 = static_cast<int>(std::int64_t{x} * in.width / out.width);
      const int x1 = std::max(x0 + 1, static_cast<int>(std::int64_t{x + 1} * in.width / out.width));
      unsigned sum = 0;
      for (int yy = y0; yy < y1; ++yy) {
        for (int xx = x0; xx < x1; ++xx) sum += in.at(xx, yy);
      }
      out.pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(out.width) +
                 static_cast<std::size_t>(x)] =
          static_cast<std::uint8_t>(sum / static_cast<unsigned>((y1 - y0) * (x1 - x0)));
    }
  }
  return out;
}

// Bilinear enlargement by two.
GrayImage Enlarge(const GrayImage& in) {
  GrayImage out;
  out.width = in.width * 2;
  out.height = in.height * 2;
  out.pixels.resize(static_cast<std::size_t>(out.width) * static_cast<std::size_t>(out.height));
  for (int y = 0; y < out.height; ++y) {
    const double sy = std::max(0.0, (y + 0.5) / 2 - 0.5);
    const int y0 = std::min(static_cast<int>(sy), in.height - 1);
    const int y1 = std::min(y0 + 1, in.height - 1);
    const double fy = sy - y0;
    for (int x = 0; x < out.width; ++x) {
      const double sx = std::max(0.0, (x + 0.5) / 2 - 0.5);
      const int x0 = std::min(static_cast<int>(sx), in.width - 1);
      const int x1 = std::min(x0 + 1, in.width - 1);
      const double fx = sx - x0;
      const double top = in.at(x0, y0) * (1 - fx) + in.at(x1, y0) * fx;
      const double bottom = in.at(x0, y1) * (1 - fx) + in.at(x1, y1) * fx;
      out.pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(out.width) +
                 static_cast<std::size_t>(x)] =
          static_cast<std::uint8_t>(std::lround(top * (1 - fy) + bottom * fy));
    }
  }
  return out;
}

GrayImage Inverted(GrayImage g) {
  for (std::uint8_t& p : g.pixels) p = static_cast<std::uint8_t>(255 - p);
  return g;
}

// Summed-area table, one row and column of zeros in front.
std::vector<std::uint32_t> Integral(const GrayImage& g) {
  const std::size_t w = static_cast<std::size_t>(g.width) + 1;
  std::vector<std::uint32_t> sum(w * (static_cast<std::size_t>(g.height) + 1), 0);
  for (int y = 0; y < g.height; ++y) {
    std::uint32_t row = 0;
    for (int x = 0; x < g.width; ++x) {
      row += g.at(x, y);
      sum[(static_cast<std::size_t>(y) + 1) * w + static_cast<std::size_t>(x) + 1] =
          sum[static_cast<std::size_t>(y) * w + static_cast<std::size_t>(x) + 1] + row;
    }
  }
  return sum;
}

// The mean of the (2r+1)^2 box around each pixel, clipped at the edges.
GrayImage BoxMean(const GrayImage& g, int r) {
  const std::vector<std::uint32_t> sum = Integral(g);
  const std::size_t w = static_cast<std::size_t>(g.width) + 1;
  GrayImage out = g;
  for (int y = 0; y < g.height; ++y) {
    const int ya = std::max(0, y - r), yb = std::min(g.height, y + r + 1);
    for (int x = 0; x < g.width; ++x) {
      const int xa = std::max(0, x - r), xb = std::min(g.width, x + r + 1);
      const auto at = [&](int xx, int yy) {
        return sum[static_cast<std::size_t>(yy) * w + static_cast<std::size_t>(xx)];
      };
      const std::uint32_t s = at(xb, yb) - at(xa, yb) - at(xb, ya) + at(xa, ya);
      out.pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(g.width) +
                 static_cast<std::size_t>(x)] =
          static_cast<std::uint8_t>(s / static_cast<std::uint32_t>((xb - xa) * (yb - ya)));
    }
  }
  return out;
}

// Maps the 1st..99th percentile of the grey levels onto 0..255: a faded or
// underexposed label gets its full contrast back.
GrayImage Stretched(GrayImage g) {
  std::uint64_t histogram[256] = {};
  for (std::uint8_t p : g.pixels) ++histogram[p];
  const std::uint64_t cut = g.pixels.size() / 100;
  int lo = 0, hi = 255;
  for (std::uint64_t seen = 0; lo < 255 && (seen += histogram[lo]) <= cut;) ++lo;
  for (std::uint64_t seen = 0; hi > 0 && (seen += histogram[hi]) <= cut;) --hi;
  if (hi <= lo) return g;
  for (std::uint8_t& p : g.pixels) {
    const int v = (static_cast<int>(p) - lo) * 255 / (hi - lo);
    p = static_cast<std::uint8_t>(std::clamp(v, 0, 255));
  }
  return g;
}

// Divides out the light falling across the label (a lamp on one side, a shadow),
// estimated as a wide box mean, then stretches what is left.
GrayImage Flattened(const GrayImage& g) {
  const int radius = std::max(8, std::min(g.width, g.height) / 10);
  const GrayImage light = BoxMean(g, radius);
  GrayImage out = g;
  for (std::size_t i = 0; i < g.pixels.size(); ++i) {
    const int v = g.pixels[i] * 160 / std::max<int>(1, light.pixels[i]);
    out.pixels[i] = static_cast<std::uint8_t>(std::min(v, 255));
  }
  return Stretched(std::move(out));
}

struct Pass {
  const char* name;
  std::function<GrayImage(const GrayImage&)> prepare;  // from the working copy
  ZXing::Binarizer binarizer;
};

// In order of what they read on the photo set, cheapest first where equal. A pass
// that read nothing the others did not was dropped (unsharp masking, sharper
// binarisers on blurred photos: blur past half a module is lost for good).
const std::vector<Pass>& ExtraPasses() {
  static const std::vector<Pass> passes = {
      // Light-on-dark labels and photos of negatives: ZXing 1.4 reads dark-on-light only.
      {"inverted", [](const GrayImage& g) { return Inverted(g); }, ZXing::Binarizer::LocalAverage},
      // Faded or underexposed labels, light falling across them.
      {"flattened", [](const GrayImage& g) { return Flattened(g); },
       ZXing::Binarizer::LocalAverage},
      // Sensor noise in dim light: a 5 x 5 mean, then the local binariser or, for the
      // grainiest, one threshold at mid-grey after stretching.
      {"smoothed", [](const GrayImage& g) { return BoxMean(g, 2); },
       ZXing::Binarizer::LocalAverage},
      {"smoothed-fixed", [](const GrayImage& g) { return Stretched(BoxMean(g, 2)); },
       ZXing::Binarizer::FixedThreshold},
      {"flattened-inverted", [](const GrayImage& g) { return Inverted(Flattened(g)); },
       ZXing::Binarizer::LocalAverage},
      // Glare: one global threshold sometimes separates what local blocks cannot.
      {"histogram", [](const GrayImage& g) { return g; }, ZXing::Binarizer::GlobalHistogram},
      // Labels shot from afar, under two pixels a module.
      {"enlarged",
       [](const GrayImage& g) {
         return std::int64_t{g.width} * g.height < kEnlargeBelowPixels ? Enlarge(g) : GrayImage{};
       },
       ZXing::Binarizer::LocalAverage},
  };
  return passes;
}

void Collect(const ZXing::Results& results, const char* pass, std::vector<DecodedSymbol>* out) {
  for (const ZXing::Result& r : results) {
    if (!r.isValid()) continue;
    std::string text = r.text();
    const bool seen = std::any_of(out->begin(), out->end(),
                                  [&](const DecodedSymbol& s) { return s.text == text; });
    if (!seen) out->push_back({std::move(text), ZXing::ToString(r.format()), pass});
  }
}

}  // namespace

Result<ImageScan> DecodeImage(std::string_view bytes, const DecodeOptions& options) {
  PINGMA_ASSIGN_OR_RETURN(LoadedImage loaded, LoadGrayImage(bytes));
  const GrayImage& image = loaded.gray;
  ImageScan scan{loaded.format, image.width, image.height, {}};

  ZXing::DecodeHints hints;
  hints.setFormats(LabelFormats());
  Collect(ZXing::ReadBarcodes(View(image), hints), "plain", &scan.symbols);
  if (!scan.symbols.empty() || !options.try_harder) return scan;

  const GrayImage work = Shrink(image, kWorkPixels);
  for (const Pass& pass : ExtraPasses()) {
    const GrayImage prepared = pass.prepare(work);
    if (prepared.pixels.empty()) continue;
    hints.setBinarizer(pass.binarizer);
    Collect(ZXing::ReadBarcodes(View(prepared), hints), pass.name, &scan.symbols);
    if (!scan.symbols.empty()) break;
  }
  return scan;
}

Result<ImageScan> DecodeImageFile(const std::string& path, const DecodeOptions& options) {
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) {
    if (ec == std::errc::no_such_file_or_directory) return Status::NotFound("no file " + path);
    return Status::IoError("cannot read " + path + ": " + ec.message());
  }
  if (size > kMaxImageFileBytes) {
    return Status::TooLarge(path + " is " + std::to_string(size) +
                            " bytes, over the image limit of " +
                            std::to_string(kMaxImageFileBytes >> 20) + " MiB");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IoError("cannot open " + path);
  std::string bytes(static_cast<std::size_t>(size), '\0');
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (static_cast<std::uintmax_t>(in.gcount()) != size) {
    return Status::IoError("cannot read " + path + ": it changed while being read");
  }
  Result<ImageScan> scan = DecodeImage(bytes, options);
  if (!scan.ok()) return Status(scan.status().code(), path + ": " + scan.status().message());
  return scan;
}

}  // namespace pingma
