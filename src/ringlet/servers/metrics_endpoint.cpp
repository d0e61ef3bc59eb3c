// metrics_endpoint.cpp — the /metrics protocol and the scrape across shards.
#include "ringlet/servers/metrics_endpoint.hpp"

#include "ringlet/http/request_reader.hpp"
#include "ringlet/proto/http/compose.hpp"
#include "ringlet/runtime/shard/submit_to.hpp"

namespace ringlet {

namespace {

// A whole head must arrive within this (a client that trickles one keeps a connection, not the shard, busy).
constexpr std::int64_t kHeadTimeoutNs = 10'000'000'000;

MetricSet describe_here(const DescribeShardMetrics* describe) {
  MetricSet set;
  (*describe)(set);
  return set;
}

void queue_simple(Stream& stream, std::uint16_t status, std::string_view date, const http::Request* request,
                  http::After after, std::string_view extra = {}) {
  (void)http::compose_simple_response(stream.output(), status, date, request, after, extra);
}

Task<void> metrics_connection(Stream stream, TcpServer& server) {
  auto* self = static_cast<MetricsEndpoint*>(server.user());
  const http::ParserLimits limits = http::ParserLimits::server_defaults();
  for (;;) {
    Result<http::RequestHead> head =
        co_await http::read_request(stream, limits, server.loop().now_ns() + kHeadTimeoutNs);
    if (!head) co_return;  // closed between requests, timed out or stopping
    if (!head->ok()) {
      queue_simple(stream, head->error_status, self->date(), nullptr, http::After::close);
      (void)co_await stream.flush();
      co_return;
    }
    const http::Request& request = head->request;
    if (request.has_body()) {  // nothing here takes a body: refuse it rather than read it
      queue_simple(stream, 400, self->date(), &request, http::After::close);
      (void)co_await stream.flush();
      co_return;
    }
    const http::After after = request.keep_alive() ? http::After::keep_alive : http::After::close;
    const bool get = request.method() == http::Method::get;
    const bool head_only = request.method() == http::Method::head;
    if (request.path() != "/metrics") {
      queue_simple(stream, 404, self->date(), &request, after);
    } else if (!get && !head_only) {
      queue_simple(stream, 405, self->date(), &request, after, http::kAllowGetHead);
    } else {
      const std::string body = co_await self->scrape();
      {
        http::HeadWriter writer(stream.output());
        writer.status_line(200, self->date())
            .header("Content-Type", kPrometheusContentType)
            .header("Content-Length", static_cast<std::uint64_t>(body.size()))
            .raw(http::connection_line(&request, after))
            .end();
      }
      // write() sends the body from `body` itself and returns once it is all sent: no copy of the text.
      if (get && !co_await stream.write(std::string_view(body))) co_return;
    }
    if (!co_await stream.flush() || after == http::After::close) co_return;
  }
}

}  // namespace

MetricsEndpoint::MetricsEndpoint(Shard& shard, ServerOptions options, DescribeShardMetrics describe)
    : shard_(&shard),
      describe_(std::move(describe)),
      tcp_(shard.loop(), [&options] {
             if (options.name == ServerOptions{}.name) options.name = "metrics";
             return std::move(options);
           }(),
           &metrics_connection, this) {}

Task<std::string> MetricsEndpoint::scrape() {
  MetricSet sum;
  const DescribeShardMetrics* describe = &describe_;
  for (unsigned k = 0; k < shard_->count(); ++k) {
    MetricSet one = co_await submit_to(k, [describe] { return describe_here(describe); });
    sum.merge(one);
  }
  std::string text;
  write_prometheus(sum, text);
  co_return text;
}

}  // namespace ringlet
