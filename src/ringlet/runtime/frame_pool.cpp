// frame_pool.cpp — per-thread size-class free lists for coroutine frames.
#include "ringlet/runtime/frame_pool.hpp"

#include <cstdlib>
#include <new>

#include "ringlet/runtime/fatal.hpp"

namespace ringlet {
namespace {

struct alignas(16) BlockHeader {
  std::uint32_t size_class;  // kClasses means "malloc'd, not pooled"
  std::uint32_t magic;
};
constexpr std::uint32_t kMagic = 0x52464d45;  // "RFME"

struct FreeBlock {
  FreeBlock* next;
};

struct ThreadPool {
  FreeBlock* free[FramePool::kClasses] = {};
  std::size_t cached[FramePool::kClasses] = {};
  std::size_t live = 0;

  ~ThreadPool() { trim(); }
  void trim() noexcept {
    for (std::size_t c = 0; c < FramePool::kClasses; ++c) {
      while (FreeBlock* b = free[c]) {
        free[c] = b->next;
        std::free(b);
      }
      cached[c] = 0;
    }
  }
};

ThreadPool& pool() {
  thread_local ThreadPool p;
  return p;
}

}  // namespace

void* FramePool::allocate(std::size_t size) {
  ThreadPool& p = pool();
  std::size_t total = size + sizeof(BlockHeader);
  std::size_t c = (total + kGranularity - 1) / kGranularity - 1;
  void* raw;
  if (c < kClasses) {
    if (FreeBlock* b = p.free[c]) {
      p.free[c] = b->next;
      --p.cached[c];
      raw = b;
    } else {
      raw = std::malloc((c + 1) * kGranularity);
    }
  } else {
    c = kClasses;
    raw = std::malloc(total);
  }
  if (raw == nullptr) throw std::bad_alloc();
  auto* h = static_cast<BlockHeader*>(raw);
  h->size_class = static_cast<std::uint32_t>(c);
  h->magic = kMagic;
  ++p.live;
  return h + 1;
}

void FramePool::deallocate(void* ptr) noexcept {
  if (ptr == nullptr) return;
  auto* h = static_cast<BlockHeader*>(ptr) - 1;
  if (h->magic != kMagic) fatal("frame pool: freeing a block it did not allocate");
  h->magic = 0;
  ThreadPool& p = pool();
  --p.live;
  std::uint32_t c = h->size_class;
  if (c >= kClasses || p.cached[c] >= kMaxCachedPerClass) {
    std::free(h);
    return;
  }
  auto* b = reinterpret_cast<FreeBlock*>(h);
  b->next = p.free[c];
  p.free[c] = b;
  ++p.cached[c];
}

std::size_t FramePool::live_frames() noexcept { return pool().live; }
void FramePool::trim() noexcept { pool().trim(); }

}  // namespace ringlet
