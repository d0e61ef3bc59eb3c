// shard_set.cpp — shard threads and the shutdown that lets every message land.
#include "ringlet/runtime/shard/shard_set.hpp"

#include <pthread.h>
#include <sched.h>

#include <thread>

#include "ringlet/base/log.hpp"

namespace ringlet {

namespace {
thread_local Shard* t_shard = nullptr;
}  // namespace

// ---- Shard -----------------------------------------------------------------------------------------------------

Shard* Shard::current() noexcept { return t_shard; }

unsigned Shard::count() const noexcept { return set_->size(); }

ShardStats Shard::stats() const noexcept {
  ShardStats s;
  s.shard = id_;
  s.cpu = cpu_;
  s.connections_open = counters_->streams_open();
  s.connections_accepted = counters_->connections_accepted.get();
  s.bytes_in = counters_->bytes_in.get();
  s.bytes_out = counters_->bytes_out.get();
  s.messages_sent = counters_->messages_sent.get();
  s.messages_received = counters_->messages_received.get();
  s.loop_iterations = loop_->stats().iterations;
  s.kernel_wait_ns = loop_->stats().kernel_wait_ns;
  return s;
}

// ---- ShardSet --------------------------------------------------------------------------------------------------

std::vector<int> ShardSet::allowed_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
    }
  }
  if (cpus.empty()) cpus.push_back(0);
  return cpus;
}

ShardSet::ShardSet(ShardSetOptions options) : options_(std::move(options)), cpus_(allowed_cpus()) {
  unsigned n = options_.shards != 0 ? options_.shards : static_cast<unsigned>(cpus_.size());
  mailboxes_ = std::make_unique<std::atomic<detail::Mailbox*>[]>(static_cast<std::size_t>(n) * n);
  for (std::size_t i = 0; i < static_cast<std::size_t>(n) * n; ++i) mailboxes_[i].store(nullptr);
  for (unsigned i = 0; i < n; ++i) {
    auto s = std::make_unique<Shard>();
    s->set_ = this;
    s->id_ = i;
    s->cpu_ = options_.pin ? cpus_[i % cpus_.size()] : -1;
    s->outbound_.resize(n);
    shards_.push_back(std::move(s));
  }
}

ShardSet::~ShardSet() {
  std::size_t n = shards_.size();
  for (std::size_t i = 0; i < n * n; ++i) delete mailboxes_[i].load();
}

detail::Mailbox& ShardSet::mailbox(unsigned from, unsigned to) {
  std::atomic<detail::Mailbox*>& slot = mailboxes_[static_cast<std::size_t>(from) * size() + to];
  detail::Mailbox* p = slot.load(std::memory_order_relaxed);  // only `from` ever stores it
  if (p == nullptr) {
    p = new detail::Mailbox(options_.ring_capacity);
    slot.store(p, std::memory_order_release);
  }
  return *p;
}

detail::Mailbox* ShardSet::mailbox_if_any(unsigned from, unsigned to) noexcept {
  return mailboxes_[static_cast<std::size_t>(from) * size() + to].load(std::memory_order_acquire);
}

void ShardSet::wake_all() noexcept {
  for (auto& s : shards_) {
    if (s->loop_ != nullptr) s->loop_->wake();
  }
}

// Every message pushed has run and nothing waits in an overflow queue. Two passes over monotonically growing
// counters: the first reads every ring's tail, the second every head and then every tail again. A message pushed
// while we look changes a tail between the passes or leaves a head behind its tail, so "no change and nothing
// unconsumed" means the system was quiet at the moment between the passes. A message runs before its ring's head
// moves past it, so one that sends another is still unconsumed when the second is pushed.
bool ShardSet::quiet() const noexcept {
  std::size_t n = shards_.size();
  std::vector<std::uint64_t> tails(n * n, 0);
  for (std::size_t i = 0; i < n * n; ++i) {
    if (auto* p = mailboxes_[i].load(std::memory_order_acquire)) tails[i] = p->ring.pushed();
  }
  for (auto& s : shards_) {
    if (s->overflow_size_.load(std::memory_order_acquire) != 0) return false;
  }
  std::vector<std::uint64_t> heads(n * n, 0);
  for (std::size_t i = 0; i < n * n; ++i) {
    if (auto* p = mailboxes_[i].load(std::memory_order_acquire)) heads[i] = p->ring.consumed();
  }
  for (std::size_t i = 0; i < n * n; ++i) {
    auto* p = mailboxes_[i].load(std::memory_order_acquire);
    std::uint64_t tail = p != nullptr ? p->ring.pushed() : 0;
    if (tail != tails[i] || heads[i] != tail) return false;
  }
  for (auto& s : shards_) {
    if (s->overflow_size_.load(std::memory_order_acquire) != 0) return false;
  }
  return true;
}

void ShardSet::settle(Shard& shard, int stage) {
  int n = static_cast<int>(shards_.size());
  if (arrived_[stage].fetch_add(1, std::memory_order_acq_rel) + 1 == n) wake_all();
  for (;;) {
    if (settled_.load(std::memory_order_acquire) >= stage) return;
    if (arrived_[stage].load(std::memory_order_acquire) == n && shard.retry_list_.empty() && quiet()) {
      settled_.store(stage, std::memory_order_release);
      wake_all();
      return;
    }
    shard.loop_->run_once();
  }
}

bool ShardSet::start_barrier(bool ok, unsigned round) {
  if (!ok) start_failed_.store(true, std::memory_order_release);
  started_.fetch_add(1, std::memory_order_acq_rel);
  started_.notify_all();
  for (;;) {
    unsigned seen = started_.load(std::memory_order_acquire);
    if (seen >= round * size()) break;
    started_.wait(seen, std::memory_order_acquire);
  }
  return !start_failed_.load(std::memory_order_acquire);
}

void ShardSet::shard_thread(unsigned index, const std::function<Task<void>(Shard&)>& main) {
  Shard& shard = *shards_[index];
  set_log_shard(static_cast<int>(index));  // every line this thread logs names its shard
  struct ForgetLogShard {
    ~ForgetLogShard() { set_log_shard(-1); }
  } forget_log_shard;  // shard 0 is the caller's thread, which goes on after the set
  cpu_set_t before;
  bool restore = index == 0 && shard.cpu_ >= 0 && pthread_getaffinity_np(pthread_self(), sizeof before, &before) == 0;
  struct RestoreAffinity {
    bool on;
    cpu_set_t* mask;
    ~RestoreAffinity() {
      if (on) pthread_setaffinity_np(pthread_self(), sizeof *mask, mask);
    }
  } restore_on_exit{restore, &before};  // shard 0 is the caller's thread: give it its mask back
  if (shard.cpu_ >= 0) {
    cpu_set_t cpu;
    CPU_ZERO(&cpu);
    CPU_SET(shard.cpu_, &cpu);
    if (pthread_setaffinity_np(pthread_self(), sizeof cpu, &cpu) != 0) {
      log_warn("shard {}: cannot pin to CPU {}; running unpinned", index, shard.cpu_);
      shard.cpu_ = -1;
    }
  }
  auto loop = Loop::create(options_.loop);
  if (!loop) log_error("shard {}: cannot create its loop: {}", index, loop.error().message());
  if (!start_barrier(static_cast<bool>(loop), 1)) return;
  Loop& l = **loop;
  t_shard = &shard;
  shard.loop_ = &l;
  shard.counters_ = &thread_counters();
  l.set_inbox(&shard);
  // Every loop exists before any main task runs: a message can only go to a shard that can receive it.
  if (!start_barrier(true, 2)) return;

  l.block_on(main(shard));
  settle(shard, 1);
  l.cancel_all_tasks();          // tasks the main task left behind
  l.run_until_idle(100000);
  settle(shard, 2);
  l.run_until_idle(1000);
  // Stop together: nobody may wake a loop that is gone.
  if (arrived_[0].fetch_add(1, std::memory_order_acq_rel) + 1 == static_cast<int>(size())) {
    arrived_[0].notify_all();
  } else {
    for (;;) {
      int seen = arrived_[0].load(std::memory_order_acquire);
      if (seen == static_cast<int>(size())) break;
      arrived_[0].wait(seen, std::memory_order_acquire);
    }
  }
  l.set_inbox(nullptr);
  shard.loop_ = nullptr;
  t_shard = nullptr;
}

Status ShardSet::run(std::function<Task<void>(Shard&)> main) {
  std::vector<std::thread> threads;
  threads.reserve(size());
  for (unsigned i = 1; i < size(); ++i) threads.emplace_back([this, i, &main] { shard_thread(i, main); });
  shard_thread(0, main);
  for (auto& t : threads) t.join();
  if (start_failed_.load()) return Error{EOPNOTSUPP};  // a loop could not be created (logged)
  return {};
}

}  // namespace ringlet
