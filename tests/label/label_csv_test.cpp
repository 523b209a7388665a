// pingma-label's pure half: the label CSV, the label fields and the symbol's URL.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "label.h"

using pingma::StatusCode;
using pingma::label::CsvLimits;
using pingma::label::LabelContent;
using pingma::label::MakeLabelContent;
using pingma::label::NormaliseBase;
using pingma::label::ParseLabelCsv;
using pingma::label::SymbolText;

namespace {

struct Good {
  const char* name;
  std::string csv;
  std::vector<LabelContent> want;
};

struct Bad {
  const char* name;
  std::string csv;
  StatusCode code;
  std::vector<std::string> message_has;  // every one must be in the message
};

}  // namespace

TEST_CASE("ParseLabelCsv accepts RFC 4180 text and normalises the fields") {
  const std::vector<Good> cases = {
      {"header, LF",
       "code,model,owner\nHB01,YSP12,Acme\nHB02,YSP35.5,测试燃气\n",
       {{"HB01", "YSP12", "Acme"}, {"HB02", "YSP35.5", "测试燃气"}}},
      {"BOM and CRLF",
       "\xEF\xBB\xBF"
       "code,model,owner\r\nHB01,YSP12,Acme\r\n",
       {{"HB01", "YSP12", "Acme"}}},
      {"header in capitals with spaces",
       " Code , MODEL ,Owner\nHB01,YSP12,Acme\n",
       {{"HB01", "YSP12", "Acme"}}},
      {"no header",
       "HB01,YSP12,Acme\nHB02,YSP12,Beta",
       {{"HB01", "YSP12", "Acme"}, {"HB02", "YSP12", "Beta"}}},
      {"quoted comma and doubled quotes",
       "HB01,YSP12,\"Acme, \"\"Gas\"\" Ltd\"\n",
       {{"HB01", "YSP12", "Acme, \"Gas\" Ltd"}}},
      {"quoted code and model", "\"HB01\",\"YSP118-II\",B\n", {{"HB01", "YSP118-II", "B"}}},
      {"blank lines skipped",
       "\ncode,model,owner\n\nHB01,YSP12,A\n\r\n\nHB02,YSP12,B\n\n",
       {{"HB01", "YSP12", "A"}, {"HB02", "YSP12", "B"}}},
      {"code upper-cased and trimmed, model case-insensitive, owner trimmed",
       " hb-01.x_9 ,ysp4.7,  河北测试燃气有限公司  \n",
       {{"HB-01.X_9", "YSP4.7", "河北测试燃气有限公司"}}},
  };
  for (const Good& c : cases) {
    CAPTURE(c.name);
    auto got = ParseLabelCsv(c.csv);
    REQUIRE_MESSAGE(got.ok(), got.status().ToString());
    REQUIRE(got->size() == c.want.size());
    for (std::size_t i = 0; i < c.want.size(); ++i) {
      CHECK((*got)[i].code == c.want[i].code);
      CHECK((*got)[i].model == c.want[i].model);
      CHECK((*got)[i].owner == c.want[i].owner);
    }
  }
}

TEST_CASE("ParseLabelCsv refuses the whole file for one bad row, naming its line") {
  std::string seventeen = "code,model,owner\n";
  for (int i = 2; i <= 16; ++i) seventeen += "HB" + std::to_string(i) + ",YSP12,Acme\n";
  const std::vector<Bad> cases = {
      {"unknown model on line 17",
       seventeen + "HB99,YSP99,Acme\n",
       StatusCode::kInvalid,
       {"line 17", "YSP99", "YSP35.5"}},
      {"bad code", "code,model,owner\nHB 01,YSP12,A\n", StatusCode::kInvalid, {"line 2", "code"}},
      {"code too long",
       std::string(65, 'A') + ",YSP12,A\n",
       StatusCode::kInvalid,
       {"line 1", "code"}},
      {"empty owner", "HB01,YSP12,\n", StatusCode::kInvalid, {"line 1", "owner is empty"}},
      {"blank quoted owner", "HB01,YSP12,\"  \"\n", StatusCode::kInvalid, {"owner is empty"}},
      {"owner over 64 characters",
       "HB01,YSP12," + std::string(65, 'x') + "\n",
       StatusCode::kInvalid,
       {"owner", "64"}},
      {"owner not UTF-8", "HB01,YSP12,Acme\xFF\n", StatusCode::kInvalid, {"UTF-8"}},
      {"owner with an overlong encoding", "HB01,YSP12,\xC0\xAF\n", StatusCode::kInvalid, {"UTF-8"}},
      {"owner with a line break",
       "HB01,YSP12,A\nHB02,YSP12,\"two\nlines\"\n",
       StatusCode::kInvalid,
       {"line 2", "control"}},
      {"two fields", "HB01,YSP12\n", StatusCode::kInvalid, {"line 1", "3 fields", "found 2"}},
      {"four fields", "HB01,YSP12,A,B\n", StatusCode::kInvalid, {"found 4"}},
      {"quote inside an unquoted field",
       "HB01,YSP12,Ac\"me\n",
       StatusCode::kInvalid,
       {"line 1", "quote"}},
      {"text after a closing quote",
       "HB01,YSP12,\"Acme\" Ltd\n",
       StatusCode::kInvalid,
       {"line 1", "closing quote"}},
      {"open quote names the line it opened on",
       "HB01,YSP12,A\nHB02,YSP12,\"B\nHB03,YSP12,C\n",
       StatusCode::kInvalid,
       {"line 2", "not closed"}},
      {"duplicate after normalising",
       "HB01,YSP12,A\nHB02,YSP12,B\nhb01 ,YSP12,C\n",
       StatusCode::kInvalid,
       {"line 3", "HB01", "line 1"}},
      {"the header's words after the first row are data",
       "HB01,YSP12,A\ncode,model,owner\n",
       StatusCode::kInvalid,
       {"line 2", "unknown model"}},
      {"header only", "code,model,owner\n", StatusCode::kInvalid, {"no label rows"}},
      {"empty", "", StatusCode::kInvalid, {"no label rows"}},
  };
  for (const Bad& c : cases) {
    CAPTURE(c.name);
    auto got = ParseLabelCsv(c.csv);
    REQUIRE_FALSE(got.ok());
    CHECK(got.status().code() == c.code);
    for (const std::string& part : c.message_has) {
      CHECK_MESSAGE(got.status().message().find(part) != std::string::npos, got.status().message(),
                    " lacks ", part);
    }
  }
}

TEST_CASE("ParseLabelCsv limits rows and bytes") {
  CsvLimits limits;
  limits.max_rows = 2;
  CHECK(ParseLabelCsv("code,model,owner\nA,YSP12,x\nB,YSP12,x\n", limits).ok());
  auto three = ParseLabelCsv("A,YSP12,x\nB,YSP12,x\nC,YSP12,x\n", limits);
  REQUIRE_FALSE(three.ok());
  CHECK(three.status().code() == StatusCode::kTooLarge);
  CHECK(three.status().message().find("2 rows") != std::string::npos);

  limits = CsvLimits{};
  limits.max_bytes = 10;
  auto big = ParseLabelCsv("HB01,YSP12,Acme\n", limits);
  REQUIRE_FALSE(big.ok());
  CHECK(big.status().code() == StatusCode::kTooLarge);
}

TEST_CASE("MakeLabelContent knows every model of DOMAIN.md and no other") {
  for (const char* model : {"YSP4.7", "YSP12", "YSP26.2", "YSP35.5", "YSP118", "YSP118-II"}) {
    CAPTURE(model);
    CHECK(MakeLabelContent("HB01", model, "A").ok());
  }
  for (const char* model : {"", "YSP", "YSP50", "YSP118-III", "YSP 12"}) {
    CAPTURE(model);
    auto got = MakeLabelContent("HB01", model, "A");
    REQUIRE_FALSE(got.ok());
    CHECK(got.status().message().find("unknown model") != std::string::npos);
  }
}

TEST_CASE("NormaliseBase and SymbolText put exactly one '/' before c/") {
  struct Row {
    const char* base;
    const char* want;  // nullptr: refused
  };
  const Row rows[] = {
      {"https://pingma.example/", "https://pingma.example"},
      {"https://x", "https://x"},
      {"https://x//", "https://x"},
      {"http://x.example:8080/pingma/", "http://x.example:8080/pingma"},
      {"HTTPS://X/", "HTTPS://X"},
      {"ftp://x/", nullptr},
      {"x.example/", nullptr},
      {"https://", nullptr},
      {"https:///path", nullptr},
      {"https://x/?code=", nullptr},
      {"https://x/#c", nullptr},
      {"https://x y/", nullptr},
      {"https://例子.cn/", nullptr},
  };
  const LabelContent label{"HB0100000123", "YSP35.5", "A"};
  for (const Row& r : rows) {
    CAPTURE(r.base);
    auto got = NormaliseBase(r.base);
    if (r.want == nullptr) {
      CHECK_FALSE(got.ok());
      continue;
    }
    REQUIRE_MESSAGE(got.ok(), got.status().ToString());
    CHECK(*got == r.want);
    CHECK(SymbolText(*got, label) == std::string(r.want) + "/c/HB0100000123");
  }
  CHECK_FALSE(NormaliseBase("https://" + std::string(200, 'x')).ok());
}
