// turn_budget_test.cpp — a pipeline gets kRequestsPerTurn answers, then yields; input running dry refills it.
#include "ringlet/runtime/turn_budget.hpp"

#include <gtest/gtest.h>

namespace ringlet {
namespace {

TEST(TurnBudget, a_deep_pipeline_yields_after_every_budget_of_answers) {
  TurnBudget turn;
  int yields = 0;
  for (int answer = 1; answer <= 3 * TurnBudget::kRequestsPerTurn; ++answer) {
    const bool yield_now = turn.spend(/*more_waiting=*/true);
    EXPECT_EQ(yield_now, answer % TurnBudget::kRequestsPerTurn == 0) << answer;
    yields += yield_now ? 1 : 0;
  }
  EXPECT_EQ(yields, 3);
}

TEST(TurnBudget, input_that_runs_dry_starts_the_next_burst_with_a_full_budget) {
  TurnBudget turn;
  for (int i = 0; i < TurnBudget::kRequestsPerTurn - 1; ++i) EXPECT_FALSE(turn.spend(true));
  EXPECT_FALSE(turn.spend(false));  // nothing waiting: never a yield, and the count starts over
  for (int i = 0; i < TurnBudget::kRequestsPerTurn - 1; ++i) EXPECT_FALSE(turn.spend(true));
  EXPECT_TRUE(turn.spend(true));
}

}  // namespace
}  // namespace ringlet
