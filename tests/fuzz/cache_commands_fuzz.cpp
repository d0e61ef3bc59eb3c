// cache_commands_fuzz.cpp — libFuzzer target for the cache's item store and commands: arbitrary pipelined input is
// parsed (proto/memcache) and run against a small store (two segments, so eviction runs constantly), as the server
// runs it. The first byte picks the item limit; a '~' at the start of a command advances the manual clock by a
// second and runs a background expiry pass.
// Properties checked: no crash, UB or leak (ASan); the store never counts more bytes than its budget; an item just
// stored is found with its value (until a flush_all: memcached's delayed flush also takes items stored in the second
// it takes effect); every reply ends with "\r\n".
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "ringlet/cache/commands.hpp"
#include "fuzz_check.hpp"

using namespace ringlet;
using namespace ringlet::cache;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t max_item = data[0] % 2 == 0 ? 1024 * 1024 : 4096;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  ManualClock clock(1'000'000'000);
  StoreOptions o;
  o.max_item_bytes = max_item;
  o.memory_bytes = Store::min_memory_bytes(max_item);
  o.unix_now = 1'800'000'000;
  Store store(o, clock);
  CommandStats stats;
  Partition part{store, stats};
  bool flushed = false;
  memcache::RequestLimits limits;
  limits.max_data_length = static_cast<std::uint32_t>(max_item);
  while (!input.empty()) {
    if (input[0] == '~') {
      clock.advance(1'000'000'000);
      store.expire_some(100);
      input.remove_prefix(1);
      continue;
    }
    memcache::RequestParser parser(limits);
    memcache::ParseResult r = parser.parse(input);
    if (r.need_more() || (r.failed() && r.error == memcache::ParseError::line_too_long)) break;
    if (r.failed()) {
      input.remove_prefix(std::min<std::size_t>(input.size(), r.consumed + r.swallow));
      continue;
    }
    const memcache::Request& req = parser.request();
    std::string_view rest = input.substr(r.consumed);
    std::string out;
    ReplyBuffer reply(out);
    char buf[memcache::kMaxKeyLength];
    switch (req.command) {
      case memcache::Command::get:
      case memcache::Command::gets:
      case memcache::Command::gat:
      case memcache::Command::gats: {
        memcache::Tokens t(req.keys);
        for (std::string_view k = t.next(); !k.empty(); k = t.next()) get_key(part, req, k, reply);
        break;
      }
      case memcache::Command::set:
      case memcache::Command::add:
      case memcache::Command::replace:
      case memcache::Command::append:
      case memcache::Command::prepend:
      case memcache::Command::cas:
      case memcache::Command::ms: {
        if (rest.size() < req.data_block()) return 0;  // an incomplete block: the server would wait
        std::string_view block = rest.substr(0, req.data_block());
        DataBlock source{nullptr, block};
        store_command(part, req, source, reply);
        check(source.text.empty());
        // Only an item without an expiry must be there at once: memcached stores an item whose absolute exptime
        // lies in the past (or is negative) and answers STORED, but it is expired from the start.
        if (req.command == memcache::Command::set && out == "STORED\r\n" && !flushed && req.exptime == 0) {
          ItemRef item = store.find(req.key);
          check(static_cast<bool>(item) && item.value() == block.substr(0, req.data_length));
        }
        rest.remove_prefix(req.data_block());
        break;
      }
      case memcache::Command::mn:
      case memcache::Command::version:
      case memcache::Command::verbosity:
      case memcache::Command::quit:
      case memcache::Command::stats:
        break;
      default:
        flushed = flushed || req.command == memcache::Command::flush_all;
        key_command(part, req, meta_key(req, buf), reply);
    }
    check(out.empty() || out.ends_with("\r\n"));
    check(store.stats().allocated_bytes <= o.memory_bytes);
    input = rest;
  }
  return 0;
}
