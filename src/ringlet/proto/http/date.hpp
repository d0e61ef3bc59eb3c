// date.hpp — HTTP dates (RFC 9110 §5.6.7): formatting, parsing, and a per-loop cache of the current Date header.
// format/parse are pure functions; DateCache is core-local (one per loop).
//
// Formatting always produces IMF-fixdate, the one form a sender may generate ("Sun, 06 Nov 1994 08:49:37 GMT",
// exactly 29 bytes). Parsing accepts the three forms a recipient must accept: IMF-fixdate, the obsolete RFC 850
// form ("Sunday, 06-Nov-94 08:49:37 GMT", two-digit years read as within 50 years of 2000 — RFC 9110 asks to
// interpret them relative to the current date; a fixed pivot keeps the function pure) and asctime
// ("Sun Nov  6 08:49:37 1994"). Anything else is not a date: a conditional header carrying it is ignored.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace ringlet::http {

inline constexpr std::size_t kHttpDateLength = 29;

// Writes the IMF-fixdate of `unix_seconds` (UTC) into out[0..29). Years 1970..9999.
void format_http_date(std::int64_t unix_seconds, char* out) noexcept;

// The Unix time a date header names, or nullopt when it is in none of the three forms or names no valid time.
std::optional<std::int64_t> parse_http_date(std::string_view text) noexcept;

// The current time as an IMF-fixdate, rendered at most once per second: every response of a loop turn shares the
// same bytes, and a request costs a comparison, not a clock read and a format. Core-local.
class DateCache {
 public:
  // `now_ns` is the loop's monotonic time (Loop::now_ns(), read once per phase). The wall clock is read only when
  // the cached second may have ended.
  std::string_view get(std::int64_t now_ns) noexcept {
    if (now_ns >= refresh_at_ns_) refresh(now_ns);
    return {text_, kHttpDateLength};
  }
  // Unix seconds of the cached text (valid after get()).
  std::int64_t seconds() const noexcept { return seconds_; }

 private:
  void refresh(std::int64_t now_ns) noexcept;

  std::int64_t refresh_at_ns_ = INT64_MIN;
  std::int64_t seconds_ = 0;
  char text_[kHttpDateLength] = {};
};

}  // namespace ringlet::http
