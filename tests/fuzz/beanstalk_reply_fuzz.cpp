// beanstalk_reply_fuzz.cpp — libFuzzer target for the client side's reply parser (proto/beanstalk/client.hpp).
//
// Input: the first byte picks the piece size (1..256) the rest arrives in; the rest is a stream of replies, read
// as a client would (parse a line, then take_reply_body after RESERVED, FOUND or OK). Properties checked: no crash
// or UB; the transcript is the same whether the stream arrives whole or in pieces; a well-formed reply's fields
// fit its shape and USING's tube views the line; no buffer is left outstanding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ringlet/proto/beanstalk/client.hpp"
#include "fuzz_check.hpp"

using namespace ringlet;
using namespace ringlet::beanstalk;

namespace {

std::string transcript(std::string_view in, std::size_t piece) {
  ReplyParser p;
  SliceQueue q;
  std::string out;
  bool in_body = false;
  std::uint64_t body_bytes = 0;
  std::size_t fed = 0;
  while (fed < in.size()) {
    const std::size_t n = std::min(piece, in.size() - fed);
    q.push(Slice::copy_of(in.substr(fed, n)));
    fed += n;
    for (int steps = 0; steps < 100000; ++steps) {
      if (in_body) {
        ReplyBody b = take_reply_body(q, body_bytes);
        if (b.status == ReplyBody::Status::need_more) break;
        out += b.status == ReplyBody::Status::complete ? "B" + std::string(b.body.view()) + "\n" : "E\n";
        in_body = false;
        continue;
      }
      ReplyParseStatus s = p.parse(q);
      if (s == ReplyParseStatus::need_more) break;
      if (s == ReplyParseStatus::too_long) return out + "L\n";
      const ReplyLine& r = p.reply();
      check(r.status != ReplyStatus::ok || reply_spec(r.kind).args != ReplyArgs::tube || !r.tube.empty());
      out += std::to_string(static_cast<int>(r.status)) + " " + std::to_string(static_cast<int>(r.kind)) + " " +
             std::to_string(r.id) + " " + std::to_string(r.count) + " " + std::to_string(r.bytes) + " " +
             std::string(r.tube) + "\n";
      if (r.has_body()) {
        // Bodies larger than the input can never complete; skip the wait (need_more at the end is the answer).
        in_body = true;
        body_bytes = r.bytes;
      }
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0 || size > 64 * 1024) return 0;
  const std::size_t piece = 1 + data[0];
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  {
    const std::string whole = transcript(in, in.size() + 1);
    const std::string pieces = transcript(in, piece);
    check(whole == pieces);
  }
  // The line grammar alone, on the whole input as one line.
  ReplyLine line = parse_reply_line(in);
  check(inside(line.tube, in));
  check(BufferPool::local().outstanding() == 0);
  return 0;
}
