// tcp_server.cpp — accept loop, connection tracking and the graceful stop.
#include "ringlet/net/tcp_server.hpp"

#include <sys/socket.h>

#include "ringlet/runtime/log.hpp"

namespace ringlet {

TcpServer::TcpServer(Loop& loop, ServerOptions options, Handler handler, void* user)
    : loop_(&loop), options_(std::move(options)), handler_(handler), user_(user) {}

TcpServer::~TcpServer() { RINGLET_ASSERT(stats_.open == 0); }

Status TcpServer::listen() {
  auto l = Listener::bind(*loop_, options_.listen, options_.listen_options);
  if (!l) {
    log_error("{}: cannot listen on {}: {}", options_.name, options_.listen.to_string(), l.error().message());
    return l.error();
  }
  listener_ = std::move(*l);
  log_info("{}: listening on {} (backend {}, max {} connections)", options_.name,
           listener_.local_address().to_string(), loop_->backend().name(), options_.max_connections);
  return {};
}

void TcpServer::note_refused() noexcept {
  ++stats_.refused;
  ++refused_since_log_;
  // One line per second at most: a flood of refusals must not become a flood of log lines.
  std::int64_t now = loop_->now_ns();
  if (now - refused_log_ns_ >= 1'000'000'000) {
    log_warn("{}: connection limit {} reached: refused {} connection(s)", options_.name, options_.max_connections,
             refused_since_log_);
    refused_log_ns_ = now;
    refused_since_log_ = 0;
  }
}

Task<void> TcpServer::run() {
  RINGLET_ASSERT(listener_.is_open());
  for (;;) {
    Result<Stream> s = co_await listener_.accept();
    if (!s) {
      if (stopping_ || s.error() == errc::cancelled || s.error() == errc::closed) break;
      log_warn("{}: accept: {}", options_.name, s.error().message());
      if (s.error().code == EMFILE || s.error().code == ENFILE) {
        Status slept = co_await sleep_for(std::chrono::milliseconds(50));  // let connections close first
        if (!slept) break;
      }
      continue;
    }
    if (stats_.open >= options_.max_connections) {
      note_refused();
      continue;  // the Stream closes as it goes out of scope
    }
    ++stats_.accepted;
    // Replies go out as soon as they are written: no Nagle delay on request/response traffic.
    (void)s->set_nodelay(Toggle::on);
    loop_->spawn(run_connection(this, std::move(*s)));
  }
  stop();
  (void)co_await with_timeout(Drained(this), options_.shutdown_timeout);
  if (stats_.open != 0) {
    log_warn("{}: shutdown timeout: closing {} connection(s) still open", options_.name, stats_.open);
    for (Connection* c = connections_; c != nullptr; c = c->next) {
      c->cancel->request();
      ++stats_.forced;
    }
    (void)co_await Drained(this);
  }
  log_info("{}: stopped (accepted {}, refused {}, forced closed {})", options_.name, stats_.accepted, stats_.refused,
           stats_.forced);
}

void TcpServer::stop() noexcept {
  if (stopping_) return;
  stopping_ = true;
  log_info("{}: stopping: no new connections, {} open", options_.name, stats_.open);
  listener_.close();
  for (Connection* c = connections_; c != nullptr; c = c->next) ::shutdown(c->stream->fd(), SHUT_RD);
}

void TcpServer::link(Connection& c) noexcept {
  c.next = connections_;
  if (connections_ != nullptr) connections_->prev = &c;
  connections_ = &c;
  ++stats_.open;
}

void TcpServer::unlink(Connection& c) noexcept {
  if (c.prev != nullptr) {
    c.prev->next = c.next;
  } else {
    connections_ = c.next;
  }
  if (c.next != nullptr) c.next->prev = c.prev;
  --stats_.open;
  ++stats_.closed;
  if (stats_.open == 0) {
    if (auto h = std::exchange(drain_waiter_, nullptr)) loop_->schedule(h);
  }
}

Task<void> TcpServer::run_connection(TcpServer* self, Stream stream) {
  Connection c;
  c.cancel = &co_await this_task_cancel_state();
  c.stream = &stream;
  self->link(c);
  if (self->stopping_) ::shutdown(stream.fd(), SHUT_RD);
  try {
    co_await self->handler_(stream, *self);
  } catch (const std::exception& e) {
    log_error("{}: connection handler failed: {}", self->options_.name, e.what());
  }
  stream.close();
  self->unlink(c);
}

}  // namespace ringlet
