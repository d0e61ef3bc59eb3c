// reply_test.cpp — the server's reply composer: exact bytes on the wire, and a value's data appended as a view of
// the caller's buffer, never copied.
#include "ringlet/proto/memcache/reply.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "ringlet/buf/copy_counter.hpp"
#include "support/output_text.hpp"

namespace ringlet::memcache {
namespace {

using testing::drain_to_string;

class MemcacheReplyTest : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_EQ(BufferPool::local().outstanding(), 0u) << "a buffer was not released"; }
};

TEST_F(MemcacheReplyTest, text_replies_are_exact) {
  OutputChain out;
  write_value(out, "k", 5, Slice::copy_of("hello"));
  write_value(out, "key2", 4294967295u, Slice::copy_of("x"), 18446744073709551615ull);
  write_value(out, "empty", 0, Slice{});
  write_line(out, wire::kEnd);
  EXPECT_EQ(drain_to_string(out),
            "VALUE k 5 5\r\nhello\r\nVALUE key2 4294967295 1 18446744073709551615\r\nx\r\nVALUE empty 0 0\r\n\r\nEND\r\n");
  for (std::string_view line : {wire::kStored, wire::kNotStored, wire::kExists, wire::kNotFound, wire::kDeleted,
                                wire::kTouched, wire::kOk, wire::kError}) {
    write_line(out, line);
    EXPECT_EQ(drain_to_string(out), std::string(line) + "\r\n");
  }
  write_number(out, 0);
  write_number(out, 18446744073709551615ull);
  write_version(out, "1.6.18");
  write_stat(out, "pid", 42);
  write_stat(out, "version", "1.6.18");
  write_line(out, wire::kBadDataChunk);
  write_line(out, wire::kTooLarge);
  write_client_error(out, "something");
  write_server_error(out, "out of memory");
  EXPECT_EQ(drain_to_string(out),
            "0\r\n18446744073709551615\r\nVERSION 1.6.18\r\nSTAT pid 42\r\nSTAT version 1.6.18\r\n"
            "CLIENT_ERROR bad data chunk\r\nSERVER_ERROR object too large for cache\r\n"
            "CLIENT_ERROR something\r\nSERVER_ERROR out of memory\r\n");
}

TEST_F(MemcacheReplyTest, meta_replies_carry_the_returned_flags_in_order) {
  OutputChain out;
  MetaFlagWriter flags;
  write_meta(out, wire::kMetaHd, flags);
  write_meta(out, wire::kMetaEn, flags);
  flags.add('c', std::uint64_t{77});
  flags.add('O', "opaque");
  flags.add('t', std::int64_t{-1});
  flags.add('k', "key");
  flags.add('W');
  write_meta(out, wire::kMetaHd, flags);
  write_meta_value(out, Slice::copy_of("data"), flags);
  flags.clear();
  flags.add('f', std::uint64_t{5});
  write_meta_value(out, Slice{}, flags);
  write_meta(out, wire::kMetaMn, MetaFlagWriter{});
  EXPECT_EQ(drain_to_string(out),
            "HD\r\nEN\r\nHD c77 Oopaque t-1 kkey W\r\nVA 4 c77 Oopaque t-1 kkey W\r\ndata\r\nVA 0 f5\r\n\r\nMN\r\n");
}

TEST_F(MemcacheReplyTest, a_flag_that_does_not_fit_is_dropped_and_reported) {
  MetaFlagWriter flags;
  std::string big(MetaFlagWriter::kCapacity, 'x');
  flags.add('k', "key");
  flags.add('O', big);
  EXPECT_TRUE(flags.overflowed());
  EXPECT_EQ(flags.text(), " kkey");
}

TEST_F(MemcacheReplyTest, a_value_is_appended_without_copying_its_bytes) {
  Slice value = Slice::copy_of(std::string(10000, 'v'));
  OutputChain out;
  std::uint64_t before = bytes_copied();
  write_value(out, "k", 1, value);
  EXPECT_LT(bytes_copied() - before, 64u) << "only the header line and the CRLF are copied";
  EXPECT_EQ(out.pieces(), 3u) << "header, the value's own buffer, CRLF";
  std::string wire = drain_to_string(out);
  EXPECT_EQ(wire, "VALUE k 1 10000\r\n" + std::string(10000, 'v') + "\r\n");
}

}  // namespace
}  // namespace ringlet::memcache
