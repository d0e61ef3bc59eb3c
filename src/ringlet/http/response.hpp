// response.hpp — what a route handler answers (Response), and queuing responses on a Stream: a handler's Response,
// a short text response, a body Slice, and a file body sent with sendfile after its head. Core-local.
//
// The composition itself (status line, header lines, named strings) is pure and lives in proto/http/compose.hpp;
// this file keeps what needs the stream or the file cache. Queuing never flushes: heads and small bodies go into
// the stream's output chain (Stream::output()), so every response a connection produced in one loop turn leaves
// with one send.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "ringlet/buf/output_chain.hpp"
#include "ringlet/buf/slice.hpp"
#include "ringlet/http/file_cache.hpp"
#include "ringlet/net/stream.hpp"
#include "ringlet/proto/http/compose.hpp"
#include "ringlet/proto/http/request.hpp"

namespace ringlet::http {

// What a route handler answers. One per connection, cleared (keeping its capacity) before each request, so a
// steady stream of requests allocates nothing.
class Response {
 public:
  enum class BodyKind : std::uint8_t { none, bytes, chain, file };

  void clear() noexcept;

  void set_status(std::uint16_t status) noexcept { status_ = status; }
  std::uint16_t status() const noexcept { return status_; }
  // Content-Type (default text/plain). The text is copied (inline up to kInlineContentType bytes: no allocation).
  void set_content_type(std::string_view type);
  // Any other header. Server, Date, Content-Length and Connection are the server's: do not add them.
  void add_header(std::string_view name, std::string_view value);

  // The body: bytes (a Slice, no copy; or text, copied into a pooled buffer), a chain of Slices, or a file range
  // sent with sendfile (or from memory when the cache holds it).
  void set_body(Slice bytes) noexcept;
  void set_body(std::string_view text);
  void set_body(OutputChain chain) noexcept;
  void set_file(FileRef file, std::uint64_t offset, std::uint64_t length) noexcept;

  BodyKind body_kind() const noexcept { return kind_; }
  std::uint64_t body_length() const noexcept;
  std::string_view content_type() const noexcept {
    return long_content_type_.empty() ? std::string_view(content_type_, content_type_length_)
                                      : std::string_view(long_content_type_);
  }
  static constexpr std::size_t kInlineContentType = 62;
  std::string_view extra_headers() const noexcept { return headers_; }
  Slice& bytes() noexcept { return bytes_; }
  OutputChain& chain() noexcept { return chain_; }
  const FileRef& file() const noexcept { return file_; }
  std::uint64_t file_offset() const noexcept { return file_offset_; }

 private:
  std::uint16_t status_ = 200;
  BodyKind kind_ = BodyKind::none;
  std::uint8_t content_type_length_ = 10;
  char content_type_[kInlineContentType] = "text/plain";
  std::string long_content_type_;
  std::string headers_;  // "Name: value\r\n" lines
  Slice bytes_;
  OutputChain chain_;
  FileRef file_;
  std::uint64_t file_offset_ = 0;
  std::uint64_t file_length_ = 0;
};

// A body still to send with sendfile after its head (queued already).
struct PendingFile {
  FileRef file;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

// What queuing a response did: its status and body bytes (for stats and the access log), and a file body still
// to send (send_pending_file) before the next response may be queued.
struct Outcome {
  std::uint16_t status = 0;
  std::uint64_t body_bytes = 0;
  PendingFile pending;
};

// A whole short text response ("404 Not Found\n"; see compose_simple_response). Returns its body bytes.
std::uint64_t queue_simple(Stream& stream, std::uint16_t status, std::string_view date, const Request* request,
                           After after, std::string_view extra_header_lines = {});

// `length` bytes of `body` from `offset`: small ones copied behind the head in the chain's tail, larger ones
// queued as a Slice of the same buffer (no copy).
void queue_body_slice(Stream& stream, const Slice& body, std::uint64_t offset, std::uint64_t length);

// A route handler's Response: its head (Server, Date, Content-Length and Connection added) and body.
Outcome queue_response(Stream& stream, const Request& request, Response& response, std::string_view date,
                       After after);

// Sends a pending file body: sendfile in 1 MiB steps, each bounded by `send_timeout`, corked behind its head.
Task<Status> send_pending_file(Stream& stream, PendingFile pending, Duration send_timeout);

}  // namespace ringlet::http
