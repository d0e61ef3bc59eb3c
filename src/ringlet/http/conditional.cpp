// conditional.cpp — entity-tag lists and the precondition order of RFC 9110 §13.2.2.
#include "ringlet/http/conditional.hpp"

#include "ringlet/proto/http/date.hpp"

namespace ringlet::http {

namespace {

bool is_space(char c) noexcept { return c == ' ' || c == '\t'; }

std::size_t put_hex(std::uint64_t v, char* out) noexcept {
  char tmp[16];
  std::size_t n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v != 0);
  for (std::size_t i = 0; i < n; ++i) out[i] = tmp[n - 1 - i];
  return n;
}

// One entity-tag at s[i..]: [W/]"opaque" (etagc excludes '"', controls and DEL). Sets `tag` to the quoted part.
bool read_etag(std::string_view s, std::size_t& i, std::string_view& tag, bool& weak) noexcept {
  weak = false;
  if (s.substr(i, 2) == "W/") {
    weak = true;
    i += 2;
  }
  if (i >= s.size() || s[i] != '"') return false;
  std::size_t start = i++;
  while (i < s.size() && s[i] != '"') {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x21 || c == 0x7f) return false;
    ++i;
  }
  if (i >= s.size()) return false;
  ++i;
  tag = s.substr(start, i - start);
  return true;
}

}  // namespace

std::size_t make_etag(std::int64_t mtime_seconds, std::uint64_t size, char* out) noexcept {
  std::size_t n = 0;
  out[n++] = '"';
  n += put_hex(static_cast<std::uint64_t>(mtime_seconds), out + n);
  out[n++] = '-';
  n += put_hex(size, out + n);
  out[n++] = '"';
  return n;
}

bool etag_list_matches(std::string_view list, std::string_view etag, EtagComparison comparison) noexcept {
  std::size_t i = 0;
  while (i < list.size() && is_space(list[i])) ++i;
  if (i < list.size() && list[i] == '*') {
    ++i;
    while (i < list.size() && is_space(list[i])) ++i;
    return i == list.size();
  }
  bool matched = false;
  for (;;) {
    while (i < list.size() && (is_space(list[i]) || list[i] == ',')) ++i;
    if (i == list.size()) return matched;
    std::string_view tag;
    bool weak = false;
    if (!read_etag(list, i, tag, weak)) return false;
    if (tag == etag && (comparison == EtagComparison::weak || !weak)) matched = true;
    while (i < list.size() && is_space(list[i])) ++i;
    if (i < list.size() && list[i] != ',') return false;
  }
}

Precondition evaluate_preconditions(const ConditionalHeaders& h, const Validators& v, bool safe_method) noexcept {
  // 1-2: the client's copy must still be current (lost-update protection); 412 otherwise.
  if (h.if_match) {
    if (!etag_list_matches(*h.if_match, v.etag, EtagComparison::strong)) return Precondition::failed;
  } else if (h.if_unmodified_since) {
    std::optional<std::int64_t> date = parse_http_date(*h.if_unmodified_since);
    if (date && v.mtime > *date) return Precondition::failed;
  }
  // 3-4: the client's cached copy is still current: 304 instead of the body.
  if (h.if_none_match) {
    if (etag_list_matches(*h.if_none_match, v.etag, EtagComparison::weak)) {
      return safe_method ? Precondition::not_modified : Precondition::failed;
    }
  } else if (h.if_modified_since && safe_method) {
    std::optional<std::int64_t> date = parse_http_date(*h.if_modified_since);
    if (date && *date <= v.now && v.mtime <= *date) return Precondition::not_modified;
  }
  return Precondition::proceed;
}

bool if_range_allows(const ConditionalHeaders& h, const Validators& v) noexcept {
  if (!h.if_range) return true;
  std::string_view value = *h.if_range;
  while (!value.empty() && is_space(value.front())) value.remove_prefix(1);
  while (!value.empty() && is_space(value.back())) value.remove_suffix(1);
  if (!value.empty() && (value.front() == '"' || value.substr(0, 2) == "W/")) {
    std::size_t i = 0;
    std::string_view tag;
    bool weak = false;
    return read_etag(value, i, tag, weak) && i == value.size() && !weak && tag == v.etag;
  }
  std::optional<std::int64_t> date = parse_http_date(value);
  return date && *date == v.mtime;
}

}  // namespace ringlet::http
