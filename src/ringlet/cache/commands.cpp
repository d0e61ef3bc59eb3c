// commands.cpp — memcached's item commands on a Store (see commands.hpp). The reference is memcached 1.6.18's
// proto_text.c and doc/protocol.txt; where this code makes a choice memcached's source makes differently, the
// comment says so.
#include "ringlet/cache/commands.hpp"

#include <bit>
#include <charconv>
#include <cstring>

#include "ringlet/proto/memcache/reply.hpp"

namespace ringlet::cache {

namespace wire = memcache::wire;
using memcache::Command;
using memcache::Request;

namespace {

constexpr std::string_view kCrlf = "\r\n";

void line(ReplyBuffer& out, std::string_view text) {
  out.put(text);
  out.put(kCrlf);
}

char* put_chars(char* p, std::string_view s) noexcept {
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

// The digits of v at p (room for 20). Numbers under 100 (most flags, small values' lengths) are written here:
// std::to_chars is a call per number, and a reply line has two or three (#10).
char* put_u64(char* p, std::uint64_t v) noexcept {
  if (v < 10) {
    *p = static_cast<char>('0' + v);
    return p + 1;
  }
  if (v < 100) {
    p[0] = static_cast<char>('0' + v / 10);
    p[1] = static_cast<char>('0' + v % 10);
    return p + 2;
  }
  return std::to_chars(p, p + 20, v).ptr;
}

// "VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\n"
void value_reply(ReplyBuffer& out, const ItemRef& item, bool with_cas) {
  const std::string_view key = item.key();
  const std::string_view value = item.value();
  // The whole reply in place when the stage has room: "VALUE " and the key, three numbers of at most 10, 10 and 20
  // digits with their spaces, the value and two line ends.
  if (char* p = out.room(6 + key.size() + 43 + value.size() + 4)) {
    p = put_chars(p, "VALUE ");
    p = put_chars(p, key);
    *p++ = ' ';
    p = put_u64(p, item.client_flags());
    *p++ = ' ';
    p = put_u64(p, item.value_length());
    if (with_cas) {
      *p++ = ' ';
      p = put_u64(p, item.cas());
    }
    p = put_chars(p, kCrlf);
    p = put_chars(p, value);
    out.wrote(put_chars(p, kCrlf));
    return;
  }
  out.put("VALUE ");
  out.put(item.key());
  out.put(" ");
  out.put_number(item.client_flags());
  out.put(" ");
  out.put_number(item.value_length());
  if (with_cas) {
    out.put(" ");
    out.put_number(item.cas());
  }
  out.put(kCrlf);
  out.put(item.value());
  out.put(kCrlf);
}

// ---- incr / decr -------------------------------------------------------------------------------------------------

bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

// memcached's safe_strtoull on an item's data (which "\r\n" follows): leading white space, an optional sign,
// digits, then the end or white space. No digits, overflow, or a negative number is non-numeric.
bool numeric_value(std::string_view v, std::uint64_t& out) noexcept {
  std::size_t i = 0;
  while (i < v.size() && is_space(v[i])) ++i;
  bool negative = false;
  if (i < v.size() && (v[i] == '+' || v[i] == '-')) negative = v[i++] == '-';
  const std::size_t digits = i;
  std::uint64_t x = 0;
  for (; i < v.size() && v[i] >= '0' && v[i] <= '9'; ++i) {
    const std::uint64_t d = static_cast<std::uint64_t>(v[i] - '0');
    if (x > (UINT64_MAX - d) / 10) return false;
    x = x * 10 + d;
  }
  if (i == digits) return false;
  if (i < v.size() && !is_space(v[i])) return false;
  if (negative) {
    x = 0 - x;
    if (static_cast<std::int64_t>(x) < 0) return false;
  }
  out = x;
  return true;
}

enum class Delta { ok, not_found, non_numeric, cas_mismatch };

struct DeltaResult {
  Delta status = Delta::not_found;
  std::uint64_t value = 0;
  ItemRef item;
};

// memcached's do_add_delta: incr wraps at 2^64, decr stops at 0; a result no longer than the old value is written
// in place, padded with spaces (so "100" decr 95 reads back as "5  ", as in memcached), else a new item is stored
// with the old flags and exptime. Either way the item gets a new CAS.
DeltaResult add_delta(Store& store, std::string_view key, bool incr, std::uint64_t delta, std::uint64_t compare_cas,
                      std::uint64_t new_cas) {
  DeltaResult r;
  ItemRef item = store.find(key);
  if (!item) return r;
  if (compare_cas != 0 && item.cas() != compare_cas) {
    r.status = Delta::cas_mismatch;
    return r;
  }
  std::uint64_t value = 0;
  if (item.value_length() == 0 || !numeric_value(item.value(), value)) {
    r.status = Delta::non_numeric;
    return r;
  }
  if (incr) {
    value += delta;
  } else {
    value = delta > value ? 0 : value - delta;
  }
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
  const auto n = static_cast<std::size_t>(end - digits);
  const std::uint64_t cas = new_cas != 0 ? new_cas : store.next_cas();
  if (n <= item.value_length()) {
    std::memcpy(item.mutable_value(), digits, n);
    std::memset(item.mutable_value() + n, ' ', item.value_length() - n);
    item.set_cas(cas);
    store.bump(item);
  } else {
    const std::uint32_t flags = item.client_flags();
    const std::uint32_t exptime = item.exptime();
    Reservation res = store.reserve(key, static_cast<std::uint32_t>(n));
    std::memcpy(res.value(), digits, n);
    item = store.commit(res, flags, exptime, cas);
  }
  r.status = Delta::ok;
  r.value = value;
  r.item = item;
  return r;
}

// ---- storage -----------------------------------------------------------------------------------------------------

enum class StoreMode : std::uint8_t { set, add, replace, append, prepend, cas };
enum class Stored : std::uint8_t { stored, not_stored, exists, not_found, bad_chunk, too_large };

struct StoreArgs {
  StoreMode mode = StoreMode::set;
  std::uint32_t client_flags = 0;
  std::int64_t exptime = 0;
  std::uint64_t compare_cas = 0;  // cas mode; append/prepend: checked when non-zero
  std::uint64_t new_cas = 0;      // meta E
  bool invalidate = false;        // meta I with a CAS
  std::uint8_t bits = 0;          // kKeyBinary
};

// memcached's do_store_item, on a value that is in `block`. Returns the outcome and, when stored, the CAS.
Stored store_item(Partition& part, std::string_view key, std::uint32_t length, const StoreArgs& a, DataBlock& block,
                  std::uint64_t& cas_out) {
  Store& store = part.store;
  if (!store.fits(key.size(), length)) {
    block.skip(std::size_t{length} + 2);
    return Stored::too_large;
  }
  // Cheap refusals first, so a refused add does not evict anything.
  ItemRef old = store.find(key);
  const bool concat = a.mode == StoreMode::append || a.mode == StoreMode::prepend;
  std::uint32_t old_length = 0;
  if (concat && old) {
    old_length = old.value_length();
    if (!store.fits(key.size(), std::uint64_t{old_length} + length)) {
      block.skip(std::size_t{length} + 2);
      return Stored::too_large;
    }
  }
  Reservation r = store.reserve(key, old_length + length);
  char* value = r.value();
  block.take(a.mode == StoreMode::prepend ? value : value + old_length, length);
  char end[2];
  block.take(end, 2);
  if (end[0] != '\r' || end[1] != '\n') {
    store.abort(r);
    return Stored::bad_chunk;
  }
  // Reserving may have evicted (or moved) the old item: look again.
  old = store.find(key);
  Stored verdict = Stored::stored;
  std::uint32_t flags = a.client_flags;
  std::uint32_t exptime = store.to_exptime(a.exptime);
  std::uint8_t bits = a.bits;
  switch (a.mode) {
    case StoreMode::set:
      break;
    case StoreMode::add:
      if (old) {
        store.bump(old);  // memcached refreshes the item an add ran into
        verdict = Stored::not_stored;
      }
      break;
    case StoreMode::replace:
      if (!old) verdict = Stored::not_stored;
      break;
    case StoreMode::cas:
      if (!old) {
        verdict = Stored::not_found;
      } else if (old.cas() != a.compare_cas) {
        // Meta I: a CAS older than the item's still stores, marked stale (the token stays with whoever won it).
        if (a.invalidate && a.compare_cas < old.cas()) {
          bits = static_cast<std::uint8_t>(bits | kStale | (old.bits() & kTokenSent));
        } else {
          verdict = Stored::exists;
        }
      }
      break;
    case StoreMode::append:
    case StoreMode::prepend:
      if (!old || old.value_length() != old_length) {
        verdict = Stored::not_stored;
      } else if (a.compare_cas != 0 && old.cas() != a.compare_cas) {
        verdict = Stored::exists;
      } else {
        std::memcpy(a.mode == StoreMode::append ? value : value + length, old.value().data(), old_length);
        flags = old.client_flags();
        exptime = old.exptime();
      }
      break;
  }
  if (verdict != Stored::stored) {
    store.abort(r);
    return verdict;
  }
  ItemRef item = store.commit(r, flags, exptime, a.new_cas, bits);
  cas_out = item.cas();
  return verdict;
}

void count_store(CommandStats& s, StoreMode mode, Stored st) {
  ++s.cmd_set;
  if (st == Stored::too_large) ++s.store_too_large;
  if (mode != StoreMode::cas) return;
  if (st == Stored::stored) ++s.cas_hits;
  if (st == Stored::exists) ++s.cas_badval;
  if (st == Stored::not_found) ++s.cas_misses;
}

// ---- meta --------------------------------------------------------------------------------------------------------

// Returned key: as the client sent it (still base64 with b), then " b" as memcached adds.
void meta_key_flag(ReplyBuffer& out, const Request& req) {
  out.put(" k");
  out.put(req.key);
  if (req.meta.has('b')) out.put(" b");
}

void meta_opaque(ReplyBuffer& out, std::string_view token) {
  out.put(" ");
  out.put(token);
}

// The O and k flags in request order: what a miss (EN, NF) and most other codes return.
void meta_echo(ReplyBuffer& out, const Request& req) {
  memcache::Tokens t(req.meta.text);
  for (std::string_view tok = t.next(); !tok.empty(); tok = t.next()) {
    if (tok[0] == 'O') meta_opaque(out, tok);
    if (tok[0] == 'k') meta_key_flag(out, req);
  }
}

void put_ttl(ReplyBuffer& out, const Store& store, const ItemRef& item) {
  out.put_signed(store.ttl_of(item));
}

// The longest line an mg hit can answer: "VA" and 10 digits, each flag mg accepts at most once (the parser refuses
// duplicates) and none longer than 22 bytes (" c" and 20 digits) but k (" k", a key of up to 250 bytes and " b")
// and O (" O" and up to 32 bytes), then " Z X W" and the line end.
constexpr std::size_t kMetaHeadMax = 13 + 22 * static_cast<std::size_t>(std::popcount(memcache::kMgFlags.bits())) +
                                     (4 + memcache::kMaxKeyLength) + (2 + memcache::kMaxOpaque) + 6 + 2;

// This request's bound: 22 bytes for each flag it has (" c" and 20 digits), its key (k) and its flags' text
// (an O token is echoed), so the reply stage is asked for little more than what is written.
std::size_t meta_head_bound(const Request& req) noexcept {
  const auto flags = static_cast<std::size_t>(std::popcount(req.meta.set.bits()));
  return 13 + 22 * flags + (4 + req.key.size()) + (1 + req.meta.text.size()) + 6 + 2;
}

void meta_get(Partition& part, const Request& req, std::string_view key, std::uint64_t hash, ReplyBuffer& out) {
  Store& store = part.store;
  const memcache::MetaFlags& m = req.meta;
  ItemRef item = store.find(key, hash);
  bool created = false;
  if (!item && m.has('N')) {
    // Vivify on miss: an empty item the caller is told to fill (W).
    Reservation r = store.reserve(key, 0);
    item = store.commit(r, 0, 0, 0, m.has('b') ? kKeyBinary : 0);
    created = true;
  }
  const bool touching = m.has('T');
  if (touching) ++part.stats.cmd_touch;
  if (!item) {
    if (touching) {
      ++part.stats.touch_misses;
    } else {
      ++part.stats.cmd_get;
      ++part.stats.get_misses;
    }
    if (m.has('q')) return;
    out.put(wire::kMetaEn);
    meta_echo(out, req);
    out.put(kCrlf);
    return;
  }
  if (touching) {
    ++part.stats.touch_hits;
  } else {
    ++part.stats.cmd_get;
    ++part.stats.get_hits;
  }
  // The reply line is written in place: into the reply stage when it has room for the line's bound and the value,
  // else into `head` and put. Each piece was a put() (a bounds check and a memcpy call) and each number a
  // put_number() call: ten calls for "VA 64 k<key> f0" and its value (#10).
  const bool with_value = m.has('v');
  char head[kMetaHeadMax];
  char* const room = out.room(meta_head_bound(req) + (with_value ? std::size_t{item.value_length()} + 2 : 0));
  char* p = room != nullptr ? room : head;
  bool won = false;
  if (with_value) {
    p = put_chars(p, wire::kMetaValue);
    *p++ = ' ';
    p = put_u64(p, item.value_length());
  } else {
    p = put_chars(p, wire::kMetaHd);
  }
  memcache::Tokens t(m.text);
  for (std::string_view tok = t.next(); !tok.empty(); tok = t.next()) {
    switch (tok[0]) {
      case 'T':
        store.set_exptime(item, store.to_exptime(m.ttl));
        break;
      case 'N':
        if (created) {
          store.set_exptime(item, store.to_exptime(m.vivify_ttl));
          won = true;
        }
        break;
      case 'R':
        if (!item.has(kTokenSent) && !created && item.exptime() != 0 &&
            item.exptime() < store.to_exptime(m.recache_ttl)) {
          won = true;
        }
        break;
      case 's':
        p = put_chars(p, " s");
        p = put_u64(p, item.value_length());
        break;
      case 't':
        p = put_chars(p, " t");
        p = std::to_chars(p, p + 20, store.ttl_of(item)).ptr;
        break;
      case 'c':
        p = put_chars(p, " c");
        p = put_u64(p, item.cas());
        break;
      case 'f':
        p = put_chars(p, " f");
        p = put_u64(p, item.client_flags());
        break;
      case 'l':
        p = put_chars(p, " l");
        p = put_u64(p, store.now() - item.atime());
        break;
      case 'h':
        p = put_chars(p, item.has(kFetched) ? std::string_view(" h1") : std::string_view(" h0"));
        break;
      case 'O':
        *p++ = ' ';
        p = put_chars(p, tok);
        break;
      case 'k':
        p = put_chars(p, " k");
        p = put_chars(p, req.key);
        if (m.has('b')) p = put_chars(p, " b");
        break;
      default:
        break;
    }
  }
  if (item.has(kTokenSent)) p = put_chars(p, " Z");
  if (item.has(kStale)) {
    p = put_chars(p, " X");
    if (!item.has(kTokenSent)) won = true;
  }
  if (won) {
    p = put_chars(p, " W");
    item.add_bits(kTokenSent);
  }
  p = put_chars(p, kCrlf);
  if (room != nullptr) {
    if (with_value) p = put_chars(put_chars(p, item.value()), kCrlf);
    out.wrote(p);
  } else {
    out.put(std::string_view(head, static_cast<std::size_t>(p - head)));
    if (with_value) {
      out.put(item.value());
      out.put(kCrlf);
    }
  }
  if (!m.has('u')) store.bump(item);
}

void meta_delete(Partition& part, const Request& req, std::string_view key, ReplyBuffer& out) {
  Store& store = part.store;
  const memcache::MetaFlags& m = req.meta;
  ItemRef item = store.find(key);
  std::string_view code;
  if (!item) {
    ++part.stats.delete_misses;
    code = wire::kMetaNf;
  } else if (m.has('C') && item.cas() != m.compare_cas) {
    ++part.stats.delete_misses;
    code = wire::kMetaEx;
  } else if (m.has('I')) {
    // Invalidate: keep the item, stale, with a new CAS; the next reader wins the token to refill it.
    if (m.has('T')) store.set_exptime(item, store.to_exptime(m.ttl));
    item.add_bits(kStale);
    item.clear_bits(kTokenSent);
    item.set_cas(m.has('E') ? m.new_cas : store.next_cas());
    code = wire::kMetaHd;
  } else if (m.has('x')) {
    // Newer memcached's x: drop the value, keep the item (with its flags and TTL) under a new CAS.
    const std::uint32_t flags = item.client_flags();
    const std::uint32_t exptime = item.exptime();
    const std::uint8_t bits = item.bits() & kKeyBinary;
    Reservation r = store.reserve(key, 0);
    store.commit(r, flags, exptime, m.has('E') ? m.new_cas : 0, bits);
    ++part.stats.delete_hits;
    code = wire::kMetaHd;
  } else {
    ++part.stats.delete_hits;
    store.unlink(item);
    code = wire::kMetaHd;
  }
  if (code == wire::kMetaHd && m.has('q')) return;
  out.put(code);
  meta_echo(out, req);
  out.put(kCrlf);
}

void meta_arithmetic(Partition& part, const Request& req, std::string_view key, ReplyBuffer& out) {
  Store& store = part.store;
  const memcache::MetaFlags& m = req.meta;
  const bool incr = !(m.mode == 'D' || m.mode == '-');
  DeltaResult d = add_delta(store, key, incr, m.delta, m.has('C') ? m.compare_cas : 0, m.has('E') ? m.new_cas : 0);
  bool created = false;
  if (d.status == Delta::non_numeric) {
    line(out, wire::kNonNumericValue);
    return;
  }
  if (d.status == Delta::not_found) {
    (incr ? part.stats.incr_misses : part.stats.decr_misses)++;
    if (m.has('N')) {
      char digits[24];
      auto [end, ec] = std::to_chars(digits, digits + sizeof digits, m.initial);
      const auto n = static_cast<std::size_t>(end - digits);
      Reservation r = store.reserve(key, static_cast<std::uint32_t>(n));
      std::memcpy(r.value(), digits, n);
      d.item = store.commit(r, 0, 0, m.has('E') ? m.new_cas : 0, m.has('b') ? kKeyBinary : 0);
      d.value = m.initial;
      d.status = Delta::ok;
      created = true;
    }
  } else if (d.status == Delta::ok) {
    (incr ? part.stats.incr_hits : part.stats.decr_hits)++;
  }
  if (d.status != Delta::ok) {
    out.put(d.status == Delta::not_found ? wire::kMetaNf : wire::kMetaEx);
    meta_echo(out, req);
    out.put(kCrlf);
    return;
  }
  if (m.has('q') && !created) {
    // memcached hides the success line in quiet mode (not a vivified one), but still applies T.
    if (m.has('T')) store.set_exptime(d.item, store.to_exptime(m.ttl));
    return;
  }
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, d.value);
  const std::string_view number(digits, static_cast<std::size_t>(end - digits));
  if (m.has('v')) {
    out.put(wire::kMetaValue);
    out.put(" ");
    out.put_number(number.size());
  } else {
    out.put(wire::kMetaHd);
  }
  memcache::Tokens t(m.text);
  for (std::string_view tok = t.next(); !tok.empty(); tok = t.next()) {
    switch (tok[0]) {
      case 'c':
        out.put(" c");
        out.put_number(d.item.cas());
        break;
      case 't':
        out.put(" t");
        put_ttl(out, store, d.item);
        break;
      case 'T':
        store.set_exptime(d.item, store.to_exptime(m.ttl));
        break;
      case 'N':
        if (created) store.set_exptime(d.item, store.to_exptime(m.vivify_ttl));
        break;
      case 'O':
        meta_opaque(out, tok);
        break;
      case 'k':
        meta_key_flag(out, req);
        break;
      default:
        break;
    }
  }
  out.put(kCrlf);
  if (m.has('v')) line(out, number);
}

void meta_debug(Partition& part, std::string_view key, const Request& req, ReplyBuffer& out) {
  Store& store = part.store;
  ItemRef item = store.find(key);
  if (!item) {
    line(out, wire::kMetaEn);
    return;
  }
  out.put(wire::kMetaMe);
  out.put(" ");
  out.put(req.key);
  out.put(" exp=");
  put_ttl(out, store, item);
  out.put(" la=");
  out.put_number(store.now() - item.atime());
  out.put(" cas=");
  out.put_number(item.cas());
  out.put(item.has(kFetched) ? " fetch=yes" : " fetch=no");
  out.put(" cls=1 size=");  // one "class": the store has no slab classes
  out.put_number(item.total_bytes());
  out.put(kCrlf);
}

}  // namespace

// ---- ReplyBuffer, DataBlock ------------------------------------------------------------------------------------------

void ReplyBuffer::put_slow(std::string_view s) {
  if (chain_ == nullptr) {
    text_->append(s);
    return;
  }
  flush();
  if (s.size() > kStage / 2) {
    chain_->append_copy(s);  // a large value: straight to the chain, not through the stage
    return;
  }
  std::memcpy(stage_, s.data(), s.size());
  staged_ = s.size();
}

void ReplyBuffer::put_number(std::uint64_t v) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, v);
  put(std::string_view(digits, static_cast<std::size_t>(end - digits)));
}

void ReplyBuffer::put_signed(std::int64_t v) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, v);
  put(std::string_view(digits, static_cast<std::size_t>(end - digits)));
}

void DataBlock::take(char* dst, std::size_t n) {
  if (queue != nullptr) {
    while (n > 0) {
      const Slice& front = queue->front();
      const std::size_t k = std::min(n, front.size());
      if (k > 0) std::memcpy(dst, front.data(), k);
      queue->consume(k);
      dst += k;
      n -= k;
    }
    return;
  }
  RINGLET_ASSERT(n <= text.size());
  if (n > 0) std::memcpy(dst, text.data(), n);
  text.remove_prefix(n);
}

void DataBlock::skip(std::size_t n) {
  if (queue != nullptr) {
    queue->consume(n);
  } else {
    text.remove_prefix(n);
  }
}

void CommandStats::add(const CommandStats& o) noexcept {
  cmd_get += o.cmd_get;
  get_hits += o.get_hits;
  get_misses += o.get_misses;
  get_expired += o.get_expired;
  get_flushed += o.get_flushed;
  cmd_set += o.cmd_set;
  cmd_touch += o.cmd_touch;
  cmd_flush += o.cmd_flush;
  touch_hits += o.touch_hits;
  touch_misses += o.touch_misses;
  delete_hits += o.delete_hits;
  delete_misses += o.delete_misses;
  incr_hits += o.incr_hits;
  incr_misses += o.incr_misses;
  decr_hits += o.decr_hits;
  decr_misses += o.decr_misses;
  cas_hits += o.cas_hits;
  cas_misses += o.cas_misses;
  cas_badval += o.cas_badval;
  store_too_large += o.store_too_large;
  store_no_memory += o.store_no_memory;
  meta_cmds += o.meta_cmds;
}

// ---- the commands --------------------------------------------------------------------------------------------------

void get_key(Partition& part, const Request& req, std::string_view key, ReplyBuffer& out) {
  get_key(part, req, key, hash_key(key), out);
}

void get_key(Partition& part, const Request& req, std::string_view key, std::uint64_t hash, ReplyBuffer& out) {
  Store& store = part.store;
  const bool touch = req.command == Command::gat || req.command == Command::gats;
  ItemRef item = store.find(key, hash);
  if (touch) {
    ++part.stats.cmd_touch;
    (item ? part.stats.touch_hits : part.stats.touch_misses)++;
  } else {
    ++part.stats.cmd_get;
    (item ? part.stats.get_hits : part.stats.get_misses)++;
  }
  if (!item) {
    if (store.last_miss() == Store::Miss::expired) ++part.stats.get_expired;
    if (store.last_miss() == Store::Miss::flushed) ++part.stats.get_flushed;
    return;
  }
  if (touch) store.set_exptime(item, store.to_exptime(req.exptime));
  store.bump(item);
  value_reply(out, item, req.command == Command::gets || req.command == Command::gats);
}

void store_command(Partition& part, const Request& req, DataBlock& block, ReplyBuffer& out) {
  StoreArgs a;
  std::string_view key = req.key;
  char decoded[memcache::kMaxKeyLength];
  const bool meta = req.command == Command::ms;
  if (meta) {
    ++part.stats.meta_cmds;
    const memcache::MetaFlags& m = req.meta;
    key = meta_key(req, decoded);
    a.client_flags = m.client_flags;
    a.exptime = m.has('T') ? m.ttl : 0;
    a.new_cas = m.has('E') ? m.new_cas : 0;
    a.bits = m.has('b') ? kKeyBinary : 0;
    switch (m.mode) {
      case 'E': a.mode = StoreMode::add; break;
      case 'A': a.mode = StoreMode::append; break;
      case 'P': a.mode = StoreMode::prepend; break;
      case 'R': a.mode = StoreMode::replace; break;
      default: a.mode = StoreMode::set; break;
    }
    if (m.has('C')) {
      a.compare_cas = m.compare_cas;
      // A CAS upgrades set and replace to cas (replace + cas is cas); add ignores it.
      if (a.mode == StoreMode::set || a.mode == StoreMode::replace) a.mode = StoreMode::cas;
      a.invalidate = m.has('I') && a.mode == StoreMode::cas;
    }
  } else {
    a.client_flags = req.client_flags;
    a.exptime = req.exptime;
    switch (req.command) {
      case Command::add: a.mode = StoreMode::add; break;
      case Command::replace: a.mode = StoreMode::replace; break;
      case Command::append: a.mode = StoreMode::append; break;
      case Command::prepend: a.mode = StoreMode::prepend; break;
      case Command::cas:
        a.mode = StoreMode::cas;
        a.compare_cas = req.cas_unique;
        break;
      default: a.mode = StoreMode::set; break;
    }
  }
  std::uint64_t cas = 0;
  const Stored st = store_item(part, key, req.data_length, a, block, cas);
  count_store(part.stats, a.mode, st);
  if (st == Stored::too_large) drop_after_too_large(part, key);
  if (!meta) {
    if (req.noreply) return;
    switch (st) {
      case Stored::stored: line(out, wire::kStored); break;
      case Stored::not_stored: line(out, wire::kNotStored); break;
      case Stored::exists: line(out, wire::kExists); break;
      case Stored::not_found: line(out, wire::kNotFound); break;
      case Stored::bad_chunk: line(out, wire::kBadDataChunk); break;
      case Stored::too_large: line(out, wire::kTooLarge); break;
    }
    return;
  }
  // ms: errors are always sent; with q the success line is not.
  if (st == Stored::bad_chunk) return line(out, wire::kBadDataChunk);
  if (st == Stored::too_large) return line(out, wire::kTooLarge);
  if (st == Stored::stored && req.meta.has('q')) return;
  switch (st) {
    case Stored::stored: out.put(wire::kMetaHd); break;
    case Stored::not_stored: out.put(wire::kMetaNs); break;
    case Stored::exists: out.put(wire::kMetaEx); break;
    default: out.put(wire::kMetaNf); break;
  }
  memcache::Tokens t(req.meta.text);
  for (std::string_view tok = t.next(); !tok.empty(); tok = t.next()) {
    if (tok[0] == 'O') meta_opaque(out, tok);
    if (tok[0] == 'k') meta_key_flag(out, req);
    if (tok[0] == 'c') {
      out.put(" c");
      out.put_number(cas);  // 0 when nothing was stored, as memcached
    }
  }
  out.put(kCrlf);
}

void key_command(Partition& part, const Request& req, std::string_view key, ReplyBuffer& out) {
  key_command(part, req, key, req.command == Command::mg ? hash_key(key) : 0, out);
}

void key_command(Partition& part, const Request& req, std::string_view key, std::uint64_t hash, ReplyBuffer& out) {
  Store& store = part.store;
  CommandStats& stats = part.stats;
  switch (req.command) {
    case Command::delete_: {
      ItemRef item = store.find(key);
      if (item) {
        store.unlink(item);
        ++stats.delete_hits;
      } else {
        ++stats.delete_misses;
      }
      if (!req.noreply) line(out, item ? wire::kDeleted : wire::kNotFound);
      return;
    }
    case Command::incr:
    case Command::decr: {
      const bool incr = req.command == Command::incr;
      DeltaResult d = add_delta(store, key, incr, req.delta, 0, 0);
      if (d.status == Delta::ok) {
        (incr ? stats.incr_hits : stats.decr_hits)++;
      } else if (d.status == Delta::not_found) {
        (incr ? stats.incr_misses : stats.decr_misses)++;
      }
      if (req.noreply) return;
      if (d.status == Delta::ok) {
        out.put_number(d.value);
        out.put(kCrlf);
      } else {
        line(out, d.status == Delta::not_found ? wire::kNotFound : wire::kNonNumericValue);
      }
      return;
    }
    case Command::touch: {
      ItemRef item = store.find(key);
      ++stats.cmd_touch;
      if (item) {
        store.set_exptime(item, store.to_exptime(req.exptime));
        store.bump(item);
        ++stats.touch_hits;
      } else {
        ++stats.touch_misses;
      }
      if (!req.noreply) line(out, item ? wire::kTouched : wire::kNotFound);
      return;
    }
    case Command::flush_all:
      store.flush_all(req.has_delay ? req.exptime : 0);
      ++stats.cmd_flush;
      if (!req.noreply) line(out, wire::kOk);
      return;
    case Command::mg:
      ++stats.meta_cmds;
      return meta_get(part, req, key, hash, out);
    case Command::md:
      ++stats.meta_cmds;
      return meta_delete(part, req, key, out);
    case Command::ma:
      ++stats.meta_cmds;
      return meta_arithmetic(part, req, key, out);
    case Command::me:
      ++stats.meta_cmds;
      return meta_debug(part, key, req, out);
    default:
      RINGLET_ASSERT(false && "not an item command");
  }
}

void drop_after_too_large(Partition& part, std::string_view key) {
  ItemRef old = part.store.find(key);
  if (old) part.store.unlink(old);
}

std::string_view meta_key(const Request& req, char* buf) noexcept {
  if (!req.meta.has('b')) return req.key;
  const std::size_t n = memcache::decode_base64(req.key, buf, memcache::kMaxKeyLength);
  return {buf, n};
}

unsigned shard_of(std::string_view key, unsigned shards) noexcept {
  if (shards <= 1) return 0;
  // A different mix of the hash than the index's slot (low bits) and tag (top bits).
  const std::uint64_t h = hash_key(key);
  const std::uint64_t m = (h ^ (h >> 29)) * 0xbf58476d1ce4e5b9ULL;
  return static_cast<unsigned>((m >> 32) % shards);
}

}  // namespace ringlet::cache
