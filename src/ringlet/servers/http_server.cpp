// http_server.cpp — the connection loop, static files and route dispatch of `ringlet http`.
//
// Everything that renders bytes is a plain function (its buffers live on the thread's stack, not in the
// connection's coroutine frame); the coroutine only decides what to wait for next.
#include "ringlet/servers/http_server.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "ringlet/buf/buffer.hpp"
#include "ringlet/http/conditional.hpp"
#include "ringlet/http/path.hpp"
#include "ringlet/http/range.hpp"
#include "ringlet/http/request_reader.hpp"
#include "ringlet/http/response.hpp"
#include "ringlet/base/log.hpp"

namespace ringlet::http {

namespace {

constexpr std::size_t kAccessLogFlushBytes = 64 * 1024;
// sendfile in pieces of this size, each with its own send timeout: a slow but steady reader of a big file is not
// cut off, one that stops reading is (the timeout then means "less than 1 MiB per send_timeout").
constexpr std::uint64_t kSendfileStep = 1024 * 1024;
// After an error response we stop reading and close; to let the client read the response before the kernel resets
// the connection (unread input at close() sends RST), we drain its input for at most this long.
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr std::size_t kLingerBytes = 1024 * 1024;

std::int64_t ns(Duration d) noexcept { return d.count(); }

// How the response ends the exchange.
enum class After : std::uint8_t { keep_alive, close };

// A body still to send with sendfile after the head (queued already).
struct PendingFile {
  FileRef file;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
};

struct Outcome {
  std::uint16_t status = 0;
  std::uint64_t body_bytes = 0;
  PendingFile pending;
};

void connection_header(HeadBuilder& head, const Request* request, After after) {
  if (after == After::close) {
    head.raw("Connection: close\r\n");
  } else if (request != nullptr && request->version_minor() == 0) {
    head.raw("Connection: keep-alive\r\n");
  }
}

// A complete error (or redirect) response with a short text body: "404 Not Found\n".
std::uint64_t queue_simple(Stream& stream, HttpServer& server, std::uint16_t status, const Request* request,
                           After after, std::string_view extra_header_lines = {}) {
  HeadBuilder head(stream);
  head.status_line(status, server.date());
  std::string_view reason = reason_phrase(status);
  // status digits + ' ' + reason + '\n'
  std::uint64_t length = 3 + 1 + reason.size() + 1;
  head.raw("Content-Type: text/plain\r\n").header("Content-Length", length);
  head.raw(extra_header_lines);
  connection_header(head, request, after);
  head.raw("\r\n");
  bool head_only = request != nullptr && request->method() == Method::head;
  if (!head_only) {
    head.number(status).raw(" ").raw(reason).raw("\n");
    head.flush();
    return length;
  }
  head.flush();
  return 0;
}

// Bodies up to this size are copied into the chain's tail behind the head (one iovec for head and body, and for
// every pipelined response of the turn); larger ones are queued as their own Slice (no copy).
constexpr std::size_t kCopyBodyBelow = 2048;

void queue_body_slice(Stream& stream, const Slice& body, std::uint64_t offset, std::uint64_t length) {
  if (length == 0) return;
  if (length < kCopyBodyBelow) {
    stream.queue_copy(body.view().substr(offset, length));
  } else {
    stream.queue(body.sub(offset, length));
  }
}

// ---- static files -----------------------------------------------------------------------------------------------

ConditionalHeaders conditional_headers(const Request& r) {
  ConditionalHeaders h;
  if (r.has(KnownHeader::if_none_match)) h.if_none_match = r.if_none_match();
  if (r.has(KnownHeader::if_modified_since)) h.if_modified_since = r.if_modified_since();
  if (r.has(KnownHeader::if_range)) h.if_range = r.if_range();
  // Not indexed by the parser: looked up only when the request has more fields than the indexed ones could be.
  if (r.header_count() > 1) {
    h.if_match = r.find("If-Match");
    h.if_unmodified_since = r.find("If-Unmodified-Since");
  }
  return h;
}

std::uint16_t status_for_open_error(Error e) noexcept {
  switch (e.code) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
      return 404;
    case EACCES:
    case EPERM:
    case EXDEV:  // RESOLVE_BENEATH: the path leaves the root through a symlink
    case ELOOP:
      return 403;
    default:
      return 500;
  }
}

// Renders "/dir" + "/" (+ "?query") into the scratch string for a Location header line.
std::string_view redirect_location(HttpServer& server, const Request& request) {
  std::string& s = server.scratch();
  s.assign("Location: ");
  s.append(request.path());
  s.push_back('/');
  if (request.has_query()) {
    s.push_back('?');
    s.append(request.query());
  }
  s.append("\r\n");
  return s;
}

void append_html_escaped(std::string& out, std::string_view text) {
  for (char c : text) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
}

void append_url_escaped(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    bool plain = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || c == '-' ||
                 c == '_' || c == '.' || c == '~';
    if (plain) {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
}

// An HTML index of a directory (--dir-listing). Names are escaped for both the URL and the HTML around it.
Outcome queue_listing(Stream& stream, HttpServer& server, const Request& request, std::string_view dir,
                      After after) {
  std::vector<std::string> names;
  Status listed = server.files()->list_directory(dir, names);
  if (!listed) {
    std::uint16_t status = status_for_open_error(listed.error());
    return Outcome{status, queue_simple(stream, server, status, &request, after)};
  }
  std::sort(names.begin(), names.end());
  std::string html;
  html.reserve(256 + names.size() * 64);
  html += "<!DOCTYPE html>\n<html><head><title>Index of ";
  append_html_escaped(html, dir);
  html += "/</title></head><body><h1>Index of ";
  append_html_escaped(html, dir);
  html += "/</h1><hr><pre>\n<a href=\"../\">../</a>\n";
  for (const std::string& name : names) {
    bool is_dir = !name.empty() && name.back() == '/';
    std::string url;
    append_url_escaped(url, std::string_view(name).substr(0, name.size() - (is_dir ? 1 : 0)));
    if (is_dir) url += '/';
    html += "<a href=\"";
    append_html_escaped(html, url);
    html += "\">";
    append_html_escaped(html, name);
    html += "</a>\n";
  }
  html += "</pre><hr></body></html>\n";
  {
    HeadBuilder head(stream);
    head.status_line(200, server.date());
    head.raw("Content-Type: text/html\r\n").header("Content-Length", html.size());
    connection_header(head, &request, after);
    head.end();
  }
  if (request.method() != Method::head) stream.queue(Slice::copy_of(std::string_view(html)));
  return Outcome{200, request.method() == Method::head ? 0 : html.size(), {}};
}

Outcome serve_file(Stream& stream, HttpServer& server, const Request& request, After after) {
  const Method method = request.method();
  if (method != Method::get && method != Method::head) {
    if (method == Method::other) return Outcome{501, queue_simple(stream, server, 501, &request, after)};
    return Outcome{405, queue_simple(stream, server, 405, &request, after, "Allow: GET, HEAD\r\n")};
  }
  std::string& path = server.scratch();
  NormalizedPath normalized = normalize_path(request.path(), path);
  if (normalized.status != 0) return Outcome{normalized.status, queue_simple(stream, server, 400, &request, after)};
  FileCache& files = *server.files();
  Result<FileRef> opened = files.open(path, server.loop().now_ns());
  if (opened && (*opened)->is_directory) {
    if (!normalized.trailing_slash) {
      std::string_view location = redirect_location(server, request);
      return Outcome{301, queue_simple(stream, server, 301, &request, after, location)};
    }
    std::size_t dir_length = path.size();
    path.append(path.size() == 1 ? "index.html" : "/index.html");
    Result<FileRef> index = files.open(path, server.loop().now_ns());
    if (!index && (index.error().code == ENOENT) && server.options().dir_listing) {
      path.resize(dir_length);
      return queue_listing(stream, server, request, path, after);
    }
    if (!index && index.error().code == ENOENT) return Outcome{403, queue_simple(stream, server, 403, &request, after)};
    opened = std::move(index);
    if (opened && (*opened)->is_directory) return Outcome{403, queue_simple(stream, server, 403, &request, after)};
  } else if (opened && normalized.trailing_slash) {
    opened = Error{ENOTDIR};  // "/file.txt/" names a directory that is not there
  }
  if (!opened) {
    std::uint16_t status = status_for_open_error(opened.error());
    if (status == 500) log_warn("http: open {}: {}", path, opened.error().message());
    return Outcome{status, queue_simple(stream, server, status, &request, after)};
  }
  const CachedFile& file = **opened;
  ConditionalHeaders conditions = conditional_headers(request);
  Validators validators{file.etag(), file.mtime, server.now_seconds()};
  Precondition pre = evaluate_preconditions(conditions, validators, true);
  if (pre == Precondition::failed) return Outcome{412, queue_simple(stream, server, 412, &request, after)};
  HeadBuilder head(stream);
  if (pre == Precondition::not_modified) {
    head.status_line(304, server.date());
    head.header("Last-Modified", file.last_modified()).header("ETag", file.etag());
    connection_header(head, &request, after);
    head.end();
    return Outcome{304};
  }
  std::uint16_t status = 200;
  std::uint64_t first = 0;
  std::uint64_t length = file.size;
  RangeDecision range;
  if (method == Method::get && request.has(KnownHeader::range) && !request.repeated(KnownHeader::range) &&
      if_range_allows(conditions, validators)) {
    range = evaluate_range(request.range(), file.size);
  }
  if (range.outcome == RangeOutcome::unsatisfiable) {
    head.status_line(416, server.date());
    head.raw("Content-Type: text/plain\r\nContent-Length: 26\r\nContent-Range: bytes */").number(file.size);
    head.raw("\r\n");
    connection_header(head, &request, after);
    head.raw("\r\n416 Range Not Satisfiable\n");
    head.flush();
    return Outcome{416, 26};
  }
  if (range.outcome == RangeOutcome::single) {
    status = 206;
    first = range.first;
    length = range.length();
  }
  head.status_line(status, server.date());
  head.header("Content-Type", file.content_type).header("Content-Length", length);
  head.header("Last-Modified", file.last_modified()).header("ETag", file.etag());
  if (status == 206) {
    head.raw("Content-Range: bytes ").number(range.first).raw("-").number(range.last).raw("/").number(file.size);
    head.raw("\r\n");
  } else {
    head.raw("Accept-Ranges: bytes\r\n");
  }
  connection_header(head, &request, after);
  head.end();
  Outcome out{status, 0};
  if (method == Method::head || length == 0) return out;
  out.body_bytes = length;
  if (file.fd < 0) {
    queue_body_slice(stream, file.body, first, length);
    return out;
  }
  out.pending = PendingFile{std::move(*opened), first, length};
  return out;
}

// ---- routes -------------------------------------------------------------------------------------------------------

Outcome queue_route_response(Stream& stream, HttpServer& server, const Request& request, Response& response,
                             After after) {
  std::uint16_t status = response.status();
  bool no_body = status == 204 || status == 304 || (status >= 100 && status < 200);
  std::uint64_t length = response.body_length();
  {
    HeadBuilder head(stream);
    head.status_line(status, server.date());
    if (!no_body) head.header("Content-Type", response.content_type()).header("Content-Length", length);
    head.raw(response.extra_headers());
    connection_header(head, &request, after);
    head.end();
  }
  Outcome out{status, 0};
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

// Gathers the whole request body (bounded by max_body) into one pooled buffer.
Task<Result<Slice>> read_whole_body(Stream& stream, HttpServer& server, const Request& request) {
  ChunkedLimits limits;
  limits.max_body_bytes = server.options().max_body;
  BodyReader body(request, limits);
  std::int64_t deadline = server.loop().now_ns() + ns(server.options().body_timeout);
  std::size_t capacity = request.framing() == BodyFraming::content_length
                             ? static_cast<std::size_t>(request.content_length())
                             : 4096;
  Slice holder(BufferPool::local().acquire(capacity), 0, static_cast<std::uint32_t>(capacity));
  std::size_t used = 0;
  for (;;) {
    Result<Slice> piece = co_await read_body_some(stream, body, deadline);
    if (!piece) co_return piece.error();
    if (piece->empty()) break;
    if (used + piece->size() > server.options().max_body) co_return errc::frame_too_long;
    if (used + piece->size() > holder.size()) {
      std::size_t grown = std::max<std::size_t>(used + piece->size(), used * 2);
      Slice bigger(BufferPool::local().acquire(grown), 0, static_cast<std::uint32_t>(grown));
      std::memcpy(bigger.mutable_data(), holder.data(), used);
      holder = std::move(bigger);
    }
    std::memcpy(holder.mutable_data() + used, piece->data(), piece->size());
    used += piece->size();
  }
  co_return holder.sub(0, used);
}

Task<Outcome> serve_route(Stream& stream, HttpServer& server, const Request& request, const Router::Route* route,
                          Slice body, After after) {
  Response response;
  RequestContext ctx{request, std::move(body), response, route->user};
  co_await route->handler(ctx);
  co_return queue_route_response(stream, server, request, response, after);
}

// ---- the connection ---------------------------------------------------------------------------------------------

}  // namespace

Task<void> http_connection(Stream stream, TcpServer& tcp) {
  HttpServer& server = *static_cast<HttpServer*>(tcp.user());
  const HttpOptions& options = server.options();
  Loop& loop = server.loop();
  Address peer;
  if (server.access_log_enabled()) {
    Result<Address> a = stream.peer_address();
    if (a) peer = *a;
  }
  bool first = true;
  bool linger = false;
  for (;;) {
    if (!first && stream.inbound().empty()) {
      // Idle between requests: the keep-alive timeout runs until the next request's first byte.
      Status idle = co_await with_timeout(stream.wait_more(), options.keepalive_timeout);
      if (!idle || stream.at_eof()) break;
    }
    first = false;
    bool started = false;
    Result<RequestHead> head =
        co_await read_request(stream, options.parser, loop.now_ns() + ns(options.header_timeout), &started);
    if (!head) {
      if (head.error() == errc::timed_out && started) {
        log_debug("http: fd {}: request head not complete within the header timeout: closing", stream.fd());
        queue_simple(stream, server, 408, nullptr, After::close);
        linger = true;
      }
      break;
    }
    if (!head->ok()) {
      log_debug("http: fd {}: bad request ({} {})", stream.fd(), head->error_status,
                head->error_reason ? head->error_reason : "");
      queue_simple(stream, server, head->error_status, nullptr, After::close);
      ++server.stats().errors;
      linger = true;
      break;
    }
    const Request& request = head->request;
    ++server.stats().requests;
    After after = request.keep_alive() && !tcp.stopping() ? After::keep_alive : After::close;
    Router::Found found = server.router().find(request.method(), request.path());
    Outcome outcome;
    Slice body;
    bool body_failed = false;
    if (request.has_body()) {
      if (request.framing() == BodyFraming::content_length && request.content_length() > options.max_body) {
        outcome.status = 413;
        outcome.body_bytes = queue_simple(stream, server, 413, &request, After::close);
        after = After::close;
        body_failed = true;
      } else {
        if (request.expect_continue()) stream.queue_copy(kContinueLine);
        if (found.route != nullptr) {
          Result<Slice> whole = co_await read_whole_body(stream, server, request);
          if (whole) {
            body = std::move(*whole);
          } else {
            body_failed = true;
          }
        } else {
          ChunkedLimits limits;
          limits.max_body_bytes = options.max_body;
          BodyReader reader(request, limits);
          Status drained =
              co_await discard_body(stream, reader, options.max_body, loop.now_ns() + ns(options.body_timeout));
          body_failed = !drained;
        }
        if (body_failed) {
          // Over --max-body (chunked), malformed chunks, or the client gave up: answer if it makes sense, close.
          outcome.status = 400;
          after = After::close;
          outcome.body_bytes = queue_simple(stream, server, 400, &request, After::close);
        }
      }
    }
    if (!body_failed) {
      if (found.route != nullptr) {
        outcome = co_await serve_route(stream, server, request, found.route, std::move(body), after);
      } else if (found.path_known) {
        std::string& allow = server.scratch();
        allow.assign("Allow: ").append(found.allow).append("\r\n");
        outcome.status = 405;
        outcome.body_bytes = queue_simple(stream, server, 405, &request, after, allow);
      } else if (server.files() != nullptr) {
        outcome = serve_file(stream, server, request, after);
      } else {
        outcome.status = 404;
        outcome.body_bytes = queue_simple(stream, server, 404, &request, after);
      }
    }
    if (outcome.status >= 400) ++server.stats().errors;
    if (server.access_log_enabled()) server.log_access(peer, request, outcome.status, outcome.body_bytes);
    if (outcome.pending.file) {
      Stream::SendfileSteps how{kSendfileStep, options.send_timeout, Toggle::on};
      Status sent = co_await stream.sendfile_steps(outcome.pending.file->fd, static_cast<off_t>(outcome.pending.offset),
                                                   outcome.pending.length, how);
      outcome.pending = {};
      if (!sent) {
        log_debug("http: fd {}: sending a file: {}", stream.fd(), sent.error().message());
        co_return;
      }
    }
    if (after == After::close) {
      linger = body_failed;
      break;
    }
    // Back-pressure: a client that pipelines without reading makes us wait here (bounded output per connection).
    if (stream.queued_bytes() >= options.output_limit) {
      Status room = co_await with_timeout(stream.write(Slice{}), options.send_timeout);
      if (!room) {
        log_debug("http: fd {}: client not reading: {}", stream.fd(), room.error().message());
        co_return;
      }
    }
  }
  if (linger) {
    co_await stream.linger_close(Stream::Linger{kLingerTime, kLingerBytes, options.send_timeout});
    co_return;
  }
  (void)co_await with_timeout(stream.flush(), options.send_timeout);
}

// ---- the server ---------------------------------------------------------------------------------------------------

Result<std::unique_ptr<HttpServer>> HttpServer::create(Loop& loop, HttpOptions options) {
  std::unique_ptr<FileCache> files;
  if (options.serve_files) {
    auto created = FileCache::create(options.root, options.file_cache);
    if (!created) {
      log_error("http: cannot open the document root {}: {}", options.root, created.error().message());
      return created.error();
    }
    files = std::move(*created);
  }
  int access_fd = -1;
  if (!options.access_log.empty()) {
    access_fd = ::open(options.access_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (access_fd < 0) {
      Error e{errno};
      log_error("http: cannot open the access log {}: {}", options.access_log, e.message());
      return e;
    }
  }
  options.server.name = "http";
  options.server.listen_options.stream.send_high_watermark = options.output_limit;
  auto server = std::unique_ptr<HttpServer>(new HttpServer(loop, std::move(options), std::move(files), access_fd));
  if (server->options_.bench_routes) add_bench_routes(server->router_);
  const HttpOptions& o = server->options_;
  log_info("http: root {} (files {}{}), header timeout {} s, keep-alive {} s, send timeout {} s, max body {} B",
           o.serve_files ? o.root : std::string("-"), o.serve_files ? "on" : "off",
           o.dir_listing ? ", listing on" : "", std::chrono::duration<double>(o.header_timeout).count(),
           std::chrono::duration<double>(o.keepalive_timeout).count(),
           std::chrono::duration<double>(o.send_timeout).count(), o.max_body);
  return server;
}

HttpServer::HttpServer(Loop& loop, HttpOptions options, std::unique_ptr<FileCache> files, int access_fd)
    : loop_(&loop),
      options_(std::move(options)),
      files_(std::move(files)),
      access_fd_(access_fd),
      tcp_(loop, options_.server, &http_connection, this) {
  scratch_.reserve(options_.parser.max_request_line + 64);
  if (access_fd_ >= 0) access_buffer_.reserve(kAccessLogFlushBytes + 4096);
}

HttpServer::~HttpServer() {
  flush_access_log();
  if (access_fd_ >= 0) ::close(access_fd_);
}

void HttpServer::log_access(const Address& peer, const Request& request, std::uint16_t status,
                            std::uint64_t body_bytes) {
  // Common Log Format, with the Date header's text as the time.
  std::string host = peer.is_ip() ? peer.to_string() : std::string("-");
  std::size_t colon = host.rfind(':');
  if (colon != std::string::npos && peer.is_ip()) host.resize(colon);
  fmt::format_to(std::back_inserter(access_buffer_), "{} - - [{}] \"{} {} HTTP/1.{}\" {} {}\n", host, date(),
                 request.method_text(), request.target(), request.version_minor(), status, body_bytes);
  std::int64_t now = loop_->now_ns();
  if (access_buffer_.size() >= kAccessLogFlushBytes || now - access_flushed_ns_ >= 1'000'000'000) {
    flush_access_log();
    access_flushed_ns_ = now;
  }
}

void HttpServer::flush_access_log() noexcept {
  if (access_fd_ < 0 || access_buffer_.empty()) return;
  std::size_t done = 0;
  while (done < access_buffer_.size()) {
    ssize_t n = ::write(access_fd_, access_buffer_.data() + done, access_buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      log_warn("http: access log write failed: {}", Error{errno}.message());
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  access_buffer_.clear();
}

}  // namespace ringlet::http
