// Black-box tests of `ringlet http`: the real binary on both backends, a temporary document root, exact bytes on
// the wire (and a few requests through curl).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "http_harness.hpp"

namespace ringlet::testing::http {
namespace {

// Everything the server sends on a fresh connection until it closes, with the Date value (which changes every
// second) replaced by "<date>", so whole responses can be compared byte for byte.
std::string raw_until_close(const echo::Endpoint& to, const std::string& data) {
  echo::Peer p;
  p.fd = echo::connect_now(to);
  p.out = data;
  p.expect = std::string::npos;  // done at EOF only
  if (p.fd.valid()) echo::drive_one(p, 10s);
  std::size_t date = p.in.find("\r\nDate: ");
  if (date != std::string::npos) p.in.replace(date + 8, 29, "<date>");
  return p.in;
}

class HttpServerTest : public HttpServerFixture {
 protected:
  void SetUp() override {
    HttpServerFixture::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    write_file(root_ + "/file13", "Hello, World!");
    write_file(root_ + "/a.txt", "text file\n");
    big_ = echo::pattern(1 << 20, 7);
    write_file(root_ + "/big.bin", big_);
    mid_ = echo::pattern(100 * 1024, 3);
    write_file(root_ + "/mid.bin", mid_);
    ::mkdir((root_ + "/dir").c_str(), 0755);
    write_file(root_ + "/dir/index.html", "<p>index</p>\n");
    ::mkdir((root_ + "/noindex").c_str(), 0755);
    write_file(root_ + "/noindex/x<y>.txt", "x");
    for (int i = 0; i < 16; ++i) write_file(root_ + "/p" + std::to_string(i), "body " + std::to_string(i));
  }
  std::string big_;
  std::string mid_;
};

TEST_P(HttpServerTest, get_serves_a_small_file_with_all_headers) {
  start();
  HttpResponse r = one(get("/file13"));
  EXPECT_EQ(r.status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(r.body, "Hello, World!");
  EXPECT_EQ(r.header("server"), "ringlet");
  EXPECT_EQ(r.header("content-length"), "13");
  EXPECT_EQ(r.header("content-type"), "application/octet-stream");
  EXPECT_EQ(r.header("date").size(), 29u);
  EXPECT_EQ(r.header("last-modified").size(), 29u);
  EXPECT_EQ(r.header("etag").front(), '"');
  EXPECT_EQ(r.header("accept-ranges"), "bytes");
  EXPECT_FALSE(r.has("connection"));  // keep-alive is the 1.1 default
  EXPECT_EQ(one(get("/a.txt")).header("content-type"), "text/plain");
}

TEST_P(HttpServerTest, head_sends_the_headers_without_a_body) {
  start();
  Exchange ex = request(get("/file13", "", "HEAD") + get("/file13"), 2, {true, false});
  ASSERT_EQ(ex.responses.size(), 2u);
  EXPECT_EQ(ex.responses[0].status, 200);
  EXPECT_EQ(ex.responses[0].header("content-length"), "13");
  EXPECT_EQ(ex.responses[0].body, "");
  EXPECT_EQ(ex.responses[1].body, "Hello, World!");  // nothing stray between the two
  EXPECT_TRUE(ex.rest.empty());
}

TEST_P(HttpServerTest, large_files_arrive_intact) {
  start();
  Exchange ex = request(get("/big.bin") + get("/mid.bin") + get("/big.bin"), 3);
  ASSERT_EQ(ex.responses.size(), 3u);
  EXPECT_EQ(ex.responses[0].body.size(), big_.size());
  EXPECT_TRUE(ex.responses[0].body == big_) << echo::first_difference(big_, ex.responses[0].body);
  EXPECT_TRUE(ex.responses[1].body == mid_) << echo::first_difference(mid_, ex.responses[1].body);
  EXPECT_TRUE(ex.responses[2].body == big_);
}

TEST_P(HttpServerTest, directories_redirect_index_or_refuse) {
  start();
  HttpResponse r = one(get("/dir"));
  EXPECT_EQ(r.status, 301);
  EXPECT_EQ(r.header("location"), "/dir/");
  r = one(get("/dir?x=1"));
  EXPECT_EQ(r.header("location"), "/dir/?x=1");
  r = one(get("/dir/"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "<p>index</p>\n");
  EXPECT_EQ(r.header("content-type"), "text/html");
  EXPECT_EQ(one(get("/noindex/")).status, 403);  // listing is off by default
  EXPECT_EQ(one(get("/a.txt/")).status, 404);
  EXPECT_EQ(one(get("/nothing-here")).status, 404);
  EXPECT_EQ(one(get("/nothing/here")).status, 404);
}

TEST_P(HttpServerTest, dir_listing_escapes_names) {
  start({"--dir-listing"});
  HttpResponse r = one(get("/noindex/"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-type"), "text/html");
  EXPECT_NE(r.body.find("x&lt;y&gt;.txt"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("x<y>"), std::string::npos);
  EXPECT_NE(r.body.find("href=\"x%3Cy%3E.txt\""), std::string::npos) << r.body;
}

TEST_P(HttpServerTest, other_methods_get_405_with_allow_and_unknown_ones_501) {
  start();
  HttpResponse r = one(get("/file13", "", "DELETE"));
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.header("allow"), "GET, HEAD");
  EXPECT_EQ(one(get("/file13", "", "OPTIONS")).status, 405);
  EXPECT_EQ(one(get("/file13", "", "BREW")).status, 501);
  // A POST with a body: the body is drained so the next request on the connection is framed right.
  Exchange ex = request("POST /file13 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello" + get("/file13"), 2);
  ASSERT_EQ(ex.responses.size(), 2u);
  EXPECT_EQ(ex.responses[0].status, 405);
  EXPECT_EQ(ex.responses[1].status, 200);
  EXPECT_EQ(ex.responses[1].body, "Hello, World!");
  // Chunked too.
  ex = request("POST /file13 HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" +
                   get("/a.txt"),
               2);
  ASSERT_EQ(ex.responses.size(), 2u);
  EXPECT_EQ(ex.responses[0].status, 405);
  EXPECT_EQ(ex.responses[1].body, "text file\n");
}

TEST_P(HttpServerTest, conditional_get_answers_304) {
  start();
  HttpResponse full = one(get("/file13"));
  std::string etag = full.header("etag");
  std::string date = full.header("last-modified");
  HttpResponse r = one(get("/file13", "If-None-Match: " + etag + "\r\n"));
  EXPECT_EQ(r.status, 304);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(r.header("etag"), etag);
  EXPECT_EQ(one(get("/file13", "If-None-Match: \"x\", W/" + etag + "\r\n")).status, 304);  // list, weak compare
  EXPECT_EQ(one(get("/file13", "If-None-Match: *\r\n")).status, 304);
  EXPECT_EQ(one(get("/file13", "If-None-Match: \"other\"\r\n")).status, 200);
  EXPECT_EQ(one(get("/file13", "If-Modified-Since: " + date + "\r\n")).status, 304);
  EXPECT_EQ(one(get("/file13", "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n")).status, 200);
  // If-None-Match takes precedence over If-Modified-Since.
  EXPECT_EQ(one(get("/file13", "If-None-Match: \"other\"\r\nIf-Modified-Since: " + date + "\r\n")).status, 200);
  EXPECT_EQ(one(get("/file13", "If-Match: \"other\"\r\n")).status, 412);
  EXPECT_EQ(one(get("/file13", "If-Match: " + etag + "\r\n")).status, 200);
}

TEST_P(HttpServerTest, ranges_answer_206_416_or_200) {
  start();
  HttpResponse r = one(get("/file13", "Range: bytes=0-4\r\n"));
  EXPECT_EQ(r.status, 206);
  EXPECT_EQ(r.body, "Hello");
  EXPECT_EQ(r.header("content-range"), "bytes 0-4/13");
  r = one(get("/file13", "Range: bytes=7-\r\n"));
  EXPECT_EQ(r.body, "World!");
  r = one(get("/file13", "Range: bytes=-6\r\n"));
  EXPECT_EQ(r.body, "World!");
  EXPECT_EQ(r.header("content-range"), "bytes 7-12/13");
  r = one(get("/big.bin", "Range: bytes=1000-200999\r\n"));  // a range of a sendfile'd file
  EXPECT_EQ(r.status, 206);
  EXPECT_TRUE(r.body == big_.substr(1000, 200000));
  r = one(get("/file13", "Range: bytes=13-\r\n"));
  EXPECT_EQ(r.status, 416);
  EXPECT_EQ(r.header("content-range"), "bytes */13");
  EXPECT_EQ(one(get("/file13", "Range: bytes=0-1,4-5\r\n")).status, 200);  // multiple ranges: the whole file
  std::string etag = one(get("/file13")).header("etag");
  EXPECT_EQ(one(get("/file13", "Range: bytes=0-4\r\nIf-Range: " + etag + "\r\n")).status, 206);
  EXPECT_EQ(one(get("/file13", "Range: bytes=0-4\r\nIf-Range: \"stale\"\r\n")).status, 200);
  HttpResponse head = one(get("/file13", "Range: bytes=0-4\r\n", "HEAD"), true);
  EXPECT_EQ(head.status, 200);  // Range applies to GET only
}

TEST_P(HttpServerTest, sixteen_pipelined_requests_in_one_write_come_back_in_order) {
  start();
  std::string all;
  for (int i = 0; i < 16; ++i) all += get("/p" + std::to_string(i));
  Exchange ex = request(all, 16);
  ASSERT_EQ(ex.responses.size(), 16u);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(ex.responses[i].body, "body " + std::to_string(i));
  EXPECT_FALSE(ex.closed);
  // Mixed: memory, sendfile, errors and HEAD in one write keep their order.
  all = get("/p1") + get("/mid.bin") + get("/nope") + get("/p2", "", "HEAD") + get("/p3");
  ex = request(all, 5, {false, false, false, true, false});
  ASSERT_EQ(ex.responses.size(), 5u);
  EXPECT_EQ(ex.responses[0].body, "body 1");
  EXPECT_TRUE(ex.responses[1].body == mid_);
  EXPECT_EQ(ex.responses[2].status, 404);
  EXPECT_EQ(ex.responses[3].body, "");
  EXPECT_EQ(ex.responses[4].body, "body 3");
}

TEST_P(HttpServerTest, connection_close_and_http10) {
  start();
  Exchange ex = request(get("/file13", "Connection: close\r\n"), 1, {}, true);
  ASSERT_EQ(ex.responses.size(), 1u);
  EXPECT_EQ(ex.responses[0].header("connection"), "close");
  EXPECT_TRUE(ex.closed);
  // HTTP/1.0 without keep-alive: close.
  ex = request("GET /file13 HTTP/1.0\r\n\r\n", 1, {}, true);
  ASSERT_EQ(ex.responses.size(), 1u);
  EXPECT_EQ(ex.responses[0].body, "Hello, World!");
  EXPECT_TRUE(ex.closed);
  // HTTP/1.0 with keep-alive: stays open and says so.
  Fd fd = connect();
  ex = exchange_on(fd, "GET /file13 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1);
  ASSERT_EQ(ex.responses.size(), 1u);
  EXPECT_EQ(ex.responses[0].header("connection"), "keep-alive");
  EXPECT_FALSE(ex.closed);
  ex = exchange_on(fd, "GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 1);
  ASSERT_EQ(ex.responses.size(), 1u);
  EXPECT_EQ(ex.responses[0].body, "text file\n");
}

TEST_P(HttpServerTest, expect_100_continue_then_body_then_next_request) {
  start({"--bench-routes"});
  Fd fd = connect();
  ASSERT_TRUE(fd.valid());
  std::string head = "POST /file13 HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n";
  Exchange ex = exchange_on(fd, head, 1);
  ASSERT_EQ(ex.responses.size(), 1u) << ex.rest;
  EXPECT_EQ(ex.responses[0].status, 100);
  ex = exchange_on(fd, "abcd" + get("/file13"), 2);
  ASSERT_EQ(ex.responses.size(), 2u);
  EXPECT_EQ(ex.responses[0].status, 405);
  EXPECT_EQ(ex.responses[1].body, "Hello, World!");
}

TEST_P(HttpServerTest, bodies_over_the_limit_get_413_and_close) {
  start({"--max-body", "10"});
  Exchange ex = request("POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n01234567890", 1, {}, true);
  ASSERT_EQ(ex.responses.size(), 1u);
  EXPECT_EQ(ex.responses[0].status, 413);
  EXPECT_EQ(ex.responses[0].header("connection"), "close");
  EXPECT_TRUE(ex.closed);
}

TEST_P(HttpServerTest, traversal_attempts_are_refused) {
  std::string outside = make_temp_dir("http-outside");
  write_file(outside + "/secret", "secret");
  ASSERT_EQ(::symlink((outside + "/secret").c_str(), (root_ + "/link-out").c_str()), 0);
  ASSERT_EQ(::symlink("file13", (root_ + "/link-in").c_str()), 0);
  start();
  for (const char* path : {"/../etc/passwd", "/%2e%2e/etc/passwd", "/dir/../../etc/passwd",
                           "/dir%2F..%2F..%2Fetc%2Fpasswd", "/a.txt%00.html", "/%zz"}) {
    HttpResponse r = one(get(path));
    EXPECT_EQ(r.status, 400) << path;
  }
  EXPECT_EQ(one(get("/dir/../file13")).body, "Hello, World!");  // inside the root: fine
  EXPECT_EQ(one(get("/link-out")).status, 403);
  EXPECT_EQ(one(get("/link-in")).body, "Hello, World!");
  stop_server();
  start({"--follow-symlinks"});
  EXPECT_EQ(one(get("/link-out")).body, "secret");
  remove_tree(outside);
}

TEST_P(HttpServerTest, unreadable_files_are_403) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads every file";
  write_file(root_ + "/locked", "x");
  ::chmod((root_ + "/locked").c_str(), 0);
  start();
  EXPECT_EQ(one(get("/locked")).status, 403);
}

TEST_P(HttpServerTest, head_limits_give_414_and_431_and_close) {
  start({"--max-request-line", "200", "--max-header-bytes", "512", "--max-headers", "5"});
  Exchange ex = request(get("/" + std::string(300, 'a')), 1, {}, true);
  ASSERT_EQ(ex.responses.size(), 1u);
  EXPECT_EQ(ex.responses[0].status, 414);
  EXPECT_TRUE(ex.closed);
  ex = request(get("/file13", "X-Big: " + std::string(600, 'b') + "\r\n"), 1, {}, true);
  ASSERT_EQ(ex.responses.size(), 1u);
  EXPECT_EQ(ex.responses[0].status, 431);
  EXPECT_TRUE(ex.closed);
  std::string many;
  for (int i = 0; i < 6; ++i) many += "X-H" + std::to_string(i) + ": v\r\n";
  ex = request(get("/file13", many), 1, {}, true);
  ASSERT_EQ(ex.responses.size(), 1u);
  EXPECT_EQ(ex.responses[0].status, 431);
}

TEST_P(HttpServerTest, framing_attacks_get_400_and_close) {
  start();
  for (const char* bad : {
           "POST /file13 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
           "GET /file13 HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
           "GET /file13 HTTP/1.1\r\nHost : t\r\n\r\n",
           "GET /file13 HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n",
           "GET /file13 HTTP/1.1\r\n\r\n",
       }) {
    Exchange ex = request(bad, 1, {}, true);
    ASSERT_EQ(ex.responses.size(), 1u) << bad;
    EXPECT_EQ(ex.responses[0].status, 400) << bad;
    EXPECT_EQ(ex.responses[0].header("connection"), "close") << bad;
    EXPECT_TRUE(ex.closed) << bad;
  }
  EXPECT_EQ(one("GET /file13 HTTP/2.0\r\nHost: t\r\n\r\n").status, 505);
  expect_running();
}

TEST_P(HttpServerTest, timeouts_close_slow_and_idle_connections) {
  start({"--header-timeout", "0.5", "--keepalive-timeout", "0.5"});
  Fd partial = connect();
  ASSERT_EQ(::send(partial.get(), "GET /file13 HTTP/1.1\r\nHo", 24, MSG_NOSIGNAL), 24);
  EXPECT_TRUE(echo::closed_by_server_within(partial.get(), 30s));
  Fd idle = connect();
  Exchange ex = exchange_on(idle, get("/file13"), 1);
  ASSERT_EQ(ex.responses.size(), 1u);
  EXPECT_TRUE(echo::closed_by_server_within(idle.get(), 30s));
  expect_running();
}

TEST_P(HttpServerTest, a_client_that_stops_reading_is_closed_by_the_send_timeout) {
  start({"--send-timeout", "1"});
  Fd fd = echo::connect_now(endpoint_, 4096);
  ASSERT_TRUE(fd.valid());
  std::string all;
  for (int i = 0; i < 20; ++i) all += get("/big.bin");
  ASSERT_EQ(::send(fd.get(), all.data(), all.size(), MSG_NOSIGNAL), static_cast<ssize_t>(all.size()));
  std::this_thread::sleep_for(3s);  // not reading: the server's output waits, then times out
  std::size_t got = 0;
  bool closed = false;
  auto deadline = Clock::now() + 60s;  // only a hang takes this long
  while (Clock::now() < deadline) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 500) <= 0) continue;
    char buf[65536];
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n > 0) {
      got += static_cast<std::size_t>(n);
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
      closed = true;
      break;
    }
  }
  EXPECT_TRUE(closed);
  EXPECT_LT(got, 20u * big_.size());
  expect_running();
}

TEST_P(HttpServerTest, bench_routes_follow_techempower_rules) {
  start({"--bench-routes"});
  HttpResponse r = one(get("/plaintext"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "Hello, World!");
  EXPECT_EQ(r.header("content-type"), "text/plain");
  EXPECT_EQ(r.header("server"), "ringlet");
  EXPECT_EQ(r.header("date").size(), 29u);
  EXPECT_EQ(r.header("content-length"), "13");
  r = one(get("/json"));
  EXPECT_EQ(r.body, "{\"message\":\"Hello, World!\"}");
  EXPECT_EQ(r.header("content-type"), "application/json");
  EXPECT_EQ(r.header("content-length"), "27");
  EXPECT_EQ(one(get("/plaintext", "", "POST")).status, 405);
  // Pipelined, as the plaintext benchmark does.
  std::string all;
  for (int i = 0; i < 16; ++i) all += get(i % 2 ? "/json" : "/plaintext");
  Exchange ex = request(all, 16);
  ASSERT_EQ(ex.responses.size(), 16u);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(ex.responses[i].body.size(), i % 2 ? 27u : 13u);
}

TEST_P(HttpServerTest, access_log_records_requests) {
  std::string log_dir = make_temp_dir("http-log");
  std::string log = log_dir + "/access.log";
  start({"--access-log", log});
  one(get("/file13"));
  one(get("/nope"));
  stop_server();
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"GET /file13 HTTP/1.1\" 200 13"), std::string::npos) << text;
  EXPECT_NE(text.find("\"GET /nope HTTP/1.1\" 404"), std::string::npos) << text;
  remove_tree(log_dir);
}

TEST_P(HttpServerTest, a_header_line_over_8_kib_gets_431_like_nginx) {
  start();
  const std::string expected =
      "HTTP/1.1 431 Request Header Fields Too Large\r\nServer: ringlet\r\nDate: <date>\r\n"
      "Content-Type: text/plain\r\nContent-Length: 36\r\nConnection: close\r\n\r\n"
      "431 Request Header Fields Too Large\n";
  EXPECT_EQ(raw_until_close(endpoint_, get("/file13", "X-Long: " + std::string(10 * 1024, 'v') + "\r\n")), expected);
  // A line of exactly 8 KiB is still accepted (the header section limit is 16 KiB).
  EXPECT_EQ(one(get("/file13", "X-Long: " + std::string(8 * 1024 - 8, 'v') + "\r\n")).status, 200);
  expect_running();
}

TEST_P(HttpServerTest, max_header_line_is_a_flag) {
  start({"--max-header-line", "100"});
  EXPECT_EQ(one(get("/file13", "X-Line: " + std::string(92, 'v') + "\r\n")).status, 200);
  Exchange ex = request(get("/file13", "X-Line: " + std::string(93, 'v') + "\r\n"), 1, {}, true);
  ASSERT_EQ(ex.responses.size(), 1u);
  EXPECT_EQ(ex.responses[0].status, 431);
  EXPECT_TRUE(ex.closed);
}

TEST_P(HttpServerTest, a_hundred_small_headers_are_accepted) {
  start();
  std::string many;
  for (int i = 0; i < 100; ++i) {
    many += "X-Forwarded-Hop-" + std::to_string(i) + ": 10.0.0." + std::to_string(i) + "\r\n";
  }
  HttpResponse r = one(get("/file13", many + "Connection: keep-alive\r\n"));
  EXPECT_EQ(r.status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(r.body, "Hello, World!");
}

TEST_P(HttpServerTest, a_file_rewritten_in_place_is_never_revalidated_with_its_old_etag) {
  // mid.bin (100 KiB) is sent with sendfile: the bytes come from disk at send time, so the validators must too.
  const std::string path = root_ + "/mid.bin";
  timespec old_times[2] = {{0, UTIME_OMIT}, {1'600'000'000, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), old_times, 0), 0);
  start();
  HttpResponse first = one(get("/mid.bin"));
  ASSERT_EQ(first.status, 200);
  ASSERT_EQ(first.body, mid_);
  const std::string old_etag = first.header("etag");
  EXPECT_EQ(one(get("/mid.bin", "If-None-Match: " + old_etag + "\r\n")).status, 304);
  // Rewrite the same inode with other bytes of the same size, and give it a later mtime explicitly.
  const std::string changed = echo::pattern(mid_.size(), 11);
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, changed.data(), changed.size(), 0), static_cast<ssize_t>(changed.size()));
  ::close(fd);
  timespec new_times[2] = {{0, UTIME_OMIT}, {1'600'000'100, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), new_times, 0), 0);
  HttpResponse again = one(get("/mid.bin", "If-None-Match: " + old_etag + "\r\n"));
  EXPECT_EQ(again.status, 200);
  EXPECT_TRUE(again.body == changed) << "the new bytes, not the old";
  EXPECT_NE(again.header("etag"), old_etag);
  EXPECT_EQ(again.header("last-modified"), "Sun, 13 Sep 2020 12:28:20 GMT");
}

TEST_P(HttpServerTest, curl_agrees) {
  if (!have_program("curl")) GTEST_SKIP() << "curl not installed";
  start();
  auto code = [&](const std::string& args) {
    return shell("curl -s -o /dev/null --max-time 10 -w '%{http_code}' " + args);
  };
  EXPECT_EQ(code(url("/file13")), "200");
  EXPECT_EQ(code(url("/nope")), "404");
  EXPECT_EQ(code(url("/dir")), "301");
  EXPECT_EQ(code("-L " + url("/dir")), "200");
  EXPECT_EQ(code("-r 0-3 " + url("/file13")), "206");
  EXPECT_EQ(code("-X DELETE " + url("/file13")), "405");
  EXPECT_EQ(code("--path-as-is " + url("/../x")), "400");
  EXPECT_EQ(shell("curl -s --max-time 10 " + url("/file13")), "Hello, World!");
  std::string got = shell("curl -s --max-time 10 " + url("/big.bin") + " " + url("/big.bin") + " | md5sum");
  std::string expected = shell("cat '" + root_ + "/big.bin' '" + root_ + "/big.bin' | md5sum");
  EXPECT_EQ(got, expected);
  EXPECT_EQ(code("-H 'Expect: 100-continue' --data-binary @" + root_ + "/mid.bin " + url("/file13")), "405");
}

RINGLET_ECHO_BOTH_BACKENDS(HttpServerTest);

}  // namespace
}  // namespace ringlet::testing::http
