// parser.cpp — the request-head parser: one pass over each line, as it completes. See parser.hpp for the rules.
#include "ringlet/proto/http/parser.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include "ringlet/proto/http/char_class.hpp"
#include "ringlet/base/fatal.hpp"

namespace ringlet::http {

namespace {

using detail::is;

// Reasons are static strings: pointer-comparable, free to return.
constexpr const char* kBareCr = "bare CR or bad line ending";
constexpr const char* kBareLf = "bare LF line ending (strict_crlf)";
constexpr const char* kTooManyEmptyLines = "too many empty lines before the request line";
constexpr const char* kRequestLineTooLong = "request line too long";
constexpr const char* kBadMethod = "invalid method";
constexpr const char* kBadTarget = "invalid request-target";
constexpr const char* kBadVersion = "invalid HTTP version";
constexpr const char* kVersionNotSupported = "HTTP version not supported";
constexpr const char* kHeadersTooLarge = "header section too large";
constexpr const char* kHeaderLineTooLong = "header field line too long";
constexpr const char* kTooManyHeaders = "too many header fields";
constexpr const char* kObsFold = "obs-fold (line starting with whitespace)";
constexpr const char* kSpaceBeforeColon = "whitespace between field name and colon";
constexpr const char* kBadFieldName = "invalid field name";
constexpr const char* kBadFieldValue = "invalid byte in field value";
constexpr const char* kHostMissing = "Host missing";
constexpr const char* kHostRepeated = "Host repeated";
constexpr const char* kBadHost = "invalid Host";
constexpr const char* kBadContentLength = "invalid Content-Length";
constexpr const char* kConflictingContentLength = "conflicting Content-Length values";
constexpr const char* kLengthAndChunked = "both Content-Length and Transfer-Encoding";
constexpr const char* kTransferEncodingHttp10 = "Transfer-Encoding in an HTTP/1.0 request";
constexpr const char* kChunkedNotFinal = "Transfer-Encoding: chunked is not the final coding";
constexpr const char* kUnknownCoding = "unsupported transfer coding";
constexpr const char* kBadExpect = "unsupported expectation";

constexpr std::uint64_t kMaxContentLength = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

// Compares a token against a lowercase literal. Tokens never hold the one non-letter (CR) that |0x20 would turn
// into '-', so the cheap fold is exact here.
bool token_equals(const char* p, std::size_t n, std::string_view lower) noexcept {
  if (n != lower.size()) return false;
  for (std::size_t i = 0; i < n; ++i) {
    if (static_cast<char>(p[i] | 0x20) != lower[i]) return false;
  }
  return true;
}
bool token_equals(std::string_view s, std::string_view lower) noexcept {
  return token_equals(s.data(), s.size(), lower);
}

Method lookup_method(const char* p, std::size_t n) noexcept {
  auto eq = [p, n](std::string_view s) { return n == s.size() && std::memcmp(p, s.data(), n) == 0; };
  switch (n) {
    case 3:
      if (eq("GET")) return Method::get;
      if (eq("PUT")) return Method::put;
      break;
    case 4:
      if (eq("HEAD")) return Method::head;
      if (eq("POST")) return Method::post;
      break;
    case 5:
      if (eq("PATCH")) return Method::patch;
      if (eq("TRACE")) return Method::trace;
      break;
    case 6:
      if (eq("DELETE")) return Method::delete_;
      break;
    case 7:
      if (eq("OPTIONS")) return Method::options;
      if (eq("CONNECT")) return Method::connect;
      break;
    default: break;
  }
  return Method::other;
}

// Which indexed header a field name is, or count_ for none. Dispatch on length first: one compare at most, two
// for length 17.
KnownHeader lookup_header(const char* p, std::size_t n) noexcept {
  switch (n) {
    case 4:
      if (token_equals(p, n, "host")) return KnownHeader::host;
      break;
    case 5:
      if (token_equals(p, n, "range")) return KnownHeader::range;
      break;
    case 6:
      if (token_equals(p, n, "expect")) return KnownHeader::expect;
      break;
    case 8:
      if (token_equals(p, n, "if-range")) return KnownHeader::if_range;
      break;
    case 10:
      if (token_equals(p, n, "connection")) return KnownHeader::connection;
      break;
    case 12:
      if (token_equals(p, n, "content-type")) return KnownHeader::content_type;
      break;
    case 13:
      if (token_equals(p, n, "if-none-match")) return KnownHeader::if_none_match;
      break;
    case 14:
      if (token_equals(p, n, "content-length")) return KnownHeader::content_length;
      break;
    case 17:
      if (token_equals(p, n, "transfer-encoding")) return KnownHeader::transfer_encoding;
      if (token_equals(p, n, "if-modified-since")) return KnownHeader::if_modified_since;
      break;
    default: break;
  }
  return KnownHeader::count_;
}

template <class Pred>
std::uint32_t scan_while(const char* base, std::uint32_t i, std::uint32_t end, Pred pred) noexcept {
  while (i < end && pred(base[i])) ++i;
  return i;
}

// The first byte in [i, end) that may not appear in a field value, or end. Values are the bulk of a head, so this
// checks 8 bytes per step (SWAR): a word with no byte below 0x20 and no DEL is all valid (obs-text, >= 0x80, is
// allowed). A word that fails — usually because it holds an HTAB, or the bad byte itself — goes byte by byte.
std::uint32_t scan_field_value(const char* base, std::uint32_t i, std::uint32_t end) noexcept {
  constexpr std::uint64_t kOnes = 0x0101010101010101ull;
  constexpr std::uint64_t kHighs = 0x8080808080808080ull;
  while (end - i >= 8) {
    std::uint64_t x;
    std::memcpy(&x, base + i, 8);
    const std::uint64_t below_space = (x - kOnes * 0x20) & ~x & kHighs;  // some byte < 0x20
    const std::uint64_t d = x ^ (kOnes * 0x7f);
    const std::uint64_t del = (d - kOnes) & ~d & kHighs;  // some byte == 0x7f
    if ((below_space | del) != 0) break;
    i += 8;
  }
  while (i < end && is(base[i], detail::kFieldValue)) ++i;
  return i;
}

bool valid_host(std::string_view v) noexcept {
  return std::all_of(v.begin(), v.end(), [](char c) { return is(c, detail::kHost); });
}

}  // namespace

ParseResult RequestParser::fail(std::uint16_t status, const char* reason) noexcept {
  phase_ = Phase::failed;
  result_ = ParseResult{ParseStatus::error, 0, status, reason};
  return result_;
}

ParseResult RequestParser::parse(std::string_view data) noexcept {
  if (phase_ == Phase::done) {
    req_.rebase(data.data());
    return result_;
  }
  if (phase_ == Phase::failed) return result_;
  // Offsets are 32-bit; a head is bounded far below that, so never look further than 4 GiB - 1.
  const auto size = static_cast<std::uint32_t>(std::min<std::size_t>(data.size(), 0xffffffffu));
  RINGLET_ASSERT(size >= scan_);  // each call's data extends the previous one
  const char* base = data.data();
  req_.rebase(base);

  for (;;) {
    const std::uint32_t from = std::max(scan_, pos_);
    const void* nl = from < size ? std::memchr(base + from, '\n', size - from) : nullptr;
    if (nl == nullptr) {
      scan_ = size;
      // Decide the limits as soon as they are exceeded, not when the line finally ends. The +1 leaves room for
      // the CR of a line that is exactly at the limit.
      if (phase_ == Phase::request_line) {
        if (size - pos_ > limits_.max_request_line + 1) return fail(414, kRequestLineTooLong);
      } else if (size - headers_start_ > limits_.max_header_bytes) {
        return fail(431, kHeadersTooLarge);
      } else if (header_line_over_limit(size - pos_, 1)) {
        return fail(431, kHeaderLineTooLong);
      }
      return result_;  // incomplete
    }
    const auto lf = static_cast<std::uint32_t>(static_cast<const char*>(nl) - base);
    const std::uint32_t begin = pos_;
    std::uint32_t end = lf;
    const bool crlf = end > begin && base[end - 1] == '\r';
    if (crlf) --end;
    pos_ = scan_ = lf + 1;

    // Limits first, then syntax: that order gives the same answer however the input was split.
    if (phase_ == Phase::request_line) {
      if (end == begin) {
        if (!crlf && limits_.strict_crlf) return fail(400, kBareLf);
        if (++empty_lines_ > limits_.max_leading_empty_lines) return fail(400, kTooManyEmptyLines);
        continue;
      }
      if (end - begin > limits_.max_request_line) return fail(414, kRequestLineTooLong);
      if (!crlf && limits_.strict_crlf) return fail(400, kBareLf);
      if (!on_request_line(base, begin, end)) return fail(fail_status_, fail_reason_);
      headers_start_ = pos_;
      phase_ = Phase::headers;
      continue;
    }
    if (pos_ - headers_start_ > limits_.max_header_bytes) return fail(431, kHeadersTooLarge);
    if (header_line_over_limit(end - begin, 0)) return fail(431, kHeaderLineTooLong);
    if (!crlf && limits_.strict_crlf) return fail(400, kBareLf);
    if (end == begin) {
      if (!on_head_end(pos_)) return fail(fail_status_, fail_reason_);
      phase_ = Phase::done;
      result_ = ParseResult{ParseStatus::complete, pos_, 0, nullptr};
      return result_;
    }
    if (req_.header_count_ >= limits_.max_headers) return fail(431, kTooManyHeaders);
    if (!on_field_line(base, begin, end)) return fail(fail_status_, fail_reason_);
  }
}

// method SP request-target SP HTTP-version, in [begin, end) (line end excluded).
bool RequestParser::on_request_line(const char* base, std::uint32_t begin, std::uint32_t end) noexcept {
  auto bad = [this](std::uint16_t status, const char* reason) {
    fail_status_ = status;
    fail_reason_ = reason;
    return false;
  };
  const std::uint32_t method_end = scan_while(base, begin, end, [](char c) { return is(c, detail::kTchar); });
  if (method_end == begin || method_end == end || base[method_end] != ' ') {
    if (std::memchr(base + begin, '\r', end - begin) != nullptr) return bad(400, kBareCr);
    return bad(400, kBadMethod);
  }
  req_.method_span_ = {begin, method_end - begin};
  req_.method_ = lookup_method(base + begin, method_end - begin);

  const std::uint32_t target_begin = method_end + 1;
  const std::uint32_t target_end = scan_while(base, target_begin, end, [](char c) { return is(c, detail::kTarget); });
  if (target_end == target_begin || target_end == end || base[target_end] != ' ') {
    if (std::memchr(base + begin, '\r', end - begin) != nullptr) return bad(400, kBareCr);
    return bad(400, target_end == end ? kBadVersion : kBadTarget);
  }

  // HTTP-version = "HTTP/" DIGIT "." DIGIT (case-sensitive), and nothing after it.
  const char* v = base + target_end + 1;
  const std::uint32_t vlen = end - (target_end + 1);
  if (vlen != 8 || std::memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' || v[7] < '0' ||
      v[7] > '9') {
    if (std::memchr(base + begin, '\r', end - begin) != nullptr) return bad(400, kBareCr);
    return bad(400, kBadVersion);
  }
  if (v[5] != '1') return bad(505, kVersionNotSupported);
  req_.version_minor_ = v[7] == '0' ? 0 : 1;

  if (!on_target(base, target_begin, target_end)) return bad(400, kBadTarget);
  return true;
}

bool RequestParser::on_target(const char* base, std::uint32_t begin, std::uint32_t end) noexcept {
  req_.target_ = {begin, end - begin};
  const std::string_view t(base + begin, end - begin);
  auto split_path_query = [this, base, end](std::uint32_t path_begin) {
    const void* q = std::memchr(base + path_begin, '?', end - path_begin);
    const std::uint32_t path_end = q ? static_cast<std::uint32_t>(static_cast<const char*>(q) - base) : end;
    if (path_end == path_begin) {
      req_.path_default_root_ = true;
    } else {
      req_.path_ = {path_begin, path_end - path_begin};
    }
    if (q != nullptr) req_.query_ = {path_end + 1, end - path_end - 1};
  };

  if (req_.method_ == Method::connect) {
    // authority-form = uri-host ":" port
    req_.form_ = TargetForm::authority;
    req_.authority_ = req_.target_;
    return valid_host(t) && t.find(':') != std::string_view::npos;
  }
  if (t == "*") {
    req_.form_ = TargetForm::asterisk;
    return req_.method_ == Method::options;
  }
  if (t[0] == '/') {
    req_.form_ = TargetForm::origin;
    split_path_query(begin);
    return true;
  }
  // absolute-form: scheme "://" authority [path-abempty] ["?" query]
  req_.form_ = TargetForm::absolute;
  std::size_t i = 0;
  if (!(t[0] >= 'a' && t[0] <= 'z') && !(t[0] >= 'A' && t[0] <= 'Z')) return false;
  while (i < t.size() && is(t[i], detail::kScheme)) ++i;
  if (t.substr(i, 3) != "://") return false;
  const std::size_t auth_begin = i + 3;
  std::size_t auth_end = auth_begin;
  while (auth_end < t.size() && t[auth_end] != '/' && t[auth_end] != '?') ++auth_end;
  // No userinfo ('@' is not a host character): RFC 9110 §4.2.4 says to treat "http://user@host" as invalid.
  if (auth_end == auth_begin || !valid_host(t.substr(auth_begin, auth_end - auth_begin))) return false;
  req_.authority_ = {begin + static_cast<std::uint32_t>(auth_begin), static_cast<std::uint32_t>(auth_end - auth_begin)};
  split_path_query(begin + static_cast<std::uint32_t>(auth_end));
  return true;
}

// field-name ":" OWS field-value OWS, in [begin, end) (line end excluded).
bool RequestParser::on_field_line(const char* base, std::uint32_t begin, std::uint32_t end) noexcept {
  auto bad = [this](const char* reason) {
    fail_status_ = 400;
    fail_reason_ = reason;
    return false;
  };
  const std::uint32_t name_end = scan_while(base, begin, end, [](char c) { return is(c, detail::kTchar); });
  if (name_end == end || base[name_end] != ':') {
    const char c = base[name_end];
    if (name_end == begin && (c == ' ' || c == '\t')) return bad(kObsFold);
    if (c == ' ' || c == '\t') return bad(kSpaceBeforeColon);
    if (c == '\r') return bad(kBareCr);
    return bad(kBadFieldName);
  }
  if (name_end == begin) return bad(kBadFieldName);

  std::uint32_t value_begin = scan_while(base, name_end + 1, end, [](char c) { return c == ' ' || c == '\t'; });
  const std::uint32_t value_bad = scan_field_value(base, value_begin, end);
  if (value_bad != end) return bad(base[value_bad] == '\r' ? kBareCr : kBadFieldValue);
  std::uint32_t value_end = end;
  while (value_end > value_begin && (base[value_end - 1] == ' ' || base[value_end - 1] == '\t')) --value_end;

  ++req_.header_count_;
  if (req_.headers_.off == 0) req_.headers_.off = begin;
  const KnownHeader h = lookup_header(base + begin, name_end - begin);
  if (h == KnownHeader::count_) return true;

  const auto index = static_cast<std::size_t>(h);
  const std::string_view value(base + value_begin, value_end - value_begin);
  if (req_.known_[index].off != 0) {
    req_.repeated_bits_ = static_cast<std::uint16_t>(req_.repeated_bits_ | (1u << index));
  } else {
    req_.known_[index] = {value_begin, value_end - value_begin};
  }
  switch (h) {
    case KnownHeader::host:
      if (req_.repeated(KnownHeader::host)) return bad(kHostRepeated);
      if (!valid_host(value)) return bad(kBadHost);
      return true;
    case KnownHeader::content_length: return on_content_length(value);
    case KnownHeader::transfer_encoding: return on_transfer_encoding(value);
    case KnownHeader::connection: return on_connection(value);
    case KnownHeader::expect: return on_expect(value);
    default: return true;
  }
}

bool RequestParser::on_content_length(std::string_view value) noexcept {
  bool ok = detail::for_each_list_element(value, [this](std::string_view e) {
    if (e.empty()) {
      fail_reason_ = kBadContentLength;
      return false;
    }
    std::uint64_t n = 0;
    for (char c : e) {
      if (c < '0' || c > '9' || n > (kMaxContentLength - static_cast<unsigned>(c - '0')) / 10) {
        fail_reason_ = kBadContentLength;
        return false;
      }
      n = n * 10 + static_cast<unsigned>(c - '0');
    }
    if (cl_seen_ && n != req_.content_length_) {
      fail_reason_ = kConflictingContentLength;
      return false;
    }
    cl_seen_ = true;
    req_.content_length_ = n;
    return true;
  });
  if (!ok) fail_status_ = 400;
  return ok;
}

// transfer-coding = token *( OWS ";" OWS transfer-parameter ). Only "chunked" is understood, and it must be the
// last coding and appear once. Errors that depend on what comes later are recorded and decided at the head's end.
bool RequestParser::on_transfer_encoding(std::string_view value) noexcept {
  detail::for_each_list_element(value, [this](std::string_view e) {
    if (e.empty()) return true;  // empty list elements are allowed (RFC 9110 §5.6.1)
    std::size_t n = 0;
    while (n < e.size() && is(e[n], detail::kTchar)) ++n;
    const std::string_view rest = detail::trim_ows(e.substr(n));
    if (n == 0 || (!rest.empty() && rest[0] != ';')) {
      te_bad_ = true;
      return true;
    }
    if (te_codings_ < 255) ++te_codings_;
    if (token_equals(e.substr(0, n), "chunked")) {
      if (te_chunked_seen_ || !rest.empty()) te_bad_ = true;  // chunked twice, or with parameters
      te_chunked_seen_ = true;
      te_chunked_last_ = true;
    } else {
      te_chunked_last_ = false;
      te_unknown_ = true;
    }
    return true;
  });
  return true;
}

bool RequestParser::on_connection(std::string_view value) noexcept {
  detail::for_each_list_element(value, [this](std::string_view e) {
    if (token_equals(e, "close")) conn_close_ = true;
    else if (token_equals(e, "keep-alive")) conn_keep_alive_ = true;
    return true;
  });
  return true;
}

bool RequestParser::on_expect(std::string_view value) noexcept {
  detail::for_each_list_element(value, [this](std::string_view e) {
    if (e.empty()) return true;
    if (token_equals(e, "100-continue")) expect_continue_ = true;
    else expect_other_ = true;
    return true;
  });
  return true;
}

// Checks that need the whole head, and derives framing and keep-alive.
bool RequestParser::on_head_end(std::uint32_t head_length) noexcept {
  auto bad = [this](std::uint16_t status, const char* reason) {
    fail_status_ = status;
    fail_reason_ = reason;
    return false;
  };
  const bool http11 = req_.version_minor_ >= 1;
  if (http11 && !req_.has(KnownHeader::host)) return bad(400, kHostMissing);
  if (req_.has(KnownHeader::transfer_encoding)) {
    if (cl_seen_) return bad(400, kLengthAndChunked);
    if (!http11) return bad(400, kTransferEncodingHttp10);
    if (te_bad_ || !te_chunked_last_) return bad(400, kChunkedNotFinal);
    if (te_unknown_) return bad(501, kUnknownCoding);
    req_.framing_ = BodyFraming::chunked;
  } else if (cl_seen_) {
    req_.framing_ = BodyFraming::content_length;
  }
  if (http11 && expect_other_) return bad(417, kBadExpect);
  req_.expect_continue_ = http11 && expect_continue_;
  req_.keep_alive_ = !conn_close_ && (http11 || conn_keep_alive_);
  req_.head_length_ = head_length;
  if (req_.headers_.off == 0) req_.headers_.off = headers_start_;
  req_.headers_.len = head_length - req_.headers_.off;
  return true;
}

}  // namespace ringlet::http
