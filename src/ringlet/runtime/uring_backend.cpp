// uring_backend.cpp — the completion backend on io_uring.
//
// One kernel entry per loop turn: every operation only fills an SQE; wait() submits them all and waits in one
// io_uring_enter, then reaps every CQE. flush() is the follow-up submit after tasks ran, so sends they queued
// leave now rather than after the next wait.
//
// Receives use one multishot recv per stream, selecting buffers from a ring of provided buffers (buffer group 0).
// A completion hands the owner one reference to that buffer; when the last reference drops, the buffer goes back
// into the ring. When the ring runs dry the kernel ends the multishot with ENOBUFS (bytes are waiting, there is no
// buffer for them): at the next wait the backend reads one pooled buffer's worth for it with a plain recv(2) and
// delivers that as the receive's last completion, and the owner re-arms when it wants more (serve_starved). The
// owner never sees ENOBUFS. The stream layer keeps the ring from staying dry: it copies buffers nobody consumed
// within a turn out of the ring (docs/design/buffers.md).
//
// Setup asks for SINGLE_ISSUER + DEFER_TASKRUN (completion work runs only when we enter the kernel to wait: no
// interrupts of the loop), falls back to COOP_TASKRUN, and registers the ring fd so each enter skips an fd lookup.
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <sys/mman.h>
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

constexpr int kBufferGroup = 0;

// The provided-buffer ring: `count` buffers of `size` bytes in one anonymous mapping, lent to the kernel.
class ProvidedRing final : public BufferSource {
 public:
  ProvidedRing() noexcept : BufferSource(/*shared_ring=*/true) {}

  bool init(io_uring& ring, std::uint32_t count, std::uint32_t size, std::string& error) {
    count_ = count;
    size_ = size;
    ring_bytes_ = count * sizeof(io_uring_buf);
    void* mem = mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) {
      error = std::string("mmap(buffer ring): ") + std::strerror(errno);
      return false;
    }
    br_ = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_ring_init(br_);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uint64_t>(br_);
    reg.ring_entries = count;
    reg.bgid = kBufferGroup;
    if (int r = io_uring_register_buf_ring(&ring, &reg, 0); r != 0) {
      error = std::string("register provided buffer ring: ") + std::strerror(-r);
      munmap(br_, ring_bytes_);
      br_ = nullptr;
      return false;
    }
    storage_bytes_ = std::size_t{count} * size;
    // Pre-faulted: the kernel hands these buffers out round-robin, so within a few thousand receives every page is
    // touched anyway. Paying for them at start-up shows the ring's fixed cost in RSS from the first moment,
    // instead of letting it creep up and masquerade as per-connection memory.
    void* storage = mmap(nullptr, storage_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE | MAP_POPULATE,
                         -1, 0);
    if (storage == MAP_FAILED) {
      error = std::string("mmap(receive buffers): ") + std::strerror(errno);
      return false;
    }
    storage_ = static_cast<std::byte*>(storage);
    headers_.resize(count);
    mask_ = static_cast<std::uint32_t>(io_uring_buf_ring_mask(count));
    for (std::uint32_t i = 0; i < count; ++i) {
      Buffer& b = headers_[i];
      b.data = storage_ + std::size_t{i} * size;
      b.capacity = size;
      b.refs = 0;
      b.source = this;
      b.tag = i;
      io_uring_buf_ring_add(br_, b.data, size, static_cast<unsigned short>(i), static_cast<int>(mask_),
                            static_cast<int>(i));
    }
    io_uring_buf_ring_advance(br_, static_cast<int>(count));
    free_ = count;
    return true;
  }

  void deinit(io_uring& ring) noexcept {
    if (br_ == nullptr) return;
    if (free_ != count_) {
      // A Slice outlived its loop: keep the storage mapped so it stays valid memory, and say so.
      log_error("io_uring backend: {} receive buffers still referenced at shutdown", count_ - free_);
      storage_ = nullptr;
    }
    io_uring_unregister_buf_ring(&ring, kBufferGroup);
    munmap(br_, ring_bytes_);
    if (storage_ != nullptr) munmap(storage_, storage_bytes_);
    br_ = nullptr;
  }

  // The kernel filled buffer `bid`: hand out its first reference.
  Buffer* take(std::uint32_t bid) noexcept {
    RINGLET_ASSERT(bid < count_);
    Buffer* b = &headers_[bid];
    RINGLET_ASSERT(b->refs == 0);
    b->refs = 1;
    --free_;
    return b;
  }

  void recycle(Buffer* b) noexcept override {
    io_uring_buf_ring_add(br_, b->data, size_, static_cast<unsigned short>(b->tag), static_cast<int>(mask_), 0);
    io_uring_buf_ring_advance(br_, 1);
    ++free_;
  }

  std::uint32_t free_count() const noexcept { return free_; }
  std::uint32_t count() const noexcept { return count_; }
  std::uint32_t buffer_size() const noexcept { return size_; }

 private:
  io_uring_buf_ring* br_ = nullptr;
  std::size_t ring_bytes_ = 0;
  std::byte* storage_ = nullptr;
  std::size_t storage_bytes_ = 0;
  std::vector<Buffer> headers_;
  std::uint32_t count_ = 0;
  std::uint32_t size_ = 0;
  std::uint32_t mask_ = 0;
  std::uint32_t free_ = 0;
};

class UringBackend final : public Backend {
 public:
  UringBackend() = default;
  ~UringBackend() override {
    if (!initialized_) return;
    buffers_.deinit(ring_);
    io_uring_queue_exit(&ring_);
  }

  bool init(const BackendOptions& options, std::string& error) {
    fault_cancel_loses_to_send_ = options.fault_cancel_loses_to_send;
    fault_refused_writes_ = options.fault_refused_writes;
    io_uring_params params{};
    // TASKRUN_FLAG: the kernel flags the ring when it left deferred completions unrun (drain_deferred).
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL |
                   IORING_SETUP_TASKRUN_FLAG;
    int r = io_uring_queue_init_params(options.ring_entries, &ring_, &params);
    setup_ = "SINGLE_ISSUER+DEFER_TASKRUN+TASKRUN_FLAG";
    if (r == -EINVAL) {
      params = {};
      params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL;
      r = io_uring_queue_init_params(options.ring_entries, &ring_, &params);
      setup_ = "SINGLE_ISSUER+DEFER_TASKRUN";
    }
    if (r == -EINVAL) {
      params = {};
      params.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL;
      r = io_uring_queue_init_params(options.ring_entries, &ring_, &params);
      setup_ = "COOP_TASKRUN";
    }
    if (r == -EINVAL) {
      params = {};
      r = io_uring_queue_init_params(options.ring_entries, &ring_, &params);
      setup_ = "plain";
    }
    if (r != 0) {
      error = std::string("io_uring_setup: ") + std::strerror(-r) + (r == -EPERM ? " (io_uring disabled by sysctl kernel.io_uring_disabled or seccomp)" : r == -ENOMEM ? " (memlock limit too low?)" : "");
      return false;
    }
    initialized_ = true;
    if (!(params.features & IORING_FEAT_EXT_ARG) || !(params.features & IORING_FEAT_NODROP)) {
      error = "kernel lacks IORING_FEAT_EXT_ARG/NODROP (needs 5.11+)";
      return false;
    }
    io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
    bool has_ops = probe != nullptr && io_uring_opcode_supported(probe, IORING_OP_SEND_ZC) &&
                   io_uring_opcode_supported(probe, IORING_OP_ASYNC_CANCEL);
    if (probe != nullptr) io_uring_free_probe(probe);
    if (!has_ops) {
      // SEND_ZC arrived with 6.0, as did multishot receive, which has no probe bit of its own.
      error = "kernel lacks multishot receive (needs Linux 6.0+)";
      return false;
    }
    if (io_uring_register_ring_fd(&ring_) == 1) {
      setup_ += "+registered ring fd";
      enter_flags_ = IORING_ENTER_REGISTERED_RING;
    }
    if (!buffers_.init(ring_, options.provided_buffer_count, options.provided_buffer_size, error)) return false;
    return true;
  }

  const std::string& setup() const noexcept { return setup_; }

  std::string_view name() const noexcept override { return "io_uring"; }

  bool submit(Operation& op) noexcept override {
    RINGLET_ASSERT(op.state == Operation::State::idle);
    if (fault_refused_writes_ > 0 && (op.kind == OpKind::send || op.kind == OpKind::splice_out)) {
      --fault_refused_writes_;
      op.result = -EAGAIN;
      return true;
    }
    op.state = Operation::State::pending;
    ++pending_;
    if (op.kind == OpKind::recv_provided && buffers_.free_count() == 0) {
      starve(op);
      return false;
    }
    if (io_uring_sq_ready(&ring_) >= kSubmitBudget) {
      hold(op);
      return false;
    }
    prep(op);
    return false;
  }

  void cancel(Operation& op) noexcept override {
    if (op.state != Operation::State::pending) return;
    if (fault_cancel_loses_to_send_ && is_send_kind(op.kind)) return;
    if (remove_from(light_, op) || remove_from(heavy_, op) || remove_held(held_light_, op) ||
        remove_held(held_heavy_, op) || remove_held(held_fresh_, op)) {
      op.state = Operation::State::idle;
      --pending_;
      op.on_complete(op, -ECANCELED, 0);
      return;
    }
    op.state = Operation::State::cancelling;
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel64(sqe, token::encode(&op, token::Tag::operation), 0);
    io_uring_sqe_set_data64(sqe, token::encode(nullptr, token::Tag::ignore));
  }

  // Submissions handed to the kernel per entry. The kernel issues each SQE inline, inside io_uring_enter: a
  // loopback send runs the sender's TCP path and the receiver's, 30-50 µs each under a flood, so a turn in which a
  // thousand relays each queued a send spent 20-45 ms in one submit (#15, docs/design/buffers.md). Past this many,
  // the rest stay in the submission queue for the next entry, and a wait with more queued does not block: turns
  // stay short, and the accept, connect or read of a fresh connection is reaped between them.
  static constexpr unsigned kSubmitBudget = 256;

  // Past kSubmitBudget queued SQEs, a new operation waits in the backend, not in the submission queue, where it
  // would be behind every SQE queued before it: a fresh connection's connect or read behind ~800 flooders' sends
  // waited three or four entries (#15). Held operations go in by how much their descriptor moved in the service
  // window: almost nothing (under kFreshBytes: a new connection, a client that sends a request and waits), little
  // (under Backend::kHeavyBytes), much (release_held says in which order).
  void hold(Operation& op) noexcept {
    const std::uint32_t moved = op.io != nullptr ? op.io->window_bytes : 0;
    (moved >= kHeavyBytes ? held_heavy_ : moved >= kFreshBytes ? held_light_ : held_fresh_).push_back(op);
  }

  bool has_held() const noexcept { return !held_fresh_.empty() || !held_light_.empty() || !held_heavy_.empty(); }

  // A descriptor that moved less than this in the window is fresh. Under a flood every connection that has begun
  // relaying moved a first read (4 KiB or more) and queued new light operations every turn; newest first among
  // those, a fresh connection's held read was the newest for one turn only and then waited three or four (#15).
  static constexpr std::uint32_t kFreshBytes = 4 * 1024;

  // Tops the submission queue up to kSubmitBudget from the held operations before each entry: an eighth of the
  // budget for the oldest of each class (nobody is held forever), then fresh ones newest first, light ones newest
  // first, then heavy ones oldest first. Newest first, as for starved receives: when a thousand connections arrive
  // at once their set-up operations are all fresh, and one that came after them would wait for every one (in the
  // flood test, 5 turns from its accept to its connect, 120 ms).
  void release_held() noexcept {
    if (!has_held()) return;
    release_from(held_heavy_, kSubmitBudget / 8, /*newest=*/false);
    release_from(held_light_, kSubmitBudget / 8, /*newest=*/false);
    release_from(held_fresh_, kSubmitBudget / 8, /*newest=*/false);
    release_from(held_fresh_, kSubmitBudget, /*newest=*/true);
    release_from(held_light_, kSubmitBudget, /*newest=*/true);
    release_from(held_heavy_, kSubmitBudget, /*newest=*/false);
  }

  void release_from(OpWaitList& list, unsigned most, bool newest) noexcept {
    for (unsigned i = 0; i < most && io_uring_sq_ready(&ring_) < kSubmitBudget && !list.empty(); ++i) {
      Operation* op = newest ? list.front()->wait_link.prev : list.front();  // the head's prev is the tail
      list.remove(*op);
      prep(*op);
    }
  }

  static bool remove_held(OpWaitList& list, Operation& op) noexcept {
    for (Operation* o = list.front(); o != nullptr; o = OpWaitList::next(*o)) {
      if (o == &op) {
        list.remove(op);
        return true;
      }
    }
    return false;
  }

  // Hands at most kSubmitBudget queued SQEs to the kernel (the rest stay queued, already visible to it).
  void submit_some(unsigned flags) noexcept {
    const unsigned queued = io_uring_sq_ready(&ring_);
    // What io_uring_submit does before entering (liburing's __io_uring_flush_sq, no SQPOLL here): publish the tail.
    io_uring_smp_store_release(ring_.sq.ktail, ring_.sq.sqe_tail);
    io_uring_enter(static_cast<unsigned>(ring_.enter_ring_fd), std::min(queued, kSubmitBudget), 0,
                   flags | enter_flags_, nullptr);
    ++stats_.kernel_submits;
  }

  int wait(std::int64_t timeout_ns) noexcept override {
    int delivered = serve_starved();
    if (delivered > 0) timeout_ns = 0;  // completions are waiting to be handled: do not sleep
    if (has_held()) timeout_ns = 0;  // held operations wait for the next entry
    release_held();
    io_uring_cqe* cqe = nullptr;
    if (io_uring_sq_ready(&ring_) > kSubmitBudget) {
      submit_some(IORING_ENTER_GETEVENTS);  // more than one entry's worth queued: never sleep on them
    } else if (timeout_ns == 0) {
      io_uring_submit_and_get_events(&ring_);
      ++stats_.kernel_submits;
    } else {
      __kernel_timespec ts{};
      ts.tv_sec = timeout_ns / 1'000'000'000;
      ts.tv_nsec = timeout_ns % 1'000'000'000;
      int r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, timeout_ns > 0 ? &ts : nullptr, nullptr);
      if (r < 0 && r != -ETIME && r != -EINTR && r != -EBUSY) log_error("io_uring wait: {}", std::strerror(-r));
      ++stats_.kernel_waits;
    }
    delivered += reap();
    return delivered + drain_deferred();
  }

  void flush() noexcept override {
    release_held();
    if (io_uring_sq_ready(&ring_) == 0) return;
    submit_some(0);
  }

  void detach(IoHandle&) noexcept override {}
  void close(IoHandle& io) noexcept override { ::close(io.fd); }
  void move(IoHandle& from, IoHandle& to) noexcept override { to.fd = from.fd; }

  std::size_t pending() const noexcept override { return pending_; }
  const BackendStats& stats() const noexcept override { return stats_; }
  ReceiveRingLevel receive_ring() const noexcept override { return {buffers_.count(), buffers_.free_count()}; }
  bool syncs_files() const noexcept override { return true; }

 private:
  io_uring_sqe* get_sqe() noexcept {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    while (sqe == nullptr) {
      // The submission queue is full: hand it to the kernel and take a fresh slot.
      io_uring_submit(&ring_);
      ++stats_.kernel_submits;
      sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
  }

  void prep(Operation& op) noexcept {
    io_uring_sqe* sqe = get_sqe();
    int fd = op.io->fd;
    switch (op.kind) {
      case OpKind::recv:
        io_uring_prep_recv(sqe, fd, op.buf, op.len, op.msg_flags);
        break;
      case OpKind::send:
        io_uring_prep_send(sqe, fd, op.buf, op.len, op.msg_flags | MSG_NOSIGNAL);
        break;
      case OpKind::recvmsg:
        io_uring_prep_recvmsg(sqe, fd, op.msg, static_cast<unsigned>(op.msg_flags));
        break;
      case OpKind::sendmsg:
        io_uring_prep_sendmsg(sqe, fd, op.msg, static_cast<unsigned>(op.msg_flags | MSG_NOSIGNAL));
        break;
      case OpKind::accept:
        if (op.addrlen != nullptr) *op.addrlen = op.addrlen_in;
        if (op.multishot) {
          io_uring_prep_multishot_accept(sqe, fd, op.addr, op.addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        } else {
          io_uring_prep_accept(sqe, fd, op.addr, op.addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        }
        break;
      case OpKind::connect:
        io_uring_prep_connect(sqe, fd, op.addr, op.addrlen_in);
        break;
      case OpKind::recv_provided:
        op.receive_flags &= static_cast<std::uint8_t>(~kReceivedSinceArmed);
        // len 0: no per-invocation cap (6.16+ would requeue the receive after each capped read to let other sockets
        // in; measured, it doubled the io_uring_enter calls per 64 KiB echo, and the ring already bounds what one
        // turn can receive).
        io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = kBufferGroup;
        // The total the owner will take (op.len, the room left under its receive limit): the kernel ends the
        // multishot once that much arrived, so a stopped receive overshoots by less than one buffer instead of by
        // the batch the kernel posted before our cancel landed. While the ring is contended, one buffer is all a
        // receive may take before it ends and its owner re-arms: otherwise a receive armed when a few buffers came
        // back drains its socket into all of them, and the ring serves a handful of a thousand flooders per turn
        // (#15). liburing 2.3 names the field file_index; the kernel reads it as optlen
        // (IORING_RECV_MSHOT_LIM). Kernels without the feature refuse a non-zero one with EINVAL: reap() then turns
        // limits off for good and re-arms without.
        if (limits_supported_) {
          std::uint32_t total = op.len;
          if (ring_contended_) total = total == 0 ? buffers_.buffer_size() : std::min(total, buffers_.buffer_size());
          sqe->file_index = total;
        }
        break;
      case OpKind::poll:
        io_uring_prep_poll_add(sqe, fd, op.poll_events);
        break;
      case OpKind::read:
        io_uring_prep_read(sqe, fd, op.buf, op.len, static_cast<std::uint64_t>(-1));
        break;
      // The kernel runs a splice in an io-wq worker; on a non-blocking socket with nothing to move it completes
      // with -EAGAIN rather than waiting (runtime/splice.hpp then polls and retries).
      case OpKind::splice_in:
        io_uring_prep_splice(sqe, fd, -1, op.pipe_fd, -1, op.len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        break;
      case OpKind::splice_out:
        io_uring_prep_splice(sqe, op.pipe_fd, -1, fd, -1, op.len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        break;
      // The kernel runs a sync in an io-wq worker of this process (it always blocks); a cancel cannot stop one that
      // has started, so it completes with the sync's own result.
      case OpKind::fdatasync:
        io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
        break;
    }
    io_uring_sqe_set_data64(sqe, token::encode(&op, token::Tag::operation));
  }

  int reap() noexcept {
    int delivered = 0;
    io_uring_cqe* cqe;
    // Completion callbacks only record and schedule, so handling a CQE never re-enters the ring's CQ.
    while (io_uring_peek_cqe(&ring_, &cqe) == 0) {
      std::uint64_t t = io_uring_cqe_get_data64(cqe);
      int res = cqe->res;
      std::uint32_t flags = cqe->flags;
      io_uring_cqe_seen(&ring_, cqe);
      switch (token::tag_of(t)) {
        case token::Tag::ignore:
        case token::Tag::io_handle:
          continue;
        case token::Tag::operation:
          break;
      }
      Operation& op = *token::pointer_of<Operation>(t);
      bool more = (flags & IORING_CQE_F_MORE) != 0;
      if (op.kind == OpKind::recv_provided) {
        op.buffer = (flags & IORING_CQE_F_BUFFER) ? buffers_.take(flags >> IORING_CQE_BUFFER_SHIFT) : nullptr;
        if (op.buffer != nullptr) op.receive_flags |= kReceivedSinceArmed;
        if (res == -EINVAL && !more && limits_supported_ && op.state == Operation::State::pending) {
          limits_supported_ = false;
          log_info("io_uring backend: this kernel has no multishot receive limit (6.16+); a stopped receive may "
                   "overshoot its limit by one batch of buffers");
          prep(op);
          continue;
        }
        if (res == -ENOBUFS && !more) {
          if (op.state == Operation::State::pending) {
            // The ring ran dry under bytes that are waiting: the next wait reads them (serve_starved). The owner
            // never sees ENOBUFS.
            starve(op);
            continue;
          }
          res = -ECANCELED;  // it ran dry while we were stopping it anyway: the stop is what the owner asked for
        }
      }
      if (!more) {
        op.state = Operation::State::idle;
        --pending_;
      }
      ++delivered;
      deliver(op, res, more ? Operation::kMore : 0);
    }
    stats_.completions += static_cast<std::uint64_t>(delivered);
    return delivered;
  }

  // Linux 6.13+ runs at most 20 deferred completions per pass of an io_uring_enter on a DEFER_TASKRUN ring (more
  // only when the caller waits for more) and flags the ring when it left some. Each is a socket's receive or send
  // finishing, so with a thousand busy sockets a turn took in 20 of them and a fresh client's request waited
  // behind the rest for dozens of turns (#15). A turn takes them all: enter again, asking for as many completions
  // as the completion queue holds with a zero timeout, while the flag says work is left (bounded, so a flood of
  // completions still lets the turn end). Kernels that do not flag it have no such limit.
  int drain_deferred() noexcept {
    int delivered = 0;
    for (int i = 0; i < 8 && (IO_URING_READ_ONCE(*ring_.sq.kflags) & IORING_SQ_TASKRUN) != 0; ++i) {
      __kernel_timespec zero{};
      io_uring_getevents_arg arg{};
      arg.sigmask_sz = _NSIG / 8;
      arg.ts = reinterpret_cast<std::uint64_t>(&zero);
      io_uring_enter2(static_cast<unsigned>(ring_.enter_ring_fd), 0, ring_.cq.ring_entries,
                      IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG | enter_flags_, reinterpret_cast<sigset_t*>(&arg),
                      sizeof arg);
      ++stats_.kernel_submits;
      delivered += reap();
    }
    return delivered;
  }

  // Receives the ring ran dry for (bytes wait in their sockets) or that were armed while it was empty do not wait
  // for ring buffers to come back: each gets a plain recv(2) into a pooled buffer of a ring buffer's size,
  // delivered as its last completion (the owner re-arms when it wants more). Waiting for the ring made a receive
  // queue behind every other starved one: with a thousand flooders a fresh client's request waited seconds (#15).
  // Two queues, so that the intake of a turn stays bounded and a light connection is not queued behind heavy ones:
  //  - light: receives that took nothing since they were armed and whose last plain read emptied their socket —
  //    a new connection's first request, a client that sends a request and waits for its answer. Newest first:
  //    when a flood begins, a thousand flooders that were never read yet are light too, and a client that came
  //    after them would otherwise wait for all of them; each flooder turns heavy at its first full read.
  //  - heavy: receives that were taking bytes when the ring ran dry, or whose last plain read filled its buffer
  //    (more is waiting). Oldest first, after the light ones, and at least a quarter of the reads.
  // At most a ring's worth of reads per wait, as the epoll backend takes at most a ring's worth of bytes per wait:
  // the intake, and so the length, of a turn stays bounded; the rest wait for the next turn.
  // A socket with nothing to read after all gets its multishot receive back. The ring counts as contended until a
  // wait finds nothing starved and half the ring free.
  static constexpr std::uint8_t kReceivedSinceArmed = 1;  // a ring buffer came since the receive was armed
  static constexpr std::uint8_t kBacklogged = 2;          // its last plain read filled the buffer

  void starve(Operation& op) noexcept {
    ring_contended_ = true;
    ++stats_.receives_starved;
    ((op.receive_flags & (kReceivedSinceArmed | kBacklogged)) != 0 ? heavy_ : light_).push_back(&op);
  }

  int serve_starved() noexcept {
    if (light_.empty() && heavy_.empty()) {
      if (ring_contended_ && buffers_.free_count() * 2 >= buffers_.count()) ring_contended_ = false;
      return 0;
    }
    // Taken out first: a completion may start (or cancel) another receive, which then waits for the next turn.
    const std::size_t light = std::min<std::size_t>(light_.size(), buffers_.count());
    serving_.insert(serving_.end(), light_.rbegin(), light_.rbegin() + static_cast<std::ptrdiff_t>(light));
    light_.resize(light_.size() - light);
    const std::size_t heavy =
        std::min<std::size_t>(heavy_.size(), std::max<std::size_t>(buffers_.count() - light, buffers_.count() / 4));
    serving_.insert(serving_.end(), heavy_.begin(), heavy_.begin() + static_cast<std::ptrdiff_t>(heavy));
    heavy_.erase(heavy_.begin(), heavy_.begin() + static_cast<std::ptrdiff_t>(heavy));
    int delivered = 0;
    for (Operation* op : serving_) delivered += read_starved(*op);
    serving_.clear();
    stats_.completions += static_cast<std::uint64_t>(delivered);
    return delivered;
  }

  // One plain read for a starved receive; returns the completions delivered (0 or 1).
  int read_starved(Operation& op) noexcept {
    int res = -ECANCELED;  // an earlier completion of this pass stopped it
    op.buffer = nullptr;
    if (op.state == Operation::State::pending) {
      const std::uint32_t want = op.len == 0 ? buffers_.buffer_size() : std::min(op.len, buffers_.buffer_size());
      res = receive_into_pooled_buffer(op.io->fd, buffers_.buffer_size(), want, op.buffer);
      if (res == -EAGAIN || res == -EINTR) {
        op.receive_flags = 0;
        prep(op);  // nothing waiting after all: wait for bytes in the kernel, into the ring
        return 0;
      }
      if (res > 0 && static_cast<std::uint32_t>(res) == want) {
        op.receive_flags |= kBacklogged;
      } else {
        op.receive_flags = 0;
      }
    }
    op.state = Operation::State::idle;
    --pending_;
    deliver(op, res, 0);
    return 1;
  }

  static bool remove_from(std::vector<Operation*>& queue, Operation& op) noexcept {
    for (auto it = queue.begin(); it != queue.end(); ++it) {
      if (*it == &op) {
        queue.erase(it);
        return true;
      }
    }
    return false;
  }

  io_uring ring_{};
  bool initialized_ = false;
  std::string setup_;
  ProvidedRing buffers_;
  OpWaitList held_light_;  // operations past the submission budget (hold), linked by wait_link (epoll's)
  OpWaitList held_heavy_;
  OpWaitList held_fresh_;  // of descriptors that moved under kFreshBytes in the window
  std::vector<Operation*> light_;     // starved receives for serve_starved, in arrival order
  std::vector<Operation*> heavy_;
  std::vector<Operation*> serving_;   // the ones it is serving now
  unsigned enter_flags_ = 0;          // IORING_ENTER_REGISTERED_RING when the ring fd is registered
  bool ring_contended_ = false;       // receives found the ring dry lately: each may take one buffer (prep)
  bool limits_supported_ = true;  // multishot receive total limits (sqe optlen); cleared at the first EINVAL
  std::size_t pending_ = 0;
  bool fault_cancel_loses_to_send_ = false;
  std::uint32_t fault_refused_writes_ = 0;
  BackendStats stats_;
};

}  // namespace

std::unique_ptr<Backend> create_uring_backend(const BackendOptions& options, std::string& error) {
  auto backend = std::make_unique<UringBackend>();
  if (!backend->init(options, error)) return nullptr;
  error = backend->setup();
  return backend;
}

}  // namespace ringlet
