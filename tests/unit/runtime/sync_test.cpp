#include "ringlet/runtime/sync.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "ringlet/runtime/timeout.hpp"
#include "support/loop_fixture.hpp"

namespace ringlet {
namespace {

using namespace std::chrono_literals;
using testing::LoopTest;

class SyncTest : public LoopTest {};

template <class T>
Task<T> join(JoinHandle<T> h) {
  co_return co_await h;
}

// ---- Channel -------------------------------------------------------------------------------------------------

Task<void> produce(Channel<int>* ch, int first, int count, std::vector<std::string>* log) {
  for (int i = first; i < first + count; ++i) {
    Status s = co_await ch->send(int{i});
    log->push_back("sent " + std::to_string(i) + (s ? "" : " failed"));
  }
}

Task<void> consume(Channel<int>* ch, int count, std::vector<std::string>* log) {
  for (int i = 0; i < count; ++i) {
    Result<int> r = co_await ch->receive();
    log->push_back(r ? "got " + std::to_string(*r) : "receive failed");
  }
}

TEST_P(SyncTest, a_producer_blocked_on_a_full_channel_resumes_when_the_consumer_takes) {
  Channel<int> ch(2);
  std::vector<std::string> log;
  loop().spawn(produce(&ch, 1, 3, &log));
  loop().run_once(false);
  // Two fit; the third send waits.
  EXPECT_EQ(log, (std::vector<std::string>{"sent 1", "sent 2"}));
  EXPECT_TRUE(ch.full());
  EXPECT_EQ(loop().live_tasks(), 1u);

  loop().spawn(consume(&ch, 1, &log));
  ASSERT_TRUE(loop().run_until_idle());
  EXPECT_EQ(log, (std::vector<std::string>{"sent 1", "sent 2", "got 1", "sent 3"}));
  EXPECT_EQ(ch.size(), 2u);
  EXPECT_EQ(ch.try_receive().value(), 2);
  EXPECT_EQ(ch.try_receive().value(), 3);
  EXPECT_EQ(ch.try_receive().error(), errc::would_block);
}

TEST_P(SyncTest, waiting_receivers_are_served_in_arrival_order) {
  Channel<int> ch(1);
  std::vector<std::string> a;
  std::vector<std::string> b;
  loop().spawn(consume(&ch, 1, &a));
  loop().spawn(consume(&ch, 1, &b));
  loop().run_once(false);
  ASSERT_TRUE(ch.try_send(10).ok());
  ASSERT_TRUE(ch.try_send(20).ok());
  ASSERT_TRUE(loop().run_until_idle());
  EXPECT_EQ(a, (std::vector<std::string>{"got 10"}));
  EXPECT_EQ(b, (std::vector<std::string>{"got 20"}));
}

TEST_P(SyncTest, waiting_senders_enter_the_channel_in_arrival_order) {
  Channel<int> ch(1);
  ASSERT_TRUE(ch.try_send(0).ok());
  std::vector<std::string> log;
  loop().spawn(produce(&ch, 1, 1, &log));
  loop().spawn(produce(&ch, 2, 1, &log));
  loop().spawn(produce(&ch, 3, 1, &log));
  loop().run_once(false);
  EXPECT_TRUE(log.empty());
  std::vector<int> got;
  for (int i = 0; i < 4; ++i) {
    Result<int> r = ch.try_receive();
    ASSERT_TRUE(r.ok());
    got.push_back(*r);
  }
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3}));
  ASSERT_TRUE(loop().run_until_idle());
  EXPECT_EQ(log.size(), 3u);
}

TEST_P(SyncTest, a_receiver_that_arrives_later_cannot_overtake_a_waiting_one) {
  Channel<int> ch(4);
  std::vector<std::string> waiting;
  loop().spawn(consume(&ch, 1, &waiting));
  loop().run_once(false);
  ASSERT_TRUE(ch.try_send(7).ok());
  // The item went straight to the waiter, not into the ring a newcomer could take it from.
  EXPECT_EQ(ch.size(), 0u);
  EXPECT_EQ(ch.try_receive().error(), errc::would_block);
  ASSERT_TRUE(loop().run_until_idle());
  EXPECT_EQ(waiting, (std::vector<std::string>{"got 7"}));
}

Task<std::vector<std::string>> drain(Channel<std::string>* ch) {
  std::vector<std::string> out;
  for (;;) {
    Result<std::string> r = co_await ch->receive();
    if (!r) {
      out.push_back(r.error() == errc::queue_closed ? "closed" : "error");
      break;
    }
    out.push_back(*r);
  }
  co_return out;
}

TEST_P(SyncTest, close_lets_receivers_drain_queued_items_then_reports_queue_closed) {
  Channel<std::string> ch(4);
  ASSERT_TRUE(ch.try_send("a").ok());
  ASSERT_TRUE(ch.try_send("b").ok());
  ch.close();
  EXPECT_EQ(ch.try_send("c").error(), errc::queue_closed);
  EXPECT_EQ(run(drain(&ch)), (std::vector<std::string>{"a", "b", "closed"}));
  EXPECT_EQ(ch.try_receive().error(), errc::queue_closed);
}

TEST_P(SyncTest, close_wakes_a_waiting_receiver_with_queue_closed) {
  Channel<std::string> ch(1);
  auto h = loop().spawn_joinable(drain(&ch));
  loop().run_once(false);
  EXPECT_FALSE(h.done());
  ch.close();
  ASSERT_TRUE(loop().run_until_idle());
  ASSERT_TRUE(h.done());
  EXPECT_EQ(run(join(std::move(h))), (std::vector<std::string>{"closed"}));
}

Task<std::pair<Status, std::string>> send_kept(Channel<std::string>* ch, std::string item) {
  Status s = co_await ch->send(std::move(item));
  co_return std::pair{s, item};  // on failure `item` was not moved from
}

TEST_P(SyncTest, close_wakes_a_waiting_sender_and_its_item_stays_with_the_caller) {
  Channel<std::string> ch(1);
  ASSERT_TRUE(ch.try_send("first").ok());
  auto h = loop().spawn_joinable(send_kept(&ch, "second"));
  loop().run_once(false);
  ch.close();
  auto [status, item] = run(join(std::move(h)));
  EXPECT_EQ(status.error(), errc::queue_closed);
  EXPECT_EQ(item, "second");
  EXPECT_EQ(ch.try_receive().value(), "first");
}

Task<std::pair<Status, std::string>> send_with_timeout(Channel<std::string>* ch, std::string item) {
  Status s = co_await with_timeout(ch->send(std::move(item)), 5ms);
  co_return std::pair{s, item};
}

TEST_P(SyncTest, a_blocked_send_cancelled_by_a_timeout_keeps_its_item_and_leaves_the_channel_unchanged) {
  Channel<std::string> ch(1);
  ASSERT_TRUE(ch.try_send("first").ok());
  auto [status, item] = run(send_with_timeout(&ch, "second"));
  EXPECT_EQ(status.error(), errc::timed_out);
  EXPECT_EQ(item, "second");
  EXPECT_EQ(ch.size(), 1u);
  EXPECT_EQ(ch.try_receive().value(), "first");
  EXPECT_EQ(ch.try_receive().error(), errc::would_block);  // not delivered later either
}

TEST_P(SyncTest, a_send_handed_over_before_its_timeout_fires_succeeds) {
  // The consumer takes right away; the sender's timeout is long. The item is delivered exactly once.
  Channel<std::string> ch(1);
  ASSERT_TRUE(ch.try_send("first").ok());
  auto h = loop().spawn_joinable(send_with_timeout(&ch, "second"));
  loop().run_once(false);
  EXPECT_EQ(ch.try_receive().value(), "first");  // makes room: "second" moves in and its sender is scheduled
  auto [status, item] = run(join(std::move(h)));
  EXPECT_TRUE(status.ok());
  EXPECT_TRUE(item.empty());  // moved into the channel
  EXPECT_EQ(ch.try_receive().value(), "second");
  EXPECT_EQ(ch.try_receive().error(), errc::would_block);
}

TEST_P(SyncTest, a_cancel_arriving_after_the_hand_off_changes_nothing) {
  Channel<std::string> ch(1);
  ASSERT_TRUE(ch.try_send("first").ok());
  auto sender = loop().spawn_joinable(send_kept(&ch, "second"));
  loop().run_once(false);
  EXPECT_EQ(ch.try_receive().value(), "first");  // "second" moves in; the sender is scheduled, not yet resumed
  sender.cancel();
  auto [status, item] = run(join(std::move(sender)));
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(ch.try_receive().value(), "second");

  auto receiver = loop().spawn_joinable(drain(&ch));
  loop().run_once(false);
  ASSERT_TRUE(ch.try_send("third").ok());  // handed straight to the waiting receiver
  receiver.cancel();
  std::vector<std::string> got = run(join(std::move(receiver)));
  // It keeps "third"; its next receive fails fast because the task is cancelled.
  EXPECT_EQ(got, (std::vector<std::string>{"third", "error"}));
  EXPECT_EQ(ch.size(), 0u);
}

Task<Result<int>> receive_with_timeout(Channel<int>* ch) { co_return co_await with_timeout(ch->receive(), 5ms); }

TEST_P(SyncTest, a_blocked_receive_cancelled_by_a_timeout_takes_nothing) {
  Channel<int> ch(1);
  Result<int> r = run(receive_with_timeout(&ch));
  EXPECT_EQ(r.error(), errc::timed_out);
  ASSERT_TRUE(ch.try_send(5).ok());
  EXPECT_EQ(ch.try_receive().value(), 5);
}

Task<Result<int>> receive_once(Channel<int>* ch) { co_return co_await ch->receive(); }

TEST_P(SyncTest, a_cancelled_task_takes_no_item_even_when_one_is_queued) {
  Channel<int> ch(1);
  ASSERT_TRUE(ch.try_send(1).ok());
  auto h = loop().spawn_joinable(receive_once(&ch));
  h.cancel();  // before it first runs: its receive must fail fast without touching the channel
  EXPECT_EQ(run(join(std::move(h))).error(), errc::cancelled);
  EXPECT_EQ(ch.try_receive().value(), 1);
}

TEST_P(SyncTest, an_lvalue_send_copies_and_leaves_the_original) {
  Channel<std::string> ch(1);
  std::string s = "copy me";
  ASSERT_TRUE(ch.try_send(s).ok());
  EXPECT_EQ(s, "copy me");
  EXPECT_EQ(ch.try_receive().value(), "copy me");
}

Task<void> move_only_roundtrip(Channel<std::unique_ptr<int>>* ch, int* out) {
  Status s = co_await ch->send(std::make_unique<int>(41));
  if (!s) co_return;
  Result<std::unique_ptr<int>> r = co_await ch->receive();
  if (r) *out = **r + 1;
}

TEST_P(SyncTest, move_only_items_pass_through) {
  Channel<std::unique_ptr<int>> ch(1);
  int out = 0;
  run(move_only_roundtrip(&ch, &out));
  EXPECT_EQ(out, 42);
}

// 100k items through a small channel: order kept, count exact, the ring never above its capacity.
Task<void> flood_producer(Channel<std::uint64_t>* ch, std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) {
    Status s = co_await ch->send(std::uint64_t{i});
    if (!s) co_return;
  }
  ch->close();
}

struct FloodStats {
  std::uint64_t received = 0;
  bool in_order = true;
  std::size_t max_size = 0;
};

Task<FloodStats> flood_consumer(Channel<std::uint64_t>* ch) {
  FloodStats st;
  for (;;) {
    st.max_size = std::max(st.max_size, ch->size());
    Result<std::uint64_t> r = co_await ch->receive();
    if (!r) break;
    if (*r != st.received) st.in_order = false;
    ++st.received;
  }
  co_return st;
}

TEST_P(SyncTest, a_flood_of_items_through_a_small_channel_arrives_complete_and_in_order) {
  constexpr std::uint64_t kItems = 100'000;
  Channel<std::uint64_t> ch(16);
  loop().spawn(flood_producer(&ch, kItems));
  FloodStats st = run(flood_consumer(&ch));
  EXPECT_EQ(st.received, kItems);
  EXPECT_TRUE(st.in_order);
  EXPECT_LE(st.max_size, 16u);
  EXPECT_GT(st.max_size, 1u);  // the producer did run ahead: back-pressure, not lock-step, bounded the ring
}

// ---- Event -----------------------------------------------------------------------------------------------------

Task<void> wait_event(Event* e, int id, std::vector<int>* woke) {
  Status s = co_await e->wait();
  if (s) woke->push_back(id);
}

TEST_P(SyncTest, set_wakes_every_waiter) {
  Event e;
  std::vector<int> woke;
  for (int i = 0; i < 3; ++i) loop().spawn(wait_event(&e, i, &woke));
  loop().run_once(false);
  EXPECT_TRUE(woke.empty());
  e.set();
  ASSERT_TRUE(loop().run_until_idle());
  EXPECT_EQ(woke, (std::vector<int>{0, 1, 2}));
}

TEST_P(SyncTest, waiting_on_a_set_event_completes_at_once_and_clear_makes_waits_suspend_again) {
  Event e;
  e.set();
  std::vector<int> woke;
  loop().spawn(wait_event(&e, 1, &woke));
  ASSERT_TRUE(loop().run_until_idle());
  EXPECT_EQ(woke, (std::vector<int>{1}));
  e.clear();
  EXPECT_FALSE(e.is_set());
  loop().spawn(wait_event(&e, 2, &woke));
  loop().run_once(false);
  EXPECT_EQ(woke.size(), 1u);
  e.set();
  ASSERT_TRUE(loop().run_until_idle());
  EXPECT_EQ(woke, (std::vector<int>{1, 2}));
}

Task<Status> wait_event_with_timeout(Event* e) { co_return (co_await with_timeout(e->wait(), 5ms)).error(); }

TEST_P(SyncTest, a_timed_out_event_wait_leaves_no_waiter_behind) {
  Event e;
  EXPECT_EQ(run(wait_event_with_timeout(&e)).error(), errc::timed_out);
  e.set();  // nothing to wake: a stale waiter would be resumed twice here
  ASSERT_TRUE(loop().run_until_idle());
}

// ---- Semaphore -------------------------------------------------------------------------------------------------

Task<void> hold_permit(Semaphore* sem, int id, std::vector<int>* order, Event* release_all) {
  Status s = co_await sem->acquire();
  if (!s) co_return;
  order->push_back(id);
  (void)co_await release_all->wait();
  sem->release();
}

TEST_P(SyncTest, semaphore_grants_permits_in_fifo_order) {
  Semaphore sem(1);
  std::vector<int> order;
  Event go;
  for (int i = 0; i < 4; ++i) loop().spawn(hold_permit(&sem, i, &order, &go));
  loop().run_once(false);
  EXPECT_EQ(order, (std::vector<int>{0}));
  EXPECT_EQ(sem.available(), 0u);
  go.set();
  ASSERT_TRUE(loop().run_until_idle());
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(sem.available(), 1u);
}

TEST_P(SyncTest, a_released_permit_goes_to_the_waiter_not_to_a_later_try_acquire) {
  Semaphore sem(1);
  ASSERT_TRUE(sem.try_acquire());
  std::vector<int> order;
  Event go;
  go.set();
  loop().spawn(hold_permit(&sem, 1, &order, &go));
  loop().run_once(false);
  sem.release();
  EXPECT_FALSE(sem.try_acquire());  // handed to the waiter already
  ASSERT_TRUE(loop().run_until_idle());
  EXPECT_EQ(order, (std::vector<int>{1}));
  EXPECT_EQ(sem.available(), 1u);
}

Task<Status> acquire_with_timeout(Semaphore* sem) { co_return (co_await with_timeout(sem->acquire(), 5ms)).error(); }

TEST_P(SyncTest, a_cancelled_acquire_consumes_no_permit) {
  Semaphore sem(0);
  EXPECT_EQ(run(acquire_with_timeout(&sem)).error(), errc::timed_out);
  sem.release();
  EXPECT_EQ(sem.available(), 1u);
  EXPECT_TRUE(sem.try_acquire());
  EXPECT_FALSE(sem.try_acquire());
}

TEST_P(SyncTest, release_of_several_permits_wakes_that_many_waiters_and_keeps_the_rest) {
  Semaphore sem(0);
  std::vector<int> order;
  Event never;
  for (int i = 0; i < 2; ++i) loop().spawn(hold_permit(&sem, i, &order, &never));
  loop().run_once(false);
  sem.release(3);
  loop().run_once(false);
  EXPECT_EQ(order, (std::vector<int>{0, 1}));
  EXPECT_EQ(sem.available(), 1u);
  never.set();
  ASSERT_TRUE(loop().run_until_idle());
  EXPECT_EQ(sem.available(), 3u);
}

RINGLET_BOTH_BACKENDS(SyncTest);

}  // namespace
}  // namespace ringlet
