#include "ringlet/runtime/task.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <thread>
#include <atomic>
#include <vector>

#include "ringlet/runtime/loop.hpp"
#include "ringlet/runtime/timeout.hpp"
#include "support/loop_fixture.hpp"

namespace ringlet {
namespace {

using testing::LoopTest;

class TaskTest : public LoopTest {};

Task<int> answer() { co_return 42; }

Task<int> add_children(int a) {
  int x = co_await answer();
  int y = co_await answer();
  co_return a + x + y;
}

TEST_P(TaskTest, awaited_task_returns_its_value) { EXPECT_EQ(run(add_children(1)), 85); }

Task<std::string> make_string(std::string s) { co_return s + "!"; }

TEST_P(TaskTest, move_only_and_non_trivial_results_pass_through) { EXPECT_EQ(run(make_string("hi")), "hi!"); }

Task<void> throws() {
  throw std::runtime_error("boom");
  co_return;
}

Task<bool> catches() {
  try {
    co_await throws();
  } catch (const std::runtime_error& e) {
    co_return std::string(e.what()) == "boom";
  }
  co_return false;
}

TEST_P(TaskTest, exception_propagates_to_awaiter) { EXPECT_TRUE(run(catches())); }

Task<void> record(std::vector<int>* out, int id, int yields) {
  for (int i = 0; i < yields; ++i) {
    out->push_back(id);
    (void)co_await yield();
  }
}

TEST_P(TaskTest, yield_interleaves_ready_tasks_in_order) {
  std::vector<int> order;
  loop().spawn(record(&order, 1, 3));
  loop().spawn(record(&order, 2, 3));
  ASSERT_TRUE(loop().run_until_idle());
  EXPECT_EQ(order, (std::vector<int>{1, 2, 1, 2, 1, 2}));
}

Task<int> sleeper(int value, std::chrono::milliseconds d) {
  Status s = co_await sleep_for(d);
  co_return s.ok() ? value : -1;
}

Task<int> join_two() {
  JoinHandle<int> a = Loop::current()->spawn_joinable(sleeper(1, std::chrono::milliseconds(2)));
  JoinHandle<int> b = Loop::current()->spawn_joinable(sleeper(2, std::chrono::milliseconds(1)));
  int x = co_await a;
  int y = co_await b;
  co_return x * 10 + y;
}

TEST_P(TaskTest, join_handles_yield_results_of_spawned_tasks) { EXPECT_EQ(run(join_two()), 12); }

Task<int> cancel_sleeper() {
  JoinHandle<int> h = Loop::current()->spawn_joinable(sleeper(7, std::chrono::hours(1)));
  (void)co_await yield();  // let it start sleeping
  h.cancel();
  co_return co_await h;
}

TEST_P(TaskTest, cancel_reaches_a_sleeping_task) { EXPECT_EQ(run(cancel_sleeper()), -1); }

Task<void> forever(int* steps) {
  for (;;) {
    // Not `while ((co_await ...).ok())`: GCC 12 destroys an awaitable in a loop condition at suspension.
    Status s = co_await sleep_for(std::chrono::hours(1));
    if (!s.ok()) break;
    ++*steps;
  }
}

TEST_P(TaskTest, dropping_a_join_handle_detaches_and_cancel_all_stops_it) {
  int steps = 0;
  { auto h = loop().spawn_joinable(forever(&steps)); }
  loop().run_once(false);
  EXPECT_EQ(loop().live_tasks(), 1u);
  loop().cancel_all_tasks();
  EXPECT_TRUE(loop().run_until_idle());
  EXPECT_EQ(steps, 0);
}

Task<void> just_sleep(std::chrono::milliseconds d) { (void)co_await sleep_for(d); }

Task<Result<std::monostate>> sleep_with_timeout(std::chrono::milliseconds sleep, std::chrono::milliseconds limit) {
  co_return co_await with_timeout(just_sleep(sleep), limit);
}

TEST_P(TaskTest, with_timeout_on_a_task_times_out_and_cancels_it) {
  auto r = run(sleep_with_timeout(std::chrono::milliseconds(10'000), std::chrono::milliseconds(5)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), errc::timed_out);
}

TEST_P(TaskTest, with_timeout_returns_the_value_when_the_task_wins) {
  auto r = run(sleep_with_timeout(std::chrono::milliseconds(1), std::chrono::milliseconds(5'000)));
  EXPECT_TRUE(r.ok());
}

Task<Status> sleep_for_with_timeout() { co_return (co_await with_timeout(sleep_for(std::chrono::hours(1)), std::chrono::milliseconds(2))).error(); }

TEST_P(TaskTest, with_timeout_on_sleep_reports_timed_out) {
  Status s = run(sleep_for_with_timeout());
  EXPECT_EQ(s.error(), errc::timed_out);
}

TEST_P(TaskTest, post_from_another_thread_runs_on_the_loop_thread) {
  std::atomic<int> ran{0};
  std::thread::id loop_thread = std::this_thread::get_id();
  std::thread::id ran_on;
  std::thread t([&] {
    for (int i = 0; i < 100; ++i) loop().post([&] { ran_on = std::this_thread::get_id(); ++ran; });
  });
  while (ran.load() < 100) loop().run_once();
  t.join();
  EXPECT_EQ(ran_on, loop_thread);
}

RINGLET_BOTH_BACKENDS(TaskTest);

}  // namespace
}  // namespace ringlet
