// log.cpp — formats one event per line (text or JSON, see log.hpp) and writes it with one write(2).
#include "ringlet/base/log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <ctime>
#include <mutex>

namespace ringlet {
namespace {
// Process configuration, set once by the command line (the log file's path also by reopen on SIGHUP).
std::atomic<LogLevel> g_level{LogLevel::info};
std::atomic<LogFormat> g_format{LogFormat::text};
std::mutex g_file_mutex;  // guards g_file_path (reopen may run on any thread)
std::string g_file_path;
thread_local int t_shard = -1;
constexpr std::string_view kLevelNames[] = {"debug", "info", "warn", "error", "off"};

// Opens `path` for appending and puts it in place of fd 2 (dup2 swaps atomically: a concurrent write goes to the
// old file or the new one, whole).
Status install_log_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return Error{errno};
  if (fd != STDERR_FILENO) {
    if (::dup2(fd, STDERR_FILENO) < 0) {
      int err = errno;
      ::close(fd);
      return Error{err};
    }
    ::close(fd);
  }
  return {};
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\u{:04x}", u);
    } else {
      out += c;
    }
  }
  out += '"';
}
}  // namespace

void set_log_level(LogLevel level) noexcept { g_level.store(level, std::memory_order_relaxed); }
LogLevel log_level() noexcept { return g_level.load(std::memory_order_relaxed); }
void set_log_format(LogFormat format) noexcept { g_format.store(format, std::memory_order_relaxed); }
void set_log_shard(int shard) noexcept { t_shard = shard; }

bool parse_log_level(std::string_view text, LogLevel& out) noexcept {
  for (int i = 0; i < 5; ++i) {
    if (text == kLevelNames[i]) {
      out = static_cast<LogLevel>(i);
      return true;
    }
  }
  return false;
}

bool parse_log_format(std::string_view text, LogFormat& out) noexcept {
  if (text == "text") {
    out = LogFormat::text;
  } else if (text == "json") {
    out = LogFormat::json;
  } else {
    return false;
  }
  return true;
}

Status open_log_file(const std::string& path) {
  Status opened = install_log_file(path);
  if (!opened) return opened;
  std::lock_guard lock(g_file_mutex);
  g_file_path = path;
  return {};
}

Status reopen_log_file() {
  std::lock_guard lock(g_file_mutex);
  if (g_file_path.empty()) return {};
  return install_log_file(g_file_path);
}

std::string derive_log_key(std::string_view format) {
  // The first three words of the literal text outside placeholders and parentheses, lowercased.
  std::string key;
  int words = 0;
  bool in_word = false;
  for (std::size_t i = 0; i < format.size() && words < 3; ++i) {
    char c = format[i];
    if (c == '{' || c == '(') {  // placeholders and asides ("shard(s)", "(backend {})") are not key words
      std::size_t close = format.find(c == '{' ? '}' : ')', i);
      if (close == std::string_view::npos) break;
      i = close;
      in_word = false;
      continue;
    }
    bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (letter) {
      if (!in_word) {
        if (!key.empty()) key += '_';
        in_word = true;
      }
      key += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    } else if (in_word) {
      in_word = false;
      ++words;
    }
  }
  return key.empty() ? std::string("message") : key;
}

std::string format_log_line(LogLevel level, std::string_view key, std::string_view message, std::int64_t unix_ns,
                            int shard, LogFormat format) {
  time_t seconds = static_cast<time_t>(unix_ns / 1'000'000'000);
  tm utc{};
  gmtime_r(&seconds, &utc);
  std::string time = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", utc.tm_year + 1900, utc.tm_mon + 1,
                                 utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, (unix_ns / 1'000'000) % 1000);
  std::string_view level_name = kLevelNames[static_cast<int>(level)];
  if (format == LogFormat::text) {
    std::string where = shard >= 0 ? std::to_string(shard) : std::string("-");
    return fmt::format("{} {:<5} [{}] {}: {}", time, level_name, where, key, message);
  }
  std::string out = fmt::format(R"({{"time":"{}","level":"{}","shard":{},"key":)", time, level_name,
                                shard >= 0 ? std::to_string(shard) : std::string("null"));
  append_json_string(out, key);
  out += ",\"msg\":";
  append_json_string(out, message);
  out += '}';
  return out;
}

void log_line(LogLevel level, std::string_view key, std::string_view message) noexcept {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  try {
    std::string line = format_log_line(level, key, message,
                                       static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec, t_shard,
                                       g_format.load(std::memory_order_relaxed));
    line += '\n';
    ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
    (void)ignored;
  } catch (...) {
    // Out of memory while logging: the line is lost, the server goes on.
  }
}

bool LogRateLimit::allow(LogLevel level, std::int64_t now_ns) {
  if (window_start_ns_ == INT64_MIN || now_ns - window_start_ns_ >= 1'000'000'000) {
    window_start_ns_ = now_ns;
    written_ = 0;
    if (suppressed_ != 0) {
      log_line(level, std::string(key_) + ".suppressed",
               fmt::format("{} more line(s) of {} left out in the last second(s) (at most {} a second)", suppressed_,
                           key_, per_second_));
      suppressed_ = 0;
    }
  }
  if (written_ < per_second_) {
    ++written_;
    return true;
  }
  ++suppressed_;
  ++suppressed_total_;
  return false;
}

}  // namespace ringlet
