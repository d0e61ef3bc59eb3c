// echo.cpp — the echo protocol, in the plain sequential style ringlet exists for.
//
// Each received Slice is written back as is: the bytes arrive in a pooled buffer (on io_uring, one the kernel
// picked from the provided ring) and leave from the same buffer, so nothing is copied in user space. The write
// only queues the Slice; the loop sends everything a connection queued in one turn with one send. When a client
// stops reading, its queue fills, write() waits, the handler stops receiving, the stream stops receiving past its
// limit, and TCP flow control pushes back on the client: memory per connection stays bounded.
#include "ringlet/servers/echo.hpp"

#include "ringlet/base/log.hpp"

namespace ringlet {

Task<void> echo_connection(Stream stream, TcpServer&) {
  for (;;) {
    Result<Slice> data = co_await stream.receive();
    if (!data) {
      if (data.error() == errc::timed_out) log_debug("echo: closing idle connection fd {}", stream.fd());
      co_return;
    }
    // An empty Slice is the end of input: send back what is still queued, then close.
    bool end = data->empty();
    // write() queues the Slice for this turn's flush and suspends only while the client is not taking our
    // output; flush() waits until all of it has gone. (One await expression for both keeps the frame small.)
    Status sent = co_await (end ? stream.flush() : stream.write(std::move(*data)));
    if (!sent || end) co_return;
  }
}

TcpServer make_echo_server(Loop& loop, EchoOptions options) {
  if (options.server.name == ServerOptions{}.name) options.server.name = "echo";
  options.server.listen_options.stream.receive_high_watermark = options.receive_limit;
  options.server.listen_options.stream.send_high_watermark = options.receive_limit;
  return TcpServer(loop, std::move(options.server), &echo_connection);
}

}  // namespace ringlet
