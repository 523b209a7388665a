// libFuzzer harness: ParseScan and the carrier/code normalisers never crash, and
// canonical forms are fixed points: a carrier key (prefixed) parses back to itself,
// a code key and a key's `also_code` are unchanged by NormaliseCode.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "pingma/scanner/scan.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  auto key = pingma::ParseScan(raw);
  if (key.ok() && key->kind != pingma::ScanKind::kCode) {
    auto again = pingma::ParseScan(key->text);
    if (!again.ok() || !(*again == *key)) std::abort();
  }
  if (key.ok() && key->kind == pingma::ScanKind::kCode) {
    auto again = pingma::NormaliseCode(key->text);
    if (!again.ok() || *again != key->text) std::abort();
  }
  if (key.ok() && key->also_code) {
    auto again = pingma::NormaliseCode(*key->also_code);
    if (!again.ok() || *again != *key->also_code) std::abort();
  }
  auto carrier = pingma::NormaliseCarrier(raw);
  if (carrier.ok()) {
    auto again = pingma::NormaliseCarrier(*carrier);
    if (!again.ok() || *again != *carrier) std::abort();
  }
  (void)pingma::NormaliseCode(raw);
  return 0;
}
