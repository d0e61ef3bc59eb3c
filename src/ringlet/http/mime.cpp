// mime.cpp — the extension table behind content_type_for().
#include "ringlet/http/mime.hpp"

#include <array>
#include <cstddef>

namespace ringlet::http {

namespace {

struct MimeEntry {
  std::string_view extension;  // lower case, without the dot
  std::string_view type;
};

// Sorted by extension: looked up by binary search. Keep it sorted when adding a line (a unit test checks).
constexpr std::array<MimeEntry, 46> kTable{{
    {"7z", "application/x-7z-compressed"},
    {"avif", "image/avif"},
    {"bmp", "image/bmp"},
    {"css", "text/css"},
    {"csv", "text/csv"},
    {"gif", "image/gif"},
    {"gz", "application/gzip"},
    {"htm", "text/html"},
    {"html", "text/html"},
    {"ico", "image/x-icon"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"md", "text/markdown"},
    {"mjs", "text/javascript"},
    {"mov", "video/quicktime"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"oga", "audio/ogg"},
    {"ogg", "audio/ogg"},
    {"ogv", "video/ogg"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"rss", "application/rss+xml"},
    {"svg", "image/svg+xml"},
    {"tar", "application/x-tar"},
    {"tif", "image/tiff"},
    {"tiff", "image/tiff"},
    {"ttf", "font/ttf"},
    {"txt", "text/plain"},
    {"wasm", "application/wasm"},
    {"wav", "audio/wav"},
    {"weba", "audio/webm"},
    {"webm", "video/webm"},
    {"webmanifest", "application/manifest+json"},
    {"webp", "image/webp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xhtml", "application/xhtml+xml"},
    {"xml", "application/xml"},
    {"yaml", "application/yaml"},
    {"yml", "application/yaml"},
    {"zip", "application/zip"},
}};

constexpr bool table_is_sorted() {
  for (std::size_t i = 1; i < kTable.size(); ++i) {
    if (!(kTable[i - 1].extension < kTable[i].extension)) return false;
  }
  return true;
}
static_assert(table_is_sorted(), "kTable must stay sorted by extension");

}  // namespace

std::string_view content_type_for(std::string_view path) noexcept {
  std::size_t slash = path.rfind('/');
  std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  std::size_t dot = name.rfind('.');
  if (dot == std::string_view::npos || dot + 1 == name.size()) return kDefaultContentType;
  std::string_view ext = name.substr(dot + 1);
  constexpr std::size_t kLongest = 16;
  if (ext.size() > kLongest) return kDefaultContentType;
  char lower[kLongest];
  for (std::size_t i = 0; i < ext.size(); ++i) {
    char c = ext[i];
    lower[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  std::string_view key(lower, ext.size());
  std::size_t lo = 0;
  std::size_t hi = kTable.size();
  while (lo < hi) {
    std::size_t mid = (lo + hi) / 2;
    if (kTable[mid].extension < key) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo < kTable.size() && kTable[lo].extension == key) return kTable[lo].type;
  return kDefaultContentType;
}

}  // namespace ringlet::http
