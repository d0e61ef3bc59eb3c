// memcache_codec.cpp — memcached text and meta requests and replies (see memcache_codec.hpp).
#include "ringlet/loadgen/memcache_codec.hpp"

#include <algorithm>
#include <array>
#include <limits>

namespace ringlet::loadgen::memcache {

namespace mc = ::ringlet::memcache;

namespace {

// Composes a request into the writer's scratch string, so it leaves as one copy (one iovec).
struct ScratchOut {
  std::string& text;
  void append_copy(std::string_view bytes) { text += bytes; }
};

// The wrong-reply description of an error line, or nullptr.
const char* error_reply(const mc::ReplyLine& line) noexcept {
  switch (line.kind) {
    case mc::ReplyKind::error:
      return "server replied ERROR";
    case mc::ReplyKind::client_error:
      return "server replied CLIENT_ERROR";
    case mc::ReplyKind::server_error:
      return "server replied SERVER_ERROR";
    default:
      return nullptr;
  }
}

template <class T>
bool parse_uint(std::string_view text, T& out) noexcept {
  std::uint64_t v = 0;
  if (!mc::parse_reply_number(text, v) || v > std::numeric_limits<T>::max()) return false;
  out = static_cast<T>(v);
  return true;
}

}  // namespace

// ---- requests -------------------------------------------------------------------------------------------------

// The text of `key`, written at position `slot` of the keys scratch (views of earlier slots stay valid: the
// scratch is sized for kMaxMultiget keys before the first is written).
std::string_view RequestWriter::key_text(std::uint64_t key, std::size_t slot) {
  const std::size_t size = keys_->key_size();
  if (keys_text_.size() < size * kMaxMultiget) keys_text_.resize(size * kMaxMultiget);
  char* at = keys_text_.data() + slot * size;
  keys_->write(key, at);
  return {at, size};
}

void RequestWriter::get(RequestSink& out, std::span<const std::uint64_t> keys) {
  RINGLET_ASSERT(!keys.empty() && keys.size() <= kMaxMultiget);
  scratch_.clear();
  ScratchOut text{scratch_};
  if (protocol_ == Protocol::text) {
    std::array<std::string_view, kMaxMultiget> views;
    for (std::size_t i = 0; i < keys.size(); ++i) views[i] = key_text(keys[i], i);
    mc::write_retrieval(text, "get", std::span<const std::string_view>(views.data(), keys.size()));
  } else if (keys.size() == 1) {
    mc::write_meta(text, "mg", key_text(keys[0], 0), " f v");
  } else {
    // Quiet gets suppress EN for misses; the key flag names each hit; mn marks the end of the batch.
    for (std::uint64_t k : keys) mc::write_meta(text, "mg", key_text(k, 0), " k f v q");
    mc::write_request_line(text, "mn");
  }
  out.queue_copy(scratch_);
}

void RequestWriter::set(RequestSink& out, std::uint64_t key, std::uint32_t version, Quiet quiet) {
  std::size_t size = values_->value_size();
  scratch_.clear();
  ScratchOut text{scratch_};
  if (protocol_ == Protocol::text) {
    mc::StorageLine line;
    line.command = "set";
    line.key = key_text(key, 0);
    line.flags = version;
    line.bytes = size;
    line.noreply = quiet == Quiet::yes;
    mc::write_storage(text, line);
  } else {
    mc::MetaFlagWriter flags;
    flags.add('F', std::uint64_t{version});
    if (quiet == Quiet::yes) flags.add('q');
    mc::write_meta_set(text, key_text(key, 0), size, flags.text());
  }
  char hdr[ValuePattern::kHeaderSize];
  values_->header(key, version, hdr);
  scratch_.append(hdr, std::min(size, ValuePattern::kHeaderSize));
  Slice tail = values_->tail(key, version);
  if (tail.size() > kCopyValueBelow) {
    out.queue_copy(scratch_);
    out.queue(std::move(tail));
    out.queue_copy(mc::wire::kCrlf);
    return;
  }
  scratch_ += tail.view();
  scratch_ += mc::wire::kCrlf;
  out.queue_copy(scratch_);
}

void RequestWriter::barrier(RequestSink& out, std::uint64_t last_key) {
  if (protocol_ == Protocol::meta) {
    out.queue_copy("mn\r\n");
    return;
  }
  get(out, std::span<const std::uint64_t>(&last_key, 1));
}

// ---- replies --------------------------------------------------------------------------------------------------

void ReplyParser::reset() noexcept {
  phase_ = Phase::line;
  cursor_ = 0;
  hits_ = 0;
  data_pos_ = 0;
}

Reply ReplyParser::parse(SliceQueue& in, const Expect& e) {
  if (e.kind == Expect::Kind::none) return in.empty() ? Reply::need_more() : Reply::complete();
  for (;;) {
    if (phase_ == Phase::data) {
      Reply r = parse_data(in);
      if (r.status != Reply::Status::complete) return r;
      phase_ = Phase::data_end;
    }
    if (phase_ == Phase::data_end) {
      if (in.bytes() < 2) return Reply::need_more();
      FrameResult end = in.take_exactly(2);
      if (end.frame.view() != mc::wire::kCrlf) return Reply::wrong("value not followed by CRLF");
      ++hits_;
      phase_ = Phase::line;
      // A meta get of one key is complete after its one value; other gets end with END / MN.
      if (protocol_ == Protocol::meta && e.key_count == 1) return finish_values(e);
    }
    FrameResult f = in.take_until(mc::wire::kCrlf, kMaxReplyLine);
    if (f.status == FrameResult::Status::need_more) return Reply::need_more();
    if (f.status == FrameResult::Status::too_long) return Reply::wrong("reply line too long");
    Reply r = on_line(f.frame.view(), e);
    if (r.status != Reply::Status::need_more) return r;
    // need_more from on_line means "line consumed, keep going" (a VALUE header, its data follows).
  }
}

Reply ReplyParser::on_line(std::string_view text, const Expect& e) {
  const mc::ReplyLine line = mc::parse_reply_line(text);
  if (const char* err = error_reply(line)) return Reply::wrong(err);
  switch (e.kind) {
    case Expect::Kind::stored:
      if (protocol_ == Protocol::text ? line.kind == mc::ReplyKind::stored
                                      : line.kind == mc::ReplyKind::meta_hd && line.meta_flags.empty()) {
        return Reply::complete();
      }
      return Reply::wrong("set not stored");
    case Expect::Kind::noop:
      if (line.kind == mc::ReplyKind::meta_mn && line.meta_flags.empty()) return Reply::complete();
      return Reply::wrong("unexpected reply to mn");
    case Expect::Kind::values:
      if (protocol_ == Protocol::text) {
        if (line.kind == mc::ReplyKind::end) return finish_values(e);
        if (line.kind == mc::ReplyKind::value) return on_value_line(line, e);
        return Reply::wrong("unexpected reply to get");
      }
      if (line.kind == mc::ReplyKind::meta_value) return on_meta_value_line(line, e);
      if (e.key_count == 1 && line.kind == mc::ReplyKind::meta_en) return finish_values(e);
      if (e.key_count > 1 && line.kind == mc::ReplyKind::meta_mn) return finish_values(e);
      return Reply::wrong("unexpected reply to mg");
    case Expect::Kind::none:
      break;
  }
  return Reply::wrong("unexpected reply");
}

// "VALUE <key> <flags> <bytes>[ <cas unique>]": the flags carry the value's version.
Reply ReplyParser::on_value_line(const mc::ReplyLine& line, const Expect& e) {
  if (!line.well_formed) return Reply::wrong("malformed VALUE line");
  std::optional<std::uint64_t> key = keys_->parse(line.key);
  if (!key) return Reply::wrong("VALUE for a key not asked for");
  return start_data(*key, line.client_flags, static_cast<std::size_t>(line.length), e);
}

// "VA <size> <flag>*", the flags we asked for (f, and k for a multiget) in any order.
Reply ReplyParser::on_meta_value_line(const mc::ReplyLine& line, const Expect& e) {
  if (!line.well_formed) return Reply::wrong("malformed VA line");
  std::optional<std::uint64_t> key;
  std::optional<std::uint32_t> version;
  mc::Tokens flags(line.meta_flags);
  for (std::string_view flag = flags.next(); !flag.empty(); flag = flags.next()) {
    if (flag[0] == 'f') {
      std::uint32_t v = 0;
      if (!parse_uint(flag.substr(1), v)) return Reply::wrong("malformed VA line");
      version = v;
    } else if (flag[0] == 'k') {
      key = keys_->parse(flag.substr(1));
      if (!key) return Reply::wrong("VA for a key not asked for");
    }
    // Other flags (a server may echo more than asked) carry nothing we check.
  }
  if (!version) return Reply::wrong("VA without the f flag");
  if (!key) {
    if (e.key_count != 1) return Reply::wrong("VA without the k flag in a multiget");
    key = e.keys[0];
  }
  return start_data(*key, *version, static_cast<std::size_t>(line.length), e);
}

// Matches the value's key to the next requested key it can answer (misses leave gaps) and starts checking data.
Reply ReplyParser::start_data(std::uint64_t key, std::uint32_t version, std::size_t length, const Expect& e) {
  std::uint16_t j = cursor_;
  while (j < e.key_count && e.keys[j] != key) ++j;
  if (j == e.key_count) return Reply::wrong("value for a key not asked for");
  cursor_ = static_cast<std::uint16_t>(j + 1);
  if (length != values_->value_size()) return Reply::wrong("value length differs");
  values_->header(key, version, data_header_);
  data_offset_ = ValuePattern::offset_of(key, version);
  data_pos_ = 0;
  phase_ = Phase::data;
  return Reply::need_more();
}

// Compares the value's bytes as they lie in the receive buffers, consuming them.
Reply ReplyParser::parse_data(SliceQueue& in) {
  std::size_t size = values_->value_size();
  while (data_pos_ < size) {
    if (in.empty()) return Reply::need_more();
    std::string_view piece = in.front().view();
    piece = piece.substr(0, size - data_pos_);
    if (!values_->matches(data_header_, data_offset_, data_pos_, piece)) return Reply::wrong("value bytes differ");
    data_pos_ += piece.size();
    in.consume(piece.size());
  }
  return Reply::complete();
}

Reply ReplyParser::finish_values(const Expect& e) {
  std::uint16_t misses = static_cast<std::uint16_t>(e.key_count - hits_);  // hits <= keys: one per cursor step
  total_hits_ += hits_;
  total_misses_ += misses;
  if (misses != 0 && e.must_hit == MustHit::yes) return Reply::wrong("get missed a key that must exist");
  return Reply::complete();
}

}  // namespace ringlet::loadgen::memcache
