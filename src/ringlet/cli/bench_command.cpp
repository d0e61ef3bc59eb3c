// bench_command.cpp — `ringlet bench` (being built; replaced by its real command).
#include "commands.hpp"

namespace ringlet::cli {

void add_bench_command(CLI::App&, std::function<int()>&) {}

}  // namespace ringlet::cli
