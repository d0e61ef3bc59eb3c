// request_parser.cpp — beanstalkd command lines: framing over a SliceQueue, then one pass over the line driven by
// the command table. See request_parser.hpp for the rules.
#include "ringlet/proto/beanstalk/request_parser.hpp"

#include <cstring>
#include <limits>

#include "ringlet/base/fatal.hpp"

namespace ringlet::beanstalk {

namespace {

constexpr bool is_tube_byte(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '+' ||
         c == '/' || c == ';' || c == '.' || c == '$' || c == '_' || c == '(' || c == ')';
}

// Reads " *[0-9]+" at p into `out`; false if there is no digit or the value exceeds `max`.
bool read_number(const char*& p, const char* end, std::uint64_t max, std::uint64_t& out) noexcept {
  while (p < end && *p == ' ') ++p;
  if (p == end || *p < '0' || *p > '9') return false;
  std::uint64_t v = 0;
  for (; p < end && *p >= '0' && *p <= '9'; ++p) {
    const auto d = static_cast<std::uint64_t>(*p - '0');
    if (v > (max - d) / 10) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}

std::uint64_t max_of(Arg a) noexcept {
  switch (a) {
    case Arg::id:
      return std::numeric_limits<std::uint64_t>::max();
    case Arg::timeout:
      return static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max());
    default:
      return std::numeric_limits<std::uint32_t>::max();
  }
}

void store(Request& r, Arg a, std::uint64_t v) noexcept {
  const auto u32 = static_cast<std::uint32_t>(v);
  switch (a) {
    case Arg::id: r.id = v; break;
    case Arg::priority: r.priority = u32; break;
    case Arg::delay: r.delay = u32; break;
    case Arg::ttr: r.ttr = u32; break;
    case Arg::bytes: r.bytes = u32; break;
    case Arg::timeout: r.timeout = u32; break;
    case Arg::bound: r.bound = u32; break;
    case Arg::tube:
    case Arg::tube_word: break;
  }
}

}  // namespace

bool valid_tube_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > kMaxTubeName || name[0] == '-') return false;
  for (char c : name) {
    if (!is_tube_byte(c)) return false;
  }
  return true;
}

bool parse_command_line(std::string_view line, const RequestLimits& limits, Request& out,
                        ParseError& error) noexcept {
  out = Request{};
  error = ParseError::bad_format;
  // beanstalkd rejects a NUL before it looks at the name; we treat a stray CR the same way (see the header).
  // (An empty line's data() may be null, which memchr must not see even with a zero length.)
  if (!line.empty() && (std::memchr(line.data(), '\0', line.size()) != nullptr ||
                        std::memchr(line.data(), '\r', line.size()) != nullptr)) {
    return false;
  }
  const CommandSpec* spec = find_command(line);
  if (spec == nullptr) {
    error = ParseError::unknown_command;
    return false;
  }
  out.command = spec->command;
  const char* p = line.data() + spec->match_length();
  const char* const end = line.data() + line.size();

  for (std::uint8_t i = 0; i < spec->arity; ++i) {
    const Arg a = spec->args[i];
    if (a == Arg::tube || a == Arg::tube_word) {
      if (a == Arg::tube_word) {
        while (p < end && *p == ' ') ++p;
      }
      const char* name_end = p;
      while (name_end < end && is_tube_byte(*name_end)) ++name_end;
      out.tube = std::string_view(p, static_cast<std::size_t>(name_end - p));
      if (!valid_tube_name(out.tube)) return false;
      p = name_end;
      continue;
    }
    std::uint64_t v = 0;
    if (!read_number(p, end, max_of(a), v)) return false;
    store(out, a, v);
  }
  // beanstalkd decides JOB_TOO_BIG before it looks for trailing bytes.
  if (spec->command == Command::put && out.bytes > limits.max_job_size) {
    error = ParseError::job_too_big;
    return false;
  }
  return spec->tail == Tail::ignored || p == end;
}

ParseResult RequestParser::parse(SliceQueue& in) {
  line_.reset();  // the previous request's views end here
  if (phase_ != Phase::line && !skip(in)) return {};

  FrameResult f = in.take_until("\r\n", kMaxCommandLine);
  if (f.status == FrameResult::Status::need_more) return {};
  if (f.status == FrameResult::Status::too_long) {
    phase_ = Phase::skip_line;
    skip_saw_cr_ = false;
    return {ParseStatus::error, ParseError::bad_format, 0};
  }
  line_ = std::move(f.frame);
  const auto consumed = static_cast<std::uint32_t>(line_.size() + 2);
  ParseError code = ParseError::bad_format;
  if (parse_command_line(line_.view(), limits_, req_, code)) return {ParseStatus::complete, code, consumed};
  if (code == ParseError::job_too_big) {
    phase_ = Phase::skip_bytes;
    skip_bytes_ = std::uint64_t{req_.bytes} + 2;
  }
  return {ParseStatus::error, code, consumed};
}

// Swallows queued bytes that are not commands. Each byte is looked at once: consumed bytes are gone, and for a
// line end split across calls skip_saw_cr_ remembers the '\r'.
bool RequestParser::skip(SliceQueue& in) noexcept {
  if (phase_ == Phase::skip_bytes) {
    const std::uint64_t n = std::min<std::uint64_t>(skip_bytes_, in.bytes());
    in.consume(static_cast<std::size_t>(n));
    skip_bytes_ -= n;
    if (skip_bytes_ > 0) return false;
    phase_ = Phase::line;
    return true;
  }
  while (!in.empty()) {
    const std::string_view s = in.front().view();
    const void* lf = std::memchr(s.data(), '\n', s.size());
    if (lf == nullptr) {
      skip_saw_cr_ = s.back() == '\r';
      in.consume(s.size());
      continue;
    }
    const auto at = static_cast<std::size_t>(static_cast<const char*>(lf) - s.data());
    const bool crlf = at > 0 ? s[at - 1] == '\r' : skip_saw_cr_;
    in.consume(at + 1);
    skip_saw_cr_ = false;
    if (crlf) {
      phase_ = Phase::line;
      return true;
    }
  }
  return false;
}

PutBody take_put_body(SliceQueue& in, std::uint32_t bytes) {
  const std::size_t framed = std::size_t{bytes} + 2;
  if (in.bytes() < framed) return {PutBody::Status::need_more, {}};
  FrameResult f = in.take_exactly(framed);
  RINGLET_ASSERT(f.status == FrameResult::Status::frame);
  if (f.frame.view().substr(bytes) != "\r\n") return {PutBody::Status::expected_crlf, {}};
  f.frame.remove_suffix(2);
  return {PutBody::Status::complete, std::move(f.frame)};
}

}  // namespace ringlet::beanstalk
