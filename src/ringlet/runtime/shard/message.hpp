// message.hpp — one cross-shard message: a type-erased callable, 64 bytes, constructed in its ring slot.
// Core-local: a Message is built by the sending shard and run (once) by the receiving one; in between it is owned
// by the ring it sits in.
//
// A callable up to kInline bytes (and nothrow-movable) lives in the slot itself, so sending it allocates nothing;
// a larger one is boxed on the sender's heap and freed by the receiver after it ran.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace ringlet {

// A callable moved into a ring slot. Runs exactly once, on the receiving shard.
class Message {
 public:
  static constexpr std::size_t kInline = 48;

  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, Message>>>
  explicit Message(F&& f) {
    using Fn = std::decay_t<F>;
    if constexpr (sizeof(Fn) <= kInline && alignof(Fn) <= alignof(std::max_align_t) &&
                  std::is_nothrow_move_constructible_v<Fn>) {
      new (storage_) Fn(std::forward<F>(f));
      ops_ = &inline_ops<Fn>;
    } else {
      new (storage_) Fn*(new Fn(std::forward<F>(f)));  // too big for a slot: boxed (allocated here, freed there)
      ops_ = &boxed_ops<Fn>;
    }
  }
  Message(Message&& o) noexcept : ops_(o.ops_) {
    ops_(Op::move, storage_, o.storage_);
    o.ops_ = nullptr;
  }
  Message& operator=(Message&&) = delete;
  ~Message() {
    if (ops_ != nullptr) ops_(Op::destroy, storage_, nullptr);
  }

  void run() {
    auto ops = std::exchange(ops_, nullptr);
    ops(Op::run, storage_, nullptr);  // runs, then destroys the callable
  }

 private:
  enum class Op { run, destroy, move };
  using Ops = void (*)(Op, void* self, void* other);

  template <class Fn>
  static void inline_ops(Op op, void* self, void* other) {
    Fn* fn = std::launder(static_cast<Fn*>(self));
    switch (op) {
      case Op::run:
        (*fn)();
        fn->~Fn();
        break;
      case Op::destroy:
        fn->~Fn();
        break;
      case Op::move: {
        Fn* src = std::launder(static_cast<Fn*>(other));
        new (self) Fn(std::move(*src));
        src->~Fn();
        break;
      }
    }
  }
  template <class Fn>
  static void boxed_ops(Op op, void* self, void* other) {
    Fn** box = std::launder(static_cast<Fn**>(self));
    switch (op) {
      case Op::run:
        (**box)();
        delete *box;
        break;
      case Op::destroy:
        delete *box;
        break;
      case Op::move:
        new (self) Fn*(*std::launder(static_cast<Fn**>(other)));
        break;
    }
  }

  Ops ops_;
  alignas(std::max_align_t) unsigned char storage_[kInline];
};
static_assert(sizeof(Message) == 64);

}  // namespace ringlet
