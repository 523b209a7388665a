// libFuzzer harness: dates, year-months and instants parse without a crash, and what
// parses prints back to the same text (dates, year-months) or the same instant.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "pingma/common/domain.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto d = pingma::Date::Parse(text); d.ok() && d->ToString() != text) std::abort();
  if (auto ym = pingma::YearMonth::Parse(text); ym.ok() && ym->ToString() != text) std::abort();
  if (auto t = pingma::Instant::Parse(text); t.ok()) {
    auto again = pingma::Instant::Parse(t->ToString());
    if (!again.ok() || !(*again == *t)) std::abort();
  }
  return 0;
}
