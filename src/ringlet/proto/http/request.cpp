// request.cpp — Request's header walk and the small name helpers.
#include "ringlet/proto/http/request.hpp"

#include <cstring>

#include "ringlet/proto/http/char_class.hpp"

namespace ringlet::http {

std::string_view method_name(Method m) noexcept {
  switch (m) {
    case Method::get: return "GET";
    case Method::head: return "HEAD";
    case Method::post: return "POST";
    case Method::put: return "PUT";
    case Method::delete_: return "DELETE";
    case Method::connect: return "CONNECT";
    case Method::options: return "OPTIONS";
    case Method::trace: return "TRACE";
    case Method::patch: return "PATCH";
    case Method::other: break;
  }
  return {};
}

bool equals_ignore_case(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (detail::to_lower(a[i]) != detail::to_lower(b[i])) return false;
  }
  return true;
}

// The block was validated by the parser: every line is "name:value" ending in LF or CRLF, up to an empty line.
void HeaderIterator::load() noexcept {
  if (pos_ == end_) return;
  const auto* lf = static_cast<const char*>(std::memchr(pos_, '\n', static_cast<std::size_t>(end_ - pos_)));
  const char* line_end = lf != nullptr ? lf : end_;
  const char* content_end = (line_end > pos_ && line_end[-1] == '\r') ? line_end - 1 : line_end;
  if (content_end == pos_) {  // the final empty line
    pos_ = end_;
    return;
  }
  std::string_view line(pos_, static_cast<std::size_t>(content_end - pos_));
  std::size_t colon = line.find(':');
  field_.name = line.substr(0, colon);
  field_.value = colon == std::string_view::npos ? std::string_view() : detail::trim_ows(line.substr(colon + 1));
  next_ = lf != nullptr ? lf + 1 : end_;
}

HeaderRange Request::headers() const noexcept {
  if (headers_.off == 0) return {};
  const char* b = base_ + headers_.off;
  const char* e = b + headers_.len;
  return {HeaderIterator(b, e), HeaderIterator(e, e)};
}

std::optional<std::string_view> Request::find(std::string_view name) const noexcept {
  for (const HeaderField& f : headers()) {
    if (equals_ignore_case(f.name, name)) return f.value;
  }
  return std::nullopt;
}

}  // namespace ringlet::http
