// client.cpp — memcached reply lines, split into views (see client.hpp).
#include "ringlet/proto/memcache/client.hpp"

#include <limits>


namespace ringlet::memcache {

namespace {

// `line` is `word` alone or `word` followed by a space; `rest` gets what follows the space.
bool word_is(std::string_view line, std::string_view word, std::string_view& rest) noexcept {
  if (!line.starts_with(word)) return false;
  if (line.size() == word.size()) {
    rest = {};
    return true;
  }
  if (line[word.size()] != ' ') return false;
  rest = line.substr(word.size() + 1);
  return true;
}

struct Exact {
  std::string_view text;
  ReplyKind kind;
};

constexpr Exact kExact[] = {
    {wire::kEnd, ReplyKind::end},          {wire::kStored, ReplyKind::stored},
    {wire::kNotStored, ReplyKind::not_stored}, {wire::kExists, ReplyKind::exists},
    {wire::kNotFound, ReplyKind::not_found}, {wire::kDeleted, ReplyKind::deleted},
    {wire::kTouched, ReplyKind::touched},  {wire::kOk, ReplyKind::ok},
    {wire::kReset, ReplyKind::reset},      {wire::kError, ReplyKind::error},
};

// Meta codes that may carry returned flags.
constexpr Exact kMetaCodes[] = {
    {wire::kMetaHd, ReplyKind::meta_hd}, {wire::kMetaEn, ReplyKind::meta_en}, {wire::kMetaNf, ReplyKind::meta_nf},
    {wire::kMetaNs, ReplyKind::meta_ns}, {wire::kMetaEx, ReplyKind::meta_ex}, {wire::kMetaMn, ReplyKind::meta_mn},
};

void parse_value(std::string_view rest, ReplyLine& r) noexcept {
  Tokens t(rest);
  r.key = t.next();
  std::string_view flags = t.next();
  std::string_view bytes = t.next();
  std::string_view cas = t.next();
  std::uint64_t f = 0;
  r.well_formed = !r.key.empty() && parse_reply_number(flags, f) && f <= std::numeric_limits<std::uint32_t>::max() &&
                  parse_reply_number(bytes, r.length) && t.next().empty();
  r.client_flags = static_cast<std::uint32_t>(f);
  if (!cas.empty()) {
    r.has_cas = true;
    r.well_formed = r.well_formed && parse_reply_number(cas, r.cas);
  }
}

std::string_view trim_left(std::string_view s) noexcept {
  std::size_t b = s.find_first_not_of(' ');
  return b == std::string_view::npos ? std::string_view{} : s.substr(b);
}

}  // namespace

bool parse_reply_number(std::string_view text, std::uint64_t& out) noexcept { return parse_digits_u64(text, out); }

ReplyLine parse_reply_line(std::string_view line) noexcept {
  ReplyLine r;
  std::string_view rest;
  for (const Exact& e : kExact) {
    if (line == e.text) {
      r.kind = e.kind;
      return r;
    }
  }
  if (word_is(line, wire::kValue, rest)) {
    r.kind = ReplyKind::value;
    parse_value(rest, r);
    return r;
  }
  if (word_is(line, wire::kMetaValue, rest)) {
    r.kind = ReplyKind::meta_value;
    Tokens t(rest);
    r.well_formed = parse_reply_number(t.next(), r.length);
    r.meta_flags = trim_left(t.rest());
    return r;
  }
  for (const Exact& e : kMetaCodes) {
    if (word_is(line, e.text, rest)) {
      r.kind = e.kind;
      r.meta_flags = trim_left(rest);
      return r;
    }
  }
  if (word_is(line, wire::kClientError, rest)) {
    r.kind = ReplyKind::client_error;
    r.text = rest;
    return r;
  }
  if (word_is(line, wire::kServerError, rest)) {
    r.kind = ReplyKind::server_error;
    r.text = rest;
    return r;
  }
  if (word_is(line, wire::kVersion, rest)) {
    r.kind = ReplyKind::version;
    r.text = rest;
    return r;
  }
  if (word_is(line, wire::kStat, rest)) {
    r.kind = ReplyKind::stat;
    Tokens t(rest);
    r.name = t.next();
    r.text = trim_left(t.rest());
    r.well_formed = !r.name.empty();
    return r;
  }
  if (word_is(line, wire::kMetaMe, rest)) {
    r.kind = ReplyKind::meta_me;
    Tokens t(rest);
    r.key = t.next();
    r.text = trim_left(t.rest());
    r.well_formed = !r.key.empty();
    return r;
  }
  if (parse_reply_number(line, r.number)) {
    r.kind = ReplyKind::number;
    return r;
  }
  return r;
}

FlagToken find_meta_flag(std::string_view flags, char flag) noexcept {
  Tokens t(flags);
  for (std::string_view tok = t.next(); !tok.empty(); tok = t.next()) {
    if (tok[0] == flag) return {true, tok.substr(1)};
  }
  return {};
}

ReplyResult ReplyParser::parse(std::string_view data) noexcept {
  ReplyResult r;
  // A "\r\n" may start at the last byte searched: look again from there.
  std::size_t from = scan_;
  std::size_t at = data.find(wire::kCrlf, from);
  if (at == std::string_view::npos) {
    if (data.size() > std::size_t{max_line_} + 1) {
      r.status = ReplyResult::Status::too_long;
      return r;
    }
    scan_ = static_cast<std::uint32_t>(data.empty() ? 0 : data.size() - 1);
    return r;
  }
  if (at > max_line_) {
    r.status = ReplyResult::Status::too_long;
    return r;
  }
  line_ = parse_reply_line(data.substr(0, at));
  r.status = ReplyResult::Status::complete;
  r.consumed = static_cast<std::uint32_t>(at + 2);
  return r;
}

}  // namespace ringlet::memcache
