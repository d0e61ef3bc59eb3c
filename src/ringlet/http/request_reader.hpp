// request_reader.hpp — reads HTTP/1.1 request heads and bodies from a Stream. Core-local (the stream's loop).
//
// The glue between Stream (received bytes in a SliceQueue) and the pure parsers (parser.hpp, chunked.hpp):
//
//   for (;;) {
//     auto head = co_await read_request(stream, limits, loop.now_ns() + head_timeout_ns);
//     if (!head) break;                                   // errc::eof / timed_out / cancelled / receive error
//     if (!head->ok()) { answer(head->error_status); break; }   // malformed: respond and close
//     const Request& req = head->request;                 // views into head->bytes
//     BodyReader body(req, body_limits);
//     ... if (req.expect_continue()) send "100 Continue" before reading the body ...
//     ... read with read_body_some(stream, body), or discard_body(stream, body) before the next request ...
//   }
//
// Zero-copy: a head that lies within the front receive buffer (the common case) is parsed in place; head->bytes
// is a Slice of that receive buffer and the request's views point into it. A head that straddles receive buffers
// is copied once (each byte at most once, only the head's bytes) into one pooled buffer as it arrives; the parser
// resumes where it stopped either way, so a slowly arriving head is never rescanned. The copy is counted
// (copy_counter.hpp). Keep head->bytes alive as long as you use the request's views.
//
// Slowloris: `deadline_ns` (loop clock, Loop::now_ns(); 0 = none) bounds the time to receive the WHOLE head, not
// the time between bytes: a client trickling a byte a second still runs out. Past it: errc::timed_out.
//
// Pipelining: read_request consumes exactly the head; bodies are consumed exactly by the body helpers; whatever
// follows stays queued for the next read_request.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ringlet/buf/slice.hpp"
#include "ringlet/proto/http/chunked.hpp"
#include "ringlet/proto/http/parser.hpp"
#include "ringlet/proto/http/request.hpp"
#include "ringlet/net/stream.hpp"
#include "ringlet/base/result.hpp"
#include "ringlet/runtime/task.hpp"

namespace ringlet::http {

// Error of the body helpers (a code in ringlet's private range; not in namespace errc, so that errc::eof & co.
// still resolve inside ringlet::http): malformed chunked framing; BodyReader::http_status() says 400/413/431.
inline constexpr Error bad_body{10201};

struct RequestHead {
  Request request;                 // valid when ok(); its views point into `bytes`
  Slice bytes;                     // the head's bytes (may be empty on error)
  std::uint16_t error_status = 0;  // non-zero: malformed head; answer this status and close (400, 414, 431, ...)
  const char* error_reason = nullptr;
  bool ok() const noexcept { return error_status == 0; }
};

// Reads the next request head. Consumes exactly the head's bytes from stream.inbound() on success. After a parse
// error or an Error the queue's contents are unspecified (part of the head may be consumed): close the connection.
// Errors (Result error): errc::eof — the peer closed (or the receive failed) before a complete head; check
// `started` to tell a clean close between requests (nothing received) from a truncated head; errc::timed_out —
// deadline_ns passed (or the stream's own progress timeout); errc::cancelled.
// `started`, when not null, is set to whether any byte of this request (beyond leading empty lines) arrived.
Task<Result<RequestHead>> read_request(Stream& stream, ParserLimits limits, std::int64_t deadline_ns = 0,
                                       bool* started = nullptr);

// The body framing of one request, and how much of it is left. Construct from the parsed request.
class BodyReader {
 public:
  BodyReader() = default;  // no body
  explicit BodyReader(const Request& request, const ChunkedLimits& chunked_limits = {}) noexcept;

  BodyFraming framing() const noexcept { return framing_; }
  bool done() const noexcept { return done_; }
  std::uint64_t bytes_read() const noexcept { return bytes_read_; }  // body bytes handed out or discarded so far
  // Content-Length framing: bytes still to come. Chunked: unknown (returns 0).
  std::uint64_t remaining() const noexcept { return framing_ == BodyFraming::content_length ? remaining_ : 0; }
  // After bad_body: the status to answer (400, 413, 431) and a reason for logs.
  std::uint16_t http_status() const noexcept { return status_; }
  const char* reason() const noexcept { return reason_; }

  // Consumes body bytes from the front of `in` (at most what the framing allows) and returns the body data as a
  // Slice of `in`'s front slice (no copy). An empty Slice means: body done if done(), else more bytes are needed.
  // Used by the helpers below; exposed for tests and custom readers. Returns bad_body on malformed chunked framing.
  Result<Slice> take(SliceQueue& in) noexcept;

 private:
  ChunkedDecoder chunked_{};
  std::uint64_t remaining_ = 0;
  std::uint64_t bytes_read_ = 0;
  const char* reason_ = nullptr;
  std::uint16_t status_ = 0;
  BodyFraming framing_ = BodyFraming::none;
  bool done_ = true;
};

// The next piece of the body as a view into a receive buffer (no copy), waiting for bytes as needed. An empty
// Slice means the body is complete (the framing bytes after it are consumed too, so the next request is framed
// right). Errors: errc::eof (peer closed mid-body), bad_body, stream errors, errc::timed_out after
// deadline_ns (0 = none).
Task<Result<Slice>> read_body_some(Stream& stream, BodyReader& body, std::int64_t deadline_ns = 0);

// Reads and drops the rest of the body, so the next request on the connection is framed correctly. `max_bytes`
// bounds what we are willing to drain (a server answering 413 should close rather than drain a huge body):
// more than that → errc::frame_too_long without draining further.
Task<Status> discard_body(Stream& stream, BodyReader& body, std::uint64_t max_bytes, std::int64_t deadline_ns = 0);

// The whole body of `request` gathered into one pooled buffer (grown by doubling when the length is not known in
// advance), for a handler that wants it in one piece. Errors: as read_body_some, and errc::frame_too_long past
// `max_bytes` (a chunked body; a Content-Length above it should have been refused before calling this).
Task<Result<Slice>> read_whole_body(Stream& stream, const Request& request, std::uint64_t max_bytes,
                                    std::int64_t deadline_ns = 0);

}  // namespace ringlet::http
