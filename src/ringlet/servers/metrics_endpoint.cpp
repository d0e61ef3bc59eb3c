// metrics_endpoint.cpp — the /metrics protocol and the scrape across shards.
#include "ringlet/servers/metrics_endpoint.hpp"

#include <memory>
#include <optional>
#include <vector>

#include "ringlet/http/request_reader.hpp"
#include "ringlet/net/shard_metrics.hpp"
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

// --metrics-listen: which service each shard runs, so a scrape can ask it. Slot k is written and read only on
// shard k (set when its service is built, cleared when it goes), except that shard 0 sizes the table before any
// other shard starts.
struct MeteredShards {
  std::vector<ShardService*> services;
};

// Describes the calling shard: its loop and pools, its servers' connections, then the protocol's own metrics.
void describe_this_shard(const MeteredShards& metered, MetricSet& out) {
  Shard& shard = *Shard::current();
  describe_shard_metrics(shard, out);
  ShardService* service = metered.services[shard.id()];
  if (service == nullptr) return;  // stopped already
  describe_server_metrics(service->tcp(), out);
  for (TcpServer* more : service->more_servers()) describe_server_metrics(*more, out);
  service->describe_metrics(out);
}

// A shard's service with, on shard 0, the metrics endpoint beside it: the endpoint is one of more_servers(), so it
// listens, serves and stops with the service. Its own connections are left out of the services' metrics.
class MeteredService final : public ShardService {
 public:
  MeteredService(Shard& shard, std::unique_ptr<ShardService> inner, std::shared_ptr<MeteredShards> metered,
                 const std::optional<Address>& endpoint_address)
      : inner_(std::move(inner)), metered_(std::move(metered)), shard_(shard.id()) {
    metered_->services[shard_] = inner_.get();
    for (TcpServer* more : inner_->more_servers()) more_.push_back(more);
    if (endpoint_address) {
      ServerOptions options;
      options.name = "metrics";
      options.listen = *endpoint_address;
      options.max_connections = 64;  // scrapers, not clients
      options.idle_timeout = std::chrono::minutes(5);
      options.shutdown_timeout = std::chrono::seconds(1);
      const MeteredShards* table = metered_.get();
      endpoint_ = std::make_unique<MetricsEndpoint>(
          shard, std::move(options), [table](MetricSet& out) { describe_this_shard(*table, out); });
      more_.push_back(&endpoint_->tcp());
    }
  }
  ~MeteredService() override { metered_->services[shard_] = nullptr; }

  TcpServer& tcp() override { return inner_->tcp(); }
  Task<void> run() override { return inner_->run(); }
  std::span<TcpServer* const> more_servers() override { return more_; }
  void describe_metrics(MetricSet& out) override { inner_->describe_metrics(out); }

 private:
  std::unique_ptr<ShardService> inner_;
  std::shared_ptr<MeteredShards> metered_;
  unsigned shard_;
  std::unique_ptr<MetricsEndpoint> endpoint_;  // shard 0 only
  std::vector<TcpServer*> more_;
};

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

ShardServiceFactory with_metrics_endpoint(ShardServiceFactory factory, const Address& address) {
  auto metered = std::make_shared<MeteredShards>();
  return [inner = std::move(factory), metered, address](Shard& shard,
                                                        const ServerOptions& options) -> std::unique_ptr<ShardService> {
    if (shard.id() == 0) metered->services.assign(shard.count(), nullptr);  // before any other shard starts
    std::unique_ptr<ShardService> service = inner(shard, options);
    if (!service) return nullptr;
    std::optional<Address> here;
    if (shard.id() == 0) here = address;
    return std::make_unique<MeteredService>(shard, std::move(service), metered, here);
  };
}

}  // namespace ringlet
