// memcache_codec.cpp — memcached text and meta requests and replies (see memcache_codec.hpp).
#include "ringlet/loadgen/memcache_codec.hpp"

#include <algorithm>
#include <charconv>

namespace ringlet::loadgen::memcache {

namespace {

// Splits off the next space-separated token of `rest`.
std::string_view next_token(std::string_view& rest) noexcept {
  std::size_t space = rest.find(' ');
  std::string_view token = rest.substr(0, space);
  rest = space == std::string_view::npos ? std::string_view{} : rest.substr(space + 1);
  return token;
}

template <class T>
bool parse_uint(std::string_view text, T& out) noexcept {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size();
}

bool starts_with_word(std::string_view line, std::string_view word) noexcept {
  return line.substr(0, word.size()) == word && (line.size() == word.size() || line[word.size()] == ' ');
}

// An error line, in either protocol, or nullptr.
const char* error_reply(std::string_view line) noexcept {
  if (line == wire::kError) return "server replied ERROR";
  if (starts_with_word(line, wire::kClientError)) return "server replied CLIENT_ERROR";
  if (starts_with_word(line, wire::kServerError)) return "server replied SERVER_ERROR";
  return nullptr;
}

}  // namespace

// ---- requests -------------------------------------------------------------------------------------------------

void RequestWriter::append_key(std::uint64_t key) {
  std::size_t at = scratch_.size();
  scratch_.resize(at + keys_->key_size());
  keys_->write(key, scratch_.data() + at);
}

void RequestWriter::append_uint(std::uint64_t v) {
  char digits[20];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, v);
  scratch_.append(digits, end);
}

void RequestWriter::get(RequestSink& out, std::span<const std::uint64_t> keys) {
  RINGLET_ASSERT(!keys.empty() && keys.size() <= kMaxMultiget);
  scratch_.clear();
  if (protocol_ == Protocol::text) {
    scratch_ += "get";
    for (std::uint64_t k : keys) {
      scratch_ += ' ';
      append_key(k);
    }
    scratch_ += wire::kCrlf;
  } else if (keys.size() == 1) {
    scratch_ += "mg ";
    append_key(keys[0]);
    scratch_ += " f v\r\n";
  } else {
    // Quiet gets suppress EN for misses; the key flag names each hit; mn marks the end of the batch.
    for (std::uint64_t k : keys) {
      scratch_ += "mg ";
      append_key(k);
      scratch_ += " k f v q\r\n";
    }
    scratch_ += "mn\r\n";
  }
  out.queue_copy(scratch_);
}

void RequestWriter::set(RequestSink& out, std::uint64_t key, std::uint32_t version, Quiet quiet) {
  std::size_t size = values_->value_size();
  scratch_.clear();
  if (protocol_ == Protocol::text) {
    scratch_ += "set ";
    append_key(key);
    scratch_ += ' ';
    append_uint(version);
    scratch_ += " 0 ";
    append_uint(size);
    if (quiet == Quiet::yes) scratch_ += " noreply";
  } else {
    scratch_ += "ms ";
    append_key(key);
    scratch_ += ' ';
    append_uint(size);
    scratch_ += " F";
    append_uint(version);
    if (quiet == Quiet::yes) scratch_ += " q";
  }
  scratch_ += wire::kCrlf;
  char hdr[ValuePattern::kHeaderSize];
  values_->header(key, version, hdr);
  scratch_.append(hdr, std::min(size, ValuePattern::kHeaderSize));
  Slice tail = values_->tail(key, version);
  if (tail.size() > kCopyValueBelow) {
    out.queue_copy(scratch_);
    out.queue(std::move(tail));
    out.queue_copy(wire::kCrlf);
    return;
  }
  scratch_ += tail.view();
  scratch_ += wire::kCrlf;
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
      if (end.frame.view() != wire::kCrlf) return Reply::wrong("value not followed by CRLF");
      ++hits_;
      phase_ = Phase::line;
      // A meta get of one key is complete after its one value; other gets end with END / MN.
      if (protocol_ == Protocol::meta && e.key_count == 1) return finish_values(e);
    }
    FrameResult f = in.take_until(wire::kCrlf, kMaxReplyLine);
    if (f.status == FrameResult::Status::need_more) return Reply::need_more();
    if (f.status == FrameResult::Status::too_long) return Reply::wrong("reply line too long");
    Reply r = on_line(f.frame.view(), e);
    if (r.status != Reply::Status::need_more) return r;
    // need_more from on_line means "line consumed, keep going" (a VALUE header, its data follows).
  }
}

Reply ReplyParser::on_line(std::string_view line, const Expect& e) {
  if (const char* err = error_reply(line)) return Reply::wrong(err);
  switch (e.kind) {
    case Expect::Kind::stored:
      if (line == (protocol_ == Protocol::text ? wire::kStored : wire::kMetaDone)) return Reply::complete();
      return Reply::wrong("set not stored");
    case Expect::Kind::noop:
      if (line == wire::kMetaNoop) return Reply::complete();
      return Reply::wrong("unexpected reply to mn");
    case Expect::Kind::values:
      if (protocol_ == Protocol::text) {
        if (line == wire::kEnd) return finish_values(e);
        if (line.starts_with(wire::kValue)) return on_value_line(line, e);
        return Reply::wrong("unexpected reply to get");
      }
      if (line.starts_with(wire::kMetaValue)) return on_meta_value_line(line, e);
      if (e.key_count == 1 && line == wire::kMetaMiss) return finish_values(e);
      if (e.key_count > 1 && line == wire::kMetaNoop) return finish_values(e);
      return Reply::wrong("unexpected reply to mg");
    case Expect::Kind::none:
      break;
  }
  return Reply::wrong("unexpected reply");
}

// "VALUE <key> <flags> <bytes>[ <cas unique>]"
Reply ReplyParser::on_value_line(std::string_view line, const Expect& e) {
  std::string_view rest = line.substr(wire::kValue.size());
  std::string_view key_text = next_token(rest);
  std::string_view flags_text = next_token(rest);
  std::string_view bytes_text = next_token(rest);
  std::string_view cas_text = next_token(rest);
  std::uint32_t version = 0;
  std::size_t length = 0;
  std::uint64_t cas = 0;
  if (!parse_uint(flags_text, version) || !parse_uint(bytes_text, length) || !rest.empty() ||
      (!cas_text.empty() && !parse_uint(cas_text, cas))) {
    return Reply::wrong("malformed VALUE line");
  }
  std::optional<std::uint64_t> key = keys_->parse(key_text);
  if (!key) return Reply::wrong("VALUE for a key not asked for");
  return start_data(*key, version, length, e);
}

// "VA <size> <flag>*", the flags we asked for (f, and k for a multiget) in any order.
Reply ReplyParser::on_meta_value_line(std::string_view line, const Expect& e) {
  std::string_view rest = line.substr(wire::kMetaValue.size());
  std::size_t length = 0;
  if (!parse_uint(next_token(rest), length)) return Reply::wrong("malformed VA line");
  std::optional<std::uint64_t> key;
  std::optional<std::uint32_t> version;
  while (!rest.empty()) {
    std::string_view flag = next_token(rest);
    if (flag.empty()) return Reply::wrong("malformed VA line");
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
  return start_data(*key, *version, length, e);
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
