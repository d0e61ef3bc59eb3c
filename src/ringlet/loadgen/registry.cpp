// registry.cpp — the workloads `ringlet bench` offers, and small helpers workloads share.
#include <charconv>

#include "ringlet/loadgen/workload.hpp"

namespace ringlet::loadgen {

// Each workload file defines one factory. Adding a workload: declare its factory here and add one table line.
std::unique_ptr<Workload> make_echo_workload();
std::unique_ptr<Workload> make_http_workload();
std::unique_ptr<Workload> make_memcache_workload();
std::unique_ptr<Workload> make_beanstalk_workload();

std::span<const WorkloadEntry> workloads() noexcept {
  static const WorkloadEntry table[] = {
      {"echo", "Echo: send --size bytes, verify every echoed byte", "HOST:PORT", &make_echo_workload},
      {"http", "HTTP/1.1: keep-alive requests to one or more URLs, status and body length of every response verified",
       "URL (http://host[:port]/path)", &make_http_workload},
      {"memcache", "memcached text or meta protocol: gets and sets, every value verified", "HOST:PORT",
       &make_memcache_workload},
      {"beanstalk", "beanstalkd: put -> reserve -> delete cycles, every job body verified", "HOST:PORT",
       &make_beanstalk_workload},
  };
  return table;
}

Result<std::pair<std::string, std::uint16_t>> split_host_port(std::string_view text) {
  std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) return errc::invalid_argument;
  std::string_view host = text.substr(0, colon);
  std::string_view port_text = text.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return errc::invalid_argument;
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return errc::invalid_argument;  // a bare IPv6 address needs brackets
  }
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 || port > 65535) {
    return errc::invalid_argument;
  }
  return std::pair<std::string, std::uint16_t>(std::string(host), static_cast<std::uint16_t>(port));
}

}  // namespace ringlet::loadgen
