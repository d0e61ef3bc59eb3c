// beanstalk_codec.cpp — beanstalkd commands and replies (see beanstalk_codec.hpp).
#include "ringlet/loadgen/beanstalk_codec.hpp"

#include <algorithm>
#include <charconv>
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

template <class T>
bool parse_uint(std::string_view text, T& out) noexcept {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size();
}

// Replies that are never right in our cycle, each with the description the run reports.
struct KnownLine {
  std::string_view prefix;
  const char* what;
};
constexpr KnownLine kErrorLines[] = {
    {"OUT_OF_MEMORY", "server replied OUT_OF_MEMORY"},
    {"INTERNAL_ERROR", "server replied INTERNAL_ERROR"},
    {"BAD_FORMAT", "server replied BAD_FORMAT"},
    {"UNKNOWN_COMMAND", "server replied UNKNOWN_COMMAND"},
    {"EXPECTED_CRLF", "server replied EXPECTED_CRLF"},
    {"JOB_TOO_BIG", "server replied JOB_TOO_BIG"},
    {"DRAINING", "server replied DRAINING"},
    {"BURIED", "put buried (server out of memory)"},
    {"TIMED_OUT", "reserve timed out"},
    {"DEADLINE_SOON", "reserve answered DEADLINE_SOON"},
    {"NOT_FOUND", "server replied NOT_FOUND"},
    {"NOT_IGNORED", "server replied NOT_IGNORED"},
};

const char* error_line(std::string_view line) noexcept {
  for (const KnownLine& k : kErrorLines) {
    if (line.substr(0, k.prefix.size()) == k.prefix &&
        (line.size() == k.prefix.size() || line[k.prefix.size()] == ' ')) {
      return k.what;
    }
  }
  return nullptr;
}

// "<word> <number>" with the word already matched: the number, or false.
bool number_after(std::string_view line, std::string_view word, std::uint64_t& out) noexcept {
  if (!line.starts_with(word) || line.size() <= word.size() || line[word.size()] != ' ') return false;
  return parse_uint(line.substr(word.size() + 1), out);
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

void RequestWriter::append_uint(std::uint64_t v) {
  char digits[20];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, v);
  scratch_.append(digits, end);
}

void RequestWriter::command(RequestSink& out, std::string_view verb, std::string_view arg) {
  scratch_.clear();
  scratch_ += verb;
  scratch_ += ' ';
  scratch_ += arg;
  scratch_ += "\r\n";
  out.queue_copy(scratch_);
}

void RequestWriter::use(RequestSink& out, std::string_view tube) { command(out, "use", tube); }
void RequestWriter::watch(RequestSink& out, std::string_view tube) { command(out, "watch", tube); }
void RequestWriter::ignore(RequestSink& out, std::string_view tube) { command(out, "ignore", tube); }

void RequestWriter::put(RequestSink& out, const PutArgs& args, std::uint64_t seed, std::size_t size) {
  scratch_.clear();
  scratch_ += "put ";
  append_uint(args.priority);
  scratch_ += ' ';
  append_uint(args.delay_s);
  scratch_ += ' ';
  append_uint(args.ttr_s);
  scratch_ += ' ';
  append_uint(size);
  scratch_ += "\r\n";
  char hdr[BodyPattern::kHeaderSize];
  bodies_->header(seed, size, hdr);
  scratch_.append(hdr, sizeof hdr);
  Slice tail = bodies_->tail(seed, size);
  if (tail.size() > kCopyBodyBelow) {
    out.queue_copy(scratch_);
    out.queue(std::move(tail));
    out.queue_copy("\r\n");
    return;
  }
  scratch_ += tail.view();
  scratch_ += "\r\n";
  out.queue_copy(scratch_);
}

void RequestWriter::reserve(RequestSink& out, int timeout_s) {
  if (timeout_s < 0) {
    out.queue_copy("reserve\r\n");
    return;
  }
  scratch_.clear();
  scratch_ += "reserve-with-timeout ";
  append_uint(static_cast<std::uint64_t>(timeout_s));
  scratch_ += "\r\n";
  out.queue_copy(scratch_);
}

void RequestWriter::delete_job(RequestSink& out, std::uint64_t id) {
  scratch_.clear();
  scratch_ += "delete ";
  append_uint(id);
  scratch_ += "\r\n";
  out.queue_copy(scratch_);
}

// ---- replies --------------------------------------------------------------------------------------------------

void ReplyParser::reset() noexcept {
  phase_ = Phase::line;
  pos_ = 0;
  size_ = 0;
}

Reply ReplyParser::parse(SliceQueue& in, Expect e) {
  if (phase_ == Phase::line) {
    FrameResult f = in.take_until("\r\n", kMaxReplyLine);
    if (f.status == FrameResult::Status::need_more) return Reply::need_more();
    if (f.status == FrameResult::Status::too_long) return Reply::wrong("reply line too long");
    Reply r = on_line(f.frame.view(), e);
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

Reply ReplyParser::on_line(std::string_view line, Expect e) {
  if (const char* err = error_line(line)) return Reply::wrong(err);
  std::uint64_t n = 0;
  switch (e) {
    case Expect::use:
      if (line.starts_with("USING ")) return Reply::complete();
      return Reply::wrong("unexpected reply to use");
    case Expect::watch:
      if (number_after(line, "WATCHING", n)) return Reply::complete();
      return Reply::wrong("unexpected reply to watch");
    case Expect::put:
      if (number_after(line, "INSERTED", id_)) return Reply::complete();
      return Reply::wrong("unexpected reply to put");
    case Expect::delete_job:
      if (line == "DELETED") return Reply::complete();
      return Reply::wrong("unexpected reply to delete");
    case Expect::reserve: {
      if (!line.starts_with("RESERVED ")) return Reply::wrong("unexpected reply to reserve");
      std::string_view rest = line.substr(9);
      std::size_t space = rest.find(' ');
      if (space == std::string_view::npos || !parse_uint(rest.substr(0, space), id_) ||
          !parse_uint(rest.substr(space + 1), size_)) {
        return Reply::wrong("malformed RESERVED line");
      }
      if (size_ < BodyPattern::kHeaderSize || size_ > bodies_->max_size()) {
        return Reply::wrong("reserved job has a size no ringlet job of this run has");
      }
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
