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

#include "bench_harness.hpp"
#include "support/process.hpp"

#ifndef RINGLET_BINARY
#error "RINGLET_BINARY must name the ringlet executable"
#endif

namespace ringlet::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kBeanstalkd = "/usr/bin/beanstalkd";

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
