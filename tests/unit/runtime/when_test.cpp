#include "ringlet/runtime/when.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "ringlet/runtime/timeout.hpp"
#include "support/loop_fixture.hpp"

namespace ringlet {
namespace {

using namespace std::chrono_literals;
using testing::LoopTest;
class WhenTest : public LoopTest {};

Task<int> after(std::chrono::milliseconds d, int value, std::vector<int>* finished) {
  Status s = co_await sleep_for(d);
  if (!s) co_return -value;  // cancelled
  if (finished != nullptr) finished->push_back(value);
  co_return value;
}

Task<void> nothing() { co_return; }

Task<std::string> text(std::string s) { co_return s; }

Task<std::tuple<int, std::monostate, std::string>> all_three(std::vector<int>* finished) {
  co_return co_await when_all(after(5ms, 1, finished), nothing(), text("x"));
}

TEST_P(WhenTest, when_all_returns_every_result_in_argument_order) {
  std::vector<int> finished;
  auto [a, b, c] = run(all_three(&finished));
  EXPECT_EQ(a, 1);
  EXPECT_EQ(c, "x");
  (void)b;
}

Task<std::vector<int>> all_vector(std::vector<int>* finished) {
  std::vector<Task<int>> tasks;
  tasks.push_back(after(6ms, 1, finished));
  tasks.push_back(after(2ms, 2, finished));
  tasks.push_back(after(4ms, 3, finished));
  co_return co_await when_all(std::move(tasks));
}

TEST_P(WhenTest, when_all_runs_children_concurrently_and_keeps_argument_order) {
  std::vector<int> finished;
  EXPECT_EQ(run(all_vector(&finished)), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(finished, (std::vector<int>{2, 3, 1})) << "children ran one after another, not concurrently";
}

Task<WhenAnyResult<int>> any_of_three(std::vector<int>* finished) {
  // The losers' sleeps are far longer than any stall of a loaded machine: with a 50 ms loser, a turn that came late
  // found both timers expired and ran the loser before the winner's cancel reached it (seen once at load 17).
  co_return co_await when_any(after(10s, 1, finished), after(1ms, 2, finished), after(3600s, 3, finished));
}

TEST_P(WhenTest, when_any_returns_the_first_and_cancels_the_rest) {
  std::vector<int> finished;
  WhenAnyResult<int> r = run(any_of_three(&finished));
  EXPECT_EQ(r.index, 1u);
  EXPECT_EQ(r.value, 2);
  EXPECT_EQ(finished, (std::vector<int>{2}));
  EXPECT_EQ(loop().timers().size(), 0u) << "losers must be cancelled, not left sleeping";
}

Task<int> thrower() {
  co_await sleep_for(1ms);
  throw std::runtime_error("child failed");
}

Task<bool> all_with_thrower(std::vector<int>* finished) {
  try {
    (void)co_await when_all(thrower(), after(3600s, 7, finished));
  } catch (const std::runtime_error&) {
    co_return true;
  }
  co_return false;
}

TEST_P(WhenTest, when_all_rethrows_a_child_exception_after_cancelling_the_others) {
  std::vector<int> finished;
  EXPECT_TRUE(run(all_with_thrower(&finished)));
  EXPECT_TRUE(finished.empty());
}

Task<Result<std::tuple<int, int>>> all_with_timeout() {
  co_return co_await with_timeout(when_all(after(3600s, 1, nullptr), after(3600s, 2, nullptr)), 5ms);
}

TEST_P(WhenTest, cancelling_when_all_cancels_every_child_and_waits_for_them) {
  auto r = run(all_with_timeout());
  // The children end cancelled (returning -value); with_timeout reports the deadline.
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), errc::timed_out);
}

RINGLET_BOTH_BACKENDS(WhenTest);

}  // namespace
}  // namespace ringlet
