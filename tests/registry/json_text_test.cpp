// The JSON written directly on the fill-check path reads back as nlohmann's
// own printing of the same values does, byte for byte.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "http/json_text.h"

namespace pingma::registry {
namespace {

TEST_CASE("strings are escaped as nlohmann escapes them") {
  const std::string cases[] = {
      "",
      "HB0100000123",
      "quote \" and backslash \\\\",
      "line\nfeed\r\ttab\b\f",
      std::string("nul \0 in the middle", 19),
      "\x01\x1f\x7f",
      "瓶码 一瓶一码 气液双相",
      "https://c.example.cn/c?code=HB0100000123&x=<y>",
  };
  for (const std::string& text : cases) {
    std::string out;
    AppendJsonString(&out, text);
    CHECK_MESSAGE(out == nlohmann::json(text).dump(), text);
    CHECK(nlohmann::json::parse(out).get<std::string>() == text);
  }
}

TEST_CASE("numbers are printed as nlohmann prints them") {
  const double cases[] = {0.0,  35.0, 16.4,       0.1,  14.5,    35.5,    -2.5,
                          1e-7, 1e21, 123456.789, 49.5, 1.0 / 3, 999.999, 0.5};
  for (double v : cases) {
    std::string out;
    AppendJsonNumber(&out, v);
    CHECK_MESSAGE(out == nlohmann::json(v).dump(), v);
    CHECK(nlohmann::json::parse(out).get<double>() == v);
  }
}

TEST_CASE("a key is a string and a colon") {
  std::string out = "{";
  AppendJsonKey(&out, "tare_kg");
  AppendJsonNumber(&out, 16.4);
  out += "}";
  CHECK(out == R"({"tare_kg":16.4})");
}

}  // namespace
}  // namespace pingma::registry
