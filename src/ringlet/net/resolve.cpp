// resolve.cpp — getaddrinfo, inline for numeric hosts and on a pool thread for names.
#include "ringlet/net/resolve.hpp"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <string_view>

namespace ringlet {
namespace {

Error error_from_gai(int rc) noexcept {
  switch (rc) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
      return errc::host_not_found;
    case EAI_AGAIN: return errc::resolver_try_again;
    case EAI_MEMORY: return Error{ENOMEM};
    case EAI_SYSTEM: return Error{errno};
    case EAI_BADFLAGS:
    case EAI_FAMILY:
    case EAI_SERVICE:
    case EAI_SOCKTYPE: return errc::invalid_argument;
    default: return errc::resolver_failed;
  }
}

// Runs getaddrinfo (blocking unless `flags` has AI_NUMERICHOST).
Result<std::vector<Address>> lookup(const std::string& host, std::uint16_t port, int flags) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;  // one entry per address instead of one per socket type
  hints.ai_flags = flags | AI_NUMERICSERV;
  std::string service = std::to_string(port);
  addrinfo* list = nullptr;
  int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &list);
  if (rc != 0) return error_from_gai(rc);
  std::vector<Address> out;
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    Address a(ai->ai_addr, ai->ai_addrlen);
    if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
  }
  freeaddrinfo(list);
  if (out.empty()) return errc::host_not_found;
  return out;
}

}  // namespace

Task<Result<std::vector<Address>>> resolve(std::string host, std::uint16_t port, BlockingPool& pool) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) co_return errc::invalid_argument;
  // Numeric first: getaddrinfo with AI_NUMERICHOST never touches the network or the disk.
  Result<std::vector<Address>> numeric = lookup(host, port, AI_NUMERICHOST);
  if (numeric || numeric.error() != errc::host_not_found) co_return numeric;
  // Named, not a temporary in the co_await expression: GCC 12 copies such a closure bitwise and destroys it twice
  // (see blocking_pool.hpp).
  auto work = [host, port] { return lookup(host, port, 0); };
  co_return co_await pool.run(std::move(work));
}

Task<Result<std::vector<Address>>> resolve(std::string host, std::uint16_t port) {
  return resolve(std::move(host), port, default_blocking_pool());
}

}  // namespace ringlet
