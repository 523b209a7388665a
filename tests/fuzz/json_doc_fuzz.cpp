// libFuzzer harness: JsonDoc takes exactly the texts that nlohmann's parser takes,
// and reads every value of them as nlohmann does; on any bytes, no read out of
// bounds.
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "json_doc.h"
#include "json_doc_nlohmann.h"

using nlohmann::json;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  const bool accepted = json::accept(text);
  auto doc = pingma::station::JsonDoc::Parse(text);
  if (doc.ok() != accepted) std::abort();
  if (!accepted) return 0;
  if (pingma::station::ToNlohmann(doc->Root()) != json::parse(text)) std::abort();
  return 0;
}
