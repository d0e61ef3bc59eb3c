#include "ringlet/http/mime.hpp"

#include <gtest/gtest.h>

namespace ringlet::http {
namespace {

TEST(Mime, known_extensions_map_to_their_types) {
  struct Case {
    const char* path;
    const char* type;
  } cases[] = {
      {"/index.html", "text/html"},     {"/a/b.htm", "text/html"},        {"style.css", "text/css"},
      {"/x.txt", "text/plain"},         {"/data.json", "application/json"}, {"/p.PNG", "image/png"},
      {"/p.JpEg", "image/jpeg"},        {"/f.woff2", "font/woff2"},       {"/a.svg", "image/svg+xml"},
      {"/app.js", "text/javascript"},   {"/x.wasm", "application/wasm"},
  };
  for (const Case& c : cases) EXPECT_EQ(content_type_for(c.path), c.type) << c.path;
}

TEST(Mime, unknown_or_missing_extensions_are_octet_stream) {
  for (const char* path : {"/file13", "/a.unknownext", "/dir.d/file", "/trailingdot.", "/", "", ".hidden",
                           "/x.thisextensioniswaytoolong"}) {
    EXPECT_EQ(content_type_for(path), kDefaultContentType) << path;
  }
}

TEST(Mime, only_the_last_segment_counts) {
  EXPECT_EQ(content_type_for("/site.html/readme"), kDefaultContentType);
  EXPECT_EQ(content_type_for("/archive.tar.gz"), "application/gzip");
}

}  // namespace
}  // namespace ringlet::http
