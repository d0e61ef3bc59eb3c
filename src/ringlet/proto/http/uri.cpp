// uri.cpp — percent-decoding of request paths.
#include "ringlet/proto/http/uri.hpp"

#include "ringlet/proto/http/char_class.hpp"

namespace ringlet::http {

PercentDecodeResult percent_decode(std::string_view in, std::span<char> out) noexcept {
  PercentDecodeResult r;
  if (out.size() < in.size()) {
    r.status = PercentDecodeStatus::bad_escape;
    return r;
  }
  std::size_t w = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (in.size() - i < 3) {
        r.status = PercentDecodeStatus::bad_escape;
        return r;
      }
      int hi = detail::hex_value(in[i + 1]);
      int lo = detail::hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) {
        r.status = PercentDecodeStatus::bad_escape;
        return r;
      }
      c = static_cast<char>(hi * 16 + lo);
      if (c == '\0') {
        r.status = PercentDecodeStatus::nul_byte;
        return r;
      }
      if (c == '/') r.encoded_slash = true;
      i += 2;
    }
    out[w++] = c;  // w <= i: writing in place never overtakes the reading position
  }
  r.size = w;
  return r;
}

}  // namespace ringlet::http
