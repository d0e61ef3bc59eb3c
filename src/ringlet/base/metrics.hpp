// metrics.hpp — what a server counts, and the Prometheus text format (exposition format 0.0.4) it is read in.
// Core-local: every type here is a plain value with no shared state.
//
// The hot path only touches plain integers that its shard owns: a `std::uint64_t` field incremented where the event
// happens, or a LatencyHistogram's record(). Nothing is atomic and nothing is registered anywhere. A scrape asks
// each shard, on that shard (submit_to), to describe its counters into a MetricSet; the scraping shard adds the sets
// together (merge) and writes the sum (write_prometheus). So the counting costs one increment and the only
// cross-core traffic is one message per shard per scrape.
//
// Naming (https://prometheus.io/docs/practices/naming/): a `ringlet_` prefix, the unit in the name, in base units
// (`_seconds`, `_bytes`), counters end in `_total`. The writer checks none of this; docs/operations.md lists every
// metric and the exposition tests pin the exact text.
//
// Exposition format 0.0.4, the parts we write:
//   # HELP <name> <text>          help text: backslash and newline escaped (\\ and \n)
//   # TYPE <name> counter|gauge|histogram
//   <name>{<label>="<value>",...} <number>
//                                  label values: backslash, double quote and newline escaped (\\, \" and \n)
//   histograms: <name>_bucket{...,le="<bound>"} cumulative counts, ending with le="+Inf"; then <name>_sum and
//   <name>_count. Families appear once each, all samples of a family together, in the order first described.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ringlet {

// Latencies in fixed buckets (upper bounds in nanoseconds, chosen once for every histogram so shards and servers
// sum bucket by bucket): 50 µs to 10 s, about three per decade. Recording is a short scan and two additions.
class LatencyHistogram {
 public:
  static constexpr std::array<std::int64_t, 16> kBoundsNs = {
      50'000,      100'000,     250'000,       500'000,       1'000'000,     2'500'000,
      5'000'000,   10'000'000,  25'000'000,    50'000'000,    100'000'000,   250'000'000,
      500'000'000, 1'000'000'000, 2'500'000'000, 10'000'000'000};
  static constexpr std::size_t kBuckets = kBoundsNs.size() + 1;  // the last one: above every bound (+Inf)

  void record(std::int64_t ns) noexcept {
    std::size_t i = 0;
    while (i < kBoundsNs.size() && ns > kBoundsNs[i]) ++i;
    ++counts_[i];
    sum_ns_ += ns > 0 ? ns : 0;
  }
  // Per bucket, not cumulative: counts()[i] is the values in (kBoundsNs[i-1], kBoundsNs[i]].
  const std::array<std::uint64_t, kBuckets>& counts() const noexcept { return counts_; }
  std::int64_t sum_ns() const noexcept { return sum_ns_; }
  std::uint64_t count() const noexcept {
    std::uint64_t n = 0;
    for (std::uint64_t c : counts_) n += c;
    return n;
  }
  void merge(const LatencyHistogram& other) noexcept {
    for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    sum_ns_ += other.sum_ns_;
  }

 private:
  std::array<std::uint64_t, kBuckets> counts_{};
  std::int64_t sum_ns_ = 0;
};

// Times a connection's request batches for a latency histogram (docs/operations.md, "Request batch latency"), at a
// cost of one clock read per batch, not per command. A batch begins when a receive brings a connection bytes while no
// batch is open — begin() takes the loop's reading of the current phase, taken just after that receive's completion
// was reaped, so it reads no clock — and ends when the connection has answered what it could and is about to wait
// for its client again: end() is given one fresh clock reading. Commands answered in between are counted; a batch
// that answered none (half a command arrived) stays open, timed from its first bytes. Per-command times would be
// useless here: the loop clock is read once per phase, so every command of a turn would read zero.
class RequestBatchTimer {
 public:
  void begin(std::int64_t phase_now_ns) noexcept {
    if (!open_) {
      open_ = true;
      begun_ns_ = phase_now_ns;
    }
  }
  void answered() noexcept { answered_ += open_ ? 1 : 0; }
  // Whether end() would record: call the clock only then.
  bool due() const noexcept { return open_ && answered_ != 0; }
  void end(std::int64_t clock_now_ns, LatencyHistogram& into) noexcept {
    into.record(clock_now_ns - begun_ns_);
    open_ = false;
    answered_ = 0;
  }

 private:
  std::int64_t begun_ns_ = 0;
  std::uint32_t answered_ = 0;
  bool open_ = false;
};

enum class MetricType { counter, gauge, histogram };

// How two values of one sample combine — the same shard describing it twice, or the shards' sets merged. Counters,
// histograms and most gauges sum; a state gauge (0 or 1: is a backend up?) takes the maximum, so the page says 1 when
// any shard says 1 and an alert can compare it with 1 whatever the number of shards.
enum class MetricCombine { sum, max };

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// One scrape's worth of metrics: families of samples, built by describing counters and summed over shards.
class MetricSet {
 public:
  struct Sample {
    MetricLabels labels;
    double value = 0;             // counter and gauge
    LatencyHistogram histogram;   // histogram (seconds on the wire)
  };
  struct Family {
    std::string name;
    std::string help;
    MetricType type = MetricType::counter;
    MetricCombine combine = MetricCombine::sum;
    std::vector<Sample> samples;
  };

  // Each adds `value` to the sample with these labels (creating the family and the sample on first use), so
  // describing the same metric twice — two listeners of one shard, or the same shard's set merged — sums.
  void counter(std::string_view name, std::string_view help, double value, MetricLabels labels = {});
  void gauge(std::string_view name, std::string_view help, double value, MetricLabels labels = {});
  // A gauge that keeps the largest value described or merged (MetricCombine::max): "up if any shard sees it up".
  void gauge_max(std::string_view name, std::string_view help, double value, MetricLabels labels = {});
  void histogram(std::string_view name, std::string_view help, const LatencyHistogram& h, MetricLabels labels = {});

  // Adds every sample of `other` into this set (counters, gauges and histograms sum; gauge_max keeps the maximum).
  void merge(const MetricSet& other);

  const std::vector<Family>& families() const noexcept { return families_; }
  // The sample's value, or -1 when there is none (for tests).
  double value(std::string_view name, const MetricLabels& labels = {}) const;

 private:
  Sample& sample(std::string_view name, std::string_view help, MetricType type, MetricCombine combine,
                 MetricLabels labels);
  void add(Sample& s, MetricCombine combine, double value) noexcept;
  std::vector<Family> families_;
};

// The Content-Type of write_prometheus's text.
inline constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

// Appends the set in the text exposition format 0.0.4 (see the file comment).
void write_prometheus(const MetricSet& set, std::string& out);

}  // namespace ringlet
