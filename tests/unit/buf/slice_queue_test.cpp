#include "ringlet/buf/slice_queue.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "ringlet/buf/copy_counter.hpp"
#include "support/allocation_counter.hpp"
#include "support/fake_ring.hpp"

namespace ringlet {
namespace {

class SliceQueueTest : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_EQ(BufferPool::local().outstanding(), 0u) << "a buffer was not released"; }
};

using Status = FrameResult::Status;

Slice text(std::string_view s) { return Slice::copy_of(s); }

// ---- the table: one framing reader applied repeatedly to one input ------------------------------------------------

enum class Op { line, until, exactly };

struct Case {
  const char* name;
  std::string input;
  Op op;
  std::string delim;  // for until
  std::size_t arg;    // max_len for line/until, n for exactly
};

const std::vector<Case>& cases() {
  static const std::vector<Case> table = {
      {"lines", "hello\nworld\n", Op::line, "", 64},
      {"crlf_lines", "a\r\nbc\r\n\r\nd", Op::line, "", 64},
      {"empty_lines", "\n\n\r\n\n", Op::line, "", 0},
      {"bare_cr_stays_inside_the_line", "x\ry\r\r\n", Op::line, "", 64},
      {"no_newline", "no newline at all", Op::line, "", 64},
      {"line_at_max_len", "abc\nabc\r\n", Op::line, "", 3},
      {"line_over_max_len", "abcd\n", Op::line, "", 3},
      {"line_over_max_len_without_newline", "abcdefgh", Op::line, "", 3},
      {"cr_then_too_long", "abc\rX\n", Op::line, "", 3},
      {"http_head", "GET / HTTP/1.1\r\nHost: a\r\n\r\nbody", Op::until, "\r\n\r\n", 100},
      {"overlapping_delimiter_prefix", "\r\n\r\r\n\r\nrest", Op::until, "\r\n\r\n", 100},
      {"repeated_delimiter_chars", "a--b----c--", Op::until, "--", 10},
      {"self_overlapping_delimiter", "aaab aab aaaab", Op::until, "aab", 10},
      {"until_over_max_len", "xyzzy::", Op::until, "::", 3},
      {"until_partial_delimiter_then_too_long", "ab:c", Op::until, "::", 2},
      {"until_at_max_len", "abc::de::", Op::until, "::", 3},
      {"exactly_one", "abc", Op::exactly, "", 1},
      {"exactly_three", "0123456789ab", Op::exactly, "", 3},
      {"exactly_with_rest", "0123456789", Op::exactly, "", 4},
      {"exactly_all", "0123456789abcdef", Op::exactly, "", 16},
  };
  return table;
}

struct Expected {
  Status status;
  std::string frame;
  std::size_t consumed = 0;
};

// The reference: the naive reading of the framing rules over all the bytes available so far.
Expected reference(std::string_view avail, const Case& c) {
  switch (c.op) {
    case Op::line: {
      const std::size_t max_len = c.arg;
      const std::size_t nl = avail.substr(0, max_len + 2).find('\n');
      if (nl == std::string_view::npos)
        return {avail.size() >= max_len + 2 ? Status::too_long : Status::need_more, "", 0};
      const std::size_t len = nl > 0 && avail[nl - 1] == '\r' ? nl - 1 : nl;
      if (len > max_len) return {Status::too_long, "", 0};
      return {Status::frame, std::string(avail.substr(0, len)), nl + 1};
    }
    case Op::until: {
      const std::string_view d = c.delim;
      for (std::size_t start = 0; start <= c.arg; ++start) {
        if (start >= avail.size()) return {Status::need_more, "", 0};
        const std::string_view rest = avail.substr(start, d.size());
        if (rest == d) return {Status::frame, std::string(avail.substr(0, start)), start + d.size()};
        if (d.starts_with(rest)) return {Status::need_more, "", 0};  // a partial delimiter at the end
      }
      return {Status::too_long, "", 0};
    }
    case Op::exactly:
      if (avail.size() < c.arg) return {Status::need_more, "", 0};
      return {Status::frame, std::string(avail.substr(0, c.arg)), c.arg};
  }
  return {};
}

FrameResult run(SliceQueue& q, const Case& c) {
  switch (c.op) {
    case Op::line:
      return q.take_line(c.arg);
    case Op::until:
      return q.take_until(c.delim, c.arg);
    case Op::exactly:
      return q.take_exactly(c.arg);
  }
  return {};
}

const char* name(Status s) {
  switch (s) {
    case Status::frame:
      return "frame";
    case Status::need_more:
      return "need_more";
    case Status::too_long:
      return "too_long";
  }
  return "?";
}

// Feeds `input` cut at `cuts` (each piece in its own buffer) and, after every push, takes frames until the reader
// asks for more. Checks each answer against the reference, and that a frame inside one piece is a view into that
// piece's buffer (nothing copied) while a frame across pieces costs exactly its length in copies.
void feed(const Case& c, const std::vector<std::size_t>& cuts) {
  std::string where = c.name;
  where += " cut at";
  for (std::size_t k : cuts) {
    where += ' ';
    where += std::to_string(k);
  }
  SCOPED_TRACE(where);

  struct Piece {
    std::size_t start;
    Buffer* buffer;
  };
  std::vector<Piece> pieces;
  SliceQueue q;
  std::string avail;
  std::size_t consumed = 0;  // stream offset of avail[0]
  std::size_t begin = 0;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(c.input.size());
  for (const std::size_t end : ends) {
    if (end > begin) {
      Slice s = text(std::string_view(c.input).substr(begin, end - begin));
      pieces.push_back({begin, s.buffer()});
      q.push(std::move(s));
      avail += c.input.substr(begin, end - begin);
    }
    begin = end;
    for (;;) {
      const Expected want = reference(avail, c);
      const std::uint64_t copied_before = bytes_copied();
      FrameResult got = run(q, c);
      const std::uint64_t copied = bytes_copied() - copied_before;
      ASSERT_EQ(name(got.status), name(want.status)) << "with " << avail.size() << " bytes buffered";
      if (got.status != Status::frame) {
        EXPECT_EQ(copied, 0u);
        EXPECT_EQ(q.bytes(), avail.size()) << "only a frame consumes";
        break;
      }
      EXPECT_EQ(got.frame.view(), want.frame);
      // Which piece holds the frame's first byte, and does the frame run past that piece?
      const std::size_t len = want.frame.size();
      std::size_t p = 0;
      while (p + 1 < pieces.size() && pieces[p + 1].start <= consumed) ++p;
      const bool straddles = len > 0 && p + 1 < pieces.size() && pieces[p + 1].start < consumed + len;
      if (len == 0) {
        EXPECT_EQ(copied, 0u);
      } else if (straddles) {
        EXPECT_EQ(copied, len) << "a straddling frame is copied once";
      } else {
        EXPECT_EQ(copied, 0u) << "a frame inside one slice is a view";
        EXPECT_EQ(got.frame.buffer(), pieces[p].buffer);
      }
      avail.erase(0, want.consumed);
      consumed += want.consumed;
      EXPECT_EQ(q.bytes(), avail.size());
    }
  }
}

TEST_F(SliceQueueTest, every_reader_matches_the_reference_when_the_input_is_whole) {
  for (const Case& c : cases()) feed(c, {});
}

TEST_F(SliceQueueTest, every_reader_matches_the_reference_at_every_single_cut) {
  for (const Case& c : cases())
    for (std::size_t k = 0; k <= c.input.size(); ++k) feed(c, {k});
}

TEST_F(SliceQueueTest, every_reader_matches_the_reference_at_every_pair_of_cuts) {
  for (const Case& c : cases())
    for (std::size_t k1 = 0; k1 <= c.input.size(); ++k1)
      for (std::size_t k2 = k1; k2 <= c.input.size(); ++k2) feed(c, {k1, k2});
}

TEST_F(SliceQueueTest, every_reader_matches_the_reference_byte_by_byte) {
  for (const Case& c : cases()) {
    std::vector<std::size_t> cuts;
    for (std::size_t k = 1; k < c.input.size(); ++k) cuts.push_back(k);
    feed(c, cuts);
  }
}

// ---- single behaviours --------------------------------------------------------------------------------------------

TEST_F(SliceQueueTest, a_line_inside_one_slice_is_a_view_into_the_received_buffer) {
  SliceQueue q;
  q.push(text("first\r\nsecond\n"));
  Buffer* received = q.front().buffer();
  const std::uint64_t before = bytes_copied();
  FrameResult a = q.take_line(100);
  FrameResult b = q.take_line(100);
  EXPECT_EQ(bytes_copied(), before);
  EXPECT_EQ(a.frame.view(), "first");
  EXPECT_EQ(b.frame.view(), "second");
  EXPECT_EQ(a.frame.buffer(), received);
  EXPECT_EQ(b.frame.buffer(), received);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.slice_count(), 0u);
}

TEST_F(SliceQueueTest, a_straddling_line_is_copied_exactly_once) {
  SliceQueue q;
  q.push(text("stra"));
  q.push(text("ddl"));
  q.push(text("ing\r"));
  q.push(text("\nnext"));
  const std::uint64_t before = bytes_copied();
  FrameResult r = q.take_line(100);
  EXPECT_EQ(bytes_copied() - before, std::string_view("straddling").size());
  EXPECT_EQ(r.frame.view(), "straddling");
  EXPECT_EQ(q.bytes(), 4u);
  EXPECT_EQ(q.slice_count(), 1u);
}

TEST_F(SliceQueueTest, a_frame_survives_the_queue_that_produced_it) {
  Slice frame;
  {
    SliceQueue q;
    q.push(text("keep me\nand drop the rest"));
    frame = q.take_line(100).frame;
  }
  EXPECT_EQ(frame.view(), "keep me");
  EXPECT_EQ(BufferPool::local().outstanding(), 1u);
}

TEST_F(SliceQueueTest, adjacent_receives_into_one_buffer_are_joined_so_frames_never_straddle) {
  Slice received = text("GET /a\r\nGET /b\r\n");
  SliceQueue q;
  q.push(received.sub(0, 4));  // "GET "
  q.push(received.sub(4, 6));  // "/a\r\nGE"
  q.push(received.sub(10, 6));
  received.reset();
  EXPECT_EQ(q.slice_count(), 1u);
  const std::uint64_t before = bytes_copied();
  EXPECT_EQ(q.take_line(100).frame.view(), "GET /a");
  EXPECT_EQ(q.take_line(100).frame.view(), "GET /b");
  EXPECT_EQ(bytes_copied(), before);
}

TEST_F(SliceQueueTest, a_resumed_line_search_examines_each_byte_once) {
  const std::string line(2000, 'x');
  SliceQueue q;
  const std::uint64_t scanned_before = SliceQueue::bytes_scanned();
  for (char ch : line) {
    q.push(text(std::string_view(&ch, 1)));
    ASSERT_EQ(q.take_line(10000).status, Status::need_more);
  }
  q.push(text("\n"));
  FrameResult r = q.take_line(10000);
  ASSERT_EQ(r.status, Status::frame);
  EXPECT_EQ(r.frame.view(), line);
  EXPECT_EQ(SliceQueue::bytes_scanned() - scanned_before, line.size() + 1);  // a rescan would be ~2 million
}

TEST_F(SliceQueueTest, a_resumed_multibyte_search_does_not_rescan_from_the_start) {
  // Every slice ends in half a delimiter, the worst case for the positions that straddle slices.
  const std::string_view delim = "\r\n\r\n";
  SliceQueue q;
  std::size_t pushed = 0;
  const std::uint64_t scanned_before = SliceQueue::bytes_scanned();
  for (int i = 0; i < 500; ++i) {
    q.push(text("ab\r\n"));
    pushed += 4;
    ASSERT_EQ(q.take_until(delim, 100000).status, Status::need_more);
  }
  q.push(text("\r\n"));
  pushed += 2;
  ASSERT_EQ(q.take_until(delim, 100000).status, Status::frame);
  // Each start position is tried once and compares at most delim.size() bytes; rescanning from the start on every
  // call would examine about 500 * 2000 / 2 = 500,000 bytes.
  EXPECT_LE(SliceQueue::bytes_scanned() - scanned_before, delim.size() * pushed);
}

TEST_F(SliceQueueTest, switching_delimiters_restarts_the_search) {
  SliceQueue q;
  q.push(text("key: value;"));
  EXPECT_EQ(q.take_line(100).status, Status::need_more);
  FrameResult r = q.take_until(": ", 100);
  ASSERT_EQ(r.status, Status::frame);
  EXPECT_EQ(r.frame.view(), "key");
  r = q.take_until(";", 100);
  ASSERT_EQ(r.status, Status::frame);
  EXPECT_EQ(r.frame.view(), "value");
}

TEST_F(SliceQueueTest, too_long_consumes_nothing_and_stays_too_long) {
  SliceQueue q;
  q.push(text("0123456789"));
  EXPECT_EQ(q.take_line(4).status, Status::too_long);
  EXPECT_EQ(q.bytes(), 10u);
  q.push(text("\n"));
  EXPECT_EQ(q.take_line(4).status, Status::too_long);
  // A larger limit on the same data finds the line.
  FrameResult r = q.take_line(10);
  ASSERT_EQ(r.status, Status::frame);
  EXPECT_EQ(r.frame.view(), "0123456789");
}

TEST_F(SliceQueueTest, take_line_strips_only_one_cr) {
  SliceQueue q;
  q.push(text("a\r\r\n"));
  EXPECT_EQ(q.take_line(10).frame.view(), "a\r");
}

TEST_F(SliceQueueTest, take_exactly_zero_is_an_empty_frame) {
  SliceQueue q;
  FrameResult r = q.take_exactly(0);
  EXPECT_EQ(r.status, Status::frame);
  EXPECT_TRUE(r.frame.empty());
  EXPECT_EQ(r.frame.buffer(), nullptr);
}

TEST_F(SliceQueueTest, take_exactly_the_whole_front_slice_hands_it_over) {
  SliceQueue q;
  q.push(text("abcd"));
  q.push(text("efgh"));
  Buffer* first = q.front().buffer();
  FrameResult r = q.take_exactly(4);
  EXPECT_EQ(r.frame.buffer(), first);
  EXPECT_EQ(r.frame.buffer()->refs, 1u);
  EXPECT_EQ(q.slice_count(), 1u);
}

TEST_F(SliceQueueTest, pop_front_returns_whole_slices_without_copying) {
  SliceQueue q;
  q.push(text("one"));
  q.push(text("two"));
  const std::uint64_t before = bytes_copied();
  EXPECT_EQ(q.pop_front().view(), "one");
  EXPECT_EQ(q.pop_front().view(), "two");
  EXPECT_TRUE(q.pop_front().empty());
  EXPECT_EQ(bytes_copied(), before);
}

TEST_F(SliceQueueTest, copy_out_copies_and_consumes_across_slices) {
  SliceQueue q;
  q.push(text("abc"));
  q.push(text("defg"));
  std::byte dst[5];
  const std::uint64_t before = bytes_copied();
  EXPECT_EQ(q.copy_out(dst), 5u);
  EXPECT_EQ(bytes_copied() - before, 5u);
  EXPECT_EQ(std::string_view(reinterpret_cast<const char*>(dst), 5), "abcde");
  EXPECT_EQ(q.bytes(), 2u);
  EXPECT_EQ(q.copy_out(dst), 2u);
  EXPECT_TRUE(q.empty());
}

TEST_F(SliceQueueTest, consume_drops_whole_and_partial_slices) {
  SliceQueue q;
  q.push(text("abc"));
  q.push(text("def"));
  q.consume(4);
  EXPECT_EQ(q.bytes(), 2u);
  EXPECT_EQ(q.slice_count(), 1u);
  EXPECT_EQ(q.front().view(), "ef");
  EXPECT_EQ(BufferPool::local().outstanding(), 1u);
  q.clear();
  EXPECT_TRUE(q.empty());
}

TEST_F(SliceQueueTest, empty_slices_are_not_queued) {
  SliceQueue q;
  q.push(Slice());
  EXPECT_EQ(q.slice_count(), 0u);
  EXPECT_EQ(q.take_line(10).status, Status::need_more);
}

TEST_F(SliceQueueTest, a_steady_stream_of_receives_and_frames_allocates_nothing) {
  SliceQueue q;
  for (int i = 0; i < 100; ++i) {  // warm-up: the ring and the pool reach their working size
    q.push(text("pi"));
    q.push(text("ng\r\n"));
    q.take_line(100);
  }
  const std::size_t news_before = testing::operator_new_calls();
  const std::size_t cached_before = BufferPool::local().cached_bytes();
  bool all_frames = true;
  for (int i = 0; i < 10000; ++i) {
    q.push(text("pi"));
    q.push(text("ng\r\n"));  // straddles: exercises the pooled copy too
    all_frames &= q.take_line(100).frame.view() == "ping";
  }
  EXPECT_EQ(testing::operator_new_calls() - news_before, 0u);
  EXPECT_EQ(BufferPool::local().cached_bytes(), cached_before) << "buffers came from and went back to the cache";
  EXPECT_TRUE(all_frames);
}

TEST_F(SliceQueueTest, compacting_a_partial_line_keeps_the_search_where_it_was) {
  testing::FakeRing kernel_ring(16);
  SliceQueue q;
  const std::string line(5000, 'x');
  for (std::size_t at = 0; at < line.size(); at += 1000) q.push(kernel_ring.lend(std::string_view(line).substr(at, 1000)));
  EXPECT_EQ(q.take_line(SIZE_MAX).status, Status::need_more);
  const std::uint64_t scanned_before = SliceQueue::bytes_scanned();
  EXPECT_EQ(q.compact(), line.size());
  EXPECT_EQ(kernel_ring.lent(), 0u);
  q.push(kernel_ring.lend("yz\r\nnext"));
  FrameResult f = q.take_line(SIZE_MAX);
  ASSERT_EQ(f.status, Status::frame);
  EXPECT_EQ(f.frame.view(), line + "yz");
  EXPECT_LT(SliceQueue::bytes_scanned() - scanned_before, 16u) << "the compacted bytes were searched again";
  EXPECT_EQ(q.bytes(), 4u);
  q.clear();
  f.frame.reset();
  EXPECT_EQ(kernel_ring.lent(), 0u);
}

}  // namespace
}  // namespace ringlet

