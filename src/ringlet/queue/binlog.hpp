// binlog.hpp — durability for the queue: an append-only log of job records in segment files, replayed at start-up.
// Core-local (the shard that owns the QueueState). Does file I/O but never waits on the loop: the server decides
// when to write (write_pending, on the loop thread: page-cache writes) and when to sync (the descriptors it
// returns, through runtime/file_sync.hpp: on the ring or the blocking pool) — that split is the group commit of
// docs/design/queue.md.
//
// On disk (DIR/binlog.<seq>, seq from 1, 20 digits; DIR/lock held with flock while a server runs):
//   segment header, 32 bytes:  "RLQBINLG" | u32 version | u32 header size | u64 segment seq | u64 next job id
//   records, back to back:     u32 payload length | u32 CRC-32C of the payload | payload
//   payload, little-endian:    u8 kind (1: job, 2: delete) | u64 id, then for a job:
//                              u8 state | u32 priority | i64 delay ns | i64 ttr ns | i64 created (wall clock ns) |
//                              i64 deadline (wall clock ns; delayed jobs) | u32 reserves, timeouts, releases, buries,
//                              kicks | u8 tube length | tube | u32 body length | body
//   A segment is preallocated (fallocate) to its size, so the end of the records is the first zero length
//   (and checksum).
// Every change of a job writes the whole job (a release after a put is a second job record; the newer wins), so a
// job's state is always its latest record, and compaction only has to copy latest records forward.
//
// CHECKLIST before changing the format: bump kBinlogVersion; keep reading the old version or refuse it with a clear
// message (open() reports an unknown version and starts no segment over it); update docs/design/queue.md; add a
// replay test with a segment written in the old format.
//
// Replay (open): segments in seq order; a record that is cut short or fails its checksum ends its segment: in the
// last segment the file is truncated there (a torn tail after a crash), in an earlier one the rest of the segment
// is skipped; both are reported, neither is fatal. Reserved jobs were never logged as reserved and come back
// ready; delayed jobs keep their wall-clock deadline (time passes while the server is down); ids continue above
// the highest seen and above every segment's recorded next id. New records always go to a new segment.
//
// Disk full: segments are preallocated, so writes into them do not fail for lack of space. A put is refused
// (room_for_put false: the server answers OUT_OF_MEMORY) when the current segment cannot hold it plus
// kHeadroomBytes and no new segment can be allocated; the headroom keeps deletes, releases and burials of
// acknowledged jobs writable when the disk is full. A server started on a full disk writes into an unallocated
// segment (only what is not a put) and refuses puts until a preallocated segment can be started.
//
// Compaction: a job's latest record is live, everything else is dead. When the log holds more than twice the live
// bytes plus one segment, the oldest segment's live jobs are written again (moved to the current segment) and the
// oldest segment is removed once those copies are durable (remove_compacted after the next sync; its descriptor
// is closed by the caller, take_retired).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ringlet/base/result.hpp"
#include "ringlet/queue/state.hpp"

namespace ringlet::queue {

inline constexpr std::uint32_t kBinlogVersion = 1;
inline constexpr std::uint64_t kDefaultSegmentSize = 10 * 1024 * 1024;  // beanstalkd's -s default
inline constexpr std::uint64_t kHeadroomBytes = 256 * 1024;

enum class FsyncMode : std::uint8_t { always, interval, never };

struct BinlogOptions {
  FsyncMode fsync = FsyncMode::interval;
  std::int64_t fsync_interval_ns = 50'000'000;  // beanstalkd's -f default: 50 ms
  std::uint64_t segment_size = kDefaultSegmentSize;
  std::uint32_t max_job_size = 65535;  // a segment always holds a few of the largest records
};

struct BinlogStats {
  std::uint64_t oldest_index = 0;
  std::uint64_t current_index = 0;
  std::uint64_t records_written = 0;
  std::uint64_t records_migrated = 0;
  std::uint64_t live_bytes = 0;
  std::uint64_t dead_bytes = 0;
  std::uint64_t segments = 0;
  std::uint64_t segment_size = 0;
};

// What replay found, for the start-up log.
struct ReplayReport {
  std::uint64_t segments = 0;
  std::uint64_t records = 0;
  std::uint64_t jobs = 0;
  std::vector<std::string> problems;  // torn tails, bad checksums, unknown versions (each already handled)
};

class Binlog final : public Journal {
 public:
  // Locks `dir` (creating it if needed), replays it into `state` and starts a new segment. mono_now/wall_now: the
  // same instant on the state's clock and on the wall clock (CLOCK_REALTIME), to carry deadlines across restarts.
  static Result<std::unique_ptr<Binlog>> open(const std::string& dir, const BinlogOptions& options, QueueState& state,
                                              std::int64_t mono_now, std::int64_t wall_now, ReplayReport& report);
  ~Binlog();
  Binlog(const Binlog&) = delete;
  Binlog& operator=(const Binlog&) = delete;

  // Journal: append a record to the pending batch.
  void job_written(Job& job) override;
  void job_deleted(Job& job) override;

  // Whether a put of this tube and body can be logged (false: the disk is full; answer OUT_OF_MEMORY).
  bool room_for_put(std::size_t tube_bytes, std::size_t body_bytes);
  // Records appended so far (a sequence number; 0: none) and written to the files so far.
  std::uint64_t appended() const noexcept { return appended_seq_; }
  std::uint64_t written() const noexcept { return written_seq_; }
  bool has_pending() const noexcept { return !pending_.empty(); }
  bool failed() const noexcept { return failed_; }

  // Writes the pending batch to the segment files (page cache) and compacts when due. Returns the descriptors to
  // sync for --fsync always: the segments the batch touched, plus, after a segment start, the new segment and the
  // directory (a record there is durable only once its file's header and name are: start_segment). Updates the
  // clock offset used for deadlines. Finished segments' tails wait in take_trims.
  Result<std::vector<int>> write_pending(std::int64_t mono_now, std::int64_t wall_now);
  // Descriptors of every open segment and of the directory (a timed sync covers whatever was written since the last
  // one, names of new segments included).
  std::vector<int> all_fds() const;
  // Segments whose live jobs have been copied forward: removes those whose copies are on disk, i.e. were written
  // by a write_pending whose batch ended at or before `synced` (a record seq: what the last finished sync covered).
  void remove_compacted(std::uint64_t synced);
  // The same after a sync of everything written so far.
  void remove_compacted() { remove_compacted(written_seq_); }
  // Descriptors of segments remove_compacted has unlinked, for the caller to close where a slow close does not
  // hurt (the server: on the blocking pool). Those not taken are closed by the destructor.
  std::vector<int> take_retired();
  // A finished segment's preallocated rest, to give back where a slow ftruncate does not hurt (the server: on the
  // blocking pool): run() truncates the file to `size` and closes `fd`, a descriptor of its own (a dup).
  struct Trim {
    int fd;
    std::uint64_t size;
    void run() const noexcept;
  };
  std::vector<Trim> take_trims();

  BinlogStats stats() const;
  const std::string& dir() const noexcept { return dir_; }

 private:
  struct Segment {
    int fd = -1;
    std::uint64_t size = 0;        // bytes assigned so far (header included)
    std::uint64_t capacity = 0;    // preallocated size
    std::uint64_t live = 0;        // bytes of records that are their job's latest
    bool preallocated = true;      // false: started on a full disk; puts wait for a segment that is
  };
  struct Chunk {
    std::uint64_t seq;
    std::uint64_t offset;
    std::string bytes;
  };

  Binlog(std::string dir, const BinlogOptions& options, QueueState& state, int lock_fd);
  Status replay(std::int64_t mono_now, std::int64_t wall_now, ReplayReport& report);
  // A new current segment, preallocated. `or_unallocated`: on a full disk, start one anyway (at start-up: the
  // server must come up to let jobs be deleted; puts are refused until a preallocated segment can be started).
  Status start_segment(bool or_unallocated = false);
  // A record of `bytes` (head included) starts at the end of the pending batch, in the current segment (a new one
  // when it is full), with its job's live-byte accounting done: returns the batch buffer, the 8-byte head already
  // appended, for the payload to be appended to; nullptr when no segment can take it (failed()).
  std::string* begin_record(std::uint64_t bytes, Job* job);
  // Fills in the length and checksum of the record whose head is at `head` (the payload is what follows it).
  void end_record(std::string& out, std::size_t head, std::uint64_t bytes);
  void encode_job(const Job& job, std::string& out) const;  // appends the job's payload
  void maybe_compact();
  std::string path_of(std::uint64_t seq) const;

  std::string dir_;
  BinlogOptions options_;
  QueueState* state_;
  int lock_fd_;
  std::map<std::uint64_t, Segment> segments_;
  std::uint64_t current_ = 0;  // seq of the segment new records go to
  struct Removable {
    std::uint64_t segment;
    std::uint64_t batch;  // the last record seq of the batch that wrote its copies
  };
  std::vector<Chunk> pending_;
  std::vector<std::string> spare_;  // cleared chunk buffers of written batches, reused for their capacity
  std::uint64_t appended_seq_ = 0;
  std::uint64_t written_seq_ = 0;
  std::uint64_t records_migrated_ = 0;
  std::vector<std::uint64_t> compacted_;  // copied forward, waiting for the copies to be written
  std::vector<Removable> removable_;      // copies written: remove once their batch is synced
  std::vector<int> retired_;              // descriptors of unlinked segments, not yet closed (take_retired)
  std::vector<Trim> trims_;               // finished segments' tails, not yet given back (take_trims)
  std::vector<std::uint64_t> unsynced_starts_;  // segments started since the last write_pending (start_segment)
  std::uint64_t highest_seq_ = 0;         // the highest segment seq in the directory: new segments go above it
  int dir_fd_ = -1;                       // the directory, synced after a segment start
  std::int64_t wall_minus_mono_ = 0;
  bool failed_ = false;
  bool compacting_ = false;
};

bool parse_fsync_mode(std::string_view text, FsyncMode& mode, std::int64_t& interval_ns);

}  // namespace ringlet::queue
