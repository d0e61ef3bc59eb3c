// request_parser.cpp — memcached request lines (see request_parser.hpp for the rules).
#include "ringlet/proto/memcache/request_parser.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "ringlet/buf/slice_queue.hpp"
#include "ringlet/proto/memcache/reply.hpp"

namespace ringlet::memcache {

namespace {

// ---- numbers and keys ------------------------------------------------------------------------------------------

// Decimal digits with an optional '+' (what strtoul accepts in a token); false on overflow or anything else.
bool parse_u64(std::string_view t, std::uint64_t& out) noexcept {
  if (!t.empty() && t[0] == '+') t.remove_prefix(1);
  return parse_digits_u64(t, out);
}

bool parse_u32(std::string_view t, std::uint32_t& out) noexcept {
  std::uint64_t v = 0;
  if (!parse_u64(t, v) || v > std::numeric_limits<std::uint32_t>::max()) return false;
  out = static_cast<std::uint32_t>(v);
  return true;
}

bool parse_i64(std::string_view t, std::int64_t& out) noexcept {
  bool negative = !t.empty() && t[0] == '-';
  if (negative) {
    t.remove_prefix(1);
    if (!t.empty() && t[0] == '+') return false;
  }
  std::uint64_t v = 0;
  if (!parse_u64(t, v)) return false;
  constexpr std::uint64_t kMax = std::numeric_limits<std::int64_t>::max();
  if (v > kMax + (negative ? 1 : 0)) return false;
  out = negative ? static_cast<std::int64_t>(0 - v) : static_cast<std::int64_t>(v);
  return true;
}

bool parse_i32(std::string_view t, std::int32_t& out) noexcept {
  std::int64_t v = 0;
  if (!parse_i64(t, v) || v < std::numeric_limits<std::int32_t>::min() ||
      v > std::numeric_limits<std::int32_t>::max()) {
    return false;
  }
  out = static_cast<std::int32_t>(v);
  return true;
}

bool valid_key(std::string_view key) noexcept {
  if (key.empty() || key.size() > kMaxKeyLength) return false;
  for (char c : key) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return false;
  }
  return true;
}

constexpr std::string_view kNoreply = "noreply";

// ---- results ---------------------------------------------------------------------------------------------------

struct Line {
  Line() noexcept {}  // leaves `tokens` unwritten (below)
  std::string_view text;     // without the line end
  std::uint32_t consumed;    // with it
  // The first tokens (enough for every fixed-arity command). In a union so that they are not zeroed: only the first
  // min(count, 20) are ever read (each syntax reads past the command name only after the arity check or a check of
  // count), and zeroing 20 views was a fifth of parsing a short mg line (a rep stos of 320 bytes per line, #10).
  union {
    std::string_view tokens[kMaxMetaTokens + 1];
  };
  std::size_t count = 0;     // all tokens, even those beyond the array
  std::string_view after_command;  // the text after the command token
};

ParseResult complete(const Line& l) noexcept {
  ParseResult r;
  r.status = ParseStatus::complete;
  r.consumed = l.consumed;
  return r;
}

ParseResult fail(const Line& l, ParseError e, std::string_view reply, std::uint64_t swallow = 0,
                 bool noreply = false) noexcept {
  ParseResult r;
  r.status = ParseStatus::error;
  r.error = e;
  r.consumed = l.consumed;
  r.reply = reply;
  r.swallow = swallow;
  r.noreply = noreply;
  return r;
}

ParseResult client_error(const Line& l, std::string_view reply, bool noreply = false) noexcept {
  return fail(l, ParseError::client_error, reply, 0, noreply);
}

bool last_is_noreply(const Line& l, std::size_t at) noexcept {
  return l.count == at + 1 && l.tokens[at] == kNoreply;
}

// ---- one function per syntax -----------------------------------------------------------------------------------

ParseResult keys_from(const Line& l, std::string_view keys, Request& r) noexcept {
  Tokens t(keys);
  std::uint32_t n = 0;
  for (std::string_view k = t.next(); !k.empty(); k = t.next()) {
    if (!valid_key(k)) return client_error(l, wire::kBadCommandLineFormat);
    if (n++ == 0) r.key = k;
  }
  r.keys = keys.substr(keys.find_first_not_of(' '));
  r.key_count = n;
  return complete(l);
}

ParseResult parse_retrieval(const Line& l, const RequestLimits&, Request& r) noexcept {
  return keys_from(l, l.after_command, r);
}

ParseResult parse_touch_retrieval(const Line& l, const RequestLimits&, Request& r) noexcept {
  if (!parse_i64(l.tokens[1], r.exptime)) return client_error(l, wire::kInvalidExptime);
  Tokens t(l.after_command);
  t.next();  // the exptime
  return keys_from(l, t.rest(), r);
}

ParseResult parse_storage(const Line& l, const RequestLimits& limits, Request& r) noexcept {
  const bool cas = r.spec->syntax == Syntax::cas;
  const std::size_t noreply_at = cas ? 6 : 5;
  r.noreply = last_is_noreply(l, noreply_at);
  r.key = l.tokens[1];
  std::int64_t bytes = 0;
  if (!valid_key(r.key) || !parse_u32(l.tokens[2], r.client_flags) || !parse_i64(l.tokens[3], r.exptime) ||
      !parse_i64(l.tokens[4], bytes) || bytes < 0 || bytes > std::numeric_limits<std::int32_t>::max() - 2 ||
      (cas && !parse_u64(l.tokens[5], r.cas_unique))) {
    return client_error(l, wire::kBadCommandLineFormat, r.noreply);
  }
  r.data_length = static_cast<std::uint32_t>(bytes);
  if (r.data_length > limits.max_data_length) {
    return fail(l, ParseError::too_large, wire::kTooLarge, r.data_block(), r.noreply);
  }
  return complete(l);
}

ParseResult parse_delete(const Line& l, const RequestLimits&, Request& r) noexcept {
  r.key = l.tokens[1];
  if (l.count > 2) {
    // delete <key> 0 | delete <key> noreply | delete <key> 0 noreply (the "0" is a long-gone hold time).
    const bool zero = l.tokens[2] == "0";
    r.noreply = l.tokens[l.count - 1] == kNoreply;
    const bool ok = (l.count == 3 && (zero || r.noreply)) || (l.count == 4 && zero && r.noreply);
    if (!ok) return client_error(l, wire::kDeleteUsage, r.noreply);
  }
  if (!valid_key(r.key)) return client_error(l, wire::kBadCommandLineFormat, r.noreply);
  return complete(l);
}

ParseResult parse_arithmetic(const Line& l, const RequestLimits&, Request& r) noexcept {
  r.noreply = last_is_noreply(l, 3);
  r.key = l.tokens[1];
  if (!valid_key(r.key)) return client_error(l, wire::kBadCommandLineFormat, r.noreply);
  if (!parse_u64(l.tokens[2], r.delta)) return client_error(l, wire::kInvalidDeltaArgument, r.noreply);
  return complete(l);
}

ParseResult parse_touch(const Line& l, const RequestLimits&, Request& r) noexcept {
  r.noreply = last_is_noreply(l, 3);
  r.key = l.tokens[1];
  if (!valid_key(r.key)) return client_error(l, wire::kBadCommandLineFormat, r.noreply);
  if (!parse_i64(l.tokens[2], r.exptime)) return client_error(l, wire::kInvalidExptime, r.noreply);
  return complete(l);
}

ParseResult parse_flush_all(const Line& l, const RequestLimits&, Request& r) noexcept {
  r.noreply = l.count > 1 && l.tokens[l.count - 1] == kNoreply;
  // Like memcached: anything but "flush_all" and "flush_all noreply" has a delay first ("flush_all 1 2" too).
  if (l.count != (r.noreply ? 2u : 1u)) {
    if (!parse_i64(l.tokens[1], r.exptime)) return client_error(l, wire::kInvalidExptime, r.noreply);
    r.has_delay = true;
  }
  return complete(l);
}

ParseResult parse_verbosity(const Line& l, const RequestLimits&, Request& r) noexcept {
  r.noreply = l.tokens[l.count - 1] == kNoreply;
  if (!parse_u32(l.tokens[1], r.verbosity)) return client_error(l, wire::kBadCommandLineFormat, r.noreply);
  return complete(l);
}

ParseResult parse_bare(const Line& l, const RequestLimits&, Request&) noexcept { return complete(l); }

ParseResult parse_stats(const Line& l, const RequestLimits&, Request& r) noexcept {
  std::string_view a = l.after_command;
  std::size_t b = a.find_first_not_of(' ');
  r.args = b == std::string_view::npos ? std::string_view{} : a.substr(b);
  return complete(l);
}

bool valid_base64(std::string_view t) noexcept {
  if (t.empty() || t.size() % 4 != 0) return false;
  std::size_t pad = 0;
  for (std::size_t i = 0; i < t.size(); ++i) {
    char c = t[i];
    if (c == '=') {
      ++pad;
      continue;
    }
    const bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
                       c == '/';
    if (!alpha || pad != 0) return false;  // '=' only at the end
  }
  return pad <= 2;
}

// Validates the flag tokens of a meta command. Returns the error line, or an empty view.
std::string_view parse_meta_flags(std::string_view text, Command command, FlagSet accepted, MetaFlags& m) noexcept {
  m.text = text;
  Tokens t(text);
  for (std::string_view tok = t.next(); !tok.empty(); tok = t.next()) {
    const char flag = tok[0];
    if (!accepted.has(flag)) return wire::kInvalidFlag;
    if (m.set.has(flag)) return wire::kDuplicateFlag;
    m.set.add(flag);
    std::string_view arg = tok.substr(1);
    switch (meta_arg(flag)) {
      case MetaArg::none:
      case MetaArg::ignored:
        break;
      case MetaArg::ttl: {
        std::int32_t* dst = flag == 'T' ? &m.ttl : flag == 'N' ? &m.vivify_ttl : &m.recache_ttl;
        if (!parse_i32(arg, *dst)) return wire::kBadToken;
        break;
      }
      case MetaArg::u32:
        if (!parse_u32(arg, m.client_flags)) return wire::kBadCommandLineFormat;
        break;
      case MetaArg::u64:
        if (flag == 'C' && !parse_u64(arg, m.compare_cas)) return wire::kBadToken;
        if (flag == 'E' && !parse_u64(arg, m.new_cas)) return wire::kBadToken;
        if (flag == 'J' && !parse_u64(arg, m.initial)) return wire::kInvalidInitialValue;
        if (flag == 'D' && !parse_u64(arg, m.delta)) return wire::kInvalidDeltaValue;
        break;
      case MetaArg::opaque:
        if (arg.size() > kMaxOpaque) return wire::kOpaqueTooLong;
        m.opaque = arg;
        break;
      case MetaArg::mode: {
        if (arg.size() != 1) return wire::kModeLength;
        m.mode = arg[0];
        constexpr std::string_view kMsModes = "EAPRS";
        constexpr std::string_view kMaModes = "I+D-";
        if (command == Command::ms && kMsModes.find(m.mode) == std::string_view::npos) return wire::kInvalidMsMode;
        if (command == Command::ma && kMaModes.find(m.mode) == std::string_view::npos) return wire::kInvalidMaMode;
        break;
      }
    }
  }
  return {};
}

ParseResult parse_meta(const Line& l, const RequestLimits& limits, Request& r) noexcept {
  r.key = l.tokens[1];
  const bool set = r.command == Command::ms;
  std::uint64_t swallow = 0;
  Tokens t(l.after_command);
  t.next();  // the key
  if (set) {
    std::int64_t bytes = 0;
    if (l.count < 3 || !valid_key(r.key) || !parse_i64(l.tokens[2], bytes) || bytes < 0 ||
        bytes > std::numeric_limits<std::int32_t>::max() - 2) {
      return client_error(l, wire::kBadCommandLineFormat);
    }
    r.data_length = static_cast<std::uint32_t>(bytes);
    swallow = r.data_block();
    t.next();  // the datalen
  }
  if (!valid_key(r.key)) return fail(l, ParseError::client_error, wire::kBadCommandLineFormat, swallow);
  if (l.count > kMaxMetaTokens) {
    // memcached's ms words this one differently, and does not swallow the block.
    if (set) return client_error(l, wire::kMsOptionsTooLong);
    return client_error(l, wire::kOptionsTooLong);
  }
  std::string_view flags = t.rest();
  std::size_t b = flags.find_first_not_of(' ');
  flags = b == std::string_view::npos ? std::string_view{} : flags.substr(b);
  if (r.command == Command::me) {
    // memcached's me looks only for a 'b' right after the key and ignores the rest.
    r.meta.text = flags;
    if (flags.starts_with('b')) r.meta.set.add('b');
    if (r.meta.has('b') && !valid_base64(r.key)) return client_error(l, wire::kBadCommandLineFormat);
    return complete(l);
  }
  std::string_view err = parse_meta_flags(flags, r.command, r.spec->meta_flags, r.meta);
  if (!err.empty()) {
    // memcached's md and ma have one message for every flag error.
    if (r.command == Command::md || r.command == Command::ma) err = wire::kInvalidOrDuplicateFlag;
    return fail(l, ParseError::client_error, err, swallow);
  }
  if (r.meta.has('b') && !valid_base64(r.key)) {
    return fail(l, ParseError::client_error, wire::kKeyDecodeError, swallow);
  }
  if (set && r.data_length > limits.max_data_length) {
    return fail(l, ParseError::too_large, wire::kTooLarge, swallow);
  }
  return complete(l);
}

ParseResult parse_meta_noop(const Line& l, const RequestLimits&, Request&) noexcept { return complete(l); }

using SyntaxParser = ParseResult (*)(const Line&, const RequestLimits&, Request&) noexcept;

// Indexed by Syntax.
constexpr SyntaxParser kSyntaxParsers[] = {
    parse_retrieval,  parse_touch_retrieval, parse_storage, parse_storage, parse_delete,
    parse_arithmetic, parse_touch,           parse_flush_all, parse_verbosity, parse_bare,
    parse_stats,      parse_meta,            parse_meta,    parse_meta_noop,
};
static_assert(std::size(kSyntaxParsers) == static_cast<std::size_t>(Syntax::meta_noop) + 1);

bool starts_a_get(std::string_view data) noexcept {
  std::size_t b = data.find_first_not_of(' ');
  if (b == std::string_view::npos) return false;
  data.remove_prefix(b);
  return data.starts_with("get ") || data.starts_with("gets ");
}

}  // namespace

std::string_view MetaFlags::token(char flag) const noexcept {
  if (!set.has(flag)) return {};
  Tokens t(text);
  for (std::string_view tok = t.next(); !tok.empty(); tok = t.next()) {
    if (tok[0] == flag) return tok.substr(1);
  }
  return {};
}

ParseResult parse_line(std::string_view text, std::uint32_t consumed, const RequestLimits& limits,
                       Request& out) noexcept {
  out = Request{};
  Line l;
  l.text = text;
  l.consumed = consumed;
  Tokens t(text);
  for (std::string_view tok = t.next(); !tok.empty(); tok = t.next()) {
    if (l.count < std::size(l.tokens)) l.tokens[l.count] = tok;
    if (l.count == 0) l.after_command = t.rest();
    ++l.count;
  }
  const CommandSpec* spec = l.count == 0 ? nullptr : find_command(l.tokens[0]);
  if (spec == nullptr || l.count < spec->min_tokens ||
      (spec->max_tokens != kUnbounded && l.count > spec->max_tokens)) {
    return fail(l, ParseError::unknown_command, wire::kError);
  }
  out.spec = spec;
  out.command = spec->command;
  return kSyntaxParsers[static_cast<std::size_t>(spec->syntax)](l, limits, out);
}

ParseResult parse_line_after(std::string_view line, std::uint32_t consumed, const RequestLimits& limits,
                             const Request& previous, Request& out) noexcept {
  const Command c = previous.command;
  const bool repeatable = c == Command::mg || c == Command::md || c == Command::ma;
  // "<cm> <key>": one space, as the key must start at byte 3 (a run of spaces goes the long way).
  if (!repeatable || previous.meta.has('b') || line.size() < 4 || line[0] != to_string(c)[0] ||
      line[1] != to_string(c)[1] || line[2] != ' ' || line[3] == ' ') {
    return parse_line(line, consumed, limits, out);
  }
  std::size_t key_end = 4;
  while (key_end < line.size() && line[key_end] != ' ') ++key_end;
  std::size_t flags_at = key_end;
  while (flags_at < line.size() && line[flags_at] == ' ') ++flags_at;
  const std::string_view key = line.substr(3, key_end - 3);
  // No flags: an empty view with no data, as parse_meta gives.
  const std::string_view flags = flags_at == line.size() ? std::string_view{} : line.substr(flags_at);
  // Same flags, same token count, so the same arity and option-count verdicts; only the key is checked.
  if (flags != previous.meta.text || !valid_key(key)) return parse_line(line, consumed, limits, out);
  const bool opaque = previous.meta.has('O');  // its argument may be empty, a view at the token's end all the same
  const std::size_t opaque_at =
      opaque ? static_cast<std::size_t>(previous.meta.opaque.data() - previous.meta.text.data()) : 0;
  if (&out != &previous) out = previous;
  out.key = key;
  out.meta.text = flags;
  if (opaque) out.meta.opaque = flags.substr(opaque_at, out.meta.opaque.size());
  ParseResult r;
  r.status = ParseStatus::complete;
  r.consumed = consumed;
  return r;
}

ParseResult RequestParser::parse(std::string_view data) noexcept {
  if (done_) {
    // Rebase the views onto the (possibly moved) bytes: parse the same line again, cheap and rare.
    if (result_.consumed != 0) {
      std::string_view line = data.substr(0, result_.consumed - 1);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      parse_line(line, result_.consumed, limits_, req_);
    }
    return result_;
  }
  const char* nl = static_cast<const char*>(std::memchr(data.data() + scan_, '\n', data.size() - scan_));
  const std::size_t end = nl == nullptr ? data.size() : static_cast<std::size_t>(nl - data.data());
  // Decided on the bytes before the '\n' only, so the verdict does not depend on how the input was split.
  const std::size_t limit = starts_a_get(data) ? limits_.max_get_line : limits_.max_line;
  if (end > limit) {
    done_ = true;
    result_ = ParseResult{};
    result_.status = ParseStatus::error;
    result_.error = ParseError::line_too_long;
    return result_;
  }
  if (nl == nullptr) {
    scan_ = static_cast<std::uint32_t>(data.size());
    return ParseResult{};
  }
  scan_ = static_cast<std::uint32_t>(end);
  std::string_view line = data.substr(0, end);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  result_ = parse_line(line, static_cast<std::uint32_t>(end + 1), limits_, req_);
  done_ = true;
  return result_;
}

std::uint64_t skip_bytes(SliceQueue& in, std::uint64_t n) noexcept {
  const std::uint64_t now = std::min<std::uint64_t>(n, in.bytes());
  in.consume(static_cast<std::size_t>(now));
  return n - now;
}

std::size_t decode_base64(std::string_view text, char* out, std::size_t out_size) noexcept {
  if (!valid_base64(text)) return 0;
  auto value = [](char c) -> std::uint32_t {
    if (c >= 'A' && c <= 'Z') return static_cast<std::uint32_t>(c - 'A');
    if (c >= 'a' && c <= 'z') return static_cast<std::uint32_t>(c - 'a' + 26);
    if (c >= '0' && c <= '9') return static_cast<std::uint32_t>(c - '0' + 52);
    return c == '+' ? 62u : 63u;
  };
  std::size_t n = 0;
  for (std::size_t i = 0; i < text.size(); i += 4) {
    std::uint32_t group = 0;
    std::size_t bytes = 3;
    for (std::size_t j = 0; j < 4; ++j) {
      char c = text[i + j];
      if (c == '=') {
        --bytes;
        group <<= 6;
      } else {
        group = group << 6 | value(c);
      }
    }
    if (n + bytes > out_size) return 0;
    for (std::size_t j = 0; j < bytes; ++j) out[n++] = static_cast<char>(group >> (16 - 8 * j) & 0xff);
  }
  return n;
}

}  // namespace ringlet::memcache
