// request_parser_test.cpp — the memcached request parser over tables of valid and malformed command lines. Every
// case is fed whole, at every truncation point (need_more, never a verdict), grown one byte per call on one parser
// (the resume path), and split in two calls with the bytes moved in between (same result as one call). A pipelined
// conversation (commands, data blocks, refused blocks that must be swallowed) gives the same transcript whole, at
// every split and byte by byte. The expected replies were checked against memcached 1.6.18.
#include "ringlet/proto/memcache/request_parser.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ringlet/buf/slice_queue.hpp"
#include "ringlet/proto/memcache/reply.hpp"

namespace ringlet::memcache {
namespace {

std::string describe(const Request& r) {
  std::string d(to_string(r.command));
  auto num = [&d](const char* name, auto v) {
    d += ' ';
    d += name;
    d += '=';
    d += std::to_string(v);
  };
  if (!r.key.empty()) d += " key=" + std::string(r.key);
  if (r.key_count > 1) {
    num("count", r.key_count);
    d += " keys=" + std::string(r.keys);
  }
  if (r.client_flags != 0) num("flags", r.client_flags);
  if (r.exptime != 0) num("exptime", r.exptime);
  if (r.has_data_block()) num("bytes", r.data_length);
  if (r.cas_unique != 0) num("cas", r.cas_unique);
  if (r.delta != 0) num("delta", r.delta);
  if (r.verbosity != 0) num("level", r.verbosity);
  if (r.has_delay) d += " delay";
  if (r.noreply) d += " noreply";
  if (!r.args.empty()) d += " args=" + std::string(r.args);
  const MetaFlags& m = r.meta;
  if (!m.text.empty()) d += " [" + std::string(m.text) + "]";
  if (m.has('T')) num("T", m.ttl);
  if (m.has('N')) num("N", m.vivify_ttl);
  if (m.has('R')) num("R", m.recache_ttl);
  if (m.has('F')) num("F", m.client_flags);
  if (m.has('C')) num("C", m.compare_cas);
  if (m.has('E')) num("E", m.new_cas);
  if (m.has('J')) num("J", m.initial);
  if (m.has('D')) num("D", m.delta);
  if (m.has('O')) d += " O=" + std::string(m.opaque);
  if (m.mode != 0) d += std::string(" M=") + m.mode;
  return d;
}

struct Valid {
  const char* name;
  std::string line;  // one command line, line end included
  std::string want;  // describe() of the request
};

std::vector<Valid> valid_cases() {
  return {
      {"get_one_key", "get k\r\n", "get key=k"},
      {"get_bare_lf", "get k\n", "get key=k"},
      {"get_many_keys_and_spaces", "get a  b c\r\n", "get key=a count=3 keys=a  b c"},
      {"leading_spaces", "  get k\r\n", "get key=k"},
      {"gets", "gets k\r\n", "gets key=k"},
      {"gat", "gat 100 a b\r\n", "gat key=a count=2 keys=a b exptime=100"},
      {"gats_negative_exptime", "gats -1 a\r\n", "gats key=a exptime=-1"},
      {"key_of_250_bytes", "get " + std::string(250, 'x') + "\r\n", "get key=" + std::string(250, 'x')},
      {"set", "set k 5 0 10\r\n", "set key=k flags=5 bytes=10"},
      {"set_noreply", "set k 0 0 1 noreply\r\n", "set key=k bytes=1 noreply"},
      {"set_sixth_token_ignored", "set k 0 0 5 garbage\r\n", "set key=k bytes=5"},
      {"set_max_flags_and_plus", "set k 4294967295 +30 0\r\n", "set key=k flags=4294967295 exptime=30 bytes=0"},
      {"set_absolute_exptime", "set k 0 1700000000 2\r\n", "set key=k exptime=1700000000 bytes=2"},
      {"add_replace_append_prepend", "prepend k 0 -1 3\r\n", "prepend key=k exptime=-1 bytes=3"},
      {"cas", "cas k 1 2 3 18446744073709551615 noreply\r\n",
       "cas key=k flags=1 exptime=2 bytes=3 cas=18446744073709551615 noreply"},
      {"delete", "delete k\r\n", "delete key=k"},
      {"delete_legacy_zero", "delete k 0\r\n", "delete key=k"},
      {"delete_noreply", "delete k noreply\r\n", "delete key=k noreply"},
      {"delete_zero_noreply", "delete k 0 noreply\r\n", "delete key=k noreply"},
      {"incr", "incr k 18446744073709551615\r\n", "incr key=k delta=18446744073709551615"},
      {"decr_noreply", "decr k 2 noreply\r\n", "decr key=k delta=2 noreply"},
      {"touch", "touch k 10\r\n", "touch key=k exptime=10"},
      {"flush_all", "flush_all\r\n", "flush_all"},
      {"flush_all_noreply", "flush_all noreply\r\n", "flush_all noreply"},
      {"flush_all_delay", "flush_all 10 noreply\r\n", "flush_all exptime=10 delay noreply"},
      {"version", "version\r\n", "version"},
      {"verbosity", "verbosity 1 noreply\r\n", "verbosity level=1 noreply"},
      {"quit", "quit\r\n", "quit"},
      {"stats", "stats\r\n", "stats"},
      {"stats_args", "stats  slabs x\r\n", "stats args=slabs x"},
      {"mn", "mn\r\n", "mn"},
      {"mn_ignores_tokens", "mn foo\r\n", "mn"},
      {"mg", "mg k v f\r\n", "mg key=k [v f]"},
      {"mg_nineteen_tokens", "mg a2V5 c f h k l s t u v O1 P1 L1 T1 R1 N1 q b\r\n",
       "mg key=a2V5 [c f h k l s t u v O1 P1 L1 T1 R1 N1 q b] T=1 N=1 R=1 O=1"},
      {"mg_tokens", "mg k T30 N-1 R5 Oabc k q\r\n", "mg key=k [T30 N-1 R5 Oabc k q] T=30 N=-1 R=5 O=abc"},
      {"mg_empty_opaque", "mg k O\r\n", "mg key=k [O] O="},
      {"mg_base64_key", "mg a2V5 b v\r\n", "mg key=a2V5 [b v]"},
      {"mg_proxy_hints", "mg k Pfoo/ Lbar v\r\n", "mg key=k [Pfoo/ Lbar v]"},
      {"ms", "ms k 5 F7 T-1 MA I c\r\n", "ms key=k bytes=5 [F7 T-1 MA I c] T=-1 F=7 M=A"},
      {"ms_no_flags", "ms k 0\r\n", "ms key=k bytes=0"},
      {"md", "md k q C5 I T30 x\r\n", "md key=k [q C5 I T30 x] T=30 C=5"},
      {"ma", "ma k N0 J10 D5 MD v t c\r\n", "ma key=k [N0 J10 D5 MD v t c] N=0 J=10 D=5 M=D"},
      {"ma_defaults", "ma k\r\n", "ma key=k"},
      {"me", "me k\r\n", "me key=k"},
      {"me_ignores_other_tokens", "me k v\r\n", "me key=k [v]"},
  };
}

struct Invalid {
  const char* name;
  std::string line;
  ParseError error;
  std::string reply;
  std::uint64_t swallow = 0;
  bool noreply = false;
};

std::vector<Invalid> invalid_cases() {
  const ParseError unknown = ParseError::unknown_command;
  const ParseError client = ParseError::client_error;
  const std::string bad(wire::kBadCommandLineFormat);
  return {
      {"unknown", "bogus\r\n", unknown, "ERROR"},
      {"uppercase", "GET k\r\n", unknown, "ERROR"},
      {"empty_line", "\r\n", unknown, "ERROR"},
      {"spaces_only", "   \r\n", unknown, "ERROR"},
      {"get_without_key", "get\r\n", unknown, "ERROR"},
      {"gat_without_key", "gat 10\r\n", unknown, "ERROR"},
      {"set_too_few", "set k 0 0\r\n", unknown, "ERROR"},
      {"set_too_many", "set k 0 0 5 noreply x\r\n", unknown, "ERROR"},
      {"cas_without_unique", "cas k 0 0 1\r\n", unknown, "ERROR"},
      {"verbosity_alone", "verbosity\r\n", unknown, "ERROR"},
      {"mg_without_key", "mg\r\n", unknown, "ERROR"},
      {"admin_command", "slabs reassign 1 2\r\n", unknown, "ERROR"},
      {"key_too_long", "get " + std::string(251, 'x') + "\r\n", client, bad},
      {"one_key_of_many_too_long", "get a " + std::string(251, 'x') + " b\r\n", client, bad},
      {"control_char_in_key", "get a\x01" "b\r\n", client, bad},
      {"cr_in_key", "get a\rb\r\n", client, bad},
      {"set_bad_flags", "set k x 0 5\r\n", client, bad},
      {"set_flags_over_32_bits", "set k 4294967296 0 1\r\n", client, bad},
      {"set_negative_flags", "set k -1 0 1\r\n", client, bad},
      {"set_bad_exptime", "set k 0 1x 1\r\n", client, bad},
      {"set_negative_bytes", "set k 0 0 -1\r\n", client, bad},
      {"set_bytes_too_big_for_memcached", "set k 0 0 2147483646\r\n", client, bad},
      {"set_bad_key_noreply", "set " + std::string(251, 'k') + " 0 0 1 noreply\r\n", client, bad, 0, true},
      {"set_too_large", "set k 0 0 2000000\r\n", ParseError::too_large, std::string(wire::kTooLarge), 2000002},
      {"cas_bad_unique", "cas k 0 0 1 x\r\n", client, bad},
      {"delete_nonzero_time", "delete k 1\r\n", client, std::string(wire::kDeleteUsage)},
      {"delete_noreply_then_more", "delete k noreply 0\r\n", client, std::string(wire::kDeleteUsage)},
      {"incr_negative", "incr k -1\r\n", client, std::string(wire::kInvalidDeltaArgument)},
      {"incr_overflow", "incr k 18446744073709551616 noreply\r\n", client,
       std::string(wire::kInvalidDeltaArgument), 0, true},
      {"touch_bad_exptime", "touch k x\r\n", client, std::string(wire::kInvalidExptime)},
      {"gat_bad_exptime", "gat x k\r\n", client, std::string(wire::kInvalidExptime)},
      {"flush_all_bad_delay", "flush_all x\r\n", client, std::string(wire::kInvalidExptime)},
      {"verbosity_bad_level", "verbosity x\r\n", client, bad},
      {"verbosity_noreply_alone", "verbosity noreply\r\n", client, bad, 0, true},
      {"mg_unknown_flag", "mg k zz\r\n", client, std::string(wire::kInvalidFlag)},
      {"mg_flag_of_another_command", "mg k MS\r\n", client, std::string(wire::kInvalidFlag)},
      {"mg_not_a_letter", "mg k 5\r\n", client, std::string(wire::kInvalidFlag)},
      {"mg_duplicate", "mg k v v\r\n", client, std::string(wire::kDuplicateFlag)},
      {"mg_bad_ttl", "mg k Tx\r\n", client, std::string(wire::kBadToken)},
      {"mg_empty_ttl", "mg k T\r\n", client, std::string(wire::kBadToken)},
      {"mg_ttl_over_32_bits", "mg k T2147483648\r\n", client, std::string(wire::kBadToken)},
      {"mg_opaque_too_long", "mg k O" + std::string(33, 'o') + "\r\n", client, std::string(wire::kOpaqueTooLong)},
      {"mg_key_too_long", "mg " + std::string(251, 'k') + " v\r\n", client, bad},
      {"mg_bad_base64", "mg k b\r\n", client, std::string(wire::kKeyDecodeError)},
      {"mg_too_many_tokens", "mg k c f h k l s t u v O1 P1 L1 T1 R1 C1 E1 N1 q b\r\n", client,
       std::string(wire::kOptionsTooLong)},
      {"mg_twenty_tokens", "mg a2V5 c f h k l s t u v O1 P1 L1 T1 R1 N1 q b x\r\n", client,
       std::string(wire::kOptionsTooLong)},
      {"ms_twenty_tokens_swallow_nothing", "ms a2V5 1 c k s O1 P1 L1 T1 I q F1 C1 E1 MS N1 b x y\r\n", client,
       std::string(wire::kMsOptionsTooLong)},
      {"me_bad_base64", "me k b\r\n", client, bad},
      {"ms_without_datalen", "ms k\r\n", client, bad},
      {"ms_bad_datalen", "ms k x\r\n", client, bad},
      {"ms_negative_datalen", "ms k -1\r\n", client, bad},
      {"ms_key_too_long_swallows_nothing", "ms " + std::string(251, 'k') + " 5\r\n", client, bad},
      {"ms_bad_flag_swallows", "ms k 5 Z\r\n", client, std::string(wire::kInvalidFlag), 7},
      {"ms_bad_mode", "ms k 5 MX\r\n", client, std::string(wire::kInvalidMsMode), 7},
      {"ms_lowercase_mode", "ms k 5 Ms\r\n", client, std::string(wire::kInvalidMsMode), 7},
      {"ms_empty_mode", "ms k 1 M\r\n", client, std::string(wire::kModeLength), 3},
      {"ms_bad_client_flags", "ms k 5 Fx\r\n", client, bad, 7},
      {"ms_too_large", "ms k 2000000 T1\r\n", ParseError::too_large, std::string(wire::kTooLarge), 2000002},
      {"ms_q_still_answers_errors", "ms k 1 q Z\r\n", client, std::string(wire::kInvalidFlag), 3},
      {"md_flag_error_has_one_message", "md k Cx\r\n", client, std::string(wire::kInvalidOrDuplicateFlag)},
      {"md_unknown_flag", "md k zz\r\n", client, std::string(wire::kInvalidOrDuplicateFlag)},
      {"ma_bad_delta", "ma k Dx\r\n", client, std::string(wire::kInvalidOrDuplicateFlag)},
      {"ma_bad_mode", "ma k MX\r\n", client, std::string(wire::kInvalidOrDuplicateFlag)},
  };
}

// Parses `input` (one command) in two calls: the first `cut` bytes, then all of it, the bytes moved in between
// (into `moved`, which the request's views then point into).
ParseResult parse_split(RequestParser& p, const std::string& input, std::size_t cut, std::string& moved) {
  moved = input.substr(0, cut);
  ParseResult r = p.parse(moved);
  if (!r.need_more()) return r;
  std::string other = input;  // another buffer: the parser must not keep pointers into the first one
  moved.swap(other);
  return p.parse(moved);
}

void expect_truncations_need_more(const std::string& input) {
  for (std::size_t k = 0; k < input.size(); ++k) {
    RequestParser p;
    ParseResult r = p.parse(std::string_view(input).substr(0, k));
    ASSERT_TRUE(r.need_more()) << "verdict with " << k << " of " << input.size() << " bytes";
  }
}

// #10: find_command is one probe of a slot table; it must agree with a walk over kCommands on every name, and on
// every name changed in one byte, shortened or extended (a near miss is no command, unless it is another one).
TEST(MemcacheRequestParser, find_command_agrees_with_a_walk_over_the_table) {
  const auto walk = [](std::string_view name) -> const CommandSpec* {
    for (const CommandSpec& spec : kCommands) {
      if (spec.name == name) return &spec;
    }
    return nullptr;
  };
  std::vector<std::string> names = {"", "m", "mx", "g", "GET", "stat", "statsx"};
  for (const CommandSpec& spec : kCommands) {
    const std::string name(spec.name);
    names.push_back(name);
    names.push_back(name + "x");
    names.push_back(name + "s");
    names.push_back(name.substr(0, name.size() - 1));
    for (std::size_t i = 0; i < name.size(); ++i) {
      std::string other = name;
      other[i] = static_cast<char>(other[i] ^ 0x20);  // the other case: memcached's names are case-sensitive
      names.push_back(other);
      other[i] = 'q';
      names.push_back(other);
    }
  }
  for (const std::string& name : names) EXPECT_EQ(find_command(name), walk(name)) << "'" << name << "'";
  for (const CommandSpec& spec : kCommands) ASSERT_EQ(find_command(spec.name), &spec) << spec.name;
}

TEST(MemcacheRequestParser, every_valid_line_parses_whole_and_in_every_split) {
  for (const Valid& c : valid_cases()) {
    SCOPED_TRACE(c.name);
    const std::string input = c.line + "NEXT";  // the next command's bytes must not be consumed
    RequestParser whole;
    ParseResult r = whole.parse(input);
    ASSERT_TRUE(r.complete()) << r.reply;
    EXPECT_EQ(r.consumed, c.line.size());
    EXPECT_EQ(describe(whole.request()), c.want);
    expect_truncations_need_more(c.line);
    for (std::size_t cut = 0; cut <= input.size(); ++cut) {
      RequestParser p;
      std::string moved;
      ParseResult s = parse_split(p, input, cut, moved);
      ASSERT_TRUE(s.complete()) << "cut at " << cut;
      EXPECT_EQ(s.consumed, r.consumed);
      EXPECT_EQ(describe(p.request()), c.want) << "cut at " << cut;
    }
    RequestParser grown;
    ParseResult g;
    for (std::size_t k = 0; k <= input.size() && !g.complete(); ++k) g = grown.parse(std::string_view(input).substr(0, k));
    ASSERT_TRUE(g.complete());
    EXPECT_EQ(describe(grown.request()), c.want);
    EXPECT_LE(grown.scanned(), c.line.size()) << "no byte is searched twice";
  }
}

TEST(MemcacheRequestParser, every_invalid_line_gives_the_same_error_however_split) {
  for (const Invalid& c : invalid_cases()) {
    SCOPED_TRACE(c.name);
    const std::string input = c.line + "NEXT";
    expect_truncations_need_more(c.line);
    for (std::size_t cut = 0; cut <= input.size(); ++cut) {
      RequestParser p;
      std::string moved;
      ParseResult r = parse_split(p, input, cut, moved);
      ASSERT_TRUE(r.failed()) << "cut at " << cut;
      EXPECT_EQ(r.error, c.error);
      EXPECT_EQ(std::string(r.reply), c.reply);
      EXPECT_EQ(r.consumed, c.line.size());
      EXPECT_EQ(r.swallow, c.swallow);
      EXPECT_EQ(r.noreply, c.noreply);
    }
  }
}

TEST(MemcacheRequestParser, a_line_over_2048_bytes_closes_the_connection_as_soon_as_it_is_known) {
  RequestLimits limits;
  const std::string long_set = "set " + std::string(3000, 'k');
  RequestParser p(limits);
  EXPECT_TRUE(p.parse(std::string_view(long_set).substr(0, 2048)).need_more());
  ParseResult r = p.parse(std::string_view(long_set).substr(0, 2049));
  ASSERT_TRUE(r.failed());
  EXPECT_EQ(r.error, ParseError::line_too_long);
  EXPECT_TRUE(r.reply.empty()) << "no reply: the server closes";
  // The same verdict when the whole line and its end arrive at once.
  RequestParser whole(limits);
  EXPECT_EQ(whole.parse(long_set + "\r\n").error, ParseError::line_too_long);
  // A line of exactly 2048 bytes before its "\n" is still parsed (and answered).
  RequestParser edge(limits);
  std::string at_limit = "bogus " + std::string(2048 - 7, 'x') + "\r\n";
  ASSERT_EQ(at_limit.size(), 2049u);
  EXPECT_EQ(edge.parse(at_limit).error, ParseError::unknown_command);
}

TEST(MemcacheRequestParser, get_and_gets_lines_may_be_longer) {
  std::string keys;
  for (int i = 0; i < 500; ++i) keys += " key" + std::to_string(i);
  for (std::string command : {"get", "gets"}) {
    RequestParser p;
    ParseResult r = p.parse(command + keys + "\r\n");
    ASSERT_TRUE(r.complete()) << command;
    EXPECT_EQ(p.request().key_count, 500u);
  }
  RequestParser gat;
  EXPECT_EQ(gat.parse("gat 1" + keys + "\r\n").error, ParseError::line_too_long) << "memcached excepts get/gets only";
  RequestLimits small;
  small.max_get_line = 100;
  RequestParser limited(small);
  EXPECT_EQ(limited.parse("get" + keys).error, ParseError::line_too_long);
}

TEST(MemcacheRequestParser, a_value_over_the_limit_is_refused_and_its_block_swallowed) {
  RequestLimits limits;
  limits.max_data_length = 10;
  RequestParser p(limits);
  ParseResult ok = p.parse("set k 0 0 10\r\n");
  ASSERT_TRUE(ok.complete());
  EXPECT_EQ(p.request().data_block(), 12u);
  p.reset();
  ParseResult big = p.parse("set k 0 0 11 noreply\r\n");
  EXPECT_EQ(big.error, ParseError::too_large);
  EXPECT_EQ(big.reply, wire::kTooLarge);
  EXPECT_EQ(big.swallow, 13u);
  EXPECT_TRUE(big.noreply);
}

TEST(MemcacheRequestParser, keys_of_a_multiget_are_views_into_the_input) {
  const std::string input = "get a bb ccc\r\n";
  RequestParser p;
  ASSERT_TRUE(p.parse(input).complete());
  Tokens t(p.request().keys);
  std::vector<std::string_view> keys;
  for (std::string_view k = t.next(); !k.empty(); k = t.next()) keys.push_back(k);
  ASSERT_EQ(keys.size(), 3u);
  EXPECT_EQ(keys[2], "ccc");
  EXPECT_EQ(keys[2].data(), input.data() + 9) << "zero copy";
}

TEST(MemcacheRequestParser, meta_flag_tokens_are_found_in_request_order) {
  RequestParser p;
  ASSERT_TRUE(p.parse("mg k t Oxyz v c\r\n").complete());
  const MetaFlags& m = p.request().meta;
  EXPECT_EQ(m.token('O'), "xyz");
  EXPECT_EQ(m.token('v'), "");
  EXPECT_TRUE(m.has('c'));
  EXPECT_FALSE(m.has('q'));
  Tokens t(m.text);
  std::string order;
  for (std::string_view f = t.next(); !f.empty(); f = t.next()) order += f[0];
  EXPECT_EQ(order, "tOvc");
}

// The line without its line end, as parse_line takes it.
std::string_view line_of(const std::string& input) {
  std::string_view line(input);
  if (line.ends_with('\n')) line.remove_suffix(1);
  if (line.ends_with('\r')) line.remove_suffix(1);
  return line;
}

// #10: parse_line_after reuses the flags of the command before when a line repeats them; whatever the two lines,
// its request and verdict are parse_line's. Every table line after every meta command of the tables and a few
// more, and each of those commands again with other keys (valid, too long, with a control character, base64, after
// two spaces) and with its flags changed (one more space, one flag less, another opaque).
TEST(MemcacheRequestParser, a_line_after_a_meta_command_parses_as_it_does_alone_issue_10) {
  std::vector<std::string> previous = {"mg k k f v q\r\n", "mg k O123 v t\r\n", "mg k\r\n", "mg YQ== b v\r\n",
                                       "md k q I T30\r\n", "ma k D5 N0 J7 MI\r\n", "ms k 2 T1\r\n", "get k\r\n"};
  std::vector<std::string> lines;
  for (const Valid& c : valid_cases()) {
    lines.push_back(c.line);
    if (c.line.starts_with("mg ") || c.line.starts_with("md ") || c.line.starts_with("ma ")) previous.push_back(c.line);
  }
  for (const Invalid& c : invalid_cases()) lines.push_back(c.line);
  for (const std::string& p : previous) {
    const std::size_t key_end = p.find_first_of(" \r\n", 3);
    const std::string cm = p.substr(0, 3);
    const std::string flags = p.substr(key_end);
    const std::string keys[] = {"other", std::string(250, 'x'), std::string(251, 'x'), "a\x01z", "YWJj", "YWJ", " k2"};
    for (const std::string& key : keys) lines.push_back(cm + key + flags);
    lines.push_back(cm + "k2 " + flags);
    lines.push_back(cm + "k2" + flags.substr(0, flags.size() - 2) + " \r\n");
    lines.push_back(cm + "k2" + flags.substr(0, flags.rfind(' ') == 2 ? 2 : flags.rfind(' ')) + "\r\n");
    lines.push_back(cm + "k2 O999" + flags);
    lines.push_back("mgx k2" + flags);
  }
  for (const std::string& p : previous) {
    Request prev;
    ASSERT_TRUE(parse_line(line_of(p), static_cast<std::uint32_t>(p.size()), {}, prev).complete()) << p;
    for (const std::string& l : lines) {
      SCOPED_TRACE("'" + p + "' then '" + l + "'");
      const auto consumed = static_cast<std::uint32_t>(l.size());
      Request alone;
      const ParseResult want = parse_line(line_of(l), consumed, {}, alone);
      Request after;
      const ParseResult got = parse_line_after(line_of(l), consumed, {}, prev, after);
      Request reused = prev;  // `out` may be `previous`
      const ParseResult got_in_place = parse_line_after(line_of(l), consumed, {}, reused, reused);
      for (const auto& [r, req] : {std::pair{got, after}, std::pair{got_in_place, reused}}) {
        EXPECT_EQ(r.status, want.status);
        EXPECT_EQ(r.error, want.error);
        EXPECT_EQ(r.consumed, want.consumed);
        EXPECT_EQ(r.swallow, want.swallow);
        EXPECT_EQ(r.reply, want.reply);
        EXPECT_EQ(r.noreply, want.noreply);
        if (!want.complete()) continue;
        EXPECT_EQ(describe(req), describe(alone));
        EXPECT_EQ(req.meta.set, alone.meta.set);
        EXPECT_EQ(req.key.data(), alone.key.data()) << "views into the line";
        EXPECT_EQ(req.meta.text.data(), alone.meta.text.data());
        EXPECT_EQ(req.meta.opaque.data(), alone.meta.opaque.data());
      }
    }
  }
}

TEST(MemcacheRequestParser, base64_keys_decode) {
  char out[kMaxKeyLength];
  std::size_t n = decode_base64("a2V5", out, sizeof out);
  EXPECT_EQ(std::string_view(out, n), "key");
  n = decode_base64("AP8=", out, sizeof out);
  EXPECT_EQ(std::string_view(out, n), std::string_view("\x00\xff", 2));
  EXPECT_EQ(decode_base64("a2V", out, sizeof out), 0u);
  EXPECT_EQ(decode_base64("a=V5", out, sizeof out), 0u);
  EXPECT_EQ(decode_base64("a2V5", out, 2), 0u);
}

TEST(MemcacheRequestParser, data_block_end_is_checked) {
  EXPECT_TRUE(data_block_ends_well("hello\r\n"));
  EXPECT_TRUE(data_block_ends_well("\r\n"));
  EXPECT_FALSE(data_block_ends_well("helloXX"));
  EXPECT_FALSE(data_block_ends_well("\n"));
}

// ---- a pipelined conversation, as a server would drive it ----------------------------------------------------

// Feeds `input` in pieces ending at `cuts`, parsing commands, taking data blocks and swallowing refused ones from
// a SliceQueue exactly as request_parser.hpp describes; returns one transcript line per event.
std::string converse(const std::string& input, const std::vector<std::size_t>& cuts) {
  RequestLimits limits;
  limits.max_data_length = 100;
  RequestParser parser(limits);
  SliceQueue in;
  std::string transcript;
  std::string line;           // bytes of the current command line gathered so far
  std::uint64_t block = 0;    // data block bytes still to take
  std::uint64_t swallow = 0;  // refused bytes still to drop
  std::string value;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(input.size());
  std::size_t begin = 0;
  for (std::size_t end : ends) {
    if (end > begin) in.push(Slice::copy_of(std::string_view(input).substr(begin, end - begin)));
    begin = std::max(begin, end);
    for (;;) {
      if (swallow > 0) {
        swallow = skip_bytes(in, swallow);
        if (swallow > 0) break;
        transcript += "swallowed\n";
      }
      if (block > 0) {
        while (block > 0 && !in.empty()) {
          std::string_view piece = in.front().view().substr(0, block);
          value += piece;
          in.consume(piece.size());
          block -= piece.size();
        }
        if (block > 0) break;
        transcript += data_block_ends_well(value) ? "data " + value.substr(0, value.size() - 2) + "\n"
                                                  : std::string(wire::kBadDataChunk) + "\n";
        value.clear();
      }
      if (in.empty()) break;
      // Move the queued bytes into the line buffer, then let the parser look at them.
      while (!in.empty()) {
        line += in.front().view();
        in.consume(in.front().size());
      }
      ParseResult r = parser.parse(line);
      if (r.need_more()) break;
      std::string rest = line.substr(r.consumed);
      if (r.complete()) {
        transcript += describe(parser.request()) + "\n";
        block = parser.request().data_block();
      } else if (r.error == ParseError::line_too_long) {
        return transcript + "close\n";
      } else {
        transcript += std::string(r.reply) + (r.noreply ? " (silent)" : "") + "\n";
        swallow = r.swallow;
      }
      parser.reset();
      line.clear();
      if (!rest.empty()) in.push(Slice::copy_of(rest));
    }
  }
  return transcript;
}

const std::string kConversation =
    "set a 1 0 5\r\nhello\r\n"
    "get a b\n"
    "set b 0 0 3 noreply\r\nxyzXY"      // bad data chunk
    "ms c 2 T0 F3\r\nhi\r\n"
    "set big 0 0 150\r\n" + std::string(150, 'v') + "\r\n"  // refused, swallowed
    "ms d 3 Zq\r\nabc\r\n"                                   // bad flag: swallowed too
    "bogus\r\n"
    "incr a x noreply\r\n"
    "mn\r\n";

TEST(MemcacheRequestParser, a_pipelined_conversation_reads_the_same_whole_split_and_byte_by_byte) {
  const std::string whole = converse(kConversation, {});
  EXPECT_EQ(whole,
            "set key=a flags=1 bytes=5\ndata hello\nget key=a count=2 keys=a b\nset key=b bytes=3 noreply\n"
            "CLIENT_ERROR bad data chunk\nms key=c bytes=2 [T0 F3] T=0 F=3\ndata hi\n"
            "SERVER_ERROR object too large for cache\nswallowed\nCLIENT_ERROR invalid flag\nswallowed\nERROR\n"
            "CLIENT_ERROR invalid numeric delta argument (silent)\nmn\n");
  for (std::size_t cut = 0; cut <= kConversation.size(); ++cut) {
    ASSERT_EQ(converse(kConversation, {cut}), whole) << "cut at " << cut;
  }
  std::vector<std::size_t> every;
  for (std::size_t k = 1; k < kConversation.size(); ++k) every.push_back(k);
  EXPECT_EQ(converse(kConversation, every), whole);
}

TEST(MemcacheRequestParser, a_line_too_long_ends_the_conversation_whatever_the_split) {
  const std::string input = "get a\r\nset " + std::string(2100, 'k') + " 0 0 1\r\nx\r\n";
  const std::string whole = converse(input, {});
  EXPECT_EQ(whole, "get key=a\nclose\n");
  for (std::size_t cut = 0; cut <= input.size(); cut += 7) ASSERT_EQ(converse(input, {cut}), whole);
}

}  // namespace
}  // namespace ringlet::memcache
