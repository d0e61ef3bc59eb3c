// systemd.hpp — the two small protocols a service speaks with systemd: socket activation (listening sockets handed
// over at exec) and readiness notification (Type=notify). Call from the main thread at start-up (take) and from
// anywhere after (notify); nothing here is per core.
//
// Written out here rather than linked from libsystemd: each is a few lines of a stable, documented protocol
// (sd_listen_fds(3), sd_notify(3)), and the binary then runs unchanged where libsystemd is absent (containers,
// minimal images) — without systemd both calls simply find nothing to do.
//
//   socket activation  LISTEN_PID is our pid and LISTEN_FDS=n: descriptors 3 .. 3+n-1 are ours, already bound and
//                      listening. The variables are removed once read, so nothing started later takes them too.
//   notification       NOTIFY_SOCKET names a Unix datagram socket (a path, or "@name" for the abstract
//                      namespace); each message is newline-separated VAR=value lines, e.g. "READY=1",
//                      "STOPPING=1", "STATUS=...".
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "ringlet/base/result.hpp"
#include "ringlet/net/address.hpp"

namespace ringlet {

struct InheritedSocket {
  int fd = -1;
  Address address;  // getsockname(): what it listens on
};

// The sockets systemd passed to this process, in order; empty when it passed none (or they were meant for another
// process: LISTEN_PID differs). Ownership passes to the caller.
std::vector<InheritedSocket> take_inherited_sockets();

// Sends `state` to the service manager. Does nothing (and succeeds) when NOTIFY_SOCKET is not set.
Status notify_service_manager(std::string_view state);

}  // namespace ringlet
