// fuzz_check.hpp — what every fuzz target asserts with: an abort libFuzzer reports as a crash (assert() is gone in
// release-mode builds), and whether a parser's output view lies inside the bytes it was parsed from.
#pragma once

#include <cstdlib>
#include <string_view>

inline void check(bool ok) {
  if (!ok) std::abort();
}

inline bool inside(std::string_view part, std::string_view whole) {
  return part.empty() || (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}
