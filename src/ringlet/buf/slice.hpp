// slice.hpp — a refcounted view [offset, offset + size) into one Buffer.
// Core-local, like the Buffer it points into.
//
// Copying a Slice copies 16 bytes and bumps the buffer's refcount; it never copies payload. Only copy_of() copies
// bytes, and it counts them. A default or moved-from Slice is empty and holds no buffer; sub() of zero length also
// returns such an empty Slice, so an empty view never pins a buffer.
//
// Writing through mutable_data() is the caller's promise that nobody else reads those bytes: it is meant for filling
// a buffer that was just acquired, before any other Slice of it exists.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

#include "ringlet/buf/buffer.hpp"

namespace ringlet {

class Slice {
 public:
  Slice() = default;
  Slice(Buffer* adopt_ref, std::uint32_t offset, std::uint32_t size) noexcept
      : buf_(adopt_ref), offset_(offset), size_(size) {
    RINGLET_ASSERT(adopt_ref ? std::size_t{offset} + size <= adopt_ref->capacity : offset == 0 && size == 0);
  }
  Slice(const Slice& other) noexcept : buf_(other.buf_), offset_(other.offset_), size_(other.size_) {
    if (buf_) buffer_ref(buf_);
  }
  Slice(Slice&& other) noexcept
      : buf_(std::exchange(other.buf_, nullptr)),
        offset_(std::exchange(other.offset_, 0)),
        size_(std::exchange(other.size_, 0)) {}
  Slice& operator=(const Slice& other) noexcept {
    Slice copy(other);  // ref before unref: self-assignment must not drop the last reference
    return *this = std::move(copy);
  }
  Slice& operator=(Slice&& other) noexcept {
    if (this != &other) {
      reset();
      buf_ = std::exchange(other.buf_, nullptr);
      offset_ = std::exchange(other.offset_, 0);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  ~Slice() {
    if (buf_) buffer_unref(buf_);
  }

  // A fresh pooled buffer holding a copy of `bytes`; the copy is counted.
  static Slice copy_of(std::span<const std::byte> bytes);
  static Slice copy_of(std::string_view text);

  const std::byte* data() const noexcept { return buf_ ? buf_->data + offset_ : nullptr; }
  std::byte* mutable_data() noexcept { return buf_ ? buf_->data + offset_ : nullptr; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  std::uint32_t offset() const noexcept { return offset_; }  // where the view starts inside buffer()
  Buffer* buffer() const noexcept { return buf_; }

  std::string_view view() const noexcept { return {reinterpret_cast<const char*>(data()), size_}; }
  std::span<const std::byte> span() const noexcept { return {data(), size_}; }

  // A view of [offset, offset + len) of this slice, sharing the buffer.
  Slice sub(std::size_t offset, std::size_t len) const noexcept {
    RINGLET_ASSERT(offset <= size_ && len <= size_ - offset);
    if (len == 0) return {};
    buffer_ref(buf_);
    return Slice(buf_, offset_ + static_cast<std::uint32_t>(offset), static_cast<std::uint32_t>(len));
  }
  void remove_prefix(std::size_t n) noexcept {
    RINGLET_ASSERT(n <= size_);
    offset_ += static_cast<std::uint32_t>(n);
    size_ -= static_cast<std::uint32_t>(n);
  }
  void remove_suffix(std::size_t n) noexcept {
    RINGLET_ASSERT(n <= size_);
    size_ -= static_cast<std::uint32_t>(n);
  }

  // If `next` starts exactly where this slice ends in the same buffer, grows this slice over it, empties `next`
  // and returns true; otherwise changes nothing. Lets a queue or chain keep one piece per contiguous run.
  bool try_join(Slice& next) noexcept {
    if (buf_ == nullptr || next.buf_ != buf_ || offset_ + size_ != next.offset_) return false;
    size_ += next.size_;
    next.reset();
    return true;
  }

  void reset() noexcept {
    if (buf_) buffer_unref(buf_);
    buf_ = nullptr;
    offset_ = 0;
    size_ = 0;
  }

 private:
  Buffer* buf_ = nullptr;
  std::uint32_t offset_ = 0;
  std::uint32_t size_ = 0;
};

}  // namespace ringlet
