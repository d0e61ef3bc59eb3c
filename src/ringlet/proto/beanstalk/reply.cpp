// reply.cpp — composing beanstalkd's replies (see reply.hpp). Each reply line is formatted on the stack and copied
// once into the chain's pooled tail; job bodies are appended as Slices.
#include "ringlet/proto/beanstalk/reply.hpp"

#include <charconv>

#include "ringlet/base/fatal.hpp"

namespace ringlet::beanstalk {

namespace {

// The longest line composed here: "USING " + a 200-byte tube + CRLF, or RESERVED with two 20-digit numbers.
constexpr std::size_t kLineCapacity = 256;

class Line {
 public:
  explicit Line(ReplyKind kind) { add(reply_word(kind)); }
  Line& add(std::string_view text) {
    RINGLET_ASSERT(text.size() <= kLineCapacity - len_);
    text.copy(buf_ + len_, text.size());
    len_ += text.size();
    return *this;
  }
  Line& number(std::uint64_t v) {
    add(" ");
    auto [end, ec] = std::to_chars(buf_ + len_, buf_ + kLineCapacity, v);
    RINGLET_ASSERT(ec == std::errc{});
    len_ = static_cast<std::size_t>(end - buf_);
    return *this;
  }
  void end_to(OutputChain& out) {
    add("\r\n");
    out.append_copy(std::string_view(buf_, len_));
  }

 private:
  char buf_[kLineCapacity];
  std::size_t len_ = 0;
};

void compose_job(OutputChain& out, ReplyKind kind, std::uint64_t id, Slice body) {
  Line(kind).number(id).number(body.size()).end_to(out);
  out.append(std::move(body));
  out.append_copy(std::string_view("\r\n"));
}

}  // namespace

void compose(OutputChain& out, ReplyKind kind) {
  const ReplyArgs args = reply_spec(kind).args;
  RINGLET_ASSERT(args == ReplyArgs::none || args == ReplyArgs::optional_id || args == ReplyArgs::optional_count);
  Line(kind).end_to(out);
}

void compose_inserted(OutputChain& out, std::uint64_t id) { Line(ReplyKind::inserted).number(id).end_to(out); }
void compose_buried(OutputChain& out, std::uint64_t id) { Line(ReplyKind::buried).number(id).end_to(out); }
void compose_watching(OutputChain& out, std::uint64_t count) { Line(ReplyKind::watching).number(count).end_to(out); }
void compose_kicked(OutputChain& out, std::uint64_t count) { Line(ReplyKind::kicked).number(count).end_to(out); }

void compose_using(OutputChain& out, std::string_view tube) {
  Line(ReplyKind::using_tube).add(" ").add(tube).end_to(out);
}

void compose_reserved(OutputChain& out, std::uint64_t id, Slice body) {
  compose_job(out, ReplyKind::reserved, id, std::move(body));
}
void compose_found(OutputChain& out, std::uint64_t id, Slice body) {
  compose_job(out, ReplyKind::found, id, std::move(body));
}

void compose_ok(OutputChain& out, std::string_view yaml) {
  Line(ReplyKind::ok).number(yaml.size()).end_to(out);
  out.append_copy(yaml);
  out.append_copy(std::string_view("\r\n"));
}

YamlWriter& YamlWriter::field(std::string_view key, std::string_view bare) {
  out_->append(key).append(": ").append(bare).push_back('\n');
  return *this;
}

YamlWriter& YamlWriter::quoted(std::string_view key, std::string_view value) {
  out_->append(key).append(": \"").append(value).append("\"\n");
  return *this;
}

YamlWriter& YamlWriter::item(std::string_view value) {
  out_->append("- ").append(value).push_back('\n');
  return *this;
}

}  // namespace ringlet::beanstalk
