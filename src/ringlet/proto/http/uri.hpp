// uri.hpp — percent-decoding of a request path (RFC 3986 §2.1). Pure functions, no state, thread-safe.
//
// The static-file server decodes Request::path() before mapping it to a file and refuses traversal. Decoding
// alone does not make a path safe: check the decoded result for ".." segments yourself, and refuse (or treat
// specially) a path whose encoded form contained "%2F" (encoded_slash), because "/a%2F..%2Fb" decodes to
// "/a/../b" while a proxy in front may have seen one segment.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

namespace ringlet::http {

enum class PercentDecodeStatus : unsigned char {
  ok,
  bad_escape,  // '%' not followed by two hex digits
  nul_byte,    // "%00": a NUL would cut the path short at the filesystem
};

struct PercentDecodeResult {
  PercentDecodeStatus status = PercentDecodeStatus::ok;
  std::size_t size = 0;        // bytes written to out (valid when status == ok)
  bool encoded_slash = false;  // "%2F" or "%2f" occurred (decoded to '/')
  bool ok() const noexcept { return status == PercentDecodeStatus::ok; }
};

// Decodes %XX escapes of `in` into `out`; other bytes are copied unchanged ('+' stays '+': that is a form
// encoding, not a path one). out.size() >= in.size() is required (the result is never longer); out may be the
// same memory as in (decoding in place works). Returns bad_escape or nul_byte on the first problem.
PercentDecodeResult percent_decode(std::string_view in, std::span<char> out) noexcept;

// True when `in` contains no '%' at all: the decoded path is `in` itself, nothing to copy (the common case).
inline bool needs_percent_decode(std::string_view in) noexcept { return in.find('%') != std::string_view::npos; }

}  // namespace ringlet::http
