// Tests of the calendar types of domain.h: Date, YearMonth, Instant, ToGrams.
//
// Expected figures are computed independently of the implementation (day numbers
// and Unix milliseconds checked against Python's datetime), one table row per case.
#include <cstdint>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "pingma/common/domain.h"

// Names a table row in failure reports (doctest prints a bare char* as a pointer).
#define PINGMA_ROW(x) INFO(#x " = ", std::string(x))

namespace doctest {
template <>
struct StringMaker<pingma::Date> {
  static String convert(const pingma::Date& d) {
    return (d.ToString() + " (day " + std::to_string(d.days()) + ")").c_str();
  }
};
}  // namespace doctest

namespace pingma {
namespace {

constexpr std::int64_t kMsPerDay = 86'400'000;

// Days from 1970-01-01 to a civil date (H. Hinnant's algorithm), independent of
// the code under test.
std::int64_t DaysFromCivil(int y, int m, int d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const std::int64_t yoe = y - era * 400;
  const std::int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

std::int64_t UtcMs(int y, int mo, int d, int h = 0, int mi = 0, int s = 0, int ms = 0) {
  return DaysFromCivil(y, mo, d) * kMsPerDay + ((h * 60 + mi) * 60 + s) * 1000LL + ms;
}

TEST_CASE("DaysFromCivil helper agrees with known day numbers") {
  // Sanity of the test's own oracle (figures from Python's datetime).
  CHECK(DaysFromCivil(1970, 1, 1) == 0);
  CHECK(DaysFromCivil(1969, 12, 31) == -1);
  CHECK(DaysFromCivil(2000, 3, 1) == 11017);
  CHECK(DaysFromCivil(2024, 2, 29) == 19782);
  CHECK(DaysFromCivil(2026, 4, 1) == 20544);
  CHECK(DaysFromCivil(1900, 3, 1) == -25508);
  CHECK(DaysFromCivil(9999, 12, 31) == 2932896);
  CHECK(UtcMs(2026, 1, 1) == 1767225600000LL);
  CHECK(UtcMs(2026, 3, 31, 16) == 1774972800000LL);
}

// --- Date: civil <-> days ----------------------------------------------------

struct CivilRow {
  const char* name;
  int year, month, day;
  std::int64_t days;
  const char* text;
};

const std::vector<CivilRow> kCivilRows = {
    {"epoch", 1970, 1, 1, 0, "1970-01-01"},
    {"day before epoch", 1969, 12, 31, -1, "1969-12-31"},
    {"2000-03-01 (after a 400-year leap day)", 2000, 3, 1, 11017, "2000-03-01"},
    {"2000-02-29 leap day of a 400-year", 2000, 2, 29, 11016, "2000-02-29"},
    {"2024-02-29 leap day", 2024, 2, 29, 19782, "2024-02-29"},
    {"2024-03-01 after leap day", 2024, 3, 1, 19783, "2024-03-01"},
    {"2026-04-01", 2026, 4, 1, 20544, "2026-04-01"},
    {"2026-06-30", 2026, 6, 30, 20634, "2026-06-30"},
    {"1900-03-01 (1900 not leap)", 1900, 3, 1, -25508, "1900-03-01"},
    {"1900-02-28", 1900, 2, 28, -25509, "1900-02-28"},
    {"2100-02-28", 2100, 2, 28, 47540, "2100-02-28"},
    {"2100-03-01 (2100 not leap)", 2100, 3, 1, 47541, "2100-03-01"},
    {"9999-12-31", 9999, 12, 31, 2932896, "9999-12-31"},
    {"year end 2023-12-31", 2023, 12, 31, DaysFromCivil(2023, 12, 31), "2023-12-31"},
};

TEST_CASE("Date::FromCivil, FromDays, fields and ToString agree") {
  for (const CivilRow& row : kCivilRows) {
    PINGMA_ROW(row.name);
    const Date from_civil = Date::FromCivil(row.year, row.month, row.day);
    CHECK(from_civil.days() == row.days);
    const Date from_days = Date::FromDays(row.days);
    CHECK(from_days.year() == row.year);
    CHECK(from_days.month() == row.month);
    CHECK(from_days.day() == row.day);
    CHECK(from_days.ToString() == row.text);
    CHECK(from_days == from_civil);
  }
}

TEST_CASE("Date: every day of 1999-2101 round-trips through its fields") {
  // Walks consecutive days: fields never skip or repeat a day.
  std::int64_t days = DaysFromCivil(1999, 1, 1);
  for (int y = 1999; y <= 2101; ++y) {
    for (int m = 1; m <= 12; ++m) {
      static const int kLen[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
      const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
      const int len = kLen[m - 1] + (m == 2 && leap ? 1 : 0);
      for (int d = 1; d <= len; ++d, ++days) {
        const Date date = Date::FromDays(days);
        if (date.year() != y || date.month() != m || date.day() != d ||
            Date::FromCivil(y, m, d).days() != days) {
          CAPTURE(y);
          CAPTURE(m);
          CAPTURE(d);
          FAIL("civil/day mismatch");
        }
      }
    }
  }
}

// --- Date::Parse ---------------------------------------------------------------

struct DateParseRow {
  const char* name;
  const char* text;
  bool ok;
  int year = 0, month = 0, day = 0;
};

const std::vector<DateParseRow> kDateParseRows = {
    {"plain day", "2023-01-05", true, 2023, 1, 5},
    {"leap day in a leap year", "2024-02-29", true, 2024, 2, 29},
    {"leap day of a 400-year", "2000-02-29", true, 2000, 2, 29},
    {"last day of April", "2023-04-30", true, 2023, 4, 30},
    {"last day of the year", "2023-12-31", true, 2023, 12, 31},
    {"first day of the year", "2023-01-01", true, 2023, 1, 1},
    {"epoch", "1970-01-01", true, 1970, 1, 1},
    {"before epoch", "1969-07-20", true, 1969, 7, 20},
    {"29 Feb in a common year", "2023-02-29", false},
    {"29 Feb in a century year", "2100-02-29", false},
    {"30 Feb", "2024-02-30", false},
    {"31 April", "2023-04-31", false},
    {"32 January", "2023-01-32", false},
    {"day zero", "2023-01-00", false},
    {"month zero", "2023-00-10", false},
    {"month 13", "2023-13-01", false},
    {"one-digit month", "2023-1-05", false},
    {"one-digit day", "2023-01-5", false},
    {"trailing junk", "2023-01-05x", false},
    {"trailing space", "2023-01-05 ", false},
    {"leading space", " 2023-01-05", false},
    {"with a time", "2023-01-05T00:00:00Z", false},
    {"slashes", "2023/01/05", false},
    {"no separators", "20230105", false},
    {"letters in month", "2023-0a-05", false},
    {"three-digit year", "923-01-05", false},
    {"signed year", "+2023-01-05", false},
    {"empty", "", false},
    {"year-month only", "2023-01", false},
};

TEST_CASE("Date::Parse accepts exactly YYYY-MM-DD with a real day") {
  for (const DateParseRow& row : kDateParseRows) {
    PINGMA_ROW(row.name);
    PINGMA_ROW(row.text);
    const Result<Date> parsed = Date::Parse(row.text);
    CHECK(parsed.ok() == row.ok);
    if (parsed.ok() != row.ok) continue;
    if (row.ok) {
      CHECK(parsed->year() == row.year);
      CHECK(parsed->month() == row.month);
      CHECK(parsed->day() == row.day);
      CHECK(*parsed == Date::FromCivil(row.year, row.month, row.day));
      CHECK(parsed->ToString() == row.text);
    } else {
      CHECK_FALSE(parsed.status().message().empty());
    }
  }
}

// --- Date arithmetic and comparison ---------------------------------------------

struct AddRow {
  const char* name;
  Date from;
  int n;
  Date expected;
};

TEST_CASE("Date::AddDays crosses months, years and leap days") {
  const std::vector<AddRow> rows = {
      {"zero", Date::FromCivil(2023, 5, 5), 0, Date::FromCivil(2023, 5, 5)},
      {"into March of a leap year", Date::FromCivil(2024, 2, 28), 1, Date::FromCivil(2024, 2, 29)},
      {"past the leap day", Date::FromCivil(2024, 2, 29), 1, Date::FromCivil(2024, 3, 1)},
      {"common year Feb end", Date::FromCivil(2023, 2, 28), 1, Date::FromCivil(2023, 3, 1)},
      {"year end", Date::FromCivil(2023, 12, 31), 1, Date::FromCivil(2024, 1, 1)},
      {"backwards over year", Date::FromCivil(2024, 1, 1), -1, Date::FromCivil(2023, 12, 31)},
      {"a leap year long", Date::FromCivil(2024, 1, 1), 366, Date::FromCivil(2025, 1, 1)},
      {"a common year long", Date::FromCivil(2023, 1, 1), 365, Date::FromCivil(2024, 1, 1)},
  };
  for (const AddRow& row : rows) {
    PINGMA_ROW(row.name);
    CHECK(row.from.AddDays(row.n) == row.expected);
  }
}

TEST_CASE("Date::AddYears keeps month and day; 29 Feb becomes 28 Feb only when needed") {
  const std::vector<AddRow> rows = {
      {"plain +4", Date::FromCivil(2023, 1, 15), 4, Date::FromCivil(2027, 1, 15)},
      {"plain -4", Date::FromCivil(2026, 6, 30), -4, Date::FromCivil(2022, 6, 30)},
      {"zero", Date::FromCivil(2024, 2, 29), 0, Date::FromCivil(2024, 2, 29)},
      {"29 Feb +4 to a leap year", Date::FromCivil(2024, 2, 29), 4, Date::FromCivil(2028, 2, 29)},
      {"29 Feb +1 to a common year", Date::FromCivil(2024, 2, 29), 1, Date::FromCivil(2025, 2, 28)},
      {"29 Feb +3 to a common year", Date::FromCivil(2024, 2, 29), 3, Date::FromCivil(2027, 2, 28)},
      {"29 Feb -1", Date::FromCivil(2024, 2, 29), -1, Date::FromCivil(2023, 2, 28)},
      {"29 Feb -4", Date::FromCivil(2024, 2, 29), -4, Date::FromCivil(2020, 2, 29)},
      {"29 Feb +4 to a century common year", Date::FromCivil(2096, 2, 29), 4,
       Date::FromCivil(2100, 2, 28)},
      {"29 Feb +4 to a 400-year", Date::FromCivil(1996, 2, 29), 4, Date::FromCivil(2000, 2, 29)},
      {"28 Feb stays 28 Feb", Date::FromCivil(2023, 2, 28), 1, Date::FromCivil(2024, 2, 28)},
      {"31 Dec", Date::FromCivil(2023, 12, 31), 8, Date::FromCivil(2031, 12, 31)},
      {"1 Mar", Date::FromCivil(2023, 3, 1), 1, Date::FromCivil(2024, 3, 1)},
  };
  for (const AddRow& row : rows) {
    PINGMA_ROW(row.name);
    CHECK(row.from.AddYears(row.n) == row.expected);
  }
}

TEST_CASE("Date comparison operators") {
  const Date a = Date::FromCivil(2026, 3, 31);
  const Date b = Date::FromCivil(2026, 4, 1);
  CHECK(a < b);
  CHECK(a <= b);
  CHECK(a <= a);
  CHECK(b > a);
  CHECK(b >= a);
  CHECK(a >= a);
  CHECK(a == Date::FromCivil(2026, 3, 31));
  CHECK(a != b);
  CHECK_FALSE(b < a);
  CHECK_FALSE(a > b);
  CHECK_FALSE(a == b);
}

// --- YearMonth ---------------------------------------------------------------

struct YearMonthRow {
  const char* name;
  const char* text;
  bool ok;
  int year = 0, month = 0;
};

TEST_CASE("YearMonth::Parse accepts exactly YYYY-MM with a month 1..12") {
  const std::vector<YearMonthRow> rows = {
      {"January", "2023-01", true, 2023, 1}, {"December", "2023-12", true, 2023, 12},
      {"cutover", "2007-02", true, 2007, 2}, {"month zero", "2023-00", false},
      {"month 13", "2023-13", false},        {"one-digit month", "2023-1", false},
      {"a full date", "2023-01-01", false},  {"trailing junk", "2023-01x", false},
      {"trailing space", "2023-01 ", false}, {"leading space", " 2023-01", false},
      {"slash", "2023/01", false},           {"no separator", "202301", false},
      {"letters", "20a3-01", false},         {"empty", "", false},
  };
  for (const YearMonthRow& row : rows) {
    PINGMA_ROW(row.name);
    PINGMA_ROW(row.text);
    const Result<YearMonth> parsed = YearMonth::Parse(row.text);
    CHECK(parsed.ok() == row.ok);
    if (parsed.ok() != row.ok) continue;
    if (row.ok) {
      CHECK(parsed->year == row.year);
      CHECK(parsed->month == row.month);
      CHECK(parsed->ToString() == row.text);
    }
  }
}

struct MonthDaysRow {
  const char* name;
  YearMonth ym;
  Date first;
  Date last;
};

TEST_CASE("YearMonth::FirstDay and LastDay") {
  const std::vector<MonthDaysRow> rows = {
      {"January", {2023, 1}, Date::FromCivil(2023, 1, 1), Date::FromCivil(2023, 1, 31)},
      {"Feb common year", {2022, 2}, Date::FromCivil(2022, 2, 1), Date::FromCivil(2022, 2, 28)},
      {"Feb leap year", {2020, 2}, Date::FromCivil(2020, 2, 1), Date::FromCivil(2020, 2, 29)},
      {"Feb 2000 (400-year)", {2000, 2}, Date::FromCivil(2000, 2, 1), Date::FromCivil(2000, 2, 29)},
      {"Feb 2100 (century)", {2100, 2}, Date::FromCivil(2100, 2, 1), Date::FromCivil(2100, 2, 28)},
      {"April", {2023, 4}, Date::FromCivil(2023, 4, 1), Date::FromCivil(2023, 4, 30)},
      {"June", {2026, 6}, Date::FromCivil(2026, 6, 1), Date::FromCivil(2026, 6, 30)},
      {"September", {2023, 9}, Date::FromCivil(2023, 9, 1), Date::FromCivil(2023, 9, 30)},
      {"November", {2023, 11}, Date::FromCivil(2023, 11, 1), Date::FromCivil(2023, 11, 30)},
      {"December", {2023, 12}, Date::FromCivil(2023, 12, 1), Date::FromCivil(2023, 12, 31)},
  };
  for (const MonthDaysRow& row : rows) {
    PINGMA_ROW(row.name);
    CHECK(row.ym.FirstDay() == row.first);
    CHECK(row.ym.LastDay() == row.last);
  }
}

TEST_CASE("YearMonth AddYears, ToString and ordering") {
  CHECK(YearMonth{2022, 2}.AddYears(4).LastDay() == Date::FromCivil(2026, 2, 28));
  CHECK(YearMonth{2020, 2}.AddYears(4).LastDay() == Date::FromCivil(2024, 2, 29));
  CHECK(YearMonth{2023, 7}.ToString() == "2023-07");
  CHECK(YearMonth{2007, 2}.ToString() == "2007-02");
  CHECK(YearMonth{2007, 1} < YearMonth{2007, 2});
  CHECK(YearMonth{2006, 12} < YearMonth{2007, 1});
  CHECK_FALSE(YearMonth{2007, 2} < YearMonth{2007, 2});
  CHECK(YearMonth{2007, 2} <= YearMonth{2007, 2});
  CHECK_FALSE(YearMonth{2007, 3} <= YearMonth{2007, 2});
  CHECK(YearMonth{2007, 2} == YearMonth{2007, 2});
}

// --- Instant -----------------------------------------------------------------

struct InstantParseRow {
  const char* name;
  const char* text;
  bool ok;
  std::int64_t unix_ms = 0;
};

TEST_CASE("Instant::Parse reads RFC 3339") {
  const std::int64_t new_year = UtcMs(2026, 1, 1);
  const std::vector<InstantParseRow> rows = {
      {"Z", "2026-01-01T00:00:00Z", true, new_year},
      {"+08:00 offset", "2026-01-01T08:00:00+08:00", true, new_year},
      {"-05:00 offset", "2025-12-31T19:00:00-05:00", true, new_year},
      {"+00:00 offset", "2026-01-01T00:00:00+00:00", true, new_year},
      {"+05:30 offset", "2026-01-01T05:30:00+05:30", true, new_year},
      {"milliseconds", "2026-01-01T00:00:00.123Z", true, new_year + 123},
      {"one fractional digit", "2026-01-01T00:00:00.5Z", true, new_year + 500},
      {"microseconds", "2026-01-01T00:00:00.123456Z", true, new_year + 123},
      {"fraction with offset", "2026-01-01T08:00:00.250+08:00", true, new_year + 250},
      {"Shanghai midnight", "2026-04-01T00:00:00+08:00", true, UtcMs(2026, 3, 31, 16)},
      {"end of a day", "2026-03-31T23:59:59.999Z", true, UtcMs(2026, 3, 31, 23, 59, 59, 999)},
      {"epoch", "1970-01-01T00:00:00Z", true, 0},
      {"leap day", "2024-02-29T12:34:56Z", true, UtcMs(2024, 2, 29, 12, 34, 56)},
      {"date only", "2026-01-01", false},
      {"no offset", "2026-01-01T00:00:00", false},
      {"bad month", "2026-13-01T00:00:00Z", false},
      {"bad day", "2026-02-30T00:00:00Z", false},
      {"hour 24", "2026-01-01T24:00:00Z", false},
      {"minute 60", "2026-01-01T00:60:00Z", false},
      {"trailing junk", "2026-01-01T00:00:00Zjunk", false},
      {"missing seconds", "2026-01-01T00:00Z", false},
      {"offset without minutes", "2026-01-01T08:00:00+08", false},
      {"offset without colon", "2026-01-01T08:00:00+0800", false},
      {"offset hour 24", "2026-01-01T00:00:00+24:00", false},
      {"empty fraction", "2026-01-01T00:00:00.Z", false},
      {"garbage", "yesterday", false},
      {"empty", "", false},
  };
  for (const InstantParseRow& row : rows) {
    PINGMA_ROW(row.name);
    PINGMA_ROW(row.text);
    const Result<Instant> parsed = Instant::Parse(row.text);
    CHECK(parsed.ok() == row.ok);
    if (parsed.ok() != row.ok) continue;
    if (row.ok) CHECK(parsed->unix_ms == row.unix_ms);
  }
}

struct InstantTextRow {
  const char* name;
  std::int64_t unix_ms;
  const char* text;
};

TEST_CASE("Instant::ToString gives UTC with milliseconds and round-trips") {
  const std::vector<InstantTextRow> rows = {
      {"epoch", 0, "1970-01-01T00:00:00.000Z"},
      {"new year 2026", UtcMs(2026, 1, 1), "2026-01-01T00:00:00.000Z"},
      {"milliseconds", UtcMs(2026, 11, 23, 3, 18, 53, 123), "2026-11-23T03:18:53.123Z"},
      {"leading-zero ms", UtcMs(2026, 11, 23, 3, 18, 53, 7), "2026-11-23T03:18:53.007Z"},
      {"Shanghai midnight", UtcMs(2026, 3, 31, 16), "2026-03-31T16:00:00.000Z"},
      {"before epoch", -1, "1969-12-31T23:59:59.999Z"},
  };
  for (const InstantTextRow& row : rows) {
    PINGMA_ROW(row.name);
    const Instant instant{row.unix_ms};
    CHECK(instant.ToString() == row.text);
    const Result<Instant> back = Instant::Parse(instant.ToString());
    CHECK(back.ok());
    if (!back.ok()) continue;
    CHECK(back->unix_ms == row.unix_ms);
  }
}

struct LocalDateRow {
  const char* name;
  std::int64_t unix_ms;
  int offset_minutes;
  Date expected;
};

TEST_CASE("Instant::LocalDate takes the day in the given zone") {
  const std::vector<LocalDateRow> rows = {
      {"16:00Z is already tomorrow in Shanghai", UtcMs(2026, 3, 31, 16), 480,
       Date::FromCivil(2026, 4, 1)},
      {"15:59:59.999Z is still today in Shanghai", UtcMs(2026, 3, 31, 15, 59, 59, 999), 480,
       Date::FromCivil(2026, 3, 31)},
      {"16:00Z in UTC", UtcMs(2026, 3, 31, 16), 0, Date::FromCivil(2026, 3, 31)},
      {"UTC midnight", UtcMs(2026, 4, 1), 0, Date::FromCivil(2026, 4, 1)},
      {"UTC one ms before midnight", UtcMs(2026, 4, 1) - 1, 0, Date::FromCivil(2026, 3, 31)},
      {"west of UTC, before local midnight", UtcMs(2026, 4, 1, 4, 59, 59, 999), -300,
       Date::FromCivil(2026, 3, 31)},
      {"west of UTC, at local midnight", UtcMs(2026, 4, 1, 5), -300, Date::FromCivil(2026, 4, 1)},
      {"Shanghai new year's eve", UtcMs(2025, 12, 31, 16), 480, Date::FromCivil(2026, 1, 1)},
      {"before epoch, UTC", -1, 0, Date::FromCivil(1969, 12, 31)},
      {"before epoch, Shanghai", -1, 480, Date::FromCivil(1970, 1, 1)},
  };
  for (const LocalDateRow& row : rows) {
    PINGMA_ROW(row.name);
    CHECK(Instant{row.unix_ms}.LocalDate(row.offset_minutes) == row.expected);
  }
}

// --- ToGrams -----------------------------------------------------------------

struct GramsRow {
  const char* name;
  double kg;
  std::int64_t grams;
};

TEST_CASE("ToGrams rounds to whole grams") {
  const std::vector<GramsRow> rows = {
      {"zero", 0.0, 0},
      {"tare", 16.4, 16400},
      {"tare minus tolerance", 16.4 - 0.3, 16100},
      {"0.1 + 0.2", 0.1 + 0.2, 300},
      {"one gram under", 16.099, 16099},
      {"YSP35.5 max", 14.9, 14900},
      {"YSP118 max", 49.5, 49500},
      {"YSP4.7 min", 1.8, 1800},
      {"negative", -0.3, -300},
      {"rounds up", 1.0004999 + 0.0001, 1001},
      {"rounds down", 1.0004, 1000},
  };
  for (const GramsRow& row : rows) {
    PINGMA_ROW(row.name);
    CHECK(ToGrams(row.kg) == row.grams);
  }
}

}  // namespace
}  // namespace pingma
