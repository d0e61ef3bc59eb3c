// response.cpp — the handler's Response, and queuing responses and file bodies on a Stream.
#include "ringlet/http/response.hpp"

#include <cstring>

#include "ringlet/buf/buffer.hpp"

namespace ringlet::http {

namespace {

// Bodies up to this size are copied into the chain's tail behind the head (one iovec for head and body, and for
// every pipelined response of the turn); larger ones are queued as their own Slice (no copy).
constexpr std::size_t kCopyBodyBelow = 2048;

// sendfile in pieces of this size, each with its own send timeout: a slow but steady reader of a big file is not
// cut off, one that stops reading is (the timeout then means "less than 1 MiB per send_timeout").
constexpr std::uint64_t kSendfileStep = 1024 * 1024;

}  // namespace

std::uint64_t queue_simple(Stream& stream, std::uint16_t status, std::string_view date, const Request* request,
                           After after, std::string_view extra_header_lines) {
  return compose_simple_response(stream.output(), status, date, request, after, extra_header_lines);
}

void queue_body_slice(Stream& stream, const Slice& body, std::uint64_t offset, std::uint64_t length) {
  if (length == 0) return;
  if (length < kCopyBodyBelow) {
    stream.queue_copy(body.view().substr(offset, length));
  } else {
    stream.queue(body.sub(offset, length));
  }
}

Outcome queue_response(Stream& stream, const Request& request, Response& response, std::string_view date,
                       After after) {
  std::uint16_t status = response.status();
  bool no_body = status == 204 || status == 304 || (status >= 100 && status < 200);
  std::uint64_t length = response.body_length();
  {
    HeadWriter head(stream.output());
    head.status_line(status, date);
    if (!no_body) head.header("Content-Type", response.content_type()).header("Content-Length", length);
    head.raw(response.extra_headers());
    head.raw(connection_line(&request, after));
    head.end();
  }
  Outcome out{status, 0, {}};
  if (no_body || request.method() == Method::head) return out;
  out.body_bytes = length;
  switch (response.body_kind()) {
    case Response::BodyKind::none:
      break;
    case Response::BodyKind::bytes:
      queue_body_slice(stream, response.bytes(), 0, response.bytes().size());
      break;
    case Response::BodyKind::chain:
      while (!response.chain().empty()) stream.queue(response.chain().pop_front());
      break;
    case Response::BodyKind::file: {
      const FileRef& f = response.file();
      if (f->fd < 0) {
        queue_body_slice(stream, f->body, response.file_offset(), length);
      } else {
        out.pending = PendingFile{f, response.file_offset(), length};
      }
      break;
    }
  }
  return out;
}

Task<Status> send_pending_file(Stream& stream, PendingFile pending, Duration send_timeout) {
  Stream::SendfileSteps how{kSendfileStep, send_timeout, Toggle::on};
  co_return co_await stream.sendfile_steps(pending.file->fd, static_cast<off_t>(pending.offset), pending.length,
                                           how);
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
