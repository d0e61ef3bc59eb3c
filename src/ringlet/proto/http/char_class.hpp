// char_class.hpp — byte classes of the HTTP grammar (RFC 9110 §5.6, RFC 9112, RFC 3986) as lookup tables.
// Internal to src/ringlet/proto/http/ and http/; constant data, thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace ringlet::http::detail {

enum CharClass : std::uint8_t {
  kTchar = 1 << 0,       // token character
  kFieldValue = 1 << 1,  // field-vchar, obs-text, SP, HTAB
  kTarget = 1 << 2,      // request-target byte we accept: VCHAR except '#', and obs-text
  kHost = 1 << 3,        // RFC 3986 host[:port] (reg-name, IP-literal, IPv4, port): no '@', '/', '?'
  kHex = 1 << 4,
  kScheme = 1 << 5,  // ALPHA DIGIT + - .
};

constexpr std::array<std::uint8_t, 256> make_char_classes() {
  std::array<std::uint8_t, 256> t{};
  auto add = [&t](std::string_view chars, std::uint8_t cls) {
    for (char c : chars) t[static_cast<unsigned char>(c)] |= cls;
  };
  constexpr std::string_view alpha = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  constexpr std::string_view digit = "0123456789";
  add(alpha, kTchar | kHost | kScheme);
  add(digit, kTchar | kHost | kScheme);
  add("!#$%&'*+-.^_`|~", kTchar);
  add("-._~!$&'()*+,;=%:[]", kHost);
  add("+-.", kScheme);
  add("0123456789abcdefABCDEF", kHex);
  for (int c = 0x21; c <= 0x7e; ++c) t[c] |= kFieldValue | kTarget;
  for (int c = 0x80; c <= 0xff; ++c) t[c] |= kFieldValue | kTarget;
  t[' '] |= kFieldValue;
  t['\t'] |= kFieldValue;
  t['#'] &= static_cast<std::uint8_t>(~kTarget);
  return t;
}

inline constexpr std::array<std::uint8_t, 256> kCharClasses = make_char_classes();

inline bool is(char c, CharClass cls) noexcept { return (kCharClasses[static_cast<unsigned char>(c)] & cls) != 0; }

inline char to_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c; }

inline int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Removes optional whitespace (SP / HTAB) at both ends.
inline std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Calls fn(element) for each element of a comma-separated list (RFC 9110 §5.6.1), OWS trimmed, empty elements
// included (callers decide whether an empty element is an error). Stops early when fn returns false.
template <class Fn>
bool for_each_list_element(std::string_view list, Fn&& fn) {
  for (;;) {
    std::size_t comma = list.find(',');
    if (!fn(trim_ows(list.substr(0, comma)))) return false;
    if (comma == std::string_view::npos) return true;
    list.remove_prefix(comma + 1);
  }
}

}  // namespace ringlet::http::detail
