// fatal.cpp — prints the broken invariant with its location and aborts.
#include "ringlet/runtime/fatal.hpp"

#include <cstdio>
#include <cstdlib>

namespace ringlet {

void fatal(const char* what, std::source_location where) noexcept {
  std::fprintf(stderr, "ringlet: fatal: %s at %s:%u (%s)\n", what, where.file_name(),
               static_cast<unsigned>(where.line()), where.function_name());
  std::fflush(stderr);
  std::abort();
}

}  // namespace ringlet
