// timers_bench.cpp — ringlet TimerWheel vs libuv's timer heap (uv_timer_*), side by side in one run.
//
// Workloads (N = 1M and 10M timers; deadlines uniformly random over (0, 10 s], the same sequence for both):
//   timers_arm_cancel_<N>  start N timers, then stop all N in start order.
//   timers_arm_fire_<N>    start N timers, then let time run until all N have fired (the callback counts).
// Reported per timer: the wall time of the whole workload (arm + cancel, or arm + fire) divided by N.
//
// How time is driven, exactly:
//   ringlet  a ManualClock starts at 0; the wheel (1 ms tick) is advanced 1 ms at a time and expire() is called
//            after every step: 10,000 calls, as a loop waking every millisecond would make.
//   libuv    libuv reads CLOCK_MONOTONIC itself at every uv_run() and offers no way to advance a loop's clock.
//            So before arming we move the loop's cached time (loop->time, the value uv_now() returns and
//            uv_timer_start() adds the timeout to) 10.001 s into the past. Every timer is then already due at
//            the next uv_run(UV_RUN_NOWAIT), which pops the whole heap in deadline order in one uv__run_timers()
//            pass: the heap work of 10 s of firing, without the sleeping and with no per-iteration loop costs.
//            That is the cheapest way libuv can fire them, so the ratio is, if anything, generous to libuv.
//   Timeouts are whole milliseconds for libuv (its resolution) and the same deadlines rounded up to the 1 ms tick
//   for ringlet, so both fire the same timers at the same millisecond boundaries.
// Handles and nodes are allocated and initialised (uv_timer_init / on_fire) once, outside the timed region.
// Repetitions alternate ringlet and libuv so that noise from a shared machine hits both alike.
//
//   usage: timers_bench [--reps N] [--sizes 1000000,10000000]
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "ringlet/runtime/clock.hpp"
#include "ringlet/runtime/timer_wheel.hpp"

namespace {

constexpr std::int64_t kMs = 1'000'000;
constexpr std::int64_t kSpanMs = 10'000;  // deadlines spread over (0, 10 s]

struct Workload {
  std::size_t count = 0;
  std::vector<std::int64_t> deadline_ns;  // (0, 10 s]
  std::vector<std::uint64_t> timeout_ms;  // deadline rounded up to whole milliseconds, for libuv
};

Workload make_workload(std::size_t count) {
  Workload w;
  w.count = count;
  w.deadline_ns.resize(count);
  w.timeout_ms.resize(count);
  std::mt19937_64 rng(count);
  for (std::size_t i = 0; i < count; ++i) {
    w.deadline_ns[i] = 1 + static_cast<std::int64_t>(rng() % (kSpanMs * kMs));
    w.timeout_ms[i] = static_cast<std::uint64_t>((w.deadline_ns[i] + kMs - 1) / kMs);
  }
  return w;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "timers_bench: %s\n", what);
    std::exit(1);
  }
}

// ---- ringlet ------------------------------------------------------------------------------------------------

struct CountingNode : ringlet::TimerNode {
  std::size_t* fired = nullptr;
  static void fire(ringlet::TimerNode* node) { ++*static_cast<CountingNode*>(node)->fired; }
};

class RingletSide {
 public:
  explicit RingletSide(std::size_t count) : nodes_(std::make_unique<CountingNode[]>(count)), count_(count) {
    for (std::size_t i = 0; i < count; ++i) {
      nodes_[i].on_fire = &CountingNode::fire;
      nodes_[i].fired = &fired_;
    }
  }

  double arm_cancel(const Workload& w) {
    ringlet::ManualClock clock(0);
    ringlet::TimerWheel wheel(clock.now_ns());
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < count_; ++i) wheel.start(nodes_[i], w.deadline_ns[i]);
    for (std::size_t i = 0; i < count_; ++i) wheel.stop(nodes_[i]);
    const double elapsed = seconds_since(start);
    check(wheel.size() == 0, "ringlet arm_cancel left timers armed");
    return elapsed;
  }

  double arm_fire(const Workload& w) {
    ringlet::ManualClock clock(0);
    ringlet::TimerWheel wheel(clock.now_ns());
    fired_ = 0;
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < count_; ++i) wheel.start(nodes_[i], w.deadline_ns[i]);
    for (std::int64_t step = 0; step < kSpanMs; ++step) {
      clock.advance(kMs);
      wheel.expire(clock.now_ns());
    }
    const double elapsed = seconds_since(start);
    check(fired_ == count_ && wheel.size() == 0, "ringlet arm_fire did not fire every timer once");
    return elapsed;
  }

 private:
  std::unique_ptr<CountingNode[]> nodes_;
  std::size_t count_;
  std::size_t fired_ = 0;
};

// ---- libuv --------------------------------------------------------------------------------------------------

class UvSide {
 public:
  explicit UvSide(std::size_t count) : handles_(std::make_unique<uv_timer_t[]>(count)), count_(count) {
    check(uv_loop_init(&loop_) == 0, "uv_loop_init failed");
    for (std::size_t i = 0; i < count; ++i) {
      uv_timer_init(&loop_, &handles_[i]);
      handles_[i].data = &fired_;
    }
  }

  ~UvSide() {
    for (std::size_t i = 0; i < count_; ++i) uv_close(reinterpret_cast<uv_handle_t*>(&handles_[i]), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
  }

  double arm_cancel(const Workload& w) {
    uv_update_time(&loop_);
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < count_; ++i) uv_timer_start(&handles_[i], &UvSide::fire, w.timeout_ms[i], 0);
    for (std::size_t i = 0; i < count_; ++i) uv_timer_stop(&handles_[i]);
    const double elapsed = seconds_since(start);
    check(!uv_loop_alive(&loop_), "libuv arm_cancel left timers active");
    return elapsed;
  }

  double arm_fire(const Workload& w) {
    uv_update_time(&loop_);
    loop_.time -= static_cast<std::uint64_t>(kSpanMs + 1);  // see the top of the file
    fired_ = 0;
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < count_; ++i) uv_timer_start(&handles_[i], &UvSide::fire, w.timeout_ms[i], 0);
    uv_run(&loop_, UV_RUN_NOWAIT);
    const double elapsed = seconds_since(start);
    check(fired_ == count_ && !uv_loop_alive(&loop_), "libuv arm_fire did not fire every timer once");
    return elapsed;
  }

 private:
  static void fire(uv_timer_t* handle) { ++*static_cast<std::size_t*>(handle->data); }

  uv_loop_t loop_{};
  std::unique_ptr<uv_timer_t[]> handles_;
  std::size_t count_;
  std::size_t fired_ = 0;
};

// ---- report -------------------------------------------------------------------------------------------------

struct Stats {
  double median = 0;
  double min = 0;
  double max = 0;
};

Stats ns_per_timer(std::vector<double> seconds, std::size_t count) {
  std::sort(seconds.begin(), seconds.end());
  const auto per = [count](double s) { return s * 1e9 / static_cast<double>(count); };
  const std::size_t n = seconds.size();
  const double median = n % 2 ? seconds[n / 2] : (seconds[n / 2 - 1] + seconds[n / 2]) / 2;
  return {per(median), per(seconds.front()), per(seconds.back())};
}

void print_row(const std::string& workload, const char* impl, const Stats& s, double ratio) {
  std::printf("%-26s %-8s %10.2f %10.2f %10.2f %8.1f%%", workload.c_str(), impl, s.median, s.min, s.max,
              100.0 * (s.max - s.min) / s.median);
  if (ratio > 0) std::printf(" %9.1fx", ratio);
  std::printf("\n");
  std::fflush(stdout);
}

std::string size_name(std::size_t count) {
  if (count % 1'000'000 == 0) return std::to_string(count / 1'000'000) + "m";
  if (count % 1'000 == 0) return std::to_string(count / 1'000) + "k";
  return std::to_string(count);
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 5;
  std::vector<std::size_t> sizes = {1'000'000, 10'000'000};
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else if (std::strcmp(argv[i], "--sizes") == 0 && i + 1 < argc) {
      sizes.clear();
      for (char* p = argv[++i]; *p != '\0';) {
        sizes.push_back(std::strtoull(p, &p, 10));
        if (*p == ',') ++p;
      }
    } else {
      std::fprintf(stderr, "usage: %s [--reps N] [--sizes 1000000,10000000]\n", argv[0]);
      return 2;
    }
  }

  std::printf("timers_bench: %d repetitions each, ringlet and libuv %s alternating; ns per timer\n", reps,
              uv_version_string());
  std::printf("%-26s %-8s %10s %10s %10s %9s %10s\n", "workload", "impl", "median", "min", "max", "spread",
              "libuv/rl");
  for (const std::size_t count : sizes) {
    const Workload w = make_workload(count);
    RingletSide ringlet(count);
    UvSide uv(count);
    struct Kind {
      const char* name;
      double (RingletSide::*ringlet)(const Workload&);
      double (UvSide::*uv)(const Workload&);
    };
    for (const Kind kind : {Kind{"timers_arm_cancel_", &RingletSide::arm_cancel, &UvSide::arm_cancel},
                            Kind{"timers_arm_fire_", &RingletSide::arm_fire, &UvSide::arm_fire}}) {
      std::vector<double> ringlet_s;
      std::vector<double> uv_s;
      for (int r = 0; r < reps; ++r) {
        ringlet_s.push_back((ringlet.*kind.ringlet)(w));
        uv_s.push_back((uv.*kind.uv)(w));
      }
      const Stats rs = ns_per_timer(ringlet_s, count);
      const Stats us = ns_per_timer(uv_s, count);
      const std::string name = kind.name + size_name(count);
      print_row(name, "ringlet", rs, us.median / rs.median);
      print_row(name, "libuv", us, 0);
    }
  }
  return 0;
}
