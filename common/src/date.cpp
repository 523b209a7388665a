// Calendar arithmetic on the proleptic Gregorian calendar (H. Hinnant's
// days_from_civil / civil_from_days), and RFC 3339 instants.
#include <chrono>
#include <cstdio>

#include <fmt/format.h>

#include "pingma/common/domain.h"

namespace pingma {
namespace {

struct Civil {
  int year;
  int month;
  int day;
};

std::int64_t DaysFromCivil(int y, int m, int d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy =
      (153 * static_cast<unsigned>(m + (m > 2 ? -3 : 9)) + 2) / 5 + static_cast<unsigned>(d) - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

Civil CivilFromDays(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {static_cast<int>(y + (m <= 2)), static_cast<int>(m), static_cast<int>(d)};
}

bool IsLeap(int y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

// Reads exactly `n` decimal digits at text[pos].
bool Digits(std::string_view text, size_t pos, size_t n, int* out) {
  if (pos + n > text.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    v = v * 10 + (text[i] - '0');
  }
  *out = v;
  return true;
}

}  // namespace

Date Date::FromCivil(int year, int month, int day) {
  return Date(DaysFromCivil(year, month, day));
}

Result<Date> Date::Parse(std::string_view text) {
  int y = 0, m = 0, d = 0;
  if (text.size() != 10 || text[4] != '-' || text[7] != '-' || !Digits(text, 0, 4, &y) ||
      !Digits(text, 5, 2, &m) || !Digits(text, 8, 2, &d)) {
    return Status::Malformed(fmt::format("'{}' is not a date of the form YYYY-MM-DD", text));
  }
  if (m < 1 || m > 12 || d < 1 || d > DaysInMonth(y, m)) {
    return Status::Malformed(fmt::format("'{}' is not a day of the calendar", text));
  }
  return FromCivil(y, m, d);
}

int Date::year() const {
  return CivilFromDays(days_).year;
}
int Date::month() const {
  return CivilFromDays(days_).month;
}
int Date::day() const {
  return CivilFromDays(days_).day;
}

std::string Date::ToString() const {
  const Civil c = CivilFromDays(days_);
  return fmt::format("{:04d}-{:02d}-{:02d}", c.year, c.month, c.day);
}

Date Date::AddYears(int n) const {
  const Civil c = CivilFromDays(days_);
  const int y = c.year + n;
  return FromCivil(y, c.month, std::min(c.day, DaysInMonth(y, c.month)));
}

Result<YearMonth> YearMonth::Parse(std::string_view text) {
  int y = 0, m = 0;
  if (text.size() != 7 || text[4] != '-' || !Digits(text, 0, 4, &y) || !Digits(text, 5, 2, &m)) {
    return Status::Malformed(fmt::format("'{}' is not a year-month of the form YYYY-MM", text));
  }
  if (m < 1 || m > 12) return Status::Malformed(fmt::format("'{}' has no month {}", text, m));
  return YearMonth{y, m};
}

std::string YearMonth::ToString() const {
  return fmt::format("{:04d}-{:02d}", year, month);
}
Date YearMonth::FirstDay() const {
  return Date::FromCivil(year, month, 1);
}
Date YearMonth::LastDay() const {
  return Date::FromCivil(year, month, DaysInMonth(year, month));
}

std::string Instant::ToString() const {
  std::int64_t days = unix_ms / 86400000;
  std::int64_t ms = unix_ms % 86400000;
  if (ms < 0) {
    ms += 86400000;
    --days;
  }
  const Civil c = CivilFromDays(days);
  return fmt::format("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}.{:03d}Z", c.year, c.month, c.day,
                     ms / 3600000, ms / 60000 % 60, ms / 1000 % 60, ms % 1000);
}

Result<Instant> Instant::Parse(std::string_view text) {
  auto bad = [&] {
    return Status::Malformed(
        fmt::format("'{}' is not an RFC 3339 instant (e.g. 2026-01-31T08:00:00+08:00)", text));
  };
  if (text.size() < 20) return bad();
  auto date = Date::Parse(text.substr(0, 10));
  int hh = 0, mi = 0, ss = 0;
  if (!date.ok() || (text[10] != 'T' && text[10] != 't' && text[10] != ' ') ||
      !Digits(text, 11, 2, &hh) || text[13] != ':' || !Digits(text, 14, 2, &mi) ||
      text[16] != ':' || !Digits(text, 17, 2, &ss) || hh > 23 || mi > 59 || ss > 60) {
    return bad();
  }
  size_t pos = 19;
  std::int64_t ms = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    int scale = 100;
    size_t start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      ms += (text[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return bad();
  }
  int offset_min = 0;
  if (pos < text.size() && (text[pos] == 'Z' || text[pos] == 'z')) {
    ++pos;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int oh = 0, om = 0;
    if (!Digits(text, pos + 1, 2, &oh) || pos + 3 >= text.size() || text[pos + 3] != ':' ||
        !Digits(text, pos + 4, 2, &om) || oh > 23 || om > 59) {
      return bad();
    }
    offset_min = (text[pos] == '-' ? -1 : 1) * (oh * 60 + om);
    pos += 6;
  } else {
    return bad();
  }
  if (pos != text.size()) return bad();
  const std::int64_t secs = date->days() * 86400 + hh * 3600 + mi * 60 + std::min(ss, 59) -
                            static_cast<std::int64_t>(offset_min) * 60;
  return Instant{secs * 1000 + ms};
}

Date Instant::LocalDate(int utc_offset_minutes) const {
  const std::int64_t local_ms = unix_ms + static_cast<std::int64_t>(utc_offset_minutes) * 60000;
  std::int64_t days = local_ms / 86400000;
  if (local_ms % 86400000 < 0) --days;
  return Date::FromDays(days);
}

Instant SystemClock::Now() const {
  using namespace std::chrono;
  return Instant{duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count()};
}

}  // namespace pingma
