// splice.cpp — the pipe pool and the two waiting splice loops (runtime/splice.hpp).
#include "ringlet/runtime/splice.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "ringlet/runtime/timeout.hpp"

namespace ringlet {

PipePool& PipePool::local() noexcept {
  static thread_local PipePool pool;
  return pool;
}

PipePool::~PipePool() { trim(); }

Result<Pipe> PipePool::acquire() noexcept {
  if (!free_.empty()) {
    Pipe p = free_.back();
    free_.pop_back();
    ++outstanding_;
    return p;
  }
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return Error{errno};
  ++outstanding_;
  ++created_;
  return Pipe{fds[0], fds[1]};
}

void PipePool::release(Pipe pipe) noexcept {
  if (!pipe.valid()) return;
  --outstanding_;
  if (free_.size() < kMaxCached) {
    free_.push_back(pipe);
    return;
  }
  ::close(pipe.read_fd);
  ::close(pipe.write_fd);
}

void PipePool::discard(Pipe pipe) noexcept {
  if (!pipe.valid()) return;
  --outstanding_;
  ::close(pipe.read_fd);
  ::close(pipe.write_fd);
}

void PipePool::trim() noexcept {
  for (Pipe p : free_) {
    ::close(p.read_fd);
    ::close(p.write_fd);
  }
  free_.clear();
}

Duration refused_write_pause(int refusals) noexcept {
  if (refusals <= 1) return Duration::zero();
  // Longest sleep: under TCP memory exhaustion the whole machine is refusing; retrying faster buys nothing, and a
  // thousand refused relays retrying once a second cost a few percent of a core (estimated, not measured).
  constexpr int kMaxShift = 10;  // 1 ms << 10 ≈ 1 s
  return std::chrono::milliseconds(1) * (1 << std::min(refusals - 2, kMaxShift));
}

Task<int> wait_for_room(IoHandle& socket, int& refusals) {
  Loop& loop = *Loop::current();
  const Duration pause = refused_write_pause(++refusals);
  if (pause.count() > 0) {
    auto slept = co_await sleep_for(pause);
    if (!slept) co_return -ECANCELED;
  }
  int ready = co_await wait_socket(loop, socket, POLLOUT);
  co_return ready < 0 ? ready : 0;
}

Task<int> splice_in_some(IoHandle& socket, Pipe pipe, std::size_t len) {
  Loop& loop = *Loop::current();
  for (;;) {
    int r = co_await splice_in_op(loop, socket, pipe, len);
    if (r != -EAGAIN) co_return r;
    // io_uring only: the socket had nothing. Wait for it, then splice again.
    int ready = co_await wait_socket(loop, socket, POLLIN);
    if (ready < 0) co_return ready;
  }
}

Task<int> splice_out_all(IoHandle& socket, Pipe pipe, std::size_t len) {
  Loop& loop = *Loop::current();
  int refusals = 0;
  while (len > 0) {
    int r = co_await splice_out_op(loop, socket, pipe, len);
    if (r > 0) {
      len -= static_cast<std::size_t>(r);
      refusals = 0;
      continue;
    }
    if (r == 0) co_return -EPIPE;  // the pipe ran dry before `len`: the caller's count is wrong
    if (r != -EAGAIN) co_return r;
    int waited = co_await wait_for_room(socket, refusals);
    if (waited < 0) co_return waited;
  }
  co_return 0;
}

}  // namespace ringlet
