// driver.cpp — workers, connections, the open-loop ticker, and the threads that run the workers.
#include "ringlet/loadgen/driver.hpp"

#include "ringlet/runtime/shard/shard_set.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <thread>

#include "ringlet/loadgen/schedule.hpp"
#include "ringlet/net/stream.hpp"
#include "ringlet/runtime/loop.hpp"

namespace ringlet::loadgen {

std::uint64_t WorkerResult::error_total() const noexcept {
  std::uint64_t total = 0;
  for (std::uint64_t e : errors) total += e;
  return total;
}

void WorkerResult::merge(const WorkerResult& other) {
  latency.merge(other.latency);
  ops += other.ops;
  for (std::size_t i = 0; i < kErrorKindCount; ++i) errors[i] += other.errors[i];
  auto add = [](std::vector<std::uint64_t>& into, const std::vector<std::uint64_t>& from) {
    if (into.size() < from.size()) into.resize(from.size());
    for (std::size_t i = 0; i < from.size(); ++i) into[i] += from[i];
  };
  add(ops_per_second, other.ops_per_second);
  add(errors_per_second, other.errors_per_second);
  late_sends += other.late_sends;
  unsent += other.unsent;
  if (first_wrong_reply.empty()) first_wrong_reply = other.first_wrong_reply;
  if (fatal.empty()) fatal = other.fatal;
}

namespace {

constexpr std::int64_t kNsPerSecond = 1'000'000'000;
constexpr std::int64_t kLateNs = 1'000'000;  // an open-loop send later than this after its due time is "late"
// The open-loop ticker sleeps on the timer wheel (1 ms ticks, fires up to a tick late) while the next due time is
// further than this, and yields loop turns when it is closer, so sends leave on time instead of a tick late.
constexpr std::int64_t kSpinWindowNs = 2'000'000;

// One connection slot of a worker: the connection currently open in it (if any) and its requests in flight.
struct ConnSlot {
  Stream* stream = nullptr;  // set while connected and serving
  std::unique_ptr<WorkloadConnection> proto;
  std::vector<std::int64_t> times;  // ring of start times (closed: sent; open: due) of requests in flight
  std::size_t head = 0;
  std::size_t inflight = 0;
  std::uint64_t scheduled = 0;  // open loop: this connection's requests due so far
  std::uint64_t sent = 0;       // open loop: of those, how many were written
};

struct Outcome {
  bool failed = false;
  bool reconnect = false;  // not failed: the server closed the connection as it said it would
  ErrorKind kind = ErrorKind::other;
  const char* what = nullptr;
  static Outcome stop() { return {}; }
  static Outcome closed_by_server() { return {false, true, ErrorKind::other, nullptr}; }
  static Outcome fail(ErrorKind kind, const char* what) { return {true, false, kind, what}; }
};

class Worker {
 public:
  Worker(const BenchConfig& config, const Workload& workload, Address target, unsigned index, unsigned count,
         LiveCounters* live)
      : config_(config), workload_(workload), target_(target), index_(index), count_(count), live_(live),
        loop_(*Loop::current()) {}

  Task<WorkerResult> run();

  // Everything below is used by the connection tasks (free functions taking a Worker*).
  const BenchConfig& config() const { return config_; }
  const Address& target() const { return target_; }
  bool stopping() const { return stopping_; }
  WorkloadShard& shard() { return *shard_; }
  unsigned index() const { return index_; }
  ConnSlot& slot(unsigned i) { return conns_[i]; }

  void issue(ConnSlot& c, unsigned i);
  Outcome take_replies(ConnSlot& c, unsigned i, bool eof);
  void count_error(ErrorKind kind, const char* what);
  void connection_opened(ConnSlot& c) {
    c.head = 0;
    c.inflight = 0;
    publish_open(+1);
  }
  void connection_closed(ConnSlot& c) {
    c.stream = nullptr;
    c.proto.reset();
    c.inflight = 0;
    publish_open(-1);
  }

 private:
  bool measuring(std::int64_t now) const { return now >= measure_ns_ && now < end_ns_; }
  std::size_t second_of(std::int64_t now) const {
    auto s = static_cast<std::size_t>(std::max<std::int64_t>(0, now - start_ns_) / kNsPerSecond);
    return std::min(s, result_.ops_per_second.size() - 1);
  }
  void publish_open(int delta) {
    open_ += delta;
    if (live_ != nullptr) live_->open_connections.store(static_cast<std::uint64_t>(open_), std::memory_order_relaxed);
  }
  Task<void> tick_open_loop();

  const BenchConfig& config_;
  const Workload& workload_;
  Address target_;
  unsigned index_;
  unsigned count_;
  LiveCounters* live_;
  Loop& loop_;
  std::unique_ptr<WorkloadShard> shard_;
  std::vector<ConnSlot> conns_;
  OpenLoopSchedule schedule_;
  std::int64_t start_ns_ = 0;
  std::int64_t measure_ns_ = 0;
  std::int64_t end_ns_ = 0;
  bool stopping_ = false;
  int open_ = 0;
  std::uint64_t ops_seen_ = 0;
  std::uint64_t errors_seen_ = 0;
  WorkerResult result_;
};

void Worker::issue(ConnSlot& c, unsigned i) {
  if (c.stream == nullptr || stopping_) return;
  const std::size_t depth = c.times.size();
  const bool open = config_.open_loop();
  const std::int64_t now = loop_.now_ns();
  RequestSink sink(*c.stream);
  while (c.inflight < depth) {
    std::int64_t start = now;
    if (open) {
      if (c.sent >= c.scheduled) break;
      start = schedule_.due_time_on(i, c.sent);
    }
    if (!c.proto->write_request(sink)) break;
    if (open) {
      ++c.sent;
      if (now - start > kLateNs && measuring(now)) ++result_.late_sends;
    }
    std::size_t pos = c.head + c.inflight;
    c.times[pos >= depth ? pos - depth : pos] = start;
    ++c.inflight;
  }
}

Outcome Worker::take_replies(ConnSlot& c, unsigned i, bool eof) {
  SliceQueue& in = c.stream->inbound();
  const std::size_t depth = c.times.size();
  while (c.inflight > 0) {
    Reply r = c.proto->parse_reply(in, eof);
    if (r.status == Reply::Status::need_more) break;
    if (r.status == Reply::Status::wrong) return Outcome::fail(ErrorKind::wrong_reply, r.what);
    const std::int64_t now = loop_.now_ns();
    const std::int64_t started = c.times[c.head];
    c.head = c.head + 1 == depth ? 0 : c.head + 1;
    --c.inflight;
    if (measuring(now)) {
      result_.latency.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, now - started)));
      ++result_.ops;
    }
    ++result_.ops_per_second[second_of(now)];
    if (live_ != nullptr) live_->ops.store(++ops_seen_, std::memory_order_relaxed);
    if (r.close_after) return Outcome::closed_by_server();
    issue(c, i);
  }
  return Outcome::stop();
}

void Worker::count_error(ErrorKind kind, const char* what) {
  if (stopping_) return;  // the end of the run cancels connections: not the server's fault
  const std::int64_t now = loop_.now_ns();
  if (measuring(now)) {
    ++result_.errors[static_cast<int>(kind)];
    if (kind == ErrorKind::wrong_reply && result_.first_wrong_reply.empty() && what != nullptr) {
      result_.first_wrong_reply = what;
    }
  }
  ++result_.errors_per_second[second_of(now)];
  if (live_ != nullptr) live_->errors.store(++errors_seen_, std::memory_order_relaxed);
}

// Serves one open connection until it fails or the run stops: issue requests, parse replies as bytes arrive.
Task<Outcome> serve_connection(Worker* w, unsigned i) {
  ConnSlot& c = w->slot(i);
  Stream& stream = *c.stream;
  w->issue(c, i);
  bool eof = false;
  for (;;) {
    Outcome o = w->take_replies(c, i, eof);
    if (o.failed || o.reconnect) co_return o;
    if (eof) {
      if (w->stopping()) co_return Outcome::stop();
      co_return Outcome::fail(ErrorKind::reset, "connection closed by the server");
    }
    if (c.inflight == 0 && !stream.inbound().empty()) {
      co_return Outcome::fail(ErrorKind::wrong_reply, "bytes received with no request in flight");
    }
    const std::size_t before = stream.inbound().bytes();
    Status waited = co_await stream.wait_more();
    if (!waited) {
      if (waited.error() == errc::timed_out) {
        if (c.inflight == 0) continue;  // an idle open-loop connection: nothing was owed
        co_return Outcome::fail(ErrorKind::timeout, "no reply progress within --timeout");
      }
      co_return Outcome::stop();  // cancelled, or asked to drain: the run is ending
    }
    if (stream.inbound().bytes() == before) eof = true;  // closed or reset by the peer
  }
}

// One connection slot for the whole run: connect, serve, and reconnect after any failure.
Task<void> connection_task(Worker* w, unsigned i) {
  ConnSlot& c = w->slot(i);
  StreamOptions options;
  options.timeout = w->config().timeout;
  for (std::uint64_t generation = 0; !w->stopping(); ++generation) {
    Result<Stream> connected = co_await connect(w->target(), w->config().connect_timeout, options);
    if (!connected) {
      if (w->stopping() || connected.error() == errc::cancelled) co_return;
      w->count_error(ErrorKind::connect, nullptr);
      Status slept = co_await sleep_for(w->config().reconnect_delay);
      if (!slept) co_return;
      continue;
    }
    Stream stream = std::move(*connected);
    (void)stream.set_nodelay(Toggle::on);
    ConnectionContext context{w->index(), i, generation, w->config().common.depth};
    c.proto = w->shard().new_connection(context);
    Status started = co_await c.proto->start(stream);
    if (!started) {
      if (w->stopping() || started.error() == errc::cancelled) co_return;
      w->count_error(ErrorKind::other, nullptr);
      c.proto.reset();
      continue;
    }
    c.stream = &stream;
    w->connection_opened(c);
    Outcome o = co_await serve_connection(w, i);
    w->connection_closed(c);
    if (o.reconnect) continue;
    if (!o.failed) co_return;
    w->count_error(o.kind, o.what);
  }
}

Task<void> Worker::tick_open_loop() {
  std::uint64_t k = 0;
  for (;;) {
    const std::int64_t now = loop_.now_ns();
    if (now >= end_ns_) co_return;
    for (std::int64_t due = schedule_.due_time(k); due <= now; due = schedule_.due_time(k)) {
      unsigned i = schedule_.connection_of(k);
      ++conns_[i].scheduled;
      issue(conns_[i], i);
      ++k;
    }
    const std::int64_t next = std::min(schedule_.due_time(k), end_ns_);
    Status waited;
    if (next - now > kSpinWindowNs) {
      waited = co_await sleep_until(next - kSpinWindowNs / 2);
    } else {
      waited = co_await yield();
    }
    if (!waited) co_return;
  }
}

Task<WorkerResult> Worker::run() {
  const unsigned total = config_.common.connections;
  const unsigned mine = total / count_ + (index_ < total % count_ ? 1 : 0);
  auto seconds = static_cast<std::size_t>(std::ceil(config_.warmup_s + config_.duration_s)) + 2;
  result_.ops_per_second.assign(seconds, 0);
  result_.errors_per_second.assign(seconds, 0);
  if (mine == 0) co_return std::move(result_);

  ShardContext shard_context{index_, count_, mine, target_};
  shard_ = workload_.create_shard(shard_context);
  Status ready = co_await shard_->setup(shard_context);
  if (!ready) {
    result_.fatal = "workload setup failed: " + std::string(ready.error().message());
    co_return std::move(result_);
  }

  start_ns_ = loop_.now_ns();
  measure_ns_ = start_ns_ + static_cast<std::int64_t>(config_.warmup_s * 1e9);
  end_ns_ = measure_ns_ + static_cast<std::int64_t>(config_.duration_s * 1e9);
  conns_.resize(mine);
  for (ConnSlot& c : conns_) c.times.assign(std::max(1u, config_.common.depth), 0);
  if (config_.open_loop()) schedule_ = OpenLoopSchedule(start_ns_, config_.rate, index_, count_, mine);

  std::vector<JoinHandle<void>> tasks;
  tasks.reserve(mine);
  for (unsigned i = 0; i < mine; ++i) tasks.push_back(loop_.spawn_joinable(connection_task(this, i)));
  if (config_.open_loop()) {
    co_await tick_open_loop();
  } else {
    Status slept = co_await sleep_until(end_ns_);
    (void)slept;
  }
  stopping_ = true;
  for (ConnSlot& c : conns_) result_.unsent += c.scheduled - c.sent;
  for (JoinHandle<void>& t : tasks) t.cancel();
  for (JoinHandle<void>& t : tasks) co_await t;
  shard_.reset();
  co_return std::move(result_);
}

double seconds_of(const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; }

// One shard's part of the run: a worker on the shard's loop, its result handed back through `results`.
Task<void> bench_shard(Shard& shard, const BenchConfig* config, const Workload* workload, Address target,
                       LiveCounters* live, WorkerResult* results, std::atomic<unsigned>* finished) {
  unsigned i = shard.id();
  results[i] = co_await run_worker(*config, *workload, target, i, shard.count(), &live[i]);
  finished->fetch_add(1, std::memory_order_release);
}

}  // namespace

Task<WorkerResult> run_worker(const BenchConfig& config, const Workload& workload, Address target,
                              unsigned worker_index, unsigned worker_count, LiveCounters* live) {
  Worker worker(config, workload, target, worker_index, worker_count, live);
  co_return co_await worker.run();
}

Result<BenchOutcome> run_bench(const BenchConfig& config, const Workload& workload, Address target,
                               const std::function<void(const LiveSample&)>& on_second) {
  const unsigned n = std::max(1u, config.common.threads);
  auto live = std::make_unique<LiveCounters[]>(n);
  std::vector<WorkerResult> results(n);
  std::atomic<unsigned> finished{0};
  rusage usage_before{};
  getrusage(RUSAGE_SELF, &usage_before);
  const auto t0 = std::chrono::steady_clock::now();

  // The workers run on shards (runtime/shard/shard_set.hpp): one pinned thread and loop each, this thread being shard 0.
  // The once-a-second report runs beside them on a plain thread that only reads their counters.
  std::thread reporter([&] {
    // Until every worker has returned.
    for (unsigned second = 1; finished.load(std::memory_order_acquire) < n;) {
      auto next = t0 + std::chrono::seconds(second);
      while (finished.load(std::memory_order_acquire) < n && std::chrono::steady_clock::now() < next) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (finished.load(std::memory_order_acquire) == n) break;
      LiveSample sample{static_cast<double>(second), 0, 0, 0};
      for (unsigned i = 0; i < n; ++i) {
        sample.ops += live[i].ops.load(std::memory_order_relaxed);
        sample.errors += live[i].errors.load(std::memory_order_relaxed);
        sample.open_connections += live[i].open_connections.load(std::memory_order_relaxed);
      }
      if (on_second) on_second(sample);
      ++second;
    }
  });
  ShardSetOptions shard_options;
  shard_options.shards = n;
  shard_options.loop.backend.kind = config.backend;
  ShardSet shards(shard_options);
  Status ran = shards.run([&](Shard& shard) {
    return bench_shard(shard, &config, &workload, target, live.get(), results.data(), &finished);
  });
  if (!ran) finished.store(n, std::memory_order_release);
  reporter.join();
  if (!ran) return Error{ran.error()};
  const auto t1 = std::chrono::steady_clock::now();
  rusage usage_after{};
  getrusage(RUSAGE_SELF, &usage_after);

  BenchOutcome outcome;
  for (WorkerResult& r : results) outcome.result.merge(r);
  outcome.wall_s = config.duration_s;
  outcome.run_wall_s = std::chrono::duration<double>(t1 - t0).count();
  outcome.cpu_user_s = seconds_of(usage_after.ru_utime) - seconds_of(usage_before.ru_utime);
  outcome.cpu_sys_s = seconds_of(usage_after.ru_stime) - seconds_of(usage_before.ru_stime);
  return outcome;
}

}  // namespace ringlet::loadgen
