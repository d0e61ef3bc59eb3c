// fake_ring.hpp — a BufferSource that stands in for io_uring's provided-buffer ring in buf/ tests: a fixed set of
// buffers marked shared_ring(), counting how many are lent out.
#pragma once

#include <cstring>
#include <string_view>
#include <vector>

#include "ringlet/buf/buffer.hpp"
#include "ringlet/buf/slice.hpp"

namespace ringlet::testing {

class FakeRing final : public BufferSource {
 public:
  static constexpr std::uint32_t kBufferSize = 8192;

  explicit FakeRing(std::size_t count) : BufferSource(/*shared_ring=*/true), storage_(count * kBufferSize) {
    headers_.resize(count);
    for (std::size_t i = 0; i < count; ++i) {
      headers_[i] = Buffer{storage_.data() + i * kBufferSize, kBufferSize, 0, this, static_cast<std::uint32_t>(i)};
      free_.push_back(&headers_[i]);
    }
  }

  // A slice of a fresh ring buffer holding `bytes`, as a receive completion would hand it out.
  Slice lend(std::string_view bytes) {
    Buffer* b = free_.back();
    free_.pop_back();
    b->refs = 1;
    std::memcpy(b->data, bytes.data(), bytes.size());
    return Slice(b, 0, static_cast<std::uint32_t>(bytes.size()));
  }

  void recycle(Buffer* b) noexcept override { free_.push_back(b); }
  std::size_t lent() const noexcept { return headers_.size() - free_.size(); }

 private:
  std::vector<std::byte> storage_;
  std::vector<Buffer> headers_;
  std::vector<Buffer*> free_;
};

}  // namespace ringlet::testing
