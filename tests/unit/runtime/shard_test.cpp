#include "ringlet/runtime/shard.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "ringlet/runtime/shard_channel.hpp"
#include "ringlet/runtime/timeout.hpp"
#include "support/loop_fixture.hpp"

namespace ringlet {
namespace {

class ShardTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  ShardSetOptions options(unsigned shards, std::size_t ring = 1024) {
    ShardSetOptions o;
    o.shards = shards;
    o.loop.backend.kind = GetParam();
    o.ring_capacity = ring;
    return o;
  }
  // Runs main on every shard; skips the test when the backend is unavailable here.
  bool run(ShardSet& set, std::function<Task<void>(Shard&)> main) {
    Status s = set.run(std::move(main));
    if (!s) {
      skipped_ = true;
      return false;
    }
    return true;
  }
  bool skipped_ = false;
};

#define RUN_OR_SKIP(set, main)                                                        \
  do {                                                                                \
    if (!run(set, main)) GTEST_SKIP() << "backend unavailable: " << backend_kind_name(GetParam()); \
  } while (0)

// ---- submit_to ---------------------------------------------------------------------------------------------------

struct SubmitState {
  std::vector<int> results;
  std::vector<std::thread::id> ran_on;
  std::thread::id shard1_thread;
};

Task<void> submit_main(Shard& shard, SubmitState* st) {
  if (shard.id() == 1) {
    st->shard1_thread = std::this_thread::get_id();
    co_return;
  }
  for (int i = 0; i < 100; ++i) {
    int r = co_await submit_to(1, [i, st] {
      st->ran_on.push_back(std::this_thread::get_id());
      return i * i;
    });
    st->results.push_back(r);
  }
}

TEST_P(ShardTest, submit_to_runs_on_the_target_and_returns_results_in_order) {
  ShardSet set(options(2));
  SubmitState st;
  RUN_OR_SKIP(set, [&st](Shard& s) { return submit_main(s, &st); });
  ASSERT_EQ(st.results.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(st.results[i], i * i);
  for (auto id : st.ran_on) EXPECT_EQ(id, st.shard1_thread);
}

Task<int> remote_task(int x) {
  co_await sleep_for(std::chrono::milliseconds(1));
  co_return x + 1;
}

Task<void> submit_task_main(Shard& shard, std::vector<int>* out) {
  if (shard.id() != 0) co_return;
  for (int i = 0; i < 10; ++i) {
    int r = co_await submit_to(1, [i] { return remote_task(i); });
    out->push_back(r);
  }
  // To ourselves, and a void result.
  int self = co_await submit_to(0, [] { return 7; });
  out->push_back(self);
  co_await submit_to(1, [] {});
}

TEST_P(ShardTest, submit_to_a_task_returning_function_runs_it_as_a_task_there) {
  ShardSet set(options(2));
  std::vector<int> out;
  RUN_OR_SKIP(set, [&out](Shard& s) { return submit_task_main(s, &out); });
  ASSERT_EQ(out.size(), 11u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(out[i], i + 1);
  EXPECT_EQ(out[10], 7);
}

// Messages from one shard to another run in the order they were sent, whichever way they were sent.
struct OrderState {
  std::vector<int> seen;  // touched only on shard 1
};

Task<void> order_main(Shard& shard, OrderState* st) {
  if (shard.id() != 0) co_return;
  for (int i = 0; i < 3000; ++i) {
    if (i % 3 == 0) {
      co_await post_to(1, [st, i] { st->seen.push_back(i); });
    } else if (i % 3 == 1) {
      shard.send(1, [st, i] { st->seen.push_back(i); });
    } else {
      co_await submit_to(1, [st, i] { st->seen.push_back(i); });
    }
  }
}

TEST_P(ShardTest, messages_between_two_shards_keep_their_order) {
  ShardSet set(options(2, 16));  // a small ring: overflow and waiting for room are exercised
  OrderState st;
  RUN_OR_SKIP(set, [&st](Shard& s) { return order_main(s, &st); });
  ASSERT_EQ(st.seen.size(), 3000u);
  for (int i = 0; i < 3000; ++i) ASSERT_EQ(st.seen[i], i);
}

// ---- a flood while the target is busy ----------------------------------------------------------------------------

struct FloodState {
  std::atomic<bool> receiver_busy_done{false};
  std::uint64_t received = 0;  // shard 1 only
  std::uint64_t sum = 0;       // shard 1 only
  std::uint64_t max_queued = 0;
};

Task<void> busy_for(std::chrono::milliseconds d) {
  // Busy: the shard runs tasks and does not drain for a while each turn.
  auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
    volatile int x = 0;
    for (int i = 0; i < 10000; ++i) x = x + i;
    Status s = co_await yield();
    if (!s) co_return;
  }
}

Task<void> flood_main(Shard& shard, FloodState* st, std::uint64_t count) {
  if (shard.id() == 1) {
    co_await busy_for(std::chrono::milliseconds(200));
    st->receiver_busy_done = true;
    co_return;
  }
  for (std::uint64_t i = 1; i <= count; ++i) {
    co_await post_to(1, [st, i] {
      ++st->received;
      st->sum += i;
    });
    // post_to waits for room: nothing piles up in the sender beyond the ring.
    st->max_queued = std::max<std::uint64_t>(st->max_queued, shard.queued_messages());
  }
}

TEST_P(ShardTest, a_flood_of_messages_to_a_busy_shard_waits_for_room_and_loses_nothing) {
  constexpr std::uint64_t kCount = 200000;
  ShardSet set(options(2, 64));
  FloodState st;
  RUN_OR_SKIP(set, [&st](Shard& s) { return flood_main(s, &st, kCount); });
  EXPECT_TRUE(st.receiver_busy_done);
  EXPECT_EQ(st.max_queued, 0u);
  EXPECT_EQ(st.received, kCount);
  EXPECT_EQ(st.sum, kCount * (kCount + 1) / 2);
}

// send() never waits: the overflow holds what the ring cannot, and it all arrives.
Task<void> send_flood_main(Shard& shard, FloodState* st, std::uint64_t count) {
  if (shard.id() == 1) {
    co_await busy_for(std::chrono::milliseconds(100));
    co_return;
  }
  for (std::uint64_t i = 1; i <= count; ++i) {
    shard.send(1, [st, i] {
      ++st->received;
      st->sum += i;
    });
  }
  co_return;  // returns with most messages still queued: shutdown must deliver them
}

TEST_P(ShardTest, shutdown_delivers_messages_still_in_flight) {
  constexpr std::uint64_t kCount = 50000;
  ShardSet set(options(2, 64));
  FloodState st;
  RUN_OR_SKIP(set, [&st](Shard& s) { return send_flood_main(s, &st, kCount); });
  EXPECT_EQ(st.received, kCount);
  EXPECT_EQ(st.sum, kCount * (kCount + 1) / 2);
}

// Ping-pong between shards whose messages send more messages, while every main task has already returned.
struct RelayState {
  std::atomic<int> hops{0};
};

void relay(RelayState* st, int left) {
  st->hops.fetch_add(1);
  if (left == 0) return;
  Shard& here = *Shard::current();
  here.send((here.id() + 1) % here.count(), [st, left] { relay(st, left - 1); });
}

Task<void> relay_main(Shard& shard, RelayState* st) {
  if (shard.id() == 0) shard.send(1, [st] { relay(st, 999); });
  co_return;
}

TEST_P(ShardTest, shutdown_waits_for_messages_that_send_messages) {
  ShardSet set(options(3));
  RelayState st;
  RUN_OR_SKIP(set, [&st](Shard& s) { return relay_main(s, &st); });
  EXPECT_EQ(st.hops.load(), 1000);
}

// Tasks left behind by a main task are cancelled at shutdown.
Task<void> sleeper() {
  Status s = co_await sleep_for(std::chrono::hours(1));
  (void)s;
}

Task<void> leave_behind_main(Shard& shard) {
  shard.loop().spawn(sleeper());
  co_return;
}

TEST_P(ShardTest, tasks_left_behind_are_cancelled_at_shutdown) {
  ShardSet set(options(2));
  RUN_OR_SKIP(set, [](Shard& s) { return leave_behind_main(s); });
}

// ---- ForeignPtr --------------------------------------------------------------------------------------------------

struct Owned {
  explicit Owned(std::atomic<int>* freed_on, int* value) : freed_on_(freed_on), value_(value) {}
  ~Owned() { freed_on_->store(static_cast<int>(Shard::current()->id())); }
  std::atomic<int>* freed_on_;
  int* value_;
};

Task<void> foreign_main(Shard& shard, std::atomic<int>* freed_on, int* read_value) {
  if (shard.id() != 1) co_return;
  ForeignPtr<Owned> p = make_foreign<Owned>(freed_on, read_value);
  EXPECT_EQ(p.owner(), 1u);
  Owned* raw = p.get();
  // Hand it to shard 0, which reads it and drops it: the delete comes home to shard 1.
  // (A named callable: GCC 12 mishandles temporaries that own memory inside a co_await expression.)
  auto use_and_drop = [q = std::move(p), raw]() mutable {
    EXPECT_EQ(q.get(), raw);
    EXPECT_FALSE(q.is_local());
    *q->value_ = 42;
    q.reset();
  };
  co_await submit_to(0, std::move(use_and_drop));
}

TEST_P(ShardTest, a_foreign_pointer_dropped_elsewhere_is_freed_on_its_owner) {
  ShardSet set(options(2));
  std::atomic<int> freed_on{-1};
  int value = 0;
  RUN_OR_SKIP(set, [&](Shard& s) { return foreign_main(s, &freed_on, &value); });
  EXPECT_EQ(value, 42);
  EXPECT_EQ(freed_on.load(), 1);
}

// ---- ShardChannel ------------------------------------------------------------------------------------------------

struct ChannelState {
  ShardChannel<std::uint64_t> channel{0, 1, 8};
  std::uint64_t received = 0;
  std::uint64_t sum = 0;
  bool in_order = true;
  Error end{};
};

Task<void> channel_main(Shard& shard, ChannelState* st, std::uint64_t count) {
  if (shard.id() == 0) {
    for (std::uint64_t i = 1; i <= count; ++i) {
      Status s = co_await st->channel.send(i);
      EXPECT_TRUE(s);
      if (i % 1000 == 0) co_await sleep_for(std::chrono::milliseconds(1));  // the consumer waits on empty too
    }
    st->channel.close();
    co_return;
  }
  co_await busy_for(std::chrono::milliseconds(50));  // the producer fills the channel and waits on full
  std::uint64_t expect = 1;
  for (;;) {
    Result<std::uint64_t> v = co_await st->channel.receive();
    if (!v) {
      st->end = v.error();
      break;
    }
    if (*v != expect) st->in_order = false;
    ++expect;
    ++st->received;
    st->sum += *v;
  }
}

TEST_P(ShardTest, a_shard_channel_streams_values_in_order_with_back_pressure_both_ways) {
  constexpr std::uint64_t kCount = 20000;
  ShardSet set(options(2));
  ChannelState st;
  RUN_OR_SKIP(set, [&st](Shard& s) { return channel_main(s, &st, kCount); });
  EXPECT_EQ(st.received, kCount);
  EXPECT_EQ(st.sum, kCount * (kCount + 1) / 2);
  EXPECT_TRUE(st.in_order);
  EXPECT_EQ(st.end, errc::queue_closed);
}

// ---- statistics --------------------------------------------------------------------------------------------------

Task<void> stats_main(Shard& shard, std::vector<ShardStats>* out) {
  if (shard.id() != 0) co_return;
  co_await submit_to(1, [] {});  // counted once its batch has run
  for (unsigned i = 0; i < shard.count(); ++i) {
    ShardStats s = co_await submit_to(i, [] { return Shard::current()->stats(); });
    out->push_back(s);
  }
}

TEST_P(ShardTest, each_shard_reports_its_own_statistics) {
  ShardSet set(options(3));
  std::vector<ShardStats> stats;
  RUN_OR_SKIP(set, [&stats](Shard& s) { return stats_main(s, &stats); });
  ASSERT_EQ(stats.size(), 3u);
  for (unsigned i = 0; i < 3; ++i) {
    EXPECT_EQ(stats[i].shard, i);
    EXPECT_GT(stats[i].loop_iterations, 0u);
  }
  EXPECT_GE(stats[1].messages_received, 1u);
  EXPECT_GE(stats[0].messages_sent, 1u);  // at least the first submit_to (asking itself sends nothing)
  EXPECT_EQ(stats[0].cpu, ShardSet::allowed_cpus()[0]);
}

TEST(ShardSetTest, zero_shards_means_one_per_allowed_cpu) {
  ShardSet set;
  EXPECT_EQ(set.size(), ShardSet::allowed_cpus().size());
}

RINGLET_BOTH_BACKENDS(ShardTest);

}  // namespace
}  // namespace ringlet
