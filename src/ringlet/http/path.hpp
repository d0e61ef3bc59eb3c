// path.hpp — turning a request target into a safe path below the document root. Pure; core-agnostic.
//
// The rules (the same outcome as nginx for every case, checked by tests/integration/http_vs_nginx_test.cpp):
//  - the input is the still-encoded path of an origin- or absolute-form target (Request::path(): the parser has
//    split off the query and the authority); one that does not start with '/' is 400;
//  - %XX escapes are decoded (hex digits in either case); a '%' not followed by two hex digits is 400, and so is
//    an encoded NUL (%00), which no file name can contain;
//  - an encoded slash (%2F) decodes to '/', like nginx, and is then subject to the same dot-segment rules, so
//    "/a%2F..%2F..%2Fetc/passwd" cannot climb out: dot segments are resolved *after* decoding;
//  - "." segments are dropped, empty segments ("//") are merged, ".." removes the segment before it; a ".." that
//    would climb above the root is 400;
//  - the result always starts with '/', and `trailing_slash` says whether the decoded path ended in '/' (the root
//    "/" counts as ending in one): a directory asked for without it is redirected.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ringlet::http {

struct NormalizedPath {
  std::uint16_t status = 0;      // 0: ok; 400 when the path is malformed or climbs above the root
  bool trailing_slash = false;
};

// Decodes and normalises an encoded path into `out`, which is cleared first and never grows
// beyond encoded.size() + 1 bytes (so a reused string with that capacity does not allocate).
NormalizedPath normalize_path(std::string_view encoded, std::string& out);

}  // namespace ringlet::http
