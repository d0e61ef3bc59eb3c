#include "ringlet/buf/slice.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "ringlet/buf/copy_counter.hpp"

namespace ringlet {
namespace {

class SliceTest : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_EQ(BufferPool::local().outstanding(), 0u) << "a buffer was not released"; }
};

class RecordingSource final : public BufferSource {
 public:
  void recycle(Buffer* b) noexcept override { recycled.push_back(b->tag); }
  std::vector<std::uint32_t> recycled;
};

TEST_F(SliceTest, copy_of_copies_the_bytes_once_and_counts_them) {
  const std::uint64_t before = bytes_copied();
  Slice s = Slice::copy_of(std::string_view("hello"));
  EXPECT_EQ(bytes_copied() - before, 5u);
  EXPECT_EQ(s.view(), "hello");
  EXPECT_EQ(s.size(), 5u);
  EXPECT_EQ(s.buffer()->refs, 1u);
}

TEST_F(SliceTest, copy_of_nothing_is_empty_and_holds_no_buffer) {
  Slice s = Slice::copy_of(std::string_view());
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.buffer(), nullptr);
  EXPECT_EQ(BufferPool::local().outstanding(), 0u);
}

TEST_F(SliceTest, copying_a_slice_shares_the_buffer_without_copying_bytes) {
  Slice a = Slice::copy_of(std::string_view("shared bytes"));
  const std::uint64_t before = bytes_copied();
  Slice b = a;
  Slice c;
  c = b;
  EXPECT_EQ(bytes_copied(), before);
  EXPECT_EQ(a.buffer(), c.buffer());
  EXPECT_EQ(a.data(), c.data());
  EXPECT_EQ(a.buffer()->refs, 3u);
}

TEST_F(SliceTest, moving_a_slice_transfers_the_reference) {
  Slice a = Slice::copy_of(std::string_view("abc"));
  Buffer* buf = a.buffer();
  Slice b = std::move(a);
  EXPECT_EQ(buf->refs, 1u);
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.buffer(), nullptr);
  Slice c;
  c = std::move(b);
  EXPECT_EQ(buf->refs, 1u);
  EXPECT_EQ(c.view(), "abc");
}

TEST_F(SliceTest, self_assignment_keeps_the_buffer_alive) {
  Slice a = Slice::copy_of(std::string_view("self"));
  Slice& alias = a;
  a = alias;
  EXPECT_EQ(a.view(), "self");
  EXPECT_EQ(a.buffer()->refs, 1u);
  a = std::move(alias);
  EXPECT_EQ(a.view(), "self");
}

TEST_F(SliceTest, the_buffer_is_recycled_when_the_last_slice_goes) {
  Slice a = Slice::copy_of(std::string_view("abc"));
  {
    Slice b = a.sub(1, 1);
    a.reset();
    EXPECT_EQ(BufferPool::local().outstanding(), 1u);
    EXPECT_EQ(b.view(), "b");
  }
  EXPECT_EQ(BufferPool::local().outstanding(), 0u);
}

TEST_F(SliceTest, sub_is_a_view_into_the_same_bytes) {
  Slice a = Slice::copy_of(std::string_view("0123456789"));
  const std::uint64_t before = bytes_copied();
  Slice s = a.sub(3, 4);
  EXPECT_EQ(bytes_copied(), before);
  EXPECT_EQ(s.view(), "3456");
  EXPECT_EQ(s.data(), a.data() + 3);
  EXPECT_EQ(s.offset(), 3u);
  Slice t = s.sub(1, 2);
  EXPECT_EQ(t.view(), "45");
  EXPECT_EQ(t.offset(), 4u);
  EXPECT_EQ(a.buffer()->refs, 3u);
}

TEST_F(SliceTest, an_empty_sub_holds_no_reference) {
  Slice a = Slice::copy_of(std::string_view("abc"));
  Slice s = a.sub(3, 0);
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.buffer(), nullptr);
  EXPECT_EQ(a.buffer()->refs, 1u);
}

TEST_F(SliceTest, remove_prefix_and_suffix_narrow_the_view) {
  Slice a = Slice::copy_of(std::string_view("[payload]"));
  a.remove_prefix(1);
  a.remove_suffix(1);
  EXPECT_EQ(a.view(), "payload");
  EXPECT_EQ(a.span().size(), 7u);
  a.remove_prefix(7);
  EXPECT_TRUE(a.empty());
}

TEST_F(SliceTest, try_join_merges_only_adjacent_views_of_one_buffer) {
  Slice whole = Slice::copy_of(std::string_view("abcdef"));
  Slice left = whole.sub(0, 2);
  Slice middle = whole.sub(2, 2);
  Slice right = whole.sub(4, 2);
  EXPECT_FALSE(left.try_join(right));  // a gap
  EXPECT_EQ(right.view(), "ef");
  EXPECT_TRUE(left.try_join(middle));
  EXPECT_EQ(left.view(), "abcd");
  EXPECT_TRUE(middle.empty());
  EXPECT_EQ(whole.buffer()->refs, 3u);  // whole, left, right

  Slice other = Slice::copy_of(std::string_view("ef"));
  Slice tail = left;
  EXPECT_FALSE(tail.try_join(other));  // same bytes, different buffer
}

TEST_F(SliceTest, mutable_data_writes_into_a_fresh_buffer) {
  Buffer* b = BufferPool::local().acquire(3);
  Slice s(b, 0, 3);
  std::memcpy(s.mutable_data(), "xyz", 3);
  EXPECT_EQ(s.view(), "xyz");
}

TEST_F(SliceTest, slices_work_over_external_storage_from_any_source) {
  RecordingSource source;
  std::byte storage[16] = {};
  std::memcpy(storage, "external", 8);
  Buffer b{storage, sizeof storage, 1, &source, 7};
  {
    Slice s(&b, 0, 8);
    Slice word = s.sub(2, 4);
    EXPECT_EQ(word.view(), "tern");
    EXPECT_EQ(word.data(), storage + 2);
  }
  EXPECT_EQ(source.recycled, std::vector<std::uint32_t>{7});
}

TEST_F(SliceTest, a_view_past_the_buffer_capacity_aborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Buffer* b = BufferPool::local().acquire(1);
        Slice s(b, 4000, 200);
      },
      "assertion failed");
  EXPECT_DEATH(
      {
        Slice s = Slice::copy_of(std::string_view("abc"));
        Slice t = s.sub(2, 2);
      },
      "assertion failed");
}

}  // namespace
}  // namespace ringlet
