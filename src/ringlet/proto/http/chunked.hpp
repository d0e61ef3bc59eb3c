// chunked.hpp — incremental decoder for the HTTP/1.1 chunked transfer coding (RFC 9112 §7.1).
// Pure and I/O-free; one decoder per message, core-local (no shared state).
//
// Used for request bodies by the server and for response bodies by the load generator, so it knows nothing about
// requests or responses. Input may be split at any byte: feed whatever arrived, the decoder keeps its position in
// a handful of integers and never buffers or copies. Chunk data comes back as views into the bytes you passed.
//
// Typical loop (buf holds received bytes):
//
//   ChunkedDecoder dec(limits);
//   for (;;) {
//     ChunkedStep s = dec.decode(buf);
//     if (!s.data.empty()) use(s.data);      // a view into buf; copy or keep its Slice if you need it later
//     buf.remove_prefix(s.consumed);         // framing and data bytes, all accounted for
//     if (s.status == ChunkedStatus::done) break;   // buf now starts at the next message (pipelining)
//     if (s.status == ChunkedStatus::error) fail(s.http_status, s.reason);
//     if (s.status == ChunkedStatus::need_more) wait_for_more_bytes();
//     // ChunkedStatus::data: call again with the rest
//   }
//
// Strictness (why: chunk lines are where request smuggling hides):
// - every line (chunk-size line, the CRLF after chunk data, trailer lines, the final empty line) must end in CRLF;
//   a bare LF or a bare CR is an error (400);
// - chunk-size is 1*HEXDIG, overflow-checked; the sum of chunk sizes may not exceed max_body_bytes (413);
// - chunk extensions follow the RFC grammar (BWS ";" BWS name [BWS "=" BWS (token / quoted-string)]) and are
//   discarded; their length per chunk line is bounded by max_extension_bytes (400);
// - trailer fields are checked like header fields (token name directly followed by ':', no obs-fold, no CTLs
//   other than HTAB in values) and discarded; the trailer section is bounded by max_trailer_bytes (431).
// After `done`, `consumed` ends exactly after the final CRLF, so the next pipelined message starts right there.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ringlet::http {

struct ChunkedLimits {
  std::uint64_t max_body_bytes = std::uint64_t{1} << 30;  // sum of chunk sizes; beyond it: 413
  std::uint32_t max_extension_bytes = 1024;               // bytes of chunk-ext on one chunk line; beyond: 400
  std::uint32_t max_trailer_bytes = 8 * 1024;             // whole trailer section incl. line ends; beyond: 431
};

enum class ChunkedStatus : std::uint8_t {
  need_more,  // every byte given was consumed (framing or data) and the message is not finished: feed more
  data,       // `data` holds chunk bytes; call again with the rest of the input
  done,       // the last chunk, trailers and final CRLF were consumed
  error,      // malformed or over a limit; see http_status and reason. The decoder stays in error.
};

struct ChunkedStep {
  ChunkedStatus status = ChunkedStatus::need_more;
  std::size_t consumed = 0;  // bytes of the input used by this call (framing + data), always <= input size
  std::string_view data;     // chunk data, a view into the input (empty unless status == data)
  std::uint16_t http_status = 0;  // on error: 400, 413 or 431
  const char* reason = nullptr;   // on error: a static string for logs ("bare LF in chunk line", ...)
};

class ChunkedDecoder {
 public:
  ChunkedDecoder() = default;
  explicit ChunkedDecoder(const ChunkedLimits& limits) noexcept : limits_(limits) {}

  // Decodes from the start of `in`. Stops after at most one run of chunk data (status data), at the end of the
  // message (done), at an error, or when the input is used up (need_more). Never reads beyond `in`.
  // data is returned as soon as any byte of it is available: a 1 MiB chunk arriving in 64 KiB receives comes back
  // as 16 data steps. Calling decode() after done returns done with consumed 0; after error, the same error.
  ChunkedStep decode(std::string_view in) noexcept;

  bool done() const noexcept { return state_ == State::done; }
  bool failed() const noexcept { return state_ == State::error; }
  std::uint64_t body_bytes() const noexcept { return body_bytes_; }  // chunk data bytes seen so far
  // Bytes of the current chunk not yet returned (0 outside chunk data): lets a caller size a read.
  std::uint64_t chunk_remaining() const noexcept { return state_ == State::data ? remaining_ : 0; }

  // Starts over for a new message, keeping the limits.
  void reset() noexcept { *this = ChunkedDecoder(limits_); }

 private:
  enum class State : std::uint8_t {
    size_first,     // expecting the first hex digit of chunk-size
    size,           // in chunk-size
    size_bws,       // whitespace after chunk-size: only ';' may follow
    ext_pre_name,   // after ';' (BWS then ext-name)
    ext_name,
    ext_post_name,  // BWS after ext-name: '=' or ';' or CR
    ext_pre_value,  // after '=' (BWS then token or quoted-string)
    ext_token_value,
    ext_quoted,
    ext_quoted_escape,
    ext_post_value,  // BWS after a value: ';' or CR
    size_lf,         // saw CR at the end of the chunk line
    data,
    data_cr,  // expecting CR after chunk data
    data_lf,
    trailer_line_start,  // at the start of a trailer line or of the final empty line
    trailer_name,
    trailer_value,
    trailer_lf,  // saw CR at the end of a trailer field line
    final_lf,    // saw CR of the final empty line
    done,
    error,
  };

  ChunkedStep fail(std::size_t consumed, std::uint16_t status, const char* reason) noexcept;

  ChunkedLimits limits_{};
  std::uint64_t remaining_ = 0;   // chunk-size being read, then bytes left in the current chunk
  std::uint64_t body_bytes_ = 0;  // sum of chunk sizes so far
  std::uint32_t ext_bytes_ = 0;   // bytes of chunk-ext on the current line
  std::uint32_t trailer_bytes_ = 0;
  std::uint16_t err_status_ = 0;
  const char* err_reason_ = nullptr;
  bool last_chunk_ = false;  // the chunk-size line being read is "0": trailers follow, not data
  State state_ = State::size_first;
};

}  // namespace ringlet::http
