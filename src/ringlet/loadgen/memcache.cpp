// memcache.cpp — the memcache workload of `ringlet bench`: gets and sets over memcached's text or meta protocol,
// every value read back verified byte for byte (docs/design/loadgen-protocols.md).
//
// Each request picks get (probability --get-ratio) or set. A get asks for --multiget keys, a set writes one key
// with a fresh version in its client flags; keys come from --distribution over --keys. Values check themselves
// (memcache_keys.hpp), so a get verifies whatever any connection stored last. With --noreply, sets carry noreply
// (text) or q (meta) and have no reply of their own: a quiet set counts as done when the first byte of a later
// reply arrives, and after `depth` quiet sets in a row the set carries a barrier (text: a get of that key; meta:
// mn) so the pipeline never fills with requests nobody answers. With --preload, every worker first sets its share
// of the keys over one extra connection and all workers wait for each other, so every get must then hit.
#include <algorithm>
#include <atomic>
#include <chrono>

#include "ringlet/loadgen/memcache_codec.hpp"
#include "ringlet/loadgen/memcache_keys.hpp"
#include "ringlet/loadgen/workload.hpp"
#include "ringlet/base/log.hpp"
#include "ringlet/runtime/timeout.hpp"

namespace ringlet::loadgen {
namespace {

using namespace memcache;

constexpr std::uint64_t kMaxValueSize = 1000 * 1000;  // memcached's default item limit is 1 MiB, header included
constexpr unsigned kPreloadBatch = 256;               // sets in flight on the preload connection
constexpr auto kPreloadConnectTimeout = std::chrono::seconds(5);
constexpr auto kPreloadPoll = std::chrono::milliseconds(1);

// The validated options, shared read-only by every worker.
struct Config {
  Protocol protocol = Protocol::text;
  std::uint64_t keys = 10000;
  std::size_t key_size = 16;
  std::size_t value_size = 32;
  double get_ratio = 0.9;
  bool zipf = false;
  double zipf_exponent = 0.99;
  unsigned multiget = 1;
  bool noreply = false;
  bool preload = false;
  std::uint64_t seed = 1;
  unsigned preload_workers = 1;  // workers that run setup(): min(threads, connections)
};

class MemcacheConnection final : public WorkloadConnection {
 public:
  MemcacheConnection(const Config& config, const KeySpace& keys, const KeyChooser& chooser,
                     const ValuePattern& values, const ConnectionContext& context)
      : config_(&config),
        chooser_(&chooser),
        writer_(config.protocol, keys, values),
        parser_(config.protocol, keys, values),
        rng_(mix64(config.seed, mix64((std::uint64_t{context.worker_index} << 32) | context.connection_index,
                                      context.generation))),
        depth_(std::max(context.depth, 1u)),
        expects_(depth_),
        keys_(std::size_t{depth_} * config.multiget) {
    version_ = static_cast<std::uint32_t>(rng_.next());
  }

  bool write_request(RequestSink& out) override {
    RINGLET_ASSERT(inflight_ < depth_);
    unsigned slot = (head_ + inflight_) % depth_;
    Expect& e = expects_[slot];
    std::uint64_t* keys = &keys_[std::size_t{slot} * config_->multiget];
    e = Expect{};
    if (rng_.unit() < config_->get_ratio) {
      for (unsigned i = 0; i < config_->multiget; ++i) keys[i] = chooser_->next(rng_);
      writer_.get(out, std::span<const std::uint64_t>(keys, config_->multiget));
      e.kind = Expect::Kind::values;
      e.must_hit = config_->preload ? MustHit::yes : MustHit::no;
      e.key_count = static_cast<std::uint16_t>(config_->multiget);
      e.keys = keys;
      quiet_run_ = 0;
    } else {
      std::uint64_t key = chooser_->next(rng_);
      writer_.set(out, key, ++version_, config_->noreply ? Quiet::yes : Quiet::no);
      if (!config_->noreply) {
        e.kind = Expect::Kind::stored;
      } else if (++quiet_run_ < depth_) {
        e.kind = Expect::Kind::none;
      } else {
        writer_.barrier(out, key);
        quiet_run_ = 0;
        if (config_->protocol == Protocol::meta) {
          e.kind = Expect::Kind::noop;
        } else {
          keys[0] = key;
          e.kind = Expect::Kind::values;
          e.must_hit = MustHit::yes;  // just set, never deleted
          e.key_count = 1;
          e.keys = keys;
        }
      }
    }
    ++inflight_;
    return true;
  }

  Reply parse_reply(SliceQueue& in, bool) override {
    RINGLET_ASSERT(inflight_ > 0);
    Reply r = parser_.parse(in, expects_[head_]);
    if (r.status == Reply::Status::complete) {
      parser_.reset();
      head_ = (head_ + 1) % depth_;
      --inflight_;
    }
    return r;
  }

 private:
  const Config* config_;
  const KeyChooser* chooser_;
  RequestWriter writer_;
  ReplyParser parser_;
  Rng rng_;
  unsigned depth_;
  std::vector<Expect> expects_;      // ring: what each request in flight expects, oldest at head_
  std::vector<std::uint64_t> keys_;  // multiget keys of each ring slot
  unsigned head_ = 0;
  unsigned inflight_ = 0;
  unsigned quiet_run_ = 0;  // quiet sets written since the last request with a reply
  std::uint32_t version_;
};

// Sets keys first, first + step, ... over one connection, kPreloadBatch at a time, checking every reply.
Task<Status> preload_keys(Address target, const Config* config, const KeySpace* keys, const ValuePattern* values,
                          std::uint64_t first, std::uint64_t step) {
  Result<Stream> connected = co_await connect(target, kPreloadConnectTimeout);
  if (!connected) co_return connected.error();
  Stream stream = std::move(*connected);
  RequestWriter writer(config->protocol, *keys, *values);
  ReplyParser parser(config->protocol, *keys, *values);
  RequestSink sink(stream);
  const Expect stored{Expect::Kind::stored, MustHit::no, 0, nullptr};
  for (std::uint64_t k = first; k < keys->count();) {
    unsigned batch = 0;
    for (; batch < kPreloadBatch && k < keys->count(); ++batch, k += step) writer.set(sink, k, 0, Quiet::no);
    Status flushed = co_await stream.flush();
    if (!flushed) co_return flushed;
    parser.reset();
    for (unsigned done = 0; done < batch;) {
      Reply r = parser.parse(stream.inbound(), stored);
      if (r.status == Reply::Status::complete) {
        ++done;
        parser.reset();
        continue;
      }
      if (r.status == Reply::Status::wrong) {
        log_error("bench memcache: preload: {}", r.what);
        co_return errc::invalid_argument;
      }
      if (stream.at_eof()) co_return errc::connection_reset;
      Status more = co_await stream.wait_more();
      if (!more) co_return more;
    }
  }
  co_return Status{};
}

class MemcacheShard final : public WorkloadShard {
 public:
  MemcacheShard(const Config& config, const KeySpace& keys, const KeyChooser& chooser,
                std::atomic<unsigned>& preloaded)
      : config_(&config), keys_(&keys), chooser_(&chooser), values_(config.value_size), preloaded_(&preloaded) {}

  Task<Status> setup(const ShardContext& context) override {
    if (!config_->preload) co_return Status{};
    Status loaded{};
    if (context.worker_index < config_->preload_workers) {
      loaded = co_await preload_keys(context.target, config_, keys_, &values_, context.worker_index,
                                     config_->preload_workers);
    }
    // Every worker counts itself in, failed or not, so no worker waits forever for one that gave up.
    preloaded_->fetch_add(1, std::memory_order_acq_rel);
    while (loaded && preloaded_->load(std::memory_order_acquire) < config_->preload_workers) {
      Status slept = co_await sleep_for(kPreloadPoll);
      if (!slept) co_return slept;
    }
    co_return loaded;
  }

  std::unique_ptr<WorkloadConnection> new_connection(const ConnectionContext& context) override {
    return std::make_unique<MemcacheConnection>(*config_, *keys_, *chooser_, values_, context);
  }

 private:
  const Config* config_;
  const KeySpace* keys_;
  const KeyChooser* chooser_;
  ValuePattern values_;  // core-local: holds a Slice
  std::atomic<unsigned>* preloaded_;
};

class MemcacheWorkload final : public Workload {
 public:
  void declare_options(OptionSink& options) override {
    options.add_choice("--protocol", protocol_, "text (get/set) or meta (mg/ms/mn)", {"text", "meta"});
    options.add_uint("--keys", keys_, "Size of the key space", 1, std::uint64_t{1} << 32);
    options.add_uint("--key-size", key_size_, "Bytes per key (\"k\" and the zero-padded key number)", 2,
                     KeySpace::kMaxKeySize);
    options.add_uint("--value-size", value_size_, "Bytes per value; every value read back is verified", 1,
                     kMaxValueSize);
    options.add_double("--get-ratio", get_ratio_, "Fraction of requests that are gets (the rest are sets)", 0, 1);
    options.add_choice("--distribution", distribution_, "How keys are picked", {"uniform", "zipf"});
    options.add_double("--zipf-exponent", zipf_exponent_, "Exponent s of --distribution zipf (P(rank k) ~ k^-s)",
                       0.01, 10);
    options.add_uint("--multiget", multiget_, "Keys per get request", 1, kMaxMultiget);
    options.add_flag("--noreply", noreply_,
                     "Sets without a reply (noreply / q); a barrier after each run of --depth of them bounds the "
                     "pipeline");
    options.add_flag("--preload", preload_, "Set every key once before the run, so every get must hit");
    options.add_uint("--seed", seed_, "Seed of the key and operation choices (per connection, deterministic)", 0,
                     UINT64_MAX);
  }

  std::string configure(std::string_view target, const CommonConfig& common) override {
    auto hp = split_host_port(target);
    if (!hp) return "TARGET must be HOST:PORT, e.g. 127.0.0.1:11211";
    host_ = hp->first;
    port_ = hp->second;
    std::string bad = KeySpace::validate(keys_, key_size_);
    if (!bad.empty()) return bad;
    config_.protocol = protocol_ == "meta" ? Protocol::meta : Protocol::text;
    config_.keys = keys_;
    config_.key_size = key_size_;
    config_.value_size = value_size_;
    config_.get_ratio = get_ratio_;
    config_.zipf = distribution_ == "zipf";
    config_.zipf_exponent = zipf_exponent_;
    config_.multiget = static_cast<unsigned>(multiget_);
    config_.noreply = noreply_;
    config_.preload = preload_;
    config_.seed = seed_;
    config_.preload_workers = std::max(1u, std::min(common.threads, common.connections));
    key_space_.emplace(keys_, key_size_);
    chooser_.emplace(config_.zipf ? KeyChooser::zipf(keys_, zipf_exponent_) : KeyChooser::uniform(keys_));
    return {};
  }
  std::string host() const override { return host_; }
  std::uint16_t port() const override { return port_; }
  std::unique_ptr<WorkloadShard> create_shard(const ShardContext&) const override {
    return std::make_unique<MemcacheShard>(config_, *key_space_, *chooser_, preloaded_);
  }

 private:
  // Options as parsed.
  std::string protocol_ = "text";
  std::uint64_t keys_ = 10000;
  std::uint64_t key_size_ = 16;
  std::uint64_t value_size_ = 32;
  double get_ratio_ = 0.9;
  std::string distribution_ = "uniform";
  double zipf_exponent_ = 0.99;
  std::uint64_t multiget_ = 1;
  bool noreply_ = false;
  bool preload_ = false;
  std::uint64_t seed_ = 1;

  std::string host_;
  std::uint16_t port_ = 0;
  Config config_;
  std::optional<KeySpace> key_space_;
  std::optional<KeyChooser> chooser_;
  // The one mutable member: workers count themselves in after their preload (an atomic, so sharing is safe).
  mutable std::atomic<unsigned> preloaded_{0};
};

}  // namespace

std::unique_ptr<Workload> make_memcache_workload() { return std::make_unique<MemcacheWorkload>(); }

}  // namespace ringlet::loadgen
