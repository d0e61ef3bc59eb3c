// slice_ring.cpp — growing a SliceRing past its inline slot, and the per-thread cache of emptied ring storage.
#include "ringlet/buf/slice_ring.hpp"

#include <vector>

namespace ringlet {
namespace {

// Storage of kInitialCapacity slots, kept for reuse. Bounded: past the cap, storage is freed.
struct StorageCache {
  static constexpr std::size_t kMaxCached = 4096;
  std::vector<Slice*> free;
  ~StorageCache() {
    for (Slice* p : free) delete[] p;
  }
};

StorageCache& cache() {
  thread_local StorageCache c;
  return c;
}

}  // namespace

void SliceRing::grow() {
  const std::size_t old_capacity = capacity();
  const std::size_t new_capacity = slots_ ? 2 * old_capacity : kInitialCapacity;
  Slice* fresh;
  StorageCache& c = cache();
  if (new_capacity == kInitialCapacity && !c.free.empty()) {
    fresh = c.free.back();
    c.free.pop_back();
  } else {
    fresh = new Slice[new_capacity];
  }
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
  StorageCache& c = cache();
  if (cap == kInitialCapacity && c.free.size() < StorageCache::kMaxCached) {
    c.free.push_back(storage);  // its slots are moved-from (empty) Slices
    return;
  }
  delete[] storage;
}

}  // namespace ringlet
