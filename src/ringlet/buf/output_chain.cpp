// output_chain.cpp — appending, coalescing small copies, and consuming the chain after partial writes.
#include "ringlet/buf/output_chain.hpp"

#include <sys/uio.h>

#include <algorithm>

#include "ringlet/buf/copy_counter.hpp"

namespace ringlet {

namespace {
// Copies larger than this are split over several pooled buffers instead of one exact (unpooled) allocation.
constexpr std::size_t kMaxCopyBuffer = BufferPool::kClassCapacity[BufferPool::kClassCount - 1];
}  // namespace

void OutputChain::append(Slice s) {
  if (s.empty()) return;
  const std::size_t n = s.size();
  if (ring_.empty() || !ring_.back().try_join(s)) {
    ring_.push_back(std::move(s));
    tail_writable_ = false;
  }
  bytes_ += n;
}

void OutputChain::append_copy(std::span<const std::byte> bytes) {
  while (!bytes.empty()) {
    if (tail_writable_) {
      Slice& tail = ring_.back();
      Buffer* b = tail.buffer();
      RINGLET_ASSERT(b->refs == 1);
      const std::size_t end = tail.offset() + tail.size();
      const std::size_t n = std::min<std::size_t>(b->capacity - end, bytes.size());
      if (n > 0) {
        counted_copy(b->data + end, bytes.data(), n);
        buffer_ref(b);
        Slice added(b, static_cast<std::uint32_t>(end), static_cast<std::uint32_t>(n));
        tail.try_join(added);
        bytes_ += n;
        bytes = bytes.subspan(n);
        continue;
      }
    }
    Buffer* b = BufferPool::local().acquire(std::min(bytes.size(), kMaxCopyBuffer));
    const std::size_t n = std::min<std::size_t>(b->capacity, bytes.size());
    counted_copy(b->data, bytes.data(), n);
    ring_.push_back(Slice(b, 0, static_cast<std::uint32_t>(n)));
    tail_writable_ = true;
    bytes_ += n;
    bytes = bytes.subspan(n);
  }
}

void OutputChain::append_copy(std::string_view text) {
  append_copy(std::as_bytes(std::span(text.data(), text.size())));
}

std::size_t OutputChain::fill_iovecs(struct iovec* iov, std::size_t max_iov) const noexcept {
  const std::size_t count = std::min(max_iov, ring_.size());
  for (std::size_t i = 0; i < count; ++i) {
    const Slice& s = ring_[i];
    // iovec is shared by readv and writev, hence the non-const base; writev does not write through it.
    iov[i].iov_base = const_cast<std::byte*>(s.data());
    iov[i].iov_len = s.size();
  }
  return count;
}

void OutputChain::advance(std::size_t n) noexcept {
  RINGLET_ASSERT(n <= bytes_);
  bytes_ -= n;
  ring_.consume_front(n);
  if (ring_.empty()) tail_writable_ = false;
}

Slice OutputChain::pop_front() noexcept {
  if (ring_.empty()) return Slice{};
  Slice s = ring_.pop_front();
  bytes_ -= s.size();
  if (ring_.empty()) tail_writable_ = false;
  return s;
}

void OutputChain::clear() noexcept {
  ring_.clear();
  bytes_ = 0;
  tail_writable_ = false;
}

std::size_t OutputChain::compact() {
  const std::size_t copied = ring_.compact(SliceRing::Copy::loans);
  if (copied != 0) tail_writable_ = false;  // the last piece may now be a compacted buffer: not ours to extend
  return copied;
}

bool OutputChain::holds_loans() const noexcept {
  for (std::size_t i = 0; i < ring_.size(); ++i) {
    if (SliceRing::should_copy_out(ring_[i], SliceRing::Copy::loans)) return true;
  }
  return false;
}

}  // namespace ringlet
