// echo_test.cpp — the echo workload's verification without I/O: replies fed from the bytes its requests wrote.
// A correct echo passes in any split; a shifted stream, swapped replies, or one flipped byte are wrong replies.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ringlet/buf/buffer.hpp"
#include "ringlet/loadgen/workload.hpp"

namespace ringlet::loadgen {
std::unique_ptr<Workload> make_echo_workload();

namespace {

class SizeOption final : public OptionSink {
 public:
  explicit SizeOption(std::uint64_t size) : size_(size) {}
  void add_string(std::string_view, std::string&, std::string_view) override {}
  void add_strings(std::string_view, std::vector<std::string>&, std::string_view) override {}
  void add_choice(std::string_view, std::string&, std::string_view, std::vector<std::string>) override {}
  void add_uint(std::string_view flag, std::uint64_t& v, std::string_view, std::uint64_t, std::uint64_t) override {
    if (flag == "--size") v = size_;
  }
  void add_double(std::string_view, double&, std::string_view, double, double) override {}
  void add_flag(std::string_view, bool&, std::string_view) override {}

 private:
  std::uint64_t size_;
};

struct Fixture {
  std::unique_ptr<Workload> workload = make_echo_workload();
  std::unique_ptr<WorkloadShard> shard;
  std::unique_ptr<WorkloadConnection> conn;

  explicit Fixture(std::uint64_t size, unsigned depth) {
    SizeOption o(size);
    workload->declare_options(o);
    EXPECT_EQ(workload->configure("127.0.0.1:7", CommonConfig{}), "");
    shard = workload->create_shard(ShardContext{0, 1, 1, Address::loopback_v4(7)});
    conn = shard->new_connection(ConnectionContext{0, 0, 0, depth});
  }
  // Writes n requests and returns their bytes, in order.
  std::string write(int n) {
    OutputChain chain;
    RequestSink sink(chain);
    for (int i = 0; i < n; ++i) EXPECT_TRUE(conn->write_request(sink));
    std::string bytes;
    while (!chain.empty()) bytes += std::string(chain.pop_front().view());
    return bytes;
  }
  // Feeds `bytes` in pieces of `piece`; returns the replies that completed, or -1 at the first wrong one.
  int feed(const std::string& bytes, std::size_t piece) {
    SliceQueue in;
    int complete = 0;
    for (std::size_t at = 0; at < bytes.size(); at += piece) {
      in.push(Slice::copy_of(std::string_view(bytes).substr(at, piece)));
      for (;;) {
        Reply r = conn->parse_reply(in, false);
        if (r.status == Reply::Status::wrong) return -1;
        if (r.status == Reply::Status::need_more) break;
        ++complete;
      }
    }
    return complete;
  }
};

TEST(EchoWorkload, a_correct_echo_passes_in_any_split) {
  for (std::size_t piece : {1u, 7u, 64u, 1000u}) {
    Fixture f(64, 4);
    std::string sent = f.write(4);
    ASSERT_EQ(sent.size(), 4u * 64);
    EXPECT_EQ(f.feed(sent, piece), 4) << piece;
  }
}

TEST(EchoWorkload, consecutive_requests_carry_different_payloads) {
  Fixture f(32, 2);
  std::string sent = f.write(2);
  EXPECT_NE(sent.substr(0, 32), sent.substr(32, 32));
}

TEST(EchoWorkload, one_flipped_byte_is_a_wrong_reply) {
  Fixture f(100, 3);
  std::string sent = f.write(3);
  sent[150] ^= 1;
  EXPECT_EQ(f.feed(sent, 17), -1);
}

TEST(EchoWorkload, swapped_replies_are_wrong) {
  Fixture f(50, 2);
  std::string sent = f.write(2);
  std::string swapped = sent.substr(50) + sent.substr(0, 50);
  EXPECT_EQ(f.feed(swapped, 50), -1);
}

TEST(EchoWorkload, a_stream_shifted_by_one_byte_is_wrong) {
  Fixture f(40, 2);
  std::string sent = f.write(2);
  EXPECT_EQ(f.feed(sent.substr(1) + "x", 80), -1);
}

TEST(EchoWorkload, another_connections_payload_is_wrong) {
  Fixture a(40, 1);
  Fixture b(40, 1);
  b.conn = b.shard->new_connection(ConnectionContext{0, 1, 0, 1});  // connection 1 starts at another variant
  std::string from_b = b.write(1);
  a.write(1);
  EXPECT_EQ(a.feed(from_b, 40), -1);
}

}  // namespace
}  // namespace ringlet::loadgen
