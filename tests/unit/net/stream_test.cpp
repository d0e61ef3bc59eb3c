// stream_test.cpp — Stream on both backends: every framing read over every split point of a message, EOF and
// half-close, the three write forms, write_chain past kMaxIov, sendfile, connect failures and timeouts, and the
// receive queue's back-pressure. Every test is bounded in time (a bug fails it instead of hanging it) and ends with
// the fixture's clean-shutdown checks.
#include "ringlet/net/stream.hpp"

#include <gtest/gtest.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "ringlet/buf/buffer.hpp"
#include "ringlet/buf/copy_counter.hpp"
#include "ringlet/net/listener.hpp"
#include "support/stream_fixture.hpp"

namespace ringlet {
namespace {

using namespace std::chrono_literals;
using testing::pattern;
using testing::wait_for;

enum class Transport { tcp, unix_socket };

struct StreamPair {
  Stream client;
  Stream server;
};

Task<Result<Stream>> accept_one(Listener* listener) { co_return co_await with_timeout(listener->accept(), 5s); }

Task<Result<StreamPair>> connect_pair(Listener* listener, StreamOptions options) {
  JoinHandle<Result<Stream>> server = Loop::current()->spawn_joinable(accept_one(listener));
  Result<Stream> client = co_await connect(listener->local_address(), 5s, options);
  Result<Stream> accepted = co_await server;
  if (!client) co_return client.error();
  if (!accepted) co_return accepted.error();
  co_return StreamPair{std::move(*client), std::move(*accepted)};
}

// Runs `task` with a deadline: a bug that loses a wake-up fails the test instead of hanging it.
template <class T>
Task<detail::TimeoutResult<T>> bounded(Task<T> task, Duration limit) {
  co_return co_await with_timeout(std::move(task), limit);
}

class StreamTest : public testing::StreamFixture {
 public:
  void TearDown() override {
    if (!unix_dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(unix_dir_, ec);
      EXPECT_FALSE(ec) << "could not remove " << unix_dir_;
    }
    StreamFixture::TearDown();
  }

  // A connected client/server pair on 127.0.0.1 or a Unix socket in a fresh temp dir. The listener is closed
  // before returning, so it holds no operation past this call.
  StreamPair make_pair(Transport transport = Transport::tcp, StreamOptions options = {}) {
    Address address = Address::loopback_v4(0);
    if (transport == Transport::unix_socket) {
      if (unix_dir_.empty()) {
        std::string tmpl = "/tmp/ringlet-stream-XXXXXX";
        if (mkdtemp(tmpl.data()) != nullptr) unix_dir_ = tmpl;
      }
      address = Address::unix_path(unix_dir_ + "/s" + std::to_string(pairs_++) + ".sock").value();
    }
    ListenOptions listen_options;
    listen_options.stream = options;
    auto listener = Listener::bind(loop(), address, listen_options);
    if (!listener) {
      ADD_FAILURE() << "bind: " << listener.error().message();
      return {};
    }
    Result<StreamPair> pair = run(connect_pair(&*listener, options));
    listener->close();
    if (!pair) {
      ADD_FAILURE() << "connect: " << pair.error().message();
      return {};
    }
    return std::move(*pair);
  }

 private:
  std::string unix_dir_;
  int pairs_ = 0;
};

std::span<std::byte> bytes_of(std::string& s) { return std::as_writable_bytes(std::span(s.data(), s.size())); }

Task<void> write_then_close(Stream* s, std::string bytes) {
  if (!bytes.empty()) (void)co_await s->write(bytes);
  s->close();
}

Task<Status> write_text(Stream* s, std::string text) { co_return co_await s->write(text); }
Task<Status> wait_more_of(Stream* s) { co_return co_await s->wait_more(); }

// Collects everything until EOF with receive().
Task<std::string> receive_to_eof(Stream* s) {
  std::string out;
  for (;;) {
    Result<Slice> r = co_await s->receive();
    if (!r) co_return out + "<error: " + std::string(r.error().message()) + ">";
    if (r->empty()) break;
    out.append(r->view());
  }
  co_return out;
}

Task<void> echo_once(Listener* listener) {
  Result<Stream> s = co_await listener->accept();
  if (!s) co_return;
  for (;;) {
    Result<Slice> data = co_await s->receive();
    if (!data || data->empty()) break;
    Status w = co_await s->write(std::move(*data));
    if (!w) break;
  }
}

Task<std::string> client_roundtrip(Address addr, std::string message) {
  Result<Stream> c = co_await connect(addr);
  if (!c) co_return "connect failed: " + std::string(c.error().message());
  Status w = co_await c->write(message);
  if (!w) co_return "write failed";
  std::string got(message.size(), '\0');
  Status r = co_await c->read_exactly(std::as_writable_bytes(std::span(got.data(), got.size())));
  if (!r) co_return "read failed: " + std::string(r.error().message());
  co_return got;
}

TEST_P(StreamTest, echo_roundtrip_over_tcp_returns_the_same_bytes) {
  auto listener = Listener::bind(loop(), Address::loopback_v4(0));
  ASSERT_TRUE(listener.ok());
  loop().spawn(echo_once(&*listener));
  std::string message(100000, 'x');
  for (std::size_t i = 0; i < message.size(); ++i) message[i] = static_cast<char>('a' + i % 26);
  EXPECT_EQ(run(client_roundtrip(listener->local_address(), message)), message);
  listener->close();
}

Task<std::vector<std::string>> read_lines(Listener* listener, int n) {
  std::vector<std::string> out;
  Result<Stream> s = co_await listener->accept();
  if (!s) co_return out;
  for (int i = 0; i < n; ++i) {
    Result<Slice> line = co_await s->read_line(1024);
    if (!line) {
      out.push_back("error: " + std::string(line.error().message()));
      break;
    }
    out.emplace_back(line->view());
  }
  co_return out;
}

Task<void> write_pieces(Address addr, std::vector<std::string> pieces) {
  Result<Stream> c = co_await connect(addr);
  if (!c) co_return;
  for (auto& p : pieces) {
    (void)co_await c->write(p);
    (void)co_await sleep_for(std::chrono::milliseconds(1));
  }
}

TEST_P(StreamTest, read_line_assembles_lines_split_across_writes) {
  auto listener = Listener::bind(loop(), Address::loopback_v4(0));
  ASSERT_TRUE(listener.ok());
  loop().spawn(write_pieces(listener->local_address(), {"hel", "lo\r\nwor", "ld\nlast", "\n"}));
  auto lines = run(read_lines(&*listener, 3));
  EXPECT_EQ(lines, (std::vector<std::string>{"hello", "world", "last"}));
  listener->close();
}

// ---- framing reads over every split point ---------------------------------------------------------------------

// One message that exercises every framing reader: "\r\n" and "\n" line ends, a two-byte delimiter, a fixed frame.
constexpr std::string_view kMessage = "alpha\r\nbeta\nGAMMA::12345";

// Writes kMessage once per split point: the bytes before the split, a pause long enough for the reader to consume
// them on their own, then the rest and another pause (so consecutive messages do not merge either).
Task<void> write_message_split_everywhere(Stream* s) {
  for (std::size_t split = 0; split <= kMessage.size(); ++split) {
    std::string_view first = kMessage.substr(0, split);
    std::string_view second = kMessage.substr(split);
    if (!first.empty()) {
      Status st = co_await s->write(first);
      if (!st) co_return;
    }
    (void)co_await sleep_for(1ms);
    if (!second.empty()) {
      Status st = co_await s->write(second);
      if (!st) co_return;
    }
    (void)co_await sleep_for(1ms);
  }
}

enum class Reader { frames, read_some, read_exactly };

std::string describe(const Result<Slice>& r) {
  return r ? std::string(r->view()) : "<" + std::string(r.error().message()) + ">";
}

// Reads kMessage once per split point with the given reader and returns what each read produced.
Task<std::vector<std::string>> read_message_per_split(Stream* s, Reader reader) {
  std::vector<std::string> out;
  for (std::size_t split = 0; split <= kMessage.size(); ++split) {
    std::string got;
    switch (reader) {
      case Reader::frames: {
        got += describe(co_await s->read_line(64)) + "|";
        got += describe(co_await s->read_line(64)) + "|";
        got += describe(co_await s->read_until("::", 64)) + "|";
        got += describe(co_await s->read_frame(5));
        break;
      }
      case Reader::read_some: {
        // A destination smaller than the message, so queued bytes are handed out in several pieces.
        std::string piece(7, '\0');
        while (got.size() < kMessage.size()) {
          std::span<std::byte> dst = bytes_of(piece).first(std::min(piece.size(), kMessage.size() - got.size()));
          Result<std::size_t> n = co_await s->read_some(dst);
          if (!n || *n == 0) {
            got += "<ended early>";
            break;
          }
          got.append(piece.data(), *n);
        }
        break;
      }
      case Reader::read_exactly: {
        got.assign(kMessage.size(), '\0');
        Status st = co_await s->read_exactly(bytes_of(got));
        if (!st) got = "<" + std::string(st.error().message()) + ">";
        break;
      }
    }
    out.push_back(got);
  }
  co_return out;
}

Task<std::vector<std::string>> split_point_round(Stream* writer, Stream* reader, Reader kind) {
  JoinHandle<void> w = Loop::current()->spawn_joinable(write_message_split_everywhere(writer));
  std::vector<std::string> got = co_await read_message_per_split(reader, kind);
  co_await w;
  co_return got;
}

void expect_every_split_reads_the_same(StreamTest& test, Reader kind, Transport transport,
                                       const std::string& expected) {
  StreamPair p = test.make_pair(transport);
  ASSERT_TRUE(p.client.is_open());
  ASSERT_TRUE(p.client.set_nodelay(Toggle::on).ok() || transport == Transport::unix_socket);
  auto got = test.run(bounded(split_point_round(&p.client, &p.server, kind), 20s));
  ASSERT_TRUE(got.ok()) << "timed out";
  ASSERT_EQ(got->size(), kMessage.size() + 1);
  for (std::size_t split = 0; split < got->size(); ++split) EXPECT_EQ((*got)[split], expected) << "split " << split;
}

TEST_P(StreamTest, framing_reads_give_the_same_frames_wherever_the_message_is_split) {
  expect_every_split_reads_the_same(*this, Reader::frames, Transport::tcp, "alpha|beta|GAMMA|12345");
}

TEST_P(StreamTest, framing_reads_over_a_unix_socket_give_the_same_frames_wherever_the_message_is_split) {
  expect_every_split_reads_the_same(*this, Reader::frames, Transport::unix_socket, "alpha|beta|GAMMA|12345");
}

TEST_P(StreamTest, read_some_returns_every_byte_once_wherever_the_message_is_split) {
  expect_every_split_reads_the_same(*this, Reader::read_some, Transport::tcp, std::string(kMessage));
}

TEST_P(StreamTest, read_exactly_fills_the_buffer_wherever_the_message_is_split) {
  expect_every_split_reads_the_same(*this, Reader::read_exactly, Transport::tcp, std::string(kMessage));
}

Task<std::vector<std::string>> read_frames_until_error(Stream* s, std::size_t max_len) {
  std::vector<std::string> out;
  for (;;) {
    Result<Slice> r = co_await s->read_until("END", max_len);
    out.push_back(describe(r));
    if (!r) break;
  }
  co_return out;
}

TEST_P(StreamTest, read_until_reports_frame_too_long_and_consumes_nothing) {
  StreamPair p = make_pair();
  ASSERT_TRUE(p.client.is_open());
  ASSERT_TRUE(run(bounded(write_then_close(&p.client, "abcEND0123456789END"), 5s)).ok());
  auto got = run(bounded(read_frames_until_error(&p.server, 8), 5s));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, (std::vector<std::string>{"abc", "<" + std::string(errc::frame_too_long.message()) + ">"}));
  // too_long consumed nothing: with a larger limit the same bytes are the next frame.
  auto next = run(bounded(p.server.read_until("END", 64), 5s));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(describe(*next), "0123456789");
}

// ---- EOF ------------------------------------------------------------------------------------------------------

struct EofSeen {
  std::string read_exactly_error;
  std::string partial;
  std::string receive_after_eof;
  std::size_t read_some_after_eof = 99;
  std::string read_line_after_eof;
  std::string read_frame_after_eof;
  bool at_eof = false;
};

Task<EofSeen> read_past_eof(Stream* s) {
  EofSeen seen;
  std::string dst(10, '.');
  Status st = co_await s->read_exactly(bytes_of(dst));
  seen.read_exactly_error = st ? "ok" : std::string(st.error().message());
  seen.partial = dst;
  Result<Slice> r = co_await s->receive();
  seen.receive_after_eof = !r ? "error" : r->empty() ? "empty" : "data";
  Result<Slice> again = co_await s->receive();
  if (!again || !again->empty()) seen.receive_after_eof += " then not empty";
  std::string buf(4, '\0');
  Result<std::size_t> n = co_await s->read_some(bytes_of(buf));
  if (n) seen.read_some_after_eof = *n;
  seen.read_line_after_eof = describe(co_await s->read_line(64));
  seen.read_frame_after_eof = describe(co_await s->read_frame(1));
  seen.at_eof = s->at_eof();
  co_return seen;
}

TEST_P(StreamTest, after_the_peer_closes_read_exactly_gives_eof_and_receive_gives_empty_slices) {
  StreamPair p = make_pair();
  ASSERT_TRUE(p.client.is_open());
  ASSERT_TRUE(run(bounded(write_then_close(&p.client, "abc"), 5s)).ok());
  auto seen = run(bounded(read_past_eof(&p.server), 5s));
  ASSERT_TRUE(seen.ok());
  EXPECT_EQ(seen->read_exactly_error, errc::eof.message());
  EXPECT_EQ(seen->partial.substr(0, 3), "abc") << "bytes read before EOF stay in the destination";
  EXPECT_EQ(seen->receive_after_eof, "empty");
  EXPECT_EQ(seen->read_some_after_eof, 0u);
  EXPECT_EQ(seen->read_line_after_eof, "<" + std::string(errc::eof.message()) + ">");
  EXPECT_EQ(seen->read_frame_after_eof, "<" + std::string(errc::eof.message()) + ">");
  EXPECT_TRUE(seen->at_eof);
}

Task<std::string> read_line_then_eof(Stream* s) {
  std::string out = describe(co_await s->read_line(64));
  out += "|" + describe(co_await s->read_line(64));
  co_return out;
}

TEST_P(StreamTest, a_partial_line_before_eof_is_an_eof_error_not_a_line) {
  StreamPair p = make_pair();
  ASSERT_TRUE(p.client.is_open());
  ASSERT_TRUE(run(bounded(write_then_close(&p.client, "whole\nhalf"), 5s)).ok());
  auto got = run(bounded(read_line_then_eof(&p.server), 5s));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "whole|<" + std::string(errc::eof.message()) + ">");
}

TEST_P(StreamTest, read_some_direct_into_the_destination_sees_eof_as_zero) {
  StreamPair p = make_pair();
  ASSERT_TRUE(p.client.is_open());
  p.client.close();
  std::string buf(8, '\0');
  auto n = run(bounded(p.server.read_some(bytes_of(buf)), 5s));
  ASSERT_TRUE(n.ok()) << n.error().message();
  EXPECT_EQ(*n, 0u);
  EXPECT_TRUE(p.server.at_eof());
}

// ---- writes ---------------------------------------------------------------------------------------------------

Task<std::string> write_three_ways(Stream* s, Slice slice) {
  std::string span_bytes = "span;";
  Status a = co_await s->write(std::as_bytes(std::span(span_bytes.data(), span_bytes.size())));
  Status b = co_await s->write(std::string_view("string;"));
  Status c = co_await s->write(std::move(slice));
  if (!a || !b || !c) co_return "write failed";
  // write(Slice) may return while the slice is still queued; flush() returns once it has been sent.
  Status flushed = co_await s->flush();
  if (!flushed) co_return "flush failed";
  (void)s->shutdown_write();
  co_return "ok";
}

TEST_P(StreamTest, a_span_a_string_and_a_slice_are_written_in_order_and_the_slice_is_released_once_sent) {
  StreamPair p = make_pair();
  ASSERT_TRUE(p.client.is_open());
  std::size_t outstanding = BufferPool::local().outstanding();
  Slice slice = Slice::copy_of(std::string_view("slice!"));
  std::uint64_t copied = bytes_copied();
  JoinHandle<std::string> reader = loop().spawn_joinable(receive_to_eof(&p.server));
  auto w = run(bounded(write_three_ways(&p.client, std::move(slice)), 5s));
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(*w, "ok");
  EXPECT_EQ(bytes_copied(), copied) << "a write copied payload";
  EXPECT_EQ(BufferPool::local().outstanding(), outstanding) << "the sent slice's buffer was not released";
  auto got = run(bounded(wait_for(std::move(reader)), 5s));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "span;string;slice!");
}

// Pieces cut from one buffer with a gap between neighbours, so the chain cannot join them into one iovec.
struct ChainSource {
  Slice whole;
  std::string expected;
};

ChainSource build_chain(OutputChain& chain, std::size_t pieces, std::size_t piece_size) {
  ChainSource src;
  std::string bytes = pattern(pieces * (piece_size + 1), 7);
  Buffer* b = BufferPool::local().acquire(bytes.size());
  std::memcpy(b->data, bytes.data(), bytes.size());
  src.whole = Slice(b, 0, static_cast<std::uint32_t>(bytes.size()));
  for (std::size_t i = 0; i < pieces; ++i) {
    Slice piece = src.whole.sub(i * (piece_size + 1), piece_size);
    src.expected.append(piece.view());
    chain.append(std::move(piece));
  }
  return src;
}

Task<Status> write_chain_then_shut(Stream* s, OutputChain* chain) {
  Status st = co_await s->write_chain(*chain);
  (void)s->shutdown_write();
  co_return st;
}

void expect_chain_arrives_byte_exact(StreamTest& test, std::size_t pieces, std::size_t piece_size) {
  StreamPair p = test.make_pair();
  ASSERT_TRUE(p.client.is_open());
  OutputChain chain;
  ChainSource src = build_chain(chain, pieces, piece_size);
  ASSERT_EQ(chain.pieces(), pieces);
  ASSERT_GT(chain.pieces(), Stream::kMaxIov);
  JoinHandle<std::string> reader = test.loop().spawn_joinable(receive_to_eof(&p.server));
  std::uint64_t copied = bytes_copied();
  auto st = test.run(bounded(write_chain_then_shut(&p.client, &chain), 10s));
  EXPECT_EQ(bytes_copied(), copied) << "write_chain copied payload";
  ASSERT_TRUE(st.ok()) << st.error().message();
  EXPECT_TRUE(chain.empty());
  auto got = test.run(bounded(wait_for(std::move(reader)), 10s));
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), src.expected.size());
  EXPECT_TRUE(*got == src.expected) << "the chain arrived with different bytes";
}

TEST_P(StreamTest, write_chain_with_more_pieces_than_kmaxiov_arrives_byte_exact) {
  expect_chain_arrives_byte_exact(*this, 3 * Stream::kMaxIov + 5, 13);
}

TEST_P(StreamTest, write_chain_larger_than_the_socket_buffer_survives_partial_writes_mid_piece) {
  // 300 pieces of 9999 bytes (about 3 MB): sendmsg returns short counts that end inside a piece.
  expect_chain_arrives_byte_exact(*this, 300, 9999);
}

// ---- sendfile ----------------------------------------------------------------------------------------------------

Task<Status> sendfile_then_shut(Stream* s, int fd, off_t offset, std::size_t count) {
  Status st = co_await s->sendfile(fd, offset, count);
  (void)s->shutdown_write();
  co_return st;
}

TEST_P(StreamTest, sendfile_sends_the_file_range_without_copying_it) {
  char path[] = "/tmp/ringlet-sendfile-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ::unlink(path);
  // Larger than the socket buffer, so sendfile meets a full socket and has to wait for room.
  std::string content = pattern(5 * 1024 * 1024 + 123, 3);
  ASSERT_EQ(::write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  StreamPair p = make_pair();
  ASSERT_TRUE(p.client.is_open());
  JoinHandle<std::string> reader = loop().spawn_joinable(receive_to_eof(&p.server));
  constexpr off_t kOffset = 1000;
  const std::size_t count = content.size() - 2000;
  std::uint64_t copied = bytes_copied();
  auto st = run(bounded(sendfile_then_shut(&p.client, fd, kOffset, count), 20s));
  EXPECT_EQ(bytes_copied(), copied);
  ASSERT_TRUE(st.ok()) << st.error().message();
  auto got = run(bounded(wait_for(std::move(reader)), 20s));
  ::close(fd);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), count);
  EXPECT_TRUE(*got == content.substr(kOffset, count)) << "sendfile sent different bytes";
}

TEST_P(StreamTest, sendfile_past_the_end_of_the_file_reports_eof) {
  char path[] = "/tmp/ringlet-sendfile-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ::unlink(path);
  ASSERT_EQ(::write(fd, "0123456789", 10), 10);
  StreamPair p = make_pair();
  ASSERT_TRUE(p.client.is_open());
  JoinHandle<std::string> reader = loop().spawn_joinable(receive_to_eof(&p.server));
  auto st = run(bounded(sendfile_then_shut(&p.client, fd, 4, 100), 5s));
  ::close(fd);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error(), errc::eof);
  auto got = run(bounded(wait_for(std::move(reader)), 5s));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "456789");
}

Task<Status> sendfile_steps_then_shut(Stream* s, int fd, off_t offset, std::uint64_t count,
                                      Stream::SendfileSteps how) {
  Status st = co_await s->sendfile_steps(fd, offset, count, how);
  (void)s->shutdown_write();
  co_return st;
}

// An unlinked temporary file holding `content`; the caller closes it.
int temp_file_with(const std::string& content) {
  char path[] = "/tmp/ringlet-sendfile-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return fd;
  ::unlink(path);
  if (::write(fd, content.data(), content.size()) != static_cast<ssize_t>(content.size())) {
    ::close(fd);
    return -1;
  }
  return fd;
}

TEST_P(StreamTest, sendfile_steps_sends_a_queued_head_then_the_range_in_steps_corked) {
  std::string content = pattern(3 * 1024 * 1024 + 17, 5);
  int fd = temp_file_with(content);
  ASSERT_GE(fd, 0);
  StreamPair p = make_pair();
  ASSERT_TRUE(p.client.is_open());
  JoinHandle<std::string> reader = loop().spawn_joinable(receive_to_eof(&p.server));
  p.client.queue_copy("HEAD\n");
  Stream::SendfileSteps how;
  how.step = 256 * 1024;  // several steps, the last one short
  how.step_timeout = 20s;
  how.cork = Toggle::on;
  auto st = run(bounded(sendfile_steps_then_shut(&p.client, fd, 7, content.size() - 7, how), 20s));
  ASSERT_TRUE(st.ok()) << st.error().message();
  auto got = run(bounded(wait_for(std::move(reader)), 20s));
  ::close(fd);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(*got == "HEAD\n" + content.substr(7)) << "different bytes, or out of order";
}

TEST_P(StreamTest, sendfile_steps_over_a_unix_socket_works_without_cork) {
  std::string content = pattern(100 * 1024, 6);
  int fd = temp_file_with(content);
  ASSERT_GE(fd, 0);
  StreamPair p = make_pair(Transport::unix_socket);
  ASSERT_TRUE(p.client.is_open());
  JoinHandle<std::string> reader = loop().spawn_joinable(receive_to_eof(&p.server));
  Stream::SendfileSteps how;
  how.step = 4096;
  how.cork = Toggle::on;  // TCP_CORK does not apply: ignored
  auto st = run(bounded(sendfile_steps_then_shut(&p.client, fd, 0, content.size(), how), 20s));
  ASSERT_TRUE(st.ok()) << st.error().message();
  auto got = run(bounded(wait_for(std::move(reader)), 20s));
  ::close(fd);
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(*got == content);
}

TEST_P(StreamTest, sendfile_steps_gives_up_on_a_peer_that_stops_reading) {
  // Far more than the socket buffers hold, to a peer that never reads: the step's timeout ends it.
  std::string content = pattern(32 * 1024 * 1024, 7);
  int fd = temp_file_with(content);
  ASSERT_GE(fd, 0);
  StreamPair p = make_pair();
  ASSERT_TRUE(p.client.is_open());
  Stream::SendfileSteps how;
  how.step_timeout = 100ms;
  const auto started = std::chrono::steady_clock::now();
  auto st = run(bounded(p.client.sendfile_steps(fd, 0, content.size(), how), 60s));
  ::close(fd);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error(), errc::timed_out);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 30s) << "the outer bound ended a hang, not the step timeout";
}

// ---- lingering close ---------------------------------------------------------------------------------------------

// The server side: queues a reply without reading the request, and closes lingering.
Task<void> reply_and_linger(Stream* s, std::string reply, Stream::Linger how) {
  s->queue_copy(reply);
  co_await s->linger_close(how);
}

// The client: sends `request`, reads everything until EOF, then keeps sending `more` (if any) before it closes.
Task<std::string> send_read_then_close(Stream* c, std::string request) {
  Status sent = co_await c->write(request);
  if (!sent) co_return "write failed";
  std::string got = co_await receive_to_eof(c);
  c->close();
  co_return got;
}

TEST_P(StreamTest, linger_close_delivers_the_reply_and_waits_for_the_peer_to_close) {
  StreamPair p = make_pair();
  ASSERT_TRUE(p.client.is_open());
  JoinHandle<std::string> client =
      loop().spawn_joinable(send_read_then_close(&p.client, pattern(200 * 1024, 8)));  // never read by the server
  Stream::Linger how;
  how.time = 60s;  // only the peer's close ends it
  auto done = run(bounded(reply_and_linger(&p.server, "400 Bad Request\n", how), 20s));
  EXPECT_TRUE(done.ok()) << "linger_close did not return after the peer closed";
  EXPECT_FALSE(p.server.is_open());
  auto got = run(bounded(wait_for(std::move(client)), 20s));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "400 Bad Request\n");
}

TEST_P(StreamTest, linger_close_is_bounded_in_time_when_the_peer_stays_open) {
  StreamPair p = make_pair();
  ASSERT_TRUE(p.client.is_open());
  Stream::Linger how;
  how.time = 50ms;
  auto done = run(bounded(reply_and_linger(&p.server, "bye\n", how), 20s));
  EXPECT_TRUE(done.ok()) << "a hang, not the linger time";
  EXPECT_FALSE(p.server.is_open());
  auto got = run(bounded(receive_to_eof(&p.client), 5s));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "bye\n");
}

TEST_P(StreamTest, linger_close_ends_at_once_when_the_peer_resets) {
  StreamPair p = make_pair();
  ASSERT_TRUE(p.client.is_open());
  // The client resets the connection (SO_LINGER 0, then close) with the server's reply unread.
  linger reset{1, 0};
  ASSERT_EQ(::setsockopt(p.client.fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset), 0);
  p.client.close();
  Stream::Linger how;
  how.time = 60s;  // only the reset may end it early
  const auto start = std::chrono::steady_clock::now();
  auto done = run(bounded(reply_and_linger(&p.server, "400 Bad Request\n", how), 20s));
  EXPECT_TRUE(done.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 30s)
      << "linger_close waited out its time after a reset (a receive error makes wait_more() return at once: it spun)";
  EXPECT_FALSE(p.server.is_open());
}

Task<void> send_forever(Stream* c, std::size_t chunk) {
  std::string data = pattern(chunk, 9);
  for (;;) {
    Status sent = co_await c->write(std::string_view(data));
    if (!sent) co_return;
  }
}

TEST_P(StreamTest, linger_close_is_bounded_in_bytes_when_the_peer_keeps_sending) {
  StreamPair p = make_pair();
  ASSERT_TRUE(p.client.is_open());
  JoinHandle<void> flood = loop().spawn_joinable(send_forever(&p.client, 64 * 1024));
  Stream::Linger how;
  how.time = 60s;
  how.max_bytes = 256 * 1024;
  auto done = run(bounded(reply_and_linger(&p.server, "enough\n", how), 20s));
  EXPECT_TRUE(done.ok()) << "a hang, not the byte bound";
  EXPECT_FALSE(p.server.is_open());
  // Our close with its input unread resets the connection: the flooding writer fails and ends.
  auto flooded = run(bounded(wait_for(std::move(flood)), 20s));
  EXPECT_TRUE(flooded.ok());
}

// ---- half-close ------------------------------------------------------------------------------------------------

Task<std::string> half_close_conversation(Stream* client, Stream* server) {
  Status sent = co_await client->write(std::string_view("request"));
  if (!sent) co_return "client write failed";
  if (Status st = client->shutdown_write(); !st) co_return "shutdown_write: " + std::string(st.error().message());
  // The server reads to EOF, and can still answer over its own direction.
  std::string request = co_await receive_to_eof(server);
  Status answered = co_await server->write(std::string_view("reply to " + request));
  if (!answered) co_return "server write failed";
  server->close();
  std::string reply = co_await receive_to_eof(client);
  // Writing after our own shutdown is refused (EPIPE), not silently dropped.
  Status late = co_await client->write(std::string_view("late"));
  co_return reply + "|" + (late ? "late write accepted" : std::string(late.error().message()));
}

TEST_P(StreamTest, shutdown_write_lets_the_peer_see_eof_and_still_answer) {
  StreamPair p = make_pair();
  ASSERT_TRUE(p.client.is_open());
  auto got = run(bounded(half_close_conversation(&p.client, &p.server), 5s));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "reply to request|" + std::string(errc::broken_pipe.message()));
}

// ---- connect -----------------------------------------------------------------------------------------------------

// The errno (or ringlet code) a connect ends with; 0 when it connects.
Task<int> connect_error(Address address, Duration timeout) {
  Result<Stream> c = co_await connect(address, timeout);
  co_return c ? 0 : c.error().code;
}

TEST_P(StreamTest, connecting_to_a_closed_port_is_refused) {
  Address address;
  {
    auto listener = Listener::bind(loop(), Address::loopback_v4(0));
    ASSERT_TRUE(listener.ok());
    address = listener->local_address();
    listener->close();
    ASSERT_TRUE(loop().run_until_idle());
  }
  auto e = run(bounded(connect_error(address, 5s), 10s));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(*e, ECONNREFUSED);
}

TEST_P(StreamTest, connecting_to_a_missing_unix_path_fails_with_enoent) {
  auto e = run(bounded(connect_error(Address::unix_path("/tmp/ringlet-no-such-dir/x.sock").value(), 5s), 10s));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(*e, ENOENT);
}

struct ConnectTimeoutSeen {
  std::string outcome;
  std::size_t connected_before = 0;
  std::int64_t elapsed_ms = 0;
};

// Linux drops a SYN that arrives while the listener's accept queue is full (the client retries it after a second),
// so once a never-accepting listener with backlog 0 holds its one queued connection, the next connect hangs in
// SYN_SENT: exactly what a deadline is for.
Task<ConnectTimeoutSeen> connect_until_one_times_out(Address address, Duration timeout) {
  ConnectTimeoutSeen seen;
  std::vector<Stream> held;
  for (int i = 0; i < 8; ++i) {
    std::int64_t start = Loop::current()->clock().now_ns();
    Result<Stream> c = co_await connect(address, timeout);
    seen.elapsed_ms = (Loop::current()->clock().now_ns() - start) / 1'000'000;
    if (c) {
      held.push_back(std::move(*c));
      ++seen.connected_before;
      continue;
    }
    seen.outcome = std::string(c.error().message());
    co_return seen;
  }
  seen.outcome = "every connect succeeded";
  co_return seen;
}

TEST_P(StreamTest, connect_to_a_listener_with_a_full_accept_queue_times_out_at_its_deadline) {
  ListenOptions options;
  options.backlog = 0;
  auto listener = Listener::bind(loop(), Address::loopback_v4(0), options);
  ASSERT_TRUE(listener.ok());
  constexpr auto kTimeout = 150ms;
  auto seen = run(bounded(connect_until_one_times_out(listener->local_address(), kTimeout), 10s));
  listener->close();
  ASSERT_TRUE(seen.ok());
  EXPECT_EQ(seen->outcome, errc::timed_out.message());
  EXPECT_GE(seen->connected_before, 1u);
  EXPECT_LE(seen->connected_before, 2u) << "the kernel kept queueing connections past backlog 0";
  // Never early. That the deadline fired at all is the timed_out outcome: without it the connect would wait for the
  // kernel's SYN retries (seconds), and bounded() would fail. How late it fired depends on the machine's load.
  EXPECT_GE(seen->elapsed_ms, 149);
}

// On a thread of its own (a seccomp filter stays with its thread for good, so the test's thread must not get it):
// a loop on `kind` connects to a listening socket while getsockopt and getpeername fail with EPERM. Returns the
// connect's errno, 0 when it connected.
int connect_without_asking_the_socket(BackendKind kind) {
  int outcome = -1;
  std::thread t([&] {
    int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    Address any = Address::loopback_v4(0);
    if (listener < 0 || ::bind(listener, any.sockaddr_ptr(), any.length()) != 0 || ::listen(listener, 8) != 0) return;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(listener, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return;
    Address address(reinterpret_cast<sockaddr*>(&ss), len);
    sock_filter deny[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_getsockopt, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_getpeername, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
    };
    sock_fprog program{static_cast<unsigned short>(std::size(deny)), deny};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
      return;
    }
    {
      LoopOptions options;
      options.backend.kind = kind;
      auto created = Loop::create(options);
      if (!created) return;
      auto e = (*created)->block_on(bounded(connect_error(address, 5s), 10s));
      if (e) outcome = *e;
    }
    ::close(listener);
  });
  t.join();
  return outcome;
}

// #12: on epoll a connect's writability edge without EPOLLERR/EPOLLHUP is a finished connect, learned with no
// getsockopt(SO_ERROR) or getpeername (a refused connect still reports its error: connecting_to_a_closed_port_...).
TEST_P(StreamTest, a_finished_connect_is_learned_from_its_edge_without_asking_the_socket_issue_12) {
  EXPECT_EQ(connect_without_asking_the_socket(GetParam()), 0);
}

// ---- addresses -----------------------------------------------------------------------------------------------------

TEST_P(StreamTest, each_end_sees_the_other_ends_local_address_as_its_peer) {
  StreamPair p = make_pair();
  ASSERT_TRUE(p.client.is_open());
  EXPECT_EQ(p.client.peer_address().value(), p.server.local_address().value());
  EXPECT_EQ(p.server.peer_address().value(), p.client.local_address().value());
  EXPECT_EQ(p.client.peer_address().value().to_string().substr(0, 10), "127.0.0.1:");
}

// ---- receive queue: cancellation, back-pressure, big frames --------------------------------------------------------

Task<std::string> receive_timeout_then_data(Stream* reader, Stream* writer) {
  Result<Slice> early = co_await with_timeout(reader->receive(), 10ms);
  if (early) co_return "received something nobody sent";
  if (early.error() != errc::timed_out) co_return "unexpected " + std::string(early.error().message());
  std::string buf(16, '\0');
  auto some = co_await with_timeout(reader->read_some(bytes_of(buf)), 10ms);
  if (some || some.error() != errc::timed_out) co_return "read_some did not time out";
  Status written = co_await writer->write(std::string_view("after the timeouts"));
  if (!written) co_return "write failed";
  writer->close();
  co_return co_await receive_to_eof(reader);
}

TEST_P(StreamTest, a_read_that_timed_out_leaves_the_stream_usable_for_later_data) {
  StreamPair p = make_pair();
  ASSERT_TRUE(p.client.is_open());
  auto got = run(bounded(receive_timeout_then_data(&p.server, &p.client), 5s));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "after the timeouts");
}

Task<void> write_and_close(Stream* s, std::string bytes) {
  (void)co_await s->write(bytes);
  s->close();
}

// Reads in small steps with pauses, so the queue repeatedly reaches its watermark and the receive is stopped and
// restarted many times; records the largest queue it saw.
Task<std::string> slow_receive_to_eof(Stream* s, std::size_t* max_queued) {
  std::string out;
  for (std::size_t slices = 1;; ++slices) {
    *max_queued = std::max(*max_queued, s->inbound().bytes());
    Result<Slice> r = co_await s->receive();
    if (!r) co_return out + "<error>";
    if (r->empty()) break;
    out.append(r->view());
    if (slices % 4 == 0) (void)co_await sleep_for(1ms);
  }
  co_return out;
}

TEST_P(StreamTest, back_pressure_pauses_and_resumes_receiving_without_losing_bytes_or_faking_eof) {
  StreamOptions options;
  options.receive_high_watermark = 32 * 1024;
  StreamPair p = make_pair(Transport::tcp, options);
  ASSERT_TRUE(p.client.is_open());
  std::string sent = pattern(2 * 1024 * 1024, 11);
  loop().spawn(write_and_close(&p.client, sent));
  std::size_t max_queued = 0;
  auto got = run(bounded(slow_receive_to_eof(&p.server, &max_queued), 30s));
  ASSERT_TRUE(got.ok()) << "timed out";
  EXPECT_EQ(got->size(), sent.size());
  EXPECT_TRUE(*got == sent) << "bytes lost, repeated or reordered";
  EXPECT_GT(max_queued, 0u);
}

Task<Result<Slice>> read_big_frame(Stream* s, std::size_t n) { co_return co_await s->read_frame(n); }

TEST_P(StreamTest, a_frame_larger_than_the_receive_watermark_is_still_read_whole) {
  StreamOptions options;
  options.receive_high_watermark = 16 * 1024;
  StreamPair p = make_pair(Transport::tcp, options);
  ASSERT_TRUE(p.client.is_open());
  std::string sent = pattern(200 * 1024, 5);
  loop().spawn(write_and_close(&p.client, sent));
  auto got = run(bounded(read_big_frame(&p.server, sent.size()), 10s));
  ASSERT_TRUE(got.ok()) << got.error().message() << " (timed_out: the receive stopped at the watermark)";
  EXPECT_TRUE(got->view() == sent);
}

TEST_P(StreamTest, a_line_longer_than_the_receive_watermark_is_still_read_whole) {
  StreamOptions options;
  options.receive_high_watermark = 16 * 1024;
  StreamPair p = make_pair(Transport::tcp, options);
  ASSERT_TRUE(p.client.is_open());
  std::string line(100 * 1024, 'x');
  loop().spawn(write_and_close(&p.client, line + "\n"));
  auto got = run(bounded(p.server.read_line(1 << 20), 10s));
  ASSERT_TRUE(got.ok()) << got.error().message() << " (timed_out: the receive stopped at the watermark)";
  EXPECT_EQ(got->size(), line.size());
}

TEST_P(StreamTest, closing_a_stream_with_unread_data_and_an_armed_receive_is_clean) {
  StreamPair p = make_pair();
  ASSERT_TRUE(p.client.is_open());
  ASSERT_TRUE(run(bounded(write_text(&p.client, "unread bytes"), 5s)).ok());
  // Arm the receive and let the bytes queue up, then close with them unread.
  auto first = run(bounded(wait_more_of(&p.server), 5s));
  ASSERT_TRUE(first.ok());
  EXPECT_GT(p.server.inbound().bytes(), 0u);
  p.server.close();
  p.client.close();
  // TearDown proves that no operation, buffer or task is left behind.
}

TEST_P(StreamTest, a_moved_stream_keeps_working_and_the_moved_from_one_is_closed) {
  StreamPair p = make_pair();
  ASSERT_TRUE(p.client.is_open());
  Stream moved = std::move(p.client);
  EXPECT_FALSE(p.client.is_open());
  EXPECT_EQ(p.client.fd(), -1);
  ASSERT_TRUE(run(bounded(write_then_close(&moved, "via the moved stream"), 5s)).ok());
  auto got = run(bounded(receive_to_eof(&p.server), 5s));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "via the moved stream");
}

RINGLET_BOTH_BACKENDS(StreamTest);

}  // namespace
}  // namespace ringlet
