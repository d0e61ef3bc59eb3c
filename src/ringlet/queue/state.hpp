// state.hpp — the work queue of `ringlet queue` as pure state: jobs, tubes, sessions (one per connection), waiting
// reservers and every counter beanstalkd's stats report. No I/O and no clock of its own: every call that depends
// on time takes `now` (nanoseconds on a monotonic scale), and the owner asks next_deadline() when to call tick().
// Core-local: one QueueState for the whole server, touched only by the shard it lives on (docs/design/queue.md).
//
// The rules are beanstalkd 1.12/1.13's (prot.c, conn.c), restated here because they decide every reply:
// - A job is ready, delayed (until its deadline), reserved (by one session, until its TTR deadline) or buried.
//   Ready jobs leave a tube by priority (0 first), then by id (FIFO); delayed jobs by deadline, then id; buried
//   jobs in the order they were buried. Priorities below 1024 count as "urgent".
// - put: TTR under one second becomes one second. A delay puts the job in the delayed heap.
// - reserve: a ready job from a watched, unpaused tube (the best over all watched tubes) is reserved at once.
//   Else, when one of the session's reserved jobs is within the safety margin (1 s) of its TTR deadline, the reply
//   is DEADLINE_SOON. Else the session waits: reserve-with-timeout 0 answers TIMED_OUT at once; otherwise the
//   waiter is served in arrival order by the tubes it watches, or ends with DEADLINE_SOON when a reserved job
//   enters the margin, or TIMED_OUT at its timeout. (WaitListener::wait_ended tells the owner.)
// - A reserved job whose TTR passes goes back to ready (job-timeouts, its timeouts counter). A session that closes
//   returns every job it holds to ready.
// - delete: a job reserved by this session, or one that is ready, delayed or buried (not another's reservation).
//   release, bury and touch: only a job reserved by this session. reserve-job: any job not reserved.
// - kick N: buried jobs of the used tube if it has any, else delayed ones. kick-job: one buried or delayed job.
// - pause-tube: no job of the tube is handed to a reserver until the pause ends (delay 0 pauses for 1 s so that
//   waiters wake up). Peeks ignore pauses.
// - A tube exists while something refers to it: a session using or watching it, or a job in it; "default" always.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ringlet/queue/heap.hpp"

namespace ringlet::queue {

inline constexpr std::int64_t kSecondNs = 1'000'000'000;
inline constexpr std::int64_t kSafetyMarginNs = kSecondNs;  // DEADLINE_SOON: a reservation this close to its end
inline constexpr std::uint32_t kUrgentThreshold = 1024;    // priorities below are "urgent"
inline constexpr std::string_view kDefaultTube = "default";
inline constexpr std::int64_t kNoDeadline = INT64_MAX;

enum class JobState : std::uint8_t { ready, delayed, reserved, buried };
std::string_view job_state_name(JobState s) noexcept;

struct Tube;
struct Session;

struct Job {
  std::uint64_t id = 0;
  std::uint32_t priority = 0;
  JobState state = JobState::ready;
  std::int64_t delay_ns = 0;     // the delay of its last put or release
  std::int64_t ttr_ns = kSecondNs;
  std::int64_t created_ns = 0;
  std::int64_t deadline_ns = 0;  // delayed: when it becomes ready; reserved: when its TTR runs out
  Tube* tube = nullptr;
  Session* reserver = nullptr;
  std::uint32_t reserves = 0, timeouts = 0, releases = 0, buries = 0, kicks = 0;
  std::string body;  // without the CRLF; owned here (malloc memory: any shard may read it while this one waits)

  // Where the job sits: its tube's ready or delayed heap, the global delayed heap, or a list (buried / reserved).
  std::size_t tube_pos = static_cast<std::size_t>(-1);
  std::size_t delay_pos = static_cast<std::size_t>(-1);
  Job* prev = nullptr;
  Job* next = nullptr;

  // Durability bookkeeping, owned by the binlog (queue/binlog.hpp).
  std::uint64_t segment = 0;       // the segment holding its latest full record (0: none)
  std::uint32_t record_bytes = 0;  // that record's size
};

// A doubly linked FIFO of jobs through Job::prev/next (a job is on at most one: buried or a session's reserved).
class JobList {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  std::size_t size() const noexcept { return size_; }
  Job* front() const noexcept { return head_; }
  void push_back(Job& j) noexcept;
  void remove(Job& j) noexcept;

 private:
  Job* head_ = nullptr;
  Job* tail_ = nullptr;
  std::size_t size_ = 0;
};

struct ReadyOrder {
  bool operator()(const Job& a, const Job& b) const noexcept {
    return a.priority != b.priority ? a.priority < b.priority : a.id < b.id;
  }
};
struct DeadlineOrder {
  bool operator()(const Job& a, const Job& b) const noexcept {
    return a.deadline_ns != b.deadline_ns ? a.deadline_ns < b.deadline_ns : a.id < b.id;
  }
};
using ReadyHeap = IndexedHeap<Job, ReadyOrder, &Job::tube_pos>;
using TubeDelayHeap = IndexedHeap<Job, DeadlineOrder, &Job::tube_pos>;
using DelayHeap = IndexedHeap<Job, DeadlineOrder, &Job::delay_pos>;

struct Tube {
  std::string name;
  ReadyHeap ready;
  TubeDelayHeap delayed;
  JobList buried;
  std::uint64_t urgent = 0;
  std::uint64_t reserved = 0;
  std::uint64_t total_jobs = 0;
  std::uint64_t deletes = 0;
  std::uint64_t pauses = 0;
  std::int64_t pause_ns = 0;      // 0: not paused
  std::int64_t unpause_at = 0;
  std::uint32_t using_count = 0;
  std::uint32_t watching_count = 0;
  std::uint32_t waiting_count = 0;
  // Sessions waiting on this tube, in arrival order, as (session id, wait number): entries of waits that already
  // ended stay until they reach the front or the deque is pruned, so ending a wait never searches here.
  std::deque<std::pair<std::uint64_t, std::uint64_t>> waiters;

  std::uint64_t jobs() const noexcept { return ready.size() + delayed.size() + reserved + buried.size(); }
};

// How a wait begun by reserve ends (told to the WaitListener).
enum class WaitEnd : std::uint8_t { reserved, deadline_soon, timed_out };

struct Session {
  std::uint64_t id = 0;
  Tube* used = nullptr;
  std::vector<Tube*> watched;  // in watch order
  JobList reserved;
  bool producer = false;  // has put a job (stats: current-producers)
  bool worker = false;    // has reserved (stats: current-workers)
  bool waiting = false;
  std::uint64_t wait_number = 0;        // increases with each wait
  std::int64_t wait_deadline = kNoDeadline;
  std::int64_t tick_at = kNoDeadline;   // when tick() must look at this session
  std::size_t tick_pos = static_cast<std::size_t>(-1);
  void* owner = nullptr;                // the server's connection state
};

// Told when a waiting session's reserve ends (from tick() or from a call that made a job ready). `job` is the
// reserved job for WaitEnd::reserved, else nullptr. Must not call back into the QueueState.
class WaitListener {
 public:
  virtual void wait_ended(Session& session, WaitEnd end, Job* job) = 0;

 protected:
  ~WaitListener() = default;
};

// Told about every change that must outlive a restart (the binlog). Called after the state changed.
class Journal {
 public:
  virtual void job_written(Job& job) = 0;  // put, and any change of state, priority or delay
  virtual void job_deleted(Job& job) = 0;  // before the job is freed

 protected:
  ~Journal() = default;
};

struct QueueCounters {
  std::uint64_t timeouts = 0;    // job-timeouts
  std::uint64_t total_jobs = 0;  // total-jobs
  std::uint64_t urgent = 0;
  std::uint64_t reserved = 0;
  std::uint64_t buried = 0;
  std::uint64_t delayed = 0;
  std::uint64_t ready = 0;
  std::uint64_t waiting = 0;
  std::uint64_t sessions = 0;
  std::uint64_t total_sessions = 0;
  std::uint64_t producers = 0;
  std::uint64_t workers = 0;
};

class QueueState {
 public:
  explicit QueueState(WaitListener* listener = nullptr, Journal* journal = nullptr);
  ~QueueState();
  QueueState(const QueueState&) = delete;
  QueueState& operator=(const QueueState&) = delete;

  void set_listener(WaitListener* l) noexcept { listener_ = l; }
  void set_journal(Journal* j) noexcept { journal_ = j; }

  // ---- sessions ----
  Session& open_session();
  // Returns the session's reserved jobs to ready and forgets it.
  void close_session(Session& s, std::int64_t now);

  // ---- commands (each returns what its reply needs) ----
  Job& put(Session& s, std::uint32_t priority, std::uint32_t delay_s, std::uint32_t ttr_s, std::string body,
           std::int64_t now);
  void use(Session& s, std::string_view tube);
  std::size_t watch(Session& s, std::string_view tube);
  // The number of tubes still watched, or -1: NOT_IGNORED (it is the last one).
  long ignore(Session& s, std::string_view tube);

  struct Reserve {
    enum Status : std::uint8_t { reserved, deadline_soon, timed_out, waiting } status;
    Job* job = nullptr;
  };
  // timeout_s < 0: wait without limit. A `waiting` result ends later through the WaitListener.
  Reserve reserve(Session& s, std::int64_t timeout_s, std::int64_t now);
  // Ends a wait the session gave up (its connection went away). No-op when not waiting.
  void stop_waiting(Session& s);
  Job* reserve_job(Session& s, std::uint64_t id, std::int64_t now);
  bool delete_job(Session& s, std::uint64_t id);
  bool release(Session& s, std::uint64_t id, std::uint32_t priority, std::uint32_t delay_s, std::int64_t now);
  bool bury(Session& s, std::uint64_t id, std::uint32_t priority);
  bool touch(Session& s, std::uint64_t id, std::int64_t now);
  Job* peek(std::uint64_t id) const;
  Job* peek_ready(const Session& s) const { return s.used->ready.top(); }
  Job* peek_delayed(const Session& s) const { return s.used->delayed.top(); }
  Job* peek_buried(const Session& s) const { return s.used->buried.front(); }
  std::uint32_t kick(Session& s, std::uint32_t bound, std::int64_t now);
  bool kick_job(std::uint64_t id, std::int64_t now);
  bool pause_tube(std::string_view tube, std::uint32_t delay_s, std::int64_t now);

  // ---- time ----
  // Makes due delayed jobs ready, ends pauses, expires TTRs and waits. Call when now >= next_deadline().
  void tick(std::int64_t now);
  // The earliest moment tick() has work, or kNoDeadline.
  std::int64_t next_deadline() const;

  // ---- restoring from a binlog ----
  // Re-creates a job exactly as recorded (state ready, delayed or buried; reserved comes back ready). Replaces a
  // job with the same id. Ids handed out later continue above the highest id seen.
  Job& restore(std::uint64_t id, std::string_view tube, std::uint32_t priority, JobState state, std::int64_t delay_ns,
               std::int64_t ttr_ns, std::int64_t created_ns, std::int64_t deadline_ns, std::string body);
  void forget(std::uint64_t id);  // a recorded delete
  void set_next_id(std::uint64_t next) noexcept {
    if (next > next_id_) next_id_ = next;
  }
  std::uint64_t next_id() const noexcept { return next_id_; }
  // A put refused after its line was read (EXPECTED_CRLF, DRAINING) still uses up an id, as in beanstalkd, which
  // creates the job before it reads the body.
  void skip_id() noexcept { ++next_id_; }
  // After restores: hand ready jobs to waiters (none at start-up, but keeps the invariant).
  void settle(std::int64_t now) { process_queue(now); }

  // ---- inspection ----
  Tube* find_tube(std::string_view name) const;
  const std::vector<Tube*>& tubes() const noexcept { return tube_order_; }
  const QueueCounters& counters() const noexcept { return counters_; }
  std::size_t job_count() const noexcept { return jobs_.size(); }
  template <class F>
  void for_each_job(F&& f) const {
    for (const auto& [id, job] : jobs_) f(*job);
  }
  // Whole seconds, rounded toward zero (beanstalkd's stats arithmetic).
  static std::int64_t seconds(std::int64_t ns) noexcept { return ns / kSecondNs; }

 private:
  Tube& tube_for(std::string_view name);
  void release_tube_ref(Tube* t);
  void maybe_remove(Tube* t);
  Job* find(std::uint64_t id) const;
  void make_ready(Job& j);
  void make_delayed(Job& j, std::int64_t deadline);
  void make_buried(Job& j);
  void make_reserved(Session& s, Job& j, std::int64_t now);
  // Takes j out of whatever heap or list holds it (its state then says where it was).
  void detach(Job& j);
  void free_job(Job& j);
  Job* best_ready(const Session& s, std::int64_t now);
  bool deadline_soon(const Session& s, std::int64_t now) const;
  void start_waiting(Session& s, std::int64_t deadline);
  void end_wait(Session& s);
  Session* take_waiter(Tube& t);
  void process_queue(std::int64_t now);
  void resched(Session& s);
  void session_timeout(Session& s, std::int64_t now);
  void written(Job& j) {
    if (journal_ != nullptr) journal_->job_written(j);
  }

  struct TickOrder {
    bool operator()(const Session& a, const Session& b) const noexcept {
      return a.tick_at != b.tick_at ? a.tick_at < b.tick_at : a.id < b.id;
    }
  };

  WaitListener* listener_;
  Journal* journal_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Job>> jobs_;
  std::map<std::string, std::unique_ptr<Tube>, std::less<>> tubes_;
  std::vector<Tube*> tube_order_;  // creation order (list-tubes)
  std::unordered_map<std::uint64_t, std::unique_ptr<Session>> sessions_;
  DelayHeap delayed_;  // every delayed job, by deadline
  IndexedHeap<Session, TickOrder, &Session::tick_pos> ticks_;
  Tube* default_tube_ = nullptr;
  std::uint64_t next_id_ = 1;
  std::uint64_t next_session_ = 1;
  std::size_t paused_tubes_ = 0;
  QueueCounters counters_;
};

}  // namespace ringlet::queue
