// http_parser_bench.cpp — how fast the request-head parser and the chunked decoder run on one core.
//
//   cmake --build <dir> --target http_parser_bench && <dir>/bench/http_parser/http_parser_bench
//
// http_parse_get_300b: a typical ~300-byte browser GET head, parsed in one call (items/s = requests/s).
// http_parse_get_300b_split: the same head arriving in two receives (parse, then resume with the rest).
// http_parse_get_300b_lookups: one call plus the lookups a static server does (Host, If-None-Match, Range, ...).
// chunked_decode_64k: a 64 KiB body in 4 KiB chunks (bytes/s).
#include <benchmark/benchmark.h>

#include <string>

#include "ringlet/proto/http/chunked.hpp"
#include "ringlet/proto/http/parser.hpp"

namespace {

using namespace ringlet::http;

const std::string kGet =
    "GET /static/images/logo-large.png HTTP/1.1\r\n"
    "Host: www.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0\r\n"
    "Accept: image/avif,image/webp,*/*\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Referer: https://www.example.com/\r\n"
    "Connection: keep-alive\r\n"
    "\r\n";

void http_parse_get_300b(benchmark::State& state) {
  RequestParser p;
  for (auto _ : state) {
    p.reset();
    ParseResult r = p.parse(kGet);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * kGet.size()));
  state.counters["head_bytes"] = static_cast<double>(kGet.size());
}
BENCHMARK(http_parse_get_300b);

void http_parse_get_300b_split(benchmark::State& state) {
  RequestParser p;
  const std::string_view whole(kGet);
  for (auto _ : state) {
    p.reset();
    ParseResult a = p.parse(whole.substr(0, whole.size() / 2));
    ParseResult b = p.parse(whole);
    benchmark::DoNotOptimize(a);
    benchmark::DoNotOptimize(b);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(http_parse_get_300b_split);

void http_parse_get_300b_lookups(benchmark::State& state) {
  RequestParser p;
  for (auto _ : state) {
    p.reset();
    ParseResult r = p.parse(kGet);
    const Request& req = p.request();
    benchmark::DoNotOptimize(r);
    benchmark::DoNotOptimize(req.host());
    benchmark::DoNotOptimize(req.path());
    benchmark::DoNotOptimize(req.if_none_match());
    benchmark::DoNotOptimize(req.if_modified_since());
    benchmark::DoNotOptimize(req.range());
    benchmark::DoNotOptimize(req.keep_alive());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(http_parse_get_300b_lookups);

void chunked_decode_64k(benchmark::State& state) {
  std::string body;
  for (int i = 0; i < 16; ++i) body += "1000\r\n" + std::string(4096, 'x') + "\r\n";
  body += "0\r\n\r\n";
  for (auto _ : state) {
    ChunkedDecoder dec;
    std::string_view in(body);
    std::size_t data = 0;
    for (;;) {
      ChunkedStep s = dec.decode(in);
      data += s.data.size();
      in.remove_prefix(s.consumed);
      if (s.status == ChunkedStatus::done || s.status == ChunkedStatus::error) break;
    }
    benchmark::DoNotOptimize(data);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}
BENCHMARK(chunked_decode_64k);

}  // namespace

BENCHMARK_MAIN();
