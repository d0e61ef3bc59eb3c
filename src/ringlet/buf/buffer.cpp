// buffer.cpp — the per-thread BufferPool: intrusive free lists per size class, bounded, trimmed at thread exit.
//
// Lifetime trap: buffers may be released from other thread_local destructors that run after this thread's pool
// would normally be destroyed. So the pool itself is trivially destructible (constinit, never destroyed), and a
// separate Retirer object, registered the first time the pool allocates, frees the cache at thread exit and sets the
// cache limit to zero; any later recycle frees its buffer immediately instead of touching a dead object.
#include "ringlet/buf/buffer.hpp"

#include <cstdlib>
#include <new>
#include <type_traits>

#if defined(__SANITIZE_ADDRESS__)
#define RINGLET_BUF_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RINGLET_BUF_ASAN 1
#endif
#endif

#ifdef RINGLET_BUF_ASAN
#include <sanitizer/asan_interface.h>
#define RINGLET_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define RINGLET_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define RINGLET_POISON(p, n) ((void)(p), (void)(n))
#define RINGLET_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace ringlet {

namespace {

// The storage starts one cache line after the block, so receive buffers are cache-line aligned.
constexpr std::size_t kHeaderBytes = 64;
constexpr std::size_t kAlignment = 64;

std::size_t class_of(std::size_t min_capacity) noexcept {
  for (std::size_t c = 0; c < BufferPool::kClassCount; ++c)
    if (min_capacity <= BufferPool::kClassCapacity[c]) return c;
  return BufferPool::kClassCount;
}

}  // namespace

static_assert(std::is_trivially_destructible_v<BufferPool>, "the pool must outlive every thread_local destructor");

constinit thread_local BufferPool BufferPool::instance_;

struct BufferPool::Retirer {
  ~Retirer() { BufferPool::instance_.retire(); }
};

namespace {
thread_local bool retirer_armed = false;
}

BufferPool& BufferPool::local() noexcept { return instance_; }

Buffer* BufferPool::acquire(std::size_t min_capacity) {
  RINGLET_ASSERT(min_capacity <= UINT32_MAX);
  RINGLET_ASSERT(this == &instance_);
  const std::size_t c = class_of(min_capacity);
  Buffer* b;
  if (c == kClassCount) {
    b = allocate(min_capacity, kUnpooledTag);
  } else if (Block* block = free_[c]) {
    free_[c] = block->next_free;
    free_bytes_[c] -= kClassCapacity[c];
    cached_bytes_ -= kClassCapacity[c];
    b = &block->buffer;
    RINGLET_UNPOISON(b->data, b->capacity);
  } else {
    b = allocate(kClassCapacity[c], static_cast<std::uint32_t>(c));
  }
  b->refs = 1;
  ++outstanding_;
  return b;
}

void BufferPool::recycle(Buffer* b) noexcept {
  // A Buffer released on another thread would corrupt that thread's lists (and this pool's counts).
  RINGLET_ASSERT(this == &instance_);
  RINGLET_ASSERT(b->source == this && b->refs == 0);
  --outstanding_;
  if (b->tag == kUnpooledTag || free_bytes_[b->tag] + b->capacity > cache_limit_per_class_) {
    release_memory(b);
    return;
  }
  auto* block = reinterpret_cast<Block*>(b);
  block->next_free = free_[b->tag];
  free_[b->tag] = block;
  free_bytes_[b->tag] += b->capacity;
  cached_bytes_ += b->capacity;
  RINGLET_POISON(b->data, b->capacity);
}

void BufferPool::trim() noexcept {
  for (std::size_t c = 0; c < kClassCount; ++c) {
    while (Block* block = free_[c]) {
      free_[c] = block->next_free;
      release_memory(&block->buffer);
    }
    free_bytes_[c] = 0;
  }
  cached_bytes_ = 0;
}

void BufferPool::retire() noexcept {
  trim();
  cache_limit_per_class_ = 0;
}

Buffer* BufferPool::allocate(std::size_t capacity, std::uint32_t tag) {
  ++misses_;
  if (!retirer_armed) {
    // First allocation on this thread: constructing the Retirer registers its destructor for thread exit.
    static thread_local Retirer retirer;
    retirer_armed = true;
  }
  static_assert(sizeof(Block) <= kHeaderBytes);
  const std::size_t bytes = (kHeaderBytes + capacity + kAlignment - 1) / kAlignment * kAlignment;
  void* raw = std::aligned_alloc(kAlignment, bytes);
  if (!raw) fatal("out of memory for a buffer");
  auto* block = new (raw) Block{};
  block->buffer.data = static_cast<std::byte*>(raw) + kHeaderBytes;
  block->buffer.capacity = static_cast<std::uint32_t>(capacity);
  block->buffer.source = this;
  block->buffer.tag = tag;
  return &block->buffer;
}

void BufferPool::release_memory(Buffer* b) noexcept {
  auto* block = reinterpret_cast<Block*>(b);
  RINGLET_UNPOISON(b->data, b->capacity);
  block->~Block();
  std::free(block);
}

}  // namespace ringlet
