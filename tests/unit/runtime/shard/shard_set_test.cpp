#include "ringlet/runtime/shard/shard_set.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "ringlet/runtime/shard/submit_to.hpp"
#include "ringlet/runtime/timeout.hpp"
#include "support/shard_fixture.hpp"

namespace ringlet {
namespace {

using testing::busy_for;
using testing::ShardTest;

// ---- shutdown ----------------------------------------------------------------------------------------------------

struct SendFloodState {
  std::uint64_t received = 0;  // shard 1 only
  std::uint64_t sum = 0;       // shard 1 only
};

// send() never waits: the overflow holds what the ring cannot, and it all arrives.
Task<void> send_flood_main(Shard& shard, SendFloodState* st, std::uint64_t count) {
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
  SendFloodState st;
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


// ---- statistics --------------------------------------------------------------------------------------------------

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
