// ObjectMembers and ArrayElements against what a JSON parser makes of the same
// text, and on malformed text (which must give nullopt or an answer, never a read
// past the end: run under the sanitizers too).
#include "json_scan.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>

using nlohmann::json;
using pingma::station::ArrayElements;
using pingma::station::ObjectMembers;

TEST_CASE("members and elements are where a parser finds them") {
  const std::string tricky = R"({ "a" : 1 ,"b":"x\"]},[{\\" , "c":{"d":[1,{"e":"}"}]},)"
                             R"("list":[ {"k":"v,]"} , [1,2] , "s\"" , -1.5e3,true,null ],)"
                             "\n\t\"empty\":[],\"o\":{}}";
  const json parsed = json::parse(tricky);
  auto members = ObjectMembers(tricky);
  REQUIRE(members);
  REQUIRE(members->size() == parsed.size());
  for (const auto& [name, value] : *members) {
    CAPTURE(name);
    CHECK(json::parse(value) == parsed.at(std::string(name)));
  }
  auto list = ArrayElements((*members)[3].second);
  REQUIRE(list);
  REQUIRE(list->size() == 6);
  for (size_t i = 0; i < list->size(); ++i) CHECK(json::parse((*list)[i]) == parsed["list"][i]);
  CHECK((*list)[2] == R"("s\"")");  // cut exactly, without the spaces around
  CHECK(ArrayElements((*members)[4].second)->empty());
  CHECK(ObjectMembers((*members)[5].second)->empty());
  CHECK(ArrayElements(" [ ] ")->empty());
}

TEST_CASE("what is not an object or an array, or is cut short, gives nothing") {
  for (const char* text :
       {"", " ", "[1]", "\"s\"", "{", "{\"a\"", "{\"a\":", "{\"a\":1", "{\"a\":1,", "{\"a\" 1}",
        "{a:1}", "{\"a\":\"x}", "{\"a\":[1,2}", "{\"a\":1]"}) {
    const std::string shown = text;
    CAPTURE(shown);
    CHECK(!ObjectMembers(text));
  }
  for (const char* text : {"", "{}", "[", "[1", "[1,", "[\"x]", "[{]", "[\"\\"}) {
    const std::string shown = text;
    CAPTURE(shown);
    CHECK(!ArrayElements(text));
  }
  // Scalars are not checked ("[1 2]" is one element): the parse that follows is.
  CHECK(ArrayElements("[1 2]")->size() == 1);
  // Every prefix of a real page: no crash, and never a whole answer for a part.
  const std::string page = R"({"cylinders":[{"code":"A","carriers":["EPC:1"]}],"more":true})";
  for (size_t n = 0; n < page.size(); ++n) {
    CAPTURE(n);
    CHECK(!ObjectMembers(std::string_view(page).substr(0, n)));
  }
}
