// state.cpp — the queue's rules (see state.hpp). Every state change goes through make_ready / make_delayed /
// make_buried / make_reserved and detach, which keep the per-tube and global counters in step.
#include "ringlet/queue/state.hpp"

#include <algorithm>

#include "ringlet/base/fatal.hpp"

namespace ringlet::queue {

std::string_view job_state_name(JobState s) noexcept {
  switch (s) {
    case JobState::ready: return "ready";
    case JobState::delayed: return "delayed";
    case JobState::reserved: return "reserved";
    case JobState::buried: return "buried";
  }
  return "invalid";
}

void JobList::push_back(Job& j) noexcept {
  j.prev = tail_;
  j.next = nullptr;
  if (tail_ != nullptr) {
    tail_->next = &j;
  } else {
    head_ = &j;
  }
  tail_ = &j;
  ++size_;
}

void JobList::remove(Job& j) noexcept {
  if (j.prev != nullptr) {
    j.prev->next = j.next;
  } else {
    head_ = j.next;
  }
  if (j.next != nullptr) {
    j.next->prev = j.prev;
  } else {
    tail_ = j.prev;
  }
  j.prev = j.next = nullptr;
  --size_;
}

QueueState::QueueState(WaitListener* listener, Journal* journal) : listener_(listener), journal_(journal) {
  default_tube_ = &tube_for(kDefaultTube);
}

QueueState::~QueueState() = default;

// ---- tubes ----------------------------------------------------------------------------------------------------

Tube& QueueState::tube_for(std::string_view name) {
  auto it = tubes_.find(name);
  if (it != tubes_.end()) return *it->second;
  auto tube = std::make_unique<Tube>();
  tube->name = std::string(name);
  Tube& t = *tube;
  tubes_.emplace(t.name, std::move(tube));
  tube_order_.push_back(&t);
  return t;
}

Tube* QueueState::find_tube(std::string_view name) const {
  auto it = tubes_.find(name);
  return it == tubes_.end() ? nullptr : it->second.get();
}

void QueueState::maybe_remove(Tube* t) {
  if (t == default_tube_ || t->using_count > 0 || t->watching_count > 0 || t->jobs() > 0) return;
  if (t->pause_ns > 0) --paused_tubes_;
  tube_order_.erase(std::find(tube_order_.begin(), tube_order_.end(), t));
  tubes_.erase(tubes_.find(std::string_view(t->name)));
}

// ---- jobs ------------------------------------------------------------------------------------------------------

Job* QueueState::find(std::uint64_t id) const {
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : it->second.get();
}

Job* QueueState::peek(std::uint64_t id) const { return find(id); }

void QueueState::make_ready(Job& j) {
  j.state = JobState::ready;
  j.reserver = nullptr;
  j.tube->ready.push(j);
  ++counters_.ready;
  if (j.priority < kUrgentThreshold) {
    ++counters_.urgent;
    ++j.tube->urgent;
  }
}

void QueueState::make_delayed(Job& j, std::int64_t deadline) {
  j.state = JobState::delayed;
  j.reserver = nullptr;
  j.deadline_ns = deadline;
  j.tube->delayed.push(j);
  delayed_.push(j);
  ++counters_.delayed;
}

void QueueState::make_buried(Job& j) {
  j.state = JobState::buried;
  j.reserver = nullptr;
  j.tube->buried.push_back(j);
  ++counters_.buried;
}

void QueueState::make_reserved(Session& s, Job& j, std::int64_t now) {
  j.state = JobState::reserved;
  j.reserver = &s;
  j.deadline_ns = now + j.ttr_ns;
  ++j.reserves;
  ++j.tube->reserved;
  ++counters_.reserved;
  s.reserved.push_back(j);
  resched(s);
}

void QueueState::detach(Job& j) {
  switch (j.state) {
    case JobState::ready:
      j.tube->ready.remove(j);
      --counters_.ready;
      if (j.priority < kUrgentThreshold) {
        --counters_.urgent;
        --j.tube->urgent;
      }
      break;
    case JobState::delayed:
      j.tube->delayed.remove(j);
      delayed_.remove(j);
      --counters_.delayed;
      break;
    case JobState::buried:
      j.tube->buried.remove(j);
      --counters_.buried;
      break;
    case JobState::reserved:
      j.reserver->reserved.remove(j);
      --j.tube->reserved;
      --counters_.reserved;
      j.reserver = nullptr;
      break;
  }
}

void QueueState::free_job(Job& j) {
  Tube* t = j.tube;
  jobs_.erase(j.id);  // frees j
  maybe_remove(t);
}

// ---- sessions -------------------------------------------------------------------------------------------------

Session& QueueState::open_session() {
  auto s = std::make_unique<Session>();
  s->id = next_session_++;
  s->used = default_tube_;
  s->watched.push_back(default_tube_);
  ++default_tube_->using_count;
  ++default_tube_->watching_count;
  ++counters_.sessions;
  ++counters_.total_sessions;
  Session& ref = *s;
  sessions_.emplace(ref.id, std::move(s));
  return ref;
}

void QueueState::close_session(Session& s, std::int64_t now) {
  end_wait(s);
  if (ticks_.contains(s)) ticks_.remove(s);
  while (Job* j = s.reserved.front()) {
    detach(*j);
    make_ready(*j);
  }
  if (s.producer) --counters_.producers;
  if (s.worker) --counters_.workers;
  --counters_.sessions;
  Tube* used = s.used;
  --used->using_count;
  std::vector<Tube*> watched = std::move(s.watched);
  for (Tube* t : watched) --t->watching_count;
  sessions_.erase(s.id);  // frees s
  maybe_remove(used);
  for (Tube* t : watched) {
    if (t != used) maybe_remove(t);
  }
  process_queue(now);
}

// ---- commands -------------------------------------------------------------------------------------------------

Job& QueueState::put(Session& s, std::uint32_t priority, std::uint32_t delay_s, std::uint32_t ttr_s,
                     std::string body, std::int64_t now) {
  auto job = std::make_unique<Job>();
  Job& j = *job;
  j.id = next_id_++;
  j.priority = priority;
  j.delay_ns = std::int64_t{delay_s} * kSecondNs;
  j.ttr_ns = std::max<std::int64_t>(std::int64_t{ttr_s} * kSecondNs, kSecondNs);  // ttr 0 -> 1 s, as beanstalkd
  j.created_ns = now;
  j.tube = s.used;
  j.body = std::move(body);
  jobs_.emplace(j.id, std::move(job));
  if (!s.producer) {
    s.producer = true;
    ++counters_.producers;
  }
  ++counters_.total_jobs;
  ++j.tube->total_jobs;
  if (delay_s > 0) {
    make_delayed(j, now + j.delay_ns);
  } else {
    make_ready(j);
  }
  written(j);
  process_queue(now);
  return j;
}

void QueueState::use(Session& s, std::string_view name) {
  Tube& t = tube_for(name);
  if (&t == s.used) return;
  Tube* old = s.used;
  --old->using_count;
  s.used = &t;
  ++t.using_count;
  maybe_remove(old);
}

std::size_t QueueState::watch(Session& s, std::string_view name) {
  Tube& t = tube_for(name);
  if (std::find(s.watched.begin(), s.watched.end(), &t) == s.watched.end()) {
    s.watched.push_back(&t);
    ++t.watching_count;
  }
  return s.watched.size();
}

long QueueState::ignore(Session& s, std::string_view name) {
  auto it = std::find_if(s.watched.begin(), s.watched.end(), [&](Tube* t) { return t->name == name; });
  if (it == s.watched.end()) return static_cast<long>(s.watched.size());
  if (s.watched.size() < 2) return -1;
  Tube* t = *it;
  s.watched.erase(it);
  --t->watching_count;
  maybe_remove(t);
  return static_cast<long>(s.watched.size());
}

Job* QueueState::best_ready(const Session& s, std::int64_t now) {
  Job* best = nullptr;
  for (Tube* t : s.watched) {
    if (t->pause_ns > 0) {
      if (t->unpause_at > now) continue;
      t->pause_ns = 0;
      --paused_tubes_;
    }
    Job* candidate = t->ready.top();
    if (candidate != nullptr && (best == nullptr || ReadyOrder{}(*candidate, *best))) best = candidate;
  }
  return best;
}

bool QueueState::deadline_soon(const Session& s, std::int64_t now) const {
  for (const Job* j = s.reserved.front(); j != nullptr; j = j->next) {
    if (now >= j->deadline_ns - kSafetyMarginNs) return true;
  }
  return false;
}

QueueState::Reserve QueueState::reserve(Session& s, std::int64_t timeout_s, std::int64_t now) {
  if (!s.worker) {
    s.worker = true;
    ++counters_.workers;
  }
  if (Job* j = best_ready(s, now)) {
    detach(*j);
    make_reserved(s, *j, now);
    return {Reserve::reserved, j};
  }
  if (deadline_soon(s, now)) return {Reserve::deadline_soon, nullptr};
  if (timeout_s == 0) return {Reserve::timed_out, nullptr};
  start_waiting(s, timeout_s < 0 ? kNoDeadline : now + timeout_s * kSecondNs);
  resched(s);
  return {Reserve::waiting, nullptr};
}

void QueueState::start_waiting(Session& s, std::int64_t deadline) {
  s.waiting = true;
  ++s.wait_number;
  s.wait_deadline = deadline;
  ++counters_.waiting;
  for (Tube* t : s.watched) {
    ++t->waiting_count;
    // Prune entries of ended waits once they outnumber the live ones.
    if (t->waiters.size() > 2 * std::size_t{t->waiting_count} + 16) {
      std::erase_if(t->waiters, [this](const auto& e) {
        auto it = sessions_.find(e.first);
        return it == sessions_.end() || !it->second->waiting || it->second->wait_number != e.second;
      });
    }
    t->waiters.emplace_back(s.id, s.wait_number);
  }
}

void QueueState::end_wait(Session& s) {
  if (!s.waiting) return;
  s.waiting = false;
  s.wait_deadline = kNoDeadline;
  --counters_.waiting;
  for (Tube* t : s.watched) --t->waiting_count;
}

void QueueState::stop_waiting(Session& s) {
  end_wait(s);
}

Session* QueueState::take_waiter(Tube& t) {
  while (!t.waiters.empty()) {
    auto [id, number] = t.waiters.front();
    t.waiters.pop_front();
    auto it = sessions_.find(id);
    if (it != sessions_.end() && it->second->waiting && it->second->wait_number == number) return it->second.get();
  }
  return nullptr;
}

void QueueState::process_queue(std::int64_t now) {
  if (counters_.waiting == 0) return;
  for (;;) {
    Job* best = nullptr;
    for (Tube* t : tube_order_) {
      if (t->waiting_count == 0 || t->ready.empty()) continue;
      if (t->pause_ns > 0) {
        if (t->unpause_at > now) continue;
        t->pause_ns = 0;
        --paused_tubes_;
      }
      Job* candidate = t->ready.top();
      if (best == nullptr || ReadyOrder{}(*candidate, *best)) best = candidate;
    }
    if (best == nullptr) return;
    Session* s = take_waiter(*best->tube);
    RINGLET_ASSERT(s != nullptr);  // waiting_count > 0 means a live entry is queued
    end_wait(*s);
    detach(*best);
    make_reserved(*s, *best, now);
    if (listener_ != nullptr) listener_->wait_ended(*s, WaitEnd::reserved, best);
  }
}

Job* QueueState::reserve_job(Session& s, std::uint64_t id, std::int64_t now) {
  Job* j = find(id);
  if (j == nullptr || j->state == JobState::reserved) return nullptr;
  if (!s.worker) {
    s.worker = true;
    ++counters_.workers;
  }
  const bool was_parked = j->state == JobState::delayed || j->state == JobState::buried;
  detach(*j);
  make_reserved(s, *j, now);
  // A job taken out of delayed or buried must say so on disk: its last record would otherwise bring it back
  // delayed or buried after a restart, where a reservation comes back ready (found by queue_state_fuzz). A ready
  // job's record already says ready.
  if (was_parked) written(*j);
  return j;
}

bool QueueState::delete_job(Session& s, std::uint64_t id) {
  Job* j = find(id);
  if (j == nullptr || (j->state == JobState::reserved && j->reserver != &s)) return false;
  Session* reserver = j->reserver;
  detach(*j);
  ++j->tube->deletes;
  if (journal_ != nullptr) journal_->job_deleted(*j);
  free_job(*j);
  if (reserver != nullptr) resched(*reserver);  // its soonest deadline may have changed
  return true;
}

bool QueueState::release(Session& s, std::uint64_t id, std::uint32_t priority, std::uint32_t delay_s,
                         std::int64_t now) {
  Job* j = find(id);
  if (j == nullptr || j->state != JobState::reserved || j->reserver != &s) return false;
  detach(*j);
  j->priority = priority;
  j->delay_ns = std::int64_t{delay_s} * kSecondNs;
  ++j->releases;
  if (delay_s > 0) {
    make_delayed(*j, now + j->delay_ns);
  } else {
    make_ready(*j);
  }
  written(*j);
  resched(s);
  process_queue(now);
  return true;
}

bool QueueState::bury(Session& s, std::uint64_t id, std::uint32_t priority) {
  Job* j = find(id);
  if (j == nullptr || j->state != JobState::reserved || j->reserver != &s) return false;
  detach(*j);
  j->priority = priority;
  ++j->buries;
  make_buried(*j);
  written(*j);
  resched(s);
  return true;
}

bool QueueState::touch(Session& s, std::uint64_t id, std::int64_t now) {
  Job* j = find(id);
  if (j == nullptr || j->state != JobState::reserved || j->reserver != &s) return false;
  j->deadline_ns = now + j->ttr_ns;
  written(*j);
  resched(s);
  return true;
}

std::uint32_t QueueState::kick(Session& s, std::uint32_t bound, std::int64_t now) {
  Tube* t = s.used;
  std::uint32_t n = 0;
  const bool buried = !t->buried.empty();
  while (n < bound) {
    Job* j = buried ? t->buried.front() : t->delayed.top();
    if (j == nullptr) break;
    detach(*j);
    ++j->kicks;
    make_ready(*j);
    written(*j);
    ++n;
  }
  if (n > 0) process_queue(now);
  return n;
}

bool QueueState::kick_job(std::uint64_t id, std::int64_t now) {
  Job* j = find(id);
  if (j == nullptr || (j->state != JobState::buried && j->state != JobState::delayed)) return false;
  detach(*j);
  ++j->kicks;
  make_ready(*j);
  written(*j);
  process_queue(now);
  return true;
}

bool QueueState::pause_tube(std::string_view name, std::uint32_t delay_s, std::int64_t now) {
  Tube* t = find_tube(name);
  if (t == nullptr) return false;
  // Always a positive pause, so that waiting clients wake up when it ends (beanstalkd does the same).
  const std::int64_t delay = delay_s == 0 ? 1 : std::int64_t{delay_s} * kSecondNs;
  if (t->pause_ns == 0) ++paused_tubes_;
  t->pause_ns = delay;
  t->unpause_at = now + delay;
  ++t->pauses;
  return true;
}

// ---- time -----------------------------------------------------------------------------------------------------

// When tick() must look at a session: the soonest TTR deadline of its reservations (less the safety margin while it
// waits, so a waiter hears DEADLINE_SOON in time), or its wait's timeout.
void QueueState::resched(Session& s) {
  std::int64_t at = kNoDeadline;
  const std::int64_t margin = s.waiting ? kSafetyMarginNs : 0;
  for (const Job* j = s.reserved.front(); j != nullptr; j = j->next) at = std::min(at, j->deadline_ns - margin);
  if (s.waiting) at = std::min(at, s.wait_deadline);
  if (ticks_.contains(s)) ticks_.remove(s);
  s.tick_at = at;
  if (at != kNoDeadline) ticks_.push(s);
}

void QueueState::session_timeout(Session& s, std::int64_t now) {
  const bool soon = s.waiting && deadline_soon(s, now);
  for (Job* j = s.reserved.front(); j != nullptr;) {
    Job* next = j->next;
    if (j->deadline_ns <= now) {
      ++counters_.timeouts;
      ++j->timeouts;
      detach(*j);
      make_ready(*j);
    }
    j = next;
  }
  if (soon) {
    end_wait(s);
    if (listener_ != nullptr) listener_->wait_ended(s, WaitEnd::deadline_soon, nullptr);
  } else if (s.waiting && now >= s.wait_deadline) {
    end_wait(s);
    if (listener_ != nullptr) listener_->wait_ended(s, WaitEnd::timed_out, nullptr);
  }
  resched(s);
}

void QueueState::tick(std::int64_t now) {
  while (Job* j = delayed_.top()) {
    if (j->deadline_ns > now) break;
    detach(*j);
    make_ready(*j);
  }
  if (paused_tubes_ > 0) {
    for (Tube* t : tube_order_) {
      if (t->pause_ns > 0 && t->unpause_at <= now) {
        t->pause_ns = 0;
        --paused_tubes_;
      }
    }
  }
  while (Session* s = ticks_.top()) {
    if (s->tick_at > now) break;
    session_timeout(*s, now);
  }
  process_queue(now);
}

std::int64_t QueueState::next_deadline() const {
  std::int64_t at = kNoDeadline;
  if (Job* j = delayed_.top()) at = std::min(at, j->deadline_ns);
  if (Session* s = ticks_.top()) at = std::min(at, s->tick_at);
  if (paused_tubes_ > 0) {
    for (Tube* t : tube_order_) {
      if (t->pause_ns > 0) at = std::min(at, t->unpause_at);
    }
  }
  return at;
}

// ---- restore --------------------------------------------------------------------------------------------------

Job& QueueState::restore(std::uint64_t id, std::string_view tube, std::uint32_t priority, JobState state,
                         std::int64_t delay_ns, std::int64_t ttr_ns, std::int64_t created_ns, std::int64_t deadline_ns,
                         std::string body) {
  forget(id);
  auto job = std::make_unique<Job>();
  Job& j = *job;
  j.id = id;
  j.priority = priority;
  j.delay_ns = delay_ns;
  j.ttr_ns = std::max(ttr_ns, kSecondNs);
  j.created_ns = created_ns;
  j.tube = &tube_for(tube);
  j.body = std::move(body);
  jobs_.emplace(id, std::move(job));
  ++counters_.total_jobs;
  ++j.tube->total_jobs;
  switch (state) {
    case JobState::delayed: make_delayed(j, deadline_ns); break;
    case JobState::buried: make_buried(j); break;
    case JobState::ready:
    case JobState::reserved: make_ready(j); break;
  }
  set_next_id(id + 1);
  return j;
}

void QueueState::forget(std::uint64_t id) {
  Job* j = find(id);
  if (j == nullptr) return;
  detach(*j);
  free_job(*j);
}

}  // namespace ringlet::queue
