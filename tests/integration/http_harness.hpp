// http_harness.hpp — shared by the black-box tests of `ringlet http`: a fixture that runs the real binary on one
// backend with a temporary document root, a raw-socket client that sends exact bytes and splits what comes back
// into responses, and helpers for running nginx as a reference. Test-only; single-threaded.
#pragma once

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "echo_harness.hpp"

namespace ringlet::testing::http {

using namespace std::chrono_literals;
using echo::Clock;
using echo::Endpoint;
using echo::Fd;

struct HttpResponse {
  int status = 0;
  std::string status_line;
  std::multimap<std::string, std::string> headers;  // names lower-cased
  std::string body;

  bool has(const std::string& name) const { return headers.count(name) != 0; }
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

inline std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Parses one response from the front of `in`; returns the bytes it used, or 0 when it is not complete yet.
// `head_only`: the request was HEAD (or the status says no body).
inline std::size_t parse_response(const std::string& in, bool head_only, HttpResponse& out) {
  std::size_t end = in.find("\r\n\r\n");
  if (end == std::string::npos) return 0;
  out = HttpResponse{};
  std::size_t line_end = in.find("\r\n");
  out.status_line = in.substr(0, line_end);
  if (out.status_line.size() >= 12) out.status = std::atoi(out.status_line.c_str() + 9);
  std::size_t pos = line_end + 2;
  while (pos < end) {
    std::size_t eol = in.find("\r\n", pos);
    std::string line = in.substr(pos, eol - pos);
    std::size_t colon = line.find(':');
    std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    out.headers.emplace(lower(line.substr(0, colon)), value);
    pos = eol + 2;
  }
  std::size_t body_start = end + 4;
  std::size_t length = 0;
  bool no_body = head_only || out.status == 304 || out.status == 204 || (out.status >= 100 && out.status < 200);
  if (!no_body && out.has("content-length")) length = std::stoull(out.header("content-length"));
  if (in.size() < body_start + length) return 0;
  out.body = in.substr(body_start, length);
  return body_start + length;
}

// What a connection got back: the responses in order, and whether the server closed it.
struct Exchange {
  std::vector<HttpResponse> responses;
  bool closed = false;
  std::string rest;  // bytes after the last complete response
};

// Sends `data` on `fd` and reads until `count` responses arrived (and, with wait_close, the server closed), or
// the timeout. `head_flags[i]` marks responses to HEAD requests.
inline Exchange exchange_on(Fd& fd, const std::string& data, std::size_t count, std::vector<bool> head_flags = {},
                            bool wait_close = false, Clock::duration timeout = 10s) {
  Exchange ex;
  echo::Peer p;
  p.fd = std::move(fd);
  p.out = data;
  p.max_write = data.size() + 1;
  auto deadline = Clock::now() + timeout;
  std::string buffered;
  for (;;) {
    // Read in rounds until the responses are complete; drive() returns when the peer is done() (sent + eof).
    p.expect = p.in.size() + 1;
    bool progressed = echo::drive_one(p, std::min<Clock::duration>(deadline - Clock::now(), 200ms));
    (void)progressed;
    std::size_t used = 0;
    ex.responses.clear();
    while (ex.responses.size() < count || count == 0) {
      HttpResponse r;
      bool head = ex.responses.size() < head_flags.size() && head_flags[ex.responses.size()];
      std::size_t n = parse_response(p.in.substr(used), head, r);
      if (n == 0) break;
      used += n;
      ex.responses.push_back(std::move(r));
      if (count == 0) continue;
    }
    ex.rest = p.in.substr(used);
    ex.closed = p.eof || p.error != 0;
    bool enough = ex.responses.size() >= count;
    if ((enough && (!wait_close || ex.closed)) || ex.closed || Clock::now() >= deadline) break;
  }
  fd = std::move(p.fd);
  return ex;
}

inline std::string get(const std::string& path, const std::string& extra = "", const std::string& method = "GET",
                       const std::string& version = "HTTP/1.1") {
  return method + " " + path + " " + version + "\r\nHost: test\r\n" + extra + "\r\n";
}

// Writes a file (creating parent directories one level deep is the caller's business).
inline void write_file(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

inline std::string make_temp_dir(const char* tag) {
  std::string tmpl = std::string("/tmp/ringlet-") + tag + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr) return {};
  return std::string(buf.data());
}

inline void remove_tree(const std::string& dir) {
  if (dir.size() < 12 || dir.rfind("/tmp/ringlet-", 0) != 0) return;  // never anything else
  std::string cmd = "rm -rf '" + dir + "'";
  if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", dir.c_str());
}

// The server under test: `ringlet http --backend <param> --listen 127.0.0.1:0 --root <temp dir> extra...`.
class HttpServerFixture : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string& reason = echo::backend_unavailable_reason(GetParam());
    if (!reason.empty()) GTEST_SKIP() << "backend " << GetParam() << " unavailable here: " << reason;
    root_ = make_temp_dir("http-root");
    ASSERT_FALSE(root_.empty());
  }

  void TearDown() override {
    stop_server();
    remove_tree(root_);
  }

  void stop_server() {
    if (!server_.valid()) return;
    if (server_.running()) {
      server_.send_signal(SIGTERM);
      auto status = server_.wait_for_exit(10'000ms);
      EXPECT_TRUE(status.has_value()) << "the server did not exit after SIGTERM";
      if (status) {
        EXPECT_TRUE(status->success()) << "server " << status->describe();
      }
    }
    std::string err = server_.stderr_text();
    echo::expect_no_sanitizer_report(err);
    if (HasFailure()) {
      std::size_t from = err.size() > 6000 ? err.size() - 6000 : 0;
      std::printf("---- server stderr (last %zu bytes) ----\n%s----\n", err.size() - from, err.c_str() + from);
    }
    server_.kill_and_reap();
  }

  void start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {RINGLET_BINARY, "http", "--backend", GetParam(), "--listen", "127.0.0.1:0",
                                     "--root", root_};
    args.insert(args.end(), extra.begin(), extra.end());
    std::string error;
    server_ = ChildProcess::spawn(args, &error);
    ASSERT_TRUE(server_.valid()) << error;
    std::optional<Endpoint> e = echo::wait_for_listening(server_);
    ASSERT_TRUE(e.has_value()) << "the server did not start:\n" << server_.stderr_text();
    endpoint_ = *e;
    port_ = std::atoi(endpoint_.text.c_str() + endpoint_.text.rfind(':') + 1);
  }

  Fd connect() { return echo::connect_now(endpoint_); }

  // One request (or several pipelined) on a fresh connection.
  Exchange request(const std::string& data, std::size_t count = 1, std::vector<bool> head_flags = {},
                   bool wait_close = false) {
    Fd fd = connect();
    EXPECT_TRUE(fd.valid());
    return exchange_on(fd, data, count, std::move(head_flags), wait_close);
  }
  HttpResponse one(const std::string& data, bool head = false) {
    Exchange ex = request(data, 1, {head});
    EXPECT_EQ(ex.responses.size(), 1u) << "request: " << data << "\ngot: " << ex.rest;
    return ex.responses.empty() ? HttpResponse{} : ex.responses[0];
  }

  void expect_running() {
    ASSERT_TRUE(server_.valid());
    EXPECT_TRUE(server_.running()) << "the server died: " << server_.status()->describe();
  }

  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }

  ChildProcess server_;
  Endpoint endpoint_;
  int port_ = 0;
  std::string root_;
};

// Runs a shell command and returns its stdout (curl in the tests).
inline std::string shell(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

inline bool have_program(const char* name) {
  return std::system((std::string("command -v ") + name + " > /dev/null 2>&1").c_str()) == 0;
}

}  // namespace ringlet::testing::http
