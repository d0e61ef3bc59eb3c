// echo.hpp — `ringlet echo`: every byte a client sends comes back. The tutorial server and the baseline benchmark.
// Core-local: one EchoServer per loop.
#pragma once

#include "ringlet/net/tcp_server.hpp"

namespace ringlet {

struct EchoOptions {
  ServerOptions server;
  // Unread input held per connection before we stop receiving from it (a client that sends but never reads
  // cannot make us buffer more than this).
  std::size_t receive_limit = 64 * 1024;
};

// Echoes one connection until EOF, an error, the idle timeout or cancellation.
Task<void> echo_connection(Stream stream, TcpServer& server);

// A TcpServer running echo_connection.
TcpServer make_echo_server(Loop& loop, EchoOptions options);

}  // namespace ringlet
