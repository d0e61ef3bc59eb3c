// backend.cpp — choosing a backend, and saying why.
#include "ringlet/runtime/backend.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>

#include "ringlet/buf/buffer.hpp"

namespace ringlet {

bool parse_backend_kind(std::string_view text, BackendKind& out) noexcept {
  if (text == "auto") {
    out = BackendKind::auto_select;
  } else if (text == "uring" || text == "io_uring") {
    out = BackendKind::uring;
  } else if (text == "epoll") {
    out = BackendKind::epoll;
  } else {
    return false;
  }
  return true;
}

std::string_view backend_kind_name(BackendKind kind) noexcept {
  switch (kind) {
    case BackendKind::auto_select: return "auto";
    case BackendKind::uring: return "uring";
    case BackendKind::epoll: return "epoll";
  }
  return "?";
}

int receive_into_pooled_buffer(int fd, std::uint32_t capacity, std::uint32_t want, Buffer*& out) noexcept {
  Buffer* b = BufferPool::local().acquire(capacity);
  ssize_t n = ::recv(fd, b->data, want, MSG_DONTWAIT);
  if (n <= 0) {
    int r = n == 0 ? 0 : (errno == EWOULDBLOCK ? -EAGAIN : -errno);
    buffer_unref(b);
    return r;
  }
  out = b;
  return static_cast<int>(n);
}

Result<BackendChoice> create_backend(const BackendOptions& options) {
  BackendKind kind = options.kind;
  std::string origin = "requested";
  if (kind == BackendKind::auto_select) {
    origin = "auto";
    if (const char* env = std::getenv("RINGLET_BACKEND"); env != nullptr && *env != '\0') {
      if (!parse_backend_kind(env, kind)) return errc::invalid_argument;
      origin = std::string("RINGLET_BACKEND=") + env;
    }
  }
  std::string detail;
  if (kind == BackendKind::uring || kind == BackendKind::auto_select) {
    if (auto b = create_uring_backend(options, detail)) {
      return BackendChoice{std::move(b), origin + ": io_uring (" + detail + ")"};
    }
    if (kind == BackendKind::uring) return Error{ENOSYS};
    std::string why = detail;
    detail.clear();
    if (auto b = create_epoll_backend(options, detail)) {
      return BackendChoice{std::move(b), origin + ": epoll, because io_uring is unavailable: " + why};
    }
    return Error{ENOSYS};
  }
  if (auto b = create_epoll_backend(options, detail)) return BackendChoice{std::move(b), origin + ": epoll"};
  return Error{ENOSYS};
}

}  // namespace ringlet
