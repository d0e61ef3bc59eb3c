// output_chain.hpp — bytes waiting to be written, as a chain of Slices handed to the kernel in one writev/sendmsg.
// Core-local.
//
// append() adds a Slice without copying; a Slice that continues the last piece in the same buffer is joined to it.
// append_copy() is for small, short-lived bytes (a status line, a "\r\n"): they are copied into a pooled tail buffer
// that the chain owns, so a run of small writes becomes one piece instead of many tiny iovecs. Large payloads should
// be appended as Slices.
//
// After a write of n bytes, advance(n) releases the pieces fully written and moves the first piece's offset past
// the rest. The unsent tail is never copied, so a big write drained in many partial writes stays O(n).
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include "ringlet/buf/slice.hpp"
#include "ringlet/buf/slice_ring.hpp"

struct iovec;

namespace ringlet {

class OutputChain {
 public:
  void append(Slice s);
  void append_copy(std::span<const std::byte> bytes);
  void append_copy(std::string_view text);

  std::size_t bytes() const noexcept { return bytes_; }
  bool empty() const noexcept { return bytes_ == 0; }
  std::size_t pieces() const noexcept { return ring_.size(); }

  // Describes up to max_iov pieces from the current offset; returns how many entries were filled. The iovecs point
  // into the pieces' buffers, so they stay valid until advance() or clear(); appending never moves queued bytes.
  std::size_t fill_iovecs(struct iovec* iov, std::size_t max_iov) const noexcept;
  void advance(std::size_t n) noexcept;  // n <= bytes()
  // Removes and returns the first piece (its unsent part), without copying; empty Slice when the chain is empty.
  Slice pop_front() noexcept;
  void clear() noexcept;
  // Copies pieces borrowed from a shared receive ring out of it (SliceRing::compact; the caller's own buffers stay
  // as they are, however partially sent). Only while no write of the chain is in flight: the kernel may be reading
  // the old pieces. Returns the bytes copied.
  std::size_t compact();
  // True when some piece is such a loan.
  bool holds_loans() const noexcept;

 private:
  SliceRing ring_;
  std::size_t bytes_ = 0;
  // The last piece is an append_copy buffer nobody else references, so bytes past its end may be written.
  bool tail_writable_ = false;
};

}  // namespace ringlet
