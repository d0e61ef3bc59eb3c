// blocking_pool.cpp — the pool's threads and the hand-over between a job's two sides.
#include "ringlet/runtime/blocking_pool.hpp"

#include <algorithm>

namespace ringlet {
namespace detail {
namespace {

// A counted reference to a job, copyable because std::function (Loop::post) needs copyable functions.
class JobRef {
 public:
  explicit JobRef(BlockingJob* job) noexcept : job_(job) { job_->add_ref(); }
  JobRef(const JobRef& o) noexcept : JobRef(o.job_) {}
  JobRef& operator=(const JobRef&) = delete;
  ~JobRef() { job_->release(); }
  void operator()() const noexcept { job_->deliver(); }

 private:
  BlockingJob* job_;
};

}  // namespace

void BlockingJob::execute() noexcept {
  run_fn();
  // Posting under the mutex is what makes abandon() safe: once the loop thread has set abandoned_ (and may go on
  // to destroy the loop), no pool thread can still be inside loop_->post().
  std::lock_guard lock(mutex_);
  if (!abandoned_) loop_->post(JobRef(this));
}

void BlockingJob::deliver() noexcept {
  if (abandoned_) return;  // the task left already; the outcome dies with the last reference
  delivered_ = true;
  loop_->schedule(waiter_);
}

bool BlockingJob::leave() noexcept {
  // Delivered: the outcome is in and the task scheduled, so a late cancel changes nothing.
  if (loop_ == nullptr || delivered_ || abandoned_) return false;
  std::lock_guard lock(mutex_);
  abandoned_ = true;
  return true;
}

}  // namespace detail

BlockingPool::BlockingPool(std::size_t threads) {
  threads_.reserve(std::max<std::size_t>(threads, 1));
  for (std::size_t i = 0; i < std::max<std::size_t>(threads, 1); ++i) threads_.emplace_back([this] { work(); });
}

BlockingPool::~BlockingPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void BlockingPool::submit(detail::BlockingJob* job) {
  job->add_ref();
  {
    std::lock_guard lock(mutex_);
    RINGLET_ASSERT(!stopping_);
    job->next = nullptr;
    if (tail_ != nullptr) {
      tail_->next = job;
    } else {
      head_ = job;
    }
    tail_ = job;
  }
  ready_.notify_one();
}

void BlockingPool::work() noexcept {
  for (;;) {
    detail::BlockingJob* job;
    {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [this] { return head_ != nullptr || stopping_; });
      if (head_ == nullptr) return;  // stopping, and the queue is drained
      job = head_;
      head_ = job->next;
      if (head_ == nullptr) tail_ = nullptr;
    }
    job->execute();
    job->release();
  }
}

BlockingPool& default_blocking_pool() {
  // A function-local static: created by the first caller (C++ guarantees one thread constructs it), destroyed at
  // exit, which runs what is still queued and joins.
  static BlockingPool pool(kDefaultBlockingThreads);
  return pool;
}

}  // namespace ringlet
