// tokens.hpp — splitting memcached lines into space-separated tokens, as views, and reading decimal tokens. Both
// directions use it: request lines (memcached skips runs of spaces between tokens), returned meta flags, numbers in
// replies. Pure, header-only.
#pragma once

#include <cstdint>
#include <limits>
#include <string_view>

namespace ringlet::memcache {

// Splits a run of space-separated tokens ("k1  k2 k3"), skipping runs of spaces:
//   Tokens t(text); for (std::string_view tok = t.next(); !tok.empty(); tok = t.next()) ...
class Tokens {
 public:
  explicit constexpr Tokens(std::string_view text) noexcept : rest_(text) {}
  // The next token, or an empty view at the end.
  // Plain loops, not find(): tokens are short (keys of a multi-get), and a memchr call per token cost more than
  // scanning its few bytes (#10).
  constexpr std::string_view next() noexcept {
    std::size_t b = 0;
    while (b < rest_.size() && rest_[b] == ' ') ++b;
    std::size_t e = b;
    while (e < rest_.size() && rest_[e] != ' ') ++e;
    const std::string_view tok = rest_.substr(b, e - b);
    rest_ = rest_.substr(e);
    return tok;
  }
  constexpr std::string_view rest() const noexcept { return rest_; }

 private:
  std::string_view rest_;
};

// A token of decimal digits only (no sign, no spaces) as a 64-bit number; false when empty, on any other byte, or
// on overflow. The request parser allows a leading '+' before calling it, as memcached's strtoull does.
constexpr bool parse_digits_u64(std::string_view t, std::uint64_t& out) noexcept {
  if (t.empty()) return false;
  std::uint64_t v = 0;
  for (char c : t) {
    if (c < '0' || c > '9') return false;
    std::uint64_t d = static_cast<std::uint64_t>(c - '0');
    if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}

}  // namespace ringlet::memcache
