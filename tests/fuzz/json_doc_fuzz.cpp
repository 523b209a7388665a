// libFuzzer harness: JsonDoc takes exactly the texts that nlohmann's parser takes
// (but for nlohmann's reading of a NUL byte as the end), and reads every value of
// them as nlohmann does; on any bytes, no read out of bounds.
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "json_doc.h"
#include "json_doc_nlohmann.h"

using nlohmann::json;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto doc = pingma::station::JsonDoc::Parse(text);
  // nlohmann's lexer takes a NUL byte for the end of the text ("0\0x" passes);
  // no JSON text holds one, and JsonDoc refuses every text that does.
  if (text.find('\0') != std::string::npos) {
    if (doc.ok()) std::abort();
    return 0;
  }
  const bool accepted = json::accept(text);
  if (doc.ok() != accepted) std::abort();
  if (!accepted) return 0;
  if (pingma::station::ToNlohmann(doc->Root()) != json::parse(text)) std::abort();
  return 0;
}
