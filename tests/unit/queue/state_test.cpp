// Tests of the queue state (src/ringlet/queue/state.hpp) with time as plain numbers: every deadline is exact.
#include "ringlet/queue/state.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ringlet/queue/stats.hpp"

namespace ringlet::queue {
namespace {

constexpr std::int64_t s = kSecondNs;

struct Ended {
  Session* session;
  WaitEnd end;
  std::uint64_t job;
};

class Recorder final : public WaitListener {
 public:
  void wait_ended(Session& session, WaitEnd end, Job* job) override {
    ended.push_back({&session, end, job != nullptr ? job->id : 0});
  }
  std::vector<Ended> ended;
};

class QueueStateTest : public ::testing::Test {
 protected:
  Recorder recorder;
  QueueState q{&recorder};
  std::int64_t now = 1000 * s;

  std::uint64_t put(Session& c, std::uint32_t pri, std::uint32_t delay = 0, std::uint32_t ttr = 60,
                    std::string body = "x") {
    return q.put(c, pri, delay, ttr, std::move(body), now).id;
  }
  std::uint64_t reserve_now(Session& c) {
    auto r = q.reserve(c, 0, now);
    return r.status == QueueState::Reserve::reserved ? r.job->id : 0;
  }
};

TEST_F(QueueStateTest, ready_jobs_leave_by_priority_then_in_put_order) {
  Session& c = q.open_session();
  std::uint64_t a = put(c, 10);
  std::uint64_t b = put(c, 5);
  std::uint64_t d = put(c, 10);
  std::uint64_t e = put(c, 5);
  EXPECT_EQ(reserve_now(c), b);
  EXPECT_EQ(reserve_now(c), e);
  EXPECT_EQ(reserve_now(c), a);
  EXPECT_EQ(reserve_now(c), d);
  EXPECT_EQ(q.reserve(c, 0, now).status, QueueState::Reserve::timed_out);
}

TEST_F(QueueStateTest, a_delayed_job_becomes_ready_at_its_deadline_and_not_before) {
  Session& c = q.open_session();
  std::uint64_t id = put(c, 0, 5);
  EXPECT_EQ(q.peek(id)->state, JobState::delayed);
  EXPECT_EQ(q.next_deadline(), now + 5 * s);
  now += 5 * s - 1;
  q.tick(now);
  EXPECT_EQ(reserve_now(c), 0u);
  now += 1;
  q.tick(now);
  EXPECT_EQ(reserve_now(c), id);
}

TEST_F(QueueStateTest, a_reservation_past_its_ttr_returns_the_job_to_ready_and_counts_a_timeout) {
  Session& worker = q.open_session();
  Session& other = q.open_session();
  std::uint64_t id = put(worker, 0, 0, 2);
  EXPECT_EQ(reserve_now(worker), id);
  EXPECT_EQ(q.next_deadline(), now + 2 * s);
  now += 2 * s;
  q.tick(now);
  EXPECT_EQ(q.peek(id)->state, JobState::ready);
  EXPECT_EQ(q.peek(id)->timeouts, 1u);
  EXPECT_EQ(q.counters().timeouts, 1u);
  EXPECT_FALSE(q.delete_job(other, id + 100));
  EXPECT_EQ(reserve_now(other), id);
  EXPECT_FALSE(q.release(worker, id, 0, 0, now)) << "the first worker lost its reservation";
}

TEST_F(QueueStateTest, ttr_zero_is_one_second) {
  Session& c = q.open_session();
  std::uint64_t id = put(c, 0, 0, 0);
  EXPECT_EQ(q.peek(id)->ttr_ns, s);
}

TEST_F(QueueStateTest, reserve_answers_deadline_soon_inside_the_safety_margin_when_nothing_is_ready) {
  Session& c = q.open_session();
  put(c, 0, 0, 3);
  reserve_now(c);
  now += 2 * s;  // one second left: inside the margin
  auto r = q.reserve(c, -1, now);
  EXPECT_EQ(r.status, QueueState::Reserve::deadline_soon);
  std::uint64_t ready = put(c, 0);
  EXPECT_EQ(reserve_now(c), ready) << "a ready job wins over DEADLINE_SOON";
}

TEST_F(QueueStateTest, a_waiting_reserve_ends_with_deadline_soon_when_a_reservation_enters_the_margin) {
  Session& c = q.open_session();
  put(c, 0, 0, 10);
  reserve_now(c);
  EXPECT_EQ(q.reserve(c, -1, now).status, QueueState::Reserve::waiting);
  EXPECT_EQ(q.counters().waiting, 1u);
  EXPECT_EQ(q.next_deadline(), now + 9 * s);
  now += 9 * s;
  q.tick(now);
  ASSERT_EQ(recorder.ended.size(), 1u);
  EXPECT_EQ(recorder.ended[0].end, WaitEnd::deadline_soon);
  EXPECT_EQ(q.counters().waiting, 0u);
}

TEST_F(QueueStateTest, reserve_with_timeout_times_out_at_its_deadline) {
  Session& c = q.open_session();
  EXPECT_EQ(q.reserve(c, 0, now).status, QueueState::Reserve::timed_out);
  EXPECT_EQ(q.reserve(c, 3, now).status, QueueState::Reserve::waiting);
  now += 3 * s - 1;
  q.tick(now);
  EXPECT_TRUE(recorder.ended.empty());
  now += 1;
  q.tick(now);
  ASSERT_EQ(recorder.ended.size(), 1u);
  EXPECT_EQ(recorder.ended[0].end, WaitEnd::timed_out);
}

TEST_F(QueueStateTest, waiters_are_served_in_arrival_order_by_the_tubes_they_watch) {
  Session& producer = q.open_session();
  Session& w1 = q.open_session();
  Session& w2 = q.open_session();
  Session& w3 = q.open_session();
  q.watch(w3, "other");
  q.ignore(w3, "default");
  ASSERT_EQ(q.reserve(w1, -1, now).status, QueueState::Reserve::waiting);
  ASSERT_EQ(q.reserve(w3, -1, now).status, QueueState::Reserve::waiting);
  ASSERT_EQ(q.reserve(w2, -1, now).status, QueueState::Reserve::waiting);
  std::uint64_t a = put(producer, 0);
  std::uint64_t b = put(producer, 0);
  ASSERT_EQ(recorder.ended.size(), 2u);
  EXPECT_EQ(recorder.ended[0].session, &w1);
  EXPECT_EQ(recorder.ended[0].job, a);
  EXPECT_EQ(recorder.ended[1].session, &w2);
  EXPECT_EQ(recorder.ended[1].job, b);
  q.use(producer, "other");
  std::uint64_t c = put(producer, 0);
  ASSERT_EQ(recorder.ended.size(), 3u);
  EXPECT_EQ(recorder.ended[2].session, &w3);
  EXPECT_EQ(recorder.ended[2].job, c);
}

TEST_F(QueueStateTest, a_waiter_that_gives_up_is_skipped) {
  Session& producer = q.open_session();
  Session& w1 = q.open_session();
  Session& w2 = q.open_session();
  q.reserve(w1, -1, now);
  q.reserve(w2, -1, now);
  q.stop_waiting(w1);
  put(producer, 0);
  ASSERT_EQ(recorder.ended.size(), 1u);
  EXPECT_EQ(recorder.ended[0].session, &w2);
}

TEST_F(QueueStateTest, a_paused_tube_hands_out_nothing_until_the_pause_ends) {
  Session& c = q.open_session();
  Session& w = q.open_session();
  EXPECT_FALSE(q.pause_tube("nope", 5, now));
  ASSERT_TRUE(q.pause_tube("default", 5, now));
  std::uint64_t id = put(c, 0);
  EXPECT_EQ(reserve_now(w), 0u);
  EXPECT_EQ(q.peek_ready(c)->id, id) << "peeks ignore pauses";
  EXPECT_EQ(q.reserve(w, -1, now).status, QueueState::Reserve::waiting);
  EXPECT_EQ(q.next_deadline(), now + 5 * s);
  now += 5 * s;
  q.tick(now);
  ASSERT_EQ(recorder.ended.size(), 1u);
  EXPECT_EQ(recorder.ended[0].job, id);
  std::string yaml;
  write_tube_stats(yaml, *q.find_tube("default"), now);
  EXPECT_NE(yaml.find("cmd-pause-tube: 1\n"), std::string::npos);
  EXPECT_NE(yaml.find("pause-time-left: 0\n"), std::string::npos);
}

TEST_F(QueueStateTest, kick_takes_buried_jobs_first_then_delayed_ones) {
  Session& c = q.open_session();
  std::uint64_t d1 = put(c, 0, 100);
  std::uint64_t r1 = put(c, 0);
  std::uint64_t r2 = put(c, 0);
  reserve_now(c);
  reserve_now(c);
  ASSERT_TRUE(q.bury(c, r1, 7));
  ASSERT_TRUE(q.bury(c, r2, 7));
  EXPECT_EQ(q.peek_buried(c)->id, r1);
  EXPECT_EQ(q.kick(c, 1, now), 1u);
  EXPECT_EQ(q.peek(r1)->state, JobState::ready);
  EXPECT_EQ(q.peek(r1)->kicks, 1u);
  EXPECT_EQ(q.kick(c, 10, now), 1u) << "only r2 was still buried";
  EXPECT_EQ(q.kick(c, 10, now), 1u);
  EXPECT_EQ(q.peek(d1)->state, JobState::ready);
  EXPECT_EQ(q.kick(c, 10, now), 0u);
  EXPECT_FALSE(q.kick_job(d1, now)) << "kick-job takes only buried or delayed jobs";
}

TEST_F(QueueStateTest, delete_takes_own_reservations_and_unreserved_jobs_only) {
  Session& a = q.open_session();
  Session& b = q.open_session();
  std::uint64_t id = put(a, 0);
  reserve_now(a);
  EXPECT_FALSE(q.delete_job(b, id));
  EXPECT_TRUE(q.delete_job(a, id));
  EXPECT_EQ(q.peek(id), nullptr);
  std::uint64_t delayed = put(a, 0, 10);
  EXPECT_TRUE(q.delete_job(b, delayed));
  EXPECT_EQ(q.next_deadline(), kNoDeadline);
}

TEST_F(QueueStateTest, closing_a_session_returns_its_reservations) {
  Session& a = q.open_session();
  std::uint64_t id = put(a, 0);
  reserve_now(a);
  EXPECT_EQ(q.counters().reserved, 1u);
  q.close_session(a, now);
  EXPECT_EQ(q.peek(id)->state, JobState::ready);
  EXPECT_EQ(q.counters().reserved, 0u);
  EXPECT_EQ(q.counters().sessions, 0u);
}

TEST_F(QueueStateTest, tubes_exist_while_used_watched_or_holding_jobs) {
  Session& a = q.open_session();
  q.use(a, "t1");
  EXPECT_NE(q.find_tube("t1"), nullptr);
  std::uint64_t id = put(a, 0);
  q.use(a, "default");
  EXPECT_NE(q.find_tube("t1"), nullptr) << "it holds a job";
  q.watch(a, "t1");
  reserve_now(a);
  EXPECT_TRUE(q.delete_job(a, id));
  EXPECT_NE(q.find_tube("t1"), nullptr) << "still watched";
  EXPECT_EQ(q.ignore(a, "t1"), 1);
  EXPECT_EQ(q.find_tube("t1"), nullptr);
  EXPECT_EQ(q.ignore(a, "default"), -1) << "NOT_IGNORED: the last watched tube";
  q.close_session(a, now);
  EXPECT_NE(q.find_tube("default"), nullptr);
}

TEST_F(QueueStateTest, touch_restarts_the_ttr) {
  Session& c = q.open_session();
  std::uint64_t id = put(c, 0, 0, 10);
  reserve_now(c);
  now += 8 * s;
  EXPECT_TRUE(q.touch(c, id, now));
  now += 8 * s;
  q.tick(now);
  EXPECT_EQ(q.peek(id)->state, JobState::reserved);
  now += 2 * s;
  q.tick(now);
  EXPECT_EQ(q.peek(id)->state, JobState::ready);
}

TEST_F(QueueStateTest, release_with_a_delay_and_reserve_job) {
  Session& c = q.open_session();
  std::uint64_t id = put(c, 3);
  reserve_now(c);
  ASSERT_TRUE(q.release(c, id, 9, 4, now));
  Job* j = q.peek(id);
  EXPECT_EQ(j->state, JobState::delayed);
  EXPECT_EQ(j->priority, 9u);
  EXPECT_EQ(j->releases, 1u);
  ASSERT_EQ(q.reserve_job(c, id, now), j) << "reserve-job takes a delayed job";
  EXPECT_EQ(q.reserve_job(c, id, now), nullptr) << "but not a reserved one";
}

TEST_F(QueueStateTest, stats_job_reports_beanstalkd_fields) {
  Session& c = q.open_session();
  std::uint64_t id = put(c, 2000, 30, 120);
  now += 10 * s;
  std::string yaml;
  write_job_stats(yaml, *q.peek(id), now, 0);
  EXPECT_EQ(yaml,
            "---\nid: 1\ntube: \"default\"\nstate: delayed\npri: 2000\nage: 10\ndelay: 30\nttr: 120\ntime-left: 20\n"
            "file: 0\nreserves: 0\ntimeouts: 0\nreleases: 0\nburies: 0\nkicks: 0\n");
}

TEST_F(QueueStateTest, restored_jobs_keep_their_state_and_ids_continue) {
  QueueState r;
  r.restore(7, "t", 5, JobState::buried, 0, 60 * s, now, 0, "b");
  r.restore(9, "t", 5, JobState::reserved, 0, 60 * s, now, 0, "c");
  r.restore(8, "u", 5, JobState::delayed, 3 * s, 60 * s, now, now + 3 * s, "d");
  EXPECT_EQ(r.peek(7)->state, JobState::buried);
  EXPECT_EQ(r.peek(9)->state, JobState::ready);
  EXPECT_EQ(r.peek(8)->state, JobState::delayed);
  r.forget(7);
  EXPECT_EQ(r.peek(7), nullptr);
  Session& c = r.open_session();
  EXPECT_EQ(r.put(c, 0, 0, 1, "e", now).id, 10u);
}

}  // namespace
}  // namespace ringlet::queue
