// compose.cpp — reason phrases, head composition and the short text responses.
#include "ringlet/proto/http/compose.hpp"

#include <algorithm>
#include <cstring>

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

std::string_view connection_line(const Request* request, After after) noexcept {
  if (after == After::close) return kConnectionClose;
  if (request != nullptr && request->version_minor() == 0) return kConnectionKeepAlive;
  return {};
}

HeadWriter& HeadWriter::raw(std::string_view text) {
  while (!text.empty()) {
    if (used_ == kCapacity) flush();
    std::size_t n = std::min(text.size(), kCapacity - used_);
    std::memcpy(buf_ + used_, text.data(), n);
    used_ += n;
    text.remove_prefix(n);
  }
  return *this;
}

HeadWriter& HeadWriter::number(std::uint64_t value) {
  char tmp[20];
  std::size_t n = 0;
  do {
    tmp[sizeof tmp - 1 - n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  return raw(std::string_view(tmp + sizeof tmp - n, n));
}

HeadWriter& HeadWriter::status_line(std::uint16_t status, std::string_view date) {
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

HeadWriter& HeadWriter::header(std::string_view name, std::string_view value) {
  raw(name);
  raw(": ");
  raw(value);
  return raw("\r\n");
}

HeadWriter& HeadWriter::header(std::string_view name, std::uint64_t value) {
  raw(name);
  raw(": ");
  number(value);
  return raw("\r\n");
}

void HeadWriter::flush() {
  if (used_ == 0) return;
  out_->append_copy(std::string_view(buf_, used_));
  used_ = 0;
}

std::uint64_t compose_simple_response(OutputChain& out, std::uint16_t status, std::string_view date,
                                      const Request* request, After after, std::string_view extra_header_lines) {
  HeadWriter head(out);
  head.status_line(status, date);
  std::string_view reason = reason_phrase(status);
  // status digits + ' ' + reason + '\n'
  std::uint64_t length = 3 + 1 + reason.size() + 1;
  head.raw(kContentTypeText).header("Content-Length", length);
  head.raw(extra_header_lines);
  head.raw(connection_line(request, after));
  head.raw(kHeadEnd);
  if (request != nullptr && request->method() == Method::head) return 0;
  head.number(status).raw(" ").raw(reason).raw("\n");
  return length;
}

}  // namespace ringlet::http
