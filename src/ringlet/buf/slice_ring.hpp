// slice_ring.hpp — a growable ring of Slices, the storage under SliceQueue and OutputChain.
// Core-local.
//
// Why not std::deque: a deque allocates and frees blocks as elements come and go, so a queue that is filled and
// drained forever keeps calling malloc. This ring doubles when full and never shrinks, so after warm-up pushing and
// popping never allocate. Slots past size() hold empty Slices (no buffer), so the ring pins nothing it has popped.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>

#include "ringlet/buf/slice.hpp"

namespace ringlet {

class SliceRing {
 public:
  static constexpr std::size_t kInitialCapacity = 8;

  SliceRing() = default;
  SliceRing(SliceRing&& other) noexcept
      : slots_(std::move(other.slots_)),
        mask_(std::exchange(other.mask_, 0)),
        head_(std::exchange(other.head_, 0)),
        size_(std::exchange(other.size_, 0)) {}
  SliceRing& operator=(SliceRing&& other) noexcept {
    if (this != &other) {
      slots_ = std::move(other.slots_);
      mask_ = std::exchange(other.mask_, 0);
      head_ = std::exchange(other.head_, 0);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  std::size_t capacity() const noexcept { return slots_ ? mask_ + 1 : 0; }

  Slice& operator[](std::size_t i) noexcept { return slots_[(head_ + i) & mask_]; }
  const Slice& operator[](std::size_t i) const noexcept { return slots_[(head_ + i) & mask_]; }
  Slice& front() noexcept { return (*this)[0]; }
  Slice& back() noexcept { return (*this)[size_ - 1]; }

  void push_back(Slice s) {
    if (size_ == capacity()) grow();
    slots_[(head_ + size_) & mask_] = std::move(s);
    ++size_;
  }
  Slice pop_front() noexcept {
    RINGLET_ASSERT(size_ > 0);
    Slice s = std::move(slots_[head_]);
    head_ = (head_ + 1) & mask_;
    --size_;
    return s;
  }
  void drop_front() noexcept { pop_front(); }
  void clear() noexcept {
    while (size_ > 0) drop_front();
    head_ = 0;
  }

 private:
  void grow() {
    const std::size_t new_capacity = slots_ ? 2 * (mask_ + 1) : kInitialCapacity;
    auto fresh = std::make_unique<Slice[]>(new_capacity);
    for (std::size_t i = 0; i < size_; ++i) fresh[i] = std::move((*this)[i]);
    slots_ = std::move(fresh);
    mask_ = new_capacity - 1;
    head_ = 0;
  }

  std::unique_ptr<Slice[]> slots_;
  std::size_t mask_ = 0;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace ringlet
