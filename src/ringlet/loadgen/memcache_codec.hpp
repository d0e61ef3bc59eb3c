// memcache_codec.hpp — the load generator's use of memcached's text and meta protocols, for `ringlet bench
// memcache`: which requests it sends, and the verification of every reply. Pure: no I/O, no clock. Core-local (one
// per connection). The wire grammar itself (composing request lines, splitting reply lines into views, the reply
// strings) is proto/memcache/client.hpp; this file decides what to send and whether an answer is right.
//
// Requests (protocol text | meta):
//   get of N keys   text: "get k1 k2 ... kN\r\n"            meta, N == 1: "mg k1 f v\r\n"
//                                                           meta, N > 1:  "mg ki k f v q\r\n" for each key, "mn\r\n"
//   set             text: "set k F 0 n[ noreply]\r\n" data  meta: "ms k n F<F>[ q]\r\n" data   (data ends "\r\n")
//   barrier         text: "get k\r\n" (the key just set)    meta: "mn\r\n"
// F, the client flags, carry the value's version (memcache_keys.hpp), so every value read back is checked in full.
//
// Replies are parsed incrementally from a SliceQueue: a reply line is taken as a view (copied only when it
// straddles two receive buffers); a data block is compared piece by piece against the expected value straight
// from the receive buffers and consumed as it goes, so a large value is never gathered.
//
// A quiet set (noreply / q) has no reply of its own. The server answers in order, so the first byte of any later
// reply proves it was processed: its Expect is `none`, which completes as soon as any byte is queued and consumes
// nothing. An error it provokes (memcached sends SERVER_ERROR even for noreply) arrives where the next reply
// should start and is reported there as wrong. To keep the pipeline bounded, the connection follows a run of
// quiet sets with a barrier (docs/design/loadgen-protocols.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "ringlet/buf/slice_queue.hpp"
#include "ringlet/loadgen/memcache_keys.hpp"
#include "ringlet/loadgen/workload.hpp"
#include "ringlet/proto/memcache/client.hpp"

namespace ringlet::loadgen::memcache {

enum class Protocol : std::uint8_t { text, meta };
enum class Quiet : bool { no, yes };
// Whether a get that misses is wrong: after --preload every key exists, and a barrier reads a key just set.
enum class MustHit : bool { no, yes };

// Reply lines longer than this are wrong (the longest we expect: "VALUE", a 250-byte key, flags, length, cas).
inline constexpr std::size_t kMaxReplyLine = 512;
// Most keys in one get request (--multiget).
inline constexpr std::size_t kMaxMultiget = 100;
// Values whose tail is at most this long are copied into the request (one iovec); longer ones are queued as a
// view of the shared pattern (no copy).
inline constexpr std::size_t kCopyValueBelow = 512;

// What the reply to one request must be.
struct Expect {
  enum class Kind : std::uint8_t {
    values,  // a get: text VALUE* END; meta single VA | EN; meta multi VA* MN
    stored,  // a set: STORED / HD
    noop,    // a barrier after a quiet meta set: MN
    none,    // a quiet set: nothing of its own
  };
  Kind kind = Kind::none;
  MustHit must_hit = MustHit::no;
  std::uint16_t key_count = 0;           // values: how many keys the get asked for
  const std::uint64_t* keys = nullptr;   // values: the keys, in request order (owned by the connection)
};

// Composes requests into a RequestSink. Holds a scratch string sized on first use (no allocation after warm-up).
class RequestWriter {
 public:
  RequestWriter(Protocol protocol, const KeySpace& keys, const ValuePattern& values) noexcept
      : protocol_(protocol), keys_(&keys), values_(&values) {}

  void get(RequestSink& out, std::span<const std::uint64_t> keys);  // 1 <= keys.size() <= kMaxMultiget
  void set(RequestSink& out, std::uint64_t key, std::uint32_t version, Quiet quiet);
  // Text: "get <key>" (the key just set, checked like any get); meta: "mn".
  void barrier(RequestSink& out, std::uint64_t last_key);

 private:
  std::string_view key_text(std::uint64_t key, std::size_t slot);

  Protocol protocol_;
  const KeySpace* keys_;
  const ValuePattern* values_;
  std::string scratch_;
  std::string keys_text_;  // the keys of one request, side by side (kMaxMultiget of them)
};

// Parses and verifies the reply to the oldest request in flight. Call reset() before each new reply.
class ReplyParser {
 public:
  ReplyParser(Protocol protocol, const KeySpace& keys, const ValuePattern& values) noexcept
      : protocol_(protocol), keys_(&keys), values_(&values) {}

  void reset() noexcept;
  // complete: the reply was whole and right, and is consumed. need_more: wait for more bytes (progress kept).
  // wrong: see Reply::what. `e` must stay the same until the reply completes.
  Reply parse(SliceQueue& in, const Expect& e);

  // Counters over every reply parsed (tests and diagnostics).
  std::uint64_t hits() const noexcept { return total_hits_; }
  std::uint64_t misses() const noexcept { return total_misses_; }

 private:
  enum class Phase : std::uint8_t { line, data, data_end };

  Reply on_line(std::string_view line, const Expect& e);
  Reply on_value_line(const ringlet::memcache::ReplyLine& line, const Expect& e);
  Reply on_meta_value_line(const ringlet::memcache::ReplyLine& line, const Expect& e);
  Reply start_data(std::uint64_t key, std::uint32_t version, std::size_t length, const Expect& e);
  Reply finish_values(const Expect& e);
  Reply parse_data(SliceQueue& in);

  Protocol protocol_;
  const KeySpace* keys_;
  const ValuePattern* values_;

  Phase phase_ = Phase::line;
  std::uint16_t cursor_ = 0;  // the first requested key a VALUE may still answer (misses are skipped)
  std::uint16_t hits_ = 0;
  std::size_t data_pos_ = 0;  // bytes of the current value already checked
  std::uint32_t data_offset_ = 0;
  char data_header_[ValuePattern::kHeaderSize] = {};

  std::uint64_t total_hits_ = 0;
  std::uint64_t total_misses_ = 0;
};

}  // namespace ringlet::loadgen::memcache
