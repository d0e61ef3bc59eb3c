// reply.hpp — beanstalkd's replies: every reply word in one table (the only place their spelling lives), and the
// server side's compose into an OutputChain. The client's reply parser (client.hpp) reads the same table.
// Pure, no I/O. The table is constant (thread-safe); compose writes to the caller's chain (core-local).
//
// Wire forms (doc/protocol.txt of beanstalkd 1.12/1.13):
//   <WORD>\r\n                                 every error, DELETED, RELEASED, BURIED, TOUCHED, KICKED (kick-job),
//                                              NOT_FOUND, TIMED_OUT, DEADLINE_SOON, NOT_IGNORED, PAUSED
//   INSERTED <id>\r\n, BURIED <id>\r\n         put (BURIED <id>: the server could not grow its queue)
//   USING <tube>\r\n, WATCHING <count>\r\n, KICKED <count>\r\n (kick)
//   RESERVED <id> <bytes>\r\n<body>\r\n, FOUND <id> <bytes>\r\n<body>\r\n
//   OK <bytes>\r\n<yaml>\r\n                   stats, stats-job, stats-tube, list-tubes, list-tubes-watched
//
// Zero copy where it pays: a job body is appended to the chain as the Slice it is stored in (a refcount bump), and
// only the short reply line and the "\r\n" after it are copied (into the chain's pooled tail, so a run of small
// replies becomes one iovec). A YAML document is built by YamlWriter into a string the caller reuses, then copied
// once by compose_ok.
#pragma once

#include <charconv>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "ringlet/buf/output_chain.hpp"
#include "ringlet/buf/slice.hpp"

namespace ringlet::beanstalk {

enum class ReplyKind : std::uint8_t {
  inserted,
  buried,
  using_tube,
  reserved,
  deadline_soon,
  timed_out,
  deleted,
  not_found,
  released,
  touched,
  watching,
  not_ignored,
  found,
  kicked,
  ok,
  paused,
  out_of_memory,
  internal_error,
  draining,
  bad_format,
  unknown_command,
  expected_crlf,
  job_too_big,
};
inline constexpr std::size_t kReplyKindCount = 23;

// What follows the word on the reply line.
enum class ReplyArgs : std::uint8_t {
  none,
  id,              // INSERTED
  optional_id,     // BURIED: "<id>" after a put, nothing after release or bury
  tube,            // USING
  count,           // WATCHING
  optional_count,  // KICKED: "<count>" after kick, nothing after kick-job
  id_bytes,        // RESERVED, FOUND: a body of <bytes> + CRLF follows
  bytes,           // OK: a YAML body of <bytes> + CRLF follows
};

struct ReplySpec {
  ReplyKind kind;
  std::string_view word;
  ReplyArgs args;
  bool error;  // an error reply (the command did nothing)
};

// Indexed by ReplyKind. If you change a word here, you change the wire protocol.
inline constexpr ReplySpec kReplies[kReplyKindCount] = {
    {ReplyKind::inserted, "INSERTED", ReplyArgs::id, false},
    {ReplyKind::buried, "BURIED", ReplyArgs::optional_id, false},
    {ReplyKind::using_tube, "USING", ReplyArgs::tube, false},
    {ReplyKind::reserved, "RESERVED", ReplyArgs::id_bytes, false},
    {ReplyKind::deadline_soon, "DEADLINE_SOON", ReplyArgs::none, false},
    {ReplyKind::timed_out, "TIMED_OUT", ReplyArgs::none, false},
    {ReplyKind::deleted, "DELETED", ReplyArgs::none, false},
    {ReplyKind::not_found, "NOT_FOUND", ReplyArgs::none, false},
    {ReplyKind::released, "RELEASED", ReplyArgs::none, false},
    {ReplyKind::touched, "TOUCHED", ReplyArgs::none, false},
    {ReplyKind::watching, "WATCHING", ReplyArgs::count, false},
    {ReplyKind::not_ignored, "NOT_IGNORED", ReplyArgs::none, false},
    {ReplyKind::found, "FOUND", ReplyArgs::id_bytes, false},
    {ReplyKind::kicked, "KICKED", ReplyArgs::optional_count, false},
    {ReplyKind::ok, "OK", ReplyArgs::bytes, false},
    {ReplyKind::paused, "PAUSED", ReplyArgs::none, false},
    {ReplyKind::out_of_memory, "OUT_OF_MEMORY", ReplyArgs::none, true},
    {ReplyKind::internal_error, "INTERNAL_ERROR", ReplyArgs::none, true},
    {ReplyKind::draining, "DRAINING", ReplyArgs::none, true},
    {ReplyKind::bad_format, "BAD_FORMAT", ReplyArgs::none, true},
    {ReplyKind::unknown_command, "UNKNOWN_COMMAND", ReplyArgs::none, true},
    {ReplyKind::expected_crlf, "EXPECTED_CRLF", ReplyArgs::none, true},
    {ReplyKind::job_too_big, "JOB_TOO_BIG", ReplyArgs::none, true},
};
constexpr const ReplySpec& reply_spec(ReplyKind k) noexcept { return kReplies[static_cast<std::size_t>(k)]; }
constexpr std::string_view reply_word(ReplyKind k) noexcept { return reply_spec(k).word; }

namespace detail {
constexpr bool reply_table_is_indexed() noexcept {
  for (std::size_t i = 0; i < kReplyKindCount; ++i) {
    if (static_cast<std::size_t>(kReplies[i].kind) != i) return false;
  }
  return true;
}
}  // namespace detail
static_assert(detail::reply_table_is_indexed(), "kReplies must be in ReplyKind order");

// ---- server side: compose ------------------------------------------------------------------------------------

// "<WORD>\r\n" for a reply without arguments (and BURIED / KICKED in their bare forms).
void compose(OutputChain& out, ReplyKind kind);
void compose_inserted(OutputChain& out, std::uint64_t id);
void compose_buried(OutputChain& out, std::uint64_t id);  // the put's job was buried
void compose_using(OutputChain& out, std::string_view tube);
void compose_watching(OutputChain& out, std::uint64_t count);
void compose_kicked(OutputChain& out, std::uint64_t count);  // kick; kick-job answers compose(kicked)
// RESERVED/FOUND <id> <bytes>\r\n<body>\r\n: `body` is the job's bytes without their CRLF, appended uncopied.
void compose_reserved(OutputChain& out, std::uint64_t id, Slice body);
void compose_found(OutputChain& out, std::uint64_t id, Slice body);
// OK <bytes>\r\n<yaml>\r\n.
void compose_ok(OutputChain& out, std::string_view yaml);

// Builds the YAML documents of stats and list replies, as beanstalkd writes them: "---\n", then "key: value\n"
// lines (a map) or "- item\n" lines (a list). Strings that beanstalkd quotes (names, versions) go through quoted();
// tube names never need escaping (their alphabet has no quote or backslash). Appends to a string the caller owns
// and reuses, so a warm writer does not allocate.
class YamlWriter {
 public:
  explicit YamlWriter(std::string& out) : out_(&out) { out_->append("---\n"); }

  template <std::integral T>
  YamlWriter& field(std::string_view key, T value) {
    char digits[24];
    auto [end, ec] = std::to_chars(digits, digits + sizeof digits, value);
    return field(key, std::string_view(digits, static_cast<std::size_t>(end - digits)));
  }
  YamlWriter& field(std::string_view key, std::string_view bare);  // value as is: "state: ready", "draining: false"
  YamlWriter& quoted(std::string_view key, std::string_view value);  // "name: \"default\""
  YamlWriter& item(std::string_view value);                          // "- default"

 private:
  std::string* out_;
};

}  // namespace ringlet::beanstalk
