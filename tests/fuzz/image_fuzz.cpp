// libFuzzer harness: DecodeImage never crashes, whatever the bytes (a PNG or JPEG
// signature in front steers most inputs into libpng and libjpeg), and what it
// returns keeps the limits: an image within 50 megapixels, symbols with a symbology.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "pingma/scanner/image.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // One pass: the extra passes reread the same pixels, and the loaders are the target.
  const auto scan = pingma::DecodeImage(bytes, pingma::DecodeOptions{false});
  if (scan.ok()) {
    if (scan->width <= 0 || scan->height <= 0) std::abort();
    if (std::int64_t{scan->width} * scan->height > pingma::kMaxImagePixels) std::abort();
    for (const auto& s : scan->symbols) {
      if (s.symbology.empty()) std::abort();
    }
  } else if (scan.status().message().empty()) {
    std::abort();
  }
  return 0;
}
