// beanstalk.cpp — the beanstalk workload of `ringlet bench`: put -> reserve -> delete cycles, every reserved job's
// body verified (docs/design/loadgen-protocols.md).
//
// Each connection uses and watches one tube ("ringlet-bench-<n>", connections spread over --tubes), and ignores
// "default". Its commands alternate put, reserve, put, reserve, ...; as soon as a reserve's reply names a job, the
// next command deletes it. Every command is one operation of the run (its latency is that command's), so cycles
// per second are the throughput divided by 3. With --depth > 1 the commands are pipelined; every reserve is sent
// after a put of its own, so a tube always holds a job for each reserve waiting on it and no reserve can wait
// forever. Reserves are reserve-with-timeout (--delay + 2 s): TIMED_OUT means the server lost or withheld a job and
// is counted as a wrong reply. The reserved job is often another connection's; bodies describe themselves
// (beanstalk_codec.hpp), so any job is checked in full.
#include <algorithm>
#include <string>

#include "ringlet/loadgen/beanstalk_codec.hpp"
#include "ringlet/loadgen/workload.hpp"

namespace ringlet::loadgen {
namespace {

using namespace beanstalk;

constexpr std::uint64_t kMaxBodySize = 16 * 1024 * 1024;  // beanstalkd's own default limit is 65535 (-z)
constexpr std::uint64_t kMaxTubes = 1000;
// Jobs left in a tube by an earlier run with another --body-size are reserved too; the body pattern covers every
// size up to beanstalkd's default job limit so that they still verify (64 KiB per worker).
constexpr std::size_t kVerifiableBodySize = 65535;
constexpr int kReserveMargin = 2;  // seconds a reserve may wait beyond --delay before TIMED_OUT

struct Config {
  std::size_t body_size = 64;
  unsigned tubes = 1;
  PutArgs put;
  int reserve_timeout_s = kReserveMargin;
  std::uint64_t seed = 1;
};

std::uint64_t mix(std::uint64_t a, std::uint64_t b) noexcept {
  std::uint64_t x = a * 0xd6e8feb86659fd93ULL + b + 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

class BeanstalkConnection final : public WorkloadConnection {
 public:
  BeanstalkConnection(const Config& config, const BodyPattern& bodies, std::string tube,
                      const ConnectionContext& context)
      : config_(&config),
        writer_(bodies),
        parser_(bodies),
        tube_(std::move(tube)),
        seed_(mix(config.seed, mix((std::uint64_t{context.worker_index} << 32) | context.connection_index,
                                   context.generation))),
        depth_(std::max(context.depth, 1u)),
        expects_(depth_),
        deletes_(depth_) {}

  // use + watch our tube, ignore "default", and check the three replies.
  Task<Status> start(Stream& stream) override {
    RequestSink sink(stream);
    writer_.use(sink, tube_);
    writer_.watch(sink, tube_);
    writer_.ignore(sink, "default");
    Status flushed = co_await stream.flush();
    if (!flushed) co_return flushed;
    const Expect replies[] = {Expect::use, Expect::watch, Expect::watch};
    for (Expect e : replies) {
      parser_.reset();
      for (;;) {
        Reply r = parser_.parse(stream.inbound(), e);
        if (r.status == Reply::Status::complete) break;
        if (r.status == Reply::Status::wrong || stream.at_eof()) co_return errc::connection_reset;
        Status more = co_await stream.wait_more();
        if (!more) co_return more;
      }
    }
    parser_.reset();
    co_return Status{};
  }

  bool write_request(RequestSink& out) override {
    RINGLET_ASSERT(inflight_ < depth_);
    Expect& e = expects_[(head_ + inflight_) % depth_];
    if (pending_deletes_ > 0) {
      writer_.delete_job(out, deletes_[delete_head_]);
      delete_head_ = (delete_head_ + 1) % depth_;
      --pending_deletes_;
      e = Expect::delete_job;
    } else if (put_next_) {
      writer_.put(out, config_->put, seed_ = mix(seed_, ++puts_), config_->body_size);
      e = Expect::put;
      put_next_ = false;
    } else {
      writer_.reserve(out, config_->reserve_timeout_s);
      e = Expect::reserve;
      put_next_ = true;
    }
    ++inflight_;
    return true;
  }

  Reply parse_reply(SliceQueue& in, bool) override {
    RINGLET_ASSERT(inflight_ > 0);
    Expect e = expects_[head_];
    Reply r = parser_.parse(in, e);
    if (r.status != Reply::Status::complete) return r;
    if (e == Expect::reserve) {
      // At most one pending delete per reserve in flight, and at most depth commands in flight: the ring holds them.
      deletes_[(delete_head_ + pending_deletes_) % depth_] = parser_.job_id();
      ++pending_deletes_;
    }
    parser_.reset();
    head_ = (head_ + 1) % depth_;
    --inflight_;
    return r;
  }

 private:
  const Config* config_;
  RequestWriter writer_;
  ReplyParser parser_;
  std::string tube_;
  std::uint64_t seed_;
  std::uint64_t puts_ = 0;
  unsigned depth_;
  std::vector<Expect> expects_;         // ring: the command each reply answers, oldest at head_
  std::vector<std::uint64_t> deletes_;  // ring: reserved jobs still to delete
  unsigned head_ = 0;
  unsigned inflight_ = 0;
  unsigned delete_head_ = 0;
  unsigned pending_deletes_ = 0;
  bool put_next_ = true;
};

class BeanstalkShard final : public WorkloadShard {
 public:
  BeanstalkShard(const Config& config, unsigned worker_count)
      : config_(&config), worker_count_(worker_count), bodies_(std::max(config.body_size, kVerifiableBodySize)) {}

  std::unique_ptr<WorkloadConnection> new_connection(const ConnectionContext& context) override {
    // Connections of all workers, interleaved, spread round-robin over the tubes.
    std::uint64_t global = std::uint64_t{context.connection_index} * worker_count_ + context.worker_index;
    std::string tube = "ringlet-bench-" + std::to_string(global % config_->tubes);
    return std::make_unique<BeanstalkConnection>(*config_, bodies_, std::move(tube), context);
  }

 private:
  const Config* config_;
  unsigned worker_count_;
  BodyPattern bodies_;  // core-local: holds a Slice
};

class BeanstalkWorkload final : public Workload {
 public:
  void declare_options(OptionSink& options) override {
    options.add_uint("--body-size", body_size_, "Bytes per job body (at least 24: the body describes itself)",
                     BodyPattern::kHeaderSize, kMaxBodySize);
    options.add_uint("--tubes", tubes_, "Tubes the connections are spread over (ringlet-bench-0, -1, ...)", 1,
                     kMaxTubes);
    options.add_uint("--delay", delay_,
                     "Seconds each put is delayed; reserves wait up to --delay + 2 s (set --timeout above that)", 0,
                     3600);
    options.add_uint("--priority", priority_, "Priority of every put (0 is the most urgent)", 0, UINT32_MAX);
    options.add_uint("--ttr", ttr_, "Time to run of every put, in seconds", 1, 86400);
    options.add_uint("--seed", seed_, "Seed of the job bodies (per connection, deterministic)", 0, UINT64_MAX);
  }

  std::string configure(std::string_view target, const CommonConfig&) override {
    auto hp = split_host_port(target);
    if (!hp) return "TARGET must be HOST:PORT, e.g. 127.0.0.1:11300";
    host_ = hp->first;
    port_ = hp->second;
    config_.body_size = body_size_;
    config_.tubes = static_cast<unsigned>(tubes_);
    config_.put.priority = static_cast<std::uint32_t>(priority_);
    config_.put.delay_s = static_cast<std::uint32_t>(delay_);
    config_.put.ttr_s = static_cast<std::uint32_t>(ttr_);
    config_.reserve_timeout_s = static_cast<int>(delay_) + kReserveMargin;
    config_.seed = seed_;
    return {};
  }
  std::string host() const override { return host_; }
  std::uint16_t port() const override { return port_; }
  std::unique_ptr<WorkloadShard> create_shard(const ShardContext& context) const override {
    return std::make_unique<BeanstalkShard>(config_, context.worker_count);
  }

 private:
  std::uint64_t body_size_ = 64;
  std::uint64_t tubes_ = 1;
  std::uint64_t delay_ = 0;
  std::uint64_t priority_ = 1024;
  std::uint64_t ttr_ = 60;
  std::uint64_t seed_ = 1;
  std::string host_;
  std::uint16_t port_ = 0;
  Config config_;
};

}  // namespace

std::unique_ptr<Workload> make_beanstalk_workload() { return std::make_unique<BeanstalkWorkload>(); }

}  // namespace ringlet::loadgen
