// tcp_server.hpp — what every ringlet server needs around its protocol: accept loop, connection limit, tracking,
// logging and graceful stop. Core-local: one TcpServer per loop (run one per shard for multi-core).
//
// A server supplies a Handler: a coroutine that owns nothing but the Stream it is lent for the connection's life.
// Graceful stop (stop(), e.g. on SIGTERM):
//   1. the listener closes (new connections are refused by the kernel);
//   2. every open connection's read side is shut down, so a handler waiting for the next request reads EOF and
//      ends, while one in the middle of a request finishes it (its queued input is still delivered);
//   3. after shutdown_timeout, connections still open are cancelled; run() returns when the last one has closed.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <string>

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
  using Handler = Task<void> (*)(Stream& stream, TcpServer& server);

  TcpServer(Loop& loop, ServerOptions options, Handler handler, void* user = nullptr);
  TcpServer(const TcpServer&) = delete;
  TcpServer& operator=(const TcpServer&) = delete;
  ~TcpServer();

  // Binds and listens; logs the address. Call before run().
  Status listen();
  Address local_address() const { return listener_.local_address(); }
  // Accepts until stop(), then drains (see the file comment). Returns when every connection has closed.
  Task<void> run();
  // Begins the graceful stop. Idempotent; callable from any task on this loop.
  void stop() noexcept;
  bool stopping() const noexcept { return stopping_; }

  const ServerOptions& options() const noexcept { return options_; }
  const ServerStats& stats() const noexcept { return stats_; }
  void* user() const noexcept { return user_; }
  Loop& loop() const noexcept { return *loop_; }

 private:
  struct Connection {
    Connection* prev = nullptr;
    Connection* next = nullptr;
    CancelState* cancel = nullptr;
    Stream* stream = nullptr;
  };

  // Waits until no connection is open.
  class [[nodiscard]] Drained {
   public:
    explicit Drained(TcpServer* s) noexcept : s_(s) {}
    bool await_ready() const noexcept { return s_->stats_.open == 0; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
      CancelState* cs = cancel_state_of(h);
      if (cs != nullptr && cs->requested()) return false;
      s_->drain_waiter_ = h;
      cancel_ = cs;
      if (cs != nullptr) cs->install(&Drained::cancel_slot, this);
      return true;
    }
    Status await_resume() noexcept {
      if (cancel_ != nullptr) cancel_->clear();
      return s_->stats_.open == 0 ? Status{} : Status{errc::cancelled};
    }

   private:
    static void cancel_slot(void* ctx) noexcept {
      auto* self = static_cast<Drained*>(ctx);
      if (auto h = std::exchange(self->s_->drain_waiter_, nullptr)) self->s_->loop_->schedule(h);
    }
    TcpServer* s_;
    CancelState* cancel_ = nullptr;
  };

  static Task<void> run_connection(TcpServer* self, Stream stream);
  void link(Connection& c) noexcept;
  void unlink(Connection& c) noexcept;
  void note_refused() noexcept;

  Loop* loop_;
  ServerOptions options_;
  Handler handler_;
  void* user_;
  Listener listener_;
  Connection* connections_ = nullptr;
  std::coroutine_handle<> drain_waiter_;
  ServerStats stats_;
  bool stopping_ = false;
  std::int64_t refused_log_ns_ = 0;
  std::uint64_t refused_since_log_ = 0;
};

}  // namespace ringlet
