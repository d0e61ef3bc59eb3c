// client.cpp — spelling beanstalkd commands and reading reply lines (see client.hpp).
#include "ringlet/proto/beanstalk/client.hpp"

#include <charconv>

#include "ringlet/base/fatal.hpp"

namespace ringlet::beanstalk {

namespace {

// The word's entry in kReplies, or nullptr.
const ReplySpec* find_reply(std::string_view word) noexcept {
  for (const ReplySpec& spec : kReplies) {
    if (spec.word == word) return &spec;
  }
  return nullptr;
}

// Reads "<digits>" at the front of `rest` (no sign, no space) into `out`, and drops it from `rest`.
bool take_number(std::string_view& rest, std::uint64_t& out) noexcept {
  if (rest.empty() || rest[0] < '0' || rest[0] > '9') return false;
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), out);
  if (ec != std::errc{}) return false;
  rest.remove_prefix(static_cast<std::size_t>(end - rest.data()));
  return true;
}

// Reads " <digits>" (one space, then a number).
bool take_spaced_number(std::string_view& rest, std::uint64_t& out) noexcept {
  if (rest.empty() || rest[0] != ' ') return false;
  rest.remove_prefix(1);
  return take_number(rest, out);
}

}  // namespace

// ---- commands -------------------------------------------------------------------------------------------------

CommandLine::CommandLine(Command c) noexcept { add(command_name(c)); }

CommandLine& CommandLine::add(std::string_view text) noexcept {
  RINGLET_ASSERT(text.size() <= sizeof buf_ - len_);
  text.copy(buf_ + len_, text.size());
  len_ += text.size();
  return *this;
}

CommandLine& CommandLine::number(std::uint64_t v) noexcept {
  add(" ");
  auto [end, ec] = std::to_chars(buf_ + len_, buf_ + sizeof buf_, v);
  RINGLET_ASSERT(ec == std::errc{});
  len_ = static_cast<std::size_t>(end - buf_);
  return *this;
}

CommandLine& CommandLine::end() noexcept { return add("\r\n"); }

CommandLine CommandLine::bare(Command c) noexcept {
  RINGLET_ASSERT(command_spec(c).arity == 0);
  return std::move(CommandLine(c).end());
}

CommandLine CommandLine::with_tube(Command c, std::string_view tube) noexcept {
  RINGLET_ASSERT(command_spec(c).arity == 1 && command_spec(c).args[0] == Arg::tube);
  return std::move(CommandLine(c).add(" ").add(tube).end());
}

CommandLine CommandLine::with_number(Command c, std::uint64_t n) noexcept {
  const CommandSpec& spec = command_spec(c);
  RINGLET_ASSERT(spec.arity == 1 && spec.args[0] != Arg::tube && spec.args[0] != Arg::tube_word);
  return std::move(CommandLine(c).number(n).end());
}

CommandLine CommandLine::put(std::uint32_t priority, std::uint32_t delay_s, std::uint32_t ttr_s,
                             std::uint32_t bytes) noexcept {
  return std::move(CommandLine(Command::put).number(priority).number(delay_s).number(ttr_s).number(bytes).end());
}

CommandLine CommandLine::release(std::uint64_t id, std::uint32_t priority, std::uint32_t delay_s) noexcept {
  return std::move(CommandLine(Command::release).number(id).number(priority).number(delay_s).end());
}

CommandLine CommandLine::bury(std::uint64_t id, std::uint32_t priority) noexcept {
  return std::move(CommandLine(Command::bury).number(id).number(priority).end());
}

CommandLine CommandLine::pause_tube(std::string_view tube, std::uint32_t delay_s) noexcept {
  return std::move(CommandLine(Command::pause_tube).add(" ").add(tube).number(delay_s).end());
}

void compose_put(OutputChain& out, std::uint32_t priority, std::uint32_t delay_s, std::uint32_t ttr_s, Slice body) {
  compose(out, CommandLine::put(priority, delay_s, ttr_s, static_cast<std::uint32_t>(body.size())));
  out.append(std::move(body));
  out.append_copy(std::string_view("\r\n"));
}

// ---- replies --------------------------------------------------------------------------------------------------

ReplyLine parse_reply_line(std::string_view line) noexcept {
  ReplyLine r;
  const std::size_t space = line.find(' ');
  const ReplySpec* spec = find_reply(line.substr(0, space));
  if (spec == nullptr) return r;
  r.kind = spec->kind;
  std::string_view rest = space == std::string_view::npos ? std::string_view() : line.substr(space);
  bool ok = false;
  switch (spec->args) {
    case ReplyArgs::none:
      ok = true;
      break;
    case ReplyArgs::id:
      ok = take_spaced_number(rest, r.id);
      break;
    case ReplyArgs::optional_id:
      ok = rest.empty() || (r.has_id = take_spaced_number(rest, r.id));
      break;
    case ReplyArgs::count:
      ok = take_spaced_number(rest, r.count);
      break;
    case ReplyArgs::optional_count:
      ok = rest.empty() || (r.has_count = take_spaced_number(rest, r.count));
      break;
    case ReplyArgs::id_bytes:
      ok = take_spaced_number(rest, r.id) && take_spaced_number(rest, r.bytes);
      break;
    case ReplyArgs::bytes:
      ok = take_spaced_number(rest, r.bytes);
      break;
    case ReplyArgs::tube:
      ok = rest.size() > 1;
      if (ok) r.tube = rest.substr(1);
      rest = {};
      break;
  }
  r.status = ok && rest.empty() ? ReplyStatus::ok : ReplyStatus::malformed;
  return r;
}

ReplyParseStatus ReplyParser::parse(SliceQueue& in) {
  line_.reset();
  FrameResult f = in.take_until("\r\n", kMaxReplyLine);
  if (f.status == FrameResult::Status::need_more) return ReplyParseStatus::need_more;
  if (f.status == FrameResult::Status::too_long) return ReplyParseStatus::too_long;
  line_ = std::move(f.frame);
  reply_ = parse_reply_line(line_.view());
  return ReplyParseStatus::complete;
}

ReplyBody take_reply_body(SliceQueue& in, std::uint64_t bytes) {
  if (in.bytes() < bytes || in.bytes() - bytes < 2) return {ReplyBody::Status::need_more, {}};
  FrameResult f = in.take_exactly(static_cast<std::size_t>(bytes) + 2);
  RINGLET_ASSERT(f.status == FrameResult::Status::frame);
  if (f.frame.view().substr(static_cast<std::size_t>(bytes)) != "\r\n") return {ReplyBody::Status::expected_crlf, {}};
  f.frame.remove_suffix(2);
  return {ReplyBody::Status::complete, std::move(f.frame)};
}

}  // namespace ringlet::beanstalk
