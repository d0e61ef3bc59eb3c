// conditional.hpp — conditional requests (RFC 9110 §13): If-Match, If-Unmodified-Since, If-None-Match,
// If-Modified-Since and If-Range, evaluated in the RFC's order. Pure; core-agnostic.
//
// Our validators: an entity tag, strong, "<mtime seconds in hex>-<size in hex>" (nginx's format, so caches keep
// working when a site moves between the two), and Last-Modified at one-second resolution. A file rewritten twice
// within one second with the same size keeps its tag: the price of a validator that needs no hashing of content.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace ringlet::http {

// Longest tag make_etag writes: quotes, 16 + 1 + 16 hex digits.
inline constexpr std::size_t kMaxEtagLength = 2 + 16 + 1 + 16;

// Writes the strong entity tag (with its quotes) for a file into out; returns its length.
std::size_t make_etag(std::int64_t mtime_seconds, std::uint64_t size, char* out) noexcept;

enum class EtagComparison : std::uint8_t { weak, strong };

// Whether the If-Match / If-None-Match field value `list` ("*" or a comma-separated list of entity tags) matches
// `etag` (a strong tag with its quotes). A malformed list matches nothing.
bool etag_list_matches(std::string_view list, std::string_view etag, EtagComparison comparison) noexcept;

struct ConditionalHeaders {
  std::optional<std::string_view> if_match;
  std::optional<std::string_view> if_none_match;
  std::optional<std::string_view> if_modified_since;
  std::optional<std::string_view> if_unmodified_since;
  std::optional<std::string_view> if_range;
};

struct Validators {
  std::string_view etag;            // strong, with quotes
  std::int64_t mtime = 0;           // Last-Modified, Unix seconds
  std::int64_t now = INT64_MAX;     // the server's current time, Unix seconds
};

enum class Precondition : std::uint8_t {
  proceed,       // serve the representation (a Range may still apply: see if_range_allows)
  not_modified,  // 304 (GET and HEAD only)
  failed,        // 412
};

// Steps 1-4 of RFC 9110 §13.2.2. `safe_method` is true for GET and HEAD (the only methods a 304 answers).
// If-None-Match, when present, decides alone: If-Modified-Since is then ignored, as the RFC requires. An
// If-Modified-Since date later than `now` is ignored too: it cannot come from a Last-Modified we sent, and a
// client clock running ahead must not pin a stale copy (Apache does the same; nginx's default, exact-match,
// agrees on the outcome).
Precondition evaluate_preconditions(const ConditionalHeaders& h, const Validators& v, bool safe_method) noexcept;

// Step 5: whether a Range may be honoured. True without If-Range; with it, only when it names our current strong
// tag, or exactly our Last-Modified date (a weak tag, another tag or an unparsable value: send the whole file).
bool if_range_allows(const ConditionalHeaders& h, const Validators& v) noexcept;

}  // namespace ringlet::http
