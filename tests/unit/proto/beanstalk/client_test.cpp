// client_test.cpp — the client side: command lines byte for byte (and read back by the server's parser), reply
// lines over a table of well-formed, malformed and unknown replies, and the reply parser at every split.
#include "ringlet/proto/beanstalk/client.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ringlet/buf/copy_counter.hpp"
#include "ringlet/proto/beanstalk/request_parser.hpp"
#include "support/output_text.hpp"

namespace ringlet::beanstalk {
namespace {

using testing::drain_to_string;

class BeanstalkClientTest : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_EQ(BufferPool::local().outstanding(), 0u) << "a buffer was not released"; }
};

TEST_F(BeanstalkClientTest, command_lines_are_exact) {
  EXPECT_EQ(CommandLine::bare(Command::reserve).view(), "reserve\r\n");
  EXPECT_EQ(CommandLine::bare(Command::list_tubes_watched).view(), "list-tubes-watched\r\n");
  EXPECT_EQ(CommandLine::with_tube(Command::use, "t1").view(), "use t1\r\n");
  EXPECT_EQ(CommandLine::with_number(Command::reserve_with_timeout, 5).view(), "reserve-with-timeout 5\r\n");
  EXPECT_EQ(CommandLine::with_number(Command::delete_job, 18446744073709551615ull).view(),
            "delete 18446744073709551615\r\n");
  EXPECT_EQ(CommandLine::put(7, 2, 60, 40).view(), "put 7 2 60 40\r\n");
  EXPECT_EQ(CommandLine::release(1, 2, 3).view(), "release 1 2 3\r\n");
  EXPECT_EQ(CommandLine::bury(1, 2).view(), "bury 1 2\r\n");
  EXPECT_EQ(CommandLine::pause_tube("t", 9).view(), "pause-tube t 9\r\n");
}

TEST_F(BeanstalkClientTest, the_longest_command_line_fits) {
  const std::string tube(200, 'x');
  CommandLine line = CommandLine::pause_tube(tube, 4294967295u);
  EXPECT_EQ(line.view().size(), kMaxCommandLine + 2);
}

// Every line the client spells is the command the server's parser reads.
TEST_F(BeanstalkClientTest, the_server_parser_reads_what_the_client_writes) {
  const CommandLine lines[] = {
      CommandLine::put(1, 2, 3, 0),
      CommandLine::with_tube(Command::use, "a"),
      CommandLine::bare(Command::reserve),
      CommandLine::with_number(Command::reserve_with_timeout, 4),
      CommandLine::with_number(Command::reserve_job, 5),
      CommandLine::with_number(Command::delete_job, 6),
      CommandLine::release(7, 8, 9),
      CommandLine::bury(10, 11),
      CommandLine::with_number(Command::touch, 12),
      CommandLine::with_tube(Command::watch, "b"),
      CommandLine::with_tube(Command::ignore, "c"),
      CommandLine::with_number(Command::peek, 13),
      CommandLine::bare(Command::peek_ready),
      CommandLine::bare(Command::peek_delayed),
      CommandLine::bare(Command::peek_buried),
      CommandLine::with_number(Command::kick, 14),
      CommandLine::with_number(Command::kick_job, 15),
      CommandLine::with_number(Command::stats_job, 16),
      CommandLine::with_tube(Command::stats_tube, "d"),
      CommandLine::bare(Command::stats),
      CommandLine::bare(Command::list_tubes),
      CommandLine::bare(Command::list_tube_used),
      CommandLine::bare(Command::list_tubes_watched),
      CommandLine::pause_tube("e", 17),
      CommandLine::bare(Command::quit),
  };
  static_assert(std::size(lines) == kCommandCount);
  for (std::size_t i = 0; i < kCommandCount; ++i) {
    SCOPED_TRACE(lines[i].view());
    Request r;
    ParseError e;
    std::string_view text = lines[i].view();
    ASSERT_TRUE(parse_command_line(text.substr(0, text.size() - 2), RequestLimits{}, r, e));
    EXPECT_EQ(r.command, static_cast<Command>(i));
  }
}

TEST_F(BeanstalkClientTest, a_put_appends_its_body_without_copying) {
  Slice body = Slice::copy_of(std::string(3000, 'b'));
  OutputChain out;
  const std::uint64_t before = bytes_copied();
  compose_put(out, 1, 0, 60, body);
  EXPECT_EQ(bytes_copied() - before, std::string("put 1 0 60 3000\r\n\r\n").size());
  EXPECT_EQ(out.pieces(), 3u);
  EXPECT_EQ(drain_to_string(out), "put 1 0 60 3000\r\n" + std::string(3000, 'b') + "\r\n");
}

struct LineCase {
  std::string line;
  ReplyStatus status;
  ReplyKind kind = ReplyKind::bad_format;
  std::uint64_t id = 0;
  std::uint64_t count = 0;
  std::uint64_t bytes = 0;
  std::string tube;
};

TEST_F(BeanstalkClientTest, reply_lines_parse_into_kind_and_numbers) {
  const LineCase cases[] = {
      {"INSERTED 42", ReplyStatus::ok, ReplyKind::inserted, 42},
      {"BURIED 42", ReplyStatus::ok, ReplyKind::buried, 42},
      {"BURIED", ReplyStatus::ok, ReplyKind::buried},
      {"USING t1", ReplyStatus::ok, ReplyKind::using_tube, 0, 0, 0, "t1"},
      {"RESERVED 9 64", ReplyStatus::ok, ReplyKind::reserved, 9, 0, 64},
      {"FOUND 18446744073709551615 0", ReplyStatus::ok, ReplyKind::found, 18446744073709551615ull},
      {"WATCHING 2", ReplyStatus::ok, ReplyKind::watching, 0, 2},
      {"KICKED 3", ReplyStatus::ok, ReplyKind::kicked, 0, 3},
      {"KICKED", ReplyStatus::ok, ReplyKind::kicked},
      {"OK 10", ReplyStatus::ok, ReplyKind::ok, 0, 0, 10},
      {"DELETED", ReplyStatus::ok, ReplyKind::deleted},
      {"NOT_FOUND", ReplyStatus::ok, ReplyKind::not_found},
      {"JOB_TOO_BIG", ReplyStatus::ok, ReplyKind::job_too_big},
      {"NOT_FOUND junk", ReplyStatus::malformed, ReplyKind::not_found},
      {"INSERTED", ReplyStatus::malformed, ReplyKind::inserted},
      {"INSERTED x", ReplyStatus::malformed, ReplyKind::inserted},
      {"INSERTED  4", ReplyStatus::malformed, ReplyKind::inserted},
      {"INSERTED +4", ReplyStatus::malformed, ReplyKind::inserted},
      {"INSERTED 18446744073709551616", ReplyStatus::malformed, ReplyKind::inserted},
      {"WATCHING 2 ", ReplyStatus::malformed, ReplyKind::watching, 0, 2},
      {"RESERVED 9", ReplyStatus::malformed, ReplyKind::reserved, 9},
      {"RESERVED 9 64 x", ReplyStatus::malformed, ReplyKind::reserved, 9, 0, 64},
      {"USING", ReplyStatus::malformed, ReplyKind::using_tube},
      {"USING ", ReplyStatus::malformed, ReplyKind::using_tube},
      {"DELETED x", ReplyStatus::malformed, ReplyKind::deleted},
      {"DELETEDX", ReplyStatus::unknown},
      {"deleted", ReplyStatus::unknown},
      {"", ReplyStatus::unknown},
  };
  for (const LineCase& c : cases) {
    SCOPED_TRACE(c.line);
    ReplyLine r = parse_reply_line(c.line);
    EXPECT_EQ(static_cast<int>(r.status), static_cast<int>(c.status));
    if (c.status == ReplyStatus::unknown) continue;
    EXPECT_EQ(r.kind, c.kind);
    EXPECT_EQ(r.id, c.id);
    EXPECT_EQ(r.count, c.count);
    EXPECT_EQ(r.bytes, c.bytes);
    EXPECT_EQ(r.tube, c.tube);
  }
}

// A stream of replies, each line followed by its body where it has one: the transcript is the same however the
// bytes arrive.
std::string reply_transcript(const std::vector<std::string>& pieces) {
  SliceQueue q;
  ReplyParser p;
  std::string out;
  std::uint64_t body = 0;
  bool in_body = false;
  for (const std::string& piece : pieces) {
    if (!piece.empty()) q.push(Slice::copy_of(piece));
    for (;;) {
      if (in_body) {
        ReplyBody b = take_reply_body(q, body);
        if (b.status == ReplyBody::Status::need_more) break;
        if (b.status == ReplyBody::Status::complete) {
          out += '[';  // appended piece by piece: GCC 12 warns falsely (-Wrestrict) on `"[" + std::string(...)`
          out += b.body.view();
          out += "]\n";
        } else {
          out += "no CRLF\n";
        }
        in_body = false;
        continue;
      }
      ReplyParseStatus s = p.parse(q);
      if (s == ReplyParseStatus::need_more) break;
      if (s == ReplyParseStatus::too_long) return out + "too long\n";
      const ReplyLine& r = p.reply();
      if (r.status == ReplyStatus::unknown) {
        out += "?\n";
      } else {
        out += std::string(reply_word(r.kind)) + (r.ok() ? "\n" : " malformed\n");
      }
      if (r.has_body()) {
        in_body = true;
        body = r.bytes;
      }
    }
  }
  return out;
}

TEST_F(BeanstalkClientTest, reply_streams_give_one_transcript_at_every_split) {
  const std::pair<std::string, std::string> streams[] = {
      {"INSERTED 1\r\nRESERVED 1 5\r\nhello\r\nDELETED\r\n", "INSERTED\nRESERVED\n[hello]\nDELETED\n"},
      {"FOUND 2 4\r\n\r\n\r\n\r\nOK 4\r\n---\n\r\nNOT_FOUND\r\n", "FOUND\n[\r\n\r\n]\nOK\n[---\n]\nNOT_FOUND\n"},
      {"RESERVED 1 2\r\nabXYWHAT\r\n", "RESERVED\nno CRLF\n?\n"},
      {"WATCHING x\r\n" + std::string(300, 'W'), "WATCHING malformed\ntoo long\n"},
  };
  for (const auto& [input, want] : streams) {
    EXPECT_EQ(reply_transcript({input}), want);
    for (std::size_t k = 0; k <= input.size(); ++k) {
      ASSERT_EQ(reply_transcript({input.substr(0, k), input.substr(k)}), want) << "split at " << k;
    }
    std::vector<std::string> bytes;
    for (char ch : input) bytes.emplace_back(1, ch);
    EXPECT_EQ(reply_transcript(bytes), want);
  }
}

}  // namespace
}  // namespace ringlet::beanstalk
