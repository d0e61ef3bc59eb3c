// compose.hpp — composing HTTP/1.1 response heads: the status line, header lines, the Connection header, a whole
// short text response, and every fixed header and body string in one place. Pure (no I/O): everything is appended
// to a buf::OutputChain, which a Stream (Stream::output()) or a test owns. Core-local.
//
// HeadWriter works in a fixed buffer on the caller's stack and appends full chunks with OutputChain::append_copy,
// so a head of any size costs no allocation, and the heads (and small bodies) of every response a connection
// produced in one loop turn share the chain's pooled tail buffer: one iovec, one send. Use it from a plain
// function, not inside a coroutine body (a coroutine keeps its locals in its frame, which would carry the 1 KiB
// buffer for the connection's whole life).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ringlet/buf/output_chain.hpp"
#include "ringlet/proto/http/request.hpp"

namespace ringlet::http {

// "OK", "Not Found", ...; "Unknown" for codes not in the table.
std::string_view reason_phrase(std::uint16_t status) noexcept;

// Fixed header lines and bodies (STYLE: reply strings are named constants). Header lines end in CRLF.
inline constexpr std::string_view kServerHeader = "Server: ringlet\r\n";
inline constexpr std::string_view kContinueLine = "HTTP/1.1 100 Continue\r\n\r\n";
inline constexpr std::string_view kConnectionClose = "Connection: close\r\n";
inline constexpr std::string_view kConnectionKeepAlive = "Connection: keep-alive\r\n";
inline constexpr std::string_view kContentTypeText = "Content-Type: text/plain\r\n";
inline constexpr std::string_view kContentTypeHtml = "Content-Type: text/html\r\n";
inline constexpr std::string_view kAcceptRanges = "Accept-Ranges: bytes\r\n";
inline constexpr std::string_view kAllowGetHead = "Allow: GET, HEAD\r\n";
inline constexpr std::string_view kHeadEnd = "\r\n";

// How a response ends its exchange: the connection stays open for the next request, or closes after it.
enum class After : std::uint8_t { keep_alive, close };

// The Connection line a response needs: "close" when closing; "keep-alive" to an HTTP/1.0 request that asked to
// stay open (1.1 stays open by default: no line). `request` is null when no request could be parsed.
std::string_view connection_line(const Request* request, After after) noexcept;

class HeadWriter {
 public:
  explicit HeadWriter(OutputChain& out) noexcept : out_(&out) {}
  HeadWriter(const HeadWriter&) = delete;
  HeadWriter& operator=(const HeadWriter&) = delete;
  ~HeadWriter() { flush(); }

  // "HTTP/1.1 <status> <reason>\r\nServer: ringlet\r\nDate: <date>\r\n"
  HeadWriter& status_line(std::uint16_t status, std::string_view date);
  HeadWriter& header(std::string_view name, std::string_view value);
  HeadWriter& header(std::string_view name, std::uint64_t value);
  HeadWriter& raw(std::string_view text);  // already formatted lines ("Name: value\r\n...")
  HeadWriter& number(std::uint64_t value);
  // The final empty line; the head is appended to the chain.
  void end() {
    raw(kHeadEnd);
    flush();
  }
  void flush();

 private:
  static constexpr std::size_t kCapacity = 1024;
  OutputChain* out_;
  std::size_t used_ = 0;
  char buf_[kCapacity];
};

// A complete response with a short text body naming the status ("404 Not Found\n"), for errors and redirects:
// Content-Type text/plain, Content-Length, `extra_header_lines` (formatted lines, e.g. a Location), the Connection
// line. Returns the body bytes composed (0 for a HEAD request, which gets the head only).
std::uint64_t compose_simple_response(OutputChain& out, std::uint16_t status, std::string_view date,
                                      const Request* request, After after, std::string_view extra_header_lines = {});

}  // namespace ringlet::http
