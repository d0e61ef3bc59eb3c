#include "ringlet/buf/output_chain.hpp"

#include <gtest/gtest.h>
#include <sys/uio.h>

#include <algorithm>
#include <cstdlib>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "ringlet/buf/copy_counter.hpp"
#include "support/allocation_counter.hpp"

namespace ringlet {
namespace {

class OutputChainTest : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_EQ(BufferPool::local().outstanding(), 0u) << "a buffer was not released"; }
};

Slice text(std::string_view s) { return Slice::copy_of(s); }

std::string gather(const iovec* iov, std::size_t count) {
  std::string out;
  for (std::size_t i = 0; i < count; ++i) out.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
  return out;
}

std::string contents(const OutputChain& chain) {
  std::vector<iovec> iov(chain.pieces() + 1);
  return gather(iov.data(), chain.fill_iovecs(iov.data(), iov.size()));
}

// Pieces of different lengths, each in its own buffer, so every piece is a separate iovec.
const std::vector<std::string> kPieces = {"a", "bcdef", "ghi", "jklmnop", "qr"};

OutputChain chain_of_pieces() {
  OutputChain chain;
  for (const std::string& p : kPieces) chain.append(text(p));
  return chain;
}

std::string all_pieces() {
  std::string all;
  for (const std::string& p : kPieces) all += p;
  return all;
}

// After `written` bytes have gone out, the iovecs must describe exactly the rest: the first one starting
// inside the piece where writing stopped, the others whole.
void expect_rest(const OutputChain& chain, std::size_t written) {
  const std::string all = all_pieces();
  SCOPED_TRACE("after " + std::to_string(written) + " bytes written");
  EXPECT_EQ(chain.bytes(), all.size() - written);
  EXPECT_EQ(chain.empty(), written == all.size());
  std::size_t expected_pieces = 0;
  std::size_t first_offset = 0;
  for (std::size_t i = 0, start = 0; i < kPieces.size(); start += kPieces[i].size(), ++i) {
    if (start + kPieces[i].size() <= written) continue;
    if (expected_pieces++ == 0) first_offset = written - start;
  }
  ASSERT_EQ(chain.pieces(), expected_pieces);
  iovec iov[8];
  const std::size_t n = chain.fill_iovecs(iov, 8);
  ASSERT_EQ(n, expected_pieces);
  EXPECT_EQ(gather(iov, n), all.substr(written));
  if (n > 0) {
    const std::size_t first_piece = kPieces.size() - expected_pieces;
    EXPECT_EQ(iov[0].iov_len, kPieces[first_piece].size() - first_offset);
    for (std::size_t i = 1; i < n; ++i) EXPECT_EQ(iov[i].iov_len, kPieces[first_piece + i].size());
  }
}

TEST_F(OutputChainTest, every_single_partial_write_leaves_exactly_the_rest) {
  const std::size_t total = all_pieces().size();
  for (std::size_t n = 0; n <= total; ++n) {
    OutputChain chain = chain_of_pieces();
    chain.advance(n);
    expect_rest(chain, n);
  }
}

TEST_F(OutputChainTest, every_pair_of_partial_writes_leaves_exactly_the_rest) {
  const std::size_t total = all_pieces().size();
  for (std::size_t n1 = 0; n1 <= total; ++n1) {
    for (std::size_t n2 = 0; n1 + n2 <= total; ++n2) {
      OutputChain chain = chain_of_pieces();
      chain.advance(n1);
      expect_rest(chain, n1);
      chain.advance(n2);
      expect_rest(chain, n1 + n2);
    }
  }
}

TEST_F(OutputChainTest, byte_by_byte_writes_walk_through_every_offset) {
  OutputChain chain = chain_of_pieces();
  const std::size_t total = chain.bytes();
  for (std::size_t n = 1; n <= total; ++n) {
    chain.advance(1);
    expect_rest(chain, n);
  }
}

TEST_F(OutputChainTest, fully_written_pieces_release_their_buffers_at_once) {
  OutputChain chain = chain_of_pieces();
  EXPECT_EQ(BufferPool::local().outstanding(), kPieces.size());
  chain.advance(kPieces[0].size() + kPieces[1].size() + 1);
  EXPECT_EQ(BufferPool::local().outstanding(), kPieces.size() - 2);
  chain.advance(chain.bytes());
  EXPECT_EQ(BufferPool::local().outstanding(), 0u);
}

TEST_F(OutputChainTest, fill_iovecs_stops_at_max_iov) {
  OutputChain chain = chain_of_pieces();
  chain.advance(2);
  iovec iov[2];
  ASSERT_EQ(chain.fill_iovecs(iov, 2), 2u);
  EXPECT_EQ(gather(iov, 2), "cdefghi");
  EXPECT_EQ(chain.fill_iovecs(iov, 0), 0u);
}

TEST_F(OutputChainTest, appending_a_slice_shares_it_without_copying) {
  Slice body = text("body bytes");
  const std::uint64_t before = bytes_copied();
  OutputChain chain;
  chain.append(body);
  chain.append(body.sub(0, 4));
  EXPECT_EQ(bytes_copied(), before);
  EXPECT_EQ(body.buffer()->refs, 3u);
  iovec iov[2];
  ASSERT_EQ(chain.fill_iovecs(iov, 2), 2u);
  EXPECT_EQ(iov[0].iov_base, body.data());
  EXPECT_EQ(contents(chain), "body bytesbody");
}

TEST_F(OutputChainTest, adjacent_slices_of_one_buffer_become_one_piece) {
  Slice whole = text("0123456789");
  OutputChain chain;
  chain.append(whole.sub(0, 3));
  chain.append(whole.sub(3, 3));
  chain.append(whole.sub(6, 4));
  EXPECT_EQ(chain.pieces(), 1u);
  EXPECT_EQ(contents(chain), "0123456789");
}

TEST_F(OutputChainTest, small_copies_coalesce_into_one_pooled_piece) {
  OutputChain chain;
  const std::uint64_t before = bytes_copied();
  std::string expected;
  for (int i = 0; i < 100; ++i) {
    chain.append_copy(std::string_view("header\r\n"));
    expected += "header\r\n";
  }
  EXPECT_EQ(bytes_copied() - before, expected.size());
  EXPECT_EQ(chain.pieces(), 1u);
  EXPECT_EQ(contents(chain), expected);
}

TEST_F(OutputChainTest, a_copy_that_fills_the_tail_buffer_spills_into_a_new_piece) {
  OutputChain chain;
  const std::string first(4000, 'a');
  const std::string second(200, 'b');
  chain.append_copy(first);
  chain.append_copy(second);
  EXPECT_EQ(chain.pieces(), 2u);
  iovec iov[2];
  ASSERT_EQ(chain.fill_iovecs(iov, 2), 2u);
  EXPECT_EQ(iov[0].iov_len, 4096u);
  EXPECT_EQ(contents(chain), first + second);
}

TEST_F(OutputChainTest, a_large_copy_is_split_over_pooled_buffers) {
  OutputChain chain;
  std::string big(200 * 1024, 'x');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  chain.append_copy(big);
  EXPECT_EQ(chain.pieces(), 4u);  // 64 + 64 + 64 + 8 KiB
  EXPECT_EQ(contents(chain), big);
  chain.clear();
  EXPECT_EQ(BufferPool::local().cached_bytes() >= 3 * 65536, true) << "the pieces went back to the pool";
  BufferPool::local().trim();
}

TEST_F(OutputChainTest, copies_never_write_into_a_buffer_the_caller_shares) {
  Slice owned = text("user");  // a 4 KiB buffer with free space after the four bytes
  OutputChain chain;
  chain.append_copy(std::string_view("a"));
  chain.append(owned);
  chain.append_copy(std::string_view("z"));
  EXPECT_EQ(chain.pieces(), 3u);
  EXPECT_EQ(contents(chain), "auserz");
}

TEST_F(OutputChainTest, copies_keep_filling_a_partly_written_tail) {
  OutputChain chain;
  chain.append_copy(std::string_view("hello "));
  chain.advance(3);
  chain.append_copy(std::string_view("world"));
  EXPECT_EQ(chain.pieces(), 1u);
  EXPECT_EQ(contents(chain), "lo world");
  chain.advance(chain.bytes());
  chain.append_copy(std::string_view("again"));
  EXPECT_EQ(contents(chain), "again");
}

TEST_F(OutputChainTest, iovecs_stay_valid_while_more_is_appended) {
  OutputChain chain = chain_of_pieces();
  chain.append_copy(std::string_view("tail"));
  iovec iov[8];
  const std::size_t n = chain.fill_iovecs(iov, 8);
  const std::string before = gather(iov, n);
  for (int i = 0; i < 100; ++i) {  // grows the ring several times and fills the tail buffer
    chain.append(text("more"));
    chain.append_copy(std::string_view("copied"));
  }
  EXPECT_EQ(gather(iov, n), before);
  EXPECT_EQ(before, all_pieces() + "tail");
}

TEST_F(OutputChainTest, clear_releases_everything) {
  OutputChain chain = chain_of_pieces();
  chain.append_copy(std::string_view("tail"));
  chain.clear();
  EXPECT_TRUE(chain.empty());
  EXPECT_EQ(chain.pieces(), 0u);
  EXPECT_EQ(BufferPool::local().outstanding(), 0u);
}

TEST_F(OutputChainTest, a_100_mib_chain_drained_by_random_partial_writes_copies_nothing) {
  constexpr std::size_t kPiece = 64 * 1024;
  constexpr std::size_t kTotal = 100 * 1024 * 1024;
  Slice block = Slice::copy_of(std::string(kPiece, 'z'));  // every piece shares this one buffer
  const std::uint64_t before = bytes_copied();
  OutputChain chain;
  for (std::size_t i = 0; i < kTotal / kPiece; ++i) chain.append(block);
  ASSERT_EQ(chain.bytes(), kTotal);
  ASSERT_EQ(chain.pieces(), kTotal / kPiece);

  std::mt19937_64 rng(20240501);
  std::size_t written = 0;
  iovec iov[64];
  while (!chain.empty()) {
    const std::size_t count = chain.fill_iovecs(iov, 64);
    std::size_t offered = 0;
    for (std::size_t i = 0; i < count; ++i) offered += iov[i].iov_len;
    // The first iovec must start exactly where the previous write stopped.
    ASSERT_EQ(iov[0].iov_base, block.data() + written % kPiece);
    // A short write, at most a typical socket buffer's worth.
    const std::size_t n = std::uniform_int_distribution<std::size_t>(1, std::min<std::size_t>(offered, 300000))(rng);
    chain.advance(n);
    written += n;
    ASSERT_EQ(chain.bytes(), kTotal - written);
  }
  EXPECT_EQ(written, kTotal);
  EXPECT_EQ(bytes_copied(), before);
  EXPECT_EQ(block.buffer()->refs, 1u);
}

TEST_F(OutputChainTest, steady_appends_and_writes_allocate_nothing) {
  Slice body = text("response body");
  OutputChain chain;
  iovec iov[16];
  for (int i = 0; i < 100; ++i) {  // warm-up: ring and pool reach their working size
    chain.append_copy(std::string_view("HTTP/1.1 200 OK\r\n\r\n"));
    chain.append(body);
    chain.advance(chain.bytes());
  }
  const std::size_t news_before = testing::operator_new_calls();
  std::size_t filled = 0;
  for (int i = 0; i < 10000; ++i) {
    chain.append_copy(std::string_view("HTTP/1.1 200 OK\r\n\r\n"));
    chain.append(body);
    filled += chain.fill_iovecs(iov, 16);
    chain.advance(5);
    chain.advance(chain.bytes());
  }
  EXPECT_EQ(testing::operator_new_calls() - news_before, 0u);
  EXPECT_EQ(filled, 20000u);
}

TEST_F(OutputChainTest, advancing_past_the_end_aborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        OutputChain chain;
        chain.append_copy(std::string_view("abc"));
        chain.advance(4);
      },
      "assertion failed");
}

}  // namespace
}  // namespace ringlet

