// epoll_backend.cpp — the readiness backend, run the completion way.
//
// Every operation first tries its syscall (non-blocking); only on EAGAIN does it park on its descriptor's read
// or write wait list. A descriptor joins the epoll set once, edge-triggered for both directions, the first time
// an op has to wait on it; an edge then runs that direction's waiters in FIFO order until one sees EAGAIN again
// (readiness drained). Multishot ops (accept, provided-buffer receive) are emulated by draining: each success is
// one completion with kMore, and the op stays parked.
//
// Fairness: draining a socket to EAGAIN lets one flooding connection take a whole turn, and a thousand of them make
// a turn last seconds while a new client's accept waits behind them. So a receive takes at most kReceiveBurst
// buffers per pass, and one wait() at most a receive ring's worth of bytes (provided_buffer_count × size: what one
// io_uring turn could receive), and never more than kMaxWaitIntake. A connection stopped by either bound still has
// unread input but will get no new edge for it, so it joins the backlog: served, a burst each, in rounds after the
// new events of this wait and, once the budget is spent, in the next wait, which then does not block. The budget
// stops heavy receivers (the last read filled its buffer): one just armed reads its first buffer of a pass whatever
// the budget, and one whose last read emptied its socket does so while a second budget of the same size lasts, so
// a new connection's request does not queue behind the flooders' backlog. Plain recvs on stream sockets (the
// proxy's relays) keep the same rule.
#include <poll.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "ringlet/buf/buffer.hpp"
#include "ringlet/runtime/backend.hpp"
#include "ringlet/base/log.hpp"

namespace ringlet {
namespace {

bool waits_for_write(const Operation& op) noexcept {
  switch (op.kind) {
    case OpKind::send:
    case OpKind::sendmsg:
    case OpKind::connect:
    case OpKind::splice_out:
      return true;
    case OpKind::poll:
      return (op.poll_events & POLLOUT) != 0 && (op.poll_events & POLLIN) == 0;
    default:
      return false;
  }
}

int errno_result() noexcept { return errno == EWOULDBLOCK ? -EAGAIN : -errno; }

class EpollBackend final : public Backend {
 public:
  EpollBackend(int epfd, const BackendOptions& options)
      : epfd_(epfd),
        provided_size_(options.provided_buffer_size),
        turn_budget_(std::min(std::int64_t{options.provided_buffer_count} * options.provided_buffer_size,
                              kMaxWaitIntake)),
        budget_(turn_budget_),
        light_budget_(turn_budget_),
        fault_cancel_loses_to_send_(options.fault_cancel_loses_to_send),
        fault_refused_writes_(options.fault_refused_writes) {}

  ~EpollBackend() override { ::close(epfd_); }

  std::string_view name() const noexcept override { return "epoll"; }

  bool submit(Operation& op) noexcept override {
    RINGLET_ASSERT(op.state == Operation::State::idle);
    if (fault_refused_writes_ > 0 && (op.kind == OpKind::send || op.kind == OpKind::splice_out)) {
      --fault_refused_writes_;
      op.result = -EAGAIN;
      return true;
    }
    if (!op.multishot && !known_empty(op)) {
      int r = perform(op);
      if (r != -EAGAIN) {
        count_inline(op, r);
        op.result = r;
        return true;
      }
    }
    if (!park(op)) {
      op.result = -errno;
      if (op.multishot) {
        op.on_complete(op, op.result, 0);
        return false;
      }
      return true;
    }
    if (op.multishot) {
      if (op.kind == OpKind::recv_provided) op.receive_flags = kLight;
      drain_multishot(op, /*armed=*/true);
    }
    return false;
  }

  void cancel(Operation& op) noexcept override {
    if (op.state != Operation::State::pending) return;
    if (fault_cancel_loses_to_send_ && is_send_kind(op.kind)) return;
    unlink(op);
    op.on_complete(op, -ECANCELED, 0);
  }

  int wait(std::int64_t timeout_ns) noexcept override {
    int timeout_ms = timeout_ns < 0 ? -1 : static_cast<int>((timeout_ns + 999'999) / 1'000'000);
    if (!backlog_.empty()) timeout_ms = 0;  // input already waiting: look for new events, never sleep
    int n = epoll_wait(epfd_, events_, kMaxEvents, timeout_ms);
    ++stats_.kernel_waits;
    budget_ = turn_budget_;
    light_budget_ = turn_budget_;
    if (n < 0) {
      if (errno != EINTR) log_error("epoll_wait: {}", std::strerror(errno));
      n = 0;
    }
    int delivered = 0;
    // Newest edge first: the kernel's ready list is FIFO, so a new connection's edge comes after every busy
    // socket's, and light receivers (a new connection's request) read past the budget from the light budget in
    // this order; oldest first, a fresh client that arrived behind a burst of light ones found it spent (#15).
    // What the budget stops goes to the backlog, served oldest first.
    for (int i = n - 1; i >= 0; --i) {
      std::uint64_t t = events_[i].data.u64;
      auto* io = token::pointer_of<IoHandle>(t);
      std::uint32_t ev = events_[i].events;
      if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) io->peer_closed = true;
      if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) {
        io->input_drained = false;
        delivered += run_waiters(*io, /*writers=*/false);
      }
      if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP)) delivered += run_waiters(*io, /*writers=*/true, ev);
    }
    delivered += serve_backlog();
    stats_.completions += static_cast<std::uint64_t>(delivered);
    return delivered;
  }

  void flush() noexcept override {}

  void detach(IoHandle& io) noexcept override {
    forget(io);
    if (io.epoll_registered) {
      epoll_ctl(epfd_, EPOLL_CTL_DEL, io.fd, nullptr);
      io.epoll_registered = false;
    }
  }

  // No EPOLL_CTL_DEL: the kernel drops a descriptor from every epoll set when the last reference to its open file
  // goes, which the caller promises this close is (backend.hpp) — one system call less per socket.
  void close(IoHandle& io) noexcept override {
    forget(io);
    io.epoll_registered = false;
    ::close(io.fd);
  }

  // One EPOLL_CTL_MOD renames the registration (the token names the handle); the input edge the peer's FIN spent
  // stays spent, and input the fairness bounds left unread stays on the backlog, now under `to`.
  void move(IoHandle& from, IoHandle& to) noexcept override {
    RINGLET_ASSERT(from.readers.empty() && from.writers.empty() && !to.epoll_registered);
    to.fd = from.fd;
    to.peer_closed = from.peer_closed;
    to.input_drained = from.input_drained;
    to.input_heavy = from.input_heavy;
    if (from.epoll_backlogged) {
      *std::find(backlog_.begin(), backlog_.end(), &from) = &to;
      from.epoll_backlogged = false;
      to.epoll_backlogged = true;
    }
    if (from.epoll_registered) {
      epoll_event ev{};
      ev.events = events_of(to);
      ev.data.u64 = token::encode(&to, token::Tag::io_handle);
      if (epoll_ctl(epfd_, EPOLL_CTL_MOD, to.fd, &ev) == 0) {
        to.epoll_registered = true;
      } else {
        epoll_ctl(epfd_, EPOLL_CTL_DEL, to.fd, nullptr);  // to registers afresh at its first wait
      }
      from.epoll_registered = false;
    }
    from.input_drained = false;
    from.input_heavy = false;
  }

  std::size_t pending() const noexcept override { return pending_; }
  const BackendStats& stats() const noexcept override { return stats_; }

 private:
  // Events one epoll_wait returns. Edge-triggered sockets join the kernel's ready list in FIFO order, so during a
  // flood a new connection's edge (a connect completing, its first request) waits behind every busy socket: with
  // 256 a wait, behind up to 2,000 relayed sockets, 8 waits. Taking them all is cheap since the intake budget
  // bounds what the pass does: a heavy socket past it only joins the backlog.
  static constexpr int kMaxEvents = 1024;

  static std::uint32_t events_of(const IoHandle& io) noexcept {
    return EPOLLIN | EPOLLRDHUP | EPOLLET | (io.reads_only ? 0u : static_cast<std::uint32_t>(EPOLLOUT));
  }

  void forget(IoHandle& io) noexcept {
    RINGLET_ASSERT(io.readers.empty() && io.writers.empty());
    if (io.epoll_backlogged) {  // only between waits: serve_backlog() never closes anything
      backlog_.erase(std::find(backlog_.begin(), backlog_.end(), &io));
      io.epoll_backlogged = false;
    }
    io.input_drained = false;
    io.input_heavy = false;
  }

  // Receives one connection may take per pass before the others get theirs: 4 × 8 KiB by default, more than a
  // request/response connection ever has waiting, so only bulk and flooding connections ever reach it.
  static constexpr int kReceiveBurst = 4;
  // Receive bytes one wait takes in at most, whatever the ring's size (`--receive-buffers`): what the tasks of one
  // turn then have to handle, and so how long a turn lasts during a flood. With the default ring (2,048 × 8 KiB) a
  // wait took in 16 MiB, and a `ringlet echo` behind a flooded proxy made turns of 100-400 ms.
  static constexpr std::int64_t kMaxWaitIntake = 1 << 20;
  // op.receive_flags of a recv_provided (io_uring's field; on epoll it says this): the receive was just armed or its
  // last read emptied the socket. Past the budget such a receive still reads its first buffer of a pass, from the
  // light budget (as large as the budget, light_budget_): a new connection's request, or a request/response client's
  // next one, does not wait behind the flooders' backlog. Bounded, because a flood's first wait finds a thousand
  // connections light (armed, nothing read yet), as do cache and queue flooders that read short every time: without
  // the bound one wait took in a read from each (672 of them, 5 MB of pipelined gets) and the cache's fresh client
  // waited 240-630 ms during the flood (StalledClientsTest, #15).
  static constexpr std::uint8_t kLight = 1;

  // A recv on a stream socket that the last recv left empty, with no input edge since (IoHandle::input_drained): the
  // try would only return EAGAIN. Parking without it is safe because any byte that arrived after that recv raised
  // an edge — on the ready list, seen by this or a later epoll_wait, which clears the mark and runs the waiter — and
  // EPOLL_CTL_ADD reports input already there for a handle not yet registered. Not once the peer's FIN or an error
  // has been seen: that edge is spent, and the recv must go on to the end of input itself.
  static bool known_empty(const Operation& op) noexcept {
    return op.kind == OpKind::recv && op.io->input_drained && !op.io->peer_closed;
  }

  // After a recv on a stream socket: whether it left the socket empty (short, or EAGAIN). A full read, the end of
  // input and errors leave it unknown.
  static void note_receive(Operation& op, int r) noexcept {
    IoHandle& io = *op.io;
    if (!io.stream || (op.msg_flags & MSG_PEEK) != 0) return;
    io.input_drained = r == -EAGAIN || (r > 0 && static_cast<std::uint32_t>(r) < op.len);
    // Heavy until a read with bytes comes back short: an EAGAIN after full reads says nothing new (a flooder whose
    // relay caught up for a moment is still a flooder).
    if (r != -EAGAIN) io.input_heavy = r > 0 && static_cast<std::uint32_t>(r) == op.len;
  }

  // Runs op's syscall without blocking. Returns the kernel-style result; -EAGAIN means "not ready". `events`: the
  // epoll event that woke a parked op (0 when it is tried without one).
  int perform(Operation& op, std::uint32_t events = 0) noexcept {
    int fd = op.io->fd;
    switch (op.kind) {
      case OpKind::recv: {
        ssize_t n = ::recv(fd, op.buf, op.len, op.msg_flags | MSG_DONTWAIT);
        int r = n >= 0 ? static_cast<int>(n) : errno_result();
        note_receive(op, r);
        return r;
      }
      case OpKind::send: {
        ssize_t n = ::send(fd, op.buf, op.len, op.msg_flags | MSG_DONTWAIT | MSG_NOSIGNAL);
        return n >= 0 ? static_cast<int>(n) : errno_result();
      }
      case OpKind::recvmsg: {
        ssize_t n = ::recvmsg(fd, op.msg, op.msg_flags | MSG_DONTWAIT);
        return n >= 0 ? static_cast<int>(n) : errno_result();
      }
      case OpKind::sendmsg: {
        ssize_t n = ::sendmsg(fd, op.msg, op.msg_flags | MSG_DONTWAIT | MSG_NOSIGNAL);
        return n >= 0 ? static_cast<int>(n) : errno_result();
      }
      case OpKind::accept: {
        if (op.addrlen != nullptr) *op.addrlen = op.addrlen_in;
        int r = ::accept4(fd, op.addr, op.addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        return r >= 0 ? r : errno_result();
      }
      case OpKind::connect: {
        if (!op.connect_started) {
          if (::connect(fd, op.addr, op.addrlen_in) == 0) return 0;
          if (errno != EINPROGRESS) return -errno;
          op.connect_started = true;
          return -EAGAIN;
        }
        // A TCP socket in SYN_SENT polls as nothing at all; it becomes writable once the handshake is done, and a
        // failed handshake sets sk_err and closes it, which polls as EPOLLERR | EPOLLHUP (net/ipv4/tcp.c, tcp_poll).
        // So an edge with EPOLLOUT and neither of those is a finished connect, and needs no SO_ERROR query
        // (two system calls per connection, with the getpeername below). Anything else asks the socket.
        if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == EPOLLOUT) return 0;
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return -errno;
        if (err == 0) {
          // Writable with no error can also mean "still connecting" after a spurious edge: ask the peer name.
          sockaddr_storage ss;
          socklen_t sl = sizeof ss;
          if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &sl) != 0 && errno == ENOTCONN) return -EAGAIN;
        }
        return -err;
      }
      case OpKind::recv_provided:
        // At most provided_size_, like a ring buffer on io_uring, so "short read" means the same on both.
        return receive_into_pooled_buffer(fd, provided_size_, provided_size_, op.buffer);
      case OpKind::poll: {
        pollfd p{fd, static_cast<short>(op.poll_events), 0};
        int r = ::poll(&p, 1, 0);
        if (r < 0) return -errno;
        return r == 0 ? -EAGAIN : p.revents;
      }
      case OpKind::read: {
        ssize_t n = ::read(fd, op.buf, op.len);
        return n >= 0 ? static_cast<int>(n) : errno_result();
      }
      // The pipe side never blocks: callers splice into an empty pipe and out of one holding the bytes, so EAGAIN
      // speaks for the socket and parking on the socket's readiness is right.
      case OpKind::splice_in: {
        ssize_t n = ::splice(fd, nullptr, op.pipe_fd, nullptr, op.len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        return n >= 0 ? static_cast<int>(n) : errno_result();
      }
      case OpKind::splice_out: {
        ssize_t n = ::splice(op.pipe_fd, nullptr, fd, nullptr, op.len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        return n >= 0 ? static_cast<int>(n) : errno_result();
      }
      // No readiness tells when a file sync would not block, and blocking here stalls every connection of the
      // loop: file_sync.hpp runs it on the blocking pool instead (syncs_files() is false).
      case OpKind::fdatasync:
        return -EOPNOTSUPP;
    }
    return -EINVAL;
  }

  bool park(Operation& op) noexcept {
    IoHandle& io = *op.io;
    if (!io.epoll_registered) {
      epoll_event ev{};
      ev.events = events_of(io);
      ev.data.u64 = token::encode(&io, token::Tag::io_handle);
      if (epoll_ctl(epfd_, EPOLL_CTL_ADD, io.fd, &ev) != 0) return false;
      io.epoll_registered = true;
    }
    (waits_for_write(op) ? io.writers : io.readers).push_back(op);
    op.state = Operation::State::pending;
    ++pending_;
    return true;
  }

  void unlink(Operation& op) noexcept {
    IoHandle& io = *op.io;
    (waits_for_write(op) ? io.writers : io.readers).remove(op);
    op.state = Operation::State::idle;
    --pending_;
  }

  // Delivers results of a parked multishot op until EAGAIN, an error, or its owner cancels it.
  // Returns completions delivered.
  // `armed`: the owner just armed it (submit, in the tasks' phase, not in a pass over events): no burst bound, and
  // its first receive is tried whatever the budget, so a new connection's first bytes are read at once even while
  // flooders have spent this turn's budget.
  int drain_multishot(Operation& op, bool armed = false) noexcept {
    int delivered = 0;
    int receives = 0;
    while (op.state == Operation::State::pending) {
      // The fairness bounds (top of file).
      const bool burst_done = !armed && receives == kReceiveBurst;
      const bool light = receives == 0 && !armed && (op.receive_flags & kLight) != 0 && light_budget_ > 0;
      const bool spent = budget_ <= 0 && !(receives == 0 && armed) && !light;
      const bool from_light_budget = budget_ <= 0 && light;
      if (op.kind == OpKind::recv_provided && (burst_done || spent)) {
        stats_.receives_starved += spent ? 1 : 0;  // what io_uring's empty ring is here (metrics)
        to_backlog(*op.io);
        break;
      }
      int r = perform(op);
      if (op.kind == OpKind::recv_provided && r > 0) {
        ++receives;
        budget_ -= r;
        if (from_light_budget) light_budget_ -= r;
        op.receive_flags = static_cast<std::uint32_t>(r) < provided_size_ ? kLight : 0;
      }
      if (r == -EAGAIN) break;
      ++delivered;
      bool final = r <= 0 && !(op.kind == OpKind::accept && r == 0);
      if (r < 0 && op.kind == OpKind::accept && r == -ECONNABORTED) {
        // A connection reset while it waited in the queue: report it and take the next one.
        deliver(op, r, Operation::kMore);
        continue;
      }
      // Out of descriptors (EMFILE, ENFILE) the accept ends, as io_uring's multishot accept does, and the owner
      // submits again when it wants to retry; that submit calls accept4 at once. Kept parked, it would wait for the
      // next edge, which only a new connection raises: the connections already queued would wait for one however
      // many descriptors had come back (ProxyTest.running_out_of_descriptors_keeps_it_running_and_it_recovers, #12).
      if (final) {
        unlink(op);
        deliver(op, r, 0);
        break;
      }
      // A receive that did not fill its buffer emptied the socket: stop here rather than pay one more recv for
      // the EAGAIN. Safe with edge triggering, because data arriving later raises a new edge.
      // Not when the peer's FIN has been seen: that edge is spent, so we must read on to the EOF ourselves.
      bool short_read = op.kind == OpKind::recv_provided && static_cast<std::uint32_t>(r) < provided_size_ &&
                        !op.io->peer_closed;
      deliver(op, r, Operation::kMore);
      if (short_read) break;
    }
    return delivered;
  }

  void to_backlog(IoHandle& io) noexcept {
    if (io.epoll_backlogged) return;
    io.epoll_backlogged = true;
    backlog_.push_back(&io);
  }

  // Rounds over the connections with input left, a burst each, oldest first, until none is left or the budget is
  // spent (the rest keep their order for the next wait). A lone bulk connection so still reads its whole window in
  // one turn; a thousand flooders share the turn's budget.
  int serve_backlog() noexcept {
    int delivered = 0;
    while (!backlog_.empty() && budget_ > 0) {
      serving_.swap(backlog_);  // what the round re-queues lands in backlog_, behind the unserved
      std::size_t i = 0;
      for (; i < serving_.size() && budget_ > 0; ++i) {
        IoHandle& io = *serving_[i];
        io.epoll_backlogged = false;
        delivered += run_waiters(io, /*writers=*/false);
      }
      backlog_.insert(backlog_.begin(), serving_.begin() + static_cast<std::ptrdiff_t>(i), serving_.end());
      serving_.clear();
    }
    return delivered;
  }

  int run_waiters(IoHandle& io, bool writers, std::uint32_t events = 0) noexcept {
    int delivered = 0;
    Operation* op = (writers ? io.writers : io.readers).front();
    while (op != nullptr) {
      Operation* next = OpWaitList::next(*op);
      if (op->multishot) {
        delivered += drain_multishot(*op);
        if (op->state == Operation::State::pending) break;  // drained to EAGAIN: later waiters would see it too
      } else {
        // A plain recv (the proxy's relays) on a socket whose last recv filled its buffer takes its turn on the
        // backlog once the budget is spent, like a multishot receive; one that emptied its socket goes at once.
        if (op->kind == OpKind::recv && io.input_heavy && budget_ <= 0) {
          stats_.receives_starved += 1;
          to_backlog(io);
          break;
        }
        int r = perform(*op, events);
        if (r == -EAGAIN) break;
        if (op->kind == OpKind::recv && r > 0) budget_ -= r;
        unlink(*op);
        ++delivered;
        deliver(*op, r, 0);
      }
      op = next;
    }
    return delivered;
  }

  int epfd_;
  std::uint32_t provided_size_;
  std::int64_t turn_budget_;  // receive bytes per wait (fairness)
  std::int64_t budget_;       // what is left of it in this wait
  std::int64_t light_budget_;  // what light receivers may read past it in this wait (kLight)
  bool fault_cancel_loses_to_send_;
  std::uint32_t fault_refused_writes_;
  std::vector<IoHandle*> backlog_;  // connections with unread input and no edge to come, in arrival order
  std::vector<IoHandle*> serving_;
  std::size_t pending_ = 0;
  BackendStats stats_;
  epoll_event events_[kMaxEvents];
};

}  // namespace

std::unique_ptr<Backend> create_epoll_backend(const BackendOptions& options, std::string& error) {
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) {
    error = std::string("epoll_create1: ") + std::strerror(errno);
    return nullptr;
  }
  return std::make_unique<EpollBackend>(epfd, options);
}

}  // namespace ringlet
