// JsonDoc against nlohmann's parser: the same texts taken and refused, the same
// values read, at each edge of the grammar (escapes, surrogates, UTF-8, numbers,
// nesting). The fuzz harness json_doc_fuzz checks the same on arbitrary bytes.
#include "json_doc.h"

#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "json_doc_nlohmann.h"

using nlohmann::json;
using pingma::station::JsonDoc;
using pingma::station::JsonValue;
using pingma::station::ToNlohmann;

namespace {

// `text` parses, and reads back as nlohmann reads it.
void Same(const std::string& text) {
  CAPTURE(text);
  auto doc = JsonDoc::Parse(text);
  REQUIRE_MESSAGE(doc.ok(), doc.status().message());
  REQUIRE(json::accept(text));
  CHECK(ToNlohmann(doc->Root()) == json::parse(text));
}

// `text` is refused by both, with a message that says where.
void Refused(const std::string& text) {
  CAPTURE(text);
  auto doc = JsonDoc::Parse(text);
  REQUIRE_FALSE(doc.ok());
  CHECK(doc.status().code() == pingma::StatusCode::kMalformed);
  CHECK(doc.status().message().find("at byte") != std::string::npos);
  CHECK_FALSE(json::accept(text));
}

}  // namespace

TEST_CASE("every kind of value reads back as nlohmann reads it") {
  for (const char* text : {
           "null",
           "true",
           "false",
           "0",
           "-0",
           "1",
           "-12",
           "3.25",
           "-0.5e-3",
           "1E+2",
           "1e308",
           "-1.7976931348623157e308",
           "1e-400",
           "2e-324",
           "4.9e-324",
           "9223372036854775807",
           "9223372036854775808",
           "-9223372036854775808",
           "18446744073709551616",
           "\"\"",
           "\"plain\"",
           R"("esc \" \\ \/ \b \f \n \r \t")",
           R"("\u0041\u00e9\u4e2d\ud83d\ude00\u0000")",
           "\"瓶码 \xF0\x9F\x98\x80\"",
           "[]",
           "{}",
           " [ 1 , [ ] , { } , \"x\" ] ",
           R"({"a":1,"b":{"c":[true,false,null]},"d":"}],"})",
           "\xEF\xBB\xBF{\"bom\":1}",
           "\t\r\n 7 \n",
       }) {
    Same(text);
  }
}

TEST_CASE("what a JSON parser refuses is refused, with where") {
  for (const char* text : {
           "",
           " ",
           "nul",
           "tru",
           "True",
           "01",
           "-",
           "+1",
           "1.",
           ".5",
           "1e",
           "1e+",
           "0x10",
           "NaN",
           "Infinity",
           "[1,]",
           "[,1]",
           "[1 2]",
           "{\"a\"}",
           "{\"a\":}",
           "{\"a\":1,}",
           "{a:1}",
           "{'a':1}",
           "{\"a\":1",
           "[",
           "]",
           "[1]]",
           "1 2",
           "\"unclosed",
           "\"tab\there\"",
           "\"nl\nhere\"",
           R"("\x41")",
           R"("\u12")",
           R"("\u12G4")",
           R"("\ud800")",
           R"("\ud800\u0041")",
           R"("\udc00")",
           R"("\ud800\ud800")",
           "\"\xC0\x80\"",
           "\"\xC1\xBF\"",
           "\"\xE0\x80\x80\"",
           "\"\xED\xA0\x80\"",
           "\"\xF0\x8F\xBF\xBF\"",
           "\"\xF4\x90\x80\x80\"",
           "\"\xF5\x80\x80\x80\"",
           "\"\x80\"",
           "\"\xE4\xB8\"",
           "\xEF\xBB{}",
           "{}\xEF\xBB\xBF",
           "[1]x",
           "1e400",
           "-1e400",
           "1.8e308",
           "[0, 1e309]",
       }) {
    Refused(text);
  }
  // A NUL byte is not JSON anywhere.
  Refused(std::string("[1,\0 2]", 7));
  Refused(std::string("\"a\0b\"", 5));
  // nlohmann's lexer takes it for the end of the text, and passes what comes
  // before: JsonDoc does not.
  const std::string nul("0\0x", 3);
  CHECK(json::accept(nul));
  CHECK_FALSE(JsonDoc::Parse(nul).ok());
}

TEST_CASE("UTF-8 at the edges of each sequence length is taken") {
  for (const char* text :
       {"\"\xC2\x80\"", "\"\xDF\xBF\"", "\"\xE0\xA0\x80\"", "\"\xED\x9F\xBF\"", "\"\xEE\x80\x80\"",
        "\"\xEF\xBF\xBF\"", "\"\xF0\x90\x80\x80\"", "\"\xF4\x8F\xBF\xBF\""}) {
    Same(text);
  }
}

TEST_CASE("members are found as a parser keeps them: the last of a name") {
  auto doc = JsonDoc::Parse(R"({"a":1,"b\u0041":2,"a":3,"c":{"a":9}})");
  REQUIRE(doc.ok());
  const JsonValue root = doc->Root();
  CHECK(root.size() == 4);
  CHECK(root.Find("a")->Integer() == 3);
  CHECK(root.Find("bA")->Integer() == 2);  // an escaped name matches its value
  CHECK_FALSE(root.Find("b\\u0041"));
  CHECK_FALSE(root.Find("d"));
  CHECK(root.Find("c")->Find("a")->Integer() == 9);
  CHECK(root.Find("c")->Text() == R"({"a":9})");

  // FindAll gives the same, in any order of names.
  const std::string_view names[] = {"c", "x", "a", "bA"};
  std::optional<JsonValue> found[4];
  root.FindAll(names, 4, found);
  CHECK(found[0]->Text() == R"({"a":9})");
  CHECK_FALSE(found[1]);
  CHECK(found[2]->Integer() == 3);
  CHECK(found[3]->Integer() == 2);

  // Asked of what is not an object, there is nothing.
  CHECK_FALSE(root.Find("c")->Find("a")->Find("a"));
  CHECK(root.Find("a")->Elements().empty());
  CHECK(root.Find("a")->Members().empty());
  CHECK(root.Find("a")->size() == 0);
}

TEST_CASE("values are cut from the text exactly, without the space around them") {
  auto doc = JsonDoc::Parse(" { \"list\" : [ {\"k\":\"v,]\"} , [1,2] , \"s\\\"\" , -1.5e3 ] } ");
  REQUIRE(doc.ok());
  const auto list = doc->Root().Find("list");
  REQUIRE(list);
  CHECK(list->size() == 4);
  const auto elements = list->Elements();
  REQUIRE(elements.size() == 4);
  CHECK(elements[0].Text() == R"({"k":"v,]"})");
  CHECK(elements[1].Text() == "[1,2]");
  CHECK(elements[2].Text() == R"("s\"")");
  CHECK(elements[2].String() == "s\"");
  CHECK(elements[3].Text() == "-1.5e3");
  CHECK(elements[3].Number() == -1500.0);
}

TEST_CASE("numbers: integers that fit, the rest as strtod reads them") {
  // 400 digits without an exponent: too large for a double as well.
  Refused(std::string(400, '9'));
  Same(std::string(300, '9'));
  auto doc = JsonDoc::Parse(
      "[10, 10.0, 1e1, -9223372036854775808, 9223372036854775808, 1e308, 1e-400, \"1\"]");
  REQUIRE(doc.ok());
  const auto v = doc->Root().Elements();
  CHECK(v[0].Integer() == 10);
  CHECK_FALSE(v[1].Integer());
  CHECK(v[1].Number() == 10.0);
  CHECK_FALSE(v[2].Integer());
  CHECK(v[3].Integer() == std::numeric_limits<std::int64_t>::min());
  CHECK_FALSE(v[4].Integer());
  CHECK(v[4].Number() == 9223372036854775808.0);
  CHECK(v[5].Number() == 1e308);
  CHECK(v[6].Number() == 0.0);
  CHECK_FALSE(v[7].Number());
  CHECK_FALSE(v[7].Integer());
  CHECK(v[7].String() == "1");
  CHECK_FALSE(v[0].String());
  CHECK_FALSE(v[0].Bool());
}

TEST_CASE("deep nesting is read without recursion") {
  const int depth = 200000;
  const std::string text = std::string(depth, '[') + std::string(depth, ']');
  auto doc = JsonDoc::Parse(text);
  REQUIRE(doc.ok());
  CHECK(doc->Root().size() == 1);
  CHECK_FALSE(JsonDoc::Parse(std::string(depth, '[') + std::string(depth - 1, ']')).ok());
}

TEST_CASE("a JsonDoc made empty is null, and one moved keeps its values") {
  const JsonDoc empty;
  CHECK(empty.Root().is_null());
  CHECK(empty.Root().Text() == "null");
  auto doc = JsonDoc::Parse(R"({"a":"long enough not to be stored inside the string"})");
  REQUIRE(doc.ok());
  JsonDoc moved = std::move(*doc);
  CHECK(moved.Root().Find("a")->String() == "long enough not to be stored inside the string");
}
