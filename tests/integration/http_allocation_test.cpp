// Proves the http server's steady-state claim: once warm, serving a cached small file (one request at a time and
// 16 pipelined) and the /json route calls operator new zero times — server and client on one loop.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <new>
#include <string>

#include "ringlet/net/stream.hpp"
#include "ringlet/base/log.hpp"
#include "ringlet/servers/http_server.hpp"
#include "support/allocation_counter.hpp"
#include "support/loop_fixture.hpp"

namespace ringlet {
namespace {

using testing::LoopTest;
class HttpSteadyStateAllocation : public LoopTest {};

struct Counts {
  std::size_t responses = 0;
  std::size_t allocations = 0;
  bool ok = false;
};

// Sends `request` (`per_write` copies pipelined) and reads until `per_write` complete responses arrived (counted
// by their end: the body "Hello, World!" or the JSON object closes each response).
Task<Counts> client(Address server, std::string request, int per_write, std::string_view body, int warmup,
                    int measured) {
  Counts counts;
  Result<Stream> c = co_await connect(server);
  if (!c) co_return counts;
  std::string all;
  for (int i = 0; i < per_write; ++i) all += request;
  Slice message = Slice::copy_of(std::string_view(all));
  std::size_t before = 0;
  std::string_view tail = body;
  for (int round = 0; round < warmup + measured; ++round) {
    if (round == warmup) before = testing::operator_new_calls();
    Status sent = co_await c->write(message);
    if (!sent) co_return counts;
    int seen = 0;
    std::size_t matched = 0;  // bytes of `tail` matched so far (a response body may straddle receives)
    while (seen < per_write) {
      Result<Slice> r = co_await c->receive();
      if (!r || r->empty()) co_return counts;
      for (char ch : r->view()) {
        matched = ch == tail[matched] ? matched + 1 : (ch == tail[0] ? 1 : 0);
        if (matched == tail.size()) {
          ++seen;
          matched = 0;
        }
      }
    }
    counts.responses += static_cast<std::size_t>(seen);
  }
  counts.allocations = testing::operator_new_calls() - before;
  counts.ok = true;
  co_return counts;
}

Task<Counts> run_http(Loop* loop, std::string root, std::string request, int per_write, std::string_view body) {
  http::HttpOptions options;
  options.server.listen = Address::loopback_v4(0);
  options.root = root;
  options.bench_routes = true;
  Counts counts;
  auto server = http::HttpServer::create(*loop, options);
  if (!server) co_return counts;
  if (!(*server)->listen()) co_return counts;
  JoinHandle<void> serving = loop->spawn_joinable((*server)->run());
  counts = co_await client((*server)->tcp().local_address(), request, per_write, body, 500, 3000);
  (*server)->stop();
  co_await serving;
  co_return counts;
}

class Root {
 public:
  Root() {
    char tmpl[] = "/tmp/ringlet-http-alloc-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) path_ = tmpl;
    std::ofstream(path_ + "/file13") << "Hello, World!";
  }
  ~Root() {
    ::unlink((path_ + "/file13").c_str());
    ::rmdir(path_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

constexpr const char* kGetFile = "GET /file13 HTTP/1.1\r\nHost: t\r\n\r\n";

TEST_P(HttpSteadyStateAllocation, serving_a_cached_file_allocates_nothing_once_warm) {
  set_log_level(LogLevel::warn);
  Root root;
  Counts counts = run(run_http(&loop(), root.path(), kGetFile, 1, "Hello, World!"));
  ASSERT_TRUE(counts.ok);
  EXPECT_EQ(counts.responses, 3500u);
  EXPECT_EQ(counts.allocations, 0u) << "operator new was called in steady state";
}

TEST_P(HttpSteadyStateAllocation, sixteen_pipelined_requests_allocate_nothing_once_warm) {
  set_log_level(LogLevel::warn);
  Root root;
  Counts counts = run(run_http(&loop(), root.path(), kGetFile, 16, "Hello, World!"));
  ASSERT_TRUE(counts.ok);
  EXPECT_EQ(counts.responses, 3500u * 16);
  EXPECT_EQ(counts.allocations, 0u) << "operator new was called in steady state";
}

TEST_P(HttpSteadyStateAllocation, the_json_route_allocates_nothing_once_warm) {
  set_log_level(LogLevel::warn);
  Root root;
  Counts counts = run(run_http(&loop(), root.path(), "GET /json HTTP/1.1\r\nHost: t\r\n\r\n", 16,
                               "{\"message\":\"Hello, World!\"}"));
  ASSERT_TRUE(counts.ok);
  EXPECT_EQ(counts.responses, 3500u * 16);
  EXPECT_EQ(counts.allocations, 0u) << "operator new was called in steady state";
}

RINGLET_BOTH_BACKENDS(HttpSteadyStateAllocation);

}  // namespace
}  // namespace ringlet
