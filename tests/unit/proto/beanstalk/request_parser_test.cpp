// request_parser_test.cpp — beanstalkd command lines, as a server reads them. Every case is a byte stream (one or
// more pipelined commands, put bodies included) and the transcript a server would see: one line per command or
// error. Each stream is fed whole, split in two at every position, and one byte at a time: the transcript must be
// the same every time (every truncation point, every split).
#include "ringlet/proto/beanstalk/request_parser.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ringlet/buf/copy_counter.hpp"
#include "ringlet/proto/beanstalk/reply.hpp"

namespace ringlet::beanstalk {
namespace {

class BeanstalkRequestParserTest : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_EQ(BufferPool::local().outstanding(), 0u) << "a buffer was not released"; }
};

std::string word_of(ParseError e) {
  switch (e) {
    case ParseError::bad_format: return std::string(reply_word(ReplyKind::bad_format));
    case ParseError::unknown_command: return std::string(reply_word(ReplyKind::unknown_command));
    case ParseError::job_too_big: return std::string(reply_word(ReplyKind::job_too_big));
  }
  return "?";
}

// "name arg arg ...": the command and the arguments its table row names, in order.
std::string render(const Request& r) {
  std::string out(command_name(r.command));
  const CommandSpec* spec = find_command(out + " ");
  for (std::uint8_t i = 0; i < spec->arity; ++i) {
    out += ' ';
    switch (spec->args[i]) {
      case Arg::id: out += std::to_string(r.id); break;
      case Arg::priority: out += std::to_string(r.priority); break;
      case Arg::delay: out += std::to_string(r.delay); break;
      case Arg::ttr: out += std::to_string(r.ttr); break;
      case Arg::bytes: out += std::to_string(r.bytes); break;
      case Arg::timeout: out += std::to_string(r.timeout); break;
      case Arg::bound: out += std::to_string(r.bound); break;
      case Arg::tube:
      case Arg::tube_word: out += r.tube; break;
    }
  }
  return out;
}

// What a server loop would do with `pieces` arriving one after the other.
std::string transcript(const std::vector<std::string>& pieces, const RequestLimits& limits) {
  SliceQueue q;
  RequestParser p(limits);
  std::string out;
  bool in_body = false;
  std::uint32_t body_bytes = 0;
  for (const std::string& piece : pieces) {
    if (!piece.empty()) q.push(Slice::copy_of(piece));
    for (;;) {
      if (in_body) {
        PutBody b = take_put_body(q, body_bytes);
        if (b.status == PutBody::Status::need_more) break;
        out += b.status == PutBody::Status::complete ? " [" + std::string(b.body.view()) + "]\n" : " EXPECTED_CRLF\n";
        in_body = false;
        continue;
      }
      ParseResult r = p.parse(q);
      if (r.need_more()) break;
      if (r.error()) {
        out += word_of(r.code) + "\n";
        continue;
      }
      out += render(p.request());
      if (p.request().command == Command::put) {
        in_body = true;
        body_bytes = p.request().bytes;
      } else {
        out += "\n";
      }
    }
  }
  if (in_body || p.swallowing()) out += "(incomplete)\n";
  return out;
}

struct Case {
  const char* name;
  std::string input;
  std::string want;
};

const std::string kTube200(200, 't');

std::vector<Case> cases() {
  return {
      // Every command, well formed.
      {"put", "put 0 0 60 5\r\nhello\r\n", "put 0 0 60 5 [hello]\n"},
      {"put_extremes", "put 4294967295 4294967295 4294967295 0\r\n\r\n",
       "put 4294967295 4294967295 4294967295 0 []\n"},
      {"put_spaces_and_zeros", "put  007  0 0   3\r\nabc\r\n", "put 7 0 0 3 [abc]\n"},
      {"put_body_holding_line_ends", "put 1 0 1 4\r\n\r\n\r\n\r\nquit\r\n", "put 1 0 1 4 [\r\n\r\n]\nquit\n"},
      {"use", "use foo\r\n", "use foo\n"},
      {"use_every_tube_byte", "use aZ09-+/;.$_()\r\n", "use aZ09-+/;.$_()\n"},
      {"use_200_byte_tube", "use " + kTube200 + "\r\n", "use " + kTube200 + "\n"},
      {"reserve", "reserve\r\n", "reserve\n"},
      {"reserve_with_timeout", "reserve-with-timeout 0\r\nreserve-with-timeout 2147483647\r\n",
       "reserve-with-timeout 0\nreserve-with-timeout 2147483647\n"},
      {"reserve_with_timeout_ignores_the_rest", "reserve-with-timeout  5x y\r\n", "reserve-with-timeout 5\n"},
      {"reserve_job", "reserve-job 18446744073709551615\r\n", "reserve-job 18446744073709551615\n"},
      {"delete", "delete 1\r\n", "delete 1\n"},
      {"release", "release 1 2 3\r\n", "release 1 2 3\n"},
      {"bury", "bury 1 2\r\n", "bury 1 2\n"},
      {"touch", "touch 9\r\n", "touch 9\n"},
      {"watch_ignore", "watch a\r\nignore b\r\n", "watch a\nignore b\n"},
      {"peeks", "peek 3\r\npeek-ready\r\npeek-delayed\r\npeek-buried\r\n",
       "peek 3\npeek-ready\npeek-delayed\npeek-buried\n"},
      {"kick", "kick 10\r\n", "kick 10\n"},
      {"kick_ignores_the_rest", "kick 3 jobs\r\n", "kick 3\n"},
      {"kick_job", "kick-job 4\r\n", "kick-job 4\n"},
      {"stats", "stats\r\nstats-job 4\r\nstats-tube t\r\n", "stats\nstats-job 4\nstats-tube t\n"},
      {"lists", "list-tubes\r\nlist-tube-used\r\nlist-tubes-watched\r\n",
       "list-tubes\nlist-tube-used\nlist-tubes-watched\n"},
      {"pause_tube", "pause-tube t 10\r\n", "pause-tube t 10\n"},
      {"pause_tube_without_space_like_beanstalkd", "pause-tubefoo 5\r\n", "pause-tube foo 5\n"},
      {"quit", "quit\r\n", "quit\n"},
      {"quit_ignores_the_rest", "quit now\r\n", "quit\n"},
      // The line limit: 222 bytes before the CRLF.
      {"longest_line", "pause-tube " + kTube200 + " 0000000005\r\n", "pause-tube " + kTube200 + " 5\n"},
      {"line_one_byte_too_long", "pause-tube " + kTube200 + " 00000000005\r\nstats\r\n", "BAD_FORMAT\nstats\n"},
      {"long_garbage_line", std::string(300, 'x') + "\r\nreserve\r\n", "BAD_FORMAT\nreserve\n"},
      {"long_line_with_bare_cr_and_lf", std::string(230, 'a') + "\r" + "b\n" + "c\r\nstats\r\n",
       "BAD_FORMAT\nstats\n"},
      // Names.
      {"empty_line_fuzz_regression_1", "\r\n", "UNKNOWN_COMMAND\n"},
      {"unknown", "foo\r\n", "UNKNOWN_COMMAND\n"},
      {"names_are_case_sensitive", "PUT 0 0 1 1\r\n", "UNKNOWN_COMMAND\n"},
      {"word_without_its_space", "delete\r\nuse\r\nput\r\npeek\r\nkick\r\ntouch\r\n",
       "UNKNOWN_COMMAND\nUNKNOWN_COMMAND\nUNKNOWN_COMMAND\nUNKNOWN_COMMAND\nUNKNOWN_COMMAND\nUNKNOWN_COMMAND\n"},
      {"tab_is_not_a_space", "delete\t5\r\n", "UNKNOWN_COMMAND\n"},
      {"prefix_with_trailing_bytes", "reservex\r\nreserve 5\r\nstatsx\r\nlist-tubesx\r\npeek-readyx\r\n",
       "BAD_FORMAT\nBAD_FORMAT\nBAD_FORMAT\nBAD_FORMAT\nBAD_FORMAT\n"},
      {"longer_names_without_arguments_fall_to_their_prefix",
       "stats-job\r\nstats-tube\r\nreserve-job\r\nreserve-with-timeout\r\n",
       "BAD_FORMAT\nBAD_FORMAT\nBAD_FORMAT\nBAD_FORMAT\n"},
      // Numbers.
      {"trailing_space", "delete 5 \r\n", "BAD_FORMAT\n"},
      {"signs", "delete +5\r\ndelete -5\r\nkick +5\r\nkick -1\r\n",
       "BAD_FORMAT\nBAD_FORMAT\nBAD_FORMAT\nBAD_FORMAT\n"},
      {"not_a_number", "delete x\r\ndelete \r\ndelete 5x\r\n", "BAD_FORMAT\nBAD_FORMAT\nBAD_FORMAT\n"},
      {"id_overflow", "delete 18446744073709551616\r\n", "BAD_FORMAT\n"},
      {"u32_overflow", "put 4294967296 0 0 1\r\nkick 4294967296\r\nbury 1 99999999999\r\n",
       "BAD_FORMAT\nBAD_FORMAT\nBAD_FORMAT\n"},
      {"timeout_over_int_max", "reserve-with-timeout 2147483648\r\n", "BAD_FORMAT\n"},
      {"put_missing_argument", "put 1 2 3\r\n", "BAD_FORMAT\n"},
      {"put_trailing_bytes", "put 1 2 3 4 \r\nput 1x 2 3 4\r\n", "BAD_FORMAT\nBAD_FORMAT\n"},
      {"release_and_bury_arity", "release 1 2\r\nbury 1\r\nrelease 1 2 3 4\r\n",
       "BAD_FORMAT\nBAD_FORMAT\nBAD_FORMAT\n"},
      // Tubes.
      {"tube_too_long", "use " + kTube200 + "t\r\n", "BAD_FORMAT\n"},
      {"tube_bad_bytes", "use foo bar\r\nuse  foo\r\nuse foo \r\nuse -foo\r\nuse foo*\r\nuse \r\n",
       "BAD_FORMAT\nBAD_FORMAT\nBAD_FORMAT\nBAD_FORMAT\nBAD_FORMAT\nBAD_FORMAT\n"},
      {"pause_tube_errors", "pause-tube t\r\npause-tube t 5 \r\npause-tube -t 5\r\n",
       "BAD_FORMAT\nBAD_FORMAT\nBAD_FORMAT\n"},
      // Bytes that are never part of a command.
      {"nul", std::string("use a\0b\r\nquit\0\r\n", 16), "BAD_FORMAT\nBAD_FORMAT\n"},
      {"stray_cr", "reserve\r\r\n", "BAD_FORMAT\n"},
      {"bare_lf_is_part_of_the_line", "reserve\nreserve\r\n", "BAD_FORMAT\n"},
      // put bodies.
      {"job_too_big_swallows_the_body", "put 0 0 60 11\r\nhello world\r\nreserve\r\n", "JOB_TOO_BIG\nreserve\n"},
      {"job_too_big_before_trailing_bytes", "put 0 0 60 11 x\r\nhello world\r\nstats\r\n", "JOB_TOO_BIG\nstats\n"},
      {"body_at_the_limit", "put 0 0 60 10\r\n0123456789\r\n", "put 0 0 60 10 [0123456789]\n"},
      {"body_not_followed_by_crlf", "put 0 0 60 5\r\nhelloXYstats\r\n", "put 0 0 60 5 EXPECTED_CRLF\nstats\n"},
      {"body_incomplete", "put 0 0 60 5\r\nhel", "put 0 0 60 5(incomplete)\n"},
      {"swallowing_incomplete", "put 0 0 60 50\r\nhel", "JOB_TOO_BIG\n(incomplete)\n"},
      {"pipelined", "use a\r\nput 1 0 1 2\r\nhi\r\nwatch a\r\nreserve\r\ndelete 1\r\n",
       "use a\nput 1 0 1 2 [hi]\nwatch a\nreserve\ndelete 1\n"},
  };
}

RequestLimits test_limits() {
  RequestLimits l;
  l.max_job_size = 10;
  return l;
}

TEST_F(BeanstalkRequestParserTest, every_case_whole) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(transcript({c.input}, test_limits()), c.want);
  }
}

TEST_F(BeanstalkRequestParserTest, every_case_split_in_two_at_every_point) {
  for (const Case& c : cases()) {
    for (std::size_t k = 0; k <= c.input.size(); ++k) {
      SCOPED_TRACE(std::string(c.name) + " split at " + std::to_string(k));
      ASSERT_EQ(transcript({c.input.substr(0, k), c.input.substr(k)}, test_limits()), c.want);
    }
  }
}

TEST_F(BeanstalkRequestParserTest, every_case_one_byte_at_a_time) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    std::vector<std::string> bytes;
    for (char ch : c.input) bytes.emplace_back(1, ch);
    EXPECT_EQ(transcript(bytes, test_limits()), c.want);
  }
}

TEST_F(BeanstalkRequestParserTest, every_truncation_point_asks_for_more_and_never_errs_early) {
  // A prefix of a well-formed command is never an error and never complete.
  const std::string line = "put 1 2 3 4\r\n";
  for (std::size_t k = 0; k < line.size(); ++k) {
    SliceQueue q;
    if (k > 0) q.push(Slice::copy_of(line.substr(0, k)));
    RequestParser p;
    EXPECT_TRUE(p.parse(q).need_more()) << k;
    EXPECT_EQ(q.bytes(), k) << "need_more consumes nothing";
  }
}

TEST_F(BeanstalkRequestParserTest, a_complete_line_reports_what_it_consumed_and_views_into_the_line) {
  SliceQueue q;
  q.push(Slice::copy_of("use tubby\r\nNEXT"));
  RequestParser p;
  ParseResult r = p.parse(q);
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.consumed, 11u);
  EXPECT_EQ(p.request().tube, "tubby");
  EXPECT_EQ(q.bytes(), 4u);
}

TEST_F(BeanstalkRequestParserTest, a_line_inside_one_buffer_is_not_copied) {
  SliceQueue q;
  q.push(Slice::copy_of("put 0 0 60 5\r\nhello\r\nuse t\r\n"));
  const std::uint64_t before = bytes_copied();
  RequestParser p;
  ASSERT_TRUE(p.parse(q).complete());
  PutBody body = take_put_body(q, p.request().bytes);
  ASSERT_EQ(body.status, PutBody::Status::complete);
  EXPECT_EQ(body.body.view(), "hello");
  ASSERT_TRUE(p.parse(q).complete());
  EXPECT_EQ(p.request().tube, "t");
  EXPECT_EQ(bytes_copied(), before);
}

TEST_F(BeanstalkRequestParserTest, a_slowly_arriving_line_is_not_rescanned) {
  const std::string line = "use " + kTube200 + "\r\n";
  SliceQueue q;
  RequestParser p;
  const std::uint64_t before = SliceQueue::bytes_scanned();
  for (char c : line) {
    q.push(Slice::copy_of(std::string_view(&c, 1)));
    if (p.parse(q).complete()) break;
  }
  EXPECT_EQ(p.request().tube, kTube200);
  EXPECT_LE(SliceQueue::bytes_scanned() - before, 3 * line.size());
}

TEST_F(BeanstalkRequestParserTest, a_rejected_body_is_swallowed_as_it_arrives_without_buffering) {
  SliceQueue q;
  RequestParser p;  // default limit: 65535
  q.push(Slice::copy_of("put 0 0 60 1000000\r\n"));
  ParseResult r = p.parse(q);
  ASSERT_TRUE(r.error());
  EXPECT_EQ(r.code, ParseError::job_too_big);
  const std::string chunk(4096, 'z');
  std::size_t fed = 0;
  while (fed < 1000000) {
    const std::size_t n = std::min(chunk.size(), 1000000 - fed);
    q.push(Slice::copy_of(std::string_view(chunk).substr(0, n)));
    fed += n;
    EXPECT_TRUE(p.parse(q).need_more());
    EXPECT_TRUE(q.empty()) << "swallowed bytes are not kept";
    EXPECT_TRUE(p.swallowing());
  }
  q.push(Slice::copy_of("\r\nstats\r\n"));
  ASSERT_TRUE(p.parse(q).complete());
  EXPECT_EQ(p.request().command, Command::stats);
  EXPECT_FALSE(p.swallowing());
}

TEST_F(BeanstalkRequestParserTest, drop_line_lets_go_of_the_receive_buffer) {
  SliceQueue q;
  q.push(Slice::copy_of("watch t\r\n"));
  RequestParser p;
  ASSERT_TRUE(p.parse(q).complete());
  EXPECT_EQ(BufferPool::local().outstanding(), 1u) << "the line's buffer, held for request()'s views";
  p.drop_line();
  EXPECT_EQ(BufferPool::local().outstanding(), 0u);
  EXPECT_EQ(p.request().command, Command::watch);
  EXPECT_TRUE(p.request().tube.empty());
}

TEST_F(BeanstalkRequestParserTest, every_command_name_is_in_the_table_once) {
  for (std::size_t i = 0; i < kCommandCount; ++i) {
    const auto c = static_cast<Command>(i);
    const CommandSpec* spec = find_command(std::string(command_name(c)) + " ");
    ASSERT_NE(spec, nullptr) << command_name(c);
    EXPECT_EQ(spec->command, c) << command_name(c);
  }
}

TEST_F(BeanstalkRequestParserTest, tube_names_follow_beanstalkd) {
  EXPECT_TRUE(valid_tube_name("default"));
  EXPECT_TRUE(valid_tube_name("a-"));
  EXPECT_TRUE(valid_tube_name(kTube200));
  EXPECT_FALSE(valid_tube_name(""));
  EXPECT_FALSE(valid_tube_name("-a"));
  EXPECT_FALSE(valid_tube_name(kTube200 + "t"));
  EXPECT_FALSE(valid_tube_name("a b"));
  EXPECT_FALSE(valid_tube_name("a\"b"));
}

}  // namespace
}  // namespace ringlet::beanstalk
