// Loading PNG and JPEG files into 8-bit grey images, within the limits of image.h.
//
// Pure functions of the bytes given; safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pingma/common/status.h"

namespace pingma {

/// An 8-bit luminance image, rows top to bottom, no padding. Owns its pixels.
struct GrayImage {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> pixels;  ///< width * height bytes, 0 black .. 255 white

  std::uint8_t at(int x, int y) const {
    return pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(width) +
                  static_cast<std::size_t>(x)];
  }
};

struct LoadedImage {
  std::string format;  ///< "png" or "jpeg"
  GrayImage gray;
};

/// Decodes a PNG (any bit depth, palette, alpha composited on white) or a JPEG
/// (greyscale, YCbCr, CMYK), telling them apart by their signatures. The size and
/// pixel limits of image.h are checked before any pixel is decoded; a corrupt or
/// truncated file is kInvalid with the library's own words.
Result<LoadedImage> LoadGrayImage(std::string_view bytes);

}  // namespace pingma
