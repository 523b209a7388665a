// The JT/T 808 codec at its boundaries: escapes of every kind (in the header, the
// body and the check code), check codes, 2013 and 2019 headers, sub-packages in
// and out of order, missing and repeated, every message one byte short, the BCD
// time across midnight in UTC+8, the signs of southern and western coordinates,
// and the platform's replies byte for byte against frames written out by hand
// from the standard's layout.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "jt808/codec.h"
#include "jt808_bytes.h"

namespace pingma::registry::jt808 {
namespace {

// The test's own reference of the wire form: check code, escapes, flags.
std::string Wire(const std::string& raw) {
  unsigned char check = 0;
  for (char c : raw) check ^= static_cast<unsigned char>(c);
  std::string content = raw;
  content.push_back(static_cast<char>(check));
  std::string out = "\x7e";
  for (char c : content) {
    if (c == '\x7e') {
      out += "\x7d\x02";
    } else if (c == '\x7d') {
      out += "\x7d\x01";
    } else {
      out.push_back(c);
    }
  }
  return out + "\x7e";
}

// What the splitter yields for the chunks: "F:<hex>" per frame, "E:<message>" per error.
std::vector<std::string> Split(const std::vector<std::string>& chunks,
                               FrameSplitter* splitter = nullptr) {
  FrameSplitter own;
  FrameSplitter& s = splitter ? *splitter : own;
  std::vector<Result<std::string>> out;
  for (const std::string& chunk : chunks) s.Feed(chunk, out);
  std::vector<std::string> events;
  for (const auto& r : out) {
    events.push_back(r.ok() ? "F:" + Hex(*r) : "E:" + r.status().message());
  }
  return events;
}

// Expected events: "F:<hex>" exactly, or "E:<part of the message>".
void CheckEvents(const std::vector<std::string>& actual, const std::vector<std::string>& expected) {
  REQUIRE_MESSAGE(actual.size() == expected.size(), doctest::toString(actual));
  for (size_t i = 0; i < expected.size(); ++i) {
    if (expected[i].rfind("E:", 0) == 0) {
      CHECK_MESSAGE(actual[i].rfind("E:", 0) == 0, actual[i]);
      CHECK_MESSAGE(actual[i].find(expected[i].substr(2)) != std::string::npos, actual[i]);
    } else {
      CHECK(actual[i] == expected[i]);
    }
  }
}

// Platform general reply, 2013, to phone 013800138000: serial 1, answering serial 7,
// message 0x0200, result 0. id 8001, properties 0005, phone BCD 01 38 00 13 80 00,
// serial 0001; body 0007 0200 00; check 2a.
const char* kReplyA = "7e 80 01 00 05 01 38 00 13 80 00 00 01 00 07 02 00 00 2a 7e";
const char* kReplyAContent = "80 01 00 05 01 38 00 13 80 00 00 01 00 07 02 00 00";

// The same in 2019 (properties 4005, version 01, phone BCD[10]) with serial 7d7e,
// answering serial 7e6c, message 0x0102: 0x7d and 0x7e in the header, 0x7e in
// the body, and the check code 0x7d.
const char* kReplyB =
    "7e 80 01 40 05 01 00 00 00 00 01 38 00 13 80 00 7d 01 7d 02 7d 02 6c 01 02 00 7d 01 7e";
const char* kReplyBContent = "80 01 40 05 01 00 00 00 00 01 38 00 13 80 00 7d 7e 7e 6c 01 02 00";

TEST_CASE("frames: flags, escapes in the header, body and check code, check codes") {
  const std::string a = Bytes(kReplyA);
  const std::string b = Bytes(kReplyB);
  struct Row {
    const char* name;
    std::vector<std::string> chunks;
    std::vector<std::string> expected;
  };
  const std::vector<Row> rows = {
      {"one frame", {a}, {std::string("F:") + kReplyAContent}},
      {"escapes everywhere", {b}, {std::string("F:") + kReplyBContent}},
      {"back to back",
       {a + b},
       {std::string("F:") + kReplyAContent, std::string("F:") + kReplyBContent}},
      {"sharing one flag",
       {a + b.substr(1)},
       {std::string("F:") + kReplyAContent, std::string("F:") + kReplyBContent}},
      {"garbage before the first flag",
       {"hello\x7d\x03" + a},
       {std::string("F:") + kReplyAContent}},
      {"flags alone", {"\x7e\x7e\x7e\x7e"}, {}},
      {"a half frame is never yielded", {a.substr(0, 10)}, {}},
      {"too short",
       {"\x7e\x01\x7e" + a},
       {"E:1 byte(s) is too short", std::string("F:") + kReplyAContent}},
      {"twelve bytes are too short",
       {Bytes("7e 00 02 00 00 01 38 00 13 80 00 00 01 7e")},
       {"E:12 byte(s) is too short"}},
      {"bad escape, then the next frame",
       {Bytes("7e 00 02 7d 03 00 7e") + a},
       {"E:bad escape: 0x7d 0x03 at byte 2", std::string("F:") + kReplyAContent}},
      {"0x7d before the closing flag",
       {Bytes("7e 00 02 7d 7e") + a},
       {"E:0x7d right before the closing flag, at byte 2", std::string("F:") + kReplyAContent}},
      {"wrong check code",
       {Bytes("7e 80 01 00 05 01 38 00 13 80 00 00 01 00 07 02 00 00 2b 7e") + a},
       {"E:check code 0x2b does not match 0x2a", std::string("F:") + kReplyAContent}},
  };
  for (const Row& row : rows) {
    CAPTURE(row.name);
    CheckEvents(Split(row.chunks), row.expected);
  }
}

TEST_CASE("frames cut anywhere: byte by byte, and an escape split across reads") {
  const std::string b = Bytes(kReplyB);
  std::vector<std::string> bytes;
  for (char c : b + b) bytes.push_back(std::string(1, c));
  CheckEvents(Split(bytes),
              {std::string("F:") + kReplyBContent, std::string("F:") + kReplyBContent});
  // Every cut of frame B into two reads, the 0x7d's among them.
  for (size_t cut = 0; cut <= b.size(); ++cut) {
    CAPTURE(cut);
    CheckEvents(Split({b.substr(0, cut), b.substr(cut)}), {std::string("F:") + kReplyBContent});
  }
}

TEST_CASE("a frame of exactly the bound passes; one byte more is dropped, and the next is read") {
  // 2019 header with package items (21 bytes), a 1023-byte body, the check code: 1045.
  std::string raw = Bytes("02 00 63 ff 01 00 00 00 00 01 38 00 13 80 00 00 01 00 01 00 01");
  raw += std::string(kMaxBody, '\x11');
  REQUIRE(raw.size() + 1 == kMaxFrame);
  const std::string good = Wire(raw);
  auto events = Split({good});
  REQUIRE(events.size() == 1);
  CHECK(events[0] == "F:" + Hex(raw));

  std::string over = raw + "\x22";
  const std::string a = Bytes(kReplyA);
  FrameSplitter splitter;
  CheckEvents(Split({Wire(over), a}, &splitter),
              {"E:a frame over 1045 bytes", std::string("F:") + kReplyAContent});

  // An endless frame costs no more than the bound.
  std::vector<Result<std::string>> out;
  splitter.Feed("\x7e", out);
  for (int i = 0; i < 100; ++i) {
    splitter.Feed(std::string(1000, '\x11'), out);
    CHECK(splitter.buffered() <= kMaxFrame);
  }
  CHECK(out.size() == 1);
  CHECK(out[0].status().code() == StatusCode::kTooLarge);
}

TEST_CASE("headers: 2013 and 2019, with and without package items") {
  struct Row {
    const char* name;
    const char* content;
    std::uint16_t msg_id;
    Version version;
    std::uint8_t protocol_version;
    const char* phone;
    std::uint16_t serial;
    bool packaged;
    std::uint16_t total, index;
    const char* body;
  };
  const Row rows[] = {
      {"2013", "00 02 00 00 01 38 00 13 80 00 00 01", kHeartbeat, Version::k2013, 0, "013800138000",
       1, false, 0, 0, ""},
      {"2013 with a body", "02 00 00 02 01 38 00 13 80 00 12 34 aa bb", kLocationReport,
       Version::k2013, 0, "013800138000", 0x1234, false, 0, 0, "aa bb"},
      {"2013 packaged", "07 04 20 03 01 38 00 13 80 00 00 05 00 02 00 01 aa bb cc", kBatchLocation,
       Version::k2013, 0, "013800138000", 5, true, 2, 1, "aa bb cc"},
      {"2019", "01 02 40 01 01 00 00 00 00 01 38 00 13 80 00 ff fe 42", kAuthentication,
       Version::k2019, 1, "00000000013800138000", 0xfffe, false, 0, 0, "42"},
      {"2019 packaged", "07 04 60 01 01 12 34 56 78 90 12 34 56 78 90 00 07 00 03 00 03 42",
       kBatchLocation, Version::k2019, 1, "12345678901234567890", 7, true, 3, 3, "42"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.name);
    auto frame = DecodeFrame(Bytes(row.content));
    REQUIRE_MESSAGE(frame.ok(), frame.status().ToString());
    const Header& h = frame->header;
    CHECK(h.msg_id == row.msg_id);
    CHECK(h.version == row.version);
    CHECK(h.protocol_version == row.protocol_version);
    CHECK(h.phone == row.phone);
    CHECK(h.serial == row.serial);
    CHECK(h.encryption == 0);
    REQUIRE(h.package.has_value() == row.packaged);
    if (row.packaged) {
      CHECK(h.package->total == row.total);
      CHECK(h.package->index == row.index);
    }
    CHECK(Hex(frame->body) == row.body);
    CHECK(h.body_length == frame->body.size());
    // And back: the same bytes.
    auto again = EncodeFrame(h, frame->body);
    REQUIRE(again.ok());
    CHECK(*again == Wire(Bytes(row.content)));
  }
}

TEST_CASE("headers that do not fit are refused with what and how long") {
  struct Row {
    const char* name;
    const char* content;
    const char* error;
  };
  const Row rows[] = {
      {"three bytes", "00 02 00", "a header needs at least 12 bytes, the frame holds 3"},
      {"2013 one byte short", "00 02 00 00 01 38 00 13 80 00 00",
       "the 2013 header of 0x0002 heartbeat takes 12 bytes, the frame holds 11"},
      {"2013 package items short", "07 04 20 00 01 38 00 13 80 00 00 05 00 02 00",
       "with its package items takes 16 bytes, the frame holds 15"},
      {"2019 one byte short", "00 02 40 00 01 00 00 00 00 01 38 00 13 80 00 00",
       "the 2019 header of 0x0002 heartbeat takes 17 bytes, the frame holds 16"},
      {"2019 package items short", "07 04 60 00 01 00 00 00 00 01 38 00 13 80 00 00 01 00 02 00",
       "takes 21 bytes, the frame holds 20"},
      {"body shorter than said", "02 00 00 03 01 38 00 13 80 00 00 01 aa bb",
       "it says a body of 3 byte(s), the frame holds 2"},
      {"body longer than said", "02 00 00 01 01 38 00 13 80 00 00 01 aa bb",
       "it says a body of 1 byte(s), the frame holds 2"},
      {"phone not BCD", "00 02 00 00 01 38 00 13 80 0a 00 01", "the phone 01380013800a is not BCD"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.name);
    auto frame = DecodeFrame(Bytes(row.content));
    REQUIRE(!frame.ok());
    CHECK(frame.status().code() == StatusCode::kMalformed);
    CHECK_MESSAGE(frame.status().message().find(row.error) != std::string::npos,
                  frame.status().message());
  }
}

TEST_CASE("properties: encryption bits are read, bit 15 is ignored") {
  auto frame = DecodeFrame(Bytes("02 00 84 00 01 38 00 13 80 00 00 01"));
  REQUIRE(frame.ok());
  CHECK(frame->header.encryption == 1);
  CHECK(frame->header.version == Version::k2013);
}

TEST_CASE("phones: kept as sent, normalised without leading zeros") {
  CHECK(NormalizePhone("013800138000") == "13800138000");
  CHECK(NormalizePhone("00000000013800138000") == "13800138000");
  CHECK(NormalizePhone("13800138000") == "13800138000");
  CHECK(NormalizePhone("000000000000") == "0");
  CHECK(NormalizePhone("") == "");
  // A short phone is padded on the wire; a long or non-digit one is refused.
  Header h;
  h.msg_id = kHeartbeat;
  h.phone = "13800138000";
  auto wire = EncodeFrame(h, "");
  REQUIRE(wire.ok());
  CHECK(Hex(*wire) == "7e 00 02 00 00 01 38 00 13 80 00 00 00 a8 7e");
  h.phone = "0138001380001";
  CHECK(!EncodeFrame(h, "").ok());
  h.phone = "1380013800x";
  CHECK(!EncodeFrame(h, "").ok());
  h.version = Version::k2019;
  h.phone = "12345678901234567890";
  CHECK(EncodeFrame(h, "").ok());
  CHECK(!EncodeFrame(h, std::string(kMaxBody + 1, 'x')).ok());
}

// --- replies ----------------------------------------------------------------

Header Request(Version version, std::uint16_t msg_id, std::uint16_t serial) {
  Header h;
  h.msg_id = msg_id;
  h.version = version;
  h.serial = serial;
  if (version == Version::k2019) {
    h.protocol_version = 1;
    h.phone = "00000000013800138000";
  } else {
    h.phone = "013800138000";
  }
  return h;
}

TEST_CASE("replies byte for byte, as written out from the standard's layout") {
  struct Row {
    const char* name;
    Result<std::string> encoded;
    const char* expected;
  };
  const Row rows[] = {
      {"0x8001 2013 ok",
       EncodeGeneralReply(Request(Version::k2013, kLocationReport, 7), 1, GeneralResult::kOk),
       kReplyA},
      {"0x8001 2019, 0x7d and 0x7e in header, body and check code",
       EncodeGeneralReply(Request(Version::k2019, kAuthentication, 0x7e6c), 0x7d7e,
                          GeneralResult::kOk),
       kReplyB},
      // 8001 0005 013800138000 0002 | 0003 0002 03 | check 80^01^05^01^38^13^80^02^03^02^03 = 2e.
      {"0x8001 2013 unsupported",
       EncodeGeneralReply(Request(Version::k2013, 0x0002, 3), 2, GeneralResult::kUnsupported),
       "7e 80 01 00 05 01 38 00 13 80 00 00 02 00 03 00 02 03 2e 7e"},
      {"0x8001 2013 failure",
       EncodeGeneralReply(Request(Version::k2013, kLocationReport, 7), 1, GeneralResult::kFailure),
       "7e 80 01 00 05 01 38 00 13 80 00 00 01 00 07 02 00 01 2b 7e"},
      // 8100 0008 013800138000 0000 | 0001 00 "AUTHT" | check 0x7e, escaped.
      {"0x8100 2013 ok with its code, the check code 0x7e",
       EncodeRegistrationReply(Request(Version::k2013, kRegistration, 1), 0,
                               RegistrationResult::kOk, "AUTHT"),
       "7e 81 00 00 08 01 38 00 13 80 00 00 00 00 01 00 41 55 54 48 54 7d 02 7e"},
      // 8100 0003 013800138000 0001 | 0001 04: no code when refused.
      {"0x8100 2013 no such terminal",
       EncodeRegistrationReply(Request(Version::k2013, kRegistration, 1), 1,
                               RegistrationResult::kNoSuchTerminal, "ignored"),
       "7e 81 00 00 03 01 38 00 13 80 00 00 01 00 01 04 2c 7e"},
      // 8100 4006 01 00000000013800138000 0002 | 0009 00 7e 7d 41.
      {"0x8100 2019 with 0x7e and 0x7d in the code",
       EncodeRegistrationReply(Request(Version::k2019, kRegistration, 9), 2,
                               RegistrationResult::kOk, "\x7e\x7d\x41"),
       "7e 81 00 40 06 01 00 00 00 00 01 38 00 13 80 00 00 02 00 09 00 7d 02 7d 01 41 25 7e"},
  };
  for (const Row& row : rows) {
    CAPTURE(row.name);
    REQUIRE_MESSAGE(row.encoded.ok(), row.encoded.status().ToString());
    CHECK(Hex(*row.encoded) == Hex(Bytes(row.expected)));
  }
  // An auth code that would not fit the body.
  CHECK(!EncodeRegistrationReply(Request(Version::k2013, kRegistration, 1), 0,
                                 RegistrationResult::kOk, std::string(kMaxBody - 2, 'c'))
             .ok());
  CHECK(EncodeRegistrationReply(Request(Version::k2013, kRegistration, 1), 0,
                                RegistrationResult::kOk, std::string(kMaxBody - 3, 'c'))
            .ok());
}

// --- sub-packages -------------------------------------------------------------

using Clock = PackageAssembler::Clock;

Frame Piece(std::uint16_t total, std::uint16_t index, std::string body,
            std::uint16_t msg_id = kBatchLocation, std::string phone = "013800138000") {
  Frame f;
  f.header.msg_id = msg_id;
  f.header.phone = std::move(phone);
  f.header.serial = static_cast<std::uint16_t>(100 + index);
  f.header.package = Package{total, index};
  f.header.body_length = static_cast<std::uint16_t>(body.size());
  f.body = std::move(body);
  return f;
}

TEST_CASE("sub-packages in order and out of order make the whole message") {
  const Clock::time_point t0{};
  for (const std::vector<int>& order :
       std::vector<std::vector<int>>{{1, 2, 3}, {3, 1, 2}, {2, 3, 1}}) {
    PackageAssembler assembler({});
    const char* parts[] = {"aa", "bbb", "c"};
    std::optional<Frame> whole;
    for (size_t i = 0; i < order.size(); ++i) {
      auto out =
          assembler.Add(Piece(3, static_cast<std::uint16_t>(order[i]), parts[order[i] - 1]), t0);
      CHECK(out.refused.ok());
      CHECK(out.dropped.empty());
      CHECK(out.message.has_value() == (i + 1 == order.size()));
      if (out.message) whole = out.message;
    }
    REQUIRE(whole);
    CHECK(whole->body == "aabbbc");
    CHECK(whole->header.body_length == 6);
    CHECK(!whole->header.package);
    CHECK(whole->header.serial == 100 + order.back());  // the completing package's
    CHECK(assembler.buffered() == 0);
    CHECK(!assembler.expires_at());
  }
}

TEST_CASE("sub-packages: a repeat changes nothing; one total a message") {
  PackageAssembler assembler({});
  const Clock::time_point t0{};
  CHECK(!assembler.Add(Piece(2, 1, "aa"), t0).message);
  auto repeat = assembler.Add(Piece(2, 1, "zz"), t0);
  CHECK(repeat.repeat);
  CHECK(!repeat.message);
  CHECK(assembler.buffered() == 2);
  auto done = assembler.Add(Piece(2, 2, "bb"), t0);
  REQUIRE(done.message);
  CHECK(done.message->body == "aabb");
  // A single package of one is a message at once.
  auto one = assembler.Add(Piece(1, 1, "x"), t0);
  REQUIRE(one.message);
  CHECK(one.message->body == "x");
}

TEST_CASE("sub-packages: a missing one drops the message when another begins or time runs out") {
  PackageAssembler assembler({16, std::chrono::milliseconds(1000)});
  const Clock::time_point t0{};
  CHECK(!assembler.Add(Piece(3, 1, "aa"), t0).message);
  CHECK(!assembler.Add(Piece(3, 3, "cc"), t0).message);
  // Another message (another total) begins: the first is dropped, said so.
  auto other = assembler.Add(Piece(2, 1, "xx"), t0);
  CHECK(other.refused.ok());
  CHECK(other.dropped.find("0x0704 batch location upload from 013800138000: 2 of 3 packages") !=
        std::string::npos);
  CHECK(assembler.buffered() == 2);
  // Another phone or id is another message too.
  auto phone = assembler.Add(Piece(2, 2, "yy", kBatchLocation, "013800138001"), t0);
  CHECK(!phone.dropped.empty());
  CHECK(!phone.message);
  auto id = assembler.Add(Piece(2, 2, "yy", kLocationReport, "013800138001"), t0);
  CHECK(!id.dropped.empty());
  // Too old: dropped by Expire, and expires_at says when.
  REQUIRE(assembler.expires_at());
  CHECK(*assembler.expires_at() == t0 + std::chrono::milliseconds(1000));
  CHECK(assembler.Expire(t0 + std::chrono::milliseconds(999)).empty());
  CHECK(assembler.Expire(t0 + std::chrono::milliseconds(1000)).find("not whole within 1000 ms") !=
        std::string::npos);
  CHECK(assembler.buffered() == 0);
  // ... or by the next package, which then starts afresh.
  CHECK(!assembler.Add(Piece(2, 1, "aa"), t0).message);
  auto late = assembler.Add(Piece(2, 2, "bb"), t0 + std::chrono::seconds(5));
  CHECK(!late.dropped.empty());
  CHECK(!late.message);
}

TEST_CASE("sub-packages: indices and totals out of bounds are refused") {
  PackageAssembler assembler({4, std::chrono::milliseconds(1000)});
  const Clock::time_point t0{};
  CHECK(!assembler.Add(Piece(3, 1, "aa"), t0).message);
  struct Row {
    std::uint16_t total, index;
    const char* error;
  };
  const Row rows[] = {
      {3, 0, "package 0 of 3"},
      {3, 4, "package 4 of 3"},
      {0, 0, "package 0 of 0"},
      {5, 1, "in 5 packages: over the limit of 4"},
  };
  for (const Row& row : rows) {
    auto out = assembler.Add(Piece(row.total, row.index, "zz"), t0);
    CHECK(!out.refused.ok());
    CHECK_MESSAGE(out.refused.message().find(row.error) != std::string::npos,
                  out.refused.message());
    CHECK(!out.message);
  }
  // The message in progress was not touched.
  CHECK(assembler.buffered() == 2);
  CHECK(!assembler.Add(Piece(3, 2, "bb"), t0).message);
  CHECK(assembler.Add(Piece(3, 3, "cc"), t0).message->body == "aabbcc");
  // The limit is at most 64 whatever is asked (a whole body's length is a u16).
  PackageAssembler big({1000, std::chrono::milliseconds(1000)});
  CHECK(big.Add(Piece(64, 1, "a"), t0).refused.ok());
  CHECK(!big.Add(Piece(65, 1, "a"), t0).refused.ok());
}

// --- messages -------------------------------------------------------------------

Frame WithBody(Version version, std::uint16_t msg_id, std::string body) {
  Frame f;
  f.header = Request(version, msg_id, 1);
  f.header.body_length = static_cast<std::uint16_t>(body.size());
  f.body = std::move(body);
  return f;
}

TEST_CASE("0x0100 registration, 2013 and 2019, and one byte short of each field") {
  // 2013: province 0011, city 0022, maker "MK001", model "M1" + 18 NULs, terminal id
  // "T000001", colour 1, plate "京A12345" in GBK (BEA9 41 3132333435).
  const std::string body2013 = Bytes("00 11 00 22") + "MK001" + "M1" + std::string(18, '\0') +
                               "T000001" + Bytes("01 be a9 41 31 32 33 34 35");
  auto reg = DecodeRegistration(WithBody(Version::k2013, kRegistration, body2013));
  REQUIRE_MESSAGE(reg.ok(), reg.status().ToString());
  CHECK(reg->phone == "013800138000");
  CHECK(reg->version == Version::k2013);
  CHECK(reg->province == 0x11);
  CHECK(reg->city == 0x22);
  CHECK(reg->maker == "MK001");
  CHECK(reg->model == "M1");
  CHECK(reg->terminal_id == "T000001");
  CHECK(reg->plate_colour == 1);
  CHECK(Hex(reg->plate) == "be a9 41 31 32 33 34 35");

  // 2019: maker 11, model 30, terminal id 30.
  const std::string body2019 = Bytes("00 11 00 22") + "MAKER000001" + std::string(30, 'm') + "ID" +
                               std::string(28, '\0') + Bytes("00") + "LSVAU2180N2183294";
  auto reg19 = DecodeRegistration(WithBody(Version::k2019, kRegistration, body2019));
  REQUIRE_MESSAGE(reg19.ok(), reg19.status().ToString());
  CHECK(reg19->maker == "MAKER000001");
  CHECK(reg19->model == std::string(30, 'm'));
  CHECK(reg19->terminal_id == "ID");
  CHECK(reg19->plate_colour == 0);
  CHECK(reg19->plate == "LSVAU2180N2183294");

  // Cut at every field's end minus one byte: the error names that field.
  struct Cut {
    Version version;
    size_t length;
    const char* field;
  };
  const Cut cuts[] = {
      {Version::k2013, 1, "the province needs 2 byte(s) at byte 0, only 1 left"},
      {Version::k2013, 3, "the city needs 2 byte(s) at byte 2, only 1 left"},
      {Version::k2013, 8, "the maker ID needs 5 byte(s) at byte 4, only 4 left"},
      {Version::k2013, 28, "the model needs 20 byte(s) at byte 9, only 19 left"},
      {Version::k2013, 35, "the terminal ID needs 7 byte(s) at byte 29, only 6 left"},
      {Version::k2013, 36, "the plate colour needs 1 byte(s) at byte 36, only 0 left"},
      {Version::k2019, 14, "the maker ID needs 11 byte(s) at byte 4, only 10 left"},
      {Version::k2019, 44, "the model needs 30 byte(s) at byte 15, only 29 left"},
      {Version::k2019, 74, "the terminal ID needs 30 byte(s) at byte 45, only 29 left"},
      {Version::k2019, 75, "the plate colour needs 1 byte(s) at byte 75, only 0 left"},
  };
  for (const Cut& cut : cuts) {
    const std::string& full = cut.version == Version::k2013 ? body2013 : body2019;
    auto r = DecodeRegistration(WithBody(cut.version, kRegistration, full.substr(0, cut.length)));
    REQUIRE(!r.ok());
    const std::string prefix = std::string("0x0100 registration (") + ToString(cut.version) + "): ";
    CHECK(r.status().message() == prefix + cut.field);
  }
  // The fixed part alone (no plate) is whole.
  CHECK(DecodeRegistration(WithBody(Version::k2013, kRegistration, body2013.substr(0, 37))).ok());
  CHECK(DecodeRegistration(WithBody(Version::k2019, kRegistration, body2019.substr(0, 76))).ok());
}

TEST_CASE("0x0102 authentication, 2013 and 2019, at its length boundaries") {
  auto a13 =
      DecodeAuthentication(WithBody(Version::k2013, kAuthentication, std::string("CODE-1\0", 7)));
  REQUIRE(a13.ok());
  CHECK(a13->auth_code == "CODE-1");
  CHECK(a13->phone == "013800138000");
  CHECK(a13->imei.empty());
  auto empty = DecodeAuthentication(WithBody(Version::k2013, kAuthentication, ""));
  REQUIRE(!empty.ok());
  CHECK(empty.status().message() == "0x0102 authentication (2013): the auth code is empty");

  const std::string imei = "860000000000001";
  const std::string software = "V1.2" + std::string(16, '\0');
  const std::string body = Bytes("06") + "CODE-1" + imei + software;
  REQUIRE(body.size() == 1 + 6 + 15 + 20);
  auto a19 = DecodeAuthentication(WithBody(Version::k2019, kAuthentication, body));
  REQUIRE_MESSAGE(a19.ok(), a19.status().ToString());
  CHECK(a19->auth_code == "CODE-1");
  CHECK(a19->imei == imei);
  CHECK(a19->software_version == "V1.2");
  struct Cut {
    size_t length;
    const char* error;
  };
  const Cut cuts[] = {
      {0, "the auth code's length needs 1 byte(s) at byte 0, only 0 left"},
      {6, "the auth code needs 6 byte(s) at byte 1, only 5 left"},
      {21, "the IMEI needs 15 byte(s) at byte 7, only 14 left"},
      {41, "the software version needs 20 byte(s) at byte 22, only 19 left"},
  };
  for (const Cut& cut : cuts) {
    auto r =
        DecodeAuthentication(WithBody(Version::k2019, kAuthentication, body.substr(0, cut.length)));
    REQUIRE(!r.ok());
    CHECK(r.status().message() == std::string("0x0102 authentication (2019): ") + cut.error);
  }
  auto longer = DecodeAuthentication(WithBody(Version::k2019, kAuthentication, body + "x"));
  REQUIRE(!longer.ok());
  CHECK(longer.status().message().find("1 byte(s) after the software version") !=
        std::string::npos);
  auto no_code = DecodeAuthentication(
      WithBody(Version::k2019, kAuthentication, Bytes("00") + imei + software));
  REQUIRE(!no_code.ok());
  CHECK(no_code.status().message().find("the auth code is empty") != std::string::npos);
}

TEST_CASE("0x0200 location report: fields, signs by the status bits, additional items") {
  auto loc = DecodeLocation(Bytes(kLocationBody));
  REQUIRE_MESSAGE(loc.ok(), loc.status().ToString());
  CHECK(loc->alarm == 1);
  CHECK(loc->status == 0x0e);
  CHECK(loc->lat == doctest::Approx(-33.123456).epsilon(1e-12));
  CHECK(loc->lon == doctest::Approx(-113.654321).epsilon(1e-12));
  CHECK(loc->altitude_m == 50);
  CHECK(loc->speed_kmh == doctest::Approx(60.0));
  CHECK(loc->heading == 270);
  CHECK(loc->at_ms == kLocationMs);

  // North and east: status bits 2 and 3 clear.
  std::string north = Bytes(kLocationBody);
  north[7] = '\x02';
  auto ne = DecodeLocation(north);
  REQUIRE(ne.ok());
  CHECK(ne->lat == doctest::Approx(33.123456).epsilon(1e-12));
  CHECK(ne->lon == doctest::Approx(113.654321).epsilon(1e-12));
  // South only, west only.
  north[7] = '\x06';
  CHECK(DecodeLocation(north)->lat < 0);
  CHECK(DecodeLocation(north)->lon > 0);
  north[7] = '\x0a';
  CHECK(DecodeLocation(north)->lat > 0);
  CHECK(DecodeLocation(north)->lon < 0);

  // Additional items: mileage (01, 4 bytes) and signal strength (30, 1 byte), skipped.
  const std::string items = Bytes("01 04 00 00 12 34 30 01 1f");
  auto with_items = DecodeLocation(Bytes(kLocationBody) + items);
  REQUIRE(with_items.ok());
  CHECK(with_items->at_ms == kLocationMs);
  CHECK(DecodeLocation(Bytes(kLocationBody) + Bytes("e1 00")).ok());  // an empty item

  struct Bad {
    const char* name;
    std::string body;
    const char* error;
  };
  const std::string fixed = Bytes(kLocationBody);
  const Bad bad[] = {
      {"one byte short", fixed.substr(0, 27), "the time needs 6 byte(s) at byte 22, only 5 left"},
      {"no heading", fixed.substr(0, 21), "the heading needs 2 byte(s) at byte 20, only 1 left"},
      {"empty", "", "the alarm flags needs 4 byte(s) at byte 0, only 0 left"},
      {"an item's id alone", fixed + Bytes("01"),
       "an additional item at byte 28 needs an id and a length (2 bytes), only 1 left"},
      {"an item cut short", fixed + items.substr(0, 5),
       "the additional item 0x01 at byte 28 says 4 byte(s), only 3 left"},
      {"the second item cut short", fixed + items.substr(0, 8),
       "the additional item 0x30 at byte 34 says 1 byte(s), only 0 left"},
      {"latitude over 90", fixed.substr(0, 8) + Bytes("05 5d 4a 81") + fixed.substr(12),
       "the latitude 90000001 is over 90 degrees"},
      {"longitude over 180", fixed.substr(0, 12) + Bytes("0a ba 95 01") + fixed.substr(16),
       "the longitude 180000001 is over 180 degrees"},
      {"heading 360", fixed.substr(0, 20) + Bytes("01 68") + fixed.substr(22),
       "the heading 360 is over 359"},
      {"no time", fixed.substr(0, 22) + Bytes("00 00 00 00 00 00"),
       "the time 000000000000 is not a valid date and time"},
      {"time not BCD", fixed.substr(0, 22) + Bytes("26 12 07 07 5a 59"),
       "the time 261207075a59 is not BCD[6]"},
  };
  for (const Bad& b : bad) {
    CAPTURE(b.name);
    auto r = DecodeLocation(b.body);
    REQUIRE(!r.ok());
    CHECK_MESSAGE(r.status().message().rfind("0x0200 location report: ", 0) == 0,
                  r.status().message());
    CHECK_MESSAGE(r.status().message().find(b.error) != std::string::npos, r.status().message());
  }
  // The bounds themselves pass: 90 and 180 degrees, heading 359.
  CHECK(DecodeLocation(fixed.substr(0, 8) + Bytes("05 5d 4a 80 0a ba 95 00") + fixed.substr(16))
            .ok());
  CHECK(DecodeLocation(fixed.substr(0, 20) + Bytes("01 67") + fixed.substr(22)).ok());
}

TEST_CASE("BCD time: UTC+8 to Unix ms, across midnight, month ends and leap days") {
  struct Row {
    const char* bcd;
    std::int64_t ms;  // -1: refused
  };
  const Row rows[] = {
      {"26 12 07 07 59 59", kLocationMs},    // 2026-12-06T23:59:59Z
      {"26 12 07 08 00 00", 1796601600000},  // 2026-12-07T00:00:00Z
      {"26 01 01 07 59 59", 1767225599000},  // 2025-12-31T23:59:59Z: across the year
      {"00 01 01 08 00 00", 946684800000},   // 2000-01-01T00:00:00Z
      {"24 02 29 12 00 00", 1709179200000},  // a leap day
      {"26 02 29 12 00 00", -1},             // not a leap year
      {"26 13 01 00 00 00", -1},
      {"26 04 31 00 00 00", -1},
      {"26 12 07 24 00 00", -1},
      {"26 12 07 23 60 00", -1},
      {"26 12 07 23 59 60", -1},
      {"26 12 07 23 59 5f", -1},
  };
  for (const Row& row : rows) {
    CAPTURE(row.bcd);
    auto ms = BcdTimeToUnixMs(Bytes(row.bcd));
    if (row.ms < 0) {
      CHECK(!ms.ok());
    } else {
      REQUIRE_MESSAGE(ms.ok(), ms.status().ToString());
      CHECK(*ms == row.ms);
    }
  }
  CHECK(!BcdTimeToUnixMs(Bytes("26 12 07 23 59")).ok());
}

TEST_CASE("0x0704 batch location upload: items, type, and every length checked") {
  const std::string item = Bytes(kLocationBody);
  const std::string item2 = item + Bytes("30 01 1f");
  const std::string body = Bytes("00 02 01 00 1c") + item + Bytes("00 1f") + item2;
  auto batch = DecodeBatchLocation(body);
  REQUIRE_MESSAGE(batch.ok(), batch.status().ToString());
  CHECK(batch->resent);
  REQUIRE(batch->locations.size() == 2);
  CHECK(batch->locations[0].at_ms == kLocationMs);
  CHECK(batch->locations[1].lat == doctest::Approx(-33.123456).epsilon(1e-12));
  CHECK(!DecodeBatchLocation(Bytes("00 01 00 00 1c") + item)->resent);
  CHECK(DecodeBatchLocation(Bytes("00 00 00"))->locations.empty());

  struct Bad {
    const char* name;
    std::string body;
    const char* error;
  };
  const Bad bad[] = {
      {"no type", Bytes("00 01"), "the type needs 1 byte(s) at byte 2, only 0 left"},
      {"type 2", Bytes("00 01 02 00 1c") + item, "the type 2 is neither 0"},
      {"an item's length cut", Bytes("00 01 00 00"),
       "item 1 of 1's length needs 2 byte(s) at byte 3, only 1 left"},
      {"an item one byte short", Bytes("00 01 00 00 1c") + item.substr(0, 27),
       "item 1 of 1 needs 28 byte(s) at byte 5, only 27 left"},
      {"fewer items than counted", Bytes("00 03 00 00 1c") + item + Bytes("00 1c") + item,
       "item 3 of 3's length needs 2 byte(s) at byte 63, only 0 left"},
      {"more bytes than counted", Bytes("00 01 00 00 1c") + item + Bytes("00"),
       "1 byte(s) after the last of its 1 item(s)"},
      {"an item that does not decode",
       Bytes("00 02 00 00 1c") + item + Bytes("00 1b") + item.substr(0, 27),
       "0x0704 batch location upload, item 2 of 2: the time needs 6 byte(s) at byte 22, only 5 "
       "left"},
  };
  for (const Bad& b : bad) {
    CAPTURE(b.name);
    auto r = DecodeBatchLocation(b.body);
    REQUIRE(!r.ok());
    CHECK_MESSAGE(r.status().message().find(b.error) != std::string::npos, r.status().message());
  }
}

TEST_CASE("message names") {
  CHECK(MessageName(kLocationReport) == "0x0200 location report");
  CHECK(MessageName(0x0900) == "0x0900");
  CHECK(std::string(ToString(RegistrationResult::kNoSuchTerminal)) == "no such terminal");
}

}  // namespace
}  // namespace pingma::registry::jt808
