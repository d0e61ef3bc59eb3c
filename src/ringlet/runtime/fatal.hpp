// fatal.hpp — the one exit for broken invariants: print where, then abort.
// Thread-safe. Expected outcomes (EAGAIN, EOF, timeouts, bad input) never come here; they are Result values.
#pragma once

#include <source_location>

namespace ringlet {

[[noreturn]] void fatal(const char* what, std::source_location where = std::source_location::current()) noexcept;

}  // namespace ringlet

#define RINGLET_ASSERT(cond)                          \
  do {                                                \
    if (!(cond)) [[unlikely]]                         \
      ::ringlet::fatal("assertion failed: " #cond);   \
  } while (0)
