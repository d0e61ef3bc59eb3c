// allocation_counter.hpp — replaces the global operator new/delete with versions that count every allocation, so
// a test can prove a steady state allocates nothing. A replacement must be defined once per program: include this
// header in exactly one source file of a test executable (each test file is its own executable).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace ringlet::testing {

inline std::atomic<std::size_t> g_operator_new_calls{0};

// Global operator new calls so far in this process (all threads).
inline std::size_t operator_new_calls() noexcept { return g_operator_new_calls.load(std::memory_order_relaxed); }

}  // namespace ringlet::testing

void* operator new(std::size_t n) {
  ringlet::testing::g_operator_new_calls.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
// GCC cannot see that the replaced operator new above returns malloc memory.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop
