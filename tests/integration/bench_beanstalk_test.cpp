// bench_beanstalk_test.cpp — the real `ringlet bench beanstalk` binary, black-box, against the real beanstalkd
// from Debian (skipped when it is not installed), without and with its binlog (-b): put -> reserve -> delete
// cycles over one and several tubes, pipelined, with big bodies and with delayed puts. Every run must report
// 0 errors and a throughput > 0 in valid JSON. Both backends.
//
// beanstalkd is given a free port found by binding port 0 (it cannot report one it picked); if it loses the race
// for the port and exits, the test tries another.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"

#ifndef RINGLET_BINARY
#error "RINGLET_BINARY must name the ringlet executable"
#endif

namespace ringlet::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kBeanstalkd = "/usr/bin/beanstalkd";

// ---- JSON: validates the whole text and collects numbers and strings by dotted path ----------------------------

class Json {
 public:
  bool parse(const std::string& text) {
    s_ = text;
    i_ = 0;
    bool ok = value("");
    ws();
    return ok && i_ == s_.size();
  }
  std::optional<double> number(const std::string& path) const {
    auto it = numbers_.find(path);
    if (it == numbers_.end()) return std::nullopt;
    return it->second;
  }
  std::optional<std::string> text(const std::string& path) const {
    auto it = strings_.find(path);
    if (it == strings_.end()) return std::nullopt;
    return it->second;
  }

 private:
  void ws() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool string(std::string& out) {
    if (i_ >= s_.size() || s_[i_] != '"') return false;
    for (++i_; i_ < s_.size() && s_[i_] != '"'; ++i_) {
      if (s_[i_] == '\\') ++i_;
      if (i_ < s_.size()) out.push_back(s_[i_]);
    }
    return i_++ < s_.size();
  }
  bool value(const std::string& path) {
    ws();
    if (i_ >= s_.size()) return false;
    char c = s_[i_];
    if (c == '{' || c == '[') {
      char close = c == '{' ? '}' : ']';
      ++i_;
      ws();
      if (i_ < s_.size() && s_[i_] == close) return ++i_, true;
      for (int index = 0;; ++index) {
        ws();
        std::string key = std::to_string(index);
        if (c == '{') {
          key.clear();
          if (!string(key)) return false;
          ws();
          if (i_ >= s_.size() || s_[i_++] != ':') return false;
        }
        if (!value(path.empty() ? key : path + "." + key)) return false;
        ws();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        return i_ < s_.size() && s_[i_++] == close;
      }
    }
    if (c == '"') {
      std::string out;
      if (!string(out)) return false;
      strings_[path] = out;
      return true;
    }
    for (const char* word : {"true", "false", "null"}) {
      std::string w(word);
      if (s_.compare(i_, w.size(), w) == 0) return i_ += w.size(), true;
    }
    std::size_t used = 0;
    try {
      numbers_[path] = std::stod(s_.substr(i_, 40), &used);
    } catch (...) {
      return false;
    }
    i_ += used;
    return used > 0;
  }

  std::string s_;
  std::size_t i_ = 0;
  std::map<std::string, double> numbers_;
  std::map<std::string, std::string> strings_;
};

// ---- helpers ------------------------------------------------------------------------------------------------------

std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

bool can_connect(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// Starts `argv_for(port)` on a free port and waits until it accepts connections; retries on another port when
// the server exits (it lost the port to someone else).
std::optional<std::pair<ChildProcess, std::uint16_t>> start_on_free_port(
    const std::function<std::vector<std::string>(std::uint16_t)>& argv_for) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    std::uint16_t port = free_port();
    if (port == 0) continue;
    ChildProcess child = ChildProcess::spawn(argv_for(port));
    if (!child.valid()) return std::nullopt;
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline && child.running()) {
      if (can_connect(port)) return std::make_pair(std::move(child), port);
      std::this_thread::sleep_for(10ms);
    }
  }
  return std::nullopt;
}

struct BenchRun {
  ExitStatus status;
  std::string out;
  std::string err;
  Json json;
  bool json_ok = false;
};

BenchRun run_bench(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {RINGLET_BINARY, "bench"};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess bench = ChildProcess::spawn(argv);
  BenchRun r;
  auto st = bench.wait_for_exit(60s);
  if (!st) {
    bench.kill_and_reap();
    r.err = "bench did not finish within 60 s";
    return r;
  }
  r.status = *st;
  r.out = bench.stdout_text();
  r.err = bench.stderr_text();
  r.json_ok = r.json.parse(r.out);
  return r;
}

std::string describe(const BenchRun& r) {
  return "exit: " + r.status.describe() + "\nstdout: " + r.out + "\nstderr (tail): " +
         r.err.substr(r.err.size() > 2000 ? r.err.size() - 2000 : 0);
}

// ---- against the real beanstalkd ------------------------------------------------------------------------------

struct Mode {
  const char* name;
  std::vector<std::string> args;
};

// A temporary directory for the binlog, removed at the end.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ringlet-binlog-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

enum class Binlog { off, on };

void run_modes(const std::string& backend, Binlog binlog) {
  if (::access(kBeanstalkd, X_OK) != 0) GTEST_SKIP() << kBeanstalkd << " is not installed";
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  auto server = start_on_free_port([&](std::uint16_t port) {
    std::vector<std::string> argv = {kBeanstalkd, "-l", "127.0.0.1", "-p", std::to_string(port)};
    if (binlog == Binlog::on) {
      argv.push_back("-b");
      argv.push_back(dir.path());
    }
    return argv;
  });
  ASSERT_TRUE(server) << "beanstalkd did not start";
  const std::string target = "127.0.0.1:" + std::to_string(server->second);
  const std::vector<Mode> modes = {
      {"one_tube", {}},
      {"pipelined_over_three_tubes", {"--connections", "6", "--tubes", "3", "--depth", "4"}},
      {"big_bodies", {"--body-size", "20000", "--depth", "2"}},
      {"two_threads", {"--threads", "2", "--depth", "3", "--priority", "7", "--ttr", "30"}},
      {"delayed_puts", {"--delay", "1", "--depth", "2", "--duration", "2.5"}},
  };
  for (const Mode& m : modes) {
    SCOPED_TRACE(m.name);
    std::vector<std::string> args = {"beanstalk", "--json", "--backend", backend};
    args.insert(args.end(), m.args.begin(), m.args.end());
    // Defaults for what the mode leaves out (an option given twice is an error).
    for (auto [flag, value] : {std::pair{"--duration", "1"}, std::pair{"--connections", "4"}}) {
      if (std::find(m.args.begin(), m.args.end(), flag) == m.args.end()) {
        args.push_back(flag);
        args.push_back(value);
      }
    }
    args.push_back(target);
    BenchRun r = run_bench(args);
    ASSERT_TRUE(r.status.success()) << describe(r);
    ASSERT_TRUE(r.json_ok) << "stdout is not one JSON object\n" << describe(r);
    EXPECT_EQ(r.json.number("errors"), 0.0) << describe(r);
    EXPECT_GT(r.json.number("throughput").value_or(0), 0.0) << describe(r);
    EXPECT_TRUE(r.json.number("latency_us.p99")) << describe(r);
  }
  EXPECT_TRUE(server->first.running()) << "beanstalkd died";
}

class BenchBeanstalk : public ::testing::TestWithParam<std::string> {};

TEST_P(BenchBeanstalk, cycles_report_no_errors_against_beanstalkd) { run_modes(GetParam(), Binlog::off); }

TEST_P(BenchBeanstalk, cycles_report_no_errors_against_beanstalkd_with_its_binlog) {
  run_modes(GetParam(), Binlog::on);
}

INSTANTIATE_TEST_SUITE_P(Backends, BenchBeanstalk, ::testing::Values("uring", "epoll"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ringlet::testing
