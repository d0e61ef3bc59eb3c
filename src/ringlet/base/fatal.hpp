// fatal.hpp — the one exit for broken invariants: print where, then abort.
// Thread-safe. Expected outcomes (EAGAIN, EOF, timeouts, bad input) never come here; they are Result values.
#pragma once

namespace ringlet {

// The location defaults use the compiler builtins rather than std::source_location, so the same header builds with
// clang 14 (the fuzzers), whose <source_location> support against libstdc++ 12 is missing.
[[noreturn]] void fatal(const char* what, const char* file = __builtin_FILE(), int line = __builtin_LINE(),
                        const char* function = __builtin_FUNCTION()) noexcept;

}  // namespace ringlet

#define RINGLET_ASSERT(cond)                          \
  do {                                                \
    if (!(cond)) [[unlikely]]                         \
      ::ringlet::fatal("assertion failed: " #cond);   \
  } while (0)
