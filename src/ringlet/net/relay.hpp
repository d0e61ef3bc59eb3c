// relay.hpp — moving bytes between two connected sockets, both ways, until both directions have ended: the core of
// a TCP proxy. Core-local.
//
// Each direction is one task running a plain loop: read what one socket has, write all of it to the other, repeat.
// Nothing is read while the previous bytes are still being written, so a peer that stops reading stops the relay
// reading from the other peer, and TCP flow control pushes back on it: per direction the relay holds at most one
// copy buffer or one pipe, whatever the peers do. All relays of a thread share 256 KiB per loop turn; a direction
// that moves bytes once it is spent yields to the rest of the loop (a flood must not make a turn long).
//
// Two ways to move the bytes, chosen per direction and per read (SpliceMode):
//   copy    recv into a pooled buffer, send from it. Cheapest for small messages: two syscalls (epoll) or two
//           ring entries (io_uring), and no io-wq thread hop.
//   splice  socket → pooled pipe → socket with splice(2) (runtime/splice.hpp): the bytes never enter user space.
//           Pays for bulk transfers; costs an io-wq hop per splice on io_uring.
//   automatic (the default) starts with copy and switches a direction to splice when a read fills the whole copy
//   buffer (a bulk transfer is under way), and back to copy when a splice moves less than that. docs/design/proxy.md
//   says where the cut-over is expected and how to measure it. A pair of sockets that cannot splice (EINVAL)
//   stays on copy.
//
// Endings:
//   - end of input on one side (the peer's shutdown(SHUT_WR) or close) becomes shutdown(SHUT_WR) towards the other
//     peer, after everything read has been written; the other direction keeps flowing (half-close);
//   - a reset or error reading from a peer, or writing to it, ends both directions, and the other peer's socket is
//     closed with a reset (SO_LINGER 0), so it learns that the transfer broke rather than seeing a clean end;
//   - the idle timeout (nothing moved either way for that long) or cancelling the relay task ends both directions
//     and closes both sockets.
// The relay owns both descriptors and closes them before it returns. SIGPIPE must be ignored (splice.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "ringlet/net/stream.hpp"
#include "ringlet/runtime/task.hpp"
#include "ringlet/runtime/timeout.hpp"

namespace ringlet {

enum class SpliceMode : std::uint8_t { never, automatic, always };
bool parse_splice_mode(std::string_view text, SpliceMode& out) noexcept;
std::string_view splice_mode_name(SpliceMode mode) noexcept;

struct RelayOptions {
  SpliceMode splice = SpliceMode::automatic;
  // Bytes per copied read (a pooled buffer held only while a read or its write is in flight; a read that may wait
  // long, after a short one, takes 4 KiB instead). In automatic mode a read that fills it switches its direction to
  // splice.
  std::size_t copy_buffer = 16 * 1024;
  Duration idle_timeout = Duration::zero();  // zero: none
};

// Live byte counts, updated as bytes move (for statistics while the relay runs). Optional.
struct RelayBytes {
  std::uint64_t a_to_b = 0;
  std::uint64_t b_to_a = 0;
  std::uint64_t spliced = 0;  // of both, the bytes moved with splice
};

enum class RelayEnd : std::uint8_t {
  closed,        // both directions reached end of input
  a_failed,      // reading from or writing to `a` failed (reset, or a local error): `b` was reset
  b_failed,      // the same for `b`: `a` was reset
  idle_timeout,
  cancelled,
};
std::string_view relay_end_name(RelayEnd end) noexcept;

struct RelayResult {
  RelayBytes bytes;
  RelayEnd end = RelayEnd::closed;
  int error = 0;  // errno of the failure, for a_failed / b_failed
};

// Relays between the connected streams `a` and `b`, which must not have started any I/O: it takes their sockets
// over (Stream::release_to, so on epoll each joins the epoll set at most once) and closes both before returning.
// `preamble` is sent to `b` before anything from `a` (a PROXY protocol header). `live`, when given, is updated as
// bytes move and must outlive the call.
Task<RelayResult> relay(Stream a, Stream b, RelayOptions options, std::string preamble = {},
                        RelayBytes* live = nullptr);

}  // namespace ringlet
