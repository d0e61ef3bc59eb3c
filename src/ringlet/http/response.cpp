// response.cpp — reason phrases, head rendering and the handler's Response.
#include "ringlet/http/response.hpp"

#include <cstring>

#include "ringlet/buf/buffer.hpp"

namespace ringlet::http {

namespace {

struct StatusEntry {
  std::uint16_t code;
  std::string_view reason;
};

constexpr StatusEntry kStatuses[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {206, "Partial Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {408, "Request Timeout"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {503, "Service Unavailable"},
    {505, "HTTP Version Not Supported"},
};

}  // namespace

std::string_view reason_phrase(std::uint16_t status) noexcept {
  for (const StatusEntry& e : kStatuses) {
    if (e.code == status) return e.reason;
  }
  return "Unknown";
}

HeadBuilder& HeadBuilder::raw(std::string_view text) {
  while (!text.empty()) {
    if (used_ == kCapacity) flush();
    std::size_t n = std::min(text.size(), kCapacity - used_);
    std::memcpy(buf_ + used_, text.data(), n);
    used_ += n;
    text.remove_prefix(n);
  }
  return *this;
}

HeadBuilder& HeadBuilder::number(std::uint64_t value) {
  char tmp[20];
  std::size_t n = 0;
  do {
    tmp[sizeof tmp - 1 - n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  return raw(std::string_view(tmp + sizeof tmp - n, n));
}

HeadBuilder& HeadBuilder::status_line(std::uint16_t status, std::string_view date) {
  raw("HTTP/1.1 ");
  number(status);
  raw(" ");
  raw(reason_phrase(status));
  raw("\r\n");
  raw(kServerHeader);
  raw("Date: ");
  raw(date);
  return raw("\r\n");
}

HeadBuilder& HeadBuilder::header(std::string_view name, std::string_view value) {
  raw(name);
  raw(": ");
  raw(value);
  return raw("\r\n");
}

HeadBuilder& HeadBuilder::header(std::string_view name, std::uint64_t value) {
  raw(name);
  raw(": ");
  number(value);
  return raw("\r\n");
}

void HeadBuilder::flush() {
  if (used_ == 0) return;
  stream_->queue_copy(std::string_view(buf_, used_));
  used_ = 0;
}

void Response::clear() noexcept {
  status_ = 200;
  kind_ = BodyKind::none;
  set_content_type("text/plain");
  headers_.clear();
  bytes_.reset();
  chain_.clear();
  file_.reset();
  file_offset_ = 0;
  file_length_ = 0;
}

void Response::set_content_type(std::string_view type) {
  if (type.size() <= kInlineContentType) {
    std::memcpy(content_type_, type.data(), type.size());
    content_type_length_ = static_cast<std::uint8_t>(type.size());
    long_content_type_.clear();
  } else {
    long_content_type_.assign(type);
  }
}

void Response::add_header(std::string_view name, std::string_view value) {
  headers_.append(name);
  headers_.append(": ");
  headers_.append(value);
  headers_.append("\r\n");
}

void Response::set_body(Slice bytes) noexcept {
  kind_ = BodyKind::bytes;
  bytes_ = std::move(bytes);
}

void Response::set_body(std::string_view text) {
  kind_ = BodyKind::bytes;
  bytes_.reset();
  if (text.empty()) return;
  Buffer* b = BufferPool::local().acquire(text.size());
  Slice s(b, 0, static_cast<std::uint32_t>(text.size()));
  std::memcpy(s.mutable_data(), text.data(), text.size());
  bytes_ = std::move(s);
}

void Response::set_body(OutputChain chain) noexcept {
  kind_ = BodyKind::chain;
  chain_ = std::move(chain);
}

void Response::set_file(FileRef file, std::uint64_t offset, std::uint64_t length) noexcept {
  kind_ = BodyKind::file;
  file_ = std::move(file);
  file_offset_ = offset;
  file_length_ = length;
}

std::uint64_t Response::body_length() const noexcept {
  switch (kind_) {
    case BodyKind::none:
      return 0;
    case BodyKind::bytes:
      return bytes_.size();
    case BodyKind::chain:
      return chain_.bytes();
    case BodyKind::file:
      return file_length_;
  }
  return 0;
}

}  // namespace ringlet::http
