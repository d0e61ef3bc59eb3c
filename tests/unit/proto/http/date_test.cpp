#include "ringlet/proto/http/date.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ringlet::http {
namespace {

std::string format(std::int64_t t) {
  char buf[kHttpDateLength];
  format_http_date(t, buf);
  return std::string(buf, kHttpDateLength);
}

TEST(HttpDate, formats_imf_fixdate) {
  EXPECT_EQ(format(0), "Thu, 01 Jan 1970 00:00:00 GMT");
  EXPECT_EQ(format(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(format(951782400), "Tue, 29 Feb 2000 00:00:00 GMT");  // leap day of a 400-year leap year
  EXPECT_EQ(format(4102444799), "Thu, 31 Dec 2099 23:59:59 GMT");
  EXPECT_EQ(format(1700000000), "Tue, 14 Nov 2023 22:13:20 GMT");
}

TEST(HttpDate, parses_the_three_forms) {
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
  EXPECT_EQ(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
  EXPECT_EQ(parse_http_date("Sun Nov  6 08:49:37 1994"), 784111777);
  EXPECT_EQ(parse_http_date("Thu Feb 29 00:00:00 2024"), parse_http_date("Thu, 29 Feb 2024 00:00:00 GMT"));
}

TEST(HttpDate, round_trips_every_day_for_decades) {
  for (std::int64_t t = 0; t < 4102444800; t += 86400 - 17) {
    ASSERT_EQ(parse_http_date(format(t)), t) << format(t);
  }
}

TEST(HttpDate, rejects_malformed_dates) {
  for (const char* bad : {"", "yesterday", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 6 Nov 1994 08:49:37 GMT",
                          "Sun, 31 Feb 1994 08:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT",
                          "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 06 Nov 1994 08:49:37 GMT ",
                          "Sun Nov 6 08:49:37 1994", "Sunday, 06-Nov-1994 08:49:37 GMT", "Sun, 29 Feb 2023 00:00:00 GMT",
                          "Xyz, 06 Nov 1994 08:49:37 GMT"}) {
    EXPECT_FALSE(parse_http_date(bad).has_value()) << bad;
  }
}

TEST(HttpDate, cache_renders_once_per_second_of_loop_time) {
  DateCache cache;
  std::string first(cache.get(1'000'000'000));
  const char* p = cache.get(1'000'000'001).data();
  EXPECT_EQ(std::string(cache.get(1'000'000'001)), first);  // same text, no re-render within the second
  EXPECT_EQ(cache.get(1'000'000'002).data(), p);
  EXPECT_EQ(first.size(), kHttpDateLength);
  EXPECT_TRUE(parse_http_date(first).has_value());
  EXPECT_EQ(*parse_http_date(first), cache.seconds());
}

}  // namespace
}  // namespace ringlet::http
