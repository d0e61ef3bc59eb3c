// cache_server_test.cpp — `ringlet cache` as a black box, on both backends: exact bytes over real sockets (text and
// meta commands, errors and swallowed data blocks), pipelined and byte-at-a-time input giving the same replies,
// garbage input, two shards, a slow reader of a huge multi-get, 10,000 connections, a Unix socket, several listen
// addresses; and the real clients from Debian: pymemcache (with HashClient over three servers), memccapable's ASCII
// conformance run, memccp/memccat/memcstat, memcslap's load in each mode, and nutcracker (twemproxy) with ketama in
// front of three instances. Expected bytes were checked against memcached 1.6.18.
#include <gtest/gtest.h>

#include <cstdio>
#include <deque>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "echo_harness.hpp"
#include "http_harness.hpp"

namespace ringlet::testing::cache {
namespace {

using namespace std::chrono_literals;
using echo::Clock;
using echo::Endpoint;
using echo::Fd;

struct Server {
  ChildProcess process;
  Endpoint endpoint;
  int port = 0;
};

// Starts `ringlet cache --backend B --listen L extra...` and waits for its "listening on" line.
Server start_cache(const std::string& backend, std::vector<std::string> extra = {},
                   const std::string& listen = "127.0.0.1:0") {
  std::vector<std::string> args = {RINGLET_BINARY, "cache", "--backend", backend};
  if (!listen.empty()) args.insert(args.end(), {"--listen", listen});
  args.insert(args.end(), extra.begin(), extra.end());
  Server s;
  std::string error;
  s.process = ChildProcess::spawn(args, &error);
  EXPECT_TRUE(s.process.valid()) << error;
  std::optional<Endpoint> e = echo::wait_for_listening(s.process);
  EXPECT_TRUE(e.has_value()) << "the server did not start:\n" << s.process.stderr_text();
  if (!e) return s;
  s.endpoint = *e;
  s.port = std::atoi(s.endpoint.text.c_str() + s.endpoint.text.rfind(':') + 1);
  return s;
}

// SIGTERM, a clean exit within the deadline, no sanitizer report.
void stop_cache(Server& s) {
  if (!s.process.valid()) return;
  if (s.process.running()) {
    s.process.send_signal(SIGTERM);
    auto status = s.process.wait_for_exit(10'000ms);
    EXPECT_TRUE(status.has_value()) << "the server did not exit after SIGTERM";
    if (status) {
      EXPECT_TRUE(status->success()) << "server " << status->describe();
    }
  }
  const std::string err = s.process.stderr_text();
  echo::expect_no_sanitizer_report(err);
  if (::testing::Test::HasFailure()) std::printf("---- server stderr ----\n%s----\n", err.c_str());
  s.process.kill_and_reap();
}

class CacheServerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string& reason = echo::backend_unavailable_reason(GetParam());
    if (!reason.empty()) GTEST_SKIP() << "backend " << GetParam() << " unavailable here: " << reason;
  }
  void TearDown() override {
    for (Server& s : servers_) stop_cache(s);
  }
  Server& start(std::vector<std::string> extra = {}, const std::string& listen = "127.0.0.1:0") {
    servers_.push_back(start_cache(GetParam(), std::move(extra), listen));
    return servers_.back();
  }

  // Sends `input` (in writes of at most `chunk` bytes) on a fresh connection to `s` and reads until `expect` bytes
  // came back, the server closed, or 10 s passed.
  std::string converse(const Server& s, const std::string& input, std::size_t expect, std::size_t chunk = 1 << 20,
                       bool* closed = nullptr) {
    echo::Peer p;
    p.fd = echo::connect_now(s.endpoint);
    EXPECT_TRUE(p.fd.valid());
    p.out = input;
    p.max_write = chunk;
    p.expect = expect;
    echo::drive_one(p, 10s);
    if (closed != nullptr) *closed = p.eof || p.error != 0 || echo::closed_by_server_within(p.fd.get(), 2s);
    return p.in;
  }
  std::string exactly(const Server& s, const std::string& input, const std::string& expected) {
    return converse(s, input, expected.size());
  }
  // The same, reading until the replies end with `terminator` (for replies of unknown length).
  std::string converse_until(const Server& s, const std::string& input, std::string_view terminator) {
    echo::Peer p;
    p.fd = echo::connect_now(s.endpoint);
    EXPECT_TRUE(p.fd.valid());
    p.out = input;
    const auto deadline = Clock::now() + 10s;
    while (!p.in.ends_with(terminator) && !p.eof && p.error == 0 && Clock::now() < deadline) {
      p.expect = p.in.size() + 1;
      echo::drive_one(p, deadline - Clock::now());
    }
    return p.in;
  }

  // Every listener of one process serves the same cache: a key set through one is read through each of the others.
  void expect_one_cache_behind(const std::vector<Endpoint>& endpoints, const std::string& key) {
    Server through;
    through.endpoint = endpoints[0];
    const std::string set = "set " + key + " 0 0 2\r\nhi\r\n";
    EXPECT_EQ(exactly(through, set, "STORED\r\n"), "STORED\r\n");
    const std::string value = "VALUE " + key + " 0 2\r\nhi\r\nEND\r\n";
    for (const Endpoint& e : endpoints) {
      through.endpoint = e;
      EXPECT_EQ(exactly(through, "get " + key + "\r\n", value), value) << "through " << e.text;
    }
  }

  std::deque<Server> servers_;  // a deque: start() hands out references that must survive later starts
};

std::string cas_of(const std::string& gets_reply) {
  // "VALUE k f n CAS\r\n..."
  std::size_t eol = gets_reply.find("\r\n");
  std::size_t sp = gets_reply.rfind(' ', eol);
  return gets_reply.substr(sp + 1, eol - sp - 1);
}

TEST_P(CacheServerTest, text_commands_get_memcacheds_exact_replies) {
  Server& s = start();
  const std::string input =
      "set a 5 0 2\r\nhi\r\nget a nope\r\nadd a 0 0 1\r\nx\r\nreplace nope 0 0 1\r\nx\r\n"
      "append a 0 0 1\r\n!\r\nprepend a 0 0 1\r\n<\r\nget a\r\nincr a 1\r\nset n 0 0 3\r\n100\r\ndecr n 95\r\n"
      "get n\r\nincr n 18446744073709551615\r\ntouch a 100\r\ntouch nope 1\r\ndelete a\r\ndelete a\r\n"
      "delete n 0 noreply\r\nflush_all noreply\r\nflush_all 0\r\nverbosity 1\r\nversion\r\nbogus\r\n\r\n"
      "set bad 0 0 1\r\nxyz\r\nincr\r\nget\r\ndelete k 1\r\nmn\r\n";
  const std::string expected =
      "STORED\r\nVALUE a 5 2\r\nhi\r\nEND\r\nNOT_STORED\r\nNOT_STORED\r\nSTORED\r\nSTORED\r\n"
      "VALUE a 5 4\r\n<hi!\r\nEND\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\nSTORED\r\n"
      "5\r\nVALUE n 0 3\r\n5  \r\nEND\r\n4\r\nTOUCHED\r\nNOT_FOUND\r\nDELETED\r\nNOT_FOUND\r\nOK\r\nOK\r\n"
      "VERSION 1.6.18-ringlet-0.1.0\r\nERROR\r\nERROR\r\nCLIENT_ERROR bad data chunk\r\nERROR\r\nERROR\r\nERROR\r\n"
      "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\nMN\r\n";
  EXPECT_EQ(exactly(s, input, expected), expected);
}

TEST_P(CacheServerTest, cas_and_gets_round_trip) {
  Server& s = start();
  std::string first = converse_until(s, "set c 0 0 1\r\na\r\ngets c\r\n", "END\r\n");
  ASSERT_TRUE(first.starts_with("STORED\r\nVALUE c 0 1 ")) << first;
  const std::string cas = cas_of(first.substr(8));
  const std::string expected = "EXISTS\r\nSTORED\r\nEXISTS\r\nNOT_FOUND\r\n";
  EXPECT_EQ(exactly(s, "cas c 0 0 1 999999\r\nb\r\ncas c 0 0 1 " + cas + "\r\nc\r\ncas c 0 0 1 " + cas +
                           "\r\nd\r\ncas nope 0 0 1 1\r\ne\r\n",
                    expected),
            expected);
}

TEST_P(CacheServerTest, meta_commands_get_memcacheds_exact_replies) {
  Server& s = start();
  const std::string input =
      "ms m 2 T0 F7 k O9 q\r\nhi\r\nmg m v k f s t h O1\r\nmg m h\r\nmg miss v q\r\nmg miss k O2\r\n"
      "mg viv N30 s t\r\nmg viv N30 s t\r\nma cnt N0 J10 v t\r\nma cnt MD D3 v\r\nma none\r\nmd m q\r\nmd m\r\n"
      "ms m 1 MR\r\nx\r\nms e 1 E777\r\nz\r\nmg e c\r\nmg m v zz\r\nme nope\r\nmn\r\n";
  const std::string expected =
      "VA 2 km f7 s2 t-1 h0 O1\r\nhi\r\nHD h1\r\nEN kmiss O2\r\nHD s0 t30 W\r\nHD s0 t30 Z\r\nVA 2 t-1\r\n10\r\n"
      "VA 1\r\n7\r\nNF\r\nNF\r\nNS\r\nHD\r\nHD c777\r\nCLIENT_ERROR invalid flag\r\nEN\r\nMN\r\n";
  EXPECT_EQ(exactly(s, input, expected), expected);
}

// An mg answers the run of mg lines after it at once (prefetched lookups, one reply buffer), so a run must answer
// exactly what line-by-line handling does: misses under q, a refused line in the middle, base64 keys, a delete
// between two runs, an mn with extra tokens, runs longer than one batch, a run cut by back-pressure, an over-long
// line after a run (#10).
TEST_P(CacheServerTest, a_run_of_mg_lines_answers_as_each_line_alone_issue_10) {
  Server& s = start({"--output-limit", "4096"});
  const std::string big(3000, 'B');
  std::string input = "ms a 2\r\naa\r\nms b 3 F5\r\nbbb\r\nms big 3000\r\n" + big + "\r\n";
  std::string expected = "HD\r\nHD\r\nHD\r\n";
  input += "mg a v k q\r\nmg nope v q\r\nmg b v f\r\nmg YQ== b v k\r\nmg a zz\r\nmg nope k O2\r\nmg b s\r\n"
           "md a q\r\nmg a v\r\nmn\r\nmg b v\r\nmn extra\r\n";
  expected += "VA 2 ka\r\naa\r\nVA 3 f5\r\nbbb\r\nVA 2 kYQ== b\r\naa\r\nCLIENT_ERROR invalid flag\r\nEN knope O2\r\n"
              "HD s3\r\nEN\r\nMN\r\nVA 3\r\nbbb\r\nMN\r\n";
  for (int i = 0; i < 40; ++i) {
    input += i % 3 == 0 ? "mg big v\r\n" : "mg b k\r\n";
    expected += i % 3 == 0 ? "VA 3000\r\n" + big + "\r\n" : std::string("HD kb\r\n");
  }
  input += "mn\r\n";
  expected += "MN\r\n";
  const std::string whole = converse(s, input, expected.size());
  EXPECT_EQ(whole, expected) << echo::first_difference(expected, whole);
  EXPECT_EQ(converse(s, input, expected.size(), 7), expected);
  EXPECT_EQ(converse(s, input, expected.size(), 1), expected);
  // An over-long line after a run closes the connection once the run's replies are out, as it would alone.
  bool closed = false;
  const std::string reply = converse(s, "mg b v\r\nmg b k\r\nmg " + std::string(3000, 'k') + " v\r\n",
                                     std::string("VA 3\r\nbbb\r\nHD kb\r\n").size() + 1, 1 << 20, &closed);
  EXPECT_EQ(reply, "VA 3\r\nbbb\r\nHD kb\r\n");
  EXPECT_TRUE(closed);
}

TEST_P(CacheServerTest, pipelined_and_byte_at_a_time_input_give_identical_replies) {
  Server& s = start();
  const std::string big(300 * 1024, 'v');
  std::string input = "set big 0 0 " + std::to_string(big.size()) + "\r\n" + big + "\r\nget big nope big\r\n";
  input += "set k 1 0 3\r\nabc\r\nmg k v f\r\nbad command\r\nset x 0 0 2000000\r\n" + std::string(2000000, 'z') +
           "\r\nget x k\r\nms y 2 MZ\r\nzz\r\nmn\r\n";
  const std::string expected_tail =
      "STORED\r\nVA 3 f1\r\nabc\r\nERROR\r\nSERVER_ERROR object too large for cache\r\nVALUE k 1 3\r\nabc\r\nEND\r\n"
      "CLIENT_ERROR invalid mode for ms M token\r\nMN\r\n";
  const std::string value_reply = "VALUE big 0 " + std::to_string(big.size()) + "\r\n" + big + "\r\n";
  const std::string expected = "STORED\r\n" + value_reply + value_reply + "END\r\n" + expected_tail;
  const std::string whole = converse(s, input, expected.size());
  EXPECT_EQ(whole, expected) << echo::first_difference(expected, whole);
  // The same conversation cut into 1-byte writes (the data blocks included) and into odd-sized ones.
  std::string small_input = "set k 1 0 3\r\nabc\r\nmg k v f\r\nbad command\r\nset x 0 0 3000\r\n" +
                            std::string(3000, 'z') + "\r\nget x k\r\nms y 2 MZ\r\nzz\r\nmn\r\n";
  const std::string small_expected =
      "STORED\r\nVA 3 f1\r\nabc\r\nERROR\r\nSTORED\r\nVALUE x 0 3000\r\n" + std::string(3000, 'z') +
      "\r\nVALUE k 1 3\r\nabc\r\nEND\r\nCLIENT_ERROR invalid mode for ms M token\r\nMN\r\n";
  EXPECT_EQ(converse(s, small_input, small_expected.size()), small_expected);
  EXPECT_EQ(converse(s, small_input, small_expected.size(), 1), small_expected);
  EXPECT_EQ(converse(s, small_input, small_expected.size(), 7), small_expected);
}

TEST_P(CacheServerTest, a_line_over_2048_bytes_closes_the_connection_but_a_long_get_line_does_not) {
  Server& s = start();
  bool closed = false;
  const std::string reply = converse(s, "set " + std::string(3000, 'k') + " 0 0 1\r\nx\r\n", 1, 1 << 20, &closed);
  EXPECT_EQ(reply, "");
  EXPECT_TRUE(closed);
  std::string keys;
  for (int i = 0; i < 1000; ++i) keys += " key" + std::to_string(i);
  const std::string expected = "VALUE key7 0 1\r\n7\r\nEND\r\n";
  EXPECT_EQ(exactly(s, "set key7 0 0 1\r\n7\r\nget" + keys + "\r\n", "STORED\r\n" + expected),
            "STORED\r\n" + expected);
}

TEST_P(CacheServerTest, oversize_values_are_refused_their_data_swallowed_and_the_old_value_dropped) {
  Server& s = start({"--max-item-size", "1k"});
  const std::string input = "set k 0 0 1\r\nx\r\nset k 0 0 2000\r\n" + std::string(2000, 'y') +
                            "\r\nget k\r\nms k 5000 T0\r\n" + std::string(5000, 'q') + "\r\nmn\r\n";
  const std::string expected =
      "STORED\r\nSERVER_ERROR object too large for cache\r\nEND\r\nSERVER_ERROR object too large for cache\r\nMN\r\n";
  EXPECT_EQ(converse(s, input, expected.size(), 100), expected);
}

TEST_P(CacheServerTest, garbage_input_never_crashes_the_server_nor_shows_another_clients_data) {
  Server& s = start();
  const std::string secret = "the-secret-value-of-client-a";
  ASSERT_EQ(exactly(s, "set secret 0 0 " + std::to_string(secret.size()) + "\r\n" + secret + "\r\n", "STORED\r\n"),
            "STORED\r\n");
  std::mt19937 rng(10);
  for (int round = 0; round < 30; ++round) {
    std::string junk(2000 + rng() % 3000, '\0');
    for (char& c : junk) {
      c = static_cast<char>(rng() % 4 == 0 ? "\r\n \0"[rng() % 4] : static_cast<char>(rng() % 256));
    }
    if (round % 3 == 0) junk = "set x 0 0 10\r\n" + junk;  // a data block of garbage
    if (round % 3 == 1) junk = "get secre" + junk;
    // Sent in odd-sized writes, then a half-close: the server answers what it can and closes at end of input.
    echo::Peer p;
    p.fd = echo::connect_now(s.endpoint);
    ASSERT_TRUE(p.fd.valid());
    p.out = junk;
    p.max_write = 1 + rng() % 500;
    p.shut_wr_after_send = true;
    p.wait_eof = true;
    echo::drive_one(p, 10s);
    EXPECT_TRUE(p.eof || p.error != 0) << "round " << round << ": the server did not close at end of input";
    EXPECT_EQ(p.in.find(secret), std::string::npos) << "round " << round;
  }
  EXPECT_TRUE(s.process.running());
  EXPECT_EQ(exactly(s, "get secret\r\n", "VALUE secret 0 28\r\n" + secret + "\r\nEND\r\n"),
            "VALUE secret 0 28\r\n" + secret + "\r\nEND\r\n");
}

TEST_P(CacheServerTest, a_client_that_closes_inside_a_data_block_is_closed_too) {
  Server& s = start();
  for (const char* input : {"set k 0 0 100\r\nabc", "set k 0 0 5000\r\n", "get k", "ms k 2000 T0\r\nxy"}) {
    echo::Peer p;
    p.fd = echo::connect_now(s.endpoint);
    ASSERT_TRUE(p.fd.valid());
    p.out = input;
    p.shut_wr_after_send = true;
    p.wait_eof = true;
    echo::drive_one(p, 10s);
    EXPECT_TRUE(p.eof) << input;
    EXPECT_EQ(p.in, "") << input;
  }
  EXPECT_EQ(exactly(s, "get k\r\n", "END\r\n"), "END\r\n");
}

TEST_P(CacheServerTest, two_shards_partition_the_keys_and_a_multi_get_across_them_keeps_the_request_order) {
  Server& s = start({"--threads", "2"});
  std::string sets;
  std::string expected_sets;
  std::string get = "get";
  std::string expected_get;
  for (int i = 0; i < 200; ++i) {
    const std::string k = "key" + std::to_string(i);
    const std::string v = std::to_string(i * 7);
    sets += "set " + k + " " + std::to_string(i) + " 0 " + std::to_string(v.size()) + "\r\n" + v + "\r\n";
    expected_sets += "STORED\r\n";
    get += " " + k + " missing" + std::to_string(i);
    expected_get += "VALUE " + k + " " + std::to_string(i) + " " + std::to_string(v.size()) + "\r\n" + v + "\r\n";
  }
  expected_get += "END\r\n";
  const std::string input = sets + get + "\r\nincr key3 1\r\nflush_all\r\nget key1 key2\r\n";
  const std::string expected = expected_sets + expected_get + "22\r\nOK\r\nEND\r\n";
  EXPECT_EQ(exactly(s, input, expected), expected);
  // Big values: each shard answers part of a batch (up to the output limit), the rest comes in later batches, and
  // the order still follows the request.
  std::string big_sets;
  std::string big_get = "get";
  std::string big_expected;
  for (int i = 0; i < 12; ++i) {
    const std::string k = "big" + std::to_string(i);
    const std::string v = echo::pattern(100 * 1024 + i, static_cast<std::uint64_t>(i));
    big_sets += "set " + k + " 0 0 " + std::to_string(v.size()) + "\r\n" + v + "\r\n";
    big_expected += "STORED\r\n";
  }
  for (int round = 0; round < 2; ++round) {
    for (int j = 0; j < 12; ++j) {
      const int i = round == 0 ? j : 11 - j;
      const std::string k = "big" + std::to_string(i);
      const std::string v = echo::pattern(100 * 1024 + i, static_cast<std::uint64_t>(i));
      big_get += " " + k;
      big_expected += "VALUE " + k + " 0 " + std::to_string(v.size()) + "\r\n" + v + "\r\n";
    }
  }
  big_expected += "END\r\n";
  const std::string got = converse(s, big_sets + big_get + "\r\n", big_expected.size());
  EXPECT_EQ(got, big_expected) << echo::first_difference(big_expected, got);
  // Both shards hold items: stats sums them.
  const std::string stats = converse_until(s, "set a 0 0 1\r\n1\r\nset b 0 0 1\r\n2\r\nstats\r\n", "END\r\n");
  EXPECT_NE(stats.find("STAT threads 2\r\n"), std::string::npos);
}

TEST_P(CacheServerTest, a_slow_reader_of_a_huge_multi_get_holds_bounded_memory) {
  Server& s = start({"--output-limit", "65536"});
  const std::string value(512 * 1024, 'm');
  ASSERT_EQ(exactly(s, "set big 0 0 " + std::to_string(value.size()) + "\r\n" + value + "\r\n", "STORED\r\n"),
            "STORED\r\n");
  const long before = echo::rss_kib(s.process.pid());
  // 100 copies of a 512 KiB value: 50 MiB of replies to a client that reads nothing for a while.
  std::string get = "get";
  for (int i = 0; i < 100; ++i) get += " big";
  get += "\r\n";
  echo::Peer p;
  p.fd = echo::connect_now(s.endpoint, 64 * 1024);
  ASSERT_TRUE(p.fd.valid());
  ASSERT_EQ(::send(p.fd.get(), get.data(), get.size(), 0), static_cast<ssize_t>(get.size()));
  std::this_thread::sleep_for(500ms);
  const long during = echo::rss_kib(s.process.pid());
  EXPECT_LT(during - before, 16 * 1024) << "KiB grown while the client does not read";
  // Now read all of it.
  const std::size_t reply_bytes = 100 * (value.size() + 22) + 5;  // "VALUE big 0 524288\r\n" is 20 bytes
  p.out.clear();
  p.expect = reply_bytes;
  echo::drive_one(p, 20s);
  EXPECT_EQ(p.in.size(), reply_bytes);
  EXPECT_TRUE(p.in.ends_with("\r\nEND\r\n"));
}

TEST_P(CacheServerTest, ten_thousand_connections_are_served_at_once) {
  if (echo::raise_fd_limit() < 10200) GTEST_SKIP() << "needs 10,200 descriptors per process";
  Server& s = start({"--max-conns", "12000"});
  std::vector<Fd> fds;
  fds.reserve(10000);
  for (int i = 0; i < 10000; ++i) {
    fds.push_back(echo::connect_now(s.endpoint));
    ASSERT_TRUE(fds.back().valid()) << i;
  }
  for (std::size_t i = 0; i < fds.size(); i += 1) {
    const std::string cmd = "set c" + std::to_string(i) + " 0 0 1\r\nx\r\n";
    ASSERT_EQ(::send(fds[i].get(), cmd.data(), cmd.size(), 0), static_cast<ssize_t>(cmd.size()));
  }
  int stored = 0;
  for (Fd& fd : fds) {
    pollfd pfd{fd.get(), POLLIN, 0};
    char buf[16];
    if (::poll(&pfd, 1, 10000) == 1 && ::recv(fd.get(), buf, sizeof buf, 0) == 8) ++stored;
  }
  EXPECT_EQ(stored, 10000);
  const std::string stats = converse_until(s, "stats\r\n", "END\r\n");
  EXPECT_NE(stats.find("STAT curr_items 10000\r\n"), std::string::npos);
}

TEST_P(CacheServerTest, a_unix_socket_listener_with_memcacheds_s_flag) {
  const std::string dir = http::make_temp_dir("cache-unix");
  ASSERT_FALSE(dir.empty());
  servers_.push_back(start_cache(GetParam(), {"-s", dir + "/mc.sock"}, ""));
  Server& s = servers_.back();
  EXPECT_EQ(exactly(s, "set u 0 0 1\r\nx\r\nget u\r\n", "STORED\r\nVALUE u 0 1\r\nx\r\nEND\r\n"),
            "STORED\r\nVALUE u 0 1\r\nx\r\nEND\r\n");
  stop_cache(s);
  http::remove_tree(dir);
}

// The address of the listener whose "listening on" line contains `needle` (e.g. "listening on [::1]:").
std::optional<Endpoint> listener_of(Server& s, const std::string& needle) {
  return echo::wait_for_listening(s.process, 10'000ms, needle);
}

bool have_ipv6_loopback() {
  Fd probe(::socket(AF_INET6, SOCK_STREAM, 0));
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_addr = in6addr_loopback;
  return probe.valid() && ::bind(probe.get(), reinterpret_cast<sockaddr*>(&sin6), sizeof sin6) == 0;
}

// #10: several listeners, TCP (v4 and v6) and a Unix path mixed, by repeated --listen; on two shards, so the
// further addresses are served by shard 0 (port 0, a path) while the first is spread.
TEST_P(CacheServerTest, repeated_listen_addresses_mixing_tcp_ipv6_and_a_unix_path_serve_one_cache) {
  const bool v6 = have_ipv6_loopback();
  const std::string dir = http::make_temp_dir("cache-listen");
  ASSERT_FALSE(dir.empty());
  std::vector<std::string> extra = {"--threads", "2", "--listen", "unix:" + dir + "/mc.sock"};
  if (v6) extra.insert(extra.end(), {"--listen", "[::1]:0"});
  Server& s = start(extra);
  std::vector<Endpoint> endpoints = {s.endpoint};
  std::optional<Endpoint> local = listener_of(s, "listening on unix:");
  ASSERT_TRUE(local.has_value()) << s.process.stderr_text();
  endpoints.push_back(*local);
  if (v6) {
    std::optional<Endpoint> six = listener_of(s, "listening on [::1]:");
    ASSERT_TRUE(six.has_value()) << s.process.stderr_text();
    endpoints.push_back(*six);
  }
  for (int i = 0; i < 8; ++i) expect_one_cache_behind(endpoints, "multi" + std::to_string(i));
  const std::string stats = converse_until(s, "stats\r\n", "END\r\n");
  EXPECT_NE(stats.find("STAT curr_items 8\r\n"), std::string::npos) << stats;
  stop_cache(s);
  http::remove_tree(dir);
}

// #10: memcached's -l takes a comma-separated list (bare IPv6 included) whose entries get -p's port, and -s adds a
// Unix path beside them.
TEST_P(CacheServerTest, memcacheds_l_flag_takes_a_comma_separated_list) {
  const bool v6 = have_ipv6_loopback();
  const std::string dir = http::make_temp_dir("cache-l");
  ASSERT_FALSE(dir.empty());
  servers_.push_back(start_cache(GetParam(), {"-p", "0", "-l", v6 ? "127.0.0.1,::1" : "127.0.0.1,127.0.0.1:0", "-s",
                                              dir + "/mc.sock"}, ""));
  Server& s = servers_.back();
  std::vector<Endpoint> endpoints = {s.endpoint};
  std::optional<Endpoint> local = listener_of(s, "listening on unix:");
  ASSERT_TRUE(local.has_value()) << s.process.stderr_text();
  endpoints.push_back(*local);
  if (v6) {
    std::optional<Endpoint> six = listener_of(s, "listening on [::1]:");
    ASSERT_TRUE(six.has_value()) << s.process.stderr_text();
    endpoints.push_back(*six);
  }
  expect_one_cache_behind(endpoints, "listed");
  stop_cache(s);
  http::remove_tree(dir);
}

TEST_P(CacheServerTest, an_empty_entry_in_the_l_list_is_refused) {
  echo::Finished f = echo::run_ringlet({"cache", "--backend", GetParam(), "-l", "127.0.0.1,,::1"}, 10s);
  ASSERT_TRUE(f.status.has_value());
  EXPECT_FALSE(f.status->success());
  EXPECT_NE(f.err.find("an empty address"), std::string::npos) << f.err;
}

TEST_P(CacheServerTest, ringlet_bench_memcache_verifies_every_reply_against_two_shards) {
  Server& s = start({"--threads", "2"});
  const std::vector<std::vector<std::string>> modes = {
      {"--protocol", "text", "--multiget", "5", "--distribution", "zipf", "--preload", "--keys", "2000"},
      {"--protocol", "meta", "--depth", "4", "--preload", "--keys", "2000"},
      {"--protocol", "text", "--noreply", "--depth", "8", "--get-ratio", "0.5", "--preload"},
  };
  for (const std::vector<std::string>& mode : modes) {
    std::vector<std::string> args = {"bench", "memcache", "--json", "--duration", "1", "--connections", "4",
                                     "--backend", GetParam()};
    args.insert(args.end(), mode.begin(), mode.end());
    args.push_back("127.0.0.1:" + std::to_string(s.port));
    echo::Finished f = echo::run_ringlet(args, 20s);
    // On a failure, the server's log too: a crash or a sanitizer's report shows there, not in the client's.
    ASSERT_TRUE(f.status && f.status->success()) << f.err << "\nthe server's log:\n" << s.process.stderr_text();
    EXPECT_NE(f.out.find("\"errors\":0,"), std::string::npos)
        << f.out << "\n" << f.err << "\nthe server's log:\n" << s.process.stderr_text();
    EXPECT_NE(f.out.find("\"requests\":"), std::string::npos) << f.out;
  }
}

// ---- real clients ---------------------------------------------------------------------------------------------------

std::string run_script(const std::string& script, const std::string& args) {
  const std::string path = http::make_temp_dir("cache-py") + "/t.py";
  http::write_file(path, script);
  std::string out = http::shell("/usr/bin/python3 " + path + " " + args + " 2>&1");
  http::remove_tree(path.substr(0, path.rfind('/')));
  return out;
}

// A port nobody listens on: bind 0, read it, close (the tool binds it right after; a race only a busy machine loses).
int free_port() {
  Fd probe(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(probe.get(), reinterpret_cast<sockaddr*>(&sin), sizeof sin);
  socklen_t len = sizeof sin;
  ::getsockname(probe.get(), reinterpret_cast<sockaddr*>(&sin), &len);
  return ntohs(sin.sin_port);
}

bool have_pymemcache() { return std::system("/usr/bin/python3 -c 'import pymemcache' > /dev/null 2>&1") == 0; }

TEST_P(CacheServerTest, pymemcache_works_including_hash_client_over_three_servers) {
  if (!have_pymemcache()) GTEST_SKIP() << "python3-pymemcache not installed";
  Server& a = start();
  Server& b = start();
  Server& c = start();
  const std::string script = R"(
import sys
from pymemcache.client.base import Client
from pymemcache.client.hash import HashClient
ports = [int(p) for p in sys.argv[1:]]
c = Client(("127.0.0.1", ports[0]))
c.set("a", "1"); assert c.get("a") == b"1"
assert c.incr("a", 5) == 6 and c.decr("a", 10) == 0
c.set_many({"x": "1", "y": "2"}); assert c.get_many(["x", "y", "z"]) == {"x": b"1", "y": b"2"}
v, cas = c.gets("x"); assert c.cas("x", "3", cas) is True and c.cas("x", "4", cas) is False
assert c.add("x", "9", noreply=False) is False and c.replace("nope", "1", noreply=False) is False
c.append("x", "!"); c.prepend("x", "<"); assert c.get("x") == b"<3!"
assert c.touch("x", 100, noreply=False) and c.delete("x", noreply=False) and c.get("x") is None
assert int(c.stats()[b"curr_items"]) >= 1 and c.version().startswith(b"1.6")
c.flush_all(); assert c.get("a") is None
h = HashClient([("127.0.0.1", p) for p in ports])
for i in range(300): h.set("k%d" % i, str(i))
for i in range(300): assert h.get("k%d" % i) == str(i).encode()
counts = [int(Client(("127.0.0.1", p)).stats()[b"curr_items"]) for p in ports]
assert all(n > 0 for n in counts) and sum(counts) >= 300, counts  # flushed items count until reclaimed
print("ok")
)";
  const std::string out = run_script(script, std::to_string(a.port) + " " + std::to_string(b.port) + " " +
                                                 std::to_string(c.port));
  EXPECT_EQ(out, "ok\n");
}

TEST_P(CacheServerTest, memccapable_passes_in_ascii_mode) {
  if (!http::have_program("memccapable")) GTEST_SKIP() << "libmemcached-tools not installed";
  Server& s = start();
  const std::string out =
      http::shell("timeout 60 memccapable -a -h 127.0.0.1 -p " + std::to_string(s.port) + " 2>&1; echo exit=$?");
  EXPECT_NE(out.find("ascii mget"), std::string::npos) << out;
  EXPECT_EQ(out.find("[FAIL]"), std::string::npos) << out;
  EXPECT_NE(out.find("exit=0"), std::string::npos) << out;
}

TEST_P(CacheServerTest, memccp_memccat_and_memcstat) {
  if (!http::have_program("memccp")) GTEST_SKIP() << "libmemcached-tools not installed";
  Server& s = start();
  const std::string dir = http::make_temp_dir("cache-tools");
  http::write_file(dir + "/file.txt", "some file contents\n");
  const std::string servers = "--servers=127.0.0.1:" + std::to_string(s.port);
  http::shell("cd " + dir + " && memccp " + servers + " file.txt 2>&1");
  EXPECT_EQ(http::shell("memccat " + servers + " file.txt 2>&1"), "some file contents\n\n");  // memccat adds one
  const std::string stat = http::shell("memcstat " + servers + " 2>&1");
  EXPECT_NE(stat.find("curr_items: 1"), std::string::npos) << stat;
  http::remove_tree(dir);
}

// libmemcached's assertion when it writes to the socket it closed itself (see the memcslap test).
constexpr std::string_view kClientSelfAbort = "Assertion `instance->fd != INVALID_SOCKET' failed";

// #10: libmemcached's load tool (Debian's memcslap, memslap 1.1) in each of its modes against two shards: every
// reply it reads is what it expects (it prints "error" or "failure" otherwise), and every get it sent hit.
TEST_P(CacheServerTest, memcslap_runs_every_test_mode_without_an_error) {
  if (!http::have_program("memcslap")) GTEST_SKIP() << "libmemcached-tools not installed";
  Server& s = start({"--threads", "2"});
  const std::string tool = "timeout 60 memcslap --servers=127.0.0.1:" + std::to_string(s.port) + " --concurrency=2 "
                           "--execute-number=500 ";
  const auto run = [&](const std::string& mode) {
    std::string out = http::shell(tool + mode + " 2>&1; echo exit=$?");
    // libmemcached 1.1.4 (Debian's memcslap) aborts itself when a server takes more than 50 ms to answer: its
    // --noreply does not reach the wire (the sets still ask for STORED), memcached_purge() reads the answers that
    // piled up with a 50 ms poll, a timeout closes the client's own socket (memcached_io_reset) and its next
    // buffered write asserts on the closed descriptor. On a loaded machine that happens against Debian's
    // memcached -t 2 as well (19 of 19 runs under gdb and two CPU hogs), so it says nothing about this server, and
    // whether it happens depends on the machine's speed: such a run is repeated twice, and if the client still
    // gives up, the server must still answer (#10). Any other error fails at once.
    for (int attempt = 1; attempt < 3 && out.find(kClientSelfAbort) != std::string::npos; ++attempt) {
      std::printf("memcslap %s: the client gave up after its own 50 ms timeout; again\n", mode.c_str());
      out = http::shell(tool + mode + " 2>&1; echo exit=$?");
    }
    if (out.find(kClientSelfAbort) != std::string::npos) {
      std::printf("memcslap %s: the client gave up three times (a loaded machine); checking the server answers\n",
                  mode.c_str());
      EXPECT_NE(converse_until(s, "version\r\n", "\r\n").find("VERSION "), std::string::npos);
      return;
    }
    EXPECT_NE(out.find("Time total:"), std::string::npos) << mode << ":\n" << out;
    EXPECT_NE(out.find("exit=0"), std::string::npos) << mode << ":\n" << out;
    for (const char* bad : {"rror", "ailure", "FAIL"}) {
      EXPECT_EQ(out.find(bad), std::string::npos) << mode << ":\n" << out;
    }
  };
  for (const char* mode : {"--test=set --flush", "--test=get --flush", "--test=mget",
                           "--test=get --non-blocking --tcp-nodelay"}) {
    run(mode);
  }
  const std::string stats = converse_until(s, "stats\r\n", "END\r\n");
  EXPECT_NE(stats.find("STAT get_misses 0\r\n"), std::string::npos) << stats;
  EXPECT_EQ(stats.find("STAT get_hits 0\r\n"), std::string::npos) << stats;
  // With noreply the tool's threads may read keys its loading connection's unanswered sets have not yet stored (a
  // race in the client, memcached's too): only errors count here.
  for (const char* mode : {"--test=set --noreply --buffer", "--test=mget --noreply --buffer"}) run(mode);
}

TEST_P(CacheServerTest, nutcracker_with_ketama_spreads_keys_over_three_instances) {
  if (!have_pymemcache() || !http::have_program("nutcracker")) GTEST_SKIP() << "nutcracker or pymemcache missing";
  Server& a = start();
  Server& b = start();
  Server& c = start();
  const std::string dir = http::make_temp_dir("cache-nutcracker");
  const int proxy_port = free_port();
  const int stats_port = free_port();
  http::write_file(dir + "/nutcracker.yml",
                   "cache:\n  listen: 127.0.0.1:" + std::to_string(proxy_port) +
                       "\n  hash: fnv1a_64\n  distribution: ketama\n  timeout: 2000\n  auto_eject_hosts: false\n"
                       "  servers:\n   - 127.0.0.1:" + std::to_string(a.port) + ":1 a\n   - 127.0.0.1:" +
                       std::to_string(b.port) + ":1 b\n   - 127.0.0.1:" + std::to_string(c.port) + ":1 c\n");
  ChildProcess proxy = ChildProcess::spawn({"/usr/sbin/nutcracker", "-c", dir + "/nutcracker.yml", "-s", std::to_string(stats_port), "-a", "127.0.0.1",
                                              "-o", dir + "/nutcracker.log"});
  ASSERT_TRUE(proxy.valid());
  const std::string script = R"(
import sys, time
from pymemcache.client.base import Client
proxy, ports = int(sys.argv[1]), [int(p) for p in sys.argv[2:]]
for attempt in range(100):
    try:
        c = Client(("127.0.0.1", proxy), connect_timeout=1, timeout=5); c.get("warmup"); break
    except Exception:
        time.sleep(0.05)
for i in range(600): assert c.set("nk%d" % i, str(i), noreply=False)
for i in range(600): assert c.get("nk%d" % i) == str(i).encode()
assert c.get_many(["nk1", "nk2", "nope"]) == {"nk1": b"1", "nk2": b"2"}
assert c.incr("nk5", 1) == 6 and c.decr("nk5", 2) == 4 and c.delete("nk5", noreply=False)
assert c.add("nk6", "x", noreply=False) is False and c.replace("nk6", "y", noreply=False)
v, cas = c.gets("nk7"); assert c.cas("nk7", "z", cas) is True
assert c.append("nk8", "!", noreply=False) and c.prepend("nk8", "<", noreply=False) and c.get("nk8") == b"<8!"
assert c.touch("nk9", 100, noreply=False)
counts = [int(Client(("127.0.0.1", p)).stats()[b"curr_items"]) for p in ports]
assert all(n > 0 for n in counts) and sum(counts) == 599, counts
print("ok")
)";
  const std::string out = run_script(script, std::to_string(proxy_port) + " " + std::to_string(a.port) + " " +
                                                 std::to_string(b.port) + " " + std::to_string(c.port));
  EXPECT_EQ(out, "ok\n");
  proxy.kill_and_reap();
  http::remove_tree(dir);
}

INSTANTIATE_TEST_SUITE_P(Backends, CacheServerTest, ::testing::Values("uring", "epoll"), echo::backend_name);

}  // namespace
}  // namespace ringlet::testing::cache
