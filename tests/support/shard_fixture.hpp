// shard_fixture.hpp — runs a ShardSet test on both backends (RINGLET_BOTH_BACKENDS(ShardTest)); a backend the
// kernel does not offer makes the test skip. The ShardSet's own shutdown is the clean-shutdown check: run() returns
// only once every message has run and every task has ended. A second file using it in the same directory (one
// executable) derives a suite of its own (class SubmitToShardTest : public ShardTest {}): a suite is instantiated once
// per executable.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>

#include "ringlet/runtime/loop.hpp"
#include "ringlet/runtime/shard/shard_set.hpp"
#include "ringlet/runtime/task.hpp"
#include "support/loop_fixture.hpp"

namespace ringlet::testing {

class ShardTest : public ::testing::TestWithParam<BackendKind> {
 protected:
  ShardSetOptions options(unsigned shards, std::size_t ring = 1024) {
    ShardSetOptions o;
    o.shards = shards;
    o.loop.backend.kind = GetParam();
    o.ring_capacity = ring;
    return o;
  }
  // Runs main on every shard; skips the test when the backend is unavailable here.
  bool run(ShardSet& set, std::function<Task<void>(Shard&)> main) {
    Status s = set.run(std::move(main));
    if (!s) {
      skipped_ = true;
      return false;
    }
    return true;
  }
  bool skipped_ = false;
};

// Keeps a shard busy running tasks (so it drains its rings only between yields) for about `d`.
inline Task<void> busy_for(std::chrono::milliseconds d) {
  // Busy: the shard runs tasks and does not drain for a while each turn.
  auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
    volatile int x = 0;
    for (int i = 0; i < 10000; ++i) x = x + i;
    Status s = co_await yield();
    if (!s) co_return;
  }
}

}  // namespace ringlet::testing

#define RUN_OR_SKIP(set, main)                                                                      \
  do {                                                                                              \
    if (!run(set, main)) GTEST_SKIP() << "backend unavailable: " << backend_kind_name(GetParam()); \
  } while (0)
