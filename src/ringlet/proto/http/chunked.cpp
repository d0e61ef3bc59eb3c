// chunked.cpp — the chunked-coding state machine: byte by byte on framing lines, one memchr-free jump over data.
#include "ringlet/proto/http/chunked.hpp"

#include <algorithm>
#include <limits>

#include "ringlet/proto/http/char_class.hpp"

namespace ringlet::http {

namespace {

using detail::is;

constexpr const char* kBadSize = "invalid chunk size";
constexpr const char* kSizeTooLong = "chunk size has too many digits";
constexpr const char* kBodyTooLarge = "chunked body too large";
constexpr const char* kBadExtension = "invalid chunk extension";
constexpr const char* kExtensionTooLong = "chunk extension too long";
constexpr const char* kBareLf = "bare LF in chunk line";
constexpr const char* kBareCr = "bare CR in chunk line";
constexpr const char* kMissingDataCrlf = "chunk data not followed by CRLF";
constexpr const char* kBadTrailer = "invalid trailer field";
constexpr const char* kTrailerObsFold = "obs-fold in trailer";
constexpr const char* kTrailersTooLarge = "trailer section too large";

// Leading zeros are legal; this many digits is plenty for any 64-bit size and bounds a line of zeros.
constexpr std::uint32_t kMaxSizeDigits = 32;

bool is_ws(char c) noexcept { return c == ' ' || c == '\t'; }

// qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
bool is_qdtext(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return c == '\t' || c == ' ' || u == 0x21 || (u >= 0x23 && u <= 0x5b) || (u >= 0x5d && u <= 0x7e) || u >= 0x80;
}

// quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
bool is_quoted_pair_char(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return c == '\t' || c == ' ' || (u >= 0x21 && u <= 0x7e) || u >= 0x80;
}

}  // namespace

ChunkedStep ChunkedDecoder::fail(std::size_t consumed, std::uint16_t status, const char* reason) noexcept {
  state_ = State::error;
  err_status_ = status;
  err_reason_ = reason;
  ChunkedStep s;
  s.status = ChunkedStatus::error;
  s.consumed = consumed;
  s.http_status = status;
  s.reason = reason;
  return s;
}

ChunkedStep ChunkedDecoder::decode(std::string_view in) noexcept {
  if (state_ == State::done) return ChunkedStep{ChunkedStatus::done, 0, {}, 0, nullptr};
  if (state_ == State::error) return ChunkedStep{ChunkedStatus::error, 0, {}, err_status_, err_reason_};

  const std::size_t n = in.size();
  std::size_t i = 0;
  // A framing byte that does not fit the grammar: bare LF and bare CR get their own reasons.
  auto unexpected = [this, &i](char c, const char* reason) {
    return fail(i, 400, c == '\n' ? kBareLf : c == '\r' ? kBareCr : reason);
  };

  while (i < n) {
    const char c = in[i];
    switch (state_) {
      case State::size_first:
      case State::size: {
        const int v = detail::hex_value(c);
        if (v >= 0) {
          if (++ext_bytes_ > kMaxSizeDigits) return fail(i, 400, kSizeTooLong);
          if (remaining_ > (std::numeric_limits<std::uint64_t>::max() >> 4)) return fail(i, 413, kBodyTooLarge);
          remaining_ = remaining_ * 16 + static_cast<unsigned>(v);
          if (remaining_ > limits_.max_body_bytes - body_bytes_) return fail(i, 413, kBodyTooLarge);
          state_ = State::size;
          ++i;
          continue;
        }
        if (state_ == State::size_first) return unexpected(c, kBadSize);
        ext_bytes_ = 0;  // from here on it counts extension bytes
        last_chunk_ = remaining_ == 0;
        if (c == '\r') state_ = State::size_lf;
        else if (c == ';') state_ = State::ext_pre_name;
        else if (is_ws(c)) state_ = State::size_bws;
        else return unexpected(c, kBadSize);
        ++i;
        continue;
      }
      case State::size_lf:
        if (c != '\n') return fail(i, 400, kBareCr);
        ++i;
        ext_bytes_ = 0;
        if (last_chunk_) {
          state_ = State::trailer_line_start;
        } else {
          body_bytes_ += remaining_;  // checked against the limit while the size was read
          state_ = State::data;
        }
        continue;
      case State::data: {
        const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, n - i));
        ChunkedStep s;
        s.status = ChunkedStatus::data;
        s.data = in.substr(i, take);
        remaining_ -= take;
        if (remaining_ == 0) state_ = State::data_cr;
        s.consumed = i + take;
        return s;
      }
      case State::data_cr:
        if (c != '\r') return fail(i, 400, kMissingDataCrlf);
        state_ = State::data_lf;
        ++i;
        continue;
      case State::data_lf:
        if (c != '\n') return fail(i, 400, kMissingDataCrlf);
        state_ = State::size_first;
        remaining_ = 0;
        ext_bytes_ = 0;
        ++i;
        continue;
      case State::trailer_line_start:
      case State::trailer_name:
      case State::trailer_value:
      case State::trailer_lf:
      case State::final_lf:
        if (++trailer_bytes_ > limits_.max_trailer_bytes) return fail(i, 431, kTrailersTooLarge);
        switch (state_) {
          case State::trailer_line_start:
            if (c == '\r') state_ = State::final_lf;
            else if (is_ws(c)) return fail(i, 400, kTrailerObsFold);
            else if (is(c, detail::kTchar)) state_ = State::trailer_name;
            else return unexpected(c, kBadTrailer);
            break;
          case State::trailer_name:
            if (c == ':') state_ = State::trailer_value;
            else if (!is(c, detail::kTchar)) return unexpected(c, kBadTrailer);
            break;
          case State::trailer_value:
            if (c == '\r') state_ = State::trailer_lf;
            else if (!is(c, detail::kFieldValue)) return unexpected(c, kBadTrailer);
            break;
          case State::trailer_lf:
            if (c != '\n') return fail(i, 400, kBareCr);
            state_ = State::trailer_line_start;
            break;
          default:  // final_lf
            if (c != '\n') return fail(i, 400, kBareCr);
            state_ = State::done;
            return ChunkedStep{ChunkedStatus::done, i + 1, {}, 0, nullptr};
        }
        ++i;
        continue;
      default:
        break;
    }

    // Chunk extensions: BWS ";" BWS ext-name [ BWS "=" BWS ( token / quoted-string ) ], discarded.
    if (++ext_bytes_ > limits_.max_extension_bytes) return fail(i, 400, kExtensionTooLong);
    switch (state_) {
      case State::size_bws:
        if (c == ';') state_ = State::ext_pre_name;
        else if (!is_ws(c)) return unexpected(c, kBadExtension);
        break;
      case State::ext_pre_name:
        if (is(c, detail::kTchar)) state_ = State::ext_name;
        else if (!is_ws(c)) return unexpected(c, kBadExtension);
        break;
      case State::ext_name:
        if (is(c, detail::kTchar)) break;
        if (is_ws(c)) state_ = State::ext_post_name;
        else if (c == '=') state_ = State::ext_pre_value;
        else if (c == ';') state_ = State::ext_pre_name;
        else if (c == '\r') state_ = State::size_lf;
        else return unexpected(c, kBadExtension);
        break;
      case State::ext_post_name:
        if (is_ws(c)) break;
        if (c == '=') state_ = State::ext_pre_value;
        else if (c == ';') state_ = State::ext_pre_name;
        else if (c == '\r') state_ = State::size_lf;
        else return unexpected(c, kBadExtension);
        break;
      case State::ext_pre_value:
        if (is_ws(c)) break;
        if (c == '"') state_ = State::ext_quoted;
        else if (is(c, detail::kTchar)) state_ = State::ext_token_value;
        else return unexpected(c, kBadExtension);
        break;
      case State::ext_token_value:
        if (is(c, detail::kTchar)) break;
        if (is_ws(c)) state_ = State::ext_post_value;
        else if (c == ';') state_ = State::ext_pre_name;
        else if (c == '\r') state_ = State::size_lf;
        else return unexpected(c, kBadExtension);
        break;
      case State::ext_quoted:
        if (c == '"') state_ = State::ext_post_value;
        else if (c == '\\') state_ = State::ext_quoted_escape;
        else if (!is_qdtext(c)) return unexpected(c, kBadExtension);
        break;
      case State::ext_quoted_escape:
        if (!is_quoted_pair_char(c)) return unexpected(c, kBadExtension);
        state_ = State::ext_quoted;
        break;
      case State::ext_post_value:
        if (is_ws(c)) break;
        if (c == ';') state_ = State::ext_pre_name;
        else if (c == '\r') state_ = State::size_lf;
        else return unexpected(c, kBadExtension);
        break;
      default:
        return fail(i, 400, kBadSize);  // unreachable: every state is handled above
    }
    ++i;
  }
  return ChunkedStep{ChunkedStatus::need_more, n, {}, 0, nullptr};
}

}  // namespace ringlet::http
