#include "ringlet/loadgen/memcache_codec.hpp"

#include <gtest/gtest.h>
#include <sys/uio.h>

#include "ringlet/buf/copy_counter.hpp"
#include "support/output_text.hpp"

#include <string>
#include <vector>

namespace ringlet::loadgen::memcache {
namespace {

using Status = Reply::Status;

using testing::drain_to_string;

class MemcacheCodecTest : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_EQ(BufferPool::local().outstanding(), 0u) << "a buffer was not released"; }
};

// The bytes of the value of (key, version), built independently of ValuePattern::matches.
std::string value_of(const KeySpace&, const ValuePattern& p, std::uint64_t key, std::uint32_t version) {
  char hdr[ValuePattern::kHeaderSize];
  p.header(key, version, hdr);
  std::string v(hdr, std::min(p.value_size(), ValuePattern::kHeaderSize));
  v += p.tail(key, version).view();
  return v;
}

std::string key_of(const KeySpace& ks, std::uint64_t k) {
  std::string s(ks.key_size(), '?');
  ks.write(k, s.data());
  return s;
}

// ---- requests ---------------------------------------------------------------------------------------------------

TEST_F(MemcacheCodecTest, text_requests_are_exact) {
  KeySpace ks(1000, 6);
  ValuePattern values(20);
  RequestWriter w(Protocol::text, ks, values);
  OutputChain chain;
  RequestSink sink(chain);
  std::uint64_t keys[] = {7, 999, 7};
  w.get(sink, keys);
  EXPECT_EQ(drain_to_string(chain), "get k00007 k00999 k00007\r\n");
  w.set(sink, 42, 3000000000u, Quiet::no);
  EXPECT_EQ(drain_to_string(chain), "set k00042 3000000000 0 20\r\n" + value_of(ks, values, 42, 3000000000u) + "\r\n");
  w.set(sink, 42, 5, Quiet::yes);
  EXPECT_EQ(drain_to_string(chain), "set k00042 5 0 20 noreply\r\n" + value_of(ks, values, 42, 5) + "\r\n");
  w.barrier(sink, 42);
  EXPECT_EQ(drain_to_string(chain), "get k00042\r\n");
}

TEST_F(MemcacheCodecTest, meta_requests_are_exact) {
  KeySpace ks(100, 3);
  ValuePattern values(8);  // shorter than the header: a prefix of it
  RequestWriter w(Protocol::meta, ks, values);
  OutputChain chain;
  RequestSink sink(chain);
  std::uint64_t one[] = {5};
  w.get(sink, one);
  EXPECT_EQ(drain_to_string(chain), "mg k05 f v\r\n");
  std::uint64_t two[] = {5, 99};
  w.get(sink, two);
  EXPECT_EQ(drain_to_string(chain), "mg k05 k f v q\r\nmg k99 k f v q\r\nmn\r\n");
  w.set(sink, 1, 77, Quiet::no);
  std::string v = value_of(ks, values, 1, 77);
  EXPECT_EQ(v.size(), 8u);
  EXPECT_EQ(drain_to_string(chain), "ms k01 8 F77\r\n" + v + "\r\n");
  w.set(sink, 1, 77, Quiet::yes);
  EXPECT_EQ(drain_to_string(chain), "ms k01 8 F77 q\r\n" + v + "\r\n");
  w.barrier(sink, 1);
  EXPECT_EQ(drain_to_string(chain), "mn\r\n");
}

TEST_F(MemcacheCodecTest, a_large_value_is_queued_as_a_view_of_the_pattern) {
  KeySpace ks(10, 2);
  ValuePattern values(5000);
  RequestWriter w(Protocol::text, ks, values);
  OutputChain chain;
  RequestSink sink(chain);
  w.set(sink, 3, 9, Quiet::no);
  EXPECT_EQ(chain.pieces(), 3u) << "header copy, pattern view, CRLF";
  EXPECT_EQ(drain_to_string(chain), "set k3 9 0 5000\r\n" + value_of(ks, values, 3, 9) + "\r\n");
}

// ---- replies: one table, fed whole, at every cut, and byte by byte -----------------------------------------------

struct Case {
  std::string name;
  Protocol protocol;
  Expect::Kind kind;
  std::vector<std::uint64_t> keys;
  MustHit must_hit;
  std::string reply;
  Status want;
  std::string what;  // for wrong
};

constexpr std::size_t kValueSize = 40;

std::vector<Case> cases(const KeySpace& ks, const ValuePattern& p) {
  auto val = [&](std::uint64_t k, std::uint32_t v) { return value_of(ks, p, k, v); };
  auto key = [&](std::uint64_t k) { return key_of(ks, k); };
  std::string bad = val(3, 9);
  bad[25] ^= 1;
  std::string bad_header = val(3, 9);
  bad_header[0] ^= 1;
  const Expect::Kind values = Expect::Kind::values;
  const Expect::Kind stored = Expect::Kind::stored;
  const Expect::Kind noop = Expect::Kind::noop;
  const Protocol text = Protocol::text;
  const Protocol meta = Protocol::meta;
  const MustHit no = MustHit::no;
  const MustHit yes = MustHit::yes;
  return {
      // text get
      {"text_hit", text, values, {3}, yes, "VALUE " + key(3) + " 9 40\r\n" + val(3, 9) + "\r\nEND\r\n",
       Status::complete, ""},
      {"text_hit_with_cas", text, values, {3}, yes, "VALUE " + key(3) + " 9 40 12345\r\n" + val(3, 9) + "\r\nEND\r\n",
       Status::complete, ""},
      {"text_miss", text, values, {3}, no, "END\r\n", Status::complete, ""},
      {"text_miss_that_must_hit", text, values, {3}, yes, "END\r\n", Status::wrong,
       "get missed a key that must exist"},
      {"text_multiget_with_a_gap", text, values, {1, 2, 3}, no,
       "VALUE " + key(1) + " 0 40\r\n" + val(1, 0) + "\r\nVALUE " + key(3) + " 4294967295 40\r\n" +
           val(3, 4294967295u) + "\r\nEND\r\n",
       Status::complete, ""},
      {"text_multiget_duplicate_keys", text, values, {2, 2}, yes,
       "VALUE " + key(2) + " 1 40\r\n" + val(2, 1) + "\r\nVALUE " + key(2) + " 1 40\r\n" + val(2, 1) + "\r\nEND\r\n",
       Status::complete, ""},
      {"text_multiget_out_of_order", text, values, {1, 2}, no,
       "VALUE " + key(2) + " 1 40\r\n" + val(2, 1) + "\r\nVALUE " + key(1) + " 1 40\r\n" + val(1, 1) + "\r\nEND\r\n",
       Status::wrong, "value for a key not asked for"},
      {"text_value_of_another_key", text, values, {3}, no, "VALUE " + key(4) + " 9 40\r\n" + val(4, 9) + "\r\nEND\r\n",
       Status::wrong, "value for a key not asked for"},
      {"text_value_of_another_version", text, values, {3}, no,
       "VALUE " + key(3) + " 8 40\r\n" + val(3, 9) + "\r\nEND\r\n", Status::wrong, "value bytes differ"},
      {"text_one_wrong_byte", text, values, {3}, no, "VALUE " + key(3) + " 9 40\r\n" + bad + "\r\nEND\r\n",
       Status::wrong, "value bytes differ"},
      {"text_wrong_header_byte", text, values, {3}, no, "VALUE " + key(3) + " 9 40\r\n" + bad_header + "\r\nEND\r\n",
       Status::wrong, "value bytes differ"},
      {"text_wrong_length", text, values, {3}, no, "VALUE " + key(3) + " 9 39\r\n" + val(3, 9).substr(1) + "\r\nEND\r\n",
       Status::wrong, "value length differs"},
      {"text_value_without_crlf", text, values, {3}, no, "VALUE " + key(3) + " 9 40\r\n" + val(3, 9) + "XXEND\r\n",
       Status::wrong, "value not followed by CRLF"},
      {"text_malformed_value_line", text, values, {3}, no, "VALUE " + key(3) + " x 40\r\n", Status::wrong,
       "malformed VALUE line"},
      {"text_key_outside_the_space", text, values, {3}, no, "VALUE zz 9 40\r\n", Status::wrong,
       "VALUE for a key not asked for"},
      {"text_error", text, values, {3}, no, "ERROR\r\n", Status::wrong, "server replied ERROR"},
      {"text_client_error", text, values, {3}, no, "CLIENT_ERROR bad command line format\r\n", Status::wrong,
       "server replied CLIENT_ERROR"},
      {"text_server_error", text, stored, {}, no, "SERVER_ERROR out of memory storing object\r\n", Status::wrong,
       "server replied SERVER_ERROR"},
      {"text_garbage", text, values, {3}, no, "HELLO\r\n", Status::wrong, "unexpected reply to get"},
      {"text_line_too_long", text, values, {3}, no, std::string(600, 'V'), Status::wrong, "reply line too long"},
      // text set
      {"text_stored", text, stored, {}, no, "STORED\r\n", Status::complete, ""},
      {"text_not_stored", text, stored, {}, no, "NOT_STORED\r\n", Status::wrong, "set not stored"},
      {"text_exists", text, stored, {}, no, "EXISTS\r\n", Status::wrong, "set not stored"},
      // meta get
      {"meta_hit", meta, values, {3}, yes, "VA 40 f9\r\n" + val(3, 9) + "\r\n", Status::complete, ""},
      {"meta_hit_flags_in_any_order", meta, values, {3}, yes, "VA 40 t-1 k" + key(3) + " f9\r\n" + val(3, 9) + "\r\n",
       Status::complete, ""},
      {"meta_miss", meta, values, {3}, no, "EN\r\n", Status::complete, ""},
      {"meta_miss_that_must_hit", meta, values, {3}, yes, "EN\r\n", Status::wrong, "get missed a key that must exist"},
      {"meta_hit_without_f", meta, values, {3}, no, "VA 40\r\n" + val(3, 9) + "\r\n", Status::wrong,
       "VA without the f flag"},
      {"meta_one_wrong_byte", meta, values, {3}, no, "VA 40 f9\r\n" + bad + "\r\n", Status::wrong,
       "value bytes differ"},
      {"meta_malformed_size", meta, values, {3}, no, "VA x f9\r\n", Status::wrong, "malformed VA line"},
      {"meta_hd_to_a_get", meta, values, {3}, no, "HD\r\n", Status::wrong, "unexpected reply to mg"},
      {"meta_multiget", meta, values, {1, 2, 3}, no,
       "VA 40 k" + key(1) + " f1\r\n" + val(1, 1) + "\r\nVA 40 k" + key(3) + " f3\r\n" + val(3, 3) + "\r\nMN\r\n",
       Status::complete, ""},
      {"meta_multiget_all_miss", meta, values, {1, 2, 3}, no, "MN\r\n", Status::complete, ""},
      {"meta_multiget_miss_that_must_hit", meta, values, {1, 2}, yes,
       "VA 40 k" + key(1) + " f1\r\n" + val(1, 1) + "\r\nMN\r\n", Status::wrong, "get missed a key that must exist"},
      {"meta_multiget_without_k", meta, values, {1, 2}, no, "VA 40 f1\r\n", Status::wrong,
       "VA without the k flag in a multiget"},
      {"meta_multiget_en_is_not_expected", meta, values, {1, 2}, no, "EN\r\n", Status::wrong,
       "unexpected reply to mg"},
      {"meta_client_error", meta, values, {1}, no, "CLIENT_ERROR bad data chunk\r\n", Status::wrong,
       "server replied CLIENT_ERROR"},
      // meta set and noop
      {"meta_stored", meta, stored, {}, no, "HD\r\n", Status::complete, ""},
      {"meta_not_stored", meta, stored, {}, no, "NS\r\n", Status::wrong, "set not stored"},
      {"meta_noop", meta, noop, {}, no, "MN\r\n", Status::complete, ""},
      {"meta_noop_after_error", meta, noop, {}, no, "SERVER_ERROR out of memory\r\nMN\r\n", Status::wrong,
       "server replied SERVER_ERROR"},
      {"meta_noop_garbage", meta, noop, {}, no, "HD\r\n", Status::wrong, "unexpected reply to mn"},
  };
}

// Feeds the reply cut at `cuts` (each piece in its own buffer), the last piece followed by "NEXT", the start of the
// next reply. Before the reply is whole the parser may only answer need_more (or, for a wrong reply, wrong early);
// then it must give the case's answer, and a complete reply must leave exactly "NEXT" queued.
void feed(const Case& c, const KeySpace& ks, const ValuePattern& p, const std::vector<std::size_t>& cuts) {
  std::string where = c.name + " cut at";
  for (std::size_t k : cuts) {
    where += ' ';  // not `" " + to_string(k)`: GCC 12 warns falsely (-Wrestrict) on that form
    where += std::to_string(k);
  }
  SCOPED_TRACE(where);
  ReplyParser parser(c.protocol, ks, p);
  parser.reset();
  Expect e;
  e.kind = c.kind;
  e.must_hit = c.must_hit;
  e.key_count = static_cast<std::uint16_t>(c.keys.size());
  e.keys = c.keys.data();
  const std::string input = c.reply + "NEXT";  // the start of the next reply, which must stay queued
  SliceQueue q;
  std::size_t begin = 0;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(input.size());
  Reply r = Reply::need_more();
  for (std::size_t end : ends) {
    if (end > begin) q.push(Slice::copy_of(std::string_view(input).substr(begin, end - begin)));
    begin = std::max(begin, end);
    r = parser.parse(q, e);
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
    ASSERT_EQ(q.bytes(), 4u) << "the reply, and only it, is consumed";
    EXPECT_EQ(q.take_exactly(4).frame.view(), "NEXT");
  }
}

TEST_F(MemcacheCodecTest, every_reply_whole) {
  KeySpace ks(1000, 5);
  ValuePattern p(kValueSize);
  for (const Case& c : cases(ks, p)) feed(c, ks, p, {});
}

TEST_F(MemcacheCodecTest, every_reply_at_every_cut) {
  KeySpace ks(1000, 5);
  ValuePattern p(kValueSize);
  for (const Case& c : cases(ks, p))
    for (std::size_t k = 0; k <= c.reply.size(); ++k) feed(c, ks, p, {k});
}

TEST_F(MemcacheCodecTest, every_reply_byte_by_byte) {
  KeySpace ks(1000, 5);
  ValuePattern p(kValueSize);
  for (const Case& c : cases(ks, p)) {
    std::vector<std::size_t> cuts;
    for (std::size_t k = 1; k < c.reply.size(); ++k) cuts.push_back(k);
    feed(c, ks, p, cuts);
  }
}

TEST_F(MemcacheCodecTest, a_value_inside_one_buffer_is_checked_without_copying) {
  KeySpace ks(10, 2);
  ValuePattern p(3000);
  ReplyParser parser(Protocol::text, ks, p);
  parser.reset();
  std::uint64_t key = 4;
  Expect e{Expect::Kind::values, MustHit::yes, 1, &key};
  SliceQueue q;
  q.push(Slice::copy_of("VALUE k4 1 3000\r\n" + value_of(ks, p, 4, 1) + "\r\nEND\r\n"));
  std::uint64_t before = bytes_copied();
  EXPECT_EQ(parser.parse(q, e).status, Status::complete);
  EXPECT_EQ(bytes_copied(), before);
  EXPECT_EQ(parser.hits(), 1u);
}

TEST_F(MemcacheCodecTest, a_quiet_set_completes_when_any_later_byte_arrives_and_consumes_nothing) {
  KeySpace ks(10, 2);
  ValuePattern p(10);
  ReplyParser parser(Protocol::meta, ks, p);
  Expect quiet{Expect::Kind::none, MustHit::no, 0, nullptr};
  SliceQueue q;
  parser.reset();
  EXPECT_EQ(parser.parse(q, quiet).status, Status::need_more);
  q.push(Slice::copy_of("M"));
  EXPECT_EQ(parser.parse(q, quiet).status, Status::complete);
  EXPECT_EQ(q.bytes(), 1u);
}

TEST_F(MemcacheCodecTest, replies_written_by_the_writer_verify) {
  // Round trip through the value bytes a set would store, for every value size around the header.
  for (std::size_t size : {1u, 15u, 16u, 17u, 511u + 16u, 512u + 16u, 513u + 16u, 70000u}) {
    SCOPED_TRACE(size);
    KeySpace ks(100000, 7);
    ValuePattern p(size);
    RequestWriter w(Protocol::text, ks, p);
    OutputChain chain;
    RequestSink sink(chain);
    w.set(sink, 99999, 123, Quiet::no);
    std::string req = drain_to_string(chain);
    std::string head = "set k099999 123 0 " + std::to_string(size) + "\r\n";
    ASSERT_EQ(req.substr(0, head.size()), head);
    std::string data = req.substr(head.size(), size);
    ReplyParser parser(Protocol::text, ks, p);
    parser.reset();
    std::uint64_t key = 99999;
    Expect e{Expect::Kind::values, MustHit::yes, 1, &key};
    SliceQueue q;
    q.push(Slice::copy_of("VALUE k099999 123 " + std::to_string(size) + "\r\n" + data + "\r\nEND\r\n"));
    EXPECT_EQ(parser.parse(q, e).status, Status::complete);
  }
}

}  // namespace
}  // namespace ringlet::loadgen::memcache
