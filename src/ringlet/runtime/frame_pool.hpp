// frame_pool.hpp — where coroutine frames (and other per-connection objects) come from: per-thread free lists by
// size class, carved from per-thread slabs. Thread-local: a block must be freed on the thread that allocated it
// (true of frames, which live and die on their loop's thread).
//
// A connection's frames are allocated at spawn and freed at exit; in steady state every block comes from a free
// list, so spawning a task or awaiting a sub-task does not call malloc. Deallocation takes the size back (C++
// coroutines pass it to a sized operator delete), so blocks carry no header: at 10,000 idle connections every
// byte of a frame counts.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ringlet {

class FramePool {
 public:
  static constexpr std::size_t kSmallStep = 16;    // classes of 16 bytes up to kSmallLimit: little waste per frame
  static constexpr std::size_t kSmallLimit = 512;
  static constexpr std::size_t kLargeStep = 64;    // then classes of 64 bytes up to kLargeLimit
  static constexpr std::size_t kLargeLimit = 4096;  // larger blocks go straight to malloc

  static void* allocate(std::size_t size);
  static void deallocate(void* p, std::size_t size) noexcept;

  // Statistics of the calling thread's pool (for tests and the clean-shutdown check). Slab memory is returned
  // when the thread exits.
  static std::size_t live_frames() noexcept;
};

}  // namespace ringlet
