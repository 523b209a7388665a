// Image decoding: the QR (or Data Matrix, Code 128) symbols in a camera's PNG or JPEG.
//
// Pure functions of the bytes given, safe from any thread; each call allocates and
// frees its own buffers. The work one image can cause is bounded before anything is
// decoded: a file over kMaxImageFileBytes or an image over kMaxImagePixels is refused.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pingma/common/status.h"

namespace pingma {

inline constexpr std::size_t kMaxImageFileBytes = std::size_t{20} << 20;  // 20 MiB
inline constexpr std::int64_t kMaxImagePixels = 50'000'000;               // 50 megapixels

/// One symbol read from an image.
struct DecodedSymbol {
  std::string text;       ///< the symbol's content exactly as encoded (UTF-8)
  std::string symbology;  ///< ZXing's name for it: "QRCode", "DataMatrix", "Code128", ...
  std::string pass;       ///< which decoding pass read it ("plain", "inverted", ...)
};

struct ImageScan {
  std::string format;  ///< "png" or "jpeg"
  int width = 0;
  int height = 0;
  /// Every distinct symbol read, in the order found. Empty when the image loaded but
  /// nothing in it could be read: that is a result, not an error.
  std::vector<DecodedSymbol> symbols;
};

struct DecodeOptions {
  /// false: one ZXing pass with its defaults, as ReadBarcodes does. true: when that
  /// finds nothing, go on with the passes for dirty, blurred, dark, inverted, tiny or
  /// huge labels (bounded; see image_decode.cpp).
  bool try_harder = true;
};

/// Decodes a PNG or JPEG given as its file's bytes. Errors: kTooLarge (bytes or
/// pixels over the limits), kInvalid (neither PNG nor JPEG, empty, corrupt,
/// truncated), each with a message that says which.
Result<ImageScan> DecodeImage(std::string_view bytes, const DecodeOptions& options = {});

/// Reads `path` (refusing a file over kMaxImageFileBytes before reading it) and
/// decodes it. kNotFound / kIoError when the file cannot be read.
Result<ImageScan> DecodeImageFile(const std::string& path, const DecodeOptions& options = {});

}  // namespace pingma
