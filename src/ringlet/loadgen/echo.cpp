// echo.cpp — the echo workload: send --size bytes, expect the same bytes back, verify every one.
//
// Payloads differ per request so a reply that is shifted, truncated, or another request's (another connection's)
// is caught, not just a flipped byte: the shard prebuilds kVariants payloads of pseudo-random bytes in one buffer
// and each connection cycles through them from its own starting point. Sending one is a Slice of that buffer (a
// refcount bump); checking a reply compares the received bytes in place, as they arrive, against the payload
// expected for the oldest request in flight.
#include <algorithm>
#include <cstring>

#include "ringlet/buf/buffer.hpp"
#include "ringlet/loadgen/workload.hpp"

namespace ringlet::loadgen {
namespace {

constexpr std::uint64_t kMaxSize = 16 * 1024 * 1024;
constexpr std::size_t kMaxPrebuiltBytes = 8 * 1024 * 1024;  // all payload variants of one worker together
constexpr std::size_t kMaxVariants = 64;

// Byte i of variant v: an xorshift stream seeded by v, so two variants (or one shifted against itself) agree
// only by chance, one byte in 256.
void fill_variant(std::byte* out, std::size_t size, std::size_t v) {
  std::uint64_t x = 0x9E3779B97F4A7C15ull * (v + 1);
  for (std::size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<std::byte>(x >> 24);
  }
}

class EchoConnection final : public WorkloadConnection {
 public:
  EchoConnection(const Slice* payloads, std::size_t variants, std::size_t first, unsigned depth)
      : payloads_(payloads), variants_(variants), next_(first % variants), expected_(std::max(depth, 1u)) {}

  bool write_request(RequestSink& out) override {
    out.queue(payloads_[next_]);
    expected_[(head_ + inflight_) % expected_.size()] = static_cast<std::uint32_t>(next_);
    ++inflight_;
    next_ = next_ + 1 == variants_ ? 0 : next_ + 1;
    return true;
  }

  Reply parse_reply(SliceQueue& in, bool) override {
    const Slice& want = payloads_[expected_[head_]];
    while (!in.empty() && checked_ < want.size()) {
      const Slice& got = in.front();
      std::size_t n = std::min(got.size(), want.size() - checked_);
      if (std::memcmp(got.data(), want.data() + checked_, n) != 0) return Reply::wrong("echoed bytes differ");
      in.consume(n);
      checked_ += n;
    }
    if (checked_ < want.size()) return Reply::need_more();
    checked_ = 0;
    head_ = (head_ + 1) % expected_.size();
    --inflight_;
    return Reply::complete();
  }

 private:
  const Slice* payloads_;
  std::size_t variants_;
  std::size_t next_;
  std::vector<std::uint32_t> expected_;  // ring: payload variant of each request in flight, oldest at head_
  std::size_t head_ = 0;
  std::size_t inflight_ = 0;
  std::size_t checked_ = 0;  // bytes of the oldest reply already verified and consumed
};

class EchoShard final : public WorkloadShard {
 public:
  EchoShard(std::size_t size, std::size_t variants) : variants_(variants) {
    Buffer* b = BufferPool::local().acquire(size * variants);
    for (std::size_t v = 0; v < variants; ++v) fill_variant(b->data + v * size, size, v);
    Slice all(b, 0, static_cast<std::uint32_t>(size * variants));
    for (std::size_t v = 0; v < variants; ++v) payloads_.push_back(all.sub(v * size, size));
  }

  std::unique_ptr<WorkloadConnection> new_connection(const ConnectionContext& c) override {
    std::size_t first = (c.worker_index * 7919u + c.connection_index * 31u + c.generation) % variants_;
    return std::make_unique<EchoConnection>(payloads_.data(), variants_, first, c.depth);
  }

 private:
  std::size_t variants_;
  std::vector<Slice> payloads_;
};

class EchoWorkload final : public Workload {
 public:
  void declare_options(OptionSink& options) override {
    options.add_uint("--size", size_, "Bytes per message; every echoed byte is verified", 1, kMaxSize);
  }
  std::string configure(std::string_view target, const CommonConfig&) override {
    auto hp = split_host_port(target);
    if (!hp) return "TARGET must be HOST:PORT, e.g. 127.0.0.1:7000";
    host_ = hp->first;
    port_ = hp->second;
    return {};
  }
  std::string host() const override { return host_; }
  std::uint16_t port() const override { return port_; }
  std::unique_ptr<WorkloadShard> create_shard(const ShardContext&) const override {
    std::size_t size = static_cast<std::size_t>(size_);
    std::size_t variants = std::clamp<std::size_t>(kMaxPrebuiltBytes / size, 2, kMaxVariants);
    return std::make_unique<EchoShard>(size, variants);
  }

 private:
  std::uint64_t size_ = 64;
  std::string host_;
  std::uint16_t port_ = 0;
};

}  // namespace

std::unique_ptr<Workload> make_echo_workload() { return std::make_unique<EchoWorkload>(); }

}  // namespace ringlet::loadgen
