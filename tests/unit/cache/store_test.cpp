// store_test.cpp — the item store with a manual clock: memory stays within the budget however much is written,
// eviction drops the oldest unread items first and gives read ones a second chance (and unread ones too while the
// segment is mostly dead), expiry (lazy and by the pass),
// flush_all with and without a delay, CAS values, and the index growing inside the budget.
#include "ringlet/cache/store.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ringlet::cache {
namespace {

constexpr std::int64_t kSecond = 1'000'000'000;
constexpr std::int64_t kUnixNow = 1'800'000'000;  // wall clock when the store starts

struct Fixture {
  explicit Fixture(std::size_t memory = 8 * 1024 * 1024, std::size_t max_item = 1024 * 1024) {
    StoreOptions o;
    o.memory_bytes = memory;
    o.max_item_bytes = max_item;
    o.unix_now = kUnixNow;
    store = std::make_unique<Store>(o, clock);
  }
  ItemRef set(std::string_view key, std::string_view value, std::int64_t exptime = 0) {
    Reservation r = store->reserve(key, static_cast<std::uint32_t>(value.size()));
    EXPECT_TRUE(r);
    std::memcpy(r.value(), value.data(), value.size());
    return store->commit(r, 0, store->to_exptime(exptime));
  }
  std::string get(std::string_view key) {
    ItemRef item = store->find(key);
    if (!item) return "<miss>";
    store->bump(item);
    return std::string(item.value());
  }
  ManualClock clock{5 * kSecond};
  std::unique_ptr<Store> store;
};

std::string key_of(int i) { return "key:" + std::to_string(i); }

TEST(Store, set_then_find_returns_the_value_and_overwrite_replaces_it) {
  Fixture f;
  f.set("a", "one");
  EXPECT_EQ(f.get("a"), "one");
  f.set("a", "two, longer");
  EXPECT_EQ(f.get("a"), "two, longer");
  EXPECT_EQ(f.store->stats().curr_items, 1u);
  EXPECT_EQ(f.get("b"), "<miss>");
}

TEST(Store, unlink_removes_the_item_and_the_key_can_be_stored_again) {
  Fixture f;
  f.set("a", "one");
  f.store->unlink(f.store->find("a"));
  EXPECT_EQ(f.get("a"), "<miss>");
  f.set("a", "again");
  EXPECT_EQ(f.get("a"), "again");
}

TEST(Store, cas_values_are_unique_and_grow_with_every_store) {
  Fixture f;
  std::uint64_t last = 0;
  for (int i = 0; i < 100; ++i) {
    ItemRef item = f.set(key_of(i % 7), "v");
    EXPECT_GT(item.cas(), last);
    last = item.cas();
  }
}

TEST(Store, cas_stride_interleaves_the_values_of_several_shards) {
  ManualClock clock;
  StoreOptions o;
  o.memory_bytes = 4 * 1024 * 1024;
  o.cas_first = 2;
  o.cas_stride = 3;
  Store s(o, clock);
  EXPECT_EQ(s.next_cas(), 2u);
  EXPECT_EQ(s.next_cas(), 5u);
}

TEST(Store, relative_exptime_expires_after_that_many_seconds) {
  Fixture f;
  f.set("a", "v", 10);
  f.clock.advance(9 * kSecond);
  EXPECT_EQ(f.get("a"), "v");
  f.clock.advance(1 * kSecond);
  EXPECT_EQ(f.get("a"), "<miss>");
  EXPECT_EQ(f.store->stats().reclaimed, 1u);
}

TEST(Store, negative_exptime_means_already_expired) {
  Fixture f;
  f.set("a", "v", -1);
  EXPECT_EQ(f.get("a"), "<miss>");
}

TEST(Store, exptime_over_thirty_days_is_an_absolute_unix_time) {
  Fixture f;
  // Exactly 30 days is still relative.
  f.set("rel", "v", kRelativeExptimeLimit);
  f.set("abs", "v", kUnixNow + 100);
  f.set("past", "v", kUnixNow - 100);
  EXPECT_EQ(f.get("past"), "<miss>");
  f.clock.advance(99 * kSecond);
  EXPECT_EQ(f.get("abs"), "v");
  f.clock.advance(2 * kSecond);
  EXPECT_EQ(f.get("abs"), "<miss>");
  EXPECT_EQ(f.get("rel"), "v");
  EXPECT_EQ(f.store->ttl_of(f.store->find("rel")), kRelativeExptimeLimit - 101);
}

TEST(Store, ttl_is_minus_one_for_items_that_never_expire) {
  Fixture f;
  EXPECT_EQ(f.store->ttl_of(f.set("a", "v")), -1);
  EXPECT_EQ(f.store->ttl_of(f.set("b", "v", 50)), 50);
}

TEST(Store, flush_all_without_delay_drops_everything_stored_before_it_at_once) {
  Fixture f;
  f.set("a", "v");
  f.set("b", "v");
  f.store->flush_all(0);
  EXPECT_EQ(f.get("a"), "<miss>");
  EXPECT_EQ(f.get("b"), "<miss>");
  f.set("c", "after");  // same second as the flush: kept
  EXPECT_EQ(f.get("c"), "after");
}

TEST(Store, flush_all_with_a_delay_takes_effect_a_second_before_the_delay_as_in_memcached) {
  Fixture f;
  f.set("a", "v");
  f.store->flush_all(3);
  EXPECT_EQ(f.get("a"), "v");
  f.clock.advance(1 * kSecond);
  EXPECT_EQ(f.get("a"), "v");
  f.clock.advance(1 * kSecond);  // now + delay - 1
  EXPECT_EQ(f.get("a"), "<miss>");
  f.clock.advance(1 * kSecond);
  f.set("b", "later");
  EXPECT_EQ(f.get("b"), "later");
}

TEST(Store, memory_stays_within_the_budget_while_far_more_is_written) {
  Fixture f(4 * 1024 * 1024);
  const std::string value(100, 'x');
  for (int i = 0; i < 200000; ++i) f.set(key_of(i), value);  // ~26 MB of items into 4 MiB
  const StoreStats& s = f.store->stats();
  EXPECT_LE(s.allocated_bytes, 4u * 1024 * 1024);
  EXPECT_GT(s.evictions, 100000u);
  EXPECT_GT(s.curr_items, 10000u);
  EXPECT_EQ(f.get(key_of(199999)), value);  // the newest survive
  EXPECT_EQ(f.get(key_of(0)), "<miss>");    // the oldest went first
}

TEST(Store, items_read_since_written_get_a_second_chance_at_eviction) {
  Fixture f(3 * 1024 * 1024);
  const std::string value(1000, 'x');
  // Fill about one segment, read a few, then write enough to evict that segment.
  for (int i = 0; i < 1000; ++i) f.set(key_of(i), value);
  for (int i = 0; i < 1000; i += 100) EXPECT_EQ(f.get(key_of(i)), value);
  for (int i = 1000; i < 4000; ++i) f.set(key_of(i), value);
  int kept = 0;
  for (int i = 0; i < 1000; ++i) kept += f.store->find(key_of(i)) ? 1 : 0;
  EXPECT_EQ(kept, 10);
  for (int i = 0; i < 1000; i += 100) EXPECT_TRUE(f.store->find(key_of(i))) << i;
  EXPECT_GE(f.store->stats().retained, 10u);
}

TEST(Store, live_data_well_under_the_budget_survives_any_number_of_overwrites_unread) {
  // 2,000 items of ~1 KB (a quarter of the budget) overwritten at random, never read: the oldest segment is mostly
  // dead each time it comes round, so its few live items are compacted into the new head instead of evicted —
  // memcached, which frees an overwritten item at once, would lose none of them either.
  Fixture f(8 * 1024 * 1024);
  const std::string value(1000, 'v');
  constexpr int kKeys = 2000;
  for (int i = 0; i < kKeys; ++i) f.set(key_of(i), value);
  std::uint64_t x = 12345;
  for (int n = 0; n < 40 * kKeys; ++n) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    f.set(key_of(static_cast<int>((x >> 33) % kKeys)), value);
  }
  int missing = 0;
  for (int i = 0; i < kKeys; ++i) missing += f.store->find(key_of(i)) ? 0 : 1;
  EXPECT_EQ(missing, 0);
  EXPECT_EQ(f.store->stats().evictions, 0u);
  EXPECT_GT(f.store->stats().retained, 0u);
  EXPECT_LE(f.store->stats().allocated_bytes, 8u * 1024 * 1024);
}

TEST(Store, a_store_never_fails_while_anything_is_evictable_even_with_max_size_items) {
  Fixture f(3 * 1024 * 1024);
  const std::string big(1024 * 1024 - kItemOverheadMax - 10, 'b');
  for (int i = 0; i < 20; ++i) {
    f.set("big" + std::to_string(i), big);
    EXPECT_EQ(f.get("big" + std::to_string(i)), big);
    f.set(key_of(i), "small");
  }
}

TEST(Store, fits_counts_header_key_and_value_against_the_item_limit) {
  Fixture f(4 * 1024 * 1024, 1000);
  EXPECT_TRUE(f.store->fits(10, 1000 - kItemOverheadMax - 10));
  EXPECT_FALSE(f.store->fits(10, 1000 - kItemOverheadMax - 9));
}

// #10, memory per item: client flags and exptime take bytes only when non-zero (the item's trailer).
TEST(Store, flags_and_exptime_cost_bytes_only_when_set) {
  Fixture f;
  Reservation r = f.store->reserve("plain", 3);
  std::memcpy(r.value(), "abc", 3);
  ItemRef plain = f.store->commit(r, 0, 0);
  EXPECT_EQ(plain.total_bytes(), kItemHeader + 5 + 3);
  r = f.store->reserve("both", 3);
  std::memcpy(r.value(), "xyz", 3);
  ItemRef both = f.store->commit(r, 0xdeadbeef, f.store->to_exptime(100));
  EXPECT_EQ(both.total_bytes(), kItemHeader + 4 + 3 + 8);
  EXPECT_EQ(both.client_flags(), 0xdeadbeefu);
  EXPECT_EQ(f.store->ttl_of(both), 100);
  EXPECT_EQ(f.store->stats().bytes, 2 * kItemHeader + 5 + 3 + 4 + 3 + 8);
  ItemRef again = f.store->find("plain");
  EXPECT_EQ(again.value(), "abc");
  EXPECT_EQ(again.client_flags(), 0u);
  EXPECT_EQ(f.store->ttl_of(again), -1);
}

// Giving an exptime to an item stored without one rewrites it: same value, flags, CAS and bits, one item.
TEST(Store, setting_an_exptime_on_an_item_without_one_keeps_everything_else) {
  Fixture f;
  Reservation r = f.store->reserve("k", 5);
  std::memcpy(r.value(), "value", 5);
  ItemRef item = f.store->commit(r, 7, 0, 0, kKeyBinary);
  f.store->bump(item);
  const std::uint64_t cas = item.cas();
  f.store->set_exptime(item, f.store->to_exptime(30));
  EXPECT_EQ(item.value(), "value");
  EXPECT_EQ(item.client_flags(), 7u);
  EXPECT_EQ(item.cas(), cas);
  EXPECT_TRUE(item.has(kKeyBinary) && item.has(kFetched));
  EXPECT_EQ(f.store->ttl_of(item), 30);
  EXPECT_EQ(f.store->stats().curr_items, 1u);
  EXPECT_EQ(f.store->stats().total_items, 1u);
  EXPECT_EQ(f.store->stats().bytes, item.total_bytes());
  // In place from now on; back to 0 means never.
  f.store->set_exptime(item, 0);
  EXPECT_EQ(f.store->ttl_of(item), -1);
  ItemRef found = f.store->find("k");
  ASSERT_TRUE(found);
  EXPECT_EQ(found.value(), "value");
  f.clock.advance(60 * kSecond);
  EXPECT_TRUE(f.store->find("k"));
}

TEST(Store, aborted_reservations_leave_no_trace) {
  Fixture f;
  f.set("a", "v");
  Reservation r = f.store->reserve("b", 10);
  f.store->abort(r);
  EXPECT_EQ(f.get("b"), "<miss>");
  EXPECT_EQ(f.store->stats().curr_items, 1u);
}

TEST(Store, the_background_pass_reclaims_expired_items_and_frees_empty_segments) {
  Fixture f(8 * 1024 * 1024);
  const std::string value(1000, 'x');
  for (int i = 0; i < 3000; ++i) f.set(key_of(i), value, 10);
  for (int i = 3000; i < 3100; ++i) f.set(key_of(i), value);
  f.clock.advance(11 * kSecond);
  std::size_t unlinked = 0;
  for (int pass = 0; pass < 10; ++pass) unlinked += f.store->expire_some(1000);
  EXPECT_EQ(unlinked, 3000u);
  EXPECT_EQ(f.store->stats().curr_items, 100u);
  EXPECT_GE(f.store->stats().segments_free, 1u);
  EXPECT_EQ(f.get(key_of(3050)), value);
}

TEST(Store, the_index_grows_and_its_bytes_count_against_the_budget) {
  Fixture f(16 * 1024 * 1024);
  for (int i = 0; i < 100000; ++i) f.set(key_of(i), "v");
  const StoreStats& s = f.store->stats();
  EXPECT_GE(s.index_slots, 100000u * 5 / 4);  // at most 4/5 full
  EXPECT_LE(s.allocated_bytes, 16u * 1024 * 1024);
  for (int i = 0; i < 100000; i += 997) EXPECT_EQ(f.get(key_of(i)), "v");
}

TEST(Store, deleting_and_reinserting_many_keys_keeps_lookups_correct) {
  Fixture f;
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 20000; ++i) f.set(key_of(i), std::to_string(round));
    for (int i = 0; i < 20000; i += 2) f.store->unlink(f.store->find(key_of(i)));
  }
  EXPECT_EQ(f.get(key_of(1)), "4");
  EXPECT_EQ(f.get(key_of(2)), "<miss>");
  EXPECT_EQ(f.store->stats().curr_items, 10000u);
}

}  // namespace
}  // namespace ringlet::cache
