// request_parser.hpp — incremental, zero-copy parser of beanstalkd commands (protocol 1.12/1.13), the server side.
// Pure, I/O-free, core-local (one parser per connection; it holds a Slice of the current line).
//
//   RequestParser p(limits);
//   ParseResult r = p.parse(in);             // in: the connection's SliceQueue of received bytes
//   need_more -> receive more, call parse() again (it resumes: no byte is searched twice)
//   complete  -> p.request() is the command; r.consumed bytes (the line and its CRLF) left the queue.
//                For put: the body follows. The caller takes it with take_put_body(in, request.bytes) — the
//                request's bytes + 2, a fixed-size frame — before calling parse() again.
//   error     -> reply r.code's word (BAD_FORMAT, UNKNOWN_COMMAND, JOB_TOO_BIG) and go on: the line is consumed,
//                and the parser itself swallows what must not be read as commands (below). The connection stays.
//
// Framing. A command is one line ending in "\r\n", found by SliceQueue::take_until: a line inside one receive
// buffer is a view of it (no copy); one that straddles two buffers is gathered (at most 224 bytes). request()
// holds views (tube names) into that line, valid until the next parse() call. Pipelined input and input arriving a
// byte at a time give the same results in the same order (tests/unit/proto/beanstalk/request_parser_test.cpp).
//
// The put body. The parser reports a put as soon as its line is complete, with the byte count, and never touches
// the body: take_put_body(in, bytes) returns need_more until bytes + 2 are queued, then the body as one Slice (a
// view of the receive buffer when it lies in one, else gathered once, counted by bytes_copied()) — or
// expected_crlf when the 2 bytes after the body are not "\r\n" (all bytes + 2 are consumed either way, as
// beanstalkd does; the job is dropped, the connection goes on).
//
// Decisions (beanstalkd 1.13's prot.c is the reference, and the cases below were also sent to Debian's beanstalkd
// 1.12; where it is quirky we say what we do):
// - Line end: "\r\n" only. A bare "\n" is an ordinary byte of the line (as in beanstalkd). A "\r" or a NUL inside
//   the line is BAD_FORMAT (beanstalkd answers BAD_FORMAT to NUL; a stray "\r" makes it stop seeing line ends
//   until 224 bytes have arrived — we do not copy that stall).
// - Line length: at most 222 bytes before the CRLF (beanstalkd's LINE_BUF_SIZE of 224 with the CRLF: room for
//   "pause-tube <200-byte tube> <10 digits>"). Longer: BAD_FORMAT, decided as soon as 224 bytes are queued without
//   a CRLF; then everything up to and including the next "\r\n" is swallowed. beanstalkd replies only once that CRLF
//   arrives (we reply at once: the same bytes, earlier); it can also miss a CRLF that straddles its 224-byte
//   discard chunks and then eat the next command — we never do.
// - Names: matched as beanstalkd matches them (command.hpp): "delete" without a space is UNKNOWN_COMMAND,
//   "reservex" is reserve with trailing bytes (BAD_FORMAT), "quit<anything>" quits. The empty line is
//   UNKNOWN_COMMAND.
// - Numbers (ids: u64; priority, delay, ttr, bytes, timeout, bound: u32): any number of spaces (only ' '), then one
//   or more ASCII digits, leading zeros allowed; no sign ('+' and '-' are BAD_FORMAT), no tab. A value that does
//   not fit the type is BAD_FORMAT (beanstalkd: strtoumax overflow or > UINT32_MAX). The next argument or the end
//   of the line must follow the digits: "put 1x 0 60 5" is BAD_FORMAT, and after the last argument nothing may
//   follow, not even a space ("delete 5 " is BAD_FORMAT) — except where beanstalkd ignores the rest:
//   reserve-with-timeout ("reserve-with-timeout 5x" waits 5 s) and kick ("kick 3 jobs" kicks 3). kick differs from
//   beanstalkd (strtoul) in rejecting a sign, a tab and values over 2^32 - 1 (beanstalkd wraps "kick -1" to
//   4294967295 and "kick 4294967296" to 0).
// - reserve-with-timeout: the timeout must be <= 2^31 - 1, else BAD_FORMAT (beanstalkd 1.13 does so; 1.12 accepted
//   it and overflowed its int).
// - put: ttr is reported as sent (0 too; the server raises it to 1 s as beanstalkd does). bytes over
//   RequestLimits::max_job_size is JOB_TOO_BIG, checked before trailing bytes (so "put 0 0 1 99999999 x" is
//   JOB_TOO_BIG, like beanstalkd), and the parser then swallows the next bytes + 2 bytes — incrementally, as they
//   arrive, without buffering them — before it reads the next command.
// - Tube names: 1..200 bytes of A-Z a-z 0-9 and "-+/;.$_()", not starting with '-'. use, watch, ignore and
//   stats-tube take the whole rest of the line after exactly one space ("use  t" and "use t " are BAD_FORMAT).
//   pause-tube skips any spaces (even none: "pause-tubefoo 5" pauses foo, as in beanstalkd) before the name.
// - What the server does with the values (ttr 0 -> 1, pause 0 -> 1 s, NOT_FOUND...) is not the parser's business.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ringlet/buf/slice.hpp"
#include "ringlet/buf/slice_queue.hpp"
#include "ringlet/proto/beanstalk/command.hpp"

namespace ringlet::beanstalk {

inline constexpr std::size_t kMaxCommandLine = 222;  // bytes before the CRLF (beanstalkd: LINE_BUF_SIZE - 2)
inline constexpr std::size_t kMaxTubeName = 200;
inline constexpr std::uint32_t kDefaultMaxJobSize = 65535;  // beanstalkd's -z default

struct RequestLimits {
  std::uint32_t max_job_size = kDefaultMaxJobSize;  // put bodies over this are JOB_TOO_BIG
};

// A parsed command. Only the fields of its command's arguments are set (command.hpp's table); the rest are 0.
struct Request {
  Command command = Command::quit;
  std::uint64_t id = 0;        // reserve-job, delete, release, bury, touch, peek, kick-job, stats-job
  std::uint32_t priority = 0;  // put, release, bury (0 is the most urgent)
  std::uint32_t delay = 0;     // put, release, pause-tube: seconds
  std::uint32_t ttr = 0;       // put: seconds, as sent
  std::uint32_t bytes = 0;     // put: body length without its CRLF
  std::uint32_t timeout = 0;   // reserve-with-timeout: seconds
  std::uint32_t bound = 0;     // kick: most jobs to kick
  std::string_view tube;       // use, watch, ignore, stats-tube, pause-tube: a view into the line
};

enum class ParseError : std::uint8_t { bad_format, unknown_command, job_too_big };

// The whole grammar of one command line (without its CRLF): fills `out` and returns true, or returns false with
// the error. Pure; views in `out` point into `line`.
bool parse_command_line(std::string_view line, const RequestLimits& limits, Request& out, ParseError& error) noexcept;

// Whether `name` is a tube name beanstalkd accepts.
bool valid_tube_name(std::string_view name) noexcept;

enum class ParseStatus : std::uint8_t { need_more, complete, error };

struct ParseResult {
  ParseStatus status = ParseStatus::need_more;
  ParseError code = ParseError::bad_format;  // with error
  std::uint32_t consumed = 0;  // complete or error: bytes of the line and its CRLF taken from the queue (an
                               // over-long line's bytes are swallowed later and not counted here)

  bool complete() const noexcept { return status == ParseStatus::complete; }
  bool need_more() const noexcept { return status == ParseStatus::need_more; }
  bool error() const noexcept { return status == ParseStatus::error; }
};

class RequestParser {
 public:
  RequestParser() = default;
  explicit RequestParser(const RequestLimits& limits) noexcept : limits_(limits) {}

  // Takes the next command from `in` (see the top of this file). need_more consumes only bytes being swallowed.
  ParseResult parse(SliceQueue& in);

  // The last complete command. Its views stay valid until the next parse(), drop_line() or reset().
  const Request& request() const noexcept { return req_; }
  // Lets go of the current line (its receive buffer) once request()'s views are no longer needed: a connection
  // that waits long after a command (a reserve) should not pin a receive buffer meanwhile.
  void drop_line() noexcept {
    line_.reset();
    req_.tube = {};
  }
  // True while the parser still swallows a rejected put's body or the rest of an over-long line: the peer
  // closing now is not "between commands".
  bool swallowing() const noexcept { return phase_ != Phase::line; }
  const RequestLimits& limits() const noexcept { return limits_; }

  void reset() noexcept { *this = RequestParser(limits_); }

 private:
  enum class Phase : std::uint8_t { line, skip_bytes, skip_line };
  bool skip(SliceQueue& in) noexcept;  // true once nothing is left to swallow

  RequestLimits limits_{};
  Request req_{};
  Slice line_;                   // the current command line: request() views point into it
  std::uint64_t skip_bytes_ = 0;  // skip_bytes: still to swallow
  bool skip_saw_cr_ = false;      // skip_line: the last byte swallowed was '\r'
  Phase phase_ = Phase::line;
};

// The put body that follows a complete put (see the top of this file).
struct PutBody {
  enum class Status : std::uint8_t { need_more, complete, expected_crlf } status;
  Slice body;  // complete: the job's bytes, without the CRLF
};
PutBody take_put_body(SliceQueue& in, std::uint32_t bytes);

}  // namespace ringlet::beanstalk
