// output_text.hpp — what a stream would send: drains an OutputChain into a string (for codec tests).
#pragma once

#include <sys/uio.h>

#include <string>

#include "ringlet/buf/output_chain.hpp"

namespace ringlet::testing {

inline std::string drain_to_string(OutputChain& chain) {
  std::string out;
  iovec iov[64];
  while (!chain.empty()) {
    std::size_t n = chain.fill_iovecs(iov, 64);
    std::size_t total = 0;
    for (std::size_t i = 0; i < n; ++i) {
      out.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
      total += iov[i].iov_len;
    }
    chain.advance(total);
  }
  return out;
}

}  // namespace ringlet::testing
