// loop_fixture.hpp — runs a test on both backends and ends it by proving a clean shutdown.
//
// Every I/O test derives from LoopTest and is instantiated with RINGLET_BOTH_BACKENDS(Suite). A backend the
// kernel does not offer (io_uring disabled by sysctl, seccomp or memlock) makes the test skip, not fail.
// TearDown drives the loop until idle and then checks that no task, operation, timer, frame or buffer is alive.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "ringlet/buf/buffer.hpp"
#include "ringlet/runtime/clock.hpp"
#include "ringlet/runtime/frame_pool.hpp"
#include "ringlet/runtime/loop.hpp"

namespace ringlet::testing {

class LoopTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  // Override to give the loop a manual clock.
  virtual const Clock* test_clock() { return nullptr; }
  // Override to change the loop's options (a small receive ring, say).
  virtual void configure(LoopOptions&) {}

  void SetUp() override {
    frames_at_start_ = FramePool::live_frames();
    buffers_at_start_ = BufferPool::local().outstanding();
    LoopOptions options;
    options.backend.kind = GetParam();
    options.clock = test_clock();
    configure(options);
    auto created = Loop::create(options);
    if (!created) GTEST_SKIP() << "backend " << backend_kind_name(GetParam()) << " unavailable here";
    loop_ = std::move(created.value());
  }

  void TearDown() override {
    if (!loop_) return;
    EXPECT_TRUE(loop_->run_until_idle()) << "tasks or operations still alive at the end of the test";
    EXPECT_EQ(loop_->live_tasks(), 0u);
    EXPECT_EQ(loop_->pending_operations(), 0u);
    EXPECT_EQ(loop_->timers().size(), 0u);
    loop_.reset();
    EXPECT_EQ(FramePool::live_frames(), frames_at_start_) << "coroutine frames leaked";
    EXPECT_EQ(BufferPool::local().outstanding(), buffers_at_start_) << "buffers leaked";
  }

  Loop& loop() { return *loop_; }

  template <class T>
  T run(Task<T> task) {
    return loop_->block_on(std::move(task));
  }

  std::unique_ptr<Loop> loop_;
  std::size_t frames_at_start_ = 0;
  std::size_t buffers_at_start_ = 0;
};

inline std::string backend_test_name(const ::testing::TestParamInfo<BackendKind>& info) {
  return std::string(backend_kind_name(info.param));
}

}  // namespace ringlet::testing

#define RINGLET_BOTH_BACKENDS(Suite)                                                                 \
  INSTANTIATE_TEST_SUITE_P(Backends, Suite,                                                          \
                           ::testing::Values(::ringlet::BackendKind::uring, ::ringlet::BackendKind::epoll), \
                           ::ringlet::testing::backend_test_name)
