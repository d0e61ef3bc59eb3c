// shard_messages_bench — cross-shard message throughput (one way) and round-trip latency between two shards,
// each pinned to its own CPU.
//   one_way:    shard 0 sends N messages (post_to: waits for room when the ring is full) that each bump a counter on
//               shard 1; throughput = N / (time from the first send until shard 1 has run the last one).
//   round_trip: shard 0 awaits submit_to(1, fn) N times in a row; latency per round trip from a histogram.
// Prints the median and spread over --reps repetitions. Usage: shard_messages_bench [--messages N] [--reps R]
//   [--backend uring|epoll] [--ring SLOTS]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "ringlet/base/log.hpp"
#include "ringlet/runtime/shard/submit_to.hpp"

using namespace ringlet;
using SteadyClock = std::chrono::steady_clock;

namespace {

struct OneWay {
  std::uint64_t count = 0;  // shard 1 only
  SteadyClock::time_point start, end;
};

Task<void> one_way_main(Shard& shard, OneWay* st, std::uint64_t n) {
  if (shard.id() != 0) co_return;
  st->start = SteadyClock::now();
  for (std::uint64_t i = 0; i < n; ++i) {
    co_await post_to(1, [st] { ++st->count; });
  }
  co_await submit_to(1, [st] { st->end = SteadyClock::now(); });  // ordered after every message above
}

struct RoundTrip {
  std::vector<double> ns;
};

Task<void> round_trip_main(Shard& shard, RoundTrip* st, std::uint64_t n) {
  if (shard.id() != 0) co_return;
  st->ns.reserve(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    auto t0 = SteadyClock::now();
    co_await submit_to(1, [] { return 1; });
    st->ns.push_back(std::chrono::duration<double, std::nano>(SteadyClock::now() - t0).count());
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t messages = 5'000'000;
  int reps = 5;
  std::size_t ring = 1024;
  BackendKind backend = BackendKind::auto_select;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--messages") messages = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--reps") reps = std::atoi(argv[i + 1]);
    else if (a == "--ring") ring = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--backend") parse_backend_kind(argv[i + 1], backend);
    else {
      std::fprintf(stderr, "usage: %s [--messages N] [--reps R] [--ring SLOTS] [--backend uring|epoll]\n", argv[0]);
      return 2;
    }
  }
  set_log_level(LogLevel::warn);
  ShardSetOptions options;
  options.shards = 2;
  options.ring_capacity = ring;
  options.loop.backend.kind = backend;

  std::vector<double> rates, p50s, p99s;
  for (int r = 0; r < reps; ++r) {
    OneWay ow;
    {
      ShardSet set(options);
      if (!set.run([&](Shard& s) { return one_way_main(s, &ow, messages); })) return 1;
    }
    if (ow.count != messages) {
      std::fprintf(stderr, "lost messages: %llu of %llu\n", (unsigned long long)ow.count,
                   (unsigned long long)messages);
      return 1;
    }
    rates.push_back(static_cast<double>(messages) / std::chrono::duration<double>(ow.end - ow.start).count());
    RoundTrip rt;
    {
      ShardSet set(options);
      if (!set.run([&](Shard& s) { return round_trip_main(s, &rt, messages / 50); })) return 1;
    }
    std::sort(rt.ns.begin(), rt.ns.end());
    p50s.push_back(rt.ns[rt.ns.size() / 2]);
    p99s.push_back(rt.ns[rt.ns.size() * 99 / 100]);
    std::printf("rep %d: one way %.2f M msg/s, round trip p50 %.1f us p99 %.1f us\n", r + 1, rates.back() / 1e6,
                p50s.back() / 1e3, p99s.back() / 1e3);
  }
  auto [rmin, rmax] = std::minmax_element(rates.begin(), rates.end());
  std::printf("one_way_2_shards: median %.2f M msg/s (min %.2f, max %.2f) over %d reps of %llu messages\n",
              median(rates) / 1e6, *rmin / 1e6, *rmax / 1e6, reps, (unsigned long long)messages);
  std::printf("round_trip_2_shards: p50 median %.1f us, p99 median %.1f us\n", median(p50s) / 1e3,
              median(p99s) / 1e3);
  return 0;
}
