// range.hpp — the Range header (RFC 9110 §14.2) reduced to what a static server answers. Pure; core-agnostic.
//
// Only the "bytes" unit exists for us; a header in another unit is ignored (the full representation is sent, as
// the RFC requires). A "bytes=" header with an invalid ranges-specifier ("bytes=5-2", "bytes=abc", an overflowing
// number) is rejected with 416: RFC 9110 §14.2 lets a server ignore or reject it, and nginx rejects it, so clients
// see the same answer from both. Each range-spec is "first-last", "first-" or "-suffix".
// Multiple ranges would need a multipart/byteranges body; we send the whole file with 200 instead (allowed: a
// server may ignore Range), unless only one of them is satisfiable, which is then served as a single range.
// A range whose first byte lies at or beyond the end is unsatisfiable; when every range is, the answer is 416.
#pragma once

#include <cstdint>
#include <string_view>

namespace ringlet::http {

enum class RangeOutcome : std::uint8_t {
  ignore,         // no usable Range: 200 with the whole representation
  single,         // 206 with Content-Range: bytes first-last/size
  unsatisfiable,  // 416 with Content-Range: bytes */size (also: an invalid bytes ranges-specifier)
};

struct RangeDecision {
  RangeOutcome outcome = RangeOutcome::ignore;
  std::uint64_t first = 0;  // inclusive
  std::uint64_t last = 0;   // inclusive, < size
  std::uint64_t length() const noexcept { return last - first + 1; }
};

// A header listing more range-specs than this is ignored (200), however they overlap: a cheap bound on work and
// the classic many-small-ranges amplification.
inline constexpr int kMaxRangeSpecs = 64;

RangeDecision evaluate_range(std::string_view header, std::uint64_t size) noexcept;

}  // namespace ringlet::http
