#include "store/schema.h"

#include <cstddef>
#include <cstdio>
#include <cstdlib>

namespace pingma::registry::schema {

// Defined in the generated schema_files.cpp (cmake/embed_files.cmake).
std::size_t SchemaFileCount();
std::string_view SchemaFilePath(std::size_t i);
std::string_view SchemaFileBytes(std::size_t i);

std::string_view Text(std::string_view path) {
  for (std::size_t i = 0; i < SchemaFileCount(); ++i) {
    if (SchemaFilePath(i) == path) return SchemaFileBytes(i);
  }
  std::fprintf(stderr, "pingma-registry: the schema file %.*s is not in this build\n",
               static_cast<int>(path.size()), path.data());
  std::abort();
}

}  // namespace pingma::registry::schema
