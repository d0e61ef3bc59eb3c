// queue.cpp — `ringlet queue`: the command table over the queue state, the group commit to the binlog, and the
// connection loop (parse with proto/beanstalk, run on the core's shard, queue the reply). The rules of the queue
// are in queue/state.hpp, the disk format in queue/binlog.hpp, the wire grammar in proto/beanstalk/.
#include "ringlet/servers/queue.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <csignal>
#include <ctime>
#include <utility>

#include "ringlet/base/log.hpp"
#include "ringlet/proto/beanstalk/reply.hpp"
#include "ringlet/queue/stats.hpp"
#include "ringlet/runtime/blocking_pool.hpp"
#include "ringlet/runtime/file_sync.hpp"
#include "ringlet/runtime/shard/submit_to.hpp"
#include "ringlet/runtime/signals.hpp"
#include "ringlet/runtime/turn_budget.hpp"

namespace ringlet {

using beanstalk::Command;
using beanstalk::ReplyKind;
using queue::Job;
using queue::JobState;

namespace {

constexpr std::string_view kVersion = "1.13 (ringlet 0.1.0)";

std::int64_t wall_now_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

void append_number(std::string& out, std::uint64_t v) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, v);
  out.push_back(' ');
  out.append(digits, end);
}

unsigned current_shard() noexcept {
  Shard* s = Shard::current();
  return s == nullptr ? 0 : s->id();
}

}  // namespace

// ---- --allow ----------------------------------------------------------------------------------------------------

Result<Cidr> Cidr::parse(std::string_view text) {
  Cidr c;
  std::string addr(text.substr(0, text.find('/')));
  if (::inet_pton(AF_INET, addr.c_str(), c.bytes.data()) == 1) {
    c.family = AF_INET;
    c.prefix = 32;
  } else if (::inet_pton(AF_INET6, addr.c_str(), c.bytes.data()) == 1) {
    c.family = AF_INET6;
    c.prefix = 128;
  } else {
    return Error{EINVAL};
  }
  if (std::size_t slash = text.find('/'); slash != std::string_view::npos) {
    std::string_view digits = text.substr(slash + 1);
    unsigned p = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), p);
    if (ec != std::errc{} || end != digits.data() + digits.size() || p > c.prefix || digits.empty()) {
      return Error{EINVAL};
    }
    c.prefix = p;
  }
  return c;
}

bool Cidr::contains(const Address& a) const noexcept {
  const std::uint8_t* bytes = nullptr;
  std::uint8_t mapped[4];
  if (a.family() == AF_INET) {
    bytes = reinterpret_cast<const std::uint8_t*>(&reinterpret_cast<const sockaddr_in*>(a.sockaddr_ptr())->sin_addr);
    if (family != AF_INET) return false;
  } else if (a.family() == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(a.sockaddr_ptr())->sin6_addr.s6_addr;
    if (family == AF_INET) {
      // An IPv4 client on a dual-stack socket arrives as ::ffff:a.b.c.d.
      static constexpr std::uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
      if (std::memcmp(v6, kMappedPrefix, 12) != 0) return false;
      std::memcpy(mapped, v6 + 12, 4);
      bytes = mapped;
    } else {
      bytes = v6;
    }
  } else {
    return false;
  }
  unsigned full = prefix / 8;
  if (std::memcmp(bytes, this->bytes.data(), full) != 0) return false;
  unsigned rest = prefix % 8;
  if (rest == 0) return true;
  const std::uint8_t mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (bytes[full] & mask) == (this->bytes[full] & mask);
}

// ---- the core: commands ----------------------------------------------------------------------------------------

const std::array<QueueCore::Handler, beanstalk::kCommandCount> QueueCore::kHandlers = [] {
  std::array<Handler, beanstalk::kCommandCount> t{};
  auto set = [&t](Command c, Handler h) { t[static_cast<std::size_t>(c)] = h; };
  set(Command::put, &on_put);
  set(Command::use, &on_use);
  set(Command::reserve, &on_reserve);
  set(Command::reserve_with_timeout, &on_reserve);
  set(Command::reserve_job, &on_reserve_job);
  set(Command::delete_job, &on_delete);
  set(Command::release, &on_release);
  set(Command::bury, &on_bury);
  set(Command::touch, &on_touch);
  set(Command::watch, &on_watch);
  set(Command::ignore, &on_ignore);
  set(Command::peek, &on_peek);
  set(Command::peek_ready, &on_peek);
  set(Command::peek_delayed, &on_peek);
  set(Command::peek_buried, &on_peek);
  set(Command::kick, &on_kick);
  set(Command::kick_job, &on_kick_job);
  set(Command::stats_job, &on_stats_job);
  set(Command::stats_tube, &on_stats_tube);
  set(Command::stats, &on_stats);
  set(Command::list_tubes, &on_list);
  set(Command::list_tube_used, &on_list);
  set(Command::list_tubes_watched, &on_list);
  set(Command::pause_tube, &on_pause_tube);
  set(Command::quit, &on_quit);
  return t;
}();

void QueueCore::reply(QueueConn& c, ReplyKind kind) {
  c.reply.append(beanstalk::reply_word(kind)).append("\r\n");
}

void QueueCore::reply_job(QueueConn&, ReplyKind kind, const Job& job, std::string& out) {
  out.append(beanstalk::reply_word(kind));
  append_number(out, job.id);
  append_number(out, job.body.size());
  out.append("\r\n").append(job.body).append("\r\n");
}

void QueueCore::reply_yaml(QueueConn& c) {
  c.reply.append(beanstalk::reply_word(ReplyKind::ok));
  append_number(c.reply, yaml_.size());
  c.reply.append("\r\n").append(yaml_).append("\r\n");
}

void QueueCore::wrote(QueueConn& c) {
  if (binlog_ == nullptr || !binlog_->has_pending()) return;
  c.sync_seq = binlog_->appended();
  if (options_.binlog.fsync != queue::FsyncMode::always) {
    commit_wanted_.set();
  } else {
    // The batch is written at the end of this turn, after every connection that is ready has run: all of the
    // turn's records share the write and the sync, and the sync starts in this turn, not after the next one.
    commit_at_this_turn_end();
  }
}

void QueueCore::on_put(QueueCore& q, QueueConn& c) {
  const beanstalk::Request& r = c.request;
  if (c.bad_body) {
    q.state_.skip_id();
    q.reply(c, ReplyKind::expected_crlf);
    return;
  }
  if (q.options_.draining != nullptr && q.options_.draining->load(std::memory_order_relaxed)) {
    q.state_.skip_id();
    q.reply(c, ReplyKind::draining);
    return;
  }
  if (q.binlog_ != nullptr && !q.binlog_->room_for_put(c.session->used->name.size(), c.body.size())) {
    q.reply(c, ReplyKind::out_of_memory);
    return;
  }
  Job& j = q.state_.put(*c.session, r.priority, r.delay, r.ttr, std::string(c.body), q.now());
  c.reply.append(beanstalk::reply_word(ReplyKind::inserted));
  append_number(c.reply, j.id);
  c.reply.append("\r\n");
  q.wrote(c);
}

void QueueCore::on_use(QueueCore& q, QueueConn& c) {
  q.state_.use(*c.session, c.request.tube);
  c.reply.append(beanstalk::reply_word(ReplyKind::using_tube)).append(" ").append(c.session->used->name).append("\r\n");
}

void QueueCore::on_reserve(QueueCore& q, QueueConn& c) {
  const std::int64_t timeout = c.request.command == Command::reserve ? -1 : std::int64_t{c.request.timeout};
  queue::QueueState::Reserve r = q.state_.reserve(*c.session, timeout, q.now());
  switch (r.status) {
    case queue::QueueState::Reserve::reserved: q.reply_job(c, ReplyKind::reserved, *r.job, c.reply); break;
    case queue::QueueState::Reserve::deadline_soon: q.reply(c, ReplyKind::deadline_soon); break;
    case queue::QueueState::Reserve::timed_out: q.reply(c, ReplyKind::timed_out); break;
    case queue::QueueState::Reserve::waiting: c.waiting = true; break;
  }
}

void QueueCore::on_reserve_job(QueueCore& q, QueueConn& c) {
  if (Job* j = q.state_.reserve_job(*c.session, c.request.id, q.now())) {
    q.reply_job(c, ReplyKind::reserved, *j, c.reply);
  } else {
    q.reply(c, ReplyKind::not_found);
  }
  q.wrote(c);  // a delayed or buried job's reservation is recorded (queue/state.cpp): the reply waits for it
}

void QueueCore::on_delete(QueueCore& q, QueueConn& c) {
  q.reply(c, q.state_.delete_job(*c.session, c.request.id) ? ReplyKind::deleted : ReplyKind::not_found);
  q.wrote(c);
}

void QueueCore::on_release(QueueCore& q, QueueConn& c) {
  const beanstalk::Request& r = c.request;
  const bool ok = q.state_.release(*c.session, r.id, r.priority, r.delay, q.now());
  q.reply(c, ok ? ReplyKind::released : ReplyKind::not_found);
  q.wrote(c);
}

void QueueCore::on_bury(QueueCore& q, QueueConn& c) {
  q.reply(c, q.state_.bury(*c.session, c.request.id, c.request.priority) ? ReplyKind::buried : ReplyKind::not_found);
  q.wrote(c);
}

void QueueCore::on_touch(QueueCore& q, QueueConn& c) {
  q.reply(c, q.state_.touch(*c.session, c.request.id, q.now()) ? ReplyKind::touched : ReplyKind::not_found);
  q.wrote(c);
}

void QueueCore::on_watch(QueueCore& q, QueueConn& c) {
  c.reply.append(beanstalk::reply_word(ReplyKind::watching));
  append_number(c.reply, q.state_.watch(*c.session, c.request.tube));
  c.reply.append("\r\n");
}

void QueueCore::on_ignore(QueueCore& q, QueueConn& c) {
  long n = q.state_.ignore(*c.session, c.request.tube);
  if (n < 0) {
    q.reply(c, ReplyKind::not_ignored);
    return;
  }
  c.reply.append(beanstalk::reply_word(ReplyKind::watching));
  append_number(c.reply, static_cast<std::uint64_t>(n));
  c.reply.append("\r\n");
}

void QueueCore::on_peek(QueueCore& q, QueueConn& c) {
  Job* j = nullptr;
  switch (c.request.command) {
    case Command::peek: j = q.state_.peek(c.request.id); break;
    case Command::peek_ready: j = q.state_.peek_ready(*c.session); break;
    case Command::peek_delayed: j = q.state_.peek_delayed(*c.session); break;
    default: j = q.state_.peek_buried(*c.session); break;
  }
  if (j == nullptr) {
    q.reply(c, ReplyKind::not_found);
  } else {
    q.reply_job(c, ReplyKind::found, *j, c.reply);
  }
}

void QueueCore::on_kick(QueueCore& q, QueueConn& c) {
  std::uint32_t n = q.state_.kick(*c.session, c.request.bound, q.now());
  c.reply.append(beanstalk::reply_word(ReplyKind::kicked));
  append_number(c.reply, n);
  c.reply.append("\r\n");
  q.wrote(c);
}

void QueueCore::on_kick_job(QueueCore& q, QueueConn& c) {
  q.reply(c, q.state_.kick_job(c.request.id, q.now()) ? ReplyKind::kicked : ReplyKind::not_found);
  q.wrote(c);
}

void QueueCore::on_stats_job(QueueCore& q, QueueConn& c) {
  Job* j = q.state_.peek(c.request.id);
  if (j == nullptr) {
    q.reply(c, ReplyKind::not_found);
    return;
  }
  q.yaml_.clear();
  queue::write_job_stats(q.yaml_, *j, q.now(), j->segment);
  q.reply_yaml(c);
}

void QueueCore::on_stats_tube(QueueCore& q, QueueConn& c) {
  queue::Tube* t = q.state_.find_tube(c.request.tube);
  if (t == nullptr) {
    q.reply(c, ReplyKind::not_found);
    return;
  }
  q.yaml_.clear();
  queue::write_tube_stats(q.yaml_, *t, q.now());
  q.reply_yaml(c);
}

void QueueCore::on_stats(QueueCore& q, QueueConn& c) {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  utsname un{};
  ::uname(&un);
  queue::ServerFacts f;
  f.command_counts = q.command_counts_;
  f.max_job_size = q.options_.max_job_size;
  f.pid = static_cast<long>(::getpid());
  f.version = kVersion;
  f.utime_us = static_cast<std::int64_t>(ru.ru_utime.tv_sec) * 1'000'000 + ru.ru_utime.tv_usec;
  f.stime_us = static_cast<std::int64_t>(ru.ru_stime.tv_sec) * 1'000'000 + ru.ru_stime.tv_usec;
  f.uptime_s = static_cast<std::uint64_t>((q.now() - q.started_ns_) / queue::kSecondNs);
  if (q.binlog_ != nullptr) {
    queue::BinlogStats b = q.binlog_->stats();
    f.binlog_enabled = true;
    f.binlog_oldest_index = b.oldest_index;
    f.binlog_current_index = b.current_index;
    f.binlog_records_migrated = b.records_migrated;
    f.binlog_records_written = b.records_written;
    f.binlog_max_size = b.segment_size;
    f.binlog_live_bytes = b.live_bytes;
    f.binlog_dead_bytes = b.dead_bytes;
  }
  f.draining = q.options_.draining != nullptr && q.options_.draining->load(std::memory_order_relaxed);
  f.instance_id = q.instance_id_;
  f.hostname = un.nodename;
  f.os = un.version;
  f.platform = un.machine;
  q.yaml_.clear();
  queue::write_server_stats(q.yaml_, q.state_, f);
  q.reply_yaml(c);
}

void QueueCore::on_list(QueueCore& q, QueueConn& c) {
  if (c.request.command == Command::list_tube_used) {
    c.reply.append(beanstalk::reply_word(ReplyKind::using_tube)).append(" ").append(c.session->used->name).append("\r\n");
    return;
  }
  q.yaml_.clear();
  if (c.request.command == Command::list_tubes) {
    queue::write_tube_list(q.yaml_, q.state_);
  } else {
    queue::write_watched_list(q.yaml_, *c.session);
  }
  q.reply_yaml(c);
}

void QueueCore::on_pause_tube(QueueCore& q, QueueConn& c) {
  q.reply(c, q.state_.pause_tube(c.request.tube, c.request.delay, q.now()) ? ReplyKind::paused : ReplyKind::not_found);
}

void QueueCore::on_quit(QueueCore&, QueueConn&) {}

void QueueCore::execute(QueueConn& c) {
  c.reply.clear();
  c.sync_seq = 0;
  c.waiting = false;
  count_command(c.request.command);
  kHandlers[static_cast<std::size_t>(c.request.command)](*this, c);
  rearm();
}

// ---- the core: sessions, wake-ups and time -----------------------------------------------------------------------

void QueueCore::open_session(QueueConn& c) {
  c.session = &state_.open_session();
  c.session->owner = &c;
}

void QueueCore::close_session(QueueConn& c) {
  if (c.session == nullptr) return;
  state_.close_session(*c.session, now());
  c.session = nullptr;
  rearm();
}

void QueueCore::cancel_wait(QueueConn& c) {
  if (c.session != nullptr) state_.stop_waiting(*c.session);
  rearm();
}

void QueueCore::wait_ended(queue::Session& s, queue::WaitEnd end, Job* job) {
  auto* c = static_cast<QueueConn*>(s.owner);
  c->wake_reply.clear();
  switch (end) {
    case queue::WaitEnd::reserved: reply_job(*c, ReplyKind::reserved, *job, c->wake_reply); break;
    case queue::WaitEnd::deadline_soon: c->wake_reply.append(beanstalk::reply_word(ReplyKind::deadline_soon)).append("\r\n"); break;
    case queue::WaitEnd::timed_out: c->wake_reply.append(beanstalk::reply_word(ReplyKind::timed_out)).append("\r\n"); break;
  }
  deliver_wake(*c);
}

namespace {
void wake_connection(QueueConn* conn) {
  conn->woken = true;
  if (auto h = std::exchange(conn->waiter, nullptr)) Loop::current()->schedule(h);
}
}  // namespace

void QueueCore::deliver_wake(QueueConn& c) {
  QueueConn* conn = &c;
  if (c.shard == shard_) {
    wake_connection(conn);
    return;
  }
  // The connection's fields are its shard's: the message sets them there (after wake_reply, written above).
  Shard::current()->send(c.shard, [conn] { wake_connection(conn); });
}

void QueueCore::rearm() noexcept {
  const std::int64_t at = state_.next_deadline();
  if (at == armed_at_ && (timer_.armed() || at == queue::kNoDeadline)) return;
  loop_->timers().stop(timer_);
  armed_at_ = at;
  if (at != queue::kNoDeadline) loop_->timers().start(timer_, at);
}

void QueueCore::on_timer(TimerNode* node) {
  QueueCore* core = static_cast<Timer*>(node)->core;
  core->armed_at_ = queue::kNoDeadline;
  core->state_.tick(core->loop_->clock().now_ns());
  core->rearm();
}

// ---- the core: group commit ----------------------------------------------------------------------------------------

struct DurableAwaitable {
  QueueCore* core;
  std::uint64_t seq;
  bool* ok;
  bool await_ready() const noexcept { return core->done_seq_ >= seq; }
  void await_suspend(std::coroutine_handle<> h) { core->waiters_.push_back({seq, h, ok}); }
  void await_resume() const noexcept {}
};

Task<bool> QueueCore::durable(std::uint64_t seq) {
  bool ok = true;
  co_await DurableAwaitable{this, seq, &ok};
  co_return ok;
}

Task<Result<bool>> QueueCore::sync_files(std::vector<int> fds) {
  const std::int64_t start = loop_->clock().now_ns();  // the clock itself: now_ns() is this phase's reading
  Result<FileSyncOutcome> synced = co_await sync_file_data(*loop_, std::move(fds));
  if (!synced) {
    ++fsyncs_;
    fsync_latency_.record(loop_->clock().now_ns() - start);
    co_return synced.error();
  }
  count_sync(loop_->clock().now_ns() - start, synced->sync_ns);
  co_return synced->error == 0;
}

void QueueCore::count_sync(std::int64_t waited_ns, std::int64_t disk_ns) {
  ++fsyncs_;
  fsync_latency_.record(waited_ns);
  // The disk's own time, without the loop's turn: what decides whether syncs should overlap.
  disk_sync_ns_avg_ += (disk_ns - disk_sync_ns_avg_) / 8;  // a moving average over the last ~8 syncs
}

// How many syncs may run at once with --fsync always: one while syncs are fast, two once they are slow.
//
// Each sync costs the core about the same whatever it carries (on this project's VM a fdatasync is 90-140 us of
// system time, run by an io-wq worker on io_uring and a pool thread on epoll), so when the disk syncs fast the core
// is the bound and the records per sync decide the CPU per job: 50 closed-loop clients form groups that take turns,
// about 50 / (syncs in flight + 1) records each, so one sync at a time carries ~24 records where two carry ~15
// (measured), a third less sync work per job. When the disk is slow the disk is the bound and the core idles: then
// a second sync, written and started while the first runs, keeps the device busy (1.7x the syncs per second
// measured with two on a slow disk). The switch is how long the recent syncs took on their own (file_sync.hpp: to
// the kernel's completion or on the pool thread, not to the task's resumption: a busy loop's turn would make a fast
// disk look slow): above kOverlapSyncsAfterNs, a few times a sync's own CPU cost, the disk is what the records wait
// for. Not three: on a disk syncing in 3-5 ms, two in flight gave twice the jobs/s of one, and a third was ahead in
// one run and behind in the next (docs/design/queue.md, "The sync on the ring"): each sync ends with a cache flush,
// which the device does one at a time.
constexpr std::size_t kSyncsInFlight = 2;
constexpr std::int64_t kOverlapSyncsAfterNs = 500'000;

std::size_t QueueCore::syncs_in_flight_limit() const noexcept {
  return disk_sync_ns_avg_ > kOverlapSyncsAfterNs ? kSyncsInFlight : 1;
}

// --fsync always, at the end of a turn that appended records: releases the replies of finished syncs (in batch
// order), then writes what is pending and starts its sync when fewer than syncs_in_flight_limit() run. A batch
// that has to wait for a free slot is written at the end of the turn in which a sync finishes (sync_batch queues
// this again).
void QueueCore::commit_at_turn_end(void* ctx) noexcept {
  auto* core = static_cast<QueueCore*>(ctx);
  core->commit_queued_ = false;
  core->commit_pending();
}

void QueueCore::commit_at_this_turn_end() {
  if (commit_queued_) return;
  commit_queued_ = true;
  loop_->at_turn_end(&QueueCore::commit_at_turn_end, this);
}

namespace {

Task<void> finish_on_pool(std::vector<int> closes, std::vector<queue::Binlog::Trim> trims) {
  auto work = [closes = std::move(closes), trims = std::move(trims)] {
    for (const queue::Binlog::Trim& t : trims) t.run();
    for (int fd : closes) ::close(fd);
  };
  (void)co_await default_blocking_pool().run(std::move(work));  // cancelled at a stop: the pool still runs it
}

}  // namespace

// Removes the compacted segments whose copies are on disk and hands the slow file work of the binlog to the pool.
// The unlinks happen here, in order; the last close of a removed segment frees its blocks and page cache, which
// took 4-8 ms on the project's VM for a 10 MiB segment (a roll every ~0.1-0.4 s at 4 KiB bodies), and the
// ftruncate that gives back a finished segment's preallocated rest 0.2-5 ms, every connection of the loop stalled
// meanwhile: both go to the pool.
void QueueCore::remove_compacted(std::uint64_t synced) {
  binlog_->remove_compacted(synced);
  std::vector<int> closes = binlog_->take_retired();
  std::vector<queue::Binlog::Trim> trims = binlog_->take_trims();
  if (!closes.empty() || !trims.empty()) loop_->spawn(finish_on_pool(std::move(closes), std::move(trims)));
}

void QueueCore::release_synced() {
  while (!in_flight_.empty() && in_flight_.front().done) {
    const InFlight f = in_flight_.front();
    in_flight_.pop_front();
    if (f.ok) remove_compacted(f.batch);
    release_waiters(f.batch, f.ok);
  }
}

void QueueCore::commit_pending() {
  release_synced();
  if (stopping_ || !binlog_->has_pending() || in_flight_.size() >= syncs_in_flight_limit()) return;
  const std::uint64_t batch = binlog_->appended();
  Result<std::vector<int>> fds = binlog_->write_pending(loop_->now_ns(), wall_now_ns());
  in_flight_.push_back({batch, !fds.ok(), false});
  if (fds.ok()) {
    start_sync(batch, std::move(*fds));
  } else {
    commit_at_this_turn_end();  // the failed batch's replies (INTERNAL_ERROR) go at the end of this turn
  }
}

// The sync of a written batch (--fsync always), started in the turn-end hook that wrote it. On io_uring a
// FileSyncOp: its fdatasync goes to the kernel in this turn's phase-7 submit, and its end, in the reaping phase of the
// turn that sees it, releases the replies, which resume in that turn's phase 4. A task (sync_batch) would start in the
// next turn's phase 4, after every connection woken meanwhile, and the replies its end released would wait one turn
// more; the busier the loop, the longer those turns, against a sync of 100-200 us on a fast disk (docs/design/queue.md,
// "A sync without a turn at either end"). epoll has no asynchronous file sync: a task hands the sync to the pool.
struct QueueCore::BatchSync : FileSyncOp {
  BatchSync(Loop& loop, std::shared_ptr<QueueCore> c, std::uint64_t b) noexcept
      : FileSyncOp(loop, &QueueCore::batch_synced), core(std::move(c)), batch(b), started_ns(loop.clock().now_ns()) {}
  std::shared_ptr<QueueCore> core;  // alive until the sync ends, even when the server stopped meanwhile
  std::uint64_t batch;
  std::int64_t started_ns;
};

void QueueCore::start_sync(std::uint64_t batch, std::vector<int> fds) {
  if (!loop_->backend().syncs_files()) {
    loop_->spawn(sync_batch(shared_from_this(), batch, std::move(fds)));
    return;
  }
  auto* op = new BatchSync(*loop_, shared_from_this(), batch);
  op->start(fds);  // freed by batch_synced
}

void QueueCore::batch_synced(FileSyncOp& base, FileSyncOutcome outcome) noexcept {
  std::unique_ptr<BatchSync> op(static_cast<BatchSync*>(&base));
  std::shared_ptr<QueueCore> core = std::move(op->core);  // let go after the op: it may be the last owner
  core->count_sync(core->loop_->clock().now_ns() - op->started_ns, outcome.sync_ns);
  core->sync_ended(op->batch, outcome.error == 0);
}

// One sync of a written batch on the blocking pool (epoll), as a task of its own so that two can run at once.
Task<void> QueueCore::sync_batch(std::shared_ptr<QueueCore> self, std::uint64_t batch, std::vector<int> fds) {
  QueueCore* core = self.get();
  Result<bool> synced = co_await core->sync_files(std::move(fds));
  if (!synced) co_return;  // cancelled: the server is stopping, and the commit task's last sync covers the batch
  core->sync_ended(batch, *synced);
}

// Marks the batch's entry done and releases the replies of every finished batch at the front at once. The records
// appended meanwhile are written and synced at the end of this turn, with those the rest of the turn appends: one
// batch per turn, not one more for the records that happened to come before the sync finished.
void QueueCore::sync_ended(std::uint64_t batch, bool ok) {
  if (!ok) log_error("queue: binlog: fdatasync failed");
  for (InFlight& f : in_flight_) {
    if (f.batch == batch) {
      f.done = true;
      f.ok = ok;
    }
  }
  if (stopping_) return;  // the commit task's last sync covers the batch and releases every reply
  release_synced();
  if (binlog_->has_pending()) commit_at_this_turn_end();
}

void QueueCore::release_waiters(std::uint64_t batch, bool ok) {
  if (!ok) commit_failed_ = true;
  done_seq_ = batch;
  while (!waiters_.empty() && waiters_.front().seq <= batch) {
    Waiter w = waiters_.front();
    waiters_.pop_front();
    *w.ok = ok;
    loop_->schedule(w.handle);
  }
}

// The commit task. With --fsync MS and never, each pass takes every record appended since the last (from every
// connection on every shard), writes it (page cache, on this thread), then:
//   --fsync MS      syncs at most every MS ms (the timeout of the wait for the next batch syncs an idle tail);
//   --fsync never   leaves it to the kernel.
// With --fsync always the work is done where it is due, without a hop through this task: at the end of each turn
// that appended records and when a sync finishes (commit_pending: write, sync on the ring or the blocking pool, one
// or two batches at once, replies released in batch order once a batch's sync and every earlier one have finished).
// Records appended while a sync runs form the next batch: that is the group commit. In every mode this task does
// the last write and sync when the server stops.
Task<void> QueueCore::commit_loop(std::shared_ptr<QueueCore> self) {
  QueueCore* core = self.get();
  Loop& loop = *core->loop_;
  const queue::BinlogOptions& o = core->options_.binlog;
  std::int64_t last_sync = loop.now_ns();
  bool unsynced = false;
  // --fsync MS: every file written since the last sync (segments and, after a segment start, the directory), not
  // only the last batch's: a batch written before a roll may sit in the old segment, and the new segment's name
  // and header ride on the sync after their start (queue::Binlog::write_pending).
  std::vector<int> unsynced_fds;
  for (;;) {
    if (o.fsync == queue::FsyncMode::always) {
      // The turn-end hook and the sync tasks do the work (commit_pending); this task only waits for the stop.
      if (!co_await core->commit_wanted_.wait()) break;
      core->commit_wanted_.clear();
      continue;
    }
    if (!core->binlog_->has_pending()) {
      core->commit_wanted_.clear();
      Status woke;
      if (unsynced && o.fsync == queue::FsyncMode::interval) {
        const std::int64_t left = std::max<std::int64_t>(0, last_sync + o.fsync_interval_ns - loop.now_ns());
        Result<void> r = co_await with_timeout(core->commit_wanted_.wait(), Duration(left));
        if (!r && r.error() == errc::timed_out) {
          Result<bool> synced = co_await core->sync_files(core->binlog_->all_fds());
          if (!synced) break;
          last_sync = loop.now_ns();
          unsynced = false;
          unsynced_fds.clear();
          core->remove_compacted(core->binlog_->written());
          continue;
        }
        woke = r;
      } else {
        woke = co_await core->commit_wanted_.wait();
      }
      if (!woke) break;
      continue;
    }
    const std::uint64_t batch = core->binlog_->appended();
    Result<std::vector<int>> fds = core->binlog_->write_pending(loop.now_ns(), wall_now_ns());
    bool ok = fds.ok();
    if (ok && o.fsync == queue::FsyncMode::interval) {
      unsynced = true;
      for (int fd : *fds) {
        if (std::find(unsynced_fds.begin(), unsynced_fds.end(), fd) == unsynced_fds.end()) unsynced_fds.push_back(fd);
      }
      if (loop.now_ns() - last_sync >= o.fsync_interval_ns) {
        Result<bool> synced = co_await core->sync_files(std::exchange(unsynced_fds, {}));
        if (!synced) break;
        last_sync = loop.now_ns();
        unsynced = false;
        core->remove_compacted(core->binlog_->written());
      }
    } else if (ok) {
      core->remove_compacted(core->binlog_->written());
    }
    core->release_waiters(batch, ok);
  }
  // Stopping: what is still pending goes to disk now, synced, so a clean stop loses nothing, and no reply stays
  // parked behind a batch that will never come.
  core->stopping_ = true;
  bool ok = true;
  if (core->binlog_->has_pending()) ok = core->binlog_->write_pending(loop.now_ns(), wall_now_ns()).ok();
  ok = fdatasync_all(core->binlog_->all_fds()) == 0 && ok;  // blocking: the loop is stopping
  core->in_flight_.clear();
  core->done_seq_ = core->binlog_->appended();
  for (const Waiter& w : core->waiters_) {
    *w.ok = ok;
    loop.schedule(w.handle);
  }
  core->waiters_.clear();
}

// ---- the core: creation --------------------------------------------------------------------------------------------

QueueCore::QueueCore(Loop& loop, const QueueOptions& options)
    : loop_(&loop), options_(options), shard_(current_shard()), state_(this), started_ns_(loop.now_ns()) {
  timer_.core = this;
  timer_.on_fire = &QueueCore::on_timer;
  std::uint8_t id[8] = {};
  if (::getrandom(id, sizeof id, 0) != static_cast<ssize_t>(sizeof id)) {
    std::uint64_t seed = static_cast<std::uint64_t>(wall_now_ns());
    std::memcpy(id, &seed, sizeof id);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  for (std::uint8_t b : id) {
    instance_id_.push_back(kHex[b >> 4]);
    instance_id_.push_back(kHex[b & 15]);
  }
}

QueueCore::~QueueCore() {
  loop_->timers().stop(timer_);
  loop_->forget_turn_end(this);
}

Result<std::shared_ptr<QueueCore>> QueueCore::create(Loop& loop, const QueueOptions& options) {
  auto core = std::shared_ptr<QueueCore>(new QueueCore(loop, options));
  if (!options.binlog_dir.empty()) {
    queue::ReplayReport report;
    queue::BinlogOptions bo = options.binlog;
    bo.max_job_size = options.max_job_size;
    auto opened = queue::Binlog::open(options.binlog_dir, bo, core->state_, loop.now_ns(), wall_now_ns(), report);
    for (const std::string& p : report.problems) log_warn("queue: binlog: {}", p);
    if (!opened) {
      log_error("queue: cannot open the binlog in {}: {}", options.binlog_dir, opened.error().message());
      return opened.error();
    }
    core->binlog_ = std::move(*opened);
    log_info("queue: binlog {}: {} segment(s), {} record(s) replayed, {} job(s) restored, fsync {}",
             options.binlog_dir, report.segments, report.records, report.jobs,
             options.binlog.fsync == queue::FsyncMode::always ? std::string("always")
             : options.binlog.fsync == queue::FsyncMode::never
                 ? std::string("never")
                 : fmt::format("every {} ms", options.binlog.fsync_interval_ns / 1'000'000));
    loop.spawn(commit_loop(core));
  }
  if (options.tls != nullptr) {
    log_info("queue: TLS on every listener{}",
             options.tls->verifies_peer() ? ", client certificates required (--tls-client-ca)" : "");
  }
  core->rearm();
  return core;
}

// ---- the connection ------------------------------------------------------------------------------------------------

QueueServer::QueueServer(Loop& loop, const QueueOptions& options, const ServerOptions& server, QueueCore* core)
    : options_(&options), core_(core), tcp_(loop, server, &queue_connection, this) {}

void QueueCore::describe_metrics(MetricSet& out) {
  for (std::size_t i = 0; i < beanstalk::kCommandCount; ++i) {
    if (command_counts_[i] == 0) continue;  // 30-odd commands, most never used: keep the page short
    out.counter("ringlet_queue_commands_total", "beanstalkd commands received, by name.",
                static_cast<double>(command_counts_[i]),
                {{"command", std::string(beanstalk::command_name(static_cast<Command>(i)))}});
  }
  const queue::QueueCounters& c = state_.counters();
  out.counter("ringlet_queue_jobs_created_total", "Jobs put.", static_cast<double>(c.total_jobs));
  out.counter("ringlet_queue_job_timeouts_total", "Reserved jobs whose time-to-run ran out.",
              static_cast<double>(c.timeouts));
  out.gauge("ringlet_queue_tubes", "Tubes that exist now.", static_cast<double>(state_.tubes().size()));
  out.gauge("ringlet_queue_waiting_reservers", "Connections waiting in reserve.", static_cast<double>(c.waiting));
  for (const queue::Tube* t : state_.tubes()) {
    const struct {
      const char* state;
      std::uint64_t jobs;
    } by_state[] = {{"ready", t->ready.size()}, {"delayed", t->delayed.size()}, {"reserved", t->reserved},
                    {"buried", t->buried.size()}};
    for (const auto& s : by_state) {
      out.gauge("ringlet_queue_jobs", "Jobs now, by tube and state.", static_cast<double>(s.jobs),
                {{"tube", t->name}, {"state", s.state}});
    }
  }
  if (binlog_ != nullptr) {
    const queue::BinlogStats b = binlog_->stats();
    out.gauge("ringlet_queue_binlog_live_bytes", "Binlog bytes that still describe live jobs.",
              static_cast<double>(b.live_bytes));
    out.gauge("ringlet_queue_binlog_dead_bytes", "Binlog bytes of jobs gone, waiting for compaction.",
              static_cast<double>(b.dead_bytes));
    out.gauge("ringlet_queue_binlog_segments", "Binlog segment files.", static_cast<double>(b.segments));
    out.counter("ringlet_queue_binlog_records_written_total", "Records written to the binlog.",
                static_cast<double>(b.records_written));
    out.counter("ringlet_queue_binlog_fsyncs_total", "Binlog syncs (fdatasync of every segment written to).",
                static_cast<double>(fsyncs_));
    out.histogram("ringlet_queue_binlog_fsync_duration_seconds",
                  "Time a binlog sync took, as the group commit waited for it.", fsync_latency_);
  }
}

bool QueueServer::core_is_here() const noexcept { return current_shard() == core_->shard(); }

void QueueServer::describe_metrics(MetricSet& out) const {
  out.histogram("ringlet_queue_request_batch_duration_seconds",
                "Time from the receive that brought a batch of commands to its last reply being queued (a reserve "
                "that waits for a job ends its batch when it starts waiting).",
                batch_latency_);
}

bool QueueServer::allowed(const Stream& stream) const {
  if (options_->allow.empty()) return true;
  Result<Address> peer = stream.peer_address();
  if (!peer) return false;
  if (peer->is_unix()) return true;
  for (const Cidr& c : options_->allow) {
    if (c.contains(*peer)) return true;
  }
  return false;
}

namespace {

// A connection that ends gives its last replies this long to leave (a client that stopped reading gets no more).
constexpr Duration kFinalFlushTimeout = std::chrono::seconds(10);

enum class CoreOp : std::uint8_t { open, execute, settle, cancel_wait, close };

struct Call {
  QueueCore* core;
  QueueConn* conn;
  CoreOp op;
};

// On the core's shard: waits until every held reply's record is on disk, in order; a reply whose record could not
// be written or synced becomes INTERNAL_ERROR. The replies stay where they are: the connection queues them.
Task<void> settle_held(QueueCore& core, QueueConn& c) {
  std::string settled;
  bool failed = false;
  std::size_t begin = 0;
  for (const QueueConn::HeldMark& m : c.held_marks) {
    if (m.seq != 0 && !co_await core.durable(m.seq)) {
      failed = true;
      settled.append(beanstalk::reply_word(ReplyKind::internal_error)).append("\r\n");
    } else {
      settled.append(c.held, begin, m.end - begin);
    }
    begin = m.end;
  }
  if (failed) c.held = std::move(settled);
}

// On the core's shard.
Task<void> run_on_core(Call call) {
  QueueCore& core = *call.core;
  QueueConn& c = *call.conn;
  switch (call.op) {
    case CoreOp::open: core.open_session(c); break;
    case CoreOp::close: core.close_session(c); break;
    case CoreOp::cancel_wait: core.cancel_wait(c); break;
    case CoreOp::execute: core.execute(c); break;
    case CoreOp::settle: co_await settle_held(core, c); break;
  }
}

// Runs `op` for this connection on the core's shard: directly when that is this shard, else as a message.
Task<void> on_core(QueueServer& server, QueueConn& c, CoreOp op) {
  Call call{&server.core(), &c, op};
  if (server.core_is_here()) {
    if (op == CoreOp::execute) {  // the hot path: no extra task
      call.core->execute(c);
      co_return;
    }
    if (op == CoreOp::settle) {
      co_await settle_held(*call.core, c);
      co_return;
    }
    co_await run_on_core(call);
    co_return;
  }
  co_await submit_to(call.core->shard(), [call] { return run_on_core(call); });
}

// Suspends the connection until its reserve is answered (woken), its peer hangs up (the watcher below), or the
// task is cancelled or asked to drain (a graceful stop: the wait counts as an input wait, so a stopping server
// does not keep idle workers until its shutdown timeout). Never completes on its own otherwise.
class [[nodiscard]] WakeOrHangup {
 public:
  explicit WakeOrHangup(QueueConn* c) noexcept : c_(c) {}
  bool await_ready() const noexcept { return c_->woken || c_->hung_up; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) noexcept {
    CancelState* cs = nullptr;
    if (cancelled_before_suspend(h, cs) || (cs != nullptr && cs->drain_requested())) return false;
    c_->waiter = h;
    cancel_ = cs;
    if (cs != nullptr) cs->install(&WakeOrHangup::cancel_slot, this, WaitKind::input);
    return true;
  }
  void await_resume() noexcept {
    if (cancel_ != nullptr) cancel_->clear();
    c_->waiter = nullptr;
  }

 private:
  static void cancel_slot(void* ctx) noexcept {
    auto* self = static_cast<WakeOrHangup*>(ctx);
    if (auto h = std::exchange(self->c_->waiter, nullptr)) Loop::current()->schedule(h);
  }
  QueueConn* c_;
  CancelState* cancel_ = nullptr;
};

// The stream's reader while a reserve waits: ends when the peer hangs up (pipelined commands arriving meanwhile stay
// queued) or when cancelled, and then resumes the waiting connection. S: Stream or TlsStream.
template <class S>
Task<void> watch_hangup(S* stream, QueueConn* c) {
  for (;;) {
    const std::size_t before = stream->inbound().bytes();
    Status s = co_await stream->wait_more();
    if (!s && s.error() == errc::cancelled) co_return;
    if (!s || stream->inbound().bytes() == before) break;
  }
  c->hung_up = true;
  if (auto h = std::exchange(c->waiter, nullptr)) Loop::current()->schedule(h);
}


// Queues `reply` after the replies already held, waiting for record `seq` (0: none) when there is one.
void hold(QueueConn& c, std::string_view reply, std::uint64_t seq) {
  c.held.append(reply);
  c.held_marks.push_back({c.held.size(), seq});
}

// Sends the held replies once their records are on disk (the core settles them), then holds nothing. Called (when
// something is held: a server without a binlog never holds) before the connection waits for anything (input, a
// job, its turn) or ends, so a held reply waits only for the commands parsed after it in the same receive.
template <class S>
Task<void> release_held(S& stream, QueueServer& server, QueueConn& c) {
  co_await on_core(server, c, CoreOp::settle);
  stream.queue_copy(c.held);
  c.held.clear();
  c.held_marks.clear();
}

// The command loop of one connection. S is Stream, or TlsStream for a TLS listener: both offer the plaintext
// receive queue to parse in place, wait_more, queue_copy and the write waits this loop uses.
template <class S>
Task<void> serve_commands(S& stream, QueueServer& server) {
  QueueConn c;
  c.shard = current_shard();
  co_await on_core(server, c, CoreOp::open);
  beanstalk::RequestParser parser(beanstalk::RequestLimits{server.options().max_job_size});
  TurnBudget turn;  // pipelined commands answered since this connection last let the others run
  RequestBatchTimer batch;  // ringlet_queue_request_batch_duration_seconds: one clock read per batch
  Loop& loop = stream.loop();
  for (;;) {
    beanstalk::ParseResult r = parser.parse(stream.inbound());
    if (r.need_more()) {
      if (!c.held_marks.empty()) co_await release_held(stream, server, c);
      if (batch.due()) batch.end(loop.clock().now_ns(), server.batch_latency());
      // Awaited in this task (which queue_connection awaits with as_input_wait): a graceful stop's drain request
      // ends only input waits, and must find this one.
      const std::size_t before = stream.inbound().bytes();
      Status more = co_await stream.wait_more();
      if (!more || stream.inbound().bytes() <= before) break;
      batch.begin(loop.now_ns());
      continue;
    }
    if (r.error()) {
      const ReplyKind kind = r.code == beanstalk::ParseError::unknown_command ? ReplyKind::unknown_command
                             : r.code == beanstalk::ParseError::job_too_big   ? ReplyKind::job_too_big
                                                                               : ReplyKind::bad_format;
      if (c.held_marks.empty()) {
        stream.queue_copy(beanstalk::reply_word(kind));
        stream.queue_copy("\r\n");
      } else {
        hold(c, std::string(beanstalk::reply_word(kind)).append("\r\n"), 0);
      }
      batch.answered();
      continue;
    }
    c.request = parser.request();
    if (c.request.command == Command::quit) break;
    Slice body;
    bool refused = false;  // EXPECTED_CRLF: the job is dropped, the connection goes on
    if (c.request.command == Command::put) {
      bool gone = false;
      for (;;) {
        beanstalk::PutBody b = beanstalk::take_put_body(stream.inbound(), c.request.bytes);
        if (b.status == beanstalk::PutBody::Status::need_more) {
          if (!c.held_marks.empty()) co_await release_held(stream, server, c);
          const std::size_t before = stream.inbound().bytes();
          Status more = co_await stream.wait_more();
          if (!more || stream.inbound().bytes() <= before) {
            gone = true;
            break;
          }
          continue;
        }
        // A body without its CRLF still goes to the core: it answers EXPECTED_CRLF and counts the put and its id.
        refused = b.status == beanstalk::PutBody::Status::expected_crlf;
        if (!refused) body = std::move(b.body);
        break;
      }
      if (gone) break;
    }
    c.bad_body = refused;
    c.body = body.view();
    co_await on_core(server, c, CoreOp::execute);
    c.body = {};
    body.reset();
    if (c.waiting) {
      // The replies before the reserve do not wait for its job.
      if (!c.held_marks.empty()) co_await release_held(stream, server, c);
      // Waiting for a job is the client's choice, not our latency: the batch ends with the reserve, and its reply
      // opens the next one when the wake-up (or the hang-up) comes.
      batch.answered();
      batch.end(loop.clock().now_ns(), server.batch_latency());
      parser.drop_line();  // do not pin a receive buffer while we wait
      JoinHandle<void> watcher = stream.loop().spawn_joinable(watch_hangup(&stream, &c));
      co_await WakeOrHangup(&c);
      watcher.cancel();
      co_await watcher;  // the stream has one reader: the watcher is gone before we read again
      batch.begin(loop.now_ns());
      if (!c.woken) co_await on_core(server, c, CoreOp::cancel_wait);
      // A wake-up that raced the hang-up has arrived by now (it was sent before the core's answer).
      if (c.woken) {
        stream.queue_copy(c.wake_reply);
      } else {
        stream.queue_copy(beanstalk::reply_word(ReplyKind::timed_out));
        stream.queue_copy("\r\n");
      }
      c.woken = false;
      c.hung_up = false;
      c.waiting = false;
    } else if (c.sync_seq != 0 || !c.held_marks.empty()) {
      hold(c, c.reply, c.sync_seq);
    } else {
      stream.queue_copy(c.reply);
    }
    batch.answered();
    // Fairness: a deep pipeline gets a turn's budget of answers, then the other connections get their turn (as in
    // the HTTP server), so a thousand pipelining clients cannot make one loop turn long (#15).
    if (turn.spend(!stream.inbound().empty())) {
      if (!c.held_marks.empty()) co_await release_held(stream, server, c);
      Status yielded = co_await yield();
      if (!yielded) break;
    }
    if (c.held.size() >= server.options().output_limit) co_await release_held(stream, server, c);
    if (stream.queued_bytes() >= server.options().output_limit) {
      Status room = co_await stream.write(Slice{});
      if (!room) break;
    }
  }
  if (!c.held_marks.empty()) co_await release_held(stream, server, c);
  if (batch.due()) batch.end(loop.clock().now_ns(), server.batch_latency());  // ended by quit or a hang-up
  co_await on_core(server, c, CoreOp::close);
  (void)co_await with_timeout(stream.flush(), kFinalFlushTimeout);
}

}  // namespace

Task<void> queue_connection(Stream stream, TcpServer& tcp) {
  QueueServer& server = *static_cast<QueueServer*>(tcp.user());
  if (!server.allowed(stream)) {
    log_debug("queue: fd {}: refused by --allow", stream.fd());
    co_return;
  }
  const QueueOptions& options = server.options();
  // The command loop is a child task: as_input_wait lets a graceful stop's drain reach its input waits.
  if (options.tls == nullptr) {
    co_await as_input_wait(serve_commands(stream, server));
    co_return;
  }
  TlsStream tls(std::move(stream), *options.tls, TlsRole::server);
  Status handshake = co_await tls.handshake(options.tls_handshake_timeout);
  if (!handshake) {
    log_debug("queue: fd {}: TLS handshake: {} {}", tls.fd(), handshake.error().message(), tls.failure());
    co_return;
  }
  if (options.tls->verifies_peer() && log_level() == LogLevel::debug) {  // peer_subject() formats a certificate name
    log_debug("queue: fd {}: client certificate {}", tls.fd(), tls.peer_subject());
  }
  co_await as_input_wait(serve_commands(tls, server));
  (void)co_await tls.close_notify(kFinalFlushTimeout);
}

Task<void> watch_drain_signal(std::atomic<bool>* draining) {
  auto created = SignalSet::create(*Loop::current(), {SIGUSR1});
  if (!created) {
    log_error("queue: cannot watch SIGUSR1 (drain mode): {}", created.error().message());
    co_return;
  }
  SignalSet signals = std::move(*created);
  for (;;) {
    Result<int> signo = co_await signals.wait();
    if (!signo) co_return;
    if (!draining->exchange(true)) log_info("queue: SIGUSR1: drain mode: put answers DRAINING from now on");
  }
}

}  // namespace ringlet
