// range.cpp — parses a Range header value and decides 200, 206 or 416.
#include "ringlet/http/range.hpp"

namespace ringlet::http {

namespace {

bool is_space(char c) noexcept { return c == ' ' || c == '\t'; }

// Reads 1*DIGIT at s[i..]; false when there is none or the value overflows 64 bits.
bool read_number(std::string_view s, std::size_t& i, std::uint64_t& out) noexcept {
  std::size_t start = i;
  std::uint64_t v = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    std::uint64_t d = static_cast<std::uint64_t>(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
    ++i;
  }
  out = v;
  return i > start;
}

bool unit_is_bytes(std::string_view unit) noexcept {
  if (unit.size() != 5) return false;
  for (std::size_t i = 0; i < 5; ++i) {
    char c = unit[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != "bytes"[i]) return false;
  }
  return true;
}

}  // namespace

RangeDecision evaluate_range(std::string_view header, std::uint64_t size) noexcept {
  RangeDecision ignore;
  RangeDecision invalid;
  invalid.outcome = RangeOutcome::unsatisfiable;
  std::size_t eq = header.find('=');
  if (eq == std::string_view::npos || !unit_is_bytes(header.substr(0, eq))) return ignore;
  std::string_view s = header.substr(eq + 1);
  int specs = 0;
  int satisfiable = 0;
  RangeDecision chosen;
  std::size_t i = 0;
  for (;;) {
    while (i < s.size() && (is_space(s[i]) || s[i] == ',')) ++i;  // empty list elements are allowed
    if (i == s.size()) break;
    if (++specs > kMaxRangeSpecs) return ignore;
    std::uint64_t first = 0;
    std::uint64_t last = 0;
    bool ok = true;
    if (s[i] == '-') {
      ++i;
      std::uint64_t suffix = 0;
      if (!read_number(s, i, suffix)) return invalid;
      if (suffix == 0 || size == 0) {
        ok = false;  // a zero-length suffix selects nothing
      } else {
        first = suffix >= size ? 0 : size - suffix;
        last = size - 1;
      }
    } else {
      if (!read_number(s, i, first) || i == s.size() || s[i] != '-') return invalid;
      ++i;
      if (i < s.size() && s[i] >= '0' && s[i] <= '9') {
        if (!read_number(s, i, last)) return invalid;
        if (last < first) return invalid;  // an invalid range-spec makes the whole header invalid
      } else {
        last = UINT64_MAX;
      }
      if (first >= size) {
        ok = false;
      } else if (last >= size) {
        last = size - 1;
      }
    }
    while (i < s.size() && is_space(s[i])) ++i;
    if (i < s.size() && s[i] != ',') return invalid;
    if (ok) {
      ++satisfiable;
      chosen.first = first;
      chosen.last = last;
    }
  }
  if (specs == 0) return invalid;
  if (satisfiable == 0) {
    chosen.outcome = RangeOutcome::unsatisfiable;
    return chosen;
  }
  if (satisfiable > 1) return ignore;
  chosen.outcome = RangeOutcome::single;
  return chosen;
}

}  // namespace ringlet::http
