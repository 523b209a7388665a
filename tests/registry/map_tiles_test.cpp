// The console map's tile server as a site names it (serve --map-tiles): which
// templates are taken, the origin the console's CSP then allows, and the datum.
#include <doctest/doctest.h>

#include <string>

#include "cases/pages.h"

using pingma::registry::ParseMapTiles;

TEST_CASE("no tiles unless named") {
  auto none = ParseMapTiles("", "wgs84");
  REQUIRE(none.ok());
  CHECK(none->url_template.empty());
  CHECK(none->origin.empty());
  CHECK(none->datum == "wgs84");
  // Shifting onto GCJ-02 tiles that are not there would only misplace everything.
  CHECK_FALSE(ParseMapTiles("", "gcj02").ok());
}

TEST_CASE("a template is taken with its origin") {
  struct Row {
    const char* url;
    const char* origin;
  };
  for (const Row& row : {
           Row{"https://tiles.example/{z}/{x}/{y}.png", "https://tiles.example"},
           Row{"http://10.0.0.5:8080/osm/{z}/{x}/{y}.png", "http://10.0.0.5:8080"},
           Row{"https://Tiles.Example.CN/v1/{z}/{y}/{x}?style=7&lang=zh",
               "https://tiles.example.cn"},
           Row{"https://[2001:db8::1]/{x}-{y}-{z}.png", "https://[2001:db8::1]"},
       }) {
    CAPTURE(row.url);
    auto tiles = ParseMapTiles(row.url, "gcj02");
    REQUIRE(tiles.ok());
    CHECK(tiles->url_template == row.url);
    CHECK(tiles->origin == row.origin);
    CHECK(tiles->datum == "gcj02");
  }
}

TEST_CASE("a template that could not be a tile server's, or would break the CSP, is refused") {
  for (const char* url : {
           "tiles.example/{z}/{x}/{y}.png",               // no scheme
           "ftp://tiles.example/{z}/{x}/{y}.png",         // not HTTP
           "javascript:alert(1)//{z}/{x}/{y}",            // not HTTP
           "https://",                                    // nothing after the scheme
           "https:///{z}/{x}/{y}.png",                    // no host
           "https://tiles.example",                       // no path
           "https://tiles.example/{z}/{x}.png",           // no {y}
           "https://tiles.example/{z}/{x}/{y}/{x}.png",   // {x} twice
           "https://{s}.tiles.example/{z}/{x}/{y}.png",   // a placeholder in the host
           "https://tiles.example/{s}/{z}/{x}/{y}.png",   // an unknown placeholder
           "https://tiles.example/{z}/{x}/{y}}.png",      // a stray brace
           "https://user@tiles.example/{z}/{x}/{y}.png",  // a user
           "https://tiles.example/{z}/{x}/{y}.png; script-src *",
           "https://tiles.example/{z}/{x}/{y}.png,https://evil.example",
           "https://tiles.example/{z}/{x}/{y}.png 'unsafe-inline'",
           "https://tiles.example/{z}/{x}/{y}.png\r\nX-Evil: 1",
           "https://tiles.example/{z}/{x}/{y}.png#frag",
           "https://tiles.example/\"{z}/{x}/{y}.png",
       }) {
    CAPTURE(url);
    CHECK_FALSE(ParseMapTiles(url, "wgs84").ok());
  }
}

TEST_CASE("the datum is wgs84 or gcj02") {
  CHECK(ParseMapTiles("https://t.example/{z}/{x}/{y}.png", "wgs84").ok());
  CHECK(ParseMapTiles("https://t.example/{z}/{x}/{y}.png", "gcj02").ok());
  for (const char* datum : {"", "WGS84", "bd09", "gcj-02"}) {
    CAPTURE(datum);
    CHECK_FALSE(ParseMapTiles("https://t.example/{z}/{x}/{y}.png", datum).ok());
  }
}
