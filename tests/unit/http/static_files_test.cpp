// static_files_test.cpp — the pure parts of static-file serving: URL and HTML escaping, and the directory listing
// (whole files, ranges and conditionals are checked on the wire in tests/integration/http_server_test.cpp).
#include "ringlet/http/static_files.hpp"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "ringlet/buf/buffer.hpp"

namespace ringlet::http {
namespace {

TEST(StaticFiles, url_escaping_keeps_only_unreserved_characters) {
  std::string out;
  append_url_escaped(out, "a-b_c.d~e f/g%h\"<>\xc3\xa9");
  EXPECT_EQ(out, "a-b_c.d~e%20f%2Fg%25h%22%3C%3E%C3%A9");
}

TEST(StaticFiles, html_escaping_covers_text_and_attribute_values) {
  std::string out;
  append_html_escaped(out, "<a href=\"x\">Tom & Jerry's</a>");
  EXPECT_EQ(out, "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;");
}

TEST(StaticFiles, a_listing_is_sorted_and_escaped_with_directories_marked) {
  char tmpl[] = "/tmp/ringlet-static-files-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string root = tmpl;
  ::mkdir((root + "/d").c_str(), 0755);
  ::mkdir((root + "/d/sub dir").c_str(), 0755);
  std::ofstream(root + "/d/x<y>.txt") << "x";
  std::ofstream(root + "/d/a.txt") << "a";
  {
    auto files = FileCache::create(root, {});
    ASSERT_TRUE(files.ok());
    Result<std::string> html = render_listing(**files, "/d");
    ASSERT_TRUE(html.ok());
    EXPECT_EQ(*html,
              "<!DOCTYPE html>\n<html><head><title>Index of /d/</title></head><body><h1>Index of /d/</h1><hr><pre>\n"
              "<a href=\"../\">../</a>\n"
              "<a href=\"a.txt\">a.txt</a>\n"
              "<a href=\"sub%20dir/\">sub dir/</a>\n"
              "<a href=\"x%3Cy%3E.txt\">x&lt;y&gt;.txt</a>\n"
              "</pre><hr></body></html>\n");
    Result<std::string> missing = render_listing(**files, "/nope");
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().code, ENOENT);
  }
  ASSERT_EQ(std::system(("rm -rf '" + root + "'").c_str()), 0);
  EXPECT_EQ(BufferPool::local().outstanding(), 0u);
}

}  // namespace
}  // namespace ringlet::http
