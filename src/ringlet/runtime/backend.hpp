// backend.hpp — the seam between the loop and the kernel: io_uring or epoll, one file each. Core-local.
//
// The seam is small on purpose: submit (arm), cancel, wait with a timeout (which also reaps), flush, name — plus
// detach and the counters. What both backends would otherwise repeat lives in the loop: the eventfd that wakes a
// sleeping loop is an ordinary read operation the loop owns, and the time spent blocked is measured around wait().
//
// Both backends run the same Operation kinds with the same completion contract (operation.hpp). Where a kernel
// feature is missing the backend emulates it: epoll runs multishot accept and provided-buffer receive by draining
// readiness; io_uring waits for writability with a poll op when a syscall (sendfile) has no ring opcode. The one
// exception is a file sync, which epoll can only block on: runtime/file_sync.hpp runs it on the blocking pool there.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "ringlet/runtime/operation.hpp"
#include "ringlet/base/result.hpp"

namespace ringlet {

enum class BackendKind { auto_select, uring, epoll };

struct BackendOptions {
  BackendKind kind = BackendKind::auto_select;
  unsigned ring_entries = 1024;               // io_uring submission queue size
  std::uint32_t provided_buffer_size = 8192;   // bytes per kernel-provided receive buffer
  std::uint32_t provided_buffer_count = 2048;  // buffers in the ring (power of two)
  // Fault hook, tests only: cancel() leaves a send or sendmsg running, as when the kernel finishes it before the
  // cancel reaches it (a race the owner must survive, and too rare to wait for).
  bool fault_cancel_loses_to_send = false;
  // Fault hook, tests only: the next this many send and splice_out ops complete at once with -EAGAIN without being
  // tried, as Linux refuses writes while poll says "writable" when TCP memory runs out (net.ipv4.tcp_mem).
  std::uint32_t fault_refused_writes = 0;
};

inline bool is_send_kind(OpKind kind) noexcept { return kind == OpKind::send || kind == OpKind::sendmsg; }

struct BackendStats {
  std::uint64_t kernel_waits = 0;    // entries into the kernel that could block
  std::uint64_t kernel_submits = 0;  // entries that only submitted
  std::uint64_t completions = 0;
  // Provided-buffer receives that had to wait for the shared receive allowance. io_uring: the ring was empty (the
  // kernel ended the multishot with ENOBUFS, or it was armed while empty); each got a plain read at the next wait
  // (serve_starved). epoll: a connection with input left for the backlog because this wait's receive budget (a
  // ring's worth of bytes) was spent. Growing steadily: --receive-buffers is small for the load (docs/operations.md).
  std::uint64_t receives_starved = 0;
};

// The provided-buffer receive ring's fill level when asked (metrics). A backend without one (epoll: it receives into
// the pool's buffers, which never run out) says 0 buffers.
struct ReceiveRingLevel {
  std::uint32_t buffers = 0;  // in the ring
  std::uint32_t free = 0;     // lent to the kernel, waiting for data; the rest hold bytes not yet consumed
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual std::string_view name() const noexcept = 0;
  // Starts `op`. Returns true when a single-shot op finished inline (result in op.result).
  virtual bool submit(Operation& op) noexcept = 0;
  // Requests early completion of a pending op (see operation.hpp). Idempotent.
  virtual void cancel(Operation& op) noexcept = 0;
  // Hands queued submissions to the kernel, waits up to timeout_ns (-1: no limit, 0: don't block) for at least
  // one completion, and delivers every available completion. Returns the number delivered.
  virtual int wait(std::int64_t timeout_ns) noexcept = 0;
  // Hands queued submissions to the kernel without waiting (the follow-up submit after running tasks).
  virtual void flush() noexcept = 0;
  // Forget `io` before its descriptor is closed or handed on. No operation on it may be pending.
  virtual void detach(IoHandle& io) noexcept = 0;
  // Forgets `io` and closes its descriptor, which must be the process's only reference to its socket (not dup'ed,
  // not inherited by a child that has not exec'ed): epoll then leaves the removal to the kernel's close, one
  // system call less, and a shared socket would stay in the epoll set naming a handle that is gone. No operation on
  // it may be pending.
  virtual void close(IoHandle& io) noexcept = 0;
  // Hands the descriptor of `from` over to the fresh handle `to` (same descriptor), with what the backend knows of
  // it, leaving `from` detached. No operation on `from` may be pending.
  virtual void move(IoHandle& from, IoHandle& to) noexcept = 0;
  // Operations submitted and not yet finally completed.
  virtual std::size_t pending() const noexcept = 0;
  virtual const BackendStats& stats() const noexcept = 0;
  virtual ReceiveRingLevel receive_ring() const noexcept { return {}; }
  // True when OpKind::fdatasync runs in the kernel without blocking the loop (io_uring). epoll has no such call;
  // runtime/file_sync.hpp then syncs on the blocking pool.
  virtual bool syncs_files() const noexcept { return false; }

  // A descriptor whose operations moved this many bytes in the current service window is heavily served: the
  // tasks its completions wake go to the loop's heavy class (docs/design/loop.md, phase 4). A flooder's or a bulk
  // transfer's every read is 8-64 KiB, so it crosses this in one or a few; a request/response client or a new
  // connection stays under it for many messages.
  static constexpr std::uint32_t kHeavyBytes = 64 * 1024;
  static constexpr std::uint32_t kHeavyBytesCap = 4 * kHeavyBytes;  // the most a window's count remembers
  // The loop starts a new window every so often (its clock, ~134 ms): a connection that went quiet is light again.
  void set_service_window(std::uint32_t window) noexcept { service_window_ = window; }
  // True while a completion of a heavily served descriptor is being delivered: what Loop::schedule asks.
  bool delivering_heavy() const noexcept { return delivering_heavy_; }

 protected:
  // Every completion a backend delivers goes through here: it counts the bytes moved against the descriptor's
  // window and says whether the task it wakes belongs to the heavy class.
  void deliver(Operation& op, int result, std::uint32_t flags) noexcept {
    delivering_heavy_ = note_service(op, result);
    op.on_complete(op, result, flags);
    delivering_heavy_ = false;
  }
  // An operation that finished inline (epoll tried it first) wakes no task, but its bytes count all the same.
  void count_inline(const Operation& op, int result) noexcept { (void)note_service(op, result); }

 private:
  bool note_service(const Operation& op, int result) noexcept {
    if (op.io == nullptr) return false;
    IoHandle& io = *op.io;
    if (io.service_window != service_window_) {
      // Halved per window gone by: a flooder stays heavy across a window's edge, a connection that went quiet
      // is light again two or three windows later.
      const std::uint32_t gone = service_window_ - io.service_window;
      io.window_bytes = gone >= 32 ? 0 : io.window_bytes >> gone;
      io.service_window = service_window_;
    }
    if (result > 0 && moves_bytes(op.kind)) {
      io.window_bytes = static_cast<std::uint32_t>(std::min<std::uint64_t>(
          std::uint64_t{io.window_bytes} + static_cast<std::uint32_t>(result), kHeavyBytesCap));
    }
    return io.window_bytes >= kHeavyBytes;
  }
  static bool moves_bytes(OpKind kind) noexcept {
    switch (kind) {
      case OpKind::recv:
      case OpKind::send:
      case OpKind::recvmsg:
      case OpKind::sendmsg:
      case OpKind::recv_provided:
      case OpKind::splice_in:
      case OpKind::splice_out:
        return true;
      default:
        return false;  // accept's and connect's results are descriptors or 0; read is an eventfd or a pipe
    }
  }

  std::uint32_t service_window_ = 0;
  bool delivering_heavy_ = false;
};

// A provided-buffer receive done with one plain recv(2), for the backends to share: at most `want` bytes into a
// pooled buffer of `capacity` bytes. Bytes (> 0) hand `out` that buffer's one reference; end of input (0) and errors
// (-errno, EWOULDBLOCK as -EAGAIN) keep no buffer.
int receive_into_pooled_buffer(int fd, std::uint32_t capacity, std::uint32_t want, Buffer*& out) noexcept;

struct BackendChoice {
  std::unique_ptr<Backend> backend;
  std::string reason;  // why this backend: logged at start-up
};

// Creates the backend `options.kind` asks for. auto_select tries io_uring with the needed features and falls back
// to epoll; the environment variable RINGLET_BACKEND=uring|epoll|auto overrides auto_select.
Result<BackendChoice> create_backend(const BackendOptions& options);

std::unique_ptr<Backend> create_epoll_backend(const BackendOptions& options, std::string& error);
std::unique_ptr<Backend> create_uring_backend(const BackendOptions& options, std::string& error);

bool parse_backend_kind(std::string_view text, BackendKind& out) noexcept;
std::string_view backend_kind_name(BackendKind kind) noexcept;

}  // namespace ringlet
