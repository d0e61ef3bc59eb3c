// stream_fixture.hpp — what the tests of streams over a real socket share (net/stream_test.cpp, net/tls_test.cpp):
// a LoopTest (both backends, clean-shutdown check) that makes connected Stream pairs, a byte pattern that shows a
// lost, repeated or misplaced run, and a task that awaits a joinable one. Core-local, test-only.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include "ringlet/net/stream.hpp"
#include "ringlet/runtime/task.hpp"
#include "support/loop_fixture.hpp"

namespace ringlet::testing {

// A byte pattern with no short period (xorshift64), so a dropped, repeated or misplaced run of bytes shows up in a
// compare. The same `seed` gives the same bytes.
inline std::string pattern(std::size_t n, std::size_t seed = 0) {
  std::string out(n, '\0');
  std::uint64_t x = 0x9e3779b97f4a7c15ull ^ seed;
  for (std::size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<char>(x);
  }
  return out;
}

// The result of a joinable task, as a task of its own (to run under a deadline with with_timeout).
template <class T>
Task<T> wait_for(JoinHandle<T> handle) {
  co_return co_await handle;
}

class StreamFixture : public LoopTest {
 public:
  using LoopTest::loop;
  using LoopTest::run;

  // Two connected Streams on the test's loop over a Unix socketpair (no listener, no connect to wait for).
  std::pair<Stream, Stream> socket_pair() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    return {Stream(loop(), fds[0]), Stream(loop(), fds[1])};
  }
};

}  // namespace ringlet::testing
