#include "ringlet/buf/slice_ring.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ringlet {
namespace {

class SliceRingTest : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_EQ(BufferPool::local().outstanding(), 0u) << "a buffer was not released"; }
};

Slice text(const std::string& s) { return Slice::copy_of(std::string_view(s)); }

TEST_F(SliceRingTest, pops_in_push_order_across_wrap_around) {
  SliceRing ring;
  int next_in = 0;
  int next_out = 0;
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 5; ++i) ring.push_back(text(std::to_string(next_in++)));
    for (int i = 0; i < 4; ++i) EXPECT_EQ(ring.pop_front().view(), std::to_string(next_out++));
  }
  ASSERT_EQ(ring.size(), 50u);
  for (std::size_t i = 0; i < ring.size(); ++i) EXPECT_EQ(ring[i].view(), std::to_string(next_out + int(i)));
}

TEST_F(SliceRingTest, holds_one_slice_inline_grows_by_doubling_and_gives_storage_back_when_drained) {
  SliceRing ring;
  EXPECT_EQ(ring.capacity(), 1u);
  ring.push_back(text("a"));
  EXPECT_EQ(ring.capacity(), 1u) << "one slice needs no heap storage";
  ring.push_back(text("b"));
  EXPECT_EQ(ring.capacity(), SliceRing::kInitialCapacity);
  for (std::size_t i = 2; i <= SliceRing::kInitialCapacity; ++i) ring.push_back(text("c"));
  EXPECT_EQ(ring.capacity(), 2 * SliceRing::kInitialCapacity);
  EXPECT_EQ(ring.front().view(), "a");
  EXPECT_EQ(ring.back().view(), "c");
  ring.clear();
  EXPECT_TRUE(ring.empty());
  EXPECT_EQ(ring.capacity(), 1u) << "an idle ring holds no storage";
}

TEST_F(SliceRingTest, steady_push_and_pop_never_grow_the_ring) {
  SliceRing ring;
  for (int i = 0; i < 3; ++i) ring.push_back(text("warm"));
  const std::size_t capacity = ring.capacity();
  for (int i = 0; i < 10000; ++i) {
    ring.push_back(text("x"));
    ring.drop_front();
  }
  EXPECT_EQ(ring.capacity(), capacity);
}

TEST_F(SliceRingTest, popped_slots_release_their_buffers) {
  SliceRing ring;
  ring.push_back(text("one"));
  ring.push_back(text("two"));
  ring.drop_front();
  EXPECT_EQ(BufferPool::local().outstanding(), 1u);
  SliceRing moved = std::move(ring);
  EXPECT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved.front().view(), "two");
  EXPECT_TRUE(ring.empty());
}

}  // namespace
}  // namespace ringlet
