// slice_ring.cpp — growing a SliceRing past its inline slot, and the per-thread cache of emptied ring storage.
#include "ringlet/buf/slice_ring.hpp"

#include <algorithm>
#include <memory>

#include "ringlet/base/free_list.hpp"
#include "ringlet/buf/copy_counter.hpp"

namespace ringlet {
namespace {

// Storage of kInitialCapacity slots, kept for reuse. Bounded: past the cap, storage is freed.
using StorageCache = FreeList<Slice, std::default_delete<Slice[]>>;

StorageCache& cache() {
  thread_local StorageCache c;
  return c;
}

}  // namespace

void SliceRing::grow() {
  const std::size_t old_capacity = capacity();
  const std::size_t new_capacity = slots_ ? 2 * old_capacity : kInitialCapacity;
  Slice* fresh = new_capacity == kInitialCapacity ? cache().acquire() : nullptr;
  if (fresh == nullptr) fresh = new Slice[new_capacity];
  for (std::size_t i = 0; i < size_; ++i) fresh[i] = std::move((*this)[i]);
  if (slots_ != nullptr) {
    delete[] slots_;  // only rings larger than the cached size grow past it
  }
  slots_ = fresh;
  mask_ = static_cast<std::uint32_t>(new_capacity - 1);
  head_ = 0;
}

void SliceRing::release_storage() noexcept {
  Slice* storage = std::exchange(slots_, nullptr);
  const std::size_t cap = mask_ + 1;
  mask_ = 0;
  head_ = 0;
  if (cap == kInitialCapacity) {
    cache().release(storage);  // its slots are moved-from (empty) Slices
    return;
  }
  delete[] storage;
}

bool SliceRing::should_copy_out(const Slice& s, Copy what) noexcept {
  const Buffer* b = s.buffer();
  if (b == nullptr) return false;
  if (b->source->shared_ring()) return true;
  if (what == Copy::loans) return false;
  // Sparse: a 16 KiB pooled receive buffer holding a 64-byte request is 256 times its payload. Only worth a copy
  // when the copy lands in a smaller buffer (and one holding a few KiB is not worth it at all).
  return b->capacity > BufferPool::kClassCapacity[0] && std::size_t{s.size()} * 4 <= b->capacity;
}

std::size_t SliceRing::compact(Copy what) {
  std::size_t to_copy = 0;
  for (std::size_t i = 0; i < size_; ++i) {
    if (should_copy_out((*this)[i], what)) to_copy += (*this)[i].size();
  }
  if (to_copy == 0) return 0;
  const std::size_t copied = to_copy;
  constexpr std::size_t kMaxTarget = BufferPool::kClassCapacity[BufferPool::kClassCount - 1];
  Buffer* target = nullptr;
  std::uint32_t used = 0;
  auto finish_target = [&] {
    if (target == nullptr) return;
    push_back(Slice(target, 0, used));
    target = nullptr;
    used = 0;
  };
  // One pass round the ring: each slice leaves the front and its replacement (or itself) joins the back, so the
  // order of the bytes is kept without a second ring.
  for (std::size_t k = size_; k > 0; --k) {
    Slice s = pop_front();
    if (!should_copy_out(s, what)) {
      finish_target();
      push_back(std::move(s));
      continue;
    }
    std::span<const std::byte> src = s.span();
    while (!src.empty()) {
      if (target == nullptr) target = BufferPool::local().acquire(std::min(to_copy, kMaxTarget));
      const std::size_t n = std::min<std::size_t>(target->capacity - used, src.size());
      counted_copy(target->data + used, src.data(), n);
      used += static_cast<std::uint32_t>(n);
      src = src.subspan(n);
      to_copy -= n;
      if (used == target->capacity) finish_target();
    }
  }
  finish_target();
  return copied;
}

}  // namespace ringlet
