// log.hpp — leveled logging, one event per line, one write(2) per line so lines from threads never interleave.
// Thread-safe. Level, format and destination are process configuration set once at start-up (plus the log file's
// reopen on SIGHUP); the shard a line comes from is per thread (set by the shard's thread as it starts).
//
// Every line carries: the time (UTC, milliseconds), the level, the shard (none for threads outside the shards) and
// a message key. The key is stable across releases so operators can alert on it: either given (LogKey{"..."}) or,
// for lines that give none, derived from the first three words of the format string, placeholders and
// parenthesized asides dropped ("{}: {} shard(s), accept mode {}" -> "shard_accept_mode"). Keep those words when rewording a message, or give the line a key.
//
//   text: 2026-11-21T21:30:00.123Z info  [0] listening_on: echo[0]: listening on 127.0.0.1:7000 (...)
//         (the shard in brackets, "[-]" outside the shards)
//   json: {"time":"2026-11-21T21:30:00.123Z","level":"info","shard":0,"key":"listening_on","msg":"echo[0]: ..."}
//         one object per line; "shard" is null outside the shards; msg is JSON-escaped (control bytes as \u00XX,
//         bytes >= 0x80 passed through: messages are UTF-8 or the peer's bytes).
// If you change a format, update docs/operations.md (operators parse these).
//
// Destination: stderr, or the file open_log_file() opened (it replaces fd 2, so crash reports land there too);
// reopen_log_file() opens the path again, for logrotate's SIGHUP.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "ringlet/base/result.hpp"

namespace ringlet {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3, off = 4 };
enum class LogFormat { text, json };

void set_log_level(LogLevel level) noexcept;
LogLevel log_level() noexcept;
bool parse_log_level(std::string_view text, LogLevel& out) noexcept;
void set_log_format(LogFormat format) noexcept;
bool parse_log_format(std::string_view text, LogFormat& out) noexcept;
// The shard this thread's lines name; -1: none. Called by each shard thread as it starts.
void set_log_shard(int shard) noexcept;

// Appends to `path` (created 0640 if missing) instead of stderr, from now on. Call before threads start.
Status open_log_file(const std::string& path);
// Opens the log file's path again (after logrotate moved it): lines written meanwhile go to the old or the new
// file, none is lost or split. Does nothing without a log file. Callable from any thread.
Status reopen_log_file();

// A message key given explicitly: lowercase words joined by '_' or '.', e.g. "conn.refused".
struct LogKey {
  explicit constexpr LogKey(std::string_view k) noexcept : text(k) {}
  std::string_view text;
};
// The key of a line that gives none (see the file comment).
std::string derive_log_key(std::string_view format);

void log_line(LogLevel level, std::string_view key, std::string_view message) noexcept;
// The line as it would be written (without the newline): for tests and for log_line itself.
std::string format_log_line(LogLevel level, std::string_view key, std::string_view message, std::int64_t unix_ns,
                            int shard, LogFormat format);

template <class... Args>
void log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
  if (level < log_level()) return;
  fmt::string_view text = format;
  log_line(level, derive_log_key({text.data(), text.size()}), fmt::format(format, std::forward<Args>(args)...));
}
template <class... Args>
void log(LogLevel level, LogKey key, fmt::format_string<Args...> format, Args&&... args) {
  if (level < log_level()) return;
  log_line(level, key.text, fmt::format(format, std::forward<Args>(args)...));
}
template <class... Args>
void log_debug(fmt::format_string<Args...> f, Args&&... a) { log(LogLevel::debug, f, std::forward<Args>(a)...); }
template <class... Args>
void log_info(fmt::format_string<Args...> f, Args&&... a) { log(LogLevel::info, f, std::forward<Args>(a)...); }
template <class... Args>
void log_warn(fmt::format_string<Args...> f, Args&&... a) { log(LogLevel::warn, f, std::forward<Args>(a)...); }
template <class... Args>
void log_error(fmt::format_string<Args...> f, Args&&... a) { log(LogLevel::error, f, std::forward<Args>(a)...); }
template <class... Args>
void log_info(LogKey k, fmt::format_string<Args...> f, Args&&... a) { log(LogLevel::info, k, f, std::forward<Args>(a)...); }
template <class... Args>
void log_warn(LogKey k, fmt::format_string<Args...> f, Args&&... a) { log(LogLevel::warn, k, f, std::forward<Args>(a)...); }
template <class... Args>
void log_error(LogKey k, fmt::format_string<Args...> f, Args&&... a) { log(LogLevel::error, k, f, std::forward<Args>(a)...); }

// Bounds the lines one kind of event may write: at most `per_second` lines in each one-second window; past that,
// lines are counted, not written, and the first line of the next window that writes says how many were left out
// (a line of its own, key "<key>.suppressed"). A flood of refused clients or failing connections thus costs a few
// lines a second, not a full disk. Core-local: one per kind per shard; the caller passes the time (its loop's
// clock), so tests drive it with a manual clock.
class LogRateLimit {
 public:
  explicit LogRateLimit(std::string_view key, std::uint32_t per_second = 10) noexcept
      : key_(key), per_second_(per_second) {}

  // True when a line may be written now (after logging the suppressed count if a window just ended).
  bool allow(LogLevel level, std::int64_t now_ns);
  std::uint64_t suppressed_total() const noexcept { return suppressed_total_; }
  std::string_view key() const noexcept { return key_; }

 private:
  std::string_view key_;
  std::uint32_t per_second_;
  std::int64_t window_start_ns_ = INT64_MIN;
  std::uint32_t written_ = 0;
  std::uint64_t suppressed_ = 0;
  std::uint64_t suppressed_total_ = 0;
};

template <class... Args>
void log_limited(LogRateLimit& limit, LogLevel level, std::int64_t now_ns, fmt::format_string<Args...> format,
                 Args&&... args) {
  if (level < log_level() || !limit.allow(level, now_ns)) return;
  log_line(level, limit.key(), fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace ringlet
