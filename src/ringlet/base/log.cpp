// log.cpp — formats "2026-11-21T21:30:00.123Z level message\n" and writes it with one write(2).
#include "ringlet/base/log.hpp"

#include <unistd.h>

#include <atomic>
#include <ctime>

namespace ringlet {
namespace {
std::atomic<LogLevel> g_level{LogLevel::info};  // process configuration, set once by the command line
constexpr std::string_view kLevelNames[] = {"debug", "info", "warn", "error", "off"};
}  // namespace

void set_log_level(LogLevel level) noexcept { g_level.store(level, std::memory_order_relaxed); }
LogLevel log_level() noexcept { return g_level.load(std::memory_order_relaxed); }

bool parse_log_level(std::string_view text, LogLevel& out) noexcept {
  for (int i = 0; i < 5; ++i) {
    if (text == kLevelNames[i]) {
      out = static_cast<LogLevel>(i);
      return true;
    }
  }
  return false;
}

void log_line(LogLevel level, std::string_view message) noexcept {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm utc{};
  gmtime_r(&ts.tv_sec, &utc);
  char line[1024];
  int n = std::snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %.*s\n", utc.tm_year + 1900,
                        utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, ts.tv_nsec / 1000000,
                        kLevelNames[static_cast<int>(level)].data(), static_cast<int>(message.size()),
                        message.data());
  if (n < 0) return;
  if (n >= static_cast<int>(sizeof line)) {
    n = sizeof line;
    line[n - 1] = '\n';
  }
  ssize_t ignored = ::write(STDERR_FILENO, line, static_cast<size_t>(n));
  (void)ignored;
}

}  // namespace ringlet
