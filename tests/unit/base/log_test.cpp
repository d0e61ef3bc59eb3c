// log_test.cpp — the line formats operators parse, the derived message keys, the rate limit's arithmetic on a
// manual clock, and the log file's reopen.
#include "ringlet/base/log.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace ringlet {
namespace {

constexpr std::int64_t kSecond = 1'000'000'000;
constexpr std::int64_t kNoon = 1'796'299'200LL * kSecond + 123'000'000;  // 2026-12-03T12:00:00.123Z

TEST(LogKey, is_the_first_words_of_the_format_without_placeholders) {
  EXPECT_EQ(derive_log_key("{}: listening on {} (backend {})"), "listening_on");
  EXPECT_EQ(derive_log_key("{}: {} shard(s), accept mode {}"), "shard_accept_mode");
  EXPECT_EQ(derive_log_key("queue: binlog: fdatasync failed"), "queue_binlog_fdatasync");
  EXPECT_EQ(derive_log_key("Shard {} cannot pin"), "shard_cannot_pin");
  EXPECT_EQ(derive_log_key("{}"), "message");
}

TEST(LogFormat, text_lines_carry_time_level_shard_and_key) {
  EXPECT_EQ(format_log_line(LogLevel::info, "listening", "echo[0]: listening on 127.0.0.1:7000", kNoon, 0,
                            LogFormat::text),
            "2026-12-03T12:00:00.123Z info  [0] listening: echo[0]: listening on 127.0.0.1:7000");
  EXPECT_EQ(format_log_line(LogLevel::warn, "k", "m", kNoon, -1, LogFormat::text),
            "2026-12-03T12:00:00.123Z warn  [-] k: m");
}

TEST(LogFormat, json_lines_are_one_escaped_object_with_documented_keys) {
  EXPECT_EQ(format_log_line(LogLevel::error, "conn.refused", "say \"hi\"\\\n\x01", kNoon, 3, LogFormat::json),
            R"({"time":"2026-12-03T12:00:00.123Z","level":"error","shard":3,"key":"conn.refused",)"
            R"("msg":"say \"hi\"\\\n\u0001"})");
  EXPECT_EQ(format_log_line(LogLevel::debug, "k", "m", kNoon, -1, LogFormat::json),
            R"({"time":"2026-12-03T12:00:00.123Z","level":"debug","shard":null,"key":"k","msg":"m"})");
}

TEST(LogFormat, names_parse) {
  LogFormat f = LogFormat::text;
  EXPECT_TRUE(parse_log_format("json", f));
  EXPECT_EQ(f, LogFormat::json);
  EXPECT_FALSE(parse_log_format("xml", f));
}

TEST(LogRateLimit, writes_at_most_n_lines_a_second_and_counts_the_rest) {
  set_log_level(LogLevel::off);  // the suppressed-count line is not what this test reads
  LogRateLimit limit("conn.accept_error", 3);
  int allowed = 0;
  for (int i = 0; i < 100; ++i) allowed += limit.allow(LogLevel::warn, kNoon + i * 1'000'000) ? 1 : 0;
  EXPECT_EQ(allowed, 3);
  EXPECT_EQ(limit.suppressed_total(), 97u);
  EXPECT_TRUE(limit.allow(LogLevel::warn, kNoon + kSecond));  // a new window
  EXPECT_EQ(limit.suppressed_total(), 97u);
  set_log_level(LogLevel::info);
}

// Runs `body` with fd 2 pointing at a fresh file; returns what was written there.
template <class F>
std::string capture_stderr(F body) {
  char path[] = "/tmp/ringlet-log-test-XXXXXX";
  int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  int saved = ::dup(STDERR_FILENO);
  ::dup2(fd, STDERR_FILENO);
  body();
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  ::close(fd);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  ::unlink(path);
  return text.str();
}

TEST(LogRateLimit, the_next_window_says_how_many_lines_were_left_out) {
  LogRateLimit limit("conn.refused", 2);
  std::string out = capture_stderr([&] {
    for (int i = 0; i < 10; ++i) log_limited(limit, LogLevel::warn, kNoon + i, "refused client {}", i);
    log_limited(limit, LogLevel::warn, kNoon + 2 * kSecond, "refused client {}", 10);
  });
  EXPECT_NE(out.find("conn.refused: refused client 0\n"), std::string::npos) << out;
  EXPECT_NE(out.find("conn.refused: refused client 1\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("refused client 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("conn.refused.suppressed: 8 more line(s)"), std::string::npos) << out;
  EXPECT_NE(out.find("conn.refused: refused client 10\n"), std::string::npos) << out;
}

TEST(LogFile, reopen_follows_the_path_after_a_rename) {
  std::string dir = ::testing::TempDir();
  std::string path = dir + "/ringlet-log-file-test.log";
  std::string rotated = path + ".1";
  ::unlink(path.c_str());
  ::unlink(rotated.c_str());
  int saved = ::dup(STDERR_FILENO);
  ASSERT_TRUE(open_log_file(path));
  log_info("before rotation");
  ASSERT_EQ(::rename(path.c_str(), rotated.c_str()), 0);
  ASSERT_TRUE(reopen_log_file());
  log_info("after rotation");
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  std::stringstream old_text, new_text;
  old_text << std::ifstream(rotated).rdbuf();
  new_text << std::ifstream(path).rdbuf();
  EXPECT_NE(old_text.str().find("before rotation"), std::string::npos);
  EXPECT_EQ(old_text.str().find("after rotation"), std::string::npos);
  EXPECT_NE(new_text.str().find("after rotation"), std::string::npos);
  ::unlink(path.c_str());
  ::unlink(rotated.c_str());
}

}  // namespace
}  // namespace ringlet
