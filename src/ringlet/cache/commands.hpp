// commands.hpp — memcached's item commands executed against a Store: the semantics of every classic and meta
// command that reads or writes items, with memcached 1.6's exact replies. Pure (no I/O) and core-local: it runs on
// the shard that owns the store. The server's connection loop parses (proto/memcache), waits for data blocks and
// decides where a command runs; the connection-level commands (stats, version, verbosity, quit) are its own.
//
// Replies go to a ReplyBuffer: a connection's OutputChain when the command runs on the connection's shard, a string
// when it runs on another shard and the bytes travel back in a message (Slices never cross shards).
//
// Values are copied out of the store into the reply (see store.hpp for why nothing points into a segment after
// the call returns).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "ringlet/buf/output_chain.hpp"
#include "ringlet/buf/slice_queue.hpp"
#include "ringlet/cache/store.hpp"
#include "ringlet/proto/memcache/request_parser.hpp"

namespace ringlet::cache {

// Where a reply's bytes go. To a chain, they are staged in a small array first and handed over in one append_copy
// when it fills or the ReplyBuffer is flushed or destroyed: a "VALUE" line is seven pieces (and a multi-get sixteen
// of those), and one append per piece cost more than the bytes themselves (issue 10's multi-get profile). To a
// string (a reply that travels to another shard), bytes are appended at once, so a caller may interleave its own
// appends with it.
class ReplyBuffer {
 public:
  explicit ReplyBuffer(OutputChain& chain) noexcept : chain_(&chain) {}
  explicit ReplyBuffer(std::string& text) noexcept : text_(&text) {}
  ~ReplyBuffer() { flush(); }
  ReplyBuffer(const ReplyBuffer&) = delete;
  ReplyBuffer& operator=(const ReplyBuffer&) = delete;

  void put(std::string_view s) {
    if (chain_ != nullptr && s.size() <= kStage - staged_) {
      std::memcpy(stage_ + staged_, s.data(), s.size());
      staged_ += s.size();
      return;
    }
    put_slow(s);
  }
  void put_number(std::uint64_t v);
  void put_signed(std::int64_t v);
  // Room for n bytes at the end of the stage, written in place and then kept with wrote(end); nullptr when the
  // replies go to a string or the stage lacks the room (then put() the pieces). One bounds check and no call per
  // piece for a whole VALUE line and its value (seven pieces, each a put() and a memcpy call; #10).
  char* room(std::size_t n) noexcept {
    return chain_ != nullptr && n <= kStage - staged_ ? stage_ + staged_ : nullptr;
  }
  void wrote(const char* end) noexcept { staged_ = static_cast<std::size_t>(end - stage_); }
  // Bytes put but not yet handed to the chain (a caller bounding its output counts them with the chain's).
  std::size_t staged() const noexcept { return staged_; }
  // Hands the staged bytes to the chain (the chain's byte count includes them from then on).
  void flush() {
    if (staged_ == 0) return;
    chain_->append_copy(std::string_view(stage_, staged_));
    staged_ = 0;
  }

 private:
  static constexpr std::size_t kStage = 2048;  // a 16-key multi-get of 64-byte values is about 1.5 KiB
  void put_slow(std::string_view s);

  OutputChain* chain_ = nullptr;
  std::string* text_ = nullptr;
  std::size_t staged_ = 0;
  char stage_[kStage];
};

// Where a storage command's data block comes from: `bytes` of value and its "\r\n", all present. Either the
// connection's receive queue (consumed as it is copied) or bytes a message carried from another shard.
struct DataBlock {
  SliceQueue* queue = nullptr;
  std::string_view text;
  // Copies the next n bytes to dst.
  void take(char* dst, std::size_t n);
  void skip(std::size_t n);
};

// Counters `stats` reports (memcached's names, per shard; the server sums them).
struct CommandStats {
  std::uint64_t cmd_get = 0, get_hits = 0, get_misses = 0, get_expired = 0, get_flushed = 0;
  std::uint64_t cmd_set = 0, cmd_touch = 0, cmd_flush = 0;
  std::uint64_t touch_hits = 0, touch_misses = 0;
  std::uint64_t delete_hits = 0, delete_misses = 0;
  std::uint64_t incr_hits = 0, incr_misses = 0, decr_hits = 0, decr_misses = 0;
  std::uint64_t cas_hits = 0, cas_misses = 0, cas_badval = 0;
  std::uint64_t store_too_large = 0, store_no_memory = 0;
  std::uint64_t meta_cmds = 0;

  void add(const CommandStats& o) noexcept;
};

// One shard's part of the key space: its store and its counters.
struct Partition {
  Store& store;
  CommandStats& stats;
};

// One key of get/gets/gat/gats ("VALUE ..." or nothing on a miss); the caller sends "END" after the last key.
void get_key(Partition& part, const memcache::Request& request, std::string_view key, ReplyBuffer& out);
// The same with the key's hash_key() already computed (a multi-get hashes and prefetches a batch of keys first).
void get_key(Partition& part, const memcache::Request& request, std::string_view key, std::uint64_t hash,
             ReplyBuffer& out);

// set add replace append prepend cas, and ms: reads request.data_block() bytes from `block`.
void store_command(Partition& part, const memcache::Request& request, DataBlock& block, ReplyBuffer& out);

// delete incr decr touch flush_all, and mg md ma me (their key already decoded from base64 when b is set: pass it as
// `key`).
void key_command(Partition& part, const memcache::Request& request, std::string_view key, ReplyBuffer& out);
// The same with the key's hash_key() already computed, for mg (a run of mg lines hashes and prefetches its keys
// first); the other commands look their key up by itself.
void key_command(Partition& part, const memcache::Request& request, std::string_view key, std::uint64_t hash,
                 ReplyBuffer& out);

// A storage command refused for its size (by the parser or by Store::fits): memcached also drops the key's old
// value, so a client never reads a stale one after a failed set.
void drop_after_too_large(Partition& part, std::string_view key);

// The key a meta command names (base64-decoded with the b flag) into `buf` (kMaxKeyLength bytes); empty if invalid.
std::string_view meta_key(const memcache::Request& request, char* buf) noexcept;

// Which shard of `shards` owns `key` (shares nothing with the index's use of the hash).
unsigned shard_of(std::string_view key, unsigned shards) noexcept;

}  // namespace ringlet::cache
