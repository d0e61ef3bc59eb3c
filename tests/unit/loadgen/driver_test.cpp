// driver_test.cpp — the generator core against servers written in the test: a correct echo server (no errors),
// a faulty one that changes one byte, HTTP servers that answer a wrong status or a wrong Content-Length, and one
// that closes connections. Every test runs on both backends and ends with a clean shutdown (LoopTest).
#include "ringlet/loadgen/driver.hpp"

#include <gtest/gtest.h>

#include <string>

#include "ringlet/net/tcp_server.hpp"
#include "ringlet/runtime/timeout.hpp"
#include "support/loop_fixture.hpp"

namespace ringlet::loadgen {
std::unique_ptr<Workload> make_echo_workload();
std::unique_ptr<Workload> make_http_workload();

namespace {

using namespace std::chrono_literals;
using ringlet::testing::LoopTest;

// Options a test leaves at their defaults.
class NoOptions final : public OptionSink {
 public:
  void add_string(std::string_view, std::string&, std::string_view) override {}
  void add_strings(std::string_view, std::vector<std::string>&, std::string_view) override {}
  void add_choice(std::string_view, std::string&, std::string_view, std::vector<std::string>) override {}
  void add_uint(std::string_view, std::uint64_t&, std::string_view, std::uint64_t, std::uint64_t) override {}
  void add_double(std::string_view, double&, std::string_view, double, double) override {}
  void add_flag(std::string_view, bool&, std::string_view) override {}
};

// ---- servers ---------------------------------------------------------------------------------------------------

Task<void> good_echo(Stream stream, TcpServer&) {
  for (;;) {
    Result<Slice> data = co_await stream.receive();
    if (!data || data->empty()) co_return;
    Status sent = co_await stream.write(std::move(*data));
    if (!sent) co_return;
  }
}

// Echoes correctly except byte 1000 of each connection's stream, which it flips.
Task<void> faulty_echo(Stream stream, TcpServer&) {
  std::uint64_t seen = 0;
  for (;;) {
    Result<Slice> data = co_await stream.receive();
    if (!data || data->empty()) co_return;
    Slice out = std::move(*data);
    if (seen <= 1000 && 1000 < seen + out.size()) {
      Slice copy = Slice::copy_of(out.span());
      copy.mutable_data()[1000 - seen] ^= std::byte{0x20};
      out = std::move(copy);
    }
    seen += out.size();
    Status sent = co_await stream.write(std::move(out));
    if (!sent) co_return;
  }
}

// An HTTP server: the Nth response of each connection (counting from 1) is `bad`, the others are `good`.
struct HttpScript {
  std::string good;
  std::string bad;
  int bad_every = 0;  // 0: never
};

Task<void> scripted_http(Stream stream, TcpServer& server) {
  const auto* script = static_cast<const HttpScript*>(server.user());
  for (int n = 1;; ++n) {
    Result<Slice> request = co_await stream.read_until("\r\n\r\n", 8192);
    if (!request) co_return;
    bool bad = script->bad_every > 0 && n % script->bad_every == 0;
    stream.queue_copy(bad ? script->bad : script->good);
    Status sent = co_await stream.flush();
    if (!sent) co_return;
  }
}

// ---- harness ---------------------------------------------------------------------------------------------------

Task<void> serve(TcpServer* server) { co_await server->run(); }

Task<WorkerResult> bench_then_stop(const BenchConfig* config, const Workload* workload, Address target,
                                   TcpServer* server) {
  WorkerResult r = co_await run_worker(*config, *workload, target, 0, 1, nullptr);
  server->stop();
  co_return r;
}

class DriverTest : public LoopTest {
 protected:
  WorkerResult run_against(TcpServer::Handler handler, Workload& workload, const BenchConfig& config,
                           void* user = nullptr, std::string url_path = "") {
    ServerOptions options;
    options.listen = Address::loopback_v4(0);
    options.shutdown_timeout = 1s;
    TcpServer server(loop(), options, handler, user);
    EXPECT_TRUE(server.listen().ok());
    Address target = server.local_address();
    std::string target_text = url_path.empty() ? target.to_string()
                                               : "http://" + target.to_string() + url_path;
    EXPECT_EQ(workload.configure(target_text, config.common), "");
    JoinHandle<void> running = loop().spawn_joinable(serve(&server));
    WorkerResult r = run(bench_then_stop(&config, &workload, target, &server));
    run(join(std::move(running)));
    return r;
  }
  static Task<void> join(JoinHandle<void> h) { co_await h; }

  static BenchConfig small_config() {
    BenchConfig c;
    c.common.connections = 4;
    c.common.depth = 3;
    c.duration_s = 0.3;
    c.timeout = 2s;
    c.reconnect_delay = 5ms;
    return c;
  }
};

TEST_P(DriverTest, a_correct_echo_server_gives_operations_and_no_errors) {
  auto workload = make_echo_workload();
  NoOptions none;
  workload->declare_options(none);
  WorkerResult r = run_against(&good_echo, *workload, small_config());
  EXPECT_GT(r.ops, 0u);
  EXPECT_EQ(r.error_total(), 0u) << r.first_wrong_reply;
  EXPECT_EQ(r.latency.count(), r.ops);
}

TEST_P(DriverTest, one_wrong_echoed_byte_is_caught_as_a_wrong_reply) {
  auto workload = make_echo_workload();
  WorkerResult r = run_against(&faulty_echo, *workload, small_config());
  // Every connection (and every reconnection) gets byte 1000 flipped: 64-byte messages, so message 16.
  EXPECT_GT(r.errors[static_cast<int>(ErrorKind::wrong_reply)], 0u);
  EXPECT_EQ(r.first_wrong_reply, "echoed bytes differ");
  EXPECT_EQ(r.errors[static_cast<int>(ErrorKind::connect)], 0u);
  EXPECT_GT(r.ops, 0u);  // the connections were re-made and carried on
}

TEST_P(DriverTest, open_loop_against_a_correct_server_gives_no_errors) {
  auto workload = make_echo_workload();
  BenchConfig c = small_config();
  c.rate = 2000;
  WorkerResult r = run_against(&good_echo, *workload, c);
  EXPECT_GT(r.ops, 0u);
  EXPECT_EQ(r.error_total(), 0u);
}

TEST_P(DriverTest, correct_http_responses_give_no_errors) {
  HttpScript script{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "", 0};
  auto workload = make_http_workload();
  WorkerResult r = run_against(&scripted_http, *workload, small_config(), &script, "/x");
  EXPECT_GT(r.ops, 0u);
  EXPECT_EQ(r.error_total(), 0u) << r.first_wrong_reply;
}

TEST_P(DriverTest, a_wrong_http_status_is_a_wrong_reply) {
  HttpScript script{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                    "HTTP/1.1 500 Oops\r\nContent-Length: 5\r\n\r\nhello", 7};
  auto workload = make_http_workload();
  WorkerResult r = run_against(&scripted_http, *workload, small_config(), &script, "/x");
  EXPECT_GT(r.errors[static_cast<int>(ErrorKind::wrong_reply)], 0u);
  EXPECT_EQ(r.first_wrong_reply, "unexpected HTTP status");
}

TEST_P(DriverTest, a_wrong_body_length_is_a_wrong_reply) {
  HttpScript script{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                    "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nhell", 5};
  auto workload = make_http_workload();
  WorkerResult r = run_against(&scripted_http, *workload, small_config(), &script, "/x");
  EXPECT_GT(r.errors[static_cast<int>(ErrorKind::wrong_reply)], 0u);
  EXPECT_EQ(r.first_wrong_reply, "body length differs from earlier responses to the same URL");
}

TEST_P(DriverTest, a_content_length_longer_than_the_body_ends_in_a_timeout_or_reset) {
  // The server promises 9 bytes and sends 5: the client waits, then gives up (timeout), never counts success.
  HttpScript script{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                    "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhello", 3};
  auto workload = make_http_workload();
  BenchConfig c = small_config();
  c.common.depth = 1;
  c.timeout = 50ms;
  WorkerResult r = run_against(&scripted_http, *workload, c, &script, "/x");
  EXPECT_GT(r.errors[static_cast<int>(ErrorKind::timeout)] + r.errors[static_cast<int>(ErrorKind::wrong_reply)],
            0u);
}

TEST_P(DriverTest, connection_close_responses_reconnect_without_errors) {
  HttpScript script{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", "", 0};
  auto workload = make_http_workload();
  BenchConfig c = small_config();
  c.common.depth = 1;
  WorkerResult r = run_against(&scripted_http, *workload, c, &script, "/x");
  EXPECT_GT(r.ops, 4u);  // more operations than connections: they were re-made
  EXPECT_EQ(r.error_total(), 0u) << r.first_wrong_reply;
}

TEST_P(DriverTest, a_refused_connection_counts_connect_errors) {
  auto workload = make_echo_workload();
  // A port nobody listens on: bind a listener, note its port, close it.
  Address target;
  {
    ServerOptions options;
    options.listen = Address::loopback_v4(0);
    TcpServer server(loop(), options, &good_echo);
    ASSERT_TRUE(server.listen().ok());
    target = server.local_address();
  }
  BenchConfig c = small_config();
  c.duration_s = 0.1;
  ASSERT_EQ(workload->configure(target.to_string(), c.common), "");
  WorkerResult r = run(run_worker(c, *workload, target, 0, 1, nullptr));
  EXPECT_EQ(r.ops, 0u);
  EXPECT_GT(r.errors[static_cast<int>(ErrorKind::connect)], 0u);
}

RINGLET_BOTH_BACKENDS(DriverTest);

}  // namespace
}  // namespace ringlet::loadgen
