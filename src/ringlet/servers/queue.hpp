// queue.hpp — `ringlet queue`: a beanstalkd-compatible work queue (protocol 1.12/1.13) on every shard, with one
// queue state for the whole server (docs/design/queue.md, docs/queue.md).
//
// Who owns what:
//   QueueCore    the queue state (queue/state.hpp), the binlog (queue/binlog.hpp), the timer that drives delays,
//                TTRs and reserve timeouts, and the command table. Lives on shard 0 and is touched only there.
//   QueueServer  one per shard: its TcpServer and the connection handler. A connection on shard 0 calls the core
//                directly; one on another shard sends each parsed command to shard 0 with submit_to and gets the
//                reply bytes back. A reserve that has to wait is answered later by a message from shard 0.
// Core-local: each object is used on the shard that created it; the only cross-shard paths are the submit_to in
// the connection handler and QueueCore's wake-up messages.
#pragma once

#include <array>
#include <atomic>
#include <coroutine>
#include <deque>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ringlet/base/metrics.hpp"
#include "ringlet/net/tcp_server.hpp"
#include "ringlet/net/tls.hpp"
#include "ringlet/proto/beanstalk/command.hpp"
#include "ringlet/proto/beanstalk/reply.hpp"
#include "ringlet/proto/beanstalk/request_parser.hpp"
#include "ringlet/queue/binlog.hpp"
#include "ringlet/queue/state.hpp"
#include "ringlet/runtime/file_sync.hpp"
#include "ringlet/runtime/sync.hpp"
#include "ringlet/runtime/task.hpp"

namespace ringlet {

// An address block for --allow: "10.0.0.0/8", "::1/128", or a single address.
struct Cidr {
  int family = 0;
  std::array<std::uint8_t, 16> bytes{};
  unsigned prefix = 0;

  static Result<Cidr> parse(std::string_view text);
  bool contains(const Address& a) const noexcept;
};

struct QueueOptions {
  ServerOptions server;
  std::uint32_t max_job_size = beanstalk::kDefaultMaxJobSize;
  std::vector<Cidr> allow;  // empty: every address; Unix-socket peers are always allowed (file permissions rule)
  std::string binlog_dir;   // empty: no binlog
  queue::BinlogOptions binlog;
  const std::atomic<bool>* draining = nullptr;  // set by SIGUSR1: put answers DRAINING
  std::size_t output_limit = 256 * 1024;         // queued replies per connection before we wait for the client
  // Set: every listener speaks TLS (net/tls.hpp). --allow is checked before the handshake, so a refused address
  // costs no cryptography; a handshake that takes longer than the timeout (a client that connects and stalls)
  // ends the connection.
  std::shared_ptr<const TlsContext> tls;
  Duration tls_handshake_timeout = std::chrono::seconds(10);
};

// What the core needs from a connection while it runs one of its commands. Lives in the connection's frame, on
// the connection's shard; the core reads and writes it only while the connection waits for the core's answer,
// and a wake-up writes `wake_reply` before the message that tells the connection.
struct QueueConn {
  queue::Session* session = nullptr;
  unsigned shard = 0;
  beanstalk::Request request;
  std::string_view body;   // put: the job's bytes (in the connection shard's receive buffer)
  bool bad_body = false;   // put: the body did not end in CRLF (EXPECTED_CRLF; the id is used up all the same)
  std::string reply;       // the bytes to send
  std::uint64_t sync_seq = 0;  // > 0: send the reply only once the binlog has this record on disk
  // Replies of pipelined commands held until their records are on disk, in order: with --fsync always the next
  // command runs while the previous one's record waits, so a pipeline's records share a sync (docs/design/queue.md,
  // "Group commit"). Each mark is where a reply ends in `held` and the record it waits for (0: none).
  struct HeldMark {
    std::size_t end = 0;
    std::uint64_t seq = 0;
  };
  std::string held;
  std::vector<HeldMark> held_marks;
  bool waiting = false;    // reserve is waiting: the reply comes with the wake-up
  // Wake-up of a waiting reserve, all on the connection's shard except wake_reply (written by the core before the
  // message that sets `woken`).
  std::string wake_reply;
  bool woken = false;
  bool hung_up = false;              // the peer closed (or the stream failed) while the reserve waited
  std::coroutine_handle<> waiter;    // the connection, suspended until woken, hung up, drained or cancelled
};

class QueueCore final : public queue::WaitListener, public std::enable_shared_from_this<QueueCore> {
 public:
  // On shard 0's loop. Opens (and replays) the binlog when options.binlog_dir is set, and starts the group-commit
  // task, which holds a reference: the core lives until that task has ended (cancelled when its loop stops).
  static Result<std::shared_ptr<QueueCore>> create(Loop& loop, const QueueOptions& options);
  ~QueueCore();
  QueueCore(const QueueCore&) = delete;
  QueueCore& operator=(const QueueCore&) = delete;

  unsigned shard() const noexcept { return shard_; }
  void open_session(QueueConn& c);
  void close_session(QueueConn& c);
  // Runs c.request: fills c.reply (and c.sync_seq, c.waiting).
  void execute(QueueConn& c);
  // A waiting connection gives up (its peer left): ends the wait unless a wake-up is already on its way.
  void cancel_wait(QueueConn& c);
  // Waits until the binlog has written (and, with --fsync always, synced) record `seq`. False: it could not.
  Task<bool> durable(std::uint64_t seq);
  // Counts a command that could not be parsed past its name (for stats), and an accepted connection.
  void count_command(beanstalk::Command c) noexcept { ++command_counts_[static_cast<std::size_t>(c)]; }

  void wait_ended(queue::Session& s, queue::WaitEnd end, queue::Job* job) override;
  queue::QueueState& state() noexcept { return state_; }
  // ringlet_queue_*: jobs by state and tube, commands, binlog bytes live and dead, fsync count and latency
  // (docs/operations.md, "Metrics"). On the core's shard.
  void describe_metrics(MetricSet& out);

 private:
  QueueCore(Loop& loop, const QueueOptions& options);
  using Handler = void (*)(QueueCore&, QueueConn&);
  static const std::array<Handler, beanstalk::kCommandCount> kHandlers;

  // The handlers of kHandlers, one per command.
  static void on_put(QueueCore&, QueueConn&);
  static void on_use(QueueCore&, QueueConn&);
  static void on_reserve(QueueCore&, QueueConn&);
  static void on_reserve_job(QueueCore&, QueueConn&);
  static void on_delete(QueueCore&, QueueConn&);
  static void on_release(QueueCore&, QueueConn&);
  static void on_bury(QueueCore&, QueueConn&);
  static void on_touch(QueueCore&, QueueConn&);
  static void on_watch(QueueCore&, QueueConn&);
  static void on_ignore(QueueCore&, QueueConn&);
  static void on_peek(QueueCore&, QueueConn&);
  static void on_kick(QueueCore&, QueueConn&);
  static void on_kick_job(QueueCore&, QueueConn&);
  static void on_stats_job(QueueCore&, QueueConn&);
  static void on_stats_tube(QueueCore&, QueueConn&);
  static void on_stats(QueueCore&, QueueConn&);
  static void on_list(QueueCore&, QueueConn&);
  static void on_pause_tube(QueueCore&, QueueConn&);
  static void on_quit(QueueCore&, QueueConn&);

  std::int64_t now() const noexcept { return loop_->now_ns(); }
  void reply(QueueConn& c, beanstalk::ReplyKind kind);
  void reply_job(QueueConn& c, beanstalk::ReplyKind kind, const queue::Job& job, std::string& out);
  void reply_yaml(QueueConn& c);  // c.reply becomes OK <n> with yaml_ as its body
  void wrote(QueueConn& c);       // a record went to the binlog: the reply waits for it
  void rearm() noexcept;
  static void on_timer(TimerNode* node);
  void deliver_wake(QueueConn& c);
  static Task<void> commit_loop(std::shared_ptr<QueueCore> self);
  // --fsync always: the group commit runs at the end of a turn that appended records, and when a sync finishes.
  static void commit_at_turn_end(void* ctx) noexcept;
  void commit_pending();
  void commit_at_this_turn_end();  // queues commit_at_turn_end once per turn
  void release_synced();  // the replies of the finished syncs at the front of in_flight_, in batch order
  void remove_compacted(std::uint64_t synced);  // Binlog::remove_compacted, the descriptors closed on the pool
  std::size_t syncs_in_flight_limit() const noexcept;
  void start_sync(std::uint64_t batch, std::vector<int> fds);
  static Task<void> sync_batch(std::shared_ptr<QueueCore> self, std::uint64_t batch, std::vector<int> fds);
  struct BatchSync;
  static void batch_synced(FileSyncOp& op, FileSyncOutcome outcome) noexcept;
  void sync_ended(std::uint64_t batch, bool ok);  // a batch's sync finished: its replies go once the earlier ones did
  // Every reply waiting for a record up to `batch` goes out (INTERNAL_ERROR when !ok).
  void release_waiters(std::uint64_t batch, bool ok);
  // fdatasync of `fds` (runtime/file_sync.hpp: on the ring with io_uring, on the blocking pool with epoll), counted
  // and timed for the metrics.
  Task<Result<bool>> sync_files(std::vector<int> fds);
  void count_sync(std::int64_t waited_ns, std::int64_t disk_ns);  // the metrics and the overlap switch, per sync

  struct Timer : TimerNode {
    QueueCore* core;
  };

  Loop* loop_;
  QueueOptions options_;
  unsigned shard_ = 0;
  queue::QueueState state_;
  std::unique_ptr<queue::Binlog> binlog_;
  Timer timer_;
  std::int64_t armed_at_ = queue::kNoDeadline;
  std::uint64_t command_counts_[beanstalk::kCommandCount] = {};
  std::uint64_t fsyncs_ = 0;
  LatencyHistogram fsync_latency_;  // as the commit task waits for it (the loop's turn and the pool's queue included)
  std::int64_t disk_sync_ns_avg_ = 0;  // the fdatasync calls' own time, averaged: how many syncs may overlap
  std::string yaml_;
  std::int64_t started_ns_;
  std::string instance_id_;

  // Group commit (queue/binlog.hpp): connections wait for `done_seq_` to reach their record.
  struct Waiter {
    std::uint64_t seq;
    std::coroutine_handle<> handle;
    bool* ok;
  };
  friend struct DurableAwaitable;
  std::deque<Waiter> waiters_;
  // --fsync always: the batches written and being synced, oldest first (at most kSyncsInFlight).
  struct InFlight {
    std::uint64_t batch;  // the last record seq the batch holds
    bool done;
    bool ok;
  };
  std::deque<InFlight> in_flight_;
  std::uint64_t done_seq_ = 0;
  bool commit_failed_ = false;
  bool commit_queued_ = false;  // commit_at_turn_end is queued for this turn
  bool stopping_ = false;       // the commit task is writing and syncing the rest: start no sync
  Event commit_wanted_;
};

class QueueServer {
 public:
  // `core` lives on shard 0 and outlives this server. `server`: where and how this one listens (options.server, or
  // one of the further --listen addresses).
  QueueServer(Loop& loop, const QueueOptions& options, const ServerOptions& server, QueueCore* core);
  TcpServer& tcp() noexcept { return tcp_; }
  Status listen() { return tcp_.listen(); }
  Task<void> run() { return tcp_.run(); }
  void stop() noexcept { tcp_.stop(); }

  const QueueOptions& options() const noexcept { return *options_; }
  QueueCore& core() noexcept { return *core_; }
  QueueCore* core_ptr() const noexcept { return core_; }
  bool core_is_here() const noexcept;
  bool allowed(const Stream& stream) const;
  // This server's connections' request batches (base/metrics.hpp, RequestBatchTimer), on its shard.
  LatencyHistogram& batch_latency() noexcept { return batch_latency_; }
  // ringlet_queue_request_batch_duration_seconds (docs/operations.md, "Metrics"). On this server's shard.
  void describe_metrics(MetricSet& out) const;

 private:
  const QueueOptions* options_;
  QueueCore* core_;
  LatencyHistogram batch_latency_;
  TcpServer tcp_;
};

// The connection handler (TcpServer::Handler); server.user() is the QueueServer. With options().tls, the same
// command loop runs over a TlsStream after the handshake.
Task<void> queue_connection(Stream stream, TcpServer& server);

// Enters drain mode on SIGUSR1 (the signal must be blocked in every thread first). Runs until cancelled.
Task<void> watch_drain_signal(std::atomic<bool>* draining);

}  // namespace ringlet
