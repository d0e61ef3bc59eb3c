// path.cpp — percent-decoding and dot-segment removal in one pass over the target.
#include "ringlet/http/path.hpp"

namespace ringlet::http {

namespace {

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Called at every '/' of the decoded output and at the end: looks at the segment just written (after the last
// '/' before it) and drops it if it is "." or resolves it if it is "..". Returns false when ".." climbs above "/".
bool close_segment(std::string& out) noexcept {
  std::size_t start = out.rfind('/') + 1;  // out always starts with '/'
  std::string_view seg(out.data() + start, out.size() - start);
  if (seg == ".") {
    out.resize(start);
  } else if (seg == "..") {
    if (start == 1) return false;  // "/.." : above the root
    std::size_t parent = out.rfind('/', start - 2);
    out.resize(parent + 1);
  }
  return true;
}

}  // namespace

NormalizedPath normalize_path(std::string_view encoded, std::string& out) {
  out.clear();
  NormalizedPath result;
  if (encoded.empty() || encoded[0] != '/') {
    result.status = 400;
    return result;
  }
  out.reserve(encoded.size() + 1);
  out.push_back('/');
  for (std::size_t i = 1; i < encoded.size(); ++i) {
    char c = encoded[i];
    if (c == '%') {
      int hi = i + 2 < encoded.size() ? hex_value(encoded[i + 1]) : -1;
      int lo = hi >= 0 ? hex_value(encoded[i + 2]) : -1;
      if (lo < 0) {
        result.status = 400;
        return result;
      }
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
      if (c == '\0') {
        result.status = 400;
        return result;
      }
    } else if (c == '\0') {
      result.status = 400;
      return result;
    }
    if (c == '/') {
      if (!close_segment(out)) {
        result.status = 400;
        return result;
      }
      if (out.back() != '/') out.push_back('/');  // merges "//"
      continue;
    }
    out.push_back(c);
  }
  if (!close_segment(out)) {
    result.status = 400;
    return result;
  }
  result.trailing_slash = out.back() == '/';
  if (out.size() > 1 && result.trailing_slash) out.pop_back();
  return result;
}

}  // namespace ringlet::http
