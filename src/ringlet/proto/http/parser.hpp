// parser.hpp — incremental, zero-copy HTTP/1.1 request-head parser (RFC 9112 §2-§7, RFC 9110). Pure, I/O-free,
// core-local (one parser per connection; no shared state).
//
//   RequestParser p(limits);
//   ParseResult r = p.parse(bytes);          // bytes: everything received for this request so far
//   incomplete -> receive more, call parse() again with the longer range (same first byte, may have moved)
//   complete   -> p.request() is ready; r.head_length bytes belong to the head; the body / next request follows
//   error      -> answer r.http_status (400, 414, 431, 417, 501, 505) and close the connection
//   p.reset() before the next request.
//
// Incremental: the parser remembers the offset of the first unprocessed line and how far it has searched for the
// next '\n', so calling parse() again after a few more bytes costs only those bytes (no rescan, no O(n²)). Each
// complete line is validated once. It stores offsets, not pointers: between calls the bytes may move (be gathered
// into another buffer) as long as the new range starts with the same bytes.
//
// Decisions where the RFC leaves a choice (documented here, tested in tests/unit/http/parser_test.cpp):
// - Line ends: CRLF, and also a bare LF (RFC 9112 §2.2 MAY; nginx does the same) unless
//   ParserLimits::strict_crlf. A CR not followed by LF anywhere in the head is 400.
// - Up to max_leading_empty_lines empty lines before the request line are skipped (§2.2); more → 400.
// - Request line: method SP request-target SP HTTP-version, exactly one SP each. Method is a token (any token;
//   unknown ones are Method::other — the server answers 501/405). Target bytes must be VCHAR or obs-text (raw
//   UTF-8 accepted, like nginx); CTLs, DEL, SP → 400. Version "HTTP/" DIGIT "." DIGIT: 1.0; 1.1 .. 1.9 → treated
//   as 1.1; a major other than 1 → 505; anything else → 400. Longer than max_request_line bytes (without its line
//   end) → 414, decided as soon as that many bytes arrived without a line end.
// - Header field: token name directly followed by ':' (space before the colon → 400, RFC 9112 §5.1); a line
//   starting with SP/HTAB (obs-fold) → 400 (§5.2); value trimmed of OWS; value bytes VCHAR, obs-text, SP, HTAB
//   only (any other CTL, DEL or bare CR → 400). A field line (without its line end) over max_header_line → 431
//   (nginx refuses a line that does not fit one of its 8 KiB buffers); header section (first field line through
//   the final empty line) over max_header_bytes → 431; both decided as soon as exceeded. More than max_headers
//   fields → 431.
// - Host: HTTP/1.1 without Host → 400; two Host fields → 400; a Host value with bytes outside RFC 3986
//   host[:port] characters → 400 (empty Host is valid syntax and accepted).
// - Content-Length: 1*DIGIT, overflow-checked (≤ 2^63-1); empty, non-digit or differing values → 400. Repeated
//   identical values ("5, 5" or two fields of 5) are accepted (RFC 9110 §8.6 allows either).
// - Transfer-Encoding with Content-Length → 400 (RFC 9112 §6.1: MAY reject; we do, and the server closes).
//   Transfer-Encoding in an HTTP/1.0 request → 400 (§6.1 says the framing is faulty; we refuse it). Final coding
//   not "chunked" → 400 (§6.3); "chunked" more than once → 400; any other coding before chunked → 501 (we do not
//   decode gzip & co., §6.1 SHOULD 501).
// - Connection: comma-separated tokens over all Connection lines, case-insensitive: "close" ends keep-alive,
//   "keep-alive" enables it for HTTP/1.0.
// - Expect: "100-continue" (case-insensitive) sets expect_continue on HTTP/1.1; any other expectation → 417.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ringlet/proto/http/request.hpp"

namespace ringlet::http {

// The servers' default for one field line: nginx's (large_client_header_buffers 8k), so what passes nginx passes.
inline constexpr std::uint32_t kServerMaxHeaderLine = 8 * 1024;

struct ParserLimits {
  std::uint32_t max_request_line = 8 * 1024;   // request line without its line end; beyond: 414
  std::uint32_t max_header_bytes = 16 * 1024;  // header section incl. line ends and final empty line; beyond: 431
  // One field line without its line end; beyond: 431. Zero: bounded by max_header_bytes alone (the bare parser's
  // default, for clients and tools that only want the section bounded); servers start from server_defaults().
  std::uint32_t max_header_line = 0;
  // Field lines; beyond: 431. Real clients behind a chain of proxies send close to 100 (cookies, tracing,
  // forwarding headers), so the default leaves room above that; max_header_bytes still bounds their bytes.
  std::uint32_t max_headers = 256;
  std::uint32_t max_leading_empty_lines = 8;   // empty lines skipped before the request line; beyond: 400
  bool strict_crlf = false;                    // true: a bare LF line end is 400

  // The limits `ringlet http` starts from: these, with field lines bounded like nginx's.
  static constexpr ParserLimits server_defaults() noexcept {
    ParserLimits l;
    l.max_header_line = kServerMaxHeaderLine;
    return l;
  }

  // An upper bound on the bytes a head can take before parse() must answer complete or error: a reader can
  // size a gather buffer with it.
  std::size_t max_head_bytes() const noexcept {
    return std::size_t{max_leading_empty_lines} * 2 + max_request_line + 2 + max_header_bytes + 1;
  }
};

enum class ParseStatus : std::uint8_t { incomplete, complete, error };

struct ParseResult {
  ParseStatus status = ParseStatus::incomplete;
  std::uint32_t head_length = 0;  // complete: bytes of the head (leading empty lines included)
  std::uint16_t http_status = 0;  // error: 400, 414, 431, 417, 501 or 505
  const char* reason = nullptr;   // error: static text for logs ("obs-fold", "Host missing", ...)

  bool complete() const noexcept { return status == ParseStatus::complete; }
  bool incomplete() const noexcept { return status == ParseStatus::incomplete; }
  bool error() const noexcept { return status == ParseStatus::error; }
};

class RequestParser {
 public:
  RequestParser() = default;
  explicit RequestParser(const ParserLimits& limits) noexcept : limits_(limits) {}

  // Parses `data`: all bytes of this request received so far, starting at its first byte (leading empty lines
  // included). Each call's data must begin with the previous call's data (it may have moved). Once complete or
  // error, further calls return the same result (and rebase the request onto `data`).
  ParseResult parse(std::string_view data) noexcept;

  // The parsed request (valid after complete). Its views point into the data given to the last parse() call.
  const Request& request() const noexcept { return req_; }
  Request& request() noexcept { return req_; }

  // True once any byte of a request line has been seen (complete empty lines before it do not count): tells
  // "the peer closed between requests" from "the peer closed in the middle of a head".
  bool started() const noexcept { return phase_ != Phase::request_line || scan_ > pos_; }
  // Bytes already looked at (each byte is examined about once however the input is split).
  std::size_t scanned() const noexcept { return scan_; }
  const ParserLimits& limits() const noexcept { return limits_; }

  // Ready for the next request, keeping the limits.
  void reset() noexcept { *this = RequestParser(limits_); }

 private:
  enum class Phase : std::uint8_t { request_line, headers, done, failed };

  ParseResult fail(std::uint16_t status, const char* reason) noexcept;
  bool on_request_line(const char* base, std::uint32_t begin, std::uint32_t end) noexcept;
  bool on_field_line(const char* base, std::uint32_t begin, std::uint32_t end) noexcept;
  bool on_head_end(std::uint32_t head_length) noexcept;
  bool on_target(const char* base, std::uint32_t begin, std::uint32_t end) noexcept;
  bool on_content_length(std::string_view value) noexcept;
  bool on_transfer_encoding(std::string_view value) noexcept;
  bool on_connection(std::string_view value) noexcept;
  bool on_expect(std::string_view value) noexcept;
  // `length` bytes of one field line; `slack` leaves room for the CR of a line still waiting for its LF.
  bool header_line_over_limit(std::uint32_t length, std::uint32_t slack) const noexcept {
    return limits_.max_header_line != 0 && length > limits_.max_header_line + slack;
  }

  ParserLimits limits_{};
  Request req_{};
  ParseResult result_{};
  std::uint32_t pos_ = 0;        // first byte of the line not processed yet
  std::uint32_t scan_ = 0;       // no '\n' in [pos_, scan_)
  std::uint32_t headers_start_ = 0;       // first byte after the request line
  std::uint32_t empty_lines_ = 0;
  std::uint16_t fail_status_ = 0;
  const char* fail_reason_ = nullptr;
  std::uint8_t te_codings_ = 0;  // Transfer-Encoding codings seen
  bool te_chunked_last_ = false;
  bool te_chunked_seen_ = false;
  bool te_unknown_ = false;
  bool te_bad_ = false;
  bool conn_close_ = false;
  bool conn_keep_alive_ = false;
  bool expect_other_ = false;
  bool expect_continue_ = false;
  bool cl_seen_ = false;
  Phase phase_ = Phase::request_line;
};

}  // namespace ringlet::http
