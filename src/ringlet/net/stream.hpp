// stream.hpp — a connected byte stream (TCP or Unix) on a loop. Core-local.
//
// Receiving: the stream keeps one multishot receive armed while someone is reading and less than
// `receive_high_watermark` bytes wait unread (a reader waiting for a longer frame still gets the bytes it needs).
// Received bytes land in pooled buffers (on io_uring: the kernel's provided-buffer ring) and queue in inbound();
// receive() hands them out as Slices without copying, and the framing reads (read_line, read_until, read_frame)
// return views into them. Past the watermark the receive is cancelled, so a peer that sends faster than we consume
// is held back by TCP flow control, not by our memory (on io_uring the queue can overshoot by the completions the
// kernel posted before the cancel landed). Data already received is never lost: cancelling a wait (a task cancel,
// a timeout) leaves the bytes queued for the next read.
//
// Received buffers are loans: on io_uring they come from one ring shared by every connection of the loop. Bytes
// still queued at the end of the turn they arrived in (nobody consumed them: a partial frame, or a reader busy
// elsewhere), and output still waiting for a peer that does not read, are copied out of the ring into pooled
// buffers, so a connection that stops consuming cannot starve the others (docs/design/buffers.md).
//
// Writing: a stream gathers its output in a chain of Slices. write(Slice) and queue() append to it without copying;
// the loop's flush phase (once per turn) starts one send of the whole chain — a single send, or one sendmsg of up
// to kMaxIov pieces — and a partial write advances an offset in the chain, never copying the unsent tail. One send
// is in flight per stream at a time. write(Slice) only suspends when the chain holds more than
// `send_high_watermark` bytes (back-pressure on the writer); flush() waits until everything queued is sent.
// A send error is sticky: the next write or flush returns it. close() discards output not yet sent: flush first.
//
// One reader and one writer at a time (they may be different tasks). Destroying or closing a Stream while a task
// is still suspended in one of its reads or writes is a bug; closing it with its own receive armed is fine: the
// descriptor is closed once the kernel has finished with it.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "ringlet/buf/output_chain.hpp"
#include "ringlet/buf/slice.hpp"
#include "ringlet/buf/slice_queue.hpp"
#include "ringlet/net/address.hpp"
#include "ringlet/net/socket_options.hpp"
#include "ringlet/runtime/io_awaitable.hpp"
#include "ringlet/runtime/loop.hpp"
#include "ringlet/base/result.hpp"
#include "ringlet/runtime/task.hpp"
#include "ringlet/runtime/timeout.hpp"

namespace ringlet {

struct StreamOptions {
  std::size_t receive_high_watermark = 256 * 1024;  // stop receiving above this many unread bytes
  std::size_t send_high_watermark = 256 * 1024;     // write(Slice) waits while more than this is queued
  // A wait for input or for output room that makes no progress for this long ends with errc::timed_out
  // (zero: no limit). One timer per stream, allocated only when this is set. Change it with set_timeout().
  Duration timeout = Duration::zero();
};

namespace detail {

class StreamCore;

// The sending half of a stream. Allocated on the first write and given back to a per-thread free list once its
// output has drained, so an idle connection carries none of it.
struct SendState final : Flushable {
  static constexpr std::size_t kMaxIov = 64;  // pieces per sendmsg; more go in the next one

  struct SendOp : Operation {
    SendState* owner;
  };
  // Only a chain of several pieces needs a msghdr and iovecs; allocated on first use.
  struct Gather {
    msghdr msg;
    iovec iov[kMaxIov];
  };

  void flush_now() noexcept override;  // loop phase 6: start one send of the chain if none is in flight
  bool idle() const noexcept { return op.state == Operation::State::idle; }

  StreamCore* core = nullptr;
  SendOp op;
  OutputChain out;
  std::unique_ptr<Gather> gather;
  std::coroutine_handle<> writer;  // waiting for room (writer_wants_empty false) or for everything sent (true)
  bool writer_wants_empty = false;
  bool writer_timed_out = false;
  bool shutdown_after_flush = false;
  bool recalled = false;  // the in-flight send is being cancelled to copy its loans out (not an error)
  // Sends refused in a row (EAGAIN), and the pause after a refusal that came although poll said "room": the kernel
  // out of TCP memory (runtime/splice.hpp, wait_for_room). While the pause runs nothing is sent.
  struct PauseTimer : TimerNode {
    SendState* owner;
  };
  PauseTimer pause;
  int refusals = 0;
  bool paused() const noexcept { return pause.armed(); }
};

// The stream's state on the heap: it must outlive the Stream object while the kernel still holds an operation.
class StreamCore final : public DeferredClose {
 public:
  // From the frame pool: no allocator header, and no malloc per connection in steady state.
  static void* operator new(std::size_t size) { return FramePool::allocate(size); }
  static void operator delete(void* p, std::size_t size) noexcept { FramePool::deallocate(p, size); }

  StreamCore(Loop& loop, int fd, const StreamOptions& options) noexcept;
  void close_now() noexcept override;

  void arm_receive() noexcept;  // start the multishot receive if allowed and not running
  bool has_news(std::size_t baseline) const noexcept {
    return inbound.bytes() > baseline || eof || error.code != 0;
  }
  void close() noexcept;
  void maybe_finish_close() noexcept;

  // Sending.
  SendState& send_state();     // the send half, acquired on demand
  void settle_send() noexcept;  // hand the send half back if it has nothing left to do
  bool send_idle() const noexcept { return send == nullptr || (send->out.empty() && send->idle()); }
  std::size_t queued() const noexcept { return send ? send->out.bytes() : 0; }
  void flush_now() noexcept;
  void apply_sent(int res) noexcept;
  void wake_writer() noexcept;
  bool wait_after_refusal() noexcept;
  bool poll_for_room() noexcept;
  static void on_pause_end(TimerNode* node);
  Status shutdown_now() noexcept;

  // The progress timer shared by the reader's and the writer's waits.
  void wait_started() noexcept;
  void wait_ended() noexcept;
  void set_timeout(Duration d) noexcept;

  static void on_receive(Operation& op, int res, std::uint32_t flags) noexcept;
  static void on_sent(Operation& op, int res, std::uint32_t flags) noexcept;

  // Loans: at the end of a turn, queues that still hold slices of the shared receive ring (or a few bytes
  // pinning a big buffer) copy them out, so no connection keeps receive buffers it is not consuming
  // (docs/design/buffers.md). Queued by every receive and by every send still in flight after its turn.
  void check_at_turn_end() noexcept;
  static void on_turn_end(void* self) noexcept;
  void return_loans() noexcept;

  // The receive op is a plain member; its completion finds the core by the member's offset (one pointer less per
  // connection).
  static StreamCore* from_receive_op(Operation& op) noexcept;
  struct ProgressTimer : TimerNode {
    StreamCore* core;
    std::int64_t timeout_ns;
  };
  static void on_timeout(TimerNode* node);

  // The loop is the thread's (one per thread), so it is not stored per connection.
  static Loop* loop_of_thread() noexcept { return Loop::current(); }
  IoHandle io;
  Operation recv_op;
  SliceQueue inbound;
  std::coroutine_handle<> reader;
  SendState* send = nullptr;
  std::unique_ptr<ProgressTimer> timer;  // allocated when a timeout is set
  std::uint32_t high_watermark;
  std::uint32_t send_high_watermark;
  Error error{};        // sticky receive error
  Error write_error{};  // sticky send error
  bool eof = false;
  bool closing = false;
  bool close_deferred = false;
  bool reader_timed_out = false;
  bool turn_end_queued = false;
};

}  // namespace detail

class Stream {
 public:
  static constexpr std::size_t kMaxIov = detail::SendState::kMaxIov;

  Stream() = default;
  // Takes ownership of a connected, non-blocking socket.
  Stream(Loop& loop, int fd, const StreamOptions& options = {});
  Stream(Stream&& o) noexcept : core_(std::exchange(o.core_, nullptr)) {}
  Stream& operator=(Stream&& o) noexcept;
  ~Stream() { close(); }

  bool is_open() const noexcept { return core_ != nullptr; }
  int fd() const noexcept { return core_ ? core_->io.fd : -1; }
  // Gives up the descriptor without closing it (to hand a fresh connection to another shard). Only for a stream
  // that has not started any I/O yet.
  int release() noexcept;
  // The same, handing the socket's place in the backend to `to` (epoll: one EPOLL_CTL_MOD, where release() costs a
  // DEL now and `to` an ADD at its first wait), for an owner that goes on with plain operations on the descriptor
  // (the proxy's relay). `to` must be fresh, and outlive its registration until detached or closed.
  int release_to(IoHandle& to) noexcept;
  Loop& loop() const noexcept { return *Loop::current(); }

  // ---- receiving -----------------------------------------------------------------------------------------

  // Waits until more than `baseline` bytes are queued, or EOF, or an error. Cancellation ends only the wait;
  // bytes that arrive later stay queued. Errors: errc::cancelled, errc::timed_out (the stream's timeout), and
  // errc::eof when the task was asked to drain (a graceful stop: no more input wanted).
  class [[nodiscard]] WaitMore {
   public:
    WaitMore(detail::StreamCore* core, std::size_t baseline) noexcept
        : core_(core), baseline_(static_cast<std::uint32_t>(baseline)) {}
    bool await_ready() const noexcept { return core_->has_news(baseline_); }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
      CancelState* cs = cancel_state_of(h);
      if (cs != nullptr && (cs->requested() || cs->drain_requested())) {
        outcome_ = cs->requested() ? errc::cancelled : errc::eof;
        return false;
      }
      core_->arm_receive();
      if (core_->has_news(baseline_)) return false;  // epoll drained data inline while arming
      RINGLET_ASSERT(!core_->reader);                  // one reader at a time
      core_->reader = h;
      core_->wait_started();
      cancel_ = cs;
      if (cs != nullptr) cs->install(&WaitMore::cancel_slot, this, WaitKind::input);
      return true;
    }
    Status await_resume() noexcept {
      if (cancel_ != nullptr) {
        cancel_->clear();
        core_->wait_ended();
      }
      if (std::exchange(core_->reader_timed_out, false)) return errc::timed_out;
      return outcome_;
    }

    detail::StreamCore* core() const noexcept { return core_; }

   private:
    static void cancel_slot(void* ctx) noexcept {
      auto* self = static_cast<WaitMore*>(ctx);
      std::coroutine_handle<> h = std::exchange(self->core_->reader, nullptr);
      if (!h) return;
      self->outcome_ = self->cancel_->requested() ? errc::cancelled
                       : self->cancel_->drain_requested() ? errc::eof
                                                          : errc::cancelled;
      detail::StreamCore::loop_of_thread()->schedule(h);
    }
    detail::StreamCore* core_;
    CancelState* cancel_ = nullptr;
    std::uint32_t baseline_;  // the receive queue is bounded far below 4 GiB by its watermark
    Status outcome_{};
  };

  // The next received bytes, without copying: a Slice of a received buffer. An empty Slice means end of input
  // (the peer closed, or a graceful stop asked this task to drain). Errors: as WaitMore, and receive errors.
  class [[nodiscard]] Receive {
   public:
    explicit Receive(detail::StreamCore* core) noexcept : wait_(core, 0) {}
    bool await_ready() const noexcept { return wait_.await_ready(); }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
      return wait_.await_suspend(h);
    }
    Result<Slice> await_resume() noexcept {
      Status s = wait_.await_resume();
      detail::StreamCore* core = wait_.core();
      if (!core->inbound.empty()) return core->inbound.pop_front();
      if (!s) return s.error() == errc::eof ? Result<Slice>(Slice{}) : Result<Slice>(s.error());
      if (core->error.code != 0) return core->error;
      return Slice{};
    }

   private:
    WaitMore wait_;
  };
  Receive receive() noexcept { return Receive(core_); }
  WaitMore wait_more() noexcept { return WaitMore(core_, core_->inbound.bytes()); }

  // Received bytes not yet consumed. Parsers may read and consume them directly (then call wait_more()).
  SliceQueue& inbound() noexcept { return core_->inbound; }
  bool at_eof() const noexcept { return core_->eof && core_->inbound.empty(); }

  // Up to dst.size() bytes (copied from the queue, or received straight into dst); 0 means EOF.
  Task<Result<std::size_t>> read_some(std::span<std::byte> dst);
  // Exactly dst.size() bytes, or errc::eof when the peer closes first (the bytes read stay in dst).
  Task<Status> read_exactly(std::span<std::byte> dst);
  // A frame ending in `delim` (excluded), at most max_len bytes, as a view into received data when it lies in one
  // buffer. Errors: errc::frame_too_long, errc::eof (closed before a full frame), receive errors.
  Task<Result<Slice>> read_until(std::string_view delim, std::size_t max_len);
  Task<Result<Slice>> read_line(std::size_t max_len);  // "\n" or "\r\n", stripped
  Task<Result<Slice>> read_frame(std::size_t n);       // exactly n bytes

  // ---- writing -----------------------------------------------------------------------------------------------

  // Waits until the output chain has room (wait_for_empty false: below send_high_watermark) or is fully sent
  // (true). Returns the sticky send error if a send failed, errc::timed_out after the stream's timeout without
  // progress. Cancelling ends only the wait; queued output stays queued.
  class [[nodiscard]] WaitSent {
   public:
    WaitSent(detail::StreamCore* core, bool wait_for_empty) noexcept : core_(core), empty_(wait_for_empty) {}
    bool await_ready() const noexcept { return done(); }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
      CancelState* cs = nullptr;
      if (cancelled_before_suspend(h, cs)) {
        cancelled_ = true;
        return false;
      }
      detail::SendState& send = core_->send_state();
      detail::StreamCore::loop_of_thread()->request_flush(send);
      RINGLET_ASSERT(!send.writer);  // one writer at a time
      send.writer = h;
      send.writer_wants_empty = empty_;
      core_->wait_started();
      cancel_ = cs;
      if (cs != nullptr) cs->install(&WaitSent::cancel_slot, this);
      suspended_ = true;
      return true;
    }
    Status await_resume() noexcept {
      if (cancel_ != nullptr) cancel_->clear();
      bool timed_out = false;
      if (suspended_) {
        core_->wait_ended();
        if (core_->send != nullptr) timed_out = std::exchange(core_->send->writer_timed_out, false);
        core_->settle_send();
      }
      if (core_->write_error.code != 0) return core_->write_error;
      if (timed_out) return errc::timed_out;
      if (cancelled_) return errc::cancelled;
      return {};
    }

   private:
    bool done() const noexcept {
      if (core_->write_error.code != 0) return true;
      return empty_ ? core_->send_idle() : core_->queued() < core_->send_high_watermark;
    }
    static void cancel_slot(void* ctx) noexcept {
      auto* self = static_cast<WaitSent*>(ctx);
      if (self->core_->send == nullptr) return;  // already woken, and the send half handed back
      std::coroutine_handle<> h = std::exchange(self->core_->send->writer, nullptr);
      if (!h) return;
      self->cancelled_ = true;
      detail::StreamCore::loop_of_thread()->schedule(h);
    }
    detail::StreamCore* core_;
    bool empty_;
    bool suspended_ = false;
    bool cancelled_ = false;
    CancelState* cancel_ = nullptr;
  };

  // Appends without copying and without waiting; the loop sends it this turn. Check errors with flush().
  void queue(Slice slice);
  // Copies small bytes (a status line, a delimiter) into the chain's pooled tail; counted as a copy.
  void queue_copy(std::string_view text);
  // The output chain itself, for a composer that appends in place (proto's HeadWriter): what it appends goes out
  // this turn, as with queue(). A reference for the moment only: never keep it across an await.
  OutputChain& output();
  // Appends `slice` and waits only while the chain is over send_high_watermark.
  WaitSent write(Slice slice);
  // Waits until everything queued has been sent.
  WaitSent flush() noexcept;
  // Sends every byte of `bytes` without copying them: waits until they are all sent (the caller's memory is read
  // by the kernel until then). Ordered after anything queued before.
  Task<Status> write(std::span<const std::byte> bytes);
  Task<Status> write(std::string_view text);
  // Moves every piece of `chain` to the stream (no copy) and waits until all of it is sent.
  Task<Status> write_chain(OutputChain& chain);
  // Sends `count` bytes of file `file_fd` from `offset` with sendfile(2): the bytes never enter user space.
  // Ordered after anything queued before.
  Task<Status> sendfile(int file_fd, off_t offset, std::size_t count);

  // sendfile() for a server sending whole files to clients it does not trust to read: the range goes out in steps
  // of `step` bytes, each bounded by `step_timeout` (then errc::timed_out), so a slow but steady reader of a big
  // file is not cut off and one that stopped reading is. With `cork` on, TCP_CORK holds back what is queued (a
  // response head) until the file's first bytes join it, so the peer gets full segments instead of a tiny one
  // (nginx's tcp_nopush); uncorking at the end pushes the tail out at once. Errors: as sendfile(), errc::timed_out.
  struct SendfileSteps {
    std::uint64_t step = 1024 * 1024;
    Duration step_timeout = std::chrono::seconds(60);
    Toggle cork = Toggle::off;
  };
  Task<Status> sendfile_steps(int file_fd, off_t offset, std::uint64_t count, SendfileSteps how);
  std::size_t queued_bytes() const noexcept { return core_->queued(); }

  // ---- control ----------------------------------------------------------------------------------------------

  // Half-close: once everything queued has been sent, the peer reads EOF; we can still receive.
  Status shutdown_write() noexcept;
  void close() noexcept;

  // A lingering close, for a server that answers and then hangs up without reading all the peer sent (an error
  // response, a body it refused): closing a socket with unread input makes the kernel send a reset, and a reset
  // can destroy the response still on its way to the client. So: flush what is queued (at most `send_timeout`),
  // shut down our sending side (the peer reads our response, then EOF), read and drop the peer's input until it
  // closes, for at most `time` and `max_bytes`, then close(). Never fails: each bound just ends it sooner.
  struct Linger {
    Duration time = std::chrono::seconds(2);
    std::size_t max_bytes = 1024 * 1024;
    Duration send_timeout = std::chrono::seconds(60);
  };
  Task<void> linger_close(Linger how);
  Result<Address> peer_address() const noexcept;
  Result<Address> local_address() const noexcept;
  Status set_nodelay(Toggle on) noexcept { return ringlet::set_nodelay(fd(), on); }
  Status set_keepalive(Toggle on) noexcept { return ringlet::set_keepalive(fd(), on); }
  // Every later wait for input or output room ends with errc::timed_out after `d` without progress (zero: never).
  void set_timeout(Duration d) noexcept { core_->set_timeout(d); }

 private:
  friend Task<Result<Stream>> connect(Address address, StreamOptions options);
  int give_up(IoHandle* to) noexcept;  // release() (to: nullptr) and release_to()
  detail::StreamCore* core_ = nullptr;
};

// Connects to `address` (TCP or Unix). Wrap in with_timeout for a deadline, or use the overload.
Task<Result<Stream>> connect(Address address, StreamOptions options = {});
Task<Result<Stream>> connect(Address address, Duration timeout, StreamOptions options = {});

}  // namespace ringlet
