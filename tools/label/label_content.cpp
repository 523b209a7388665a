// What a label says: field validation, the symbol's URL and the label CSV. Pure
// functions, no I/O.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "label.h"
#include "pingma/common/policy.h"
#include "pingma/scanner/scan.h"

namespace pingma::label {
namespace {

// Long enough for any company name; longer text would shrink to an unreadable size.
constexpr std::size_t kMaxOwnerChars = 64;
constexpr std::size_t kMaxBaseChars = 200;

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

std::string AsciiUpper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Counts the code points of well-formed UTF-8 (no overlong forms, no surrogates);
// -1 when `s` is not UTF-8. cairo refuses to draw malformed text, so it is refused here,
// where the message can still name the row.
long CountUtf8(std::string_view s) {
  long count = 0;
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    int extra = 0;
    std::uint32_t cp = 0;
    if (b < 0x80) {
      cp = b;
    } else if (b >= 0xC2 && b <= 0xDF) {
      extra = 1;
      cp = b & 0x1Fu;
    } else if (b >= 0xE0 && b <= 0xEF) {
      extra = 2;
      cp = b & 0x0Fu;
    } else if (b >= 0xF0 && b <= 0xF4) {
      extra = 3;
      cp = b & 0x07u;
    } else {
      return -1;
    }
    if (i + static_cast<std::size_t>(extra) >= s.size()) return -1;  // truncated sequence
    for (int k = 1; k <= extra; ++k) {
      const auto c = static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]);
      if ((c & 0xC0u) != 0x80u) return -1;
      cp = (cp << 6) | (c & 0x3Fu);
    }
    if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return -1;
    }
    i += static_cast<std::size_t>(extra) + 1;
    ++count;
  }
  return count;
}

bool HasControl(std::string_view s) {
  for (char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7F) return true;
  }
  return false;
}

std::string KnownModels() {
  std::string out;
  for (const auto& [name, rule] : Policy::Defaults().models) {
    (void)rule;
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

// One CSV record and the line it starts on.
struct CsvRecord {
  std::size_t line = 0;
  std::vector<std::string> fields;
  bool blank = false;  // an empty line: one empty, unquoted field
};

// Splits RFC 4180 text into records. Quoted fields may hold commas, doubled quotes
// and line breaks; a bare quote inside an unquoted field or text after a closing
// quote is an error, as is a quote left open.
Result<std::vector<CsvRecord>> SplitCsv(std::string_view text, std::size_t max_rows) {
  std::vector<CsvRecord> records;
  std::size_t i = 0;
  std::size_t line = 1;
  const std::size_t n = text.size();
  while (i < n) {
    CsvRecord record;
    record.line = line;
    bool any_quoted = false;
    for (;;) {
      std::string field;
      if (i < n && text[i] == '"') {
        any_quoted = true;
        const std::size_t opened_on = line;
        ++i;
        for (;;) {
          if (i >= n) {
            return Status::Invalid(fmt::format("line {}: a quoted field is not closed", opened_on));
          }
          const char c = text[i];
          if (c == '"') {
            if (i + 1 < n && text[i + 1] == '"') {
              field += '"';
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          if (c == '\n') ++line;
          field += c;
          ++i;
        }
        if (i < n && text[i] != ',' && text[i] != '\n' &&
            !(text[i] == '\r' && i + 1 < n && text[i + 1] == '\n')) {
          return Status::Invalid(
              fmt::format("line {}: text after the closing quote of a field", line));
        }
      } else {
        while (i < n && text[i] != ',' && text[i] != '\n' &&
               !(text[i] == '\r' && i + 1 < n && text[i + 1] == '\n')) {
          if (text[i] == '"') {
            return Status::Invalid(
                fmt::format("line {}: a quote inside an unquoted field (quote the whole field and "
                            "double the quote)",
                            line));
          }
          field += text[i];
          ++i;
        }
      }
      record.fields.push_back(std::move(field));
      if (i < n && text[i] == ',') {
        ++i;
        continue;
      }
      break;
    }
    if (i < n && text[i] == '\r') ++i;
    if (i < n && text[i] == '\n') {
      ++i;
      ++line;
    }
    record.blank = !any_quoted && record.fields.size() == 1 && Trim(record.fields[0]).empty();
    if (!record.blank) {
      // Counted here, while splitting, so that a huge file stops early; the header
      // row, if any, gets one row of slack.
      if (records.size() > max_rows) {
        return Status::TooLarge(fmt::format("the CSV has more than {} rows (the limit)", max_rows));
      }
      records.push_back(std::move(record));
    }
  }
  return records;
}

bool IsHeader(const CsvRecord& r) {
  return r.fields.size() == 3 && AsciiLower(Trim(r.fields[0])) == "code" &&
         AsciiLower(Trim(r.fields[1])) == "model" && AsciiLower(Trim(r.fields[2])) == "owner";
}

}  // namespace

Result<LabelContent> MakeLabelContent(std::string_view code, std::string_view model,
                                      std::string_view owner) {
  LabelContent out;
  auto normalised = NormaliseCode(code);
  if (!normalised.ok()) {
    return Status::Invalid(fmt::format("bad code \"{}\": {}", code, normalised.status().message()));
  }
  out.code = std::move(*normalised);

  out.model = AsciiUpper(Trim(model));
  if (Policy::Defaults().FindModel(out.model) == nullptr) {
    return Status::Invalid(
        fmt::format("unknown model \"{}\" (known: {})", Trim(model), KnownModels()));
  }

  owner = Trim(owner);
  if (owner.empty()) return Status::Invalid("owner is empty");
  const long chars = CountUtf8(owner);
  if (chars < 0) return Status::Invalid("owner is not valid UTF-8");
  if (HasControl(owner)) return Status::Invalid("owner contains a control character");
  if (static_cast<std::size_t>(chars) > kMaxOwnerChars) {
    return Status::Invalid(
        fmt::format("owner is {} characters long, over the limit of {}", chars, kMaxOwnerChars));
  }
  out.owner = std::string(owner);
  return out;
}

Result<std::string> NormaliseBase(std::string_view base) {
  const std::string lower = AsciiLower(base);
  std::size_t scheme = 0;
  if (lower.rfind("https://", 0) == 0) {
    scheme = 8;
  } else if (lower.rfind("http://", 0) == 0) {
    scheme = 7;
  } else {
    return Status::Invalid(fmt::format("base \"{}\" is not an http:// or https:// URL", base));
  }
  if (base.size() > kMaxBaseChars) {
    return Status::Invalid(fmt::format("base is {} characters long, over the limit of {}",
                                       base.size(), kMaxBaseChars));
  }
  for (char c : base) {
    const auto b = static_cast<unsigned char>(c);
    if (b <= 0x20 || b >= 0x7F) {
      return Status::Invalid(fmt::format(
          "base \"{}\" contains a space, control or non-ASCII character (percent-encode it)",
          base));
    }
    if (c == '?' || c == '#') {
      return Status::Invalid(
          fmt::format("base \"{}\" has a query or fragment; \"c/CODE\" must follow a path", base));
    }
  }
  std::string_view rest = base.substr(scheme);
  if (rest.empty() || rest.front() == '/') {
    return Status::Invalid(fmt::format("base \"{}\" has no host", base));
  }
  while (!base.empty() && base.back() == '/') base.remove_suffix(1);
  return std::string(base);
}

std::string SymbolText(std::string_view base, const LabelContent& label) {
  return fmt::format("{}/c/{}", base, label.code);
}

Result<std::vector<LabelContent>> ParseLabelCsv(std::string_view text, const CsvLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return Status::TooLarge(fmt::format("the CSV is {} bytes, over the limit of {} MiB",
                                        text.size(), limits.max_bytes >> 20));
  }
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  PINGMA_ASSIGN_OR_RETURN(auto records, SplitCsv(text, limits.max_rows));

  std::vector<LabelContent> labels;
  std::map<std::string, std::size_t, std::less<>> first_line;
  bool first = true;
  for (const CsvRecord& r : records) {
    if (first && IsHeader(r)) {
      first = false;
      continue;
    }
    first = false;
    if (labels.size() >= limits.max_rows) {
      return Status::TooLarge(
          fmt::format("the CSV has more than {} rows (the limit)", limits.max_rows));
    }
    if (r.fields.size() != 3) {
      return Status::Invalid(fmt::format("line {}: expected 3 fields (code,model,owner), found {}",
                                         r.line, r.fields.size()));
    }
    auto label = MakeLabelContent(r.fields[0], r.fields[1], r.fields[2]);
    if (!label.ok()) {
      return Status::Invalid(fmt::format("line {}: {}", r.line, label.status().message()));
    }
    auto [it, inserted] = first_line.emplace(label->code, r.line);
    if (!inserted) {
      return Status::Invalid(
          fmt::format("line {}: code {} is already on line {}", r.line, label->code, it->second));
    }
    labels.push_back(std::move(*label));
  }
  if (labels.empty()) return Status::Invalid("the CSV has no label rows");
  return labels;
}

}  // namespace pingma::label
