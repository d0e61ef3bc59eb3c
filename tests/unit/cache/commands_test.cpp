// commands_test.cpp — memcached's item commands on a store with a manual clock, as transcripts: the input bytes a
// client sends and the exact bytes it gets back (each checked against memcached 1.6.18). The driver below parses
// with proto/memcache and runs each command as the server does, with data blocks read from the input.
#include "ringlet/cache/commands.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ringlet::cache {
namespace {

constexpr std::int64_t kSecond = 1'000'000'000;

struct Driver {
  Driver() {
    StoreOptions o;
    o.memory_bytes = 8 * 1024 * 1024;
    o.max_item_bytes = 1024 * 1024;
    o.unix_now = 1'800'000'000;
    store = std::make_unique<Store>(o, clock);
  }

  // Runs every command in `input`; returns the replies.
  std::string run(std::string_view input) {
    std::string out;
    ReplyBuffer reply(out);
    Partition part{*store, stats};
    memcache::RequestLimits limits;
    while (!input.empty()) {
      memcache::RequestParser parser(limits);
      memcache::ParseResult r = parser.parse(input);
      if (r.need_more()) break;
      if (r.failed()) {
        if (r.error == memcache::ParseError::line_too_long) return out + "<closed>";
        if (!r.noreply) out.append(r.reply).append("\r\n");
        input.remove_prefix(std::min<std::size_t>(input.size(), r.consumed + r.swallow));
        continue;
      }
      const memcache::Request& req = parser.request();
      std::string_view rest = input.substr(r.consumed);
      char buf[memcache::kMaxKeyLength];
      switch (req.command) {
        case memcache::Command::get:
        case memcache::Command::gets:
        case memcache::Command::gat:
        case memcache::Command::gats: {
          memcache::Tokens t(req.keys);
          for (std::string_view k = t.next(); !k.empty(); k = t.next()) get_key(part, req, k, reply);
          out += "END\r\n";
          break;
        }
        case memcache::Command::set:
        case memcache::Command::add:
        case memcache::Command::replace:
        case memcache::Command::append:
        case memcache::Command::prepend:
        case memcache::Command::cas:
        case memcache::Command::ms: {
          DataBlock block{nullptr, rest.substr(0, req.data_block())};
          store_command(part, req, block, reply);
          rest.remove_prefix(req.data_block());
          break;
        }
        case memcache::Command::mn:
          out += "MN\r\n";
          break;
        default:
          key_command(part, req, meta_key(req, buf), reply);
      }
      input = rest;
    }
    return out;
  }

  ManualClock clock{3 * kSecond};
  std::unique_ptr<Store> store;
  CommandStats stats;
};

TEST(Commands, set_get_gets_and_the_storage_modes) {
  Driver d;
  EXPECT_EQ(d.run("set a 5 0 2\r\nhi\r\nget a b\r\n"), "STORED\r\nVALUE a 5 2\r\nhi\r\nEND\r\n");
  EXPECT_EQ(d.run("add a 0 0 1\r\nx\r\nadd b 0 0 1\r\ny\r\n"), "NOT_STORED\r\nSTORED\r\n");
  EXPECT_EQ(d.run("replace c 0 0 1\r\nx\r\nreplace b 3 0 1\r\nz\r\nget b\r\n"),
            "NOT_STORED\r\nSTORED\r\nVALUE b 3 1\r\nz\r\nEND\r\n");
  const std::string gets = d.run("gets a\r\n");
  EXPECT_TRUE(gets.starts_with("VALUE a 5 2 ")) << gets;
}

TEST(Commands, append_and_prepend_keep_the_old_flags_and_fail_on_a_missing_key) {
  Driver d;
  EXPECT_EQ(d.run("append x 0 0 1\r\na\r\nprepend x 0 0 1\r\na\r\n"), "NOT_STORED\r\nNOT_STORED\r\n");
  EXPECT_EQ(d.run("set x 7 0 3\r\nmid\r\nappend x 9 0 3\r\nend\r\nprepend x 9 0 5\r\nstart\r\nget x\r\n"),
            "STORED\r\nSTORED\r\nSTORED\r\nVALUE x 7 11\r\nstartmidend\r\nEND\r\n");
}

TEST(Commands, cas_stores_only_with_the_current_unique_value) {
  Driver d;
  EXPECT_EQ(d.run("cas k 0 0 1 1\r\nx\r\n"), "NOT_FOUND\r\n");
  d.run("set k 0 0 1\r\na\r\n");
  const std::uint64_t cas = d.store->find("k").cas();
  EXPECT_EQ(d.run("cas k 0 0 1 " + std::to_string(cas + 1) + "\r\nb\r\n"), "EXISTS\r\n");
  EXPECT_EQ(d.run("cas k 0 0 1 " + std::to_string(cas) + "\r\nc\r\n"), "STORED\r\n");
  EXPECT_EQ(d.run("cas k 0 0 1 " + std::to_string(cas) + "\r\nd\r\n"), "EXISTS\r\n");
  EXPECT_GT(d.store->find("k").cas(), cas);
  EXPECT_EQ(d.stats.cas_hits, 1u);
  EXPECT_EQ(d.stats.cas_badval, 2u);
  EXPECT_EQ(d.stats.cas_misses, 1u);
}

TEST(Commands, incr_wraps_at_two_to_the_64_and_decr_stops_at_zero_padding_in_place) {
  Driver d;
  EXPECT_EQ(d.run("incr n 1\r\n"), "NOT_FOUND\r\n");
  EXPECT_EQ(d.run("set n 0 0 3\r\n100\r\ndecr n 95\r\nget n\r\n"), "STORED\r\n5\r\nVALUE n 0 3\r\n5  \r\nEND\r\n");
  EXPECT_EQ(d.run("incr n 18446744073709551615\r\nget n\r\n"), "4\r\nVALUE n 0 3\r\n4  \r\nEND\r\n");
  EXPECT_EQ(d.run("decr n 10\r\n"), "0\r\n");
  EXPECT_EQ(d.run("set m 0 0 1\r\n9\r\nincr m 1\r\nget m\r\n"), "STORED\r\n10\r\nVALUE m 0 2\r\n10\r\nEND\r\n");
  EXPECT_EQ(d.stats.incr_hits, 2u);
  EXPECT_EQ(d.stats.incr_misses, 1u);
  EXPECT_EQ(d.stats.decr_hits, 2u);
  EXPECT_EQ(d.stats.decr_misses, 0u);
}

TEST(Commands, incr_refuses_non_numeric_values) {
  Driver d;
  const std::string_view refused = "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
  EXPECT_EQ(d.run("set s 0 0 1\r\n \r\nincr s 1\r\n"), "STORED\r\n" + std::string(refused));
  EXPECT_EQ(d.run("set s 0 0 3\r\n12a\r\nincr s 1\r\n"), "STORED\r\n" + std::string(refused));
  EXPECT_EQ(d.run("set s 0 0 0\r\n\r\nincr s 1\r\n"), "STORED\r\n" + std::string(refused));
  EXPECT_EQ(d.run("set s 0 0 2\r\n-1\r\nincr s 1\r\n"), "STORED\r\n" + std::string(refused));
  EXPECT_EQ(d.run("set s 0 0 2\r\n-0\r\nincr s 1\r\n"), "STORED\r\n1\r\n");
  EXPECT_EQ(d.run("set s 0 0 20\r\n18446744073709551616\r\nincr s 1\r\n"), "STORED\r\n" + std::string(refused));
}

TEST(Commands, delete_touch_and_gat) {
  Driver d;
  EXPECT_EQ(d.run("set a 0 0 1\r\nx\r\ndelete a\r\ndelete a\r\n"), "STORED\r\nDELETED\r\nNOT_FOUND\r\n");
  EXPECT_EQ(d.run("set a 0 0 1\r\nx\r\ntouch a 10\r\ntouch b 10\r\n"), "STORED\r\nTOUCHED\r\nNOT_FOUND\r\n");
  d.clock.advance(10 * kSecond);
  EXPECT_EQ(d.run("get a\r\n"), "END\r\n");
  EXPECT_EQ(d.run("set a 0 0 1\r\nx\r\ngat 5 a\r\n"), "STORED\r\nVALUE a 0 1\r\nx\r\nEND\r\n");
  d.clock.advance(5 * kSecond);
  EXPECT_EQ(d.run("get a\r\n"), "END\r\n");
}

// #10: an item stored without an exptime has no room for one; touch, gat and meta T rewrite it, and what a client
// can see (value, flags, CAS, the fetched bit) stays the same.
TEST(Commands, giving_an_exptime_later_keeps_the_value_flags_and_cas) {
  Driver d;
  EXPECT_EQ(d.run("set a 7 0 3\r\nabc\r\nget a\r\n"), "STORED\r\nVALUE a 7 3\r\nabc\r\nEND\r\n");
  const std::string cas = std::to_string(d.store->find("a").cas());
  EXPECT_EQ(d.run("gats 100 a\r\n"), "VALUE a 7 3 " + cas + "\r\nabc\r\nEND\r\n");
  EXPECT_EQ(d.run("mg a t f c h v\r\n"), "VA 3 t100 f7 c" + cas + " h1\r\nabc\r\n");
  EXPECT_EQ(d.run("set b 0 0 1\r\nx\r\nmg b T50 t\r\ntouch b 0\r\nmg b t\r\n"),
            "STORED\r\nHD t50\r\nTOUCHED\r\nHD t-1\r\n");
  EXPECT_EQ(d.store->stats().curr_items, 2u);
  d.clock.advance(100 * kSecond);
  EXPECT_EQ(d.run("get a b\r\n"), "VALUE b 0 1\r\nx\r\nEND\r\n");
}

TEST(Commands, noreply_hides_every_reply_of_the_text_commands) {
  Driver d;
  EXPECT_EQ(d.run("set a 0 0 1 noreply\r\nx\r\nadd a 0 0 1 noreply\r\ny\r\nincr a 1 noreply\r\n"
                  "delete a noreply\r\ntouch a 1 noreply\r\nflush_all noreply\r\nget a\r\n"),
            "END\r\n");
}

TEST(Commands, flush_all_with_a_delay) {
  Driver d;
  EXPECT_EQ(d.run("set a 0 0 1\r\nx\r\nflush_all 2\r\nget a\r\n"), "STORED\r\nOK\r\nVALUE a 0 1\r\nx\r\nEND\r\n");
  d.clock.advance(1 * kSecond);
  EXPECT_EQ(d.run("get a\r\n"), "END\r\n");
  EXPECT_EQ(d.stats.get_flushed, 1u);
  EXPECT_EQ(d.run("set e 0 1 1\r\nx\r\n"), "STORED\r\n");
  d.clock.advance(1 * kSecond);
  EXPECT_EQ(d.run("get e\r\n"), "END\r\n");
  EXPECT_EQ(d.stats.get_expired, 1u);
}

TEST(Commands, a_bad_data_chunk_stores_nothing) {
  Driver d;
  EXPECT_EQ(d.run("set a 0 0 1\r\nxyz\r\n"), "CLIENT_ERROR bad data chunk\r\nERROR\r\n");
  EXPECT_EQ(d.run("get a\r\n"), "END\r\n");
}

TEST(Commands, a_value_over_the_item_limit_is_refused_and_drops_the_old_value) {
  Driver d;
  d.run("set big 0 0 1\r\nx\r\n");
  const std::string value(1024 * 1024 - 20, 'v');  // under the parser's limit, over the store's (header + key)
  EXPECT_EQ(d.run("set big 0 0 " + std::to_string(value.size()) + "\r\n" + value + "\r\nget big\r\n"),
            "SERVER_ERROR object too large for cache\r\nEND\r\n");
}

TEST(Commands, meta_get_returns_flags_in_request_order) {
  Driver d;
  d.run("set a 5 0 2\r\nhi\r\n");
  const std::uint64_t cas = d.store->find("a").cas();
  EXPECT_EQ(d.run("mg a v k c f s t h l\r\n"),
            "VA 2 ka c" + std::to_string(cas) + " f5 s2 t-1 h0 l0\r\nhi\r\n");
  EXPECT_EQ(d.run("mg a v\r\nmg a h t\r\n"), "VA 2\r\nhi\r\nHD h1 t-1\r\n");
  EXPECT_EQ(d.run("mg zz v\r\nmg zz v q k O1\r\nmg zz k O2\r\nmn\r\n"), "EN\r\nEN kzz O2\r\nMN\r\n");
}

TEST(Commands, meta_get_vivifies_on_miss_and_hands_out_one_win_token) {
  Driver d;
  EXPECT_EQ(d.run("mg v N30 s t\r\nmg v N30 s t\r\n"), "HD s0 t30 W\r\nHD s0 t30 Z\r\n");
}

TEST(Commands, meta_delete_invalidate_marks_stale_and_the_next_reader_wins) {
  Driver d;
  d.run("set i 0 0 1\r\na\r\n");
  EXPECT_EQ(d.run("md i I T30\r\nmg i v t\r\nmg i v t\r\n"), "HD\r\nVA 1 t30 X W\r\na\r\nVA 1 t30 Z X\r\na\r\n");
  EXPECT_EQ(d.run("md i q\r\nmd i O9 k\r\n"), "NF O9 ki\r\n");
}

TEST(Commands, meta_set_modes_cas_and_returned_flags) {
  Driver d;
  EXPECT_EQ(d.run("ms x 2 c k O1 MR\r\nhi\r\n"), "NS c0 kx O1\r\n");
  const std::string stored = d.run("ms x 2 c k O1\r\nhi\r\n");
  const std::uint64_t cas = d.store->find("x").cas();
  EXPECT_EQ(stored, "HD c" + std::to_string(cas) + " kx O1\r\n");
  EXPECT_EQ(d.run("ms x 2 C99\r\nho\r\n"), "EX\r\n");
  EXPECT_EQ(d.run("ms x 2 q C" + std::to_string(cas) + "\r\nho\r\nmg x v\r\n"), "VA 2\r\nho\r\n");
  EXPECT_EQ(d.run("ms x 1 MA\r\n!\r\nms x 1 MP\r\n<\r\nms x 1 ME\r\nz\r\nmg x v\r\n"),
            "HD\r\nHD\r\nNS\r\nVA 4\r\n<ho!\r\n");
  EXPECT_EQ(d.run("ms t 1 T10 F3\r\nz\r\nmg t f t\r\n"), "HD\r\nHD f3 t10\r\n");
  EXPECT_EQ(d.run("ms e 1 E777\r\nz\r\nmg e c\r\n"), "HD\r\nHD c777\r\n");
}

TEST(Commands, meta_arithmetic) {
  Driver d;
  EXPECT_EQ(d.run("ma n O5 k\r\n"), "NF O5 kn\r\n");
  EXPECT_EQ(d.run("ma n N0 J10 v t\r\nma n MD D3 v\r\nma n\r\nma n q\r\nmg n v\r\n"),
            "VA 2 t-1\r\n10\r\nVA 1\r\n7\r\nHD\r\nVA 2\r\n9 \r\n");
  d.run("set s 0 0 1\r\nx\r\n");
  EXPECT_EQ(d.run("ma s\r\n"), "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
}

TEST(Commands, meta_base64_keys_are_decoded_and_returned_encoded) {
  Driver d;
  // "Zm9v" is "foo".
  EXPECT_EQ(d.run("ms Zm9v 1 b\r\nx\r\nget foo\r\nmg Zm9v b k v\r\n"),
            "HD\r\nVALUE foo 0 1\r\nx\r\nEND\r\nVA 1 kZm9v b\r\nx\r\n");
}

TEST(Commands, meta_debug_describes_an_item) {
  Driver d;
  d.run("set a 0 0 1\r\nx\r\n");
  const std::uint64_t cas = d.store->find("a").cas();
  EXPECT_EQ(d.run("me a\r\nme b\r\n"),
            "ME a exp=-1 la=0 cas=" + std::to_string(cas) + " fetch=no cls=1 size=" +
                std::to_string(kItemHeader + 2) + "\r\nEN\r\n");
}

// #10: to a chain, a ReplyBuffer stages small pieces and hands them over when its stage fills, on flush() and at
// its end; what the chain holds is byte for byte what a string gets, in order, across more than a stage of small
// pieces, a value too large to stage and an explicit flush.
TEST(Commands, reply_buffer_to_a_chain_gives_the_bytes_a_string_gets_in_order) {
  const std::string big(5000, 'v');
  const auto write = [&big](ReplyBuffer& out) {
    for (int i = 0; i < 100; ++i) {
      out.put("VALUE k");
      out.put_number(static_cast<std::uint64_t>(i));
      out.put(" 0 2\r\nab\r\n");
    }
    out.put(big);
    out.put_signed(-1);
    out.flush();
    out.put("END\r\n");
  };
  std::string expected;
  {
    ReplyBuffer out(expected);
    write(out);
  }
  OutputChain chain;
  {
    ReplyBuffer out(chain);
    write(out);
  }
  std::string got;
  for (Slice s = chain.pop_front(); s.size() > 0; s = chain.pop_front()) got.append(s.view());
  EXPECT_EQ(got, expected);
}

}  // namespace
}  // namespace ringlet::cache
