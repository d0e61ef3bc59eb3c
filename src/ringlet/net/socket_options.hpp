// socket_options.hpp — the socket options servers and clients set, as named calls. Stateless; any thread.
#pragma once

#include <chrono>

#include "ringlet/base/result.hpp"

namespace ringlet {

enum class Toggle : bool { off = false, on = true };

Status set_nodelay(int fd, Toggle on) noexcept;
// Keepalive probes after `idle` without traffic, every `interval`, dropping the connection after `count` misses.
Status set_keepalive(int fd, Toggle on, std::chrono::seconds idle = std::chrono::seconds(60),
                     std::chrono::seconds interval = std::chrono::seconds(10), int count = 6) noexcept;
Status set_send_buffer(int fd, int bytes) noexcept;
Status set_receive_buffer(int fd, int bytes) noexcept;
Status set_reuse_address(int fd, Toggle on) noexcept;
Status set_reuse_port(int fd, Toggle on) noexcept;
Result<int> send_buffer_size(int fd) noexcept;
Result<int> receive_buffer_size(int fd) noexcept;

}  // namespace ringlet
