// datagram.cpp — UDP socket setup and the msghdr plumbing of send_to / receive_from.
#include "ringlet/net/datagram.hpp"

#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>

namespace ringlet {

Result<DatagramSocket> DatagramSocket::bind(Loop& loop, const Address& address) {
  if (!address.is_ip()) return errc::invalid_argument;
  int fd = ::socket(address.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd < 0) return Error{errno};
  if (address.family() == AF_INET6) {
    int one = 1;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) {
      Error e{errno};
      ::close(fd);
      return e;
    }
  }
  if (::bind(fd, address.sockaddr_ptr(), address.length()) != 0) {
    Error e{errno};
    ::close(fd);
    return e;
  }
  auto core = std::make_unique<Core>();
  core->loop = &loop;
  core->io.fd = fd;
  return DatagramSocket(std::move(core));
}

DatagramSocket& DatagramSocket::operator=(DatagramSocket&& o) noexcept {
  if (this != &o) {
    close();
    core_ = std::move(o.core_);
  }
  return *this;
}

void DatagramSocket::close() noexcept {
  if (!core_) return;
  // No operation can be pending (the owner of each has resumed), so the descriptor can go now.
  core_->loop->backend().detach(core_->io);
  ::close(core_->io.fd);
  core_.reset();
}

Result<Address> DatagramSocket::local_address() const noexcept {
  Address a;
  *a.length_ptr() = Address::capacity();
  if (getsockname(fd(), a.sockaddr_ptr(), a.length_ptr()) != 0) return Error{errno};
  return a;
}

// ---- send_to -------------------------------------------------------------------------------------------------

DatagramSocket::SendTo::SendTo(Loop& loop, IoHandle* io, std::span<const std::byte> bytes, const Address& to) noexcept
    : IoAwaitable(loop), iov_{const_cast<std::byte*>(bytes.data()), bytes.size()}, to_(to) {
  kind = OpKind::sendmsg;
  this->io = io;
}

void DatagramSocket::SendTo::prepare() noexcept {
  hdr_ = {};
  hdr_.msg_name = to_.sockaddr_ptr();
  hdr_.msg_namelen = to_.length();
  hdr_.msg_iov = &iov_;
  hdr_.msg_iovlen = 1;
  msg = &hdr_;
}

Result<std::size_t> DatagramSocket::SendTo::await_resume() noexcept {
  int r = IoAwaitable::await_resume();
  if (r < 0) return error_from_result(r);
  return static_cast<std::size_t>(r);
}

// ---- receive_from --------------------------------------------------------------------------------------------

DatagramSocket::ReceiveFrom::ReceiveFrom(Loop& loop, IoHandle* io, std::span<std::byte> into) noexcept
    : IoAwaitable(loop), iov_{into.data(), into.size()} {
  kind = OpKind::recvmsg;
  this->io = io;
}

void DatagramSocket::ReceiveFrom::prepare() noexcept {
  hdr_ = {};
  hdr_.msg_name = from_.sockaddr_ptr();
  hdr_.msg_namelen = Address::capacity();
  hdr_.msg_iov = &iov_;
  hdr_.msg_iovlen = 1;
  msg = &hdr_;
}

Result<Datagram> DatagramSocket::ReceiveFrom::await_resume() noexcept {
  int r = IoAwaitable::await_resume();
  if (r < 0) return error_from_result(r);
  // The kernel wrote the sender's address length and MSG_TRUNC back into hdr_ (both backends).
  Datagram d;
  d.size = static_cast<std::size_t>(r);
  d.from = Address(from_.sockaddr_ptr(), hdr_.msg_namelen);
  d.truncated = (hdr_.msg_flags & MSG_TRUNC) != 0;
  return d;
}

}  // namespace ringlet
