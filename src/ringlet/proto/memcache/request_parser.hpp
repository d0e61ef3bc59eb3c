// request_parser.hpp — incremental, zero-copy parser of memcached requests (text and meta), the server side.
// Pure, I/O-free, core-local (one parser per connection).
//
//   RequestParser p(limits);
//   ParseResult r = p.parse(bytes);   // bytes: everything received of this command so far, from its first byte
//   need_more -> receive more, call parse() again with the longer range (same first byte; it may have moved)
//   complete  -> p.request() is ready; r.consumed bytes are the command line (its "\n" included). A storage
//                command (set add replace append prepend cas ms) is followed by a data block of
//                request().data_length + 2 bytes that the parser does NOT read: see "Data blocks" below.
//   error     -> r.reply is the line to answer (a wire:: constant; "ERROR", "CLIENT_ERROR ...", "SERVER_ERROR
//                object too large for cache"); drop r.consumed bytes, then r.swallow more (a rejected command's
//                data block), then go on with the next command. r.error == line_too_long: close the connection.
//   p.reset() before the next command.
//
// Data blocks. A value can be large and arrive in many receive buffers, so the parser reports the command as soon
// as its line is complete and leaves the block to the caller, who reads it straight from its SliceQueue:
// request().data_block() bytes, i.e. data_length bytes of value then "\r\n". Copy the value piece by piece from
// SliceQueue::front() into the item (or take_exactly(n) when a Slice of it is wanted), then check the two last
// bytes with data_block_ends_well(): if not "\r\n" answer wire::kBadDataChunk (memcached stores nothing; the
// block is consumed all the same). An error with swallow > 0 means the same n + 2 bytes belong to a command that
// was refused (value too large, bad meta flags): discard them as they arrive (skip_bytes()) without parsing them
// as commands. So a server never gathers a value into one buffer just to parse it.
//
// Incremental: the parser remembers how far it has searched for "\n", so calling parse() again after a few more
// bytes costs only those bytes. It keeps offsets, not pointers; the views in request() point into the data given to
// the last parse() call.
//
// Rules (memcached 1.6.18, doc/protocol.txt; tested in tests/unit/proto/memcache/request_parser_test.cpp):
// - Line end "\n", with one "\r" before it stripped (memcached accepts a bare "\n"). Tokens are separated by one or
//   more spaces; leading spaces are skipped. Command names are case-sensitive.
// - Line length: at most max_line bytes before the "\n" (memcached: 2048), get/gets lines at most max_get_line
//   (memcached: unbounded). Decided as soon as that many bytes arrived without "\n", whatever the split, so a
//   split input and a whole one agree. Beyond: error line_too_long, no reply: memcached closes the connection.
// - Unknown command, empty line, or a token count outside the command's arity (command.hpp) -> "ERROR".
// - Keys: 1..250 bytes, no control characters (bytes <= 0x20, 0x7f) -> else kBadCommandLineFormat. memcached
//   itself only checks the length; control characters in a key are refused here on purpose.
// - Numbers: decimal digits, an optional '+' (strtol's), '-' only where signed; overflow is malformed. flags are
//   32-bit unsigned (memcached silently truncates larger values; we refuse them), exptime signed 64-bit (negative =
//   already expired, > 30 days = an absolute unix time: the server interprets), bytes 0..INT32_MAX-2, cas unique
//   and incr/decr values 64-bit unsigned.
// - Storage: a bad number or key -> kBadCommandLineFormat, nothing swallowed (memcached 1.6.18 then reads the data
//   block as a command, and so will the server; the client is broken anyway). bytes > max_data_length ->
//   kTooLarge (a SERVER_ERROR) and the block is swallowed. A 6th token (7th for cas) other than "noreply" is
//   ignored, as in memcached.
// - delete <key> [0] [noreply]: the legacy "0" is accepted; anything else -> kDeleteUsage.
// - incr/decr value not a u64 -> kInvalidDeltaArgument; touch/gat/gats/flush_all exptime not a number ->
//   kInvalidExptime; verbosity level not a u32 -> kBadCommandLineFormat.
// - noreply: the last token equal to "noreply" (storage, delete, incr, decr, touch, flush_all, verbosity) sets
//   request().noreply and ParseResult::noreply, also on a CLIENT_ERROR (memcached then sends nothing).
// - Meta: "<cm> <key> <flag>*" ("ms <key> <datalen> <flag>*"). A flag is a letter the command accepts
//   (command.hpp), at most once; else kInvalidFlag / kDuplicateFlag (md and ma answer kInvalidOrDuplicateFlag for
//   every flag error, as memcached does). Token checks: N R T signed 32-bit (kBadToken), C E unsigned 64-bit
//   (kBadToken), F unsigned 32-bit (kBadCommandLineFormat), J (kInvalidInitialValue), D (kInvalidDeltaValue),
//   O at most 32 bytes (kOpaqueTooLong), M exactly one character (kModeLength) among E A P R S for ms
//   (kInvalidMsMode) and I + D - for ma (kInvalidMaMode). With b the key must be valid base64 (kKeyDecodeError).
//   20 tokens or more -> kOptionsTooLong (ms: kMsOptionsTooLong, nothing swallowed; me: a bad base64 key is
//   kBadCommandLineFormat), as memcached 1.6.18 words them. A missing key -> "ERROR"; ms without a valid datalen ->
//   kBadCommandLineFormat and nothing swallowed; any later ms error swallows the data block. mn and me ignore
//   extra tokens as memcached does. Meta errors are sent even with q (ParseResult::noreply stays false).
// Not handled: memcached's admin commands (slabs, lru_crawler, watch, shutdown, cache_memlimit, ...) -> "ERROR";
// memcached's special case that closes the connection on an "HTTP/" token.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ringlet/proto/memcache/command.hpp"
#include "ringlet/proto/memcache/tokens.hpp"

namespace ringlet {
class SliceQueue;
}

namespace ringlet::memcache {

struct RequestLimits {
  std::uint32_t max_line = 2048;             // bytes before the "\n"; beyond: line_too_long (close)
  std::uint32_t max_get_line = 1024 * 1024;  // the same for get/gets, whose key lists may be long
  std::uint32_t max_data_length = 1024 * 1024;  // larger values: kTooLarge, block swallowed (memcached -I)
};

enum class ParseStatus : std::uint8_t { need_more, complete, error };

enum class ParseError : std::uint8_t {
  none,
  unknown_command,  // reply "ERROR" (also: wrong token count)
  client_error,     // reply "CLIENT_ERROR ..."
  too_large,        // reply "SERVER_ERROR object too large for cache"; swallow the block
  line_too_long,    // no reply: close the connection
};

struct ParseResult {
  ParseStatus status = ParseStatus::need_more;
  ParseError error = ParseError::none;
  std::uint32_t consumed = 0;  // complete, error: bytes of the line, "\n" included (0 for line_too_long)
  std::uint64_t swallow = 0;   // error: bytes after the line that belong to the refused command
  std::string_view reply;      // error: the line to send, without "\r\n" (a wire:: constant)
  bool noreply = false;        // the command asked for no reply (text noreply)

  bool complete() const noexcept { return status == ParseStatus::complete; }
  bool need_more() const noexcept { return status == ParseStatus::need_more; }
  bool failed() const noexcept { return status == ParseStatus::error; }
};

// The meta flags of a request, validated. `text` keeps them as sent, in order (replies echo flags in request
// order: iterate it with Tokens; each token's first byte is the flag, the rest its argument).
struct MetaFlags {
  FlagSet set;
  std::string_view text;
  std::string_view opaque;          // O
  std::int32_t ttl = 0;             // T
  std::int32_t vivify_ttl = 0;      // N
  std::int32_t recache_ttl = 0;     // R
  std::uint32_t client_flags = 0;   // F
  std::uint64_t compare_cas = 0;    // C
  std::uint64_t new_cas = 0;        // E
  std::uint64_t initial = 0;        // J
  std::uint64_t delta = 1;          // D (ma's default is 1)
  char mode = 0;                    // M: 'E' 'A' 'P' 'R' 'S' (ms), 'I' '+' 'D' '-' (ma); 0 when absent

  bool has(char flag) const noexcept { return set.has(flag); }
  // The argument of a flag as sent ("" if absent or without one).
  std::string_view token(char flag) const noexcept;
};

struct Request {
  const CommandSpec* spec = nullptr;
  Command command = Command::mn;
  std::string_view key;           // the key (the first one for get/gets/gat/gats); meta with b: still base64
  std::string_view keys;          // get/gets/gat/gats: every key, space separated; iterate with Tokens
  std::uint32_t key_count = 0;    // get/gets/gat/gats
  std::uint32_t client_flags = 0; // storage
  std::int64_t exptime = 0;       // storage, touch, gat/gats; flush_all: the delay (see has_delay)
  std::uint32_t data_length = 0;  // storage, ms: the value's bytes (without the block's "\r\n")
  std::uint64_t cas_unique = 0;   // cas
  std::uint64_t delta = 0;        // incr/decr
  std::uint32_t verbosity = 0;    // verbosity
  bool has_delay = false;         // flush_all with a delay
  bool noreply = false;           // text "noreply" (meta: meta.has('q'), which the server applies per reply)
  std::string_view args;          // stats: the arguments after "stats" (maybe empty)
  MetaFlags meta;                 // mg ms md ma me

  bool has_data_block() const noexcept {
    return command == Command::ms || (spec != nullptr && (spec->syntax == Syntax::storage ||
                                                          spec->syntax == Syntax::cas));
  }
  // Bytes after the line that belong to this command: the value and its "\r\n" (0 without a data block).
  std::uint64_t data_block() const noexcept { return has_data_block() ? std::uint64_t{data_length} + 2 : 0; }
};

class RequestParser {
 public:
  RequestParser() = default;
  explicit RequestParser(const RequestLimits& limits) noexcept : limits_(limits) {}

  // Parses `data`: the bytes of this command received so far, from its first byte. Each call's data must begin
  // with the previous call's data. Once complete or error, further calls return the same result (rebased views).
  ParseResult parse(std::string_view data) noexcept;

  const Request& request() const noexcept { return req_; }
  const RequestLimits& limits() const noexcept { return limits_; }
  // Bytes already searched for "\n" (each byte is looked at once however the input is split).
  std::size_t scanned() const noexcept { return scan_; }
  void reset() noexcept { *this = RequestParser(limits_); }

 private:
  RequestLimits limits_{};
  Request req_{};
  ParseResult result_{};
  std::uint32_t scan_ = 0;  // no '\n' in [0, scan_)
  bool done_ = false;
};

// Parses one whole command line (`line` without its line end; `consumed` is its length with the line end) into
// `out`. RequestParser::parse calls it once the "\n" is found; the line length limit is the caller's.
ParseResult parse_line(std::string_view line, std::uint32_t consumed, const RequestLimits& limits,
                       Request& out) noexcept;

// parse_line for a line that may repeat `previous`'s flags: a client's batch of meta commands is usually one
// command with one set of flags over many keys ("mg <key> k f v q" sixteen times). When `line` is "<cm> <key>
// <flags>" with the command of `previous` (mg, md or ma, without b), its flags byte for byte those of `previous`
// and a valid key, `out` becomes `previous` with the new key and views into `line`: the flags are not tokenized
// and validated again. Anything else goes to parse_line. Either way `out` and the result are exactly what
// parse_line(line, ...) gives. `previous` is a complete parse whose bytes are still alive (its flags are compared);
// `out` may be `previous`.
ParseResult parse_line_after(std::string_view line, std::uint32_t consumed, const RequestLimits& limits,
                             const Request& previous, Request& out) noexcept;

// True if a storage command's data block ends in "\r\n" (`block` is the whole block, or at least its last two
// bytes). Otherwise answer wire::kBadDataChunk.
constexpr bool data_block_ends_well(std::string_view block) noexcept {
  return block.size() >= 2 && block.substr(block.size() - 2) == "\r\n";
}

// Discards up to n queued bytes (a swallowed data block arriving piece by piece); returns how many remain.
std::uint64_t skip_bytes(SliceQueue& in, std::uint64_t n) noexcept;

// Meta b flag: base64 (RFC 4648, padded) to bytes. Returns the decoded length, or 0 if `text` is not valid base64
// or does not fit `out`. kMaxKeyLength bytes of `out` are always enough for a key that parsed.
std::size_t decode_base64(std::string_view text, char* out, std::size_t out_size) noexcept;

}  // namespace ringlet::memcache
