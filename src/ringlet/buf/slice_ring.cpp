// slice_ring.cpp — growing a SliceRing past its inline slot, and the per-thread cache of emptied ring storage.
#include "ringlet/buf/slice_ring.hpp"

#include <memory>

#include "ringlet/base/free_list.hpp"

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

}  // namespace ringlet
