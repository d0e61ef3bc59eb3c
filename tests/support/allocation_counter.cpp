// allocation_counter.cpp — the counting replacement of the global operator new/delete (see allocation_counter.hpp).
// Not part of the ringlet_test_support library: an archive member defining operator new would be linked into every
// test executable, since every one of them calls it.
#include "support/allocation_counter.hpp"

#include <atomic>
#include <cstdlib>
#include <new>

namespace ringlet::testing {
namespace {

std::atomic<std::size_t> g_operator_new_calls{0};

}  // namespace

std::size_t operator_new_calls() noexcept { return g_operator_new_calls.load(std::memory_order_relaxed); }

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
