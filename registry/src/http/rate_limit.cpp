#include "http/rate_limit.h"

#include <arpa/inet.h>

#include <fmt/format.h>

namespace pingma::registry {

std::string AddressKey(std::string_view address) {
  const std::string text(address.substr(0, address.find('%')));  // no zone index
  unsigned char v6[16];
  if (text.find(':') == std::string::npos || inet_pton(AF_INET6, text.c_str(), v6) != 1) {
    return std::string(address);
  }
  static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(std::begin(kMapped), std::end(kMapped), v6)) {
    return fmt::format("{}.{}.{}.{}", v6[12], v6[13], v6[14], v6[15]);
  }
  const auto group = [&v6](int i) { return (v6[2 * i] << 8) | v6[2 * i + 1]; };
  return fmt::format("{:x}:{:x}:{:x}:{:x}::/64", group(0), group(1), group(2), group(3));
}

}  // namespace pingma::registry
