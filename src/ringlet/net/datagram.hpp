// datagram.hpp — UDP sockets on a loop: send_to / receive_from whole datagrams. Core-local.
//
// Each call is one sendmsg/recvmsg operation (io_uring: a ring op; epoll: the syscall first, readiness only on
// EAGAIN), with its msghdr, iovec and peer address inside the awaitable — so in the awaiting task's frame: nothing
// is allocated per datagram. Several tasks may send and receive on one socket at once; each receive gets one
// whole datagram, in arrival order of the waits.
//
// Buffers: the caller's bytes belong to the kernel from submission until the task resumes; keep them alive (they
// usually live in the same frame). A datagram larger than the receive buffer is cut to fit and reported
// `truncated` (the rest is gone: UDP semantics).
// Cancellation (task cancel, with_timeout) cancels the kernel operation; the task resumes after the kernel let go
// of the buffer. A datagram that raced the cancel is returned; one that arrives later stays queued in the socket
// for the next receive_from — nothing is lost.
// Closing or destroying the socket while a task waits on it is a bug.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <coroutine>
#include <cstddef>
#include <memory>
#include <span>
#include <string_view>

#include "ringlet/net/address.hpp"
#include "ringlet/runtime/io_awaitable.hpp"
#include "ringlet/runtime/loop.hpp"
#include "ringlet/base/result.hpp"

namespace ringlet {

struct Datagram {
  std::size_t size = 0;    // bytes placed in the buffer
  Address from;
  bool truncated = false;  // the datagram was larger than the buffer; the excess was discarded
};

class DatagramSocket {
 public:
  // A UDP socket of the address's family, bound to it (port 0: the kernel picks one; see local_address()).
  // IPv6 sockets are IPv6-only (no v4-mapped traffic).
  static Result<DatagramSocket> bind(Loop& loop, const Address& address);

  DatagramSocket() = default;
  DatagramSocket(DatagramSocket&& o) noexcept : core_(std::move(o.core_)) {}
  DatagramSocket& operator=(DatagramSocket&& o) noexcept;
  ~DatagramSocket() { close(); }

  bool is_open() const noexcept { return core_ != nullptr; }
  int fd() const noexcept { return core_ ? core_->io.fd : -1; }
  Result<Address> local_address() const noexcept;

  // Awaitable: Result<std::size_t> (bytes sent: the whole datagram). Errors: EMSGSIZE (too large),
  // EAFNOSUPPORT or EINVAL (an address of the other family), ENETUNREACH, cancelled.
  class [[nodiscard]] SendTo : public IoAwaitable {
   public:
    SendTo(Loop& loop, IoHandle* io, std::span<const std::byte> bytes, const Address& to) noexcept;
    SendTo(SendTo&& o) noexcept : IoAwaitable(std::move(o)), iov_(o.iov_), to_(o.to_) {}
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
      prepare();  // here: the awaitable may have moved since construction (into with_timeout)
      return IoAwaitable::await_suspend(h);
    }
    Result<std::size_t> await_resume() noexcept;

   private:
    void prepare() noexcept;
    msghdr hdr_{};
    iovec iov_;
    Address to_;
  };

  // Awaitable: Result<Datagram>.
  class [[nodiscard]] ReceiveFrom : public IoAwaitable {
   public:
    ReceiveFrom(Loop& loop, IoHandle* io, std::span<std::byte> into) noexcept;
    ReceiveFrom(ReceiveFrom&& o) noexcept : IoAwaitable(std::move(o)), iov_(o.iov_) {}
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
      prepare();
      return IoAwaitable::await_suspend(h);
    }
    Result<Datagram> await_resume() noexcept;

   private:
    void prepare() noexcept;
    msghdr hdr_{};
    iovec iov_;
    Address from_;
  };

  SendTo send_to(std::span<const std::byte> bytes, const Address& to) noexcept {
    return SendTo(*core_->loop, &core_->io, bytes, to);
  }
  SendTo send_to(std::string_view text, const Address& to) noexcept {
    return send_to(std::as_bytes(std::span(text.data(), text.size())), to);
  }
  ReceiveFrom receive_from(std::span<std::byte> into) noexcept { return ReceiveFrom(*core_->loop, &core_->io, into); }

  void close() noexcept;

 private:
  struct Core {
    Loop* loop;
    IoHandle io;
  };
  explicit DatagramSocket(std::unique_ptr<Core> core) noexcept : core_(std::move(core)) {}

  // On the heap: pending operations name &core_->io, which must not move with the socket.
  std::unique_ptr<Core> core_;
};

}  // namespace ringlet
