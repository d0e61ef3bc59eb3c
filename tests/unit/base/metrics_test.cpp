// metrics_test.cpp — the exact exposition text (HELP/TYPE lines, escaping, histogram buckets), and that sets from
// several shards sum.
#include "ringlet/base/metrics.hpp"

#include <gtest/gtest.h>

namespace ringlet {
namespace {

std::string text_of(const MetricSet& set) {
  std::string out;
  write_prometheus(set, out);
  return out;
}

TEST(MetricsText, counters_and_gauges_have_help_type_and_integer_values) {
  MetricSet set;
  set.counter("ringlet_bytes_received_total", "Bytes received on connections.", 1234);
  set.gauge("ringlet_connections_open", "Connections open now.", 3);
  EXPECT_EQ(text_of(set),
            "# HELP ringlet_bytes_received_total Bytes received on connections.\n"
            "# TYPE ringlet_bytes_received_total counter\n"
            "ringlet_bytes_received_total 1234\n"
            "# HELP ringlet_connections_open Connections open now.\n"
            "# TYPE ringlet_connections_open gauge\n"
            "ringlet_connections_open 3\n");
}

TEST(MetricsText, samples_of_one_family_stay_together_in_first_described_order) {
  MetricSet set;
  set.counter("ringlet_requests_total", "Requests.", 1, {{"result", "ok"}});
  set.gauge("ringlet_items", "Items.", 7);
  set.counter("ringlet_requests_total", "Requests.", 2, {{"result", "error"}});
  EXPECT_EQ(text_of(set),
            "# HELP ringlet_requests_total Requests.\n"
            "# TYPE ringlet_requests_total counter\n"
            "ringlet_requests_total{result=\"ok\"} 1\n"
            "ringlet_requests_total{result=\"error\"} 2\n"
            "# HELP ringlet_items Items.\n"
            "# TYPE ringlet_items gauge\n"
            "ringlet_items 7\n");
}

TEST(MetricsText, label_values_escape_backslash_quote_and_newline_and_help_escapes_backslash_and_newline) {
  MetricSet set;
  set.gauge("ringlet_tube_jobs", "Jobs \"per\" tube\\state\nsecond line.", 1,
            {{"tube", "a\\b\"c\nd"}, {"state", "ready"}});
  EXPECT_EQ(text_of(set),
            "# HELP ringlet_tube_jobs Jobs \"per\" tube\\\\state\\nsecond line.\n"
            "# TYPE ringlet_tube_jobs gauge\n"
            "ringlet_tube_jobs{tube=\"a\\\\b\\\"c\\nd\",state=\"ready\"} 1\n");
}

TEST(MetricsText, fractional_values_are_written_so_they_read_back_the_same) {
  MetricSet set;
  set.counter("ringlet_wait_seconds_total", "Seconds.", 1.5);
  set.gauge("ringlet_ratio", "Ratio.", 0.1);
  EXPECT_EQ(text_of(set),
            "# HELP ringlet_wait_seconds_total Seconds.\n"
            "# TYPE ringlet_wait_seconds_total counter\n"
            "ringlet_wait_seconds_total 1.5\n"
            "# HELP ringlet_ratio Ratio.\n"
            "# TYPE ringlet_ratio gauge\n"
            "ringlet_ratio 0.1\n");
}

TEST(MetricsText, a_histogram_writes_cumulative_buckets_in_seconds_then_sum_and_count) {
  LatencyHistogram h;
  h.record(40'000);         // <= 50 µs
  h.record(50'000);         // <= 50 µs: a bound is inclusive
  h.record(3'000'000);      // <= 5 ms
  h.record(20'000'000'000); // above every bound
  MetricSet set;
  set.histogram("ringlet_request_duration_seconds", "Request latency.", h, {{"server", "cache"}});
  EXPECT_EQ(text_of(set),
            "# HELP ringlet_request_duration_seconds Request latency.\n"
            "# TYPE ringlet_request_duration_seconds histogram\n"
            "ringlet_request_duration_seconds_bucket{server=\"cache\",le=\"0.00005\"} 2\n"
            "ringlet_request_duration_seconds_bucket{server=\"cache\",le=\"0.0001\"} 2\n"
            "ringlet_request_duration_seconds_bucket{server=\"cache\",le=\"0.00025\"} 2\n"
            "ringlet_request_duration_seconds_bucket{server=\"cache\",le=\"0.0005\"} 2\n"
            "ringlet_request_duration_seconds_bucket{server=\"cache\",le=\"0.001\"} 2\n"
            "ringlet_request_duration_seconds_bucket{server=\"cache\",le=\"0.0025\"} 2\n"
            "ringlet_request_duration_seconds_bucket{server=\"cache\",le=\"0.005\"} 3\n"
            "ringlet_request_duration_seconds_bucket{server=\"cache\",le=\"0.01\"} 3\n"
            "ringlet_request_duration_seconds_bucket{server=\"cache\",le=\"0.025\"} 3\n"
            "ringlet_request_duration_seconds_bucket{server=\"cache\",le=\"0.05\"} 3\n"
            "ringlet_request_duration_seconds_bucket{server=\"cache\",le=\"0.1\"} 3\n"
            "ringlet_request_duration_seconds_bucket{server=\"cache\",le=\"0.25\"} 3\n"
            "ringlet_request_duration_seconds_bucket{server=\"cache\",le=\"0.5\"} 3\n"
            "ringlet_request_duration_seconds_bucket{server=\"cache\",le=\"1\"} 3\n"
            "ringlet_request_duration_seconds_bucket{server=\"cache\",le=\"2.5\"} 3\n"
            "ringlet_request_duration_seconds_bucket{server=\"cache\",le=\"10\"} 3\n"
            "ringlet_request_duration_seconds_bucket{server=\"cache\",le=\"+Inf\"} 4\n"
            "ringlet_request_duration_seconds_sum{server=\"cache\"} 20.00309\n"
            "ringlet_request_duration_seconds_count{server=\"cache\"} 4\n");
}

TEST(MetricsText, an_unlabelled_histogram_has_only_le_in_its_buckets) {
  MetricSet set;
  set.histogram("ringlet_fsync_duration_seconds", "Fsync latency.", LatencyHistogram{});
  std::string text = text_of(set);
  EXPECT_NE(text.find("ringlet_fsync_duration_seconds_bucket{le=\"0.00005\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("ringlet_fsync_duration_seconds_bucket{le=\"+Inf\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("ringlet_fsync_duration_seconds_sum 0\nringlet_fsync_duration_seconds_count 0\n"),
            std::string::npos)
      << text;
}

TEST(MetricSetMerge, shards_sum_sample_by_sample_and_bucket_by_bucket) {
  MetricSet shard0;
  MetricSet shard1;
  LatencyHistogram h0;
  h0.record(1'000);
  LatencyHistogram h1;
  h1.record(1'000);
  h1.record(2'000'000'000);
  shard0.counter("ringlet_requests_total", "Requests.", 3, {{"result", "hit"}});
  shard0.histogram("ringlet_request_duration_seconds", "Latency.", h0);
  shard1.counter("ringlet_requests_total", "Requests.", 4, {{"result", "hit"}});
  shard1.counter("ringlet_requests_total", "Requests.", 1, {{"result", "miss"}});
  shard1.histogram("ringlet_request_duration_seconds", "Latency.", h1);
  MetricSet sum;
  sum.merge(shard0);
  sum.merge(shard1);
  EXPECT_EQ(sum.value("ringlet_requests_total", {{"result", "hit"}}), 7);
  EXPECT_EQ(sum.value("ringlet_requests_total", {{"result", "miss"}}), 1);
  EXPECT_EQ(sum.value("ringlet_request_duration_seconds"), 3);  // a histogram's value is its count
  EXPECT_EQ(sum.value("ringlet_no_such_metric"), -1);
  const LatencyHistogram& merged = sum.families()[1].samples[0].histogram;
  EXPECT_EQ(merged.counts()[0], 2u);
  EXPECT_EQ(merged.sum_ns(), 2'000'002'000);
}

TEST(MetricSetMerge, describing_the_same_metric_twice_adds) {
  MetricSet set;
  set.counter("ringlet_connections_accepted_total", "Accepted.", 2);
  set.counter("ringlet_connections_accepted_total", "Accepted.", 5);
  EXPECT_EQ(set.value("ringlet_connections_accepted_total"), 7);
  EXPECT_EQ(set.families().size(), 1u);
}

TEST(MetricSetMerge, a_max_gauge_keeps_the_largest_value_so_a_state_reads_1_if_any_shard_says_1) {
  MetricSet shard0;
  MetricSet shard1;
  MetricSet shard2;
  shard0.gauge_max("ringlet_backend_up", "Up.", 0, {{"backend", "a"}});
  shard0.gauge_max("ringlet_backend_up", "Up.", 1, {{"backend", "b"}});
  shard1.gauge_max("ringlet_backend_up", "Up.", 1, {{"backend", "a"}});
  shard1.gauge_max("ringlet_backend_up", "Up.", 1, {{"backend", "b"}});
  shard2.gauge_max("ringlet_backend_up", "Up.", 0, {{"backend", "c"}});
  shard2.gauge_max("ringlet_temperature", "Negative values too.", -3);
  MetricSet page;
  page.merge(shard0);
  page.merge(shard1);
  page.merge(shard2);
  EXPECT_EQ(page.value("ringlet_backend_up", {{"backend", "a"}}), 1);
  EXPECT_EQ(page.value("ringlet_backend_up", {{"backend", "b"}}), 1);  // not 2: two shards see it up
  EXPECT_EQ(page.value("ringlet_backend_up", {{"backend", "c"}}), 0);
  EXPECT_EQ(page.value("ringlet_temperature"), -3);  // the first value described, not max(0, it)
  EXPECT_EQ(text_of(page).substr(0, 96),
            "# HELP ringlet_backend_up Up.\n"
            "# TYPE ringlet_backend_up gauge\n"
            "ringlet_backend_up{backend=\"a\"} 1\n");
}

}  // namespace
}  // namespace ringlet
