#include "ringlet/buf/slice_ring.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "ringlet/buf/copy_counter.hpp"
#include "support/fake_ring.hpp"

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

std::string contents(const SliceRing& ring) {
  std::string all;
  for (std::size_t i = 0; i < ring.size(); ++i) all += ring[i].view();
  return all;
}

TEST_F(SliceRingTest, compact_copies_ring_loans_and_sparse_slices_out_and_keeps_the_bytes_in_order) {
  testing::FakeRing kernel_ring(8);
  SliceRing ring;
  ring.push_back(kernel_ring.lend("GET / HTTP/1.1\r\n"));
  ring.push_back(kernel_ring.lend("Host: x\r\n"));
  const std::string dense(BufferPool::kClassCapacity[0], 'd');  // fills a pooled buffer: worth keeping as is
  ring.push_back(text(dense));
  Buffer* big = BufferPool::local().acquire(BufferPool::kClassCapacity[1]);
  std::memcpy(big->data, "tail", 4);
  ring.push_back(Slice(big, 0, 4));  // 4 bytes pinning 16 KiB
  const std::string before = contents(ring);
  const Buffer* dense_buffer = ring[2].buffer();
  const std::uint64_t copied_before = bytes_copied();

  const std::size_t copied = ring.compact(SliceRing::Copy::loans_and_sparse);

  EXPECT_EQ(copied, before.size() - dense.size());
  EXPECT_EQ(bytes_copied() - copied_before, copied) << "compaction copies are counted like every other copy";
  EXPECT_EQ(contents(ring), before);
  EXPECT_EQ(kernel_ring.lent(), 0u) << "every ring buffer went back";
  ASSERT_EQ(ring.size(), 3u) << "the two loans share one pooled buffer, the dense slice stays, the tail is copied";
  EXPECT_EQ(ring[1].buffer(), dense_buffer);
  for (std::size_t i = 0; i < ring.size(); ++i) EXPECT_FALSE(SliceRing::should_copy_out(ring[i], SliceRing::Copy::loans_and_sparse)) << i;
  EXPECT_EQ(ring.compact(SliceRing::Copy::loans_and_sparse), 0u) << "a second pass finds nothing to do";
}

TEST_F(SliceRingTest, compacting_for_loans_only_leaves_a_partly_sent_buffer_of_the_callers_alone) {
  testing::FakeRing kernel_ring(2);
  SliceRing ring;
  Buffer* big = BufferPool::local().acquire(BufferPool::kClassCapacity[2]);
  std::memset(big->data, 'b', 64);
  ring.push_back(Slice(big, 0, 64));  // what is left of a big buffer after partial sends
  ring.push_back(kernel_ring.lend("echoed"));
  EXPECT_EQ(ring.compact(SliceRing::Copy::loans), 6u);
  EXPECT_EQ(ring[0].buffer(), big);
  EXPECT_EQ(kernel_ring.lent(), 0u);
}

TEST_F(SliceRingTest, compact_of_many_tiny_loans_packs_them_into_few_buffers) {
  testing::FakeRing kernel_ring(64);
  SliceRing ring;
  std::string expected;
  for (int i = 0; i < 64; ++i) {  // a slowloris: one byte per receive, each pinning a whole ring buffer
    std::string one(1, static_cast<char>('a' + i % 26));
    ring.push_back(kernel_ring.lend(one));
    expected += one;
  }
  EXPECT_EQ(ring.compact(SliceRing::Copy::loans_and_sparse), 64u);
  EXPECT_EQ(ring.size(), 1u);
  EXPECT_EQ(contents(ring), expected);
  EXPECT_EQ(kernel_ring.lent(), 0u);
}

TEST_F(SliceRingTest, a_loan_someone_else_still_holds_stays_lent_until_they_drop_it) {
  testing::FakeRing kernel_ring(4);
  SliceRing ring;
  ring.push_back(kernel_ring.lend("shared"));
  Slice held = ring[0];  // a parser kept a view of it
  ring.compact(SliceRing::Copy::loans_and_sparse);
  EXPECT_EQ(kernel_ring.lent(), 1u) << "compaction cannot take a buffer back from another holder";
  EXPECT_EQ(held.view(), "shared");
  held.reset();
  EXPECT_EQ(kernel_ring.lent(), 0u);
}

}  // namespace
}  // namespace ringlet
