// bench_harness.hpp — what the black-box tests of `ringlet bench` against real peers share: a JSON validator that
// collects values by dotted path, free ports for peers that cannot listen on port 0, starting a peer on one, and
// running the real binary and describing its result.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"

#ifndef RINGLET_BINARY
#error "RINGLET_BINARY must name the ringlet executable"
#endif

namespace ringlet::testing {

using namespace std::chrono_literals;

// ---- JSON: validates the whole text and collects numbers and strings by dotted path ----------------------------

class Json {
 public:
  bool parse(const std::string& text) {
    s_ = text;
    i_ = 0;
    bool ok = value("");
    ws();
    return ok && i_ == s_.size();
  }
  std::optional<double> number(const std::string& path) const {
    auto it = numbers_.find(path);
    if (it == numbers_.end()) return std::nullopt;
    return it->second;
  }
  std::optional<std::string> text(const std::string& path) const {
    auto it = strings_.find(path);
    if (it == strings_.end()) return std::nullopt;
    return it->second;
  }

 private:
  void ws() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool string(std::string& out) {
    if (i_ >= s_.size() || s_[i_] != '"') return false;
    for (++i_; i_ < s_.size() && s_[i_] != '"'; ++i_) {
      if (s_[i_] == '\\') ++i_;
      if (i_ < s_.size()) out.push_back(s_[i_]);
    }
    return i_++ < s_.size();
  }
  bool value(const std::string& path) {
    ws();
    if (i_ >= s_.size()) return false;
    char c = s_[i_];
    if (c == '{' || c == '[') {
      char close = c == '{' ? '}' : ']';
      ++i_;
      ws();
      if (i_ < s_.size() && s_[i_] == close) return ++i_, true;
      for (int index = 0;; ++index) {
        ws();
        std::string key = std::to_string(index);
        if (c == '{') {
          key.clear();
          if (!string(key)) return false;
          ws();
          if (i_ >= s_.size() || s_[i_++] != ':') return false;
        }
        if (!value(path.empty() ? key : path + "." + key)) return false;
        ws();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        return i_ < s_.size() && s_[i_++] == close;
      }
    }
    if (c == '"') {
      std::string out;
      if (!string(out)) return false;
      strings_[path] = out;
      return true;
    }
    for (const char* word : {"true", "false", "null"}) {
      std::string w(word);
      if (s_.compare(i_, w.size(), w) == 0) return i_ += w.size(), true;
    }
    std::size_t used = 0;
    try {
      numbers_[path] = std::stod(s_.substr(i_, 40), &used);
    } catch (...) {
      return false;
    }
    i_ += used;
    return used > 0;
  }

  std::string s_;
  std::size_t i_ = 0;
  std::map<std::string, double> numbers_;
  std::map<std::string, std::string> strings_;
};

// ---- helpers ------------------------------------------------------------------------------------------------------

inline std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

inline bool can_connect(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// Starts `argv_for(port)` on a free port and waits until it accepts connections; retries on another port when
// the server exits (it lost the port to someone else).
inline std::optional<std::pair<ChildProcess, std::uint16_t>> start_on_free_port(
    const std::function<std::vector<std::string>(std::uint16_t)>& argv_for) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    std::uint16_t port = free_port();
    if (port == 0) continue;
    ChildProcess child = ChildProcess::spawn(argv_for(port));
    if (!child.valid()) return std::nullopt;
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline && child.running()) {
      if (can_connect(port)) return std::make_pair(std::move(child), port);
      std::this_thread::sleep_for(10ms);
    }
  }
  return std::nullopt;
}

struct BenchRun {
  ExitStatus status;
  std::string out;
  std::string err;
  Json json;
  bool json_ok = false;
};

inline BenchRun run_bench(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {RINGLET_BINARY, "bench"};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess bench = ChildProcess::spawn(argv);
  BenchRun r;
  auto st = bench.wait_for_exit(60s);
  if (!st) {
    bench.kill_and_reap();
    r.err = "bench did not finish within 60 s";
    return r;
  }
  r.status = *st;
  r.out = bench.stdout_text();
  r.err = bench.stderr_text();
  r.json_ok = r.json.parse(r.out);
  return r;
}

inline std::string describe(const BenchRun& r) {
  return "exit: " + r.status.describe() + "\nstdout: " + r.out + "\nstderr (tail): " +
         r.err.substr(r.err.size() > 2000 ? r.err.size() - 2000 : 0);
}

}  // namespace ringlet::testing
