// slice_ring.hpp — a growable ring of Slices, the storage under SliceQueue and OutputChain.
// Core-local.
//
// Why not std::deque: a deque allocates and frees blocks as elements come and go, so a queue that is filled and
// drained forever keeps calling malloc. This ring doubles when full and never shrinks, so after warm-up pushing and
// popping never allocate. Slots past size() hold empty Slices (no buffer), so the ring pins nothing it has popped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

#include "ringlet/buf/slice.hpp"

namespace ringlet {

class SliceRing {
 public:
  static constexpr std::size_t kInitialCapacity = 8;

  SliceRing() = default;
  SliceRing(SliceRing&& other) noexcept
      : one_(std::move(other.one_)),
        slots_(std::exchange(other.slots_, nullptr)),
        mask_(std::exchange(other.mask_, 0)),
        head_(std::exchange(other.head_, 0)),
        size_(std::exchange(other.size_, 0)) {}
  SliceRing& operator=(SliceRing&& other) noexcept {
    if (this != &other) {
      clear();
      one_ = std::move(other.one_);
      slots_ = std::exchange(other.slots_, nullptr);
      mask_ = std::exchange(other.mask_, 0);
      head_ = std::exchange(other.head_, 0);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  ~SliceRing() { clear(); }

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  std::size_t capacity() const noexcept { return slots_ ? mask_ + 1 : 1; }

  Slice& operator[](std::size_t i) noexcept { return slots_ ? slots_[(head_ + i) & mask_] : one_; }
  const Slice& operator[](std::size_t i) const noexcept { return slots_ ? slots_[(head_ + i) & mask_] : one_; }
  Slice& front() noexcept { return (*this)[0]; }
  Slice& back() noexcept { return (*this)[size_ - 1]; }

  void push_back(Slice s) {
    if (slots_ == nullptr && size_ == 0) {
      one_ = std::move(s);
      size_ = 1;
      return;
    }
    if (size_ == capacity()) grow();  // NOLINT: size_ is bounded by capacity, which fits 32 bits
    slots_[(head_ + size_) & mask_] = std::move(s);
    ++size_;
  }
  Slice pop_front() noexcept {
    RINGLET_ASSERT(size_ > 0);
    if (slots_ == nullptr) {
      size_ = 0;
      return std::move(one_);
    }
    Slice s = std::move(slots_[head_]);
    head_ = (head_ + 1) & mask_;
    if (--size_ == 0) release_storage();
    return s;
  }
  void drop_front() noexcept { pop_front(); }
  // Removes n bytes from the front: whole slices are dropped, the first remaining one is trimmed. The caller
  // guarantees n does not exceed the bytes held.
  void consume_front(std::size_t n) noexcept {
    while (n > 0) {
      Slice& f = front();
      if (n < f.size()) {
        f.remove_prefix(n);
        return;
      }
      n -= f.size();
      drop_front();
    }
  }
  // What compact() copies out: loans from a shared ring (Buffer::source's shared_ring()) always; with `sparse`, also
  // a few bytes pinning a mostly empty buffer (received data: a 16 KiB receive buffer holding one small request).
  enum class Copy { loans, loans_and_sparse };
  // Copies out every slice of that kind, packing them into as few pooled buffers as possible; other slices stay as
  // they are, and the byte sequence is unchanged. Returns the bytes copied (counted in bytes_copied()). Views into
  // the old slices stay valid only while someone else holds those slices.
  std::size_t compact(Copy what);
  // True when compact(what) would copy `s`.
  static bool should_copy_out(const Slice& s, Copy what) noexcept;

  void clear() noexcept {
    while (size_ > 0) drop_front();
    one_.reset();
    head_ = 0;
  }

 private:
  // One slice lives inline (the common case: one received buffer, one reply); more spill into a heap ring. An
  // emptied ring hands its storage to a per-thread cache, so an idle connection holds none and a busy one does not
  // allocate in steady state.
  void grow();
  void release_storage() noexcept;

  Slice one_;
  Slice* slots_ = nullptr;  // capacity mask_ + 1, or nullptr while at most one slice is held
  std::uint32_t mask_ = 0;
  std::uint32_t head_ = 0;
  std::uint32_t size_ = 0;
};

}  // namespace ringlet
