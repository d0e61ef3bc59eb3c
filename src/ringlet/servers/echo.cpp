// echo.cpp — the echo protocol, in the plain sequential style ringlet exists for.
//
// Each received Slice is written back as is: the bytes arrive in a pooled buffer (on io_uring, one the kernel
// picked from the provided ring) and leave from the same buffer, so nothing is copied in user space. The write
// only queues the Slice; the loop sends everything a connection queued in one turn with one send. When a client
// stops reading, its queue fills, write() waits, the handler stops receiving, the stream stops receiving past its
// limit, and TCP flow control pushes back on the client: memory per connection stays bounded.
#include "ringlet/servers/echo.hpp"

#include "ringlet/runtime/log.hpp"

namespace ringlet {

namespace {

// Applies the server's idle timeout to one wait, if it has one.
template <class Awaitable>
auto within_idle_timeout(Awaitable&& a, const TcpServer& server) {
  Duration limit = server.options().idle_timeout;
  return with_timeout(std::forward<Awaitable>(a), limit > Duration::zero() ? limit : std::chrono::hours(24 * 365));
}

}  // namespace

Task<void> echo_connection(Stream& stream, TcpServer& server) {
  for (;;) {
    Result<Slice> data = co_await within_idle_timeout(stream.receive(), server);
    if (!data) {
      if (data.error() == errc::timed_out) log_debug("echo: closing idle connection fd {}", stream.fd());
      co_return;
    }
    if (data->empty()) break;  // the client closed its side: send back what is still queued, then close
    // Queued for this turn's flush; suspends only while the client is not taking our output.
    Status queued = co_await within_idle_timeout(stream.write(std::move(*data)), server);
    if (!queued) co_return;
  }
  (void)co_await within_idle_timeout(stream.flush(), server);
}

TcpServer make_echo_server(Loop& loop, EchoOptions options) {
  options.server.name = "echo";
  options.server.listen_options.stream.receive_high_watermark = options.receive_limit;
  options.server.listen_options.stream.send_high_watermark = options.receive_limit;
  return TcpServer(loop, std::move(options.server), &echo_connection);
}

}  // namespace ringlet
