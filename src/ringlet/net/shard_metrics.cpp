// shard_metrics.cpp — the common metrics, by name (docs/operations.md, "Metrics").
#include "ringlet/net/shard_metrics.hpp"

#include "ringlet/buf/buffer.hpp"

namespace ringlet {

void describe_shard_metrics(Shard& shard, MetricSet& out) {
  const Loop& loop = shard.loop();
  const LoopStats& ls = loop.stats();
  const ThreadCounters& tc = shard.counters();
  const BackendStats& bs = shard.loop().backend().stats();
  const BufferPool& pool = BufferPool::local();
  out.gauge("ringlet_shards", "Shards (threads with an event loop each) serving.", 1);
  out.counter("ringlet_bytes_received_total", "Bytes received on connections.", static_cast<double>(tc.bytes_in.get()));
  out.counter("ringlet_bytes_sent_total", "Bytes sent on connections (send and sendfile).",
              static_cast<double>(tc.bytes_out.get()));
  out.counter("ringlet_loop_iterations_total", "Event loop iterations.", static_cast<double>(ls.iterations));
  out.counter("ringlet_loop_kernel_wait_seconds_total", "Time event loops spent blocked in the kernel waiting for I/O.",
              static_cast<double>(ls.kernel_wait_ns) / 1e9);
  out.counter("ringlet_loop_tasks_resumed_total", "Coroutine resumptions from the ready queue.",
              static_cast<double>(ls.tasks_resumed));
  out.counter("ringlet_loop_timers_fired_total", "Timers that expired.", static_cast<double>(ls.timers_fired));
  out.gauge("ringlet_loop_ready_tasks", "Tasks in the ready queues when scraped (work waiting for its turn).",
            static_cast<double>(loop.ready_count()));
  out.counter("ringlet_loop_wakeups_total", "Cross-thread wake-ups that reached a sleeping loop.",
              static_cast<double>(ls.wake_writes));
  out.counter("ringlet_backend_kernel_waits_total", "Kernel entries that could block (io_uring_enter, epoll_wait).",
              static_cast<double>(bs.kernel_waits));
  out.counter("ringlet_backend_kernel_submits_total", "Kernel entries that only submitted work.",
              static_cast<double>(bs.kernel_submits));
  out.counter("ringlet_backend_completions_total", "I/O completions delivered.", static_cast<double>(bs.completions));
  out.counter("ringlet_receive_ring_copyouts_total",
              "Connections that kept io_uring receive-ring buffers past a loop turn and had them copied out (a "
              "slow consumer holding the shared ring).",
              static_cast<double>(tc.loans_returned.get()));
  // io_uring only: epoll has no ring (its receives take pool buffers, counted below).
  if (const ReceiveRingLevel ring = shard.loop().backend().receive_ring(); ring.buffers != 0) {
    out.gauge("ringlet_receive_ring_buffers", "io_uring provided-buffer receive ring: buffers free (lent to the kernel) "
              "and in use (holding received bytes not yet consumed).", ring.free, {{"state", "free"}});
    out.gauge("ringlet_receive_ring_buffers", "", ring.buffers - ring.free, {{"state", "in_use"}});
  }
  out.counter("ringlet_receive_starved_total",
              "Receives that waited for the shared receive allowance: io_uring, the receive ring was empty (ENOBUFS, "
              "re-armed when buffers came back); epoll, the wait's receive budget was spent (served from the backlog).",
              static_cast<double>(bs.receives_starved));
  out.gauge("ringlet_buffer_pool_buffers_in_use", "Pooled buffers handed out and not yet returned.",
            static_cast<double>(pool.outstanding()));
  out.gauge("ringlet_buffer_pool_cached_bytes", "Bytes of free buffers cached for reuse.",
            static_cast<double>(pool.cached_bytes()));
  out.counter("ringlet_buffer_pool_misses_total",
              "Buffers that had to come from the allocator because the pool had none of that size free.",
              static_cast<double>(pool.misses()));
  out.counter("ringlet_shard_messages_sent_total", "Messages sent between shards.",
              static_cast<double>(tc.messages_sent.get()));
  out.counter("ringlet_shard_messages_received_total", "Messages between shards that have run.",
              static_cast<double>(tc.messages_received.get()));
}

void describe_server_metrics(const TcpServer& server, MetricSet& out) {
  const ServerStats s = server.stats();
  out.gauge("ringlet_connections_open", "Client connections open now.", static_cast<double>(s.open));
  out.counter("ringlet_connections_accepted_total", "Client connections accepted and served.",
              static_cast<double>(s.accepted));
  out.counter("ringlet_connections_refused_total",
              "Client connections accepted and closed at once because the connection limit was reached.",
              static_cast<double>(s.refused));
  out.counter("ringlet_connections_forced_total",
              "Client connections cut off at the end of a graceful stop's shutdown timeout.",
              static_cast<double>(s.forced));
}

}  // namespace ringlet
