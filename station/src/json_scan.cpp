#include "json_scan.h"

namespace pingma::station {
namespace {

bool IsJsonSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

void SkipSpace(std::string_view text, size_t* i) {
  while (*i < text.size() && IsJsonSpace(text[*i])) ++*i;
}

// Advances `*i` past the JSON value at `text[*i]`: a string with its escapes, a
// container with all it nests, or a scalar up to the ',', '}' or ']' after it
// (left for the caller). May leave `*i` past the end on malformed text.
void SkipValue(std::string_view text, size_t* i) {
  size_t depth = 0;
  while (*i < text.size()) {
    const char c = text[(*i)++];
    if (c == '"') {
      while (*i < text.size() && text[*i] != '"') *i += text[*i] == '\\' ? 2 : 1;
      ++*i;  // the closing quote
      if (depth == 0) return;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (depth == 0) {
        --*i;  // the enclosing container's end: the caller's
        return;
      }
      if (--depth == 0) return;
    } else if (c == ',' && depth == 0) {
      --*i;
      return;
    }
  }
}

// The value at `*i`, without the space around it; nullopt past the end.
std::optional<std::string_view> Value(std::string_view text, size_t* i) {
  SkipSpace(text, i);
  const size_t start = *i;
  SkipValue(text, i);
  if (*i > text.size() || *i == start) return std::nullopt;
  size_t end = *i;
  while (end > start && IsJsonSpace(text[end - 1])) --end;
  return text.substr(start, end - start);
}

// After a member or an element: true at a ',' (skipped), false at `close`
// (skipped); nullopt otherwise.
std::optional<bool> Next(std::string_view text, size_t* i, char close) {
  SkipSpace(text, i);
  if (*i >= text.size()) return std::nullopt;
  const char c = text[(*i)++];
  if (c == ',') return true;
  if (c == close) return false;
  return std::nullopt;
}

}  // namespace

std::optional<std::vector<std::pair<std::string_view, std::string_view>>> ObjectMembers(
    std::string_view text) {
  size_t i = 0;
  SkipSpace(text, &i);
  if (i >= text.size() || text[i] != '{') return std::nullopt;
  ++i;
  std::vector<std::pair<std::string_view, std::string_view>> members;
  SkipSpace(text, &i);
  if (i < text.size() && text[i] == '}') return members;
  for (;;) {
    auto name = Value(text, &i);
    if (!name || name->size() < 2 || name->front() != '"' || name->back() != '"') {
      return std::nullopt;
    }
    SkipSpace(text, &i);
    if (i >= text.size() || text[i] != ':') return std::nullopt;
    ++i;
    auto value = Value(text, &i);
    if (!value) return std::nullopt;
    members.emplace_back(name->substr(1, name->size() - 2), *value);
    auto more = Next(text, &i, '}');
    if (!more) return std::nullopt;
    if (!*more) return members;
  }
}

std::optional<std::vector<std::string_view>> ArrayElements(std::string_view text) {
  size_t i = 0;
  SkipSpace(text, &i);
  if (i >= text.size() || text[i] != '[') return std::nullopt;
  ++i;
  std::vector<std::string_view> elements;
  SkipSpace(text, &i);
  if (i < text.size() && text[i] == ']') return elements;
  for (;;) {
    auto value = Value(text, &i);
    if (!value) return std::nullopt;
    elements.push_back(*value);
    auto more = Next(text, &i, ']');
    if (!more) return std::nullopt;
    if (!*more) return elements;
  }
}

}  // namespace pingma::station
