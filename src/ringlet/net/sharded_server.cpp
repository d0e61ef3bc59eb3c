// sharded_server.cpp — start-up order, connection hand-off, the signal watcher and the statistics logger.
#include "ringlet/net/sharded_server.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include "ringlet/base/log.hpp"
#include "ringlet/runtime/signals.hpp"
#include "ringlet/runtime/sync.hpp"

namespace ringlet {

bool parse_accept_mode(std::string_view text, AcceptMode& out) noexcept {
  if (text == "reuseport") {
    out = AcceptMode::reuseport;
  } else if (text == "handoff") {
    out = AcceptMode::handoff;
  } else {
    return false;
  }
  return true;
}

std::string_view accept_mode_name(AcceptMode mode) noexcept {
  return mode == AcceptMode::reuseport ? "reuseport" : "handoff";
}

void log_shard_stats(const ShardStats& s, std::string_view prefix) {
  log_info(LogKey{"shard.stats"},
           "{}shard {} (cpu {}): {} open, {} accepted, {} B in, {} B out, messages {} sent {} received, "
           "{} loop iterations, {:.3f} s waiting in the kernel",
           prefix, s.shard, s.cpu, s.connections_open, s.connections_accepted, s.bytes_in, s.bytes_out,
           s.messages_sent, s.messages_received, s.loop_iterations, static_cast<double>(s.kernel_wait_ns) / 1e9);
}

namespace {

// Shared by the shards; each field says who touches it.
struct Context {
  const ShardedServerOptions* options;
  ServerOptions server;  // shard 0 fixes the listen address before the others start
  ShardServiceFactory factory;
  std::vector<std::unique_ptr<ShardService>> services;  // [k] touched only on shard k
  std::vector<std::unique_ptr<Event>> started;          // [k] set on shard k when its service may run
  std::vector<std::unique_ptr<Event>> stopped;          // [k] set on shard k when its server has stopped
  std::vector<std::uint64_t> handed;                    // shard 0: connections handed to each shard
  std::atomic<bool> failed{false};
  Shard* acceptor = nullptr;
};

// The socket handed over that `address` should serve, or -1 (see "Socket activation" in the header).
int inherited_for(const Context* ctx, const Address& address, bool primary) {
  const std::vector<InheritedSocket>& sockets = ctx->options->inherited;
  std::string wanted = address.to_string();
  for (const InheritedSocket& s : sockets) {
    if (s.address.to_string() == wanted) return s.fd;
  }
  return primary && !sockets.empty() ? sockets.front().fd : -1;
}

// Listens on the address, or serves its own dup of the socket handed over for it.
Status listen_or_adopt(Context* ctx, TcpServer& server, bool primary) {
  int fd = inherited_for(ctx, server.options().listen, primary);
  if (fd < 0) return server.listen();
  int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0) {
    Error error{errno};
    log_error(LogKey{"listen.failed"}, "{}: cannot duplicate the socket handed over as fd {}: {}",
              server.options().name, fd, error.message());
    return error;
  }
  return server.listen_on(copy);
}

// On shard k: builds and (in reuseport mode, or on shard 0) binds its service. False when it cannot.
bool start_service(Context* ctx, Shard& shard, bool listens) {
  ServerOptions options = ctx->server;
  options.name = fmt::format("{}[{}]", ctx->server.name, shard.id());
  if (ctx->options->accept == AcceptMode::reuseport && shard.count() > 1) {
    options.listen_options.reuse_port = ReusePort::yes;
  }
  auto service = ctx->factory(shard, options);
  if (!service) return false;  // the factory logged why
  if (listens && !listen_or_adopt(ctx, service->tcp(), true)) return false;
  for (TcpServer* more : service->more_servers()) {
    if (!listen_or_adopt(ctx, *more, false)) return false;
  }
  ctx->services[shard.id()] = std::move(service);
  return true;
}

void adopt_here(Context* ctx, int fd) {
  ShardService* service = ctx->services[Shard::current()->id()].get();
  if (service == nullptr) {
    ::close(fd);
    return;
  }
  service->tcp().adopt(fd);
}

// Shard 0's accept hook in handoff mode: serve here or send to the least loaded shard.
bool hand_off(void* raw, Stream& stream) {
  auto* ctx = static_cast<Context*>(raw);
  Shard& self = *ctx->acceptor;
  unsigned best = self.id();
  std::uint64_t best_load = self.counters().streams_open() - 1;  // not counting the stream in our hands
  for (unsigned k = 0; k < self.count(); ++k) {
    if (k == self.id()) continue;
    const ThreadCounters& c = self.set().shard(k).counters();
    std::uint64_t in_flight = ctx->handed[k] - std::min(ctx->handed[k], c.connections_accepted.get());
    std::uint64_t load = c.streams_open() + in_flight;
    if (load < best_load) {
      best = k;
      best_load = load;
    }
  }
  if (best == self.id()) return false;
  ++ctx->handed[best];
  int fd = stream.release();
  self.send(best, [ctx, fd] { adopt_here(ctx, fd); });
  return true;
}

void stop_everywhere(Context* ctx, Shard& shard, bool force) {
  for (unsigned k = 0; k < shard.count(); ++k) {
    shard.send(k, [ctx, force] {
      ShardService* s = ctx->services[Shard::current()->id()].get();
      if (s == nullptr) return;
      if (force) {
        s->tcp().force_close();
        for (TcpServer* more : s->more_servers()) more->force_close();
      } else {
        s->tcp().stop();
        for (TcpServer* more : s->more_servers()) more->stop();
      }
    });
  }
}

// SIGHUP reopens the log file (logrotate's signal) and is otherwise ignored; SIGINT/SIGTERM stop, harder each time.
Task<void> watch_signals(Context* ctx, Shard* shard, SignalSet* signals) {
  int stops = 0;
  for (;;) {
    Result<int> got = co_await signals->wait();
    if (!got) co_return;
    if (*got == SIGHUP) {
      Status reopened = reopen_log_file();
      if (reopened) {
        log_info(LogKey{"log.reopened"}, "received SIGHUP: log file reopened");
      } else {
        log_error(LogKey{"log.reopen_failed"}, "received SIGHUP: cannot reopen the log file: {}",
                  reopened.error().message());
      }
      continue;
    }
    ++stops;
    if (stops == 1) {
      (void)notify_service_manager("STOPPING=1");
      log_info(LogKey{"signal.stop"}, "received {}: stopping gracefully on {} shard(s) (send it again to close "
               "connections at once)", strsignal(*got), shard->count());
      stop_everywhere(ctx, *shard, false);
    } else if (stops == 2) {
      log_warn(LogKey{"signal.force"}, "received {} again: closing every connection now (a third time exits at once)",
               strsignal(*got));
      stop_everywhere(ctx, *shard, true);
    } else {
      log_warn(LogKey{"signal.exit"}, "received {} a third time: exiting now", strsignal(*got));
      std::fflush(nullptr);
      std::_Exit(1);
    }
  }
}

Task<void> log_stats_every(Shard* shard, Duration interval) {
  for (;;) {
    Status slept = co_await sleep_for(interval);
    if (!slept) co_return;
    for (unsigned k = 0; k < shard->count(); ++k) {
      ShardStats s = co_await submit_to(k, [] { return Shard::current()->stats(); });
      log_shard_stats(s, "stats: ");
    }
  }
}

Task<void> wait_stopped(Context* ctx) { co_await ctx->stopped[Shard::current()->id()]->wait(); }

Task<void> shard_main(Shard& shard, Context* ctx) {
  unsigned me = shard.id();
  if (me == 0) {
    bool listens = true;
    ctx->acceptor = &shard;
    if (!start_service(ctx, shard, listens)) {
      ctx->failed = true;
      for (unsigned k = 1; k < shard.count(); ++k) {
        co_await post_to(k, [ctx] { ctx->started[Shard::current()->id()]->set(); });
      }
      co_return;
    }
    // Others share the port shard 0 got (port 0 resolves once).
    ctx->server.listen = ctx->services[0]->tcp().local_address();
    bool reuseport = ctx->options->accept == AcceptMode::reuseport;
    for (unsigned k = 1; k < shard.count(); ++k) {
      bool ok = co_await submit_to(k, [ctx, reuseport] { return start_service(ctx, *Shard::current(), reuseport); });
      if (!ok) ctx->failed = true;
    }
    if (ctx->failed) {
      log_error("{}: a shard could not start; stopping", ctx->server.name);
      stop_everywhere(ctx, shard, false);
    } else if (!reuseport && shard.count() > 1) {
      ctx->services[0]->tcp().set_accept_hook(&hand_off, ctx);
    }
    log_info("{}: {} shard(s), accept mode {}", ctx->server.name, shard.count(),
             accept_mode_name(ctx->options->accept));
    for (unsigned k = 1; k < shard.count(); ++k) {
      co_await post_to(k, [ctx] { ctx->started[Shard::current()->id()]->set(); });
    }
    if (!ctx->failed) {
      Status told = notify_service_manager(fmt::format("READY=1\nSTATUS=serving on {} with {} shard(s)",
                                                       ctx->server.listen.to_string(), shard.count()));
      if (!told) log_warn(LogKey{"notify.failed"}, "cannot notify the service manager: {}", told.error().message());
    }
  } else {
    co_await ctx->started[me]->wait();
  }
  ShardService* service = ctx->services[me].get();
  if (service == nullptr) {
    ctx->stopped[me]->set();
    co_return;
  }

  std::optional<SignalSet> signals;
  JoinHandle<void> watcher;
  JoinHandle<void> stats;
  bool watching = false;
  bool logging = false;
  if (me == 0 && ctx->options->handle_signals) {
    auto created = SignalSet::create(shard.loop(), {SIGINT, SIGTERM, SIGHUP});
    if (created) {
      signals.emplace(std::move(*created));
      watcher = shard.loop().spawn_joinable(watch_signals(ctx, &shard, &*signals));
      watching = true;
    } else {
      log_error("cannot watch SIGINT/SIGTERM/SIGHUP: {}", created.error().message());
    }
  }
  if (me == 0 && ctx->options->stats_interval > Duration::zero()) {
    stats = shard.loop().spawn_joinable(log_stats_every(&shard, ctx->options->stats_interval));
    logging = true;
  }
  std::vector<JoinHandle<void>> more;
  for (TcpServer* m : service->more_servers()) more.push_back(shard.loop().spawn_joinable(m->run()));
  co_await service->run();
  for (JoinHandle<void>& m : more) co_await m;
  if (logging) {
    stats.cancel();
    co_await stats;
  }
  log_shard_stats(shard.stats(), "final: ");
  ctx->stopped[me]->set();
  if (me == 0) {
    // Shard 0's server is done; the signal watcher stays until every shard has stopped (a second signal may
    // still be needed to force the others).
    for (unsigned k = 1; k < shard.count(); ++k) {
      co_await submit_to(k, [ctx]() -> Task<void> { return wait_stopped(ctx); });
    }
    if (watching) {
      watcher.cancel();
      co_await watcher;
    }
  }
  ctx->services[me].reset();  // on its own shard: its streams and frames came from this thread's pools
}

}  // namespace

Status run_sharded_server(const ShardedServerOptions& options, const ServerOptions& server,
                          ShardServiceFactory factory) {
  ShardSet set(options.shards);
  Context ctx;
  ctx.options = &options;
  ctx.server = server;
  // The limit is for the whole server: each shard takes an equal share (rounded up).
  ctx.server.max_connections = (server.max_connections + set.size() - 1) / set.size();
  ctx.factory = std::move(factory);
  ctx.services.resize(set.size());
  ctx.handed.assign(set.size(), 0);
  for (unsigned k = 0; k < set.size(); ++k) {
    ctx.started.push_back(std::make_unique<Event>());
    ctx.stopped.push_back(std::make_unique<Event>());
  }
  if (options.handle_signals) {
    // Blocked before the shard threads start, so they inherit the mask and only shard 0's signalfd sees them.
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  }
  std::signal(SIGPIPE, SIG_IGN);
  ShardedServerOptions adjusted = options;
  if (server.listen.is_unix() && options.accept == AcceptMode::reuseport && set.size() > 1) {
    // A Unix path has one listener: binding it again would replace the first shard's socket, not share it.
    log_info("{}: {} is a Unix socket: shard 0 accepts and hands connections over (--accept handoff)", server.name,
             server.listen.to_string());
    adjusted.accept = AcceptMode::handoff;
  }
  ctx.options = &adjusted;
  Status ran = set.run([&ctx](Shard& shard) { return shard_main(shard, &ctx); });
  for (const InheritedSocket& s : options.inherited) ::close(s.fd);  // every listener used its own dup
  if (!ran) return ran;
  if (ctx.failed) return errc::invalid_argument;
  return {};
}

}  // namespace ringlet
