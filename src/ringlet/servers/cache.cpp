// cache.cpp — the connection loop of `ringlet cache` (docs/design/cache.md, "The connection loop"), the cross-shard
// hand-off, stats, and the server's creation. Item semantics live in cache/commands, parsing in proto/memcache.
#include "ringlet/servers/cache.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <vector>

#include "ringlet/base/log.hpp"
#include "ringlet/proto/memcache/reply.hpp"
#include "ringlet/runtime/counters.hpp"
#include "ringlet/runtime/shard/submit_to.hpp"
#include "ringlet/runtime/turn_budget.hpp"

namespace ringlet::cache {

namespace {

namespace wire = memcache::wire;
using memcache::Command;
using memcache::Request;

// What VERSION says: memcached's version first (clients compare it to enable features), then ours.
constexpr std::string_view kVersion = "1.6.18-ringlet-0.1.0";
// The reply when the shard owning a key has already stopped (a graceful stop drains shards one by one).
constexpr std::string_view kStopping = "SERVER_ERROR shutting down\r\n";

// How the connection loop handles each command, indexed by Command (the dispatch table).
enum class Handling : std::uint8_t { retrieve, store, key, flush, version, verbosity, quit, stats, noop };
constexpr Handling kHandling[] = {
    Handling::retrieve, Handling::retrieve, Handling::retrieve, Handling::retrieve,  // get gets gat gats
    Handling::store,    Handling::store,    Handling::store,    Handling::store,     // set add replace append
    Handling::store,    Handling::store,                                             // prepend cas
    Handling::key,      Handling::key,      Handling::key,      Handling::key,       // delete incr decr touch
    Handling::flush,    Handling::version,  Handling::verbosity, Handling::quit,     // flush_all version ...
    Handling::stats,                                                                 // stats
    Handling::key,      Handling::store,    Handling::key,      Handling::key,       // mg ms md ma
    Handling::noop,     Handling::key,                                               // mn me
};
static_assert(std::size(kHandling) == std::size(memcache::kCommands));

std::int64_t unix_now() noexcept { return static_cast<std::int64_t>(::time(nullptr)); }

bool is_meta(Command c) noexcept { return c >= Command::mg; }

// ---- running a command where its key lives ----------------------------------------------------------------------

// On another shard. A hand-off is one message there and one back; what it carries lives in this connection's task
// while it waits: the request's views (into this connection's receive buffers, which stay put), and `reply`, a
// string of the connection's that the owner writes the answer into (Slices never cross shards). The string keeps
// its capacity from one hand-off to the next, so a hop allocates nothing on either shard (it used to return a new
// string: a malloc on the owner and a free here, on another thread's arena, per request; #10). The message
// captures one pointer, so it fits a ring slot inline.
struct Hop {
  CacheCluster* cluster;
  unsigned owner;
  const Request* req;
  std::string_view key;
  std::string* reply;
  DataBlock* data;  // storage commands: the value, copied into a string of this connection's
  bool with_end;    // a one-key get: the owner adds "END"
};

// Runs the hop's command on its owner; false when that shard has already stopped.
bool run_hop(const Hop& hop) {
  CacheServer* there = hop.cluster->servers[hop.owner];
  if (there == nullptr) return false;
  ReplyBuffer out(*hop.reply);
  switch (kHandling[static_cast<std::size_t>(hop.req->command)]) {
    case Handling::retrieve:
      get_key(there->partition(), *hop.req, hop.key, out);
      if (hop.with_end) {
        out.put(wire::kEnd);
        out.put("\r\n");
      }
      break;
    case Handling::store:
      store_command(there->partition(), *hop.req, *hop.data, out);
      break;
    default:
      key_command(there->partition(), *hop.req, hop.key, out);
      break;
  }
  return true;
}

// A string of a connection's that carried a large value gives its memory back, so 10,000 idle connections do not
// each keep the largest value they ever moved.
void shrink_if_large(std::string& s) {
  constexpr std::size_t kKeep = 16 * 1024;
  if (s.capacity() > kKeep) std::string().swap(s);
}

Task<void> run_remote(Stream& stream, Hop hop) {
  hop.reply->clear();
  const Hop* h = &hop;
  const bool ran = co_await submit_to(hop.owner, [h] { return run_hop(*h); });
  if (ran) {
    stream.queue_copy(*hop.reply);
  } else {
    // A get's key on a stopped shard misses, as in a multi-get's batch; other commands say why they failed.
    stream.queue_copy(hop.with_end ? std::string_view("END\r\n") : kStopping);
  }
  shrink_if_large(*hop.reply);
}

// Keys of a multi-get looked up together on one shard (Store::prefetch_slot): enough to overlap their cache misses.
constexpr std::size_t kLookupBatch = 16;

// A multi-get over several shards goes in batches: up to kBatchKeys keys at a time, one message per shard that owns
// some of them, the answers queued in request order. Each shard answers its keys of the batch in order until its
// answers pass `budget` bytes, so a batch of big values costs about one output limit per shard, not 32 values; the
// keys left unanswered start the next batch.
constexpr std::size_t kBatchKeys = 32;

struct GetBatch {
  std::vector<std::string_view> keys;
  std::vector<unsigned> owners;
  std::vector<std::string> replies;
  std::vector<char> answered;
};

void answer_batch(Partition& part, const Request& req, unsigned owner, GetBatch& batch, std::size_t budget) {
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < batch.keys.size() && bytes < budget; ++i) {
    if (batch.owners[i] != owner) continue;
    ReplyBuffer out(batch.replies[i]);
    get_key(part, req, batch.keys[i], out);
    batch.answered[i] = 1;
    bytes += batch.replies[i].size();
  }
}

Task<void> run_remote_batch(CacheServer& here, unsigned owner, const Request& req, GetBatch& batch) {
  CacheCluster* cluster = here.options().cluster;
  const std::size_t budget = here.options().output_limit;
  co_await submit_to(owner, [cluster, owner, &req, &batch, budget] {
    CacheServer* there = cluster->servers[owner];
    if (there != nullptr) {
      answer_batch(there->partition(), req, owner, batch, budget);
      return;
    }
    for (std::size_t i = 0; i < batch.keys.size(); ++i) {
      if (batch.owners[i] == owner) batch.answered[i] = 1;  // a stopped shard: its keys miss
    }
  });
}

Task<void> run_remote_drop(CacheServer& here, unsigned owner, std::string_view key) {
  CacheCluster* cluster = here.options().cluster;
  co_await submit_to(owner, [cluster, owner, key] {
    if (CacheServer* there = cluster->servers[owner]) drop_after_too_large(there->partition(), key);
  });
}

// flush_all reaches every shard; the reply waits until all have flushed.
Task<void> flush_everywhere(CacheServer& here, std::int64_t delay) {
  const CacheOptions& o = here.options();
  for (unsigned s = 0; s < o.shards; ++s) {
    if (s == o.shard || o.cluster == nullptr) {
      here.store().flush_all(delay);
      continue;
    }
    CacheCluster* cluster = o.cluster;
    co_await submit_to(s, [cluster, s, delay] {
      if (CacheServer* there = cluster->servers[s]) there->store().flush_all(delay);
    });
  }
  ++here.stats().cmd_flush;
}

// ---- stats -------------------------------------------------------------------------------------------------------

struct ShardReport {
  CommandStats commands;
  StoreStats store;
  std::uint64_t curr_connections = 0;
  std::uint64_t total_connections = 0;
  std::uint64_t rejected_connections = 0;
  std::uint64_t bytes_read = 0;
  std::uint64_t bytes_written = 0;

  void add(const ShardReport& o) {
    commands.add(o.commands);
    const StoreStats& s = o.store;
    store.curr_items += s.curr_items;
    store.total_items += s.total_items;
    store.bytes += s.bytes;
    store.evictions += s.evictions;
    store.evicted_unfetched += s.evicted_unfetched;
    store.reclaimed += s.reclaimed;
    store.expired_unfetched += s.expired_unfetched;
    store.retained += s.retained;
    store.segments += s.segments;
    store.segments_free += s.segments_free;
    store.segment_bytes = s.segment_bytes;
    store.index_bytes += s.index_bytes;
    store.index_slots += s.index_slots;
    store.allocated_bytes += s.allocated_bytes;
    store.budget_bytes += s.budget_bytes;
    curr_connections += o.curr_connections;
    total_connections += o.total_connections;
    rejected_connections += o.rejected_connections;
    bytes_read += o.bytes_read;
    bytes_written += o.bytes_written;
  }
};

ShardReport report_of(CacheServer& server) {
  ShardReport r;
  r.commands = server.stats();
  r.store = server.store().stats();
  const ServerStats t = server.tcp().stats();
  r.curr_connections = t.open;
  r.total_connections = server.total_connections();
  r.rejected_connections = t.refused;
  for (TcpServer* more : server.more_listeners()) {
    r.curr_connections += more->stats().open;
    r.rejected_connections += more->stats().refused;
  }
  const ThreadCounters& c = thread_counters();
  r.bytes_read = c.bytes_in.get();
  r.bytes_written = c.bytes_out.get();
  return r;
}

Task<ShardReport> gather_reports(CacheServer& here) {
  const CacheOptions& o = here.options();
  ShardReport all;
  for (unsigned s = 0; s < o.shards; ++s) {
    if (s == o.shard || o.cluster == nullptr) {
      all.add(report_of(here));
      continue;
    }
    CacheCluster* cluster = o.cluster;
    all.add(co_await submit_to(s, [cluster, s] {
      CacheServer* there = cluster->servers[s];
      return there != nullptr ? report_of(*there) : ShardReport{};
    }));
  }
  co_return all;
}

double seconds_of(const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; }

void stat(OutputChain& out, std::string_view name, std::uint64_t v) { memcache::write_stat(out, name, v); }
void stat(OutputChain& out, std::string_view name, std::string_view v) { memcache::write_stat(out, name, v); }

void general_stats(OutputChain& out, CacheServer& server, const ShardReport& r) {
  const CacheOptions& o = server.options();
  const std::int64_t now = unix_now();
  const std::int64_t started = o.cluster != nullptr ? o.cluster->started_unix : now;
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  char usage[64];
  stat(out, "pid", static_cast<std::uint64_t>(::getpid()));
  stat(out, "uptime", static_cast<std::uint64_t>(std::max<std::int64_t>(now - started, 0)));
  stat(out, "time", static_cast<std::uint64_t>(now));
  stat(out, "version", kVersion);
  stat(out, "libevent", "ringlet");
  stat(out, "pointer_size", std::uint64_t{sizeof(void*) * 8});
  std::snprintf(usage, sizeof usage, "%.6f", seconds_of(ru.ru_utime));
  stat(out, "rusage_user", usage);
  std::snprintf(usage, sizeof usage, "%.6f", seconds_of(ru.ru_stime));
  stat(out, "rusage_system", usage);
  stat(out, "max_connections", o.max_connections_total);
  stat(out, "curr_connections", r.curr_connections);
  stat(out, "total_connections", r.total_connections);
  stat(out, "rejected_connections", r.rejected_connections);
  stat(out, "connection_structures", r.curr_connections);
  const CommandStats& c = r.commands;
  stat(out, "cmd_get", c.cmd_get);
  stat(out, "cmd_set", c.cmd_set);
  stat(out, "cmd_flush", c.cmd_flush);
  stat(out, "cmd_touch", c.cmd_touch);
  stat(out, "cmd_meta", c.meta_cmds);
  stat(out, "get_hits", c.get_hits);
  stat(out, "get_misses", c.get_misses);
  stat(out, "get_expired", c.get_expired);
  stat(out, "get_flushed", c.get_flushed);
  stat(out, "delete_misses", c.delete_misses);
  stat(out, "delete_hits", c.delete_hits);
  stat(out, "incr_misses", c.incr_misses);
  stat(out, "incr_hits", c.incr_hits);
  stat(out, "decr_misses", c.decr_misses);
  stat(out, "decr_hits", c.decr_hits);
  stat(out, "cas_misses", c.cas_misses);
  stat(out, "cas_hits", c.cas_hits);
  stat(out, "cas_badval", c.cas_badval);
  stat(out, "touch_hits", c.touch_hits);
  stat(out, "touch_misses", c.touch_misses);
  stat(out, "store_too_large", c.store_too_large);
  stat(out, "store_no_memory", c.store_no_memory);
  stat(out, "auth_cmds", 0);
  stat(out, "auth_errors", 0);
  stat(out, "bytes_read", r.bytes_read);
  stat(out, "bytes_written", r.bytes_written);
  stat(out, "limit_maxbytes", r.store.budget_bytes);
  stat(out, "accepting_conns", 1);
  stat(out, "threads", o.shards);
  const StoreStats& s = r.store;
  stat(out, "hash_bytes", s.index_bytes);
  stat(out, "hash_is_expanding", 0);
  stat(out, "bytes", s.bytes);
  stat(out, "curr_items", s.curr_items);
  stat(out, "total_items", s.total_items);
  stat(out, "expired_unfetched", s.expired_unfetched);
  stat(out, "evicted_unfetched", s.evicted_unfetched);
  stat(out, "evicted_active", 0);
  stat(out, "evictions", s.evictions);
  stat(out, "reclaimed", s.reclaimed);
  // Our own: what the segment store does (docs/cache.md lists them).
  stat(out, "segments", s.segments);
  stat(out, "segments_free", s.segments_free);
  stat(out, "segment_bytes", s.segment_bytes);
  stat(out, "retained", s.retained);
  stat(out, "allocated_bytes", s.allocated_bytes);
}

void settings_stats(OutputChain& out, CacheServer& server) {
  const CacheOptions& o = server.options();
  stat(out, "maxbytes", static_cast<std::uint64_t>(o.memory_bytes) * o.shards);
  stat(out, "maxconns", o.max_connections_total);
  stat(out, "tcpport", o.server.listen.port());
  stat(out, "udpport", 0);
  stat(out, "verbosity", server.verbosity());
  stat(out, "num_threads", o.shards);
  stat(out, "evictions", "on");
  stat(out, "cas_enabled", "yes");
  stat(out, "item_size_max", o.max_item_bytes);
  stat(out, "idle_timeout",
       static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(o.server.idle_timeout).count()));
  stat(out, "flush_enabled", "yes");
  stat(out, "binding_protocol", "ascii");
  stat(out, "lru_segmented", "no");
  stat(out, "eviction_policy", "segment-clock");
}

// "stats items" and "stats slabs": memcached reports per slab class; the segment store has one class, so monitoring
// tools that read class 1 see the whole store.
void items_stats(OutputChain& out, const ShardReport& r) {
  stat(out, "items:1:number", r.store.curr_items);
  stat(out, "items:1:age", 0);
  stat(out, "items:1:evicted", r.store.evictions);
  stat(out, "items:1:evicted_nonzero", 0);
  stat(out, "items:1:evicted_unfetched", r.store.evicted_unfetched);
  stat(out, "items:1:expired_unfetched", r.store.expired_unfetched);
  stat(out, "items:1:reclaimed", r.store.reclaimed);
  stat(out, "items:1:outofmemory", 0);
}

void slabs_stats(OutputChain& out, const ShardReport& r) {
  const StoreStats& s = r.store;
  stat(out, "1:chunk_size", s.segment_bytes);
  stat(out, "1:chunks_per_page", 1);
  stat(out, "1:total_pages", s.segments);
  stat(out, "1:total_chunks", s.segments);
  stat(out, "1:used_chunks", s.segments - s.segments_free);
  stat(out, "1:free_chunks", s.segments_free);
  stat(out, "1:mem_requested", s.bytes);
  stat(out, "1:get_hits", r.commands.get_hits);
  stat(out, "1:cmd_set", r.commands.cmd_set);
  stat(out, "1:delete_hits", r.commands.delete_hits);
  stat(out, "1:incr_hits", r.commands.incr_hits);
  stat(out, "1:decr_hits", r.commands.decr_hits);
  stat(out, "1:cas_hits", r.commands.cas_hits);
  stat(out, "1:cas_badval", r.commands.cas_badval);
  stat(out, "1:touch_hits", r.commands.touch_hits);
  stat(out, "active_slabs", 1);
  stat(out, "total_malloced", s.allocated_bytes);
}

Task<void> reset_everywhere(CacheServer& here) {
  const CacheOptions& o = here.options();
  for (unsigned s = 0; s < o.shards; ++s) {
    if (s == o.shard || o.cluster == nullptr) {
      here.stats() = CommandStats{};
      continue;
    }
    CacheCluster* cluster = o.cluster;
    co_await submit_to(s, [cluster, s] {
      if (CacheServer* there = cluster->servers[s]) there->stats() = CommandStats{};
    });
  }
}

Task<void> write_stats(Stream& stream, CacheServer& server, std::string_view args) {
  memcache::Tokens t(args);
  const std::string_view what = t.next();
  if (what == "reset") {
    co_await reset_everywhere(server);
    memcache::write_line(stream.output(), wire::kReset);
    co_return;
  }
  if (!what.empty() && what != "settings" && what != "items" && what != "slabs" && what != "sizes" &&
      what != "conns") {
    memcache::write_line(stream.output(), wire::kError);
    co_return;
  }
  ShardReport r;
  if (what.empty() || what == "items" || what == "slabs") r = co_await gather_reports(server);
  OutputChain& out = stream.output();
  if (what.empty()) general_stats(out, server, r);
  if (what == "settings") settings_stats(out, server);
  if (what == "items") items_stats(out, r);
  if (what == "slabs") slabs_stats(out, r);
  memcache::write_line(out, wire::kEnd);
}

// ---- the connection loop -------------------------------------------------------------------------------------------


// Waits until `in` holds at least n bytes. False when the client went away (or the server is stopping).
Task<bool> wait_for_bytes(Stream& stream, std::size_t n) {
  while (stream.inbound().bytes() < n) {
    const std::size_t had = stream.inbound().bytes();
    Status more = co_await stream.wait_more();
    // No new bytes means end of input (or an error): wait_more() would return at once from now on.
    if (!more || stream.inbound().bytes() == had) co_return false;
  }
  co_return true;
}

// Discards n bytes as they arrive (a refused command's data block). False when the client went away first.
Task<bool> swallow(Stream& stream, std::uint64_t n) {
  n = memcache::skip_bytes(stream.inbound(), n);
  while (n > 0) {
    Status more = co_await stream.wait_more();
    if (!more || stream.inbound().empty()) co_return false;
    n = memcache::skip_bytes(stream.inbound(), n);
  }
  co_return true;
}

// The connection loop's questions after each answer (steps 4 and 5), asked by the loop and by an mg run alike.
//
// Step 4, fairness: a deep pipeline gets a turn's budget of answers, then the other connections get their turn (as
// in the HTTP server). A thousand clients pipelining gets of a 4 KiB value otherwise made one loop turn copy a
// quarter of a gigabyte, and a new client waited seconds for its first byte (#15). An answer whose next command is
// an mn is not counted: mn ends a meta batch, and the client reads nothing until it sees it, so a yield between a
// batch and its mn only split one answer into two sends (a 16-key meta get is 16 mg and an mn: it was answered in
// two sends, #10). The mn itself counts, so a stream of batches still yields every 16. `next` is what follows the
// answer in the first received slice (empty when nothing is queued; an mn split over two slices is not seen).
bool yield_after_answer(TurnBudget& turn, std::string_view next) noexcept {
  const bool mn_next =
      next.size() >= 3 && next[0] == 'm' && next[1] == 'n' && (next[2] == '\r' || next[2] == '\n' || next[2] == ' ');
  return !mn_next && turn.spend(!next.empty());
}

// Step 5, back-pressure: the client has output_limit of our replies unread (`staged`: what a ReplyBuffer holds yet).
bool over_output_limit(const Stream& stream, std::size_t staged, const CacheOptions& o) noexcept {
  return stream.queued_bytes() + staged >= o.output_limit;
}

// A meta multi-get is a run of mg lines and an mn, each its own command. Through the connection loop each paid the
// loop's per-command costs (RequestParser, a coroutine for the key command, a ReplyBuffer handed to the chain: 17
// appends per request) and its lookup's two cache misses (index slot, then item) one after the other. So an mg
// answers the run it starts (answer_mg_run): the whole mg lines after it in the first received slice, up to
// kLookupBatch with it, have their keys hashed and their index slots and then their items prefetched, as a text
// multi-get's are; then each is parsed and answered in order into one ReplyBuffer, and an "mn" line right after
// them too. The run stops before anything else (another command, a refused or split or over-long line: the loop
// takes it as before), before a line when the output is over the limit (the loop's back-pressure), and where the
// loop would have yielded (TurnBudget), so it answers what the loop would have answered, in the same order and the
// same turn, with the same bytes. A prefetch is a hint: a base64 key hashed as sent costs nothing but its hash.
// One shard only: with more, most keys live elsewhere and go through run_remote.
struct MgRun {
  std::size_t answered = 0;  // commands answered, the first mg included
  bool yield_now = false;    // the turn's budget ran out inside the run: the loop yields without spending again
};

bool is_bare_mn(std::string_view rest) noexcept {
  return rest.starts_with("mn\r\n") || rest.starts_with("mn\n");
}

MgRun answer_mg_run(Stream& stream, CacheServer& server, const Request& first,
                    const memcache::RequestLimits& limits, TurnBudget& turn) {
  SliceQueue& in = stream.inbound();
  Store& store = server.store();
  std::string_view lines[kLookupBatch];  // the lines after the first, "\n" included; they stay queued until answered
  std::string_view keys[kLookupBatch];   // as sent (the first one decoded)
  std::uint64_t hashes[kLookupBatch];
  char decoded[memcache::kMaxKeyLength];
  lines[0] = {};  // the first line is already consumed
  keys[0] = meta_key(first, decoded);
  hashes[0] = hash_key(keys[0]);
  store.prefetch_slot(hashes[0]);
  std::size_t n = 1;
  std::string_view rest = in.empty() ? std::string_view() : in.front().view();
  while (n < kLookupBatch && rest.size() > 3 && rest[0] == 'm' && rest[1] == 'g' && rest[2] == ' ') {
    const void* nl = std::memchr(rest.data(), '\n', rest.size());
    if (nl == nullptr) break;
    const std::size_t end = static_cast<std::size_t>(static_cast<const char*>(nl) - rest.data());
    if (end > limits.max_line) break;  // the loop closes the connection, as RequestParser decides
    // A plain loop: find_first_of calls memchr over its three delimiters once per byte of the key.
    std::size_t key_end = 3;
    while (key_end < end && rest[key_end] != ' ' && rest[key_end] != '\r') ++key_end;
    if (key_end == 3) break;
    lines[n] = rest.substr(0, end + 1);
    keys[n] = rest.substr(3, key_end - 3);
    hashes[n] = hash_key(keys[n]);
    store.prefetch_slot(hashes[n]);
    rest.remove_prefix(end + 1);
    ++n;
  }
  for (std::size_t i = 0; i < n; ++i) store.prefetch_item(hashes[i]);
  const CacheOptions& o = server.options();
  MgRun run;
  std::size_t consumed = 0;
  {
    ReplyBuffer out(stream.output());
    Request next;
    for (std::size_t i = 0; i < n; ++i) {
      // The loop's checks after the previous command: back-pressure stops the run (the loop then spends and
      // waits), a spent turn stops it with a yield.
      if (i > 0 && over_output_limit(stream, out.staged(), o)) break;
      if (i > 0 && yield_after_answer(turn, lines[i])) {
        run.yield_now = true;
        break;
      }
      const Request* req = &first;
      std::string_view key = keys[0];
      std::uint64_t hash = hashes[0];
      if (i > 0) {
        std::string_view line = lines[i].substr(0, lines[i].size() - 1);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        const auto length = static_cast<std::uint32_t>(lines[i].size());
        const memcache::ParseResult r =
            memcache::parse_line_after(line, length, limits, i == 1 ? first : next, next);
        if (!r.complete() || next.command != Command::mg) break;  // the loop parses it again and answers the error
        req = &next;
        key = meta_key(next, decoded);
        // The key as scanned, unless it was base64 (decoded into `decoded`): then hash what it names.
        hash = key.data() == keys[i].data() && key.size() == keys[i].size() ? hashes[i] : hash_key(key);
      }
      key_command(server.partition(), *req, key, hash, out);
      consumed += lines[i].size();
      ++run.answered;
    }
    // The mn that ends the batch: the loop spends nothing between an mg and its mn, and checks back-pressure only.
    if (run.answered == n && !run.yield_now && is_bare_mn(rest) && !over_output_limit(stream, out.staged(), o)) {
      out.put(wire::kMetaMn);
      out.put("\r\n");
      consumed += rest[2] == '\r' ? 4 : 3;
      ++run.answered;
    }
  }
  in.consume(consumed);
  return run;
}

// Back-pressure: waits while the client has more than output_limit of our replies unread.
Task<bool> wait_for_room(Stream& stream, const CacheOptions& o) {
  if (stream.queued_bytes() < o.output_limit) co_return true;
  Status room = co_await with_timeout(stream.write(Slice{}), o.send_timeout);
  if (!room) log_debug("cache: fd {}: client not reading: {}", stream.fd(), room.error().message());
  co_return room.ok();
}

// get/gets/gat/gats: values are queued key by key (in batches across shards), and the task waits for the client
// whenever the output is over the limit, so a huge multi-get costs about output_limit (per shard) plus one value of
// memory, however slowly it is read.
Task<bool> retrieve(Stream& stream, CacheServer& server, const Request& req, std::string& reply) {
  const CacheOptions& o = server.options();
  memcache::Tokens t(req.keys);
  if (o.shards > 1 && o.cluster != nullptr && req.key_count == 1) {
    // One key (most gets): answered where it lives, "END" included, without the batch's vectors.
    const unsigned owner = shard_of(req.key, o.shards);
    if (owner != o.shard) {
      co_await run_remote(stream, Hop{o.cluster, owner, &req, req.key, &reply, nullptr, true});
      co_return true;
    }
    ReplyBuffer out(stream.output());
    get_key(server.partition(), req, req.key, out);
    out.put(wire::kEnd);
    out.put("\r\n");
    co_return true;
  }
  if (o.shards <= 1 || o.cluster == nullptr) {
    // In batches of kLookupBatch keys: hash them all and prefetch their index slots, then their items, then answer
    // each (Store::prefetch_slot). The replies are staged in one ReplyBuffer, so the chain gets a few large copies.
    Store& store = server.store();
    ReplyBuffer out(stream.output());
    std::string_view keys[kLookupBatch];
    std::uint64_t hashes[kLookupBatch];
    for (bool more = true; more;) {
      std::size_t n = 0;
      for (; n < kLookupBatch; ++n) {
        keys[n] = t.next();
        if (keys[n].empty()) break;
        hashes[n] = hash_key(keys[n]);
        store.prefetch_slot(hashes[n]);
      }
      more = n == kLookupBatch;
      for (std::size_t i = 0; i < n; ++i) store.prefetch_item(hashes[i]);
      for (std::size_t i = 0; i < n; ++i) {
        get_key(server.partition(), req, keys[i], hashes[i], out);
        if (stream.queued_bytes() >= o.output_limit) {
          out.flush();
          if (!co_await wait_for_room(stream, o)) co_return false;
        }
      }
    }
    out.put(wire::kEnd);
    out.put("\r\n");
    co_return true;
  }
  GetBatch batch;
  bool more = true;
  for (;;) {
    while (more && batch.keys.size() < kBatchKeys) {
      const std::string_view key = t.next();
      if (key.empty()) {
        more = false;
        break;
      }
      batch.keys.push_back(key);
      batch.owners.push_back(shard_of(key, o.shards));
    }
    if (batch.keys.empty()) break;
    batch.replies.assign(batch.keys.size(), std::string());
    batch.answered.assign(batch.keys.size(), 0);
    for (unsigned s = 0; s < o.shards; ++s) {
      if (std::find(batch.owners.begin(), batch.owners.end(), s) == batch.owners.end()) continue;
      if (s == o.shard) {
        answer_batch(server.partition(), req, s, batch, o.output_limit);
      } else {
        co_await run_remote_batch(server, s, req, batch);
      }
    }
    // Queue the answers in request order, up to the first key a shard left for the next batch.
    std::size_t done = 0;
    for (; done < batch.keys.size() && batch.answered[done] != 0; ++done) {
      if (!batch.replies[done].empty()) stream.queue_copy(batch.replies[done]);
    }
    batch.keys.erase(batch.keys.begin(), batch.keys.begin() + static_cast<std::ptrdiff_t>(done));
    batch.owners.erase(batch.owners.begin(), batch.owners.begin() + static_cast<std::ptrdiff_t>(done));
    if (stream.queued_bytes() >= o.output_limit && !co_await wait_for_room(stream, o)) co_return false;
  }
  memcache::write_line(stream.output(), wire::kEnd);
  co_return true;
}

// A storage command whose line parsed: its data block is read (waiting for it), then stored where the key lives.
Task<bool> store(Stream& stream, CacheServer& server, const Request& req, std::string& reply,
                 std::string& value) {
  const CacheOptions& o = server.options();
  const std::uint64_t block = req.data_block();
  if (!co_await wait_for_bytes(stream, block)) co_return false;
  char buf[memcache::kMaxKeyLength];
  const std::string_view key = req.command == Command::ms ? meta_key(req, buf) : req.key;
  const unsigned owner = shard_of(key, o.shards);
  if (owner == o.shard || o.cluster == nullptr) {
    ReplyBuffer out(stream.output());
    DataBlock data{&stream.inbound(), {}};
    store_command(server.partition(), req, data, out);
    co_return true;
  }
  value.resize(block);
  DataBlock in{&stream.inbound(), {}};
  in.take(value.data(), value.size());
  DataBlock data{nullptr, value};
  co_await run_remote(stream, Hop{o.cluster, owner, &req, key, &reply, &data, false});
  shrink_if_large(value);
  co_return true;
}

Task<void> key(Stream& stream, CacheServer& server, const Request& req, std::string& reply) {
  char buf[memcache::kMaxKeyLength];
  const std::string_view k = is_meta(req.command) ? meta_key(req, buf) : req.key;
  const CacheOptions& o = server.options();
  const unsigned owner = shard_of(k, o.shards);
  if (owner == o.shard || o.cluster == nullptr) {
    ReplyBuffer out(stream.output());
    key_command(server.partition(), req, k, out);
    co_return;
  }
  co_await run_remote(stream, Hop{o.cluster, owner, &req, k, &reply, nullptr, false});
}

// A refused storage command (the parser's verdict): memcached drops the key's old value when a set was too large.
Task<void> after_too_large(CacheServer& server, const Request& req) {
  if (req.command != Command::set && req.command != Command::ms) co_return;
  char buf[memcache::kMaxKeyLength];
  const std::string_view k = req.command == Command::ms ? meta_key(req, buf) : req.key;
  if (k.empty()) co_return;
  const unsigned owner = shard_of(k, server.options().shards);
  if (owner == server.options().shard || server.options().cluster == nullptr) {
    drop_after_too_large(server.partition(), k);
    co_return;
  }
  co_await run_remote_drop(server, owner, k);
}

}  // namespace

Task<void> cache_connection(Stream stream, TcpServer& tcp) {
  CacheServer& server = *static_cast<CacheServer*>(tcp.user());
  const CacheOptions& o = server.options();
  ++server.total_connections();
  memcache::RequestLimits limits;
  limits.max_data_length = static_cast<std::uint32_t>(o.max_item_bytes);
  memcache::RequestParser parser(limits);
  SliceQueue& in = stream.inbound();
  // A command line that arrived in pieces is gathered here (each byte once); most lines are parsed in place.
  std::string pending;
  // What hand-offs to another shard carry (run_remote): the answer, and a storage command's value. Kept from one
  // command to the next so that a hop allocates nothing.
  std::string reply;
  std::string value;
  TurnBudget turn;  // pipelined commands answered since this connection last let the others run
  const bool one_shard = o.shards <= 1 || o.cluster == nullptr;
  bool open = true;
  RequestBatchTimer batch;  // ringlet_cache_request_batch_duration_seconds: one clock read per batch
  while (open) {
    if (in.empty()) {
      if (batch.due()) batch.end(server.loop().clock().now_ns(), server.batch_latency());
      Status more = co_await stream.wait_more();
      if (!more || in.empty()) break;  // end of input, idle timeout, error, or a graceful stop
      batch.begin(server.loop().now_ns());
    }
    bool yield_now = false;  // an mg run spent the turn's budget: yield (step 4) without spending again
    // 1. The command line: in place when the first received slice holds all of it, else gathered.
    Slice hold;  // keeps the line's buffer alive while the request's views point into it
    const std::string_view front = in.front().view();
    const void* nl = std::memchr(front.data(), '\n', front.size());
    memcache::ParseResult r;
    if (pending.empty() && nl != nullptr) {
      hold = in.front();
      r = parser.parse(front.substr(0, static_cast<const char*>(nl) - front.data() + 1));
      in.consume(r.consumed);
    } else {
      const std::size_t take =
          nl != nullptr ? static_cast<std::size_t>(static_cast<const char*>(nl) - front.data() + 1) : front.size();
      pending.append(front.substr(0, take));
      in.consume(take);
      r = parser.parse(pending);
      if (r.need_more()) continue;
    }
    // 2. Refused lines: the error, the refused data block swallowed; an endless line closes the connection.
    if (r.failed()) {
      if (r.error == memcache::ParseError::line_too_long) {
        log_debug("cache: fd {}: command line too long: closing", stream.fd());
        break;
      }
      if (!r.noreply) memcache::write_line(stream.output(), r.reply);
      if (r.error == memcache::ParseError::too_large) {
        ++server.stats().store_too_large;
        co_await after_too_large(server, parser.request());
      }
      if (r.swallow > 0 && !co_await swallow(stream, r.swallow)) break;
    } else {
      // 3. The command, by the dispatch table; an mg on one shard answers the run of mg lines it starts.
      const Request& req = parser.request();
      if (req.command == Command::mg && one_shard) {
        const MgRun run = answer_mg_run(stream, server, req, limits, turn);
        for (std::size_t i = 1; i < run.answered; ++i) batch.answered();
        yield_now = run.yield_now;
      } else {
        switch (kHandling[static_cast<std::size_t>(req.command)]) {
          case Handling::retrieve:
            open = co_await retrieve(stream, server, req, reply);
            break;
          case Handling::store:
            open = co_await store(stream, server, req, reply, value);
            break;
          case Handling::key:
            co_await key(stream, server, req, reply);
            break;
          case Handling::flush:
            co_await flush_everywhere(server, req.has_delay ? req.exptime : 0);
            if (!req.noreply) memcache::write_line(stream.output(), wire::kOk);
            break;
          case Handling::version:
            memcache::write_version(stream.output(), kVersion);
            break;
          case Handling::verbosity:
            server.verbosity() = req.verbosity;
            if (!req.noreply) memcache::write_line(stream.output(), wire::kOk);
            break;
          case Handling::quit:
            open = false;
            break;
          case Handling::stats:
            co_await write_stats(stream, server, req.args);
            break;
          case Handling::noop:
            memcache::write_line(stream.output(), wire::kMetaMn);
            break;
        }
      }
    }
    batch.answered();
    parser.reset();
    pending.clear();
    hold.reset();
    // 4. Fairness: the turn's budget of answers (yield_after_answer).
    if (open && (yield_now || yield_after_answer(turn, in.empty() ? std::string_view() : in.front().view()))) {
      Status yielded = co_await yield();
      if (!yielded) break;
    }
    // 5. Back-pressure: a client that pipelines without reading waits here, holding back its own requests.
    if (open && over_output_limit(stream, 0, o)) open = co_await wait_for_room(stream, o);
  }
  if (batch.due()) batch.end(server.loop().clock().now_ns(), server.batch_latency());  // ended by quit
  (void)co_await with_timeout(stream.flush(), o.send_timeout);
}

// ---- the server ------------------------------------------------------------------------------------------------------

std::size_t shard_memory(std::size_t total, unsigned shards, std::size_t max_item_bytes) noexcept {
  const std::size_t each = total / std::max(shards, 1u);
  return each < Store::min_memory_bytes(max_item_bytes) ? 0 : each;
}

Result<std::unique_ptr<CacheServer>> CacheServer::create(Loop& loop, CacheOptions options) {
  if (options.memory_bytes < Store::min_memory_bytes(options.max_item_bytes)) {
    log_error("cache: {} bytes of memory per shard is below the minimum {} for --max-item-size {}",
              options.memory_bytes, Store::min_memory_bytes(options.max_item_bytes), options.max_item_bytes);
    return errc::invalid_argument;
  }
  if (options.server.name == ServerOptions{}.name) options.server.name = "cache";
  options.server.listen_options.stream.send_high_watermark = options.output_limit;
  StoreOptions store;
  store.memory_bytes = options.memory_bytes;
  store.max_item_bytes = options.max_item_bytes;
  store.cas_first = options.shard + 1;
  store.cas_stride = std::max(options.shards, 1u);
  store.unix_now = unix_now();
  auto server = std::unique_ptr<CacheServer>(new CacheServer(loop, std::move(options), store));
  CacheServer* self = server.get();
  const CacheOptions& o = self->options_;
  if (o.cluster != nullptr) o.cluster->servers[o.shard] = self;
  self->verbosity_ = o.verbosity;
  if (o.shard == 0) {
    log_info("cache: {} MiB of memory in {} shard(s), items up to {} bytes, {} B segments",
             o.memory_bytes * o.shards / (1024 * 1024), o.shards, o.max_item_bytes,
             Store::segment_bytes_for(o.max_item_bytes));
  }
  self->expiry_ = loop.spawn_joinable(expire_periodically(self));
  return server;
}

Task<void> CacheServer::run() { co_await tcp_.run(); }

TcpServer& CacheServer::add_listener(const Address& address, ReusePort reuse_port) {
  ServerOptions server = tcp_.options();
  server.listen = address;
  server.listen_options.reuse_port = reuse_port;
  more_.push_back(std::make_unique<TcpServer>(*loop_, server, &cache_connection, this));
  more_tcp_.push_back(more_.back().get());
  return *more_.back();
}

void CacheServer::stop() noexcept {
  tcp_.stop();
  for (TcpServer* more : more_tcp_) more->stop();
}

// The bounded background pass: every expiry_interval, up to expiry_batch items of the oldest segments. It runs until
// the server is destroyed.
Task<void> CacheServer::expire_periodically(CacheServer* self) {
  for (;;) {
    Status slept = co_await sleep_for(self->options_.expiry_interval);
    if (!slept) co_return;  // cancelled by the destructor: `self` may be gone, touch nothing
    self->store_.expire_some(self->options_.expiry_batch);
  }
}

CacheServer::CacheServer(Loop& loop, CacheOptions options, const StoreOptions& store)
    : loop_(&loop),
      options_(std::move(options)),
      clock_(loop),
      store_(store, clock_),
      partition_{store_, stats_},
      tcp_(loop, options_.server, &cache_connection, this) {}

CacheServer::~CacheServer() {
  expiry_.cancel();
  // Other shards reach this one through the cluster: from now on they find no server here (they run on this thread
  // when they look, so the check and this store cannot race).
  if (options_.cluster != nullptr) options_.cluster->servers[options_.shard] = nullptr;
}

void describe_cache_metrics(CacheServer& server, MetricSet& out) {
  const CommandStats& c = server.stats();
  const StoreStats& st = server.store().stats();
  const auto cmd = [&out](const char* name, std::uint64_t n) {
    out.counter("ringlet_cache_commands_total", "Cache commands by kind (get counts each key; meta: mg ms md ma me).",
                static_cast<double>(n), {{"command", name}});
  };
  cmd("get", c.cmd_get);
  cmd("set", c.cmd_set);
  cmd("touch", c.cmd_touch);
  cmd("flush", c.cmd_flush);
  cmd("meta", c.meta_cmds);
  struct Outcome {
    const char* command;
    std::uint64_t hits;
    std::uint64_t misses;
  };
  const Outcome outcomes[] = {{"get", c.get_hits, c.get_misses},       {"touch", c.touch_hits, c.touch_misses},
                              {"delete", c.delete_hits, c.delete_misses}, {"incr", c.incr_hits, c.incr_misses},
                              {"decr", c.decr_hits, c.decr_misses},     {"cas", c.cas_hits, c.cas_misses}};
  for (const Outcome& o : outcomes) {
    out.counter("ringlet_cache_hits_total", "Commands that found their key, by command.", static_cast<double>(o.hits),
                {{"command", o.command}});
  }
  for (const Outcome& o : outcomes) {
    out.counter("ringlet_cache_misses_total", "Commands that did not find their key, by command.",
                static_cast<double>(o.misses), {{"command", o.command}});
  }
  out.counter("ringlet_cache_cas_mismatches_total", "cas commands refused because the item changed (EXISTS).",
              static_cast<double>(c.cas_badval));
  out.counter("ringlet_cache_store_refused_total", "Storage commands refused, by reason.",
              static_cast<double>(c.store_too_large), {{"reason", "too_large"}});
  out.counter("ringlet_cache_store_refused_total", "Storage commands refused, by reason.",
              static_cast<double>(c.store_no_memory), {{"reason", "no_memory"}});
  out.counter("ringlet_cache_items_stored_total", "Items ever stored.", static_cast<double>(st.total_items));
  out.counter("ringlet_cache_evictions_total", "Live, unexpired items dropped to make room.",
              static_cast<double>(st.evictions));
  out.counter("ringlet_cache_expirations_total", "Expired or flushed items removed (on access or by the expiry pass).",
              static_cast<double>(st.reclaimed));
  out.gauge("ringlet_cache_items", "Items stored now.", static_cast<double>(st.curr_items));
  out.gauge("ringlet_cache_item_bytes", "Bytes of the items stored now (header, key and value).",
            static_cast<double>(st.bytes));
  out.gauge("ringlet_cache_memory_used_bytes", "Memory the stores allocated (segments and hash index).",
            static_cast<double>(st.allocated_bytes));
  out.gauge("ringlet_cache_memory_limit_bytes", "Memory the stores may allocate (--memory).",
            static_cast<double>(st.budget_bytes));
  out.histogram("ringlet_cache_request_batch_duration_seconds",
                "Time from the receive that brought a batch of commands to its last reply being queued.",
                server.batch_latency());
}

}  // namespace ringlet::cache
