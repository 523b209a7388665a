// The public page /c/{code}: the URL a label's QR carries. Anyone who scans a
// cylinder sees, without a token, whether it may be used, who owns it, its last
// fill and its next inspection, the complaint line, and a form to report a
// problem. So it shows nothing personal and nothing that helps to forge a label:
// no tare, serial, registration number or carriers. Everything from the database
// is HTML-escaped.
#include <algorithm>
#include <ctime>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <tuple>

#include <fmt/format.h>

#include "cases/personal_data.h"
#include "cases/public_page.h"

#include "cases/queries.h"
#include "cases/verifiable_log.h"
#include "http/fields.h"
#include "pingma/scanner/scan.h"

namespace pingma::registry {
namespace {

/// What a member of the public may report: a fixed list, so that regulators can
/// count them.
struct ReportCategory {
  const char* id;
  const char* zh;
  const char* en;
};
constexpr ReportCategory kCategories[] = {
    {"suspected_fake", "标签或二维码疑似伪造", "The label or QR code looks forged"},
    {"damaged", "瓶体损坏、锈蚀或变形", "Cylinder damaged, corroded or deformed"},
    {"leak", "漏气或有异味", "Gas leak or smell of gas"},
    {"short_weight", "充装量不足（缺斤短两）", "Short weight"},
    {"illegal_seller", "无证经营或私自充装", "Unlicensed seller or illegal refilling"},
    {"out_of_date", "超期未检或报废气瓶仍在使用", "Overdue or scrapped cylinder in use"},
    {"other", "其他问题", "Something else"},
};
constexpr size_t kMaxReportChars = 500;
constexpr size_t kMaxContactChars = 100;

std::string Escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

// Counts the characters of well-formed UTF-8 without control characters other
// than tab and line breaks; nullopt when the text is not that.
std::optional<size_t> CountChars(std::string_view s) {
  size_t count = 0;
  for (size_t i = 0; i < s.size(); ++count) {
    const auto [cp, len] = DecodeUtf8(s, i);
    if (len == 0) return std::nullopt;
    if ((cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0x7f) return std::nullopt;
    i += len;
  }
  return count;
}

constexpr const char* kStyle = R"css(
*{box-sizing:border-box}
body{margin:0;background:#f3f4f6;color:#1f2937;font:17px/1.6 system-ui,-apple-system,"PingFang SC","Noto Sans CJK SC","Microsoft YaHei",sans-serif}
main{max-width:34rem;margin:0 auto;padding:1rem}
.brand{margin:0 0 .75rem;font-size:.9rem;color:#374151}
.brand strong{color:#111827}
.card{background:#fff;border-radius:12px;padding:1rem 1.1rem;margin:0 0 1rem;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.verdict{border:3px solid;text-align:center;padding:1.25rem 1rem}
.verdict h1{margin:0;font-size:2rem;line-height:1.3}
.verdict .en{display:block;font-size:1.05rem;font-weight:600;margin-top:.25rem}
.verdict .mark{display:block;font-size:3rem;line-height:1}
.ok{background:#e7f6ec;border-color:#137333;color:#0b5323}
.bad{background:#fdeceb;border-color:#b3261e;color:#8c1d18}
.unknown{background:#fff4e0;border-color:#9a5b00;color:#6b3f00}
.code{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:1.15rem;letter-spacing:.04em;margin:.5rem 0 0;color:#1f2937}
h2{font-size:1.2rem;margin:0 0 .5rem}
.en{color:inherit}
dl{margin:0}
dt{font-weight:600;margin-top:.6rem}
dt:first-child{margin-top:0}
dd{margin:0}
.sub{font-size:.9rem;color:#4b5563}
ul.reasons{margin:.25rem 0 0;padding-left:1.2rem}
.hotline a{font-size:1.6rem;font-weight:700;color:#0b57d0}
fieldset{border:0;padding:0;margin:0 0 .75rem}
legend{font-weight:600;margin-bottom:.25rem}
.choice{display:flex;gap:.5rem;align-items:flex-start;padding:.35rem 0}
.choice input{width:1.2rem;height:1.2rem;margin-top:.25rem;flex:none}
label.field{display:block;font-weight:600;margin:.5rem 0 .25rem}
textarea,input[type=text]{width:100%;font:inherit;padding:.5rem;border:1px solid #6b7280;border-radius:8px;background:#fff;color:#111827}
textarea{min-height:6rem}
button{margin-top:.75rem;width:100%;font:inherit;font-weight:700;padding:.75rem;border:0;border-radius:8px;background:#0b57d0;color:#fff}
button:focus,input:focus,textarea:focus{outline:3px solid #f59e0b;outline-offset:2px}
.error{border-left:5px solid #b3261e}
footer{font-size:.85rem;color:#4b5563;text-align:center;padding:.5rem 0 1.5rem}
)css";

// The whole document around `body`.
std::string Page(std::string_view title, std::string_view body) {
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<meta name=\"robots\" content=\"noindex\">\n<title>{}</title>\n<style>{}</style>\n"
      "</head>\n<body>\n<main>\n"
      "<p class=\"brand\"><strong>瓶码</strong> 液化石油气钢瓶追溯 · "
      "<span lang=\"en\">LPG cylinder traceability</span></p>\n{}"
      "<footer>一瓶一码 · <span lang=\"en\">one cylinder, one code</span></footer>\n"
      "</main>\n</body>\n</html>\n",
      Escape(title), kStyle, body);
}

Reply HtmlReply(int status, std::string_view title, std::string_view body) {
  Reply r;
  r.status = status;
  r.raw_content_type = "text/html; charset=utf-8";
  r.raw_body = Page(title, body);
  // Nothing on it is for caches to keep: a cylinder's verdict changes.
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                         "frame-ancestors 'none'; base-uri 'none'");
  return r;
}

// A page that only says something went wrong, with a way back.
Reply MessagePage(int status, std::string_view zh, std::string_view en,
                  std::string_view back_href = {}) {
  std::string body = fmt::format(
      "<section class=\"card error\" aria-labelledby=\"msg\">\n<h1 id=\"msg\">{}</h1>\n"
      "<p lang=\"en\">{}</p>\n",
      Escape(zh), Escape(en));
  if (!back_href.empty()) {
    body += fmt::format("<p><a href=\"{}\">返回 <span lang=\"en\">Back</span></a></p>\n",
                        Escape(back_href));
  }
  body += "</section>\n";
  return HtmlReply(status, zh, body);
}

std::string HotlineCard(const std::string& hotline) {
  std::string digits;
  for (char c : hotline) {
    if ((c >= '0' && c <= '9') || c == '+') digits.push_back(c);
  }
  return fmt::format(
      "<section class=\"card hotline\" aria-labelledby=\"hl\">\n"
      "<h2 id=\"hl\">举报电话 <span lang=\"en\">Complaint hotline</span></h2>\n"
      "<p><a href=\"tel:{}\">{}</a></p>\n"
      "<p class=\"sub\">发现黑气瓶、漏气或违规充装，请拨打或在下方报告。"
      "<span lang=\"en\">Call, or report below, if you see an unregistered cylinder, a leak or "
      "illegal filling.</span></p>\n</section>\n",
      Escape(digits), Escape(hotline));
}

std::string ReportForm(const std::string& code) {
  std::string choices;
  for (const ReportCategory& c : kCategories) {
    choices += fmt::format(
        "<div class=\"choice\"><input type=\"radio\" id=\"cat-{0}\" name=\"category\" "
        "value=\"{0}\" required><label for=\"cat-{0}\">{1} <span lang=\"en\" "
        "class=\"sub\">{2}</span></label></div>\n",
        c.id, c.zh, c.en);
  }
  return fmt::format(
      "<section class=\"card\" aria-labelledby=\"rp\">\n"
      "<h2 id=\"rp\">报告问题 <span lang=\"en\">Report a problem</span></h2>\n"
      "<form method=\"post\" action=\"/c/{0}/report\" accept-charset=\"utf-8\">\n"
      "<fieldset>\n<legend>问题类型 <span lang=\"en\">What is wrong</span></legend>\n{1}"
      "</fieldset>\n"
      "<label class=\"field\" for=\"text\">情况说明（选填，最多 {2} 字）"
      "<span lang=\"en\" class=\"sub\"> Details (optional, up to {2} characters)</span>"
      "</label>\n<textarea id=\"text\" name=\"text\" maxlength=\"{2}\"></textarea>\n"
      "<label class=\"field\" for=\"contact\">联系方式（选填）"
      "<span lang=\"en\" class=\"sub\"> Contact (optional)</span></label>\n"
      "<input type=\"text\" id=\"contact\" name=\"contact\" maxlength=\"{3}\" "
      "autocomplete=\"tel\" aria-describedby=\"contact-note\">\n"
      "<p class=\"sub\" id=\"contact-note\">仅监管部门可见。<span lang=\"en\">Only the "
      "regulator sees it.</span></p>\n"
      "<button type=\"submit\">提交报告 <span lang=\"en\">Send report</span></button>\n"
      "</form>\n</section>\n",
      Escape(code), choices, kMaxReportChars, kMaxContactChars);
}

// One text field of a report, from JSON or a form: absent is nullopt.
Status ReportField(const json* body, const std::map<std::string, std::string>& form,
                   const char* key, std::optional<std::string>* out) {
  if (body != nullptr) {
    auto it = body->find(key);
    if (it == body->end() || it->is_null()) return Status::Ok();
    if (!it->is_string()) return Status::Invalid(fmt::format("{} must be text", key));
    *out = it->get<std::string>();
  } else if (auto it = form.find(key); it != form.end()) {
    *out = it->second;
  }
  return Status::Ok();
}

// Where the cylinder's newest event is in the verifiable log, and the first
// signed head that holds it: what lets anyone check that its record has not been
// rewritten since (GET /v1/log/proof/inclusion).
Result<std::string> LoggedLine(Conn& conn, const std::string& code, int utc_offset_minutes) {
  PINGMA_ASSIGN_OR_RETURN(auto last, VerifiableLog::LastEventOf(conn, code));
  if (!last) return std::string("—");
  PINGMA_ASSIGN_OR_RETURN(json where, VerifiableLog::WhereLogged(conn, *last));
  if (where["log_index"].is_null()) {  // committed, not yet sequenced (PostgreSQL)
    return std::string(
        "最近一条记录正在编入公开日志，签名树头数秒内生成 <span lang=\"en\" class=\"sub\">Its "
        "latest record is being added to the public log; a signed tree head will hold it "
        "within seconds</span>");
  }
  const std::uint64_t index = where["log_index"];
  const json& head = where["signed_head"];
  if (head.is_null()) {
    return fmt::format(
        "最近一条记录为第 {} 条，签名树头数秒内生成 <span lang=\"en\" class=\"sub\">Its latest "
        "record is entry {}; a signed tree head will hold it within seconds</span>",
        index, index);
  }
  const std::uint64_t size = head["tree_size"];
  // The head's time on the clock of the policy's zone, to the second.
  const std::time_t seconds = static_cast<std::time_t>(
      head["timestamp"].get<std::int64_t>() / 1000 + std::int64_t{utc_offset_minutes} * 60);
  std::tm t{};
  gmtime_r(&seconds, &t);
  const std::string signed_at = fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", t.tm_year + 1900,
                                            t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec);
  return fmt::format(
      "最近一条记录为第 {} 条，已收入 {} 签名的树头（共 {} 条）<span lang=\"en\" "
      "class=\"sub\">Its latest record is entry {}, in the tree head of {} entries signed at "
      "{}</span>",
      index, signed_at, size, index, size, signed_at);
}

bool WantsJson(const Request& request) {
  return request.content_type.rfind("application/json", 0) == 0;
}

}  // namespace

void PublicPage::Handle(const Request& request, const std::vector<std::string_view>& parts,
                        Store::Done done) {
  const bool page = parts.size() == 2;
  const bool report = parts.size() == 3 && parts[2] == "report";
  if (!page && !report) {
    return done(MessagePage(404, "没有这个页面", "No such page."));
  }
  const std::string raw_code = DecodePercent(parts[1], false);
  const char* method = page ? "GET" : "POST";
  if (request.method != method) {
    Reply r = MessagePage(405, "不支持此操作", fmt::format("{} is not allowed here.", method));
    r.headers.emplace_back("Allow", method);
    return done(std::move(r));
  }
  if (page) {
    // As for the /v1/ reads: nothing is shown that a power loss could still undo.
    done = [store = store_, done = std::move(done)](Reply reply) {
      store->WhenDurable([done, reply = std::move(reply)]() mutable { done(std::move(reply)); });
    };
    return GetPage(request, raw_code, std::move(done));
  }
  PostReport(request, raw_code, std::move(done));
}

void PublicPage::GetPage(const Request&, const std::string& raw_code, Store::Done done) {
  auto normal = NormaliseCode(raw_code);
  if (!normal.ok()) {
    return done(MessagePage(404, "这不是有效的气瓶码",
                            "This is not a valid cylinder code. If it was on a cylinder, "
                            "call the hotline: " +
                                settings_.hotline + "."));
  }
  const std::string code = *normal;
  const Instant now = clock_->Now();
  ReadReply(std::move(done), [&](Conn& conn) -> Reply {
    auto row = LoadCylinder(conn, code, /*with_carriers=*/false);
    if (!row.ok()) return ErrorReply(row.status());
    if (!*row) {
      // A black cylinder (黑气瓶) or a forged label: say so, and ask for a report.
      std::string body = fmt::format(
          "<section class=\"card verdict unknown\" aria-labelledby=\"verdict\">\n"
          "<h1 id=\"verdict\"><span class=\"mark\" aria-hidden=\"true\">?</span>"
          "查无此瓶，请勿使用<span class=\"en\" lang=\"en\">Unknown code — do not use "
          "this cylinder</span></h1>\n<p class=\"code\">{}</p>\n</section>\n"
          "<section class=\"card\"><p>此码未在登记系统中找到，可能是未登记的“黑气瓶”或伪造标签。"
          "请勿使用，并报告您在哪里见到它。</p><p lang=\"en\" class=\"sub\">This code is not "
          "registered: the cylinder may be unregistered or its label forged. Do not use it, "
          "and tell us where you saw it.</p></section>\n{}{}",
          Escape(code), HotlineCard(settings_.hotline), ReportForm(code));
      return HtmlReply(404, "查无此瓶 " + code, body);
    }
    const Cylinder& c = (*row)->cylinder;
    auto recalls = LoadRecalls(conn, c.manufacturer);
    if (!recalls.ok()) return ErrorReply(recalls.status());
    const FillDecision d = DecideCylinder(policy_, c, *recalls, now);

    std::string owner = c.owner_company_id;
    auto company = conn.Prepare("SELECT name FROM companies WHERE id = $1");
    if (!company.ok()) return ErrorReply(company.status());
    (*company)->Bind(1, c.owner_company_id);
    auto found = (*company)->Step();
    if (!found.ok()) return ErrorReply(found.status());
    if (*found) owner = (*company)->Text(0);

    std::string last_fill = "暂无充装记录 <span lang=\"en\" class=\"sub\">No fill on record</span>";
    if (const auto& fill = (*row)->last_fill) {
      std::string station = fill->station_id;
      auto st = conn.Prepare("SELECT name FROM stations WHERE id = $1");
      if (!st.ok()) return ErrorReply(st.status());
      (*st)->Bind(1, fill->station_id);
      auto has = (*st)->Step();
      if (!has.ok()) return ErrorReply(has.status());
      if (*has) station = (*st)->Text(0);
      last_fill = fmt::format("{}，{}", Escape(station),
                              fill->at.LocalDate(policy_.utc_offset_minutes).ToString());
    }
    const auto due = NextInspectionDue(policy_, c);
    auto logged = LoggedLine(conn, code, policy_.utc_offset_minutes);
    if (!logged.ok()) return ErrorReply(logged.status());

    std::string verdict;
    if (d.allowed()) {
      verdict =
          "<section class=\"card verdict ok\" aria-labelledby=\"verdict\">\n"
          "<h1 id=\"verdict\"><span class=\"mark\" aria-hidden=\"true\">✓</span>合格气瓶，"
          "可以使用<span class=\"en\" lang=\"en\">Registered and in date — may be used"
          "</span></h1>\n";
    } else {
      verdict =
          "<section class=\"card verdict bad\" aria-labelledby=\"verdict\">\n"
          "<h1 id=\"verdict\"><span class=\"mark\" aria-hidden=\"true\">✗</span>禁止使用"
          "<span class=\"en\" lang=\"en\">Do not use this cylinder</span></h1>\n";
    }
    verdict += fmt::format("<p class=\"code\">{}</p>\n", Escape(code));
    if (!d.allowed()) {
      // The titles only: the detailed messages name licences and stations.
      verdict += "<ul class=\"reasons\">\n";
      for (const Reason& r : d.reasons) {
        verdict += fmt::format("<li>{} <span lang=\"en\">{}</span></li>\n", TitleZh(r.code),
                               TitleEn(r.code));
      }
      verdict += "</ul>\n";
    }
    verdict += "</section>\n";

    std::string facts = fmt::format(
        "<section class=\"card\" aria-labelledby=\"facts\">\n"
        "<h2 id=\"facts\">气瓶信息 <span lang=\"en\">About this cylinder</span></h2>\n<dl>\n"
        "<dt>产权单位 <span lang=\"en\" class=\"sub\">Owner</span></dt><dd>{}</dd>\n"
        "<dt>型号 <span lang=\"en\" class=\"sub\">Model</span></dt><dd>{}</dd>\n"
        "<dt>最近充装 <span lang=\"en\" class=\"sub\">Last filled</span></dt><dd>{}</dd>\n"
        "<dt>下次检验 <span lang=\"en\" class=\"sub\">Next inspection due</span></dt>"
        "<dd>{}</dd>\n"
        "<dt>公开日志 <span lang=\"en\" class=\"sub\">Public log</span></dt><dd>{}</dd>\n"
        "</dl>\n</section>\n",
        Escape(owner), Escape(c.model), last_fill, due ? due->ToString() : std::string("—"),
        *logged);
    return HtmlReply(200, fmt::format("{} {}", d.allowed() ? "合格气瓶" : "禁止使用", code),
                     verdict + facts + HotlineCard(settings_.hotline) + ReportForm(code));
  });
}

bool PublicPage::TakeReportSlot(const std::string& client, std::int64_t* retry_after_s) {
  return reports_.Take(AddressKey(client), clock_->Now().unix_ms, retry_after_s);
}

void PublicPage::PostReport(const Request& request, const std::string& raw_code, Store::Done done) {
  const bool wants_json = WantsJson(request);
  // Bad input answers in kind: JSON errors as API.md has them, or a page.
  auto normal = NormaliseCode(raw_code);
  auto refuse = [&](int status, std::string_view zh, const Status& why) {
    if (wants_json) {
      Reply r = ErrorReply(why);
      r.status = status;
      return done(std::move(r));
    }
    done(MessagePage(status, zh, why.message(), normal.ok() ? "/c/" + *normal : std::string()));
  };
  if (!normal.ok()) {
    return refuse(404, "这不是有效的气瓶码", Status::NotFound(normal.status().message()));
  }
  const std::string code = *normal;
  if (request.body.size() > kMaxPublicBody) {
    return refuse(413, "内容过长",
                  Status::TooLarge(fmt::format("a report is at most {} bytes", kMaxPublicBody)));
  }
  json parsed;
  std::map<std::string, std::string> form;
  if (wants_json) {
    parsed = json::parse(request.body, nullptr, false);
    if (!parsed.is_object()) {
      return refuse(400, "无法读取报告", Status::Malformed("the body is not a JSON object"));
    }
  } else {
    form = ParseFormFields(request.body);
  }
  std::optional<std::string> category, text, contact;
  Status s = ReportField(wants_json ? &parsed : nullptr, form, "category", &category);
  if (s.ok()) s = ReportField(wants_json ? &parsed : nullptr, form, "text", &text);
  if (s.ok()) s = ReportField(wants_json ? &parsed : nullptr, form, "contact", &contact);
  const ReportCategory* kind = nullptr;
  if (s.ok()) {
    for (const ReportCategory& c : kCategories) {
      if (category && *category == c.id) kind = &c;
    }
    if (kind == nullptr) {
      std::string ids;
      for (const ReportCategory& c : kCategories)
        ids += (ids.empty() ? "" : ", ") + std::string(c.id);
      s = Status::Invalid(fmt::format("category must be one of: {}", ids));
    }
  }
  for (auto [field, value, limit] : {std::tuple{"text", &text, kMaxReportChars},
                                     std::tuple{"contact", &contact, kMaxContactChars}}) {
    if (!s.ok() || !*value) continue;
    auto chars = CountChars(**value);
    if (!chars) {
      s = Status::Invalid(fmt::format("{} must be UTF-8 text without control characters", field));
    } else if (*chars > limit) {
      s = Status::Invalid(fmt::format("{} is {} characters; at most {}", field, *chars, limit));
    }
  }
  if (!s.ok()) return refuse(422, "报告未提交：请检查填写内容", s);

  std::int64_t retry_after = 0;
  if (!TakeReportSlot(request.client, &retry_after)) {
    const std::string en = fmt::format(
        "Too many reports from this network: at most {} in {} minutes. Try again in {} "
        "minute(s), or call the hotline {}.",
        kReportsPerWindow, kReportWindowMs / 60000, (retry_after + 59) / 60, settings_.hotline);
    Reply r = wants_json ? ErrorReply(Status::Unavailable(en))
                         : MessagePage(429, "提交过于频繁，请稍后再试", en, "/c/" + code);
    r.status = 429;
    if (wants_json) r.body["error"]["code"] = "TOO_MANY_REQUESTS";
    r.headers.emplace_back("Retry-After", std::to_string(retry_after));
    return done(std::move(r));
  }

  json event = {{"code", code}, {"category", kind->id}};
  if (text && !text->empty()) event["text"] = *text;
  // The client's address is not kept: the rate limit needs it only in memory.
  Write(std::move(done),
        [this, code, event, contact, wants_json, kind](WriteTx& tx) mutable -> Reply {
          // The reporter's own choice to be reached; only regulators see it (GetHistory),
          // and it is kept outside the log, for contact_retention_days or until erased.
          if (contact && !contact->empty()) {
            auto ref = KeepPersonalData(tx, code, "contact", *contact);
            if (!ref.ok()) return ErrorReply(ref.status());
            event["contact_ref"] = std::move(*ref);
          }
          auto st = tx.conn().Prepare("SELECT 1 FROM cylinders WHERE code = $1");
          if (!st.ok()) return ErrorReply(st.status());
          (*st)->Bind(1, code);
          auto registered = (*st)->Step();
          if (!registered.ok()) return ErrorReply(registered.status());
          // A report of an unregistered code is kept too: where black cylinders are seen.
          event["registered"] = *registered;
          auto seq =
              tx.Append({"", code, "public_report", tx.now(), "public", "anonymous", event.dump()});
          if (!seq.ok()) return ErrorReply(seq.status());
          const std::string id = EventId(*seq);
          if (wants_json) {
            Reply r;
            r.status = 201;
            r.body = {{"report_id", id}, {"code", code}, {"category", kind->id}};
            return r;
          }
          return HtmlReply(
              201, "已收到您的报告",
              fmt::format("<section class=\"card verdict ok\" aria-labelledby=\"thanks\">\n"
                          "<h1 id=\"thanks\">已收到您的报告<span class=\"en\" lang=\"en\">Report "
                          "received — thank you</span></h1>\n</section>\n"
                          "<section class=\"card\"><dl>\n"
                          "<dt>气瓶码 <span lang=\"en\" class=\"sub\">Code</span></dt><dd>{}</dd>\n"
                          "<dt>问题类型 <span lang=\"en\" class=\"sub\">Problem</span></dt>"
                          "<dd>{} <span lang=\"en\" class=\"sub\">{}</span></dd>\n"
                          "<dt>受理编号 <span lang=\"en\" class=\"sub\">Reference</span></dt>"
                          "<dd>{}</dd>\n</dl>\n"
                          "<p>监管部门将核查处理。紧急情况（如漏气）请立即远离并拨打 119。</p>"
                          "<p lang=\"en\" class=\"sub\">The regulator will follow it up. In an "
                          "emergency (a leak), get away and call 119.</p>\n"
                          "<p><a href=\"/c/{}\">返回气瓶页面 <span lang=\"en\">Back to the "
                          "cylinder</span></a></p></section>\n",
                          Escape(code), kind->zh, kind->en, Escape(id), Escape(code)));
        });
}

}  // namespace pingma::registry
