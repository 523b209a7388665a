// The regulator's reads: fill-check statistics, CSV ledgers, foresight queries
// and the lists behind the console.
//
// Each answer costs what it shows, never the size of the store: statistics read
// the per-day counters that fill checks keep (check_days, refusal_days), the
// refused-checks ledger its own table (refusals), inspections due the summary the
// cylinders' triggers keep (due_counts), and every list is keyset-paged on an
// index (store.cpp's schema).
//
// Scope: a company sees only its own (its stations, its cylinders, its people); a
// regulator or an admin sees all, or one company with company_id. The routes
// (service.cpp) keep station, inspector and courier tokens out, except that a
// courier may list its own company's customers.
#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "cases/handovers.h"
#include "cases/personal_data.h"
#include "cases/queries.h"
#include "cases/regulator.h"
#include "http/fields.h"

namespace pingma::registry {
namespace {

constexpr std::int64_t kMsPerDay = 86400000;
/// A page of a list: 100 by default, at most 1000 (larger asks are capped).
constexpr std::int64_t kDefaultPage = 100;
constexpr std::int64_t kMaxPage = 1000;
/// Statistics and ledgers cover at most this many days (a year, leap or not).
constexpr std::int64_t kMaxRangeDays = 366;
/// A ledger larger than this is refused with a message rather than cut short.
constexpr size_t kMaxCsvRows = 500000;

// ---- Parameters -------------------------------------------------------------------

std::optional<std::string> Param(const std::map<std::string, std::string>& query,
                                 const char* name) {
  auto it = query.find(name);
  if (it == query.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

struct DayRange {
  Date from, to;
};

// from/to as dates in the policy's zone, both days included; by default the last
// 30 days up to today.
Result<DayRange> ParseRange(const std::map<std::string, std::string>& query, Date today) {
  DayRange r{today.AddDays(-29), today};
  for (auto [name, out] : {std::pair{"from", &r.from}, std::pair{"to", &r.to}}) {
    if (auto text = Param(query, name)) {
      auto d = Date::Parse(*text);
      if (!d.ok()) {
        return Status::Malformed(
            fmt::format("{} must be a date YYYY-MM-DD, not '{}'", name, *text));
      }
      *out = *d;
    }
  }
  if (r.to < r.from) {
    return Status::Invalid(
        fmt::format("to ({}) is before from ({})", r.to.ToString(), r.from.ToString()));
  }
  if (r.to.days() - r.from.days() + 1 > kMaxRangeDays) {
    return Status::Invalid(fmt::format("the range from {} to {} is {} days; at most {}",
                                       r.from.ToString(), r.to.ToString(),
                                       r.to.days() - r.from.days() + 1, kMaxRangeDays));
  }
  return r;
}

// The first instant of `day` in a zone `utc_offset_minutes` east of UTC.
std::int64_t DayStartMs(Date day, int utc_offset_minutes) {
  return day.days() * kMsPerDay - static_cast<std::int64_t>(utc_offset_minutes) * 60000;
}

// "YYYY-MM-DD HH:MM:SS" in the policy's zone: what a spreadsheet reads as a time.
std::string LocalTime(Instant at, int utc_offset_minutes) {
  const std::int64_t local = at.unix_ms + static_cast<std::int64_t>(utc_offset_minutes) * 60000;
  std::int64_t days = local / kMsPerDay;
  std::int64_t ms = local % kMsPerDay;
  if (ms < 0) {
    ms += kMsPerDay;
    days -= 1;
  }
  const std::int64_t s = ms / 1000;
  return fmt::format("{} {:02}:{:02}:{:02}", Date::FromDays(days).ToString(), s / 3600, s / 60 % 60,
                     s % 60);
}

// "UTC+08:00", for the ledgers' time columns.
std::string ZoneName(int utc_offset_minutes) {
  const int m = utc_offset_minutes < 0 ? -utc_offset_minutes : utc_offset_minutes;
  return fmt::format("UTC{}{:02}:{:02}", utc_offset_minutes < 0 ? '-' : '+', m / 60, m % 60);
}

// The company whose rows `who` may see, after the company_id parameter: nullopt
// for all of them (a regulator or an admin without company_id). A company asking
// for another one's rows is refused; an unknown company is 404.
Result<std::optional<std::string>> CompanyScope(Conn& conn, const Principal& who,
                                                const std::map<std::string, std::string>& query) {
  auto asked = Param(query, "company_id");
  if (who.role == Role::kCompany) {
    if (asked && *asked != who.subject) {
      return Status::PermissionDenied(
          fmt::format("a company sees only its own; this token is for {}", who.subject));
    }
    return std::optional<std::string>(who.subject);
  }
  if (!asked) return std::optional<std::string>();
  PINGMA_ASSIGN_OR_RETURN(auto exists, Exists(conn, "companies", *asked));
  if (!exists) return Status::NotFound(fmt::format("no company {}", *asked));
  return std::optional<std::string>(*asked);
}

// The station_id parameter, checked against the scope: an unknown station is 404,
// another company's is 403.
Result<std::optional<std::string>> StationFilter(Conn& conn,
                                                 const std::map<std::string, std::string>& query,
                                                 const std::optional<std::string>& company) {
  auto asked = Param(query, "station_id");
  if (!asked) return std::optional<std::string>();
  PINGMA_ASSIGN_OR_RETURN(auto station, LoadStation(conn, *asked));
  if (!station) return Status::NotFound(fmt::format("no station {}", *asked));
  if (company && station->company_id != *company) {
    return Status::PermissionDenied(
        fmt::format("station {} belongs to {}, not {}", *asked, station->company_id, *company));
  }
  return std::optional<std::string>(*asked);
}

// Binds an optional text, or NULL (`? IS NULL OR column = ?` in the queries).
void BindOptional(sql::Statement& s, int i, const std::optional<std::string>& value) {
  if (value) {
    s.Bind(i, *value);
  } else {
    s.BindNull(i);
  }
}

// ---- CSV (RFC 4180, for spreadsheets) -------------------------------------------

}  // namespace

bool ReadAsFormula(std::string_view field) {
  if (field.empty()) return false;
  switch (field[0]) {
    case '=':
    case '+':
    case '-':
    case '@':
    case '|':
    case '%':
    case ' ':
    case '\t':
    case '\r':
    case '\n':
      return true;
    default:
      break;
  }
  // The first character, when it is not ASCII: the fullwidth and small forms of
  // those signs (which spreadsheets in Chinese locales read as the signs) and
  // every other kind of space (which they skip before a formula).
  const char32_t cp = DecodeUtf8(field, 0).cp;
  static constexpr char32_t kLeads[] = {
      0xff1d, 0xff0b, 0xff0d, 0xff20, 0xff5c, 0xff05,  // ＝ ＋ － ＠ ｜ ％
      0xfe66, 0xfe62, 0xfe63, 0xfe6b, 0xfe6a,          // small ﹦ ﹢ ﹣ ﹫ ﹪
      0x00a0, 0x1680, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000, 0xfeff};
  if (cp >= 0x2000 && cp <= 0x200b) return true;  // en quad .. zero-width space
  return std::find(std::begin(kLeads), std::end(kLeads), cp) != std::end(kLeads);
}

namespace {

/// A ledger as a spreadsheet opens it: UTF-8 with a byte-order mark (which is how
/// Excel knows the encoding), one header row, CRLF line ends, and fields quoted
/// when they hold a comma, a quote, CR or LF, with quotes doubled. Text fields a
/// spreadsheet would read as a formula (ReadAsFormula) get a leading apostrophe,
/// so that it shows them as text instead of running them (CSV injection): a name
/// like "=HYPERLINK(...)" comes back as "'=HYPERLINK(...)". Numbers are written as
/// numbers, so -0.5 stays a number.
class CsvLedger {
 public:
  explicit CsvLedger(const std::vector<const char*>& header) {
    text_ = "\xEF\xBB\xBF";
    for (const char* h : header) Text(h);
    End();
  }

  void Text(std::string_view field) {
    Separate();
    const bool formula = ReadAsFormula(field);
    const bool quote = formula || field.find_first_of(",\"\r\n") != std::string_view::npos;
    if (!quote) {
      text_.append(field);
      return;
    }
    text_.push_back('"');
    if (formula) text_.push_back('\'');
    for (char c : field) {
      if (c == '"') text_.push_back('"');
      text_.push_back(c);
    }
    text_.push_back('"');
  }
  void Number(double value) {
    Separate();
    fmt::format_to(std::back_inserter(text_), "{}", value);
  }
  void Integer(std::int64_t value) {
    Separate();
    fmt::format_to(std::back_inserter(text_), "{}", value);
  }
  void Empty() { Separate(); }
  void End() {
    text_.append("\r\n");
    first_ = true;
    ++rows_;
  }
  /// Data rows so far (without the header).
  size_t rows() const { return rows_ - 1; }

  Reply Finish(const std::string& filename) {
    Reply r;
    r.raw_content_type = "text/csv; charset=utf-8";
    r.raw_body = std::move(text_);
    r.headers.emplace_back("Content-Disposition",
                           fmt::format("attachment; filename=\"{}\"", filename));
    return r;
  }

 private:
  void Separate() {
    if (!first_) text_.push_back(',');
    first_ = false;
  }
  std::string text_;
  bool first_ = true;
  size_t rows_ = 0;
};

Status TooManyRows(const char* what) {
  return Status::Invalid(
      fmt::format("the {} has more than {} rows: ask for a shorter range or "
                  "one company",
                  what, kMaxCsvRows));
}

// "HZ-..." style names for files: the scope and the range.
std::string FileName(const char* what, const std::optional<std::string>& company,
                     const std::optional<DayRange>& range) {
  std::string name = what;
  if (company) name += "-" + *company;
  if (range) name += fmt::format("-{}-{}", range->from.ToString(), range->to.ToString());
  // Ids are [A-Za-z0-9-_.:]; a ':' is no good in a file name.
  std::replace(name.begin(), name.end(), ':', '_');
  return name + ".csv";
}

// Names of the stations and companies, for the ledgers (both are small).
Result<std::map<std::string, std::string>> Names(Conn& conn, const char* table) {
  PINGMA_ASSIGN_OR_RETURN(auto st, conn.Prepare(fmt::format("SELECT id, name FROM {}", table)));
  std::map<std::string, std::string> out;
  for (;;) {
    PINGMA_ASSIGN_OR_RETURN(auto row, st->Step());
    if (!row) break;
    out.emplace(st->Text(0), st->Text(1));
  }
  return out;
}

std::string NameOf(const std::map<std::string, std::string>& names, const std::string& id) {
  auto it = names.find(id);
  return it == names.end() ? std::string() : it->second;
}

// Reason codes "A,B" as "A; B" and their Chinese titles.
std::pair<std::string, std::string> ReasonTexts(std::string_view codes) {
  std::string list, titles;
  while (!codes.empty()) {
    const size_t comma = codes.find(',');
    const std::string_view code = codes.substr(0, comma);
    if (!list.empty()) {
      list += "; ";
      titles += "; ";
    }
    list.append(code);
    auto parsed = ParseReasonCode(code);
    titles += parsed.ok() ? TitleZh(*parsed) : std::string(code);
    codes = comma == std::string_view::npos ? std::string_view() : codes.substr(comma + 1);
  }
  return {list, titles};
}

// ---- Fill-check counts --------------------------------------------------------

/// A group's counts of check_days: every check, refused as decided at the scale,
/// and of them the checks decided offline, their refusals, and the offline checks
/// the registry decided otherwise.
struct CheckCounts {
  std::int64_t checks = 0;
  std::int64_t refused = 0;
  std::int64_t offline_checks = 0;
  std::int64_t offline_refused = 0;
  std::int64_t disagreements = 0;
};

/// The five sums in columns first..first+4 of the current row.
CheckCounts ReadCheckCounts(const sql::Statement& s, int first) {
  return {s.Int(first), s.Int(first + 1), s.Int(first + 2), s.Int(first + 3), s.Int(first + 4)};
}

void AddCheckCounts(const CheckCounts& c, json* group) {
  (*group)["checks"] = c.checks;
  (*group)["refused"] = c.refused;
  (*group)["offline_checks"] = c.offline_checks;
  (*group)["offline_refused"] = c.offline_refused;
  (*group)["disagreements"] = c.disagreements;
}

// ---- Months -------------------------------------------------------------------

int MonthIndex(int year, int month) {
  return year * 12 + (month - 1);
}
std::string MonthText(int index) {
  return fmt::format("{:04}-{:02}", index / 12, index % 12 + 1);
}

// `day` minus `months` calendar months, the day clamped to the month's end.
Date MonthsBefore(Date day, int months) {
  const int index = MonthIndex(day.year(), day.month()) - months;
  const YearMonth ym{index / 12, index % 12 + 1};
  return std::min(Date::FromCivil(ym.year, ym.month, 1).AddDays(day.day() - 1), ym.LastDay());
}

// ---- Cursors ------------------------------------------------------------------

// "NUMBER:TEXT" (the unseen's cursor), as next_cursor gives it.
bool ParseKeyCursor(const std::string& text, std::int64_t* number, std::string* rest) {
  const size_t colon = text.find(':');
  if (colon == std::string::npos || colon + 1 == text.size()) return false;
  bool negative = text[0] == '-';
  std::int64_t n = 0;
  if (!ParseWhole(std::string_view(text).substr(negative ? 1 : 0, colon - (negative ? 1 : 0)), 0,
                  INT64_MAX, &n)) {
    return false;
  }
  *number = negative ? -n : n;
  *rest = text.substr(colon + 1);
  return true;
}

}  // namespace

// ---- Statistics ---------------------------------------------------------------

void RegulatorReads::GetFillCheckStats(const Call& call, Store::Done done) {
  const Date today = clock_->Now().LocalDate(policy_.utc_offset_minutes);
  auto range = ParseRange(call.query, today);
  if (!range.ok()) return done(ErrorReply(range.status()));
  const std::string group_by = Param(call.query, "group_by").value_or("day");
  if (group_by != "day" && group_by != "station" && group_by != "reason") {
    return done(ErrorReply(Status::Invalid(
        fmt::format("group_by must be day, station or reason, not '{}'", group_by))));
  }
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    auto company = CompanyScope(conn, call.who, call.query);
    if (!company.ok()) return ErrorReply(company.status());
    auto station = StationFilter(conn, call.query, *company);
    if (!station.ok()) return ErrorReply(station.status());
    const std::string from = range->from.ToString(), to = range->to.ToString();
    // Days x stations of the range, never the log.
    const std::string where =
        "day >= $1 AND day <= $2 AND ($3 IS NULL OR company_id = $3) "
        "AND ($4 IS NULL OR station_id = $4)";
    auto bind = [&](sql::Statement& s) {
      s.Bind(1, from).Bind(2, to);
      BindOptional(s, 3, *company);
      BindOptional(s, 4, *station);
    };
    json groups = json::array();
    auto totals = conn.Prepare(
        "SELECT COALESCE(SUM(checks), 0), COALESCE(SUM(refused), 0), "
        "COALESCE(SUM(offline_checks), 0), COALESCE(SUM(offline_refused), 0), "
        "COALESCE(SUM(disagreements), 0) FROM check_days WHERE " +
        where);
    if (!totals.ok()) return ErrorReply(totals.status());
    bind(**totals);
    auto has = (*totals)->Step();
    if (!has.ok()) return ErrorReply(has.status());
    const CheckCounts total = ReadCheckCounts(**totals, 0);
    (*totals)->Reset();

    if (group_by == "day") {
      auto st = conn.Prepare(
          "SELECT day, SUM(checks), SUM(refused), SUM(offline_checks), SUM(offline_refused), "
          "SUM(disagreements) FROM check_days WHERE " +
          where + " GROUP BY day ORDER BY day");
      if (!st.ok()) return ErrorReply(st.status());
      bind(**st);
      std::map<std::string, CheckCounts> by_day;
      for (;;) {
        auto row = (*st)->Step();
        if (!row.ok()) return ErrorReply(row.status());
        if (!*row) break;
        by_day[(*st)->Text(0)] = ReadCheckCounts(**st, 1);
      }
      for (Date d = range->from; d <= range->to; d = d.AddDays(1)) {
        const auto it = by_day.find(d.ToString());
        json group = {{"key", d.ToString()}};
        AddCheckCounts(it == by_day.end() ? CheckCounts{} : it->second, &group);
        groups.push_back(std::move(group));
      }
    } else if (group_by == "station") {
      // Every station in scope, those without a check too: a station that never
      // checks is worth a regulator's look.
      std::map<std::string, CheckCounts> by_station;
      auto st = conn.Prepare(
          "SELECT station_id, SUM(checks), SUM(refused), SUM(offline_checks), "
          "SUM(offline_refused), SUM(disagreements) FROM check_days WHERE " +
          where + " GROUP BY station_id");
      if (!st.ok()) return ErrorReply(st.status());
      bind(**st);
      for (;;) {
        auto row = (*st)->Step();
        if (!row.ok()) return ErrorReply(row.status());
        if (!*row) break;
        by_station[(*st)->Text(0)] = ReadCheckCounts(**st, 1);
      }
      auto stations = conn.Prepare(
          "SELECT id, name, company_id FROM stations WHERE ($1 IS NULL OR company_id = $1) "
          "AND ($2 IS NULL OR id = $2)");
      if (!stations.ok()) return ErrorReply(stations.status());
      BindOptional(**stations, 1, *company);
      BindOptional(**stations, 2, *station);
      std::vector<json> list;
      for (;;) {
        auto row = (*stations)->Step();
        if (!row.ok()) return ErrorReply(row.status());
        if (!*row) break;
        const auto it = by_station.find((*stations)->Text(0));
        json group = {{"key", (*stations)->Text(0)},
                      {"name", (*stations)->Text(1)},
                      {"company_id", (*stations)->Text(2)}};
        AddCheckCounts(it == by_station.end() ? CheckCounts{} : it->second, &group);
        list.push_back(std::move(group));
      }
      std::sort(list.begin(), list.end(), [](const json& a, const json& b) {
        const auto ka =
            std::make_tuple(-a["refused"].get<std::int64_t>(), -a["checks"].get<std::int64_t>(),
                            a["key"].get<std::string>());
        const auto kb =
            std::make_tuple(-b["refused"].get<std::int64_t>(), -b["checks"].get<std::int64_t>(),
                            b["key"].get<std::string>());
        return ka < kb;
      });
      groups = list;
    } else {
      // A reason's group counts refusals naming it: its offline checks are its
      // offline refusals, and its disagreements those the registry would have
      // allowed. (An offline check the station allowed and the registry would
      // have refused names no reason of the station's: it is in the day's and the
      // station's disagreements, and a violation in the cylinder's history.)
      auto st = conn.Prepare(
          "SELECT reason, SUM(n) AS total, SUM(offline_n), SUM(disagreements) FROM refusal_days "
          "WHERE " +
          where + " GROUP BY reason ORDER BY total DESC, reason");
      if (!st.ok()) return ErrorReply(st.status());
      bind(**st);
      for (;;) {
        auto row = (*st)->Step();
        if (!row.ok()) return ErrorReply(row.status());
        if (!*row) break;
        if ((*st)->Int(1) == 0) continue;
        groups.push_back({{"key", (*st)->Text(0)},
                          {"refused", (*st)->Int(1)},
                          {"offline_checks", (*st)->Int(2)},
                          {"offline_refused", (*st)->Int(2)},
                          {"disagreements", (*st)->Int(3)}});
      }
    }
    json total_counts = json::object();
    AddCheckCounts(total, &total_counts);
    json out = {{"from", from},
                {"to", to},
                {"group_by", group_by},
                {"total", std::move(total_counts)},
                {"groups", groups}};
    if (*company) out["company_id"] = **company;
    if (*station) out["station_id"] = **station;
    return Okay(out);
  });
}

// ---- CSV ledgers --------------------------------------------------------------

void RegulatorReads::ExportFillsCsv(const Call& call, Store::Done done) {
  const int offset = policy_.utc_offset_minutes;
  const Date today = clock_->Now().LocalDate(offset);
  auto range = ParseRange(call.query, today);
  if (!range.ok()) return done(ErrorReply(range.status()));
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    auto company = CompanyScope(conn, call.who, call.query);
    if (!company.ok()) return ErrorReply(company.status());
    auto companies = Names(conn, "companies");
    if (!companies.ok()) return ErrorReply(companies.status());
    // Station by station on fills_by_station_time, then in time order: the
    // range's fills, whatever else the store holds. A fill is its station's
    // company's record (the filling unit's ledger, 充装记录).
    auto st = conn.Prepare(
        "SELECT f.ended_at, f.event_id, f.check_id, f.code, f.station_id, s.name, s.company_id, "
        "f.result, f.net_kg, e.body, c.model "
        "FROM stations s JOIN fills f ON f.station_id = s.id "
        "JOIN events e ON e.seq = f.seq LEFT JOIN cylinders c ON c.code = f.code "
        "WHERE ($3 IS NULL OR s.company_id = $3) AND f.ended_at >= $1 AND f.ended_at < $2 "
        "ORDER BY f.ended_at, f.seq");
    if (!st.ok()) return ErrorReply(st.status());
    (*st)
        ->Bind(1, DayStartMs(range->from, offset))
        .Bind(2, DayStartMs(range->to.AddDays(1), offset));
    BindOptional(**st, 3, *company);
    const std::string zone = ZoneName(offset);
    const std::string time_header = "充装结束时间 ended at (" + zone + ")";
    const std::string start_header = "开始时间 started at (" + zone + ")";
    CsvLedger csv({time_header.c_str(),
                   start_header.c_str(),
                   "充装记录号 fill id",
                   "检查号 check id",
                   "气瓶码 cylinder code",
                   "型号 model",
                   "充装单位 company id",
                   "充装单位名称 company name",
                   "充装站 station id",
                   "充装站名称 station name",
                   "操作员 operator id",
                   "秤 scale id",
                   "皮重 tare kg",
                   "充前毛重 gross before kg",
                   "充后毛重 gross after kg",
                   "净重 net kg",
                   "残液 residual kg",
                   "结果 result",
                   "充后检查 post checks",
                   "离线 offline"});
    for (;;) {
      auto row = (*st)->Step();
      if (!row.ok()) return ErrorReply(row.status());
      if (!*row) break;
      if (csv.rows() >= kMaxCsvRows) return ErrorReply(TooManyRows("fills ledger"));
      json body = json::parse((*st)->Text(9), nullptr, false);
      if (!body.is_object()) body = json::object();
      auto text = [&](const char* key) {
        auto it = body.find(key);
        csv.Text(it != body.end() && it->is_string() ? it->get<std::string>() : std::string());
      };
      auto number = [&](const char* key) {
        auto it = body.find(key);
        if (it != body.end() && it->is_number()) {
          csv.Number(it->get<double>());
        } else {
          csv.Empty();
        }
      };
      csv.Text(LocalTime(Instant{(*st)->Int(0)}, offset));
      auto started = Instant::Parse(body.value("started_at", ""));
      csv.Text(started.ok() ? LocalTime(*started, offset) : std::string());
      csv.Text((*st)->Text(1));
      csv.Text((*st)->Text(2));
      csv.Text((*st)->Text(3));
      csv.Text((*st)->Text(10));
      csv.Text((*st)->Text(6));
      csv.Text(NameOf(*companies, (*st)->Text(6)));
      csv.Text((*st)->Text(4));
      csv.Text((*st)->Text(5));
      text("operator_id");
      text("scale_id");
      number("tare_kg");
      number("gross_before_kg");
      number("gross_after_kg");
      if ((*st)->IsNull(8)) {
        csv.Empty();
      } else {
        csv.Number((*st)->Double(8));
      }
      number("residual_kg");
      csv.Text((*st)->Text(7));
      std::string checks;
      if (auto it = body.find("post_checks"); it != body.end() && it->is_object()) {
        for (const auto& item : it->items()) {
          if (!checks.empty()) checks += "; ";
          checks +=
              item.key() + "=" +
              (item.value().is_string() ? item.value().get<std::string>() : item.value().dump());
        }
      }
      csv.Text(checks);
      csv.Text(body.value("offline", false) ? "yes" : "no");
      csv.End();
    }
    return csv.Finish(FileName("fills", *company, *range));
  });
}

void RegulatorReads::ExportRefusedChecksCsv(const Call& call, Store::Done done) {
  const int offset = policy_.utc_offset_minutes;
  const Date today = clock_->Now().LocalDate(offset);
  auto range = ParseRange(call.query, today);
  if (!range.ok()) return done(ErrorReply(range.status()));
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    auto company = CompanyScope(conn, call.who, call.query);
    if (!company.ok()) return ErrorReply(company.status());
    auto station = StationFilter(conn, call.query, *company);
    if (!station.ok()) return ErrorReply(station.status());
    auto stations = Names(conn, "stations");
    if (!stations.ok()) return ErrorReply(stations.status());
    auto companies = Names(conn, "companies");
    if (!companies.ok()) return ErrorReply(companies.status());
    // The refusals table, by the index that fits the filter: the range's
    // refusals, never the log.
    const char* sql =
        *station ? "SELECT seq, at, station_id, company_id, operator_id, code, reasons, offline, "
                   "registry_decision, agrees FROM refusals "
                   "WHERE station_id = $3 AND day >= $1 AND day <= $2 ORDER BY day, seq"
        : *company
            ? "SELECT seq, at, station_id, company_id, operator_id, code, reasons, offline, "
              "registry_decision, agrees FROM refusals "
              "WHERE company_id = $4 AND day >= $1 AND day <= $2 ORDER BY day, seq"
            : "SELECT seq, at, station_id, company_id, operator_id, code, reasons, offline, "
              "registry_decision, agrees FROM refusals "
              "WHERE day >= $1 AND day <= $2 AND $3 IS NULL AND $4 IS NULL ORDER BY day, seq";
    auto st = conn.Prepare(sql);
    if (!st.ok()) return ErrorReply(st.status());
    (*st)->Bind(1, range->from.ToString()).Bind(2, range->to.ToString());
    BindOptional(**st, 3, *station);
    BindOptional(**st, 4, *company);
    const std::string time_header = "时间 time (" + ZoneName(offset) + ")";
    // The offline columns come last, so that a reader of the first ten keeps
    // working. `offline` as the fills ledger writes it (yes/no); a refusal made
    // online is the registry's own decision, so it is "block" and agrees.
    CsvLedger csv({time_header.c_str(), "检查号 check id", "气瓶码 cylinder code",
                   "充装单位 company id", "充装单位名称 company name", "充装站 station id",
                   "充装站名称 station name", "操作员 operator id", "拒绝原因 reasons",
                   "原因说明 reason titles", "离线判定 offline", "注册中心判定 registry decision",
                   "判定一致 agrees"});
    for (;;) {
      auto row = (*st)->Step();
      if (!row.ok()) return ErrorReply(row.status());
      if (!*row) break;
      if (csv.rows() >= kMaxCsvRows) return ErrorReply(TooManyRows("refused-checks ledger"));
      const auto [codes, titles] = ReasonTexts((*st)->Text(6));
      csv.Text(LocalTime(Instant{(*st)->Int(1)}, offset));
      csv.Text(EventId((*st)->Int(0)));
      csv.Text((*st)->Text(5));
      csv.Text((*st)->Text(3));
      csv.Text(NameOf(*companies, (*st)->Text(3)));
      csv.Text((*st)->Text(2));
      csv.Text(NameOf(*stations, (*st)->Text(2)));
      csv.Text((*st)->Text(4));
      csv.Text(codes);
      csv.Text(titles);
      const bool offline = (*st)->Int(7) != 0;
      csv.Text(offline ? "yes" : "no");
      csv.Text(offline && !(*st)->IsNull(8) ? (*st)->Text(8) : "block");
      csv.Text(!offline || (!(*st)->IsNull(9) && (*st)->Int(9) != 0) ? "yes" : "no");
      csv.End();
    }
    return csv.Finish(FileName("refused-checks", *station ? *station : *company, *range));
  });
}

void RegulatorReads::ExportHazardsCsv(const Call& call, Store::Done done) {
  const std::string state = Param(call.query, "state").value_or("all");
  if (state != "open" && state != "closed" && state != "all") {
    return done(ErrorReply(
        Status::Invalid(fmt::format("state must be open, closed or all, not '{}'", state))));
  }
  const int offset = policy_.utc_offset_minutes;
  const std::string today = clock_->Now().LocalDate(offset).ToString();
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    auto company = CompanyScope(conn, call.who, call.query);
    if (!company.ok()) return ErrorReply(company.status());
    // GetHazards' order: open by deadline (so those past it come first), then
    // closed.
    auto st = conn.Prepare(
        "SELECT h.id, h.code, h.item, h.cylinder, h.customer_id, c.name, c.district, c.address, "
        "h.company_id, h.responsible, h.opened_by, h.opened_at, h.deadline, h.state, "
        "h.closed_by, h.closed_at, h.how "
        "FROM hazards h LEFT JOIN customers c ON c.id = h.customer_id "
        "WHERE ($1 IS NULL OR h.company_id = $1) AND ($2 = 'all' OR h.state = $2) "
        "ORDER BY h.state <> 'open', h.deadline, h.id");
    if (!st.ok()) return ErrorReply(st.status());
    BindOptional(**st, 1, *company);
    (*st)->Bind(2, state);
    auto companies = Names(conn, "companies");
    if (!companies.ok()) return ErrorReply(companies.status());
    const std::string zone = ZoneName(offset);
    const std::string opened_header = "发现时间 opened at (" + zone + ")";
    const std::string closed_header = "整改时间 closed at (" + zone + ")";
    CsvLedger csv({"隐患编号 hazard id", "隐患 hazard code", "检查项 item", "气瓶码 cylinder code",
                   "用户 customer id", "用户名称 customer name", "区域 district", "地址 address",
                   "单位 company id", "单位名称 company name", "责任方 responsible",
                   "发现人 opened by", opened_header.c_str(), "整改期限 deadline", "状态 state",
                   "超期 overdue", "整改人 closed by", closed_header.c_str(), "整改措施 how"});
    for (;;) {
      auto row = (*st)->Step();
      if (!row.ok()) return ErrorReply(row.status());
      if (!*row) break;
      if (csv.rows() >= kMaxCsvRows) return ErrorReply(TooManyRows("hazards ledger"));
      for (int col = 0; col <= 10; ++col) {
        if (col == 9) csv.Text(NameOf(*companies, (*st)->Text(8)));
        csv.Text((*st)->Text(col));
      }
      csv.Text(LocalTime(Instant{(*st)->Int(11)}, offset));
      const std::string deadline = (*st)->Text(12), hazard_state = (*st)->Text(13);
      csv.Text(deadline);
      csv.Text(hazard_state);
      csv.Text(hazard_state == "open" && deadline < today ? "yes" : "no");
      csv.Text((*st)->Text(14));
      csv.Text((*st)->IsNull(15) ? std::string() : LocalTime(Instant{(*st)->Int(15)}, offset));
      csv.Text((*st)->Text(16));
      csv.End();
    }
    return csv.Finish(FileName(("hazards-" + state).c_str(), *company, std::nullopt));
  });
}

// ---- Foresight ----------------------------------------------------------------

void RegulatorReads::GetInspectionsDue(const Call& call, Store::Done done) {
  std::int64_t months = 12;
  if (auto text = Param(call.query, "months")) {
    if (!ParseWhole(*text, 1, 120, &months)) {
      return done(ErrorReply(Status::Invalid("months must be a whole number from 1 to 120")));
    }
  }
  const Date today = clock_->Now().LocalDate(policy_.utc_offset_minutes);
  const int first = MonthIndex(today.year(), today.month());
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    auto company = CompanyScope(conn, call.who, call.query);
    if (!company.ok()) return ErrorReply(company.status());
    auto companies =
        conn.Prepare("SELECT id, name FROM companies WHERE $1 IS NULL OR id = $1 ORDER BY id");
    if (!companies.ok()) return ErrorReply(companies.status());
    BindOptional(**companies, 1, *company);
    // The summary's rows of one company: bounded by the calendar (days a due
    // date can fall on, per model), whatever the size of its fleet.
    auto rows = conn.Prepare(
        "SELECT basis, model, base, n FROM due_counts WHERE company_id = $1 AND n > 0");
    if (!rows.ok()) return ErrorReply(rows.status());
    json list = json::array(), overdue = json::array();
    for (;;) {
      auto more = (*companies)->Step();
      if (!more.ok()) return ErrorReply(more.status());
      if (!*more) break;
      const std::string id = (*companies)->Text(0);
      std::vector<std::int64_t> counts(static_cast<size_t>(months), 0);
      std::int64_t late = 0;
      (*rows)->Reset();
      (*rows)->Bind(1, id);
      for (;;) {
        auto row = (*rows)->Step();
        if (!row.ok()) return ErrorReply(row.status());
        if (!*row) break;
        // NextInspectionDue's rule, from its inputs: the recorded date; else the
        // last inspection plus the model's interval; else the manufacture
        // year-month plus the interval, at the month's end.
        const std::int64_t basis = (*rows)->Int(0);
        const std::string base = (*rows)->Text(2);
        std::optional<Date> due;
        if (basis == 0) {
          if (auto d = Date::Parse(base); d.ok()) due = *d;
        } else if (const ModelRule* rule = policy_.FindModel((*rows)->Text(1))) {
          if (basis == 1) {
            if (auto d = Date::Parse(base); d.ok()) {
              due = d->AddYears(rule->inspection_interval_years);
            }
          } else if (auto ym = YearMonth::Parse(base); ym.ok()) {
            due = ym->AddYears(rule->inspection_interval_years).LastDay();
          }
        }
        if (!due) continue;
        const std::int64_t n = (*rows)->Int(3);
        if (*due < today) {
          late += n;
          continue;
        }
        const int index = MonthIndex(due->year(), due->month()) - first;
        if (index < months) counts[static_cast<size_t>(index)] += n;
      }
      std::int64_t total = 0;
      for (std::int64_t n : counts) total += n;
      list.push_back({{"company_id", id},
                      {"name", (*companies)->Text(1)},
                      {"counts", counts},
                      {"total", total}});
      overdue.push_back({{"company_id", id}, {"count", late}});
    }
    json month_names = json::array();
    for (int i = 0; i < months; ++i) month_names.push_back(MonthText(first + i));
    return Okay({{"today", today.ToString()},
                 {"months", month_names},
                 {"companies", list},
                 {"overdue", overdue}});
  });
}

void RegulatorReads::GetUnseen(const Call& call, Store::Done done) {
  std::int64_t months = 12;
  if (auto text = Param(call.query, "months")) {
    if (!ParseWhole(*text, 1, 120, &months)) {
      return done(ErrorReply(Status::Invalid("months must be a whole number from 1 to 120")));
    }
  }
  auto limit = PageLimit(call.query, kDefaultPage, kMaxPage);
  if (!limit.ok()) return done(ErrorReply(limit.status()));
  std::int64_t after_key = INT64_MIN;
  std::string after_code;
  if (auto cursor = Param(call.query, "cursor")) {
    if (!ParseKeyCursor(*cursor, &after_key, &after_code)) {
      return done(ErrorReply(
          Status::Malformed("cursor must be the next_cursor of an earlier page of this list")));
    }
  }
  const int offset = policy_.utc_offset_minutes;
  const Date today = clock_->Now().LocalDate(offset);
  // Unseen: last filled (or, never filled, registered) on or before the day N
  // months ago; one filled the day after has gone a day less than N months.
  const Date since = MonthsBefore(today, static_cast<int>(months));
  const std::int64_t before_ms = DayStartMs(since.AddDays(1), offset);
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    auto company = CompanyScope(conn, call.who, call.query);
    if (!company.ok()) return ErrorReply(company.status());
    auto owners = conn.Prepare("SELECT id FROM companies WHERE $1 IS NULL OR id = $1 ORDER BY id");
    if (!owners.ok()) return ErrorReply(owners.status());
    BindOptional(**owners, 1, *company);
    // Keyset-paged on cylinders_unseen_(un)filled, per owner: at most a page from
    // each index and owner, merged here, so that a page costs owners x its size.
    struct Candidate {
      std::int64_t key;  ///< last fill, or registration for one never filled
      json item;
    };
    std::vector<Candidate> found;
    static constexpr const char* kColumns =
        "SELECT code, owner_company_id, model, manufactured, last_inspection, "
        "next_inspection_due, last_fill_at, last_fill_station, registered_at FROM cylinders ";
    const std::string filled = std::string(kColumns) +
                               sql::IndexedBy(conn.dialect(), "cylinders_unseen_filled") +
                               " WHERE owner_company_id = $5 "
                               "AND state = 'active' AND last_fill_at IS NOT NULL "
                               "AND last_fill_at < $1 AND (last_fill_at, code) > ($2, $3) "
                               "ORDER BY last_fill_at, code LIMIT $4";
    const std::string unfilled =
        std::string(kColumns) + sql::IndexedBy(conn.dialect(), "cylinders_unseen_unfilled") +
        " WHERE owner_company_id = $5 "
        "AND state = 'active' AND last_fill_at IS NULL AND registered_at IS NOT NULL "
        "AND registered_at < $1 AND (registered_at, code) > ($2, $3) "
        "ORDER BY registered_at, code LIMIT $4";
    for (;;) {
      auto more = (*owners)->Step();
      if (!more.ok()) return ErrorReply(more.status());
      if (!*more) break;
      const std::string owner = (*owners)->Text(0);
      for (const std::string* sql : {&filled, &unfilled}) {
        auto st = conn.Prepare(*sql);
        if (!st.ok()) return ErrorReply(st.status());
        (*st)->Bind(1, before_ms).Bind(2, after_key).Bind(3, after_code).Bind(4, *limit + 1);
        (*st)->Bind(5, owner);
        for (;;) {
          auto row = (*st)->Step();
          if (!row.ok()) return ErrorReply(row.status());
          if (!*row) break;
          Cylinder c;
          c.code = (*st)->Text(0);
          c.owner_company_id = (*st)->Text(1);
          c.model = (*st)->Text(2);
          if (auto ym = YearMonth::Parse((*st)->Text(3)); ym.ok()) c.manufactured = *ym;
          if (auto d = Date::Parse((*st)->Text(4)); !(*st)->IsNull(4) && d.ok()) {
            c.last_inspection = *d;
          }
          if (auto d = Date::Parse((*st)->Text(5)); !(*st)->IsNull(5) && d.ok()) {
            c.next_inspection_due = *d;
          }
          const auto due = NextInspectionDue(policy_, c);
          json item = {{"code", c.code},
                       {"owner_company_id", c.owner_company_id},
                       {"model", c.model},
                       {"last_fill_at", nullptr},
                       {"last_fill_station", nullptr},
                       {"registered_at", nullptr},
                       {"next_inspection_due", due ? json(due->ToString()) : json(nullptr)}};
          std::int64_t key = 0;
          if (!(*st)->IsNull(6)) {
            key = (*st)->Int(6);
            item["last_fill_at"] = Instant{key}.ToString();
            item["last_fill_station"] = (*st)->Text(7);
          } else {
            key = (*st)->Int(8);
          }
          // 0: registered before the registry kept the time (store.cpp).
          if (!(*st)->IsNull(8) && (*st)->Int(8) > 0) {
            item["registered_at"] = Instant{(*st)->Int(8)}.ToString();
          }
          found.push_back({key, std::move(item)});
        }
      }
    }
    std::sort(found.begin(), found.end(), [](const Candidate& a, const Candidate& b) {
      return a.key != b.key ? a.key < b.key
                            : a.item["code"].get<std::string>() < b.item["code"].get<std::string>();
    });
    json list = json::array();
    json next = nullptr;
    for (Candidate& c : found) {
      if (static_cast<std::int64_t>(list.size()) == *limit) {
        const json& last = list.back();
        next = fmt::format("{}:{}", after_key, last["code"].get<std::string>());
        break;
      }
      after_key = c.key;
      list.push_back(std::move(c.item));
    }
    return Okay({{"months", months},
                 {"since", since.ToString()},
                 {"cylinders", list},
                 {"next_cursor", next}});
  });
}

// ---- Lists for the console ----------------------------------------------------

namespace {

// A keyset page by id: rows after `cursor` (the last id of the page before).
struct IdPage {
  std::int64_t limit = kDefaultPage;
  std::string after;  ///< "" for the first page
};

Result<IdPage> ParseIdPage(const std::map<std::string, std::string>& query) {
  IdPage page;
  PINGMA_ASSIGN_OR_RETURN(auto limit, PageLimit(query, kDefaultPage, kMaxPage));
  page.limit = limit;
  page.after = Param(query, "cursor").value_or("");
  return page;
}

// Steps `st` (which selects LIMIT page.limit + 1 rows) and gives each row to `add`;
// returns next_cursor, the id in column 0 of the page's last row, or null.
template <typename Add>
Result<json> CollectPage(sql::Statement& st, const IdPage& page, json* list, Add add) {
  std::string last;
  for (;;) {
    PINGMA_ASSIGN_OR_RETURN(auto row, st.Step());
    if (!row) return json(nullptr);
    if (static_cast<std::int64_t>(list->size()) == page.limit) return json(last);
    last = st.Text(0);
    list->push_back(add(st));
  }
}

// One page of a company's set-up table (stations, vehicles, couriers) in id order,
// scoped to the caller's company where it has one: `columns` selected from the
// table `table` aliased `t`, each row made into JSON by `add`, answered as
// {key: [...], next_cursor}.
template <typename Add>
Reply SetUpPage(Conn& conn, const Principal& who, const std::map<std::string, std::string>& query,
                const IdPage& page, const char* key, const char* columns, const char* table,
                Add add) {
  auto company = CompanyScope(conn, who, query);
  if (!company.ok()) return ErrorReply(company.status());
  auto st = conn.Prepare(fmt::format("SELECT {} FROM {} t WHERE {}t.id > $1 ORDER BY t.id LIMIT $2",
                                     columns, table, *company ? "t.company_id = $3 AND " : ""));
  if (!st.ok()) return ErrorReply(st.status());
  (*st)->Bind(1, page.after).Bind(2, page.limit + 1);
  if (*company) (*st)->Bind(3, **company);
  json list = json::array();
  auto next = CollectPage(**st, page, &list, add);
  if (!next.ok()) return ErrorReply(next.status());
  return Okay({{key, list}, {"next_cursor", *next}});
}

}  // namespace

void RegulatorReads::ListCompanies(const Call& call, Store::Done done) {
  auto page = ParseIdPage(call.query);
  if (!page.ok()) return done(ErrorReply(page.status()));
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    auto st = conn.Prepare(
        "SELECT id, name, license_number, license_valid_until, license_revoked FROM companies "
        "WHERE id > $1 ORDER BY id LIMIT $2");
    if (!st.ok()) return ErrorReply(st.status());
    (*st)->Bind(1, page->after).Bind(2, page->limit + 1);
    json list = json::array();
    auto next = CollectPage(**st, *page, &list, [](sql::Statement& s) {
      json license = nullptr;
      if (!s.IsNull(2)) {
        license = {{"number", s.Text(2)},
                   {"valid_until", s.IsNull(3) ? json(nullptr) : json(s.Text(3))},
                   {"revoked", s.Int(4) != 0}};
      }
      return json{{"id", s.Text(0)}, {"name", s.Text(1)}, {"filling_license", license}};
    });
    if (!next.ok()) return ErrorReply(next.status());
    return Okay({{"companies", list}, {"next_cursor", *next}});
  });
}

void RegulatorReads::ListStations(const Call& call, Store::Done done) {
  auto page = ParseIdPage(call.query);
  if (!page.ok()) return done(ErrorReply(page.status()));
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    return SetUpPage(conn, call.who, call.query, *page, "stations",
                     "t.id, t.company_id, t.name, t.district, t.locked, t.lock_reason", "stations",
                     [](sql::Statement& s) {
                       return json{{"id", s.Text(0)},         {"company_id", s.Text(1)},
                                   {"name", s.Text(2)},       {"district", s.Text(3)},
                                   {"locked", s.Int(4) != 0}, {"lock_reason", s.Text(5)}};
                     });
  });
}

void RegulatorReads::ListVehicles(const Call& call, Store::Done done) {
  auto page = ParseIdPage(call.query);
  if (!page.ok()) return done(ErrorReply(page.status()));
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    // With the courier bound to each (人车对应), if any.
    return SetUpPage(conn, call.who, call.query, *page, "vehicles",
                     "t.id, t.company_id, t.plate, t.kind, "
                     "(SELECT id FROM couriers WHERE vehicle_id = t.id)",
                     "vehicles", [](sql::Statement& s) {
                       return json{{"id", s.Text(0)},
                                   {"company_id", s.Text(1)},
                                   {"plate", s.Text(2)},
                                   {"kind", s.Text(3)},
                                   {"courier_id", s.IsNull(4) ? json(nullptr) : json(s.Text(4))}};
                     });
  });
}

void RegulatorReads::ListCouriers(const Call& call, Store::Done done) {
  auto page = ParseIdPage(call.query);
  if (!page.ok()) return done(ErrorReply(page.status()));
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    return SetUpPage(
        conn, call.who, call.query, *page, "couriers",
        "t.id, t.company_id, t.name, t.vehicle_id, t.zones, t.cert_number, t.cert_valid_until",
        "couriers", [](sql::Statement& s) {
          json zones = json::parse(s.Text(4), nullptr, false);
          json certificate = nullptr;
          if (!s.IsNull(5)) {
            certificate = {{"number", s.Text(5)},
                           {"valid_until", s.IsNull(6) ? json(nullptr) : json(s.Text(6))}};
          }
          return json{{"id", s.Text(0)},
                      {"company_id", s.Text(1)},
                      {"name", s.Text(2)},
                      {"vehicle", s.Text(3)},
                      {"zones", zones.is_array() ? zones : json::array()},
                      {"certificate", certificate}};
        });
  });
}

void RegulatorReads::ListCustomers(const Call& call, Store::Done done) {
  auto page = ParseIdPage(call.query);
  if (!page.ok()) return done(ErrorReply(page.status()));
  const std::string prefix = Param(call.query, "q").value_or("");
  if (prefix.size() > 128) {
    return done(ErrorReply(Status::Invalid("q is a name prefix of at most 128 bytes")));
  }
  // Found by phone through its keyed hash: the registry keeps no phone number.
  std::optional<std::string> phone_hash;
  if (auto phone = Param(call.query, "phone")) {
    if (Status s = CheckPhone(*phone); !s.ok()) return done(ErrorReply(s));
    if (settings_.customer_hash_key.empty()) {
      return done(ErrorReply(Status::Unavailable("the registry has no customer hash key")));
    }
    phone_hash = KeyedHash(settings_.customer_hash_key, "phone", *phone);
  }
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    std::optional<std::string> company;
    if (call.who.role == Role::kCourier) {
      // A courier picks among its own company's customers at the door.
      auto st = conn.Prepare("SELECT company_id FROM couriers WHERE id = $1");
      if (!st.ok()) return ErrorReply(st.status());
      (*st)->Bind(1, call.who.subject);
      auto row = (*st)->Step();
      if (!row.ok()) return ErrorReply(row.status());
      if (!*row) {
        return ErrorReply(Status::PermissionDenied(
            fmt::format("this token is for courier {}, who is not registered", call.who.subject)));
      }
      company = (*st)->Text(0);
      if (auto asked = Param(call.query, "company_id"); asked && *asked != *company) {
        return ErrorReply(Status::PermissionDenied(
            fmt::format("a courier sees only the customers of its company {}", *company)));
      }
    } else {
      auto scope = CompanyScope(conn, call.who, call.query);
      if (!scope.ok()) return ErrorReply(scope.status());
      company = *scope;
    }
    // In (name, id) order on customers_by_(company_)name; the cursor is the last
    // id, whose name is looked up, so that it stays a plain id.
    std::string after_name, after_id;
    if (!page->after.empty()) {
      auto st = conn.Prepare("SELECT name FROM customers WHERE id = $1");
      if (!st.ok()) return ErrorReply(st.status());
      (*st)->Bind(1, page->after);
      auto row = (*st)->Step();
      if (!row.ok()) return ErrorReply(row.status());
      if (!*row) {
        return ErrorReply(
            Status::Malformed("cursor must be the next_cursor of an earlier page of this list"));
      }
      after_name = (*st)->Text(0);
      after_id = page->after;
    }
    // Names from `prefix` up to the first text past every name that starts with
    // it: the prefix with its last byte raised (0xFF never occurs in UTF-8).
    std::optional<std::string> upper;
    if (!prefix.empty()) {
      std::string u = prefix;
      while (!u.empty() && static_cast<unsigned char>(u.back()) == 0xFF) u.pop_back();
      if (!u.empty()) {
        u.back() = static_cast<char>(static_cast<unsigned char>(u.back()) + 1);
        upper = u;
      }
    }
    const std::string columns =
        "SELECT id, company_id, name, phone_masked, id_masked, address, district, kind, basement, "
        "semi_basement, cylinder_room, outdoor FROM customers ";
    const std::string range =
        "name >= $1 AND ($2 IS NULL OR name < $2) AND (name, id) > ($3, $4) "
        "ORDER BY name, id LIMIT $5";
    std::string where = "WHERE ";
    int next_param = 6;
    const int company_param = company ? next_param++ : 0;
    const int phone_param = phone_hash ? next_param++ : 0;
    if (company) where += fmt::format("company_id = ${} AND ", company_param);
    if (phone_hash) where += fmt::format("phone_hash = ${} AND ", phone_param);
    auto st = conn.Prepare(columns + where + range);
    if (!st.ok()) return ErrorReply(st.status());
    (*st)->Bind(1, prefix);
    BindOptional(**st, 2, upper);
    (*st)->Bind(3, after_name).Bind(4, after_id).Bind(5, page->limit + 1);
    if (company) (*st)->Bind(company_param, *company);
    if (phone_hash) (*st)->BindBlob(phone_param, phone_hash->data(), phone_hash->size());
    json list = json::array();
    // Only the masked phone and ID number: the registry keeps nothing else of them.
    auto next = CollectPage(**st, *page, &list, [](sql::Statement& s) {
      return json{{"id", s.Text(0)},
                  {"company_id", s.Text(1)},
                  {"name", s.Text(2)},
                  {"phone", s.Text(3)},
                  {"id_number", s.Text(4)},
                  {"address", s.Text(5)},
                  {"district", s.Text(6)},
                  {"kind", s.Text(7)},
                  {"site",
                   {{"basement", s.Int(8) != 0},
                    {"semi_basement", s.Int(9) != 0},
                    {"cylinder_room", s.Int(10) != 0},
                    {"outdoor", s.Int(11) != 0}}}};
    });
    if (!next.ok()) return ErrorReply(next.status());
    return Okay({{"customers", list}, {"next_cursor", *next}});
  });
}

void RegulatorReads::ListPublicReports(const Call& call, Store::Done done) {
  auto limit = PageLimit(call.query, kDefaultPage, kMaxPage);
  if (!limit.ok()) return done(ErrorReply(limit.status()));
  std::int64_t before = INT64_MAX;
  if (auto cursor = Param(call.query, "cursor")) {
    auto seq = SeqOfEventId(*cursor);
    if (!seq) {
      return done(ErrorReply(
          Status::Malformed("cursor must be the next_cursor of an earlier page of this list")));
    }
    before = *seq;
  }
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    // Newest first on events_public_reports, a partial index of the log that holds
    // the reports alone.
    auto st = conn.Prepare("SELECT seq, id, code, at, body FROM events " +
                           sql::IndexedBy(conn.dialect(), "events_public_reports") +
                           " WHERE type = 'public_report' AND seq < $1 ORDER BY seq DESC LIMIT $2");
    if (!st.ok()) return ErrorReply(st.status());
    (*st)->Bind(1, before).Bind(2, *limit + 1);
    json list = json::array();
    json next = nullptr;
    std::string last;
    for (;;) {
      auto row = (*st)->Step();
      if (!row.ok()) return ErrorReply(row.status());
      if (!*row) break;
      if (static_cast<std::int64_t>(list.size()) == *limit) {
        next = last;
        break;
      }
      json body = json::parse((*st)->Text(4), nullptr, false);
      if (!body.is_object()) body = json::object();
      if (Status s = ShowPersonalData(conn, &body, "contact"); !s.ok()) return ErrorReply(s);
      last = (*st)->Text(1);
      json report = {{"id", last},
                     {"code", (*st)->Text(2)},
                     {"at", Instant{(*st)->Int(3)}.ToString()},
                     {"category", body.value("category", "")},
                     {"text", body.value("text", "")},
                     {"contact", body["contact"].is_string() ? body["contact"] : json("")},
                     {"registered", body.value("registered", false)}};
      for (const char* extra : {"contact_id", "contact_erased"}) {
        if (body.contains(extra)) report[extra] = body[extra];
      }
      list.push_back(std::move(report));
    }
    return Okay({{"reports", list}, {"next_cursor", next}});
  });
}

}  // namespace pingma::registry
