// blocking_pool.hpp — threads for work that would block a loop (DNS lookups, disk, heavy computation).
// Thread-safe: any thread may submit; each result returns to the awaiting task's own loop through Loop::post.
//
//   auto work = [path] { return count_lines(path); };
//   Result<int> n = co_await pool.run(std::move(work));
//
// GCC 12 trap: do not write the lambda inside the co_await expression when it captures anything with a
// destructor (a std::string, a shared_ptr). GCC 12 copies an aggregate temporary (a lambda closure, `Fn{...}`)
// of a co_await expression into the frame bitwise and destroys both copies: a double free. Name it first, as
// above. Lambdas capturing only pointers and numbers are safe either way.
//
// What co_await pool.run(fn) yields, by fn's return type R:  void -> Status;  Result<X> -> Result<X> (not
// nested);  any other X -> Result<X>. errc::cancelled means the task was cancelled (with_timeout turns it into
// errc::timed_out). If fn throws, the exception is caught on the pool thread and rethrown in the task by co_await.
//
// Lifetimes. The job (fn, its outcome, the way back) is one small refcounted object shared by the awaiting task,
// the pool thread and the completion posted to the loop; whoever lets go last frees it. So:
//  - A cancelled wait resumes the task on the next loop iteration with errc::cancelled. fn cannot be interrupted:
//    it runs to its end on the pool thread and its result is discarded, so it must not point into memory the task
//    frees when it leaves (capture by value). A task already cancelled before co_await submits nothing.
//  - fn is destroyed on the pool thread right after it ran; its outcome may be destroyed on either thread.
//  - A wait that was cancelled, or whose frame was destroyed while suspended, detaches the job from the loop:
//    the work may finish after the loop is gone. A job still awaited needs its loop alive (like any operation).
//
// Queue: unbounded FIFO (an intrusive list of the jobs themselves: one allocation per run(), none per queueing).
// Bound it from the caller when needed, e.g. a Semaphore around run(). Destruction runs every queued job to its
// end, then joins the threads; run() on a pool being destroyed is a bug.
#pragma once

#include <atomic>
#include <condition_variable>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "ringlet/runtime/cancel.hpp"
#include "ringlet/runtime/loop.hpp"
#include "ringlet/base/result.hpp"

namespace ringlet {

class BlockingPool;

namespace detail {

// The part of a job the pool and the loop see; BlockingJobOf<F> adds fn and its outcome.
class BlockingJob {
 public:
  BlockingJob(const BlockingJob&) = delete;
  BlockingJob& operator=(const BlockingJob&) = delete;

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Pool thread: runs fn, then sends the job back to its loop unless the wait was cancelled.
  void execute() noexcept;
  // Loop thread (posted): resumes the waiting task, unless it already left.
  void deliver() noexcept;
  // Loop thread, from await_suspend.
  void start(Loop& loop, std::coroutine_handle<> waiter) noexcept {
    loop_ = &loop;
    waiter_ = waiter;
  }
  // Loop thread, the cancel slot: the task leaves now (scheduled); the pool thread will drop the outcome.
  void abandon() noexcept {
    if (leave()) loop_->schedule(waiter_);
  }
  // Loop thread: stop waiting without resuming anyone (the awaitable dies with a frame destroyed while suspended).
  // Returns false when there was no wait to leave (never started, delivered, or left already).
  bool leave() noexcept;
  bool abandoned() const noexcept { return abandoned_; }

  BlockingJob* next = nullptr;  // the pool's queue link

 protected:
  BlockingJob() = default;
  virtual ~BlockingJob() = default;
  virtual void run_fn() noexcept = 0;

 private:
  std::atomic<int> refs_{1};
  std::mutex mutex_;  // orders "post the completion" (pool thread) against "abandon" (loop thread)
  Loop* loop_ = nullptr;
  std::coroutine_handle<> waiter_;
  bool abandoned_ = false;  // written under mutex_ by the loop thread
  bool delivered_ = false;  // loop thread only
};

template <class R>
struct BlockingOutcome {
  using type = Result<R>;
};
template <>
struct BlockingOutcome<void> {
  using type = Status;
};
template <class X>
struct BlockingOutcome<Result<X>> {
  using type = Result<X>;
};

template <class F>
class BlockingJobOf final : public BlockingJob {
 public:
  using R = std::invoke_result_t<F&>;
  static_assert(!std::is_reference_v<R>, "blocking work must return a value, not a reference");

  explicit BlockingJobOf(F fn) : fn_(std::move(fn)) {}

  // Loop thread, after deliver(): the outcome, or the exception fn threw.
  typename BlockingOutcome<R>::type take() {
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
    if constexpr (std::is_void_v<R>) {
      return Status{};
    } else {
      return std::move(*value_);
    }
  }

 private:
  void run_fn() noexcept override {
    try {
      if constexpr (std::is_void_v<R>) {
        (*fn_)();
      } else {
        value_.emplace((*fn_)());
      }
    } catch (...) {
      error_ = std::current_exception();
    }
    fn_.reset();  // captures die here, on the pool thread, whatever happens to the wait
  }

  std::optional<F> fn_;
  std::conditional_t<std::is_void_v<R>, bool, std::optional<R>> value_{};
  std::exception_ptr error_;
};

}  // namespace detail

class BlockingPool {
 public:
  // Awaitable returned by run(); see the file comment for its result.
  template <class F>
  class [[nodiscard]] Run {
    using Job = detail::BlockingJobOf<F>;
    using Out = typename detail::BlockingOutcome<typename Job::R>::type;

   public:
    Run(BlockingPool& pool, Loop& loop, F fn) : pool_(&pool), loop_(&loop), job_(new Job(std::move(fn))) {}
    Run(Run&& o) noexcept
        : pool_(o.pool_), loop_(o.loop_), job_(std::exchange(o.job_, nullptr)), cancel_(o.cancel_) {}
    Run(const Run&) = delete;
    Run& operator=(const Run&) = delete;
    ~Run() {
      if (job_ == nullptr) return;
      (void)job_->leave();
      job_->release();
    }

    bool await_ready() const noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
      CancelState* cs = nullptr;
      if (cancelled_before_suspend(h, cs)) {
        cancelled_ = true;
        return false;
      }
      job_->start(*loop_, h);
      cancel_ = cs;
      if (cs != nullptr) cs->install(&Run::cancel_slot, job_);
      pool_->submit(job_);
      return true;
    }
    Out await_resume() {
      if (cancel_ != nullptr) cancel_->clear();
      if (cancelled_ || job_->abandoned()) return Out{errc::cancelled};
      return job_->take();
    }

   private:
    static void cancel_slot(void* ctx) noexcept { static_cast<Job*>(ctx)->abandon(); }

    BlockingPool* pool_;
    Loop* loop_;
    Job* job_;
    CancelState* cancel_ = nullptr;
    bool cancelled_ = false;
  };

  // Starts `threads` threads (at least one).
  explicit BlockingPool(std::size_t threads);
  // Runs what is queued, then joins the threads.
  ~BlockingPool();
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  std::size_t threads() const noexcept { return threads_.size(); }

  // Runs fn() on a pool thread; the awaiting task resumes on `loop` (its own loop), or on the calling thread's.
  template <class F>
  Run<F> run(Loop& loop, F fn) {
    return Run<F>(*this, loop, std::move(fn));
  }
  template <class F>
  Run<F> run(F fn) {
    return Run<F>(*this, *Loop::current(), std::move(fn));
  }

 private:
  void submit(detail::BlockingJob* job);  // takes one reference for the pool
  void work() noexcept;

  std::mutex mutex_;
  std::condition_variable ready_;
  detail::BlockingJob* head_ = nullptr;
  detail::BlockingJob* tail_ = nullptr;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// The process-wide pool for the runtime's own blocking work (resolve()) and for callers without a pool of their
// own: kDefaultBlockingThreads threads, created on first use (thread-safe), joined at process exit after its
// queued work has run. Long-running work belongs in a pool of its own, so it cannot hold up DNS.
inline constexpr std::size_t kDefaultBlockingThreads = 4;
BlockingPool& default_blocking_pool();

}  // namespace ringlet
