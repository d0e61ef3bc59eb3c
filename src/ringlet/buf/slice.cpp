// slice.cpp — the one Slice operation that copies bytes.
#include "ringlet/buf/slice.hpp"

#include "ringlet/buf/copy_counter.hpp"

namespace ringlet {

Slice Slice::copy_of(std::span<const std::byte> bytes) {
  if (bytes.empty()) return {};
  RINGLET_ASSERT(bytes.size() <= UINT32_MAX);
  Buffer* b = BufferPool::local().acquire(bytes.size());
  counted_copy(b->data, bytes.data(), bytes.size());
  return Slice(b, 0, static_cast<std::uint32_t>(bytes.size()));
}

Slice Slice::copy_of(std::string_view text) { return copy_of(std::as_bytes(std::span(text.data(), text.size()))); }

}  // namespace ringlet
