// reply.hpp — every reply and error string of memcached's text and meta protocols, named once, and the server
// side's reply composer. Pure: composes into an OutputChain, no I/O. Core-local.
//
// Composing: each write_* appends one whole reply line (its "\r\n" included). Lines are copied into the chain's
// pooled tail with append_copy (small, varying bytes); a value's data block is appended as a Slice, never copied,
// so a large value goes to the kernel straight from where the cache keeps it:
//   write_value(out, key, flags, data)      "VALUE <key> <flags> <bytes>\r\n" <data> "\r\n"
//   write_value(out, key, flags, data, cas) "VALUE <key> <flags> <bytes> <cas>\r\n" <data> "\r\n"
//   write_line(out, wire::kStored)          "STORED\r\n" (any constant below: END, DELETED, an error line, ...)
//   write_number(out, 42)                   "42\r\n" (incr/decr)
//   write_meta(out, wire::kMetaHd, flags)   "HD <flags>\r\n"; write_meta_value(out, data, flags) "VA <n> <flags>\r\n"
// Returned meta flags are built with MetaFlagWriter, in the order the request gave them (protocol.txt asks for
// that order), e.g. for "mg k c O123 t": w.add('c', cas); w.add('O', "123"); w.add('t', ttl).
//
// Wire format checklist: these strings are what memcached 1.6 sends, byte for byte; clients match on them (the
// load generator's reply checks do). If you change one, change tests/unit/proto/memcache/* and check it against
// memcached's doc/protocol.txt.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ringlet/buf/output_chain.hpp"
#include "ringlet/buf/slice.hpp"

namespace ringlet::memcache {

namespace wire {
inline constexpr std::string_view kCrlf = "\r\n";

// Text protocol replies.
inline constexpr std::string_view kValue = "VALUE";
inline constexpr std::string_view kEnd = "END";
inline constexpr std::string_view kStored = "STORED";
inline constexpr std::string_view kNotStored = "NOT_STORED";
inline constexpr std::string_view kExists = "EXISTS";
inline constexpr std::string_view kNotFound = "NOT_FOUND";
inline constexpr std::string_view kDeleted = "DELETED";
inline constexpr std::string_view kTouched = "TOUCHED";
inline constexpr std::string_view kOk = "OK";
inline constexpr std::string_view kVersion = "VERSION";
inline constexpr std::string_view kStat = "STAT";
inline constexpr std::string_view kReset = "RESET";

// Errors. "ERROR" alone: unknown command or wrong number of tokens. The prefixes start an error with a message.
inline constexpr std::string_view kError = "ERROR";
inline constexpr std::string_view kClientError = "CLIENT_ERROR";
inline constexpr std::string_view kServerError = "SERVER_ERROR";

// Whole error lines, as memcached words them.
inline constexpr std::string_view kBadCommandLineFormat = "CLIENT_ERROR bad command line format";
inline constexpr std::string_view kBadDataChunk = "CLIENT_ERROR bad data chunk";
inline constexpr std::string_view kDeleteUsage =
    "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]";
inline constexpr std::string_view kInvalidExptime = "CLIENT_ERROR invalid exptime argument";
inline constexpr std::string_view kInvalidDeltaArgument = "CLIENT_ERROR invalid numeric delta argument";
inline constexpr std::string_view kNonNumericValue = "CLIENT_ERROR cannot increment or decrement non-numeric value";
inline constexpr std::string_view kInvalidFlag = "CLIENT_ERROR invalid flag";
inline constexpr std::string_view kDuplicateFlag = "CLIENT_ERROR duplicate flag";
inline constexpr std::string_view kInvalidOrDuplicateFlag = "CLIENT_ERROR invalid or duplicate flag";  // md, ma
inline constexpr std::string_view kBadToken = "CLIENT_ERROR bad token in command line format";
inline constexpr std::string_view kOptionsTooLong = "CLIENT_ERROR options flags are too long";
inline constexpr std::string_view kMsOptionsTooLong = "CLIENT_ERROR options flags too long";  // sic, ms only
inline constexpr std::string_view kOpaqueTooLong = "CLIENT_ERROR opaque token too long";
inline constexpr std::string_view kKeyDecodeError = "CLIENT_ERROR error decoding key";
inline constexpr std::string_view kModeLength = "CLIENT_ERROR incorrect length for M token";
inline constexpr std::string_view kInvalidMsMode = "CLIENT_ERROR invalid mode for ms M token";
inline constexpr std::string_view kInvalidMaMode = "CLIENT_ERROR invalid mode for ma M token";
inline constexpr std::string_view kInvalidInitialValue = "CLIENT_ERROR invalid numeric initial value";
inline constexpr std::string_view kInvalidDeltaValue = "CLIENT_ERROR invalid numeric delta value";
inline constexpr std::string_view kFlushNotAllowed = "CLIENT_ERROR flush_all not allowed";
inline constexpr std::string_view kTooLarge = "SERVER_ERROR object too large for cache";
inline constexpr std::string_view kOutOfMemory = "SERVER_ERROR out of memory storing object";

// Meta return codes.
inline constexpr std::string_view kMetaValue = "VA";     // a value follows
inline constexpr std::string_view kMetaHd = "HD";        // success, no value
inline constexpr std::string_view kMetaEn = "EN";        // miss
inline constexpr std::string_view kMetaNf = "NF";        // not found
inline constexpr std::string_view kMetaNs = "NS";        // not stored
inline constexpr std::string_view kMetaEx = "EX";        // cas mismatch
inline constexpr std::string_view kMetaMn = "MN";        // the answer to mn
inline constexpr std::string_view kMetaMe = "ME";        // meta debug
}  // namespace wire

// Returned meta flags (" c123 Oabc t-1 k<key>"), built in a fixed buffer: no allocation. A flag that would not fit
// is dropped and overflowed() says so (the buffer holds a 250-byte key, an opaque and a dozen numbers).
class MetaFlagWriter {
 public:
  static constexpr std::size_t kCapacity = 512;

  void add(char flag);                          // " <flag>"
  void add(char flag, std::string_view token);  // " <flag><token>"
  void add(char flag, std::uint64_t value);
  void add(char flag, std::int64_t value);

  std::string_view text() const noexcept { return {buf_, size_}; }  // with its leading space, or empty
  bool overflowed() const noexcept { return overflowed_; }
  void clear() noexcept { size_ = 0; overflowed_ = false; }

 private:
  char buf_[kCapacity];
  std::size_t size_ = 0;
  bool overflowed_ = false;
};

// ---- server side: composing replies ---------------------------------------------------------------------------

void write_line(OutputChain& out, std::string_view line);  // line + "\r\n"
void write_value(OutputChain& out, std::string_view key, std::uint32_t flags, Slice data);
void write_value(OutputChain& out, std::string_view key, std::uint32_t flags, Slice data, std::uint64_t cas);
void write_number(OutputChain& out, std::uint64_t value);
void write_version(OutputChain& out, std::string_view version);  // "VERSION <version>"
void write_stat(OutputChain& out, std::string_view name, std::string_view value);
void write_stat(OutputChain& out, std::string_view name, std::uint64_t value);
// "CLIENT_ERROR <message>" / "SERVER_ERROR <message>" for a message not among the constants.
void write_client_error(OutputChain& out, std::string_view message);
void write_server_error(OutputChain& out, std::string_view message);

// Meta: "<code><flags>\r\n" (HD, EN, NF, NS, EX, MN) and "VA <size><flags>\r\n" <data> "\r\n".
void write_meta(OutputChain& out, std::string_view code, const MetaFlagWriter& flags);
void write_meta_value(OutputChain& out, Slice data, const MetaFlagWriter& flags);

}  // namespace ringlet::memcache
