// chunked_test.cpp — the chunked decoder over tables of valid and malformed bodies, each fed whole, byte by byte,
// and split in two at every position: the decoded data, the end position and the error status must not depend on
// how the bytes arrived.
#include "ringlet/proto/http/chunked.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ringlet::http {
namespace {

struct Decoded {
  ChunkedStatus status = ChunkedStatus::need_more;
  std::string data;
  std::size_t consumed = 0;  // total bytes consumed
  std::uint16_t http_status = 0;
};

// Feeds `body` in pieces that end at the given cut points. A piece that is not fully consumed (the decoder
// stopped after a data run) is fed again from where it stopped, as a reader would.
Decoded decode_pieces(std::string_view body, const std::vector<std::size_t>& cuts, ChunkedLimits limits = {}) {
  ChunkedDecoder dec(limits);
  Decoded out;
  std::size_t start = 0;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(body.size());
  for (std::size_t end : ends) {
    // Each piece gets its own copy: a read past its end is visible to ASan.
    while (start < end) {
      std::string piece(body.substr(start, end - start));
      ChunkedStep s = dec.decode(piece);
      EXPECT_LE(s.consumed, piece.size());
      out.consumed += s.consumed;
      start += s.consumed;
      out.data += s.data;
      if (s.status == ChunkedStatus::data) {
        EXPECT_FALSE(s.data.empty());
        EXPECT_GE(s.data.data(), piece.data());
        continue;
      }
      out.status = s.status;
      if (s.status == ChunkedStatus::error) {
        out.http_status = s.http_status;
        EXPECT_NE(s.reason, nullptr);
        return out;
      }
      if (s.status == ChunkedStatus::done) return out;
      EXPECT_EQ(s.consumed, piece.size());  // need_more consumes everything
      break;
    }
  }
  out.status = dec.done() ? ChunkedStatus::done : dec.failed() ? ChunkedStatus::error : ChunkedStatus::need_more;
  return out;
}

struct ValidBody {
  const char* name;
  std::string body;  // exactly the chunked body; tests append a pipelined request
  std::string data;
};

std::vector<ValidBody> valid_bodies() {
  return {
      {"empty", "0\r\n\r\n", ""},
      {"one_chunk", "5\r\nhello\r\n0\r\n\r\n", "hello"},
      {"two_chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world"},
      {"hex_upper_lower", "a\r\n0123456789\r\nA\r\nabcdefghij\r\n0\r\n\r\n", "0123456789abcdefghij"},
      {"leading_zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello"},
      {"data_with_crlf_inside", "4\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n"},
      {"extensions", "5;a=b;c;d=\"q \\\" ;x\"\r\nhello\r\n0;last\r\n\r\n", "hello"},
      {"extension_bws", "5 ; a = b ;c\r\nhello\r\n0 ;z\r\n\r\n", "hello"},
      {"trailers", "5\r\nhello\r\n0\r\nX-Sum: 42\r\nY: a b\r\n\r\n", "hello"},
      {"empty_trailer_value", "1\r\nx\r\n0\r\nX:\r\n\r\n", "x"},
      {"binary_data", std::string("3\r\n\0\n\r\r\n0\r\n\r\n", 13), std::string("\0\n\r", 3)},
  };
}

constexpr std::string_view kNext = "GET /next HTTP/1.1\r\n";

TEST(ChunkedDecoder, valid_bodies_decode_in_one_call) {
  for (const ValidBody& c : valid_bodies()) {
    SCOPED_TRACE(c.name);
    std::string input = c.body + std::string(kNext);
    Decoded d = decode_pieces(input, {});
    EXPECT_EQ(d.status, ChunkedStatus::done);
    EXPECT_EQ(d.data, c.data);
    EXPECT_EQ(d.consumed, c.body.size());  // stops exactly before the next request
  }
}

TEST(ChunkedDecoder, valid_bodies_decode_byte_by_byte) {
  for (const ValidBody& c : valid_bodies()) {
    SCOPED_TRACE(c.name);
    std::string input = c.body + std::string(kNext);
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < input.size(); ++i) cuts.push_back(i);
    Decoded d = decode_pieces(input, cuts);
    EXPECT_EQ(d.status, ChunkedStatus::done);
    EXPECT_EQ(d.data, c.data);
    EXPECT_EQ(d.consumed, c.body.size());
  }
}

TEST(ChunkedDecoder, valid_bodies_decode_at_every_two_way_split) {
  for (const ValidBody& c : valid_bodies()) {
    SCOPED_TRACE(c.name);
    std::string input = c.body + std::string(kNext);
    for (std::size_t cut = 0; cut <= input.size(); ++cut) {
      Decoded d = decode_pieces(input, {cut});
      EXPECT_EQ(d.status, ChunkedStatus::done) << "cut at " << cut;
      EXPECT_EQ(d.data, c.data) << "cut at " << cut;
      EXPECT_EQ(d.consumed, c.body.size()) << "cut at " << cut;
    }
  }
}

TEST(ChunkedDecoder, every_truncation_point_needs_more) {
  for (const ValidBody& c : valid_bodies()) {
    SCOPED_TRACE(c.name);
    for (std::size_t cut = 0; cut < c.body.size(); ++cut) {
      Decoded d = decode_pieces(std::string_view(c.body).substr(0, cut), {});
      EXPECT_EQ(d.status, ChunkedStatus::need_more) << "cut at " << cut;
      EXPECT_EQ(d.consumed, cut);
    }
  }
}

struct BadBody {
  const char* name;
  std::string body;
  int status;
  ChunkedLimits limits{};
};

ChunkedLimits small() {
  ChunkedLimits l;
  l.max_body_bytes = 10;
  l.max_extension_bytes = 8;
  l.max_trailer_bytes = 16;
  return l;
}

std::vector<BadBody> bad_bodies() {
  return {
      {"empty_size", "\r\nhello\r\n0\r\n\r\n", 400},
      {"non_hex_size", "g\r\n", 400},
      {"negative_size", "-5\r\nhello\r\n0\r\n\r\n", 400},
      {"size_prefix_0x", "0x5\r\nhello\r\n0\r\n\r\n", 400},
      {"bare_lf_after_size", "5\nhello\r\n0\r\n\r\n", 400},
      {"bare_cr_after_size", "5\rhello\r\n0\r\n\r\n", 400},
      {"bare_lf_after_data", "5\r\nhello\n0\r\n\r\n", 400},
      {"no_crlf_after_data", "5\r\nhelloX\r\n0\r\n\r\n", 400},
      {"bare_lf_last_chunk", "0\n\r\n", 400},
      {"bare_lf_final", "0\r\n\n", 400},
      {"bare_lf_in_extension", "5;a\nhello\r\n0\r\n\r\n", 400},
      {"bare_lf_in_quoted_extension", "5;a=\"x\ny\"\r\nhello\r\n0\r\n\r\n", 400},
      {"space_without_extension", "5 \r\nhello\r\n0\r\n\r\n", 400},
      {"extension_without_name", "5;\r\nhello\r\n0\r\n\r\n", 400},
      {"extension_bad_char", "5;a@b\r\nhello\r\n0\r\n\r\n", 400},
      {"extension_unterminated_quote", "5;a=\"x\r\nhello\r\n0\r\n\r\n", 400},
      {"extension_too_long", "5;aaaaaaaaaa\r\nhello\r\n0\r\n\r\n", 400, small()},
      {"size_too_many_digits", std::string(40, '0') + "5\r\nhello\r\n0\r\n\r\n", 400},
      {"size_overflows_64_bits", "10000000000000000\r\n", 413},
      {"size_over_limit", "b\r\n", 413, small()},
      {"sum_over_limit", "6\r\nhello!\r\n5\r\nhello\r\n0\r\n\r\n", 413, small()},
      {"trailer_obs_fold", "0\r\nX: a\r\n b\r\n\r\n", 400},
      {"trailer_space_before_colon", "0\r\nX : a\r\n\r\n", 400},
      {"trailer_no_colon", "0\r\nXa\r\n\r\n", 400},
      {"trailer_bare_lf", "0\r\nX: a\n\r\n", 400},
      {"trailer_ctl", "0\r\nX: a\x01\r\n\r\n", 400},
      {"trailers_too_large", "0\r\nX: aaaaaaaaaaaaaaaaaaaaaa\r\n\r\n", 431, small()},
  };
}

TEST(ChunkedDecoder, malformed_bodies_give_their_status_however_split) {
  for (const BadBody& c : bad_bodies()) {
    SCOPED_TRACE(c.name);
    Decoded whole = decode_pieces(c.body, {}, c.limits);
    ASSERT_EQ(whole.status, ChunkedStatus::error);
    EXPECT_EQ(whole.http_status, c.status);
    for (std::size_t cut = 0; cut <= c.body.size(); ++cut) {
      Decoded d = decode_pieces(c.body, {cut}, c.limits);
      EXPECT_EQ(d.status, ChunkedStatus::error) << "cut at " << cut;
      EXPECT_EQ(d.http_status, c.status) << "cut at " << cut;
      EXPECT_EQ(d.consumed, whole.consumed) << "cut at " << cut;  // the error is found at the same byte
    }
  }
}

TEST(ChunkedDecoder, errors_and_done_are_sticky) {
  ChunkedDecoder dec;
  EXPECT_EQ(dec.decode("x").status, ChunkedStatus::error);
  ChunkedStep again = dec.decode("0\r\n\r\n");
  EXPECT_EQ(again.status, ChunkedStatus::error);
  EXPECT_EQ(again.consumed, 0u);
  EXPECT_EQ(again.http_status, 400);
  ChunkedDecoder ok;
  EXPECT_EQ(ok.decode("0\r\n\r\n").status, ChunkedStatus::done);
  EXPECT_EQ(ok.decode("more").status, ChunkedStatus::done);
  EXPECT_EQ(ok.decode("more").consumed, 0u);
  ok.reset();
  EXPECT_EQ(ok.decode("1\r\n").status, ChunkedStatus::need_more);
}

TEST(ChunkedDecoder, large_chunk_comes_back_in_pieces_without_copy) {
  std::string body = "10000\r\n" + std::string(0x10000, 'z') + "\r\n0\r\n\r\n";
  ChunkedDecoder dec;
  std::string_view in(body);
  ChunkedStep s = dec.decode(in.substr(0, 1000));
  ASSERT_EQ(s.status, ChunkedStatus::data);
  EXPECT_EQ(s.data.data(), body.data() + 7);  // a view into the input
  EXPECT_EQ(s.data.size(), 1000u - 7);
  EXPECT_EQ(dec.chunk_remaining(), 0x10000u - 993);
  EXPECT_EQ(dec.body_bytes(), 0x10000u);
}

}  // namespace
}  // namespace ringlet::http
