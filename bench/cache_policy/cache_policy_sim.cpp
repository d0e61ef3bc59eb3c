// cache_policy_sim.cpp — the hit ratio of `ringlet cache`'s item store (cache::Store, the real code, on a manual
// clock, no network) under a Zipf workload, beside an exact LRU that holds as many items as memcached would in the
// same memory (its 48-byte header, 8-byte CAS, key and value with terminators, rounded up to its slab class with
// the default growth factor 1.25). Deterministic: same arguments, same figures. It judges the eviction and
// compaction policy (docs/design/cache.md); bench/cache_hit_ratio.py measures the servers themselves.
//
//   cache_policy_sim [--memory MIB] [--keys N] [--value-size B] [--get-ratio F] [--ops N] [--zipf-exponent S]
//
// Gets of the second half of the operations are counted; sets write every key they draw (no look-aside).
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <cstring>
#include <list>
#include <string>
#include <unordered_map>

#include "ringlet/cache/store.hpp"
#include "ringlet/loadgen/memcache_keys.hpp"
#include "ringlet/runtime/clock.hpp"

namespace {

using namespace ringlet;

// An exact LRU of `capacity` keys: the reference a slab allocator with per-item LRU approaches.
class Lru {
 public:
  explicit Lru(std::size_t capacity) : capacity_(capacity) {}
  bool get(std::uint64_t key) {
    auto it = map_.find(key);
    if (it == map_.end()) return false;
    order_.splice(order_.begin(), order_, it->second);
    return true;
  }
  void set(std::uint64_t key) {
    if (get(key)) return;
    order_.push_front(key);
    map_[key] = order_.begin();
    if (map_.size() > capacity_) {
      map_.erase(order_.back());
      order_.pop_back();
    }
  }
  std::size_t size() const { return map_.size(); }

 private:
  std::size_t capacity_;
  std::list<std::uint64_t> order_;
  std::unordered_map<std::uint64_t, std::list<std::uint64_t>::iterator> map_;
};

// memcached 1.6's chunk for an item: 48-byte header + 8 CAS + key + 1 + value + 2 ("\r\n") + the " flags len"
// suffix it no longer stores (0), rounded up through slab classes from 96 bytes by factor 1.25, 8-byte aligned.
std::size_t memcached_chunk(std::size_t key_size, std::size_t value_size) {
  const std::size_t item = 48 + 8 + key_size + 1 + value_size + 2;
  std::size_t chunk = 96;
  while (chunk < item) chunk = (chunk * 5 / 4 + 7) & ~std::size_t{7};
  return chunk;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t memory_mib = 64;
  std::uint64_t keys = 1'000'000;
  std::size_t value_size = 1024;
  double get_ratio = 0.5;
  std::uint64_t ops = 4'000'000;
  double exponent = 0.99;
  CLI::App app{"The cache store's hit ratio under a Zipf workload, beside an exact LRU at memcached's item count"};
  app.add_option("--memory", memory_mib, "Memory budget in MiB (the store's --memory; the LRU's byte budget)");
  app.add_option("--keys", keys, "Key space");
  app.add_option("--value-size", value_size, "Value bytes");
  app.add_option("--get-ratio", get_ratio, "Fraction of operations that are gets (the rest are sets)");
  app.add_option("--ops", ops, "Operations; gets of the second half are counted");
  app.add_option("--zipf-exponent", exponent, "Zipf exponent s (P(rank k) ~ k^-s)");
  CLI11_PARSE(app, argc, argv);

  ManualClock clock{5'000'000'000LL};
  cache::StoreOptions options;
  options.memory_bytes = memory_mib << 20;
  options.max_item_bytes = 1 << 20;
  options.unix_now = 1'800'000'000;
  cache::Store store(options, clock);
  const auto chooser = loadgen::memcache::KeyChooser::zipf(keys, exponent);
  loadgen::memcache::Rng rng(7);
  const std::string value(value_size, 'v');
  std::string key;
  std::size_t key_size = 0;
  Lru lru(0);
  bool lru_sized = false;

  std::uint64_t store_hits = 0, lru_hits = 0, gets = 0;
  for (std::uint64_t i = 0; i < ops; ++i) {
    const std::uint64_t k = chooser.next(rng);
    key = fmt::format("key:{:010}", k);
    if (!lru_sized) {
      key_size = key.size();
      lru = Lru(options.memory_bytes / memcached_chunk(key_size, value_size));
      lru_sized = true;
    }
    if (rng.unit() < get_ratio) {
      const cache::ItemRef item = store.find(key);
      if (item) store.bump(item);
      const bool lru_hit = lru.get(k);
      if (i >= ops / 2) {
        ++gets;
        store_hits += item ? 1 : 0;
        lru_hits += lru_hit ? 1 : 0;
      }
    } else {
      cache::Reservation r = store.reserve(key, static_cast<std::uint32_t>(value_size));
      std::memcpy(r.value(), value.data(), value_size);
      store.commit(r, 0, 0);
      lru.set(k);
    }
    if (i % 1000 == 0) clock.advance(1'000'000);  // 1 ms per thousand operations
  }
  const cache::StoreStats& s = store.stats();
  fmt::print("store: hit ratio {:.4f}, {} items, {} live bytes, {} evictions, {} items moved by compaction\n",
             static_cast<double>(store_hits) / static_cast<double>(gets), s.curr_items, s.bytes, s.evictions,
             s.retained);
  fmt::print("exact LRU at memcached's item count ({} B chunks): hit ratio {:.4f}, {} items\n",
             memcached_chunk(key_size, value_size), static_cast<double>(lru_hits) / static_cast<double>(gets),
             lru.size());
  return 0;
}
