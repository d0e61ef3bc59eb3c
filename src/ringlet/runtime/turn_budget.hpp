// turn_budget.hpp — how many pipelined requests one connection answers before it lets the others run.
// Core-local: one per connection task.
//
// A request loop that answers everything already received before it yields lets a thousand pipelining clients
// make one loop turn last seconds, and a new client waits that long for its first byte (#15). The http, cache and
// queue servers count answers with this and `co_await yield()` when spend() says so; the answers still leave in
// one send per turn.
#pragma once

namespace ringlet {

class TurnBudget {
 public:
  static constexpr int kRequestsPerTurn = 16;

  // After one answer: true when the task should yield now — more input is waiting and this turn's budget is spent.
  // A connection whose input ran dry starts its next burst with a full budget.
  bool spend(bool more_waiting) noexcept {
    if (!more_waiting) {
      used_ = 0;
      return false;
    }
    if (++used_ < kRequestsPerTurn) return false;
    used_ = 0;
    return true;
  }

 private:
  int used_ = 0;
};

}  // namespace ringlet
