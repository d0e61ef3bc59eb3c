// Black-box tests of `ringlet echo --threads 2`: how connections spread over the shards in both accept modes, and
// that every shard stops and reports (the forced stop is tested in tests/unit/net/sharded_server_test.cpp).
#include <gtest/gtest.h>

#include <regex>

#include "echo_harness.hpp"

namespace ringlet::testing::echo {
namespace {

struct ShardFinal {
  unsigned shard;
  std::uint64_t accepted;
  std::uint64_t bytes_in;
};

// The "final: shard K (...): O open, A accepted, I B in, ..." lines every shard logs when it stops.
std::vector<ShardFinal> parse_finals(const std::string& log) {
  std::vector<ShardFinal> out;
  std::regex line(R"(final: shard (\d+) \(cpu -?\d+\): \d+ open, (\d+) accepted, (\d+) B in)");
  for (auto it = std::sregex_iterator(log.begin(), log.end(), line); it != std::sregex_iterator(); ++it) {
    out.push_back({static_cast<unsigned>(std::stoul((*it)[1])), std::stoull((*it)[2]), std::stoull((*it)[3])});
  }
  return out;
}

class EchoShardsTest : public EchoServerTest {
 protected:
  // Opens n connections, proves each is served with one round trip, keeps them all open, then stops the server and
  // returns each shard's share of the accepted connections.
  std::vector<ShardFinal> spread(const std::string& mode, std::size_t n) {
    raise_fd_limit();
    start({"--threads", "2", "--accept", mode, "--max-conns", "5000"});
    if (HasFatalFailure()) return {};
    std::vector<Fd> open;
    for (std::size_t i = 0; i < n; ++i) {
      Fd fd = connect_now(endpoint_);
      EXPECT_TRUE(fd.valid()) << "connection " << i;
      if (!fd.valid()) return {};
      std::string data = pattern(16, i);
      EXPECT_EQ(roundtrip(fd, data), data) << "connection " << i;
      open.push_back(std::move(fd));
    }
    stop_and_expect_clean_exit();
    return parse_finals(server_.stderr_text());
  }
};

TEST_P(EchoShardsTest, reuseport_spreads_a_thousand_connections_over_two_shards) {
  std::vector<ShardFinal> finals = spread("reuseport", 1000);
  ASSERT_EQ(finals.size(), 2u) << server_.stderr_text();
  std::uint64_t total = finals[0].accepted + finals[1].accepted;
  EXPECT_EQ(total, 1000u);
  for (const ShardFinal& f : finals) {
    EXPECT_GE(f.accepted, 400u) << "shard " << f.shard;
    EXPECT_LE(f.accepted, 600u) << "shard " << f.shard;
    EXPECT_EQ(f.bytes_in, f.accepted * 16) << "shard " << f.shard;
  }
}

TEST_P(EchoShardsTest, handoff_gives_each_connection_to_the_least_loaded_shard) {
  std::vector<ShardFinal> finals = spread("handoff", 1000);
  ASSERT_EQ(finals.size(), 2u) << server_.stderr_text();
  EXPECT_EQ(finals[0].accepted + finals[1].accepted, 1000u);
  for (const ShardFinal& f : finals) {
    EXPECT_GE(f.accepted, 400u) << "shard " << f.shard;
    EXPECT_LE(f.accepted, 600u) << "shard " << f.shard;
    EXPECT_EQ(f.bytes_in, f.accepted * 16) << "shard " << f.shard;
  }
}

RINGLET_ECHO_BOTH_BACKENDS(EchoShardsTest);

}  // namespace
}  // namespace ringlet::testing::echo
