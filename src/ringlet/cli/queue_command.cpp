// queue_command.cpp — `ringlet queue`: options (ours and beanstalkd's, so service files keep working), then serve
// until a signal. The queue state lives on shard 0 (servers/queue.hpp); every shard serves connections.
#include <pthread.h>

#include <csignal>
#include <cstdio>

#include "commands.hpp"
#include "common.hpp"
#include "ringlet/base/log.hpp"
#include "ringlet/servers/queue.hpp"

namespace ringlet::cli {

namespace {

struct QueueService final : ShardService {
  QueueService(Loop& loop, QueueOptions o, std::shared_ptr<QueueCore> owned, QueueCore* core)
      : options(std::move(o)), core(std::move(owned)), server(loop, options, options.server, core) {}
  TcpServer& tcp() override { return server.tcp(); }
  std::span<TcpServer* const> more_servers() override { return more_tcp; }
  void describe_metrics(MetricSet& out) override {
    if (core) core->describe_metrics(out);  // the queue lives on shard 0 alone
    server.describe_metrics(out);           // connections live on every shard
    for (const auto& m : more) m->describe_metrics(out);
  }
  QueueOptions options;             // this shard's copy
  std::shared_ptr<QueueCore> core;  // shard 0 only
  QueueServer server;
  std::vector<std::unique_ptr<QueueServer>> more;  // further --listen addresses served by this shard
  std::vector<TcpServer*> more_tcp;
};

// "10m", "512k", "1g" or plain bytes.
bool parse_size(const std::string& text, std::uint64_t& out) {
  if (text.empty()) return false;
  std::uint64_t scale = 1;
  std::string digits = text;
  switch (text.back()) {
    case 'k': case 'K': scale = 1024; digits.pop_back(); break;
    case 'm': case 'M': scale = 1024 * 1024; digits.pop_back(); break;
    case 'g': case 'G': scale = 1024 * 1024 * 1024; digits.pop_back(); break;
    default: break;
  }
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec != std::errc{} || end != digits.data() + digits.size() || v == 0) return false;
  out = v * scale;
  return true;
}

// The further --listen addresses this shard serves: all of them on shard 0; on the others, those the kernel can
// spread over the shards (SO_REUSEPORT, as the first address in reuseport mode) — not a Unix path, not port 0.
void add_more_servers(QueueService& service, Shard& shard, const std::vector<Address>& addresses) {
  const bool shared = service.options.server.listen_options.reuse_port == ReusePort::yes;
  for (const Address& a : addresses) {
    const bool spread = shared && !a.is_unix() && a.port() != 0;
    if (shard.id() != 0 && !spread) continue;
    ServerOptions server = service.options.server;
    server.listen = a;
    server.listen_options.reuse_port = spread ? ReusePort::yes : ReusePort::no;
    service.more.push_back(std::make_unique<QueueServer>(shard.loop(), service.options, server, service.server.core_ptr()));
    service.more_tcp.push_back(&service.more.back()->tcp());
  }
}

}  // namespace

void add_queue_command(CLI::App& app, std::function<int()>& run) {
  auto* cmd = app.add_subcommand("queue", "beanstalkd-compatible work queue (protocol 1.12/1.13) with a durable "
                                          "binlog and group commit");
  struct State {
    CommonOptions common;
    ShardingCli sharding;
    QueueOptions queue;
    std::string listen;               // add_server_options' text (replaced by `listens`)
    std::vector<std::string> listens;
    std::vector<Address> more_addresses;
    std::string bs_addr;
    std::uint16_t bs_port = 0;
    double idle_seconds = 0;
    double shutdown_seconds = 5;
    std::string fsync;
    std::string bs_fsync_ms;
    bool bs_no_fsync = false;
    std::string binlog_size = "10m";
    std::vector<std::string> allow;
    TlsServerFiles tls;
    bool verbose = false;
    std::atomic<bool> draining{false};
    QueueCore* core = nullptr;  // set on shard 0 before the other shards start
  };
  auto state = std::make_shared<State>();
  add_server_options(*cmd, state->queue.server, state->listen, state->idle_seconds, state->shutdown_seconds);
  cmd->remove_option(cmd->get_option("--listen"));
  cmd->add_option("--listen", state->listens,
                  "Address to listen on: HOST:PORT, [IPv6]:PORT or unix:/path (default 127.0.0.1:11300). Repeatable: "
                  "the first address is spread over the shards as --accept says; further ones are served by every "
                  "shard through SO_REUSEPORT, or by shard 0 alone for a Unix path or port 0");
  cmd->add_option("-l", state->bs_addr,
                  "beanstalkd's listen address (with -p; default 0.0.0.0 when only -p is given); unix:/path works too");
  cmd->add_option("-p", state->bs_port, "beanstalkd's port (with -l; default 11300)");
  cmd->add_option("--binlog,-b", state->queue.binlog_dir,
                  "Keep jobs in an append-only log in this directory and replay it at start-up (default: no binlog; "
                  "jobs live in memory only). One server per directory (locked)");
  cmd->add_option("--fsync", state->fsync,
                  "With --binlog: always (a reply to put, delete, release, bury, kick or touch is sent only after its "
                  "record is on disk; one fsync covers every record of a loop turn), never (the kernel writes back "
                  "when it likes; records still reach the page cache before the reply, so a crashed process loses "
                  "nothing, a crashed machine may), or MS (fsync at most every MS milliseconds, also when idle). "
                  "Default: 50");
  cmd->add_option("-f", state->bs_fsync_ms, "beanstalkd's -f MS: --fsync MS (0 means always)");
  cmd->add_flag("-F", state->bs_no_fsync, "beanstalkd's -F: --fsync never");
  cmd->add_option("--binlog-size,-s", state->binlog_size,
                  "Size of each binlog segment file, bytes or with k/m/g (default 10m; raised to hold a few of the "
                  "largest jobs)");
  cmd->add_option("--max-job-size,-z", state->queue.max_job_size,
                  "Largest job body in bytes; a larger put answers JOB_TOO_BIG (default 65535)")
      ->check(CLI::Range(std::uint32_t{1}, std::uint32_t{1} << 30));
  cmd->add_option("--allow", state->allow,
                  "Accept connections only from these address blocks (CIDR, e.g. 10.0.0.0/8 or ::1/128; repeatable). "
                  "Others are closed at once. Unix-socket clients are always accepted. Default: everyone");
  cmd->add_option("--tls-cert", state->tls.cert,
                  "Speak TLS on every listener with this PEM certificate (the chain, leaf first; with --tls-key). "
                  "--allow is still checked first; a handshake must finish within 10 s. Files are checked at "
                  "start-up: a missing, unreadable or mismatched one stops the server before it listens");
  cmd->add_option("--tls-key", state->tls.key, "The PEM private key of --tls-cert (unencrypted)");
  cmd->add_option("--tls-client-ca", state->tls.client_ca,
                  "With --tls-cert: require every client to present a certificate signed by a CA in this PEM file; "
                  "a client without one, or with another, fails the handshake");
  cmd->add_flag("-V", state->verbose, "beanstalkd's -V: verbose (log level debug)");
  add_sharding_options(*cmd, state->sharding);
  add_common_options(*cmd, state->common);
  cmd->callback([state, &run] {
    run = [state]() -> int {
      State& s = *state;
      std::string listen = s.listens.empty() ? std::string() : s.listens[0];
      for (std::size_t i = 1; i < s.listens.size(); ++i) {
        auto a = Address::parse(s.listens[i]);
        if (!a) {
          std::fprintf(stderr, "ringlet: --listen %s: not an address (expected HOST:PORT, [IPv6]:PORT or unix:/path)\n",
                       s.listens[i].c_str());
          return 2;
        }
        s.more_addresses.push_back(*a);
      }
      if (listen.empty()) {
        if (!s.bs_addr.empty() && s.bs_addr.rfind("unix:", 0) == 0) {
          listen = s.bs_addr;
        } else if (!s.bs_addr.empty() || s.bs_port != 0) {
          std::string host = s.bs_addr.empty() ? "0.0.0.0" : s.bs_addr;
          if (host.find(':') != std::string::npos) host = "[" + host + "]";
          listen = host + ":" + std::to_string(s.bs_port != 0 ? s.bs_port : 11300);
        } else {
          listen = "127.0.0.1:11300";
        }
      }
      if (!finish_server_options(s.queue.server, listen, s.idle_seconds, s.shutdown_seconds)) return 2;
      QueueOptions& o = s.queue;
      std::string fsync = !s.fsync.empty() ? s.fsync : s.bs_no_fsync ? "never" : !s.bs_fsync_ms.empty() ? s.bs_fsync_ms : "50";
      if (!queue::parse_fsync_mode(fsync, o.binlog.fsync, o.binlog.fsync_interval_ns)) {
        std::fprintf(stderr, "ringlet: --fsync %s: expected always, never or a number of milliseconds\n", fsync.c_str());
        return 2;
      }
      if (!parse_size(s.binlog_size, o.binlog.segment_size)) {
        std::fprintf(stderr, "ringlet: --binlog-size %s: expected bytes, or a number with k, m or g\n",
                     s.binlog_size.c_str());
        return 2;
      }
      for (const std::string& a : s.allow) {
        auto c = Cidr::parse(a);
        if (!c) {
          std::fprintf(stderr, "ringlet: --allow %s: expected an address or ADDRESS/PREFIX\n", a.c_str());
          return 2;
        }
        o.allow.push_back(*c);
      }
      if (s.tls.cert.empty() != s.tls.key.empty() || (!s.tls.client_ca.empty() && s.tls.cert.empty())) {
        std::fprintf(stderr, "ringlet: --tls-cert and --tls-key go together (and --tls-client-ca needs both)\n");
        return 2;
      }
      if (!s.tls.cert.empty()) {
        std::string why;
        auto tls = TlsContext::create_server(s.tls, why);
        if (!tls) {
          std::fprintf(stderr, "ringlet: %s\n", why.c_str());
          return 2;
        }
        o.tls = std::move(*tls);
      }
      if (s.verbose) s.common.log_level = "debug";
      o.draining = &s.draining;
      o.server.name = "queue";
      // A whole put (body, CRLF and the next command line) must fit below the receive watermark.
      std::size_t& watermark = o.server.listen_options.stream.receive_high_watermark;
      watermark = std::max<std::size_t>(watermark, std::size_t{o.max_job_size} + 1024);
      o.server.listen_options.stream.send_high_watermark = o.output_limit;
      // SIGUSR1 (drain mode) is read from a signalfd on shard 0: block it before any shard thread starts.
      sigset_t mask;
      sigemptyset(&mask);
      sigaddset(&mask, SIGUSR1);
      pthread_sigmask(SIG_BLOCK, &mask, nullptr);
      return serve_sharded(s.common, s.sharding, o.server,
                           [state](Shard& shard, const ServerOptions& server) -> std::unique_ptr<ShardService> {
                             State& st = *state;
                             QueueOptions options = st.queue;  // read only: shards start one after another
                             options.server = server;
                             std::shared_ptr<QueueCore> owned;
                             if (shard.id() == 0) {
                               auto created = QueueCore::create(shard.loop(), options);
                               if (!created) return nullptr;
                               owned = std::move(*created);
                               st.core = owned.get();
                               shard.loop().spawn(watch_drain_signal(&st.draining));
                             }
                             auto service = std::make_unique<QueueService>(shard.loop(), std::move(options),
                                                                           std::move(owned), st.core);
                             add_more_servers(*service, shard, st.more_addresses);
                             return service;
                           });
    };
  });
}

}  // namespace ringlet::cli
