// client_test.cpp — the client side: request lines composed byte for byte, reply lines split into the right views,
// and the incremental reply-line finder giving the same answer at every truncation point and split.
#include "ringlet/proto/memcache/client.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ringlet/proto/memcache/request_parser.hpp"
#include "support/output_text.hpp"

namespace ringlet::memcache {
namespace {

using testing::drain_to_string;

TEST(MemcacheClient, requests_are_exact) {
  OutputChain out;
  std::string_view keys[] = {"a", "bb"};
  write_retrieval(out, "get", keys);
  write_retrieval(out, "gats 30", std::span<const std::string_view>(keys, 1));
  write_storage(out, {"set", "k", 5, 0, 10, 0, false});
  write_storage(out, {"cas", "k", 0, -1, 2, 99, true});
  write_key_command(out, "incr", "k", "5", false);
  write_key_command(out, "delete", "k", "", true);
  MetaFlagWriter flags;
  flags.add('v');
  flags.add('T', std::int64_t{30});
  write_meta(out, "mg", "k", flags.text());
  write_meta_set(out, "k", 3, " F5 q");
  write_meta(out, "md", "k", "");
  write_request_line(out, "mn");
  EXPECT_EQ(drain_to_string(out),
            "get a bb\r\ngats 30 a\r\nset k 5 0 10\r\ncas k 0 -1 2 99 noreply\r\nincr k 5\r\ndelete k noreply\r\n"
            "mg k v T30\r\nms k 3 F5 q\r\nmd k\r\nmn\r\n");
}

TEST(MemcacheClient, composed_requests_parse_back_on_the_server_side) {
  OutputChain out;
  write_storage(out, {"cas", "key", 7, 100, 4, 12345, true});
  std::string line = drain_to_string(out);
  RequestParser p;
  ASSERT_TRUE(p.parse(line).complete());
  const Request& r = p.request();
  EXPECT_EQ(r.command, Command::cas);
  EXPECT_EQ(r.key, "key");
  EXPECT_EQ(r.client_flags, 7u);
  EXPECT_EQ(r.exptime, 100);
  EXPECT_EQ(r.data_length, 4u);
  EXPECT_EQ(r.cas_unique, 12345u);
  EXPECT_TRUE(r.noreply);
}

TEST(MemcacheClient, reply_lines_split_into_views) {
  ReplyLine v = parse_reply_line("VALUE key 5 10");
  EXPECT_EQ(v.kind, ReplyKind::value);
  EXPECT_TRUE(v.has_data_block());
  EXPECT_EQ(v.key, "key");
  EXPECT_EQ(v.client_flags, 5u);
  EXPECT_EQ(v.length, 10u);
  EXPECT_FALSE(v.has_cas);

  ReplyLine c = parse_reply_line("VALUE key 0 1 18446744073709551615");
  EXPECT_TRUE(c.well_formed);
  EXPECT_TRUE(c.has_cas);
  EXPECT_EQ(c.cas, 18446744073709551615ull);

  for (const char* bad : {"VALUE key x 1", "VALUE key 4294967296 1", "VALUE key 0", "VALUE key 0 1 2 3", "VALUE"}) {
    ReplyLine b = parse_reply_line(bad);
    EXPECT_EQ(b.kind, ReplyKind::value) << bad;
    EXPECT_FALSE(b.well_formed) << bad;
    EXPECT_FALSE(b.has_data_block()) << bad;
  }

  ReplyLine va = parse_reply_line("VA 3 f5 kkey t-1");
  EXPECT_EQ(va.kind, ReplyKind::meta_value);
  EXPECT_EQ(va.length, 3u);
  EXPECT_EQ(va.meta_flags, "f5 kkey t-1");
  EXPECT_EQ(find_meta_flag(va.meta_flags, 't').token, "-1");
  EXPECT_TRUE(find_meta_flag(va.meta_flags, 'k').found);
  EXPECT_FALSE(find_meta_flag(va.meta_flags, 'c').found);
  EXPECT_FALSE(parse_reply_line("VA x f5").well_formed);

  struct Simple {
    const char* line;
    ReplyKind kind;
  };
  for (Simple s : {Simple{"END", ReplyKind::end}, Simple{"STORED", ReplyKind::stored},
                   Simple{"NOT_STORED", ReplyKind::not_stored}, Simple{"EXISTS", ReplyKind::exists},
                   Simple{"NOT_FOUND", ReplyKind::not_found}, Simple{"DELETED", ReplyKind::deleted},
                   Simple{"TOUCHED", ReplyKind::touched}, Simple{"OK", ReplyKind::ok},
                   Simple{"ERROR", ReplyKind::error}, Simple{"HD", ReplyKind::meta_hd},
                   Simple{"HD c5", ReplyKind::meta_hd}, Simple{"EN", ReplyKind::meta_en},
                   Simple{"NF", ReplyKind::meta_nf}, Simple{"NS", ReplyKind::meta_ns}, Simple{"EX", ReplyKind::meta_ex},
                   Simple{"MN", ReplyKind::meta_mn}, Simple{"42", ReplyKind::number},
                   Simple{"ERRORS", ReplyKind::unknown}, Simple{"", ReplyKind::unknown},
                   Simple{"ENDX", ReplyKind::unknown}, Simple{"-1", ReplyKind::unknown}}) {
    EXPECT_EQ(parse_reply_line(s.line).kind, s.kind) << s.line;
  }
  EXPECT_EQ(parse_reply_line("HD c5 Oop").meta_flags, "c5 Oop");
  EXPECT_EQ(parse_reply_line("42").number, 42u);

  ReplyLine ce = parse_reply_line("CLIENT_ERROR bad data chunk");
  EXPECT_EQ(ce.kind, ReplyKind::client_error);
  EXPECT_EQ(ce.text, "bad data chunk");
  EXPECT_EQ(parse_reply_line("SERVER_ERROR out of memory").kind, ReplyKind::server_error);
  ReplyLine ver = parse_reply_line("VERSION 1.6.18");
  EXPECT_EQ(ver.kind, ReplyKind::version);
  EXPECT_EQ(ver.text, "1.6.18");
  ReplyLine st = parse_reply_line("STAT curr_items 12");
  EXPECT_EQ(st.kind, ReplyKind::stat);
  EXPECT_EQ(st.name, "curr_items");
  EXPECT_EQ(st.text, "12");
  ReplyLine me = parse_reply_line("ME key exp=-1 la=3 cas=2");
  EXPECT_EQ(me.kind, ReplyKind::meta_me);
  EXPECT_EQ(me.key, "key");
  EXPECT_EQ(me.text, "exp=-1 la=3 cas=2");
}

TEST(MemcacheClient, server_replies_parse_back_on_the_client_side) {
  OutputChain out;
  write_value(out, "key", 9, Slice::copy_of("abc"), 77);
  MetaFlagWriter flags;
  flags.add('f', std::uint64_t{9});
  flags.add('k', "key");
  write_meta_value(out, Slice::copy_of("xy"), flags);
  write_line(out, wire::kEnd);
  const std::string wire_bytes = drain_to_string(out);
  std::string_view in(wire_bytes);
  std::vector<ReplyKind> kinds;
  while (!in.empty()) {
    ReplyParser p;
    ReplyResult r = p.parse(in);
    ASSERT_EQ(r.status, ReplyResult::Status::complete);
    const ReplyLine& l = p.line();
    kinds.push_back(l.kind);
    if (l.kind == ReplyKind::value) {
      EXPECT_EQ(l.key, "key");
      EXPECT_EQ(l.client_flags, 9u);
      EXPECT_EQ(l.cas, 77u);
    }
    if (l.kind == ReplyKind::meta_value) {
      EXPECT_EQ(find_meta_flag(l.meta_flags, 'k').token, "key");
    }
    in.remove_prefix(r.consumed + (l.has_data_block() ? l.length + 2 : 0));
  }
  EXPECT_EQ(kinds, (std::vector<ReplyKind>{ReplyKind::value, ReplyKind::meta_value, ReplyKind::end}));
}

TEST(MemcacheClient, reply_lines_are_found_at_every_truncation_and_split) {
  const std::vector<std::string> replies = {"END\r\n", "VALUE k 1 3\r\n", "VA 3 f5\r\n", "HD\r\n", "\r\n",
                                            "CLIENT_ERROR bad data chunk\r\n", "a\rb\r\n"};
  for (const std::string& reply : replies) {
    SCOPED_TRACE(reply);
    const std::string input = reply + "NEXT";
    ReplyParser whole;
    ReplyResult w = whole.parse(input);
    ASSERT_EQ(w.status, ReplyResult::Status::complete);
    EXPECT_EQ(w.consumed, reply.size());
    for (std::size_t k = 0; k < reply.size(); ++k) {
      ReplyParser p;
      EXPECT_EQ(p.parse(std::string_view(reply).substr(0, k)).status, ReplyResult::Status::need_more) << k;
    }
    for (std::size_t cut = 0; cut <= input.size(); ++cut) {
      ReplyParser p;
      std::string first = input.substr(0, cut);
      ReplyResult r = p.parse(first);
      if (r.status == ReplyResult::Status::need_more) {
        std::string moved = input;
        r = p.parse(moved);
      }
      ASSERT_EQ(r.status, ReplyResult::Status::complete) << cut;
      EXPECT_EQ(r.consumed, w.consumed);
      EXPECT_EQ(p.line().kind, whole.line().kind);
    }
  }
}

TEST(MemcacheClient, a_reply_line_over_the_limit_is_too_long_however_it_arrives) {
  ReplyParser p(10);
  EXPECT_EQ(p.parse("0123456789\r").status, ReplyResult::Status::need_more);
  EXPECT_EQ(p.parse("0123456789\r\n").status, ReplyResult::Status::complete);
  ReplyParser q(10);
  EXPECT_EQ(q.parse("0123456789a").status, ReplyResult::Status::need_more);
  EXPECT_EQ(q.parse("0123456789ab").status, ReplyResult::Status::too_long);
  ReplyParser whole(10);
  EXPECT_EQ(whole.parse("0123456789a\r\n").status, ReplyResult::Status::too_long);
}

}  // namespace
}  // namespace ringlet::memcache
