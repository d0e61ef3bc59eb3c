// counters.hpp — per-thread activity counters (bytes, streams, cross-shard messages). Each counter has one writer,
// the thread it belongs to; any thread may read it (a shard's statistics, the accepting shard choosing the least
// loaded one). Single-writer relaxed atomics cost what a plain increment costs on x86 and keep readers race-free.
#pragma once

#include <atomic>
#include <cstdint>

namespace ringlet {

class RelaxedCounter {
 public:
  void add(std::uint64_t n = 1) noexcept { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

struct ThreadCounters {
  RelaxedCounter bytes_in;           // received on streams
  RelaxedCounter bytes_out;          // sent on streams (send and sendfile)
  RelaxedCounter streams_opened;     // stream cores created (accepted, connected or adopted)
  RelaxedCounter streams_closed;
  RelaxedCounter loans_returned;     // stream queues that copied shared receive-ring buffers out at a turn's end
  RelaxedCounter connections_accepted;  // by a TcpServer on this thread (own listener or handed over)
  RelaxedCounter messages_sent;      // cross-shard messages pushed
  RelaxedCounter messages_received;  // cross-shard messages run

  std::uint64_t streams_open() const noexcept { return streams_opened.get() - streams_closed.get(); }
};

// This thread's counters (they live as long as the thread).
inline ThreadCounters& thread_counters() noexcept {
  thread_local ThreadCounters counters;
  return counters;
}

}  // namespace ringlet
