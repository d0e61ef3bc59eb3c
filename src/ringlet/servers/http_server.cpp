// http_server.cpp — the connection loop of `ringlet http` (docs/design/http.md, "The connection loop"), and the
// server's creation. Everything that renders bytes lives below: composing in proto/http/compose, files in
// http/static_files, handler responses in http/response, lingering close and stepped sendfile in net/stream. Those
// are plain functions (their buffers live on the thread's stack, not in the connection's coroutine frame); the
// coroutine only decides what to wait for next.
#include "ringlet/servers/http_server.hpp"

#include "ringlet/base/log.hpp"
#include "ringlet/http/request_reader.hpp"
#include "ringlet/http/response.hpp"
#include "ringlet/http/static_files.hpp"
#include "ringlet/runtime/turn_budget.hpp"

namespace ringlet::http {

namespace {


// After an error response we stop reading and close; to let the client read the response before the kernel resets
// the connection (unread input at close() sends RST), we drain its input for at most this long and this much.
constexpr auto kLingerTime = std::chrono::seconds(2);
constexpr std::size_t kLingerBytes = 1024 * 1024;

std::int64_t ns(Duration d) noexcept { return d.count(); }

Outcome serve_file(Stream& stream, HttpServer& server, const Request& request, After after) {
  StaticContext ctx{*server.files(),  server.date(), server.now_seconds(), server.loop().now_ns(),
                    server.options().dir_listing, server.scratch()};
  return serve_static_file(stream, ctx, request, after);
}

Task<Outcome> serve_route(Stream& stream, HttpServer& server, const Request& request, const Router::Route* route,
                          Slice body, After after) {
  Response response;
  RequestContext ctx{request, std::move(body), response, route->user};
  co_await route->handler(ctx);
  co_return queue_response(stream, request, response, server.date(), after);
}

// Reads the body a request announced: whole for a route (its handler gets it in one Slice), drained for a file.
// False when it is over the limit, malformed, or the client gave up: the connection must close.
Task<bool> take_body(Stream& stream, HttpServer& server, const Request& request, bool for_route, Slice& body) {
  const HttpOptions& options = server.options();
  const std::int64_t deadline = server.loop().now_ns() + ns(options.body_timeout);
  if (request.expect_continue()) stream.queue_copy(kContinueLine);
  if (for_route) {
    Result<Slice> whole = co_await read_whole_body(stream, request, options.max_body, deadline);
    if (!whole) co_return false;
    body = std::move(*whole);
    co_return true;
  }
  ChunkedLimits limits;
  limits.max_body_bytes = options.max_body;
  BodyReader reader(request, limits);
  Status drained = co_await discard_body(stream, reader, options.max_body, deadline);
  co_return drained.ok();
}

// "GET /path HTTP/1.1" into the server's scratch text, for the access log.
std::string_view request_line(HttpServer& server, const Request& request) {
  std::string& s = server.scratch();
  s.assign(request.method_text()).append(" ").append(request.target()).append(" HTTP/1.");
  s.push_back(static_cast<char>('0' + request.version_minor()));
  return s;
}

}  // namespace

Task<void> http_connection(Stream stream, TcpServer& tcp) {
  HttpServer& server = *static_cast<HttpServer*>(tcp.user());
  const HttpOptions& options = server.options();
  Loop& loop = server.loop();
  AccessLog& access_log = server.access_log();
  Address peer;
  if (access_log.enabled()) {
    Result<Address> a = stream.peer_address();
    if (a) peer = *a;
  }
  bool first = true;
  bool linger = false;
  TurnBudget turn;  // requests answered since this task last let the others run
  for (;;) {
    if (!first && stream.inbound().empty()) {
      // Idle between requests: the keep-alive timeout runs until the next request's first byte.
      Status idle = co_await with_timeout(stream.wait_more(), options.keepalive_timeout);
      if (!idle || stream.at_eof()) break;
    }
    first = false;
    bool started = false;
    const std::int64_t started_ns = loop.now_ns();
    Result<RequestHead> head =
        co_await read_request(stream, options.parser, started_ns + ns(options.header_timeout), &started);
    if (!head) {
      if (head.error() == errc::timed_out && started) {
        log_debug("http: fd {}: request head not complete within the header timeout: closing", stream.fd());
        queue_simple(stream, 408, server.date(), nullptr, After::close);
        server.stats().note_response(408);
        linger = true;
      }
      break;
    }
    if (!head->ok()) {
      log_debug("http: fd {}: bad request ({} {})", stream.fd(), head->error_status,
                head->error_reason ? head->error_reason : "");
      queue_simple(stream, head->error_status, server.date(), nullptr, After::close);
      ++server.stats().errors;
      server.stats().note_response(head->error_status);
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
        // Refused unread (and without 100 Continue): the connection cannot be reused.
        body_failed = true;
        outcome.status = 413;
      } else if (!co_await take_body(stream, server, request, found.route != nullptr, body)) {
        body_failed = true;  // over --max-body (chunked), malformed chunks, or the client gave up
        outcome.status = 400;
      }
      if (body_failed) {
        after = After::close;
        outcome.body_bytes = queue_simple(stream, outcome.status, server.date(), &request, After::close);
      }
    }
    if (!body_failed) {
      if (found.route != nullptr) {
        outcome = co_await serve_route(stream, server, request, found.route, std::move(body), after);
      } else if (found.path_known) {
        std::string& allow = server.scratch();
        allow.assign("Allow: ").append(found.allow).append("\r\n");
        outcome.status = 405;
        outcome.body_bytes = queue_simple(stream, 405, server.date(), &request, after, allow);
      } else if (server.files() != nullptr) {
        outcome = serve_file(stream, server, request, after);
      } else {
        outcome.status = 404;
        outcome.body_bytes = queue_simple(stream, 404, server.date(), &request, after);
      }
    }
    if (outcome.status >= 400) ++server.stats().errors;
    server.stats().note_response(outcome.status);
    server.stats().latency.record(loop.now_ns() - started_ns);
    if (access_log.enabled()) {
      AccessRecord record{&peer, request_line(server, request), outcome.status, outcome.body_bytes,
                          loop.now_ns() - started_ns};
      access_log.record(record, server.date(), loop.now_ns());
    }
    if (outcome.pending.file) {
      Status sent = co_await send_pending_file(stream, std::move(outcome.pending), options.send_timeout);
      if (!sent) {
        log_debug("http: fd {}: sending a file: {}", stream.fd(), sent.error().message());
        co_return;
      }
    }
    if (after == After::close) {
      linger = body_failed;
      break;
    }
    // Fairness: a client with a deep pipeline gets a turn's budget of answers, then every other connection gets
    // its turn (runtime/turn_budget.hpp).
    if (turn.spend(!stream.inbound().empty())) {
      Status yielded = co_await yield();
      if (!yielded) break;
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
  options.server.name = "http";
  options.server.listen_options.stream.send_high_watermark = options.output_limit;
  auto server = std::unique_ptr<HttpServer>(new HttpServer(loop, std::move(options), std::move(files)));
  const HttpOptions& o = server->options_;
  if (!o.access_log.empty()) {
    Status opened = server->access_log_.open(o.access_log);
    if (!opened) {
      log_error("http: cannot open the access log {}: {}", o.access_log, opened.error().message());
      return opened.error();
    }
  }
  if (o.bench_routes) add_bench_routes(server->router_);
  log_info("http: root {} (files {}{}), header timeout {} s, keep-alive {} s, send timeout {} s, max body {} B",
           o.serve_files ? o.root : std::string("-"), o.serve_files ? "on" : "off",
           o.dir_listing ? ", listing on" : "", std::chrono::duration<double>(o.header_timeout).count(),
           std::chrono::duration<double>(o.keepalive_timeout).count(),
           std::chrono::duration<double>(o.send_timeout).count(), o.max_body);
  return server;
}

HttpServer::HttpServer(Loop& loop, HttpOptions options, std::unique_ptr<FileCache> files)
    : loop_(&loop),
      options_(std::move(options)),
      files_(std::move(files)),
      tcp_(loop, options_.server, &http_connection, this) {
  scratch_.reserve(options_.parser.max_request_line + 64);
}

HttpServer::~HttpServer() = default;

void describe_http_metrics(const HttpStats& stats, MetricSet& out) {
  out.counter("ringlet_http_requests_total", "HTTP requests parsed.", static_cast<double>(stats.requests));
  static constexpr const char* kClasses[5] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
  for (int i = 0; i < 5; ++i) {
    out.counter("ringlet_http_responses_total", "HTTP responses by status class (malformed requests included).",
                static_cast<double>(stats.responses_by_class[i]), {{"code", kClasses[i]}});
  }
  out.histogram("ringlet_http_request_duration_seconds",
                "Time from waiting for a request head to its response being queued (a file body may still be on its way).", stats.latency);
}

}  // namespace ringlet::http
