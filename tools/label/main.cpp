// pingma-label: prints a cylinder's QR label (一瓶一码 标签), one to SVG or PNG, or a
// batch from a CSV to an A4 PDF sheet or a folder of PNGs.
#include <cairo.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include <CLI/CLI.hpp>

#include "pingma/common/command_line.h"

#include "label.h"

namespace {

constexpr const char* kProgram = "pingma-label";

int Usage(const std::string& message) {
  std::fprintf(stderr, "%s: %s (see --help)\n", kProgram, message.c_str());
  return 2;
}

int Fail(const pingma::Status& status) {
  std::fprintf(stderr, "%s: %s\n", kProgram, status.message().c_str());
  return 1;
}

// The extension of the last path component, lower-cased, without the dot.
std::string Extension(const std::string& path) {
  const auto slash = path.find_last_of('/');
  const auto dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string ext = path.substr(dot + 1);
  for (char& c : ext) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return ext;
}

}  // namespace

int main(int argc, char** argv) {
  // Frees cairo's process-wide caches (font faces, PDF and SVG state) at exit, after
  // every surface is gone, so that a leak checker sees only what we failed to free.
  std::atexit([] { cairo_debug_reset_static_data(); });
  namespace label = pingma::label;
  CLI::App app{
      "pingma-label: prints cylinder QR labels (一瓶一码 气瓶标签). The symbol carries "
      "{base}/c/{code}, the public page of the cylinder; the code, model and owner are "
      "printed under it."};
  app.footer(
      "Usage:\n"
      "  pingma-label --code CODE --model MODEL --owner NAME [--base URL] "
      "--out FILE.svg|FILE.png [--module-px N]\n"
      "  pingma-label --csv FILE --out DIR|FILE.pdf [--base URL] [--module-px N (DIR only)]\n"
      "The CSV has one row per label: code,model,owner (RFC 4180, UTF-8, optional header "
      "row). Every row is checked before anything is written.\n"
      "Exit status: 0 written; 2 bad usage (options, or a bad --code/--model/--owner/--base); "
      "1 failure (a bad CSV row, a file that cannot be read or written).");

  std::string code, model, owner, csv, out;
  std::string base(label::kDefaultBase);
  int module_px = 8;
  auto* code_opt = app.add_option("--code", code, "cylinder code, e.g. HB0100000123");
  auto* model_opt =
      app.add_option("--model", model, "YSP4.7, YSP12, YSP26.2, YSP35.5, YSP118 or YSP118-II");
  auto* owner_opt = app.add_option("--owner", owner, "owner company (产权单位), UTF-8");
  auto* csv_opt = app.add_option("--csv", csv, "CSV of labels: code,model,owner");
  csv_opt->excludes(code_opt)->excludes(model_opt)->excludes(owner_opt);
  app.add_option("--base", base, "public page base URL")->capture_default_str();
  app.add_option("--out", out,
                 "FILE.svg or FILE.png; with --csv, FILE.pdf (an A4 sheet) or a directory "
                 "(one CODE.png per label)")
      ->required();
  auto* module_opt =
      app.add_option("--module-px", module_px, "size of one QR module in pixels (PNG, SVG)")
          ->check(CLI::Range(label::kMinModulePx, label::kMaxModulePx))
          ->capture_default_str();

  if (auto done = pingma::ParseCommandLine(app, kProgram, argc, argv)) return *done;

  auto normalised_base = label::NormaliseBase(base);
  if (!normalised_base.ok()) return Usage(normalised_base.status().message());
  const std::string ext = Extension(out);

  if (csv_opt->count() == 0) {
    if (code_opt->count() == 0 || model_opt->count() == 0 || owner_opt->count() == 0) {
      return Usage("--code, --model and --owner are all needed (or --csv for a batch)");
    }
    label::LabelFormat format;
    if (ext == "svg") {
      format = label::LabelFormat::kSvg;
    } else if (ext == "png") {
      format = label::LabelFormat::kPng;
    } else {
      return Usage(
          "--out must be FILE.svg or FILE.png (a FILE.pdf sheet or a directory "
          "needs --csv), not \"" +
          out + "\"");
    }
    auto content = label::MakeLabelContent(code, model, owner);
    if (!content.ok()) return Usage(content.status().message());
    auto drawn = label::RenderLabel(*content, *normalised_base, format, module_px, out);
    if (!drawn.ok()) return Fail(drawn.status());
    std::printf("wrote %s: label of %s, QR version %d (%dx%d modules, level H), %dx%d px\n",
                out.c_str(), content->code.c_str(), (drawn->modules - 17) / 4, drawn->modules,
                drawn->modules, drawn->width, drawn->height);
    return 0;
  }

  if (ext == "svg" || ext == "png") {
    return Usage("with --csv, --out is a directory or FILE.pdf, not \"" + out + "\"");
  }
  const bool pdf = ext == "pdf";
  if (pdf && module_opt->count() > 0) {
    return Usage("--module-px does not apply to a PDF sheet (its module size fits the grid)");
  }
  auto labels = label::ReadLabelCsv(csv);
  if (!labels.ok()) return Fail(labels.status());
  if (pdf) {
    auto sheet = label::RenderSheet(*labels, *normalised_base, out);
    if (!sheet.ok()) return Fail(sheet.status());
    std::printf("wrote %s: %d labels on %d pages (module %.2f mm)\n", out.c_str(), sheet->labels,
                sheet->pages, sheet->module_mm);
    return 0;
  }
  auto written = label::RenderLabelDirectory(*labels, *normalised_base, module_px, out);
  if (!written.ok()) return Fail(written.status());
  std::printf("wrote %d labels to %s (one CODE.png each)\n", *written, out.c_str());
  return 0;
}
