// echo_command.cpp — `ringlet echo`: options, then serve until a signal.
#include "commands.hpp"
#include "common.hpp"
#include "ringlet/servers/echo.hpp"

namespace ringlet::cli {

namespace {
struct EchoService final : ShardService {
  EchoService(Loop& loop, const EchoOptions& options) : server(make_echo_server(loop, options)) {}
  TcpServer& tcp() override { return server; }
  TcpServer server;
};
}  // namespace

void add_echo_command(CLI::App& app, std::function<int()>& run) {
  auto* cmd = app.add_subcommand("echo", "Echo server: sends every received byte back (the tutorial and the "
                                         "baseline benchmark)");
  struct State {
    CommonOptions common;
    ShardingCli sharding;
    EchoOptions echo;
    std::string listen = "127.0.0.1:7000";
    double idle_seconds = 0;
    double shutdown_seconds = 5;
  };
  auto state = std::make_shared<State>();
  add_server_options(*cmd, state->echo.server, state->listen, state->idle_seconds, state->shutdown_seconds);
  cmd->add_option("--receive-limit", state->echo.receive_limit,
                  "Unread bytes held per connection before receiving pauses (back-pressure on the client)")
      ->check(CLI::Range(std::size_t{4096}, std::size_t{1} << 30))
      ->capture_default_str();
  add_sharding_options(*cmd, state->sharding);
  add_common_options(*cmd, state->common);
  cmd->callback([state, &run] {
    run = [state]() -> int {
      if (!finish_server_options(state->echo.server, state->listen, state->idle_seconds, state->shutdown_seconds)) {
        return 2;
      }
      EchoOptions echo = state->echo;
      echo.server.name = "echo";
      return serve_sharded(state->common, state->sharding, echo.server,
                           [echo](Shard& shard, const ServerOptions& server) -> std::unique_ptr<ShardService> {
                             EchoOptions options = echo;
                             options.server = server;
                             return std::make_unique<EchoService>(shard.loop(), options);
                           });
    };
  });
}

}  // namespace ringlet::cli
