// memcache_request_fuzz.cpp — libFuzzer target for the memcached request parser (server side).
//
// Input: the first byte picks where the first part of each command is cut; the rest is a stream of pipelined
// commands with their data blocks. Properties checked: no crash or UB; a command parsed in two parts (the bytes
// moved in between) gives the same result as the whole; the same when grown one byte at a time; consumed never
// exceeds the input; every view lies inside the input; parse_line_after with the command before as `previous`
// gives what parse_line gives (#10). Data blocks and swallowed blocks are skipped as a server would.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ringlet/proto/memcache/request_parser.hpp"
#include "fuzz_check.hpp"

using namespace ringlet::memcache;

namespace {

bool same(const ParseResult& a, const ParseResult& b) {
  return a.status == b.status && a.error == b.error && a.consumed == b.consumed && a.swallow == b.swallow &&
         a.reply == b.reply && a.noreply == b.noreply;
}

bool same(const Request& a, const Request& b) {
  return a.command == b.command && a.key == b.key && a.keys == b.keys && a.key_count == b.key_count &&
         a.client_flags == b.client_flags && a.exptime == b.exptime && a.data_length == b.data_length &&
         a.cas_unique == b.cas_unique && a.delta == b.delta && a.noreply == b.noreply && a.args == b.args &&
         a.meta.set == b.meta.set && a.meta.text == b.meta.text && a.meta.opaque == b.meta.opaque &&
         a.meta.mode == b.meta.mode;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t cut_at = data[0];
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  RequestLimits limits;
  limits.max_line = 512;  // small limits reach the long-line paths with short inputs
  limits.max_get_line = 1024;
  limits.max_data_length = 256;

  Request previous;  // the last command that parsed (its views stay inside the input)
  bool has_previous = false;
  for (int commands = 0; commands < 64 && !in.empty(); ++commands) {
    RequestParser whole(limits);
    ParseResult a = whole.parse(in);
    if (a.need_more()) return 0;
    check(a.consumed <= in.size());
    const Request& r = whole.request();
    if (a.complete()) {
      check(inside(r.key, in) && inside(r.keys, in) && inside(r.args, in) && inside(r.meta.text, in) &&
            inside(r.meta.opaque, in));
      check(r.key.size() <= kMaxKeyLength);
    } else {
      check(a.error != ParseError::none);
      check((a.error == ParseError::line_too_long) == a.reply.empty());
    }

    // Two parts, the bytes moved in between: same answer, views into the new bytes.
    RequestParser split(limits);
    std::string first(in.substr(0, std::min(cut_at, in.size())));
    ParseResult b = split.parse(first);
    std::string moved(in);
    if (b.need_more()) b = split.parse(moved);
    check(same(a, b));
    if (a.complete()) {
      // The split parser's views point into `first` or `moved`: compare contents.
      const Request& s = split.request();
      check(s.command == r.command && s.key == r.key && s.keys == r.keys && s.meta.text == r.meta.text);
    }

    // One byte at a time.
    RequestParser grown(limits);
    ParseResult g;
    for (std::size_t k = 0; k <= in.size(); ++k) {
      g = grown.parse(in.substr(0, k));
      if (!g.need_more()) break;
    }
    check(same(a, g));
    if (a.complete()) check(same(r, grown.request()));

    if (a.error == ParseError::line_too_long) return 0;  // the server closes

    // The line again, after the command before: the same verdict and request as alone.
    if (has_previous) {
      std::string_view line = in.substr(0, a.consumed - 1);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      Request after;
      const ParseResult c = parse_line_after(line, a.consumed, limits, previous, after);
      check(same(a, c));
      if (a.complete()) check(same(r, after) && after.key.data() == r.key.data());
    }
    if (a.complete()) {
      previous = r;
      has_previous = true;
    }
    std::uint64_t skip = a.consumed + (a.complete() ? r.data_block() : a.swallow);
    if (skip >= in.size()) return 0;
    in.remove_prefix(static_cast<std::size_t>(skip));
  }
  return 0;
}
