// socket_options.cpp — setsockopt wrappers returning Status.
#include "ringlet/net/socket_options.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

namespace ringlet {
namespace {
Status set_int(int fd, int level, int name, int value) noexcept {
  if (setsockopt(fd, level, name, &value, sizeof value) != 0) return Error{errno};
  return {};
}
Result<int> get_int(int fd, int level, int name) noexcept {
  int value = 0;
  socklen_t len = sizeof value;
  if (getsockopt(fd, level, name, &value, &len) != 0) return Error{errno};
  return value;
}
}  // namespace

Status set_nodelay(int fd, Toggle on) noexcept { return set_int(fd, IPPROTO_TCP, TCP_NODELAY, on == Toggle::on); }

Status set_keepalive(int fd, Toggle on, std::chrono::seconds idle, std::chrono::seconds interval,
                     int count) noexcept {
  if (Status s = set_int(fd, SOL_SOCKET, SO_KEEPALIVE, on == Toggle::on); !s) return s;
  if (on == Toggle::off) return {};
  if (Status s = set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, static_cast<int>(idle.count())); !s) return s;
  if (Status s = set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, static_cast<int>(interval.count())); !s) return s;
  return set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, count);
}

Status set_send_buffer(int fd, int bytes) noexcept { return set_int(fd, SOL_SOCKET, SO_SNDBUF, bytes); }
Status set_receive_buffer(int fd, int bytes) noexcept { return set_int(fd, SOL_SOCKET, SO_RCVBUF, bytes); }
Status set_reuse_address(int fd, Toggle on) noexcept { return set_int(fd, SOL_SOCKET, SO_REUSEADDR, on == Toggle::on); }
Status set_reuse_port(int fd, Toggle on) noexcept { return set_int(fd, SOL_SOCKET, SO_REUSEPORT, on == Toggle::on); }
Result<int> send_buffer_size(int fd) noexcept { return get_int(fd, SOL_SOCKET, SO_SNDBUF); }
Result<int> receive_buffer_size(int fd) noexcept { return get_int(fd, SOL_SOCKET, SO_RCVBUF); }

}  // namespace ringlet
