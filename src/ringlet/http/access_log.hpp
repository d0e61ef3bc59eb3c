// access_log.hpp — a buffered access log any server can keep: one line per request or command, with the peer,
// what was asked, the result, the bytes sent and how long it took. Core-local: one per server per loop, no locks.
//
// Line format (Common Log Format, with the duration appended as nginx's $request_time is in its combined logs):
//   <peer host> - - [<time>] "<what>" <result> <bytes> <duration in µs>
// `time` is whatever text the server already has for "now" (the HTTP server passes its cached Date header), so a
// line costs one format into a buffer, no clock read. `what` is the request line for HTTP ("GET / HTTP/1.1"), the
// command for a text protocol ("get key"); `result` its status (200, 404) or reply code.
//
// Cheap when disabled: enabled() is a comparison, and a server asks it before it fetches the peer's address or
// measures anything. When enabled, lines gather in a per-core buffer that is written (write(2), synchronously on
// the loop) when 64 KiB are pending, on the first record a second or more after the last write, and at
// destruction, so an idle server may hold its last lines until its next request or its stop. Write errors go to
// the normal log and the buffered lines are dropped (a full disk must not grow the server's memory).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ringlet/base/result.hpp"
#include "ringlet/net/address.hpp"

namespace ringlet::http {

struct AccessRecord {
  const Address* peer = nullptr;  // null or not an IP address: logged as "-"
  std::string_view what;
  unsigned result = 0;
  std::uint64_t bytes = 0;
  std::int64_t duration_ns = 0;
};

class AccessLog {
 public:
  static constexpr std::size_t kFlushBytes = 64 * 1024;
  static constexpr std::int64_t kFlushAfterNs = 1'000'000'000;

  AccessLog() = default;  // disabled
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // Opens `path` for appending (created 0644). Errors: the open's errno.
  Status open(const std::string& path);
  bool enabled() const noexcept { return fd_ >= 0; }

  // Adds one line; `time_text` goes between the brackets, `now_ns` (the loop's monotonic time) decides the flush.
  void record(const AccessRecord& r, std::string_view time_text, std::int64_t now_ns);
  // Writes what is buffered now.
  void flush() noexcept;

 private:
  int fd_ = -1;
  std::string buffer_;
  std::int64_t flushed_ns_ = 0;
};

}  // namespace ringlet::http
