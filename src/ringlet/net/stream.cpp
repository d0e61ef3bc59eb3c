// stream.cpp — receive queue management, framing reads, writes.
#include "ringlet/net/stream.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "ringlet/base/free_list.hpp"
#include "ringlet/buf/buffer.hpp"
#include "ringlet/runtime/counters.hpp"
#include "ringlet/runtime/splice.hpp"

namespace ringlet {
namespace detail {
namespace {

// Send halves no stream is using, reused before allocating. Bounded; the rest are freed.
using SendStatePool = FreeList<SendState, std::default_delete<SendState>>;

SendStatePool& send_pool() {
  thread_local SendStatePool pool;
  return pool;
}

}  // namespace

StreamCore::StreamCore(Loop& loop, int fd, const StreamOptions& options) noexcept
    : high_watermark(static_cast<std::uint32_t>(std::min<std::size_t>(options.receive_high_watermark, 1u << 31))),
      send_high_watermark(static_cast<std::uint32_t>(std::min<std::size_t>(options.send_high_watermark, 1u << 31))) {
  // The core reaches its loop through Loop::current(): a stream must be created on its loop's thread.
  RINGLET_ASSERT(&loop == Loop::current());
  io.fd = fd;
  recv_op.kind = OpKind::recv_provided;
  recv_op.multishot = true;
  recv_op.io = &io;
  recv_op.on_complete = &StreamCore::on_receive;
  set_timeout(options.timeout);
  thread_counters().streams_opened.add();
}

StreamCore* StreamCore::from_receive_op(Operation& op) noexcept {
  // StreamCore is not standard-layout (it has a virtual base), so offsetof is only conditionally supported; GCC and
  // clang support it, and the layout of a final class with no virtual inheritance is fixed.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winvalid-offsetof"
  constexpr std::size_t offset = offsetof(StreamCore, recv_op);
#pragma GCC diagnostic pop
  return reinterpret_cast<StreamCore*>(reinterpret_cast<char*>(&op) - offset);
}

void StreamCore::arm_receive() noexcept {
  if (recv_op.state != Operation::State::idle || eof || error.code != 0 || closing) return;
  // No watermark check here: this runs only for a reader that needs more than is queued (a frame or line longer
  // than the watermark would otherwise wait forever). The watermark bounds bytes nobody asked for; on_receive
  // enforces it by stopping the receive once a woken reader has had its chance.
  // The room left under the watermark (at least a byte) tells the backend how much we will take: io_uring ends the
  // multishot there itself, instead of posting a batch of completions before our cancel lands (buffers.md).
  const std::size_t queued = inbound.bytes();
  recv_op.len = queued < high_watermark ? static_cast<std::uint32_t>(high_watermark - queued) : 1;
  loop_of_thread()->backend().submit(recv_op);
}

void StreamCore::on_receive(Operation& op, int res, std::uint32_t) noexcept {
  StreamCore* self = from_receive_op(op);
  if (res > 0) {
    thread_counters().bytes_in.add(static_cast<std::uint64_t>(res));
    self->inbound.push(Slice(op.buffer, 0, static_cast<std::uint32_t>(res)));
    op.buffer = nullptr;
    self->check_at_turn_end();  // whatever the reader leaves unconsumed this turn gives its buffer back
  } else if (res == 0) {
    self->eof = true;
  } else if (res != -ECANCELED) {
    self->error = Error{-res};
  }
  if (self->closing) {
    self->maybe_finish_close();
    return;
  }
  if (res == -ECANCELED) {
    // The end of a back-pressure stop. It brings no bytes, so it must not wake the reader: receive() would take
    // the empty queue for EOF. A reader that began waiting while the stop was in flight (on io_uring the cancel
    // completes a loop turn later) still wants data, so receiving restarts for it.
    if (self->reader && op.state == Operation::State::idle) self->arm_receive();
    return;
  }
  if (std::coroutine_handle<> h = std::exchange(self->reader, nullptr)) loop_of_thread()->schedule(h);
  // Back-pressure: too much unread data, stop receiving until the reader catches up.
  if (op.state == Operation::State::pending && self->inbound.bytes() >= self->high_watermark) {
    loop_of_thread()->backend().cancel(op);
  }
}

void StreamCore::check_at_turn_end() noexcept {
  if (turn_end_queued) return;
  turn_end_queued = true;
  loop_of_thread()->at_turn_end(&StreamCore::on_turn_end, this);
}

void StreamCore::on_turn_end(void* self) noexcept {
  auto* core = static_cast<StreamCore*>(self);
  core->turn_end_queued = false;
  core->return_loans();
}

void StreamCore::return_loans() noexcept {
  if (closing) return;
  // Input the reader did not take this turn: it may wait for a long time (a partial request from a slow client,
  // a reader blocked on its output).
  if (!inbound.empty() && inbound.compact() > 0) thread_counters().loans_returned.add();
  if (send == nullptr || !send->out.holds_loans()) return;
  if (send->idle()) {
    if (send->out.compact() > 0) thread_counters().loans_returned.add();
    return;
  }
  // A send submitted in an earlier turn is still in flight: the peer's window is full and the kernel holds the
  // chain's memory. Take the send back; on_sent copies the loans out and sends again.
  if (!send->recalled) {
    send->recalled = true;
    loop_of_thread()->backend().cancel(send->op);
  }
}

void StreamCore::close() noexcept {
  closing = true;
  if (turn_end_queued) {
    loop_of_thread()->forget_turn_end(this);
    turn_end_queued = false;
  }
  inbound.clear();
  if (timer && timer->armed()) loop_of_thread()->timers().stop(*timer);
  if (recv_op.state != Operation::State::idle) loop_of_thread()->backend().cancel(recv_op);
  if (send != nullptr) {
    loop_of_thread()->cancel_flush(*send);
    if (send->paused()) loop_of_thread()->timers().stop(send->pause);
    // Unsent output is discarded (writers flush() first when they care), but not under a send in flight: the kernel
    // may still read those buffers until the send completes (its cancel can lose the race), and a buffer back in the
    // pool could by then hold another connection's bytes. on_sent clears the chain then.
    if (send->idle()) {
      send->out.clear();
    } else {
      loop_of_thread()->backend().cancel(send->op);
    }
  }
  maybe_finish_close();  // now, or from the last final completion
}

void StreamCore::maybe_finish_close() noexcept {
  if (!closing || recv_op.state != Operation::State::idle) return;
  if (send != nullptr && !send->idle()) return;
  if (close_deferred) return;
  close_deferred = true;
  loop_of_thread()->defer_close(this);
}

void StreamCore::close_now() noexcept {
  RINGLET_ASSERT(recv_op.state == Operation::State::idle && (send == nullptr || send->idle()));
  inbound.clear();
  if (send != nullptr) {
    send->writer = nullptr;
    send->shutdown_after_flush = false;
    settle_send();
  }
  loop_of_thread()->backend().detach(io);
  ::close(io.fd);
  thread_counters().streams_closed.add();
  delete this;
}

// ---- the send half -------------------------------------------------------------------------------------------

SendState& StreamCore::send_state() {
  if (send != nullptr) return *send;
  send = send_pool().acquire();
  if (send == nullptr) {
    send = new SendState;
    send->op.on_complete = &StreamCore::on_sent;
    send->op.owner = send;
    send->pause.on_fire = &StreamCore::on_pause_end;
    send->pause.owner = send;
  }
  send->core = this;
  send->op.io = &io;
  return *send;
}

void StreamCore::settle_send() noexcept {
  if (send == nullptr || !send->out.empty() || !send->idle() || send->paused() || send->writer ||
      send->shutdown_after_flush) {
    return;
  }
  loop_of_thread()->cancel_flush(*send);
  SendState* s = std::exchange(send, nullptr);
  s->core = nullptr;
  s->writer_timed_out = false;
  s->refusals = 0;
  send_pool().release(s);
}

void SendState::flush_now() noexcept { core->flush_now(); }

void StreamCore::apply_sent(int res) noexcept {
  if (res == -ECANCELED && send->recalled) return;  // taken back by return_loans(): nothing sent, nothing lost
  if (res < 0) {
    if (!closing) write_error = error_from_result(res);
    send->out.clear();
    return;
  }
  thread_counters().bytes_out.add(static_cast<std::uint64_t>(res));
  send->out.advance(static_cast<std::size_t>(res));
  if (res > 0) send->refusals = 0;
}

void StreamCore::flush_now() noexcept {
  if (closing || send == nullptr) return;
  SendState& s = *send;
  while (!s.out.empty() && write_error.code == 0 && s.idle() && !s.paused()) {
    if (s.out.pieces() == 1) {
      iovec one;
      s.out.fill_iovecs(&one, 1);
      s.op.kind = OpKind::send;
      s.op.buf = one.iov_base;
      s.op.len = static_cast<std::uint32_t>(std::min<std::size_t>(one.iov_len, 1u << 30));
    } else {
      if (!s.gather) s.gather = std::make_unique<SendState::Gather>();
      s.gather->msg = msghdr{};
      s.gather->msg.msg_iov = s.gather->iov;
      s.gather->msg.msg_iovlen = s.out.fill_iovecs(s.gather->iov, SendState::kMaxIov);
      s.op.kind = OpKind::sendmsg;
      s.op.msg = &s.gather->msg;
    }
    if (!loop_of_thread()->backend().submit(s.op)) {
      check_at_turn_end();  // in flight: on_sent continues; if it still is a turn from now, the peer is not reading
      return;
    }
    if (s.op.result == -EAGAIN) {
      // Refused inline: only the backends' fault hook does this (epoll parks a send that finds no room).
      if (wait_after_refusal()) return;
      continue;  // the socket has room now: send again
    }
    apply_sent(s.op.result);  // epoll sent it inline
  }
  if (s.shutdown_after_flush && s.out.empty() && s.idle()) (void)shutdown_now();
  wake_writer();
  settle_send();
}

Status StreamCore::shutdown_now() noexcept {
  if (send != nullptr) send->shutdown_after_flush = false;
  if (::shutdown(io.fd, SHUT_WR) != 0) return Error{errno};
  return {};
}

void StreamCore::on_sent(Operation& op, int res, std::uint32_t) noexcept {
  StreamCore* self = static_cast<SendState::SendOp&>(op).owner->core;
  if (op.kind == OpKind::poll) {
    res = 0;  // the wait for room (below) ended: nothing was sent, flush_now() sends again
  } else if (res == -EAGAIN && !self->closing) {
    // Not an error: wait for room (or pause, see wait_after_refusal), then send again.
    if (self->wait_after_refusal()) return;
    res = 0;
  }
  self->apply_sent(res);
  if (self->closing) {
    self->send->out.clear();
    self->send->recalled = false;
    self->maybe_finish_close();
    return;
  }
  if (std::exchange(self->send->recalled, false) && self->send->out.compact() > 0) {
    thread_counters().loans_returned.add();
  }
  self->flush_now();
}

// A send came back EAGAIN. io_uring sometimes completes a send on a full socket with EAGAIN instead of waiting for
// room (seen on 6.18), and past net.ipv4.tcp_mem's limit Linux refuses sends to a socket that poll calls writable:
// as wait_for_room (runtime/splice.hpp) does for the relays, the first refusal in a row waits for POLLOUT and later
// ones pause first, so a refused stream does not spin send -> EAGAIN -> POLLOUT at once (#15). Returns true when a
// wait is under way (on_sent or on_pause_end goes on), false when the socket has room now: send again.
bool StreamCore::wait_after_refusal() noexcept {
  SendState& s = *send;
  const Duration pause = refused_write_pause(++s.refusals);
  if (pause.count() == 0) return poll_for_room();
  loop_of_thread()->timers().start(s.pause, loop_of_thread()->now_ns() + pause.count());
  return true;
}

// Waits for POLLOUT with the send op. Returns false when the poll completed at once (epoll: the socket is writable).
bool StreamCore::poll_for_room() noexcept {
  SendState& s = *send;
  s.op.kind = OpKind::poll;
  s.op.poll_events = POLLOUT;
  return !loop_of_thread()->backend().submit(s.op);
}

void StreamCore::on_pause_end(TimerNode* node) {
  SendState* s = static_cast<SendState::PauseTimer*>(node)->owner;
  // close() stops the pause, so the stream is open. A poll that finds room at once leaves the send to the flush
  // phase of this turn, like any other write.
  if (!s->core->poll_for_room()) s->core->loop_of_thread()->request_flush(*s);
}

void StreamCore::wake_writer() noexcept {
  if (send == nullptr || !send->writer) return;
  bool ready = write_error.code != 0 ||
               (send->writer_wants_empty ? send->out.empty() && send->idle() : send->out.bytes() < send_high_watermark);
  if (ready) loop_of_thread()->schedule(std::exchange(send->writer, nullptr));
}

// ---- the progress timer --------------------------------------------------------------------------------------

void StreamCore::set_timeout(Duration d) noexcept {
  if (d.count() <= 0) {
    if (timer) {
      if (timer->armed()) loop_of_thread()->timers().stop(*timer);
      timer->timeout_ns = 0;
    }
    return;
  }
  if (!timer) {
    timer = std::make_unique<ProgressTimer>();
    timer->on_fire = &StreamCore::on_timeout;
    timer->core = this;
  }
  timer->timeout_ns = d.count();
}

void StreamCore::wait_started() noexcept {
  if (!timer || timer->timeout_ns == 0) return;
  // Each new wait restarts the clock: the limit is on time without progress, not on the connection's age.
  if (timer->armed()) loop_of_thread()->timers().stop(*timer);
  loop_of_thread()->timers().start(*timer, loop_of_thread()->now_ns() + timer->timeout_ns);
}

void StreamCore::wait_ended() noexcept {
  if (!timer || !timer->armed()) return;
  if (reader || (send != nullptr && send->writer)) return;  // the other side still waits
  loop_of_thread()->timers().stop(*timer);
}

void StreamCore::on_timeout(TimerNode* node) {
  StreamCore* self = static_cast<ProgressTimer*>(node)->core;
  if (std::coroutine_handle<> h = std::exchange(self->reader, nullptr)) {
    self->reader_timed_out = true;
    loop_of_thread()->schedule(h);
  }
  if (self->send != nullptr) {
    if (std::coroutine_handle<> h = std::exchange(self->send->writer, nullptr)) {
      self->send->writer_timed_out = true;
      loop_of_thread()->schedule(h);
    }
  }
}

}  // namespace detail

Stream::Stream(Loop& loop, int fd, const StreamOptions& options) : core_(new detail::StreamCore(loop, fd, options)) {}

Stream& Stream::operator=(Stream&& o) noexcept {
  if (this != &o) {
    close();
    core_ = std::exchange(o.core_, nullptr);
  }
  return *this;
}

void Stream::close() noexcept {
  if (core_ == nullptr) return;
  std::exchange(core_, nullptr)->close();
}

int Stream::release() noexcept { return give_up(nullptr); }

int Stream::release_to(IoHandle& to) noexcept { return give_up(&to); }

int Stream::give_up(IoHandle* to) noexcept {
  detail::StreamCore* core = std::exchange(core_, nullptr);
  RINGLET_ASSERT(core != nullptr && core->recv_op.state == Operation::State::idle && core->send == nullptr &&
                 core->inbound.empty());
  if (core->turn_end_queued) core->loop_of_thread()->forget_turn_end(core);
  int fd = core->io.fd;
  if (core->timer && core->timer->armed()) core->loop_of_thread()->timers().stop(*core->timer);
  if (to != nullptr) {
    core->loop_of_thread()->backend().move(core->io, *to);
  } else {
    core->loop_of_thread()->backend().detach(core->io);
  }
  thread_counters().streams_closed.add();
  delete core;
  return fd;
}

Status Stream::shutdown_write() noexcept {
  if (core_->send_idle()) return core_->shutdown_now();
  detail::SendState& send = core_->send_state();
  send.shutdown_after_flush = true;  // flush_now() shuts down once the chain has drained
  core_->loop_of_thread()->request_flush(send);
  return {};
}

Result<Address> Stream::peer_address() const noexcept {
  Address a;
  *a.length_ptr() = Address::capacity();
  if (getpeername(fd(), a.sockaddr_ptr(), a.length_ptr()) != 0) return Error{errno};
  return a;
}

Result<Address> Stream::local_address() const noexcept {
  Address a;
  *a.length_ptr() = Address::capacity();
  if (getsockname(fd(), a.sockaddr_ptr(), a.length_ptr()) != 0) return Error{errno};
  return a;
}

// ---- reads -----------------------------------------------------------------------------------------------------

Task<Result<std::size_t>> Stream::read_some(std::span<std::byte> dst) {
  detail::StreamCore* core = core_;
  if (dst.empty()) co_return std::size_t{0};
  if (core->inbound.empty() && !core->eof && core->error.code == 0 && core->recv_op.state == Operation::State::idle) {
    // Nothing queued and no multishot receive running: receive straight into the caller's memory.
    SizeAwaitable op(*detail::StreamCore::loop_of_thread());
    op.kind = OpKind::recv;
    op.io = &core->io;
    op.buf = dst.data();
    op.len = static_cast<std::uint32_t>(std::min<std::size_t>(dst.size(), 1u << 30));
    Result<std::size_t> r = co_await op;
    if (r && *r == 0) core->eof = true;
    if (r) thread_counters().bytes_in.add(*r);
    co_return r;
  }
  if (core->inbound.empty() && !core->eof && core->error.code == 0) {
    Status s = co_await WaitMore(core, 0);
    if (!s && core->inbound.empty()) {
      if (s.error() == errc::eof) co_return std::size_t{0};  // drained: end of input
      co_return s.error();
    }
  }
  if (!core->inbound.empty()) co_return core->inbound.copy_out(dst);
  if (core->error.code != 0) co_return core->error;
  co_return std::size_t{0};
}

Task<Status> Stream::read_exactly(std::span<std::byte> dst) {
  std::size_t done = 0;
  while (done < dst.size()) {
    Result<std::size_t> r = co_await read_some(dst.subspan(done));
    if (!r) co_return r.error();
    if (*r == 0) co_return errc::eof;
    done += *r;
  }
  co_return Status{};
}

namespace {

enum class FrameKind { until, line, exactly };

Task<Result<Slice>> read_frame_impl(detail::StreamCore* core, FrameKind kind, std::string_view delim,
                                    std::size_t n) {
  for (;;) {
    FrameResult f = kind == FrameKind::line      ? core->inbound.take_line(n)
                    : kind == FrameKind::until   ? core->inbound.take_until(delim, n)
                                                 : core->inbound.take_exactly(n);
    if (f.status == FrameResult::Status::frame) co_return std::move(f.frame);
    if (f.status == FrameResult::Status::too_long) co_return errc::frame_too_long;
    if (core->error.code != 0) co_return core->error;
    if (core->eof) co_return errc::eof;
    Status s = co_await Stream::WaitMore(core, core->inbound.bytes());
    if (!s) co_return s.error();
  }
}

}  // namespace

Task<Result<Slice>> Stream::read_until(std::string_view delim, std::size_t max_len) {
  return read_frame_impl(core_, FrameKind::until, delim, max_len);
}
Task<Result<Slice>> Stream::read_line(std::size_t max_len) {
  return read_frame_impl(core_, FrameKind::line, {}, max_len);
}
Task<Result<Slice>> Stream::read_frame(std::size_t n) { return read_frame_impl(core_, FrameKind::exactly, {}, n); }

// ---- writes ----------------------------------------------------------------------------------------------------

void Stream::queue(Slice slice) {
  if (slice.empty() || core_->write_error.code != 0) return;
  detail::SendState& send = core_->send_state();
  send.out.append(std::move(slice));
  core_->loop_of_thread()->request_flush(send);
}

void Stream::queue_copy(std::string_view text) {
  if (text.empty() || core_->write_error.code != 0) return;
  detail::SendState& send = core_->send_state();
  send.out.append_copy(text);
  core_->loop_of_thread()->request_flush(send);
}

OutputChain& Stream::output() {
  detail::SendState& send = core_->send_state();
  core_->loop_of_thread()->request_flush(send);
  return send.out;
}

Stream::WaitSent Stream::write(Slice slice) {
  queue(std::move(slice));
  return WaitSent(core_, false);
}

Stream::WaitSent Stream::flush() noexcept {
  if (core_->send != nullptr) core_->loop_of_thread()->request_flush(*core_->send);
  return WaitSent(core_, true);
}

Task<Status> Stream::write(std::span<const std::byte> bytes) {
  detail::StreamCore* core = core_;
  if (!core->send_idle()) {
    Status flushed = co_await WaitSent(core, true);
    if (!flushed) co_return flushed;
  }
  if (core->write_error.code != 0) co_return core->write_error;
  int refusals = 0;
  while (!bytes.empty()) {
    SizeAwaitable op(*detail::StreamCore::loop_of_thread());
    op.kind = OpKind::send;
    op.io = &core->io;
    op.buf = const_cast<std::byte*>(bytes.data());
    op.len = static_cast<std::uint32_t>(std::min<std::size_t>(bytes.size(), 1u << 30));
    Result<std::size_t> r = co_await op;
    if (!r && r.error().code == EAGAIN) {
      // A full socket on io_uring, or a refusal under TCP memory exhaustion (see wait_after_refusal): wait, retry.
      int waited = co_await wait_for_room(core->io, refusals);
      if (waited < 0) co_return error_from_result(waited);
      continue;
    }
    if (!r) co_return r.error();
    refusals = 0;
    bytes = bytes.subspan(*r);
  }
  co_return Status{};
}

Task<Status> Stream::write(std::string_view text) {
  return write(std::as_bytes(std::span(text.data(), text.size())));
}

Task<Status> Stream::write_chain(OutputChain& chain) {
  // Hand the pieces over without copying: the stream's chain takes each buffer reference.
  while (!chain.empty()) queue(chain.pop_front());
  co_return co_await flush();
}

namespace {

// sendfile(2) takes no MSG_NOSIGNAL: on a socket the peer has reset it raises SIGPIPE, whose default action ends
// the process. So the call runs with SIGPIPE blocked in this thread, and a SIGPIPE that it raised is taken back
// before the mask is restored (one that was pending already is left alone). The caller sees EPIPE, as a value.
ssize_t sendfile_without_sigpipe(int socket_fd, int file_fd, off_t* offset, std::size_t count) noexcept {
  sigset_t pipe_only;
  sigset_t old_mask;
  sigset_t pending;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_only, &old_mask);
  sigpending(&pending);
  const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
  ssize_t n = ::sendfile(socket_fd, file_fd, offset, count);
  const int err = errno;
  if (n < 0 && err == EPIPE && !was_pending) {
    timespec no_wait{};
    while (sigtimedwait(&pipe_only, nullptr, &no_wait) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  errno = err;
  return n;
}

}  // namespace

Task<Status> Stream::sendfile(int file_fd, off_t offset, std::size_t count) {
  if (!core_->send_idle()) {
    Status flushed = co_await flush();
    if (!flushed) co_return flushed;
  }
  int refusals = 0;
  while (count > 0) {
    ssize_t n = sendfile_without_sigpipe(fd(), file_fd, &offset, std::min<std::size_t>(count, 1u << 30));
    if (n > 0) {
      thread_counters().bytes_out.add(static_cast<std::uint64_t>(n));
      count -= static_cast<std::size_t>(n);
      refusals = 0;
      continue;
    }
    if (n == 0) co_return errc::eof;  // the file is shorter than promised
    if (errno == EINTR) continue;
    if (errno != EAGAIN) co_return Error{errno};
    // The socket buffer is full (wait for room: a poll op on io_uring, the write wait list on epoll), or TCP memory
    // ran out and the socket has room but is refused (pause first, see wait_after_refusal).
    int r = co_await wait_for_room(core_->io, refusals);
    if (r < 0) co_return error_from_result(r);
  }
  co_return Status{};
}

Task<Status> Stream::sendfile_steps(int file_fd, off_t offset, std::uint64_t count, SendfileSteps how) {
  if (how.step == 0) how.step = count;
  // Corking fails on a Unix socket (no TCP): harmless, the bytes just go out as they come.
  auto cork = [fd = fd()](int on) { (void)::setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on); };
  if (how.cork == Toggle::on) cork(1);
  Status status;
  while (count > 0) {
    std::uint64_t step = std::min(count, how.step);
    Result<Status> sent = co_await with_timeout(sendfile(file_fd, offset, static_cast<std::size_t>(step)),
                                                how.step_timeout);
    if (!sent || !*sent) {
      status = sent ? *sent : Status(sent.error());
      break;
    }
    offset += static_cast<off_t>(step);
    count -= step;
  }
  if (how.cork == Toggle::on && is_open()) cork(0);
  co_return status;
}

Task<void> Stream::linger_close(Linger how) {
  Status flushed = co_await with_timeout(flush(), how.send_timeout);
  if (flushed) {
    (void)shutdown_write();
    std::size_t dropped = 0;
    const std::int64_t deadline = Loop::current()->now_ns() + how.time.count();
    for (;;) {
      dropped += inbound().bytes();
      inbound().clear();
      // A receive error (the peer reset) ends it too: wait_more() would return at once, forever.
      if (at_eof() || core_->error.code != 0 || dropped > how.max_bytes) break;
      const std::int64_t left = deadline - Loop::current()->now_ns();
      if (left <= 0) break;
      Status more = co_await with_timeout(wait_more(), Duration(left));
      if (!more) break;
    }
  }
  close();
}

// ---- connect ---------------------------------------------------------------------------------------------------

Task<Result<Stream>> connect(Address address, StreamOptions options) {
  Loop& loop = *Loop::current();
  int fd = ::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) co_return Error{errno};
  // The connect waits on the stream's own handle: on epoll the socket joins the epoll set once for its whole life.
  Stream stream(loop, fd, options);
  IoAwaitable op(loop);
  op.kind = OpKind::connect;
  op.io = &stream.core_->io;
  op.addr = address.sockaddr_ptr();
  op.addrlen_in = address.length();
  int r = co_await op;
  if (r < 0) co_return error_from_result(r);  // the stream closes the socket
  co_return std::move(stream);
}

Task<Result<Stream>> connect(Address address, Duration timeout, StreamOptions options) {
  auto r = co_await with_timeout(connect(std::move(address), options), timeout);
  if (!r) co_return r.error();
  co_return std::move(*r);
}

}  // namespace ringlet
