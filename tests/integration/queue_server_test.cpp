// Black-box tests of `ringlet queue`: the real binary on both backends, exact bytes on the wire (beanstalkd's
// replies, byte for byte), waits and wake-ups across shards, garbage input, drain mode, --allow, 10,000
// connections, and the crash test: kill -9 at random moments while a client puts, reserves and deletes, then
// every acknowledged put must be back after the restart and no acknowledged delete may come back.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <random>
#include <set>

#include "echo_harness.hpp"

namespace ringlet::testing::echo {
namespace {

class QueueServerTest : public EchoServerTest {
 protected:
  // Starts `ringlet queue --backend <param> --listen 127.0.0.1:0 extra...`.
  void start_queue(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {RINGLET_BINARY, "queue", "--backend", GetParam(), "--listen", "127.0.0.1:0",
                                     "--no-pin"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::string error;
    server_ = ChildProcess::spawn(args, &error);
    ASSERT_TRUE(server_.valid()) << error;
    std::optional<Endpoint> e = wait_for_listening(server_, 20'000ms);
    ASSERT_TRUE(e.has_value()) << "the server did not start:\n" << server_.stderr_text();
    endpoint_ = *e;
    // The second shard (if any) joins the port after the first: wait for the start-up summary.
    ASSERT_TRUE(server_.wait_for_stderr("shard(s), accept mode", 20'000ms).has_value());
  }
};

// Sends `out` and returns what came back once `expect` bytes arrived (or the deadline passed).
std::string talk(Fd& fd, const std::string& out, std::size_t expect, Clock::duration timeout = 10s) {
  Peer p;
  p.fd = std::move(fd);
  p.out = out;
  p.expect = expect;
  drive_one(p, timeout);
  fd = std::move(p.fd);
  return p.in;
}

// Sends `out` and expects exactly `reply` back.
void expect_reply(Fd& fd, const std::string& out, const std::string& reply) {
  std::string got = talk(fd, out, reply.size());
  EXPECT_EQ(got, reply) << "after sending " << out;
}

// One reply line (and the body it announces for RESERVED, FOUND and OK), read with a deadline.
std::string read_reply(Fd& fd, Clock::duration timeout = 10s) {
  std::string in;
  auto deadline = Clock::now() + timeout;
  std::size_t need = 0;
  for (;;) {
    if (need == 0) {
      std::size_t eol = in.find("\r\n");
      if (eol != std::string::npos) {
        std::string line = in.substr(0, eol);
        need = eol + 2;
        std::size_t sp = line.rfind(' ');
        if (line.rfind("RESERVED ", 0) == 0 || line.rfind("FOUND ", 0) == 0 || line.rfind("OK ", 0) == 0) {
          need += std::stoul(line.substr(sp + 1)) + 2;
        }
      }
    }
    if (need != 0 && in.size() >= need) return in;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return in;
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[4096];
    ssize_t r = ::recv(fd.get(), buf, sizeof buf, 0);
    if (r <= 0) return in;
    in.append(buf, static_cast<std::size_t>(r));
  }
}

// Reads until at least `lines` CRLF-ended lines came (replies without a body), or the deadline passed; all of it.
std::string read_lines(Fd& fd, std::size_t lines, Clock::duration timeout = 10s) {
  std::string in;
  auto deadline = Clock::now() + timeout;
  while (static_cast<std::size_t>(std::count(in.begin(), in.end(), '\n')) < lines) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) break;
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[4096];
    ssize_t r = ::recv(fd.get(), buf, sizeof buf, 0);
    if (r <= 0) break;
    in.append(buf, static_cast<std::size_t>(r));
  }
  return in;
}

// The ids of the whole INSERTED lines in `replies`, in order (a line cut short is not an acknowledgement yet).
std::vector<std::uint64_t> inserted_ids(const std::string& replies) {
  std::vector<std::uint64_t> ids;
  for (std::size_t at = replies.find("INSERTED "); at != std::string::npos; at = replies.find("INSERTED ", at + 1)) {
    if (replies.find("\r\n", at) == std::string::npos) break;
    ids.push_back(std::stoull(replies.substr(at + 9)));
  }
  return ids;
}

std::string request(Fd& fd, const std::string& out) {
  ::send(fd.get(), out.data(), out.size(), MSG_NOSIGNAL);
  return read_reply(fd);
}

TEST_P(QueueServerTest, every_command_gets_beanstalkds_exact_reply) {
  start_queue();
  Fd c = connect_now(endpoint_);
  ASSERT_TRUE(c.valid());
  expect_reply(c, "put 5 0 60 5\r\nhello\r\n", "INSERTED 1\r\n");
  expect_reply(c, "use jobs\r\n", "USING jobs\r\n");
  expect_reply(c, "list-tube-used\r\n", "USING jobs\r\n");
  expect_reply(c, "put 1 0 60 3\r\nabc\r\n", "INSERTED 2\r\n");
  expect_reply(c, "put 1 100 60 1\r\nd\r\n", "INSERTED 3\r\n");
  expect_reply(c, "peek-ready\r\n", "FOUND 2 3\r\nabc\r\n");
  expect_reply(c, "peek-delayed\r\n", "FOUND 3 1\r\nd\r\n");
  expect_reply(c, "peek-buried\r\n", "NOT_FOUND\r\n");
  expect_reply(c, "peek 1\r\n", "FOUND 1 5\r\nhello\r\n");
  expect_reply(c, "peek 99\r\n", "NOT_FOUND\r\n");
  expect_reply(c, "watch jobs\r\n", "WATCHING 2\r\n");
  expect_reply(c, "list-tubes-watched\r\n", "OK 21\r\n---\n- default\n- jobs\n\r\n");
  expect_reply(c, "list-tubes\r\n", "OK 21\r\n---\n- default\n- jobs\n\r\n");
  expect_reply(c, "reserve\r\n", "RESERVED 2 3\r\nabc\r\n");
  expect_reply(c, "reserve-with-timeout 0\r\n", "RESERVED 1 5\r\nhello\r\n");
  expect_reply(c, "reserve-with-timeout 0\r\n", "TIMED_OUT\r\n");
  expect_reply(c, "touch 2\r\n", "TOUCHED\r\n");
  expect_reply(c, "touch 3\r\n", "NOT_FOUND\r\n");
  expect_reply(c, "release 2 7 0\r\n", "RELEASED\r\n");
  expect_reply(c, "bury 1 9\r\n", "BURIED\r\n");
  expect_reply(c, "bury 1 9\r\n", "NOT_FOUND\r\n");
  expect_reply(c, "use default\r\n", "USING default\r\n");
  expect_reply(c, "peek-buried\r\n", "FOUND 1 5\r\nhello\r\n");
  expect_reply(c, "kick 10\r\n", "KICKED 1\r\n");
  expect_reply(c, "kick-job 3\r\n", "KICKED\r\n");
  expect_reply(c, "kick-job 3\r\n", "NOT_FOUND\r\n");
  expect_reply(c, "reserve-job 3\r\n", "RESERVED 3 1\r\nd\r\n");
  expect_reply(c, "reserve-job 3\r\n", "NOT_FOUND\r\n");
  expect_reply(c, "delete 3\r\n", "DELETED\r\n");
  expect_reply(c, "delete 3\r\n", "NOT_FOUND\r\n");
  expect_reply(c, "ignore jobs\r\n", "WATCHING 1\r\n");
  expect_reply(c, "ignore default\r\n", "NOT_IGNORED\r\n");
  expect_reply(c, "pause-tube jobs 0\r\n", "PAUSED\r\n");
  expect_reply(c, "pause-tube nope 1\r\n", "NOT_FOUND\r\n");
  expect_reply(c, "stats-tube nope\r\n", "NOT_FOUND\r\n");
  expect_reply(c, "stats-job 99\r\n", "NOT_FOUND\r\n");
  std::string job = request(c, "stats-job 2\r\n");
  EXPECT_EQ(job.substr(0, 3), "OK ");
  EXPECT_NE(job.find("\nid: 2\ntube: \"jobs\"\nstate: ready\npri: 7\n"), std::string::npos) << job;
  EXPECT_NE(job.find("\nreserves: 1\ntimeouts: 0\nreleases: 1\nburies: 0\nkicks: 0\n\r\n"), std::string::npos) << job;
  std::string tube = request(c, "stats-tube jobs\r\n");
  EXPECT_NE(tube.find("---\nname: \"jobs\"\ncurrent-jobs-urgent: 1\ncurrent-jobs-ready: 1\n"), std::string::npos)
      << tube;
  std::string stats = request(c, "stats\r\n");
  for (const char* field : {"\ncurrent-jobs-ready: 2\n", "\ncmd-put: 3\n", "\ncurrent-connections: 1\n",
                            "\ncurrent-tubes: 2\n", "\ndraining: false\n", "\nmax-job-size: 65535\n"}) {
    EXPECT_NE(stats.find(field), std::string::npos) << field << " in " << stats;
  }
  // Errors, and the connection goes on after each.
  expect_reply(c, "bogus\r\n", "UNKNOWN_COMMAND\r\n");
  expect_reply(c, "delete x\r\n", "BAD_FORMAT\r\n");
  expect_reply(c, "put 0 0 1 2\r\nabcd\r\n", "EXPECTED_CRLF\r\nUNKNOWN_COMMAND\r\n");
  expect_reply(c, "put 0 0 1 70000\r\n", "JOB_TOO_BIG\r\n");
  expect_reply(c, std::string(70002, 'z'), "");
  expect_reply(c, "use " + std::string(201, 'a') + "\r\n", "BAD_FORMAT\r\n");
  expect_reply(c, "peek-ready\r\n", "FOUND 1 5\r\nhello\r\n");
  // The EXPECTED_CRLF put above used up id 4, as in beanstalkd (it creates the job before reading the body).
  expect_reply(c, "put 0 0 1 1\r\nz\r\n", "INSERTED 5\r\n");
  expect_reply(c, "quit\r\n", "");
  EXPECT_TRUE(closed_by_server_within(c.get(), 10s));
  stop_and_expect_clean_exit();
}

TEST_P(QueueServerTest, waiting_reservers_are_woken_across_shards_in_arrival_order) {
  start_queue({"--threads", "2"});
  // Several connections, so that the kernel's hash puts some on each shard.
  // Arrival order is the order in which reserves reach the queue's shard: each waits before the next is sent.
  std::vector<Fd> workers;
  Fd producer = connect_now(endpoint_);
  for (int i = 0; i < 6; ++i) {
    workers.push_back(connect_now(endpoint_));
    ASSERT_TRUE(workers.back().valid());
    std::string r = "reserve\r\n";
    ::send(workers.back().get(), r.data(), r.size(), MSG_NOSIGNAL);
    auto deadline = Clock::now() + 10s;
    const std::string waiting = "\ncurrent-waiting: " + std::to_string(i + 1) + "\n";
    while (request(producer, "stats\r\n").find(waiting) == std::string::npos) {
      ASSERT_LT(Clock::now(), deadline) << "reserver " << i << " never waited";
      std::this_thread::sleep_for(5ms);
    }
  }
  for (int i = 1; i <= 6; ++i) {
    expect_reply(producer, "put 0 0 60 1\r\n" + std::to_string(i % 10) + "\r\n", "INSERTED " + std::to_string(i) + "\r\n");
  }
  for (int i = 0; i < 6; ++i) {
    std::string got = read_reply(workers[static_cast<std::size_t>(i)]);
    EXPECT_EQ(got, "RESERVED " + std::to_string(i + 1) + " 1\r\n" + std::to_string((i + 1) % 10) + "\r\n");
  }
  // A reservation is given back when its connection closes.
  workers[0].reset();
  auto deadline = Clock::now() + 10s;
  while (request(producer, "stats-job 1\r\n").find("state: ready") == std::string::npos) {
    ASSERT_LT(Clock::now(), deadline) << "job 1 was not released when its worker left";
    std::this_thread::sleep_for(10ms);
  }
  stop_and_expect_clean_exit();
}

TEST_P(QueueServerTest, timeouts_ttr_and_deadline_soon_follow_the_clock) {
  start_queue();
  Fd c = connect_now(endpoint_);
  auto t0 = Clock::now();
  expect_reply(c, "reserve-with-timeout 1\r\n", "TIMED_OUT\r\n");
  EXPECT_GE(Clock::now() - t0, 900ms);
  expect_reply(c, "put 0 0 2 1\r\nx\r\n", "INSERTED 1\r\n");
  expect_reply(c, "reserve\r\n", "RESERVED 1 1\r\nx\r\n");
  // TTR 2 s: a waiting reserve hears DEADLINE_SOON once one second is left.
  expect_reply(c, "reserve\r\n", "DEADLINE_SOON\r\n");
  // Past the TTR the job is ready again and the next reserve gets it back.
  std::this_thread::sleep_for(1200ms);
  expect_reply(c, "reserve-with-timeout 5\r\n", "RESERVED 1 1\r\nx\r\n");
  std::string job = request(c, "stats-job 1\r\n");
  EXPECT_NE(job.find("\ntimeouts: 1\n"), std::string::npos) << job;
  stop_and_expect_clean_exit();
}

TEST_P(QueueServerTest, garbage_input_gets_errors_and_the_server_keeps_serving) {
  start_queue({"--threads", "2"});
  std::mt19937_64 rng(11);
  for (int round = 0; round < 20; ++round) {
    Fd g = connect_now(endpoint_);
    ASSERT_TRUE(g.valid());
    std::string junk(1 + rng() % 5000, '\0');
    for (char& ch : junk) ch = static_cast<char>(rng() % 4 == 0 ? "\r\n \0"[rng() % 4] : rng());
    Peer p;
    p.fd = std::move(g);
    p.out = junk;
    p.shut_wr_after_send = true;
    p.wait_eof = true;
    drive_one(p, 10s);
  }
  Fd c = connect_now(endpoint_);
  expect_reply(c, std::string(300, 'x') + "\r\nput 0 0 1 1\r\nk\r\n", "BAD_FORMAT\r\nINSERTED 1\r\n");
  expect_reply(c, "put 0 0 1 1\r\n", "");
  std::this_thread::sleep_for(20ms);
  expect_reply(c, "k\r\n", "INSERTED 2\r\n");
  expect_running();
  stop_and_expect_clean_exit();
}

TEST_P(QueueServerTest, drain_mode_refuses_puts_and_serves_the_rest) {
  start_queue();
  Fd c = connect_now(endpoint_);
  expect_reply(c, "put 0 0 1 1\r\na\r\n", "INSERTED 1\r\n");
  ASSERT_TRUE(server_.send_signal(SIGUSR1));
  ASSERT_TRUE(server_.wait_for_stderr("drain mode", 10'000ms).has_value());
  expect_reply(c, "put 0 0 1 1\r\nb\r\n", "DRAINING\r\n");
  expect_reply(c, "reserve\r\n", "RESERVED 1 1\r\na\r\n");
  EXPECT_NE(request(c, "stats\r\n").find("\ndraining: true\n"), std::string::npos);
  stop_and_expect_clean_exit();
}

TEST_P(QueueServerTest, allow_closes_connections_from_other_addresses) {
  start_queue({"--allow", "10.0.0.0/8", "--allow", "192.168.1.0/24"});
  Fd c = connect_now(endpoint_);
  ASSERT_TRUE(c.valid());
  EXPECT_TRUE(closed_by_server_within(c.get(), 10s));
  stop_and_expect_clean_exit();
}

TEST_P(QueueServerTest, ten_thousand_connections_each_put_and_reserve_a_job) {
  constexpr int kConnections = 10000;
  if (raise_fd_limit() < kConnections + 200) GTEST_SKIP() << "descriptor limit below " << kConnections;
  start_queue({"--threads", "2", "--max-conns", "20000"});
  std::vector<Peer> peers(kConnections);
  for (int i = 0; i < kConnections; ++i) {
    Peer& p = peers[static_cast<std::size_t>(i)];
    p.fd = connect_start(endpoint_);
    ASSERT_TRUE(p.fd.valid());
    p.out = "put 0 0 60 1\r\nx\r\nreserve\r\n";
  }
  // Every connection gets both replies; ids may be reserved by any connection, but each id exactly once.
  ASSERT_TRUE(drive(peers, 120s));
  // Collect the replies round-robin (never blocking on one connection) until every one has both.
  auto complete = [](const Peer& p) { return std::count(p.in.begin(), p.in.end(), '\n') >= 3; };
  auto deadline = Clock::now() + 120s;
  for (;;) {
    std::size_t done = 0;
    for (Peer& p : peers) {
      if (!complete(p) && !p.eof && p.error == 0) pump_receive(p);
      done += complete(p) ? 1 : 0;
    }
    if (done == peers.size() || Clock::now() > deadline) break;
    std::this_thread::sleep_for(20ms);
  }
  std::set<std::string> reserved;
  for (Peer& p : peers) {
    ASSERT_EQ(p.in.rfind("INSERTED ", 0), 0u) << "peer " << (&p - peers.data()) << ": '" << p.in << "' eof " << p.eof
                                              << " error " << p.error << " sent " << p.sent;
    std::size_t r = p.in.find("RESERVED ");
    ASSERT_NE(r, std::string::npos) << p.in;
    reserved.insert(p.in.substr(r, p.in.find(' ', r + 9) - r));
  }
  EXPECT_EQ(reserved.size(), static_cast<std::size_t>(kConnections));
  Fd c = connect_now(endpoint_);
  std::string stats = request(c, "stats\r\n");
  EXPECT_NE(stats.find("\ncurrent-connections: " + std::to_string(kConnections + 1) + "\n"), std::string::npos);
  EXPECT_NE(stats.find("\ncurrent-jobs-reserved: " + std::to_string(kConnections) + "\n"), std::string::npos);
  peers.clear();
  stop_and_expect_clean_exit();
}

TEST_P(QueueServerTest, a_waiting_reserve_ends_on_half_close_and_at_a_graceful_stop) {
  start_queue({"--threads", "2", "--shutdown-timeout", "60"});
  // Half-close while waiting: TIMED_OUT (as beanstalkd), then pipelined commands still run.
  Fd half = connect_now(endpoint_);
  std::string r = "reserve\r\nlist-tube-used\r\n";
  ::send(half.get(), r.data(), r.size(), MSG_NOSIGNAL);
  ::shutdown(half.get(), SHUT_WR);
  const std::string replies = "TIMED_OUT\r\nUSING default\r\n";
  EXPECT_EQ(talk(half, "", replies.size()), replies);
  // Idle workers blocked in reserve do not hold a graceful stop until its (here long) shutdown timeout.
  std::vector<Fd> workers;
  for (int i = 0; i < 4; ++i) {
    workers.push_back(connect_now(endpoint_));
    std::string w = "reserve\r\n";
    ::send(workers.back().get(), w.data(), w.size(), MSG_NOSIGNAL);
  }
  Fd probe = connect_now(endpoint_);
  auto deadline = Clock::now() + 10s;
  while (request(probe, "stats\r\n").find("\ncurrent-waiting: 4\n") == std::string::npos) {
    ASSERT_LT(Clock::now(), deadline);
    std::this_thread::sleep_for(5ms);
  }
  const auto t0 = Clock::now();
  ASSERT_TRUE(server_.send_signal(SIGTERM));
  for (Fd& w : workers) {
    EXPECT_EQ(read_reply(w), "TIMED_OUT\r\n");
    EXPECT_TRUE(closed_by_server_within(w.get(), 30s));
  }
  auto status = server_.wait_for_exit(30'000ms);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->success()) << status->describe();
  EXPECT_LT(Clock::now() - t0, 30s) << "the stop waited for the shutdown timeout";
}

TEST_P(QueueServerTest, every_listen_address_serves_the_same_queue) {
  char tmpl[] = "/tmp/ringlet-queue-sock-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string path = std::string(tmpl) + "/q.sock";
  start_queue({"--threads", "2", "--listen", "unix:" + path});
  Fd tcp = connect_now(endpoint_);
  expect_reply(tcp, "put 0 0 60 3\r\ntcp\r\n", "INSERTED 1\r\n");
  std::optional<Endpoint> unix_endpoint = parse_endpoint("unix:" + path);
  ASSERT_TRUE(unix_endpoint.has_value());
  Fd local = connect_now(*unix_endpoint);
  ASSERT_TRUE(local.valid());
  expect_reply(local, "reserve\r\n", "RESERVED 1 3\r\ntcp\r\n");
  stop_and_expect_clean_exit();
  std::system(("rm -rf '" + std::string(tmpl) + "'").c_str());
}

TEST_P(QueueServerTest, ruby_beaneater_runs_its_common_operations) {
  if (::access("/usr/bin/ruby", X_OK) != 0) GTEST_SKIP() << "ruby is not installed (scripts/install-deps.sh)";
  start_queue({"--threads", "2"});
  std::string error;
  ChildProcess client = ChildProcess::spawn(
      {"/usr/bin/ruby", RINGLET_SOURCE_DIR "/tests/integration/queue_beaneater.rb", endpoint_.text}, &error);
  ASSERT_TRUE(client.valid()) << error;
  auto status = client.wait_for_exit(60'000ms);
  client.kill_and_reap();
  ASSERT_TRUE(status.has_value()) << "the beaneater client hung";
  if (client.stderr_text().find("cannot load such file") != std::string::npos) GTEST_SKIP() << "no ruby-beaneater";
  EXPECT_TRUE(status->success()) << client.stderr_text();
  EXPECT_NE(client.stdout_text().find("beaneater: ok"), std::string::npos) << client.stdout_text();
  stop_and_expect_clean_exit();
}

// ---- TLS -------------------------------------------------------------------------------------------------------

// Runs `command` with /bin/sh (killed after `timeout`).
Finished run_shell(const std::string& command, Clock::duration timeout = 30s) {
  return run_command({"/bin/sh", "-c", command}, std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
}

// Certificates made at test time with the openssl command (no key is committed): a CA, a server certificate for
// localhost and 127.0.0.1 and a client certificate it signed, and a client certificate from a CA nobody trusts.
class QueueTlsTest : public QueueServerTest {
 protected:
  void SetUp() override {
    QueueServerTest::SetUp();
    if (IsSkipped()) return;
    if (::access("/usr/bin/openssl", X_OK) != 0) GTEST_SKIP() << "openssl is not installed (scripts/install-deps.sh)";
    char tmpl[] = "/tmp/ringlet-queue-tls-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    const std::string req = "/usr/bin/openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 ";
    const std::string leaf = " -addext basicConstraints=CA:FALSE -addext subjectAltName=DNS:localhost,IP:127.0.0.1";
    Finished made = run_shell("set -e; cd '" + dir_ + "'; " +
                              req + "-keyout ca.key -out ca.pem -subj '/CN=ringlet test CA'; " +
                              req + "-keyout server.key -out server.pem -subj /CN=localhost -CA ca.pem -CAkey ca.key" +
                              leaf + "; " +
                              req + "-keyout client.key -out client.pem -subj /CN=worker-1 -CA ca.pem -CAkey ca.key" +
                              leaf + "; " +
                              req + "-keyout rogue-ca.key -out rogue-ca.pem -subj '/CN=rogue CA'; " +
                              req + "-keyout rogue.key -out rogue.pem -subj /CN=intruder -CA rogue-ca.pem " +
                              "-CAkey rogue-ca.key" + leaf);
    ASSERT_TRUE(made.status.has_value() && made.status->success()) << made.err;
  }
  void TearDown() override {
    QueueServerTest::TearDown();
    if (!dir_.empty()) std::system(("rm -rf '" + dir_ + "'").c_str());
  }
  std::string file(const char* name) const { return dir_ + "/" + name; }
  std::vector<std::string> tls_options() const {
    return {"--tls-cert", file("server.pem"), "--tls-key", file("server.key")};
  }

  // openssl s_client sends `input` (then waits: the server's close after quit ends it) and returns its stdout.
  Finished s_client(const std::string& input) {
    {
      std::ofstream(file("in.txt"), std::ios::binary) << input;
    }
    return run_shell("/usr/bin/openssl s_client -connect " + endpoint_.text +
                     " -quiet -CAfile '" + file("ca.pem") + "' -verify_return_error -servername localhost < '" +
                     file("in.txt") + "'");
  }

  // tests/integration/queue_tls_client.py with Python's ssl module.
  Finished python_client(const std::string& mode, const std::string& cert = {}, const std::string& key = {}) {
    std::string command = "/usr/bin/python3 '" RINGLET_SOURCE_DIR "/tests/integration/queue_tls_client.py' 127.0.0.1 " +
                          endpoint_.text.substr(endpoint_.text.rfind(':') + 1) + " '" + file("ca.pem") + "' " + mode;
    if (!cert.empty()) command += " '" + cert + "' '" + key + "'";
    return run_shell(command);
  }

  std::string dir_;
};

TEST_P(QueueTlsTest, openssl_s_client_puts_reserves_and_deletes_with_exact_bytes) {
  start_queue(tls_options());
  Finished f = s_client("put 0 0 60 5\r\nhello\r\nreserve\r\ndelete 1\r\nquit\r\n");
  ASSERT_TRUE(f.status.has_value()) << "s_client hung";
  EXPECT_EQ(f.out, "INSERTED 1\r\nRESERVED 1 5\r\nhello\r\nDELETED\r\n") << f.err;
  stop_and_expect_clean_exit();
}

TEST_P(QueueTlsTest, a_python_ssl_client_moves_big_jobs_and_clients_without_a_valid_certificate_are_refused) {
  if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "python3 is not installed";
  std::vector<std::string> options = tls_options();
  options.insert(options.end(), {"--tls-client-ca", file("ca.pem"), "--threads", "2"});
  start_queue(options);
  Finished ok = python_client("jobs", file("client.pem"), file("client.key"));
  ASSERT_TRUE(ok.status.has_value()) << "the client hung";
  EXPECT_TRUE(ok.status->success()) << ok.err;
  EXPECT_NE(ok.out.find("tls: ok"), std::string::npos) << ok.out << ok.err;
  for (const auto& [cert, key] : {std::pair<std::string, std::string>{"", ""},
                                  std::pair<std::string, std::string>{file("rogue.pem"), file("rogue.key")}}) {
    Finished refused = python_client("refused", cert, key);
    ASSERT_TRUE(refused.status.has_value()) << "the refused client hung";
    EXPECT_TRUE(refused.status->success()) << refused.err;
    EXPECT_NE(refused.out.find("refused: ok"), std::string::npos) << refused.out << refused.err;
  }
  // The server keeps serving, with the certificate's owner in its debug log only.
  Finished again = python_client("jobs", file("client.pem"), file("client.key"));
  EXPECT_NE(again.out.find("tls: ok"), std::string::npos) << again.out << again.err;
  stop_and_expect_clean_exit();
}

TEST_P(QueueTlsTest, plaintext_garbage_and_cut_hellos_at_a_tls_listener_end_only_their_connection) {
  start_queue(tls_options());
  const std::vector<std::string> inputs = {
      "put 0 0 1 1\r\na\r\n",                                    // a plaintext beanstalk client
      std::string("\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00", 10),  // a handshake record with a bogus hello
      std::string(6000, '\x16'),                                 // a whole record of nonsense (version 0x1616)
      std::string("\x80\x2e\x01\x03\x01", 5) + std::string(43, '\0'),  // an SSLv2-style hello
  };
  // Each is whole, so the verdict comes from OpenSSL at once, not from the handshake timeout.
  for (const std::string& in : inputs) {
    Fd c = connect_now(endpoint_);
    ASSERT_TRUE(c.valid());
    ::send(c.get(), in.data(), in.size(), MSG_NOSIGNAL);
    EXPECT_TRUE(closed_by_server_within(c.get(), 20s)) << "after " << in.size() << " bytes";
  }
  {
    Fd cut = connect_now(endpoint_);  // a hello cut short by a hang-up
    ::send(cut.get(), "\x16\x03\x01\x02\x00\x01", 6, MSG_NOSIGNAL);
  }
  expect_running();
  Finished f = s_client("put 0 0 60 2\r\nok\r\nquit\r\n");
  EXPECT_EQ(f.out, "INSERTED 1\r\n") << f.err;
  stop_and_expect_clean_exit();
}

// Issue 11: a graceful stop closes a connection still in its TLS handshake at once, instead of waiting for the
// handshake's 10 s limit. One shard and one listener: s_client's connection is accepted after the silent one, so
// once s_client has its answer the silent connection is in its handshake. The shutdown timeout is long, so only the
// handshake limit could end the stop otherwise; the bound is generous (the bug is 10 s).
TEST_P(QueueTlsTest, a_graceful_stop_closes_a_connection_that_never_sends_its_hello) {
  std::vector<std::string> options = tls_options();
  options.insert(options.end(), {"--threads", "1", "--shutdown-timeout", "60"});
  start_queue(options);
  Fd silent = connect_now(endpoint_);
  ASSERT_TRUE(silent.valid());
  Finished f = s_client("put 0 0 60 2\r\nok\r\nquit\r\n");
  ASSERT_EQ(f.out, "INSERTED 1\r\n") << f.err;
  const auto t0 = Clock::now();
  ASSERT_TRUE(server_.send_signal(SIGTERM));
  auto status = server_.wait_for_exit(30'000ms);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->success()) << status->describe();
  EXPECT_LT(Clock::now() - t0, 5s) << "the stop waited for the handshake timeout";
  EXPECT_TRUE(closed_by_server_within(silent.get(), 1s));
  const std::string log = server_.stderr_text();
  EXPECT_NE(log.find("stopping: no new connections"), std::string::npos) << log;
  EXPECT_EQ(log.find("stopping: no new connections, 0 open"), std::string::npos) << "the silent client was not there";
}

TEST_P(QueueTlsTest, allow_is_checked_before_the_handshake) {
  std::vector<std::string> options = tls_options();
  options.insert(options.end(), {"--allow", "10.0.0.0/8", "-V"});
  start_queue(options);
  Fd c = connect_now(endpoint_);
  ASSERT_TRUE(c.valid());
  EXPECT_TRUE(server_.wait_for_stderr("refused by --allow", 10'000ms).has_value());
  EXPECT_TRUE(closed_by_server_within(c.get(), 10s));
  EXPECT_EQ(server_.stderr_text().find("TLS handshake"), std::string::npos);
  stop_and_expect_clean_exit();
}

TEST_P(QueueTlsTest, bad_tls_files_stop_the_server_before_it_listens) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"--tls-cert", file("missing.pem"), "--tls-key", file("server.key")}, "--tls-cert " + file("missing.pem")},
      {{"--tls-cert", file("server.pem"), "--tls-key", file("client.key")}, "does not match the certificate"},
      {{"--tls-cert", file("server.key"), "--tls-key", file("server.key")}, "not a PEM certificate"},
      {{"--tls-cert", file("server.pem"), "--tls-key", file("server.key"), "--tls-client-ca", file("nope.pem")},
       "--tls-client-ca " + file("nope.pem")},
      {{"--tls-cert", file("server.pem")}, "--tls-cert and --tls-key go together"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"queue", "--backend", GetParam(), "--listen", "127.0.0.1:0"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    Finished f = run_ringlet(args);
    ASSERT_TRUE(f.status.has_value());
    EXPECT_EQ(f.status->code, 2) << f.err;
    EXPECT_NE(f.err.find(c.says), std::string::npos) << f.err;
    EXPECT_EQ(f.err.find("listening on"), std::string::npos) << f.err;
  }
}

// ---- durability --------------------------------------------------------------------------------------------

class QueueBinlogTest : public QueueServerTest {
 protected:
  void SetUp() override {
    QueueServerTest::SetUp();
    char tmpl[] = "/tmp/ringlet-queue-binlog-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    QueueServerTest::TearDown();
    if (!dir_.empty()) std::system(("rm -rf '" + dir_ + "'").c_str());
  }
  void kill9() {
    server_.send_signal(SIGKILL);
    server_.wait_for_exit(10'000ms);
    server_.kill_and_reap();
    server_ = ChildProcess();
  }
  std::string dir_;
};

TEST_P(QueueBinlogTest, jobs_come_back_in_their_state_after_kill_9) {
  start_queue({"--binlog", dir_, "--fsync", "always"});
  Fd c = connect_now(endpoint_);
  expect_reply(c, "use t\r\n", "USING t\r\n");
  expect_reply(c, "put 3 0 60 1\r\na\r\n", "INSERTED 1\r\n");
  expect_reply(c, "put 4 100 60 1\r\nb\r\n", "INSERTED 2\r\n");
  expect_reply(c, "put 5 0 60 1\r\nc\r\n", "INSERTED 3\r\n");
  expect_reply(c, "put 6 0 60 1\r\nd\r\n", "INSERTED 4\r\n");
  expect_reply(c, "watch t\r\n", "WATCHING 2\r\n");
  expect_reply(c, "reserve\r\n", "RESERVED 1 1\r\na\r\n");
  expect_reply(c, "reserve\r\n", "RESERVED 3 1\r\nc\r\n");
  expect_reply(c, "bury 3 8\r\n", "BURIED\r\n");
  expect_reply(c, "delete 4\r\n", "DELETED\r\n");
  kill9();
  start_queue({"--binlog", dir_, "--fsync", "always"});
  c = connect_now(endpoint_);
  auto state = [&](int id) {
    std::string s = request(c, "stats-job " + std::to_string(id) + "\r\n");
    std::size_t at = s.find("state: ");
    return at == std::string::npos ? s : s.substr(at + 7, s.find('\n', at) - at - 7);
  };
  EXPECT_EQ(state(1), "ready") << "a reservation comes back ready";
  EXPECT_EQ(state(2), "delayed");
  EXPECT_EQ(state(3), "buried");
  EXPECT_EQ(state(4), "NOT_FOUND\r\n");
  expect_reply(c, "put 0 0 1 1\r\ne\r\n", "INSERTED 5\r\n");
  EXPECT_NE(request(c, "stats\r\n").find("\nbinlog-current-index: 2\n"), std::string::npos);
  stop_and_expect_clean_exit();
}

TEST_P(QueueBinlogTest, a_second_server_cannot_take_the_same_directory) {
  start_queue({"--binlog", dir_});
  Finished second = run_ringlet({"queue", "--backend", GetParam(), "--listen", "127.0.0.1:0", "--binlog", dir_}, 20s);
  ASSERT_TRUE(second.status.has_value());
  EXPECT_FALSE(second.status->success());
  EXPECT_NE(second.err.find("in use by another server"), std::string::npos) << second.err;
  stop_and_expect_clean_exit();
}

// The crash test of issue 11: kill -9 at random moments while a client puts, reserves and deletes. With --fsync
// always, every acknowledged put is present after the restart (unless its delete was acknowledged too), and no
// acknowledged delete comes back. 100 cycles in all, 50 on each backend; cycles are short (one shard, a few dozen
// commands) so each half takes seconds (well under a minute under ASan). The random moment is a number of commands
// plus whether the kill lands right after sending a command (its reply unread: unacknowledged) or between
// commands. RINGLET_KILL9_CYCLES=N runs N cycles per backend instead: scripts/test.sh's ASan stage runs a few, since
// each cycle there costs the sanitized server's start-up and the release stage already runs all fifty.
TEST_P(QueueBinlogTest, kill_9_at_random_moments_loses_no_acknowledged_put_and_revives_no_acknowledged_delete) {
  const char* cycles_env = std::getenv("RINGLET_KILL9_CYCLES");
  const int kCycles = cycles_env != nullptr ? std::max(1, std::atoi(cycles_env)) : 50;  // per backend
  std::mt19937_64 rng(20261203);
  std::set<std::uint64_t> live;     // acknowledged puts not acknowledged deleted
  std::set<std::uint64_t> deleted;  // acknowledged deletes
  const auto started = Clock::now();
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    start_queue({"--binlog", dir_, "--fsync", "always", "--binlog-size", "64k", "--threads", "1"});
    if (HasFatalFailure()) return;
    Fd c = connect_now(endpoint_);
    ASSERT_TRUE(c.valid());
    // Everything acknowledged so far is here, nothing deleted came back.
    for (std::uint64_t id : live) {
      std::string r = request(c, "peek " + std::to_string(id) + "\r\n");
      ASSERT_EQ(r.rfind("FOUND " + std::to_string(id) + " ", 0), 0u) << "cycle " << cycle << ": job " << id << ": " << r;
    }
    for (std::uint64_t id : deleted) {
      ASSERT_EQ(request(c, "peek " + std::to_string(id) + "\r\n"), "NOT_FOUND\r\n")
          << "cycle " << cycle << ": deleted job " << id << " came back";
    }
    const int commands = static_cast<int>(rng() % 40);
    for (int i = 0; i < commands; ++i) {
      const unsigned what = static_cast<unsigned>(rng() % 4);
      if (what == 3) {
        // A pipeline of puts in one send: their records share syncs and their replies come back in order.
        const std::size_t n = 2 + rng() % 7;
        std::string out;
        for (std::size_t k = 0; k < n; ++k) out += "put 0 0 60 4\r\njob!\r\n";
        ::send(c.get(), out.data(), out.size(), MSG_NOSIGNAL);
        std::vector<std::uint64_t> ids = inserted_ids(read_lines(c, n));
        ASSERT_EQ(ids.size(), n);
        ASSERT_TRUE(std::is_sorted(ids.begin(), ids.end()));
        live.insert(ids.begin(), ids.end());
      } else if (what == 0 || live.empty()) {
        std::string r = request(c, "put 0 0 60 4\r\njob!\r\n");
        ASSERT_EQ(r.rfind("INSERTED ", 0), 0u) << r;
        live.insert(std::stoull(r.substr(9)));
      } else if (what == 1) {
        std::string r = request(c, "reserve-with-timeout 0\r\n");
        ASSERT_TRUE(r.rfind("RESERVED ", 0) == 0 || r == "TIMED_OUT\r\n") << r;
      } else {
        auto it = live.begin();
        std::advance(it, static_cast<long>(rng() % live.size()));
        const std::uint64_t id = *it;
        std::string r = request(c, "delete " + std::to_string(id) + "\r\n");
        if (r == "DELETED\r\n") {
          live.erase(id);
          deleted.insert(id);
        } else {
          ASSERT_EQ(r, "NOT_FOUND\r\n") << "reserved by an earlier connection of this cycle? " << id;
        }
      }
    }
    // The random moment: sometimes right after sending a command whose reply we never read, sometimes while the
    // replies of a pipeline come back (those that arrived are acknowledged).
    if (rng() % 3 == 0) {
      std::string out;
      for (int k = 0; k < 8; ++k) out += "put 0 0 60 4\r\npipe\r\n";
      ::send(c.get(), out.data(), out.size(), MSG_NOSIGNAL);
      for (std::uint64_t id : inserted_ids(read_lines(c, 1 + rng() % 8))) live.insert(id);
    } else if (rng() % 2 == 0) {
      std::string unacked = rng() % 2 == 0 || live.empty() ? "put 0 0 60 4\r\nlost\r\n"
                                                           : "delete " + std::to_string(*live.begin()) + "\r\n";
      ::send(c.get(), unacked.data(), unacked.size(), MSG_NOSIGNAL);
      if (unacked[0] == 'd') {
        // Unacknowledged: the job may or may not be gone after the restart; stop checking it either way.
        live.erase(live.begin());
      }
    }
    kill9();
    ASSERT_LT(Clock::now() - started, 170s) << "the crash test is far slower than it should be";
  }
  start_queue({"--binlog", dir_, "--fsync", "always", "--binlog-size", "64k", "--threads", "1"});
  Fd c = connect_now(endpoint_);
  for (std::uint64_t id : live) {
    ASSERT_EQ(request(c, "peek " + std::to_string(id) + "\r\n").rfind("FOUND ", 0), 0u) << id;
  }
  stop_and_expect_clean_exit();
}

RINGLET_ECHO_BOTH_BACKENDS(QueueServerTest);
RINGLET_ECHO_BOTH_BACKENDS(QueueBinlogTest);
RINGLET_ECHO_BOTH_BACKENDS(QueueTlsTest);

}  // namespace
}  // namespace ringlet::testing::echo
