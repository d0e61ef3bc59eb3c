// file_sync_test.cpp — sync_file_data on both backends: every file is synced and the call reports success, a file
// that cannot be synced reports its errno without stopping the others, a cancelled task syncs nothing, and io_uring
// runs the syncs on its ring (no pool thread); FileSyncOp (io_uring) ends in the reaping phase, so what its end
// schedules runs in that same turn. Ends with the fixture's clean-shutdown checks.
#include "ringlet/runtime/file_sync.hpp"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "support/loop_fixture.hpp"

namespace ringlet {
namespace {

using testing::LoopTest;

// A written, not yet synced temporary file, removed at the end.
struct TempFile {
  int fd = -1;
  TempFile() {
    char path[] = "/tmp/ringlet-file-sync-XXXXXX";
    fd = ::mkstemp(path);
    ::unlink(path);
    const std::string bytes(4096, 'x');
    EXPECT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  ~TempFile() { ::close(fd); }
};

Task<Result<FileSyncOutcome>> sync(Loop* loop, std::vector<int> fds) {
  co_return co_await sync_file_data(*loop, std::move(fds));
}

using FileSyncTest = LoopTest;

TEST_P(FileSyncTest, every_file_is_synced_and_the_call_reports_success) {
  TempFile a;
  TempFile b;
  const std::uint64_t completions_before = loop().backend().stats().completions;
  Result<FileSyncOutcome> r = run(sync(&loop(), {a.fd, b.fd}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->error, 0);
  EXPECT_GT(r->sync_ns, 0);
  if (GetParam() == BackendKind::uring) {
    // On the ring: one completion per file, and no pool thread's hand-back through the wake-up eventfd (which
    // would be a third).
    EXPECT_TRUE(loop().backend().syncs_files());
    EXPECT_EQ(loop().backend().stats().completions - completions_before, 2u);
  }
}

TEST_P(FileSyncTest, a_file_that_cannot_be_synced_reports_its_errno_and_the_others_are_still_synced) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  TempFile good;
  // fdatasync of a pipe is EINVAL on both paths.
  Result<FileSyncOutcome> r = run(sync(&loop(), {pipe_fds[0], good.fd}));
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->error, EINVAL);
}

Task<Result<FileSyncOutcome>> join(JoinHandle<Result<FileSyncOutcome>> h) { co_return co_await h; }

TEST_P(FileSyncTest, a_task_cancelled_before_it_syncs_reports_cancelled) {
  TempFile a;
  auto task = loop().spawn_joinable(sync(&loop(), {a.fd}));
  task.cancel();
  Result<FileSyncOutcome> r = run(join(std::move(task)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), errc::cancelled);
}

// FileSyncOp's end, as the group commit uses it: the loop iteration that reaped the last sync, and the task `done`
// woke, which must resume in that same iteration.
struct SyncEnd : FileSyncOp {
  explicit SyncEnd(Loop& l) : FileSyncOp(l, &SyncEnd::ended), loop(&l) {}
  static void ended(FileSyncOp& op, FileSyncOutcome outcome) noexcept {
    auto& self = static_cast<SyncEnd&>(op);
    self.outcome = outcome;
    self.ends += 1;
    self.ended_in = self.loop->stats().iterations;
    if (self.waiter) self.loop->schedule(std::exchange(self.waiter, nullptr));
  }
  bool await_ready() const noexcept { return ends != 0; }
  void await_suspend(std::coroutine_handle<> h) noexcept { waiter = h; }
  std::uint64_t await_resume() const noexcept { return loop->stats().iterations; }

  Loop* loop;
  FileSyncOutcome outcome;
  int ends = 0;
  std::uint64_t ended_in = 0;
  std::coroutine_handle<> waiter;
};

Task<std::uint64_t> wait_for_end(SyncEnd* end) { co_return co_await *end; }

TEST_P(FileSyncTest, a_file_sync_op_ends_in_the_reaping_phase_and_what_it_wakes_resumes_in_that_turn_issue_11) {
  if (!loop().backend().syncs_files()) GTEST_SKIP() << "FileSyncOp is io_uring's (epoll syncs on the blocking pool)";
  TempFile a;
  TempFile b;
  SyncEnd end(loop());
  end.start({a.fd, b.fd});
  const std::uint64_t resumed_in = run(wait_for_end(&end));
  EXPECT_EQ(end.ends, 1);
  EXPECT_EQ(end.outcome.error, 0);
  EXPECT_GT(end.outcome.sync_ns, 0);
  // The group commit's replies: resumed in the turn whose reaping saw the sync end, not one later.
  EXPECT_EQ(resumed_in, end.ended_in);
}

TEST_P(FileSyncTest, a_file_sync_op_reports_the_first_files_errno_and_still_syncs_the_others_issue_11) {
  if (!loop().backend().syncs_files()) GTEST_SKIP() << "FileSyncOp is io_uring's (epoll syncs on the blocking pool)";
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  TempFile good;
  const std::uint64_t completions_before = loop().backend().stats().completions;
  SyncEnd end(loop());
  end.start({good.fd, pipe_fds[0]});
  run(wait_for_end(&end));
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  EXPECT_EQ(end.ends, 1);
  EXPECT_EQ(end.outcome.error, EINVAL);
  EXPECT_EQ(loop().backend().stats().completions - completions_before, 2u);
}

RINGLET_BOTH_BACKENDS(FileSyncTest);

// The blocking form needs no loop: the pool's side of sync_file_data on epoll and a stopping queue's last sync.
TEST(FdatasyncAllTest, every_file_is_synced_and_the_first_error_is_reported) {
  TempFile a;
  TempFile b;
  EXPECT_EQ(fdatasync_all({a.fd, b.fd}), 0);
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  EXPECT_EQ(fdatasync_all({a.fd, pipe_fds[0], -1, b.fd}), EINVAL);  // the pipe's EINVAL, not the -1's EBADF
  EXPECT_EQ(fdatasync_all({-1, pipe_fds[0]}), EBADF);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

}  // namespace
}  // namespace ringlet
