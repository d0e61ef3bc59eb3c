// request_reader_test.cpp — reading request heads and bodies from a Stream, on both backends. A pipelined sequence
// (no body, Content-Length body, chunked body, close) is delivered as receive buffers split at every position and
// byte by byte, and must always frame into the same requests; a head within one buffer must cost no copy. Over a
// real socket: a trickled head, the head deadline (slowloris), EOF between and inside requests, malformed heads
// and bodies, and the drain limit.
#include "ringlet/http/request_reader.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "ringlet/buf/copy_counter.hpp"
#include "support/loop_fixture.hpp"

namespace ringlet::http {
namespace {

using namespace std::chrono_literals;
using ringlet::testing::LoopTest;

class RequestReaderTest : public LoopTest {
 protected:
  // A stream on one end of a socketpair; the test holds the other end as a plain descriptor.
  Stream make_stream() {
    peer_close();
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
      ADD_FAILURE() << "socketpair failed";
      return {};
    }
    peer_ = fds[1];
    return Stream(loop(), fds[0]);
  }
  void peer_write(std::string_view bytes) {
    ASSERT_EQ(::write(peer_, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  void peer_close() {
    if (peer_ >= 0) ::close(peer_);
    peer_ = -1;
  }
  void TearDown() override {
    peer_close();
    LoopTest::TearDown();
  }
  int peer_ = -1;
};

const std::string kA = "GET /a HTTP/1.1\r\nHost: h\r\n\r\n";
const std::string kB = "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
const std::string kC = "\r\nPOST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n";
const std::string kD = "GET /d?q HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
const std::vector<std::string> kExpected = {"/a: keep", "/b:hello keep", "/c:abcde keep", "/d:q close", "<eof>"};

// Serves requests until an error; each becomes "path:body keep|close".
Task<std::vector<std::string>> serve(Stream* stream) {
  std::vector<std::string> out;
  for (;;) {
    bool started = true;
    Result<RequestHead> head = co_await read_request(*stream, ParserLimits{}, 0, &started);
    if (!head) {
      out.push_back(head.error() == errc::eof && !started ? "<eof>" : "<error " + std::string(head.error().message()) + ">");
      break;
    }
    if (!head->ok()) {
      out.push_back("<status " + std::to_string(head->error_status) + ">");
      break;
    }
    const Request& req = head->request;
    EXPECT_EQ(req.head(), head->bytes.view());
    std::string line(req.path());
    line += ":";
    if (req.has_query()) line += req.query();
    BodyReader body(req);
    for (;;) {
      Result<Slice> piece = co_await read_body_some(*stream, body);
      if (!piece) {
        line += "<body error " + std::string(piece.error().message()) + ">";
        break;
      }
      if (piece->empty()) break;
      line += piece->view();
    }
    line += req.keep_alive() ? " keep" : " close";
    out.push_back(line);
  }
  co_return out;
}

TEST_P(RequestReaderTest, pipelined_requests_frame_the_same_at_every_two_way_buffer_split) {
  const std::string all = kA + kB + kC + kD;
  for (std::size_t cut = 0; cut <= all.size(); ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    Stream s = make_stream();
    if (cut > 0) s.inbound().push(Slice::copy_of(std::string_view(all).substr(0, cut)));
    if (cut < all.size()) s.inbound().push(Slice::copy_of(std::string_view(all).substr(cut)));
    peer_close();
    EXPECT_EQ(run(serve(&s)), kExpected);
  }
}

TEST_P(RequestReaderTest, pipelined_requests_frame_the_same_with_one_buffer_per_byte) {
  const std::string all = kA + kB + kC + kD;
  Stream s = make_stream();
  for (char c : all) s.inbound().push(Slice::copy_of(std::string_view(&c, 1)));
  peer_close();
  const std::uint64_t copied = bytes_copied();
  EXPECT_EQ(run(serve(&s)), kExpected);
  // Each head byte is gathered at most once; body bytes are never copied.
  EXPECT_LE(bytes_copied() - copied, all.size());
}

TEST_P(RequestReaderTest, a_head_within_one_buffer_is_parsed_without_copying) {
  Stream s = make_stream();
  s.inbound().push(Slice::copy_of(kA + kB + kC + kD));
  peer_close();
  const std::uint64_t copied = bytes_copied();
  EXPECT_EQ(run(serve(&s)), kExpected);
  EXPECT_EQ(bytes_copied(), copied);
}

Task<void> trickle(int fd, std::string bytes, std::size_t piece) {
  for (std::size_t i = 0; i < bytes.size(); i += piece) {
    std::string_view p = std::string_view(bytes).substr(i, piece);
    if (::write(fd, p.data(), p.size()) != static_cast<ssize_t>(p.size())) break;
    (void)co_await sleep_for(1ms);
  }
  ::shutdown(fd, SHUT_WR);
}

TEST_P(RequestReaderTest, a_trickled_pipeline_over_a_socket_frames_right) {
  Stream s = make_stream();
  loop().spawn(trickle(peer_, kA + kB + kC + kD, 7));
  EXPECT_EQ(run(serve(&s)), kExpected);
}

TEST_P(RequestReaderTest, eof_inside_a_head_is_reported_as_started) {
  Stream s = make_stream();
  peer_write("GET / HT");
  peer_close();
  EXPECT_EQ(run(serve(&s)), (std::vector<std::string>{"<error end of stream>"}));
}

TEST_P(RequestReaderTest, a_malformed_head_returns_its_status) {
  Stream s = make_stream();
  peer_write(kA + "GET / HTTP/1.1\r\nHost : h\r\n\r\n");
  EXPECT_EQ(run(serve(&s)), (std::vector<std::string>{"/a: keep", "<status 400>"}));
}

TEST_P(RequestReaderTest, an_oversized_straddling_head_is_refused_with_431) {
  Stream s = make_stream();
  std::string head = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 40; ++i) head += "X-Filler-" + std::to_string(i) + ": " + std::string(500, 'v') + "\r\n";
  for (std::size_t i = 0; i < head.size(); i += 1000) s.inbound().push(Slice::copy_of(std::string_view(head).substr(i, 1000)));
  EXPECT_EQ(run(serve(&s)), (std::vector<std::string>{"<status 431>"}));
}

Task<Result<RequestHead>> read_with_deadline(Stream* s, std::int64_t timeout_ns) {
  co_return co_await read_request(*s, ParserLimits{}, Loop::current()->clock().now_ns() + timeout_ns);
}

TEST_P(RequestReaderTest, the_head_deadline_ends_a_trickling_client) {
  Stream s = make_stream();
  peer_write("GET / HTTP/1.1\r\n");  // and then nothing: the head never completes
  Result<RequestHead> r = run(read_with_deadline(&s, std::chrono::nanoseconds(50ms).count()));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), errc::timed_out);
}

Task<std::string> read_then_discard(Stream* s, std::uint64_t max_bytes) {
  Result<RequestHead> head = co_await read_request(*s, ParserLimits{});
  if (!head || !head->ok()) co_return "no head";
  BodyReader body(head->request);
  Status d = co_await discard_body(*s, body, max_bytes);
  if (!d) co_return "discard: " + std::string(d.error().message());
  Result<RequestHead> next = co_await read_request(*s, ParserLimits{});
  if (!next || !next->ok()) co_return "no next head";
  co_return std::string(next->request.path());
}

TEST_P(RequestReaderTest, discard_body_frames_the_next_request) {
  Stream s = make_stream();
  peer_write(kC + kD);
  EXPECT_EQ(run(read_then_discard(&s, 1000)), "/d");
  Stream t = make_stream();
  peer_write(kB + kD);
  EXPECT_EQ(run(read_then_discard(&t, 1000)), "/d");
}

TEST_P(RequestReaderTest, discard_body_refuses_more_than_its_limit) {
  Stream s = make_stream();
  peer_write(kB + kD);
  EXPECT_EQ(run(read_then_discard(&s, 4)), "discard: frame too long");
  Stream t = make_stream();
  peer_write(kC + kD);
  EXPECT_EQ(run(read_then_discard(&t, 4)), "discard: frame too long");
}

Task<std::string> read_bad_body(Stream* s) {
  Result<RequestHead> head = co_await read_request(*s, ParserLimits{});
  if (!head || !head->ok()) co_return "no head";
  BodyReader body(head->request);
  Result<Slice> piece = co_await read_body_some(*s, body);
  if (piece.ok()) co_return "piece";
  if (piece.error() != bad_body) co_return "other error";
  co_return std::to_string(body.http_status()) + " " + body.reason();
}

TEST_P(RequestReaderTest, a_malformed_chunked_body_reports_bad_body) {
  Stream s = make_stream();
  peer_write("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n");
  EXPECT_EQ(run(read_bad_body(&s)), "400 bare LF in chunk line");
}

TEST_P(RequestReaderTest, eof_inside_a_body_is_an_error) {
  Stream s = make_stream();
  peer_write("POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhel");
  peer_close();
  EXPECT_EQ(run(serve(&s)), (std::vector<std::string>{"/b:hel<body error end of stream> keep", "<eof>"}));
}

RINGLET_BOTH_BACKENDS(RequestReaderTest);

}  // namespace
}  // namespace ringlet::http
