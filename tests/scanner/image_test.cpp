// Image decoding: real PNG and JPEG files written here with libpng and libjpeg,
// holding QR symbols made by ZXing's writer, and the files that must be refused.
// The photo set (dirty, blurred, turned labels) is tests/integration/scan_photos_test.py.
#include <doctest/doctest.h>
#include <png.h>
#include <unistd.h>
#include <zlib.h>

#include <ZXing/BitMatrix.h>
#include <ZXing/MultiFormatWriter.h>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

// jpeglib.h needs size_t and FILE declared first.
#include <jpeglib.h>

#include "pingma/scanner/image.h"

namespace pingma {
namespace {

const std::string kUrl = "https://pingma.example/c/HB0100000123";

struct Gray {
  int width = 0, height = 0;
  std::vector<std::uint8_t> px;
};

// A QR symbol of `text`, `module` pixels a module, with a 4-module quiet zone.
Gray QrImage(const std::string& text, int module = 6) {
  const ZXing::BitMatrix m = ZXing::MultiFormatWriter(ZXing::BarcodeFormat::QRCode)
                                 .setEccLevel(8)
                                 .setMargin(0)
                                 .encode(text, 0, 0);
  Gray g;
  g.width = g.height = (m.width() + 8) * module;
  g.px.assign(static_cast<std::size_t>(g.width) * static_cast<std::size_t>(g.height), 255);
  for (int y = 0; y < g.height; ++y) {
    for (int x = 0; x < g.width; ++x) {
      const int mx = x / module - 4, my = y / module - 4;
      if (mx >= 0 && my >= 0 && mx < m.width() && my < m.height() && m.get(mx, my)) {
        g.px[static_cast<std::size_t>(y) * static_cast<std::size_t>(g.width) +
             static_cast<std::size_t>(x)] = 0;
      }
    }
  }
  return g;
}

Gray Inverted(Gray g) {
  for (std::uint8_t& p : g.px) p = static_cast<std::uint8_t>(255 - p);
  return g;
}

std::string Png(const Gray& g) {
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(g.width);
  image.height = static_cast<png_uint_32>(g.height);
  image.format = PNG_FORMAT_GRAY;
  png_alloc_size_t size = 0;
  REQUIRE(png_image_write_to_memory(&image, nullptr, &size, 0, g.px.data(), 0, nullptr));
  std::string out(size, '\0');
  REQUIRE(png_image_write_to_memory(&image, out.data(), &size, 0, g.px.data(), 0, nullptr));
  out.resize(size);
  return out;
}

// A JPEG of `g`; cmyk writes it as Adobe's inverted CMYK (C = M = Y = 255, K = grey).
std::string Jpeg(const Gray& g, int quality, bool cmyk = false) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = static_cast<JDIMENSION>(g.width);
  cinfo.image_height = static_cast<JDIMENSION>(g.height);
  cinfo.input_components = cmyk ? 4 : 1;
  cinfo.in_color_space = cmyk ? JCS_CMYK : JCS_GRAYSCALE;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  std::vector<unsigned char> row(static_cast<std::size_t>(g.width) * 4);
  while (cinfo.next_scanline < cinfo.image_height) {
    const std::uint8_t* src = g.px.data() + static_cast<std::size_t>(cinfo.next_scanline) *
                                                static_cast<std::size_t>(g.width);
    JSAMPROW r = const_cast<JSAMPROW>(src);
    if (cmyk) {
      for (int x = 0; x < g.width; ++x) {
        row[4 * static_cast<std::size_t>(x)] = row[4 * static_cast<std::size_t>(x) + 1] =
            row[4 * static_cast<std::size_t>(x) + 2] = 255;
        row[4 * static_cast<std::size_t>(x) + 3] = src[x];
      }
      r = row.data();
    }
    jpeg_write_scanlines(&cinfo, &r, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  std::string out(reinterpret_cast<char*>(buffer), size);
  std::free(buffer);
  return out;
}

// PNG chunks are big-endian; IHDR's width and height are its first 8 data bytes,
// after the 8-byte signature and the chunk's length and type. The CRC is redone so
// that only the size is wrong.
std::string WithPngSize(std::string png, std::uint32_t width, std::uint32_t height) {
  auto put = [&](std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i)
      png[at + static_cast<std::size_t>(i)] = static_cast<char>(v >> (24 - 8 * i));
  };
  put(16, width);
  put(20, height);
  const std::uint32_t crc = static_cast<std::uint32_t>(
      crc32(crc32(0, nullptr, 0), reinterpret_cast<const unsigned char*>(png.data() + 12), 17));
  put(29, crc);
  return png;
}

// A baseline JPEG's SOF0 marker (FF C0) holds the height, then the width, at +5.
std::string WithJpegSize(std::string jpeg, std::uint16_t width, std::uint16_t height) {
  for (std::size_t i = 2; i + 9 < jpeg.size(); ++i) {
    if (static_cast<unsigned char>(jpeg[i]) == 0xFF &&
        static_cast<unsigned char>(jpeg[i + 1]) == 0xC0) {
      jpeg[i + 5] = static_cast<char>(height >> 8);
      jpeg[i + 6] = static_cast<char>(height & 0xFF);
      jpeg[i + 7] = static_cast<char>(width >> 8);
      jpeg[i + 8] = static_cast<char>(width & 0xFF);
      return jpeg;
    }
  }
  FAIL("no SOF0 marker");
  return jpeg;
}

std::string FirstText(const Result<ImageScan>& scan) {
  REQUIRE_MESSAGE(scan.ok(), scan.status().ToString());
  REQUIRE(!scan->symbols.empty());
  return scan->symbols.front().text;
}

TEST_CASE("a clean QR symbol is read from PNG and JPEG files in the first pass") {
  const Gray qr = QrImage(kUrl);
  struct Case {
    const char* what;
    std::string bytes;
    const char* format;
  };
  const Case cases[] = {
      {"grey PNG", Png(qr), "png"},
      {"JPEG quality 90", Jpeg(qr, 90), "jpeg"},
      {"JPEG quality 30", Jpeg(qr, 30), "jpeg"},
      {"Adobe CMYK JPEG", Jpeg(qr, 90, true), "jpeg"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.what);
    const Result<ImageScan> scan = DecodeImage(c.bytes);
    CHECK(FirstText(scan) == kUrl);
    CHECK(scan->format == c.format);
    CHECK(scan->width == qr.width);
    CHECK(scan->height == qr.height);
    CHECK(scan->symbols.front().symbology == "QRCode");
    CHECK(scan->symbols.front().pass == "plain");
  }
}

TEST_CASE("a light-on-dark symbol needs the inverted pass") {
  const std::string png = Png(Inverted(QrImage(kUrl)));
  const Result<ImageScan> one_pass = DecodeImage(png, DecodeOptions{false});
  REQUIRE(one_pass.ok());
  CHECK(one_pass->symbols.empty());  // nothing read is a result, not an error
  const Result<ImageScan> scan = DecodeImage(png);
  CHECK(FirstText(scan) == kUrl);
  CHECK(scan->symbols.front().pass == "inverted");
}

TEST_CASE("two symbols in one image are both reported, once each") {
  const Gray a = QrImage(kUrl), b = QrImage("https://pingma.example/c/HB0100000456");
  Gray both;
  both.width = a.width + b.width;
  both.height = a.height;
  for (int y = 0; y < a.height; ++y) {
    both.px.insert(both.px.end(), a.px.begin() + y * a.width, a.px.begin() + (y + 1) * a.width);
    both.px.insert(both.px.end(), b.px.begin() + y * b.width, b.px.begin() + (y + 1) * b.width);
  }
  const Result<ImageScan> scan = DecodeImage(Png(both));
  REQUIRE(scan.ok());
  REQUIRE(scan->symbols.size() == 2);
  CHECK(scan->symbols[0].text != scan->symbols[1].text);
}

TEST_CASE("a blank image is an empty result") {
  Gray blank;
  blank.width = blank.height = 200;
  blank.px.assign(200 * 200, 255);
  const Result<ImageScan> scan = DecodeImage(Png(blank));
  REQUIRE(scan.ok());
  CHECK(scan->symbols.empty());
}

struct Refusal {
  const char* what;
  std::string bytes;
  StatusCode code;
  const char* says;
};

TEST_CASE("files that are not images, corrupt, truncated or too large are refused") {
  const Gray qr = QrImage(kUrl);
  const std::string png = Png(qr);
  const std::string jpeg = Jpeg(qr, 90);
  std::string bad_crc = png;
  bad_crc[40] = static_cast<char>(bad_crc[40] ^ 0x55);  // inside IDAT: its CRC no longer holds

  const Refusal cases[] = {
      {"zero bytes", "", StatusCode::kInvalid, "empty"},
      {"a GIF", "GIF89a\x01\x00\x01\x00", StatusCode::kInvalid, "not a PNG or JPEG"},
      {"text", "https://pingma.example/c/HB0100000123", StatusCode::kInvalid, "not a PNG or JPEG"},
      {"PNG signature only", png.substr(0, 8), StatusCode::kInvalid, "corrupt PNG"},
      {"PNG cut in half", png.substr(0, png.size() / 2), StatusCode::kInvalid, "corrupt PNG"},
      {"PNG with a bad CRC", bad_crc, StatusCode::kInvalid, "corrupt PNG"},
      {"JPEG markers only", jpeg.substr(0, 3), StatusCode::kInvalid, "corrupt JPEG"},
      {"JPEG cut in half", jpeg.substr(0, jpeg.size() / 2), StatusCode::kInvalid, "corrupt JPEG"},
      {"PNG of 30,000 x 30,000", WithPngSize(png, 30000, 30000), StatusCode::kTooLarge,
       "30000 x 30000 pixels is over the limit of 50 megapixels"},
      {"PNG of 10,000 x 5,001 (one row over 50 MP)", WithPngSize(png, 10000, 5001),
       StatusCode::kTooLarge, "over the limit"},
      {"JPEG of 30,000 x 30,000", WithJpegSize(jpeg, 30000, 30000), StatusCode::kTooLarge,
       "30000 x 30000 pixels is over the limit"},
      {"JPEG of 0 x 10", WithJpegSize(jpeg, 0, 10), StatusCode::kInvalid, "corrupt JPEG"},
      {"file of 20 MiB + 1 byte", png + std::string(kMaxImageFileBytes + 1 - png.size(), '\0'),
       StatusCode::kTooLarge, "over the limit of 20 MiB"},
  };
  for (const Refusal& c : cases) {
    CAPTURE(c.what);
    const Result<ImageScan> scan = DecodeImage(c.bytes);
    REQUIRE_FALSE(scan.ok());
    CHECK(scan.status().code() == c.code);
    CHECK_MESSAGE(scan.status().message().find(c.says) != std::string::npos,
                  scan.status().message());
  }
}

TEST_CASE("the limits' own values are accepted") {
  const std::string png = Png(QrImage(kUrl));
  // 10,000 x 5,000 is exactly 50 MP: past the size check, then refused for its missing
  // pixel data, not for its size.
  const Result<ImageScan> at_limit = DecodeImage(WithPngSize(png, 10000, 5000));
  REQUIRE_FALSE(at_limit.ok());
  CHECK(at_limit.status().code() == StatusCode::kInvalid);
  CHECK(at_limit.status().message().find("corrupt PNG") != std::string::npos);
  // A file of exactly 20 MiB: trailing bytes after IEND are no concern of the decoder.
  const std::string padded = png + std::string(kMaxImageFileBytes - png.size(), '\0');
  CHECK(FirstText(DecodeImage(padded)) == kUrl);
}

TEST_CASE("DecodeImageFile reads the file, and names it in errors") {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("pingma-image-test-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string good = (dir / "label.png").string();
  std::ofstream(good, std::ios::binary) << Png(QrImage(kUrl));
  CHECK(FirstText(DecodeImageFile(good)) == kUrl);

  const std::string empty = (dir / "empty.jpg").string();
  std::ofstream(empty, std::ios::binary).flush();
  const Result<ImageScan> e = DecodeImageFile(empty);
  REQUIRE_FALSE(e.ok());
  CHECK(e.status().message() == empty + ": the file is empty (0 bytes)");

  const Result<ImageScan> missing = DecodeImageFile((dir / "missing.png").string());
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == StatusCode::kNotFound);

  const Result<ImageScan> folder = DecodeImageFile(dir.string());
  REQUIRE_FALSE(folder.ok());
  CHECK(folder.status().code() == StatusCode::kIoError);

  const std::string big = (dir / "big.jpg").string();
  {
    std::ofstream out(big, std::ios::binary);
    out.seekp(static_cast<std::streamoff>(kMaxImageFileBytes));
    out.put('\0');  // a sparse file one byte over the limit
  }
  const Result<ImageScan> huge = DecodeImageFile(big);
  REQUIRE_FALSE(huge.ok());
  CHECK(huge.status().code() == StatusCode::kTooLarge);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pingma
