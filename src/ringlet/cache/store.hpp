// store.hpp — the item store of `ringlet cache`: keys to values in a fixed memory budget, with expiry, eviction,
// flush_all and CAS, as memcached 1.6 defines them. Pure (no I/O; time comes from the Clock passed in) and
// core-local: one Store per shard, never shared. docs/design/cache.md explains the choices; in short:
//
// Memory. Items live in segments: fixed-size blocks (1 MiB, or --max-item-size if larger) filled front to back,
// an item written once and never moved except by eviction. An item is an 18-byte header, the key, the value and
// the client flags and exptime when they are set, packed with no padding and no per-item allocation. The index is
// an open-addressing hash table of 8-byte entries (segment, offset, 20 bits of the key's hash), at most 4/5 full,
// growing by quarters. The budget counts every byte the store allocates: segments (mapped
// whole, so the pages are exactly what we count), the index and the per-segment records. When the index grows,
// segments are evicted to make room for it in the budget.
//
// Eviction: FIFO over segments with a second chance (CLOCK at segment granularity). The oldest segment is
// compacted in place: items read since they were written (the accessed bit) are kept, up to half the segment,
// everything else is dropped, and the segment becomes the new write head. So a store never fails for lack of
// memory: it always has a segment it can reclaim. A segment whose items are all deleted, overwritten or expired is
// freed at once.
//
// Expiry is lazy (a lookup that finds an expired or flushed item unlinks it) plus expire_some(), a bounded pass
// over the segments that the server calls from a timer. flush_all is O(1): it records a time (and the CAS at that
// moment); lookups treat older items as gone, exactly memcached's item_is_flushed().
//
// Item references (ItemRef) point into segment memory; they stay valid until the next call that can store,
// evict or unlink (reserve, commit, unlink, find of an expired key, expire_some, flush's effect is lazy). Values are
// read by copying them out (the server copies them into its output): a reference held across a suspension would
// pin a whole segment behind a slow reader and break the memory bound.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "ringlet/runtime/clock.hpp"

namespace ringlet::cache {

// An item, byte by byte (docs/design/cache.md, "The item"): cas 8, value length 4, last access 4, key length 1,
// bits 1 (the fixed header), the key, the value, then the client flags (4) only when non-zero and the exptime (4)
// only when the item expires — the kHasFlags and kHasExptime bits say which trailer fields follow. Wire-compatible
// with nothing; change freely, but update docs/design/cache.md's per-item arithmetic.
inline constexpr std::size_t kItemHeader = 18;
// The most an item adds to its key and value (header and both trailer fields): what --max-item-size counts.
inline constexpr std::size_t kItemOverheadMax = kItemHeader + 8;
inline constexpr std::size_t kMinSegmentBytes = 1024 * 1024;
// memcached's rule: an exptime above 30 days is an absolute Unix time.
inline constexpr std::int64_t kRelativeExptimeLimit = 60 * 60 * 24 * 30;

struct StoreOptions {
  std::size_t memory_bytes = 64 * 1024 * 1024;  // everything the store allocates
  std::size_t max_item_bytes = 1024 * 1024;     // header + key + value (memcached -I counts its header too)
  std::uint64_t cas_first = 1;                  // CAS values: cas_first, cas_first + cas_stride, ...
  std::uint64_t cas_stride = 1;                 // (shard i of n: first i + 1, stride n: unique over the process)
  std::int64_t unix_now = 0;                    // wall-clock seconds when the store is created (absolute exptimes)
};

struct StoreStats {
  std::uint64_t curr_items = 0;
  std::uint64_t total_items = 0;    // items ever linked
  std::uint64_t bytes = 0;          // live item bytes (header, key, value)
  std::uint64_t evictions = 0;      // live, unexpired items dropped to make room
  std::uint64_t evicted_unfetched = 0;
  std::uint64_t reclaimed = 0;      // expired or flushed items unlinked (lazily or by the pass)
  std::uint64_t expired_unfetched = 0;
  std::uint64_t retained = 0;       // items kept by eviction's second chance
  std::uint64_t segments = 0;       // allocated
  std::uint64_t segments_free = 0;
  std::uint64_t segment_bytes = 0;  // size of one
  std::uint64_t index_bytes = 0;
  std::uint64_t index_slots = 0;
  std::uint64_t allocated_bytes = 0;  // everything counted against the budget
  std::uint64_t budget_bytes = 0;
};

// Item bits.
inline constexpr std::uint8_t kAccessed = 1;    // read since written or retained (eviction's second chance)
inline constexpr std::uint8_t kFetched = 2;     // ever read (meta h flag, *_unfetched stats)
inline constexpr std::uint8_t kStale = 4;       // invalidated by md/ms with I (meta X flag)
inline constexpr std::uint8_t kTokenSent = 8;   // a client has won the recache token (meta W / Z flags)
inline constexpr std::uint8_t kKeyBinary = 16;  // the key came base64-encoded (meta k returns it so)
// Layout bits: which trailer fields the item has. Set by the store when the item is written, never by set_bits().
inline constexpr std::uint8_t kHasFlags = 32;
inline constexpr std::uint8_t kHasExptime = 64;
inline constexpr std::uint8_t kLayoutBits = kHasFlags | kHasExptime;

class Store;

// A linked item. Valid until the next call on the Store that can store, evict or unlink.
class ItemRef {
 public:
  ItemRef() = default;
  explicit operator bool() const noexcept { return item_ != nullptr; }

  std::string_view key() const noexcept {
    return {reinterpret_cast<const char*>(item_) + kItemHeader, static_cast<std::size_t>(key_length())};
  }
  std::string_view value() const noexcept {
    return {reinterpret_cast<const char*>(item_) + kItemHeader + key_length(), value_length()};
  }
  char* mutable_value() const noexcept { return reinterpret_cast<char*>(item_) + kItemHeader + key_length(); }
  std::uint64_t cas() const noexcept { return load<std::uint64_t>(0); }
  std::uint32_t value_length() const noexcept { return load<std::uint32_t>(8); }
  std::uint32_t atime() const noexcept { return load<std::uint32_t>(12); }
  std::uint8_t key_length() const noexcept { return static_cast<std::uint8_t>(item_[16]); }
  std::uint8_t bits() const noexcept { return static_cast<std::uint8_t>(item_[17]); }
  bool has(std::uint8_t bit) const noexcept { return (bits() & bit) != 0; }
  std::uint32_t client_flags() const noexcept { return has(kHasFlags) ? load<std::uint32_t>(trailer()) : 0; }
  // Store time; 0: never. (Changing it is Store::set_exptime: an item without the field must be rewritten.)
  std::uint32_t exptime() const noexcept {
    return has(kHasExptime) ? load<std::uint32_t>(trailer() + (has(kHasFlags) ? 4 : 0)) : 0;
  }

  void set_cas(std::uint64_t v) const noexcept { store(0, v); }
  void set_atime(std::uint32_t v) const noexcept { store(12, v); }
  // The item bits; the layout bits (kLayoutBits) are kept whatever `b` says.
  void set_bits(std::uint8_t b) const noexcept {
    item_[17] = static_cast<std::byte>((b & ~kLayoutBits) | (bits() & kLayoutBits));
  }
  void add_bits(std::uint8_t b) const noexcept { set_bits(static_cast<std::uint8_t>(bits() | b)); }
  void clear_bits(std::uint8_t b) const noexcept { set_bits(static_cast<std::uint8_t>(bits() & ~b)); }
  std::size_t total_bytes() const noexcept { return trailer() + trailer_bytes(bits()); }
  static std::size_t trailer_bytes(std::uint8_t bits) noexcept {
    return ((bits & kHasFlags) != 0 ? 4 : 0) + ((bits & kHasExptime) != 0 ? 4 : 0);
  }

 private:
  friend class Store;
  ItemRef(std::byte* item, std::size_t slot) noexcept : item_(item), slot_(slot) {}
  std::size_t trailer() const noexcept { return kItemHeader + key_length() + value_length(); }
  template <class T>
  T load(std::size_t at) const noexcept {
    T v;
    std::memcpy(&v, item_ + at, sizeof v);
    return v;
  }
  template <class T>
  void store(std::size_t at, T v) const noexcept {
    std::memcpy(item_ + at, &v, sizeof v);
  }
  std::byte* item_ = nullptr;
  std::size_t slot_ = 0;  // its index slot
};

// Space for one item being written: reserve(), fill value(), then commit() or abort(). Nothing else may be called
// on the store in between (the server reserves only once the whole value has arrived).
struct Reservation {
  std::byte* item = nullptr;
  std::uint32_t segment = 0;
  std::uint32_t offset = 0;
  std::uint32_t value_length = 0;
  std::uint32_t bytes = 0;  // taken from the segment: the item with both trailer fields, until commit() trims it
  std::uint64_t hash = 0;
  explicit operator bool() const noexcept { return item != nullptr; }
  char* value() const noexcept {
    return reinterpret_cast<char*>(item) + kItemHeader + static_cast<std::uint8_t>(item[16]);
  }
};

class Store {
 public:
  // The budget must hold at least one segment and the smallest index (min_memory_bytes()).
  Store(const StoreOptions& options, const Clock& clock);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  static std::size_t segment_bytes_for(std::size_t max_item_bytes) noexcept;
  static std::size_t min_memory_bytes(std::size_t max_item_bytes) noexcept;

  // ---- time (memcached's rel_time: seconds on the store's own scale, starting above 1) ----
  std::uint32_t now() const noexcept;
  // memcached's realtime(): 0 -> 0 (never); negative -> already expired; up to 30 days -> relative to now; above
  // -> an absolute Unix time (already past: expired).
  std::uint32_t to_exptime(std::int64_t exptime) const noexcept;
  // Seconds left (meta t flag): -1 for never.
  std::int64_t ttl_of(const ItemRef& item) const noexcept;

  // ---- reading ----
  // The live item for `key`, or an empty ref. An expired or flushed item found on the way is unlinked.
  ItemRef find(std::string_view key);
  // The same with the key's hash_key() already computed.
  ItemRef find(std::string_view key, std::uint64_t hash);
  // Batched reads (a multi-get): hash every key of the batch, prefetch_slot() each, then prefetch_item() each, then
  // find(key, hash) each. A lookup is two dependent cache misses (the index slot, then the item it points to); in
  // a batch they overlap instead of following one another, which was the largest user-space cost of a 16-key get.
  // Hints only: nothing is read for the result, so they may be skipped or repeated.
  void prefetch_slot(std::uint64_t hash) const noexcept {
    __builtin_prefetch(index_ + home_slot(hash, slots_));
  }
  void prefetch_item(std::uint64_t hash) const noexcept;
  // Why the last find() missed (memcached's get_expired and get_flushed counters).
  enum class Miss : std::uint8_t { absent, expired, flushed };
  Miss last_miss() const noexcept { return last_miss_; }
  // A read: sets the accessed and fetched bits and the access time (memcached's LRU bump).
  void bump(const ItemRef& item) noexcept;

  // ---- writing ----
  bool fits(std::size_t key_length, std::uint64_t value_length) const noexcept {
    return kItemOverheadMax + key_length + value_length <= options_.max_item_bytes;
  }
  // Space for an item (the key is written now, the value by the caller). Empty when it can never fit (check
  // fits() first). May evict, so any ItemRef taken before is invalid afterwards: find() again.
  Reservation reserve(std::string_view key, std::uint32_t value_length);
  // Links the reserved item, replacing any item with the same key. cas 0 takes the next CAS value.
  ItemRef commit(Reservation& r, std::uint32_t client_flags, std::uint32_t exptime, std::uint64_t cas = 0,
                 std::uint8_t bits = 0);
  void abort(Reservation& r) noexcept;
  // Sets an item's exptime (touch, gat, meta T and N). An item stored without one has no room for it and is
  // rewritten with the same key, value, flags, CAS and bits: `item` then refers to the new copy, and like reserve()
  // this may evict, so any other ItemRef is invalid afterwards.
  void set_exptime(ItemRef& item, std::uint32_t exptime);
  // Removes an item from the index (its bytes become dead, reclaimed with its segment).
  void unlink(const ItemRef& item) noexcept;
  std::uint64_t next_cas() noexcept {
    std::uint64_t c = next_cas_;
    next_cas_ += options_.cas_stride;
    return c;
  }

  // ---- flush_all and background expiry ----
  // Every item last written or read before now + delay (memcached's rules: a delay is an exptime, so 0 or none is
  // "now") is gone from then on. O(1).
  void flush_all(std::int64_t delay);
  // Walks at most `max_items` items of the oldest segments onward, unlinking expired and flushed ones; frees
  // segments left empty. Returns how many it unlinked.
  std::size_t expire_some(std::size_t max_items);

  const StoreStats& stats() noexcept;
  const StoreOptions& options() const noexcept { return options_; }

 private:
  struct Segment {
    std::byte* data = nullptr;
    std::uint32_t used = 0;
    std::uint32_t live = 0;     // bytes of linked items
    std::uint32_t prev = kNone;  // FIFO links (sealed segments, oldest first) or the free list (next only)
    std::uint32_t next = kNone;
    std::uint32_t epoch = 0;    // bumped on every reuse: the expiry cursor notices
    enum class State : std::uint8_t { unallocated, free, head, sealed } state = State::unallocated;
  };
  static constexpr std::uint32_t kNone = 0xffffffff;

  // Index entries: tag (20 bits) | segment (18 bits) | offset (26 bits); 0 empty, 1 tombstone.
  static constexpr std::uint64_t kEmpty = 0;
  static constexpr std::uint64_t kTombstone = 1;
  static constexpr unsigned kOffsetBits = 26;
  static constexpr unsigned kSegmentBits = 18;
  static std::uint64_t make_entry(std::uint64_t hash, std::uint32_t segment, std::uint32_t offset) noexcept;
  static std::uint32_t entry_segment(std::uint64_t e) noexcept {
    return static_cast<std::uint32_t>(e >> kOffsetBits & ((1u << kSegmentBits) - 1));
  }
  static std::uint32_t entry_offset(std::uint64_t e) noexcept {
    return static_cast<std::uint32_t>(e & ((1u << kOffsetBits) - 1));
  }
  static std::uint64_t entry_tag(std::uint64_t hash) noexcept;
  static std::size_t larger_index(std::size_t slots) noexcept;
  // Multiply-shift of the hash's low 32 bits: any table size, not just powers of two, and bits the tag (the top
  // ones) does not use.
  static std::size_t home_slot(std::uint64_t hash, std::size_t slots) noexcept {
    return static_cast<std::size_t>((hash & 0xffffffffu) * slots >> 32);
  }
  static std::size_t next_slot(std::size_t i, std::size_t slots) noexcept { return i + 1 == slots ? 0 : i + 1; }

  std::byte* item_at(std::uint64_t entry) const noexcept {
    return segments_[entry_segment(entry)].data + entry_offset(entry);
  }
  static std::size_t item_bytes(const std::byte* item) noexcept;
  // The slot holding `key`, or npos.
  std::size_t find_slot(std::string_view key, std::uint64_t hash) const noexcept;
  bool dead(const ItemRef& item) const noexcept { return death(item) != Miss::absent; }  // expired or flushed
  Miss death(const ItemRef& item) const noexcept;  // absent: alive
  void unlink_slot(std::size_t slot, std::byte* item) noexcept;
  void insert_entry(std::uint64_t hash, std::uint64_t entry);
  void rebuild_index(std::size_t slots);
  std::size_t allocated_bytes() const noexcept;

  // Segments.
  bool head_has_room(std::size_t bytes) const noexcept;
  void new_head(std::size_t bytes);
  void seal(std::uint32_t s) noexcept;
  void fifo_remove(std::uint32_t s) noexcept;
  void release(std::uint32_t s) noexcept;  // an emptied sealed segment: to the free list
  std::uint32_t allocate_segment();        // kNone when the budget is used
  std::size_t keep_limit(std::size_t reserve_bytes) const noexcept;     // what an eviction may keep
  std::size_t compact_limit(std::size_t reserve_bytes) const noexcept;  // the live bytes a whole compaction keeps
  std::uint32_t pick_victim(std::size_t reserve_bytes) const noexcept;
  void compact_into_head(std::uint32_t s, std::size_t reserve_bytes);
  void drop_segment(std::uint32_t s) noexcept;  // unlink all its items and give its memory back (budget shrink)
  void note_segment_emptied(std::uint32_t s) noexcept;

  StoreOptions options_;
  const Clock* clock_;
  std::int64_t start_ns_;
  std::int64_t process_started_;  // memcached's: unix time the store's clock counts from
  std::size_t segment_bytes_;
  std::size_t max_segments_;

  std::vector<Segment> segments_;  // reserved up front (max_segments_), allocated lazily
  std::uint32_t head_ = kNone;
  std::uint32_t fifo_first_ = kNone;
  std::uint32_t fifo_last_ = kNone;
  std::uint32_t free_first_ = kNone;

  std::uint64_t* index_ = nullptr;
  std::size_t slots_ = 0;  // 2^k times 1, 1.25, 1.5 or 1.75 (larger_index)
  std::size_t used_slots_ = 0;  // entries + tombstones
  std::size_t tombstones_ = 0;

  std::uint64_t next_cas_;
  std::uint32_t oldest_live_ = 0;  // flush_all: items with atime <= this are gone once now >= it
  std::uint64_t oldest_cas_ = 0;   // ... and those with a CAS below this one

  // Expiry cursor.
  std::uint32_t cursor_segment_ = kNone;
  std::uint32_t cursor_epoch_ = 0;
  std::uint32_t cursor_offset_ = 0;

  bool reserved_ = false;
  Miss last_miss_ = Miss::absent;
  StoreStats stats_;
};

// The 64-bit hash the index uses (exposed for sharding: shard = hash % shards uses other bits than the index).
std::uint64_t hash_key(std::string_view key) noexcept;

}  // namespace ringlet::cache
