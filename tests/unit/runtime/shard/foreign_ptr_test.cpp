#include "ringlet/runtime/shard/foreign_ptr.hpp"

#include <gtest/gtest.h>

#include <atomic>

#include "ringlet/runtime/shard/submit_to.hpp"
#include "support/shard_fixture.hpp"

namespace ringlet {
namespace {

// This file's own suite: the files of this directory share one executable, and a suite is instantiated once.
class ForeignPtrShardTest : public testing::ShardTest {};

struct Owned {
  explicit Owned(std::atomic<int>* freed_on, int* value) : freed_on_(freed_on), value_(value) {}
  ~Owned() { freed_on_->store(static_cast<int>(Shard::current()->id())); }
  std::atomic<int>* freed_on_;
  int* value_;
};

Task<void> foreign_main(Shard& shard, std::atomic<int>* freed_on, int* read_value) {
  if (shard.id() != 1) co_return;
  ForeignPtr<Owned> p = make_foreign<Owned>(freed_on, read_value);
  EXPECT_EQ(p.owner(), 1u);
  Owned* raw = p.get();
  // Hand it to shard 0, which reads it and drops it: the delete comes home to shard 1.
  // (A named callable: GCC 12 mishandles temporaries that own memory inside a co_await expression.)
  auto use_and_drop = [q = std::move(p), raw]() mutable {
    EXPECT_EQ(q.get(), raw);
    EXPECT_FALSE(q.is_local());
    *q->value_ = 42;
    q.reset();
  };
  co_await submit_to(0, std::move(use_and_drop));
}

TEST_P(ForeignPtrShardTest, a_foreign_pointer_dropped_elsewhere_is_freed_on_its_owner) {
  ShardSet set(options(2));
  std::atomic<int> freed_on{-1};
  int value = 0;
  RUN_OR_SKIP(set, [&](Shard& s) { return foreign_main(s, &freed_on, &value); });
  EXPECT_EQ(value, 42);
  EXPECT_EQ(freed_on.load(), 1);
}

// ---- ShardChannel ------------------------------------------------------------------------------------------------

RINGLET_BOTH_BACKENDS(ForeignPtrShardTest);

}  // namespace
}  // namespace ringlet
