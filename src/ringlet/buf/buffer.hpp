// buffer.hpp — refcounted byte buffers and the per-thread pool they come from.
// Core-local: refcounts are plain integers; a Buffer and every Slice of it stay on the thread that acquired it.
//
// A Buffer is a small header that points at storage. Who owns the storage is the BufferSource's business: the
// BufferPool puts the storage right after the header in one allocation; an io_uring provided-buffer ring (the
// runtime's) points the header at kernel-registered memory and uses `tag` for the buffer id. Everything above
// (Slice, SliceQueue, OutputChain) only counts references and calls source->recycle() when the last one goes, so it
// works with any source.
//
// Pool size classes are 4, 16 and 64 KiB; larger requests get an exact allocation that is freed, not cached, on
// recycle. Each class caches at most kCacheBytesPerClass of free buffers, so a burst cannot pin memory forever.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ringlet/base/fatal.hpp"

namespace ringlet {

struct Buffer;

class BufferSource {
 public:
  // Called once, when the last reference to `b` is dropped. The source may reuse or free `b`.
  virtual void recycle(Buffer* b) noexcept = 0;

  // A shared ring is a fixed set of buffers the kernel fills for every connection of a loop (io_uring's provided
  // buffers). A slice of one is a loan: whoever queues it for long starves every other connection, so queues that
  // wait copy such slices out (docs/design/buffers.md).
  bool shared_ring() const noexcept { return shared_ring_; }

 protected:
  constexpr explicit BufferSource(bool shared_ring = false) noexcept : shared_ring_(shared_ring) {}
  ~BufferSource() = default;

 private:
  bool shared_ring_;
};

struct Buffer {
  std::byte* data;
  std::uint32_t capacity;
  std::uint32_t refs;
  BufferSource* source;
  std::uint32_t tag;  // private to the source (pool: size class; provided-buffer ring: buffer id)
};

inline void buffer_ref(Buffer* b) noexcept {
  RINGLET_ASSERT(b->refs > 0);  // a recycled buffer cannot be revived
  ++b->refs;
}

inline void buffer_unref(Buffer* b) noexcept {
  RINGLET_ASSERT(b->refs > 0);
  if (--b->refs == 0) b->source->recycle(b);
}

class BufferPool final : public BufferSource {
 public:
  static constexpr std::size_t kClassCapacity[] = {4 * 1024, 16 * 1024, 64 * 1024};
  static constexpr std::size_t kClassCount = 3;
  // 2 MiB per class is 512 receive buffers of 4 KiB: enough to absorb a burst of connections closing and
  // reopening without touching malloc, small enough that 64 cores cache under 400 MiB in the worst case.
  static constexpr std::size_t kCacheBytesPerClass = 2 * 1024 * 1024;
  static constexpr std::uint32_t kUnpooledTag = 0xffffffff;  // exact-size buffer, freed on recycle

  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  static BufferPool& local() noexcept;

  // A buffer with capacity >= min_capacity and refs == 1. min_capacity must fit in uint32.
  Buffer* acquire(std::size_t min_capacity);

  std::size_t outstanding() const noexcept { return outstanding_; }
  std::size_t cached_bytes() const noexcept { return cached_bytes_; }
  // Buffers that had to come from the allocator (the size class's cache was empty, or the size has no class):
  // growing fast means the cache is too small for the load (metrics: ringlet_buffer_pool_misses_total).
  std::uint64_t misses() const noexcept { return misses_; }
  void trim() noexcept;
  void recycle(Buffer* b) noexcept override;

 private:
  // Pooled buffers carry a free-list link beside the public header, so a cached buffer's bytes stay untouched
  // (and, under ASan, poisoned).
  struct Block {
    Buffer buffer;
    Block* next_free;
  };

  struct Retirer;  // trims the pool when its thread exits

  constexpr BufferPool() = default;
  Buffer* allocate(std::size_t capacity, std::uint32_t tag);
  static void release_memory(Buffer* b) noexcept;
  void retire() noexcept;

  Block* free_[kClassCount] = {};
  std::size_t free_bytes_[kClassCount] = {};
  std::size_t outstanding_ = 0;
  std::size_t cached_bytes_ = 0;
  std::uint64_t misses_ = 0;
  std::size_t cache_limit_per_class_ = kCacheBytesPerClass;  // 0 once the thread is exiting

  static thread_local BufferPool instance_;
};

}  // namespace ringlet
