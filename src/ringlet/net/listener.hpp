// listener.hpp — a listening TCP or Unix socket that hands out accepted Streams. Core-local.
//
// On io_uring one multishot accept stays armed while connections are wanted; on epoll the same is emulated by
// draining accept4 on each readiness edge. Accepted descriptors wait in a small queue (at most kMaxQueued; past
// that, accepting pauses and the kernel backlog holds the rest) until accept() takes them.
#pragma once

#include <coroutine>
#include <vector>

#include "ringlet/net/address.hpp"
#include "ringlet/net/stream.hpp"
#include "ringlet/runtime/loop.hpp"

namespace ringlet {

enum class ReusePort : bool { no = false, yes = true };

struct ListenOptions {
  int backlog = 4096;
  ReusePort reuse_port = ReusePort::no;  // several listeners (threads, processes) on one address
  StreamOptions stream;                  // for accepted streams
};

namespace detail {

class ListenerCore final : public DeferredClose {
 public:
  static constexpr std::size_t kMaxQueued = 256;

  ListenerCore(Loop& loop, int fd, const ListenOptions& options) noexcept;
  void close_now() noexcept override;
  void arm() noexcept;
  void close() noexcept;
  void wake_waiter() noexcept;
  void release_if_unused() noexcept;  // after close(): free once neither the kernel nor a woken waiter needs us
  static void on_accept(Operation& op, int res, std::uint32_t flags) noexcept;

  struct AcceptOp : Operation {
    ListenerCore* core;
  };

  Loop* loop;
  IoHandle io;
  AcceptOp accept_op;
  std::vector<int> ready_fds;  // accepted, not yet taken (FIFO via head index)
  std::size_t head = 0;
  std::coroutine_handle<> waiter;
  // The waiter was scheduled and has not resumed yet. Its Accept still reads this core when it resumes, so a
  // close() in between must not free the core (the deferred close would run before the waiter does).
  bool waiter_woken = false;
  Error error{};
  StreamOptions stream_options;
  bool closing = false;
  bool unlink_path = false;
  bool adopted = false;  // a socket handed over (Listener::adopt): closed, never shut down
  Address address;
};

}  // namespace detail

class Listener {
 public:
  Listener() = default;
  // Binds and listens. A Unix path that exists and is a socket is replaced.
  static Result<Listener> bind(Loop& loop, const Address& address, const ListenOptions& options = {});
  // Serves a socket that is already listening (systemd socket activation, or a dup of one for another shard); on
  // success takes ownership of `fd`. The socket is made non-blocking and close-on-exec; closing the Listener closes `fd`
  // but does not shut the socket down, so other holders of it (systemd, other shards) keep listening. Fails with
  // EINVAL when `fd` is not a listening socket. options.backlog and reuse_port do not apply.
  static Result<Listener> adopt(Loop& loop, int fd, const ListenOptions& options = {});
  Listener(Listener&& o) noexcept : core_(std::exchange(o.core_, nullptr)) {}
  Listener& operator=(Listener&& o) noexcept;
  ~Listener() { close(); }

  bool is_open() const noexcept { return core_ != nullptr; }
  int fd() const noexcept { return core_ ? core_->io.fd : -1; }
  Address local_address() const noexcept { return core_->address; }

  // The next accepted connection. Transient failures (EMFILE, ECONNABORTED) come back as errors; the listener
  // stays usable. Cancelling the wait leaves connections queued for the next accept().
  class [[nodiscard]] Accept {
   public:
    explicit Accept(detail::ListenerCore* core) noexcept : core_(core) {}
    bool await_ready() const noexcept { return core_->head < core_->ready_fds.size() || core_->error.code != 0; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
      CancelState* cs = nullptr;
      if (cancelled_before_suspend(h, cs)) {
        cancelled_ = true;
        return false;
      }
      core_->arm();
      if (await_ready()) return false;
      core_->waiter = h;
      cancel_ = cs;
      if (cs != nullptr) cs->install(&Accept::cancel_slot, this, WaitKind::input);
      return true;
    }
    Result<Stream> await_resume() noexcept;

   private:
    static void cancel_slot(void* ctx) noexcept {
      auto* self = static_cast<Accept*>(ctx);
      if (!self->core_->waiter) return;
      self->cancelled_ = true;
      self->core_->wake_waiter();
    }
    detail::ListenerCore* core_;
    CancelState* cancel_ = nullptr;
    bool cancelled_ = false;
  };
  Accept accept() noexcept { return Accept(core_); }

  // Stops accepting and closes the socket (queued, untaken connections are closed too).
  void close() noexcept;

 private:
  explicit Listener(detail::ListenerCore* core) noexcept : core_(core) {}
  detail::ListenerCore* core_ = nullptr;
};

}  // namespace ringlet
