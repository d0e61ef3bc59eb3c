// tcp_server.hpp — what every ringlet server needs around its protocol: accept loop, connection limit, tracking,
// logging and graceful stop. Core-local: one TcpServer per loop (run one per shard for multi-core).
//
// A server supplies a Handler: a coroutine that owns the connection's Stream. Each runs as a root task in the
// server's task group, which is all the tracking a connection costs (the links live in the task's promise).
// Accepted streams get TCP_NODELAY (inherited from the listener) and the idle timeout as their stream timeout (a
// wait without progress ends with errc::timed_out).
// Graceful stop (stop(), e.g. on SIGTERM):
//   1. the listener closes (new connections are refused by the kernel);
//   2. every connection task is asked to drain: a handler waiting for its next request sees end of input and
//      ends, one in the middle of a request finishes it (queued input is still delivered first);
//   3. after shutdown_timeout, connections still open are cancelled; run() returns when the last one has closed.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <string>

#include "ringlet/base/log.hpp"
#include "ringlet/net/address.hpp"
#include "ringlet/net/listener.hpp"
#include "ringlet/net/stream.hpp"
#include "ringlet/runtime/loop.hpp"
#include "ringlet/runtime/task.hpp"
#include "ringlet/runtime/timeout.hpp"

namespace ringlet {

struct ServerOptions {
  std::string name = "server";                       // prefix of log lines
  Address listen = Address::loopback_v4(7000);
  ListenOptions listen_options;
  std::size_t max_connections = 10000;               // more are accepted and closed at once, with a log line
  Duration idle_timeout = Duration::zero();          // handlers apply it to each wait; zero: no limit
  Duration shutdown_timeout = std::chrono::seconds(5);
};

struct ServerStats {
  std::uint64_t accepted = 0;
  std::uint64_t refused = 0;   // over the connection limit
  std::uint64_t closed = 0;
  std::uint64_t forced = 0;    // cancelled at the end of a graceful stop
  std::size_t open = 0;
};

class TcpServer {
 public:
  using Handler = Task<void> (*)(Stream stream, TcpServer& server);

  TcpServer(Loop& loop, ServerOptions options, Handler handler, void* user = nullptr);
  TcpServer(const TcpServer&) = delete;
  TcpServer& operator=(const TcpServer&) = delete;
  ~TcpServer();

  // Binds and listens; logs the address. Call before run().
  Status listen();
  // Serves a socket that is already listening instead of binding one (systemd socket activation); takes ownership
  // of `fd` (Listener::adopt). Call before run(), instead of listen().
  Status listen_on(int fd);
  Address local_address() const { return listener_.local_address(); }
  // Accepts until stop(), then drains (see the file comment). Returns when every connection has closed. A server
  // that never listened (it only adopts connections another shard accepted) waits for stop() instead.
  Task<void> run();
  // Serves a connection accepted elsewhere (handed over by another shard): counts it against the limit and runs
  // the handler as if this server had accepted it. Closes it when stopping or over the limit.
  void adopt(int fd);
  // Called with each accepted connection before it is served here; returning true means the hook took it (e.g.
  // handed it to another shard). Set before run().
  using AcceptHook = bool (*)(void* ctx, Stream& stream);
  void set_accept_hook(AcceptHook hook, void* ctx) noexcept {
    accept_hook_ = hook;
    accept_hook_ctx_ = ctx;
  }
  // Cancels every open connection now (the second signal of a graceful stop).
  void force_close() noexcept;
  // Begins the graceful stop. Idempotent; callable from any task on this loop.
  void stop() noexcept;
  bool stopping() const noexcept { return stopping_; }

  const ServerOptions& options() const noexcept { return options_; }
  ServerStats stats() const noexcept {
    ServerStats s = stats_;
    s.open = connections_.size();
    return s;
  }
  std::size_t open_connections() const noexcept { return connections_.size(); }
  void* user() const noexcept { return user_; }
  Loop& loop() const noexcept { return *loop_; }

 private:
  // Waits until no connection is open.
  class [[nodiscard]] Drained {
   public:
    explicit Drained(TcpServer* s) noexcept : s_(s) {}
    bool await_ready() const noexcept { return s_->connections_.size() == 0; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
      CancelState* cs = nullptr;
      if (cancelled_before_suspend(h, cs)) return false;
      s_->drain_waiter_ = h;
      cancel_ = cs;
      if (cs != nullptr) cs->install(&Drained::cancel_slot, this);
      return true;
    }
    Status await_resume() noexcept {
      if (cancel_ != nullptr) cancel_->clear();
      return s_->connections_.size() == 0 ? Status{} : Status{errc::cancelled};
    }

   private:
    static void cancel_slot(void* ctx) noexcept {
      auto* self = static_cast<Drained*>(ctx);
      if (auto h = std::exchange(self->s_->drain_waiter_, nullptr)) self->s_->loop_->schedule(h);
    }
    TcpServer* s_;
    CancelState* cancel_ = nullptr;
  };

  // Waits until stop() is called (a server without a listener).
  class [[nodiscard]] Stopped {
   public:
    explicit Stopped(TcpServer* s) noexcept : s_(s) {}
    bool await_ready() const noexcept { return s_->stopping_; }
    void await_suspend(std::coroutine_handle<> h) noexcept { s_->stop_waiter_ = h; }
    void await_resume() const noexcept {}

   private:
    TcpServer* s_;
  };

  static void on_connections_empty(void* ctx) noexcept;
  void note_refused() noexcept;
  void set_nodelay_for_accepted() noexcept;
  void serve(Stream stream);

  Loop* loop_;
  ServerOptions options_;
  Handler handler_;
  void* user_;
  Listener listener_;
  TaskRegistry connections_;
  std::coroutine_handle<> drain_waiter_;
  std::coroutine_handle<> stop_waiter_;
  AcceptHook accept_hook_ = nullptr;
  void* accept_hook_ctx_ = nullptr;
  ServerStats stats_;
  bool stopping_ = false;
  std::int64_t refused_log_ns_ = 0;
  std::uint64_t refused_since_log_ = 0;
  // Accept failures (EMFILE under a flood, ECONNABORTED) can repeat thousands of times a second.
  LogRateLimit accept_errors_{"conn.accept_error", 5};
};

}  // namespace ringlet
