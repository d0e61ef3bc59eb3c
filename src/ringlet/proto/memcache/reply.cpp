// reply.cpp — composing memcached replies (see reply.hpp).
#include "ringlet/proto/memcache/reply.hpp"

#include <charconv>
#include <cstring>

namespace ringlet::memcache {

namespace {

// Room for " <20 digits>" or "-" and 19 digits.
constexpr std::size_t kNumber = 21;

std::string_view format(char (&buf)[kNumber], std::uint64_t v) noexcept {
  auto [end, ec] = std::to_chars(buf, buf + kNumber, v);
  return {buf, static_cast<std::size_t>(end - buf)};
}

}  // namespace

// ---- MetaFlagWriter ---------------------------------------------------------------------------------------------

void MetaFlagWriter::add(char flag) { add(flag, std::string_view{}); }

void MetaFlagWriter::add(char flag, std::string_view token) {
  if (size_ + 2 + token.size() > kCapacity) {
    overflowed_ = true;
    return;
  }
  buf_[size_++] = ' ';
  buf_[size_++] = flag;
  if (!token.empty()) std::memcpy(buf_ + size_, token.data(), token.size());  // memcpy(nullptr, 0) is UB
  size_ += token.size();
}

void MetaFlagWriter::add(char flag, std::uint64_t value) {
  char digits[kNumber];
  add(flag, format(digits, value));
}

void MetaFlagWriter::add(char flag, std::int64_t value) {
  char digits[kNumber];
  auto [end, ec] = std::to_chars(digits, digits + kNumber, value);
  add(flag, std::string_view(digits, static_cast<std::size_t>(end - digits)));
}

// ---- text replies ----------------------------------------------------------------------------------------------

void write_line(OutputChain& out, std::string_view line) {
  out.append_copy(line);
  out.append_copy(wire::kCrlf);
}

namespace {

void write_value_head(OutputChain& out, std::string_view key, std::uint32_t flags, std::size_t bytes) {
  char digits[kNumber];
  out.append_copy(wire::kValue);
  out.append_copy(" ");
  out.append_copy(key);
  out.append_copy(" ");
  out.append_copy(format(digits, flags));
  out.append_copy(" ");
  out.append_copy(format(digits, bytes));
}

void write_data(OutputChain& out, Slice data) {
  if (!data.empty()) out.append(std::move(data));
  out.append_copy(wire::kCrlf);
}

}  // namespace

void write_value(OutputChain& out, std::string_view key, std::uint32_t flags, Slice data) {
  write_value_head(out, key, flags, data.size());
  out.append_copy(wire::kCrlf);
  write_data(out, std::move(data));
}

void write_value(OutputChain& out, std::string_view key, std::uint32_t flags, Slice data, std::uint64_t cas) {
  char digits[kNumber];
  write_value_head(out, key, flags, data.size());
  out.append_copy(" ");
  out.append_copy(format(digits, cas));
  out.append_copy(wire::kCrlf);
  write_data(out, std::move(data));
}

void write_number(OutputChain& out, std::uint64_t value) {
  char digits[kNumber];
  write_line(out, format(digits, value));
}

void write_version(OutputChain& out, std::string_view version) {
  out.append_copy(wire::kVersion);
  out.append_copy(" ");
  write_line(out, version);
}

void write_stat(OutputChain& out, std::string_view name, std::string_view value) {
  out.append_copy(wire::kStat);
  out.append_copy(" ");
  out.append_copy(name);
  out.append_copy(" ");
  write_line(out, value);
}

void write_stat(OutputChain& out, std::string_view name, std::uint64_t value) {
  char digits[kNumber];
  write_stat(out, name, format(digits, value));
}

void write_client_error(OutputChain& out, std::string_view message) {
  out.append_copy(wire::kClientError);
  out.append_copy(" ");
  write_line(out, message);
}

void write_server_error(OutputChain& out, std::string_view message) {
  out.append_copy(wire::kServerError);
  out.append_copy(" ");
  write_line(out, message);
}

// ---- meta replies ----------------------------------------------------------------------------------------------

void write_meta(OutputChain& out, std::string_view code, const MetaFlagWriter& flags) {
  out.append_copy(code);
  write_line(out, flags.text());
}

void write_meta_value(OutputChain& out, Slice data, const MetaFlagWriter& flags) {
  char digits[kNumber];
  out.append_copy(wire::kMetaValue);
  out.append_copy(" ");
  out.append_copy(format(digits, data.size()));
  write_line(out, flags.text());
  write_data(out, std::move(data));
}

}  // namespace ringlet::memcache
