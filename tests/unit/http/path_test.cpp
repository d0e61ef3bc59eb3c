#include "ringlet/http/path.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ringlet::http {
namespace {

struct Case {
  const char* encoded;
  std::uint16_t status;
  const char* path = "";
  bool trailing_slash = false;
};

TEST(NormalizePath, decodes_and_resolves_dot_segments) {
  const Case cases[] = {
      {"/", 0, "/", true},
      {"/a", 0, "/a"},
      {"/a/", 0, "/a", true},
      {"/a/b/c.txt", 0, "/a/b/c.txt"},
      {"//a///b", 0, "/a/b"},
      {"/a/./b", 0, "/a/b"},
      {"/a/.", 0, "/a", true},
      {"/a/b/../c", 0, "/a/c"},
      {"/a/..", 0, "/", true},
      {"/a/../", 0, "/", true},
      {"/%41%62", 0, "/Ab"},
      {"/hello%20world", 0, "/hello world"},
      {"/a%2Fb", 0, "/a/b"},            // an encoded slash is a slash (as nginx) ...
      {"/a%2F..%2Fb", 0, "/b"},         // ... and dot segments are resolved after decoding
      {"/%2e%2e/x", 400},                 // encoded dots climbing out
      {"/a%2F..%2F..%2Fetc/passwd", 400},  // encoded slashes climbing out
      {"/..", 400},
      {"/../x", 400},
      {"/a/../../x", 400},
      {"/a/b/../../..", 400},
      {"/x%00.txt", 400},  // NUL
      {"/%", 400},
      {"/%4", 400},
      {"/%zz", 400},
      {"relative", 400},
      {"", 400},
      {"/...", 0, "/..."},  // not a dot segment
      {"/..a", 0, "/..a"},
      {"/+", 0, "/+"},  // '+' is not a space in a path
  };
  std::string out;
  for (const Case& c : cases) {
    NormalizedPath r = normalize_path(c.encoded, out);
    EXPECT_EQ(r.status, c.status) << c.encoded;
    if (c.status == 0 && r.status == 0) {
      EXPECT_EQ(out, c.path) << c.encoded;
      EXPECT_EQ(r.trailing_slash, c.trailing_slash) << c.encoded;
    }
  }
}

TEST(NormalizePath, never_grows_a_reused_string) {
  std::string out;
  out.reserve(64);
  const char* cap_before = out.data();
  normalize_path("/a/b/c/d/e/f/../g%20h", out);
  EXPECT_EQ(out.data(), cap_before);
}

}  // namespace
}  // namespace ringlet::http
