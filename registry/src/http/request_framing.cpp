#include "http/request_framing.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

namespace pingma::registry {
namespace {

bool EqualsLower(std::string_view text, std::string_view lower) {
  if (text.size() != lower.size()) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

EdgeRefusal Malformed(std::string message) {
  return {400, "MALFORMED", std::move(message)};
}

}  // namespace

RequestFraming::Step RequestFraming::Feed(const char* data, std::size_t n) {
  if (phase_ == Phase::kRefused) return {0, refusal_};
  std::size_t begun_at = 0;  // where the current request began, when in this chunk
  auto refuse = [&](EdgeRefusal why) {
    phase_ = Phase::kRefused;
    refusal_ = std::move(why);
    return Step{begun_at, refusal_};
  };
  std::size_t i = 0;
  while (i < n) {
    switch (phase_) {
      case Phase::kBetween:
        // The empty lines a client may send between requests (RFC 9112, 2.2).
        if (data[i] == '\r' || data[i] == '\n') {
          ++i;
          break;
        }
        phase_ = Phase::kHead;
        ++requests_begun_;
        begun_at = i;
        head_bytes_ = 0;
        line_.clear();
        request_line_ = true;
        method_.clear();
        target_.clear();
        authorization_.clear();
        content_length_.reset();
        transfer_encoding_ = false;
        break;
      case Phase::kHead: {
        const char* end = static_cast<const char*>(std::memchr(data + i, '\n', n - i));
        const std::size_t take = end ? static_cast<std::size_t>(end - (data + i)) + 1 : n - i;
        head_bytes_ += take;
        if (head_bytes_ > kMaxHeadBytes) {
          return refuse({431, "TOO_LARGE",
                         fmt::format("the request line and header fields take more than {} bytes",
                                     kMaxHeadBytes)});
        }
        line_.append(data + i, end ? take - 1 : take);
        i += take;
        if (!end) break;
        std::string_view line = line_;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        std::optional<EdgeRefusal> refused;
        if (line.empty() && !request_line_) {
          refused = EndHead();
        } else {
          refused = TakeLine(line);
        }
        line_.clear();
        if (refused) return refuse(std::move(*refused));
        break;
      }
      case Phase::kBody: {
        const std::uint64_t take = std::min<std::uint64_t>(body_left_, n - i);
        body_left_ -= take;
        i += static_cast<std::size_t>(take);
        if (body_left_ == 0) phase_ = Phase::kBetween;
        break;
      }
      case Phase::kRefused:
        return {begun_at, refusal_};
    }
  }
  return {n, std::nullopt};
}

std::optional<EdgeRefusal> RequestFraming::TakeLine(std::string_view line) {
  if (request_line_) {
    request_line_ = false;
    const std::size_t sp1 = line.find(' ');
    const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || sp1 == 0 || sp2 == sp1 + 1 ||
        line.substr(sp2 + 1).rfind("HTTP/", 0) != 0) {
      return Malformed("the request line must be 'METHOD TARGET HTTP/1.1'");
    }
    method_ = line.substr(0, sp1);
    target_ = line.substr(sp1 + 1, sp2 - sp1 - 1);
    return std::nullopt;
  }
  if (line.front() == ' ' || line.front() == '\t') {
    return Malformed("a header field continued on the next line (obs-fold) is not accepted");
  }
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Malformed("a header field line must be 'Name: value'");
  }
  const std::string_view name = line.substr(0, colon);
  const std::string_view value = TrimSpace(line.substr(colon + 1));
  if (EqualsLower(name, "content-length")) {
    std::uint64_t length = 0;
    bool digits = !value.empty() && value.size() <= 18;
    for (char c : value) {
      digits = digits && c >= '0' && c <= '9';
      if (digits) length = length * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (!digits) return Malformed(fmt::format("Content-Length '{}' is not a byte count", value));
    if (content_length_ && *content_length_ != length) {
      return Malformed("the request has two different Content-Length fields");
    }
    content_length_ = length;
  } else if (EqualsLower(name, "transfer-encoding")) {
    transfer_encoding_ = true;
  } else if (EqualsLower(name, "authorization")) {
    authorization_ = value;
  }
  return std::nullopt;
}

std::optional<EdgeRefusal> RequestFraming::EndHead() {
  if (transfer_encoding_) {
    return EdgeRefusal{411, "LENGTH_REQUIRED",
                       "send the body with a Content-Length; Transfer-Encoding (chunked) is not "
                       "accepted"};
  }
  const std::uint64_t length = content_length_.value_or(0);
  if (length > small_body_) {
    const std::uint64_t limit = limit_(RequestHead{method_, target_, authorization_, length});
    if (length > limit) {
      return EdgeRefusal{413, "TOO_LARGE",
                         fmt::format("the body is {} bytes; the limit here is {}", length, limit)};
    }
  }
  body_left_ = length;
  phase_ = length > 0 ? Phase::kBody : Phase::kBetween;
  return std::nullopt;
}

}  // namespace pingma::registry
