// tcp_server.cpp — accept loop, connection tracking and the graceful stop.
#include "ringlet/net/tcp_server.hpp"

#include <unistd.h>

#include "ringlet/net/socket_options.hpp"
#include "ringlet/runtime/counters.hpp"
#include "ringlet/base/log.hpp"

namespace ringlet {

TcpServer::TcpServer(Loop& loop, ServerOptions options, Handler handler, void* user)
    : loop_(&loop), options_(std::move(options)), handler_(handler), user_(user), connections_(loop.registry()) {
  connections_.on_empty(&TcpServer::on_connections_empty, this);
}

TcpServer::~TcpServer() { RINGLET_ASSERT(connections_.size() == 0); }

void TcpServer::on_connections_empty(void* ctx) noexcept {
  auto* self = static_cast<TcpServer*>(ctx);
  if (auto h = std::exchange(self->drain_waiter_, nullptr)) self->loop_->schedule(h);
}

Status TcpServer::listen() {
  auto l = Listener::bind(*loop_, options_.listen, options_.listen_options);
  if (!l) {
    log_error(LogKey{"listen.failed"}, "{}: cannot listen on {}: {}", options_.name, options_.listen.to_string(), l.error().message());
    return l.error();
  }
  listener_ = std::move(*l);
  set_nodelay_for_accepted();
  log_info(LogKey{"listening"}, "{}: listening on {} (backend {}, max {} connections)", options_.name,
           listener_.local_address().to_string(), loop_->backend().name(), options_.max_connections);
  return {};
}

Status TcpServer::listen_on(int fd) {
  auto l = Listener::adopt(*loop_, fd, options_.listen_options);
  if (!l) {
    log_error(LogKey{"listen.failed"}, "{}: cannot serve the socket handed over as fd {}: {}", options_.name, fd,
              l.error().message());
    ::close(fd);
    return l.error();
  }
  listener_ = std::move(*l);
  set_nodelay_for_accepted();
  log_info(LogKey{"listening"}, "{}: listening on {} (socket from systemd, backend {}, max {} connections)",
           options_.name, listener_.local_address().to_string(), loop_->backend().name(), options_.max_connections);
  return {};
}

void TcpServer::note_refused() noexcept {
  ++stats_.refused;
  ++refused_since_log_;
  // One line per second at most: a flood of refusals must not become a flood of log lines.
  std::int64_t now = loop_->now_ns();
  if (now - refused_log_ns_ >= 1'000'000'000) {
    log_warn(LogKey{"conn.refused"}, "{}: connection limit {} reached: refused {} connection(s)", options_.name, options_.max_connections,
             refused_since_log_);
    refused_log_ns_ = now;
    refused_since_log_ = 0;
  }
}

void TcpServer::serve(Stream stream) {
  if (stopping_ || connections_.size() >= options_.max_connections) {
    if (!stopping_) note_refused();
    return;  // the Stream closes as it goes out of scope
  }
  ++stats_.accepted;
  thread_counters().connections_accepted.add();
  stream.set_timeout(options_.idle_timeout);
  loop_->spawn_in(connections_, handler_(std::move(stream), *this));
}

// Replies go out as soon as they are written: no Nagle delay on request/response traffic. Linux copies TCP_NODELAY
// from a listening socket to the sockets it accepts, so it is set once on the listener instead of once per
// connection (a setsockopt per accept is a measurable share of a connection's cost: docs/design/proxy.md). On a Unix
// socket it fails, harmlessly.
void TcpServer::set_nodelay_for_accepted() noexcept { (void)set_nodelay(listener_.fd(), Toggle::on); }

void TcpServer::adopt(int fd) {
  // A socket accepted elsewhere (another shard's listener, or one the caller made) may not have inherited it.
  (void)set_nodelay(fd, Toggle::on);
  serve(Stream(*loop_, fd, options_.listen_options.stream));
}

void TcpServer::force_close() noexcept {
  if (connections_.size() == 0) return;
  log_warn("{}: closing {} connection(s) now", options_.name, connections_.size());
  stats_.forced += connections_.size();
  connections_.cancel_all();
}

Task<void> TcpServer::run() {
  if (!listener_.is_open()) co_await Stopped(this);
  while (listener_.is_open()) {
    Result<Stream> s = co_await listener_.accept();
    if (!s) {
      if (stopping_ || s.error() == errc::closed) break;
      if (s.error() == errc::cancelled) {
        CancelState& self = co_await this_task_cancel_state();
        if (self.requested() || self.drain_requested()) break;  // we were told to stop
        continue;  // a wait that ended without a connection: wait again
      }
      log_limited(accept_errors_, LogLevel::warn, loop_->now_ns(), "{}: accept: {}", options_.name,
                  s.error().message());
      if (s.error().code == EMFILE || s.error().code == ENFILE) {
        Status slept = co_await sleep_for(std::chrono::milliseconds(50));  // let connections close first
        if (!slept) break;
      }
      continue;
    }
    if (accept_hook_ != nullptr && accept_hook_(accept_hook_ctx_, *s)) continue;
    serve(std::move(*s));
  }
  stop();
  (void)co_await with_timeout(Drained(this), options_.shutdown_timeout);
  if (connections_.size() != 0) {
    log_warn("{}: shutdown timeout: closing {} connection(s) still open", options_.name, connections_.size());
    stats_.forced += connections_.size();
    connections_.cancel_all();
    (void)co_await Drained(this);
  }
  log_info(LogKey{"stopped"}, "{}: stopped (accepted {}, refused {}, forced closed {})", options_.name, stats_.accepted, stats_.refused,
           stats_.forced);
}

void TcpServer::stop() noexcept {
  if (stopping_) return;
  stopping_ = true;
  log_info(LogKey{"stopping"}, "{}: stopping: no new connections, {} open", options_.name, connections_.size());
  listener_.close();
  connections_.drain_all();
  if (auto h = std::exchange(stop_waiter_, nullptr)) loop_->schedule(h);
}

}  // namespace ringlet
