// metrics_test.cpp — `--metrics-listen` on the real binary, every server, both backends (issue #14): the /metrics
// protocol, exact counter values after a known exchange (summed over two shards where the server has several),
// `promtool check metrics` on each server's page, and scrapes during a load that must neither disturb the load nor
// see a counter go backwards.
#include "echo_harness.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace ringlet::testing {
namespace {

using namespace std::chrono_literals;
using echo::Endpoint;
using echo::Fd;
using echo::Peer;
using Clock = std::chrono::steady_clock;

// The address in a "NAME: listening on ADDRESS (...)" line.
std::optional<Endpoint> address_in(const std::optional<std::string>& line) {
  if (!line) return std::nullopt;
  std::size_t begin = line->find("listening on ") + 13;
  return echo::parse_endpoint(line->substr(begin, line->find(" (", begin) - begin));
}

// One request on a fresh connection (the server closes after it: Connection: close); the whole reply.
std::string http_exchange(const Endpoint& to, const std::string& request) {
  Peer p;
  p.fd = echo::connect_now(to);
  p.out = request;
  p.wait_eof = true;
  if (p.fd.valid()) echo::drive_one(p, 10s);
  return p.in;
}

// GET /metrics; the body, or "" (after a failed expectation) when the reply is not a 200 with the right type.
std::string scrape(const Endpoint& metrics) {
  std::string reply = http_exchange(metrics, "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  std::size_t head_end = reply.find("\r\n\r\n");
  EXPECT_EQ(reply.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << reply;
  EXPECT_NE(reply.find("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"), std::string::npos) << reply;
  if (head_end == std::string::npos || reply.rfind("HTTP/1.1 200", 0) != 0) return "";
  return reply.substr(head_end + 4);
}

// The value of one series, written as on the page (`name` or `name{labels}`); -1 when absent.
double value_of(const std::string& page, const std::string& series) {
  std::string needle = "\n" + series + " ";
  std::string text = "\n" + page;
  std::size_t at = text.find(needle);
  if (at == std::string::npos) return -1;
  return std::strtod(text.c_str() + at + needle.size(), nullptr);
}

// Every sample on the page, by series text.
std::map<std::string, double> samples_of(const std::string& page) {
  std::map<std::string, double> out;
  std::istringstream in(page);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::size_t space = line.rfind(' ');
    out[line.substr(0, space)] = std::strtod(line.c_str() + space + 1, nullptr);
  }
  return out;
}

std::string temp_dir(const std::string& tag) {
  std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / ("ringlet-metrics-" + tag + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

// A server started with --metrics-listen 127.0.0.1:0 on the test's backend, stopped with SIGTERM at the end.
class MetricsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string& reason = echo::backend_unavailable_reason(GetParam());
    if (!reason.empty()) GTEST_SKIP() << "backend " << GetParam() << " unavailable here: " << reason;
  }

  void TearDown() override {
    for (ChildProcess* p : {&server_, &backend_}) {
      if (!p->valid()) continue;
      if (p->running()) {
        p->send_signal(SIGTERM);
        std::optional<ExitStatus> status = p->wait_for_exit(30'000ms);
        EXPECT_TRUE(status.has_value()) << "a server did not exit after SIGTERM";
        if (status) {
          EXPECT_TRUE(status->success()) << status->describe();
        }
      }
      echo::expect_no_sanitizer_report(p->stderr_text());
      if (HasFailure()) std::printf("---- server stderr ----\n%s----\n", p->stderr_text().c_str());
      p->kill_and_reap();
    }
  }

  // `ringlet <server> <backend flag> <param> --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 extra...`: sets
  // endpoint_ and metrics_ from the two "listening on" lines.
  void start(const std::string& server, std::vector<std::string> extra = {}) {
    const std::string backend_flag = server == "proxy" ? "--io-backend" : "--backend";
    std::vector<std::string> args = {RINGLET_BINARY, server, backend_flag, GetParam(), "--listen", "127.0.0.1:0",
                                     "--metrics-listen", "127.0.0.1:0", "--no-pin"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::string error;
    server_ = ChildProcess::spawn(args, &error);
    ASSERT_TRUE(server_.valid()) << error;
    std::optional<Endpoint> main = address_in(server_.wait_for_stderr("listening on ", 10'000ms));
    std::optional<Endpoint> metrics = address_in(server_.wait_for_stderr("metrics: listening on ", 10'000ms));
    ASSERT_TRUE(main && metrics) << "the server did not start:\n" << server_.stderr_text();
    endpoint_ = *main;
    metrics_ = *metrics;
  }

  // A `ringlet echo` on epoll for the proxy to relay to; its address as text.
  std::string start_echo_backend() {
    backend_ = ChildProcess::spawn({RINGLET_BINARY, "echo", "--backend", "epoll", "--listen", "127.0.0.1:0",
                                    "--threads", "1", "--no-pin"});
    std::optional<std::string> line = backend_.wait_for_stderr("listening on ", 10'000ms);
    EXPECT_TRUE(line.has_value()) << backend_.stderr_text();
    if (!line) return "";
    std::size_t begin = line->find("listening on ") + 13;
    return line->substr(begin, line->find(" (", begin) - begin);
  }

  // Sends `request` on a new connection and reads until `reply_bytes` came back; the connection stays open.
  std::string exchange(Fd& fd, const std::string& request, std::size_t reply_bytes) {
    Peer p;
    p.fd = std::move(fd);
    p.out = request;
    p.expect = reply_bytes;
    echo::drive_one(p, 10s);
    fd = std::move(p.fd);
    return p.in;
  }

  // Scrapes until `series` has `value` (connections close asynchronously) or 10 s pass; the last page.
  std::string scrape_until(const std::string& series, double value) {
    std::string page;
    for (auto until = Clock::now() + 10s; Clock::now() < until; std::this_thread::sleep_for(10ms)) {
      page = scrape(metrics_);
      if (value_of(page, series) == value) break;
    }
    return page;
  }

  ChildProcess server_;
  ChildProcess backend_;
  Endpoint endpoint_;
  Endpoint metrics_;
};

TEST_P(MetricsTest, the_endpoint_answers_get_and_head_on_metrics_404_elsewhere_and_keeps_the_connection_alive) {
  start("echo", {"--threads", "1"});
  Fd fd = echo::connect_now(metrics_);
  ASSERT_TRUE(fd.valid());
  // Two scrapes on one connection: the second request after the first reply.
  for (int i = 0; i < 2; ++i) {
    Peer p;
    p.fd = std::move(fd);
    p.out = "GET /metrics?x=1 HTTP/1.1\r\nHost: t\r\n\r\n";
    p.expect = 1;
    echo::drive_one(p, 10s);
    // Read until the whole body (Content-Length) is in.
    for (auto until = Clock::now() + 10s; Clock::now() < until;) {
      std::size_t head_end = p.in.find("\r\n\r\n");
      std::size_t cl = p.in.find("Content-Length: ");
      if (head_end != std::string::npos && cl != std::string::npos &&
          p.in.size() >= head_end + 4 + std::stoul(p.in.substr(cl + 16))) {
        break;
      }
      p.expect = p.in.size() + 1;
      echo::drive_one(p, 10s);
    }
    EXPECT_EQ(p.in.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << p.in;
    EXPECT_EQ(p.in.find("Connection: close"), std::string::npos) << p.in;
    EXPECT_NE(p.in.find("# TYPE ringlet_connections_accepted_total counter\n"), std::string::npos) << p.in;
    fd = std::move(p.fd);
  }
  std::string head = http_exchange(metrics_, "HEAD /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << head;
  EXPECT_EQ(head.size(), head.find("\r\n\r\n") + 4) << "HEAD got a body:\n" << head;
  std::string missing = http_exchange(metrics_, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(missing.rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << missing;
  std::string post = http_exchange(metrics_, "DELETE /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(post.rfind("HTTP/1.1 405 ", 0), 0u) << post;
  std::string bad = http_exchange(metrics_, "GET /metrics HTTP/1.1\r\n\r\n");  // no Host
  EXPECT_EQ(bad.rfind("HTTP/1.1 400 ", 0), 0u) << bad;
}

TEST_P(MetricsTest, echo_counts_connections_and_bytes_summed_over_two_shards) {
  start("echo", {"--threads", "2"});
  const std::string data = echo::pattern(10'000, 7);
  for (int i = 0; i < 3; ++i) {
    Peer p = echo::echo_once(endpoint_, data, /*half_close=*/true);
    ASSERT_EQ(p.in, data);
  }
  std::string page = scrape_until("ringlet_connections_open", 0);
  EXPECT_EQ(value_of(page, "ringlet_shards"), 2);
  EXPECT_EQ(value_of(page, "ringlet_connections_accepted_total"), 3) << page;  // the endpoint's own not counted
  EXPECT_EQ(value_of(page, "ringlet_connections_refused_total"), 0);
  EXPECT_EQ(value_of(page, "ringlet_connections_open"), 0);
  // Bytes count every stream of the process: the echoed data plus the scrapes, so at least the data.
  EXPECT_GE(value_of(page, "ringlet_bytes_received_total"), 3 * 10'000);
  EXPECT_GE(value_of(page, "ringlet_bytes_sent_total"), 3 * 10'000);
  EXPECT_GT(value_of(page, "ringlet_loop_iterations_total"), 0);
  EXPECT_GE(value_of(page, "ringlet_loop_kernel_wait_seconds_total"), 0);
  EXPECT_GE(value_of(page, "ringlet_buffer_pool_buffers_in_use"), 0);
}

TEST_P(MetricsTest, echo_counts_connections_refused_over_the_limit) {
  start("echo", {"--threads", "1", "--max-conns", "1"});
  Fd held = echo::connect_now(endpoint_);
  ASSERT_TRUE(held.valid());
  ASSERT_EQ(exchange(held, "x", 1), "x");  // served: it holds the only place
  Fd refused = echo::connect_now(endpoint_);
  ASSERT_TRUE(refused.valid());
  EXPECT_TRUE(echo::closed_by_server_within(refused.get(), 10s));
  std::string page = scrape(metrics_);
  EXPECT_EQ(value_of(page, "ringlet_connections_refused_total"), 1) << page;
  EXPECT_EQ(value_of(page, "ringlet_connections_accepted_total"), 1);
  EXPECT_EQ(value_of(page, "ringlet_connections_open"), 1);
}

TEST_P(MetricsTest, cache_counts_hits_misses_items_and_its_memory_limit_over_two_shards) {
  start("cache", {"--threads", "2", "--memory", "64"});
  Fd fd = echo::connect_now(endpoint_);
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(exchange(fd, "set k1 0 0 2\r\nv1\r\nset k2 0 0 2\r\nv2\r\n", 16), "STORED\r\nSTORED\r\n");
  const std::string hit = "VALUE k1 0 2\r\nv1\r\nEND\r\n";
  for (int i = 0; i < 3; ++i) ASSERT_EQ(exchange(fd, "get k1\r\n", hit.size()), hit);
  for (int i = 0; i < 2; ++i) ASSERT_EQ(exchange(fd, "get nope\r\n", 5), "END\r\n");
  ASSERT_EQ(exchange(fd, "delete k2\r\n", 9), "DELETED\r\n");
  ASSERT_EQ(exchange(fd, "delete k2\r\n", 11), "NOT_FOUND\r\n");
  std::string page = scrape(metrics_);
  EXPECT_EQ(value_of(page, "ringlet_cache_hits_total{command=\"get\"}"), 3) << page;
  EXPECT_EQ(value_of(page, "ringlet_cache_misses_total{command=\"get\"}"), 2);
  EXPECT_EQ(value_of(page, "ringlet_cache_hits_total{command=\"delete\"}"), 1);
  EXPECT_EQ(value_of(page, "ringlet_cache_misses_total{command=\"delete\"}"), 1);
  EXPECT_EQ(value_of(page, "ringlet_cache_commands_total{command=\"set\"}"), 2);
  EXPECT_EQ(value_of(page, "ringlet_cache_commands_total{command=\"get\"}"), 5);
  EXPECT_EQ(value_of(page, "ringlet_cache_items"), 1);
  EXPECT_EQ(value_of(page, "ringlet_cache_items_stored_total"), 2);
  EXPECT_GT(value_of(page, "ringlet_cache_item_bytes"), 0);
  EXPECT_EQ(value_of(page, "ringlet_cache_evictions_total"), 0);
  EXPECT_EQ(value_of(page, "ringlet_cache_expirations_total"), 0);
  EXPECT_GT(value_of(page, "ringlet_cache_memory_limit_bytes"), 32.0 * 1024 * 1024);
  EXPECT_LE(value_of(page, "ringlet_cache_memory_limit_bytes"), 64.0 * 1024 * 1024);
  EXPECT_EQ(value_of(page, "ringlet_connections_open"), 1);
  // One request batch per exchange (each waited for its reply), recorded before the reply left; more traffic, more.
  const std::string batches = "ringlet_cache_request_batch_duration_seconds_count";
  EXPECT_EQ(value_of(page, batches), 8);
  EXPECT_EQ(value_of(page, "ringlet_cache_request_batch_duration_seconds_bucket{le=\"+Inf\"}"), 8);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(exchange(fd, "get k1\r\n", hit.size()), hit);
  EXPECT_EQ(value_of(scrape(metrics_), batches), 11);
}

TEST_P(MetricsTest, queue_reports_jobs_by_tube_and_state_and_its_binlog_syncs) {
  start("queue", {"--binlog", temp_dir("queue-" + GetParam()), "--fsync", "always"});
  Fd fd = echo::connect_now(endpoint_);
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(exchange(fd, "use emails\r\n", 14), "USING emails\r\n");
  ASSERT_EQ(exchange(fd, "put 0 0 60 2\r\nhi\r\n", 12), "INSERTED 1\r\n");
  ASSERT_EQ(exchange(fd, "put 0 0 60 2\r\nho\r\n", 12), "INSERTED 2\r\n");
  ASSERT_EQ(exchange(fd, "watch emails\r\n", 12), "WATCHING 2\r\n");
  ASSERT_EQ(exchange(fd, "reserve\r\n", 18), "RESERVED 1 2\r\nhi\r\n");
  std::string page = scrape(metrics_);
  EXPECT_EQ(value_of(page, "ringlet_queue_jobs{tube=\"emails\",state=\"ready\"}"), 1) << page;
  EXPECT_EQ(value_of(page, "ringlet_queue_jobs{tube=\"emails\",state=\"reserved\"}"), 1);
  EXPECT_EQ(value_of(page, "ringlet_queue_jobs{tube=\"emails\",state=\"buried\"}"), 0);
  EXPECT_EQ(value_of(page, "ringlet_queue_jobs{tube=\"default\",state=\"ready\"}"), 0);
  EXPECT_EQ(value_of(page, "ringlet_queue_commands_total{command=\"put\"}"), 2);
  EXPECT_EQ(value_of(page, "ringlet_queue_jobs_created_total"), 2);
  const double fsyncs = value_of(page, "ringlet_queue_binlog_fsyncs_total");
  EXPECT_GE(fsyncs, 2);  // --fsync always: each put waited for one (the reserve's record may add another)
  EXPECT_EQ(value_of(page, "ringlet_queue_binlog_fsync_duration_seconds_count"), fsyncs);
  EXPECT_GT(value_of(page, "ringlet_queue_binlog_live_bytes"), 0);
  EXPECT_GE(value_of(page, "ringlet_queue_binlog_dead_bytes"), 0);
  // One request batch per exchange; a reserve that waits ends its batch, and its reply makes another.
  const std::string batches = "ringlet_queue_request_batch_duration_seconds_count";
  EXPECT_EQ(value_of(page, batches), 5);
  Fd worker = echo::connect_now(endpoint_);
  ASSERT_TRUE(worker.valid());
  ASSERT_EQ(exchange(worker, "watch later\r\n", 12), "WATCHING 2\r\n");
  ASSERT_EQ(exchange(worker, "reserve-with-timeout 1\r\n", 11), "TIMED_OUT\r\n");  // waited its second
  EXPECT_EQ(value_of(scrape(metrics_), batches), 8);  // watch; the reserve until it waited; its reply
}

// Issue 11: with --fsync always the commands pipelined on one connection share syncs (the next one runs while the
// previous one's record waits for the disk), and their replies still come back in order, each after its sync.
TEST_P(MetricsTest, queue_pipelined_writes_on_one_connection_share_fsyncs_and_reply_in_order) {
  start("queue", {"--binlog", temp_dir("queue-pipeline-" + GetParam()), "--fsync", "always", "--threads", "1"});
  std::string request;
  std::string expected;
  for (int id = 1; id <= 64; ++id) {
    request += "put 0 0 60 1\r\nx\r\n";
    expected += "INSERTED " + std::to_string(id) + "\r\n";
  }
  request += "reserve\r\ndelete 1\r\nbogus\r\n";
  expected += "RESERVED 1 1\r\nx\r\nDELETED\r\nUNKNOWN_COMMAND\r\n";
  Fd fd = echo::connect_now(endpoint_);
  ASSERT_TRUE(fd.valid());
  EXPECT_EQ(exchange(fd, request, expected.size()), expected);
  const std::string page = scrape(metrics_);
  EXPECT_EQ(value_of(page, "ringlet_queue_binlog_records_written_total"), 65) << page;
  // One sync per turn's budget of 16 answers (5 here), not one per record; the bound leaves room for a receive
  // that the kernel splits.
  const double fsyncs = value_of(page, "ringlet_queue_binlog_fsyncs_total");
  EXPECT_GE(fsyncs, 1);
  EXPECT_LE(fsyncs, 32);
}

// The same over two shards: a connection on shard 1 settles its held replies with one message to the core.
TEST_P(MetricsTest, queue_pipelined_replies_come_back_in_order_from_either_shard) {
  start("queue", {"--binlog", temp_dir("queue-pipeline2-" + GetParam()), "--fsync", "always", "--threads", "2"});
  std::vector<Fd> conns;
  for (int i = 0; i < 4; ++i) {
    conns.push_back(echo::connect_now(endpoint_));
    ASSERT_TRUE(conns.back().valid());
  }
  int next_id = 1;
  for (Fd& fd : conns) {
    std::string request;
    std::string expected;
    for (int i = 0; i < 32; ++i, ++next_id) {
      request += "put 0 0 60 1\r\nx\r\n";
      expected += "INSERTED " + std::to_string(next_id) + "\r\n";
    }
    request += "delete " + std::to_string(next_id - 1) + "\r\nbogus\r\npeek " + std::to_string(next_id - 1) + "\r\n";
    expected += "DELETED\r\nUNKNOWN_COMMAND\r\nNOT_FOUND\r\n";
    EXPECT_EQ(exchange(fd, request, expected.size()), expected);
  }
  EXPECT_EQ(value_of(scrape(metrics_), "ringlet_queue_binlog_records_written_total"), 4 * 33);
}

TEST_P(MetricsTest, http_counts_responses_by_status_class_with_their_latency) {
  const std::string root = temp_dir("http-" + GetParam());
  std::ofstream(root + "/a.txt") << "hello\n";
  start("http", {"--threads", "2", "--root", root});
  for (int i = 0; i < 2; ++i) {
    std::string ok = http_exchange(endpoint_, "GET /a.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    ASSERT_EQ(ok.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << ok;
  }
  std::string missing = http_exchange(endpoint_, "GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  ASSERT_EQ(missing.rfind("HTTP/1.1 404 ", 0), 0u) << missing;
  std::string bad = http_exchange(endpoint_, "GET /a.txt HTTP/1.1\r\n\r\n");  // no Host
  ASSERT_EQ(bad.rfind("HTTP/1.1 400 ", 0), 0u) << bad;
  std::string page = scrape(metrics_);
  EXPECT_EQ(value_of(page, "ringlet_http_responses_total{code=\"2xx\"}"), 2) << page;
  EXPECT_EQ(value_of(page, "ringlet_http_responses_total{code=\"4xx\"}"), 2);
  EXPECT_EQ(value_of(page, "ringlet_http_responses_total{code=\"5xx\"}"), 0);
  EXPECT_EQ(value_of(page, "ringlet_http_requests_total"), 3);  // the malformed one never became a request
  EXPECT_EQ(value_of(page, "ringlet_http_request_duration_seconds_count"), 3);
  EXPECT_EQ(value_of(page, "ringlet_http_request_duration_seconds_bucket{le=\"+Inf\"}"), 3);
}

TEST_P(MetricsTest, proxy_reports_each_backend_state_connections_and_bytes) {
  const std::string backend = start_echo_backend();
  ASSERT_FALSE(backend.empty());
  start("proxy", {"--threads", "1", "--backend", backend, "--health-interval", "0"});
  const std::string data = echo::pattern(5'000, 3);
  Peer p = echo::echo_once(endpoint_, data, /*half_close=*/true);
  ASSERT_EQ(p.in, data);
  const std::string b = "{backend=\"" + backend + "\"}";
  std::string page = scrape_until("ringlet_proxy_backend_connections_open" + b, 0);
  EXPECT_EQ(value_of(page, "ringlet_proxy_backend_up" + b), 1) << page;
  EXPECT_EQ(value_of(page, "ringlet_proxy_backend_connections_total" + b), 1);
  EXPECT_EQ(value_of(page, "ringlet_proxy_backend_sent_bytes_total" + b), 5'000);
  EXPECT_EQ(value_of(page, "ringlet_proxy_backend_received_bytes_total" + b), 5'000);
  EXPECT_EQ(value_of(page, "ringlet_proxy_backend_failures_total{backend=\"" + backend + "\",kind=\"connect\"}"), 0);
  EXPECT_EQ(value_of(page, "ringlet_proxy_no_backend_total"), 0);
}

// A port on 127.0.0.1 that nothing listens on: bound, read and closed again (connects to it are refused).
std::string refused_address() {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return "";
  }
  return "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
}

// ringlet_proxy_backend_up is a state an alert compares with 1: two shards that both see a backend up make it 1, not
// 2 (#14); the per-shard count is ringlet_proxy_backend_up_shards. The down backend refuses every probe, so each
// shard marks it down after ProxyServer::kFall (2) of them.
TEST_P(MetricsTest, proxy_backend_up_is_1_for_a_live_backend_and_0_for_a_dead_one_over_two_shards) {
  const std::string live = start_echo_backend();
  const std::string dead = refused_address();
  ASSERT_FALSE(live.empty() || dead.empty());
  start("proxy", {"--threads", "2", "--backend", live, "--backend", dead, "--health-interval", "0.05"});
  const std::string l = "{backend=\"" + live + "\"}";
  const std::string d = "{backend=\"" + dead + "\"}";
  std::string page = scrape_until("ringlet_proxy_backend_up_shards" + d, 0);
  EXPECT_EQ(value_of(page, "ringlet_shards"), 2);
  EXPECT_EQ(value_of(page, "ringlet_proxy_backend_up" + d), 0) << page;
  EXPECT_EQ(value_of(page, "ringlet_proxy_backend_up_shards" + d), 0);
  EXPECT_GE(value_of(page, "ringlet_proxy_backend_failures_total{backend=\"" + dead + "\",kind=\"check\"}"),
            2 * 2);  // each shard: ProxyServer::kFall failed probes at least
  EXPECT_EQ(value_of(page, "ringlet_proxy_backend_up" + l), 1);
  EXPECT_EQ(value_of(page, "ringlet_proxy_backend_up_shards" + l), 2);
  // A client is relayed to the live one.
  const std::string data = echo::pattern(1'000, 5);
  Peer p = echo::echo_once(endpoint_, data, /*half_close=*/true);
  EXPECT_EQ(p.in, data);
}

// Every server's page, after some traffic, as Prometheus's own checker reads it (lint included).
TEST_P(MetricsTest, every_server_page_passes_promtool_check_metrics) {
  if (::access("/usr/bin/promtool", X_OK) != 0) GTEST_SKIP() << "promtool is not installed (Debian: prometheus)";
  const std::string dir = temp_dir("promtool-" + GetParam());
  std::ofstream(dir + "/a.txt") << "hello\n";
  struct Case {
    std::string server;
    std::vector<std::string> extra;
    std::string request;  // sent, then a half-close: the server answers and closes
  };
  const std::vector<Case> cases = {
      {"echo", {"--threads", "2"}, "hello"},
      {"http", {"--threads", "2", "--root", dir}, "GET /a.txt HTTP/1.1\r\nHost: t\r\n\r\n"},
      {"cache", {"--threads", "2"}, "set a 0 0 1\r\nx\r\nget a\r\nget b\r\n"},
      {"queue", {"--binlog", dir}, "use t-1;x\r\nput 0 0 60 1\r\nx\r\n"},
      {"proxy", {"--threads", "1", "--backend", "127.0.0.1:9", "--health-interval", "0"}, "x"}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.server);
    start(c.server, c.extra);
    Peer p;
    p.fd = echo::connect_now(endpoint_);
    p.out = c.request;
    p.shut_wr_after_send = true;
    p.wait_eof = true;
    ASSERT_TRUE(p.fd.valid());
    EXPECT_TRUE(echo::drive_one(p, 10s)) << "no close after the request";
    std::string page = scrape(metrics_);
    ASSERT_FALSE(page.empty());
    const std::string file = dir + "/" + c.server + ".prom";
    const std::string out = file + ".out";
    std::ofstream(file) << page;
    int rc = std::system(("/usr/bin/promtool check metrics < " + file + " > " + out + " 2>&1").c_str());
    std::ifstream in(out);
    std::stringstream said;
    said << in.rdbuf();
    EXPECT_EQ(rc, 0) << said.str() << "\n" << page;
    EXPECT_EQ(said.str(), "") << "promtool has remarks";
    server_.send_signal(SIGTERM);
    std::optional<ExitStatus> status = server_.wait_for_exit(30'000ms);
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(status->success()) << status->describe() << "\n" << server_.stderr_text();
    echo::expect_no_sanitizer_report(server_.stderr_text());
    server_.kill_and_reap();
  }
}

// A load of echo connections on two shards while /metrics is scraped over and over: every reply stays exact and
// no counter ever goes down.
TEST_P(MetricsTest, scraping_during_a_load_leaves_its_replies_exact_and_counters_only_grow) {
  start("echo", {"--threads", "2"});
  constexpr int kConnections = 16;
  constexpr int kRounds = 20;
  std::atomic<bool> load_done{false};
  std::string load_failure;
  std::thread load([&] {
    for (int round = 0; round < kRounds && load_failure.empty(); ++round) {
      std::vector<Peer> peers(kConnections);
      for (int i = 0; i < kConnections; ++i) {
        peers[i].fd = echo::connect_now(endpoint_);
        peers[i].out = echo::pattern(32 * 1024, static_cast<std::uint64_t>(round * kConnections + i));
        peers[i].expect = peers[i].out.size();
        peers[i].shut_wr_after_send = true;
        peers[i].wait_eof = true;
      }
      if (!echo::drive(peers, 30s)) load_failure = "the load did not finish within 30 s";
      for (const Peer& p : peers) {
        if (p.in != p.out && load_failure.empty()) load_failure = "a reply differs: " + echo::first_difference(p.out, p.in);
      }
    }
    load_done = true;
  });
  std::map<std::string, double> last;
  int scrapes = 0;
  const std::vector<std::string> growing = {"ringlet_connections_accepted_total", "ringlet_bytes_received_total",
                                            "ringlet_bytes_sent_total", "ringlet_loop_iterations_total",
                                            "ringlet_loop_kernel_wait_seconds_total",
                                            "ringlet_loop_tasks_resumed_total", "ringlet_backend_completions_total"};
  while (!load_done || scrapes < 3) {
    std::map<std::string, double> now = samples_of(scrape(metrics_));
    ++scrapes;
    for (const std::string& name : growing) {
      ASSERT_TRUE(now.count(name)) << name;
      if (last.count(name)) {
        EXPECT_GE(now[name], last[name]) << name << " went down";
      }
    }
    last = std::move(now);
    if (HasFailure()) break;
  }
  load.join();
  EXPECT_EQ(load_failure, "");
  EXPECT_GE(scrapes, 3);
  std::string page = scrape_until("ringlet_connections_open", 0);
  EXPECT_EQ(value_of(page, "ringlet_connections_accepted_total"), kConnections * kRounds);
  EXPECT_GE(value_of(page, "ringlet_bytes_received_total"), kConnections * kRounds * 32.0 * 1024);
}

INSTANTIATE_TEST_SUITE_P(Backends, MetricsTest, ::testing::Values(std::string("uring"), std::string("epoll")),
                         echo::backend_name);

}  // namespace
}  // namespace ringlet::testing
