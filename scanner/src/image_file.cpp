// PNG through libpng's simplified API, JPEG through libjpeg(-turbo) with an error
// manager that longjmps back here: neither library may abort or print on its own.
#include "image_file.h"

#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <string>

// jpeglib.h needs FILE and size_t declared first.
#include <jerror.h>
#include <jpeglib.h>

#include "pingma/scanner/image.h"

namespace pingma {
namespace {

// A hostile progressive JPEG can ask for thousands of scans over the same pixels;
// cameras write at most a few dozen (libjpeg-turbo's own tools stop at 500 too).
constexpr int kMaxJpegScans = 500;

bool IsPng(std::string_view b) {
  static constexpr unsigned char kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  return b.size() >= sizeof kSignature && std::memcmp(b.data(), kSignature, sizeof kSignature) == 0;
}

bool IsJpeg(std::string_view b) {
  return b.size() >= 3 && static_cast<unsigned char>(b[0]) == 0xFF &&
         static_cast<unsigned char>(b[1]) == 0xD8 && static_cast<unsigned char>(b[2]) == 0xFF;
}

Status CheckPixels(const char* format, std::int64_t width, std::int64_t height) {
  if (width <= 0 || height <= 0) {
    return Status::Invalid(std::string(format) + " image has no pixels (" + std::to_string(width) +
                           " x " + std::to_string(height) + ")");
  }
  if (width * height > kMaxImagePixels) {
    return Status::TooLarge(std::string(format) + " image of " + std::to_string(width) + " x " +
                            std::to_string(height) + " pixels is over the limit of " +
                            std::to_string(kMaxImagePixels / 1'000'000) + " megapixels");
  }
  return Status::Ok();
}

Result<LoadedImage> LoadPng(std::string_view bytes) {
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  // Frees whatever libpng holds on every way out of this function.
  struct Guard {
    png_image* image;
    ~Guard() { png_image_free(image); }
  } guard{&image};

  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size())) {
    return Status::Invalid(std::string("corrupt PNG: ") + image.message);
  }
  PINGMA_RETURN_IF_ERROR(CheckPixels("PNG", image.width, image.height));
  image.format = PNG_FORMAT_GRAY;  // libpng converts, and composites alpha on `white`
  LoadedImage out{"png", {}};
  out.gray.width = static_cast<int>(image.width);
  out.gray.height = static_cast<int>(image.height);
  out.gray.pixels.resize(PNG_IMAGE_SIZE(image));
  png_color white{255, 255, 255};
  if (!png_image_finish_read(&image, &white, out.gray.pixels.data(), 0, nullptr)) {
    return Status::Invalid(std::string("corrupt PNG: ") + image.message);
  }
  return out;
}

// libjpeg reports errors through this manager: the message is kept, then control
// returns to the setjmp in LoadJpeg.
struct JpegErrors {
  jpeg_error_mgr base;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool truncated;
};

void OnJpegError(j_common_ptr cinfo) {
  auto* errors = reinterpret_cast<JpegErrors*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, errors->message);
  std::longjmp(errors->jump, 1);
}

// Warnings (level -1) are kept quiet, except a premature end: a truncated file is
// refused rather than decoded into a half-grey picture.
void OnJpegMessage(j_common_ptr cinfo, int level) {
  auto* errors = reinterpret_cast<JpegErrors*>(cinfo->err);
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) errors->truncated = true;
}

void OnJpegProgress(j_common_ptr cinfo) {
  auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->input_scan_number > kMaxJpegScans) {
    auto* errors = reinterpret_cast<JpegErrors*>(cinfo->err);
    std::snprintf(errors->message, sizeof errors->message,
                  "progressive JPEG with more than %d scans", kMaxJpegScans);
    std::longjmp(errors->jump, 1);
  }
}

// The decoding itself, in a function of its own with no objects that have
// destructors: longjmp must not skip any.
bool DecodeJpeg(jpeg_decompress_struct* cinfo, JpegErrors* errors, std::string_view bytes,
                LoadedImage* out, std::vector<unsigned char>* cmyk_row, Status* refusal) {
  if (setjmp(errors->jump)) return false;
  jpeg_create_decompress(cinfo);
  jpeg_mem_src(cinfo, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(cinfo, TRUE);
  *refusal = CheckPixels("JPEG", cinfo->image_width, cinfo->image_height);
  if (!refusal->ok()) return true;
  const bool cmyk = cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
  cinfo->out_color_space = cmyk ? JCS_CMYK : JCS_GRAYSCALE;
  jpeg_start_decompress(cinfo);
  const auto width = static_cast<std::size_t>(cinfo->output_width);
  out->gray.width = static_cast<int>(cinfo->output_width);
  out->gray.height = static_cast<int>(cinfo->output_height);
  out->gray.pixels.resize(width * cinfo->output_height);
  std::vector<unsigned char>& row = *cmyk_row;
  if (cmyk) row.resize(width * 4);
  while (cinfo->output_scanline < cinfo->output_height) {
    unsigned char* dest = out->gray.pixels.data() + width * cinfo->output_scanline;
    JSAMPROW target = cmyk ? row.data() : dest;
    jpeg_read_scanlines(cinfo, &target, 1);
    if (cmyk) {
      // Adobe writes CMYK JPEGs inverted: each byte is 255 - ink, so red is C*K/255.
      for (std::size_t x = 0; x < width; ++x) {
        const unsigned k = row[4 * x + 3];
        const unsigned r = row[4 * x] * k / 255, g = row[4 * x + 1] * k / 255,
                       b = row[4 * x + 2] * k / 255;
        dest[x] = static_cast<unsigned char>((306 * r + 601 * g + 117 * b + 512) >> 10);
      }
    }
  }
  jpeg_finish_decompress(cinfo);
  return true;
}

Result<LoadedImage> LoadJpeg(std::string_view bytes) {
  jpeg_decompress_struct cinfo;
  JpegErrors errors{};
  cinfo.err = jpeg_std_error(&errors.base);
  errors.base.error_exit = OnJpegError;
  errors.base.emit_message = OnJpegMessage;
  jpeg_progress_mgr progress{};
  progress.progress_monitor = OnJpegProgress;
  cinfo.progress = &progress;

  LoadedImage out{"jpeg", {}};
  std::vector<unsigned char> cmyk_row;
  Status refusal;
  const bool finished = DecodeJpeg(&cinfo, &errors, bytes, &out, &cmyk_row, &refusal);
  jpeg_destroy_decompress(&cinfo);
  if (!finished) return Status::Invalid(std::string("corrupt JPEG: ") + errors.message);
  PINGMA_RETURN_IF_ERROR(refusal);
  if (errors.truncated) return Status::Invalid("corrupt JPEG: the file ends before the image does");
  return out;
}

}  // namespace

Result<LoadedImage> LoadGrayImage(std::string_view bytes) {
  if (bytes.empty()) return Status::Invalid("the file is empty (0 bytes)");
  if (bytes.size() > kMaxImageFileBytes) {
    return Status::TooLarge("image file of " + std::to_string(bytes.size()) +
                            " bytes is over the limit of " +
                            std::to_string(kMaxImageFileBytes >> 20) + " MiB");
  }
  if (IsPng(bytes)) return LoadPng(bytes);
  if (IsJpeg(bytes)) return LoadJpeg(bytes);
  return Status::Invalid("not a PNG or JPEG image (unknown file signature)");
}

}  // namespace pingma
