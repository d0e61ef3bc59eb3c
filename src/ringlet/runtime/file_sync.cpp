// file_sync.cpp — sync_file_data: OpKind::fdatasync on io_uring, the blocking pool (fdatasync_all) on epoll.
#include "ringlet/runtime/file_sync.hpp"

#include <unistd.h>

#include <cerrno>

#include "ringlet/runtime/blocking_pool.hpp"
#include "ringlet/runtime/clock.hpp"
#include "ringlet/runtime/io_awaitable.hpp"

namespace ringlet {
namespace {

// One fdatasync op; notes when the kernel's completion was reaped, which can be well before the task resumes when
// the loop has a long turn of ready tasks to run first.
class [[nodiscard]] FdatasyncAwaitable : public IoAwaitable {
 public:
  FdatasyncAwaitable(Loop& loop, IoHandle& io) noexcept : IoAwaitable(loop) {
    kind = OpKind::fdatasync;
    this->io = &io;
    on_complete = &FdatasyncAwaitable::completed;
  }
  std::int64_t completed_ns = 0;

 private:
  static void completed(Operation& op, int res, std::uint32_t flags) noexcept {
    static_cast<FdatasyncAwaitable&>(op).completed_ns = MonotonicClock{}.now_ns();
    IoAwaitable::complete(op, res, flags);
  }
};

Task<Result<FileSyncOutcome>> sync_in_kernel(Loop& loop, std::vector<int> fds) {
  FileSyncOutcome out;
  for (int fd : fds) {
    IoHandle io;
    io.fd = fd;
    FdatasyncAwaitable op(loop, io);
    const std::int64_t begin = MonotonicClock{}.now_ns();
    const int r = co_await op;
    if (r == -ECANCELED) co_return errc::cancelled;
    out.sync_ns += op.completed_ns - begin;
    if (r < 0 && out.error == 0) out.error = -r;
  }
  co_return out;
}

Task<Result<FileSyncOutcome>> sync_on_pool(std::vector<int> fds) {
  auto work = [list = std::move(fds)] {
    FileSyncOutcome out;
    const std::int64_t begin = MonotonicClock{}.now_ns();
    out.error = fdatasync_all(list);
    out.sync_ns = MonotonicClock{}.now_ns() - begin;
    return out;
  };
  co_return co_await default_blocking_pool().run(std::move(work));
}

}  // namespace

int fdatasync_all(const std::vector<int>& fds) noexcept {
  int error = 0;
  for (int fd : fds) {
    if (::fdatasync(fd) != 0 && error == 0) error = errno;
  }
  return error;
}

void FileSyncOp::start(const std::vector<int>& fds) {
  RINGLET_ASSERT(!fds.empty() && left_ == 0 && loop_->backend().syncs_files());
  count_ = fds.size();
  left_ = count_;
  parts_ = std::make_unique<Part[]>(count_);
  begin_ns_ = MonotonicClock{}.now_ns();
  for (std::size_t i = 0; i < count_; ++i) {
    Part& p = parts_[i];
    p.owner = this;
    p.handle.fd = fds[i];
    p.kind = OpKind::fdatasync;
    p.io = &p.handle;
    p.on_complete = &FileSyncOp::part_done;
    // io_uring never finishes a file sync inline (Backend::submit's contract): every part ends in part_done.
    if (loop_->backend().submit(p)) fatal("io_uring completed an fdatasync inline");
  }
}

void FileSyncOp::part_done(Operation& op, int result, std::uint32_t) noexcept {
  auto& part = static_cast<Part&>(op);
  FileSyncOp& self = *part.owner;
  part.result = result;
  if (--self.left_ != 0) return;
  FileSyncOutcome out;
  out.sync_ns = MonotonicClock{}.now_ns() - self.begin_ns_;
  for (std::size_t i = 0; i < self.count_ && out.error == 0; ++i) out.error = -self.parts_[i].result;
  self.done_(self, out);  // may destroy self
}

Task<Result<FileSyncOutcome>> sync_file_data(Loop& loop, std::vector<int> fds) {
  if (loop.backend().syncs_files()) co_return co_await sync_in_kernel(loop, std::move(fds));
  co_return co_await sync_on_pool(std::move(fds));
}

}  // namespace ringlet
