// beanstalk_codec.cpp — the bench's beanstalkd commands, job bodies and reply checks (see beanstalk_codec.hpp).
#include "ringlet/loadgen/beanstalk_codec.hpp"

#include <algorithm>
#include <cstring>

#include "ringlet/buf/buffer.hpp"

namespace ringlet::loadgen::beanstalk {

namespace {

std::uint64_t mix(std::uint64_t x) noexcept {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

void write_hex(std::uint64_t v, char* out, int digits) noexcept {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; --i) {
    out[i] = kDigits[v & 0xf];
    v >>= 4;
  }
}

bool parse_hex(std::string_view text, std::uint64_t& out) noexcept {
  out = 0;
  for (char c : text) {
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    out = (out << 4) | static_cast<std::uint64_t>(d);
  }
  return true;
}

namespace wire = ::ringlet::beanstalk;

// Replies that are never right in our cycle, each with the description the run reports; nullptr for the others.
const char* error_description(wire::ReplyKind kind) noexcept {
  switch (kind) {
    case wire::ReplyKind::out_of_memory: return "server replied OUT_OF_MEMORY";
    case wire::ReplyKind::internal_error: return "server replied INTERNAL_ERROR";
    case wire::ReplyKind::bad_format: return "server replied BAD_FORMAT";
    case wire::ReplyKind::unknown_command: return "server replied UNKNOWN_COMMAND";
    case wire::ReplyKind::expected_crlf: return "server replied EXPECTED_CRLF";
    case wire::ReplyKind::job_too_big: return "server replied JOB_TOO_BIG";
    case wire::ReplyKind::draining: return "server replied DRAINING";
    case wire::ReplyKind::buried: return "put buried (server out of memory)";
    case wire::ReplyKind::timed_out: return "reserve timed out";
    case wire::ReplyKind::deadline_soon: return "reserve answered DEADLINE_SOON";
    case wire::ReplyKind::not_found: return "server replied NOT_FOUND";
    case wire::ReplyKind::not_ignored: return "server replied NOT_IGNORED";
    default: return nullptr;
  }
}

}  // namespace

// ---- bodies ---------------------------------------------------------------------------------------------------

BodyPattern::BodyPattern(std::size_t max_size) : max_size_(std::max(max_size, kHeaderSize)) {
  std::size_t size = max_size_ - kHeaderSize + kPatternSlack;
  Buffer* buf = BufferPool::local().acquire(size);
  pattern_ = Slice(buf, 0, static_cast<std::uint32_t>(size));
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";
  std::uint64_t x = 0x6265616e73ULL;  // "beans": the same pattern on every thread and in every run
  auto* out = reinterpret_cast<char*>(pattern_.mutable_data());
  for (std::size_t i = 0; i < size; ++i) out[i] = kAlphabet[(x = mix(x)) & 63];
}

std::uint32_t BodyPattern::offset_of(std::uint64_t seed) noexcept {
  return static_cast<std::uint32_t>(mix(seed) % kPatternSlack);
}

void BodyPattern::header(std::uint64_t seed, std::size_t size, char out[kHeaderSize]) const noexcept {
  write_hex(seed, out, 16);
  write_hex(size, out + 16, 8);
}

Slice BodyPattern::tail(std::uint64_t seed, std::size_t size) const noexcept {
  RINGLET_ASSERT(size >= kHeaderSize && size <= max_size_);
  if (size == kHeaderSize) return {};
  return pattern_.sub(offset_of(seed), size - kHeaderSize);
}

bool BodyPattern::tail_matches(std::uint64_t seed, std::size_t pos, std::string_view data) const noexcept {
  if (pos < kHeaderSize || pos + data.size() > max_size_) return false;
  const char* expected = pattern_.view().data() + offset_of(seed) + (pos - kHeaderSize);
  return std::memcmp(expected, data.data(), data.size()) == 0;
}

bool BodyPattern::parse_header(std::string_view header, std::size_t size, std::uint64_t& seed) noexcept {
  std::uint64_t named_size = 0;
  if (header.size() != kHeaderSize || !parse_hex(header.substr(0, 16), seed) ||
      !parse_hex(header.substr(16, 8), named_size)) {
    return false;
  }
  return named_size == size;
}

// ---- commands -------------------------------------------------------------------------------------------------

void RequestWriter::use(RequestSink& out, std::string_view tube) {
  out.queue_copy(wire::CommandLine::with_tube(wire::Command::use, tube).view());
}
void RequestWriter::watch(RequestSink& out, std::string_view tube) {
  out.queue_copy(wire::CommandLine::with_tube(wire::Command::watch, tube).view());
}
void RequestWriter::ignore(RequestSink& out, std::string_view tube) {
  out.queue_copy(wire::CommandLine::with_tube(wire::Command::ignore, tube).view());
}

// A small put goes out as one copy (line, body, CRLF); a large one as the line and body header, the pattern's
// tail as a Slice (no copy), and the CRLF.
void RequestWriter::put(RequestSink& out, const PutArgs& args, std::uint64_t seed, std::size_t size) {
  const wire::CommandLine line =
      wire::CommandLine::put(args.priority, args.delay_s, args.ttr_s, static_cast<std::uint32_t>(size));
  char small[sizeof(wire::CommandLine) + BodyPattern::kHeaderSize + kCopyBodyBelow + 2];
  std::size_t n = line.view().copy(small, line.view().size());
  bodies_->header(seed, size, small + n);
  n += BodyPattern::kHeaderSize;
  Slice tail = bodies_->tail(seed, size);
  if (tail.size() > kCopyBodyBelow) {
    out.queue_copy(std::string_view(small, n));
    out.queue(std::move(tail));
    out.queue_copy("\r\n");
    return;
  }
  n += tail.view().copy(small + n, tail.size());
  small[n++] = '\r';
  small[n++] = '\n';
  out.queue_copy(std::string_view(small, n));
}

void RequestWriter::reserve(RequestSink& out, int timeout_s) {
  if (timeout_s < 0) {
    out.queue_copy(wire::CommandLine::bare(wire::Command::reserve).view());
    return;
  }
  out.queue_copy(
      wire::CommandLine::with_number(wire::Command::reserve_with_timeout, static_cast<std::uint64_t>(timeout_s))
          .view());
}

void RequestWriter::delete_job(RequestSink& out, std::uint64_t id) {
  out.queue_copy(wire::CommandLine::with_number(wire::Command::delete_job, id).view());
}

// ---- replies --------------------------------------------------------------------------------------------------

void ReplyParser::reset() noexcept {
  phase_ = Phase::line;
  pos_ = 0;
  size_ = 0;
}

Reply ReplyParser::parse(SliceQueue& in, Expect e) {
  if (phase_ == Phase::line) {
    const wire::ReplyParseStatus s = lines_.parse(in);
    if (s == wire::ReplyParseStatus::need_more) return Reply::need_more();
    if (s == wire::ReplyParseStatus::too_long) return Reply::wrong("reply line too long");
    Reply r = on_line(lines_.reply(), e);
    lines_.drop_line();  // the numbers are copied out; do not pin the receive buffer while a body or reply waits
    if (phase_ == Phase::line) return r;
  }
  if (phase_ == Phase::header || phase_ == Phase::body) {
    Reply r = parse_body(in);
    if (r.status != Reply::Status::complete) return r;
    phase_ = Phase::body_end;
  }
  if (in.bytes() < 2) return Reply::need_more();
  FrameResult end = in.take_exactly(2);
  if (end.frame.view() != "\r\n") return Reply::wrong("job body not followed by CRLF");
  phase_ = Phase::line;
  return Reply::complete();
}

Reply ReplyParser::on_line(const wire::ReplyLine& line, Expect e) {
  if (line.status != wire::ReplyStatus::unknown) {
    if (const char* err = error_description(line.kind)) return Reply::wrong(err);
  }
  switch (e) {
    case Expect::use:
      if (line.ok() && line.kind == wire::ReplyKind::using_tube) return Reply::complete();
      return Reply::wrong("unexpected reply to use");
    case Expect::watch:
      if (line.ok() && line.kind == wire::ReplyKind::watching) return Reply::complete();
      return Reply::wrong("unexpected reply to watch");
    case Expect::put:
      if (!line.ok() || line.kind != wire::ReplyKind::inserted) return Reply::wrong("unexpected reply to put");
      id_ = line.id;
      return Reply::complete();
    case Expect::delete_job:
      if (line.ok() && line.kind == wire::ReplyKind::deleted) return Reply::complete();
      return Reply::wrong("unexpected reply to delete");
    case Expect::reserve: {
      if (!line.is(wire::ReplyKind::reserved)) return Reply::wrong("unexpected reply to reserve");
      if (!line.ok()) return Reply::wrong("malformed RESERVED line");
      id_ = line.id;
      if (line.bytes < BodyPattern::kHeaderSize || line.bytes > bodies_->max_size()) {
        return Reply::wrong("reserved job has a size no ringlet job of this run has");
      }
      size_ = static_cast<std::size_t>(line.bytes);
      pos_ = 0;
      phase_ = Phase::header;
      return Reply::need_more();
    }
  }
  return Reply::wrong("unexpected reply");
}

// The header is gathered (24 bytes, possibly across receive buffers) to learn the seed; the rest is compared in
// place against the pattern and consumed as it arrives.
Reply ReplyParser::parse_body(SliceQueue& in) {
  while (phase_ == Phase::header) {
    if (in.empty()) return Reply::need_more();
    std::string_view piece = in.front().view().substr(0, BodyPattern::kHeaderSize - pos_);
    std::memcpy(header_ + pos_, piece.data(), piece.size());
    pos_ += piece.size();
    in.consume(piece.size());
    if (pos_ < BodyPattern::kHeaderSize) continue;
    if (!BodyPattern::parse_header(std::string_view(header_, sizeof header_), size_, seed_)) {
      return Reply::wrong("job body header differs");
    }
    phase_ = Phase::body;
  }
  while (pos_ < size_) {
    if (in.empty()) return Reply::need_more();
    std::string_view piece = in.front().view().substr(0, size_ - pos_);
    if (!bodies_->tail_matches(seed_, pos_, piece)) return Reply::wrong("job body bytes differ");
    pos_ += piece.size();
    in.consume(piece.size());
  }
  return Reply::complete();
}

}  // namespace ringlet::loadgen::beanstalk
