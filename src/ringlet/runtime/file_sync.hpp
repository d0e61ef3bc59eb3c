// file_sync.hpp — fdatasync(2) of files from a loop without blocking it, on both backends. Core-local.
//
// io_uring: one IORING_OP_FSYNC with IORING_FSYNC_DATASYNC per file (OpKind::fdatasync). The kernel runs it in an
// io-wq worker of this process and the completion comes back on the loop's ring with the sockets' completions: no
// thread of ours, no condition variable to signal on the way out and no eventfd wake-up on the way back. epoll has no
// asynchronous file sync, so there the syncs run on the blocking pool (one hand-off to a pool thread and one
// Loop::post back per call).
//
//   Result<FileSyncOutcome> r = co_await sync_file_data(loop, fds);   // fds stay open until it returns
//   int error = fdatasync_all(fds);                                    // the same, blocking this thread
//
// Contract: the files are synced one after the other, each once; the call completes when the last has finished
// (never inline on io_uring; on epoll after the pool thread's hand-back). A failed sync does not stop the others:
// `error` is the first errno (0: every file's data is on disk). errc::cancelled: the task was cancelled before the
// syncs were done; a sync already started cannot be stopped (io_uring waits for its end, the pool lets it finish
// on its thread and drops the result), so after a cancel nothing is known of what reached the disk.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "ringlet/base/result.hpp"
#include "ringlet/runtime/loop.hpp"
#include "ringlet/runtime/task.hpp"

namespace ringlet {

struct FileSyncOutcome {
  int error = 0;            // the first failed sync's errno; 0: all succeeded
  std::int64_t sync_ns = 0;  // the syncs' own time: from submission to the kernel's completion (io_uring), or the
                             // fdatasync calls on the pool thread (epoll); neither counts the loop's turn after it
};

Task<Result<FileSyncOutcome>> sync_file_data(Loop& loop, std::vector<int> fds);

// The same syncs for a caller that is not a task, io_uring only (Backend::syncs_files()): the group commit's. start()
// puts one fdatasync per file on the ring at once (the kernel runs them side by side on io-wq workers) and `done`
// is called once, from the loop's reaping of the last completion (phase 1), never inline. So the ops reach the kernel
// in the phase-7 submit of the turn that started them, and the tasks `done` schedules resume in phase 4 of the turn
// that reaped the end. A task that awaits sync_file_data costs a turn at each end when it is spawned from a turn-end
// hook: it starts (and queues its op) in the next turn's phase 4, after every woken connection, and the tasks its end
// schedules run a turn after it resumes (docs/design/queue.md, "A sync without a turn at either end").
// Lifetime: the object stays alive and unmoved from start() until `done` has been called; `done` may destroy it.
// No cancel: a started fdatasync cannot be stopped anyway; a loop that stops waits for it (a pending operation).
// outcome.sync_ns: from start() to the reaping of the last completion.
class FileSyncOp {
 public:
  using DoneFn = void (*)(FileSyncOp& op, FileSyncOutcome outcome) noexcept;
  FileSyncOp(Loop& loop, DoneFn done) noexcept : loop_(&loop), done_(done) {}
  FileSyncOp(const FileSyncOp&) = delete;
  FileSyncOp& operator=(const FileSyncOp&) = delete;

  // `fds` not empty, each open until `done`.
  void start(const std::vector<int>& fds);

 private:
  struct Part : Operation {
    FileSyncOp* owner = nullptr;
    IoHandle handle;  // Operation::result holds the part's result once it completed
  };
  static void part_done(Operation& op, int result, std::uint32_t flags) noexcept;

  Loop* loop_;
  DoneFn done_;
  std::unique_ptr<Part[]> parts_;
  std::size_t count_ = 0;
  std::size_t left_ = 0;
  std::int64_t begin_ns_ = 0;
};

// fdatasync(2) of each file in turn, blocking the calling thread: the pool thread's side of sync_file_data on
// epoll, and the last sync of a stopping server, which may block. Every file is synced even after a failure; returns
// the first failed call's errno, 0 when every file's data is on disk.
int fdatasync_all(const std::vector<int>& fds) noexcept;

}  // namespace ringlet
