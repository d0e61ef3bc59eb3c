// relay.cpp — the two direction tasks of a relay, the idle watchdog and the closing (net/relay.hpp).
#include "ringlet/net/relay.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "ringlet/buf/buffer.hpp"
#include "ringlet/runtime/counters.hpp"
#include "ringlet/runtime/io_awaitable.hpp"
#include "ringlet/runtime/loop.hpp"
#include "ringlet/runtime/splice.hpp"

namespace ringlet {

bool parse_splice_mode(std::string_view text, SpliceMode& out) noexcept {
  if (text == "auto") {
    out = SpliceMode::automatic;
  } else if (text == "always") {
    out = SpliceMode::always;
  } else if (text == "never") {
    out = SpliceMode::never;
  } else {
    return false;
  }
  return true;
}

std::string_view splice_mode_name(SpliceMode mode) noexcept {
  switch (mode) {
    case SpliceMode::never:
      return "never";
    case SpliceMode::automatic:
      return "auto";
    case SpliceMode::always:
      return "always";
  }
  return "?";
}

std::string_view relay_end_name(RelayEnd end) noexcept {
  switch (end) {
    case RelayEnd::closed:
      return "closed";
    case RelayEnd::a_failed:
      return "client side failed";
    case RelayEnd::b_failed:
      return "server side failed";
    case RelayEnd::idle_timeout:
      return "idle timeout";
    case RelayEnd::cancelled:
      return "cancelled";
  }
  return "?";
}

namespace {

// A splice_in asks for at most this much: a default pipe's 16 page slots.
constexpr std::size_t kPipeBytes = 64 * 1024;
// A copied read after a short one (the peer had sent everything, so this read may wait for a long time, holding
// its buffer) uses the smallest pool class: an idle relay holds 2 x 4 KiB, not 2 x copy_buffer. A read that fills
// it is followed by full-size reads.
constexpr std::size_t kWaitingReadBytes = 4 * 1024;
// What all the relays of one thread move in one loop turn before a direction that has just moved bytes yields
// (docs/design/buffers.md, "Fairness within a turn"). On epoll a read or write that can go ahead completes inline,
// so without it a direction drains its socket in one go: during a flood of a thousand connections a turn moved
// 10-28 MB and lasted 20-85 ms, and a new client, which needs several turns (accept, connect, its first read), waited
// for all of them. Each direction still moves one read per resumption, so a yielded one always makes progress.
constexpr std::size_t kTurnBytes = 256 * 1024;

struct TurnShare {
  std::uint64_t turn = ~std::uint64_t{0};
  std::size_t moved = 0;
};
thread_local TurnShare turn_share;

// Counts `n` bytes moved in this turn; true when the turn's share is spent and the direction should yield.
bool spend_turn_share(Loop& loop, std::size_t n) noexcept {
  TurnShare& share = turn_share;
  if (share.turn != loop.stats().iterations) share = {loop.stats().iterations, 0};
  share.moved += n;
  return share.moved >= kTurnBytes;
}

struct Side {
  IoHandle io;
  bool reset_on_close = false;
};

// Lives in relay()'s frame; the direction tasks and the idle timer point at it, and relay() returns only after
// both tasks have ended and the timer is stopped.
struct Relay : TimerNode {
  Loop* loop;
  Side side[2];
  JoinHandle<void> pumps[2];
  RelayOptions options;
  std::string preamble;  // for side 1, before anything from side 0
  RelayBytes bytes;
  RelayBytes* live;
  RelayEnd end = RelayEnd::closed;
  int error = 0;
  std::int64_t last_activity_ns = 0;
};

void count(Relay& r, int from, std::size_t n, bool spliced) noexcept {
  for (RelayBytes* b : {&r.bytes, r.live}) {
    if (b == nullptr) continue;
    (from == 0 ? b->a_to_b : b->b_to_a) += n;
    if (spliced) b->spliced += n;
  }
  thread_counters().bytes_in.add(n);
  thread_counters().bytes_out.add(n);
  r.last_activity_ns = r.loop->now_ns();
}

// A direction failed on `failed_side`: the peer on the other side is reset, and the other direction stops.
void fail(Relay& r, int failed_side, int result) noexcept {
  if (result == -ECANCELED) return;  // torn down from outside: the tearer set r.end
  if (r.end == RelayEnd::closed) {
    r.end = failed_side == 0 ? RelayEnd::a_failed : RelayEnd::b_failed;
    r.error = -result;
  }
  r.side[1 - failed_side].reset_on_close = true;
  for (JoinHandle<void>& p : r.pumps) p.cancel();
}

Task<int> send_all(IoHandle& io, const std::byte* data, std::size_t len) {
  Loop& loop = *Loop::current();
  int refusals = 0;
  while (len > 0) {
    IoAwaitable op(loop);
    op.kind = OpKind::send;
    op.io = &io;
    op.buf = const_cast<std::byte*>(data);
    op.len = static_cast<std::uint32_t>(std::min<std::size_t>(len, 1u << 30));
    int r = co_await op;
    if (r == -EAGAIN) {
      // io_uring may hand a non-blocking socket's EAGAIN back instead of waiting for room itself (seen on 6.18
      // with `ringlet echo`'s sends), and refuses sends while poll says there is room when TCP memory runs out:
      // wait_for_room tells the two apart.
      int waited = co_await wait_for_room(io, refusals);
      if (waited < 0) co_return waited;
      continue;
    }
    if (r < 0) co_return r;
    refusals = 0;
    data += r;
    len -= static_cast<std::size_t>(r);
  }
  co_return 0;
}

// One direction: from side `from` to the other, until end of input, a failure or cancellation.
Task<void> pump(Relay* r, int from) {
  Side& src = r->side[from];
  Side& dst = r->side[1 - from];
  Loop& loop = *r->loop;
  if (from == 0 && !r->preamble.empty()) {
    int sent = co_await send_all(dst.io, reinterpret_cast<const std::byte*>(r->preamble.data()), r->preamble.size());
    if (sent < 0) co_return fail(*r, 1, sent);
  }
  const SpliceMode mode = r->options.splice;
  bool may_splice = mode != SpliceMode::never;
  bool splicing = mode == SpliceMode::always;
  bool last_filled = false;
  for (;;) {
    int n = 0;
    if (splicing) {
      Result<Pipe> pipe = PipePool::local().acquire();
      if (!pipe) {
        splicing = false;  // out of descriptors: copy this read instead
        continue;
      }
      n = co_await splice_in_some(src.io, *pipe, kPipeBytes);
      if (n == -EINVAL) {
        // These two sockets cannot splice (a socket family without splice support): copy from now on.
        PipePool::local().release(*pipe);
        may_splice = splicing = false;
        continue;
      }
      if (n <= 0) {
        PipePool::local().release(*pipe);
      } else {
        int w = co_await splice_out_all(dst.io, *pipe, static_cast<std::size_t>(n));
        if (w < 0) {
          PipePool::local().discard(*pipe);
          co_return fail(*r, 1 - from, w);
        }
        PipePool::local().release(*pipe);
        count(*r, from, static_cast<std::size_t>(n), true);
        if (mode == SpliceMode::automatic && static_cast<std::size_t>(n) < r->options.copy_buffer) splicing = false;
        if (spend_turn_share(loop, static_cast<std::size_t>(n))) (void)co_await yield();
        continue;
      }
    } else {
      const std::size_t want = last_filled ? r->options.copy_buffer
                                           : std::min(r->options.copy_buffer, kWaitingReadBytes);
      Buffer* buffer = BufferPool::local().acquire(want);
      IoAwaitable op(loop);
      op.kind = OpKind::recv;
      op.io = &src.io;
      op.buf = buffer->data;
      op.len = static_cast<std::uint32_t>(want);
      n = co_await op;
      if (n == -EAGAIN) {
        // As in send_all: io_uring may report EAGAIN for a non-blocking socket instead of waiting for input.
        buffer_unref(buffer);
        int ready = co_await wait_socket(loop, src.io, POLLIN);
        if (ready >= 0) continue;
        co_return fail(*r, from, ready);
      }
      if (n > 0) {
        int w = co_await send_all(dst.io, buffer->data, static_cast<std::size_t>(n));
        buffer_unref(buffer);
        if (w < 0) co_return fail(*r, 1 - from, w);
        count(*r, from, static_cast<std::size_t>(n), false);
        const bool filled = static_cast<std::size_t>(n) == want;
        if (may_splice && filled && want == r->options.copy_buffer) splicing = true;
        last_filled = filled;
        if (spend_turn_share(loop, static_cast<std::size_t>(n))) (void)co_await yield();
        continue;
      }
      buffer_unref(buffer);
    }
    if (n == 0) {
      // End of input: everything read has been written, so the other peer may now read its end of input too.
      (void)::shutdown(dst.io.fd, SHUT_WR);
      co_return;
    }
    co_return fail(*r, from, n);
  }
}

void on_idle_timer(TimerNode* node) {
  auto* r = static_cast<Relay*>(node);
  const std::int64_t idle_ns = r->options.idle_timeout.count();
  const std::int64_t quiet_until = r->last_activity_ns + idle_ns;
  if (r->loop->now_ns() < quiet_until) {
    r->loop->timers().start(*r, quiet_until);  // something moved since the timer was armed
    return;
  }
  if (r->end == RelayEnd::closed) r->end = RelayEnd::idle_timeout;
  for (JoinHandle<void>& p : r->pumps) p.cancel();
}

void close_side(Loop& loop, Side& side) noexcept {
  if (side.reset_on_close) {
    // Closing with a zero linger time sends a reset instead of a FIN and drops unsent bytes.
    linger hard{1, 0};
    (void)::setsockopt(side.io.fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  }
  loop.backend().close(side.io);  // the relay holds the only reference to the socket (the proxy does not fork)
  thread_counters().streams_closed.add();
}

}  // namespace

Task<RelayResult> relay(Stream a, Stream b, RelayOptions options, std::string preamble, RelayBytes* live) {
  Loop& loop = *Loop::current();
  Relay r;
  r.loop = &loop;
  (void)a.release_to(r.side[0].io);
  (void)b.release_to(r.side[1].io);
  r.side[0].io.stream = r.side[1].io.stream = true;  // TCP or Unix stream: epoll may skip a recv it knows is empty
  r.options = options;
  if (r.options.copy_buffer == 0) r.options.copy_buffer = RelayOptions{}.copy_buffer;
  r.preamble = std::move(preamble);
  r.live = live;
  r.last_activity_ns = loop.now_ns();
  // The two sockets count as open streams, so the shards' load figures (handoff mode) see relayed connections.
  thread_counters().streams_opened.add(2);
  r.pumps[0] = loop.spawn_joinable(pump(&r, 0));
  r.pumps[1] = loop.spawn_joinable(pump(&r, 1));
  if (options.idle_timeout > Duration::zero()) {
    r.on_fire = &on_idle_timer;
    loop.timers().start(r, r.last_activity_ns + options.idle_timeout.count());
  }
  co_await r.pumps[0];
  co_await r.pumps[1];  // cancelled as well if we were cancelled while waiting for the first
  loop.timers().stop(r);
  CancelState& self = co_await this_task_cancel_state();
  if (self.requested() && r.end == RelayEnd::closed) r.end = RelayEnd::cancelled;
  close_side(loop, r.side[0]);
  close_side(loop, r.side[1]);
  co_return RelayResult{r.bytes, r.end, r.error};
}

}  // namespace ringlet
