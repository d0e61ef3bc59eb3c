// `ringlet http` and nginx (one worker, the benchmark configuration from bench/peers/nginx.conf.template) answer
// the same list of requests, where RFC 9110/9112 leave a server a choice, with the same status codes. Skipped when
// nginx cannot run here.
//
// Deliberate differences, not in the list (docs/design/http.md): symlinks leaving the root (nginx follows them by
// default, we refuse them unless --follow-symlinks), several ranges (nginx answers 206 multipart/byteranges, we
// send the whole file with 200), unknown methods (nginx 405, we 501 as RFC 9110 §9.1 recommends), and limits
// whose defaults differ (nginx's 8 KiB header buffers).
#include <netinet/in.h>

#include <thread>

#include "http_harness.hpp"

namespace ringlet::testing::http {
namespace {

// A port that was free a moment ago (nginx cannot listen on port 0 and tell us which one it got).
int free_port() {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return 0;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) return 0;
  return ntohs(a.sin_port);
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

class HttpVsNginxTest : public HttpServerFixture {
 protected:
  void TearDown() override {
    if (nginx_.valid()) {
      nginx_.send_signal(SIGTERM);
      nginx_.wait_for_exit(5'000ms);
      nginx_.kill_and_reap();
    }
    remove_tree(nginx_dir_);
    HttpServerFixture::TearDown();
  }

  // Starts nginx on the same root; returns a reason when it cannot run here.
  std::string start_nginx() {
    const char* binary = "/usr/sbin/nginx";
    if (::access(binary, X_OK) != 0) return "nginx is not installed";
    std::ifstream in(std::string(RINGLET_SOURCE_DIR) + "/bench/peers/nginx.conf.template");
    std::string conf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (conf.empty()) return "bench/peers/nginx.conf.template not found";
    nginx_dir_ = make_temp_dir("http-nginx");
    for (int attempt = 0; attempt < 3; ++attempt) {
      int port = free_port();
      std::string text = replace_all(replace_all(replace_all(conf, "@PORT@", std::to_string(port)), "@ROOT@", root_),
                                     "@TMP@", nginx_dir_);
      write_file(nginx_dir_ + "/nginx.conf", text);
      nginx_ = ChildProcess::spawn({binary, "-c", nginx_dir_ + "/nginx.conf"});
      auto e = echo::parse_endpoint("127.0.0.1:" + std::to_string(port));
      auto deadline = Clock::now() + 5s;
      while (Clock::now() < deadline && nginx_.running()) {
        Fd probe = echo::connect_now(*e, 0, 200ms);
        if (probe.valid()) {
          nginx_endpoint_ = *e;
          return {};
        }
        std::this_thread::sleep_for(20ms);
      }
      nginx_.kill_and_reap();
    }
    return "nginx did not start: " + nginx_.stderr_text();
  }

  int status_from(const Endpoint& to, const std::string& request) {
    Fd fd = echo::connect_now(to);
    if (!fd.valid()) return -1;
    Exchange ex = exchange_on(fd, request, 1, {request.rfind("HEAD", 0) == 0});
    return ex.responses.empty() ? 0 : ex.responses[0].status;
  }

  ChildProcess nginx_;
  Endpoint nginx_endpoint_;
  std::string nginx_dir_;
};

TEST_P(HttpVsNginxTest, same_status_codes_for_the_same_requests) {
  write_file(root_ + "/file13", "Hello, World!");
  write_file(root_ + "/a.txt", "text\n");
  ::mkdir((root_ + "/dir").c_str(), 0755);
  write_file(root_ + "/dir/index.html", "<p>hi</p>\n");
  ::mkdir((root_ + "/noindex").c_str(), 0755);
  std::string why = start_nginx();
  if (!why.empty()) GTEST_SKIP() << why;
  start();

  std::string etag;
  {
    Fd fd = connect();
    Exchange ex = exchange_on(fd, get("/file13"), 1);
    ASSERT_EQ(ex.responses.size(), 1u);
    etag = ex.responses[0].header("etag");
    std::string nginx_etag;
    Fd nfd = echo::connect_now(nginx_endpoint_);
    Exchange nex = exchange_on(nfd, get("/file13"), 1);
    ASSERT_EQ(nex.responses.size(), 1u);
    EXPECT_EQ(nex.responses[0].header("etag"), etag) << "the ETag format should match nginx's";
    EXPECT_EQ(nex.responses[0].header("last-modified"), ex.responses[0].header("last-modified"));
  }

  const std::vector<std::string> requests = {
      // paths: decoding, dot segments, traversal, encoded slashes and NUL
      get("/file13"), get("/nope"), get("/a.txt/"), get("//file13"), get("/./file13"), get("/dir/../file13"),
      get("/%66ile13"), get("/file13?x=1"), get("/dir"), get("/dir?x=1"), get("/dir/"), get("/dir/."),
      get("/noindex/"), get("/../x"), get("/%2e%2e/x"), get("/dir%2F..%2Ffile13"),
      get("/dir%2F..%2F..%2Fetc%2Fpasswd"), get("/a.txt%00"), get("/%zz"),
      "GET http://test/file13 HTTP/1.1\r\nHost: test\r\n\r\n",
      // methods
      get("/file13", "", "HEAD"), get("/file13", "", "DELETE"), get("/file13", "", "PUT"),
      get("/file13", "", "OPTIONS"), get("/file13", "", "TRACE"),
      "POST /file13 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc",
      // conditionals
      get("/file13", "If-None-Match: " + etag + "\r\n"), get("/file13", "If-None-Match: W/" + etag + "\r\n"),
      get("/file13", "If-None-Match: *\r\n"), get("/file13", "If-None-Match: \"nope\"\r\n"),
      get("/file13", "If-Modified-Since: Thu, 01 Jan 2099 00:00:00 GMT\r\n"),
      get("/file13", "If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT\r\n"),
      get("/file13", "If-Modified-Since: garbage\r\n"),
      get("/file13", "If-None-Match: \"nope\"\r\nIf-Modified-Since: Thu, 01 Jan 2099 00:00:00 GMT\r\n"),
      get("/file13", "If-Match: \"nope\"\r\n"), get("/file13", "If-Match: " + etag + "\r\n"),
      // ranges
      get("/file13", "Range: bytes=0-4\r\n"), get("/file13", "Range: bytes=7-\r\n"),
      get("/file13", "Range: bytes=-6\r\n"), get("/file13", "Range: bytes=0-100\r\n"),
      get("/file13", "Range: bytes=13-\r\n"), get("/file13", "Range: bytes=-0\r\n"),
      get("/file13", "Range: bytes=5-2\r\n"), get("/file13", "Range: bytes=abc\r\n"),
      get("/file13", "Range: items=0-1\r\n"), get("/file13", "Range: bytes=0-1,20-30\r\n"),
      get("/file13", "Range: bytes=0-4\r\nIf-Range: " + etag + "\r\n"),
      get("/file13", "Range: bytes=0-4\r\nIf-Range: \"stale\"\r\n"),
      // versions and framing
      "GET /file13 HTTP/1.0\r\n\r\n", "GET /file13 HTTP/1.1\r\n\r\n", "GET /file13 HTTP/2.0\r\nHost: t\r\n\r\n",
      "GET /file13 HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "GET /file13 HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n",
      "GET /file13 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
  };
  for (const std::string& r : requests) {
    int ours = status_from(endpoint_, r);
    int theirs = status_from(nginx_endpoint_, r);
    EXPECT_EQ(ours, theirs) << "request:\n" << r;
  }
  expect_running();
}

RINGLET_ECHO_BOTH_BACKENDS(HttpVsNginxTest);

}  // namespace
}  // namespace ringlet::testing::http
