// parser_test.cpp — the request-head parser over tables of valid and malformed heads. Every valid head is also fed
// at every truncation point (incomplete, never an error), grown one byte per call on one parser (the resume path),
// and split in two calls at every position with the bytes moved between calls (same result as one call). Every
// malformed head must give the same status however it is split, and never complete.
#include "ringlet/proto/http/parser.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "ringlet/proto/http/uri.hpp"

namespace ringlet::http {
namespace {

struct Expect {
  Method method = Method::get;
  std::string target = "/";
  std::string path = "/";
  std::string query;
  TargetForm form = TargetForm::origin;
  int minor = 1;
  bool keep_alive = true;
  BodyFraming framing = BodyFraming::none;
  std::uint64_t content_length = 0;
  std::string host = "h";
  bool expect_continue = false;
  std::size_t headers = 1;
};

struct ValidCase {
  const char* name;
  std::string head;  // the head; tests append a body/next request after it to check head_length
  Expect expect;
};

std::vector<ValidCase> valid_cases() {
  std::vector<ValidCase> v;
  auto add = [&v](const char* name, std::string head, auto tweak) {
    Expect x;
    tweak(x);
    v.push_back({name, std::move(head), x});
  };
  auto none = [](Expect&) {};
  add("simple_get", "GET / HTTP/1.1\r\nHost: h\r\n\r\n", none);
  add("bare_lf_line_ends", "GET / HTTP/1.1\nHost: h\n\n", none);
  add("mixed_line_ends", "GET / HTTP/1.1\r\nHost: h\n\r\n", none);
  add("leading_empty_lines", "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", none);
  add("path_and_query", "GET /a/b.html?x=1&y=%20 HTTP/1.1\r\nHost: h\r\n\r\n", [](Expect& x) {
    x.target = "/a/b.html?x=1&y=%20";
    x.path = "/a/b.html";
    x.query = "x=1&y=%20";
  });
  add("http10_default_close", "GET / HTTP/1.0\r\n\r\n", [](Expect& x) {
    x.minor = 0;
    x.keep_alive = false;
    x.host = "";
    x.headers = 0;
  });
  add("http10_keep_alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", [](Expect& x) {
    x.minor = 0;
    x.host = "";
  });
  add("http11_close", "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, CLOSE\r\n\r\n", [](Expect& x) {
    x.keep_alive = false;
    x.headers = 2;
  });
  add("http12_is_11", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", none);
  add("content_length", "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n", [](Expect& x) {
    x.method = Method::post;
    x.target = x.path = "/up";
    x.framing = BodyFraming::content_length;
    x.content_length = 5;
    x.headers = 2;
  });
  add("content_length_repeated_same", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 7, 7\r\nContent-Length: 7\r\n\r\n",
      [](Expect& x) {
        x.method = Method::post;
        x.framing = BodyFraming::content_length;
        x.content_length = 7;
        x.headers = 3;
      });
  add("content_length_zero", "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", [](Expect& x) {
    x.method = Method::put;
    x.framing = BodyFraming::content_length;
    x.headers = 2;
  });
  add("chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", [](Expect& x) {
    x.method = Method::post;
    x.framing = BodyFraming::chunked;
    x.headers = 2;
  });
  add("chunked_case_and_empty_elements", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: , CHUNKED\r\n\r\n",
      [](Expect& x) {
        x.method = Method::post;
        x.framing = BodyFraming::chunked;
        x.headers = 2;
      });
  add("expect_continue", "PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
      [](Expect& x) {
        x.method = Method::put;
        x.expect_continue = true;
        x.framing = BodyFraming::content_length;
        x.content_length = 3;
        x.headers = 3;
      });
  add("expect_ignored_in_http10", "PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", [](Expect& x) {
    x.method = Method::put;
    x.minor = 0;
    x.keep_alive = false;
    x.host = "";
  });
  add("ows_trimmed", "GET / HTTP/1.1\r\nHost:  \t h \t\r\n\r\n", none);
  add("empty_value", "GET / HTTP/1.1\r\nHost: h\r\nX-Empty:\r\n\r\n", [](Expect& x) { x.headers = 2; });
  add("obs_text_value", "GET / HTTP/1.1\r\nHost: h\r\nX-Utf8: caf\xc3\xa9\r\n\r\n", [](Expect& x) { x.headers = 2; });
  add("host_with_port", "GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", [](Expect& x) { x.host = "example.com:8080"; });
  add("host_ipv6", "GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", [](Expect& x) { x.host = "[::1]:80"; });
  add("empty_host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", [](Expect& x) { x.host = ""; });
  add("absolute_form", "GET http://example.com:81/p?q HTTP/1.1\r\nHost: other\r\n\r\n", [](Expect& x) {
    x.target = "http://example.com:81/p?q";
    x.form = TargetForm::absolute;
    x.path = "/p";
    x.query = "q";
    x.host = "example.com:81";
  });
  add("absolute_form_no_path", "GET https://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n", [](Expect& x) {
    x.target = "https://example.com";
    x.form = TargetForm::absolute;
    x.host = "example.com";
  });
  add("asterisk_form", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", [](Expect& x) {
    x.method = Method::options;
    x.target = "*";
    x.path = "";
    x.form = TargetForm::asterisk;
  });
  add("authority_form", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", [](Expect& x) {
    x.method = Method::connect;
    x.target = "example.com:443";
    x.path = "";
    x.form = TargetForm::authority;
    x.host = "example.com:443";
  });
  add("unknown_method_is_other", "BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n", [](Expect& x) {
    x.method = Method::other;
    x.target = x.path = "/pot";
  });
  add("lowercase_method_is_other", "get / HTTP/1.1\r\nHost: h\r\n\r\n", [](Expect& x) { x.method = Method::other; });
  add("utf8_target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", [](Expect& x) { x.target = x.path = "/caf\xc3\xa9"; });
  add("typical_browser",
      "GET /index.html HTTP/1.1\r\n"
      "Host: www.example.com\r\n"
      "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0\r\n"
      "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
      "Accept-Language: en-US,en;q=0.5\r\n"
      "Accept-Encoding: gzip, deflate, br\r\n"
      "If-None-Match: \"abc\"\r\n"
      "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n"
      "Range: bytes=0-99\r\n"
      "If-Range: \"abc\"\r\n"
      "Connection: keep-alive\r\n"
      "\r\n",
      [](Expect& x) {
        x.target = x.path = "/index.html";
        x.host = "www.example.com";
        x.headers = 10;
      });
  return v;
}

struct Outcome {
  ParseResult result;
  std::optional<Request> request;
};

void check_request(const ValidCase& c, const Request& r) {
  const Expect& x = c.expect;
  EXPECT_EQ(r.method(), x.method);
  EXPECT_EQ(r.target(), x.target);
  EXPECT_EQ(r.path(), x.path);
  EXPECT_EQ(r.query(), x.query);
  EXPECT_EQ(r.target_form(), x.form);
  EXPECT_EQ(r.version_minor(), x.minor);
  EXPECT_EQ(r.keep_alive(), x.keep_alive);
  EXPECT_EQ(r.framing(), x.framing);
  EXPECT_EQ(r.content_length(), x.content_length);
  EXPECT_EQ(r.host(), x.host);
  EXPECT_EQ(r.expect_continue(), x.expect_continue);
  EXPECT_EQ(r.header_count(), x.headers);
  std::size_t n = 0;
  for (const HeaderField& f : r.headers()) {
    EXPECT_FALSE(f.name.empty());
    ++n;
  }
  EXPECT_EQ(n, x.headers);
}

// The head followed by bytes that belong to the next message: the parser must stop exactly at the head's end.
constexpr std::string_view kTrailing = "NEXT";

TEST(RequestParser, valid_heads_parse_in_one_call) {
  for (const ValidCase& c : valid_cases()) {
    SCOPED_TRACE(c.name);
    std::string data = c.head + std::string(kTrailing);
    RequestParser p;
    ParseResult r = p.parse(data);
    ASSERT_TRUE(r.complete()) << (r.reason ? r.reason : "incomplete");
    EXPECT_EQ(r.head_length, c.head.size());
    EXPECT_EQ(p.request().head_length(), c.head.size());
    check_request(c, p.request());
  }
}

TEST(RequestParser, every_truncation_point_is_incomplete) {
  for (const ValidCase& c : valid_cases()) {
    SCOPED_TRACE(c.name);
    for (std::size_t cut = 0; cut < c.head.size(); ++cut) {
      RequestParser p;
      std::string prefix = c.head.substr(0, cut);  // its own allocation: ASan sees any read past it
      ParseResult r = p.parse(prefix);
      ASSERT_TRUE(r.incomplete()) << "cut at " << cut << ": " << (r.reason ? r.reason : "complete");
    }
  }
}

TEST(RequestParser, growing_one_byte_per_call_resumes_to_the_same_result) {
  for (const ValidCase& c : valid_cases()) {
    SCOPED_TRACE(c.name);
    RequestParser p;
    std::string data = c.head + std::string(kTrailing);
    for (std::size_t n = 0; n < c.head.size(); ++n) {
      std::string prefix = data.substr(0, n);
      ASSERT_TRUE(p.parse(prefix).incomplete()) << "at " << n;
    }
    std::string whole = data;  // moved: offsets, not pointers, survive between calls
    ParseResult r = p.parse(whole);
    ASSERT_TRUE(r.complete());
    EXPECT_EQ(r.head_length, c.head.size());
    check_request(c, p.request());
    EXPECT_EQ(p.request().base(), whole.data());
  }
}

TEST(RequestParser, every_two_way_split_gives_the_one_call_result) {
  for (const ValidCase& c : valid_cases()) {
    SCOPED_TRACE(c.name);
    std::string data = c.head + std::string(kTrailing);
    for (std::size_t cut = 0; cut <= data.size(); ++cut) {
      RequestParser p;
      std::string first = data.substr(0, cut);
      ParseResult r1 = p.parse(first);
      std::string second = data;
      ParseResult r2 = p.parse(second);
      ASSERT_TRUE(r2.complete()) << "cut at " << cut;
      EXPECT_EQ(r2.head_length, c.head.size());
      if (r1.complete()) {
        EXPECT_EQ(r1.head_length, r2.head_length);
      }
      check_request(c, p.request());
    }
  }
}

TEST(RequestParser, known_header_lookups_and_find) {
  std::string head =
      "GET /x HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"a\"\r\nif-modified-since: d1\r\nRANGE: bytes=1-2\r\n"
      "If-Range: \"a\"\r\nContent-Type: text/plain\r\nX-Custom:  v  \r\nIf-None-Match: \"b\"\r\n\r\n";
  RequestParser p;
  ASSERT_TRUE(p.parse(head).complete());
  const Request& r = p.request();
  EXPECT_EQ(r.if_none_match(), "\"a\"");
  EXPECT_TRUE(r.repeated(KnownHeader::if_none_match));
  EXPECT_FALSE(r.repeated(KnownHeader::range));
  EXPECT_EQ(r.if_modified_since(), "d1");
  EXPECT_EQ(r.range(), "bytes=1-2");
  EXPECT_EQ(r.if_range(), "\"a\"");
  EXPECT_EQ(r.content_type(), "text/plain");
  EXPECT_TRUE(r.has(KnownHeader::content_type));
  EXPECT_FALSE(r.has(KnownHeader::connection));
  EXPECT_EQ(r.connection(), "");
  EXPECT_EQ(r.find("x-custom"), std::optional<std::string_view>("v"));
  EXPECT_EQ(r.find("X-CUSTOM"), std::optional<std::string_view>("v"));
  EXPECT_EQ(r.find("x-missing"), std::nullopt);
  EXPECT_EQ(r.find("if-none-match"), std::optional<std::string_view>("\"a\""));
  EXPECT_EQ(r.method_text(), "GET");
  EXPECT_EQ(method_name(r.method()), "GET");
  std::vector<std::string> names;
  for (const HeaderField& f : r.headers()) names.emplace_back(f.name);
  EXPECT_EQ(names, (std::vector<std::string>{"Host", "If-None-Match", "if-modified-since", "RANGE", "If-Range",
                                             "Content-Type", "X-Custom", "If-None-Match"}));
}

TEST(RequestParser, query_presence_is_told_apart) {
  RequestParser p;
  ASSERT_TRUE(p.parse("GET /a? HTTP/1.1\r\nHost: h\r\n\r\n").complete());
  EXPECT_TRUE(p.request().has_query());
  EXPECT_EQ(p.request().query(), "");
  p.reset();
  ASSERT_TRUE(p.parse("GET /a HTTP/1.1\r\nHost: h\r\n\r\n").complete());
  EXPECT_FALSE(p.request().has_query());
}

TEST(RequestParser, reset_parses_pipelined_requests) {
  std::string data = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
  RequestParser p;
  ParseResult r = p.parse(data);
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(p.request().path(), "/1");
  std::string_view rest = std::string_view(data).substr(r.head_length);
  p.reset();
  r = p.parse(rest);
  ASSERT_TRUE(r.complete());
  EXPECT_EQ(r.head_length, rest.size());
  EXPECT_EQ(p.request().path(), "/2");
  EXPECT_FALSE(p.request().keep_alive());
}

TEST(RequestParser, started_tells_a_new_request_from_leading_empty_lines) {
  RequestParser p;
  EXPECT_FALSE(p.started());
  ASSERT_TRUE(p.parse("\r\n").incomplete());
  EXPECT_FALSE(p.started());
  ASSERT_TRUE(p.parse("\r\nG").incomplete());
  EXPECT_TRUE(p.started());
}

struct BadCase {
  const char* name;
  std::string head;
  int status;
  ParserLimits limits{};
};

ParserLimits small_limits() {
  ParserLimits l;
  l.max_request_line = 32;
  l.max_header_bytes = 64;
  l.max_headers = 3;
  l.max_leading_empty_lines = 2;
  return l;
}

ParserLimits short_lines() {
  ParserLimits l;
  l.max_header_line = 16;
  return l;
}

ParserLimits strict() {
  ParserLimits l;
  l.strict_crlf = true;
  return l;
}

std::vector<BadCase> bad_cases() {
  const std::string host = "Host: h\r\n";
  return {
      {"bare_cr_in_request_line", "GET /\r HTTP/1.1\r\n" + host + "\r\n", 400},
      {"bare_cr_at_request_line_end", "GET / HTTP/1.1\r\r\n" + host + "\r\n", 400},
      {"bare_cr_in_value", "GET / HTTP/1.1\r\nHost: h\rx\r\n\r\n", 400},
      {"bare_cr_in_name", "GET / HTTP/1.1\r\nHo\rst: h\r\n\r\n", 400},
      {"bare_cr_as_empty_line", "GET / HTTP/1.1\r\nHost: h\r\n\r\r\n", 400},
      {"two_spaces_after_method", "GET  / HTTP/1.1\r\n" + host + "\r\n", 400},
      {"two_spaces_before_version", "GET /  HTTP/1.1\r\n" + host + "\r\n", 400},
      {"trailing_space", "GET / HTTP/1.1 \r\n" + host + "\r\n", 400},
      {"tab_separator", "GET\t/ HTTP/1.1\r\n" + host + "\r\n", 400},
      {"leading_space", " GET / HTTP/1.1\r\n" + host + "\r\n", 400},
      {"missing_version", "GET /\r\n" + host + "\r\n", 400},
      {"http09", "GET /\r\n\r\n", 400},
      {"lowercase_http", "GET / http/1.1\r\n" + host + "\r\n", 400},
      {"version_two_digit_minor", "GET / HTTP/1.10\r\n" + host + "\r\n", 400},
      {"version_no_minor", "GET / HTTP/1\r\n" + host + "\r\n", 400},
      {"http2", "GET / HTTP/2.0\r\n" + host + "\r\n", 505},
      {"http3", "GET / HTTP/3.0\r\n" + host + "\r\n", 505},
      {"http0", "GET / HTTP/0.9\r\n" + host + "\r\n", 505},
      {"ctl_in_target", "GET /a\x01 HTTP/1.1\r\n" + host + "\r\n", 400},
      {"del_in_target", "GET /a\x7f HTTP/1.1\r\n" + host + "\r\n", 400},
      {"fragment_in_target", "GET /a#f HTTP/1.1\r\n" + host + "\r\n", 400},
      {"relative_target", "GET a/b HTTP/1.1\r\n" + host + "\r\n", 400},
      {"asterisk_with_get", "GET * HTTP/1.1\r\n" + host + "\r\n", 400},
      {"connect_with_origin_form", "CONNECT / HTTP/1.1\r\n" + host + "\r\n", 400},
      {"authority_form_with_get", "GET example.com:80 HTTP/1.1\r\n" + host + "\r\n", 400},
      {"absolute_form_userinfo", "GET http://u@h/ HTTP/1.1\r\n" + host + "\r\n", 400},
      {"absolute_form_empty_authority", "GET http:///x HTTP/1.1\r\n" + host + "\r\n", 400},
      {"bad_method_char", "GE(T / HTTP/1.1\r\n" + host + "\r\n", 400},
      {"obs_fold", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n", 400},
      {"obs_fold_tab", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\tb\r\n\r\n", 400},
      {"space_before_first_header", "GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400},
      {"space_before_colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400},
      {"tab_before_colon", "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", 400},
      {"no_colon", "GET / HTTP/1.1\r\nHost h\r\n\r\n", 400},
      {"empty_name", "GET / HTTP/1.1\r\n: h\r\nHost: h\r\n\r\n", 400},
      {"bad_name_char", "GET / HTTP/1.1\r\nHo(st: h\r\n\r\n", 400},
      {"nul_in_value", std::string("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n", 34), 400},
      {"ctl_in_value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x1b b\r\n\r\n", 400},
      {"del_in_value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n", 400},
      {"host_missing", "GET / HTTP/1.1\r\n\r\n", 400},
      {"host_repeated", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400},
      {"host_bad_chars", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
      {"host_userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400},
      {"host_space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
      {"cl_non_digit", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5x\r\n\r\n", 400},
      {"cl_negative", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400},
      {"cl_plus", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\n", 400},
      {"cl_empty", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 400},
      {"cl_empty_element", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5,\r\n\r\n", 400},
      {"cl_overflow", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", 400},
      {"cl_just_over_int64", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775808\r\n\r\n", 400},
      {"cl_list_differs", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n", 400},
      {"cl_fields_differ", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
      {"cl_and_te", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"te_and_cl", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400},
      {"te_http10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"te_not_final", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400},
      {"te_only_gzip", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
      {"te_chunked_twice", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"te_empty", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n", 400},
      {"te_garbage", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", 400},
      {"te_chunked_with_params", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;a=b\r\n\r\n", 400},
      {"te_unknown_before_chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
      {"te_unknown_field_before_chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: foo\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
      {"expect_other", "PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue, x\r\n\r\n", 417},
      {"expect_unknown", "PUT / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n", 417},
      {"request_line_too_long", "GET /" + std::string(40, 'a') + " HTTP/1.1\r\n" + host + "\r\n", 414, small_limits()},
      {"request_line_too_long_default", "GET /" + std::string(9000, 'a') + " HTTP/1.1\r\n" + host + "\r\n", 414},
      {"request_line_long_with_bare_cr", "GET /" + std::string(9000, '\r') + " HTTP/1.1\r\n" + host + "\r\n", 414},
      {"headers_too_large", "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(60, 'v') + "\r\n\r\n", 431, small_limits()},
      {"headers_too_large_default", "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(17000, 'v') + "\r\n\r\n", 431},
      {"too_many_headers", "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 431, small_limits()},
      {"too_many_empty_lines", "\r\n\r\n\r\nGET / HTTP/1.1\r\n" + host + "\r\n", 400, small_limits()},
      {"strict_bare_lf_request_line", "GET / HTTP/1.1\nHost: h\r\n\r\n", 400, strict()},
      {"strict_bare_lf_header", "GET / HTTP/1.1\r\nHost: h\n\r\n", 400, strict()},
      {"strict_bare_lf_end", "GET / HTTP/1.1\r\nHost: h\r\n\n", 400, strict()},
      {"strict_bare_lf_leading", "\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400, strict()},
      {"header_line_too_long", "GET / HTTP/1.1\r\nHost: h\r\nX-Long: 0123456789\r\n\r\n", 431, short_lines()},
      {"header_line_too_long_bare_lf", "GET / HTTP/1.1\r\nHost: h\r\nX-Long: 0123456789\n\r\n", 431, short_lines()},
      {"header_line_too_long_first", "GET / HTTP/1.1\r\nX-Long: 0123456789\r\nHost: h\r\n\r\n", 431, short_lines()},
      {"header_line_too_long_server_default",
       "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(10 * 1024, 'v') + "\r\n\r\n", 431,
       ParserLimits::server_defaults()},
  };
}

TEST(RequestParser, malformed_heads_give_their_status) {
  for (const BadCase& c : bad_cases()) {
    SCOPED_TRACE(c.name);
    RequestParser p(c.limits);
    ParseResult r = p.parse(c.head);
    ASSERT_TRUE(r.error()) << (r.complete() ? "complete" : "incomplete");
    EXPECT_EQ(r.http_status, c.status) << r.reason;
    EXPECT_NE(r.reason, nullptr);
    ParseResult again = p.parse(c.head);  // the error is sticky
    EXPECT_EQ(again.http_status, c.status);
  }
}

TEST(RequestParser, malformed_heads_give_the_same_status_at_every_split) {
  for (const BadCase& c : bad_cases()) {
    SCOPED_TRACE(c.name);
    const std::size_t step = c.head.size() > 2000 ? 97 : 1;  // long cases: a sample of split points
    for (std::size_t cut = 0; cut <= c.head.size(); cut += step) {
      RequestParser p(c.limits);
      std::string first = c.head.substr(0, cut);
      ParseResult r1 = p.parse(first);
      ASSERT_FALSE(r1.complete()) << "cut at " << cut;
      if (r1.error()) {
        EXPECT_EQ(r1.http_status, c.status) << "cut at " << cut;
      }
      std::string second = c.head;
      ParseResult r2 = p.parse(second);
      ASSERT_TRUE(r2.error()) << "cut at " << cut;
      EXPECT_EQ(r2.http_status, c.status) << "cut at " << cut << ": " << r2.reason;
    }
  }
}

TEST(RequestParser, an_overlong_request_line_is_refused_before_its_end_arrives) {
  ParserLimits l;
  l.max_request_line = 100;
  RequestParser p(l);
  std::string line = "GET /" + std::string(200, 'a');
  EXPECT_TRUE(p.parse(line.substr(0, 101)).incomplete());  // could still end in CR LF within the limit
  ParseResult r = p.parse(line);
  ASSERT_TRUE(r.error());
  EXPECT_EQ(r.http_status, 414);
}

TEST(RequestParser, an_oversized_header_section_is_refused_before_its_end_arrives) {
  ParserLimits l;
  l.max_header_bytes = 100;
  RequestParser p(l);
  std::string head = "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(200, 'v');
  ParseResult r = p.parse(head);
  ASSERT_TRUE(r.error());
  EXPECT_EQ(r.http_status, 431);
}

TEST(RequestParser, limits_are_inclusive) {
  ParserLimits l;
  l.max_request_line = 16;  // "GET /abc HTTP/1.1" is 17
  l.max_headers = 1;
  std::string at = "GET /ab HTTP/1.1\r\nHost: h\r\n\r\n";  // request line of exactly 16
  RequestParser p(l);
  EXPECT_TRUE(p.parse(at).complete());
  l.max_header_bytes = static_cast<std::uint32_t>(std::string_view("Host: h\r\n\r\n").size());
  RequestParser q(l);
  EXPECT_TRUE(q.parse(at).complete());
  l.max_header_bytes -= 1;
  RequestParser s(l);
  EXPECT_EQ(s.parse(at).http_status, 431);
}

TEST(RequestParser, a_header_line_at_its_limit_passes_at_every_truncation_point) {
  ParserLimits l = short_lines();
  const std::string head = "GET / HTTP/1.1\r\nHost: h\r\nX-Long: 01234567\r\n\r\n";  // "X-Long: 01234567" is 16
  for (std::size_t n = 0; n < head.size(); ++n) {
    RequestParser p(l);
    ASSERT_TRUE(p.parse(std::string_view(head).substr(0, n)).incomplete()) << "cut at " << n;
  }
  RequestParser p(l);
  ASSERT_TRUE(p.parse(head).complete());
  EXPECT_EQ(p.request().find("X-Long"), "01234567");
}

TEST(RequestParser, an_overlong_header_line_is_refused_before_its_end_arrives) {
  RequestParser p(ParserLimits::server_defaults());
  // A field line of exactly 8 KiB, then one byte more: that byte could still be the line's CR, the next cannot.
  std::string head = "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(kServerMaxHeaderLine - 3, 'v');
  EXPECT_TRUE(p.parse(head).incomplete());
  EXPECT_TRUE(p.parse(head + "v").incomplete());
  ParseResult r = p.parse(head + "vv");
  ASSERT_TRUE(r.error());
  EXPECT_EQ(r.http_status, 431);
}

TEST(RequestParser, a_hundred_headers_from_a_proxied_client_are_accepted_by_default) {
  std::string head = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 120; ++i) head += "X-Forwarded-" + std::to_string(i) + ": v\r\n";
  head += "\r\n";
  RequestParser p(ParserLimits::server_defaults());
  ASSERT_TRUE(p.parse(head).complete());
  EXPECT_EQ(p.request().header_count(), 121u);
}

TEST(RequestParser, no_head_byte_count_exceeds_max_head_bytes_while_incomplete) {
  // The reader sizes its gather buffer with max_head_bytes(): a stream of garbage that never ends a line, and one
  // of endless header lines, must both be refused by then.
  ParserLimits l = small_limits();
  std::string lines = "\r\n\r\nGET / HTTP/1.1\r\n";
  while (lines.size() < l.max_head_bytes() + 10) lines += "A: b\r\n";
  for (const std::string& data : {std::string(l.max_head_bytes() + 1, 'x'), lines}) {
    RequestParser p(l);
    std::size_t n = 0;
    for (; n <= data.size(); ++n) {
      if (!p.parse(std::string_view(data).substr(0, n)).incomplete()) break;
    }
    EXPECT_LE(n, l.max_head_bytes());
  }
}

TEST(RequestParser, a_head_arriving_byte_by_byte_resumes_where_it_stopped) {
  std::string head = "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(15000, 'v') + "\r\n\r\n";
  RequestParser p;
  for (std::size_t n = 0; n < head.size(); ++n) ASSERT_TRUE(p.parse(std::string_view(head).substr(0, n)).incomplete());
  ASSERT_TRUE(p.parse(head).complete());
  EXPECT_EQ(p.scanned(), head.size());
}

// ---- percent-decoding (uri.hpp) ----

TEST(PercentDecode, decodes_escapes_and_reports_encoded_slash) {
  char out[64];
  auto run = [&out](std::string_view in) {
    PercentDecodeResult r = percent_decode(in, out);
    return std::pair{r, std::string(out, r.ok() ? r.size : 0)};
  };
  auto [r1, s1] = run("/a%20b/%41%62");
  EXPECT_TRUE(r1.ok());
  EXPECT_EQ(s1, "/a b/Ab");
  EXPECT_FALSE(r1.encoded_slash);
  auto [r2, s2] = run("/a%2Fb%2f");
  EXPECT_TRUE(r2.ok());
  EXPECT_EQ(s2, "/a/b/");
  EXPECT_TRUE(r2.encoded_slash);
  EXPECT_EQ(run("/a%00b").first.status, PercentDecodeStatus::nul_byte);
  EXPECT_EQ(run("/a%").first.status, PercentDecodeStatus::bad_escape);
  EXPECT_EQ(run("/a%4").first.status, PercentDecodeStatus::bad_escape);
  EXPECT_EQ(run("/a%zz").first.status, PercentDecodeStatus::bad_escape);
  EXPECT_EQ(run("/a+b").second, "/a+b");
  EXPECT_FALSE(needs_percent_decode("/plain"));
  EXPECT_TRUE(needs_percent_decode("/a%20"));
}

TEST(PercentDecode, works_in_place) {
  std::string s = "/%2e%2E/x%41";
  PercentDecodeResult r = percent_decode(s, std::span<char>(s.data(), s.size()));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(s.substr(0, r.size), "/../xA");
}

}  // namespace
}  // namespace ringlet::http
