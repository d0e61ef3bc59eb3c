// response_parser.hpp — HTTP/1.x response parsing for clients (the load generator): the head (status line and
// header fields) and the body's framing (Content-Length, chunked, or until the connection closes).
// Pure, incremental, zero-copy, I/O-free; one parser per connection, core-local.
//
// ResponseHeadParser::parse(bytes, head) answers complete (head filled, `consumed` = head length), need_more, or
// error. Views in the head (reason, fields) point into the bytes passed. On need_more the parser remembers where
// the first incomplete line starts, so a head arriving in pieces is scanned for line ends once in total: call again
// with the same bytes plus the new ones (the bytes from the start of the response, not only the new ones).
//
// Framing follows RFC 9112 §6.3 for responses: no body for 1xx, 204, 304 and answers to HEAD; Transfer-Encoding
// whose last coding is chunked -> chunked (http/chunked.hpp decodes it); other Transfer-Encoding -> until close;
// else a valid Content-Length -> that many bytes (several equal values are accepted, differing ones are an error);
// else until close. Lines may end in CRLF or a bare LF (RFC 9112 §2.2 lets recipients accept LF); obs-fold
// (a line starting with SP/HTAB) is an error, as is whitespace between a field name and its colon.
//
// ResponseBodyReader consumes the body from the front of the input as it arrives and counts it; chunk data and
// plain body bytes come back as views for a caller that wants to check them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "ringlet/proto/http/chunked.hpp"

namespace ringlet::http {

enum class BodyFraming : std::uint8_t { none, length, chunked, until_close };

struct ResponseField {
  std::string_view name;
  std::string_view value;
};

struct ResponseHead {
  int version_minor = 1;  // HTTP/1.x
  int status = 0;
  std::string_view reason;
  BodyFraming framing = BodyFraming::until_close;
  std::uint64_t content_length = 0;  // for BodyFraming::length
  bool keep_alive = true;            // the server keeps the connection open after this response
  std::size_t field_count = 0;       // fields seen (those beyond the caller's array are parsed, not stored)
};

struct ResponseLimits {
  std::size_t max_head_bytes = 64 * 1024;
  std::size_t max_fields = 128;
};

struct HeadResult {
  enum class Status : std::uint8_t { complete, need_more, error } status;
  std::size_t consumed = 0;       // complete: bytes of the head, including the empty line
  const char* error = nullptr;    // error: a static description
};

class ResponseHeadParser {
 public:
  ResponseHeadParser() = default;
  explicit ResponseHeadParser(const ResponseLimits& limits) noexcept : limits_(limits) {}

  // `head_request`: the request was HEAD (its response has no body whatever the fields say).
  // `fields`: where to store the fields (may be empty); views into `in`.
  HeadResult parse(std::string_view in, ResponseHead& head, bool head_request = false,
                   std::span<ResponseField> fields = {});
  // Forgets the resume position (for the next response, or after the caller dropped bytes).
  void reset() noexcept { line_start_ = 0; }

 private:
  ResponseLimits limits_{};
  std::size_t line_start_ = 0;  // every line before this offset is complete and not blank
};

struct BodyStep {
  enum class Status : std::uint8_t { need_more, data, done, error } status;
  std::size_t consumed = 0;    // bytes of the input used (framing and data)
  std::string_view data;       // body bytes (a view into the input), possibly empty
  const char* error = nullptr;
};

class ResponseBodyReader {
 public:
  void start(const ResponseHead& head) noexcept;
  // Consumes body bytes from the front of `in`. `eof`: the peer has closed (ends an until-close body; any other
  // unfinished body is then an error). Call until done (or need_more: wait for bytes).
  BodyStep feed(std::string_view in, bool eof) noexcept;
  std::uint64_t body_bytes() const noexcept { return bytes_; }
  bool done() const noexcept { return done_; }

 private:
  BodyFraming framing_ = BodyFraming::none;
  std::uint64_t remaining_ = 0;
  std::uint64_t bytes_ = 0;
  bool done_ = true;
  ChunkedDecoder chunked_;
};

}  // namespace ringlet::http
