// http_parser_fuzz.cpp — libFuzzer target for the request-head parser, the chunked decoder and percent-decoding.
//
// Input: byte 0 picks the limits (small or default, strict CRLF or not), bytes 1-2 seed the split points, the rest
// is the wire data. Invariants checked (a violation aborts):
// - parsing in random pieces, with the bytes moved to a fresh buffer before every call, gives exactly the
//   one-call result (status, HTTP status, head length, and every parsed field);
// - a complete head's views all lie inside the head; every proper prefix of a complete head is incomplete;
// - the chunked decoder, fed the bytes after the head whole and in random pieces, agrees on status, decoded data
//   and the end position, and never consumes more than it was given;
// - percent_decode never writes more than its input and agrees with itself in place.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "ringlet/proto/http/chunked.hpp"
#include "ringlet/proto/http/parser.hpp"
#include "ringlet/proto/http/uri.hpp"

namespace {

using namespace ringlet::http;

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      __builtin_printf("invariant failed: %s (line %d)\n", #cond, __LINE__); \
      std::abort();                                                          \
    }                                                                        \
  } while (0)

struct Rng {
  std::uint32_t x;
  std::uint32_t next() noexcept {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return x;
  }
};

bool inside(std::string_view v, const char* base, std::size_t len) {
  return v.empty() || (v.data() >= base && v.data() + v.size() <= base + len);
}

std::string describe(const Request& r) {
  std::string s;
  auto add = [&s](std::string_view v) {
    s += v;
    s += '|';
  };
  add(r.method_text());
  add(r.target());
  add(r.path());
  add(r.query());
  add(r.authority());
  add(r.host());
  s += std::to_string(static_cast<int>(r.method())) + std::to_string(static_cast<int>(r.target_form())) +
       std::to_string(r.version_minor()) + std::to_string(r.keep_alive()) + std::to_string(r.expect_continue()) +
       std::to_string(static_cast<int>(r.framing())) + "/" + std::to_string(r.content_length()) + "/" +
       std::to_string(r.header_count()) + std::to_string(r.has_query()) + "|";
  for (int k = 0; k < static_cast<int>(KnownHeader::count_); ++k) add(r.known(static_cast<KnownHeader>(k)));
  for (const HeaderField& f : r.headers()) {
    add(f.name);
    add(f.value);
  }
  return s;
}

void check_views(const Request& r) {
  const char* b = r.base();
  const std::size_t n = r.head_length();
  CHECK(inside(r.method_text(), b, n));
  CHECK(inside(r.target(), b, n));
  CHECK(r.path().empty() || r.path() == "/" || inside(r.path(), b, n));
  CHECK(inside(r.query(), b, n));
  CHECK(inside(r.authority(), b, n));
  std::size_t count = 0;
  for (const HeaderField& f : r.headers()) {
    CHECK(!f.name.empty() && inside(f.name, b, n) && inside(f.value, b, n));
    CHECK(r.find(f.name).has_value());
    ++count;
  }
  CHECK(count == r.header_count());
  for (int k = 0; k < static_cast<int>(KnownHeader::count_); ++k) {
    CHECK(inside(r.known(static_cast<KnownHeader>(k)), b, n));
  }
}

void fuzz_head(std::string_view data, const ParserLimits& limits, Rng& rng) {
  RequestParser whole(limits);
  const ParseResult r = whole.parse(data);
  std::string whole_desc;
  if (r.complete()) {
    CHECK(r.head_length <= data.size());
    check_views(whole.request());
    whole_desc = describe(whole.request());
    // Every proper prefix of the head is incomplete.
    const std::size_t step = r.head_length > 512 ? r.head_length / 64 + 1 : 1;
    for (std::size_t cut = 0; cut < r.head_length; cut += step) {
      RequestParser p(limits);
      std::string prefix(data.substr(0, cut));
      CHECK(p.parse(prefix).incomplete());
    }
    const std::string_view path = whole.request().path();
    std::vector<char> out(path.size() + 1);
    PercentDecodeResult d = percent_decode(path, std::span<char>(out.data(), path.size()));
    CHECK(!d.ok() || d.size <= path.size());
  } else if (r.error()) {
    CHECK(r.http_status >= 400 && r.http_status <= 505 && r.reason != nullptr);
  }

  // The same bytes in random pieces, each call on a fresh copy of the prefix.
  RequestParser split(limits);
  ParseResult s{};
  std::size_t have = 0;
  for (;;) {
    const std::size_t left = data.size() - have;
    have += left == 0 ? 0 : 1 + rng.next() % left;
    std::string copy(data.substr(0, have));
    s = split.parse(copy);
    if (!s.incomplete() || have == data.size()) {
      if (s.complete()) {
        check_views(split.request());
        CHECK(describe(split.request()) == whole_desc);
      }
      break;
    }
  }
  CHECK(s.status == r.status);
  CHECK(s.http_status == r.http_status);
  CHECK(s.head_length == r.head_length);
}

struct ChunkedOutcome {
  ChunkedStatus status;
  std::string data;
  std::size_t consumed;
  std::uint16_t http_status;
};

ChunkedOutcome decode(std::string_view in, const ChunkedLimits& limits, Rng* rng) {
  ChunkedDecoder dec(limits);
  ChunkedOutcome o{ChunkedStatus::need_more, {}, 0, 0};
  std::size_t end = 0;
  while (o.consumed < in.size()) {
    if (end <= o.consumed) end = rng ? o.consumed + 1 + rng->next() % (in.size() - o.consumed) : in.size();
    std::string piece(in.substr(o.consumed, end - o.consumed));
    ChunkedStep st = dec.decode(piece);
    CHECK(st.consumed <= piece.size());
    CHECK(st.data.empty() || (st.data.data() >= piece.data() && st.data.data() + st.data.size() <= piece.data() + st.consumed));
    o.consumed += st.consumed;
    o.data += st.data;
    o.status = st.status;
    if (st.status == ChunkedStatus::error) {
      o.http_status = st.http_status;
      break;
    }
    if (st.status == ChunkedStatus::done) break;
    if (st.status == ChunkedStatus::need_more) CHECK(st.consumed == piece.size());
  }
  CHECK(o.data.size() == dec.body_bytes() - dec.chunk_remaining());
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
  if (size < 3) return 0;
  const std::uint8_t mode = bytes[0];
  Rng rng{static_cast<std::uint32_t>(bytes[1] | (bytes[2] << 8)) * 2654435761u + 1};
  const std::string_view data(reinterpret_cast<const char*>(bytes + 3), size - 3);

  ParserLimits limits;
  if (mode & 1) {
    limits.max_request_line = 64;
    limits.max_header_bytes = 128;
    limits.max_headers = 4;
    limits.max_leading_empty_lines = 2;
  }
  limits.strict_crlf = (mode & 2) != 0;
  if (mode & 8) limits.max_header_line = 16;
  fuzz_head(data, limits, rng);

  // Chunked body: after a complete head if there is one, else the whole input.
  RequestParser p(limits);
  const ParseResult r = p.parse(data);
  const std::string_view body = r.complete() ? data.substr(r.head_length) : data;
  ChunkedLimits cl;
  if (mode & 4) {
    cl.max_body_bytes = 64;
    cl.max_extension_bytes = 8;
    cl.max_trailer_bytes = 32;
  }
  const ChunkedOutcome a = decode(body, cl, nullptr);
  const ChunkedOutcome b = decode(body, cl, &rng);
  CHECK(a.status == b.status);
  CHECK(a.data == b.data);
  CHECK(a.consumed == b.consumed);
  CHECK(a.http_status == b.http_status);

  // Percent-decoding in place agrees with decoding into another buffer.
  std::string copy(data);
  std::vector<char> out(data.size() + 1);
  PercentDecodeResult d1 = percent_decode(data, std::span<char>(out.data(), data.size()));
  PercentDecodeResult d2 = percent_decode(copy, std::span<char>(copy.data(), copy.size()));
  CHECK(d1.status == d2.status && d1.encoded_slash == d2.encoded_slash);
  if (d1.ok()) CHECK(d1.size == d2.size && std::memcmp(out.data(), copy.data(), d1.size) == 0);
  return 0;
}
