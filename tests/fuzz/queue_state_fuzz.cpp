// queue_state_fuzz.cpp — drives the queue state machine (queue/state.hpp) with a binlog (queue/binlog.hpp) through
// random command sequences from up to four sessions on a manual clock, and checks after every step:
//   - the jobs by state add up: every tube's heaps and lists, the global counters and the job table agree;
//   - a reserved job belongs to exactly one session, and sits in that session's reserved list; no other job does;
//   - ids are unique and below next_id; a waiting session is never handed a job it cannot hold;
// and at the end that replaying the binlog into a fresh state gives the same jobs (reserved ones come back ready;
// delays continue on the same clock). Each input gets a fresh directory on tmpfs when there is one.
//
// Input: a byte stream; each step takes an opcode byte and the argument bytes it needs (missing bytes read as 0).
#include <dirent.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "ringlet/queue/binlog.hpp"
#include "ringlet/queue/state.hpp"

// check() that names the broken invariant (several are checked per step).
#define CHECK(cond)                                                               \
  do {                                                                            \
    if (!(cond)) {                                                                \
      std::fprintf(stderr, "queue_state_fuzz: line %d: %s\n", __LINE__, #cond); \
      std::abort();                                                               \
    }                                                                             \
  } while (0)

namespace {

using namespace ringlet::queue;

struct Input {
  const std::uint8_t* data;
  std::size_t size;
  std::size_t pos = 0;
  bool done() const { return pos >= size; }
  std::uint8_t byte() { return pos < size ? data[pos++] : 0; }
};

constexpr const char* kTubes[] = {"default", "a", "b"};
constexpr std::int64_t kWallBase = 1'700'000'000LL * kSecondNs;  // the wall clock at mono 0

// Wait ends, checked as they happen: a reserved job must be the session's own.
struct Listener final : WaitListener {
  void wait_ended(Session& s, WaitEnd end, Job* job) override {
    CHECK(!s.waiting);
    if (end == WaitEnd::reserved) {
      CHECK(job != nullptr && job->state == JobState::reserved && job->reserver == &s);
    } else {
      CHECK(job == nullptr);
    }
  }
};

void check_invariants(const QueueState& q, const std::vector<Session*>& sessions) {
  std::uint64_t ready = 0, delayed = 0, buried = 0, reserved = 0, urgent = 0;
  for (const Tube* t : q.tubes()) {
    ready += t->ready.size();
    delayed += t->delayed.size();
    buried += t->buried.size();
    reserved += t->reserved;
  }
  const QueueCounters& c = q.counters();
  CHECK(c.ready == ready && c.delayed == delayed && c.buried == buried && c.reserved == reserved);
  CHECK(q.job_count() == ready + delayed + buried + reserved);

  std::set<std::uint64_t> ids;
  std::map<const Session*, std::size_t> held;
  std::uint64_t seen[4] = {};
  q.for_each_job([&](const Job& j) {
    CHECK(ids.insert(j.id).second);
    CHECK(j.id < q.next_id());
    CHECK(j.tube != nullptr && q.find_tube(j.tube->name) == j.tube);
    ++seen[static_cast<int>(j.state)];
    if (j.priority < kUrgentThreshold && j.state == JobState::ready) ++urgent;
    if (j.state == JobState::reserved) {
      CHECK(j.reserver != nullptr);
      ++held[j.reserver];
    } else {
      CHECK(j.reserver == nullptr);
    }
  });
  CHECK(seen[0] == ready && seen[1] == delayed && seen[2] == reserved && seen[3] == buried);
  CHECK(c.urgent == urgent);
  std::size_t listed = 0;
  for (const Session* s : sessions) {
    for (const Job* j = s->reserved.front(); j != nullptr; j = j->next) {
      CHECK(j->state == JobState::reserved && j->reserver == s);
    }
    CHECK(held[s] == s->reserved.size());
    listed += s->reserved.size();
  }
  CHECK(listed == reserved);  // no job is held by a session that is gone
}

struct Snapshot {
  std::string tube;
  std::uint32_t priority;
  JobState state;
  std::int64_t ttr_ns;
  std::string body;
  bool operator==(const Snapshot&) const = default;
};

std::map<std::uint64_t, Snapshot> snapshot(const QueueState& q) {
  std::map<std::uint64_t, Snapshot> out;
  q.for_each_job([&](const Job& j) {
    // A reservation does not survive a restart: the job comes back ready.
    const JobState s = j.state == JobState::reserved ? JobState::ready : j.state;
    out[j.id] = Snapshot{j.tube->name, j.priority, s, j.ttr_ns, j.body};
  });
  return out;
}

std::string make_dir() {
  const char* base = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  std::string tmpl = std::string(base) + "/ringlet-queue-fuzz-XXXXXX";
  CHECK(::mkdtemp(tmpl.data()) != nullptr);
  return tmpl;
}

void remove_dir(const std::string& dir) {
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") ::unlink((dir + "/" + name).c_str());
    }
    ::closedir(d);
  }
  ::rmdir(dir.c_str());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in{data, size};
  const std::string dir = make_dir();
  BinlogOptions options;
  options.fsync = FsyncMode::never;
  options.max_job_size = 64;
  options.segment_size = 4096;  // raised to its floor: small segments, so compaction runs
  Listener listener;
  std::int64_t now = kSecondNs;
  std::map<std::uint64_t, Snapshot> before;
  {
    QueueState q(&listener);
    ReplayReport report;
    auto log = Binlog::open(dir, options, q, now, kWallBase + now, report);
    CHECK(log.ok());
    std::unique_ptr<Binlog> binlog = std::move(*log);
    std::vector<Session*> sessions;
    std::uint64_t last_id = 0;
    auto id_arg = [&](std::uint8_t b) -> std::uint64_t { return b < 200 ? last_id - (b % 4) : b % 16; };
    for (int step = 0; step < 400 && !in.done(); ++step) {
      const std::uint8_t op = in.byte();
      if (sessions.empty() || op % 19 == 0) {
        if (sessions.size() < 4) sessions.push_back(&q.open_session());
        continue;
      }
      Session& s = *sessions[in.byte() % sessions.size()];
      if (s.waiting && op % 19 != 1 && op % 19 != 16) continue;  // a waiting connection sends nothing more
      switch (op % 19) {
        case 1: {  // the connection closes (a waiting one too)
          for (std::size_t i = 0; i < sessions.size(); ++i) {
            if (sessions[i] == &s) sessions.erase(sessions.begin() + static_cast<long>(i));
          }
          q.close_session(s, now);
          break;
        }
        case 2: case 3: {
          const std::uint8_t a = in.byte(), b = in.byte();
          std::string body(in.byte() % 70, static_cast<char>('a' + a % 26));
          if (body.size() > options.max_job_size) body.resize(options.max_job_size);
          if (!binlog->room_for_put(s.used->name.size(), body.size())) break;
          Job& j = q.put(s, a % 4 == 0 ? 2000 : a % 8, b % 3, b % 4, std::move(body), now);
          last_id = j.id;
          break;
        }
        case 4: q.use(s, kTubes[in.byte() % 3]); break;
        case 5: (void)q.watch(s, kTubes[in.byte() % 3]); break;
        case 6: (void)q.ignore(s, kTubes[in.byte() % 3]); break;
        case 7: {
          const std::uint8_t t = in.byte();
          QueueState::Reserve r = q.reserve(s, t % 3 == 0 ? -1 : t % 3, now);
          if (r.status == QueueState::Reserve::reserved) CHECK(r.job->reserver == &s);
          break;
        }
        case 8: (void)q.reserve_job(s, id_arg(in.byte()), now); break;
        case 9: (void)q.delete_job(s, id_arg(in.byte())); break;
        case 10: {
          const std::uint8_t a = in.byte(), b = in.byte();
          (void)q.release(s, id_arg(a), b % 8, b % 3, now);
          break;
        }
        case 11: (void)q.bury(s, id_arg(in.byte()), 5); break;
        case 12: (void)q.touch(s, id_arg(in.byte()), now); break;
        case 13: (void)q.kick(s, in.byte() % 4, now); break;
        case 14: (void)q.kick_job(id_arg(in.byte()), now); break;
        case 15: (void)q.pause_tube(kTubes[in.byte() % 3], in.byte() % 3, now); break;
        case 16: if (s.waiting) q.stop_waiting(s); break;
        case 17: case 18: {  // time passes; the owner ticks when a deadline is due
          now += static_cast<std::int64_t>(in.byte() % 8) * (kSecondNs / 4);
          if (q.next_deadline() <= now) q.tick(now);
          CHECK(q.next_deadline() > now);
          break;
        }
        default: (void)q.peek(id_arg(in.byte())); break;
      }
      check_invariants(q, sessions);
      if (binlog->has_pending()) {
        CHECK(binlog->write_pending(now, kWallBase + now).ok());
        binlog->remove_compacted();
      }
    }
    for (Session* s : sessions) q.close_session(*s, now);  // the process ends: reservations are let go
    if (binlog->has_pending()) CHECK(binlog->write_pending(now, kWallBase + now).ok());
    before = snapshot(q);
    binlog.reset();
    // Replayed on the same clock, every job is what it was (reserved ones ready), and a delayed job is still
    // delayed unless its deadline has come.
    QueueState replayed(&listener);
    ReplayReport report2;
    auto reopened = Binlog::open(dir, options, replayed, now, kWallBase + now, report2);
    CHECK(reopened.ok());
    CHECK(report2.problems.empty());
    // A delay that ran out is not a record (beanstalkd logs none either): the replayed job is delayed with a past
    // deadline, and the server's timer, armed at once, makes it ready. So does this tick.
    if (replayed.next_deadline() <= now) replayed.tick(now);
    std::map<std::uint64_t, Snapshot> after = snapshot(replayed);
    CHECK(after.size() == before.size());
    for (auto& [id, job] : before) {
      auto it = after.find(id);
      CHECK(it != after.end());
      CHECK(it->second == job || (job.state == JobState::delayed && it->second.state == JobState::ready));
      CHECK(replayed.next_id() > id);
    }
    check_invariants(replayed, {});
  }
  remove_dir(dir);
  return 0;
}
