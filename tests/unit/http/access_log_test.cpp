// access_log_test.cpp — the access log's line format, its flush rule (bytes or a second of the caller's clock, so
// no test depends on real time), and that a disabled log does nothing.
#include "ringlet/http/access_log.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace ringlet::http {
namespace {

constexpr std::int64_t kSecond = 1'000'000'000;

class AccessLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ringlet-access-log-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/access.log";
  }
  void TearDown() override { ASSERT_EQ(std::system(("rm -rf '" + dir_ + "'").c_str()), 0); }
  std::string contents() const {
    std::ifstream in(path_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  std::string dir_;
  std::string path_;
};

TEST_F(AccessLogTest, a_line_has_peer_time_what_result_bytes_and_microseconds) {
  Address peer = Address::parse("192.0.2.7:41000").value();
  {
    AccessLog log;
    ASSERT_TRUE(log.open(path_).ok());
    ASSERT_TRUE(log.enabled());
    log.record({&peer, "GET /a HTTP/1.1", 200, 13, 2'500'000}, "Sun, 06 Nov 1994 08:49:37 GMT", 0);
    log.record({nullptr, "get key", 5, 0, 999}, "t", 0);
  }  // destruction writes what is buffered
  EXPECT_EQ(contents(),
            "192.0.2.7 - - [Sun, 06 Nov 1994 08:49:37 GMT] \"GET /a HTTP/1.1\" 200 13 2500\n"
            "- - - [t] \"get key\" 5 0 0\n");
}

TEST_F(AccessLogTest, lines_are_written_a_second_after_the_last_write) {
  AccessLog log;
  ASSERT_TRUE(log.open(path_).ok());
  log.record({nullptr, "a", 200, 0, 0}, "t", kSecond);  // the first line: a second after "never"
  EXPECT_EQ(contents(), "- - - [t] \"a\" 200 0 0\n");
  log.record({nullptr, "b", 200, 0, 0}, "t", kSecond + kSecond / 2);
  EXPECT_EQ(contents(), "- - - [t] \"a\" 200 0 0\n");  // buffered
  log.record({nullptr, "c", 200, 0, 0}, "t", 2 * kSecond);
  EXPECT_EQ(contents(), "- - - [t] \"a\" 200 0 0\n- - - [t] \"b\" 200 0 0\n- - - [t] \"c\" 200 0 0\n");
}

TEST_F(AccessLogTest, a_disabled_log_records_nothing) {
  AccessLog log;
  EXPECT_FALSE(log.enabled());
  log.record({nullptr, "a", 200, 0, 0}, "t", 0);
  log.flush();
  EXPECT_NE(::access(path_.c_str(), F_OK), 0);
}

TEST_F(AccessLogTest, opening_an_impossible_path_fails_with_its_errno) {
  AccessLog log;
  Status s = log.open(dir_ + "/missing/access.log");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ENOENT);
  EXPECT_FALSE(log.enabled());
}

}  // namespace
}  // namespace ringlet::http
