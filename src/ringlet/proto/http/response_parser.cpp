// response_parser.cpp — HTTP/1.x response head parsing and body framing for clients.
#include "ringlet/proto/http/response_parser.hpp"

#include <algorithm>
#include <cstring>

#include "ringlet/proto/http/char_class.hpp"

namespace ringlet::http {
namespace {

using detail::is;
using detail::kFieldValue;
using detail::kTchar;

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (detail::to_lower(a[i]) != detail::to_lower(b[i])) return false;
  }
  return true;
}

bool all_of_class(std::string_view s, detail::CharClass cls) noexcept {
  for (char c : s) {
    if (!is(c, cls)) return false;
  }
  return true;
}

// Content-Length: 1*DIGIT, or a list of identical values ("5, 5": RFC 9110 §8.6 lets a recipient accept that).
// Returns false for anything else, including overflow.
bool parse_content_length(std::string_view value, std::uint64_t& out) noexcept {
  bool have = false;
  std::uint64_t first = 0;
  while (true) {
    std::size_t comma = value.find(',');
    std::string_view item = detail::trim_ows(value.substr(0, comma));
    if (item.empty()) return false;
    std::uint64_t n = 0;
    for (char c : item) {
      if (c < '0' || c > '9') return false;
      if (n > (UINT64_MAX - 9) / 10) return false;
      n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (have && n != first) return false;
    first = n;
    have = true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  out = first;
  return true;
}

// Calls fn(token) for each comma-separated token of a list-valued field, trimmed; empty elements skipped.
template <class Fn>
void for_each_token(std::string_view value, Fn fn) {
  while (!value.empty()) {
    std::size_t comma = value.find(',');
    std::string_view item = detail::trim_ows(value.substr(0, comma));
    if (!item.empty()) fn(item);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

HeadResult fail(const char* why) { return {HeadResult::Status::error, 0, why}; }

// "HTTP/1.x SP 3DIGIT [SP reason]" (the line without its line end).
const char* parse_status_line(std::string_view line, ResponseHead& head) {
  constexpr std::string_view kPrefix = "HTTP/1.";
  if (line.size() < 12 || line.substr(0, kPrefix.size()) != kPrefix) return "not an HTTP/1.x status line";
  char minor = line[7];
  if (minor != '0' && minor != '1') return "unsupported HTTP version";
  if (line[8] != ' ') return "malformed status line";
  int status = 0;
  for (std::size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return "malformed status code";
    status = status * 10 + (line[i] - '0');
  }
  if (status < 100) return "malformed status code";
  std::string_view reason;
  if (line.size() > 12) {
    if (line[12] != ' ') return "malformed status line";
    reason = line.substr(13);
    if (!all_of_class(reason, kFieldValue)) return "bad byte in reason phrase";
  }
  head.version_minor = minor - '0';
  head.status = status;
  head.reason = reason;
  return nullptr;
}

}  // namespace

HeadResult ResponseHeadParser::parse(std::string_view in, ResponseHead& head, bool head_request,
                                     std::span<ResponseField> fields) {
  // Pass 1: find the blank line that ends the head, resuming at the first line not yet known to be complete.
  std::size_t pos = line_start_;
  std::size_t end = 0;
  for (;;) {
    const void* nl = pos < in.size() ? std::memchr(in.data() + pos, '\n', in.size() - pos) : nullptr;
    if (nl == nullptr) {
      line_start_ = pos;
      if (in.size() > limits_.max_head_bytes) {
        line_start_ = 0;
        return fail("response head too long");
      }
      return {HeadResult::Status::need_more, 0, nullptr};
    }
    std::size_t line_end = static_cast<std::size_t>(static_cast<const char*>(nl) - in.data());
    std::size_t len = line_end - pos;
    bool blank = len == 0 || (len == 1 && in[pos] == '\r');
    if (line_end + 1 > limits_.max_head_bytes) {
      line_start_ = 0;
      return fail("response head too long");
    }
    if (blank) {
      if (pos == 0) {
        line_start_ = 0;
        return fail("blank line instead of a status line");
      }
      end = line_end + 1;
      break;
    }
    pos = line_end + 1;
  }
  line_start_ = 0;

  // Pass 2: the status line, then the fields, one line at a time.
  head = ResponseHead{};
  std::size_t cursor = 0;
  auto next_line = [&]() {
    std::size_t nl = in.find('\n', cursor);
    std::string_view line = in.substr(cursor, nl - cursor);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    cursor = nl + 1;
    return line;
  };
  if (const char* why = parse_status_line(next_line(), head)) return fail(why);

  bool have_length = false;
  bool have_te = false;
  bool te_chunked = false;
  bool conn_close = false;
  bool conn_keep_alive = false;
  std::uint64_t length = 0;
  for (;;) {
    std::string_view line = next_line();
    if (line.empty()) break;
    if (line.front() == ' ' || line.front() == '\t') return fail("obsolete line folding");
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return fail("header field without a name");
    std::string_view name = line.substr(0, colon);
    if (!all_of_class(name, kTchar)) return fail("bad byte in header field name");
    std::string_view value = detail::trim_ows(line.substr(colon + 1));
    if (!all_of_class(value, kFieldValue)) return fail("bad byte in header field value");
    if (head.field_count >= limits_.max_fields) return fail("too many header fields");
    if (head.field_count < fields.size()) fields[head.field_count] = ResponseField{name, value};
    ++head.field_count;

    if (iequals(name, "content-length")) {
      std::uint64_t n = 0;
      if (!parse_content_length(value, n)) return fail("invalid Content-Length");
      if (have_length && n != length) return fail("conflicting Content-Length fields");
      have_length = true;
      length = n;
    } else if (iequals(name, "transfer-encoding")) {
      have_te = true;
      te_chunked = false;  // only the last coding of the last field counts
      for_each_token(value, [&](std::string_view coding) { te_chunked = iequals(coding, "chunked"); });
    } else if (iequals(name, "connection")) {
      for_each_token(value, [&](std::string_view option) {
        if (iequals(option, "close")) conn_close = true;
        if (iequals(option, "keep-alive")) conn_keep_alive = true;
      });
    }
  }

  const int s = head.status;
  if (head_request || (s >= 100 && s < 200) || s == 204 || s == 304) {
    head.framing = BodyFraming::none;
  } else if (have_te) {
    head.framing = te_chunked ? BodyFraming::chunked : BodyFraming::until_close;
  } else if (have_length) {
    head.framing = BodyFraming::length;
    head.content_length = length;
  } else {
    head.framing = BodyFraming::until_close;
  }
  head.keep_alive = head.version_minor == 1 ? !conn_close : (conn_keep_alive && !conn_close);
  if (head.framing == BodyFraming::until_close) head.keep_alive = false;
  return {HeadResult::Status::complete, end, nullptr};
}

void ResponseBodyReader::start(const ResponseHead& head) noexcept {
  framing_ = head.framing;
  remaining_ = head.framing == BodyFraming::length ? head.content_length : 0;
  bytes_ = 0;
  done_ = framing_ == BodyFraming::none || (framing_ == BodyFraming::length && remaining_ == 0);
  if (framing_ == BodyFraming::chunked) chunked_.reset();
}

BodyStep ResponseBodyReader::feed(std::string_view in, bool eof) noexcept {
  using S = BodyStep::Status;
  if (done_) return {S::done, 0, {}, nullptr};
  switch (framing_) {
    case BodyFraming::none:
      done_ = true;
      return {S::done, 0, {}, nullptr};
    case BodyFraming::length: {
      std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, in.size()));
      remaining_ -= n;
      bytes_ += n;
      if (remaining_ == 0) {
        done_ = true;
        return {S::done, n, in.substr(0, n), nullptr};
      }
      if (eof) return {S::error, n, in.substr(0, n), "connection closed before the end of the body"};
      return {S::need_more, n, in.substr(0, n), nullptr};
    }
    case BodyFraming::until_close:
      bytes_ += in.size();
      if (eof) {
        done_ = true;
        return {S::done, in.size(), in, nullptr};
      }
      return {S::need_more, in.size(), in, nullptr};
    case BodyFraming::chunked: {
      ChunkedStep step = chunked_.decode(in);
      bytes_ = chunked_.body_bytes();
      switch (step.status) {
        case ChunkedStatus::data:
          return {S::data, step.consumed, step.data, nullptr};
        case ChunkedStatus::done:
          done_ = true;
          return {S::done, step.consumed, {}, nullptr};
        case ChunkedStatus::error:
          return {S::error, step.consumed, {}, step.reason};
        case ChunkedStatus::need_more:
          if (eof) return {S::error, step.consumed, {}, "connection closed inside a chunked body"};
          return {S::need_more, step.consumed, {}, nullptr};
      }
      break;
    }
  }
  return {S::error, 0, {}, "unknown body framing"};
}

}  // namespace ringlet::http
