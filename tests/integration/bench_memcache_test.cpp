// bench_memcache_test.cpp — the real `ringlet bench memcache` binary, black-box, against the real memcached from
// Debian (skipped when it is not installed) in text and meta mode with gets, sets, multigets, noreply and preload:
// every run must report 0 errors and a throughput > 0 in valid JSON. And against a fake memcached in this process
// that returns one wrong byte in a value: the run must report wrong-reply errors. Both backends.
//
// memcached cannot listen on port 0 and say which port it got, so the test finds a free port (bind port 0, read
// it, close) and passes it; if memcached loses the race for it and exits, the test tries another.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cctype>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ringlet/loadgen/memcache_keys.hpp"
#include "bench_harness.hpp"
#include "support/process.hpp"

#ifndef RINGLET_BINARY
#error "RINGLET_BINARY must name the ringlet executable"
#endif

namespace ringlet::testing {
namespace {

using namespace std::chrono_literals;

constexpr const char* kMemcached = "/usr/bin/memcached";

// ---- against the real memcached -------------------------------------------------------------------------------

struct Mode {
  const char* name;
  std::vector<std::string> args;
};

class BenchMemcache : public ::testing::TestWithParam<std::string> {};

TEST_P(BenchMemcache, every_protocol_mode_reports_no_errors_against_memcached) {
  if (::access(kMemcached, X_OK) != 0) GTEST_SKIP() << kMemcached << " is not installed";
  auto server = start_on_free_port([](std::uint16_t port) {
    // -u only matters as root (memcached refuses to run as root without it); -U 0: no UDP.
    return std::vector<std::string>{kMemcached, "-u", "nobody", "-l", "127.0.0.1", "-p", std::to_string(port),
                                    "-U", "0", "-t", "1", "-m", "64"};
  });
  ASSERT_TRUE(server) << "memcached did not start";
  const std::string target = "127.0.0.1:" + std::to_string(server->second);
  const std::vector<Mode> modes = {
      {"text", {"--protocol", "text"}},
      {"meta", {"--protocol", "meta", "--depth", "4"}},
      {"text_multiget_zipf_preload",
       {"--protocol", "text", "--multiget", "5", "--distribution", "zipf", "--preload", "--keys", "2000"}},
      {"meta_multiget_preload", {"--protocol", "meta", "--multiget", "3", "--preload", "--keys", "2000"}},
      {"text_noreply", {"--protocol", "text", "--noreply", "--depth", "8", "--get-ratio", "0.5", "--preload"}},
      {"meta_noreply_sets_only", {"--protocol", "meta", "--noreply", "--depth", "8", "--get-ratio", "0"}},
      {"large_values_two_threads", {"--value-size", "20000", "--threads", "2", "--depth", "2", "--preload",
                                    "--keys", "500"}},
  };
  for (const Mode& m : modes) {
    SCOPED_TRACE(m.name);
    std::vector<std::string> args = {"memcache", "--json", "--duration", "1", "--connections", "4", "--backend",
                                     GetParam()};
    args.insert(args.end(), m.args.begin(), m.args.end());
    args.push_back(target);
    BenchRun r = run_bench(args);
    ASSERT_TRUE(r.status.success()) << describe(r);
    ASSERT_TRUE(r.json_ok) << "stdout is not one JSON object\n" << describe(r);
    EXPECT_EQ(r.json.number("errors"), 0.0) << describe(r);
    EXPECT_GT(r.json.number("throughput").value_or(0), 0.0) << describe(r);
    EXPECT_TRUE(r.json.number("latency_us.p99")) << describe(r);
  }
  EXPECT_TRUE(server->first.running()) << "memcached died";
}

INSTANTIATE_TEST_SUITE_P(Backends, BenchMemcache, ::testing::Values("uring", "epoll"),
                         [](const auto& info) { return info.param; });

// ---- against a faulty fake memcached --------------------------------------------------------------------------

// Answers "get <key>" with the right value of (key, version 7) except, if `corrupt`, one flipped byte; "set" with
// STORED. One client at a time, blocking sockets, on its own thread; stops when `stop` is set.
class FakeMemcached {
 public:
  FakeMemcached(std::size_t key_size, std::size_t keys, std::size_t value_size, bool corrupt)
      : keys_(keys, key_size), value_size_(value_size), corrupt_(corrupt) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(listen_fd_, 16) == 0 &&
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
      port_ = ntohs(a.sin_port);
    }
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeMemcached() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }
  std::uint16_t port() const { return port_; }
  std::uint64_t gets_answered() const { return gets_.load(); }

 private:
  bool wait_readable(int fd) {
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      int n = ::poll(&p, 1, 50);
      if (n > 0) return true;
    }
    return false;
  }

  void serve() {
    // The value pattern holds a pooled buffer: build it on this thread, which owns it.
    loadgen::memcache::ValuePattern values(value_size_);
    while (wait_readable(listen_fd_)) {
      int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) continue;
      serve_client(fd, values);
      ::close(fd);
    }
  }

  void serve_client(int fd, const loadgen::memcache::ValuePattern& values) {
    std::string in;
    char buf[4096];
    for (;;) {
      std::size_t eol;
      while ((eol = in.find("\r\n")) == std::string::npos) {
        if (!wait_readable(fd)) return;
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) return;
        in.append(buf, static_cast<std::size_t>(n));
      }
      std::string line = in.substr(0, eol);
      in.erase(0, eol + 2);
      std::string reply;
      if (line.rfind("get ", 0) == 0) {
        std::string key = line.substr(4);
        auto index = keys_.parse(key);
        if (!index) return;
        char hdr[16];
        values.header(*index, 7, hdr);
        std::string value(hdr, std::min<std::size_t>(16, value_size_));
        value += values.tail(*index, 7).view();
        if (corrupt_) value[value.size() / 2] ^= 0x20;
        reply = "VALUE " + key + " 7 " + std::to_string(value_size_) + "\r\n" + value + "\r\nEND\r\n";
        ++gets_;
      } else {
        reply = "ERROR\r\n";
      }
      if (::write(fd, reply.data(), reply.size()) != static_cast<ssize_t>(reply.size())) return;
    }
  }

  loadgen::memcache::KeySpace keys_;
  std::size_t value_size_;
  bool corrupt_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> gets_{0};
  std::thread thread_;
};

class BenchMemcacheFaulty : public ::testing::TestWithParam<std::string> {};

BenchRun run_against_fake(FakeMemcached& fake, const std::string& backend) {
  return run_bench({"memcache", "--json", "--duration", "0.5", "--connections", "1", "--get-ratio", "1", "--keys",
                    "10", "--key-size", "3", "--value-size", "100", "--backend", backend,
                    "127.0.0.1:" + std::to_string(fake.port())});
}

TEST_P(BenchMemcacheFaulty, the_fake_server_answering_right_gives_no_errors) {
  FakeMemcached fake(3, 10, 100, false);
  ASSERT_NE(fake.port(), 0);
  BenchRun r = run_against_fake(fake, GetParam());
  ASSERT_TRUE(r.status.success()) << describe(r);
  ASSERT_TRUE(r.json_ok) << describe(r);
  EXPECT_EQ(r.json.number("errors"), 0.0) << describe(r);
  EXPECT_GT(fake.gets_answered(), 0u);
}

TEST_P(BenchMemcacheFaulty, one_wrong_byte_in_a_value_is_a_wrong_reply) {
  FakeMemcached fake(3, 10, 100, true);
  ASSERT_NE(fake.port(), 0);
  BenchRun r = run_against_fake(fake, GetParam());
  ASSERT_TRUE(r.status.success()) << describe(r);
  ASSERT_TRUE(r.json_ok) << describe(r);
  EXPECT_GT(r.json.number("errors_by_kind.wrong_reply").value_or(0), 0.0) << describe(r);
  EXPECT_EQ(r.json.number("errors_by_kind.wrong_reply"), r.json.number("errors")) << describe(r);
  EXPECT_EQ(r.json.text("first_wrong_reply"), "value bytes differ") << describe(r);
  EXPECT_EQ(r.json.number("throughput"), 0.0) << "no reply was right";
}

INSTANTIATE_TEST_SUITE_P(Backends, BenchMemcacheFaulty, ::testing::Values("uring", "epoll"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ringlet::testing
