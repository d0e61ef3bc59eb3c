// metrics_endpoint.hpp — `--metrics-listen`: a tiny HTTP/1.1 server on one shard answering GET /metrics with every
// shard's metrics summed, in the Prometheus text format (base/metrics.hpp). Core-local: it lives on the shard that
// serves it and reaches the others only through submit_to.
//
// A scrape sends one message to each shard (its own included, run inline); each describes its counters into a
// MetricSet on its own thread and sends it back; the endpoint merges them in shard order and writes the text. So
// the serving shards never share a counter, and a scrape costs each of them one message, run between two of its
// loop phases — it never waits for the load to pause.
//
// The protocol, all of it: GET or HEAD /metrics (a query string is ignored) → 200 with Content-Type
// "text/plain; version=0.0.4"; any other path → 404; another method → 405; a body or a malformed head → 400 and
// close. Keep-alive as the request asks (Prometheus keeps its connection open between scrapes). Heads are parsed
// by the project's own HTTP parser (proto/http/parser.hpp) with its server limits.
#pragma once

#include <functional>
#include <string>

#include "ringlet/base/metrics.hpp"
#include "ringlet/net/sharded_server.hpp"
#include "ringlet/net/tcp_server.hpp"
#include "ringlet/proto/http/date.hpp"
#include "ringlet/runtime/shard/shard_set.hpp"

namespace ringlet {

// Describes the metrics of the shard it is called on. Called on every shard, each on its own thread, so it may
// only read what is immutable or belongs to the calling shard.
using DescribeShardMetrics = std::function<void(MetricSet& out)>;

class MetricsEndpoint {
 public:
  // `options.listen` is the address; the name defaults to "metrics" (its log lines: "metrics: listening on ...").
  MetricsEndpoint(Shard& shard, ServerOptions options, DescribeShardMetrics describe);
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  TcpServer& tcp() noexcept { return tcp_; }
  // Gathers every shard's metrics and writes them (the body of a 200). On the endpoint's shard.
  Task<std::string> scrape();
  std::string_view date() noexcept { return date_.get(shard_->loop().now_ns()); }

 private:
  Shard* shard_;
  DescribeShardMetrics describe_;
  http::DateCache date_;
  TcpServer tcp_;  // last: its connections use everything above
};

// `factory`, with shard 0's service also serving /metrics on `address` (ringlet <server> --metrics-listen): the
// endpoint is one of that service's more_servers(), so it listens, serves and stops with it. A scrape describes, on
// each shard, its loop and pools and its servers' connections (net/shard_metrics.hpp), then calls the service's
// describe_metrics() for the protocol's own. The endpoint's own connections are not among the servers' metrics.
ShardServiceFactory with_metrics_endpoint(ShardServiceFactory factory, const Address& address);

}  // namespace ringlet
