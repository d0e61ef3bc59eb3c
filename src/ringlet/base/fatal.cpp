// fatal.cpp — prints the broken invariant with its location and aborts.
#include "ringlet/base/fatal.hpp"

#include <cstdio>
#include <cstdlib>

namespace ringlet {

void fatal(const char* what, const char* file, int line, const char* function) noexcept {
  std::fprintf(stderr, "ringlet: fatal: %s at %s:%d (%s)\n", what, file, line, function);
  std::fflush(stderr);
  std::abort();
}

}  // namespace ringlet
