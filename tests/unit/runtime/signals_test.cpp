#include "ringlet/runtime/signals.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <set>

#include "ringlet/runtime/timeout.hpp"
#include "support/loop_fixture.hpp"

namespace ringlet {
namespace {

using namespace std::chrono_literals;
using testing::LoopTest;

class SignalsTest : public LoopTest {};

template <class T>
Task<T> join(JoinHandle<T> h) {
  co_return co_await h;
}

Task<Result<int>> wait_signal(SignalSet* set) { co_return co_await set->wait(); }

bool blocked_here(int signo) {
  sigset_t mask;
  pthread_sigmask(SIG_BLOCK, nullptr, &mask);
  return sigismember(&mask, signo) == 1;
}

TEST_P(SignalsTest, a_signal_sent_to_the_process_wakes_the_waiting_task) {
  auto set = SignalSet::create(loop(), {SIGUSR1, SIGUSR2});
  ASSERT_TRUE(set.ok());
  auto h = loop().spawn_joinable(wait_signal(&*set));
  loop().run_once(false);
  EXPECT_FALSE(h.done());
  ASSERT_EQ(kill(getpid(), SIGUSR2), 0);
  Result<int> r = run(join(std::move(h)));
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(*r, SIGUSR2);
}

TEST_P(SignalsTest, signals_raised_before_the_wait_are_read_one_per_wait) {
  auto set = SignalSet::create(loop(), {SIGUSR1, SIGUSR2});
  ASSERT_TRUE(set.ok());
  ASSERT_EQ(kill(getpid(), SIGUSR1), 0);
  ASSERT_EQ(kill(getpid(), SIGUSR2), 0);
  std::set<int> got;
  for (int i = 0; i < 2; ++i) {
    Result<int> r = run(wait_signal(&*set));
    ASSERT_TRUE(r.ok()) << r.error().message();
    got.insert(*r);
  }
  EXPECT_EQ(got, (std::set<int>{SIGUSR1, SIGUSR2}));
}

Task<Result<int>> wait_signal_with_timeout(SignalSet* set) { co_return co_await with_timeout(set->wait(), 5ms); }

TEST_P(SignalsTest, a_timed_out_wait_loses_no_later_signal) {
  auto set = SignalSet::create(loop(), {SIGUSR1});
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(run(wait_signal_with_timeout(&*set)).error(), errc::timed_out);
  ASSERT_EQ(kill(getpid(), SIGUSR1), 0);
  Result<int> r = run(wait_signal(&*set));
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(*r, SIGUSR1);
}

TEST_P(SignalsTest, create_blocks_the_signals_and_close_discards_pending_ones_and_unblocks) {
  ASSERT_FALSE(blocked_here(SIGUSR1));
  {
    auto set = SignalSet::create(loop(), {SIGUSR1});
    ASSERT_TRUE(set.ok());
    EXPECT_TRUE(blocked_here(SIGUSR1));
    // Left unread: if close() unblocked without discarding it, SIGUSR1's default action would end the test run.
    ASSERT_EQ(kill(getpid(), SIGUSR1), 0);
  }
  EXPECT_FALSE(blocked_here(SIGUSR1));
  sigset_t pending;
  sigpending(&pending);
  EXPECT_FALSE(sigismember(&pending, SIGUSR1));
}

TEST_P(SignalsTest, close_leaves_signals_blocked_that_were_blocked_before) {
  ASSERT_TRUE(SignalSet::block_in_this_thread({SIGUSR2}).ok());
  {
    auto set = SignalSet::create(loop(), {SIGUSR2});
    ASSERT_TRUE(set.ok());
  }
  EXPECT_TRUE(blocked_here(SIGUSR2));
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR2);
  pthread_sigmask(SIG_UNBLOCK, &s, nullptr);
}

TEST_P(SignalsTest, signals_that_cannot_be_caught_are_rejected) {
  EXPECT_EQ(SignalSet::create(loop(), {SIGKILL}).error(), errc::invalid_argument);
  EXPECT_FALSE(blocked_here(SIGKILL));
}

RINGLET_BOTH_BACKENDS(SignalsTest);

}  // namespace
}  // namespace ringlet
