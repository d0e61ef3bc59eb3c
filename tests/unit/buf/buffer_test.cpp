#include "ringlet/buf/buffer.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace ringlet {
namespace {

// Every test must give back every buffer it took, and leaves the cache empty for the next one.
class BufferPoolTest : public ::testing::Test {
 protected:
  void SetUp() override { BufferPool::local().trim(); }
  void TearDown() override {
    EXPECT_EQ(BufferPool::local().outstanding(), 0u) << "a buffer was not released";
    BufferPool::local().trim();
  }
};

// A source that owns external storage, like a provided-buffer ring: it only records what came back.
class RecordingSource final : public BufferSource {
 public:
  void recycle(Buffer* b) noexcept override { recycled.push_back(b->tag); }
  std::vector<std::uint32_t> recycled;
};

TEST_F(BufferPoolTest, acquire_returns_one_reference_and_counts_it_outstanding) {
  Buffer* b = BufferPool::local().acquire(100);
  EXPECT_EQ(b->refs, 1u);
  EXPECT_EQ(b->source, &BufferPool::local());
  EXPECT_EQ(BufferPool::local().outstanding(), 1u);
  buffer_unref(b);
  EXPECT_EQ(BufferPool::local().outstanding(), 0u);
}

TEST_F(BufferPoolTest, requests_round_up_to_size_classes) {
  struct Row {
    std::size_t request;
    std::uint32_t capacity;
  };
  const Row rows[] = {{0, 4096}, {1, 4096}, {4096, 4096}, {4097, 16384}, {16384, 16384}, {16385, 65536},
                      {65536, 65536}, {65537, 65537}, {1 << 20, 1 << 20}};
  for (const Row& row : rows) {
    Buffer* b = BufferPool::local().acquire(row.request);
    EXPECT_EQ(b->capacity, row.capacity) << "request " << row.request;
    b->data[b->capacity - 1] = std::byte{7};  // the whole capacity is usable
    buffer_unref(b);
  }
}

TEST_F(BufferPoolTest, storage_is_cache_line_aligned) {
  Buffer* b = BufferPool::local().acquire(10);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b->data) % 64, 0u);
  buffer_unref(b);
}

TEST_F(BufferPoolTest, a_released_buffer_is_reused_by_the_next_acquire_of_its_class) {
  Buffer* first = BufferPool::local().acquire(1000);
  buffer_unref(first);
  EXPECT_EQ(BufferPool::local().cached_bytes(), 4096u);
  Buffer* second = BufferPool::local().acquire(2000);
  EXPECT_EQ(second, first);
  EXPECT_EQ(BufferPool::local().cached_bytes(), 0u);
  buffer_unref(second);
}

TEST_F(BufferPoolTest, the_buffer_returns_to_its_source_only_when_the_last_reference_goes) {
  Buffer* b = BufferPool::local().acquire(1);
  buffer_ref(b);
  buffer_ref(b);
  buffer_unref(b);
  buffer_unref(b);
  EXPECT_EQ(BufferPool::local().outstanding(), 1u);
  EXPECT_EQ(BufferPool::local().cached_bytes(), 0u);
  buffer_unref(b);
  EXPECT_EQ(BufferPool::local().outstanding(), 0u);
  EXPECT_EQ(BufferPool::local().cached_bytes(), 4096u);
}

TEST_F(BufferPoolTest, any_buffer_source_gets_its_buffer_back_exactly_once) {
  RecordingSource source;
  std::byte storage[64];
  Buffer b{storage, sizeof storage, 1, &source, 42};
  buffer_ref(&b);
  buffer_unref(&b);
  EXPECT_TRUE(source.recycled.empty());
  buffer_unref(&b);
  EXPECT_EQ(source.recycled, std::vector<std::uint32_t>{42});
}

TEST_F(BufferPoolTest, oversized_buffers_are_freed_not_cached) {
  Buffer* b = BufferPool::local().acquire(100000);
  buffer_unref(b);
  EXPECT_EQ(BufferPool::local().cached_bytes(), 0u);
}

TEST_F(BufferPoolTest, each_class_caches_at_most_its_byte_bound) {
  for (const std::size_t capacity : BufferPool::kClassCapacity) {
    const std::size_t count = BufferPool::kCacheBytesPerClass / capacity + 10;
    std::vector<Buffer*> held;
    for (std::size_t i = 0; i < count; ++i) held.push_back(BufferPool::local().acquire(capacity));
    for (Buffer* b : held) buffer_unref(b);
    EXPECT_EQ(BufferPool::local().cached_bytes(), BufferPool::kCacheBytesPerClass) << "class " << capacity;
    BufferPool::local().trim();
  }
}

TEST_F(BufferPoolTest, trim_frees_every_cached_buffer) {
  std::vector<Buffer*> held;
  for (std::size_t size : {1u, 5000u, 20000u, 1u}) held.push_back(BufferPool::local().acquire(size));
  for (Buffer* b : held) buffer_unref(b);
  EXPECT_EQ(BufferPool::local().cached_bytes(), 4096u * 2 + 16384 + 65536);
  BufferPool::local().trim();
  EXPECT_EQ(BufferPool::local().cached_bytes(), 0u);
}

TEST_F(BufferPoolTest, each_thread_has_its_own_pool) {
  BufferPool* other = nullptr;
  std::size_t other_outstanding = 99;
  std::thread t([&] {
    other = &BufferPool::local();
    Buffer* b = BufferPool::local().acquire(1);
    buffer_unref(b);
    other_outstanding = BufferPool::local().outstanding();
  });
  t.join();
  EXPECT_NE(other, &BufferPool::local());
  EXPECT_EQ(other_outstanding, 0u);
}

// A thread_local constructed before the pool's first allocation is destroyed after the pool retires; releasing its
// buffer then must free it instead of caching it in a pool whose thread is gone.
std::atomic<std::size_t> cached_after_late_release{99};
std::atomic<std::size_t> outstanding_after_late_release{99};

struct LateHolder {
  Buffer* held = nullptr;
  ~LateHolder() {
    if (!held) return;
    buffer_unref(held);
    cached_after_late_release = BufferPool::local().cached_bytes();
    outstanding_after_late_release = BufferPool::local().outstanding();
  }
};

TEST_F(BufferPoolTest, a_buffer_released_after_the_thread_pool_retired_is_freed) {
  std::thread t([] {
    thread_local LateHolder holder;
    holder.held = nullptr;  // constructs the holder before the pool's first allocation
    Buffer* cached = BufferPool::local().acquire(1);
    holder.held = BufferPool::local().acquire(1);
    buffer_unref(cached);
  });
  t.join();
  EXPECT_EQ(cached_after_late_release.load(), 0u);
  EXPECT_EQ(outstanding_after_late_release.load(), 0u);
}

using BufferPoolDeathTest = BufferPoolTest;

TEST_F(BufferPoolDeathTest, releasing_a_buffer_twice_aborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Buffer* b = BufferPool::local().acquire(1);
        buffer_unref(b);
        buffer_unref(b);
      },
      "assertion failed");
}

TEST_F(BufferPoolDeathTest, releasing_a_buffer_on_another_thread_aborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Buffer* b = BufferPool::local().acquire(1);
        std::thread t([b] { buffer_unref(b); });
        t.join();
      },
      "assertion failed");
}

#if defined(RINGLET_SANITIZE)
// Cached buffers are poisoned, so a Slice kept past its buffer's recycle is caught at the first read.
TEST_F(BufferPoolDeathTest, reading_a_recycled_buffer_is_reported_by_asan) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Buffer* b = BufferPool::local().acquire(1);
        const std::byte* stale = b->data;
        buffer_unref(b);
        volatile std::byte first = stale[0];
        (void)first;
      },
      "use-after-poison");
}
#endif

}  // namespace
}  // namespace ringlet
