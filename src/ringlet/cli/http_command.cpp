// http_command.cpp — `ringlet http`: options, then serve until a signal.
#include <chrono>

#include "commands.hpp"
#include "common.hpp"
#include "ringlet/base/log.hpp"
#include "ringlet/servers/http_server.hpp"

namespace ringlet::cli {

namespace {

Duration seconds_to_duration(double s) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s));
}

struct HttpService final : ShardService {
  explicit HttpService(std::unique_ptr<http::HttpServer> s) : server(std::move(s)) {}
  TcpServer& tcp() override { return server->tcp(); }
  void describe_metrics(MetricSet& out) override { http::describe_http_metrics(server->stats(), out); }
  std::unique_ptr<http::HttpServer> server;
};

}  // namespace

void add_http_command(CLI::App& app, std::function<int()>& run) {
  auto* cmd = app.add_subcommand("http", "HTTP/1.1 static-file server (sendfile, keep-alive, pipelining, ranges, "
                                         "conditional GET) with a routing API for C++ handlers");
  struct State {
    CommonOptions common;
    ShardingCli sharding;
    http::HttpOptions http;
    std::string listen = "127.0.0.1:8080";
    double idle_seconds = 0;
    double shutdown_seconds = 5;
    double header_seconds = 10;
    double keepalive_seconds = 75;
    double send_seconds = 60;
    double body_seconds = 60;
    bool follow_symlinks = false;
    bool no_files = false;
  };
  auto state = std::make_shared<State>();
  add_server_options(*cmd, state->http.server, state->listen, state->idle_seconds, state->shutdown_seconds);
  cmd->add_option("--root", state->http.root, "Directory whose files are served (default: the current directory)")
      ->capture_default_str();
  cmd->add_flag("--dir-listing", state->http.dir_listing,
                "List directories that have no index.html (default: 403 Forbidden)");
  cmd->add_flag("--follow-symlinks", state->follow_symlinks,
                "Follow symlinks that lead outside --root (default: refused with 403)");
  cmd->add_flag("--no-files", state->no_files, "Serve no files: only the routes (everything else is 404)");
  cmd->add_flag("--bench-routes", state->http.bench_routes,
                "Add /plaintext and /json, the TechEmpower plaintext and JSON endpoints");
  cmd->add_option("--header-timeout", state->header_seconds,
                  "Seconds a client has to send a whole request head, from its first byte (slowloris defence)")
      ->check(CLI::Range(0.001, 3600.0))
      ->capture_default_str();
  cmd->add_option("--keepalive-timeout", state->keepalive_seconds,
                  "Seconds an idle keep-alive connection may wait for its next request")
      ->check(CLI::Range(0.001, 86400.0))
      ->capture_default_str();
  cmd->add_option("--send-timeout", state->send_seconds,
                  "Seconds a client may leave our output unread before the connection is closed")
      ->check(CLI::Range(0.001, 86400.0))
      ->capture_default_str();
  cmd->add_option("--body-timeout", state->body_seconds, "Seconds a client has to send a whole request body")
      ->check(CLI::Range(0.001, 86400.0))
      ->capture_default_str();
  cmd->add_option("--max-body", state->http.max_body,
                  "Largest request body in bytes (larger: 413 and the connection is closed)")
      ->check(CLI::Range(std::uint64_t{0}, std::uint64_t{1} << 40))
      ->capture_default_str();
  cmd->add_option("--max-request-line", state->http.parser.max_request_line,
                  "Longest request line in bytes (longer: 414)")
      ->check(CLI::Range(std::uint32_t{64}, std::uint32_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("--max-header-bytes", state->http.parser.max_header_bytes,
                  "Largest header section in bytes, all field lines together (larger: 431)")
      ->check(CLI::Range(std::uint32_t{256}, std::uint32_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("--max-header-line", state->http.parser.max_header_line,
                  "Longest single header field line in bytes, name and value (longer: 431; nginx refuses lines "
                  "over 8 KiB too)")
      ->check(CLI::Range(std::uint32_t{64}, std::uint32_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("--max-headers", state->http.parser.max_headers,
                  "Most header fields in a request (more: 431); clients behind proxies may send about 100")
      ->check(CLI::Range(std::uint32_t{1}, std::uint32_t{10000}))
      ->capture_default_str();
  cmd->add_option("--output-limit", state->http.output_limit,
                  "Bytes of responses queued per connection before we wait for the client to read")
      ->check(CLI::Range(std::size_t{4096}, std::size_t{1} << 30))
      ->capture_default_str();
  cmd->add_option("--file-cache-entries", state->http.file_cache.max_entries,
                  "Open-file cache size (files and directories; least recently used evicted)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))
      ->capture_default_str();
  cmd->add_option("--memory-file-limit", state->http.file_cache.memory_limit,
                  "Files up to this many bytes are cached in memory; larger ones are sent with sendfile")
      ->check(CLI::Range(std::size_t{0}, std::size_t{64} * 1024))
      ->capture_default_str();
  cmd->add_option("--access-log", state->http.access_log,
                  "Append a Common Log Format line per request to this file (buffered per shard; written when 64 KiB "
                  "are pending, on the first request a second after the last write, and at exit). Default: off");
  add_sharding_options(*cmd, state->sharding);
  add_common_options(*cmd, state->common);
  cmd->callback([state, &run] {
    run = [state]() -> int {
      if (!finish_server_options(state->http.server, state->listen, state->idle_seconds, state->shutdown_seconds)) {
        return 2;
      }
      http::HttpOptions& o = state->http;
      o.header_timeout = seconds_to_duration(state->header_seconds);
      o.keepalive_timeout = seconds_to_duration(state->keepalive_seconds);
      o.send_timeout = seconds_to_duration(state->send_seconds);
      o.body_timeout = seconds_to_duration(state->body_seconds);
      o.file_cache.follow_symlinks = state->follow_symlinks ? http::FollowSymlinks::yes : http::FollowSymlinks::no;
      o.serve_files = !state->no_files;
      if (o.server.name == ServerOptions{}.name) o.server.name = "http";
      http::HttpOptions base = o;
      // One HttpServer per shard (its own file cache, date cache and access-log buffer).
      return serve_sharded(state->common, state->sharding, base.server,
                           [base](Shard& shard, const ServerOptions& server) -> std::unique_ptr<ShardService> {
                             http::HttpOptions options = base;
                             options.server = server;
                             auto created = http::HttpServer::create(shard.loop(), options);
                             if (!created) return nullptr;
                             return std::make_unique<HttpService>(std::move(*created));
                           });
    };
  });
}

}  // namespace ringlet::cli
