#include "ringlet/loadgen/beanstalk_codec.hpp"

#include <gtest/gtest.h>
#include <sys/uio.h>

#include <string>
#include <vector>

#include "ringlet/buf/copy_counter.hpp"
#include "support/output_text.hpp"

namespace ringlet::loadgen::beanstalk {
namespace {

using Status = Reply::Status;

using testing::drain_to_string;

class BeanstalkCodecTest : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_EQ(BufferPool::local().outstanding(), 0u) << "a buffer was not released"; }
};

std::string body_of(const BodyPattern& p, std::uint64_t seed, std::size_t size) {
  char hdr[BodyPattern::kHeaderSize];
  p.header(seed, size, hdr);
  return std::string(hdr, sizeof hdr) + std::string(p.tail(seed, size).view());
}

TEST_F(BeanstalkCodecTest, commands_are_exact) {
  BodyPattern p(100);
  RequestWriter w(p);
  OutputChain chain;
  RequestSink sink(chain);
  w.use(sink, "t1");
  w.watch(sink, "t1");
  w.ignore(sink, "default");
  EXPECT_EQ(drain_to_string(chain), "use t1\r\nwatch t1\r\nignore default\r\n");
  w.put(sink, PutArgs{7, 2, 60}, 0xabcdef, 40);
  std::string body = body_of(p, 0xabcdef, 40);
  EXPECT_EQ(body.substr(0, 24), "0000000000abcdef00000028");
  EXPECT_EQ(drain_to_string(chain), "put 7 2 60 40\r\n" + body + "\r\n");
  w.reserve(sink, 5);
  w.reserve(sink, -1);
  w.delete_job(sink, 18446744073709551615ull);
  EXPECT_EQ(drain_to_string(chain), "reserve-with-timeout 5\r\nreserve\r\ndelete 18446744073709551615\r\n");
}

TEST_F(BeanstalkCodecTest, a_large_body_is_queued_as_a_view_of_the_pattern) {
  BodyPattern p(10000);
  RequestWriter w(p);
  OutputChain chain;
  RequestSink sink(chain);
  w.put(sink, PutArgs{}, 1, 10000);
  EXPECT_EQ(chain.pieces(), 3u);
  EXPECT_EQ(drain_to_string(chain), "put 1024 0 60 10000\r\n" + body_of(p, 1, 10000) + "\r\n");
}

struct Case {
  std::string name;
  Expect expect;
  std::string reply;
  Status want;
  std::string what;
  std::uint64_t id = 0;
};

std::vector<Case> cases(const BodyPattern& p) {
  std::string body = body_of(p, 77, 64);
  std::string bad = body;
  bad[40] ^= 1;
  std::string bad_header = body;
  bad_header[3] = 'x';
  std::string other_size = body_of(p, 77, 63);
  return {
      {"using", Expect::use, "USING t1\r\n", Status::complete, ""},
      {"watching", Expect::watch, "WATCHING 2\r\n", Status::complete, ""},
      {"watching_malformed", Expect::watch, "WATCHING x\r\n", Status::wrong, "unexpected reply to watch"},
      {"not_ignored", Expect::watch, "NOT_IGNORED\r\n", Status::wrong, "server replied NOT_IGNORED"},
      {"inserted", Expect::put, "INSERTED 42\r\n", Status::complete, "", 42},
      {"buried", Expect::put, "BURIED 42\r\n", Status::wrong, "put buried (server out of memory)"},
      {"expected_crlf", Expect::put, "EXPECTED_CRLF\r\n", Status::wrong, "server replied EXPECTED_CRLF"},
      {"job_too_big", Expect::put, "JOB_TOO_BIG\r\n", Status::wrong, "server replied JOB_TOO_BIG"},
      {"draining", Expect::put, "DRAINING\r\n", Status::wrong, "server replied DRAINING"},
      {"inserted_without_id", Expect::put, "INSERTED\r\n", Status::wrong, "unexpected reply to put"},
      {"reserved", Expect::reserve, "RESERVED 9 64\r\n" + body + "\r\n", Status::complete, "", 9},
      {"reserved_one_wrong_byte", Expect::reserve, "RESERVED 9 64\r\n" + bad + "\r\n", Status::wrong,
       "job body bytes differ"},
      {"reserved_wrong_header", Expect::reserve, "RESERVED 9 64\r\n" + bad_header + "\r\n", Status::wrong,
       "job body header differs"},
      {"reserved_size_mismatch", Expect::reserve, "RESERVED 9 64\r\n" + other_size + "X\r\n", Status::wrong,
       "job body header differs"},
      {"reserved_too_small", Expect::reserve, "RESERVED 9 5\r\nhello\r\n", Status::wrong,
       "reserved job has a size no ringlet job of this run has"},
      {"reserved_too_large", Expect::reserve, "RESERVED 9 100000\r\n", Status::wrong,
       "reserved job has a size no ringlet job of this run has"},
      {"reserved_without_crlf", Expect::reserve, "RESERVED 9 64\r\n" + body + "XY", Status::wrong,
       "job body not followed by CRLF"},
      {"reserved_malformed", Expect::reserve, "RESERVED 9\r\n", Status::wrong, "malformed RESERVED line"},
      {"timed_out", Expect::reserve, "TIMED_OUT\r\n", Status::wrong, "reserve timed out"},
      {"deadline_soon", Expect::reserve, "DEADLINE_SOON\r\n", Status::wrong, "reserve answered DEADLINE_SOON"},
      {"deleted", Expect::delete_job, "DELETED\r\n", Status::complete, ""},
      {"delete_not_found", Expect::delete_job, "NOT_FOUND\r\n", Status::wrong, "server replied NOT_FOUND"},
      {"out_of_memory", Expect::delete_job, "OUT_OF_MEMORY\r\n", Status::wrong, "server replied OUT_OF_MEMORY"},
      {"internal_error", Expect::put, "INTERNAL_ERROR\r\n", Status::wrong, "server replied INTERNAL_ERROR"},
      {"bad_format", Expect::reserve, "BAD_FORMAT\r\n", Status::wrong, "server replied BAD_FORMAT"},
      {"unknown_command", Expect::use, "UNKNOWN_COMMAND\r\n", Status::wrong, "server replied UNKNOWN_COMMAND"},
      {"garbage", Expect::delete_job, "DELETEDX\r\n", Status::wrong, "unexpected reply to delete"},
      {"line_too_long", Expect::put, std::string(300, 'I'), Status::wrong, "reply line too long"},
  };
}

// As in memcache_codec_test: the reply cut at `cuts`, then "NEXT" that must stay queued.
void feed(const Case& c, const BodyPattern& p, const std::vector<std::size_t>& cuts) {
  std::string where = c.name + " cut at";
  for (std::size_t k : cuts) {
    where += ' ';  // not `" " + to_string(k)`: GCC 12 warns falsely (-Wrestrict) on that form
    where += std::to_string(k);
  }
  SCOPED_TRACE(where);
  ReplyParser parser(p);
  parser.reset();
  const std::string input = c.reply + "NEXT";
  SliceQueue q;
  std::size_t begin = 0;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(input.size());
  Reply r = Reply::need_more();
  for (std::size_t end : ends) {
    if (end > begin) q.push(Slice::copy_of(std::string_view(input).substr(begin, end - begin)));
    begin = std::max(begin, end);
    r = parser.parse(q, c.expect);
    if (r.status == Status::wrong) break;
    if (begin < c.reply.size()) {
      ASSERT_STREQ(to_string(r.status), "need_more") << "with " << begin << " of " << c.reply.size() << " bytes";
    }
    if (r.status == Status::complete) break;
  }
  ASSERT_STREQ(to_string(r.status), to_string(c.want));
  if (begin < input.size()) q.push(Slice::copy_of(std::string_view(input).substr(begin)));
  if (r.status == Status::wrong) {
    EXPECT_EQ(std::string(r.what), c.what);
  } else {
    EXPECT_EQ(parser.job_id(), c.id);
    ASSERT_EQ(q.bytes(), 4u) << "the reply, and only it, is consumed";
    EXPECT_EQ(q.take_exactly(4).frame.view(), "NEXT");
  }
}

TEST_F(BeanstalkCodecTest, every_reply_whole) {
  BodyPattern p(64);
  for (const Case& c : cases(p)) feed(c, p, {});
}

TEST_F(BeanstalkCodecTest, every_reply_at_every_cut) {
  BodyPattern p(64);
  for (const Case& c : cases(p))
    for (std::size_t k = 0; k <= c.reply.size(); ++k) feed(c, p, {k});
}

TEST_F(BeanstalkCodecTest, every_reply_byte_by_byte) {
  BodyPattern p(64);
  for (const Case& c : cases(p)) {
    std::vector<std::size_t> cuts;
    for (std::size_t k = 1; k < c.reply.size(); ++k) cuts.push_back(k);
    feed(c, p, cuts);
  }
}

TEST_F(BeanstalkCodecTest, a_body_inside_one_buffer_is_checked_without_copying_payload) {
  BodyPattern p(5000);
  ReplyParser parser(p);
  parser.reset();
  SliceQueue q;
  q.push(Slice::copy_of("RESERVED 1 5000\r\n" + body_of(p, 5, 5000) + "\r\n"));
  std::uint64_t before = bytes_copied();
  EXPECT_EQ(parser.parse(q, Expect::reserve).status, Status::complete);
  EXPECT_EQ(bytes_copied(), before);
}

TEST_F(BeanstalkCodecTest, a_job_of_any_size_up_to_the_maximum_verifies) {
  BodyPattern p(1000);
  for (std::size_t size : {24u, 25u, 536u, 537u, 1000u}) {
    SCOPED_TRACE(size);
    RequestWriter w(p);
    OutputChain chain;
    RequestSink sink(chain);
    w.put(sink, PutArgs{}, 99, size);
    std::string put = drain_to_string(chain);
    std::string body = put.substr(put.find("\r\n") + 2, size);
    ReplyParser parser(p);
    parser.reset();
    SliceQueue q;
    q.push(Slice::copy_of("RESERVED 3 " + std::to_string(size) + "\r\n" + body + "\r\n"));
    EXPECT_EQ(parser.parse(q, Expect::reserve).status, Status::complete);
  }
}

}  // namespace
}  // namespace ringlet::loadgen::beanstalk
