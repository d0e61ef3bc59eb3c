// crc32c.cpp — CRC-32C by table and by the SSE 4.2 instruction (crc32c.hpp).
#include "ringlet/queue/crc32c.hpp"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace ringlet::queue {

namespace {

// Reflected polynomial 0x1EDC6F41: one table of 256 remainders, a byte per step.
constexpr std::array<std::uint32_t, 256> make_crc_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0x82F63B78u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<std::uint32_t, 256> kCrcTable = make_crc_table();

#if defined(__x86_64__)
// Compiled for SSE 4.2 whatever the build's -march; only called after the CPU said it has it.
__attribute__((target("sse4.2"))) std::uint32_t crc32c_sse42(std::string_view data) noexcept {
  const char* p = data.data();
  std::size_t n = data.size();
  std::uint64_t c = 0xFFFFFFFFu;
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, sizeof word);  // unaligned: the payload starts anywhere in the batch
    c = _mm_crc32_u64(c, word);
  }
  auto c32 = static_cast<std::uint32_t>(c);
  for (; n > 0; ++p, --n) c32 = _mm_crc32_u8(c32, static_cast<unsigned char>(*p));
  return c32 ^ 0xFFFFFFFFu;
}
#endif

}  // namespace

std::uint32_t crc32c_portable(std::string_view data) noexcept {
  std::uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : data) c = kCrcTable[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::uint32_t crc32c(std::string_view data) noexcept {
#if defined(__x86_64__)
  static const bool has_sse42 = __builtin_cpu_supports("sse4.2");  // asked once, by whoever comes first
  if (has_sse42) return crc32c_sse42(data);
#endif
  return crc32c_portable(data);
}

}  // namespace ringlet::queue
