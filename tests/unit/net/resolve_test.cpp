#include "ringlet/net/resolve.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "ringlet/runtime/timeout.hpp"
#include "support/loop_fixture.hpp"

namespace ringlet {
namespace {

using namespace std::chrono_literals;
using testing::LoopTest;

class ResolveTest : public LoopTest {};

using Addresses = Result<std::vector<Address>>;

Task<Addresses> lookup(std::string host, std::uint16_t port) { co_return co_await resolve(std::move(host), port); }

Task<Addresses> lookup_on(std::string host, std::uint16_t port, BlockingPool* pool) {
  co_return co_await resolve(std::move(host), port, *pool);
}

Task<Status> join_status(JoinHandle<Status> h) { co_return co_await h; }

// Occupies a pool thread until the test opens the gate.
Task<Status> occupy(BlockingPool* pool, const std::atomic<bool>* gate) {
  co_return co_await pool->run([gate] {
    while (!gate->load()) std::this_thread::sleep_for(100us);
  });
}

TEST_P(ResolveTest, numeric_hosts_resolve_inline_without_the_pool) {
  BlockingPool pool(1);
  std::atomic<bool> gate{false};
  auto busy = loop().spawn_joinable(occupy(&pool, &gate));
  loop().run_once(false);
  // The only pool thread is busy: these complete only because they never reach the pool.
  Addresses v4 = run(lookup_on("127.0.0.1", 80, &pool));
  ASSERT_TRUE(v4.ok()) << v4.error().message();
  EXPECT_EQ(*v4, (std::vector<Address>{Address::loopback_v4(80)}));
  Addresses v6 = run(lookup_on("::1", 443, &pool));
  ASSERT_TRUE(v6.ok()) << v6.error().message();
  EXPECT_EQ(*v6, (std::vector<Address>{Address::loopback_v6(443)}));
  Addresses bracketed = run(lookup_on("[::1]", 443, &pool));
  ASSERT_TRUE(bracketed.ok());
  EXPECT_EQ(*bracketed, *v6);
  gate = true;
  EXPECT_TRUE(run(join_status(std::move(busy))).ok());
}

TEST_P(ResolveTest, localhost_resolves_to_a_loopback_address_with_the_port) {
  Addresses r = run(lookup("localhost", 8080));
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_FALSE(r->empty());
  for (const Address& a : *r) {
    EXPECT_TRUE(a == Address::loopback_v4(8080) || a == Address::loopback_v6(8080)) << a.to_string();
  }
}

Task<Addresses> lookup_with_timeout(std::string host, std::chrono::milliseconds limit) {
  co_return co_await with_timeout(resolve(std::move(host), 80), limit);
}

TEST_P(ResolveTest, a_name_that_does_not_exist_fails_without_hanging) {
  // No network here: the resolver may answer "no such name" or fail to reach a server; either is an error, and
  // the timeout keeps a slow resolver from hanging the test.
  Addresses r = run(lookup_with_timeout("nonexistent.invalid", 20'000ms));
  ASSERT_FALSE(r.ok());
}

TEST_P(ResolveTest, an_empty_host_is_invalid) { EXPECT_EQ(run(lookup("", 80)).error(), errc::invalid_argument); }

Task<Addresses> lookup_on_with_timeout(std::string host, BlockingPool* pool) {
  co_return co_await with_timeout(resolve(std::move(host), 80, *pool), 5ms);
}

TEST_P(ResolveTest, a_lookup_stuck_behind_a_busy_pool_times_out_promptly) {
  BlockingPool pool(1);
  std::atomic<bool> gate{false};
  auto busy = loop().spawn_joinable(occupy(&pool, &gate));
  loop().run_once(false);
  EXPECT_EQ(run(lookup_on_with_timeout("localhost", &pool)).error(), errc::timed_out);
  gate = true;
  EXPECT_TRUE(run(join_status(std::move(busy))).ok());
}

RINGLET_BOTH_BACKENDS(ResolveTest);

}  // namespace
}  // namespace ringlet
