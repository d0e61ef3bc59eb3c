// response_parser_test.cpp — the client-side response parser: table-driven over every truncation point.
#include "ringlet/proto/http/response_parser.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ringlet::http {
namespace {

struct Case {
  const char* name;
  std::string bytes;  // one whole response, possibly followed by the start of the next
  bool head_request;
  // Expected:
  bool ok;
  int status;
  BodyFraming framing;
  std::uint64_t content_length;
  bool keep_alive;
  std::string body;  // decoded body (for until_close: everything after the head)
};

std::vector<Case> cases() {
  return {
      {"content_length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, true, 200, BodyFraming::length,
       5, true, "hello"},
      {"no_reason", "HTTP/1.1 204\r\n\r\n", false, true, 204, BodyFraming::none, 0, true, ""},
      {"empty_reason", "HTTP/1.1 200 \r\ncontent-length: 0\r\n\r\n", false, true, 200, BodyFraming::length, 0, true,
       ""},
      {"bare_lf", "HTTP/1.1 200 OK\nContent-Length: 2\n\nhi", false, true, 200, BodyFraming::length, 2, true, "hi"},
      {"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;x=y\r\n, w\r\n0\r\n\r\n",
       false, true, 200, BodyFraming::chunked, 0, true, "hello, w"},
      {"chunked_beats_length",
       "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n", false,
       true, 200, BodyFraming::chunked, 0, true, "ab"},
      {"until_close_http10", "HTTP/1.0 200 OK\r\nServer: x\r\n\r\nall of it", false, true, 200,
       BodyFraming::until_close, 0, false, "all of it"},
      {"http10_keep_alive", "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nz", false, true,
       200, BodyFraming::length, 1, true, "z"},
      {"connection_close", "HTTP/1.1 503 Busy\r\nConnection: upgrade, close\r\nContent-Length: 0\r\n\r\n", false, true,
       503, BodyFraming::length, 0, false, ""},
      {"not_modified_has_no_body", "HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\n\r\n", false, true, 304,
       BodyFraming::none, 0, true, ""},
      {"head_has_no_body", "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", true, true, 200, BodyFraming::none, 0,
       true, ""},
      {"interim_100", "HTTP/1.1 100 Continue\r\n\r\n", false, true, 100, BodyFraming::none, 0, true, ""},
      {"equal_lengths_listed", "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\nabc", false, true, 200,
       BodyFraming::length, 3, true, "abc"},
      {"ows_around_value", "HTTP/1.1 200 OK\r\nContent-Length:\t 2 \r\n\r\nok", false, true, 200, BodyFraming::length,
       2, true, "ok"},
      // Errors.
      {"conflicting_lengths", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", false, false, 0,
       BodyFraming::none, 0, false, ""},
      {"bad_length", "HTTP/1.1 200 OK\r\nContent-Length: 3x\r\n\r\n", false, false, 0, BodyFraming::none, 0, false,
       ""},
      {"length_overflow", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n", false, false, 0,
       BodyFraming::none, 0, false, ""},
      {"obs_fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", false, false, 0, BodyFraming::none, 0, false, ""},
      {"space_before_colon", "HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\n", false, false, 0, BodyFraming::none, 0,
       false, ""},
      {"http2", "HTTP/2 200 OK\r\n\r\n", false, false, 0, BodyFraming::none, 0, false, ""},
      {"short_status", "HTTP/1.1 20 OK\r\n\r\n", false, false, 0, BodyFraming::none, 0, false, ""},
      {"status_099", "HTTP/1.1 099 Hm\r\n\r\n", false, false, 0, BodyFraming::none, 0, false, ""},
      {"no_space_after_code", "HTTP/1.1 200OK\r\n\r\n", false, false, 0, BodyFraming::none, 0, false, ""},
      {"blank_first_line", "\r\nHTTP/1.1 200 OK\r\n\r\n", false, false, 0, BodyFraming::none, 0, false, ""},
      {"ctl_in_value", std::string("HTTP/1.1 200 OK\r\nX: a\x01 b\r\n\r\n"), false, false, 0, BodyFraming::none, 0,
       false, ""},
      {"bare_cr_in_value", "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", false, false, 0, BodyFraming::none, 0, false, ""},
      {"no_colon", "HTTP/1.1 200 OK\r\nJunk\r\n\r\n", false, false, 0, BodyFraming::none, 0, false, ""},
  };
}

// Parses `bytes` fed in two steps split at `cut` (head, then the body in pieces), as a client would.
// Returns false on a parse error; fills head and the decoded body.
bool parse_split(const Case& c, std::size_t cut, ResponseHead& head, std::string& body) {
  ResponseHeadParser parser;
  std::string_view all = c.bytes;
  HeadResult h = parser.parse(all.substr(0, cut), head, c.head_request);
  if (h.status == HeadResult::Status::error) return false;
  if (h.status == HeadResult::Status::need_more) {
    h = parser.parse(all, head, c.head_request);  // the same bytes plus the rest
    if (h.status != HeadResult::Status::complete) return false;
  }
  ResponseBodyReader reader;
  reader.start(head);
  std::size_t pos = h.consumed;
  // Feed the body in two pieces too: up to `cut` (if the cut lies in the body), then the rest, then EOF.
  std::size_t pieces[] = {std::max(pos, std::min(cut, all.size())), all.size()};
  for (std::size_t limit : pieces) {
    while (!reader.done() && pos < limit) {
      BodyStep s = reader.feed(all.substr(pos, limit - pos), false);
      if (s.status == BodyStep::Status::error) return false;
      body.append(s.data);
      pos += s.consumed;
      if (s.consumed == 0) break;
    }
  }
  if (!reader.done()) {
    BodyStep s = reader.feed({}, true);
    if (s.status != BodyStep::Status::done) return false;
  }
  return true;
}

TEST(ResponseParser, every_case_parses_the_same_at_every_truncation_point) {
  for (const Case& c : cases()) {
    for (std::size_t cut = 0; cut <= c.bytes.size(); ++cut) {
      SCOPED_TRACE(std::string(c.name) + " cut at " + std::to_string(cut));
      ResponseHead head;
      std::string body;
      bool ok = parse_split(c, cut, head, body);
      ASSERT_EQ(ok, c.ok);
      if (!ok) continue;
      EXPECT_EQ(head.status, c.status);
      EXPECT_EQ(head.framing, c.framing);
      if (c.framing == BodyFraming::length) {
        EXPECT_EQ(head.content_length, c.content_length);
      }
      EXPECT_EQ(head.keep_alive, c.keep_alive);
      EXPECT_EQ(body, c.body);
    }
  }
}

TEST(ResponseParser, a_truncated_head_needs_more_and_never_errors_early) {
  for (const Case& c : cases()) {
    if (!c.ok) continue;
    ResponseHeadParser fresh;
    ResponseHead head;
    std::string_view all = c.bytes;
    HeadResult full = fresh.parse(all, head, c.head_request);
    ASSERT_EQ(full.status, HeadResult::Status::complete) << c.name;
    for (std::size_t cut = 0; cut < full.consumed; ++cut) {
      ResponseHeadParser p;
      EXPECT_EQ(p.parse(all.substr(0, cut), head, c.head_request).status, HeadResult::Status::need_more)
          << c.name << " cut " << cut;
    }
  }
}

TEST(ResponseParser, fields_and_reason_are_views_into_the_input) {
  std::string bytes = "HTTP/1.1 404 Not Found\r\nServer: t\r\nContent-Length: 0\r\n\r\n";
  ResponseHeadParser p;
  ResponseHead head;
  ResponseField fields[4];
  HeadResult h = p.parse(bytes, head, false, fields);
  ASSERT_EQ(h.status, HeadResult::Status::complete);
  EXPECT_EQ(h.consumed, bytes.size());
  EXPECT_EQ(head.reason, "Not Found");
  EXPECT_GE(head.reason.data(), bytes.data());
  EXPECT_LT(head.reason.data(), bytes.data() + bytes.size());
  ASSERT_EQ(head.field_count, 2u);
  EXPECT_EQ(fields[0].name, "Server");
  EXPECT_EQ(fields[0].value, "t");
  EXPECT_EQ(fields[1].name, "Content-Length");
}

TEST(ResponseParser, pipelined_responses_are_consumed_one_at_a_time) {
  std::string bytes =
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab"
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nc\r\n0\r\n\r\n"
      "HTTP/1.1 404 NF\r\nContent-Length: 0\r\n\r\n";
  std::string_view in = bytes;
  std::vector<int> statuses;
  std::string bodies;
  ResponseHeadParser p;
  ResponseBodyReader r;
  while (!in.empty()) {
    ResponseHead head;
    HeadResult h = p.parse(in, head);
    ASSERT_EQ(h.status, HeadResult::Status::complete);
    in.remove_prefix(h.consumed);
    statuses.push_back(head.status);
    r.start(head);
    while (!r.done()) {
      BodyStep s = r.feed(in, false);
      ASSERT_NE(s.status, BodyStep::Status::error);
      bodies.append(s.data);
      in.remove_prefix(s.consumed);
    }
  }
  EXPECT_EQ(statuses, (std::vector<int>{200, 200, 404}));
  EXPECT_EQ(bodies, "abc");
}

TEST(ResponseParser, a_body_cut_short_by_eof_is_an_error) {
  ResponseHead head;
  head.framing = BodyFraming::length;
  head.content_length = 10;
  ResponseBodyReader r;
  r.start(head);
  EXPECT_EQ(r.feed("12345", false).status, BodyStep::Status::need_more);
  EXPECT_EQ(r.feed("", true).status, BodyStep::Status::error);
}

TEST(ResponseParser, a_head_over_the_limit_is_an_error_not_a_wait) {
  ResponseLimits limits;
  limits.max_head_bytes = 64;
  ResponseHeadParser p(limits);
  ResponseHead head;
  std::string bytes = "HTTP/1.1 200 OK\r\nX: " + std::string(100, 'a');
  EXPECT_EQ(p.parse(bytes, head).status, HeadResult::Status::error);
}

TEST(ResponseParser, a_slow_head_is_scanned_for_line_ends_once) {
  // Resume: feeding one byte at a time from the same start still completes, and gives the same result.
  std::string bytes = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nContent-Length: 1\r\n\r\nx";
  ResponseHeadParser p;
  ResponseHead head;
  HeadResult h{HeadResult::Status::need_more};
  std::size_t n = 0;
  while (h.status == HeadResult::Status::need_more) h = p.parse(std::string_view(bytes).substr(0, ++n), head);
  ASSERT_EQ(h.status, HeadResult::Status::complete);
  EXPECT_EQ(h.consumed, bytes.size() - 1);
  EXPECT_EQ(head.content_length, 1u);
}

}  // namespace
}  // namespace ringlet::http
