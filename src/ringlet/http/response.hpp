// response.hpp — composing HTTP/1.1 responses: status lines, header blocks rendered into the stream's output
// chain, and the Response a route handler fills. Core-local.
//
// Rendering never flushes: a head is copied into the output chain's pooled tail (Stream::queue_copy), so the
// heads (and small bodies) of every response a connection produced in one loop turn sit in one buffer and leave
// with one send. HeadBuilder works in a fixed buffer on the caller's stack, passing full chunks on, so a head of
// any size costs no allocation; call it from a plain function, not inside a coroutine body (a coroutine keeps its
// locals in its frame, which would carry the buffer for the connection's whole life).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "ringlet/buf/output_chain.hpp"
#include "ringlet/buf/slice.hpp"
#include "ringlet/http/file_cache.hpp"
#include "ringlet/net/stream.hpp"

namespace ringlet::http {

// "OK", "Not Found", ...; "Unknown" for codes not in the table.
std::string_view reason_phrase(std::uint16_t status) noexcept;

// Response header and body strings in one place (STYLE: reply strings are named constants).
inline constexpr std::string_view kServerHeader = "Server: ringlet\r\n";
inline constexpr std::string_view kContinueLine = "HTTP/1.1 100 Continue\r\n\r\n";

class HeadBuilder {
 public:
  explicit HeadBuilder(Stream& stream) noexcept : stream_(&stream) {}
  HeadBuilder(const HeadBuilder&) = delete;
  HeadBuilder& operator=(const HeadBuilder&) = delete;
  ~HeadBuilder() { flush(); }

  // "HTTP/1.1 <status> <reason>\r\nServer: ringlet\r\nDate: <date>\r\n"
  HeadBuilder& status_line(std::uint16_t status, std::string_view date);
  HeadBuilder& header(std::string_view name, std::string_view value);
  HeadBuilder& header(std::string_view name, std::uint64_t value);
  HeadBuilder& raw(std::string_view text);  // already formatted lines ("Name: value\r\n...")
  HeadBuilder& number(std::uint64_t value);
  // The final empty line; the head is handed to the stream (appended to its chain, not sent yet).
  void end() {
    raw("\r\n");
    flush();
  }
  void flush();

 private:
  static constexpr std::size_t kCapacity = 1024;
  Stream* stream_;
  std::size_t used_ = 0;
  char buf_[kCapacity];
};

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

}  // namespace ringlet::http
