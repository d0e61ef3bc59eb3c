// Tests of the binlog (src/ringlet/queue/binlog.hpp): replay restores every state, a torn or corrupt tail is cut
// and reported (never fatal), the directory lock, ids that continue, and compaction keeping the log bounded.
#include "ringlet/queue/binlog.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace ringlet::queue {
namespace {

constexpr std::int64_t s = kSecondNs;
constexpr std::int64_t kWall = 1'800'000'000 * s;  // the wall clock at "now"

class BinlogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ringlet-binlog-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<Binlog> open(QueueState& q, ReplayReport& report, BinlogOptions o = {}) {
    auto r = Binlog::open(dir_, o, q, now, kWall, report);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message());
    return r.ok() ? std::move(*r) : nullptr;
  }
  // Writes the batch and gives back finished segments' tails, as the server does (on its blocking pool).
  void flush(Binlog& log) {
    ASSERT_TRUE(log.write_pending(now, kWall).ok());
    for (const Binlog::Trim& t : log.take_trims()) t.run();
  }
  std::vector<std::filesystem::path> segments() const {
    std::vector<std::filesystem::path> out;
    for (auto& e : std::filesystem::directory_iterator(dir_)) {
      if (e.path().filename().string().rfind("binlog.", 0) == 0) out.push_back(e.path());
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  // Puts and deletes short-lived jobs, one flush each, until a write finds the log too big and appends the live
  // jobs' copies (the first compaction).
  void stream_jobs_until_a_compaction(Binlog& log, QueueState& q, Session& c) {
    const std::string body(1000, 'x');
    while (log.stats().records_migrated == 0) {
      std::uint64_t id = q.put(c, 0, 0, 60, body, now).id;
      ASSERT_TRUE(q.delete_job(c, id));
      flush(log);
      ASSERT_LT(log.stats().current_index, 100u) << "no compaction";
    }
  }

  // A log with these jobs in it (ready, priority 0, TTR 60 s), written and closed, as a server leaves it when it
  // stops. Returns their ids.
  std::vector<std::uint64_t> put_and_close(const std::vector<std::string>& bodies) {
    QueueState q;
    ReplayReport report;
    auto log = open(q, report);
    Session& c = q.open_session();
    std::vector<std::uint64_t> ids;
    for (const std::string& body : bodies) ids.push_back(q.put(c, 0, 0, 60, body, now).id);
    flush(*log);
    return ids;
  }

  std::string dir_;
  std::int64_t now = 1000 * s;
};

TEST_F(BinlogTest, replay_brings_back_every_state_and_ids_continue) {
  {
    QueueState q;
    ReplayReport report;
    auto log = open(q, report);
    Session& c = q.open_session();
    q.use(c, "t");
    std::uint64_t a = q.put(c, 1, 0, 60, "a", now).id;
    std::uint64_t b = q.put(c, 2, 30, 60, "b", now).id;
    std::uint64_t d = q.put(c, 3, 0, 60, "d", now).id;
    std::uint64_t e = q.put(c, 4, 0, 60, "e", now).id;
    q.watch(c, "t");
    ASSERT_EQ(q.reserve_job(c, d, now)->id, d);
    ASSERT_TRUE(q.bury(c, d, 9));
    ASSERT_EQ(q.reserve_job(c, e, now)->id, e);
    ASSERT_TRUE(q.delete_job(c, a));
    (void)b;
    flush(*log);
  }
  now += 10 * s;  // the restart happens later on the monotonic clock; the wall clock says no time passed
  QueueState q;
  ReplayReport report;
  auto log = open(q, report);
  EXPECT_TRUE(report.problems.empty());
  EXPECT_EQ(q.peek(1), nullptr) << "deleted";
  EXPECT_EQ(q.peek(2)->state, JobState::delayed);
  EXPECT_EQ(q.peek(2)->deadline_ns, now + 30 * s) << "the delay is kept in wall-clock time";
  EXPECT_EQ(q.peek(3)->state, JobState::buried);
  EXPECT_EQ(q.peek(3)->priority, 9u);
  EXPECT_EQ(q.peek(4)->state, JobState::ready) << "a reservation comes back ready";
  EXPECT_EQ(q.peek(4)->body, "e");
  EXPECT_EQ(q.peek(4)->tube->name, "t");
  Session& c = q.open_session();
  EXPECT_EQ(q.put(c, 0, 0, 1, "f", now).id, 5u);
}

// Regression (queue_state_fuzz, tests/fuzz/regressions/queue_state_fuzz/reserve-job-of-delayed): a delayed or
// buried job reserved by id and then let go by its connection was ready in memory but came back delayed or buried.
TEST_F(BinlogTest, a_parked_job_reserved_by_id_comes_back_ready_after_a_restart) {
  {
    QueueState q;
    ReplayReport report;
    auto log = open(q, report);
    Session& c = q.open_session();
    std::uint64_t delayed = q.put(c, 1, 30, 60, "d", now).id;
    std::uint64_t buried = q.put(c, 2, 0, 60, "b", now).id;
    ASSERT_EQ(q.reserve_job(c, buried, now)->id, buried);
    ASSERT_TRUE(q.bury(c, buried, 2));
    ASSERT_EQ(q.reserve_job(c, delayed, now)->id, delayed);
    ASSERT_EQ(q.reserve_job(c, buried, now)->id, buried);
    q.close_session(c, now);  // the connection goes: both are ready in memory
    ASSERT_EQ(q.peek(delayed)->state, JobState::ready);
    ASSERT_EQ(q.peek(buried)->state, JobState::ready);
    flush(*log);
  }
  QueueState q;
  ReplayReport report;
  auto log = open(q, report);
  EXPECT_EQ(q.peek(1)->state, JobState::ready);
  EXPECT_EQ(q.peek(2)->state, JobState::ready);
}

TEST_F(BinlogTest, a_torn_tail_is_cut_at_the_last_good_record_and_reported) {
  put_and_close({"first", "second"});
  // Cut the second record in half, as a crash in the middle of a write would.
  auto files = segments();
  ASSERT_EQ(files.size(), 1u);
  std::string last = files.back().string();
  int fd = ::open(last.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  struct stat st{};
  ::fstat(fd, &st);
  ASSERT_EQ(::ftruncate(fd, st.st_size - 4), 0);  // the preallocated rest was trimmed when the log closed
  ::close(fd);
  QueueState q;
  ReplayReport report;
  auto log = open(q, report);
  ASSERT_NE(log, nullptr);
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].find("cut at offset"), std::string::npos) << report.problems[0];
  EXPECT_NE(q.peek(1), nullptr);
  EXPECT_EQ(q.peek(2), nullptr);
}

// Zeroed space after the last record (a preallocated segment, or a crash after the file grew but before the
// records reached the disk) is the end of the log, not damage: it replays exactly, with nothing reported. A record
// whose head reached the disk but whose payload did not (zeros where the bytes should be) is a torn record.
TEST_F(BinlogTest, a_segment_with_a_zero_tail_replays_exactly_and_a_zeroed_payload_is_torn) {
  put_and_close({"first", std::string(4096, 's')});
  const std::string last = segments().back().string();
  struct stat st{};
  ASSERT_EQ(::stat(last.c_str(), &st), 0);
  const off_t records_end = st.st_size;  // the log trims the preallocated rest when it closes
  ASSERT_EQ(::truncate(last.c_str(), records_end + 1024 * 1024), 0);  // a zero tail, read back as zeros
  {
    QueueState q;
    ReplayReport report;
    auto log = open(q, report);
    ASSERT_NE(log, nullptr);
    EXPECT_TRUE(report.problems.empty()) << report.problems[0];
    EXPECT_EQ(report.records, 2u);
    EXPECT_EQ(q.peek(1)->body, "first");
    EXPECT_EQ(q.peek(2)->body, std::string(4096, 's'));
    ASSERT_EQ(::stat(last.c_str(), &st), 0);
    EXPECT_EQ(st.st_size, records_end) << "the zero tail is trimmed";
  }
  // Zero the second record's payload but keep its head (length and checksum): torn, cut, reported.
  const off_t second_payload = records_end - 4096 - 60;  // somewhere inside the second record's payload
  const std::string zeros(static_cast<std::size_t>(records_end - second_payload), '\0');
  int fd = ::open(last.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, zeros.data(), zeros.size(), second_payload), static_cast<ssize_t>(zeros.size()));
  ASSERT_EQ(::ftruncate(fd, records_end + 64 * 1024), 0);
  ::close(fd);
  QueueState q;
  ReplayReport report;
  auto log = open(q, report);
  ASSERT_NE(log, nullptr);
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].find("fails its checksum"), std::string::npos) << report.problems[0];
  EXPECT_EQ(q.peek(1)->body, "first");
  EXPECT_EQ(q.peek(2), nullptr);
}

TEST_F(BinlogTest, a_bad_checksum_ends_the_segment_without_failing_the_start) {
  put_and_close({"first", "second"});
  std::string last = segments().back().string();
  int fd = ::open(last.c_str(), O_RDWR);
  struct stat st{};
  ::fstat(fd, &st);
  char x = 'X';
  ASSERT_EQ(::pwrite(fd, &x, 1, st.st_size - 2), 1);  // a byte of the last body
  ::close(fd);
  QueueState q;
  ReplayReport report;
  auto log = open(q, report);
  ASSERT_NE(log, nullptr);
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].find("checksum"), std::string::npos);
  EXPECT_EQ(q.peek(1)->body, "first");
  EXPECT_EQ(q.peek(2), nullptr);
}

TEST_F(BinlogTest, one_server_per_directory) {
  QueueState q1;
  ReplayReport r1;
  auto first = open(q1, r1);
  QueueState q2;
  ReplayReport r2;
  auto second = Binlog::open(dir_, {}, q2, now, kWall, r2);
  EXPECT_FALSE(second.ok());
}

// Small segments for the compaction tests, and the few long-lived (delayed) jobs their short-lived streams pass by.
BinlogOptions compaction_options() {
  BinlogOptions o;
  o.segment_size = 64 * 1024;  // raised to the floor the largest job needs
  o.max_job_size = 1024;
  return o;
}

void put_long_lived_jobs(QueueState& q, Session& c, std::int64_t now) {
  for (int i = 0; i < 10; ++i) q.put(c, 0, 1000, 60, std::string(500, 'L'), now);
}

TEST_F(BinlogTest, compaction_keeps_the_log_a_small_multiple_of_the_live_jobs) {
  const BinlogOptions o = compaction_options();
  QueueState q;
  ReplayReport report;
  auto log = open(q, report, o);
  Session& c = q.open_session();
  // A few long-lived jobs, and a stream of short-lived ones through them.
  put_long_lived_jobs(q, c, now);
  const std::string body(1000, 'x');
  for (int i = 0; i < 20000; ++i) {
    std::uint64_t id = q.put(c, 0, 0, 60, body, now).id;
    ASSERT_TRUE(q.delete_job(c, id));
    if (i % 50 == 0) {
      flush(*log);
      log->remove_compacted();
    }
  }
  flush(*log);
  log->remove_compacted();
  BinlogStats st = log->stats();
  const std::uint64_t segment = st.segment_size;
  std::uint64_t on_disk = 0;
  for (auto& f : segments()) on_disk += std::filesystem::file_size(f);
  EXPECT_GT(st.records_migrated, 0u);
  EXPECT_LE(on_disk, 4 * segment) << "20 MB written, 5 KB live: the log must not keep the dead records";
  EXPECT_LE(st.dead_bytes, 2 * st.live_bytes + 2 * segment);
  log.reset();
  QueueState back;
  ReplayReport r2;
  auto again = open(back, r2, o);
  EXPECT_TRUE(r2.problems.empty());
  EXPECT_EQ(back.job_count(), 10u);
}

// With --fsync always two batches may be syncing at once: a compacted segment may only go once the batch holding
// its copies is synced, not when an earlier batch's sync ends.
TEST_F(BinlogTest, a_compacted_segment_stays_until_the_batch_with_its_copies_is_synced) {
  const BinlogOptions o = compaction_options();
  QueueState q;
  ReplayReport report;
  auto log = open(q, report, o);
  Session& c = q.open_session();
  put_long_lived_jobs(q, c, now);
  ASSERT_NO_FATAL_FAILURE(stream_jobs_until_a_compaction(*log, q, c));
  const std::uint64_t oldest = log->stats().oldest_index;
  const std::uint64_t before = log->written();
  flush(*log);  // writes the copies: their batch ends at written()
  ASSERT_GT(log->written(), before);
  log->remove_compacted(before);  // an earlier batch's sync: the copies are not known to be on disk
  EXPECT_EQ(log->stats().oldest_index, oldest);
  log->remove_compacted(log->written());
  EXPECT_GT(log->stats().oldest_index, oldest);
}

// The last close of a removed 10 MiB segment frees its blocks (4-8 ms on the project's VM): the segment is unlinked
// at once, in order, and its descriptor is handed to the caller to close off the loop (fsync8, issue 11).
TEST_F(BinlogTest, a_removed_segment_is_unlinked_at_once_and_its_descriptor_left_to_the_caller) {
  const BinlogOptions o = compaction_options();
  QueueState q;
  ReplayReport report;
  auto log = open(q, report, o);
  Session& c = q.open_session();
  put_long_lived_jobs(q, c, now);
  ASSERT_NO_FATAL_FAILURE(stream_jobs_until_a_compaction(*log, q, c));
  const std::size_t files_before = segments().size();
  EXPECT_TRUE(log->take_retired().empty());
  flush(*log);
  log->remove_compacted(log->written());
  EXPECT_EQ(segments().size(), files_before - 1);
  std::vector<int> retired = log->take_retired();
  ASSERT_EQ(retired.size(), 1u);
  struct stat st{};
  ASSERT_EQ(::fstat(retired[0], &st), 0) << "still open: closing it is the caller's";
  EXPECT_EQ(st.st_nlink, 0u);
  EXPECT_TRUE(log->take_retired().empty());
  ::close(retired[0]);
}

// A segment roll used to wait on the loop for the new header's fdatasync and the directory's fsync (0.2-5 ms each on
// the project's VM): now the batch that follows the roll carries both, so no acknowledged record can be in a segment
// whose header or name might be lost (fsync9, issue 11).
TEST_F(BinlogTest, the_batch_after_a_segment_start_syncs_the_new_file_and_the_directory) {
  const BinlogOptions o = compaction_options();
  QueueState q;
  ReplayReport report;
  auto log = open(q, report, o);
  Session& c = q.open_session();
  struct stat dir_st{};
  ASSERT_EQ(::stat(dir_.c_str(), &dir_st), 0);
  auto names_the_directory = [&](int fd) {
    struct stat st{};
    return ::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && st.st_ino == dir_st.st_ino;
  };
  auto first = log->write_pending(now, kWall);  // nothing appended yet: the start-up segment and the directory
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(std::any_of(first->begin(), first->end(), names_the_directory)) << "the first segment's name";
  const std::uint64_t segment = log->stats().current_index;
  const std::string body(1000, 'x');
  for (int i = 0; i < 1000 && log->stats().current_index == segment; ++i) {
    ASSERT_TRUE(log->room_for_put(c.used->name.size(), body.size()));
    q.put(c, 0, 0, 60, body, now);
    if (log->stats().current_index != segment) break;
    auto fds = log->write_pending(now, kWall);
    ASSERT_TRUE(fds.ok());
    EXPECT_EQ(fds->size(), 1u) << "a batch inside one segment syncs that segment only";
    EXPECT_FALSE(std::any_of(fds->begin(), fds->end(), names_the_directory));
  }
  ASSERT_GT(log->stats().current_index, segment) << "no roll";
  auto rolled = log->write_pending(now, kWall);
  ASSERT_TRUE(rolled.ok());
  EXPECT_TRUE(std::any_of(rolled->begin(), rolled->end(), names_the_directory)) << "the new segment's name";
  const std::string new_path = segments().back().string();
  struct stat new_st{};
  ASSERT_EQ(::stat(new_path.c_str(), &new_st), 0);
  EXPECT_TRUE(std::any_of(rolled->begin(), rolled->end(), [&](int fd) {
    struct stat st{};
    return ::fstat(fd, &st) == 0 && st.st_ino == new_st.st_ino;
  })) << "the new segment's header";
  auto after = log->write_pending(now, kWall);
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(std::any_of(after->begin(), after->end(), names_the_directory)) << "once is enough";
}

// The ftruncate that gives back a finished segment's preallocated rest frees blocks (0.2-5 ms on the project's VM):
// the log leaves it to the caller, on a descriptor of its own (fsync9, issue 11).
TEST_F(BinlogTest, a_finished_segments_preallocated_rest_is_left_to_the_caller) {
  const BinlogOptions o = compaction_options();
  QueueState q;
  ReplayReport report;
  auto log = open(q, report, o);
  Session& c = q.open_session();
  const std::uint64_t segment = log->stats().current_index;
  const std::string body(1000, 'x');
  while (log->stats().current_index == segment) {
    ASSERT_TRUE(log->room_for_put(c.used->name.size(), body.size()));
    q.put(c, 0, 0, 60, body, now);
  }
  ASSERT_TRUE(log->write_pending(now, kWall).ok());
  const std::string finished = segments().front().string();
  struct stat st{};
  ASSERT_EQ(::stat(finished.c_str(), &st), 0);
  EXPECT_EQ(static_cast<std::uint64_t>(st.st_size), log->stats().segment_size) << "not trimmed on the caller's turn";
  std::vector<Binlog::Trim> trims = log->take_trims();
  ASSERT_EQ(trims.size(), 1u);
  for (const Binlog::Trim& t : trims) t.run();
  ASSERT_EQ(::stat(finished.c_str(), &st), 0);
  EXPECT_LT(static_cast<std::uint64_t>(st.st_size), log->stats().segment_size - kHeadroomBytes);
  EXPECT_TRUE(log->take_trims().empty());
  ASSERT_TRUE(log->write_pending(now, kWall).ok());
  EXPECT_TRUE(log->take_trims().empty()) << "each tail is given back once";
}

// A crash after a segment file was created but before the sync that makes its header durable leaves a last segment
// of zeros (or an empty file). Nothing in it was acknowledged: replay removes it and the server starts (before, the
// new segment's name collided with it and the start failed).
TEST_F(BinlogTest, a_last_segment_whose_header_never_reached_the_disk_is_removed_at_replay) {
  const std::uint64_t id = put_and_close({"kept"})[0];
  for (const off_t size : {off_t{0}, off_t{64 * 1024}}) {
    std::string name = segments().back().filename().string();  // binlog.<seq>: the next seq, zero-filled
    const std::uint64_t seq = std::stoull(name.substr(7)) + 1;
    char next[64];
    std::snprintf(next, sizeof next, "%s/binlog.%020llu", dir_.c_str(), static_cast<unsigned long long>(seq));
    int fd = ::open(next, O_RDWR | O_CREAT | O_EXCL, 0640);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, size), 0);
    ::close(fd);
    QueueState q;
    ReplayReport report;
    auto log = open(q, report);
    ASSERT_NE(log, nullptr) << "size " << size;
    ASSERT_EQ(report.problems.size(), 1u);
    EXPECT_NE(report.problems[0].find("cut short"), std::string::npos) << report.problems[0];
    ASSERT_NE(q.peek(id), nullptr);
    EXPECT_EQ(q.peek(id)->body, "kept");
    flush(*log);
  }
}

// A last segment with a damaged (not zero) header is left for a human, and the new segment goes above it instead of
// colliding with its name (before, the start failed with EEXIST).
TEST_F(BinlogTest, a_last_segment_with_a_damaged_header_is_skipped_and_the_log_starts_above_it) {
  put_and_close({"kept"});
  const std::string damaged = dir_ + "/binlog.00000000000000000002";
  int fd = ::open(damaged.c_str(), O_RDWR | O_CREAT | O_EXCL, 0640);
  ASSERT_GE(fd, 0);
  const std::string garbage(64, 'g');
  ASSERT_EQ(::write(fd, garbage.data(), garbage.size()), static_cast<ssize_t>(garbage.size()));
  ::close(fd);
  QueueState q;
  ReplayReport report;
  auto log = open(q, report);
  ASSERT_NE(log, nullptr);
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].find("bad header"), std::string::npos) << report.problems[0];
  EXPECT_EQ(q.job_count(), 1u);
  EXPECT_EQ(log->stats().current_index, 3u);
  EXPECT_TRUE(std::filesystem::exists(damaged)) << "left for a human";
}

// A small tmpfs stands for a full disk (skipped where mounting is not allowed).
TEST_F(BinlogTest, a_full_disk_refuses_puts_and_keeps_every_acknowledged_change) {
  if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=1m") != 0) GTEST_SKIP() << "cannot mount a tmpfs here";
  struct Unmount {
    std::string dir;
    ~Unmount() { ::umount2(dir.c_str(), MNT_DETACH); }
  } unmount{dir_};
  BinlogOptions o;
  o.segment_size = 300 * 1024;
  o.max_job_size = 1024;
  std::vector<std::uint64_t> acked;
  {
    QueueState q;
    ReplayReport report;
    auto log = open(q, report, o);
    ASSERT_NE(log, nullptr);
    Session& c = q.open_session();
    const std::string body(1000, 'b');
    bool refused = false;
    for (int i = 0; i < 5000 && !refused; ++i) {
      if (!log->room_for_put(c.used->name.size(), body.size())) {
        refused = true;
        break;
      }
      acked.push_back(q.put(c, 0, 0, 60, body, now).id);
      flush(*log);
    }
    ASSERT_TRUE(refused) << "1 MiB never filled up";
    ASSERT_GT(acked.size(), 100u);
    // Deletes of acknowledged jobs still reach the disk (the headroom).
    for (std::size_t i = 0; i < 50; ++i) ASSERT_TRUE(q.delete_job(c, acked[i]));
    flush(*log);
    EXPECT_FALSE(log->failed());
  }
  // Closing gave back the current segment's preallocated rest: fill the disk up again, all but 64 KiB.
  {
    const std::string filler_path = dir_ + "/filler";
    int fd = ::open(filler_path.c_str(), O_WRONLY | O_CREAT, 0600);
    ASSERT_GE(fd, 0);
    const std::string chunk(64 * 1024, 'f');
    off_t size = 0;
    for (;;) {
      ssize_t w = ::write(fd, chunk.data(), chunk.size());
      if (w <= 0) break;
      size += w;
    }
    ASSERT_EQ(::ftruncate(fd, std::max<off_t>(0, size - 64 * 1024)), 0);
    ::close(fd);
  }
  // A restart on the full disk comes up, with every acknowledged change, and refuses puts.
  QueueState q;
  ReplayReport report;
  auto log = open(q, report, o);
  ASSERT_NE(log, nullptr);
  EXPECT_TRUE(report.problems.empty()) << report.problems[0];
  EXPECT_EQ(q.job_count(), acked.size() - 50);
  for (std::size_t i = 0; i < acked.size(); ++i) EXPECT_EQ(q.peek(acked[i]) != nullptr, i >= 50) << acked[i];
  Session& c = q.open_session();
  EXPECT_FALSE(log->room_for_put(c.used->name.size(), 1000));
  ASSERT_TRUE(q.delete_job(c, acked[60]));
  flush(*log);
  log.reset();
  QueueState again;
  ReplayReport r2;
  auto third = open(again, r2, o);
  EXPECT_EQ(again.peek(acked[60]), nullptr) << "a delete logged on the full disk holds";
}

}  // namespace
}  // namespace ringlet::queue
