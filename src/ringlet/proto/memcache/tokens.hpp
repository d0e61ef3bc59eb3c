// tokens.hpp — splitting memcached lines into space-separated tokens, as views. Both directions use it: request
// lines (memcached skips runs of spaces between tokens) and returned meta flags. Pure, header-only.
#pragma once

#include <string_view>

namespace ringlet::memcache {

// Splits a run of space-separated tokens ("k1  k2 k3"), skipping runs of spaces:
//   Tokens t(text); for (std::string_view tok = t.next(); !tok.empty(); tok = t.next()) ...
class Tokens {
 public:
  explicit constexpr Tokens(std::string_view text) noexcept : rest_(text) {}
  // The next token, or an empty view at the end.
  constexpr std::string_view next() noexcept {
    std::size_t b = rest_.find_first_not_of(' ');
    if (b == std::string_view::npos) {
      rest_ = {};
      return {};
    }
    std::size_t e = rest_.find(' ', b);
    std::string_view tok = rest_.substr(b, e == std::string_view::npos ? std::string_view::npos : e - b);
    rest_ = e == std::string_view::npos ? std::string_view{} : rest_.substr(e);
    return tok;
  }
  constexpr std::string_view rest() const noexcept { return rest_; }

 private:
  std::string_view rest_;
};

}  // namespace ringlet::memcache
