// reply_test.cpp — the server's replies, byte for byte as beanstalkd sends them, and read back by the client's
// reply parser (client.hpp): every reply word round-trips.
#include "ringlet/proto/beanstalk/reply.hpp"

#include <gtest/gtest.h>

#include <string>

#include "ringlet/buf/copy_counter.hpp"
#include "ringlet/proto/beanstalk/client.hpp"
#include "support/output_text.hpp"

namespace ringlet::beanstalk {
namespace {

using testing::drain_to_string;

class BeanstalkReplyTest : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_EQ(BufferPool::local().outstanding(), 0u) << "a buffer was not released"; }
};

TEST_F(BeanstalkReplyTest, every_word_without_arguments_is_exact) {
  const std::pair<ReplyKind, const char*> words[] = {
      {ReplyKind::deleted, "DELETED\r\n"},
      {ReplyKind::released, "RELEASED\r\n"},
      {ReplyKind::buried, "BURIED\r\n"},
      {ReplyKind::touched, "TOUCHED\r\n"},
      {ReplyKind::kicked, "KICKED\r\n"},
      {ReplyKind::not_found, "NOT_FOUND\r\n"},
      {ReplyKind::timed_out, "TIMED_OUT\r\n"},
      {ReplyKind::deadline_soon, "DEADLINE_SOON\r\n"},
      {ReplyKind::not_ignored, "NOT_IGNORED\r\n"},
      {ReplyKind::paused, "PAUSED\r\n"},
      {ReplyKind::out_of_memory, "OUT_OF_MEMORY\r\n"},
      {ReplyKind::internal_error, "INTERNAL_ERROR\r\n"},
      {ReplyKind::draining, "DRAINING\r\n"},
      {ReplyKind::bad_format, "BAD_FORMAT\r\n"},
      {ReplyKind::unknown_command, "UNKNOWN_COMMAND\r\n"},
      {ReplyKind::expected_crlf, "EXPECTED_CRLF\r\n"},
      {ReplyKind::job_too_big, "JOB_TOO_BIG\r\n"},
  };
  for (const auto& [kind, text] : words) {
    OutputChain out;
    compose(out, kind);
    EXPECT_EQ(drain_to_string(out), text);
  }
}

TEST_F(BeanstalkReplyTest, replies_with_arguments_are_exact) {
  OutputChain out;
  compose_inserted(out, 18446744073709551615ull);
  compose_buried(out, 7);
  compose_using(out, "default");
  compose_watching(out, 2);
  compose_kicked(out, 0);
  EXPECT_EQ(drain_to_string(out),
            "INSERTED 18446744073709551615\r\nBURIED 7\r\nUSING default\r\nWATCHING 2\r\nKICKED 0\r\n");
}

TEST_F(BeanstalkReplyTest, a_job_body_is_appended_without_copying) {
  Slice body = Slice::copy_of(std::string(5000, 'j'));
  OutputChain out;
  const std::uint64_t before = bytes_copied();
  compose_reserved(out, 42, body);
  compose_found(out, 43, Slice{});
  const std::string head = "RESERVED 42 5000\r\n";
  EXPECT_EQ(bytes_copied() - before, head.size() + 2 + std::string("FOUND 43 0\r\n\r\n").size())
      << "only the reply lines and the CRLFs are copied";
  EXPECT_EQ(out.pieces(), 3u);  // line, body, "\r\n" + the FOUND reply coalesced behind it
  EXPECT_EQ(drain_to_string(out), head + std::string(5000, 'j') + "\r\nFOUND 43 0\r\n\r\n");
}

TEST_F(BeanstalkReplyTest, yaml_documents_look_like_beanstalkd_s) {
  std::string yaml;
  YamlWriter(yaml).quoted("name", "default").field("current-jobs-ready", 3u).field("pause", std::int64_t{-1})
      .field("draining", "false");
  EXPECT_EQ(yaml, "---\nname: \"default\"\ncurrent-jobs-ready: 3\npause: -1\ndraining: false\n");
  std::string list;
  YamlWriter(list).item("default").item("t1");
  EXPECT_EQ(list, "---\n- default\n- t1\n");
  OutputChain out;
  compose_ok(out, list);
  EXPECT_EQ(drain_to_string(out), "OK 19\r\n---\n- default\n- t1\n\r\n");
}

// What the client reads back from each composed reply.
TEST_F(BeanstalkReplyTest, every_reply_round_trips_through_the_client_parser) {
  for (std::size_t i = 0; i < kReplyKindCount; ++i) {
    const auto kind = static_cast<ReplyKind>(i);
    OutputChain out;
    switch (reply_spec(kind).args) {
      case ReplyArgs::none:
      case ReplyArgs::optional_id:
      case ReplyArgs::optional_count: compose(out, kind); break;
      case ReplyArgs::id: compose_inserted(out, 5); break;
      case ReplyArgs::tube: compose_using(out, "t"); break;
      case ReplyArgs::count: compose_watching(out, 5); break;
      case ReplyArgs::id_bytes:
        if (kind == ReplyKind::reserved) {
          compose_reserved(out, 5, Slice::copy_of("abc"));
        } else {
          compose_found(out, 5, Slice::copy_of("abc"));
        }
        break;
      case ReplyArgs::bytes: compose_ok(out, "---\n"); break;
    }
    SliceQueue q;
    q.push(Slice::copy_of(drain_to_string(out)));
    ReplyParser parser;
    ASSERT_EQ(parser.parse(q), ReplyParseStatus::complete) << reply_word(kind);
    const ReplyLine& r = parser.reply();
    EXPECT_TRUE(r.ok()) << reply_word(kind);
    EXPECT_EQ(r.kind, kind);
    if (r.has_body()) {
      ReplyBody b = take_reply_body(q, r.bytes);
      EXPECT_EQ(b.status, ReplyBody::Status::complete) << reply_word(kind);
    }
    EXPECT_TRUE(q.empty()) << reply_word(kind);
  }
}

}  // namespace
}  // namespace ringlet::beanstalk
