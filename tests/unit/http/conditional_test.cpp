#include "ringlet/http/conditional.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ringlet::http {
namespace {

TEST(Etag, has_nginx_format) {
  char buf[kMaxEtagLength];
  std::size_t n = make_etag(0x5f5e1000, 13, buf);
  EXPECT_EQ(std::string(buf, n), "\"5f5e1000-d\"");
  n = make_etag(INT64_MAX, UINT64_MAX, buf);
  EXPECT_EQ(n, kMaxEtagLength);
}

TEST(Etag, list_matching_weak_and_strong) {
  const std::string_view tag = "\"abc-1\"";
  struct Case {
    const char* list;
    bool weak;
    bool strong;
  } cases[] = {
      {"\"abc-1\"", true, true},
      {"W/\"abc-1\"", true, false},
      {"\"x\", \"abc-1\"", true, true},
      {"\"x\",W/\"abc-1\"", true, false},
      {"*", true, true},
      {" * ", true, true},
      {"\"abc-2\"", false, false},
      {"abc-1", false, false},       // unquoted: malformed
      {"\"abc-1", false, false},     // unterminated
      {"\"x\" \"abc-1\"", false, false},  // missing comma
      {"", false, false},
      {" , \"abc-1\" ,", true, true},  // empty list elements are allowed
  };
  for (const Case& c : cases) {
    EXPECT_EQ(etag_list_matches(c.list, tag, EtagComparison::weak), c.weak) << c.list;
    EXPECT_EQ(etag_list_matches(c.list, tag, EtagComparison::strong), c.strong) << c.list;
  }
}

constexpr std::int64_t kMtime = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT
constexpr const char* kEtag = "\"2ebc3b61-d\"";

struct PreCase {
  const char* name;
  ConditionalHeaders headers;
  bool safe;
  Precondition expected;
};

TEST(Preconditions, follow_rfc9110_order) {
  const char* same = "Sun, 06 Nov 1994 08:49:37 GMT";
  const char* earlier = "Sun, 06 Nov 1994 08:49:36 GMT";
  const char* later = "Mon, 07 Nov 1994 00:00:00 GMT";
  const PreCase cases[] = {
      {"none", {}, true, Precondition::proceed},
      {"inm match", {.if_none_match = kEtag}, true, Precondition::not_modified},
      {"inm weak match", {.if_none_match = "W/\"2ebc3b61-d\""}, true, Precondition::not_modified},
      {"inm star", {.if_none_match = "*"}, true, Precondition::not_modified},
      {"inm other", {.if_none_match = "\"zzz\""}, true, Precondition::proceed},
      {"inm match unsafe method", {.if_none_match = kEtag}, false, Precondition::failed},
      {"ims same", {.if_modified_since = same}, true, Precondition::not_modified},
      {"ims later", {.if_modified_since = later}, true, Precondition::not_modified},
      {"ims earlier", {.if_modified_since = earlier}, true, Precondition::proceed},
      {"ims garbage", {.if_modified_since = "garbage"}, true, Precondition::proceed},
      {"ims in the future", {.if_modified_since = "Thu, 01 Jan 2099 00:00:00 GMT"}, true, Precondition::proceed},
      {"ims unsafe ignored", {.if_modified_since = same}, false, Precondition::proceed},
      // If-None-Match takes precedence: a non-matching tag wins over a date that would say 304.
      {"inm beats ims", {.if_none_match = "\"zzz\"", .if_modified_since = same}, true, Precondition::proceed},
      {"im match", {.if_match = kEtag}, true, Precondition::proceed},
      {"im star", {.if_match = "*"}, true, Precondition::proceed},
      {"im weak never matches", {.if_match = "W/\"2ebc3b61-d\""}, true, Precondition::failed},
      {"im other", {.if_match = "\"zzz\""}, true, Precondition::failed},
      {"ius earlier", {.if_unmodified_since = earlier}, true, Precondition::failed},
      {"ius same", {.if_unmodified_since = same}, true, Precondition::proceed},
      {"im beats ius", {.if_match = kEtag, .if_unmodified_since = earlier}, true, Precondition::proceed},
  };
  Validators v{kEtag, kMtime, kMtime + 86400};
  for (const PreCase& c : cases) EXPECT_EQ(evaluate_preconditions(c.headers, v, c.safe), c.expected) << c.name;
}

TEST(IfRange, allows_range_only_for_current_strong_validators) {
  Validators v{kEtag, kMtime};
  struct Case {
    std::optional<std::string_view> if_range;
    bool allowed;
  } cases[] = {
      {std::nullopt, true},
      {kEtag, true},
      {"\"other\"", false},
      {"W/\"2ebc3b61-d\"", false},
      {"Sun, 06 Nov 1994 08:49:37 GMT", true},
      {"Sun, 06 Nov 1994 08:49:38 GMT", false},  // a date must match exactly
      {"garbage", false},
  };
  for (const Case& c : cases) {
    ConditionalHeaders h;
    h.if_range = c.if_range;
    EXPECT_EQ(if_range_allows(h, v), c.allowed) << (c.if_range ? *c.if_range : "(none)");
  }
}

}  // namespace
}  // namespace ringlet::http
