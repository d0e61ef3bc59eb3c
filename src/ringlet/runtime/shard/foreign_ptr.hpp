// foreign_ptr.hpp — a pointer whose pointee belongs to another shard. Held by one shard at a time (not shared),
// it moves freely between shards inside messages; the delete always runs on the owner, so per-thread pools stay
// per-thread.
#pragma once

#include <memory>
#include <utility>

#include "ringlet/runtime/shard/shard_set.hpp"

namespace ringlet {

// A pointer to memory owned by the shard that created it. Moves freely between shards (inside messages); when
// dropped on another shard, the delete is sent to the owner (Shard::send), so per-thread pools stay per-thread.
// Reading the pointee on another shard is allowed only while the owner leaves it alone (the usual hand-over).
template <class T, class Deleter = std::default_delete<T>>
class ForeignPtr {
 public:
  ForeignPtr() = default;
  explicit ForeignPtr(std::unique_ptr<T, Deleter> p)
      : p_(std::move(p)), owner_(Shard::current() != nullptr ? Shard::current()->id() : 0) {}
  ForeignPtr(ForeignPtr&&) noexcept = default;
  ForeignPtr& operator=(ForeignPtr&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = std::move(o.p_);
      owner_ = o.owner_;
    }
    return *this;
  }
  ~ForeignPtr() { reset(); }

  T* get() const noexcept { return p_.get(); }
  T& operator*() const noexcept { return *p_; }
  T* operator->() const noexcept { return p_.get(); }
  explicit operator bool() const noexcept { return p_ != nullptr; }
  unsigned owner() const noexcept { return owner_; }
  bool is_local() const noexcept {
    Shard* s = Shard::current();
    return s == nullptr || s->id() == owner_;
  }
  // Frees now when local; otherwise sends the free to the owner.
  void reset() {
    if (!p_) return;
    if (is_local()) {
      p_.reset();
      return;
    }
    T* raw = p_.release();
    Deleter d = p_.get_deleter();
    Shard::current()->send(owner_, [raw, d]() mutable { d(raw); });
  }

 private:
  std::unique_ptr<T, Deleter> p_;
  unsigned owner_ = 0;
};

template <class T, class... Args>
ForeignPtr<T> make_foreign(Args&&... args) {
  return ForeignPtr<T>(std::make_unique<T>(std::forward<Args>(args)...));
}

}  // namespace ringlet
