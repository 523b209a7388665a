// RequestFraming at its boundaries: a body of exactly the route's limit passes and
// one byte more is refused before it is read; the head's size, chunked bodies,
// malformed lengths, pipelined requests, and bytes fed one at a time.
#include <doctest/doctest.h>

#include <string>

#include "http/request_framing.h"

namespace pingma::registry {
namespace {

constexpr std::uint64_t kSmall = 100;
constexpr std::uint64_t kRoute = 1000;

// Bodies over kSmall get kRoute on /big with a token, kSmall elsewhere.
RequestFraming Framing(int* lookups = nullptr) {
  return RequestFraming(kSmall, [lookups](const RequestHead& head) -> std::uint64_t {
    if (lookups) ++*lookups;
    return head.target == "/big" && head.authorization == "Bearer t" ? kRoute : kSmall;
  });
}

std::string Post(const std::string& target, std::uint64_t length, const std::string& extra = "") {
  return "POST " + target + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n" + extra +
         "Content-Length: " + std::to_string(length) + "\r\n\r\n" + std::string(length, 'b');
}

RequestFraming::Step FeedAll(RequestFraming& f, const std::string& bytes) {
  return f.Feed(bytes.data(), bytes.size());
}

TEST_CASE("a body of exactly the limit passes; one byte more is refused with 413") {
  struct Row {
    const char* target;
    std::uint64_t length;
    int status;  // 0: accepted
  };
  const Row rows[] = {
      {"/big", kRoute, 0},   {"/big", kRoute + 1, 413},
      {"/other", kSmall, 0}, {"/other", kSmall + 1, 413},
      {"/big", 0, 0},        {"/big", 99999999999ull, 413},
  };
  for (const Row& row : rows) {
    RequestFraming f = Framing();
    const std::string request = Post(row.target, row.length > 5000 ? 0 : row.length);
    // The head alone decides: the body is not needed to refuse it.
    const std::string head = request.substr(0, request.find("\r\n\r\n") + 4);
    std::string declared = head;
    declared.replace(declared.find("Content-Length: ") + 16,
                     declared.find("\r\n", declared.find("Content-Length: ")) -
                         (declared.find("Content-Length: ") + 16),
                     std::to_string(row.length));
    auto step = FeedAll(f, declared);
    if (row.status == 0) {
      CHECK_MESSAGE(!step.refusal, row.target, " ", row.length);
      CHECK(step.accepted == declared.size());
    } else {
      REQUIRE_MESSAGE(step.refusal, row.target, " ", row.length);
      CHECK(step.refusal->status == row.status);
      CHECK(step.refusal->code == "TOO_LARGE");
      CHECK(step.accepted == 0);
    }
  }
}

TEST_CASE("a small body is not looked up; a larger one is, once") {
  int lookups = 0;
  RequestFraming f = Framing(&lookups);
  CHECK(!FeedAll(f, Post("/big", kSmall)).refusal);
  CHECK(lookups == 0);
  CHECK(!FeedAll(f, Post("/big", kSmall + 1)).refusal);
  CHECK(lookups == 1);
}

TEST_CASE("the body of a request is not taken for the next request's head") {
  RequestFraming f = Framing();
  // A body that looks like a head with a huge length is body, not a request.
  const std::string body = "GET / HTTP/1.1\r\nContent-Length: 999999\r\n\r\n";
  const std::string first = "POST /big HTTP/1.1\r\nAuthorization: Bearer t\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\n\r\n" + body;
  auto step = FeedAll(f, first + Post("/other", 5));
  CHECK(!step.refusal);
  CHECK(!f.in_head());
  CHECK(f.requests_begun() == 2);
}

TEST_CASE("pipelined: the requests before a refused one are accepted, the rest is not") {
  RequestFraming f = Framing();
  const std::string good = Post("/other", 10);
  const std::string bad = Post("/other", kSmall + 1);
  auto step = FeedAll(f, good + good + bad);
  REQUIRE(step.refusal);
  CHECK(step.refusal->status == 413);
  CHECK(step.accepted == 2 * good.size());
  // Refused for good: whatever follows is refused with it.
  auto after = FeedAll(f, good);
  REQUIRE(after.refusal);
  CHECK(after.accepted == 0);
}

TEST_CASE("bytes one at a time give the same verdicts") {
  RequestFraming f = Framing();
  const std::string bytes = "\r\n" + Post("/big", kRoute) + Post("/big", kRoute + 1);
  std::size_t refused_at = 0;
  for (std::size_t i = 0; i < bytes.size() && refused_at == 0; ++i) {
    auto step = f.Feed(&bytes[i], 1);
    if (step.refusal) {
      CHECK(step.accepted == 0);
      refused_at = i;
    }
  }
  // Refused on the head's last byte, not a byte of its body later.
  const std::size_t second = 2 + Post("/big", kRoute).size();
  CHECK(refused_at == bytes.find("\r\n\r\n", second) + 3);
}

TEST_CASE("heads: size, chunked bodies, lengths and lines") {
  struct Row {
    const char* name;
    std::string bytes;
    int status;
  };
  const std::string big_field =
      "X-Pad: " + std::string(RequestFraming::kMaxHeadBytes, 'p') + "\r\n";
  const Row rows[] = {
      {"a head over the limit", "GET / HTTP/1.1\r\n" + big_field, 431},
      {"a head over the limit with no line end",
       "GET /" + std::string(RequestFraming::kMaxHeadBytes, 'a'), 431},
      {"chunked", "POST /big HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", 411},
      {"chunked, any case", "POST /big HTTP/1.1\r\ntransfer-ENCODING: gzip, chunked\r\n\r\n", 411},
      {"a length with a sign", "POST /big HTTP/1.1\r\nContent-Length: +5\r\n\r\n", 400},
      {"a length with letters", "POST /big HTTP/1.1\r\nContent-Length: 5a\r\n\r\n", 400},
      {"an empty length", "POST /big HTTP/1.1\r\nContent-Length:\r\n\r\n", 400},
      {"two lengths", "POST /big HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
      {"a folded field", "GET / HTTP/1.1\r\nX-A: 1\r\n  2\r\n\r\n", 400},
      {"no colon", "GET / HTTP/1.1\r\nnonsense\r\n\r\n", 400},
      {"a bad request line", "GET /\r\n\r\n", 400},
      {"the same length twice", Post("/other", 5, "Content-Length: 5\r\n"), 0},
      {"bare line feeds", "GET / HTTP/1.1\nHost: x\n\n", 0},
      {"a length in any case with spaces", "POST /x HTTP/1.1\r\ncontent-length:   3  \r\n\r\nabc",
       0},
  };
  for (const Row& row : rows) {
    RequestFraming f = Framing();
    auto step = FeedAll(f, row.bytes);
    if (row.status == 0) {
      CHECK_MESSAGE(!step.refusal, row.name);
      CHECK_MESSAGE(!f.in_head(), row.name);
    } else {
      REQUIRE_MESSAGE(step.refusal, row.name);
      CHECK_MESSAGE(step.refusal->status == row.status, row.name);
    }
  }
}

TEST_CASE("in_head tells a begun head from the time between requests") {
  RequestFraming f = Framing();
  CHECK(!f.in_head());
  FeedAll(f, "\r\n");
  CHECK(!f.in_head());
  CHECK(f.requests_begun() == 0);
  FeedAll(f, "G");
  CHECK(f.in_head());
  CHECK(f.requests_begun() == 1);
  FeedAll(f, "ET / HTTP/1.1\r\n\r\n");
  CHECK(!f.in_head());
}

}  // namespace
}  // namespace pingma::registry
