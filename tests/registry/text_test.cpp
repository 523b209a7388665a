// What text the registry takes into its records, and which cells of its CSV
// ledgers it guards against being read as formulas.
#include <doctest/doctest.h>

#include <string>

#include "http/fields.h"
#include "service.h"

using pingma::registry::CheckText;
using pingma::registry::ControlIn;
using pingma::registry::ReadAsFormula;

TEST_CASE("ordinary names, addresses and notes hold no control character") {
  for (const char* text : {"", "张三", "建设路1号 3单元", "Hebei Example Cylinder Co.", "O'Brien",
                           "城东站, \"一号\"", "=SUM(A1)", "😀", "\u200e"}) {
    CAPTURE(text);
    CHECK_FALSE(ControlIn(text).has_value());
    CHECK(CheckText("name", text).ok());
  }
}

TEST_CASE("every C0 control, DEL, every C1 control and the bidirectional overrides are found") {
  for (char32_t c = 0; c < 0x20; ++c) {
    const std::string text = std::string("A") + static_cast<char>(c) + "B";
    CAPTURE(static_cast<int>(c));
    REQUIRE(ControlIn(text).has_value());
    CHECK(*ControlIn(text) == c);
  }
  CHECK(*ControlIn("A\x7f") == 0x7f);
  CHECK(*ControlIn("\xc2\x80") == 0x80);           // U+0080, the first C1
  CHECK(*ControlIn("x\xc2\x9b[31m") == 0x9b);      // CSI
  CHECK_FALSE(ControlIn("\xc2\xa0").has_value());  // U+00A0, past the C1 block
  CHECK(*ControlIn("abc\xe2\x80\xae"
                   "cba") == 0x202e);  // RIGHT-TO-LEFT OVERRIDE
  CHECK(*ControlIn("\xe2\x80\xaa") == 0x202a);
  CHECK_FALSE(ControlIn("\xe2\x80\xa9").has_value());  // U+2029, before the overrides
  CHECK(*ControlIn("\xe2\x81\xa6") == 0x2066);         // LEFT-TO-RIGHT ISOLATE
  CHECK(*ControlIn("\xe2\x81\xa9") == 0x2069);
  CHECK_FALSE(ControlIn("\xe2\x81\xaa").has_value());      // U+206A, after the isolates
  CHECK(*ControlIn("\xff") == 0xfffd);                     // not UTF-8
  CHECK(*ControlIn("\xe5\xbc") == 0xfffd);                 // cut short
  CHECK(*ControlIn("\xc0\x80") == 0xfffd);                 // an overlong NUL
  CHECK(*ControlIn("\xed\xa0\x80") == 0xfffd);             // a surrogate, U+D800
  CHECK(*ControlIn("\xf4\x90\x80\x80") == 0xfffd);         // past U+10FFFF
  CHECK_FALSE(ControlIn("\xf4\x8f\xbf\xbf").has_value());  // U+10FFFF itself
  CHECK_FALSE(ControlIn("\xed\x9f\xbf").has_value());      // U+D7FF, before the surrogates
}

TEST_CASE("the refusal names the field and the character") {
  const auto s = CheckText("name", std::string("Gas\0Co", 6));
  CHECK_FALSE(s.ok());
  CHECK(s.message().find("'name'") != std::string::npos);
  CHECK(s.message().find("U+0000") != std::string::npos);
  CHECK(CheckText("address", "a\x1b[2J").message().find("U+001B") != std::string::npos);
}

TEST_CASE("a CSV cell is guarded when a spreadsheet would read it as a formula") {
  for (const char* lead : {"=",
                           "+",
                           "-",
                           "@",
                           "|",
                           "%",
                           " ",
                           "\t",
                           "\r",
                           "\n",
                           "\xef\xbc\x9d",   // ＝
                           "\xef\xbc\x8b",   // ＋
                           "\xef\xbc\x8d",   // －
                           "\xef\xbc\xa0",   // ＠
                           "\xef\xbd\x9c",   // ｜
                           "\xef\xbc\x85",   // ％
                           "\xef\xb9\xa6",   // ﹦
                           "\xef\xb9\xa2",   // ﹢
                           "\xef\xb9\xa3",   // ﹣
                           "\xef\xb9\xab",   // ﹫
                           "\xc2\xa0",       // no-break space
                           "\xe3\x80\x80",   // ideographic space
                           "\xe2\x80\x80",   // en quad
                           "\xe2\x80\x8b",   // zero-width space
                           "\xef\xbb\xbf"})  // zero-width no-break space
  {
    const std::string cell = std::string(lead) + "cmd|' /C calc'!A0";
    CAPTURE(cell);
    CHECK(ReadAsFormula(cell));
  }
  for (const char* cell : {"", "YSP35.5", "瓶码燃气", "'=x", "A=1", "1+1",
                           "\xe2\x80\x8c"
                           "x",
                           "\xef\xbc\x9e"}) {  // ZWNJ (U+200C) and ＞ are not in the list
    CAPTURE(cell);
    CHECK_FALSE(ReadAsFormula(cell));
  }
}
