// copy_counter.hpp — how many payload bytes ringlet copied in user space, per thread.
// Thread-local: each thread counts only its own copies.
//
// Every place in ringlet that memcpys payload bytes goes through counted_copy() (or calls count_copy() beside its
// own copy), so a test can take bytes_copied() before and after a pass-through path and assert it moved nothing.
// Headers, iovec arrays and other metadata are not payload and are not counted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace ringlet {

namespace detail {
inline thread_local std::uint64_t copied_bytes = 0;
}  // namespace detail

inline std::uint64_t bytes_copied() noexcept { return detail::copied_bytes; }

inline void count_copy(std::size_t n) noexcept { detail::copied_bytes += n; }

// memcpy that is counted; the only way buf/ copies payload.
inline void counted_copy(std::byte* dst, const std::byte* src, std::size_t n) noexcept {
  if (n == 0) return;  // memcpy with a null pointer is undefined even for n == 0
  std::memcpy(dst, src, n);
  count_copy(n);
}

}  // namespace ringlet
