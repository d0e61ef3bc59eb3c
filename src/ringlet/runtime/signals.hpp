// signals.hpp — POSIX signals as values a task awaits: SignalSet reads them from a signalfd through the loop.
// Core-local: create, wait on and destroy a SignalSet on its loop's thread.
//
//   auto signals = SignalSet::create(loop, {SIGINT, SIGTERM});
//   Result<int> signo = co_await signals->wait();
//
// A signalfd only sees signals that are *blocked*: an unblocked signal runs its disposition (for SIGTERM: the
// process dies) instead of queueing. SignalSet::create blocks its signals in the calling thread, but the kernel
// delivers a process-directed signal to any thread that does not block it — so every thread must block them.
// Threads inherit the mask of the thread that creates them: create the SignalSet (or call block_in_this_thread)
// in main() before starting other threads (loops, BlockingPools, default_blocking_pool()).
//
// Standard signals do not queue: several deliveries of one signal before a read arrive as one. Two SignalSets
// for the same signal split its deliveries arbitrarily; use one per signal.
// Destruction closes the signalfd, discards what is pending for the set's signals and unblocks those that were
// not blocked before create(); from then on they get their normal disposition again.
#pragma once

#include <signal.h>
#include <sys/signalfd.h>

#include <coroutine>
#include <initializer_list>
#include <memory>

#include "ringlet/runtime/io_awaitable.hpp"
#include "ringlet/runtime/loop.hpp"
#include "ringlet/base/result.hpp"

namespace ringlet {

class SignalSet {
 public:
  // Blocks `signals` in the calling thread and opens a signalfd for them. Errors: EINVAL (a signal that cannot
  // be caught, e.g. SIGKILL), EMFILE.
  static Result<SignalSet> create(Loop& loop, std::initializer_list<int> signals);
  // Blocks `signals` in the calling thread only (for threads started before the SignalSet was created).
  static Status block_in_this_thread(std::initializer_list<int> signals) noexcept;

  SignalSet() = default;
  SignalSet(SignalSet&& o) noexcept : core_(std::move(o.core_)) {}
  SignalSet& operator=(SignalSet&& o) noexcept;
  ~SignalSet() { close(); }

  bool is_open() const noexcept { return core_ != nullptr; }
  int fd() const noexcept { return core_ ? core_->io.fd : -1; }

  // Awaitable: Result<int>, the number of the next signal of the set. Can complete inline (epoll: one is
  // already pending). Cancellation ends the wait; a signal that raced the cancel is returned, not lost.
  // One waiter at a time; closing the set while a task waits is a bug.
  class [[nodiscard]] Wait : public IoAwaitable {
   public:
    Wait(Loop& loop, IoHandle* io) noexcept : IoAwaitable(loop) {
      kind = OpKind::read;
      this->io = io;
      len = sizeof info_;
    }
    Wait(Wait&& o) noexcept : IoAwaitable(std::move(o)) {}
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
      buf = &info_;  // here, not in the constructor: the awaitable may have moved (into with_timeout)
      return IoAwaitable::await_suspend(h);
    }
    Result<int> await_resume() noexcept;

   private:
    signalfd_siginfo info_{};
  };
  Wait wait() noexcept { return Wait(*core_->loop, &core_->io); }

  void close() noexcept;

 private:
  struct Core {
    Loop* loop;
    IoHandle io;
    sigset_t signals;    // the set read from the signalfd
    sigset_t unblock;    // the ones create() blocked, unblocked again on close
  };
  explicit SignalSet(std::unique_ptr<Core> core) noexcept : core_(std::move(core)) {}

  // On the heap: a pending read names &core_->io, which must not move with the SignalSet.
  std::unique_ptr<Core> core_;
};

}  // namespace ringlet
