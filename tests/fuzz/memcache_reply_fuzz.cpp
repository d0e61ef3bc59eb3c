// memcache_reply_fuzz.cpp — libFuzzer target for the client side: the reply-line finder and parse_reply_line.
//
// Input: the first byte picks the split point and the line limit; the rest is a stream of replies with their data
// blocks. Properties checked: no crash or UB; a line found in two parts equals the whole; consumed never exceeds
// the input; views lie inside the line; a VALUE/VA line's data block is skipped as a client would.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ringlet/proto/memcache/client.hpp"
#include "fuzz_check.hpp"

using namespace ringlet::memcache;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t cut_at = data[0] & 0x3f;
  const std::uint32_t max_line = (data[0] & 0x40) != 0 ? 16 : 512;
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);

  for (int replies = 0; replies < 64 && !in.empty(); ++replies) {
    ReplyParser whole(max_line);
    ReplyResult a = whole.parse(in);
    ReplyParser split(max_line);
    std::string first(in.substr(0, std::min(cut_at, in.size())));
    ReplyResult b = split.parse(first);
    std::string moved(in);
    if (b.status == ReplyResult::Status::need_more) b = split.parse(moved);
    check(a.status == b.status && a.consumed == b.consumed);
    if (a.status != ReplyResult::Status::complete) return 0;
    check(a.consumed >= 2 && a.consumed <= in.size() && a.consumed - 2 <= max_line);
    std::string_view line = in.substr(0, a.consumed - 2);
    const ReplyLine& l = whole.line();
    check(l.kind == split.line().kind && l.length == split.line().length);
    check(inside(l.key, line) && inside(l.text, line) && inside(l.name, line) && inside(l.meta_flags, line));
    in.remove_prefix(a.consumed);
    if (l.has_data_block()) {
      if (l.length + 2 >= in.size()) return 0;
      in.remove_prefix(static_cast<std::size_t>(l.length + 2));
    }
  }
  return 0;
}
