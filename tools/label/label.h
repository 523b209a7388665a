// Cylinder QR labels (一瓶一码 标签): what a label says and how it is drawn.
//
// A label is a QR symbol carrying `{base}/c/{code}` (the public page, API.md "Public
// page") with the code, the model and the owner printed under it. Validation
// (MakeLabelContent, NormaliseBase, ParseLabelCsv) is pure; the Render* functions
// draw with cairo and write their output atomically (a temporary file in the same
// folder, renamed into place), so a failure leaves no half-written file behind.
// Every function here is safe to call from any thread on distinct outputs.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "pingma/common/status.h"

namespace pingma::label {

/// The base used when none is given.
inline constexpr std::string_view kDefaultBase = "https://pingma.example/";

/// One label's text, validated: `code` normalised (NormaliseCode), `model` one of
/// DOMAIN.md's models, `owner` trimmed, non-empty, valid UTF-8, no control characters.
struct LabelContent {
  std::string code;
  std::string model;
  std::string owner;
};

/// Validates one label's fields; kInvalid with a message naming the field otherwise.
Result<LabelContent> MakeLabelContent(std::string_view code, std::string_view model,
                                      std::string_view owner);

/// An http(s) URL with a host, without query or fragment, at most 200 characters;
/// returned without its trailing '/'s so that SymbolText puts exactly one '/' before
/// "c/". kInvalid otherwise.
Result<std::string> NormaliseBase(std::string_view base);

/// The text the symbol carries: `{base}/c/{code}`, `base` as NormaliseBase gave it.
std::string SymbolText(std::string_view base, const LabelContent& label);

/// Limits on a label CSV, so that a wrong file fails with a message instead of
/// running out of memory or paper.
struct CsvLimits {
  std::size_t max_bytes = std::size_t{64} << 20;
  std::size_t max_rows = 100000;
};

/// Parses a label CSV (RFC 4180: quoted fields with commas, doubled quotes and line
/// breaks; CRLF or LF; UTF-8 with or without BOM; blank lines skipped; an optional
/// header row `code,model,owner`), one row per label with exactly three fields, and
/// validates every row with MakeLabelContent. A code given twice is refused. Errors
/// name the line the row starts on: "line 17: unknown model \"YSP99\" ...".
/// kInvalid for bad content, kTooLarge over the limits.
Result<std::vector<LabelContent>> ParseLabelCsv(std::string_view text,
                                                const CsvLimits& limits = {});

/// Reads `path` (refusing files over limits.max_bytes before reading them) and
/// parses it with ParseLabelCsv. kNotFound or kIoError when it cannot be read.
Result<std::vector<LabelContent>> ReadLabelCsv(const std::string& path,
                                               const CsvLimits& limits = {});

/// The single-label file formats.
enum class LabelFormat { kSvg, kPng };

/// What RenderLabel drew.
struct RenderedLabel {
  int modules = 0;  ///< the symbol's side in modules (21 for version 1, +4 a version)
  int width = 0;    ///< the label's size: pixels for PNG, CSS px for SVG
  int height = 0;
};

/// Smallest and largest module size accepted by RenderLabel and RenderLabelDirectory.
inline constexpr int kMinModulePx = 2;
inline constexpr int kMaxModulePx = 40;

/// Draws one label to `path` as SVG or PNG, one module `module_px` pixels wide. The
/// symbol is at whole pixels with 4 modules of white on every side. kInvalid when the
/// text cannot be encoded or the font lacks a glyph of it; kIoError when the file
/// cannot be written.
Result<RenderedLabel> RenderLabel(const LabelContent& label, std::string_view base,
                                  LabelFormat format, int module_px, const std::string& path);

/// What RenderSheet wrote.
struct SheetSummary {
  int labels = 0;
  int pages = 0;
  double module_mm = 0;  ///< printed module size, the same for every label of the sheet
};

/// Draws `labels` on A4 pages to the PDF `path`: a grid of labels, each in a cell
/// outlined by a light cut line with a cut margin around the label, as many pages as
/// needed. Nothing is written unless every label could be drawn.
Result<SheetSummary> RenderSheet(const std::vector<LabelContent>& labels, std::string_view base,
                                 const std::string& path);

/// Writes one PNG per label, named CODE.png, into `dir` (created when missing, its
/// parent must exist). All files are drawn to temporary names first and renamed into
/// place only when every one of them was written. Returns how many were written.
Result<int> RenderLabelDirectory(const std::vector<LabelContent>& labels, std::string_view base,
                                 int module_px, const std::string& dir);

}  // namespace pingma::label
