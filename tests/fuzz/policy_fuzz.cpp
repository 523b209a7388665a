// libFuzzer harness: any bytes as a policy file are refused or accepted without a
// crash, and an accepted policy survives a round trip through PolicyToJson.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "pingma/common/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto policy = pingma::ParsePolicy(std::string_view(reinterpret_cast<const char*>(data), size));
  if (policy.ok()) {
    const std::string text = pingma::PolicyToJson(*policy);
    auto again = pingma::ParsePolicy(text);
    if (!again.ok() || pingma::PolicyToJson(*again) != text) std::abort();
  }
  return 0;
}
