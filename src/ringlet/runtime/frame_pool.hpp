// frame_pool.hpp — where coroutine frames come from: per-thread free lists by size class.
// Thread-local. A frame freed on another thread lands in that thread's lists, which is safe (it is plain memory).
//
// A connection's task frames are allocated at spawn and freed at exit; in steady state every frame comes from a
// free list, so spawning a task or awaiting a sub-task does not call malloc. Each block carries a small header with
// its size class so deallocation does not depend on the size the compiler passes back.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ringlet {

class FramePool {
 public:
  static constexpr std::size_t kGranularity = 64;   // size classes are multiples of a cache line
  static constexpr std::size_t kClasses = 32;       // pooled frames up to 2 KiB; larger go to malloc
  static constexpr std::size_t kMaxCachedPerClass = 4096;

  static void* allocate(std::size_t size);
  static void deallocate(void* p) noexcept;

  // Statistics of the calling thread's pool (for tests and the clean-shutdown check).
  static std::size_t live_frames() noexcept;
  static void trim() noexcept;  // release this thread's cached blocks
};

}  // namespace ringlet
