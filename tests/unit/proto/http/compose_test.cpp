// compose_test.cpp — response heads composed into an OutputChain: exact bytes of the short text responses, the
// Connection line for each version and ending, and heads longer than HeadWriter's stack buffer.
#include "ringlet/proto/http/compose.hpp"

#include <gtest/gtest.h>

#include <string>

#include "ringlet/buf/buffer.hpp"
#include "ringlet/proto/http/parser.hpp"
#include "support/output_text.hpp"

namespace ringlet::http {
namespace {

using testing::drain_to_string;

constexpr std::string_view kDate = "Sun, 06 Nov 1994 08:49:37 GMT";

class ComposeTest : public ::testing::Test {
 protected:
  void TearDown() override { EXPECT_EQ(BufferPool::local().outstanding(), 0u); }
  const Request& parse(std::string head) {
    head_ = std::move(head);
    parser_.reset();
    EXPECT_TRUE(parser_.parse(head_).complete());
    return parser_.request();
  }
  std::string head_;
  RequestParser parser_;
};

TEST_F(ComposeTest, a_simple_response_names_its_status_in_head_and_body) {
  OutputChain out;
  const Request& r = parse("GET /x HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(compose_simple_response(out, 404, kDate, &r, After::keep_alive), 14u);
  EXPECT_EQ(drain_to_string(out),
            "HTTP/1.1 404 Not Found\r\nServer: ringlet\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
            "Content-Type: text/plain\r\nContent-Length: 14\r\n\r\n404 Not Found\n");
}

TEST_F(ComposeTest, a_simple_response_to_head_has_no_body_and_extra_lines_go_before_connection) {
  OutputChain out;
  const Request& r = parse("HEAD /dir HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(compose_simple_response(out, 301, kDate, &r, After::close, "Location: /dir/\r\n"), 0u);
  EXPECT_EQ(drain_to_string(out),
            "HTTP/1.1 301 Moved Permanently\r\nServer: ringlet\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
            "Content-Type: text/plain\r\nContent-Length: 22\r\nLocation: /dir/\r\nConnection: close\r\n\r\n");
}

TEST_F(ComposeTest, without_a_request_the_answer_closes) {
  OutputChain out;
  compose_simple_response(out, 431, kDate, nullptr, After::close);
  std::string text = drain_to_string(out);
  EXPECT_NE(text.find("Connection: close\r\n\r\n431 Request Header Fields Too Large\n"), std::string::npos) << text;
}

TEST_F(ComposeTest, connection_line_follows_the_version_and_the_ending) {
  EXPECT_EQ(connection_line(nullptr, After::close), kConnectionClose);
  EXPECT_EQ(connection_line(nullptr, After::keep_alive), "");
  EXPECT_EQ(connection_line(&parse("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), After::keep_alive), "");
  EXPECT_EQ(connection_line(&parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), After::keep_alive),
            kConnectionKeepAlive);
  EXPECT_EQ(connection_line(&parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), After::close),
            kConnectionClose);
}

TEST_F(ComposeTest, a_head_longer_than_the_stack_buffer_arrives_whole_and_in_order) {
  OutputChain out;
  std::string value(3000, 'v');
  {
    HeadWriter head(out);
    head.status_line(200, kDate).header("X-Big", value).header("Content-Length", std::uint64_t{1234567890123});
    head.end();
  }
  EXPECT_EQ(drain_to_string(out), "HTTP/1.1 200 OK\r\nServer: ringlet\r\nDate: " + std::string(kDate) +
                                      "\r\nX-Big: " + value + "\r\nContent-Length: 1234567890123\r\n\r\n");
}

TEST_F(ComposeTest, unknown_codes_have_a_reason_too) {
  EXPECT_EQ(reason_phrase(200), "OK");
  EXPECT_EQ(reason_phrase(416), "Range Not Satisfiable");
  EXPECT_EQ(reason_phrase(299), "Unknown");
}

}  // namespace
}  // namespace ringlet::http
