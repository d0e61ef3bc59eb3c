// result.hpp — expected I/O outcomes as values: Result<T> holds a T or an Error.
// Core-agnostic value types (no shared state).
//
// Error wraps a positive errno value, or one of ringlet's own codes above errno's range. Errors compare by code,
// so `r.error() == errc::timed_out` reads naturally. There is no exception on the I/O path.
#pragma once

#include <cerrno>
#include <string_view>
#include <utility>
#include <variant>

#include "ringlet/base/fatal.hpp"

namespace ringlet {

struct Error {
  int code = 0;  // errno (positive) or a ringlet code below

  constexpr bool operator==(const Error&) const = default;
  std::string_view message() const noexcept;
};

namespace errc {
inline constexpr Error cancelled{ECANCELED};
inline constexpr Error timed_out{ETIMEDOUT};
inline constexpr Error connection_reset{ECONNRESET};
inline constexpr Error broken_pipe{EPIPE};
inline constexpr Error would_block{EAGAIN};
inline constexpr Error invalid_argument{EINVAL};
inline constexpr Error closed{EBADF};
// ringlet's own codes, above any errno value.
inline constexpr Error eof{10001};            // the peer closed before the requested bytes arrived
inline constexpr Error frame_too_long{10002};  // a framing reader hit its length limit without a delimiter
inline constexpr Error queue_closed{10003};    // a channel was closed
// Name resolution (net/resolve.hpp).
inline constexpr Error host_not_found{10101};      // the name has no address (EAI_NONAME, EAI_NODATA)
inline constexpr Error resolver_try_again{10102};  // temporary failure: no answer from the name servers (EAI_AGAIN)
inline constexpr Error resolver_failed{10103};     // permanent resolver failure (EAI_FAIL and the rest)
// TLS (net/tls.hpp).
inline constexpr Error tls_handshake_failed{10201};  // the peer's hello, certificate or handshake was refused
inline constexpr Error tls_protocol{10202};          // a record that does not decrypt or parse after the handshake
}  // namespace errc

// Converts a kernel-style result (negative errno) to an Error.
constexpr Error error_from_result(int negative_errno) noexcept { return Error{-negative_errno}; }

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, error) {}         // NOLINT

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & {
    RINGLET_ASSERT(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    RINGLET_ASSERT(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    RINGLET_ASSERT(ok());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  Error error() const noexcept { return ok() ? Error{} : std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(error) {}  // NOLINT
  bool ok() const noexcept { return error_.code == 0; }
  explicit operator bool() const noexcept { return ok(); }
  Error error() const noexcept { return error_; }

 private:
  Error error_{};
};

using Status = Result<void>;

}  // namespace ringlet
