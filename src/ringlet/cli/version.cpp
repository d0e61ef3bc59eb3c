// version.cpp — `ringlet --version` and `ringlet <server> --version`: the version, the git revision it was built
// from, and which backends this kernel allows right now.
//
// The backends are probed at run time, not compile time: the same binary runs on kernels with io_uring, without
// it, and in containers whose seccomp profile refuses io_uring_setup — the operator wants to know which one this is.
// The probe creates each backend once with the default options (what `--backend auto` would do) and closes it.
#include "version.hpp"

#include <fmt/format.h>

#include "commands.hpp"
#include "ringlet/runtime/backend.hpp"

namespace ringlet::cli {

std::string version_text() {
  BackendOptions options;
  std::string uring_detail;
  std::string epoll_detail;
  bool uring = create_uring_backend(options, uring_detail) != nullptr;
  bool epoll = create_epoll_backend(options, epoll_detail) != nullptr;
  return fmt::format("ringlet {} (git {})\nbackends: io_uring {}, epoll {}", kVersion, kGitRevision,
                     uring ? "usable (" + uring_detail + ")" : "unavailable: " + uring_detail,
                     epoll ? "usable" : "unavailable: " + epoll_detail);
}

}  // namespace ringlet::cli
