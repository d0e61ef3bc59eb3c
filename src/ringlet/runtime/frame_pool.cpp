// frame_pool.cpp — per-thread size-class free lists without block headers.
#include "ringlet/runtime/frame_pool.hpp"

#include <cstddef>
#include <cstdlib>
#include <new>

namespace ringlet {
namespace {

constexpr std::size_t kSmallClasses = FramePool::kSmallLimit / FramePool::kSmallStep;
constexpr std::size_t kLargeClasses = (FramePool::kLargeLimit - FramePool::kSmallLimit) / FramePool::kLargeStep;
constexpr std::size_t kClasses = kSmallClasses + kLargeClasses;

struct FreeBlock {
  FreeBlock* next;
};

// Size class of a request, and the block size that class hands out; kClasses for "too big, use malloc".
[[maybe_unused]] std::size_t class_of(std::size_t size) noexcept {
  if (size <= FramePool::kSmallLimit) return size == 0 ? 0 : (size - 1) / FramePool::kSmallStep;
  if (size <= FramePool::kLargeLimit) return kSmallClasses + (size - FramePool::kSmallLimit - 1) / FramePool::kLargeStep;
  return kClasses;
}
[[maybe_unused]] std::size_t block_size(std::size_t c) noexcept {
  if (c < kSmallClasses) return (c + 1) * FramePool::kSmallStep;
  return FramePool::kSmallLimit + (c - kSmallClasses + 1) * FramePool::kLargeStep;
}

// Blocks are carved from 64 KiB slabs, so a block costs exactly its class size (malloc would add its own header
// to every frame). Slabs are kept until the thread exits; the free lists are bounded by the peak of live blocks.
constexpr std::size_t kSlabBytes = 64 * 1024;

struct Slab {
  Slab* next;
};

struct ThreadPool {
  FreeBlock* free[kClasses] = {};
  std::size_t live = 0;
  Slab* slabs = nullptr;
  std::byte* carve = nullptr;  // unused rest of the newest slab
  std::size_t carve_left = 0;

  ~ThreadPool() {
    while (Slab* s = slabs) {
      slabs = s->next;
      std::free(s);
    }
  }
  void* take_fresh(std::size_t bytes) {
    if (carve_left < bytes) {
      // The remainder of the old slab is dropped on the floor: at most one block's worth per slab.
      auto* slab = static_cast<Slab*>(std::malloc(kSlabBytes));
      if (slab == nullptr) return nullptr;
      slab->next = slabs;
      slabs = slab;
      carve = reinterpret_cast<std::byte*>(slab) + 64;  // keep blocks cache-line aligned
      carve_left = kSlabBytes - 64;
    }
    void* p = carve;
    carve += bytes;
    carve_left -= bytes;
    return p;
  }
};

ThreadPool& pool() {
  thread_local ThreadPool p;
  return p;
}

}  // namespace

#ifdef RINGLET_SANITIZE
// Under AddressSanitizer every block is its own allocation, so an overflow or a use after free is caught at the
// block, not hidden inside a slab.
void* FramePool::allocate(std::size_t size) {
  void* raw = std::malloc(size);
  if (raw == nullptr) throw std::bad_alloc();
  ++pool().live;
  return raw;
}
void FramePool::deallocate(void* ptr, std::size_t) noexcept {
  if (ptr == nullptr) return;
  --pool().live;
  std::free(ptr);
}
#else
void* FramePool::allocate(std::size_t size) {
  ThreadPool& p = pool();
  std::size_t c = class_of(size);
  void* raw;
  if (c < kClasses) {
    if (FreeBlock* b = p.free[c]) {
      p.free[c] = b->next;
      raw = b;
    } else {
      raw = p.take_fresh(block_size(c));
    }
  } else {
    raw = std::malloc(size);
  }
  if (raw == nullptr) throw std::bad_alloc();
  ++p.live;
  return raw;
}

void FramePool::deallocate(void* ptr, std::size_t size) noexcept {
  if (ptr == nullptr) return;
  ThreadPool& p = pool();
  --p.live;
  std::size_t c = class_of(size);
  if (c >= kClasses) {
    std::free(ptr);
    return;
  }
  auto* b = static_cast<FreeBlock*>(ptr);
  b->next = p.free[c];
  p.free[c] = b;
}

#endif

std::size_t FramePool::live_frames() noexcept { return pool().live; }

}  // namespace ringlet
