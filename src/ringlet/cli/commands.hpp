// commands.hpp — one function per subcommand: adds its options to the app and, when chosen, sets `run`.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace ringlet::cli {

void add_echo_command(CLI::App& app, std::function<int()>& run);
void add_http_command(CLI::App& app, std::function<int()>& run);
void add_proxy_command(CLI::App& app, std::function<int()>& run);
void add_cache_command(CLI::App& app, std::function<int()>& run);
void add_queue_command(CLI::App& app, std::function<int()>& run);
void add_bench_command(CLI::App& app, std::function<int()>& run);

// `--version`'s text (version.cpp): version, git revision, and the backends this kernel allows (probed now).
std::string version_text();

}  // namespace ringlet::cli
