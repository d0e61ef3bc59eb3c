// result.cpp — human-readable messages for Error codes.
#include "ringlet/base/result.hpp"

#include <cstring>

namespace ringlet {

std::string_view Error::message() const noexcept {
  switch (code) {
    case 0: return "success";
    case errc::eof.code: return "end of stream";
    case errc::frame_too_long.code: return "frame too long";
    case errc::queue_closed.code: return "queue closed";
    case errc::host_not_found.code: return "host not found";
    case errc::resolver_try_again.code: return "name resolution failed temporarily";
    case errc::resolver_failed.code: return "name resolution failed";
    case errc::tls_handshake_failed.code: return "TLS handshake failed";
    case errc::tls_protocol.code: return "TLS protocol error";
    default: return strerrordesc_np(code) ? strerrordesc_np(code) : "unknown error";
  }
}

}  // namespace ringlet
