// client.hpp — the client side of beanstalkd's protocol: spelling commands, and parsing reply lines into views.
// Pure, I/O-free. CommandLine and parse_reply_line are stateless; a ReplyParser is core-local (one per
// connection; it holds a Slice of the current line). `ringlet bench beanstalk` (loadgen/beanstalk_codec.*) is
// built on it and keeps only the checking of replies against what it expects.
//
// Commands. CommandLine formats one command line, CRLF included, into its own 224 bytes (no allocation): the
// caller copies it where it wants (OutputChain::append_copy, or a stream's queue_copy) — a line is short, copying
// it into the chain's pooled tail is how small writes coalesce into one iovec. compose_put() appends a whole put to
// an OutputChain with the body as a Slice (not copied). Arguments are not validated: a tube name must be a valid
// one of at most 200 bytes (the line asserts it fits).
//
// Replies. A reply is one line, "<WORD>[ <args>]\r\n" (words: reply.hpp), and for RESERVED, FOUND and OK a body
// of <bytes> + "\r\n" after it. ReplyParser::parse takes the line from a SliceQueue (a view of the receive buffer,
// gathered only when it straddles two) and reports it as soon as it is complete, like the server side reports a
// put: the caller takes the body itself (with take_reply_body, or piece by piece as it arrives, as the load
// generator does to verify a large body without gathering it).
//
// Decisions (a client is lenient where it can be, strict where a wrong number would mislead it):
// - Reply lines may be up to kMaxReplyLine bytes before the CRLF (beanstalkd's longest is "USING <200 bytes>").
// - The word is the bytes before the first space (or the whole line). An unknown word is ReplyStatus::unknown.
// - Arguments are decimal, exactly one space before each, no sign, nothing after the last ("WATCHING 2 " is
//   malformed); numbers are u64 (beanstalkd's counts and sizes are narrower). A known word with arguments that do
//   not fit its shape (reply.hpp's ReplyArgs) is ReplyStatus::malformed, with the kind set, so a caller can still
//   tell "NOT_FOUND junk" is a NOT_FOUND.
// - USING's tube is the rest of the line, not empty, not checked against the tube alphabet.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ringlet/buf/output_chain.hpp"
#include "ringlet/buf/slice.hpp"
#include "ringlet/buf/slice_queue.hpp"
#include "ringlet/proto/beanstalk/command.hpp"
#include "ringlet/proto/beanstalk/reply.hpp"

namespace ringlet::beanstalk {

inline constexpr std::size_t kMaxReplyLine = 256;

// One command line with its CRLF, formatted in place.
class CommandLine {
 public:
  // "<name>\r\n": reserve, peek-ready, peek-delayed, peek-buried, stats, list-tubes, list-tube-used,
  // list-tubes-watched, quit.
  static CommandLine bare(Command c) noexcept;
  // "<name> <tube>\r\n": use, watch, ignore, stats-tube.
  static CommandLine with_tube(Command c, std::string_view tube) noexcept;
  // "<name> <n>\r\n": reserve-with-timeout, reserve-job, delete, touch, peek, kick, kick-job, stats-job.
  static CommandLine with_number(Command c, std::uint64_t n) noexcept;
  static CommandLine put(std::uint32_t priority, std::uint32_t delay_s, std::uint32_t ttr_s, std::uint32_t bytes) noexcept;
  static CommandLine release(std::uint64_t id, std::uint32_t priority, std::uint32_t delay_s) noexcept;
  static CommandLine bury(std::uint64_t id, std::uint32_t priority) noexcept;
  static CommandLine pause_tube(std::string_view tube, std::uint32_t delay_s) noexcept;

  std::string_view view() const noexcept { return {buf_, len_}; }

 private:
  explicit CommandLine(Command c) noexcept;
  CommandLine& add(std::string_view text) noexcept;
  CommandLine& number(std::uint64_t v) noexcept;  // " <v>"
  CommandLine& end() noexcept;                     // "\r\n"

  char buf_[224];
  std::size_t len_ = 0;
};

inline void compose(OutputChain& out, const CommandLine& line) { out.append_copy(line.view()); }
// "put ...\r\n<body>\r\n" with `body` appended uncopied.
void compose_put(OutputChain& out, std::uint32_t priority, std::uint32_t delay_s, std::uint32_t ttr_s, Slice body);

enum class ReplyStatus : std::uint8_t { ok, malformed, unknown };

// One reply line. Fields not in the word's shape stay 0 / empty; `tube` views the line.
struct ReplyLine {
  ReplyStatus status = ReplyStatus::unknown;
  ReplyKind kind = ReplyKind::bad_format;  // meaningful unless status is unknown
  std::uint64_t id = 0;                    // INSERTED, BURIED <id>, RESERVED, FOUND
  std::uint64_t count = 0;                 // WATCHING, KICKED <count>
  std::uint64_t bytes = 0;                 // RESERVED, FOUND, OK: the body that follows (without its CRLF)
  std::string_view tube;                   // USING
  bool has_id = false;                     // BURIED and KICKED come with and without their number
  bool has_count = false;

  bool ok() const noexcept { return status == ReplyStatus::ok; }
  bool is(ReplyKind k) const noexcept { return status != ReplyStatus::unknown && kind == k; }
  // A well-formed RESERVED, FOUND or OK: bytes + 2 more bytes follow the line.
  bool has_body() const noexcept {
    return ok() && (reply_spec(kind).args == ReplyArgs::id_bytes || reply_spec(kind).args == ReplyArgs::bytes);
  }
};

// The whole grammar of one reply line (without its CRLF).
ReplyLine parse_reply_line(std::string_view line) noexcept;

enum class ReplyParseStatus : std::uint8_t { need_more, complete, too_long };

class ReplyParser {
 public:
  // Takes the next reply line from `in`. complete: reply() is set (its views valid until the next parse()); the
  // line and its CRLF left the queue, a body (reply().has_body()) has not. too_long: no CRLF within
  // kMaxReplyLine bytes; nothing consumed (the connection is beyond repair).
  ReplyParseStatus parse(SliceQueue& in);
  const ReplyLine& reply() const noexcept { return reply_; }
  // Lets go of the current line (its receive buffer) once reply()'s views are no longer needed.
  void drop_line() noexcept {
    line_.reset();
    reply_.tube = {};
  }

 private:
  Slice line_;
  ReplyLine reply_{};
};

// The body after a RESERVED, FOUND or OK line: need_more until bytes + 2 are queued, then the body as one Slice
// (gathered only if it straddles receive buffers). expected_crlf: the two bytes after it were not "\r\n".
struct ReplyBody {
  enum class Status : std::uint8_t { need_more, complete, expected_crlf } status;
  Slice body;
};
ReplyBody take_reply_body(SliceQueue& in, std::uint64_t bytes);

}  // namespace ringlet::beanstalk
