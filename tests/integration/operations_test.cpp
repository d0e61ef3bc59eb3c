// operations_test.cpp — what an operator relies on, checked on the real binary: `--version`, the log formats and
// log file, systemd socket activation and readiness notification (without systemd: the test plays its part), the
// unit files and the Debian package.
#include "echo_harness.hpp"

#include <sys/socket.h>
#include <sys/un.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <string>
#include <vector>

namespace ringlet::testing {
namespace {

using namespace std::chrono_literals;
using echo::Fd;

std::string run_to_completion(const std::vector<std::string>& argv, ExitStatus* status = nullptr,
                              std::chrono::milliseconds timeout = 30s) {
  Finished f = run_command(argv, timeout);
  EXPECT_TRUE(f.status.has_value()) << argv[0] << " did not start or did not exit: " << f.err;
  if (status != nullptr && f.status) *status = *f.status;
  return f.out + f.err;
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

// --log-format json: every line one JSON object with the documented keys, shard included.
TEST(LogFormat, json_lines_carry_time_level_shard_and_key) {
  ChildProcess server = ChildProcess::spawn({RINGLET_BINARY, "echo", "--listen", "127.0.0.1:0", "--threads", "2",
                                             "--no-pin", "--log-format", "json"});
  ASSERT_TRUE(server.wait_for_stderr(R"("key":"listening")", 10'000ms).has_value()) << server.stderr_text();
  server.send_signal(SIGTERM);
  ASSERT_TRUE(server.wait_for_exit(30'000ms).has_value());
  std::string err = server.stderr_text();
  std::size_t lines = 0;
  for (std::size_t at = 0; at < err.size();) {
    std::size_t end = err.find('\n', at);
    ASSERT_NE(end, std::string::npos) << "a line without its newline:\n" << err;
    std::string line = err.substr(at, end - at);
    at = end + 1;
    ++lines;
    EXPECT_EQ(line.rfind(R"({"time":")", 0), 0u) << line;
    EXPECT_NE(line.find(R"(","level":")"), std::string::npos) << line;
    EXPECT_NE(line.find(R"(","shard":)"), std::string::npos) << line;
    EXPECT_NE(line.find(R"(,"key":")"), std::string::npos) << line;
    EXPECT_EQ(line.back(), '}') << line;
  }
  EXPECT_GE(lines, 4u) << err;
  EXPECT_NE(err.find(R"("shard":1,"key":"listening")"), std::string::npos) << err;
}

// --log-file appends there instead of stderr; SIGHUP (logrotate's postrotate) makes the server reopen the path.
TEST(LogFile, sighup_reopens_the_file_after_rotation) {
  std::string path = ::testing::TempDir() + "/ringlet-ops-" + std::to_string(::getpid()) + ".log";
  std::string rotated = path + ".1";
  ::unlink(path.c_str());
  ::unlink(rotated.c_str());
  ChildProcess server = ChildProcess::spawn(
      {RINGLET_BINARY, "echo", "--listen", "127.0.0.1:0", "--threads", "1", "--log-file", path});
  auto read_file = [](const std::string& p) {
    std::ifstream in(p);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  };
  auto wait_in_file = [&](const std::string& p, const std::string& needle) {
    for (auto until = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < until;) {
      if (read_file(p).find(needle) != std::string::npos) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  };
  ASSERT_TRUE(wait_in_file(path, "listening on")) << server.stderr_text();
  ASSERT_EQ(::rename(path.c_str(), rotated.c_str()), 0);
  server.send_signal(SIGHUP);
  ASSERT_TRUE(wait_in_file(path, "log file reopened")) << read_file(rotated);
  server.send_signal(SIGTERM);
  std::optional<ExitStatus> status = server.wait_for_exit(30'000ms);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->success()) << status->describe();
  EXPECT_NE(read_file(path).find("stopped"), std::string::npos) << read_file(path);
  EXPECT_EQ(read_file(rotated).find("stopped"), std::string::npos);
  EXPECT_EQ(server.stderr_text(), "");
  ::unlink(path.c_str());
  ::unlink(rotated.c_str());
}

// The unit files under packaging/systemd/ as systemd reads them: no unknown key, no bad value, every unit each
// names exists. ExecStart points at this build's binary (verify checks that it exists).
TEST(UnitFiles, pass_systemd_analyze_verify_without_a_remark) {
  if (::access("/usr/bin/systemd-analyze", X_OK) != 0) GTEST_SKIP() << "systemd-analyze is not installed";
  namespace fs = std::filesystem;
  fs::path dir = fs::path(::testing::TempDir()) / ("ringlet-units-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::vector<std::string> argv = {"/usr/bin/systemd-analyze", "verify", "--man=no"};
  std::size_t units = 0;
  for (const fs::directory_entry& e : fs::directory_iterator(fs::path(RINGLET_SOURCE_DIR) / "packaging/systemd")) {
    std::ifstream in(e.path());
    std::stringstream text;
    text << in.rdbuf();
    std::string unit = text.str();
    for (std::size_t at; (at = unit.find("/usr/bin/ringlet")) != std::string::npos;) {
      unit.replace(at, std::strlen("/usr/bin/ringlet"), RINGLET_BINARY);
    }
    std::ofstream(dir / e.path().filename()) << unit;
    argv.push_back((dir / e.path().filename()).string());
    ++units;
  }
  EXPECT_GE(units, 6u);
  ExitStatus status;
  std::string out = run_to_completion(argv, &status);
  EXPECT_TRUE(status.success()) << status.describe() << "\n" << out;
  EXPECT_EQ(out, "") << "systemd-analyze has remarks (it exits 0 on unknown keys)";
  fs::remove_all(dir);
}

// The Debian package of this build (cmake/packaging.cmake): what it holds, and that the binary it installs serves.
// It is built with this build's CPack configuration into a temporary directory, and extracted there (no dpkg
// database is touched).
TEST(DebianPackage, holds_what_an_operator_needs_and_its_binary_serves) {
  // The package is a release artifact: the release stage of scripts/test.sh tests it. Packing, stripping and
  // compressing a sanitized binary would only repeat that, slower.
  if (echo::is_sanitized_build()) GTEST_SKIP() << "the package is tested in the release build";
  if (::access("/usr/bin/cpack", X_OK) != 0 || ::access("/usr/bin/dpkg-deb", X_OK) != 0) {
    GTEST_SKIP() << "cpack or dpkg-deb is not installed";
  }
  namespace fs = std::filesystem;
  fs::path build = fs::path(RINGLET_BINARY).parent_path();
  fs::path dir = fs::path(::testing::TempDir()) / ("ringlet-deb-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  ExitStatus status;
  std::string out = run_to_completion({"/usr/bin/cpack", "-G", "DEB", "--config",
                                       (build / "CPackConfig.cmake").string(), "-B", dir.string()},
                                      &status, 240s);
  ASSERT_TRUE(status.success()) << status.describe() << "\n" << out;
  fs::path deb;
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".deb") deb = e.path();
  }
  ASSERT_FALSE(deb.empty()) << out;

  std::string contents = run_to_completion({"/usr/bin/dpkg-deb", "--contents", deb.string()}, &status);
  ASSERT_TRUE(status.success()) << contents;
  for (const char* expected :
       {"./usr/bin/ringlet\n", "./usr/share/man/man1/ringlet.1.gz\n", "./usr/share/man/man1/ringlet-cache.1.gz\n",
        "./usr/share/man/man1/ringlet-queue.1.gz\n", "./lib/systemd/system/ringlet-cache.socket\n",
        "./lib/systemd/system/ringlet-cache.service\n", "./lib/systemd/system/ringlet-http.service\n",
        "./usr/include/ringlet/runtime/loop.hpp\n", "/cmake/ringlet/ringletConfig.cmake\n",
        "./usr/share/doc/ringlet/copyright\n"}) {
    EXPECT_NE(contents.find(expected), std::string::npos) << "missing " << expected << " in\n" << contents;
  }
  EXPECT_EQ(contents.find("/cli/"), std::string::npos) << "the cli's private headers are not for users";

  fs::path root = dir / "root";
  out = run_to_completion({"/usr/bin/dpkg-deb", "--extract", deb.string(), root.string()}, &status);
  ASSERT_TRUE(status.success()) << out;
  ChildProcess server = ChildProcess::spawn(
      {(root / "usr/bin/ringlet").string(), "echo", "--listen", "127.0.0.1:0", "--threads", "1"});
  std::optional<echo::Endpoint> endpoint = echo::wait_for_listening(server);
  ASSERT_TRUE(endpoint.has_value()) << server.stderr_text();
  Fd client = echo::connect_now(*endpoint);
  EXPECT_EQ(echo::roundtrip(client, "packaged"), "packaged");
  server.send_signal(SIGTERM);
  std::optional<ExitStatus> stopped = server.wait_for_exit(30'000ms);
  ASSERT_TRUE(stopped.has_value());
  EXPECT_TRUE(stopped->success()) << stopped->describe() << "\n" << server.stderr_text();
  fs::remove_all(dir);
}

// What systemd does before starting a socket-activated service: a TCP socket bound and listening (blocking, as
// systemd leaves it unless NonBlocking=yes) on a free loopback port.
Fd systemd_style_listener(std::string& address_text) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof a;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), length) != 0 || ::listen(fd.get(), 128) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &length) != 0) {
    return Fd();
  }
  address_text = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  return fd;
}

// systemd's end of NOTIFY_SOCKET: a Unix datagram socket the service sends its state to.
class NotifyListener {
 public:
  NotifyListener() {
    path_ = ::testing::TempDir() + "/ringlet-notify-" + std::to_string(::getpid());
    ::unlink(path_.c_str());
    fd_ = Fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path_.c_str());
    bound_ = ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~NotifyListener() { ::unlink(path_.c_str()); }
  bool bound() const { return bound_; }
  const std::string& path() const { return path_; }

  // Waits for a message containing `state`; every message received meanwhile is kept in `seen`.
  bool wait_for(const std::string& state, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (seen.find(state) != std::string::npos) return true;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buffer[4096];
      ssize_t n = ::recv(fd_.get(), buffer, sizeof buffer, 0);
      if (n > 0) seen.append(buffer, static_cast<std::size_t>(n)).append("\n--\n");
    }
  }
  std::string seen;

 private:
  std::string path_;
  Fd fd_;
  bool bound_ = false;
};

class SocketActivation : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string& reason = echo::backend_unavailable_reason(GetParam());
    if (!reason.empty()) GTEST_SKIP() << "backend " << GetParam() << " unavailable here: " << reason;
  }
};

// The whole hand-over as systemd does it: the server serves the socket it was given on every shard (no --listen),
// says READY=1 once it does, STOPPING=1 on SIGTERM, exits 0, and leaves the socket listening for the next start.
TEST_P(SocketActivation, serves_the_handed_over_socket_and_reports_ready_then_stopping) {
  std::string address;
  Fd listener = systemd_style_listener(address);
  ASSERT_TRUE(listener.valid()) << std::strerror(errno);
  NotifyListener notify;
  ASSERT_TRUE(notify.bound()) << std::strerror(errno);
  SpawnOptions options;
  options.listen_fd = listener.get();
  options.environment = {"NOTIFY_SOCKET=" + notify.path()};
  std::string error;
  ChildProcess server = ChildProcess::spawn(
      {RINGLET_BINARY, "echo", "--threads", "2", "--backend", GetParam(), "--no-pin"}, options, &error);
  ASSERT_TRUE(server.valid()) << error;
  ASSERT_TRUE(notify.wait_for("READY=1", 10'000ms)) << server.stderr_text();
  std::string err = server.stderr_text();
  EXPECT_NE(err.find("socket from systemd"), std::string::npos) << err;
  EXPECT_EQ(err.find("127.0.0.1:7000"), std::string::npos) << "the default address was bound too:\n" << err;

  auto endpoint = echo::parse_endpoint(address);
  ASSERT_TRUE(endpoint.has_value());
  for (int i = 0; i < 8; ++i) {  // several connections: whichever shard takes each, it is served
    Fd client = echo::connect_now(*endpoint);
    ASSERT_TRUE(client.valid());
    std::string hello = "hello " + std::to_string(i);
    EXPECT_EQ(echo::roundtrip(client, hello), hello);
  }

  ASSERT_TRUE(server.send_signal(SIGTERM));
  EXPECT_TRUE(notify.wait_for("STOPPING=1", 10'000ms)) << server.stderr_text();
  std::optional<ExitStatus> status = server.wait_for_exit(30'000ms);
  ASSERT_TRUE(status.has_value()) << "the server did not exit after SIGTERM";
  EXPECT_TRUE(status->success()) << status->describe() << "\n" << server.stderr_text();
  EXPECT_LT(notify.seen.find("READY=1"), notify.seen.find("STOPPING=1")) << notify.seen;

  // Still listening after the server is gone: the kernel completes a handshake on it (systemd would start the
  // service again for this connection).
  Fd late = echo::connect_now(*endpoint);
  EXPECT_TRUE(late.valid()) << "the handed-over socket was shut down with the server";
}

// A socket passed for another process (LISTEN_PID not ours) is left alone: the server binds --listen as usual.
TEST_P(SocketActivation, ignores_sockets_meant_for_another_process) {
  std::string address;
  Fd listener = systemd_style_listener(address);
  ASSERT_TRUE(listener.valid());
  SpawnOptions options;
  options.environment = {"LISTEN_FDS=1", "LISTEN_PID=1"};
  std::string error;
  ChildProcess server = ChildProcess::spawn(
      {RINGLET_BINARY, "echo", "--listen", "127.0.0.1:0", "--backend", GetParam()}, options, &error);
  ASSERT_TRUE(server.valid()) << error;
  std::optional<std::string> line = server.wait_for_stderr("listening on ", 10'000ms);
  ASSERT_TRUE(line.has_value()) << server.stderr_text();
  EXPECT_EQ(line->find("socket from systemd"), std::string::npos) << *line;
  server.send_signal(SIGTERM);
  std::optional<ExitStatus> status = server.wait_for_exit(30'000ms);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->success()) << status->describe();
}

INSTANTIATE_TEST_SUITE_P(Backends, SocketActivation, ::testing::Values(std::string("uring"), std::string("epoll")),
                         echo::backend_name);

}  // namespace
}  // namespace ringlet::testing
