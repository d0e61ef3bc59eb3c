// main.cpp — `ringlet <server> [options]`: one binary, a subcommand per server.
#include <CLI/CLI.hpp>

#include <functional>

#include "commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"ringlet: network servers on a completion-oriented runtime (io_uring or epoll)", "ringlet"};
  app.require_subcommand(1);
  app.set_version_flag("--version", ringlet::cli::version_text);
  std::function<int()> run;
  ringlet::cli::add_echo_command(app, run);
  ringlet::cli::add_http_command(app, run);
  ringlet::cli::add_proxy_command(app, run);
  ringlet::cli::add_cache_command(app, run);
  ringlet::cli::add_queue_command(app, run);
  ringlet::cli::add_bench_command(app, run);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return run ? run() : 0;
}
