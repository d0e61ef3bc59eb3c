// beanstalk_request_fuzz.cpp — libFuzzer target for the beanstalkd request parser (proto/beanstalk).
//
// Input: the first byte picks the piece size (1..256) the rest arrives in; the rest is a stream of pipelined
// commands and put bodies, read as a server would (parse, then take_put_body after a put). Properties checked: no
// crash or UB; the transcript (every command with its arguments, every error, every body) is the same whether the
// stream arrives whole or in pieces; tube views lie inside the line; a complete line never exceeds the limit; no
// buffer is left outstanding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ringlet/proto/beanstalk/request_parser.hpp"
#include "fuzz_check.hpp"

using namespace ringlet;
using namespace ringlet::beanstalk;

namespace {

std::string transcript(std::string_view in, std::size_t piece) {
  RequestLimits limits;
  limits.max_job_size = 64;  // small, so that JOB_TOO_BIG and its swallowing are reached
  RequestParser p(limits);
  SliceQueue q;
  std::string out;
  bool in_body = false;
  std::uint32_t body_bytes = 0;
  std::size_t fed = 0;
  while (fed < in.size()) {
    const std::size_t n = std::min(piece, in.size() - fed);
    q.push(Slice::copy_of(in.substr(fed, n)));
    fed += n;
    for (int steps = 0; steps < 100000; ++steps) {
      if (in_body) {
        PutBody b = take_put_body(q, body_bytes);
        if (b.status == PutBody::Status::need_more) break;
        check(b.status != PutBody::Status::complete || b.body.size() == body_bytes);
        out += b.status == PutBody::Status::complete ? "B" + std::string(b.body.view()) + "\n" : "E\n";
        in_body = false;
        continue;
      }
      const std::size_t before = q.bytes();
      ParseResult r = p.parse(q);
      check(q.bytes() <= before);
      if (r.need_more()) break;
      if (r.error()) {
        out += "X" + std::to_string(static_cast<int>(r.code)) + "\n";
        continue;
      }
      check(r.consumed >= 2 && r.consumed <= kMaxCommandLine + 2);
      const Request& req = p.request();
      check(req.tube.empty() || valid_tube_name(req.tube));
      out += "C" + std::to_string(static_cast<int>(req.command)) + " " + std::to_string(req.id) + " " +
             std::to_string(req.priority) + " " + std::to_string(req.delay) + " " + std::to_string(req.ttr) + " " +
             std::to_string(req.bytes) + " " + std::to_string(req.timeout) + " " + std::to_string(req.bound) + " " +
             std::string(req.tube) + "\n";
      if (req.command == Command::put) {
        in_body = true;
        body_bytes = req.bytes;
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
  check(BufferPool::local().outstanding() == 0);
  return 0;
}
