#include "ringlet/runtime/loop.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "ringlet/buf/buffer.hpp"
#include "ringlet/runtime/io_awaitable.hpp"
#include "ringlet/runtime/sync.hpp"
#include "ringlet/runtime/timeout.hpp"
#include "support/loop_fixture.hpp"

// The phase order of docs/design/loop.md, checked on the real loop and both backends: the fairness budget, one
// eventfd write per batch of posts, and deferred closes that wait for the final completion.

namespace ringlet {
namespace {

using namespace std::chrono_literals;

class LoopPhaseTest : public testing::LoopTest {
 protected:
  const Clock* test_clock() override { return &clock_; }

  void SetUp() override {
    testing::LoopTest::SetUp();
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds_), 0);
  }
  void TearDown() override {
    testing::LoopTest::TearDown();
    for (int fd : fds_) {
      if (fd >= 0) ::close(fd);
    }
  }

  ManualClock clock_;
  int fds_[2] = {-1, -1};
};

// ---- phase 4: the fairness budget --------------------------------------------------------------------------------

struct Flags {
  bool stop = false;
  bool timer_fired = false;
  int received = -1;
  std::uint64_t spins = 0;
};

Task<void> spin(Flags* f) {
  for (;;) {
    Status s = co_await yield();
    if (!s || f->stop) co_return;
    ++f->spins;
  }
}

Task<void> sleep_then_flag(Flags* f) {
  Status s = co_await sleep_for(10ms);
  f->timer_fired = static_cast<bool>(s);
}

Task<void> receive_one(Loop& loop, int fd, Flags* f) {
  IoHandle io;
  io.fd = fd;
  char byte = 0;
  IoAwaitable read(loop);
  read.kind = OpKind::recv;
  read.io = &io;
  read.buf = &byte;
  read.len = 1;
  f->received = co_await read;
  loop.backend().detach(io);  // the handle dies with this frame
}

TEST_P(LoopPhaseTest, a_task_that_yields_forever_does_not_starve_timers_or_io) {
  Flags f;
  loop().spawn(spin(&f));
  loop().spawn(sleep_then_flag(&f));
  loop().spawn(receive_one(loop(), fds_[0], &f));
  loop().run_once(false);  // every task starts: the sleeper arms its timer, the reader parks
  ASSERT_EQ(f.received, -1);

  clock_.advance(10'000'000);
  ASSERT_EQ(::write(fds_[1], "x", 1), 1);
  for (int i = 0; i < 3 && !(f.timer_fired && f.received == 1); ++i) loop().run_once(false);
  EXPECT_TRUE(f.timer_fired);
  EXPECT_EQ(f.received, 1);
  EXPECT_GE(f.spins, 1u);  // the spinner kept running all along

  f.stop = true;
  EXPECT_TRUE(loop().run_until_idle());  // here, while `f` is still alive for the spinner to read
}

Task<void> yield_once() {
  Status s = co_await yield();
  (void)s;
}

Task<void> wait_then_yield(Event* e) {
  Status woken = co_await e->wait();
  if (woken) (void)co_await yield();
}

TEST_P(LoopPhaseTest, one_turn_resumes_at_most_the_budget_and_a_yielding_task_waits_a_turn) {
  constexpr std::size_t kTasks = Loop::kReadyBudget + 476;
  Event go;
  for (std::size_t i = 0; i < kTasks; ++i) loop().spawn(wait_then_yield(&go));
  while (loop().ready_count() != 0) loop().run_once(false);  // every task starts and waits
  go.set();  // wakes them all at once
  std::uint64_t before = loop().stats().tasks_resumed;
  loop().run_once(false);
  EXPECT_EQ(loop().stats().tasks_resumed - before, Loop::kReadyBudget);
  // The 476 not yet resumed, plus every task that yielded during the turn: nobody ran twice.
  EXPECT_EQ(loop().ready_count(), kTasks);
  EXPECT_TRUE(loop().run_until_idle());
}

Task<void> yield_then_record(std::vector<int>* order, int id) {
  Status s = co_await yield();
  if (s) order->push_back(id);
}

Task<void> record(std::vector<int>* order, int id) {
  order->push_back(id);
  co_return;
}

TEST_P(LoopPhaseTest, tasks_that_yielded_run_after_the_woken_ones_and_at_most_the_yielded_budget_per_turn) {
  constexpr int kYielders = 200;
  std::vector<int> order;
  for (int i = 0; i < kYielders; ++i) loop().spawn(yield_then_record(&order, i));
  loop().run_once(false);  // every yielder starts and yields
  ASSERT_TRUE(order.empty());

  loop().spawn(record(&order, -1));  // woken after them: it still goes first
  loop().run_once(false);
  ASSERT_EQ(order.size(), 1 + Loop::kYieldedBudget);
  EXPECT_EQ(order[0], -1);
  for (std::size_t i = 1; i < order.size(); ++i) EXPECT_EQ(order[i], static_cast<int>(i - 1)) << "oldest first";
  EXPECT_EQ(loop().ready_count(), kYielders - Loop::kYieldedBudget);

  EXPECT_TRUE(loop().run_until_idle());
  EXPECT_EQ(order.size(), 1 + static_cast<std::size_t>(kYielders));
}

// ---- phase 4: spawned tasks start in the turn that spawned them (#15) --------------------------------------------

Task<void> record_turn(Loop* loop, std::vector<std::uint64_t>* turns) {
  turns->push_back(loop->stats().iterations);
  co_return;
}

// What an acceptor does: woken by a connection, it spawns the connection's task.
Task<void> wait_then_spawn(Loop* loop, Event* e, int count, std::vector<std::uint64_t>* turns) {
  Status woken = co_await e->wait();
  if (!woken) co_return;
  turns->push_back(loop->stats().iterations);
  for (int i = 0; i < count; ++i) loop->spawn(record_turn(loop, turns));
}

TEST_P(LoopPhaseTest, a_task_spawned_by_a_running_task_starts_in_the_same_turn) {
  // A new connection's first steps are spawns; started a turn later, each cost a whole turn of a flood.
  Event go;
  std::vector<std::uint64_t> turns;
  loop().spawn(wait_then_spawn(&loop(), &go, 1, &turns));
  loop().run_once(false);
  go.set();
  loop().run_once(false);
  ASSERT_EQ(turns.size(), 2u) << "the spawned task waits for the next turn";
  EXPECT_EQ(turns[1], turns[0]);
  EXPECT_TRUE(loop().run_until_idle());
}

TEST_P(LoopPhaseTest, one_turn_starts_at_most_the_spawned_budget_and_the_rest_start_in_the_next) {
  constexpr int kSpawned = static_cast<int>(Loop::kSpawnedBudget) + 100;
  Event go;
  std::vector<std::uint64_t> turns;
  loop().spawn(wait_then_spawn(&loop(), &go, kSpawned, &turns));
  loop().run_once(false);
  go.set();
  loop().run_once(false);
  ASSERT_EQ(turns.size(), 1 + Loop::kSpawnedBudget);
  EXPECT_EQ(loop().ready_count(), 100u);
  loop().run_once(false);
  EXPECT_EQ(turns.size(), 1 + static_cast<std::size_t>(kSpawned));
  EXPECT_EQ(turns.back(), turns.front() + 1);
  EXPECT_TRUE(loop().run_until_idle());
}

Task<void> record_id(std::vector<int>* started, int id) {
  started->push_back(id);
  co_return;
}

// What an acceptor does when a burst of connections arrives: woken once, it spawns one task per connection.
Task<void> wait_then_spawn_ids(Loop* loop, Event* e, int first, int count, std::vector<int>* started) {
  Status woken = co_await e->wait();
  if (!woken) co_return;
  for (int i = first; i < first + count; ++i) loop->spawn(record_id(started, i));
}

// A burst of new tasks larger than a turn's budget, and one that came last (a fresh client behind a thousand
// connections' set-up): it starts in the first turn, and so does the oldest share; those in between wait.
TEST_P(LoopPhaseTest, past_the_spawned_budget_the_newest_task_starts_first_turn_and_the_oldest_get_a_share_issue_15) {
  constexpr int kBudget = static_cast<int>(Loop::kSpawnedBudget);
  constexpr int kShare = static_cast<int>(Loop::kOldestShare);
  constexpr int kTasks = kBudget + 300;
  Event go;
  std::vector<int> started;
  loop().spawn(wait_then_spawn_ids(&loop(), &go, 0, kTasks, &started));
  loop().run_once(false);
  go.set();
  loop().run_once(false);
  ASSERT_EQ(started.size(), Loop::kSpawnedBudget);
  std::vector<int> expected;
  for (int i = 0; i < kShare; ++i) expected.push_back(i);                       // the oldest, in arrival order
  for (int i = kTasks - (kBudget - kShare); i < kTasks; ++i) expected.push_back(i);  // the newest, in arrival order
  EXPECT_EQ(started, expected) << "the last task spawned waited behind the whole burst";
  EXPECT_EQ(started.back(), kTasks - 1);

  started.clear();
  loop().run_once(false);  // those in between, next turn
  ASSERT_EQ(started.size(), 300u);
  for (int i = 0; i < 300; ++i) EXPECT_EQ(started[static_cast<std::size_t>(i)], kShare + i);
  EXPECT_TRUE(loop().run_until_idle());
}

// Bursts that never stop: each turn a new one as large as the budget arrives (spawned by a task that yields, so
// they wait for the next turn's new-task part). The newest always go first, and still every task of an earlier burst
// starts within (tasks ahead of it) / kOldestShare turns: nothing starves.
Task<void> spawn_a_burst_every_turn(Loop* loop, int turns, int per_turn, std::vector<int>* started) {
  for (int t = 1; t <= turns; ++t) {
    Status s = co_await yield();
    if (!s) co_return;
    for (int i = 0; i < per_turn; ++i) loop->spawn(record_id(started, t * 100000 + i));
  }
}

TEST_P(LoopPhaseTest, past_the_spawned_budget_the_oldest_still_start_within_a_bounded_number_of_turns_issue_15) {
  constexpr int kFirst = static_cast<int>(Loop::kSpawnedBudget) * 2;  // the first burst: ids 0 .. kFirst-1
  constexpr int kTurns = 40;
  Event go;
  std::vector<int> started;
  loop().spawn(wait_then_spawn_ids(&loop(), &go, 0, kFirst, &started));
  loop().spawn(spawn_a_burst_every_turn(&loop(), kTurns, static_cast<int>(Loop::kSpawnedBudget), &started));
  loop().run_once(false);  // the first waits, the other yields
  go.set();
  const auto first_burst_started = [&] {
    int n = 0;
    for (int id : started) n += id < kFirst ? 1 : 0;
    return n;
  };
  int turns = 0;
  while (first_burst_started() < kFirst && turns < kTurns) {
    loop().run_once(false);
    ++turns;
  }
  EXPECT_EQ(first_burst_started(), kFirst) << "the first burst starved behind the newer ones";
  EXPECT_LE(turns, kFirst / static_cast<int>(Loop::kOldestShare) + 1);
  EXPECT_GT(started.back(), kFirst) << "the newer bursts did not go first";
  EXPECT_TRUE(loop().run_until_idle());
}

Task<void> wait_then_spawn_record(Loop* loop, Event* e, std::vector<int>* order) {
  Status woken = co_await e->wait();
  if (!woken) co_return;
  order->push_back(0);
  loop->spawn(record(order, 1));
}

TEST_P(LoopPhaseTest, spawned_tasks_start_after_the_woken_ones_and_before_the_yielded_ones) {
  std::vector<int> order;
  loop().spawn(yield_then_record(&order, 2));
  Event go;
  loop().spawn(wait_then_spawn_record(&loop(), &go, &order));
  loop().run_once(false);  // the yielder yields, the other waits
  go.set();
  loop().run_once(false);  // woken: records 0 and spawns 1; then the spawned one; then the yielder
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  EXPECT_TRUE(loop().run_until_idle());
}

// ---- phase 4: the least-served first (#15) ----------------------------------------------------------------------

// Reads until the end of input, recording `id` once per read that brought bytes.
Task<void> read_until_eof(Loop& loop, int fd, int id, std::vector<int>* order) {
  IoHandle io;
  io.fd = fd;
  std::vector<char> buffer(64 * 1024);
  for (;;) {
    IoAwaitable read(loop);
    read.kind = OpKind::recv;
    read.io = &io;
    read.buf = buffer.data();
    read.len = static_cast<std::uint32_t>(buffer.size());
    int r = co_await read;
    if (r <= 0) break;
    order->push_back(id);
  }
  loop.backend().detach(io);  // the handle dies with this frame
}

struct SocketPairs {
  explicit SocketPairs(int n) : fds(static_cast<std::size_t>(n)) {
    for (auto& p : fds) EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, p.data()), 0);
  }
  ~SocketPairs() {
    for (auto& p : fds) {
      for (int fd : p) {
        if (fd >= 0) ::close(fd);
      }
    }
  }
  void close_writer(int i) {
    ::close(fds[static_cast<std::size_t>(i)][1]);
    fds[static_cast<std::size_t>(i)][1] = -1;
  }
  std::vector<std::array<int, 2>> fds;
};

// A thousand flooders and one new client whose request arrives in the same wait: the request is read first, and
// the flooders' backlog is served kHeavyBudget per turn behind it, not all in the turn ahead of it.
TEST_P(LoopPhaseTest, a_connection_that_moved_little_runs_before_heavily_served_ones_which_get_a_bounded_share_issue_15) {
  constexpr int kHeavy = 2 * static_cast<int>(Loop::kHeavyBudget) + 44;
  constexpr int kFresh = kHeavy;  // the id of the new client, the last pair
  SocketPairs pairs(kHeavy + 1);
  std::vector<int> order;
  for (int i = 0; i <= kHeavy; ++i) loop().spawn(read_until_eof(loop(), pairs.fds[i][0], i, &order));
  loop().run_once(false);  // every reader armed

  // Each flooder moves a window's worth of heavy service.
  const std::string bulk(Backend::kHeavyBytes, 'f');
  for (int i = 0; i < kHeavy; ++i) {
    ASSERT_EQ(::send(pairs.fds[i][1], bulk.data(), bulk.size(), 0), static_cast<ssize_t>(bulk.size()));
  }
  for (int turn = 0; turn < 200 && order.size() < static_cast<std::size_t>(kHeavy); ++turn) loop().run_once(false);
  ASSERT_EQ(order.size(), static_cast<std::size_t>(kHeavy));
  order.clear();

  // Every flooder sends more, then the new client its request: all of it is there before the next wait.
  for (int i = 0; i < kHeavy; ++i) ASSERT_EQ(::send(pairs.fds[i][1], "more", 4, 0), 4);
  ASSERT_EQ(::send(pairs.fds[kFresh][1], "ping", 4, 0), 4);
  loop().run_once(false);
  ASSERT_FALSE(order.empty());
  EXPECT_EQ(order.front(), kFresh) << "the new client's read waited behind the flooders'";
  EXPECT_EQ(order.size(), 1 + Loop::kHeavyBudget) << "one turn served more heavy connections than the budget";
  for (int turn = 0; turn < 10 && order.size() < static_cast<std::size_t>(kHeavy + 1); ++turn) {
    const std::size_t before = order.size();
    loop().run_once(false);
    EXPECT_LE(order.size() - before, Loop::kHeavyBudget);
  }
  EXPECT_EQ(order.size(), static_cast<std::size_t>(kHeavy + 1)) << "the heavy backlog was not served";

  for (int i = 0; i <= kHeavy; ++i) pairs.close_writer(i);
  EXPECT_TRUE(loop().run_until_idle());
}

// The service window forgets: a connection that flooded and then went quiet for a few windows is light again.
TEST_P(LoopPhaseTest, a_connection_that_went_quiet_for_a_few_service_windows_is_light_again_issue_15) {
  constexpr int kHeavy = static_cast<int>(Loop::kHeavyBudget) + 1;
  SocketPairs pairs(kHeavy + 1);
  std::vector<int> order;
  for (int i = 0; i <= kHeavy; ++i) loop().spawn(read_until_eof(loop(), pairs.fds[i][0], i, &order));
  loop().run_once(false);
  const std::string bulk(Backend::kHeavyBytes, 'f');
  for (int i = 0; i <= kHeavy; ++i) {  // the last one floods too, then goes quiet
    ASSERT_EQ(::send(pairs.fds[i][1], bulk.data(), bulk.size(), 0), static_cast<ssize_t>(bulk.size()));
  }
  for (int turn = 0; turn < 200 && order.size() < static_cast<std::size_t>(kHeavy + 1); ++turn) {
    loop().run_once(false);
  }
  ASSERT_EQ(order.size(), static_cast<std::size_t>(kHeavy + 1));
  order.clear();

  // Three windows later the others flood again (their counts forgot as much, and their new reads make them heavy
  // at once); the quiet one, whose count is down to an eighth, sends one request, last.
  clock_.advance(std::int64_t{3} << Loop::kServiceWindowShift);
  loop().run_once(false);  // the loop reads its clock: a window three later
  for (int i = 0; i < kHeavy; ++i) {
    ASSERT_EQ(::send(pairs.fds[i][1], bulk.data(), bulk.size(), 0), static_cast<ssize_t>(bulk.size()));
  }
  ASSERT_EQ(::send(pairs.fds[kHeavy][1], "ping", 4, 0), 4);
  loop().run_once(false);
  ASSERT_FALSE(order.empty());
  EXPECT_EQ(order.front(), kHeavy) << "the quiet connection's request waited behind the flooders'";
  for (int turn = 0; turn < 200 && order.size() < static_cast<std::size_t>(kHeavy + 1); ++turn) {
    loop().run_once(false);
  }
  EXPECT_EQ(order.size(), static_cast<std::size_t>(kHeavy + 1));

  for (int i = 0; i <= kHeavy; ++i) pairs.close_writer(i);
  EXPECT_TRUE(loop().run_until_idle());
}

// ---- phase 3: posted work and its wake-up ------------------------------------------------------------------------

// The poster waits until the loop is in (or on its way into) a wait that may block, then posts: its first post
// wakes the loop through the kernel. The loop may wake and sleep again before the batch is done (then a later post
// writes again), so that posts land while the loop is awake and need no write at all: how many writes a batch costs
// depends on timing. What may not happen is a post left unseen while the loop sleeps: the loop below would hang.
void post_to_a_sleeping_loop(Loop& loop, int count, int* ran) {
  while (!loop.sleeping()) std::this_thread::yield();
  for (int i = 0; i < count; ++i) loop.post([ran] { ++*ran; });
}

TEST_P(LoopPhaseTest, posts_to_a_sleeping_loop_wake_it_and_none_is_lost) {
  int ran = 0;
  for (int batch = 1; batch <= 20; ++batch) {
    std::thread poster([this, &ran] { post_to_a_sleeping_loop(loop(), 100, &ran); });
    while (ran < 100 * batch) loop().run_once(true);
    poster.join();
  }
  EXPECT_EQ(ran, 2000);
  EXPECT_LE(loop().stats().wake_writes, 2000u);
}

// A wake-up ends one wait and the next wait sleeps again. On epoll the eventfd is registered for input only: its
// read makes it writable, and a writability edge would end the next wait at once for nothing (two waits per
// wake-up instead of one).
TEST_P(LoopPhaseTest, a_wake_up_ends_one_wait_and_the_next_one_sleeps) {
  constexpr int kWakeUps = 20;
  int ran = 0;
  const std::uint64_t waits_before = loop().backend().stats().kernel_waits;
  for (int wake_up = 1; wake_up <= kWakeUps; ++wake_up) {
    std::thread poster([this, &ran] { post_to_a_sleeping_loop(loop(), 1, &ran); });
    while (ran < wake_up) loop().run_once(true);
    poster.join();
  }
  EXPECT_LE(loop().backend().stats().kernel_waits - waits_before, static_cast<std::uint64_t>(kWakeUps) + 1);
}

TEST_P(LoopPhaseTest, posts_while_the_loop_is_awake_cost_no_eventfd_write_and_keep_it_from_sleeping) {
  int ran = 0;
  std::thread poster([this, &ran] {
    for (int i = 0; i < 1000; ++i) loop().post([&ran] { ++ran; });
  });
  poster.join();  // the loop never slept meanwhile: no wake-up was written
  loop().run_once(true);  // would block for ever had the posts been lost
  EXPECT_EQ(ran, 1000);
  EXPECT_EQ(loop().stats().wake_writes, 0u);
}

TEST_P(LoopPhaseTest, stop_from_another_thread_ends_a_blocked_run) {
  std::thread stopper([this] {
    while (!loop().sleeping()) std::this_thread::yield();
    loop().stop();
  });
  loop().run();
  stopper.join();
  EXPECT_LE(loop().stats().wake_writes, 1u);
}

// ---- phase 7: deferred closes ------------------------------------------------------------------------------------

struct Event {
  std::string what;
  std::uint64_t turn;  // Loop::stats().iterations when it happened
};

// A descriptor with a multishot receive armed, closed the way streams close: cancel, and close the descriptor only
// in the phase after the final completion.
struct ArmedReceiver final : Operation, DeferredClose {
  Loop* loop = nullptr;
  IoHandle handle;
  bool closing = false;
  std::vector<Event>* events = nullptr;

  static void on_receive(Operation& op, int res, std::uint32_t flags) noexcept {
    auto& self = static_cast<ArmedReceiver&>(op);
    if (res > 0 && self.buffer != nullptr) buffer_unref(self.buffer);
    if ((flags & kMore) != 0) return;
    self.events->push_back({"final completion", self.loop->stats().iterations});
    if (self.closing) self.loop->defer_close(&self);
  }
  void close() {
    closing = true;
    loop->backend().cancel(*this);
  }
  void close_now() noexcept override {
    events->push_back({"closed", loop->stats().iterations});
    loop->backend().detach(handle);
    ::close(handle.fd);
  }
};

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

TEST_P(LoopPhaseTest, a_descriptor_closed_while_its_multishot_receive_is_armed_closes_after_the_final_completion) {
  std::vector<Event> events;
  ArmedReceiver r;
  r.loop = &loop();
  r.events = &events;
  r.handle.fd = fds_[0];
  fds_[0] = -1;  // the receiver closes it
  r.kind = OpKind::recv_provided;
  r.multishot = true;
  r.io = &r.handle;
  r.on_complete = &ArmedReceiver::on_receive;
  ASSERT_FALSE(loop().backend().submit(r));  // a multishot op never completes inline
  ASSERT_EQ(::write(fds_[1], "hello", 5), 5);
  loop().run_once(false);
  loop().run_once(false);
  ASSERT_TRUE(events.empty()) << events.front().what;  // still armed: only kMore completions so far

  r.close();
  EXPECT_TRUE(is_open(r.handle.fd)) << "closed before the kernel let go of the receive";
  for (int i = 0; i < 5 && events.size() < 2; ++i) loop().run_once(false);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].what, "final completion");
  EXPECT_EQ(events[1].what, "closed");
  // The close comes in phase 7 of the first turn that follows the final completion: on io_uring the completion
  // is reaped in phase 2 of that same turn; epoll cancels at once, inside close(), before the turn begins.
  std::uint64_t expected_turn = GetParam() == BackendKind::uring ? events[0].turn : events[0].turn + 1;
  EXPECT_EQ(events[1].turn, expected_turn);
  EXPECT_EQ(r.state, Operation::State::idle);
}

RINGLET_BOTH_BACKENDS(LoopPhaseTest);

}  // namespace
}  // namespace ringlet
