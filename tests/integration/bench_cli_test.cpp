// bench_cli_test.cpp — the real `ringlet bench` binary, black-box: `bench echo --json` against `ringlet echo`, and
// `bench http --json` against nginx (started here with a temporary config on an ephemeral port; skipped when
// nginx cannot run). Each run must report 0 errors and a throughput > 0 in valid JSON on stdout. Both backends.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "echo_harness.hpp"
#include "support/process.hpp"

#ifndef RINGLET_BINARY
#error "RINGLET_BINARY must name the ringlet executable"
#endif

namespace ringlet::testing {
namespace {

using namespace std::chrono_literals;

// ---- a small JSON reader: validates the whole text and collects numbers by dotted path -------------------------

class Json {
 public:
  // Parses `text` (one value, surrounded by optional whitespace). Returns false on any syntax error.
  bool parse(const std::string& text) {
    s_ = text;
    i_ = 0;
    bool ok = value("");
    ws();
    return ok && i_ == s_.size();
  }
  bool has(const std::string& path) const { return numbers_.count(path) || others_.count(path); }
  double number(const std::string& path) const {
    auto it = numbers_.find(path);
    return it == numbers_.end() ? -1 : it->second;
  }

 private:
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_;
  }
  bool lit(const char* word) {
    std::size_t n = std::char_traits<char>::length(word);
    if (s_.compare(i_, n, word) != 0) return false;
    i_ += n;
    return true;
  }
  bool string(std::string* out) {
    if (i_ >= s_.size() || s_[i_] != '"') return false;
    ++i_;
    while (i_ < s_.size() && s_[i_] != '"') {
      if (static_cast<unsigned char>(s_[i_]) < 0x20) return false;
      if (s_[i_] == '\\') ++i_;
      if (out) out->push_back(s_[i_]);
      ++i_;
    }
    if (i_ >= s_.size()) return false;
    ++i_;
    return true;
  }
  bool value(const std::string& path) {
    ws();
    if (i_ >= s_.size()) return false;
    char c = s_[i_];
    if (c == '{') {
      ++i_;
      ws();
      if (i_ < s_.size() && s_[i_] == '}') return ++i_, others_.insert(path), true;
      for (;;) {
        ws();
        std::string key;
        if (!string(&key)) return false;
        ws();
        if (i_ >= s_.size() || s_[i_++] != ':') return false;
        if (!value(path.empty() ? key : path + "." + key)) return false;
        ws();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < s_.size() && s_[i_] == '}') return ++i_, others_.insert(path), true;
        return false;
      }
    }
    if (c == '[') {
      ++i_;
      ws();
      if (i_ < s_.size() && s_[i_] == ']') return ++i_, others_.insert(path), true;
      for (int n = 0;; ++n) {
        if (!value(path + "[" + std::to_string(n) + "]")) return false;
        ws();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < s_.size() && s_[i_] == ']') return ++i_, others_.insert(path), true;
        return false;
      }
    }
    if (c == '"') return others_.insert(path), string(nullptr);
    if (lit("true") || lit("false") || lit("null")) return others_.insert(path), true;
    const char* begin = s_.c_str() + i_;
    char* end = nullptr;
    double d = std::strtod(begin, &end);
    if (end == begin) return false;
    i_ += static_cast<std::size_t>(end - begin);
    numbers_[path] = d;
    return true;
  }

  std::string s_;
  std::size_t i_ = 0;
  std::map<std::string, double> numbers_;
  std::set<std::string> others_;
};

// ---- helpers ---------------------------------------------------------------------------------------------------

struct BenchRun {
  ExitStatus status;
  std::string out;
  std::string err;
};

BenchRun run_bench(std::vector<std::string> args, std::chrono::milliseconds limit = 60'000ms) {
  args.insert(args.begin(), {RINGLET_BINARY, "bench"});
  std::string error;
  ChildProcess child = ChildProcess::spawn(args, &error);
  EXPECT_TRUE(child.valid()) << error;
  auto status = child.wait_for_exit(limit);
  EXPECT_TRUE(status.has_value()) << "ringlet bench did not finish in time";
  if (!status) return {};
  return {*status, child.stdout_text(), child.stderr_text()};
}

void expect_clean_json_run(const BenchRun& r) {
  ASSERT_TRUE(r.status.success()) << r.status.describe() << "\nstderr:\n" << r.err;
  Json j;
  ASSERT_TRUE(j.parse(r.out)) << "stdout is not one JSON value:\n" << r.out;
  EXPECT_EQ(j.number("errors"), 0) << r.out;
  EXPECT_GT(j.number("throughput"), 0) << r.out;
  EXPECT_GT(j.number("requests"), 0) << r.out;
  for (const char* p : {"p50", "p90", "p99", "p999", "max"}) {
    EXPECT_GT(j.number(std::string("latency_us.") + p), 0) << p;
  }
  EXPECT_LE(j.number("latency_us.p50"), j.number("latency_us.p99"));
  EXPECT_LE(j.number("latency_us.p99"), j.number("latency_us.max"));
  for (const char* k : {"connect", "reset", "timeout", "wrong_reply", "other"}) {
    EXPECT_EQ(j.number(std::string("errors_by_kind.") + k), 0) << k;
  }
  EXPECT_TRUE(j.has("client_cpu.per_thread"));
  EXPECT_EQ(r.err.find("AddressSanitizer"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("runtime error"), std::string::npos) << r.err;
}

std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

class BenchCli : public ::testing::TestWithParam<std::string> {};

// ---- echo --------------------------------------------------------------------------------------------------------

TEST_P(BenchCli, bench_echo_json_against_ringlet_echo_has_no_errors) {
  std::string error;
  ChildProcess server = ChildProcess::spawn(
      {RINGLET_BINARY, "echo", "--listen", "127.0.0.1:0", "--backend", GetParam(), "--log-level", "info"}, &error);
  ASSERT_TRUE(server.valid()) << error;
  std::optional<echo::Endpoint> listening = echo::wait_for_listening(server);
  if (!listening && GetParam() == "uring") GTEST_SKIP() << "io_uring unavailable: " << server.stderr_text();
  ASSERT_TRUE(listening) << server.stderr_text();
  std::string target = listening->text;

  BenchRun closed = run_bench({"echo", "--json", "--backend", GetParam(), "--connections", "8", "--depth", "4",
                          "--duration", "0.5", "--size", "300", "--threads", "2", target});
  expect_clean_json_run(closed);
  BenchRun open = run_bench({"echo", "--json", "--backend", GetParam(), "--connections", "4", "--rate", "2000",
                        "--duration", "0.5", "--warmup", "0.2", target});
  expect_clean_json_run(open);
  Json j;
  ASSERT_TRUE(j.parse(open.out));
  EXPECT_EQ(j.number("rate"), 2000);
  server.kill_and_reap();
}

// ---- http against nginx --------------------------------------------------------------------------------------------

struct Nginx {
  ChildProcess process;
  std::string dir;
  std::uint16_t port = 0;
  ~Nginx() {
    process.kill_and_reap();
    if (!dir.empty()) std::system(("rm -rf '" + dir + "'").c_str());
  }
};

// Starts nginx with one worker serving a 1000-byte file; returns false (and why) when it cannot run here.
bool start_nginx(Nginx& n, std::string& why) {
  if (::access("/usr/sbin/nginx", X_OK) != 0) {
    why = "nginx is not installed";
    return false;
  }
  char tmpl[] = "/tmp/ringlet-bench-nginx-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    why = "mkdtemp failed";
    return false;
  }
  n.dir = tmpl;
  ::mkdir((n.dir + "/www").c_str(), 0755);
  std::ofstream(n.dir + "/www/index.html") << std::string(1000, 'a');
  for (int attempt = 0; attempt < 5; ++attempt) {
    n.port = free_port();
    std::ofstream conf(n.dir + "/nginx.conf");
    conf << "worker_processes 1;\ndaemon off;\nmaster_process off;\npid " << n.dir << "/nginx.pid;\n"
         << "error_log " << n.dir << "/error.log warn;\nevents { worker_connections 1024; }\n"
         << "http {\n access_log off;\n keepalive_requests 1000000;\n"
         << " client_body_temp_path " << n.dir << "/cb;\n proxy_temp_path " << n.dir << "/px;\n"
         << " fastcgi_temp_path " << n.dir << "/fc;\n uwsgi_temp_path " << n.dir << "/uw;\n"
         << " scgi_temp_path " << n.dir << "/sc;\n"
         << " server { listen 127.0.0.1:" << n.port << "; root " << n.dir << "/www; }\n}\n";
    conf.close();
    std::string error;
    n.process = ChildProcess::spawn({"/usr/sbin/nginx", "-e", n.dir + "/error.log", "-p", n.dir, "-c",
                                     n.dir + "/nginx.conf"},
                                    &error);
    if (!n.process.valid()) {
      why = error;
      return false;
    }
    // Ready when it accepts a connection.
    for (int i = 0; i < 100 && n.process.running(); ++i) {
      int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(n.port);
      bool up = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
      ::close(fd);
      if (up) return true;
      ::usleep(20'000);
    }
    n.process.kill_and_reap();  // port taken meanwhile, or nginx refuses to run here: try another port
  }
  std::ifstream log(n.dir + "/error.log");
  why = "nginx did not start: " + std::string(std::istreambuf_iterator<char>(log), {});
  return false;
}

TEST_P(BenchCli, bench_http_json_against_nginx_has_no_errors) {
  Nginx nginx;
  std::string why;
  if (!start_nginx(nginx, why)) GTEST_SKIP() << why;
  std::string url = "http://127.0.0.1:" + std::to_string(nginx.port) + "/index.html";
  BenchRun r = run_bench({"http", "--json", "--backend", GetParam(), "--connections", "8", "--depth", "4", "--duration",
                     "0.5", "--expect-length", "1000", url});
  if (GetParam() == "uring" && r.err.find("cannot create an event loop") != std::string::npos) {
    GTEST_SKIP() << "io_uring unavailable";
  }
  expect_clean_json_run(r);

  // A missing file is a 404: every response is a wrong reply, and the JSON says so.
  BenchRun missing = run_bench({"http", "--json", "--backend", GetParam(), "--connections", "2", "--duration", "0.3",
                           "http://127.0.0.1:" + std::to_string(nginx.port) + "/missing"});
  ASSERT_TRUE(missing.status.success()) << missing.err;
  Json j;
  ASSERT_TRUE(j.parse(missing.out)) << missing.out;
  EXPECT_GT(j.number("errors_by_kind.wrong_reply"), 0);
}

// ---- command line ---------------------------------------------------------------------------------------------------

TEST_P(BenchCli, bad_targets_are_refused_with_a_message) {
  BenchRun r = run_bench({"echo", "--backend", GetParam(), "not-an-address"});
  EXPECT_EQ(r.status.code, 2);
  EXPECT_NE(r.err.find("HOST:PORT"), std::string::npos) << r.err;
  BenchRun h = run_bench({"http", "--backend", GetParam(), "https://127.0.0.1:1/"});
  EXPECT_EQ(h.status.code, 2);
  EXPECT_NE(h.err.find("http://"), std::string::npos) << h.err;
}

INSTANTIATE_TEST_SUITE_P(Backends, BenchCli, ::testing::Values("uring", "epoll"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ringlet::testing
