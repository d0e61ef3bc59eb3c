#include "ringlet/buf/copy_counter.hpp"

#include <gtest/gtest.h>

#include <array>
#include <thread>

namespace ringlet {
namespace {

TEST(CopyCounter, counted_copy_adds_the_bytes_it_copied) {
  const std::array<std::byte, 5> src{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}, std::byte{5}};
  std::array<std::byte, 5> dst{};
  const std::uint64_t before = bytes_copied();
  counted_copy(dst.data(), src.data(), src.size());
  EXPECT_EQ(bytes_copied() - before, 5u);
  EXPECT_EQ(dst, src);
}

TEST(CopyCounter, count_copy_adds_without_copying) {
  const std::uint64_t before = bytes_copied();
  count_copy(1234);
  EXPECT_EQ(bytes_copied() - before, 1234u);
}

TEST(CopyCounter, copies_on_another_thread_are_not_counted_here) {
  const std::uint64_t before = bytes_copied();
  std::uint64_t other = 0;
  std::thread t([&] {
    count_copy(99);
    other = bytes_copied();
  });
  t.join();
  EXPECT_EQ(other, 99u);
  EXPECT_EQ(bytes_copied(), before);
}

}  // namespace
}  // namespace ringlet
