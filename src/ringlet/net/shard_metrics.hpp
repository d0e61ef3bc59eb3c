// shard_metrics.hpp — the metrics every server has, described from what the runtime already counts: the shard's
// loop, backend, buffer pool and stream counters, and a TcpServer's connections. Core-local: call on the shard
// whose counters are read (a scrape reaches each shard with submit_to; base/metrics.hpp).
//
// Nothing here adds to the hot path: each value is a counter the runtime keeps anyway, read when scraped.
// docs/operations.md ("Metrics") lists every name; if you rename one, update it there.
#pragma once

#include "ringlet/base/metrics.hpp"
#include "ringlet/net/tcp_server.hpp"
#include "ringlet/runtime/shard/shard_set.hpp"

namespace ringlet {

// ringlet_loop_*, ringlet_backend_*, ringlet_receive_*, ringlet_buffer_pool_*, ringlet_bytes_*_total,
// ringlet_shard_messages_*, ringlet_shards: what this shard's loop, backend and pools have done. Bytes count every stream of the shard (the metrics
// endpoint's own included).
void describe_shard_metrics(Shard& shard, MetricSet& out);

// ringlet_connections_*: accepted, refused (over --max-conns), forced closed, open now.
void describe_server_metrics(const TcpServer& server, MetricSet& out);

}  // namespace ringlet
