// operation.hpp — one kernel operation as both backends see it, and the 64-bit token that names it.
// Core-local. An Operation lives in the memory of whoever started it (usually an awaitable in a coroutine frame),
// so starting I/O allocates nothing. It must stay alive and unmoved until its final completion has been delivered.
//
// Completion contract (both backends):
//  - Single-shot: Backend::submit() returns true when it finished inline (epoll's "try the syscall first"); the
//    result is then in `result` and on_complete is NOT called. Otherwise on_complete runs exactly once, later.
//  - Multishot (accept, receive into provided buffers): on_complete runs once per result with kMore set in
//    `flags`, and one last time without kMore. submit() never completes a multishot op inline.
//  - on_complete only records the outcome and schedules tasks; it never resumes a coroutine itself, so it may run
//    inside submit() or cancel().
//  - Cancel asks for an early end; the op still completes through on_complete, with -ECANCELED or with whatever
//    the kernel finished first (a read that raced its cancellation reports its bytes: nothing is lost).
#pragma once

#include <sys/socket.h>

#include <cstdint>

#include "ringlet/runtime/intrusive_list.hpp"

namespace ringlet {

struct Buffer;

enum class OpKind : std::uint8_t {
  recv,              // buf/len; result: bytes (0 = EOF)
  send,              // buf/len; result: bytes
  recvmsg,           // msg
  sendmsg,           // msg
  accept,            // addr/addrlen; result: fd. multishot allowed
  connect,           // addr/addrlen_in
  recv_provided,     // multishot receive into backend-provided buffers; each result carries `buffer`. `len`, if
                     // not 0, is the most bytes the owner wants before it stops the receive: the backend may end
                     // the multishot (a final completion with bytes) once that much arrived, or leave it to the
                     // owner's cancel
  poll,              // poll_events (POLLIN/POLLOUT); result: revents
  read,              // plain read(2) on a non-socket fd (eventfd, signalfd, pipe)
  splice_in,         // splice(2) from the socket `io` into the pipe `pipe_fd` (its write end), len; result: bytes
  splice_out,        // splice(2) from the pipe `pipe_fd` (its read end) into the socket `io`, len; result: bytes
  fdatasync,         // fdatasync(2) of the file `io`; result 0 or -errno. io_uring only (Backend::syncs_files());
                     // epoll completes it inline with -EOPNOTSUPP: use runtime/file_sync.hpp, which picks the way
};

struct IoHandle;

struct Operation {
  using CompleteFn = void (*)(Operation& op, int result, std::uint32_t flags) noexcept;
  static constexpr std::uint32_t kMore = 1u << 0;  // more completions will follow (multishot)

  enum class State : std::uint8_t { idle, pending, cancelling };

  OpKind kind = OpKind::recv;
  State state = State::idle;
  bool multishot = false;
  union {
    bool connect_started = false;  // epoll, connect: connect() returned EINPROGRESS, next step is SO_ERROR
    std::uint8_t receive_flags;    // io_uring, recv_provided: what the backend knows of its recent receiving
  };
  int result = 0;                // inline completions
  IoHandle* io = nullptr;
  CompleteFn on_complete = nullptr;

  // Arguments, by kind. Kept in unions: a connection holds two operations for its whole life, so every byte here
  // is paid per connection.
  union {
    void* buf = nullptr;  // recv, send, read
    msghdr* msg;          // recvmsg, sendmsg
    sockaddr* addr;       // accept, connect
    Buffer* buffer;       // recv_provided: the buffer holding this completion's bytes (one reference handed over)
    int pipe_fd;          // splice_in, splice_out: the pipe end on the other side of the socket
  };
  union {
    std::uint32_t len = 0;     // recv, send, read, splice_in, splice_out; recv_provided: see OpKind
    std::uint32_t poll_events; // poll (POLLIN/POLLOUT)
    socklen_t addrlen_in;      // connect: address length; accept: capacity of addr
  };
  int msg_flags = 0;            // recv, send, recvmsg, sendmsg
  socklen_t* addrlen = nullptr; // accept

  // epoll: the link in its descriptor's wait list.
  ListLink<Operation> wait_link;
};

// Operations waiting on one descriptor, in arrival order: one pointer each, since every byte here is paid per
// connection (intrusive_list.hpp).
using OpWaitList = IntrusiveList<Operation, &Operation::wait_link>;

// Per-descriptor state. Owned by the socket/file object; the epoll backend keeps its wait lists here.
struct IoHandle {
  int fd = -1;
  bool epoll_registered = false;
  bool peer_closed = false;  // epoll: an edge carried EPOLLRDHUP/EPOLLHUP, so a short read is not the end
  bool epoll_backlogged = false;  // epoll: input left unread by the fairness bounds, on the backend's backlog
  // Set by the owner: a stream socket (TCP, Unix stream), whose recv copies until its buffer is full or the socket's
  // queue is empty, so a short recv means "empty". Not for datagrams (a short recv is one datagram) or peeks.
  bool stream : 1 = false;
  // epoll, stream sockets: the last recv came back short or EAGAIN and no input edge has come since, so the socket
  // is empty and the next recv parks without trying (the EAGAIN a request/response relay would pay per message).
  bool input_drained : 1 = false;
  // epoll, stream sockets: the last recv with bytes filled its buffer (a bulk or flooding peer). Once a wait's intake budget is
  // spent, such a socket's next recv waits on the backlog instead of being tried in the pass over the events.
  bool input_heavy : 1 = false;
  // Set by the owner: the descriptor is only ever read (the loop's wake-up eventfd). epoll then registers it for
  // input alone: an eventfd's read makes it writable, and with EPOLLOUT in its interest every wake-up would raise a
  // writability edge that ends the loop's next wait for nothing.
  bool reads_only : 1 = false;
  // The bytes this descriptor's operations moved in the backend's current service window (both backends; see
  // Backend::deliver): a descriptor past Backend::kHeavyBytes is heavily served, and the tasks its completions wake
  // run after everyone else's, a bounded number per turn (docs/design/loop.md, phase 4).
  std::uint32_t window_bytes = 0;
  std::uint32_t service_window = 0;
  OpWaitList readers;        // epoll: ops waiting for readability (FIFO)
  OpWaitList writers;        // epoll: ops waiting for writability (FIFO)
};

// The 64-bit token that names a completion source in io_uring user_data and epoll_data.u64.
// Operations are at least 8-byte aligned, so the low 3 bits carry a tag.
namespace token {
enum class Tag : std::uint64_t { operation = 0, ignore = 2, io_handle = 3 };
inline std::uint64_t encode(const void* p, Tag tag) noexcept {
  return reinterpret_cast<std::uint64_t>(p) | static_cast<std::uint64_t>(tag);
}
inline Tag tag_of(std::uint64_t t) noexcept { return static_cast<Tag>(t & 7u); }
template <class T>
T* pointer_of(std::uint64_t t) noexcept {
  return reinterpret_cast<T*>(t & ~std::uint64_t{7});
}
}  // namespace token

}  // namespace ringlet
