// http_server.hpp — `ringlet http`: an HTTP/1.1 static-file server with a routing API for C++ handlers.
// Core-local: one HttpServer per loop, with its own file cache, Date cache and access log (run one per shard for
// multi-core). The server is the connection loop only: parsing and composing are in proto/http/, files, responses
// and the access log in http/, lingering close and stepped sendfile in net/stream.
//
// Each connection is one task running a plain loop (docs/design/http.md):
//   read a request head (a deadline for the whole head) → read or drain its body → route it (a handler) or serve
//   a file → queue the response → next request.
// Responses are queued to the stream's output chain, never flushed per request; the loop sends everything a
// connection queued during one turn with one send, so 16 pipelined requests cost one receive and one send. The
// output chain is bounded (output_limit): past it the task waits for the client to read (send_timeout), so a
// pipelining client that never reads holds back its own requests, not our memory.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "ringlet/base/metrics.hpp"
#include "ringlet/http/access_log.hpp"
#include "ringlet/http/file_cache.hpp"
#include "ringlet/http/router.hpp"
#include "ringlet/net/tcp_server.hpp"
#include "ringlet/proto/http/date.hpp"
#include "ringlet/proto/http/parser.hpp"

namespace ringlet::http {

struct HttpOptions {
  ServerOptions server;  // listen address, connection limit, shutdown timeout
  std::string root = ".";
  bool serve_files = true;     // false: only routes (everything else is 404)
  bool dir_listing = false;    // an HTML index for directories without index.html (else 403)
  FileCacheOptions file_cache;  // includes follow_symlinks
  ParserLimits parser = ParserLimits::server_defaults();
  Duration header_timeout = std::chrono::seconds(10);     // the whole request head, from its first byte (slowloris)
  Duration keepalive_timeout = std::chrono::seconds(75);  // idle between requests
  Duration send_timeout = std::chrono::seconds(60);       // a client not reading our output
  Duration body_timeout = std::chrono::seconds(60);       // the whole request body
  std::uint64_t max_body = 1024 * 1024;                   // request bodies above this: 413
  std::size_t output_limit = 256 * 1024;                  // queued output per connection before we wait
  std::string access_log;                                 // path; empty: no access log
  bool bench_routes = false;                              // /plaintext and /json
};

struct HttpStats {
  std::uint64_t requests = 0;
  std::uint64_t errors = 0;  // responses with status >= 400
  std::uint64_t responses_by_class[5] = {};  // [0] 1xx .. [4] 5xx
  LatencyHistogram latency;                  // request head's first byte awaited -> response queued

  void note_response(std::uint16_t status) noexcept {
    if (status >= 100 && status < 600) ++responses_by_class[status / 100 - 1];
  }
};

// ringlet_http_requests_total, ringlet_http_responses_total{code="2xx"...}, ringlet_http_request_duration_seconds.
void describe_http_metrics(const HttpStats& stats, MetricSet& out);

class HttpServer {
 public:
  // Opens the root and the access log; logs the settings. The server listens after listen().
  static Result<std::unique_ptr<HttpServer>> create(Loop& loop, HttpOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  Router& router() noexcept { return router_; }
  TcpServer& tcp() noexcept { return tcp_; }
  Status listen() { return tcp_.listen(); }
  Task<void> run() { return tcp_.run(); }
  void stop() noexcept { tcp_.stop(); }

  // ---- used by the connection tasks ----
  const HttpOptions& options() const noexcept { return options_; }
  Loop& loop() const noexcept { return *loop_; }
  FileCache* files() noexcept { return files_.get(); }
  std::string_view date() noexcept { return dates_.get(loop_->now_ns()); }
  std::int64_t now_seconds() noexcept {
    (void)date();
    return dates_.seconds();
  }
  std::string& scratch() noexcept { return scratch_; }  // per-loop: used between two awaits, never across one
  HttpStats& stats() noexcept { return stats_; }
  AccessLog& access_log() noexcept { return access_log_; }

 private:
  HttpServer(Loop& loop, HttpOptions options, std::unique_ptr<FileCache> files);

  Loop* loop_;
  HttpOptions options_;
  std::unique_ptr<FileCache> files_;
  DateCache dates_;
  Router router_;
  std::string scratch_;
  HttpStats stats_;
  AccessLog access_log_;
  TcpServer tcp_;  // last: its connections use everything above
};

// The connection handler (TcpServer::Handler); server.user() is the HttpServer.
Task<void> http_connection(Stream stream, TcpServer& server);

}  // namespace ringlet::http
