// listener.cpp — bind/listen, the accept queue, and closing once the kernel lets go of the accept.
#include "ringlet/net/listener.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace ringlet {
namespace detail {

ListenerCore::ListenerCore(Loop& l, int fd, const ListenOptions& options) noexcept
    : loop(&l), stream_options(options.stream) {
  io.fd = fd;
  accept_op.kind = OpKind::accept;
  accept_op.multishot = true;
  accept_op.io = &io;
  accept_op.on_complete = &ListenerCore::on_accept;
  accept_op.core = this;
}

void ListenerCore::arm() noexcept {
  if (closing || accept_op.state != Operation::State::idle) return;
  if (ready_fds.size() - head >= kMaxQueued) return;
  loop->backend().submit(accept_op);
}

void ListenerCore::on_accept(Operation& op, int res, std::uint32_t) noexcept {
  ListenerCore* self = static_cast<AcceptOp&>(op).core;
  if (res >= 0) {
    if (self->closing) {
      ::close(res);
    } else {
      self->ready_fds.push_back(res);
    }
  } else if (res != -ECANCELED && !self->closing) {
    self->error = Error{-res};
  }
  if (self->closing) {
    self->release_if_unused();
    return;
  }
  if (res == -ECANCELED) {
    // The end of our own back-pressure pause (issue #2 burst regression): it brings no connection, so waking the
    // acceptor would hand it nothing. If someone is already waiting again, accepting resumes for them.
    if (self->waiter && op.state == Operation::State::idle) self->arm();
    return;
  }
  self->wake_waiter();
  if (op.state == Operation::State::pending && self->ready_fds.size() - self->head >= kMaxQueued) {
    self->loop->backend().cancel(op);  // nobody is taking connections: let the kernel backlog hold them
  }
}

void ListenerCore::close() noexcept {
  closing = true;
  // Stop listening now, not when the descriptor is finally closed: an io_uring accept still in flight holds a
  // reference to the file, so close() alone would leave the socket listening (and in its SO_REUSEPORT group, taking
  // new connections nobody will accept) until the cancel's final completion. shutdown() on a listening TCP socket
  // moves it to CLOSE at once: it leaves the group, new SYNs are refused, queued connections are reset.
  // An adopted socket is shared (systemd holds it to keep the port across restarts; other shards hold dups):
  // shutdown() would stop it listening for all of them, so it is only closed.
  if (!adopted) ::shutdown(io.fd, SHUT_RDWR);
  for (std::size_t i = head; i < ready_fds.size(); ++i) ::close(ready_fds[i]);
  ready_fds.clear();
  head = 0;
  wake_waiter();  // it resumes with errc::closed
  if (accept_op.state != Operation::State::idle) {
    loop->backend().cancel(accept_op);  // the final completion calls release_if_unused()
    return;
  }
  release_if_unused();
}

void ListenerCore::wake_waiter() noexcept {
  if (std::coroutine_handle<> h = std::exchange(waiter, nullptr)) {
    waiter_woken = true;
    loop->schedule(h);
  }
}

void ListenerCore::release_if_unused() noexcept {
  if (accept_op.state == Operation::State::idle && !waiter_woken) loop->defer_close(this);
}

void ListenerCore::close_now() noexcept {
  loop->backend().detach(io);
  ::close(io.fd);
  if (unlink_path) ::unlink(address.to_string().substr(5).c_str());
  delete this;
}

}  // namespace detail

Result<Listener> Listener::bind(Loop& loop, const Address& address, const ListenOptions& options) {
  int fd = ::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error{errno};
  auto fail = [fd](int err) {
    ::close(fd);
    return Error{err};
  };
  if (address.is_ip()) {
    if (!set_reuse_address(fd, Toggle::on)) return fail(errno);
    if (options.reuse_port == ReusePort::yes && !set_reuse_port(fd, Toggle::on)) return fail(errno);
  } else if (address.is_unix()) {
    const auto* sun = reinterpret_cast<const sockaddr_un*>(address.sockaddr_ptr());
    struct stat st {};
    if (::stat(sun->sun_path, &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(sun->sun_path);
  }
  if (::bind(fd, address.sockaddr_ptr(), address.length()) != 0) return fail(errno);
  if (::listen(fd, options.backlog) != 0) return fail(errno);
  auto* core = new detail::ListenerCore(loop, fd, options);
  if (address.is_unix()) {
    core->address = address;
    core->unlink_path = true;
  } else {
    *core->address.length_ptr() = Address::capacity();
    getsockname(fd, core->address.sockaddr_ptr(), core->address.length_ptr());
  }
  return Listener(core);
}

Result<Listener> Listener::adopt(Loop& loop, int fd, const ListenOptions& options) {
  int listening = 0;
  socklen_t length = sizeof listening;
  if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) != 0) return Error{errno};
  if (listening == 0) return Error{EINVAL};
  // systemd hands sockets over blocking unless the unit says NonBlocking=yes; the epoll backend needs them
  // non-blocking (accept4 until EAGAIN), and no child we might start should inherit them.
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return Error{errno};
  if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) return Error{errno};
  auto* core = new detail::ListenerCore(loop, fd, options);
  core->adopted = true;
  *core->address.length_ptr() = Address::capacity();
  getsockname(fd, core->address.sockaddr_ptr(), core->address.length_ptr());
  return Listener(core);
}

Listener& Listener::operator=(Listener&& o) noexcept {
  if (this != &o) {
    close();
    core_ = std::exchange(o.core_, nullptr);
  }
  return *this;
}

void Listener::close() noexcept {
  if (core_ == nullptr) return;
  std::exchange(core_, nullptr)->close();
}

Result<Stream> Listener::Accept::await_resume() noexcept {
  if (cancel_ != nullptr) cancel_->clear();
  detail::ListenerCore* c = core_;
  c->waiter_woken = false;
  if (c->closing) {
    c->release_if_unused();  // the listener was closed after waking us: we were the last one holding it
    return errc::closed;
  }
  if (c->head < c->ready_fds.size()) {
    int fd = c->ready_fds[c->head++];
    if (c->head == c->ready_fds.size()) {
      c->ready_fds.clear();
      c->head = 0;
    }
    return Stream(*c->loop, fd, c->stream_options);
  }
  if (cancelled_) return errc::cancelled;
  if (c->error.code != 0) return std::exchange(c->error, Error{});
  return errc::cancelled;
}

}  // namespace ringlet
