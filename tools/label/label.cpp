// Drawing labels with cairo and writing them atomically: SVG, PNG and A4 PDF sheets.
#include "label.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#define ZX_USE_UTF8
#include <ZXing/BarcodeFormat.h>
#include <ZXing/BitMatrix.h>
#include <ZXing/MultiFormatWriter.h>
#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>
#include <fmt/format.h>

namespace pingma::label {
namespace {

// ---------------------------------------------------------------------------
// Files

// strerror_r comes in a GNU flavour (returns the text) and an XSI one (fills buf);
// these two overloads take whichever this libc has.
[[maybe_unused]] const char* ErrnoPick(int rc, const char* buf) {
  return rc == 0 ? buf : "?";
}
[[maybe_unused]] const char* ErrnoPick(const char* text, const char*) {
  return text;
}

std::string ErrnoText(int err) {
  char buf[256] = {};
  return ErrnoPick(strerror_r(err, buf, sizeof buf), buf);
}

std::string DirName(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string BaseName(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// A file written under a temporary name in its final folder and renamed into place
// by Publish, so readers see the whole file or none. Until Publish the temporary file
// is removed on destruction. Owns its descriptor; not thread-safe (one writer).
class AtomicFile {
 public:
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!published_ && !temp_.empty()) ::unlink(temp_.c_str());
  }

  static Result<std::unique_ptr<AtomicFile>> Create(const std::string& path) {
    static std::atomic<unsigned> counter{0};
    std::unique_ptr<AtomicFile> f(new AtomicFile(path));
    const std::string prefix = DirName(path) + "/." + BaseName(path) + ".tmp-";
    for (int attempt = 0; attempt < 100; ++attempt) {
      std::string temp = fmt::format("{}{}-{}", prefix, ::getpid(), counter++);
      // 0666 less the umask: the label gets the mode any new file would get.
      const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd >= 0) {
        f->fd_ = fd;
        f->temp_ = std::move(temp);
        return f;
      }
      if (errno != EEXIST) {
        return Status::IoError(fmt::format("cannot write {}: {}", path, ErrnoText(errno)));
      }
    }
    return Status::IoError(fmt::format("cannot write {}: no free temporary name", path));
  }

  // A cairo_write_func_t; `closure` is the AtomicFile.
  static cairo_status_t Write(void* closure, const unsigned char* data, unsigned int length) {
    auto* self = static_cast<AtomicFile*>(closure);
    while (length > 0) {
      const ssize_t n = ::write(self->fd_, data, length);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (self->error_ == 0) self->error_ = errno;
        return CAIRO_STATUS_WRITE_ERROR;
      }
      data += n;
      length -= static_cast<unsigned int>(n);
    }
    return CAIRO_STATUS_SUCCESS;
  }

  // Flushes the data to disk and closes the descriptor; the file keeps its
  // temporary name until Publish.
  Status Finish() {
    if (error_ == 0 && ::fsync(fd_) != 0) error_ = errno;
    if (::close(fd_) != 0 && error_ == 0) error_ = errno;
    fd_ = -1;
    if (error_ != 0) {
      return Status::IoError(fmt::format("cannot write {}: {}", path_, ErrnoText(error_)));
    }
    return Status::Ok();
  }

  Status Publish() {
    if (::rename(temp_.c_str(), path_.c_str()) != 0) {
      return Status::IoError(fmt::format("cannot write {}: {}", path_, ErrnoText(errno)));
    }
    published_ = true;
    return Status::Ok();
  }

  // The write error the stream met, if any, to name instead of cairo's generic one.
  int error() const { return error_; }
  const std::string& path() const { return path_; }

 private:
  explicit AtomicFile(std::string path) : path_(std::move(path)) {}

  std::string path_;
  std::string temp_;
  int fd_ = -1;
  int error_ = 0;
  bool published_ = false;
};

// Closes a descriptor at the end of its scope. Owns `fd`; not thread-safe.
struct FdCloser {
  explicit FdCloser(int f) : fd(f) {}
  int fd;
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  ~FdCloser() { ::close(fd); }
};

// Makes the renames of a folder durable; best effort, as the files themselves are.
void SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

// ---------------------------------------------------------------------------
// cairo handles

struct SurfaceDeleter {
  void operator()(cairo_surface_t* s) const { cairo_surface_destroy(s); }
};
struct ContextDeleter {
  void operator()(cairo_t* cr) const { cairo_destroy(cr); }
};
using SurfacePtr = std::unique_ptr<cairo_surface_t, SurfaceDeleter>;
using ContextPtr = std::unique_ptr<cairo_t, ContextDeleter>;

Status CairoError(cairo_status_t status, std::string_view what) {
  if (status == CAIRO_STATUS_SUCCESS) return Status::Ok();
  return Status::IoError(fmt::format("{}: {}", what, cairo_status_to_string(status)));
}

// The status of a surface written through an AtomicFile: the errno of a failed write
// says more than cairo's "error while writing to output stream".
Status SurfaceError(cairo_surface_t* surface, const AtomicFile& file) {
  const cairo_status_t status = cairo_surface_status(surface);
  if (status == CAIRO_STATUS_SUCCESS) return Status::Ok();
  if (file.error() != 0) {
    return Status::IoError(
        fmt::format("cannot write {}: {}", file.path(), ErrnoText(file.error())));
  }
  return CairoError(status, fmt::format("cannot draw {}", file.path()));
}

// A context on `surface` with hinting off, so text measured at one scale keeps its
// proportions at another (the sheet measures at one module = 1 and draws at ~2.6 pt).
Result<ContextPtr> MakeContext(cairo_surface_t* surface) {
  ContextPtr cr(cairo_create(surface));
  PINGMA_RETURN_IF_ERROR(CairoError(cairo_status(cr.get()), "cannot draw"));
  cairo_font_options_t* options = cairo_font_options_create();
  cairo_font_options_set_hint_metrics(options, CAIRO_HINT_METRICS_OFF);
  cairo_font_options_set_hint_style(options, CAIRO_HINT_STYLE_NONE);
  cairo_set_font_options(cr.get(), options);
  cairo_font_options_destroy(options);
  return cr;
}

// ---------------------------------------------------------------------------
// The symbol

// Error correction level H (30% of the codewords may be lost): a label on a cylinder
// is scratched, dented, painted over and dirty for years, and the URL is short, so the
// larger symbol costs little (a 37-character URL is version 5, 37x37 modules).
constexpr int kEccLevelH = 8;

Result<ZXing::BitMatrix> EncodeSymbol(const std::string& text) {
  try {
    ZXing::BitMatrix m = ZXing::MultiFormatWriter(ZXing::BarcodeFormat::QRCode)
                             .setEccLevel(kEccLevelH)
                             .setMargin(0)  // the quiet zone is drawn here, in modules
                             .encode(text, 0, 0);
    if (m.width() != m.height() || m.width() < 21 || m.width() > 177) {
      return Status::Internal(
          fmt::format("the QR encoder gave a {}x{} matrix", m.width(), m.height()));
    }
    return m;
  } catch (const std::exception& e) {
    return Status::Invalid(fmt::format("cannot encode \"{}\" as a QR symbol: {}", text, e.what()));
  }
}

// Adds one rectangle per horizontal run of dark modules: few path elements, and no
// seams between neighbouring modules of a row.
void AddModules(cairo_t* cr, const ZXing::BitMatrix& m, double x0, double y0, double unit) {
  for (int y = 0; y < m.height(); ++y) {
    int x = 0;
    while (x < m.width()) {
      if (!m.get(x, y)) {
        ++x;
        continue;
      }
      const int start = x;
      while (x < m.width() && m.get(x, y)) ++x;
      cairo_rectangle(cr, x0 + start * unit, y0 + y * unit, (x - start) * unit, unit);
    }
  }
}

// ---------------------------------------------------------------------------
// Text

// Both faces come from Debian's fonts-noto-cjk: the code in the monospaced face, so
// that 0/O and 1/I stay apart and codes line up; everything else in the sans face,
// which has the Chinese glyphs.
constexpr const char* kSansFamily = "Noto Sans CJK SC";
constexpr const char* kMonoFamily = "Noto Sans Mono CJK SC";
constexpr const char* kTitle = "一瓶一码 扫码查验 Scan to verify";

// Code points of valid UTF-8 (checked by MakeLabelContent), one string each.
std::vector<std::string> SplitCodePoints(const std::string& s) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const std::size_t len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    out.push_back(s.substr(i, len));
    i += len;
  }
  return out;
}

// The code point of one valid UTF-8 sequence, for messages.
std::uint32_t CodePoint(const std::string& ch) {
  if (ch.empty()) return 0;
  const auto b0 = static_cast<unsigned char>(ch[0]);
  if (ch.size() == 1) return b0;
  std::uint32_t cp = b0 & (0x7Fu >> ch.size());
  for (std::size_t i = 1; i < ch.size(); ++i) {
    cp = (cp << 6) | (static_cast<unsigned char>(ch[i]) & 0x3Fu);
  }
  return cp;
}

// The selected font must have a glyph for every character: fontconfig silently
// substitutes a font without Chinese when the CJK font is missing, and a label
// printed with empty boxes would go on thousands of cylinders.
Status CheckGlyphs(cairo_t* cr, const std::string& text, const char* family) {
  cairo_glyph_t* glyphs = nullptr;
  int count = 0;
  const cairo_status_t status = cairo_scaled_font_text_to_glyphs(
      cairo_get_scaled_font(cr), 0, 0, text.c_str(), static_cast<int>(text.size()), &glyphs, &count,
      nullptr, nullptr, nullptr);
  PINGMA_RETURN_IF_ERROR(CairoError(status, fmt::format("cannot lay out \"{}\"", text)));
  const std::vector<std::string> chars = SplitCodePoints(text);
  Status result;
  for (int i = 0; i < count; ++i) {
    if (glyphs[i].index != 0) continue;
    const std::string ch = static_cast<std::size_t>(count) == chars.size()
                               ? chars[static_cast<std::size_t>(i)]
                               : std::string("?");
    result = Status::Invalid(
        fmt::format("the font \"{}\" has no glyph for U+{:04X} \"{}\" in \"{}\" (is "
                    "fonts-noto-cjk installed?)",
                    family, CodePoint(ch), ch, text));
    break;
  }
  cairo_glyph_free(glyphs);
  return result;
}

// One line of text, placed: baseline `y`, left edge `x`.
struct TextLine {
  std::string text;
  const char* family = kSansFamily;
  cairo_font_weight_t weight = CAIRO_FONT_WEIGHT_NORMAL;
  double size = 0;
  double x = 0;
  double y = 0;
};

// Line boxes are 1.3 em with the baseline 0.95 em down: room for the Chinese glyphs
// (about 0.88 em above the baseline) and Latin descenders, whatever the text is, so
// that labels of one sheet have the same height.
constexpr double kLineBox = 1.3;
constexpr double kBaseline = 0.95;

// Sets the font of `line`, shrinks it to fit `avail` wide, centres it in [0, width]
// and puts its baseline in the box starting at `top`. Returns the box's bottom.
Result<double> PlaceLine(cairo_t* cr, TextLine& line, double width, double avail, double top) {
  cairo_select_font_face(cr, line.family, CAIRO_FONT_SLANT_NORMAL, line.weight);
  cairo_set_font_size(cr, line.size);
  PINGMA_RETURN_IF_ERROR(CheckGlyphs(cr, line.text, line.family));
  cairo_text_extents_t ext;
  cairo_text_extents(cr, line.text.c_str(), &ext);
  if (ext.x_advance > avail) {
    line.size *= avail / ext.x_advance;
    cairo_set_font_size(cr, line.size);
    cairo_text_extents(cr, line.text.c_str(), &ext);
  }
  PINGMA_RETURN_IF_ERROR(CairoError(cairo_status(cr), "cannot measure text"));
  line.x = (width - ext.x_advance) / 2;
  line.y = top + kBaseline * line.size;
  return top + kLineBox * line.size;
}

// ---------------------------------------------------------------------------
// Layout

// Where everything of one label goes, in the drawing's units (pixels for PNG, CSS px
// for SVG, points on a sheet), the label's top left corner at (0, 0).
struct LabelLayout {
  double unit = 1;  // one module
  double width = 0;
  double height = 0;
  double symbol_x = 0;
  double symbol_y = 0;
  std::vector<TextLine> lines;
};

constexpr int kQuietModules = 4;  // ISO/IEC 18004's minimum quiet zone

// Top to bottom, in modules: 1 padding, the title (1.7), 4 quiet, the symbol, 4 quiet,
// the code (4), the model (2.2), the owner (2.4), 1 padding. The label is as wide as
// the symbol and its quiet zones; text is shrunk to fit with one module each side.
// `snap` rounds the symbol's position and the label's size to whole units, so that a
// PNG's modules are whole pixels.
Result<LabelLayout> LayOut(cairo_t* cr, const LabelContent& label, int modules, double unit,
                           bool snap) {
  LabelLayout l;
  l.unit = unit;
  l.width = (modules + 2 * kQuietModules) * unit;
  const double avail = l.width - 2 * unit;
  auto round = [snap](double v) { return snap ? std::ceil(v) : v; };

  double y = 1.0 * unit;
  TextLine title{kTitle, kSansFamily, CAIRO_FONT_WEIGHT_BOLD, 1.7 * unit};
  PINGMA_ASSIGN_OR_RETURN(auto bottom, PlaceLine(cr, title, l.width, avail, y));
  l.lines.push_back(title);
  y = round(bottom);

  l.symbol_x = kQuietModules * unit;
  l.symbol_y = y + kQuietModules * unit;
  y = l.symbol_y + (modules + kQuietModules) * unit;

  TextLine code{label.code, kMonoFamily, CAIRO_FONT_WEIGHT_BOLD, 4.0 * unit};
  TextLine model{label.model, kSansFamily, CAIRO_FONT_WEIGHT_NORMAL, 2.2 * unit};
  TextLine owner{label.owner, kSansFamily, CAIRO_FONT_WEIGHT_NORMAL, 2.4 * unit};
  for (TextLine* line : {&code, &model, &owner}) {
    PINGMA_ASSIGN_OR_RETURN(y, PlaceLine(cr, *line, l.width, avail, y));
    l.lines.push_back(*line);
  }
  l.height = round(y + 1.0 * unit);
  return l;
}

// Draws a laid-out label with its top left corner at the current origin.
void DrawLabel(cairo_t* cr, const LabelLayout& l, const ZXing::BitMatrix& symbol) {
  cairo_set_source_rgb(cr, 1, 1, 1);  // white everywhere, the quiet zone included
  cairo_rectangle(cr, 0, 0, l.width, l.height);
  cairo_fill(cr);

  cairo_set_source_rgb(cr, 0, 0, 0);
  AddModules(cr, symbol, l.symbol_x, l.symbol_y, l.unit);
  cairo_fill(cr);

  for (const TextLine& line : l.lines) {
    cairo_select_font_face(cr, line.family, CAIRO_FONT_SLANT_NORMAL, line.weight);
    cairo_set_font_size(cr, line.size);
    cairo_move_to(cr, line.x, line.y);
    cairo_show_text(cr, line.text.c_str());
  }
}

// A 1x1 surface to measure text on before the real surface's size is known. Owns the
// surface and its context; used by one thread.
struct Scratch {
  SurfacePtr surface;
  ContextPtr cr;
};

Result<Scratch> MakeScratch() {
  Scratch s;
  s.surface.reset(cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1));
  PINGMA_RETURN_IF_ERROR(CairoError(cairo_surface_status(s.surface.get()), "cannot draw"));
  PINGMA_ASSIGN_OR_RETURN(s.cr, MakeContext(s.surface.get()));
  return s;
}

// Draws one label into `file` (not yet published).
Result<RenderedLabel> DrawLabelTo(const LabelContent& label, std::string_view base,
                                  LabelFormat format, int module_px, AtomicFile& file) {
  if (module_px < kMinModulePx || module_px > kMaxModulePx) {
    return Status::Invalid(
        fmt::format("module size {} is outside {}..{}", module_px, kMinModulePx, kMaxModulePx));
  }
  PINGMA_ASSIGN_OR_RETURN(auto symbol, EncodeSymbol(SymbolText(base, label)));
  PINGMA_ASSIGN_OR_RETURN(auto scratch, MakeScratch());
  PINGMA_ASSIGN_OR_RETURN(
      auto layout, LayOut(scratch.cr.get(), label, symbol.width(), module_px, /*snap=*/true));

  RenderedLabel out;
  out.modules = symbol.width();
  out.width = static_cast<int>(layout.width);
  out.height = static_cast<int>(layout.height);

  SurfacePtr surface;
  if (format == LabelFormat::kPng) {
    surface.reset(cairo_image_surface_create(CAIRO_FORMAT_RGB24, out.width, out.height));
  } else {
    surface.reset(cairo_svg_surface_create_for_stream(&AtomicFile::Write, &file, layout.width,
                                                      layout.height));
    // CSS px, so that the SVG shows at the size of the PNG with the same --module-px.
    cairo_svg_surface_set_document_unit(surface.get(), CAIRO_SVG_UNIT_PX);
  }
  PINGMA_RETURN_IF_ERROR(SurfaceError(surface.get(), file));
  {
    PINGMA_ASSIGN_OR_RETURN(auto cr, MakeContext(surface.get()));
    DrawLabel(cr.get(), layout, symbol);
    PINGMA_RETURN_IF_ERROR(CairoError(cairo_status(cr.get()), "cannot draw the label"));
  }
  if (format == LabelFormat::kPng) {
    cairo_surface_flush(surface.get());
    const cairo_status_t status =
        cairo_surface_write_to_png_stream(surface.get(), &AtomicFile::Write, &file);
    if (status != CAIRO_STATUS_SUCCESS && file.error() == 0) {
      return CairoError(status, fmt::format("cannot write {}", file.path()));
    }
  }
  cairo_surface_finish(surface.get());
  PINGMA_RETURN_IF_ERROR(SurfaceError(surface.get(), file));
  PINGMA_RETURN_IF_ERROR(file.Finish());
  return out;
}

// ---------------------------------------------------------------------------
// Sheets: A4 in points, a grid of 4 x 4 cells.

constexpr double kMm = 72.0 / 25.4;
constexpr double kPageWidth = 210 * kMm;
constexpr double kPageHeight = 297 * kMm;
constexpr double kPageMargin = 10 * kMm;
constexpr double kFooter = 6 * kMm;     // room for the page number under the grid
constexpr double kCutMargin = 3 * kMm;  // white between a label and its cut line
constexpr int kColumns = 4;
constexpr int kRows = 4;
constexpr int kPerPage = kColumns * kRows;

}  // namespace

Result<RenderedLabel> RenderLabel(const LabelContent& label, std::string_view base,
                                  LabelFormat format, int module_px, const std::string& path) {
  PINGMA_ASSIGN_OR_RETURN(auto file, AtomicFile::Create(path));
  PINGMA_ASSIGN_OR_RETURN(auto out, DrawLabelTo(label, base, format, module_px, *file));
  PINGMA_RETURN_IF_ERROR(file->Publish());
  SyncDirectory(DirName(path));
  return out;
}

Result<SheetSummary> RenderSheet(const std::vector<LabelContent>& labels, std::string_view base,
                                 const std::string& path) {
  if (labels.empty()) return Status::Invalid("no labels to draw");
  // Everything that can fail on the content fails here, before the file is made.
  std::vector<ZXing::BitMatrix> symbols;
  symbols.reserve(labels.size());
  PINGMA_ASSIGN_OR_RETURN(auto scratch, MakeScratch());
  double widest = 0;
  double tallest = 0;
  for (const LabelContent& label : labels) {
    PINGMA_ASSIGN_OR_RETURN(auto symbol, EncodeSymbol(SymbolText(base, label)));
    PINGMA_ASSIGN_OR_RETURN(auto layout,
                            LayOut(scratch.cr.get(), label, symbol.width(), 1.0, /*snap=*/false));
    widest = std::max(widest, layout.width);
    tallest = std::max(tallest, layout.height);
    symbols.push_back(std::move(symbol));
  }
  // One module size for the whole sheet, the largest at which every label fits its
  // cell: labels of one batch print alike.
  const double cell_w = (kPageWidth - 2 * kPageMargin) / kColumns;
  const double cell_h = (kPageHeight - 2 * kPageMargin - kFooter) / kRows;
  const double unit =
      std::min((cell_w - 2 * kCutMargin) / widest, (cell_h - 2 * kCutMargin) / tallest);

  PINGMA_ASSIGN_OR_RETURN(auto file, AtomicFile::Create(path));
  SurfacePtr surface(
      cairo_pdf_surface_create_for_stream(&AtomicFile::Write, file.get(), kPageWidth, kPageHeight));
  PINGMA_RETURN_IF_ERROR(SurfaceError(surface.get(), *file));
  cairo_pdf_surface_set_metadata(surface.get(), CAIRO_PDF_METADATA_TITLE,
                                 "pingma cylinder labels (瓶码 气瓶标签)");
  cairo_pdf_surface_set_metadata(surface.get(), CAIRO_PDF_METADATA_CREATOR, "pingma-label");
  PINGMA_ASSIGN_OR_RETURN(auto cr_owner, MakeContext(surface.get()));
  cairo_t* cr = cr_owner.get();

  SheetSummary summary;
  summary.labels = static_cast<int>(labels.size());
  summary.pages = (summary.labels + kPerPage - 1) / kPerPage;
  summary.module_mm = unit / kMm;
  for (int page = 0; page < summary.pages; ++page) {
    const int first = page * kPerPage;
    const int count = std::min(kPerPage, summary.labels - first);
    for (int k = 0; k < count; ++k) {
      const auto i = static_cast<std::size_t>(first + k);
      PINGMA_ASSIGN_OR_RETURN(auto layout,
                              LayOut(cr, labels[i], symbols[i].width(), unit, /*snap=*/false));
      const double cell_x = kPageMargin + (k % kColumns) * cell_w;
      const double cell_y = kPageMargin + (k / kColumns) * cell_h;
      // The cut line: light grey, so it guides scissors without reading as part of
      // the label.
      cairo_set_source_rgb(cr, 0.75, 0.75, 0.75);
      cairo_set_line_width(cr, 0.3);
      cairo_rectangle(cr, cell_x, cell_y, cell_w, cell_h);
      cairo_stroke(cr);
      cairo_save(cr);
      cairo_translate(cr, cell_x + (cell_w - layout.width) / 2,
                      cell_y + (cell_h - layout.height) / 2);
      DrawLabel(cr, layout, symbols[i]);
      cairo_restore(cr);
    }
    TextLine footer{fmt::format("瓶码 pingma · 第 {0}/{1} 页 · page {0} of {1} · module {2:.2f} mm",
                                page + 1, summary.pages, summary.module_mm),
                    kSansFamily, CAIRO_FONT_WEIGHT_NORMAL, 7};
    PINGMA_RETURN_IF_ERROR(PlaceLine(cr, footer, kPageWidth, kPageWidth - 2 * kPageMargin,
                                     kPageHeight - kPageMargin - kFooter + 2 * kMm)
                               .status());
    cairo_set_source_rgb(cr, 0.4, 0.4, 0.4);
    cairo_move_to(cr, footer.x, footer.y);
    cairo_show_text(cr, footer.text.c_str());
    cairo_show_page(cr);
    PINGMA_RETURN_IF_ERROR(CairoError(cairo_status(cr), "cannot draw the sheet"));
  }
  cr_owner.reset();
  cairo_surface_finish(surface.get());
  PINGMA_RETURN_IF_ERROR(SurfaceError(surface.get(), *file));
  PINGMA_RETURN_IF_ERROR(file->Finish());
  PINGMA_RETURN_IF_ERROR(file->Publish());
  SyncDirectory(DirName(path));
  return summary;
}

Result<int> RenderLabelDirectory(const std::vector<LabelContent>& labels, std::string_view base,
                                 int module_px, const std::string& dir) {
  struct stat st {};
  bool created = false;
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      return Status::IoError(fmt::format("{} exists and is not a directory", dir));
    }
  } else if (errno == ENOENT) {
    if (::mkdir(dir.c_str(), 0777) != 0) {
      return Status::IoError(fmt::format("cannot create directory {}: {}", dir, ErrnoText(errno)));
    }
    created = true;
  } else {
    return Status::IoError(fmt::format("cannot use directory {}: {}", dir, ErrnoText(errno)));
  }

  // Every file is drawn and closed under its temporary name first; a failure drops
  // them all (the AtomicFiles' destructors) and the folder if this run made it.
  std::vector<std::unique_ptr<AtomicFile>> files;
  files.reserve(labels.size());
  Status failed;
  for (const LabelContent& label : labels) {
    auto file = AtomicFile::Create(dir + "/" + label.code + ".png");
    if (!file.ok()) {
      failed = file.status();
      break;
    }
    auto drawn = DrawLabelTo(label, base, LabelFormat::kPng, module_px, **file);
    if (!drawn.ok()) {
      failed = drawn.status();
      break;
    }
    files.push_back(std::move(*file));
  }
  if (!failed.ok()) {
    files.clear();
    if (created) ::rmdir(dir.c_str());
    return failed;
  }
  // A rename cannot replace a folder: find one before the first rename, so that this
  // failure, too, leaves the folder as it was.
  for (const auto& file : files) {
    struct stat target {};
    if (::stat(file->path().c_str(), &target) == 0 && S_ISDIR(target.st_mode)) {
      return Status::IoError(fmt::format("cannot write {}: it is a directory", file->path()));
    }
  }
  for (auto& file : files) PINGMA_RETURN_IF_ERROR(file->Publish());
  SyncDirectory(dir);
  return static_cast<int>(files.size());
}

Result<std::vector<LabelContent>> ReadLabelCsv(const std::string& path, const CsvLimits& limits) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    const std::string message = fmt::format("cannot read {}: {}", path, ErrnoText(err));
    return err == ENOENT ? Status::NotFound(message) : Status::IoError(message);
  }
  const FdCloser closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return Status::IoError(fmt::format("cannot read {}: {}", path, ErrnoText(errno)));
  }
  if (S_ISDIR(st.st_mode)) return Status::IoError(fmt::format("{} is a directory", path));
  if (S_ISREG(st.st_mode) && static_cast<std::size_t>(st.st_size) > limits.max_bytes) {
    return Status::TooLarge(fmt::format("{} is {} bytes, over the limit of {} MiB", path,
                                        st.st_size, limits.max_bytes >> 20));
  }
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IoError(fmt::format("cannot read {}: {}", path, ErrnoText(errno)));
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    // A pipe or device has no size to check up front.
    if (text.size() > limits.max_bytes) {
      return Status::TooLarge(
          fmt::format("{} is over the limit of {} MiB", path, limits.max_bytes >> 20));
    }
  }
  return ParseLabelCsv(text, limits);
}

}  // namespace pingma::label
