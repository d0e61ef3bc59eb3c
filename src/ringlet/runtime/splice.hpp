// splice.hpp — moving bytes from socket to socket through a pipe with splice(2), without copying them through
// user space, on both backends; and the per-thread pool of pipes it borrows. Core-local.
//
// splice(2) needs a pipe on one side, so a socket-to-socket move is two steps: socket → pipe (splice_in), then
// pipe → socket (splice_out). The caller keeps the pipe's contents in step with what it asked for:
//  - splice_in only into an EMPTY pipe. A pipe is 16 slots, not 64 KiB: TCP hands over its segments by reference,
//    one slot each, so a pipe can be "full" long before 64 KiB. Into an empty pipe at least one segment always
//    fits, so EAGAIN (or a parked op on epoll) then really means "the socket has nothing", never "the pipe is full".
//  - splice_out only what splice_in put there, until the pipe is empty again.
// Kept to that, the pipe side never blocks and every wait is a wait on the socket.
//
// Backends: epoll tries the splice syscall and, on EAGAIN, parks the op on the socket's readiness like a recv or
// send (it never reports EAGAIN). io_uring runs IORING_OP_SPLICE, which the kernel executes in an io-wq worker
// thread; on a non-blocking socket with nothing to move it completes with -EAGAIN, and the caller waits for
// readiness with wait_socket() and tries again. The helpers below (splice_in_all, splice_out_all) hide that
// difference.
//
// Splicing into a socket whose peer has gone raises SIGPIPE (splice takes no MSG_NOSIGNAL): a program that splices
// must ignore SIGPIPE, as run_sharded_server() and the proxy do. Errors are kernel-style values (-errno), never
// exceptions; EINVAL from the first splice means this pair of descriptors cannot splice (fall back to copying).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "ringlet/base/result.hpp"
#include "ringlet/runtime/io_awaitable.hpp"
#include "ringlet/runtime/task.hpp"
#include "ringlet/runtime/timeout.hpp"

namespace ringlet {

struct Pipe {
  int read_fd = -1;
  int write_fd = -1;
  bool valid() const noexcept { return read_fd >= 0; }
};

// Pipes cost two descriptors and some kernel memory, and creating one is two system calls plus a close of each end
// later, so a shard keeps the empty ones it gave back for the next transfer. A caller holds a pipe only while bytes
// are in it (or while one splice_in is waiting), so the pool's size follows the transfers in flight, not the open
// connections.
class PipePool {
 public:
  // Free pipes kept per thread; more given back are closed.
  static constexpr std::size_t kMaxCached = 64;

  static PipePool& local() noexcept;

  // A non-blocking pipe (from the cache, or a new one). Errors: EMFILE/ENFILE when out of descriptors.
  Result<Pipe> acquire() noexcept;
  // Gives back a pipe the caller emptied. A pipe that may still hold bytes must go to discard() instead.
  void release(Pipe pipe) noexcept;
  // Closes a pipe that may hold bytes (a transfer that ended midway).
  void discard(Pipe pipe) noexcept;

  std::size_t cached() const noexcept { return free_.size(); }
  std::size_t outstanding() const noexcept { return outstanding_; }
  std::uint64_t created() const noexcept { return created_; }
  // Closes every cached pipe.
  void trim() noexcept;

  ~PipePool();

 private:
  PipePool() = default;
  std::vector<Pipe> free_;
  std::size_t outstanding_ = 0;
  std::uint64_t created_ = 0;
};

// One splice op: socket `io` → pipe (SpliceIn) or pipe → socket (SpliceOut), at most `len` bytes. Result: bytes
// moved (0 from splice_in: end of input), or -errno; -EAGAIN only on io_uring (see the file comment). Contract as
// io_awaitable.hpp: may complete inline; cancellation waits for the kernel's final completion.
[[nodiscard]] inline IoAwaitable splice_in_op(Loop& loop, IoHandle& io, const Pipe& pipe, std::size_t len) {
  IoAwaitable op(loop);
  op.kind = OpKind::splice_in;
  op.io = &io;
  op.pipe_fd = pipe.write_fd;
  op.len = static_cast<std::uint32_t>(len);
  return op;
}
[[nodiscard]] inline IoAwaitable splice_out_op(Loop& loop, IoHandle& io, const Pipe& pipe, std::size_t len) {
  IoAwaitable op(loop);
  op.kind = OpKind::splice_out;
  op.io = &io;
  op.pipe_fd = pipe.read_fd;
  op.len = static_cast<std::uint32_t>(len);
  return op;
}

// Waits until the socket is readable (POLLIN) or writable (POLLOUT), or has an error or hang-up. Result: revents
// or -errno.
[[nodiscard]] inline IoAwaitable wait_socket(Loop& loop, IoHandle& io, short events) {
  IoAwaitable op(loop);
  op.kind = OpKind::poll;
  op.io = &io;
  op.poll_events = static_cast<std::uint32_t>(events);
  return op;
}

// After a write to `socket` (send or splice_out) came back -EAGAIN: waits until writing again is worth trying.
// `refusals` counts the writes refused in a row; the caller zeroes it when a write moves bytes. The first refusal
// waits for POLLOUT. A refusal right after POLLOUT said there is room is the kernel out of TCP memory (past
// net.ipv4.tcp_mem's limit it refuses a socket with a small queue while poll keeps saying "writable"); waiting for
// POLLOUT again would return at once and the write would be refused again, forever: a relay spun on it (#15,
// docs/design/proxy.md, "After-flood spin"). So later refusals first sleep, 1 ms doubling to 1 s, as the kernel's
// own blocking sender does (sk_stream_wait_memory sleeps when memory, not room, is short). Result: 0 or -errno
// (-ECANCELED when cancelled).
Task<int> wait_for_room(IoHandle& socket, int& refusals);

// wait_for_room's pause before it waits for POLLOUT, after the `refusals`-th write refused in a row: none after the
// first, then 1 ms doubling to about 1 s. For writers that cannot await (Stream's send, a completion callback).
Duration refused_write_pause(int refusals) noexcept;

// Moves what the socket has (at most `len`, waiting for at least one byte) into the EMPTY pipe. Result: bytes
// (0: end of input) or -errno (never -EAGAIN). Waits as long as the socket stays silent; cancel to stop it.
Task<int> splice_in_some(IoHandle& socket, Pipe pipe, std::size_t len);
// Moves exactly `len` bytes from the pipe into the socket, waiting for room as needed. Result: 0 or -errno.
Task<int> splice_out_all(IoHandle& socket, Pipe pipe, std::size_t len);

}  // namespace ringlet
