// resolve.hpp — host names to socket addresses without blocking the loop. Core-local: call it from a task;
// the lookup itself (getaddrinfo: /etc/hosts, DNS, ...) runs on a BlockingPool thread.
//
// Numeric hosts ("127.0.0.1", "::1", "[::1]", "fe80::1%eth0") are converted inline, without the pool. Results come
// in getaddrinfo's order (RFC 6724 preference), one Address per distinct IP, each with `port` set.
// Cancellation and with_timeout end the wait at once (errc::cancelled / errc::timed_out); the lookup itself
// cannot be interrupted and finishes on its pool thread, its result discarded.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ringlet/net/address.hpp"
#include "ringlet/runtime/blocking_pool.hpp"
#include "ringlet/base/result.hpp"
#include "ringlet/runtime/task.hpp"

namespace ringlet {

// Errors: errc::host_not_found, resolver_try_again, resolver_failed (result.hpp), or errc::cancelled.

// Looks `host` up on default_blocking_pool().
Task<Result<std::vector<Address>>> resolve(std::string host, std::uint16_t port);
// The same on `pool`, which must outlive the returned task.
Task<Result<std::vector<Address>>> resolve(std::string host, std::uint16_t port, BlockingPool& pool);

}  // namespace ringlet
