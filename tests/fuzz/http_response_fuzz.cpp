// http_response_fuzz.cpp — libFuzzer target for the client-side HTTP response parser and body reader.
//
// Input: the first byte picks how the bytes arrive (split point and piece size) and whether the request was HEAD;
// the rest is a stream of pipelined responses. Properties checked: no crash or UB; a head parsed in pieces gives
// the same result as the whole; consumed counts never exceed the input; views stay inside the input.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ringlet/proto/http/response_parser.hpp"
#include "fuzz_check.hpp"

using namespace ringlet::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool head_request = (data[0] & 1) != 0;
  const std::size_t piece = 1 + (data[0] >> 1);  // body fed in pieces of 1..128 bytes
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);

  for (int responses = 0; responses < 64 && !in.empty(); ++responses) {
    ResponseLimits limits;
    limits.max_head_bytes = 4096;
    ResponseHeadParser whole(limits);
    ResponseHead head_whole;
    ResponseField fields[8];
    HeadResult a = whole.parse(in, head_whole, head_request, fields);

    // The same bytes arriving in two parts must give the same answer.
    ResponseHeadParser split(limits);
    ResponseHead head_split;
    std::size_t cut = in.size() / 2;
    HeadResult b = split.parse(in.substr(0, cut), head_split, head_request);
    if (b.status == HeadResult::Status::need_more) b = split.parse(in, head_split, head_request);
    check(a.status == b.status);
    if (a.status != HeadResult::Status::complete) return 0;
    check(a.consumed == b.consumed && a.consumed <= in.size());
    check(head_whole.status == head_split.status && head_whole.framing == head_split.framing);
    check(head_whole.content_length == head_split.content_length);
    check(inside(head_whole.reason, in));
    for (std::size_t i = 0; i < std::min<std::size_t>(head_whole.field_count, 8); ++i) {
      check(inside(fields[i].name, in) && inside(fields[i].value, in));
    }
    in.remove_prefix(a.consumed);

    ResponseBodyReader body;
    body.start(head_whole);
    std::uint64_t seen = 0;
    while (!body.done()) {
      std::string_view chunk = in.substr(0, std::min(piece, in.size()));
      BodyStep s = body.feed(chunk, chunk.size() == in.size());
      check(s.consumed <= chunk.size());
      check(inside(s.data, chunk));
      seen += s.data.size();
      in.remove_prefix(s.consumed);
      if (s.status == BodyStep::Status::error) return 0;
      if (s.consumed == 0 && !body.done()) return 0;  // need_more at the end of the input
    }
    check(seen == body.body_bytes());
  }
  return 0;
}
