// http_command.cpp — `ringlet http` (being built; replaced by its real command).
#include "commands.hpp"

namespace ringlet::cli {

void add_http_command(CLI::App&, std::function<int()>&) {}

}  // namespace ringlet::cli
