#include "ringlet/runtime/shard/channel.hpp"

#include <gtest/gtest.h>

#include <cstdint>

#include "ringlet/runtime/shard/submit_to.hpp"
#include "ringlet/runtime/timeout.hpp"
#include "support/shard_fixture.hpp"

namespace ringlet {
namespace {

using testing::busy_for;
// This file's own suite: the files of this directory share one executable, and a suite is instantiated once.
class ChannelShardTest : public testing::ShardTest {};

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

TEST_P(ChannelShardTest, a_shard_channel_streams_values_in_order_with_back_pressure_both_ways) {
  constexpr std::uint64_t kCount = 20000;
  ShardSet set(options(2));
  ChannelState st;
  RUN_OR_SKIP(set, [&st](Shard& s) { return channel_main(s, &st, kCount); });
  EXPECT_EQ(st.received, kCount);
  EXPECT_EQ(st.sum, kCount * (kCount + 1) / 2);
  EXPECT_TRUE(st.in_order);
  EXPECT_EQ(st.end, errc::queue_closed);
}

RINGLET_BOTH_BACKENDS(ChannelShardTest);

}  // namespace
}  // namespace ringlet
