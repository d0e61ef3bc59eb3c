// allocation_counter.hpp — counts every global operator new, so a test can prove a steady state allocates nothing.
// The counting operator new/delete replace the global ones in allocation_counter.cpp, which tests/CMakeLists.txt
// compiles into each test executable with a file that includes this header (once per program, however many of its
// files do; re-run cmake after adding the include to an existing file). Other executables keep the real operator
// new, so the sanitizers still check each delete against its new there.
#pragma once

#include <cstddef>

namespace ringlet::testing {

// Global operator new calls so far in this process (all threads).
std::size_t operator_new_calls() noexcept;

}  // namespace ringlet::testing
