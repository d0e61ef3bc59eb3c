#include "ringlet/runtime/shard/submit_to.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "ringlet/runtime/timeout.hpp"
#include "support/shard_fixture.hpp"

namespace ringlet {
namespace {

using testing::busy_for;
// This file's own suite: the files of this directory share one executable, and a suite is instantiated once.
class SubmitToShardTest : public testing::ShardTest {};

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

TEST_P(SubmitToShardTest, submit_to_runs_on_the_target_and_returns_results_in_order) {
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

TEST_P(SubmitToShardTest, submit_to_a_task_returning_function_runs_it_as_a_task_there) {
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

TEST_P(SubmitToShardTest, messages_between_two_shards_keep_their_order) {
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

TEST_P(SubmitToShardTest, a_flood_of_messages_to_a_busy_shard_waits_for_room_and_loses_nothing) {
  constexpr std::uint64_t kCount = 200000;
  ShardSet set(options(2, 64));
  FloodState st;
  RUN_OR_SKIP(set, [&st](Shard& s) { return flood_main(s, &st, kCount); });
  EXPECT_TRUE(st.receiver_busy_done);
  EXPECT_EQ(st.max_queued, 0u);
  EXPECT_EQ(st.received, kCount);
  EXPECT_EQ(st.sum, kCount * (kCount + 1) / 2);
}


RINGLET_BOTH_BACKENDS(SubmitToShardTest);

}  // namespace
}  // namespace ringlet
