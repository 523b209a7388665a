// The station config's errors name the key, word for word as operators see them.
#include "config.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace pingma::station {
namespace {

const char* const kGood = R"(
[station]
id = "ST-01"
registry = "http://127.0.0.1:8080"
token_file = "token"
data_dir = "data"

[[position]]
id = "P1"
operator = "OP-7"
scanner = { kind = "stdin" }
scale = { transport = "tcp", host = "127.0.0.1", port = 1502 }
)";

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

TEST_CASE("a station config is read, and each wrong key is named") {
  const auto dir = std::filesystem::temp_directory_path() / "pingma-config-test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "token") << "secret\n";

  auto good = ParseStationConfig(kGood, dir.string());
  REQUIRE_MESSAGE(good.ok(), good.status().ToString());
  CHECK(good->token == "secret");
  CHECK(good->positions.at(0).scale.port == 1502);
  CHECK(good->positions.at(0).scale_id == "P1");

  struct Case {
    const char* from;
    const char* to;
    const char* message;
  } cases[] = {
      {"id = \"ST-01\"", "id = \"ST-01\"\nname = \"x\"", "unknown key station.name"},
      {"port = 1502", "port = 1502, prot = 1", "unknown key position[1].scale.prot"},
      {"port = 1502", "port = \"1502\"", "position[1].scale.port must be a whole number"},
      {"port = 1502", "port = 70000", "position[1].scale.port must be from 1 to 65535"},
      {"data_dir = \"data\"", "", "station.data_dir is missing"},
      {"id = \"ST-01\"", "id = 7", "station.id must be a string"},
      {"kind = \"stdin\"", "kind = \"stdin\", rts = 1",
       "position[1].scanner.rts must be true or false"},
      {"[station]", "[station", "station config, line 2: "},
      {"[station]", "[stations]\n[station]", "unknown key stations"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.message);
    auto parsed = ParseStationConfig(Replace(kGood, c.from, c.to), dir.string());
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.status().code() == StatusCode::kInvalid);
    CHECK(parsed.status().message().rfind(c.message, 0) == 0);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("what a reload cannot take is named, and only that") {
  using Changes = std::vector<std::string>;
  CHECK(ChangesTakingARestart(kGood, kGood) == Changes{});
  // The reloadable keys, added or changed, and the layout: nothing.
  CHECK(ChangesTakingARestart(kGood, Replace(kGood, "token_file = \"token\"",
                                             "token_file = \"other\"\nca_file = \"ca.pem\"\n"
                                             "check_deadline_ms   =   900")) == Changes{});
  CHECK(ChangesTakingARestart(kGood, Replace(kGood, "data_dir = \"data\"",
                                             "data_dir = \"data2\"\nsync_interval_s = 5")) ==
        Changes{"station.data_dir", "station.sync_interval_s"});
  CHECK(ChangesTakingARestart(Replace(kGood, "data_dir = \"data\"",
                                      "data_dir = \"data\"\nstatus_listen = \"127.0.0.1:1\""),
                              kGood) == Changes{"station.status_listen"});
  CHECK(ChangesTakingARestart(kGood, Replace(kGood, "port = 1502", "port = 1503")) ==
        Changes{"position"});
  CHECK(ChangesTakingARestart(kGood, std::string(kGood) + "\n[[position]]\nid = \"P2\"\n") ==
        Changes{"position"});
}

}  // namespace
}  // namespace pingma::station
