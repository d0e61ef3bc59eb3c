// request.hpp — a parsed HTTP/1.1 request head: views into the bytes it was parsed from. Core-local value type.
//
// RequestParser (parser.hpp) fills a Request; request_reader.hpp hands one out together with the Slice that keeps
// its bytes alive. The Request stores offsets, not pointers, plus one base pointer: copying it is a 200-byte
// memcpy, and rebase() moves it onto a copy of the same bytes (the reader does that when it gathers a head that
// straddled two receive buffers). Every string_view it returns points into [base, base + head_length()); they stay
// valid exactly as long as those bytes do.
//
// Nothing here allocates. The headers a static-file server needs are indexed while parsing (host(), range(), ...
// cost nothing); any other header is found by find(name), a case-insensitive walk over the already validated
// header block, or by iterating headers().
//
// Repeated fields: known(h) returns the FIRST occurrence; repeated(h) tells whether there were more. Host
// repeated is rejected by the parser (400); Content-Length repeated with the same value is accepted; Connection,
// Transfer-Encoding and Expect are combined over all their lines. For the others (If-None-Match, Range, ...) a
// server that cares can check repeated() (for example ignore Range when it was sent twice) or iterate headers().
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string_view>

namespace ringlet::http {

// Methods with a name of their own; anything else that is a valid token is Method::other (see method_text()).
// Method names are case-sensitive (RFC 9110 §9.1): "get" is Method::other.
enum class Method : std::uint8_t { other, get, head, post, put, delete_, connect, options, trace, patch };
std::string_view method_name(Method m) noexcept;  // "GET", ...; "" for other

// RFC 9112 §3.2. The parser enforces: asterisk-form only with OPTIONS, authority-form only (and always) with
// CONNECT; otherwise 400.
enum class TargetForm : std::uint8_t {
  origin,     // "/path?query"
  absolute,   // "http://host:port/path?query" (any scheme)
  authority,  // "host:port" (CONNECT)
  asterisk,   // "*" (OPTIONS)
};

enum class BodyFraming : std::uint8_t {
  none,            // no body (no Content-Length, no Transfer-Encoding)
  content_length,  // content_length() bytes (may be 0)
  chunked,         // Transfer-Encoding: chunked (chunked.hpp)
};

// Headers indexed while parsing. known(h) returns the trimmed value of the first field with that name.
enum class KnownHeader : std::uint8_t {
  host,
  connection,
  content_length,
  transfer_encoding,
  expect,
  content_type,
  if_none_match,
  if_modified_since,
  range,
  if_range,
  count_,  // not a header
};

struct HeaderField {
  std::string_view name;   // as sent (case preserved)
  std::string_view value;  // OWS trimmed on both sides; may be empty
};

// Iterates the header block of a parsed request in order. Forward iterator over HeaderField values.
class HeaderIterator {
 public:
  using value_type = HeaderField;
  using difference_type = std::ptrdiff_t;
  using iterator_category = std::forward_iterator_tag;

  HeaderIterator() = default;
  HeaderIterator(const char* pos, const char* end) noexcept : pos_(pos), end_(end) { load(); }
  const HeaderField& operator*() const noexcept { return field_; }
  const HeaderField* operator->() const noexcept { return &field_; }
  HeaderIterator& operator++() noexcept {
    pos_ = next_;
    load();
    return *this;
  }
  HeaderIterator operator++(int) noexcept {
    HeaderIterator old = *this;
    ++*this;
    return old;
  }
  bool operator==(const HeaderIterator& o) const noexcept { return pos_ == o.pos_; }

 private:
  void load() noexcept;  // parses the field line at pos_ (sets pos_ = end_ at the empty line or the end)
  const char* pos_ = nullptr;
  const char* end_ = nullptr;
  const char* next_ = nullptr;
  HeaderField field_{};
};

struct HeaderRange {
  HeaderIterator first, last;
  HeaderIterator begin() const noexcept { return first; }
  HeaderIterator end() const noexcept { return last; }
};

// ASCII case-insensitive equality (field names, tokens such as "close" or "chunked").
bool equals_ignore_case(std::string_view a, std::string_view b) noexcept;

class Request {
 public:
  // ---- request line ----
  Method method() const noexcept { return method_; }
  std::string_view method_text() const noexcept {  // as sent, e.g. "GET"
    return base_ ? std::string_view(base_ + method_span_.off, method_span_.len) : std::string_view();
  }
  std::string_view target() const noexcept { return view(target_); }           // raw request-target
  TargetForm target_form() const noexcept { return form_; }
  // origin-form and absolute-form: the path (still percent-encoded; see uri.hpp), always starting with '/'
  // ("/" for "http://host" and for "http://host?q"). authority-form and asterisk-form: empty.
  std::string_view path() const noexcept { return path_default_root_ ? std::string_view("/") : view(path_); }
  // The query after '?', without the '?'. Empty when there is none; has_query() tells "/a?" from "/a".
  std::string_view query() const noexcept { return view(query_); }
  bool has_query() const noexcept { return query_.off != 0; }
  // absolute-form: the authority from the target ("host:port"); authority-form: the target; otherwise empty.
  std::string_view authority() const noexcept { return view(authority_); }
  // 0 for HTTP/1.0, 1 for HTTP/1.1 (and for HTTP/1.2 .. HTTP/1.9, which RFC 9110 §6.2 says to treat as 1.1).
  int version_minor() const noexcept { return version_minor_; }

  // ---- semantics derived from the head ----
  // Whether the connection may stay open after the response: HTTP/1.1 unless "Connection: close"; HTTP/1.0
  // only with "Connection: keep-alive" and without "close". (A server still closes after errors.)
  bool keep_alive() const noexcept { return keep_alive_; }
  // "Expect: 100-continue" on an HTTP/1.1 request (ignored on HTTP/1.0, RFC 9110 §10.1.1).
  bool expect_continue() const noexcept { return expect_continue_; }
  BodyFraming framing() const noexcept { return framing_; }
  std::uint64_t content_length() const noexcept { return content_length_; }  // 0 unless framing is content_length
  bool has_body() const noexcept {
    return framing_ == BodyFraming::chunked || (framing_ == BodyFraming::content_length && content_length_ > 0);
  }

  // ---- headers ----
  // The effective host for routing: the authority of an absolute-form target if any (RFC 9112 §3.2.2), else the
  // Host header value. Host header alone: known(KnownHeader::host).
  std::string_view host() const noexcept {
    return form_ == TargetForm::absolute ? view(authority_) : known(KnownHeader::host);
  }
  std::string_view if_none_match() const noexcept { return known(KnownHeader::if_none_match); }
  std::string_view if_modified_since() const noexcept { return known(KnownHeader::if_modified_since); }
  std::string_view range() const noexcept { return known(KnownHeader::range); }
  std::string_view if_range() const noexcept { return known(KnownHeader::if_range); }
  std::string_view content_type() const noexcept { return known(KnownHeader::content_type); }
  std::string_view connection() const noexcept { return known(KnownHeader::connection); }

  std::string_view known(KnownHeader h) const noexcept { return view(known_[static_cast<std::size_t>(h)]); }
  bool has(KnownHeader h) const noexcept { return known_[static_cast<std::size_t>(h)].off != 0; }
  bool repeated(KnownHeader h) const noexcept { return (repeated_bits_ >> static_cast<unsigned>(h)) & 1u; }

  // The first field named `name` (ASCII case-insensitive), trimmed; nullopt when absent. Walks the header block.
  std::optional<std::string_view> find(std::string_view name) const noexcept;
  HeaderRange headers() const noexcept;
  std::size_t header_count() const noexcept { return header_count_; }

  // ---- the bytes ----
  // Length of the head including any leading empty lines, the request line and the final empty line: the body
  // (or the next pipelined request) starts right after it.
  std::size_t head_length() const noexcept { return head_length_; }
  const char* base() const noexcept { return base_; }
  std::string_view head() const noexcept { return {base_, head_length_}; }
  // Points the views at another copy of the same head bytes (e.g. a gathered Slice).
  void rebase(const char* new_base) noexcept { base_ = new_base; }

 private:
  friend class RequestParser;

  // Offsets are relative to the first byte given to the parser. off == 0 means "absent": nothing we index can
  // start at byte 0 (the method comes first and is never indexed this way).
  struct Span {
    std::uint32_t off = 0;
    std::uint32_t len = 0;
  };
  std::string_view view(Span s) const noexcept {
    return s.off == 0 ? std::string_view() : std::string_view(base_ + s.off, s.len);
  }

  const char* base_ = nullptr;
  std::array<Span, static_cast<std::size_t>(KnownHeader::count_)> known_{};
  Span method_span_{};  // may start at offset 0, so method_text() does not use view()
  Span target_{};
  Span path_{};
  Span query_{};
  Span authority_{};
  Span headers_{};  // from the first field line to the end of the head (includes the final empty line)
  std::uint64_t content_length_ = 0;
  std::uint32_t head_length_ = 0;
  std::uint32_t header_count_ = 0;
  std::uint16_t repeated_bits_ = 0;
  std::uint8_t version_minor_ = 1;
  Method method_ = Method::other;
  TargetForm form_ = TargetForm::origin;
  BodyFraming framing_ = BodyFraming::none;
  bool keep_alive_ = true;
  bool expect_continue_ = false;
  bool path_default_root_ = false;
};

}  // namespace ringlet::http
