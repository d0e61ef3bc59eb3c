// client.hpp — the client side of memcached's text and meta protocols: composing requests and parsing reply lines
// into views. Pure, I/O-free, core-local. Used by `ringlet bench memcache` (loadgen/memcache_codec.*), which keeps
// only the checking of what the replies say.
//
// Composing: the write_* templates append to any `Out` with append_copy(std::string_view) — an OutputChain, or a
// small adapter over a scratch string when a caller wants one copy of a whole request. Each writes one whole line
// with its "\r\n"; a storage command's data block is the caller's (append it as a Slice, then "\r\n"):
//   write_retrieval(out, "get", keys)                      "get k1 k2\r\n"
//   write_storage(out, {"set", key, flags, exptime, n})    "set k 5 0 n[ <cas>][ noreply]\r\n"
//   write_meta(out, "mg", key, flags.text())               "mg k f v\r\n" (flags built with MetaFlagWriter)
//   write_meta_set(out, key, n, flags.text())              "ms k n F5 q\r\n"
//   write_request_line(out, "mn") / write_key_command(out, "delete", key, "", noreply) ...
//
// Parsing: ReplyParser finds one reply line incrementally (same contract as the request parser: parse(bytes) with
// bytes from the reply's first byte -> need_more | complete(n) | error when the line exceeds max_line), and
// parse_reply_line() splits a whole line into a ReplyLine of views. A VALUE / VA line announces a data block of
// `length` bytes plus "\r\n" that follows the line; like the server side, the parser leaves it to the caller, who
// checks it in place from its receive buffers (the load generator never gathers a value).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "ringlet/proto/memcache/reply.hpp"
#include "ringlet/proto/memcache/tokens.hpp"

namespace ringlet::memcache {

// ---- composing requests ----------------------------------------------------------------------------------------

namespace detail {
template <class Out>
void append_number(Out& out, std::uint64_t v) {
  char digits[20];
  std::size_t n = 0;
  do {
    digits[sizeof digits - ++n] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  out.append_copy(std::string_view(digits + sizeof digits - n, n));
}
template <class Out>
void append_number(Out& out, std::int64_t v) {
  if (v < 0) {
    out.append_copy("-");
    append_number(out, static_cast<std::uint64_t>(0) - static_cast<std::uint64_t>(v));
  } else {
    append_number(out, static_cast<std::uint64_t>(v));
  }
}
}  // namespace detail

// "<command> <key>*\r\n": command is get, gets, or "gat <exptime>" / "gats <exptime>".
template <class Out>
void write_retrieval(Out& out, std::string_view command, std::span<const std::string_view> keys) {
  out.append_copy(command);
  for (std::string_view k : keys) {
    out.append_copy(" ");
    out.append_copy(k);
  }
  out.append_copy(wire::kCrlf);
}

struct StorageLine {
  std::string_view command;  // set add replace append prepend cas
  std::string_view key;
  std::uint32_t flags = 0;
  std::int64_t exptime = 0;
  std::uint64_t bytes = 0;
  std::uint64_t cas_unique = 0;  // written for "cas" only
  bool noreply = false;
};

template <class Out>
void write_storage(Out& out, const StorageLine& s) {
  out.append_copy(s.command);
  out.append_copy(" ");
  out.append_copy(s.key);
  out.append_copy(" ");
  detail::append_number(out, std::uint64_t{s.flags});
  out.append_copy(" ");
  detail::append_number(out, s.exptime);
  out.append_copy(" ");
  detail::append_number(out, s.bytes);
  if (s.command == "cas") {
    out.append_copy(" ");
    detail::append_number(out, s.cas_unique);
  }
  if (s.noreply) out.append_copy(" noreply");
  out.append_copy(wire::kCrlf);
}

// "<command> <key>[ <args>][ noreply]\r\n": delete, incr/decr ("5"), touch ("<exptime>").
template <class Out>
void write_key_command(Out& out, std::string_view command, std::string_view key, std::string_view args,
                       bool noreply) {
  out.append_copy(command);
  out.append_copy(" ");
  out.append_copy(key);
  if (!args.empty()) {
    out.append_copy(" ");
    out.append_copy(args);
  }
  if (noreply) out.append_copy(" noreply");
  out.append_copy(wire::kCrlf);
}

// "<cm> <key><flags>\r\n" for mg, md, ma, me; `flags` as MetaFlagWriter::text() gives them (leading space).
template <class Out>
void write_meta(Out& out, std::string_view command, std::string_view key, std::string_view flags) {
  out.append_copy(command);
  out.append_copy(" ");
  out.append_copy(key);
  out.append_copy(flags);
  out.append_copy(wire::kCrlf);
}

// "ms <key> <datalen><flags>\r\n"; the data block follows.
template <class Out>
void write_meta_set(Out& out, std::string_view key, std::uint64_t datalen, std::string_view flags) {
  out.append_copy("ms ");
  out.append_copy(key);
  out.append_copy(" ");
  detail::append_number(out, datalen);
  out.append_copy(flags);
  out.append_copy(wire::kCrlf);
}

// A line without arguments, or preformatted: "mn", "version", "flush_all 10".
template <class Out>
void write_request_line(Out& out, std::string_view line) {
  out.append_copy(line);
  out.append_copy(wire::kCrlf);
}

// ---- parsing replies -------------------------------------------------------------------------------------------

enum class ReplyKind : std::uint8_t {
  value,         // VALUE <key> <flags> <bytes> [<cas>]   (a data block follows)
  end,           // END
  stored, not_stored, exists, not_found, deleted, touched, ok, reset,
  number,        // incr/decr result
  version,       // VERSION <text>
  stat,          // STAT <name> <value>
  error,         // ERROR
  client_error,  // CLIENT_ERROR <message>
  server_error,  // SERVER_ERROR <message>
  meta_value,    // VA <size> <flags>*                     (a data block follows)
  meta_hd, meta_en, meta_nf, meta_ns, meta_ex, meta_mn,  // <code> <flags>*
  meta_me,       // ME <key> <k>=<v>*
  unknown,       // anything else
};

struct ReplyLine {
  ReplyKind kind = ReplyKind::unknown;
  bool well_formed = true;        // false: the line starts like `kind` but its fields do not parse
  std::string_view key;           // value, meta_me
  std::uint32_t client_flags = 0; // value
  std::uint64_t length = 0;       // value, meta_value: bytes of the data block (without its "\r\n")
  bool has_cas = false;           // value (gets)
  std::uint64_t cas = 0;          // value
  std::uint64_t number = 0;       // number
  std::string_view text;          // version, client_error, server_error: the rest; stat: the value; meta_me: the rest
  std::string_view name;          // stat
  std::string_view meta_flags;    // meta_*: the returned flags, e.g. "f5 k<key> t-1" (iterate with Tokens)

  bool has_data_block() const noexcept {
    return well_formed && (kind == ReplyKind::value || kind == ReplyKind::meta_value);
  }
};

// Splits a whole reply line (without "\r\n"). Never fails: an unrecognised line is ReplyKind::unknown.
ReplyLine parse_reply_line(std::string_view line) noexcept;

// Returned meta flag `flag`'s token in `flags` ("f5 t-1": 'f' -> "5"); found is false if absent.
struct FlagToken {
  bool found = false;
  std::string_view token;
};
FlagToken find_meta_flag(std::string_view flags, char flag) noexcept;

// Decimal digits only, no sign (what servers send); false on overflow or anything else.
bool parse_reply_number(std::string_view text, std::uint64_t& out) noexcept;

struct ReplyResult {
  enum class Status : std::uint8_t { need_more, complete, too_long } status = Status::need_more;
  std::uint32_t consumed = 0;  // complete: the line with its "\r\n"
};

// Finds one "\r\n"-terminated reply line incrementally (each byte searched once however the input is split).
class ReplyParser {
 public:
  explicit ReplyParser(std::uint32_t max_line = 4096) noexcept : max_line_(max_line) {}

  // `data`: the reply received so far, from its first byte; each call's data begins with the previous call's.
  ReplyResult parse(std::string_view data) noexcept;
  // After complete: the line, as views into the data of the last parse() call.
  const ReplyLine& line() const noexcept { return line_; }
  void reset() noexcept { *this = ReplyParser(max_line_); }

 private:
  std::uint32_t max_line_;
  std::uint32_t scan_ = 0;  // no "\r\n" starts before scan_
  ReplyLine line_{};
};

}  // namespace ringlet::memcache
